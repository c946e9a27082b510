//! CORS preflights and HEAD requests on the shape route.

mod common;

use reqwest::{Method, StatusCode};

use common::TestVolt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_allows_shape_headers() {
    let volt = TestVolt::start(5_000).await;
    let preflight = volt
        .http
        .request(Method::OPTIONS, format!("{}/v1/shape?table=items", volt.base_url))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "If-None-Match, traceparent, x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://app.test");
    assert_eq!(headers["access-control-max-age"], "86400");
    assert_eq!(headers["access-control-allow-headers"], "if-none-match, traceparent");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    assert!(headers.get("cache-control").is_none());
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_matches_get_without_body() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)").await.unwrap();
    let url = format!("{}/v1/shape?table=items&offset=-1", volt.base_url);

    let get = volt.http.get(&url).send().await.unwrap();
    let head = volt.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    for name in ["electric-handle", "electric-offset", "electric-schema", "etag", "cache-control", "content-type"] {
        assert_eq!(head.headers().get(name), get.headers().get(name), "{name}");
    }
    assert!(head.bytes().await.unwrap().is_empty());
    assert!(!get.bytes().await.unwrap().is_empty());
    volt.stop().await;
}
