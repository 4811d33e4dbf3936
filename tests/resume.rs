//! `run --resume RECORD`: a run that failed at step 4 of 8 (its service down), resumed
//! after the service is back, runs steps 4–8 only — steps 1–3 are not contacted again,
//! their recorded outputs are reused — and ends ok; the new record names the old run.

use crate::support::Project;
use crate::support::http_server::{Route, TestServer};

#[test]
fn a_failed_run_resumes_where_it_failed_without_contacting_what_succeeded() {
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/one"),
        Route::new("GET", "/two"),
        Route::new("GET", "/three"),
        Route::new("GET", "/four").sequence(vec![(503, "down".into()), (200, "up".into())]),
        Route::new("GET", "/five"),
        Route::new("GET", "/six"),
        Route::new("GET", "/seven"),
        Route::new("GET", "/eight"),
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
        "eight.yaml",
        r#"name: eight
title: Eight steps
params:
  tenant: { default: acme }
steps:
  - { id: s1, http: { target: api, path: "/one?t=${{ params.tenant }}" } }
  - { id: s2, needs: [s1], http: { target: api, path: /two } }
  - { id: s3, needs: [s2], http: { target: api, path: /three } }
  - { id: s4, needs: [s3], http: { target: api, path: /four } }
  - { id: s5, needs: [s4], http: { target: api, path: "/five?from=${{ steps.s1.outputs.status }}" } }
  - { id: s6, needs: [s5], http: { target: api, path: /six } }
  - { id: s7, needs: [s4], http: { target: api, path: /seven } }
  - { id: s8, needs: [s6, s7], http: { target: api, path: /eight } }
"#,
    );
    let first = p.path().join("first.jsonl");
    p.opsctl()
        .args(["run", "eight", "--param", "tenant=globex", "--record"])
        .arg(&first)
        .run()
        .code(1);
    assert_eq!(server.hits("GET", "/four"), 1);
    assert_eq!(server.hits("GET", "/five"), 0);

    let second = p.path().join("second.jsonl");
    let out = p
        .opsctl()
        .args(["run", "--format", "json", "--record"])
        .arg(&second)
        .arg("--resume")
        .arg(&first)
        .run();
    out.code(0).stderr_has("running again s4, s5, s6, s7, s8");
    for (path, hits) in [
        ("/one", 1),
        ("/two", 1),
        ("/three", 1),
        ("/four", 2),
        ("/five", 1),
        ("/eight", 1),
    ] {
        assert_eq!(server.hits("GET", path), hits, "{path}");
    }
    let five = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/five")
        .expect("step 5 ran");
    assert_eq!(
        five.query.as_deref(),
        Some("from=200"),
        "s1's recorded outputs were reused"
    );
    let one = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/one")
        .expect("s1");
    assert_eq!(one.query.as_deref(), Some("t=globex"));
    let doc = out.json();
    assert_eq!(doc["status"], "ok");
    let s1 = &doc["steps"][0];
    assert!(
        s1["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reused from run ")),
        "{s1}"
    );
    let old_id = std::fs::read_to_string(&first).expect("first record");
    let old: serde_json::Value =
        serde_json::from_str(old_id.lines().next().unwrap_or_default()).expect("header");
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&second)
            .expect("second record")
            .lines()
            .next()
            .unwrap_or_default(),
    )
    .expect("header");
    assert_eq!(header["resumes"], old["run_id"]);
    assert_eq!(header["params"]["tenant"], "globex");

    // A run that ended ok has nothing to resume.
    p.opsctl()
        .arg("run")
        .arg("--resume")
        .arg(&second)
        .run()
        .code(2)
        .stderr_has("nothing to resume");
}
