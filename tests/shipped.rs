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

/// Every runbook of the library dry-runs (`--examples`) and plans nothing against a config
/// whose every target — HTTP, Postgres, Redis and the Kubernetes API server — is a listener
/// that counts connections: none is opened.
#[test]
fn every_runbook_dry_runs_contacting_nothing() {
    use crate::support::Project;
    use crate::support::http_server::CountingListener;
    let l = CountingListener::start_blocking();
    let at = format!("127.0.0.1:{}", l.port());
    let p = Project::new();
    p.file(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {{ server: \"https://{at}\", insecure-skip-tls-verify: true }}\nusers:\n- name: u\n  user: {{ token: t }}\ncontexts:\n- name: c\n  context: {{ cluster: c, user: u, namespace: prod }}\n"
        ),
    );
    let http = format!("{{ base_url: \"http://{at}\" }}");
    p.file(
        "opsctl.yaml",
        &format!(
            r##"runbooks: [{lib}]
envs:
  counted:
    vars: {{ api_host: 127.0.0.1, api_tls_port: {port}, api_selector: app=api, incident_channel: "#x", status_page: "http://{at}" }}
    http: {{ api: {http}, admin: {http}, prometheus: {http}, metrics: {http}, webhook: {http} }}
    postgres:
      primary: {{ url: "postgres://u:p@{at}/db" }}
      replica: {{ url: "postgres://u:p@{at}/db" }}
    redis:
      cache: {{ url: "redis://{at}/0" }}
    kubernetes: {{ context: c }}
"##,
            lib = repo().join("runbooks").display(),
            port = l.port(),
        ),
    );
    for name in shipped() {
        let out = p
            .opsctl()
            .args(["run", &name, "--dry-run", "--examples", "--format", "json"])
            .env("KUBECONFIG", p.path().join("kubeconfig"))
            .run();
        assert_eq!(out.code, 0, "{name}: {out:?}");
    }
    assert_eq!(l.connections(), 0, "a dry run contacted a target");
}
