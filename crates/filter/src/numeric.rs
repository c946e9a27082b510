//! Arbitrary-precision decimal numbers with PostgreSQL's `numeric` semantics: exact
//! arithmetic, the display scale rules of each operator, `NaN` equal to itself and sorted
//! above every other value, and `±Infinity`.

use std::cmp::Ordering;

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};

/// Maximum exponent accepted on input (`NUMERIC_MAX_PRECISION` in PostgreSQL 15).
const MAX_INPUT_EXPONENT: i64 = 1000;
/// Maximum display scale (`NUMERIC_DSCALE_MAX`).
const MAX_DISPLAY_SCALE: u32 = 16383;
/// Maximum number of decimal digits before the decimal point: 131072 in PostgreSQL 15.
const MAX_INTEGER_DIGITS: usize = 131072;
/// Division results get at least this many significant digits (`NUMERIC_MIN_SIG_DIGITS`).
const MIN_SIGNIFICANT_DIGITS: i64 = 16;
/// Upper bound of a division's result scale (`NUMERIC_MAX_DISPLAY_SCALE`).
const MAX_DIVISION_SCALE: i64 = 1000;

/// A `numeric` value.
#[derive(Clone, Debug)]
pub(crate) enum Numeric {
    NaN,
    PositiveInfinity,
    NegativeInfinity,
    /// `digits × 10^-scale`, where `scale` is the display scale: the number of digits printed
    /// after the decimal point.
    Finite { digits: BigInt, scale: u32 },
}

impl Numeric {
    pub(crate) fn from_i64(value: i64) -> Numeric {
        Numeric::Finite { digits: BigInt::from(value), scale: 0 }
    }

    fn zero() -> Numeric {
        Numeric::Finite { digits: BigInt::zero(), scale: 0 }
    }

    /// Parses `numeric` input text as `numeric_in` does, without a type modifier.
    pub(crate) fn parse(text: &str) -> Result<Numeric, String> {
        let invalid = || format!("invalid input syntax for type numeric: \"{text}\"");
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = trimmed.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PositiveInfinity),
            "-infinity" | "-inf" => return Ok(Numeric::NegativeInfinity),
            _ => {}
        }

        let bytes = trimmed.as_bytes();
        let mut position = 0;
        let mut negative = false;
        if let Some(&sign) = bytes.first() {
            if sign == b'+' || sign == b'-' {
                negative = sign == b'-';
                position += 1;
            }
        }

        let mut mantissa = String::new();
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte.is_ascii_digit() {
                mantissa.push(byte as char);
                if seen_point {
                    fraction_digits += 1;
                }
            } else if byte == b'.' && !seen_point {
                seen_point = true;
            } else {
                break;
            }
            position += 1;
        }
        if mantissa.is_empty() {
            return Err(invalid());
        }

        let mut exponent: i64 = 0;
        if position < bytes.len() && (bytes[position] == b'e' || bytes[position] == b'E') {
            position += 1;
            let exponent_text = &trimmed[position..];
            let digits_end = exponent_text
                .char_indices()
                .find(|&(index, c)| !(c.is_ascii_digit() || (index == 0 && (c == '+' || c == '-'))))
                .map_or(exponent_text.len(), |(index, _)| index);
            let parsed: i64 = exponent_text[..digits_end].parse().map_err(|_| invalid())?;
            if !(-MAX_INPUT_EXPONENT..=MAX_INPUT_EXPONENT).contains(&parsed) {
                return Err(invalid());
            }
            exponent = parsed;
            position += digits_end;
        }
        if position != bytes.len() {
            return Err(invalid());
        }

        let mut digits: BigInt = mantissa.parse().map_err(|_| invalid())?;
        if negative {
            digits = -digits;
        }
        let shift = exponent - fraction_digits;
        let result = if shift >= 0 {
            Numeric::Finite { digits: digits * pow10(shift as u32), scale: 0 }
        } else {
            Numeric::Finite { digits, scale: (-shift) as u32 }
        };
        result.check_limits()
    }

    fn check_limits(self) -> Result<Numeric, String> {
        if let Numeric::Finite { digits, scale } = &self {
            if *scale > MAX_DISPLAY_SCALE {
                return Ok(self.round(MAX_DISPLAY_SCALE as i64));
            }
            let total_digits = digits.magnitude().to_string().len();
            if !digits.is_zero() && total_digits > *scale as usize + MAX_INTEGER_DIGITS {
                return Err("value overflows numeric format".to_owned());
            }
        }
        Ok(self)
    }

    pub(crate) fn is_nan(&self) -> bool {
        matches!(self, Numeric::NaN)
    }

    /// −1, 0 or 1; `None` for NaN.
    fn signum(&self) -> Option<i32> {
        match self {
            Numeric::NaN => None,
            Numeric::PositiveInfinity => Some(1),
            Numeric::NegativeInfinity => Some(-1),
            Numeric::Finite { digits, .. } => Some(match digits.sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            }),
        }
    }

    /// Orders like `numeric_cmp`: NaN equals NaN and sorts above everything, including
    /// `Infinity`.
    pub(crate) fn compare(&self, other: &Numeric) -> Ordering {
        fn rank(value: &Numeric) -> i32 {
            match value {
                Numeric::NegativeInfinity => 0,
                Numeric::Finite { .. } => 1,
                Numeric::PositiveInfinity => 2,
                Numeric::NaN => 3,
            }
        }
        match (self, other) {
            (Numeric::Finite { digits: a, scale: sa }, Numeric::Finite { digits: b, scale: sb }) => {
                let common = (*sa).max(*sb);
                let left = a * pow10(common - sa);
                let right = b * pow10(common - sb);
                left.cmp(&right)
            }
            _ => rank(self).cmp(&rank(other)),
        }
    }

    pub(crate) fn negate(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PositiveInfinity => Numeric::NegativeInfinity,
            Numeric::NegativeInfinity => Numeric::PositiveInfinity,
            Numeric::Finite { digits, scale } => Numeric::Finite { digits: -digits, scale: *scale },
        }
    }

    pub(crate) fn abs(&self) -> Numeric {
        match self {
            Numeric::NegativeInfinity => Numeric::PositiveInfinity,
            Numeric::Finite { digits, scale } => Numeric::Finite { digits: digits.abs(), scale: *scale },
            other => other.clone(),
        }
    }

    pub(crate) fn add(&self, other: &Numeric) -> Result<Numeric, String> {
        match (self, other) {
            (Numeric::Finite { digits: a, scale: sa }, Numeric::Finite { digits: b, scale: sb }) => {
                let scale = (*sa).max(*sb);
                let sum = a * pow10(scale - sa) + b * pow10(scale - sb);
                Numeric::Finite { digits: sum, scale }.check_limits()
            }
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::PositiveInfinity, Numeric::NegativeInfinity) | (Numeric::NegativeInfinity, Numeric::PositiveInfinity) => {
                Ok(Numeric::NaN)
            }
            (Numeric::PositiveInfinity, _) | (_, Numeric::PositiveInfinity) => Ok(Numeric::PositiveInfinity),
            _ => Ok(Numeric::NegativeInfinity),
        }
    }

    pub(crate) fn subtract(&self, other: &Numeric) -> Result<Numeric, String> {
        self.add(&other.negate())
    }

    pub(crate) fn multiply(&self, other: &Numeric) -> Result<Numeric, String> {
        match (self, other) {
            (Numeric::Finite { digits: a, scale: sa }, Numeric::Finite { digits: b, scale: sb }) => {
                Numeric::Finite { digits: a * b, scale: sa + sb }.check_limits()
            }
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            _ => {
                // At least one operand is infinite: the result is NaN for a zero factor and
                // otherwise an infinity with the product of the signs.
                let sign = self.signum().unwrap_or(0) * other.signum().unwrap_or(0);
                Ok(match sign {
                    0 => Numeric::NaN,
                    1 => Numeric::PositiveInfinity,
                    _ => Numeric::NegativeInfinity,
                })
            }
        }
    }

    pub(crate) fn divide(&self, other: &Numeric) -> Result<Numeric, String> {
        match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::PositiveInfinity | Numeric::NegativeInfinity, _) => {
                let divisor_sign = match other {
                    Numeric::Finite { .. } => other.signum().unwrap_or(0),
                    _ => return Ok(Numeric::NaN),
                };
                if divisor_sign == 0 {
                    return Err("division by zero".to_owned());
                }
                let sign = self.signum().unwrap_or(0) * divisor_sign;
                Ok(if sign > 0 { Numeric::PositiveInfinity } else { Numeric::NegativeInfinity })
            }
            (Numeric::Finite { .. }, Numeric::PositiveInfinity | Numeric::NegativeInfinity) => Ok(Numeric::zero()),
            (Numeric::Finite { digits: a, scale: sa }, Numeric::Finite { digits: b, scale: sb }) => {
                if b.is_zero() {
                    return Err("division by zero".to_owned());
                }
                let result_scale = division_scale(a, *sa, b, *sb);
                // a/10^sa ÷ b/10^sb, scaled by 10^result_scale.
                let numerator = a * pow10(sb + result_scale);
                let denominator = b * pow10(*sa);
                let quotient = round_half_away_from_zero(&numerator, &denominator);
                Numeric::Finite { digits: quotient, scale: result_scale }.check_limits()
            }
        }
    }

    /// `numeric_mod`: `x - y * trunc(x / y)`, with the larger of the two display scales.
    pub(crate) fn modulo(&self, other: &Numeric) -> Result<Numeric, String> {
        match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::PositiveInfinity | Numeric::NegativeInfinity, _) => {
                if other.signum() == Some(0) {
                    Err("division by zero".to_owned())
                } else {
                    Ok(Numeric::NaN)
                }
            }
            (Numeric::Finite { .. }, Numeric::PositiveInfinity | Numeric::NegativeInfinity) => Ok(self.clone()),
            (Numeric::Finite { digits: a, scale: sa }, Numeric::Finite { digits: b, scale: sb }) => {
                if b.is_zero() {
                    return Err("division by zero".to_owned());
                }
                let scale = (*sa).max(*sb);
                let left = a * pow10(scale - sa);
                let right = b * pow10(scale - sb);
                // BigInt's `%` truncates toward zero, so the remainder has the dividend's sign.
                Ok(Numeric::Finite { digits: left % right, scale })
            }
        }
    }

    /// Rounds to `scale` digits after the decimal point, half away from zero (`round_var`).
    /// A negative scale rounds to tens, hundreds and so on.
    pub(crate) fn round(&self, scale: i64) -> Numeric {
        match self {
            Numeric::Finite { digits, scale: current } => {
                let current = *current as i64;
                if scale >= current {
                    return self.clone();
                }
                let target = scale.max(0);
                let divisor = pow10((current - scale) as u32);
                let mut rounded = round_half_away_from_zero(digits, &divisor);
                if scale < 0 {
                    rounded *= pow10((-scale) as u32);
                }
                Numeric::Finite { digits: rounded, scale: target as u32 }
            }
            other => other.clone(),
        }
    }

    /// Converts to an integer as `numeric_int8` does: rounds half away from zero, then checks
    /// the range `[min, max]`.
    pub(crate) fn to_integer(&self, min: i64, max: i64, type_label: &str) -> Result<i64, String> {
        match self {
            Numeric::NaN => Err(format!("cannot convert NaN to {type_label}")),
            Numeric::PositiveInfinity | Numeric::NegativeInfinity => Err(format!("cannot convert infinity to {type_label}")),
            Numeric::Finite { .. } => {
                let Numeric::Finite { digits, .. } = self.round(0) else { unreachable!("rounding keeps finite values finite") };
                let out_of_range = || format!("{type_label} out of range");
                let value = digits.to_i64().ok_or_else(out_of_range)?;
                if value < min || value > max {
                    return Err(out_of_range());
                }
                Ok(value)
            }
        }
    }

    /// Converts to `float8` through the decimal text, as `numeric_float8` does.
    pub(crate) fn to_f64(&self) -> Result<f64, String> {
        match self {
            Numeric::NaN => Ok(f64::NAN),
            Numeric::PositiveInfinity => Ok(f64::INFINITY),
            Numeric::NegativeInfinity => Ok(f64::NEG_INFINITY),
            Numeric::Finite { .. } => crate::float::parse_f64(&self.to_string()),
        }
    }

    /// Converts to `float4` through the decimal text, as `numeric_float4` does.
    pub(crate) fn to_f32(&self) -> Result<f32, String> {
        match self {
            Numeric::NaN => Ok(f32::NAN),
            Numeric::PositiveInfinity => Ok(f32::INFINITY),
            Numeric::NegativeInfinity => Ok(f32::NEG_INFINITY),
            Numeric::Finite { .. } => crate::float::parse_f32(&self.to_string()),
        }
    }

    /// Converts a `float8` as `float8_numeric` does: through `%.15g` text, so only 15
    /// significant digits survive.
    pub(crate) fn from_f64(value: f64) -> Numeric {
        Self::from_float_digits(value, 15)
    }

    /// Converts a `float4` as `float4_numeric` does: through `%.6g` text.
    pub(crate) fn from_f32(value: f32) -> Numeric {
        Self::from_float_digits(value as f64, 6)
    }

    fn from_float_digits(value: f64, significant_digits: usize) -> Numeric {
        if value.is_nan() {
            return Numeric::NaN;
        }
        if value.is_infinite() {
            return if value > 0.0 { Numeric::PositiveInfinity } else { Numeric::NegativeInfinity };
        }
        // `{:.Ne}` rounds the exact binary value correctly, like glibc's printf.
        let text = format!("{:.*e}", significant_digits - 1, value);
        let (mantissa, exponent) = text.split_once('e').expect("exponent form has an 'e'");
        // %g drops trailing zeros of the fraction, which sets the display scale.
        let mantissa = if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        Numeric::parse(&format!("{mantissa}e{exponent}")).expect("formatted float parses as numeric")
    }

    /// Applies a `numeric(precision, scale)` type modifier as `apply_typmod` does.
    pub(crate) fn apply_type_modifier(&self, precision: u32, scale: u32) -> Result<Numeric, String> {
        match self {
            Numeric::NaN => Ok(Numeric::NaN),
            Numeric::PositiveInfinity | Numeric::NegativeInfinity => Err(format!(
                "numeric field overflow: a field with precision {precision}, scale {scale} cannot hold an infinite value"
            )),
            Numeric::Finite { .. } => {
                // The result has exactly `scale` digits after the point, as `apply_typmod` sets.
                let rounded = match self.round(scale as i64) {
                    Numeric::Finite { digits, scale: current } => Numeric::Finite { digits: digits * pow10(scale - current), scale },
                    other => other,
                };
                let Numeric::Finite { digits, .. } = &rounded else { unreachable!("rounding keeps finite values finite") };
                let integer_digits = (digits.abs() / pow10(scale)).to_string().trim_start_matches('0').len();
                let max_integer_digits = precision.saturating_sub(scale) as usize;
                if integer_digits > max_integer_digits {
                    return Err(format!(
                        "numeric field overflow: a field with precision {precision}, scale {scale} must round to an absolute value less than 10^{max_integer_digits}"
                    ));
                }
                Ok(rounded)
            }
        }
    }
}

impl std::fmt::Display for Numeric {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Numeric::NaN => formatter.write_str("NaN"),
            Numeric::PositiveInfinity => formatter.write_str("Infinity"),
            Numeric::NegativeInfinity => formatter.write_str("-Infinity"),
            Numeric::Finite { digits, scale } => {
                let magnitude = digits.magnitude().to_string();
                let scale = *scale as usize;
                let sign = if digits.is_negative() { "-" } else { "" };
                if scale == 0 {
                    return write!(formatter, "{sign}{magnitude}");
                }
                let padded = if magnitude.len() <= scale { format!("{}{magnitude}", "0".repeat(scale + 1 - magnitude.len())) } else { magnitude };
                let (integer, fraction) = padded.split_at(padded.len() - scale);
                write!(formatter, "{sign}{integer}.{fraction}")
            }
        }
    }
}

fn pow10(exponent: u32) -> BigInt {
    num_traits::pow(BigInt::from(10), exponent as usize)
}

/// `numerator / denominator` rounded half away from zero.
fn round_half_away_from_zero(numerator: &BigInt, denominator: &BigInt) -> BigInt {
    let negative = numerator.is_negative() != denominator.is_negative();
    let numerator = numerator.abs();
    let denominator = denominator.abs();
    let (quotient, remainder) = numerator.div_rem(&denominator);
    let quotient = if remainder * 2 >= denominator { quotient + 1 } else { quotient };
    if negative {
        -quotient
    } else {
        quotient
    }
}

/// Computes the result scale of a division as `select_div_scale` does. PostgreSQL stores
/// numerics in base 10000 and estimates the quotient's weight from each operand's weight
/// and first base-10000 digit, so the scale follows that representation.
fn division_scale(a: &BigInt, a_scale: u32, b: &BigInt, b_scale: u32) -> u32 {
    let (weight1, first1) = base10000_weight_and_first_digit(a, a_scale);
    let (weight2, first2) = base10000_weight_and_first_digit(b, b_scale);
    let mut quotient_weight = weight1 - weight2;
    if first1 <= first2 {
        quotient_weight -= 1;
    }
    let scale = (MIN_SIGNIFICANT_DIGITS - quotient_weight * 4).max(a_scale as i64).max(b_scale as i64).clamp(0, MAX_DIVISION_SCALE);
    scale as u32
}

/// Returns the weight (power of 10000) and value of the most significant base-10000 digit,
/// or (0, 0) for zero.
fn base10000_weight_and_first_digit(digits: &BigInt, scale: u32) -> (i64, u32) {
    if digits.is_zero() {
        return (0, 0);
    }
    let text = digits.magnitude().to_string();
    let top_exponent = text.len() as i64 - 1 - scale as i64;
    let weight = top_exponent.div_euclid(4);
    let width = (top_exponent - weight * 4 + 1) as usize;
    let mut first: String = text.chars().take(width).collect();
    while first.len() < width {
        first.push('0');
    }
    (weight, first.parse().expect("at most four decimal digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(text: &str) -> Numeric {
        Numeric::parse(text).unwrap()
    }

    #[test]
    fn parse_and_print_keep_display_scale() {
        assert_eq!(numeric("1.50").to_string(), "1.50");
        assert_eq!(numeric(" -0.0 ").to_string(), "0.0");
        assert_eq!(numeric("1e3").to_string(), "1000");
        assert_eq!(numeric("1.5e-3").to_string(), "0.0015");
        assert_eq!(numeric(".5").to_string(), "0.5");
        assert_eq!(numeric("5.").to_string(), "5");
        assert_eq!(numeric("-inf").to_string(), "-Infinity");
        assert!(Numeric::parse("1.2.3").is_err());
        assert!(Numeric::parse("e5").is_err());
    }

    #[test]
    fn division_scale_matches_postgres() {
        // Expected texts come from PostgreSQL 15.
        assert_eq!(numeric("1").divide(&numeric("3")).unwrap().to_string(), "0.33333333333333333333");
        assert_eq!(numeric("10").divide(&numeric("4")).unwrap().to_string(), "2.5000000000000000");
        assert_eq!(numeric("1e20").divide(&numeric("7")).unwrap().to_string(), "14285714285714285714");
        assert_eq!(numeric("2").divide(&numeric("3")).unwrap().to_string(), "0.66666666666666666667");
        assert_eq!(numeric("-2").divide(&numeric("3")).unwrap().to_string(), "-0.66666666666666666667");
    }

    #[test]
    fn modulo_and_product_scales() {
        assert_eq!(numeric("7.0").modulo(&numeric("2.5")).unwrap().to_string(), "2.0");
        assert_eq!(numeric("-7").modulo(&numeric("3")).unwrap().to_string(), "-1");
        assert_eq!(numeric("2.50").multiply(&numeric("1.5")).unwrap().to_string(), "3.750");
    }

    #[test]
    fn nan_sorts_above_infinity() {
        assert_eq!(Numeric::NaN.compare(&Numeric::NaN), Ordering::Equal);
        assert_eq!(Numeric::NaN.compare(&Numeric::PositiveInfinity), Ordering::Greater);
        assert_eq!(numeric("1.50").compare(&numeric("1.5")), Ordering::Equal);
    }

    #[test]
    fn float_conversion_keeps_fifteen_digits() {
        assert_eq!(Numeric::from_f64(0.1).to_string(), "0.1");
        assert_eq!(Numeric::from_f32(0.1).to_string(), "0.1");
        assert_eq!(Numeric::from_f64(1.0 / 3.0).to_string(), "0.333333333333333");
        assert_eq!(Numeric::from_f64(1.5e20).to_string(), "150000000000000000000");
    }

    #[test]
    fn type_modifier_rounds_and_checks_precision() {
        assert_eq!(numeric("5").apply_type_modifier(10, 2).unwrap().to_string(), "5.00");
        assert_eq!(numeric("1.005").apply_type_modifier(10, 2).unwrap().to_string(), "1.01");
        assert!(numeric("9223372036854775807").apply_type_modifier(10, 2).is_err());
        assert!(numeric("99999999.995").apply_type_modifier(10, 2).is_err());
    }

    #[test]
    fn integer_conversion_rounds_half_away() {
        assert_eq!(numeric("2.5").to_integer(i32::MIN as i64, i32::MAX as i64, "integer"), Ok(3));
        assert_eq!(numeric("-2.5").to_integer(i32::MIN as i64, i32::MAX as i64, "integer"), Ok(-3));
        assert!(numeric("2147483648").to_integer(i32::MIN as i64, i32::MAX as i64, "integer").is_err());
    }
}
