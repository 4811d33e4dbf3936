//! `k8s.cordon` and `k8s.drain`: stop scheduling on a node, and move its pods away
//! through the Eviction API (which honours PodDisruptionBudgets), as kubectl does.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use super::LATENCY;
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Cordon;
pub struct Drain;

crate::action_args! {
    /// Arguments of `k8s.cordon`.
    pub struct CordonArgs {
        /// Node name.
        node: String = required,
    }
}

crate::action_args! {
    /// Arguments of `k8s.drain`.
    pub struct DrainArgs {
        /// Node name.
        node: String = required,
        /// Leave pods of DaemonSets where they are (they would come back anyway); true.
        ignore_daemonsets: Option<bool>,
    }
}

static CORDON: ActionSpec = ActionSpec {
    name: "k8s.cordon",
    summary: "Mark a node unschedulable.",
    args: <CordonArgs as ArgsSchema>::ARGS,
    outputs: &[LATENCY],
    exclusive: &[],
    mutating: "yes",
    default_expect: "no error answer",
};

static DRAIN: ActionSpec = ActionSpec {
    name: "k8s.drain",
    summary: "Cordon a node and evict its pods (PodDisruptionBudgets are honoured).",
    args: <DrainArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "evicted",
            doc: "Pods evicted (`namespace/name`).",
        },
        OutputSpec {
            name: "skipped",
            doc: "Pods left in place (DaemonSet pods, mirror pods).",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "yes",
    default_expect: "no error answer",
};

async fn cordon(cx: &StepContext, node: &str) -> Result<(), ActionError> {
    let kube = cx.clients().kube().await?;
    let api: kube::Api<Node> = kube::Api::all(kube.client.clone());
    let pp = kube::api::PatchParams {
        dry_run: cx.server_dry_run(),
        ..kube::api::PatchParams::default()
    };
    api.patch(
        node,
        &pp,
        &kube::api::Patch::Strategic(json!({"spec": {"unschedulable": true}})),
    )
    .await
    .map_err(|e| crate::targets::kube::error(&format!("cordon node {node}"), e))?;
    Ok(())
}

impl ActionImpl for Cordon {
    type Args = CordonArgs;

    fn spec(&self) -> &'static ActionSpec {
        &CORDON
    }

    fn kube_access(&self, _a: Option<&CordonArgs>) -> Vec<KubeAccess> {
        vec![KubeAccess::new(
            KubeResource::of::<Node>(),
            &["patch"],
            None,
        )]
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn describe(&self, a: &CordonArgs, _env: &EnvConfig) -> String {
        format!("cordon node {}", a.node)
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: CordonArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let started = Instant::now();
            cordon(cx, &a.node).await?;
            let mut out = Outputs::new();
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}

impl ActionImpl for Drain {
    type Args = DrainArgs;

    fn spec(&self) -> &'static ActionSpec {
        &DRAIN
    }

    fn kube_access(&self, _a: Option<&DrainArgs>) -> Vec<KubeAccess> {
        // Cordon, then the node's pods wherever they run, each evicted in its namespace.
        vec![
            KubeAccess::new(KubeResource::of::<Node>(), &["patch"], None),
            KubeAccess::new(KubeResource::of::<Pod>(), &["list"], None).in_all_namespaces(),
            KubeAccess::new(KubeResource::sub::<Pod>("pods/eviction"), &["create"], None)
                .in_all_namespaces(),
        ]
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn describe(&self, a: &DrainArgs, _env: &EnvConfig) -> String {
        format!("drain node {} (cordon, then evict its pods)", a.node)
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: DrainArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let started = Instant::now();
            cordon(cx, &a.node).await?;
            let kube = cx.clients().kube().await?;
            let all: kube::Api<Pod> = kube::Api::all(kube.client.clone());
            let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={}", a.node));
            let pods = crate::targets::kube::read(&format!("list pods on node {}", a.node), || {
                all.list(&lp)
            })
            .await?;
            let ignore_ds = a.ignore_daemonsets.unwrap_or(true);
            let (mut evicted, mut skipped) = (Vec::new(), Vec::new());
            for pod in pods.items {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let id = format!("{ns}/{name}");
                let daemon = pod
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "DaemonSet");
                let mirror = pod
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
                if (daemon && ignore_ds) || mirror {
                    skipped.push(id);
                    continue;
                }
                if daemon {
                    return Err(ActionError::Failed(format!(
                        "kubernetes: drain {}: {id} belongs to a DaemonSet (set ignore_daemonsets: true)",
                        a.node
                    )));
                }
                let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &ns);
                let ep = kube::api::EvictParams {
                    delete_options: None,
                    post_options: kube::api::PostParams {
                        dry_run: cx.server_dry_run(),
                        ..kube::api::PostParams::default()
                    },
                };
                // A PodDisruptionBudget answers 429 until the pod may go: try again until
                // the step's timeout says otherwise.
                loop {
                    match api.evict(&name, &ep).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 429 => {
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                        Err(e) => {
                            return Err(crate::targets::kube::error(&format!("evict {id}"), e));
                        }
                    }
                }
                evicted.push(id);
            }
            let mut out = Outputs::new();
            out.insert("evicted".into(), json!(evicted));
            out.insert("skipped".into(), json!(skipped));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
