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

    follow_until(&mut steady, WAIT, |c| c.rows.len() == 2).await;
    assert_eq!(steady.refetches, 0);
    volt.stop().await;
}
