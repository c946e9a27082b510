//! A shape's metadata file, `shape.json`: its handle, definition and snapshot, written once
//! when its snapshot is complete. A shape directory without it is an unfinished snapshot and
//! is deleted at start-up.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ReplicaMode, ShapeDefinition, ShapeFilter, ShapeHandle};
use crate::pg::catalog::TableInfo;
use crate::pg::visibility::PgSnapshot;
use crate::storage::crashsafe;

/// File name of the metadata inside a shape's directory.
pub const META_FILE: &str = "shape.json";
/// Version of the metadata layout; other versions are not loaded.
const META_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct ShapeMeta {
    version: u32,
    handle: String,
    table: TableInfo,
    selected: Vec<usize>,
    replica: ReplicaMode,
    snapshot: String,
    snapshot_chunk_ends: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    where_clause: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    params: BTreeMap<usize, String>,
}

/// Shape state restored from a metadata file.
#[derive(Debug)]
pub struct StoredShape {
    pub handle: ShapeHandle,
    pub definition: ShapeDefinition,
    pub snapshot: PgSnapshot,
    pub snapshot_chunk_ends: Vec<u64>,
}

/// Writes the metadata of a shape whose snapshot is complete.
pub fn write(dir: &Path, handle: &ShapeHandle, definition: &ShapeDefinition, snapshot: &PgSnapshot, chunk_ends: &[u64]) -> io::Result<()> {
    let meta = ShapeMeta {
        version: META_VERSION,
        handle: handle.as_str().to_owned(),
        table: (*definition.table).clone(),
        selected: definition.selected.clone(),
        replica: definition.replica,
        snapshot: snapshot.to_string(),
        snapshot_chunk_ends: chunk_ends.to_vec(),
        where_clause: definition.filter.as_ref().map(|filter| filter.where_text.clone()),
        params: definition.filter.as_ref().map(|filter| filter.params.clone()).unwrap_or_default(),
    };
    let json = serde_json::to_vec_pretty(&meta).expect("shape metadata encodes");
    crashsafe::write_atomic(&dir.join(META_FILE), &json)
}

/// Reads a shape's metadata. An error means the directory contains no usable shape.
pub fn read(dir: &Path) -> Result<StoredShape, String> {
    let bytes = std::fs::read(dir.join(META_FILE)).map_err(|error| format!("cannot read {META_FILE}: {error}"))?;
    let meta: ShapeMeta = serde_json::from_slice(&bytes).map_err(|error| format!("invalid {META_FILE}: {error}"))?;
    if meta.version != META_VERSION {
        return Err(format!("{META_FILE} has version {}, expected {META_VERSION}", meta.version));
    }
    let column_count = meta.table.columns.len();
    if meta.selected.iter().any(|&index| index >= column_count) {
        return Err(format!("{META_FILE} selects a column the table does not have"));
    }
    let snapshot = meta.snapshot.parse()?;
    let filter = match meta.where_clause {
        None => None,
        Some(where_text) => {
            let filter = meta.table.compile_filter(&where_text, &meta.params).map_err(|error| format!("its WHERE clause no longer compiles: {error}"))?;
            Some(ShapeFilter { where_text, params: meta.params, filter: Arc::new(filter) })
        }
    };
    Ok(StoredShape {
        handle: ShapeHandle::from_client(&meta.handle),
        definition: ShapeDefinition { table: Arc::new(meta.table), selected: meta.selected, replica: meta.replica, filter },
        snapshot,
        snapshot_chunk_ends: meta.snapshot_chunk_ends,
    })
}
