//! Parsing, rejection, rendering and evaluation of WHERE clauses through the public API.
//! Expected values were checked against PostgreSQL 15.

use std::collections::BTreeMap;

use volt_filter::{compile, compile_with_options, ColumnSpec, CompileOptions, Filter};

fn column(name: &str, type_name: &str) -> ColumnSpec {
    ColumnSpec { name: name.to_owned(), type_name: type_name.to_owned(), is_array: false, is_enum: false, collation: None }
}

fn array_column(name: &str, type_name: &str) -> ColumnSpec {
    ColumnSpec { is_array: true, ..column(name, type_name) }
}

/// Builds the test table's columns. In order they are: id int8, name text, total numeric,
/// ratio float8, small int2, code bpchar, tags text[], scores int4[] and mood (an enum).
/// Then come at timestamptz, day date, span interval, label varchar, Mixed int4, doc jsonb,
/// active bool, clock time, stamp timestamp, key uuid, weight float4 and count int4.
fn columns() -> Vec<ColumnSpec> {
    vec![
        column("id", "int8"),
        column("name", "text"),
        column("total", "numeric"),
        column("ratio", "float8"),
        column("small", "int2"),
        column("code", "bpchar"),
        array_column("tags", "text"),
        array_column("scores", "int4"),
        ColumnSpec { is_enum: true, ..column("mood", "mood") },
        column("at", "timestamptz"),
        column("day", "date"),
        column("span", "interval"),
        column("label", "varchar"),
        column("Mixed", "int4"),
        column("doc", "jsonb"),
        column("active", "bool"),
        column("clock", "time"),
        column("stamp", "timestamp"),
        column("key", "uuid"),
        column("weight", "float4"),
        column("count", "int4"),
    ]
}

const COLUMN_COUNT: usize = 21;

fn no_params() -> BTreeMap<usize, String> {
    BTreeMap::new()
}

fn params(values: &[&str]) -> BTreeMap<usize, String> {
    values.iter().enumerate().map(|(index, value)| (index + 1, value.to_string())).collect()
}

fn filter(clause: &str) -> Filter {
    compile(clause, &no_params(), &columns()).unwrap_or_else(|error| panic!("{clause}: {error}"))
}

fn sql(clause: &str) -> String {
    filter(clause).to_sql()
}

fn rejection(clause: &str) -> String {
    match compile(clause, &no_params(), &columns()) {
        Ok(filter) => panic!("{clause} compiled to {}", filter.to_sql()),
        Err(error) => error.to_string(),
    }
}

fn assert_rejected(clause: &str, expected: &str) {
    let message = rejection(clause);
    assert!(message.contains(expected), "{clause}: expected a message containing {expected:?}, got {message:?}");
}

/// Evaluates `clause` for a row given as (column name, text) pairs; other columns are NULL.
fn evaluate(clause: &str, values: &[(&str, &str)]) -> Result<Option<bool>, String> {
    let columns = columns();
    let mut row: Vec<Option<&str>> = vec![None; COLUMN_COUNT];
    for (name, text) in values {
        let index = columns.iter().position(|column| column.name == *name).unwrap_or_else(|| panic!("no column {name}"));
        row[index] = Some(text);
    }
    filter(clause).matches(&row).map_err(|error| error.message)
}

// Parsing and rendering.

#[test]
fn identifiers_fold_and_quote() {
    assert_eq!(sql("ID = 5"), r#"("id" = '5'::int8)"#);
    assert_eq!(sql(r#""Mixed" = 5"#), r#"("Mixed" = '5'::int4)"#);
    assert_rejected("mixed = 5", r#"column "mixed" does not exist"#);
    assert_rejected(r#""ID" = 5"#, r#"column "ID" does not exist"#);
}

#[test]
fn unknown_column_is_named() {
    assert_rejected("nope = 1", r#"column "nope" does not exist"#);
}

#[test]
fn constants_render_with_casts() {
    assert_eq!(sql("total > 1.50"), r#"("total" > '1.50'::numeric)"#);
    assert_eq!(sql("name = 'it''s'"), r#"("name" = 'it''s'::text)"#);
    assert_eq!(sql("active = true"), r#"("active" = 't'::bool)"#);
    assert_eq!(sql("id = -9223372036854775808"), r#"("id" = '-9223372036854775808'::int8)"#);
    assert_eq!(sql("ratio > 1e300"), r#"("ratio" > '1e+300'::float8)"#);
    assert_eq!(sql("id IS NOT DISTINCT FROM NULL"), r#"("id" IS NOT DISTINCT FROM NULL::int8)"#);
    assert_eq!(sql("name = E'a\\nb'"), "(\"name\" = 'a\nb'::text)");
}

#[test]
fn string_literal_styles() {
    assert_eq!(sql("name = $$it's$$"), r#"("name" = 'it''s'::text)"#);
    assert_eq!(sql("name = U&'d\\0061t'"), r#"("name" = 'dat'::text)"#);
    assert_eq!(sql("name = 'a\\b'"), r#"("name" = 'a\b'::text)"#);
    assert_eq!(sql("code = N'ab'"), r#"("code" = 'ab'::bpchar)"#);
}

#[test]
fn typed_literals_share_canonical_form() {
    let forms = ["day = '2024-01-01'::date", "day = date '2024-01-01'", "day = CAST('2024-01-01' AS date)", "day = '2024-01-01'"];
    for form in forms {
        assert_eq!(filter(form).canonical(), r#"("day" = '2024-01-01'::date)"#, "{form}");
    }
    assert_eq!(sql("at > '2024-03-10 02:30:00-08'"), r#"("at" > '2024-03-10 10:30:00+00'::timestamptz)"#);
    assert_eq!(sql("span > interval '1 day 2 hours'"), r#"("span" > 'P1DT2H'::interval)"#);
}

#[test]
fn canonical_ignores_spelling() {
    let canonical = filter("id = 5 AND name = 'x'").canonical();
    assert_eq!(filter("  ID=5   and NAME = 'x' ").canonical(), canonical);
    assert_eq!(filter(r#""id" = '5' AND "name" = 'x'"#).canonical(), canonical);
    let with_params = compile("id = $1 AND name = $2", &params(&["5", "x"]), &columns()).unwrap();
    assert_eq!(with_params.canonical(), canonical);
    assert_ne!(filter("id = 6 AND name = 'x'").canonical(), canonical);
}

#[test]
fn parameters_take_type_from_context() {
    let bigint = compile("id = $1", &params(&["42"]), &columns()).unwrap();
    assert_eq!(bigint.to_sql(), r#"("id" = '42'::int8)"#);
    let array = compile("scores @> $1", &params(&["{1,2}"]), &columns()).unwrap();
    assert_eq!(array.to_sql(), r#"("scores" @> '{1,2}'::int4[])"#);
    let reused = compile("id = $1 OR count = $1", &params(&["7"]), &columns()).unwrap();
    assert_eq!(reused.to_sql(), r#"(("id" = '7'::int8) OR ("count" = '7'::int4))"#);
}

#[test]
fn missing_parameter_is_named() {
    let error = compile("id = $2", &params(&["1"]), &columns()).unwrap_err();
    assert_eq!(error.message, "parameter $2 was not provided");
    assert_eq!(error.location, Some(5));
}

#[test]
fn parameter_numbers_must_be_contiguous() {
    let mut gapped = BTreeMap::new();
    gapped.insert(1, "1".to_owned());
    gapped.insert(3, "3".to_owned());
    let error = compile("id = $1", &gapped, &columns()).unwrap_err();
    assert!(error.message.contains("$2 is missing"), "{error}");
}

#[test]
fn parameter_with_invalid_text_is_rejected() {
    let error = compile("id = $1", &params(&["abc"]), &columns()).unwrap_err();
    assert!(error.message.contains("invalid input syntax for type bigint"), "{error}");
}

#[test]
fn boolean_logic_renders_flat() {
    assert_eq!(sql("id = 1 AND (count = 2 AND active)"), r#"(("id" = '1'::int8) AND ("count" = '2'::int4) AND "active")"#);
    assert_eq!(sql("NOT active OR id > 1"), r#"((NOT "active") OR ("id" > '1'::int8))"#);
}

#[test]
fn precedence_follows_postgres() {
    // IS binds more loosely than =, NOT more loosely than comparison, AND before OR.
    assert_eq!(sql("id = 1 IS NULL"), r#"(("id" = '1'::int8) IS NULL)"#);
    assert_eq!(sql("NOT id = 1"), r#"(NOT ("id" = '1'::int8))"#);
    assert_eq!(sql("active OR id = 1 AND count = 2"), r#"("active" OR (("id" = '1'::int8) AND ("count" = '2'::int4)))"#);
    assert_eq!(sql("count + 2 * 3 = 7"), r#"(("count" + '6'::int4) = '7'::int4)"#);
    assert_eq!(sql("name || 'a' LIKE 'x%'"), r#"(("name" || 'a'::text) LIKE 'x%'::text)"#);
}

#[test]
fn in_lists_render() {
    assert_eq!(sql("id IN (1, 2, 3)"), r#"("id" IN ('1'::int8, '2'::int8, '3'::int8))"#);
    assert_eq!(sql("name NOT IN ('a', 'b')"), r#"("name" NOT IN ('a'::text, 'b'::text))"#);
    assert_eq!(sql("count IN (1, 2.5)"), r#"("count" IN ('1'::numeric, '2.5'::numeric))"#);
}

#[test]
fn between_expands() {
    assert_eq!(sql("count BETWEEN 1 AND 5"), r#"(("count" >= '1'::int4) AND ("count" <= '5'::int4))"#);
    assert_eq!(sql("count NOT BETWEEN 1 AND 5"), r#"(("count" < '1'::int4) OR ("count" > '5'::int4))"#);
    assert_eq!(
        sql("count BETWEEN SYMMETRIC 5 AND 1"),
        r#"((("count" >= '5'::int4) AND ("count" <= '1'::int4)) OR (("count" >= '1'::int4) AND ("count" <= '5'::int4)))"#
    );
    assert_eq!(sql("count BETWEEN ASYMMETRIC 1 AND 5"), sql("count BETWEEN 1 AND 5"));
    assert_eq!(sql("count >= 1 AND count <= 5"), sql("count BETWEEN 1 AND 5"));
}

#[test]
fn any_and_all_render() {
    assert_eq!(sql("id = ANY('{1,2}')"), r#"("id" = ANY ('{1,2}'::int8[]))"#);
    assert_eq!(sql("count <> ALL(scores)"), r#"("count" <> ALL ("scores"))"#);
    assert_eq!(sql("id = ANY(ARRAY[1, 2])"), r#"("id" = ANY ('{1,2}'::int4[]))"#);
}

#[test]
fn like_renders_escape() {
    assert_eq!(sql("name LIKE 'a!%%' ESCAPE '!'"), r#"("name" LIKE 'a!%%'::text ESCAPE '!'::text)"#);
    assert_eq!(sql("name NOT ILIKE 'A%'"), r#"("name" NOT ILIKE 'A%'::text)"#);
}

#[test]
fn tests_render() {
    assert_eq!(sql("active IS NOT TRUE"), r#"("active" IS NOT TRUE)"#);
    assert_eq!(sql("(id > 1) IS UNKNOWN"), r#"(("id" > '1'::int8) IS UNKNOWN)"#);
    assert_eq!(sql("name IS DISTINCT FROM label"), r#"("name" IS DISTINCT FROM "label")"#);
    assert_eq!(sql("doc IS NULL"), r#"("doc" IS NULL)"#);
}

#[test]
fn casts_render() {
    assert_eq!(sql("count::text = '5'"), r#"(CAST("count" AS text) = '5'::text)"#);
    assert_eq!(sql("CAST(total AS numeric(10,2)) > 1"), r#"(CAST("total" AS numeric(10,2)) > '1'::numeric)"#);
    assert_eq!(sql("name::char(3) = 'ab'"), r#"(CAST("name" AS bpchar(3)) = 'ab'::bpchar)"#);
    assert_eq!(sql("'{1,2}'::int[] @> scores"), r#"('{1,2}'::int4[] @> "scores")"#);
}

#[test]
fn constant_parts_fold() {
    assert_eq!(sql("count > 2 + 3"), r#"("count" > '5'::int4)"#);
    assert_eq!(sql("false AND 1/0 = 1"), "'f'::bool");
    assert_eq!(sql("id = 1 AND true"), r#"("id" = '1'::int8)"#);
    assert_eq!(sql("coalesce(NULL, 3) = count"), r#"('3'::int4 = "count")"#);
}

#[test]
fn enum_literals_stay_untyped() {
    assert_eq!(sql("mood = 'happy'"), r#"("mood" = 'happy')"#);
    assert_eq!(sql("mood IN ('happy', 'sad')"), r#"("mood" IN ('happy', 'sad'))"#);
}

#[test]
fn referenced_columns_are_sorted() {
    assert_eq!(filter("count = 1 OR id = 2 OR count = 3").referenced_columns(), &[0, 20]);
    assert!(filter("true").referenced_columns().is_empty());
}

// Rejections.

#[test]
fn rejects_unknown_function() {
    assert_rejected("foo(id) = 1", "function foo() is not supported");
}

#[test]
fn rejects_subqueries() {
    assert_rejected("id IN (SELECT 1)", "subqueries are not supported");
    assert_rejected("EXISTS (SELECT 1)", "subqueries are not supported");
    assert_rejected("id = (SELECT 1)", "subqueries are not supported");
    assert_rejected("id = ANY(SELECT 1)", "subqueries are not supported");
}

#[test]
fn rejects_second_statement() {
    assert_rejected("id = 1; DROP TABLE t", "only one expression is allowed");
    assert_eq!(compile("id = 1; DROP TABLE t", &no_params(), &columns()).unwrap_err().location, Some(6));
}

#[test]
fn rejects_statement_hidden_by_comments() {
    assert_rejected("id = 1 /* harmless */; DROP TABLE t", "only one expression is allowed");
    assert_rejected("id = 1 --\n; DROP TABLE t", "only one expression is allowed");
    assert_eq!(sql("id = 1 -- trailing comment"), r#"("id" = '1'::int8)"#);
}

#[test]
fn rejects_non_boolean_clause() {
    assert_rejected("1 + 1", "argument of WHERE must be type boolean, not type integer");
    assert_rejected("name", "argument of WHERE must be type boolean, not type text");
}

#[test]
fn rejects_aggregates() {
    assert_rejected("count(*) > 1", "aggregate functions are not allowed in WHERE");
    assert_rejected("sum(id) > 1", "aggregate functions are not allowed in WHERE");
    assert_rejected("max(DISTINCT id) > 1", "aggregate functions are not allowed in WHERE");
}

#[test]
fn rejects_window_functions() {
    assert_rejected("row_number() OVER () = 1", "window functions are not allowed in WHERE");
}

#[test]
fn rejects_non_deterministic_functions() {
    assert_rejected("at > now()", "function now() is not allowed");
    assert_rejected("at > now() - interval '1 day'", "function now() is not allowed");
    assert_rejected("at > CURRENT_TIMESTAMP", "current_timestamp");
    assert_rejected("random() < 0.5", "function random() is not allowed");
    assert_rejected("at > 'now'::timestamptz", "depends on the current time");
}

#[test]
fn rejects_unsupported_column_type_in_operation() {
    assert_rejected("doc = '{}'", r#"column "doc" has type jsonb"#);
    assert_rejected("doc::text = '{}'", r#"column "doc" has type jsonb"#);
    assert!(filter("doc IS NOT NULL").matches(&vec![None; COLUMN_COUNT]).is_ok());
}

#[test]
fn rejects_unsupported_types_in_casts() {
    assert_rejected("name::jsonb IS NULL", "type JSONB is not supported");
    assert_rejected("at::time with time zone IS NULL", "is not supported");
}

#[test]
fn rejects_text_ordering_under_other_collations() {
    let mut columns = columns();
    columns[1].collation = Some("en_US.utf8".to_owned());
    let ordering = compile("name < 'b'", &no_params(), &columns).unwrap_err();
    assert!(ordering.message.contains(r#"column "name" depends on its collation "en_US.utf8""#), "{ordering}");
    let case_mapping = compile("lower(name) = 'b'", &no_params(), &columns).unwrap_err();
    assert!(case_mapping.message.contains("lower()"), "{case_mapping}");
    assert!(compile("name ILIKE 'b%'", &no_params(), &columns).is_err());
    assert!(compile("name BETWEEN 'a' AND 'b'", &no_params(), &columns).is_err());
    assert!(compile("name = 'b'", &no_params(), &columns).is_ok());
    assert!(compile("name LIKE 'b%'", &no_params(), &columns).is_ok());
    columns[1].collation = Some("POSIX".to_owned());
    assert!(compile("name < 'b'", &no_params(), &columns).is_ok());
}

#[test]
fn rejects_constant_ordering_under_other_default_collation() {
    let options = CompileOptions { default_collation: "en_US.utf8".to_owned() };
    assert!(compile_with_options("name < 'b'", &no_params(), &columns(), &options).is_err());
    assert!(compile_with_options("name = 'b'", &no_params(), &columns(), &options).is_ok());
}

#[test]
fn rejects_enum_ordering() {
    assert_rejected("mood < 'happy'", "operator < on enum values is not supported");
}

#[test]
fn rejects_type_mismatches_like_postgres() {
    assert_rejected("id = 'abc'", "invalid input syntax for type bigint");
    assert_rejected("name > 5", "operator does not exist: text > integer");
    assert_rejected("scores @> ARRAY[1::int8]", "operator does not exist: integer[] @> bigint[]");
    assert_rejected("id LIKE '1%'", "operator does not exist: bigint ~~ unknown");
    assert_rejected("- '5' = 1", "operator is not unique");
}

#[test]
fn rejects_constant_errors_postgres_would_raise() {
    assert_rejected("id = 1/0", "division by zero");
    assert_rejected("count = 2147483647 + 1", "integer out of range");
    assert_rejected("day = date '2024-02-30'", "out of range");
}

#[test]
fn rejects_qualified_names_and_other_syntax() {
    assert_rejected("t.id = 1", "qualified column reference");
    assert_rejected("CASE WHEN id = 1 THEN true END", "CASE expressions are not supported");
    assert_rejected("name SIMILAR TO 'a%'", "SIMILAR TO is not supported");
    assert_rejected("name ~ 'a'", "operator ~ is not supported");
}

#[test]
fn syntax_errors_have_locations() {
    let error = compile("id = = 1", &no_params(), &columns()).unwrap_err();
    assert!(error.message.starts_with("syntax error"), "{error}");
    assert_eq!(error.location, Some(5));
    assert!(compile("", &no_params(), &columns()).is_err());
}

#[test]
fn rejects_deep_nesting() {
    let deep = format!("{}id = 1{}", "(".repeat(300), ")".repeat(300));
    assert!(compile(&deep, &no_params(), &columns()).unwrap_err().message.contains("nested"));
    let long_chain = format!("count = 0{}", " + 1".repeat(9_990));
    assert!(compile(&long_chain, &no_params(), &columns()).unwrap_err().message.contains("nested"));
    let too_long = format!("count = 0{}", " + 1".repeat(10_000));
    assert!(compile(&too_long, &no_params(), &columns()).unwrap_err().message.contains("too long"));
}

// Evaluation.

#[test]
fn three_valued_logic() {
    assert_eq!(evaluate("id = 1 AND name = 'x'", &[("id", "1")]), Ok(None));
    assert_eq!(evaluate("id = 2 AND name = 'x'", &[("id", "1")]), Ok(Some(false)));
    assert_eq!(evaluate("id = 1 OR name = 'x'", &[("id", "1")]), Ok(Some(true)));
    assert_eq!(evaluate("NOT (name = 'x')", &[]), Ok(None));
    assert_eq!(evaluate("(name = 'x') IS UNKNOWN", &[]), Ok(Some(true)));
    assert_eq!(evaluate("id NOT IN (1, NULL)", &[("id", "2")]), Ok(None));
    assert_eq!(evaluate("id IN (2, NULL)", &[("id", "2")]), Ok(Some(true)));
    assert_eq!(evaluate("name IS DISTINCT FROM NULL", &[]), Ok(Some(false)));
}

#[test]
fn integer_arithmetic_truncates_and_checks_overflow() {
    assert_eq!(evaluate("count / 2 = 3", &[("count", "7")]), Ok(Some(true)));
    assert_eq!(evaluate("count / 2 = -3", &[("count", "-7")]), Ok(Some(true)));
    assert_eq!(evaluate("count % 3 = -1", &[("count", "-7")]), Ok(Some(true)));
    assert_eq!(evaluate("count + 1 > 0", &[("count", "2147483647")]), Err("integer out of range".to_owned()));
    assert_eq!(evaluate("id * 2 > 0", &[("id", "9223372036854775807")]), Err("bigint out of range".to_owned()));
    assert_eq!(evaluate("count / 0 > 0", &[("count", "1")]), Err("division by zero".to_owned()));
    assert_eq!(evaluate("small + small > 0", &[("small", "32767")]), Err("smallint out of range".to_owned()));
    assert_eq!(evaluate("-count > 0", &[("count", "-2147483648")]), Err("integer out of range".to_owned()));
}

#[test]
fn numeric_is_exact() {
    assert_eq!(evaluate("total = 0.1 + 0.2", &[("total", "0.3")]), Ok(Some(true)));
    assert_eq!(
        evaluate("total > 123456789012345678901234567890.1", &[("total", "123456789012345678901234567890.12")]),
        Ok(Some(true))
    );
    assert_eq!(evaluate("total / 3 = 0.33333333333333333333", &[("total", "1")]), Ok(Some(true)));
    assert_eq!(evaluate("total = 'NaN'", &[("total", "NaN")]), Ok(Some(true)));
    assert_eq!(evaluate("total > 'Infinity'", &[("total", "NaN")]), Ok(Some(true)));
}

#[test]
fn float_special_values() {
    assert_eq!(evaluate("ratio = 'NaN'", &[("ratio", "NaN")]), Ok(Some(true)));
    assert_eq!(evaluate("ratio > 'Infinity'", &[("ratio", "NaN")]), Ok(Some(true)));
    assert_eq!(evaluate("ratio = 0", &[("ratio", "-0")]), Ok(Some(true)));
    assert_eq!(evaluate("ratio * 10 > 0", &[("ratio", "1e308")]), Err("value out of range: overflow".to_owned()));
    // real = integer compares as double precision, where 16777217 stays exact.
    assert_eq!(evaluate("weight = 16777217", &[("weight", "1.6777216e+07")]), Ok(Some(false)));
    assert_eq!(evaluate("weight = 16777216", &[("weight", "1.6777216e+07")]), Ok(Some(true)));
    assert_eq!(evaluate("ratio::int4 = 2", &[("ratio", "2.5")]), Ok(Some(true)));
}

#[test]
fn bpchar_ignores_trailing_spaces() {
    assert_eq!(evaluate("code = 'ab'", &[("code", "ab   ")]), Ok(Some(true)));
    assert_eq!(evaluate("length(code) = 2", &[("code", "ab   ")]), Ok(Some(true)));
    assert_eq!(evaluate("code LIKE 'ab'", &[("code", "ab   ")]), Ok(Some(false)));
    assert_eq!(evaluate("code::text = 'ab'", &[("code", "ab   ")]), Ok(Some(true)));
}

#[test]
fn text_compares_bytewise() {
    assert_eq!(evaluate("name < 'a'", &[("name", "B")]), Ok(Some(true)));
    assert_eq!(evaluate("name > 'z'", &[("name", "ä")]), Ok(Some(true)));
    assert_eq!(evaluate("lower(name) = 'Äb'", &[("name", "ÄB")]), Ok(Some(true)));
    assert_eq!(evaluate("name ILIKE 'ab%'", &[("name", "ABC")]), Ok(Some(true)));
}

#[test]
fn like_matches_lines_and_escapes() {
    assert_eq!(evaluate("name LIKE 'a%b'", &[("name", "a\nline\nb")]), Ok(Some(true)));
    assert_eq!(evaluate("name LIKE 'a_b'", &[("name", "a\nb")]), Ok(Some(true)));
    assert_eq!(evaluate("name LIKE '50!%' ESCAPE '!'", &[("name", "50%")]), Ok(Some(true)));
    assert_eq!(evaluate("name LIKE '50!%' ESCAPE '!'", &[("name", "500")]), Ok(Some(false)));
    assert_eq!(evaluate("name LIKE 'a\\_c'", &[("name", "abc")]), Ok(Some(false)));
    assert_eq!(evaluate("name NOT LIKE 'a%'", &[("name", "abc")]), Ok(Some(false)));
    assert!(evaluate("name LIKE 'x\\'", &[("name", "xy")]).is_err());
}

#[test]
fn date_and_time_arithmetic() {
    assert_eq!(evaluate("day + 1 = '2024-03-01'", &[("day", "2024-02-29")]), Ok(Some(true)));
    assert_eq!(evaluate("stamp + interval '1 mon' = '2024-02-29'", &[("stamp", "2024-01-31 00:00:00")]), Ok(Some(true)));
    assert_eq!(evaluate("stamp - '2024-01-01'::timestamp = interval '36 hours'", &[("stamp", "2024-01-02 12:00:00")]), Ok(Some(true)));
    assert_eq!(evaluate("at > '2024-01-01 00:00:00+02'", &[("at", "2023-12-31 23:00:00+00")]), Ok(Some(true)));
    assert_eq!(evaluate("clock + interval '13 hours' = '01:00'", &[("clock", "12:00:00")]), Ok(Some(true)));
    assert_eq!(evaluate("span = interval '30 days'", &[("span", "P1M")]), Ok(Some(true)));
    assert_eq!(evaluate("day < 'infinity'", &[("day", "2024-01-01")]), Ok(Some(true)));
    assert_eq!(evaluate("day - 1 < day", &[("day", "4714-11-24 BC")]), Err("date out of range".to_owned()));
    assert_eq!(evaluate("day - 1 < day", &[("day", "4714-11-25 BC")]), Ok(Some(true)));
}

#[test]
fn arrays_compare_and_contain() {
    assert_eq!(evaluate("scores @> ARRAY[1]", &[("scores", "{1,2}")]), Ok(Some(true)));
    assert_eq!(evaluate("scores @> '{NULL}'", &[("scores", "{1,NULL}")]), Ok(Some(false)));
    assert_eq!(evaluate("scores <@ ARRAY[1, 2, 3]", &[("scores", "{}")]), Ok(Some(true)));
    assert_eq!(evaluate("scores && ARRAY[2]", &[("scores", "{1,2}")]), Ok(Some(true)));
    assert_eq!(evaluate("scores = '{1,NULL}'", &[("scores", "{1,NULL}")]), Ok(Some(true)));
    assert_eq!(evaluate("scores = '{1,2}'", &[("scores", "[0:1]={1,2}")]), Ok(Some(false)));
    assert_eq!(evaluate("scores || 3 = '{1,3}'", &[("scores", "{1}")]), Ok(Some(true)));
    assert_eq!(evaluate("tags @> ARRAY['a b']", &[("tags", r#"{"a b",c}"#)]), Ok(Some(true)));
    assert_eq!(evaluate("count = ANY(scores)", &[("count", "3"), ("scores", "{1,NULL}")]), Ok(None));
    assert_eq!(evaluate("count = ANY('{}')", &[]), Ok(Some(false)));
    assert_eq!(evaluate("count > ALL('{}')", &[]), Ok(Some(true)));
}

#[test]
fn enum_equality_uses_labels() {
    assert_eq!(evaluate("mood = 'happy'", &[("mood", "happy")]), Ok(Some(true)));
    assert_eq!(evaluate("mood <> 'happy'", &[("mood", "sad")]), Ok(Some(true)));
}

#[test]
fn functions_evaluate() {
    assert_eq!(evaluate("upper(name) = 'ABC'", &[("name", "abc")]), Ok(Some(true)));
    assert_eq!(evaluate("length(name) = 3", &[("name", "äöü")]), Ok(Some(true)));
    assert_eq!(evaluate("coalesce(name, label, 'none') = 'none'", &[]), Ok(Some(true)));
    assert_eq!(evaluate("concat(name, count, active) = 'a5t'", &[("name", "a"), ("count", "5"), ("active", "t")]), Ok(Some(true)));
    assert_eq!(evaluate("greatest(count, 3) = 3", &[]), Ok(Some(true)));
    assert_eq!(evaluate("least(count, 3) = 1", &[("count", "1")]), Ok(Some(true)));
    assert_eq!(evaluate("abs(count) = 5", &[("count", "-5")]), Ok(Some(true)));
    assert_eq!(evaluate("abs(count) = 5", &[("count", "-2147483648")]), Err("integer out of range".to_owned()));
    assert_eq!(evaluate("trim(name) = 'x'", &[("name", "  x ")]), Ok(Some(true)));
    assert_eq!(evaluate("trim(leading 'x' from name) = 'yx'", &[("name", "xxyx")]), Ok(Some(true)));
    assert_eq!(evaluate("active::text = 'true'", &[("active", "t")]), Ok(Some(true)));
}

#[test]
fn cast_errors_are_per_row() {
    assert_eq!(evaluate("name::int4 = 5", &[("name", "5")]), Ok(Some(true)));
    assert!(evaluate("name::int4 = 5", &[("name", "five")]).unwrap_err().contains("invalid input syntax for type integer"));
}

#[test]
fn short_row_is_an_error() {
    assert!(filter("id = 1").matches(&[]).is_err());
}

// Equality index.

#[test]
fn equality_index_for_equality_terms() {
    assert_eq!(filter("id = 5").equality_index(), Some((0, vec!["5".to_owned()])));
    assert_eq!(filter("5 = id").equality_index(), Some((0, vec!["5".to_owned()])));
    assert_eq!(filter("name IN ('a', 'b') AND id > 1").equality_index(), Some((1, vec!["a".to_owned(), "b".to_owned()])));
    assert_eq!(filter("id > 1 AND label = 'x'").equality_index(), Some((12, vec!["x".to_owned()])));
    assert_eq!(filter("at = '2024-01-01 02:00+02'").equality_index(), Some((9, vec!["2024-01-01 00:00:00+00".to_owned()])));
    assert_eq!(filter("active = true").equality_index(), Some((15, vec!["t".to_owned()])));
    assert_eq!(filter("mood = 'happy'").equality_index(), Some((8, vec!["happy".to_owned()])));
    assert_eq!(filter("small = 100000").equality_index(), Some((4, vec!["100000".to_owned()])));
}

#[test]
fn no_equality_index_where_text_is_not_unique() {
    assert_eq!(filter("total = 1").equality_index(), None);
    assert_eq!(filter("ratio = 1").equality_index(), None);
    assert_eq!(filter("code = 'ab'").equality_index(), None);
    assert_eq!(filter("span = '1 day'").equality_index(), None);
    assert_eq!(filter("id = 1 OR id = 2").equality_index(), None);
    assert_eq!(filter("id > 1").equality_index(), None);
    assert_eq!(filter("count = 1.5").equality_index(), None);
}

#[test]
fn filter_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Filter>();
}

#[test]
fn stable_constant_parts_are_not_folded() {
    // text to date is stable in PostgreSQL, so the planner leaves it for execution and
    // the constant TRUE decides the OR without evaluating it.
    assert_eq!(sql("day >= 'a'::text::date OR true"), "'t'::bool");
    assert_eq!(evaluate("day >= 'a'::text::date", &[("day", "2024-01-01")]), Err("invalid input syntax for type date: \"a\"".to_owned()));
    assert_eq!(sql("concat('a', 1)::float8 > 1 OR true"), "'t'::bool");
    assert_eq!(sql("concat('a', 1) = 'a1'"), "(concat('a'::text, '1'::int4) = 'a1'::text)");
    assert_eq!(
        sql("at > '2024-01-01 00:00:00+00'::timestamptz + interval '1 day'"),
        r#"("at" > ('2024-01-01 00:00:00+00'::timestamptz + 'P1D'::interval))"#
    );
}

#[test]
fn deepest_accepted_clause_evaluates() {
    // 190 nested NOTs and additions stay within the nesting limit; evaluating them must not
    // exhaust a test thread's stack.
    let nots = format!("{}count + 1 > 0{}", "NOT (".repeat(95), ")".repeat(95));
    assert_eq!(filter(&nots).matches(&[Some("1"); COLUMN_COUNT]).map_err(|error| error.message), Ok(Some(false)));
    let sums = format!("count{} > 0", " + count".repeat(180));
    let row: Vec<Option<&str>> = (0..COLUMN_COUNT).map(|index| if index == 20 { Some("1") } else { None }).collect();
    assert_eq!(filter(&sums).matches(&row).map_err(|error| error.message), Ok(Some(true)));
}

#[test]
fn double_equals_is_rejected() {
    assert_rejected("id == 1", "operator does not exist: ==");
    let error = compile("id == 1", &no_params(), &columns()).unwrap_err();
    assert_eq!(error.location, Some(3));
}
