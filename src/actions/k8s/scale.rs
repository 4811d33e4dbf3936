//! `k8s.scale`: set, add to, take from or multiply a deployment's (or statefulset's)
//! replicas, within `min`/`max` guards.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgKind, ArgType, ArgsSchema, Exclusive, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Scale;

/// `replicas`: `N`, `"+N"`, `"-N"` or `"xN"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Replicas {
    #[default]
    Unset,
    To(u32),
    Add(u32),
    Remove(u32),
    Times(u32),
}

impl Replicas {
    pub fn parse(s: &str) -> Option<Replicas> {
        let s = s.trim();
        let (make, digits): (fn(u32) -> Replicas, &str) = match s.as_bytes().first()? {
            b'+' => (Replicas::Add, &s[1..]),
            b'-' => (Replicas::Remove, &s[1..]),
            b'x' => (Replicas::Times, &s[1..]),
            _ => (Replicas::To, s),
        };
        digits.parse().ok().map(make)
    }

    /// The count it asks for, from the current one (`None`: below zero or overflowing).
    pub fn apply(self, current: u32) -> Option<u32> {
        match self {
            Replicas::Unset => Some(current),
            Replicas::To(n) => Some(n),
            Replicas::Add(n) => current.checked_add(n),
            Replicas::Remove(n) => current.checked_sub(n),
            Replicas::Times(n) => current.checked_mul(n),
        }
    }

    fn text(self) -> String {
        match self {
            Replicas::Unset => "?".into(),
            Replicas::To(n) => n.to_string(),
            Replicas::Add(n) => format!("+{n}"),
            Replicas::Remove(n) => format!("-{n}"),
            Replicas::Times(n) => format!("x{n}"),
        }
    }
}

impl ArgKind for Replicas {
    const TY: ArgType = ArgType::IntOrStr;
}

impl<'de> serde::Deserialize<'de> for Replicas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Replicas, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Replicas::To),
            Value::String(s) => Replicas::parse(s),
            _ => None,
        };
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`replicas` must be N, \"+N\", \"-N\" or \"xN\", found {v}"
            ))
        })
    }
}

crate::action_args! {
    /// Arguments of `k8s.scale`.
    pub struct ScaleArgs {
        /// Deployment name.
        deployment: Option<String>,
        /// StatefulSet name (instead of `deployment`).
        statefulset: Option<String>,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// `N`, `"+N"` (add), `"-N"` (remove) or `"xN"` (multiply).
        replicas: Replicas = required,
        /// Never scale above this: beyond it the step fails and nothing changes.
        max: Option<Int>,
        /// Never scale below this: beyond it the step fails and nothing changes.
        min: Option<Int>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.scale",
    summary: "Scale a deployment or statefulset.",
    args: <ScaleArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "from",
            doc: "Replicas before.",
        },
        OutputSpec {
            name: "to",
            doc: "Replicas after.",
        },
        OutputSpec {
            name: "refused",
            doc: "Why a guard (`max`, `min`) or a count below zero stopped the change (null when it went through); the step then fails.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["deployment", "statefulset"],
        required: true,
    }],
    mutating: "yes",
    default_expect: "no error answer",
};

impl ActionImpl for Scale {
    type Args = ScaleArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&ScaleArgs>) -> Vec<KubeAccess> {
        // Reads and writes the scale subresource only, never the whole object.
        const VERBS: &[&str] = &["get", "patch"];
        let ns = a.and_then(|a| a.namespace.as_deref());
        let deployment = KubeAccess::new(
            KubeResource::sub::<Deployment>("deployments/scale"),
            VERBS,
            ns,
        );
        let statefulset = KubeAccess::new(
            KubeResource::sub::<StatefulSet>("statefulsets/scale"),
            VERBS,
            ns,
        );
        match a {
            Some(a) if a.deployment.is_some() => vec![deployment],
            Some(a) if a.statefulset.is_some() => vec![statefulset],
            _ => vec![deployment, statefulset],
        }
    }

    fn previews_on_server(&self) -> bool {
        true
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        let Some(arg) = args.get("replicas") else {
            return;
        };
        if let Some(Value::String(s)) = arg.value.literal() {
            if Replicas::parse(&s).is_none() {
                cx.error(
                    crate::rules::Rule::InvalidArgument,
                    format!("`replicas` must be N, \"+N\", \"-N\" or \"xN\", found `{s}`"),
                    arg.value.span(),
                    "invalid replicas",
                );
            }
        }
    }

    fn describe(&self, a: &ScaleArgs, env: &EnvConfig) -> String {
        let what = match (&a.deployment, &a.statefulset) {
            (Some(d), _) => format!("deployment/{d}"),
            (None, Some(s)) => format!("statefulset/{s}"),
            (None, None) => "?".into(),
        };
        format!(
            "scale {what} in {} to {}",
            namespace(a.namespace.as_deref(), env),
            a.replicas.text()
        )
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        outputs
            .get("refused")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: ScaleArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let started = Instant::now();
            let scale = match (&a.deployment, &a.statefulset) {
                (Some(name), _) => {
                    let api: kube::Api<Deployment> =
                        kube::Api::namespaced(kube.client.clone(), &ns);
                    scale(&api, name, &ns, "deployment", &a, cx.server_dry_run()).await?
                }
                (None, Some(name)) => {
                    let api: kube::Api<StatefulSet> =
                        kube::Api::namespaced(kube.client.clone(), &ns);
                    scale(&api, name, &ns, "statefulset", &a, cx.server_dry_run()).await?
                }
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "k8s.scale: needs `deployment` or `statefulset`".into(),
                    ));
                }
            };
            let mut out = scale;
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}

/// Reads the scale subresource, checks the guards, and writes the new count (nothing is
/// written when a guard refuses: the step then fails, saying which).
async fn scale<K>(
    api: &kube::Api<K>,
    name: &str,
    ns: &str,
    what: &str,
    a: &ScaleArgs,
    dry_run: bool,
) -> Result<Outputs, ActionError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let current = api.get_scale(name).await.map_err(|e| {
        crate::targets::kube::error(&format!("read the scale of {what}/{name} in {ns}"), e)
    })?;
    let from = current
        .spec
        .and_then(|s| s.replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(0);
    let mut out = Outputs::new();
    out.insert("from".into(), json!(from));
    let Some(to) = a.replicas.apply(from) else {
        out.insert("to".into(), Value::Null);
        out.insert(
            "refused".into(),
            json!(format!("{} from {from} is below zero", a.replicas.text())),
        );
        return Ok(out);
    };
    out.insert("to".into(), json!(to));
    let to_i = i64::from(to);
    let refused = match (a.max, a.min) {
        (Some(max), _) if to_i > max.0 => Some(format!(
            "{what}/{name}: {} from {from} gives {to}, above max {}; nothing changed",
            a.replicas.text(),
            max.0
        )),
        (_, Some(min)) if to_i < min.0 => Some(format!(
            "{what}/{name}: {} from {from} gives {to}, below min {}; nothing changed",
            a.replicas.text(),
            min.0
        )),
        _ => None,
    };
    if let Some(why) = refused {
        out.insert("refused".into(), json!(why));
        return Ok(out);
    }
    let pp = kube::api::PatchParams {
        dry_run,
        ..kube::api::PatchParams::default()
    };
    api.patch_scale(
        name,
        &pp,
        &kube::api::Patch::Merge(json!({"spec": {"replicas": to}})),
    )
    .await
    .map_err(|e| crate::targets::kube::error(&format!("scale {what}/{name} in {ns}"), e))?;
    out.insert("dry_run".into(), json!(dry_run));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_forms() {
        assert_eq!(Replicas::parse("3"), Some(Replicas::To(3)));
        assert_eq!(Replicas::parse("+2"), Some(Replicas::Add(2)));
        assert_eq!(Replicas::parse("-1"), Some(Replicas::Remove(1)));
        assert_eq!(Replicas::parse("x10"), Some(Replicas::Times(10)));
        assert_eq!(Replicas::parse("+"), None);
        assert_eq!(Replicas::parse("2x"), None);
        assert_eq!(Replicas::Add(2).apply(3), Some(5));
        assert_eq!(Replicas::Times(10).apply(3), Some(30));
        assert_eq!(Replicas::Remove(5).apply(3), None);
    }
}
