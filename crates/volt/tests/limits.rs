//! Limits at the HTTP edge: memory while many readers stall mid-response, request size
//! limits, and a shutdown that ends parked long polls and stalled responses in bounded time.

mod common;

use std::time::{Duration, Instant};

use common::process::{raise_file_limit, VoltProcess};
use common::TestVolt;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Rows of the large table and the text bytes per row: about 24 MB, so the first snapshot
/// chunk is the whole 10 MiB default.
const LARGE_ROWS: usize = 24_000;
const LARGE_ROW_BYTES: usize = 1_000;
/// Readers that stop reading mid-response.
const STALLED_READERS: usize = 1_000;
/// Receive buffer of each stalled reader's socket, kept small so the kernel buffers little of
/// each response and Volt's own buffering is what the test measures.
const STALLED_RECEIVE_BUFFER_BYTES: u32 = 4096;
/// Volt's defaults: the connection buffer (16 KiB URL + 32 KiB headers + 4 KiB framing) and
/// the response piece.
const CONNECTION_BUFFER_BYTES: u64 = (16 + 32 + 4) * 1024;
const PIECE_BYTES: u64 = 64 * 1024;

async fn create_large_table(sql: &tokio_postgres::Client) {
    sql.batch_execute(&format!(
        "CREATE TABLE large (id int PRIMARY KEY, payload text);
         INSERT INTO large SELECT i, repeat(md5(i::text), {repeats}) FROM generate_series(1, {LARGE_ROWS}) AS i;",
        repeats = LARGE_ROW_BYTES / 32
    ))
    .await
    .unwrap();
}

/// Opens a connection with a small receive buffer, sends a GET for `path_and_query`, reads the
/// first bytes of the response and then stops reading.
async fn stall_reader(address: &str, path_and_query: &str) -> TcpStream {
    stall_reader_with_start(address, path_and_query).await.0
}

/// Stalls a reader like [`stall_reader`] and also returns the bytes it read.
async fn stall_reader_with_start(address: &str, path_and_query: &str) -> (TcpStream, Vec<u8>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(STALLED_RECEIVE_BUFFER_BYTES).unwrap();
    let mut stream = socket.connect(address.parse().unwrap()).await.unwrap();
    let request = format!("GET {path_and_query} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 1024];
    let read = stream.read(&mut first).await.unwrap();
    first.truncate(read);
    assert!(first.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first));
    (stream, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_keep_memory_bounded() {
    raise_file_limit();
    let volt = VoltProcess::start(&["--max-concurrent-requests", "5000"]).await;
    let sql = volt.sql().await;
    create_large_table(&sql).await;
    let http = reqwest::Client::new();
    let first_chunk = format!("{}/v1/shape?table=large&offset=-1", volt.base_url);

    // One full read creates the shape and shows how large the response is.
    let response = http.get(&first_chunk).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-length").is_none(), "a large chunk is streamed, not sent from memory");
    let chunk_bytes = response.bytes().await.unwrap().len() as u64;
    assert!(chunk_bytes > 8 << 20, "the first chunk has {chunk_bytes} bytes");
    let baseline_bytes = volt.memory_bytes("VmRSS");

    let address = volt.base_url.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::with_capacity(STALLED_READERS);
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..STALLED_READERS {
        let address = address.clone();
        opening.spawn(async move { stall_reader(&address, "/v1/shape?table=large&offset=-1").await });
    }
    while let Some(stream) = opening.join_next().await {
        stalled.push(stream.unwrap());
    }

    // Volt keeps serving others while every stalled reader keeps its response open.
    let mut client = common::ShapeClient::new(http.clone(), &volt.base_url, "large");
    client.sync().await;
    assert_eq!(client.rows.len(), LARGE_ROWS);
    let health = http.get(format!("{}/v1/health", volt.base_url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Each stalled reader costs at most its connection buffer and one rendered piece waiting
    // for room in it (twice that for slack); 64 MiB covers allocator and thread overhead. The
    // baseline already includes the chunk cache, which the first read filled with this chunk.
    // Building each response whole would cost the chunk size per reader instead.
    let per_reader_bytes = CONNECTION_BUFFER_BYTES + 2 * PIECE_BYTES;
    let bound_bytes = baseline_bytes + STALLED_READERS as u64 * per_reader_bytes + (64 << 20);
    let rss_bytes = volt.memory_bytes("VmRSS");
    let peak_bytes = volt.memory_bytes("VmHWM");
    eprintln!(
        "stalled readers: {STALLED_READERS}, chunk {chunk_bytes} B, baseline RSS {baseline_bytes} B, RSS {rss_bytes} B, peak {peak_bytes} B, bound {bound_bytes} B"
    );
    assert!(rss_bytes < bound_bytes, "RSS {rss_bytes} B is over the bound {bound_bytes} B");
    assert!(peak_bytes < bound_bytes, "peak RSS {peak_bytes} B is over the bound {bound_bytes} B");
    assert!(
        (STALLED_READERS as u64) * chunk_bytes > 10 * bound_bytes,
        "the bound must be far below what whole responses would cost"
    );

    drop(stalled);
    assert!(volt.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_json_errors() {
    let volt = TestVolt::start(20_000).await;
    volt.sql().await.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();

    async fn check(response: reqwest::Response, status: StatusCode, field: &str) {
        assert_eq!(response.status(), status);
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["errors"][field][0].as_str().unwrap_or_else(|| panic!("no error for {field}: {body}"));
        assert!(message.contains("limit") || message.contains("no body"), "{message}");
    }

    let long_where = format!("id IN ({})", vec!["1"; 9_000].join(","));
    let response = volt.http.get(format!("{}/v1/shape", volt.base_url)).query(&[("table", "items"), ("offset", "-1"), ("where", &long_where)]).send().await.unwrap();
    check(response, StatusCode::URI_TOO_LONG, "url").await;

    let response = volt.http.get(format!("{}/v1/shape?table=items&offset=-1", volt.base_url)).header("x-padding", "p".repeat(40_000)).send().await.unwrap();
    check(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers").await;

    let response = volt.http.get(format!("{}/v1/shape?table=items&offset=-1", volt.base_url)).body("unexpected").send().await.unwrap();
    check(response, StatusCode::BAD_REQUEST, "body").await;
    let response = volt.http.get(format!("{}/v1/shape/items?offset=-1", volt.base_url)).body("unexpected").send().await.unwrap();
    check(response, StatusCode::BAD_REQUEST, "body").await;

    // A head larger than the connection buffer never reaches Volt's checks: hyper rejects it
    // with a bare 431 and closes the connection, which may reset it before the client reads
    // the status.
    let response = volt.http.get(format!("{}/v1/health", volt.base_url)).header("x-padding", "p".repeat(60_000)).send().await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    // More headers than --request-headers-max (100 by default): hyper's bare 431.
    let mut request = volt.http.get(format!("{}/v1/health", volt.base_url));
    for index in 0..120 {
        request = request.header(format!("x-header-{index}"), "v");
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let response = volt.get("/v1/shape?table=items&offset=-1").await;
    assert_eq!(response.status(), StatusCode::OK, "requests within the limits are served");
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_long_polls_promptly() {
    const LONG_POLLS: usize = 50;
    const SHUTDOWN_TIMEOUT_MS: u64 = 2_000;
    let volt = VoltProcess::start(&["--long-poll-timeout-ms", "120000", "--shutdown-timeout-ms", &SHUTDOWN_TIMEOUT_MS.to_string()]).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);").await.unwrap();
    create_large_table(&sql).await;
    let http = reqwest::Client::new();
    let mut client = common::ShapeClient::new(http.clone(), &volt.base_url, "items");
    client.sync().await;
    let live_url = format!(
        "{}/v1/shape?table=items&offset={}&handle={}&live=true",
        volt.base_url,
        client.offset,
        client.handle.clone().unwrap()
    );

    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..LONG_POLLS {
        let request = http.get(&live_url).send();
        polls.spawn(async move {
            match request.await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.bytes().await;
                    (Some(status), body.is_ok(), Instant::now())
                }
                Err(_) => (None, false, Instant::now()),
            }
        });
    }
    // A response that a reader stops taking: only the shutdown timeout ends it.
    let address = volt.base_url.trim_start_matches("http://").to_owned();
    let mut stalled = stall_reader(&address, "/v1/shape?table=large&offset=-1").await;
    // Every long poll was sent before this request, on connections accepted before its own.
    let response = http.get(format!("{}/v1/health", volt.base_url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let mut volt = volt;
    let signalled = Instant::now();
    volt.terminate();
    while let Some(result) = polls.join_next().await {
        let (status, body_complete, ended) = result.unwrap();
        let elapsed = ended - signalled;
        assert!(elapsed < Duration::from_secs(5), "a long poll ended {elapsed:?} after SIGTERM");
        if let Some(status) = status {
            // A parked long poll gets a complete 503, after which the client retries.
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(body_complete);
        }
    }

    // The stalled response delays the shutdown until its timeout, then its connection is
    // closed, so Volt exits.
    let status = tokio::time::timeout(Duration::from_secs(30), volt.child.wait()).await.expect("volt exits in time").unwrap();
    let exited = signalled.elapsed();
    eprintln!("volt exited {exited:?} after SIGTERM with {status}");
    assert!(status.success(), "volt exits with 0, not {status}");
    assert!(exited >= Duration::from_millis(SHUTDOWN_TIMEOUT_MS), "volt exited before the shutdown timeout");

    // The stalled reader sees the end of the stream, or a reset, once it drains what the
    // kernel buffered.
    let mut sink = vec![0u8; 1 << 16];
    let cut = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the stalled response was not closed");
}

/// Reads a whole HTTP/1.1 response with a chunked body from `stream` and returns the body.
async fn read_chunked_body(stream: &mut TcpStream, already_read: Vec<u8>) -> Vec<u8> {
    let mut raw = already_read;
    stream.read_to_end(&mut raw).await.unwrap();
    let head_end = raw.windows(4).position(|window| window == b"\r\n\r\n").expect("end of the head") + 4;
    let mut body = Vec::new();
    let mut at = head_end;
    loop {
        let line_end = at + raw[at..].windows(2).position(|window| window == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[at..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        at = line_end + 2 + size + 2;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_chunks_survive_eviction_mid_response() {
    const ROWS: usize = 2_000;
    let volt = TestVolt::start_with(20_000, |settings| {
        settings.response_piece_bytes_max = 4096;
        // Room for one table's chunk (about 2 MB) but not two.
        settings.chunk_cache_bytes_max = 3 << 20;
    })
    .await;
    let sql = volt.sql().await;
    for table in ["first", "second"] {
        sql.batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, payload text);
             INSERT INTO {table} SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, {ROWS}) AS i;"
        ))
        .await
        .unwrap();
    }
    let url = |table: &str| format!("{}/v1/shape?table={table}&offset=-1", volt.base_url);
    let first_body = volt.http.get(url("first")).send().await.unwrap().bytes().await.unwrap();
    let again = volt.http.get(url("first")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(first_body, again, "a cached chunk is sent as it was rendered");
    let hits = volt.server.engine().chunk_cache.hits();
    assert!(hits >= 1, "the second read came from the cache");

    // A reader stalls in the cached chunk, the chunk is evicted, and the reader carries on.
    let address = volt.base_url.trim_start_matches("http://").to_owned();
    let (mut stalled, start) = stall_reader_with_start(&address, "/v1/shape?table=first&offset=-1").await;
    assert_eq!(volt.server.engine().chunk_cache.hits(), hits + 1);
    let second = volt.http.get(url("second")).send().await.unwrap().bytes().await.unwrap();
    assert!(!second.is_empty());
    let cached_bytes = volt.server.engine().chunk_cache.cached_bytes();
    assert!(cached_bytes < 3 << 20, "the cache holds {cached_bytes} bytes");

    let body = read_chunked_body(&mut stalled, start).await;
    assert_eq!(body, first_body.to_vec(), "the response carries on from the file after the eviction");
    let messages: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(messages.iter().filter(|message| message["key"].is_string()).count(), ROWS);
    volt.stop().await;
}
