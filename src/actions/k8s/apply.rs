//! `k8s.apply`: server-side apply of a manifest file or an inline object, field manager
//! `opsctl` (what `kubectl apply --server-side --field-manager=opsctl` does).

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::LATENCY;
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Exclusive, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Apply;

/// The field manager opsctl applies as.
const FIELD_MANAGER: &str = "opsctl";

crate::action_args! {
    /// Arguments of `k8s.apply`.
    pub struct ApplyArgs {
        /// A manifest file (YAML, one or more documents), relative to the working directory.
        manifest: Option<String>,
        /// An object written inline (`apiVersion`, `kind`, `metadata`, ...).
        object: Option<Map<String, Value>>,
        /// Namespace for objects that name none (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.apply",
    summary: "Server-side apply of a manifest or an inline object (field manager opsctl).",
    args: <ApplyArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "objects",
            doc: "What was applied: {kind, name, namespace, resource_version}.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["manifest", "object"],
        required: true,
    }],
    mutating: "yes",
    default_expect: "no error answer",
};

impl ActionImpl for Apply {
    type Args = ApplyArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&ApplyArgs>) -> Vec<KubeAccess> {
        // Server-side apply is a PATCH; the API server authorizes it as `create` as well
        // when the object does not exist yet.
        const VERBS: &[&str] = &["create", "patch"];
        let Some(o) = a.and_then(|a| a.object.as_ref()) else {
            let what = match a {
                Some(a) if a.manifest.is_some() => "the kinds of the manifest file",
                _ => "the kinds of the manifest",
            };
            return vec![KubeAccess::new(
                KubeResource::Unknown(what.into()),
                VERBS,
                None,
            )];
        };
        let field = |p: &str| {
            Value::Object(o.clone())
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let resource = match (field("/apiVersion"), field("/kind")) {
            (Some(v), Some(k)) => KubeResource::of_manifest(&v, &k),
            _ => KubeResource::Unknown("an object without apiVersion and kind".into()),
        };
        let ns = field("/metadata/namespace").or_else(|| a.and_then(|a| a.namespace.clone()));
        vec![KubeAccess::new(resource, VERBS, ns.as_deref())]
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn describe(&self, a: &ApplyArgs, _env: &EnvConfig) -> String {
        match (&a.manifest, &a.object) {
            (Some(m), _) => format!("apply {m} (server-side)"),
            (None, Some(o)) => format!(
                "apply {} {} (server-side)",
                o.get("kind").and_then(Value::as_str).unwrap_or("?"),
                o.get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ),
            _ => "apply ?".into(),
        }
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: ApplyArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let docs: Vec<Value> = match (&a.manifest, &a.object) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        ActionError::InvalidArgs(format!("k8s.apply: cannot read {path}: {e}"))
                    })?;
                    serde_saphyr::from_multiple::<Value>(&text)
                        .map_err(|e| {
                            ActionError::InvalidArgs(format!(
                                "k8s.apply: {path} is not YAML: {}",
                                crate::targets::messages::one_line(&e.to_string())
                            ))
                        })?
                        .into_iter()
                        .filter(|d| !d.is_null())
                        .collect()
                }
                (None, Some(o)) => vec![Value::Object(o.clone())],
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "k8s.apply: needs `manifest` or `object`".into(),
                    ));
                }
            };
            let kube = cx.clients().kube().await?;
            let default_ns = kube.namespace_or(a.namespace.as_deref());
            let started = Instant::now();
            let pp = kube::api::PatchParams {
                dry_run: cx.server_dry_run(),
                ..kube::api::PatchParams::apply(FIELD_MANAGER).force()
            };
            let mut applied = Vec::new();
            for doc in docs {
                let field = |p: &str| doc.pointer(p).and_then(Value::as_str).map(str::to_string);
                let (Some(api_version), Some(kind), Some(name)) = (
                    field("/apiVersion"),
                    field("/kind"),
                    field("/metadata/name"),
                ) else {
                    return Err(ActionError::InvalidArgs(
                        "k8s.apply: every object needs apiVersion, kind and metadata.name".into(),
                    ));
                };
                let ns = field("/metadata/namespace").unwrap_or_else(|| default_ns.clone());
                let (ar, caps) = kube.resource_of(&api_version, &kind).await?;
                let api = kube.dynamic(&ar, &caps, &ns);
                let obj = api
                    .patch(&name, &pp, &kube::api::Patch::Apply(&doc))
                    .await
                    .map_err(|e| {
                        crate::targets::kube::error(&format!("apply {kind} {name} in {ns}"), e)
                    })?;
                applied.push(json!({
                    "kind": kind,
                    "name": name,
                    "namespace": obj.metadata.namespace,
                    "resource_version": obj.metadata.resource_version,
                }));
            }
            let mut out = Outputs::new();
            out.insert("objects".into(), Value::Array(applied));
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
