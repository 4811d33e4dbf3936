//! `k8s.describe`: an object and the events about it, as `kubectl describe` gathers them.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Describe;

crate::action_args! {
    /// Arguments of `k8s.describe`.
    pub struct DescribeArgs {
        /// Kind of the object.
        kind: String = required,
        /// Object name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.describe",
    summary: "An object and its events, as kubectl describe shows them.",
    args: <DescribeArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "object",
            doc: "The object.",
        },
        OutputSpec {
            name: "events",
            doc: "Events about it, newest first: {type, reason, message, count, last_seen}.",
        },
        OutputSpec {
            name: "warnings",
            doc: "How many of them are Warning events.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Describe {
    type Args = DescribeArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&DescribeArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        let object = match a {
            Some(a) => KubeResource::named(&a.kind),
            None => KubeResource::Unknown("the kind named by `kind`".into()),
        };
        // The object, then the events of its namespace (filtered here, as kubectl does).
        vec![
            KubeAccess::new(object, &["get"], ns),
            KubeAccess::new(KubeResource::of::<Event>(), &["list"], ns),
        ]
    }

    fn describe(&self, a: &DescribeArgs, env: &EnvConfig) -> String {
        format!(
            "describe {} {} in {}",
            a.kind,
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: DescribeArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let (api, ar, ns) = kube.api_for(&a.kind, a.namespace.as_deref()).await?;
            let obj =
                crate::targets::kube::read(&format!("get {} {} in {ns}", ar.kind, a.name), || {
                    api.get(&a.name)
                })
                .await?;
            let events_api: kube::Api<Event> = kube::Api::namespaced(kube.client.clone(), &ns);
            let lp = kube::api::ListParams::default().fields(&format!(
                "involvedObject.name={},involvedObject.kind={}",
                a.name, ar.kind
            ));
            let list = crate::targets::kube::read(&format!("list events in {ns}"), || {
                events_api.list(&lp)
            })
            .await?;
            let mut events: Vec<(i64, Value)> = list
                .items
                .iter()
                .map(|e| {
                    let at = e
                        .last_timestamp
                        .as_ref()
                        .map(|t| t.0.as_second())
                        .or_else(|| {
                            e.metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0.as_second())
                        })
                        .unwrap_or(0);
                    (
                        at,
                        json!({
                            "type": e.type_,
                            "reason": e.reason,
                            "message": e.message,
                            "count": e.count,
                            "last_seen": e.last_timestamp.as_ref().map(|t| t.0.to_string()),
                        }),
                    )
                })
                .collect();
            events.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
            let warnings = events
                .iter()
                .filter(|(_, e)| e["type"] == "Warning")
                .count();
            let mut out = Outputs::new();
            out.insert("object".into(), super::object_output(&ar.kind, &obj));
            out.insert(
                "events".into(),
                Value::Array(events.into_iter().map(|(_, e)| e).collect()),
            );
            out.insert("warnings".into(), json!(warnings));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
