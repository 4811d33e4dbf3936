//! `manual`: show instructions to the person running the runbook and wait for them.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Manual;

static SPEC: ActionSpec = ActionSpec {
    name: "manual",
    summary: "Ask a person to do something and confirm it is done.",
    args: &[ArgSpec {
        name: "instructions",
        ty: ArgType::Str,
        required: true,
        doc: "What the person must do (markdown).",
    }],
    outputs: &[OutputSpec {
        name: "confirmed",
        doc: "Whether the person confirmed.",
    }],
    exclusive: &[],
    mutating: "asks a person; never auto-confirmed by --yes (use --yes-manual)",
    default_expect: "confirmed",
};

impl Action for Manual {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn asks_person(&self) -> bool {
        true
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        let text = arg_str(args, "instructions").unwrap_or("");
        let first = text.lines().next().unwrap_or("");
        format!("ask a person: {first}")
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        (outputs.get("confirmed") != Some(&Value::Bool(true))).then(|| "not confirmed".to_string())
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        // The executor asks the person before this runs (see exec::confirm); reaching
        // here means they confirmed.
        Box::pin(async move {
            let mut out = Outputs::new();
            out.insert("confirmed".into(), json!(true));
            Ok(out)
        })
    }
}
