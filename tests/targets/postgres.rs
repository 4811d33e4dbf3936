//! The postgres pool against the real test server.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::*;
use opsctl::actions::{ActionError, ErrorView};
use opsctl::targets::postgres::{PgPool, QueryResult};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

fn pool(url: &str, size: usize) -> PgPool {
    init();
    PgPool::new("primary", url, size, None).expect("pool")
}

fn db_pool() -> PgPool {
    pool(&env("OPSCTL_TEST_DATABASE_URL"), 2)
}

async fn q(
    p: &PgPool,
    sql: &str,
    params: &[Value],
    mutating: bool,
) -> Result<QueryResult, ActionError> {
    p.query(sql, params, mutating, T).await
}

#[test]
fn types_are_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PgPool>();
    assert_send_sync::<Arc<PgPool>>();
    fn assert_send<T: Send>(_: &T) {}
    init();
    let p = PgPool::new("primary", "postgres://u:p@127.0.0.1:1/db", 1, None).expect("pool");
    let fut = p.query("select 1", &[], false, T);
    assert_send(&fut);
}

#[tokio::test]
async fn group_by_with_params_gives_typed_rows() {
    let p = db_pool();
    let t = unique("orders");
    q(
        &p,
        &format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, region text, amount numeric(12,2), paid bool, \
             created timestamptz, meta jsonb, ref uuid, tags text[])"
        ),
        &[],
        true,
    )
    .await
    .expect("create");
    q(
        &p,
        &format!(
            "INSERT INTO {t} VALUES \
             (1, 'eu', 10.25, true, '2024-03-01T10:00:00Z', '{{\"a\":1}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{x,y}}'), \
             (2, 'eu', 20.50, false, '2024-03-02T12:30:00.5Z', '{{\"a\":2}}', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '{{z}}'), \
             (3, 'us', 5.00, true, '2024-03-01T00:00:00Z', NULL, NULL, NULL), \
             (4, 'us', 0.50, true, '2024-03-05T00:00:00Z', '[1, 2]', NULL, '{{}}'), \
             (5, 'ap', 1.00, true, '2024-03-05T00:00:00Z', 'null', NULL, NULL)"
        ),
        &[],
        true,
    )
    .await
    .expect("insert");

    let sql = format!(
        "SELECT region, count(*) AS n, sum(amount) AS total, bool_and(paid) AS all_paid, \
                max(created) AS last, max(created) - min(created) AS span, \
                jsonb_agg(meta ORDER BY id) AS metas, min(ref::text)::uuid AS first_ref, \
                array_agg(id ORDER BY id) AS ids, NULL::text AS nothing, avg(amount) AS avg \
         FROM {t} WHERE amount > $1 AND region <> $2 AND paid = ANY($3) \
         GROUP BY region ORDER BY region"
    );
    let r = q(
        &p,
        &sql,
        &[json!(0.25), json!("ap"), json!([true, false])],
        false,
    )
    .await
    .expect("query");
    assert_eq!(r.row_count, 2);
    let eu = Value::Object(r.rows[0].clone());
    assert_eq!(
        eu,
        json!({
            "region": "eu", "n": 2, "total": 30.75, "all_paid": false,
            "last": "2024-03-02T12:30:00.5Z", "span": "1 day 02:30:00.5",
            "metas": [{"a": 1}, {"a": 2}], "first_ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "ids": [1, 2], "nothing": null, "avg": 15.375
        })
    );
    // column order is the SELECT order
    let keys: Vec<&String> = r.rows[0].keys().collect();
    assert_eq!(
        keys,
        [
            "region",
            "n",
            "total",
            "all_paid",
            "last",
            "span",
            "metas",
            "first_ref",
            "ids",
            "nothing",
            "avg"
        ]
    );
    let us = Value::Object(r.rows[1].clone());
    assert_eq!(us["total"], json!(5.5));
    assert_eq!(us["metas"], json!([null, [1, 2]]));
    assert_eq!(us["first_ref"], Value::Null);
    assert_eq!(us["span"], json!("4 days"));

    // params given as strings (templated values) work too
    let r = q(
        &p,
        &format!("SELECT id FROM {t} WHERE id = $1 AND amount = $2"),
        &[json!("2"), json!("20.5")],
        false,
    )
    .await
    .expect("string params");
    assert_eq!(r.rows.len(), 1);
    q(&p, &format!("DROP TABLE {t}"), &[], true)
        .await
        .expect("drop");
}

#[tokio::test]
async fn values_of_many_types() {
    let admin = pg_admin().await;
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS citext")
        .await
        .expect("citext");
    let p = db_pool();
    let sql = "SELECT 1::int2 AS i2, 9007199254740993::int8 AS i8, 1.5::float4 AS f4, 'NaN'::float8 AS nan, \
        '-Infinity'::float8 AS ninf, 12345678901234567890.5::numeric AS bignum, 'NaN'::numeric AS numnan, \
        0.1::numeric AS tenth, 'héllo'::varchar AS vc, 'ab'::char(4) AS bp, 'Mixed'::citext AS ci, \
        'x'::\"char\" AS ch, '2024-02-29'::date AS d, '13:14:15.25'::time AS tm, '13:14:15+05:30'::timetz AS tz, \
        '2024-02-29 13:14:15'::timestamp AS ts, 'infinity'::timestamptz AS tsinf, \
        '\\x00ff10'::bytea AS b, '10.1.2.3/24'::inet AS ip, '10.1.0.0/16'::cidr AS net, '::1'::inet AS ip6, \
        '08:00:2b:01:02:03'::macaddr AS mac, ARRAY[[1,2],[3,4]] AS grid, ARRAY['a', NULL]::text[] AS arr, \
        '{}'::int[] AS empty, 'pg_class'::regclass AS rc, 26::oid AS o, B'1011' AS bits, '16/B374D848'::pg_lsn AS lsn, \
        int4range(1, 10) AS r, ROW(1, 'a') AS rec, pg_sleep(0) AS v, '1.50'::money AS m, \
        '{\"k\": [1, {\"n\": null}]}'::json AS j, ARRAY['1 day'::interval] AS ivs";
    let r = q(&p, sql, &[], false).await.expect("query");
    let row = Value::Object(r.rows[0].clone());
    let expected = json!({
        "i2": 1, "i8": "9007199254740993".parse::<i64>().unwrap(), "f4": 1.5, "nan": "NaN", "ninf": "-Infinity",
        "bignum": "12345678901234567890.5", "numnan": "NaN", "tenth": 0.1, "vc": "héllo", "bp": "ab  ",
        "ci": "Mixed", "ch": "x", "d": "2024-02-29", "tm": "13:14:15.25", "tz": "13:14:15+05:30",
        "ts": "2024-02-29T13:14:15", "tsinf": "infinity", "b": "AP8Q", "ip": "10.1.2.3/24", "net": "10.1.0.0/16",
        "ip6": "::1", "mac": "08:00:2b:01:02:03", "grid": [[1, 2], [3, 4]], "arr": ["a", null], "empty": [],
        "rc": "pg_class", "o": 26, "bits": "1011", "lsn": "16/B374D848", "r": "[1,10)", "rec": [1, "a"], "v": null,
        "m": "$1.50", "j": {"k": [1, {"n": null}]}, "ivs": ["1 day"]
    });
    assert_eq!(row, expected);
}

/// Each expression selected as `v` and as `v::text`: the decoded value must say what the
/// server's own text says.
async fn value_and_text(p: &PgPool, exprs: &[&str]) -> Vec<(String, Value, String)> {
    let sql = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("({e}) AS v{i}, ({e})::text AS t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let r = q(p, &format!("SELECT {sql}"), &[], false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = &r.rows[0];
    exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let text = row[&format!("t{i}")]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (e.to_string(), row[&format!("v{i}")].clone(), text)
        })
        .collect()
}

#[tokio::test]
async fn catalog_money_text_search_geometry_and_multiranges_read_as_the_server_prints_them() {
    let admin = pg_admin().await;
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS hstore")
        .await
        .expect("hstore");
    let p = db_pool();
    let exprs = [
        "'pg_class'::regclass",
        "'pg_catalog.pg_locks'::regclass",
        "'information_schema.tables'::regclass",
        "0::regclass",
        "999999999::oid::regclass",
        "'int4'::regtype",
        "'character varying(10)'::regtype",
        "'now'::regproc",
        "'sum(int4)'::regprocedure",
        "'+(int4,int4)'::regoperator",
        "'||/'::regoper",
        "'pg_catalog'::regnamespace",
        "'english'::regconfig",
        "'simple'::regdictionary",
        "current_user::regrole",
        "'\"C\"'::regcollation",
        "'1234.56'::money",
        "'-1234567.891'::money",
        "'0'::money",
        "to_tsvector('english', 'The quick brown foxes jumped over the lazy dogs')",
        "$$a:1A fat:2B,4C cat:5D 'it''s':7$$::tsvector",
        "''::tsvector",
        "to_tsquery('english', 'fat & (rat | !cats) <-> dog:*')",
        "$$'it''s' & a:*AB$$::tsquery",
        "point(1.5, -2)",
        "point(1e300, 0.1)",
        "'{1,-1,0}'::line",
        "'[(0,0),(1,1.25)]'::lseg",
        "box(point(0,0), point(2,3))",
        "'[(0,0),(1,1),(2,0)]'::path",
        "'((0,0),(1,1),(2,0))'::path",
        "'((0,0),(1,1),(2,0))'::polygon",
        "'<(1,2),3.5>'::circle",
        "'{[1,3), [5,7)}'::int4multirange",
        "'{}'::int4multirange",
        "'{[2024-01-01,2024-02-01), [2024-03-01,)}'::datemultirange",
        "'{[1.5,2.5]}'::nummultirange",
    ];
    for (expr, v, text) in value_and_text(&p, &exprs).await {
        assert_eq!(v, json!(text), "{expr}");
    }
    // The usual lock query (repeated relations, batched once), reg* in arrays and records.
    let r = q(
        &p,
        "SELECT l.relation::regclass AS rel, (l.relation::regclass, 1) AS rec, \
         ARRAY['pg_class'::regclass, 'pg_type'] AS arr FROM pg_locks l \
         CROSS JOIN generate_series(1, 3) WHERE l.relation = 'pg_locks'::regclass",
        &[],
        false,
    )
    .await
    .expect("lock query");
    assert!(!r.rows.is_empty());
    for row in &r.rows {
        assert_eq!(row["rel"], json!("pg_locks"));
        assert_eq!(row["rec"], json!(["pg_locks", 1]));
        assert_eq!(row["arr"], json!(["pg_class", "pg_type"]));
    }

    // A type the server will not take back (pg_node_tree) costs only its own text;
    // anyarray (pg_stats) is an array of its element type.
    let t = unique("stats");
    admin
        .batch_execute(&format!(
            "CREATE TABLE {t} AS SELECT (g % 3)::int AS k FROM generate_series(1, 300) g; \
             ANALYZE {t}; GRANT SELECT ON {t} TO opsctl_test"
        ))
        .await
        .expect("analyzed table");
    let r = q(
        &p,
        &format!(
            "SELECT 'pg_class'::regclass AS rc, (SELECT ev_action FROM pg_rewrite LIMIT 1) AS tree, \
             (SELECT most_common_vals FROM pg_stats WHERE tablename = '{t}' AND attname = 'k') AS mcv"
        ),
        &[],
        false,
    )
    .await
    .expect("mixed");
    assert_eq!(r.rows[0]["rc"], json!("pg_class"));
    assert!(
        r.rows[0]["tree"]
            .as_str()
            .is_some_and(|s| s.starts_with("({QUERY")),
        "{}",
        r.rows[0]["tree"]
    );
    let mut mcv = r.rows[0]["mcv"].as_array().cloned().unwrap_or_default();
    mcv.sort_by_key(|v| v.as_i64());
    assert_eq!(mcv, vec![json!(0), json!(1), json!(2)]);
    admin
        .batch_execute(&format!("DROP TABLE {t}"))
        .await
        .expect("drop");

    let r = q(
        &p,
        r#"SELECT 'a=>1, b=>NULL, "c d"=>"x\"y"'::hstore AS h, ''::hstore AS e"#,
        &[],
        false,
    )
    .await
    .expect("hstore");
    assert_eq!(r.rows[0]["h"], json!({"a": "1", "b": null, "c d": "x\"y"}));
    assert_eq!(r.rows[0]["e"], json!({}));
}

#[tokio::test]
async fn json_numbers_float4_and_composites_keep_their_meaning() {
    let admin = pg_admin().await;
    let ty = unique("pair");
    admin
        .batch_execute(&format!(
            "CREATE TYPE {ty} AS (name text, score float4, at_rel regclass); \
             GRANT USAGE ON TYPE {ty} TO opsctl_test"
        ))
        .await
        .expect("composite type");
    let p = db_pool();
    let doc = r#"{"big": 12345678901234567890123456789, "huge": 1e400, "small": 0.1, "int": -42, "u": 18446744073709551615, "exp": 1.5e3, "precise": 0.10000000000000000001, "s": "\u00e9\"", "n": [null, true]}"#;
    let r = q(
        &p,
        &format!(
            "SELECT '{doc}'::jsonb AS b, '{doc}'::json AS j, '1e400'::jsonb AS top, \
             0.1::float4 AS f, 3.4028235e38::float4 AS fmax, 1e-45::float4 AS ftiny, \
             ROW('x', 0.1, 'pg_class')::{ty} AS c, ARRAY[ROW('y', 2.5, NULL)::{ty}] AS cs, \
             ROW(1, 'a') AS anon"
        ),
        &[],
        false,
    )
    .await
    .expect("query");
    let row = &r.rows[0];
    let thousand_digits = format!("1{}", "0".repeat(400));
    for (key, huge) in [("b", thousand_digits.as_str()), ("j", "1e400")] {
        let mut got = row[key].clone();
        // jsonb normalises 1.5e3 to 1500; both are the same number.
        if let Some(e) = got.get_mut("exp") {
            *e = json!(e.as_f64());
        }
        assert_eq!(
            got,
            json!({"big": "12345678901234567890123456789", "huge": huge, "small": 0.1, "int": -42,
                "u": 18446744073709551615u64, "exp": 1500.0, "precise": "0.10000000000000000001",
                "s": "é\"", "n": [null, true]}),
            "{key}"
        );
    }
    assert_eq!(row["top"], json!(thousand_digits));
    assert_eq!(row["f"], json!(0.1));
    assert_eq!(row["fmax"], json!(3.4028235e38));
    assert_eq!(row["ftiny"], json!(1e-45));
    assert_eq!(
        row["c"],
        json!({"name": "x", "score": 0.1, "at_rel": "pg_class"})
    );
    assert_eq!(
        row["cs"],
        json!([{"name": "y", "score": 2.5, "at_rel": null}])
    );
    assert_eq!(row["anon"], json!([1, "a"]));
    // float4 against the server's own text.
    let floats = [
        "0.1::float4",
        "1.1::float4",
        "-2.5e-7::float4",
        "123456.7::float4",
        "1e20::float4",
    ];
    for (expr, v, text) in value_and_text(&p, &floats).await {
        let server: f64 = text.parse().expect("float4 text");
        assert_eq!(v.as_f64(), Some(server), "{expr}: {text}");
    }
    // A table's row type, and composites and enums inside anonymous records (their types
    // are not built in): objects by attribute name, and the server's text inside records.
    let t = unique("rowtype");
    let mood = unique("mood");
    admin
        .batch_execute(&format!(
            "CREATE TYPE {mood} AS ENUM ('ok', 'sad'); \
             CREATE TABLE {t} (id int, label text, m {mood}); INSERT INTO {t} VALUES (1, 'a b', 'sad'); \
             GRANT SELECT ON {t} TO opsctl_test"
        ))
        .await
        .expect("table");
    let r = q(
        &p,
        &format!("SELECT r AS whole, (r, r.m, 'ok'::{mood}) AS nested FROM {t} r"),
        &[],
        false,
    )
    .await
    .expect("row types");
    let row = &r.rows[0];
    assert_eq!(row["whole"], json!({"id": 1, "label": "a b", "m": "sad"}));
    assert_eq!(row["nested"], json!(["(1,\"a b\",sad)", "sad", "ok"]));
    admin
        .batch_execute(&format!("DROP TABLE {t}; DROP TYPE {mood}"))
        .await
        .expect("drop");
    admin
        .batch_execute(&format!("DROP TYPE {ty}"))
        .await
        .expect("drop type");
}

#[tokio::test]
async fn interval_and_numeric_match_server_text() {
    let p = db_pool();
    let r = q(
        &p,
        "SELECT i AS v, i::text AS t FROM (VALUES (interval '0'), ('1 day 2 hours 3 minutes 4.5 seconds'), \
         ('5 minutes'), ('3 mons 2 days'), ('-1 second'), ('1 year 2 mons'), ('-1 days +2 hours'), \
         ('1 day -2 hours'), ('-1 year -2 mons +3 days -00:00:00.000001'), ('100 hours'), ('1 mon -1 day'), \
         ('-7 mons'), ('0.000001 seconds'), ('2 years 1 day')) AS x(i)",
        &[],
        false,
    )
    .await
    .expect("intervals");
    for row in &r.rows {
        assert_eq!(row["v"], row["t"], "interval rendering");
    }
    let r = q(
        &p,
        "SELECT n AS v, n::text AS t FROM (VALUES (0::numeric), (1.10), (-0.5), (123456789.123456789), \
         (9007199254740992), (9007199254740993), (-9007199254740992), (0.000000001), (1e-20), (12345.6789), \
         (100.000), (-3.14159), (1e30), ('NaN')) AS x(n)",
        &[],
        false,
    )
    .await
    .expect("numerics");
    for row in &r.rows {
        let text = row["t"].as_str().expect("text");
        match &row["v"] {
            Value::String(s) => assert_eq!(s, text),
            Value::Number(n) => {
                let server: f64 = text.parse().expect("numeric text");
                assert_eq!(n.as_f64(), Some(server), "{text}");
            }
            other => panic!("numeric as {other}"),
        }
    }
    // exactness: large/precise ones are strings
    let v: Vec<&Value> = r.rows.iter().map(|r| &r["v"]).collect();
    assert_eq!(v[3], &json!("123456789.123456789"));
    assert_eq!(v[4], &json!(9007199254740992_i64));
    assert_eq!(v[5], &json!("9007199254740993"));
    assert_eq!(v[10], &json!(100));
}

#[tokio::test]
async fn read_only_rejects_delete_and_mutating_commits() {
    let p = db_pool();
    let t = unique("victims");
    q(&p, &format!("CREATE TABLE {t} (id int)"), &[], true)
        .await
        .expect("create");
    let r = q(
        &p,
        &format!("INSERT INTO {t} SELECT generate_series(1, 5)"),
        &[],
        true,
    )
    .await
    .expect("insert");
    assert_eq!(r.row_count, 5);

    let err = q(
        &p,
        &format!("DELETE FROM {t} WHERE id > $1"),
        &[json!(2)],
        false,
    )
    .await
    .expect_err("read-only");
    match &err.view() {
        ErrorView::Failed(msg) => {
            assert!(msg.starts_with("postgres primary: "), "{msg}");
            assert!(
                msg.contains("cannot execute DELETE in a read-only transaction"),
                "{msg}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let n = q(&p, &format!("SELECT count(*) AS n FROM {t}"), &[], false)
        .await
        .expect("count");
    assert_eq!(n.rows[0]["n"], json!(5), "table untouched");

    let r = q(
        &p,
        &format!("DELETE FROM {t} WHERE id > $1"),
        &[json!(2)],
        true,
    )
    .await
    .expect("mutating delete");
    assert_eq!(r.row_count, 3);
    assert!(r.rows.is_empty());
    let n = q(&p, &format!("SELECT count(*) AS n FROM {t}"), &[], false)
        .await
        .expect("count");
    assert_eq!(n.rows[0]["n"], json!(2), "committed");

    // RETURNING: rows come back and count
    let r = q(
        &p,
        &format!("UPDATE {t} SET id = id * 10 RETURNING id"),
        &[],
        true,
    )
    .await
    .expect("returning");
    assert_eq!(r.row_count, 2);
    assert_eq!(r.rows.len(), 2);
    q(&p, &format!("DROP TABLE {t}"), &[], true)
        .await
        .expect("drop");
}

#[tokio::test]
async fn bad_params_and_sql_errors() {
    let p = db_pool();
    let err = q(
        &p,
        "SELECT $1::int + $2::int AS s",
        &[json!(1), json!("abc")],
        false,
    )
    .await
    .expect_err("bad param");
    match err.view() {
        ErrorView::InvalidArgs(msg) => {
            assert_eq!(
                msg,
                "postgres primary: param $2: expected an integer, got \"abc\""
            )
        }
        other => panic!("{other:?}"),
    }
    let err = q(&p, "SELECT $1::int AS s", &[json!(1), json!(2)], false)
        .await
        .expect_err("count");
    assert!(
        matches!(err.view(), ErrorView::InvalidArgs(m) if m.contains("takes 1 parameter ($1) but 2 were given")),
        "{err:?}"
    );
    let err = q(&p, "SELECT * FROM no_such_table_xyz", &[], false)
        .await
        .expect_err("missing");
    match err.view() {
        ErrorView::Failed(msg) => {
            assert_eq!(
                msg,
                "postgres primary: ERROR 42P01: relation \"no_such_table_xyz\" does not exist"
            )
        }
        other => panic!("{other:?}"),
    }
    let err = q(&p, "SELEC 1", &[], false).await.expect_err("syntax");
    assert!(
        matches!(err.view(), ErrorView::Failed(m) if m.contains("42601")),
        "{err:?}"
    );
    // the pool still works after errors (connections were returned clean)
    let r = q(
        &p,
        "SELECT $1::text AS s, $2::jsonb AS j, $3::timestamptz AS t",
        &[
            json!("x"),
            json!({"a": [1]}),
            json!("2024-01-01T00:00:00+02:00"),
        ],
        false,
    )
    .await
    .expect("ok");
    assert_eq!(
        Value::Object(r.rows[0].clone()),
        json!({"s": "x", "j": {"a": [1]}, "t": "2023-12-31T22:00:00Z"})
    );
}

#[tokio::test]
async fn statement_timeout() {
    let p = db_pool();
    let start = Instant::now();
    let err = p
        .query("SELECT pg_sleep(10)", &[], false, Duration::from_secs(2))
        .await
        .expect_err("timeout");
    // Ends within its timeout (give or take a loaded machine), not after the sleep.
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    match err.view() {
        ErrorView::Failed(msg) => assert!(
            msg.contains("canceling statement due to statement timeout"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    q(&p, "SELECT 1 AS one", &[], false)
        .await
        .expect("pool usable");
}

#[tokio::test]
async fn wrong_password_is_auth_without_the_password() {
    init();
    let secret = "definitely-wrong-secret-42";
    let url = with_password(&env("OPSCTL_TEST_DATABASE_URL"), secret);
    let p = PgPool::new("primary", &url, 1, None).expect("pool");
    let err = q(&p, "SELECT 1", &[], false).await.expect_err("auth");
    match err.view() {
        ErrorView::Auth(msg) => {
            assert_eq!(
                msg,
                "postgres primary: password authentication failed for user \"opsctl_test\""
            );
            assert!(!msg.contains(secret));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_port_is_unreachable_fast() {
    let port = closed_port();
    let url = with_hostport(
        &env("OPSCTL_TEST_DATABASE_URL"),
        &format!("127.0.0.1:{port}"),
    );
    let p = pool(&url, 1);
    let start = Instant::now();
    let err = q(&p, "SELECT 1", &[], false).await.expect_err("refused");
    assert!(start.elapsed() < Duration::from_secs(2));
    match err.view() {
        ErrorView::Unreachable(msg) => {
            assert_eq!(
                msg,
                format!("postgres primary: cannot connect to 127.0.0.1:{port}: connection refused")
            );
            assert!(!msg.contains("opsctl-test-pw"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_host_and_missing_database() {
    let url = with_hostport(
        &env("OPSCTL_TEST_DATABASE_URL"),
        "no-such-host.invalid:5432",
    );
    let err = q(&pool(&url, 1), "SELECT 1", &[], false)
        .await
        .expect_err("dns");
    match err.view() {
        ErrorView::Unreachable(msg) => {
            assert!(
                msg.starts_with("postgres primary: cannot connect to no-such-host.invalid:5432: "),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    let base = env("OPSCTL_TEST_DATABASE_URL");
    let url = format!("{}/nope_xyz", &base[..base.rfind('/').expect("path")]);
    let err = q(&pool(&url, 1), "SELECT 1", &[], false)
        .await
        .expect_err("db");
    match err.view() {
        ErrorView::Failed(msg) => assert_eq!(
            msg,
            "postgres primary: database \"nope_xyz\" does not exist"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalid_urls_are_config_errors() {
    init();
    for url in [
        "postgres://u:pw-secret-1@h/db?sslmode=sometimes",
        "postgres://u:pw-secret-1@h/db?bogus_option=1",
        "postgres://u:pw-secret-1@h/db?sslcert=/x.pem",
    ] {
        match view(&PgPool::new("primary", url, 1, None)) {
            Err(ErrorView::Config(msg)) => {
                assert!(msg.starts_with("postgres primary: "), "{msg}");
                assert!(!msg.contains("pw-secret-1"), "{msg}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    let missing = std::path::Path::new("/nonexistent/ca.pem");
    let r = PgPool::new(
        "primary",
        "postgres://h/db?sslmode=verify-full",
        1,
        Some(missing),
    );
    assert!(
        matches!(view(&r), Err(ErrorView::Config(m)) if m.contains("cannot read CA file /nonexistent/ca.pem")),
        "{r:?}"
    );
}

/// Dropping a call mid-query cancels the query on the server and discards the connection.
#[tokio::test]
async fn dropped_query_is_cancelled() {
    let app = unique("opsctl_cancel");
    let url = with_param(
        &env("OPSCTL_TEST_DATABASE_URL"),
        &format!("application_name={app}"),
    );
    let p = pool(&url, 1);
    let admin = pg_admin().await;
    let r = tokio::time::timeout(
        Duration::from_millis(700),
        p.query("SELECT pg_sleep(30)", &[], false, Duration::from_secs(60)),
    )
    .await;
    assert!(r.is_err(), "should have been cut short");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
                &[&app],
            )
            .await
            .expect("poll");
        if row.get::<_, i64>(0) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "query still running on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the permit came back and a new connection works
    let r = q(&p, "SELECT 2 AS two", &[], false)
        .await
        .expect("after cancel");
    assert_eq!(r.rows[0]["two"], json!(2));
}

/// The server going away mid-query → Unreachable; the pool recovers with a new connection.
#[tokio::test]
async fn server_going_away_is_unreachable() {
    let app = unique("opsctl_kill");
    let url = with_param(
        &env("OPSCTL_TEST_DATABASE_URL"),
        &format!("application_name={app}"),
    );
    let p = Arc::new(pool(&url, 1));
    let admin = pg_admin().await;
    let task = {
        let p = p.clone();
        tokio::spawn(async move {
            p.query("SELECT pg_sleep(10)", &[], false, Duration::from_secs(30))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
                &[&app],
            )
            .await
            .expect("terminate");
        if row.get::<_, i64>(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "query never showed up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = task.await.expect("join").expect_err("terminated");
    match err.view() {
        ErrorView::Unreachable(msg) => assert!(
            msg.starts_with("postgres primary: connection closed: "),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    q(&p, "SELECT 1 AS one", &[], false)
        .await
        .expect("pool recovers");
}

async fn ssl_in_use(p: &PgPool) -> Value {
    let r = q(
        p,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
        false,
    )
    .await
    .expect("pg_stat_ssl");
    r.rows[0]["ssl"].clone()
}

#[tokio::test]
async fn tls_modes() {
    let admin = pg_admin().await;
    let ssl: String = admin.query_one("SHOW ssl", &[]).await.expect("show").get(0);
    assert_eq!(
        ssl, "on",
        "the test server must have ssl on (Debian's default, snakeoil certificate)"
    );
    let base = env("OPSCTL_TEST_DATABASE_URL");
    let snakeoil = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");

    assert_eq!(
        ssl_in_use(&pool(&base, 1)).await,
        json!(true),
        "prefer (default) uses TLS"
    );
    assert_eq!(
        ssl_in_use(&pool(&with_param(&base, "sslmode=disable"), 1)).await,
        json!(false)
    );
    assert_eq!(
        ssl_in_use(&pool(&with_param(&base, "sslmode=require"), 1)).await,
        json!(true)
    );

    // verify-full checks the name: the certificate names localhost, not 127.0.0.1
    let p = PgPool::new(
        "primary",
        &with_param(&base, "sslmode=verify-full"),
        1,
        Some(snakeoil),
    )
    .expect("pool");
    match q(&p, "SELECT 1", &[], false)
        .await
        .expect_err("name mismatch")
        .view()
    {
        ErrorView::Unreachable(msg) => {
            assert!(
                msg.starts_with("postgres primary: TLS handshake with 127.0.0.1:"),
                "{msg}"
            );
            assert!(msg.contains("not valid for name"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // verify-ca with a CA file trusts only that file: another CA is refused
    let other_ca = "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt";
    let p = pool(
        &with_param(&base, &format!("sslmode=verify-ca&sslrootcert={other_ca}")),
        1,
    );
    match q(&p, "SELECT 1", &[], false)
        .await
        .expect_err("unknown issuer")
        .view()
    {
        ErrorView::Unreachable(msg) => assert!(
            msg.contains("UnknownIssuer") || msg.contains("issuer"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    // require + a CA file behaves as verify-ca (libpq)
    let p = PgPool::new(
        "primary",
        &with_param(&base, "sslmode=require"),
        1,
        Some(std::path::Path::new(other_ca)),
    )
    .expect("pool");
    assert!(matches!(
        view(&q(&p, "SELECT 1", &[], false).await),
        Err(ErrorView::Unreachable(_))
    ));
    // verify-ca does not check the name
    let url = with_param(
        &base,
        &format!("sslmode=verify-ca&sslrootcert={}", snakeoil.display()),
    );
    assert_eq!(ssl_in_use(&pool(&url, 1)).await, json!(true));
    // verify-full by the certificate's name
    let port = base
        .split('@')
        .nth(1)
        .and_then(|h| h.split(['/', '?']).next())
        .and_then(|h| h.rsplit(':').next())
        .expect("port");
    let url = with_param(
        &with_hostport(&base, &format!("localhost:{port}")),
        "sslmode=verify-full",
    );
    let p = PgPool::new("primary", &url, 1, Some(snakeoil)).expect("pool");
    assert_eq!(ssl_in_use(&p).await, json!(true));
}

/// An idle connection killed by the server is replaced, not reported (nothing had run on it).
#[tokio::test]
async fn dead_idle_connection_is_replaced() {
    let p = pool(&env("OPSCTL_TEST_DATABASE_URL"), 1);
    let admin = pg_admin().await;
    for _ in 0..5 {
        let r = q(&p, "SELECT pg_backend_pid() AS pid", &[], false)
            .await
            .expect("pid");
        let pid = r.rows[0]["pid"].as_i64().expect("pid") as i32;
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate")
            .get(0);
        assert!(killed);
        let r = q(&p, "SELECT pg_backend_pid() AS pid", &[], true)
            .await
            .expect("after kill");
        assert_ne!(r.rows[0]["pid"].as_i64(), Some(i64::from(pid)));
    }
}

#[tokio::test]
async fn errors_carry_their_kind_and_the_drivers_error_as_source() {
    init();
    let url = format!("postgres://u:pw@127.0.0.1:{}/db", closed_port());
    let p = PgPool::new("primary", &url, 1, None).expect("pool");
    let err = q(&p, "SELECT 1", &[], false).await.expect_err("refused");
    assert_eq!(err.kind(), opsctl::actions::ErrorKind::Unreachable);
    let source = std::error::Error::source(&err).expect("a source");
    assert!(
        source.downcast_ref::<tokio_postgres::Error>().is_some(),
        "{source:?}"
    );
}
