//! The human view of a run: on a terminal, a live spinner with elapsed time per running
//! step; otherwise one plain line per finished step. Both end with a summary that groups
//! skipped steps under the failure that caused them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::style::{Painter, human_ms};
use super::summary::{Summary, brief};
use crate::exec::confirm::Pause;
use crate::exec::events::Answer;
use crate::exec::{Event, Mode, Reporter, RunStatus, StepStatus};

/// Where the human view writes: the live multi-progress on a terminal, else a stream.
enum Sink {
    Live {
        live: LiveHandle,
        bars: HashMap<String, ProgressBar>,
    },
    Plain(Box<dyn Write + Send>),
}

pub struct HumanReporter {
    sink: Sink,
    paint: Painter,
    started: Instant,
    summary: Summary,
    record: Option<String>,
}

/// Lets prompts pause the live view: nothing is drawn and finished-step lines wait in
/// `pending` until the question is answered.
#[derive(Clone)]
pub struct LiveHandle {
    mp: MultiProgress,
    /// `Some` while paused: the lines held back.
    pending: Arc<Mutex<Option<Vec<String>>>>,
}

impl LiveHandle {
    fn println(&self, text: String) {
        if let Ok(mut pending) = self.pending.lock() {
            match pending.as_mut() {
                Some(held) => held.push(text),
                None => {
                    let _ = self.mp.println(text);
                }
            }
        }
    }
}

impl Pause for LiveHandle {
    fn pause(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            if pending.is_none() {
                let _ = self.mp.clear();
                self.mp.set_draw_target(ProgressDrawTarget::hidden());
                *pending = Some(Vec::new());
            }
        }
    }

    fn resume(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            self.mp
                .set_draw_target(ProgressDrawTarget::stdout_with_hz(12));
            for line in pending.take().unwrap_or_default() {
                let _ = self.mp.println(line);
            }
        }
    }
}

impl HumanReporter {
    /// `live`: draw spinners (stdout is a terminal).
    pub fn new(live: bool, color: bool, out: Box<dyn Write + Send>) -> HumanReporter {
        let sink = if live {
            Sink::Live {
                live: LiveHandle {
                    mp: MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(12)),
                    pending: Arc::new(Mutex::new(None)),
                },
                bars: HashMap::new(),
            }
        } else {
            Sink::Plain(out)
        };
        HumanReporter {
            sink,
            paint: Painter { color },
            started: Instant::now(),
            summary: Summary::new(),
            record: None,
        }
    }

    /// The handle prompts use to suspend the live view.
    pub fn live_handle(&self) -> Option<Arc<dyn Pause>> {
        match &self.sink {
            Sink::Live { live, .. } => Some(Arc::new(live.clone())),
            Sink::Plain(_) => None,
        }
    }

    pub fn set_record(&mut self, path: Option<String>) {
        self.record = path;
    }

    fn line(&mut self, text: String) {
        match &mut self.sink {
            Sink::Live { live, .. } => live.println(text),
            Sink::Plain(out) => {
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    fn depth(path: &str) -> usize {
        path.matches('/').count()
    }

    fn summary(&mut self, status: RunStatus, duration_ms: u64) {
        let out = render_summary(
            &self.summary,
            self.paint,
            status,
            duration_ms,
            self.record.as_deref(),
        );
        for l in out {
            self.line(l);
        }
    }
}

/// The closing lines of a run: the verdict and counts, each failure with the steps it
/// caused to be skipped, what was not done for lack of a yes, what a plan did not execute.
pub fn render_summary(
    summary: &Summary,
    p: Painter,
    status: RunStatus,
    duration_ms: u64,
    record: Option<&str>,
) -> Vec<String> {
    let verdict = match status {
        RunStatus::Ok => p.paint(anstyle::AnsiColor::Green.on_default().bold(), "ok"),
        RunStatus::Warn => p.paint(
            anstyle::AnsiColor::Yellow.on_default().bold(),
            "ok with warnings",
        ),
        RunStatus::Failed => p.paint(anstyle::AnsiColor::Red.on_default().bold(), "FAILED"),
        RunStatus::Cancelled => {
            p.paint(anstyle::AnsiColor::Magenta.on_default().bold(), "CANCELLED")
        }
        RunStatus::Unfinished => p.paint(
            anstyle::AnsiColor::Magenta.on_default().bold(),
            "UNFINISHED (the record ends here)",
        ),
    };
    let mut out = vec![String::new()];
    out.push(format!(
        "{} {verdict} — {} in {}",
        p.bold(if summary.mode() == Mode::Plan {
            "Plan"
        } else {
            "Run"
        }),
        summary.counts_text(),
        human_ms(duration_ms)
    ));
    for (f, skipped) in summary.failures() {
        out.push(format!(
            "  {} {}{}",
            p.status(f.status),
            p.bold(&f.path),
            f.message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        ));
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
            out.push(format!(
                "      {} {}",
                p.dim("└ skipped because of it:"),
                names.join(", ")
            ));
        }
    }
    for f in summary.not_done() {
        out.push(format!(
            "  {} {} — {}",
            p.status(f.status),
            p.bold(&f.path),
            f.message.as_deref().unwrap_or("")
        ));
    }
    let planned = summary.planned();
    if !planned.is_empty() {
        out.push(String::new());
        out.push(
            p.bold("Not executed by the plan (mutations, manual steps and what follows them):"),
        );
        for (f, plan) in planned {
            let verdict = match plan.would_run {
                Some(true) => p.paint(anstyle::AnsiColor::Yellow.on_default().bold(), "would run"),
                Some(false) => p.dim("would not run"),
                None => p.paint(
                    anstyle::AnsiColor::Yellow.on_default(),
                    "depends on its `when`",
                ),
            };
            out.push(format!(
                "  → {} {verdict} — {}",
                p.bold(&f.path),
                plan.description
            ));
            out.push(format!("      {}", p.dim(&plan.reason)));
            out.push(format!(
                "      {}",
                p.dim(&format!(
                    "args: {}",
                    crate::redact::clip(&plan.args.to_string(), 200)
                ))
            ));
        }
    }
    if let Some(r) = record {
        out.push(p.dim(&format!("Record: {r}")));
    }
    out
}

impl Reporter for HumanReporter {
    fn event(&mut self, event: &Event) {
        let p = self.paint;
        self.summary.add(event);
        match event {
            Event::RunStarted {
                runbook,
                title,
                parent,
                mode,
                env,
                run_id,
                ..
            } => match parent {
                None => {
                    self.started = Instant::now();
                    let verb = if *mode == Mode::Plan { "plan" } else { "run" };
                    self.line(format!(
                        "{} {} — {}  {}",
                        p.bold(&format!("▶ {verb}")),
                        p.bold(runbook),
                        title,
                        p.dim(&format!("(env {env}, run {run_id})"))
                    ));
                }
                Some(parent) => {
                    let indent = "  ".repeat(Self::depth(parent) + 1);
                    self.line(format!(
                        "{indent}{} {} — {title}",
                        p.dim("↳ runbook"),
                        p.bold(runbook)
                    ));
                }
            },
            Event::StepStarted {
                path,
                description,
                attempt,
                ..
            } => {
                if let Sink::Live { live, bars } = &mut self.sink {
                    let mp = &live.mp;
                    let indent = "  ".repeat(Self::depth(path));
                    let bar = bars.entry(path.clone()).or_insert_with(|| {
                        let style =
                            ProgressStyle::with_template("  {spinner} {msg} {elapsed:.dim}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                        let b = mp.add(ProgressBar::new_spinner().with_style(style));
                        b.enable_steady_tick(Duration::from_millis(100));
                        b
                    });
                    let retry = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    bar.set_message(format!("{indent}{}{retry}  {}", path, p.dim(description)));
                }
            }
            Event::StepRetrying {
                path,
                attempt,
                message,
                delay_ms,
                ..
            } => {
                let indent = "  ".repeat(Self::depth(path));
                self.line(format!(
                    "  {indent}{} {path}: attempt {attempt} — {message}; retrying in {}",
                    p.dim("↻"),
                    human_ms(*delay_ms)
                ));
            }
            Event::Confirmation {
                path, decision, by, ..
            } => {
                if *decision != Answer::NotAsked {
                    let indent = "  ".repeat(Self::depth(path));
                    self.line(format!(
                        "  {indent}{} {path}: {} by {}",
                        p.dim("?"),
                        decision.as_str(),
                        by.as_str()
                    ));
                }
            }
            Event::StepFinished {
                path,
                status,
                duration_ms,
                message,
                outputs,
                attempts,
                ..
            } => {
                if let Sink::Live { bars, .. } = &mut self.sink {
                    if let Some(bar) = bars.remove(path) {
                        bar.finish_and_clear();
                    }
                }
                let indent = "  ".repeat(Self::depth(path));
                let detail = match (status, message) {
                    (StepStatus::Ok, _) => brief(outputs),
                    (_, Some(m)) => m.clone(),
                    (_, None) => String::new(),
                };
                let tries = if *attempts > 1 {
                    format!(" ×{attempts}")
                } else {
                    String::new()
                };
                let time = if *duration_ms > 0 || status.succeeded() || status.failed() {
                    human_ms(*duration_ms)
                } else {
                    String::new()
                };
                self.line(format!(
                    "  {indent}{} {:<24} {:>6}{tries}  {}",
                    p.status(*status),
                    path,
                    p.dim(&time),
                    detail
                ));
            }
            Event::RunFinished {
                parent: None,
                status,
                duration_ms,
                ..
            } => self.summary(*status, *duration_ms),
            Event::RunFinished { .. } | Event::Record { .. } => {}
        }
    }

    fn finish(&mut self) {
        if let Sink::Live { live, bars } = &mut self.sink {
            for (_, b) in bars.drain() {
                b.finish_and_clear();
            }
            let _ = live.mp.clear();
        }
    }
}

/// A writer shared between reporters and tests.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
