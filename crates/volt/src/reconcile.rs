//! Periodic check that the tables of live shapes still exist as the shapes saw them. The
//! replication stream sends nothing when a table is dropped, or dropped and created again
//! under the same name, so without this check shapes on such a table would go stale.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::pg::catalog::{LookupError, TableInfo};
use crate::pg::names::RelationName;
use crate::shape::Shape;

/// Checks the tables of live shapes every `interval` until Volt shuts down.
pub async fn run(engine: Arc<Engine>, interval: Duration) {
    let mut shutdown = engine.shutdown.clone();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once, and right after start there is nothing to check.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        check_tables(&engine).await;
    }
}

/// Looks up each distinct table of the live shapes once, and removes the shapes whose table
/// is gone, was created again (another OID) or has other columns. Their clients get 409.
pub async fn check_tables(engine: &Arc<Engine>) {
    let mut shapes_by_table: HashMap<RelationName, Vec<Arc<Shape>>> = HashMap::new();
    for shape in engine.registry.all() {
        shapes_by_table.entry(shape.definition.table.name.clone()).or_default().push(shape);
    }
    for (name, shapes) in shapes_by_table {
        let current = match engine.lookup_table(&name).await {
            Ok(table) => Some(table),
            Err(LookupError::NotFound(_)) => None,
            Err(LookupError::Postgres(error)) => {
                // Postgres is unreachable, so no other table can be checked now either. The
                // next check tries again.
                tracing::warn!(%error, table = %name, "table check failed");
                return;
            }
        };
        for shape in shapes {
            if let Some(reason) = staleness(&shape.definition.table, current.as_ref()) {
                tracing::warn!(handle = %shape.handle, table = %name, reason, "removing a shape whose table changed");
                engine.remove_shape(&shape, reason).await;
            }
        }
    }
}

/// Returns why a shape built on `known` can no longer be served, given the table now named
/// the same (`None` when there is none).
fn staleness(known: &TableInfo, current: Option<&TableInfo>) -> Option<&'static str> {
    match current {
        None => Some("the table no longer exists"),
        Some(table) if table.oid != known.oid => Some("the table was dropped and created again"),
        Some(table) if table.columns != known.columns => Some("the table's columns changed"),
        Some(_) => None,
    }
}
