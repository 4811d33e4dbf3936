//! `k8s.get`: one object by name, or the objects of a kind.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Exclusive, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Get;

crate::action_args! {
    /// Arguments of `k8s.get`.
    pub struct GetArgs {
        /// Kind, e.g. Deployment, pods, configmap.
        kind: String = required,
        /// Object name.
        name: Option<String>,
        /// Label selector (list).
        selector: Option<String>,
        /// Namespace (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.get",
    summary: "Get an object or list objects of a kind.",
    args: <GetArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "object",
            doc: "The object (with `name`).",
        },
        OutputSpec {
            name: "items",
            doc: "The objects (with `selector` or neither).",
        },
        OutputSpec {
            name: "count",
            doc: "How many objects `items` holds.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["name", "selector"],
        required: false,
    }],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Get {
    type Args = GetArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&GetArgs>) -> Vec<KubeAccess> {
        match a {
            Some(a) => {
                let verbs: &'static [&'static str] = if a.name.is_some() {
                    &["get"]
                } else {
                    &["list"]
                };
                vec![KubeAccess::new(
                    KubeResource::named(&a.kind),
                    verbs,
                    a.namespace.as_deref(),
                )]
            }
            None => vec![KubeAccess::new(
                KubeResource::Unknown("the kind named by `kind`".into()),
                &["get", "list"],
                None,
            )],
        }
    }

    fn describe(&self, a: &GetArgs, env: &EnvConfig) -> String {
        format!(
            "get {} {} in {}",
            a.kind,
            a.name
                .as_deref()
                .or(a.selector.as_deref())
                .unwrap_or("(all)"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: GetArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let (api, ar, ns) = kube.api_for(&a.kind, a.namespace.as_deref()).await?;
            let mut out = Outputs::new();
            match &a.name {
                Some(name) => {
                    let obj = crate::targets::kube::read(
                        &format!("get {} {name} in {ns}", ar.kind),
                        || api.get(name),
                    )
                    .await?;
                    out.insert("object".into(), super::object_output(&ar.kind, &obj));
                }
                None => {
                    let mut lp = kube::api::ListParams::default();
                    if let Some(sel) = &a.selector {
                        lp = lp.labels(sel);
                    }
                    let list =
                        crate::targets::kube::read(&format!("list {} in {ns}", ar.plural), || {
                            api.list(&lp)
                        })
                        .await?;
                    let items: Vec<Value> = list
                        .items
                        .iter()
                        .map(|o| super::object_output(&ar.kind, o))
                        .collect();
                    out.insert("count".into(), serde_json::json!(items.len()));
                    out.insert("items".into(), Value::Array(items));
                }
            }
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
