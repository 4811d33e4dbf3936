//! `k8s.top` against the test API server's metrics API, compared with what `kubectl top`
//! prints for the same fixture.

use super::Cluster;
use crate::support::Project;

fn top(c: &Cluster, runbook: &str) -> serde_json::Value {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
    )
    .file("t.yaml", runbook);
    let out = p
        .opsctl()
        .args(["run", "t", "--format", "json"])
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    out.code(0);
    out.json()
}

/// `kubectl top` rows: name → the columns after it.
fn kubectl_top(c: &Cluster, args: &[&str]) -> std::collections::HashMap<String, Vec<String>> {
    let out = c.kubectl(args);
    out.code(0);
    out.stdout
        .lines()
        .map(|l| {
            let mut cols = l.split_whitespace().map(str::to_string);
            let name = cols.next().unwrap_or_default();
            (name, cols.collect())
        })
        .collect()
}

#[test]
fn pod_usage_matches_kubectl_top_and_limits_become_percentages() {
    let c = Cluster::start("prod.yaml");
    let doc = top(
        &c,
        "name: t\ntitle: T\nsteps:\n  - id: top\n    k8s.top: { selector: app=api }\n    expect: [\"max_memory_pct_of_limit > 90\"]\n",
    );
    let o = &doc["steps"][0]["outputs"];
    let kubectl = kubectl_top(
        &c,
        &["top", "pods", "-n", "prod", "-l", "app=api", "--no-headers"],
    );
    let pods = o["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), kubectl.len(), "{o}\n{kubectl:?}");
    assert!(!pods.is_empty());
    for pod in pods {
        let name = pod["name"].as_str().unwrap_or_default();
        let row = &kubectl[name];
        let cpu = pod["cpu_millicores"].as_u64().unwrap_or_default();
        let mem = pod["memory_bytes"].as_u64().unwrap_or_default();
        assert_eq!(row[0], format!("{cpu}m"), "{name}");
        assert_eq!(row[1], format!("{}Mi", mem / (1024 * 1024)), "{name}");
    }
    let oom = pods
        .iter()
        .find(|p| p["name"] == "api-7c9d8f6b5-oom")
        .expect("the pod with a limit");
    let container = &oom["containers"][0];
    assert_eq!(container["memory_limit_bytes"], 256 * 1024 * 1024);
    assert_eq!(container["memory_pct_of_limit"], 97.7);
    assert_eq!(o["max_memory_pct_of_limit"], 97.7);
    assert!(
        o["max_cpu_pct_of_limit"].is_null(),
        "no CPU limit anywhere: {o}"
    );
    let sum: u64 = pods
        .iter()
        .filter_map(|p| p["cpu_millicores"].as_u64())
        .sum();
    assert_eq!(o["cpu_millicores"], sum);
}

#[test]
fn node_usage_matches_kubectl_top_nodes() {
    let c = Cluster::start("prod.yaml");
    let doc = top(
        &c,
        "name: t\ntitle: T\nsteps:\n  - id: top\n    k8s.top: { node: all }\n",
    );
    let o = &doc["steps"][0]["outputs"];
    let kubectl = kubectl_top(&c, &["top", "nodes", "--no-headers"]);
    let nodes = o["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), kubectl.len());
    for node in nodes {
        let row = &kubectl[node["name"].as_str().unwrap_or_default()];
        let cpu = node["cpu_millicores"].as_u64().unwrap_or_default();
        assert_eq!(row[0], format!("{cpu}m"));
        let pct = node["cpu_pct"].as_f64().unwrap_or_default();
        assert_eq!(row[1], format!("{}%", pct.floor()), "{node}");
        let mem = node["memory_bytes"].as_u64().unwrap_or_default();
        assert_eq!(row[2], format!("{}Mi", mem / (1024 * 1024)));
        let mem_pct = node["memory_pct"].as_f64().unwrap_or_default();
        assert_eq!(row[3], format!("{}%", mem_pct.floor()), "{node}");
    }
}
