//! Evaluation of the checked tree against one row, with SQL's three-valued logic and the
//! error behaviour of PostgreSQL 15's operators, functions and casts.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::datetime::{self, Interval};
use crate::expr::{BoolTest, Expr, ExprKind, Function, TypeModifier};
use crate::float;
use crate::like;
use crate::types::Type;
use crate::value::{self, ArrayValue, Value};

/// The outcome of evaluating a node: `Ok(None)` is SQL NULL, `Err` an evaluation error.
pub(crate) type Evaluated = Result<Option<Value>, String>;

/// The row being evaluated: column texts, parsed on first use.
pub(crate) struct Row<'a> {
    texts: &'a [Option<&'a str>],
    types: &'a [Type],
    parsed: Vec<Option<Option<Value>>>,
}

impl<'a> Row<'a> {
    pub(crate) fn new(texts: &'a [Option<&'a str>], types: &'a [Type]) -> Row<'a> {
        Row { texts, types, parsed: vec![None; types.len()] }
    }

    /// Creates a row with no columns, for evaluating constant expressions.
    pub(crate) fn empty() -> Row<'static> {
        Row { texts: &[], types: &[], parsed: Vec::new() }
    }

    fn column(&mut self, index: usize) -> Evaluated {
        if let Some(Some(cached)) = self.parsed.get(index) {
            return Ok(cached.clone());
        }
        let text = self
            .texts
            .get(index)
            .ok_or_else(|| format!("the row has {} columns, but the clause reads column {}", self.texts.len(), index + 1))?;
        let value = match text {
            None => None,
            Some(text) => {
                let ty = &self.types[index];
                Some(value::parse_value(ty, text).map_err(|message| format!("column {} holds an unreadable value: {message}", index + 1))?)
            }
        };
        self.parsed[index] = Some(value.clone());
        Ok(value)
    }
}

/// Evaluates `expr` for `row`.
pub(crate) fn evaluate(expr: &Expr, row: &mut Row<'_>) -> Evaluated {
    match &expr.kind {
        ExprKind::Column(index) => row.column(*index),
        ExprKind::Const(value) => Ok(value.clone()),
        ExprKind::Unresolved { text, .. } => Ok(Some(Value::Text(text.clone()))),
        ExprKind::Cast { input, modifier, .. } => match evaluate(input, row)? {
            None => Ok(None),
            Some(value) => cast_value(&input.ty, &expr.ty, value, *modifier),
        },
        ExprKind::Not(arg) => Ok(evaluate(arg, row)?.map(|value| Value::Bool(!as_bool(&value)))),
        ExprKind::And(args) => {
            let mut saw_null = false;
            for arg in args {
                match evaluate(arg, row)? {
                    Some(value) if !as_bool(&value) => return Ok(Some(Value::Bool(false))),
                    Some(_) => {}
                    None => saw_null = true,
                }
            }
            Ok(if saw_null { None } else { Some(Value::Bool(true)) })
        }
        ExprKind::Or(args) => {
            let mut saw_null = false;
            for arg in args {
                match evaluate(arg, row)? {
                    Some(value) if as_bool(&value) => return Ok(Some(Value::Bool(true))),
                    Some(_) => {}
                    None => saw_null = true,
                }
            }
            Ok(if saw_null { None } else { Some(Value::Bool(false)) })
        }
        ExprKind::Operator { name, declared, args } => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(evaluate(arg, row)?);
            }
            if *name == "||" && declared.iter().any(Type::is_array) {
                return concatenate_arrays(declared, values);
            }
            if values.iter().any(Option::is_none) {
                return Ok(None);
            }
            let values: Vec<Value> = values.into_iter().map(|value| value.expect("checked for NULL")).collect();
            apply_operator(name, declared, &expr.ty, &values)
        }
        ExprKind::Function { function, args } => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(evaluate(arg, row)?);
            }
            if *function == Function::Concat {
                let mut text = String::new();
                for (arg, value) in args.iter().zip(&values) {
                    if let Some(value) = value {
                        text.push_str(&value::format_value(&arg.ty, value));
                    }
                }
                return Ok(Some(Value::Text(Arc::from(text))));
            }
            if values.iter().any(Option::is_none) {
                return Ok(None);
            }
            let values: Vec<Value> = values.into_iter().map(|value| value.expect("checked for NULL")).collect();
            apply_function(*function, args, &values)
        }
        ExprKind::NullTest { arg, negated } => {
            let is_null = evaluate(arg, row)?.is_none();
            Ok(Some(Value::Bool(is_null != *negated)))
        }
        ExprKind::BoolTest { arg, test } => {
            let value = evaluate(arg, row)?.map(|value| as_bool(&value));
            let result = match test {
                BoolTest::IsTrue => value == Some(true),
                BoolTest::IsNotTrue => value != Some(true),
                BoolTest::IsFalse => value == Some(false),
                BoolTest::IsNotFalse => value != Some(false),
                BoolTest::IsUnknown => value.is_none(),
                BoolTest::IsNotUnknown => value.is_some(),
            };
            Ok(Some(Value::Bool(result)))
        }
        ExprKind::Distinct { left, right, declared, negated } => {
            let left = evaluate(left, row)?;
            let right = evaluate(right, row)?;
            let distinct = match (left, right) {
                (None, None) => false,
                (None, Some(_)) | (Some(_), None) => true,
                (Some(left), Some(right)) => !values_equal(declared, &left, &right),
            };
            Ok(Some(Value::Bool(distinct != *negated)))
        }
        ExprKind::ScalarArray { name, declared, left, array, all } => {
            let left = evaluate(left, row)?;
            let Some(array) = evaluate(array, row)? else {
                return Ok(None);
            };
            let Value::Array(array) = array else {
                return Err("ANY/ALL needs an array".to_owned());
            };
            if array.elements.is_empty() {
                return Ok(Some(Value::Bool(*all)));
            }
            let Some(left) = left else {
                return Ok(None);
            };
            let mut saw_null = false;
            for element in &array.elements {
                let Some(element) = element else {
                    saw_null = true;
                    continue;
                };
                let Some(Value::Bool(result)) = apply_operator(name, declared, &Type::Bool, &[left.clone(), element.clone()])? else {
                    saw_null = true;
                    continue;
                };
                if result != *all {
                    return Ok(Some(Value::Bool(result)));
                }
            }
            Ok(if saw_null { None } else { Some(Value::Bool(*all)) })
        }
        ExprKind::In { left, items, negated } => {
            let left = evaluate(left, row)?;
            let mut saw_null = false;
            let mut found = false;
            for (declared, item) in items {
                let item = evaluate(item, row)?;
                match (&left, item) {
                    (Some(left), Some(item)) => {
                        if values_equal(declared, left, &item) {
                            found = true;
                            break;
                        }
                    }
                    _ => saw_null = true,
                }
            }
            Ok(if found {
                Some(Value::Bool(!*negated))
            } else if saw_null {
                None
            } else {
                Some(Value::Bool(*negated))
            })
        }
        ExprKind::Like { arg, pattern, escape, case_insensitive, negated, .. } => {
            let text = evaluate(arg, row)?;
            let pattern = evaluate(pattern, row)?;
            let escape = match escape {
                Some(escape) => match evaluate(escape, row)? {
                    Some(value) => Some(value),
                    None => return Ok(None),
                },
                None => None,
            };
            let (Some(text), Some(pattern)) = (text, pattern) else {
                return Ok(None);
            };
            let mut pattern = as_text(&pattern).to_string();
            if let Some(escape) = escape {
                pattern = like::apply_escape(&pattern, as_text(&escape))?;
            }
            let mut text = as_text(&text).to_string();
            if *case_insensitive {
                text = text.to_ascii_lowercase();
                pattern = pattern.to_ascii_lowercase();
            }
            let matched = like::like_match(&text, &pattern)?;
            Ok(Some(Value::Bool(matched != *negated)))
        }
        ExprKind::ArrayConstructor(items) => {
            let mut elements = Vec::with_capacity(items.len());
            for item in items {
                elements.push(evaluate(item, row)?);
            }
            Ok(Some(Value::Array(Arc::new(ArrayValue::one_dimensional(elements)))))
        }
        ExprKind::Coalesce(args) => {
            for arg in args {
                if let Some(value) = evaluate(arg, row)? {
                    return Ok(Some(value));
                }
            }
            Ok(None)
        }
        ExprKind::MinMax { greatest, args } => {
            let mut best: Option<Value> = None;
            for arg in args {
                let Some(value) = evaluate(arg, row)? else { continue };
                let replace = match &best {
                    None => true,
                    Some(current) => {
                        let order = value::compare_values(&expr.ty, &value, &expr.ty, current);
                        if *greatest {
                            order == Ordering::Greater
                        } else {
                            order == Ordering::Less
                        }
                    }
                };
                if replace {
                    best = Some(value);
                }
            }
            Ok(best)
        }
    }
}

fn as_bool(value: &Value) -> bool {
    matches!(value, Value::Bool(true))
}

fn as_text(value: &Value) -> &str {
    match value {
        Value::Text(text) => text,
        _ => "",
    }
}

/// Applies the `=` operator of the declared types.
fn values_equal(declared: &[Type], left: &Value, right: &Value) -> bool {
    matches!(apply_operator("=", declared, &Type::Bool, &[left.clone(), right.clone()]), Ok(Some(Value::Bool(true))))
}

fn boolean(value: bool) -> Evaluated {
    Ok(Some(Value::Bool(value)))
}

/// Applies a strict operator to non-NULL arguments.
pub(crate) fn apply_operator(name: &str, declared: &[Type], result: &Type, args: &[Value]) -> Evaluated {
    if let [arg] = args {
        return apply_prefix(name, result, arg);
    }
    let (left_type, right_type) = (&declared[0], &declared[1]);
    let (left, right) = (&args[0], &args[1]);
    match name {
        "=" | "<>" | "<" | "<=" | ">" | ">=" => {
            if let (Value::Array(a), Value::Array(b), "=" | "<>") = (left, right, name) {
                let element = left_type.element().unwrap_or(&Type::Text);
                return boolean(value::arrays_equal(element, a, b) == (name == "="));
            }
            let order = value::compare_values(left_type, left, right_type, right);
            boolean(match name {
                "=" => order == Ordering::Equal,
                "<>" => order != Ordering::Equal,
                "<" => order == Ordering::Less,
                "<=" => order != Ordering::Greater,
                ">" => order == Ordering::Greater,
                _ => order != Ordering::Less,
            })
        }
        "+" | "-" | "*" | "/" | "%" => arithmetic(name, left_type, right_type, result, left, right),
        "||" => {
            let text = format!("{}{}", value::format_value(left_type, left), value::format_value(right_type, right));
            Ok(Some(Value::Text(Arc::from(text))))
        }
        "@>" | "<@" | "&&" => {
            let (Value::Array(a), Value::Array(b)) = (left, right) else {
                return Err(format!("operator {name} needs arrays"));
            };
            let element = left_type.element().unwrap_or(&Type::Text);
            boolean(match name {
                "@>" => array_contains(element, a, b),
                "<@" => array_contains(element, b, a),
                _ => array_overlaps(element, a, b),
            })
        }
        _ => Err(format!("operator {name} cannot be evaluated")),
    }
}

/// True when every element of `needles` equals some element of `haystack`; a NULL element in
/// `needles` makes it false, NULLs in `haystack` never match (`array_contain_compare`).
fn array_contains(element: &Type, haystack: &ArrayValue, needles: &ArrayValue) -> bool {
    needles.elements.iter().all(|needle| match needle {
        None => false,
        Some(needle) => haystack.elements.iter().flatten().any(|candidate| value::compare_values(element, needle, element, candidate) == Ordering::Equal),
    })
}

fn array_overlaps(element: &Type, left: &ArrayValue, right: &ArrayValue) -> bool {
    left.elements.iter().flatten().any(|item| {
        right.elements.iter().flatten().any(|candidate| value::compare_values(element, item, element, candidate) == Ordering::Equal)
    })
}

/// `array_cat`, `array_append` and `array_prepend`, which are not strict: a NULL array acts
/// as an empty one and a NULL element is added as NULL.
fn concatenate_arrays(declared: &[Type], values: Vec<Option<Value>>) -> Evaluated {
    let as_array = |value: &Option<Value>| -> Result<Option<Arc<ArrayValue>>, String> {
        match value {
            None => Ok(None),
            Some(Value::Array(array)) => Ok(Some(array.clone())),
            Some(_) => Err("array concatenation needs an array".to_owned()),
        }
    };
    match (declared[0].is_array(), declared[1].is_array()) {
        (true, true) => match (as_array(&values[0])?, as_array(&values[1])?) {
            (None, None) => Ok(None),
            (Some(array), None) | (None, Some(array)) => Ok(Some(Value::Array(array))),
            (Some(left), Some(right)) => Ok(Some(Value::Array(Arc::new(concatenate(&left, &right)?)))),
        },
        (true, false) => {
            let array = as_array(&values[0])?;
            let (lower, mut elements) = one_dimensional_parts(array.as_deref())?;
            elements.push(values[1].clone());
            let length = elements.len() as i32;
            Ok(Some(Value::Array(Arc::new(ArrayValue { dimensions: vec![(lower, length)], elements }))))
        }
        _ => {
            let array = as_array(&values[1])?;
            // array_prepend keeps the array's lower bound.
            let (lower, rest) = one_dimensional_parts(array.as_deref())?;
            let mut elements = vec![values[0].clone()];
            elements.extend(rest);
            let length = elements.len() as i32;
            Ok(Some(Value::Array(Arc::new(ArrayValue { dimensions: vec![(lower, length)], elements }))))
        }
    }
}

/// Returns the lower bound and elements of an array that an element is added to.
fn one_dimensional_parts(array: Option<&ArrayValue>) -> Result<(i32, Vec<Option<Value>>), String> {
    match array {
        None => Ok((1, Vec::new())),
        Some(array) if array.dimensions.len() > 1 => Err("argument must be empty or one-dimensional array".to_owned()),
        Some(array) => Ok((array.dimensions.first().map_or(1, |dimension| dimension.0), array.elements.clone())),
    }
}

/// `array_cat` of two non-NULL arrays: arrays of equal rank join along the first dimension,
/// and an array of one rank less is added as one more item of the first dimension.
fn concatenate(left: &Arc<ArrayValue>, right: &Arc<ArrayValue>) -> Result<ArrayValue, String> {
    if left.elements.is_empty() {
        return Ok((**right).clone());
    }
    if right.elements.is_empty() {
        return Ok((**left).clone());
    }
    let incompatible = || "cannot concatenate incompatible arrays".to_owned();
    let (left_rank, right_rank) = (left.dimensions.len(), right.dimensions.len());
    let dimensions = if left_rank == right_rank {
        if left.dimensions[1..] != right.dimensions[1..] {
            return Err(incompatible());
        }
        let (lower, length) = left.dimensions[0];
        let mut dimensions = vec![(lower, length + right.dimensions[0].1)];
        dimensions.extend_from_slice(&left.dimensions[1..]);
        dimensions
    } else if left_rank + 1 == right_rank {
        if left.dimensions[..] != right.dimensions[1..] {
            return Err(incompatible());
        }
        let (lower, length) = right.dimensions[0];
        let mut dimensions = vec![(lower, length + 1)];
        dimensions.extend_from_slice(&right.dimensions[1..]);
        dimensions
    } else if left_rank == right_rank + 1 {
        if left.dimensions[1..] != right.dimensions[..] {
            return Err(incompatible());
        }
        let (lower, length) = left.dimensions[0];
        let mut dimensions = vec![(lower, length + 1)];
        dimensions.extend_from_slice(&left.dimensions[1..]);
        dimensions
    } else {
        return Err(incompatible());
    };
    let mut elements = left.elements.clone();
    elements.extend(right.elements.iter().cloned());
    Ok(ArrayValue { dimensions, elements })
}

fn apply_prefix(name: &str, result: &Type, arg: &Value) -> Evaluated {
    if name == "+" {
        return Ok(Some(arg.clone()));
    }
    Ok(Some(match arg {
        Value::Int(value) => Value::Int(check_integer(-(*value as i128), result)?),
        Value::Numeric(value) => Value::Numeric(value.negate()),
        Value::Float4(value) => Value::Float4(-value),
        Value::Float8(value) => Value::Float8(-value),
        Value::Interval(value) => Value::Interval(value.negate()?),
        _ => return Err(format!("operator {name} cannot be evaluated")),
    }))
}

fn check_integer(value: i128, ty: &Type) -> Result<i64, String> {
    let (min, max) = ty.integer_range().unwrap_or((i64::MIN, i64::MAX));
    if value < min as i128 || value > max as i128 {
        return Err(format!("{} out of range", ty.integer_label()));
    }
    Ok(value as i64)
}

fn arithmetic(name: &str, left_type: &Type, right_type: &Type, result: &Type, left: &Value, right: &Value) -> Evaluated {
    let interval = |value: &Value| match value {
        Value::Interval(interval) => *interval,
        _ => Interval { months: 0, days: 0, micros: 0 },
    };
    Ok(Some(match (left, right) {
        (Value::Int(a), Value::Int(b)) if left_type.is_integer() && right_type.is_integer() => {
            let (a, b) = (*a as i128, *b as i128);
            let value = match name {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" | "%" if b == 0 => return Err("division by zero".to_owned()),
                "/" => a / b,
                _ => a % b,
            };
            Value::Int(check_integer(value, result)?)
        }
        (Value::Numeric(a), Value::Numeric(b)) => Value::Numeric(match name {
            "+" => a.add(b)?,
            "-" => a.subtract(b)?,
            "*" => a.multiply(b)?,
            "/" => a.divide(b)?,
            _ => a.modulo(b)?,
        }),
        (Value::Float4(a), Value::Float4(b)) => Value::Float4(float4_arithmetic(name, *a, *b)?),
        (Value::Float4(_) | Value::Float8(_), Value::Float4(_) | Value::Float8(_)) => {
            Value::Float8(float8_arithmetic(name, to_f64(left), to_f64(right))?)
        }
        (Value::Date(date), Value::Int(days)) => {
            let days = if name == "-" { -days } else { *days };
            Value::Date(datetime::date_add_days(*date, days)?)
        }
        (Value::Int(days), Value::Date(date)) => Value::Date(datetime::date_add_days(*date, *days)?),
        (Value::Date(a), Value::Date(b)) => Value::Int(datetime::date_difference(*a, *b)? as i32 as i64),
        (Value::Date(date), Value::Time(time)) | (Value::Time(time), Value::Date(date)) => Value::Timestamp(datetime::date_add_time(*date, *time)?),
        (Value::Date(date), Value::Interval(span)) => {
            let start = datetime::date_to_timestamp(*date)?;
            Value::Timestamp(shift_timestamp(name, start, span)?)
        }
        (Value::Interval(span), Value::Date(date)) => Value::Timestamp(datetime::timestamp_add_interval(datetime::date_to_timestamp(*date)?, span)?),
        (Value::Time(time), Value::Interval(span)) => Value::Time(if name == "-" {
            datetime::time_subtract_interval(*time, span)
        } else {
            datetime::time_add_interval(*time, span)
        }),
        (Value::Interval(span), Value::Time(time)) => Value::Time(datetime::time_add_interval(*time, span)),
        (Value::Time(a), Value::Time(b)) => Value::Interval(Interval { months: 0, days: 0, micros: a - b }),
        (Value::Timestamp(start), Value::Interval(span)) => Value::Timestamp(shift_timestamp(name, *start, span)?),
        (Value::Interval(span), Value::Timestamp(start)) => Value::Timestamp(datetime::timestamp_add_interval(*start, span)?),
        (Value::Timestamp(a), Value::Timestamp(b)) => Value::Interval(datetime::timestamp_difference(*a, *b)?),
        (Value::Interval(_), Value::Interval(_)) => Value::Interval(if name == "-" {
            interval(left).subtract(&interval(right))?
        } else {
            interval(left).add(&interval(right))?
        }),
        _ => return Err(format!("operator {name} between {left_type} and {right_type} cannot be evaluated")),
    }))
}

fn shift_timestamp(name: &str, start: i64, span: &Interval) -> Result<i64, String> {
    if name == "-" {
        datetime::timestamp_subtract_interval(start, span)
    } else {
        datetime::timestamp_add_interval(start, span)
    }
}

fn to_f64(value: &Value) -> f64 {
    match value {
        Value::Float4(number) => *number as f64,
        Value::Float8(number) => *number,
        _ => f64::NAN,
    }
}

fn float8_arithmetic(name: &str, a: f64, b: f64) -> Result<f64, String> {
    let infinite_input = a.is_infinite() || b.is_infinite();
    match name {
        "+" => float::check_f64(a + b, infinite_input, true),
        "-" => float::check_f64(a - b, infinite_input, true),
        "*" => float::check_f64(a * b, infinite_input, a == 0.0 || b == 0.0),
        _ => {
            if b == 0.0 && !a.is_nan() {
                return Err("division by zero".to_owned());
            }
            float::check_f64(a / b, a.is_infinite(), a == 0.0 || b.is_infinite())
        }
    }
}

fn float4_arithmetic(name: &str, a: f32, b: f32) -> Result<f32, String> {
    let infinite_input = a.is_infinite() || b.is_infinite();
    match name {
        "+" => float::check_f32(a + b, infinite_input, true),
        "-" => float::check_f32(a - b, infinite_input, true),
        "*" => float::check_f32(a * b, infinite_input, a == 0.0 || b == 0.0),
        _ => {
            if b == 0.0 && !a.is_nan() {
                return Err("division by zero".to_owned());
            }
            float::check_f32(a / b, a.is_infinite(), a == 0.0 || b.is_infinite())
        }
    }
}

fn apply_function(function: Function, args: &[Expr], values: &[Value]) -> Evaluated {
    let text = |index: usize| as_text(&values[index]).to_string();
    Ok(Some(match function {
        // Case mapping under the C collation changes ASCII letters only.
        Function::Lower => Value::Text(Arc::from(text(0).to_ascii_lowercase())),
        Function::Upper => Value::Text(Arc::from(text(0).to_ascii_uppercase())),
        Function::Length => {
            let source = text(0);
            let counted = if args[0].ty == Type::Bpchar { value::trim_bpchar(&source).chars().count() } else { source.chars().count() };
            Value::Int(counted as i64)
        }
        Function::Abs => match &values[0] {
            Value::Int(number) => Value::Int(check_integer((*number as i128).abs(), &args[0].ty)?),
            Value::Numeric(number) => Value::Numeric(number.abs()),
            Value::Float4(number) => Value::Float4(number.abs()),
            Value::Float8(number) => Value::Float8(number.abs()),
            _ => return Err("abs() needs a number".to_owned()),
        },
        Function::Btrim | Function::Ltrim | Function::Rtrim => {
            let characters: Vec<char> = if values.len() > 1 { text(1).chars().collect() } else { vec![' '] };
            let source = text(0);
            let trimmed = match function {
                Function::Btrim => source.trim_matches(|c| characters.contains(&c)),
                Function::Ltrim => source.trim_start_matches(|c| characters.contains(&c)),
                _ => source.trim_end_matches(|c| characters.contains(&c)),
            };
            Value::Text(Arc::from(trimmed))
        }
        Function::Concat => unreachable!("concat is evaluated before strict functions"),
    }))
}

/// Converts a non-NULL value between types as the cast function or I/O conversion that
/// PostgreSQL would use. `Ok(None)` is a NULL result (timestamp infinity to time).
pub(crate) fn cast_value(from: &Type, to: &Type, value: Value, modifier: Option<TypeModifier>) -> Evaluated {
    let converted = convert(from, to, value)?;
    match (converted, modifier) {
        (Some(value), Some(modifier)) => Ok(Some(apply_modifier(value, modifier)?)),
        (converted, _) => Ok(converted),
    }
}

fn convert(from: &Type, to: &Type, value: Value) -> Evaluated {
    use Type::*;
    if from == to {
        return Ok(Some(value));
    }
    let string = |ty: &Type| matches!(ty, Text | Varchar | Bpchar);
    Ok(Some(match (from, to, value) {
        (Bpchar, Text | Varchar, Value::Text(text)) => Value::Text(Arc::from(value::trim_bpchar(&text))),
        (_, _, value @ Value::Text(_)) if string(from) && string(to) => value,
        (Bool, _, Value::Bool(flag)) if string(to) => Value::Text(Arc::from(if flag { "true" } else { "false" })),
        (_, _, value) if string(to) => Value::Text(Arc::from(value::format_value(from, &value))),
        (_, _, Value::Text(text)) if string(from) => value::parse_value(to, &text)?,
        (Enum(_), _, value) | (_, Enum(_), value) => value,
        (Int2 | Int4 | Int8, Int2 | Int4 | Int8, Value::Int(number)) => Value::Int(check_integer(number as i128, to)?),
        (_, Numeric, Value::Int(number)) => Value::Numeric(crate::numeric::Numeric::from_i64(number)),
        (_, Float4, Value::Int(number)) => Value::Float4(number as f32),
        (_, Float8, Value::Int(number)) => Value::Float8(number as f64),
        (Int4, Bool, Value::Int(number)) => Value::Bool(number != 0),
        (Bool, Int4, Value::Bool(flag)) => Value::Int(flag as i64),
        (Numeric, Int2 | Int4 | Int8, Value::Numeric(number)) => {
            let (min, max) = to.integer_range().expect("an integer type");
            Value::Int(number.to_integer(min, max, to.integer_label())?)
        }
        (Numeric, Float4, Value::Numeric(number)) => Value::Float4(number.to_f32()?),
        (Numeric, Float8, Value::Numeric(number)) => Value::Float8(number.to_f64()?),
        (Float4, Float8, Value::Float4(number)) => Value::Float8(number as f64),
        (Float8, Float4, Value::Float8(number)) => {
            let narrowed = number as f32;
            Value::Float4(float::check_f32(narrowed, number.is_infinite(), number == 0.0)?)
        }
        (Float4, Int2 | Int4 | Int8, Value::Float4(number)) => Value::Int(float_to_integer(number.round_ties_even() as f64, to)?),
        (Float8, Int2 | Int4 | Int8, Value::Float8(number)) => Value::Int(float_to_integer(number.round_ties_even(), to)?),
        (Float4, Numeric, Value::Float4(number)) => Value::Numeric(crate::numeric::Numeric::from_f32(number)),
        (Float8, Numeric, Value::Float8(number)) => Value::Numeric(crate::numeric::Numeric::from_f64(number)),
        (Date, Timestamp | Timestamptz, Value::Date(date)) => Value::Timestamp(datetime::date_to_timestamp(date)?),
        (Timestamp | Timestamptz, Timestamp | Timestamptz, value) => value,
        (Timestamp | Timestamptz, Date, Value::Timestamp(micros)) => Value::Date(datetime::timestamp_to_date(micros)),
        (Timestamp | Timestamptz, Time, Value::Timestamp(micros)) => match datetime::timestamp_to_time(micros) {
            Some(time) => Value::Time(time),
            None => return Ok(None),
        },
        (Time, Interval, Value::Time(micros)) => Value::Interval(datetime::Interval { months: 0, days: 0, micros }),
        (Interval, Time, Value::Interval(interval)) => Value::Time(datetime::interval_to_time(&interval)),
        (Array(from_element), Array(to_element), Value::Array(array)) => {
            let mut elements = Vec::with_capacity(array.elements.len());
            for element in &array.elements {
                elements.push(match element {
                    None => None,
                    Some(element) => convert(from_element, to_element, element.clone())?,
                });
            }
            Value::Array(Arc::new(ArrayValue { dimensions: array.dimensions.clone(), elements }))
        }
        (from, to, _) => return Err(format!("cannot cast type {from} to {to}")),
    }))
}

/// Checks a rounded float against an integer type's range as `float8_int4` and friends do.
fn float_to_integer(rounded: f64, to: &Type) -> Result<i64, String> {
    let (min, _) = to.integer_range().expect("an integer type");
    // The upper bound is exclusive and computed as -(min), which is exact in binary.
    if rounded.is_nan() || rounded < min as f64 || rounded >= -(min as f64) {
        return Err(format!("{} out of range", to.integer_label()));
    }
    Ok(rounded as i64)
}

fn apply_modifier(value: Value, modifier: TypeModifier) -> Result<Value, String> {
    Ok(match (modifier, value) {
        (TypeModifier::Varchar(length), Value::Text(text)) => Value::Text(Arc::from(text.chars().take(length as usize).collect::<String>())),
        (TypeModifier::Bpchar(length), Value::Text(text)) => {
            let mut padded: String = text.chars().take(length as usize).collect();
            let count = padded.chars().count();
            padded.extend(std::iter::repeat_n(' ', length as usize - count));
            Value::Text(Arc::from(padded))
        }
        (TypeModifier::Numeric(precision, scale), Value::Numeric(number)) => Value::Numeric(number.apply_type_modifier(precision, scale)?),
        (_, value) => value,
    })
}
