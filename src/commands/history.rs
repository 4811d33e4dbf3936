//! `opsctl history [RUNBOOK]`: past runs from the records directory, newest first — when,
//! who, where, how it ended, how long it took, what failed. Records are read through the
//! same summary every renderer uses; a record cut short reads as `unfinished`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::exec::{Event, RunStatus};
use crate::exit_code;
use crate::invocation::{Global, RunFormat};
use crate::report::style::{Painter, human_ms};
use crate::report::summary::Summary;

/// One past run.
struct Past {
    path: PathBuf,
    summary: Summary,
}

pub fn history(g: &Global, runbook: Option<&str>, limit: usize, format: RunFormat) -> i32 {
    let dir = crate::report::record::state_dir().join("runs");
    let files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            eprintln!("opsctl history: cannot read {}: {e}", dir.display());
            return exit_code::INVALID;
        }
    };
    // Newest first, by the start time each record's first line gives (only that line is
    // read until a run is shown).
    let mut heads: Vec<(chrono::DateTime<chrono::Utc>, PathBuf)> = files
        .into_iter()
        .filter_map(|path| {
            let (name, at) = header(&path)?;
            runbook.is_none_or(|r| r == name).then_some((at, path))
        })
        .collect();
    heads.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let mut runs = Vec::new();
    for (_, path) in heads.into_iter().take(limit) {
        match crate::report::record::read(&path) {
            Ok(record) => {
                let summary = Summary::of(&record.events);
                runs.push(Past { path, summary });
            }
            Err(e) => eprintln!("opsctl history: skipped: {e}"),
        }
    }
    let text = match format {
        RunFormat::Json => {
            serde_json::to_string_pretty(&Value::Array(runs.iter().map(to_json).collect()))
                .unwrap_or_default()
                + "\n"
        }
        RunFormat::Human => human(
            &runs,
            &dir,
            Painter {
                color: g.color.enabled_for_stdout(),
            },
        ),
    };
    super::print_stdout(&text)
}

/// The runbook a record is of and when its run started, from its first line (without
/// reading the rest).
fn header(path: &Path) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).ok()?;
    let mut first = String::new();
    std::io::BufReader::new(file).read_line(&mut first).ok()?;
    match serde_json::from_str::<Event>(&first).ok()? {
        Event::Record { runbook, at, .. } | Event::RunStarted { runbook, at, .. } => {
            Some((runbook, at))
        }
        _ => None,
    }
}

fn failed_steps(s: &Summary) -> Vec<String> {
    s.steps
        .iter()
        .filter(|f| f.status.failed())
        .map(|f| f.path.clone())
        .collect()
}

fn to_json(p: &Past) -> Value {
    let s = &p.summary;
    let run = s.run.as_ref();
    let end = s.end;
    json!({
        "run_id": run.map(|r| r.run_id.clone()),
        "runbook": run.map(|r| r.runbook.clone()),
        "mode": s.mode(),
        "env": run.map(|r| r.env.clone()),
        "user": run.map(|r| r.user.clone()),
        "host": run.and_then(|r| r.host.clone()),
        "started_at": run.map(|r| r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "status": end.map_or(RunStatus::Unfinished, |e| e.status),
        "duration_ms": end.map(|e| e.duration_ms),
        "failed": failed_steps(s),
        "record": p.path.display().to_string(),
    })
}

fn human(runs: &[Past], dir: &Path, painter: Painter) -> String {
    if runs.is_empty() {
        return format!("no runs recorded in {}\n", dir.display());
    }
    let mut out = format!(
        "{:<17}  {:<20}  {:<12}  {:<10}  {:<10}  {:>8}  {}\n",
        "STARTED (UTC)", "RUNBOOK", "ENV", "USER", "STATUS", "TOOK", "FAILED"
    );
    for p in runs {
        let s = &p.summary;
        let Some(run) = &s.run else { continue };
        let (status, took) = s.end.map_or((RunStatus::Unfinished, String::new()), |e| {
            (e.status, human_ms(e.duration_ms))
        });
        let word = format!("{:<10}", status.as_str());
        let word = match status {
            RunStatus::Ok => painter.paint(anstyle::AnsiColor::Green.on_default(), &word),
            RunStatus::Warn => painter.paint(anstyle::AnsiColor::Yellow.on_default(), &word),
            _ => painter.paint(anstyle::AnsiColor::Red.on_default().bold(), &word),
        };
        let mode = match s.mode() {
            crate::exec::Mode::Run => String::new(),
            m => format!(" ({})", m.as_str()),
        };
        out.push_str(&format!(
            "{:<17}  {:<20}  {:<12}  {:<10}  {word}  {took:>8}  {}{mode}\n",
            run.at.format("%Y-%m-%d %H:%M"),
            run.runbook,
            run.env,
            run.user,
            failed_steps(s).join(", "),
        ));
    }
    out
}
