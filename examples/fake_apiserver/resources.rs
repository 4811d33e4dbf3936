//! The resource types the fake API server knows, and the discovery and OpenAPI documents built
//! from them.
//!
//! One table drives routing, discovery and fixture loading, so a resource added here is served
//! everywhere consistently.

use serde_json::{Value, json};

/// One REST resource (a plural name under a group/version).
#[derive(Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served: `status`, `scale`, `log`, `eviction`.
    pub subresources: &'static [&'static str],
}

impl Resource {
    /// `v1` or `apps/v1`: the apiVersion of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`: how Kubernetes names the resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn res(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> Resource {
    let version = match group.as_bytes() {
        b"metrics.k8s.io" => "v1beta1",
        b"keda.sh" => "v1alpha1",
        b"autoscaling" => "v2",
        _ => "v1",
    };
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        subresources,
    }
}

/// Every resource served. Core group first: kubectl prefers the first group that has a name.
pub static RESOURCES: &[Resource] = &[
    res(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        &["status"],
    ),
    res("", "nodes", "node", "Node", false, &["no"], &["status"]),
    res(
        "",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["status", "log", "eviction"],
    ),
    res("", "events", "event", "Event", true, &["ev"], &[]),
    res("", "secrets", "secret", "Secret", true, &[], &[]),
    res(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        &[],
    ),
    res(
        "",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        &["status"],
    ),
    res(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
    ),
    res(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    res(
        "apps",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    res(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    res(
        "apps",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        &["status"],
    ),
    res(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    res(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        &[],
    ),
    res("batch", "jobs", "job", "Job", true, &[], &["status"]),
    res(
        "batch",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        &["status"],
    ),
    res(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        &[],
        &[],
    ),
    res(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    res(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        &[],
    ),
    res(
        "",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        &["pv"],
        &["status"],
    ),
    res(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &["status"],
    ),
    res(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        &["status"],
    ),
    res(
        "networking.k8s.io",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    res(
        "autoscaling",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        &["status"],
    ),
    // Custom resources the seeds use: KEDA's ScaledObject, cert-manager's Certificate.
    res(
        "keda.sh",
        "scaledobjects",
        "scaledobject",
        "ScaledObject",
        true,
        &["so"],
        &["status"],
    ),
    res(
        "cert-manager.io",
        "certificates",
        "certificate",
        "Certificate",
        true,
        &["cert", "certs"],
        &["status"],
    ),
    // A read-only view of the core events (the real server shares their storage).
    res(
        "events.k8s.io",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        &[],
    ),
];

/// API groups other than core, in discovery order, with their one version. The last two
/// are not stored objects: access reviews and usage metrics are computed per request.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("policy", "v1"),
    ("coordination.k8s.io", "v1"),
    ("batch", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    ("autoscaling", "v2"),
    ("keda.sh", "v1alpha1"),
    ("cert-manager.io", "v1"),
    ("authorization.k8s.io", "v1"),
    ("metrics.k8s.io", "v1beta1"),
];

/// The served version of a non-core group.
pub fn group_version(group: &str) -> Option<&'static str> {
    GROUPS.iter().find(|(g, _)| *g == group).map(|(_, v)| *v)
}

/// The resource for a group and plural name.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource for an object's apiVersion and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .filter(|r| r.group != "events.k8s.io") // a view stores nothing itself
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource for a kind alone (owner references and event subjects carry apiVersion too,
/// but fixtures written by hand often get it slightly wrong).
pub fn by_kind_only(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/api/v1` or `/apis/GROUP/VERSION`: the APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ALL_VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if matches!(
            r.plural,
            "pods" | "services" | "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        ) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        for sub in r.subresources {
            let sub_entry = match *sub {
                "status" => json!({"name": format!("{}/status", r.plural), "singularName": "",
                    "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}),
                // kubectl's scale client reads group/version/kind of the scale subresource here.
                "scale" => json!({"name": format!("{}/scale", r.plural), "singularName": "",
                    "namespaced": r.namespaced, "group": "autoscaling", "version": "v1",
                    "kind": "Scale", "verbs": ["get", "patch", "update"]}),
                "log" => json!({"name": "pods/log", "singularName": "", "namespaced": true,
                    "kind": "Pod", "verbs": ["get"]}),
                // kubectl drain checks for exactly this entry before it evicts.
                "eviction" => json!({"name": "pods/eviction", "singularName": "",
                    "namespaced": true, "group": "policy", "version": "v1",
                    "kind": "Eviction", "verbs": ["create"]}),
                _ => continue,
            };
            resources.push(sub_entry);
        }
    }
    match (group, version) {
        ("authorization.k8s.io", "v1") => resources.push(json!({
            "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
            "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
        })),
        ("metrics.k8s.io", "v1beta1") => {
            resources.push(
                json!({"name": "pods", "singularName": "", "namespaced": true,
                "kind": "PodMetrics", "verbs": ["get", "list"]}),
            );
            resources.push(
                json!({"name": "nodes", "singularName": "", "namespaced": false,
                "kind": "NodeMetrics", "verbs": ["get", "list"]}),
            );
        }
        _ => {}
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `/api`: the legacy APIVersions document.
pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

/// `/apis`: the legacy APIGroupList document.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().filter_map(|(g, _)| api_group(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`: one APIGroup.
pub fn api_group(group: &str) -> Option<Value> {
    let version = group_version(group)?;
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv],
        "preferredVersion": gv,
    }))
}

/// `/version`: a Kubernetes 1.32 server, matching the installed kubectl so it does not warn
/// about version skew.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".to_string(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=FAKE"}),
    );
    for (g, _) in GROUPS
        .iter()
        .filter(|(g, _)| RESOURCES.iter().any(|r| r.group == *g))
    {
        paths.insert(
            format!("apis/{g}/v1"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/v1?hash=FAKE")}),
        );
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/v1`: just enough for kubectl to learn that
/// the server validates fields itself (a PATCH operation per kind that takes
/// `fieldValidation`), so `apply`/`create` skip client-side schema validation.
pub fn openapi_v3_group(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
            .iter()
            .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string"}}))
            .collect();
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {
                        "group": r.group, "version": r.version, "kind": r.kind,
                    },
                }
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-fake"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// The content type of aggregated discovery (what kubectl 1.32 asks for first).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// One group/version of aggregated discovery, built from its APIResourceList so both forms
/// always agree.
fn aggregated_version(group: &str, version: &str) -> Option<Value> {
    let list = resource_list(group, version)?;
    let entries = list.get("resources").and_then(Value::as_array)?;
    let kind_of = |e: &Value| {
        json!({
            "group": e.get("group").cloned().unwrap_or_else(|| json!(group)),
            "version": e.get("version").cloned().unwrap_or_else(|| json!(version)),
            "kind": e["kind"],
        })
    };
    let mut resources: Vec<Value> = Vec::new();
    for e in entries {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some((parent, sub)) = name.split_once('/') {
            let sub_entry = json!({
                "subresource": sub, "responseKind": kind_of(e), "verbs": e["verbs"],
            });
            if let Some(p) = resources.iter_mut().find(|r| r["resource"] == parent) {
                if let Some(subs) = p["subresources"].as_array_mut() {
                    subs.push(sub_entry);
                }
            }
            continue;
        }
        let namespaced = e.get("namespaced").and_then(Value::as_bool) == Some(true);
        let mut r = json!({
            "resource": name,
            "responseKind": kind_of(e),
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": e["singularName"],
            "verbs": e["verbs"],
            "subresources": [],
        });
        for field in ["shortNames", "categories"] {
            if let Some(v) = e.get(field) {
                r[field] = v.clone();
            }
        }
        resources.push(r);
    }
    Some(json!({"version": version, "resources": resources, "freshness": "Current"}))
}

/// `/api` (core) or `/apis` (every other group) as an APIGroupDiscoveryList.
pub fn aggregated_discovery(core: bool) -> Value {
    let items: Vec<Value> = if core {
        aggregated_version("", "v1")
            .map(|v| json!({"metadata": {"name": ""}, "versions": [v]}))
            .into_iter()
            .collect()
    } else {
        GROUPS
            .iter()
            .filter_map(|(g, v)| {
                aggregated_version(g, v)
                    .map(|ver| json!({"metadata": {"name": g}, "versions": [ver]}))
            })
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}
