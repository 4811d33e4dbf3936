//! `k8s.get`: one object by name, or the objects of a kind.

use futures::future::BoxFuture;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, Exclusive, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Get;

crate::action_args! {
    /// Arguments of `k8s.get`.
    pub struct GetArgs {
        /// Kind, e.g. Deployment, pods, configmap.
        kind: String = required,
        /// Object name.
        name: Option<String>,
        /// Label selector (list).
        selector: Option<String>,
        /// Namespace (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.get",
    summary: "Get an object or list objects of a kind.",
    args: <GetArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "object",
            doc: "The object (with `name`).",
        },
        OutputSpec {
            name: "items",
            doc: "The objects (with `selector` or neither).",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["name", "selector"],
        required: false,
    }],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Get {
    type Args = GetArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn describe(&self, a: &GetArgs, env: &EnvConfig) -> String {
        format!(
            "get {} {} in {}",
            a.kind,
            a.name
                .as_deref()
                .or(a.selector.as_deref())
                .unwrap_or("(all)"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: GetArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
