//! `volt-bench routing`: what many shapes on one table cost the replication path.
//!
//! * Throughput with many indexed shapes: the same ingest backlog drained by Volt with one
//!   shape `owner_id = 1`, then with N shapes `owner_id = k` (every change lands in one of
//!   them), reported as the ratio of the two throughputs.
//! * Cost of clauses the index cannot serve: a backlog of changes that match no shape, drained
//!   with M shapes `title ILIKE '%k%'` and with none; the difference per change per shape.
//!
//! A backlog is built while Volt is stopped and timed from Volt's start until the slot
//! confirms its end, so both runs of a pair do the same work from the same start.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::Client;

use crate::durability::{current_lsn, wait_confirmed, VoltProcess};

#[derive(Debug, clap::Args)]
pub struct RoutingArgs {
    /// Shapes of the form `owner_id = k` for the throughput ratio.
    #[arg(long, default_value_t = 10_000)]
    indexed_shapes: usize,
    /// Shapes of the form `title ILIKE '%k%'` for the per-shape cost.
    #[arg(long, default_value_t = 1_000)]
    unindexed_shapes: usize,
    /// Rows inserted for each backlog, in transactions of 1,000.
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
}

struct Bench {
    sql: Client,
    http: reqwest::Client,
    database_url: String,
    storage: std::path::PathBuf,
    port: u16,
    base_url: String,
    next_id: u64,
}

impl Bench {
    async fn create_shapes(&self, clauses: Vec<String>) -> Duration {
        let started = Instant::now();
        let statuses: Vec<u16> = futures_util::stream::iter(clauses)
            .map(|clause| {
                let http = self.http.clone();
                let base_url = self.base_url.clone();
                async move {
                    let response = http.get(&base_url).query(&[("table", "tasks"), ("offset", "-1"), ("where", &clause)]).send().await.unwrap();
                    response.status().as_u16()
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        assert!(statuses.iter().all(|&status| status == 200), "every shape must be created");
        started.elapsed()
    }

    /// Builds a backlog while Volt is stopped, then times Volt draining it.
    async fn drain_backlog(&mut self, rows: u64, owners: u64, title: &str) -> Duration {
        let mut volt = VoltProcess::spawn(&self.database_url, &self.storage, self.port);
        volt.wait_ready(&self.http).await;
        let caught_up = current_lsn(&self.sql).await;
        wait_confirmed(&self.sql, "volt_slot", caught_up).await;
        volt.stop();
        for _ in 0..rows.div_ceil(1_000) {
            let first = self.next_id;
            self.next_id += 1_000;
            self.sql
                .batch_execute(&format!(
                    "INSERT INTO tasks SELECT g, (g % {owners}) + 1, '{title}' FROM generate_series({first}, {}) g",
                    first + 999
                ))
                .await
                .unwrap();
        }
        let target = current_lsn(&self.sql).await;
        let mut volt = VoltProcess::spawn(&self.database_url, &self.storage, self.port);
        volt.wait_ready(&self.http).await;
        // Timed from readiness: restoring the shapes at start-up is measured on its own
        // (`volt-bench durability`), and this figure is the stream's drain rate.
        let started = Instant::now();
        wait_confirmed(&self.sql, "volt_slot", target).await;
        let elapsed = started.elapsed();
        volt.stop();
        elapsed
    }
}

pub async fn run(args: RoutingArgs) {
    // Dropping `_postgres` at the end of the run stops the cluster.
    let crate::cluster::Cluster { dir, postgres: _postgres, database_url, sql } = crate::cluster::start("volt-bench-").await;
    sql.batch_execute("CREATE TABLE tasks (id bigint PRIMARY KEY, owner_id int NOT NULL, title text NOT NULL); CREATE INDEX ON tasks (owner_id);")
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut bench = Bench {
        sql,
        http: reqwest::Client::new(),
        storage: storage_dir(dir.path(), "one"),
        database_url,
        port,
        base_url: format!("http://127.0.0.1:{port}/v1/shape"),
        next_id: 1,
    };
    let owners = args.indexed_shapes as u64;

    // One shape, then many, each on its own storage and slot position.
    let mut volt = VoltProcess::spawn(&bench.database_url, &bench.storage, port);
    volt.wait_ready(&bench.http).await;
    bench.create_shapes(vec!["owner_id = 1".to_owned()]).await;
    volt.stop();
    let one = bench.drain_backlog(args.rows, owners, "task").await;

    let mut volt = VoltProcess::spawn(&bench.database_url, &bench.storage, port);
    volt.wait_ready(&bench.http).await;
    let created = bench.create_shapes((1..=owners).map(|owner| format!("owner_id = {owner}")).collect()).await;
    volt.stop();
    let many = bench.drain_backlog(args.rows, owners, "task").await;
    println!(
        "indexed routing: {} rows with 1 shape {:.2} s ({:.0} rows/s); with {} shapes owner_id = k {:.2} s ({:.0} rows/s); \
         throughput ratio {:.2} (shapes created in {:.1} s)",
        args.rows,
        one.as_secs_f64(),
        args.rows as f64 / one.as_secs_f64(),
        args.indexed_shapes,
        many.as_secs_f64(),
        args.rows as f64 / many.as_secs_f64(),
        one.as_secs_f64() / many.as_secs_f64(),
        created.as_secs_f64()
    );

    // Clauses the index cannot serve, on a fresh storage and a fresh table state.
    bench.sql.batch_execute("TRUNCATE tasks").await.unwrap();
    bench.storage = storage_dir(dir.path(), "unindexed");
    let baseline = bench.drain_backlog(args.rows, owners, "no digits here").await;
    let mut volt = VoltProcess::spawn(&bench.database_url, &bench.storage, port);
    volt.wait_ready(&bench.http).await;
    bench.create_shapes((1..=args.unindexed_shapes).map(|k| format!("title ILIKE '%{k}%'")).collect()).await;
    volt.stop();
    let filtered = bench.drain_backlog(args.rows, owners, "no digits here").await;
    let per_change_per_shape_ns =
        (filtered.as_secs_f64() - baseline.as_secs_f64()).max(0.0) * 1e9 / (args.rows as f64 * args.unindexed_shapes as f64);
    println!(
        "unindexed clauses: {} changes matching no shape, drained in {:.2} s with no shapes and {:.2} s with {} shapes title ILIKE '%k%': \
         {:.0} ns per change per shape",
        args.rows,
        baseline.as_secs_f64(),
        filtered.as_secs_f64(),
        args.unindexed_shapes,
        per_change_per_shape_ns
    );
}

fn storage_dir(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
