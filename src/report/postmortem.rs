//! `opsctl report RECORD --format markdown`: a run as a postmortem timeline, ready to paste
//! into an incident document — who ran what where, each step with its times, status and
//! key outputs, each confirmation and who gave it, what failed and what it took down with
//! it, what was not done, and the end.

use chrono::{DateTime, Utc};

use super::style::human_ms;
use super::summary::{Summary, brief};
use crate::exec::{Event, Mode, RunStatus, StepStatus};

/// Renders the events of one run (in record order).
pub fn render(events: &[Event]) -> String {
    let mut summary = Summary::new();
    for e in events {
        summary.add(e);
    }
    let Some(run) = summary.run.clone() else {
        return "# Run record\n\nThe record holds no run.\n".to_string();
    };
    let start = run.at;
    let mut out = format!(
        "# Postmortem timeline: {} — {}\n\n",
        run.runbook,
        cell(&run.title)
    );
    let end = summary.end;
    let status = end.map_or(RunStatus::Unfinished, |e| e.status);
    let counts = summary.counts_text();
    let params = run
        .params
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("`{k}={}`", cell(&crate::expr::text_of(v))))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!(
        "| Run | `{}` ({}, environment `{}`) |\n",
        run.run_id,
        if run.mode == Mode::Plan {
            "plan"
        } else {
            "run"
        },
        run.env
    ));
    out.push_str(&format!(
        "| Run by | {} on {}{} |\n",
        cell(&run.user),
        cell(run.host.as_deref().unwrap_or("an unrecorded host")),
        run.opsctl
            .as_deref()
            .map(|v| format!(" (opsctl {v})"))
            .unwrap_or_default()
    ));
    out.push_str(&format!("| Started | {} |\n", full_time(start)));
    match end.filter(|e| e.status != RunStatus::Unfinished) {
        Some(e) => out.push_str(&format!(
            "| Ended | {} (after {}) |\n",
            full_time(e.at),
            human_ms(e.duration_ms)
        )),
        None => out.push_str(&format!(
            "| Ended | the record stops here, at {}: opsctl did not finish writing it |\n",
            full_time(end.map_or(start, |e| e.at))
        )),
    }
    out.push_str(&format!(
        "| Result | **{}** — {} |\n",
        status.as_str(),
        if counts.is_empty() {
            "no steps".to_string()
        } else {
            counts
        }
    ));
    if !params.is_empty() {
        out.push_str(&format!("| Params | {params} |\n"));
    }

    out.push_str(
        "\n## Timeline\n\n| Time (UTC) | +s | Step | What happened |\n|---|---|---|---|\n",
    );
    let mut rows: Vec<(DateTime<Utc>, String, String)> = Vec::new();
    rows.push((
        start,
        String::new(),
        format!("Run started by {} in `{}`", cell(&run.user), run.env),
    ));
    for e in events {
        match e {
            Event::Confirmation {
                path,
                description,
                decision,
                by,
                at,
            } => rows.push((
                *at,
                format!("`{path}`"),
                format!(
                    "Confirmation: **{}** by {} — {}",
                    decision.as_str(),
                    by.as_str(),
                    cell(description)
                ),
            )),
            Event::StepRetrying {
                path,
                attempt,
                status,
                message,
                delay_ms,
                at,
            } => rows.push((
                *at,
                format!("`{path}`"),
                format!(
                    "attempt {attempt} ended {}: {} — retrying in {}",
                    status.as_str(),
                    cell(message),
                    human_ms(*delay_ms)
                ),
            )),
            Event::StepFinished {
                path,
                action,
                status,
                attempts,
                duration_ms,
                message,
                outputs,
                at,
                ..
            } => {
                let mut what = format!("**{}**", status.as_str());
                if *duration_ms > 0 {
                    what.push_str(&format!(" in {}", human_ms(*duration_ms)));
                }
                if *attempts > 1 {
                    what.push_str(&format!(" after {attempts} attempts"));
                }
                what.push_str(&format!(" (`{action}`)"));
                let detail = match (status, message) {
                    (StepStatus::Ok, _) => brief(outputs),
                    (_, Some(m)) => m.clone(),
                    _ => String::new(),
                };
                if !detail.is_empty() {
                    what.push_str(&format!(" — {}", cell(&detail)));
                }
                rows.push((*at, format!("`{path}`"), what));
            }
            Event::RunStarted {
                parent: Some(parent),
                runbook,
                at,
                ..
            } => rows.push((
                *at,
                format!("`{parent}`"),
                format!("runs runbook `{runbook}`"),
            )),
            _ => {}
        }
    }
    if let Some(e) = end {
        let what = if e.status == RunStatus::Unfinished {
            "The record ends here (opsctl was stopped before the run ended)".to_string()
        } else {
            format!("Run ended: **{}**", e.status.as_str())
        };
        rows.push((e.at, String::new(), what));
    }
    // Stable: events of one instant keep their record order.
    rows.sort_by_key(|r| r.0);
    for (at, step, what) in rows {
        let offset = (at - start).num_milliseconds().max(0) as f64 / 1000.0;
        out.push_str(&format!(
            "| {} | {offset:.1} | {step} | {what} |\n",
            at.format("%H:%M:%S%.3f")
        ));
    }

    let failures = summary.failures();
    if !failures.is_empty() {
        out.push_str("\n## What failed\n\n");
        for (f, skipped) in failures {
            out.push_str(&format!(
                "- `{}` ended **{}**{}\n",
                f.path,
                f.status.as_str(),
                f.message
                    .as_deref()
                    .map(|m| format!(": {}", m.replace('\n', " ")))
                    .unwrap_or_default()
            ));
            if !skipped.is_empty() {
                let names: Vec<String> = skipped.iter().map(|s| format!("`{}`", s.path)).collect();
                out.push_str(&format!(
                    "  - skipped because of it: {}\n",
                    names.join(", ")
                ));
            }
        }
    }
    let not_done = summary.not_done();
    if !not_done.is_empty() {
        out.push_str("\n## Not done\n\n");
        for f in not_done {
            out.push_str(&format!(
                "- `{}` — {}\n",
                f.path,
                f.message.as_deref().unwrap_or("skipped")
            ));
        }
    }
    let planned = summary.planned();
    if !planned.is_empty() {
        out.push_str("\n## Described by the plan, not executed\n\n");
        for (f, p) in planned {
            let verdict = match p.would_run {
                Some(true) => "would run",
                Some(false) => "would not run",
                None => "depends on its `when`",
            };
            out.push_str(&format!(
                "- `{}` {verdict} — {}\n",
                f.path,
                p.description.replace('\n', " ")
            ));
        }
    }
    out
}

fn full_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Text safe inside a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
