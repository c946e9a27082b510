//! The SQL types a clause can use, with the catalog facts PostgreSQL 15's type resolution
//! needs: each type's category and whether it is the category's preferred type.

use std::fmt;
use std::sync::Arc;

/// A resolved SQL type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Type {
    Bool,
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Text,
    Varchar,
    Bpchar,
    Uuid,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    /// An enum type, by its `pg_type.typname`.
    Enum(Arc<str>),
    /// A column type this crate cannot evaluate, by its `pg_type.typname`. Only `IS [NOT]
    /// NULL` accepts it.
    Unsupported(Arc<str>),
    /// The type of a string literal or parameter before the context gives it one.
    Unknown,
    /// A one-dimensional array of the element type (PostgreSQL does not track dimensions in
    /// the type).
    Array(Box<Type>),
}

/// `pg_type.typcategory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Boolean,
    Numeric,
    String,
    DateTime,
    Timespan,
    User,
    Enum,
    Array,
    Unknown,
    /// Polymorphic pseudo-types of operator and function signatures.
    Pseudo,
}

impl Type {
    /// Maps a `pg_type.typname` to a type; `None` for names this crate does not support.
    pub(crate) fn from_type_name(name: &str) -> Option<Type> {
        Some(match name {
            "bool" => Type::Bool,
            "int2" => Type::Int2,
            "int4" => Type::Int4,
            "int8" => Type::Int8,
            "numeric" => Type::Numeric,
            "float4" => Type::Float4,
            "float8" => Type::Float8,
            "text" => Type::Text,
            "varchar" => Type::Varchar,
            "bpchar" => Type::Bpchar,
            "uuid" => Type::Uuid,
            "date" => Type::Date,
            "time" => Type::Time,
            "timestamp" => Type::Timestamp,
            "timestamptz" => Type::Timestamptz,
            "interval" => Type::Interval,
            _ => return None,
        })
    }

    pub(crate) fn category(&self) -> Category {
        match self {
            Type::Bool => Category::Boolean,
            Type::Int2 | Type::Int4 | Type::Int8 | Type::Numeric | Type::Float4 | Type::Float8 => Category::Numeric,
            Type::Text | Type::Varchar | Type::Bpchar => Category::String,
            Type::Date | Type::Time | Type::Timestamp | Type::Timestamptz => Category::DateTime,
            Type::Interval => Category::Timespan,
            Type::Uuid | Type::Unsupported(_) => Category::User,
            Type::Enum(_) => Category::Enum,
            Type::Array(_) => Category::Array,
            Type::Unknown => Category::Unknown,
        }
    }

    /// `pg_type.typispreferred`.
    pub(crate) fn is_preferred(&self) -> bool {
        matches!(self, Type::Bool | Type::Float8 | Type::Text | Type::Timestamptz | Type::Interval)
    }

    pub(crate) fn is_array(&self) -> bool {
        matches!(self, Type::Array(_))
    }

    pub(crate) fn element(&self) -> Option<&Type> {
        match self {
            Type::Array(element) => Some(element),
            _ => None,
        }
    }

    /// True for the types whose values carry a collation.
    pub(crate) fn is_collatable(&self) -> bool {
        match self {
            Type::Text | Type::Varchar | Type::Bpchar => true,
            Type::Array(element) => element.is_collatable(),
            _ => false,
        }
    }

    pub(crate) fn is_integer(&self) -> bool {
        matches!(self, Type::Int2 | Type::Int4 | Type::Int8)
    }

    /// Returns the name a cast in generated SQL uses (`pg_type.typname`, `[]` for arrays).
    pub(crate) fn cast_name(&self) -> String {
        match self {
            Type::Array(element) => format!("{}[]", element.cast_name()),
            Type::Enum(name) | Type::Unsupported(name) => quote_identifier(name),
            Type::Unknown => "unknown".to_owned(),
            other => other.simple_type_name().to_owned(),
        }
    }

    fn simple_type_name(&self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int2 => "int2",
            Type::Int4 => "int4",
            Type::Int8 => "int8",
            Type::Numeric => "numeric",
            Type::Float4 => "float4",
            Type::Float8 => "float8",
            Type::Text => "text",
            Type::Varchar => "varchar",
            Type::Bpchar => "bpchar",
            Type::Uuid => "uuid",
            Type::Date => "date",
            Type::Time => "time",
            Type::Timestamp => "timestamp",
            Type::Timestamptz => "timestamptz",
            Type::Interval => "interval",
            Type::Enum(_) | Type::Unsupported(_) | Type::Unknown | Type::Array(_) => "",
        }
    }

    /// Integer bounds of an integer type.
    pub(crate) fn integer_range(&self) -> Option<(i64, i64)> {
        match self {
            Type::Int2 => Some((i16::MIN as i64, i16::MAX as i64)),
            Type::Int4 => Some((i32::MIN as i64, i32::MAX as i64)),
            Type::Int8 => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }

    /// Returns the word PostgreSQL's integer errors use ("integer out of range").
    pub(crate) fn integer_label(&self) -> &'static str {
        match self {
            Type::Int2 => "smallint",
            Type::Int8 => "bigint",
            _ => "integer",
        }
    }
}

/// Formats like PostgreSQL's `format_type`, the names its error messages use.
impl fmt::Display for Type {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Type::Bool => "boolean",
            Type::Int2 => "smallint",
            Type::Int4 => "integer",
            Type::Int8 => "bigint",
            Type::Numeric => "numeric",
            Type::Float4 => "real",
            Type::Float8 => "double precision",
            Type::Text => "text",
            Type::Varchar => "character varying",
            Type::Bpchar => "character",
            Type::Uuid => "uuid",
            Type::Date => "date",
            Type::Time => "time without time zone",
            Type::Timestamp => "timestamp without time zone",
            Type::Timestamptz => "timestamp with time zone",
            Type::Interval => "interval",
            Type::Unknown => "unknown",
            Type::Enum(name) | Type::Unsupported(name) => name,
            Type::Array(element) => return write!(formatter, "{element}[]"),
        };
        formatter.write_str(name)
    }
}

/// Quotes an identifier for SQL text: always in double quotes, inner quotes doubled.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal with standard-conforming strings: single quotes doubled,
/// backslashes literal.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
