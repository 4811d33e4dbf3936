//! Pod subresources: `pods/log` from fixture annotations and `pods/eviction` with
//! PodDisruptionBudget checks (the streaming ones, exec and port-forward, are in streams.rs).

use hyper::Response;
use serde_json::{Value, json};

use super::resources::{self, Resource};
use super::{
    ApiError, Body, Req, State, controller, json_response, not_served, remove_object, s,
    text_response,
};

fn pods_res() -> Result<&'static Resource, ApiError> {
    resources::by_plural("", "v1", "pods").ok_or_else(|| not_served("pods"))
}

pub fn evict(state: &State, r: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let pods = pods_res()?;
    let body = r.json_body()?;
    let dry_run = r.query.dry_run()
        || body
            .pointer("/deleteOptions/dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let mut store = state.store();
    let pod = store
        .get(pods, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    if let Some((_pdb, message)) = controller::eviction_blocked(&store, &pod) {
        let mut e = ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        );
        e.details = json!({"causes": [{"reason": "DisruptionBudget", "message": message}]});
        return Err(e);
    }
    if !dry_run {
        remove_object(&mut store, pods, ns, name, "Background");
        store.count_write("pods/eviction");
    }
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The container a `pods/log` or `pods/exec` request means: the one named, else the pod's
/// `kubectl.kubernetes.io/default-container`, else its only container; 400 like the real server
/// otherwise.
pub fn container_of(pod: &Value, requested: Option<&str>, name: &str) -> Result<String, ApiError> {
    let names: Vec<String> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .map(|c| s(c, "/name").to_string())
        .collect();
    let container = match requested {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => {
            let default = s(
                pod,
                "/metadata/annotations/kubectl.kubernetes.io~1default-container",
            );
            if !default.is_empty() {
                default.to_string()
            } else if names.len() == 1 {
                names[0].clone()
            } else {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        }
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    Ok(container)
}

/// `pods/log` from the pod's `opsctl-test/log` / `opsctl-test/previous-log` annotations
/// (`…-log.CONTAINER` overrides them per container).
pub fn logs(state: &State, r: &Req, ns: &str, name: &str) -> Result<Response<Body>, ApiError> {
    let pods = pods_res()?;
    let pod = state
        .store()
        .get(pods, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    let container = container_of(&pod, r.query.get("container"), name)?;
    let previous = r.query.flag("previous");
    let key = if previous {
        "opsctl-test/previous-log"
    } else {
        "opsctl-test/log"
    };
    let annotations = pod.pointer("/metadata/annotations");
    let text = annotations
        .and_then(|a| a.get(format!("{key}.{container}")))
        .or_else(|| annotations.and_then(|a| a.get(key)))
        .and_then(Value::as_str);
    let Some(text) = text else {
        if previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        return Ok(text_response(String::new()));
    };
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(since) = r
        .query
        .get("sinceSeconds")
        .and_then(|v| v.parse::<i64>().ok())
    {
        // Lines that start with a timestamp older than the window are dropped; others stay.
        let cutoff = chrono::Utc::now() - chrono::Duration::seconds(since);
        lines.retain(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_none_or(|t| t >= cutoff)
        });
    }
    if let Some(tail) = r
        .query
        .get("tailLines")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let Some(limit) = r
        .query
        .get("limitBytes")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut cut = limit.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(text_response(out))
}
