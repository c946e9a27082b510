//! `volt-bench edge`: Volt's HTTP edge, each figure beside its reference in one run.
//!
//! * Catch-up serving: the exact responses Volt serves for the chunks of a large shape log
//!   (and of a large snapshot), loaded with the same tool and connection count as nginx
//!   serving the same bytes as static files. The ratio is Volt's throughput over nginx's.
//! * Commit-to-client latency: 1, 100 and 1,000 clients long-poll one shape each round while
//!   a writer commits paced single-row updates; median and 99th percentile.
//! * Memory per parked long poll: Volt's resident memory before and after 10,000 live
//!   requests wait on one shape.
//!
//! Volt runs as its own process (the `volt` binary beside this one) on a PostgreSQL this
//! benchmark starts, and is started again for each part so that one part's allocations do not
//! hide another's. The load tool, the clients and the servers share the machine's cores.

mod catchup;
mod http1;
mod latency;
mod memory;
mod nginx;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio_postgres::Client;

use crate::durability::VoltProcess;
use http1::Connection;

#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    /// Rows inserted after the catch-up shape's snapshot, so its log is large.
    #[arg(long, default_value_t = 1_000_000)]
    log_rows: u64,
    /// Rows in the table whose snapshot chunks are also loaded (0 skips them).
    #[arg(long, default_value_t = 1_000_000)]
    snapshot_rows: u64,
    /// Characters of the text column of every catch-up row.
    #[arg(long, default_value_t = 50)]
    payload_chars: usize,
    /// Keep-alive connections of the load tool, the same for Volt and nginx.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Length of each load run, in seconds.
    #[arg(long, default_value_t = 5)]
    load_s: u64,
    /// Load runs per server and request set, alternating Volt and nginx, so that other work
    /// on the machine slows both alike.
    #[arg(long, default_value_t = 3)]
    load_rounds: usize,
    /// The nginx binary.
    #[arg(long, default_value = nginx::DEFAULT_BINARY)]
    nginx: PathBuf,
    /// Client counts of the latency rounds.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    latency_clients: Vec<usize>,
    /// Changes committed in a latency round with one client. A round with N clients commits
    /// this number divided by N, but at least --latency-changes-min, because each change
    /// yields one sample per client.
    #[arg(long, default_value_t = 200)]
    latency_changes: usize,
    /// Minimum number of changes committed in a latency round.
    #[arg(long, default_value_t = 50)]
    latency_changes_min: usize,
    /// Pause after every client received a change before the next commit, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_pace_ms: u64,
    /// Live requests parked at once for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    parked: usize,
    /// `--chunk-cache-bytes-max` of the Volt serving the catch-up loads; Volt's default when
    /// absent. A cache larger than the log serves every chunk from memory, as nginx serves
    /// its files from the page cache.
    #[arg(long)]
    pub catchup_chunk_cache_bytes: Option<u64>,
    /// Skip these parts: any of catchup, latency, memory.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

/// Context shared by the parts: the database, Volt's storage and Volt's address.
pub struct Edge {
    sql: Client,
    database_url: String,
    storage: PathBuf,
    dir: PathBuf,
    address: SocketAddr,
}

impl Edge {
    /// Starts Volt on this benchmark's storage and waits until it serves requests.
    async fn start_volt(&self, extra_args: &[String]) -> VoltProcess {
        let mut volt = VoltProcess::spawn_with_args(&self.database_url, &self.storage, self.address.port(), extra_args);
        volt.wait_ready(&reqwest::Client::new()).await;
        // Printed for profiling a part from another shell (perf record -p PID).
        eprintln!("Volt is running with process id {}", volt.pid());
        volt
    }

    /// Builds the request target of a shape request.
    fn shape_target(table: &str, offset: &str, handle: Option<&str>, live: Option<Option<&str>>) -> String {
        let mut target = format!("/v1/shape?table={table}&offset={offset}");
        if let Some(handle) = handle {
            target.push_str(&format!("&handle={handle}"));
        }
        if let Some(cursor) = live {
            target.push_str("&live=true");
            if let Some(cursor) = cursor {
                target.push_str(&format!("&cursor={cursor}"));
            }
        }
        target
    }
}

/// One response of a sync from `offset=-1`: the request's target, the offset it returned,
/// and its body.
pub struct Fetched {
    pub target: String,
    pub next_offset: String,
    pub body: Vec<u8>,
}

/// A shape position a client continues from.
#[derive(Debug, Clone)]
pub struct ShapePosition {
    pub handle: String,
    pub offset: String,
}

/// Syncs `table` from `offset=-1` until up to date on `connection`, as a client does.
/// Returns every response and the position after the last one.
async fn sync_to_head(connection: &mut Connection, table: &str, keep_bodies: bool) -> (Vec<Fetched>, ShapePosition) {
    let mut fetched = Vec::new();
    let mut offset = "-1".to_owned();
    let mut handle: Option<String> = None;
    loop {
        let target = Edge::shape_target(table, &offset, handle.as_deref(), None);
        let (head, body) = connection.get(&target).await.expect("shape request");
        assert_eq!(head.status, 200, "{target}: {}", String::from_utf8_lossy(&body));
        handle = Some(head.header("electric-handle").expect("electric-handle").to_owned());
        offset = head.header("electric-offset").expect("electric-offset").to_owned();
        let up_to_date = head.header("electric-up-to-date").is_some();
        fetched.push(Fetched { target, next_offset: offset.clone(), body: if keep_bodies { body } else { Vec::new() } });
        if up_to_date {
            let handle = handle.expect("a handle after the first response");
            return (fetched, ShapePosition { handle, offset });
        }
    }
}

/// Returns the 1, 5 and 15 minute load averages: other work on the machine slows Volt and
/// its references alike, but makes single runs noisy.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// CPU time (user and system) that process `pid` used so far, in seconds.
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name in brackets may contain spaces; the fields after it are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // utime and stime are fields 14 and 15 of the line, at indexes 11 and 12 after the name.
    (ticks(11) + ticks(12)) as f64 / ticks_per_s
}

/// Raises this process's open-file limit to its hard limit, for thousands of connections.
/// Returns the new soft limit.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// Runs the parts of the edge benchmark that `--skip` leaves.
pub async fn run(args: EdgeArgs) {
    let open_files = raise_open_file_limit();
    // Dropping `_postgres` at the end of the run stops the cluster.
    let crate::cluster::Cluster { dir, postgres: _postgres, database_url, sql } = crate::cluster::start("volt-bench-edge-").await;
    let storage = dir.path().join("volt");
    std::fs::create_dir_all(&storage).expect("creating Volt's storage");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let edge = Edge {
        sql,
        database_url,
        storage,
        dir: dir.path().to_owned(),
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    println!(
        "volt-bench edge: {} cores shared by Volt, PostgreSQL, nginx and this process (load tool and clients); \
         open-file limit {open_files}; load average {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load_average()
    );

    let runs = |part: &str| !args.skip.iter().any(|skipped| skipped == part);
    if runs("catchup") {
        catchup::run(&edge, &args).await;
    }
    if runs("latency") {
        latency::run(&edge, &args).await;
    }
    if runs("memory") {
        memory::run(&edge, &args).await;
    }
    println!("load average at the end: {}", load_average());
}
