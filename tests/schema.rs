//! `opsctl schema`: a valid JSON Schema that accepts every shipped runbook and rejects
//! unknown keys; the committed copy editors point at matches it.

use std::sync::Arc;

use crate::support::{Cmd, repo};

fn schema() -> serde_json::Value {
    let out = Cmd::new(&repo()).arg("schema").run();
    out.code(0);
    out.json()
}

fn yaml_to_json(text: &str) -> serde_json::Value {
    let file = opsctl::source::SourceFile::new("x.yaml", text);
    opsctl::yaml::parse(&Arc::clone(&file))
        .expect("valid YAML")
        .to_json()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
}

#[test]
fn schema_accepts_every_shipped_runbook_and_the_full_fixture() {
    let v = validator();
    let mut files = opsctl::library::yaml_files(&repo().join("runbooks"));
    files.push(repo().join("tests/fixtures/valid/every-feature.yaml"));
    files.push(repo().join("tests/fixtures/valid/small-check.yaml"));
    for f in files {
        let doc = yaml_to_json(&std::fs::read_to_string(&f).expect("read"));
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{} rejected: {errors:#?}", f.display());
    }
}

#[test]
fn schema_rejects_unknown_keys_and_two_actions() {
    let v = validator();
    let base = "name: x\ntitle: X\nsteps:\n  - id: a\n    tcp: { host: h, port: 1 }\n";
    assert!(v.is_valid(&yaml_to_json(base)));
    for bad in [
        "name: x\ntitle: X\nstpes: []\nsteps:\n  - id: a\n    tcp: { host: h, port: 1 }\n",
        "name: x\ntitle: X\nsteps:\n  - id: a\n    nedds: [b]\n    tcp: { host: h, port: 1 }\n",
        "name: x\ntitle: X\nsteps:\n  - id: a\n    tcp: { host: h, port: 1, prot: 2 }\n",
        "name: x\ntitle: X\nsteps:\n  - id: a\n    tcp: { host: h, port: 1 }\n    http: { url: u }\n",
        "name: x\ntitle: X\nsteps:\n  - id: a\n    timeout: 5s\n",
        "name: x\ntitle: X\nseverity: sev7\nsteps:\n  - id: a\n    tcp: { host: h, port: 1 }\n",
        "name: x\ntitle: X\nsteps:\n  - id: a\n    k8s.rollout: { deployment: d, action: restrat }\n",
    ] {
        assert!(!v.is_valid(&yaml_to_json(bad)), "accepted:\n{bad}");
    }
}

#[test]
fn committed_schema_file_is_up_to_date() {
    let committed = std::fs::read_to_string(repo().join("schema/runbook.schema.json"))
        .expect("schema/runbook.schema.json");
    let committed: serde_json::Value = serde_json::from_str(&committed).expect("JSON");
    assert_eq!(
        committed,
        schema(),
        "schema/runbook.schema.json is stale: run `cargo run -- schema > schema/runbook.schema.json`"
    );
}
