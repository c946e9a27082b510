//! `volt-bench sync`: initial sync and latency, beside a reference on the same machine.
//!
//! * Initial sync: rows per second a new client receives for a table, beside the time
//!   `COPY (SELECT * FROM t) TO STDOUT` takes to stream the same table out of Postgres.
//!   "cold" is the first client (Volt takes the snapshot while serving it); "warm" is a
//!   second client served from Volt's stored snapshot.
//! * Commit-to-client latency: a client waits in a live request; the time from sending a
//!   single-row UPDATE (autocommit) to receiving the change, over many samples.
//!
//! Volt runs in this process on its embedded PostgreSQL with default durability settings.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};


use clap::Parser;
use futures_util::{pin_mut, StreamExt};
use serde_json::value::RawValue;
use tokio_postgres::{Client, NoTls};
use volt::config::Args as VoltArgs;
use volt::Server;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// pgbench scale factor: pgbench_accounts gets 100,000 rows per unit.
    #[arg(long, default_value_t = 10)]
    scale: u32,
    /// Samples of the commit-to-client latency.
    #[arg(long, default_value_t = 100)]
    latency_samples: usize,
    /// The Chinook SQL script; defaults to the copy in the repository's testdata folder.
    #[arg(long)]
    chinook: Option<PathBuf>,
    /// Repetitions of each timing; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Measure only these tables (all tables of the public schema when absent).
    #[arg(long = "table")]
    tables: Vec<String>,
}

/// Runs the initial-sync and latency benchmarks.
pub async fn run(args: SyncArgs) {
    let storage = tempfile::Builder::new().prefix("volt-bench-").tempdir_in("/tmp").expect("temporary directory");
    std::fs::set_permissions(storage.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let mut settings = VoltArgs::parse_from(["volt"]).into_settings().expect("default settings");
    settings.database_url = None;
    settings.storage_dir = storage.path().to_owned();
    settings.port = 0;
    let server = Server::start(settings).await.expect("Volt starts");
    let base_url = format!("http://{}/v1/shape", server.address);
    let database_url = server.database_url.clone();
    let (sql, connection) = tokio_postgres::connect(&database_url, NoTls).await.expect("connect");
    tokio::spawn(connection);

    load_data(&database_url, &args);
    let http = reqwest::Client::new();

    println!("initial sync, best of {} (rows/s = rows / seconds)", args.repeat);
    println!("{:<22} {:>9} {:>12} {:>14} {:>14} {:>14} {:>8}", "table", "rows", "COPY s", "COPY rows/s", "Volt cold s", "Volt warm s", "warm/COPY");
    let mut tables: Vec<String> = sql
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    tables.retain(|table| table != "pgbench_history" && (args.tables.is_empty() || args.tables.contains(table)));
    for table in &tables {
        let copy = best_of(args.repeat, || copy_out(&sql, table)).await;
        let (cold, rows) = sync_shape(&http, &base_url, table).await;
        let warm = best_of(args.repeat, || async { sync_shape(&http, &base_url, table).await.0 }).await;
        println!(
            "{:<22} {:>9} {:>12.4} {:>14.0} {:>14.4} {:>14.4} {:>8.2}",
            table,
            rows,
            copy.as_secs_f64(),
            rows as f64 / copy.as_secs_f64(),
            cold.as_secs_f64(),
            warm.as_secs_f64(),
            copy.as_secs_f64() / warm.as_secs_f64(),
        );
    }

    let latencies = measure_latency(&sql, &http, &base_url, args.latency_samples).await;
    println!(
        "commit-to-client latency over {} single-row updates: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0)
    );
    server.stop().await;
}

/// The data sets kept in the repository.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Loads Chinook (into the `postgres` database, without its database-switching lines) and
/// initialises pgbench.
fn load_data(database_url: &str, args: &SyncArgs) {
    let chinook = args.chinook.clone().unwrap_or_else(|| testdata_dir().join("datasets/chinook/chinook.sql"));
    let script = std::fs::read_to_string(&chinook).unwrap_or_else(|error| panic!("reading {}: {error}", chinook.display()));
    let script: String = script
        .lines()
        .filter(|line| {
            let upper = line.trim_start().to_ascii_uppercase();
            !(upper.starts_with("DROP DATABASE") || upper.starts_with("CREATE DATABASE") || upper.starts_with("\\C"))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let script_path = std::env::temp_dir().join(format!("volt-bench-chinook-{}.sql", std::process::id()));
    std::fs::write(&script_path, script).expect("writing the script");
    run_command(Command::new("psql").args(["-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f"]).arg(&script_path));
    let _ = std::fs::remove_file(&script_path);
    run_command(Command::new("pgbench").args(["-i", "-q", "-s", &args.scale.to_string(), database_url]));
}

fn run_command(command: &mut Command) {
    let output = command.output().unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

async fn best_of<F, Fut>(times: usize, mut measure: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut best = Duration::MAX;
    for _ in 0..times.max(1) {
        best = best.min(measure().await);
    }
    best
}

/// Streams a table out with COPY and drops the bytes: the reference for moving rows.
async fn copy_out(sql: &Client, table: &str) -> Duration {
    let started = Instant::now();
    let stream = sql.copy_out(&format!("COPY (SELECT * FROM {table}) TO STDOUT")).await.expect("copy");
    pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.expect("copy data").len();
    }
    assert!(bytes > 0 || table.starts_with("pgbench"), "{table} is empty");
    started.elapsed()
}

/// Syncs a table from `offset=-1` until up to date, as a new client does. Returns the time
/// and the number of rows received.
pub async fn sync_shape(http: &reqwest::Client, base_url: &str, table: &str) -> (Duration, usize) {
    let started = Instant::now();
    let mut offset = "-1".to_owned();
    let mut handle: Option<String> = None;
    let mut rows = 0;
    loop {
        let mut query = vec![("table", table.to_owned()), ("offset", offset.clone())];
        if let Some(handle) = &handle {
            query.push(("handle", handle.clone()));
        }
        let response = http.get(base_url).query(&query).send().await.expect("request");
        assert_eq!(response.status(), 200, "{table}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        handle = Some(header("electric-handle"));
        offset = header("electric-offset");
        let up_to_date = response.headers().contains_key("electric-up-to-date");
        let body = response.bytes().await.expect("body");
        let messages: Vec<&RawValue> = serde_json::from_slice(&body).expect("JSON array");
        rows += messages.iter().filter(|message| message.get().starts_with("{\"key\"")).count();
        if up_to_date {
            return (started.elapsed(), rows);
        }
    }
}

async fn measure_latency(sql: &Client, http: &reqwest::Client, base_url: &str, samples: usize) -> Vec<f64> {
    sql.batch_execute("CREATE TABLE latency (id int PRIMARY KEY, v int); INSERT INTO latency VALUES (1, 0);")
        .await
        .unwrap();
    let (_, _) = sync_shape(http, base_url, "latency").await;
    let first = http.get(base_url).query(&[("table", "latency"), ("offset", "-1")]).send().await.unwrap();
    let handle = first.headers()["electric-handle"].to_str().unwrap().to_owned();
    let mut offset = "0_0".to_owned();
    // Move to the end of the log.
    loop {
        let response = http.get(base_url).query(&[("table", "latency"), ("offset", &offset), ("handle", &handle)]).send().await.unwrap();
        offset = response.headers()["electric-offset"].to_str().unwrap().to_owned();
        if response.headers().contains_key("electric-up-to-date") {
            break;
        }
    }

    let mut latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let request = http
            .get(base_url)
            .query(&[("table", "latency"), ("offset", &offset), ("handle", &handle), ("live", "true")])
            .send();
        let waiting = tokio::spawn(request);
        // Give the live request time to reach Volt and park before the commit; the latency
        // is measured from the commit, not from the request.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        sql.execute("UPDATE latency SET v = $1 WHERE id = 1", &[&(sample as i32 + 1)]).await.unwrap();
        let response = waiting.await.unwrap().unwrap();
        let received = response.headers()["electric-offset"].to_str().unwrap().to_owned();
        let _ = response.bytes().await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_ne!(received, offset, "the live request returned without the change");
        offset = received;
    }
    latencies
}

pub fn percentile(values: &[f64], percent: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((percent / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index]
}
