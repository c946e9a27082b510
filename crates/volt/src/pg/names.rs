//! SQL identifiers: parsing the names clients send and quoting names Volt sends to Postgres.

/// Maximum identifier length Postgres keeps, in bytes (NAMEDATALEN − 1).
const IDENTIFIER_BYTES_MAX: usize = 63;

/// A table named by schema and table, both as stored in the catalog (already case-folded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RelationName {
    pub schema: String,
    pub table: String,
}

impl RelationName {
    /// Returns the name quoted for SQL: `"schema"."table"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_identifier(&self.schema), quote_identifier(&self.table))
    }
}

impl std::fmt::Display for RelationName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.quoted())
    }
}

/// Quotes an identifier for SQL, doubling embedded quotes.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL, doubling embedded single quotes.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Parses a relation name as SQL does: `table` or `schema.table`, each part either unquoted
/// (folded to lower case) or double-quoted (kept as written, `""` standing for `"`). A missing
/// schema means `public`. The error is a message for the client.
pub fn parse_relation(text: &str) -> Result<RelationName, String> {
    let parts = split_outside_quotes(text, '.');
    let mut names = Vec::with_capacity(parts.len());
    if parts.len() > 2 {
        return Err(format!("Invalid relation identifier, too many delimiters: {text}"));
    }
    for part in parts {
        names.push(parse_identifier(part)?);
    }
    let table = names.pop().expect("split returns at least one part");
    let schema = names.pop().unwrap_or_else(|| "public".to_owned());
    Ok(RelationName { schema, table })
}

/// Parses a comma-separated list of identifiers, as in the `columns` parameter.
pub fn parse_identifier_list(text: &str) -> Result<Vec<String>, String> {
    split_outside_quotes(text, ',').into_iter().map(|part| parse_identifier(part.trim())).collect()
}

/// Parses one identifier, quoted or not.
pub fn parse_identifier(text: &str) -> Result<String, String> {
    let name = if let Some(inner) = text.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(format!("Invalid identifier with unescaped quote: {text}"));
        };
        if inner.is_empty() {
            return Err("Invalid zero-length delimited identifier".to_owned());
        }
        if inner.replace("\"\"", "").contains('"') {
            return Err(format!("Invalid identifier with unescaped quote: {text}"));
        }
        inner.replace("\"\"", "\"")
    } else {
        let mut chars = text.chars();
        let valid_start = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
        let valid_rest = chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if !valid_start || !valid_rest {
            return Err(format!("Invalid unquoted identifier contains special characters: {text}"));
        }
        // Postgres folds only ASCII letters of unquoted names.
        text.to_ascii_lowercase()
    };
    if name.len() > IDENTIFIER_BYTES_MAX {
        return Err(format!("Identifier is too long (max length is {IDENTIFIER_BYTES_MAX})"));
    }
    Ok(name)
}

/// Splits `text` at `separator` wherever it is not inside double quotes.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == separator && !in_quotes {
            parts.push(&text[start..index]);
            start = index + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(schema: &str, table: &str) -> RelationName {
        RelationName { schema: schema.to_owned(), table: table.to_owned() }
    }

    #[test]
    fn relation_unquoted_folds_case() {
        assert_eq!(parse_relation("Items"), Ok(relation("public", "items")));
        assert_eq!(parse_relation("App.Items"), Ok(relation("app", "items")));
    }

    #[test]
    fn relation_quoted_keeps_case_and_dots() {
        assert_eq!(parse_relation(r#""My.Schema"."Order Items""#), Ok(relation("My.Schema", "Order Items")));
        assert_eq!(parse_relation(r#""a""b""#), Ok(relation("public", "a\"b")));
    }

    #[test]
    fn relation_rejects_invalid() {
        assert!(parse_relation("a.b.c").unwrap_err().contains("too many delimiters"));
        assert!(parse_relation(r#""""#).unwrap_err().contains("zero-length"));
        assert!(parse_relation("a-b").unwrap_err().contains("special characters"));
        assert!(parse_relation("").unwrap_err().contains("special characters"));
        assert!(parse_relation(r#""a"b""#).unwrap_err().contains("unescaped quote"));
        assert!(parse_relation(&"x".repeat(64)).unwrap_err().contains("too long"));
        assert!(parse_relation("1abc").is_err());
    }

    #[test]
    fn identifier_list_splits_outside_quotes() {
        assert_eq!(
            parse_identifier_list(r#""a,b",C,"d""#),
            Ok(vec!["a,b".to_owned(), "c".to_owned(), "d".to_owned()])
        );
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(relation("s", "t\"x").quoted(), r#""s"."t""x""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
