//! `k8s.pods`: a summary of the pods matching a selector (ready, crash-looping,
//! OOM-killed, restarts).

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Pods;

crate::action_args! {
    /// Arguments of `k8s.pods`.
    pub struct PodsArgs {
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Label selector, e.g. app=api.
        selector: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.pods",
    summary: "Summarise the pods matching a selector.",
    args: <PodsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "total",
            doc: "Pods matched.",
        },
        OutputSpec {
            name: "ready",
            doc: "Pods ready.",
        },
        OutputSpec {
            name: "not_ready",
            doc: "Pods not ready.",
        },
        OutputSpec {
            name: "pending",
            doc: "Pods pending.",
        },
        OutputSpec {
            name: "crashlooping",
            doc: "Pods with a container in CrashLoopBackOff.",
        },
        OutputSpec {
            name: "oom_killed",
            doc: "Pods whose last termination was OOMKilled.",
        },
        OutputSpec {
            name: "image_pull_errors",
            doc: "Pods with a container waiting in ErrImagePull or ImagePullBackOff.",
        },
        OutputSpec {
            name: "restarts",
            doc: "Total container restarts.",
        },
        OutputSpec {
            name: "pods",
            doc: "List of {name, phase, ready, restarts, reason, node, age_s}.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Pods {
    type Args = PodsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&PodsArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        vec![KubeAccess::new(KubeResource::of::<Pod>(), &["list"], ns)]
    }

    fn describe(&self, a: &PodsArgs, env: &EnvConfig) -> String {
        format!(
            "pods {} in {}",
            a.selector.as_deref().unwrap_or("(all)"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: PodsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &ns);
            let mut lp = kube::api::ListParams::default();
            if let Some(sel) = &a.selector {
                lp = lp.labels(sel);
            }
            let started = Instant::now();
            let list =
                crate::targets::kube::read(&format!("list pods in {ns}"), || api.list(&lp)).await?;
            let mut out = summarize(&list.items);
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}

/// Counts as `kubectl get pods` shows them: ready when every container is ready,
/// crash-looping when one waits in CrashLoopBackOff, OOM-killed when one's last (or
/// current) termination was OOMKilled, restarts summed over containers.
pub fn summarize(pods: &[Pod]) -> Outputs {
    let now = chrono::Utc::now().timestamp();
    let mut out = Outputs::new();
    let (mut ready, mut pending, mut crash, mut oom, mut pull, mut restarts) =
        (0, 0, 0, 0, 0, 0i64);
    let mut list = Vec::new();
    for pod in pods {
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
        let containers = status
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let all_ready = !containers.is_empty() && containers.iter().all(|c| c.ready);
        let pod_restarts: i64 = containers.iter().map(|c| i64::from(c.restart_count)).sum();
        let waiting: Vec<String> = containers
            .iter()
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .collect();
        let terminated = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
            let last = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.clone());
            let now = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.clone());
            [last, now]
        };
        let is_oom = containers
            .iter()
            .any(|c| terminated(c).iter().flatten().any(|r| r == "OOMKilled"));
        let is_crash = waiting.iter().any(|r| r == "CrashLoopBackOff");
        let is_pull = waiting
            .iter()
            .any(|r| r == "ErrImagePull" || r == "ImagePullBackOff");
        ready += usize::from(all_ready);
        pending += usize::from(phase == "Pending");
        crash += usize::from(is_crash);
        oom += usize::from(is_oom);
        pull += usize::from(is_pull);
        restarts += pod_restarts;
        let reason = waiting
            .first()
            .cloned()
            .or_else(|| containers.iter().flat_map(terminated).flatten().next())
            .or_else(|| status.and_then(|s| s.reason.clone()));
        let age_s = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| (now - t.0.as_second()).max(0));
        list.push(json!({
            "name": pod.metadata.name,
            "phase": phase,
            "ready": all_ready,
            "restarts": pod_restarts,
            "reason": reason,
            "node": pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            "age_s": age_s,
        }));
    }
    out.insert("total".into(), json!(pods.len()));
    out.insert("ready".into(), json!(ready));
    out.insert("not_ready".into(), json!(pods.len() - ready));
    out.insert("pending".into(), json!(pending));
    out.insert("crashlooping".into(), json!(crash));
    out.insert("oom_killed".into(), json!(oom));
    out.insert("image_pull_errors".into(), json!(pull));
    out.insert("restarts".into(), json!(restarts));
    out.insert("pods".into(), Value::Array(list));
    out
}
