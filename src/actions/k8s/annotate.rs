//! `k8s.annotate`: set or remove annotations of an object.

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Annotate;

crate::action_args! {
    /// Arguments of `k8s.annotate`.
    pub struct AnnotateArgs {
        /// Kind of the object.
        kind: String = required,
        /// Object name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Annotations to set (a null value removes).
        annotations: Map<String, Value> = required,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.annotate",
    summary: "Set or remove annotations of an object.",
    args: <AnnotateArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "object",
            doc: "The object after the change.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "yes",
    default_expect: "no error answer",
};

impl ActionImpl for Annotate {
    type Args = AnnotateArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, _args: &AnnotateArgs) -> bool {
        true
    }

    fn describe(&self, a: &AnnotateArgs, env: &EnvConfig) -> String {
        format!(
            "annotate {} {} in {}",
            a.kind,
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: AnnotateArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
