//! Shape WHERE clauses: parsing, checking, rendering and evaluation with PostgreSQL 15's
//! semantics.
//!
//! A client's clause is parsed with `sqlparser`, checked against the table's columns with
//! PostgreSQL's type resolution rules, and kept as a typed tree. From the tree this crate
//! renders SQL for the snapshot query ([`Filter::to_sql`]) and evaluates rows received from
//! logical replication ([`Filter::matches`]), so both paths select the same rows.
//!
//! Evaluation assumes the session settings Volt uses for snapshots: `DateStyle=ISO,DMY`,
//! `TimeZone=UTC`, `IntervalStyle=iso_8601` and `extra_float_digits=1`. Text ordering, case
//! mapping and `ILIKE` are evaluated for the C and POSIX collations only, so clauses that
//! need them on text of another collation are rejected.

mod analyze;
mod catalog;
mod datetime;
mod eval;
mod expr;
mod float;
mod fold;
mod like;
mod numeric;
mod render;
mod types;
mod value;

use std::collections::BTreeMap;
use std::fmt;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::expr::{Expr, ExprKind};
use crate::types::Type;
use crate::value::Value;

/// Maximum number of tokens in a clause. It bounds the depth of left-nested operator chains,
/// which the parser builds without recursion but later passes walk recursively.
const MAX_TOKENS: usize = 20_000;

/// Stack for compiling one clause; see [`compile_with_options`] for why it is large.
const COMPILE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// A column of the shape's table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name (`pg_attribute.attname`), matched exactly after identifier folding.
    pub name: String,
    /// `pg_type.typname` of the column's type; for an array, the element type's name.
    pub type_name: String,
    /// True for an array column.
    pub is_array: bool,
    /// True when `type_name` is an enum type.
    pub is_enum: bool,
    /// The column's collation name (`pg_collation.collname`), or `None` for the database
    /// default and for types without collation. `Some("default")` also means the database
    /// default.
    pub collation: Option<String>,
}

/// Settings of the database that affect how clauses are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// Name of the database's default collation (`pg_database.datcollate`), used for string
    /// constants and for columns without their own collation.
    pub default_collation: String,
}

impl Default for CompileOptions {
    /// Returns options for the C collation, which Volt's embedded PostgreSQL uses
    /// (`initdb --locale=C`).
    fn default() -> Self {
        CompileOptions { default_collation: "C".to_owned() }
    }
}

/// Error from compiling a clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Description of the problem, in PostgreSQL's wording where PostgreSQL has a message
    /// for it.
    pub message: String,
    /// Byte offset into the clause of the part the message is about, when known.
    pub location: Option<usize>,
}

impl fmt::Display for FilterError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(location) => write!(formatter, "At location {location}: {}", self.message),
            None => formatter.write_str(&self.message),
        }
    }
}

impl std::error::Error for FilterError {}

/// An error while evaluating a clause for one row, such as an overflow, a division by zero
/// or invalid input text for a cast. PostgreSQL fails the query on such a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Description of the failure, in PostgreSQL's wording.
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// A checked WHERE clause.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
    column_types: Vec<Type>,
    referenced: Vec<usize>,
    sql: String,
    equality: Option<(usize, Vec<String>)>,
}

/// Parses and checks `where_text` for a table with `columns`, reading `$n` parameters from
/// `params` (keyed from 1, without gaps). String constants use the C collation; see
/// [`compile_with_options`] for a database with another default.
///
/// The work runs on a short-lived thread with a large stack, and the call blocks until that
/// thread is done.
pub fn compile(where_text: &str, params: &BTreeMap<usize, String>, columns: &[ColumnSpec]) -> Result<Filter, FilterError> {
    compile_with_options(where_text, params, columns, &CompileOptions::default())
}

/// [`compile`] for a database whose settings differ from Volt's embedded default.
pub fn compile_with_options(
    where_text: &str,
    params: &BTreeMap<usize, String>,
    columns: &[ColumnSpec],
    options: &CompileOptions,
) -> Result<Filter, FilterError> {
    // sqlparser builds left-nested operator chains (`a + a + ... + a`) without recursion,
    // but dropping such a tree recurses once per operator. A thread with a stack sized for
    // the longest chain MAX_TOKENS allows keeps that off the caller's stack.
    std::thread::scope(|scope| {
        let compiler = std::thread::Builder::new()
            .name("volt-filter-compile".to_owned())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(scope, || compile_on_this_thread(where_text, params, columns, options))
            .map_err(|error| FilterError { message: format!("starting the thread that compiles the clause failed: {error}"), location: None })?;
        compiler.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn compile_on_this_thread(
    where_text: &str,
    params: &BTreeMap<usize, String>,
    columns: &[ColumnSpec],
    options: &CompileOptions,
) -> Result<Filter, FilterError> {
    check_parameter_numbers(params)?;
    let dialect = PostgreSqlDialect {};
    let mut tokens = Tokenizer::new(&dialect, where_text).tokenize_with_location().map_err(|error| FilterError {
        message: format!("syntax error: {}", error.message),
        location: analyze::line_column_offset(where_text, error.location.line, error.location.column),
    })?;
    let significant = tokens.iter().filter(|token| !matches!(token.token, Token::Whitespace(_))).count();
    if significant > MAX_TOKENS {
        return Err(FilterError { message: format!("the clause is too long: at most {MAX_TOKENS} tokens are allowed"), location: None });
    }
    // sqlparser reads `==` as `=`, but PostgreSQL has no such operator.
    if let Some(token) = tokens.iter().find(|token| token.token == Token::DoubleEq) {
        return Err(FilterError {
            message: "operator does not exist: ==; use = to compare".to_owned(),
            location: analyze::line_column_offset(where_text, token.span.start.line, token.span.start.column),
        });
    }
    let between_symmetric = take_between_symmetric(&mut tokens);

    let mut parser = Parser::new(&dialect).with_recursion_limit(analyze::MAX_DEPTH).with_tokens_with_locations(tokens);
    let parsed = parser.parse_expr().map_err(|error| parser_error(where_text, error))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        let location = analyze::line_column_offset(where_text, next.span.start.line, next.span.start.column);
        let message = if next.token == Token::SemiColon {
            "only one expression is allowed: remove the \";\" and what follows it".to_owned()
        } else {
            format!("syntax error at or near \"{}\"", next.token)
        };
        return Err(FilterError { message, location });
    }

    let mut analyzer = analyze::Analyzer::new(where_text, columns, params, between_symmetric, &options.default_collation);
    let checked = analyzer.analyze_clause(&parsed)?;
    drop(parsed);
    let root = fold::fold(checked)?;

    let mut referenced = Vec::new();
    root.visit(&mut |node| {
        if let ExprKind::Column(index) = node.kind {
            referenced.push(index);
        }
    });
    referenced.sort_unstable();
    referenced.dedup();

    let mut sql = String::new();
    render::render(&root, columns, &mut sql);
    let column_types: Vec<Type> = columns.iter().map(analyze::column_type).collect();
    let equality = equality_index(&root, &column_types);
    Ok(Filter { root, column_types, referenced, sql, equality })
}

impl Filter {
    /// Returns SQL text that PostgreSQL evaluates the same way, rendered from the checked
    /// tree. Identifiers are quoted and every operation is parenthesised. Every constant and
    /// parameter is a quoted literal with an explicit cast (`'5'::int8`), except enum labels,
    /// which stay untyped literals. The text never contains the clause's raw text.
    pub fn to_sql(&self) -> String {
        self.sql.clone()
    }

    /// Returns the canonical form, the shape's identity. It is equal for clauses that mean
    /// the same after normalisation of whitespace, keyword case, identifier quoting,
    /// parameter substitution, constant folding and `BETWEEN` expansion. It is the
    /// [`to_sql`](Filter::to_sql) text.
    pub fn canonical(&self) -> String {
        self.sql.clone()
    }

    /// Columns (indices into the `columns` slice) the clause reads, in ascending order.
    pub fn referenced_columns(&self) -> &[usize] {
        &self.referenced
    }

    /// Evaluates the clause for a row given as PostgreSQL's text output of each column
    /// (`None` for NULL), in the order of the `columns` slice.
    ///
    /// `Some(true)` means the row is in the shape; `Some(false)` and `None` (NULL) that it
    /// is not. `Err` is an evaluation error (overflow, division by zero, invalid input text
    /// for a cast): the caller treats it as "not in the shape", as PostgreSQL would fail the
    /// row.
    pub fn matches(&self, row: &[Option<&str>]) -> Result<Option<bool>, EvalError> {
        let mut state = eval::Row::new(row, &self.column_types);
        match eval::evaluate(&self.root, &mut state) {
            Ok(None) => Ok(None),
            Ok(Some(Value::Bool(flag))) => Ok(Some(flag)),
            Ok(Some(_)) => Err(EvalError { message: "the clause did not return a boolean".to_owned() }),
            Err(message) => Err(EvalError { message }),
        }
    }

    /// Returns a column and values for routing many shapes without evaluating each. When the
    /// clause is `col = const`, `col IN (consts)`, or an AND with such a term, the result is
    /// the column index and the constants as the text PostgreSQL prints for that column's
    /// type. A row's text value can then be looked up in a hash map, because a row can only
    /// match when its text is in the list.
    ///
    /// `None` otherwise, and also for column types whose text is not unique per value
    /// (numeric `1.0` and `1`, float `-0` and `0`, `character` padding, intervals, arrays).
    pub fn equality_index(&self) -> Option<(usize, Vec<String>)> {
        self.equality.clone()
    }
}

/// Checks that parameters are numbered 1, 2, ... without gaps.
fn check_parameter_numbers(params: &BTreeMap<usize, String>) -> Result<(), FilterError> {
    for (position, number) in params.keys().enumerate() {
        if *number != position + 1 {
            let missing = position + 1;
            return Err(FilterError {
                message: format!("parameters must be numbered from $1 without gaps, but ${missing} is missing"),
                location: None,
            });
        }
    }
    Ok(())
}

/// Removes `SYMMETRIC` / `ASYMMETRIC` after each `BETWEEN` (sqlparser does not accept them)
/// and returns, for each `BETWEEN` in order, whether it was symmetric.
fn take_between_symmetric(tokens: &mut Vec<TokenWithSpan>) -> Vec<bool> {
    let is_keyword = |token: &Token, keyword: Keyword| matches!(token, Token::Word(word) if word.keyword == keyword && word.quote_style.is_none());
    let mut flags = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        if is_keyword(&tokens[index].token, Keyword::BETWEEN) {
            let mut next = index + 1;
            while next < tokens.len() && matches!(tokens[next].token, Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab) | Token::Whitespace(_)) {
                next += 1;
            }
            let symmetric = next < tokens.len() && is_keyword(&tokens[next].token, Keyword::SYMMETRIC);
            let asymmetric = next < tokens.len() && is_keyword(&tokens[next].token, Keyword::ASYMMETRIC);
            if symmetric || asymmetric {
                tokens.remove(next);
            }
            flags.push(symmetric);
        }
        index += 1;
    }
    flags
}

fn parser_error(where_text: &str, error: ParserError) -> FilterError {
    let raw = match error {
        ParserError::RecursionLimitExceeded => {
            return FilterError { message: format!("the clause is nested more than {} levels deep", analyze::MAX_DEPTH), location: None };
        }
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => message,
    };
    // sqlparser appends " at Line: L, Column: C"; turn that into a byte offset.
    if let Some(position) = raw.rfind(" at Line: ") {
        let (message, suffix) = raw.split_at(position);
        let numbers: Vec<u64> = suffix
            .trim_start_matches(" at Line: ")
            .split(", Column: ")
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        if let [line, column] = numbers.as_slice() {
            return FilterError { message: format!("syntax error: {message}"), location: analyze::line_column_offset(where_text, *line, *column) };
        }
    }
    FilterError { message: format!("syntax error: {raw}"), location: None }
}

/// Types whose text output is unique per value under equality, so text lookup is exact.
fn has_unique_text(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Bool | Type::Int2 | Type::Int4 | Type::Int8 | Type::Text | Type::Varchar | Type::Uuid | Type::Date | Type::Time | Type::Timestamp | Type::Timestamptz | Type::Enum(_)
    )
}

fn equality_index(root: &Expr, column_types: &[Type]) -> Option<(usize, Vec<String>)> {
    match &root.kind {
        ExprKind::And(terms) => terms.iter().find_map(|term| equality_term(term, column_types)),
        _ => equality_term(root, column_types),
    }
}

fn equality_term(term: &Expr, column_types: &[Type]) -> Option<(usize, Vec<String>)> {
    match &term.kind {
        ExprKind::Operator { name: "=", args, .. } => {
            let (column, constant) = match (indexed_column(&args[0]), indexed_column(&args[1])) {
                (Some(column), None) => (column, &args[1]),
                (None, Some(column)) => (column, &args[0]),
                _ => return None,
            };
            let text = constant_text(constant, &column_types[column])?;
            Some((column, text.into_iter().collect()))
        }
        ExprKind::In { left, items, negated: false } => {
            let column = indexed_column(left)?;
            let mut texts = Vec::with_capacity(items.len());
            for (_, item) in items {
                texts.extend(constant_text(item, &column_types[column])?);
            }
            Some((column, texts))
        }
        _ => None,
    }
}

/// Returns the column of a `Column` node, also through the varchar-to-text conversion,
/// which keeps the bytes.
fn indexed_column(expr: &Expr) -> Option<usize> {
    match &expr.kind {
        ExprKind::Column(index) if has_unique_text(&expr.ty) => Some(*index),
        ExprKind::Cast { input, explicit: false, .. } if input.ty == Type::Varchar && expr.ty == Type::Text => indexed_column(input),
        _ => None,
    }
}

/// Formats the constant as the column's type prints it. `Some(None)` stands for a NULL
/// constant, which matches no row.
fn constant_text(constant: &Expr, column_type: &Type) -> Option<Option<String>> {
    let ExprKind::Const(value) = &constant.kind else { return None };
    let compatible = constant.ty == *column_type
        || (constant.ty.is_integer() && column_type.is_integer())
        || (*column_type == Type::Varchar && constant.ty == Type::Text);
    if !compatible {
        return None;
    }
    Some(value.as_ref().map(|value| value::format_value(column_type, value)))
}
