//! Response bodies read from a shape's files in bounded pieces.
//!
//! A body is planned as a list of parts (snapshot ranges, log ranges, literal messages) and
//! rendered into a JSON array one piece at a time. The first piece is rendered before the
//! response starts, so a body that fits in it is sent with a length, and a read error in it
//! still becomes a 409. Each later piece is read only when the connection is ready for more data,
//! so a reader that stops reading keeps at most one piece here, plus what the HTTP server
//! buffers for its connection (bounded by the request head limits, see `server`).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use crate::engine::Engine;
use crate::position::LogOffset;
use crate::shape::messages::{self, MessageFormat};
use crate::shape::store::LogRange;
use crate::shape::Shape;
use crate::storage::records::{self, Record, RecordKind};

/// One part of a planned body.
#[derive(Debug, Clone)]
pub enum Part {
    /// Snapshot records in `[position, end)`.
    Snapshot { position: u64, end: u64 },
    /// Log records in `[position, end)` whose offsets lie in `(after, last]`.
    Log { position: u64, end: u64, after: LogOffset, last: LogOffset },
    /// A message sent as it is, such as `up-to-date`.
    Message(Vec<u8>),
}

impl Part {
    /// Plans the log entries of `range` that come after `after`.
    pub fn log(range: &LogRange, after: LogOffset) -> Part {
        Part::Log { position: range.start_position, end: range.end_position, after, last: range.end_offset }
    }
}

/// A body being rendered: the parts still to send and the array's state.
struct Rendering {
    shape: Arc<Shape>,
    format: MessageFormat,
    parts: VecDeque<Part>,
    piece_bytes_max: usize,
    opened: bool,
    closed: bool,
    /// True once the array has an item, so the next one needs a comma.
    has_items: bool,
}

impl Rendering {
    /// Renders the next piece of the array: whole messages adding up to about
    /// `piece_bytes_max` bytes (one message may exceed it alone). `None` once the array is
    /// complete.
    fn next_piece(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.closed {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.piece_bytes_max.min(1 << 20));
        if !self.opened {
            out.push(b'[');
            self.opened = true;
        }
        while out.len() < self.piece_bytes_max {
            let Some(part) = self.parts.front_mut() else {
                break;
            };
            let budget = self.piece_bytes_max - out.len();
            match part {
                Part::Message(json) => {
                    let json = std::mem::take(json);
                    self.parts.pop_front();
                    push_item(&mut out, &mut self.has_items, |out| out.extend_from_slice(&json));
                }
                Part::Snapshot { position, end } => {
                    if *position >= *end {
                        self.parts.pop_front();
                        continue;
                    }
                    let file = self.shape.open_snapshot()?;
                    let (bytes, next) = records::read_whole_records(&file, *position, *end, budget)?;
                    let format = self.format;
                    let has_items = &mut self.has_items;
                    records::for_each_record(&bytes, *position, |record| render(&mut out, has_items, record, format))?;
                    *position = next;
                }
                Part::Log { position, end, after, last } => {
                    if *position >= *end {
                        self.parts.pop_front();
                        continue;
                    }
                    let file = self.shape.open_log()?;
                    let (bytes, next) = records::read_whole_records(&file, *position, *end, budget)?;
                    let (after, last, format) = (*after, *last, self.format);
                    let has_items = &mut self.has_items;
                    records::for_each_record(&bytes, *position, |record| {
                        if record.offset > after && record.offset <= last {
                            render(&mut out, has_items, record, format);
                        }
                    })?;
                    *position = next;
                }
            }
        }
        if self.parts.is_empty() {
            out.push(b']');
            self.closed = true;
        }
        Ok(Some(out))
    }
}

/// Appends one item to the array in `out`, with a comma before it when needed. An item the
/// writer leaves out (a control message in the 2024 layout) takes its comma away with it.
fn push_item(out: &mut Vec<u8>, has_items: &mut bool, write: impl FnOnce(&mut Vec<u8>)) {
    let before = out.len();
    if *has_items {
        out.push(b',');
    }
    write(out);
    if out.len() > before {
        *has_items = true;
    }
}

fn render(out: &mut Vec<u8>, has_items: &mut bool, record: Record<'_>, format: MessageFormat) {
    // The 2024 layout has no control messages such as `snapshot-end`.
    if format == MessageFormat::Legacy && record.kind == RecordKind::Control {
        return;
    }
    push_item(out, has_items, |out| messages::append_message(out, record.json, record.offset, format));
}

/// Renders `parts` as a JSON array. The first piece is read now: a read error there is
/// returned, and a body that fits in one piece is sent from memory. Later pieces are read as
/// the connection takes them; a read error then removes the shape and cuts the response off.
pub async fn render_body(engine: &Arc<Engine>, shape: &Arc<Shape>, parts: Vec<Part>, format: MessageFormat) -> Result<Body, std::io::Error> {
    let rendering = Rendering {
        shape: shape.clone(),
        format,
        parts: parts.into(),
        piece_bytes_max: engine.config.response_piece_bytes_max,
        opened: false,
        closed: false,
        has_items: false,
    };
    let (first, rendering) = next_piece(rendering).await?;
    let first = first.unwrap_or_default();
    if rendering.closed {
        return Ok(Body::from(first));
    }

    let engine = engine.clone();
    let state = (Some(Bytes::from(first)), Some(rendering));
    let stream = futures_util::stream::unfold(state, move |(first, rendering)| {
        let engine = engine.clone();
        async move {
            if let Some(first) = first {
                return Some((Ok(first), (None, rendering)));
            }
            let rendering = rendering?;
            let shape = rendering.shape.clone();
            match next_piece(rendering).await {
                Ok((Some(piece), rendering)) => Some((Ok(Bytes::from(piece)), (None, Some(rendering)))),
                Ok((None, _)) => None,
                Err(error) => {
                    super::reader::storage_failure(&engine, &shape, std::io::Error::new(error.kind(), error.to_string()));
                    Some((Err(error), (None, None)))
                }
            }
        }
    });
    Ok(Body::from_stream(stream))
}

/// Renders the next piece on the blocking pool, because it reads files.
async fn next_piece(mut rendering: Rendering) -> std::io::Result<(Option<Vec<u8>>, Rendering)> {
    tokio::task::spawn_blocking(move || {
        let piece = rendering.next_piece()?;
        Ok((piece, rendering))
    })
    .await
    .map_err(|error| std::io::Error::other(format!("rendering a response piece failed: {error}")))?
}
