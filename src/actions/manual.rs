//! `manual`: show instructions to the person running the runbook and wait for them.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgsSchema, OutputSpec};
use super::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Manual;

crate::action_args! {
    /// Arguments of `manual`.
    pub struct ManualArgs {
        /// What the person must do (markdown).
        instructions: String = required,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "manual",
    summary: "Ask a person to do something and confirm it is done.",
    args: <ManualArgs as ArgsSchema>::ARGS,
    outputs: &[OutputSpec {
        name: "confirmed",
        doc: "Whether the person confirmed.",
    }],
    exclusive: &[],
    mutating: "asks a person; never auto-confirmed by --yes (use --yes-manual)",
    default_expect: "confirmed",
};

impl ActionImpl for Manual {
    type Args = ManualArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn asks_person(&self) -> bool {
        true
    }

    fn describe(&self, a: &ManualArgs, _env: &EnvConfig) -> String {
        let first = a.instructions.lines().next().unwrap_or("");
        format!("ask a person: {first}")
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        (outputs.get("confirmed") != Some(&Value::Bool(true))).then(|| "not confirmed".to_string())
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: ManualArgs,
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
