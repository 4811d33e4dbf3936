//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for on `kubectl get`, with the
//! columns the real server prints for the common kinds (so `kubectl get pods` shows
//! READY/STATUS/RESTARTS/AGE) and NAME/AGE for the rest.

use serde_json::{Value, json};

/// kubectl's `duration.HumanDuration`: `42s`, `5m3s`, `3h`, `2d5h`, `400d`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 730 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

/// Seconds since an RFC 3339 timestamp, if it parses.
fn since(ts: Option<&Value>) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts?.as_str()?).ok()?;
    Some((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
}

fn age(ts: Option<&Value>) -> String {
    since(ts).map_or_else(|| "<unknown>".into(), human_duration)
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(x: &str) -> String {
    if x.is_empty() {
        "<none>".into()
    } else {
        x.into()
    }
}

/// Column definitions (name, priority): priority 1 columns show only with `-o wide`.
fn columns(kind: &str) -> &'static [(&'static str, u8)] {
    match kind {
        "Pod" => &[
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ],
        "Deployment" => &[
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ],
        "ReplicaSet" => &[
            ("Name", 0),
            ("Desired", 0),
            ("Current", 0),
            ("Ready", 0),
            ("Age", 0),
        ],
        "StatefulSet" => &[("Name", 0), ("Ready", 0), ("Age", 0)],
        "Node" => &[
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
        ],
        "Event" => &[
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Message", 0),
        ],
        "Namespace" => &[("Name", 0), ("Status", 0), ("Age", 0)],
        "Secret" => &[("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)],
        "ConfigMap" => &[("Name", 0), ("Data", 0), ("Age", 0)],
        "Service" => &[
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
        ],
        "Lease" => &[("Name", 0), ("Holder", 0), ("Age", 0)],
        _ => &[("Name", 0), ("Age", 0)],
    }
}

/// kubectl's pod STATUS and RESTARTS logic (printPod), reduced to the common cases.
fn pod_cells(p: &Value) -> Vec<Value> {
    let total = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut reason = s(p, "/status/phase").to_string();
    if !s(p, "/status/reason").is_empty() {
        reason = s(p, "/status/reason").to_string();
    }
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<i64> = None;
    let statuses = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for cs in statuses.iter().rev() {
        restarts += n(cs, "/restartCount");
        if let Some(ago) = since(cs.pointer("/lastState/terminated/finishedAt")) {
            last_restart = Some(last_restart.map_or(ago, |l: i64| l.min(ago)));
        }
        if !s(cs, "/state/waiting/reason").is_empty() {
            reason = s(cs, "/state/waiting/reason").to_string();
        } else if !s(cs, "/state/terminated/reason").is_empty() {
            reason = s(cs, "/state/terminated/reason").to_string();
        } else if cs.pointer("/state/terminated").is_some() {
            reason = format!("ExitCode:{}", n(cs, "/state/terminated/exitCode"));
        } else if cs.get("ready").and_then(Value::as_bool) == Some(true)
            && cs.pointer("/state/running").is_some()
        {
            ready += 1;
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    let restarts = match last_restart {
        Some(ago) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(ago)),
        _ => restarts.to_string(),
    };
    vec![
        json!(s(p, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(p.pointer("/metadata/creationTimestamp"))),
        json!(or_none(s(p, "/status/podIP"))),
        json!(or_none(s(p, "/spec/nodeName"))),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn cells(kind: &str, o: &Value) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let created = json!(age(o.pointer("/metadata/creationTimestamp")));
    match kind {
        "Pod" => pod_cells(o),
        "Deployment" => {
            let containers = o
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
            let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
            let selector = o
                .pointer("/spec/selector")
                .map(|sel| super::selector::LabelSelector::from_object(sel).to_query())
                .unwrap_or_default();
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(o, "/status/readyReplicas"),
                    n(o, "/spec/replicas")
                )),
                json!(n(o, "/status/updatedReplicas")),
                json!(n(o, "/status/availableReplicas")),
                created,
                json!(names.join(",")),
                json!(images.join(",")),
                json!(selector),
            ]
        }
        "ReplicaSet" => vec![
            name,
            json!(n(o, "/spec/replicas")),
            json!(n(o, "/status/replicas")),
            json!(n(o, "/status/readyReplicas")),
            created,
        ],
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                n(o, "/status/readyReplicas"),
                n(o, "/spec/replicas")
            )),
            created,
        ],
        "Node" => {
            let ready = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| s(c, "/type") == "Ready"))
                .map(|c| s(c, "/status") == "True");
            let mut status = match ready {
                Some(true) => "Ready".to_string(),
                Some(false) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(status),
                json!(or_none(&roles.join(","))),
                created,
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
            ]
        }
        "Event" => {
            // Core v1 fields, or their events.k8s.io/v1 names.
            let last = ["lastTimestamp", "deprecatedLastTimestamp", "eventTime"]
                .iter()
                .find_map(|f| o.get(*f).filter(|v| !v.is_null()))
                .or_else(|| o.pointer("/metadata/creationTimestamp"));
            let subject = if o.get("involvedObject").is_some() {
                "/involvedObject"
            } else {
                "/regarding"
            };
            let message = if o.get("message").is_some() {
                "/message"
            } else {
                "/note"
            };
            vec![
                json!(age(last)),
                json!(s(o, "/type")),
                json!(s(o, "/reason")),
                json!(format!(
                    "{}/{}",
                    s(o, &format!("{subject}/kind")).to_lowercase(),
                    s(o, &format!("{subject}/name"))
                )),
                json!(s(o, message)),
            ]
        }
        "Namespace" => vec![
            name,
            json!(match s(o, "/status/phase") {
                "" => "Active",
                p => p,
            }),
            created,
        ],
        "Secret" => vec![
            name,
            json!(match s(o, "/type") {
                "" => "Opaque",
                t => t,
            }),
            json!(
                o.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |d| d.len())
            ),
            created,
        ],
        "ConfigMap" => vec![
            name,
            json!(
                o.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |d| d.len())
            ),
            created,
        ],
        "Service" => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let proto = match s(p, "/protocol") {
                                "" => "TCP",
                                x => x,
                            };
                            format!("{}/{proto}", n(p, "/port"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(match s(o, "/spec/type") {
                    "" => "ClusterIP",
                    t => t,
                }),
                json!(or_none(s(o, "/spec/clusterIP"))),
                json!("<none>"),
                json!(or_none(&ports.join(","))),
                created,
            ]
        }
        "Lease" => vec![name, json!(s(o, "/spec/holderIdentity")), created],
        _ => vec![name, created],
    }
}

/// A Table of `objects` (all of `kind`), each row carrying its full object so kubectl can add
/// the NAMESPACE column and labels.
pub fn table(kind: &str, objects: &[Value], resource_version: &str) -> Value {
    let defs: Vec<Value> = columns(kind)
        .iter()
        .map(|(name, priority)| {
            json!({
                "name": name,
                "type": "string",
                "format": if *name == "Name" { "name" } else { "" },
                "description": "",
                "priority": priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cells(kind, o), "object": o}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": defs,
        "rows": rows,
    })
}
