//! The demo API of `./demo.sh` (examples/demo_api), started in-process against the test
//! PostgreSQL (a schema of its own) and Redis (a database index of its own): liveness,
//! readiness naming the dependency that fails, metrics that promtool accepts and that
//! count what happened, the admin DLQ endpoints behind their token, the workers, and opsctl
//! reading all of it (including the certificate of the HTTPS listener).

#[path = "../examples/demo_api/app.rs"]
pub mod demo_api;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Project, service_url, unique};

const TOKEN: &str = "demo-test-token";

/// A running demo API with its own schema and Redis database, and a runtime to serve it.
struct Demo {
    // Field order is drop order: the server stops before its runtime goes away.
    api: demo_api::Running,
    rt: tokio::runtime::Runtime,
    schema: String,
    redis_url: String,
}

/// The test Redis URL with database index `db` instead of the one given.
fn redis_db(db: u8) -> String {
    let url = service_url("OPSCTL_TEST_REDIS_URL");
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    format!("{base}/{db}")
}

fn admin_batch(rt: &tokio::runtime::Runtime, sql: &str) {
    let url = service_url("OPSCTL_TEST_DATABASE_URL");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client.batch_execute(sql).await.expect("SQL");
    });
}

impl Demo {
    /// `redis_db`: a Redis database index no other test uses (flushed first); `redis_url`
    /// overrides the URL (an unreachable one). `worker_batch` 0 runs no workers.
    fn start(redis_db_index: u8, redis_url: Option<String>, worker_batch: i64) -> Demo {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let schema = unique("demo");
        admin_batch(
            &rt,
            &format!(
                "CREATE SCHEMA {schema}; SET search_path = {schema}; {}",
                demo_api::SCHEMA
            ),
        );
        let db_url = format!(
            "{}?options=-csearch_path%3D{schema}",
            service_url("OPSCTL_TEST_DATABASE_URL")
        );
        let redis_url = redis_url.unwrap_or_else(|| {
            let url = redis_db(redis_db_index);
            redis_cmd(&url, &["FLUSHDB"]);
            url
        });
        let api = rt
            .block_on(demo_api::start(demo_api::Options {
                listen: "127.0.0.1:0".parse().expect("address"),
                tls_listen: Some("127.0.0.1:0".parse().expect("address")),
                database_url: db_url,
                redis_url: redis_url.clone(),
                admin_token: TOKEN.into(),
                worker_batch,
            }))
            .unwrap_or_else(|e| panic!("demo API: {e}"));
        Demo {
            api,
            rt,
            schema,
            redis_url,
        }
    }

    fn sql(&self, sql: &str) {
        admin_batch(
            &self.rt,
            &format!("SET search_path = {}; {sql}", self.schema),
        );
    }

    fn count(&self, status: &str) -> i64 {
        let url = service_url("OPSCTL_TEST_DATABASE_URL");
        let q = format!(
            "SELECT count(*) FROM {}.jobs WHERE status = '{status}'",
            self.schema
        );
        self.rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client.query_one(&q, &[]).await.expect("count").get(0)
        })
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http(self.api.addr(), "GET", path, token, "")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.api.stop();
        admin_batch(
            &self.rt,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
    }
}

fn redis_cmd(url: &str, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client.get_connection().expect("redis connect");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con).expect("redis command")
}

/// A plain HTTP/1.0 request: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the demo API");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: demo\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The value of one sample line (`name{labels}`) in an exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn liveness_readiness_and_metrics() {
    let d = Demo::start(11, None, 0);
    d.sql(
        "INSERT INTO jobs (tenant_id, job_type) SELECT 't', 'train' FROM generate_series(1, 7);
         INSERT INTO jobs (tenant_id, job_type, status) VALUES ('t', 'train', 'completed');",
    );
    let (status, body) = d.get("/internal/health", None);
    assert_eq!(
        (status, json(&body)),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = d.get("/internal/ready", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["checks"],
        serde_json::json!({"database": "ok", "redis": "ok"})
    );
    assert_eq!(d.get("/nope", None).0, 404);

    let (status, text) = d.get("/internal/metrics", None);
    assert_eq!(status, 200);
    assert_eq!(
        sample(&text, "tg_tinker_queue_depth{status=\"pending\"}"),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "tg_tinker_queue_depth{status=\"completed\"}"),
        Some(1.0)
    );
    // The requests before this one were counted, by route and status, and timed.
    for (endpoint, code) in [
        ("/internal/health", 200),
        ("/internal/ready", 200),
        ("other", 404),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    "tg_tinker_requests_total{{method=\"GET\",endpoint=\"{endpoint}\",status=\"{code}\"}}"
                )
            ),
            Some(1.0),
            "{endpoint}:\n{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "tg_tinker_request_duration_seconds_count{method=\"GET\",endpoint=\"/internal/ready\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "tg_tinker_dependency_up{dependency=\"redis\"}"),
        Some(1.0)
    );

    // The exposition format as Prometheus' own checker reads it.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; scripts/test.sh installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(out.status.success(), "promtool: {out:?}\n{text}");
}

#[test]
fn readiness_names_the_dependency_that_is_down() {
    let port = crate::support::http_server::closed_port();
    let d = Demo::start(0, Some(format!("redis://127.0.0.1:{port}/0")), 50);
    let (status, body) = d.get("/internal/ready", None);
    assert_eq!(status, 503, "{body}");
    let checks = &json(&body)["checks"];
    assert_eq!(checks["database"], "ok", "{body}");
    assert!(
        checks["redis"]
            .as_str()
            .is_some_and(|r| r.starts_with("error: ")),
        "{body}"
    );
    // Liveness does not depend on it; the workers wait for Redis, so jobs stay pending.
    assert_eq!(d.get("/internal/health", None).0, 200);
    d.sql("INSERT INTO jobs (tenant_id, job_type) VALUES ('t', 'train')");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(d.count("pending"), 1);
    let (_, text) = d.get("/internal/metrics", None);
    assert_eq!(
        sample(&text, "tg_tinker_dependency_up{dependency=\"redis\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "tg_tinker_queue_depth{status=\"pending\"}"),
        Some(1.0)
    );
}

#[test]
fn workers_drain_the_queue_and_dead_letter_the_failures() {
    let d = Demo::start(12, None, 50);
    d.sql(
        "INSERT INTO jobs (tenant_id, job_type) SELECT 't', 'train' FROM generate_series(1, 118);
         INSERT INTO jobs (tenant_id, job_type, payload)
         VALUES ('t', 'export', '{\"fail\": \"validation error: no such artifact\"}'),
                ('t', 'export', '{\"fail\": \"validation error: no such artifact\"}');",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.count("pending") > 0 {
        assert!(
            Instant::now() < deadline,
            "the workers did not drain the queue"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!((d.count("completed"), d.count("failed")), (118, 2));
    assert_eq!(
        redis_cmd(&d.redis_url, &["LLEN", "dlq:jobs"]),
        redis::Value::Int(2)
    );
    let (_, text) = d.get("/internal/metrics", None);
    assert_eq!(sample(&text, "tg_tinker_jobs_completed_total"), Some(118.0));
    assert_eq!(sample(&text, "tg_tinker_jobs_failed_total"), Some(2.0));
}

#[test]
fn admin_dlq_needs_the_token_lists_and_counts() {
    let d = Demo::start(13, None, 0);
    d.sql(
        "INSERT INTO jobs (id, tenant_id, job_type, status, error_message) VALUES
           (101, 't', 'train', 'failed', 'Connection timeout'),
           (102, 't', 'export', 'failed', 'Rate limited'),
           (103, 't', 'train', 'failed', 'Connection timeout');",
    );
    for (id, t, e) in [
        (101, "train", "Connection timeout"),
        (102, "export", "Rate limited"),
        (103, "train", "Connection timeout"),
    ] {
        let entry = serde_json::json!({"job_id": id, "job_type": t, "error": e}).to_string();
        redis_cmd(&d.redis_url, &["RPUSH", "dlq:jobs", &entry]);
    }
    for path in ["/v1/admin/dlq", "/v1/admin/dlq/stats"] {
        assert_eq!(d.get(path, None).0, 401, "{path}");
        assert_eq!(d.get(path, Some("wrong")).0, 401, "{path}");
    }
    let (status, body) = d.get("/v1/admin/dlq/stats", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let stats = json(&body);
    assert_eq!(stats["depth"], 3);
    assert_eq!(
        stats["by_error"],
        serde_json::json!({"Connection timeout": 2, "Rate limited": 1})
    );
    assert_eq!(stats["by_job_type"]["train"], 2);
    let (status, body) = d.get("/v1/admin/dlq?limit=2", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let list = json(&body);
    assert_eq!(list["total"], 3);
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["entries"][0]["job_id"], 101);
    assert_eq!(d.get("/v1/admin/dlq?limit=0", Some(TOKEN)).0, 400);

    // The seed's admin API names no write on the DLQ: the demo has none.
    assert_eq!(
        http(d.api.addr(), "POST", "/v1/admin/dlq", Some(TOKEN), "{}").0,
        405
    );
}

#[test]
fn opsctl_reads_the_demo_api() {
    let d = Demo::start(14, None, 0);
    d.sql(
        "INSERT INTO jobs (tenant_id, job_type) SELECT 't', 'train' FROM generate_series(1, 150)",
    );
    let tls_port = d.api.tls_addr().expect("HTTPS listener").port();
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "envs:\n  demo:\n    http:\n      api: { url_env: API_URL }\n      admin: { url_env: API_URL, auth: { bearer_env: ADMIN_TOKEN } }\n",
    )
    .runbook(
        "probe",
        &format!(
            r#"name: probe
title: The demo API as opsctl reads it
steps:
  - id: ready
    http: {{ target: api, path: /internal/ready }}
    expect: ["status == 200"]
  - id: queue-depth
    metrics: {{ target: api, path: /internal/metrics, metric: tg_tinker_queue_depth, labels: {{ status: pending }} }}
    warn_if: ["value > 100"]
  - id: dlq-stats
    http: {{ target: admin, path: /v1/admin/dlq/stats }}
    expect: ["status == 200"]
  - id: cert
    tls: {{ host: 127.0.0.1, port: {tls_port} }}
    fail_if: ["days_left < 80"]
"#
        ),
    );
    let out = p
        .opsctl()
        .args(["run", "probe", "--format", "json"])
        .env("API_URL", d.api.url())
        .env("ADMIN_TOKEN", TOKEN)
        .run();
    out.code(0);
    let run = out.json();
    let step = |id: &str| {
        run["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no step {id}: {run:#}"))
    };
    assert_eq!(step("ready")["status"], "ok");
    assert_eq!(step("queue-depth")["status"], "warn");
    assert_eq!(step("queue-depth")["outputs"]["value"], 150);
    assert_eq!(step("dlq-stats")["status"], "ok");
    let cert = step("cert");
    assert_eq!(cert["status"], "ok", "{cert:#}");
    assert_eq!(cert["outputs"]["days_left"], 89, "{cert:#}");
    assert_eq!(cert["outputs"]["subject"], "O=opsctl demo,CN=localhost");
    assert_eq!(
        d.api
            .cert_pem()
            .map(|p| p.starts_with("-----BEGIN CERTIFICATE-----")),
        Some(true)
    );
}
