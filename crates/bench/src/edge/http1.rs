//! A minimal HTTP/1.1 client on one keep-alive TCP connection, and the load tool built on it.
//!
//! The catch-up benchmark points the same load tool at Volt and at nginx, so both servers
//! receive byte-identical requests on the same number of connections. Bodies come with a
//! `content-length` or chunked (Volt streams bodies larger than one response piece).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Size of the buffer body bytes are read into and dropped from.
const DISCARD_BUFFER_BYTES: usize = 256 * 1024;

/// Status line and headers of a response, header names in lower case.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
    /// True for `transfer-encoding: chunked`; `content_length` is then unused.
    pub chunked: bool,
}

impl Head {
    /// Returns the value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// One keep-alive connection that sends GET requests and reads their responses in order.
pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::with_capacity(64 * 1024, stream) })
    }

    /// Writes a GET request for `target` (path and query) without waiting for the response.
    pub async fn send_get(&mut self, target: &str) -> io::Result<()> {
        let request = format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        self.stream.get_mut().write_all(request.as_bytes()).await
    }

    /// Reads the status line and headers of the next response.
    pub async fn read_head(&mut self) -> io::Result<Head> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("invalid status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the response head ended early"));
            }
            let trimmed = line.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').ok_or_else(|| invalid(format!("invalid header line {trimmed:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut head = Head { status, headers, content_length: 0, chunked: false };
        if let Some(encoding) = head.header("transfer-encoding") {
            if !encoding.eq_ignore_ascii_case("chunked") {
                return Err(invalid(format!("unsupported transfer-encoding {encoding:?}")));
            }
            head.chunked = true;
            return Ok(head);
        }
        head.content_length = match head.header("content-length") {
            Some(value) => value.parse().map_err(|_| invalid(format!("invalid content-length {value:?}")))?,
            None => 0,
        };
        Ok(head)
    }

    /// Sends a GET request and returns the response with its body.
    pub async fn get(&mut self, target: &str) -> io::Result<(Head, Vec<u8>)> {
        self.send_get(target).await?;
        self.read_response().await
    }

    /// Reads the next response with its body.
    pub async fn read_response(&mut self) -> io::Result<(Head, Vec<u8>)> {
        let head = self.read_head().await?;
        if head.chunked {
            let mut body = Vec::new();
            while let Some(size) = self.read_chunk_size().await? {
                let start = body.len();
                body.resize(start + size, 0);
                self.stream.read_exact(&mut body[start..]).await?;
                self.read_chunk_end().await?;
            }
            return Ok((head, body));
        }
        let mut body = vec![0; head.content_length];
        self.stream.read_exact(&mut body).await?;
        Ok((head, body))
    }

    /// Reads a chunk's size line; `None` for the last chunk, whose trailer is read too.
    async fn read_chunk_size(&mut self) -> io::Result<Option<usize>> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let digits = line.trim_end_matches(['\r', '\n']).split(';').next().unwrap_or("");
        let size = usize::from_str_radix(digits.trim(), 16).map_err(|_| invalid(format!("invalid chunk size line {line:?}")))?;
        if size > 0 {
            return Ok(Some(size));
        }
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 || line.trim_end_matches(['\r', '\n']).is_empty() {
                return Ok(None);
            }
        }
    }

    /// Reads the line break after a chunk's data.
    async fn read_chunk_end(&mut self) -> io::Result<()> {
        let mut end = [0u8; 2];
        self.stream.read_exact(&mut end).await?;
        if &end != b"\r\n" {
            return Err(invalid("a chunk does not end with a line break".to_owned()));
        }
        Ok(())
    }

    /// Reads `length` body bytes into `scratch` and drops them.
    async fn discard(&mut self, mut length: usize, scratch: &mut [u8]) -> io::Result<()> {
        while length > 0 {
            let want = length.min(scratch.len());
            let read = self.stream.read(&mut scratch[..want]).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early"));
            }
            length -= read;
        }
        Ok(())
    }

    /// Sends a GET request and reads its response, dropping the body. Returns the status and
    /// the body's length.
    async fn get_discarding(&mut self, target: &[u8], scratch: &mut [u8]) -> io::Result<(u16, usize)> {
        self.stream.get_mut().write_all(target).await?;
        let head = self.read_head().await?;
        if !head.chunked {
            self.discard(head.content_length, scratch).await?;
            return Ok((head.status, head.content_length));
        }
        let mut total = 0;
        while let Some(size) = self.read_chunk_size().await? {
            self.discard(size, scratch).await?;
            self.read_chunk_end().await?;
            total += size;
        }
        Ok((head.status, total))
    }

    /// Checks without blocking whether the server sent anything or closed the connection.
    /// Returns true when the connection is open and nothing arrived.
    pub fn is_open_and_silent(&self) -> bool {
        if !self.stream.buffer().is_empty() {
            return false;
        }
        let mut byte = 0u8;
        let fd = self.stream.get_ref().as_raw_fd();
        // SAFETY: `fd` is an open socket owned by this connection and `byte` outlives the call.
        let received = unsafe { libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        received < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A request of the load and the body length every response to it must have.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub target: String,
    pub body_bytes: usize,
}

/// Counts and duration of a load run.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Responses with status 200 and the expected body length.
    pub requests: u64,
    /// Body bytes of those responses.
    pub body_bytes: u64,
    /// Responses with another status or length, and failed connections.
    pub failures: u64,
    /// From the start until the last response ended.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Adds the counts and the time of another run.
    pub fn add(&mut self, other: &LoadReport) {
        self.requests += other.requests;
        self.body_bytes += other.body_bytes;
        self.failures += other.failures;
        self.elapsed += other.elapsed;
    }

    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Body throughput in MB/s (10^6 bytes).
    pub fn megabytes_per_s(&self) -> f64 {
        self.body_bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// Loads the server at `address` with `connections` keep-alive connections for `duration`.
/// Each connection issues the requests in turn, starting at its own index, one at a time, and
/// starts no request after the deadline. Connections are opened before the clock starts.
pub async fn run_load(address: SocketAddr, requests: &[LoadRequest], connections: usize, duration: Duration) -> LoadReport {
    let encoded: Arc<Vec<(Vec<u8>, usize)>> = Arc::new(
        requests
            .iter()
            .map(|request| (format!("GET {} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", request.target).into_bytes(), request.body_bytes))
            .collect(),
    );
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(address).await.expect("opening a load connection"));
    }

    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(index, mut connection)| {
            let encoded = encoded.clone();
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                let mut scratch = vec![0u8; DISCARD_BUFFER_BYTES];
                let mut next = index % encoded.len();
                let mut last_end = started;
                while Instant::now() < deadline {
                    let (request, expected_bytes) = &encoded[next];
                    next = (next + 1) % encoded.len();
                    match connection.get_discarding(request, &mut scratch).await {
                        Ok((200, body_bytes)) if body_bytes == *expected_bytes => {
                            report.requests += 1;
                            report.body_bytes += body_bytes as u64;
                        }
                        Ok(_) => report.failures += 1,
                        Err(_) => {
                            report.failures += 1;
                            break;
                        }
                    }
                    last_end = Instant::now();
                }
                report.elapsed = last_end - started;
                report
            })
        })
        .collect();

    let mut total = LoadReport::default();
    for task in tasks {
        let report = task.await.expect("load connection task");
        let elapsed = total.elapsed.max(report.elapsed);
        total.add(&report);
        // The connections ran at the same time: the run lasted as long as the longest one.
        total.elapsed = elapsed;
    }
    total
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::Duration;

    use super::{run_load, Connection, LoadRequest};
    use crate::edge::nginx::{Nginx, DEFAULT_BINARY};

    const FILE_BYTES: usize = 100_000;

    /// Starts the installed nginx serving one file of `FILE_BYTES` bytes as `/chunk.json`.
    async fn serve_one_file(dir: &Path) -> (Nginx, Vec<u8>) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        let content: Vec<u8> = (0..FILE_BYTES).map(|index| b'a' + (index % 26) as u8).collect();
        std::fs::write(root.join("chunk.json"), &content).unwrap();
        let nginx_dir = dir.join("nginx");
        std::fs::create_dir_all(&nginx_dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let nginx = Nginx::start(Path::new(DEFAULT_BINARY), &nginx_dir, &root, SocketAddr::from(([127, 0, 0, 1], port))).await;
        (nginx, content)
    }

    #[tokio::test]
    async fn connection_reads_nginx_responses() {
        let dir = tempfile::Builder::new().prefix("volt-bench-test-").tempdir_in("/tmp").unwrap();
        let (mut nginx, content) = serve_one_file(dir.path()).await;
        let mut connection = Connection::open(nginx.address).await.unwrap();
        assert!(connection.is_open_and_silent());

        let (head, body) = connection.get("/chunk.json").await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, FILE_BYTES);
        assert!(body == content, "the body must be the file's bytes");
        let (head, _) = connection.get("/missing.json").await.unwrap();
        assert_eq!(head.status, 404);

        // A response that arrived but was not read yet is seen.
        connection.send_get("/chunk.json").await.unwrap();
        connection.stream.get_ref().readable().await.unwrap();
        assert!(!connection.is_open_and_silent());
        nginx.stop();
    }

    #[tokio::test]
    async fn load_counts_only_expected_responses() {
        let dir = tempfile::Builder::new().prefix("volt-bench-test-").tempdir_in("/tmp").unwrap();
        let (mut nginx, _) = serve_one_file(dir.path()).await;
        let load = |target: &str, body_bytes: usize| {
            let requests = vec![LoadRequest { target: target.to_owned(), body_bytes }];
            async move { run_load(nginx.address, &requests, 2, Duration::from_millis(200)).await }
        };

        let served = load("/chunk.json", FILE_BYTES).await;
        assert!(served.requests > 0);
        assert_eq!(served.failures, 0);
        assert_eq!(served.body_bytes, served.requests * FILE_BYTES as u64);

        let wrong_length = load("/chunk.json", FILE_BYTES - 1).await;
        assert_eq!(wrong_length.requests, 0);
        assert!(wrong_length.failures > 0);

        let not_found = load("/missing.json", FILE_BYTES).await;
        assert_eq!(not_found.requests, 0);
        assert!(not_found.failures > 0);
        nginx.stop();
    }
}
