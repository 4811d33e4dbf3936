//! `k8s.*`: Kubernetes actions, one file each, through the run's one cluster client
//! (`targets::kube`). Mutations take the server's own dry run in `opsctl plan`. What the
//! actions share lives here.

mod annotate;
mod apply;
mod delete;
mod describe;
mod events;
mod exec;
mod get;
mod logs;
mod node;
mod patch;
mod pods;
mod rollout;
mod scale;
mod secret;
mod top;

pub use annotate::Annotate;
pub use apply::Apply;
pub use delete::Delete;
pub use describe::Describe;
pub use events::Events;
pub use exec::Exec;
pub use get::Get;
pub use logs::Logs;
pub use node::{Cordon, Drain};
pub use patch::PatchAction;
pub use pods::Pods;
pub use rollout::Rollout;
pub use scale::Scale;
pub use secret::Secret;
pub use top::Top;

use super::spec::OutputSpec;
use crate::config::EnvConfig;
use serde_json::Value;

/// `latency_ms`, which every Kubernetes action outputs.
pub(crate) const LATENCY: OutputSpec = OutputSpec {
    name: "latency_ms",
    doc: "Time to answer.",
};

/// The namespace a step acts in: its own, else the environment's, else `default`.
pub(crate) fn namespace(ns: Option<&str>, env: &EnvConfig) -> String {
    ns.map(str::to_string)
        .or_else(|| env.kubernetes().and_then(|k| k.namespace.clone()))
        .unwrap_or_else(|| "default".into())
}

/// An object as an output: a Secret's values (`data`, `stringData`, and the copy of the
/// whole object `kubectl apply` leaves in an annotation) are masked, keys kept. What a
/// step reads never carries a secret's value into the live view, the record or a page.
pub(crate) fn object_output<T: serde::Serialize>(kind: &str, obj: &T) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    // Literal env values of a pod template: a credential by its name is masked, and so is
    // the password of any URL (`DATABASE_URL=postgres://app:pw@db`); toggles stay readable.
    for path in [
        "/spec/containers",
        "/spec/initContainers",
        "/spec/template/spec/containers",
        "/spec/template/spec/initContainers",
        "/spec/jobTemplate/spec/template/spec/containers",
    ] {
        let Some(Value::Array(containers)) = v.pointer_mut(path) else {
            continue;
        };
        for c in containers {
            let Some(Value::Array(env)) = c.get_mut("env") else {
                continue;
            };
            for e in env {
                let credential = e
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(names_a_credential);
                if let Some(Value::String(value)) = e.get_mut("value") {
                    *value = if credential {
                        "***".into()
                    } else {
                        crate::redact::mask_url_passwords(value)
                    };
                }
            }
        }
    }
    if kind == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(m)) = v.get_mut(field) {
                m.values_mut()
                    .for_each(|x| *x = Value::String("***".into()));
            }
        }
        if let Some(Value::Object(a)) = v.pointer_mut("/metadata/annotations") {
            if let Some(x) = a.get_mut("kubectl.kubernetes.io/last-applied-configuration") {
                *x = Value::String("***".into());
            }
        }
    }
    v
}

/// An environment variable whose name says it holds a credential.
fn names_a_credential(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "MASTER_KEY",
    ]
    .iter()
    .any(|w| n.contains(w))
}

#[cfg(test)]
mod object_output_tests {
    use serde_json::json;

    #[test]
    fn a_secrets_values_are_masked_and_its_keys_kept() {
        let s = json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"k\":\"c2VjcmV0\"}}", "x": "y"}},
            "data": {"jwt-secret": "c2VjcmV0", "database-url": "cG9zdGdyZXM="}, "stringData": {"a": "b"}});
        let out = super::object_output("Secret", &s);
        assert_eq!(
            out["data"],
            json!({"jwt-secret": "***", "database-url": "***"})
        );
        assert_eq!(out["stringData"], json!({"a": "***"}));
        assert_eq!(out["metadata"]["annotations"]["x"], "y");
        assert!(!out.to_string().contains("c2VjcmV0"));
        let dep = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "api", "env": [
            {"name": "TIMEOUT_THRESHOLD_MS", "value": "5000"},
            {"name": "DATABASE_URL", "value": "postgres://app:hunter22@db:5432/app"},
            {"name": "TG_SECRET_KEY", "value": "s3cr3t-value"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}}});
        let out = super::object_output("Deployment", &dep).to_string();
        assert!(
            out.contains("\"5000\"") && out.contains("postgres://app:***@db:5432/app"),
            "{out}"
        );
        assert!(
            !out.contains("hunter22") && !out.contains("s3cr3t-value"),
            "{out}"
        );
        let cm = json!({"kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(super::object_output("ConfigMap", &cm), cm);
    }
}
