//! Live mode over server-sent events (`live=true&live_sse=true`).
//!
//! One response stays open for the configured lifetime and carries every change as it
//! commits: one `data:` event per message, and each batch ends with an `up-to-date` event,
//! because client 1.5.x buffers events until it receives one. A `: keep-alive` comment goes out
//! after each idle keep-alive interval. The stream ends at the end of its lifetime, on
//! shutdown, or when the shape is removed. The client then reconnects, and gets the 409 when
//! the shape was removed.
//!
//! In this mode the client takes its next offset from the `up-to-date` message, as
//! `<global_last_seen_lsn>_0`, and not from `electric-offset`. So the field carries one past
//! the commit LSN of the last transaction sent ([`LogOffset::after_transaction`]), which sorts
//! after every entry sent and before every later one, and the reader accepts it back.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::Instant;

use super::reader::ReadError;
use super::shape_api::{header_value, read_after, read_error};
use crate::engine::Engine;
use crate::position::LogOffset;
use crate::shape::messages;
use crate::shape::store::LogHead;
use crate::shape::Shape;

const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// Builds the event-stream response for a live request at `offset`. What already follows
/// `offset` is read before the headers go out, so a removed shape still gets its 409 and an
/// unreadable shape its 503.
pub(super) async fn response(engine: &Arc<Engine>, shape: Arc<Shape>, offset: LogOffset, cursor: u64) -> Result<Response, Response> {
    let mut events = EventStream::new(engine.clone(), shape.clone(), offset);
    let first_chunk = if events.has_unsent_entries() {
        events.read_batch().await.map_err(|error| read_error(engine, &shape, error))?
    } else {
        Bytes::new()
    };
    let body = futures_util::stream::unfold((Some(first_chunk), events), |(first_chunk, mut events)| async move {
        let chunk = match first_chunk.filter(|chunk| !chunk.is_empty()) {
            Some(chunk) => chunk,
            None => events.next_chunk().await?,
        };
        Some((Ok::<_, Infallible>(chunk), (None, events)))
    });

    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // A cache may keep the stream for as long as it lasts, so that clients that ask for the
    // same offset in the same cursor window share one upstream request.
    let max_age_s = engine.config.sse_lifetime.as_secs().saturating_sub(1);
    headers.insert(header::CACHE_CONTROL, header_value(&format!("public, max-age={max_age_s}")));
    // nginx buffers proxied responses, which would hold every event back, unless this
    // header turns buffering off.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert("electric-handle", header_value(shape.handle.as_str()));
    headers.insert("electric-offset", header_value(&offset.to_string()));
    headers.insert("electric-cursor", header_value(&cursor.to_string()));
    Ok(response)
}

/// The state of one open event stream.
struct EventStream {
    engine: Arc<Engine>,
    shape: Arc<Shape>,
    /// Offset of the last message sent; the request's offset at first.
    sent_up_to: LogOffset,
    /// True when data events were sent since the last `up-to-date` event.
    unflushed: bool,
    log: watch::Receiver<LogHead>,
    shutdown: watch::Receiver<bool>,
    ends_at: Instant,
    keep_alive_interval: Duration,
    keep_alive_at: Instant,
}

impl EventStream {
    fn new(engine: Arc<Engine>, shape: Arc<Shape>, offset: LogOffset) -> Self {
        let now = Instant::now();
        let keep_alive_interval = engine.config.sse_keep_alive_interval;
        EventStream {
            log: shape.watch_log(),
            shutdown: engine.shutdown.clone(),
            ends_at: now + engine.config.sse_lifetime,
            keep_alive_interval,
            keep_alive_at: now + keep_alive_interval,
            sent_up_to: offset,
            unflushed: false,
            engine,
            shape,
        }
    }

    /// Returns true while snapshot chunks or log entries after the last message sent exist.
    fn has_unsent_entries(&self) -> bool {
        let after = self.sent_up_to;
        (after.is_snapshot() && after != LogOffset::SNAPSHOT_END) || self.shape.log_head().latest > after
    }

    /// Returns the next bytes to send, waiting for a change, the keep-alive interval, the end
    /// of the lifetime or shutdown. `None` ends the stream.
    ///
    /// NOTE: the lifetime is checked only while the stream waits. A stream that is still
    /// sending a backlog finishes it first, so the client does not drop the events it
    /// buffered before their `up-to-date` event.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if self.has_unsent_entries() {
                let before = self.sent_up_to;
                match self.read_batch().await {
                    Ok(chunk) if !chunk.is_empty() => return Some(chunk),
                    Ok(_) if self.sent_up_to != before => continue,
                    Ok(_) => {
                        // Reading again would return the same nothing, in a busy loop.
                        tracing::error!(handle = %self.shape.handle, offset = %before, "an event stream read made no progress; ending it");
                        return None;
                    }
                    Err(error) => {
                        tracing::debug!(handle = %self.shape.handle, ?error, "ending an event stream");
                        return None;
                    }
                }
            }
            let after = self.sent_up_to;
            tokio::select! {
                _ = self.shutdown.wait_for(|stop| *stop) => return None,
                _ = tokio::time::sleep_until(self.ends_at) => return None,
                _ = tokio::time::sleep_until(self.keep_alive_at) => {
                    self.keep_alive_at = Instant::now() + self.keep_alive_interval;
                    return Some(Bytes::from_static(KEEP_ALIVE_COMMENT));
                }
                head = self.log.wait_for(|head| head.removed || head.latest > after) => {
                    if head.map_or(true, |head| head.removed) {
                        return None;
                    }
                }
            }
        }
    }

    /// Reads the next snapshot chunk or log range after the last message sent and frames it as
    /// events. A range that reaches the end of the log ends with an `up-to-date` event when
    /// data went out since the last one.
    async fn read_batch(&mut self) -> Result<Bytes, ReadError> {
        let Some(batch) = read_after(&self.engine, &self.shape, self.sent_up_to, false).await? else {
            return Ok(Bytes::new());
        };

        // An event stream frames each message, so the batch is read whole: at most one chunk.
        // NOTE: the batch is rendered as a JSON array and parsed back into messages; framing
        // the records directly would save that round trip.
        let body = axum::body::to_bytes(batch.body, usize::MAX).await.map_err(|error| {
            tracing::error!(handle = %self.shape.handle, %error, "reading a batch for an event stream failed");
            ReadError::Unavailable("reading the shape log failed; retry")
        })?;
        let messages: Vec<&RawValue> = serde_json::from_slice(&body).map_err(|error| {
            tracing::error!(handle = %self.shape.handle, %error, "a batch read for an event stream is not a JSON array");
            ReadError::Unavailable("reading the shape log failed; retry")
        })?;

        // The batch's own `up-to-date` message is replaced by one whose LSN the client can
        // resume from.
        let data_count = messages.len() - usize::from(batch.up_to_date && !messages.is_empty());
        let mut events = Vec::with_capacity(body.len() + 16 * messages.len());
        for message in &messages[..data_count] {
            push_event(&mut events, message.get().as_bytes());
        }

        self.unflushed |= data_count > 0;
        self.sent_up_to = batch.next_offset;
        if batch.up_to_date && self.unflushed {
            let resume_lsn = self.sent_up_to.after_transaction().tx;
            push_event(&mut events, &messages::up_to_date(resume_lsn));
            self.unflushed = false;
        }
        if !events.is_empty() {
            self.keep_alive_at = Instant::now() + self.keep_alive_interval;
        }
        Ok(Bytes::from(events))
    }
}

/// Appends one message as an event. Volt's messages are compact JSON without line breaks,
/// but a line break would still arrive intact as one `data:` line per line.
fn push_event(out: &mut Vec<u8>, json: &[u8]) {
    for line in json.split(|&byte| byte == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::push_event;

    #[test]
    fn event_frames_each_line() {
        let mut out = Vec::new();
        push_event(&mut out, br#"{"a":1}"#);
        push_event(&mut out, b"{\n}");
        assert_eq!(out, b"data: {\"a\":1}\n\ndata: {\ndata: }\n\n");
    }
}
