//! Turning one row change from the stream into a shape's log entries: none, one, or a delete
//! and an insert. This is where a shape's column list and replica mode shape each message.

use pgoutput::{OldTuple, Tuple, Value};

use crate::position::LogOffset;
use crate::shape::messages::{ColumnValue, Entry, Operation, Row};
use crate::shape::{ReplicaMode, Shape};

/// A row change as received.
#[derive(Debug)]
pub enum Change {
    Insert(Tuple),
    Update(Option<OldTuple>, Tuple),
    Delete(OldTuple),
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

/// The entries `change` adds to `shape`'s log at `offset`. An error means the change cannot
/// be applied faithfully, and the caller removes the shape.
pub fn entries_for_change(shape: &Shape, change: &Change, offset: LogOffset) -> Result<Vec<Entry>, &'static str> {
    let builder = EntryBuilder { shape, column_count: shape.definition.table.columns.len() };
    match change {
        Change::Insert(tuple) => {
            let row = builder.row(tuple)?;
            if !builder.contains(&row)? {
                return Ok(Vec::new());
            }
            Ok(vec![builder.insert(offset, &row, None)?])
        }
        Change::Delete(old) => {
            let (OldTuple::Full(tuple) | OldTuple::Key(tuple)) = old;
            let row = builder.row(tuple)?;
            let old_is_full = matches!(old, OldTuple::Full(_));
            // Without the whole old row a filtered shape cannot tell whether it had the row.
            if old_is_full && !builder.contains(&row)? {
                return Ok(Vec::new());
            }
            Ok(vec![builder.delete(offset, &row, None)?])
        }
        Change::Update(old, new) => builder.update(offset, old.as_ref(), new),
    }
}

struct EntryBuilder<'a> {
    shape: &'a Shape,
    column_count: usize,
}

impl EntryBuilder<'_> {
    fn row(&self, tuple: &Tuple) -> Result<Row, &'static str> {
        let row = row_from_tuple(tuple);
        if row.len() != self.column_count {
            return Err("a change has the wrong number of columns");
        }
        Ok(row)
    }

    /// True when the row belongs to the shape.
    fn contains(&self, _row: &Row) -> Result<bool, &'static str> {
        Ok(true)
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

    fn update(&self, offset: LogOffset, old: Option<&OldTuple>, new: &Tuple) -> Result<Vec<Entry>, &'static str> {
        let mut new_row = self.row(new)?;
        let old_is_full = matches!(old, Some(OldTuple::Full(_)));
        let old_row = match old {
            Some(OldTuple::Full(tuple)) | Some(OldTuple::Key(tuple)) => Some(self.row(tuple)?),
            None => None,
        };
        if let (Some(old_row), true) = (&old_row, old_is_full) {
            // An unchanged out-of-line value is not sent again; the whole old row has it.
            for (value, previous) in new_row.iter_mut().zip(old_row) {
                if *value == ColumnValue::Unknown {
                    *value = previous.clone();
                }
            }
        }

        let new_in = self.contains(&new_row)?;
        let old_in = match (&old_row, old_is_full) {
            (Some(old_row), true) => self.contains(old_row)?,
            // Only the key is known: membership is judged on the new row.
            _ => new_in,
        };
        let new_key = self.key(&new_row)?;
        let old_key = match &old_row {
            Some(row) => self.key(row)?,
            None => new_key.clone(),
        };

        match (old_in, new_in) {
            (false, false) => Ok(Vec::new()),
            // The row moved into the shape: clients receive it whole.
            (false, true) => Ok(vec![self.insert(offset, &new_row, None)?]),
            // The row moved out of the shape.
            (true, false) => {
                let old_row = old_row.as_ref().unwrap_or(&new_row);
                Ok(vec![self.delete(offset, old_row, None)?])
            }
            (true, true) if old_key != new_key => {
                let old_row = old_row.expect("a changed key comes with the old key");
                Ok(vec![
                    self.delete(offset, &old_row, Some(new_key.clone()))?,
                    self.insert(LogOffset::new(offset.tx, offset.op + 1), &new_row, Some(old_key))?,
                ])
            }
            (true, true) => Ok(self.same_key_update(offset, old_row.filter(|_| old_is_full), new_row, new_key)),
        }
    }

    /// An update that keeps the row's key. `old_row` is the whole old row when known.
    fn same_key_update(&self, offset: LogOffset, old_row: Option<Row>, new_row: Row, key: String) -> Vec<Entry> {
        let definition = &self.shape.definition;
        let key_columns = &definition.table.key_columns;
        let changed: Vec<usize> = definition
            .selected
            .iter()
            .copied()
            .filter(|&index| !key_columns.contains(&index) && new_row[index] != ColumnValue::Unknown)
            .filter(|&index| old_row.as_ref().is_none_or(|old_row| old_row[index] != new_row[index]))
            .collect();
        if changed.is_empty() && old_row.is_some() {
            return Vec::new();
        }

        let (value, old_value) = match definition.replica {
            ReplicaMode::Default => {
                let mut value = self.key_values(&new_row);
                value.extend(changed.iter().map(|&index| (index, new_row[index].clone())));
                value.sort_by_key(|(index, _)| *index);
                (value, None)
            }
            ReplicaMode::Full => {
                let old_value = old_row.as_ref().map(|old_row| changed.iter().map(|&index| (index, old_row[index].clone())).collect());
                (self.selected_values(&new_row), old_value)
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
