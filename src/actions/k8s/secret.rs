//! `k8s.secret`: check a secret's keys, or merge keys into it (values never shown).

use futures::future::BoxFuture;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec, StrMap};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Secret;

crate::arg_enum! {
    /// What `k8s.secret` does.
    pub enum SecretAction {
        #[default]
        Check = "check",
        Set = "set",
    }
}

crate::action_args! {
    /// Arguments of `k8s.secret`.
    pub struct SecretArgs {
        /// Secret name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// check or set.
        action: SecretAction = required,
        /// Keys and values for `set` (values are secrets; other keys are kept).
        data: StrMap,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.secret",
    summary: "Check a secret's keys, or set its data (values never shown).",
    args: <SecretArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "exists",
            doc: "Whether the secret exists.",
        },
        OutputSpec {
            name: "keys",
            doc: "Its keys (never the values).",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "set",
    default_expect: "no error answer",
};

impl ActionImpl for Secret {
    type Args = SecretArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if args.literal_str("action").as_deref() == Some("set") && args.get("data").is_none() {
            cx.error(
                crate::rules::Rule::MissingArgument,
                "`k8s.secret` with `action: set` needs `data`",
                args.span,
                "missing data",
            );
        }
    }

    fn mutates(&self, a: &SecretArgs) -> bool {
        a.action == SecretAction::Set
    }

    fn describe(&self, a: &SecretArgs, env: &EnvConfig) -> String {
        format!(
            "{} secret {} in {}",
            a.action.as_str(),
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: SecretArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
