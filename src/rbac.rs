//! The Kubernetes RBAC rules runbooks need: every API request their steps make (each
//! action says which through [`Action::kube_access`](crate::actions::Action::kube_access)),
//! the runbooks they run included, merged by (API group, resource) into the rules of a
//! Role (`opsctl rbac`). What cannot be known before the run (a computed kind, a custom
//! resource, a computed namespace) is a warning, never a guessed rule.
//!
//! API discovery (`/api`, `/apis`) is not a rule here: a Role cannot grant non-resource
//! URLs, and the built-in `system:discovery` ClusterRole grants them to every
//! authenticated user.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::actions::{KubeAccess, KubeResource};
use crate::model::Runbook;

/// Verbs by (API group, resource): one rule each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet(BTreeMap<(String, String), BTreeSet<&'static str>>);

impl RuleSet {
    fn add(&mut self, group: &str, resource: &str, verbs: &[&'static str]) {
        self.0
            .entry((group.to_string(), resource.to_string()))
            .or_default()
            .extend(verbs.iter().copied());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rules as Kubernetes writes them (`apiGroups`, `resources`, `verbs`), sorted by
    /// group then resource, verbs sorted.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|((group, resource), verbs)| {
                    json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
                })
                .collect(),
        )
    }

    /// Every verb the rules grant.
    pub fn verbs(&self) -> BTreeSet<&'static str> {
        self.0.values().flatten().copied().collect()
    }
}

/// What the steps need, by where a Role or ClusterRole must grant it.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// In the namespace of the config's environment (or, without one, the namespace
    /// opsctl runs in: the service account's, the kubeconfig context's).
    pub rules: RuleSet,
    /// In other namespaces the steps name literally.
    pub other_namespaces: BTreeMap<String, RuleSet>,
    /// Cluster-wide: cluster-scoped kinds (nodes) and requests across namespaces.
    pub cluster_rules: RuleSet,
    /// What could not be turned into a rule, one line per request.
    pub warnings: Vec<String>,
}

/// The rules `runbooks`' steps need (give every runbook a run can reach, each once: the
/// runbook and the runbooks it runs). `namespace` is the Role's: a step naming it is
/// the same as a step naming none. `lease_lock`: the environment has a cluster, so a run
/// that mutates takes the team lock as a Lease there.
pub fn needs<'a>(
    runbooks: impl IntoIterator<Item = &'a Runbook>,
    namespace: Option<&str>,
    lease_lock: bool,
    via: &dyn Fn(&str, &str) -> Option<crate::config::Via>,
) -> Needs {
    let mut out = Needs::default();
    let mut mutates = false;
    for rb in runbooks {
        for step in &rb.steps {
            let action = step.action.action;
            let args = step.action.args.as_written();
            mutates |= action.mutates(&args);
            let where_ = format!(
                "runbook `{}`, step `{}` ({})",
                rb.name,
                step.id,
                action.spec().name
            );
            for access in action.kube_access(&args) {
                out.add(&where_, &access, namespace);
            }
            // A target reached through the cluster: its port-forward.
            if let Some(kind) = action.target_kind() {
                let target = args
                    .get("target")
                    .and_then(|t| t.as_str())
                    .unwrap_or("default");
                if let Some(v) = via(kind, target) {
                    for access in crate::targets::forward::kube_access(&v) {
                        out.add(&format!("{where_}, via k8s"), &access, namespace);
                    }
                }
            }
        }
    }
    if mutates && lease_lock {
        out.add(
            "the team lock",
            &crate::exec::lock::kube_access(),
            namespace,
        );
    }
    out
}

impl Needs {
    fn add(&mut self, where_: &str, access: &KubeAccess, role_ns: Option<&str>) {
        let (group, resource, namespaced) = match &access.resource {
            KubeResource::Known {
                group,
                resource,
                namespaced,
            } => (*group, *resource, *namespaced),
            KubeResource::Unknown(what) => {
                self.warnings.push(format!(
                    "{where_}: {what} is not known before the run; grant its {} yourself",
                    access.verbs.join(", ")
                ));
                return;
            }
        };
        if !namespaced || access.all_namespaces {
            self.cluster_rules.add(group, resource, access.verbs);
            return;
        }
        match access.namespace.as_deref() {
            Some(ns) if ns.contains("${{") => {
                self.warnings.push(format!(
                    "{where_}: the namespace is computed (`{ns}`); its {resource} rule is \
                     in the Role, which covers only the config's namespace"
                ));
                self.rules.add(group, resource, access.verbs);
            }
            Some(ns) if Some(ns) != role_ns => self
                .other_namespaces
                .entry(ns.to_string())
                .or_default()
                .add(group, resource, access.verbs),
            _ => self.rules.add(group, resource, access.verbs),
        }
    }

    /// `{"rules": [...]}`, plus `otherNamespaces` and `clusterRules` when there are any.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("rules".into(), self.rules.to_json());
        if !self.other_namespaces.is_empty() {
            out.insert(
                "otherNamespaces".into(),
                Value::Object(
                    self.other_namespaces
                        .iter()
                        .map(|(ns, r)| (ns.clone(), r.to_json()))
                        .collect(),
                ),
            );
        }
        if !self.cluster_rules.is_empty() {
            out.insert("clusterRules".into(), self.cluster_rules.to_json());
        }
        Value::Object(out)
    }

    /// Ready-to-apply YAML: a Role `name` in `namespace` (none: the namespace `kubectl
    /// apply` uses), a Role of the same name in every other namespace the steps name,
    /// and a ClusterRole when cluster-wide access is needed.
    pub fn to_yaml(&self, name: &str, namespace: Option<&str>, header: &str) -> String {
        let mut docs = vec![role_yaml("Role", name, namespace, &self.rules)];
        for (ns, rules) in &self.other_namespaces {
            docs.push(role_yaml("Role", name, Some(ns), rules));
        }
        if !self.cluster_rules.is_empty() {
            docs.push(role_yaml("ClusterRole", name, None, &self.cluster_rules));
        }
        format!("{header}{}", docs.join("---\n"))
    }
}

/// One Role or ClusterRole, in the flow style kubectl users read (`verbs: ["get"]`).
fn role_yaml(kind: &str, name: &str, namespace: Option<&str>, rules: &RuleSet) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let mut out = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {}\n",
        q(name)
    );
    if let Some(ns) = namespace {
        out.push_str(&format!("  namespace: {}\n", q(ns)));
    }
    if rules.is_empty() {
        out.push_str("rules: []\n");
        return out;
    }
    out.push_str("rules:\n");
    for ((group, resource), verbs) in &rules.0 {
        let verbs: Vec<String> = verbs.iter().map(|v| q(v)).collect();
        out.push_str(&format!(
            "  - apiGroups: [{}]\n    resources: [{}]\n    verbs: [{}]\n",
            q(group),
            q(resource),
            verbs.join(", ")
        ));
    }
    out
}

/// The Role's name for these runbooks: `opsctl-<name>` (names joined by `-`).
pub fn role_name(runbooks: &[&str]) -> String {
    format!("opsctl-{}", runbooks.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(group: &'static str, resource: &'static str, namespaced: bool) -> KubeResource {
        KubeResource::Known {
            group,
            resource,
            namespaced,
        }
    }

    #[test]
    fn rules_merge_by_group_and_resource_and_sort() {
        let mut n = Needs::default();
        let ns = Some("prod");
        n.add(
            "a",
            &KubeAccess::new(known("apps", "deployments", true), &["patch", "get"], None),
            ns,
        );
        n.add(
            "b",
            &KubeAccess::new(known("", "pods", true), &["list"], Some("prod")),
            ns,
        );
        n.add(
            "c",
            &KubeAccess::new(known("apps", "deployments", true), &["get"], None),
            ns,
        );
        n.add(
            "d",
            &KubeAccess::new(known("", "pods/log", true), &["get"], Some("cert-manager")),
            ns,
        );
        n.add(
            "e",
            &KubeAccess::new(known("", "nodes", false), &["patch"], None),
            ns,
        );
        n.add(
            "f",
            &KubeAccess::new(
                KubeResource::Unknown("computed kind `x`".into()),
                &["get"],
                None,
            ),
            ns,
        );
        assert_eq!(
            n.to_json(),
            json!({
                "rules": [
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
                ],
                "otherNamespaces": {"cert-manager": [
                    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                ]},
                "clusterRules": [
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch"]},
                ],
            })
        );
        assert_eq!(n.warnings.len(), 1);
        assert!(n.warnings[0].starts_with("f: computed kind `x`"));
        let yaml = n.to_yaml("opsctl-x", Some("prod"), "");
        assert!(yaml.starts_with(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: \"opsctl-x\"\n  namespace: \"prod\"\nrules:\n  - apiGroups: [\"\"]\n    resources: [\"pods\"]\n    verbs: [\"list\"]\n"
        ));
        assert_eq!(yaml.matches("---\n").count(), 2);
        assert!(yaml.contains("kind: ClusterRole\n"));
    }

    #[test]
    fn every_kubernetes_action_says_what_it_calls() {
        for a in crate::actions::REGISTRY {
            let name = a.spec().name;
            let access = a.kube_access(&Value::Null);
            assert_eq!(
                !access.is_empty(),
                name.starts_with("k8s."),
                "{name}: {access:?}"
            );
        }
    }

    #[test]
    fn arguments_decide_the_verbs() {
        let pods = crate::actions::lookup("k8s.logs").expect("k8s.logs");
        let one = pods.kube_access(&json!({"pod": "api-1"}));
        assert_eq!(one.len(), 1, "a named pod: its log only");
        let get = crate::actions::lookup("k8s.get").expect("k8s.get");
        assert_eq!(
            get.kube_access(&json!({"kind": "deploy", "name": "api"}))[0].verbs,
            ["get"]
        );
        assert_eq!(
            get.kube_access(&json!({"kind": "deploy"}))[0].verbs,
            ["list"]
        );
        // A templated number does not hide which object a scale touches.
        let scale = crate::actions::lookup("k8s.scale").expect("k8s.scale");
        let access = scale.kube_access(&json!({
            "statefulset": "db", "replicas": "${{ params.n }}", "max": "${{ params.max }}"
        }));
        assert_eq!(access.len(), 1);
        assert!(matches!(
            access[0].resource,
            KubeResource::Known {
                resource: "statefulsets/scale",
                ..
            }
        ));
        // A templated enum does: everything the action could do.
        let rollout = crate::actions::lookup("k8s.rollout").expect("k8s.rollout");
        let worst = rollout.kube_access(&json!({"deployment": "api", "action": "${{ params.a }}"}));
        assert_eq!(worst.len(), 2);
        let status = rollout.kube_access(&json!({"deployment": "api", "action": "status"}));
        assert_eq!(status[0].verbs, ["get"]);
    }
}
