//! Start-up recovery: shapes whose snapshot finished before the last stop come back with
//! their handles and logs, cut to what the journal records as durable.
//!
//! A shape is dropped instead (its clients then get 409 and resync) when its directory has no
//! metadata (its snapshot never finished), when its table changed or is gone, when its log is
//! shorter than the journal records, or when the slot cannot resume where the shapes stopped:
//! the slot was created just now, or it confirmed more than the journal ever acknowledged
//! (the storage is older than the slot).

use std::collections::HashMap;
use std::path::Path;

use crate::pg::catalog::{self, TableInfo};
use crate::pg::names::RelationName;
use crate::pg::ConnectionSettings;
use crate::position::LogOffset;
use crate::replication::applier::Applier;
use crate::replication::stream::SlotState;
use crate::shape::store::LogIndex;
use crate::shape::{persist, Registry, Shape};
use crate::storage::crashsafe;
use crate::storage::journal::{self, JournalState};
use crate::storage::records::HEADER_BYTES;

/// Restores every usable shape under `shapes_dir` into the registry and the applier.
pub async fn restore_shapes(
    connection: &ConnectionSettings,
    shapes_dir: &Path,
    journal: &JournalState,
    slot: SlotState,
    registry: &Registry,
    applier: &mut Applier,
) {
    let Ok(entries) = std::fs::read_dir(shapes_dir) else {
        return;
    };
    let dirs: Vec<_> = entries.flatten().map(|entry| entry.path()).filter(|path| path.is_dir()).collect();
    if dirs.is_empty() {
        return;
    }
    let slot_lost = slot.created || slot.confirmed.0 > journal.acknowledged;
    if slot_lost {
        tracing::warn!(
            shapes = dirs.len(),
            "the replication slot cannot resume where the stored shapes stopped; discarding them so clients resync"
        );
    }

    let mut tables: HashMap<RelationName, Option<TableInfo>> = HashMap::new();
    let client = crate::pg::connect(connection).await.ok();
    let mut restored = 0usize;
    for dir in dirs {
        let stored = match persist::read(&dir) {
            Ok(stored) if !slot_lost => stored,
            Ok(_) => {
                discard(&dir, "the slot cannot resume");
                continue;
            }
            Err(reason) => {
                discard(&dir, &reason);
                continue;
            }
        };
        let name = stored.definition.table.name.clone();
        if !tables.contains_key(&name) {
            let current = match &client {
                Some(client) => catalog::lookup_table(client, &name).await.ok(),
                None => None,
            };
            tables.insert(name.clone(), current);
        }
        if tables[&name].as_ref() != Some(&*stored.definition.table) {
            discard(&dir, "its table changed or is unavailable");
            continue;
        }

        let log = journal.logs.get(stored.handle.as_str());
        let latest = log.and_then(|log| log.latest).unwrap_or(LogOffset::SNAPSHOT_END);
        let end_position = log.map(|log| log.end_position).filter(|&end| end >= HEADER_BYTES).unwrap_or(HEADER_BYTES);
        let index = LogIndex {
            samples: log.map(|log| log.samples.clone()).unwrap_or_default(),
            chunk_ends: log.map(|log| log.chunk_ends.clone()).unwrap_or_default(),
        };
        let shape = Shape::restore(stored.handle, stored.definition, dir.clone(), stored.snapshot_chunk_ends, latest, end_position, index);
        if let Err(error) = journal::restore_unsynced(&shape.log_path(), log.map_or(&[][..], |log| &log.unsynced)) {
            discard(&dir, &format!("its log cannot be completed from the journal: {error}"));
            continue;
        }
        if let Err(error) = applier.restore(shape.clone(), stored.snapshot) {
            discard(&dir, &format!("its log cannot be opened: {error}"));
            continue;
        }
        registry.insert_restored(shape);
        restored += 1;
    }
    tracing::info!(shapes = restored, "restored shapes");
}

fn discard(dir: &Path, reason: &str) {
    tracing::info!(dir = %dir.display(), reason, "discarding a stored shape");
    if let Err(error) = crashsafe::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), %error, "cannot delete a discarded shape");
    }
}
