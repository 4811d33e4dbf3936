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
    for entry in std::fs::read_dir(repo().join("runbooks")).expect("runbooks") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut text = std::fs::read_to_string(&path).expect("runbook");
        if name == "sev1-outage.yaml" {
            let right = "when: steps.pods.outputs.crashlooping | default(0) > 0 and";
            assert!(
                text.contains(right),
                "the shipped runbook changed: update this test"
            );
            text = text.replace(
                right,
                "when: steps.pods.outputs.crashlooping | default(0) < 0 and",
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
