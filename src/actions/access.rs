//! What an action asks of the Kubernetes API, as RBAC sees it: which resource (API group,
//! plural, subresource), with which verbs, where. Each Kubernetes action says it through
//! [`ActionImpl::kube_access`](super::ActionImpl::kube_access), next to the calls it
//! makes; `opsctl rbac` and the actions reference read it from there.
//!
//! Not listed anywhere: API discovery (`/api`, `/apis/...`), which the actions that take a
//! kind as an argument ask once per run. Those are non-resource URLs, which a Role cannot
//! grant and which the built-in `system:discovery` ClusterRole grants every authenticated
//! user (a service account included).

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};

/// One kind of API request an action makes: on what, with which verbs, in which namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeAccess {
    pub resource: KubeResource,
    /// RBAC verbs (`get`, `list`, `watch`, `create`, `patch`, `update`, `delete`).
    pub verbs: &'static [&'static str],
    /// The namespace the step names (`namespace:` or an applied object's own), as written
    /// (a template stays text); `None`: the config's namespace.
    pub namespace: Option<String>,
    /// The request spans every namespace (a drain lists and evicts the pods of a node
    /// wherever they run): only a ClusterRole can grant it.
    pub all_namespaces: bool,
}

/// The resource of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeResource {
    /// Known before the run: API group (`""` is the core group), resource (the plural,
    /// or `plural/subresource` such as `pods/log`), and whether it lives in a namespace.
    Known {
        group: &'static str,
        resource: &'static str,
        namespaced: bool,
    },
    /// Not known before the run: a computed kind, a kind read from a file at run time, or
    /// a kind opsctl learns only from the server (a custom resource). Says which.
    Unknown(String),
}

/// Whether a k8s-openapi scope is a namespace's.
pub trait Scoped {
    const NAMESPACED: bool;
}

impl Scoped for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scoped for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// A built-in kind: what a `kind` argument may name.
#[derive(Clone, Copy, Debug)]
struct BuiltinKind {
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    namespaced: bool,
}

macro_rules! builtin_kinds {
    ($($t:ty),* $(,)?) => {
        &[$(BuiltinKind {
            kind: <$t as k8s_openapi::Resource>::KIND,
            group: <$t as k8s_openapi::Resource>::GROUP,
            plural: <$t as k8s_openapi::Resource>::URL_PATH_SEGMENT,
            namespaced: <<$t as k8s_openapi::Resource>::Scope as Scoped>::NAMESPACED,
        }),*]
    };
}

/// The kinds every cluster serves, from k8s-openapi's own description of them. The core
/// group comes first, as in the server's discovery, so `Event` is the core one (as
/// [`KubeClient::resource`](crate::targets::kube::KubeClient::resource) finds it).
static BUILTIN: &[BuiltinKind] = builtin_kinds![
    Pod,
    Service,
    ConfigMap,
    Secret,
    Event,
    Namespace,
    Node,
    PersistentVolumeClaim,
    PersistentVolume,
    ServiceAccount,
    Endpoints,
    ResourceQuota,
    LimitRange,
    ReplicationController,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ControllerRevision,
    Job,
    CronJob,
    Ingress,
    NetworkPolicy,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    Lease,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    StorageClass,
    EndpointSlice,
];

/// kubectl's short names that opsctl accepts for a `kind` (the server's discovery does
/// not list them).
pub fn short_name(plural: &str) -> Option<&'static str> {
    Some(match plural {
        "deployments" => "deploy",
        "services" => "svc",
        "configmaps" => "cm",
        "namespaces" => "ns",
        "nodes" => "no",
        "pods" => "po",
        "replicasets" => "rs",
        "statefulsets" => "sts",
        "daemonsets" => "ds",
        "persistentvolumeclaims" => "pvc",
        "events" => "ev",
        _ => return None,
    })
}

impl KubeResource {
    /// The resource of a k8s-openapi type.
    pub fn of<K>() -> KubeResource
    where
        K: k8s_openapi::Resource,
        K::Scope: Scoped,
    {
        KubeResource::Known {
            group: K::GROUP,
            resource: K::URL_PATH_SEGMENT,
            namespaced: <K::Scope as Scoped>::NAMESPACED,
        }
    }

    /// A subresource of a k8s-openapi type: `sub` is its full name (`pods/log`).
    pub fn sub<K>(sub: &'static str) -> KubeResource
    where
        K: k8s_openapi::Resource,
        K::Scope: Scoped,
    {
        KubeResource::Known {
            group: K::GROUP,
            resource: sub,
            namespaced: <K::Scope as Scoped>::NAMESPACED,
        }
    }

    /// The resource a `kind` argument names, as the run will find it (kind, plural or
    /// short name, any case), when that can be known before the run.
    pub fn named(kind: &str) -> KubeResource {
        if kind.contains("${{") {
            return KubeResource::Unknown(format!("computed kind `{kind}`"));
        }
        let wanted = kind.to_ascii_lowercase();
        BUILTIN
            .iter()
            .find(|b| {
                b.kind.to_ascii_lowercase() == wanted
                    || b.plural == wanted
                    || short_name(b.plural) == Some(wanted.as_str())
            })
            .map_or_else(
                || {
                    KubeResource::Unknown(format!(
                        "kind `{kind}` (not built in: its API group comes from the server)"
                    ))
                },
                BuiltinKind::resource,
            )
    }

    /// The resource of a manifest's `apiVersion` and `kind`.
    pub fn of_manifest(api_version: &str, kind: &str) -> KubeResource {
        if api_version.contains("${{") || kind.contains("${{") {
            return KubeResource::Unknown(format!("computed kind `{api_version}` `{kind}`"));
        }
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        BUILTIN
            .iter()
            .find(|b| b.group == group && b.kind == kind)
            .map_or_else(
                || {
                    KubeResource::Unknown(format!(
                        "kind `{kind}` of `{api_version}` (not built in: its resource comes from the server)"
                    ))
                },
                BuiltinKind::resource,
            )
    }
}

impl BuiltinKind {
    fn resource(&self) -> KubeResource {
        KubeResource::Known {
            group: self.group,
            resource: self.plural,
            namespaced: self.namespaced,
        }
    }
}

impl KubeAccess {
    /// `verbs` on `resource` in the step's namespace (`namespace`: as the step names it).
    pub fn new(
        resource: KubeResource,
        verbs: &'static [&'static str],
        namespace: Option<&str>,
    ) -> KubeAccess {
        KubeAccess {
            resource,
            verbs,
            namespace: namespace.map(str::to_string),
            all_namespaces: false,
        }
    }

    /// The same request, made in every namespace.
    pub fn in_all_namespaces(mut self) -> KubeAccess {
        self.all_namespaces = true;
        self
    }
}

/// Arguments as written, with every number, boolean or duration written as a template
/// replaced by a placeholder of its type, so they parse into the typed arguments; what
/// decides requests (kinds, names, enums) is left as written.
pub(crate) fn placeholders(
    spec: &super::ActionSpec,
    args: &serde_json::Value,
) -> serde_json::Value {
    use super::ArgType;
    use serde_json::{Value, json};
    let Value::Object(map) = args else {
        return args.clone();
    };
    let mut out = map.clone();
    for arg in spec.args {
        let templated = out
            .get(arg.name)
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("${{"));
        if !templated {
            continue;
        }
        let placeholder = match arg.ty {
            ArgType::Int | ArgType::Number | ArgType::IntOrStr => json!(0),
            ArgType::Bool => json!(false),
            ArgType::Duration => json!("1s"),
            _ => continue,
        };
        out.insert(arg.name.to_string(), placeholder);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_as_the_run_resolves_them() {
        let deployments = KubeResource::Known {
            group: "apps",
            resource: "deployments",
            namespaced: true,
        };
        for k in [
            "Deployment",
            "deployment",
            "deployments",
            "deploy",
            "DEPLOY",
        ] {
            assert_eq!(KubeResource::named(k), deployments, "{k}");
        }
        assert_eq!(
            KubeResource::named("Event"),
            KubeResource::Known {
                group: "",
                resource: "events",
                namespaced: true
            }
        );
        assert_eq!(
            KubeResource::named("no"),
            KubeResource::Known {
                group: "",
                resource: "nodes",
                namespaced: false
            }
        );
        assert!(matches!(
            KubeResource::named("Certificate"),
            KubeResource::Unknown(_)
        ));
        assert!(matches!(
            KubeResource::named("${{ params.kind }}"),
            KubeResource::Unknown(w) if w.starts_with("computed")
        ));
    }

    #[test]
    fn manifests_resolve_by_group_and_kind() {
        assert_eq!(
            KubeResource::of_manifest("networking.k8s.io/v1", "Ingress"),
            KubeResource::Known {
                group: "networking.k8s.io",
                resource: "ingresses",
                namespaced: true
            }
        );
        assert_eq!(
            KubeResource::of_manifest("v1", "ConfigMap"),
            KubeResource::Known {
                group: "",
                resource: "configmaps",
                namespaced: true
            }
        );
        // Right kind, wrong group: not the built-in one.
        assert!(matches!(
            KubeResource::of_manifest("example.com/v1", "Deployment"),
            KubeResource::Unknown(_)
        ));
    }

    #[test]
    fn subresources_keep_their_parents_group() {
        assert_eq!(
            KubeResource::sub::<Deployment>("deployments/scale"),
            KubeResource::Known {
                group: "apps",
                resource: "deployments/scale",
                namespaced: true
            }
        );
    }
}
