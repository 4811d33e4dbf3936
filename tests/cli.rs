//! The command line itself: help, completions, man page, exit codes of usage errors.

use crate::support::{Cmd, Project, repo};

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    opsctl::cli::Cli::command().debug_assert();
}

#[test]
fn help_completions_and_man() {
    Cmd::new(&repo())
        .arg("--help")
        .run()
        .code(0)
        .stdout_has("Runbook-as-code");
    Cmd::new(&repo())
        .args(["completions", "bash"])
        .run()
        .code(0)
        .stdout_has("opsctl");
    Cmd::new(&repo())
        .arg("man")
        .run()
        .code(0)
        .stdout_has(".TH opsctl");
}

#[test]
fn unknown_runbook_is_invalid_input() {
    let p = Project::new();
    p.runbook(
        "health",
        "name: health\ntitle: H\nsteps:\n  - id: a\n    tcp: { host: x, port: 1 }\n",
    );
    p.opsctl()
        .args(["run", "helth", "--dry-run"])
        .run()
        .code(2)
        .stderr_has("did you mean `health`?");
}

#[test]
fn graph_formats() {
    let mermaid = Cmd::new(&repo())
        .args([
            "--config",
            "tests/fixtures/valid/opsctl.yaml",
            "graph",
            "every-feature",
        ])
        .run();
    mermaid.code(0).stdout_has("flowchart TD");
    insta::assert_snapshot!("graph_mermaid_every_feature", mermaid.stdout);
    let dot = Cmd::new(&repo())
        .args([
            "--config",
            "tests/fixtures/valid/opsctl.yaml",
            "graph",
            "every-feature",
            "--format",
            "dot",
        ])
        .run();
    dot.code(0).stdout_has("digraph");
}

#[test]
fn show_renders_markdown() {
    let out = Cmd::new(&repo())
        .args([
            "--config",
            "tests/fixtures/valid/opsctl.yaml",
            "show",
            "every-feature",
        ])
        .run();
    out.code(0);
    insta::assert_snapshot!("show_every_feature", out.stdout);
}

#[test]
fn lint_rule_docs_are_up_to_date() {
    let committed =
        std::fs::read_to_string(repo().join("docs/lint-rules.md")).expect("docs/lint-rules.md");
    assert_eq!(
        committed,
        opsctl::rules::markdown(),
        "docs/lint-rules.md is stale: run `cargo run -- lint --explain > docs/lint-rules.md`"
    );
    Cmd::new(&repo())
        .args(["lint", "--explain"])
        .run()
        .code(0)
        .stdout_has("| `X004` | `race` |");
}

#[test]
fn actions_reference_is_generated_from_the_actions() {
    let committed =
        std::fs::read_to_string(repo().join("docs/actions.md")).expect("docs/actions.md");
    let out = Cmd::new(&repo()).args(["actions", "--markdown"]).run();
    out.code(0);
    assert_eq!(
        out.stdout, committed,
        "docs/actions.md is stale: run `cargo run -- actions --markdown > docs/actions.md`"
    );
    Cmd::new(&repo())
        .args(["actions", "k8s.scal"])
        .run()
        .code(2)
        .stderr_has("k8s.scale");
}

#[test]
fn only_takes_several_steps_and_test_takes_a_runbook_name() {
    let out = crate::support::Cmd::new(&crate::support::repo())
        .args([
            "run",
            "sev1-outage",
            "--dry-run",
            "--only",
            "pods,db",
            "--only",
            "redis",
            "--format",
            "json",
        ])
        .run();
    out.code(0);
    let doc = out.json();
    let mut ids: Vec<String> = doc["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .flat_map(|w| w["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    assert_eq!(ids, ["db", "pods", "redis"], "{doc}");
    crate::support::Cmd::new(&crate::support::repo())
        .args(["run", "sev1-outage", "--dry-run", "--only", "pods,podz"])
        .run()
        .code(2)
        .stderr_has("--only podz: no such step");
    crate::support::Cmd::new(&crate::support::repo())
        .args(["test", "sev1-outage"])
        .run()
        .code(0)
        .stdout_has("0 failed");
}
