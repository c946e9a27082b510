//! `volt-bench durability`: ingest with durability beside `pg_recvlogical` draining the same
//! WAL, peak memory while one large transaction streams through, and start-up time with many
//! shapes on disk. Volt runs as its own process (the `volt` binary beside this one), against a
//! PostgreSQL this benchmark starts with default durability settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::Client;

#[derive(Debug, clap::Args)]
pub struct DurabilityArgs {
    /// Rows inserted by the single transaction whose memory cost is measured.
    #[arg(long, default_value_t = 1_000_000)]
    large_transaction_rows: u64,
    /// Rows inserted (in transactions of 10,000) for the ingest comparison.
    #[arg(long, default_value_t = 1_000_000)]
    ingest_rows: u64,
    /// Shapes on disk when start-up time is measured.
    #[arg(long, default_value_t = 10_000)]
    shapes: usize,
}

/// The `volt` binary as a child process.
pub struct VoltProcess {
    child: Child,
    port: u16,
}

impl VoltProcess {
    pub fn spawn(database_url: &str, storage: &Path, port: u16) -> VoltProcess {
        Self::spawn_with_args(database_url, storage, port, &[])
    }

    /// Starts Volt like [`VoltProcess::spawn`], with `extra_args` added to its command line.
    pub fn spawn_with_args(database_url: &str, storage: &Path, port: u16, extra_args: &[String]) -> VoltProcess {
        let binary = std::env::current_exe().unwrap().with_file_name("volt");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(storage.join("volt.log")).unwrap();
        let child = Command::new(&binary)
            .args(["--storage-dir", storage.to_str().unwrap(), "--port", &port.to_string(), "--snapshot-concurrency-max", "8"])
            .args(extra_args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error} (build it with cargo build --release)", binary.display()));
        VoltProcess { child, port }
    }

    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("volt exited with {status}");
            }
            if let Ok(response) = http.get(format!("http://127.0.0.1:{}/v1/health", self.port)).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops Volt with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let _ = self.child.wait();
    }

    /// Process id of the running Volt.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak since the last reset, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resets the peak resident memory to the current value.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for VoltProcess {
    /// Stops a Volt still running, so that a benchmark that panics leaves no process behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

pub async fn current_lsn(sql: &Client) -> i64 {
    sql.query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[]).await.unwrap().get(0)
}

async fn confirmed_lsn(sql: &Client, slot: &str) -> i64 {
    sql.query_one("SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await
        .unwrap()
        .get(0)
}

/// Waits until `slot` confirmed `target`: everything before it is durable in Volt.
pub async fn wait_confirmed(sql: &Client, slot: &str, target: i64) {
    while confirmed_lsn(sql, slot).await < target {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn run(args: DurabilityArgs) {
    // Dropping `_postgres` at the end of the run stops the cluster.
    let crate::cluster::Cluster { dir, postgres: _postgres, database_url, sql } = crate::cluster::start("volt-bench-").await;
    let storage: PathBuf = dir.path().join("volt");
    std::fs::create_dir_all(&storage).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = reqwest::Client::new();
    let base_url = format!("http://127.0.0.1:{port}/v1/shape");
    let mut volt = VoltProcess::spawn(&database_url, &storage, port);
    volt.wait_ready(&http).await;

    // Peak memory while one large transaction streams through.
    sql.batch_execute("CREATE TABLE big (id bigint PRIMARY KEY, payload text)").await.unwrap();
    crate::sync::sync_shape(&http, &base_url, "big").await;
    let (idle_kib, _) = volt.memory_kib();
    volt.reset_peak();
    let started = Instant::now();
    sql.batch_execute(&format!(
        "INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, {}) g",
        args.large_transaction_rows
    ))
    .await
    .unwrap();
    let target = current_lsn(&sql).await;
    wait_confirmed(&sql, "volt_slot", target).await;
    let (_, peak_kib) = volt.memory_kib();
    println!(
        "large transaction: {} rows in one transaction, durable in Volt {:.2} s after the INSERT began; \
         resident memory idle {} KiB, peak {} KiB, growth {} KiB",
        args.large_transaction_rows,
        started.elapsed().as_secs_f64(),
        idle_kib,
        peak_kib,
        peak_kib.saturating_sub(idle_kib)
    );

    // Ingest: both consumers drain the same WAL backlog from the same position.
    sql.batch_execute("TRUNCATE big").await.unwrap();
    volt.stop();
    volt = VoltProcess::spawn(&database_url, &storage, port);
    volt.wait_ready(&http).await;
    crate::sync::sync_shape(&http, &base_url, "big").await;
    let caught_up = current_lsn(&sql).await;
    wait_confirmed(&sql, "volt_slot", caught_up).await;
    sql.batch_execute("SELECT pg_create_logical_replication_slot('bench_reference', 'pgoutput')").await.unwrap();
    volt.stop();
    let batches = args.ingest_rows.div_ceil(10_000);
    for batch in 0..batches {
        let first = batch * 10_000 + 1;
        sql.batch_execute(&format!("INSERT INTO big SELECT g, repeat('y', 50) FROM generate_series({first}, {}) g", first + 9_999))
            .await
            .unwrap();
    }
    let target = current_lsn(&sql).await;
    let end = format!("{:X}/{:X}", target >> 32, target & 0xFFFF_FFFF);

    let started = Instant::now();
    let status = Command::new("pg_recvlogical")
        .args(["-d", &database_url, "--slot", "bench_reference", "--start", "--endpos", &end, "--no-loop"])
        .args(["-o", "proto_version=1", "-o", "publication_names=volt_publication", "-f", "/dev/null"])
        .status()
        .expect("pg_recvlogical runs");
    let reference = started.elapsed();
    assert!(status.success(), "pg_recvlogical failed");

    let started = Instant::now();
    volt = VoltProcess::spawn(&database_url, &storage, port);
    volt.wait_ready(&http).await;
    wait_confirmed(&sql, "volt_slot", target).await;
    let ingest = started.elapsed();
    println!(
        "ingest of {} inserted rows ({} MiB of WAL): pg_recvlogical {:.2} s, Volt (durable in the shape log, start-up included) {:.2} s; \
         Volt's throughput is {:.2} of pg_recvlogical's",
        args.ingest_rows,
        (target - caught_up) >> 20,
        reference.as_secs_f64(),
        ingest.as_secs_f64(),
        reference.as_secs_f64() / ingest.as_secs_f64()
    );
    sql.batch_execute("SELECT pg_drop_replication_slot('bench_reference')").await.unwrap();

    // Start-up with many shapes: one per distinct column list of a 14-column table.
    let columns: Vec<String> = (1..=14).map(|index| format!("c{index}")).collect();
    sql.batch_execute(&format!(
        "CREATE TABLE wide (id int PRIMARY KEY, {}); INSERT INTO wide SELECT g, {} FROM generate_series(1, 5) g;",
        columns.iter().map(|column| format!("{column} int")).collect::<Vec<_>>().join(", "),
        columns.iter().map(|_| "g").collect::<Vec<_>>().join(", ")
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let lists: Vec<String> = (1..=args.shapes.min((1 << 14) - 1))
        .map(|mask| {
            let mut list = vec!["id".to_owned()];
            list.extend((0..14).filter(|bit| mask & (1 << bit) != 0).map(|bit| columns[bit].clone()));
            list.join(",")
        })
        .collect();
    let handles: Vec<(String, String)> = futures_util::stream::iter(lists.iter().cloned())
        .map(|list| {
            let http = http.clone();
            let base_url = base_url.clone();
            async move {
                let response = http.get(&base_url).query(&[("table", "wide"), ("offset", "-1"), ("columns", &list)]).send().await.unwrap();
                let status = response.status();
                let handle = response.headers().get("electric-handle").map(|value| value.to_str().unwrap().to_owned());
                assert_eq!(status, 200, "creating the shape for columns {list}: {}", response.text().await.unwrap_or_default());
                (list, handle.expect("electric-handle"))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let created = started.elapsed();
    println!("created {} shapes in {:.1} s ({:.0} shapes/s)", handles.len(), created.as_secs_f64(), handles.len() as f64 / created.as_secs_f64());

    volt.stop();
    let started = Instant::now();
    volt = VoltProcess::spawn(&database_url, &storage, port);
    volt.wait_ready(&http).await;
    let (list, handle) = &handles[handles.len() / 2];
    let response = http
        .get(&base_url)
        .query(&[("table", "wide"), ("offset", "0_inf"), ("handle", handle), ("columns", list)])
        .send()
        .await
        .unwrap();
    let serving = started.elapsed();
    assert_eq!(response.status(), 200, "a stored shape must be served again after the restart");
    println!(
        "start-up with {} shapes on disk: serving stored shapes {:.2} s after the process started",
        handles.len(),
        serving.as_secs_f64()
    );
    volt.stop();
}
