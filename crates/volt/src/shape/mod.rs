//! Shapes: a table (in later versions narrowed by a WHERE clause and a column list) kept in
//! sync as a snapshot followed by a log of changes. One shape, with one snapshot and one log,
//! serves every client that asks for the same definition.

pub mod messages;
pub mod persist;
pub mod registry;
pub mod snapshot;
pub mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::pg::catalog::TableInfo;

pub use registry::Registry;
pub use store::Shape;

/// How much of a row updates and deletes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaMode {
    /// Updates carry the key and the changed columns, deletes the key.
    #[default]
    Default,
    /// Updates carry the whole new row and the old values of the changed columns; deletes
    /// carry the whole old row.
    Full,
}

impl ReplicaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaMode::Default => "default",
            ReplicaMode::Full => "full",
        }
    }
}

/// A shape's WHERE clause: the text and parameters as the client sent them, and the checked
/// filter compiled from them.
#[derive(Debug, Clone)]
pub struct ShapeFilter {
    pub where_text: String,
    pub params: BTreeMap<usize, String>,
    pub filter: Arc<volt_filter::Filter>,
}

/// Identity of a shape. Requests with equal definitions share one shape and handle.
#[derive(Debug, Clone)]
pub struct ShapeDefinition {
    pub table: Arc<TableInfo>,
    /// The columns clients receive, as indices into `table.columns` in ascending order. They
    /// always include the key columns.
    pub selected: Vec<usize>,
    pub replica: ReplicaMode,
    /// The rows the shape keeps; `None` for every row.
    pub filter: Option<ShapeFilter>,
}

impl ShapeDefinition {
    /// Builds a definition of the whole table in the default replica mode.
    pub fn whole_table(table: Arc<TableInfo>) -> Self {
        let selected = (0..table.columns.len()).collect();
        ShapeDefinition { table, selected, replica: ReplicaMode::Default, filter: None }
    }

    /// Returns a string that is equal for equal definitions and different otherwise. It is
    /// the registry's key.
    pub fn identity(&self) -> String {
        let columns: Vec<String> = self.selected.iter().map(|index| index.to_string()).collect();
        // The canonical form is rendered from the checked clause with parameters bound, so
        // clauses that differ only in spelling share a shape.
        let filter = self.filter.as_ref().map(|filter| filter.filter.canonical()).unwrap_or_default();
        format!(
            "{}:{}|columns={}|replica={}|where={}",
            self.table.oid,
            self.table.name.quoted(),
            columns.join(","),
            self.replica.as_str(),
            filter
        )
    }

    /// Returns the column and constants this shape's rows are pinned to, so changes can be
    /// routed without evaluating every shape. `None` when no such pin exists.
    pub fn routing_key(&self) -> Option<(usize, Vec<String>)> {
        self.filter.as_ref().and_then(|filter| filter.filter.equality_index())
    }

    /// True when column `index` of the table is sent to clients.
    pub fn is_selected(&self, index: usize) -> bool {
        self.selected.binary_search(&index).is_ok()
    }
}

impl PartialEq for ShapeDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for ShapeDefinition {}

/// The opaque name clients use for a shape: `<definition hash>-<creation time in µs>`.
/// A handle is never reused, so a client with an old one always gets a 409 and refetches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeHandle(String);

impl ShapeHandle {
    pub fn new(definition: &ShapeDefinition, created_micros: u64) -> Self {
        let hash = crc32c::crc32c(definition.identity().as_bytes());
        ShapeHandle(format!("{hash}-{created_micros}"))
    }

    /// Wraps a handle sent by a client, for lookups.
    pub fn from_client(text: &str) -> Self {
        ShapeHandle(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShapeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
