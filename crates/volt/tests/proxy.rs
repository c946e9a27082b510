//! Volt behind a real nginx with its default response buffering: server-sent events must
//! still arrive as they are written, and gzip responses must pass through unchanged.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::{timeout, Instant};

use common::TestVolt;

/// Maximum wait for nginx to accept connections.
const NGINX_START_WAIT: Duration = Duration::from_secs(10);
/// Maximum wait for nginx to exit after SIGTERM.
const NGINX_STOP_WAIT: Duration = Duration::from_secs(10);

/// An nginx process that proxies one loopback port to Volt, stopped when dropped.
struct Nginx {
    child: Child,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in the foreground with a configuration of its own, using nginx's default
    /// `proxy_buffering on` and HTTP `http_version` (`1.0`, nginx's default, or `1.1`) towards
    /// Volt.
    async fn start(upstream: &str, http_version: &str) -> Nginx {
        let dir = tempfile::Builder::new().prefix("volt-nginx-").tempdir_in("/tmp").expect("temporary directory");
        // Run as root, nginx's workers run as `nobody` and must reach their temporary files.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let port = free_port();
        let upstream = upstream.trim_start_matches("http://");
        let prefix = dir.path().display();
        let config = format!(
            "pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version {http_version};
        }}
    }}
}}
"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let child = Command::new(nginx_binary())
            .args(["-p", &prefix.to_string(), "-c", &config_path.display().to_string(), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, base_url: format!("http://127.0.0.1:{port}"), _dir: dir };
        nginx.wait_until_listening(port).await;
        nginx
    }

    /// Waits until nginx accepts connections; nginx signals readiness no other way.
    async fn wait_until_listening(&self, port: u16) {
        let deadline = Instant::now() + NGINX_START_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on port {port} in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nginx {
    /// Stops nginx with SIGTERM, its fast shutdown, which also ends its worker processes;
    /// SIGKILL would leave the workers running. SIGKILL follows only if nginx ignores SIGTERM.
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: `pid` is this test's own child, which has not been waited for yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + NGINX_STOP_WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// Returns a port that was free a moment ago. Another process could take it before nginx
/// binds it, which would fail the start with a clear error.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_pass_nginx_unbuffered() {
    let volt = TestVolt::start_with(5_000, |settings| settings.sse_lifetime = Duration::from_secs(60)).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY)").await.unwrap();
    // Over HTTP/1.0 Volt cannot use chunked encoding, so it ends each stream by closing the
    // connection; both must stream.
    for (http_version, id) in [("1.0", 1), ("1.1", 2)] {
        let nginx = Nginx::start(&volt.base_url, http_version).await;
        expect_event_through(&nginx, &sql, &volt.http, id).await;
    }
    volt.stop().await;
}

/// Opens an event stream through `nginx`, inserts row `id` and expects its event well before
/// the stream's 60 s lifetime ends.
async fn expect_event_through(nginx: &Nginx, sql: &tokio_postgres::Client, http: &reqwest::Client, id: i32) {
    let mut client = common::ShapeClient::new(http.clone(), &nginx.base_url, "items");
    client.sync().await;
    let handle = client.handle.clone().unwrap();

    let url = format!("{}/v1/shape?table=items&handle={handle}&offset={}&live=true&live_sse=true", nginx.base_url, client.offset);
    let mut response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    // The stream lasts 60 s: the event must come through long before the stream ends, which
    // is when a buffering proxy would pass it on.
    let started = Instant::now();
    sql.execute("INSERT INTO items VALUES ($1)", &[&id]).await.unwrap();
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("up-to-date") {
        let chunk = timeout(Duration::from_secs(20), response.chunk()).await.expect("an event through nginx in time").unwrap();
        received.extend_from_slice(&chunk.expect("the stream stays open"));
    }
    let text = String::from_utf8(received).unwrap();
    assert!(text.contains(r#""operation":"insert""#), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20), "the event took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_revalidation_pass_nginx() {
    let volt = TestVolt::start(5_000).await;
    let nginx = Nginx::start(&volt.base_url, "1.1").await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY, title text); INSERT INTO items SELECT g, 'title ' || g FROM generate_series(1, 500) g")
        .await
        .unwrap();
    let url = format!("{}/v1/shape?table=items&offset=-1", nginx.base_url);

    let plain = volt.http.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let plain_body = plain.bytes().await.unwrap();

    let compressed = volt.http.get(&url).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    assert_eq!(compressed.headers()["etag"], etag.as_str());
    let compressed_body = compressed.bytes().await.unwrap();
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&compressed_body[..]).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain_body);

    let not_modified = volt.http.get(&url).header("accept-encoding", "gzip").header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);
    drop(nginx);
    volt.stop().await;
}
