//! `opsctl health` against real local HTTP servers, in the layouts a user writes
//! (`runbooks: [.]` beside `opsctl.yaml`, the config found upward, several environments),
//! with each format read by its real consumer: promtool and node_exporter's textfile
//! collector for the exposition format, Python's XML parser for JUnit. Assertions are on
//! what the servers saw and what opsctl reported, never on timing.

use std::time::Duration;

use serde_json::Value;

use crate::support::http_server::{Route, TestServer};
use crate::support::{Out, Project};

const EXPOSITION: &str = "# HELP tg_tinker_queue_depth Jobs by status\n# TYPE tg_tinker_queue_depth gauge\ntg_tinker_queue_depth{status=\"pending\"} 12\n";

/// A health runbook of `n` independent HTTP checks on `/slow` (each answered after the
/// server's delay), a readiness check and a metrics check; `api-ready` and `queue` are
/// tagged `quick`.
fn health_yaml(n: usize) -> String {
    let mut yaml = String::from(
        "name: health\ntitle: Service health\nsteps:\n  - id: api-ready\n    tags: [quick]\n    http: { target: api, path: /ready }\n    expect: [\"status == 200\"]\n  - id: queue\n    tags: [quick]\n    metrics: { target: api, path: /metrics, metric: tg_tinker_queue_depth, labels: { status: pending } }\n    warn_if: [\"value > 100\"]\n    fail_if: [\"value > 1000\"]\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - id: slow-{i}\n    http: {{ target: api, path: /slow }}\n    expect: [\"status == 200\"]\n"
        ));
    }
    yaml
}

fn api_routes(prefix: &str, delay: Duration, ready: u16, queue: u64) -> Vec<Route> {
    vec![
        Route::new("GET", &format!("{prefix}/slow")).delay(delay),
        Route::new("GET", &format!("{prefix}/ready")).status(ready),
        Route::new("GET", &format!("{prefix}/metrics"))
            .body(EXPOSITION.replace(" 12\n", &format!(" {queue}\n"))),
    ]
}

fn api_server(delay: Duration, ready: u16, queue: u64) -> TestServer {
    TestServer::start_blocking(api_routes("", delay, ready, queue))
}

/// The layout most teams use: `opsctl.yaml` with `runbooks: [.]` and the runbooks beside
/// it; opsctl is run from a subdirectory and finds the config upward.
fn project(envs: &[(&str, &TestServer)], runbook: &str) -> Project {
    let with_urls: Vec<(&str, String)> = envs.iter().map(|(n, s)| (*n, s.url())).collect();
    project_at(&with_urls, runbook)
}

fn project_at(envs: &[(&str, String)], runbook: &str) -> Project {
    let p = Project::new();
    let mut config = format!("runbooks: [.]\ndefault_env: {}\nenvs:\n", envs[0].0);
    for (name, url) in envs {
        config.push_str(&format!(
            "  {name}:\n    http:\n      api: {{ base_url: \"{url}\" }}\n"
        ));
    }
    p.file("ops/opsctl.yaml", &config)
        .file("ops/health.yaml", runbook)
        .file("ops/deploy/README", "a subdirectory to run from\n");
    p
}

fn health(p: &Project, args: &[&str]) -> Out {
    crate::support::Cmd::new(&p.path().join("ops/deploy"))
        .arg("health")
        .args(args)
        .run_within(Duration::from_secs(60))
        .0
}

fn checks_by_id(doc: &Value) -> std::collections::HashMap<String, Value> {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or_default().to_string(), c.clone()))
        .collect()
}

#[test]
fn a_hundred_checks_answer_in_one_round_and_say_healthy() {
    let server = api_server(Duration::from_millis(400), 200, 12);
    let p = project(&[("production", &server)], &health_yaml(100));
    let out = health(&p, &["--format", "json"]);
    out.code(0);
    let doc = out.json();
    assert_eq!(doc["runbook"], "health");
    assert_eq!(doc["overall_status"], "healthy");
    assert_eq!(doc["env"], "production");
    assert!(doc["duration_ms"].is_u64(), "{doc}");
    let checks = checks_by_id(&doc);
    assert_eq!(checks.len(), 102);
    for c in checks.values() {
        assert_eq!(c["status"], "ok", "{c}");
        for key in [
            "id",
            "name",
            "status",
            "duration_ms",
            "message",
            "outputs",
            "env",
        ] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
    assert_eq!(checks["queue"]["outputs"]["value"], 12);
    assert_eq!(server.hits("GET", "/slow"), 100);
    // Concurrent, not sequential: the server had (nearly) all of them in flight at once.
    assert!(
        server.max_in_flight() >= 95,
        "at most {} requests in flight",
        server.max_in_flight()
    );
}

#[test]
fn quick_contacts_only_the_quick_checks_and_grades_them() {
    // Healthy.
    let server = api_server(Duration::ZERO, 200, 12);
    let p = project(&[("production", &server)], &health_yaml(3));
    let out = health(&p, &["--quick", "--format", "json"]);
    out.code(0);
    assert_eq!(checks_by_id(&out.json()).len(), 2);
    assert_eq!(
        server.hits("GET", "/slow"),
        0,
        "--quick contacted a non-quick check"
    );
    assert_eq!(server.hits("GET", "/ready"), 1);

    // A metric past `warn_if`: degraded, exit 1.
    let server = api_server(Duration::ZERO, 200, 140);
    let p = project(&[("production", &server)], &health_yaml(3));
    let out = health(&p, &["--quick", "--format", "json"]);
    out.code(1);
    let doc = out.json();
    assert_eq!(doc["overall_status"], "degraded");
    assert_eq!(checks_by_id(&doc)["queue"]["status"], "warn");

    // A failed readiness: unhealthy, exit 2; the table names the cause first.
    let server = api_server(Duration::ZERO, 503, 140);
    let p = project(&[("production", &server)], &health_yaml(3));
    let out = health(&p, &["--quick"]);
    out.code(2);
    let first_check = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first_check.contains("fail") && first_check.contains("api-ready"),
        "failing check not first:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("503"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .contains("unhealthy"),
        "{}",
        out.stdout
    );
}

#[test]
fn without_a_health_runbook_it_could_not_run() {
    let server = api_server(Duration::ZERO, 200, 1);
    let p = project(&[("production", &server)], &health_yaml(1));
    std::fs::remove_file(p.path().join("ops/health.yaml")).expect("rm");
    let out = health(&p, &[]);
    out.code(3);
    out.stderr_has("health").stderr_has("could not run");
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // Another runbook by name, an unknown environment, a bad config: 3 as well.
    p.file(
        "ops/checks.yaml",
        &health_yaml(1).replace("name: health", "name: checks"),
    );
    health(&p, &["--runbook", "checks", "--format", "json"]).code(0);
    health(&p, &["--runbook", "checks", "--env", "nowhere"])
        .code(3)
        .stderr_has("nowhere");
    p.file("ops/opsctl.yaml", "envs: [not, a, map]\n");
    health(&p, &["--runbook", "checks"]).code(3);
}

#[test]
fn a_health_runbook_that_mutates_is_refused_and_linted() {
    let server = api_server(Duration::ZERO, 200, 1);
    let runbook = health_yaml(1)
        + "  - id: restart\n    http: { target: api, method: POST, path: /restart }\n";
    let p = project(&[("production", &server)], &runbook);
    let out = health(&p, &[]);
    out.code(3).stderr_has("H001").stderr_has("restart");
    assert_eq!(server.requests().len(), 0, "nothing may be contacted");
    let lint = crate::support::Cmd::new(&p.path().join("ops"))
        .args(["lint", "--format", "json"])
        .run();
    lint.code(1);
    assert!(lint.stdout.contains("H001"), "{}", lint.stdout);
}

#[test]
fn several_environments_run_at_once_with_a_verdict_each_in_every_format() {
    // One server, a path prefix per environment: what it had in flight at once shows
    // whether the environments ran together.
    let delay = Duration::from_millis(300);
    let mut routes = api_routes("/prod", delay, 200, 12);
    routes.extend(api_routes("/staging", delay, 503, 12));
    let server = TestServer::start_blocking(routes);
    let p = project_at(
        &[
            ("production", format!("{}/prod", server.url())),
            ("staging", format!("{}/staging", server.url())),
        ],
        &health_yaml(10),
    );
    let envs = ["--env", "production,staging"];

    let out = health(&p, &[&envs[..], &["--format", "json"]].concat());
    out.code(2);
    let doc = out.json();
    assert_eq!(doc["overall_status"], "unhealthy");
    let verdicts: Vec<(String, String)> = doc["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .map(|e| {
            (
                e["env"].as_str().unwrap_or_default().to_string(),
                e["overall_status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("production".to_string(), "healthy".to_string()),
            ("staging".to_string(), "unhealthy".to_string())
        ]
    );
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 24);
    assert!(
        checks
            .iter()
            .all(|c| c["env"] == "production" || c["env"] == "staging")
    );
    // Both environments' slow checks were in flight together.
    assert!(
        server.max_in_flight() >= 20,
        "at most {} requests in flight: the environments ran one after the other",
        server.max_in_flight()
    );
    let prom = health(&p, &[&envs[..], &["--format", "prometheus"]].concat());
    prom.code(2);
    assert!(
        prom.stdout
            .contains("opsctl_health_status{env=\"production\",runbook=\"health\"} 0\n")
    );
    assert!(
        prom.stdout
            .contains("opsctl_health_status{env=\"staging\",runbook=\"health\"} 2\n")
    );
    assert!(prom.stdout.contains(
        "opsctl_check_status{env=\"staging\",runbook=\"health\",check=\"api-ready\",status=\"fail\"} 2\n"
    ));

    let junit = health(&p, &[&envs[..], &["--format", "junit"]].concat());
    junit.code(2);
    let parsed = parse_junit(&junit.stdout);
    assert_eq!(
        parsed, "health.production 12 0 0\nhealth.staging 12 1 0\n",
        "{}",
        junit.stdout
    );

    let table = health(&p, &envs);
    table.code(2);
    assert!(
        table.stdout.contains("production · health · HEALTHY"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("staging · health · UNHEALTHY"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("health: unhealthy (production healthy, staging unhealthy)"),
        "{}",
        table.stdout
    );
}

/// Parses JUnit XML with Python's XML parser (a real consumer) and prints, per suite,
/// `name tests failures errors` counted from its testcase elements.
fn parse_junit(xml: &str) -> String {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
assert root.tag == "testsuites", root.tag
for suite in root.findall("testsuite"):
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == failures
    print(suite.get("name"), len(cases), failures, errors)
"#;
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the JUnit parser");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(xml.as_bytes()).expect("feed python3");
    }
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "JUnit does not parse: {out:?}\n{xml}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prometheus_output_is_read_by_promtool_and_the_textfile_collector() {
    let server = api_server(Duration::ZERO, 503, 140);
    let p = project(&[("production", &server)], &health_yaml(2));
    let dir = p.path().join("textfile");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("opsctl.prom");
    let out = health(
        &p,
        &[
            "--format",
            "prometheus",
            "--output",
            file.to_str().expect("utf-8 path"),
        ],
    );
    out.code(2);
    assert!(
        out.stdout.is_empty(),
        "--output writes the file only: {}",
        out.stdout
    );
    let text = std::fs::read_to_string(&file).expect("the textfile");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    for family in [
        "opsctl_check_status",
        "opsctl_check_duration_seconds",
        "opsctl_health_status",
        "opsctl_health_last_run_timestamp_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} gauge\n")),
            "{family}:\n{text}"
        );
    }
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).expect("open"))
        .output()
        .expect("promtool (apt-get install prometheus; scripts/test.sh installs it)");
    assert!(promtool.status.success(), "promtool: {promtool:?}");

    // node_exporter's textfile collector serves the file's series and reports no error.
    let port = crate::support::http_server::closed_port();
    let mut exporter = std::process::Command::new("prometheus-node-exporter")
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect(
            "prometheus-node-exporter (apt-get install prometheus-node-exporter; \
             scripts/test.sh installs it)",
        );
    let scraped = scrape(port);
    let _ = exporter.kill();
    let _ = exporter.wait();
    let scraped = scraped.expect("node_exporter answered");
    assert!(
        scraped.contains(
            "opsctl_check_status{check=\"api-ready\",env=\"production\",runbook=\"health\",status=\"fail\"} 2"
        ),
        "{scraped}"
    );
    assert!(
        scraped.contains("opsctl_health_status{env=\"production\",runbook=\"health\"} 2"),
        "{scraped}"
    );
    assert!(
        scraped.contains("node_textfile_scrape_error 0"),
        "{scraped}"
    );
}

/// GET /metrics from a local node_exporter (HTTP/1.0: no chunks), retried while it starts.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            if s.read_to_string(&mut body).is_ok() && body.contains("opsctl_") {
                return Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn secrets_reach_no_format() {
    const CANARY: &str = "canary-Zq8Jx3LwPp";
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/ready")
            .status(503)
            .body(format!("token={CANARY}")),
        Route::new("GET", "/metrics").body(EXPOSITION),
    ]);
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [.]\nenvs:\n  production:\n    http:\n      api: {{ base_url: \"{}\", auth: {{ bearer_env: API_TOKEN }} }}\n",
            server.url()
        ),
    )
    .file(
        "health.yaml",
        "name: health\ntitle: Health\nsteps:\n  - id: api-ready\n    http: { target: api, path: /ready }\n    expect: [\"body == 'fine'\"]\n",
    );
    for format in ["table", "json", "prometheus", "junit"] {
        let out = p
            .opsctl()
            .args(["health", "--format", format])
            .env("API_TOKEN", CANARY)
            .run();
        out.code(2);
        out.never_shows(CANARY);
    }
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {CANARY}"))),
        "the token did reach the server"
    );
}

#[test]
fn watch_reruns_and_marks_what_changed() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/ready").sequence(vec![(200, String::new()), (503, String::new())]),
        Route::new("GET", "/metrics").body(EXPOSITION),
    ]);
    let p = project(&[("production", &server)], &health_yaml(0));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .current_dir(p.path().join("ops"))
        .env("NO_COLOR", "1")
        .env("HOME", p.path())
        .args(["health", "--watch", "1s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn opsctl");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.hits("GET", "/ready") < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: the pid is our own child's.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "Ctrl-C did not end --watch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rounds: Vec<&str> = stdout.split("health: ").collect();
    assert!(rounds.len() >= 3, "fewer than two rounds:\n{stdout}");
    assert!(rounds[0].contains("HEALTHY"), "{stdout}");
    assert!(
        rounds[1]
            .lines()
            .any(|l| l.contains("api-ready") && l.contains("NEW")),
        "the newly failing check is not marked:\n{stdout}"
    );
    assert!(
        !rounds[2].lines().any(|l| l.contains("NEW")),
        "a check still failing is not new:\n{stdout}"
    );
    // The last full round was unhealthy.
    assert_eq!(out.status.code(), Some(2), "{stdout}");
}

#[test]
fn a_bad_command_line_could_not_run_rather_than_unhealthy() {
    let p = Project::new();
    for args in [
        &["health", "--bogus"][..],
        &["health", "--watch", "0s"],
        &["health", "--format", "xml"],
    ] {
        p.opsctl().args(args).run().code(3);
    }
    p.opsctl().args(["run", "--bogus"]).run().code(2);
}
