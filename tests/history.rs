//! `opsctl history`: past runs from the records directory, newest first, filtered by
//! runbook, limited, as text and JSON; a record cut short reads as `unfinished`.

use crate::support::Project;
use crate::support::http_server::{Route, TestServer};

#[test]
fn past_runs_newest_first_with_what_failed() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/ok"),
        Route::new("GET", "/down").status(503),
    ]);
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [.]\nenvs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\" }}\n",
            server.url()
        ),
    )
    .file(
        "check.yaml",
        "name: check\ntitle: Check\nsteps:\n  - id: ok\n    http: { target: api, path: /ok }\n",
    )
    .file(
        "outage.yaml",
        "name: outage\ntitle: Outage\nsteps:\n  - id: api\n    http: { target: api, path: /down }\n",
    );
    p.opsctl()
        .args(["history"])
        .run()
        .code(0)
        .stdout_has("no runs recorded");
    p.opsctl().args(["run", "check"]).run().code(0);
    p.opsctl().args(["run", "outage"]).run().code(1);
    p.opsctl().args(["run", "check"]).run().code(0);

    let out = p.opsctl().args(["history", "--format", "json"]).run();
    out.code(0);
    let runs = out.json();
    let runs = runs.as_array().expect("a list");
    let order: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["runbook"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [("check", "ok"), ("outage", "failed"), ("check", "ok")]
    );
    assert_eq!(runs[1]["failed"], serde_json::json!(["api"]));
    assert_eq!(runs[1]["env"], "prod");
    assert!(
        runs[1]["record"]
            .as_str()
            .is_some_and(|r| r.ends_with(".jsonl"))
    );

    let only = p
        .opsctl()
        .args(["history", "outage", "--format", "json"])
        .run();
    assert_eq!(only.json().as_array().map(Vec::len), Some(1));
    let limited = p
        .opsctl()
        .args(["history", "--limit", "2", "--format", "json"])
        .run();
    assert_eq!(limited.json().as_array().map(Vec::len), Some(2));

    // A record cut short (opsctl killed) is listed as unfinished.
    let record = runs[1]["record"].as_str().unwrap_or_default().to_string();
    let text = std::fs::read_to_string(&record).expect("record");
    let cut: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&record, cut.join("\n") + "\n").expect("cut the record");
    let human = p.opsctl().args(["history"]).run();
    human.code(0).stdout_has("outage").stdout_has("unfinished");
}
