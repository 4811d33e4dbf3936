//! Params with `enum` and `type`: checked before anything runs (exit 2 naming the param),
//! converted for expressions, their defaults and examples linted, and on a terminal a
//! missing required param is asked for (a menu for an `enum`).

use crate::support::Project;

const RUNBOOK: &str = r#"name: p
title: Params
params:
  level: { enum: [debug, info, warn], default: info, description: Log level }
  count: { type: int, required: true, example: 3, description: How many }
  wait: { type: duration, default: 30s }
  force: { type: bool, default: false }
steps:
  - id: show
    exec:
      command: [echo, "${{ params.level }} ${{ params.count + 1 }} ${{ params.wait }} ${{ params.force }}"]
      readonly: true
"#;

fn project() -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    vars: { team: sre }\n",
    )
    .file("p.yaml", RUNBOOK);
    p
}

#[test]
fn enum_and_type_are_checked_before_anything_runs() {
    let p = project();
    let run = |params: &[&str]| {
        let mut args = vec!["run", "p", "--format", "json"];
        for x in params {
            args.extend(["--param", x]);
        }
        p.opsctl().args(args).run()
    };
    run(&["count=2", "level=verbose"])
        .code(2)
        .stderr_has("`verbose` is not one of debug, info, warn");
    run(&["count=two"])
        .code(2)
        .stderr_has("`two` is not an integer");
    run(&["count=1", "wait=5 minutes"])
        .code(2)
        .stderr_has("is not a duration");
    run(&["count=1", "force=maybe"])
        .code(2)
        .stderr_has("not true or false");
    let ok = run(&["count=41", "level=warn", "wait=5m", "force=yes"]);
    ok.code(0);
    assert_eq!(
        ok.json()["steps"][0]["outputs"]["stdout"],
        "warn 42 5m true\n"
    );
}

#[test]
fn defaults_and_examples_outside_enum_or_type_are_lint_errors() {
    let p = project();
    p.file(
        "bad.yaml",
        "name: bad\ntitle: Bad\nparams:\n  level: { enum: [a, b], default: c }\n  n: { type: int, required: true, example: lots }\n  t: { type: color }\nsteps:\n  - id: s\n    exec: { command: [\"true\"], readonly: true }\n",
    );
    let out = p.opsctl().args(["lint", "bad.yaml"]).run();
    out.code(1)
        .stdout_has("default of param `level`: `c` is not one of a, b")
        .stdout_has("example of param `n`: `lots` is not an integer")
        .stdout_has("type `color` of param `t` is not one of");
}

#[test]
fn on_a_terminal_a_missing_required_param_is_asked_for() {
    let p = project();
    // `script` gives opsctl a terminal; the answers arrive on it: a wrong one first.
    let opsctl = env!("CARGO_BIN_EXE_opsctl");
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{opsctl} run p --format json"),
            "/dev/null",
        ])
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .env("HOME", p.path())
        .env("XDG_STATE_HOME", p.path().join(".state"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                // Answers are written a little apart so each prompt reads its own line.
                for answer in ["many\n", "7\n"] {
                    std::thread::sleep(std::time::Duration::from_millis(400));
                    let _ = stdin.write_all(answer.as_bytes());
                    let _ = stdin.flush();
                }
                std::thread::sleep(std::time::Duration::from_millis(400));
            }
            child.wait_with_output()
        })
        .expect("script (util-linux) runs opsctl on a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("? param `count` — How many"), "{text}");
    assert!(text.contains("`many` is not an integer"), "{text}");
    assert!(text.contains("info 8 30s false"), "{text}");
    assert!(
        !text.contains("param `level`"),
        "a param with a default is not asked: {text}"
    );
}
