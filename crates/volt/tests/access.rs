//! Access control and load limits: the shared secret on every spelling of a shape path, the
//! refusal to listen openly without one, and the bound on concurrent shape requests.

mod common;

use std::time::Duration;

use common::TestVolt;
use reqwest::{Method, StatusCode};

const SECRET: &str = "s3cret with spaces";
const SECRET_ENCODED: &str = "s3cret%20with%20spaces";

async fn send(volt: &TestVolt, method: Method, path_and_query: &str) -> reqwest::Response {
    let url = format!("{}{}", volt.base_url, path_and_query);
    volt.http.request(method, url).send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_guards_every_shape_path() {
    let volt = TestVolt::start_with(20_000, |settings| {
        settings.secret = Some(SECRET.to_owned());
        settings.allow_shape_deletion = true;
    })
    .await;
    volt.sql().await.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);").await.unwrap();

    let shape_paths = [
        "/v1/shape?table=items&offset=-1",
        "/v1//shape?table=items&offset=-1",
        "//v1/shape?table=items&offset=-1",
        "/v1/shape/?table=items&offset=-1",
        "/v1/%73hape?table=items&offset=-1",
        "/v1/./shape?table=items&offset=-1",
        "/v1/shape/items?offset=-1",
        "/v1//shape/items/?offset=-1",
        "/v1/%73hape/items?offset=-1",
    ];
    for path in shape_paths {
        for method in [Method::GET, Method::HEAD] {
            let response = send(&volt, method.clone(), path).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path} without the secret");
            let wrong = send(&volt, method.clone(), &format!("{path}&secret=s3cret")).await;
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path} with a wrong secret");
            let right = send(&volt, method.clone(), &format!("{path}&secret={SECRET_ENCODED}")).await;
            assert_eq!(right.status(), StatusCode::OK, "{method} {path} with the secret");
            let legacy = send(&volt, method.clone(), &format!("{path}&api_secret={SECRET_ENCODED}")).await;
            assert_eq!(legacy.status(), StatusCode::OK, "{method} {path} with api_secret");
        }
    }

    let body: serde_json::Value = send(&volt, Method::GET, shape_paths[0]).await.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "Unauthorized - Invalid API secret"}));

    for path in ["/v1/shape?table=items", "/v1/shape/items"] {
        let response = send(&volt, Method::DELETE, path).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "DELETE {path} without the secret");
        let response = send(&volt, Method::DELETE, &format!("{path}{}secret={SECRET_ENCODED}", if path.contains('?') { "&" } else { "?" })).await;
        assert!(response.status().is_success(), "DELETE {path} with the secret: {}", response.status());
    }

    // Paths are case-sensitive: an unknown path is a 404 with or without the secret.
    let response = send(&volt, Method::GET, "/V1/shape?table=items&offset=-1").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = send(&volt, Method::GET, &format!("/V1/shape?table=items&offset=-1&secret={SECRET_ENCODED}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    for path in ["/", "/v1/health"] {
        assert_eq!(send(&volt, Method::GET, path).await.status(), StatusCode::OK, "GET {path}");
    }
    let preflight = volt
        .http
        .request(Method::OPTIONS, format!("{}/v1/shape", volt.base_url))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);

    volt.stop().await;
}

#[test]
fn open_address_without_secret_exits() {
    let storage = tempfile::tempdir().unwrap();
    let storage_dir = storage.path().join("never-created");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_volt"))
        .args(["--listen-address", "0.0.0.0", "--port", "0", "--storage-dir"])
        .arg(&storage_dir)
        .env_remove("VOLT_SECRET")
        .env_remove("ELECTRIC_SECRET")
        .env_remove("VOLT_INSECURE")
        .env_remove("ELECTRIC_INSECURE")
        .env_remove("DATABASE_URL")
        .output()
        .expect("running volt");

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--secret"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(!storage_dir.exists(), "Volt started before checking its options");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limit_rejects_then_recovers() {
    let volt = TestVolt::start_with(30_000, |settings| settings.max_concurrent_requests = 2).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);").await.unwrap();
    let mut shape = volt.shape("items");
    while !shape.up_to_date {
        shape.poll().await;
    }

    let live_url = format!(
        "{}/v1/shape?table=items&offset={}&handle={}&live=true&cursor={}",
        volt.base_url,
        shape.offset,
        shape.handle.clone().unwrap(),
        shape.cursor
    );
    let start_live_request = || {
        let http = volt.http.clone();
        let url = live_url.clone();
        tokio::spawn(async move { http.get(url).send().await.expect("live request") })
    };
    let mut live_requests: Vec<_> = (0..2).map(|_| start_live_request()).collect();

    // Probe until both live requests hold their slots. A live request that arrived while a
    // probe held a slot got 503 itself, and is sent again.
    let busy = loop {
        for request in live_requests.iter_mut() {
            if request.is_finished() {
                let rejected = (&mut *request).await.unwrap();
                assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
                *request = start_live_request();
            }
        }
        let probe = volt.get("/v1/shape?table=items&offset=-1").await;
        if probe.status() == StatusCode::SERVICE_UNAVAILABLE {
            break probe;
        }
        assert_eq!(probe.status(), StatusCode::OK);
        tokio::task::yield_now().await;
    };
    assert!(busy.headers().contains_key("retry-after"));
    let body: serde_json::Value = busy.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("limit is 2"), "{body}");

    sql.batch_execute("INSERT INTO items VALUES (2)").await.unwrap();
    let mut live_requests = live_requests.into_iter();
    let first = tokio::time::timeout(Duration::from_secs(20), live_requests.next().unwrap()).await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let next = volt.get("/v1/shape?table=items&offset=-1").await;
    assert_eq!(next.status(), StatusCode::OK);

    for request in live_requests {
        request.await.unwrap();
    }
    volt.stop().await;
}
