//! Staged outages of the bentham system (see docs/seed-coverage.md).
//!
//! Each test stages one outage of seed 004 (Bentham on Kubernetes) against real services:
//! its own schema in the test PostgreSQL (the seed's tables `studies`, `jobs`,
//! `api_keys`, `results`, reached through the connection's `search_path`, so the runbooks
//! keep the seed's table names), the test Redis, a local HTTP server answering the seed's
//! `/health` and `/v1/health`, the test Kubernetes API server loaded with
//! tests/fixtures/kube/bentham.yaml, and stand-ins for the admin CLIs (`aws`,
//! `./scripts/db-failover.sh`) that record what they received.

use serde_json::Value;

use crate::kube::Cluster;
use crate::support::http_server::{Route, TestServer, closed_port};
use crate::support::{Out, Project, repo, service_url, unique};

/// A schema of its own in the test database holding the seed's tables; dropped on drop.
struct Db {
    schema: String,
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test database: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

impl Db {
    fn new() -> Db {
        let db = Db {
            schema: unique("bentham"),
        };
        db.batch(&format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.studies (id text PRIMARY KEY, tenant_id text, status text,
                 progress jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
             CREATE TABLE {s}.jobs (id text PRIMARY KEY, study_id text, surface_id text, status text,
                 error_message text, attempt_count int DEFAULT 0, created_at timestamptz DEFAULT now());
             CREATE TABLE {s}.api_keys (id text PRIMARY KEY, tenant_id text, name text, permissions text,
                 rate_limit int, last_used_at timestamptz, created_at timestamptz DEFAULT now(),
                 revoked boolean DEFAULT false, revoked_at timestamptz);
             CREATE TABLE {s}.results (id text PRIMARY KEY, study_id text, job_id text);",
            s = db.schema
        ));
        db
    }

    /// The test database's URL with this schema first on the search path.
    fn url(&self) -> String {
        let base = service_url("OPSCTL_TEST_DATABASE_URL");
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.schema)
    }

    fn batch(&self, sql: &str) {
        let url = service_url("OPSCTL_TEST_DATABASE_URL");
        block(async move {
            connect(&url)
                .await
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// Runs `sql` (in this schema) and returns the first column of the first row.
    fn count(&self, sql: &str) -> i64 {
        let url = self.url();
        block(async move {
            connect(&url)
                .await
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0)
        })
    }

    /// `n` jobs of `study` on `surface` with `status` (and `error`), created `age` ago.
    fn jobs(
        &self,
        tag: &str,
        n: usize,
        (study, surface): (&str, &str),
        status: &str,
        error: Option<&str>,
        age: &str,
    ) {
        let err = error.map_or("NULL".to_string(), |e| format!("'{e}'"));
        self.batch(&format!(
            "INSERT INTO {s}.jobs (id, study_id, surface_id, status, error_message, attempt_count, created_at)
             SELECT '{tag}-' || g, '{study}', '{surface}', '{status}', {err},
                    CASE WHEN '{status}' = 'failed' THEN 3 ELSE 0 END, now() - interval '{age}'
             FROM generate_series(1, {n}) g",
            s = self.schema
        ));
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let url = service_url("OPSCTL_TEST_DATABASE_URL");
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        block(async move {
            let _ = connect(&url).await.batch_execute(&sql).await;
        });
    }
}

/// The JSON of `/v1/health` (and `/health`) in the seed's "Expected Response" shape.
fn health_body(status: &str, database: &str) -> String {
    serde_json::json!({
        "status": status,
        "services": {"database": database, "redis": "healthy", "orchestrator": "healthy"}
    })
    .to_string()
}

/// A project with every bentham runbook, a config whose environment `env` (namespace
/// `ns`) points the standard targets at the local services, and the CLI stand-ins
/// `bin/aws`, `bin/pnpm` and `scripts/db-failover.sh`.
fn project(api: &TestServer, ns: &str, extra_vars: &str) -> Project {
    let p = Project::new();
    let dir = repo().join("runbooks/bentham");
    for entry in std::fs::read_dir(&dir).expect("runbooks/bentham").flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        p.file(
            &format!("runbooks/{name}"),
            &std::fs::read_to_string(&path).unwrap(),
        );
    }
    let standin = std::fs::read_to_string(repo().join("tests/fixtures/library/bentham/standin.sh"))
        .expect("stand-in");
    for rel in ["bin/aws", "bin/pnpm", "scripts/db-failover.sh"] {
        p.file(rel, &standin);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.path().join(rel), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [runbooks]
envs:
  test:
    vars:
      bentham_repo: "{dir}"
      bentham_db_name: opsctl_test
      {extra_vars}
    http:
      api: {{ base_url: "{u}" }}
      admin: {{ base_url: "{u}" }}
      prometheus: {{ base_url: "{u}" }}
      webhook: {{ url: "{u}/hook" }}
    postgres:
      primary: {{ url_env: PG_URL }}
      replica: {{ url_env: REPLICA_URL }}
    redis:
      cache: {{ url_env: CACHE_URL }}
    kubernetes: {{ namespace: {ns} }}
"##,
            u = api.url(),
            dir = p.path().display(),
        ),
    );
    p
}

/// opsctl in `p`, with the cluster's kubeconfig, the stand-ins first on PATH, and the
/// primary / replica / cache URLs.
fn opsctl(p: &Project, c: &Cluster, primary: &str, replica: &str) -> crate::support::Cmd {
    let path = format!(
        "{}:{}",
        p.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    p.opsctl()
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PATH", path)
        .env("PG_URL", primary)
        .env("REPLICA_URL", replica)
        .env("CACHE_URL", service_url("OPSCTL_TEST_REDIS_URL"))
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[track_caller]
fn status(doc: &Value, id: &str, expected: &str) {
    assert_eq!(
        step(doc, id)["status"],
        expected,
        "step {id}: {}",
        step(doc, id)
    );
}

/// What a CLI stand-in recorded (empty when it was never called).
fn standin_log(p: &Project, name: &str) -> String {
    p.read(&format!("standin-{name}.log"))
}

fn run_json(out: &Out) -> Value {
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    out.json()
}

#[test]
fn sev1_crash_looping_gateway_logs_saved_then_restarted_and_healthy_again() {
    let api = TestServer::start_blocking(vec![
        // The first /health (the diagnosis) is the outage; after the restart it is healthy.
        Route::new("GET", "/health").sequence(vec![
            (503, health_body("unhealthy", "healthy")),
            (200, health_body("healthy", "healthy")),
        ]),
        Route::new("GET", "/v1/health")
            .status(503)
            .body(health_body("unhealthy", "healthy")),
        Route::new("POST", "/hook"),
    ]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    let p = project(&api, "bentham-prod", "");
    let record = p.path().join("sev1.jsonl");
    let before = c.server.writes_for("deployments");
    let out = opsctl(&p, &c, &db.url(), &db.url())
        .args([
            "run",
            "bentham-sev1-api-outage",
            "--yes",
            "--format",
            "json",
            "--record",
        ])
        .arg(&record)
        .run();
    let doc = run_json(&out);

    // Diagnosis: the pods crash-loop, the database and Redis answer.
    status(&doc, "pods", "fail");
    assert_eq!(step(&doc, "pods")["outputs"]["crashlooping"], 2, "{doc}");
    status(&doc, "db", "ok");
    status(&doc, "redis", "ok");
    status(&doc, "describe", "ok");
    // The crashed containers' logs, with their FATAL line, were saved ...
    status(&doc, "crash-logs", "ok");
    let lines = step(&doc, "crash-logs")["outputs"]["lines"].to_string();
    assert!(
        lines.contains("FATAL unhandled promise rejection"),
        "{lines}"
    );
    // ... before the restart started (the record's order).
    let rec = std::fs::read_to_string(&record).expect("record");
    let at = |event: &str, id: &str| {
        rec.lines()
            .position(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                v["event"] == event && v["id"] == id
            })
            .unwrap_or_else(|| panic!("no {event} of {id} in the record:\n{rec}"))
    };
    assert!(
        at("step_finished", "crash-logs") < at("step_started", "restart"),
        "{rec}"
    );
    // The restart, its rollout and the postcondition.
    status(&doc, "restart", "ok");
    status(&doc, "rollout", "ok");
    status(&doc, "verify", "ok");
    assert!(
        c.server.writes_for("deployments") > before,
        "nothing was written"
    );
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "api-gateway",
            "-n",
            "bentham-prod",
            "-o",
            "json",
        ])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{dep}"
    );
    // Stakeholders were notified once; the failover branch never opened.
    assert_eq!(api.hits("POST", "/hook"), 1);
    status(&doc, "replica", "skipped");
    status(&doc, "failover", "skipped");
    assert_eq!(standin_log(&p, "db-failover.sh"), "");
}

#[test]
fn sev1_database_down_names_it_restarts_nothing_and_failover_needs_a_person() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/health")
            .status(503)
            .body(health_body("unhealthy", "unhealthy")),
        Route::new("GET", "/v1/health")
            .status(503)
            .body(health_body("unhealthy", "unhealthy")),
        Route::new("POST", "/hook"),
    ]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    let p = project(&api, "bentham-prod", "");
    let down = format!("postgres://bentham:pw@127.0.0.1:{}/bentham", closed_port());
    // Writes to deployments and pods (the run's team lock is a Lease, a write of its own).
    let restarts = || c.server.writes_for("deployments") + c.server.writes_for("pods");
    let before = restarts();

    // --yes alone: the database is named, nothing restarted, the failover not run.
    let out = opsctl(&p, &c, &down, &db.url())
        .args([
            "run",
            "bentham-sev1-api-outage",
            "--yes",
            "--format",
            "json",
        ])
        .run();
    let doc = run_json(&out);
    status(&doc, "db", "error");
    let msg = step(&doc, "db")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("postgres primary"), "{msg}");
    assert_eq!(
        step(&doc, "health-detailed")["outputs"]["unhealthy_services"],
        serde_json::json!(["database"])
    );
    status(&doc, "restart", "skipped");
    // The replica was checked (reachable; the test database is not a standby: warn).
    status(&doc, "replica", "warn");
    status(&doc, "failover-review", "skipped");
    status(&doc, "failover", "skipped");
    assert_eq!(
        standin_log(&p, "db-failover.sh"),
        "",
        "the failover ran on --yes alone"
    );
    assert_eq!(restarts(), before, "something was restarted");

    // With the review answered (--yes-manual), the irreversible failover does run.
    let out = opsctl(&p, &c, &down, &db.url())
        .args([
            "run",
            "bentham-sev1-api-outage",
            "--yes",
            "--yes-manual",
            "--format",
            "json",
        ])
        .run();
    let doc = run_json(&out);
    status(&doc, "failover-review", "ok");
    status(&doc, "failover", "ok");
    status(&doc, "promoted", "ok");
    status(&doc, "restart", "skipped");
    assert!(standin_log(&p, "db-failover.sh").contains("--- call"));
    assert_eq!(restarts(), before, "something was restarted");
}

#[test]
fn sev2_failed_jobs_show_failures_by_surface_and_the_top_errors() {
    let api = TestServer::start_blocking(vec![]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    db.jobs(
        "ra",
        3,
        ("study_a", "openai-api"),
        "failed",
        Some("Rate limited"),
        "5 minutes",
    );
    db.jobs(
        "rb",
        1,
        ("study_b", "openai-api"),
        "failed",
        Some("Rate limited"),
        "5 minutes",
    );
    db.jobs(
        "ca",
        1,
        ("study_b", "openai-api"),
        "failed",
        Some("Captcha detected"),
        "5 minutes",
    );
    db.jobs(
        "cc",
        1,
        ("study_c", "chatgpt-web"),
        "failed",
        Some("Captcha detected"),
        "5 minutes",
    );
    db.jobs(
        "to",
        1,
        ("study_c", "chatgpt-web"),
        "failed",
        Some("Connection timeout"),
        "5 minutes",
    );
    db.jobs(
        "ok",
        3,
        ("study_a", "openai-api"),
        "completed",
        None,
        "5 minutes",
    );
    // Outside the last hour: not counted.
    db.jobs(
        "old",
        4,
        ("study_d", "anthropic-api"),
        "failed",
        Some("Invalid session"),
        "2 hours",
    );
    let p = project(&api, "bentham-prod", "");
    let out = opsctl(&p, &c, &db.url(), &db.url())
        .args(["run", "bentham-sev2-study-failures", "--format", "json"])
        .run();
    let doc = run_json(&out);

    let by_surface = &step(&doc, "failures-by-surface")["outputs"];
    assert_eq!(
        by_surface["rows"],
        serde_json::json!([
            {"surface_id": "openai-api", "failures": 5, "affected_studies": 2},
            {"surface_id": "chatgpt-web", "failures": 2, "affected_studies": 1}
        ]),
        "{by_surface}"
    );
    assert_eq!(by_surface["top_surface"], "openai-api");
    let errors = &step(&doc, "error-messages")["outputs"]["rows"];
    assert_eq!(
        errors[0],
        serde_json::json!({"error_message": "Rate limited", "count": 4}),
        "{errors}"
    );
    assert_eq!(
        errors[1],
        serde_json::json!({"error_message": "Captcha detected", "count": 2}),
        "{errors}"
    );
    assert_eq!(errors.as_array().map(Vec::len), Some(3), "{errors}");
    // 7 failed of 10 in the last hour: 70%, above the 20% critical threshold.
    status(&doc, "failure-rate", "fail");
    assert_eq!(step(&doc, "failure-rate")["outputs"]["failure_pct"], 70.0);
    // The executor's surface adapter lines.
    assert_eq!(
        step(&doc, "adapter-logs")["outputs"]["match_count"],
        3,
        "{doc}"
    );
    // Nothing asked to change: the last step is for a person.
    status(&doc, "common-causes", "skipped");
}

#[test]
fn retry_failed_jobs_resets_exactly_that_studys_failed_jobs_and_plan_changes_nothing() {
    let api = TestServer::start_blocking(vec![]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    db.batch(&format!(
        "INSERT INTO {s}.studies (id, tenant_id, status, progress) VALUES
           ('study_abc123', 'tenant-kyanos', 'executing', '{{\"completionPercentage\": 40}}'),
           ('study_other', 'tenant-kyanos', 'executing', '{{}}')",
        s = db.schema
    ));
    db.jobs(
        "a-failed",
        3,
        ("study_abc123", "openai-api"),
        "failed",
        Some("Rate limited"),
        "10 minutes",
    );
    db.jobs(
        "a-done",
        2,
        ("study_abc123", "openai-api"),
        "completed",
        None,
        "10 minutes",
    );
    db.jobs(
        "b-failed",
        2,
        ("study_other", "openai-api"),
        "failed",
        Some("Rate limited"),
        "10 minutes",
    );
    let p = project(&api, "bentham-prod", "");
    let failed = |study: &str| {
        db.count(&format!(
            "SELECT count(*) FROM jobs WHERE study_id = '{study}' AND status = 'failed'"
        ))
    };

    // plan and --dry-run: nothing changes.
    for mode in [
        &["plan", "bentham-retry-failed-jobs"][..],
        &["run", "bentham-retry-failed-jobs", "--dry-run"][..],
    ] {
        let out = opsctl(&p, &c, &db.url(), &db.url())
            .args(mode)
            .args(["--param", "study_id=study_abc123", "--format", "json"])
            .run();
        assert!(out.code == 0 || out.code == 1, "{out:?}");
        assert_eq!(failed("study_abc123"), 3, "{mode:?} changed something");
    }

    let out = opsctl(&p, &c, &db.url(), &db.url())
        .args([
            "run",
            "bentham-retry-failed-jobs",
            "--yes",
            "--format",
            "json",
            "--param",
            "study_id=study_abc123",
        ])
        .run();
    out.code(0);
    let doc = out.json();
    assert_eq!(step(&doc, "failed-jobs")["outputs"]["failed"], 3);
    status(&doc, "mark-for-retry", "ok");
    assert_eq!(step(&doc, "mark-for-retry")["outputs"]["row_count"], 3);
    status(&doc, "no-failed-left", "ok");
    // In SQL: exactly that study's 3 failed jobs were reset; the other study's are untouched.
    assert_eq!(failed("study_abc123"), 0);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM jobs WHERE study_id = 'study_abc123' AND status = 'pending'
               AND attempt_count = 0 AND error_message IS NULL AND id LIKE 'a-failed-%'"
        ),
        3
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM jobs WHERE study_id = 'study_abc123' AND status = 'completed'"
        ),
        2
    );
    assert_eq!(failed("study_other"), 2);
}

#[test]
fn queue_depth_past_its_thresholds_degrades_then_fails_health() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/health").body(health_body("healthy", "healthy")),
        Route::new("GET", "/v1/health").body(health_body("healthy", "healthy")),
    ]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    let p = project(&api, "bentham-staging", "");
    let health = || {
        let out = opsctl(&p, &c, &db.url(), &db.url())
            .args(["health", "--runbook", "bentham-health", "--format", "json"])
            .run();
        let doc = out.json();
        (out.code, doc)
    };
    let queue = |doc: &Value| {
        let check = doc["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == "queue-depth"))
            .unwrap_or_else(|| panic!("no queue-depth in {doc}"))
            .clone();
        (
            check["status"].as_str().unwrap_or_default().to_string(),
            check["outputs"]["depth"].clone(),
        )
    };

    // 1000 pending: at the warning threshold, not past it.
    db.jobs(
        "p1",
        1000,
        ("study_q", "openai-api"),
        "pending",
        None,
        "1 minute",
    );
    let (code, doc) = health();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["overall_status"], "healthy", "{doc}");
    assert_eq!(queue(&doc), ("ok".to_string(), serde_json::json!(1000)));

    // 1001: degraded (exit 1).
    db.jobs(
        "p2",
        1,
        ("study_q", "openai-api"),
        "pending",
        None,
        "1 minute",
    );
    let (code, doc) = health();
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["overall_status"], "degraded", "{doc}");
    assert_eq!(queue(&doc), ("warn".to_string(), serde_json::json!(1001)));

    // 5001: unhealthy (exit 2).
    db.jobs(
        "p3",
        4000,
        ("study_q", "openai-api"),
        "pending",
        None,
        "1 minute",
    );
    let (code, doc) = health();
    assert_eq!(code, 2, "{doc}");
    assert_eq!(doc["overall_status"], "unhealthy", "{doc}");
    assert_eq!(queue(&doc), ("fail".to_string(), serde_json::json!(5001)));
    // Only the queue is at fault.
    for check in doc["checks"].as_array().expect("checks") {
        if check["id"] != "queue-depth" {
            assert!(
                check["status"] == "ok" || check["status"] == "skipped",
                "{check}"
            );
        }
    }
}

#[test]
fn rotate_db_credentials_never_puts_the_password_on_a_command_line() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/v1/health").body(health_body("healthy", "healthy")),
    ]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    // The role whose password is rotated, with its current password.
    let role = unique("bentham_app");
    let old = "old-db-password-4711";
    let admin = service_url("OPSCTL_TEST_PG_ADMIN_URL");
    {
        let (admin, sql) = (
            admin.clone(),
            format!("CREATE ROLE {role} LOGIN PASSWORD '{old}'"),
        );
        block(async move {
            connect(&admin)
                .await
                .batch_execute(&sql)
                .await
                .expect("create role")
        });
    }
    let cfg: tokio_postgres::Config = service_url("OPSCTL_TEST_DATABASE_URL")
        .parse()
        .expect("url");
    let host = match &cfg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("{other:?}"),
    };
    let vars = format!(
        "bentham_db_host: \"{host}\"\n      bentham_db_port: \"{}\"\n      bentham_db_user: {role}",
        cfg.get_ports()[0]
    );
    let p = project(&api, "bentham-staging", &vars);
    p.file(
        "standin-aws.out",
        "{\"ARN\": \"arn:aws:secretsmanager:eu-west-1:1:secret:bentham/db-credentials\", \"Name\": \"bentham/db-credentials\", \"VersionId\": \"v2\"}\n",
    );
    let record = p.path().join("rotate.jsonl");
    let out = opsctl(&p, &c, &db.url(), &db.url())
        .env("PGPASSWORD", old)
        .args([
            "run",
            "bentham-rotate-db-credentials",
            "--yes",
            "--format",
            "json",
            "--param",
            &format!("db_user={role}"),
            "--param",
            "namespace=bentham-staging",
            "--record",
        ])
        .arg(&record)
        .run();
    let cleanup = format!("DROP ROLE IF EXISTS {role}");
    let drop_role = || {
        let (admin, sql) = (admin.clone(), cleanup.clone());
        block(async move {
            let _ = connect(&admin).await.batch_execute(&sql).await;
        })
    };
    if out.code != 0 {
        drop_role();
    }
    out.code(0);
    let doc = out.json();

    // aws received the secret JSON on stdin; its argv holds no password.
    let log = standin_log(&p, "aws");
    let (argv, rest) = log.split_once("stdin:\n").expect("aws was called");
    let stdin = rest.split("\nenv:").next().unwrap_or_default().trim();
    assert!(
        argv.contains("update-secret") && argv.contains("bentham/db-credentials"),
        "{argv}"
    );
    assert!(argv.contains("file:///dev/stdin"), "{argv}");
    let secret: Value = serde_json::from_str(stdin).unwrap_or_else(|e| panic!("{e}: {stdin}"));
    assert_eq!(secret["username"], role.as_str());
    let password = secret["password"].as_str().expect("password").to_string();
    assert!(password.len() >= 40, "{password}");
    assert!(
        !argv.contains(&password),
        "the password was on aws's command line"
    );
    assert!(
        !rest
            .split("\nenv:")
            .nth(1)
            .unwrap_or_default()
            .contains(&password),
        "aws got it in its environment"
    );

    // The database now takes the new password (and no longer the old one).
    let with = |pw: &str| {
        let mut cfg = cfg.clone();
        cfg.user(&role).password(pw);
        block(async move { cfg.connect(tokio_postgres::NoTls).await.is_ok() })
    };
    let (new_ok, old_ok) = (with(&password), with(old));
    drop_role();
    assert!(new_ok, "the role does not accept the new password");
    assert!(!old_ok, "the old password still works");

    // api-gateway restarted, rolled out, and the API reports the database healthy.
    status(&doc, "restart", "ok");
    status(&doc, "rollout", "ok");
    status(&doc, "verify", "ok");
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "api-gateway",
            "-n",
            "bentham-staging",
            "-o",
            "json",
        ])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{dep}"
    );
    // The password is in no output and no record.
    let rec = std::fs::read_to_string(&record).expect("record");
    for (what, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("record", &rec),
    ] {
        assert!(!text.contains(&password), "the password is in the {what}");
    }
}

/// The argv lines of each call a stand-in recorded, one string per call.
fn standin_calls(p: &Project, name: &str) -> Vec<String> {
    standin_log(p, name)
        .split("--- call\n")
        .filter(|c| !c.is_empty())
        .map(|c| {
            let argv = c.split("stdin:").next().unwrap_or_default();
            argv.lines()
                .skip(1)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn sev3_surface_disabled_at_once_and_enabled_only_after_a_person_and_a_live_test() {
    let api = TestServer::start_blocking(vec![]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    db.jobs(
        "oa",
        5,
        ("study_a", "openai-api"),
        "failed",
        Some("Rate limited"),
        "30 minutes",
    );
    db.jobs(
        "cw",
        1,
        ("study_b", "chatgpt-web"),
        "failed",
        Some("Captcha detected"),
        "30 minutes",
    );
    let p = project(&api, "bentham-prod", "");
    let run = |extra: &[&str]| {
        let out = opsctl(&p, &c, &db.url(), &db.url())
            .args([
                "run",
                "bentham-sev3-surface-failing",
                "--yes",
                "--format",
                "json",
                "--param",
                "surface=openai-api",
            ])
            .args(extra)
            .run();
        run_json(&out)
    };

    // --yes: the surface is disabled; re-enabling waits for a person.
    let doc = run(&[]);
    assert_eq!(step(&doc, "failures")["outputs"]["surface_failures"], 5);
    status(&doc, "disable", "ok");
    status(&doc, "provider-status", "skipped");
    status(&doc, "enable", "skipped");
    assert_eq!(
        standin_calls(&p, "pnpm"),
        vec!["admin:surface disable openai-api"]
    );

    // Once a person confirms the fix: live test, then enable, then no new failures.
    let doc = run(&["--yes-manual"]);
    status(&doc, "live-test", "ok");
    status(&doc, "enable", "ok");
    status(&doc, "no-new-failures", "ok");
    assert_eq!(
        standin_calls(&p, "pnpm"),
        vec![
            "admin:surface disable openai-api",
            "admin:surface disable openai-api",
            "test:surface openai-api --live",
            "admin:surface enable openai-api",
        ]
    );
}

#[test]
fn cancel_study_cancels_only_that_active_study() {
    let api = TestServer::start_blocking(vec![]);
    let c = Cluster::start("bentham.yaml");
    let db = Db::new();
    db.batch(&format!(
        "INSERT INTO {s}.studies (id, tenant_id, status) VALUES
           ('study_xxx', 'tenant-kyanos', 'executing'),
           ('study_yyy', 'tenant-kyanos', 'queued'),
           ('study_done', 'tenant-kyanos', 'completed')",
        s = db.schema
    ));
    let p = project(&api, "bentham-prod", "");
    let cancel = |study: &str| {
        let out = opsctl(&p, &c, &db.url(), &db.url())
            .args([
                "run",
                "bentham-cancel-study",
                "--yes",
                "--format",
                "json",
                "--param",
                &format!("study_id={study}"),
            ])
            .run();
        (out.code, run_json(&out))
    };
    let state = |id: &str| {
        let url = db.url();
        let sql = format!("SELECT status FROM studies WHERE id = '{id}'");
        block(async move {
            connect(&url)
                .await
                .query_one(&sql, &[])
                .await
                .expect("study")
                .get::<_, String>(0)
        })
    };

    let (code, doc) = cancel("study_xxx");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(step(&doc, "active")["outputs"]["row_count"], 2, "{doc}");
    status(&doc, "cancel", "ok");
    status(&doc, "cancelled", "ok");
    assert_eq!(state("study_xxx"), "cancelled");
    assert_eq!(state("study_yyy"), "queued");

    // A study that is not active is left alone.
    let (code, doc) = cancel("study_done");
    assert_eq!(code, 1, "{doc}");
    status(&doc, "study", "fail");
    status(&doc, "cancel", "skipped");
    assert_eq!(state("study_done"), "completed");
}

#[test]
fn every_bentham_runbook_lints_and_dry_runs_with_the_example_config() {
    let config = repo().join("examples/bentham/opsctl.yaml");
    crate::support::Cmd::new(&repo())
        .arg("--config")
        .arg(&config)
        .arg("lint")
        .run()
        .code(0)
        .stdout_has("No problems found.");
    let mut names: Vec<String> = std::fs::read_dir(repo().join("runbooks/bentham"))
        .expect("runbooks/bentham")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !opsctl::library::is_test_file(p))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        assert!(name.starts_with("bentham-"), "{name}");
        for env in ["production", "staging"] {
            crate::support::Cmd::new(&repo())
                .arg("--config")
                .arg(&config)
                .args(["run", name, "--dry-run", "--examples", "--env", env])
                .run()
                .code(0)
                .stdout_has("Wave 1");
        }
    }
}
