//! `k8s.pods`: a summary of the pods matching a selector (ready, crash-looping,
//! OOM-killed, restarts).

use futures::future::BoxFuture;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Pods;

crate::action_args! {
    /// Arguments of `k8s.pods`.
    pub struct PodsArgs {
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Label selector, e.g. app=api.
        selector: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.pods",
    summary: "Summarise the pods matching a selector.",
    args: <PodsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "total",
            doc: "Pods matched.",
        },
        OutputSpec {
            name: "ready",
            doc: "Pods ready.",
        },
        OutputSpec {
            name: "not_ready",
            doc: "Pods not ready.",
        },
        OutputSpec {
            name: "pending",
            doc: "Pods pending.",
        },
        OutputSpec {
            name: "crashlooping",
            doc: "Pods with a container in CrashLoopBackOff.",
        },
        OutputSpec {
            name: "oom_killed",
            doc: "Pods whose last termination was OOMKilled.",
        },
        OutputSpec {
            name: "restarts",
            doc: "Total container restarts.",
        },
        OutputSpec {
            name: "pods",
            doc: "List of {name, phase, ready, restarts, reason}.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Pods {
    type Args = PodsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn describe(&self, a: &PodsArgs, env: &EnvConfig) -> String {
        format!(
            "pods {} in {}",
            a.selector.as_deref().unwrap_or("(all)"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: PodsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
