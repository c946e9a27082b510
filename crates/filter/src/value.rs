//! Typed values: reading PostgreSQL's text output into them (the type input functions),
//! printing them back (the output functions), and comparing them with the semantics of each
//! type's btree operators.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::datetime::{self, Interval};
use crate::float;
use crate::numeric::Numeric;
use crate::types::Type;

/// A non-NULL value. The SQL type is kept beside it in the expression tree, so several types
/// share a variant. `Int` is used for int2, int4 and int8, `Text` for text, varchar, bpchar
/// and enum labels, and `Timestamp` for timestamp and timestamptz (microseconds in UTC).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Numeric(Numeric),
    Float4(f32),
    Float8(f64),
    Text(Arc<str>),
    Uuid([u8; 16]),
    Date(i32),
    Time(i64),
    Timestamp(i64),
    Interval(Interval),
    Array(Arc<ArrayValue>),
}

/// An array value. PostgreSQL lets a column declared one-dimensional hold any number of
/// dimensions, so the dimensions are kept as read.
#[derive(Clone, Debug)]
pub(crate) struct ArrayValue {
    /// Lower bound and length of each dimension; empty for an empty array.
    pub dimensions: Vec<(i32, i32)>,
    /// Elements in row-major order; `None` is NULL.
    pub elements: Vec<Option<Value>>,
}

impl ArrayValue {
    pub(crate) fn one_dimensional(elements: Vec<Option<Value>>) -> ArrayValue {
        let dimensions = if elements.is_empty() { Vec::new() } else { vec![(1, elements.len() as i32)] };
        ArrayValue { dimensions, elements }
    }
}

/// Reads a value from its text form as the type's input function does.
pub(crate) fn parse_value(ty: &Type, text: &str) -> Result<Value, String> {
    Ok(match ty {
        Type::Bool => Value::Bool(parse_bool(text)?),
        Type::Int2 | Type::Int4 | Type::Int8 => Value::Int(parse_integer(ty, text)?),
        Type::Numeric => Value::Numeric(Numeric::parse(text)?),
        Type::Float4 => Value::Float4(float::parse_f32(text)?),
        Type::Float8 => Value::Float8(float::parse_f64(text)?),
        Type::Text | Type::Varchar | Type::Bpchar | Type::Enum(_) => Value::Text(Arc::from(text)),
        Type::Uuid => Value::Uuid(parse_uuid(text)?),
        Type::Date => Value::Date(datetime::parse_date(text)?),
        Type::Time => Value::Time(datetime::parse_time(text)?),
        Type::Timestamp => Value::Timestamp(datetime::parse_timestamp(text, false)?),
        Type::Timestamptz => Value::Timestamp(datetime::parse_timestamp(text, true)?),
        Type::Interval => Value::Interval(datetime::parse_interval(text)?),
        Type::Array(element) => Value::Array(Arc::new(parse_array(element, text)?)),
        Type::Unknown | Type::Unsupported(_) => return Err(format!("values of type {ty} cannot be read")),
    })
}

/// Prints a value as the type's output function does under Volt's session settings.
pub(crate) fn format_value(ty: &Type, value: &Value) -> String {
    match (ty, value) {
        (_, Value::Bool(flag)) => if *flag { "t" } else { "f" }.to_owned(),
        (_, Value::Int(number)) => number.to_string(),
        (_, Value::Numeric(number)) => number.to_string(),
        (_, Value::Float4(number)) => float::format_f32(*number),
        (_, Value::Float8(number)) => float::format_f64(*number),
        (_, Value::Text(text)) => text.to_string(),
        (_, Value::Uuid(bytes)) => format_uuid(bytes),
        (_, Value::Date(days)) => datetime::format_date(*days),
        (_, Value::Time(micros)) => datetime::format_time(*micros),
        (Type::Timestamptz, Value::Timestamp(micros)) => datetime::format_timestamp(*micros, true),
        (_, Value::Timestamp(micros)) => datetime::format_timestamp(*micros, false),
        (_, Value::Interval(interval)) => datetime::format_interval(interval),
        (Type::Array(element), Value::Array(array)) => format_array(element, array),
        (_, Value::Array(array)) => format_array(&Type::Text, array),
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    let is_prefix_of = |word: &str, minimum: usize| trimmed.len() >= minimum && word.starts_with(trimmed.as_str());
    if is_prefix_of("true", 1) || is_prefix_of("yes", 1) || is_prefix_of("on", 2) || trimmed == "1" {
        Ok(true)
    } else if is_prefix_of("false", 1) || is_prefix_of("no", 1) || is_prefix_of("off", 2) || trimmed == "0" {
        Ok(false)
    } else {
        Err(format!("invalid input syntax for type boolean: \"{text}\""))
    }
}

fn parse_integer(ty: &Type, text: &str) -> Result<i64, String> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("invalid input syntax for type {ty}: \"{text}\""));
    }
    let out_of_range = || format!("value \"{text}\" is out of range for type {ty}");
    let value: i64 = trimmed.strip_prefix('+').unwrap_or(trimmed).parse().map_err(|_| out_of_range())?;
    let (min, max) = ty.integer_range().expect("an integer type");
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

/// Reads a UUID as `uuid_in` does: 32 hex digits, a hyphen allowed after any group of four,
/// optionally inside braces.
fn parse_uuid(text: &str) -> Result<[u8; 16], String> {
    let invalid = || format!("invalid input syntax for type uuid: \"{text}\"");
    let body = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(invalid)?,
        None => text,
    };
    let mut bytes = [0u8; 16];
    let mut nibbles = 0;
    let mut previous_hyphen = false;
    for c in body.chars() {
        if c == '-' {
            if nibbles == 0 || nibbles % 4 != 0 || nibbles == 32 || previous_hyphen {
                return Err(invalid());
            }
            previous_hyphen = true;
            continue;
        }
        previous_hyphen = false;
        let nibble = c.to_digit(16).ok_or_else(invalid)? as u8;
        if nibbles == 32 {
            return Err(invalid());
        }
        bytes[nibbles / 2] |= if nibbles % 2 == 0 { nibble << 4 } else { nibble };
        nibbles += 1;
    }
    if nibbles != 32 || previous_hyphen {
        return Err(invalid());
    }
    Ok(bytes)
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Reads array text (`array_in`): optional `[lower:upper]=` bounds, nested braces, quoted or
/// unquoted elements with backslash escapes, and unquoted `NULL`.
fn parse_array(element: &Type, text: &str) -> Result<ArrayValue, String> {
    let invalid = |detail: &str| format!("malformed array literal: \"{text}\" ({detail})");
    let chars: Vec<char> = text.chars().collect();
    let mut position = 0;
    let skip_spaces = |position: &mut usize| {
        while *position < chars.len() && chars[*position].is_ascii_whitespace() {
            *position += 1;
        }
    };
    skip_spaces(&mut position);

    let mut explicit_bounds = Vec::new();
    while position < chars.len() && chars[position] == '[' {
        let close = chars[position..].iter().position(|&c| c == ']').ok_or_else(|| invalid("missing \"]\""))? + position;
        let inside: String = chars[position + 1..close].iter().collect();
        let (lower, upper) = match inside.split_once(':') {
            Some((lower, upper)) => (lower.trim().parse::<i32>(), upper.trim().parse::<i32>()),
            None => (Ok(1), inside.trim().parse::<i32>()),
        };
        let (Ok(lower), Ok(upper)) = (lower, upper) else {
            return Err(invalid("invalid array bounds"));
        };
        if upper < lower - 1 {
            return Err(invalid("upper bound below lower bound"));
        }
        explicit_bounds.push((lower, upper - lower + 1));
        position = close + 1;
    }

    if !explicit_bounds.is_empty() {
        skip_spaces(&mut position);
        if chars.get(position) != Some(&'=') {
            return Err(invalid("missing \"=\" after array dimensions"));
        }
        position += 1;
        skip_spaces(&mut position);
    }
    if chars.get(position) != Some(&'{') {
        return Err(invalid("array value must start with \"{\" or dimension information"));
    }
    let (level, next) = parse_braces(&chars, position).map_err(&invalid)?;
    position = next;
    skip_spaces(&mut position);
    if position != chars.len() {
        return Err(invalid("junk after closing right brace"));
    }
    let mut items = Vec::new();
    let shape = level_shape(level, &mut items).map_err(&invalid)?;
    let mut dimensions: Vec<(i32, i32)> = if items.is_empty() { Vec::new() } else { shape.iter().map(|&length| (1, length)).collect() };
    if !explicit_bounds.is_empty() {
        let explicit_lengths: Vec<i32> = explicit_bounds.iter().map(|&(_, length)| length).collect();
        let lengths: Vec<i32> = dimensions.iter().map(|&(_, length)| length).collect();
        if explicit_lengths != lengths {
            return Err(invalid("specified array dimensions do not match array contents"));
        }
        dimensions = explicit_bounds;
    }
    let mut elements = Vec::with_capacity(items.len());
    for item in items {
        elements.push(match item {
            None => None,
            Some(item_text) => Some(parse_value(element, &item_text)?),
        });
    }
    Ok(ArrayValue { dimensions, elements })
}

/// One brace level of array text: either elements or nested levels.
enum ArrayLevel {
    Items(Vec<Option<String>>),
    Nested(Vec<ArrayLevel>),
}

fn parse_braces(chars: &[char], start: usize) -> Result<(ArrayLevel, usize), &'static str> {
    let skip = |mut position: usize| {
        while position < chars.len() && chars[position].is_ascii_whitespace() {
            position += 1;
        }
        position
    };
    let mut position = skip(start + 1);
    if chars.get(position) == Some(&'}') {
        return Ok((ArrayLevel::Items(Vec::new()), position + 1));
    }
    let nested = chars.get(position) == Some(&'{');
    let mut items = Vec::new();
    let mut levels = Vec::new();
    loop {
        if nested {
            if chars.get(position) != Some(&'{') {
                return Err("inconsistent nesting");
            }
            let (level, next) = parse_braces(chars, position)?;
            levels.push(level);
            position = next;
        } else {
            match chars.get(position) {
                Some('{') => return Err("inconsistent nesting"),
                Some(',' | '}') | None => return Err("missing element"),
                Some(_) => {}
            }
            let (item, next) = read_array_item(chars, position).ok_or("unterminated element")?;
            items.push(item);
            position = next;
        }
        position = skip(position);
        match chars.get(position) {
            Some(',') => position = skip(position + 1),
            Some('}') => break,
            _ => return Err("expected \",\" or \"}\""),
        }
    }
    let level = if nested { ArrayLevel::Nested(levels) } else { ArrayLevel::Items(items) };
    Ok((level, position + 1))
}

/// Returns the length of each dimension and appends the elements to `items` in row-major
/// order.
fn level_shape(level: ArrayLevel, items: &mut Vec<Option<String>>) -> Result<Vec<i32>, &'static str> {
    match level {
        ArrayLevel::Items(elements) => {
            let length = elements.len() as i32;
            items.extend(elements);
            Ok(vec![length])
        }
        ArrayLevel::Nested(levels) => {
            let count = levels.len() as i32;
            let mut inner: Option<Vec<i32>> = None;
            for level in levels {
                let shape = level_shape(level, items)?;
                if shape == [0] {
                    return Err("empty sub-array");
                }
                match &inner {
                    Some(expected) if *expected != shape => return Err("sub-arrays must have matching dimensions"),
                    _ => inner = Some(shape),
                }
            }
            let mut shape = vec![count];
            shape.extend(inner.unwrap_or_default());
            Ok(shape)
        }
    }
}

/// Reads one element starting at `start`; `None` inside the result is an unquoted NULL.
fn read_array_item(chars: &[char], start: usize) -> Option<(Option<String>, usize)> {
    let mut position = start;
    let mut text = String::new();
    if chars[position] == '"' {
        position += 1;
        loop {
            match *chars.get(position)? {
                '"' => return Some((Some(text), position + 1)),
                '\\' => {
                    text.push(*chars.get(position + 1)?);
                    position += 2;
                }
                c => {
                    text.push(c);
                    position += 1;
                }
            }
        }
    }
    let mut had_escape = false;
    // Trailing whitespace of an unquoted element is dropped unless escaped.
    let mut kept_length = 0;
    while let Some(&c) = chars.get(position) {
        match c {
            ',' | '}' => break,
            '{' | '"' => return None,
            '\\' => {
                text.push(*chars.get(position + 1)?);
                had_escape = true;
                position += 2;
                kept_length = text.len();
            }
            c => {
                text.push(c);
                position += 1;
                if !c.is_ascii_whitespace() {
                    kept_length = text.len();
                }
            }
        }
    }
    text.truncate(kept_length);
    if !had_escape && text.eq_ignore_ascii_case("null") {
        return Some((None, position));
    }
    Some((Some(text), position))
}

fn format_array(element: &Type, array: &ArrayValue) -> String {
    if array.dimensions.is_empty() {
        return "{}".to_owned();
    }
    let mut text = String::new();
    if array.dimensions.iter().any(|&(lower, _)| lower != 1) {
        for &(lower, length) in &array.dimensions {
            text.push_str(&format!("[{}:{}]", lower, lower + length - 1));
        }
        text.push('=');
    }
    let mut index = 0;
    format_array_level(element, array, 0, &mut index, &mut text);
    text
}

fn format_array_level(element: &Type, array: &ArrayValue, level: usize, index: &mut usize, out: &mut String) {
    out.push('{');
    let length = array.dimensions[level].1;
    for position in 0..length {
        if position > 0 {
            out.push(',');
        }
        if level + 1 < array.dimensions.len() {
            format_array_level(element, array, level + 1, index, out);
            continue;
        }
        match &array.elements[*index] {
            None => out.push_str("NULL"),
            Some(value) => {
                let item = format_value(element, value);
                let needs_quotes = item.is_empty()
                    || item.eq_ignore_ascii_case("null")
                    || item.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
                if needs_quotes {
                    out.push('"');
                    for c in item.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(&item);
                }
            }
        }
        *index += 1;
    }
    out.push('}');
}

/// `bpchar` comparisons ignore trailing spaces.
pub(crate) fn trim_bpchar(text: &str) -> &str {
    text.trim_end_matches(' ')
}

/// Compares two values of the operand types an operator declares (after implicit casts),
/// as that type's btree comparison function does. Text compares bytewise: the C collation.
pub(crate) fn compare_values(left_type: &Type, left: &Value, right_type: &Type, right: &Value) -> Ordering {
    match (left, right) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Numeric(a), Value::Numeric(b)) => a.compare(b),
        (Value::Float4(a), Value::Float4(b)) => float::compare_f64(*a as f64, *b as f64),
        (Value::Float4(a), Value::Float8(b)) => float::compare_f64(*a as f64, *b),
        (Value::Float8(a), Value::Float4(b)) => float::compare_f64(*a, *b as f64),
        (Value::Float8(a), Value::Float8(b)) => float::compare_f64(*a, *b),
        (Value::Text(a), Value::Text(b)) => {
            if *left_type == Type::Bpchar && *right_type == Type::Bpchar {
                trim_bpchar(a).as_bytes().cmp(trim_bpchar(b).as_bytes())
            } else {
                a.as_bytes().cmp(b.as_bytes())
            }
        }
        (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
        (Value::Date(a), Value::Date(b)) => a.cmp(b),
        (Value::Date(a), Value::Timestamp(b)) => datetime::compare_date_timestamp(*a, *b),
        (Value::Timestamp(a), Value::Date(b)) => datetime::compare_date_timestamp(*b, *a).reverse(),
        (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
        (Value::Time(a), Value::Time(b)) => a.cmp(b),
        (Value::Interval(a), Value::Interval(b)) => a.compare(b),
        (Value::Array(a), Value::Array(b)) => {
            let element_left = left_type.element().unwrap_or(&Type::Text);
            let element_right = right_type.element().unwrap_or(&Type::Text);
            compare_arrays(element_left, a, element_right, b)
        }
        // The analyzer only pairs compatible operand types, so other pairs do not occur.
        _ => Ordering::Equal,
    }
}

/// Orders arrays as `btarraycmp` does: element by element with NULL above every value, then
/// by element count, then by dimensions and lower bounds.
fn compare_arrays(left_type: &Type, left: &ArrayValue, right_type: &Type, right: &ArrayValue) -> Ordering {
    for (a, b) in left.elements.iter().zip(&right.elements) {
        let order = match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_values(left_type, a, right_type, b),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.elements
        .len()
        .cmp(&right.elements.len())
        .then_with(|| left.dimensions.len().cmp(&right.dimensions.len()))
        .then_with(|| left.dimensions.cmp(&right.dimensions))
}

/// `array_eq`: same dimensions and bounds, equal elements, and NULL elements equal to each
/// other.
pub(crate) fn arrays_equal(element_type: &Type, left: &ArrayValue, right: &ArrayValue) -> bool {
    left.dimensions == right.dimensions
        && left.elements.iter().zip(&right.elements).all(|(a, b)| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => compare_values(element_type, a, element_type, b) == Ordering::Equal,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: &Type, text: &str) -> String {
        format_value(ty, &parse_value(ty, text).unwrap())
    }

    #[test]
    fn arrays_round_trip() {
        let text_array = Type::Array(Box::new(Type::Text));
        assert_eq!(round_trip(&text_array, r#"{"a b","x\"y",NULL,"NULL",""}"#), r#"{"a b","x\"y",NULL,"NULL",""}"#);
        assert_eq!(round_trip(&Type::Array(Box::new(Type::Int4)), "{}"), "{}");
        assert_eq!(round_trip(&Type::Array(Box::new(Type::Int4)), "[0:1]={1,2}"), "[0:1]={1,2}");
        assert_eq!(round_trip(&Type::Array(Box::new(Type::Int4)), "{{1,2},{3,4}}"), "{{1,2},{3,4}}");
        assert_eq!(round_trip(&text_array, "{ a , b c }"), r#"{a,"b c"}"#);
        assert!(parse_value(&Type::Array(Box::new(Type::Int4)), "{{1},{2,3}}").is_err());
        assert!(parse_value(&Type::Array(Box::new(Type::Int4)), "{1,x}").is_err());
    }

    #[test]
    fn scalars_round_trip() {
        assert_eq!(round_trip(&Type::Uuid, "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        assert_eq!(round_trip(&Type::Bool, " YES "), "t");
        assert_eq!(round_trip(&Type::Bool, "of"), "f");
        assert!(parse_value(&Type::Bool, "o").is_err());
        assert_eq!(round_trip(&Type::Int2, " -32768 "), "-32768");
        assert!(parse_value(&Type::Int2, "32768").is_err());
        assert!(parse_value(&Type::Int4, "1.0").is_err());
    }

    #[test]
    fn bpchar_ignores_trailing_spaces() {
        let a = parse_value(&Type::Bpchar, "ab  ").unwrap();
        let b = parse_value(&Type::Bpchar, "ab").unwrap();
        assert_eq!(compare_values(&Type::Bpchar, &a, &Type::Bpchar, &b), Ordering::Equal);
        assert_eq!(compare_values(&Type::Text, &a, &Type::Text, &b), Ordering::Greater);
    }
}
