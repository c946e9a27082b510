//! The journal: one append-only record file that records, after every group commit, how far each
//! shape log is durable and which LSN was acknowledged. At start-up it is the only file read
//! to know every log's state, so start-up time does not grow with the size of the logs.
//!
//! Each record's JSON is one of:
//! `{"log": {"shape": "<handle>", "latest": "<offset>", "end": <position>, "samples": [["<offset>", <position>], …], "chunks": […]}}`
//! (samples and chunk ends are the ones added since the shape's previous record),
//! `{"removed": "<handle>"}` and `{"acknowledged": "<LSN as decimal>"}`.
//! When the file grows past a threshold it is rewritten with one record per live shape.

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

    /// Replaces the journal with one record per live log and the acknowledged LSN.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_replays_progress() {
        let directory = tempfile::tempdir().unwrap();
        let (mut journal, state) = Journal::open(directory.path()).unwrap();
        assert!(state.logs.is_empty());
        let samples = [(LogOffset::new(5, 0), 100)];
        journal
            .commit(
                &[LogProgress { shape: "a", latest: LogOffset::new(5, 2), end_position: 200, new_samples: &samples, new_chunk_ends: &[] }],
                &[],
                50,
            )
            .unwrap();
        journal
            .commit(
                &[
                    LogProgress { shape: "a", latest: LogOffset::new(6, 0), end_position: 300, new_samples: &[], new_chunk_ends: &[] },
                    LogProgress { shape: "b", latest: LogOffset::new(6, 0), end_position: 40, new_samples: &[], new_chunk_ends: &[] },
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
                    &[LogProgress { shape: "a", latest: LogOffset::new(round + 1, 0), end_position: 16 + round, new_samples: &[], new_chunk_ends: &[] }],
                    &[],
                    round,
                )
                .unwrap();
        }
        let chunks = [(LogOffset::new(3, 0), 12)];
        journal
            .compact(&[LogProgress { shape: "a", latest: LogOffset::new(10, 0), end_position: 25, new_samples: &[], new_chunk_ends: &chunks }], 9)
            .unwrap();
        journal
            .commit(&[LogProgress { shape: "a", latest: LogOffset::new(11, 0), end_position: 30, new_samples: &[], new_chunk_ends: &[] }], &[], 11)
            .unwrap();
        drop(journal);
        let (_, state) = Journal::open(directory.path()).unwrap();
        assert_eq!(state.acknowledged, 11);
        assert_eq!(state.logs["a"].end_position, 30);
        assert_eq!(state.logs["a"].chunk_ends, vec![(LogOffset::new(3, 0), 12)]);
    }
}
