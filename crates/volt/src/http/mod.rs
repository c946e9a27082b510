//! The HTTP edge: one entry point that normalises the path once, then routes on it.

mod compression;
mod body;
pub mod chunk_cache;
mod delete;
mod error;
mod legacy_api;
mod limits;
mod reader;
mod resolve;
pub mod server;
mod shape_api;
mod sse;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use subtle::ConstantTimeEq;
use tokio::sync::OwnedSemaphorePermit;

use crate::engine::Engine;
pub use error::ApiError;

/// Response headers clients must be able to read across origins.
const EXPOSED_HEADERS: &str = "electric-cursor,electric-handle,electric-has-data,electric-offset,\
electric-schema,electric-up-to-date,electric-internal-known-error,retry-after";

/// `retry-after` of the 503 sent when every request slot is taken, in seconds.
const BUSY_RETRY_AFTER_S: u32 = 5;

/// State shared by every request handler.
#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
    /// Shape requests rejected because every slot was taken, counted to thin out the log.
    rejected_busy: Arc<AtomicU64>,
}

/// Builds the application: every request goes through [`dispatch`].
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().fallback(dispatch).with_state(AppState { engine, rejected_busy: Arc::new(AtomicU64::new(0)) })
}

/// The routes Volt serves, found from the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Root,
    Health,
    Shape,
    /// `/v1/shape/{root_table}`, the 2024 dialect, with the table's name as written.
    LegacyShape(String),
    NotFound,
}

impl Route {
    fn from_normalised_path(path: &str) -> Route {
        match path {
            "/" => Route::Root,
            "/v1/health" => Route::Health,
            "/v1/shape" => Route::Shape,
            _ => match path.strip_prefix("/v1/shape/") {
                Some(root_table) if !root_table.is_empty() => Route::LegacyShape(root_table.to_owned()),
                _ => Route::NotFound,
            },
        }
    }
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let engine = state.engine;
    let route = match normalise_path(request.uri().path()) {
        Some(path) => Route::from_normalised_path(&path),
        None => Route::NotFound,
    };
    // Copied rather than cloned: a clone shares the connection's read buffer, which a long
    // poll would then keep while it waits.
    let copy = |value: &HeaderValue| HeaderValue::from_bytes(value.as_bytes()).ok();
    let origin = request.headers().get(header::ORIGIN).and_then(copy);
    let request_id = request.headers().get(legacy_api::REQUEST_ID_HEADER).and_then(copy);
    let method = request.method().clone();
    let accepts_gzip = compression::accepts_gzip(request.headers());
    let compression_min_bytes = engine.config.compression_min_bytes;

    // Every shape request but a CORS preflight needs the secret and a request slot. The route
    // comes from the normalised path, so no spelling of a shape path skips either check.
    let guarded = matches!(route, Route::Shape | Route::LegacyShape(_)) && method != Method::OPTIONS;
    let mut permit = None;
    let early_response = if let Some(error) = limits::check_request(&request, &engine.config) {
        Some(error.into_response())
    } else if !guarded {
        None
    } else if !has_secret(engine.config.secret.as_deref(), request.uri().query()) {
        Some(ApiError::unauthorized().into_response())
    } else {
        match engine.request_slots.clone().try_acquire_owned() {
            Ok(slot) => {
                engine.shape_requests_total.fetch_add(1, Ordering::Relaxed);
                permit = Some(slot);
                None
            }
            Err(_) => {
                let limit = engine.config.max_concurrent_requests;
                let rejected = state.rejected_busy.fetch_add(1, Ordering::Relaxed) + 1;
                if rejected.is_power_of_two() {
                    tracing::warn!(limit, rejected, "rejected shape requests: the concurrent request limit is reached");
                }
                let message = format!("Too many concurrent shape requests: the limit is {limit}. Retry later.");
                Some(ApiError::unavailable(message, BUSY_RETRY_AFTER_S).into_response())
            }
        }
    };

    let mut response = match early_response {
        Some(response) => response,
        None => match (&route, &method) {
            (Route::Root, &Method::GET | &Method::HEAD) => empty(StatusCode::OK),
            (Route::Health, &Method::GET | &Method::HEAD) => health(),
            (Route::Shape, &Method::GET | &Method::HEAD) => shape_api::serve(engine, request).await,
            (Route::Shape, &Method::DELETE) => delete::delete_shape(engine, request).await,
            (Route::Shape, &Method::OPTIONS) => preflight(&request),
            (Route::LegacyShape(root_table), &Method::GET | &Method::HEAD) => legacy_api::serve(engine, root_table, request).await,
            (Route::LegacyShape(root_table), &Method::DELETE) => delete::delete_legacy_shape(engine, root_table, request).await,
            (Route::NotFound, _) => ApiError::not_found().into_response(),
            _ => ApiError::method_not_allowed().into_response(),
        },
    };

    match route {
        // The 2024 dialect sends its own CORS headers, and none on DELETE.
        Route::LegacyShape(_) => {
            legacy_api::add_server_headers(&mut response, request_id);
            if method != Method::DELETE {
                legacy_api::add_cors_headers(&mut response);
            }
        }
        _ => add_cors_headers(&mut response, origin, route == Route::Shape),
    }
    // A HEAD response has no body, so it is never compressed, but it gets the same `vary` as
    // the GET response.
    let head = method == Method::HEAD;
    if head {
        *response.body_mut() = Body::empty();
    }
    if let Some(min_bytes) = compression_min_bytes {
        response = compression::compress_json(response, accepts_gzip && !head, min_bytes).await;
    }
    match permit {
        Some(permit) => hold_until_body_ends(response, permit),
        None => response,
    }
}

/// Keeps `permit` until a streamed response body ends or is dropped. A body already in memory
/// frees the slot at once, so a client that has its response can rely on the slot being free.
fn hold_until_body_ends(response: Response, permit: OwnedSemaphorePermit) -> Response {
    if axum::body::HttpBody::size_hint(response.body()).exact().is_some() {
        drop(permit);
        return response;
    }
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Checks the `secret` query parameter (or the older `api_secret`) against the configured
/// secret in constant time. Every request passes when no secret is configured.
fn has_secret(expected: Option<&str>, query: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let query = query.unwrap_or("");
    let mut matched = false;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "secret" || name == "api_secret" {
            // ConstantTimeEq returns false at once for a different length, so timing reveals
            // the secret's length at most, never its bytes.
            matched |= bool::from(value.as_bytes().ct_eq(expected.as_bytes()));
        }
    }
    matched
}

/// Decodes percent-escapes, collapses repeated slashes and drops a trailing slash, so that
/// `/v1//shape/`, `/v1/%73hape` and `/v1/shape` are one path. `None` for paths that do not
/// decode to UTF-8 or that climb with `..`.
fn normalise_path(raw: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    let mut normalised = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|segment| !segment.is_empty() && *segment != ".") {
        if segment == ".." {
            return None;
        }
        normalised.push('/');
        normalised.push_str(segment);
    }
    if normalised.is_empty() {
        normalised.push('/');
    }
    Some(normalised)
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn health() -> Response {
    let mut response = Response::new(Body::from(r#"{"status":"active"}"#));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    response
}

/// Builds the response to a CORS preflight. Only the request headers the Shape API uses are
/// allowed.
fn preflight(request: &Request) -> Response {
    let mut response = empty(StatusCode::NO_CONTENT);
    let allowed: Vec<String> = request
        .headers()
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| name == "if-none-match" || name == "traceparent")
        .collect();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        if !allowed.is_empty() {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
    }
    response
}

fn add_cors_headers(response: &mut Response, origin: Option<HeaderValue>, shape_route: bool) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.unwrap_or(HeaderValue::from_static("*")));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    let methods = if shape_route { "GET, HEAD, DELETE, OPTIONS" } else { "GET, HEAD" };
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests {
    use super::{has_secret, normalise_path, Route};

    #[test]
    fn secret_check_reads_both_parameter_names() {
        assert!(has_secret(None, None));
        assert!(has_secret(Some("s3"), Some("table=t&secret=s3")));
        assert!(has_secret(Some("s3"), Some("api_secret=s3&table=t")));
        assert!(has_secret(Some("a b"), Some("secret=a%20b")));
        assert!(!has_secret(Some("s3"), None));
        assert!(!has_secret(Some("s3"), Some("secret=s4")));
        assert!(!has_secret(Some("s3"), Some("secret=s")));
        assert!(!has_secret(Some("s3"), Some("secret=")));
        assert!(!has_secret(Some("s3"), Some("Secret=s3")));
    }

    #[test]
    fn path_variants_normalise_to_one() {
        for raw in ["/v1/shape", "/v1/shape/", "/v1//shape", "//v1/shape", "/v1/%73hape", "/v1/./shape", "/%2Fv1%2Fshape"] {
            assert_eq!(normalise_path(raw).as_deref(), Some("/v1/shape"), "{raw}");
        }
        assert_eq!(normalise_path("/").as_deref(), Some("/"));
        assert_eq!(normalise_path("/v1/../shape"), None);
        assert_eq!(normalise_path("/%ff"), None);
    }

    #[test]
    fn table_path_is_the_2024_route() {
        let route = |raw: &str| Route::from_normalised_path(&normalise_path(raw).unwrap());
        assert_eq!(route("/v1/shape/items"), Route::LegacyShape("items".into()));
        assert_eq!(route("/v1//shape/app.Items/"), Route::LegacyShape("app.Items".into()));
        assert_eq!(route("/v1/shape/Order%20Items"), Route::LegacyShape("Order Items".into()));
        assert_eq!(route("/v1/shape/"), Route::Shape);
        assert_eq!(route("/v1/shapes"), Route::NotFound);
    }
}
