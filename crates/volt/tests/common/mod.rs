//! Test support: a Volt server with its own embedded PostgreSQL, a minimal Shape API client
//! that applies messages the way the official clients do, and a `SELECT` oracle.

#![allow(dead_code)]

pub mod process;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use clap::Parser;
use volt::config::Args;
use volt::Server;

/// One row as text, by column name; `None` is NULL.
pub type TextRow = BTreeMap<String, Option<String>>;

/// A Volt server on 127.0.0.1 with its embedded PostgreSQL, both stopped by [`TestVolt::stop`].
pub struct TestVolt {
    pub server: Server,
    pub base_url: String,
    pub http: reqwest::Client,
    settings: volt::config::Settings,
    storage: tempfile::TempDir,
}

/// A PostgreSQL server of a test's own, for tests that stop and start Volt beside it.
pub struct TestPostgres {
    pub server: volt::pg::embedded::EmbeddedPostgres,
    _dir: tempfile::TempDir,
}

impl TestPostgres {
    pub async fn start() -> TestPostgres {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra settings, such as a small `max_slot_wal_keep_size`.
    pub async fn start_with(settings: &[(&str, &str)]) -> TestPostgres {
        let dir = searchable_temp_dir();
        let mut options = Self::options(&dir, None);
        options.extra_settings.extend(settings.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        let server = volt::pg::embedded::EmbeddedPostgres::start(options).await.expect("PostgreSQL starts");
        TestPostgres { server, _dir: dir }
    }

    fn options(dir: &tempfile::TempDir, port: Option<u16>) -> volt::pg::embedded::EmbeddedOptions {
        volt::pg::embedded::EmbeddedOptions {
            data_dir: dir.path().join("data"),
            bin_dir: None,
            extra_settings: vec![("fsync".into(), "off".into()), ("synchronous_commit".into(), "off".into())],
            initdb_no_sync: true,
            port,
        }
    }

    /// Stops the server (a fast shutdown) and starts it again on the same port.
    pub async fn restart(&mut self) {
        let port = self.server.port();
        self.server.stop();
        self.server = volt::pg::embedded::EmbeddedPostgres::start(Self::options(&self._dir, Some(port))).await.expect("PostgreSQL restarts");
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// Creates a temporary directory under /tmp that the `postgres` user can reach, because
/// PostgreSQL runs as that user when tests run as root.
fn searchable_temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("volt-test-").tempdir_in("/tmp").expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

impl TestVolt {
    /// Starts Volt on the embedded default, with durability settings off for speed.
    pub async fn start(long_poll_timeout_ms: u64) -> TestVolt {
        Self::start_with(long_poll_timeout_ms, |_| {}).await
    }

    /// Starts Volt like [`TestVolt::start`] after `adjust` changed its settings.
    pub async fn start_with(long_poll_timeout_ms: u64, adjust: impl FnOnce(&mut volt::config::Settings)) -> TestVolt {
        let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
        let storage = searchable_temp_dir();
        let args = Args::try_parse_from(["volt", "--long-poll-timeout-ms", &long_poll_timeout_ms.to_string()]).expect("valid arguments");
        let mut settings = args.into_settings().expect("valid settings");
        // Set explicitly: variables such as DATABASE_URL in the environment must not leak in.
        settings.database_url = None;
        settings.storage_dir = storage.path().to_owned();
        settings.port = 0;
        settings.listen_address = std::net::Ipv4Addr::LOCALHOST.into();
        settings.embedded_extra_settings = vec![
            ("fsync".into(), "off".into()),
            ("synchronous_commit".into(), "off".into()),
            ("full_page_writes".into(), "off".into()),
        ];
        adjust(&mut settings);
        let server = Server::start(settings.clone()).await.expect("Volt starts");
        let base_url = format!("http://{}", server.address);
        // A restart keeps the port, so clients can carry on with the same URL.
        settings.port = server.address.port();
        TestVolt { server, base_url, http: reqwest::Client::new(), settings, storage }
    }

    /// Stops Volt and starts it again on the same storage, database and port.
    pub async fn restart(self) -> TestVolt {
        let TestVolt { server, base_url, http, settings, storage } = self;
        server.stop().await;
        let server = Server::start(settings.clone()).await.expect("Volt restarts");
        TestVolt { server, base_url, http, settings, storage }
    }

    /// Stops Volt, runs `while_down` (writes to Postgres, damage to the storage), and starts
    /// Volt again on the same storage, database and port.
    pub async fn restart_with_writes<F, Fut>(self, while_down: F) -> TestVolt
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let TestVolt { server, base_url, http, settings, storage } = self;
        server.stop().await;
        while_down().await;
        let server = Server::start(settings.clone()).await.expect("Volt restarts");
        TestVolt { server, base_url, http, settings, storage }
    }

    /// Returns the storage directory, for tests that damage it.
    pub fn storage_dir(&self) -> &std::path::Path {
        self.storage.path()
    }

    /// Opens a new connection to the database Volt syncs from.
    pub async fn sql(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.server.database_url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }

    pub fn shape(&self, table: &str) -> ShapeClient {
        ShapeClient::new(self.http.clone(), &self.base_url, table)
    }

    /// Creates a client of a shape with extra definition parameters (`where`, `columns`, …).
    pub fn shape_with(&self, table: &str, parameters: &[(&str, &str)]) -> ShapeClient {
        let mut client = ShapeClient::new(self.http.clone(), &self.base_url, table);
        client.parameters = parameters.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        client
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http.get(format!("{}{}", self.base_url, path_and_query)).send().await.expect("request")
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A client of one shape that follows it like the official clients: fetch until up to date,
/// apply inserts, updates and deletes by key, restart on 409.
pub struct ShapeClient {
    http: reqwest::Client,
    url: String,
    table: String,
    pub handle: Option<String>,
    pub offset: String,
    pub cursor: String,
    pub rows: BTreeMap<String, TextRow>,
    pub up_to_date: bool,
    pub refetches: usize,
    /// Every data message received, in order.
    pub received: Vec<Value>,
    /// Log position of the last change applied, to check that positions only grow.
    last_position: Option<(u64, u64)>,
    /// Definition parameters sent with every request.
    pub parameters: Vec<(String, String)>,
}

impl ShapeClient {
    pub fn new(http: reqwest::Client, base_url: &str, table: &str) -> Self {
        ShapeClient {
            http,
            url: format!("{base_url}/v1/shape"),
            table: table.to_owned(),
            handle: None,
            offset: "-1".to_owned(),
            cursor: String::new(),
            rows: BTreeMap::new(),
            up_to_date: false,
            refetches: 0,
            received: Vec::new(),
            last_position: None,
            parameters: Vec::new(),
        }
    }

    /// Sends one request (live once up to date) and applies its messages.
    pub async fn poll(&mut self) -> reqwest::StatusCode {
        self.try_poll().await.unwrap_or_else(|error| panic!("{}: request failed: {error}", self.table))
    }

    /// Like [`ShapeClient::poll`], but a failed connection or a 503 is an error to retry on,
    /// as while Volt restarts. Nothing of a failed response is applied.
    pub async fn try_poll(&mut self) -> Result<reqwest::StatusCode, String> {
        let mut query: Vec<(&str, String)> = vec![("table", self.table.clone()), ("offset", self.offset.clone())];
        for (name, value) in &self.parameters {
            query.push((name.as_str(), value.clone()));
        }
        if let Some(handle) = &self.handle {
            query.push(("handle", handle.clone()));
        }
        if self.up_to_date {
            query.push(("live", "true".to_owned()));
            query.push(("cursor", self.cursor.clone()));
        }
        let response = self.http.get(&self.url).query(&query).send().await.map_err(|error| error.to_string())?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err("503 Service Unavailable".to_owned());
        }
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        if status == reqwest::StatusCode::CONFLICT {
            self.handle = header("electric-handle");
            self.offset = "-1".to_owned();
            self.rows.clear();
            self.last_position = None;
            self.up_to_date = false;
            self.refetches += 1;
            return Ok(status);
        }
        assert_eq!(status, reqwest::StatusCode::OK, "unexpected status for {}: {:?}", self.table, response.text().await);
        let handle = header("electric-handle").expect("electric-handle header");
        let offset = header("electric-offset").expect("electric-offset header");
        let cursor = header("electric-cursor");
        let messages: Vec<Value> = response.json().await.map_err(|error| error.to_string())?;
        self.handle = Some(handle);
        self.offset = offset;
        if let Some(cursor) = cursor {
            self.cursor = cursor;
        }
        for message in messages {
            self.apply(message);
        }
        Ok(status)
    }

    fn apply(&mut self, message: Value) {
        let headers = &message["headers"];
        if let Some(control) = headers["control"].as_str() {
            if control == "up-to-date" {
                self.up_to_date = true;
            }
            return;
        }
        let key = message["key"].as_str().expect("key").to_owned();
        let value: TextRow = message["value"]
            .as_object()
            .expect("value object")
            .iter()
            .map(|(column, value)| (column.clone(), value.as_str().map(str::to_owned)))
            .collect();
        // Log positions only grow: a repeated or reordered change is a bug, even where
        // applying it again would leave the same rows.
        if let (Some(lsn), Some(op)) = (headers["lsn"].as_str(), headers["op_position"].as_u64()) {
            let position = (lsn.parse::<u64>().expect("decimal lsn"), op);
            assert!(
                self.last_position.is_none_or(|last| position > last),
                "{}: change at {position:?} after {:?}",
                self.table,
                self.last_position
            );
            self.last_position = Some(position);
        }
        match headers["operation"].as_str().expect("operation") {
            "insert" => {
                let previous = self.rows.insert(key.clone(), value);
                assert!(previous.is_none(), "{}: insert of existing row {key}", self.table);
            }
            "update" => {
                let row = self.rows.get_mut(&key).unwrap_or_else(|| panic!("update of unknown row {key}"));
                row.extend(value);
            }
            "delete" => {
                assert!(self.rows.remove(&key).is_some(), "delete of unknown row {key}");
            }
            other => panic!("unknown operation {other}"),
        }
        self.received.push(message);
    }

    /// Polls until the client has an up-to-date copy (non-live requests only).
    pub async fn sync(&mut self) {
        for _ in 0..10_000 {
            if self.up_to_date {
                return;
            }
            self.poll().await;
        }
        panic!("{} never became up to date", self.table);
    }

    /// Rows keyed by the given key column's value, for comparison with [`select_rows`].
    pub fn rows_by(&self, key_column: &str) -> BTreeMap<String, TextRow> {
        self.rows
            .values()
            .map(|row| (row[key_column].clone().expect("key value"), row.clone()))
            .collect()
    }
}

/// Reads every row of a table as text, the oracle clients are compared with.
pub async fn select_rows(client: &Client, table: &str, key_column: &str) -> BTreeMap<String, TextRow> {
    select_query(client, &format!("SELECT * FROM {table}"), key_column).await
}

/// Reads the rows of any query as text, keyed by one column.
pub async fn select_query(client: &Client, query: &str, key_column: &str) -> BTreeMap<String, TextRow> {
    let mut rows = BTreeMap::new();
    for message in client.simple_query(query).await.expect("select") {
        if let SimpleQueryMessage::Row(row) = message {
            let mut text_row = TextRow::new();
            for (index, column) in row.columns().iter().enumerate() {
                text_row.insert(column.name().to_owned(), row.get(index).map(str::to_owned));
            }
            rows.insert(text_row[key_column].clone().expect("key value"), text_row);
        }
    }
    rows
}

/// Polls `client` live until `done` holds for it, failing after `timeout`.
pub async fn follow_until(client: &mut ShapeClient, timeout: Duration, mut done: impl FnMut(&ShapeClient) -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    client.sync().await;
    while !done(client) {
        assert!(tokio::time::Instant::now() < deadline, "{} did not reach the expected state in time", client.table);
        client.poll().await;
    }
}
