//! Error responses. Every error a client can cause becomes a 4xx with a JSON body that names
//! the parameter. Internal details go to the log, never to the client.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

/// An error response sent to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
    retry_after_s: Option<u32>,
}

impl ApiError {
    /// Builds a 400 that names one invalid parameter.
    pub fn invalid(parameter: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(parameter.to_owned(), vec![message.into()]);
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"message": "Invalid request", "errors": errors}),
            retry_after_s: None,
        }
    }

    /// Builds an error with `status` that names one rejected part of the request, in the body
    /// layout of a 400.
    pub fn rejected(status: StatusCode, parameter: &str, message: impl Into<String>) -> Self {
        ApiError { status, ..ApiError::invalid(parameter, message) }
    }

    /// The 401 for a shape request without the configured secret, worded as Electric words it.
    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"message": "Unauthorized - Invalid API secret"}),
            retry_after_s: None,
        }
    }

    pub fn not_found() -> Self {
        ApiError { status: StatusCode::NOT_FOUND, body: json!({"message": "Not found"}), retry_after_s: None }
    }

    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: json!({"message": "Method not allowed"}),
            retry_after_s: None,
        }
    }

    /// A 503 the client should retry after `retry_after_s` seconds.
    pub fn unavailable(message: impl Into<String>, retry_after_s: u32) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({"message": message.into()}),
            retry_after_s: Some(retry_after_s),
        }
    }

    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("surrogate-control", HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
