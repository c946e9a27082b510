//! Commit-to-client latency with 1, 100 and 1,000 clients long-polling one shape.
//!
//! Each round has its own table with one row and one shape over it. Every client has its
//! own keep-alive connection, syncs from `offset=-1`, then loops on live requests with its own
//! handle, offset and cursor, as the official clients do. No cache sits in between. A writer
//! updates the row to the change's number once per change, paced: it waits until every client
//! received the previous change, then pauses before committing the next one. A sample is the
//! time from just before the writer sends the autocommit UPDATE (so the commit is included)
//! until one client has read the whole response that carries the change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::http1::Connection;
use super::{sync_to_head, Edge, EdgeArgs};
use crate::sync::percentile;

/// How long the writer waits for every client to receive a change before counting the
/// missing ones and going on.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// State the writer and the clients of one round share.
struct Round {
    table: String,
    /// When the writer sent change `n`, at index `n`.
    sent_at: Vec<OnceLock<Instant>>,
    /// How many clients received change `n`, at index `n`.
    received: Vec<AtomicUsize>,
    /// Clients that finished their initial sync.
    synced: AtomicUsize,
    latencies_ms: Mutex<Vec<f64>>,
    /// Woken whenever a client synced or received a change.
    progress: Notify,
}

pub async fn run(edge: &Edge, args: &EdgeArgs) {
    let mut volt = edge.start_volt(&[]).await;
    println!(
        "commit-to-client latency: clients long-poll Volt directly (no cache), {} ms pause between a change reaching every client and the next commit",
        args.latency_pace_ms
    );
    for &clients in &args.latency_clients {
        // Every change yields one sample per client, so rounds with many clients need fewer.
        let changes = (args.latency_changes / clients.max(1)).max(args.latency_changes_min);
        run_round(edge, args, volt.pid(), clients, changes).await;
    }
    volt.stop();
}

async fn run_round(edge: &Edge, args: &EdgeArgs, volt_pid: u32, clients: usize, changes: usize) {
    let table = format!("latency_{clients}");
    edge.sql
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL); INSERT INTO {table} VALUES (1, 0);"))
        .await
        .expect("creating the latency table");
    let round = Arc::new(Round {
        table: table.clone(),
        sent_at: (0..=changes).map(|_| OnceLock::new()).collect(),
        received: (0..=changes).map(|_| AtomicUsize::new(0)).collect(),
        synced: AtomicUsize::new(0),
        latencies_ms: Mutex::new(Vec::with_capacity(clients * changes)),
        progress: Notify::new(),
    });
    // The first client creates the shape; the others then share it.
    let mut connection = Connection::open(edge.address).await.expect("connecting to Volt");
    sync_to_head(&mut connection, &table, false).await;
    drop(connection);

    let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(long_poll(edge.address, round.clone()))).collect();
    let all_synced = wait_until(&round.progress, || round.synced.load(Ordering::Acquire) >= clients, Duration::from_secs(120)).await;
    assert!(all_synced, "only {} of {clients} clients synced", round.synced.load(Ordering::Acquire));

    let volt_cpu_before_s = super::cpu_s(&volt_pid.to_string());
    let bench_cpu_before_s = super::cpu_s("self");
    let update = format!("UPDATE {table} SET v = $1 WHERE id = 1");
    let mut missing = 0;
    let mut commits_ms = Vec::with_capacity(changes);
    let changes_started = Instant::now();
    for change in 1..=changes {
        tokio::time::sleep(Duration::from_millis(args.latency_pace_ms)).await;
        let sent_at = Instant::now();
        round.sent_at[change].set(sent_at).expect("each change is sent once");
        edge.sql.execute(&update, &[&(change as i32)]).await.expect("updating the row");
        commits_ms.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        let delivered = || round.received[change].load(Ordering::Acquire) >= clients;
        if !wait_until(&round.progress, delivered, DELIVERY_TIMEOUT).await {
            missing += clients - round.received[change].load(Ordering::Acquire);
        }
    }
    let changes_elapsed = changes_started.elapsed();
    let volt_cpu_s = super::cpu_s(&volt_pid.to_string()) - volt_cpu_before_s;
    let bench_cpu_s = super::cpu_s("self") - bench_cpu_before_s;
    for task in &tasks {
        task.abort();
    }

    let latencies = round.latencies_ms.lock().expect("latency samples").clone();
    println!(
        "  {clients:>5} clients, {changes} changes, {} samples: median {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
        if missing > 0 { format!(", {missing} deliveries missing after {} s", DELIVERY_TIMEOUT.as_secs()) } else { String::new() }
    );
    // PostgreSQL's own commit (one WAL flush) is the floor for a durable delivery, because
    // Volt syncs its shape log and journal after PostgreSQL has flushed the change.
    println!(
        "          the writer's UPDATE with its commit: median {:.2} ms, p99 {:.2} ms",
        percentile(&commits_ms, 50.0),
        percentile(&commits_ms, 99.0)
    );
    let deliveries = latencies.len().max(1) as f64;
    println!(
        "          CPU during the changes: Volt {volt_cpu_s:.2} s ({:.0} µs per delivery), this process (clients and writer) {bench_cpu_s:.2} s ({:.0} µs per delivery), over {:.2} s",
        volt_cpu_s * 1e6 / deliveries,
        bench_cpu_s * 1e6 / deliveries,
        changes_elapsed.as_secs_f64()
    );
}

/// Runs one client: syncs, then long-polls until aborted, recording when each change arrives.
async fn long_poll(address: std::net::SocketAddr, round: Arc<Round>) {
    let mut connection = Connection::open(address).await.expect("connecting to Volt");
    let (_, mut position) = sync_to_head(&mut connection, &round.table, false).await;
    round.synced.fetch_add(1, Ordering::AcqRel);
    round.progress.notify_waiters();
    let mut cursor: Option<String> = None;
    loop {
        let target = Edge::shape_target(&round.table, &position.offset, Some(&position.handle), Some(cursor.as_deref()));
        let (head, body) = connection.get(&target).await.expect("live request");
        let received_at = Instant::now();
        assert_eq!(head.status, 200, "live request {target}: {}", String::from_utf8_lossy(&body));
        position.offset = head.header("electric-offset").expect("electric-offset").to_owned();
        cursor = head.header("electric-cursor").map(str::to_owned);
        for change in changes_in(&body) {
            let Some(sent_at) = round.sent_at.get(change).and_then(OnceLock::get) else {
                continue;
            };
            let latency_ms = (received_at - *sent_at).as_secs_f64() * 1000.0;
            round.latencies_ms.lock().expect("latency samples").push(latency_ms);
            round.received[change].fetch_add(1, Ordering::AcqRel);
            round.progress.notify_waiters();
        }
    }
}

/// Returns the change numbers (the row's new `v`) of the update messages in a response body.
pub(super) fn changes_in(body: &[u8]) -> Vec<usize> {
    let messages: Vec<serde_json::Value> = serde_json::from_slice(body).expect("a JSON array of messages");
    messages
        .iter()
        .filter_map(|message| message.get("value")?.get("v")?.as_str()?.parse().ok())
        .collect()
}

/// Waits until `condition` holds, re-checking whenever `progress` is notified, for at most
/// `limit`. Returns whether the condition holds.
async fn wait_until(progress: &Notify, condition: impl Fn() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let notified = progress.notified();
        tokio::pin!(notified);
        // Registered before the check, so a notification between the check and the wait is kept.
        notified.as_mut().enable();
        if condition() {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return condition();
        }
    }
}
