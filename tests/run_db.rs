//! `opsctl run` with `postgres` and `redis` steps against the real test servers:
//! typed rows, enforced read-only, pool bounds seen by the server, clear errors, no
//! credential in any output.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::http_server::closed_port;
use crate::support::{Project, service_url, unique};

fn pg_url() -> String {
    service_url("OPSCTL_TEST_DATABASE_URL")
}

fn redis_url() -> String {
    service_url("OPSCTL_TEST_REDIS_URL")
}

/// A synchronous admin connection for fixtures and observation.
fn admin_query(sql: &str) -> Vec<tokio_postgres::Row> {
    let url = service_url("OPSCTL_TEST_PG_ADMIN_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("admin connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client.query(sql, &[]).await.expect("admin query")
    })
}

/// Several statements on the admin connection.
fn admin_batch(sql: &str) {
    let url = service_url("OPSCTL_TEST_PG_ADMIN_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("admin connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client.batch_execute(sql).await.expect("admin batch");
    });
}

fn redis_cmd(args: &[&str]) -> redis::Value {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut con = client.get_connection().expect("redis connect");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con).expect("redis command")
}

fn config(p: &Project, pool: usize) {
    p.file(
        "opsctl.yaml",
        &format!(
            "envs:\n  test:\n    postgres:\n      primary: {{ url_env: PG_URL, pool: {pool} }}\n    redis:\n      cache: {{ url_env: CACHE_URL }}\n"
        ),
    );
}

fn run(
    p: &Project,
    name: &str,
    extra: &[&str],
) -> (
    crate::support::Out,
    std::collections::HashMap<String, Value>,
) {
    let out = p
        .opsctl()
        .args(["run", name, "--format", "json"])
        .args(extra)
        .env("PG_URL", pg_url())
        .env("CACHE_URL", redis_url())
        .run();
    let doc = out.json();
    let steps = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or_default().to_string(), s.clone()))
        .collect();
    (out, steps)
}

#[test]
fn typed_rows_from_a_group_by_with_params() {
    let t = unique("orders");
    admin_batch(&format!(
        "CREATE TABLE {t} (id int, region text, amount numeric(10,2), paid bool, at timestamptz, meta jsonb);
         GRANT SELECT ON {t} TO opsctl_test;
         INSERT INTO {t} VALUES
           (1, 'eu', 10.50, true, '2026-11-24 03:00:00+00', '{{\"tier\": \"gold\"}}'),
           (2, 'eu', 4.25, false, '2026-11-24 03:05:00+00', null),
           (3, 'us', 7.00, true, '2026-11-24 03:10:00+00', '[1,2]')"
    ));
    let p = Project::new();
    config(&p, 10);
    p.runbook(
        "orders",
        &format!(
            r#"name: orders
title: Orders
params:
  min: {{ default: 1 }}
steps:
  - id: by-region
    postgres:
      target: primary
      query: "SELECT region, count(*) AS n, sum(amount) AS total, bool_and(paid) AS all_paid, max(at) AS last, (array_agg(meta ORDER BY id))[1] AS meta FROM {t} WHERE id >= $1 GROUP BY region ORDER BY region"
      params: ["${{{{ params.min }}}}"]
    expect: ["row_count == 2", "rows[0].n == 2", "value == 'eu'"]
"#
        ),
    );
    let (out, steps) = run(&p, "orders", &[]);
    out.code(0);
    let rows = &steps["by-region"]["outputs"]["rows"];
    assert_eq!(
        rows[0],
        json!({"region": "eu", "n": 2, "total": 14.75, "all_paid": false, "last": "2026-11-24T03:05:00Z", "meta": {"tier": "gold"}})
    );
    assert_eq!(rows[1]["n"], 1);
    assert_eq!(rows[1]["total"], 7);
    assert_eq!(rows[1]["meta"], json!([1, 2]));
    admin_batch(&format!("DROP TABLE {t}"));
}

#[test]
fn a_non_mutating_delete_is_refused_by_the_server_and_a_declared_one_runs_with_yes() {
    let t = unique("jobs");
    admin_batch(&format!(
        "CREATE TABLE {t} (id int); INSERT INTO {t} SELECT generate_series(1, 5); GRANT SELECT, DELETE ON {t} TO opsctl_test"
    ));
    let p = Project::new();
    config(&p, 10);
    p.runbook(
        "cleanup",
        &format!(
            "name: cleanup\ntitle: C\nsteps:\n  - id: sneaky\n    postgres: {{ target: primary, query: \"DELETE FROM {t} WHERE id > 3\" }}\n"
        ),
    )
    .runbook(
        "purge",
        &format!(
            "name: purge\ntitle: P\nsteps:\n  - id: purge\n    postgres: {{ target: primary, query: \"DELETE FROM {t} WHERE id > 3\", mutating: true }}\n    expect: [\"row_count == 2\"]\n"
        ),
    );
    let (out, steps) = run(&p, "cleanup", &["--yes"]);
    out.code(1);
    assert_eq!(steps["sneaky"]["status"], "error");
    assert!(
        steps["sneaky"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("read-only transaction"),
        "{:?}",
        steps["sneaky"]
    );
    let count: i64 = admin_query(&format!("SELECT count(*) FROM {t}"))[0].get(0);
    assert_eq!(count, 5, "the table was changed");

    let (out, steps) = run(&p, "purge", &[]);
    out.code(0);
    assert_eq!(
        steps["purge"]["status"], "skipped",
        "no terminal, no --yes: not run"
    );
    let count: i64 = admin_query(&format!("SELECT count(*) FROM {t}"))[0].get(0);
    assert_eq!(count, 5);

    let (out, steps) = run(&p, "purge", &["--yes"]);
    out.code(0);
    assert_eq!(steps["purge"]["status"], "ok");
    let count: i64 = admin_query(&format!("SELECT count(*) FROM {t}"))[0].get(0);
    assert_eq!(count, 3);
    admin_batch(&format!("DROP TABLE {t}"));
}

#[test]
fn pool_bounds_concurrent_queries_as_seen_by_the_server() {
    let app = unique("opsctl_bound");
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "envs:\n  test:\n    postgres:\n      primary: { url_env: PG_URL, pool: 5 }\n",
    );
    let mut yaml = String::from("name: sleepy\ntitle: S\nsteps:\n");
    for i in 0..25 {
        yaml.push_str(&format!(
            "  - id: s{i}\n    postgres: {{ target: primary, query: \"SELECT pg_sleep(0.3)\" }}\n"
        ));
    }
    p.runbook("sleepy", &yaml);
    let url = format!(
        "{}{}application_name={app}",
        pg_url(),
        if pg_url().contains('?') { "&" } else { "?" }
    );

    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let done = done.clone();
        let app = app.clone();
        std::thread::spawn(move || {
            let admin_url = service_url("OPSCTL_TEST_PG_ADMIN_URL");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.expect("admin");
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let (mut max_active, mut max_conns) = (0i64, 0i64);
                while !done.load(Ordering::Relaxed) {
                    let row = client
                        .query_one(
                            "SELECT count(*) FILTER (WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'), count(*) FROM pg_stat_activity WHERE application_name = $1",
                            &[&app],
                        )
                        .await
                        .expect("observe");
                    max_active = max_active.max(row.get(0));
                    max_conns = max_conns.max(row.get(1));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (max_active, max_conns)
            })
        })
    };
    let out = p
        .opsctl()
        .args(["run", "sleepy", "--format", "json"])
        .env("PG_URL", &url)
        .run();
    done.store(true, Ordering::Relaxed);
    let (max_active, max_conns) = observer.join().expect("observer");
    out.code(0);
    let doc = out.json();
    assert!(
        doc["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["status"] == "ok")
    );
    assert!(
        max_active <= 5,
        "the server saw {max_active} queries at once"
    );
    assert!(max_conns <= 5, "the server saw {max_conns} connections");
    assert!(
        max_active >= 4,
        "the server saw only {max_active} queries at once"
    );
}

#[test]
fn redis_reads_work_and_undeclared_writes_never_reach_the_server() {
    let list = unique("dlq");
    let key = unique("flag");
    redis_cmd(&["RPUSH", &list, "job-1", "job-2", "job-3"]);
    let p = Project::new();
    config(&p, 10);
    p.runbook(
        "dlq",
        &format!(
            r#"name: dlq
title: DLQ
steps:
  - id: depth
    redis: {{ target: cache, command: [LLEN, "{list}"] }}
    warn_if: ["value > 2"]
  - id: sample
    redis: {{ target: cache, command: [LRANGE, "{list}", 0, 1] }}
    expect: ["value == ['job-1', 'job-2']"]
  - id: memory
    redis: {{ target: cache, command: [INFO, memory] }}
    expect: ["info.used_memory > 0", "info.used_memory_human is string"]
  - id: sneaky-write
    redis: {{ target: cache, command: [SET, "{key}", "1"] }}
  - id: declared-write
    redis: {{ target: cache, command: [SET, "{key}-declared", "1"], mutating: true }}
"#
        ),
    );
    let (out, steps) = run(&p, "dlq", &["--yes"]);
    out.code(1);
    assert_eq!(steps["depth"]["status"], "warn");
    assert_eq!(steps["depth"]["outputs"]["value"], 3);
    assert_eq!(steps["sample"]["status"], "ok");
    assert_eq!(steps["memory"]["status"], "ok");
    assert_eq!(steps["sneaky-write"]["status"], "error");
    assert!(
        steps["sneaky-write"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("mutating: true")
    );
    assert_eq!(
        redis_cmd(&["EXISTS", &key]),
        redis::Value::Int(0),
        "the undeclared SET reached the server"
    );
    assert_eq!(steps["declared-write"]["status"], "ok");
    assert_eq!(
        redis_cmd(&["EXISTS", &format!("{key}-declared")]),
        redis::Value::Int(1)
    );
    redis_cmd(&["DEL", &list, &format!("{key}-declared")]);
}

#[test]
fn default_targets_come_from_database_url_and_redis_url() {
    let p = Project::new();
    p.runbook(
        "defaults",
        "name: defaults\ntitle: D\nsteps:\n  - id: db\n    postgres: { query: \"SELECT 41 + 1 AS answer\" }\n    expect: [\"value == 42\"]\n  - id: cache\n    redis: { command: [PING] }\n    expect: [\"value == 'PONG'\"]\n",
    );
    let out = p
        .opsctl()
        .args(["run", "defaults", "--format", "json"])
        .env("DATABASE_URL", pg_url())
        .env("REDIS_URL", redis_url())
        .run();
    out.code(0);
}

#[test]
fn wrong_password_and_stopped_server_end_in_error_without_the_credential() {
    const CANARY: &str = "wrong-canary-pw-9d1c";
    let port = closed_port();
    let with_pw = |url: &str, pw: &str| -> String {
        let (scheme, rest) = url.split_once("://").expect("scheme");
        let (userinfo, host) = rest.split_once('@').expect("userinfo");
        let user = userinfo.split(':').next().unwrap_or("");
        format!("{scheme}://{user}:{pw}@{host}")
    };
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "envs:\n  test:\n    postgres:\n      bad-pw: { url_env: PG_BAD }\n      stopped: { url_env: PG_STOPPED }\n    redis:\n      bad-pw: { url_env: REDIS_BAD }\n      stopped: { url_env: REDIS_STOPPED }\n",
    )
    .runbook(
        "broken",
        r#"name: broken
title: B
steps:
  - id: pg-auth
    postgres: { target: bad-pw, query: "SELECT 1" }
    timeout: 10s
  - id: pg-down
    postgres: { target: stopped, query: "SELECT 1" }
    timeout: 10s
  - id: redis-auth
    redis: { target: bad-pw, command: [PING] }
    timeout: 10s
  - id: redis-down
    redis: { target: stopped, command: [PING] }
    timeout: 10s
"#,
    );
    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args(["run", "broken", "--format", "json", "--record"])
        .arg(&record)
        .env("PG_BAD", with_pw(&pg_url(), CANARY))
        .env(
            "PG_STOPPED",
            format!("postgres://opsctl_test:{CANARY}@127.0.0.1:{port}/opsctl_test"),
        )
        .env("REDIS_BAD", with_pw(&redis_url(), CANARY))
        .env(
            "REDIS_STOPPED",
            format!("redis://:{CANARY}@127.0.0.1:{port}/0"),
        )
        .run();
    out.code(1).never_shows(CANARY);
    assert!(
        !std::fs::read_to_string(&record)
            .expect("record")
            .contains(CANARY)
    );
    let doc = out.json();
    let by_id = |id: &str| {
        doc["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect("step")
    };
    for (id, needle) in [
        ("pg-auth", "password authentication failed"),
        ("pg-down", "refused"),
        ("redis-auth", "WRONGPASS"),
        ("redis-down", "refused"),
    ] {
        let s = by_id(id);
        assert_eq!(s["status"], "error", "{id}: {s}");
        let msg = s["message"].as_str().unwrap_or_default();
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "{id}: {msg}"
        );
        assert!(!msg.contains('\n'), "{id}: the cause is one line: {msg}");
        assert!(
            msg.contains("bad-pw") || msg.contains("stopped"),
            "{id}: names the target: {msg}"
        );
    }
    let human = p
        .opsctl()
        .args(["run", "broken"])
        .env("PG_BAD", with_pw(&pg_url(), CANARY))
        .env(
            "PG_STOPPED",
            format!("postgres://opsctl_test:{CANARY}@127.0.0.1:{port}/opsctl_test"),
        )
        .env("REDIS_BAD", with_pw(&redis_url(), CANARY))
        .env(
            "REDIS_STOPPED",
            format!("redis://:{CANARY}@127.0.0.1:{port}/0"),
        )
        .run();
    human.code(1).never_shows(CANARY);
}

#[test]
fn a_long_query_ends_with_the_step_timeout() {
    let p = Project::new();
    config(&p, 2);
    p.runbook(
        "slow",
        "name: slow\ntitle: S\nsteps:\n  - id: sleep\n    postgres: { target: primary, query: \"SELECT pg_sleep(10)\" }\n    timeout: 1s\n",
    );
    let (out, steps) = run(&p, "slow", &[]);
    out.code(1);
    assert_eq!(steps["sleep"]["status"], "error");
    let msg = steps["sleep"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("statement timeout") || msg.contains("no answer within"),
        "{msg}"
    );
}

#[test]
fn waiting_for_a_pooled_connection_does_not_count_against_the_timeout() {
    // One connection, four 0.4 s queries with a 1 s timeout each: the last one waits 1.2 s
    // for the connection, which must not count; its own 0.4 s fits easily.
    let p = Project::new();
    config(&p, 1);
    let mut yaml = String::from("name: queue\ntitle: Q\nsteps:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - id: s{i}\n    postgres: {{ target: primary, query: \"SELECT pg_sleep(0.4)\" }}\n    timeout: 1s\n"
        ));
    }
    p.runbook("queue", &yaml);
    let (out, steps) = run(&p, "queue", &[]);
    out.code(0);
    assert!(steps.values().all(|s| s["status"] == "ok"), "{steps:?}");
}

#[test]
fn side_effecting_functions_need_confirmation_even_without_mutating() {
    let p = Project::new();
    config(&p, 2);
    p.runbook(
        "kill",
        "name: kill\ntitle: K\nsteps:\n  - id: kill\n    postgres: { target: primary, query: \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE false\" }\n",
    );
    let (out, steps) = run(&p, "kill", &[]);
    out.code(0);
    assert_eq!(
        steps["kill"]["status"], "skipped",
        "a session-killing query asks first"
    );
    let (out, steps) = run(&p, "kill", &["--yes"]);
    out.code(0);
    assert_eq!(steps["kill"]["status"], "ok");
}

#[test]
fn ctrl_c_during_a_long_query_stops_it_on_the_server() {
    let p = Project::new();
    config(&p, 2);
    let marker = unique("ctrlc");
    p.runbook(
        "sleepy",
        &format!(
            "name: sleepy\ntitle: S\nsteps:\n  - id: sleep\n    postgres: {{ target: primary, query: \"SELECT pg_sleep(30), '{marker}'\" }}\n    timeout: 60s\n"
        ),
    );
    let running = |m: &str| {
        admin_query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{m}%' AND query NOT LIKE '%pg_stat_activity%'"
        ))[0]
            .get::<_, i64>(0)
    };
    // Every connection through the proxy (the cancel request's too) takes 600 ms to open:
    // opsctl must wait for the cancel, not exit and leave it behind.
    let url = pg_url();
    let upstream = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the test URL")
        .to_string();
    let proxy = slow_proxy(&upstream, Duration::from_millis(600));
    let proxied = url.replace(&upstream, &proxy);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .current_dir(p.path())
        .args(["run", "sleepy"])
        .env("PG_URL", proxied)
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", p.path().join(".state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    for _ in 0..250 {
        if running(&marker) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running(&marker), 1, "the query never started");
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130));
    // opsctl waited for the cancel request: the server is no longer running the query.
    assert_eq!(running(&marker), 0, "the query outlived opsctl");
}

/// A TCP proxy to `upstream` that waits `delay` before opening each upstream connection.
/// Returns its `127.0.0.1:port`.
fn slow_proxy(upstream: &str, delay: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    return;
                };
                let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Both);
                });
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}
