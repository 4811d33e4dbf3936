//! `k8s.scale`: set, add to, take from or multiply a deployment's (or statefulset's)
//! replicas, within `min`/`max` guards.

use futures::future::BoxFuture;
use serde_json::Value;

use super::{LATENCY, namespace, unavailable};
use crate::actions::spec::{ActionSpec, ArgKind, ArgType, ArgsSchema, Exclusive, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs};
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

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: ScaleArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move { Err(unavailable(SPEC.name)) })
    }
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
    }
}
