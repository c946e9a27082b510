//! Live mode over server-sent events: the wire format, the offset the client resumes from,
//! keep-alive comments, the stream's lifetime, shutdown, the request limit and bad parameters.

mod common;

use std::time::Duration;

use serde_json::Value;
use tokio::time::{timeout, Instant};

use common::{select_rows, ShapeClient, TestVolt};

/// Maximum wait for one event. Every wait in these tests ends on an event well before it.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// One item of an event stream.
#[derive(Debug)]
enum StreamItem {
    /// A `data:` event, parsed as JSON.
    Data(Value),
    /// A comment line such as `: keep-alive`, without the colon.
    Comment(String),
    /// The server ended the response.
    End,
}

/// Reads an event stream from a response body as the bytes arrive.
struct EventReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        EventReader { response, buffer: Vec::new() }
    }

    /// Returns the next event or comment, failing the test after [`EVENT_WAIT`].
    async fn next(&mut self) -> StreamItem {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return parse_block(&block[..end]);
            }
            let chunk = timeout(EVENT_WAIT, self.response.chunk()).await.expect("an event in time").expect("stream read");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(self.buffer.is_empty(), "stream ended inside an event: {:?}", String::from_utf8_lossy(&self.buffer));
                    return StreamItem::End;
                }
            }
        }
    }

    /// Returns the data events up to and including the next `up-to-date` event, skipping
    /// comments.
    async fn next_batch(&mut self) -> Vec<Value> {
        let mut batch = Vec::new();
        loop {
            match self.next().await {
                StreamItem::Data(message) => {
                    let up_to_date = message["headers"]["control"] == "up-to-date";
                    batch.push(message);
                    if up_to_date {
                        return batch;
                    }
                }
                StreamItem::Comment(_) => {}
                StreamItem::End => panic!("stream ended before an up-to-date event; received {batch:?}"),
            }
        }
    }
}

fn parse_block(block: &[u8]) -> StreamItem {
    let text = std::str::from_utf8(block).expect("UTF-8 events");
    if let Some(comment) = text.strip_prefix(':') {
        return StreamItem::Comment(comment.trim().to_owned());
    }
    let data: Vec<&str> = text.lines().map(|line| line.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data line: {line:?}"))).collect();
    StreamItem::Data(serde_json::from_str(&data.join("\n")).expect("each event is one JSON message"))
}

/// Opens an event stream for `client`'s shape at `offset`.
async fn open_stream(volt: &TestVolt, client: &ShapeClient, table: &str, offset: &str) -> reqwest::Response {
    let handle = client.handle.as_deref().expect("a synced client");
    volt.get(&format!("/v1/shape?table={table}&handle={handle}&offset={offset}&live=true&live_sse=true&experimental_live_sse=true&cursor="))
        .await
}

/// Returns the offset client 1.5.x resumes from after an `up-to-date` event.
fn resume_offset(up_to_date: &Value) -> String {
    let lsn = up_to_date["headers"]["global_last_seen_lsn"].as_str().expect("global_last_seen_lsn is a string");
    format!("{lsn}_0")
}

fn lsn_of(message: &Value) -> u64 {
    message["headers"]["lsn"].as_str().expect("lsn").parse().expect("decimal lsn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_batches_ending_up_to_date() {
    let volt = TestVolt::start_with(5_000, |settings| settings.sse_lifetime = Duration::from_secs(30)).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY, title text); INSERT INTO items VALUES (1, 'one')").await.unwrap();
    let mut client = volt.shape("items");
    client.sync().await;

    let response = open_stream(&volt, &client, "items", &client.offset).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "public, max-age=29");
    assert_eq!(headers["electric-handle"], client.handle.as_deref().unwrap());
    assert_eq!(headers["electric-offset"], client.offset.as_str());
    assert!(headers["electric-cursor"].to_str().unwrap().parse::<u64>().is_ok());
    assert!(headers.get("content-encoding").is_none());
    let mut events = EventReader::new(response);
    let mut received = Vec::new();

    sql.batch_execute("BEGIN; INSERT INTO items VALUES (2, 'two'); UPDATE items SET title = 'uno' WHERE id = 1; COMMIT")
        .await
        .unwrap();
    let batch = events.next_batch().await;
    assert_eq!(batch.len(), 3, "{batch:?}");
    assert_eq!(batch[0]["headers"]["operation"], "insert");
    assert_eq!(batch[0]["value"], serde_json::json!({"id": "2", "title": "two"}));
    assert_eq!(batch[1]["headers"]["operation"], "update");
    assert_eq!(batch[1]["headers"]["last"], true);
    // The client resumes from `<global_last_seen_lsn>_0`, which must sort after this
    // transaction's entries.
    assert_eq!(resume_offset(&batch[2]), format!("{}_0", lsn_of(&batch[1]) + 1));
    received.extend(batch);

    // The same stream carries the next transaction as its own batch.
    sql.batch_execute("DELETE FROM items WHERE id = 2").await.unwrap();
    let batch = events.next_batch().await;
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["headers"]["operation"], "delete");
    let resume = resume_offset(&batch[1]);
    received.extend(batch);
    drop(events);

    // A non-live request at the resume offset is valid and contains nothing new.
    let handle = client.handle.clone().unwrap();
    let response = volt.get(&format!("/v1/shape?table=items&handle={handle}&offset={resume}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["electric-offset"], resume.as_str());
    let body: Vec<Value> = response.json().await.unwrap();
    assert_eq!(body.len(), 1, "{body:?}");
    assert_eq!(body[0]["headers"]["control"], "up-to-date");

    // A change committed while no stream is open arrives exactly once on the next stream.
    sql.batch_execute("INSERT INTO items VALUES (3, 'three')").await.unwrap();
    let mut events = EventReader::new(open_stream(&volt, &client, "items", &resume).await);
    let batch = events.next_batch().await;
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["value"]["id"], "3");

    received.extend(batch);

    // Applying every batch to the synced rows gives what SELECT returns.
    for message in received {
        apply(&mut client, message);
    }
    assert_eq!(client.rows_by("id"), select_rows(&sql, "items", "id").await);
    volt.stop().await;
}

/// The resume offset `<last tx + 1>_0` is the furthest offset past the log's end that a
/// request may name; one LSN further is out of bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_offset_is_the_bound() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("items");
    client.sync().await;
    sql.batch_execute("INSERT INTO items VALUES (1)").await.unwrap();
    common::follow_until(&mut client, EVENT_WAIT, |c| c.rows.len() == 1).await;
    let last_lsn = lsn_of(client.received.last().unwrap());
    let handle = client.handle.clone().unwrap();

    let resume = volt.get(&format!("/v1/shape?table=items&handle={handle}&offset={}_0", last_lsn + 1)).await;
    assert_eq!(resume.status(), 200);
    let beyond = volt.get(&format!("/v1/shape?table=items&handle={handle}&offset={}_0", last_lsn + 2)).await;
    assert_eq!(beyond.status(), 400);
    let body: Value = beyond.json().await.unwrap();
    assert_eq!(body["errors"]["offset"][0], "out of bounds for this shape");
    volt.stop().await;
}

/// A client that resumes from an `up-to-date` event after Volt restarted carries on without
/// a resync and receives the next change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resume_offset_survives_restart() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("items");
    client.sync().await;
    let mut events = EventReader::new(open_stream(&volt, &client, "items", &client.offset).await);
    sql.batch_execute("INSERT INTO items VALUES (1), (2)").await.unwrap();
    let batch = events.next_batch().await;
    assert_eq!(batch.len(), 3, "{batch:?}");
    let resume = resume_offset(&batch[2]);
    drop(events);

    let volt = volt.restart().await;
    let sql = volt.sql().await;
    sql.batch_execute("INSERT INTO items VALUES (3)").await.unwrap();
    let response = open_stream(&volt, &client, "items", &resume).await;
    assert_eq!(response.status(), 200);
    let batch = EventReader::new(response).next_batch().await;
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["value"]["id"], "3");
    volt.stop().await;
}

/// Applies one streamed message the way `ShapeClient` applies a long-poll message.
fn apply(client: &mut ShapeClient, message: Value) {
    let headers = &message["headers"];
    if headers.get("control").is_some() {
        return;
    }
    let key = message["key"].as_str().unwrap().to_owned();
    let value: common::TextRow =
        message["value"].as_object().unwrap().iter().map(|(column, value)| (column.clone(), value.as_str().map(str::to_owned))).collect();
    match headers["operation"].as_str().unwrap() {
        "insert" => assert!(client.rows.insert(key, value).is_none()),
        "update" => client.rows.get_mut(&key).unwrap().extend(value),
        _ => assert!(client.rows.remove(&key).is_some()),
    }
}

/// A stream from a snapshot offset sends the rest of the snapshot and the log, then one
/// `up-to-date` event, so the client applies them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_catches_up_before_up_to_date() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)").await.unwrap();
    let mut client = volt.shape("items");
    client.poll().await;
    assert_eq!(client.offset, "0_0");
    sql.batch_execute("INSERT INTO items VALUES (3)").await.unwrap();
    // Wait for the insert through a long poll, so the stream finds it already in the log.
    let mut follower = volt.shape("items");
    common::follow_until(&mut follower, EVENT_WAIT, |c| c.rows.len() == 3).await;

    let mut events = EventReader::new(open_stream(&volt, &client, "items", "0_0").await);
    let batch = events.next_batch().await;
    let ids: Vec<&str> = batch.iter().filter_map(|message| message["value"]["id"].as_str()).collect();
    assert_eq!(ids, ["3"], "{batch:?}");
    assert_eq!(batch.last().unwrap()["headers"]["control"], "up-to-date");
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_keeps_alive_then_ends_after_lifetime() {
    let lifetime = Duration::from_millis(1_500);
    let volt = TestVolt::start_with(5_000, |settings| {
        settings.sse_lifetime = lifetime;
        settings.sse_keep_alive_interval = Duration::from_millis(200);
    })
    .await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE quiet (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("quiet");
    client.sync().await;

    let started = Instant::now();
    let response = open_stream(&volt, &client, "quiet", &client.offset).await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=0");
    let mut events = EventReader::new(response);
    let mut keep_alives = 0;
    loop {
        match events.next().await {
            StreamItem::Comment(comment) => {
                assert_eq!(comment, "keep-alive");
                keep_alives += 1;
            }
            StreamItem::Data(message) => panic!("a quiet shape sent {message}"),
            StreamItem::End => break,
        }
    }
    let lasted = started.elapsed();
    assert!(lasted >= lifetime, "the stream ended after {lasted:?}");
    assert!(lasted < lifetime + Duration::from_secs(5), "the stream ended after {lasted:?}");
    // One comment per 200 ms of silence; scheduling may cost one or two.
    assert!(keep_alives >= 4, "{keep_alives} keep-alive comments in {lasted:?}");
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_ends_promptly_on_shutdown() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE quiet (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("quiet");
    client.sync().await;
    let mut events = EventReader::new(open_stream(&volt, &client, "quiet", &client.offset).await);

    // The stream would stay open for the default 60 s; stopping Volt must end it at once.
    let started = Instant::now();
    let stopping = tokio::spawn(volt.stop());
    assert!(matches!(events.next().await, StreamItem::End));
    timeout(Duration::from_secs(30), stopping).await.expect("Volt stops in time").unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "stopping took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_ends_when_shape_is_deleted() {
    let volt = TestVolt::start_with(5_000, |settings| settings.allow_shape_deletion = true).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("items");
    client.sync().await;
    let mut events = EventReader::new(open_stream(&volt, &client, "items", &client.offset).await);

    let handle = client.handle.clone().unwrap();
    let deleted = volt.http.delete(format!("{}/v1/shape?handle={handle}", volt.base_url)).send().await.unwrap();
    assert_eq!(deleted.status(), 202);
    assert!(matches!(events.next().await, StreamItem::End));
    // Reconnecting gets the 409 that sends the client back to the start.
    let response = open_stream(&volt, &client, "items", &client.offset).await;
    assert_eq!(response.status(), 409);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_takes_a_request_slot() {
    let volt = TestVolt::start_with(5_000, |settings| {
        settings.max_concurrent_requests = 1;
        settings.sse_lifetime = Duration::from_millis(1_000);
    })
    .await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE quiet (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("quiet");
    client.sync().await;
    let mut events = EventReader::new(open_stream(&volt, &client, "quiet", &client.offset).await);

    let busy = volt.get("/v1/shape?table=quiet&offset=-1").await;
    assert_eq!(busy.status(), 503);
    assert!(busy.headers().contains_key("retry-after"));
    loop {
        if let StreamItem::End = events.next().await {
            break;
        }
    }
    assert_eq!(volt.get("/v1/shape?table=quiet&offset=-1").await.status(), 200);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_rejects_bad_parameters() {
    let volt = TestVolt::start(5_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();
    let mut client = volt.shape("items");
    client.sync().await;
    let handle = client.handle.clone().unwrap();
    let offset = client.offset.clone();

    for query in [
        format!("table=items&handle={handle}&offset={offset}&live_sse=true"),
        format!("table=items&handle={handle}&offset={offset}&live=false&experimental_live_sse=true"),
    ] {
        let response = volt.get(&format!("/v1/shape?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"]["live_sse"][0], "can't be true unless live is also true", "{query}");
    }
    let response = volt.get("/v1/shape?table=items&offset=-1&live=true&live_sse=true").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"]["live"][0], "can't be true when offset == -1");

    // An unknown handle gets the 409 before any stream opens.
    let response = volt.get(&format!("/v1/shape?table=items&handle=0-0&offset={offset}&live=true&live_sse=true")).await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["electric-handle"], handle.as_str());
    volt.stop().await;
}
