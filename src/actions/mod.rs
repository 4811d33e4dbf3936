//! Actions plug in behind one trait: each kind validates its arguments (lint), describes
//! what it would do (dry run, plan), says whether it mutates, and executes (run).
//! Adding an action means one file and one line in [`REGISTRY`].

pub mod access;
pub mod docs;
mod exec;
mod http;
mod k8s;
mod manual;
mod metrics;
mod postgres;
mod redis;
mod runbook;
mod secret;
pub mod spec;
mod tcp;
mod tls;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::loader::Cx;
use crate::model::Args;

pub use access::{KubeAccess, KubeResource};
pub use spec::{ActionSpec, ArgSpec, ArgType, Exclusive, OutputSpec};

/// Most rows (Postgres) or list items (Redis) a step keeps: everything a step outputs is
/// held, shown and recorded, so an accidental `SELECT *` must stay bounded.
pub const MAX_ITEMS: usize = 10_000;

/// What an action produced: named outputs (`status`, `rows`, ...).
pub type Outputs = Map<String, Value>;

/// What kind of failure ended a step as `error`: decides nothing by text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The arguments, once resolved, are not valid for the action.
    InvalidArgs,
    /// The service could not be reached (refused, DNS, TLS handshake, timeout, lost).
    Unreachable,
    /// The service refused our credentials.
    Auth,
    /// The service answered with an error.
    Failed,
    /// opsctl refused to send the request (a write without `mutating: true`).
    Refused,
    /// The configuration lacks what the step needs (unknown target, unset env var).
    Config,
    /// The action is not available in this build.
    Unsupported,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgs => "invalid_args",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Auth => "auth",
            ErrorKind::Failed => "failed",
            ErrorKind::Refused => "refused",
            ErrorKind::Config => "config",
            ErrorKind::Unsupported => "unsupported",
        }
    }

    /// Whether trying again later may help (the service may come back); the others
    /// will fail the same way.
    pub fn transient(self) -> bool {
        matches!(self, ErrorKind::Unreachable | ErrorKind::Failed)
    }
}

/// Why an action could not do its job: a kind, the one-line message the step reports, and
/// the underlying error when there is one. Every one ends the step as `error`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Constructors named after the kinds (`ActionError::Unreachable(message)`), usable where
/// a `fn(String) -> ActionError` is wanted (`.map_err(ActionError::Config)`).
#[allow(non_snake_case)]
impl ActionError {
    pub fn new(kind: ErrorKind, message: String) -> ActionError {
        ActionError {
            kind,
            message,
            source: None,
        }
    }

    pub fn InvalidArgs(message: String) -> ActionError {
        ActionError::new(ErrorKind::InvalidArgs, message)
    }

    pub fn Unreachable(message: String) -> ActionError {
        ActionError::new(ErrorKind::Unreachable, message)
    }

    pub fn Auth(message: String) -> ActionError {
        ActionError::new(ErrorKind::Auth, message)
    }

    pub fn Failed(message: String) -> ActionError {
        ActionError::new(ErrorKind::Failed, message)
    }

    pub fn Refused(message: String) -> ActionError {
        ActionError::new(ErrorKind::Refused, message)
    }

    pub fn Config(message: String) -> ActionError {
        ActionError::new(ErrorKind::Config, message)
    }

    pub fn Unsupported(message: String) -> ActionError {
        ActionError::new(ErrorKind::Unsupported, message)
    }
}

impl ActionError {
    /// The same error, with the error that caused it.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message the step reports.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For matching in tests and callers: `match err.view() { ErrorView::Auth(msg) => .. }`.
    pub fn view(&self) -> ErrorView<'_> {
        let m = self.message.as_str();
        match self.kind {
            ErrorKind::InvalidArgs => ErrorView::InvalidArgs(m),
            ErrorKind::Unreachable => ErrorView::Unreachable(m),
            ErrorKind::Auth => ErrorView::Auth(m),
            ErrorKind::Failed => ErrorView::Failed(m),
            ErrorKind::Refused => ErrorView::Refused(m),
            ErrorKind::Config => ErrorView::Config(m),
            ErrorKind::Unsupported => ErrorView::Unsupported(m),
        }
    }
}

/// An [`ActionError`] seen as its kind with its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorView<'a> {
    InvalidArgs(&'a str),
    Unreachable(&'a str),
    Auth(&'a str),
    Failed(&'a str),
    Refused(&'a str),
    Config(&'a str),
    Unsupported(&'a str),
}

/// One action, typed: its arguments are one struct declared with [`action_args!`], from
/// which lint's argument checks, the JSON Schema, `show`, the dry run and the actions table
/// in the docs all read. Implement this; the rest of opsctl sees it as an [`Action`].
pub trait ActionImpl: Send + Sync + 'static {
    type Args: spec::ArgsSchema + serde::de::DeserializeOwned + Send;

    /// Whether some arguments make it change something. Arguments that are not known
    /// before the run (a templated method, say) count as mutating when this is true.
    const MAY_MUTATE: bool = true;

    fn spec(&self) -> &'static ActionSpec;

    /// Checks beyond the argument schema, on the arguments as written (lint).
    fn check(&self, _args: &Args, _cx: &mut Cx<'_>) {}

    /// Whether these arguments change something and need confirmation.
    fn mutates(&self, _args: &Self::Args) -> bool {
        Self::MAY_MUTATE
    }

    /// One line saying what the step would do, for dry run, plan and the record.
    fn describe(&self, args: &Self::Args, env: &EnvConfig) -> String;

    /// The action's default expectation (used when a step has no `expect`): the reason
    /// it does not hold, if it does not.
    fn default_failure(&self, _outputs: &Outputs) -> Option<String> {
        None
    }

    /// Outputs that are secrets: registered for masking as soon as they exist, and lint
    /// lets expressions pass them on only unchanged.
    fn secret_outputs(&self) -> &'static [&'static str] {
        &[]
    }

    /// The reason the action did not do all it was asked although nothing failed (a
    /// nested runbook whose mutation was not confirmed): the step ends `skipped`, not `ok`.
    fn incomplete(&self, _outputs: &Outputs) -> Option<String> {
        None
    }

    /// Whether the step asks a person to do something (a manual step): `plan` does not
    /// ask, `--yes` does not answer it (only `--yes-manual` does).
    fn asks_person(&self) -> bool {
        false
    }

    /// The kind of configured target (its config section: `http`, `postgres`, ...) the
    /// action's `target` argument names.
    fn target_kind(&self) -> Option<&'static str> {
        None
    }

    /// The argument naming the runbook this step runs (a nested `runbook` step).
    fn called_runbook<'a>(&self, _args: &'a Args) -> Option<&'a crate::model::Arg> {
        None
    }

    /// Whether the action runs other steps (a nested runbook): it then takes no
    /// `--max-parallel` slot and no timeout of its own; its steps have theirs.
    fn runs_steps(&self) -> bool {
        false
    }

    /// Whether the action applies the step timeout itself: pooled clients wait for a free
    /// connection first, and that wait must not count ("steps beyond the pool wait, they
    /// do not fail").
    fn times_itself(&self) -> bool {
        false
    }

    /// Whether the service can check this mutation without making it (Kubernetes'
    /// `dryRun=All`): `opsctl plan` then runs the step with
    /// [`StepContext::server_dry_run`] set and shows what the server answered.
    fn previews_on_server(&self) -> bool {
        false
    }

    /// The Kubernetes API requests these arguments make (what RBAC must grant: `opsctl
    /// rbac`); `None`: arguments not known before the run, so everything any arguments
    /// could ask. Written next to the calls, in the action's own file. The arguments are
    /// as written: a string template stays its text, and a number, boolean or duration
    /// written as a template arrives as a placeholder (0, false, 1s), so decide nothing
    /// on those.
    fn kube_access(&self, _args: Option<&Self::Args>) -> Vec<KubeAccess> {
        Vec::new()
    }

    /// Runs the action. Clients come from the context; the action never builds them.
    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Self::Args,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>>;
}

/// An action as the loader, lint, the executor and the reports see it: arguments as
/// resolved JSON. Every [`ActionImpl`] is one.
pub trait Action: Send + Sync + 'static {
    fn spec(&self) -> &'static ActionSpec;
    fn check(&self, args: &Args, cx: &mut Cx<'_>);
    /// Whether these resolved (or partly resolved) arguments change something.
    fn mutates(&self, args: &Value) -> bool;
    fn describe(&self, args: &Value, env: &EnvConfig) -> String;
    fn default_failure(&self, outputs: &Outputs) -> Option<String>;
    fn secret_outputs(&self) -> &'static [&'static str];
    fn incomplete(&self, outputs: &Outputs) -> Option<String>;
    fn asks_person(&self) -> bool;
    fn target_kind(&self) -> Option<&'static str>;
    fn called_runbook<'a>(&self, args: &'a Args) -> Option<&'a crate::model::Arg>;
    fn runs_steps(&self) -> bool;
    fn times_itself(&self) -> bool;
    fn previews_on_server(&self) -> bool;
    /// The Kubernetes API requests these (possibly partly resolved) arguments make;
    /// arguments that do not parse yet count as any arguments.
    fn kube_access(&self, args: &Value) -> Vec<KubeAccess>;
    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>>;
}

impl<T: ActionImpl> Action for T {
    fn spec(&self) -> &'static ActionSpec {
        ActionImpl::spec(self)
    }

    fn check(&self, args: &Args, cx: &mut Cx<'_>) {
        ActionImpl::check(self, args, cx)
    }

    fn mutates(&self, args: &Value) -> bool {
        match serde_json::from_value::<T::Args>(args.clone()) {
            Ok(a) => ActionImpl::mutates(self, &a),
            // Not known yet (a template the dry run cannot resolve): assume the worst.
            Err(_) => T::MAY_MUTATE,
        }
    }

    fn describe(&self, args: &Value, env: &EnvConfig) -> String {
        match serde_json::from_value::<T::Args>(args.clone()) {
            Ok(a) => ActionImpl::describe(self, &a, env),
            Err(_) => format!("{} {}", ActionImpl::spec(self).name, args),
        }
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        ActionImpl::default_failure(self, outputs)
    }

    fn secret_outputs(&self) -> &'static [&'static str] {
        ActionImpl::secret_outputs(self)
    }

    fn incomplete(&self, outputs: &Outputs) -> Option<String> {
        ActionImpl::incomplete(self, outputs)
    }

    fn asks_person(&self) -> bool {
        ActionImpl::asks_person(self)
    }

    fn target_kind(&self) -> Option<&'static str> {
        ActionImpl::target_kind(self)
    }

    fn called_runbook<'a>(&self, args: &'a Args) -> Option<&'a crate::model::Arg> {
        ActionImpl::called_runbook(self, args)
    }

    fn runs_steps(&self) -> bool {
        ActionImpl::runs_steps(self)
    }

    fn times_itself(&self) -> bool {
        ActionImpl::times_itself(self)
    }

    fn previews_on_server(&self) -> bool {
        ActionImpl::previews_on_server(self)
    }

    fn kube_access(&self, args: &Value) -> Vec<KubeAccess> {
        let spec = ActionImpl::spec(self);
        let parsed = serde_json::from_value::<T::Args>(args.clone())
            .or_else(|_| serde_json::from_value::<T::Args>(access::placeholders(spec, args)));
        match parsed {
            Ok(a) => ActionImpl::kube_access(self, Some(&a)),
            Err(_) => ActionImpl::kube_access(self, None),
        }
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let name = ActionImpl::spec(self).name;
            let typed: T::Args = parse_args(name, args)?;
            ActionImpl::execute(self, cx, typed).await
        })
    }
}

/// Every built-in action, by its key in a step.
pub static REGISTRY: &[&dyn Action] = &[
    &http::Http,
    &metrics::Metrics,
    &tcp::Tcp,
    &tls::Tls,
    &postgres::Postgres,
    &redis::Redis,
    &k8s::Pods,
    &k8s::Get,
    &k8s::Events,
    &k8s::Logs,
    &k8s::Rollout,
    &k8s::Scale,
    &k8s::Annotate,
    &k8s::Secret,
    &k8s::PatchAction,
    &k8s::Delete,
    &k8s::Describe,
    &k8s::Cordon,
    &k8s::Drain,
    &k8s::Apply,
    &k8s::Top,
    &k8s::Exec,
    &exec::Exec,
    &manual::Manual,
    &secret::SecretGenerate,
    &runbook::Nested,
];

/// The built-in action registered under `name`.
pub fn lookup(name: &str) -> Option<&'static dyn Action> {
    REGISTRY.iter().copied().find(|a| a.spec().name == name)
}

/// All built-in action names, for suggestions.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|a| a.spec().name)
}

/// The actions a loader knows: a value handed to the loader (and through the loaded
/// steps, to the executor), so tests and embedders can add their own.
#[derive(Clone)]
pub struct Registry {
    actions: Vec<&'static dyn Action>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::builtin()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// opsctl's own actions.
    pub fn builtin() -> Registry {
        Registry {
            actions: REGISTRY.to_vec(),
        }
    }

    /// This registry plus `action` (replacing one of the same name).
    pub fn with(mut self, action: &'static dyn Action) -> Registry {
        let name = action.spec().name;
        self.actions.retain(|a| a.spec().name != name);
        self.actions.push(action);
        self
    }

    pub fn lookup(&self, name: &str) -> Option<&'static dyn Action> {
        self.actions.iter().copied().find(|a| a.spec().name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.iter().map(|a| a.spec().name)
    }
}

/// Deserializes resolved arguments into an action's typed struct, with a message that
/// names the argument.
pub fn parse_args<T: serde::de::DeserializeOwned>(
    action: &str,
    args: Value,
) -> Result<T, ActionError> {
    serde_json::from_value(args).map_err(|e| ActionError::InvalidArgs(format!("{action}: {e}")))
}

/// Reads a string argument from resolved arguments.
pub fn arg_str<'v>(args: &'v Value, key: &str) -> Option<&'v str> {
    args.get(key).and_then(Value::as_str)
}

/// Reads a boolean argument, with a default.
pub fn arg_bool(args: &Value, key: &str, default: bool) -> bool {
    args.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Milliseconds since `start`, as an output value.
pub fn latency_ms(start: std::time::Instant) -> Value {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    serde_json::Number::from_f64((ms * 10.0).round() / 10.0).map_or(Value::Null, Value::Number)
}
