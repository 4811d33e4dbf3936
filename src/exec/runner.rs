//! The run API: everything `run`, `plan` (and the coming `health` and `serve`) and the
//! tests need to execute a runbook, without printing and without exiting.
//!
//! [`prepare`] loads and checks what a run needs (the runbook, the runbooks it calls, its
//! params, the selected steps, every credential it can reach) and returns problems as
//! diagnostics; [`execute`] runs a [`Prepared`] run with the given mode, reporters, way of
//! asking a person and cancellation token, and returns a [`RunOutcome`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::confirm::Interact;
use super::{EventSink, Mode, Reporter, RunCtx, RunOutcome, Shared};
use crate::calls::{CallGraph, MAX_NESTING};
use crate::config::{Config, EnvConfig};
use crate::diagnostic::Diagnostic;
use crate::library::{Checked, Library};
use crate::redact::Redactor;
use crate::rules::Rule;
use crate::targets::{Clients, register_env_secrets};

/// What to run, as the user asked for it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A runbook name (or a path to a runbook file).
    pub runbook: String,
    /// `--env`; `None`: the config's default.
    pub env: Option<String>,
    /// `key=value` as typed.
    pub params: Vec<String>,
    /// Fill required params from their `example` (dry run only).
    pub use_examples: bool,
    /// `--tags`: only steps with one of these (and their ancestors).
    pub tags: Vec<String>,
    /// `--only`: only these steps (and their ancestors).
    pub only: Vec<String>,
}

/// Everything a run needs, loaded and checked before anything starts. Cloning is cheap
/// (the runbooks are shared), so a prepared run can be executed again (`health --watch`).
#[derive(Clone)]
pub struct Prepared {
    pub env: EnvConfig,
    pub checked: Arc<Checked>,
    pub params: Map<String, Value>,
    /// Runbooks reachable through `runbook` steps, checked.
    pub nested: HashMap<String, Arc<Checked>>,
    /// Every credential the run can reach, registered.
    pub redactor: Redactor,
    /// Steps taking part (`--only`, `--tags`); `None`: all.
    pub selected: Option<Vec<bool>>,
    /// Warnings found while checking (the run goes ahead).
    pub warnings: Vec<Diagnostic>,
    /// `run --resume`: per step, the result reused from the earlier run.
    pub reused: Vec<Option<super::context::Reused>>,
    /// `run --resume`: the run this one resumes.
    pub resumes: Option<String>,
}

/// Loads and checks everything a run needs. Errors are every problem found, located;
/// nothing has been contacted.
pub fn prepare(
    config: &Config,
    library: &Library,
    req: &Request,
) -> Result<Prepared, Vec<Diagnostic>> {
    let redactor = Redactor::new();
    let env = config.select_env(req.env.as_deref()).map_err(|d| vec![d])?;
    register_env_secrets(&env, &redactor);
    let path = library.resolve(&req.runbook).map_err(|d| vec![d])?;
    let mut library = library.clone();
    library.add(path.clone());
    let checked = library.load_checked(&path, Some(config))?;
    let mut errors = Vec::new();
    let mut given = Vec::new();
    for p in &req.params {
        match crate::params::parse_cli_param(p) {
            Ok(kv) => given.push(kv),
            Err(e) => errors.push(Diagnostic::error(
                Rule::InvalidValue,
                format!("--param {e}"),
            )),
        }
    }
    let params = match crate::params::resolve(&checked.runbook, &given, req.use_examples) {
        Ok(p) if errors.is_empty() => p,
        Ok(_) => return Err(errors),
        Err(mut e) => {
            errors.append(&mut e);
            return Err(errors);
        }
    };
    let nested = preload_nested(&library, config, &checked)?;
    // Every credential any step can reach is masked from the first line on, even in the
    // output of a step that runs before the one that uses it.
    for step in std::iter::once(&checked)
        .chain(nested.values().map(|c| c.as_ref()))
        .flat_map(|c| &c.runbook.steps)
    {
        redactor.add_reachable(&step.action.args.as_written());
    }
    let selected = select(&checked, req)?;
    let warnings = checked.warnings.clone();
    Ok(Prepared {
        env,
        checked: Arc::new(checked),
        params,
        nested,
        redactor,
        selected,
        warnings,
        reused: Vec::new(),
        resumes: None,
    })
}

/// Loads and checks every runbook reachable through `runbook` steps, so a bad nested
/// runbook, a loop or a chain nested too deep stops the run before it starts rather than
/// halfway. The runbooks come from the library's call graph (the one lint uses).
fn preload_nested(
    library: &Library,
    config: &Config,
    root: &Checked,
) -> Result<HashMap<String, Arc<Checked>>, Vec<Diagnostic>> {
    let name = root.runbook.name.clone();
    let graph = CallGraph::reachable(library, std::slice::from_ref(&root.runbook));
    let below = graph.below(&name);
    let mut all: HashSet<String> = below.iter().cloned().collect();
    all.insert(name.clone());
    if let Some((chain, at)) = graph.loops(&all).into_iter().next() {
        return Err(vec![
            Diagnostic::error(
                Rule::RunbookCycle,
                format!("runbooks call each other in a loop: {}", chain.join(" → ")),
            )
            .at(&at.file, at.span, "closes the loop"),
        ]);
    }
    let depth = graph.depth(&name);
    if depth > MAX_NESTING {
        return Err(vec![Diagnostic::error(
            Rule::RunbookCycle,
            format!(
                "runbooks nested {depth} deep from `{name}`; at most {MAX_NESTING} can run inside each other"
            ),
        )]);
    }
    literal_calls(&root.runbook)?;
    let mut out = HashMap::new();
    for callee in below {
        let file = library.resolve(&callee).map_err(|d| vec![d])?;
        let checked = library.load_checked(&file, Some(config))?;
        literal_calls(&checked.runbook)?;
        out.insert(callee, Arc::new(checked));
    }
    Ok(out)
}

/// Nested runbooks are named literally, so they can be checked before the run.
fn literal_calls(runbook: &crate::model::Runbook) -> Result<(), Vec<Diagnostic>> {
    for step in &runbook.steps {
        let Some(arg) = step.action.action.called_runbook(&step.action.args) else {
            continue;
        };
        if !matches!(arg.value.literal(), Some(Value::String(_))) {
            return Err(vec![
                Diagnostic::error(
                    Rule::UnknownRunbook,
                    format!(
                        "step `{}`: the nested runbook's name must be written literally",
                        step.id
                    ),
                )
                .at(&runbook.file, arg.value.span(), "computed name")
                .help("opsctl checks nested runbooks before the run starts; it cannot check a computed name"),
            ]);
        }
    }
    Ok(())
}

/// The steps taking part: `--only` and `--tags` select, ancestors come along.
fn select(checked: &Checked, req: &Request) -> Result<Option<Vec<bool>>, Vec<Diagnostic>> {
    if req.only.is_empty() && req.tags.is_empty() {
        return Ok(None);
    }
    let rb = &checked.runbook;
    let unknown: Vec<Diagnostic> = req
        .only
        .iter()
        .filter(|only| rb.step(only).is_none())
        .map(|only| {
            Diagnostic::error(
                Rule::UnknownStep,
                format!("--only {only}: no such step in `{}`", rb.name),
            )
            .help_opt(crate::suggest::help(
                only,
                rb.steps.iter().map(|s| s.id.as_str()),
            ))
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let base: Vec<usize> = (0..rb.steps.len())
        .filter(|&i| {
            let s = &rb.steps[i];
            (req.only.is_empty() || req.only.contains(&s.id))
                && (req.tags.is_empty() || s.tags.iter().any(|t| req.tags.contains(t)))
        })
        .collect();
    if base.is_empty() {
        return Err(vec![Diagnostic::error(
            Rule::InvalidValue,
            format!(
                "no step of `{}` matches --tags {}",
                rb.name,
                req.tags.join(",")
            ),
        )]);
    }
    Ok(Some(checked.graph.with_ancestors(&base)))
}

/// Whether a runbook (or one it calls) has a mutating step, judged on its arguments
/// as written.
pub fn mutates_deep(
    checked: &Checked,
    nested: &HashMap<String, Arc<Checked>>,
    depth: usize,
) -> bool {
    checked
        .runbook
        .steps
        .iter()
        .any(|s| match s.action.action.called_runbook(&s.action.args) {
            Some(arg) => {
                depth < MAX_NESTING
                    && match arg.value.literal() {
                        Some(Value::String(n)) => nested
                            .get(&n)
                            .is_some_and(|c| mutates_deep(c, nested, depth + 1)),
                        _ => false,
                    }
            }
            None => s.action.action.mutates(&s.action.args.as_written()),
        })
}

/// How a prepared run executes.
pub struct Settings {
    pub mode: Mode,
    /// `--max-parallel`: most steps running at once, nested runs included.
    pub max_parallel: usize,
    pub run_id: String,
    pub user: String,
    /// How to ask a person (a terminal prompt, `--yes`, a test's scripted answers).
    pub interact: Arc<dyn Interact>,
    pub reporters: Vec<Box<dyn Reporter>>,
    /// Ctrl-C (or a caller) cancels the run through this.
    pub cancel: CancellationToken,
    /// Whether mutations take the team lock, and wait for it.
    pub lock: LockPolicy,
    /// `opsctl test`: what the steps produce (nothing is contacted).
    pub givens: Option<Arc<HashMap<String, super::context::Given>>>,
}

/// The team lock of a run ([`super::lock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockPolicy {
    /// No lock (a caller that serialises runs itself, tests; `plan` never locks anyway).
    None,
    /// Take it before the first mutation; held by another run: the mutation is not run.
    Take,
    /// `--wait-lock`: take it, waiting while another run holds it.
    Wait,
}

/// Runs a prepared runbook to its end (or its cancellation). Reporters get every event
/// (redacted) and are finished before this returns; cancel requests for queries cut
/// short are sent (and waited for, at most 2 s) before it returns.
pub async fn execute(p: Prepared, s: Settings) -> RunOutcome {
    let sink = EventSink::new(p.redactor.clone(), s.reporters);
    let env = Arc::new(p.env);
    let lock = (s.mode == Mode::Run && s.lock != LockPolicy::None).then(|| {
        super::lock::TeamLock::new(
            &p.checked.runbook.name,
            &env,
            &s.run_id,
            &s.user,
            s.lock == LockPolicy::Wait,
            crate::report::record::state_dir(),
        )
    });
    let shared = Arc::new(Shared {
        clients: Clients::new(&env),
        env,
        redactor: p.redactor,
        interact: s.interact,
        sink: sink.clone(),
        cancel: s.cancel,
        mode: s.mode,
        permits: Arc::new(tokio::sync::Semaphore::new(s.max_parallel.max(1))),
        nested: p.nested,
        run_id: s.run_id,
        user: s.user,
        aborted: AtomicBool::new(false),
        lock,
        givens: s.givens,
    });
    let mut ctx = RunCtx::new(
        shared.clone(),
        p.checked,
        p.params,
        String::new(),
        p.selected,
        0,
    );
    if p.reused.len() == ctx.reused.len() {
        ctx.reused = p.reused;
    }
    ctx.resumes = p.resumes;
    let ctx = Arc::new(ctx);
    let outcome = super::run(ctx, None).await;
    if let Some(lock) = &shared.lock {
        lock.release(&shared.clients).await;
    }
    crate::targets::cleanup::wait(std::time::Duration::from_secs(2)).await;
    sink.finish();
    outcome
}
