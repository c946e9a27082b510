//! The engine: everything a request needs to find or create a shape, shared by the HTTP
//! handlers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tokio_postgres::Client;

use crate::config::Settings;
use crate::http::chunk_cache::{ChunkCache, LiveRenders};
use crate::pg::catalog::{self, LookupError, TableInfo};
use crate::pg::names::RelationName;
use crate::pg::ConnectionSettings;
use crate::replication::ApplierHandle;
use crate::shape::{snapshot, Registry, Shape, ShapeDefinition};

/// Shared state of a running Volt.
pub struct Engine {
    pub config: Settings,
    pub connection: ConnectionSettings,
    pub registry: Arc<Registry>,
    pub applier: ApplierHandle,
    pub snapshot_permits: Semaphore,
    pub global_last_seen_lsn: Arc<AtomicU64>,
    /// Turns true when Volt shuts down; long-polls end when it does.
    pub shutdown: watch::Receiver<bool>,
    /// One permit per shape request being served, waiting live requests and responses still
    /// being sent included.
    pub request_slots: Arc<Semaphore>,
    /// Shape requests served since start, counted when they take a request slot. Behind a
    /// cache, this is the number of requests that reached Volt.
    pub shape_requests_total: AtomicU64,
    /// Rendered closed chunks shared by their readers.
    pub chunk_cache: ChunkCache,
    /// Small live bodies rendered once for all the requests a change wakes.
    pub live_renders: LiveRenders,
    catalog_client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Idle connections for snapshots, at most one per snapshot permit.
    snapshot_clients: std::sync::Mutex<Vec<Client>>,
}

impl Engine {
    pub fn new(
        config: Settings,
        connection: ConnectionSettings,
        registry: Arc<Registry>,
        applier: ApplierHandle,
        global_last_seen_lsn: Arc<AtomicU64>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let snapshot_permits = Semaphore::new(config.snapshot_concurrency_max);
        let request_slots = Arc::new(Semaphore::new(config.max_concurrent_requests));
        let chunk_cache = ChunkCache::new(config.chunk_cache_bytes_max);
        Engine {
            config,
            connection,
            registry,
            applier,
            snapshot_permits,
            global_last_seen_lsn,
            shutdown,
            request_slots,
            shape_requests_total: AtomicU64::new(0),
            chunk_cache,
            live_renders: LiveRenders::default(),
            catalog_client: tokio::sync::Mutex::new(None),
            snapshot_clients: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Returns the last LSN the applier processed, sent as `global_last_seen_lsn`.
    pub fn global_last_seen_lsn(&self) -> u64 {
        self.global_last_seen_lsn.load(Ordering::Relaxed)
    }

    /// Returns the number of shape requests being served now.
    pub fn shape_requests_in_flight(&self) -> usize {
        self.config.max_concurrent_requests - self.request_slots.available_permits()
    }

    /// Reads a table's description, reconnecting the catalog connection when it was lost.
    pub async fn lookup_table(&self, name: &RelationName) -> Result<TableInfo, LookupError> {
        let client = {
            let mut guard = self.catalog_client.lock().await;
            match guard.as_ref() {
                Some(client) if !client.is_closed() => client.clone(),
                _ => {
                    let client = Arc::new(crate::pg::connect(&self.connection).await?);
                    *guard = Some(client.clone());
                    client
                }
            }
        };
        catalog::lookup_table(&client, name).await
    }

    /// Takes an idle snapshot connection, or opens one. Callers hold a snapshot permit.
    pub async fn snapshot_client(&self) -> Result<Client, tokio_postgres::Error> {
        let idle = {
            let mut clients = self.snapshot_clients.lock().expect("snapshot clients lock");
            clients.retain(|client| !client.is_closed());
            clients.pop()
        };
        match idle {
            Some(client) => Ok(client),
            None => crate::pg::connect(&self.connection).await,
        }
    }

    /// Returns a snapshot connection for reuse. Only connections outside a transaction may
    /// come back.
    pub fn return_snapshot_client(&self, client: Client) {
        let mut clients = self.snapshot_clients.lock().expect("snapshot clients lock");
        if clients.len() < self.config.snapshot_concurrency_max && !client.is_closed() {
            clients.push(client);
        }
    }

    /// Returns the shape for a definition, starting its creation when it is new.
    pub fn shape_for(self: &Arc<Self>, definition: &ShapeDefinition) -> Arc<Shape> {
        let (shape, created) = self.registry.get_or_create(definition);
        if created {
            tokio::spawn(snapshot::create(self.clone(), shape.clone()));
        }
        shape
    }

    /// Removes a shape everywhere: its clients get 409 and the applier stops writing it.
    pub async fn remove_shape(&self, shape: &Arc<Shape>, reason: &str) {
        self.registry.remove(shape, reason);
        self.applier.unregister(shape.clone()).await;
    }
}
