//! opsctl through the cluster, against the test API server's streaming subresources:
//! Postgres and Redis targets `via: k8s` (Service, pod, selector) answer as the direct
//! targets do, many steps share the pool's few forwards, and `k8s.exec` runs real
//! commands in a pod with real exit codes and streams.

use serde_json::Value;

use super::{Cluster, fixture};
use crate::support::{Project, service_url};

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

fn streams() -> Cluster {
    Cluster::with_vars(
        &fixture("streams.yaml"),
        &[],
        &[
            (
                "OPSCTL_TEST_PG_ADDR",
                host_port(&service_url("OPSCTL_TEST_DATABASE_URL")),
            ),
            (
                "OPSCTL_TEST_REDIS_ADDR",
                host_port(&service_url("OPSCTL_TEST_REDIS_URL")),
            ),
        ],
    )
}

/// Direct targets and the same servers through the cluster, several ways.
fn project(runbook: &str) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n    postgres:\n      direct: { url_env: OPSCTL_TEST_DATABASE_URL }\n      svc: { url_env: OPSCTL_TEST_DATABASE_URL, pool: 5, via: { k8s: { service: db } } }\n      pod: { url_env: OPSCTL_TEST_DATABASE_URL, via: { k8s: { pod: db-0, port: 5432 } } }\n      astray: { url_env: OPSCTL_TEST_DATABASE_URL, via: { k8s: { pod: redis-0 } } }\n    redis:\n      direct: { url_env: OPSCTL_TEST_REDIS_URL }\n      svc: { url_env: OPSCTL_TEST_REDIS_URL, via: { k8s: { service: redis, port: 16379 } } }\n      sel: { url_env: OPSCTL_TEST_REDIS_URL, via: { k8s: { selector: app=redis } } }\n",
    )
    .file("v.yaml", runbook);
    p
}

fn run(c: &Cluster, p: &Project, extra: &[&str]) -> Value {
    let out = run_out(c, p, extra);
    out.code(0);
    out.json()
}

fn run_out(c: &Cluster, p: &Project, extra: &[&str]) -> crate::support::Out {
    p.opsctl()
        .args(["run", "v", "--format", "json"])
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env(
            "OPSCTL_TEST_DATABASE_URL",
            service_url("OPSCTL_TEST_DATABASE_URL"),
        )
        .env(
            "OPSCTL_TEST_REDIS_URL",
            service_url("OPSCTL_TEST_REDIS_URL"),
        )
        .run()
}

fn outputs<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .map(|s| &s["outputs"])
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

fn forwards(c: &Cluster) -> usize {
    c.server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .count()
}

#[test]
fn postgres_and_redis_via_the_cluster_answer_as_directly() {
    let c = streams();
    let query = "SELECT current_database() AS db, current_user AS who, 6 * 7 AS answer";
    let mut yaml = String::from("name: v\ntitle: V\nsteps:\n");
    for t in ["direct", "svc", "pod"] {
        yaml.push_str(&format!(
            "  - id: pg-{t}\n    postgres: {{ target: {t}, query: \"{query}\" }}\n"
        ));
    }
    for t in ["direct", "svc", "sel"] {
        yaml.push_str(&format!(
            "  - id: redis-{t}\n    redis: {{ target: {t}, command: [DBSIZE] }}\n  - id: ping-{t}\n    redis: {{ target: {t}, command: [PING] }}\n"
        ));
    }
    let doc = run(&c, &project(&yaml), &[]);
    let direct = &outputs(&doc, "pg-direct")["rows"];
    assert_eq!(direct[0]["answer"], 42, "{doc}");
    for t in ["svc", "pod"] {
        assert_eq!(&outputs(&doc, &format!("pg-{t}"))["rows"], direct, "{t}");
    }
    for t in ["svc", "sel"] {
        assert_eq!(
            outputs(&doc, &format!("redis-{t}"))["value"],
            outputs(&doc, "redis-direct")["value"]
        );
        assert_eq!(outputs(&doc, &format!("ping-{t}"))["value"], "PONG");
    }
    assert!(forwards(&c) >= 4, "the tunnels went through the API server");

    // The traffic really travels the forward: a target whose URL reaches Postgres directly,
    // but whose forward leads to a pod with nothing on that port, cannot connect.
    let astray = project(&format!(
        "name: v\ntitle: V\nsteps:\n  - id: astray\n    timeout: 10s\n    postgres: {{ target: astray, query: \"{query}\" }}\n"
    ));
    let out = run_out(&c, &astray, &[]);
    out.code(1);
    let step = &out.json()["steps"][0];
    assert_eq!(step["status"], "error", "{step}");
}

#[test]
fn twenty_steps_share_the_pools_few_forwards() {
    let c = streams();
    let mut yaml = String::from("name: v\ntitle: V\nsteps:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  - id: q{i}\n    postgres: {{ target: svc, query: \"SELECT pg_backend_pid() AS pid, pg_sleep(0.2)::text AS slept\" }}\n"
        ));
    }
    let doc = run(&c, &project(&yaml), &[]);
    let mut pids: Vec<i64> = (0..20)
        .map(|i| {
            outputs(&doc, &format!("q{i}"))["rows"][0]["pid"]
                .as_i64()
                .unwrap_or(-1)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert!(
        pids.len() <= 5 && pids.iter().all(|p| *p > 0),
        "20 steps, pool 5: {} connections ({pids:?})",
        pids.len()
    );
    // One forward proves the way, then one per pooled connection.
    let n = forwards(&c);
    assert!((2..=6).contains(&n), "{n} port-forwards for a pool of 5");
}

#[test]
fn exec_in_a_pod_gives_the_exit_code_streams_and_json() {
    let c = streams();
    let marker = std::env::temp_dir().join(format!("opsctl-k8s-exec-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let runbook = format!(
        r#"name: v
title: V
steps:
  - id: probe
    k8s.exec:
      pod: tools-0
      command: [sh, -c, 'printf "{{\"pod\": \"%s\", \"n\": 3}}" "$POD_NAME"; echo oops >&2; exit 3']
      readonly: true
    expect: ["exit_code == 3", "json.n == 3"]
  - id: by-selector
    k8s.exec: {{ selector: app=tools, command: [sh, -c, "echo $POD_NAME"], readonly: true }}
  - id: change
    k8s.exec: {{ pod: tools-0, command: [sh, -c, "touch {}"] }}
"#,
        marker.display()
    );
    let p = project(&runbook);
    // Without a yes the mutating exec never reaches the pod.
    let doc = run(&c, &p, &[]);
    let probe = outputs(&doc, "probe");
    assert_eq!(probe["exit_code"], 3, "{doc}");
    assert_eq!(probe["json"]["pod"], "tools-0");
    assert_eq!(probe["stderr"], "oops\n");
    assert_eq!(outputs(&doc, "by-selector")["stdout"], "tools-0\n");
    let change = doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "change"))
        .expect("change");
    assert_eq!(change["status"], "skipped", "{change}");
    assert!(!marker.exists(), "a mutating exec ran without a yes");
    // With one, it does.
    run(&c, &p, &["--yes", "--only", "change"]);
    assert!(marker.exists(), "the confirmed exec did not run");
    let _ = std::fs::remove_file(&marker);
}
