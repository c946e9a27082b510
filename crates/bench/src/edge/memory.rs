//! Resident memory per parked long-poll request.
//!
//! A fresh Volt runs with a long-poll timeout far longer than the measurement and a request
//! limit of exactly the parked requests plus one sentinel. Each parked request has its own
//! TCP connection carrying one live request at the shape's head. Once a probe request gets
//! 503, every slot is taken, so every live request is inside Volt and waiting. The figure is
//! (VmRSS after − VmRSS before) / parked requests. Kernel socket buffers are not part of
//! VmRSS and are not counted.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::http1::Connection;
use super::latency::changes_in;
use super::{sync_to_head, Edge, EdgeArgs};

/// Long-poll timeout of the Volt under measurement: no parked request may time out before
/// the check that all of them are still waiting.
const LONG_POLL_TIMEOUT_MS: u64 = 600_000;

/// Connections opened at once, kept below Volt's listen backlog so that no connection waits
/// for a SYN retransmission.
const CONNECTS_IN_FLIGHT: usize = 256;

/// Time limit for the requests to park, and for the parked ones to receive the change.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(edge: &Edge, args: &EdgeArgs) {
    // The sentinel is one more parked request: with it every slot is taken, and a probe's 503
    // shows that all the others are inside Volt.
    let parked = args.parked + 1;
    let extra_args = [
        "--max-concurrent-requests".to_owned(),
        parked.to_string(),
        "--long-poll-timeout-ms".to_owned(),
        LONG_POLL_TIMEOUT_MS.to_string(),
    ];
    let mut volt = edge.start_volt(&extra_args).await;
    edge.sql
        .batch_execute("CREATE TABLE memory_parked (id int PRIMARY KEY, v int NOT NULL); INSERT INTO memory_parked VALUES (1, 0);")
        .await
        .expect("creating memory_parked");
    let mut connection = Connection::open(edge.address).await.expect("connecting to Volt");
    let (_, mut position) = sync_to_head(&mut connection, "memory_parked", false).await;

    // One whole live request first, so that one-time allocations of the first live request
    // (the shape's watch, the runtime's timers) fall before the baseline.
    connection
        .send_get(&Edge::shape_target("memory_parked", &position.offset, Some(&position.handle), Some(None)))
        .await
        .expect("live request");
    edge.sql.execute("UPDATE memory_parked SET v = 1 WHERE id = 1", &[]).await.expect("updating memory_parked");
    let (head, _) = connection.read_response().await.expect("live response");
    position.offset = head.header("electric-offset").expect("electric-offset").to_owned();
    drop(connection);
    let (before_kib, _) = volt.memory_kib();

    let live_target = Edge::shape_target("memory_parked", &position.offset, Some(&position.handle), Some(None));
    let started = Instant::now();
    let mut connections: Vec<Connection> = futures_util::stream::iter(0..parked)
        .map(|_| open_live(edge, &live_target))
        .buffer_unordered(CONNECTS_IN_FLIGHT)
        .collect()
        .await;
    let probe_target = Edge::shape_target("memory_parked", &position.offset, Some(&position.handle), None);
    let mut resent = 0;
    loop {
        let mut probe = Connection::open(edge.address).await.expect("opening a probe connection");
        let (head, body) = probe.get(&probe_target).await.expect("probe request");
        match head.status {
            503 => break,
            200 => {}
            status => panic!("probe request got {status}: {}", String::from_utf8_lossy(&body)),
        }
        // A live request that arrived while a probe held a slot got 503. It is sent again,
        // or the slots would never all be taken.
        for connection in connections.iter_mut() {
            if connection.is_open_and_silent() {
                continue;
            }
            let (head, body) = connection.read_response().await.expect("reading the response to a live request");
            assert_eq!(head.status, 503, "a parked live request was answered: {}", String::from_utf8_lossy(&body));
            *connection = open_live(edge, &live_target).await;
            resent += 1;
        }
        assert!(started.elapsed() < PHASE_TIMEOUT, "the live requests did not all park within {PHASE_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let parked_after = started.elapsed();
    let (after_kib, _) = volt.memory_kib();
    let silent = connections.iter().filter(|connection| connection.is_open_and_silent()).count();

    // Every parked request must be waiting on the shape, so one change completes each of them.
    edge.sql.execute("UPDATE memory_parked SET v = 2 WHERE id = 1", &[]).await.expect("updating memory_parked");
    let answered = futures_util::stream::iter(connections)
        .map(|mut connection| async move {
            match tokio::time::timeout(PHASE_TIMEOUT, connection.read_response()).await {
                Ok(Ok((head, body))) => head.status == 200 && changes_in(&body).contains(&2),
                _ => false,
            }
        })
        .buffer_unordered(1024)
        .filter(|answered| std::future::ready(*answered))
        .count()
        .await;
    volt.stop();

    let growth_kib = after_kib.saturating_sub(before_kib);
    println!(
        "memory per parked long poll: {parked} live requests parked {:.2} s after the first connect \
         ({resent} sent again after a 503 while a probe held a slot); {silent} still open and unanswered at the measurement; \
         {answered} then answered by one change",
        parked_after.as_secs_f64()
    );
    println!(
        "  Volt VmRSS before {before_kib} KiB, after {after_kib} KiB: growth {growth_kib} KiB, {:.2} KiB per parked request",
        growth_kib as f64 / parked as f64
    );
    assert_eq!(silent, parked, "every parked connection must still be open and unanswered");
    assert_eq!(answered, parked, "every parked request must receive the change");
}

/// Opens a connection and sends the live request `target` on it.
async fn open_live(edge: &Edge, target: &str) -> Connection {
    let mut connection = Connection::open(edge.address).await.expect("opening a parked connection");
    connection.send_get(target).await.expect("sending a live request");
    connection
}
