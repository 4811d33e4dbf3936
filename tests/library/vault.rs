//! Staged outages of the vault system (see docs/seed-coverage.md): LLM Data Vault on
//! Kubernetes (seed 003), its runbooks in runbooks/vault/ against the test Kubernetes API
//! server (tests/fixtures/kube/vault.yaml), the real Postgres and Redis, and a local HTTP
//! server standing for the Vault Server API.

use std::path::Path;

use serde_json::Value;

use crate::kube::Cluster;
use crate::support::http_server::{Route, TestServer, closed_port};
use crate::support::{Out, Project, repo, service_url};

/// The AWS secret key the fixture's pods carry in their environment: no output or record
/// may ever show it.
const CANARY: &str = "vAuLtCaNaRy-7f3e9d1c-AWS-SECRET-do-not-print";

fn cluster() -> Cluster {
    Cluster::with_vars(
        &crate::kube::fixture("vault.yaml"),
        &[],
        &[("AWS_CANARY", CANARY.to_string())],
    )
}

/// A project with every runbook of runbooks/vault/ and an environment whose targets are
/// the local services: `api`, `admin`, `metrics`, `prometheus` and `webhook` → `api`,
/// `primary` → `$PG_URL`, `cache` → `$CACHE_URL`, Kubernetes namespace llm-data-vault.
fn project(api: &TestServer) -> Project {
    let p = Project::new();
    for entry in std::fs::read_dir(repo().join("runbooks/vault")).expect("runbooks/vault") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        p.file(
            &format!("runbooks/{name}"),
            &std::fs::read_to_string(&path).expect("runbook"),
        );
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [runbooks]
envs:
  prod:
    vars: {{ incident_channel: "#platform-team" }}
    http:
      api: {{ base_url: "{u}" }}
      admin: {{ base_url: "{u}", auth: {{ bearer_env: VAULT_TOKEN }} }}
      metrics: {{ base_url: "{u}" }}
      prometheus: {{ base_url: "{u}" }}
      webhook: {{ url: "{u}/hook" }}
    postgres:
      primary: {{ url_env: PG_URL }}
    redis:
      cache: {{ url_env: CACHE_URL }}
    kubernetes: {{ namespace: llm-data-vault }}
"##,
            u = api.url()
        ),
    );
    p
}

/// `opsctl run NAME --format json --record FILE` plus `extra`, against the cluster and the
/// database at `pg`; returns the output, the JSON document and the record's text.
fn run(c: &Cluster, p: &Project, name: &str, pg: &str, extra: &[&str]) -> (Out, Value, String) {
    let record = p.path().join(format!("{name}.jsonl"));
    let out = p
        .opsctl()
        .args(["run", name, "--format", "json", "--record"])
        .arg(&record)
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PG_URL", pg)
        .env("CACHE_URL", service_url("OPSCTL_TEST_REDIS_URL"))
        .run();
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let doc = out.json();
    let record = std::fs::read_to_string(&record).expect("record");
    (out, doc, record)
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[track_caller]
fn status(doc: &Value, id: &str, expected: &str) {
    assert_eq!(step(doc, id)["status"], expected, "step {id}: {doc}");
}

/// Index of the first record event `event` of step `id`.
fn event_at(record: &str, event: &str, id: &str) -> usize {
    record
        .lines()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            v["event"] == event && v["id"] == id
        })
        .unwrap_or_else(|| panic!("no {event} of {id} in the record:\n{record}"))
}

fn restarted_at(c: &Cluster) -> Value {
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "vault-server",
            "-n",
            "llm-data-vault",
            "-o",
            "json",
        ])
        .json();
    dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].clone()
}

fn healthy_api(first_health: u16) -> TestServer {
    TestServer::start_blocking(vec![
        Route::new("GET", "/health").sequence(vec![
            (first_health, r#"{"status": "unhealthy"}"#.into()),
            (200, r#"{"status": "healthy"}"#.into()),
        ]),
        Route::new("GET", "/health/ready").json(serde_json::json!({"status": "ready"})),
    ])
}

#[test]
fn sev1_finds_the_crash_loop_saves_the_fatal_line_first_then_restarts_and_waits_for_health() {
    let api = healthy_api(503);
    let c = cluster();
    let p = project(&api);
    let (_, doc, record) = run(
        &c,
        &p,
        "vault-sev1-outage",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--yes"],
    );
    // The diagnosis: every pod crash-looping, the database answering.
    status(&doc, "pods", "fail");
    assert_eq!(step(&doc, "pods")["outputs"]["crashlooping"], 3, "{doc}");
    status(&doc, "db", "ok");
    status(&doc, "health", "fail");
    // The FATAL line of the previous containers, found and kept in the record.
    status(&doc, "crash-logs", "ok");
    let fatal = step(&doc, "crash-logs")["outputs"]["fatal"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        fatal.contains("FATAL: configuration could not be loaded"),
        "{doc}"
    );
    assert!(record.contains("FATAL: configuration could not be loaded"));
    // Saved before anything else: the logs were read before the restart started, and the
    // first write the API server saw came after the `--previous` log reads.
    assert!(
        event_at(&record, "step_finished", "crash-logs")
            < event_at(&record, "step_started", "restart")
    );
    let reqs = c.server.requests();
    let last_previous = reqs
        .iter()
        .rposition(|r| r.path.ends_with("/log") && r.query.contains("previous=true"))
        .expect("previous logs read");
    let first_write = reqs
        .iter()
        .position(|r| r.method != "GET" && r.path.contains("/deployments/"))
        .expect("a write to the deployment");
    assert!(
        last_previous < first_write,
        "a write before the logs were saved"
    );
    // The restart the seed calls for, then its postcondition.
    status(&doc, "restart", "ok");
    assert!(restarted_at(&c).is_string(), "no restartedAt");
    status(&doc, "rollout", "ok");
    status(&doc, "health-back", "ok");
    assert_eq!(api.hits("GET", "/health"), 2);
    status(&doc, "db-down", "skipped");
}

#[test]
fn sev1_names_the_database_and_restarts_nothing_when_it_refuses_connections() {
    let api = healthy_api(503);
    let c = cluster();
    // PostgreSQL is down: its pod is not ready and its port refuses connections.
    c.server
        .upsert(
            "apiVersion: v1\nkind: Pod\nmetadata: { name: postgres-0, namespace: database, labels: { app: postgres } }\nspec: { nodeName: node-1, containers: [ { name: postgres, image: 'postgres:15' } ] }\nstatus: { phase: Running, conditions: [ { type: Ready, status: 'False' } ], containerStatuses: [ { name: postgres, ready: false, restartCount: 4, state: { waiting: { reason: CrashLoopBackOff } } } ] }\n",
        )
        .expect("postgres-0");
    let p = project(&api);
    let before = c.server.writes();
    let down = format!("postgres://vault:pw@127.0.0.1:{}/vault", closed_port());
    let (_, doc, _) = run(
        &c,
        &p,
        "vault-sev1-outage",
        &down,
        &["--yes", "--yes-manual"],
    );
    status(&doc, "db", "error");
    status(&doc, "db-pods", "fail");
    // Named as the cause: the database hand-over ran, the restart did not.
    status(&doc, "db-down", "ok");
    let asked = step(&doc, "db-down")["outputs"].to_string();
    assert!(asked.contains("true"), "{doc}");
    status(&doc, "crash-logs", "ok");
    status(&doc, "restart", "skipped");
    status(&doc, "rollout", "skipped");
    assert_eq!(c.server.writes(), before, "something was restarted");
    assert!(restarted_at(&c).is_null());
}

#[test]
fn a_listener_where_the_database_should_be_is_not_a_healthy_database() {
    // The seed checks the database with `curl -s http://postgres:5432`: any listener there
    // "answers". An HTTP server stands where PostgreSQL should be; the runbook's query
    // fails, so the step ends `error` (not `ok`) and nothing is restarted.
    let impostor = TestServer::start_blocking(vec![Route::new("*", "/")]);
    let api = healthy_api(503);
    let c = cluster();
    let p = project(&api);
    let before = c.server.writes();
    let url = format!(
        "postgres://vault:pw@127.0.0.1:{}/vault?connect_timeout=5",
        impostor.addr().port()
    );
    let (_, doc, _) = run(&c, &p, "vault-sev1-outage", &url, &["--yes"]);
    assert!(impostor.connections() >= 1, "nothing reached the listener");
    status(&doc, "db", "error");
    status(&doc, "restart", "skipped");
    assert_eq!(c.server.writes(), before);
}

#[test]
fn jwt_rotation_writes_only_jwt_secret_in_the_vault_namespace_restarts_and_never_shows_it() {
    let api = healthy_api(200);
    let c = cluster();
    let p = project(&api);
    let old = c.object("v1", "secrets", "llm-data-vault", "vault-secrets");
    let (out, doc, record) = run(
        &c,
        &p,
        "vault-rotate-jwt-secret",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--yes", "--yes-manual"],
    );
    out.code(0);
    for id in [
        "check-secret",
        "set-secret",
        "keys-kept",
        "restart",
        "rollout",
        "verify-health",
        "verify-ready",
    ] {
        status(&doc, id, "ok");
    }
    let new = c.object("v1", "secrets", "llm-data-vault", "vault-secrets");
    let written = new["data"]["jwt-secret"].as_str().expect("jwt-secret");
    assert_ne!(written, old["data"]["jwt-secret"], "not rotated");
    // The other keys are there, unchanged.
    for key in ["database-url", "redis-url"] {
        assert_eq!(new["data"][key], old["data"][key], "{key} changed: {new}");
    }
    // Nothing went to kubectl's current namespace (`default`).
    assert!(
        c.server
            .get("v1", "secrets", "default", "vault-secrets")
            .is_none(),
        "a vault-secrets appeared in namespace default"
    );
    assert!(restarted_at(&c).is_string());
    // The new value: in no output, no record.
    use base64::Engine;
    let value = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(written)
            .expect("base64"),
    )
    .expect("utf-8");
    assert!(
        value.len() >= 32,
        "a 32-byte secret, base64: {}",
        value.len()
    );
    for text in [&out.stdout, &out.stderr, &record] {
        assert!(!text.contains(&value) && !text.contains(written));
    }
}

/// A stand-in `aws` CLI first on PATH: records its argv, prints a listing.
fn stand_in_aws(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("aws");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\necho '2026-01-01 10:00:00      12345 data/object-1'\n",
            dir.join("aws.argv").display()
        ),
    )
    .expect("write aws");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn s3_access_reads_the_names_of_the_aws_variables_never_their_values() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/health/detailed").json(
        serde_json::json!({"status": "healthy", "components": {"database": {"status": "healthy"}, "redis": {"status": "healthy"}, "storage": {"status": "healthy"}}}),
    )]);
    let c = cluster();
    // One pod that runs (the others crash-loop): the check execs in it.
    c.server
        .upsert(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{ name: vault-server-6d5f7c8b9-ready, namespace: llm-data-vault, labels: {{ app: vault-server }} }}\nspec: {{ nodeName: node-1, serviceAccountName: vault-server, containers: [ {{ name: vault-server, image: 'ghcr.io/your-org/llm-data-vault:v1.1.0', env: [ {{ name: AWS_ACCESS_KEY_ID, value: AKIAVAULTFIXTURE0001 }}, {{ name: AWS_SECRET_ACCESS_KEY, value: {CANARY} }}, {{ name: AWS_REGION, value: us-east-1 }} ] }} ] }}\nstatus: {{ phase: Running, conditions: [ {{ type: Ready, status: 'True' }} ], containerStatuses: [ {{ name: vault-server, ready: true, started: true, restartCount: 0, state: {{ running: {{ startedAt: now-1h }} }} }} ] }}\n"
        ))
        .expect("ready pod");
    let p = project(&api);
    let path = stand_in_aws(p.path());
    let record = p.path().join("s3.jsonl");
    let out = p
        .opsctl()
        .args(["run", "vault-s3-access", "--format", "json", "--record"])
        .arg(&record)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PATH", path)
        .run();
    out.code(0);
    let doc = out.json();
    let env = step(&doc, "aws-env");
    assert_eq!(env["status"], "ok", "{doc}");
    let names = env["outputs"]["names"].to_string();
    // The check did read the pod's environment ...
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        assert!(names.contains(name), "{name} not found: {env}");
    }
    // ... and no value left the pod.
    let record = std::fs::read_to_string(&record).expect("record");
    out.never_shows(CANARY).never_shows("AKIAVAULTFIXTURE0001");
    assert!(!record.contains(CANARY) && !record.contains("AKIAVAULTFIXTURE0001"));
    // The bucket listing went through the aws CLI, read-only.
    status(&doc, "s3-ls", "ok");
    assert_eq!(p.read("aws.argv").trim(), "s3 ls s3://your-bucket/");
    assert_eq!(
        step(&doc, "irsa-role")["outputs"]["role_arn"],
        "arn:aws:iam::123456789012:role/llm-data-vault"
    );
    status(&doc, "storage-health", "ok");
}

/// The three Vault Server pods of the fixture, replaced by running, ready ones with
/// metrics (200m CPU of a 1000m limit, 300Mi of 1Gi).
fn heal_pods(c: &Cluster) {
    for suffix in ["a1b2c", "d3e4f", "g5h6i"] {
        c.server
            .upsert(&format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{ name: vault-server-6d5f7c8b9-{suffix}, namespace: llm-data-vault, labels: {{ app: vault-server }}, annotations: {{ opsctl-test/cpu: 200m, opsctl-test/memory: 300Mi }} }}\nspec: {{ nodeName: node-1, containers: [ {{ name: vault-server, image: 'ghcr.io/your-org/llm-data-vault:v1.1.0', resources: {{ limits: {{ cpu: 1000m, memory: 1Gi }} }} }} ] }}\nstatus: {{ phase: Running, conditions: [ {{ type: Ready, status: 'True' }} ], containerStatuses: [ {{ name: vault-server, ready: true, started: true, restartCount: 0, state: {{ running: {{ startedAt: now-1h }} }} }} ] }}\n"
            ))
            .expect("pod");
    }
}

/// The Vault Server API, its metrics server and Prometheus in one: healthy endpoints,
/// the pool at 5 of 20, and every PromQL query answered `ratio`.
fn vault_api(ratio: &str) -> TestServer {
    TestServer::start_blocking(vec![
        Route::new("GET", "/health").json(serde_json::json!({"status": "healthy"})),
        Route::new("GET", "/health/live").json(serde_json::json!({"status": "ok"})),
        Route::new("GET", "/health/ready").json(serde_json::json!({"status": "ready"})),
        Route::new("GET", "/health/detailed").json(serde_json::json!({
            "status": "healthy", "version": "1.0.0",
            "components": {"database": {"status": "healthy", "latency_ms": 2},
                           "redis": {"status": "healthy", "latency_ms": 1},
                           "storage": {"status": "healthy"}}})),
        Route::new("GET", "/metrics").body(
            "# TYPE db_connections_active gauge\ndb_connections_active 5\n# TYPE db_connections_idle gauge\ndb_connections_idle 15\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 314572800\n",
        ),
        Route::new("GET", "/api/v1/query").json(serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, ratio]}]}})),
    ])
}

fn health(c: &Cluster, p: &Project) -> (Out, Value) {
    let out = p
        .opsctl()
        .args(["health", "--runbook", "vault-health", "--format", "json"])
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PG_URL", service_url("OPSCTL_TEST_DATABASE_URL"))
        .env("CACHE_URL", service_url("OPSCTL_TEST_REDIS_URL"))
        .run();
    let doc = out.json();
    (out, doc)
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {doc}"))
}

#[test]
fn health_grades_the_error_rate_against_1_and_5_percent_and_changes_nothing() {
    let c = cluster();
    heal_pods(&c);
    let before = c.server.writes();
    // 0.2% errors: healthy.
    let api = vault_api("0.002");
    let (out, doc) = health(&c, &project(&api));
    assert_eq!(doc["overall_status"], "healthy", "{doc}");
    out.code(0);
    assert_eq!(check(&doc, "db-pool")["outputs"]["pool_used_pct"], 25.0);
    // 2% errors: past the 1% warning, degraded.
    let api = vault_api("0.02");
    let (out, doc) = health(&c, &project(&api));
    assert_eq!(check(&doc, "error-rate")["status"], "warn", "{doc}");
    assert_eq!(doc["overall_status"], "degraded", "{doc}");
    out.code(1);
    // 6% errors: past the 5% critical threshold, unhealthy.
    let api = vault_api("0.06");
    let (out, doc) = health(&c, &project(&api));
    assert_eq!(check(&doc, "error-rate")["status"], "fail", "{doc}");
    assert_eq!(doc["overall_status"], "unhealthy", "{doc}");
    out.code(2);
    assert_eq!(
        c.server.writes(),
        before,
        "a health check wrote to the cluster"
    );
}

#[test]
fn health_of_the_crash_looping_cluster_is_unhealthy_on_the_pods() {
    let c = cluster();
    let api = vault_api("0.002");
    let (out, doc) = health(&c, &project(&api));
    out.code(2);
    assert_eq!(check(&doc, "pods")["status"], "fail", "{doc}");
    assert_eq!(check(&doc, "postgres")["status"], "ok", "{doc}");
    assert_eq!(check(&doc, "redis")["status"], "ok", "{doc}");
}

/// A stand-in `kubectl` first on PATH (for the steps that stream files through
/// `kubectl exec`): records its argv, prints a small complete plain-SQL dump for pg_dump
/// and the fixture's base64 `jwt-secret` for a jsonpath read of it.
fn stand_in_kubectl(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("kubectl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ncase \"$*\" in *pg_dump*) printf -- '--\\n-- PostgreSQL database dump\\n--\\nCREATE TABLE datasets (id uuid);\\n--\\n-- PostgreSQL database dump complete\\n--\\n';; *jwt-secret*) printf '%s' b2xkLWp3dC1zaWduaW5nLWtleS0xMjM0NTY3ODkwYWJjZGVm;; esac\n",
            dir.join("kubectl.argv").display()
        ),
    )
    .expect("write kubectl");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn maintenance_mode_is_turned_off_even_when_a_later_step_fails() {
    let c = cluster();
    heal_pods(&c);
    // The deployment is fully rolled out (all replicas ready).
    c.server
        .upsert(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: vault-server, namespace: llm-data-vault, labels: { app: vault-server } }\nspec:\n  replicas: 3\n  selector: { matchLabels: { app: vault-server } }\n  template:\n    metadata: { labels: { app: vault-server } }\n    spec: { containers: [ { name: vault-server, image: 'ghcr.io/your-org/llm-data-vault:v1.1.0' } ] }\nstatus: { observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 }\n",
        )
        .expect("deployment");
    let api = vault_api("0.002");
    let p = project(&api);
    let path = stand_in_kubectl(p.path());
    let record = p.path().join("m.jsonl");
    // No ./scripts/smoke-test.sh here: the smoke tests fail after maintenance mode is on.
    let out = p
        .opsctl()
        .args([
            "run",
            "vault-maintenance",
            "--yes",
            "--yes-manual",
            "--format",
            "json",
            "--record",
        ])
        .arg(&record)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PG_URL", service_url("OPSCTL_TEST_DATABASE_URL"))
        .env("CACHE_URL", service_url("OPSCTL_TEST_REDIS_URL"))
        .env("PATH", path)
        .run();
    out.code(1);
    let doc = out.json();
    status(&doc, "backup", "ok");
    status(&doc, "maintenance-on", "ok");
    status(&doc, "smoke", "error");
    status(&doc, "notify-done", "skipped");
    status(&doc, "maintenance-off", "ok");
    // The annotation was set, then removed.
    let set = c.server.requests().iter().any(|r| {
        r.method == "PATCH"
            && r.path.ends_with("/deployments/vault-server")
            && r.body.contains("maintenance")
    });
    assert!(set, "maintenance=true was never written");
    let dep = c.object("apps/v1", "deployments", "llm-data-vault", "vault-server");
    assert!(
        dep["metadata"]["annotations"]["maintenance"].is_null(),
        "maintenance mode left on: {dep}"
    );
    // The backup streamed pg_dump through `kubectl exec -i` (no TTY, which would turn the
    // dump's line endings into CRLF) into a complete local file.
    let argv = p.read("kubectl.argv");
    assert!(
        argv.contains("exec -i postgres-0 -n database -- pg_dump -U vault vault"),
        "{argv}"
    );
    assert!(!argv.contains(" -it ") && !argv.contains(" -t "), "{argv}");
    let dump = std::fs::read_dir(p.path())
        .expect("dir")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("backup-"))
        .expect("a backup-YYYYMMDD.sql file");
    assert!(
        std::fs::read_to_string(dump.path())
            .expect("dump")
            .contains("dump complete")
    );
}

/// The statuses of a run's steps that ended `error`, with their messages.
fn errors(doc: &Value) -> Vec<String> {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["status"] == "error")
        .map(|s| format!("{}: {}", s["id"], s["message"]))
        .collect()
}

#[test]
fn the_diagnosis_runbooks_run_clean_against_a_healthy_system_and_change_nothing() {
    let c = cluster();
    heal_pods(&c);
    let api = vault_api("0.002");
    let p = project(&api);
    let before = c.server.writes();
    let pg = service_url("OPSCTL_TEST_DATABASE_URL");
    for name in [
        "vault-sev2-high-error-rate",
        "vault-sev3-high-latency",
        "vault-db-connection-failures",
        "vault-resource-usage",
        "vault-logs",
        "vault-memory-issues",
        "vault-pod-wont-start",
    ] {
        // No --yes: whatever would change something is skipped, never done.
        let (_, doc, _) = run(&c, &p, name, &pg, &[]);
        assert_eq!(errors(&doc), Vec::<String>::new(), "{name}: {doc}");
        let ok: &[&str] = match name {
            "vault-sev2-high-error-rate" => &[
                "error-rate",
                "error-lines",
                "error-types",
                "endpoints",
                "rate-limit",
                "detailed",
            ],
            "vault-sev3-high-latency" => &["latency-p99", "db-latency", "pool", "slow-queries"],
            "vault-db-connection-failures" => &[
                "connect",
                "connections",
                "locks",
                "postgres-pod",
                "app-errors",
            ],
            "vault-resource-usage" => &["top-pods", "top-nodes", "pods"],
            "vault-memory-issues" => &["usage", "oom", "rss"],
            _ => &[],
        };
        for id in ok {
            status(&doc, id, "ok");
        }
    }
    assert_eq!(
        c.server.writes(),
        before,
        "a diagnosis wrote to the cluster"
    );
}

#[test]
fn oom_killed_pods_get_the_2gi_limit_after_their_logs_are_saved_then_the_rollout() {
    let c = cluster();
    heal_pods(&c);
    c.server
        .upsert(
            "apiVersion: v1\nkind: Pod\nmetadata: { name: vault-server-6d5f7c8b9-a1b2c, namespace: llm-data-vault, labels: { app: vault-server }, annotations: { opsctl-test/cpu: 200m, opsctl-test/memory: 1000Mi, opsctl-test/previous-log: '{\"level\":\"info\",\"message\":\"allocating\"}' } }\nspec: { nodeName: node-1, containers: [ { name: vault-server, image: 'ghcr.io/your-org/llm-data-vault:v1.1.0', resources: { limits: { cpu: 1000m, memory: 1Gi } } } ] }\nstatus: { phase: Running, conditions: [ { type: Ready, status: 'True' } ], containerStatuses: [ { name: vault-server, ready: true, started: true, restartCount: 3, state: { running: { startedAt: now-5m } }, lastState: { terminated: { exitCode: 137, reason: OOMKilled, startedAt: now-1h, finishedAt: now-5m } } } ] }\n",
        )
        .expect("oom pod");
    let api = vault_api("0.002");
    let p = project(&api);
    let (_, doc, record) = run(
        &c,
        &p,
        "vault-memory-issues",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--yes"],
    );
    status(&doc, "usage", "fail"); // 1000Mi of 1Gi: past 95 %
    assert_eq!(
        step(&doc, "oom")["outputs"]["oom_pods"],
        serde_json::json!(["vault-server-6d5f7c8b9-a1b2c"])
    );
    status(&doc, "logs", "ok");
    status(&doc, "raise-limit", "ok");
    status(&doc, "rollout", "ok");
    assert!(
        event_at(&record, "step_finished", "logs")
            < event_at(&record, "step_started", "raise-limit")
    );
    let dep = c.object("apps/v1", "deployments", "llm-data-vault", "vault-server");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"], "2Gi",
        "{dep}"
    );
}

#[test]
fn update_config_finds_pods_that_do_not_run_with_the_new_value() {
    let c = cluster();
    let api = vault_api("0.002");
    let p = project(&api);
    // The new ConfigMap raises the pool to 30; the deployment sets the variable literally
    // (to 20), which wins over the ConfigMap: the restarted pods still run with 20.
    p.file(
        "configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: vault-config }\ndata:\n  VAULT__DATABASE__MAX_CONNECTIONS: \"30\"\n  VAULT__SERVER__PORT: \"8080\"\n",
    );
    let (_, doc, _) = run(
        &c,
        &p,
        "vault-update-config",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--yes", "--param", "configmap_file=configmap.yaml"],
    );
    status(&doc, "apply", "ok");
    status(&doc, "edit", "skipped");
    status(&doc, "restart", "ok");
    status(&doc, "rollout", "ok");
    let cm = c.object("v1", "configmaps", "llm-data-vault", "vault-config");
    assert_eq!(cm["data"]["VAULT__DATABASE__MAX_CONNECTIONS"], "30");
    let verify = step(&doc, "verify");
    assert_eq!(verify["status"], "fail", "{doc}");
    assert_eq!(
        verify["outputs"]["stale"],
        serde_json::json!(["VAULT__DATABASE__MAX_CONNECTIONS=30"]),
        "{verify}"
    );
    assert!(restarted_at(&c).is_string());
}

#[test]
fn jwt_rotation_pointed_at_the_wrong_namespace_stops_before_writing_anything() {
    // The seed's command writes a new one-key vault-secrets into whatever namespace kubectl
    // points at. Pointed at `default` (where there is no vault-secrets), the runbook stops
    // at its check: nothing is created, nothing restarted.
    let api = healthy_api(200);
    let c = cluster();
    let p = project(&api);
    let config = p.read("opsctl.yaml").replace(
        "kubernetes: { namespace: llm-data-vault }",
        "kubernetes: { namespace: default }",
    );
    p.file("opsctl.yaml", &config);
    let before = c.server.writes();
    let (out, doc, _) = run(
        &c,
        &p,
        "vault-rotate-jwt-secret",
        &service_url("OPSCTL_TEST_DATABASE_URL"),
        &["--yes", "--yes-manual"],
    );
    out.code(1);
    status(&doc, "check-secret", "fail");
    for id in ["new-secret", "set-secret", "restart"] {
        status(&doc, id, "skipped");
    }
    assert!(
        c.server
            .get("v1", "secrets", "default", "vault-secrets")
            .is_none()
    );
    assert_eq!(c.server.writes(), before);
}

#[test]
fn auth_failures_measure_the_jwt_secret_without_showing_it() {
    let c = cluster();
    heal_pods(&c);
    let api = TestServer::start_blocking(vec![
        Route::new("POST", "/api/v1/auth/login")
            .status(401)
            .json(serde_json::json!({"error": "invalid credentials"})),
    ]);
    let p = project(&api);
    let path = stand_in_kubectl(p.path());
    let record = p.path().join("auth.jsonl");
    let out = p
        .opsctl()
        .args([
            "run",
            "vault-auth-failures",
            "--yes",
            "--format",
            "json",
            "--record",
        ])
        .arg(&record)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PATH", path)
        .run();
    let doc = out.json();
    for id in ["jwt-key", "jwt-length", "login", "local-clock", "pod-clock"] {
        status(&doc, id, "ok");
    }
    // "old-jwt-signing-key-1234567890abcdef": 36 characters, at least the seed's 32.
    assert_eq!(step(&doc, "jwt-length")["outputs"]["length"], 36);
    let record = std::fs::read_to_string(&record).expect("record");
    for text in [&out.stdout, &out.stderr, &record] {
        assert!(
            !text.contains("old-jwt-signing-key"),
            "the secret was shown"
        );
    }
    let argv = p.read("kubectl.argv");
    assert!(
        argv.contains("-n llm-data-vault get secret vault-secrets -o jsonpath={.data.jwt-secret}"),
        "{argv}"
    );
    assert_eq!(api.hits("POST", "/api/v1/auth/login"), 1);
}
