//! Limits on the size of requests: the request target, the headers, and the body that no
//! request to Volt may carry.

use axum::extract::Request;
use axum::http::{header, StatusCode};

use super::ApiError;
use crate::config::Settings;

/// Checks a request against the size limits and returns the error response for the first one
/// it breaks.
pub fn check_request(request: &Request, config: &Settings) -> Option<ApiError> {
    let url_bytes = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if url_bytes > config.request_url_bytes_max {
        let message = format!(
            "is {url_bytes} bytes long, over the limit of {} bytes (--request-url-bytes-max)",
            config.request_url_bytes_max
        );
        return Some(ApiError::rejected(StatusCode::URI_TOO_LONG, "url", message));
    }

    let header_bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > config.request_header_bytes_max {
        let message = format!(
            "are {header_bytes} bytes long in total, over the limit of {} bytes (--request-header-bytes-max)",
            config.request_header_bytes_max
        );
        return Some(ApiError::rejected(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers", message));
    }

    // No route of Volt reads a body, so one that arrives is a client mistake, and reading it
    // would cost memory and time for nothing.
    if has_body(request) {
        let message = format!("must be empty: {} requests to Volt carry no body", request.method());
        return Some(ApiError::rejected(StatusCode::BAD_REQUEST, "body", message));
    }
    None
}

/// True when the request announces a body: a non-zero `content-length` or any
/// `transfer-encoding`.
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .any(|value| value.to_str().map_or(true, |text| text.trim() != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use clap::Parser;

    fn settings() -> Settings {
        let args = crate::config::Args::try_parse_from(["volt", "--request-url-bytes-max", "300", "--request-header-bytes-max", "1024"]).unwrap();
        args.into_settings().unwrap()
    }

    fn status_of(request: Request) -> Option<StatusCode> {
        check_request(&request, &settings()).map(|error| error.into_response().status())
    }

    #[test]
    fn requests_within_limits_pass() {
        let request = Request::get("/v1/shape?table=items&offset=-1").header("content-length", "0").body(Body::empty()).unwrap();
        assert_eq!(status_of(request), None);
    }

    #[test]
    fn long_url_is_414() {
        let url = format!("/v1/shape?table=items&offset=-1&where={}", "x".repeat(300));
        assert_eq!(status_of(Request::get(url).body(Body::empty()).unwrap()), Some(StatusCode::URI_TOO_LONG));
    }

    #[test]
    fn large_headers_are_431() {
        let request = Request::get("/v1/health").header("x-large", "y".repeat(1100)).body(Body::empty()).unwrap();
        assert_eq!(status_of(request), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }

    #[test]
    fn request_bodies_are_400() {
        let request = Request::get("/v1/shape").header("content-length", "5").body(Body::from("hello")).unwrap();
        assert_eq!(status_of(request), Some(StatusCode::BAD_REQUEST));
        let request = Request::delete("/v1/shape").header("transfer-encoding", "chunked").body(Body::empty()).unwrap();
        assert_eq!(status_of(request), Some(StatusCode::BAD_REQUEST));
    }
}
