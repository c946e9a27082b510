//! gzip compression of JSON responses: the decoded body equals the plain one, and etags,
//! 304s, HEAD and small bodies keep working.

mod common;

use std::io::Read;

use common::TestVolt;

/// Sends a GET with the given extra request headers.
async fn get_with(volt: &TestVolt, path_and_query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = volt.http.get(format!("{}{}", volt.base_url, path_and_query));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain).expect("a valid gzip body");
    plain
}

fn vary_values(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("vary")
        .iter()
        .flat_map(|value| value.to_str().unwrap().split(',').map(|name| name.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_decodes_to_plain_body() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, title text);
         INSERT INTO items SELECT g, 'title number ' || g FROM generate_series(1, 500) g;",
    )
    .await
    .unwrap();
    let path = "/v1/shape?table=items&offset=-1";

    let plain = get_with(&volt, path, &[]).await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(vary_values(&plain).contains(&"accept-encoding".to_owned()));
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let plain_body = plain.bytes().await.unwrap();

    let compressed = get_with(&volt, path, &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(compressed.status(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    assert_eq!(compressed.headers()["content-type"], "application/json; charset=utf-8");
    let vary = vary_values(&compressed);
    assert!(vary.contains(&"accept-encoding".to_owned()), "{vary:?}");
    assert!(vary.contains(&"origin".to_owned()), "{vary:?}");
    // The etag names the messages, so both encodings share it.
    assert_eq!(compressed.headers()["etag"], etag.as_str());
    let compressed_body = compressed.bytes().await.unwrap();
    assert!(compressed_body.len() * 4 < plain_body.len(), "{} bytes gzipped from {}", compressed_body.len(), plain_body.len());
    assert_eq!(gunzip(&compressed_body), plain_body);

    // Revalidation still gets an empty 304, compressed or not.
    let not_modified = get_with(&volt, path, &[("accept-encoding", "gzip"), ("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status(), 304);
    assert!(not_modified.headers().get("content-encoding").is_none());
    assert!(not_modified.bytes().await.unwrap().is_empty());

    // HEAD sends no body, so nothing is compressed.
    let head = volt.http.head(format!("{}{path}", volt.base_url)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().get("content-encoding").is_none());
    assert!(vary_values(&head).contains(&"accept-encoding".to_owned()));
    assert!(head.bytes().await.unwrap().is_empty());

    // A client that rejects gzip gets the plain body.
    let declined = get_with(&volt, path, &[("accept-encoding", "gzip;q=0, identity")]).await;
    assert!(declined.headers().get("content-encoding").is_none());
    assert_eq!(declined.bytes().await.unwrap(), plain_body);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bodies_and_disabled_compression_stay_plain() {
    let volt = TestVolt::start_with(5_000, |settings| settings.compression_min_bytes = Some(4096)).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)").await.unwrap();
    let small = get_with(&volt, "/v1/shape?table=items&offset=-1", &[("accept-encoding", "gzip")]).await;
    assert_eq!(small.status(), 200);
    assert!(small.headers().get("content-encoding").is_none());
    let error = get_with(&volt, "/v1/shape?table=items", &[("accept-encoding", "gzip")]).await;
    assert_eq!(error.status(), 400);
    assert!(error.headers().get("content-encoding").is_none());
    volt.stop().await;

    let volt = TestVolt::start_with(5_000, |settings| settings.compression_min_bytes = None).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY, title text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 500) g")
        .await
        .unwrap();
    let large = get_with(&volt, "/v1/shape?table=items&offset=-1", &[("accept-encoding", "gzip")]).await;
    assert_eq!(large.status(), 200);
    assert!(large.headers().get("content-encoding").is_none());
    assert!(!vary_values(&large).contains(&"accept-encoding".to_owned()));
    let body: Vec<serde_json::Value> = large.json().await.unwrap();
    assert_eq!(body.len(), 501);
    volt.stop().await;
}
