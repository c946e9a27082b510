//! Shape deletion in both dialects: `DELETE /v1/shape?table=…&handle=…` (current) and
//! `DELETE /v1/shape/{root_table}?shape_id=…` (2024).
//!
//! Deleting a shape removes it from the registry: its clients get 409 and resync, and the next
//! request for the definition creates a new shape with a new handle. Both routes delete only
//! when `--allow-shape-deletion` is set, because any client could otherwise force every client
//! of a shape to resync.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::legacy_api::{self, FieldErrors, TABLE_FORMAT_MESSAGE, TABLE_NOT_FOUND_MESSAGE};
use super::resolve::ShapeQuery;
use crate::engine::Engine;
use crate::pg::catalog::LookupError;
use crate::pg::names::{self, RelationName};
use crate::shape::{ReplicaMode, Shape, ShapeHandle};

const DELETE_REASON: &str = "deleted by a DELETE request";

/// A current-dialect DELETE: a handle, a definition, or both.
#[derive(Debug)]
struct DeleteRequest {
    handle: Option<ShapeHandle>,
    query: Option<ShapeQuery>,
}

/// Serves `DELETE /v1/shape`: 202 once the shape is removed, 404 when no shape matches.
pub async fn delete_shape(engine: Arc<Engine>, request: Request) -> Response {
    if !engine.config.allow_shape_deletion {
        return json_response(StatusCode::METHOD_NOT_ALLOWED, json!({"message": "DELETE not allowed"}));
    }
    let parsed = match parse_delete_request(request.uri().query().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };

    let by_handle = parsed.handle.as_ref().map(|handle| engine.registry.get_by_handle(handle));
    let Some(query) = parsed.query else {
        return match by_handle.flatten() {
            Some(shape) => remove(&engine, &[shape]).await,
            None => no_shape_found(),
        };
    };

    let matching: Vec<Arc<Shape>> = engine.registry.all().into_iter().filter(|shape| query.matches(&shape.definition)).collect();
    match by_handle {
        Some(Some(shape)) if matching.iter().any(|candidate| Arc::ptr_eq(candidate, &shape)) => remove(&engine, &[shape]).await,
        Some(Some(_)) => invalid_request(
            "The specified shape definition and handle do not match. Send only the handle, or the definition of the shape with that handle.",
        ),
        Some(None) => no_shape_found(),
        None if !matching.is_empty() => remove(&engine, &matching).await,
        None => match engine.lookup_table(&query.table).await {
            Ok(_) => no_shape_found(),
            Err(LookupError::NotFound(name)) => invalid_parameter("table", table_not_found_message(&name)),
            Err(LookupError::Postgres(error)) => {
                tracing::warn!(%error, table = %query.table, "catalog lookup failed");
                unavailable()
            }
        },
    }
}

/// Parses the handle and the definition parameters of a current-dialect DELETE.
fn parse_delete_request(query: &str) -> Result<DeleteRequest, Response> {
    let mut table = None;
    let mut handle = None;
    let mut columns = None;
    let mut replica = None;
    let mut where_clause = None;
    let mut raw_params = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if let Some(key) = name.strip_prefix("params[").and_then(|rest| rest.strip_suffix(']')) {
            raw_params.push((key.to_owned(), value.into_owned()));
            continue;
        }
        match name.as_ref() {
            "table" => table = Some(value.into_owned()),
            "handle" => handle = Some(value.into_owned()),
            "columns" => columns = Some(value.into_owned()),
            "replica" => replica = Some(value.into_owned()),
            "where" => where_clause = Some(value.into_owned()),
            _ => {}
        }
    }

    let handle = handle.filter(|handle| !handle.is_empty()).map(|handle| ShapeHandle::from_client(&handle));
    let Some(table) = table.filter(|table| !table.is_empty()) else {
        if handle.is_none() {
            return Err(invalid_parameter("handle", "can't be blank when shape definition is missing".to_owned()));
        }
        return Ok(DeleteRequest { handle, query: None });
    };
    let table = names::parse_relation(&table).map_err(|message| invalid_parameter("table", message))?;
    let mut query = ShapeQuery::whole_table(table);
    if let Some(columns) = columns {
        query.columns = Some(names::parse_identifier_list(&columns).map_err(|message| invalid_parameter("columns", message))?);
    }
    query.replica = match replica.as_deref() {
        None | Some("default") => ReplicaMode::Default,
        Some("full") => ReplicaMode::Full,
        Some(_) => return Err(invalid_parameter("replica", "is invalid".to_owned())),
    };
    // A definition is matched by the clause as sent, so a DELETE names a filtered shape with
    // the same `where` and `params` its clients use.
    query.where_clause = where_clause.filter(|clause| !clause.trim().is_empty());
    if query.where_clause.is_some() {
        query.params = super::shape_api::parse_params(raw_params).map_err(|error| error.into_response())?;
    }
    Ok(DeleteRequest { handle, query: Some(query) })
}

/// Serves `DELETE /v1/shape/{root_table}`: 202 whether or not a shape was removed. With
/// `shape_id`, that shape is removed; without it, the shape of the whole table. Any `where`
/// parameter is ignored, as in the 2024 dialect.
pub async fn delete_legacy_shape(engine: Arc<Engine>, root_table: &str, request: Request) -> Response {
    if !engine.config.allow_shape_deletion {
        return json_response(StatusCode::NOT_FOUND, json!({"status": "Not found"}));
    }
    let Some(table) = legacy_api::parse_root_table(root_table) else {
        let mut errors = FieldErrors::default();
        errors.add("root_table", TABLE_FORMAT_MESSAGE);
        return errors.into_response();
    };
    match engine.lookup_table(&table).await {
        Ok(_) => {}
        Err(LookupError::NotFound(_)) => {
            let mut errors = FieldErrors::default();
            errors.add("root_table", TABLE_NOT_FOUND_MESSAGE);
            return errors.into_response();
        }
        Err(LookupError::Postgres(error)) => {
            tracing::warn!(%error, %table, "catalog lookup failed");
            return unavailable();
        }
    }

    let shape_id = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(name, value)| name == "shape_id" && !value.is_empty())
        .map(|(_, value)| ShapeHandle::from_client(&value));
    let shapes: Vec<Arc<Shape>> = match shape_id {
        Some(shape_id) => engine.registry.get_by_handle(&shape_id).into_iter().collect(),
        None => {
            let query = ShapeQuery::whole_table(table);
            engine.registry.all().into_iter().filter(|shape| query.matches(&shape.definition)).collect()
        }
    };
    remove(&engine, &shapes).await
}

async fn remove(engine: &Engine, shapes: &[Arc<Shape>]) -> Response {
    for shape in shapes {
        engine.remove_shape(shape, DELETE_REASON).await;
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn table_not_found_message(name: &RelationName) -> String {
    format!(
        "Table \"{}\".\"{}\" does not exist. If the table name contains capitals or special characters you must quote it.",
        name.schema, name.table
    )
}

fn no_shape_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"message": "No existing shape found"}))
}

fn invalid_parameter(parameter: &str, message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"message": "Invalid request", "errors": {parameter: [message]}}))
}

fn invalid_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"message": message}))
}

fn unavailable() -> Response {
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"message": "Cannot connect to the database to verify the shape. Please try again later."}),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
