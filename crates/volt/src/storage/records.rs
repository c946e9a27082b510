//! Append-only files of checksummed records, used for both snapshot files and shape logs.
//!
//! A file starts with a 16-byte header (magic, format version). Each record is
//! `[u32 payload length][u32 CRC-32C of the payload][payload]`, little-endian, and the payload is
//! `[u8 kind][u64 offset tx][u64 offset op][JSON message]`. The JSON is stored exactly as it is
//! sent to clients, so serving a range is framing removal and copying, never re-encoding.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::crashsafe;
use crate::position::LogOffset;

/// First bytes of every record file.
const MAGIC: [u8; 8] = *b"VOLTREC\0";
/// Version of the record layout; readers reject other versions.
const FORMAT_VERSION: u32 = 1;
/// Size of the file header: magic, version, 4 reserved bytes.
pub const HEADER_BYTES: u64 = 16;
/// Size of a record's frame before the payload: length and checksum.
const FRAME_BYTES: usize = 8;
/// Size of the payload's fixed part: kind and offset.
const PAYLOAD_PREFIX_BYTES: usize = 17;
/// Largest payload accepted when reading. A larger length field means corruption, because
/// 1 GiB is Postgres's own limit for one field value and a message contains one row.
const PAYLOAD_BYTES_MAX: usize = 1 << 30;

/// Kind of message in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A data message: insert, update or delete of one row.
    Change = 1,
    /// A control message such as `snapshot-end`.
    Control = 2,
    /// In the journal only: bytes appended to a shape log, kept until the log is synced.
    /// The payload after the offset is binary (see `storage::journal`), not JSON.
    LogData = 3,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(RecordKind::Change),
            2 => Some(RecordKind::Control),
            3 => Some(RecordKind::LogData),
            _ => None,
        }
    }
}

/// One record as read back from a file.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub kind: RecordKind,
    pub offset: LogOffset,
    pub json: &'a [u8],
}

/// A record file being written. Appends go to a private buffer; [`RecordWriter::flush`]
/// writes and syncs them, and only then may their end position be shown to readers.
///
/// A log can also keep committed bytes in memory instead of writing them at once
/// ([`RecordWriter::keep_unwritten`]), when something else (the journal) makes them durable.
/// Those bytes sit in an [`Unwritten`] region shared with readers, between the end of the
/// file and the private buffer, until a later flush writes them.
#[derive(Debug)]
pub struct RecordWriter {
    file: File,
    unwritten: Arc<Mutex<Unwritten>>,
    /// Appended bytes that follow the unwritten region.
    buffer: Vec<u8>,
    /// Bytes at the start of `buffer` already written by a flush that then failed.
    unwritten_start: usize,
    /// True when bytes were written since the last sync.
    unsynced: bool,
}

/// Bytes of a record file that readers may see but that are not in the file yet.
#[derive(Debug, Default)]
pub struct Unwritten {
    /// File position of the first byte: the end of what was written to the file.
    pub start: u64,
    pub bytes: Vec<u8>,
    /// Bytes at the start of `bytes` already written by a flush that then failed.
    written: usize,
}

impl Unwritten {
    /// File position after the last byte.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl RecordWriter {
    /// Creates a new record file with its header. The file must not exist.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut file = crashsafe::create_new_file(path)?;
        file.write_all(&file_header())?;
        crashsafe::sync_data(&file)?;
        Ok(RecordWriter::with_file(file, HEADER_BYTES))
    }

    /// Opens an existing record file for appending after `end`, cutting anything after it:
    /// bytes past the last durable position are a torn tail from a crash.
    pub fn open_existing(path: &Path, end: u64) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).append(true).open(path)?;
        check_header(&file)?;
        let length = file.metadata()?.len();
        if length < end {
            return Err(corrupt(&format!("{} is {length} bytes long, shorter than its recorded end {end}", path.display())));
        }
        if length > end {
            file.set_len(end)?;
            crashsafe::sync_data(&file)?;
        }
        Ok(RecordWriter::with_file(file, end))
    }

    fn with_file(file: File, end: u64) -> Self {
        let unwritten = Unwritten { start: end, bytes: Vec::new(), written: 0 };
        RecordWriter { file, unwritten: Arc::new(Mutex::new(unwritten)), buffer: Vec::new(), unwritten_start: 0, unsynced: false }
    }

    fn lock_unwritten(&self) -> std::sync::MutexGuard<'_, Unwritten> {
        self.unwritten.lock().expect("unwritten bytes lock")
    }

    /// Returns the region readers consult for bytes not yet in the file.
    pub fn shared_unwritten(&self) -> Arc<Mutex<Unwritten>> {
        self.unwritten.clone()
    }

    /// Appends a record to the buffer and returns the file position where it starts.
    pub fn append(&mut self, kind: RecordKind, offset: LogOffset, json: &[u8]) -> u64 {
        let position = self.end_position();
        encode_record(&mut self.buffer, kind, offset, json);
        position
    }

    /// File position where the private buffer starts.
    fn buffer_start(&self) -> u64 {
        self.lock_unwritten().end()
    }

    /// File position after the last appended record, flushed or not.
    pub fn end_position(&self) -> u64 {
        self.buffer_start() + self.buffer.len() as u64
    }

    /// Bytes appended but not yet written, kept or not.
    pub fn buffered_bytes(&self) -> usize {
        self.lock_unwritten().bytes.len() + self.buffer.len()
    }

    /// Bytes kept by [`RecordWriter::keep_unwritten`] and not yet written.
    pub fn kept_bytes(&self) -> usize {
        self.lock_unwritten().bytes.len()
    }

    /// Returns the appended bytes `[start, end)` when all of them are in the private buffer,
    /// that is when none of them was written out or kept since `start`.
    pub fn buffered_range(&self, start: u64, end: u64) -> Option<&[u8]> {
        let buffer_start = self.buffer_start();
        if start < buffer_start || end < start || end > buffer_start + self.buffer.len() as u64 || self.unwritten_start > 0 {
            return None;
        }
        let from = (start - buffer_start) as usize;
        let to = (end - buffer_start) as usize;
        Some(&self.buffer[from..to])
    }

    /// Moves the buffered bytes before `end` to the region readers can see without writing
    /// them. The caller must have made them durable some other way. Returns false, moving
    /// nothing, when part of the buffer was already written.
    pub fn keep_unwritten(&mut self, end: u64) -> bool {
        if self.unwritten_start > 0 {
            return false;
        }
        let mut unwritten = self.unwritten.lock().expect("unwritten bytes lock");
        let Some(count) = end.checked_sub(unwritten.end()).map(|count| count as usize).filter(|&count| count <= self.buffer.len()) else {
            return false;
        };
        unwritten.bytes.extend(self.buffer.drain(..count));
        true
    }

    /// Writes the kept bytes and the buffer and, when `sync` is true, makes everything
    /// written durable. Returns the new end. After an error (a full disk, say) the writer
    /// stays consistent and a later call continues where this one stopped.
    pub fn flush(&mut self, sync: bool) -> io::Result<u64> {
        {
            let mut unwritten = self.unwritten.lock().expect("unwritten bytes lock");
            let Unwritten { bytes, written, .. } = &mut *unwritten;
            write_from(&mut self.file, bytes, written, &mut self.unsynced)?;
            unwritten.start = unwritten.end();
            unwritten.bytes.clear();
            unwritten.written = 0;
        }
        write_from(&mut self.file, &self.buffer, &mut self.unwritten_start, &mut self.unsynced)?;
        let end = {
            let mut unwritten = self.unwritten.lock().expect("unwritten bytes lock");
            unwritten.start += self.buffer.len() as u64;
            unwritten.start
        };
        self.buffer.clear();
        self.unwritten_start = 0;
        if sync && self.unsynced {
            crashsafe::sync_data(&self.file)?;
            self.unsynced = false;
        }
        Ok(end)
    }

    /// Records that a file-system-wide sync covered this file's written bytes.
    pub fn mark_synced(&mut self) {
        if self.buffered_bytes() == 0 {
            self.unsynced = false;
        }
    }

    /// Drops everything after `position`, buffered or written: the records of a transaction
    /// that will not complete. Kept bytes are never dropped: they are durable.
    pub fn truncate(&mut self, position: u64) -> io::Result<()> {
        let buffer_start = self.buffer_start();
        if position >= buffer_start + self.unwritten_start as u64 {
            self.buffer.truncate((position - buffer_start) as usize);
            return Ok(());
        }
        let mut unwritten = self.unwritten.lock().expect("unwritten bytes lock");
        if !unwritten.bytes.is_empty() {
            return Err(corrupt("cannot drop bytes that were made durable"));
        }
        // Part of what goes already reached the file; what stays is all in the file.
        self.file.set_len(position)?;
        unwritten.start = position;
        self.buffer.clear();
        self.unwritten_start = 0;
        self.unsynced = true;
        Ok(())
    }

    /// Opens a second handle on the same file for readers.
    pub fn reader(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

/// Writes `bytes[*done..]` to the end of `file`, advancing `done` as bytes are accepted.
fn write_from(file: &mut File, bytes: &[u8], done: &mut usize, unsynced: &mut bool) -> io::Result<()> {
    while *done < bytes.len() {
        match file.write(&bytes[*done..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the file accepted no bytes")),
            Ok(written) => {
                *done += written;
                *unsynced = true;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads the bytes `[start, end)` of a record file whose last bytes may still be in
/// `unwritten`. Both ends must be record boundaries.
pub fn read_range_with_unwritten(file: &File, unwritten: &Mutex<Unwritten>, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
    // Copy the part still in memory first. `RecordWriter::flush` clears the region only after
    // writing its bytes, under this lock, so the part before its start is already in the file.
    let file_end = {
        let unwritten = unwritten.lock().expect("unwritten bytes lock");
        let file_end = end.min(unwritten.start).max(start);
        if end > file_end {
            let from = (file_end - unwritten.start) as usize;
            let to = (end - unwritten.start) as usize;
            let source = unwritten.bytes.get(from..to).ok_or_else(|| corrupt("read past the end of a record file"))?;
            bytes[(file_end - start) as usize..].copy_from_slice(source);
        }
        file_end
    };
    file.read_exact_at(&mut bytes[..(file_end - start) as usize], start)?;
    Ok(bytes)
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, kind: RecordKind, offset: LogOffset, json: &[u8]) {
    let payload_bytes = PAYLOAD_PREFIX_BYTES + json.len();
    let mut prefix = [0u8; PAYLOAD_PREFIX_BYTES];
    prefix[0] = kind as u8;
    prefix[1..9].copy_from_slice(&offset.tx.to_le_bytes());
    prefix[9..17].copy_from_slice(&offset.op.to_le_bytes());
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&prefix), json);
    out.extend_from_slice(&(payload_bytes as u32).to_le_bytes());
    out.extend_from_slice(&checksum.to_le_bytes());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(json);
}

/// Builds the 16-byte header every record file starts with.
pub fn file_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_BYTES as usize);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    header
}

/// A record read back and copied out of its file, as the journal replays them.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    pub kind: RecordKind,
    pub offset: LogOffset,
    pub json: Vec<u8>,
}

/// Reads a whole record file and returns its records up to the first invalid one, with the
/// file position where the valid part ends. A torn tail after a crash ends the valid part.
pub fn read_valid_prefix(path: &Path) -> io::Result<(Vec<OwnedRecord>, u64)> {
    let file = File::open(path)?;
    check_header(&file)?;
    let length = file.metadata()?.len();
    let bytes = read_range(&file, HEADER_BYTES, length)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Ok((record, next)) = decode_record(&bytes, at, HEADER_BYTES) {
        records.push(OwnedRecord { kind: record.kind, offset: record.offset, json: record.json.to_vec() });
        at = next;
    }
    Ok((records, HEADER_BYTES + at as u64))
}

/// Checks the header of a record file opened for reading.
pub fn check_header(file: &File) -> io::Result<()> {
    let mut header = [0u8; HEADER_BYTES as usize];
    file.read_exact_at(&mut header, 0)?;
    if header[..8] != MAGIC {
        return Err(corrupt("record file has an unknown magic number"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(corrupt(&format!("record file has format version {version}, expected {FORMAT_VERSION}")));
    }
    Ok(())
}

/// Reads the bytes `[start, end)` of a record file. Both ends must be record boundaries.
pub fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
    file.read_exact_at(&mut bytes, start)?;
    Ok(bytes)
}

/// Reads whole records from `[start, end)`, which must start and end at record boundaries:
/// as many as fit in `bytes_max`, and at least one even when it alone is larger. Returns the
/// bytes and the file position after the last record read.
pub fn read_whole_records(file: &File, start: u64, end: u64, bytes_max: usize) -> io::Result<(Vec<u8>, u64)> {
    read_whole_records_with(|from, to| read_range(file, from, to), start, end, bytes_max)
}

/// Reads whole records like [`read_whole_records`], taking the bytes `[from, to)` from `read`.
pub fn read_whole_records_with(read: impl Fn(u64, u64) -> io::Result<Vec<u8>>, start: u64, end: u64, bytes_max: usize) -> io::Result<(Vec<u8>, u64)> {
    if start >= end {
        return Ok((Vec::new(), start));
    }
    let mut bytes = read(start, end.min(start.saturating_add(bytes_max as u64)))?;
    let mut at = 0usize;
    while let Some(frame) = bytes.get(at..at + FRAME_BYTES) {
        let next = at + FRAME_BYTES + payload_length(frame, start + at as u64)?;
        if next > bytes.len() {
            break;
        }
        at = next;
    }
    if at > 0 {
        bytes.truncate(at);
        return Ok((bytes, start + at as u64));
    }

    // The first record is larger than `bytes_max`: read it alone.
    if end - start < FRAME_BYTES as u64 {
        return Err(corrupt(&format!("record at byte {start} runs past the end of its range at byte {end}")));
    }
    let frame = read(start, start + FRAME_BYTES as u64)?;
    let record_end = start + (FRAME_BYTES + payload_length(&frame, start)?) as u64;
    if record_end > end {
        return Err(corrupt(&format!("record at byte {start} runs past the end of its range at byte {end}")));
    }
    Ok((read(start, record_end)?, record_end))
}

/// Returns the payload length a record frame announces, checked against the valid range.
fn payload_length(frame: &[u8], position: u64) -> io::Result<usize> {
    let payload_bytes = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    if !(PAYLOAD_PREFIX_BYTES..=PAYLOAD_BYTES_MAX).contains(&payload_bytes) {
        return Err(corrupt(&format!("invalid record length {payload_bytes} at byte {position}")));
    }
    Ok(payload_bytes)
}

/// Iterates over the records in `bytes`, which must start and end at record boundaries.
/// A bad checksum or a truncated record is an `InvalidData` error naming the byte position
/// (`base` is the file position of `bytes[0]`).
pub fn for_each_record(bytes: &[u8], base: u64, mut visit: impl FnMut(Record<'_>)) -> io::Result<()> {
    let mut at = 0usize;
    while at < bytes.len() {
        let (record, next) = decode_record(bytes, at, base)?;
        visit(record);
        at = next;
    }
    Ok(())
}

/// Decodes the record that starts at `bytes[at]` and returns it with the index after it.
/// `base` is the file position of `bytes[0]`, for error messages.
fn decode_record(bytes: &[u8], at: usize, base: u64) -> io::Result<(Record<'_>, usize)> {
    let position = base + at as u64;
    let frame = bytes
        .get(at..at + FRAME_BYTES)
        .ok_or_else(|| corrupt(&format!("truncated record frame at byte {position}")))?;
    let payload_bytes = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    let checksum = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    if !(PAYLOAD_PREFIX_BYTES..=PAYLOAD_BYTES_MAX).contains(&payload_bytes) {
        return Err(corrupt(&format!("invalid record length {payload_bytes} at byte {position}")));
    }
    let payload_start = at + FRAME_BYTES;
    let payload = bytes
        .get(payload_start..payload_start + payload_bytes)
        .ok_or_else(|| corrupt(&format!("truncated record at byte {position}")))?;
    if crc32c::crc32c(payload) != checksum {
        return Err(corrupt(&format!("record checksum mismatch at byte {position}")));
    }
    let kind = RecordKind::from_byte(payload[0])
        .ok_or_else(|| corrupt(&format!("unknown record kind {} at byte {position}", payload[0])))?;
    let tx = u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes"));
    let op = u64::from_le_bytes(payload[9..17].try_into().expect("8 bytes"));
    let record = Record { kind, offset: LogOffset::new(tx, op), json: &payload[PAYLOAD_PREFIX_BYTES..] };
    Ok((record, payload_start + payload_bytes))
}

fn corrupt(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log");
        let mut writer = RecordWriter::create(&path).unwrap();
        let first = writer.append(RecordKind::Change, LogOffset::new(7, 0), br#"{"a":1}"#);
        let second = writer.append(RecordKind::Control, LogOffset::new(7, 2), br#"{"b":2}"#);
        assert_eq!(first, HEADER_BYTES);
        assert!(second > first);
        let end = writer.flush(true).unwrap();
        assert_eq!(end, writer.end_position());

        let reader = writer.reader().unwrap();
        check_header(&reader).unwrap();
        let bytes = read_range(&reader, HEADER_BYTES, end).unwrap();
        let mut seen = Vec::new();
        for_each_record(&bytes, HEADER_BYTES, |record| {
            seen.push((record.kind, record.offset, record.json.to_vec()));
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (RecordKind::Change, LogOffset::new(7, 0), br#"{"a":1}"#.to_vec()));
        assert_eq!(seen[1], (RecordKind::Control, LogOffset::new(7, 2), br#"{"b":2}"#.to_vec()));
    }

    #[test]
    fn valid_prefix_stops_at_torn_tail() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log");
        let mut writer = RecordWriter::create(&path).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(1, 0), b"{}");
        let first_end = writer.end_position();
        writer.append(RecordKind::Change, LogOffset::new(2, 0), b"{\"x\":1}");
        let full_end = writer.flush(true).unwrap();
        // A crash in the middle of the second record's write.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(full_end - 3).unwrap();
        let (records, valid_end) = read_valid_prefix(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(valid_end, first_end);

        let mut reopened = RecordWriter::open_existing(&path, valid_end).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first_end);
        reopened.append(RecordKind::Change, LogOffset::new(3, 0), b"{}");
        let end = reopened.flush(true).unwrap();
        let (records, valid_end) = read_valid_prefix(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(valid_end, end);
    }

    #[test]
    fn truncate_drops_written_and_buffered_bytes() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log");
        let mut writer = RecordWriter::create(&path).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(1, 0), b"{}");
        let committed = writer.flush(true).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(2, 0), b"{}");
        writer.flush(false).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(2, 2), b"{}");
        writer.truncate(committed).unwrap();
        assert_eq!(writer.end_position(), committed);
        assert_eq!(writer.flush(true).unwrap(), committed);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
    }

    #[test]
    fn whole_records_are_read_in_pieces() {
        let directory = tempfile::tempdir().unwrap();
        let mut writer = RecordWriter::create(&directory.path().join("log")).unwrap();
        let large = vec![b'x'; 300];
        for op in 0..10 {
            let json: &[u8] = if op == 4 { &large } else { b"{}" };
            writer.append(RecordKind::Change, LogOffset::new(1, op), json);
        }
        let end = writer.flush(false).unwrap();
        let file = writer.reader().unwrap();

        let mut position = HEADER_BYTES;
        let mut offsets = Vec::new();
        let mut pieces = 0;
        while position < end {
            let (bytes, next) = read_whole_records(&file, position, end, 64).unwrap();
            assert!(next > position);
            assert!(bytes.len() <= 64 || offsets.len() == 4, "only the large record may exceed the limit");
            for_each_record(&bytes, position, |record| offsets.push(record.offset.op)).unwrap();
            position = next;
            pieces += 1;
        }
        assert_eq!(position, end);
        assert_eq!(offsets, (0..10).collect::<Vec<_>>());
        assert!(pieces > 3, "{pieces} pieces");
        assert_eq!(read_whole_records(&file, end, end, 64).unwrap(), (Vec::new(), end));
    }

    #[test]
    fn records_detect_corruption() {
        let directory = tempfile::tempdir().unwrap();
        let mut writer = RecordWriter::create(&directory.path().join("log")).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(1, 0), b"{}");
        let end = writer.flush(false).unwrap();
        let mut bytes = read_range(&writer.reader().unwrap(), HEADER_BYTES, end).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        let error = for_each_record(&bytes, HEADER_BYTES, |_| {}).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let error = for_each_record(&bytes[..bytes.len() - 1], HEADER_BYTES, |_| {}).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
    }

    #[test]
    fn kept_bytes_readable_before_write() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log");
        let mut writer = RecordWriter::create(&path).unwrap();
        let unwritten = writer.shared_unwritten();
        writer.append(RecordKind::Change, LogOffset::new(1, 0), b"\"written\"");
        let first_end = writer.flush(false).unwrap();
        writer.append(RecordKind::Change, LogOffset::new(2, 0), b"\"kept\"");
        let kept_end = writer.end_position();
        writer.append(RecordKind::Change, LogOffset::new(3, 0), b"\"uncommitted\"");
        assert_eq!(writer.buffered_range(first_end, kept_end).map(<[u8]>::len), Some((kept_end - first_end) as usize));
        assert!(writer.keep_unwritten(kept_end));
        // The kept record is no longer in the private buffer, and not in the file either.
        assert!(writer.buffered_range(first_end, kept_end).is_none());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first_end);

        let reader = writer.reader().unwrap();
        let read_all = |end: u64| {
            let bytes = read_range_with_unwritten(&reader, &unwritten, HEADER_BYTES, end).unwrap();
            let mut seen = Vec::new();
            for_each_record(&bytes, HEADER_BYTES, |record| seen.push(String::from_utf8(record.json.to_vec()).unwrap())).unwrap();
            seen
        };
        assert_eq!(read_all(kept_end), ["\"written\"", "\"kept\""]);

        // Dropping the uncommitted record leaves the kept one; a flush writes both regions in order.
        writer.truncate(kept_end).unwrap();
        assert!(writer.truncate(first_end).is_err(), "kept bytes are durable and never dropped");
        writer.append(RecordKind::Change, LogOffset::new(4, 0), b"\"next\"");
        let end = writer.flush(true).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
        assert_eq!(read_all(end), ["\"written\"", "\"kept\"", "\"next\""]);
        let (records, valid_end) = read_valid_prefix(&path).unwrap();
        assert_eq!((records.len(), valid_end), (3, end));
    }
}
