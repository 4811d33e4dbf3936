//! `k8s.delete`: delete an object by name, or the objects of a selector — at most `max`
//! of them (more matching is a failure and nothing is deleted).

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Exclusive, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Delete;

crate::action_args! {
    /// Arguments of `k8s.delete`.
    pub struct DeleteArgs {
        /// Kind of the objects.
        kind: String = required,
        /// Object name.
        name: Option<String>,
        /// Label selector (needs `max`).
        selector: Option<String>,
        /// With `selector`: delete nothing when more than this many match.
        max: Option<Int>,
        /// Namespace (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.delete",
    summary: "Delete an object, or at most `max` objects of a selector.",
    args: <DeleteArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "deleted",
            doc: "Names of the objects deleted.",
        },
        OutputSpec {
            name: "refused",
            doc: "Why nothing was deleted (more matched than `max`); the step then fails.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["name", "selector"],
        required: true,
    }],
    mutating: "yes",
    default_expect: "no error answer",
};

impl ActionImpl for Delete {
    type Args = DeleteArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&DeleteArgs>) -> Vec<KubeAccess> {
        match a {
            // By name: the delete only.
            Some(a) if a.name.is_some() => vec![KubeAccess::new(
                KubeResource::named(&a.kind),
                &["delete"],
                a.namespace.as_deref(),
            )],
            // A selector lists first (to count against `max`), then deletes one by one.
            Some(a) => vec![KubeAccess::new(
                KubeResource::named(&a.kind),
                &["delete", "list"],
                a.namespace.as_deref(),
            )],
            None => vec![KubeAccess::new(
                KubeResource::Unknown("the kind named by `kind`".into()),
                &["delete", "list"],
                None,
            )],
        }
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if args.get("selector").is_some() && args.get("max").is_none() {
            cx.error(
                crate::rules::Rule::MissingArgument,
                "`k8s.delete` with a `selector` needs `max`: how many objects it may delete at most",
                args.span,
                "no max",
            );
        }
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        outputs
            .get("refused")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn describe(&self, a: &DeleteArgs, env: &EnvConfig) -> String {
        let which = match (&a.name, &a.selector) {
            (Some(n), _) => n.clone(),
            (None, Some(s)) => format!(
                "{s} (at most {})",
                a.max.map_or("?".to_string(), |m| m.0.to_string())
            ),
            _ => "?".into(),
        };
        format!(
            "delete {} {which} in {}",
            a.kind,
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: DeleteArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let (api, ar, ns) = kube.api_for(&a.kind, a.namespace.as_deref()).await?;
            let dp = kube::api::DeleteParams {
                dry_run: cx.server_dry_run(),
                ..kube::api::DeleteParams::default()
            };
            let mut out = Outputs::new();
            let names: Vec<String> = match (&a.name, &a.selector) {
                (Some(name), _) => vec![name.clone()],
                (None, Some(sel)) => {
                    let lp = kube::api::ListParams::default().labels(sel);
                    let list = crate::targets::kube::read(
                        &format!("list {} {sel} in {ns}", ar.plural),
                        || api.list(&lp),
                    )
                    .await?;
                    let names: Vec<String> = list
                        .items
                        .into_iter()
                        .filter_map(|o| o.metadata.name)
                        .collect();
                    let max = a.max.map_or(0, |m| m.0);
                    if i64::try_from(names.len()).unwrap_or(i64::MAX) > max {
                        out.insert("deleted".into(), json!([]));
                        out.insert(
                            "refused".into(),
                            json!(format!(
                                "{} {} match {sel}, more than max {max}; nothing deleted",
                                names.len(),
                                ar.plural
                            )),
                        );
                        return Ok(out);
                    }
                    names
                }
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "k8s.delete: needs `name` or `selector`".into(),
                    ));
                }
            };
            for name in &names {
                api.delete(name, &dp).await.map_err(|e| {
                    crate::targets::kube::error(&format!("delete {} {name} in {ns}", ar.kind), e)
                })?;
            }
            out.insert("deleted".into(), json!(names));
            out.insert("refused".into(), Value::Null);
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
