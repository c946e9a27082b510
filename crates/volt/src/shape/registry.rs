//! The shapes that exist, found by definition or by handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Shape, ShapeDefinition, ShapeHandle};
use crate::storage::crashsafe;

/// All live shapes. Removing a shape here is what makes its clients refetch.
#[derive(Debug)]
pub struct Registry {
    shapes_dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_identity: HashMap<String, Arc<Shape>>,
    by_handle: HashMap<ShapeHandle, Arc<Shape>>,
}

impl Registry {
    pub fn new(shapes_dir: PathBuf) -> Self {
        Registry { shapes_dir, inner: Mutex::new(Inner::default()) }
    }

    /// Directory holding one directory per shape.
    pub fn shapes_dir(&self) -> &std::path::Path {
        &self.shapes_dir
    }

    /// Adds a shape restored from disk.
    pub fn insert_restored(&self, shape: Arc<Shape>) {
        let mut inner = self.inner.lock().expect("registry lock");
        inner.by_identity.insert(shape.definition.identity(), shape.clone());
        inner.by_handle.insert(shape.handle.clone(), shape);
    }

    pub fn get_by_handle(&self, handle: &ShapeHandle) -> Option<Arc<Shape>> {
        self.inner.lock().expect("registry lock").by_handle.get(handle).cloned()
    }

    pub fn get_by_definition(&self, definition: &ShapeDefinition) -> Option<Arc<Shape>> {
        self.inner.lock().expect("registry lock").by_identity.get(&definition.identity()).cloned()
    }

    /// Returns the shape for `definition`, creating it when there is none. The flag is true
    /// when the shape was created by this call, and the caller must then start its snapshot.
    pub fn get_or_create(&self, definition: &ShapeDefinition) -> (Arc<Shape>, bool) {
        let identity = definition.identity();
        let mut inner = self.inner.lock().expect("registry lock");
        if let Some(shape) = inner.by_identity.get(&identity) {
            return (shape.clone(), false);
        }
        let mut created_micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let mut handle = ShapeHandle::new(definition, created_micros);
        while inner.by_handle.contains_key(&handle) {
            created_micros += 1;
            handle = ShapeHandle::new(definition, created_micros);
        }
        let dir = self.shapes_dir.join(handle.as_str());
        let shape = Shape::new(handle.clone(), definition.clone(), dir);
        inner.by_identity.insert(identity, shape.clone());
        inner.by_handle.insert(handle, shape.clone());
        tracing::info!(handle = %shape.handle, table = %definition.table.name, "shape created");
        (shape, true)
    }

    /// Removes a shape: its clients get 409 from now on and its files are deleted.
    pub fn remove(&self, shape: &Arc<Shape>, reason: &str) {
        {
            let mut inner = self.inner.lock().expect("registry lock");
            if inner.by_handle.remove(&shape.handle).is_none() {
                return;
            }
            let identity = shape.definition.identity();
            if inner.by_identity.get(&identity).is_some_and(|current| Arc::ptr_eq(current, shape)) {
                inner.by_identity.remove(&identity);
            }
        }
        shape.mark_removed();
        tracing::info!(handle = %shape.handle, table = %shape.definition.table.name, reason, "shape removed");
        // Open readers keep their file handles, so deleting the files under them is safe.
        if let Err(error) = crashsafe::remove_dir_all(&shape.dir) {
            tracing::warn!(handle = %shape.handle, %error, "could not delete the files of a removed shape");
        }
    }

    /// Returns every shape, for shutdown and diagnostics.
    pub fn all(&self) -> Vec<Arc<Shape>> {
        self.inner.lock().expect("registry lock").by_handle.values().cloned().collect()
    }
}
