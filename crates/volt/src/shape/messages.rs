//! JSON encoding of the Shape API's messages. Snapshot rows and log entries are built here
//! from the same row representation, so a row has the same key and values on both paths.

use bytes::Bytes;

use super::ShapeDefinition;
use crate::pg::visibility::PgSnapshot;
use crate::position::LogOffset;

/// One row: each column's text value in the table's column order, `None` for NULL. A column
/// may also be unknown (an unchanged out-of-line value that Postgres did not send).
pub type Row = Vec<ColumnValue>;

/// A column of a row as Volt received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    Null,
    Text(Bytes),
    /// Not sent by Postgres because it was stored out of line and did not change.
    Unknown,
}

impl ColumnValue {
    fn text(&self) -> Option<&[u8]> {
        match self {
            ColumnValue::Text(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// Pieces of JSON that depend only on the table, encoded once per shape.
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    /// `"schema"."table"` as the start of every row key.
    key_prefix: String,
    /// `["schema","table"]`, JSON-encoded.
    relation_json: String,
    /// `"column":` for each column of the table, JSON-encoded.
    column_prefixes: Vec<String>,
    /// Whether clients receive each column of the table.
    selected: Vec<bool>,
    key_columns: Vec<usize>,
}

/// Kind of change a log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A change to one row, ready to be encoded once its transaction's last entry is known.
#[derive(Debug, Clone)]
pub struct Entry {
    pub offset: LogOffset,
    pub operation: Operation,
    pub key: String,
    /// The columns to send, as indices into the row, with their values.
    pub value: Vec<(usize, ColumnValue)>,
    pub key_change_to: Option<String>,
    pub key_change_from: Option<String>,
    /// Old values of the changed columns, sent with updates of `replica=full` shapes.
    pub old_value: Option<Vec<(usize, ColumnValue)>>,
}

impl MessageEncoder {
    pub fn new(definition: &ShapeDefinition) -> Self {
        let table = &definition.table;
        let key_prefix = format!(
            "\"{}\".\"{}\"",
            table.name.schema.replace('"', "\"\""),
            table.name.table.replace('"', "\"\"")
        );
        let relation_json = serde_json::to_string(&[&table.name.schema, &table.name.table]).expect("strings encode");
        let column_prefixes = table
            .columns
            .iter()
            .map(|column| format!("{}:", serde_json::to_string(&column.name).expect("strings encode")))
            .collect();
        let selected = (0..table.columns.len()).map(|index| definition.is_selected(index)).collect();
        MessageEncoder { key_prefix, relation_json, column_prefixes, selected, key_columns: table.key_columns.clone() }
    }

    /// Builds the row key: `"schema"."table"` then `/"value"` per key column, with `/` inside
    /// values doubled and NULL written as `_`. `None` when a key value is unknown.
    pub fn row_key(&self, row: &[ColumnValue]) -> Option<String> {
        let mut key = self.key_prefix.clone();
        for &column in &self.key_columns {
            match row.get(column)? {
                ColumnValue::Null => key.push_str("/_"),
                ColumnValue::Text(bytes) => {
                    key.push_str("/\"");
                    let text = String::from_utf8_lossy(bytes);
                    if text.contains('/') {
                        key.push_str(&text.replace('/', "//"));
                    } else {
                        key.push_str(&text);
                    }
                    key.push('"');
                }
                ColumnValue::Unknown => return None,
            }
        }
        Some(key)
    }

    /// Encodes a snapshot row (an insert without log position).
    pub fn snapshot_row(&self, key: &str, row: &[ColumnValue], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"key\":");
        write_json_string(out, key.as_bytes());
        out.extend_from_slice(b",\"value\":");
        self.write_values(out, row.iter().enumerate());
        out.extend_from_slice(b",\"headers\":{\"operation\":\"insert\",\"relation\":");
        out.extend_from_slice(self.relation_json.as_bytes());
        out.extend_from_slice(b"}}");
    }

    /// Encodes a log entry. `last` marks the transaction's last entry for this shape.
    pub fn log_entry(&self, entry: &Entry, xid: u32, last: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"key\":");
        write_json_string(out, entry.key.as_bytes());
        out.extend_from_slice(b",\"value\":");
        self.write_values(out, entry.value.iter().map(|(index, value)| (*index, value)));
        out.extend_from_slice(b",\"headers\":{\"operation\":\"");
        out.extend_from_slice(entry.operation.as_str().as_bytes());
        out.extend_from_slice(b"\",\"txids\":[");
        out.extend_from_slice(xid.to_string().as_bytes());
        out.extend_from_slice(b"],\"relation\":");
        out.extend_from_slice(self.relation_json.as_bytes());
        out.extend_from_slice(b",\"lsn\":\"");
        out.extend_from_slice(entry.offset.tx.to_string().as_bytes());
        out.extend_from_slice(b"\",\"op_position\":");
        out.extend_from_slice(entry.offset.op.to_string().as_bytes());
        if let Some(key) = &entry.key_change_to {
            out.extend_from_slice(b",\"key_change_to\":");
            write_json_string(out, key.as_bytes());
        }
        if let Some(key) = &entry.key_change_from {
            out.extend_from_slice(b",\"key_change_from\":");
            write_json_string(out, key.as_bytes());
        }
        if last {
            out.extend_from_slice(b",\"last\":true");
        }
        out.push(b'}');
        if let Some(old_value) = &entry.old_value {
            out.extend_from_slice(b",\"old_value\":");
            self.write_values(out, old_value.iter().map(|(index, value)| (*index, value)));
        }
        out.push(b'}');
    }

    fn write_values<'a>(&self, out: &mut Vec<u8>, values: impl Iterator<Item = (usize, &'a ColumnValue)>) {
        out.push(b'{');
        let mut first = true;
        for (index, value) in values {
            if matches!(value, ColumnValue::Unknown) || !self.selected[index] {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(self.column_prefixes[index].as_bytes());
            match value.text() {
                Some(text) => write_json_string(out, text),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
    }
}

/// Encodes the `snapshot-end` control message that closes a shape's snapshot.
pub fn snapshot_end(snapshot: &PgSnapshot) -> Vec<u8> {
    let xip: Vec<String> = snapshot.xip.iter().map(u64::to_string).collect();
    serde_json::json!({"headers": {
        "control": "snapshot-end",
        "xmin": snapshot.xmin.to_string(),
        "xmax": snapshot.xmax.to_string(),
        "xip_list": xip,
    }})
    .to_string()
    .into_bytes()
}

/// Encodes the `up-to-date` control message.
pub fn up_to_date(global_last_seen_lsn: u64) -> Vec<u8> {
    format!("{{\"headers\":{{\"control\":\"up-to-date\",\"global_last_seen_lsn\":\"{global_last_seen_lsn}\"}}}}").into_bytes()
}

/// The message layout a response uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageFormat {
    /// The current dialect: `txids`, `lsn` and `op_position` headers, no `offset` field.
    Current,
    /// The 2024 dialect: an `offset` field and a `txid` header on every data message.
    Legacy,
}

/// The `up-to-date` message of the 2024 dialect, which has no LSN.
pub const LEGACY_UP_TO_DATE: &[u8] = br#"{"headers":{"control":"up-to-date"}}"#;

/// Appends a stored message to a JSON array being built, in the requested format.
/// `offset` is the record's offset; snapshot rows are at `0_0` in the 2024 dialect.
pub fn append_message(out: &mut Vec<u8>, json: &[u8], offset: LogOffset, format: MessageFormat) {
    match format {
        MessageFormat::Current => out.extend_from_slice(json),
        MessageFormat::Legacy => append_legacy_message(out, json, offset),
    }
}

/// Rewrites a stored message into the 2024 layout. Control messages (`snapshot-end`) have no
/// counterpart there and are left out, together with the separator the caller added for them.
fn append_legacy_message(out: &mut Vec<u8>, json: &[u8], offset: LogOffset) {
    let drop_separator = |out: &mut Vec<u8>| out.truncate(out.len() - usize::from(out.last() == Some(&b',')));
    // NOTE: this re-parses each message; the 2024 dialect is served for compatibility, not
    // for speed, so the stored layout stays the current one.
    let Ok(serde_json::Value::Object(mut message)) = serde_json::from_slice::<serde_json::Value>(json) else {
        tracing::error!(%offset, "a stored message is not a JSON object; leaving it out of a 2024 response");
        drop_separator(out);
        return;
    };
    let Some(serde_json::Value::Object(headers)) = message.get_mut("headers") else {
        tracing::error!(%offset, "a stored message has no headers object; leaving it out of a 2024 response");
        drop_separator(out);
        return;
    };
    if headers.contains_key("control") {
        drop_separator(out);
        return;
    }
    let txid = headers.remove("txids").and_then(|txids| txids.get(0).cloned());
    headers.remove("lsn");
    headers.remove("op_position");
    headers.remove("last");
    let offset_text = if offset.is_snapshot() {
        headers.remove("relation");
        "0_0".to_owned()
    } else {
        offset.to_string()
    };
    if let Some(txid) = txid {
        headers.insert("txid".into(), txid);
    }
    message.insert("offset".into(), serde_json::Value::String(offset_text));
    out.extend_from_slice(serde_json::Value::Object(message).to_string().as_bytes());
}

/// The body of a 409 response.
pub const MUST_REFETCH_BODY: &str = r#"[{"headers":{"control":"must-refetch"}}]"#;

/// Writes `text` (UTF-8; invalid sequences are replaced) as a JSON string.
pub fn write_json_string(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let text = String::from_utf8_lossy(text);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(byte >> 4) as usize], HEX[(byte & 0xF) as usize]]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::catalog::{ColumnInfo, TableInfo};
    use crate::pg::names::RelationName;
    use std::sync::Arc;

    fn table() -> TableInfo {
        let column = |name: &str| ColumnInfo {
            name: name.to_owned(),
            type_oid: 25,
            type_name: "text".to_owned(),
            is_array: false,
            dimensions: 0,
            type_modifier: -1,
            not_null: false,
            is_enum: false,
            collation: None,
        };
        TableInfo {
            oid: 1,
            name: RelationName { schema: "public".into(), table: "items".into() },
            columns: vec![column("id"), column("title")],
            key_columns: vec![0],
            has_primary_key: true,
            partitioned: false,
            database_collation: "C".to_owned(),
            generated_columns: Vec::new(),
        }
    }

    fn text(value: &str) -> ColumnValue {
        ColumnValue::Text(Bytes::copy_from_slice(value.as_bytes()))
    }

    #[test]
    fn key_doubles_slashes() {
        let encoder = MessageEncoder::new(&ShapeDefinition::whole_table(Arc::new(table())));
        assert_eq!(encoder.row_key(&[text("abc/d"), ColumnValue::Null]).unwrap(), r#""public"."items"/"abc//d""#);
        assert_eq!(encoder.row_key(&[ColumnValue::Null, ColumnValue::Null]).unwrap(), r#""public"."items"/_"#);
        assert!(encoder.row_key(&[ColumnValue::Unknown, ColumnValue::Null]).is_none());
    }

    #[test]
    fn snapshot_row_json() {
        let encoder = MessageEncoder::new(&ShapeDefinition::whole_table(Arc::new(table())));
        let row = vec![text("1"), text("a \"quoted\"\n\u{1}")];
        let mut out = Vec::new();
        encoder.snapshot_row(&encoder.row_key(&row).unwrap(), &row, &mut out);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"key": "\"public\".\"items\"/\"1\"", "value": {"id": "1", "title": "a \"quoted\"\n\u{1}"},
                "headers": {"operation": "insert", "relation": ["public", "items"]}})
        );
    }

    fn legacy_array(messages: &[(&str, LogOffset)]) -> serde_json::Value {
        let mut out = b"[".to_vec();
        for (json, offset) in messages {
            crate::shape::store::push_separator(&mut out);
            append_message(&mut out, json.as_bytes(), *offset, MessageFormat::Legacy);
        }
        out.push(b']');
        serde_json::from_slice(&out).expect("a JSON array")
    }

    #[test]
    fn legacy_layout_of_snapshot_rows_and_log_entries() {
        let row = r#"{"key":"k1","value":{"id":"1","title":null},"headers":{"operation":"insert","relation":["public","items"]}}"#;
        let snapshot_end = r#"{"headers":{"control":"snapshot-end","xmin":"1","xmax":"2","xip_list":[]}}"#;
        let change = r#"{"key":"k2","value":{"id":"2"},"headers":{"operation":"delete","txids":[771],"relation":["public","items"],"lsn":"27440064","op_position":2,"key_change_to":"k3","last":true}}"#;
        let array = legacy_array(&[(row, LogOffset::snapshot_chunk(0)), (snapshot_end, LogOffset::snapshot_chunk(0)), (change, LogOffset::new(27440064, 2))]);
        assert_eq!(
            array,
            serde_json::json!([
                {"key": "k1", "value": {"id": "1", "title": null}, "headers": {"operation": "insert"}, "offset": "0_0"},
                {"key": "k2", "value": {"id": "2"}, "offset": "27440064_2",
                    "headers": {"operation": "delete", "txid": 771, "relation": ["public", "items"], "key_change_to": "k3"}},
            ])
        );
    }

    #[test]
    fn legacy_layout_leaves_out_control_and_broken_messages() {
        let snapshot_end = r#"{"headers":{"control":"snapshot-end","xmin":"1","xmax":"2","xip_list":[]}}"#;
        let row = r#"{"key":"k1","value":{"id":"1"},"headers":{"operation":"insert"}}"#;
        let array = legacy_array(&[(row, LogOffset::snapshot_chunk(0)), ("not json", LogOffset::snapshot_chunk(0)), (snapshot_end, LogOffset::snapshot_chunk(0))]);
        assert_eq!(array.as_array().map(Vec::len), Some(1));
        assert_eq!(legacy_array(&[(snapshot_end, LogOffset::snapshot_chunk(0))]), serde_json::json!([]));
    }

    #[test]
    fn log_entry_json() {
        let encoder = MessageEncoder::new(&ShapeDefinition::whole_table(Arc::new(table())));
        let entry = Entry {
            offset: LogOffset::new(27440064, 2),
            operation: Operation::Update,
            key: "k".into(),
            value: vec![(0, text("2")), (1, ColumnValue::Null)],
            key_change_to: None,
            key_change_from: None,
            old_value: None,
        };
        let mut out = Vec::new();
        encoder.log_entry(&entry, 771, true, &mut out);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"key": "k", "value": {"id": "2", "title": null},
                "headers": {"operation": "update", "txids": [771], "relation": ["public", "items"],
                    "lsn": "27440064", "op_position": 2, "last": true}})
        );
    }
}
