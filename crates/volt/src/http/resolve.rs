//! Finding the shape a request addresses, in either dialect of the Shape API.

use std::sync::Arc;

use crate::engine::Engine;
use crate::pg::catalog::LookupError;
use crate::pg::names::RelationName;
use crate::shape::{Shape, ShapeDefinition, ShapeHandle};

/// A shape definition as a request states it, before it is checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeQuery {
    pub table: RelationName,
}

/// Failure to find or create a shape, rendered by each dialect in its own format.
#[derive(Debug)]
pub enum ResolveError {
    /// The table does not exist (or is not an ordinary or partitioned table).
    TableNotFound(RelationName),
    /// Postgres could not be reached to check the definition; the client should retry.
    Unavailable,
    /// The client's handle is unknown or names another definition; it must start over on
    /// the current shape, whose handle this is.
    MustRefetch(ShapeHandle),
}

/// Returns the shape for `query`, creating it when it is new. With a `handle`, the shape must
/// be that one; otherwise the client is told to refetch the current shape.
pub async fn resolve(engine: &Arc<Engine>, query: &ShapeQuery, handle: Option<&ShapeHandle>) -> Result<Arc<Shape>, ResolveError> {
    // Fast path for clients that follow a shape: no catalog lookup.
    if let Some(shape) = handle.and_then(|handle| engine.registry.get_by_handle(handle)) {
        if shape.definition.table.name == query.table {
            return Ok(shape);
        }
    }

    let table = match engine.lookup_table(&query.table).await {
        Ok(table) => table,
        Err(LookupError::NotFound(name)) => return Err(ResolveError::TableNotFound(name)),
        Err(LookupError::Postgres(error)) => {
            tracing::warn!(%error, table = %query.table, "catalog lookup failed");
            return Err(ResolveError::Unavailable);
        }
    };
    let definition = ShapeDefinition { table: Arc::new(table) };
    let shape = engine.shape_for(&definition);
    match handle {
        Some(handle) if *handle != shape.handle => Err(ResolveError::MustRefetch(shape.handle.clone())),
        _ => Ok(shape),
    }
}
