//! `runbook`: run another runbook as one step; its steps appear in the record under this
//! step's id.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgsSchema, OutputSpec};
use super::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Nested;

crate::action_args! {
    /// Arguments of `runbook`.
    pub struct RunbookArgs {
        /// Name of the runbook.
        name: String = required,
        /// Its params.
        params: serde_json::Map<String, Value>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "runbook",
    summary: "Run another runbook.",
    args: <RunbookArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "status",
            doc: "`ok`, `failed`, `cancelled`, or `incomplete` (a mutating or manual step of it did not get a yes; the step then ends `skipped`).",
        },
        OutputSpec {
            name: "steps",
            doc: "Map of its step ids to `{status, outputs}`.",
        },
    ],
    exclusive: &[],
    mutating: "as its steps (each asks for itself)",
    default_expect: "every step of it ended ok or warn",
};

impl ActionImpl for Nested {
    type Args = RunbookArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    // Its steps ask for themselves.
    fn mutates(&self, _args: &RunbookArgs) -> bool {
        false
    }

    fn describe(&self, a: &RunbookArgs, _env: &EnvConfig) -> String {
        let name = &a.name;
        match Some(&a.params) {
            Some(p) if !p.is_empty() => format!(
                "run runbook {name} with {}",
                p.iter()
                    .map(|(k, v)| format!("{k}={}", crate::expr::text_of(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ => format!("run runbook {name}"),
        }
    }

    fn runs_steps(&self) -> bool {
        true
    }

    fn called_runbook<'a>(&self, args: &'a crate::model::Args) -> Option<&'a crate::model::Arg> {
        args.get("name")
    }

    fn incomplete(&self, outputs: &Outputs) -> Option<String> {
        (outputs.get("status").and_then(Value::as_str) == Some("incomplete")).then(|| {
            let names: Vec<&str> = outputs
                .get("steps")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(_, s)| s.get("declined") == Some(&Value::Bool(true)))
                .map(|(id, _)| id.as_str())
                .collect();
            format!(
                "not done: its step(s) {} did not get a yes",
                names.join(", ")
            )
        })
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        match outputs.get("status").and_then(Value::as_str) {
            Some("ok") => None,
            Some(s) => Some(format!("nested runbook ended {s}")),
            None => Some("nested runbook did not report a status".into()),
        }
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: RunbookArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let result = cx.run_nested(&a.name, a.params).await?;
            let mut out = Outputs::new();
            out.insert("status".into(), json!(result.status));
            out.insert("steps".into(), Value::Object(result.steps));
            Ok(out)
        })
    }
}
