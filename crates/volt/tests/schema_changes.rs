//! Out-of-line values and changes to a synced table's definition.

mod common;

use std::time::Duration;

use common::{follow_until, select_rows, TestVolt};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Postgres does not resend an out-of-line value an update left unchanged; clients must still
/// hold it, never NULL or a placeholder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_values_survive_updates() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO docs VALUES (1, 'a', repeat('0123456789', 5000));",
    )
    .await
    .unwrap();
    let mut default = volt.shape("docs");
    let mut full = volt.shape_with("docs", &[("replica", "full")]);
    default.sync().await;
    full.sync().await;

    sql.batch_execute("UPDATE docs SET title = 'b' WHERE id = 1").await.unwrap();
    follow_until(&mut default, WAIT, |c| c.rows_by("id")["1"]["title"].as_deref() == Some("b")).await;
    follow_until(&mut full, WAIT, |c| c.rows_by("id")["1"]["title"].as_deref() == Some("b")).await;

    assert_eq!(default.received.last().unwrap()["value"], json!({"id": "1", "title": "b"}));
    let full_update = full.received.last().unwrap();
    assert_eq!(full_update["value"]["body"].as_str().map(str::len), Some(50_000));
    assert_eq!(full_update["old_value"], json!({"title": "a"}));
    assert_eq!(default.rows_by("id"), select_rows(&sql, "docs", "id").await);
    assert_eq!(full.rows_by("id"), select_rows(&sql, "docs", "id").await);

    // A delete under replica=full carries the whole old row, out-of-line value included.
    sql.batch_execute("DELETE FROM docs WHERE id = 1").await.unwrap();
    follow_until(&mut full, WAIT, |c| c.rows.is_empty()).await;
    assert_eq!(full.received.last().unwrap()["value"]["body"].as_str().map(str::len), Some(50_000));
    volt.stop().await;
}

/// TRUNCATE removes the table's shapes: clients get 409, resync onto a new shape, and a shape
/// on another table streams on without a refetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_makes_clients_resync() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE cut (id int PRIMARY KEY); INSERT INTO cut VALUES (1), (2);
         CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (1);",
    )
    .await
    .unwrap();
    let mut cut = volt.shape("cut");
    let mut other = volt.shape("other");
    cut.sync().await;
    other.sync().await;
    let first_handle = cut.handle.clone();

    sql.batch_execute("TRUNCATE cut; INSERT INTO cut VALUES (3);").await.unwrap();
    sql.batch_execute("INSERT INTO other VALUES (2)").await.unwrap();
    follow_until(&mut cut, WAIT, |c| c.refetches > 0 && c.up_to_date && c.rows_by("id").contains_key("3")).await;
    assert_ne!(cut.handle, first_handle);
    assert_eq!(cut.rows_by("id"), select_rows(&sql, "cut", "id").await);

    follow_until(&mut other, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(other.refetches, 0);
    volt.stop().await;
}

/// A column added to a synced table changes what its rows are: its shapes are removed when
/// the stream first describes the new table, and clients resync onto the new columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_column_makes_clients_resync() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE grows (id int PRIMARY KEY, a text); INSERT INTO grows VALUES (1, 'x');
         CREATE TABLE steady (id int PRIMARY KEY); INSERT INTO steady VALUES (1);",
    )
    .await
    .unwrap();
    let mut grows = volt.shape("grows");
    let mut steady = volt.shape("steady");
    grows.sync().await;
    steady.sync().await;

    sql.batch_execute("ALTER TABLE grows ADD COLUMN b int DEFAULT 7; INSERT INTO grows VALUES (2, 'y', 8);").await.unwrap();
    sql.batch_execute("INSERT INTO steady VALUES (2)").await.unwrap();
    follow_until(&mut grows, WAIT, |c| c.refetches > 0 && c.up_to_date && c.rows.len() == 2).await;
    assert_eq!(grows.rows_by("id"), select_rows(&sql, "grows", "id").await);
    assert_eq!(grows.rows_by("id")["1"]["b"].as_deref(), Some("7"));

    follow_until(&mut steady, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(steady.refetches, 0);
    volt.stop().await;
}

/// Renaming, retyping or dropping a column changes what a shape's rows are: each makes the
/// table's clients resync onto the new definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_changes_make_clients_resync() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE evolving (id int PRIMARY KEY, a int, b text, c text); INSERT INTO evolving VALUES (1, 1, 'x', 'y');")
        .await
        .unwrap();
    let mut client = volt.shape("evolving");
    client.sync().await;
    let changes = [
        "ALTER TABLE evolving RENAME COLUMN b TO renamed",
        "ALTER TABLE evolving ALTER COLUMN a TYPE bigint",
        "ALTER TABLE evolving DROP COLUMN c",
    ];
    for (step, change) in changes.iter().enumerate() {
        let refetches = client.refetches;
        let id = step as i32 + 10;
        sql.batch_execute(change).await.unwrap();
        sql.batch_execute(&format!("INSERT INTO evolving (id, a) VALUES ({id}, {id})")).await.unwrap();
        follow_until(&mut client, WAIT, |c| c.refetches > refetches && c.up_to_date && c.rows_by("id").contains_key(&id.to_string())).await;
        assert_eq!(client.rows_by("id"), select_rows(&sql, "evolving", "id").await, "after {change}");
    }
    assert!(client.rows_by("id")["1"].contains_key("renamed"));
    assert!(!client.rows_by("id")["1"].contains_key("c"));
    volt.stop().await;
}

/// A WHERE clause on an out-of-line column: an update of another column leaves the large
/// value unsent, and Volt must still judge the row by it, not by a placeholder or NULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toast_value_decides_the_filter() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE blobs (id int PRIMARY KEY, title text, body text);
         ALTER TABLE blobs ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO blobs VALUES (1, 'a', 'keep' || repeat('x', 40000)), (2, 'b', 'drop' || repeat('x', 40000));",
    )
    .await
    .unwrap();
    let oracle = "SELECT * FROM blobs WHERE body LIKE 'keep%'";
    for replica in ["default", "full"] {
        let mut client = volt.shape_with("blobs", &[("where", "body LIKE 'keep%'"), ("replica", replica)]);
        client.sync().await;
        assert_eq!(client.rows_by("id"), common::select_query(&sql, oracle, "id").await);
        let marker = if replica == "default" { 100 } else { 200 };
        sql.batch_execute("UPDATE blobs SET title = title || '!'").await.unwrap();
        sql.batch_execute(&format!("INSERT INTO blobs VALUES ({marker}, 'm', 'keep marker')")).await.unwrap();
        follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key(&marker.to_string())).await;
        assert_eq!(client.rows_by("id"), common::select_query(&sql, oracle, "id").await, "replica={replica}");
        assert_eq!(client.refetches, 0, "replica={replica}");
    }
    volt.stop().await;
}
