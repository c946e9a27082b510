//! Parse analysis: turns sqlparser's syntax tree into the checked [`Expr`] tree the way
//! PostgreSQL 15's `transformExpr` does. Column references are resolved, literals get their
//! types, operators and functions are chosen from the catalog, and implicit conversions are
//! made explicit. Anything outside the supported language is rejected here.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlparser::ast::{
    self as sql, BinaryOperator, CastKind, CharacterLength, DataType, ExactNumberInfo, FunctionArg, FunctionArgExpr,
    FunctionArguments, InTarget, ObjectNamePart, Spanned, TimezoneInfo, TrimWhereField, UnaryOperator,
};

use crate::catalog::{self, CastContext, Resolved};
use crate::expr::{BoolTest, Expr, ExprKind, Function, TypeModifier};
use crate::numeric::Numeric;
use crate::types::Type;
use crate::value::{self, Value};
use crate::{ColumnSpec, FilterError};

/// Nesting depth beyond which a clause is rejected, so that recursion stays bounded.
pub(crate) const MAX_DEPTH: usize = 200;
/// Maximum identifier length in bytes; PostgreSQL truncates longer names (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Collations under which text ordering and case mapping are bytewise and ASCII-only, which
/// is what the evaluator implements. `ucs_basic` is the C collation in PostgreSQL 15.
const BYTEWISE_COLLATIONS: [&str; 3] = ["C", "POSIX", "ucs_basic"];

/// Functions whose result changes between calls or over time.
const NON_DETERMINISTIC_FUNCTIONS: [&str; 15] = [
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "random",
    "gen_random_uuid",
    "uuid_generate_v4",
    "txid_current",
    "pg_current_xact_id",
];

/// Aggregate functions PostgreSQL rejects in WHERE.
const AGGREGATE_FUNCTIONS: [&str; 16] = [
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "bit_and",
    "bit_or",
    "stddev",
    "variance",
];

/// State of one clause's analysis: the columns, the parameters and their deduced types.
pub(crate) struct Analyzer<'a> {
    source: &'a str,
    columns: &'a [ColumnSpec],
    column_types: Vec<Type>,
    params: &'a BTreeMap<usize, String>,
    param_types: BTreeMap<usize, Type>,
    /// For each `BETWEEN` in token order, whether it was `BETWEEN SYMMETRIC` (sqlparser does
    /// not parse the keyword, so it is removed before parsing and remembered here).
    between_symmetric: Vec<bool>,
    next_between: usize,
    depth: usize,
    default_collation: Arc<str>,
}

/// Returns the type a column has in clauses.
pub(crate) fn column_type(column: &ColumnSpec) -> Type {
    let base = if column.is_enum {
        Type::Enum(Arc::from(column.type_name.as_str()))
    } else {
        match Type::from_type_name(&column.type_name) {
            Some(ty) => ty,
            None => {
                let name = if column.is_array { format!("{}[]", column.type_name) } else { column.type_name.clone() };
                return Type::Unsupported(Arc::from(name));
            }
        }
    };
    if column.is_array {
        Type::Array(Box::new(base))
    } else {
        base
    }
}

impl<'a> Analyzer<'a> {
    pub(crate) fn new(
        source: &'a str,
        columns: &'a [ColumnSpec],
        params: &'a BTreeMap<usize, String>,
        between_symmetric: Vec<bool>,
        default_collation: &str,
    ) -> Self {
        Analyzer {
            source,
            columns,
            column_types: columns.iter().map(column_type).collect(),
            params,
            param_types: BTreeMap::new(),
            between_symmetric,
            next_between: 0,
            depth: 0,
            default_collation: Arc::from(default_collation),
        }
    }

    /// Analyzes the whole clause, which must be boolean.
    pub(crate) fn analyze_clause(&mut self, expr: &sql::Expr) -> Result<Expr, FilterError> {
        let checked = self.transform(expr)?;
        self.coerce_to_boolean(checked, "WHERE")
    }

    /// Converts a line/column position from sqlparser into a byte offset of the clause.
    pub(crate) fn offset_of(&self, location: sqlparser::tokenizer::Location) -> Option<usize> {
        line_column_offset(self.source, location.line, location.column)
    }

    fn location(&self, expr: &sql::Expr) -> Option<usize> {
        self.offset_of(expr.span().start)
    }

    fn error(&self, message: impl Into<String>, location: Option<usize>) -> FilterError {
        FilterError { message: message.into(), location }
    }

    fn transform(&mut self, expr: &sql::Expr) -> Result<Expr, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("the clause is nested more than {MAX_DEPTH} levels deep"), self.location(expr)));
        }
        let result = self.transform_inner(expr);
        self.depth -= 1;
        result
    }

    fn transform_inner(&mut self, expr: &sql::Expr) -> Result<Expr, FilterError> {
        let location = self.location(expr);
        match expr {
            sql::Expr::Identifier(ident) => self.column(ident),
            sql::Expr::CompoundIdentifier(parts) => {
                let name: Vec<&str> = parts.iter().map(|part| part.value.as_str()).collect();
                Err(self.error(
                    format!("qualified column reference \"{}\" is not supported: name the column alone", name.join(".")),
                    location,
                ))
            }
            sql::Expr::Value(value) => self.literal(&value.value, location),
            sql::Expr::TypedString(typed) => {
                let text = string_literal(&typed.value.value)
                    .ok_or_else(|| self.error("a typed literal needs a string constant", location))?;
                let (target, modifier) = self.data_type(&typed.data_type, location)?;
                let literal = Expr::new(ExprKind::Unresolved { text: Arc::from(text), parameter: None }, Type::Unknown, location);
                self.coerce(literal, &target, CastContext::Explicit, modifier, true, location)
            }
            sql::Expr::Interval(interval) => {
                if interval.leading_field.is_some() || interval.last_field.is_some() || interval.fractional_seconds_precision.is_some() {
                    return Err(self.error("interval field qualifiers such as INTERVAL '1' DAY are not supported", location));
                }
                let sql::Expr::Value(value) = interval.value.as_ref() else {
                    return Err(self.error("INTERVAL needs a string constant", location));
                };
                let text = string_literal(&value.value).ok_or_else(|| self.error("INTERVAL needs a string constant", location))?;
                let literal = Expr::new(ExprKind::Unresolved { text: Arc::from(text), parameter: None }, Type::Unknown, location);
                self.coerce(literal, &Type::Interval, CastContext::Explicit, None, true, location)
            }
            sql::Expr::Cast { kind, expr: input, data_type, format } => {
                if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                    return Err(self.error("only CAST(x AS type) and x::type casts are supported", location));
                }
                self.cast(input, data_type, location)
            }
            sql::Expr::Nested(inner) => self.transform(inner),
            sql::Expr::UnaryOp { op, expr: operand } => self.unary(*op, operand, location),
            sql::Expr::BinaryOp { left, op, right } => self.binary(left, op, right, location),
            sql::Expr::IsNull(arg) => self.null_test(arg, false, location),
            sql::Expr::IsNotNull(arg) => self.null_test(arg, true, location),
            sql::Expr::IsTrue(arg) => self.bool_test(arg, BoolTest::IsTrue, location),
            sql::Expr::IsNotTrue(arg) => self.bool_test(arg, BoolTest::IsNotTrue, location),
            sql::Expr::IsFalse(arg) => self.bool_test(arg, BoolTest::IsFalse, location),
            sql::Expr::IsNotFalse(arg) => self.bool_test(arg, BoolTest::IsNotFalse, location),
            sql::Expr::IsUnknown(arg) => self.bool_test(arg, BoolTest::IsUnknown, location),
            sql::Expr::IsNotUnknown(arg) => self.bool_test(arg, BoolTest::IsNotUnknown, location),
            sql::Expr::IsDistinctFrom(left, right) => self.distinct(left, right, false, location),
            sql::Expr::IsNotDistinctFrom(left, right) => self.distinct(left, right, true, location),
            sql::Expr::In { expr: left, target, negated, global: _ } => match target {
                InTarget::List(items) => self.in_list(left, items, *negated, location),
                _ => Err(self.error("subqueries are not supported", location)),
            },
            sql::Expr::Between { expr: arg, negated, low, high } => self.between(arg, *negated, low, high, location),
            sql::Expr::Like { negated, any, expr: arg, pattern, escape_char } => {
                self.like(*any, arg, pattern, escape_char.as_deref(), false, *negated, location)
            }
            sql::Expr::ILike { negated, any, expr: arg, pattern, escape_char } => {
                self.like(*any, arg, pattern, escape_char.as_deref(), true, *negated, location)
            }
            sql::Expr::AnyOp { left, compare_op, right, .. } => self.scalar_array(left, compare_op, right, false, location),
            sql::Expr::AllOp { left, compare_op, right } => self.scalar_array(left, compare_op, right, true, location),
            sql::Expr::Function(function) => self.function(function, location),
            sql::Expr::Trim { trim_where, trim_what, expr: arg, trim_characters } => {
                self.trim(trim_where.as_ref(), trim_what.as_deref(), arg, trim_characters.as_deref(), location)
            }
            sql::Expr::Array(array) => {
                if !array.named {
                    return Err(self.error("array constructors need the ARRAY keyword: ARRAY[...]", location));
                }
                self.array_constructor(&array.elem, None, location)
            }
            sql::Expr::Subquery(_) | sql::Expr::Exists { .. } => Err(self.error("subqueries are not supported", location)),
            sql::Expr::Case { .. } => Err(self.error("CASE expressions are not supported", location)),
            sql::Expr::Collate { .. } => Err(self.error("COLLATE is not supported", location)),
            sql::Expr::SimilarTo { .. } => Err(self.error("SIMILAR TO is not supported", location)),
            sql::Expr::AtTimeZone { .. } => Err(self.error("AT TIME ZONE is not supported", location)),
            sql::Expr::Extract { .. } => Err(self.error("EXTRACT is not supported", location)),
            sql::Expr::Substring { .. } => Err(self.error("SUBSTRING is not supported", location)),
            sql::Expr::Position { .. } => Err(self.error("POSITION is not supported", location)),
            sql::Expr::Tuple(_) => Err(self.error("row constructors are not supported", location)),
            sql::Expr::CompoundFieldAccess { .. } | sql::Expr::JsonAccess { .. } => {
                Err(self.error("subscripts and field access are not supported", location))
            }
            other => Err(self.error(format!("this expression is not supported: {other}"), location)),
        }
    }

    fn column(&mut self, ident: &sql::Ident) -> Result<Expr, FilterError> {
        let location = self.offset_of(ident.span.start);
        let name = identifier_name(ident);
        let Some(index) = self.columns.iter().position(|column| column.name == name) else {
            return Err(self.error(format!("column \"{name}\" does not exist"), location));
        };
        let ty = self.column_types[index].clone();
        let mut expr = Expr::new(ExprKind::Column(index), ty, location);
        if expr.ty.is_collatable() {
            expr.collation = self.columns[index].collation.as_deref().filter(|name| *name != "default").map(Arc::from);
        }
        Ok(expr)
    }

    fn literal(&mut self, value: &sql::Value, location: Option<usize>) -> Result<Expr, FilterError> {
        match value {
            sql::Value::Number(text, _) => self.number(text, false, location),
            sql::Value::Boolean(flag) => Ok(Expr::constant(Some(Value::Bool(*flag)), Type::Bool, location)),
            sql::Value::Null => Ok(Expr::constant(None, Type::Unknown, location)),
            sql::Value::Placeholder(name) => self.parameter(name, location),
            sql::Value::NationalStringLiteral(text) => {
                // N'...' is a `character` constant in PostgreSQL.
                Ok(Expr::constant(Some(Value::Text(Arc::from(text.as_str()))), Type::Bpchar, location))
            }
            other => match string_literal(other) {
                Some(text) => Ok(Expr::new(ExprKind::Unresolved { text: Arc::from(text), parameter: None }, Type::Unknown, location)),
                None => Err(self.error(format!("constant {other} is not supported"), location)),
            },
        }
    }

    /// Types a numeric literal as PostgreSQL's `make_const` does: int4 if it fits, then int8,
    /// otherwise numeric. `negative` applies a leading minus sign first.
    fn number(&self, text: &str, negative: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let signed = if negative { format!("-{text}") } else { text.to_owned() };
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            if let Ok(value) = signed.parse::<i64>() {
                let ty = if i32::try_from(value).is_ok() { Type::Int4 } else { Type::Int8 };
                return Ok(Expr::constant(Some(Value::Int(value)), ty, location));
            }
        }
        let number = Numeric::parse(&signed).map_err(|message| self.error(message, location))?;
        if !text.bytes().all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'e' | b'E' | b'+' | b'-')) || number.is_nan() {
            return Err(self.error(format!("invalid number \"{text}\""), location));
        }
        Ok(Expr::constant(Some(Value::Numeric(number)), Type::Numeric, location))
    }

    fn parameter(&mut self, name: &str, location: Option<usize>) -> Result<Expr, FilterError> {
        let number: usize = name
            .strip_prefix('$')
            .and_then(|digits| digits.parse().ok())
            .filter(|&number| number > 0)
            .ok_or_else(|| self.error(format!("invalid parameter reference {name}: parameters are written $1, $2, ..."), location))?;
        let text = self.params.get(&number).ok_or_else(|| self.error(format!("parameter ${number} was not provided"), location))?;
        // Once a parameter's type is deduced, PostgreSQL gives later uses that type.
        if let Some(ty) = self.param_types.get(&number) {
            let value = value::parse_value(ty, text).map_err(|message| self.error(message, location))?;
            return Ok(Expr::constant(Some(value), ty.clone(), location));
        }
        Ok(Expr::new(ExprKind::Unresolved { text: Arc::from(text.as_str()), parameter: Some(number) }, Type::Unknown, location))
    }

    /// Converts `expr` to `target` as `coerce_type` does. Unresolved literals and parameters
    /// are read with the target type's input function now, as PostgreSQL does while parsing.
    pub(crate) fn coerce(
        &mut self,
        expr: Expr,
        target: &Type,
        context: CastContext,
        modifier: Option<TypeModifier>,
        explicit: bool,
        location: Option<usize>,
    ) -> Result<Expr, FilterError> {
        if let ExprKind::Unresolved { text, parameter } = &expr.kind {
            if let Some(number) = parameter {
                self.record_parameter_type(*number, target, expr.location)?;
            }
            if matches!(target, Type::Unsupported(_)) {
                return Err(self.error(format!("type {target} is not supported"), location));
            }
            let parsed = value::parse_value(target, text).map_err(|message| self.error(message, expr.location))?;
            let constant = Expr::constant(Some(parsed), target.clone(), expr.location);
            return match modifier {
                Some(_) => Ok(self.wrap_cast(constant, target, modifier, explicit)),
                None => Ok(constant),
            };
        }
        if expr.ty == Type::Unknown {
            // A NULL literal.
            let constant = Expr::constant(None, target.clone(), expr.location);
            return Ok(constant);
        }
        if expr.ty == *target && modifier.is_none() {
            if explicit && !expr.is_const() {
                return Ok(self.wrap_cast(expr, target, None, true));
            }
            return Ok(expr);
        }
        if let (Type::Unsupported(_), _) | (_, Type::Unsupported(_)) = (&expr.ty, target) {
            return Err(self.unsupported_type_error(&expr, location));
        }
        match catalog::cast_context(&expr.ty, target) {
            Some(needed) if needed <= context => Ok(self.wrap_cast(expr, target, modifier, explicit)),
            _ => Err(self.error(format!("cannot cast type {} to {target}", expr.ty), location)),
        }
    }

    fn wrap_cast(&self, expr: Expr, target: &Type, modifier: Option<TypeModifier>, explicit: bool) -> Expr {
        let location = expr.location;
        let collation = if target.is_collatable() && expr.ty.is_collatable() { expr.collation.clone() } else { None };
        let mut cast = Expr::new(ExprKind::Cast { input: Box::new(expr), explicit, modifier }, target.clone(), location);
        cast.collation = collation;
        cast
    }

    fn record_parameter_type(&mut self, number: usize, ty: &Type, location: Option<usize>) -> Result<(), FilterError> {
        match self.param_types.get(&number) {
            Some(existing) if existing != ty => Err(self.error(format!("inconsistent types deduced for parameter ${number}: {existing} and {ty}"), location)),
            _ => {
                self.param_types.insert(number, ty.clone());
                Ok(())
            }
        }
    }

    fn unsupported_type_error(&self, expr: &Expr, location: Option<usize>) -> FilterError {
        let name = match &expr.kind {
            ExprKind::Column(index) => format!("column \"{}\"", self.columns[*index].name),
            _ => "an expression".to_owned(),
        };
        self.error(format!("{name} has type {}, which shape WHERE clauses do not support beyond IS [NOT] NULL", expr.ty), location.or(expr.location))
    }

    fn reject_unsupported(&self, expr: &Expr) -> Result<(), FilterError> {
        if let Type::Unsupported(_) = expr.ty {
            return Err(self.unsupported_type_error(expr, expr.location));
        }
        Ok(())
    }

    fn coerce_to_boolean(&mut self, expr: Expr, construct: &str) -> Result<Expr, FilterError> {
        if expr.ty == Type::Bool {
            return Ok(expr);
        }
        if expr.ty == Type::Unknown {
            let location = expr.location;
            return self.coerce(expr, &Type::Bool, CastContext::Implicit, None, false, location);
        }
        let location = expr.location;
        Err(self.error(format!("argument of {construct} must be type boolean, not type {}", expr.ty), location))
    }

    fn cast(&mut self, input: &sql::Expr, data_type: &DataType, location: Option<usize>) -> Result<Expr, FilterError> {
        let (target, modifier) = self.data_type(data_type, location)?;
        // ARRAY[...]::type[] converts each element to the element type (`transformArrayExpr`
        // with a target type), which also allows an empty ARRAY[].
        if let (sql::Expr::Array(array), Type::Array(element)) = (strip_nesting(input), &target) {
            if array.named {
                let constructed = self.array_constructor(&array.elem, Some(element), location)?;
                return self.coerce(constructed, &target, CastContext::Explicit, modifier, true, location);
            }
        }
        let transformed = self.transform(input)?;
        self.reject_unsupported(&transformed)?;
        // NOTE: enum labels are not known here, so a label that does not exist is not
        // detected; PostgreSQL rejects it when it runs the rendered SQL.
        if matches!(target, Type::Enum(_)) && !matches!(transformed.kind, ExprKind::Unresolved { .. } | ExprKind::Const(_)) && transformed.ty != target {
            return Err(self.error(format!("casting an expression to the enum type {target} is not supported: only constants can be cast"), location));
        }
        self.coerce(transformed, &target, CastContext::Explicit, modifier, true, location)
    }

    /// Maps a type name in the clause to a supported type and optional modifier.
    fn data_type(&self, data_type: &DataType, location: Option<usize>) -> Result<(Type, Option<TypeModifier>), FilterError> {
        let unsupported = || self.error(format!("type {data_type} is not supported"), location);
        let no_precision = |precision: &Option<u64>| {
            if precision.is_some() {
                Err(self.error(format!("type modifiers on {data_type} are not supported"), location))
            } else {
                Ok(())
            }
        };
        let character_length = |length: &Option<CharacterLength>| -> Result<Option<u32>, FilterError> {
            match length {
                None => Ok(None),
                Some(CharacterLength::IntegerLength { length, .. }) if (1..=10_485_760).contains(length) => Ok(Some(*length as u32)),
                Some(_) => Err(self.error(format!("invalid length in type {data_type}"), location)),
            }
        };
        Ok(match data_type {
            DataType::Bool | DataType::Boolean => (Type::Bool, None),
            DataType::SmallInt(precision) | DataType::Int2(precision) => {
                no_precision(precision)?;
                (Type::Int2, None)
            }
            DataType::Int(precision) | DataType::Integer(precision) | DataType::Int4(precision) => {
                no_precision(precision)?;
                (Type::Int4, None)
            }
            DataType::BigInt(precision) | DataType::Int8(precision) => {
                no_precision(precision)?;
                (Type::Int8, None)
            }
            DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => match info {
                ExactNumberInfo::None => (Type::Numeric, None),
                ExactNumberInfo::Precision(precision) => (Type::Numeric, Some(self.numeric_modifier(*precision, 0, data_type, location)?)),
                ExactNumberInfo::PrecisionAndScale(precision, scale) => {
                    (Type::Numeric, Some(self.numeric_modifier(*precision, *scale, data_type, location)?))
                }
            },
            DataType::Real | DataType::Float4 => (Type::Float4, None),
            DataType::DoublePrecision | DataType::Float8 => (Type::Float8, None),
            DataType::Float(info) => match info {
                ExactNumberInfo::None => (Type::Float8, None),
                ExactNumberInfo::Precision(precision @ 1..=24) if *precision >= 1 => (Type::Float4, None),
                ExactNumberInfo::Precision(25..=53) => (Type::Float8, None),
                _ => return Err(self.error(format!("invalid precision in type {data_type}"), location)),
            },
            DataType::Text => (Type::Text, None),
            DataType::Varchar(length) | DataType::CharacterVarying(length) | DataType::CharVarying(length) => {
                (Type::Varchar, character_length(length)?.map(TypeModifier::Varchar))
            }
            // CHAR without a length means char(1) in a cast, as in SQL.
            DataType::Char(length) | DataType::Character(length) => {
                (Type::Bpchar, Some(TypeModifier::Bpchar(character_length(length)?.unwrap_or(1))))
            }
            DataType::Uuid => (Type::Uuid, None),
            DataType::Date => (Type::Date, None),
            DataType::Time(precision, zone) => {
                no_precision(precision)?;
                match zone {
                    TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => (Type::Time, None),
                    _ => return Err(unsupported()),
                }
            }
            DataType::Timestamp(precision, zone) => {
                no_precision(precision)?;
                match zone {
                    TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => (Type::Timestamp, None),
                    TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => (Type::Timestamptz, None),
                }
            }
            DataType::Interval { fields: None, precision: None } => (Type::Interval, None),
            DataType::Array(sql::ArrayElemTypeDef::SquareBracket(element, _)) => {
                let (element, modifier) = self.data_type(element, location)?;
                let element = match element {
                    Type::Array(inner) => *inner,
                    other => other,
                };
                if modifier.is_some() {
                    return Err(self.error(format!("type modifiers on array element types are not supported: {data_type}"), location));
                }
                (Type::Array(Box::new(element)), None)
            }
            DataType::Custom(name, modifiers) => self.custom_type(name, modifiers, data_type, location)?,
            _ => return Err(unsupported()),
        })
    }

    fn numeric_modifier(&self, precision: u64, scale: i64, data_type: &DataType, location: Option<usize>) -> Result<TypeModifier, FilterError> {
        if !(1..=1000).contains(&precision) {
            return Err(self.error(format!("NUMERIC precision {precision} must be between 1 and 1000"), location));
        }
        if scale < 0 || scale as u64 > precision {
            return Err(self.error(format!("type modifier of {data_type} is not supported: the scale must be between 0 and the precision"), location));
        }
        Ok(TypeModifier::Numeric(precision as u32, scale as u32))
    }

    fn custom_type(&self, name: &sql::ObjectName, modifiers: &[sql::TypeModifier], data_type: &DataType, location: Option<usize>) -> Result<(Type, Option<TypeModifier>), FilterError> {
        let unsupported = || self.error(format!("type {data_type} is not supported"), location);
        let parts: Vec<&sql::Ident> = name
            .0
            .iter()
            .filter_map(|part| match part {
                ObjectNamePart::Identifier(ident) => Some(ident),
                _ => None,
            })
            .collect();
        let type_name = match parts.as_slice() {
            [ident] => identifier_name(ident),
            [schema, ident] if identifier_name(schema) == "pg_catalog" => identifier_name(ident),
            _ => return Err(unsupported()),
        };
        let parsed_modifiers: Vec<u64> = modifiers
            .iter()
            .map(|modifier| match modifier {
                sql::TypeModifier::Number(text, _) => text.parse::<u64>().ok(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(unsupported)?;
        if let Some(ty) = Type::from_type_name(&type_name) {
            let modifier = match (&ty, parsed_modifiers.as_slice()) {
                (_, []) => None,
                (Type::Bpchar, [length]) if (1..=10_485_760).contains(length) => Some(TypeModifier::Bpchar(*length as u32)),
                (Type::Varchar, [length]) if (1..=10_485_760).contains(length) => Some(TypeModifier::Varchar(*length as u32)),
                (Type::Numeric, [precision]) => Some(self.numeric_modifier(*precision, 0, data_type, location)?),
                (Type::Numeric, [precision, scale]) => Some(self.numeric_modifier(*precision, *scale as i64, data_type, location)?),
                _ => return Err(self.error(format!("type modifiers on {data_type} are not supported"), location)),
            };
            return Ok((ty, modifier));
        }
        let is_enum = self.columns.iter().any(|column| column.is_enum && column.type_name == type_name);
        if is_enum && parsed_modifiers.is_empty() {
            return Ok((Type::Enum(Arc::from(type_name.as_str())), None));
        }
        Err(unsupported())
    }

    fn unary(&mut self, op: UnaryOperator, operand: &sql::Expr, location: Option<usize>) -> Result<Expr, FilterError> {
        match op {
            UnaryOperator::Not => {
                let arg = self.transform(operand)?;
                let arg = self.coerce_to_boolean(arg, "NOT")?;
                Ok(Expr::new(ExprKind::Not(Box::new(arg)), Type::Bool, location))
            }
            UnaryOperator::Minus => {
                // PostgreSQL's grammar folds a minus sign into a numeric constant (`doNegate`),
                // so -2147483648 is an int4 constant while -(2147483648::int8) is an operator.
                if let sql::Expr::Value(value) = strip_nesting(operand) {
                    if let sql::Value::Number(text, _) = &value.value {
                        return self.number(text, true, location);
                    }
                }
                let arg = self.transform(operand)?;
                self.operator("-", vec![arg], location)
            }
            UnaryOperator::Plus => {
                let arg = self.transform(operand)?;
                self.operator("+", vec![arg], location)
            }
            other => Err(self.error(format!("operator {other} is not supported"), location)),
        }
    }

    fn binary(&mut self, left: &sql::Expr, op: &BinaryOperator, right: &sql::Expr, location: Option<usize>) -> Result<Expr, FilterError> {
        let name = match op {
            BinaryOperator::And | BinaryOperator::Or => {
                let is_and = matches!(op, BinaryOperator::And);
                let construct = if is_and { "AND" } else { "OR" };
                let left = self.transform(left)?;
                let left = self.coerce_to_boolean(left, construct)?;
                let right = self.transform(right)?;
                let right = self.coerce_to_boolean(right, construct)?;
                let kind = if is_and { ExprKind::And(vec![left, right]) } else { ExprKind::Or(vec![left, right]) };
                return Ok(Expr::new(kind, Type::Bool, location));
            }
            BinaryOperator::Eq => "=",
            BinaryOperator::NotEq => "<>",
            BinaryOperator::Lt => "<",
            BinaryOperator::LtEq => "<=",
            BinaryOperator::Gt => ">",
            BinaryOperator::GtEq => ">=",
            BinaryOperator::Plus => "+",
            BinaryOperator::Minus => "-",
            BinaryOperator::Multiply => "*",
            BinaryOperator::Divide => "/",
            BinaryOperator::Modulo => "%",
            BinaryOperator::StringConcat => "||",
            BinaryOperator::AtArrow => "@>",
            BinaryOperator::ArrowAt => "<@",
            BinaryOperator::PGOverlap => "&&",
            other => return Err(self.error(format!("operator {other} is not supported"), location)),
        };
        let left = self.transform(left)?;
        let right = self.transform(right)?;
        self.operator(name, vec![left, right], location)
    }

    /// Builds an operator node: resolves the catalog entry, converts the arguments and
    /// checks collation and support.
    pub(crate) fn operator(&mut self, name: &'static str, args: Vec<Expr>, location: Option<usize>) -> Result<Expr, FilterError> {
        for arg in &args {
            self.reject_unsupported(arg)?;
        }
        let Resolved { arguments: declared, result, .. } = self.resolve_operator(name, &args, location)?;

        if matches!((name, declared.first()), ("*" | "/", Some(Type::Interval | Type::Float8)) if declared.contains(&Type::Interval)) {
            return Err(self.error(format!("operator {name} between interval and double precision is not supported"), location));
        }
        if let Some(Type::Enum(_)) = declared.first() {
            if !matches!(name, "=" | "<>") {
                return Err(self.error(
                    format!("operator {name} on enum values is not supported: the order of enum labels is not known here, only = and <> are"),
                    location,
                ));
            }
        }

        let mut converted = Vec::with_capacity(args.len());
        for (arg, target) in args.into_iter().zip(&declared) {
            converted.push(self.coerce(arg, target, CastContext::Implicit, None, false, location)?);
        }
        if is_ordering(name) {
            for arg in &converted {
                self.check_collation(arg, &format!("operator {name}"), location)?;
            }
        }

        let collation = first_collation(&converted);
        let mut expr = Expr::new(ExprKind::Operator { name, declared, args: converted }, result, location);
        if expr.ty.is_collatable() {
            expr.collation = collation;
        }
        Ok(expr)
    }

    fn resolve_operator(&self, name: &'static str, args: &[Expr], location: Option<usize>) -> Result<Resolved, FilterError> {
        let types: Vec<Type> = args.iter().map(|arg| arg.ty.clone()).collect();
        catalog::resolve_operator(name, &types).map_err(|message| self.error(message, location))
    }

    /// Rejects collation-dependent operations on text whose collation is not bytewise.
    fn check_collation(&self, expr: &Expr, operation: &str, location: Option<usize>) -> Result<(), FilterError> {
        if !expr.ty.is_collatable() {
            return Ok(());
        }
        let collation = expr.collation.clone().unwrap_or_else(|| self.default_collation.clone());
        if BYTEWISE_COLLATIONS.contains(&collation.as_ref()) {
            return Ok(());
        }
        let subject = match &expr.kind {
            ExprKind::Column(index) => format!("column \"{}\"", self.columns[*index].name),
            ExprKind::Cast { input, .. } if matches!(input.kind, ExprKind::Column(_)) => {
                let ExprKind::Column(index) = input.kind else { unreachable!("matched above") };
                format!("column \"{}\"", self.columns[index].name)
            }
            _ => "text".to_owned(),
        };
        Err(self.error(
            format!(
                "{operation} on {subject} depends on its collation \"{collation}\", and only the C and POSIX collations can be evaluated here; compare for equality instead"
            ),
            location,
        ))
    }

    fn null_test(&mut self, arg: &sql::Expr, negated: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let arg = self.transform(arg)?;
        Ok(Expr::new(ExprKind::NullTest { arg: Box::new(arg), negated }, Type::Bool, location))
    }

    fn bool_test(&mut self, arg: &sql::Expr, test: BoolTest, location: Option<usize>) -> Result<Expr, FilterError> {
        let arg = self.transform(arg)?;
        let arg = self.coerce_to_boolean(arg, test.sql())?;
        Ok(Expr::new(ExprKind::BoolTest { arg: Box::new(arg), test }, Type::Bool, location))
    }

    fn distinct(&mut self, left: &sql::Expr, right: &sql::Expr, negated: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let left = self.transform(left)?;
        let right = self.transform(right)?;
        let equality = self.operator("=", vec![left, right], location)?;
        let ExprKind::Operator { declared, mut args, .. } = equality.kind else { unreachable!("operator() builds an operator node") };
        let right = args.pop().expect("two arguments");
        let left = args.pop().expect("two arguments");
        Ok(Expr::new(ExprKind::Distinct { left: Box::new(left), right: Box::new(right), declared, negated }, Type::Bool, location))
    }

    /// Builds `x [NOT] IN (list)` as `transformAExprIn` does. Two or more items that
    /// reference no column and share a common type with `x` become one `x = ANY (array)`
    /// test (an `In` node). Every other item gets its own `=` (or `<>`) operator, and the
    /// terms are combined with OR (AND for NOT IN). A single `x IN (NULL)` then folds to
    /// NULL, as in PostgreSQL.
    fn in_list(&mut self, left: &sql::Expr, items: &[sql::Expr], negated: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let left = self.transform(left)?;
        self.reject_unsupported(&left)?;
        let mut transformed = Vec::with_capacity(items.len());
        for item in items {
            transformed.push(self.transform(item)?);
        }
        let name = if negated { "<>" } else { "=" };

        let mut terms = Vec::new();
        let mut separate = transformed;
        if separate.iter().filter(|item| item.is_row_independent()).count() > 1 {
            let (constants, columns): (Vec<Expr>, Vec<Expr>) = separate.clone().into_iter().partition(Expr::is_row_independent);
            let mut types = vec![left.ty.clone()];
            types.extend(constants.iter().map(|item| item.ty.clone()));
            if let Ok(common) = catalog::select_common_type(&types, "IN") {
                if constants.iter().all(|item| catalog::can_coerce(&item.ty, &common)) {
                    terms.push(self.in_group(&left, constants, &common, negated, location)?);
                    separate = columns;
                }
            }
        }
        for item in separate {
            terms.push(self.operator(name, vec![left.clone(), item], location)?);
        }
        if terms.len() == 1 {
            return Ok(terms.pop().expect("one term"));
        }
        let kind = if negated { ExprKind::And(terms) } else { ExprKind::Or(terms) };
        Ok(Expr::new(kind, Type::Bool, location))
    }

    /// Builds the `In` node for constant items converted to their common type with `left`.
    fn in_group(&mut self, left: &Expr, constants: Vec<Expr>, common: &Type, negated: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let probe = vec![left.clone(), Expr::constant(None, common.clone(), location)];
        let declared = self.resolve_operator("=", &probe, location)?.arguments;
        let mut items = Vec::with_capacity(constants.len());
        for item in constants {
            let item_location = item.location;
            let item = self.coerce(item, common, CastContext::Implicit, None, false, item_location)?;
            let item = self.coerce(item, &declared[1], CastContext::Implicit, None, false, item_location)?;
            items.push((declared.clone(), item));
        }
        let left = self.coerce(left.clone(), &declared[0], CastContext::Implicit, None, false, location)?;
        Ok(Expr::new(ExprKind::In { left: Box::new(left), items, negated }, Type::Bool, location))
    }

    /// `BETWEEN` expands as PostgreSQL expands it: `x >= a AND x <= b`, `NOT BETWEEN` as
    /// `x < a OR x > b`, and `SYMMETRIC` as the OR (or AND) of both orders.
    fn between(&mut self, arg: &sql::Expr, negated: bool, low: &sql::Expr, high: &sql::Expr, location: Option<usize>) -> Result<Expr, FilterError> {
        // BETWEEN keywords come after their left operand's and before their bounds' in the
        // token stream, so the flags are consumed in that order.
        let arg = self.transform(arg)?;
        let symmetric = self.between_symmetric.get(self.next_between).copied().unwrap_or(false);
        self.next_between += 1;
        let low = self.transform(low)?;
        let high = self.transform(high)?;
        let (lower_op, upper_op) = if negated { ("<", ">") } else { (">=", "<=") };
        let build = |analyzer: &mut Self, low: Expr, high: Expr| -> Result<Expr, FilterError> {
            let first = analyzer.operator(lower_op, vec![arg.clone(), low], location)?;
            let second = analyzer.operator(upper_op, vec![arg.clone(), high], location)?;
            let kind = if negated { ExprKind::Or(vec![first, second]) } else { ExprKind::And(vec![first, second]) };
            Ok(Expr::new(kind, Type::Bool, location))
        };
        let forward = build(self, low.clone(), high.clone())?;
        if !symmetric {
            return Ok(forward);
        }
        let backward = build(self, high, low)?;
        let kind = if negated { ExprKind::And(vec![forward, backward]) } else { ExprKind::Or(vec![forward, backward]) };
        Ok(Expr::new(kind, Type::Bool, location))
    }

    #[allow(clippy::too_many_arguments)]
    fn like(
        &mut self,
        any: bool,
        arg: &sql::Expr,
        pattern: &sql::Expr,
        escape: Option<&sql::Expr>,
        case_insensitive: bool,
        negated: bool,
        location: Option<usize>,
    ) -> Result<Expr, FilterError> {
        if any {
            return Err(self.error("LIKE ANY is not supported", location));
        }
        let arg = self.transform(arg)?;
        let pattern = self.transform(pattern)?;
        self.reject_unsupported(&arg)?;
        self.reject_unsupported(&pattern)?;

        let name = if case_insensitive { "~~*" } else { "~~" };
        let resolved = self.resolve_operator(name, &[arg.clone(), pattern.clone()], location)?;
        let bpchar = resolved.arguments[0] == Type::Bpchar;
        let arg = self.coerce(arg, &resolved.arguments[0], CastContext::Implicit, None, false, location)?;
        let pattern = self.coerce(pattern, &resolved.arguments[1], CastContext::Implicit, None, false, location)?;
        if case_insensitive {
            self.check_collation(&arg, "ILIKE", location)?;
        }

        let escape = match escape {
            None => None,
            Some(escape) => {
                let escape = self.transform(escape)?;
                let escape_location = escape.location;
                let escape = self.coerce(escape, &Type::Text, CastContext::Implicit, None, false, escape_location)
                    .map_err(|_| self.error("the ESCAPE value must be text", escape_location))?;
                Some(Box::new(escape))
            }
        };
        Ok(Expr::new(
            ExprKind::Like { arg: Box::new(arg), pattern: Box::new(pattern), escape, case_insensitive, negated, bpchar },
            Type::Bool,
            location,
        ))
    }

    /// `x op ANY (array)` / `x op ALL (array)` as `make_scalar_array_op` does: the operator
    /// is chosen for `x` and the array's element type, then the array is converted to an
    /// array of the operator's right type.
    fn scalar_array(&mut self, left: &sql::Expr, op: &BinaryOperator, right: &sql::Expr, all: bool, location: Option<usize>) -> Result<Expr, FilterError> {
        let name = match op {
            BinaryOperator::Eq => "=",
            BinaryOperator::NotEq => "<>",
            BinaryOperator::Lt => "<",
            BinaryOperator::LtEq => "<=",
            BinaryOperator::Gt => ">",
            BinaryOperator::GtEq => ">=",
            other => return Err(self.error(format!("operator {other} with ANY/ALL is not supported"), location)),
        };
        if let sql::Expr::Subquery(_) = strip_nesting(right) {
            return Err(self.error("subqueries are not supported", location));
        }

        let left = self.transform(left)?;
        let array = self.transform(right)?;
        self.reject_unsupported(&left)?;
        self.reject_unsupported(&array)?;
        let element = match &array.ty {
            Type::Unknown => Type::Unknown,
            Type::Array(element) => (**element).clone(),
            other => return Err(self.error(format!("op ANY/ALL (array) requires array on right side, not {other}"), location)),
        };
        let probe = vec![left, Expr::constant(None, element, location)];
        let resolved = self.resolve_operator(name, &probe, location)?;
        let [left, _] = <[Expr; 2]>::try_from(probe).expect("two arguments");
        if let Some(Type::Enum(_)) = resolved.arguments.first() {
            if !matches!(name, "=" | "<>") {
                return Err(self.error(format!("operator {name} on enum values is not supported"), location));
            }
        }

        let left = self.coerce(left, &resolved.arguments[0], CastContext::Implicit, None, false, location)?;
        let array_type = Type::Array(Box::new(resolved.arguments[1].clone()));
        let array_location = array.location;
        let array = self.coerce(array, &array_type, CastContext::Implicit, None, false, array_location)?;
        if is_ordering(name) {
            self.check_collation(&left, &format!("operator {name}"), location)?;
            self.check_collation(&array, &format!("operator {name}"), location)?;
        }
        Ok(Expr::new(
            ExprKind::ScalarArray { name, declared: resolved.arguments, left: Box::new(left), array: Box::new(array), all },
            Type::Bool,
            location,
        ))
    }

    fn function(&mut self, function: &sql::Function, location: Option<usize>) -> Result<Expr, FilterError> {
        let name = match function.name.0.as_slice() {
            [ObjectNamePart::Identifier(ident)] => identifier_name(ident),
            [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(ident)] if identifier_name(schema) == "pg_catalog" => {
                identifier_name(ident)
            }
            _ => return Err(self.error(format!("function {} is not supported", function.name), location)),
        };
        if NON_DETERMINISTIC_FUNCTIONS.contains(&name.as_str()) {
            return Err(self.error(
                format!("function {name}() is not allowed: its result changes over time, so rows could not be matched consistently"),
                location,
            ));
        }
        if function.over.is_some() {
            return Err(self.error("window functions are not allowed in WHERE", location));
        }
        if AGGREGATE_FUNCTIONS.contains(&name.as_str()) || function.filter.is_some() || !function.within_group.is_empty() {
            return Err(self.error("aggregate functions are not allowed in WHERE", location));
        }
        let args = match &function.args {
            FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                    return Err(self.error("aggregate functions are not allowed in WHERE", location));
                }
                let mut args = Vec::with_capacity(list.args.len());
                for arg in &list.args {
                    match arg {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => args.push(expr),
                        FunctionArg::Unnamed(_) => return Err(self.error("aggregate functions are not allowed in WHERE", location)),
                        _ => return Err(self.error("named function arguments are not supported", location)),
                    }
                }
                args
            }
            FunctionArguments::None => {
                return Err(self.error(format!("{name} is not supported"), location));
            }
            FunctionArguments::Subquery(_) => return Err(self.error("subqueries are not supported", location)),
        };
        let mut transformed = Vec::with_capacity(args.len());
        for arg in args {
            let arg = self.transform(arg)?;
            self.reject_unsupported(&arg)?;
            transformed.push(arg);
        }
        match name.as_str() {
            "coalesce" => self.common_type_function("COALESCE", transformed, location),
            "greatest" | "least" => {
                let construct = if name == "greatest" { "GREATEST" } else { "LEAST" };
                self.common_type_function(construct, transformed, location)
            }
            "concat" => {
                let args = transformed
                    .into_iter()
                    .map(|arg| match arg.kind {
                        // An unknown literal is passed to concat as text.
                        ExprKind::Unresolved { .. } => {
                            let arg_location = arg.location;
                            self.coerce(arg, &Type::Text, CastContext::Implicit, None, false, arg_location)
                        }
                        _ => Ok(arg),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::new(ExprKind::Function { function: Function::Concat, args }, Type::Text, location))
            }
            "lower" | "upper" | "length" | "abs" | "btrim" | "ltrim" | "rtrim" => self.catalog_function(&name, transformed, location),
            _ => Err(self.error(
                format!(
                    "function {name}() is not supported; the supported functions are lower, upper, length, coalesce, concat, greatest, least, abs and trim"
                ),
                location,
            )),
        }
    }

    fn catalog_function(&mut self, name: &str, args: Vec<Expr>, location: Option<usize>) -> Result<Expr, FilterError> {
        let types: Vec<Type> = args.iter().map(|arg| arg.ty.clone()).collect();
        if !catalog::is_known_function(name) {
            return Err(self.error(format!("function {name}() is not supported"), location));
        }
        let resolved = catalog::resolve_function(name, &types).map_err(|message| self.error(message, location))?;
        let mut converted = Vec::with_capacity(args.len());
        for (arg, target) in args.into_iter().zip(&resolved.arguments) {
            converted.push(self.coerce(arg, target, CastContext::Implicit, None, false, location)?);
        }
        let function = match name {
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            "length" => Function::Length,
            "abs" => Function::Abs,
            "btrim" => Function::Btrim,
            "ltrim" => Function::Ltrim,
            _ => Function::Rtrim,
        };
        if matches!(function, Function::Lower | Function::Upper) {
            self.check_collation(&converted[0], &format!("{name}()"), location)?;
        }
        let collation = first_collation(&converted);
        let mut expr = Expr::new(ExprKind::Function { function, args: converted }, resolved.result, location);
        if expr.ty.is_collatable() {
            expr.collation = collation;
        }
        Ok(expr)
    }

    /// COALESCE, GREATEST and LEAST: the arguments are converted to their common type.
    fn common_type_function(&mut self, construct: &str, args: Vec<Expr>, location: Option<usize>) -> Result<Expr, FilterError> {
        if args.is_empty() {
            return Err(self.error(format!("{construct} needs at least one argument"), location));
        }
        let types: Vec<Type> = args.iter().map(|arg| arg.ty.clone()).collect();
        let common = catalog::select_common_type(&types, construct).map_err(|message| self.error(message, location))?;
        let mut converted = Vec::with_capacity(args.len());
        for arg in args {
            if !catalog::can_coerce(&arg.ty, &common) {
                return Err(self.error(format!("{construct} could not convert type {} to {common}", arg.ty), arg.location));
            }
            let arg_location = arg.location;
            converted.push(self.coerce(arg, &common, CastContext::Implicit, None, false, arg_location)?);
        }
        let collation = first_collation(&converted);
        let kind = if construct == "COALESCE" {
            ExprKind::Coalesce(converted)
        } else {
            if matches!(common, Type::Enum(_)) {
                return Err(self.error(format!("{construct} on enum values is not supported"), location));
            }
            for arg in &converted {
                self.check_collation(arg, construct, location)?;
            }
            ExprKind::MinMax { greatest: construct == "GREATEST", args: converted }
        };
        let mut expr = Expr::new(kind, common, location);
        if expr.ty.is_collatable() {
            expr.collation = collation;
        }
        Ok(expr)
    }

    /// `TRIM([BOTH | LEADING | TRAILING] [chars FROM] x)` is `btrim`, `ltrim` or `rtrim`.
    fn trim(
        &mut self,
        trim_where: Option<&TrimWhereField>,
        trim_what: Option<&sql::Expr>,
        arg: &sql::Expr,
        trim_characters: Option<&[sql::Expr]>,
        location: Option<usize>,
    ) -> Result<Expr, FilterError> {
        let name = match trim_where {
            None | Some(TrimWhereField::Both) => "btrim",
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
        };
        let mut args = vec![self.transform(arg)?];
        match (trim_what, trim_characters) {
            (Some(characters), None) => args.push(self.transform(characters)?),
            (None, Some([characters])) => args.push(self.transform(characters)?),
            (None, None) => {}
            _ => return Err(self.error("TRIM takes at most one set of characters", location)),
        }
        for arg in &args {
            self.reject_unsupported(arg)?;
        }
        self.catalog_function(name, args, location)
    }

    /// `ARRAY[...]`: elements converted to their common type, or to `element` when the
    /// constructor is the operand of a cast to an array type.
    fn array_constructor(&mut self, elements: &[sql::Expr], element: Option<&Type>, location: Option<usize>) -> Result<Expr, FilterError> {
        let mut transformed = Vec::with_capacity(elements.len());
        for item in elements {
            if let sql::Expr::Array(_) = strip_nesting(item) {
                return Err(self.error("multidimensional arrays are not supported", location));
            }
            let item = self.transform(item)?;
            self.reject_unsupported(&item)?;
            if item.ty.is_array() {
                return Err(self.error("multidimensional arrays are not supported", item.location));
            }
            transformed.push(item);
        }
        let (element_type, context) = match element {
            Some(ty) => (ty.clone(), CastContext::Explicit),
            None => {
                if transformed.is_empty() {
                    return Err(self.error("cannot determine type of empty array: write ARRAY[]::type[]", location));
                }
                let types: Vec<Type> = transformed.iter().map(|item| item.ty.clone()).collect();
                let common = catalog::select_common_type(&types, "ARRAY").map_err(|message| self.error(message, location))?;
                (common, CastContext::Implicit)
            }
        };
        let mut converted = Vec::with_capacity(transformed.len());
        for item in transformed {
            let item_location = item.location;
            if context == CastContext::Implicit && !catalog::can_coerce(&item.ty, &element_type) {
                return Err(self.error(format!("ARRAY could not convert type {} to {element_type}", item.ty), item_location));
            }
            converted.push(self.coerce(item, &element_type, context, None, context == CastContext::Explicit, item_location)?);
        }
        let collation = first_collation(&converted);
        let mut expr = Expr::new(ExprKind::ArrayConstructor(converted), Type::Array(Box::new(element_type)), location);
        if expr.ty.is_collatable() {
            expr.collation = collation;
        }
        Ok(expr)
    }
}

fn is_ordering(name: &str) -> bool {
    matches!(name, "<" | "<=" | ">" | ">=")
}

fn first_collation(args: &[Expr]) -> Option<Arc<str>> {
    args.iter().find_map(|arg| arg.collation.clone())
}

fn strip_nesting(expr: &sql::Expr) -> &sql::Expr {
    match expr {
        sql::Expr::Nested(inner) => strip_nesting(inner),
        other => other,
    }
}

/// Returns the text of a string constant of any quoting style PostgreSQL accepts.
fn string_literal(value: &sql::Value) -> Option<String> {
    match value {
        sql::Value::SingleQuotedString(text) | sql::Value::EscapedStringLiteral(text) | sql::Value::UnicodeStringLiteral(text) => {
            Some(text.clone())
        }
        sql::Value::DollarQuotedString(quoted) => Some(quoted.value.clone()),
        _ => None,
    }
}

/// Applies PostgreSQL's identifier rules: unquoted names fold ASCII letters to lower case,
/// and names longer than 63 bytes are truncated.
pub(crate) fn identifier_name(ident: &sql::Ident) -> String {
    let mut name = if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_ascii_lowercase() };
    if name.len() > MAX_IDENTIFIER_BYTES {
        let mut end = MAX_IDENTIFIER_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// Byte offset of a 1-based line and character column in `text`.
pub(crate) fn line_column_offset(text: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut line_start = 0;
    for _ in 1..line {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let line_text = &text[line_start..];
    let offset = line_text.char_indices().nth(column as usize - 1).map(|(index, _)| index).unwrap_or(line_text.len());
    Some(line_start + offset)
}
