//! Renderers from synthetic reports: snapshots for the shapes, and the real consumers'
//! parsers (promtool for the exposition format) where they exist.

use chrono::TimeZone as _;
use serde_json::json;

use super::*;
use crate::health::{Check, EnvHealth, HealthReport, Verdict};

fn check(id: &str, status: StepStatus, ms: u64, message: Option<&str>) -> Check {
    Check {
        id: id.to_string(),
        name: format!("Check {id}"),
        action: "http".to_string(),
        status,
        duration_ms: ms,
        message: message.map(str::to_string),
        skip: None,
        cause: None,
        error: None,
        outputs: json!({"status": 200}),
    }
}

fn env(name: &str, checks: Vec<Check>) -> EnvHealth {
    EnvHealth {
        env: name.to_string(),
        runbook: "health".to_string(),
        run_id: format!("20261201T000000Z-{name}"),
        verdict: Verdict::of(checks.iter().map(|c| c.status)),
        duration_ms: 120,
        checks,
        interrupted: false,
    }
}

fn report(envs: Vec<EnvHealth>) -> HealthReport {
    HealthReport {
        runbook: "health".to_string(),
        quick: false,
        overall: envs
            .iter()
            .map(|e| e.verdict)
            .max()
            .unwrap_or(Verdict::Healthy),
        envs,
        duration_ms: 130,
        at: chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 3, 0, 0)
            .single()
            .expect("valid time"),
    }
}

fn sample() -> HealthReport {
    let mut skipped = check("tls", StepStatus::Skipped, 0, None);
    skipped.cause = Some("api-live".to_string());
    skipped.skip = Some(crate::exec::events::SkipReason::Needs);
    let mut errored = check(
        "db",
        StepStatus::Error,
        5003,
        Some("cannot connect to 127.0.0.1:1: connection refused"),
    );
    errored.error = Some(crate::actions::ErrorKind::Unreachable);
    report(vec![
        env(
            "production",
            vec![
                check("api-live", StepStatus::Ok, 12, None),
                check(
                    "queue",
                    StepStatus::Warn,
                    3,
                    Some("warn_if value > 100 (value = 140)"),
                ),
                errored,
                check(
                    "api-ready",
                    StepStatus::Fail,
                    40,
                    Some("expected status == 200, got 503"),
                ),
                skipped,
            ],
        ),
        env(
            "staging \"eu\"\\1",
            vec![check("api-live", StepStatus::Ok, 8, None)],
        ),
    ])
}

#[test]
fn verdict_is_the_worst_counted_status() {
    use StepStatus::*;
    assert_eq!(Verdict::of([]), Verdict::Healthy);
    assert_eq!(Verdict::of([Ok, Skipped, Cancelled]), Verdict::Healthy);
    assert_eq!(Verdict::of([Ok, Warn, Skipped]), Verdict::Degraded);
    assert_eq!(Verdict::of([Warn, Fail]), Verdict::Unhealthy);
    assert_eq!(Verdict::of([Error]), Verdict::Unhealthy);
    assert_eq!(
        [Verdict::Healthy, Verdict::Degraded, Verdict::Unhealthy].map(Verdict::code),
        [0, 1, 2]
    );
}

#[test]
fn table_puts_failures_first_and_fits_the_width() {
    let text = table(&sample(), Painter { color: false }, 80, None);
    insta::assert_snapshot!(text);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }
    let order: Vec<usize> = ["db", "api-ready", "queue", "api-live", "tls"]
        .iter()
        .map(|id| text.find(&format!(" {id} ")).expect(id))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn table_marks_what_changed_between_rounds() {
    let before = sample();
    let mut after = sample();
    after.envs[0].checks[3].status = StepStatus::Ok; // api-ready recovered
    after.envs[0].checks[0].status = StepStatus::Fail; // api-live newly failing
    after.envs[0].checks[0].message = Some("expected status == 200, got 502".into());
    let changed = changes(&before, &after);
    assert_eq!(
        changed.get(&("production".to_string(), "api-ready".to_string())),
        Some(&Change::Recovered)
    );
    assert_eq!(
        changed.get(&("production".to_string(), "api-live".to_string())),
        Some(&Change::NewlyFailing)
    );
    assert_eq!(changed.len(), 2, "{changed:?}");
    let text = table(&after, Painter { color: false }, 120, Some(&changed));
    assert!(
        text.contains("NEW expected status == 200, got 502"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("api-ready") && l.contains("FIXED")),
        "{text}"
    );
}

#[test]
fn json_has_the_contract_fields_and_an_env_everywhere() {
    let doc = json(&sample());
    assert_eq!(doc["runbook"], "health");
    assert_eq!(doc["overall_status"], "unhealthy");
    assert!(doc["duration_ms"].is_u64());
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 6);
    for c in checks {
        for key in [
            "id",
            "name",
            "env",
            "status",
            "duration_ms",
            "message",
            "outputs",
        ] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
    assert_eq!(checks[2]["error"], "unreachable");
    assert_eq!(checks[4]["skip"], "needs");
    let envs = doc["environments"].as_array().expect("environments");
    assert_eq!(envs[0]["overall_status"], "unhealthy");
    assert_eq!(envs[1]["overall_status"], "healthy");
    assert!(
        doc.get("env").is_none(),
        "several environments: no single env"
    );
}

#[test]
fn prometheus_text_is_accepted_by_promtool() {
    let text = prometheus(&sample());
    insta::assert_snapshot!(text);
    assert!(
        text.contains(r#"opsctl_check_status{env="staging \"eu\"\\1",runbook="health",check="api-live",status="ok"} 0"#),
        "{text}"
    );
    assert!(text.contains(r#"opsctl_health_status{env="production",runbook="health"} 2"#));
    let out = promtool_check(&text);
    assert!(out.status.success(), "promtool: {out:?}");
}

fn promtool_check(text: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): it is the oracle for this test. Install it \
                 (Debian: apt-get install --no-install-recommends prometheus) or run \
                 scripts/test.sh as root, which installs it"
            )
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    child.wait_with_output().expect("promtool output")
}

#[test]
fn junit_has_one_testcase_per_check() {
    let text = junit(&sample());
    insta::assert_snapshot!(text);
    assert_eq!(text.matches("<testcase ").count(), 6);
    assert_eq!(text.matches("<failure ").count(), 1);
    assert_eq!(text.matches("<error ").count(), 1);
    assert_eq!(text.matches("<skipped ").count(), 1);
    assert!(text.contains("staging &quot;eu&quot;\\1"), "{text}");
}

#[test]
fn xml_drops_what_xml_forbids() {
    assert_eq!(xml("a\u{1}b<&>\"'\n"), "ab&lt;&amp;&gt;&quot;&apos;\n");
}
