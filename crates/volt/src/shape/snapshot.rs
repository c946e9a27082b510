//! Creating a shape: publishing its table, registering it with the applier and copying its
//! first rows in a `REPEATABLE READ` transaction whose snapshot decides which streamed
//! transactions the shape still needs.
//!
//! The order matters. The shape is registered with the applier before the snapshot is taken,
//! so every transaction that commits after the snapshot reaches the shape. The applier holds
//! the shape's transactions until it learns the snapshot, then keeps exactly those the
//! snapshot did not see (see `pg::visibility`).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{pin_mut, StreamExt};
use tokio_postgres::Client;

use super::messages::{self, ColumnValue, Row};
use super::{persist, Shape};
use crate::engine::Engine;
use crate::pg::names::quote_identifier;
use crate::pg::visibility::PgSnapshot;
use crate::position::LogOffset;
use crate::storage::crashsafe;
use crate::storage::records::{RecordKind, RecordWriter};

/// Snapshot bytes buffered in memory before they are written out, so a large chunk threshold
/// does not mean a large buffer.
const WRITE_BUFFER_BYTES_MAX: usize = 1 << 20;

/// Error from taking a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Runs the whole creation of a shape; on failure the shape is removed so its clients retry.
pub async fn create(engine: Arc<Engine>, shape: Arc<Shape>) {
    let started = std::time::Instant::now();
    let result = create_inner(&engine, &shape).await;
    match result {
        Ok(rows) => tracing::info!(
            handle = %shape.handle,
            table = %shape.definition.table.name,
            rows,
            duration_ms = started.elapsed().as_millis() as u64,
            "snapshot finished"
        ),
        Err(error) => {
            tracing::warn!(handle = %shape.handle, %error, "snapshot failed; removing the shape");
            shape.publish_snapshot_failure(error.to_string());
            engine.remove_shape(&shape, "snapshot failed").await;
        }
    }
}

async fn create_inner(engine: &Arc<Engine>, shape: &Arc<Shape>) -> Result<u64, SnapshotError> {
    let _permit = engine.snapshot_permits.acquire().await.map_err(|_| SnapshotError::Invalid("shutting down".into()))?;
    let client = engine.snapshot_client().await?;
    publish_table(&client, &engine.config.publication, shape).await?;
    crashsafe::create_dir_all(&shape.dir)?;
    engine.applier.register(shape.clone()).await.map_err(SnapshotError::Invalid)?;

    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let row = client.query_one("SELECT pg_current_snapshot()::text", &[]).await?;
    let snapshot: PgSnapshot = row.get::<_, String>(0).parse().map_err(SnapshotError::Invalid)?;
    engine.applier.snapshot_taken(shape.clone(), snapshot.clone()).await.map_err(SnapshotError::Invalid)?;

    let rows = copy_rows(&client, shape, engine.config.chunk_bytes_max, &snapshot).await?;
    client.batch_execute("COMMIT").await?;
    // Only a connection whose transaction ended cleanly is reused; on any error above it is
    // dropped, which closes it.
    engine.return_snapshot_client(client);
    Ok(rows)
}

/// Adds the table to the publication and makes updates and deletes carry whole old rows.
async fn publish_table(client: &Client, publication: &str, shape: &Shape) -> Result<(), SnapshotError> {
    let table = &shape.definition.table;
    let row = client
        .query_one(
            "SELECT c.relreplident = 'f', \
                    EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid \
                            WHERE p.pubname = $2 AND pr.prrelid = c.oid) \
             FROM pg_class c WHERE c.oid = $1",
            &[&table.oid, &publication],
        )
        .await?;
    let (replica_identity_full, published): (bool, bool) = (row.get(0), row.get(1));
    if !replica_identity_full {
        // Without the whole old row, an update cannot tell which columns changed.
        client.batch_execute(&format!("ALTER TABLE {} REPLICA IDENTITY FULL", table.name.quoted())).await?;
        tracing::info!(table = %table.name, "set REPLICA IDENTITY FULL");
    }
    if !published {
        let sql = format!("ALTER PUBLICATION {} ADD TABLE {}", quote_identifier(publication), table.name.quoted());
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(table = %table.name, publication, "added the table to the publication"),
            // Another shape on the same table may have added it in the meantime.
            Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Copies the table's rows into the snapshot file in chunks and appends `snapshot-end`.
async fn copy_rows(client: &Client, shape: &Shape, chunk_bytes_max: u64, snapshot: &PgSnapshot) -> Result<u64, SnapshotError> {
    let table = &shape.definition.table;
    let columns: Vec<String> = table.columns.iter().map(|column| quote_identifier(&column.name)).collect();
    let only = if table.partitioned { "" } else { "ONLY " };
    // COPY's text format prints every value with its type's output function, exactly as the
    // replication stream does, which a `::text` cast does not (booleans, bpchar, inet differ).
    // The clause is rendered from the checked tree with its parameters bound as typed
    // literals; the client's text never reaches Postgres.
    let filter = match &shape.definition.filter {
        Some(filter) => format!(" WHERE {}", filter.filter.to_sql()),
        None => String::new(),
    };
    let sql = format!("COPY (SELECT {} FROM {only}{}{filter}) TO STDOUT", columns.join(", "), table.name.quoted());
    let stream = client.copy_out(&sql).await?;
    pin_mut!(stream);

    let mut sink = SnapshotSink::new(shape, chunk_bytes_max)?;
    let mut partial_line: Vec<u8> = Vec::new();
    while let Some(data) = stream.next().await {
        // Postgres sends one row per message, so the fast path slices values out of the
        // message without copying. A row split across messages is reassembled first.
        let data = data?;
        let mut line_start = 0;
        while let Some(newline) = data[line_start..].iter().position(|&b| b == b'\n') {
            let line_end = line_start + newline;
            if partial_line.is_empty() {
                sink.add_row(parse_copy_line(&data.slice(line_start..line_end), columns.len())?)?;
            } else {
                partial_line.extend_from_slice(&data[line_start..line_end]);
                let line = Bytes::from(std::mem::take(&mut partial_line));
                sink.add_row(parse_copy_line(&line, columns.len())?)?;
            }
            line_start = line_end + 1;
        }
        partial_line.extend_from_slice(&data[line_start..]);
    }
    if !partial_line.is_empty() {
        return Err(SnapshotError::Invalid("COPY output ended inside a row".into()));
    }
    sink.finish(snapshot)
}

/// Writes snapshot rows, closing a chunk whenever it reaches the size threshold.
struct SnapshotSink<'a> {
    shape: &'a Shape,
    writer: RecordWriter,
    chunk_bytes_max: u64,
    chunk_bytes: u64,
    chunk: u64,
    rows: u64,
    json: Vec<u8>,
}

impl<'a> SnapshotSink<'a> {
    fn new(shape: &'a Shape, chunk_bytes_max: u64) -> std::io::Result<Self> {
        let writer = RecordWriter::create(&shape.snapshot_path())?;
        Ok(SnapshotSink { shape, writer, chunk_bytes_max, chunk_bytes: 0, chunk: 0, rows: 0, json: Vec::new() })
    }

    fn add_row(&mut self, row: Row) -> Result<(), SnapshotError> {
        let key = self
            .shape
            .encoder
            .row_key(&row)
            .ok_or_else(|| SnapshotError::Invalid("a snapshot row lacks a key column".into()))?;
        self.json.clear();
        self.shape.encoder.snapshot_row(&key, &row, &mut self.json);
        self.writer.append(RecordKind::Change, LogOffset::snapshot_chunk(self.chunk), &self.json);
        self.rows += 1;
        // One byte per row for the separator, as the chunk size counts what is sent.
        self.chunk_bytes += self.json.len() as u64 + 1;
        if self.chunk_bytes >= self.chunk_bytes_max {
            let end = tokio::task::block_in_place(|| self.writer.flush(true))?;
            self.shape.publish_snapshot_chunk(end);
            self.chunk += 1;
            self.chunk_bytes = 0;
        } else if self.writer.buffered_bytes() >= WRITE_BUFFER_BYTES_MAX {
            tokio::task::block_in_place(|| self.writer.flush(false))?;
        }
        Ok(())
    }

    fn finish(mut self, snapshot: &PgSnapshot) -> Result<u64, SnapshotError> {
        let end_message = messages::snapshot_end(snapshot);
        self.writer.append(RecordKind::Control, LogOffset::snapshot_chunk(self.chunk), &end_message);
        let end = tokio::task::block_in_place(|| self.writer.flush(true))?;
        let mut chunk_ends = self.shape.watch_snapshot().borrow().chunk_ends.clone();
        if chunk_ends.last() != Some(&end) {
            chunk_ends.push(end);
        }
        // The metadata is what makes the shape survive a restart, so it is written only once
        // the snapshot is durable.
        tokio::task::block_in_place(|| {
            persist::write(&self.shape.dir, &self.shape.handle, &self.shape.definition, snapshot, &chunk_ends)
        })?;
        self.shape.publish_snapshot_finished(end);
        Ok(self.rows)
    }
}

/// Splits one line of COPY text output into column values, undoing COPY's escapes.
fn parse_copy_line(line: &Bytes, column_count: usize) -> Result<Row, SnapshotError> {
    let mut row = Vec::with_capacity(column_count);
    let mut field_start = 0;
    for field in line.split(|&b| b == b'\t') {
        let field_end = field_start + field.len();
        if field == b"\\N" {
            row.push(ColumnValue::Null);
        } else if field.contains(&b'\\') {
            row.push(ColumnValue::Text(Bytes::from(unescape_copy_field(field))));
        } else {
            row.push(ColumnValue::Text(line.slice(field_start..field_end)));
        }
        field_start = field_end + 1;
    }
    if row.len() != column_count {
        return Err(SnapshotError::Invalid(format!("COPY returned {} columns, expected {column_count}", row.len())));
    }
    Ok(row)
}

/// Undoes the backslash escapes of COPY's text format.
fn unescape_copy_field(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut index = 0;
    while index < field.len() {
        let byte = field[index];
        index += 1;
        if byte != b'\\' || index == field.len() {
            out.push(byte);
            continue;
        }
        let escaped = field[index];
        index += 1;
        match escaped {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0C),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0B),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match field.get(index) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            index += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match field.get(index).and_then(|&d| (d as char).to_digit(16)) {
                        Some(digit) => {
                            value = value * 16 + digit;
                            index += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push(value as u8);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_line_nulls_and_escapes() {
        let row = parse_copy_line(&Bytes::from_static(b"1\t\\N\ta\\tb\\\\c\\nd\t\\101\t\\x41"), 5).unwrap();
        assert_eq!(row[0], ColumnValue::Text(Bytes::from_static(b"1")));
        assert_eq!(row[1], ColumnValue::Null);
        assert_eq!(row[2], ColumnValue::Text(Bytes::from_static(b"a\tb\\c\nd")));
        assert_eq!(row[3], ColumnValue::Text(Bytes::from_static(b"A")));
        assert_eq!(row[4], ColumnValue::Text(Bytes::from_static(b"A")));
    }

    #[test]
    fn copy_line_column_count_checked() {
        assert!(parse_copy_line(&Bytes::from_static(b"1\t2"), 3).is_err());
        let empty = parse_copy_line(&Bytes::new(), 1).unwrap();
        assert_eq!(empty, vec![ColumnValue::Text(Bytes::new())]);
    }
}
