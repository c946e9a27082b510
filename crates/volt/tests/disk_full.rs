//! A full disk pauses Volt instead of losing or dropping anything: it keeps serving what it
//! has, acknowledges nothing new, and carries on by itself when space returns.
//!
//! The storage directory is a small tmpfs mounted by the test, which needs root (CI runs as
//! root); without the right to mount, the test says so and does nothing else.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{follow_until, select_rows, TestPostgres, TestVolt};

const WAIT: Duration = Duration::from_secs(60);

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"]).arg(path).status().ok()?;
        status.success().then(|| Tmpfs(path.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_pauses_and_resumes() {
    let mount_point = std::env::temp_dir().join(format!("volt-full-{}", std::process::id()));
    let Some(tmpfs) = Tmpfs::mount(&mount_point, "16M") else {
        eprintln!("full_disk_pauses_and_resumes needs permission to mount a tmpfs; not run");
        return;
    };
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let storage = tmpfs.0.clone();
    let volt = TestVolt::start_with(1_000, |settings| {
        settings.database_url = Some(url.clone());
        settings.storage_dir = storage.clone();
    })
    .await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE heavy (id int PRIMARY KEY, body text); INSERT INTO heavy VALUES (0, 'first');").await.unwrap();
    let mut client = volt.shape("heavy");
    client.sync().await;

    // Leave about 1 MiB free, then write more than that.
    let filler = storage.join("filler");
    let free = fs_free_bytes(&storage);
    std::fs::write(&filler, vec![0u8; free.saturating_sub(1 << 20) as usize]).unwrap();
    let before: i64 = sql.query_one("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots", &[]).await.unwrap().get(0);
    sql.batch_execute("INSERT INTO heavy SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 3000) g").await.unwrap();

    // The event: Volt used the last free bytes and now waits for space.
    let deadline = tokio::time::Instant::now() + WAIT;
    while fs_free_bytes(&storage) > 64 << 10 {
        assert!(tokio::time::Instant::now() < deadline, "Volt never filled the disk");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Volt keeps serving what it has: the stored rows, not the ones it could not store.
    let response = volt.get("/v1/health").await;
    assert_eq!(response.status(), 200);
    let mut reader = volt.shape("heavy");
    reader.sync().await;
    assert_eq!(reader.rows.len(), 1, "entries that are not durable must not be served");
    // Postgres keeps the WAL because nothing is acknowledged.
    let after: i64 = sql.query_one("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots", &[]).await.unwrap().get(0);
    let current: i64 = sql.query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[]).await.unwrap().get(0);
    assert!(after < current, "the slot must not pass WAL whose changes are not stored (before {before}, after {after})");

    std::fs::remove_file(&filler).unwrap();
    sql.batch_execute("INSERT INTO heavy VALUES (-1, 'marker')").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "heavy", "id").await);
    assert_eq!(client.refetches, 0);
    volt.stop().await;
    drop(tmpfs);
}

fn fs_free_bytes(path: &Path) -> u64 {
    let path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stats) }, 0);
    stats.f_bavail as u64 * stats.f_frsize as u64
}
