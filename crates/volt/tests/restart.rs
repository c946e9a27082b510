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
