//! Catalog reads about a table: its columns, their types and its
//! primary key, and the schema description sent to clients in `electric-schema`.

use serde_json::{json, Map, Value};
use tokio_postgres::Client;

use super::names::RelationName;

/// A column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub type_oid: u32,
    /// `pg_type.typname`; for an array, the element type's name.
    pub type_name: String,
    pub is_array: bool,
    /// Declared array dimensions (`attndims`).
    pub dimensions: i32,
    /// Type modifier (`atttypmod`), −1 when there is none.
    pub type_modifier: i32,
    pub not_null: bool,
    /// True for an enum type (or an array of one).
    pub is_enum: bool,
    /// Collation name for collatable types, `None` otherwise.
    pub collation: Option<String>,
}

/// A table that shapes can be built on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableInfo {
    pub oid: u32,
    pub name: RelationName,
    /// Columns in `attnum` order.
    pub columns: Vec<ColumnInfo>,
    /// Indices into `columns` of the primary key, in key order. A table without a primary key
    /// uses all its columns, in `attnum` order.
    pub key_columns: Vec<usize>,
    /// True when `key_columns` comes from a primary key rather than from all columns.
    pub has_primary_key: bool,
    /// True for a partitioned table, whose rows live in its partitions.
    pub partitioned: bool,
    /// The database's default collation (`datcollate`), which decides text ordering for
    /// columns without a collation of their own.
    #[serde(default = "default_collation")]
    pub database_collation: String,
    /// Names of generated columns, in `attnum` order. They are not in `columns` because
    /// Postgres 15 does not send them in the replication stream.
    #[serde(default)]
    pub generated_columns: Vec<String>,
}

fn default_collation() -> String {
    "C".to_owned()
}

impl TableInfo {
    /// Describes the columns for checking WHERE clauses.
    pub fn filter_columns(&self) -> Vec<volt_filter::ColumnSpec> {
        self.columns
            .iter()
            .map(|column| volt_filter::ColumnSpec {
                name: column.name.clone(),
                type_name: column.type_name.clone(),
                is_array: column.is_array,
                is_enum: column.is_enum,
                collation: column.collation.clone(),
            })
            .collect()
    }

    /// Compiles a WHERE clause against this table's columns.
    pub fn compile_filter(
        &self,
        where_text: &str,
        params: &std::collections::BTreeMap<usize, String>,
    ) -> Result<volt_filter::Filter, volt_filter::FilterError> {
        let options = volt_filter::CompileOptions { default_collation: self.database_collation.clone() };
        volt_filter::compile_with_options(where_text, params, &self.filter_columns(), &options)
    }

    /// Builds the `electric-schema` header value for the `selected` columns (indices into
    /// `columns`): each column's type, key position and modifiers.
    pub fn schema_json(&self, selected: &[usize]) -> String {
        let mut schema = Map::new();
        for &index in selected {
            let column = &self.columns[index];
            let pk_index = if self.has_primary_key {
                self.key_columns.iter().position(|&key| key == index)
            } else {
                None
            };
            schema.insert(column.name.clone(), column_schema(column, pk_index));
        }
        Value::Object(schema).to_string()
    }
}

fn column_schema(column: &ColumnInfo, pk_index: Option<usize>) -> Value {
    let mut description = Map::new();
    description.insert("type".into(), json!(column.type_name));
    if column.is_array {
        description.insert("dims".into(), json!(column.dimensions.max(1)));
    }
    if let Some(position) = pk_index {
        description.insert("pk_index".into(), json!(position));
    }
    if column.not_null || pk_index.is_some() {
        description.insert("not_null".into(), json!(true));
    }
    for (key, value) in type_modifier_fields(&column.type_name, column.type_modifier) {
        description.insert(key.into(), value);
    }
    Value::Object(description)
}

/// Turns a type modifier into the fields clients read: lengths, precision and scale.
fn type_modifier_fields(type_name: &str, modifier: i32) -> Vec<(&'static str, Value)> {
    // Character types store the declared length plus the 4-byte varlena header.
    const VARHDRSZ: i32 = 4;
    match type_name {
        "varchar" | "text" if modifier > 0 => vec![("max_length", json!(modifier - VARHDRSZ))],
        "bpchar" if modifier > 0 => vec![("length", json!(modifier - VARHDRSZ))],
        "bit" | "varbit" if modifier > 0 => vec![("length", json!(modifier))],
        "time" | "timetz" | "timestamp" | "timestamptz" | "date" if modifier >= 0 => {
            vec![("precision", json!(modifier))]
        }
        "interval" if modifier >= 0 => interval_fields(modifier),
        "numeric" if modifier >= VARHDRSZ => {
            let packed = modifier - VARHDRSZ;
            vec![("precision", json!(packed >> 16)), ("scale", json!(packed & 0xFFFF))]
        }
        _ if modifier >= 0 => vec![("type_mod", json!(modifier))],
        _ => Vec::new(),
    }
}

/// Interval modifiers pack a field mask in the high 16 bits and a precision in the low 16.
fn interval_fields(modifier: i32) -> Vec<(&'static str, Value)> {
    const FULL_RANGE: i32 = 0x7FFF;
    const FULL_PRECISION: i32 = 0xFFFF;
    let range = (modifier >> 16) & 0x7FFF;
    let precision = modifier & 0xFFFF;
    let mut fields = Vec::new();
    if range != FULL_RANGE {
        // Bit positions of each field in Postgres's interval range mask.
        let (year, month, day, hour, minute, second) = (1 << 2, 1 << 1, 1 << 3, 1 << 10, 1 << 11, 1 << 12);
        let name = match range {
            r if r == year => Some("YEAR"),
            r if r == month => Some("MONTH"),
            r if r == day => Some("DAY"),
            r if r == hour => Some("HOUR"),
            r if r == minute => Some("MINUTE"),
            r if r == second => Some("SECOND"),
            r if r == year | month => Some("YEAR TO MONTH"),
            r if r == day | hour => Some("DAY TO HOUR"),
            r if r == day | hour | minute => Some("DAY TO MINUTE"),
            r if r == day | hour | minute | second => Some("DAY TO SECOND"),
            r if r == hour | minute => Some("HOUR TO MINUTE"),
            r if r == hour | minute | second => Some("HOUR TO SECOND"),
            r if r == minute | second => Some("MINUTE TO SECOND"),
            _ => None,
        };
        if let Some(name) = name {
            fields.push(("fields", json!(name)));
        }
    }
    if precision != FULL_PRECISION {
        fields.push(("precision", json!(precision)));
    }
    fields
}

/// Error from looking up a table.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("table {0} does not exist")]
    NotFound(RelationName),
    #[error("catalog query failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// Reads a table's description from the catalog. Only ordinary and partitioned tables count.
pub async fn lookup_table(client: &Client, name: &RelationName) -> Result<TableInfo, LookupError> {
    let row = client
        .query_opt(
            "SELECT c.oid, c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&name.schema, &name.table],
        )
        .await?;
    let Some(row) = row else {
        return Err(LookupError::NotFound(name.clone()));
    };
    let oid: u32 = row.get(0);
    let partitioned: bool = row.get(1);
    let database_collation: String =
        client.query_one("SELECT datcollate::text FROM pg_database WHERE datname = current_database()", &[]).await?.get(0);

    let generated_columns: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated <> '' ORDER BY attnum",
            &[&oid],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();

    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, \
                    CASE WHEN et.oid IS NOT NULL THEN et.typname ELSE t.typname END::text, \
                    et.oid IS NOT NULL, a.attndims, a.atttypmod, a.attnotnull, \
                    COALESCE(array_position(pk.conkey, a.attnum), 0), \
                    COALESCE(et.typtype, t.typtype) = 'e', co.collname::text \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation \
             LEFT JOIN pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p' \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&oid],
        )
        .await?;

    let mut columns = Vec::with_capacity(rows.len());
    let mut key_positions = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        columns.push(ColumnInfo {
            name: row.get(0),
            type_oid: row.get(1),
            type_name: row.get(2),
            is_array: row.get(3),
            dimensions: row.get(4),
            type_modifier: row.get(5),
            not_null: row.get(6),
            is_enum: row.get(8),
            collation: row.get(9),
        });
        let key_position: i32 = row.get(7);
        if key_position > 0 {
            key_positions.push((key_position, index));
        }
    }
    key_positions.sort_unstable();
    let has_primary_key = !key_positions.is_empty();
    let key_columns = if has_primary_key {
        key_positions.into_iter().map(|(_, index)| index).collect()
    } else {
        (0..columns.len()).collect()
    };
    Ok(TableInfo {
        oid,
        name: name.clone(),
        columns,
        key_columns,
        has_primary_key,
        partitioned,
        database_collation,
        generated_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_name: &str, modifier: i32) -> ColumnInfo {
        ColumnInfo {
            name: name.to_owned(),
            type_oid: 0,
            type_name: type_name.to_owned(),
            is_array: false,
            dimensions: 0,
            type_modifier: modifier,
            not_null: false,
            is_enum: false,
            collation: None,
        }
    }

    #[test]
    fn schema_header_fields() {
        let mut tags = column("tags", "text", -1);
        tags.is_array = true;
        tags.dimensions = 1;
        let table = TableInfo {
            oid: 1,
            name: RelationName { schema: "public".into(), table: "t".into() },
            columns: vec![column("id", "int8", -1), column("title", "varchar", 124), column("total", "numeric", (10 << 16 | 2) + 4), tags],
            key_columns: vec![0],
            has_primary_key: true,
            partitioned: false,
            database_collation: "C".to_owned(),
            generated_columns: Vec::new(),
        };
        let schema: Value = serde_json::from_str(&table.schema_json(&[0, 1, 2, 3])).unwrap();
        assert_eq!(schema["id"], json!({"type": "int8", "pk_index": 0, "not_null": true}));
        assert_eq!(schema["title"], json!({"type": "varchar", "max_length": 120}));
        assert_eq!(schema["total"], json!({"type": "numeric", "precision": 10, "scale": 2}));
        assert_eq!(schema["tags"], json!({"type": "text", "dims": 1}));
    }

    #[test]
    fn interval_modifier_fields() {
        let day_to_second = ((8 | 1024 | 2048 | 4096) << 16) | 3;
        assert_eq!(type_modifier_fields("interval", day_to_second), vec![("fields", json!("DAY TO SECOND")), ("precision", json!(3))]);
        let full = (0x7FFF << 16) | 0xFFFF;
        assert!(type_modifier_fields("interval", full).is_empty());
    }
}
