//! `k8s.patch`: change an object with a strategic-merge, merge or JSON patch (what
//! `kubectl patch` and `kubectl set env` do; pausing a KEDA ScaledObject is one).

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct PatchAction;

crate::arg_enum! {
    /// How `patch` is read.
    pub enum PatchType {
        #[default]
        Strategic = "strategic",
        Merge = "merge",
        Json = "json",
    }
}

crate::action_args! {
    /// Arguments of `k8s.patch`.
    pub struct PatchArgs {
        /// Kind of the object (any kind the server serves).
        kind: String = required,
        /// Object name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// strategic (default, as kubectl), merge (RFC 7386) or json (RFC 6902, a list of operations).
        r#type: PatchType,
        /// The patch.
        patch: Value = required,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.patch",
    summary: "Patch an object (strategic merge, merge or JSON patch).",
    args: <PatchArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "object",
            doc: "The object after the change.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "yes",
    default_expect: "no error answer",
};

impl ActionImpl for PatchAction {
    type Args = PatchArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&PatchArgs>) -> Vec<KubeAccess> {
        match a {
            Some(a) => vec![KubeAccess::new(
                KubeResource::named(&a.kind),
                &["patch"],
                a.namespace.as_deref(),
            )],
            None => vec![KubeAccess::new(
                KubeResource::Unknown("the kind named by `kind`".into()),
                &["patch"],
                None,
            )],
        }
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn describe(&self, a: &PatchArgs, env: &EnvConfig) -> String {
        format!(
            "{} patch {} {} in {}",
            a.r#type.as_str(),
            a.kind,
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: PatchArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let (api, ar, ns) = kube.api_for(&a.kind, a.namespace.as_deref()).await?;
            let pp = kube::api::PatchParams {
                dry_run: cx.server_dry_run(),
                ..kube::api::PatchParams::default()
            };
            let what = format!("patch {} {} in {ns}", ar.kind, a.name);
            let obj = match a.r#type {
                PatchType::Strategic => {
                    api.patch(&a.name, &pp, &kube::api::Patch::Strategic(&a.patch))
                        .await
                }
                PatchType::Merge => {
                    api.patch(&a.name, &pp, &kube::api::Patch::Merge(&a.patch))
                        .await
                }
                PatchType::Json => {
                    let ops: json_patch::Patch =
                        serde_json::from_value(a.patch.clone()).map_err(|e| {
                            ActionError::InvalidArgs(format!(
                                "k8s.patch: a JSON patch is a list of operations ({e})"
                            ))
                        })?;
                    api.patch(&a.name, &pp, &kube::api::Patch::<()>::Json(ops))
                        .await
                }
            }
            .map_err(|e| crate::targets::kube::error(&what, e))?;
            let mut out = Outputs::new();
            out.insert("object".into(), super::object_output(&ar.kind, &obj));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
