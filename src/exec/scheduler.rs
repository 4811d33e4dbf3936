//! The scheduler: a step starts as soon as all its needs have ended, bounded by
//! `--max-parallel`; a failure never stops unrelated branches; one cancellation token
//! stops everything. The graph is acyclic (checked at load time).

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use serde_json::{Map, Value, json};
use std::panic::AssertUnwindSafe;
use tokio::task::JoinSet;

use super::context::Mode;
use super::context::{NestedResult, RunCtx, StepContext};
use super::events::{Event, RunStatus, SkipReason, StepStatus, now};
use super::state::StepResult;
use super::step::{Outcome, changes_something, elapsed_ms, planned, run_step};
use crate::actions::ActionError;

/// Deepest nesting of `runbook` steps: checked before the run from the call graph;
/// this guards the invariant.
const MAX_DEPTH: usize = crate::calls::MAX_NESTING;

/// The end of a run.
pub struct RunOutcome {
    pub status: RunStatus,
    pub duration_ms: u64,
}

/// Runs every selected step of `run` and returns when all have ended.
pub async fn run(run: Arc<RunCtx>, parent: Option<String>) -> RunOutcome {
    let started = Instant::now();
    let shared = run.shared.clone();
    let runbook = &run.checked.runbook;
    let graph = &run.checked.graph;
    let n = runbook.steps.len();
    if parent.is_none() {
        shared.sink.emit(Event::Record {
            format: super::events::RECORD_FORMAT,
            opsctl: env!("CARGO_PKG_VERSION").to_string(),
            run_id: shared.run_id.clone(),
            runbook: runbook.name.clone(),
            mode: shared.mode,
            env: shared.env.name.clone(),
            params: Value::Object(run.params_json.clone()),
            user: shared.user.clone(),
            host: super::current_host(),
            at: now(),
            resumes: run.resumes.clone(),
        });
    }
    shared.sink.emit(Event::RunStarted {
        run_id: shared.run_id.clone(),
        runbook: runbook.name.clone(),
        title: runbook.title.clone(),
        parent: parent.clone(),
        mode: shared.mode,
        user: shared.user.clone(),
        env: shared.env.name.clone(),
        params: Value::Object(run.params_json.clone()),
        steps: run.selected.iter().filter(|s| **s).count(),
        at: now(),
    });

    let mut pending: Vec<usize> = graph.needs.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n)
        .filter(|&i| pending[i] == 0 && run.selected[i])
        .collect();
    ready.reverse();
    let mut tasks: JoinSet<(usize, Outcome, u64)> = JoinSet::new();
    let mut any_warn = false;
    let mut any_failed = false;

    loop {
        while let Some(i) = ready.pop() {
            // `run --resume`: a step that succeeded before is not run (or contacted) again.
            if let Some(r) = &run.reused[i] {
                let mut o = Outcome::simple(
                    r.status,
                    format!(
                        "reused from run {}{}",
                        r.run_id,
                        r.message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                );
                o.outputs = r.outputs.clone();
                finish(
                    &run,
                    i,
                    o,
                    0,
                    &mut pending,
                    &mut ready,
                    &mut any_warn,
                    &mut any_failed,
                );
                continue;
            }
            match gate(&run, i) {
                Gate::Run => {
                    let run = run.clone();
                    tasks.spawn(async move {
                        // One bound for the whole run, nested runs included. A `runbook`
                        // step takes no slot itself: its steps do (and it would otherwise
                        // hold one while they wait for theirs).
                        let step = &run.checked.runbook.steps[i];
                        let permit = if step.action.action.runs_steps() {
                            None
                        } else if step.always {
                            // Clean-up waits for a slot even after Ctrl-C.
                            run.shared.permits.clone().acquire_owned().await.ok()
                        } else {
                            let acquired = tokio::select! {
                                p = run.shared.permits.clone().acquire_owned() => p.ok(),
                                () = run.shared.cancel.cancelled() => None,
                            };
                            if acquired.is_none() {
                                return (i, cancelled_before_start(), 0);
                            }
                            acquired
                        };
                        let t = Instant::now();
                        // Boxed: the step's future (kilobytes) exists only once it has a
                        // slot, so 10,000 steps waiting for 1,000 slots hold a few hundred
                        // bytes each instead. A panicking action ends its own step as
                        // `error`, not the run.
                        let outcome = AssertUnwindSafe(Box::pin(run_step(run, i)))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| Outcome::error(panic_message(&panic)));
                        drop(permit);
                        let ms = outcome.duration_ms.unwrap_or_else(|| {
                            if outcome.status == StepStatus::Skipped {
                                0
                            } else {
                                elapsed_ms(t)
                            }
                        });
                        (i, outcome, ms)
                    });
                }
                Gate::Skip(outcome) => {
                    finish(
                        &run,
                        i,
                        *outcome,
                        0,
                        &mut pending,
                        &mut ready,
                        &mut any_warn,
                        &mut any_failed,
                    );
                }
            }
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        // Tasks catch their own panics and are never aborted, so a join error cannot name
        // a step; there is nothing left to finish for it.
        let Ok((i, outcome, ms)) = joined else {
            continue;
        };
        finish(
            &run,
            i,
            outcome,
            ms,
            &mut pending,
            &mut ready,
            &mut any_warn,
            &mut any_failed,
        );
    }

    let status = if shared.cancel.is_cancelled() {
        RunStatus::Cancelled
    } else if any_failed {
        RunStatus::Failed
    } else if any_warn {
        RunStatus::Warn
    } else {
        RunStatus::Ok
    };
    let duration_ms = elapsed_ms(started);
    shared.sink.emit(Event::RunFinished {
        run_id: shared.run_id.clone(),
        runbook: runbook.name.clone(),
        parent,
        status,
        duration_ms,
        at: now(),
    });
    RunOutcome {
        status,
        duration_ms,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    format!("internal error (opsctl bug): {what}")
}

fn cancelled_before_start() -> Outcome {
    Outcome::simple(StepStatus::Cancelled, "cancelled before it started")
}

enum Gate {
    Run,
    Skip(Box<Outcome>),
}

/// All needs have ended: run, or skip (and why).
fn gate(run: &RunCtx, i: usize) -> Gate {
    let step = &run.checked.runbook.steps[i];
    // Clean-up (`always`, `finally`) runs after Ctrl-C and after failures too.
    if run.shared.cancel.is_cancelled() && !step.always {
        return Gate::Skip(Box::new(cancelled_before_start()));
    }
    let graph = &run.checked.graph;
    let plan = run.shared.mode == Mode::Plan;
    // In a plan, what comes after a step that was not executed is not executed either:
    // it would act on a state the plan never produced. It is described instead.
    if plan {
        if let Some(&j) = graph.needs[i].iter().find(|&&j| run.is_planned(j)) {
            let would_run = step.when.is_none().then_some(true);
            let reason = format!(
                "runs after `{}`, which the plan does not execute",
                graph.ids[j]
            );
            return Gate::Skip(Box::new(planned(run, i, would_run, reason)));
        }
    }
    let skip = match &step.when {
        Some(when) => {
            let scope = Arc::new(run.scope.clone());
            let deadline = Instant::now() + step.timeout;
            match crate::expr::jq::with_budget(deadline, || when.eval_bool(&scope)) {
                Ok(true) => return Gate::Run,
                Ok(false) => Outcome::skipped(
                    SkipReason::When,
                    format!("when `{}` is false", when.source().trim()),
                ),
                Err(e) => {
                    let site = super::step::Site {
                        runbook: &run.checked.runbook.name,
                        step: &step.id,
                        redactor: &run.shared.redactor,
                    };
                    return Gate::Skip(Box::new(Outcome::error(site.err("when", &e.message))));
                }
            }
        }
        None if step.always => return Gate::Run,
        None => {
            let failed = graph.needs[i]
                .iter()
                .copied()
                .find(|&j| run.state.get(j).is_some_and(|r| !r.status.succeeded()));
            let Some(j) = failed else { return Gate::Run };
            let status = run.state.status(j).map_or("?", StepStatus::as_str);
            let mut o = Outcome::skipped(
                SkipReason::Needs,
                format!("needs `{}`, which ended {status}", graph.ids[j]),
            );
            o.cause = Some(run.state_cause(j));
            o
        }
    };
    // A plan reports every mutation, including those that would not run, and why.
    if plan && changes_something(run, i) {
        let reason = skip.message.clone().unwrap_or_default();
        let mut o = planned(run, i, Some(false), reason);
        o.cause = skip.cause;
        o.skip = skip.skip;
        return Gate::Skip(Box::new(o));
    }
    Gate::Skip(Box::new(skip))
}

impl RunCtx {
    /// The step a skip traces back to: the first failed or declined step up the chain.
    fn state_cause(&self, j: usize) -> String {
        match self.causes.get(j).and_then(|c| c.get()) {
            Some(c) => c.clone(),
            None => self.path(j),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    run: &RunCtx,
    i: usize,
    outcome: Outcome,
    duration_ms: u64,
    pending: &mut [usize],
    ready: &mut Vec<usize>,
    any_warn: &mut bool,
    any_failed: &mut bool,
) {
    let step = &run.checked.runbook.steps[i];
    *any_warn |= outcome.status == StepStatus::Warn;
    *any_failed |= outcome.status.failed();
    if let Some(cause) = &outcome.cause {
        let _ = run.causes[i].set(cause.clone());
    }
    if outcome.plan.is_some() {
        run.mark_planned(i);
    }
    if outcome.declined {
        run.mark_declined(i);
    }
    let result = StepResult::new(
        outcome.status,
        outcome.outputs,
        outcome.message,
        outcome.attempts,
        duration_ms,
    );
    run.shared.sink.emit(Event::StepFinished {
        path: run.path(i),
        index: i,
        id: step.id.clone(),
        name: step.title().to_string(),
        action: step.action.action.spec().name.to_string(),
        status: result.status,
        attempts: result.attempts,
        duration_ms,
        message: result.message.clone(),
        cause: outcome.cause,
        skip: outcome.skip,
        error: outcome.error,
        outputs: Value::Object(result.outputs.clone()),
        plan: outcome.plan,
        at: now(),
    });
    run.state.set(i, result);
    for &d in &run.checked.graph.dependents[i] {
        pending[d] -= 1;
        if pending[d] == 0 && run.selected[d] {
            ready.push(d);
        }
    }
}

/// The `runbook` action: runs a pre-checked runbook inside this step.
pub async fn run_nested(
    cx: &StepContext,
    name: &str,
    params: Map<String, Value>,
) -> Result<NestedResult, ActionError> {
    let shared = cx.run.shared.clone();
    if cx.run.depth + 1 > MAX_DEPTH {
        return Err(ActionError::InvalidArgs(format!(
            "runbooks nested deeper than {MAX_DEPTH}"
        )));
    }
    let checked = shared
        .nested
        .get(name)
        .cloned()
        .ok_or_else(|| ActionError::Config(format!("no runbook named `{name}`")))?;
    let provided: Vec<(String, Value)> = params.into_iter().collect();
    let resolved =
        crate::params::resolve_values(&checked.runbook, &provided, false).map_err(|diags| {
            ActionError::InvalidArgs(format!(
                "runbook {name}: {}",
                diags
                    .iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
    let child = Arc::new(RunCtx::new(
        shared,
        checked.clone(),
        resolved,
        format!("{}/", cx.path),
        None,
        cx.run.depth + 1,
    ));
    let outcome = run(child.clone(), Some(cx.path.clone())).await;
    let mut steps = Map::new();
    let mut incomplete = false;
    for (i, s) in checked.runbook.steps.iter().enumerate() {
        if let Some(r) = child.state.get(i) {
            // A mutation described by a plan is as undone as one declined.
            let declined = child.is_declined(i) || child.is_planned(i);
            incomplete |= declined;
            let mut entry = json!({"status": r.status.as_str(), "outputs": r.outputs});
            if declined {
                entry["declined"] = json!(true);
            }
            // Why a step of the nested runbook did not pass, for the caller's record and JSON.
            if let Some(m) = &r.message {
                entry["message"] = json!(m);
            }
            steps.insert(s.id.clone(), entry);
        }
    }
    Ok(NestedResult {
        status: match outcome.status {
            super::events::RunStatus::Ok | super::events::RunStatus::Warn if incomplete => {
                "incomplete"
            }
            super::events::RunStatus::Ok | super::events::RunStatus::Warn => "ok",
            super::events::RunStatus::Failed => "failed",
            super::events::RunStatus::Cancelled | super::events::RunStatus::Unfinished => {
                "cancelled"
            }
        },
        steps,
    })
}
