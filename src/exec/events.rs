//! What the executor tells the world: step started/finished, retries, confirmations.
//! Reporters (human, JSON, record) consume these; execution code never prints.
//! Every event is redacted before any reporter sees it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::redact::Redactor;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Warn,
    Fail,
    Error,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Warn => "warn",
            StepStatus::Fail => "fail",
            StepStatus::Error => "error",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    /// `ok` or `warn`: dependents may run.
    pub fn succeeded(self) -> bool {
        matches!(self, StepStatus::Ok | StepStatus::Warn)
    }

    /// `fail` or `error`: the run failed.
    pub fn failed(self) -> bool {
        matches!(self, StepStatus::Fail | StepStatus::Error)
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Warn,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Warn => "warn",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// A mutating step that `plan` did not execute: would it run, and with what.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// `true`/`false`, or `null` when it depends on a `when` that reads results the
    /// plan does not produce.
    pub would_run: Option<bool>,
    pub reason: String,
    pub description: String,
    pub args: Value,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        runbook: String,
        title: String,
        /// Step path of the `runbook` step that started this nested run.
        parent: Option<String>,
        mode: &'static str,
        user: String,
        env: String,
        params: Value,
        steps: usize,
        at: DateTime<Utc>,
    },
    StepStarted {
        path: String,
        id: String,
        name: String,
        action: &'static str,
        description: String,
        args: Value,
        mutating: bool,
        attempt: u32,
        at: DateTime<Utc>,
    },
    StepRetrying {
        path: String,
        attempt: u32,
        status: StepStatus,
        message: String,
        delay_ms: u64,
        at: DateTime<Utc>,
    },
    Confirmation {
        path: String,
        description: String,
        decision: &'static str,
        by: &'static str,
        at: DateTime<Utc>,
    },
    StepFinished {
        path: String,
        /// Position of the step in its runbook (reports list steps in this order).
        index: usize,
        id: String,
        name: String,
        action: &'static str,
        status: StepStatus,
        attempts: u32,
        duration_ms: u64,
        message: Option<String>,
        /// For skipped steps: the step whose result caused the skip.
        cause: Option<String>,
        outputs: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<Planned>,
        at: DateTime<Utc>,
    },
    RunFinished {
        run_id: String,
        runbook: String,
        parent: Option<String>,
        status: RunStatus,
        duration_ms: u64,
        at: DateTime<Utc>,
    },
}

impl Event {
    /// Masks every secret in every string of the event.
    fn redact(&mut self, r: &Redactor) {
        if r.is_empty() {
            return;
        }
        let s = |x: &mut String| *x = r.redact(x);
        match self {
            Event::RunStarted { params, title, .. } => {
                r.redact_json(params);
                s(title);
            }
            Event::StepStarted {
                description,
                args,
                name,
                ..
            } => {
                s(description);
                s(name);
                r.redact_json(args);
            }
            Event::StepRetrying { message, .. } => s(message),
            Event::Confirmation { description, .. } => s(description),
            Event::StepFinished {
                message,
                outputs,
                plan,
                name,
                ..
            } => {
                if let Some(m) = message {
                    s(m);
                }
                s(name);
                r.redact_json(outputs);
                if let Some(p) = plan {
                    s(&mut p.description);
                    r.redact_json(&mut p.args);
                    s(&mut p.reason);
                }
            }
            Event::RunFinished { .. } => {}
        }
    }
}

/// Consumes events. Implementations must not block for long: they run inline.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
    /// Called once after the run (flush, print the summary).
    fn finish(&mut self) {}
}

/// Fans events out to reporters, redacting first. Cloned into every task.
#[derive(Clone)]
pub struct EventSink {
    reporters: Arc<Mutex<Vec<Box<dyn Reporter>>>>,
    redactor: Redactor,
}

impl EventSink {
    pub fn new(redactor: Redactor, reporters: Vec<Box<dyn Reporter>>) -> EventSink {
        EventSink {
            reporters: Arc::new(Mutex::new(reporters)),
            redactor,
        }
    }

    pub fn emit(&self, mut event: Event) {
        event.redact(&self.redactor);
        if let Ok(mut reps) = self.reporters.lock() {
            for r in reps.iter_mut() {
                r.event(&event);
            }
        }
    }

    pub fn finish(&self) {
        if let Ok(mut reps) = self.reporters.lock() {
            for r in reps.iter_mut() {
                r.finish();
            }
        }
    }
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}
