//! `runbook`: run another runbook as one step; its steps appear in the record under this
//! step's id.

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Nested;

static SPEC: ActionSpec = ActionSpec {
    name: "runbook",
    summary: "Run another runbook.",
    args: &[
        ArgSpec {
            name: "name",
            ty: ArgType::Str,
            required: true,
            doc: "Name of the runbook.",
        },
        ArgSpec {
            name: "params",
            ty: ArgType::StrMap,
            required: false,
            doc: "Its params.",
        },
    ],
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

impl Action for Nested {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        let name = arg_str(args, "name").unwrap_or("?");
        match args.get("params").and_then(Value::as_object) {
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
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let name = arg_str(&args, "name")
                .ok_or_else(|| ActionError::InvalidArgs("runbook: `name` is required".into()))?
                .to_string();
            let params: Map<String, Value> = args
                .get("params")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let result = cx.run_nested(&name, params).await?;
            let mut out = Outputs::new();
            out.insert("status".into(), json!(result.status));
            out.insert("steps".into(), Value::Object(result.steps));
            Ok(out)
        })
    }
}
