//! Shapes: a table (in later versions narrowed by a WHERE clause and a column list) kept in
//! sync as a snapshot followed by a log of changes. One shape, with one snapshot and one log,
//! serves every client that asks for the same definition.

pub mod messages;
pub mod registry;
pub mod snapshot;
pub mod store;

use std::fmt;
use std::sync::Arc;

use crate::pg::catalog::TableInfo;

pub use registry::Registry;
pub use store::Shape;

/// What identifies a shape: requests with equal definitions share one shape and handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeDefinition {
    pub table: Arc<TableInfo>,
}

impl ShapeDefinition {
    /// A string equal for equal definitions and different otherwise; the registry's key.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.table.oid, self.table.name.quoted())
    }
}

/// The opaque name clients use for a shape: `<definition hash>-<creation time in µs>`.
/// A handle is never reused, so a client holding an old one is always told to refetch.
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
