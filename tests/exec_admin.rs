//! `exec` as the seeds' admin CLIs need it: JSON on stdout parsed into `json` (with a
//! non-zero exit), `stdin`, `cwd`, and `NAME_env` values from the caller's environment
//! that never show.

use crate::support::Project;

#[test]
fn an_admin_cli_gets_stdin_cwd_and_a_secret_and_its_json_is_parsed() {
    const CANARY: &str = "canary-admin-7Hq2Lw";
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("work")).expect("mkdir");
    p.file("opsctl.yaml", "runbooks: [.]\nenvs:\n  prod:\n    vars: { team: sre }\n")
        .file(
            "admin.yaml",
            r#"name: admin
title: Admin CLI
steps:
  - id: dlq
    exec:
      command: [sh, -c, 'cat > input.txt; pwd > where.txt; printf "{\"count\": 2, \"token_len\": %d}" "${#API_TOKEN}"; echo "token is $API_TOKEN" >&2; exit 3']
      cwd: work
      stdin: "retry job-1 job-2"
      env: { API_TOKEN_env: OPSCTL_TEST_ADMIN_TOKEN, REGION: eu }
      readonly: true
    expect: ["exit_code == 3", "json.count == 2", "json.token_len == 19"]
"#,
        );
    let out = p
        .opsctl()
        .args(["run", "admin", "--format", "json"])
        .env("OPSCTL_TEST_ADMIN_TOKEN", CANARY)
        .run();
    out.code(0).never_shows(CANARY);
    let step = &out.json()["steps"][0];
    assert_eq!(step["status"], "ok", "{step}");
    assert_eq!(step["outputs"]["json"]["count"], 2);
    assert!(
        step["outputs"]["stderr"]
            .as_str()
            .is_some_and(|e| e.contains("token is ")),
        "{step}"
    );
    assert_eq!(p.read("work/input.txt"), "retry job-1 job-2");
    assert!(p.read("work/where.txt").trim_end().ends_with("/work"));
    let records = p.path().join(".state/opsctl/runs");
    for entry in std::fs::read_dir(records).expect("records") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("record");
        assert!(!text.contains(CANARY), "the record holds the secret");
    }

    // Without the variable: a located, one-line configuration error, nothing run.
    let out = p.opsctl().args(["run", "admin", "--format", "json"]).run();
    out.code(1);
    let step = &out.json()["steps"][0];
    assert_eq!(step["status"], "error");
    assert!(
        step["message"]
            .as_str()
            .is_some_and(|m| m.contains("OPSCTL_TEST_ADMIN_TOKEN is not set")),
        "{step}"
    );
}

/// A secret reaching a command line through a nested runbook's param (where lint cannot
/// follow it) is refused before the program starts: a command line is readable by every
/// user of the machine. The same value through `env:` gets there.
#[test]
fn a_secret_on_a_command_line_is_refused_at_run_time_and_env_carries_it() {
    let p = Project::new();
    p.file("opsctl.yaml", "runbooks: [.]\n")
        .file(
            "rotate.yaml",
            r#"name: rotate
title: Rotate a password through a helper runbook
steps:
  - id: password
    secret.generate: { bytes: 24, encoding: hex }
  - id: store
    needs: [password]
    runbook: { name: store, params: { password: "${{ steps.password.outputs.value }}" } }
"#,
        )
        .file(
            "store.yaml",
            r#"name: store
title: Hand a password to a tool
params:
  password: { required: true, example: x }
steps:
  - id: argv
    exec: { command: [sh, -c, 'echo "$1" > argv.txt', sh, "${{ params.password }}"] }
  - id: env
    exec:
      command: [sh, -c, 'printf %s "$PASSWORD" > env.txt']
      env: { PASSWORD: "${{ params.password }}" }
"#,
        );
    let out = p
        .opsctl()
        .args(["run", "rotate", "--yes", "--format", "json"])
        .run();
    out.code(1);
    let doc = out.json();
    let inner = &doc["steps"][1]["outputs"]["steps"];
    assert_eq!(inner["argv"]["status"], "error", "{doc}");
    assert!(
        inner["argv"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("holds a secret")),
        "no reason given: {doc}"
    );
    assert!(!p.path().join("argv.txt").exists(), "the program ran");
    assert_eq!(inner["env"]["status"], "ok", "{doc}");
    let secret = p.read("env.txt");
    assert_eq!(secret.len(), 48, "{secret}");
    out.never_shows(&secret);
}

/// An admin CLI that creates a key prints it: with `secret_output: true` the key reaches the
/// next step whole (through `env`) and shows nowhere — not in the live view, the JSON, or
/// the record.
#[test]
fn a_key_an_admin_cli_prints_is_masked_everywhere_and_passed_on_whole() {
    const KEY: &str = "bk_live_9fQ2mX7LpR4tZ8wN";
    let p = Project::new();
    // The "CLI" prints a key it made: here, the file it reads.
    p.file("opsctl.yaml", "runbooks: [.]\n")
        .file(
            "created.json",
            &format!(r#"{{"key_id": "key-0123456789abcdef", "key": "{KEY}"}}"#),
        )
        .file(
            "rotate.yaml",
            r#"name: rotate
title: Create a key and hand it on
steps:
  - id: create
    exec:
      command: [cat, created.json]
      secret_output: true
  - id: deliver
    needs: [create]
    exec:
      command: [sh, -c, 'printf %s "$KEY" > delivered.txt; echo "delivered $KEY"']
      env: { KEY: "${{ steps.create.outputs.json.key }}" }
"#,
        );
    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args(["run", "rotate", "--yes", "--format", "json", "--record"])
        .arg(&record)
        .run();
    out.code(0).never_shows(KEY);
    // The key's id is no secret: it stays readable (later steps name it on command lines).
    out.stdout_has("key-0123456789abcdef");
    assert_eq!(
        p.read("delivered.txt"),
        KEY,
        "the key did not reach the next step whole"
    );
    let text = std::fs::read_to_string(&record).expect("record");
    assert!(!text.contains(KEY), "the record holds the key");
    let human = p.opsctl().args(["run", "rotate", "--yes"]).run();
    human.code(0).never_shows(KEY);
}
