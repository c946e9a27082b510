//! `GET /v1/shape/{root_table}`: the 2024 dialect of the Shape API, spoken by
//! `@electric-sql/client` 0.3.x.
//!
//! It serves the same shapes as the current dialect, with other names and another layout:
//! `shape_id` and `x-electric-*` headers, and an `offset` field on every message. It has no
//! snapshot chunks, so `offset=-1` returns the whole snapshot and the log so far in one
//! response. A live request that times out gets 204. The snapshot's offsets, `0_<chunk>` and
//! `0_inf` inside the engine, are all `0_0` here.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde_json::Value;

use super::body::{render_body, Part};
use super::reader::{self, ReadError};
use super::resolve::{resolve, ResolveError, ShapeQuery};
use crate::engine::Engine;
use crate::pg::catalog::LookupError;
use crate::pg::names::RelationName;
use crate::position::LogOffset;
use crate::shape::messages::{MessageFormat, MUST_REFETCH_BODY};
use crate::shape::{Shape, ShapeHandle};

const SHAPE_ID_HEADER: &str = "x-electric-shape-id";
const LAST_OFFSET_HEADER: &str = "x-electric-chunk-last-offset";
const SCHEMA_HEADER: &str = "x-electric-schema";

/// The `offset` of a 2024 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyOffset {
    /// `-1`: the whole shape.
    BeforeAll,
    /// `<tx>_<op>`: the log after this position. Every `0_<n>` means the end of the snapshot.
    At(LogOffset),
}

impl LegacyOffset {
    /// Parses `-1` or two decimal integers joined by `_`. Leading zeros are accepted (`0_02`),
    /// signs, spaces and `inf` are not.
    fn parse(text: &str) -> Option<LegacyOffset> {
        if text == "-1" {
            return Some(LegacyOffset::BeforeAll);
        }
        let (tx, op) = text.split_once('_')?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
        if !digits(tx) || !digits(op) {
            return None;
        }
        Some(LegacyOffset::At(LogOffset::new(tx.parse().ok()?, op.parse().ok()?)))
    }

    /// Formats the offset as the etag contains it.
    fn to_text(self) -> String {
        match self {
            LegacyOffset::BeforeAll => "-1".to_owned(),
            LegacyOffset::At(offset) => offset.to_string(),
        }
    }
}

/// Prints an engine offset as the 2024 dialect does: the snapshot is all at `0_0`.
pub fn legacy_offset_text(offset: LogOffset) -> String {
    if offset.is_snapshot() {
        "0_0".to_owned()
    } else {
        offset.to_string()
    }
}

/// Parses the path segment naming the table, as the 2024 dialect does: split on every `.`,
/// with no quoting and no case folding. `None` when it is not one or two non-empty parts.
pub fn parse_root_table(text: &str) -> Option<RelationName> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [table] => Some(RelationName { schema: "public".to_owned(), table: (*table).to_owned() }),
        [schema, table] => Some(RelationName { schema: (*schema).to_owned(), table: (*table).to_owned() }),
        _ => None,
    }
}

/// Validation errors in the 2024 form: each field with its messages. A request can fail on
/// several fields at once.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Builds the 400 response: `{"<field>":["<message>", …]}`.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_string(&self.0).expect("strings encode");
        json_response(StatusCode::BAD_REQUEST, body)
    }
}

pub const TABLE_FORMAT_MESSAGE: &str = "table name does not match expected format";
pub const TABLE_NOT_FOUND_MESSAGE: &str = "table not found";

/// A validated 2024 request.
#[derive(Debug)]
struct LegacyRequest {
    table: RelationName,
    offset: LegacyOffset,
    shape_id: Option<ShapeHandle>,
    live: bool,
    /// The WHERE clause, if any.
    where_clause: Option<String>,
}

/// Parses the path's table and the query string, collecting every error. The table's
/// existence is checked later, against the catalog.
fn parse_request(root_table: &str, query: &str) -> Result<LegacyRequest, (FieldErrors, Option<RelationName>)> {
    let mut offset = None;
    let mut shape_id = None;
    let mut live = None;
    let mut where_clause = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "offset" => offset = Some(value.into_owned()),
            "shape_id" => shape_id = Some(value.into_owned()),
            "live" => live = Some(value.into_owned()),
            "where" => where_clause = Some(value.into_owned()),
            // The 2024 dialect ignores every other parameter.
            _ => {}
        }
    }

    let mut errors = FieldErrors::default();
    let offset = match offset.filter(|offset| !offset.is_empty()) {
        None => {
            errors.add("offset", "can't be blank");
            None
        }
        Some(text) => {
            let parsed = LegacyOffset::parse(&text);
            if parsed.is_none() {
                errors.add("offset", "has invalid format");
            }
            parsed
        }
    };
    let shape_id = shape_id.filter(|id| !id.is_empty()).map(|id| ShapeHandle::from_client(&id));
    if matches!(offset, Some(LegacyOffset::At(_))) && shape_id.is_none() {
        errors.add("shape_id", "can't be blank when offset != -1");
    }
    // Any value but `false` turns live mode on, including a bare `&live`.
    let live = live.is_some_and(|value| value != "false");
    if live && offset == Some(LegacyOffset::BeforeAll) {
        errors.add("live", "can't be true when offset == -1");
    }
    let table = parse_root_table(root_table);
    if table.is_none() {
        errors.add("root_table", TABLE_FORMAT_MESSAGE);
    }
    // The 2024 dialect has no parameters for `$n`, and reports WHERE errors under
    // `root_table` once the table is known.
    let where_clause = where_clause.filter(|clause| !clause.trim().is_empty());

    match (offset, table) {
        (Some(offset), Some(table)) if errors.is_empty() => Ok(LegacyRequest {
            table,
            offset,
            shape_id: match offset {
                // A shape_id sent with -1 is ignored: that request starts over.
                LegacyOffset::BeforeAll => None,
                LegacyOffset::At(_) => shape_id,
            },
            live,
            where_clause,
        }),
        (_, table) => Err((errors, table)),
    }
}

/// Serves one 2024 request for the table named by the path segment `root_table`.
pub async fn serve(engine: Arc<Engine>, root_table: &str, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("");
    let parsed = match parse_request(root_table, query) {
        Ok(parsed) => parsed,
        Err((errors, table)) => return reject(&engine, errors, table).await,
    };
    let path = request.uri().path().to_owned();
    match serve_parsed(&engine, &parsed, &path, request.headers()).await {
        Ok(response) | Err(response) => response,
    }
}

/// Builds the 400 for an invalid request. A valid table name is still checked against the
/// catalog, so that a missing table is reported with the other errors.
async fn reject(engine: &Engine, mut errors: FieldErrors, table: Option<RelationName>) -> Response {
    if let Some(table) = table {
        match engine.lookup_table(&table).await {
            Err(LookupError::NotFound(_)) => errors.add("root_table", TABLE_NOT_FOUND_MESSAGE),
            Err(LookupError::Postgres(error)) => tracing::warn!(%error, %table, "catalog lookup failed"),
            Ok(_) => {}
        }
    }
    errors.into_response()
}

async fn serve_parsed(engine: &Arc<Engine>, request: &LegacyRequest, path: &str, headers: &HeaderMap) -> Result<Response, Response> {
    let mut query = ShapeQuery::whole_table(request.table.clone());
    query.where_clause = request.where_clause.clone();
    let shape = match resolve(engine, &query, request.shape_id.as_ref()).await {
        Ok(shape) => shape,
        Err(error) => return Err(resolve_error(engine, error, request, path)),
    };

    let head = shape.log_head();
    let after = match request.offset {
        LegacyOffset::BeforeAll => None,
        // A client may hold any offset between the end of the snapshot and the latest entry.
        // Every `0_<n>` means the end of the snapshot.
        LegacyOffset::At(offset) if offset.is_snapshot() => Some(LogOffset::SNAPSHOT_END),
        LegacyOffset::At(offset) if offset <= head.latest => Some(offset),
        // Past the shape's end: this offset did not come from this shape.
        LegacyOffset::At(_) => return Err(must_refetch(&shape, request.live, path)),
    };

    let current_etag = etag(&shape, request.offset, head.latest);
    if if_none_match(headers, &current_etag) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set_shape_headers(response.headers_mut(), &shape, head.latest, request.live);
        return Ok(response);
    }

    let read = match after {
        None => read_whole_shape(engine, &shape).await.map(Some),
        Some(after) => read_log_to_head(engine, &shape, after, request.live).await,
    };
    let (body, end) = match read {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(live_timeout(&shape, after.unwrap_or(head.latest))),
        Err(error) => return Err(read_error(engine, &shape, &query, error, request.live, path).await),
    };

    let mut response = Response::new(body);
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    set_shape_headers(response_headers, &shape, end, request.live);
    if request.live {
        set_live_cache_headers(response_headers);
    } else {
        response_headers.insert(header::ETAG, header_value(&etag(&shape, request.offset, end)));
        let cache_control = format!(
            "max-age={}, stale-while-revalidate={}",
            engine.config.cache_max_age_s, engine.config.cache_stale_age_s
        );
        response_headers.insert(header::CACHE_CONTROL, header_value(&cache_control));
    }
    Ok(response)
}

/// Plans every snapshot chunk, then the log up to its published end, as one JSON array that
/// ends with `up-to-date`, and renders it. Returns the body and the offset of its last entry.
/// The body is read from the files as it is sent, so a large table costs no more memory than
/// a small one.
async fn read_whole_shape(engine: &Arc<Engine>, shape: &Arc<Shape>) -> Result<(Body, LogOffset), ReadError> {
    let mut parts = Vec::new();
    let mut chunk = 0;
    while let Some(plan) = reader::plan_snapshot_chunk(engine, shape, chunk).await? {
        parts.extend(plan.parts);
        chunk += 1;
    }
    let (log_parts, end) = plan_log_to_head(engine, shape, LogOffset::SNAPSHOT_END, false)
        .await?
        .expect("a request that does not wait always returns the log");
    parts.extend(log_parts);
    Ok((render(engine, shape, parts).await?, end))
}

/// Reads the log after `after` up to its published end, range by range, into one JSON array
/// that ends with `up-to-date`. With `live`, a request that finds nothing new first waits up
/// to the long-poll timeout; `Ok(None)` means it timed out.
async fn read_log_to_head(engine: &Arc<Engine>, shape: &Arc<Shape>, after: LogOffset, live: bool) -> Result<Option<(Body, LogOffset)>, ReadError> {
    match plan_log_to_head(engine, shape, after, live).await? {
        Some((parts, end)) => Ok(Some((render(engine, shape, parts).await?, end))),
        None => Ok(None),
    }
}

/// Plans the parts of [`read_log_to_head`] and returns them with the offset of the last entry.
async fn plan_log_to_head(engine: &Arc<Engine>, shape: &Arc<Shape>, after: LogOffset, live: bool) -> Result<Option<(Vec<Part>, LogOffset)>, ReadError> {
    let mut parts = Vec::new();
    let mut after = after;
    let mut wait = live;
    loop {
        let Some(plan) = reader::plan_log(engine, shape, after, wait, MessageFormat::Legacy).await? else {
            return Ok(None);
        };
        parts.extend(plan.parts);
        after = plan.next_offset;
        if plan.up_to_date {
            return Ok(Some((parts, after)));
        }
        wait = false;
    }
}

async fn render(engine: &Arc<Engine>, shape: &Arc<Shape>, parts: Vec<Part>) -> Result<Body, ReadError> {
    render_body(engine, shape, parts, MessageFormat::Legacy, false)
        .await
        .map_err(|error| reader::storage_failure(engine, shape, error))
}

/// Builds the 2024 etag: `<shape id>:<requested offset>:<last offset>`, unquoted.
fn etag(shape: &Shape, requested: LegacyOffset, last: LogOffset) -> String {
    format!("{}:{}:{}", shape.handle, requested.to_text(), legacy_offset_text(last))
}

/// True when an `If-None-Match` value (comma-separated, quotes optional) equals `etag`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim().trim_matches('"') == etag)
}

/// Sets the shape id, the last offset and, for non-live requests, the schema.
fn set_shape_headers(headers: &mut HeaderMap, shape: &Shape, last: LogOffset, live: bool) {
    headers.insert(SHAPE_ID_HEADER, header_value(shape.handle.as_str()));
    headers.insert(LAST_OFFSET_HEADER, header_value(&legacy_offset_text(last)));
    if !live {
        headers.insert(SCHEMA_HEADER, header_value(&legacy_schema_json(shape)));
    }
}

/// Builds the `x-electric-schema` value: the current dialect's schema without `not_null`,
/// which the 2024 dialect does not send.
fn legacy_schema_json(shape: &Shape) -> String {
    let Ok(Value::Object(mut schema)) = serde_json::from_str::<Value>(&shape.schema_json) else {
        return shape.schema_json.clone();
    };
    for column in schema.values_mut() {
        if let Value::Object(description) = column {
            description.remove("not_null");
        }
    }
    Value::Object(schema).to_string()
}

fn set_live_cache_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

/// Builds the 204 for a live request that found nothing new before the long-poll timeout.
fn live_timeout(shape: &Shape, last: LogOffset) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    set_shape_headers(headers, shape, last, true);
    set_live_cache_headers(headers);
    response
}

/// Builds the 409 that sends a client back to `offset=-1` on `current`, the shape its
/// definition has now.
fn must_refetch(current: &Shape, live: bool, path: &str) -> Response {
    let mut response = json_response(StatusCode::CONFLICT, MUST_REFETCH_BODY.to_owned());
    let headers = response.headers_mut();
    set_shape_headers(headers, current, current.log_head().latest, live);
    let location = format!("{path}?shape_id={}&offset=-1", current.handle);
    headers.insert(header::LOCATION, header_value(&location));
    response
}

fn resolve_error(engine: &Engine, error: ResolveError, request: &LegacyRequest, path: &str) -> Response {
    match error {
        ResolveError::TableNotFound(_) => {
            let mut errors = FieldErrors::default();
            errors.add("root_table", TABLE_NOT_FOUND_MESSAGE);
            errors.into_response()
        }
        // The 2024 dialect reports every problem with the definition under `root_table`.
        ResolveError::Invalid { message, .. } => {
            let mut errors = FieldErrors::default();
            errors.add("root_table", message);
            errors.into_response()
        }
        ResolveError::Unavailable => server_error(StatusCode::SERVICE_UNAVAILABLE, "Cannot connect to the database to verify the shape; retry"),
        ResolveError::MustRefetch(handle) => match engine.registry.get_by_handle(&handle) {
            Some(current) => must_refetch(&current, request.live, path),
            // The new shape is already gone again; the client starts over without an id.
            None => json_response(StatusCode::CONFLICT, MUST_REFETCH_BODY.to_owned()),
        },
    }
}

async fn read_error(engine: &Arc<Engine>, shape: &Shape, query: &ShapeQuery, error: ReadError, live: bool, path: &str) -> Response {
    match error {
        // The shape was removed while this request read or waited: point the client at the
        // shape its definition has now, creating it as the 2024 dialect does.
        ReadError::Gone | ReadError::OutOfBounds => match resolve(engine, query, None).await {
            Ok(current) => must_refetch(&current, live, path),
            Err(_) => {
                tracing::warn!(handle = %shape.handle, "no current shape for a removed one");
                json_response(StatusCode::CONFLICT, MUST_REFETCH_BODY.to_owned())
            }
        },
        ReadError::Unavailable(message) => server_error(StatusCode::INTERNAL_SERVER_ERROR, message),
        ReadError::ShuttingDown => server_error(StatusCode::SERVICE_UNAVAILABLE, "Volt is shutting down; retry"),
    }
}

/// Builds a 5xx response, which the 2024 client retries with backoff.
fn server_error(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

fn header_value(text: &str) -> HeaderValue {
    // Every value here is built by Volt from ASCII (ids, offsets, JSON with escapes).
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Request header whose value the 2024 dialect sends back, or creates when it is missing.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Sets the headers every 2024 response carries: `server`, and `x-request-id` with the
/// client's id when it has 20 to 200 characters, else a new random one.
pub fn add_server_headers(response: &mut Response, request_id: Option<HeaderValue>) {
    let request_id = request_id.filter(|id| (20..=200).contains(&id.len())).unwrap_or_else(|| {
        let id: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(20).map(char::from).collect();
        header_value(&id)
    });
    let headers = response.headers_mut();
    headers.insert(header::SERVER, HeaderValue::from_static(concat!("Volt/", env!("CARGO_PKG_VERSION"))));
    headers.insert(REQUEST_ID_HEADER, request_id);
}

/// Sets the CORS headers of the 2024 dialect: any origin, every header readable.
pub fn add_cors_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(root_table: &str, query: &str) -> BTreeMap<&'static str, Vec<String>> {
        parse_request(root_table, query).unwrap_err().0 .0
    }

    #[test]
    fn offsets_parse_as_the_2024_dialect_does() {
        assert_eq!(LegacyOffset::parse("-1"), Some(LegacyOffset::BeforeAll));
        assert_eq!(LegacyOffset::parse("0_02"), Some(LegacyOffset::At(LogOffset::new(0, 2))));
        assert_eq!(LegacyOffset::parse("27440064_4"), Some(LegacyOffset::At(LogOffset::new(27440064, 4))));
        for text in ["10", "1_2_3", "1_2 ", "10_32.1", "-5_3", "0_inf", "_1", "1_", "-2", "+1_0"] {
            assert_eq!(LegacyOffset::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn root_table_splits_on_dots_without_folding() {
        assert_eq!(parse_root_table("Items"), Some(RelationName { schema: "public".into(), table: "Items".into() }));
        assert_eq!(parse_root_table("App.Items"), Some(RelationName { schema: "App".into(), table: "Items".into() }));
        for text in [".invalid_shape", "a.", "a.b.c", "", "a..b"] {
            assert_eq!(parse_root_table(text), None, "{text:?}");
        }
    }

    #[test]
    fn errors_accumulate() {
        let errors = errors_of(".invalid_shape", "offset=invalid");
        assert_eq!(errors["offset"], ["has invalid format"]);
        assert_eq!(errors["root_table"], [TABLE_FORMAT_MESSAGE]);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors_of("items", "")["offset"], ["can't be blank"]);
        assert_eq!(errors_of("items", "offset=0_0")["shape_id"], ["can't be blank when offset != -1"]);
        assert_eq!(errors_of("items", "offset=-1&live")["live"], ["can't be true when offset == -1"]);
        assert!(errors_of("items", "offset=abc&where=id%3D1").get("root_table").is_none());
    }

    #[test]
    fn request_parses_live_and_shape_id() {
        let request = parse_request("items", "offset=5_2&shape_id=h-1&live=").unwrap();
        assert!(request.live);
        assert_eq!(request.shape_id.unwrap().as_str(), "h-1");
        let request = parse_request("items", "offset=-1&shape_id=ignored&live=false&other=1").unwrap();
        assert!(request.shape_id.is_none());
        assert!(!request.live);
    }
}
