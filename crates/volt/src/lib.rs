//! Volt: a sync server that keeps partial replicas of Postgres tables ("shapes") in sync with
//! clients over HTTP, speaking ElectricSQL's Shape API.
//!
//! Data flows one way: `replication` streams pgoutput from a slot, the applier turns it into
//! entries of the shape logs kept by `shape` on top of `storage`, and `http` serves snapshots
//! and logs to clients. `pg` contains everything else that talks to Postgres.

pub mod config;
pub mod engine;
pub mod http;
pub mod pg;
pub mod position;
pub mod reconcile;
mod recovery;
pub mod replication;
pub mod shape;
pub mod storage;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::config::Settings;
use crate::engine::Engine;
use crate::pg::embedded::{EmbeddedOptions, EmbeddedPostgres};
use crate::pg::ConnectionSettings;
use crate::replication::applier::{Applier, ApplierOutputs, ApplierSettings};
use crate::replication::stream::{self, StreamNames};
use crate::replication::{ApplierHandle, APPLY_QUEUE_CAPACITY};
use crate::shape::Registry;
use crate::storage::crashsafe;
use crate::storage::journal::Journal;

/// Error from starting Volt.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("storage directory {path}: {source}")]
    Storage { path: String, source: std::io::Error },
    #[error("embedded PostgreSQL: {0}")]
    Embedded(#[from] pg::embedded::EmbeddedError),
    #[error("replication set-up: {0}")]
    Replication(#[from] stream::SetupError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

/// A running Volt: its address, and the handles that stop it in order.
pub struct Server {
    pub address: SocketAddr,
    /// The URL of the Postgres Volt syncs from (the embedded one when no URL was given).
    pub database_url: String,
    engine: Arc<Engine>,
    shutdown: watch::Sender<bool>,
    http_task: tokio::task::JoinHandle<()>,
    stream_task: tokio::task::JoinHandle<()>,
    reconcile_task: tokio::task::JoinHandle<()>,
    applier_thread: Option<std::thread::JoinHandle<()>>,
    embedded: Option<EmbeddedPostgres>,
}

impl Server {
    /// Starts every part: Postgres (embedded when no URL is given), replication, HTTP.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        let storage_error = |path: &std::path::Path| {
            let path = path.display().to_string();
            move |source| StartError::Storage { path, source }
        };
        crashsafe::create_dir_all(&settings.storage_dir).map_err(storage_error(&settings.storage_dir))?;
        let shapes_dir = settings.storage_dir.join("shapes");
        crashsafe::create_dir_all(&shapes_dir).map_err(storage_error(&shapes_dir))?;
        let (journal, journal_state) = Journal::open(&settings.storage_dir).map_err(storage_error(&settings.storage_dir))?;

        let (embedded, database_url) = match &settings.database_url {
            Some(url) => (None, url.clone()),
            None => {
                let options = EmbeddedOptions {
                    data_dir: settings.storage_dir.join("postgres"),
                    bin_dir: settings.pg_bin_dir.clone(),
                    extra_settings: settings.embedded_extra_settings.clone(),
                    initdb_no_sync: !settings.embedded_extra_settings.is_empty(),
                    port: None,
                };
                let server = EmbeddedPostgres::start(options).await?;
                let url = server.url();
                tracing::info!("embedded PostgreSQL ready at {url}");
                (Some(server), url)
            }
        };
        let connection = ConnectionSettings::parse(&database_url).map_err(StartError::Config)?;
        tracing::info!(database = %connection.describe(), "connecting to Postgres");

        let names = StreamNames { publication: settings.publication.clone(), slot: settings.slot.clone() };
        let slot = stream::prepare(&connection, &names).await?;
        let start_lsn = slot.confirmed;

        let registry = Arc::new(Registry::new(shapes_dir.clone()));
        let (apply_tx, apply_rx) = mpsc::channel(APPLY_QUEUE_CAPACITY);
        let applier_handle = ApplierHandle::new(apply_tx);
        let (acknowledged_tx, acknowledged_rx) = watch::channel(start_lsn);
        let global_last_seen_lsn = Arc::new(AtomicU64::new(start_lsn.0));
        let applier = Applier::new(
            registry.clone(),
            ApplierSettings { chunk_bytes_max: settings.chunk_bytes_max, unwritten_bytes_max: settings.unwritten_log_bytes_max },
            ApplierOutputs { acknowledged: acknowledged_tx, global_last_seen_lsn: global_last_seen_lsn.clone() },
            journal,
            start_lsn,
        );
        let mut applier = applier;
        recovery::restore_shapes(&connection, &shapes_dir, &journal_state, slot, &registry, &mut applier).await;
        let applier_thread = std::thread::Builder::new()
            .name("volt-applier".into())
            .spawn(move || applier.run(apply_rx))
            .expect("spawning the applier thread");

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let stream_task = tokio::spawn(stream::run(
            connection.clone(),
            names,
            applier_handle.clone(),
            acknowledged_rx,
            shutdown_rx.clone(),
        ));

        let address = SocketAddr::new(settings.listen_address, settings.port);
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| StartError::Listen { address, source })?;
        let address = listener.local_addr().map_err(|source| StartError::Listen { address, source })?;
        let engine = Arc::new(Engine::new(settings, connection, registry, applier_handle, global_last_seen_lsn, shutdown_rx.clone()));
        let reconcile_task = tokio::spawn(reconcile::run(engine.clone(), engine.config.table_check_interval));
        let app = http::router(engine.clone());
        let http_config = engine.config.clone();
        let http_task = tokio::spawn(async move { http::server::serve(listener, app, &http_config, shutdown_rx).await });
        tracing::info!("listening on http://{address}");

        Ok(Server {
            address,
            database_url,
            engine,
            shutdown: shutdown_tx,
            http_task,
            stream_task,
            reconcile_task,
            applier_thread: Some(applier_thread),
            embedded,
        })
    }

    /// Returns the engine, for tests that inspect shapes.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops serving, ends long-polls, closes the stream, lets the applier finish, and stops
    /// the embedded Postgres last. Responses still being sent get up to the shutdown timeout.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.http_task.await;
        let _ = self.stream_task.await;
        // The table check task owns a reference to the engine, and with it a sender of the
        // applier's queue, so it must end before the applier can.
        let _ = self.reconcile_task.await;
        // The applier ends once every sender of its queue is gone: the stream task's is, and
        // the engine's goes with the engine.
        let Server { engine, applier_thread, embedded, .. } = self;
        drop(engine);
        if let Some(thread) = applier_thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(mut embedded) = embedded {
            tokio::task::spawn_blocking(move || embedded.stop()).await.ok();
        }
        tracing::info!("Volt stopped");
    }
}
