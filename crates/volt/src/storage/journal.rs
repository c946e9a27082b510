//! The journal: one append-only record file that records, after every group commit, how far each
//! shape log is durable and which LSN was acknowledged. At start-up it is the only file read
//! to know every log's state, so start-up time does not grow with the size of the logs.
//!
//! A log reaches durability in one of two ways. Either its file was synced, and the journal
//! records its new end in a JSON record. Or the journal itself carries the bytes appended
//! since the log was last durable (a `LogData` record), and the log file is not synced. The
//! second way lets one journal sync cover thousands of logs; replaying the journal writes
//! those bytes again.
//!
//! Control records hold JSON, one of:
//! `{"log": {"shape": "<handle>", "latest": "<offset>", "end": <position>, "samples": [["<offset>", <position>], …], "chunks": […]}}`
//! (samples and chunk ends are the ones added since the shape's previous record),
//! `{"removed": "<handle>"}` and `{"acknowledged": "<LSN as decimal>"}`.
//! A `LogData` record's offset is the log's latest offset and its payload is binary,
//! little-endian: `[u16 handle length][handle][u64 start][u64 end][u32 sample count]`
//! `[(u64 tx, u64 op, u64 position) per sample][u32 chunk count][(u64 tx, u64 op, u64 position)`
//! `per chunk end][the log's bytes from start to end]`.
//!
//! When the file grows past a threshold every log is synced and the journal is rewritten
//! with one JSON record per live shape.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crashsafe;
use super::records::{self, RecordKind, RecordWriter};
use crate::position::LogOffset;

/// File name of the journal inside the storage directory.
pub const JOURNAL_FILE: &str = "journal.records";
/// Size past which the journal is rewritten with only the current state, in bytes.
const COMPACT_BYTES: u64 = 64 << 20;

/// How far one shape log is durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    pub latest: Option<LogOffset>,
    pub end_position: u64,
    pub samples: Vec<(LogOffset, u64)>,
    pub chunk_ends: Vec<(LogOffset, u64)>,
    /// Bytes the journal holds for the log since its file was last synced, as
    /// `(file position, bytes)` in order. They must be written back before the log is used.
    pub unsynced: Vec<(u64, Vec<u8>)>,
}

/// State rebuilt by replaying the journal.
#[derive(Debug, Default)]
pub struct JournalState {
    pub logs: HashMap<String, LogState>,
    pub acknowledged: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JournalRecord {
    Log(LogRecord),
    Removed(String),
    Acknowledged(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct LogRecord {
    shape: String,
    latest: String,
    end: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    samples: Vec<(String, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    chunks: Vec<(String, u64)>,
}

/// A log's progress in one group commit, to be journaled.
#[derive(Debug)]
pub struct LogProgress<'a> {
    pub shape: &'a str,
    pub latest: LogOffset,
    pub end_position: u64,
    pub new_samples: &'a [(LogOffset, u64)],
    pub new_chunk_ends: &'a [(LogOffset, u64)],
    /// The bytes appended since the log was last durable, with the position of the first,
    /// when its file was not synced; `None` when it was.
    pub data: Option<(u64, &'a [u8])>,
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    writer: RecordWriter,
    buffer: Vec<u8>,
}

impl Journal {
    /// Opens the journal in `dir` (creating it when missing), replays it and cuts a torn tail.
    pub fn open(dir: &Path) -> io::Result<(Journal, JournalState)> {
        let path = dir.join(JOURNAL_FILE);
        if !path.exists() {
            let writer = RecordWriter::create(&path)?;
            return Ok((Journal { path, writer, buffer: Vec::new() }, JournalState::default()));
        }
        let (entries, valid_end) = records::read_valid_prefix(&path)?;
        let mut state = JournalState::default();
        for entry in entries {
            if entry.kind == RecordKind::LogData {
                apply_data(&mut state, entry.offset, entry.json)?;
                continue;
            }
            let record: JournalRecord = serde_json::from_slice(&entry.json)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, format!("invalid journal record: {error}")))?;
            apply(&mut state, record)?;
        }
        let writer = RecordWriter::open_existing(&path, valid_end)?;
        Ok((Journal { path, writer, buffer: Vec::new() }, state))
    }

    /// Records the progress of a group commit and makes it durable.
    pub fn commit(&mut self, logs: &[LogProgress<'_>], removed: &[String], acknowledged: u64) -> io::Result<()> {
        for log in logs {
            if let Some((start, bytes)) = log.data {
                self.buffer.clear();
                encode_data(&mut self.buffer, log, start, bytes);
                self.writer.append(RecordKind::LogData, log.latest, &self.buffer);
                continue;
            }
            let record = JournalRecord::Log(LogRecord {
                shape: log.shape.to_owned(),
                latest: log.latest.to_string(),
                end: log.end_position,
                samples: log.new_samples.iter().map(|(offset, position)| (offset.to_string(), *position)).collect(),
                chunks: log.new_chunk_ends.iter().map(|(offset, position)| (offset.to_string(), *position)).collect(),
            });
            self.append(&record);
        }
        for handle in removed {
            self.append(&JournalRecord::Removed(handle.clone()));
        }
        self.append(&JournalRecord::Acknowledged(acknowledged.to_string()));
        self.writer.flush(true)?;
        Ok(())
    }

    fn append(&mut self, record: &JournalRecord) {
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, record).expect("journal records encode");
        self.writer.append(RecordKind::Control, LogOffset::new(0, 0), &self.buffer);
    }

    /// True when the journal should be rewritten with [`Journal::compact`].
    pub fn needs_compaction(&self) -> bool {
        self.writer.end_position() > COMPACT_BYTES
    }

    /// Replaces the journal with one record per live log and the acknowledged LSN. Every log
    /// file must be synced first: the bytes of `LogData` records are not kept.
    pub fn compact(&mut self, logs: &[LogProgress<'_>], acknowledged: u64) -> io::Result<()> {
        let mut contents = records::file_header();
        let mut json = Vec::new();
        for log in logs {
            json.clear();
            let record = JournalRecord::Log(LogRecord {
                shape: log.shape.to_owned(),
                latest: log.latest.to_string(),
                end: log.end_position,
                samples: log.new_samples.iter().map(|(offset, position)| (offset.to_string(), *position)).collect(),
                chunks: log.new_chunk_ends.iter().map(|(offset, position)| (offset.to_string(), *position)).collect(),
            });
            serde_json::to_writer(&mut json, &record).expect("journal records encode");
            records::encode_record(&mut contents, RecordKind::Control, LogOffset::new(0, 0), &json);
        }
        json.clear();
        serde_json::to_writer(&mut json, &JournalRecord::Acknowledged(acknowledged.to_string())).expect("journal records encode");
        records::encode_record(&mut contents, RecordKind::Control, LogOffset::new(0, 0), &json);
        crashsafe::write_atomic(&self.path, &contents)?;
        self.writer = RecordWriter::open_existing(&self.path, contents.len() as u64)?;
        Ok(())
    }
}

fn apply(state: &mut JournalState, record: JournalRecord) -> io::Result<()> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("invalid journal record: {what}"));
    let offset = |text: &str| text.parse::<LogOffset>().map_err(|_| invalid("bad offset"));
    match record {
        JournalRecord::Log(log) => {
            let entry = state.logs.entry(log.shape).or_default();
            entry.latest = Some(offset(&log.latest)?);
            entry.end_position = log.end;
            // The file was synced, which covers the bytes written before from `LogData`.
            entry.unsynced.clear();
            for (sample, position) in log.samples {
                entry.samples.push((offset(&sample)?, position));
            }
            for (chunk, position) in log.chunks {
                entry.chunk_ends.push((offset(&chunk)?, position));
            }
        }
        JournalRecord::Removed(handle) => {
            state.logs.remove(&handle);
        }
        JournalRecord::Acknowledged(lsn) => {
            state.acknowledged = lsn.parse().map_err(|_| invalid("bad LSN"))?;
        }
    }
    Ok(())
}

/// Appends the binary payload of a `LogData` record.
fn encode_data(out: &mut Vec<u8>, log: &LogProgress<'_>, start: u64, bytes: &[u8]) {
    let handle = log.shape.as_bytes();
    out.extend_from_slice(&(handle.len() as u16).to_le_bytes());
    out.extend_from_slice(handle);
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&log.end_position.to_le_bytes());
    for list in [log.new_samples, log.new_chunk_ends] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for (offset, position) in list {
            out.extend_from_slice(&offset.tx.to_le_bytes());
            out.extend_from_slice(&offset.op.to_le_bytes());
            out.extend_from_slice(&position.to_le_bytes());
        }
    }
    out.extend_from_slice(bytes);
}

/// Reads a `LogData` payload into the state.
fn apply_data(state: &mut JournalState, latest: LogOffset, payload: Vec<u8>) -> io::Result<()> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "invalid journal record: truncated log data");
    let mut at = 0usize;
    let mut take = |count: usize| -> io::Result<&[u8]> {
        let bytes = payload.get(at..at + count).ok_or_else(invalid)?;
        at += count;
        Ok(bytes)
    };
    let u64_at = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));

    let handle_len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
    let handle = std::str::from_utf8(take(handle_len)?).map_err(|_| invalid())?.to_owned();
    let start = u64_at(take(8)?);
    let end = u64_at(take(8)?);

    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        for _ in 0..count {
            let entry = take(24)?;
            let offset = LogOffset::new(u64_at(&entry[..8]), u64_at(&entry[8..16]));
            list.push((offset, u64_at(&entry[16..])));
        }
    }
    let header_bytes = 2 + handle_len + 16 + 8 + 24 * (lists[0].len() + lists[1].len());
    let bytes = payload[header_bytes..].to_vec();
    if end < start || bytes.len() as u64 != end - start {
        return Err(invalid());
    }

    let [samples, chunk_ends] = lists;
    let entry = state.logs.entry(handle).or_default();
    entry.latest = Some(latest);
    entry.end_position = end;
    entry.samples.extend(samples);
    entry.chunk_ends.extend(chunk_ends);
    entry.unsynced.push((start, bytes));
    Ok(())
}

/// Writes the bytes the journal holds for a log back into its file, then syncs it, so the
/// file is complete up to the journal's recorded end. Fails when the file lacks bytes
/// before the first of them: those were neither synced nor journaled.
pub fn restore_unsynced(path: &Path, unsynced: &[(u64, Vec<u8>)]) -> io::Result<()> {
    let Some((first, _)) = unsynced.first() else {
        return Ok(());
    };
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let length = file.metadata()?.len();
    if length < *first {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is {length} bytes long, but the journal continues it from byte {first}", path.display()),
        ));
    }
    for (position, bytes) in unsynced {
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, *position)?;
    }
    crashsafe::sync_data(&file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::records::HEADER_BYTES;

    #[test]
    fn journal_replays_progress() {
        let directory = tempfile::tempdir().unwrap();
        let (mut journal, state) = Journal::open(directory.path()).unwrap();
        assert!(state.logs.is_empty());
        let samples = [(LogOffset::new(5, 0), 100)];
        journal
            .commit(
                &[LogProgress { shape: "a", latest: LogOffset::new(5, 2), end_position: 200, new_samples: &samples, new_chunk_ends: &[], data: None }],
                &[],
                50,
            )
            .unwrap();
        journal
            .commit(
                &[
                    LogProgress { shape: "a", latest: LogOffset::new(6, 0), end_position: 300, new_samples: &[], new_chunk_ends: &[], data: None },
                    LogProgress { shape: "b", latest: LogOffset::new(6, 0), end_position: 40, new_samples: &[], new_chunk_ends: &[], data: None },
                ],
                &["b".to_owned()],
                60,
            )
            .unwrap();
        drop(journal);

        let (_, state) = Journal::open(directory.path()).unwrap();
        assert_eq!(state.acknowledged, 60);
        assert_eq!(state.logs.len(), 1);
        let a = &state.logs["a"];
        assert_eq!(a.latest, Some(LogOffset::new(6, 0)));
        assert_eq!(a.end_position, 300);
        assert_eq!(a.samples, vec![(LogOffset::new(5, 0), 100)]);
    }

    #[test]
    fn journal_compaction_keeps_state() {
        let directory = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(directory.path()).unwrap();
        for round in 0..10u64 {
            journal
                .commit(
                    &[LogProgress { shape: "a", latest: LogOffset::new(round + 1, 0), end_position: 16 + round, new_samples: &[], new_chunk_ends: &[], data: None }],
                    &[],
                    round,
                )
                .unwrap();
        }
        let chunks = [(LogOffset::new(3, 0), 12)];
        journal
            .compact(&[LogProgress { shape: "a", latest: LogOffset::new(10, 0), end_position: 25, new_samples: &[], new_chunk_ends: &chunks, data: None }], 9)
            .unwrap();
        journal
            .commit(&[LogProgress { shape: "a", latest: LogOffset::new(11, 0), end_position: 30, new_samples: &[], new_chunk_ends: &[], data: None }], &[], 11)
            .unwrap();
        drop(journal);
        let (_, state) = Journal::open(directory.path()).unwrap();
        assert_eq!(state.acknowledged, 11);
        assert_eq!(state.logs["a"].end_position, 30);
        assert_eq!(state.logs["a"].chunk_ends, vec![(LogOffset::new(3, 0), 12)]);
    }

    #[test]
    fn journal_restores_lost_log_bytes() {
        let directory = tempfile::tempdir().unwrap();
        let log_path = directory.path().join("log.records");
        let mut writer = RecordWriter::create(&log_path).unwrap();
        let first_end = {
            writer.append(RecordKind::Change, LogOffset::new(5, 0), br#"{"a":1}"#);
            writer.end_position()
        };
        let (mut journal, _) = Journal::open(directory.path()).unwrap();
        let samples = [(LogOffset::new(5, 0), HEADER_BYTES)];
        let data = writer.buffered_range(HEADER_BYTES, first_end).unwrap().to_vec();
        journal
            .commit(
                &[LogProgress {
                    shape: "a",
                    latest: LogOffset::new(5, 0),
                    end_position: first_end,
                    new_samples: &samples,
                    new_chunk_ends: &[],
                    data: Some((HEADER_BYTES, &data)),
                }],
                &[],
                70,
            )
            .unwrap();
        writer.flush(false).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(6, 0), br#"{"b":2}"#);
        let second_end = writer.end_position();
        let data = writer.buffered_range(first_end, second_end).unwrap().to_vec();
        journal
            .commit(
                &[LogProgress {
                    shape: "a",
                    latest: LogOffset::new(6, 0),
                    end_position: second_end,
                    new_samples: &[],
                    new_chunk_ends: &[],
                    data: Some((first_end, &data)),
                }],
                &[],
                80,
            )
            .unwrap();
        writer.flush(false).unwrap();
        let whole = std::fs::read(&log_path).unwrap();
        drop((journal, writer));

        // A crash before the page cache reached the disk: the file lost its unsynced bytes.
        std::fs::OpenOptions::new().write(true).open(&log_path).unwrap().set_len(HEADER_BYTES).unwrap();
        let (_, state) = Journal::open(directory.path()).unwrap();
        assert_eq!(state.acknowledged, 80);
        let log = &state.logs["a"];
        assert_eq!((log.latest, log.end_position), (Some(LogOffset::new(6, 0)), second_end));
        assert_eq!(log.samples, samples);
        assert_eq!(log.unsynced.len(), 2);
        restore_unsynced(&log_path, &log.unsynced).unwrap();
        assert_eq!(std::fs::read(&log_path).unwrap(), whole);

        // Bytes missing before the journaled ones cannot be restored.
        std::fs::write(&log_path, &whole[..HEADER_BYTES as usize]).unwrap();
        assert!(restore_unsynced(&log_path, &log.unsynced[1..]).is_err());
    }

    #[test]
    fn journal_log_record_clears_kept_bytes() {
        let directory = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(directory.path()).unwrap();
        let bytes = [7u8; 10];
        let progress = |data| LogProgress {
            shape: "a",
            latest: LogOffset::new(9, 0),
            end_position: HEADER_BYTES + 10,
            new_samples: &[],
            new_chunk_ends: &[],
            data,
        };
        journal.commit(&[progress(Some((HEADER_BYTES, &bytes[..])))], &[], 1).unwrap();
        journal.commit(&[progress(None)], &[], 2).unwrap();
        drop(journal);
        let (_, state) = Journal::open(directory.path()).unwrap();
        assert!(state.logs["a"].unsynced.is_empty());
        assert_eq!(state.logs["a"].end_position, HEADER_BYTES + 10);
    }
}
