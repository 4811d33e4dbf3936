//! Answers computed per request rather than stored: access reviews (`kubectl auth can-i`)
//! and usage metrics (`kubectl top`).

use hyper::Response;
use serde_json::{Value, json};

use super::store::now;
use super::{
    ApiError, Body, Req, State, json_response, not_served, protobuf, resources, s, selectors,
};

/// `kubectl auth can-i`: allowed unless a `--fail …:403` rule would refuse that request.
pub fn access_review(state: &State, r: &Req) -> Result<Response<Body>, ApiError> {
    let mut review = if r
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        protobuf::access_review(&r.body).map_err(ApiError::bad_request)?
    } else {
        r.json_body()?
    };
    let attrs = review
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(Value::Null);
    let group = s(&attrs, "/group");
    let resource = s(&attrs, "/resource");
    let prefix = if group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!(
            "/apis/{group}/{}",
            resources::group_version(group).unwrap_or("v1")
        )
    };
    let mut path = prefix;
    if !s(&attrs, "/namespace").is_empty() {
        path.push_str(&format!("/namespaces/{}", s(&attrs, "/namespace")));
    }
    for part in [resource, s(&attrs, "/name"), s(&attrs, "/subresource")] {
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    let method = match s(&attrs, "/verb") {
        "get" | "list" | "watch" => "GET",
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        "delete" | "deletecollection" => "DELETE",
        _ => "*",
    };
    let denied = state.fail_rules().iter().any(|f| {
        f.status == 403
            && (f.matches(method, &path) || (method == "*" && f.matches(&f.method, &path)))
    });
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = if denied {
        json!({"allowed": false, "reason": "denied by a --fail rule of the fake API server"})
    } else {
        json!({"allowed": true, "reason": "the fake API server allows everything"})
    };
    Ok(json_response(201, &review))
}

/// `metrics.k8s.io/v1beta1` pods and nodes, from `opsctl-test/cpu` and `opsctl-test/memory`
/// annotations (usage per container for pods); objects without them have no metrics yet.
pub fn metrics(state: &State, r: &Req, rest: &str) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = rest.split('/').collect();
    let (plural, ns, name) = match segs.as_slice() {
        ["pods"] => ("pods", None, None),
        ["namespaces", ns, "pods"] => ("pods", Some(*ns), None),
        ["namespaces", ns, "pods", name] => ("pods", Some(*ns), Some(*name)),
        ["nodes"] => ("nodes", None, None),
        ["nodes", name] => ("nodes", None, Some(*name)),
        _ => return Err(not_served(&r.path)),
    };
    let res = resources::by_plural("", "v1", plural).ok_or_else(|| not_served(&r.path))?;
    let (labels, _) = selectors(r)?;
    let objects: Vec<Value> = state
        .store()
        .list(res, ns)
        .into_iter()
        .filter(|o| name.is_none_or(|n| s(o, "/metadata/name") == n) && labels.matches(o))
        .collect();
    let kind = if plural == "pods" {
        "PodMetrics"
    } else {
        "NodeMetrics"
    };
    let items: Vec<Value> = objects
        .iter()
        .filter_map(|o| {
            let cpu = s(o, "/metadata/annotations/opsctl-test~1cpu");
            let memory = s(o, "/metadata/annotations/opsctl-test~1memory");
            if cpu.is_empty() && memory.is_empty() {
                return None;
            }
            let usage = json!({"cpu": if cpu.is_empty() { "0" } else { cpu },
                               "memory": if memory.is_empty() { "0" } else { memory }});
            let mut m = json!({
                "kind": kind, "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": o["metadata"]["name"], "creationTimestamp": now(),
                             "labels": o["metadata"]["labels"]},
                "timestamp": now(), "window": "30s",
            });
            if plural == "pods" {
                m["metadata"]["namespace"] = o["metadata"]["namespace"].clone();
                let containers: Vec<Value> = o
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .map(|c| json!({"name": c["name"], "usage": usage}))
                            .collect()
                    })
                    .unwrap_or_default();
                m["containers"] = json!(containers);
            } else {
                m["usage"] = usage;
            }
            Some(m)
        })
        .collect();
    if let Some(name) = name {
        return items
            .into_iter()
            .next()
            .map(|m| json_response(200, &m))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("{plural}.metrics.k8s.io \"{name}\" not found"),
                )
            });
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{kind}List"), "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {}, "items": items}),
    ))
}
