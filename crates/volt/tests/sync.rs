//! End-to-end tests of the Shape API against a real PostgreSQL started by Volt itself.

mod common;

use std::time::Duration;

use common::{follow_until, select_rows, TestVolt};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_changes_arrive_in_order() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, title text, n int);
         INSERT INTO items VALUES (1, 'one', 1), (2, 'two/2', NULL);",
    )
    .await
    .unwrap();

    let mut client = volt.shape("items");
    client.sync().await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "items", "id").await);

    sql.batch_execute("INSERT INTO items VALUES (3, 'three', 3)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 3).await;

    sql.batch_execute("UPDATE items SET title = 'uno' WHERE id = 1").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id")["1"]["title"].as_deref() == Some("uno")).await;
    let update = client.received.last().unwrap();
    assert_eq!(update["headers"]["operation"], "update");
    // An update carries the key and the changed columns only.
    assert_eq!(update["value"], serde_json::json!({"id": "1", "title": "uno"}));
    assert_eq!(update["headers"]["last"], true);

    sql.batch_execute("DELETE FROM items WHERE id = 3").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 2).await;

    sql.batch_execute("UPDATE items SET id = 20 WHERE id = 2").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("20")).await;
    let count = client.received.len();
    let (delete, insert) = (&client.received[count - 2], &client.received[count - 1]);
    assert_eq!(delete["headers"]["operation"], "delete");
    assert_eq!(delete["headers"]["key_change_to"], insert["key"]);
    assert_eq!(insert["headers"]["key_change_from"], delete["key"]);
    assert_eq!(insert["headers"]["op_position"].as_u64(), delete["headers"]["op_position"].as_u64().map(|op| op + 1));

    assert_eq!(client.rows_by("id"), select_rows(&sql, "items", "id").await);
    assert_eq!(client.refetches, 0);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_request_times_out_up_to_date() {
    let volt = TestVolt::start(300).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE quiet (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("quiet");
    client.sync().await;
    let offset = client.offset.clone();
    let response = volt
        .get(&format!("/v1/shape?table=quiet&offset={offset}&handle={}&live=true", client.handle.as_ref().unwrap()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["electric-has-data"], "false");
    assert_eq!(response.headers()["electric-offset"], offset.as_str());
    assert!(response.headers().contains_key("electric-cursor"));
    assert!(response.headers().contains_key("electric-up-to-date"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body[0]["headers"]["control"], "up-to-date");
    assert!(body[0]["headers"]["global_last_seen_lsn"].as_str().unwrap().parse::<u64>().is_ok());
    volt.stop().await;
}

/// Shapes created while writers commit must still equal `SELECT` once the writers stop: no
/// transaction in flight during a snapshot may be lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_taken_under_writes_stay_consistent() {
    const TABLES: usize = 12;
    const WRITERS: usize = 4;
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    for table in 0..TABLES {
        sql.batch_execute(&format!(
            "CREATE TABLE t{table} (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO t{table} SELECT g, 0 FROM generate_series(1, 200) g;"
        ))
        .await
        .unwrap();
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let client = volt.sql().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut round: u64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let table = (round as usize + writer) % TABLES;
                let id = (round * 7 + writer as u64 * 13) % 300 + 1;
                // Each transaction touches two tables, so transactions span shapes.
                let other = (table + 1) % TABLES;
                let statement = match round % 4 {
                    0 => format!("INSERT INTO t{table} VALUES ({id}, {round}) ON CONFLICT (id) DO UPDATE SET v = t{table}.v + 1"),
                    1 => format!("UPDATE t{table} SET v = v + 1 WHERE id % 10 = {}", id % 10),
                    2 => format!("DELETE FROM t{table} WHERE id = {id}"),
                    _ => format!("UPDATE t{table} SET id = id + 1000 WHERE id = {id}"),
                };
                let transaction = format!("BEGIN; {statement}; UPDATE t{other} SET v = v + 1 WHERE id = {}; COMMIT;", id % 200 + 1);
                if client.batch_execute(&transaction).await.is_err() {
                    // Key collisions from the key-changing update are expected; roll back.
                    let _ = client.batch_execute("ROLLBACK").await;
                }
            }
        }));
    }

    // Create the shapes one after another while the writers run.
    let mut clients = Vec::new();
    for table in 0..TABLES {
        let mut client = volt.shape(&format!("t{table}"));
        client.sync().await;
        clients.push(client);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    // A marker row committed after the writers stopped: once a client has it, the client has
    // seen every earlier transaction.
    for (table, client) in clients.iter_mut().enumerate() {
        sql.batch_execute(&format!("INSERT INTO t{table} VALUES (-1, -1)")).await.unwrap();
        follow_until(client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
        let expected = select_rows(&sql, &format!("t{table}"), "id").await;
        assert_eq!(client.rows_by("id"), expected, "t{table} differs from SELECT");
        assert_eq!(client.refetches, 0);
    }
    volt.stop().await;
}

/// Publishes tables the way Volt would, so a test can write to them before their shape
/// exists and the writes still reach the stream.
async fn prepublish(sql: &tokio_postgres::Client, tables: &[&str]) {
    for table in tables {
        sql.batch_execute(&format!(
            "ALTER TABLE {table} REPLICA IDENTITY FULL; ALTER PUBLICATION volt_publication ADD TABLE {table};"
        ))
        .await
        .unwrap();
    }
}

/// A transaction that committed before the snapshot but reaches the applier after the shape
/// registered (the stream is still busy with a large transaction) must be skipped: the
/// snapshot already has it. An older transaction is kept open so the skipped one lies between
/// the snapshot's xmin and xmax, where only the in-progress list tells it apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_skips_transactions_it_saw() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE busy (id int PRIMARY KEY, filler text); CREATE TABLE late (id int PRIMARY KEY, v int);")
        .await
        .unwrap();
    prepublish(&sql, &["busy", "late"]).await;
    let mut busy = volt.shape("busy");
    busy.sync().await;

    let blocker = volt.sql().await;
    blocker.batch_execute("CREATE TABLE unrelated (id int); BEGIN; INSERT INTO unrelated VALUES (1);").await.unwrap();
    sql.batch_execute("INSERT INTO busy SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g").await.unwrap();
    sql.batch_execute("INSERT INTO late VALUES (1, 1); UPDATE late SET v = 2 WHERE id = 1;").await.unwrap();
    let mut late = volt.shape("late");
    late.sync().await;
    assert_eq!(late.rows_by("id"), select_rows(&sql, "late", "id").await);
    blocker.batch_execute("COMMIT").await.unwrap();

    sql.batch_execute("INSERT INTO late VALUES (2, 2)").await.unwrap();
    follow_until(&mut late, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(late.rows_by("id"), select_rows(&sql, "late", "id").await);
    let changes: Vec<_> = late.received.iter().filter(|message| message["headers"]["lsn"].is_string()).collect();
    assert_eq!(changes.len(), 1, "only the insert after the snapshot arrives: {changes:?}");
    volt.stop().await;
}

/// A transaction still running while the snapshot is taken is invisible to it, so its
/// changes must come from the stream when it commits. A later transaction commits first, so
/// the open one sits in the snapshot's in-progress list rather than above its xmax.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_applies_transactions_in_flight() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE pending (id int PRIMARY KEY, v int); INSERT INTO pending VALUES (1, 1);").await.unwrap();
    prepublish(&sql, &["pending"]).await;

    let writer = volt.sql().await;
    writer.batch_execute("BEGIN; INSERT INTO pending VALUES (2, 2); UPDATE pending SET v = 10 WHERE id = 1;").await.unwrap();
    sql.batch_execute("CREATE TABLE later (id int)").await.unwrap();
    let mut client = volt.shape("pending");
    client.sync().await;
    assert_eq!(client.rows.len(), 1, "the snapshot must not see the open transaction");

    writer.batch_execute("COMMIT").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "pending", "id").await);
    volt.stop().await;
}

/// With a small chunk threshold, the snapshot and the log are served in many chunks; the
/// client still ends with every row, and every response stays near the threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_snapshot_and_log_sync_fully() {
    const CHUNK_BYTES: u64 = 4_000;
    let volt = TestVolt::start_with(2_000, |settings| settings.chunk_bytes_max = CHUNK_BYTES).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE wide (id int PRIMARY KEY, body text);
         INSERT INTO wide SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 500) g;",
    )
    .await
    .unwrap();

    let mut client = volt.shape("wide");
    let mut responses = 0;
    while !client.up_to_date {
        client.poll().await;
        responses += 1;
    }
    assert!(responses > 10, "500 rows of ~200 bytes must span many 4 kB chunks, got {responses} responses");
    assert_eq!(client.rows_by("id"), select_rows(&sql, "wide", "id").await);

    // A large transaction lands in the log as several chunks.
    sql.batch_execute("UPDATE wide SET body = upper(body)").await.unwrap();
    sql.batch_execute("INSERT INTO wide VALUES (-1, 'marker')").await.unwrap();
    let mut log_responses = 0;
    while !client.rows_by("id").contains_key("-1") {
        client.poll().await;
        log_responses += 1;
        assert!(log_responses < 1_000, "the log never reached the marker");
    }
    assert!(log_responses > 10, "the update of 500 rows must span many chunks, got {log_responses}");
    assert_eq!(client.rows_by("id"), select_rows(&sql, "wide", "id").await);

    // A second client syncs the same shape from the start, snapshot plus log.
    let mut second = volt.shape("wide");
    second.sync().await;
    assert_eq!(second.handle, client.handle);
    assert_eq!(second.rows_by("id"), select_rows(&sql, "wide", "id").await);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_and_schema_qualified_names() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        r#"CREATE SCHEMA "App Data";
           CREATE TABLE "App Data"."Order Items" ("Order" int, "line/no" int, note text, PRIMARY KEY ("Order", "line/no"));
           INSERT INTO "App Data"."Order Items" VALUES (1, 1, 'a'), (1, 2, NULL);"#,
    )
    .await
    .unwrap();
    let mut client = volt.shape(r#""App Data"."Order Items""#);
    client.sync().await;
    assert!(client.rows.contains_key(r#""App Data"."Order Items"/"1"/"2""#), "{:?}", client.rows.keys());
    sql.batch_execute(r#"UPDATE "App Data"."Order Items" SET note = 'b' WHERE "line/no" = 2"#).await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.values().any(|row| row["note"].as_deref() == Some("b"))).await;

    // Unquoted names fold to lower case, so this names another (missing) table.
    let response = volt.get("/v1/shape?table=App%20Data.Order%20Items&offset=-1").await;
    assert_eq!(response.status(), 400);
    volt.stop().await;
}

/// Unicode, reserved-word and punctuation-laden names work in `table`, `columns` and `where`,
/// and row keys are built the same way in the snapshot and in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_names_sync() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        r#"CREATE SCHEMA "Ünïcødé";
           CREATE TABLE "Ünïcødé"."select" ("from" int PRIMARY KEY, "a.b/c""d" text, "Größe" int);
           INSERT INTO "Ünïcødé"."select" VALUES (1, 'x/y', 10), (2, NULL, 20);"#,
    )
    .await
    .unwrap();
    let table = r#""Ünïcødé"."select""#;
    let columns = r#""from","a.b/c""d""#;
    let mut client = volt.shape_with(table, &[("columns", columns), ("where", r#""Größe" >= 10 AND "a.b/c""d" IS DISTINCT FROM 'z'"#)]);
    client.sync().await;
    let snapshot_keys: Vec<String> = client.rows.keys().cloned().collect();
    assert_eq!(client.rows_by("from")["1"]["a.b/c\"d"].as_deref(), Some("x/y"));

    // Delete and re-insert the same rows: the log's keys must equal the snapshot's.
    sql.batch_execute(r#"DELETE FROM "Ünïcødé"."select"; INSERT INTO "Ünïcødé"."select" VALUES (1, 'x/y', 10), (2, NULL, 20);"#)
        .await
        .unwrap();
    sql.batch_execute(r#"INSERT INTO "Ünïcødé"."select" VALUES (3, 'marker', 30)"#).await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 3).await;
    for key in &snapshot_keys {
        assert!(client.rows.contains_key(key), "the log rebuilt row {key} under another key: {:?}", client.rows.keys());
    }
    assert_eq!(client.refetches, 0);
    volt.stop().await;
}
