//! Changes to a synced table that the replication stream shows late or not at all: its
//! replica identity, and the table being dropped or created again.

mod common;

use std::time::Duration;

use common::{follow_until, select_rows, TestVolt};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_identity_reset_rotates_shapes() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a');
         CREATE TABLE steady (id int PRIMARY KEY); INSERT INTO steady VALUES (1);",
    )
    .await
    .unwrap();
    let mut notes = volt.shape("notes");
    let mut steady = volt.shape("steady");
    notes.sync().await;
    steady.sync().await;

    sql.batch_execute("ALTER TABLE notes REPLICA IDENTITY DEFAULT; UPDATE notes SET body = 'b' WHERE id = 1;")
        .await
        .unwrap();
    sql.batch_execute("INSERT INTO steady VALUES (2)").await.unwrap();
    follow_until(&mut notes, WAIT, |c| c.refetches > 0 && c.up_to_date).await;
    assert_eq!(notes.rows_by("id"), select_rows(&sql, "notes", "id").await);

    // The new shape set FULL again, so updates carry old rows and reach the client.
    let identity: String = sql
        .query_one("SELECT relreplident::text FROM pg_class WHERE oid = 'notes'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(identity, "f");
    sql.batch_execute("UPDATE notes SET body = 'c' WHERE id = 1; INSERT INTO notes VALUES (2, 'd');").await.unwrap();
    follow_until(&mut notes, WAIT, |c| c.rows.len() == 2 && c.rows_by("id")["1"]["body"].as_deref() == Some("c")).await;
    assert_eq!(notes.rows_by("id"), select_rows(&sql, "notes", "id").await);
    assert_eq!(notes.refetches, 1, "the new shape must not be removed again");

    follow_until(&mut steady, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(steady.refetches, 0);
    volt.stop().await;
}

/// Polls `client` until Volt returns 409, without following the new handle.
async fn poll_until_conflict(client: &mut common::ShapeClient) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.refetches == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no 409 in time");
        client.poll().await;
    }
}

fn short_table_check(settings: &mut volt::config::Settings) {
    settings.table_check_interval = Duration::from_millis(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_table_rotates_shapes() {
    let volt = TestVolt::start_with(2_000, short_table_check).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE doomed (id int PRIMARY KEY, body text); INSERT INTO doomed VALUES (1, 'a');
         CREATE TABLE steady (id int PRIMARY KEY); INSERT INTO steady VALUES (1);",
    )
    .await
    .unwrap();
    let mut doomed = volt.shape("doomed");
    let mut steady = volt.shape("steady");
    doomed.sync().await;
    steady.sync().await;

    sql.batch_execute("DROP TABLE doomed").await.unwrap();
    // A live request parked when the check removes the shape gets 409. One that arrives after
    // the removal finds no table and gets 400 at once, after which the client stops too.
    let live_path = format!(
        "/v1/shape?table=doomed&handle={}&offset={}&live=true&cursor={}",
        doomed.handle.as_deref().unwrap(),
        doomed.offset,
        doomed.cursor
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the doomed shape was not removed in time");
        let response = volt.get(&live_path).await;
        match response.status().as_u16() {
            409 => break,
            400 => {
                let body = response.text().await.unwrap();
                assert!(body.contains("does not exist"), "{body}");
                break;
            }
            // The long poll timed out before the check ran.
            200 => continue,
            status => panic!("unexpected status {status}: {:?}", response.text().await),
        }
    }

    let response = volt.get("/v1/shape?table=doomed&offset=-1").await;
    assert_eq!(response.status().as_u16(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("does not exist"), "{body}");

    sql.batch_execute("INSERT INTO steady VALUES (2)").await.unwrap();
    follow_until(&mut steady, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(steady.refetches, 0);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_table_resyncs_clients() {
    let volt = TestVolt::start_with(2_000, short_table_check).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE reborn (id int PRIMARY KEY, body text); INSERT INTO reborn VALUES (1, 'old');
         CREATE TABLE steady (id int PRIMARY KEY); INSERT INTO steady VALUES (1);",
    )
    .await
    .unwrap();
    let mut reborn = volt.shape("reborn");
    let mut steady = volt.shape("steady");
    reborn.sync().await;
    steady.sync().await;

    // Same name and columns, so only the OID distinguishes the tables.
    sql.batch_execute(
        "DROP TABLE reborn; CREATE TABLE reborn (id int PRIMARY KEY, body text);
         INSERT INTO reborn VALUES (2, 'new'), (3, 'newer');",
    )
    .await
    .unwrap();
    poll_until_conflict(&mut reborn).await;
    follow_until(&mut reborn, WAIT, |c| c.up_to_date && c.rows.len() == 2).await;
    assert_eq!(reborn.rows_by("id"), select_rows(&sql, "reborn", "id").await);

    // The new shape follows the new table.
    sql.batch_execute("UPDATE reborn SET body = 'changed' WHERE id = 2").await.unwrap();
    follow_until(&mut reborn, WAIT, |c| c.rows_by("id")["2"]["body"].as_deref() == Some("changed")).await;
    assert_eq!(reborn.rows_by("id"), select_rows(&sql, "reborn", "id").await);
    assert_eq!(reborn.refetches, 1);

    sql.batch_execute("INSERT INTO steady VALUES (2)").await.unwrap();
    follow_until(&mut steady, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(steady.refetches, 0);
    volt.stop().await;
}

/// A new column shows in the stream only with the next write to the table, so without
/// writes only the table check notices it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_column_without_writes_rotates() {
    let volt = TestVolt::start_with(2_000, short_table_check).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE quiet (id int PRIMARY KEY, body text); INSERT INTO quiet VALUES (1, 'a');")
        .await
        .unwrap();
    let mut quiet = volt.shape("quiet");
    quiet.sync().await;

    sql.batch_execute("ALTER TABLE quiet ADD COLUMN extra int DEFAULT 5").await.unwrap();
    poll_until_conflict(&mut quiet).await;
    follow_until(&mut quiet, WAIT, |c| c.up_to_date && c.rows.len() == 1).await;
    assert_eq!(quiet.rows_by("id"), select_rows(&sql, "quiet", "id").await);
    assert_eq!(quiet.rows_by("id")["1"]["extra"].as_deref(), Some("5"));
    volt.stop().await;
}
