//! SQL that acts outside its READ ONLY transaction, run through the real `opsctl` binary
//! against the real server as a SUPERUSER (so the server would allow every effect): without
//! `--yes` on a non-terminal, and under `opsctl plan`, none of it may reach the server.
//! Checked on the server itself: a victim session still answers, no advisory lock was ever
//! held, a listener got no notification, a sequence did not move, no file was written, a
//! table kept its row and no table was created.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::support::{Project, service_url, unique};

fn admin_url() -> String {
    service_url("OPSCTL_TEST_PG_ADMIN_URL")
}

/// A connection whose notifications are collected in the returned vector.
async fn connect(url: &str) -> (Client, Arc<std::sync::Mutex<Vec<String>>>) {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test server");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                sink.lock()
                    .expect("notifications")
                    .push(n.payload().to_string());
            }
        }
    });
    (client, seen)
}

/// Runs `opsctl` with `args` on the project, `DATABASE_URL` = `url`; returns each step's
/// JSON by id.
fn opsctl(p: &Project, url: &str, args: &[&str]) -> std::collections::HashMap<String, Value> {
    let out = p
        .opsctl()
        .args(args)
        .args(["--format", "json"])
        .env("DATABASE_URL", url)
        .run();
    let doc = out.json();
    doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {doc}"))
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or_default().to_string(), s.clone()))
        .collect()
}

/// `url` for sessions with `standard_conforming_strings = off`.
fn old_strings_url(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20standard_conforming_strings%3Doff")
}

#[test]
fn sql_acting_outside_the_transaction_never_reaches_the_server_unconfirmed() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let url = admin_url();
        let (admin, _) = connect(&url).await;
        let (victim, _) = connect(&url).await;
        let (listener, notes) = connect(&url).await;
        let victim_pid: i32 = victim
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("victim pid")
            .get(0);
        let chan = unique("opsctl_chan");
        listener
            .batch_execute(&format!("LISTEN {chan}"))
            .await
            .expect("listen");
        let seq = unique("opsctl_seq");
        admin
            .batch_execute(&format!("CREATE SEQUENCE {seq}"))
            .await
            .expect("sequence");
        let table = unique("opsctl_victim_rows");
        admin
            .batch_execute(&format!("CREATE TABLE {table} AS SELECT 1 AS id"))
            .await
            .expect("table");
        let lock_key: i64 = 7_700_000 + i64::from(std::process::id() % 100_000);
        let file = format!("/tmp/{}", unique("opsctl_pwned"));

        let queries = [
            format!("SELECT \"pg_terminate_backend\"({victim_pid})"),
            format!("SELECT pg_terminate_backend/**/({victim_pid})"),
            format!("SELECT pg_terminate_backend -- why not\n ({victim_pid})"),
            format!("SELECT pg_catalog.pg_terminate_backend({victim_pid})"),
            format!("SELECT PG_TERMINATE_BACKEND({victim_pid})"),
            format!(
                "WITH k AS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {victim_pid}) SELECT * FROM k"
            ),
            format!("SELECT * FROM pg_terminate_backend({victim_pid})"),
            format!(
                "SELECT count(*) FROM pg_stat_activity a, LATERAL (SELECT pg_terminate_backend(a.pid)) t WHERE a.pid = {victim_pid}"
            ),
            format!("SELECT coalesce(pg_terminate_backend({victim_pid}), false)"),
            // With standard_conforming_strings = off the string ends at the second quote.
            format!(r"SELECT 'a\' -- ', pg_terminate_backend({victim_pid})"),
            format!("DO $$ BEGIN PERFORM pg_terminate_backend({victim_pid}); END $$"),
            format!("SELECT \"pg_advisory_lock\"({lock_key}), pg_sleep(1)"),
            format!("SELECT pg_advisory_lock/**/({lock_key}), pg_sleep(1)"),
            format!("SELECT pg_try_advisory_lock({lock_key}), pg_sleep(1)"),
            format!("SELECT pg_catalog.pg_advisory_xact_lock({lock_key}), pg_sleep(1)"),
            format!("SELECT \"pg_notify\"('{chan}', 'leaked')"),
            format!("NOTIFY {chan}, 'leaked'"),
            format!("SELECT nextval('{seq}')"),
            format!("SELECT \"setval\"('{seq}', 99)"),
            format!("COPY (SELECT 1) TO PROGRAM 'touch {file}'"),
            "SELECT set_config('work_mem', '1MB', false)".to_string(),
            format!("WITH d AS (DELETE FROM {table} RETURNING *) SELECT count(*) FROM d"),
            format!("SELECT 1 INTO {table}_copy"),
            format!("LISTEN {chan}"),
            "SET work_mem = '1MB'".to_string(),
            "LOAD 'auto_explain'".to_string(),
            "CHECKPOINT".to_string(),
            "SELECT txid_current()".to_string(),
        ];
        let p = Project::new();
        let mut yaml = String::from("name: sneaky\ntitle: S\nsteps:\n");
        for (i, q) in queries.iter().enumerate() {
            let quoted = serde_json::to_string(q).expect("quote");
            yaml.push_str(&format!(
                "  - id: q{i}\n    postgres: {{ query: {quoted} }}\n    timeout: 20s\n"
            ));
        }
        p.runbook("sneaky", &yaml);

        // Watch for the advisory lock while opsctl runs: it would be held for a second.
        let watching = Arc::new(AtomicBool::new(true));
        let lock_seen = {
            let watching = watching.clone();
            let (observer, _) = connect(&url).await;
            tokio::spawn(async move {
                let mut seen = false;
                while watching.load(Ordering::Relaxed) {
                    let row = observer
                        .query_one(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $1",
                            &[&lock_key],
                        )
                        .await
                        .expect("observe locks");
                    seen |= row.get::<_, i64>(0) > 0;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen
            })
        };

        // `block_on` runs on this thread: blocking it while opsctl runs leaves the runtime's
        // workers driving the connections and the observer. Every finding is collected, so
        // a failure shows both what opsctl ran and what the server then saw.
        let mut problems = Vec::new();
        // The same, on a session reading backslashes in strings as escapes.
        let old_strings = old_strings_url(&url);
        for (target, args) in [
            (&url, &["run", "sneaky"][..]),
            (&url, &["plan", "sneaky", "--yes"][..]),
            (&old_strings, &["run", "sneaky"][..]),
        ] {
            let steps = opsctl(&p, target, args);
            for (i, q) in queries.iter().enumerate() {
                let step = &steps[&format!("q{i}")];
                if step["status"] != "skipped" {
                    problems.push(format!(
                        "`opsctl {}` ran {q:?} unconfirmed: {step}",
                        args.join(" ")
                    ));
                }
            }
        }
        watching.store(false, Ordering::Relaxed);
        if lock_seen.await.expect("lock observer") {
            problems.push("an advisory lock was taken".into());
        }

        // What the server saw.
        if let Err(e) = victim.query_one("SELECT 1", &[]).await {
            problems.push(format!("the victim session was terminated: {e}"));
        }
        let held: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&lock_key],
            )
            .await
            .expect("locks")
            .get(0);
        if held > 0 {
            problems.push("the advisory lock is still held".into());
        }
        // A round trip on the listener delivers any notification already sent.
        listener.query_one("SELECT 1", &[]).await.expect("listener");
        let notes = notes.lock().expect("notes").clone();
        if !notes.is_empty() {
            problems.push(format!("notifications were sent: {notes:?}"));
        }
        let row = admin
            .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
            .await
            .expect("sequence state");
        let state = (row.get::<_, i64>(0), row.get::<_, bool>(1));
        if state != (1, false) {
            problems.push(format!("the sequence moved: {state:?}"));
        }
        let written: bool = admin
            .query_one("SELECT pg_stat_file($1, true) IS NOT NULL", &[&file])
            .await
            .expect("file check")
            .get(0);
        if written {
            problems.push(format!("COPY ... PROGRAM wrote {file} on the server"));
        }
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("table rows")
            .get(0);
        if rows != 1 {
            problems.push(format!("{table} lost its row"));
        }
        let copied: bool = admin
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{table}_copy")])
            .await
            .expect("copy check")
            .get(0);
        if copied {
            problems.push("SELECT INTO created a table".into());
        }
        admin
            .batch_execute(&format!("DROP TABLE {table}; DROP TABLE IF EXISTS {table}_copy"))
            .await
            .expect("drop table");
        admin
            .batch_execute(&format!("DROP SEQUENCE {seq}"))
            .await
            .expect("drop sequence");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    });
}

/// The harness can see an effect: the same calls, confirmed with `--yes`, do terminate
/// their victims (so the test above would fail if opsctl let them through), including the
/// one hidden in a string for sessions with `standard_conforming_strings = off`.
#[test]
fn confirmed_calls_do_reach_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        for (url, query) in [
            (admin_url(), "SELECT \"pg_terminate_backend\"(PID)"),
            (
                old_strings_url(&admin_url()),
                r"SELECT 'a\' -- ', pg_terminate_backend(PID)",
            ),
        ] {
            let (victim, _) = connect(&admin_url()).await;
            let victim_pid: i32 = victim
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .expect("victim pid")
                .get(0);
            let query = serde_json::to_string(&query.replace("PID", &victim_pid.to_string()))
                .expect("quote");
            let p = Project::new();
            p.runbook(
                "kill",
                &format!(
                    "name: kill\ntitle: K\nsteps:\n  - id: kill\n    postgres: {{ query: {query} }}\n"
                ),
            );
            let steps = opsctl(&p, &url, &["run", "kill", "--yes"]);
            assert_eq!(steps["kill"]["status"], "ok", "{query}: {}", steps["kill"]);
            assert!(
                victim.query_one("SELECT 1", &[]).await.is_err(),
                "{query}: the victim survived"
            );
        }
    });
}
