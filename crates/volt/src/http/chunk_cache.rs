//! Rendered closed chunks kept in memory and shared by every reader of them.
//!
//! A closed snapshot or log chunk never changes, so once rendered it can be sent to every
//! later reader without reading its file again. An entry is stored as the pieces it was
//! rendered in, and a reader takes one piece at a time from the cache instead of holding the
//! entry. A reader that stops reading thus keeps at most one piece alive, even after its entry
//! was evicted, and the cache's own size stays within `--chunk-cache-bytes-max`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::position::LogOffset;
use crate::shape::messages::MessageFormat;
use crate::shape::ShapeHandle;

/// Identity of a rendered chunk: the shape, the layout, and the file range with its filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub handle: ShapeHandle,
    pub format: MessageFormat,
    /// True for a log range, false for a snapshot range.
    pub log: bool,
    pub start_position: u64,
    pub end_position: u64,
    /// The log filter `(after, last]`; zero for snapshot ranges.
    pub after: LogOffset,
    pub last: LogOffset,
}

/// The rendering state after a piece: the file position and whether the array has items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    pub position: u64,
    pub has_items: bool,
}

/// A chunk rendered as a whole, in pieces.
#[derive(Debug, Default)]
pub struct RenderedChunk {
    pub pieces: Vec<Bytes>,
    /// The rendering state after each piece, to carry on from the file when the entry is gone.
    pub resume_points: Vec<ResumePoint>,
}

impl RenderedChunk {
    fn bytes(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }
}

/// The cache: entries up to a total size, evicted oldest first.
///
/// NOTE: when clients cycle through more chunks than fit, oldest-first eviction drops each
/// chunk before its next request, so nearly every request renders from the file again.
pub struct ChunkCache {
    bytes_max: usize,
    state: Mutex<CacheState>,
    /// One chunk is rendered whole at a time, so filling the cache costs at most one chunk of
    /// memory beyond it. Readers that find it busy stream from the file instead of waiting.
    fill: Semaphore,
    hits: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<ChunkKey, RenderedChunk>,
    /// Keys in insertion order, oldest first.
    order: VecDeque<ChunkKey>,
    bytes: usize,
}

impl ChunkCache {
    /// Creates a cache of at most `bytes_max` bytes; 0 turns it off.
    pub fn new(bytes_max: usize) -> Self {
        ChunkCache { bytes_max, state: Mutex::new(CacheState::default()), fill: Semaphore::new(1), hits: AtomicU64::new(0) }
    }

    /// True when a chunk whose file range has `range_bytes` bytes may be cached. The rendered
    /// size is close to the file size, because records store the JSON clients receive.
    pub fn may_cache(&self, range_bytes: u64) -> bool {
        range_bytes <= self.bytes_max as u64
    }

    /// Returns piece `index` of a cached chunk, the state after it, and the number of pieces.
    pub fn piece(&self, key: &ChunkKey, index: usize) -> Option<(Bytes, ResumePoint, usize)> {
        let state = self.state.lock().expect("chunk cache lock");
        let chunk = state.entries.get(key)?;
        let piece = chunk.pieces.get(index)?.clone();
        let resume_point = *chunk.resume_points.get(index)?;
        if index == 0 {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        Some((piece, resume_point, chunk.pieces.len()))
    }

    /// Takes the right to render a chunk whole, or `None` when another reader has it.
    pub fn try_fill(&self) -> Option<SemaphorePermit<'_>> {
        self.fill.try_acquire().ok()
    }

    pub fn contains(&self, key: &ChunkKey) -> bool {
        self.state.lock().expect("chunk cache lock").entries.contains_key(key)
    }

    /// Adds a rendered chunk, evicting the oldest entries to make room. A chunk larger than
    /// the whole cache is not added.
    pub fn insert(&self, key: ChunkKey, chunk: RenderedChunk) {
        let bytes = chunk.bytes();
        if bytes > self.bytes_max || chunk.pieces.is_empty() {
            return;
        }
        let mut state = self.state.lock().expect("chunk cache lock");
        if state.entries.contains_key(&key) {
            return;
        }
        while state.bytes + bytes > self.bytes_max {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            if let Some(evicted) = state.entries.remove(&oldest) {
                state.bytes -= evicted.bytes();
            }
        }
        state.bytes += bytes;
        state.order.push_back(key.clone());
        state.entries.insert(key, chunk);
    }

    /// Returns how many responses started from a cached chunk.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Returns the bytes of rendered chunks held now.
    pub fn cached_bytes(&self) -> usize {
        self.state.lock().expect("chunk cache lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(start_position: u64) -> ChunkKey {
        ChunkKey {
            handle: ShapeHandle::from_client("1-1"),
            format: MessageFormat::Current,
            log: false,
            start_position,
            end_position: start_position + 10,
            after: LogOffset::new(0, 0),
            last: LogOffset::new(0, 0),
        }
    }

    fn chunk(piece_bytes: &[usize]) -> RenderedChunk {
        RenderedChunk {
            pieces: piece_bytes.iter().map(|bytes| Bytes::from(vec![b'x'; *bytes])).collect(),
            resume_points: piece_bytes.iter().map(|_| ResumePoint { position: 0, has_items: true }).collect(),
        }
    }

    #[test]
    fn oldest_entries_are_evicted_first() {
        let cache = ChunkCache::new(100);
        cache.insert(key(1), chunk(&[30, 10]));
        cache.insert(key(2), chunk(&[40]));
        assert_eq!(cache.cached_bytes(), 80);
        cache.insert(key(3), chunk(&[50]));
        assert!(!cache.contains(&key(1)));
        assert!(cache.contains(&key(2)));
        assert!(cache.contains(&key(3)));
        assert_eq!(cache.cached_bytes(), 90);
    }

    #[test]
    fn chunks_larger_than_the_cache_are_skipped() {
        let cache = ChunkCache::new(100);
        cache.insert(key(1), chunk(&[60, 60]));
        assert!(!cache.contains(&key(1)));
        assert_eq!(cache.cached_bytes(), 0);
        assert!(!ChunkCache::new(0).may_cache(1));
    }

    #[test]
    fn pieces_are_read_one_at_a_time() {
        let cache = ChunkCache::new(100);
        cache.insert(key(1), chunk(&[3, 4]));
        let (piece, _, pieces) = cache.piece(&key(1), 1).unwrap();
        assert_eq!(piece.len(), 4);
        assert_eq!(pieces, 2);
        assert!(cache.piece(&key(1), 2).is_none());
        assert_eq!(cache.hits(), 0);
        cache.piece(&key(1), 0).unwrap();
        assert_eq!(cache.hits(), 1);
    }
}

/// Contents of a small live body: a log range and the message that ends it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LiveKey {
    pub range: ChunkKey,
    pub message: Vec<u8>,
}

/// Bodies being rendered or sent for live requests, by what they contain. An entry lives only
/// while a request uses it, so this keeps no memory of its own beyond the map's slots.
#[derive(Debug, Default)]
pub struct LiveRenders {
    cells: std::sync::Mutex<std::collections::HashMap<LiveKey, std::sync::Weak<tokio::sync::OnceCell<Bytes>>>>,
}

impl LiveRenders {
    /// Map slots past which dead entries are swept out.
    const SWEEP_LEN: usize = 1024;

    /// Returns the cell for `key`, shared with every request holding it now.
    pub fn cell(&self, key: LiveKey) -> std::sync::Arc<tokio::sync::OnceCell<Bytes>> {
        let mut cells = self.cells.lock().expect("live renders lock");
        if let Some(cell) = cells.get(&key).and_then(std::sync::Weak::upgrade) {
            return cell;
        }
        if cells.len() >= Self::SWEEP_LEN {
            cells.retain(|_, cell| cell.strong_count() > 0);
        }
        let cell = std::sync::Arc::new(tokio::sync::OnceCell::new());
        cells.insert(key, std::sync::Arc::downgrade(&cell));
        cell
    }
}
