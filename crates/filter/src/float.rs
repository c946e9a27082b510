//! `float4` and `float8` input, output, comparison and checked arithmetic as PostgreSQL 15
//! does them with `extra_float_digits` at 1 (shortest text that reads back exactly).

use std::cmp::Ordering;

/// Parses `float8` input text (`float8in`). Values that overflow or underflow to zero are
/// errors; subnormal results are accepted.
pub(crate) fn parse_f64(text: &str) -> Result<f64, String> {
    parse_float(text, "double precision").map(|(value, _)| value)
}

/// Parses `float4` input text (`float4in`), rounding the decimal value once to `f32`.
pub(crate) fn parse_f32(text: &str) -> Result<f32, String> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(special) = special_value(trimmed) {
        return Ok(special as f32);
    }
    check_syntax(trimmed).ok_or_else(|| format!("invalid input syntax for type real: \"{text}\""))?;
    let value: f32 = trimmed.parse().map_err(|_| format!("invalid input syntax for type real: \"{text}\""))?;
    if value.is_infinite() || (value == 0.0 && has_nonzero_digit(trimmed)) {
        return Err(format!("\"{text}\" is out of range for type real"));
    }
    Ok(value)
}

fn parse_float(text: &str, type_name: &str) -> Result<(f64, bool), String> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(special) = special_value(trimmed) {
        return Ok((special, true));
    }
    check_syntax(trimmed).ok_or_else(|| format!("invalid input syntax for type {type_name}: \"{text}\""))?;
    let value: f64 = trimmed.parse().map_err(|_| format!("invalid input syntax for type {type_name}: \"{text}\""))?;
    if value.is_infinite() || (value == 0.0 && has_nonzero_digit(trimmed)) {
        return Err(format!("\"{text}\" is out of range for type {type_name}"));
    }
    Ok((value, false))
}

fn special_value(trimmed: &str) -> Option<f64> {
    match trimmed.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Accepts `[sign] digits [. digits] [e [sign] digits]` with at least one mantissa digit, the
/// decimal forms `strtod` takes (hexadecimal floats are left out).
fn check_syntax(text: &str) -> Option<()> {
    let bytes = text.as_bytes();
    let mut position = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        position += 1;
    }
    let mut digits = 0;
    while position < bytes.len() && bytes[position].is_ascii_digit() {
        position += 1;
        digits += 1;
    }
    if position < bytes.len() && bytes[position] == b'.' {
        position += 1;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if position < bytes.len() && (bytes[position] == b'e' || bytes[position] == b'E') {
        position += 1;
        if matches!(bytes.get(position), Some(b'+' | b'-')) {
            position += 1;
        }
        let start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        if position == start {
            return None;
        }
    }
    (position == bytes.len()).then_some(())
}

fn has_nonzero_digit(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    mantissa.bytes().any(|byte| (b'1'..=b'9').contains(&byte))
}

/// Formats a `float8` as `float8out` does: the shortest digits that read back exactly, in
/// exponent form when the decimal exponent is below −4 or at least 15.
pub(crate) fn format_f64(value: f64) -> String {
    format_shortest(value, format!("{value:e}"), 15)
}

/// Formats a `float4` as `float4out` does; exponent form from a decimal exponent of 6.
pub(crate) fn format_f32(value: f32) -> String {
    format_shortest(value as f64, format!("{value:e}"), 6)
}

fn format_shortest(value: f64, exponent_form: String, fixed_limit: i32) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".to_owned() } else { "-Infinity".to_owned() };
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0".to_owned() } else { "0".to_owned() };
    }

    // Rust's `{:e}` prints the shortest round-trip digits as `d.ddde±x`.
    let (mantissa, exponent) = exponent_form.split_once('e').expect("exponent form has an 'e'");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if exponent < -4 || exponent >= fixed_limit {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exponent_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize));
    }
    let integer_length = exponent as usize + 1;
    if digits.len() <= integer_length {
        format!("{sign}{digits}{}", "0".repeat(integer_length - digits.len()))
    } else {
        let (integer, fraction) = digits.split_at(integer_length);
        format!("{sign}{integer}.{fraction}")
    }
}

/// Orders like `float8_cmp`: NaN equals NaN and sorts above every other value; −0 equals 0.
pub(crate) fn compare_f64(left: f64, right: f64) -> Ordering {
    match (left.is_nan(), right.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => left.partial_cmp(&right).expect("neither value is NaN"),
    }
}

/// Checks a `float8` arithmetic result as `float_overflow_error` and `float_underflow_error`
/// callers do: infinity from finite inputs overflows, zero from non-zero inputs underflows.
pub(crate) fn check_f64(result: f64, inputs_infinite: bool, zero_allowed: bool) -> Result<f64, String> {
    if result.is_infinite() && !inputs_infinite {
        return Err("value out of range: overflow".to_owned());
    }
    if result == 0.0 && !zero_allowed {
        return Err("value out of range: underflow".to_owned());
    }
    Ok(result)
}

/// Checks a `float4` result like [`check_f64`].
pub(crate) fn check_f32(result: f32, inputs_infinite: bool, zero_allowed: bool) -> Result<f32, String> {
    if result.is_infinite() && !inputs_infinite {
        return Err("value out of range: overflow".to_owned());
    }
    if result == 0.0 && !zero_allowed {
        return Err("value out of range: underflow".to_owned());
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_matches_postgres() {
        // Expected texts come from PostgreSQL 15 with extra_float_digits = 1.
        assert_eq!(format_f64(1e15), "1e+15");
        assert_eq!(format_f64(1e14), "100000000000000");
        assert_eq!(format_f64(123456789012345.6), "123456789012345.6");
        assert_eq!(format_f64(0.0001), "0.0001");
        assert_eq!(format_f64(0.00001), "1e-05");
        assert_eq!(format_f64(1.5e300), "1.5e+300");
        assert_eq!(format_f64(-0.0), "-0");
        assert_eq!(format_f32(1e6), "1e+06");
        assert_eq!(format_f32(123456.0), "123456");
        assert_eq!(format_f32(1234567.0), "1.234567e+06");
        assert_eq!(format_f32(16777217.0), "1.6777216e+07");
        assert_eq!(format_f32(0.1_f32 as f64 as f32), "0.1");
    }

    #[test]
    fn input_range_checks() {
        assert!(parse_f64("1e400").is_err());
        assert!(parse_f64("1e-400").is_err());
        assert_eq!(parse_f64("1e-310").unwrap(), 1e-310);
        assert!(parse_f64("-Infinity").unwrap().is_infinite());
        assert!(parse_f32("1e39").is_err());
        assert!(parse_f64("1.5x").is_err());
    }
}
