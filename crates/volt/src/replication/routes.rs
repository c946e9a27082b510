//! Which shapes a change on a table may concern, without testing every shape's filter.
//!
//! Shapes whose filter pins a column to constants (`col = 7`, `col IN (…)`, or a conjunction
//! with such a term) are indexed by those constants, so a change is offered only to the
//! shapes indexed under its row's value. Every other shape on the table is offered every change.

use std::collections::HashMap;

use crate::shape::messages::{ColumnValue, Row};

/// Internal number of a shape in the applier.
pub type SinkId = u64;

/// The routing key of a shape: a column index and the constants it is pinned to, as the
/// text Postgres prints for that column's type.
pub type RoutingKey = (usize, Vec<String>);

/// The shapes on one table.
#[derive(Debug, Default)]
pub struct TableRoutes {
    keys: HashMap<SinkId, Option<RoutingKey>>,
    unindexed: Vec<SinkId>,
    indexed: HashMap<usize, HashMap<String, Vec<SinkId>>>,
}

impl TableRoutes {
    pub fn add(&mut self, sink: SinkId, key: Option<RoutingKey>) {
        match &key {
            None => self.unindexed.push(sink),
            Some((column, values)) => {
                let by_value = self.indexed.entry(*column).or_default();
                for value in values {
                    by_value.entry(value.clone()).or_default().push(sink);
                }
            }
        }
        self.keys.insert(sink, key);
    }

    pub fn remove(&mut self, sink: SinkId) {
        match self.keys.remove(&sink) {
            Some(None) => self.unindexed.retain(|&candidate| candidate != sink),
            Some(Some((column, values))) => {
                if let Some(by_value) = self.indexed.get_mut(&column) {
                    for value in values {
                        if let Some(sinks) = by_value.get_mut(&value) {
                            sinks.retain(|&candidate| candidate != sink);
                            if sinks.is_empty() {
                                by_value.remove(&value);
                            }
                        }
                    }
                    if by_value.is_empty() {
                        self.indexed.remove(&column);
                    }
                }
            }
            None => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns every shape on the table.
    pub fn all(&self) -> impl Iterator<Item = SinkId> + '_ {
        self.keys.keys().copied()
    }

    /// Collects into `out` the shapes a change with these rows (the new row, the old row or
    /// both) may concern, each once.
    pub fn candidates(&self, rows: &[&Row], out: &mut Vec<SinkId>) {
        out.clear();
        out.extend_from_slice(&self.unindexed);
        for (column, by_value) in &self.indexed {
            for row in rows {
                let Some(ColumnValue::Text(bytes)) = row.get(*column) else {
                    continue;
                };
                let Ok(text) = std::str::from_utf8(bytes) else {
                    continue;
                };
                if let Some(sinks) = by_value.get(text) {
                    out.extend_from_slice(sinks);
                }
            }
        }
        if rows.len() > 1 || self.indexed.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn row(values: &[&str]) -> Row {
        values.iter().map(|value| ColumnValue::Text(Bytes::copy_from_slice(value.as_bytes()))).collect()
    }

    #[test]
    fn routes_by_pinned_value() {
        let mut routes = TableRoutes::default();
        routes.add(1, Some((1, vec!["7".into()])));
        routes.add(2, Some((1, vec!["8".into(), "9".into()])));
        routes.add(3, None);
        let mut out = Vec::new();

        routes.candidates(&[&row(&["a", "7"])], &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![1, 3]);

        // An update that moves a row from 7 to 9 concerns both shapes.
        routes.candidates(&[&row(&["a", "9"]), &row(&["a", "7"])], &mut out);
        assert_eq!(out, vec![1, 2, 3]);

        routes.remove(2);
        routes.candidates(&[&row(&["a", "9"])], &mut out);
        assert_eq!(out, vec![3]);
        routes.remove(1);
        routes.remove(3);
        assert!(routes.is_empty());
        assert!(routes.indexed.is_empty());
    }
}
