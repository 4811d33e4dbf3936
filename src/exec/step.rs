//! Runs one step: resolve arguments, ask for confirmation, execute with timeout and
//! retries, then captures and assertions decide the status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::confirm::{ConfirmRequest, Decision, ManualRequest};
use super::context::{Mode, RunCtx, StepContext};
use super::events::{Answer, Confirmer, Event, Planned, SkipReason, StepStatus, now};
use crate::actions::ActionError;
use crate::expr::{Expr, Scope};
use crate::model::Step;
use crate::model::duration::format_duration;

/// How a step ended, before it is recorded.
pub struct Outcome {
    pub status: StepStatus,
    pub outputs: Map<String, Value>,
    pub message: Option<String>,
    pub attempts: u32,
    pub plan: Option<Planned>,
    /// For a skipped step: the step whose result caused it.
    pub cause: Option<String>,
    /// Time spent running the action (attempts and retry delays), not waiting for a
    /// confirmation.
    pub duration_ms: Option<u64>,
    /// Something the step was to change (or a person was to do) was not done for lack
    /// of a yes: the step, and a `runbook` step around it, did not succeed.
    pub declined: bool,
    /// For a skipped step: why.
    pub skip: Option<SkipReason>,
    /// For a step that ended `error` in its action: what kind of failure.
    pub error: Option<crate::actions::ErrorKind>,
}

impl Outcome {
    pub fn simple(status: StepStatus, message: impl Into<String>) -> Outcome {
        Outcome {
            status,
            outputs: Map::new(),
            message: Some(message.into()),
            attempts: 0,
            plan: None,
            cause: None,
            duration_ms: None,
            declined: false,
            skip: None,
            error: None,
        }
    }

    /// Skipped, and why.
    pub fn skipped(reason: SkipReason, message: impl Into<String>) -> Outcome {
        Outcome {
            skip: Some(reason),
            ..Outcome::simple(StepStatus::Skipped, message)
        }
    }

    /// Skipped because nobody said yes to a change (or to a manual step).
    pub fn declined(reason: SkipReason, message: impl Into<String>) -> Outcome {
        Outcome {
            declined: true,
            ..Outcome::skipped(reason, message)
        }
    }

    pub fn error(message: impl Into<String>) -> Outcome {
        Outcome::simple(StepStatus::Error, message)
    }
}

/// Runs step `i` of `run` (its needs have ended and its `when`, if any, held).
pub async fn run_step(run: Arc<RunCtx>, i: usize) -> Outcome {
    let step = &run.checked.runbook.steps[i];
    if let Some(fe) = &step.foreach {
        return run_foreach(&run, i, fe).await;
    }
    let shared = &run.shared;
    let action = step.action.action;
    let path = run.path(i);
    let scope = Arc::new(run.scope.clone());
    let site = Site {
        runbook: &run.checked.runbook.name,
        step: &step.id,
        redactor: &shared.redactor,
    };

    // Expressions (their `jq` above all) get no more time than the step has.
    let budget = || Instant::now() + step.timeout;
    let args = match crate::expr::jq::with_budget(budget(), || step.action.args.render(&scope)) {
        Ok(a) => a,
        Err(e) => return Outcome::error(site.err("arguments", &e.message)),
    };
    shared.redactor.add_from_args(&args);
    let description = action.describe(&args, &shared.env);
    let mutating = action.mutates(&args);
    let is_manual = action.asks_person();

    if shared.mode == Mode::Plan && (mutating || is_manual || step.confirm == Some(true)) {
        let reason = "its needs succeeded and its `when` (if any) holds".to_string();
        if mutating && action.previews_on_server() {
            return server_preview(&run, i, &path, reason, description, args).await;
        }
        return plan_outcome(is_manual, Some(true), reason, description, args);
    }

    if is_manual {
        let instructions = args
            .get("instructions")
            .map(crate::expr::text_of)
            .unwrap_or_default();
        let decision = shared
            .interact
            .manual(ManualRequest {
                path: path.clone(),
                title: step.title().to_string(),
                instructions,
            })
            .await;
        let mut outputs = Map::new();
        match confirmation_event(&run, &path, &description, &decision) {
            Decision::Yes { .. } => {
                outputs.insert("confirmed".into(), Value::Bool(true));
            }
            Decision::No => {
                outputs.insert("confirmed".into(), Value::Bool(false));
            }
            Decision::Abort => {
                shared.abort();
                return Outcome::skipped(SkipReason::Aborted, "run aborted at this step");
            }
            Decision::Unavailable(why) => return Outcome::declined(SkipReason::NotAsked, why),
        }
        return crate::expr::jq::with_budget(budget(), || {
            finish_attempt(&site, step, &scope, Ok(outputs), action, 1)
        });
    }

    let ask = mutating || step.confirm == Some(true);
    let shown = shared.redactor.clipped(&args, 400);
    if let Some(stop) = confirm_then_lock(&run, i, &path, &description, shown, ask, mutating).await
    {
        return stop;
    }

    // A clean-up step (`always`, `finally`) is not stopped by Ctrl-C: it runs to its end
    // or its timeout (a second Ctrl-C quits opsctl outright).
    let cancel = if step.always {
        tokio_util::sync::CancellationToken::new()
    } else {
        shared.cancel.clone()
    };
    let started = Instant::now();
    let outcome = attempt_loop(
        &run,
        i,
        &path,
        &args,
        &scope,
        &description,
        mutating,
        &cancel,
        true,
    )
    .await;
    let mut outcome = Outcome {
        duration_ms: Some(elapsed_ms(started)),
        ..outcome
    };
    // A nested run whose mutations a plan only described: what follows it is described
    // too, as it would run after them.
    if shared.mode == Mode::Plan && outcome.declined && action.runs_steps() {
        outcome.plan = Some(Planned {
            would_run: Some(true),
            reason: "its mutating steps are described by the plan, not executed".into(),
            description,
            args,
        });
    }
    outcome
}

fn confirmation_event<'d>(
    run: &RunCtx,
    path: &str,
    description: &str,
    d: &'d Decision,
) -> &'d Decision {
    let (decision, by) = match d {
        Decision::Yes { by } => (Answer::Confirmed, *by),
        Decision::No => (Answer::Declined, Confirmer::User),
        Decision::Abort => (Answer::Aborted, Confirmer::User),
        Decision::Unavailable(_) => (Answer::NotAsked, Confirmer::NoTerminal),
    };
    run.shared.sink.emit(Event::Confirmation {
        path: path.to_string(),
        description: description.to_string(),
        decision,
        by,
        at: now(),
    });
    d
}

/// Captures, then assertions: `fail_if`, `expect` (or the action's default), `warn_if`,
/// `retry.until`.
fn finish_attempt(
    site: &Site<'_>,
    step: &Step,
    scope: &Arc<Scope>,
    result: Result<Map<String, Value>, ActionError>,
    action: &dyn crate::actions::Action,
    attempt: u32,
) -> Outcome {
    let mut outputs = match result {
        Ok(o) => o,
        Err(e) => {
            let mut o = Outcome::simple(StepStatus::Error, e.to_string());
            o.attempts = attempt;
            o.error = Some(e.kind());
            return o;
        }
    };
    if let Some(why) = action.incomplete(&outputs) {
        let mut o = Outcome::declined(SkipReason::Incomplete, why);
        o.outputs = outputs;
        o.attempts = attempt;
        return o;
    }
    let mut capture_error = None;
    for c in &step.capture {
        let view = scope.with_outputs(crate::expr::from_json(&Value::Object(outputs.clone())));
        match c.expr.eval_json(&view) {
            Ok(v) => {
                outputs.insert(c.name.clone(), v);
            }
            Err(e) => {
                if capture_error.is_none() {
                    capture_error = Some(site.err(&format!("capture `{}`", c.name), &e.message));
                }
            }
        }
    }
    let view = scope.with_outputs(crate::expr::from_json(&Value::Object(outputs.clone())));
    let (mut status, mut message) = assess(site, step, &view, &outputs, action);
    if status.succeeded() {
        if let Some(until) = step.retry.as_ref().and_then(|r| r.until.as_ref()) {
            match until.eval_bool(&view) {
                Ok(true) => {}
                Ok(false) => {
                    status = StepStatus::Fail;
                    message = Some(format!(
                        "retry.until {} is false{}",
                        quote(until),
                        values_of(site, until, &outputs)
                    ));
                }
                Err(e) => {
                    status = StepStatus::Error;
                    message = Some(site.err("retry.until", &e.message));
                }
            }
        }
    }
    if status.succeeded() {
        if let Some(err) = capture_error {
            status = StepStatus::Error;
            message = Some(err);
        }
    }
    Outcome {
        status,
        outputs,
        message,
        attempts: attempt,
        plan: None,
        cause: None,
        duration_ms: None,
        declined: false,
        skip: None,
        error: None,
    }
}

fn assess(
    site: &Site<'_>,
    step: &Step,
    view: &Arc<Scope>,
    outputs: &Map<String, Value>,
    action: &dyn crate::actions::Action,
) -> (StepStatus, Option<String>) {
    let judge = |field: &str, exprs: &[Expr], fires: bool, status: StepStatus| {
        first_firing(site, view, outputs, field, exprs, fires, status)
    };
    if let Some(verdict) = judge("fail_if", &step.fail_if, true, StepStatus::Fail) {
        return verdict;
    }
    match &step.expect {
        Some(list) => {
            if let Some(verdict) = judge("expect", list, false, StepStatus::Fail) {
                return verdict;
            }
        }
        None => {
            if let Some(why) = action.default_failure(outputs) {
                return (StepStatus::Fail, Some(why));
            }
        }
    }
    judge("warn_if", &step.warn_if, true, StepStatus::Warn).unwrap_or((StepStatus::Ok, None))
}

/// The first assertion of `exprs` that evaluates to `fires` gives `status`, with a message
/// naming it and the values it read; one that cannot be evaluated gives `error`.
fn first_firing(
    site: &Site<'_>,
    view: &Arc<Scope>,
    outputs: &Map<String, Value>,
    field: &str,
    exprs: &[Expr],
    fires: bool,
    status: StepStatus,
) -> Option<(StepStatus, Option<String>)> {
    let verb = if fires { "is true" } else { "failed" };
    for e in exprs {
        match e.eval_bool(view) {
            Ok(v) if v == fires => {
                let values = values_of(site, e, outputs);
                return Some((status, Some(format!("{field} {} {verb}{values}", quote(e)))));
            }
            Ok(_) => {}
            Err(err) => return Some((StepStatus::Error, Some(site.err(field, &err.message)))),
        }
    }
    None
}

fn quote(e: &Expr) -> String {
    format!("`{}`", e.source().trim())
}

/// " (status = 503, latency_ms = 12)": the outputs an assertion read, so the message
/// says why without opening the record.
fn values_of(site: &Site<'_>, e: &Expr, outputs: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for r in e.refs() {
        let name = if r.root == "outputs" {
            r.name_at(0)
        } else {
            Some(r.root.as_str())
        };
        let Some(name) = name else { continue };
        let Some(v) = outputs.get(name) else { continue };
        let text = site.redactor.clipped(v, 80);
        let item = format!("{name} = {text}");
        if !parts.contains(&item) {
            parts.push(item);
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Whether step `i` changes something or needs a person (judged on its arguments
/// resolved as far as they can be).
pub fn changes_something(run: &RunCtx, i: usize) -> bool {
    let step = &run.checked.runbook.steps[i];
    let action = step.action.action;
    action.asks_person() || action.mutates(&resolved_or_partial(run, i))
}

fn resolved_or_partial(run: &RunCtx, i: usize) -> Value {
    let step = &run.checked.runbook.steps[i];
    let scope = Arc::new(run.scope.clone());
    let args = step.action.args.render(&scope).unwrap_or_else(|_| {
        step.action
            .args
            .render_partial(&scope, crate::expr::BEFORE_RUN)
    });
    run.shared.redactor.add_from_args(&args);
    args
}

/// A plan's description of step `i`, which it does not execute.
pub fn planned(run: &RunCtx, i: usize, would_run: Option<bool>, reason: String) -> Outcome {
    let step = &run.checked.runbook.steps[i];
    let args = resolved_or_partial(run, i);
    let description = step.action.action.describe(&args, &run.shared.env);
    let is_manual = step.action.action.asks_person();
    plan_outcome(is_manual, would_run, reason, description, args)
}

/// A plan's preview of a mutation the server can check without making it: the step runs
/// with the server's dry run, and the plan shows what it answered.
async fn server_preview(
    run: &Arc<RunCtx>,
    i: usize,
    path: &str,
    reason: String,
    description: String,
    args: Value,
) -> Outcome {
    let step = &run.checked.runbook.steps[i];
    let cx = StepContext {
        run: run.clone(),
        index: i,
        path: path.to_string(),
        timeout: step.timeout,
        dry_run: true,
    };
    let answer = tokio::select! {
        biased;
        () = run.shared.cancel.cancelled() => None,
        r = tokio::time::timeout(step.timeout, step.action.action.execute(&cx, args.clone())) => Some(r),
    };
    let (outputs, reason) = match answer {
        Some(Ok(Ok(outputs))) => (
            outputs,
            format!("{reason}; the server accepted it in a dry run (nothing changed)"),
        ),
        Some(Ok(Err(e))) => (
            Map::new(),
            format!("{reason}; the server's dry run refused it: {e}"),
        ),
        Some(Err(_)) => (
            Map::new(),
            format!(
                "{reason}; the server's dry run did not answer within {}",
                format_duration(step.timeout)
            ),
        ),
        None => (
            Map::new(),
            format!("{reason}; cancelled before the server answered"),
        ),
    };
    let mut o = plan_outcome(false, Some(true), reason, description, args);
    o.outputs = outputs;
    o
}

fn plan_outcome(
    is_manual: bool,
    would_run: Option<bool>,
    reason: String,
    description: String,
    args: Value,
) -> Outcome {
    let message = match (would_run, is_manual) {
        (Some(false), _) => format!("plan: would not run: {reason}"),
        (_, true) => "plan: manual step not asked".to_string(),
        _ => "plan: not executed".to_string(),
    };
    let mut o = Outcome::skipped(SkipReason::Planned, message);
    o.plan = Some(Planned {
        would_run,
        reason,
        description,
        args,
    });
    o
}

/// Where an expression sits, so its error names runbook, step and field.
pub struct Site<'a> {
    pub runbook: &'a str,
    pub step: &'a str,
    /// Values quoted in messages are redacted before they are cut.
    pub redactor: &'a crate::redact::Redactor,
}

impl Site<'_> {
    pub fn err(&self, field: &str, message: &str) -> String {
        format!(
            "{field} of step `{}` in runbook `{}`: {message}",
            self.step, self.runbook
        )
    }
}

/// Milliseconds since `start`.
pub fn elapsed_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Runs a step's action once or, with `retry`, until it succeeds or its attempts are
/// spent; each attempt bounded by the step's timeout and ended early by `cancel`.
#[allow(clippy::too_many_arguments)]
async fn attempt_loop(
    run: &Arc<RunCtx>,
    i: usize,
    path: &str,
    args: &Value,
    scope: &Arc<Scope>,
    description: &str,
    mutating: bool,
    cancel: &tokio_util::sync::CancellationToken,
    announce: bool,
) -> Outcome {
    let step = &run.checked.runbook.steps[i];
    let shared = &run.shared;
    let action = step.action.action;
    let path = path.to_string();
    let description = description.to_string();
    let site = Site {
        runbook: &run.checked.runbook.name,
        step: &step.id,
        redactor: &shared.redactor,
    };
    let budget = || Instant::now() + step.timeout;
    let attempts = step.retry.as_ref().map_or(1, |r| r.attempts.max(1));
    let delay = step.retry.as_ref().map_or(Duration::ZERO, |r| r.delay);
    let cx = StepContext {
        run: run.clone(),
        index: i,
        path: path.clone(),
        timeout: step.timeout,
        dry_run: false,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        if announce {
            shared.sink.emit(Event::StepStarted {
                path: path.clone(),
                id: step.id.clone(),
                name: step.title().to_string(),
                action: action.spec().name.to_string(),
                description: description.clone(),
                args: args.clone(),
                mutating,
                attempt,
                at: now(),
            });
        }
        if let Some(givens) = &shared.givens {
            // `opsctl test`: nothing is contacted; the case says what the step produces.
            return match givens.get(&path) {
                Some(g) => match g.status {
                    Some(status) => {
                        let mut o = Outcome::simple(
                            status,
                            g.message
                                .clone()
                                .unwrap_or_else(|| format!("given {}", status.as_str())),
                        );
                        o.outputs = g.outputs.clone();
                        o.attempts = 1;
                        o
                    }
                    None => crate::expr::jq::with_budget(budget(), || {
                        finish_attempt(&site, step, scope, Ok(g.outputs.clone()), action, 1)
                    }),
                },
                None => {
                    let mut o = Outcome::simple(StepStatus::Ok, "nothing given: ok");
                    o.attempts = 1;
                    o
                }
            };
        }
        let result = if action.runs_steps() {
            // A nested run is bounded by its own steps' timeouts and ends its steps itself
            // on Ctrl-C, so the record gets every one of them.
            Some(Ok(action.execute(&cx, args.clone()).await))
        } else if action.times_itself() {
            tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                r = action.execute(&cx, args.clone()) => Some(Ok(r)),
            }
        } else {
            tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                r = tokio::time::timeout(step.timeout, action.execute(&cx, args.clone())) => Some(r),
            }
        };
        let outcome = match result {
            None => {
                let msg = if mutating {
                    "cancelled while running; the change may already have been applied"
                } else {
                    "cancelled"
                };
                let mut o = Outcome::simple(StepStatus::Cancelled, msg);
                o.attempts = attempt;
                break o;
            }
            Some(Err(_elapsed)) => {
                let mut o = Outcome::simple(
                    StepStatus::Error,
                    format!("timed out after {}", format_duration(step.timeout)),
                );
                o.attempts = attempt;
                o
            }
            Some(Ok(r)) => crate::expr::jq::with_budget(budget(), || {
                finish_attempt(&site, step, scope, r, action, attempt)
            }),
        };
        // A failure that cannot go away (bad arguments, a missing target, a refused
        // write) is not retried.
        let lasting = outcome.error.is_some_and(|k| !k.transient());
        if outcome.status.succeeded() || attempt >= attempts || lasting {
            break outcome;
        }
        shared.sink.emit(Event::StepRetrying {
            path: path.clone(),
            attempt,
            status: outcome.status,
            message: outcome.message.clone().unwrap_or_default(),
            delay_ms: delay.as_millis() as u64,
            at: now(),
        });
        tokio::select! {
            () = cancel.cancelled() => {
                let mut o = Outcome::simple(StepStatus::Cancelled, "cancelled between retries");
                o.attempts = attempt;
                break o;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Severity of an item's status, to grade a `foreach` step by its worst item.
fn severity(s: StepStatus) -> u8 {
    match s {
        StepStatus::Skipped => 0,
        StepStatus::Ok => 1,
        StepStatus::Warn => 2,
        StepStatus::Cancelled => 3,
        StepStatus::Fail => 4,
        StepStatus::Error => 5,
    }
}

/// A `foreach` step: the action once per item of the list, at most `max_parallel` at a
/// time, each with its own arguments and assertions (the item in scope); a mutation asks
/// once for the whole list; `max` refuses a longer list before anything runs. Outputs:
/// `results` (per item: `item`, `status`, `message`, `outputs`), `count` and the count
/// of each status; the step ends with its worst item's status.
async fn run_foreach(run: &Arc<RunCtx>, i: usize, fe: &crate::model::Foreach) -> Outcome {
    let step = &run.checked.runbook.steps[i];
    let shared = &run.shared;
    let action = step.action.action;
    let path = run.path(i);
    let scope = Arc::new(run.scope.clone());
    let site = Site {
        runbook: &run.checked.runbook.name,
        step: &step.id,
        redactor: &shared.redactor,
    };
    let budget = || Instant::now() + step.timeout;
    let list = match crate::expr::jq::with_budget(budget(), || fe.list.eval_json(&scope)) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return Outcome::error(site.err(
                "foreach",
                &format!("gives {}, not a list", crate::expr::text_of(&other)),
            ));
        }
        Err(e) => return Outcome::error(site.err("foreach", &e.message)),
    };
    if let Some(max) = fe.max {
        if list.len() > max {
            let mut o = Outcome::simple(
                StepStatus::Fail,
                format!(
                    "refused: {} items, above max {max}; none was run",
                    list.len()
                ),
            );
            o.error = Some(crate::actions::ErrorKind::Refused);
            return o;
        }
    }
    if action.asks_person() || action.runs_steps() {
        return Outcome::error(site.err(
            "foreach",
            &format!("`{}` steps do not loop", action.spec().name),
        ));
    }
    let mut items = Vec::with_capacity(list.len());
    for item in &list {
        let item_scope = scope.with_item(&fe.name, crate::expr::from_json(item));
        let args =
            match crate::expr::jq::with_budget(budget(), || step.action.args.render(&item_scope)) {
                Ok(a) => a,
                Err(e) => return Outcome::error(site.err("arguments", &e.message)),
            };
        shared.redactor.add_from_args(&args);
        items.push((item.clone(), item_scope, args));
    }
    let mutating = items.iter().any(|(_, _, a)| action.mutates(a));
    let first = items
        .first()
        .map(|(_, _, a)| action.describe(a, &shared.env))
        .unwrap_or_default();
    let description = format!("{first} … for each of {} items", items.len());
    let shown: Vec<String> = list.iter().take(20).map(crate::expr::text_of).collect();
    let listed = format!(
        "{} item(s): {}{}",
        list.len(),
        shown.join(", "),
        if list.len() > 20 { ", …" } else { "" }
    );
    if shared.mode == Mode::Plan && (mutating || step.confirm == Some(true)) {
        let reason = "its needs succeeded and its `when` (if any) holds".to_string();
        return plan_outcome(
            false,
            Some(true),
            reason,
            description,
            serde_json::json!({"items": list}),
        );
    }
    let ask = mutating || step.confirm == Some(true);
    let shown = shared.redactor.redact(&listed);
    if let Some(stop) = confirm_then_lock(run, i, &path, &description, shown, ask, mutating).await {
        return stop;
    }
    let cancel = if step.always {
        tokio_util::sync::CancellationToken::new()
    } else {
        shared.cancel.clone()
    };
    shared.sink.emit(Event::StepStarted {
        path: path.clone(),
        id: step.id.clone(),
        name: step.title().to_string(),
        action: action.spec().name.to_string(),
        description: description.clone(),
        args: serde_json::json!({"foreach": list}),
        mutating,
        attempt: 1,
        at: now(),
    });
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(fe.max_parallel.max(1)));
    let runs = items
        .into_iter()
        .enumerate()
        .map(|(k, (item, item_scope, args))| {
            let slots = slots.clone();
            let item_path = format!("{path}[{k}]");
            let (cancel, description) = (&cancel, &description);
            async move {
                let _slot = slots.acquire().await;
                let o = attempt_loop(
                    run,
                    i,
                    &item_path,
                    &args,
                    &item_scope,
                    description,
                    mutating,
                    cancel,
                    false,
                )
                .await;
                (item, o)
            }
        });
    let results = futures::future::join_all(runs).await;
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut worst = StepStatus::Ok;
    let mut first_failure = None;
    let mut attempts = 0;
    let entries: Vec<Value> = results
        .into_iter()
        .map(|(item, o)| {
            *counts.entry(o.status.as_str()).or_default() += 1;
            attempts += o.attempts;
            if severity(o.status) > severity(worst) {
                worst = o.status;
            }
            if o.status.failed() && first_failure.is_none() {
                first_failure = Some(format!(
                    "{}: {}",
                    crate::expr::text_of(&item),
                    o.message.clone().unwrap_or_default()
                ));
            }
            serde_json::json!({
                "item": item,
                "status": o.status,
                "message": o.message,
                "outputs": o.outputs,
            })
        })
        .collect();
    let summary = counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut outputs = Map::new();
    outputs.insert("count".into(), Value::from(entries.len()));
    for s in ["ok", "warn", "fail", "error", "cancelled", "skipped"] {
        outputs.insert(s.into(), Value::from(counts.get(s).copied().unwrap_or(0)));
    }
    outputs.insert("results".into(), Value::Array(entries));
    let message = match first_failure {
        Some(f) => format!("{summary}; first failure — {f}"),
        None => summary,
    };
    Outcome {
        outputs,
        attempts,
        duration_ms: Some(elapsed_ms(started)),
        ..Outcome::simple(worst, message)
    }
}

/// Asks for the go a step needs (when `ask`), then — for a change that got it — takes the
/// team lock: a declined or unconfirmed step takes nothing (and writes nothing, not even
/// a Lease). `Some(outcome)`: the step ends here with it.
async fn confirm_then_lock(
    run: &Arc<RunCtx>,
    i: usize,
    path: &str,
    description: &str,
    shown_args: String,
    ask: bool,
    mutating: bool,
) -> Option<Outcome> {
    let shared = &run.shared;
    if ask {
        let decision = shared
            .interact
            .confirm(ConfirmRequest {
                path: path.to_string(),
                title: run.checked.runbook.steps[i].title().to_string(),
                description: description.to_string(),
                args: shown_args,
            })
            .await;
        match confirmation_event(run, path, description, &decision) {
            Decision::Yes { .. } => {}
            Decision::No => {
                return Some(Outcome::declined(
                    SkipReason::Declined,
                    "declined at confirmation",
                ));
            }
            Decision::Abort => {
                shared.abort();
                return Some(Outcome::skipped(
                    SkipReason::Aborted,
                    "run aborted at confirmation",
                ));
            }
            Decision::Unavailable(why) => {
                return Some(Outcome::declined(SkipReason::NotAsked, why));
            }
        }
    }
    if mutating {
        if let Some(lock) = &shared.lock {
            if let Err(e) = lock.ensure(path, &shared.clients, &shared.cancel).await {
                let mut o = Outcome::error(e.message().to_string());
                o.error = Some(e.kind());
                return Some(o);
            }
        }
    }
    None
}
