//! gzip compression of JSON responses for clients whose `accept-encoding` allows it.
//!
//! Bodies in memory are compressed whole; streamed bodies piece by piece as they are sent.
//! Event streams stay uncompressed, so that each event reaches the client as soon as it is
//! written. A 304 has no body, and the `etag`
//! stays the same in both encodings because it names the messages, not their bytes.

use std::io::Write;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Bodies at least this large are compressed on the blocking pool rather than on a request
/// task, because a 10 MiB chunk takes tens of milliseconds to compress.
const BLOCKING_BYTES_MIN: usize = 64 * 1024;

/// Returns true when `accept-encoding` allows gzip: a `gzip` (or `x-gzip`) entry with a
/// non-zero quality, or, without one, a `*` entry with a non-zero quality.
pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|parameter| parameter.trim().strip_prefix("q="))
                .filter_map(|quality| quality.trim().parse::<f32>().ok())
                .next_back()
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(quality > 0.0),
                "*" => any = Some(quality > 0.0),
                _ => {}
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Compresses a JSON body of at least `min_bytes` with gzip when `accepts_gzip`, and marks
/// every JSON response as varying with `accept-encoding`, since caches must keep both forms
/// apart.
pub(super) async fn compress_json(response: Response, accepts_gzip: bool, min_bytes: usize) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return response;
    }

    let (mut parts, body) = response.into_parts();
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let size = axum::body::HttpBody::size_hint(&body).exact();
    if !accepts_gzip || parts.headers.contains_key(header::CONTENT_ENCODING) {
        return Response::from_parts(parts, body);
    }
    let Some(size) = size else {
        // A streamed body (larger than one piece): compressed piece by piece as it is sent.
        parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, gzip_stream(body));
    };
    if size < min_bytes as u64 || size == 0 {
        return Response::from_parts(parts, body);
    }

    // The body is in memory (its size is exact), so collecting it does not wait on anything.
    let Ok(plain) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let compressed = if plain.len() >= BLOCKING_BYTES_MIN {
        let plain = plain.clone();
        tokio::task::spawn_blocking(move || gzip(&plain)).await.ok()
    } else {
        Some(gzip(&plain))
    };
    match compressed {
        Some(compressed) => {
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(compressed))
        }
        None => Response::from_parts(parts, Body::from(plain)),
    }
}

/// Compresses a streamed body piece by piece, each on the blocking pool, so memory stays at
/// one piece and the encoder's window however long the body is.
fn gzip_stream(body: Body) -> Body {
    use futures_util::StreamExt;
    struct State {
        pieces: axum::body::BodyDataStream,
        encoder: Option<GzEncoder<Vec<u8>>>,
    }
    let state = State { pieces: body.into_data_stream(), encoder: Some(GzEncoder::new(Vec::new(), Compression::fast())) };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let mut encoder = state.encoder.take()?;
        let piece = state.pieces.next().await;
        let result = tokio::task::spawn_blocking(move || {
            let finished = match piece {
                Some(Ok(piece)) => {
                    encoder.write_all(&piece)?;
                    false
                }
                Some(Err(error)) => return Err(std::io::Error::other(error)),
                None => true,
            };
            if finished {
                return encoder.finish().map(|out| (out, None));
            }
            let out = std::mem::take(encoder.get_mut());
            Ok((out, Some(encoder)))
        })
        .await
        .unwrap_or_else(|error| Err(std::io::Error::other(error)));
        match result {
            Ok((out, encoder)) => {
                state.encoder = encoder;
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(out)), state))
            }
            // The plain stream failed (a read error cut it off): end the compressed one too.
            Err(error) => Some((Err(error), state)),
        }
    });
    Body::from_stream(stream)
}

/// Compresses at level 1: shape JSON repeats keys and headers on every message, so the
/// fastest level already removes most of it, and a large chunk must not hold a thread long.
fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Compression::fast());
    // The encoder writes into a Vec, whose writes do not fail.
    encoder.write_all(plain).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn accept_encoding_allows_gzip() {
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(accepts("x-gzip"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("*, gzip;q=0"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn small_or_unaccepted_bodies_stay_plain() {
        let json = |text: &'static str| {
            let mut response = Response::new(Body::from(text));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        };
        let small = compress_json(json("[1]"), true, 16).await;
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(small.headers()[header::VARY], "accept-encoding");
        let unaccepted = compress_json(json("[1,2,3,4,5,6,7,8,9,10,11,12]"), false, 16).await;
        assert!(unaccepted.headers().get(header::CONTENT_ENCODING).is_none());
        let compressed = compress_json(json("[1,2,3,4,5,6,7,8,9,10,11,12]"), true, 16).await;
        assert_eq!(compressed.headers()[header::CONTENT_ENCODING], "gzip");
    }
}
