//! The promise that nothing changes without a yes and no secret is ever shown, tried as
//! an attacker and as a careless runbook author would: injected shell, nested runbooks,
//! secrets at size limits and through expressions, inherited credentials, hangs.

use std::time::Duration;

use serde_json::Value;

use crate::support::http_server::{Route, TestServer};
use crate::support::{Cmd, Project};

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {doc}"))
}

#[test]
fn values_inserted_into_shell_scripts_never_run_as_code() {
    let p = Project::new();
    let pwned = p.path().join("pwned");
    p.runbook(
        "greet",
        r#"name: greet
title: Greet
params:
  name: { default: world }
steps:
  - id: plain
    exec: { shell: "printf '%s|' ${{ params.name }}", readonly: true }
  - id: double
    exec: { shell: "printf '%s|' \"hello ${{ params.name }}\"", readonly: true }
  - id: single
    exec: { shell: "printf '%s|' 'hello ${{ params.name }}'", readonly: true }
  - id: subst
    exec: { shell: "printf '%s|' \"$(printf %s ${{ params.name }})\"", readonly: true }
"#,
    );
    let evil = format!(
        "x'\"; touch {}; echo `touch {}` $(touch {})",
        pwned.display(),
        pwned.display(),
        pwned.display()
    );
    let out = p
        .opsctl()
        .args(["run", "greet", "--format", "json", "--param"])
        .arg(format!("name={evil}"))
        .run();
    out.code(0);
    assert!(!pwned.exists(), "an inserted value ran as shell code");
    let doc = out.json();
    assert_eq!(step(&doc, "plain")["outputs"]["stdout"], format!("{evil}|"));
    assert_eq!(
        step(&doc, "double")["outputs"]["stdout"],
        format!("hello {evil}|")
    );
    assert_eq!(
        step(&doc, "single")["outputs"]["stdout"],
        format!("hello {evil}|")
    );
    assert_eq!(step(&doc, "subst")["outputs"]["stdout"], format!("{evil}|"));
    // Lint says how values reach the script.
    p.opsctl()
        .args(["lint", "runbooks"])
        .run()
        .code(0)
        .stdout_has("I001");
}

#[test]
fn a_nested_runbook_whose_mutation_was_not_confirmed_is_not_ok() {
    let server = TestServer::start_blocking(vec![Route::new("POST", "/restart")]);
    let p = Project::new();
    p.runbook(
        "restart",
        &format!(
            "name: restart\ntitle: Restart\nsteps:\n  - id: look\n    exec: {{ command: [\"true\"], readonly: true }}\n  - id: restart\n    needs: [look]\n    http: {{ url: \"{}/restart\", method: POST }}\n",
            server.url()
        ),
    )
    .runbook(
        "outer",
        "name: outer\ntitle: Outer\nsteps:\n  - id: inner\n    runbook: { name: restart }\n  - id: verify\n    needs: [inner]\n    exec: { command: [\"true\"], readonly: true }\n",
    );
    let out = p.opsctl().args(["run", "outer", "--format", "json"]).run();
    out.code(0);
    assert_eq!(server.hits("POST", "/restart"), 0);
    let doc = out.json();
    let inner = step(&doc, "inner");
    assert_eq!(inner["status"], "skipped", "{inner}");
    assert!(
        inner["message"].as_str().unwrap_or("").contains("restart"),
        "{inner}"
    );
    // What follows the undone restart does not run as if it had happened.
    assert_eq!(step(&doc, "verify")["status"], "skipped");
    // With a yes, the same runbook is ok.
    let out = p
        .opsctl()
        .args(["run", "outer", "--yes", "--format", "json"])
        .run();
    out.code(0);
    assert_eq!(step(&out.json(), "inner")["status"], "ok");
    assert_eq!(server.hits("POST", "/restart"), 1);
}

#[test]
fn a_secret_across_the_output_limit_is_masked_before_it_is_cut() {
    let p = Project::new();
    let secret_file = p.path().join("secret.txt");
    // The secret starts 10 bytes before the 1 MiB limit.
    p.runbook(
        "cut",
        &format!(
            r#"name: cut
title: Cut
steps:
  - id: gen
    secret.generate: {{ bytes: 48 }}
  - id: print
    needs: [gen]
    exec:
      command: [sh, -c, 'printf %s "$S" > {}; head -c 1048566 /dev/zero | tr "\0" a; printf %s "$S"']
      env: {{ S: "${{{{ steps.gen.outputs.value }}}}" }}
      readonly: true
"#,
            secret_file.display()
        ),
    );
    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args(["run", "cut", "--format", "json", "--record"])
        .arg(&record)
        .run();
    out.code(0);
    let secret = std::fs::read_to_string(&secret_file).expect("secret written");
    assert!(secret.len() >= 60);
    let record = std::fs::read_to_string(&record).expect("record");
    // Not even the part before the cut survives.
    let head = &secret[..8];
    assert!(
        !out.stdout.contains(head),
        "the cut secret shows in the JSON"
    );
    assert!(!record.contains(head), "the cut secret shows in the record");
    let stdout = step(&out.json(), "print")["outputs"]["stdout"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(stdout.len() <= 1024 * 1024, "{}", stdout.len());
}

#[test]
fn derived_secrets_are_refused_by_lint() {
    let p = Project::new();
    p.runbook(
        "derive",
        r#"name: derive
title: Derive
steps:
  - id: gen
    secret.generate: {}
  - id: upper
    needs: [gen]
    exec: { command: [echo, "${{ steps.gen.outputs.value | upper }}"], readonly: true }
  - id: slice
    needs: [gen]
    exec: { command: [echo, "${{ steps.gen.outputs.value[:8] }}"], readonly: true }
  - id: passed
    needs: [gen]
    exec: { command: [echo, "key=${{ steps.gen.outputs.value }}"], readonly: true }
"#,
    );
    let out = p.opsctl().args(["lint", "runbooks"]).run();
    out.code(1);
    assert_eq!(out.stdout.matches("X008").count(), 2, "{}", out.stdout);
    p.opsctl().args(["run", "derive"]).run().code(2);
}

#[test]
fn credentials_of_later_steps_are_masked_from_the_first_line() {
    const TOKEN: &str = "tok-8c1f0d0e-later-step";
    let server = TestServer::start_blocking(vec![Route::new("GET", "/me")]);
    let p = Project::new();
    p.file("token.txt", TOKEN).runbook(
        "early",
        &format!(
            r#"name: early
title: Early
steps:
  - id: leak
    exec: {{ command: [cat, token.txt], readonly: true }}
  - id: call
    needs: [leak]
    http: {{ url: "{}/me", auth: {{ bearer_env: LATER_TOKEN }} }}
"#,
            server.url()
        ),
    );
    let record = p.path().join("r.jsonl");
    let out = p
        .opsctl()
        .args(["run", "early", "--record"])
        .arg(&record)
        .env("LATER_TOKEN", TOKEN)
        .run();
    out.code(0).never_shows(TOKEN);
    assert!(
        !std::fs::read_to_string(record)
            .unwrap_or_default()
            .contains(TOKEN)
    );
}

#[test]
fn commands_get_an_allow_listed_environment() {
    const CANARY: &str = "AKIA-canary-7f3e-never-inherited";
    let p = Project::new();
    p.runbook(
        "env",
        "name: env\ntitle: Env\nsteps:\n  - id: env\n    exec: { command: [env], env: { MINE: yes-mine }, readonly: true }\n",
    );
    let out = p
        .opsctl()
        .args(["run", "env", "--format", "json"])
        .env("AWS_SECRET_ACCESS_KEY", CANARY)
        .env("AWS_PROFILE", "oncall")
        .env("KUBECONFIG", "/etc/kube/prod")
        .run();
    out.code(0).never_shows(CANARY);
    let doc = out.json();
    let env = step(&doc, "env")["outputs"]["stdout"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(env.contains("PATH="), "{env}");
    assert!(env.contains("MINE=yes-mine"), "{env}");
    assert!(!env.contains("AWS_SECRET_ACCESS_KEY"), "{env}");
    // Which cluster and cloud profile an admin CLI talks to is passed on: no credential.
    assert!(env.contains("AWS_PROFILE=oncall"), "{env}");
    assert!(env.contains("KUBECONFIG=/etc/kube/prod"), "{env}");
}

#[test]
fn show_masks_credentials_written_in_steps() {
    let p = Project::new();
    p.runbook(
        "creds",
        r#"name: creds
title: Creds
steps:
  - id: a
    http: { url: "https://admin:hunter2-url-pw@api.example.com/x", headers: { Authorization: "Bearer hdr-secret-0042" } }
"#,
    );
    let out = p.opsctl().args(["show", "creds"]).run();
    out.code(0)
        .never_shows("hunter2-url-pw")
        .never_shows("hdr-secret-0042");
    let dry = p.opsctl().args(["run", "creds", "--dry-run"]).run();
    dry.code(0)
        .never_shows("hunter2-url-pw")
        .never_shows("hdr-secret-0042");
}

#[test]
fn a_runbook_directory_with_symlink_loops_is_walked_once() {
    let p = Project::new();
    p.runbook(
        "one",
        "name: one\ntitle: One\nsteps:\n  - id: a\n    exec: { command: [\"true\"], readonly: true }\n",
    );
    for link in ["sub", "sub2", "sub3"] {
        std::os::unix::fs::symlink(".", p.path().join("runbooks").join(link)).expect("symlink");
    }
    let (out, _) = p
        .opsctl()
        .args(["lint", "runbooks"])
        .run_within(Duration::from_secs(20));
    out.code(0);
    let (out, _) = p
        .opsctl()
        .args(["run", "one"])
        .run_within(Duration::from_secs(20));
    out.code(0);
}

#[test]
fn an_endless_jq_program_ends_with_its_step_and_nothing_static_runs_it() {
    let p = Project::new();
    p.runbook(
        "jq",
        r#"name: jq
title: Endless jq
steps:
  - id: loop
    exec: { command: [echo, "${{ 1 | jq('last(repeat(1))') }}"], readonly: true }
    timeout: 2s
  - id: other
    exec: { command: ["true"], readonly: true }
"#,
    );
    for args in [
        &["lint", "runbooks"][..],
        &["show", "jq"],
        &["graph", "jq"],
        &["run", "jq", "--dry-run"],
    ] {
        let (out, took) = p.opsctl().args(args).run_within(Duration::from_secs(20));
        assert!(out.code == 0, "{args:?}: {out:?}");
        assert!(
            took < Duration::from_secs(2),
            "{args:?} evaluated jq: {took:?}"
        );
    }
    let (out, took) = p
        .opsctl()
        .args(["run", "jq", "--format", "json"])
        .run_within(Duration::from_secs(20));
    out.code(1);
    let doc = out.json();
    assert_eq!(step(&doc, "loop")["status"], "error");
    assert_eq!(step(&doc, "other")["status"], "ok");
    // Bounded by the step's 2 s (a hang guard with room for a loaded machine).
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[test]
fn a_file_that_is_not_utf8_is_located() {
    let p = Project::new();
    p.file("runbooks/bad.yaml", "name: bad\ntitle: ok\n");
    let mut bytes = b"name: bad\ntitle: caf".to_vec();
    bytes.extend_from_slice(&[0xE9, b'\n']);
    std::fs::write(p.path().join("runbooks/bad.yaml"), bytes).expect("write");
    let out = p.opsctl().args(["lint", "runbooks"]).run();
    out.code(1).stdout_has("bad.yaml:2:11").stdout_has("0xE9");
}

#[test]
fn runbooks_beside_the_config_are_found_in_every_layout() {
    let p = Project::new();
    p.file("ops/opsctl.yaml", "runbooks: [.]\n")
        .file(
            "ops/check.yaml",
            "name: check\ntitle: Check\nsteps:\n  - id: a\n    exec: { command: [\"true\"], readonly: true }\n",
        )
        .file("ops/deeper/x.txt", "");
    // From the directory itself, from a subdirectory (config found upward), via --config.
    for cwd in ["ops", "ops/deeper"] {
        Cmd::new(&p.path().join(cwd))
            .arg("list")
            .run()
            .code(0)
            .stdout_has("check");
        Cmd::new(&p.path().join(cwd))
            .args(["run", "check"])
            .run()
            .code(0);
        Cmd::new(&p.path().join(cwd)).arg("lint").run().code(0);
    }
    p.opsctl()
        .args(["--config", "ops/opsctl.yaml", "run", "check"])
        .run()
        .code(0);
    let abs = p.path().join("ops");
    p.file(
        "other/opsctl.yaml",
        &format!("runbooks: [{}]\n", abs.display()),
    );
    Cmd::new(&p.path().join("other"))
        .args(["run", "check"])
        .run()
        .code(0);
}

#[test]
fn two_runbooks_of_one_name_are_a_finding_and_run_refuses_the_name() {
    let p = Project::new();
    let rb = "name: dup\ntitle: Dup\nsteps:\n  - id: a\n    exec: { command: [\"true\"], readonly: true }\n";
    p.file("opsctl.yaml", "runbooks: [a, b]\n")
        .file("a/dup.yaml", rb)
        .file("b/dup.yaml", rb);
    let out = p.opsctl().arg("lint").run();
    out.code(1)
        .stdout_has("N003")
        .stdout_has("a/dup.yaml")
        .stdout_has("b/dup.yaml");
    p.opsctl()
        .args(["run", "dup"])
        .run()
        .code(2)
        .stderr_has("ambiguous");
}

/// One runbook reaching every kind of secret, through every command that prints.
#[test]
fn canary_secrets_appear_in_no_output_of_any_command() {
    const TARGET_TOKEN: &str = "cnry-target-token-5b1d";
    const STEP_TOKEN: &str = "cnry-step-token-9e2a";
    const URL_PW: &str = "cnry-url-pw-77c3";
    const HEADER: &str = "cnry-header-4410";
    const DB_PW: &str = "cnry-db-pw-a0b9";
    let server = TestServer::start_blocking(vec![
        Route::new("GET", "/echo").body(format!("{TARGET_TOKEN} {STEP_TOKEN} {URL_PW} {HEADER}")),
        Route::new("POST", "/rotate"),
    ]);
    let p = Project::new();
    let secret_file = p.path().join("gen.txt");
    p.file(
        "opsctl.yaml",
        &format!(
            "envs:\n  prod:\n    http:\n      api: {{ base_url: \"{}\", auth: {{ bearer_env: TARGET_TOKEN }} }}\n    postgres:\n      db: {{ url: \"postgres://app:{DB_PW}@127.0.0.1:1/x\" }}\n",
            server.url()
        ),
    )
    .runbook(
        "canary",
        &format!(
            r#"name: canary
title: Canary
steps:
  - id: echo
    http: {{ target: api, path: /echo }}
  - id: own-auth
    http: {{ url: "{u}/echo", auth: {{ bearer_env: STEP_TOKEN }}, headers: {{ X-Api-Key: "{HEADER}" }} }}
  - id: url-pw
    http: {{ url: "http://admin:{URL_PW}@127.0.0.1:1/down" }}
  - id: db
    postgres: {{ target: db, query: "SELECT 1" }}
  - id: gen
    secret.generate: {{ bytes: 32 }}
  - id: keep
    needs: [gen]
    exec: {{ command: [sh, -c, 'printf %s "$S" > {f}; printf "%s\n%s" "$S" "$S"'], env: {{ S: "${{{{ steps.gen.outputs.value }}}}" }}, readonly: true }}
  - id: push
    needs: [gen]
    http: {{ target: api, path: /rotate, method: POST, json: {{ key: "${{{{ steps.gen.outputs.value }}}}" }} }}
  - id: cmp
    needs: [gen]
    exec: {{ command: [echo, "x"], readonly: true }}
    expect: ["'${{{{ steps.gen.outputs.value }}}}' == 'nope'"]
"#,
            u = server.url(),
            f = secret_file.display()
        ),
    );
    let envs = [("TARGET_TOKEN", TARGET_TOKEN), ("STEP_TOKEN", STEP_TOKEN)];
    let mut outputs = Vec::new();
    for args in [
        &["run", "canary", "--yes"][..],
        &["run", "canary", "--yes", "--format", "json"],
        &["plan", "canary"],
        &["plan", "canary", "--format", "json"],
        &["run", "canary", "--dry-run"],
        &["run", "canary", "--dry-run", "--format", "json"],
        &["show", "canary"],
        &["lint"],
    ] {
        let record = p.path().join(format!("r{}.jsonl", outputs.len()));
        let mut cmd = p.opsctl().args(args);
        if args[0] != "show" && args[0] != "lint" && !args.contains(&"--dry-run") {
            cmd = cmd.arg("--record").arg(&record);
        }
        for (k, v) in envs {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run();
        let record = std::fs::read_to_string(&record).unwrap_or_default();
        outputs.push((
            args.join(" "),
            format!("{}\n{}\n{record}", out.stdout, out.stderr),
        ));
    }
    let generated = std::fs::read_to_string(&secret_file).expect("the generated secret");
    assert!(generated.len() >= 40);
    let upper = generated.to_uppercase();
    for (what, text) in &outputs {
        for secret in [
            TARGET_TOKEN,
            STEP_TOKEN,
            URL_PW,
            HEADER,
            DB_PW,
            &generated,
            &upper,
            &generated[..10],
        ] {
            assert!(!text.contains(secret), "`{what}` shows {secret}:\n{text}");
        }
    }
    // The secrets did reach where they were meant to.
    assert!(server.hits("POST", "/rotate") >= 1);
}

#[test]
fn nested_loops_and_chains_too_deep_are_refused_before_anything_runs() {
    let p = Project::new();
    let step = |callee: &str| format!("  - id: call\n    runbook: {{ name: {callee} }}\n");
    p.runbook("a", &format!("name: a\ntitle: A\nsteps:\n{}", step("b")))
        .runbook("b", &format!("name: b\ntitle: B\nsteps:\n{}", step("c")))
        .runbook("c", &format!("name: c\ntitle: C\nsteps:\n{}", step("b")));
    p.opsctl()
        .args(["run", "a"])
        .run()
        .code(2)
        .stderr_has("b → c → b");
    // Seventeen runbooks in a chain: one too many.
    let q = Project::new();
    for i in 0..17 {
        let body = if i < 16 {
            step(&format!("r{}", i + 1))
        } else {
            "  - id: leaf\n    exec: { command: [\"true\"], readonly: true }\n".to_string()
        };
        q.runbook(
            &format!("r{i}"),
            &format!("name: r{i}\ntitle: R\nsteps:\n{body}"),
        );
    }
    q.opsctl()
        .args(["run", "r0"])
        .run()
        .code(2)
        .stderr_has("nested 17 deep");
    q.opsctl()
        .args(["lint", "runbooks"])
        .run()
        .code(1)
        .stdout_has("nested 17 deep");
    q.opsctl().args(["run", "r1"]).run().code(0);
}

#[test]
fn only_failures_that_can_go_away_are_retried() {
    let port = crate::support::http_server::closed_port();
    let p = Project::new();
    p.runbook(
        "retry",
        &format!(
            r#"name: retry
title: Retry
steps:
  - id: no-target
    postgres: {{ query: "SELECT 1" }}
    retry: {{ attempts: 5, delay: 2s }}
  - id: down
    http: {{ url: "http://127.0.0.1:{port}/" }}
    retry: {{ attempts: 3, delay: 10ms }}
"#
        ),
    );
    let (out, took) = p
        .opsctl()
        .args(["run", "retry", "--format", "json"])
        .run_within(Duration::from_secs(30));
    out.code(1);
    let doc = out.json();
    let no_target = step(&doc, "no-target");
    assert_eq!(no_target["attempts"], 1, "{no_target}");
    assert_eq!(no_target["error"], "config");
    let down = step(&doc, "down");
    assert_eq!(down["attempts"], 3, "{down}");
    assert_eq!(down["error"], "unreachable");
    assert!(
        took < Duration::from_secs(8),
        "a lasting failure was retried: {took:?}"
    );
}
