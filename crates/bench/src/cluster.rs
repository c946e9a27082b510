//! The PostgreSQL cluster a benchmark runs against: embedded, in a temporary directory.

use std::os::unix::fs::PermissionsExt;

use tokio_postgres::{Client, NoTls};
use volt::pg::embedded::{EmbeddedOptions, EmbeddedPostgres};

/// A running cluster, its directory (removed on drop) and an SQL connection to it.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub postgres: EmbeddedPostgres,
    pub database_url: String,
    pub sql: Client,
}

/// Starts a cluster in a new directory under /tmp whose name starts with `prefix`. The
/// directory is readable by all, because the embedded PostgreSQL (run as `postgres` when the
/// benchmark runs as root) and nginx's workers run as other users.
pub async fn start(prefix: &str) -> Cluster {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").expect("creating a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("opening the temporary directory to all");
    let postgres = EmbeddedPostgres::start(EmbeddedOptions {
        data_dir: dir.path().join("postgres"),
        extra_settings: vec![("max_wal_size".into(), "4GB".into())],
        ..Default::default()
    })
    .await
    .expect("PostgreSQL starts");
    let database_url = postgres.url();
    let (sql, connection) = tokio_postgres::connect(&database_url, NoTls).await.expect("connecting to PostgreSQL");
    tokio::spawn(connection);
    Cluster { dir, postgres, database_url, sql }
}
