//! The applier: a dedicated thread that turns the replication stream into shape log entries.
//!
//! It owns every shape log writer. For each transaction it decides, per shape, whether the
//! shape's snapshot already contains it. It encodes the changes the shape still needs and
//! writes them. At a batch boundary it makes them durable with one sync per written log
//! (group commit). Only then does it publish the new log ends to readers and raise the position it
//! acknowledges to Postgres.
//!
//! Invariant: the acknowledged LSN never passes a transaction whose entries are not durable
//! in every shape log that needs them. Between transactions, keepalives let it advance to the
//! server's WAL end, so the slot does not hold WAL while only unsynced tables are written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pgoutput::{Message, Relation, ReplicaIdentity};
use tokio::sync::{mpsc, watch};

use super::{ApplyInput, ReplicationEvent};
use crate::pg::visibility::PgSnapshot;
use crate::position::{LogOffset, Lsn};
use super::changes::{entries_for_change, Change};
use super::routes::{SinkId, TableRoutes};
use crate::shape::messages::Entry;
use crate::shape::{Registry, Shape, ShapeHandle};
use crate::storage::journal::{Journal, LogProgress};
use crate::storage::records::{RecordKind, RecordWriter, HEADER_BYTES};

/// Inputs handled between two group commits at most. A batch ends earlier whenever the
/// queue is empty, or when it has run for [`BATCH_DURATION_MAX`].
const BATCH_INPUTS_MAX: usize = 65_536;
/// Maximum time a batch runs before its group commit, which bounds how long readers wait for new
/// entries while the stream is busy. Commits are spaced in time rather than counted in
/// changes.
const BATCH_DURATION_MAX: std::time::Duration = std::time::Duration::from_millis(20);
/// Maximum time a batch runs once it touched many logs. Each group commit then writes and
/// syncs every one of them, which costs more than the wait; measured with volt-bench
/// routing, 2,000 shapes each receiving changes drained at 0.43 of the one-shape rate with
/// 20 ms batches and 0.80 with 200 ms batches.
const MANY_LOGS_BATCH_DURATION_MAX: std::time::Duration = std::time::Duration::from_millis(200);
/// A log's buffer is written out (without a sync) when it grows past this, so a large
/// transaction does not grow memory.
const WRITE_BUFFER_BYTES_MAX: usize = 4 << 20;
/// Distance in bytes between the index samples readers start scanning from.
const INDEX_SAMPLE_BYTES: u64 = 64 << 10;
/// Above this many logs to sync in one group commit, one file-system sync replaces the
/// per-file syncs: with thousands of shapes a batch can touch thousands of logs.
const PER_FILE_SYNC_MAX: usize = 16;
/// Wait between attempts to write while the disk is full.
const DISK_FULL_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Settings of the applier.
#[derive(Debug, Clone)]
pub struct ApplierSettings {
    /// A log chunk closes after the entry that brings it to this many bytes.
    pub chunk_bytes_max: u64,
    /// Published log bytes kept in memory, across all logs, before they are written to the
    /// files.
    pub unwritten_bytes_max: usize,
}

/// Shared positions the applier publishes.
#[derive(Debug)]
pub struct ApplierOutputs {
    /// The LSN that may be reported to Postgres as flushed.
    pub acknowledged: watch::Sender<Lsn>,
    /// The last LSN processed, sent to clients as `global_last_seen_lsn`.
    pub global_last_seen_lsn: Arc<AtomicU64>,
}

/// The transaction being received.
#[derive(Debug)]
struct Transaction {
    xid: u32,
    commit_lsn: u64,
    next_op: u64,
    /// Already applied before a reconnect: every change is ignored.
    replayed: bool,
    /// Shapes that received entries, to finish at commit.
    touched: Vec<SinkId>,
    /// Sequence number, so each shape decides once per transaction whether it applies.
    sequence: u64,
}

/// Snapshot state of a shape: still awaited, or known.
#[derive(Debug)]
enum SinkState {
    /// Registered, snapshot not yet taken: transactions are held in memory. This lasts from
    /// registration until `pg_current_snapshot()` returns, normally milliseconds.
    AwaitingSnapshot { held: Vec<(u32, Vec<Entry>)> },
    Known(PgSnapshot),
}

/// Handling of the current transaction by one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransactionMode {
    Apply,
    Hold,
    Skip,
}

/// One shape's log writer and the state of its current transaction.
#[derive(Debug)]
struct Sink {
    shape: Arc<Shape>,
    writer: RecordWriter,
    state: SinkState,
    mode: TransactionMode,
    mode_sequence: u64,
    /// Sequence number of the last transaction that gave this shape entries.
    touched_sequence: u64,
    /// Transactions committed at or before this LSN are already in the log: after a restart
    /// the slot sends them again, and they are skipped.
    resume_lsn: u64,
    /// The last entry of the current transaction, written once the next one (or the commit)
    /// shows whether it is the transaction's last for this shape.
    pending_entry: Option<Entry>,
    holding: Vec<Entry>,
    xid: u32,
    json: Vec<u8>,
    last_written: LogOffset,
    last_sample_position: u64,
    chunk_bytes: u64,
    chunk_bytes_max: u64,
    uncommitted_samples: Vec<(LogOffset, u64)>,
    uncommitted_chunks: Vec<(LogOffset, u64)>,
    committed: CommittedLog,
    unpublished_samples: Vec<(LogOffset, u64)>,
    unpublished_chunks: Vec<(LogOffset, u64)>,
    dirty: bool,
    /// File position up to which the log survives a crash: synced, or held by the journal.
    durable_end: u64,
    /// True while the writer keeps published bytes in memory, listed in
    /// `Applier::keeping_unwritten`.
    keeps_unwritten: bool,
}

/// The end of the last complete transaction in a log.
#[derive(Debug, Clone, Copy)]
struct CommittedLog {
    latest: LogOffset,
    end_position: u64,
    chunk_bytes: u64,
    last_sample_position: u64,
}

impl Sink {
    fn new(shape: Arc<Shape>, chunk_bytes_max: u64) -> std::io::Result<Self> {
        let writer = RecordWriter::create(&shape.log_path())?;
        Ok(Self::new_with_writer(shape, writer, chunk_bytes_max))
    }

    fn new_with_writer(shape: Arc<Shape>, writer: RecordWriter, chunk_bytes_max: u64) -> Self {
        shape.attach_log_writer(&writer);
        let committed = CommittedLog {
            latest: LogOffset::SNAPSHOT_END,
            end_position: HEADER_BYTES,
            chunk_bytes: 0,
            last_sample_position: HEADER_BYTES,
        };
        Sink {
            shape,
            writer,
            state: SinkState::AwaitingSnapshot { held: Vec::new() },
            mode: TransactionMode::Skip,
            mode_sequence: 0,
            touched_sequence: 0,
            resume_lsn: 0,
            pending_entry: None,
            holding: Vec::new(),
            xid: 0,
            json: Vec::new(),
            last_written: LogOffset::SNAPSHOT_END,
            last_sample_position: HEADER_BYTES,
            chunk_bytes: 0,
            chunk_bytes_max: chunk_bytes_max.max(1),
            uncommitted_samples: Vec::new(),
            uncommitted_chunks: Vec::new(),
            committed,
            unpublished_samples: Vec::new(),
            unpublished_chunks: Vec::new(),
            dirty: false,
            durable_end: HEADER_BYTES,
            keeps_unwritten: false,
        }
    }

    /// Decides once per transaction whether this shape applies, holds back or skips it.
    fn enter(&mut self, transaction: &Transaction) -> TransactionMode {
        if self.mode_sequence != transaction.sequence {
            self.mode_sequence = transaction.sequence;
            self.xid = transaction.xid;
            self.mode = match &self.state {
                _ if transaction.commit_lsn <= self.resume_lsn => TransactionMode::Skip,
                SinkState::AwaitingSnapshot { .. } => TransactionMode::Hold,
                SinkState::Known(snapshot) if snapshot.saw(transaction.xid) => TransactionMode::Skip,
                SinkState::Known(_) => TransactionMode::Apply,
            };
        }
        self.mode
    }

    fn push(&mut self, entry: Entry) {
        match self.mode {
            TransactionMode::Apply => {
                if let Some(previous) = self.pending_entry.replace(entry) {
                    self.write(&previous, false);
                }
            }
            TransactionMode::Hold => self.holding.push(entry),
            TransactionMode::Skip => {}
        }
    }

    fn write(&mut self, entry: &Entry, last: bool) {
        if entry.offset <= self.last_written {
            // Entries must be stored in offset order: readers and restarts rely on it.
            tracing::error!(handle = %self.shape.handle, offset = %entry.offset, latest = %self.last_written, "refusing to store an entry out of order");
            return;
        }
        self.json.clear();
        self.shape.encoder.log_entry(entry, self.xid, last, &mut self.json);
        let position = self.writer.append(RecordKind::Change, entry.offset, &self.json);
        self.last_written = entry.offset;
        if position - self.last_sample_position >= INDEX_SAMPLE_BYTES {
            self.uncommitted_samples.push((entry.offset, position));
            self.last_sample_position = position;
        }
        // One byte per entry for the separator, as the chunk size counts what is sent.
        self.chunk_bytes += self.json.len() as u64 + 1;
        if self.chunk_bytes >= self.chunk_bytes_max {
            self.uncommitted_chunks.push((entry.offset, self.writer.end_position()));
            self.chunk_bytes = 0;
        }
    }

    /// Ends the current transaction for this shape: its last entry gets `last`.
    fn commit(&mut self) {
        match self.mode {
            TransactionMode::Apply => {
                if let Some(last) = self.pending_entry.take() {
                    self.write(&last, true);
                }
                self.mark_committed();
            }
            TransactionMode::Hold => {
                let entries = std::mem::take(&mut self.holding);
                if let SinkState::AwaitingSnapshot { held } = &mut self.state {
                    held.push((self.xid, entries));
                }
            }
            TransactionMode::Skip => {}
        }
    }

    fn mark_committed(&mut self) {
        self.committed = CommittedLog {
            latest: self.last_written,
            end_position: self.writer.end_position(),
            chunk_bytes: self.chunk_bytes,
            last_sample_position: self.last_sample_position,
        };
        self.unpublished_samples.append(&mut self.uncommitted_samples);
        self.unpublished_chunks.append(&mut self.uncommitted_chunks);
        self.dirty = true;
    }

    /// Drops what the current, incomplete transaction wrote.
    fn abort(&mut self) -> std::io::Result<()> {
        self.pending_entry = None;
        self.holding.clear();
        self.uncommitted_samples.clear();
        self.uncommitted_chunks.clear();
        self.last_written = self.committed.latest;
        self.chunk_bytes = self.committed.chunk_bytes;
        self.last_sample_position = self.committed.last_sample_position;
        self.mode_sequence = 0;
        self.writer.truncate(self.committed.end_position)
    }

    /// Applies the held transactions the snapshot did not see, then follows the stream.
    fn snapshot_taken(&mut self, snapshot: PgSnapshot) {
        let state = std::mem::replace(&mut self.state, SinkState::Known(snapshot));
        let (SinkState::AwaitingSnapshot { held }, SinkState::Known(snapshot)) = (state, &self.state) else {
            return;
        };
        let snapshot = snapshot.clone();
        for (xid, entries) in held {
            if snapshot.saw(xid) || entries.is_empty() {
                continue;
            }
            self.xid = xid;
            let count = entries.len();
            for (index, entry) in entries.iter().enumerate() {
                self.write(entry, index + 1 == count);
            }
            self.mark_committed();
        }
    }
}

/// The applier's state; see the module documentation.
pub struct Applier {
    registry: Arc<Registry>,
    settings: ApplierSettings,
    journal: Journal,
    /// Handles of shapes removed since the last journal commit.
    removed: Vec<String>,
    /// Set after a failure that makes further progress unsafe.
    stopped: bool,
    outputs: ApplierOutputs,
    sinks: HashMap<SinkId, Sink>,
    sink_ids: HashMap<ShapeHandle, SinkId>,
    next_sink_id: SinkId,
    by_table: HashMap<u32, TableRoutes>,
    /// Shapes with committed entries not yet synced and published.
    dirty: Vec<SinkId>,
    /// Reused buffer for the shapes a change may concern.
    candidates: Vec<SinkId>,
    relations: HashMap<u32, Relation>,
    transaction: Option<Transaction>,
    transaction_sequence: u64,
    /// Inputs that arrived during a transaction and wait for its end.
    deferred: Vec<ApplyInput>,
    /// Commit LSN of the last transaction applied; replays up to it are ignored.
    last_commit_lsn: u64,
    /// End LSN of the last transaction applied.
    last_commit_end_lsn: u64,
    /// WAL end from the last keepalive received between transactions.
    idle_wal_end: u64,
    /// Logs whose writers keep published bytes in memory, and the total of those bytes.
    keeping_unwritten: Vec<SinkId>,
    unwritten_bytes: usize,
}

impl Applier {
    pub fn new(registry: Arc<Registry>, settings: ApplierSettings, outputs: ApplierOutputs, journal: Journal, start_lsn: Lsn) -> Self {
        Applier {
            registry,
            settings,
            outputs,
            journal,
            removed: Vec::new(),
            stopped: false,
            sinks: HashMap::new(),
            sink_ids: HashMap::new(),
            next_sink_id: 1,
            by_table: HashMap::new(),
            dirty: Vec::new(),
            candidates: Vec::new(),
            relations: HashMap::new(),
            transaction: None,
            transaction_sequence: 0,
            deferred: Vec::new(),
            last_commit_lsn: start_lsn.0,
            last_commit_end_lsn: start_lsn.0,
            idle_wal_end: start_lsn.0,
            keeping_unwritten: Vec::new(),
            unwritten_bytes: 0,
        }
    }

    /// Processes inputs until every sender is gone. Runs on its own thread.
    pub fn run(mut self, mut inputs: mpsc::Receiver<ApplyInput>) {
        while let Some(input) = inputs.blocking_recv() {
            if self.stopped {
                break;
            }
            self.handle(input);
            let mut handled = 1;
            let batch_started = std::time::Instant::now();
            while handled < BATCH_INPUTS_MAX && (handled % 256 != 0 || batch_started.elapsed() < self.batch_duration_max()) {
                match inputs.try_recv() {
                    Ok(input) => {
                        self.handle(input);
                        handled += 1;
                    }
                    Err(_) => break,
                }
            }
            self.flush();
        }
        self.flush();
        // A clean stop leaves every log synced and a short journal, so the next start has
        // nothing to write back.
        if !self.stopped {
            let acknowledged = self.outputs.acknowledged.borrow().0;
            self.checkpoint(acknowledged);
        }
        tracing::info!("applier stopped");
    }

    fn batch_duration_max(&self) -> std::time::Duration {
        if self.dirty.len() > PER_FILE_SYNC_MAX {
            MANY_LOGS_BATCH_DURATION_MAX
        } else {
            BATCH_DURATION_MAX
        }
    }

    fn handle(&mut self, input: ApplyInput) {
        match input {
            ApplyInput::Event(event) => self.handle_event(event),
            ApplyInput::StreamLost => self.abort_transaction(),
            ApplyInput::SlotRecreated => {
                self.abort_transaction();
                let ids: Vec<SinkId> = self.sinks.keys().copied().collect();
                for id in ids {
                    self.rotate(id, "the replication slot was created again");
                }
                // The new slot starts at the server's current position, after everything the
                // old one could still have sent.
                self.last_commit_lsn = 0;
            }
            command if self.transaction.is_some() => self.deferred.push(command),
            ApplyInput::Register { shape, done } => {
                let _ = done.send(self.register(shape));
            }
            ApplyInput::SnapshotTaken { shape, snapshot, done } => {
                let id = self.sink_ids.get(&shape.handle).copied();
                let result = match id.and_then(|id| self.sinks.get_mut(&id).map(|sink| (id, sink))) {
                    Some((id, sink)) => {
                        sink.snapshot_taken(snapshot);
                        if sink.dirty {
                            self.dirty.push(id);
                        }
                        Ok(())
                    }
                    None => Err("the shape was removed".to_owned()),
                };
                let _ = done.send(result);
            }
            ApplyInput::Unregister { shape } => self.drop_sink(&shape.handle),
        }
    }

    fn register(&mut self, shape: Arc<Shape>) -> Result<(), String> {
        let sink = Sink::new(shape.clone(), self.settings.chunk_bytes_max).map_err(|error| format!("cannot create the shape log: {error}"))?;
        let table_oid = shape.definition.table.oid;
        if let Some(relation) = self.relations.get(&table_oid) {
            if !relation_matches(relation, &shape) {
                return Err("the table changed while the shape was being created".to_owned());
            }
        }
        let id = self.next_sink_id;
        self.next_sink_id += 1;
        self.by_table.entry(table_oid).or_default().add(id, shape.definition.routing_key());
        self.sink_ids.insert(shape.handle.clone(), id);
        self.sinks.insert(id, sink);
        Ok(())
    }

    /// Adds a shape restored from disk after a restart: its snapshot is known and its log
    /// is durable up to `shape.log_head()`.
    pub fn restore(&mut self, shape: Arc<Shape>, snapshot: PgSnapshot) -> std::io::Result<()> {
        let head = shape.log_head();
        let writer = RecordWriter::open_existing(&shape.log_path(), head.end_position)?;
        let mut sink = Sink::new_with_writer(shape.clone(), writer, self.settings.chunk_bytes_max);
        sink.state = SinkState::Known(snapshot);
        sink.resume_lsn = head.latest.tx;
        let (last_sample_position, last_chunk_end) = shape.index_tail();
        sink.last_written = head.latest;
        sink.last_sample_position = last_sample_position.unwrap_or(HEADER_BYTES);
        sink.chunk_bytes = head.end_position - last_chunk_end.unwrap_or(HEADER_BYTES);
        sink.mark_committed();
        sink.dirty = false;
        sink.durable_end = head.end_position;

        let id = self.next_sink_id;
        self.next_sink_id += 1;
        self.by_table.entry(shape.definition.table.oid).or_default().add(id, shape.definition.routing_key());
        self.sink_ids.insert(shape.handle.clone(), id);
        self.sinks.insert(id, sink);
        Ok(())
    }

    fn drop_sink(&mut self, handle: &ShapeHandle) {
        let Some(id) = self.sink_ids.remove(handle) else {
            return;
        };
        self.removed.push(handle.as_str().to_owned());
        if let Some(sink) = self.sinks.remove(&id) {
            let oid = sink.shape.definition.table.oid;
            if let Some(routes) = self.by_table.get_mut(&oid) {
                routes.remove(id);
                if routes.is_empty() {
                    self.by_table.remove(&oid);
                }
            }
        }
    }

    /// Removes a shape whose log can no longer be trusted; its clients will refetch.
    fn rotate(&mut self, id: SinkId, reason: &str) {
        if let Some(sink) = self.sinks.get(&id) {
            let shape = sink.shape.clone();
            self.drop_sink(&shape.handle);
            self.registry.remove(&shape, reason);
        }
    }

    fn handle_event(&mut self, event: ReplicationEvent) {
        match event {
            ReplicationEvent::Begin { final_lsn, xid, .. } => self.begin(final_lsn.as_u64(), xid),
            ReplicationEvent::Commit { end_lsn, .. } => self.commit(end_lsn.as_u64()),
            ReplicationEvent::XLogData { data, .. } => match pgoutput::decode(&data) {
                Ok(message) => self.handle_message(message),
                Err(error) => {
                    // Volt cannot know what this message changed, so no shape on any table
                    // can be trusted past it.
                    tracing::error!(%error, "undecodable pgoutput message; removing every shape");
                    let ids: Vec<SinkId> = self.sinks.keys().copied().collect();
                    for id in ids {
                        self.rotate(id, "undecodable replication message");
                    }
                }
            },
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                if self.transaction.is_none() {
                    self.idle_wal_end = self.idle_wal_end.max(wal_end.as_u64());
                }
            }
            ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
        }
    }

    fn begin(&mut self, commit_lsn: u64, xid: u32) {
        if self.transaction.is_some() {
            tracing::warn!(xid, "a transaction began before the previous one ended; dropping the previous one");
            self.abort_transaction();
        }
        self.transaction_sequence += 1;
        self.transaction = Some(Transaction {
            xid,
            commit_lsn,
            next_op: 0,
            replayed: commit_lsn <= self.last_commit_lsn,
            touched: Vec::new(),
            sequence: self.transaction_sequence,
        });
    }

    fn commit(&mut self, end_lsn: u64) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        for &id in &transaction.touched {
            if let Some(sink) = self.sinks.get_mut(&id) {
                let was_dirty = sink.dirty;
                sink.commit();
                if sink.dirty && !was_dirty {
                    self.dirty.push(id);
                }
                if sink.writer.buffered_bytes() >= WRITE_BUFFER_BYTES_MAX {
                    self.write_out(id);
                }
            }
        }
        if !transaction.replayed {
            self.last_commit_lsn = transaction.commit_lsn;
            self.last_commit_end_lsn = self.last_commit_end_lsn.max(end_lsn);
        }
        for input in std::mem::take(&mut self.deferred) {
            self.handle(input);
        }
    }

    fn abort_transaction(&mut self) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        for id in transaction.touched {
            let failed = match self.sinks.get_mut(&id) {
                Some(sink) => sink.abort().err().map(|error| (sink.shape.handle.clone(), error)),
                None => None,
            };
            if let Some((handle, error)) = failed {
                tracing::error!(%handle, %error, "cannot drop an incomplete transaction from a shape log");
                self.rotate(id, "shape log write failed");
            }
        }
        for input in std::mem::take(&mut self.deferred) {
            self.handle(input);
        }
    }

    fn handle_message(&mut self, message: Message) {
        match message {
            Message::Relation(relation) => self.relation(relation),
            Message::Insert(insert) => self.change(insert.relation_oid, Change::insert(&insert.new)),
            Message::Update(update) => self.change(update.relation_oid, Change::update(update.old.as_ref(), &update.new)),
            Message::Delete(delete) => self.change(delete.relation_oid, Change::delete(&delete.old)),
            Message::Truncate(truncate) => self.truncate(&truncate.relation_oids),
            // Begin and Commit arrive as their own events; the rest needs no action.
            Message::Begin(_) | Message::Commit(_) | Message::Origin(_) | Message::Type(_) | Message::Message(_) => {}
        }
    }

    fn relation(&mut self, relation: Relation) {
        let oid = relation.oid;
        let stale: Vec<SinkId> = self
            .by_table
            .get(&oid)
            .into_iter()
            .flat_map(TableRoutes::all)
            .filter(|id| self.sinks.get(id).is_some_and(|sink| !relation_matches(&relation, &sink.shape)))
            .collect();
        for id in stale {
            self.rotate(id, "the table's columns changed");
        }
        self.relations.insert(oid, relation);
    }

    fn truncate(&mut self, relation_oids: &[u32]) {
        let Some(transaction) = &self.transaction else {
            return;
        };
        if transaction.replayed {
            return;
        }
        let mut affected = Vec::new();
        for oid in relation_oids {
            for id in self.by_table.get(oid).into_iter().flat_map(TableRoutes::all) {
                let sink = self.sinks.get_mut(&id).expect("routed sinks exist");
                if sink.enter(transaction) != TransactionMode::Skip {
                    affected.push(id);
                }
            }
        }
        for id in affected {
            self.rotate(id, "the table was truncated");
        }
    }

    fn change(&mut self, relation_oid: u32, change: Change) {
        let Some(transaction) = &mut self.transaction else {
            tracing::warn!(relation_oid, "a change arrived outside a transaction; ignoring it");
            return;
        };
        let op = transaction.next_op;
        transaction.next_op += 2;
        if transaction.replayed {
            return;
        }
        if !self.relations.get(&relation_oid).is_none_or(|relation| relation.replica_identity == ReplicaIdentity::Full) {
            self.rotate_without_full_identity(relation_oid);
        }
        let Some(transaction) = &mut self.transaction else {
            return;
        };
        let Some(routes) = self.by_table.get(&relation_oid) else {
            return;
        };
        routes.candidates(&change.rows(), &mut self.candidates);
        let offset = LogOffset::new(transaction.commit_lsn, op);
        let mut failed = Vec::new();
        let mut oversized = Vec::new();
        for &id in &self.candidates {
            let sink = self.sinks.get_mut(&id).expect("routed sinks exist");
            if sink.enter(transaction) == TransactionMode::Skip {
                continue;
            }
            match entries_for_change(&sink.shape, &change, offset) {
                Ok(entries) => {
                    if !entries.is_empty() && sink.touched_sequence != transaction.sequence {
                        sink.touched_sequence = transaction.sequence;
                        transaction.touched.push(id);
                    }
                    for entry in entries {
                        sink.push(entry);
                    }
                    // A large transaction is written out as it arrives, not held until its
                    // commit, so memory stays bounded whatever the transaction's size.
                    if sink.writer.buffered_bytes() >= WRITE_BUFFER_BYTES_MAX {
                        oversized.push(id);
                    }
                }
                Err(reason) => failed.push((id, reason)),
            }
        }
        for id in oversized {
            self.write_out(id);
        }
        for (id, reason) in failed {
            if let Some(sink) = self.sinks.get(&id) {
                tracing::warn!(handle = %sink.shape.handle, reason, "cannot apply a change; removing the shape");
            }
            self.rotate(id, reason);
        }
    }

    /// Removes the table's shapes that must apply the current transaction. Shapes need the
    /// old row of every update and delete, which only REPLICA IDENTITY FULL sends, so someone
    /// changed the identity behind Volt's back. The next shape on the table sets FULL again
    /// before its snapshot.
    ///
    /// Shapes whose snapshot contains the transaction carry on: a change made under the
    /// identity a table had before its first shape set FULL arrives after that shape
    /// registered whenever the stream lags. Shapes still awaiting their snapshot carry on
    /// for the same reason.
    // NOTE: a reset to DEFAULT between a shape's ALTER and its snapshot reaches that shape
    // only with a later transaction, so changes held meanwhile may lack their old rows.
    fn rotate_without_full_identity(&mut self, relation_oid: u32) {
        let Some(transaction) = &self.transaction else {
            return;
        };
        let mut affected = Vec::new();
        for id in self.by_table.get(&relation_oid).into_iter().flat_map(TableRoutes::all) {
            let sink = self.sinks.get_mut(&id).expect("routed sinks exist");
            if sink.enter(transaction) == TransactionMode::Apply {
                affected.push(id);
            }
        }
        if !affected.is_empty() {
            tracing::warn!(relation_oid, shapes = affected.len(), "replica identity is no longer FULL, removing the table's shapes");
        }
        for id in affected {
            self.rotate(id, "the table's replica identity is no longer FULL");
        }
    }

    /// Writes a log's buffer to its file without syncing, to bound memory.
    fn write_out(&mut self, id: SinkId) {
        let Some(sink) = self.sinks.get_mut(&id) else {
            return;
        };
        self.unwritten_bytes = self.unwritten_bytes.saturating_sub(sink.writer.kept_bytes());
        match sink.writer.flush(false) {
            // The buffer stays, and the next group commit retries until space returns.
            Err(error) if is_disk_full(&error) => {}
            Err(error) => {
                tracing::error!(handle = %sink.shape.handle, %error, "cannot write a shape log");
                self.rotate(id, "shape log write failed");
            }
            Ok(_) => {}
        }
    }

    /// Makes every written log durable, publishes the new ends and raises the acknowledged
    /// LSN: the group commit.
    ///
    /// A log whose new bytes are all still in its buffer is made durable by the journal,
    /// which carries those bytes, so its file is not synced. Only a log that wrote part of its
    /// bytes out earlier (a large transaction) has its file synced. One journal sync thus
    /// covers any number of logs.
    fn flush(&mut self) {
        let mut failed = Vec::new();
        let mut synced = Vec::new();
        let mut journaled = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            let Some(sink) = self.sinks.get(&id).filter(|sink| sink.dirty) else {
                continue;
            };
            if sink.writer.buffered_range(sink.durable_end, sink.committed.end_position).is_some() {
                journaled.push(id);
            } else {
                synced.push(id);
            }
        }
        let sync_each = synced.len() <= PER_FILE_SYNC_MAX;
        synced.retain(|&id| {
            let Some(sink) = self.sinks.get_mut(&id) else {
                return false;
            };
            // The flush writes the bytes the writer kept too.
            let kept = sink.writer.kept_bytes();
            match retry_while_disk_full(&sink.shape.dir, || sink.writer.flush(sync_each)) {
                Ok(_) => {
                    self.unwritten_bytes = self.unwritten_bytes.saturating_sub(kept);
                    true
                }
                Err(error) => {
                    tracing::error!(handle = %sink.shape.handle, %error, "cannot sync a shape log");
                    failed.push(id);
                    false
                }
            }
        });
        if !sync_each && !synced.is_empty() {
            let shapes_dir = self.registry.shapes_dir().to_owned();
            if let Err(error) = retry_while_disk_full(&shapes_dir, || crate::storage::crashsafe::sync_file_system(&shapes_dir)) {
                tracing::error!(%error, "cannot sync the shape logs; Volt stops applying changes until it is restarted");
                self.stopped = true;
                return;
            }
            for id in &synced {
                if let Some(sink) = self.sinks.get_mut(id) {
                    sink.writer.mark_synced();
                }
            }
        }
        for id in failed.drain(..) {
            self.rotate(id, "shape log sync failed");
        }

        let mut acknowledged = self.last_commit_end_lsn;
        if self.transaction.is_none() {
            acknowledged = acknowledged.max(self.idle_wal_end);
        }

        // The journal makes the synced ends survive a restart. Only after it is durable may
        // readers see the entries and Postgres forget the WAL behind them.
        let progress: Vec<LogProgress<'_>> = synced
            .iter()
            .chain(&journaled)
            .filter_map(|id| self.sinks.get(id))
            .map(|sink| LogProgress {
                shape: sink.shape.handle.as_str(),
                latest: sink.committed.latest,
                end_position: sink.committed.end_position,
                new_samples: &sink.unpublished_samples,
                new_chunk_ends: &sink.unpublished_chunks,
                data: sink.writer.buffered_range(sink.durable_end, sink.committed.end_position).map(|bytes| (sink.durable_end, bytes)),
            })
            .collect();
        let journal = &mut self.journal;
        let removed = &self.removed;
        let storage_dir = self.registry.shapes_dir().to_owned();
        if let Err(error) = retry_while_disk_full(&storage_dir, || journal.commit(&progress, removed, acknowledged)) {
            // Without the journal nothing new could be trusted after a restart, so nothing
            // more is applied, published or acknowledged.
            tracing::error!(%error, "cannot write the journal; Volt stops applying changes until it is restarted");
            self.stopped = true;
            return;
        }
        drop(progress);
        self.removed.clear();

        // The journal contains these logs' new bytes. They stay in memory, where readers find
        // them, and reach the files in bulk later: one write per log per group commit would
        // cost more than the commit itself with thousands of logs.
        journaled.retain(|&id| {
            let Some(sink) = self.sinks.get_mut(&id) else {
                return false;
            };
            let before = sink.writer.kept_bytes();
            if sink.writer.keep_unwritten(sink.committed.end_position) {
                self.unwritten_bytes += sink.writer.kept_bytes() - before;
                if !sink.keeps_unwritten {
                    sink.keeps_unwritten = true;
                    self.keeping_unwritten.push(id);
                }
                return true;
            }
            match retry_while_disk_full(&sink.shape.dir, || sink.writer.flush(false)) {
                Ok(_) => true,
                Err(error) => {
                    tracing::error!(handle = %sink.shape.handle, %error, "cannot write a shape log");
                    failed.push(id);
                    false
                }
            }
        });
        for id in failed {
            self.rotate(id, "shape log write failed");
        }
        if self.unwritten_bytes > self.settings.unwritten_bytes_max {
            self.write_unwritten();
        }

        for id in synced.into_iter().chain(journaled) {
            let Some(sink) = self.sinks.get_mut(&id) else {
                continue;
            };
            sink.dirty = false;
            sink.durable_end = sink.committed.end_position;
            let committed = sink.committed;
            sink.shape.publish_log(
                committed.latest,
                committed.end_position,
                &mut sink.unpublished_samples,
                &mut sink.unpublished_chunks,
            );
        }
        if self.journal.needs_compaction() {
            self.checkpoint(acknowledged);
        }
        self.outputs.acknowledged.send_if_modified(|current| {
            if acknowledged > current.0 {
                *current = Lsn(acknowledged);
                true
            } else {
                false
            }
        });
        self.outputs.global_last_seen_lsn.fetch_max(acknowledged, Ordering::Relaxed);
    }
}

impl Applier {
    /// Writes the bytes every log keeps in memory to its file, without a sync.
    fn write_unwritten(&mut self) {
        let mut failed = Vec::new();
        for id in std::mem::take(&mut self.keeping_unwritten) {
            let Some(sink) = self.sinks.get_mut(&id) else {
                continue;
            };
            sink.keeps_unwritten = false;
            if let Err(error) = retry_while_disk_full(&sink.shape.dir, || sink.writer.flush(false)) {
                tracing::error!(handle = %sink.shape.handle, %error, "cannot write a shape log");
                failed.push(id);
            }
        }
        self.unwritten_bytes = 0;
        for id in failed {
            self.rotate(id, "shape log write failed");
        }
    }

    /// Syncs every shape log, after which the journal no longer needs the bytes it carries,
    /// and rewrites the journal with the full state of every live log.
    fn checkpoint(&mut self, acknowledged: u64) {
        self.write_unwritten();
        let shapes_dir = self.registry.shapes_dir().to_owned();
        if let Err(error) = retry_while_disk_full(&shapes_dir, || crate::storage::crashsafe::sync_file_system(&shapes_dir)) {
            tracing::warn!(%error, "cannot sync the shape logs; the journal keeps growing");
            return;
        }
        for sink in self.sinks.values_mut() {
            sink.writer.mark_synced();
        }
        let states: Vec<_> = self.sinks.values().map(|sink| (&sink.shape, sink.shape.log_head(), sink.shape.index_copy())).collect();
        let progress: Vec<LogProgress<'_>> = states
            .iter()
            .map(|(shape, head, index)| LogProgress {
                shape: shape.handle.as_str(),
                latest: head.latest,
                end_position: head.end_position,
                new_samples: &index.samples,
                new_chunk_ends: &index.chunk_ends,
                data: None,
            })
            .collect();
        match self.journal.compact(&progress, acknowledged) {
            Ok(()) => tracing::info!(shapes = progress.len(), "compacted the journal"),
            Err(error) => tracing::warn!(%error, "cannot compact the journal; it keeps growing"),
        }
    }
}

/// Runs `write` until it succeeds or fails for a reason other than a full disk. While the
/// disk is full nothing is acknowledged and the stream waits, so nothing is lost; the error
/// is logged once, with what to do.
fn retry_while_disk_full<T>(dir: &std::path::Path, mut write: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut logged = false;
    loop {
        match write() {
            Err(error) if is_disk_full(&error) => {
                if !logged {
                    tracing::error!(
                        dir = %dir.display(),
                        %error,
                        "the disk is full: free space there; Volt retries every second and acknowledges nothing meanwhile"
                    );
                    logged = true;
                }
                std::thread::sleep(DISK_FULL_RETRY);
            }
            result => {
                if logged && result.is_ok() {
                    tracing::info!(dir = %dir.display(), "disk space is available again; resuming");
                }
                return result;
            }
        }
    }
}

fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) || error.kind() == std::io::ErrorKind::StorageFull
}

/// True when the stream's description of a table matches what the shape was built from.
fn relation_matches(relation: &Relation, shape: &Shape) -> bool {
    let columns = &shape.definition.table.columns;
    relation.columns.len() == columns.len()
        && relation
            .columns
            .iter()
            .zip(columns)
            .all(|(streamed, known)| streamed.name == known.name && streamed.type_oid == known.type_oid)
}
