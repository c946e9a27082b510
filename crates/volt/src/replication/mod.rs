//! The replication side: one walsender connection streams every change of the published
//! tables, and one applier thread turns them into entries of the shape logs.
//!
//! ```text
//! Postgres ──pgoutput──▶ stream task ──ApplyInput──▶ applier thread ──▶ shape logs
//!     ▲                                                   │
//!     └──────────── acknowledged LSN (durable) ◀──────────┘
//! ```

pub mod applier;
pub mod changes;
pub mod routes;
pub mod stream;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::pg::visibility::PgSnapshot;
use crate::shape::Shape;

pub use pgwire_replication::ReplicationEvent;

/// Capacity of the channel into the applier, in inputs. It bounds how far the stream task can
/// run ahead; a full channel stops reading from Postgres, which then buffers on its side.
pub const APPLY_QUEUE_CAPACITY: usize = 8192;

/// Input of the applier thread, processed in order.
#[derive(Debug)]
pub enum ApplyInput {
    /// An event from the replication stream.
    Event(ReplicationEvent),
    /// The stream was lost and will be reopened from the slot; any transaction in progress
    /// is incomplete and must be dropped.
    StreamLost,
    /// A shape wants the changes of its table from now on.
    Register { shape: Arc<Shape>, done: oneshot::Sender<Result<(), String>> },
    /// A shape's snapshot was taken; its held transactions can be sorted out.
    SnapshotTaken { shape: Arc<Shape>, snapshot: PgSnapshot, done: oneshot::Sender<Result<(), String>> },
    /// The slot was created again, so the changes between the old and the new slot are lost:
    /// every shape must be removed and its clients resync.
    SlotRecreated,
    /// A shape was removed; stop writing its log.
    Unregister { shape: Arc<Shape> },
}

/// The sending side of the applier's queue.
#[derive(Debug, Clone)]
pub struct ApplierHandle {
    tx: mpsc::Sender<ApplyInput>,
}

impl ApplierHandle {
    pub fn new(tx: mpsc::Sender<ApplyInput>) -> Self {
        ApplierHandle { tx }
    }

    /// Registers a shape and waits until the applier routes changes to it.
    pub async fn register(&self, shape: Arc<Shape>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.send(ApplyInput::Register { shape, done }).await?;
        wait.await.map_err(|_| "the applier stopped".to_owned())?
    }

    /// Hands a shape's snapshot to the applier and waits until it was taken into account.
    pub async fn snapshot_taken(&self, shape: Arc<Shape>, snapshot: PgSnapshot) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.send(ApplyInput::SnapshotTaken { shape, snapshot, done }).await?;
        wait.await.map_err(|_| "the applier stopped".to_owned())?
    }

    pub async fn unregister(&self, shape: Arc<Shape>) {
        let _ = self.send(ApplyInput::Unregister { shape }).await;
    }

    pub async fn send(&self, input: ApplyInput) -> Result<(), String> {
        self.tx.send(input).await.map_err(|_| "the applier stopped".to_owned())
    }
}
