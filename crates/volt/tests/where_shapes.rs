//! Shapes filtered by WHERE clauses: snapshots, rows moving in and out, parameters, shape
//! identity, routing through the index, and clauses that must be rejected.

mod common;

use std::time::{Duration, Instant};

use common::{follow_until, select_query, ShapeClient, TestVolt};

const WAIT: Duration = Duration::from_secs(60);

async fn setup(volt: &TestVolt) -> tokio_postgres::Client {
    let sql = volt.sql().await;
    sql.batch_execute(
        "CREATE TABLE issues (id int PRIMARY KEY, project int, status text, title text);
         INSERT INTO issues SELECT g, g % 10, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'closed' END, 'Issue ' || g
           FROM generate_series(1, 200) g;",
    )
    .await
    .unwrap();
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_move_in_and_out_of_a_filtered_shape() {
    let volt = TestVolt::start(1_000).await;
    let sql = setup(&volt).await;
    let oracle = "SELECT * FROM issues WHERE project = 7";
    let mut client = volt.shape_with("issues", &[("where", "project = 7")]);
    client.sync().await;
    assert_eq!(client.rows_by("id"), select_query(&sql, oracle, "id").await);

    sql.batch_execute("INSERT INTO issues VALUES (1001, 7, 'open', 'in'), (1002, 8, 'open', 'out')").await.unwrap();
    sql.batch_execute("UPDATE issues SET project = 7 WHERE id = 8").await.unwrap(); // moves in
    sql.batch_execute("UPDATE issues SET project = 8 WHERE id = 17").await.unwrap(); // moves out
    sql.batch_execute("UPDATE issues SET title = 'renamed' WHERE id = 27").await.unwrap(); // stays
    sql.batch_execute("UPDATE issues SET title = 'unseen' WHERE id = 2").await.unwrap(); // never in
    sql.batch_execute("UPDATE issues SET id = 2007 WHERE id = 37").await.unwrap(); // key change inside
    sql.batch_execute("DELETE FROM issues WHERE id = 47").await.unwrap();
    sql.batch_execute("INSERT INTO issues VALUES (-1, 7, 'open', 'marker')").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, oracle, "id").await);

    let changes: Vec<_> = client.received.iter().filter(|m| m["headers"]["lsn"].is_string()).collect();
    let moved_in = changes.iter().find(|m| m["value"]["id"] == "8").expect("row 8 moved in");
    assert_eq!(moved_in["headers"]["operation"], "insert");
    assert_eq!(moved_in["value"]["title"], "Issue 8", "a row moving in arrives whole");
    let moved_out = changes.iter().find(|m| m["value"]["id"] == "17").expect("row 17 moved out");
    assert_eq!(moved_out["headers"]["operation"], "delete");
    assert!(changes.iter().all(|m| m["value"]["id"] != "2" && m["value"]["id"] != "1002"), "rows outside the shape leaked");
    assert_eq!(client.refetches, 0);
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_bind_typed_values() {
    let volt = TestVolt::start(1_000).await;
    let sql = setup(&volt).await;
    let mut client = volt.shape_with("issues", &[("where", "status = $1 AND project = $2"), ("params[1]", "open"), ("params[2]", "3")]);
    client.sync().await;
    let oracle = "SELECT * FROM issues WHERE status = 'open' AND project = 3";
    assert_eq!(client.rows_by("id"), select_query(&sql, oracle, "id").await);
    sql.batch_execute("UPDATE issues SET status = 'open' WHERE project = 3").await.unwrap();
    sql.batch_execute("INSERT INTO issues VALUES (-1, 3, 'open', 'marker')").await.unwrap();
    follow_until(&mut client, WAIT, |c| c.rows_by("id").contains_key("-1")).await;
    assert_eq!(client.rows_by("id"), select_query(&sql, oracle, "id").await);

    for (query, parameter) in [
        ("where=status%20%3D%20%241", "where"),
        ("where=status%20%3D%20%241&params%5Bx%5D=a", "params"),
        ("where=status%20%3D%20%241&params%5B2%5D=a", "params"),
    ] {
        let response = volt.get(&format!("/v1/shape?table=issues&offset=-1&{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["errors"][parameter].is_array(), "{query}: {body}");
    }
    volt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_clauses_share_a_shape() {
    let volt = TestVolt::start(1_000).await;
    let _sql = setup(&volt).await;
    let handle = |clause: &'static str| {
        let volt = &volt;
        async move {
            let response = volt.http.get(format!("{}/v1/shape", volt.base_url)).query(&[("table", "issues"), ("offset", "-1"), ("where", clause)]).send().await.unwrap();
            assert_eq!(response.status(), 200, "{clause}");
            response.headers()["electric-handle"].to_str().unwrap().to_owned()
        }
    };
    let seven = handle("project = 7").await;
    assert_eq!(handle("PROJECT=7").await, seven);
    assert_eq!(handle("\"project\" = 7").await, seven);
    assert_ne!(handle("project = 8").await, seven);
    assert_ne!(handle("project = 7 AND status = 'open'").await, seven);
    volt.stop().await;
}

/// Clauses outside the language are rejected with a 400 naming `where`, and Postgres never
/// runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_and_foreign_clauses_are_rejected() {
    let volt = TestVolt::start(1_000).await;
    let sql = setup(&volt).await;
    let clauses = [
        "1 = 1; DROP TABLE issues",
        "id = 1; DELETE FROM issues",
        "id = 1 /* */; DROP TABLE issues",
        "id = 1 -- ; DROP TABLE issues\n; DROP TABLE issues",
        "pg_sleep(5) IS NOT NULL",
        "id IN (SELECT id FROM issues)",
        "EXISTS (SELECT 1)",
        "1 + 1",
        "title",
        "now() > '2020-01-01'",
        "nope = 1",
        "project = 'seven'",
        "id = 1 UNION SELECT 1",
        "count(*) > 1",
        "id = 1)",
        "",
    ];
    for clause in clauses {
        let started = Instant::now();
        let response = volt.http.get(format!("{}/v1/shape", volt.base_url)).query(&[("table", "issues"), ("offset", "-1"), ("where", clause)]).send().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "{clause:?} took {:?}", started.elapsed());
        if clause.is_empty() {
            // An empty clause is no clause: the whole table.
            assert_eq!(response.status(), 200);
            continue;
        }
        assert_eq!(response.status(), 400, "{clause:?} must be rejected");
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["errors"]["where"][0].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{clause:?}: {body}");
    }
    let count: i64 = sql.query_one("SELECT count(*) FROM issues", &[]).await.unwrap().get(0);
    assert_eq!(count, 200, "the table must be untouched");
    volt.stop().await;
}

/// Many shapes pinned to one column's values are routed through the index; each still ends
/// equal to its `SELECT … WHERE`, next to a shape the index cannot serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_and_unindexed_shapes_stay_exact() {
    let volt = TestVolt::start(1_000).await;
    let sql = setup(&volt).await;
    let mut clients: Vec<(String, ShapeClient)> = Vec::new();
    for project in 0..10 {
        let clause = format!("project = {project}");
        let client = volt.shape_with("issues", &[("where", clause.as_str())]);
        clients.push((clause, client));
    }
    for (clause, client) in [("project IN (2, 3) AND status = 'open'", "in"), ("title ILIKE '%5%'", "ilike")].map(|(clause, _)| {
        (clause.to_owned(), volt.shape_with("issues", &[("where", clause)]))
    }) {
        clients.push((clause, client));
    }
    for (_, client) in &mut clients {
        client.sync().await;
    }
    sql.batch_execute(
        "UPDATE issues SET project = (project + 3) % 10 WHERE id % 4 = 0;
         UPDATE issues SET title = title || '5' WHERE id % 5 = 1;
         DELETE FROM issues WHERE id % 9 = 0;
         INSERT INTO issues SELECT g, g % 10, 'open', 'New ' || g FROM generate_series(300, 350) g;
         UPDATE issues SET id = id + 10000 WHERE id % 11 = 0;",
    )
    .await
    .unwrap();
    sql.batch_execute("INSERT INTO issues SELECT -g, g - 1, 'open', 'marker 5' FROM generate_series(1, 10) g").await.unwrap();
    for (clause, client) in &mut clients {
        let oracle = format!("SELECT * FROM issues WHERE {clause}");
        let expected = select_query(&sql, &oracle, "id").await;
        follow_until(client, WAIT, |c| c.rows_by("id") == expected).await;
        assert_eq!(client.refetches, 0, "{clause}");
    }
    volt.stop().await;
}
