//! Volt behind a real nginx cache (`proxy_cache` with `proxy_cache_lock`): many clients
//! long-polling one shape cost Volt a request or two per change, and a new client's initial
//! sync comes from the cache.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::process::raise_file_limit;
use common::{ShapeClient, TestVolt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Clients that follow the shape through nginx.
const CLIENTS: usize = 1_000;
/// Changes made while they follow it.
const CHANGES: usize = 3;
/// Volt's long-poll timeout: no live request times out while the test waits for a change.
const LONG_POLL_TIMEOUT_MS: u64 = 60_000;
const WAIT: Duration = Duration::from_secs(120);

/// An nginx running in the foreground from a configuration in its own temporary directory.
struct Nginx {
    child: Child,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Writes a configuration that caches Volt at `upstream` and starts nginx with it.
    async fn start(upstream: &str) -> Nginx {
        let dir = tempfile::Builder::new().prefix("volt-nginx-").tempdir_in("/tmp").expect("temporary directory");
        let port = free_port();
        let config = nginx_config(dir.path(), port, upstream);
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts (scripts/test.sh installs it)");
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = async {
            loop {
                if let Ok(response) = http.get(format!("{base_url}/v1/health")).send().await {
                    if response.status().is_success() {
                        return;
                    }
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                    panic!("nginx exited with {status}: {log}");
                }
                // nginx has no readiness signal in the foreground; poll its port.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready).await.expect("nginx serves in time");
        Nginx { child, base_url, _dir: dir }
    }

    async fn stop(mut self) {
        let pid = self.child.id().expect("nginx is running") as libc::pid_t;
        // SAFETY: kill has no memory effects; the pid is our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("nginx stops").unwrap();
    }
}

fn nginx_binary() -> &'static str {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or("nginx")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Builds the configuration docs/cdn.md describes, with every path inside `dir`. The cache lock
/// outlasts Volt's long-poll timeout, so requests for a parked live URL wait for its response
/// instead of going to Volt.
fn nginx_config(dir: &Path, port: u16, upstream: &str) -> String {
    let dir = dir.display();
    let lock_s = LONG_POLL_TIMEOUT_MS / 1000 + 10;
    // Workers of a master started as root run as `nobody` unless the `user` directive names
    // another user, and `nobody` cannot write the cache in this directory.
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 { "user root;" } else { "" };
    format!(
        r#"
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=volt:10m max_size=1g inactive=10m use_temp_path=off;
    upstream volt {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://volt;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout {lock_s}s;
            proxy_cache volt;
            proxy_cache_lock on;
            proxy_cache_lock_timeout {lock_s}s;
            proxy_cache_lock_age {lock_s}s;
            proxy_cache_use_stale updating;
            add_header X-Cache $upstream_cache_status always;
        }}
    }}
}}
"#
    )
}

/// What a client reports to the test.
enum Event {
    /// The client is about to send a request.
    Requesting(usize),
    /// The client has this many rows after a response, and is up to date or not.
    Rows(usize, usize, bool),
}

/// Follows the shape until `stop` is set, reporting each request and each result.
async fn follow(index: usize, mut client: ShapeClient, events: mpsc::UnboundedSender<Event>, stop: Arc<AtomicUsize>) {
    while stop.load(Ordering::Relaxed) == 0 {
        let _ = events.send(Event::Requesting(index));
        client.poll().await;
        let _ = events.send(Event::Rows(index, client.rows.len(), client.up_to_date));
    }
}

/// Tracks every client's last report.
struct Clients {
    rows: Vec<usize>,
    up_to_date: Vec<bool>,
    requesting: Vec<bool>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Clients {
    /// Reads reports until every client is up to date with `rows` rows and has sent its next
    /// request, which is then a live one.
    async fn wait_until_all_hold(&mut self, rows: usize) {
        let done = |clients: &Clients| {
            clients.rows.iter().all(|held| *held == rows) && clients.up_to_date.iter().all(|u| *u) && clients.requesting.iter().all(|r| *r)
        };
        while !done(self) {
            match self.events.recv().await.expect("clients are running") {
                Event::Requesting(index) => self.requesting[index] = true,
                Event::Rows(index, held, up_to_date) => {
                    self.rows[index] = held;
                    self.up_to_date[index] = up_to_date;
                    self.requesting[index] = false;
                }
            }
        }
    }
}

/// Waits until Volt serves exactly one shape request: the live request nginx forwarded for
/// every waiting client. Volt has no event for it, so this polls its counter.
async fn wait_for_one_parked_request(volt: &TestVolt) {
    let engine = volt.server.engine();
    while engine.shape_requests_in_flight() != 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_long_polls_reach_volt_once_per_change() {
    raise_file_limit();
    let volt = TestVolt::start(LONG_POLL_TIMEOUT_MS).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY, title text); INSERT INTO items VALUES (1, 'first');").await.unwrap();
    let nginx = Nginx::start(&volt.server.address.to_string()).await;
    // Borrowed, not cloned: Volt stops only once the test holds no reference to its engine.
    let origin_requests = || volt.server.engine().shape_requests_total.load(Ordering::Relaxed);

    let http = reqwest::Client::new();
    let (sender, events) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..CLIENTS {
        let client = ShapeClient::new(http.clone(), &nginx.base_url, "items");
        tasks.spawn(follow(index, client, sender.clone(), stop.clone()));
    }
    let mut clients = Clients { rows: vec![0; CLIENTS], up_to_date: vec![false; CLIENTS], requesting: vec![false; CLIENTS], events };
    tokio::time::timeout(WAIT, clients.wait_until_all_hold(1)).await.expect("every client syncs");
    tokio::time::timeout(WAIT, wait_for_one_parked_request(&volt)).await.expect("one live request reaches Volt");
    let initial_requests = origin_requests();
    eprintln!("{CLIENTS} clients synced with {initial_requests} requests to Volt");
    assert!(initial_requests <= 6, "{initial_requests} requests reached Volt for the initial sync");

    for change in 1..=CHANGES {
        let before = origin_requests();
        sql.execute("INSERT INTO items VALUES ($1, 'next')", &[&(change as i32 + 1)]).await.unwrap();
        tokio::time::timeout(WAIT, clients.wait_until_all_hold(change + 1)).await.expect("every client gets the change");
        tokio::time::timeout(WAIT, wait_for_one_parked_request(&volt)).await.expect("the next live request reaches Volt");
        let requests = origin_requests() - before;
        eprintln!("change {change}: {requests} requests reached Volt for {CLIENTS} clients");
        assert!(requests <= 2, "change {change} cost {requests} requests to Volt");
    }

    // A new client's initial sync is served from the cache the others filled.
    let before = origin_requests();
    let url = format!("{}/v1/shape", nginx.base_url);
    let first = http.get(&url).query(&[("table", "items"), ("offset", "-1")]).send().await.unwrap();
    assert_eq!(first.headers()["x-cache"], "HIT");
    let handle = first.headers()["electric-handle"].to_str().unwrap().to_owned();
    let offset = first.headers()["electric-offset"].to_str().unwrap().to_owned();
    let rows: Vec<serde_json::Value> = first.json().await.unwrap();
    assert!(rows.iter().any(|message| message["value"]["id"] == "1"));
    let next = http.get(&url).query(&[("table", "items"), ("offset", offset.as_str()), ("handle", handle.as_str())]).send().await.unwrap();
    assert_eq!(next.headers()["x-cache"], "HIT");
    assert!(next.headers().contains_key("electric-up-to-date"));
    assert_eq!(origin_requests(), before, "the new client's initial sync reached Volt");

    stop.store(1, Ordering::Relaxed);
    sql.execute("INSERT INTO items VALUES (1000, 'last')", &[]).await.unwrap();
    while let Some(result) = tasks.join_next().await {
        result.expect("a client failed");
    }
    nginx.stop().await;
    volt.stop().await;
}
