//! Clean-up that always runs: a `finally` step (and an `always: true` one) runs after a
//! failure and after Ctrl-C, the service shows the undo and the record says so; lint
//! keeps clean-up from reading outputs that may not exist.

use std::time::Duration;

use crate::support::http_server::{Route, TestServer};
use crate::support::{Out, Project};

fn project(server: &TestServer, work: &str) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [.]\nenvs:\n  prod:\n    http:\n      keda: {{ base_url: \"{}\" }}\n",
            server.url()
        ),
    )
    .file(
        "scale-down.yaml",
        &format!(
            r#"name: scale-down
title: Pause the autoscaler, work, resume it
steps:
  - id: pause
    http: {{ target: keda, method: POST, path: /pause }}
  - id: work
    needs: [pause]
    timeout: 60s
    exec: {{ command: [sh, -c, "{work}"], readonly: true }}
  - id: report
    needs: [work]
    exec: {{ command: ["true"], readonly: true }}
  - id: note
    needs: [work]
    always: true
    exec: {{ command: [echo, "work ended ${{{{ steps.work.status }}}}"], readonly: true }}
finally:
  - id: resume
    when: steps.pause.status == 'ok'
    http: {{ target: keda, method: POST, path: /resume }}
"#
        ),
    );
    p
}

fn steps(out: &Out) -> std::collections::HashMap<String, serde_json::Value> {
    out.json()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or_default().to_string(), s.clone()))
        .collect()
}

#[test]
fn finally_runs_after_a_failure() {
    let server = TestServer::start_blocking(vec![
        Route::new("POST", "/pause"),
        Route::new("POST", "/resume"),
    ]);
    let p = project(&server, "exit 1");
    let out = p
        .opsctl()
        .args(["run", "scale-down", "--yes", "--format", "json"])
        .run();
    out.code(1);
    let s = steps(&out);
    assert_eq!(s["work"]["status"], "fail");
    assert_eq!(s["report"]["status"], "skipped");
    assert_eq!(s["note"]["outputs"]["stdout"], "work ended fail\n");
    assert_eq!(s["resume"]["status"], "ok");
    assert_eq!(
        server.hits("POST", "/resume"),
        1,
        "the autoscaler was not resumed"
    );
}

#[test]
fn finally_runs_after_ctrl_c_and_the_record_says_so() {
    let server = TestServer::start_blocking(vec![
        Route::new("POST", "/pause"),
        Route::new("POST", "/resume"),
    ]);
    let p = project(&server, "sleep 30");
    let record = p.path().join("run.jsonl");
    let child = p
        .opsctl()
        .args(["run", "scale-down", "--yes", "--format", "json", "--record"])
        .arg(&record)
        .spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&record)
        .unwrap_or_default()
        .contains("\"id\":\"work\"")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the long step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: the pid is our own child's.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = Out::of(child);
    out.code(130)
        .stderr_has("then running the clean-up (note, resume)");
    let s = steps(&out);
    assert_eq!(s["work"]["status"], "cancelled");
    assert_eq!(s["report"]["status"], "cancelled");
    assert_eq!(s["resume"]["status"], "ok", "{:?}", s["resume"]);
    assert_eq!(
        server.hits("POST", "/resume"),
        1,
        "Ctrl-C left the autoscaler paused"
    );
    let text = std::fs::read_to_string(&record).expect("record");
    let resumed = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|e| e["event"] == "step_finished" && e["id"] == "resume" && e["status"] == "ok");
    assert!(resumed, "the record does not show the clean-up");
}

#[test]
fn clean_up_may_not_read_outputs_that_may_be_missing() {
    let server = TestServer::start_blocking(vec![]);
    let p = project(&server, "true");
    p.file(
        "bad.yaml",
        "name: bad\ntitle: Bad\nsteps:\n  - id: pause\n    exec: { command: [echo, '3'], readonly: true }\nfinally:\n  - id: resume\n    exec: { command: [echo, \"${{ steps.pause.outputs.stdout }}\"], readonly: true }\n",
    );
    let out = p.opsctl().args(["lint", "bad.yaml"]).run();
    out.code(1).stdout_has("F001").stdout_has("may not exist");
    p.file(
        "good.yaml",
        "name: good\ntitle: Good\nsteps:\n  - id: pause\n    exec: { command: [echo, '3'], readonly: true }\nfinally:\n  - id: resume\n    when: steps.pause.status == 'ok'\n    exec: { command: [echo, \"${{ steps.pause.outputs.stdout }}\"], readonly: true }\n",
    );
    p.opsctl().args(["lint", "good.yaml"]).run().code(0);
}
