//! `foreach`: a step once per item, bounded by `max_parallel` (counted by the server), its
//! results and counts as outputs; a mutating loop asks once for the whole list; `max`
//! refuses a longer list before anything is sent.

use std::time::Duration;

use crate::support::Project;
use crate::support::http_server::{Route, TestServer};

fn project(server: &TestServer, runbook: &str) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [.]\nenvs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\" }}\n",
            server.url()
        ),
    )
    .file("loop.yaml", runbook);
    p
}

#[test]
fn fifty_items_never_more_than_five_in_flight() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/job").delay(Duration::from_millis(50)),
    ]);
    let p = project(
        &server,
        r#"name: loop
title: Loop
steps:
  - id: check
    foreach: range(50) | list
    as: n
    max_parallel: 5
    http: { target: api, path: "/job?n=${{ n }}" }
    expect: ["status == 200"]
  - id: after
    needs: [check]
    exec: { command: [echo, "${{ steps.check.outputs.ok }} of ${{ steps.check.outputs.count }}"], readonly: true }
"#,
    );
    p.opsctl().args(["lint"]).run().code(0);
    let out = p.opsctl().args(["run", "loop", "--format", "json"]).run();
    out.code(0);
    let doc = out.json();
    let check = &doc["steps"][0];
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(check["outputs"]["count"], 50);
    assert_eq!(
        check["outputs"]["results"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(check["outputs"]["results"][7]["item"], 7);
    assert_eq!(doc["steps"][1]["outputs"]["stdout"], "50 of 50\n");
    assert_eq!(server.hits("GET", "/job"), 50);
    assert!(
        server.max_in_flight() <= 5 && server.max_in_flight() >= 4,
        "{} in flight with max_parallel 5",
        server.max_in_flight()
    );
}

#[test]
fn a_mutating_loop_asks_once_and_max_guards_the_count() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/failed").json(serde_json::json!({"jobs": ["j1", "j2", "j3"]})),
        Route::new("POST", "/retry/j1"),
        Route::new("POST", "/retry/j2").status(500),
        Route::new("POST", "/retry/j3"),
    ]);
    let runbook = |max: usize| {
        format!(
            r#"name: loop
title: Retry failed jobs
steps:
  - id: failed
    http: {{ target: api, path: /failed }}
  - id: retry
    needs: [failed]
    foreach: steps.failed.outputs.json.jobs
    as: job
    max: {max}
    http: {{ target: api, method: POST, path: "/retry/${{{{ job }}}}" }}
"#
        )
    };
    let p = project(&server, &runbook(10));
    // No terminal, no --yes: nothing is retried.
    let out = p.opsctl().args(["run", "loop", "--format", "json"]).run();
    out.code(0);
    assert_eq!(out.json()["steps"][1]["status"], "skipped");
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        0
    );

    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args(["run", "loop", "--yes", "--format", "json", "--record"])
        .arg(&record)
        .run();
    out.code(1);
    let retry = &out.json()["steps"][1];
    assert_eq!(retry["status"], "fail", "{retry}");
    assert_eq!(retry["outputs"]["ok"], 2);
    assert_eq!(retry["outputs"]["fail"], 1);
    assert!(
        retry["message"].as_str().is_some_and(|m| m.contains("j2")),
        "{retry}"
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        3
    );
    let asked = std::fs::read_to_string(&record)
        .expect("record")
        .lines()
        .filter(|l| l.contains("\"event\":\"confirmation\""))
        .count();
    assert_eq!(asked, 1, "a mutating loop asks once for the whole list");

    // Three items above max 2: refused, nothing sent.
    let before = server.requests().len();
    p.file("loop.yaml", &runbook(2));
    let out = p
        .opsctl()
        .args(["run", "loop", "--yes", "--format", "json"])
        .run();
    out.code(1);
    let retry = &out.json()["steps"][1];
    assert!(
        retry["message"]
            .as_str()
            .is_some_and(|m| m.contains("above max 2")),
        "{retry}"
    );
    assert_eq!(
        server.requests().len(),
        before + 1,
        "only the list was read"
    );
}
