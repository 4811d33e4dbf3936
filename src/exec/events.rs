//! What the executor tells the world: step started/finished, retries, confirmations.
//! Reporters (human, JSON, record) consume these; execution code never prints.
//! Every event is redacted before any reporter sees it. Events are plain data
//! (`Serialize + Deserialize`): a record is a list of them, and `opsctl report`
//! replays it through the same reporters.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::redact::Redactor;

/// Version of the record format (the first line of every record says it).
pub const RECORD_FORMAT: u32 = 1;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Warn,
    Failed,
    Cancelled,
    /// The record ends before the run did (opsctl was killed): only `opsctl report` says this.
    Unfinished,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Warn => "warn",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Unfinished => "unfinished",
        }
    }
}

/// Why a step was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `when` was false.
    When,
    /// A step it needs did not succeed (`cause` names the root).
    Needs,
    /// Someone answered no at the confirmation.
    Declined,
    /// Nobody could be asked (no terminal, no `--yes`).
    NotAsked,
    /// Someone answered `a` (abort) at this step's prompt.
    Aborted,
    /// A plan described the step instead of executing it.
    Planned,
    /// A nested runbook whose mutation or manual step got no yes.
    Incomplete,
}

/// What the person (or a flag) answered at a confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Confirmed,
    Declined,
    Aborted,
    /// Nobody could be asked.
    #[serde(alias = "not asked")]
    NotAsked,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Confirmed => "confirmed",
            Answer::Declined => "declined",
            Answer::Aborted => "aborted",
            Answer::NotAsked => "not asked",
        }
    }
}

/// Who gave the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confirmer {
    /// The person at the terminal.
    #[serde(rename = "user")]
    User,
    #[serde(rename = "--yes")]
    Yes,
    #[serde(rename = "--yes-manual")]
    YesManual,
    /// No terminal to ask on.
    #[serde(rename = "no terminal")]
    NoTerminal,
}

impl Confirmer {
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmer::User => "user",
            Confirmer::Yes => "--yes",
            Confirmer::YesManual => "--yes-manual",
            Confirmer::NoTerminal => "no terminal",
        }
    }
}

/// A mutating step that `plan` did not execute: would it run, and with what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Planned {
    /// `true`/`false`, or `null` when it depends on a `when` that reads results the
    /// plan does not produce.
    pub would_run: Option<bool>,
    pub reason: String,
    pub description: String,
    pub args: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line of a record: what wrote it and about which run.
    Record {
        format: u32,
        opsctl: String,
        run_id: String,
        runbook: String,
        mode: super::Mode,
        env: String,
        params: Value,
        user: String,
        host: String,
        at: DateTime<Utc>,
        /// `run --resume`: the run this one resumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<String>,
    },
    RunStarted {
        run_id: String,
        runbook: String,
        title: String,
        /// Step path of the `runbook` step that started this nested run.
        parent: Option<String>,
        mode: super::Mode,
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
        action: String,
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
        decision: Answer,
        by: Confirmer,
        at: DateTime<Utc>,
    },
    StepFinished {
        path: String,
        /// Position of the step in its runbook (reports list steps in this order).
        index: usize,
        id: String,
        name: String,
        action: String,
        status: StepStatus,
        attempts: u32,
        duration_ms: u64,
        message: Option<String>,
        /// For skipped steps: the step whose result caused the skip.
        cause: Option<String>,
        /// For skipped steps: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip: Option<SkipReason>,
        /// For steps whose action failed: what kind of failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<crate::actions::ErrorKind>,
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
            Event::Record { params, .. } => r.redact_json(params),
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

/// Consumes events, on the one thread that owns every reporter of a run (so reporters
/// need no locks and a slow terminal never holds up a step).
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
    /// Called once after the run (flush, print the summary).
    fn finish(&mut self) {}
}

enum Message {
    Event(Box<Event>),
    Finish,
}

/// Where the executor sends events: each is redacted here, where it leaves the executor,
/// then handed over a channel to the reporters' thread. Cloned into every task.
#[derive(Clone)]
pub struct EventSink {
    tx: std::sync::mpsc::Sender<Message>,
    owner: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    redactor: Redactor,
}

impl EventSink {
    pub fn new(redactor: Redactor, mut reporters: Vec<Box<dyn Reporter>>) -> EventSink {
        let (tx, rx) = std::sync::mpsc::channel::<Message>();
        let run = move || {
            while let Ok(message) = rx.recv() {
                match message {
                    Message::Event(event) => {
                        for r in reporters.iter_mut() {
                            r.event(&event);
                        }
                    }
                    Message::Finish => break,
                }
            }
            for r in reporters.iter_mut() {
                r.finish();
            }
        };
        let owner = std::thread::Builder::new()
            .name("opsctl-reporters".into())
            .spawn(run)
            .ok();
        EventSink {
            tx,
            owner: Arc::new(Mutex::new(owner)),
            redactor,
        }
    }

    pub fn emit(&self, mut event: Event) {
        event.redact(&self.redactor);
        // After `finish` nobody listens; the event has nowhere to go.
        let _ = self.tx.send(Message::Event(Box::new(event)));
    }

    /// Delivers every event sent so far, finishes the reporters, and waits for them.
    pub fn finish(&self) {
        let _ = self.tx.send(Message::Finish);
        let owner = self.owner.lock().ok().and_then(|mut o| o.take());
        if let Some(handle) = owner {
            let _ = handle.join();
        }
    }
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}
