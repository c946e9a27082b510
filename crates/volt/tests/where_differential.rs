//! Differential test of `volt-filter` against PostgreSQL: random rows and random WHERE
//! clauses, where every clause's verdict per row must equal PostgreSQL's.
//!
//! For each generated clause the test compiles it and then runs three queries:
//!
//! 1. `SELECT id, (<to_sql>) FROM t`: the clause's value per row (true, false or NULL),
//!    compared with `Filter::matches` for every row. This is stricter than comparing the
//!    selected ids, because NULL and false must agree too.
//! 2. When that query fails (PostgreSQL stops at the first row whose evaluation errors),
//!    the clause is evaluated once per row with `SELECT (<to_sql>) FROM t WHERE id = $1`.
//!    Each row's error is then seen on its own, and a row must be an error for both sides
//!    or for neither. The expression is evaluated in a select list there, because there
//!    PostgreSQL keeps the written order of AND arguments. In WHERE the planner may reorder
//!    them by cost, which changes which rows raise errors but not which rows are selected.
//! 3. `SELECT id FROM t WHERE <clause as written>` (parameters substituted as untyped
//!    literals) must select exactly the rows `matches` accepts. This checks the parser's
//!    precedence and the type resolution against PostgreSQL's own reading of the text,
//!    which the rendered SQL alone would not, because it is built from our tree.
//!
//! A clause that `compile` rejects must fail PostgreSQL's planning too (a query with LIMIT 0
//! evaluates no row), unless the message says the construct is outside the supported
//! language.
//!
//! The seed is fixed and can be set with `VOLT_FILTER_SEED`; `VOLT_FILTER_CASES` sets the
//! number of clauses and `VOLT_FILTER_ROWS` the number of rows. A failure prints the seed
//! and the shortest failing clause with its row.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::TestVolt;
use futures_util::future::join_all;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use volt_filter::{compile, ColumnSpec};

const DEFAULT_SEED: u64 = 0x5EED_F11E;
const DEFAULT_CASES: usize = 2000;
const DEFAULT_ROWS: usize = 2000;

/// Session settings Volt uses for snapshots, which the evaluator assumes.
const SESSION_SETTINGS: &str =
    "SET DateStyle = 'ISO, DMY'; SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1";

/// splitmix64: a small deterministic generator, so a seed reproduces a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// Kinds of values the generator builds expressions of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Numeric,
    Float,
    Text,
    Bpchar,
    Uuid,
    Date,
    Timestamp,
    Timestamptz,
    Time,
    Interval,
    Mood,
    IntArray,
    TextArray,
    NumericArray,
}

const SCALAR_KINDS: [Kind; 13] = [
    Kind::Bool,
    Kind::Int,
    Kind::Numeric,
    Kind::Float,
    Kind::Text,
    Kind::Bpchar,
    Kind::Uuid,
    Kind::Date,
    Kind::Timestamp,
    Kind::Timestamptz,
    Kind::Time,
    Kind::Interval,
    Kind::Mood,
];

/// The table's columns: name as written in SQL, name in the catalog, type name, array, enum.
const COLUMNS: [(&str, &str, &str, bool, bool); 22] = [
    ("id", "id", "int4", false, false),
    ("b", "b", "bool", false, false),
    ("i2", "i2", "int2", false, false),
    ("i4", "i4", "int4", false, false),
    ("i8", "i8", "int8", false, false),
    ("n", "n", "numeric", false, false),
    ("f4", "f4", "float4", false, false),
    ("f8", "f8", "float8", false, false),
    ("t", "t", "text", false, false),
    ("vc", "vc", "varchar", false, false),
    ("bp", "bp", "bpchar", false, false),
    ("u", "u", "uuid", false, false),
    ("d", "d", "date", false, false),
    ("ts", "ts", "timestamp", false, false),
    ("tz", "tz", "timestamptz", false, false),
    ("tm", "tm", "time", false, false),
    ("iv", "iv", "interval", false, false),
    ("m", "m", "mood", false, true),
    ("ai", "ai", "int4", true, false),
    ("at", "at", "text", true, false),
    ("an", "an", "numeric", true, false),
    ("\"MixedCase\"", "MixedCase", "text", false, false),
];

const CREATE_TABLE: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'Mixed Case');
    CREATE TABLE t (
        id int4 PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, n numeric, f4 float4, f8 float8,
        t text, vc varchar(20), bp char(5), u uuid, d date, ts timestamp, tz timestamptz, tm time,
        iv interval, m mood, ai int4[], at text[], an numeric[], \"MixedCase\" text)";

fn columns_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Bool => &["b"],
        Kind::Int => &["i2", "i4", "i8", "id", "I4"],
        Kind::Numeric => &["n"],
        Kind::Float => &["f4", "f8"],
        Kind::Text => &["t", "vc", "\"MixedCase\"", "T"],
        Kind::Bpchar => &["bp"],
        Kind::Uuid => &["u"],
        Kind::Date => &["d"],
        Kind::Timestamp => &["ts"],
        Kind::Timestamptz => &["tz"],
        Kind::Time => &["tm"],
        Kind::Interval => &["iv"],
        Kind::Mood => &["m"],
        Kind::IntArray => &["ai"],
        Kind::TextArray => &["at"],
        Kind::NumericArray => &["an"],
    }
}

/// Stored values of each kind, as input text; edges first.
fn value_pool(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Bool => &["true", "false"],
        Kind::Int => &["0", "1", "-1", "7", "42", "-100", "32767", "-32768", "2147483647", "-2147483648", "9223372036854775807", "-9223372036854775808"],
        Kind::Numeric => &[
            "0", "1.5", "-1.50", "1.0", "NaN", "Infinity", "-Infinity", "42", "3.14159", "1e20", "-0.000000000000000000001",
            "123456789012345678901234567890.123456789", "-98765432109876543210987654321",
        ],
        Kind::Float => &["0", "-0", "1.5", "NaN", "Infinity", "-Infinity", "0.1", "42", "2.5", "1e15", "3.4e38", "1e-38", "16777217", "1e308", "-1e-308"],
        Kind::Text => &[
            "", "a", "A", "abc", "ABC", "Abc", "Äpfel", "äpfel", "日本語", "a b", "a%b", "a_b", "line1\nline2", "x\\y", "quote's",
            "trailing ", " leading", "😀", "null", "NULL", "42", "2024-01-01", "ab", "2024-01-01 12:00:00+02", "2024-01-01T10:00",
            "2024-01-01-3", "12:30", "1 day", "1.5e3", "t",
        ],
        Kind::Bpchar => &["ab", "ab   ", "AB", "", "abcde", "a", "  x", "42"],
        Kind::Uuid => &[
            "00000000-0000-0000-0000-000000000000",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "123e4567-e89b-12d3-a456-426614174000",
        ],
        Kind::Date => &[
            "2024-01-01", "2024-02-29", "1999-12-31", "infinity", "-infinity", "0044-03-15 BC", "2000-01-01", "1970-01-01", "5874897-12-31",
            "4714-11-24 BC", "2024-03-10",
        ],
        Kind::Timestamp => &[
            "2024-01-01 00:00:00", "2024-02-29 12:34:56.789", "1999-12-31 23:59:59.999999", "infinity", "-infinity", "0044-03-15 12:00:00 BC",
            "2000-01-01 00:00:00", "294276-12-31 23:59:59", "2024-03-10 10:30:00",
        ],
        Kind::Timestamptz => &[
            "2024-03-10 02:30:00-08", "2024-01-01 00:00:00+00", "2024-06-15 12:00:00+05:30", "1999-12-31 23:59:59.5-03", "infinity", "-infinity",
            "2000-01-01 00:00:00Z", "2024-03-10 10:30:00+00",
        ],
        Kind::Time => &["00:00:00", "12:00:00", "23:59:59.999999", "24:00:00", "12:34:56.5", "06:30", "10:30:00"],
        Kind::Interval => &[
            "1 day", "-1 mon", "24 hours", "30 days", "1 mon", "P1Y2M3DT4H5M6.5S", "0", "-1 days +02:03:04", "1.5 days", "100 years",
            "00:00:00.000001", "-178000000 years",
        ],
        Kind::Mood => &["sad", "ok", "happy", "Mixed Case"],
        Kind::IntArray => &["{}", "{1,2,3}", "{NULL}", "{1,NULL}", "{3,2,1}", "{42}", "{2147483647,-2147483648}", "[0:1]={1,2}", "{{1,2},{3,4}}"],
        Kind::TextArray => &["{}", "{a,b}", "{\"a b\",\"c,d\"}", "{NULL,x}", "{A,a}", "{\"\"}", "{Äpfel}", "{ab}"],
        Kind::NumericArray => &["{}", "{1.5,NaN}", "{1.50}", "{Infinity,-Infinity,0}", "{NULL}", "{42}"],
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Picks a random stored value of `kind`, or NULL.
fn random_value(rng: &mut Rng, kind: Kind) -> Option<String> {
    if rng.chance(10) {
        return None;
    }
    if rng.chance(60) {
        return Some(rng.pick(value_pool(kind)).to_string());
    }
    Some(match kind {
        Kind::Int => rng.range(-1000, 1000).to_string(),
        Kind::Numeric => format!("{}.{:0>3}", rng.range(-1000, 1000), rng.range(0, 999)),
        Kind::Float => format!("{}e{}", rng.range(-999, 999), rng.range(-5, 5)),
        Kind::Text | Kind::Bpchar => {
            let letters = ["a", "b", "A", "B", "ä", " ", "%", "_", "\\", "x"];
            let length = rng.range(0, 4) as usize;
            (0..length).map(|_| *rng.pick(&letters)).collect()
        }
        Kind::Date => format!("{:04}-{:02}-{:02}", rng.range(1900, 2100), rng.range(1, 12), rng.range(1, 28)),
        Kind::Timestamp => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            rng.range(1900, 2100),
            rng.range(1, 12),
            rng.range(1, 28),
            rng.range(0, 23),
            rng.range(0, 59),
            rng.range(0, 59),
            rng.range(0, 999)
        ),
        Kind::Timestamptz => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:00{:+03}",
            rng.range(1900, 2100),
            rng.range(1, 12),
            rng.range(1, 28),
            rng.range(0, 23),
            rng.range(0, 59),
            rng.range(-12, 14)
        ),
        Kind::Time => format!("{:02}:{:02}:{:02}", rng.range(0, 23), rng.range(0, 59), rng.range(0, 59)),
        Kind::Interval => format!("{} days {} hours", rng.range(-40, 40), rng.range(-30, 30)),
        Kind::IntArray => {
            let length = rng.range(0, 4);
            let items: Vec<String> = (0..length).map(|_| if rng.chance(15) { "NULL".to_owned() } else { rng.range(-5, 5).to_string() }).collect();
            format!("{{{}}}", items.join(","))
        }
        Kind::TextArray => {
            let length = rng.range(0, 3);
            let items: Vec<String> = (0..length).map(|_| rng.pick(&["a", "b", "A", "\"x y\"", "NULL", "ab"]).to_string()).collect();
            format!("{{{}}}", items.join(","))
        }
        other => rng.pick(value_pool(other)).to_string(),
    })
}

/// Builds random clauses of the supported language.
struct Generator<'a> {
    rng: &'a mut Rng,
    params: Vec<String>,
}

impl Generator<'_> {
    fn clause(&mut self) -> String {
        let depth = self.rng.range(1, 3) as u32;
        self.boolean(depth)
    }

    fn parameter(&mut self, text: &str) -> String {
        self.params.push(text.to_owned());
        format!("${}", self.params.len())
    }

    fn boolean(&mut self, depth: u32) -> String {
        let choice = self.rng.below(if depth == 0 { 9 } else { 13 });
        match choice {
            0 => self.value(Kind::Bool, depth),
            1..=3 => self.comparison(depth),
            4 => {
                let kind = self.any_kind();
                let value = self.value(kind, depth);
                format!("{value} IS {}NULL", if self.rng.chance(50) { "NOT " } else { "" })
            }
            5 => self.in_list(depth),
            6 => self.between(depth),
            7 => self.like(depth),
            8 => self.scalar_array(depth),
            9 => {
                let tests = ["IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE", "IS UNKNOWN", "IS NOT UNKNOWN"];
                let test = *self.rng.pick(&tests);
                format!("({}) {test}", self.boolean(depth - 1))
            }
            10 => format!("NOT ({})", self.boolean(depth - 1)),
            _ => {
                let op = if self.rng.chance(50) { "AND" } else { "OR" };
                let left = self.boolean(depth - 1);
                let right = self.boolean(depth - 1);
                if self.rng.chance(50) {
                    format!("({left}) {op} ({right})")
                } else {
                    format!("{left} {op} {right}")
                }
            }
        }
    }

    fn any_kind(&mut self) -> Kind {
        let kinds = [
            Kind::Bool,
            Kind::Int,
            Kind::Numeric,
            Kind::Float,
            Kind::Text,
            Kind::Bpchar,
            Kind::Uuid,
            Kind::Date,
            Kind::Timestamp,
            Kind::Timestamptz,
            Kind::Time,
            Kind::Interval,
            Kind::Mood,
            Kind::IntArray,
            Kind::TextArray,
            Kind::NumericArray,
        ];
        *self.rng.pick(&kinds)
    }

    /// Picks a kind whose values compare with `kind`'s: numeric types with each other, dates
    /// and time stamps with each other, and the string types with each other.
    fn comparable(&mut self, kind: Kind) -> Kind {
        let family: &[Kind] = match kind {
            Kind::Int | Kind::Numeric | Kind::Float => &[Kind::Int, Kind::Numeric, Kind::Float],
            Kind::Date | Kind::Timestamp | Kind::Timestamptz => &[Kind::Date, Kind::Timestamp, Kind::Timestamptz],
            Kind::Text | Kind::Bpchar => &[Kind::Text, Kind::Bpchar],
            other => return other,
        };
        if self.rng.chance(50) {
            kind
        } else {
            *self.rng.pick(family)
        }
    }

    fn comparison(&mut self, depth: u32) -> String {
        let kind = self.any_kind();
        let other = self.comparable(kind);
        let left = self.value(kind, depth);
        let right = self.value(other, depth);
        let op = match kind {
            Kind::Mood => *self.rng.pick(&["=", "<>", "!="]),
            Kind::IntArray | Kind::TextArray | Kind::NumericArray => *self.rng.pick(&["=", "<>", "@>", "<@", "&&", "<", ">="]),
            _ if self.rng.chance(15) => return format!("{left} IS {}DISTINCT FROM {right}", if self.rng.chance(50) { "NOT " } else { "" }),
            _ => *self.rng.pick(&["=", "<>", "!=", "<", "<=", ">", ">="]),
        };
        format!("{left} {op} {right}")
    }

    fn in_list(&mut self, depth: u32) -> String {
        let kind = *self.rng.pick(&SCALAR_KINDS);
        let left = self.value(kind, depth);
        let count = self.rng.range(1, 4);
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(if self.rng.chance(10) {
                "NULL".to_owned()
            } else if self.rng.chance(15) {
                self.value(kind, 0)
            } else {
                self.literal(kind)
            });
        }
        format!("{left} {}IN ({})", if self.rng.chance(30) { "NOT " } else { "" }, items.join(", "))
    }

    fn between(&mut self, depth: u32) -> String {
        let kinds = [Kind::Int, Kind::Numeric, Kind::Float, Kind::Text, Kind::Date, Kind::Timestamp, Kind::Timestamptz, Kind::Time, Kind::Interval];
        let kind = *self.rng.pick(&kinds);
        let arg = self.value(kind, depth);
        let low = self.literal(kind);
        let high = self.literal(kind);
        let negated = if self.rng.chance(30) { "NOT " } else { "" };
        let symmetric = if self.rng.chance(30) { "SYMMETRIC " } else { "" };
        format!("{arg} {negated}BETWEEN {symmetric}{low} AND {high}")
    }

    fn like(&mut self, depth: u32) -> String {
        let kind = if self.rng.chance(80) { Kind::Text } else { Kind::Bpchar };
        let arg = self.value(kind, depth);
        let patterns = ["'a%'", "'%b%'", "'_'", "'%'", "'A_c'", "'a\\%b'", "'%\n%'", "'%ä%'", "'abc\\'", "''", "'%e '", "'ab%'", "'x!%'", "'%\\\\%'"];
        let pattern = if self.rng.chance(10) { self.value(Kind::Text, 0) } else { self.rng.pick(&patterns).to_string() };
        let op = *self.rng.pick(&["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"]);
        let escape = match self.rng.below(6) {
            0 => " ESCAPE '!'",
            1 => " ESCAPE ''",
            _ => "",
        };
        format!("{arg} {op} {pattern}{escape}")
    }

    fn scalar_array(&mut self, depth: u32) -> String {
        let (element, array) = *self.rng.pick(&[(Kind::Int, Kind::IntArray), (Kind::Text, Kind::TextArray), (Kind::Numeric, Kind::NumericArray)]);
        let left = self.value(element, depth);
        let right = self.value(array, depth);
        let op = *self.rng.pick(&["=", "<>", "<", ">="]);
        let quantifier = *self.rng.pick(&["ANY", "ALL", "SOME"]);
        format!("{left} {op} {quantifier}({right})")
    }

    fn value(&mut self, kind: Kind, depth: u32) -> String {
        let roll = self.rng.below(100);
        if roll < 40 {
            return self.rng.pick(columns_of(kind)).to_string();
        }
        if roll < 75 || depth == 0 {
            if self.rng.chance(8) && !matches!(kind, Kind::Mood) {
                let text = self.rng.pick(value_pool(kind)).to_string();
                return self.parameter(&text);
            }
            return self.literal(kind);
        }
        self.compound(kind, depth - 1)
    }

    fn literal(&mut self, kind: Kind) -> String {
        // An untyped literal takes its type from the other operand.
        if kind != Kind::Mood && self.rng.chance(20) {
            let text: &&str = self.rng.pick(value_pool(kind));
            return quote(text);
        }
        let forms: &[&str] = match kind {
            Kind::Bool => &["true", "false", "'t'", "NULL::bool"],
            Kind::Int => &["5", "-3", "0", "2147483647", "-2147483648", "9223372036854775807", "'7'", "32767", "100000", "42", "-(5)"],
            Kind::Numeric => &["1.5", "-0.5", "'NaN'::numeric", "123456789012345678901234567890.5", "1e3", "0.0", "'Infinity'::numeric", "1.50", "42.0"],
            Kind::Float => &["'NaN'::float8", "1.5::float4", "'-0'::float8", "'Infinity'::float8", "1e300::float8", "0.1::float4", "'3.4e38'::real", "2.5::double precision", "CAST(0.1 AS float8)"],
            Kind::Text => &["'abc'", "'ABC'", "'Äpfel'", "E'line1\\nline2'", "'quote''s'", "''", "'a%b'", "'trailing '", "'日本語'", "'a'", "'42'", "'ab'"],
            Kind::Bpchar => &["'ab'::char(5)", "'ab   '::bpchar", "'AB'::bpchar", "'abcdef'::char(3)", "'a'::character(2)"],
            Kind::Uuid => &["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "'{00000000-0000-0000-0000-000000000000}'::uuid", "'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'"],
            Kind::Date => &["'2024-01-01'::date", "date '2024-02-29'", "'infinity'::date", "CAST('1999-12-31' AS date)", "'2024-03-10'"],
            Kind::Timestamp => &["'2024-01-01 00:00:00'::timestamp", "timestamp '2024-02-29 12:34:56.789'", "'infinity'::timestamp", "'2024-03-10 10:30'"],
            Kind::Timestamptz => &[
                "'2024-03-10 02:30:00-08'::timestamptz",
                "'2024-01-01T00:00:00Z'::timestamptz",
                "timestamptz '2024-06-15 12:00:00+05:30'",
                "'-infinity'::timestamp with time zone",
            ],
            Kind::Time => &["'12:00'::time", "'24:00:00'::time", "time '06:30:00.5'", "'10:30'"],
            Kind::Interval => &["interval '1 day'", "'-1 mon'::interval", "'P1DT2H'::interval", "'1.5 days'::interval", "'30 days'::interval", "interval '24 hours'", "'1 day'"],
            Kind::Mood => &["'happy'", "'sad'", "'Mixed Case'", "'ok'"],
            Kind::IntArray => &["ARRAY[1,2]", "'{1,NULL,3}'::int[]", "'{}'::int4[]", "ARRAY[]::int[]", "ARRAY[42]", "'{1,2,3}'"],
            Kind::TextArray => &["ARRAY['a','b']", "'{a,b}'::text[]", "'{}'::text[]", "ARRAY['A', NULL]", "'{ab}'"],
            Kind::NumericArray => &["ARRAY[1.5, 2]", "'{NaN}'::numeric[]", "ARRAY[1.50]", "'{42,Infinity}'::numeric[]"],
        };
        self.rng.pick(forms).to_string()
    }

    fn compound(&mut self, kind: Kind, depth: u32) -> String {
        let choice = self.rng.below(6);
        match kind {
            Kind::Bool => match choice {
                0 => format!("({})::bool", self.value_of(&[Kind::Int, Kind::Text], depth)),
                1 => format!("NOT {}", self.value(Kind::Bool, depth)),
                _ => format!("({})", self.boolean(depth)),
            },
            Kind::Int => match choice {
                0 | 1 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/", "%"]);
                    format!("({} {op} {})", self.value(Kind::Int, depth), self.value(Kind::Int, depth))
                }
                2 => format!("{}{}", self.rng.pick(&["-", "+", "- "]), self.value(Kind::Int, depth)),
                3 => format!("abs({})", self.value(Kind::Int, depth)),
                4 => {
                    let source = *self.rng.pick(&[Kind::Numeric, Kind::Float, Kind::Text, Kind::Int]);
                    let target = *self.rng.pick(&["int2", "int4", "int8", "integer", "bigint", "smallint"]);
                    format!("({})::{target}", self.value(source, depth))
                }
                _ => match self.rng.below(4) {
                    0 => format!("length({})", self.value(Kind::Text, depth)),
                    1 => format!("({} - {})", self.value(Kind::Date, depth), self.value(Kind::Date, depth)),
                    2 => format!("coalesce({}, {})", self.value(Kind::Int, depth), self.value(Kind::Int, depth)),
                    _ => format!("{}({}, {})", self.rng.pick(&["greatest", "least"]), self.value(Kind::Int, depth), self.value(Kind::Int, depth)),
                },
            },
            Kind::Numeric => match choice {
                0..=2 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/", "%"]);
                    let other = *self.rng.pick(&[Kind::Int, Kind::Numeric]);
                    format!("({} {op} {})", self.value(Kind::Numeric, depth), self.value(other, depth))
                }
                3 => format!("abs({})", self.value(Kind::Numeric, depth)),
                4 => {
                    let source = *self.rng.pick(&[Kind::Int, Kind::Float, Kind::Text, Kind::Numeric]);
                    let target = *self.rng.pick(&["numeric", "numeric(10,2)", "decimal", "numeric(5)", "numeric(40,20)"]);
                    format!("CAST({} AS {target})", self.value(source, depth))
                }
                _ => format!("coalesce({}, {})", self.value(Kind::Numeric, depth), self.literal(Kind::Numeric)),
            },
            Kind::Float => match choice {
                0..=2 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/"]);
                    let other = *self.rng.pick(&[Kind::Int, Kind::Float, Kind::Numeric]);
                    format!("({} {op} {})", self.value(Kind::Float, depth), self.value(other, depth))
                }
                3 => format!("-{}", self.value(Kind::Float, depth)),
                4 => {
                    let source = *self.rng.pick(&[Kind::Int, Kind::Numeric, Kind::Text, Kind::Float]);
                    let target = *self.rng.pick(&["float8", "float4", "real", "double precision"]);
                    format!("({})::{target}", self.value(source, depth))
                }
                _ => format!("abs({})", self.value(Kind::Float, depth)),
            },
            Kind::Text => match choice {
                0 => format!("{}({})", self.rng.pick(&["lower", "upper", "LOWER", "trim"]), self.value(Kind::Text, depth)),
                1 => format!("({} || {})", self.value(Kind::Text, depth), self.value_of(&[Kind::Text, Kind::Int, Kind::Bpchar], depth)),
                2 => format!("concat({}, {}, {})", self.value(Kind::Text, depth), self.value_of(&SCALAR_KINDS, depth), self.value_of(&SCALAR_KINDS, depth)),
                3 => {
                    let source = *self.rng.pick(&SCALAR_KINDS);
                    let target = *self.rng.pick(&["text", "varchar", "varchar(3)", "char(3)"]);
                    format!("CAST({} AS {target})", self.value(source, depth))
                }
                4 => format!("trim({} {} from {})", self.rng.pick(&["both", "leading", "trailing"]), self.rng.pick(&["'a'", "' '", "'ab'"]), self.value(Kind::Text, depth)),
                _ => format!("coalesce({}, {})", self.value(Kind::Text, depth), self.literal(Kind::Text)),
            },
            Kind::Date => match choice {
                0 | 1 => format!("({} {} {})", self.value(Kind::Date, depth), self.rng.pick(&["+", "-"]), self.value(Kind::Int, depth)),
                2 => format!("({})::date", self.value(Kind::Timestamp, depth)),
                3 => format!("({})::date", self.value(Kind::Timestamptz, depth)),
                4 => format!("({})::date", self.value(Kind::Text, depth)),
                _ => format!("{}({}, {})", self.rng.pick(&["greatest", "least"]), self.value(Kind::Date, depth), self.literal(Kind::Date)),
            },
            Kind::Timestamp => match choice {
                0 | 1 => format!("({} {} {})", self.value(Kind::Timestamp, depth), self.rng.pick(&["+", "-"]), self.value(Kind::Interval, depth)),
                2 => format!("({} + {})", self.value(Kind::Date, depth), self.value(Kind::Time, depth)),
                3 => format!("({})::timestamp", self.value_of(&[Kind::Date, Kind::Timestamptz], depth)),
                _ => format!("({} + {})", self.value(Kind::Date, depth), self.value(Kind::Interval, depth)),
            },
            Kind::Timestamptz => match choice {
                0..=2 => format!("({} {} {})", self.value(Kind::Timestamptz, depth), self.rng.pick(&["+", "-"]), self.value(Kind::Interval, depth)),
                _ => format!("({})::timestamptz", self.value_of(&[Kind::Date, Kind::Timestamp], depth)),
            },
            Kind::Time => match choice {
                0 | 1 => format!("({} {} {})", self.value(Kind::Time, depth), self.rng.pick(&["+", "-"]), self.value(Kind::Interval, depth)),
                2 => format!("({})::time", self.value_of(&[Kind::Timestamp, Kind::Timestamptz, Kind::Interval], depth)),
                _ => self.literal(Kind::Time),
            },
            Kind::Interval => match choice {
                0 => format!("({} - {})", self.value(Kind::Timestamp, depth), self.value(Kind::Timestamp, depth)),
                1 => format!("({} - {})", self.value(Kind::Timestamptz, depth), self.value(Kind::Timestamptz, depth)),
                2 => format!("({} - {})", self.value(Kind::Time, depth), self.value(Kind::Time, depth)),
                3 => format!("({} {} {})", self.value(Kind::Interval, depth), self.rng.pick(&["+", "-"]), self.value(Kind::Interval, depth)),
                4 => format!("-{}", self.value(Kind::Interval, depth)),
                _ => format!("({})::interval", self.value_of(&[Kind::Time, Kind::Text], depth)),
            },
            Kind::IntArray => match choice {
                0 | 1 => format!("({} || {})", self.value(Kind::IntArray, depth), self.value(Kind::Int, depth)),
                2 => format!("({} || {})", self.value(Kind::IntArray, depth), self.value(Kind::IntArray, depth)),
                3 => format!("({} || {})", self.value(Kind::Int, depth), self.value(Kind::IntArray, depth)),
                _ => format!("ARRAY[{}, {}]", self.value(Kind::Int, depth), self.literal(Kind::Int)),
            },
            Kind::TextArray => match choice {
                0 | 1 => format!("({} || {})", self.value(Kind::TextArray, depth), self.value(Kind::TextArray, depth)),
                _ => format!("ARRAY[{}, 'x']", self.value(Kind::Text, depth)),
            },
            Kind::Uuid => match choice {
                0 => format!("({})::uuid", self.value(Kind::Text, depth)),
                _ => format!("coalesce({}, {})", self.value(Kind::Uuid, depth), self.literal(Kind::Uuid)),
            },
            Kind::Bpchar => match choice {
                0 => format!("({})::char(2)", self.value_of(&[Kind::Text, Kind::Int], depth)),
                _ => format!("{}({}, {})", self.rng.pick(&["greatest", "least", "coalesce"]), self.value(Kind::Bpchar, depth), self.literal(Kind::Bpchar)),
            },
            Kind::Mood | Kind::NumericArray => self.literal(kind),
        }
    }

    fn value_of(&mut self, kinds: &[Kind], depth: u32) -> String {
        let kind = *self.rng.pick(kinds);
        self.value(kind, depth)
    }
}

/// Replaces `$n` in the clause with the parameter values as untyped literals, which
/// PostgreSQL reads the same way as untyped parameters.
fn substitute_parameters(clause: &str, params: &[String]) -> String {
    let mut text = clause.to_owned();
    for (index, value) in params.iter().enumerate().rev() {
        text = text.replace(&format!("${}", index + 1), &quote(value));
    }
    text
}

/// One disagreement between volt-filter and PostgreSQL.
struct Failure {
    clause: String,
    rendered: String,
    row_id: Option<i32>,
    expected: String,
    actual: String,
}

fn verdict(result: &Result<Option<bool>, volt_filter::EvalError>) -> String {
    match result {
        Ok(Some(true)) => "true".to_owned(),
        Ok(Some(false)) => "false".to_owned(),
        Ok(None) => "NULL".to_owned(),
        Err(error) => format!("error ({error})"),
    }
}

fn postgres_verdict(text: Option<&str>) -> String {
    match text {
        Some("t") | Some("true") => "true".to_owned(),
        Some("f") | Some("false") => "false".to_owned(),
        None => "NULL".to_owned(),
        Some(other) => other.to_owned(),
    }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.batch_execute(SESSION_SETTINGS).await.expect("session settings");
    client
}

/// Runs a simple query and returns its rows as text.
async fn text_rows(client: &Client, query: &str) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let mut rows = Vec::new();
    for message in client.simple_query(query).await? {
        if let SimpleQueryMessage::Row(row) = message {
            rows.push((0..row.len()).map(|index| row.get(index).map(str::to_owned)).collect());
        }
    }
    Ok(rows)
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {text:?}")),
        Err(_) => default,
    }
}

/// Phrases of messages for clauses that are rejected on purpose although PostgreSQL accepts
/// the clause as written. Inconsistent parameter types are among them: the raw-text query
/// has literals in place of parameters, but PostgreSQL rejects the clause with real ones.
const OUTSIDE_LANGUAGE: [&str; 6] =
    ["not supported", "not allowed", "unsupported", "only the C and POSIX", "depends on the current time", "inconsistent types deduced for parameter"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_clauses_match_postgres() {
    let seed = env_number("VOLT_FILTER_SEED", DEFAULT_SEED);
    let cases = env_number("VOLT_FILTER_CASES", DEFAULT_CASES as u64) as usize;
    let row_count = env_number("VOLT_FILTER_ROWS", DEFAULT_ROWS as u64) as usize;
    let started = Instant::now();

    let volt = TestVolt::start(1_000).await;
    let client = connect(&volt.server.database_url).await;
    client.batch_execute(CREATE_TABLE).await.expect("create table");

    let mut rng = Rng(seed);
    let kinds_by_column: Vec<Kind> = vec![
        Kind::Int, Kind::Bool, Kind::Int, Kind::Int, Kind::Int, Kind::Numeric, Kind::Float, Kind::Float, Kind::Text, Kind::Text,
        Kind::Bpchar, Kind::Uuid, Kind::Date, Kind::Timestamp, Kind::Timestamptz, Kind::Time, Kind::Interval, Kind::Mood,
        Kind::IntArray, Kind::TextArray, Kind::NumericArray, Kind::Text,
    ];
    let column_types = [
        "int4", "bool", "int2", "int4", "int8", "numeric", "float4", "float8", "text", "varchar(20)", "char(5)", "uuid", "date", "timestamp",
        "timestamptz", "time", "interval", "mood", "int4[]", "text[]", "numeric[]", "text",
    ];
    for batch_start in (0..row_count).step_by(200) {
        let mut values = Vec::new();
        for id in batch_start..(batch_start + 200).min(row_count) {
            let mut fields = vec![id.to_string()];
            for (column, kind) in kinds_by_column.iter().enumerate().skip(1) {
                let mut value = random_value(&mut rng, *kind);
                // Keep values the column type can store (int2, float4, varchar(20)).
                if let Some(text) = &value {
                    let fits = match column_types[column] {
                        "int2" => text.parse::<i16>().is_ok(),
                        "int4" => text.parse::<i32>().is_ok(),
                        "float4" => !matches!(text.as_str(), "1e308" | "-1e-308"),
                        "char(5)" => text.chars().count() <= 5,
                        _ => true,
                    };
                    if !fits {
                        value = None;
                    }
                }
                fields.push(match value {
                    None => "NULL".to_owned(),
                    Some(text) => format!("{}::{}", quote(&text), column_types[column]),
                });
            }
            values.push(format!("({})", fields.join(", ")));
        }
        client.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(", "))).await.expect("insert rows");
    }
    let stored = text_rows(&client, "SELECT * FROM t ORDER BY id").await.expect("read rows");
    let ids: Vec<i32> = stored.iter().map(|row| row[0].as_deref().unwrap().parse().unwrap()).collect();

    let columns: Vec<ColumnSpec> = COLUMNS
        .iter()
        .map(|(_, name, type_name, is_array, is_enum)| ColumnSpec {
            name: name.to_string(),
            type_name: type_name.to_string(),
            is_array: *is_array,
            is_enum: *is_enum,
            collation: None,
        })
        .collect();

    let mut failures: Vec<Failure> = Vec::new();
    let mut compiled = 0usize;
    let mut rejected_by_both = 0usize;
    let mut rejected_outside_language = 0usize;
    let mut per_row_clauses = 0usize;
    let mut raw_checks = 0usize;
    let mut raw_skipped = 0usize;
    let mut outside_examples: BTreeMap<String, String> = BTreeMap::new();
    let mut evaluation_time = std::time::Duration::ZERO;

    for _ in 0..cases {
        let mut generator = Generator { rng: &mut rng, params: Vec::new() };
        let clause = generator.clause();
        let params = generator.params;
        let param_map: BTreeMap<usize, String> = params.iter().enumerate().map(|(index, value)| (index + 1, value.clone())).collect();
        let raw = substitute_parameters(&clause, &params);

        let filter = match compile(&clause, &param_map, &columns) {
            Ok(filter) => filter,
            Err(error) => {
                // LIMIT 0 plans the query, which raises parse and constant-folding errors,
                // without evaluating any row.
                let postgres = client.simple_query(&format!("SELECT 1 FROM t WHERE {raw} LIMIT 0")).await;
                if postgres.is_err() {
                    rejected_by_both += 1;
                } else if OUTSIDE_LANGUAGE.iter().any(|phrase| error.message.contains(phrase)) {
                    rejected_outside_language += 1;
                    outside_examples.entry(error.message.clone()).or_insert(clause.clone());
                } else {
                    failures.push(Failure { clause, rendered: String::new(), row_id: None, expected: "accepted by PostgreSQL".into(), actual: format!("rejected: {error}") });
                }
                continue;
            }
        };
        compiled += 1;
        let rendered = filter.to_sql();
        let evaluation_started = Instant::now();
        let ours: Vec<Result<Option<bool>, volt_filter::EvalError>> =
            stored.iter().map(|row| filter.matches(&row.iter().map(Option::as_deref).collect::<Vec<_>>())).collect();
        evaluation_time += evaluation_started.elapsed();

        // The rendered SQL must compile back to itself.
        match compile(&rendered, &BTreeMap::new(), &columns) {
            Ok(again) if again.to_sql() == rendered => {}
            Ok(again) => failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: None, expected: "the same SQL after compiling the rendered SQL".into(), actual: again.to_sql() }),
            Err(error) => failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: None, expected: "the rendered SQL compiles".into(), actual: error.to_string() }),
        }
        // A row can match only when its text is among the equality index's values.
        if let Some((column, texts)) = filter.equality_index() {
            for (index, result) in ours.iter().enumerate() {
                let text = stored[index][column].as_deref();
                if matches!(result, Ok(Some(true))) && !text.is_some_and(|text| texts.iter().any(|candidate| candidate == text)) {
                    failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: Some(ids[index]), expected: format!("equality index {texts:?} contains {text:?}"), actual: "missing".into() });
                }
            }
        }

        match text_rows(&client, &format!("SELECT id, ({rendered}) FROM t ORDER BY id")).await {
            Ok(rows) => {
                for (index, row) in rows.iter().enumerate() {
                    let expected = postgres_verdict(row[1].as_deref());
                    let actual = verdict(&ours[index]);
                    if expected != actual {
                        failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: Some(ids[index]), expected, actual });
                    }
                }
            }
            Err(query_error) => {
                // Does the query fail without rows? Then it fails at planning, and the clause
                // should not have compiled.
                if let Err(error) = client.simple_query(&format!("SELECT ({rendered}) FROM t WHERE false")).await {
                    failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: None, expected: format!("PostgreSQL rejects it: {error}"), actual: "compiled".into() });
                    continue;
                }
                per_row_clauses += 1;
                let statement = match client.prepare(&format!("SELECT ({rendered})::text FROM t WHERE id = $1")).await {
                    Ok(statement) => statement,
                    Err(error) => panic!("preparing the per-row query failed after {query_error}: {error}"),
                };
                let client = &client;
                let statement = &statement;
                let results = join_all(ids.iter().map(|id| async move { client.query_opt(statement, &[id]).await })).await;
                for (index, result) in results.into_iter().enumerate() {
                    let expected = match result {
                        Ok(Some(row)) => postgres_verdict(row.get::<_, Option<&str>>(0)),
                        Ok(None) => "no row".to_owned(),
                        Err(_) => "error".to_owned(),
                    };
                    let actual = match &ours[index] {
                        Err(_) => "error".to_owned(),
                        other => verdict(other),
                    };
                    if expected != actual {
                        failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: Some(ids[index]), expected, actual });
                    }
                }
                continue;
            }
        }

        let accepted: BTreeSet<i32> = ids.iter().zip(&ours).filter(|(_, result)| matches!(result, Ok(Some(true)))).map(|(id, _)| *id).collect();
        match text_rows(&client, &format!("SELECT id FROM t WHERE {raw}")).await {
            Ok(rows) => {
                raw_checks += 1;
                let selected: BTreeSet<i32> = rows.iter().map(|row| row[0].as_deref().unwrap().parse().unwrap()).collect();
                if selected != accepted {
                    let differing = selected.symmetric_difference(&accepted).next().copied();
                    let expected = format!("clause as written selects row: {}", differing.is_some_and(|id| selected.contains(&id)));
                    failures.push(Failure { clause: clause.clone(), rendered: rendered.clone(), row_id: differing, expected, actual: "the rendered clause disagrees".into() });
                }
            }
            // In WHERE the planner may order AND arguments differently, so a row that errors
            // there may not error in the select list.
            Err(_) => raw_skipped += 1,
        }
    }

    let elapsed = started.elapsed();
    println!(
        "seed {seed:#x}: {cases} clauses over {} rows in {:.1} s; compiled {compiled}, rejected by both {rejected_by_both}, \
         rejected as outside the language {rejected_outside_language}, per-row checks {per_row_clauses}, \
         raw-text checks {raw_checks} (skipped {raw_skipped}); Filter::matches took {:.1} s",
        stored.len(),
        elapsed.as_secs_f64(),
        evaluation_time.as_secs_f64()
    );
    for (message, clause) in outside_examples.iter().take(10) {
        println!("  outside the language: {message}\n    e.g. {clause}");
    }

    failures.sort_by_key(|failure| (failure.clause.len(), failure.row_id));
    let mut printed_clauses = BTreeSet::new();
    for failure in &failures {
        if printed_clauses.len() == 10 {
            break;
        }
        if printed_clauses.insert(failure.clause.clone()) {
            println!(
                "disagreement: {}\n  rendered: {}\n  row {:?}: PostgreSQL {}, volt-filter {}",
                failure.clause, failure.rendered, failure.row_id, failure.expected, failure.actual
            );
        }
    }
    if let Some(smallest) = failures.first() {
        let row = smallest.row_id.and_then(|id| ids.iter().position(|candidate| *candidate == id)).map(|index| &stored[index]);
        let row_text = row.map(|row| {
            COLUMNS.iter().zip(row).map(|((name, ..), value)| format!("{name}={value:?}")).collect::<Vec<_>>().join(", ")
        });
        volt.stop().await;
        panic!(
            "{} disagreements with PostgreSQL (seed {seed:#x}, VOLT_FILTER_SEED={seed}).\nSmallest failing clause: {}\nRendered: {}\nRow: {}\nPostgreSQL: {}\nvolt-filter: {}",
            failures.len(),
            smallest.clause,
            smallest.rendered,
            row_text.unwrap_or_else(|| "(none)".to_owned()),
            smallest.expected,
            smallest.actual
        );
    }
    volt.stop().await;
}
