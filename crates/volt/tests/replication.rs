//! The replication side under trouble: idle synced tables, a dropped slot, a second Volt,
//! a Postgres restart and a connection cut in the middle of a transaction.

mod common;

use std::time::Duration;

use common::{follow_until, select_rows, TestPostgres, TestVolt};
use tokio_postgres::Client;

const WAIT: Duration = Duration::from_secs(60);

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn slot_confirmed_lsn(sql: &Client) -> u64 {
    let row = sql
        .query_one("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'volt_slot'", &[])
        .await
        .unwrap();
    row.get::<_, i64>(0) as u64
}

/// Waits until `condition` holds, checking it again every few milliseconds; used where
/// Postgres offers no notification for the state awaited.
async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// While only tables without shapes are written, the slot still advances, so Postgres does
/// not keep WAL for Volt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_advances_while_unsynced_tables_change() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE synced (id int PRIMARY KEY); CREATE TABLE busy (id int, filler text);").await.unwrap();
    let mut client = volt.shape("synced");
    client.sync().await;

    sql.batch_execute("INSERT INTO busy SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g").await.unwrap();
    let target: i64 = sql.query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[]).await.unwrap().get(0);
    wait_until("the slot confirms the WAL of the unsynced writes", || async { slot_confirmed_lsn(&sql).await >= target as u64 }).await;
    volt.stop().await;
}

/// A slot dropped behind Volt's back loses changes: Volt creates it again and every client
/// resyncs onto a new shape instead of silently missing rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_slot_makes_clients_resync() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE fragile (id int PRIMARY KEY); INSERT INTO fragile VALUES (1);").await.unwrap();
    let mut client = volt.shape("fragile");
    client.sync().await;
    let first_handle = client.handle.clone();

    // Volt reconnects quickly, so terminate its walsender and drop the slot until both land
    // between two attempts.
    wait_until("the slot is dropped", || async {
        let _ = sql
            .batch_execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'volt_slot' AND active")
            .await;
        sql.batch_execute("SELECT pg_drop_replication_slot('volt_slot')").await.is_ok()
    })
    .await;
    sql.batch_execute("INSERT INTO fragile VALUES (2)").await.unwrap();
    wait_until("Volt created the slot again", || async {
        sql.query_opt("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'volt_slot'", &[]).await.unwrap().is_some()
    })
    .await;
    sql.batch_execute("INSERT INTO fragile VALUES (3)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.refetches > 0 && c.up_to_date && c.rows.len() == 3).await;
    assert_ne!(client.handle, first_handle);
    assert_eq!(client.rows_by("id"), select_rows(&sql, "fragile", "id").await);
    volt.stop().await;
}

/// Two Volt processes on one slot: only one streams, and the other waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_volt_on_the_same_slot_does_not_stream() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let first = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = first.sql().await;
    sql.batch_execute("CREATE TABLE single (id int PRIMARY KEY)").await.unwrap();
    let mut client = first.shape("single");
    client.sync().await;
    wait_until("the first Volt streams", || async {
        sql.query_opt("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'volt_slot' AND active", &[]).await.unwrap().is_some()
    })
    .await;
    let first_pid: i32 = sql.query_one("SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'volt_slot'", &[]).await.unwrap().get(0);

    let second = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    // The second one tries to stream, is rejected because the slot is in use, and retries.
    sql.batch_execute("INSERT INTO single VALUES (1)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 1).await;
    let walsenders: i64 = sql
        .query_one("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'volt replication'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(walsenders, 1);
    let pid: i32 = sql.query_one("SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'volt_slot'", &[]).await.unwrap().get(0);
    assert_eq!(pid, first_pid, "the slot must stay with the first Volt");
    second.stop().await;
    first.stop().await;
}

/// Postgres restarts while a writer commits: Volt reconnects, resumes from the slot, and the
/// client ends equal to `SELECT` without refetching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    let mut postgres = TestPostgres::start().await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = connect(&url).await;
    sql.batch_execute("CREATE TABLE steady (id int PRIMARY KEY, v int)").await.unwrap();
    let mut client = volt.shape("steady");
    client.sync().await;

    let writer_url = url.clone();
    let writer = tokio::spawn(async move {
        let mut written = 0;
        let mut client = connect(&writer_url).await;
        for id in 1..=3_000 {
            if client.batch_execute(&format!("INSERT INTO steady VALUES ({id}, {id})")).await.is_ok() {
                written += 1;
            } else {
                // The server restarts: reconnect and try the next row.
                loop {
                    match tokio_postgres::connect(&writer_url, tokio_postgres::NoTls).await {
                        Ok((new_client, connection)) => {
                            tokio::spawn(connection);
                            client = new_client;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }
        written
    });
    wait_until("some rows were written", || async {
        let count: i64 = sql.query_one("SELECT count(*) FROM steady", &[]).await.unwrap().get(0);
        count >= 500
    })
    .await;
    postgres.restart().await;
    let written = writer.await.unwrap();
    assert!(written > 500);

    let sql = connect(&url).await;
    sql.batch_execute("INSERT INTO steady VALUES (-1, -1)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "steady", "id").await);
    assert_eq!(client.refetches, 0);
    volt.stop().await;
}

/// The walsender is terminated while a large transaction streams: the partial transaction is
/// dropped and received again in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_transaction() {
    let volt = TestVolt::start(1_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE large (id int PRIMARY KEY, filler text)").await.unwrap();
    let mut client = volt.shape("large");
    client.sync().await;

    sql.batch_execute("INSERT INTO large SELECT g, repeat('y', 100) FROM generate_series(1, 100000) g").await.unwrap();
    sql.batch_execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'volt_slot' AND active")
        .await
        .unwrap();
    sql.batch_execute("INSERT INTO large VALUES (-1, 'marker')").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
    assert_eq!(client.rows.len(), 100_001);
    assert_eq!(client.refetches, 0);

    // Read the whole log again from the start: nothing may be stored twice.
    let mut fresh = volt.shape("large");
    fresh.sync().await;
    assert_eq!(fresh.rows_by("id"), select_rows(&sql, "large", "id").await);
    volt.stop().await;
}
