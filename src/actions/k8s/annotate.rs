//! `k8s.annotate`: set or remove annotations of an object.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Annotate;

crate::action_args! {
    /// Arguments of `k8s.annotate`.
    pub struct AnnotateArgs {
        /// Kind of the object.
        kind: String = required,
        /// Object name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Annotations to set (a null value removes).
        annotations: Map<String, Value> = required,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.annotate",
    summary: "Set or remove annotations of an object.",
    args: <AnnotateArgs as ArgsSchema>::ARGS,
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

impl ActionImpl for Annotate {
    type Args = AnnotateArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&AnnotateArgs>) -> Vec<KubeAccess> {
        // A merge patch of the metadata: no read first.
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

    fn mutates(&self, _args: &AnnotateArgs) -> bool {
        true
    }

    fn describe(&self, a: &AnnotateArgs, env: &EnvConfig) -> String {
        format!(
            "annotate {} {} in {}",
            a.kind,
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: AnnotateArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let (api, ar, ns) = kube.api_for(&a.kind, a.namespace.as_deref()).await?;
            let pp = kube::api::PatchParams {
                dry_run: cx.server_dry_run(),
                ..kube::api::PatchParams::default()
            };
            // A merge patch: these annotations set, a null removes one, the others stay.
            let patch = json!({"metadata": {"annotations": a.annotations}});
            let obj = api
                .patch(&a.name, &pp, &kube::api::Patch::Merge(patch))
                .await
                .map_err(|e| {
                    crate::targets::kube::error(
                        &format!("annotate {} {} in {ns}", ar.kind, a.name),
                        e,
                    )
                })?;
            let mut out = Outputs::new();
            out.insert("object".into(), super::object_output(&ar.kind, &obj));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
