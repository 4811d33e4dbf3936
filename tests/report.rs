//! `opsctl report RECORD`: a run re-rendered from its record — the JSON equals the run's
//! own, the markdown reads as a postmortem timeline, a killed run still renders.

use std::time::Duration;

use crate::support::Project;
use crate::support::http_server::{Route, TestServer};

fn incident(p: &Project, server: &TestServer) {
    p.runbook(
        "incident",
        &format!(
            r#"name: incident
title: API is down
params:
  namespace: {{ default: prod }}
steps:
  - id: health
    http: {{ url: "{u}/health" }}
  - id: db
    http: {{ url: "{u}/db" }}
  - id: after-db
    needs: [db]
    http: {{ url: "{u}/health" }}
  - id: check-by-hand
    manual: {{ instructions: "Look at the dashboard" }}
  - id: restart
    needs: [health]
    http: {{ url: "{u}/restart", method: POST }}
"#,
            u = server.url()
        ),
    );
}

#[test]
fn report_json_equals_the_runs_own_and_markdown_is_a_timeline() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/health"),
        Route::new("GET", "/db").status(503),
        Route::new("POST", "/restart"),
    ]);
    let p = Project::new();
    incident(&p, &server);
    let record = p.path().join("run.jsonl");
    let out = p
        .opsctl()
        .args([
            "run",
            "incident",
            "--yes",
            "--yes-manual",
            "--format",
            "json",
            "--record",
        ])
        .arg(&record)
        .run();
    out.code(1);
    let live = out.json();

    let json = p
        .opsctl()
        .args(["report", "--format", "json"])
        .arg(&record)
        .run();
    json.code(0);
    assert_eq!(json.json(), live);

    let md = p
        .opsctl()
        .args(["report", "--format", "markdown"])
        .arg(&record)
        .run();
    md.code(0)
        .stdout_has("# Postmortem timeline: incident — API is down")
        .stdout_has("| Result | **failed**")
        .stdout_has("`namespace=prod`")
        .stdout_has("| `db` | **fail**")
        .stdout_has("HTTP 503")
        .stdout_has("Confirmation: **confirmed** by --yes")
        .stdout_has("Confirmation: **confirmed** by --yes-manual")
        .stdout_has("## What failed")
        .stdout_has("skipped because of it: `after-db`")
        .stdout_has("Run ended: **failed**");
    let first_row = md
        .stdout
        .lines()
        .find(|l| l.contains("Run started by"))
        .expect("start row");
    assert!(first_row.contains("| 0.0 |"), "{first_row}");

    let human = p.opsctl().arg("report").arg(&record).run();
    human
        .code(0)
        .stdout_has("FAILED")
        .stdout_has("skipped because of it: after-db");

    // The first record line says what wrote it.
    let text = std::fs::read_to_string(&record).expect("record");
    let header: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    assert_eq!(header["event"], "record");
    assert_eq!(header["format"], 1);
    assert_eq!(header["runbook"], "incident");
    assert!(header["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(header["user"].as_str().is_some_and(|h| !h.is_empty()));
}

#[test]
fn without_user_in_the_environment_the_record_names_the_uid_owner() {
    let server = TestServer::start_blocking(vec![Route::new("GET", "/health")]);
    let p = Project::new();
    p.runbook(
        "one",
        &format!(
            "name: one\ntitle: One\nsteps:\n  - id: a\n    http: {{ url: \"{}/health\" }}\n",
            server.url()
        ),
    );
    let record = p.path().join("r.jsonl");
    p.opsctl()
        .args(["run", "one", "--record"])
        .arg(&record)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .run()
        .code(0);
    let text = std::fs::read_to_string(&record).expect("record");
    let header: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    let user = header["user"].as_str().unwrap_or("");
    assert!(!user.is_empty() && user != "unknown", "{header}");
}

#[test]
fn a_record_cut_off_by_sigkill_still_renders_up_to_its_last_event() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/fast"),
        Route::new("GET", "/slow").delay(Duration::from_secs(30)),
    ]);
    let p = Project::new();
    p.runbook(
        "hang",
        &format!(
            "name: hang\ntitle: Hangs\nsteps:\n  - id: fast\n    http: {{ url: \"{u}/fast\" }}\n  - id: slow\n    http: {{ url: \"{u}/slow\" }}\n    timeout: 60s\n",
            u = server.url()
        ),
    );
    let record = p.path().join("r.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsctl"))
        .current_dir(p.path())
        .args(["run", "hang", "--record"])
        .arg(&record)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    for _ in 0..250 {
        if server.hits("GET", "/slow") > 0
            && std::fs::read_to_string(&record)
                .unwrap_or_default()
                .contains(r#"{"event":"step_finished","path":"fast""#)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Tear the last line too, as a kill in mid-write would.
    let mut text = std::fs::read_to_string(&record).expect("record");
    text.push_str("{\"event\":\"step_fini");
    std::fs::write(&record, text).expect("write");

    let md = p
        .opsctl()
        .args(["report", "--format", "markdown"])
        .arg(&record)
        .run();
    md.code(0)
        .stdout_has("| Result | **unfinished**")
        .stdout_has("| `fast` | **ok**")
        .stdout_has("the record stops here")
        .stderr_has("cut short");
    let json = p
        .opsctl()
        .args(["report", "--format", "json"])
        .arg(&record)
        .run();
    json.code(0);
    assert_eq!(json.json()["status"], "unfinished");
}

#[test]
fn an_unreadable_record_exits_2() {
    let p = Project::new();
    p.file("bad.jsonl", "not json\n{}\n");
    p.opsctl()
        .args(["report", "bad.jsonl"])
        .run()
        .code(2)
        .stderr_has("bad.jsonl:1");
    p.opsctl().args(["report", "missing.jsonl"]).run().code(2);
}
