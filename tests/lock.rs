//! The team lock without a cluster: a lock file held with `flock`. Two runs of one
//! mutating runbook started together: exactly one mutates, the other names the holder (or
//! waits with `--wait-lock`); read-only steps, `plan` and `--dry-run` never wait for it;
//! a killed holder's lock is free at once. Counted by what the mutation wrote, not timed.

use std::time::Duration;

use crate::support::{Out, Project};

fn project() -> Project {
    let p = Project::new();
    let counter = p.path().join("counter.txt");
    p.file("opsctl.yaml", "runbooks: [.]\nenvs:\n  prod:\n    vars: { team: sre }\n")
        .file(
            "fix.yaml",
            &format!(
                "name: fix\ntitle: Fix\nsteps:\n  - id: look\n    exec: {{ command: [\"true\"], readonly: true }}\n  - id: change\n    needs: [look]\n    exec: {{ command: [sh, -c, \"echo changed >> {}; sleep 2\"] }}\n",
                counter.display()
            ),
        );
    p
}

fn changes(p: &Project) -> usize {
    p.read("counter.txt").lines().count()
}

fn wait_for_change(p: &Project) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while changes(p) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never mutated"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn step(out: &Out, id: &str) -> serde_json::Value {
    let doc = out.json();
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no step {id}: {doc}"))
}

#[test]
fn two_runs_started_together_mutate_once_and_the_second_names_the_holder() {
    let p = project();
    let run = || {
        p.opsctl()
            .args(["run", "fix", "--yes", "--format", "json"])
            .spawn()
    };
    let (a, b) = (run(), run());
    let (a, b) = (Out::of(a), Out::of(b));
    assert_eq!(changes(&p), 1, "both runs mutated\n{a:?}\n{b:?}");
    let (winner, loser) = if a.code == 0 { (a, b) } else { (b, a) };
    winner.code(0);
    loser.code(1);
    assert_eq!(
        step(&loser, "look")["status"],
        "ok",
        "read-only steps do not wait"
    );
    let change = step(&loser, "change");
    assert_eq!(change["status"], "error");
    assert_eq!(change["error"], "refused");
    let message = change["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("being handled by") && message.contains("--wait-lock"),
        "{message}"
    );
    let winner_run = winner.json()["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains(&winner_run),
        "the holder's run id: {message}"
    );
    assert!(
        message.contains("at step `change`"),
        "the holder's live step: {message}"
    );

    // Released at the end: the next run mutates.
    p.opsctl().args(["run", "fix", "--yes"]).run().code(0);
    assert_eq!(changes(&p), 2);
}

#[test]
fn wait_lock_waits_and_plan_and_dry_run_never_take_the_lock() {
    let p = project();
    let first = p.opsctl().args(["run", "fix", "--yes"]).spawn();
    wait_for_change(&p);
    // While it holds the lock: plan and the dry run go ahead, and change nothing.
    p.opsctl().args(["plan", "fix"]).run().code(0);
    p.opsctl().args(["run", "fix", "--dry-run"]).run().code(0);
    assert_eq!(changes(&p), 1);
    let second = p
        .opsctl()
        .args(["run", "fix", "--yes", "--wait-lock"])
        .run_within(Duration::from_secs(30))
        .0;
    second.code(0).stderr_has("waiting for the team lock");
    Out::of(first).code(0);
    assert_eq!(changes(&p), 2);
}

#[test]
fn a_killed_holder_leaves_no_lock_behind() {
    let p = project();
    let mut first = p.opsctl().args(["run", "fix", "--yes"]).spawn();
    wait_for_change(&p);
    first.kill().expect("kill the first run");
    let _ = first.wait();
    p.opsctl().args(["run", "fix", "--yes"]).run().code(0);
    assert_eq!(changes(&p), 2);
}
