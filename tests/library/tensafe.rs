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
      replica: {{ url_env: PG_URL }}
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
    assert_eq!(
        step(doc, id)["status"],
        want,
        "step {id}: {}",
        step(doc, id)
    );
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
    c.kubectl(&[
        "get",
        "deploy",
        "tensafe-server",
        "-n",
        "tensafe",
        "-o",
        "json",
    ])
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
    assert_eq!(
        step(&doc, "history")["outputs"]["history"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
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
    let notify = call(
        &calls,
        &["notify", "stakeholders", "--incident-id", "INC-1001"],
    );
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
    assert!(
        named.contains("refused") || named.contains("connect"),
        "{named}"
    );
    for id in ["rollback", "restart", "scale", "rollout-done", "notify"] {
        status(&doc, id, "skipped");
    }
    assert_eq!(writes(), before, "something was changed on the cluster");
    assert_eq!(image(&deployment(&c)), "tensafe/server:v1.2.4");
    let calls = calls(&p);
    assert!(
        !calls
            .iter()
            .any(|c| c.first().is_some_and(|a| a == "notify")),
        "{calls:?}"
    );
}

/// P2's "scale if needed": `--replicas=+2` in the seed would set 2 replicas; here 3 become 5
/// (kubectl agrees), then health is watched and the alert resolved after the scale.
#[test]
fn p2_adds_two_replicas() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    let (_, doc) = run(
        &c,
        &p,
        "tensafe-p2-incident",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--param", "alert_id=ALRT-51"],
    );
    let scale = step(&doc, "scale");
    assert_eq!(scale["status"], "ok", "{doc}");
    assert_eq!(scale["outputs"]["from"], 3, "{scale}");
    assert_eq!(scale["outputs"]["to"], 5, "{scale}");
    assert_eq!(deployment(&c)["spec"]["replicas"], 5);
    status(&doc, "error-logs", "warn");
    status(&doc, "scaled", "ok");
    status(&doc, "monitor", "ok");
    status(&doc, "resolve", "ok");
    let calls = calls(&p);
    call(&calls, &["metrics", "get", "error_rate", "--last", "30m"]);
    call(&calls, &["metrics", "get", "p95_latency", "--last", "30m"]);
    assert!(
        call(&calls, &["alert", "ack", "ALRT-51"]) < call(&calls, &["alert", "resolve", "ALRT-51"])
    );
    let events = record(&p);
    assert!(
        event_at(&events, "step_finished", "scale") < event_at(&events, "step_started", "resolve")
    );
}

/// Emergency scale-up with the rollout wait failing (reading the deployment is forbidden
/// once it has been scaled): the replicas were doubled, and the KEDA pause is removed by the
/// `finally` step all the same — the seed's script would have left KEDA paused.
#[test]
fn emergency_scale_up_resumes_keda_even_when_the_wait_fails() {
    let api = api_recovering();
    let c = Cluster::with(
        &crate::kube::fixture("tensafe.yaml"),
        &["GET:/apis/apps/v1/namespaces/tensafe/deployments/tensafe-server:403"],
    );
    let p = project(&api);
    let (out, doc) = run(
        &c,
        &p,
        "tensafe-emergency-scale-up",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &[],
    );
    out.code(1);
    status(&doc, "pause-autoscaler", "ok");
    let paused = &step(&doc, "pause-autoscaler")["outputs"]["object"]["metadata"]["annotations"];
    assert_eq!(paused["autoscaling.keda.sh/paused"], "true", "{doc}");
    let scale = &step(&doc, "scale")["outputs"];
    assert_eq!(
        (scale["from"].as_i64(), scale["to"].as_i64()),
        (Some(3), Some(6)),
        "{scale}"
    );
    status(&doc, "ready", "error");
    status(&doc, "hold", "skipped");
    status(&doc, "resume-autoscaler", "ok");
    // What the server holds now: 6 replicas (read through the scale subresource, which the
    // failure rule leaves alone) and no pause annotation.
    let replicas = c
        .kubectl(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/tensafe/deployments/tensafe-server/scale",
        ])
        .json();
    assert_eq!(replicas["spec"]["replicas"], 6, "{replicas}");
    let so = c
        .kubectl(&[
            "get",
            "scaledobject",
            "tensafe-scaledobject",
            "-n",
            "tensafe",
            "-o",
            "json",
        ])
        .json();
    assert!(
        so["metadata"]["annotations"]["autoscaling.keda.sh/paused"].is_null(),
        "the autoscaler is still paused: {so}"
    );
    let events = record(&p);
    assert!(
        event_at(&events, "step_finished", "ready")
            < event_at(&events, "step_started", "resume-autoscaler")
    );
}

/// API key rotation: rotate, notify, deprecate, usage, revoke — in that order, each change
/// confirmed (without --yes none is made), and the key the CLI generated and delivered is in
/// no output and no record.
#[test]
fn apikey_rotation_runs_in_order_and_never_shows_the_new_key() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    let pg = service_url("OPSCTL_TEST_DATABASE_URL");
    let params = [
        "--param",
        "tenant_id=tnt_acme",
        "--param",
        "old_key_id=key_old_8d2f",
    ];

    // No terminal, no --yes: the changes are skipped, only reads could run.
    let path = format!(
        "{}:{}",
        p.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = p
        .opsctl()
        .args(["run", "tensafe-apikey-rotation", "--format", "json"])
        .args(params)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PATH", &path)
        .run();
    out.code(0);
    assert_eq!(step(&out.json(), "rotate")["status"], "skipped");
    assert!(calls(&p).is_empty(), "{:?}", calls(&p));

    let mut extra = params.to_vec();
    extra.push("--yes-manual");
    let (out, doc) = run(&c, &p, "tensafe-apikey-rotation", &pg, &extra);
    out.code(0);
    for id in [
        "rotate",
        "notify",
        "deprecate",
        "grace",
        "usage",
        "review",
        "revoke",
    ] {
        status(&doc, id, "ok");
    }
    let calls = calls(&p);
    let order = [
        call(&calls, &["apikey", "rotate", "--tenant-id", "tnt_acme"]),
        call(
            &calls,
            &[
                "notify",
                "customer",
                "tnt_acme",
                "--subject",
                "API Key Rotation",
            ],
        ),
        call(
            &calls,
            &[
                "apikey",
                "deprecate",
                "--key-id",
                "key_old_8d2f",
                "--grace-period",
                "24h",
            ],
        ),
        call(&calls, &["apikey", "usage", "--key-id", "key_old_8d2f"]),
        call(&calls, &["apikey", "revoke", "--key-id", "key_old_8d2f"]),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{calls:?}");
    let confirmed: Vec<String> = record(&p)
        .iter()
        .filter(|e| e["event"] == "confirmation" && e["decision"] == "confirmed")
        .filter_map(|e| e["path"].as_str().map(str::to_string))
        .collect();
    for id in ["rotate", "notify", "deprecate", "revoke"] {
        assert!(
            confirmed.iter().any(|c| c == id),
            "{id} not confirmed: {confirmed:?}"
        );
    }
    let key = p.read(".tensafe-admin/delivered/tnt_acme");
    assert!(key.starts_with("tsk_live_") && key.len() > 40, "{key}");
    let record = p.read("r.jsonl");
    for text in [&out.stdout, &out.stderr, &record] {
        assert!(!text.contains(&key), "the new key was shown");
    }
}

/// Security incident: the pods' logs are preserved (finished, in the record) before the node
/// is cordoned and drained; then the node is unschedulable and its pods evicted.
#[test]
fn security_incident_saves_the_logs_before_draining_the_node() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    std::fs::create_dir_all(p.path().join("secure")).expect("mkdir");
    let evidence = format!("evidence_dir={}", p.path().join("secure").display());
    let (out, doc) = run(
        &c,
        &p,
        "tensafe-security-incident",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &[
            "--param",
            "node=node-1",
            "--param",
            "initial_findings=Unexpected admin logins",
            "--param",
            &evidence,
        ],
    );
    out.code(0);
    for id in [
        "preserve-logs",
        "preserve-previous",
        "evidence-file",
        "cordon",
        "drain",
    ] {
        status(&doc, id, "ok");
    }
    let lines = step(&doc, "preserve-logs")["outputs"]["lines"].to_string();
    assert!(
        lines.contains("tensafe-server-6b7d9c8f5-ready: ") && lines.contains("GET /health 200"),
        "{lines}"
    );
    let previous = step(&doc, "preserve-previous")["outputs"]["lines"].to_string();
    assert!(previous.contains("FATAL"), "{previous}");
    // The record: both log reads finished before the cordon started, by order and by time.
    let events = record(&p);
    let cordon = event_at(&events, "step_started", "cordon");
    for id in ["preserve-logs", "preserve-previous"] {
        let saved = event_at(&events, "step_finished", id);
        assert!(saved < cordon, "{id} finished after the cordon started");
        assert!(
            events[saved]["at"].as_str() <= events[cordon]["at"].as_str(),
            "{} / {}",
            events[saved]["at"],
            events[cordon]["at"]
        );
    }
    assert!(cordon < event_at(&events, "step_started", "drain"));
    // The evidence file holds the logs.
    let file = step(&doc, "evidence-file")["outputs"]["stdout"].to_string();
    let written: Vec<_> = std::fs::read_dir(p.path().join("secure"))
        .expect("secure")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        written.iter().any(|w| w.contains("GET /health 200")),
        "{file} {written:?}"
    );
    // The cluster: node-1 cordoned, its pods evicted.
    let node = c.kubectl(&["get", "node", "node-1", "-o", "json"]).json();
    assert_eq!(node["spec"]["unschedulable"], true, "{node}");
    let evicted = step(&doc, "drain")["outputs"]["evicted"].to_string();
    assert!(
        evicted.contains("tensafe-server-6b7d9c8f5-ready"),
        "{evicted}"
    );
    let calls = calls(&p);
    call(
        &calls,
        &["security", "incident", "create", "--severity", "critical"],
    );
    call(&calls, &["secrets", "rotate", "--all"]);
    assert!(
        !calls
            .iter()
            .any(|c| c.get(1).is_some_and(|a| a == "block-ip"))
    );
}

/// The hourly pulse creates a warning alert naming the status only when it is not healthy.
#[test]
fn hourly_pulse_alerts_only_when_not_healthy() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    let pg = service_url("OPSCTL_TEST_DATABASE_URL");
    let (out, doc) = run(&c, &p, "tensafe-hourly-pulse", &pg, &[]);
    out.code(0);
    status(&doc, "alert", "skipped");
    assert_eq!(calls(&p).len(), 1, "{:?}", calls(&p));

    p.file(
        ".tensafe-admin/canned/health---format",
        r#"{"overall_status": "degraded"}"#,
    );
    let (out, doc) = run(&c, &p, "tensafe-hourly-pulse", &pg, &[]);
    out.code(0);
    status(&doc, "health", "warn");
    status(&doc, "alert", "ok");
    let calls = calls(&p);
    call(
        &calls,
        &[
            "alert",
            "create",
            "--severity",
            "warning",
            "--message",
            "Hourly pulse: Status is degraded",
        ],
    );
}

/// A maintenance window whose tasks were not confirmed done is still ended (the `finally`
/// step), and the status page is not set back to Operational.
#[test]
fn maintenance_window_is_ended_even_when_the_tasks_are_not_done() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    let (out, doc) = run(
        &c,
        &p,
        "tensafe-maintenance-window",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--param", "maint_id=MAINT-7"],
    );
    out.code(0);
    status(&doc, "start", "ok");
    status(&doc, "tasks", "skipped");
    status(&doc, "statuspage-operational", "skipped");
    status(&doc, "end", "ok");
    let calls = calls(&p);
    let start = call(&calls, &["maintenance", "start", "--id", "MAINT-7"]);
    let end = call(&calls, &["maintenance", "end", "--id", "MAINT-7"]);
    assert!(start < end);
    assert!(
        !calls.iter().any(|c| c.iter().any(|a| a == "Operational")),
        "{calls:?}"
    );
}

/// Every tensafe runbook lints clean and dry-runs with the system's own config
/// (examples/tensafe/opsctl.yaml), contacting nothing.
#[test]
fn every_tensafe_runbook_dry_runs_with_the_example_config() {
    let root = repo();
    let config = root.join("examples/tensafe/opsctl.yaml");
    // Run from an empty directory: nothing may be read or written but what --config names.
    let scratch = Project::new();
    let lint = scratch
        .opsctl()
        .arg("--config")
        .arg(&config)
        .arg("lint")
        .run();
    lint.code(0).stdout_has("No problems found.");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root.join("runbooks/tensafe")).expect("runbooks/tensafe") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(stem) = name.strip_suffix(".yaml")
            && !stem.ends_with(".test")
        {
            names.push(stem.to_string());
        }
    }
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let out = scratch
            .opsctl()
            .arg("--config")
            .arg(&config)
            .args(["run", &name, "--dry-run", "--examples"])
            .run();
        assert_eq!(out.code, 0, "{name}: {out:?}");
        assert!(
            out.stdout.contains("nothing is contacted"),
            "{name}: {out:?}"
        );
    }
}

/// P1 resolution: root cause noted, then the incident closed, then the status page and the
/// post-mortem; and an incident is not closed while /health is failing.
#[test]
fn p1_resolve_notes_then_closes_and_not_while_unhealthy() {
    let api = api_recovering();
    let c = Cluster::start("tensafe.yaml");
    let p = project(&api);
    let pg = service_url("OPSCTL_TEST_DATABASE_URL");
    let params = [
        "--param",
        "incident_id=INC-1001",
        "--param",
        "root_cause=helm release v1.2.4 shipped without TENSAFE_KMS_KEY_ID",
        "--param",
        "resolution=Rolled back to v1.2.3, fixed in v1.2.4",
    ];
    // The first /health answer is 503: nothing is closed.
    let (out, doc) = run(&c, &p, "tensafe-p1-resolve", &pg, &params);
    out.code(1);
    status(&doc, "health", "fail");
    status(&doc, "close", "skipped");
    assert!(
        !calls(&p)
            .iter()
            .any(|c| c.get(1).is_some_and(|a| a == "close")),
        "{:?}",
        calls(&p)
    );
    // Healthy now.
    let (out, doc) = run(&c, &p, "tensafe-p1-resolve", &pg, &params);
    out.code(0);
    for id in ["notes", "close", "statuspage", "postmortem"] {
        status(&doc, id, "ok");
    }
    let calls = calls(&p);
    let close = call(
        &calls,
        &[
            "incident",
            "close",
            "INC-1001",
            "--resolution",
            "Rolled back to v1.2.3, fixed in v1.2.4",
        ],
    );
    assert!(
        call(
            &calls,
            &[
                "incident",
                "update",
                "INC-1001",
                "--notes",
                "Root cause: helm release v1.2.4 shipped without TENSAFE_KMS_KEY_ID"
            ]
        ) < close
    );
    assert!(close < call(&calls, &["statuspage", "update", "--status", "Resolved"]));
    assert!(
        close
            < call(
                &calls,
                &[
                    "incident",
                    "postmortem",
                    "schedule",
                    "INC-1001",
                    "--date",
                    "tomorrow 10:00"
                ]
            )
    );
}
