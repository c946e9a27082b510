//! The 2024 dialect of the Shape API (`/v1/shape/{root_table}`, spoken by
//! `@electric-sql/client` 0.3.x) and shape deletion in both dialects, over HTTP.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{follow_until, select_rows, TestVolt, TextRow};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Starts Volt with the cache ages the Electric test-suites use (1 s and 3 s).
async fn start(long_poll_timeout_ms: u64, allow_shape_deletion: bool) -> TestVolt {
    TestVolt::start_with(long_poll_timeout_ms, |settings| {
        settings.cache_max_age_s = 1;
        settings.cache_stale_age_s = 3;
        settings.allow_shape_deletion = allow_shape_deletion;
    })
    .await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().expect("ASCII header"))
}

async fn send(volt: &TestVolt, method: reqwest::Method, path_and_query: &str) -> (StatusCode, HeaderMap, String) {
    let response = volt.http.request(method, format!("{}{}", volt.base_url, path_and_query)).send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

async fn get(volt: &TestVolt, path_and_query: &str) -> (StatusCode, HeaderMap, String) {
    send(volt, reqwest::Method::GET, path_and_query).await
}

async fn delete(volt: &TestVolt, path_and_query: &str) -> (StatusCode, HeaderMap, String) {
    send(volt, reqwest::Method::DELETE, path_and_query).await
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("invalid JSON body ({error}): {body}"))
}

/// A client of the 2024 dialect that follows a shape like `@electric-sql/client` 0.3.x: it
/// keeps `shape_id` and the last offset from the headers, goes live after `up-to-date`, and
/// starts over on 409.
struct LegacyClient {
    http: reqwest::Client,
    url: String,
    shape_id: Option<String>,
    offset: String,
    up_to_date: bool,
    rows: BTreeMap<String, TextRow>,
    refetches: usize,
}

impl LegacyClient {
    fn new(volt: &TestVolt, root_table: &str) -> Self {
        LegacyClient {
            http: volt.http.clone(),
            url: format!("{}/v1/shape/{root_table}", volt.base_url),
            shape_id: None,
            offset: "-1".to_owned(),
            up_to_date: false,
            rows: BTreeMap::new(),
            refetches: 0,
        }
    }

    async fn poll(&mut self) -> StatusCode {
        let mut query = vec![("offset", self.offset.clone())];
        if let Some(shape_id) = &self.shape_id {
            query.push(("shape_id", shape_id.clone()));
        }
        if self.up_to_date {
            query.push(("live", "true".to_owned()));
        }
        let response = self.http.get(&self.url).query(&query).send().await.expect("shape request");
        let status = response.status();
        let headers = response.headers().clone();
        if status == StatusCode::CONFLICT {
            self.shape_id = header(&headers, "x-electric-shape-id").map(str::to_owned);
            self.offset = "-1".to_owned();
            self.up_to_date = false;
            self.rows.clear();
            self.refetches += 1;
            return status;
        }
        if status == StatusCode::NO_CONTENT {
            return status;
        }
        assert_eq!(status, StatusCode::OK, "unexpected response: {:?}", response.text().await);
        self.shape_id = Some(header(&headers, "x-electric-shape-id").expect("x-electric-shape-id").to_owned());
        self.offset = header(&headers, "x-electric-chunk-last-offset").expect("x-electric-chunk-last-offset").to_owned();
        let messages: Vec<Value> = response.json().await.expect("JSON array body");
        for message in messages {
            self.apply(&message);
        }
        status
    }

    fn apply(&mut self, message: &Value) {
        let headers = &message["headers"];
        if headers["control"] == "up-to-date" {
            self.up_to_date = true;
            return;
        }
        assert!(message["offset"].is_string(), "data message without offset: {message}");
        let key = message["key"].as_str().expect("key").to_owned();
        let value: TextRow = message["value"]
            .as_object()
            .expect("value object")
            .iter()
            .map(|(column, value)| (column.clone(), value.as_str().map(str::to_owned)))
            .collect();
        match headers["operation"].as_str().expect("operation") {
            "insert" => {
                self.rows.insert(key, value);
            }
            "update" => self.rows.get_mut(&key).unwrap_or_else(|| panic!("update of unknown row {key}")).extend(value),
            "delete" => {
                assert!(self.rows.remove(&key).is_some(), "delete of unknown row {key}");
            }
            other => panic!("unknown operation {other}"),
        }
    }

    /// Polls until `done` holds for an up-to-date client, failing after `timeout`.
    async fn follow_until(&mut self, timeout: Duration, mut done: impl FnMut(&LegacyClient) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.up_to_date && done(self) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} did not reach the expected state in time", self.url);
            self.poll().await;
        }
    }

    fn rows_by(&self, key_column: &str) -> BTreeMap<String, TextRow> {
        self.rows.values().map(|row| (row[key_column].clone().expect("key value"), row.clone())).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_2024_error_bodies() {
    let volt = start(1_000, false).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE things (id int PRIMARY KEY)").await.unwrap();

    let cases = [
        ("/v1/shape/things", json!({"offset": ["can't be blank"]})),
        ("/v1/shape/things?offset=", json!({"offset": ["can't be blank"]})),
        ("/v1/shape/things?offset=10", json!({"offset": ["has invalid format"]})),
        ("/v1/shape/things?offset=1_2_3", json!({"offset": ["has invalid format"]})),
        ("/v1/shape/things?offset=0_inf", json!({"offset": ["has invalid format"]})),
        ("/v1/shape/things?offset=-5_3", json!({"offset": ["has invalid format"]})),
        ("/v1/shape/things?offset=0_0", json!({"shape_id": ["can't be blank when offset != -1"]})),
        ("/v1/shape/things?offset=-1&live=true", json!({"live": ["can't be true when offset == -1"]})),
        ("/v1/shape/things?offset=-1&live", json!({"live": ["can't be true when offset == -1"]})),
        ("/v1/shape/a.b.c?offset=-1", json!({"root_table": ["table name does not match expected format"]})),
        ("/v1/shape/things.?offset=-1", json!({"root_table": ["table name does not match expected format"]})),
        ("/v1/shape/nope?offset=-1", json!({"root_table": ["table not found"]})),
        // No case folding: the table is `things`, not `Things`.
        ("/v1/shape/Things?offset=-1", json!({"root_table": ["table not found"]})),
        ("/v1/shape/other.things?offset=-1", json!({"root_table": ["table not found"]})),
        (
            "/v1/shape/.invalid_shape?offset=invalid",
            json!({"offset": ["has invalid format"], "root_table": ["table name does not match expected format"]}),
        ),
        ("/v1/shape/nope?offset=invalid", json!({"offset": ["has invalid format"], "root_table": ["table not found"]})),
    ];
    for (path, expected) in cases {
        let (status, headers, body) = get(&volt, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(json_of(&body), expected, "{path}");
        assert_eq!(header(&headers, "content-type"), Some("application/json; charset=utf-8"), "{path}");
        assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"), "{path}");
        assert_eq!(header(&headers, "access-control-expose-headers"), Some("*"), "{path}");
        assert_eq!(header(&headers, "access-control-allow-methods"), Some("GET, POST, OPTIONS"), "{path}");
        assert!(!headers.contains_key("x-electric-shape-id"), "{path}");
    }

    // An invalid WHERE clause is reported under `root_table`, as the 2024 dialect does.
    let (status, _, body) = get(&volt, "/v1/shape/things?offset=-1&where=nope%20%3E%201").await;
    assert_eq!(status, 400);
    let message = json_of(&body)["root_table"][0].as_str().unwrap().to_owned();
    assert!(message.contains("nope"), "{message}");
    let (status, _, _) = get(&volt, "/v1/shape/things?offset=-1&where=id%20%3E%201").await;
    assert_eq!(status, 200, "a valid clause is served");

    // Deletion is off by default, and each dialect rejects it with its own status and body.
    let (status, headers, body) = delete(&volt, "/v1/shape/things").await;
    assert_eq!(status, 404);
    assert_eq!(json_of(&body), json!({"status": "Not found"}));
    assert!(!headers.contains_key("access-control-allow-origin"), "DELETE responses of the 2024 dialect carry no CORS headers");
    assert!(headers.contains_key("x-request-id"));
    let (status, _, body) = delete(&volt, "/v1/shape?table=things").await;
    assert_eq!(status, 405);
    assert_eq!(json_of(&body), json!({"message": "DELETE not allowed"}));
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_2024_headers() {
    let volt = start(300, false).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE items (id int8 PRIMARY KEY, title text NOT NULL, note varchar(20));
         INSERT INTO items VALUES (1, 'one', NULL), (2, 'two/2', 'n');",
    )
    .await
    .unwrap();

    // The first response contains the whole snapshot at 0_0 and ends with up-to-date.
    let (status, headers, body) = get(&volt, "/v1/shape/items?offset=-1").await;
    assert_eq!(status, 200, "{body}");
    let shape_id = header(&headers, "x-electric-shape-id").expect("x-electric-shape-id").to_owned();
    assert_eq!(header(&headers, "x-electric-chunk-last-offset"), Some("0_0"));
    let schema = json_of(header(&headers, "x-electric-schema").expect("x-electric-schema"));
    assert_eq!(
        schema,
        json!({"id": {"type": "int8", "pk_index": 0}, "title": {"type": "text"}, "note": {"type": "varchar", "max_length": 20}})
    );
    assert_eq!(header(&headers, "etag"), Some(format!("{shape_id}:-1:0_0").as_str()));
    assert_eq!(header(&headers, "cache-control"), Some("max-age=1, stale-while-revalidate=3"));
    assert_eq!(header(&headers, "content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&headers, "access-control-expose-headers"), Some("*"));
    assert_eq!(header(&headers, "access-control-allow-methods"), Some("GET, POST, OPTIONS"));
    assert!(!headers.contains_key("pragma"));
    assert!(!headers.contains_key("electric-handle"), "the 2024 dialect has its own header names");
    assert!(header(&headers, "server").unwrap().starts_with("Volt/"));
    assert_eq!(header(&headers, "x-request-id").map(str::len), Some(20));
    assert_eq!(
        json_of(&body),
        json!([
            {"key": "\"public\".\"items\"/\"1\"", "value": {"id": "1", "title": "one", "note": null}, "headers": {"operation": "insert"}, "offset": "0_0"},
            {"key": "\"public\".\"items\"/\"2\"", "value": {"id": "2", "title": "two/2", "note": "n"}, "headers": {"operation": "insert"}, "offset": "0_0"},
            {"headers": {"control": "up-to-date"}},
        ])
    );

    // A matching If-None-Match gets 304 with the shape headers, without etag or cache-control.
    for tag in [format!("{shape_id}:-1:0_0"), format!("\"{shape_id}:-1:0_0\""), format!("\"other\", {shape_id}:-1:0_0")] {
        let response = volt
            .http
            .get(format!("{}/v1/shape/items?offset=-1", volt.base_url))
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 304, "{tag}");
        let headers = response.headers();
        assert_eq!(header(headers, "x-electric-shape-id"), Some(shape_id.as_str()));
        assert_eq!(header(headers, "x-electric-chunk-last-offset"), Some("0_0"));
        assert!(headers.contains_key("x-electric-schema"));
        assert!(!headers.contains_key("etag"));
        assert!(!headers.contains_key("cache-control"));
        assert!(response.text().await.unwrap().is_empty());
    }

    // A live request with nothing new gets 204 after the long-poll timeout.
    let live_path = format!("/v1/shape/items?offset=0_0&shape_id={shape_id}&live=true");
    let (status, headers, body) = get(&volt, &live_path).await;
    assert_eq!(status, 204);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "x-electric-shape-id"), Some(shape_id.as_str()));
    assert_eq!(header(&headers, "x-electric-chunk-last-offset"), Some("0_0"));
    assert_eq!(header(&headers, "cache-control"), Some("no-store, no-cache, must-revalidate, max-age=0"));
    assert_eq!(header(&headers, "pragma"), Some("no-cache"));
    assert_eq!(header(&headers, "expires"), Some("0"));
    assert!(!headers.contains_key("x-electric-schema"), "live responses carry no schema");
    assert!(!headers.contains_key("etag"), "live responses carry no etag");

    // A live request that finds a change returns it with its offset and txid.
    let live = tokio::spawn({
        let http = volt.http.clone();
        let url = format!("{}{live_path}", volt.base_url);
        async move {
            loop {
                let response = http.get(&url).send().await.unwrap();
                if response.status() != 204 {
                    return response;
                }
            }
        }
    });
    sql.batch_execute("UPDATE items SET note = 'changed' WHERE id = 1").await.unwrap();
    let response = live.await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let last_offset = header(&headers, "x-electric-chunk-last-offset").unwrap().to_owned();
    assert_ne!(last_offset, "0_0");
    assert_eq!(header(&headers, "cache-control"), Some("no-store, no-cache, must-revalidate, max-age=0"));
    assert_eq!(header(&headers, "pragma"), Some("no-cache"));
    assert!(!headers.contains_key("etag"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["value"], json!({"id": "1", "note": "changed"}));
    assert_eq!(body[0]["headers"]["operation"], "update");
    assert!(body[0]["headers"]["txid"].is_u64(), "{body}");
    assert_eq!(body[0]["headers"]["relation"], json!(["public", "items"]));
    assert_eq!(body[0]["offset"], last_offset.as_str());
    assert_eq!(body[1], json!({"headers": {"control": "up-to-date"}}));

    // A non-live request after an offset gets the log after it, with the 2024 etag.
    let (status, headers, body) = get(&volt, &format!("/v1/shape/items?offset=0_0&shape_id={shape_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "etag"), Some(format!("{shape_id}:0_0:{last_offset}").as_str()));
    assert_eq!(header(&headers, "x-electric-chunk-last-offset"), Some(last_offset.as_str()));
    assert_eq!(json_of(&body).as_array().unwrap().len(), 2);
    let (status, _, body) = get(&volt, &format!("/v1/shape/items?offset={last_offset}&shape_id={shape_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), json!([{"headers": {"control": "up-to-date"}}]));

    // After a change, offset=-1 returns the snapshot and the log so far in one response.
    let (_, headers, body) = get(&volt, "/v1/shape/items?offset=-1").await;
    assert_eq!(header(&headers, "x-electric-chunk-last-offset"), Some(last_offset.as_str()));
    let messages = json_of(&body);
    assert_eq!(messages.as_array().unwrap().len(), 4, "{messages}");
    assert_eq!(messages[2]["offset"], last_offset.as_str());

    // An unknown shape_id gets 409 pointing at the current shape.
    for path in ["/v1/shape/items?offset=0_0&shape_id=nope-1", "/v1//shape/items?offset=0_0&shape_id=nope-1"] {
        let (status, headers, body) = get(&volt, path).await;
        assert_eq!(status, 409, "{path}");
        assert_eq!(json_of(&body), json!([{"headers": {"control": "must-refetch"}}]));
        assert_eq!(header(&headers, "x-electric-shape-id"), Some(shape_id.as_str()));
        assert_eq!(header(&headers, "x-electric-chunk-last-offset"), Some(last_offset.as_str()));
        assert!(headers.contains_key("x-electric-schema"));
        let request_path = path.split('?').next().unwrap();
        assert_eq!(header(&headers, "location"), Some(format!("{request_path}?shape_id={shape_id}&offset=-1").as_str()));
        assert!(!headers.contains_key("cache-control"));
        assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    }
    // So does an offset past the shape's end.
    let (status, headers, _) = get(&volt, &format!("/v1/shape/items?offset=99999999999_0&shape_id={shape_id}")).await;
    assert_eq!(status, 409);
    assert_eq!(header(&headers, "x-electric-shape-id"), Some(shape_id.as_str()));

    // A request id from the client comes back; each other request gets its own.
    let response = volt
        .http
        .get(format!("{}/v1/shape/items?offset=-1", volt.base_url))
        .header("x-request-id", "client-request-id-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(header(response.headers(), "x-request-id"), Some("client-request-id-0001"));
    let (_, first, _) = get(&volt, "/v1/shape/items?offset=-1").await;
    let (_, second, _) = get(&volt, "/v1/shape/items?offset=-1").await;
    assert_ne!(header(&first, "x-request-id"), header(&second, "x-request-id"));

    // HEAD gets the headers without a body.
    let response = volt.http.head(format!("{}/v1/shape/items?offset=-1", volt.base_url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "x-electric-shape-id"), Some(shape_id.as_str()));
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_creates_a_new_shape_in_both_dialects() {
    let volt = start(2_000, true).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a');").await.unwrap();

    // 2024 dialect, by shape_id.
    let mut legacy = LegacyClient::new(&volt, "notes");
    legacy.follow_until(WAIT, |_| true).await;
    let first_id = legacy.shape_id.clone().unwrap();
    let (status, headers, body) = delete(&volt, &format!("/v1/shape/notes?shape_id={first_id}")).await;
    assert_eq!(status, 202, "{body}");
    assert!(body.is_empty());
    assert!(!headers.contains_key("access-control-allow-origin"));
    assert_eq!(legacy.poll().await, StatusCode::CONFLICT);
    let second_id = legacy.shape_id.clone().expect("the 409 names the new shape");
    assert_ne!(second_id, first_id);
    legacy.follow_until(WAIT, |client| client.rows.len() == 1).await;
    assert_eq!(legacy.shape_id.as_deref(), Some(second_id.as_str()));

    // 2024 dialect, by table; an unknown shape_id is accepted too.
    let (status, _, _) = delete(&volt, "/v1/shape/notes").await;
    assert_eq!(status, 202);
    let (_, headers, _) = get(&volt, "/v1/shape/notes?offset=-1").await;
    let third_id = header(&headers, "x-electric-shape-id").unwrap().to_owned();
    assert_ne!(third_id, second_id);
    let (status, _, _) = delete(&volt, "/v1/shape/notes?shape_id=nope-1").await;
    assert_eq!(status, 202);
    let (status, _, body) = delete(&volt, "/v1/shape/nope").await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&body), json!({"root_table": ["table not found"]}));

    // Current dialect, by handle: the shape is the one the 2024 dialect created.
    let mut current = volt.shape("notes");
    current.sync().await;
    assert_eq!(current.handle.as_deref(), Some(third_id.as_str()));
    let (status, headers, _) = delete(&volt, &format!("/v1/shape?handle={third_id}")).await;
    assert_eq!(status, 202);
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let (status, _, body) = delete(&volt, &format!("/v1/shape?handle={third_id}")).await;
    assert_eq!(status, 404);
    assert_eq!(json_of(&body), json!({"message": "No existing shape found"}));
    assert_eq!(current.poll().await, StatusCode::CONFLICT);
    current.sync().await;
    let fourth_id = current.handle.clone().unwrap();
    assert_ne!(fourth_id, third_id);

    // Current dialect, by definition, and with a handle that does not match it.
    sql.batch_execute("CREATE TABLE other (id int PRIMARY KEY)").await.unwrap();
    let mut other = volt.shape("other");
    other.sync().await;
    let other_handle = other.handle.clone().unwrap();
    let (status, _, body) = delete(&volt, &format!("/v1/shape?table=notes&handle={other_handle}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(json_of(&body)["message"].as_str().unwrap().contains("do not match"));
    let (status, _, _) = delete(&volt, &format!("/v1/shape?table=notes&handle={fourth_id}")).await;
    assert_eq!(status, 202);
    let (status, _, _) = delete(&volt, "/v1/shape?table=other").await;
    assert_eq!(status, 202);
    let (status, _, body) = delete(&volt, "/v1/shape?table=other").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = delete(&volt, "/v1/shape?table=nope").await;
    assert_eq!(status, 400);
    assert!(json_of(&body)["errors"]["table"][0].as_str().unwrap().contains("does not exist"));
    let (status, _, body) = delete(&volt, "/v1/shape").await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&body)["errors"]["handle"][0], "can't be blank when shape definition is missing");

    assert_eq!(current.poll().await, StatusCode::CONFLICT);
    current.sync().await;
    assert_ne!(current.handle.as_deref(), Some(fourth_id.as_str()));
    assert_eq!(current.rows_by("id"), select_rows(&sql, "notes", "id").await);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_dialects_follow_one_shape() {
    let volt = start(2_000, false).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE SCHEMA app;
         CREATE TABLE app.\"Tasks\" (id int PRIMARY KEY, title text, done bool);
         INSERT INTO app.\"Tasks\" VALUES (1, 'write', false), (2, 'test', NULL);",
    )
    .await
    .unwrap();
    let table = "app.\"Tasks\"";

    let mut legacy = LegacyClient::new(&volt, "app.Tasks");
    legacy.follow_until(WAIT, |_| true).await;
    let mut current = volt.shape(table);
    current.sync().await;
    assert_eq!(legacy.shape_id, current.handle, "both dialects must share one shape");
    assert_eq!(legacy.rows_by("id"), select_rows(&sql, table, "id").await);
    assert_eq!(current.rows_by("id"), select_rows(&sql, table, "id").await);

    let steps = [
        "INSERT INTO app.\"Tasks\" VALUES (3, 'ship', false)",
        "UPDATE app.\"Tasks\" SET done = true WHERE id = 1",
        "DELETE FROM app.\"Tasks\" WHERE id = 2",
        "UPDATE app.\"Tasks\" SET id = 30 WHERE id = 3",
        "BEGIN; INSERT INTO app.\"Tasks\" VALUES (4, NULL, NULL); UPDATE app.\"Tasks\" SET title = 'shipped' WHERE id = 30; COMMIT;",
    ];
    for statement in steps {
        sql.batch_execute(statement).await.unwrap();
        let expected = select_rows(&sql, table, "id").await;
        legacy.follow_until(WAIT, |client| client.rows_by("id") == expected).await;
        follow_until(&mut current, WAIT, |client| client.rows_by("id") == expected).await;
    }
    assert_eq!(legacy.refetches, 0);
    assert_eq!(current.refetches, 0);
    assert_eq!(legacy.shape_id, current.handle);
    volt.stop().await;
}
