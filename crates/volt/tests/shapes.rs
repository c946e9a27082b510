//! Shape definitions beyond whole tables: column lists and replica modes.

mod common;

use std::time::Duration;

use common::{follow_until, select_query, TestVolt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_list_narrows_every_message() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE people (id int PRIMARY KEY, name text, secret text, age int);
         INSERT INTO people VALUES (1, 'ann', 's1', 30), (2, 'bob', 's2', 40);",
    )
    .await
    .unwrap();

    let mut client = volt.shape_with("people", &[("columns", "name,\"age\",id")]);
    client.sync().await;
    assert_eq!(client.rows_by("id"), select_query(&sql, "SELECT id, name, age FROM people", "id").await);

    // A change to an unselected column sends nothing; the next change proves it was skipped.
    sql.batch_execute("UPDATE people SET secret = 'changed' WHERE id = 1").await.unwrap();
    sql.batch_execute("UPDATE people SET age = 31 WHERE id = 1").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id")["1"]["age"].as_deref() == Some("31")).await;
    let changes: Vec<_> = client.received.iter().filter(|m| m["headers"]["lsn"].is_string()).collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["value"], json!({"id": "1", "age": "31"}));

    sql.batch_execute("INSERT INTO people VALUES (3, 'cy', 's3', 50)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 3).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, "SELECT id, name, age FROM people", "id").await);

    // The schema header lists only the selected columns.
    let response = volt.get("/v1/shape?table=people&offset=-1&columns=name,age,id").await;
    let schema: serde_json::Value = serde_json::from_str(response.headers()["electric-schema"].to_str().unwrap()).unwrap();
    let mut names: Vec<&String> = schema.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["age", "id", "name"]);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_list_errors_name_columns() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE pairs (a int, b int, c int, PRIMARY KEY (a, b))").await.unwrap();
    for (columns, expected) in [
        ("a,nope", "not found on the table: nope"),
        ("a,c", "missing: b"),
        ("\"\"", "zero-length"),
    ] {
        let response = volt.get(&format!("/v1/shape?table=pairs&offset=-1&columns={columns}")).await;
        assert_eq!(response.status(), 400, "{columns}");
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["errors"]["columns"][0].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(expected), "{columns}: {body}");
    }
    let response = volt.get("/v1/shape?table=pairs&offset=-1&replica=partial").await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"]["replica"][0], "is invalid");
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_full_sends_whole_rows() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE notes (id int PRIMARY KEY, title text, body text); INSERT INTO notes VALUES (1, 't', 'b');")
        .await
        .unwrap();
    let mut client = volt.shape_with("notes", &[("replica", "full")]);
    client.sync().await;

    sql.batch_execute("UPDATE notes SET title = 'T' WHERE id = 1").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id")["1"]["title"].as_deref() == Some("T")).await;
    let update = client.received.last().unwrap();
    assert_eq!(update["value"], json!({"id": "1", "title": "T", "body": "b"}));
    assert_eq!(update["old_value"], json!({"title": "t"}));

    sql.batch_execute("DELETE FROM notes WHERE id = 1").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.is_empty()).await;
    let delete = client.received.last().unwrap();
    assert_eq!(delete["value"], json!({"id": "1", "title": "T", "body": "b"}));
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_definitions_share_one_shape() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE shared (id int PRIMARY KEY, a int, b int)").await.unwrap();
    let handle = |query: &'static str| {
        let volt = &volt;
        async move {
            let response = volt.get(&format!("/v1/shape?offset=-1&{query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            response.headers()["electric-handle"].to_str().unwrap().to_owned()
        }
    };
    let whole = handle("table=shared").await;
    assert_eq!(handle("table=public.shared").await, whole);
    assert_eq!(handle("table=%22shared%22&replica=default").await, whole);
    assert_eq!(handle("table=shared&columns=id,a,b").await, whole);
    let narrow = handle("table=shared&columns=a,id").await;
    assert_ne!(narrow, whole);
    assert_eq!(handle("table=shared&columns=%22a%22,id").await, narrow);
    let full = handle("table=shared&replica=full").await;
    assert_ne!(full, whole);
    assert_ne!(full, narrow);
    volt.stop().await;
}
