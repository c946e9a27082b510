//! Response bodies read from a shape's files in bounded pieces.
//!
//! A body is planned as a list of parts (snapshot ranges, log ranges, literal messages) and
//! rendered into a JSON array one piece at a time. The first piece is rendered before the
//! response starts, so a body that fits in it is sent with a length, and a read error in it
//! still becomes a 409. Each later piece is read only when the connection is ready for more
//! data. A reader that stops reading thus keeps at most one piece here, plus what the HTTP
//! server buffers for its connection, which the request head limits bound (see `server`).
//! Closed chunks are also kept rendered in the chunk cache and shared by their readers.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

use super::chunk_cache::{ChunkKey, LiveKey, RenderedChunk, ResumePoint};
use crate::engine::Engine;
use crate::position::LogOffset;
use crate::shape::messages::{self, MessageFormat};
use crate::shape::store::LogRange;
use crate::shape::Shape;
use crate::storage::records::{self, Record, RecordKind};

/// Smallest piece of a cached chunk. Cached pieces are shared by every reader, so a stalled
/// reader keeps no copy of its own, and larger pieces mean fewer writes per response.
const CACHED_PIECE_BYTES_MIN: usize = 1 << 20;

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

    /// Returns the chunk cache key of a body made of this part alone, or `None` for a message.
    pub fn cache_key(&self, shape: &Shape, format: MessageFormat) -> Option<ChunkKey> {
        let (log, start_position, end_position, after, last) = match *self {
            Part::Snapshot { position, end } => (false, position, end, LogOffset::new(0, 0), LogOffset::new(0, 0)),
            Part::Log { position, end, after, last } => (true, position, end, after, last),
            Part::Message(_) => return None,
        };
        Some(ChunkKey { handle: shape.handle.clone(), format, log, start_position, end_position, after, last })
    }

    /// Returns the part with its file position moved to `position`.
    fn resumed_at(&self, position: u64) -> Part {
        match self.clone() {
            Part::Snapshot { end, .. } => Part::Snapshot { position, end },
            Part::Log { end, after, last, .. } => Part::Log { position, end, after, last },
            message => message,
        }
    }
}

/// A body being rendered: the parts still to send and the array's state.
#[derive(Clone)]
struct Rendering {
    shape: Arc<Shape>,
    /// Files opened by earlier pieces of this body, kept until it ends so that each piece
    /// does not open them again. A body keeps at most these two descriptors open.
    snapshot_file: Option<Arc<std::fs::File>>,
    log_file: Option<Arc<std::fs::File>>,
    format: MessageFormat,
    parts: VecDeque<Part>,
    piece_bytes_max: usize,
    opened: bool,
    closed: bool,
    /// True once the array has an item, so the next one needs a comma.
    has_items: bool,
}

impl Rendering {
    fn new(shape: &Arc<Shape>, parts: Vec<Part>, format: MessageFormat, piece_bytes_max: usize) -> Rendering {
        Rendering {
            shape: shape.clone(),
            snapshot_file: None,
            log_file: None,
            format,
            parts: parts.into(),
            piece_bytes_max,
            opened: false,
            closed: false,
            has_items: false,
        }
    }

    /// Returns the rendering state, for a body of one part.
    fn resume_point(&self) -> ResumePoint {
        let position = match self.parts.front() {
            Some(Part::Snapshot { position, .. } | Part::Log { position, .. }) => *position,
            _ => u64::MAX,
        };
        ResumePoint { position, has_items: self.has_items }
    }

    /// Builds the rendering of `part` as it stood at `point`, after a first piece.
    fn resumed(&self, part: &Part, point: ResumePoint) -> Rendering {
        let mut rendering = Rendering::new(&self.shape, vec![part.resumed_at(point.position)], self.format, self.piece_bytes_max);
        rendering.opened = true;
        rendering.has_items = point.has_items;
        rendering
    }

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
                    if self.snapshot_file.is_none() {
                        self.snapshot_file = Some(Arc::new(self.shape.open_snapshot()?));
                    }
                    let file = self.snapshot_file.as_deref().expect("opened above");
                    let (bytes, next) = records::read_whole_records(file, *position, *end, budget)?;
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
                    if self.log_file.is_none() {
                        self.log_file = Some(Arc::new(self.shape.open_log()?));
                    }
                    let file = self.log_file.as_deref().expect("opened above");
                    let (bytes, next) = self.shape.read_log_records(file, *position, *end, budget)?;
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
        // A small body (a live response, say) must not keep a whole piece's allocation while
        // it waits to be sent.
        if out.capacity() - out.len() > 4096 {
            out.shrink_to_fit();
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
///
/// A body of one closed chunk is served from the chunk cache, which is filled here when the
/// chunk is missing and no other reader is filling it.
pub async fn render_body(engine: &Arc<Engine>, shape: &Arc<Shape>, parts: Vec<Part>, format: MessageFormat, closed_chunk: bool) -> Result<Body, std::io::Error> {
    let single_part = match parts.as_slice() {
        [part] if closed_chunk => part.cache_key(shape, format).map(|key| (part.clone(), key)),
        _ => None,
    };
    let rendering = Rendering::new(shape, parts, format, engine.config.response_piece_bytes_max);
    if let Some(key) = shared_live_key(shape, &rendering, format, closed_chunk) {
        let cell = engine.live_renders.cell(key);
        let body = cell.get_or_try_init(|| render_small(rendering)).await?;
        return Ok(Body::from(body.clone()));
    }
    if let Some((part, key)) = single_part {
        if let Some(body) = cached_body(engine, &key, &part, &rendering) {
            return Ok(body);
        }
        if fill_cache(engine, &key, &rendering).await? {
            if let Some(body) = cached_body(engine, &key, &part, &rendering) {
                return Ok(body);
            }
        }
    }

    let (first, rendering) = next_piece(rendering).await?;
    let first = first.unwrap_or_default();
    if rendering.closed {
        return Ok(Body::from(first));
    }
    Ok(stream_body(engine, Bytes::from(first), Source::File(rendering)))
}

/// Returns the key under which a small body of one log range is rendered once and shared by
/// every request for the same range at the same time: the live requests a change
/// wakes all want the same entries.
fn shared_live_key(shape: &Shape, rendering: &Rendering, format: MessageFormat, closed_chunk: bool) -> Option<LiveKey> {
    // A range that reaches the head of the log ends with its `up-to-date` message.
    let (part, message) = match rendering.parts.as_slices() {
        ([part], []) => (part, Vec::new()),
        ([part, Part::Message(message)], []) => (part, message.clone()),
        _ => return None,
    };
    let Part::Log { position, end, .. } = part else {
        return None;
    };
    if closed_chunk || end - position > rendering.piece_bytes_max as u64 {
        return None;
    }
    Some(LiveKey { range: part.cache_key(shape, format)?, message })
}

/// Renders a small body whole, on the blocking pool.
async fn render_small(mut rendering: Rendering) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let mut body = Vec::new();
        while let Some(piece) = rendering.next_piece()? {
            body.extend_from_slice(&piece);
        }
        Ok(Bytes::from(body))
    })
    .await
    .map_err(|error| std::io::Error::other(format!("rendering a response failed: {error}")))?
}

/// Renders a closed chunk whole into the cache, unless another reader is filling it, the chunk
/// is too large, or it is already there. Returns true when the chunk may now be cached.
async fn fill_cache(engine: &Arc<Engine>, key: &ChunkKey, rendering: &Rendering) -> std::io::Result<bool> {
    let cache = &engine.chunk_cache;
    if !cache.may_cache(key.end_position.saturating_sub(key.start_position)) {
        return Ok(false);
    }
    let Some(_permit) = cache.try_fill() else {
        return Ok(false);
    };
    if !cache.contains(key) {
        let mut whole = rendering.clone();
        whole.piece_bytes_max = whole.piece_bytes_max.max(CACHED_PIECE_BYTES_MIN);
        let chunk = render_whole(whole).await?;
        cache.insert(key.clone(), chunk);
    }
    Ok(true)
}

/// Builds a body from a cached chunk, or `None` when it is not cached.
fn cached_body(engine: &Arc<Engine>, key: &ChunkKey, part: &Part, rendering: &Rendering) -> Option<Body> {
    let (first, resume_point, count) = engine.chunk_cache.piece(key, 0)?;
    if count == 1 {
        return Some(Body::from(first));
    }
    let source = Source::Cached { key: key.clone(), index: 1, count, resume_point, part: part.clone(), template: rendering.clone() };
    Some(stream_body(engine, first, source))
}

/// The source of the pieces after the first.
enum Source {
    /// Pieces `index..count` of a cached chunk. If the entry is evicted meanwhile, rendering
    /// carries on from the file at `resume_point`, the state after the previous piece.
    Cached { key: ChunkKey, index: usize, count: usize, resume_point: ResumePoint, part: Part, template: Rendering },
    File(Rendering),
    Done,
}

/// Builds a streamed body: `first`, then the pieces of `source`, each produced when the
/// connection polls for it.
fn stream_body(engine: &Arc<Engine>, first: Bytes, source: Source) -> Body {
    let engine = engine.clone();
    let rest = futures_util::stream::unfold(source, move |source| next_from(engine.clone(), source));
    let first = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(first)));
    Body::from_stream(first.chain(rest))
}

async fn next_from(engine: Arc<Engine>, source: Source) -> Option<(std::io::Result<Bytes>, Source)> {
    let rendering = match source {
        Source::Done => return None,
        Source::Cached { index, count, .. } if index == count => return None,
        Source::Cached { key, index, count, resume_point, part, template } => match engine.chunk_cache.piece(&key, index) {
            Some((piece, resume_point, _)) => {
                return Some((Ok(piece), Source::Cached { key, index: index + 1, count, resume_point, part, template }));
            }
            None => template.resumed(&part, resume_point),
        },
        Source::File(rendering) => rendering,
    };
    let shape = rendering.shape.clone();
    match next_piece(rendering).await {
        Ok((Some(piece), rendering)) => Some((Ok(Bytes::from(piece)), Source::File(rendering))),
        Ok((None, _)) => None,
        Err(error) => {
            super::reader::storage_failure(&engine, &shape, std::io::Error::new(error.kind(), error.to_string()));
            Some((Err(error), Source::Done))
        }
    }
}

/// Renders every piece of a body on the blocking pool, with the state after each one.
async fn render_whole(mut rendering: Rendering) -> std::io::Result<RenderedChunk> {
    tokio::task::spawn_blocking(move || {
        let mut chunk = RenderedChunk::default();
        while let Some(piece) = rendering.next_piece()? {
            chunk.pieces.push(Bytes::from(piece));
            chunk.resume_points.push(rendering.resume_point());
        }
        Ok(chunk)
    })
    .await
    .map_err(|error| std::io::Error::other(format!("rendering a chunk failed: {error}")))?
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
