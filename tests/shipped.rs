//! Every shipped runbook is loaded, linted and dry-run (human and JSON).

use crate::support::{Cmd, repo};

fn shipped() -> Vec<String> {
    // Every runbook of the library, the seed systems' (runbooks/<system>/) included.
    let mut names: Vec<String> = opsctl::library::yaml_files(&repo().join("runbooks"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
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

/// The example configs of the seed systems (examples/<system>/opsctl.yaml) and the demo's.
fn example_configs() -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path().join("opsctl.yaml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// The runbook names `opsctl list` shows under a config.
fn listed(config: &std::path::Path) -> Vec<String> {
    let out = Cmd::new(&repo())
        .arg("list")
        .arg("--config")
        .arg(config)
        .run();
    out.code(0);
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn each_example_config_lints_clean_and_dry_runs_every_runbook_it_lists() {
    let configs = example_configs();
    assert!(configs.len() >= 6, "{configs:?}");
    for config in configs {
        let names = listed(&config);
        assert!(!names.is_empty(), "{} lists no runbook", config.display());
        Cmd::new(&repo())
            .arg("lint")
            .arg("--config")
            .arg(&config)
            .run()
            .code(0)
            .stdout_has("No problems found.");
        for name in names {
            let out = Cmd::new(&repo())
                .args(["run", &name, "--dry-run", "--examples", "--format", "json"])
                .arg("--config")
                .arg(&config)
                .run();
            assert_eq!(out.code, 0, "{} · {name}: {out:?}", config.display());
            assert_eq!(out.json()["runbook"], name.as_str());
        }
    }
}
