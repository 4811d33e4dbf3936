//! opsctl's Kubernetes actions against the test API server, checked against what the
//! server holds (and what kubectl reads from it).

use serde_json::Value;

use super::Cluster;
use crate::support::{Out, Project};

/// A project whose environment `prod` points at the cluster's namespace `prod`.
fn project(runbook: &str) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
    )
    .file("k.yaml", runbook);
    p
}

fn run(c: &Cluster, p: &Project, extra: &[&str]) -> (Out, Value) {
    let out = p
        .opsctl()
        .args(["run", "k", "--format", "json"])
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .run();
    let doc = out.json();
    (out, doc)
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[test]
fn pods_are_counted_as_kubectl_shows_them() {
    let c = Cluster::start("prod.yaml");
    let p = project(
        "name: k\ntitle: K\nsteps:\n  - id: pods\n    k8s.pods: { selector: app=api }\n    expect: [\"crashlooping == 1\", \"oom_killed == 1\"]\n",
    );
    let (out, doc) = run(&c, &p, &[]);
    out.code(0);
    let o = &step(&doc, "pods")["outputs"];
    assert_eq!(o["total"], 3, "{o}");
    assert_eq!(o["ready"], 1, "{o}");
    assert_eq!(o["not_ready"], 2, "{o}");
    assert_eq!(o["crashlooping"], 1, "{o}");
    assert_eq!(o["oom_killed"], 1, "{o}");
    assert_eq!(o["restarts"], 9, "{o}");
    let crash = o["pods"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "api-7c9d8f6b5-crash"))
        .expect("the crash-looping pod");
    assert_eq!(crash["reason"], "CrashLoopBackOff");
    assert_eq!(crash["node"], "node-1");
    // kubectl agrees on the count.
    let names = c.kubectl(&["get", "pods", "-n", "prod", "-l", "app=api", "-o", "name"]);
    assert_eq!(names.stdout.lines().count(), 3);
}
