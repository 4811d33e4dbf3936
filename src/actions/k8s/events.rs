//! `k8s.events`: recent events of a namespace, newest first.

use futures::future::BoxFuture;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgsSchema, Dur, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::model::duration::format_duration;

pub struct Events;

crate::arg_enum! {
    /// Which events.
    pub enum EventType {
        #[default]
        Any = "any",
        Normal = "Normal",
        Warning = "Warning",
    }
}

crate::action_args! {
    /// Arguments of `k8s.events`.
    pub struct EventsArgs {
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// How far back (15m).
        since: Option<Dur>,
        /// Event type (any).
        r#type: EventType,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.events",
    summary: "Recent events of a namespace.",
    args: <EventsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "events",
            doc: "Events, newest first.",
        },
        OutputSpec {
            name: "count",
            doc: "Number of events.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Events {
    type Args = EventsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn describe(&self, a: &EventsArgs, env: &EnvConfig) -> String {
        format!(
            "events in {} since {}",
            namespace(a.namespace.as_deref(), env),
            a.since
                .map_or_else(|| "15m".to_string(), |d| format_duration(d.0))
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: EventsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
}
