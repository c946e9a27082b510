//! Malformed requests get a 4xx with a JSON body naming the parameter, never a 500.

mod common;

use common::TestVolt;
use serde_json::Value;

async fn error_of(volt: &TestVolt, query: &str) -> (u16, Value) {
    let response = volt.get(&format!("/v1/shape?{query}")).await;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_are_named() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE things (id int PRIMARY KEY)").await.unwrap();

    let cases = [
        ("table=nope&offset=-1", "table"),
        ("table=things", "offset"),
        ("table=things&offset=abc", "offset"),
        ("table=things&offset=0_-1", "offset"),
        ("table=things&offset=1_2_3", "offset"),
        ("table=things&offset=0_0", "handle"),
        ("table=things&offset=-1&live=true", "live"),
        ("offset=-1", "table"),
        ("table=a.b.c&offset=-1", "table"),
        ("table=%22%22&offset=-1", "table"),
        ("table=bad-name&offset=-1", "table"),
    ];
    for (query, parameter) in cases {
        let (status, body) = error_of(&volt, query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["message"], "Invalid request", "{query}");
        assert!(body["errors"][parameter].is_array(), "{query}: {body}");
    }
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_handle_must_refetch() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE things (id int PRIMARY KEY)").await.unwrap();
    let response = volt.get("/v1/shape?table=things&offset=0_0&handle=nope-1").await;
    assert_eq!(response.status(), 409);
    let handle = response.headers()["electric-handle"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!([{"headers": {"control": "must-refetch"}}]));

    // The handle from the 409 works.
    let response = volt.get("/v1/shape?table=things&offset=-1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["electric-handle"].to_str().unwrap(), handle);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_yields_a_server_error() {
    let volt = TestVolt::start(200).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE things (id int PRIMARY KEY)").await.unwrap();
    let queries = [
        "",
        "table=things&offset=-1&offset=0_0",
        "table=things&offset=99999999999999999999999_0&handle=x",
        "table=things&offset=0_inf&handle=",
        "table=things&offset=%ff",
        "table=%ff%fe&offset=-1",
        "table=things&offset=now&handle=whatever",
        "table=things&offset=-1&live=false&cursor=abc",
        "table=%22a%22%22b%22&offset=-1",
        "table=things;DROP%20TABLE%20things&offset=-1",
        "table=pg_catalog.pg_class&offset=-1",
        "table=information_schema.tables&offset=-1",
    ];
    for query in queries {
        let response = volt.get(&format!("/v1/shape?{query}")).await;
        let status = response.status().as_u16();
        assert!(status < 500, "{query} gave {status}");
    }
    for path in ["/v1/nothing", "/v1/shape/../x", "/%ff", "/v1/health/x"] {
        let status = volt.get(path).await.status().as_u16();
        assert!((400..500).contains(&status), "{path} gave {status}");
    }
    let response = volt.get("/v1/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), serde_json::json!({"status": "active"}));
    // The table survived the injection attempt.
    sql.batch_execute("SELECT 1 FROM things").await.unwrap();
    volt.stop().await;
}
