//! Every shipped runbook is loaded, linted and dry-run (human and JSON).

use crate::support::{Cmd, repo};

fn shipped() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("runbooks"))
        .expect("runbooks/")
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().and_then(|x| x.to_str()) == Some("yaml")
                && !opsctl::library::is_test_file(&p))
            .then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .flatten()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_starter_runbooks_exist() {
    let names = shipped();
    for required in ["health", "sev1-outage", "dlq-triage", "rotate-jwt-secret"] {
        assert!(
            names.iter().any(|n| n == required),
            "runbooks/{required}.yaml is missing"
        );
    }
}

#[test]
fn shipped_runbooks_and_config_lint_clean() {
    let out = Cmd::new(&repo())
        // The example configs by name: examples/kubernetes/ holds Kubernetes manifests,
        // which are not runbooks (tests/manifests.rs lints the config they carry).
        .args([
            "lint",
            "runbooks",
            "opsctl.yaml",
            "examples/opsctl.yaml",
            "examples/kubernetes/config/opsctl.yaml",
        ])
        .run();
    out.code(0).stdout_has("No problems found.");
}

#[test]
fn every_shipped_runbook_dry_runs() {
    for name in shipped() {
        let out = Cmd::new(&repo())
            .args(["run", &name, "--dry-run", "--examples"])
            .run();
        out.code(0).stdout_has("Wave 1");
        let json = Cmd::new(&repo())
            .args(["run", &name, "--dry-run", "--examples", "--format", "json"])
            .run();
        json.code(0);
        let doc = json.json();
        assert_eq!(doc["runbook"], name.as_str());
        assert!(!doc["waves"].as_array().expect("waves").is_empty());
        let show = Cmd::new(&repo()).args(["show", &name]).run();
        show.code(0).stdout_has(&format!("# {name}"));
        Cmd::new(&repo())
            .args(["graph", &name])
            .run()
            .code(0)
            .stdout_has("flowchart TD");
    }
}

#[test]
fn list_shows_every_runbook() {
    let out = Cmd::new(&repo()).arg("list").run();
    out.code(0);
    for name in shipped() {
        out.stdout_has(&name);
    }
}
