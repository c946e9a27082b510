//! `GET /v1/shape`: the current dialect of the Shape API.
//!
//! A request names a table and an offset. `offset=-1` gets the first snapshot chunk,
//! `0_<n>` the next chunk or, after the last one, the log; a real offset gets the log entries
//! after it. With `live=true` a request that finds nothing new waits for the next commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use rand::Rng;

use super::error::ApiError;
use super::reader::{self, Batch, ReadError};
use super::resolve::{resolve, ResolveError, ShapeQuery};
use super::sse;
use crate::engine::Engine;
use crate::pg::names::{self, RelationName};
use crate::position::{LogOffset, RequestOffset};
use crate::shape::messages::{MessageFormat, MUST_REFETCH_BODY};
use crate::shape::{ReplicaMode, Shape, ShapeHandle};

/// Start of the time windows `electric-cursor` counts in: 2024-10-09T00:00:00Z, as the
/// Shape API's clients and caches expect.
const CURSOR_EPOCH_S: u64 = 1_728_432_000;

/// A validated shape request.
#[derive(Debug)]
struct ShapeRequest {
    table: RelationName,
    columns: Option<Vec<String>>,
    replica: ReplicaMode,
    where_clause: Option<String>,
    params: BTreeMap<usize, String>,
    offset: RequestOffset,
    handle: Option<ShapeHandle>,
    live: bool,
    /// Live changes as server-sent events rather than one long-poll response.
    live_sse: bool,
    cursor: Option<String>,
}

/// Parses and checks the query string, in the order the Shape API reports errors.
fn parse_request(query: &str) -> Result<ShapeRequest, ApiError> {
    let mut table = None;
    let mut offset = None;
    let mut handle = None;
    let mut live = None;
    let mut live_sse = None;
    let mut experimental_live_sse = None;
    let mut cursor = None;
    let mut columns = None;
    let mut replica = None;
    let mut where_clause = None;
    let mut raw_params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if let Some(key) = name.strip_prefix("params[").and_then(|rest| rest.strip_suffix(']')) {
            raw_params.push((key.to_owned(), value.into_owned()));
            continue;
        }
        match name.as_ref() {
            "where" => where_clause = Some(value.into_owned()),
            "columns" => columns = Some(value.into_owned()),
            "replica" => replica = Some(value.into_owned()),
            "table" => table = Some(value.into_owned()),
            "offset" => offset = Some(value.into_owned()),
            "handle" => handle = Some(value.into_owned()),
            "live" => live = Some(value.into_owned()),
            "live_sse" => live_sse = Some(value.into_owned()),
            // The parameter's earlier name, which clients still send beside `live_sse`.
            "experimental_live_sse" => experimental_live_sse = Some(value.into_owned()),
            "cursor" => cursor = Some(value.into_owned()),
            // Clients add their own parameters (`log`, `cache-buster`, user parameters).
            _ => {}
        }
    }

    let offset = offset.ok_or_else(|| ApiError::invalid("offset", "can't be blank"))?;
    let offset: RequestOffset = offset.parse().map_err(|_| ApiError::invalid("offset", "has invalid format"))?;
    let handle = match offset {
        // A handle sent with -1 or now is ignored: those start over.
        RequestOffset::BeforeAll | RequestOffset::Now => None,
        RequestOffset::At(_) => {
            let handle = handle.filter(|handle| !handle.is_empty());
            Some(handle.ok_or_else(|| ApiError::invalid("handle", "can't be blank when offset != -1"))?)
        }
    };
    // Any value but `false` turns live mode on, including a bare `&live`.
    let live = live.is_some_and(|value| value != "false");
    match (live, offset) {
        (true, RequestOffset::BeforeAll) => return Err(ApiError::invalid("live", "can't be true when offset == -1")),
        (true, RequestOffset::Now) => return Err(ApiError::invalid("live", "can't be true when offset is 'now'")),
        _ => {}
    }
    // Like `live`, a present `live_sse` is true unless it is `false`; `experimental_live_sse`
    // counts only when `live_sse` is absent.
    let live_sse = live_sse.or(experimental_live_sse).is_some_and(|value| value != "false");
    if live_sse && !live {
        return Err(ApiError::invalid("live_sse", "can't be true unless live is also true"));
    }
    let table = table.filter(|table| !table.is_empty()).ok_or_else(|| ApiError::invalid("table", "can't be blank"))?;
    let table = names::parse_relation(&table).map_err(|message| ApiError::invalid("table", message))?;
    let replica = match replica.as_deref() {
        None | Some("default") => ReplicaMode::Default,
        Some("full") => ReplicaMode::Full,
        Some(_) => return Err(ApiError::invalid("replica", "is invalid")),
    };
    let columns = match columns {
        None => None,
        Some(text) => Some(names::parse_identifier_list(&text).map_err(|message| ApiError::invalid("columns", message))?),
    };
    // An empty clause means no clause, as clients send `where=` when none is configured.
    let where_clause = where_clause.filter(|text| !text.trim().is_empty());
    let params = if where_clause.is_some() { parse_params(raw_params)? } else { BTreeMap::new() };
    Ok(ShapeRequest {
        table,
        columns,
        replica,
        where_clause,
        params,
        offset,
        handle: handle.map(|h| ShapeHandle::from_client(&h)),
        live,
        live_sse,
        cursor,
    })
}

/// Checks `params[n]` keys: whole numbers from 1 upwards without gaps.
pub(super) fn parse_params(raw: Vec<(String, String)>) -> Result<BTreeMap<usize, String>, ApiError> {
    let mut params = BTreeMap::new();
    for (key, value) in raw {
        let number: usize = key
            .parse()
            .ok()
            .filter(|number| *number >= 1 && key.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ApiError::invalid("params", "Parameters can only use numbers as keys"))?;
        params.insert(number, value);
    }
    if params.keys().enumerate().any(|(index, number)| *number != index + 1) {
        return Err(ApiError::invalid("params", "Parameters must be numbered sequentially, starting from 1"));
    }
    Ok(params)
}

/// Serves one shape request.
pub async fn serve(engine: Arc<Engine>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("");
    let parsed = match parse_request(query) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).map(str::to_owned);
    // The request's parts share the connection's first read buffer; a long poll that kept
    // them would keep that buffer for as long as it waits.
    drop(request);
    match serve_parsed(&engine, &parsed, if_none_match.as_deref()).await {
        Ok(response) | Err(response) => response,
    }
}

async fn serve_parsed(engine: &Arc<Engine>, request: &ShapeRequest, if_none_match: Option<&str>) -> Result<Response, Response> {
    let query = ShapeQuery {
        table: request.table.clone(),
        columns: request.columns.clone(),
        replica: request.replica,
        where_clause: request.where_clause.clone(),
        params: request.params.clone(),
    };
    let shape = resolve(engine, &query, request.handle.as_ref()).await.map_err(resolve_error)?;
    let batch = match request.offset {
        RequestOffset::BeforeAll => reader::read_snapshot_chunk(engine, &shape, 0, MessageFormat::Current).await,
        RequestOffset::Now => Ok(Some(Batch::up_to_date_only(engine, shape.log_head().latest))),
        RequestOffset::At(offset) if request.live_sse => {
            let cursor = next_cursor(engine.config.long_poll_timeout, request.cursor.as_deref());
            return sse::response(engine, shape, offset, cursor).await;
        }
        RequestOffset::At(offset) => read_after(engine, &shape, offset, request.live).await,
    };
    let batch = match batch {
        Ok(Some(batch)) => batch,
        Ok(None) => return Err(ApiError::invalid("offset", "out of bounds for this shape").into_response()),
        Err(error) => return Err(read_error(engine, &shape, error)),
    };
    Ok(batch_response(batch, engine, &shape, request, if_none_match))
}

/// Reads what follows `offset`: the next snapshot chunk, or log entries once the snapshot
/// is served. With `live`, a request at the end of the log waits for the next commit and gets
/// an `up-to-date` message alone when none comes in time.
pub(super) async fn read_after(engine: &Arc<Engine>, shape: &Arc<Shape>, offset: LogOffset, live: bool) -> Result<Option<Batch>, ReadError> {
    let format = MessageFormat::Current;
    if offset.is_snapshot() && offset != LogOffset::SNAPSHOT_END {
        return match reader::read_snapshot_chunk(engine, shape, offset.op + 1, format).await {
            Ok(None) => reader::read_log(engine, shape, LogOffset::SNAPSHOT_END, false, format).await,
            other => other,
        };
    }
    match reader::read_log(engine, shape, offset, live, format).await {
        Ok(None) => Ok(Some(Batch::up_to_date_only(engine, offset))),
        other => other,
    }
}

fn resolve_error(error: ResolveError) -> Response {
    match error {
        ResolveError::TableNotFound(name) => {
            let message = format!(
                "Table \"{}\".\"{}\" does not exist. If the table name contains capitals or special characters you must quote it.",
                name.schema, name.table
            );
            ApiError::invalid("table", message).into_response()
        }
        ResolveError::Unavailable => {
            ApiError::unavailable("Cannot connect to the database to verify the shape. Please try again later.", 1).into_response()
        }
        ResolveError::MustRefetch(handle) => must_refetch(Some(&handle)),
        ResolveError::Invalid { parameter, message } => ApiError::invalid(parameter, message).into_response(),
    }
}

pub(super) fn read_error(engine: &Engine, shape: &Shape, error: ReadError) -> Response {
    match error {
        ReadError::Gone => {
            let current = engine.registry.get_by_definition(&shape.definition);
            must_refetch(current.as_ref().map(|shape| &shape.handle))
        }
        ReadError::Unavailable(message) => ApiError::unavailable(message, 1).into_response(),
        ReadError::OutOfBounds => ApiError::invalid("offset", "out of bounds for this shape").into_response(),
        ReadError::ShuttingDown => ApiError::unavailable("Volt is shutting down; retry", 1).into_response(),
    }
}

/// Builds the 409 that sends a client back to `offset=-1` on the current shape.
fn must_refetch(handle: Option<&ShapeHandle>) -> Response {
    let mut response = Response::new(Body::from(MUST_REFETCH_BODY));
    *response.status_mut() = StatusCode::CONFLICT;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    match handle.and_then(|handle| HeaderValue::from_str(handle.as_str()).ok()) {
        Some(value) => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60, must-revalidate"));
            headers.insert("electric-handle", value);
        }
        None => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=1, must-revalidate"));
        }
    }
    response
}

/// Turns a batch into a response with the current dialect's headers.
fn batch_response(batch: Batch, engine: &Engine, shape: &Shape, request: &ShapeRequest, if_none_match: Option<&str>) -> Response {
    let etag = if batch.has_data {
        format!("\"{}:{}:{}\"", shape.handle, request.offset, batch.next_offset)
    } else {
        // Responses without data must never revalidate into a stale "nothing new".
        let unique = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        format!("\"{}:{}:{}:{unique}\"", shape.handle, request.offset, batch.next_offset)
    };
    let not_modified = if_none_match.is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));

    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(batch.body)
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert("electric-handle", header_value(shape.handle.as_str()));
    headers.insert("electric-offset", header_value(&batch.next_offset.to_string()));
    headers.insert("electric-has-data", HeaderValue::from_static(if batch.has_data { "true" } else { "false" }));
    headers.insert(header::ETAG, header_value(&etag));
    if batch.up_to_date {
        headers.insert("electric-up-to-date", HeaderValue::from_static(""));
    }
    if request.live {
        let cursor = next_cursor(engine.config.long_poll_timeout, request.cursor.as_deref());
        headers.insert("electric-cursor", header_value(&cursor.to_string()));
    } else if !not_modified {
        headers.insert("electric-schema", header_value(&shape.schema_json));
    }
    let cache_control = match request.offset {
        RequestOffset::BeforeAll => "public, max-age=604800, s-maxage=3600, stale-while-revalidate=2629746".to_owned(),
        _ if request.live => "public, max-age=5, stale-while-revalidate=5".to_owned(),
        _ => format!(
            "public, max-age={}, stale-while-revalidate={}",
            engine.config.cache_max_age_s, engine.config.cache_stale_age_s
        ),
    };
    headers.insert(header::CACHE_CONTROL, header_value(&cache_control));
    response
}

pub(super) fn header_value(text: &str) -> HeaderValue {
    // Every value here is built by Volt from ASCII (handles, offsets, JSON with escapes).
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Computes the next `electric-cursor`: the end of the current long-poll window, so that
/// clients in one window share a URL. It is never the cursor the client already sent.
fn next_cursor(long_poll_timeout: Duration, sent: Option<&str>) -> u64 {
    let window_s = long_poll_timeout.as_secs().max(1);
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let next = now_s.saturating_sub(CURSOR_EPOCH_S).div_ceil(window_s) * window_s;
    let sent = sent.and_then(|cursor| cursor.parse::<u64>().ok()).unwrap_or(0);
    if next > sent {
        next
    } else {
        sent + rand::rng().random_range(1..=3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn error_body(query: &str) -> serde_json::Value {
        let response = parse_request(query).unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn request_errors_name_the_parameter() {
        assert_eq!(error_body("table=t").await["errors"]["offset"][0], "can't be blank");
        assert_eq!(error_body("table=t&offset=abc").await["errors"]["offset"][0], "has invalid format");
        assert_eq!(error_body("table=t&offset=0_-1").await["errors"]["offset"][0], "has invalid format");
        assert_eq!(error_body("table=t&offset=0_0").await["errors"]["handle"][0], "can't be blank when offset != -1");
        assert_eq!(error_body("table=t&offset=-1&live=true").await["errors"]["live"][0], "can't be true when offset == -1");
        assert_eq!(error_body("table=t&offset=now&live").await["errors"]["live"][0], "can't be true when offset is 'now'");
        assert_eq!(error_body("offset=-1").await["errors"]["table"][0], "can't be blank");
        let live_sse_error = "can't be true unless live is also true";
        assert_eq!(error_body("table=t&offset=0_0&handle=h&live_sse=true").await["errors"]["live_sse"][0], live_sse_error);
        assert_eq!(error_body("table=t&offset=0_0&handle=h&experimental_live_sse").await["errors"]["live_sse"][0], live_sse_error);
        assert_eq!(error_body("table=t&offset=0_0&handle=h&live=false&live_sse").await["errors"]["live_sse"][0], live_sse_error);
        let body = error_body("offset=-1&table=a.b.c").await;
        assert!(body["errors"]["table"][0].as_str().unwrap().contains("too many"));
    }

    #[test]
    fn request_parses_live_and_handle() {
        let request = parse_request("table=%22Order%20Items%22&offset=5_2&handle=h-1&live&cursor=9").unwrap();
        assert_eq!(request.table.table, "Order Items");
        assert!(request.live);
        assert_eq!(request.handle.unwrap().as_str(), "h-1");
        assert_eq!(request.cursor.as_deref(), Some("9"));
        let request = parse_request("table=t&offset=-1&handle=ignored&live=false").unwrap();
        assert!(request.handle.is_none());
        assert!(!request.live);
    }

    #[test]
    fn live_sse_takes_the_older_name_when_absent() {
        let live_sse = |query: &str| parse_request(&format!("table=t&offset=5_2&handle=h&live&{query}")).unwrap().live_sse;
        assert!(live_sse("live_sse=true"));
        assert!(live_sse("live_sse"));
        assert!(live_sse("experimental_live_sse=true"));
        assert!(!live_sse("live_sse=false&experimental_live_sse=true"));
        assert!(!live_sse("experimental_live_sse=false"));
        assert!(!live_sse("cursor=1"));
        assert!(parse_request("table=t&offset=0_0&handle=h&live_sse=false").is_ok());
    }

    #[test]
    fn cursor_moves_past_the_sent_one() {
        let timeout = Duration::from_secs(20);
        let first = next_cursor(timeout, None);
        assert_eq!(first % 20, 0);
        let second = next_cursor(timeout, Some(&first.to_string()));
        assert!(second > first);
        assert!(second <= first + 3600);
    }
}
