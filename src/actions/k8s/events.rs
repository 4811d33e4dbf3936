//! `k8s.events`: recent events of a namespace, newest first.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Dur, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
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
        /// Only events about this object: `kind/name` (e.g. `pod/api-1`) or a name.
        r#for: Option<String>,
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

    fn kube_access(&self, a: Option<&EventsArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        vec![KubeAccess::new(KubeResource::of::<Event>(), &["list"], ns)]
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
        cx: &'a StepContext,
        a: EventsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let api: kube::Api<Event> = kube::Api::namespaced(kube.client.clone(), &ns);
            let started = Instant::now();
            let lp = kube::api::ListParams::default();
            let list =
                crate::targets::kube::read(&format!("list events in {ns}"), || api.list(&lp))
                    .await?;
            let since = a.since.map_or(DEFAULT_SINCE, |d| d.0);
            let oldest =
                chrono::Utc::now().timestamp() - i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
            let (for_kind, for_name) = match a.r#for.as_deref().map(|f| f.split_once('/')) {
                Some(Some((k, n))) => (Some(k.to_ascii_lowercase()), Some(n.to_string())),
                Some(None) => (None, a.r#for.clone()),
                None => (None, None),
            };
            let mut events: Vec<(i64, Value)> = list
                .items
                .iter()
                .filter(|e| match a.r#type {
                    EventType::Any => true,
                    t => e.type_.as_deref() == Some(t.as_str()),
                })
                .filter(|e| {
                    let o = &e.involved_object;
                    for_name.as_ref().is_none_or(|n| o.name.as_ref() == Some(n))
                        && for_kind.as_ref().is_none_or(|k| {
                            o.kind
                                .as_ref()
                                .is_some_and(|ok| ok.to_ascii_lowercase() == *k)
                        })
                })
                .filter_map(|e| {
                    let at = seen(e)?;
                    (at >= oldest).then(|| (at, describe_event(e)))
                })
                .collect();
            events.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            let mut out = Outputs::new();
            out.insert("count".into(), json!(events.len()));
            out.insert(
                "events".into(),
                Value::Array(events.into_iter().map(|(_, e)| e).collect()),
            );
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}

/// How far back events are read by default.
const DEFAULT_SINCE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// When an event was last seen, in Unix seconds (kubectl's order: last, event, first,
/// creation time).
fn seen(e: &Event) -> Option<i64> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.as_second()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        })
}

fn describe_event(e: &Event) -> Value {
    let o = &e.involved_object;
    let last = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()));
    json!({
        "type": e.type_,
        "reason": e.reason,
        "object": format!(
            "{}/{}",
            o.kind.as_deref().unwrap_or("?"),
            o.name.as_deref().unwrap_or("?")
        ),
        "message": e.message,
        "count": e.count,
        "last_seen": last,
    })
}
