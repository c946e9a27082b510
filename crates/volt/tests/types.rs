//! Column types: generated columns, which Postgres 15 does not replicate, and the text of
//! every built-in type as clients receive it.

mod common;

use std::time::Duration;

use common::{follow_until, select_query, TestVolt};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Returns the status and the `columns` error messages of a shape request.
async fn columns_errors(volt: &TestVolt, query: &str) -> (u16, Vec<String>) {
    let response = volt.get(&format!("/v1/shape?offset=-1&{query}")).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error body");
    let messages = body["errors"]["columns"]
        .as_array()
        .map(|messages| messages.iter().map(|message| message.as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    (status, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_columns_rejected() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE sized (id int PRIMARY KEY, width int, height int,
                             area int GENERATED ALWAYS AS (width * height) STORED);
         INSERT INTO sized (id, width, height) VALUES (1, 2, 3);",
    )
    .await
    .unwrap();

    let (status, messages) = columns_errors(&volt, "table=sized&columns=id,area").await;
    assert_eq!(status, 400);
    assert_eq!(messages, vec!["The following columns are generated and cannot be included in the shape: area".to_owned()]);

    let (status, messages) = columns_errors(&volt, "table=sized").await;
    assert_eq!(status, 400);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("The following columns are generated and cannot be included in the shape: area"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("`columns`"), "no hint to pass columns: {}", messages[0]);
    assert!(messages[0].contains("id, width, height"), "hint lists the other columns: {}", messages[0]);

    // The other columns sync, live changes included.
    let mut client = volt.shape_with("sized", &[("columns", "id,width,height")]);
    client.sync().await;
    sql.batch_execute("INSERT INTO sized (id, width, height) VALUES (2, 4, 5); UPDATE sized SET width = 7 WHERE id = 1;")
        .await
        .unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 2 && c.rows_by("id")["1"]["width"].as_deref() == Some("7")).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, "SELECT id, width, height FROM sized", "id").await);
    volt.stop().await;
}
