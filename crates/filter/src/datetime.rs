//! `date`, `time`, `timestamp`, `timestamptz` and `interval`: input, output, comparison and
//! arithmetic following PostgreSQL 15 with `DateStyle=ISO`, `TimeZone=UTC` and
//! `IntervalStyle=iso_8601`. Under UTC a `timestamptz` has the same microseconds as the
//! `timestamp` that prints the same, so both share the arithmetic here.
//!
//! Input accepts ISO 8601 style dates and times (year first, at least four year digits),
//! numeric UTC offsets, `UTC`/`GMT`/`Z`, `BC`/`AD`, `infinity`, `-infinity` and `epoch`.
//! Other PostgreSQL input styles (month names, day-first dates, named time zones) are
//! rejected with an error rather than guessed.
//!
//! NOTE: the same parser reads column text cast to a date/time type during evaluation, so
//! text in another style makes that row an evaluation error where PostgreSQL may accept it.

use std::cmp::Ordering;

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
pub(crate) const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub(crate) const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub(crate) const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// `date` values are days since 2000-01-01 (PostgreSQL's epoch); these mark ±infinity.
pub(crate) const DATE_NEGATIVE_INFINITY: i32 = i32::MIN;
pub(crate) const DATE_POSITIVE_INFINITY: i32 = i32::MAX;
/// `timestamp` values are microseconds since 2000-01-01 00:00; these mark ±infinity.
pub(crate) const TIMESTAMP_NEGATIVE_INFINITY: i64 = i64::MIN;
pub(crate) const TIMESTAMP_POSITIVE_INFINITY: i64 = i64::MAX;

/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_POSTGRES_DAYS: i64 = 10957;
/// Julian day number of 2000-01-01.
const POSTGRES_EPOCH_JULIAN_DAY: i64 = 2451545;
/// First valid date: Julian day 0, 4714-11-24 BC.
const MIN_DATE: i64 = -POSTGRES_EPOCH_JULIAN_DAY;
/// First date past the valid range: 5874898-01-01 (Julian day 2147483494).
const END_DATE: i64 = 2147483494 - POSTGRES_EPOCH_JULIAN_DAY;
/// First valid timestamp, 4714-11-24 00:00:00 BC.
const MIN_TIMESTAMP: i64 = -211813488000000000;
/// First timestamp past the valid range, 294277-01-01 00:00:00.
const END_TIMESTAMP: i64 = 9223371331200000000;

/// An `interval`: months, days and microseconds are kept apart, as PostgreSQL does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// Returns the value `interval_cmp` orders by: a month counts as 30 days and a day as 24
    /// hours.
    pub(crate) fn comparison_key(&self) -> i128 {
        (self.months as i128 * 30 + self.days as i128) * MICROS_PER_DAY as i128 + self.micros as i128
    }

    pub(crate) fn compare(&self, other: &Interval) -> Ordering {
        self.comparison_key().cmp(&other.comparison_key())
    }

    pub(crate) fn add(&self, other: &Interval) -> Result<Interval, String> {
        let out_of_range = || "interval out of range".to_owned();
        Ok(Interval {
            months: self.months.checked_add(other.months).ok_or_else(out_of_range)?,
            days: self.days.checked_add(other.days).ok_or_else(out_of_range)?,
            micros: self.micros.checked_add(other.micros).ok_or_else(out_of_range)?,
        })
    }

    pub(crate) fn negate(&self) -> Result<Interval, String> {
        let out_of_range = || "interval out of range".to_owned();
        Ok(Interval {
            months: self.months.checked_neg().ok_or_else(out_of_range)?,
            days: self.days.checked_neg().ok_or_else(out_of_range)?,
            micros: self.micros.checked_neg().ok_or_else(out_of_range)?,
        })
    }

    pub(crate) fn subtract(&self, other: &Interval) -> Result<Interval, String> {
        let out_of_range = || "interval out of range".to_owned();
        Ok(Interval {
            months: self.months.checked_sub(other.months).ok_or_else(out_of_range)?,
            days: self.days.checked_sub(other.days).ok_or_else(out_of_range)?,
            micros: self.micros.checked_sub(other.micros).ok_or_else(out_of_range)?,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date; `year` is astronomical (0 is 1 BC).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146097 + day_of_era - 719468
}

/// Converts days since 1970-01-01 back to a date, the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719468;
    let era = shifted.div_euclid(146097);
    let day_of_era = shifted - era * 146097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Days since 2000-01-01 of a calendar date, astronomical year.
fn postgres_days(year: i64, month: i64, day: i64) -> i64 {
    days_from_civil(year, month, day) - UNIX_TO_POSTGRES_DAYS
}

fn civil_from_postgres_days(days: i64) -> (i64, i64, i64) {
    civil_from_days(days + UNIX_TO_POSTGRES_DAYS)
}

/// Fields read from date/time input text.
#[derive(Debug, Default)]
struct DateTimeFields {
    /// Astronomical year, month and day, when the text has a date.
    date: Option<(i64, i64, i64)>,
    /// Microseconds since midnight, up to 24:00:00.
    time: Option<i64>,
    /// UTC offset in seconds (east positive), when the text names one.
    offset_seconds: Option<i64>,
}

enum Special {
    PositiveInfinity,
    NegativeInfinity,
    Epoch,
}

fn special_word(lower: &str, type_name: &str) -> Result<Option<Special>, String> {
    match lower {
        "infinity" => Ok(Some(Special::PositiveInfinity)),
        "-infinity" => Ok(Some(Special::NegativeInfinity)),
        "epoch" => Ok(Some(Special::Epoch)),
        "now" | "today" | "tomorrow" | "yesterday" => Err(format!(
            "the {type_name} input \"{lower}\" depends on the current time or zone, so it is not allowed in a shape"
        )),
        _ => Ok(None),
    }
}

/// Splits `text` into date, time and zone fields.
fn parse_fields(text: &str, type_name: &str, date_required: bool) -> Result<DateTimeFields, String> {
    let invalid = || format!("invalid input syntax for type {type_name}: \"{text}\"");
    let unsupported = || {
        format!(
            "unsupported {type_name} input \"{text}\": write it as YYYY-MM-DD HH:MM:SS[.ffffff] with an optional numeric UTC offset"
        )
    };
    let mut rest = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    let mut before_christ = false;
    for (suffix, bc) in [(" bc", true), (" ad", false)] {
        if let Some(stripped) = rest.strip_suffix(suffix) {
            before_christ = bc;
            rest = stripped.trim_end().to_owned();
        }
    }
    let mut fields = DateTimeFields::default();
    let mut cursor = Cursor { text: &rest, position: 0 };

    if date_required || looks_like_date(&rest) {
        let year_digits = cursor.digits();
        if year_digits.len() < 4 {
            return Err(if year_digits.is_empty() { invalid() } else { unsupported() });
        }
        if !cursor.eat('-') {
            return Err(unsupported());
        }
        let month = cursor.digits();
        if month.is_empty() || month.len() > 2 || !cursor.eat('-') {
            return Err(unsupported());
        }
        let day = cursor.digits();
        if day.is_empty() || day.len() > 2 {
            return Err(unsupported());
        }
        // PostgreSQL reads a '-' right after the day as part of the date, not as a zone.
        if cursor.peek() == Some('-') {
            return Err(invalid());
        }
        let year: i64 = year_digits.parse().map_err(|_| invalid())?;
        let month: i64 = month.parse().map_err(|_| invalid())?;
        let day: i64 = day.parse().map_err(|_| invalid())?;
        if year == 0 {
            return Err(format!("date/time field value out of range: \"{text}\""));
        }
        let year = if before_christ { 1 - year } else { year };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(format!("date/time field value out of range: \"{text}\""));
        }
        fields.date = Some((year, month, day));
        // An ISO 'T' separates the time, also after spaces, and must be followed by one.
        // PostgreSQL's `time` input does not accept it.
        cursor.skip_spaces();
        if cursor.eat('t') && (!date_required || !cursor.peek().is_some_and(|c| c.is_ascii_digit())) {
            return Err(invalid());
        }
    } else if before_christ {
        return Err(invalid());
    }

    if cursor.peek().is_some_and(|c| c.is_ascii_digit()) {
        fields.time = Some(parse_clock(&mut cursor, text)?);
        cursor.skip_spaces();
    }
    if !cursor.at_end() {
        fields.offset_seconds = Some(parse_zone(&mut cursor).ok_or_else(unsupported)?);
    }
    if !cursor.at_end() {
        return Err(unsupported());
    }
    Ok(fields)
}

fn looks_like_date(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 3 && text.as_bytes().get(digits) == Some(&b'-')
}

/// Reads `HH:MM[:SS[.ffffff]]`.
fn parse_clock(cursor: &mut Cursor<'_>, text: &str) -> Result<i64, String> {
    let out_of_range = || format!("date/time field value out of range: \"{text}\"");
    let invalid = || format!("invalid input syntax for time: \"{text}\"");
    let hour = cursor.digits();
    if hour.is_empty() || hour.len() > 2 || !cursor.eat(':') {
        return Err(invalid());
    }
    let minute = cursor.digits();
    if minute.len() != 2 {
        return Err(invalid());
    }

    let mut second = "0";
    let mut fraction_micros = 0;
    if cursor.eat(':') {
        second = cursor.digits();
        if second.len() != 2 {
            return Err(invalid());
        }
        if cursor.eat('.') {
            let fraction = cursor.digits();
            fraction_micros = fraction_to_micros(fraction);
        }
    }

    let hour: i64 = hour.parse().map_err(|_| invalid())?;
    let minute: i64 = minute.parse().map_err(|_| invalid())?;
    let second: i64 = second.parse().map_err(|_| invalid())?;
    if hour > 24 || minute > 59 || second > 60 {
        return Err(out_of_range());
    }
    let total = hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second * MICROS_PER_SECOND + fraction_micros;
    if total > MICROS_PER_DAY {
        return Err(out_of_range());
    }
    Ok(total)
}

/// Microseconds of a fraction of a second given by its digits, rounded half up.
fn fraction_to_micros(digits: &str) -> i64 {
    let mut padded: String = digits.chars().take(7).collect();
    while padded.len() < 7 {
        padded.push('0');
    }
    let value: i64 = padded.parse().unwrap_or(0);
    (value + 5) / 10
}

/// Reads a zone: `z`, `utc`, `gmt` or `±HH[:MM[:SS]]` / `±HHMM`. Returns seconds east of UTC.
fn parse_zone(cursor: &mut Cursor<'_>) -> Option<i64> {
    let rest = &cursor.text[cursor.position..];
    for name in ["utc", "gmt", "z"] {
        if rest == name {
            cursor.position = cursor.text.len();
            return Some(0);
        }
    }
    let sign = match cursor.peek()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    cursor.position += 1;
    let first = cursor.digits();
    let (hours, mut minutes) = match first.len() {
        1 | 2 => (first.parse::<i64>().ok()?, 0),
        4 => (first[..2].parse::<i64>().ok()?, first[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    let mut seconds = 0;
    if first.len() <= 2 && cursor.eat(':') {
        minutes = cursor.digits().parse().ok()?;
        if cursor.eat(':') {
            seconds = cursor.digits().parse().ok()?;
        }
    }
    if hours > 15 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.position..].chars().next()
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.position += expected.len_utf8();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> &'a str {
        let start = self.position;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.position += 1;
        }
        &self.text[start..self.position]
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.position += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.position >= self.text.len()
    }
}

/// Parses `date` input (`date_in`); a time of day in the text is ignored.
pub(crate) fn parse_date(text: &str) -> Result<i32, String> {
    let lower = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    match special_word(&lower, "date")? {
        Some(Special::PositiveInfinity) => return Ok(DATE_POSITIVE_INFINITY),
        Some(Special::NegativeInfinity) => return Ok(DATE_NEGATIVE_INFINITY),
        Some(Special::Epoch) => return Ok(-(UNIX_TO_POSTGRES_DAYS as i32)),
        None => {}
    }
    let fields = parse_fields(text, "date", true)?;
    let (year, month, day) = fields.date.expect("a date is required");
    let days = postgres_days(year, month, day);
    if !(MIN_DATE..END_DATE).contains(&days) {
        return Err(format!("date out of range: \"{text}\""));
    }
    Ok(days as i32)
}

pub(crate) fn format_date(days: i32) -> String {
    match days {
        DATE_POSITIVE_INFINITY => "infinity".to_owned(),
        DATE_NEGATIVE_INFINITY => "-infinity".to_owned(),
        _ => {
            let (year, month, day) = civil_from_postgres_days(days as i64);
            let (year, era) = if year <= 0 { (1 - year, " BC") } else { (year, "") };
            format!("{year:04}-{month:02}-{day:02}{era}")
        }
    }
}

/// Parses `timestamp` input (`with_zone` false) or `timestamptz` input (`with_zone` true).
/// A `timestamp` ignores a zone in the text, as PostgreSQL does. A `timestamptz` applies the
/// text's offset, and UTC when there is none.
pub(crate) fn parse_timestamp(text: &str, with_zone: bool) -> Result<i64, String> {
    let type_name = if with_zone { "timestamp with time zone" } else { "timestamp" };
    let lower = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    match special_word(&lower, type_name)? {
        Some(Special::PositiveInfinity) => return Ok(TIMESTAMP_POSITIVE_INFINITY),
        Some(Special::NegativeInfinity) => return Ok(TIMESTAMP_NEGATIVE_INFINITY),
        Some(Special::Epoch) => return Ok(-UNIX_TO_POSTGRES_DAYS * MICROS_PER_DAY),
        None => {}
    }
    let fields = parse_fields(text, type_name, true)?;
    let (year, month, day) = fields.date.expect("a date is required");
    let days = postgres_days(year, month, day) as i128;
    let mut micros = days * MICROS_PER_DAY as i128 + fields.time.unwrap_or(0) as i128;
    if with_zone {
        micros -= fields.offset_seconds.unwrap_or(0) as i128 * MICROS_PER_SECOND as i128;
    }
    if micros < MIN_TIMESTAMP as i128 || micros >= END_TIMESTAMP as i128 {
        return Err(format!("timestamp out of range: \"{text}\""));
    }
    Ok(micros as i64)
}

/// Formats a `timestamp` (`with_zone` false) or a `timestamptz` in UTC (`with_zone` true).
pub(crate) fn format_timestamp(micros: i64, with_zone: bool) -> String {
    match micros {
        TIMESTAMP_POSITIVE_INFINITY => return "infinity".to_owned(),
        TIMESTAMP_NEGATIVE_INFINITY => return "-infinity".to_owned(),
        _ => {}
    }
    let days = micros.div_euclid(MICROS_PER_DAY);
    let time = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_postgres_days(days);
    let (year, era) = if year <= 0 { (1 - year, " BC") } else { (year, "") };
    let zone = if with_zone { "+00" } else { "" };
    format!("{year:04}-{month:02}-{day:02} {}{zone}{era}", format_clock(time))
}

fn format_clock(micros: i64) -> String {
    let hours = micros / MICROS_PER_HOUR;
    let minutes = micros / MICROS_PER_MINUTE % 60;
    let seconds = micros / MICROS_PER_SECOND % 60;
    let fraction = micros % MICROS_PER_SECOND;
    let mut text = format!("{hours:02}:{minutes:02}:{seconds:02}");
    if fraction != 0 {
        text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
    }
    text
}

/// Parses `time` input; a date or zone in the text is ignored.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let lower = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    special_word(&lower, "time without time zone")?;
    let fields = parse_fields(text, "time without time zone", false)?;
    fields.time.ok_or_else(|| format!("invalid input syntax for type time: \"{text}\""))
}

pub(crate) fn format_time(micros: i64) -> String {
    format_clock(micros)
}

pub(crate) fn is_finite_date(days: i32) -> bool {
    days != DATE_POSITIVE_INFINITY && days != DATE_NEGATIVE_INFINITY
}

pub(crate) fn is_finite_timestamp(micros: i64) -> bool {
    micros != TIMESTAMP_POSITIVE_INFINITY && micros != TIMESTAMP_NEGATIVE_INFINITY
}

/// `date_pli`: adds days to a finite date; infinities stay as they are.
pub(crate) fn date_add_days(date: i32, days: i64) -> Result<i32, String> {
    if !is_finite_date(date) {
        return Ok(date);
    }
    let result = date as i64 + days;
    if !(MIN_DATE..END_DATE).contains(&result) {
        return Err("date out of range".to_owned());
    }
    Ok(result as i32)
}

/// `date_mi`: the number of days between two finite dates.
pub(crate) fn date_difference(left: i32, right: i32) -> Result<i64, String> {
    if !is_finite_date(left) || !is_finite_date(right) {
        return Err("cannot subtract infinite dates".to_owned());
    }
    Ok(left as i64 - right as i64)
}

/// `date2timestamp`: midnight of the date.
pub(crate) fn date_to_timestamp(date: i32) -> Result<i64, String> {
    match date {
        DATE_POSITIVE_INFINITY => Ok(TIMESTAMP_POSITIVE_INFINITY),
        DATE_NEGATIVE_INFINITY => Ok(TIMESTAMP_NEGATIVE_INFINITY),
        _ => {
            let micros = date as i128 * MICROS_PER_DAY as i128;
            if micros >= END_TIMESTAMP as i128 {
                return Err("date out of range for timestamp".to_owned());
            }
            Ok(micros as i64)
        }
    }
}

/// Orders a date against a timestamp as `date_cmp_timestamp` does: a date past the timestamp
/// range sorts after every finite timestamp and before infinity.
pub(crate) fn compare_date_timestamp(date: i32, timestamp: i64) -> Ordering {
    match date_to_timestamp(date) {
        Ok(as_timestamp) => as_timestamp.cmp(&timestamp),
        // Past every finite timestamp but before infinity.
        Err(_) if timestamp == TIMESTAMP_POSITIVE_INFINITY => Ordering::Less,
        Err(_) => Ordering::Greater,
    }
}

/// `timestamp_date`: the date part; infinities map to infinite dates.
pub(crate) fn timestamp_to_date(micros: i64) -> i32 {
    match micros {
        TIMESTAMP_POSITIVE_INFINITY => DATE_POSITIVE_INFINITY,
        TIMESTAMP_NEGATIVE_INFINITY => DATE_NEGATIVE_INFINITY,
        _ => micros.div_euclid(MICROS_PER_DAY) as i32,
    }
}

/// `timestamp_time`: the time of day; `None` (SQL NULL) for an infinite timestamp.
pub(crate) fn timestamp_to_time(micros: i64) -> Option<i64> {
    is_finite_timestamp(micros).then(|| micros.rem_euclid(MICROS_PER_DAY))
}

/// `interval_time`: the interval's microseconds reduced to one day.
pub(crate) fn interval_to_time(interval: &Interval) -> i64 {
    interval.micros.rem_euclid(MICROS_PER_DAY)
}

fn check_timestamp(micros: i128) -> Result<i64, String> {
    if micros < MIN_TIMESTAMP as i128 || micros >= END_TIMESTAMP as i128 {
        return Err("timestamp out of range".to_owned());
    }
    Ok(micros as i64)
}

/// `timestamp_pl_interval`: months first (clamping the day to the month's length), then
/// days, then microseconds. Infinite timestamps stay as they are.
pub(crate) fn timestamp_add_interval(micros: i64, interval: &Interval) -> Result<i64, String> {
    if !is_finite_timestamp(micros) {
        return Ok(micros);
    }
    let mut result = micros as i128;
    if interval.months != 0 {
        let days = micros.div_euclid(MICROS_PER_DAY);
        let time = micros.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_postgres_days(days);
        let month_index = year * 12 + (month - 1) + interval.months as i64;
        let (year, month) = (month_index.div_euclid(12), month_index.rem_euclid(12) + 1);
        let day = day.min(days_in_month(year, month));
        result = check_timestamp(postgres_days(year, month, day) as i128 * MICROS_PER_DAY as i128 + time as i128)? as i128;
    }
    if interval.days != 0 {
        result = check_timestamp(result + interval.days as i128 * MICROS_PER_DAY as i128)? as i128;
    }
    check_timestamp(result + interval.micros as i128)
}

pub(crate) fn timestamp_subtract_interval(micros: i64, interval: &Interval) -> Result<i64, String> {
    let negated = Interval { months: interval.months.wrapping_neg(), days: interval.days.wrapping_neg(), micros: interval.micros.wrapping_neg() };
    timestamp_add_interval(micros, &negated)
}

/// `timestamp_mi`: the difference as days and microseconds (`justify_hours` applied).
pub(crate) fn timestamp_difference(left: i64, right: i64) -> Result<Interval, String> {
    if !is_finite_timestamp(left) || !is_finite_timestamp(right) {
        return Err("cannot subtract infinite timestamps".to_owned());
    }
    // PostgreSQL 15 does not check this subtraction for overflow: the difference between
    // timestamps near both ends of the range wraps around, and so does this one.
    let difference = left.wrapping_sub(right);
    let mut days = difference / MICROS_PER_DAY;
    let mut micros = difference - days * MICROS_PER_DAY;
    if days > 0 && micros < 0 {
        micros += MICROS_PER_DAY;
        days -= 1;
    } else if days < 0 && micros > 0 {
        micros -= MICROS_PER_DAY;
        days += 1;
    }
    Ok(Interval { months: 0, days: days as i32, micros })
}

/// `time_pl_interval`: only the interval's microseconds count, wrapped around midnight.
pub(crate) fn time_add_interval(time: i64, interval: &Interval) -> i64 {
    (time as i128 + interval.micros as i128).rem_euclid(MICROS_PER_DAY as i128) as i64
}

pub(crate) fn time_subtract_interval(time: i64, interval: &Interval) -> i64 {
    (time as i128 - interval.micros as i128).rem_euclid(MICROS_PER_DAY as i128) as i64
}

/// `datetime_pl`: a date at a time of day.
pub(crate) fn date_add_time(date: i32, time: i64) -> Result<i64, String> {
    let start = date_to_timestamp(date)?;
    if !is_finite_timestamp(start) {
        return Ok(start);
    }
    check_timestamp(start as i128 + time as i128)
}

/// Parses `interval` input: ISO 8601 (`P1Y2M3DT4H5M6.5S`, as `IntervalStyle=iso_8601`
/// prints) or PostgreSQL's verbose form (`1 year 2 mons -3 days 04:05:06`, `@ 1 day ago`).
pub(crate) fn parse_interval(text: &str) -> Result<Interval, String> {
    let invalid = || format!("invalid input syntax for type interval: \"{text}\"");
    let lower = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    if lower.is_empty() {
        return Err(invalid());
    }
    let mut total = IntervalBuilder::default();
    if let Some(iso) = lower.strip_prefix('p') {
        parse_iso_interval(iso, &mut total).ok_or_else(invalid)?;
    } else {
        parse_verbose_interval(&lower, &mut total).ok_or_else(invalid)?;
    }
    total.finish().ok_or_else(|| "interval out of range".to_owned())
}

/// Accumulates interval fields, with fractions cascaded to smaller units the way PostgreSQL
/// does: a fraction of a year becomes months, of a month 30-day days, of a day microseconds.
#[derive(Default)]
struct IntervalBuilder {
    months: f64,
    days: f64,
    micros: f64,
    negate_all: bool,
}

impl IntervalBuilder {
    fn add(&mut self, value: f64, unit: Unit) {
        match unit {
            Unit::Micros(per_unit) => self.micros += value * per_unit as f64,
            Unit::Days(per_unit) => {
                let days = value * per_unit as f64;
                self.days += days.trunc();
                self.micros += (days - days.trunc()) * MICROS_PER_DAY as f64;
            }
            Unit::Months(per_unit) => {
                let months = value * per_unit as f64;
                if per_unit >= 12 {
                    // Fractional years round to whole months.
                    self.months += months.round();
                } else {
                    self.months += months.trunc();
                    let days = (months - months.trunc()) * 30.0;
                    self.days += days.trunc();
                    self.micros += (days - days.trunc()) * MICROS_PER_DAY as f64;
                }
            }
        }
    }

    fn finish(self) -> Option<Interval> {
        let sign = if self.negate_all { -1.0 } else { 1.0 };
        let months = (self.months * sign).round();
        let days = (self.days * sign).round();
        let micros = (self.micros * sign).round();
        let in_range = |value: f64, limit: f64| value.is_finite() && value.abs() <= limit;
        if !in_range(months, i32::MAX as f64) || !in_range(days, i32::MAX as f64) || !in_range(micros, 9.2e18) {
            return None;
        }
        Some(Interval { months: months as i32, days: days as i32, micros: micros as i64 })
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Micros(i64),
    Days(i64),
    Months(i64),
}

fn verbose_unit(word: &str) -> Option<Unit> {
    Some(match word {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => Unit::Micros(1),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => Unit::Micros(1000),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(MICROS_PER_SECOND),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(MICROS_PER_MINUTE),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(MICROS_PER_HOUR),
        "day" | "days" | "d" => Unit::Days(1),
        "week" | "weeks" | "w" => Unit::Days(7),
        "month" | "months" | "mon" | "mons" => Unit::Months(1),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12),
        "decade" | "decades" | "dec" | "decs" => Unit::Months(120),
        "century" | "centuries" | "c" | "cent" => Unit::Months(1200),
        "millennium" | "millennia" | "mil" | "mils" => Unit::Months(12000),
        _ => return None,
    })
}

fn parse_iso_interval(text: &str, total: &mut IntervalBuilder) -> Option<()> {
    let mut in_time = false;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('t') {
            if in_time {
                return None;
            }
            in_time = true;
            rest = after;
            continue;
        }
        let number_length = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(rest.len());
        let value: f64 = rest[..number_length].parse().ok()?;
        let designator = rest[number_length..].chars().next()?;
        let unit = match (designator, in_time) {
            ('y', false) => Unit::Months(12),
            ('m', false) => Unit::Months(1),
            ('w', false) => Unit::Days(7),
            ('d', false) => Unit::Days(1),
            ('h', true) => Unit::Micros(MICROS_PER_HOUR),
            ('m', true) => Unit::Micros(MICROS_PER_MINUTE),
            ('s', true) => Unit::Micros(MICROS_PER_SECOND),
            _ => return None,
        };
        total.add(value, unit);
        rest = &rest[number_length + 1..];
    }
    Some(())
}

fn parse_verbose_interval(text: &str, total: &mut IntervalBuilder) -> Option<()> {
    let mut tokens: Vec<String> = Vec::new();
    // Split into numbers (with sign, digits, '.', ':') and words, as PostgreSQL's date/time
    // lexer does: "1day" is two tokens.
    let mut current = String::new();
    let mut current_is_number = false;
    for c in text.chars() {
        if c.is_ascii_whitespace() || c == ',' {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            continue;
        }
        let is_number_char = c.is_ascii_digit() || c == '.' || c == ':' || ((c == '-' || c == '+') && current.is_empty());
        if !current.is_empty() && is_number_char != current_is_number {
            tokens.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current_is_number = is_number_char;
        }
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }

    let mut index = 0;
    if tokens.first().is_some_and(|token| token == "@") {
        index += 1;
    }
    let mut parsed_any = false;
    while index < tokens.len() {
        let token = &tokens[index];
        if token == "ago" {
            if index + 1 != tokens.len() || !parsed_any {
                return None;
            }
            total.negate_all = true;
            index += 1;
            continue;
        }
        if token.contains(':') {
            total.micros += parse_signed_clock(token)? as f64;
            parsed_any = true;
            index += 1;
            continue;
        }
        let value: f64 = token.parse().ok()?;
        let unit = match tokens.get(index + 1).and_then(|word| verbose_unit(word)) {
            Some(unit) => {
                index += 2;
                unit
            }
            // A number without a unit counts as seconds.
            None if index + 1 == tokens.len() || tokens[index + 1] == "ago" => {
                index += 1;
                Unit::Micros(MICROS_PER_SECOND)
            }
            None => return None,
        };
        total.add(value, unit);
        parsed_any = true;
    }
    parsed_any.then_some(())
}

/// `[±]H+:MM[:SS[.ffffff]]` as microseconds.
fn parse_signed_clock(token: &str) -> Option<i64> {
    let (sign, body) = match token.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, token.strip_prefix('+').unwrap_or(token)),
    };
    let mut parts = body.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, fraction) = match parts.next() {
        Some(seconds) => match seconds.split_once('.') {
            Some((whole, fraction)) => (whole.parse::<i64>().ok()?, fraction_to_micros(fraction)),
            None => (seconds.parse::<i64>().ok()?, 0),
        },
        None => (0, 0),
    };
    if parts.next().is_some() || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * MICROS_PER_HOUR + minutes * MICROS_PER_MINUTE + seconds * MICROS_PER_SECOND + fraction))
}

/// Formats an interval as `IntervalStyle=iso_8601` does.
pub(crate) fn format_interval(interval: &Interval) -> String {
    if interval.months == 0 && interval.days == 0 && interval.micros == 0 {
        return "PT0S".to_owned();
    }
    let years = interval.months / 12;
    let months = interval.months % 12;
    let mut text = String::from("P");
    if years != 0 {
        text.push_str(&format!("{years}Y"));
    }
    if months != 0 {
        text.push_str(&format!("{months}M"));
    }
    if interval.days != 0 {
        text.push_str(&format!("{}D", interval.days));
    }

    let hours = interval.micros / MICROS_PER_HOUR;
    let minutes = interval.micros / MICROS_PER_MINUTE % 60;
    let second_micros = interval.micros % MICROS_PER_MINUTE;
    if hours != 0 || minutes != 0 || second_micros != 0 {
        text.push('T');
        if hours != 0 {
            text.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            text.push_str(&format!("{minutes}M"));
        }
        if second_micros != 0 {
            let sign = if second_micros < 0 { "-" } else { "" };
            let magnitude = second_micros.unsigned_abs();
            let whole = magnitude / MICROS_PER_SECOND as u64;
            let fraction = magnitude % MICROS_PER_SECOND as u64;
            text.push_str(&format!("{sign}{whole}"));
            if fraction != 0 {
                text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
            }
            text.push('S');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversion_round_trips() {
        for days in [-2451545_i64, -1, 0, 1, 59, 60, 366, 10957, 2_000_000] {
            let (year, month, day) = civil_from_postgres_days(days);
            assert_eq!(postgres_days(year, month, day), days, "day {days}");
        }
        assert_eq!(civil_from_postgres_days(0), (2000, 1, 1));
    }

    #[test]
    fn dates_parse_and_print() {
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(format_date(parse_date("0044-03-15 BC").unwrap()), "0044-03-15 BC");
        assert_eq!(format_date(parse_date("infinity").unwrap()), "infinity");
        assert_eq!(format_date(parse_date("epoch").unwrap()), "1970-01-01");
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("01-02-2024").is_err());
        assert!(parse_date("today").is_err());
    }

    #[test]
    fn timestamps_apply_offsets() {
        let utc = parse_timestamp("2024-03-10 02:30:00-08", true).unwrap();
        assert_eq!(format_timestamp(utc, true), "2024-03-10 10:30:00+00");
        let local = parse_timestamp("2024-03-10 02:30:00-08", false).unwrap();
        assert_eq!(format_timestamp(local, false), "2024-03-10 02:30:00");
        let fraction = parse_timestamp("2024-01-01T12:34:56.789+05:30", true).unwrap();
        assert_eq!(format_timestamp(fraction, true), "2024-01-01 07:04:56.789+00");
        assert!(parse_timestamp("2024-01-01 12:00 Europe/Berlin", true).is_err());
        // Outcomes checked against PostgreSQL 15.
        assert!(parse_date("2024-01-01-3").is_err());
        assert_eq!(format_date(parse_date("2024-01-01 -3").unwrap()), "2024-01-01");
        assert_eq!(format_date(parse_date("2024-01-01+3").unwrap()), "2024-01-01");
        assert_eq!(format_timestamp(parse_timestamp("2024-01-01 +03", true).unwrap(), true), "2023-12-31 21:00:00+00");
    }

    #[test]
    fn intervals_print_like_postgres() {
        // Expected texts come from PostgreSQL 15 with IntervalStyle=iso_8601.
        let cases = [
            ("-0.5 sec", "PT-0.5S"),
            ("-1 year -2 mons +3 days -04:05:06.789", "P-1Y-2M3DT-4H-5M-6.789S"),
            ("1.5 days", "P1DT12H"),
            ("-1.5 hours", "PT-1H-30M"),
            ("P1Y-2M", "P10M"),
            ("1 week", "P7D"),
            ("1.5 months", "P1M15D"),
            ("0", "PT0S"),
            ("@ 1 day ago", "P-1D"),
        ];
        for (input, expected) in cases {
            assert_eq!(format_interval(&parse_interval(input).unwrap()), expected, "input {input}");
        }
    }

    #[test]
    fn interval_arithmetic_on_timestamps() {
        let month = parse_interval("1 mon").unwrap();
        let start = parse_timestamp("2024-01-31", false).unwrap();
        assert_eq!(format_timestamp(timestamp_add_interval(start, &month).unwrap(), false), "2024-02-29 00:00:00");
        let earlier = parse_timestamp("2023-01-01 12:00", false).unwrap();
        let later = parse_timestamp("2024-01-01", false).unwrap();
        assert_eq!(format_interval(&timestamp_difference(later, earlier).unwrap()), "P364DT12H");
        assert_eq!(parse_interval("1 mon").unwrap().compare(&parse_interval("30 days").unwrap()), Ordering::Equal);
    }
}
