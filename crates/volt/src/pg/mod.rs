//! Talking to Postgres outside the replication stream: connection settings, the catalog,
//! identifiers, snapshot visibility and the embedded server.

pub mod catalog;
pub mod embedded;
pub mod names;
pub mod visibility;

use std::time::Duration;

use pgwire_replication::ReplicationConfig;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// Session settings pinned on every connection Volt opens, the replication connection
/// included, so a value prints the same in a snapshot and in the stream whatever the database
/// or role defaults are. These are the settings the Shape API's clients expect.
const DISPLAY_OPTIONS: &str = "-c DateStyle=ISO,DMY -c TimeZone=UTC -c IntervalStyle=iso_8601 \
     -c extra_float_digits=1 -c bytea_output=hex -c client_encoding=UTF8";

/// How long to wait for a connection to Postgres before giving up on one attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings, parsed once from `DATABASE_URL` (URL or key/value form).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    config: Config,
}

impl ConnectionSettings {
    /// Parses a connection string. The error message never contains the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config = text.parse().map_err(|error| format!("invalid database URL: {error}"))?;
        if config.get_hosts().is_empty() {
            return Err("invalid database URL: it names no host".to_owned());
        }
        Ok(ConnectionSettings { config })
    }

    /// Settings for an ordinary query connection, with the display settings pinned.
    pub fn query_config(&self) -> Config {
        let mut config = self.config.clone();
        let options = match config.get_options() {
            Some(user_options) if !user_options.is_empty() => format!("{user_options} {DISPLAY_OPTIONS}"),
            _ => DISPLAY_OPTIONS.to_owned(),
        };
        config.options(&options);
        config.application_name("volt");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config
    }

    /// Settings for the walsender connection that streams `publication` from `slot`.
    pub fn replication_config(&self, slot: &str, publication: &str) -> ReplicationConfig {
        let host = match &self.config.get_hosts()[0] {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.to_string_lossy().into_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or("postgres").to_owned();
        let password = self
            .config
            .get_password()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default();
        let database = self.config.get_dbname().unwrap_or(&user).to_owned();
        ReplicationConfig::new(host, user, password, database, slot, publication)
            .with_port(port)
            .with_options(DISPLAY_OPTIONS)
            .with_application_name("volt replication")
            // A raised acknowledged position reaches the server within this time, so the slot
            // releases WAL promptly; a status message is a few dozen bytes.
            .with_status_interval(Duration::from_millis(100))
            .with_wakeup_interval(Duration::from_secs(1))
            .with_buffer_size(4096)
    }

    /// Describes the server for logs: host, port and database, never the password.
    pub fn describe(&self) -> String {
        let host = match &self.config.get_hosts()[0] {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let database = self.config.get_dbname().or(self.config.get_user()).unwrap_or("postgres");
        format!("host={host} port={port} dbname={database}")
    }
}

/// Opens a query connection and drives it on its own task.
pub async fn connect(settings: &ConnectionSettings) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = settings.query_config().connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "Postgres query connection ended");
        }
    });
    Ok(client)
}
