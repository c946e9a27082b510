//! Shapes survive a restart: clients continue with their handle and offset.

mod common;

use std::time::Duration;

use common::{follow_until, select_rows, TestPostgres, TestVolt};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_refetch() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT g, 'v' || g FROM generate_series(1, 50) g;")
        .await
        .unwrap();
    let mut client = volt.shape("kept");
    client.sync().await;
    sql.batch_execute("UPDATE kept SET v = 'changed' WHERE id <= 10; DELETE FROM kept WHERE id > 45;").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 45).await;
    let handle = client.handle.clone();

    // Changes made while Volt is down arrive after the restart, from the slot.
    let volt = volt.restart_with_writes(|| async {
        sql.batch_execute("INSERT INTO kept VALUES (100, 'while down'); UPDATE kept SET v = 'again' WHERE id = 1;").await.unwrap();
    })
    .await;
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("100")).await;
    assert_eq!(client.handle, handle);
    assert_eq!(client.refetches, 0);
    assert_eq!(client.rows_by("id"), select_rows(&sql, "kept", "id").await);

    // A new client gets the same shape: snapshot plus the log kept across the restart.
    let mut second = volt.shape("kept");
    second.sync().await;
    assert_eq!(second.handle, handle);
    assert_eq!(second.rows_by("id"), select_rows(&sql, "kept", "id").await);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_cut() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE torn (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("torn");
    client.sync().await;
    sql.batch_execute("INSERT INTO torn VALUES (1)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 1).await;

    // Bytes past the durable end, as a crash in the middle of a write leaves them.
    let handle = client.handle.clone().unwrap();
    let log = volt.storage_dir().join("shapes").join(&handle).join("log.records");
    let storage = volt.storage_dir().to_owned();
    let volt = volt
        .restart_with_writes(|| async {
            use std::io::Write;
            std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(&[7, 0, 0, 0, 1, 2]).unwrap();
        })
        .await;
    assert!(storage.exists());
    sql.batch_execute("INSERT INTO torn VALUES (2)").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(client.refetches, 0);
    assert_eq!(client.rows_by("id"), select_rows(&sql, "torn", "id").await);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_log_record_makes_clients_resync() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE damaged (id int PRIMARY KEY, v text); INSERT INTO damaged VALUES (1, 'a');").await.unwrap();
    let mut client = volt.shape("damaged");
    client.sync().await;
    sql.batch_execute("UPDATE damaged SET v = 'b'").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id")["1"]["v"].as_deref() == Some("b")).await;

    // Flip a byte inside the stored entry: its checksum no longer matches.
    let handle = client.handle.clone().unwrap();
    let log = volt.storage_dir().join("shapes").join(&handle).join("log.records");
    let volt = volt
        .restart_with_writes(|| async {
            let mut bytes = std::fs::read(&log).unwrap();
            let last = bytes.len() - 2;
            bytes[last] ^= 0x55;
            std::fs::write(&log, bytes).unwrap();
        })
        .await;
    let mut fresh = volt.shape("damaged");
    fresh.sync().await;
    assert_eq!(fresh.rows_by("id"), select_rows(&sql, "damaged", "id").await);
    assert!(fresh.refetches >= 1, "reading the damaged log must send the client back to a new shape");
    assert_ne!(fresh.handle.as_deref(), Some(handle.as_str()));
    volt.stop().await;
}

/// Storage wiped while Volt was stopped: the old handles are unknown, so clients get 409 and
/// resync onto new shapes rather than missing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_storage_makes_clients_resync() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE wiped (id int PRIMARY KEY); INSERT INTO wiped VALUES (1);").await.unwrap();
    let mut client = volt.shape("wiped");
    client.sync().await;
    let old_handle = client.handle.clone();

    let storage = volt.storage_dir().to_owned();
    let volt = volt
        .restart_with_writes(|| async {
            for entry in std::fs::read_dir(&storage).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
            sql.batch_execute("INSERT INTO wiped VALUES (2)").await.unwrap();
        })
        .await;
    follow_until(&mut client, WAIT, |c| c.refetches > 0 && c.up_to_date && c.rows.len() == 2).await;
    assert_ne!(client.handle, old_handle);
    assert_eq!(client.rows_by("id"), select_rows(&sql, "wiped", "id").await);
    volt.stop().await;
}

/// Postgres removed WAL the slot still needed (`wal_status = lost`) while Volt was stopped:
/// Volt creates the slot again and drops the stored shapes, so clients resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_slot_makes_clients_resync() {
    let postgres = TestPostgres::start_with(&[("max_slot_wal_keep_size", "1MB"), ("max_wal_size", "32MB"), ("min_wal_size", "32MB")]).await;
    let url = postgres.url();
    let volt = TestVolt::start_with(1_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE kept (id int PRIMARY KEY, filler text); INSERT INTO kept VALUES (1, 'a');").await.unwrap();
    let mut client = volt.shape("kept");
    client.sync().await;
    let old_handle = client.handle.clone();

    let volt = volt
        .restart_with_writes(|| async {
            // Enough WAL to pass the slot's limit, then checkpoints that remove it.
            for round in 1..=4 {
                let first = round * 100_000;
                sql.batch_execute(&format!(
                    "INSERT INTO kept SELECT g, repeat('x', 500) FROM generate_series({first}, {first} + 20000) g; CHECKPOINT;"
                ))
                .await
                .unwrap();
            }
            sql.batch_execute("SELECT pg_switch_wal(); CHECKPOINT;").await.unwrap();
            let status: Option<String> = sql
                .query_one("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'volt_slot'", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(status.as_deref(), Some("lost"), "the test must invalidate the slot");
        })
        .await;
    sql.batch_execute("INSERT INTO kept VALUES (-1, 'marker')").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.refetches > 0 && c.up_to_date && c.rows_by("id").contains_key("-1")).await;
    assert_ne!(client.handle, old_handle);
    assert_eq!(client.rows_by("id"), select_rows(&sql, "kept", "id").await);
    volt.stop().await;
}
