//! `opsctl test`: the shipped runbooks' cases pass; a `when` changed to the wrong
//! comparison fails, naming the case and the step; a broken case file could not run.

use crate::support::{Cmd, Project, repo};

#[test]
fn shipped_cases_pass_and_a_wrong_comparison_is_caught() {
    let out = Cmd::new(&repo()).args(["test"]).run();
    out.code(0).stdout_has("0 failed, 0 could not run");

    // The same runbooks with one `when` turned the wrong way.
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &std::fs::read_to_string(repo().join("opsctl.yaml")).expect("config"),
    );
    let runbooks = repo().join("runbooks");
    let mut files = opsctl::library::yaml_files(&runbooks);
    // The cases beside them too (yaml_files leaves test files out).
    files.extend(
        files
            .clone()
            .iter()
            .map(|f| f.with_extension("test.yaml"))
            .filter(|f| f.is_file()),
    );
    for path in files {
        let name = path
            .strip_prefix(&runbooks)
            .expect("under runbooks/")
            .to_string_lossy()
            .into_owned();
        let mut text = std::fs::read_to_string(&path).expect("runbook");
        if name == "sev1-outage.yaml" {
            // The restart's condition, turned the wrong way.
            let right =
                "crashlooping | default(0) > 0 and steps.db.status != 'error'\n      and not";
            assert!(
                text.contains(right),
                "the shipped runbook changed: update this test"
            );
            text = text.replace(
                right,
                "crashlooping | default(0) < 0 and steps.db.status != 'error'\n      and not",
            );
        }
        p.file(&format!("runbooks/{name}"), &text);
    }
    let out = p.opsctl().args(["test"]).run();
    out.code(1)
        .stdout_has(
            "FAIL  sev1-outage: crash-looping pods with the database up are restarted and verified",
        )
        .stdout_has("step `restart` was expected to run but ended skipped");

    // A case file that does not parse, or names a step that does not exist: exit 2.
    p.file(
        "runbooks/health.test.yaml",
        "cases:\n  - name: x\n    expect: { ran: [no-such-step] }\n",
    );
    p.opsctl()
        .args(["test", "runbooks/health.test.yaml"])
        .run()
        .code(2)
        .stdout_has("no step `no-such-step`");
    p.file("runbooks/health.test.yaml", "cases: [{ nme: typo }]\n");
    p.opsctl()
        .args(["test", "runbooks/health.test.yaml"])
        .run()
        .code(2);
}

#[test]
fn an_incident_record_becomes_a_regression_test() {
    use crate::support::http_server::{Route, TestServer};
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/depth").json(serde_json::json!({"pending": 1500})),
        Route::new("POST", "/drain"),
    ]);
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [runbooks]\nenvs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\" }}\n",
            server.url()
        ),
    )
    .file(
        "runbooks/queue.yaml",
        r#"name: queue
title: Queue backlog
steps:
  - id: depth
    http: { target: api, path: /depth }
    capture: { pending: "json.pending" }
    fail_if: ["pending > 1000"]
  - id: drain
    needs: [depth]
    http: { target: api, method: POST, path: /drain }
  - id: page
    needs: [depth]
    when: steps.depth.status == 'fail'
    exec: { command: ["true"], readonly: true }
"#,
    );
    let record = p.path().join("incident.jsonl");
    p.opsctl()
        .args(["run", "queue", "--yes", "--record"])
        .arg(&record)
        .run()
        .code(1);
    let made = p
        .opsctl()
        .args(["test", "--from-record"])
        .arg(&record)
        .run();
    made.code(0);
    p.file("runbooks/queue.test.yaml", &made.stdout);
    let out = p.opsctl().args(["test"]).run();
    out.code(0).stdout_has("1 passed");
    assert_eq!(
        server.hits("POST", "/drain"),
        0,
        "the failed check's dependent never ran"
    );
    let requests = server.requests().len();

    // Someone raises the threshold: the incident's case now fails, naming the step.
    let runbook = p
        .read("runbooks/queue.yaml")
        .replace("pending > 1000", "pending > 5000");
    p.file("runbooks/queue.yaml", &runbook);
    let out = p.opsctl().args(["test", "--format", "github"]).run();
    out.code(1)
        .stdout_has("::error file=")
        .stdout_has("step `depth` was expected to end fail but ended ok");
    assert_eq!(
        server.requests().len(),
        requests,
        "opsctl test contacted the server"
    );
}
