//! Staged outages of the aiaas system (seed 002, docs/seed-coverage/002.md): the test
//! Kubernetes API server loaded with tests/fixtures/kube/aiaas.yaml (namespace `production`),
//! a local HTTP service standing for the tool service, the Prometheus server, the realtime
//! metrics listener and the chat webhook, and the real PostgreSQL.

use serde_json::Value;

use crate::kube::Cluster;
use crate::support::http_server::{Route, TestServer};
use crate::support::{Out, Project, repo, service_url, unique};

/// A project with the aiaas runbooks and an environment `production` whose targets are the
/// local services.
fn project(api: &TestServer) -> Project {
    let p = Project::new();
    let dir = repo().join("runbooks/aiaas");
    for entry in std::fs::read_dir(&dir).expect("runbooks/aiaas") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        if name.ends_with(".yaml") && !name.ends_with(".test.yaml") {
            let stem = name.trim_end_matches(".yaml");
            p.runbook(stem, &std::fs::read_to_string(&path).expect("runbook"));
        }
    }
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [runbooks]
envs:
  production:
    vars: {{ incident_channel: "#aiaas-incidents", status_page: "https://status.example.com" }}
    http:
      api: {{ base_url: "{u}" }}
      prometheus: {{ base_url: "{u}" }}
      metrics: {{ base_url: "{u}" }}
      webhook: {{ url: "{u}/hooks/chat" }}
    postgres:
      primary: {{ url_env: PG_URL, pool: 3 }}
    kubernetes: {{ namespace: production }}
"##,
            u = api.url()
        ),
    );
    p
}

/// `opsctl run NAME --format json` with `args`, against the cluster and the test Postgres.
fn run(c: &Cluster, p: &Project, name: &str, args: &[&str]) -> (Out, Value) {
    let out = p
        .opsctl()
        .args(["run", name, "--format", "json"])
        .args(args)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("PG_URL", service_url("OPSCTL_TEST_DATABASE_URL"))
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
fn status(doc: &Value, id: &str, expected: &str) {
    let s = step(doc, id);
    assert_eq!(s["status"], expected, "step {id}: {s}");
}

/// Every string of a JSON list.
fn lines(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The value of `name` in the first container's env of a deployment, as kubectl reads it.
fn env_of(c: &Cluster, deployment: &str, name: &str) -> Option<String> {
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            deployment,
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    dep["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

fn prometheus_empty() -> Route {
    Route::new("GET", "/api/v1/query").json(
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
    )
}

/// TOOL_DOWN, this system's P0: both tool-service pods crash-loop and its /health answers
/// 503. The runbook names the failing health endpoint, saves the crashed containers' logs
/// (FATAL line) before anything changes, restarts with --yes (the API server shows the
/// restartedAt annotation), waits for the rollout and sees /health answer 200 again.
#[test]
fn tool_down_saves_the_crash_logs_restarts_and_sees_health_come_back() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/health").sequence(vec![
            (503, "tool registry unavailable".into()),
            (200, "ok".into()),
        ]),
        Route::new("GET", "/api/v1/query").json(serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "tool_service_health_check", "tool": "code-exec"}, "value": [0, "0"]}
            ]}
        })),
    ]);
    let c = Cluster::start("aiaas.yaml");
    let p = project(&api);
    let (_, doc) = run(
        &c,
        &p,
        "aiaas-tool-down",
        &["--yes", "--param", &format!("tool_url={}", api.url())],
    );
    // The findings name the failing health endpoint and the crash loop.
    let health = step(&doc, "health");
    assert_eq!(health["status"], "fail", "{health}");
    assert_eq!(health["outputs"]["status"], 503, "{health}");
    assert_eq!(step(&doc, "pods")["outputs"]["crashlooping"], 2, "{doc}");
    assert_eq!(
        step(&doc, "health-metric")["outputs"]["failing"],
        1,
        "{doc}"
    );
    // The crashed containers' logs were saved, FATAL line included.
    let crash = step(&doc, "crash-logs");
    assert_eq!(crash["status"], "ok", "{crash}");
    assert!(
        lines(&crash["outputs"]["lines"])
            .iter()
            .any(|l| l.contains("FATAL tool registry failed to initialise")),
        "{crash}"
    );
    // ... before the restart asked for anything: the restart started after they ended.
    status(&doc, "restart", "ok");
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "tool-service",
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    assert!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{dep}"
    );
    // Postconditions: the rollout completed and /health answers 200 again.
    status(&doc, "restart-rollout", "ok");
    assert_eq!(step(&doc, "restart-rollout")["outputs"]["complete"], true);
    status(&doc, "health-after", "ok");
    // Longer timeouts do not fix a crash: the toggles were not offered.
    status(&doc, "toggles", "skipped");
    assert_eq!(
        env_of(&c, "tool-service", "TOOL_TIMEOUT_MS").as_deref(),
        Some("30000")
    );
    // The health endpoint was asked twice: the diagnosis and the postcondition.
    assert_eq!(
        api.requests()
            .iter()
            .filter(|r| r.path == "/health")
            .count(),
        2
    );
}

/// The Prometheus answer for `histogram_quantile(0.95, … service_latency_histogram_bucket …)`:
/// 0.82 s, over the seed's 500 ms.
fn p95_slow() -> Route {
    Route::new("GET", "/api/v1/query").json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.82"]}]}
    }))
}

fn timeout_args<'a>(api: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--param", "service=inference", "--param", api];
    args.extend_from_slice(extra);
    args
}

/// TIMEOUT: `inference` (the seed's `service-name`) logs timeouts and its P95 is 820 ms.
/// With --yes the toggle step raises TIMEOUT_THRESHOLD_MS 5000→10000 (and the other two
/// toggles) in the deployment's env, keeping its other variables, waits for the rollout,
/// scales 2→3 and verifies health.
#[test]
fn timeout_raises_the_threshold_in_the_deployment_env_with_yes() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/health"), p95_slow()]);
    let c = Cluster::start("aiaas.yaml");
    let p = project(&api);
    let url = format!("health_url={}/health", api.url());
    let (_, doc) = run(&c, &p, "aiaas-timeout", &timeout_args(&url, &["--yes"]));
    assert!(
        step(&doc, "timeout-logs")["outputs"]["match_count"].as_u64() >= Some(3),
        "{doc}"
    );
    assert_eq!(step(&doc, "p95")["outputs"]["p95_ms"], 820.0, "{doc}");
    status(&doc, "p95", "warn");
    assert_eq!(
        step(&doc, "deploy")["outputs"]["env"]["TIMEOUT_THRESHOLD_MS"],
        "5000"
    );
    status(&doc, "toggles", "ok");
    status(&doc, "toggles-rollout", "ok");
    assert_eq!(
        env_of(&c, "inference", "TIMEOUT_THRESHOLD_MS").as_deref(),
        Some("10000")
    );
    assert_eq!(
        env_of(&c, "inference", "CIRCUIT_BREAKER_TIMEOUT").as_deref(),
        Some("60000")
    );
    assert_eq!(env_of(&c, "inference", "MAX_RETRIES").as_deref(), Some("5"));
    assert_eq!(
        env_of(&c, "inference", "LOG_LEVEL").as_deref(),
        Some("info"),
        "other env kept"
    );
    status(&doc, "scale", "ok");
    assert_eq!(step(&doc, "scale")["outputs"]["from"], 2);
    status(&doc, "scale-rollout", "ok");
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "inference",
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(dep["spec"]["replicas"], 3, "{dep}");
    assert_eq!(dep["status"]["readyReplicas"], 3, "{dep}");
    status(&doc, "verify", "ok");
}

/// TIMEOUT without --yes and without a terminal: the diagnosis runs, the toggle and the
/// scale are not done, and the API server saw no write at all.
#[test]
fn timeout_without_yes_changes_nothing() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/health"), p95_slow()]);
    let c = Cluster::start("aiaas.yaml");
    let p = project(&api);
    let before = c.server.writes();
    let url = format!("health_url={}/health", api.url());
    let (_, doc) = run(&c, &p, "aiaas-timeout", &timeout_args(&url, &[]));
    status(&doc, "timeout-logs", "warn");
    status(&doc, "toggles", "skipped");
    status(&doc, "scale", "skipped");
    status(&doc, "verify", "skipped");
    assert_eq!(
        c.server.writes(),
        before,
        "something was written without --yes"
    );
    assert_eq!(
        env_of(&c, "inference", "TIMEOUT_THRESHOLD_MS").as_deref(),
        Some("5000")
    );
}

/// The seed's `kubectl scale deployment service-name --replicas=3`, run on a deployment
/// that already runs 5, would remove two pods in the middle of a latency incident. The
/// runbook only ever scales up: with 5 replicas the scale step is skipped and 5 remain.
#[test]
fn timeout_never_scales_a_larger_deployment_down_to_three() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/health"), p95_slow()]);
    let c = Cluster::start("aiaas.yaml");
    c.kubectl(&[
        "scale",
        "deploy/inference",
        "-n",
        "production",
        "--replicas=5",
    ])
    .code(0);
    let p = project(&api);
    let url = format!("health_url={}/health", api.url());
    let (_, doc) = run(&c, &p, "aiaas-timeout", &timeout_args(&url, &["--yes"]));
    status(&doc, "toggles", "ok");
    status(&doc, "scale", "skipped");
    assert_eq!(
        c.server.writes_for("deployments/scale"),
        1,
        "only the test's own scale to 5"
    );
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "inference",
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(dep["spec"]["replicas"], 5, "{dep}");
}

/// WS_OVERLOAD: both realtime pods log backpressure drops and sit at 1000 connections
/// (the seed's MAX_WEBSOCKET_CONNECTIONS). The runbook reads the pods' metrics endpoint
/// through `kubectl exec` (the websocket lines only), scales realtime 2→5 with --yes and
/// waits until 5 replicas are ready. The toggles wait for a person: not done with --yes.
#[test]
fn ws_overload_scales_realtime_to_five_and_waits_for_them() {
    let exposition = "# HELP websocket_connections_active Open WebSocket connections\n\
        # TYPE websocket_connections_active gauge\n\
        websocket_connections_active 1000\n\
        # TYPE websocket_backpressure_drops counter\n\
        websocket_backpressure_drops 509\n\
        # TYPE process_cpu_seconds_total counter\n\
        process_cpu_seconds_total 12.5\n";
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/metrics").body(exposition),
        Route::new("GET", "/api/v1/query").json(serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"pod": "realtime-6a5b4c3d2-q1r2s"}, "value": [0, "1000"]},
                {"metric": {"pod": "realtime-6a5b4c3d2-t3u4v"}, "value": [0, "998"]}
            ]}
        })),
    ]);
    let c = Cluster::start("aiaas.yaml");
    let p = project(&api);
    let metrics = format!("metrics_url={}/metrics", api.url());
    let (_, doc) = run(&c, &p, "aiaas-ws-overload", &["--yes", "--param", &metrics]);
    status(&doc, "backpressure-logs", "warn");
    assert_eq!(step(&doc, "backpressure-logs")["outputs"]["match_count"], 2);
    let pm = step(&doc, "pod-metrics");
    assert_eq!(pm["status"], "ok", "{pm}");
    let ws = lines(&pm["outputs"]["websocket"]);
    assert_eq!(ws.len(), 5, "{pm}");
    assert!(!ws.iter().any(|l| l.contains("process_cpu")), "{pm}");
    assert!(ws.iter().all(|l| l.contains("websocket")), "{pm}");
    assert_eq!(
        api.hits("GET", "/metrics"),
        1,
        "the pod's curl reached the metrics endpoint"
    );
    status(&doc, "active", "warn");
    assert_eq!(step(&doc, "active")["outputs"]["busiest"], 1000.0);
    status(&doc, "scale", "ok");
    assert_eq!(step(&doc, "scale")["outputs"]["from"], 2);
    assert_eq!(step(&doc, "scale")["outputs"]["to"], 5);
    let ready = step(&doc, "scale-ready");
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["outputs"]["ready"], 5, "{ready}");
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "realtime",
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(dep["spec"]["replicas"], 5, "{dep}");
    let pods = c.kubectl(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=realtime",
        "-o",
        "name",
    ]);
    assert_eq!(pods.stdout.lines().count(), 5, "{}", pods.stdout);
    // Raising the per-pod limits is a person's decision: --yes alone does not do it.
    status(&doc, "decide-toggles", "skipped");
    status(&doc, "toggles", "skipped");
    assert_eq!(
        env_of(&c, "realtime", "MAX_WEBSOCKET_CONNECTIONS").as_deref(),
        Some("1000")
    );
}

/// Database Troubleshooting: a real lock. Session A holds `LOCK TABLE` in an open
/// transaction, session B waits on it. The pg_locks-not-granted step finds B's waiting lock
/// and warns; the blockers step names A as the session holding it. Nothing is ended.
#[test]
fn database_finds_a_waiting_lock_and_names_the_session_holding_it() {
    let url = service_url("OPSCTL_TEST_DATABASE_URL");
    let table = unique("aiaas_locked");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let connect = |url: String| async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    };
    let (a, b, pid_a, pid_b) = rt.block_on(async {
        let a = connect(url.clone()).await;
        let b = connect(url.clone()).await;
        a.batch_execute(&format!("CREATE TABLE {table} (id int)"))
            .await
            .expect("create");
        a.batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock");
        let pid_a: i32 = a
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        let pid_b: i32 = b
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        (a, std::sync::Arc::new(b), pid_a, pid_b)
    });
    // Session B waits on the lock (in the background until A rolls back).
    let waiting = {
        let b = std::sync::Arc::clone(&b);
        let sql = format!("SELECT count(*) FROM {table}");
        rt.spawn(async move { b.simple_query(&sql).await.map(|_| ()) })
    };
    // Until the server shows B waiting (a condition, not a delay).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = rt
            .block_on(a.query_one(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
                &[&pid_b],
            ))
            .expect("pg_locks")
            .get(0);
        if n > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session B never waited on the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let api = TestServer::start_blocking(vec![]);
    let p = project(&api);
    let out = p
        .opsctl()
        .args(["run", "aiaas-database", "--yes", "--format", "json"])
        .env("PG_URL", &url)
        .run();
    // Let B through and clean up before asserting, so a failure leaves no lock behind.
    rt.block_on(async {
        a.batch_execute("ROLLBACK").await.expect("rollback");
        waiting
            .await
            .expect("join")
            .expect("B's query ran once the lock went");
        a.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .expect("drop");
    });
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let doc = out.json();
    status(&doc, "connections", "ok");
    let locks = step(&doc, "locks");
    assert_eq!(locks["status"], "warn", "{locks}");
    let rows = locks["outputs"]["rows"].as_array().expect("rows");
    assert!(
        rows.iter()
            .any(|r| r["pid"] == pid_b && r["granted"] == false && r["mode"] == "AccessShareLock"),
        "B's waiting lock is not among {locks}"
    );
    let blockers = step(&doc, "blockers");
    assert_eq!(blockers["status"], "warn", "{blockers}");
    assert!(
        blockers["outputs"]["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["waiting_pid"] == pid_b
                && r["blocking_pid"] == pid_a
                && r["blocking_state"] == "idle in transaction")),
        "{blockers}"
    );
    // The password of the database URL appears nowhere in what opsctl printed.
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(auth, _)| auth.split_once(':'))
        .map(|(_, pw)| pw.to_string())
        .expect("the test URL has a password");
    out.never_shows(&password);
}

/// VALIDATION_FAIL on api-gateway: validation failures and 400s in its logs. The 400 check
/// counts whole-word 400s only (the seed's `grep -i "400"` would also count `4000ms`), the
/// rules file is read in a pod through `kubectl exec` and parsed, debug logging is turned
/// on with --yes (env patched, other variables kept), and strict mode stays on: turning
/// it off waits for a person.
#[test]
fn validation_fail_reads_the_rules_turns_on_debug_logging_and_keeps_strict_mode() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/api/v1/query").json(
        serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"rule": "max_content_length"}, "value": [0, "3.5"]},
                {"metric": {"rule": "tool_schema"}, "value": [0, "0.5"]}
            ]}
        }),
    )]);
    let c = Cluster::start("aiaas.yaml");
    let rules = c.file(
        "validation_rules.json",
        r#"{"rules": [{"name": "max_content_length", "max": 32000}, {"name": "tool_schema"}]}"#,
    );
    let p = project(&api);
    let rules_param = format!("rules_path={rules}");
    let (_, doc) = run(
        &c,
        &p,
        "aiaas-validation-fail",
        &[
            "--yes",
            "--param",
            "service=api-gateway",
            "--param",
            &rules_param,
        ],
    );
    let v = step(&doc, "validation-logs");
    assert_eq!(v["status"], "warn", "{v}");
    assert_eq!(v["outputs"]["failed"], 2, "{v}");
    let bad = step(&doc, "bad-requests");
    assert_eq!(
        bad["outputs"]["match_count"], 2,
        "4000ms is not a 400: {bad}"
    );
    assert_eq!(step(&doc, "error-rate")["outputs"]["per_second"], 4.0);
    let r = step(&doc, "rules");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["outputs"]["json"]["rules"][0]["max"], 32000, "{r}");
    status(&doc, "debug-logging", "ok");
    status(&doc, "debug-rollout", "ok");
    assert_eq!(
        env_of(&c, "api-gateway", "LOG_VALIDATION_ERRORS").as_deref(),
        Some("true")
    );
    // Relaxing validation for every tenant is a person's decision, not --yes's.
    status(&doc, "decide-relief", "skipped");
    status(&doc, "relief", "skipped");
    assert_eq!(
        env_of(&c, "api-gateway", "VALIDATION_STRICT_MODE").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_of(&c, "api-gateway", "VALIDATION_TIMEOUT_MS").as_deref(),
        Some("1000")
    );
}

/// The seed's `kubectl scale deployment realtime --replicas=5` on a realtime already running
/// 7 would drop two pods' WebSocket connections in the middle of an overload. The runbook
/// only scales up: with 7 the scale is skipped and 7 remain.
#[test]
fn ws_overload_never_scales_a_larger_realtime_down_to_five() {
    let api = TestServer::start_blocking(vec![
        Route::new("GET", "/metrics").body("websocket_connections_active 1000\n"),
        prometheus_empty(),
    ]);
    let c = Cluster::start("aiaas.yaml");
    c.kubectl(&[
        "scale",
        "deploy/realtime",
        "-n",
        "production",
        "--replicas=7",
    ])
    .code(0);
    let p = project(&api);
    let metrics = format!("metrics_url={}/metrics", api.url());
    let (_, doc) = run(&c, &p, "aiaas-ws-overload", &["--yes", "--param", &metrics]);
    status(&doc, "backpressure-logs", "warn");
    status(&doc, "scale", "skipped");
    let dep = c
        .kubectl(&[
            "get",
            "deploy",
            "realtime",
            "-n",
            "production",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(dep["spec"]["replicas"], 7, "{dep}");
    assert_eq!(
        c.server.writes_for("deployments/scale"),
        1,
        "only the test's own scale"
    );
}

/// A Critical (P0) alert: acknowledged, the first look runs (aiaas-service-health against
/// the cluster), and the status page / stakeholders get the "investigating" post and, once
/// resolved, the "resolved" post through the webhook — both confirmed steps.
#[test]
fn p0_alert_posts_to_the_status_webhook_and_runs_the_first_look() {
    let api = TestServer::start_blocking(vec![
        Route::new("POST", "/hooks/chat").body("ok"),
        Route::new("GET", "/metrics").body("http_requests_total 12\n"),
    ]);
    let c = Cluster::start("aiaas.yaml");
    let p = project(&api);
    let (_, doc) = run(
        &c,
        &p,
        "aiaas-alert-response",
        &[
            "--yes",
            "--yes-manual",
            "--param",
            "priority=P0",
            "--param",
            "alert=TOOL_DOWN",
            "--param",
            "service=realtime",
        ],
    );
    status(&doc, "acknowledge", "ok");
    status(&doc, "impact", "skipped");
    status(&doc, "status-page", "ok");
    status(&doc, "resolved-post", "ok");
    // The first look saw the crash-looping tool service among the namespace's pods.
    let first = step(&doc, "first-look");
    assert_eq!(
        first["outputs"]["steps"]["pods"]["outputs"]["crashlooping"], 2,
        "{first}"
    );
    let posts: Vec<Value> = api
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/hooks/chat")
        .map(|r| serde_json::from_str(&r.body).expect("JSON body"))
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    let first_post = posts[0]["text"].as_str().expect("text");
    assert!(
        first_post.starts_with("[P0] Investigating `TOOL_DOWN`"),
        "{first_post}"
    );
    assert!(
        posts[1]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("[P0] Resolved"))
    );
}

/// The seed's toggle "TIMEOUT_THRESHOLD_MS: increase from 5000 to 10000", applied as "set
/// 10000", would lower a threshold someone already raised to 20000. The runbook warns and
/// leaves the environment alone (the scale still helps).
#[test]
fn timeout_never_lowers_a_threshold_raised_further_by_hand() {
    let api = TestServer::start_blocking(vec![Route::new("GET", "/health"), p95_slow()]);
    let c = Cluster::start("aiaas.yaml");
    c.kubectl(&[
        "set",
        "env",
        "deploy/inference",
        "-n",
        "production",
        "TIMEOUT_THRESHOLD_MS=20000",
    ])
    .code(0);
    let before = c.server.writes_for("deployments");
    let p = project(&api);
    let url = format!("health_url={}/health", api.url());
    let (_, doc) = run(&c, &p, "aiaas-timeout", &timeout_args(&url, &["--yes"]));
    let deploy = step(&doc, "deploy");
    assert_eq!(deploy["status"], "warn", "{deploy}");
    assert_eq!(deploy["outputs"]["would_lower"], true, "{deploy}");
    status(&doc, "toggles", "skipped");
    status(&doc, "scale", "ok");
    assert_eq!(
        env_of(&c, "inference", "TIMEOUT_THRESHOLD_MS").as_deref(),
        Some("20000")
    );
    assert_eq!(env_of(&c, "inference", "MAX_RETRIES").as_deref(), Some("3"));
    assert_eq!(
        c.server.writes_for("deployments"),
        before + 1,
        "only the scale wrote"
    );
}
