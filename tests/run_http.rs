//! `opsctl run` against real local HTTP(S) servers and real processes: concurrency,
//! flow, retries, timeouts, confirmation, redaction, the record. Every assertion is on
//! what the server saw or what opsctl reported — never on timing.

use std::time::Duration;

use serde_json::Value;

use crate::support::http_server::{CountingListener, Route, TestServer, closed_port};
use crate::support::{Out, Project};

fn steps_by_id(doc: &Value) -> std::collections::HashMap<String, Value> {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or_default().to_string(), s.clone()))
        .collect()
}

fn run_json(
    p: &Project,
    name: &str,
    extra: &[&str],
) -> (Out, std::collections::HashMap<String, Value>) {
    let out = p
        .opsctl()
        .args(["run", name, "--format", "json"])
        .args(extra)
        .run();
    let steps = steps_by_id(&out.json());
    (out, steps)
}

#[test]
fn independent_steps_run_concurrently() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/slow").delay(Duration::from_millis(300)),
    ]);
    let mut yaml = String::from("name: many\ntitle: Forty independent checks\nsteps:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  - id: c{i}\n    http: {{ url: \"{}/slow\" }}\n",
            server.url()
        ));
    }
    let p = Project::new();
    p.runbook("many", &yaml);
    let (out, steps) = run_json(&p, "many", &[]);
    out.code(0);
    assert_eq!(steps.len(), 40);
    assert!(steps.values().all(|s| s["status"] == "ok"));
    assert_eq!(server.hits("GET", "/slow"), 40);
    // All forty are in flight together: one round, about one answer's time.
    assert!(
        server.max_in_flight() >= 38,
        "the server saw at most {} requests at once",
        server.max_in_flight()
    );
}

#[test]
fn max_parallel_bounds_concurrency() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/slow").delay(Duration::from_millis(200)),
    ]);
    let mut yaml = String::from("name: bounded\ntitle: Bounded\nsteps:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  - id: c{i}\n    http: {{ url: \"{}/slow\" }}\n",
            server.url()
        ));
    }
    let p = Project::new();
    p.runbook("bounded", &yaml);
    let (out, _) = run_json(&p, "bounded", &["--max-parallel", "5"]);
    out.code(0);
    assert!(
        server.max_in_flight() <= 5,
        "saw {}",
        server.max_in_flight()
    );
    assert!(
        server.max_in_flight() >= 4,
        "saw {}",
        server.max_in_flight()
    );
}

#[test]
fn flow_semantics_fail_skip_when_capture() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/down").status(503).body("maintenance"),
        Route::new("GET", "/info").json(serde_json::json!({"version": "1.4.2", "replicas": 3})),
        Route::new("GET", "/echo"),
    ]);
    let url = server.url();
    let p = Project::new();
    p.runbook(
        "flow",
        &format!(
            r#"name: flow
title: Flow
steps:
  - id: health
    http: {{ url: "{url}/down" }}
    expect: ["status == 200"]
  - id: dependent
    needs: [health]
    http: {{ url: "{url}/echo?from=dependent" }}
  - id: grandchild
    needs: [dependent]
    http: {{ url: "{url}/echo?from=grandchild" }}
  - id: on-failure
    needs: [health]
    when: steps.health.status == 'fail'
    http: {{ url: "{url}/echo?from=on-failure" }}
  - id: not-on-success
    needs: [health]
    when: steps.health.status == 'ok'
    http: {{ url: "{url}/echo?from=not-on-success" }}
  - id: info
    http: {{ url: "{url}/info" }}
    capture: {{ version: "json.version", replicas: "json.replicas" }}
  - id: use-capture
    needs: [info]
    http: {{ url: "{url}/echo?v=${{{{ steps.info.outputs.version }}}}&n=${{{{ steps.info.outputs.replicas * 2 }}}}" }}
"#
        ),
    );
    let (out, steps) = run_json(&p, "flow", &[]);
    out.code(1);
    assert_eq!(steps["health"]["status"], "fail");
    assert!(
        steps["health"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("status = 503")
    );
    assert_eq!(steps["dependent"]["status"], "skipped");
    assert_eq!(steps["grandchild"]["status"], "skipped");
    assert_eq!(
        steps["grandchild"]["cause"], "health",
        "skips trace back to the failure"
    );
    assert_eq!(steps["on-failure"]["status"], "ok");
    assert_eq!(steps["not-on-success"]["status"], "skipped");
    assert_eq!(steps["use-capture"]["status"], "ok");
    let queries: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(queries.contains(&"from=on-failure".to_string()));
    assert!(queries.contains(&"v=1.4.2&n=6".to_string()), "{queries:?}");
    assert!(!queries.iter().any(|q| q.contains("dependent")
        || q.contains("grandchild")
        || q.contains("not-on-success")));
    assert_eq!(steps["health"]["outputs"]["status"], 503);
}

#[test]
fn retry_until_succeeds_on_the_third_try() {
    let server = TestServer::start_blocking(vec![Route::new("GET", "/ready").sequence(vec![
        (200, r#"{"ready": 1, "desired": 3}"#.into()),
        (200, r#"{"ready": 2, "desired": 3}"#.into()),
        (200, r#"{"ready": 3, "desired": 3}"#.into()),
    ])]);
    let p = Project::new();
    p.runbook(
        "wait",
        &format!(
            "name: wait\ntitle: Wait\nsteps:\n  - id: rollout\n    http: {{ url: \"{}/ready\" }}\n    retry: {{ attempts: 5, delay: 50ms, until: \"json.ready == json.desired\" }}\n",
            server.url()
        ),
    );
    let (out, steps) = run_json(&p, "wait", &[]);
    out.code(0);
    assert_eq!(steps["rollout"]["status"], "ok");
    assert_eq!(steps["rollout"]["attempts"], 3);
    assert_eq!(server.hits("GET", "/ready"), 3);
}

#[test]
fn retry_gives_up_with_the_last_result() {
    let server = TestServer::start_blocking(vec![Route::new("GET", "/flaky").status(500)]);
    let p = Project::new();
    p.runbook(
        "flaky",
        &format!(
            "name: flaky\ntitle: F\nsteps:\n  - id: call\n    http: {{ url: \"{}/flaky\" }}\n    retry: {{ attempts: 3, delay: 10ms }}\n",
            server.url()
        ),
    );
    let (out, steps) = run_json(&p, "flaky", &[]);
    out.code(1);
    assert_eq!(steps["call"]["status"], "fail");
    assert_eq!(steps["call"]["attempts"], 3);
    assert_eq!(server.hits("GET", "/flaky"), 3);
}

#[test]
fn a_timeout_ends_the_step_as_error() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/hang").delay(Duration::from_secs(5)),
    ]);
    let p = Project::new();
    p.runbook(
        "slow",
        &format!(
            "name: slow\ntitle: S\nsteps:\n  - id: call\n    http: {{ url: \"{}/hang\" }}\n    timeout: 500ms\n  - id: after\n    needs: [call]\n    tcp: {{ host: 127.0.0.1, port: 1 }}\n",
            server.url()
        ),
    );
    let (out, steps) = run_json(&p, "slow", &[]);
    out.code(1);
    assert_eq!(steps["call"]["status"], "error");
    assert_eq!(steps["call"]["message"], "timed out after 500ms");
    assert_eq!(steps["after"]["status"], "skipped");
}

#[test]
fn unreachable_service_is_an_error_with_a_one_line_cause() {
    let port = closed_port();
    let p = Project::new();
    p.runbook(
        "down",
        &format!("name: down\ntitle: D\nsteps:\n  - id: call\n    http: {{ url: \"http://127.0.0.1:{port}/x\" }}\n"),
    );
    let (out, steps) = run_json(&p, "down", &[]);
    out.code(1);
    assert_eq!(steps["call"]["status"], "error");
    let msg = steps["call"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("refused") && !msg.contains('\n'), "{msg}");
}

#[test]
fn metrics_thresholds_warn_and_bearer_auth_reaches_the_server() {
    let exposition = "# HELP queue_depth Jobs waiting\n# TYPE queue_depth gauge\nqueue_depth{status=\"pending\"} 150\nqueue_depth{status=\"failed\"} 7\n";
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/metrics").body(exposition),
        Route::new("GET", "/admin/dlq").json(serde_json::json!({"count": 2})),
    ]);
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "envs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\", auth: {{ bearer_env: API_TOKEN }} }}\n",
            server.url()
        ),
    )
    .runbook(
        "queue",
        r#"name: queue
title: Queue
steps:
  - id: depth
    metrics: { target: api, metric: queue_depth, labels: { status: pending } }
    warn_if: ["value > 100"]
    fail_if: ["value > 1000"]
  - id: all
    metrics: { target: api, metric: queue_depth, aggregate: count }
    expect: ["value == 2"]
  - id: dlq
    http: { target: api, path: /admin/dlq }
    expect: ["json.count == 2"]
"#,
    );
    p.opsctl()
        .args(["run", "queue", "--param", "x=1"])
        .run()
        .code(2)
        .stderr_has("unknown param `x`");
    let out = p
        .opsctl()
        .args(["run", "queue", "--format", "json"])
        .env("API_TOKEN", "tok-123456")
        .run();
    out.code(0);
    let steps2 = steps_by_id(&out.json());

    assert_eq!(steps2["depth"]["status"], "warn");
    assert_eq!(steps2["depth"]["outputs"]["value"], 150);
    assert_eq!(steps2["all"]["status"], "ok");
    let dlq = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/admin/dlq")
        .expect("dlq request");
    assert_eq!(dlq.header("authorization"), Some("Bearer tok-123456"));
}

#[test]
fn exec_exit_code_and_output_are_assertable() {
    let p = Project::new();
    p.runbook(
        "cmd",
        r#"name: cmd
title: Commands
steps:
  - id: three
    exec: { command: [sh, -c, "echo out; echo err >&2; exit 3"], readonly: true }
    expect: ["exit_code == 3", "stdout == 'out\n'", "'err' in stderr"]
  - id: failing
    exec: { command: ["false"], readonly: true }
  - id: shell
    exec: { shell: "echo $GREETING", env: { GREETING: hello }, readonly: true }
    expect: ["stdout | trim == 'hello'"]
"#,
    );
    let (out, steps) = run_json(&p, "cmd", &[]);
    out.code(1);
    assert_eq!(steps["three"]["status"], "ok");
    assert_eq!(steps["three"]["outputs"]["exit_code"], 3);
    assert_eq!(steps["failing"]["status"], "fail");
    assert_eq!(steps["failing"]["message"], "exit code 1 (expected 0)");
    assert_eq!(steps["shell"]["status"], "ok");
}

#[test]
fn exec_timeout_kills_the_whole_process_group() {
    let p = Project::new();
    let pidfile = p.path().join("child.pid");
    p.runbook(
        "hang",
        &format!(
            "name: hang\ntitle: H\nsteps:\n  - id: hang\n    exec: {{ shell: \"sleep 30 & echo $! > {}; wait\", readonly: true }}\n    timeout: 500ms\n",
            pidfile.display()
        ),
    );
    let (out, steps) = run_json(&p, "hang", &[]);
    out.code(1);
    assert_eq!(steps["hang"]["status"], "error");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    // The grandchild `sleep` must be gone (give the kernel a moment to reap it).
    let mut alive = true;
    for _ in 0..50 {
        // SAFETY: signal 0 only checks that the process exists.
        alive = unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive,
        "the command's child process {pid} survived the timeout"
    );
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn mutating_project(server: &TestServer) -> Project {
    let p = Project::new();
    p.runbook(
        "fix",
        &format!(
            r#"name: fix
title: Fix
steps:
  - id: check
    http: {{ url: "{url}/state" }}
  - id: restart
    needs: [check]
    http: {{ url: "{url}/restart", method: POST, json: {{ reason: "opsctl" }} }}
  - id: verify
    needs: [restart]
    http: {{ url: "{url}/state?after=restart" }}
"#,
            url = server.url()
        ),
    );
    p
}

#[test]
fn without_a_terminal_and_without_yes_mutations_never_run() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/state"),
        Route::new("POST", "/restart"),
    ]);
    let p = mutating_project(&server);
    let out = p.opsctl().args(["run", "fix"]).run();
    out.code(0)
        .stdout_has("restart")
        .stdout_has("no terminal to confirm on and no --yes");
    assert_eq!(
        server.hits("POST", "/restart"),
        0,
        "the mutation reached the server"
    );
    assert_eq!(server.hits("GET", "/state"), 1);
    let (out, steps) = run_json(&p, "fix", &[]);
    out.code(0);
    assert_eq!(steps["restart"]["status"], "skipped");
    assert_eq!(steps["verify"]["status"], "skipped");
    assert_eq!(server.hits("POST", "/restart"), 0);

    // Answering on a pipe is not a terminal either: still not run.
    p.opsctl().args(["run", "fix"]).stdin("y\n").run().code(0);
    assert_eq!(server.hits("POST", "/restart"), 0);

    let (out, steps) = run_json(&p, "fix", &["--yes"]);
    out.code(0);
    assert_eq!(steps["restart"]["status"], "ok");
    assert_eq!(steps["verify"]["status"], "ok");
    assert_eq!(server.hits("POST", "/restart"), 1);
}

#[test]
fn plan_runs_read_only_steps_and_sends_no_mutation() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/state"),
        Route::new("POST", "/restart"),
    ]);
    let p = mutating_project(&server);
    let out = p
        .opsctl()
        .args(["plan", "fix", "--yes", "--format", "json"])
        .run();
    out.code(0);
    let doc = out.json();
    assert_eq!(doc["mode"], "plan");
    let steps = steps_by_id(&doc);
    assert_eq!(steps["check"]["status"], "ok");
    assert_eq!(steps["restart"]["plan"]["would_run"], true);
    assert_eq!(
        steps["verify"]["plan"]["would_run"], true,
        "what follows a planned mutation is described, not executed"
    );

    assert_eq!(steps["restart"]["plan"]["args"]["json"]["reason"], "opsctl");
    assert_eq!(
        server.hits("GET", "/state"),
        1,
        "plan runs the read-only steps for real"
    );
    assert_eq!(server.hits("POST", "/restart"), 0, "plan sent a mutation");
    let human = p.opsctl().args(["plan", "fix"]).run();
    human
        .code(0)
        .stdout_has("Not executed by the plan")
        .stdout_has("would run")
        .stdout_has("POST");
    assert_eq!(server.hits("POST", "/restart"), 0);
}

#[test]
fn secrets_never_appear_in_output_json_or_record() {
    const CANARY: &str = "canary-b5e0f2c4-do-not-print";
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/whoami").body(format!("you sent {CANARY}")),
        Route::new("POST", "/rotate"),
    ]);
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!("envs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\", auth: {{ bearer_env: ADMIN_TOKEN }} }}\n", server.url()),
    )
    .runbook(
        "rotate",
        r#"name: rotate
title: Rotate
steps:
  - id: whoami
    http: { target: api, path: /whoami }
    capture: { echoed: "body" }
  - id: new-key
    secret.generate: { bytes: 32 }
  - id: push
    needs: [new-key]
    http: { target: api, path: /rotate, method: POST, json: { key: "${{ steps['new-key'].outputs.value }}" } }
  - id: show
    needs: [new-key, whoami]
    exec:
      command: [sh, -c, 'echo "$KEY $WHO"']
      env: { KEY: "${{ steps['new-key'].outputs.value }}", WHO: "${{ steps.whoami.outputs.echoed }}" }
      readonly: true
    expect: ["exit_code == 1"]
"#,
    );
    let record = p.path().join("record.jsonl");
    let out = p
        .opsctl()
        .args(["run", "rotate", "--yes", "--format", "json", "--record"])
        .arg(&record)
        .env("ADMIN_TOKEN", CANARY)
        .run();
    out.code(1);
    let rotate = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/rotate")
        .expect("rotate request");
    let sent: Value = serde_json::from_str(&rotate.body).expect("json body");
    let key = sent["key"].as_str().expect("key").to_string();
    assert!(
        key.len() >= 40,
        "the generated secret reached the server: {key}"
    );
    assert_eq!(
        rotate.header("authorization"),
        Some(format!("Bearer {CANARY}").as_str())
    );
    let record_text = std::fs::read_to_string(&record).expect("record");
    for secret in [CANARY, key.as_str()] {
        out.never_shows(secret);
        assert!(!record_text.contains(secret), "the record shows a secret");
    }
    assert!(out.stdout.contains("***"));
    let human = p
        .opsctl()
        .args(["run", "rotate", "--yes"])
        .env("ADMIN_TOKEN", CANARY)
        .run();
    human.never_shows(CANARY);
}

#[test]
fn the_record_rebuilds_the_timeline() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/a"),
        Route::new("GET", "/b").status(500),
    ]);
    let p = Project::new();
    p.runbook(
        "inner",
        &format!("name: inner\ntitle: Inner\nsteps:\n  - id: probe\n    http: {{ url: \"{}/a\" }}\n", server.url()),
    )
    .runbook(
        "outer",
        &format!(
            "name: outer\ntitle: Outer\nsteps:\n  - id: a\n    http: {{ url: \"{url}/a\" }}\n  - id: b\n    needs: [a]\n    http: {{ url: \"{url}/b\" }}\n  - id: nested\n    runbook: {{ name: inner }}\n    expect: [\"outputs.steps.probe.status == 'ok'\"]\n",
            url = server.url()
        ),
    );
    let out = p.opsctl().args(["run", "outer"]).run();
    out.code(1).stdout_has("Record: ");
    let runs = p.path().join(".state/opsctl/runs");
    let files: Vec<_> = std::fs::read_dir(&runs)
        .expect("record dir")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).expect("record");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"record"));
    assert_eq!(kinds.get(1), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let started_a = events
        .iter()
        .position(|e| e["event"] == "step_started" && e["path"] == "a")
        .expect("a started");
    let finished_a = events
        .iter()
        .position(|e| e["event"] == "step_finished" && e["path"] == "a")
        .expect("a finished");
    let started_b = events
        .iter()
        .position(|e| e["event"] == "step_started" && e["path"] == "b")
        .expect("b started");
    assert!(
        started_a < finished_a && finished_a < started_b,
        "b started before a finished"
    );
    let b = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["path"] == "b")
        .expect("b");
    assert_eq!(b["status"], "fail");
    assert!(b["at"].as_str().is_some());
    assert_eq!(b["outputs"]["status"], 500);
    let started = events
        .iter()
        .find(|e| e["event"] == "step_started" && e["path"] == "b")
        .expect("b");
    assert_eq!(started["args"]["url"], format!("{}/b", server.url()));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_finished" && e["path"] == "nested/probe"),
        "nested steps are recorded"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "run_started" && e["parent"] == "nested")
    );
    assert!(events[0]["user"].is_string() && events[0]["run_id"].is_string());
}

#[test]
fn tls_and_tcp_checks() {
    let fresh = TestServer::start_tls_with_cert_blocking(vec![], "api.internal", 20);
    let expired = TestServer::start_tls_with_cert_blocking(vec![], "old.internal", -3);
    let closed = closed_port();
    let open = CountingListener::start_blocking();
    let p = Project::new();
    p.runbook(
        "certs",
        &format!(
            r#"name: certs
title: Certificates
steps:
  - id: fresh
    tls: {{ host: 127.0.0.1, port: {f} }}
    warn_if: ["days_left < 30"]
    fail_if: ["days_left < 3"]
  - id: expired
    tls: {{ host: 127.0.0.1, port: {e} }}
    fail_if: ["days_left < 3"]
  - id: open
    tcp: {{ host: 127.0.0.1, port: {o} }}
  - id: closed
    tcp: {{ host: 127.0.0.1, port: {c} }}
  - id: expect-closed
    tcp: {{ host: 127.0.0.1, port: {c} }}
    expect: ["not connected"]
"#,
            f = fresh.addr().port(),
            e = expired.addr().port(),
            o = open.port(),
            c = closed
        ),
    );
    let (out, steps) = run_json(&p, "certs", &[]);
    out.code(1);
    assert_eq!(steps["fresh"]["status"], "warn");
    let days = steps["fresh"]["outputs"]["days_left"]
        .as_i64()
        .expect("days_left");
    assert!((19..=20).contains(&days), "days_left = {days}");
    assert!(
        steps["fresh"]["outputs"]["subject"]
            .as_str()
            .unwrap_or("")
            .contains("api.internal")
    );
    assert_eq!(steps["expired"]["status"], "fail");
    assert!(
        steps["expired"]["outputs"]["days_left"]
            .as_i64()
            .expect("days")
            < 0
    );
    assert_eq!(steps["open"]["status"], "ok");
    assert_eq!(steps["closed"]["status"], "fail");
    assert_eq!(steps["expect-closed"]["status"], "ok");
    assert!(open.wait_for_connections(1, Duration::from_secs(5)) >= 1);
}

#[test]
fn https_with_insecure_and_with_a_target_ca() {
    let server = TestServer::start_tls_blocking(vec![Route::new("GET", "/health")]);
    let p = Project::new();
    p.file("ca.pem", &server.ca_pem().expect("pem"));
    p.file(
        "opsctl.yaml",
        &format!(
            "envs:\n  prod:\n    http:\n      trusted: {{ base_url: \"https://localhost:{port}\", ca_file: ca.pem }}\n",
            port = server.addr().port()
        ),
    )
    .runbook(
        "secure",
        &format!(
            "name: secure\ntitle: S\nsteps:\n  - id: untrusted\n    http: {{ url: \"{u}/health\" }}\n  - id: insecure\n    http: {{ url: \"{u}/health\", insecure: true }}\n  - id: trusted\n    http: {{ target: trusted, path: /health }}\n",
            u = server.url()
        ),
    );
    let (out, steps) = run_json(&p, "secure", &[]);
    out.code(1);
    assert_eq!(steps["untrusted"]["status"], "error");
    assert_eq!(steps["insecure"]["status"], "ok");
    assert_eq!(steps["trusted"]["status"], "ok");
}

#[test]
fn manual_steps_need_a_person_or_yes_manual() {
    let p = Project::new();
    p.runbook(
        "human",
        "name: human\ntitle: H\nsteps:\n  - id: announce\n    manual: { instructions: \"Post in #incident\" }\n  - id: after\n    needs: [announce]\n    exec: { command: [\"true\"], readonly: true }\n",
    );
    let (out, steps) = run_json(&p, "human", &["--yes"]);
    out.code(0);
    assert_eq!(
        steps["announce"]["status"], "skipped",
        "--yes does not confirm manual steps"
    );
    assert_eq!(steps["after"]["status"], "skipped");
    let (out, steps) = run_json(&p, "human", &["--yes-manual"]);
    out.code(0);
    assert_eq!(steps["announce"]["status"], "ok");
    assert_eq!(steps["announce"]["outputs"]["confirmed"], true);
    assert_eq!(steps["after"]["status"], "ok");
}

#[test]
fn only_and_tags_select_steps_with_their_ancestors() {
    let server = TestServer::start_blocking(vec![Route::new("GET", "/x")]);
    let url = server.url();
    let p = Project::new();
    p.runbook(
        "sel",
        &format!(
            "name: sel\ntitle: Sel\nsteps:\n  - id: base\n    http: {{ url: \"{url}/x?base\" }}\n  - id: top\n    needs: [base]\n    tags: [quick]\n    http: {{ url: \"{url}/x?top\" }}\n  - id: other\n    http: {{ url: \"{url}/x?other\" }}\n"
        ),
    );
    let (out, steps) = run_json(&p, "sel", &["--only", "top"]);
    out.code(0);
    assert_eq!(steps.len(), 2);
    assert!(steps.contains_key("base") && steps.contains_key("top"));
    let (out, steps) = run_json(&p, "sel", &["--tags", "quick"]);
    out.code(0);
    assert_eq!(steps.len(), 2);
    p.opsctl()
        .args(["run", "sel", "--only", "tpo"])
        .run()
        .code(2)
        .stderr_has("did you mean `top`?");
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.query.as_deref() == Some("other"))
            .count(),
        0
    );
}

#[test]
fn ctrl_c_cancels_in_flight_steps_flushes_the_record_and_exits_130() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/fast"),
        Route::new("GET", "/slow").delay(Duration::from_secs(20)),
    ]);
    let p = Project::new();
    p.runbook(
        "long",
        &format!(
            "name: long\ntitle: L\nsteps:\n  - id: fast\n    http: {{ url: \"{u}/fast\" }}\n  - id: slow\n    http: {{ url: \"{u}/slow\" }}\n  - id: later\n    needs: [slow]\n    http: {{ url: \"{u}/fast?later\" }}\n",
            u = server.url()
        ),
    );
    let record = p.path().join("r.jsonl");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .current_dir(p.path())
        .args(["run", "long", "--record"])
        .arg(&record)
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", p.path().join(".state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the slow request is in flight at the server.
    for _ in 0..200 {
        if server.hits("GET", "/slow") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.hits("GET", "/slow"), 1);
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&record).expect("record");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let slow = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["path"] == "slow")
        .expect("slow recorded");
    assert_eq!(slow["status"], "cancelled");
    let later = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["path"] == "later")
        .expect("later recorded");
    assert_eq!(later["status"], "cancelled");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "cancelled");
}

#[test]
fn an_expression_error_names_runbook_step_and_field() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/x").json(serde_json::json!({"items": []})),
    ]);
    let p = Project::new();
    p.runbook(
        "exprs",
        &format!(
            "name: exprs\ntitle: E\nsteps:\n  - id: probe\n    http: {{ url: \"{}/x\" }}\n    expect: [\"json.items[0].ready\"]\n",
            server.url()
        ),
    );
    let (out, steps) = run_json(&p, "exprs", &[]);
    out.code(1);
    assert_eq!(steps["probe"]["status"], "error");
    let msg = steps["probe"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("expect of step `probe` in runbook `exprs`"),
        "{msg}"
    );
    assert!(msg.contains("json.items[0].ready"), "{msg}");
}

#[test]
fn plan_reports_every_mutation_with_its_verdict() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/pods").json(serde_json::json!({"crashlooping": 0})),
        Route::new("POST", "/restart"),
        Route::new("POST", "/page"),
    ]);
    let url = server.url();
    let p = Project::new();
    p.runbook(
        "branches",
        &format!(
            r#"name: branches
title: B
steps:
  - id: pods
    http: {{ url: "{url}/pods" }}
  - id: restart
    needs: [pods]
    when: steps.pods.outputs.json.crashlooping > 0
    http: {{ url: "{url}/restart", method: POST }}
  - id: decide
    needs: [pods]
    manual: {{ instructions: "Page the database team?" }}
  - id: page
    needs: [decide]
    http: {{ url: "{url}/page", method: POST }}
"#
        ),
    );
    let out = p
        .opsctl()
        .args(["plan", "branches", "--format", "json"])
        .run();
    out.code(0);
    let steps = steps_by_id(&out.json());
    assert_eq!(steps["pods"]["status"], "ok");
    assert_eq!(
        steps["restart"]["plan"]["would_run"], false,
        "its when is false"
    );
    assert_eq!(steps["decide"]["plan"]["would_run"], true);
    assert_eq!(
        steps["page"]["plan"]["would_run"], true,
        "a mutation after a manual step is still previewed"
    );
    assert_eq!(
        server.hits("POST", "/restart") + server.hits("POST", "/page"),
        0
    );
}

#[test]
fn max_parallel_bounds_nested_runs_too() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/slow").delay(Duration::from_millis(200)),
    ]);
    let url = server.url();
    let p = Project::new();
    let mut inner = String::from("name: inner\ntitle: I\nsteps:\n");
    for i in 0..4 {
        inner.push_str(&format!(
            "  - id: s{i}\n    http: {{ url: \"{url}/slow\" }}\n"
        ));
    }
    p.runbook("inner", &inner).runbook(
        "outer",
        "name: outer\ntitle: O\nsteps:\n  - id: a\n    runbook: { name: inner }\n  - id: b\n    runbook: { name: inner }\n",
    );
    let (out, steps) = run_json(&p, "outer", &["--max-parallel", "2"]);
    out.code(0);
    assert_eq!(steps["a"]["status"], "ok");
    assert_eq!(server.hits("GET", "/slow"), 8);
    assert!(
        server.max_in_flight() <= 2,
        "saw {} at once",
        server.max_in_flight()
    );
    assert_eq!(server.max_in_flight(), 2);
}

#[test]
fn exec_with_a_background_child_ends_with_its_command() {
    let p = Project::new();
    p.runbook(
        "bg",
        "name: bg\ntitle: B\nsteps:\n  - id: start\n    exec: { shell: \"sleep 100 & echo started\", readonly: true }\n    timeout: 5s\n    expect: [\"stdout | trim == 'started'\"]\n",
    );
    let (out, steps) = run_json(&p, "bg", &[]);
    out.code(0);
    assert_eq!(steps["start"]["status"], "ok", "{:?}", steps["start"]);
}
