//! The few controller behaviours kubectl's protocol depends on: a Deployment's ReplicaSets and
//! revisions (rollout restart/history/undo), immediately-converged workload status (rollout
//! status, scale), garbage collection by owner, and PodDisruptionBudget checks for eviction.
//!
//! Status converges at once: the fake has no kubelet, so every rollout "succeeds" instantly.

use serde_json::{Map, Value, json};

use super::resources::{self, Resource};
use super::selector::LabelSelector;
use super::store::{Store, new_uid, now};

const REVISION: &str = "deployment.kubernetes.io/revision";
/// A pod annotation standing for "this pod's containers exit at start" (see [`kubelet`]).
pub const CRASH_LOOP: &str = "opsctl-test/crash-loop";
const HASH_LABEL: &str = "pod-template-hash";

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn res(group: &str, plural: &str) -> &'static Resource {
    // The table is static and these names are literals in this file.
    resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .unwrap_or(&resources::RESOURCES[0])
}

/// A copy without nulls and empty objects/arrays, so templates that went through kubectl's
/// typed structs (which add `creationTimestamp: null`, `resources: {}`) still compare equal.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a.iter().filter_map(normalize).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// A pod template without its ReplicaSet hash label, normalized.
fn template_identity(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    normalize(&t).unwrap_or(Value::Null)
}

/// Serialization with sorted keys, so the hash does not depend on key order.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The `pod-template-hash`: FNV-1a of the template, spelt with Kubernetes' safe alphabet.
pub fn template_hash(t: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in canonical(&template_identity(t)).bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn revision(o: &Value) -> u64 {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Whether `o` has a controller owner reference to `uid`.
pub fn owned_by(o: &Value, uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| s(r, "/uid") == uid))
}

fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn deployment_status(dep: &Value, rs_name: &str) -> Value {
    let r = replicas(dep);
    let t = now();
    json!({
        "observedGeneration": dep.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": r,
        "updatedReplicas": r,
        "readyReplicas": r,
        "availableReplicas": r,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.",
             "lastUpdateTime": t, "lastTransitionTime": t},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
             "lastUpdateTime": t, "lastTransitionTime": t},
        ],
    })
}

/// Brings a Deployment's ReplicaSets in line with its template, before the Deployment itself
/// is stored: the ReplicaSet whose template matches becomes the newest revision (created as
/// `<name>-<hash>` if none matches; reused, as `rollout undo` needs, if one does), and gets all
/// replicas. `rollout` says the spec changed (or the object is new), so status converges;
/// otherwise (fixture load, metadata-only change) status is left as it is unless missing.
pub fn reconcile_deployment(store: &mut Store, dep: &mut Value, rollout: bool) {
    let rs_res = res("apps", "replicasets");
    let ns = s(dep, "/metadata/namespace").to_string();
    let name = s(dep, "/metadata/name").to_string();
    let uid = s(dep, "/metadata/uid").to_string();
    let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let identity = template_identity(&template);
    let want = replicas(dep);
    let owned: Vec<Value> = store
        .list(rs_res, Some(&ns))
        .into_iter()
        .filter(|rs| owned_by(rs, &uid))
        .collect();
    let max_rev = owned.iter().map(revision).max().unwrap_or(0);
    let current = owned.iter().find(|rs| {
        rs.pointer("/spec/template")
            .is_some_and(|t| template_identity(t) == identity)
    });
    let (rs_name, rev) = match current {
        Some(rs) if revision(rs) == max_rev && max_rev > 0 => {
            (s(rs, "/metadata/name").to_string(), max_rev)
        }
        Some(rs) => (s(rs, "/metadata/name").to_string(), max_rev + 1),
        None => (format!("{name}-{}", template_hash(&template)), max_rev + 1),
    };
    let change_cause = dep
        .pointer("/metadata/annotations/kubernetes.io~1change-cause")
        .cloned();

    // Old ReplicaSets scale to zero only on a rollout: a fixture may show a rollout midway.
    for rs in &owned {
        let this = s(rs, "/metadata/name") == rs_name;
        if !this && !rollout {
            continue;
        }
        let mut updated = rs.clone();
        let r = if this { want } else { 0 };
        let before = rs
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if rollout && before != r {
            scaling_event(store, dep, s(rs, "/metadata/name"), before, r);
        }
        updated["spec"]["replicas"] = json!(r);
        if this {
            updated["metadata"]["annotations"][REVISION] = json!(rev.to_string());
            updated["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(want.to_string());
            if let Some(cause) = &change_cause {
                updated["metadata"]["annotations"]["kubernetes.io/change-cause"] = cause.clone();
            }
        }
        if rollout {
            updated["status"] = json!({
                "replicas": r, "fullyLabeledReplicas": r, "readyReplicas": r,
                "availableReplicas": r,
                "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            });
        }
        if updated != *rs {
            store.put(rs_res, updated);
        }
    }
    if current.is_none() {
        let hash = template_hash(&template);
        let mut t = template.clone();
        t["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = dep.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        labels[HASH_LABEL] = json!(hash);
        let mut annotations = json!({
            REVISION: rev.to_string(),
            "deployment.kubernetes.io/desired-replicas": want.to_string(),
            "deployment.kubernetes.io/max-replicas": (want + 1).to_string(),
        });
        if let Some(cause) = &change_cause {
            annotations["kubernetes.io/change-cause"] = cause.clone();
        }
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "uid": new_uid(),
                "generation": 1,
                "creationTimestamp": now(),
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {"replicas": want, "selector": selector, "template": t},
            "status": {"replicas": want, "fullyLabeledReplicas": want, "readyReplicas": want,
                       "availableReplicas": want, "observedGeneration": 1},
        });
        store.put(rs_res, rs);
        if rollout {
            scaling_event(store, dep, &rs_name, 0, want);
        }
    }
    if rollout {
        for rs in store.list(rs_res, Some(&ns)) {
            if owned_by(&rs, &uid) {
                let desired = if s(&rs, "/metadata/name") == rs_name {
                    want
                } else {
                    0
                };
                sync_pods(store, &rs, desired);
            }
        }
    }
    dep["metadata"]["annotations"][REVISION] = json!(rev.to_string());
    if rollout || dep.get("status").is_none_or(Value::is_null) {
        dep["status"] = deployment_status(dep, &rs_name);
    }
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = vec![0u8; len];
    // Without OS randomness the UID-derived fallback below still gives distinct names.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = new_uid().into_bytes();
        bytes.truncate(len);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A running, ready pod of a ReplicaSet, as a scheduler and kubelet would leave it.
fn new_pod(store: &Store, rs: &Value) -> Value {
    let ns = s(rs, "/metadata/namespace");
    let rs_name = s(rs, "/metadata/name");
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let t = now();
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    let nodes = store.list(res("", "nodes"), None);
    let node = nodes
        .iter()
        .find(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true))
        .map(|n| s(n, "/metadata/name").to_string());
    if let Some(node) = &node {
        spec["nodeName"] = json!(node);
    }
    // With nodes but none schedulable (a drained cluster) the pod stays Pending; with no
    // nodes in the fixture at all, pods run anyway so small fixtures need not declare nodes.
    let unschedulable = !nodes.is_empty() && node.is_none();
    let statuses: Vec<Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "imageID": "",
                           "ready": true, "started": true, "restartCount": 0,
                           "state": {"running": {"startedAt": t}}})
                })
                .collect()
        })
        .unwrap_or_default();
    let octets: Vec<u8> = random_suffix(2).bytes().collect();
    let ip = format!(
        "10.244.{}.{}",
        octets.first().copied().unwrap_or(1) % 250,
        octets.get(1).copied().unwrap_or(1) % 250 + 2
    );
    let conditions: Vec<Value> = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        .iter()
        .map(|c| json!({"type": c, "status": "True", "lastTransitionTime": t}))
        .collect();
    let status = if unschedulable {
        json!({
            "phase": "Pending",
            "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "lastTransitionTime": t,
                "message": format!(
                    "0/{n} nodes are available: {n} node(s) were unschedulable.",
                    n = nodes.len()
                ),
            }],
        })
    } else {
        json!({
            "phase": "Running",
            "podIP": ip,
            "startTime": t,
            "conditions": conditions,
            "containerStatuses": statuses,
        })
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{rs_name}-{}", random_suffix(5)),
            "namespace": ns,
            "uid": new_uid(),
            "generation": 1,
            "creationTimestamp": t,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                "uid": rs["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": status,
    })
}

/// The ReplicaSet controller's answer to a deleted or evicted pod: its ReplicaSet (if any)
/// gets a replacement, scheduled like any new pod (Pending when every node is cordoned).
pub fn replace_pod(store: &mut Store, pod: &Value) {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter().find(|r| {
                s(r, "/kind") == "ReplicaSet"
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            })
        })
        .map(|r| s(r, "/uid").to_string());
    let Some(owner) = owner else { return };
    let ns = s(pod, "/metadata/namespace");
    let rs = store
        .list(res("apps", "replicasets"), Some(ns))
        .into_iter()
        .find(|rs| s(rs, "/metadata/uid") == owner);
    if let Some(rs) = rs {
        sync_pods(store, &rs, replicas(&rs));
    }
}

/// Makes a ReplicaSet own exactly `desired` pods: new ones start running and ready at once;
/// surplus goes not-ready first, then newest first (as the ReplicaSet controller ranks them).
fn sync_pods(store: &mut Store, rs: &Value, desired: i64) {
    let pods_res = res("", "pods");
    let ns = s(rs, "/metadata/namespace").to_string();
    let uid = s(rs, "/metadata/uid").to_string();
    let mut pods: Vec<Value> = store
        .list(pods_res, Some(&ns))
        .into_iter()
        .filter(|p| owned_by(p, &uid))
        .collect();
    let have = i64::try_from(pods.len()).unwrap_or(i64::MAX);
    for _ in have..desired {
        let mut pod = new_pod(store, rs);
        kubelet(store, None, &mut pod);
        store.put(pods_res, pod);
    }
    if have > desired {
        // Timestamps have whole seconds; the resourceVersion breaks ties (later write, newer).
        pods.sort_by_key(|p| {
            (
                pod_ready(p),
                std::cmp::Reverse(s(p, "/metadata/creationTimestamp").to_string()),
                std::cmp::Reverse(
                    s(p, "/metadata/resourceVersion")
                        .parse::<u64>()
                        .unwrap_or(0),
                ),
            )
        });
        let surplus = usize::try_from(have - desired).unwrap_or(0);
        for p in pods.iter().take(surplus) {
            store.remove(pods_res, &ns, s(p, "/metadata/name"));
        }
    }
}

/// The `ScalingReplicaSet` event the deployment controller records (what `kubectl describe
/// deploy` shows under Events).
fn scaling_event(store: &mut Store, dep: &Value, rs_name: &str, from: i64, to: i64) {
    let ns = s(dep, "/metadata/namespace");
    let name = s(dep, "/metadata/name");
    let direction = if to > from { "up" } else { "down" };
    let t = now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{name}.{}", random_suffix(16)),
            "namespace": ns,
            "uid": new_uid(),
            "creationTimestamp": t,
        },
        "involvedObject": {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "namespace": ns,
            "uid": dep["metadata"]["uid"],
        },
        "reason": "ScalingReplicaSet",
        "message": format!("Scaled {direction} replica set {rs_name} from {from} to {to}"),
        "type": "Normal",
        "source": {"component": "deployment-controller"},
        "reportingComponent": "deployment-controller",
        "firstTimestamp": t,
        "lastTimestamp": t,
        "count": 1,
    });
    store.put(res("", "events"), event);
}

/// StatefulSets and ReplicaSets converge at once on a spec change.
pub fn converge_status(kind: &str, obj: &mut Value) {
    let r = replicas(obj);
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    match kind {
        "StatefulSet" => {
            let revision = format!(
                "{}-{}",
                s(obj, "/metadata/name"),
                template_hash(obj.pointer("/spec/template").unwrap_or(&Value::Null))
            );
            obj["status"] = json!({
                "observedGeneration": generation, "replicas": r, "readyReplicas": r,
                "currentReplicas": r, "updatedReplicas": r, "availableReplicas": r,
                "currentRevision": revision, "updateRevision": revision,
            });
        }
        "ReplicaSet" => {
            obj["status"] = json!({
                "observedGeneration": generation, "replicas": r, "readyReplicas": r,
                "fullyLabeledReplicas": r, "availableReplicas": r,
            });
        }
        _ => {}
    }
}

/// Keys of every object owned (transitively) by `uid`, for cascading deletion.
pub fn dependents(store: &Store, uid: &str) -> Vec<(&'static Resource, String, String)> {
    let mut out = Vec::new();
    let mut queue = vec![uid.to_string()];
    while let Some(owner) = queue.pop() {
        for ((group, plural, ns, name), obj) in store.all() {
            if owned_by(obj, &owner) {
                if let Some(r) = resources::RESOURCES
                    .iter()
                    .find(|r| r.group == *group && r.plural == *plural)
                {
                    out.push((r, ns.clone(), name.clone()));
                    queue.push(s(obj, "/metadata/uid").to_string());
                }
            }
        }
    }
    out
}

fn pod_ready(p: &Value) -> bool {
    s(p, "/status/phase") == "Running"
        && p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
            })
}

/// Resolves an int-or-percent PDB field against `total`.
fn int_or_percent(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let pct: i64 = v.as_str()?.strip_suffix('%')?.parse().ok()?;
    let scaled = total * pct;
    Some(if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    })
}

/// Whether evicting `pod` would violate a PodDisruptionBudget: the budget's name and the
/// message the real server gives, or None when eviction is allowed.
pub fn eviction_blocked(store: &Store, pod: &Value) -> Option<(String, String)> {
    let ns = s(pod, "/metadata/namespace");
    let pdbs = store.list(res("policy", "poddisruptionbudgets"), Some(ns));
    let pods = store.list(res("", "pods"), Some(ns));
    for pdb in pdbs {
        let sel = LabelSelector::from_object(pdb.pointer("/spec/selector").unwrap_or(&Value::Null));
        if sel.is_empty() || !sel.matches(pod) {
            continue;
        }
        let matching: Vec<&Value> = pods.iter().filter(|p| sel.matches(p)).collect();
        let total = i64::try_from(matching.len()).unwrap_or(i64::MAX);
        let healthy =
            i64::try_from(matching.iter().filter(|p| pod_ready(p)).count()).unwrap_or(i64::MAX);
        // An unhealthy pod can always go: evicting it does not reduce availability.
        if !pod_ready(pod) {
            continue;
        }
        let allowed = if let Some(a) = pdb
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
        {
            a
        } else if let Some(min) = pdb
            .pointer("/spec/minAvailable")
            .and_then(|v| int_or_percent(v, total, true))
        {
            healthy - min
        } else if let Some(max) = pdb
            .pointer("/spec/maxUnavailable")
            .and_then(|v| int_or_percent(v, total, false))
        {
            max - (total - healthy)
        } else {
            1
        };
        if allowed < 1 {
            let name = s(&pdb, "/metadata/name").to_string();
            let msg = format!(
                "The disruption budget {name} needs {} healthy pods and has {healthy} currently",
                healthy - allowed.max(0)
            );
            return Some((name, msg));
        }
    }
    None
}

/// The one kubelet behaviour the fake models: a pod annotated `opsctl-test/crash-loop`
/// (its value: why the process exits, e.g. `could not connect to Redis`) has containers that
/// exit at start, so the kubelet reports them as it does after a few failed restarts:
/// `CrashLoopBackOff` waiting, the last termination (exit code 1, the annotation's text as
/// its message), restart counts, Ready and ContainersReady False; and records the `BackOff`
/// Warning event. A pod template carrying the annotation gives crash-looping pods (a bad
/// rollout); new pods without it start running and ready. Removing the annotation does not
/// heal a pod (there is no back-off timer): replace it (delete, rollout restart).
pub fn kubelet(store: &mut Store, old: Option<&Value>, pod: &mut Value) {
    let reason = s(
        pod,
        &format!("/metadata/annotations/{}", CRASH_LOOP.replace('/', "~1")),
    );
    if reason.is_empty() || s(pod, "/status/phase") == "Pending" {
        return;
    }
    let reason = reason.to_string();
    let crash_looping = |p: &Value| {
        p.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs
                        .iter()
                        .all(|c| s(c, "/state/waiting/reason") == "CrashLoopBackOff")
            })
    };
    if crash_looping(pod) || old.is_some_and(crash_looping) {
        if let Some(old) = old {
            pod["status"] = old["status"].clone();
        }
        return;
    }
    let name = s(pod, "/metadata/name").to_string();
    let uid = s(pod, "/metadata/uid").to_string();
    let t = now();
    let previous: Vec<Value> = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let cname = s(c, "/name");
            let restarts = previous
                .iter()
                .find(|p| s(p, "/name") == cname)
                .and_then(|p| p.get("restartCount"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            json!({
                "name": cname, "image": c["image"], "imageID": "",
                "ready": false, "started": false,
                // The back-off reaches 40 s after the fifth failed start.
                "restartCount": restarts + 5,
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": format!("back-off 40s restarting failed container={cname} pod={name}_{}({uid})",
                        s(pod, "/metadata/namespace")),
                }},
                "lastState": {"terminated": {
                    "exitCode": 1, "reason": "Error", "message": reason,
                    "startedAt": t, "finishedAt": t,
                }},
            })
        })
        .collect();
    let unready: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let message = format!("containers with unready status: [{}]", unready.join(" "));
    let mut conditions: Vec<Value> = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !matches!(s(c, "/type"), "Ready" | "ContainersReady"))
        .collect();
    for kind in ["Ready", "ContainersReady"] {
        conditions.push(json!({
            "type": kind, "status": "False", "reason": "ContainersNotReady",
            "message": message, "lastTransitionTime": t,
        }));
    }
    pod["status"]["phase"] = json!("Running");
    pod["status"]["conditions"] = json!(conditions);
    pod["status"]["containerStatuses"] = json!(statuses);
    let ns = s(pod, "/metadata/namespace");
    for c in &unready {
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{name}.{}", random_suffix(16)),
                "namespace": ns,
                "uid": new_uid(),
                "creationTimestamp": t,
            },
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns, "uid": uid,
                "fieldPath": format!("spec.containers{{{c}}}"),
            },
            "reason": "BackOff",
            "message": format!("Back-off restarting failed container {c} in pod {name}_{ns}({uid})"),
            "type": "Warning",
            "source": {"component": "kubelet", "host": s(pod, "/spec/nodeName")},
            "reportingComponent": "kubelet",
            "firstTimestamp": t,
            "lastTimestamp": t,
            "count": 5,
        });
        store.put(res("", "events"), event);
    }
}
