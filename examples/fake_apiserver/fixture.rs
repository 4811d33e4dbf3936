//! Fixture loading: YAML documents become stored objects, with the bookkeeping a real
//! cluster would have filled in (UIDs, timestamps, references by UID, Deployment revisions).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::store::{Store, new_uid, now};
use super::{Error, controller, resources, s};

/// Loads the fixture: each document an object (or a `List`), namespaces created as needed,
/// owner references and event subjects resolved by name to UIDs, Deployments given their
/// ReplicaSets and revisions. `${NAME}` in a string is replaced by `vars[NAME]`.
pub fn load_fixture(
    store: &mut Store,
    yaml: &str,
    vars: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| Error(format!("fixture: {e}")))?;
    let mut objects = Vec::new();
    for mut doc in docs {
        relative_times(&mut doc);
        expand_vars(&mut doc, vars)?;
        match doc {
            Value::Null => {}
            Value::Object(_) if s(&doc, "/kind") == "List" => {
                objects.extend(
                    doc.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => objects.push(other),
        }
    }
    let ns_res =
        resources::by_plural("", "v1", "namespaces").ok_or_else(|| Error("namespaces".into()))?;
    let mut placed = Vec::new();
    for mut obj in objects {
        let api_version = s(&obj, "/apiVersion").to_string();
        let kind = s(&obj, "/kind").to_string();
        let res = resources::by_kind(&api_version, &kind)
            .ok_or_else(|| Error(format!("fixture: unsupported object {api_version} {kind}")))?;
        let name = s(&obj, "/metadata/name").to_string();
        if name.is_empty() {
            return Err(Error(format!("fixture: a {kind} without metadata.name")));
        }
        let m = &mut obj["metadata"];
        if res.namespaced && s(m, "/namespace").is_empty() {
            m["namespace"] = json!("default");
        }
        if !res.namespaced {
            if let Some(m) = m.as_object_mut() {
                m.remove("namespace");
            }
        }
        let ns = s(m, "/namespace").to_string();
        let existing = store.get(res, &ns, &name).map(|o| o["metadata"].clone());
        for (field, value) in [
            ("uid", json!(new_uid())),
            ("creationTimestamp", json!(now())),
            ("generation", json!(1)),
        ] {
            if m.get(field).is_none_or(Value::is_null) {
                m[field] = existing
                    .as_ref()
                    .and_then(|e| e.get(field))
                    .cloned()
                    .unwrap_or(value);
            }
        }
        if kind == "Event" {
            for field in ["firstTimestamp", "lastTimestamp"] {
                if obj.get(field).is_none_or(Value::is_null) {
                    obj[field] = obj["metadata"]["creationTimestamp"].clone();
                }
            }
        }
        placed.push((res, obj));
    }
    // Namespaces first, including the ones objects merely mention.
    let mut namespaces: Vec<String> = vec!["default".into(), "kube-system".into()];
    for (res, obj) in &placed {
        if res.namespaced {
            namespaces.push(s(obj, "/metadata/namespace").to_string());
        }
    }
    for (res, obj) in &placed {
        if res.plural == "namespaces" {
            store.put(res, obj.clone());
        }
    }
    for ns in namespaces {
        if store.get(ns_res, "", &ns).is_none() {
            store.put(
                ns_res,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "uid": new_uid(), "creationTimestamp": now()},
                       "status": {"phase": "Active"}}),
            );
        }
    }
    for (res, obj) in &placed {
        if res.plural != "namespaces" {
            store.put(res, obj.clone());
        }
    }
    // References by name become references by UID, as a real cluster's would be.
    let uid_of = |store: &Store, kind: &str, ns: &str, name: &str| {
        resources::by_kind_only(kind)
            .and_then(|r| store.get(r, ns, name))
            .map(|o| s(o, "/metadata/uid").to_string())
    };
    for (res, obj) in &placed {
        let ns = s(obj, "/metadata/namespace").to_string();
        let name = s(obj, "/metadata/name").to_string();
        let Some(mut current) = store.get(res, &ns, &name).cloned() else {
            continue;
        };
        let before = current.clone();
        if let Some(refs) = current
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for r in refs {
                if s(r, "/uid").is_empty() {
                    if let Some(uid) = uid_of(store, s(r, "/kind"), &ns, s(r, "/name")) {
                        r["uid"] = json!(uid);
                    }
                }
            }
        }
        if res.kind == "Event" && s(&current, "/involvedObject/uid").is_empty() {
            let kind = s(&current, "/involvedObject/kind").to_string();
            let obj_name = s(&current, "/involvedObject/name").to_string();
            let mut obj_ns = s(&current, "/involvedObject/namespace").to_string();
            if obj_ns.is_empty() {
                obj_ns = ns.clone();
            }
            if let Some(uid) = uid_of(store, &kind, &obj_ns, &obj_name) {
                current["involvedObject"]["uid"] = json!(uid);
                if s(&current, "/involvedObject/namespace").is_empty()
                    && resources::by_kind_only(&kind).is_some_and(|r| r.namespaced)
                {
                    current["involvedObject"]["namespace"] = json!(obj_ns);
                }
            }
        }
        if current != before {
            store.put(res, current);
        }
    }
    for (res, obj) in &placed {
        if res.kind != "Deployment" {
            continue;
        }
        let ns = s(obj, "/metadata/namespace").to_string();
        let name = s(obj, "/metadata/name").to_string();
        if let Some(mut dep) = store.get(res, &ns, &name).cloned() {
            let before = dep.clone();
            controller::reconcile_deployment(store, &mut dep, false);
            if dep != before {
                store.put(res, dep);
            }
        }
    }
    Ok(())
}

/// Replaces `${NAME}` (letters, digits, `_`) in every string with `vars[NAME]`, so a fixture can
/// point at services whose addresses are known only when the tests run. Other `$` text (e.g.
/// opsctl's `${{ … }}`) is left alone.
fn expand_vars(v: &mut Value, vars: &BTreeMap<String, String>) -> Result<(), Error> {
    match v {
        Value::String(text) if text.contains("${") => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find("${") {
                out.push_str(&rest[..at]);
                let after = &rest[at + 2..];
                let name_len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if name_len == 0 || !after[name_len..].starts_with('}') {
                    out.push_str("${");
                    rest = after;
                    continue;
                }
                let name = &after[..name_len];
                let value = vars.get(name).ok_or_else(|| {
                    Error(format!("fixture: ${{{name}}} is used but has no value"))
                })?;
                out.push_str(value);
                rest = &after[name_len + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Array(items) => {
            for item in items {
                expand_vars(item, vars)?;
            }
        }
        Value::Object(m) => {
            for item in m.values_mut() {
                expand_vars(item, vars)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces fixture strings `now` and `now-30s`/`now-5m`/`now-2h`/`now-3d` with timestamps
/// relative to load time, so ages and "(3m ago)" read the same whenever the tests run.
fn relative_times(v: &mut Value) {
    match v {
        Value::String(text) => {
            let Some(rest) = text.strip_prefix("now") else {
                return;
            };
            let offset = if rest.is_empty() {
                Some(0)
            } else {
                rest.strip_prefix('-').and_then(|d| {
                    let (num, unit) = d.split_at(d.len().saturating_sub(1));
                    let n: i64 = num.parse().ok()?;
                    let secs = match unit {
                        "s" => 1,
                        "m" => 60,
                        "h" => 3600,
                        "d" => 86_400,
                        _ => return None,
                    };
                    n.checked_mul(secs)
                })
            };
            if let Some(secs) = offset {
                *text = (chrono::Utc::now() - chrono::Duration::seconds(secs))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(relative_times),
        Value::Object(m) => m.values_mut().for_each(relative_times),
        _ => {}
    }
}
