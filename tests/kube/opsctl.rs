//! opsctl's Kubernetes actions against the test API server, checked against what the
//! server holds (and what kubectl reads from it).

use serde_json::Value;

use super::Cluster;
use crate::support::{Out, Project};

/// A project whose environment `prod` points at the cluster's namespace `prod`.
fn project(runbook: &str) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
    )
    .file("k.yaml", runbook);
    p
}

fn run(c: &Cluster, p: &Project, extra: &[&str]) -> (Out, Value) {
    let out = p
        .opsctl()
        .args(["run", "k", "--format", "json"])
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    let doc = out.json();
    (out, doc)
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[test]
fn pods_are_counted_as_kubectl_shows_them() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: pods\n    k8s.pods: { selector: app=api }\n    expect: [\"crashlooping == 1\", \"oom_killed == 1\"]\n",
    );
    let (out, doc) = run(&c, &p, &[]);
    out.code(0);
    let o = &step(&doc, "pods")["outputs"];
    assert_eq!(o["total"], 3, "{o}");
    assert_eq!(o["ready"], 1, "{o}");
    assert_eq!(o["not_ready"], 2, "{o}");
    assert_eq!(o["crashlooping"], 1, "{o}");
    assert_eq!(o["oom_killed"], 1, "{o}");
    assert_eq!(o["restarts"], 9, "{o}");
    let crash = o["pods"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "api-7c9d8f6b5-crash"))
        .expect("the crash-looping pod");
    assert_eq!(crash["reason"], "CrashLoopBackOff");
    assert_eq!(crash["node"], "node-1");
    // kubectl agrees on the count.
    let names = c.kubectl(&["get", "pods", "-n", "prod", "-l", "app=api", "-o", "name"]);
    assert_eq!(names.stdout.lines().count(), 3);
}

#[test]
fn events_logs_and_objects_are_read_as_kubectl_reads_them() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        r#"name: k
title: K
steps:
  - id: warnings
    k8s.events: { type: Warning, for: pod/api-7c9d8f6b5-crash }
  - id: crash-logs
    k8s.logs: { pod: api-7c9d8f6b5-crash, previous: true, grep: "FATAL|ERROR" }
  - id: all-logs
    k8s.logs: { selector: app=api, tail: 1 }
  - id: deploy
    k8s.get: { kind: Deployment, name: api }
  - id: secrets
    k8s.get: { kind: secrets }
"#,
    );
    let (out, doc) = run(&c, &p, &[]);
    out.code(0);
    let ev = &step(&doc, "warnings")["outputs"];
    assert_eq!(ev["count"], 1, "{ev}");
    assert_eq!(ev["events"][0]["reason"], "BackOff");
    assert_eq!(ev["events"][0]["object"], "Pod/api-7c9d8f6b5-crash");
    let logs = &step(&doc, "crash-logs")["outputs"];
    assert_eq!(logs["match_count"], 2, "{logs}");
    assert!(
        logs["matches"][1]
            .as_str()
            .is_some_and(|l| l.contains("FATAL cannot reach database")),
        "{logs}"
    );
    let previous = c.kubectl(&["logs", "-n", "prod", "api-7c9d8f6b5-crash", "--previous"]);
    assert_eq!(
        logs["lines"].as_array().map(Vec::len),
        Some(previous.stdout.lines().count())
    );
    let all = &step(&doc, "all-logs")["outputs"];
    let lines = all["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "{all}");
    assert!(lines.iter().any(|l| {
        l.as_str()
            .is_some_and(|l| l.starts_with("api-7c9d8f6b5-ready: ") && l.contains("/healthz"))
    }));
    let deploy = &step(&doc, "deploy")["outputs"]["object"];
    assert_eq!(deploy["metadata"]["name"], "api");
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(step(&doc, "secrets")["outputs"]["count"], 1);
}

#[test]
fn api_errors_end_the_step_with_a_clear_cause() {
    let c = Cluster::with(
        &super::fixture("prod.yaml"),
        &["GET:/api/v1/namespaces/prod/pods:403"],
    );
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: pods\n    k8s.pods: {}\n  - id: missing\n    k8s.get: { kind: Deployment, name: nope }\n",
    );
    let (out, doc) = run(&c, &p, &[]);
    out.code(1);
    let pods = step(&doc, "pods");
    assert_eq!(pods["status"], "error");
    assert_eq!(pods["error"], "auth");
    assert!(
        pods["message"]
            .as_str()
            .is_some_and(|m| m.contains("forbidden")),
        "{pods}"
    );
    let missing = step(&doc, "missing");
    assert_eq!(missing["status"], "error");
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("NotFound")),
        "{missing}"
    );
    // A cluster that is not there: one line, within the step's timeout.
    let q = Project::new();
    q.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
    )
    .file(
        "k.yaml",
        "name: k\ntitle: K\nsteps:\n  - id: pods\n    k8s.pods: {}\n    timeout: 3s\n",
    )
    .file(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true }\nusers:\n- name: u\n  user: { token: t }\ncontexts:\n- name: x\n  context: { cluster: c, user: u }\ncurrent-context: x\n",
    );
    let out = q
        .opsctl()
        .args(["run", "k", "--format", "json"])
        .env("KUBECONFIG", q.path().join("kubeconfig"))
        .run();
    out.code(1);
    let doc = out.json();
    let pods = step(&doc, "pods");
    assert_eq!(pods["status"], "error");
    assert_eq!(pods["error"], "unreachable");
    assert!(!pods["message"].as_str().unwrap_or("").contains('\n'));
}

fn mutations() -> &'static str {
    r#"name: k
title: K
params:
  how: { default: "+2" }
steps:
  - id: restart
    k8s.rollout: { deployment: api, action: restart }
  - id: history
    needs: [restart]
    k8s.rollout: { deployment: api, action: history }
  - id: scale
    needs: [history]
    k8s.scale: { deployment: api, replicas: "${{ params.how }}", max: 10 }
  - id: key
    secret.generate: { bytes: 32 }
  - id: rotate
    needs: [key]
    k8s.secret: { name: jwt, action: set, data: { signing-key: "${{ steps.key.outputs.value }}" } }
  - id: check
    needs: [rotate]
    k8s.secret: { name: jwt, action: check }
"#
}

#[test]
fn without_a_yes_nothing_changes_on_the_cluster() {
    let c = Cluster::start("prod.yaml");
    let p = project(mutations());
    let before = c.server.writes();
    let (out, doc) = run(&c, &p, &[]);
    out.code(0);
    assert_eq!(step(&doc, "restart")["status"], "skipped");
    assert_eq!(c.server.writes(), before, "a mutation reached the server");
    // A plan changes nothing either.
    let out = p
        .opsctl()
        .args(["plan", "k", "--format", "json"])
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    out.code(0);
    assert_eq!(c.server.writes(), before, "the plan changed something");
}

#[test]
fn restart_scale_and_secret_rotation_are_what_kubectl_sees() {
    let c = Cluster::start("prod.yaml");
    let p = project(mutations());
    let record = p.path().join("r.jsonl");
    let (out, doc) = run(
        &c,
        &p,
        &["--yes", "--record", record.to_str().unwrap_or("r.jsonl")],
    );
    out.code(0);
    // restart: the annotation kubectl writes, and a new revision in the history.
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .is_some(),
        "{dep}"
    );
    let history = c.kubectl(&["rollout", "history", "deploy/api", "-n", "prod"]);
    let revisions = step(&doc, "history")["outputs"]["history"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(revisions >= 2, "{doc}");
    assert!(
        history.stdout.contains(&revisions.to_string()),
        "{}",
        history.stdout
    );
    // scale +2 from 3.
    let scale = &step(&doc, "scale")["outputs"];
    assert_eq!(scale["from"], 3);
    assert_eq!(scale["to"], 5);
    assert_eq!(dep["spec"]["replicas"], 5);
    // The rotated secret holds the new value and keeps its other keys; the value is
    // nowhere in what opsctl printed or recorded.
    let secret = c
        .kubectl(&["get", "secret", "jwt", "-n", "prod", "-o", "json"])
        .json();
    let data = secret["data"].as_object().expect("data");
    assert!(
        data.contains_key("private.pem") && data.contains_key("issuer"),
        "{secret}"
    );
    let written = data["signing-key"].as_str().expect("signing-key");
    use base64::Engine;
    let value = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(written)
            .expect("base64"),
    )
    .expect("utf-8");
    assert!(value.len() >= 40);
    let record = std::fs::read_to_string(&record).expect("record");
    assert!(!out.stdout.contains(&value) && !out.stderr.contains(&value));
    assert!(!record.contains(&value) && !record.contains(written));
    assert_eq!(
        step(&doc, "check")["outputs"]["keys"],
        serde_json::json!(["issuer", "private.pem", "signing-key"])
    );
}

#[test]
fn a_scale_over_its_guard_fails_and_changes_nothing() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: scale\n    k8s.scale: { deployment: api, replicas: x10, max: 10 }\n",
    );
    // The run's team lock is a Lease (written, then deleted): everything else counts.
    let writes = || c.server.writes() - c.server.writes_for("leases");
    let before = writes();
    let (out, doc) = run(&c, &p, &["--yes"]);
    out.code(1);
    let s = step(&doc, "scale");
    assert_eq!(s["status"], "fail");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("above max 10")),
        "{s}"
    );
    assert_eq!(writes(), before);
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert_eq!(dep["spec"]["replicas"], 3);
}

#[test]
fn plan_asks_the_server_for_a_dry_run_of_each_mutation() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: restart\n    k8s.rollout: { deployment: api, action: restart }\n  - id: scale\n    k8s.scale: { deployment: api, replicas: \"+2\" }\n",
    );
    let before = c.server.writes();
    let version = c.server.resource_version();
    let out = p
        .opsctl()
        .args(["plan", "k", "--format", "json"])
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    out.code(0);
    let doc = out.json();
    assert_eq!(c.server.writes(), before, "the plan changed something");
    assert_eq!(c.server.resource_version(), version);
    let scale = step(&doc, "scale");
    assert_eq!(scale["outputs"]["from"], 3, "{scale}");
    assert_eq!(scale["outputs"]["to"], 5, "{scale}");
    assert!(
        scale["plan"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("accepted it in a dry run")),
        "{scale}"
    );
    let dry = c
        .server
        .requests()
        .iter()
        .filter(|r| r.query.contains("dryRun=All"))
        .count();
    assert!(dry >= 2, "the server saw {dry} dry-run requests");
}

/// The shipped `sev1-outage` runbook, end to end: the test API server's crash-looping
/// pods, the real Postgres and Redis, a local API and Prometheus.
fn sev1_project(api: &crate::support::http_server::TestServer) -> Project {
    let p = Project::new();
    for name in ["sev1-outage", "verify-api"] {
        let text =
            std::fs::read_to_string(crate::support::repo().join(format!("runbooks/{name}.yaml")))
                .expect("shipped runbook");
        p.runbook(name, &text);
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [runbooks]
envs:
  prod:
    vars: {{ api_host: 127.0.0.1, incident_channel: "#incidents", status_page: "https://status.example.com" }}
    http:
      api: {{ base_url: "{u}" }}
      prometheus: {{ base_url: "{u}" }}
    postgres:
      primary: {{ url_env: PG_URL }}
    redis:
      cache: {{ url_env: CACHE_URL }}
    kubernetes: {{ namespace: prod }}
"##,
            u = api.url()
        ),
    );
    p
}

fn sev1(c: &Cluster, p: &Project, pg: &str) -> Value {
    let out = p
        .opsctl()
        .args([
            "run",
            "sev1-outage",
            "--yes",
            "--format",
            "json",
            "--param",
            "deployment=api",
            "--param",
            "selector=app=api",
        ])
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PG_URL", pg)
        .env(
            "CACHE_URL",
            crate::support::service_url("OPSCTL_TEST_REDIS_URL"),
        )
        .run();
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    out.json()
}

#[test]
fn sev1_outage_finds_the_crash_saves_the_logs_and_restarts() {
    use crate::support::http_server::{Route, TestServer};
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready"),
        Route::new("GET", "/api/v1/query").json(
            serde_json::json!({"status": "success", "data": {"result": [{"value": [0, "0.001"]}]}}),
        ),
    ]);
    let c = Cluster::start("prod.yaml");
    let p = sev1_project(&api);
    let doc = sev1(
        &c,
        &p,
        &crate::support::service_url("OPSCTL_TEST_DATABASE_URL"),
    );
    assert_eq!(step(&doc, "pods")["status"], "warn", "{doc}");
    assert_eq!(step(&doc, "pods")["outputs"]["crashlooping"], 1);
    let logs = step(&doc, "crash-logs");
    assert_eq!(logs["status"], "ok", "{logs}");
    assert!(
        logs["outputs"]["lines"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("FATAL")))),
        "{logs}"
    );
    assert_eq!(step(&doc, "db")["status"], "ok");
    assert_eq!(step(&doc, "redis")["status"], "ok");
    assert_eq!(step(&doc, "restart")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "verify")["status"], "ok", "{doc}");
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
}

/// prod.yaml staged after a deploy ten minutes ago: the crashing template is revision 2,
/// and revision 1 (image 1.4.1, three days old) is there to go back to.
fn after_a_recent_deploy() -> String {
    let yaml = super::fixture("prod.yaml")
        .replacen(
            "  name: api\n  namespace: prod\n  labels:\n    app: api\nspec:",
            "  name: api\n  namespace: prod\n  annotations:\n    deployment.kubernetes.io/revision: \"2\"\n  labels:\n    app: api\nspec:",
            1,
        )
        .replacen(
            "  name: api-7c9d8f6b5\n  namespace: prod\n",
            "  name: api-7c9d8f6b5\n  namespace: prod\n  creationTimestamp: now-10m\n",
            1,
        )
        .replacen(
            "    deployment.kubernetes.io/revision: \"1\"",
            "    deployment.kubernetes.io/revision: \"2\"",
            1,
        );
    yaml + r#"
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: api-5b6c7d8e9
  namespace: prod
  creationTimestamp: now-3d
  labels: { app: api, pod-template-hash: 5b6c7d8e9 }
  annotations: { deployment.kubernetes.io/revision: "1" }
  ownerReferences:
    - { apiVersion: apps/v1, kind: Deployment, name: api, controller: true, blockOwnerDeletion: true }
spec:
  replicas: 0
  selector: { matchLabels: { app: api, pod-template-hash: 5b6c7d8e9 } }
  template:
    metadata: { labels: { app: api, pod-template-hash: 5b6c7d8e9 } }
    spec:
      containers:
        - name: api
          image: registry.example.com/api:1.4.1
          env: [{ name: LOG_LEVEL, value: info }]
status: { replicas: 0 }
"#
}

#[test]
fn sev1_outage_rolls_back_a_recent_deploy_instead_of_restarting() {
    use crate::support::http_server::{Route, TestServer};
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready"),
        Route::new("GET", "/api/v1/query").json(
            serde_json::json!({"status": "success", "data": {"result": [{"value": [0, "0.001"]}]}}),
        ),
    ]);
    let c = Cluster::with(&after_a_recent_deploy(), &[]);
    let p = sev1_project(&api);
    let doc = sev1(
        &c,
        &p,
        &crate::support::service_url("OPSCTL_TEST_DATABASE_URL"),
    );
    let history = step(&doc, "history");
    assert_eq!(history["outputs"]["revision"], 2, "{history}");
    let age = history["outputs"]["revision_age_s"].as_i64().expect("age");
    assert!((590..1200).contains(&age), "{history}");
    assert_eq!(history["outputs"]["recent"], true, "{history}");
    assert_eq!(step(&doc, "crash-logs")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "rollback")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "restart")["status"], "skipped", "{doc}");
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example.com/api:1.4.1",
        "not rolled back: {dep}"
    );
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "restarted as well"
    );
}

#[test]
fn sev1_outage_names_the_database_and_restarts_nothing_when_it_is_down() {
    use crate::support::http_server::{Route, TestServer, closed_port};
    let api = TestServer::start_blocking(vec![Route::new("GET", "/internal/ready").status(503)]);
    let c = Cluster::start("prod.yaml");
    let p = sev1_project(&api);
    let before = c.server.writes();
    let down = format!("postgres://nobody:pw@127.0.0.1:{}/app", closed_port());
    let doc = sev1(&c, &p, &down);
    assert_eq!(step(&doc, "db")["status"], "error", "{doc}");
    assert_eq!(step(&doc, "restart")["status"], "skipped", "{doc}");
    assert_eq!(c.server.writes(), before, "something was restarted");
}

#[test]
fn annotations_are_set_and_removed() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: note\n    k8s.annotate: { kind: deployment, name: api, annotations: { incident: INC-42, \"opsctl/test\": null } }\n",
    );
    let (out, _) = run(&c, &p, &["--yes"]);
    out.code(0);
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert_eq!(
        dep["metadata"]["annotations"]["incident"], "INC-42",
        "{dep}"
    );
}

#[test]
fn rotate_jwt_secret_writes_a_new_key_keeps_the_others_and_never_shows_it() {
    use crate::support::http_server::{Route, TestServer};
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready"),
        Route::new("GET", "/api/v1/query").json(
            serde_json::json!({"status": "success", "data": {"result": [{"value": [0, "0.001"]}]}}),
        ),
    ]);
    let c = Cluster::start("prod.yaml");
    c.server
        .upsert(
            "apiVersion: v1\nkind: Secret\nmetadata: { name: api-secrets, namespace: prod }\ntype: Opaque\ndata:\n  jwt-secret: b2xkLXNpZ25pbmcta2V5\n  database-url: cG9zdGdyZXM6Ly9kYi9hcHA=\n",
        )
        .expect("secret");
    c.server
        .upsert(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: auth, namespace: prod, annotations: { deployment.kubernetes.io/revision: \"1\" } }\nspec:\n  replicas: 2\n  selector: { matchLabels: { app: auth } }\n  template:\n    metadata: { labels: { app: auth } }\n    spec: { containers: [ { name: auth, image: auth:1 } ] }\nstatus: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 }\n",
        )
        .expect("deployment");
    let p = Project::new();
    for name in ["rotate-jwt-secret", "verify-api"] {
        let text =
            std::fs::read_to_string(crate::support::repo().join(format!("runbooks/{name}.yaml")))
                .expect("shipped runbook");
        p.runbook(name, &text);
    }
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [runbooks]\nenvs:\n  prod:\n    vars: {{ incident_channel: \"#incidents\", status_page: \"https://status.example.com\" }}\n    http:\n      api: {{ base_url: \"{u}\" }}\n      prometheus: {{ base_url: \"{u}\" }}\n    kubernetes: {{ namespace: prod }}\n",
            u = api.url()
        ),
    );
    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args([
            "run",
            "rotate-jwt-secret",
            "--yes",
            "--yes-manual",
            "--format",
            "json",
            "--param",
            "secret=api-secrets",
            "--param",
            "deployment=auth",
            "--record",
        ])
        .arg(&record)
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    out.code(0);
    let secret = c
        .kubectl(&["get", "secret", "api-secrets", "-n", "prod", "-o", "json"])
        .json();
    let data = secret["data"].as_object().expect("data");
    assert!(data.contains_key("database-url"), "{secret}");
    let written = data["jwt-secret"].as_str().expect("jwt-secret");
    assert_ne!(written, "b2xkLXNpZ25pbmcta2V5", "the key was not rotated");
    use base64::Engine;
    let value = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(written)
            .expect("base64"),
    )
    .expect("utf-8");
    let record = std::fs::read_to_string(&record).expect("record");
    for text in [&out.stdout, &out.stderr, &record] {
        assert!(!text.contains(&value) && !text.contains(written));
    }
    let dep = c
        .kubectl(&["get", "deploy", "auth", "-n", "prod", "-o", "json"])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{dep}"
    );
}

#[test]
fn a_read_answered_503_is_tried_again_within_the_step() {
    let c = Cluster::with(
        &super::fixture("prod.yaml"),
        &["GET:/api/v1/namespaces/prod/pods:503@2"],
    );
    let p =
        project("name: k\ntitle: K\nsteps:\n  - id: pods\n    k8s.pods: { selector: app=api }\n");
    let (out, doc) = run(&c, &p, &[]);
    out.code(0);
    assert_eq!(step(&doc, "pods")["outputs"]["total"], 3);
}

#[test]
fn undo_puts_back_the_previous_template_as_kubectl_does() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: restart\n    k8s.rollout: { deployment: api, action: restart }\n  - id: undo\n    needs: [restart]\n    k8s.rollout: { deployment: api, action: undo }\n  - id: history\n    needs: [undo]\n    k8s.rollout: { deployment: api, action: history }\n",
    );
    let (out, doc) = run(&c, &p, &["--yes"]);
    out.code(0);
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    // Back to the template before the restart: no restartedAt annotation.
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "{dep}"
    );
    assert_eq!(step(&doc, "undo")["outputs"]["revision"], 3, "{doc}");
    let history = c.kubectl(&["rollout", "history", "deploy/api", "-n", "prod"]);
    assert!(history.stdout.contains('3'), "{}", history.stdout);
}

#[test]
fn patch_delete_describe_apply_and_drain_do_what_kubectl_sees() {
    let c = Cluster::start("prod.yaml");
    c.server
        .upsert("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: flags-old, namespace: prod }\ndata: { a: b }\n")
        .expect("configmap");
    let manifest = c.file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: flags, namespace: prod }\ndata: { maintenance: \"on\" }\n",
    );
    let p = project(&format!(
        r#"name: k
title: K
steps:
  - id: label
    k8s.patch: {{ kind: configmap, name: flags-old, type: merge, patch: {{ data: {{ checked: "yes" }} }} }}
  - id: describe
    k8s.describe: {{ kind: pod, name: api-7c9d8f6b5-crash }}
  - id: apply
    k8s.apply: {{ manifest: "{manifest}" }}
  - id: too-many
    k8s.delete: {{ kind: pods, selector: app=api, max: 1 }}
  - id: one
    needs: [too-many]
    when: steps['too-many'].status == 'fail'
    k8s.delete: {{ kind: pod, name: api-7c9d8f6b5-oom }}
  - id: drain
    needs: [one]
    k8s.drain: {{ node: node-1 }}
  - id: set-env
    needs: [drain]
    k8s.patch:
      kind: deployment
      name: api
      patch: {{ spec: {{ template: {{ spec: {{ containers: [ {{ name: api, env: [ {{ name: LOG_LEVEL, value: debug }} ] }} ] }} }} }} }}
"#
    ));
    let (out, doc) = run(&c, &p, &["--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    let dep = c
        .kubectl(&["get", "deploy", "api", "-n", "prod", "-o", "json"])
        .json();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "debug",
        "{dep}"
    );
    assert_eq!(
        step(&doc, "label")["status"],
        "ok",
        "{}",
        step(&doc, "label")
    );
    let described = &step(&doc, "describe")["outputs"];
    assert_eq!(described["warnings"], 1, "{described}");
    assert_eq!(
        described["object"]["metadata"]["name"],
        "api-7c9d8f6b5-crash"
    );
    let cm = c
        .kubectl(&["get", "configmap", "flags", "-n", "prod", "-o", "json"])
        .json();
    assert_eq!(cm["data"]["maintenance"], "on");
    let too_many = step(&doc, "too-many");
    assert_eq!(too_many["status"], "fail", "{too_many}");
    assert_eq!(step(&doc, "one")["status"], "ok");
    assert!(
        c.server
            .get("v1", "pods", "prod", "api-7c9d8f6b5-oom")
            .is_none()
    );
    let drain = step(&doc, "drain");
    assert_eq!(drain["status"], "ok", "{drain}");
    let node = c.kubectl(&["get", "node", "node-1", "-o", "json"]).json();
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(
        drain["outputs"]["evicted"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
}

/// Reading a Secret as an object (get, a list, describe) shows its keys, never its values.
#[test]
fn a_secret_read_as_an_object_shows_its_keys_and_never_its_values() {
    const VALUE: &str = "aHR0cHM6Ly9hdXRoLmV4YW1wbGUuY29t";
    let c = Cluster::start("prod.yaml");
    let p = project(
        r#"name: k
title: Read a secret
steps:
  - id: one
    k8s.get: { kind: Secret, name: jwt }
    capture: { keys: "object.data | list | sort" }
  - id: all
    k8s.get: { kind: Secret }
  - id: described
    k8s.describe: { kind: Secret, name: jwt }
"#,
    );
    let record = p.path().join("r.jsonl");
    let (out, doc) = run(&c, &p, &["--record", record.to_str().expect("path")]);
    out.code(0)
        .never_shows(VALUE)
        .never_shows("https://auth.example.com");
    assert_eq!(
        step(&doc, "one")["outputs"]["keys"],
        serde_json::json!(["issuer", "private.pem"]),
        "{doc}"
    );
    assert_eq!(
        step(&doc, "one")["outputs"]["object"]["data"]["issuer"],
        "***"
    );
    assert_eq!(step(&doc, "all")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "described")["status"], "ok", "{doc}");
    let text = std::fs::read_to_string(&record).expect("record");
    assert!(!text.contains(VALUE), "the record holds a secret's value");
}
