//! `k8s.rollout`: status, history, restart or undo of a deployment.

use futures::future::BoxFuture;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Rollout;

crate::arg_enum! {
    /// What `k8s.rollout` does.
    pub enum RolloutAction {
        #[default]
        Status = "status",
        History = "history",
        Restart = "restart",
        Undo = "undo",
    }
}

crate::action_args! {
    /// Arguments of `k8s.rollout`.
    pub struct RolloutArgs {
        /// Deployment name.
        deployment: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// What to do.
        action: RolloutAction = required,
        /// Revision for `undo` (previous by default).
        to_revision: Option<Int>,
        /// Wait until the rollout completes (within the step timeout).
        wait: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.rollout",
    summary: "Rollout status, history, restart or undo of a deployment.",
    args: <RolloutArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "revision",
            doc: "Current revision.",
        },
        OutputSpec {
            name: "history",
            doc: "Revisions with their change causes.",
        },
        OutputSpec {
            name: "ready",
            doc: "Ready replicas.",
        },
        OutputSpec {
            name: "desired",
            doc: "Desired replicas.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "restart and undo",
    default_expect: "no error answer",
};

impl ActionImpl for Rollout {
    type Args = RolloutArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, a: &RolloutArgs) -> bool {
        matches!(a.action, RolloutAction::Restart | RolloutAction::Undo)
    }

    fn describe(&self, a: &RolloutArgs, env: &EnvConfig) -> String {
        format!(
            "rollout {} deployment/{} in {}",
            a.action.as_str(),
            a.deployment,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: RolloutArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
