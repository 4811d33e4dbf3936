//! What a run shares between its steps (clients, redactor, prompts, events, the
//! cancellation token) and what one step sees of it ([`StepContext`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use minijinja::Value;
use serde_json::Map;
use tokio_util::sync::CancellationToken;

use super::confirm::Interact;
use super::events::EventSink;
use super::state::{RunState, StepsView};
use crate::actions::ActionError;
use crate::config::EnvConfig;
use crate::expr::Scope;
use crate::library::Checked;
use crate::redact::Redactor;
use crate::targets::Clients;

/// `run` executes everything; `plan` executes read-only steps and only describes
/// mutations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Run,
    Plan,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Plan => "plan",
        }
    }
}

/// Shared by every step of a run, nested runs included.
pub struct Shared {
    pub env: Arc<EnvConfig>,
    pub clients: Clients,
    pub redactor: Redactor,
    pub interact: Arc<dyn Interact>,
    pub sink: EventSink,
    pub cancel: CancellationToken,
    pub mode: Mode,
    /// `--max-parallel`: slots for running steps, shared by nested runs.
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Runbooks that `runbook` steps may call, loaded and checked before the run.
    pub nested: HashMap<String, Arc<Checked>>,
    pub run_id: String,
    pub user: String,
    /// Set when someone answered `a` at a prompt.
    pub aborted: AtomicBool,
    /// The team lock, taken before the first mutation (`run` only; never in `plan`).
    pub lock: Option<super::lock::TeamLock>,
    /// `opsctl test`: what each step (by path) produces, instead of running its action.
    pub givens: Option<Arc<HashMap<String, Given>>>,
}

/// What a step produces in a runbook test case (`opsctl test`): outputs its assertions
/// are evaluated on, or a status as it is.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    #[serde(default)]
    pub outputs: Map<String, serde_json::Value>,
    #[serde(default)]
    pub status: Option<super::StepStatus>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Shared {
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    pub fn was_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// One runbook being executed (the top-level one or a nested one).
pub struct RunCtx {
    pub shared: Arc<Shared>,
    pub checked: Arc<Checked>,
    pub params_json: Map<String, serde_json::Value>,
    /// `params`, `vars`, `run`, `steps` for expressions.
    pub scope: Scope,
    pub state: Arc<RunState>,
    /// Prefix of step paths: "" at the top, "parent-step/" inside a nested run.
    pub prefix: String,
    /// Steps taking part (`--only`, `--tags`); all by default.
    pub selected: Vec<bool>,
    pub depth: usize,
    /// For skipped steps, the root step that caused the skip.
    pub causes: Vec<std::sync::OnceLock<String>>,
    /// Steps a plan described instead of executing.
    planned: Vec<AtomicBool>,
    /// Steps that did not get the yes they needed.
    declined: Vec<AtomicBool>,
    /// `run --resume`: results taken from the earlier run instead of running the step.
    pub reused: Vec<Option<Reused>>,
    /// `run --resume`: the run this one resumes (said in the record's first line).
    pub resumes: Option<String>,
}

/// A step's result reused from an earlier run's record (`run --resume`).
#[derive(Clone, Debug)]
pub struct Reused {
    pub status: super::StepStatus,
    pub outputs: Map<String, serde_json::Value>,
    pub message: Option<String>,
    /// The run it comes from.
    pub run_id: String,
}

impl RunCtx {
    pub fn new(
        shared: Arc<Shared>,
        checked: Arc<Checked>,
        params_json: Map<String, serde_json::Value>,
        prefix: String,
        selected: Option<Vec<bool>>,
        depth: usize,
    ) -> RunCtx {
        let n = checked.runbook.steps.len();
        let state = Arc::new(RunState::new(Arc::new(checked.graph.index.clone()), n));
        let run = crate::expr::from_json(&serde_json::json!({
            "id": shared.run_id,
            "user": shared.user,
            "env": shared.env.name,
            "dry_run": false,
        }));
        let scope = Scope::new(
            crate::expr::from_json(&serde_json::Value::Object(params_json.clone())),
            crate::expr::from_json(&serde_json::Value::Object(shared.env.vars.clone())),
            run,
            Value::from_object(StepsView(state.clone())),
        );
        RunCtx {
            shared,
            checked,
            params_json,
            scope,
            state,
            prefix,
            selected: selected.unwrap_or_else(|| vec![true; n]),
            depth,
            causes: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            planned: (0..n).map(|_| AtomicBool::new(false)).collect(),
            declined: (0..n).map(|_| AtomicBool::new(false)).collect(),
            reused: vec![None; n],
            resumes: None,
        }
    }

    pub fn mark_declined(&self, i: usize) {
        self.declined[i].store(true, Ordering::SeqCst);
    }

    pub fn is_declined(&self, i: usize) -> bool {
        self.declined[i].load(Ordering::SeqCst)
    }

    pub fn mark_planned(&self, i: usize) {
        self.planned[i].store(true, Ordering::SeqCst);
    }

    pub fn is_planned(&self, i: usize) -> bool {
        self.planned[i].load(Ordering::SeqCst)
    }

    pub fn path(&self, i: usize) -> String {
        format!("{}{}", self.prefix, self.checked.runbook.steps[i].id)
    }
}

/// The result of a nested run, as the `runbook` action reports it.
pub struct NestedResult {
    pub status: &'static str,
    pub steps: Map<String, serde_json::Value>,
}

/// What an action sees while it runs.
pub struct StepContext {
    pub run: Arc<RunCtx>,
    pub index: usize,
    pub path: String,
    pub timeout: Duration,
    /// A plan's server-side preview of a mutation (see [`StepContext::server_dry_run`]).
    pub dry_run: bool,
}

impl StepContext {
    pub fn clients(&self) -> &Clients {
        &self.run.shared.clients
    }

    pub fn redactor(&self) -> &Redactor {
        &self.run.shared.redactor
    }

    /// Whether a mutation should only be checked by the server, not made (`opsctl plan`:
    /// Kubernetes writes go out with `dryRun=All`).
    pub fn server_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The step's timeout (Postgres also sends it as `statement_timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reads a credential from the environment and registers it as a secret.
    pub fn secret_env(&self, var: &str) -> Result<String, ActionError> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                self.redactor().add(&v);
                Ok(v)
            }
            _ => Err(ActionError::Config(format!(
                "environment variable {var} is not set"
            ))),
        }
    }

    /// Runs another runbook as part of this step.
    pub fn run_nested<'a>(
        &'a self,
        name: &'a str,
        params: Map<String, serde_json::Value>,
    ) -> BoxFuture<'a, Result<NestedResult, ActionError>> {
        Box::pin(super::scheduler::run_nested(self, name, params))
    }
}
