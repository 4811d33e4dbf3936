//! Staged outages of TenSafe run with Docker Compose (seed 000; see
//! docs/seed-coverage/000.md): the runbooks of runbooks/tensafe-docker/ against a local
//! HTTP service shaped like its API (/internal/*, /v1/admin/*), the real PostgreSQL, and
//! stand-ins for `docker` / `docker-compose` (tests/fixtures/library/tensafe-docker/bin)
//! that record what they were asked to do.

use crate::support::http_server::{Route, TestServer, closed_port};
use crate::support::{Out, Project, repo, service_url, unique};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "admin-tok-tensafe-docker-Q7x";

/// A project with every tensafe-docker runbook, the stand-in CLIs in `bin/`, and a config
/// pointing `api`/`admin` at `api` and `primary` at `$DATABASE_URL`.
fn project(api: &TestServer) -> Project {
    let p = Project::new();
    let dir = repo().join("runbooks/tensafe-docker");
    for entry in std::fs::read_dir(&dir).expect("runbooks/tensafe-docker") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("runbook");
        p.file(&format!("runbooks/{name}"), &text);
    }
    for tool in ["docker", "docker-compose", "pg_restore"] {
        let src = repo()
            .join("tests/fixtures/library/tensafe-docker/bin")
            .join(tool);
        let text = std::fs::read_to_string(&src).expect("stand-in");
        p.file(&format!("bin/{tool}"), &text);
        make_executable(&p.path().join("bin").join(tool));
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r#"runbooks: [runbooks]
envs:
  prod:
    http:
      api: {{ base_url: "{u}" }}
      admin: {{ base_url: "{u}", auth: {{ bearer_env: ADMIN_TOKEN }} }}
    postgres:
      primary: {{ url_env: DATABASE_URL, pool: 2 }}
"#,
            u = api.url()
        ),
    );
    p
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).expect("stat").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(path, perm).expect("chmod");
}

/// `opsctl ARGS` in the project, the stand-ins first on PATH, the admin token set.
fn opsctl(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Out {
    let path = format!(
        "{}:{}",
        p.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = p
        .opsctl()
        .args(args)
        .env("PATH", path)
        .env("ADMIN_TOKEN", ADMIN_TOKEN);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

/// What the `docker` stand-in was asked, one invocation per line.
fn docker_calls(p: &Project) -> Vec<String> {
    p.read("docker.argv").lines().map(str::to_string).collect()
}

fn compose_calls(p: &Project) -> Vec<String> {
    p.read("compose.log").lines().map(str::to_string).collect()
}

/// Every record opsctl wrote in the project (the default directory and `rec.jsonl`).
fn records(p: &Project) -> String {
    let mut all = p.read("rec.jsonl");
    if let Ok(rd) = std::fs::read_dir(p.path().join(".state/opsctl/runs")) {
        for e in rd.flatten() {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}

fn metrics_page(pending: u64) -> String {
    format!(
        "# TYPE tg_tinker_requests_total counter\n\
         tg_tinker_requests_total{{method=\"GET\",endpoint=\"/v1/futures\",status=\"200\"}} 990\n\
         tg_tinker_requests_total{{method=\"POST\",endpoint=\"/v1/training_clients\",status=\"200\"}} 10\n\
         # TYPE tg_tinker_request_duration_seconds histogram\n\
         tg_tinker_request_duration_seconds_bucket{{method=\"GET\",endpoint=\"/v1/futures\",le=\"0.1\"}} 900\n\
         tg_tinker_request_duration_seconds_bucket{{method=\"GET\",endpoint=\"/v1/futures\",le=\"0.5\"}} 995\n\
         tg_tinker_request_duration_seconds_bucket{{method=\"GET\",endpoint=\"/v1/futures\",le=\"+Inf\"}} 1000\n\
         tg_tinker_request_duration_seconds_sum{{method=\"GET\",endpoint=\"/v1/futures\"}} 60\n\
         tg_tinker_request_duration_seconds_count{{method=\"GET\",endpoint=\"/v1/futures\"}} 1000\n\
         # TYPE tg_tinker_queue_depth gauge\n\
         tg_tinker_queue_depth{{status=\"pending\"}} {pending}\n\
         tg_tinker_queue_depth{{status=\"running\"}} 4\n\
         # TYPE tg_tinker_training_clients_active gauge\n\
         tg_tinker_training_clients_active{{tenant_id=\"tenant-123\"}} 2\n\
         # TYPE tg_tinker_artifact_storage_bytes gauge\n\
         tg_tinker_artifact_storage_bytes{{tenant_id=\"tenant-123\"}} 1048576\n\
         # TYPE tg_tinker_jobs_completed_total counter\n\
         tg_tinker_jobs_completed_total 90\n\
         # TYPE tg_tinker_jobs_failed_total counter\n\
         tg_tinker_jobs_failed_total 10\n"
    )
}

// ---------------------------------------------------------------------------------------
// Database Connection Failures

/// The database refuses connections: `db-connect` ends `error` naming the database, the
/// restart is not done (the docker stand-in saw only `logs`), and the database password
/// of `DATABASE_URL` is in no argument of any command and in no output or record (the
/// seed's `python -c "create_engine('$DATABASE_URL')"` put it on a command line).
#[test]
fn database_refusing_connections_is_named_the_cause_and_nothing_is_restarted() {
    const PASSWORD: &str = "pw-Zq81-never-on-argv";
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready")
            .status(503)
            .json(json!({"checks": [{"name": "database", "status": "fail"}]})),
    ]);
    let p = project(&api);
    p.file(
        "canned/docker-logs-api.err",
        "sqlalchemy.exc.OperationalError: could not connect to server: Connection refused\n",
    );
    p.file(
        "canned/docker-logs-tensafe-db-1.err",
        "FATAL:  the database system is shutting down\n",
    );
    let url = format!(
        "postgres://tensafe:{PASSWORD}@127.0.0.1:{}/tensafe?connect_timeout=3",
        closed_port()
    );
    let out = opsctl(
        &p,
        &[
            "run",
            "tensafe-docker-db-connection",
            "--env",
            "prod",
            "--yes",
            "--format",
            "json",
            "--record",
            "rec.jsonl",
            "--param",
            "db_container=tensafe-db-1",
        ],
        &[("DATABASE_URL", &url)],
    );
    out.code(1).never_shows(PASSWORD);
    let doc = out.json();
    let db = step(&doc, "db-connect");
    assert_eq!(db["status"], "error", "{db}");
    let message = db["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("postgres primary") && message.contains("connect"),
        "the database is not named as the cause: {db}"
    );
    assert_eq!(step(&doc, "api-ready")["status"], "fail");
    let restart = step(&doc, "restart-api");
    assert_eq!(restart["status"], "skipped", "{restart}");
    assert!(
        restart["message"]
            .as_str()
            .is_some_and(|m| m.contains("db-connect")),
        "{restart}"
    );
    assert_eq!(step(&doc, "ready-again")["status"], "skipped");
    let api_logs = step(&doc, "api-logs");
    assert_eq!(api_logs["status"], "warn", "{api_logs}");
    assert!(
        api_logs["outputs"]["operational_errors"][0]
            .as_str()
            .is_some_and(|l| l.contains("OperationalError")),
        "{api_logs}"
    );
    let db_logs = step(&doc, "db-logs");
    assert!(
        db_logs["outputs"]["errors"][0]
            .as_str()
            .is_some_and(|l| l.contains("FATAL")),
        "{db_logs}"
    );
    // What docker was asked: the two log reads, nothing else.
    let mut calls = docker_calls(&p);
    calls.sort();
    assert_eq!(
        calls,
        vec![
            "docker logs --tail 100 api".to_string(),
            "docker logs --tail 100 tensafe-db-1".to_string()
        ]
    );
    assert!(compose_calls(&p).is_empty());
    assert!(
        !records(&p).contains(PASSWORD),
        "the record holds the password"
    );
    assert!(!p.read("docker.argv").contains(PASSWORD));
}

/// The other branch, so that the test above can fail: the database answers (the real
/// PostgreSQL) while the API is not ready — its logs are read, then it is restarted, and
/// readiness is waited for. The password is still on no command line.
#[test]
fn database_answering_while_the_api_is_not_ready_restarts_the_api_after_its_logs() {
    let api =
        TestServer::start_blocking(vec![Route::new("GET", "/internal/ready").sequence(vec![
            (
                503,
                r#"{"checks": [{"name": "database", "status": "fail"}]}"#.into(),
            ),
            (
                200,
                r#"{"checks": [{"name": "database", "status": "ok"}]}"#.into(),
            ),
        ])]);
    let p = project(&api);
    p.file(
        "canned/docker-logs-api.err",
        "OperationalError: could not connect to server\n",
    );
    let pg = service_url("OPSCTL_TEST_DATABASE_URL");
    let out = opsctl(
        &p,
        &[
            "run",
            "tensafe-docker-db-connection",
            "--env",
            "prod",
            "--yes",
            "--format",
            "json",
            "--param",
            "db_container=tensafe-db-1",
        ],
        &[("DATABASE_URL", &pg)],
    );
    let doc = out.json();
    assert_eq!(step(&doc, "db-connect")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "restart-api")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "ready-again")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "escalate")["status"], "skipped");
    let calls = docker_calls(&p);
    let restart = calls
        .iter()
        .position(|c| c == "docker restart api")
        .unwrap_or_else(|| panic!("no restart in {calls:?}"));
    let logs = calls
        .iter()
        .position(|c| c == "docker logs --tail 100 api")
        .unwrap_or_else(|| panic!("no log read in {calls:?}"));
    assert!(logs < restart, "the logs were not saved first: {calls:?}");
    if let Some(password) = url_password(&pg) {
        assert!(!p.read("docker.argv").contains(&password));
        out.never_shows(&password);
    }
    // The run itself ends failed: its diagnosis (`api-ready`) found the API not ready.
    out.code(1);
}

fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}

// ---------------------------------------------------------------------------------------
// Job Queue Backlog

/// A backlog: the pending depth is graded against 100/1000, the DLQ's depth (from
/// `/v1/admin/dlq/stats`) and its top error classes (from `/v1/admin/dlq`) are in the
/// outputs, both read with the admin token; the worker's log errors and the failed share
/// of jobs too.
#[test]
fn queue_backlog_reports_the_dlq_depth_and_its_top_error_classes() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/metrics").body(metrics_page(250)),
        Route::new("GET", "/v1/admin/dlq/stats").json(json!({"depth": 42, "oldest_age_seconds": 3600})),
        Route::new("GET", "/v1/admin/dlq").json(json!([
            {"job_id": "j1", "error_type": "BackendTimeout", "error": "BackendTimeout: vLLM did not answer"},
            {"job_id": "j2", "error_type": "HENotAvailableError", "error": "HENotAvailableError: tenseal"},
            {"job_id": "j3", "error_type": "BackendTimeout", "error": "BackendTimeout: vLLM did not answer"},
            {"job_id": "j4", "error_type": "BackendTimeout", "error": "BackendTimeout: vLLM did not answer"}
        ])),
    ]);
    let p = project(&api);
    p.file(
        "canned/docker-logs-worker.err",
        "INFO picked job j5\nERROR job j5 failed: BackendTimeout\nTraceback (most recent call last):\n",
    );
    let out = opsctl(
        &p,
        &[
            "run",
            "tensafe-docker-queue-backlog",
            "--env",
            "prod",
            "--yes",
            "--format",
            "json",
        ],
        &[],
    );
    // Everything read; the decision is a person's (`decide` is not answered by --yes).
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let doc = out.json();
    let depth = step(&doc, "queue-depth");
    assert_eq!(depth["status"], "warn", "{depth}");
    assert_eq!(depth["outputs"]["value"], 250.0);
    let stats = step(&doc, "dlq-stats");
    assert_eq!(stats["status"], "ok", "{stats}");
    assert_eq!(stats["outputs"]["depth"], 42);
    let entries = step(&doc, "dlq-entries");
    assert_eq!(entries["status"], "ok", "{entries}");
    assert_eq!(entries["outputs"]["entries"], 4);
    assert_eq!(
        entries["outputs"]["top_errors"],
        json!([
            {"error": "BackendTimeout", "count": 3},
            {"error": "HENotAvailableError", "count": 1}
        ])
    );
    let jobs = step(&doc, "job-outcomes");
    assert_eq!(jobs["outputs"]["failed_pct"], 10.0, "{jobs}");
    assert_eq!(
        jobs["outputs"]["lines"],
        json!([
            "tg_tinker_jobs_completed_total 90",
            "tg_tinker_jobs_failed_total 10"
        ])
    );
    let worker = step(&doc, "worker-logs");
    assert_eq!(
        worker["outputs"]["errors"].as_array().map(Vec::len),
        Some(2),
        "{worker}"
    );
    assert_eq!(
        docker_calls(&p),
        vec!["docker logs --tail 100 worker".to_string()]
    );
    for r in api
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/admin/"))
    {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {ADMIN_TOKEN}").as_str()),
            "{} without the admin token",
            r.path
        );
    }
    assert_eq!(api.hits("GET", "/v1/admin/dlq"), 1);
    assert_eq!(api.hits("*", "/v1/admin/dlq/retry"), 0);
    out.never_shows(ADMIN_TOKEN);
}

// ---------------------------------------------------------------------------------------
// Health: the queue depth threshold (100 warning, 1000 critical)

fn health_with_queue(pending: u64) -> (Out, Value) {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/health").json(json!({"status": "ok"})),
        Route::new("GET", "/internal/ready").json(json!({"checks": []})),
        Route::new("GET", "/internal/metrics").body(metrics_page(pending)),
    ]);
    let p = project(&api);
    let out = opsctl(
        &p,
        &[
            "health",
            "--runbook",
            "tensafe-docker-health",
            "--env",
            "prod",
            "--format",
            "json",
        ],
        &[],
    );
    let doc = out.json();
    assert!(
        api.requests().iter().all(|r| r.method == "GET"),
        "health changed something: {:?}",
        api.requests()
    );
    assert!(docker_calls(&p).is_empty() && compose_calls(&p).is_empty());
    (out, doc)
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {doc}"))
}

#[test]
fn queue_depth_past_its_thresholds_degrades_then_fails_health() {
    let (out, doc) = health_with_queue(40);
    out.code(0);
    assert_eq!(doc["overall_status"], "healthy", "{doc}");
    assert_eq!(check(&doc, "latency-p99")["outputs"]["p99_seconds"], 0.5);
    assert_eq!(
        check(&doc, "error-rate")["outputs"]["error_pct"].as_f64(),
        Some(0.0)
    );

    let (out, doc) = health_with_queue(150);
    out.code(1);
    assert_eq!(doc["overall_status"], "degraded", "{doc}");
    assert_eq!(check(&doc, "queue-depth")["status"], "warn");

    let (out, doc) = health_with_queue(1500);
    out.code(2);
    assert_eq!(doc["overall_status"], "unhealthy", "{doc}");
    assert_eq!(check(&doc, "queue-depth")["status"], "fail");
    assert_eq!(check(&doc, "api-live")["status"], "ok");
}

/// Health check failures: one failed readiness probe is a warning, three consecutive
/// are critical.
#[test]
fn one_failed_readiness_probe_degrades_health_three_consecutive_fail_it() {
    let ready = |answers: Vec<(u16, String)>| {
        TestServer::start_blocking(vec![
            Route::new("GET", "/internal/health").json(json!({"status": "ok"})),
            Route::new("GET", "/internal/ready").sequence(answers),
            Route::new("GET", "/internal/metrics").body(metrics_page(3)),
        ])
    };
    let not_ready = || {
        (
            503,
            r#"{"checks": [{"name": "database", "status": "fail"}]}"#.to_string(),
        )
    };
    let args = [
        "health",
        "--runbook",
        "tensafe-docker-health",
        "--env",
        "prod",
        "--format",
        "json",
    ];

    let api = ready(vec![not_ready(), (200, "{}".to_string())]);
    let out = opsctl(&project(&api), &args, &[]);
    out.code(1);
    let doc = out.json();
    assert_eq!(check(&doc, "api-ready")["status"], "warn", "{doc}");
    assert_eq!(
        check(&doc, "api-ready-consecutive")["status"],
        "ok",
        "{doc}"
    );
    assert_eq!(api.hits("GET", "/internal/ready"), 2);

    let api = ready(vec![not_ready()]);
    let out = opsctl(&project(&api), &args, &[]);
    out.code(2);
    let doc = out.json();
    assert_eq!(doc["overall_status"], "unhealthy", "{doc}");
    assert_eq!(
        check(&doc, "api-ready-consecutive")["status"],
        "fail",
        "{doc}"
    );
    assert_eq!(api.hits("GET", "/internal/ready"), 3);
}

// ---------------------------------------------------------------------------------------
// Master Key Rotation

const OLD_KEY: &str = "old-master-key-Wc3p9";

fn rotation_project(reencrypt_status: u16) -> (TestServer, Project) {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready").json(json!({"checks": []})),
        Route::new("POST", "/v1/admin/artifacts/reencrypt")
            .status(reencrypt_status)
            .json(json!({"status": "started"})),
    ]);
    let p = project(&api);
    p.file(".env", "TG_ENVIRONMENT=production\nTG_MASTER_KEY=old-master-key-Wc3p9\nDATABASE_URL=postgres://db/tensafe\n");
    (api, p)
}

fn rotate(p: &Project, extra: &[&str]) -> Out {
    let mut args = vec![
        "run",
        "tensafe-docker-rotate-master-key",
        "--env",
        "prod",
        "--yes",
        "--format",
        "json",
        "--record",
        "rec.jsonl",
    ];
    args.extend_from_slice(extra);
    opsctl(p, &args, &[("TG_MASTER_KEY", OLD_KEY)])
}

/// The fields of one `docker-compose` stand-in call.
fn compose_field<'a>(call: &'a str, name: &str) -> &'a str {
    call.split('|')
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {call}"))
}

/// The new key is generated, stored next to the old one (other lines kept), handed to
/// `docker-compose up -d api worker` through its environment with the old key as
/// TG_MASTER_KEY_PREVIOUS, the re-encryption is posted; the old key stays until a person
/// confirms the re-encryption is done, and then goes. The new key is in no output or record.
#[test]
fn master_key_rotation_hands_the_new_key_to_compose_and_never_shows_it() {
    let (api, p) = rotation_project(202);

    // --yes alone: everything up to the re-encryption; its completion is a person's word.
    let out = rotate(&p, &[]);
    let doc = out.json();
    assert_eq!(step(&doc, "deploy-both")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "reencrypt")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "remove-old-key")["status"], "skipped");
    assert_eq!(step(&doc, "deploy-new-only")["status"], "skipped");
    assert_eq!(api.hits("POST", "/v1/admin/artifacts/reencrypt"), 1);
    let calls = compose_calls(&p);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(compose_field(&calls[0], "argv"), "up -d api worker");
    let new_key = compose_field(&calls[0], "TG_MASTER_KEY").to_string();
    assert_eq!(new_key.len(), 43, "32 bytes, URL-safe base64: {new_key}");
    assert!(
        new_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_ne!(new_key, OLD_KEY);
    assert_eq!(compose_field(&calls[0], "TG_MASTER_KEY_PREVIOUS"), OLD_KEY);
    let env_file = p.read(".env");
    assert!(
        env_file.contains("TG_ENVIRONMENT=production\n"),
        "{env_file}"
    );
    assert!(
        env_file.contains("DATABASE_URL=postgres://db/tensafe\n"),
        "{env_file}"
    );
    assert!(
        env_file.contains(&format!("TG_MASTER_KEY={new_key}\n")),
        "{env_file}"
    );
    assert!(
        env_file.contains(&format!("TG_MASTER_KEY_PREVIOUS={OLD_KEY}\n")),
        "{env_file}"
    );
    assert_eq!(env_file.matches("TG_MASTER_KEY=").count(), 1, "{env_file}");
    out.never_shows(&new_key).never_shows(OLD_KEY);
    assert!(
        !records(&p).contains(&new_key),
        "the record holds the new key"
    );
    assert!(
        !records(&p).contains(OLD_KEY),
        "the record holds the old key"
    );

    // A person confirms the re-encryption completed: the old key is removed, then the
    // services restart with the new key only. (A fresh rotation: a new key again.)
    std::fs::remove_file(p.path().join("compose.log")).expect("rm compose.log");
    p.file(".env", "TG_ENVIRONMENT=production\nTG_MASTER_KEY=old-master-key-Wc3p9\nDATABASE_URL=postgres://db/tensafe\n");
    let out = rotate(&p, &["--yes-manual"]);
    out.code(0);
    let doc = out.json();
    assert_eq!(step(&doc, "remove-old-key")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "ready-after")["status"], "ok", "{doc}");
    let calls = compose_calls(&p);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let new_key = compose_field(&calls[0], "TG_MASTER_KEY").to_string();
    assert_eq!(compose_field(&calls[0], "TG_MASTER_KEY_PREVIOUS"), OLD_KEY);
    assert_eq!(compose_field(&calls[1], "TG_MASTER_KEY"), new_key);
    assert_eq!(compose_field(&calls[1], "TG_MASTER_KEY_PREVIOUS"), "");
    assert_eq!(api.hits("POST", "/v1/admin/artifacts/reencrypt"), 2);
    let env_file = p.read(".env");
    assert_eq!(
        env_file,
        format!(
            "TG_ENVIRONMENT=production\nDATABASE_URL=postgres://db/tensafe\nTG_MASTER_KEY={new_key}\n"
        )
    );
    out.never_shows(&new_key).never_shows(OLD_KEY);
    assert!(
        !records(&p).contains(&new_key),
        "the record holds the new key"
    );
}

/// Re-encryption refused: even with every confirmation given, the old key stays (in the
/// env file and in the running services) and no second deploy happens.
#[test]
fn master_key_rotation_keeps_the_old_key_when_reencryption_fails() {
    let (api, p) = rotation_project(500);
    let out = rotate(&p, &["--yes-manual"]);
    out.code(1);
    let doc = out.json();
    assert_eq!(step(&doc, "reencrypt")["status"], "fail", "{doc}");
    assert_eq!(step(&doc, "reencrypt-done")["status"], "skipped");
    assert_eq!(step(&doc, "remove-old-key")["status"], "skipped");
    assert_eq!(step(&doc, "deploy-new-only")["status"], "skipped");
    assert_eq!(api.hits("POST", "/v1/admin/artifacts/reencrypt"), 1);
    let calls = compose_calls(&p);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(compose_field(&calls[0], "TG_MASTER_KEY_PREVIOUS"), OLD_KEY);
    assert!(
        p.read(".env")
            .contains(&format!("TG_MASTER_KEY_PREVIOUS={OLD_KEY}\n"))
    );
}

/// Without the current key in the environment nothing is generated, stored or deployed.
#[test]
fn master_key_rotation_without_the_current_key_changes_nothing() {
    let (api, p) = rotation_project(202);
    let out = opsctl(
        &p,
        &[
            "run",
            "tensafe-docker-rotate-master-key",
            "--env",
            "prod",
            "--yes",
            "--format",
            "json",
        ],
        &[],
    );
    out.code(1);
    let doc = out.json();
    assert_eq!(step(&doc, "old-key")["status"], "error", "{doc}");
    assert_eq!(step(&doc, "new-key")["status"], "skipped");
    assert!(compose_calls(&p).is_empty());
    assert_eq!(api.hits("POST", "/v1/admin/artifacts/reencrypt"), 0);
    assert!(!p.read(".env").contains("TG_MASTER_KEY_PREVIOUS"));
}

// ---------------------------------------------------------------------------------------
// Emergency Tenant Suspension

fn suspension_api() -> TestServer {
    TestServer::start_blocking(vec![
        Route::new("GET", "/internal/metrics").body(metrics_page(3)),
        Route::new("POST", "/v1/admin/tenants/tenant-123/suspend").json(json!({"suspended": true})),
        Route::new("POST", "/v1/admin/tenants/tenant-123/revoke-all-keys")
            .json(json!({"revoked": 3})),
        Route::new("POST", "/v1/admin/tenants/tenant-123/cancel-jobs")
            .json(json!({"cancelled": 7})),
    ])
}

#[test]
fn tenant_suspension_posts_suspend_revoke_cancel_in_order_with_yes_and_nothing_without() {
    let api = suspension_api();
    let p = project(&api);
    let args = [
        "run",
        "tensafe-docker-suspend-tenant",
        "--env",
        "prod",
        "--format",
        "json",
        "--param",
        "tenant_id=tenant-123",
    ];

    // Without --yes and without a terminal: the reads run, no POST is sent.
    let out = opsctl(&p, &args, &[]);
    let doc = out.json();
    assert_eq!(
        step(&doc, "tenant-clients")["outputs"]["value"],
        2.0,
        "{doc}"
    );
    for id in ["suspend", "revoke-keys", "cancel-jobs"] {
        assert_eq!(step(&doc, id)["status"], "skipped", "{id}: {doc}");
    }
    assert!(
        api.requests().iter().all(|r| r.method != "POST"),
        "{:?}",
        api.requests()
    );

    // With --yes: the three POSTs, in the seed's order, with the admin token.
    let mut yes = args.to_vec();
    yes.push("--yes");
    let out = opsctl(&p, &yes, &[]);
    let doc = out.json();
    for id in ["suspend", "revoke-keys", "cancel-jobs"] {
        assert_eq!(step(&doc, id)["status"], "ok", "{id}: {doc}");
    }
    assert_eq!(step(&doc, "clients-after")["status"], "warn");
    let posts: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let paths: Vec<&str> = posts.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/v1/admin/tenants/tenant-123/suspend",
            "/v1/admin/tenants/tenant-123/revoke-all-keys",
            "/v1/admin/tenants/tenant-123/cancel-jobs"
        ]
    );
    let body: Value = serde_json::from_str(&posts[0].body).expect("suspend body is JSON");
    assert_eq!(body, json!({"reason": "Security investigation"}));
    for r in &posts {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {ADMIN_TOKEN}").as_str())
        );
    }
    out.never_shows(ADMIN_TOKEN);
}

// ---------------------------------------------------------------------------------------
// HE Backend Unavailable

/// The seed greps the logs for `he`, which every "the", "cache" and "header" matches: the
/// runbook keeps only HE lines. With TenSEAL installed the container is restarted after
/// its logs were read; without it, nothing is restarted.
#[test]
fn he_backend_keeps_only_he_lines_and_restarts_only_with_tenseal_installed() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready").json(json!({"checks": []})),
    ]);
    let p = project(&api);
    p.file(
        "canned/docker-logs-api.err",
        "INFO served the request from the cache\nWARNING header X-Tenant missing\n\
         ERROR HENotAvailableError: TenSEAL context not initialised\nERROR tenseal import failed\n",
    );
    p.file("canned/docker-exec-api-printenv.out", "production\n");
    p.file(
        "canned/docker-exec-api-pip.out",
        "Name: tenseal\nVersion: 0.3.14\n",
    );
    let args = [
        "run",
        "tensafe-docker-he-backend",
        "--env",
        "prod",
        "--yes",
        "--format",
        "json",
    ];
    let out = opsctl(&p, &args, &[]);
    let doc = out.json();
    let logs = step(&doc, "he-logs");
    assert_eq!(
        logs["outputs"]["lines"],
        json!([
            "ERROR HENotAvailableError: TenSEAL context not initialised",
            "ERROR tenseal import failed"
        ]),
        "{logs}"
    );
    assert_eq!(logs["outputs"]["not_available"], 1);
    assert_eq!(step(&doc, "tenseal")["outputs"]["version"], "0.3.14");
    assert_eq!(step(&doc, "restart")["status"], "ok", "{doc}");
    assert_eq!(step(&doc, "ready-again")["status"], "ok", "{doc}");
    let calls = docker_calls(&p);
    assert_eq!(
        calls.last().map(String::as_str),
        Some("docker restart api"),
        "{calls:?}"
    );
    assert!(
        calls[..calls.len() - 1]
            .iter()
            .any(|c| c == "docker logs --since 1h api")
    );

    // TenSEAL missing (`pip show` exits 1): a restart cannot help and is not done.
    std::fs::remove_file(p.path().join("docker.argv")).expect("rm docker.argv");
    p.file("canned/docker-exec-api-pip.out", "");
    p.file("canned/docker-exec-api-pip.code", "1");
    let out = opsctl(&p, &args, &[]);
    let doc = out.json();
    assert_eq!(step(&doc, "tenseal")["status"], "fail", "{doc}");
    assert_eq!(step(&doc, "restart")["status"], "skipped");
    assert!(!docker_calls(&p).iter().any(|c| c.contains("restart")));
}

// ---------------------------------------------------------------------------------------
// Database Recovery

/// Statements on the admin connection (fixtures).
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

/// A schema of this test's own holding the seed's `tinker_training_clients`, dropped
/// when the test ends (also when it fails).
struct Schema(String);

impl Schema {
    fn with_clients(rows: usize) -> Schema {
        let name = unique("tdocker_recovery");
        admin_batch(&format!(
            "CREATE SCHEMA {name};
             CREATE TABLE {name}.tinker_training_clients (id int);
             INSERT INTO {name}.tinker_training_clients SELECT generate_series(1, {rows});
             GRANT USAGE ON SCHEMA {name} TO PUBLIC;
             GRANT SELECT ON {name}.tinker_training_clients TO PUBLIC;"
        ));
        Schema(name)
    }

    /// The test database's URL with this schema first on the search path.
    fn url(&self) -> String {
        let base = service_url("OPSCTL_TEST_DATABASE_URL");
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        admin_batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// With every confirmation: the logs are saved and the backup checked before the services
/// stop; then stop, restore, the integrity count on `primary`, start — in that order — and
/// readiness. A failed restore leaves the services stopped.
#[test]
fn database_recovery_saves_logs_stops_restores_verifies_and_starts_in_order() {
    let schema = Schema::with_clients(3);
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/ready").json(json!({"checks": []})),
    ]);
    let p = project(&api);
    let args = [
        "run",
        "tensafe-docker-db-recovery",
        "--env",
        "prod",
        "--yes",
        "--yes-manual",
        "--format",
        "json",
    ];
    let out = opsctl(&p, &args, &[("DATABASE_URL", &schema.url())]);
    out.code(0);
    let doc = out.json();
    assert_eq!(step(&doc, "count-before")["outputs"]["value"], 3, "{doc}");
    assert_eq!(step(&doc, "integrity")["outputs"]["value"], 3, "{doc}");
    assert_eq!(step(&doc, "ready")["status"], "ok");
    assert_eq!(step(&doc, "escalate")["status"], "skipped");
    let calls: Vec<String> = p.read("calls.log").lines().map(str::to_string).collect();
    let mut before: Vec<&str> = calls[..3].iter().map(String::as_str).collect();
    before.sort_unstable();
    assert_eq!(
        before,
        vec![
            "docker logs --tail 100 api",
            "docker logs --tail 100 worker",
            "pg_restore --list /backups/latest.dump"
        ],
        "{calls:?}"
    );
    assert_eq!(
        &calls[3..],
        &[
            "docker-compose stop api worker",
            "pg_restore -d tensafe /backups/latest.dump",
            "docker-compose start api worker"
        ],
        "{calls:?}"
    );

    // The restore fails: nothing is started, a person takes over.
    std::fs::remove_file(p.path().join("calls.log")).expect("rm calls.log");
    p.file("canned/pg_restore.code", "1");
    let out = opsctl(&p, &args, &[("DATABASE_URL", &schema.url())]);
    out.code(1);
    let doc = out.json();
    assert_eq!(step(&doc, "restore")["status"], "fail", "{doc}");
    assert_eq!(step(&doc, "start")["status"], "skipped");
    assert_eq!(step(&doc, "escalate")["status"], "ok");
    let calls = p.read("calls.log");
    assert!(calls.contains("docker-compose stop api worker"), "{calls}");
    assert!(!calls.contains("docker-compose start"), "{calls}");
}

/// A freshly started API exposes no request series yet: no traffic is not an outage.
#[test]
fn a_fresh_api_without_requests_is_healthy() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/internal/health").json(json!({"status": "ok"})),
        Route::new("GET", "/internal/ready").json(json!({"checks": []})),
        Route::new("GET", "/internal/metrics").body(
            "# TYPE tg_tinker_queue_depth gauge\ntg_tinker_queue_depth{status=\"pending\"} 0\n",
        ),
    ]);
    let out = opsctl(
        &project(&api),
        &[
            "health",
            "--runbook",
            "tensafe-docker-health",
            "--env",
            "prod",
            "--format",
            "json",
        ],
        &[],
    );
    out.code(0);
    let doc = out.json();
    assert_eq!(
        check(&doc, "latency-p99")["outputs"]["p99_seconds"],
        0,
        "{doc}"
    );
    assert_eq!(
        check(&doc, "error-rate")["outputs"]["error_pct"].as_f64(),
        Some(0.0),
        "{doc}"
    );
}
