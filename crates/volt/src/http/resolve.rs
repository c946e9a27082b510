//! Finding the shape a request addresses, in either dialect of the Shape API.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::Engine;
use crate::pg::catalog::LookupError;
use crate::pg::names::RelationName;
use crate::pg::catalog::TableInfo;
use crate::shape::{ReplicaMode, Shape, ShapeDefinition, ShapeFilter, ShapeHandle};

/// A shape definition as a request states it, before it is checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeQuery {
    pub table: RelationName,
    /// Requested columns, already parsed as identifiers; `None` for all columns.
    pub columns: Option<Vec<String>>,
    pub replica: ReplicaMode,
    /// The WHERE clause as sent, and the values of its `$n` parameters.
    pub where_clause: Option<String>,
    pub params: BTreeMap<usize, String>,
}

impl ShapeQuery {
    /// Builds a query for a whole table in the default replica mode.
    pub fn whole_table(table: RelationName) -> Self {
        ShapeQuery { table, columns: None, replica: ReplicaMode::Default, where_clause: None, params: BTreeMap::new() }
    }

    /// Returns true when `definition` is what this query requests, judged without the catalog.
    pub(crate) fn matches(&self, definition: &ShapeDefinition) -> bool {
        let table = &definition.table;
        let columns_match = match &self.columns {
            None => definition.selected.len() == table.columns.len(),
            Some(names) => {
                let mut requested: Vec<&str> = names.iter().map(String::as_str).collect();
                requested.extend(table.key_columns.iter().map(|&index| table.columns[index].name.as_str()));
                requested.sort_unstable();
                requested.dedup();
                let mut selected: Vec<&str> = definition.selected.iter().map(|&index| table.columns[index].name.as_str()).collect();
                selected.sort_unstable();
                requested == selected
            }
        };
        let filter_match = match (&self.where_clause, &definition.filter) {
            (None, None) => true,
            (Some(text), Some(filter)) => *text == filter.where_text && self.params == filter.params,
            _ => false,
        };
        table.name == self.table && self.replica == definition.replica && columns_match && filter_match
    }
}

/// Failure to find or create a shape, rendered by each dialect in its own format.
#[derive(Debug)]
pub enum ResolveError {
    /// The table does not exist (or is not an ordinary or partitioned table).
    TableNotFound(RelationName),
    /// Postgres could not be reached to check the definition; the client should retry.
    Unavailable,
    /// A parameter is invalid for this table; the message names the problem.
    Invalid { parameter: &'static str, message: String },
    /// The client's handle is unknown or names another definition; it must start over on
    /// the current shape, whose handle this is.
    MustRefetch(ShapeHandle),
}

/// Returns the shape for `query`, creating it when it is new. With a `handle`, the shape must
/// be that one, or the result is [`ResolveError::MustRefetch`] with the current shape.
pub async fn resolve(engine: &Arc<Engine>, query: &ShapeQuery, handle: Option<&ShapeHandle>) -> Result<Arc<Shape>, ResolveError> {
    // Fast path for clients that follow a shape: no catalog lookup.
    if let Some(shape) = handle.and_then(|handle| engine.registry.get_by_handle(handle)) {
        if query.matches(&shape.definition) {
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
    let table = Arc::new(table);
    let selected = select_columns(&table, query.columns.as_deref())?;
    let filter = match &query.where_clause {
        None => None,
        Some(text) => {
            let filter = table
                .compile_filter(text, &query.params)
                .map_err(|error| ResolveError::Invalid { parameter: "where", message: error.to_string() })?;
            Some(ShapeFilter { where_text: text.clone(), params: query.params.clone(), filter: Arc::new(filter) })
        }
    };
    let definition = ShapeDefinition { table, selected, replica: query.replica, filter };
    let shape = engine.shape_for(&definition);
    match handle {
        Some(handle) if *handle != shape.handle => Err(ResolveError::MustRefetch(shape.handle.clone())),
        _ => Ok(shape),
    }
}

/// Resolves requested column names to table columns, adding the key columns. The result is
/// in table order.
fn select_columns(table: &TableInfo, requested: Option<&[String]>) -> Result<Vec<usize>, ResolveError> {
    let invalid = |message: String| ResolveError::Invalid { parameter: "columns", message };
    let Some(requested) = requested else {
        // Postgres 15 does not replicate generated columns, so a shape of every column
        // could not be kept up to date.
        if !table.generated_columns.is_empty() {
            let others: Vec<&str> = table.columns.iter().map(|column| column.name.as_str()).collect();
            return Err(invalid(format!(
                "The following columns are generated and cannot be included in the shape: {}. \
                 Pass `columns` listing the other columns to sync: {}",
                table.generated_columns.join(", "),
                others.join(", ")
            )));
        }
        return Ok((0..table.columns.len()).collect());
    };
    if requested.is_empty() {
        return Err(invalid("The list of columns must not be empty".to_owned()));
    }
    let mut selected = Vec::with_capacity(requested.len());
    let mut unknown = Vec::new();
    let mut generated = Vec::new();
    for name in requested {
        match table.columns.iter().position(|column| &column.name == name) {
            Some(index) => selected.push(index),
            None if table.generated_columns.contains(name) => generated.push(name.as_str()),
            None => unknown.push(name.as_str()),
        }
    }
    if !generated.is_empty() {
        return Err(invalid(format!(
            "The following columns are generated and cannot be included in the shape: {}",
            generated.join(", ")
        )));
    }
    if !unknown.is_empty() {
        return Err(invalid(format!("The following columns are not found on the table: {}", unknown.join(", "))));
    }
    let missing: Vec<&str> = table
        .key_columns
        .iter()
        .filter(|index| !selected.contains(index))
        .map(|&index| table.columns[index].name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "The list of columns must include all primary key columns, missing: {}",
            missing.join(", ")
        )));
    }
    selected.sort_unstable();
    selected.dedup();
    Ok(selected)
}
