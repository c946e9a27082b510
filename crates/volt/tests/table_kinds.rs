//! Tables whose rows need more than a primary key lookup: tables without a primary key, and
//! partitioned tables.

mod common;

use std::time::Duration;

use common::{follow_until, select_query, select_rows, ShapeClient, TestVolt, TextRow};

const WAIT: Duration = Duration::from_secs(30);

fn sorted_rows(client: &ShapeClient) -> Vec<TextRow> {
    let mut rows: Vec<TextRow> = client.rows.values().cloned().collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_without_primary_key() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute("CREATE TABLE loose (a int, b text); INSERT INTO loose VALUES (1, 'x'), (2, NULL), (3, 'z');")
        .await
        .unwrap();
    let mut client = volt.shape("loose");
    client.sync().await;
    let expected = |rows: std::collections::BTreeMap<String, TextRow>| {
        let mut rows: Vec<TextRow> = rows.into_values().collect();
        rows.sort();
        rows
    };
    assert_eq!(sorted_rows(&client), expected(select_rows(&sql, "loose", "a").await));

    // Every column is part of the key, so an update changes the row's key.
    sql.batch_execute("INSERT INTO loose VALUES (4, 'w'); UPDATE loose SET b = 'y' WHERE a = 2; DELETE FROM loose WHERE a = 3;")
        .await
        .unwrap();
    follow_until(&mut client, WAIT, |c| {
        c.rows.len() == 3 && c.rows.values().any(|row| row["b"].as_deref() == Some("y"))
    })
    .await;
    assert_eq!(sorted_rows(&client), expected(select_rows(&sql, "loose", "a").await));
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_table_shape() {
    let volt = TestVolt::start(2_000).await;
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE sales (id int, region text, amount int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu');
         CREATE TABLE sales_us PARTITION OF sales FOR VALUES IN ('us');
         INSERT INTO sales VALUES (1, 'eu', 10), (2, 'us', 20);",
    )
    .await
    .unwrap();
    let mut client = volt.shape("sales");
    client.sync().await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "sales", "id").await);

    sql.batch_execute(
        "INSERT INTO sales VALUES (3, 'eu', 30), (4, 'us', 40);
         UPDATE sales SET amount = 21 WHERE id = 2;
         UPDATE sales SET region = 'us' WHERE id = 1;
         DELETE FROM sales WHERE id = 3;",
    )
    .await
    .unwrap();
    follow_until(&mut client, WAIT, |c| {
        let rows = c.rows_by("id");
        rows.len() == 3
            && rows.get("1").is_some_and(|row| row["region"].as_deref() == Some("us"))
            && rows.get("2").is_some_and(|row| row["amount"].as_deref() == Some("21"))
    })
    .await;
    assert_eq!(client.rows_by("id"), select_rows(&sql, "sales", "id").await);

    // A partition added later is part of the parent's shape too.
    sql.batch_execute("CREATE TABLE sales_ap PARTITION OF sales FOR VALUES IN ('ap'); INSERT INTO sales VALUES (5, 'ap', 50);")
        .await
        .unwrap();
    follow_until(&mut client, WAIT, |c| c.rows.len() == 4).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, "SELECT * FROM sales", "id").await);
    volt.stop().await;
}
