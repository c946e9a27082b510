//! Reading a shape for a response, in either dialect: snapshot chunks, log ranges, and the
//! wait of a live request. Each read is first planned (which parts of which file, where the
//! client continues), then rendered as a JSON array in the requested message format.

use std::sync::Arc;

use axum::body::Body;

use super::body::{render_body, Part};
use crate::engine::Engine;
use crate::position::LogOffset;
use crate::shape::messages::{self, MessageFormat};
use crate::shape::store::{LogHead, SnapshotProgress};
use crate::shape::Shape;
use crate::storage::records::HEADER_BYTES;

/// A JSON array of messages ready to send.
pub struct Batch {
    /// The array, brackets included, in memory or read from the shape's files as it is sent.
    pub body: Body,
    /// Offset of the last message served, where the client continues.
    pub next_offset: LogOffset,
    /// True when the batch ends with an `up-to-date` message.
    pub up_to_date: bool,
    /// True when the batch carries data messages.
    pub has_data: bool,
}

/// The contents of a batch, planned before any file is read.
#[derive(Debug)]
pub struct Plan {
    pub parts: Vec<Part>,
    /// Offset of the last message served, where the client continues.
    pub next_offset: LogOffset,
    /// True when the batch ends with an `up-to-date` message.
    pub up_to_date: bool,
    /// True when the batch carries data messages.
    pub has_data: bool,
}

/// Error from reading a shape.
#[derive(Debug)]
pub enum ReadError {
    /// The shape was removed; the client must start over (409).
    Gone,
    /// The snapshot failed or a read failed for a passing reason; the client should retry.
    Unavailable(&'static str),
    /// The requested offset lies beyond what the shape has.
    OutOfBounds,
    /// Volt is shutting down.
    ShuttingDown,
}

impl Batch {
    /// Builds a batch with only an `up-to-date` message, for a live request that timed out.
    pub fn up_to_date_only(engine: &Engine, next_offset: LogOffset) -> Batch {
        let mut body = b"[".to_vec();
        body.extend_from_slice(&messages::up_to_date(engine.global_last_seen_lsn()));
        body.push(b']');
        Batch { body: Body::from(body), next_offset, up_to_date: true, has_data: false }
    }

    /// Renders a plan into a batch. The first piece is read here, so a damaged file found
    /// there removes the shape and returns `Gone`.
    async fn render(engine: &Arc<Engine>, shape: &Arc<Shape>, plan: Plan, format: MessageFormat) -> Result<Batch, ReadError> {
        // Only a range that does not reach the head is a closed chunk: the head moves.
        let closed_chunk = !plan.up_to_date;
        let body = render_body(engine, shape, plan.parts, format, closed_chunk).await.map_err(|error| storage_failure(engine, shape, error))?;
        Ok(Batch { body, next_offset: plan.next_offset, up_to_date: plan.up_to_date, has_data: plan.has_data })
    }
}

/// Waits for snapshot chunk `chunk` and reads it. `Ok(None)` when the snapshot has no such
/// chunk because it ended with the previous one: the log comes next.
pub async fn read_snapshot_chunk(engine: &Arc<Engine>, shape: &Arc<Shape>, chunk: u64, format: MessageFormat) -> Result<Option<Batch>, ReadError> {
    match plan_snapshot_chunk(engine, shape, chunk).await? {
        Some(plan) => Batch::render(engine, shape, plan, format).await.map(Some),
        None => Ok(None),
    }
}

/// Waits for snapshot chunk `chunk` and plans its batch, like [`read_snapshot_chunk`].
pub async fn plan_snapshot_chunk(engine: &Arc<Engine>, shape: &Arc<Shape>, chunk: u64) -> Result<Option<Plan>, ReadError> {
    let mut progress = shape.watch_snapshot();
    let mut shutdown = engine.shutdown.clone();
    let chunk_index = chunk as usize;
    let ready = |p: &SnapshotProgress| p.failure.is_some() || p.finished || p.chunk_ends.len() > chunk_index;
    let state = tokio::select! {
        state = progress.wait_for(ready) => state.map(|state| state.clone()).map_err(|_| ReadError::Gone)?,
        _ = shutdown.wait_for(|stop| *stop) => return Err(ReadError::ShuttingDown),
    };
    if state.failure.is_some() {
        return Err(if shape.is_removed() { ReadError::Gone } else { ReadError::Unavailable("Failed to create shape, please retry") });
    }
    if chunk_index >= state.chunk_ends.len() {
        if chunk_index == state.chunk_ends.len() && state.finished && chunk > 0 {
            return Ok(None);
        }
        return Err(ReadError::OutOfBounds);
    }

    let start = if chunk_index == 0 { HEADER_BYTES } else { state.chunk_ends[chunk_index - 1] };
    let end = state.chunk_ends[chunk_index];
    let parts = vec![Part::Snapshot { position: start, end }];
    Ok(Some(Plan { parts, next_offset: LogOffset::snapshot_chunk(chunk), up_to_date: false, has_data: true }))
}

/// Reads the log after `after`. With `live`, a request that finds nothing new waits up to the
/// long-poll timeout; `Ok(None)` means it timed out.
pub async fn read_log(engine: &Arc<Engine>, shape: &Arc<Shape>, after: LogOffset, live: bool, format: MessageFormat) -> Result<Option<Batch>, ReadError> {
    match plan_log(engine, shape, after, live, format).await? {
        Some(plan) => Batch::render(engine, shape, plan, format).await.map(Some),
        None => Ok(None),
    }
}

/// Waits like [`read_log`] and plans the batch of log entries after `after`.
pub async fn plan_log(engine: &Arc<Engine>, shape: &Arc<Shape>, after: LogOffset, live: bool, format: MessageFormat) -> Result<Option<Plan>, ReadError> {
    wait_for_snapshot(engine, shape).await?;
    let mut log = shape.watch_log();
    let mut head = *log.borrow_and_update();
    if head.removed {
        return Err(ReadError::Gone);
    }
    if head.latest <= after && live {
        let mut shutdown = engine.shutdown.clone();
        let wait = tokio::time::timeout(engine.config.long_poll_timeout, log.wait_for(|h| h.removed || h.latest > after));
        head = tokio::select! {
            waited = wait => match waited {
                Ok(Ok(current)) if !current.removed => *current,
                Ok(_) => return Err(ReadError::Gone),
                Err(_) => return Ok(None),
            },
            _ = shutdown.wait_for(|stop| *stop) => return Err(ReadError::ShuttingDown),
        };
    }
    // Offsets up to `<latest tx + 1>_0` are valid: SSE clients resume from that offset after
    // an `up-to-date` message (see `http::sse`), and no entry lies between it and `latest`.
    if after > head.latest.after_transaction() {
        return Err(ReadError::OutOfBounds);
    }
    Ok(Some(plan_log_range(engine, shape, after, head, format)))
}

/// Plans the entries after `after` that one response carries. The range's last offset is
/// known from the index, so the batch has data exactly when that offset lies after `after`.
fn plan_log_range(engine: &Engine, shape: &Shape, after: LogOffset, head: LogHead, format: MessageFormat) -> Plan {
    let range = shape.log_range(after, &head);
    let mut parts = vec![Part::log(&range, after)];
    if range.reaches_head {
        let up_to_date = match format {
            MessageFormat::Current => messages::up_to_date(engine.global_last_seen_lsn().max(range.end_offset.tx)),
            MessageFormat::Legacy => messages::LEGACY_UP_TO_DATE.to_vec(),
        };
        parts.push(Part::Message(up_to_date));
    }
    Plan { parts, next_offset: range.end_offset, up_to_date: range.reaches_head, has_data: range.end_offset > after }
}

/// Waits until the shape's snapshot is complete: the log follows it.
async fn wait_for_snapshot(engine: &Arc<Engine>, shape: &Arc<Shape>) -> Result<(), ReadError> {
    let mut progress = shape.watch_snapshot();
    let mut shutdown = engine.shutdown.clone();
    tokio::select! {
        state = progress.wait_for(|p| p.finished || p.failure.is_some()) => match state {
            Ok(state) if state.failure.is_none() => Ok(()),
            _ => Err(ReadError::Gone),
        },
        _ = shutdown.wait_for(|stop| *stop) => Err(ReadError::ShuttingDown),
    }
}

/// Removes a shape whose file cannot be read, so its clients resync instead of receiving
/// damaged data.
pub(super) fn storage_failure(engine: &Arc<Engine>, shape: &Arc<Shape>, error: std::io::Error) -> ReadError {
    tracing::error!(handle = %shape.handle, %error, "cannot read a shape file; removing the shape");
    let engine = engine.clone();
    let shape = shape.clone();
    tokio::spawn(async move { engine.remove_shape(&shape, "unreadable shape file").await });
    ReadError::Gone
}
