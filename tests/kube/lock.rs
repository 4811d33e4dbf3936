//! The team lock as a Kubernetes Lease on the test API server, read back with kubectl:
//! held during the run, gone after it; a second run names the holder; a stale lease is
//! taken over and said so.

use std::time::Duration;

use super::Cluster;
use crate::support::{Out, Project};

fn project(c: &Cluster) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    kubernetes: { namespace: prod }\n",
    )
    .file(
        "fix.yaml",
        "name: fix\ntitle: Fix\nsteps:\n  - id: look\n    k8s.pods: { selector: app=api }\n  - id: restart\n    needs: [look]\n    exec: { command: [sleep, \"3\"] }\n",
    );
    let _ = c;
    p
}

fn opsctl(c: &Cluster, p: &Project, extra: &[&str]) -> crate::support::Cmd {
    p.opsctl()
        .args(["run", "fix", "--yes", "--format", "json"])
        .args(extra)
        .env("KUBECONFIG", c.server.kubeconfig())
        .env("USER", "alice")
}

fn lease(c: &Cluster) -> Option<serde_json::Value> {
    let out = c.kubectl(&[
        "get",
        "lease",
        "-n",
        "prod",
        "opsctl-fix-prod",
        "-o",
        "json",
    ]);
    (out.code == 0).then(|| out.json())
}

#[test]
fn the_lease_is_held_during_the_run_and_gone_after_it() {
    let c = Cluster::start("prod.yaml");
    let p = project(&c);
    let first = opsctl(&c, &p, &[]).spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let held = loop {
        if let Some(l) = lease(&c) {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "no lease appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    let holder = held["spec"]["holderIdentity"].as_str().unwrap_or_default();
    assert!(holder.starts_with("alice@"), "{held}");
    assert_eq!(held["spec"]["leaseDurationSeconds"], 30);
    assert_eq!(
        held["metadata"]["annotations"]["opsctl.dev/step"],
        "restart"
    );

    let second = opsctl(&c, &p, &[]).run();
    second.code(1);
    let message = second.json()["steps"][1]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("being handled by alice@"), "{message}");

    let first = Out::of(first);
    first.code(0);
    let run_id = first.json()["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        held["metadata"]["annotations"]["opsctl.dev/run-id"],
        run_id.as_str()
    );
    assert!(lease(&c).is_none(), "the lease outlived the run");
    let listed = c.kubectl(&["get", "lease", "-n", "prod"]);
    assert!(!listed.stdout.contains("opsctl-fix-prod"), "{listed:?}");
}

#[test]
fn a_stale_lease_is_taken_over_and_said_so() {
    let c = Cluster::start("prod.yaml");
    let p = project(&c);
    let stale = chrono::Utc::now() - chrono::Duration::minutes(5);
    let at = stale.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let manifest = c.file(
        "lease.yaml",
        &format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: opsctl-fix-prod\n  namespace: prod\n  annotations: {{ opsctl.dev/run-id: ghost-run }}\nspec:\n  holderIdentity: bob@gone\n  leaseDurationSeconds: 30\n  acquireTime: \"{at}\"\n  renewTime: \"{at}\"\n"
        ),
    );
    c.kubectl(&["apply", "-f", &manifest]).code(0);
    let out = opsctl(&c, &p, &[]).run();
    out.code(0)
        .stderr_has("took over the team lock")
        .stderr_has("bob@gone");
    assert!(lease(&c).is_none());
}
