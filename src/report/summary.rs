//! One aggregator of a run's events: what every renderer of a finished run (human summary,
//! JSON object, postmortem timeline) reads, computed once from the events alone, so a run
//! and its replay from the record (`opsctl report`) render the same.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::exec::events::{Answer, Confirmer, SkipReason};
use crate::exec::{Event, Mode, Planned, RunStatus, StepStatus};

/// The run as its top-level `run_started` described it (plus the record header, if any).
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub mode: Mode,
    pub env: String,
    pub user: String,
    pub params: Value,
    pub at: DateTime<Utc>,
    /// From the record header.
    pub host: Option<String>,
    pub opsctl: Option<String>,
}

/// One finished step (nested ones included; `path` says where).
#[derive(Clone, Debug)]
pub struct Finished {
    pub path: String,
    pub index: usize,
    pub id: String,
    pub name: String,
    pub action: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration_ms: u64,
    pub message: Option<String>,
    pub cause: Option<String>,
    pub skip: Option<SkipReason>,
    pub error: Option<crate::actions::ErrorKind>,
    pub outputs: Value,
    pub plan: Option<Planned>,
    pub at: DateTime<Utc>,
}

impl Finished {
    pub fn top_level(&self) -> bool {
        !self.path.contains('/')
    }
}

/// A confirmation asked (or that could not be).
#[derive(Clone, Debug)]
pub struct Asked {
    pub path: String,
    pub description: String,
    pub decision: Answer,
    pub by: Confirmer,
    pub at: DateTime<Utc>,
}

/// How the run ended.
#[derive(Clone, Copy, Debug)]
pub struct End {
    pub status: RunStatus,
    pub duration_ms: u64,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub run: Option<RunInfo>,
    pub steps: Vec<Finished>,
    pub asked: Vec<Asked>,
    pub end: Option<End>,
    host: Option<String>,
    opsctl: Option<String>,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    /// A whole run's events folded in (a record read back).
    pub fn of(events: &[Event]) -> Summary {
        let mut s = Summary::new();
        for e in events {
            s.add(e);
        }
        s
    }

    /// Folds one event in.
    pub fn add(&mut self, event: &Event) {
        match event {
            Event::Record { host, opsctl, .. } => {
                self.host = Some(host.clone());
                self.opsctl = Some(opsctl.clone());
            }
            Event::RunStarted {
                run_id,
                runbook,
                title,
                parent: None,
                mode,
                user,
                env,
                params,
                at,
                steps,
                ..
            } => {
                // One entry per step: sized once (10,000 steps would leave a third unused).
                self.steps.reserve_exact(*steps);
                self.run = Some(RunInfo {
                    run_id: run_id.clone(),
                    runbook: runbook.clone(),
                    title: title.clone(),
                    mode: *mode,
                    env: env.clone(),
                    user: user.clone(),
                    params: params.clone(),
                    at: *at,
                    host: self.host.clone(),
                    opsctl: self.opsctl.clone(),
                });
            }
            Event::Confirmation {
                path,
                description,
                decision,
                by,
                at,
            } => self.asked.push(Asked {
                path: path.clone(),
                description: description.clone(),
                decision: *decision,
                by: *by,
                at: *at,
            }),
            Event::StepFinished {
                path,
                index,
                id,
                name,
                action,
                status,
                attempts,
                duration_ms,
                message,
                cause,
                skip,
                error,
                outputs,
                plan,
                at,
            } => self.steps.push(Finished {
                path: path.clone(),
                index: *index,
                id: id.clone(),
                name: name.clone(),
                action: action.clone(),
                status: *status,
                attempts: *attempts,
                duration_ms: *duration_ms,
                message: message.clone(),
                cause: cause.clone(),
                skip: *skip,
                error: *error,
                outputs: outputs.clone(),
                plan: plan.clone(),
                at: *at,
            }),
            Event::RunFinished {
                parent: None,
                status,
                duration_ms,
                at,
                ..
            } => {
                self.end = Some(End {
                    status: *status,
                    duration_ms: *duration_ms,
                    at: *at,
                })
            }
            _ => {}
        }
    }

    pub fn mode(&self) -> Mode {
        self.run.as_ref().map_or(Mode::Run, |r| r.mode)
    }

    /// Top-level steps in runbook order.
    pub fn top_level(&self) -> Vec<&Finished> {
        let mut v: Vec<&Finished> = self.steps.iter().filter(|s| s.top_level()).collect();
        v.sort_by_key(|s| s.index);
        v
    }

    /// Steps (all levels) by status, for counts.
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// `3 ok, 1 fail, 2 skipped`: the statuses that occur, in a fixed order.
    pub fn counts_text(&self) -> String {
        [
            StepStatus::Ok,
            StepStatus::Warn,
            StepStatus::Fail,
            StepStatus::Error,
            StepStatus::Skipped,
            StepStatus::Cancelled,
        ]
        .into_iter()
        .filter_map(|s| {
            let n = self.count(s);
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Failed steps, each with the steps skipped because of it.
    pub fn failures(&self) -> Vec<(&Finished, Vec<&Finished>)> {
        self.steps
            .iter()
            .filter(|f| f.status.failed())
            .map(|f| {
                let skipped = self
                    .steps
                    .iter()
                    .filter(|s| {
                        s.status == StepStatus::Skipped && s.cause.as_deref() == Some(&f.path)
                    })
                    .collect();
                (f, skipped)
            })
            .collect()
    }

    /// Steps that did not run for a reason other than a failure or a false `when`:
    /// no yes, an abort, a nested runbook left incomplete.
    pub fn not_done(&self) -> Vec<&Finished> {
        self.steps
            .iter()
            .filter(|f| {
                f.status == StepStatus::Skipped
                    && f.cause.is_none()
                    && f.plan.is_none()
                    && !matches!(f.skip, Some(SkipReason::When) | Some(SkipReason::Needs))
            })
            .collect()
    }

    /// Steps a plan described instead of executing.
    pub fn planned(&self) -> Vec<(&Finished, &Planned)> {
        self.steps
            .iter()
            .filter_map(|f| f.plan.as_ref().map(|p| (f, p)))
            .collect()
    }

    /// The `run --format json` object (contract section 7).
    pub fn to_json(&self) -> Value {
        let (run_id, runbook) = self
            .run
            .as_ref()
            .map_or((String::new(), String::new()), |r| {
                (r.run_id.clone(), r.runbook.clone())
            });
        let steps: Vec<Value> = self
            .top_level()
            .into_iter()
            .map(|f| {
                let mut step = json!({
                    "id": f.id,
                    "name": f.name,
                    "action": f.action,
                    "status": f.status,
                    "attempts": f.attempts,
                    "duration_ms": f.duration_ms,
                    "message": f.message,
                    "outputs": f.outputs,
                });
                if let Some(c) = &f.cause {
                    step["cause"] = json!(c);
                }
                if let Some(k) = f.error {
                    step["error"] = json!(k);
                }
                if let Some(p) = &f.plan {
                    step["plan"] = json!(p);
                }
                step
            })
            .collect();
        let (status, duration_ms) = self
            .end
            .map_or((RunStatus::Unfinished, 0), |e| (e.status, e.duration_ms));
        let mut doc = json!({
            "runbook": runbook,
            "run_id": run_id,
            "mode": self.mode(),
            "status": status,
            "duration_ms": duration_ms,
            "steps": steps,
        });
        if self.mode() == Mode::Plan {
            doc["planned"] = Value::Array(
                self.planned()
                    .into_iter()
                    .map(|(f, p)| {
                        json!({
                            "path": f.path,
                            "would_run": p.would_run,
                            "reason": p.reason,
                            "description": p.description,
                            "args": p.args,
                        })
                    })
                    .collect(),
            );
        }
        doc
    }
}

/// A few scalar outputs for a line: `status=200 latency_ms=12`.
pub fn brief(outputs: &Value) -> String {
    let Some(map) = outputs.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, v) in map {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::String(s) if s.len() <= 40 && !s.contains('\n') && !s.is_empty() => {
                format!("{s:?}")
            }
            _ => continue,
        };
        parts.push(format!("{k}={text}"));
        if parts.len() == 5 {
            break;
        }
    }
    parts.join(" ")
}

/// A reporter that folds a run's events into a [`Summary`] the caller reads once the run
/// has ended (`health`, `test`).
pub struct Collector(pub std::sync::Arc<std::sync::Mutex<Summary>>);

impl Collector {
    /// The reporter and the summary it fills.
    pub fn new() -> (Collector, std::sync::Arc<std::sync::Mutex<Summary>>) {
        let shared = std::sync::Arc::new(std::sync::Mutex::new(Summary::new()));
        (Collector(shared.clone()), shared)
    }
}

impl crate::exec::Reporter for Collector {
    fn event(&mut self, event: &Event) {
        if let Ok(mut s) = self.0.lock() {
            s.add(event);
        }
    }
}
