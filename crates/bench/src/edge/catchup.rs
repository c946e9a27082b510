//! Catch-up serving beside nginx.
//!
//! A shape's log is made large by inserting rows after its (empty) snapshot. A client's sync
//! from `offset=-1` records every request it sends to Volt and the exact bytes of each response.
//! Those bytes are written as static files, and the same load tool then requests the log's
//! chunks from Volt and the files from nginx, on the same number of keep-alive connections
//! for the same time. The same is done for the snapshot chunks of a large table.

use std::time::Duration;

use super::http1::{self, Connection, LoadReport, LoadRequest};
use super::nginx::Nginx;
use super::{sync_to_head, Edge, EdgeArgs};
use crate::durability::{current_lsn, wait_confirmed};

/// Rows per INSERT transaction while the log is built.
const ROWS_PER_TRANSACTION: u64 = 10_000;

/// Requests of one kind (log or snapshot chunks), as Volt's targets and as nginx's files.
struct RequestSet {
    name: &'static str,
    volt: Vec<LoadRequest>,
    nginx: Vec<LoadRequest>,
}

pub async fn run(edge: &Edge, args: &EdgeArgs) {
    let volt_args: Vec<String> = match args.catchup_chunk_cache_bytes {
        Some(bytes) => vec!["--chunk-cache-bytes-max".to_owned(), bytes.to_string()],
        None => Vec::new(),
    };
    let mut volt = edge.start_volt(&volt_args).await;
    let mut connection = Connection::open(edge.address).await.expect("connecting to Volt");

    // The log: an empty table gets its shape, then every row arrives as a change.
    edge.sql
        .batch_execute("CREATE TABLE catchup_log (id bigint PRIMARY KEY, payload text NOT NULL)")
        .await
        .expect("creating catchup_log");
    sync_to_head(&mut connection, "catchup_log", false).await;
    for first in (1..=args.log_rows).step_by(ROWS_PER_TRANSACTION as usize) {
        let last = (first + ROWS_PER_TRANSACTION - 1).min(args.log_rows);
        edge.sql
            .batch_execute(&format!(
                "INSERT INTO catchup_log SELECT g, repeat('x', {}) FROM generate_series({first}, {last}) g",
                args.payload_chars
            ))
            .await
            .expect("inserting log rows");
    }
    wait_confirmed(&edge.sql, "volt_slot", current_lsn(&edge.sql).await).await;

    // The snapshot: the rows exist before the shape.
    let mut snapshot_chunks = Vec::new();
    if args.snapshot_rows > 0 {
        edge.sql
            .batch_execute(&format!(
                "CREATE TABLE catchup_snapshot (id bigint PRIMARY KEY, payload text NOT NULL);
                 INSERT INTO catchup_snapshot SELECT g, repeat('x', {}) FROM generate_series(1, {}) g",
                args.payload_chars, args.snapshot_rows
            ))
            .await
            .expect("creating catchup_snapshot");
        let (fetched, _) = sync_to_head(&mut connection, "catchup_snapshot", true).await;
        snapshot_chunks = fetched.into_iter().filter(|response| response.next_offset.starts_with("0_")).collect();
    }

    // Fetched last, so that the `up-to-date` message ending the log carries the position
    // Volt keeps serving while nothing is written.
    let (fetched, _) = sync_to_head(&mut connection, "catchup_log", true).await;
    let log_chunks: Vec<_> = fetched.into_iter().filter(|response| !response.next_offset.starts_with("0_")).collect();

    let root = edge.dir.join("www");
    std::fs::create_dir_all(&root).expect("creating nginx's root");
    let mut sets = vec![write_files(&root, "log", &log_chunks)];
    if !snapshot_chunks.is_empty() {
        sets.push(write_files(&root, "snapshot", &snapshot_chunks));
    }
    drop(connection);

    let nginx_port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let nginx_address = std::net::SocketAddr::from(([127, 0, 0, 1], nginx_port));
    let nginx_dir = edge.dir.join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("creating nginx's directory");
    let mut nginx = Nginx::start(&args.nginx, &nginx_dir, &root, nginx_address).await;
    check_same_bytes(&nginx, &sets, &log_chunks, &snapshot_chunks).await;

    let duration = Duration::from_secs(args.load_s);
    println!(
        "catch-up serving: {} keep-alive connections, one request at a time on each; runs per server: {}, of {} s each, \
         alternating; Volt and nginx (worker_processes auto) each use both cores",
        args.connections, args.load_rounds, args.load_s
    );
    for set in &sets {
        let body_bytes: usize = set.volt.iter().map(|request| request.body_bytes).sum();
        println!(
            "  {} chunks: {} responses, {:.1} MB in all, {:.2} MB on average",
            set.name,
            set.volt.len(),
            body_bytes as f64 / 1e6,
            body_bytes as f64 / 1e6 / set.volt.len() as f64
        );
        let mut volt_total = LoadReport::default();
        let mut nginx_total = LoadReport::default();
        for round in 1..=args.load_rounds {
            let volt_report = http1::run_load(edge.address, &set.volt, args.connections, duration).await;
            let nginx_report = http1::run_load(nginx.address, &set.nginx, args.connections, duration).await;
            print_report(&format!("run {round} Volt"), &volt_report);
            print_report(&format!("run {round} nginx"), &nginx_report);
            volt_total.add(&volt_report);
            nginx_total.add(&nginx_report);
        }
        print_report("all Volt", &volt_total);
        print_report("all nginx", &nginx_total);
        println!(
            "    ratio Volt / nginx: {:.2} (requests/s), {:.2} (MB/s)",
            volt_total.requests_per_s() / nginx_total.requests_per_s(),
            volt_total.megabytes_per_s() / nginx_total.megabytes_per_s()
        );
    }
    nginx.stop();
    volt.stop();
}

/// Writes each response body as a file under `root` and pairs Volt's targets with the files'.
fn write_files(root: &std::path::Path, name: &'static str, chunks: &[super::Fetched]) -> RequestSet {
    let mut set = RequestSet { name, volt: Vec::new(), nginx: Vec::new() };
    for (index, chunk) in chunks.iter().enumerate() {
        let file = format!("{name}-{index}.json");
        std::fs::write(root.join(&file), &chunk.body).expect("writing a chunk file");
        set.volt.push(LoadRequest { target: chunk.target.clone(), body_bytes: chunk.body.len() });
        set.nginx.push(LoadRequest { target: format!("/{file}"), body_bytes: chunk.body.len() });
    }
    set
}

/// Checks that nginx serves every file with exactly the bytes Volt served.
async fn check_same_bytes(nginx: &Nginx, sets: &[RequestSet], log: &[super::Fetched], snapshot: &[super::Fetched]) {
    let mut connection = Connection::open(nginx.address).await.expect("connecting to nginx");
    for set in sets {
        let chunks = if set.name == "log" { log } else { snapshot };
        for (request, chunk) in set.nginx.iter().zip(chunks) {
            let (head, body) = connection.get(&request.target).await.expect("nginx request");
            assert_eq!(head.status, 200, "nginx {}", request.target);
            assert!(body == chunk.body, "nginx served {} with other bytes than Volt's response to {}", request.target, chunk.target);
        }
    }
}

fn print_report(server: &str, report: &LoadReport) {
    println!(
        "    {server:<11}: {} responses in {:.2} s = {:.1} requests/s, {:.1} MB/s{}",
        report.requests,
        report.elapsed.as_secs_f64(),
        report.requests_per_s(),
        report.megabytes_per_s(),
        if report.failures > 0 { format!(" ({} failed requests)", report.failures) } else { String::new() }
    );
}
