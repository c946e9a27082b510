//! Command-line options and environment variables, parsed into the settings Volt runs with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

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

    /// Bytes of new log entries, across all shapes, that Volt keeps in memory before writing
    /// them to the shape log files. The journal makes them durable before clients see them, so
    /// this bounds memory, not safety; a larger value means fewer, larger writes.
    #[arg(long, env = "VOLT_UNWRITTEN_LOG_BYTES_MAX", default_value_t = 32 * 1024 * 1024)]
    pub unwritten_log_bytes_max: usize,

    /// Snapshots that may run at the same time. Each one uses a Postgres connection.
    #[arg(long, env = "VOLT_SNAPSHOT_CONCURRENCY_MAX", default_value_t = 4)]
    pub snapshot_concurrency_max: usize,

    /// Interval between checks that the tables of live shapes still exist with the same OID
    /// and columns, in ms. Shapes on a table that was dropped, or dropped and created again,
    /// are removed at the next check, so their clients resync.
    #[arg(long, env = "VOLT_TABLE_CHECK_INTERVAL_MS", default_value_t = 60_000)]
    pub table_check_interval_ms: u64,

    /// `max-age` of cacheable non-live responses, in seconds.
    #[arg(long, env = "ELECTRIC_CACHE_MAX_AGE", default_value_t = 60)]
    pub cache_max_age_s: u64,

    /// `stale-while-revalidate` of cacheable non-live responses, in seconds.
    #[arg(long, env = "ELECTRIC_CACHE_STALE_AGE", default_value_t = 300)]
    pub cache_stale_age_s: u64,

    /// Lets clients delete shapes with `DELETE /v1/shape` and `DELETE /v1/shape/{table}`. Any
    /// client can then force every client of a shape to resync, so keep it off in production.
    #[arg(long, env = "VOLT_ALLOW_SHAPE_DELETION", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_shape_deletion: bool,

    /// Secret every shape request must carry as the `secret` query parameter (or the older
    /// `api_secret`). Without it any client that reaches Volt can read every table it syncs.
    #[arg(long, env = "VOLT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Allows listening on an address other than loopback without `--secret`.
    #[arg(long, env = "VOLT_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,

    /// Shape requests served at the same time, live requests included; beyond it Volt returns
    /// 503 with `retry-after`. Each one takes a socket, and every shape keeps its log open, so
    /// both share the open-file limit. NOTE: the default is an estimate, not a measured
    /// capacity: it leaves most of a common hard limit (often 65536 or more) to shape logs.
    #[arg(long, env = "VOLT_MAX_CONCURRENT_REQUESTS", default_value_t = 10_000)]
    pub max_concurrent_requests: usize,

    /// How long a server-sent events response (`live_sse=true`) stays open, in ms. The client
    /// then reconnects from the last offset it received.
    #[arg(long, env = "VOLT_SSE_LIFETIME_MS", default_value_t = 60_000)]
    pub sse_lifetime_ms: u64,

    /// Idle time after which a server-sent events response sends a `: keep-alive` comment, in
    /// ms, so that proxies do not close a quiet stream.
    #[arg(long, env = "VOLT_SSE_KEEP_ALIVE_INTERVAL_MS", default_value_t = 21_000)]
    pub sse_keep_alive_interval_ms: u64,

    /// JSON responses of at least this many bytes are sent gzip-compressed to clients whose
    /// `accept-encoding` allows it.
    #[arg(long, env = "VOLT_COMPRESSION_MIN_BYTES", default_value_t = 1024)]
    pub compression_min_bytes: usize,

    /// Sends every response uncompressed, for a proxy in front of Volt that compresses itself.
    #[arg(long, env = "VOLT_DISABLE_COMPRESSION", value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_compression: bool,
    /// Bytes of a response read from a shape's files and rendered at a time. A response is read
    /// piece by piece as the client takes it, so a client that stops reading keeps at most
    /// about this much (one message larger than it is read whole), plus the connection buffer.
    #[arg(long, env = "VOLT_RESPONSE_PIECE_BYTES_MAX", default_value_t = 64 * 1024)]
    pub response_piece_bytes_max: usize,

    /// Maximum bytes of rendered closed chunks kept in memory and shared by their readers; 0
    /// turns the cache off. A chunk larger than this is always read from its file.
    #[arg(long, env = "VOLT_CHUNK_CACHE_BYTES_MAX", default_value_t = 64 * 1024 * 1024)]
    pub chunk_cache_bytes_max: usize,

    /// Maximum length of a request target (path and query), in bytes. Longer ones get 414.
    #[arg(long, env = "VOLT_REQUEST_URL_BYTES_MAX", default_value_t = 16 * 1024)]
    pub request_url_bytes_max: usize,

    /// Maximum total size of a request's header names and values, in bytes. Larger ones get
    /// 431.
    #[arg(long, env = "VOLT_REQUEST_HEADER_BYTES_MAX", default_value_t = 32 * 1024)]
    pub request_header_bytes_max: usize,

    /// Maximum number of headers in a request. A request with more gets 431 without a body,
    /// because the HTTP layer rejects it before Volt reads it.
    #[arg(long, env = "VOLT_REQUEST_HEADERS_MAX", default_value_t = 100)]
    pub request_headers_max: usize,

    /// How long a shutdown waits for responses still being sent (to slow readers, say) before
    /// it closes their connections, in ms. Waiting live requests end at once.
    #[arg(long, env = "VOLT_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
}

/// Environment variables that Electric reads for settings Volt names otherwise: option id,
/// variable. Each one applies only when neither the option, nor its own variable, nor an
/// earlier variable in this list for the same option is set.
const ELECTRIC_ENV_NAMES: [(&str, &str); 6] = [
    ("cache_max_age_s", "CACHE_MAX_AGE"),
    ("cache_stale_age_s", "CACHE_STALE_AGE"),
    ("allow_shape_deletion", "ENABLE_INTEGRATION_TESTING"),
    ("allow_shape_deletion", "ELECTRIC_ENABLE_INTEGRATION_TESTING"),
    ("secret", "ELECTRIC_SECRET"),
    ("insecure", "ELECTRIC_INSECURE"),
];

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
    pub unwritten_log_bytes_max: usize,
    pub snapshot_concurrency_max: usize,
    pub table_check_interval: Duration,
    pub cache_max_age_s: u64,
    pub cache_stale_age_s: u64,
    pub allow_shape_deletion: bool,
    /// Secret shape requests must carry; `None` serves them without one.
    pub secret: Option<String>,
    pub max_concurrent_requests: usize,
    /// Time after which a server-sent events response ends.
    pub sse_lifetime: Duration,
    /// Idle time after which a server-sent events response sends a keep-alive comment.
    pub sse_keep_alive_interval: Duration,
    /// Smallest JSON body sent compressed; `None` when compression is off.
    pub compression_min_bytes: Option<usize>,
    pub response_piece_bytes_max: usize,
    pub chunk_cache_bytes_max: usize,
    pub request_url_bytes_max: usize,
    pub request_header_bytes_max: usize,
    pub request_headers_max: usize,
    pub shutdown_timeout: Duration,
    /// Extra server settings for the embedded PostgreSQL (tests turn off fsync).
    pub embedded_extra_settings: Vec<(String, String)>,
}

impl Args {
    /// Parses the command line and the environment like [`Parser::parse`], and also reads the
    /// variables Electric uses for the same settings (`CACHE_MAX_AGE`, `CACHE_STALE_AGE`,
    /// `ENABLE_INTEGRATION_TESTING`, `ELECTRIC_ENABLE_INTEGRATION_TESTING`, `ELECTRIC_SECRET`,
    /// `ELECTRIC_INSECURE`). Exits with a message on invalid input.
    pub fn parse_with_electric_env() -> Args {
        Self::try_parse_with_electric_env(std::env::args_os(), |name| std::env::var(name).ok())
            .unwrap_or_else(|error| error.exit())
    }

    /// Parses like [`Args::parse_with_electric_env`], reading Electric's variable names
    /// through `read_env`.
    pub fn try_parse_with_electric_env<I, T>(args: I, read_env: impl Fn(&str) -> Option<String>) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        let mut parsed = Args::from_arg_matches(&matches)?;
        let mut applied: Vec<&str> = Vec::new();
        for (id, variable) in ELECTRIC_ENV_NAMES {
            let unset = matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue));
            if !unset || applied.contains(&id) {
                continue;
            }
            let Some(value) = read_env(variable).filter(|value| !value.is_empty()) else {
                continue;
            };
            match id {
                "cache_max_age_s" => parsed.cache_max_age_s = parse_seconds(variable, &value)?,
                "cache_stale_age_s" => parsed.cache_stale_age_s = parse_seconds(variable, &value)?,
                "secret" => parsed.secret = Some(value),
                "insecure" => parsed.insecure = parse_boolean(variable, &value)?,
                _ => parsed.allow_shape_deletion = parse_boolean(variable, &value)?,
            }
            applied.push(id);
        }
        Ok(parsed)
    }

    /// Checks the values that clap cannot check alone.
    pub fn into_settings(self) -> Result<Settings, String> {
        if self.table_check_interval_ms == 0 {
            return Err("--table-check-interval-ms must be at least 1".to_owned());
        }
        if self.long_poll_timeout_ms == 0 {
            return Err("--long-poll-timeout-ms must be at least 1".to_owned());
        }
        if self.chunk_bytes_max == 0 {
            return Err("--chunk-bytes-max must be at least 1".to_owned());
        }
        if self.snapshot_concurrency_max == 0 {
            return Err("--snapshot-concurrency-max must be at least 1".to_owned());
        }
        if self.max_concurrent_requests == 0 {
            return Err("--max-concurrent-requests must be at least 1".to_owned());
        }
        if self.sse_lifetime_ms == 0 {
            return Err("--sse-lifetime-ms must be at least 1".to_owned());
        }
        if self.sse_keep_alive_interval_ms == 0 {
            return Err("--sse-keep-alive-interval-ms must be at least 1".to_owned());
        }
        if self.response_piece_bytes_max == 0 {
            return Err("--response-piece-bytes-max must be at least 1".to_owned());
        }
        // A URL shorter than this cannot hold a shape request with its parameters.
        if self.request_url_bytes_max < 256 {
            return Err("--request-url-bytes-max must be at least 256".to_owned());
        }
        if self.request_header_bytes_max < 1024 {
            return Err("--request-header-bytes-max must be at least 1024".to_owned());
        }
        // Clients and proxies send a dozen or so headers; fewer than 16 would reject ordinary
        // requests.
        if self.request_headers_max < 16 {
            return Err("--request-headers-max must be at least 16".to_owned());
        }
        let secret = self.secret.filter(|secret| !secret.is_empty());
        if secret.is_none() && !self.insecure && !self.listen_address.is_loopback() {
            return Err(format!(
                "cannot listen on {} without a secret: set --secret (VOLT_SECRET) so that only clients with it can read shapes, or --insecure (VOLT_INSECURE) to serve anyone who reaches the port",
                self.listen_address
            ));
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
            unwritten_log_bytes_max: self.unwritten_log_bytes_max,
            snapshot_concurrency_max: self.snapshot_concurrency_max,
            table_check_interval: Duration::from_millis(self.table_check_interval_ms),
            cache_max_age_s: self.cache_max_age_s,
            cache_stale_age_s: self.cache_stale_age_s,
            allow_shape_deletion: self.allow_shape_deletion,
            secret,
            max_concurrent_requests: self.max_concurrent_requests,
            sse_lifetime: Duration::from_millis(self.sse_lifetime_ms),
            sse_keep_alive_interval: Duration::from_millis(self.sse_keep_alive_interval_ms),
            compression_min_bytes: (!self.disable_compression).then_some(self.compression_min_bytes),
            response_piece_bytes_max: self.response_piece_bytes_max,
            chunk_cache_bytes_max: self.chunk_cache_bytes_max,
            request_url_bytes_max: self.request_url_bytes_max,
            request_header_bytes_max: self.request_header_bytes_max,
            request_headers_max: self.request_headers_max,
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
            embedded_extra_settings: Vec::new(),
        })
    }
}

fn parse_seconds(variable: &str, value: &str) -> Result<u64, clap::Error> {
    value.trim().parse().map_err(|_| {
        let message = format!("invalid value {value:?} in {variable}: expected a whole number of seconds\n");
        Args::command().error(clap::error::ErrorKind::InvalidValue, message)
    })
}

fn parse_boolean(variable: &str, value: &str) -> Result<bool, clap::Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Ok(false),
        _ => {
            let message = format!("invalid value {value:?} in {variable}: expected true or false\n");
            Err(Args::command().error(clap::error::ErrorKind::InvalidValue, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Args, clap::Error> {
        let env: Vec<(String, String)> = env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        let read_env = move |name: &str| env.iter().find(|(variable, _)| variable == name).map(|(_, value)| value.clone());
        Args::try_parse_with_electric_env(std::iter::once("volt").chain(args.iter().copied()), read_env)
    }

    #[test]
    fn electric_env_names_fill_unset_options() {
        let args = parse(&[], &[("CACHE_MAX_AGE", "1"), ("CACHE_STALE_AGE", "3"), ("ENABLE_INTEGRATION_TESTING", "true")]).unwrap();
        assert_eq!(args.cache_max_age_s, 1);
        assert_eq!(args.cache_stale_age_s, 3);
        assert!(args.allow_shape_deletion);
        let args = parse(&[], &[("ELECTRIC_ENABLE_INTEGRATION_TESTING", "1")]).unwrap();
        assert!(args.allow_shape_deletion);
    }

    #[test]
    fn options_take_precedence_over_electric_env_names() {
        let args = parse(&["--cache-max-age-s", "7"], &[("CACHE_MAX_AGE", "1")]).unwrap();
        assert_eq!(args.cache_max_age_s, 7);
        let args = parse(&[], &[("ENABLE_INTEGRATION_TESTING", "false")]).unwrap();
        assert!(!args.allow_shape_deletion);
        let args = parse(&["--allow-shape-deletion"], &[("ENABLE_INTEGRATION_TESTING", "false")]).unwrap();
        assert!(args.allow_shape_deletion);
        let args = parse(&[], &[("ENABLE_INTEGRATION_TESTING", "false"), ("ELECTRIC_ENABLE_INTEGRATION_TESTING", "true")]).unwrap();
        assert!(!args.allow_shape_deletion);
    }

    #[test]
    fn electric_secret_names_fill_unset_options() {
        let args = parse(&[], &[("ELECTRIC_SECRET", "s3"), ("ELECTRIC_INSECURE", "true")]).unwrap();
        assert_eq!(args.secret.as_deref(), Some("s3"));
        assert!(args.insecure);
        let args = parse(&["--secret", "own"], &[("ELECTRIC_SECRET", "s3")]).unwrap();
        assert_eq!(args.secret.as_deref(), Some("own"));
    }

    #[test]
    fn open_address_needs_secret_or_insecure() {
        let error = parse(&["--listen-address", "0.0.0.0"], &[]).unwrap().into_settings().unwrap_err();
        assert!(error.contains("--secret"), "{error}");
        assert!(error.contains("--insecure"), "{error}");
        assert!(parse(&["--listen-address", "0.0.0.0", "--secret", "s"], &[]).unwrap().into_settings().is_ok());
        assert!(parse(&["--listen-address", "0.0.0.0", "--insecure"], &[]).unwrap().into_settings().is_ok());
        assert!(parse(&["--listen-address", "::1"], &[]).unwrap().into_settings().is_ok());
        assert!(parse(&[], &[]).unwrap().into_settings().is_ok());
    }

    #[test]
    fn sse_and_compression_options_are_checked() {
        let settings = parse(&[], &[]).unwrap().into_settings().unwrap();
        assert_eq!(settings.sse_lifetime, Duration::from_secs(60));
        assert_eq!(settings.sse_keep_alive_interval, Duration::from_secs(21));
        assert_eq!(settings.compression_min_bytes, Some(1024));
        let settings = parse(&["--disable-compression"], &[]).unwrap().into_settings().unwrap();
        assert_eq!(settings.compression_min_bytes, None);
        let error = parse(&["--sse-lifetime-ms", "0"], &[]).unwrap().into_settings().unwrap_err();
        assert!(error.contains("--sse-lifetime-ms"), "{error}");
        let error = parse(&["--sse-keep-alive-interval-ms", "0"], &[]).unwrap().into_settings().unwrap_err();
        assert!(error.contains("--sse-keep-alive-interval-ms"), "{error}");
    }

    #[test]
    fn invalid_electric_env_values_are_rejected() {
        let error = parse(&[], &[("CACHE_MAX_AGE", "soon")]).unwrap_err();
        assert!(error.to_string().contains("CACHE_MAX_AGE"), "{error}");
        let error = parse(&[], &[("ENABLE_INTEGRATION_TESTING", "maybe")]).unwrap_err();
        assert!(error.to_string().contains("ENABLE_INTEGRATION_TESTING"), "{error}");
    }
}
