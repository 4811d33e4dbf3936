//! `k8s.logs`: pod logs (one pod or every pod of a selector), filtered by a regex.

use futures::future::BoxFuture;
use serde_json::Value;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, Dur, Exclusive, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Logs;

crate::action_args! {
    /// Arguments of `k8s.logs`.
    pub struct LogsArgs {
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Pod name.
        pod: Option<String>,
        /// Label selector (all matching pods).
        selector: Option<String>,
        /// Container name.
        container: Option<String>,
        /// Only lines newer than this.
        since: Option<Dur>,
        /// Last N lines per pod.
        tail: Option<Int>,
        /// Regex selecting `matches`.
        grep: Option<String>,
        /// Logs of the previous container (after a crash).
        previous: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.logs",
    summary: "Read pod logs, optionally filtered by a regex.",
    args: <LogsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "lines",
            doc: "Log lines.",
        },
        OutputSpec {
            name: "matches",
            doc: "Lines matching `grep`.",
        },
        OutputSpec {
            name: "match_count",
            doc: "Number of matches.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["pod", "selector"],
        required: true,
    }],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Logs {
    type Args = LogsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        let Some(arg) = args.get("grep") else { return };
        if let Some(Value::String(re)) = arg.value.literal() {
            if let Err(e) = regex::Regex::new(&re) {
                cx.error(
                    crate::rules::Rule::InvalidArgument,
                    format!(
                        "`grep` is not a valid regex: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                    arg.value.span(),
                    "invalid regex",
                );
            }
        }
    }

    fn describe(&self, a: &LogsArgs, env: &EnvConfig) -> String {
        format!(
            "logs of {} in {}",
            a.pod.as_deref().or(a.selector.as_deref()).unwrap_or("?"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: LogsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
