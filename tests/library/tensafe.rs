//! Staged outages of the tensafe system (see docs/seed-coverage.md): TenSafe on Kubernetes,
//! seed 001. The runbooks of runbooks/tensafe/ run against the test Kubernetes API server
//! (tests/fixtures/kube/tensafe.yaml), the real Postgres, a local HTTP service shaped like
//! https://api.tensafe.io, and a stand-in `tensafe-admin`
//! (tests/fixtures/library/tensafe/tensafe-admin) that records every call it gets.

use serde_json::Value;

use crate::kube::Cluster;
use crate::support::http_server::{Route, TestServer, closed_port};
use crate::support::{Out, Project, repo, service_url};

/// A project with every tensafe runbook, the stand-in CLI in `bin/`, and the standard
/// targets pointing at `api` (http), `PG_URL` (postgres) and the cluster's `tensafe`.
fn project(api: &TestServer) -> Project {
    let p = Project::new();
    let dir = repo().join("runbooks/tensafe");
    for entry in std::fs::read_dir(&dir).expect("runbooks/tensafe") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".yaml") {
            p.file(
                &format!("runbooks/{name}"),
                &std::fs::read_to_string(&path).expect("runbook"),
            );
        }
    }
    let standin = repo().join("tests/fixtures/library/tensafe/tensafe-admin");
    p.file(
        "bin/tensafe-admin",
        &std::fs::read_to_string(standin).expect("stand-in"),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            p.path().join("bin/tensafe-admin"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [runbooks]
envs:
  prod:
    vars: {{ admin_cli: tensafe-admin, incident_channel: "#ops", oncall_channel: "#oncall" }}
    http:
      api: {{ base_url: "{u}" }}
      admin: {{ base_url: "{u}" }}
      webhook: {{ url: "{u}/hooks/slack" }}
    postgres:
      primary: {{ url_env: PG_URL }}
    kubernetes: {{ namespace: tensafe }}
"##,
            u = api.url()
        ),
    );
    p
}

/// Runs `name` with `--yes --format json --record r.jsonl` and the extra args.
fn run(c: &Cluster, p: &Project, name: &str, pg: &str, extra: &[&str]) -> (Out, Value) {
    let path = format!(
        "{}:{}",
        p.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = p
        .opsctl()
        .args(["run", name, "--yes", "--format", "json", "--record"])
        .arg(p.path().join("r.jsonl"))
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PATH", path)
        .env("PG_URL", pg)
        .run();
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let doc = out.json();
    (out, doc)
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[track_caller]
fn status(doc: &Value, id: &str, want: &str) {
    assert_eq!(step(doc, id)["status"], want, "step {id}: {}", step(doc, id));
}

/// The stand-in's calls, each its arguments.
fn calls(p: &Project) -> Vec<Vec<String>> {
    p.read(".tensafe-admin/calls.log")
        .lines()
        .map(|l| {
            l.trim_end_matches('\t')
                .split('\t')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Index of the first call starting with `prefix`, or a panic listing the calls.
#[track_caller]
fn call(calls: &[Vec<String>], prefix: &[&str]) -> usize {
    calls
        .iter()
        .position(|c| c.len() >= prefix.len() && c.iter().zip(prefix).all(|(a, b)| a == b))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:?}"))
}

/// The record's events, in order.
fn record(p: &Project) -> Vec<Value> {
    p.read("r.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("record line"))
        .collect()
}

/// Position in the record of the first `event` of step `id`.
#[track_caller]
fn event_at(events: &[Value], event: &str, id: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == event && e["id"] == id)
        .unwrap_or_else(|| panic!("no {event} of {id} in the record"))
}

fn api_recovering() -> TestServer {
    TestServer::start_blocking(vec![
        Route::new("GET", "/health")
            .header("content-type", "application/json")
            .sequence(vec![
                (503, r#"{"status": "unhealthy"}"#.to_string()),
                (200, r#"{"status": "healthy"}"#.to_string()),
            ]),
        Route::new("POST", "/hooks/slack"),
    ])
}

fn deployment(c: &Cluster) -> Value {
    c.kubectl(&["get", "deploy", "tensafe-server", "-n", "tensafe", "-o", "json"])
        .json()
}

fn image(dep: &Value) -> String {
    dep["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Pods crash-looping ten minutes after revision 2 went out: the crash and its FATAL line
/// are found, the logs saved first, and Option A (rollback) is taken — kubectl sees the
/// template of revision 1 again, and no restart.
#[test]
fn p1_crash_loop_after_a_recent_deployment_saves_the_logs_and_rolls_back() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    assert_eq!(image(&deployment(&c)), "tensafe/server:v1.2.4");
    let (_, doc) = run(
        &c,
        &p,
        "tensafe-p1-incident",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--param", "alert_id=ALRT-42"],
    );
    assert_eq!(step(&doc, "pods")["outputs"]["crashlooping"], 2, "{doc}");
    status(&doc, "crash-logs", "ok");
    let matches = step(&doc, "crash-logs")["outputs"]["matches"].to_string();
    assert!(
        matches.contains("FATAL invalid config: TENSAFE_KMS_KEY_ID is not set"),
        "{matches}"
    );
    assert_eq!(step(&doc, "history")["outputs"]["history"].as_array().map(Vec::len), Some(2));
    let age = step(&doc, "newest-revision")["outputs"]["age_minutes"]
        .as_i64()
        .expect("age");
    assert!((9..=12).contains(&age), "{age}");
    status(&doc, "database-down", "skipped");
    status(&doc, "rollback", "ok");
    status(&doc, "restart", "skipped");
    status(&doc, "rollout-done", "ok");
    status(&doc, "verify-health", "ok");
    status(&doc, "notify", "ok");
    // The server: back on revision 1's template, no restart annotation.
    let dep = deployment(&c);
    assert_eq!(image(&dep), "tensafe/server:v1.2.3", "{dep}");
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "{dep}"
    );
    // The logs were saved before the rollback started.
    let events = record(&p);
    let undo = event_at(&events, "step_started", "rollback");
    assert!(event_at(&events, "step_finished", "crash-logs") < undo);
    assert!(event_at(&events, "step_finished", "incident-logs") < undo);
    // The CLI: alert acknowledged, incident opened, stakeholders told with its id.
    let calls = calls(&p);
    call(&calls, &["alert", "ack", "ALRT-42"]);
    call(&calls, &["incident", "create", "--severity", "P1"]);
    let notify = call(&calls, &["notify", "stakeholders", "--incident-id", "INC-1001"]);
    assert!(call(&calls, &["statuspage", "update", "--status", "Identified"]) < notify);
}

/// The same crash with revision 2 two days old: no recent deployment, so Option B
/// (restart) — kubectl sees the restart annotation and the same image.
#[test]
fn p1_crash_loop_without_a_recent_deployment_restarts() {
    let api = api_recovering();
    let fixture =
        crate::kube::fixture("tensafe.yaml").replace("now-10m   # newest revision", "now-2d");
    let c = Cluster::with(&fixture, &[]);
    let p = project(&api);
    let (_, doc) = run(
        &c,
        &p,
        "tensafe-p1-incident",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--param", "alert_id=ALRT-43"],
    );
    assert!(
        step(&doc, "newest-revision")["outputs"]["age_minutes"]
            .as_i64()
            .is_some_and(|a| a > 24 * 60),
        "{doc}"
    );
    status(&doc, "crash-logs", "ok");
    status(&doc, "rollback", "skipped");
    status(&doc, "restart", "ok");
    status(&doc, "verify-health", "ok");
    let dep = deployment(&c);
    assert_eq!(image(&dep), "tensafe/server:v1.2.4");
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{dep}"
    );
    let events = record(&p);
    assert!(
        event_at(&events, "step_finished", "crash-logs")
            < event_at(&events, "step_started", "restart")
    );
}

/// Postgres refusing connections and `tensafe-admin db status` saying the primary is
/// UNREACHABLE: the database is named, nothing is rolled back, restarted or scaled.
#[test]
fn p1_with_the_database_down_names_it_and_changes_nothing() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/health")
            .status(503)
            .json(serde_json::json!({"status": "unhealthy"})),
    ]);
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    p.file(
        ".tensafe-admin/canned/db-status",
        "Primary: UNREACHABLE\nReplica replica-1: HEALTHY\n",
    );
    let writes = || c.server.writes() - c.server.writes_for("leases");
    let before = writes();
    let down = format!("postgres://nobody:pw@127.0.0.1:{}/tensafe", closed_port());
    let (out, doc) = run(
        &c,
        &p,
        "tensafe-p1-incident",
        &down,
        &["--param", "alert_id=ALRT-44", "--yes-manual"],
    );
    out.code(1);
    status(&doc, "db", "error");
    status(&doc, "db-status", "fail");
    status(&doc, "crash-logs", "ok");
    status(&doc, "database-down", "ok");
    let named = step(&doc, "database-down")["outputs"].to_string()
        + step(&doc, "db")["message"].as_str().unwrap_or("");
    assert!(named.contains("refused") || named.contains("connect"), "{named}");
    for id in ["rollback", "restart", "scale", "rollout-done", "notify"] {
        status(&doc, id, "skipped");
    }
    assert_eq!(writes(), before, "something was changed on the cluster");
    assert_eq!(image(&deployment(&c)), "tensafe/server:v1.2.4");
    let calls = calls(&p);
    assert!(
        !calls.iter().any(|c| c.first().is_some_and(|a| a == "notify")),
        "{calls:?}"
    );
}
