//! A shape's shared state: its snapshot and log files and what readers may see of them.
//!
//! Writers (the snapshot task and the replication applier) append to the files and then
//! publish new end positions through watch channels. Readers only ever read up to a published
//! position, so they never see a change before it is durable, and they wait on the same
//! channels for new data.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::watch;

use super::messages::MessageEncoder;
use super::{ShapeDefinition, ShapeHandle};
use crate::position::LogOffset;
use crate::storage::records::{self, RecordWriter, Unwritten, HEADER_BYTES};

/// File name of a shape's snapshot inside its directory.
pub const SNAPSHOT_FILE: &str = "snapshot.records";
/// File name of a shape's log inside its directory.
pub const LOG_FILE: &str = "log.records";

/// Progress of the snapshot as readers see it.
#[derive(Debug, Clone, Default)]
pub struct SnapshotProgress {
    /// File position where each closed chunk ends; chunk `n` starts where `n − 1` ends.
    pub chunk_ends: Vec<u64>,
    /// True once every row and the `snapshot-end` message are durable.
    pub finished: bool,
    /// Set when the snapshot failed; the shape is then removed.
    pub failure: Option<String>,
}

/// The published end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// Offset of the last durable entry, or `0_inf` while the log is empty.
    pub latest: LogOffset,
    /// File position after the last durable entry.
    pub end_position: u64,
    /// True once the shape was removed. Readers then reply 409.
    pub removed: bool,
}

/// Index of a log: positions readers may start scanning from, and chunk ends.
#[derive(Debug, Clone, Default)]
pub struct LogIndex {
    /// Entries sampled every few kilobytes: (offset of the entry, file position of it).
    pub samples: Vec<(LogOffset, u64)>,
    /// Closed chunks: (offset of the chunk's last entry, file position after it).
    pub chunk_ends: Vec<(LogOffset, u64)>,
}

/// A shape: its definition, its files and their published state.
#[derive(Debug)]
pub struct Shape {
    pub handle: ShapeHandle,
    pub definition: ShapeDefinition,
    pub encoder: MessageEncoder,
    /// The `electric-schema` header value.
    pub schema_json: String,
    pub dir: PathBuf,
    snapshot: watch::Sender<SnapshotProgress>,
    log: watch::Sender<LogHead>,
    log_index: RwLock<LogIndex>,
    /// Published log bytes the applier keeps in memory before writing them to the file.
    log_unwritten: OnceLock<Arc<Mutex<Unwritten>>>,
}

/// The part of a log a request for entries after some offset gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    /// Scan from this file position; entries at or before the requested offset are skipped.
    pub start_position: u64,
    pub end_position: u64,
    /// Offset of the last entry served, which the client sends next.
    pub end_offset: LogOffset,
    /// True when the range reaches the published end of the log.
    pub reaches_head: bool,
}

impl Shape {
    pub fn new(handle: ShapeHandle, definition: ShapeDefinition, dir: PathBuf) -> Arc<Self> {
        let encoder = MessageEncoder::new(&definition);
        let schema_json = definition.table.schema_json(&definition.selected);
        let initial_head = LogHead { latest: LogOffset::SNAPSHOT_END, end_position: HEADER_BYTES, removed: false };
        Arc::new(Shape {
            handle,
            definition,
            encoder,
            schema_json,
            dir,
            snapshot: watch::channel(SnapshotProgress::default()).0,
            log: watch::channel(initial_head).0,
            log_index: RwLock::new(LogIndex::default()),
            log_unwritten: OnceLock::new(),
        })
    }

    /// Rebuilds a shape from its stored metadata and the journal's record of its log.
    pub fn restore(
        handle: ShapeHandle,
        definition: ShapeDefinition,
        dir: PathBuf,
        snapshot_chunk_ends: Vec<u64>,
        latest: LogOffset,
        end_position: u64,
        index: LogIndex,
    ) -> Arc<Self> {
        let shape = Shape::new(handle, definition, dir);
        shape.snapshot.send_modify(|progress| {
            progress.chunk_ends = snapshot_chunk_ends;
            progress.finished = true;
        });
        *shape.log_index.write().expect("log index lock") = index;
        shape.log.send_modify(|head| {
            head.latest = latest;
            head.end_position = end_position;
        });
        shape
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Lets readers see the log bytes its writer keeps in memory.
    pub fn attach_log_writer(&self, writer: &RecordWriter) {
        let _ = self.log_unwritten.set(writer.shared_unwritten());
    }

    pub fn watch_snapshot(&self) -> watch::Receiver<SnapshotProgress> {
        self.snapshot.subscribe()
    }

    pub fn watch_log(&self) -> watch::Receiver<LogHead> {
        self.log.subscribe()
    }

    pub fn log_head(&self) -> LogHead {
        *self.log.borrow()
    }

    pub fn is_removed(&self) -> bool {
        self.log.borrow().removed
    }

    /// Publishes a closed snapshot chunk ending at `end_position`.
    pub fn publish_snapshot_chunk(&self, end_position: u64) {
        self.snapshot.send_modify(|progress| progress.chunk_ends.push(end_position));
    }

    /// Publishes the end of the snapshot; its last chunk ends at `end_position`.
    pub fn publish_snapshot_finished(&self, end_position: u64) {
        self.snapshot.send_modify(|progress| {
            if progress.chunk_ends.last() != Some(&end_position) {
                progress.chunk_ends.push(end_position);
            }
            progress.finished = true;
        });
    }

    pub fn publish_snapshot_failure(&self, reason: String) {
        self.snapshot.send_modify(|progress| progress.failure = Some(reason));
    }

    /// Publishes durable log entries up to `head`, with the index samples and chunk ends
    /// that lie before it.
    pub fn publish_log(&self, head_latest: LogOffset, end_position: u64, samples: &mut Vec<(LogOffset, u64)>, chunk_ends: &mut Vec<(LogOffset, u64)>) {
        if !samples.is_empty() || !chunk_ends.is_empty() {
            let mut index = self.log_index.write().expect("log index lock");
            index.samples.append(samples);
            index.chunk_ends.append(chunk_ends);
        }
        self.log.send_modify(|head| {
            head.latest = head_latest;
            head.end_position = end_position;
        });
    }

    /// Returns the last index sample's position and the last chunk end's position.
    pub fn index_tail(&self) -> (Option<u64>, Option<u64>) {
        let index = self.log_index.read().expect("log index lock");
        (index.samples.last().map(|(_, position)| *position), index.chunk_ends.last().map(|(_, position)| *position))
    }

    /// Returns a copy of the published log index.
    pub fn index_copy(&self) -> LogIndex {
        self.log_index.read().expect("log index lock").clone()
    }

    /// Marks the shape removed and wakes every reader waiting on it.
    pub fn mark_removed(&self) {
        self.log.send_modify(|head| head.removed = true);
        self.snapshot.send_modify(|progress| {
            if progress.failure.is_none() {
                progress.failure = Some("the shape was removed".to_owned());
            }
        });
    }

    /// Finds the entries after `after` that one response carries: up to the end of the chunk
    /// that contains the first such entry, or to the published head.
    pub fn log_range(&self, after: LogOffset, head: &LogHead) -> LogRange {
        let index = self.log_index.read().expect("log index lock");
        let start_position = match index.samples.partition_point(|(offset, _)| *offset <= after) {
            0 => HEADER_BYTES,
            next => index.samples[next - 1].1,
        };
        let closed_chunk = index
            .chunk_ends
            .iter()
            .find(|(end_offset, end_position)| *end_offset > after && *end_position <= head.end_position);
        match closed_chunk {
            Some(&(end_offset, end_position)) => LogRange {
                start_position,
                end_position,
                end_offset,
                reaches_head: end_offset >= head.latest,
            },
            None => LogRange {
                start_position,
                end_position: head.end_position,
                end_offset: head.latest.max(after),
                reaches_head: true,
            },
        }
    }

    /// Opens the snapshot file for reading, with its header checked.
    pub fn open_snapshot(&self) -> io::Result<File> {
        open_for_reading(&self.snapshot_path())
    }

    /// Opens the log file for reading, with its header checked.
    pub fn open_log(&self) -> io::Result<File> {
        open_for_reading(&self.log_path())
    }

    /// Reads whole log records from `start`, up to `end` and about `bytes_max` bytes (see
    /// [`records::read_whole_records`]), from `file` (opened with [`Shape::open_log`]) and
    /// from what the writer keeps in memory. Returns the bytes and the position after them.
    pub fn read_log_records(&self, file: &File, start: u64, end: u64, bytes_max: usize) -> io::Result<(Vec<u8>, u64)> {
        match self.log_unwritten.get() {
            Some(unwritten) => records::read_whole_records_with(|from, to| records::read_range_with_unwritten(file, unwritten, from, to), start, end, bytes_max),
            None => records::read_whole_records(file, start, end, bytes_max),
        }
    }
}

/// Opens a shape file for one read. Files are not kept open between reads, not even between
/// the pieces of one response: with many shapes and slow readers, open files would exhaust
/// the process's file limit.
fn open_for_reading(path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    records::check_header(&file)?;
    Ok(file)
}

/// Adds a comma to a JSON array being built unless it is still empty.
pub fn push_separator(out: &mut Vec<u8>) {
    if out.last() != Some(&b'[') {
        out.push(b',');
    }
}
