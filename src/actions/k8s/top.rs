//! `k8s.top`: CPU and memory in use, from the metrics API (`metrics.k8s.io`, what `kubectl
//! top` reads), per pod and container with their requests and limits beside them, or per
//! node against what it can allocate — so "memory near its limit" is an expression
//! (`max_memory_pct_of_limit > 90`), not a person reading a table.

use std::collections::HashMap;
use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Exclusive, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Top;

crate::action_args! {
    /// Arguments of `k8s.top`.
    pub struct TopArgs {
        /// One pod by name.
        pod: Option<String>,
        /// Pods by label selector, e.g. app=api (neither pod nor selector: every pod of
        /// the namespace).
        selector: Option<String>,
        /// A node by name, or `all` for every node (instead of pods).
        node: Option<String>,
        /// Namespace of the pods (the config's by default).
        namespace: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.top",
    summary: "CPU and memory in use (metrics.k8s.io), against requests, limits or what a node can allocate.",
    args: <TopArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "cpu_millicores",
            doc: "CPU in use, summed over the pods (or nodes), in millicores.",
        },
        OutputSpec {
            name: "memory_bytes",
            doc: "Memory in use (working set), summed, in bytes.",
        },
        OutputSpec {
            name: "max_cpu_pct_of_limit",
            doc: "Pods: the highest CPU use of a container as % of its limit (null when no container has one). Nodes: the highest % of allocatable CPU.",
        },
        OutputSpec {
            name: "max_memory_pct_of_limit",
            doc: "Pods: the highest memory use of a container as % of its limit (null when none has one). Nodes: the highest % of allocatable memory.",
        },
        OutputSpec {
            name: "count",
            doc: "Pods (or nodes) measured.",
        },
        OutputSpec {
            name: "pods",
            doc: "Per pod: {name, cpu_millicores, memory_bytes, containers: [{name, cpu_millicores, memory_bytes, cpu_request_millicores, cpu_limit_millicores, memory_request_bytes, memory_limit_bytes, cpu_pct_of_limit, memory_pct_of_limit}]}.",
        },
        OutputSpec {
            name: "nodes",
            doc: "Per node: {name, cpu_millicores, memory_bytes, cpu_allocatable_millicores, memory_allocatable_bytes, cpu_pct, memory_pct}.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["pod", "selector", "node"],
        required: false,
    }],
    mutating: "never",
    default_expect: "the metrics API answers with at least one measurement",
};

impl ActionImpl for Top {
    type Args = TopArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&TopArgs>) -> Vec<KubeAccess> {
        let metrics = |resource, namespaced| KubeResource::Known {
            group: "metrics.k8s.io",
            resource,
            namespaced,
        };
        let ns = a.and_then(|a| a.namespace.as_deref());
        match a {
            Some(a) if a.node.is_some() => {
                let verbs: &'static [&'static str] = if a.node.as_deref() == Some("all") {
                    &["list"]
                } else {
                    &["get"]
                };
                vec![
                    KubeAccess::new(metrics("nodes", false), verbs, None),
                    KubeAccess::new(KubeResource::of::<Node>(), verbs, None),
                ]
            }
            Some(a) => {
                let verbs: &'static [&'static str] =
                    if a.pod.is_some() { &["get"] } else { &["list"] };
                vec![
                    KubeAccess::new(metrics("pods", true), verbs, ns),
                    KubeAccess::new(KubeResource::of::<Pod>(), verbs, ns),
                ]
            }
            // Arguments unknown before the run: everything it could ask.
            None => vec![
                KubeAccess::new(metrics("pods", true), &["get", "list"], ns),
                KubeAccess::new(KubeResource::of::<Pod>(), &["get", "list"], ns),
                KubeAccess::new(metrics("nodes", false), &["get", "list"], None),
                KubeAccess::new(KubeResource::of::<Node>(), &["get", "list"], None),
            ],
        }
    }

    fn describe(&self, a: &TopArgs, env: &EnvConfig) -> String {
        match (&a.node, &a.pod, &a.selector) {
            (Some(n), _, _) if n == "all" => "top nodes".to_string(),
            (Some(n), _, _) => format!("top node {n}"),
            (_, Some(p), _) => format!("top pod {p} in {}", namespace(a.namespace.as_deref(), env)),
            (_, _, Some(s)) => {
                format!("top pods {s} in {}", namespace(a.namespace.as_deref(), env))
            }
            _ => format!("top pods in {}", namespace(a.namespace.as_deref(), env)),
        }
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: TopArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let kube = cx.clients().kube().await?;
            let started = Instant::now();
            let mut out = match &a.node {
                Some(node) => {
                    let which = (node != "all").then_some(node.as_str());
                    let metrics =
                        metrics_get(&kube.client, &nodes_path(which), "node metrics").await?;
                    let api: kube::Api<Node> = kube::Api::all(kube.client.clone());
                    let nodes = match which {
                        Some(n) => vec![
                            crate::targets::kube::read(&format!("get node {n}"), || api.get(n))
                                .await?,
                        ],
                        None => {
                            let lp = kube::api::ListParams::default();
                            crate::targets::kube::read("list nodes", || api.list(&lp))
                                .await?
                                .items
                        }
                    };
                    summarize_nodes(&items(&metrics, which.is_some()), &nodes)
                }
                None => {
                    let ns = kube.namespace_or(a.namespace.as_deref());
                    let path = pods_path(&ns, a.pod.as_deref(), a.selector.as_deref());
                    let metrics = metrics_get(&kube.client, &path, "pod metrics").await?;
                    let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &ns);
                    let pods = match &a.pod {
                        Some(p) => vec![
                            crate::targets::kube::read(&format!("get pod {p} in {ns}"), || {
                                api.get(p)
                            })
                            .await?,
                        ],
                        None => {
                            let mut lp = kube::api::ListParams::default();
                            if let Some(sel) = &a.selector {
                                lp = lp.labels(sel);
                            }
                            crate::targets::kube::read(&format!("list pods in {ns}"), || {
                                api.list(&lp)
                            })
                            .await?
                            .items
                        }
                    };
                    summarize_pods(&items(&metrics, a.pod.is_some()), &pods)
                }
            };
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        (outputs.get("count").and_then(Value::as_u64) == Some(0))
            .then(|| "the metrics API has no measurement for what was asked".to_string())
    }
}

fn pods_path(ns: &str, pod: Option<&str>, selector: Option<&str>) -> String {
    let mut path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");
    if let Some(p) = pod {
        path.push('/');
        path.push_str(p);
    } else if let Some(sel) = selector {
        path.push_str("?labelSelector=");
        path.push_str(&percent_encode(sel));
    }
    path
}

fn nodes_path(node: Option<&str>) -> String {
    match node {
        Some(n) => format!("/apis/metrics.k8s.io/v1beta1/nodes/{n}"),
        None => "/apis/metrics.k8s.io/v1beta1/nodes".to_string(),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs a metrics API path (there are no typed bindings for `metrics.k8s.io`).
async fn metrics_get(client: &kube::Client, path: &str, what: &str) -> Result<Value, ActionError> {
    let request = || async {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        client.request::<Value>(req).await
    };
    crate::targets::kube::read(what, request)
        .await
        .map_err(|e| {
            if e.message().contains("(404)") || e.message().contains("NotFound") {
                ActionError::new(
                    e.kind(),
                    format!(
                        "{} (is metrics-server installed? `kubectl top` needs it too)",
                        e.message()
                    ),
                )
            } else {
                e
            }
        })
}

/// The measurements of a list (or of one object).
fn items(v: &Value, single: bool) -> Vec<Value> {
    if single {
        return vec![v.clone()];
    }
    v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A Kubernetes quantity (`250m`, `1.5`, `128974848`, `129e6`, `123Mi`, `12345678n`) as
/// a number of base units (cores, bytes).
pub fn quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    // `1e3` is an exponent, `1E` would be exa: an `E` at the very end is the suffix.
    let (number, suffix) = if suffix.is_empty() && (number.ends_with('E')) {
        (&number[..number.len() - 1], "E")
    } else {
        (number, suffix)
    };
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    value.is_finite().then_some(value * scale)
}

fn millicores(q: Option<&Value>) -> Option<u64> {
    let cores = quantity(q?.as_str()?)?;
    // kubectl top rounds CPU up to the next millicore.
    Some((cores * 1000.0).ceil().max(0.0) as u64)
}

fn bytes(q: Option<&Value>) -> Option<u64> {
    Some(quantity(q?.as_str()?)?.max(0.0) as u64)
}

fn pct(used: u64, of: Option<u64>) -> Value {
    match of {
        Some(limit) if limit > 0 => json!(((used as f64) * 1000.0 / limit as f64).round() / 10.0),
        _ => Value::Null,
    }
}

fn max_pct(values: impl Iterator<Item = Value>) -> Value {
    values
        .filter_map(|v| v.as_f64())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map_or(Value::Null, |v| json!(v))
}

/// Container requests and limits from the pod spec, by pod and container name.
type Resources = HashMap<(String, String), (Option<u64>, Option<u64>, Option<u64>, Option<u64>)>;

fn resources(pods: &[Pod]) -> Resources {
    let mut out = HashMap::new();
    for pod in pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &pod.spec else { continue };
        for c in &spec.containers {
            let r = c.resources.as_ref();
            let get =
                |map: Option<
                    &std::collections::BTreeMap<
                        String,
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                    >,
                >,
                 key: &str| { map.and_then(|m| m.get(key)).map(|q| json!(q.0)) };
            let requests = r.and_then(|r| r.requests.as_ref());
            let limits = r.and_then(|r| r.limits.as_ref());
            out.insert(
                (pod_name.clone(), c.name.clone()),
                (
                    millicores(get(requests, "cpu").as_ref()),
                    millicores(get(limits, "cpu").as_ref()),
                    bytes(get(requests, "memory").as_ref()),
                    bytes(get(limits, "memory").as_ref()),
                ),
            );
        }
    }
    out
}

fn summarize_pods(metrics: &[Value], pods: &[Pod]) -> Outputs {
    let specs = resources(pods);
    let mut list = Vec::new();
    let (mut cpu_total, mut mem_total) = (0u64, 0u64);
    let (mut cpu_pcts, mut mem_pcts) = (Vec::new(), Vec::new());
    for m in metrics {
        let name = m["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut containers = Vec::new();
        let (mut cpu_pod, mut mem_pod) = (0u64, 0u64);
        for c in m["containers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            let cpu = millicores(c.pointer("/usage/cpu")).unwrap_or(0);
            let mem = bytes(c.pointer("/usage/memory")).unwrap_or(0);
            cpu_pod += cpu;
            mem_pod += mem;
            let (cpu_req, cpu_lim, mem_req, mem_lim) = specs
                .get(&(name.clone(), cname.clone()))
                .copied()
                .unwrap_or((None, None, None, None));
            let cpu_pct = pct(cpu, cpu_lim);
            let mem_pct = pct(mem, mem_lim);
            cpu_pcts.push(cpu_pct.clone());
            mem_pcts.push(mem_pct.clone());
            containers.push(json!({
                "name": cname,
                "cpu_millicores": cpu,
                "memory_bytes": mem,
                "cpu_request_millicores": cpu_req,
                "cpu_limit_millicores": cpu_lim,
                "memory_request_bytes": mem_req,
                "memory_limit_bytes": mem_lim,
                "cpu_pct_of_limit": cpu_pct,
                "memory_pct_of_limit": mem_pct,
            }));
        }
        cpu_total += cpu_pod;
        mem_total += mem_pod;
        list.push(json!({
            "name": name,
            "cpu_millicores": cpu_pod,
            "memory_bytes": mem_pod,
            "containers": containers,
        }));
    }
    outputs(
        Totals {
            cpu: cpu_total,
            memory: mem_total,
            cpu_pcts,
            mem_pcts,
        },
        list,
        Vec::new(),
    )
}

fn summarize_nodes(metrics: &[Value], nodes: &[Node]) -> Outputs {
    let allocatable: HashMap<String, (Option<u64>, Option<u64>)> = nodes
        .iter()
        .map(|n| {
            let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
            let q = |k: &str| alloc.and_then(|a| a.get(k)).map(|q| json!(q.0));
            (
                n.metadata.name.clone().unwrap_or_default(),
                (millicores(q("cpu").as_ref()), bytes(q("memory").as_ref())),
            )
        })
        .collect();
    let mut list = Vec::new();
    let (mut cpu_total, mut mem_total) = (0u64, 0u64);
    let (mut cpu_pcts, mut mem_pcts) = (Vec::new(), Vec::new());
    for m in metrics {
        let name = m["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cpu = millicores(m.pointer("/usage/cpu")).unwrap_or(0);
        let mem = bytes(m.pointer("/usage/memory")).unwrap_or(0);
        cpu_total += cpu;
        mem_total += mem;
        let (cpu_alloc, mem_alloc) = allocatable.get(&name).copied().unwrap_or((None, None));
        let (cpu_pct, mem_pct) = (pct(cpu, cpu_alloc), pct(mem, mem_alloc));
        cpu_pcts.push(cpu_pct.clone());
        mem_pcts.push(mem_pct.clone());
        list.push(json!({
            "name": name,
            "cpu_millicores": cpu,
            "memory_bytes": mem,
            "cpu_allocatable_millicores": cpu_alloc,
            "memory_allocatable_bytes": mem_alloc,
            "cpu_pct": cpu_pct,
            "memory_pct": mem_pct,
        }));
    }
    outputs(
        Totals {
            cpu: cpu_total,
            memory: mem_total,
            cpu_pcts,
            mem_pcts,
        },
        Vec::new(),
        list,
    )
}

/// What the measurements sum to.
struct Totals {
    cpu: u64,
    memory: u64,
    cpu_pcts: Vec<Value>,
    mem_pcts: Vec<Value>,
}

/// The outputs of either kind of measurement (the other kind's list stays empty).
fn outputs(t: Totals, pods: Vec<Value>, nodes: Vec<Value>) -> Outputs {
    let mut out = Outputs::new();
    out.insert("count".into(), json!(pods.len() + nodes.len()));
    out.insert("cpu_millicores".into(), json!(t.cpu));
    out.insert("memory_bytes".into(), json!(t.memory));
    out.insert(
        "max_cpu_pct_of_limit".into(),
        max_pct(t.cpu_pcts.into_iter()),
    );
    out.insert(
        "max_memory_pct_of_limit".into(),
        max_pct(t.mem_pcts.into_iter()),
    );
    out.insert("pods".into(), json!(pods));
    out.insert("nodes".into(), json!(nodes));
    out
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn quantities_as_kubernetes_writes_them() {
        let cases = [
            ("250m", 0.25),
            ("1.5", 1.5),
            ("2", 2.0),
            ("12345678n", 0.012345678),
            ("500u", 0.0005),
            ("128974848", 128974848.0),
            ("129e6", 129e6),
            ("123Mi", 123.0 * 1048576.0),
            ("6Gi", 6.0 * 1073741824.0),
            ("100k", 1e5),
            ("1M", 1e6),
            ("1E", 1e18),
            ("1Ki", 1024.0),
        ];
        for (text, want) in cases {
            let got = quantity(text).unwrap_or(f64::NAN);
            assert!(
                (got - want).abs() <= want * 1e-12,
                "{text}: {got} != {want}"
            );
        }
        for bad in ["", "m", "12x", "1.2.3Mi", "Mi"] {
            assert_eq!(quantity(bad), None, "{bad}");
        }
    }
}
