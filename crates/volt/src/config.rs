//! Command-line options and environment variables, parsed into the settings Volt runs with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Volt keeps partial replicas of Postgres tables in sync with clients over HTTP, speaking
/// ElectricSQL's Shape API.
#[derive(Debug, Clone, Parser)]
#[command(name = "volt", version, about)]
pub struct Args {
    /// Postgres to sync from, as a URL or key/value connection string. Without it Volt starts
    /// its own PostgreSQL from the installed server binaries, inside the storage directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for shape logs and, with the embedded default, the PostgreSQL cluster.
    #[arg(long, env = "ELECTRIC_STORAGE_DIR", default_value = "./volt-data")]
    pub storage_dir: PathBuf,

    /// HTTP port; 0 picks a free one.
    #[arg(long, env = "ELECTRIC_PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address the HTTP server listens on.
    #[arg(long, env = "VOLT_LISTEN_ADDRESS", default_value = "127.0.0.1")]
    pub listen_address: IpAddr,

    /// Directory with the PostgreSQL server binaries (initdb, postgres) for the embedded
    /// default; searched for under the usual install paths when absent.
    #[arg(long, env = "VOLT_PG_BIN_DIR")]
    pub pg_bin_dir: Option<PathBuf>,

    /// Publication Volt creates and adds synced tables to.
    #[arg(long, env = "VOLT_PUBLICATION", default_value = "volt_publication")]
    pub publication: String,

    /// Persistent logical replication slot Volt streams from.
    #[arg(long, env = "VOLT_SLOT", default_value = "volt_slot")]
    pub slot: String,

    /// How long a live request waits for a change before Volt replies that it is up to date, in ms.
    #[arg(long, env = "ELECTRIC_LONG_POLL_TIMEOUT", default_value_t = 20_000)]
    pub long_poll_timeout_ms: u64,

    /// A snapshot or log chunk closes once it contains this many bytes of messages.
    #[arg(long, env = "ELECTRIC_SHAPE_CHUNK_BYTES_THRESHOLD", default_value_t = 10 * 1024 * 1024)]
    pub chunk_bytes_max: u64,

    /// Snapshots that may run at the same time. Each one uses a Postgres connection.
    #[arg(long, env = "VOLT_SNAPSHOT_CONCURRENCY_MAX", default_value_t = 4)]
    pub snapshot_concurrency_max: usize,

    /// `max-age` of cacheable non-live responses, in seconds.
    #[arg(long, env = "ELECTRIC_CACHE_MAX_AGE", default_value_t = 60)]
    pub cache_max_age_s: u64,

    /// `stale-while-revalidate` of cacheable non-live responses, in seconds.
    #[arg(long, env = "ELECTRIC_CACHE_STALE_AGE", default_value_t = 300)]
    pub cache_stale_age_s: u64,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: Option<String>,
    pub storage_dir: PathBuf,
    pub port: u16,
    pub listen_address: IpAddr,
    pub pg_bin_dir: Option<PathBuf>,
    pub publication: String,
    pub slot: String,
    pub long_poll_timeout: Duration,
    pub chunk_bytes_max: u64,
    pub snapshot_concurrency_max: usize,
    pub cache_max_age_s: u64,
    pub cache_stale_age_s: u64,
    /// Extra server settings for the embedded PostgreSQL (tests turn off fsync).
    pub embedded_extra_settings: Vec<(String, String)>,
}

impl Args {
    /// Checks the values that clap cannot check alone.
    pub fn into_settings(self) -> Result<Settings, String> {
        if self.long_poll_timeout_ms == 0 {
            return Err("--long-poll-timeout-ms must be at least 1".to_owned());
        }
        if self.chunk_bytes_max == 0 {
            return Err("--chunk-bytes-max must be at least 1".to_owned());
        }
        if self.snapshot_concurrency_max == 0 {
            return Err("--snapshot-concurrency-max must be at least 1".to_owned());
        }
        Ok(Settings {
            database_url: self.database_url.filter(|url| !url.is_empty()),
            storage_dir: self.storage_dir,
            port: self.port,
            listen_address: self.listen_address,
            pg_bin_dir: self.pg_bin_dir,
            publication: self.publication,
            slot: self.slot,
            long_poll_timeout: Duration::from_millis(self.long_poll_timeout_ms),
            chunk_bytes_max: self.chunk_bytes_max,
            snapshot_concurrency_max: self.snapshot_concurrency_max,
            cache_max_age_s: self.cache_max_age_s,
            cache_stale_age_s: self.cache_stale_age_s,
            embedded_extra_settings: Vec::new(),
        })
    }
}
