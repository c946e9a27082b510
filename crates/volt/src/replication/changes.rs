//! Turning one row change from the stream into a shape's log entries: none, one, or a delete
//! and an insert. This is where a shape's column list and replica mode shape each message.

use pgoutput::{OldTuple, Tuple, Value};

use crate::position::LogOffset;
use crate::shape::messages::{ColumnValue, Entry, Operation, Row};
use crate::shape::{ReplicaMode, Shape};

/// A row change as received, its tuples turned into rows once for all shapes.
#[derive(Debug)]
pub enum Change {
    Insert { new: Row },
    /// `old` is the whole old row under REPLICA IDENTITY FULL, only its key under the
    /// default identity when the key changed, and absent otherwise.
    Update { old: Option<Row>, old_is_full: bool, new: Row },
    Delete { old: Row, old_is_full: bool },
}

impl Change {
    pub fn insert(new: &Tuple) -> Self {
        Change::Insert { new: row_from_tuple(new) }
    }

    pub fn update(old: Option<&OldTuple>, new: &Tuple) -> Self {
        let mut new = row_from_tuple(new);
        let old_is_full = matches!(old, Some(OldTuple::Full(_)));
        let old = old.map(|(OldTuple::Full(tuple) | OldTuple::Key(tuple))| row_from_tuple(tuple));
        if let (Some(old), true) = (&old, old_is_full) {
            // An unchanged out-of-line value is not sent again; the whole old row has it.
            for (value, previous) in new.iter_mut().zip(old) {
                if *value == ColumnValue::Unknown {
                    *value = previous.clone();
                }
            }
        }
        Change::Update { old, old_is_full, new }
    }

    pub fn delete(old: &OldTuple) -> Self {
        let (OldTuple::Full(tuple) | OldTuple::Key(tuple)) = old;
        Change::Delete { old: row_from_tuple(tuple), old_is_full: matches!(old, OldTuple::Full(_)) }
    }

    /// Returns the rows that decide which shapes the change concerns.
    pub fn rows(&self) -> Vec<&Row> {
        match self {
            Change::Insert { new } => vec![new],
            Change::Update { old: Some(old), new, .. } => vec![new, old],
            Change::Update { old: None, new, .. } => vec![new],
            Change::Delete { old, .. } => vec![old],
        }
    }
}

fn row_from_tuple(tuple: &Tuple) -> Row {
    tuple
        .0
        .iter()
        .map(|value| match value {
            Value::Null => ColumnValue::Null,
            Value::UnchangedToast => ColumnValue::Unknown,
            Value::Text(bytes) | Value::Binary(bytes) => ColumnValue::Text(bytes.clone()),
        })
        .collect()
}

/// Builds the entries `change` adds to `shape`'s log at `offset`. An error means the change cannot
/// be applied faithfully, and the caller removes the shape.
pub fn entries_for_change(shape: &Shape, change: &Change, offset: LogOffset) -> Result<Vec<Entry>, &'static str> {
    let builder = EntryBuilder { shape };
    let column_count = shape.definition.table.columns.len();
    if change.rows().iter().any(|row| row.len() != column_count) {
        return Err("a change has the wrong number of columns");
    }
    match change {
        Change::Insert { new } => {
            if !builder.contains(new)? {
                return Ok(Vec::new());
            }
            Ok(vec![builder.insert(offset, new, None)?])
        }
        Change::Delete { old, old_is_full } => {
            // Without the whole old row a filtered shape cannot tell whether it had the row.
            if *old_is_full && !builder.contains(old)? {
                return Ok(Vec::new());
            }
            Ok(vec![builder.delete(offset, old, None)?])
        }
        Change::Update { old, old_is_full, new } => builder.update(offset, old.as_ref(), *old_is_full, new),
    }
}

struct EntryBuilder<'a> {
    shape: &'a Shape,
}

impl EntryBuilder<'_> {
    /// True when the row belongs to the shape: its filter is true for it. NULL and evaluation
    /// errors mean the row is not in the shape, as a failing row is never in a query's result.
    fn contains(&self, row: &Row) -> Result<bool, &'static str> {
        let Some(filter) = &self.shape.definition.filter else {
            return Ok(true);
        };
        let filter = &filter.filter;
        if filter.referenced_columns().iter().any(|&index| row[index] == ColumnValue::Unknown) {
            return Err("a value Postgres did not send decides the shape's filter");
        }
        let texts: Vec<Option<&str>> = row
            .iter()
            .map(|value| match value {
                ColumnValue::Text(bytes) => std::str::from_utf8(bytes).ok(),
                ColumnValue::Null | ColumnValue::Unknown => None,
            })
            .collect();
        Ok(matches!(filter.matches(&texts), Ok(Some(true))))
    }

    fn key(&self, row: &Row) -> Result<String, &'static str> {
        self.shape.encoder.row_key(row).ok_or("a changed row lacks a key value")
    }

    fn key_values(&self, row: &Row) -> Vec<(usize, ColumnValue)> {
        self.shape.definition.table.key_columns.iter().map(|&index| (index, row[index].clone())).collect()
    }

    fn selected_values(&self, row: &Row) -> Vec<(usize, ColumnValue)> {
        self.shape.definition.selected.iter().map(|&index| (index, row[index].clone())).collect()
    }

    fn insert(&self, offset: LogOffset, row: &Row, key_change_from: Option<String>) -> Result<Entry, &'static str> {
        Ok(Entry {
            offset,
            operation: Operation::Insert,
            key: self.key(row)?,
            value: self.selected_values(row),
            key_change_to: None,
            key_change_from,
            old_value: None,
        })
    }

    fn delete(&self, offset: LogOffset, old_row: &Row, key_change_to: Option<String>) -> Result<Entry, &'static str> {
        let value = match self.shape.definition.replica {
            ReplicaMode::Default => self.key_values(old_row),
            ReplicaMode::Full => self.selected_values(old_row),
        };
        Ok(Entry {
            offset,
            operation: Operation::Delete,
            key: self.key(old_row)?,
            value,
            key_change_to,
            key_change_from: None,
            old_value: None,
        })
    }

    fn update(&self, offset: LogOffset, old_row: Option<&Row>, old_is_full: bool, new_row: &Row) -> Result<Vec<Entry>, &'static str> {
        let new_in = self.contains(new_row)?;
        let old_in = match (old_row, old_is_full) {
            (Some(old_row), true) => self.contains(old_row)?,
            // Only the key is known: membership is judged on the new row.
            _ => new_in,
        };
        let new_key = self.key(new_row)?;
        let old_key = match old_row {
            Some(row) => self.key(row)?,
            None => new_key.clone(),
        };

        match (old_in, new_in) {
            (false, false) => Ok(Vec::new()),
            // The row moved into the shape: clients receive it whole.
            (false, true) => Ok(vec![self.insert(offset, new_row, None)?]),
            // The row moved out of the shape.
            (true, false) => Ok(vec![self.delete(offset, old_row.unwrap_or(new_row), None)?]),
            (true, true) if old_key != new_key => {
                let old_row = old_row.expect("a changed key comes with the old key");
                Ok(vec![
                    self.delete(offset, old_row, Some(new_key.clone()))?,
                    self.insert(LogOffset::new(offset.tx, offset.op + 1), new_row, Some(old_key))?,
                ])
            }
            (true, true) => Ok(self.same_key_update(offset, old_row.filter(|_| old_is_full), new_row, new_key)),
        }
    }

    /// Builds the entry of an update that keeps the row's key. `old_row` is the whole old row when known.
    fn same_key_update(&self, offset: LogOffset, old_row: Option<&Row>, new_row: &Row, key: String) -> Vec<Entry> {
        let definition = &self.shape.definition;
        let key_columns = &definition.table.key_columns;
        let changed: Vec<usize> = definition
            .selected
            .iter()
            .copied()
            .filter(|&index| !key_columns.contains(&index) && new_row[index] != ColumnValue::Unknown)
            .filter(|&index| old_row.is_none_or(|old_row| old_row[index] != new_row[index]))
            .collect();
        if changed.is_empty() && old_row.is_some() {
            return Vec::new();
        }

        let (value, old_value) = match definition.replica {
            ReplicaMode::Default => {
                let mut value = self.key_values(new_row);
                value.extend(changed.iter().map(|&index| (index, new_row[index].clone())));
                value.sort_by_key(|(index, _)| *index);
                (value, None)
            }
            ReplicaMode::Full => {
                let old_value = old_row.map(|old_row| changed.iter().map(|&index| (index, old_row[index].clone())).collect());
                (self.selected_values(new_row), old_value)
            }
        };
        vec![Entry {
            offset,
            operation: Operation::Update,
            key,
            value,
            key_change_to: None,
            key_change_from: None,
            old_value,
        }]
    }
}
