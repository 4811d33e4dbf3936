//! `k8s.rollout`: status, history, restart or undo of a deployment.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Rollout;

crate::arg_enum! {
    /// What `k8s.rollout` does.
    pub enum RolloutAction {
        #[default]
        Status = "status",
        History = "history",
        Restart = "restart",
        Undo = "undo",
    }
}

crate::action_args! {
    /// Arguments of `k8s.rollout`.
    pub struct RolloutArgs {
        /// Deployment name.
        deployment: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// What to do.
        action: RolloutAction = required,
        /// Revision for `undo` (previous by default).
        to_revision: Option<Int>,
        /// Wait until the rollout completes (within the step timeout).
        wait: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.rollout",
    summary: "Rollout status, history, restart or undo of a deployment.",
    args: <RolloutArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "revision",
            doc: "Current revision.",
        },
        OutputSpec {
            name: "history",
            doc: "For `history`: revisions, oldest first, each with `revision`, `change_cause`, `replicaset`, `created` (RFC 3339) and `age_s` (seconds since it was created).",
        },
        OutputSpec {
            name: "revision_age_s",
            doc: "For `history`: seconds since the current revision was created (how recent the last deploy is); null when unknown.",
        },
        OutputSpec {
            name: "ready",
            doc: "Ready replicas.",
        },
        OutputSpec {
            name: "desired",
            doc: "Desired replicas.",
        },
        OutputSpec {
            name: "updated",
            doc: "Replicas of the current template.",
        },
        OutputSpec {
            name: "complete",
            doc: "Whether the rollout is done (as `kubectl rollout status` decides).",
        },
        OutputSpec {
            name: "message",
            doc: "What `kubectl rollout status` would say.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "restart and undo",
    default_expect: "no error answer",
};

impl ActionImpl for Rollout {
    type Args = RolloutArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&RolloutArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        let deployments = |verbs| KubeAccess::new(KubeResource::of::<Deployment>(), verbs, ns);
        // History and undo read the deployment's ReplicaSets (its revisions).
        let replicasets = KubeAccess::new(KubeResource::of::<ReplicaSet>(), &["list"], ns);
        match a.map(|a| a.action) {
            Some(RolloutAction::Status) => vec![deployments(&["get"])],
            Some(RolloutAction::History) => vec![deployments(&["get"]), replicasets],
            Some(RolloutAction::Restart) => vec![deployments(&["get", "patch"])],
            Some(RolloutAction::Undo) | None => vec![deployments(&["get", "patch"]), replicasets],
        }
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn mutates(&self, a: &RolloutArgs) -> bool {
        matches!(a.action, RolloutAction::Restart | RolloutAction::Undo)
    }

    fn describe(&self, a: &RolloutArgs, env: &EnvConfig) -> String {
        format!(
            "rollout {} deployment/{} in {}",
            a.action.as_str(),
            a.deployment,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: RolloutArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let api: kube::Api<Deployment> = kube::Api::namespaced(kube.client.clone(), &ns);
            let name = a.deployment.as_str();
            let what = format!("deployment/{name} in {ns}");
            let err = |doing: &str| {
                let what = what.clone();
                let doing = doing.to_string();
                move |e| crate::targets::kube::error(&format!("{doing} {what}"), e)
            };
            let started = Instant::now();
            let pp = PatchParams {
                dry_run: cx.server_dry_run(),
                ..PatchParams::default()
            };
            match a.action {
                RolloutAction::Status | RolloutAction::History => {}
                RolloutAction::Restart => {
                    // What `kubectl rollout restart` writes: a template annotation with the time.
                    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                        RESTARTED_AT: now
                    }}}}});
                    api.patch(name, &pp, &Patch::Strategic(patch))
                        .await
                        .map_err(err("restart"))?;
                }
                RolloutAction::Undo => {
                    let history = history(&kube.client, &api, name, &ns).await?;
                    let current = revision_of(&api.get(name).await.map_err(err("read"))?);
                    let target = match a.to_revision {
                        Some(r) => history.iter().find(|h| h.revision == r.0),
                        None => history
                            .iter()
                            .filter(|h| h.revision < current)
                            .max_by_key(|h| h.revision),
                    };
                    let Some(target) = target else {
                        return Err(ActionError::Failed(format!(
                            "kubernetes: undo {what}: no revision {} in its history",
                            a.to_revision
                                .map_or("before the current one".to_string(), |r| r.0.to_string())
                        )));
                    };
                    // What `kubectl rollout undo` does: the deployment's template becomes the
                    // old ReplicaSet's (without the label the controller adds).
                    let mut template = target.template.clone();
                    if let Some(labels) = template
                        .pointer_mut("/metadata/labels")
                        .and_then(Value::as_object_mut)
                    {
                        labels.remove("pod-template-hash");
                    }
                    let patch =
                        json!([{"op": "replace", "path": "/spec/template", "value": template}]);
                    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                        ActionError::Failed(format!("kubernetes: undo {what}: {e}"))
                    })?;
                    api.patch(name, &pp, &Patch::<()>::Json(patch))
                        .await
                        .map_err(err("undo"))?;
                }
            }
            let waiting = a.wait
                && !cx.server_dry_run()
                && matches!(a.action, RolloutAction::Restart | RolloutAction::Undo);
            let deployment = loop {
                let d = api.get(name).await.map_err(err("read"))?;
                if !waiting || status(&d).0 {
                    break d;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            };
            let (complete, message) = status(&deployment);
            let st = deployment.status.clone().unwrap_or_default();
            let mut out = Outputs::new();
            out.insert("revision".into(), json!(revision_of(&deployment)));
            out.insert("complete".into(), json!(complete));
            out.insert("message".into(), json!(message));
            out.insert("ready".into(), json!(st.ready_replicas.unwrap_or(0)));
            out.insert("updated".into(), json!(st.updated_replicas.unwrap_or(0)));
            out.insert(
                "desired".into(),
                json!(deployment.spec.replicas.unwrap_or(1)),
            );
            if a.action == RolloutAction::History {
                let h = history(&kube.client, &api, name, &ns).await?;
                let now = chrono::Utc::now().timestamp();
                let age = |r: &Revision| r.created.map(|c| (now - c.as_second()).max(0));
                let current = revision_of(&deployment);
                out.insert(
                    "revision_age_s".into(),
                    json!(h.iter().find(|r| r.revision == current).and_then(age)),
                );
                out.insert(
                    "history".into(),
                    Value::Array(
                        h.iter()
                            .map(|r| {
                                json!({
                                    "revision": r.revision,
                                    "change_cause": r.change_cause,
                                    "replicaset": r.replicaset,
                                    "created": r.created.map(|c| c.to_string()),
                                    "age_s": age(r),
                                })
                            })
                            .collect(),
                    ),
                );
            }
            out.insert("dry_run".into(), json!(cx.server_dry_run()));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}

/// The template annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision_of<K: kube::Resource>(o: &K) -> i64 {
    o.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Whether the rollout is done, and what `kubectl rollout status` would say.
fn status(d: &Deployment) -> (bool, String) {
    let generation = d.metadata.generation.unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    let desired = d.spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return (
            false,
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    if updated < desired {
        return (
            false,
            format!(
                "waiting for rollout to finish: {updated} out of {desired} new replicas have been updated"
            ),
        );
    }
    if total > updated {
        return (
            false,
            format!(
                "waiting for rollout to finish: {} old replicas are pending termination",
                total - updated
            ),
        );
    }
    if available < updated {
        return (
            false,
            format!(
                "waiting for rollout to finish: {available} of {updated} updated replicas are available"
            ),
        );
    }
    (true, "successfully rolled out".into())
}

struct Revision {
    revision: i64,
    change_cause: Option<String>,
    replicaset: String,
    template: Value,
    /// When its ReplicaSet was created.
    created: Option<k8s_openapi::jiff::Timestamp>,
}

/// The deployment's ReplicaSets by revision, oldest first (`kubectl rollout history`).
async fn history(
    client: &kube::Client,
    api: &kube::Api<Deployment>,
    name: &str,
    ns: &str,
) -> Result<Vec<Revision>, ActionError> {
    let d = api
        .get(name)
        .await
        .map_err(|e| crate::targets::kube::error(&format!("read deployment/{name} in {ns}"), e))?;
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let rs_api: kube::Api<ReplicaSet> = kube::Api::namespaced(client.clone(), ns);
    let list = rs_api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|e| crate::targets::kube::error(&format!("list replicasets in {ns}"), e))?;
    let mut out: Vec<Revision> = list
        .items
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .map(|rs| Revision {
            revision: revision_of(rs),
            change_cause: rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/change-cause").cloned()),
            replicaset: rs.metadata.name.clone().unwrap_or_default(),
            template: serde_json::to_value(&rs.spec.template).unwrap_or(Value::Null),
            created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    out.sort_by_key(|r| r.revision);
    Ok(out)
}
