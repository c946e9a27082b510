//! Column types: generated columns, which Postgres 15 does not replicate, and the text of
//! every built-in type as clients receive it.

mod common;

use std::time::Duration;

use common::{follow_until, select_query, TestPostgres, TestVolt, TextRow};
use std::collections::BTreeMap;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Returns the status and the `columns` error messages of a shape request.
async fn columns_errors(volt: &TestVolt, query: &str) -> (u16, Vec<String>) {
    let response = volt.get(&format!("/v1/shape?offset=-1&{query}")).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error body");
    let messages = body["errors"]["columns"]
        .as_array()
        .map(|messages| messages.iter().map(|message| message.as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    (status, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_columns_rejected() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE sized (id int PRIMARY KEY, width int, height int,
                             area int GENERATED ALWAYS AS (width * height) STORED);
         INSERT INTO sized (id, width, height) VALUES (1, 2, 3);",
    )
    .await
    .unwrap();

    let (status, messages) = columns_errors(&volt, "table=sized&columns=id,area").await;
    assert_eq!(status, 400);
    assert_eq!(messages, vec!["The following columns are generated and cannot be included in the shape: area".to_owned()]);

    let (status, messages) = columns_errors(&volt, "table=sized").await;
    assert_eq!(status, 400);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("The following columns are generated and cannot be included in the shape: area"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("`columns`"), "no hint to pass columns: {}", messages[0]);
    assert!(messages[0].contains("id, width, height"), "hint lists the other columns: {}", messages[0]);

    // The other columns sync, live changes included.
    let mut client = volt.shape_with("sized", &[("columns", "id,width,height")]);
    client.sync().await;
    sql.batch_execute("INSERT INTO sized (id, width, height) VALUES (2, 4, 5); UPDATE sized SET width = 7 WHERE id = 1;")
        .await
        .unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 2 && c.rows_by("id")["1"]["width"].as_deref() == Some("7")).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, "SELECT id, width, height FROM sized", "id").await);
    volt.stop().await;
}

/// Database defaults unlike Volt's pinned session settings: a client must never see them.
const UNUSUAL_DEFAULTS: &str = "ALTER DATABASE postgres SET TimeZone = 'Pacific/Chatham';
     ALTER DATABASE postgres SET DateStyle = 'SQL, MDY';
     ALTER DATABASE postgres SET IntervalStyle = 'postgres_verbose';
     ALTER DATABASE postgres SET bytea_output = 'escape';
     ALTER DATABASE postgres SET extra_float_digits = -3;";

/// The settings Volt pins on its connections, under which the oracle prints values.
const PINNED_SETTINGS: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, DMY'; SET IntervalStyle = 'iso_8601';
     SET extra_float_digits = 1; SET bytea_output = 'hex';";

const TYPE_DEFINITIONS: &str = "CREATE TYPE mood AS ENUM ('happy', 'sad', 'with space');
     CREATE DOMAIN positive AS int CHECK (VALUE > 0);
     CREATE TYPE pair AS (number int, label text);";

/// Columns of the matrix table: name, type and SQL literals, one per row. A column with
/// fewer literals than the table has rows is NULL in the rest.
const COLUMNS: &[(&str, &str, &[&str])] = &[
    ("c_int2", "int2", &["0", "-32768", "32767"]),
    ("c_int4", "int4", &["-2147483648", "2147483647"]),
    ("c_int8", "int8", &["-9223372036854775808", "9223372036854775807"]),
    (
        "c_numeric",
        "numeric",
        &[
            "'123456789012345678901234567890.123456789012345678901234567890'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0.000001'",
            "'0.00'",
            "'1e-100'",
        ],
    ),
    ("c_numeric_scaled", "numeric(10, 3)", &["1.5", "-1234567.891"]),
    ("c_float4", "float4", &["'NaN'", "'Infinity'", "'-Infinity'", "'1.17549435e-38'", "'3.4028235e38'", "'-0'", "'0.1'"]),
    (
        "c_float8",
        "float8",
        &["'NaN'", "'Infinity'", "'-Infinity'", "'2.2250738585072014e-308'", "'1.7976931348623157e308'", "'-0'", "'0.1'"],
    ),
    ("c_bool", "bool", &["true", "false"]),
    (
        "c_text",
        "text",
        &[r"E'line1\nline2\r\n'", r#"E'quote '' " back\\slash'"#, "'ünïcödé 😀 中文'", "''", r"E'tab\there'", "'NULL'"],
    ),
    ("c_varchar", "varchar(5)", &["'abc'", "'abcde'", "''"]),
    ("c_char", "char(5)", &["'ab'", "'abcde'", "''"]),
    ("c_bytea", "bytea", &[r"'\x00ff10'", "''", "'hello'::bytea", r"'\x5c27'"]),
    ("c_date", "date", &["'infinity'", "'-infinity'", "'4713-01-01 BC'", "'2000-02-29'", "'5874897-12-31'", "'0001-01-01'"]),
    ("c_time", "time", &["'00:00'", "'23:59:59.999999'", "'24:00'"]),
    ("c_timetz", "timetz", &["'00:00+14'", "'23:59:59.999999-15:59'", "'12:34:56.789+05:45'"]),
    (
        "c_timestamp",
        "timestamp",
        &["'infinity'", "'-infinity'", "'4713-01-01 00:00 BC'", "'294276-12-31 23:59:59.999999'", "'2000-01-01 12:34:56.5'"],
    ),
    (
        "c_timestamptz",
        "timestamptz",
        &[
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 00:00+00 BC'",
            "'2000-01-01 12:34:56.5+13:45'",
            "'1890-01-01 00:00 Europe/Amsterdam'",
        ],
    ),
    (
        "c_interval",
        "interval",
        &["'1 year 2 months 3 days 04:05:06.789'", "'-1 day +02:00'", "'0'", "'-178000000 years'", "'1 microsecond'"],
    ),
    ("c_interval_fields", "interval day to second(2)", &["'3 days 04:05:06.789'"]),
    ("c_uuid", "uuid", &["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"]),
    (
        "c_json",
        "json",
        &[r#"'{"b": 1,  "a" : [1, 2.50, "x"] }'"#, r#"'  "spaces"  '"#, "'null'", r#"'{"a":1,"a":2}'"#, r#"'["\u00e9", "\n"]'"#],
    ),
    (
        "c_jsonb",
        "jsonb",
        &[r#"'{"b": 1,  "a" : [1, 2.50, "x"] }'"#, r#"'  "spaces"  '"#, "'null'", r#"'{"a":1,"a":2}'"#, r#"'["\u00e9", "\n"]'"#],
    ),
    ("c_inet", "inet", &["'192.168.0.1/24'", "'::1'", "'2001:db8::1/64'", "'10.0.0.1'"]),
    ("c_cidr", "cidr", &["'10.0.0.0/8'", "'2001:db8::/32'"]),
    ("c_macaddr", "macaddr", &["'08:00:2b:01:02:03'"]),
    ("c_money", "money", &["'12.34'", "'-1.5'", "'0'"]),
    ("c_bit", "bit(4)", &["B'1010'", "B'0000'"]),
    ("c_varbit", "varbit", &["B''", "B'101'"]),
    ("c_int_array", "int4[]", &["'{1,NULL,3}'", "'[2:3]={1,2}'", "'{}'", "'{{1,2},{3,4}}'", "'{{{1}}}'", "'[0:1][-1:-1]={{5},{6}}'"]),
    (
        "c_text_array",
        "text[]",
        &[r#"'{"a,b","c\"d","NULL",NULL,"","back\\slash"}'"#, r#"'{{"x y",z},{NULL,"}"}}'"#, r#"'{""}'"#],
    ),
    ("c_numeric_array", "numeric[]", &["'{1.50,NaN,Infinity}'"]),
    ("c_timestamptz_array", "timestamptz[]", &[r#"'{"2000-01-01 00:00+05",infinity,NULL}'"#]),
    ("c_mood", "mood", &["'happy'", "'with space'"]),
    ("c_mood_array", "mood[]", &[r#"'{happy,NULL,"with space"}'"#]),
    ("c_positive", "positive", &["5"]),
    ("c_pair", "pair", &[r#"'(1,"a b")'"#, "'(,)'", r#"'(2,"quo""te")'"#]),
    ("c_tsvector", "tsvector", &["'a fat cat'", "'''it''''s'':1A x'"]),
    ("c_point", "point", &["'(1.5,-2)'", "'(0.1,1e300)'"]),
];

fn matrix_rows() -> usize {
    COLUMNS.iter().map(|(_, _, values)| values.len()).max().unwrap_or(0)
}

/// Builds an INSERT of every matrix row, with ids from `first_id`.
fn insert_matrix(first_id: usize) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _, _)| *name).collect();
    let rows: Vec<String> = (0..matrix_rows())
        .map(|row| {
            let values: Vec<&str> = COLUMNS.iter().map(|(_, _, values)| values.get(row).copied().unwrap_or("NULL")).collect();
            format!("({}, 0, {})", first_id + row, values.join(", "))
        })
        .collect();
    format!("INSERT INTO matrix (id, marker, {}) VALUES {}", names.join(", "), rows.join(", "))
}

/// Compares a client's rows with the oracle's column by column, so a failure names the
/// column and both texts.
fn assert_rows_equal(stage: &str, received: &BTreeMap<String, TextRow>, expected: &BTreeMap<String, TextRow>) {
    assert_eq!(received.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{stage}: row ids");
    let mut mismatches = Vec::new();
    for (id, expected_row) in expected {
        for (column, expected_value) in expected_row {
            let received_value = received[id].get(column);
            if received_value != Some(expected_value) {
                mismatches.push(format!("row {id} {column}: received {received_value:?}, Postgres prints {expected_value:?}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{stage}:\n{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_matches_postgres_text() {
    let postgres = TestPostgres::start().await;
    let url = postgres.url();
    let (setup, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    setup.batch_execute(UNUSUAL_DEFAULTS).await.unwrap();
    drop(setup);

    let volt = TestVolt::start_with(2_000, |settings| settings.database_url = Some(url.clone())).await;
    let sql = volt.sql().await;
    let timezone: String = sql.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(timezone, "Pacific/Chatham", "the database defaults apply to new sessions");
    sql.batch_execute(TYPE_DEFINITIONS).await.unwrap();
    let definitions: Vec<String> = COLUMNS.iter().map(|(name, type_name, _)| format!("{name} {type_name}")).collect();
    sql.batch_execute(&format!("CREATE TABLE matrix (id int PRIMARY KEY, marker int NOT NULL, {})", definitions.join(", ")))
        .await
        .unwrap();
    sql.batch_execute(&insert_matrix(1)).await.unwrap();

    let oracle = volt.sql().await;
    oracle.batch_execute(PINNED_SETTINGS).await.unwrap();
    let rows = matrix_rows();

    // Both replica modes: `full` sends whole rows on update, `default` only the changes.
    let mut full = volt.shape_with("matrix", &[("replica", "full")]);
    let mut changes_only = volt.shape("matrix");
    full.sync().await;
    changes_only.sync().await;
    let expected = select_query(&oracle, "SELECT * FROM matrix", "id").await;
    assert_rows_equal("snapshot (full)", &full.rows_by("id"), &expected);
    assert_rows_equal("snapshot (default)", &changes_only.rows_by("id"), &expected);

    sql.batch_execute(&insert_matrix(rows + 1)).await.unwrap();
    follow_until(&mut full, WAIT, |c| c.rows.len() == 2 * rows).await;
    follow_until(&mut changes_only, WAIT, |c| c.rows.len() == 2 * rows).await;
    let expected = select_query(&oracle, "SELECT * FROM matrix", "id").await;
    assert_rows_equal("live insert (full)", &full.rows_by("id"), &expected);
    assert_rows_equal("live insert (default)", &changes_only.rows_by("id"), &expected);

    sql.batch_execute("UPDATE matrix SET marker = 1").await.unwrap();
    let updated = |c: &common::ShapeClient| c.rows.values().all(|row| row["marker"].as_deref() == Some("1"));
    follow_until(&mut full, WAIT, updated).await;
    follow_until(&mut changes_only, WAIT, updated).await;
    let expected = select_query(&oracle, "SELECT * FROM matrix", "id").await;
    assert_rows_equal("live update (full)", &full.rows_by("id"), &expected);
    assert_rows_equal("live update (default)", &changes_only.rows_by("id"), &expected);
    volt.stop().await;
}
