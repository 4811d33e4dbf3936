//! `k8s.secret`: check a secret's keys, or merge keys into it (values never shown).

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, OutputSpec, StrMap};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Secret;

crate::arg_enum! {
    /// What `k8s.secret` does.
    pub enum SecretAction {
        #[default]
        Check = "check",
        Set = "set",
    }
}

crate::action_args! {
    /// Arguments of `k8s.secret`.
    pub struct SecretArgs {
        /// Secret name.
        name: String = required,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// check or set.
        action: SecretAction = required,
        /// Keys and values for `set` (values are secrets; other keys are kept).
        data: StrMap,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.secret",
    summary: "Check a secret's keys, or set its data (values never shown).",
    args: <SecretArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "exists",
            doc: "Whether the secret exists.",
        },
        OutputSpec {
            name: "keys",
            doc: "Its keys (never the values).",
        },
        OutputSpec {
            name: "set",
            doc: "For `set`: the keys written.",
        },
        LATENCY,
    ],
    exclusive: &[],
    mutating: "set",
    default_expect: "no error answer",
};

impl ActionImpl for Secret {
    type Args = SecretArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&SecretArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        let verbs: &'static [&'static str] = match a.map(|a| a.action) {
            Some(SecretAction::Check) => &["get"],
            // Read first; then a merge patch of an existing secret, or a create.
            Some(SecretAction::Set) | None => &["create", "get", "patch"],
        };
        vec![KubeAccess::new(KubeResource::of::<K8sSecret>(), verbs, ns)]
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if args.literal_str("action").as_deref() == Some("set") && args.get("data").is_none() {
            cx.error(
                crate::rules::Rule::MissingArgument,
                "`k8s.secret` with `action: set` needs `data`",
                args.span,
                "missing data",
            );
        }
    }

    fn mutates(&self, a: &SecretArgs) -> bool {
        a.action == SecretAction::Set
    }

    fn describe(&self, a: &SecretArgs, env: &EnvConfig) -> String {
        format!(
            "{} secret {} in {}",
            a.action.as_str(),
            a.name,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: SecretArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            // The values are secrets wherever they came from.
            for (_, v) in &a.data.0 {
                cx.redactor().add(v);
            }
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let api: kube::Api<K8sSecret> = kube::Api::namespaced(kube.client.clone(), &ns);
            let what = format!("secret/{} in {ns}", a.name);
            let started = Instant::now();
            let existing =
                crate::targets::kube::read(&format!("read {what}"), || api.get_opt(&a.name))
                    .await?;
            let after = match a.action {
                SecretAction::Check => existing,
                SecretAction::Set => {
                    let pp = kube::api::PatchParams {
                        dry_run: cx.server_dry_run(),
                        ..kube::api::PatchParams::default()
                    };
                    let data: serde_json::Map<String, Value> = a
                        .data
                        .0
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(BASE64.encode(v))))
                        .collect();
                    let written = match existing {
                        // A merge patch sets these keys and keeps every other one.
                        Some(_) => {
                            api.patch(
                                &a.name,
                                &pp,
                                &kube::api::Patch::Merge(json!({"data": data})),
                            )
                            .await
                        }
                        None => {
                            let secret: K8sSecret = serde_json::from_value(json!({
                                "apiVersion": "v1",
                                "kind": "Secret",
                                "metadata": {"name": a.name, "namespace": ns},
                                "type": "Opaque",
                                "data": data,
                            }))
                            .map_err(|e| ActionError::Failed(format!("kubernetes: {what}: {e}")))?;
                            let post = kube::api::PostParams {
                                dry_run: cx.server_dry_run(),
                                ..kube::api::PostParams::default()
                            };
                            api.create(&post, &secret).await
                        }
                    };
                    Some(
                        written.map_err(|e| {
                            crate::targets::kube::error(&format!("write {what}"), e)
                        })?,
                    )
                }
            };
            let mut keys: Vec<String> = after
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            let mut out = Outputs::new();
            out.insert("exists".into(), json!(after.is_some()));
            out.insert("keys".into(), json!(keys));
            if a.action == SecretAction::Set {
                let mut set: Vec<&String> = a.data.0.iter().map(|(k, _)| k).collect();
                set.sort();
                out.insert("set".into(), json!(set));
            }
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
