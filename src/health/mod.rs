//! `opsctl health` on the run API: the health runbook, read-only, in one or several
//! environments at once (one client set each), graded into a verdict per environment and
//! overall. Rendering lives in [`render`]; the command line around it in
//! `commands::health`.
//!
//! Verdict (contract section 7): `unhealthy` if a check ended `fail` or `error`, else
//! `degraded` if one ended `warn`, else `healthy`. Skipped checks do not count (the
//! report says how many there were and why).

pub mod render;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, join_all};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::actions::ErrorKind;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::exec::confirm::{ConfirmRequest, Decision, Interact, ManualRequest};
use crate::exec::events::SkipReason;
use crate::exec::runner::{self, Prepared, Request, Settings};
use crate::exec::{Mode, Reporter, StepStatus};
use crate::library::Library;
use crate::report::summary::Summary;
use crate::rules::Rule;

/// The runbook `opsctl health` runs unless `--runbook` names another.
pub const DEFAULT_RUNBOOK: &str = "health";
/// The tag `--quick` selects.
pub const QUICK_TAG: &str = "quick";

/// How healthy an environment (or all of them) is. Ordered: the worst is the largest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Verdict {
    /// Grades checks by their statuses; skipped (and cancelled) checks do not count.
    pub fn of(statuses: impl IntoIterator<Item = StepStatus>) -> Verdict {
        statuses
            .into_iter()
            .map(|s| match s {
                StepStatus::Fail | StepStatus::Error => Verdict::Unhealthy,
                StepStatus::Warn => Verdict::Degraded,
                StepStatus::Ok | StepStatus::Skipped | StepStatus::Cancelled => Verdict::Healthy,
            })
            .max()
            .unwrap_or(Verdict::Healthy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Unhealthy => "unhealthy",
        }
    }

    /// The exit code of `opsctl health` and the value of `opsctl_health_status`:
    /// 0 healthy, 1 degraded, 2 unhealthy.
    pub fn code(self) -> i32 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Degraded => 1,
            Verdict::Unhealthy => 2,
        }
    }
}

/// One check (a top-level step of the health runbook) as it ended.
#[derive(Clone, Debug)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub action: String,
    pub status: StepStatus,
    pub duration_ms: u64,
    pub message: Option<String>,
    pub skip: Option<SkipReason>,
    /// For a check skipped because another failed: that one.
    pub cause: Option<String>,
    pub error: Option<ErrorKind>,
    pub outputs: Value,
}

/// The health of one environment.
#[derive(Clone, Debug)]
pub struct EnvHealth {
    pub env: String,
    pub runbook: String,
    pub run_id: String,
    pub verdict: Verdict,
    pub duration_ms: u64,
    /// In runbook order.
    pub checks: Vec<Check>,
    /// The run was interrupted before every check ended.
    pub interrupted: bool,
}

impl EnvHealth {
    fn from_summary(env: String, runbook: String, run_id: String, summary: &Summary) -> Self {
        let checks: Vec<Check> = summary
            .top_level()
            .into_iter()
            .map(|f| Check {
                id: f.id.clone(),
                name: f.name.clone(),
                action: f.action.clone(),
                status: f.status,
                duration_ms: f.duration_ms,
                message: f.message.clone(),
                skip: f.skip,
                cause: f.cause.clone(),
                error: f.error,
                outputs: f.outputs.clone(),
            })
            .collect();
        let end = summary.end;
        EnvHealth {
            env,
            runbook,
            run_id,
            verdict: Verdict::of(checks.iter().map(|c| c.status)),
            duration_ms: end.map_or(0, |e| e.duration_ms),
            interrupted: end.is_none_or(|e| {
                matches!(
                    e.status,
                    crate::exec::RunStatus::Cancelled | crate::exec::RunStatus::Unfinished
                )
            }),
            checks,
        }
    }

    /// How many checks ended with `status`.
    pub fn count(&self, status: StepStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// The answer of one `opsctl health` round.
#[derive(Clone, Debug)]
pub struct HealthReport {
    pub runbook: String,
    pub quick: bool,
    /// In the order asked for.
    pub envs: Vec<EnvHealth>,
    /// The worst verdict of all environments.
    pub overall: Verdict,
    /// Wall time of the round (the environments run at the same time).
    pub duration_ms: u64,
    /// When the round started.
    pub at: DateTime<Utc>,
}

impl HealthReport {
    pub fn interrupted(&self) -> bool {
        self.envs.iter().any(|e| e.interrupted)
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct HealthRequest {
    /// `--runbook` (default [`DEFAULT_RUNBOOK`]).
    pub runbook: String,
    /// `--env a,b`: environments in order, duplicates removed; empty: the config's default.
    pub envs: Vec<String>,
    /// `--quick`: only the steps tagged `quick` (and what they need).
    pub quick: bool,
}

/// The runs of one round, loaded and checked: one per environment.
pub struct PreparedHealth {
    runs: Vec<(String, Prepared)>,
    runbook: String,
    quick: bool,
}

impl PreparedHealth {
    /// The credentials of every environment, to mask what is printed outside a run.
    pub fn redactors(&self) -> impl Iterator<Item = &crate::redact::Redactor> {
        self.runs.iter().map(|(_, p)| &p.redactor)
    }

    pub fn warnings(&self) -> Vec<Diagnostic> {
        // The runbook is the same in every environment: its warnings once.
        self.runs
            .first()
            .map(|(_, p)| p.warnings.clone())
            .unwrap_or_default()
    }
}

/// Loads and checks the health runbook for every environment asked for; problems are
/// every diagnostic found (the command exits 3 with them). Refuses a runbook that
/// mutates or asks a person: health runs unattended and never changes anything.
pub fn prepare(
    config: &Config,
    library: &Library,
    req: &HealthRequest,
) -> Result<PreparedHealth, Vec<Diagnostic>> {
    let envs: Vec<Option<String>> = if req.envs.is_empty() {
        vec![None]
    } else {
        let mut seen = Vec::new();
        for e in &req.envs {
            if !seen.contains(e) {
                seen.push(e.clone());
            }
        }
        seen.into_iter().map(Some).collect()
    };
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for env in envs {
        let request = Request {
            runbook: req.runbook.clone(),
            env: env.clone(),
            tags: if req.quick {
                vec![QUICK_TAG.to_string()]
            } else {
                Vec::new()
            },
            ..Request::default()
        };
        match runner::prepare(config, library, &request) {
            Ok(p) => {
                if let Some(d) = unattended_problem(&p) {
                    return Err(vec![d]);
                }
                runs.push((p.env.name.clone(), p));
            }
            Err(mut d) => {
                // The same runbook problem in every environment is said once.
                d.retain(|x| !errors.iter().any(|e: &Diagnostic| e.message == x.message));
                errors.append(&mut d);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let runbook = runs.first().map_or_else(
        || req.runbook.clone(),
        |(_, p)| p.checked.runbook.name.clone(),
    );
    Ok(PreparedHealth {
        runs,
        runbook,
        quick: req.quick,
    })
}

/// A step of the health runbook (or of one it calls) that mutates or needs a person.
fn unattended_problem(p: &Prepared) -> Option<Diagnostic> {
    let rb = &p.checked.runbook;
    for step in &rb.steps {
        let action = step.action.action;
        let what = if let Some(arg) = action.called_runbook(&step.action.args) {
            let nested = match arg.value.literal() {
                Some(Value::String(n)) => p.nested.get(&n).cloned(),
                _ => None,
            };
            match nested {
                Some(c) if runner::mutates_deep(&c, &p.nested, 0) => "calls a runbook that mutates",
                _ => continue,
            }
        } else if action.mutates(&step.action.args.as_written()) {
            "mutates"
        } else if action.asks_person() {
            "asks a person"
        } else {
            continue;
        };
        return Some(
            Diagnostic::error(
                Rule::HealthMutates,
                format!(
                    "`{}` cannot serve as a health check: step `{}` {what}",
                    rb.name, step.id
                ),
            )
            .at(&rb.file, step.id_span, "")
            .help("health runs unattended and never changes anything; move the step to another runbook"),
        );
    }
    None
}

/// Answers every question with "nobody here": health never mutates (the runbook is
/// checked for that before it starts), so this is only a second lock on the door.
struct Unattended;

impl Interact for Unattended {
    fn confirm<'a>(&'a self, _req: ConfirmRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::Unavailable("health never runs a mutating step".to_string()) })
    }

    fn manual<'a>(&'a self, _req: ManualRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::Unavailable("health does not ask a person".to_string()) })
    }
}

/// Runs one round: every environment's checks at the same time, each with its own
/// clients. `extra` gives each environment's run more reporters (a live view).
pub async fn run(
    prepared: &PreparedHealth,
    max_parallel: usize,
    cancel: &CancellationToken,
    extra: &mut dyn FnMut(&str) -> Vec<Box<dyn Reporter>>,
) -> HealthReport {
    let at = Utc::now();
    let started = Instant::now();
    let user = crate::exec::current_user();
    let mut runs = Vec::new();
    for (env, p) in &prepared.runs {
        let (collector, out) = crate::report::summary::Collector::new();
        let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(collector)];
        reporters.extend(extra(env));
        let run_id = crate::exec::new_run_id();
        let settings = Settings {
            mode: Mode::Run,
            max_parallel,
            run_id: run_id.clone(),
            user: user.clone(),
            interact: Arc::new(Unattended),
            reporters,
            cancel: cancel.clone(),
            // Health never mutates (checked before it starts), so it never needs the lock.
            lock: runner::LockPolicy::None,
            givens: None,
        };
        let prepared_run = p.clone();
        let env = env.clone();
        let runbook = prepared.runbook.clone();
        runs.push(async move {
            runner::execute(prepared_run, settings).await;
            let summary = out
                .lock()
                .map(|mut s| std::mem::take(&mut *s))
                .unwrap_or_default();
            EnvHealth::from_summary(env, runbook, run_id, &summary)
        });
    }
    let envs = join_all(runs).await;
    let overall = envs
        .iter()
        .map(|e| e.verdict)
        .max()
        .unwrap_or(Verdict::Healthy);
    HealthReport {
        runbook: prepared.runbook.clone(),
        quick: prepared.quick,
        envs,
        overall,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        at,
    }
}
