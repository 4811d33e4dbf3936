//! The four faces of a [`HealthReport`]: `table` for people, `json` for scripts, `prometheus`
//! for node_exporter's textfile collector (and a Pushgateway), `junit` for CI dashboards.
//! Every one names the environment of each check.
//!
//! Inputs are already redacted (events are masked where they leave the executor); the
//! command masks the rendered text once more with every environment's secrets.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Check, EnvHealth, HealthReport, Verdict};
use crate::exec::StepStatus;
use crate::report::style::{Painter, human_ms, status_style};

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthFormat {
    Table,
    Json,
    Prometheus,
    Junit,
}

/// Failing first, then warnings, then the rest; runbook order within each.
fn rank(status: StepStatus) -> u8 {
    match status {
        StepStatus::Fail | StepStatus::Error => 0,
        StepStatus::Warn => 1,
        StepStatus::Cancelled => 2,
        StepStatus::Ok => 3,
        StepStatus::Skipped => 4,
    }
}

/// What changed for one check since the previous `--watch` round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Was ok/warn/skipped (or absent), now fail/error.
    NewlyFailing,
    /// Was fail/error, now ok/warn.
    Recovered,
    /// Was ok, now warn.
    NewlyWarning,
}

/// Compares two rounds check by check (by environment and id).
pub fn changes(
    previous: &HealthReport,
    current: &HealthReport,
) -> HashMap<(String, String), Change> {
    let before: HashMap<(&str, &str), StepStatus> = previous
        .envs
        .iter()
        .flat_map(|e| {
            e.checks
                .iter()
                .map(move |c| ((e.env.as_str(), c.id.as_str()), c.status))
        })
        .collect();
    let mut out = HashMap::new();
    for e in &current.envs {
        for c in &e.checks {
            let was = before.get(&(e.env.as_str(), c.id.as_str())).copied();
            let change = match (was, c.status) {
                (Some(w), now) if w.failed() && now.succeeded() => Some(Change::Recovered),
                (w, now) if now.failed() && !w.is_some_and(StepStatus::failed) => {
                    Some(Change::NewlyFailing)
                }
                (Some(StepStatus::Ok), StepStatus::Warn) => Some(Change::NewlyWarning),
                _ => None,
            };
            if let Some(change) = change {
                out.insert((e.env.clone(), c.id.clone()), change);
            }
        }
    }
    out
}

fn verdict_style(v: Verdict) -> anstyle::Style {
    match v {
        Verdict::Healthy => status_style(StepStatus::Ok).1.bold(),
        Verdict::Degraded => status_style(StepStatus::Warn).1,
        Verdict::Unhealthy => status_style(StepStatus::Fail).1,
    }
}

/// Cuts `text` to `max` characters (at least 1), marking the cut.
fn fit(text: &str, max: usize) -> String {
    let max = max.max(1);
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The message shown beside a check: its own, or why it was skipped.
fn check_message(c: &Check) -> String {
    let first_line = |s: &str| s.lines().next().unwrap_or("").to_string();
    match (&c.message, c.status) {
        (Some(m), _) if !m.is_empty() => first_line(m),
        (_, StepStatus::Skipped) => match &c.cause {
            Some(cause) => format!("skipped: `{cause}` did not succeed"),
            None => "skipped".to_string(),
        },
        _ => String::new(),
    }
}

/// The table: per environment a heading with its verdict and counts, then its checks,
/// failing first with their message; the overall verdict and time last. Lines fit
/// `width` columns.
pub fn table(
    report: &HealthReport,
    painter: Painter,
    width: usize,
    changed: Option<&HashMap<(String, String), Change>>,
) -> String {
    let mut out = String::new();
    let id_w = report
        .envs
        .iter()
        .flat_map(|e| e.checks.iter().map(|c| c.id.chars().count()))
        .max()
        .unwrap_or(2)
        .clamp(2, 28);
    // A step without a `name` is named by its id: no second column saying it again.
    let shown_name = |c: &Check| {
        if c.name == c.id {
            String::new()
        } else {
            c.name.clone()
        }
    };
    let name_w = report
        .envs
        .iter()
        .flat_map(|e| e.checks.iter().map(|c| shown_name(c).chars().count()))
        .max()
        .unwrap_or(0)
        .min(34);
    for env in &report.envs {
        let heading_plain = format!(
            "{} · {}{} · {}",
            env.env,
            report.runbook,
            if report.quick { " --quick" } else { "" },
            env.verdict.as_str().to_uppercase()
        );
        let heading = format!(
            "{} · {}{} · {}",
            env.env,
            report.runbook,
            if report.quick { " --quick" } else { "" },
            painter.paint(
                verdict_style(env.verdict),
                &env.verdict.as_str().to_uppercase()
            ),
        );
        let n = env.checks.len();
        let detail = fit(
            &format!(
                "{n} check{} in {}: {}",
                if n == 1 { "" } else { "s" },
                human_ms(env.duration_ms),
                counts(env)
            ),
            width.saturating_sub(heading_plain.chars().count() + 2),
        );
        let _ = writeln!(out, "{heading}  {}", painter.dim(&detail));
        let mut checks: Vec<&Check> = env.checks.iter().collect();
        checks.sort_by_key(|c| rank(c.status));
        for c in checks {
            let mark = changed
                .and_then(|m| m.get(&(env.env.clone(), c.id.clone())))
                .map(|ch| match ch {
                    Change::NewlyFailing => {
                        painter.paint(verdict_style(Verdict::Unhealthy), "NEW ")
                    }
                    Change::NewlyWarning => painter.paint(verdict_style(Verdict::Degraded), "NEW "),
                    Change::Recovered => painter.paint(verdict_style(Verdict::Healthy), "FIXED "),
                })
                .unwrap_or_default();
            let duration = if c.status == StepStatus::Skipped {
                String::new()
            } else {
                human_ms(c.duration_ms)
            };
            // "  ✔ ok        id  name  123ms  " is the fixed part; the message gets the rest.
            let name_col = if name_w == 0 { 0 } else { name_w + 2 };
            let fixed = 2 + 11 + 2 + id_w + 2 + name_col + 7 + 2;
            let message = fit(&check_message(c), width.saturating_sub(fixed).max(20));
            let name = if name_w == 0 {
                String::new()
            } else {
                format!("{:<name_w$}  ", fit(&shown_name(c), name_w))
            };
            let line = format!(
                "  {}  {:<id_w$}  {name}{:>7}  ",
                painter.status(c.status),
                fit(&c.id, id_w),
                duration,
            );
            let line = format!("{line}{mark}{message}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let skipped = env.count(StepStatus::Skipped);
        if skipped > 0 {
            let _ = writeln!(
                out,
                "  {}",
                painter.dim(&format!(
                    "{skipped} skipped check{} not counted in the verdict",
                    if skipped == 1 { " is" } else { "s are" }
                ))
            );
        }
        if env.interrupted {
            let _ = writeln!(
                out,
                "  {}",
                painter.dim("interrupted before every check ended")
            );
        }
    }
    let per_env = if report.envs.len() > 1 {
        format!(
            " ({})",
            report
                .envs
                .iter()
                .map(|e| format!("{} {}", e.env, e.verdict.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} {}{per_env} in {}",
        painter.bold("health:"),
        painter.paint(verdict_style(report.overall), report.overall.as_str()),
        human_ms(report.duration_ms)
    );
    out
}

/// `2 fail, 1 warn, 5 ok, 1 skipped`.
fn counts(env: &EnvHealth) -> String {
    let mut parts = Vec::new();
    for s in [
        StepStatus::Fail,
        StepStatus::Error,
        StepStatus::Warn,
        StepStatus::Ok,
        StepStatus::Skipped,
        StepStatus::Cancelled,
    ] {
        let n = env.count(s);
        if n > 0 {
            parts.push(format!("{n} {}", s.as_str()));
        }
    }
    parts.join(", ")
}

fn check_json(env: &str, c: &Check) -> Value {
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "env": env,
        "status": c.status,
        "duration_ms": c.duration_ms,
        "message": c.message,
        "outputs": c.outputs,
    });
    if let Some(skip) = c.skip {
        v["skip"] = json!(skip);
    }
    if let Some(cause) = &c.cause {
        v["cause"] = json!(cause);
    }
    if let Some(kind) = c.error {
        v["error"] = json!(kind);
    }
    v
}

/// The contract's object — `runbook`, `overall_status`, `duration_ms`, `checks` (each with
/// its `env`) — plus `environments`, one verdict per environment (one entry for one).
pub fn json(report: &HealthReport) -> Value {
    let checks: Vec<Value> = report
        .envs
        .iter()
        .flat_map(|e| e.checks.iter().map(move |c| check_json(&e.env, c)))
        .collect();
    let environments: Vec<Value> = report
        .envs
        .iter()
        .map(|e| {
            json!({
                "env": e.env,
                "overall_status": e.verdict,
                "duration_ms": e.duration_ms,
                "run_id": e.run_id,
                "checks": e.checks.len(),
                "skipped": e.count(StepStatus::Skipped),
                "interrupted": e.interrupted,
            })
        })
        .collect();
    let mut doc = json!({
        "runbook": report.runbook,
        "overall_status": report.overall,
        "duration_ms": report.duration_ms,
        "quick": report.quick,
        "at": report.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "checks": checks,
        "environments": environments,
    });
    if let [only] = report.envs.as_slice() {
        doc["env"] = json!(only.env);
    }
    doc
}

/// A label value in the text exposition format: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Value of `opsctl_check_status`: 0 ok (or skipped, cancelled), 1 warn, 2 fail or error —
/// the same scale as `opsctl_health_status` and the exit code.
fn status_value(status: StepStatus) -> u8 {
    match status {
        StepStatus::Ok | StepStatus::Skipped | StepStatus::Cancelled => 0,
        StepStatus::Warn => 1,
        StepStatus::Fail | StepStatus::Error => 2,
    }
}

/// Seconds with millisecond precision, as Prometheus expects them.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The text exposition format (version 0.0.4), one family after the other with its HELP
/// and TYPE lines, ready for node_exporter's textfile collector or a Pushgateway.
pub fn prometheus(report: &HealthReport) -> String {
    let mut out = String::new();
    let rb = label(&report.runbook);
    let family = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
    };
    family(
        &mut out,
        "opsctl_check_status",
        "How a health check ended: 0 ok or skipped, 1 warn, 2 fail or error; the status label says which.",
    );
    for e in &report.envs {
        let env = label(&e.env);
        for c in &e.checks {
            let _ = writeln!(
                out,
                "opsctl_check_status{{env=\"{env}\",runbook=\"{rb}\",check=\"{}\",status=\"{}\"}} {}",
                label(&c.id),
                c.status.as_str(),
                status_value(c.status)
            );
        }
    }
    family(
        &mut out,
        "opsctl_check_duration_seconds",
        "How long a health check took, retries included.",
    );
    for e in &report.envs {
        let env = label(&e.env);
        for c in e.checks.iter().filter(|c| c.status != StepStatus::Skipped) {
            let _ = writeln!(
                out,
                "opsctl_check_duration_seconds{{env=\"{env}\",runbook=\"{rb}\",check=\"{}\"}} {}",
                label(&c.id),
                seconds(c.duration_ms)
            );
        }
    }
    family(
        &mut out,
        "opsctl_health_status",
        "Verdict of the health runbook: 0 healthy, 1 degraded, 2 unhealthy.",
    );
    for e in &report.envs {
        let _ = writeln!(
            out,
            "opsctl_health_status{{env=\"{}\",runbook=\"{rb}\"}} {}",
            label(&e.env),
            e.verdict.code()
        );
    }
    family(
        &mut out,
        "opsctl_health_duration_seconds",
        "How long the health runbook took.",
    );
    for e in &report.envs {
        let _ = writeln!(
            out,
            "opsctl_health_duration_seconds{{env=\"{}\",runbook=\"{rb}\"}} {}",
            label(&e.env),
            seconds(e.duration_ms)
        );
    }
    family(
        &mut out,
        "opsctl_health_last_run_timestamp_seconds",
        "When the health runbook last ran (Unix time): alert when it grows old.",
    );
    let ts = report.at.timestamp_millis();
    for e in &report.envs {
        let _ = writeln!(
            out,
            "opsctl_health_last_run_timestamp_seconds{{env=\"{}\",runbook=\"{rb}\"}} {}.{:03}",
            label(&e.env),
            ts.div_euclid(1000),
            ts.rem_euclid(1000)
        );
    }
    out
}

/// Text for XML: markup characters escaped, characters XML 1.0 forbids dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a `testsuite` per environment, a `testcase` per check; `fail` → `failure`,
/// `error` → `error`, skipped → `skipped`, a warning passes with a `system-out` note.
pub fn junit(report: &HealthReport) -> String {
    let total = |f: &dyn Fn(&EnvHealth) -> usize| report.envs.iter().map(f).sum::<usize>();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"opsctl health {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        xml(&report.runbook),
        total(&|e| e.checks.len()),
        total(&|e| e.count(StepStatus::Fail)),
        total(&|e| e.count(StepStatus::Error)),
        total(&|e| e.count(StepStatus::Skipped) + e.count(StepStatus::Cancelled)),
        seconds(report.duration_ms),
        report.at.format("%Y-%m-%dT%H:%M:%S"),
    );
    for e in &report.envs {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}.{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            xml(&report.runbook),
            xml(&e.env),
            e.checks.len(),
            e.count(StepStatus::Fail),
            e.count(StepStatus::Error),
            e.count(StepStatus::Skipped) + e.count(StepStatus::Cancelled),
            seconds(e.duration_ms),
            report.at.format("%Y-%m-%dT%H:%M:%S"),
        );
        let _ = writeln!(
            out,
            "    <properties><property name=\"env\" value=\"{}\"/><property name=\"verdict\" value=\"{}\"/><property name=\"run_id\" value=\"{}\"/></properties>",
            xml(&e.env),
            e.verdict.as_str(),
            xml(&e.run_id)
        );
        for c in &e.checks {
            let name = if c.name == c.id {
                c.id.clone()
            } else {
                format!("{} ({})", c.name, c.id)
            };
            let open = format!(
                "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{}\"",
                xml(&report.runbook),
                xml(&e.env),
                xml(&name),
                seconds(c.duration_ms)
            );
            let message = xml(&check_message(c));
            let body = match c.status {
                StepStatus::Ok => None,
                StepStatus::Warn => Some(format!("<system-out>warn: {message}</system-out>")),
                StepStatus::Fail => Some(format!(
                    "<failure message=\"{message}\" type=\"fail\">{message}</failure>"
                )),
                StepStatus::Error => Some(format!(
                    "<error message=\"{message}\" type=\"{}\">{message}</error>",
                    c.error.map_or("error", |k| k.as_str())
                )),
                StepStatus::Skipped | StepStatus::Cancelled => {
                    Some(format!("<skipped message=\"{message}\"/>"))
                }
            };
            match body {
                None => {
                    let _ = writeln!(out, "{open}/>");
                }
                Some(b) => {
                    let _ = writeln!(out, "{open}>\n      {b}\n    </testcase>");
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests;
