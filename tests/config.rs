//! Finding the config (here, upward, `$XDG_CONFIG_HOME/opsctl/`, `--config`) and choosing
//! its environment (`--env`, `default_env`).

use crate::support::Project;
use crate::support::http_server::{Route, TestServer};

fn two_envs(p: &Project, prod: &TestServer, staging: &TestServer) {
    p.file(
        "opsctl.yaml",
        &format!(
            "runbooks: [runbooks]\ndefault_env: production\nenvs:\n  production:\n    vars: {{ who: prod }}\n    http: {{ api: {{ base_url: \"{}\" }} }}\n  staging:\n    vars: {{ who: staging }}\n    http: {{ api: {{ base_url: \"{}\" }} }}\n",
            prod.url(),
            staging.url()
        ),
    )
    .runbook(
        "ping",
        "name: ping\ntitle: Ping\nsteps:\n  - id: ping\n    http: { target: api, path: \"/ping?from=${{ vars.who }}\" }\n",
    );
}

#[test]
fn env_selects_targets_and_vars() {
    let prod = TestServer::start_blocking(vec![Route::new("GET", "/ping")]);
    let staging = TestServer::start_blocking(vec![Route::new("GET", "/ping")]);
    let p = Project::new();
    two_envs(&p, &prod, &staging);
    p.opsctl().args(["run", "ping"]).run().code(0);
    assert_eq!(prod.hits("GET", "/ping"), 1, "default_env is used");
    p.opsctl()
        .args(["--env", "staging", "run", "ping"])
        .run()
        .code(0);
    assert_eq!(staging.hits("GET", "/ping"), 1);
    assert_eq!(staging.requests()[0].query.as_deref(), Some("from=staging"));
    p.opsctl()
        .args(["run", "ping", "--env", "stagin"])
        .run()
        .code(2)
        .stderr_has("did you mean `staging`?");
}

#[test]
fn config_is_found_upward_and_in_xdg_config_home() {
    let prod = TestServer::start_blocking(vec![Route::new("GET", "/ping")]);
    let staging = TestServer::start_blocking(vec![Route::new("GET", "/ping")]);
    let p = Project::new();
    two_envs(&p, &prod, &staging);
    std::fs::create_dir_all(p.path().join("deep/er")).expect("mkdir");
    let out = crate::support::Cmd::new(&p.path().join("deep/er"))
        .args(["run", "ping"])
        .run();
    out.code(0);
    assert_eq!(
        prod.hits("GET", "/ping"),
        1,
        "opsctl.yaml found in a parent directory"
    );

    // No config here or above: $XDG_CONFIG_HOME/opsctl/opsctl.yaml (with an absolute runbooks dir).
    let elsewhere = Project::new();
    let xdg = elsewhere.path().join(".config/opsctl");
    std::fs::create_dir_all(&xdg).expect("mkdir");
    std::fs::write(
        xdg.join("opsctl.yaml"),
        format!(
            "runbooks: [{}]\nenvs:\n  only:\n    vars: {{ who: xdg }}\n    http: {{ api: {{ base_url: \"{}\" }} }}\n",
            p.path().join("runbooks").display(),
            staging.url()
        ),
    )
    .expect("write");
    elsewhere.opsctl().args(["run", "ping"]).run().code(0);
    assert_eq!(staging.hits("GET", "/ping"), 1);

    // --config wins over discovery.
    elsewhere
        .opsctl()
        .arg("--config")
        .arg(p.path().join("opsctl.yaml"))
        .args(["run", "ping"])
        .run()
        .code(0);
    assert_eq!(prod.hits("GET", "/ping"), 2);
    elsewhere
        .opsctl()
        .args(["--config", "missing.yaml", "list"])
        .run()
        .code(2)
        .stderr_has("missing.yaml not found");
}

#[test]
fn via_k8s_is_read_and_its_mistakes_are_located() {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    postgres:\n      primary: { url_env: DATABASE_URL, via: { k8s: { service: db, namespace: data, port: 5432 } } }\n    redis:\n      cache: { url_env: REDIS_URL, via: { k8s: { selector: app=redis } } }\n    http:\n      api: { base_url: \"http://api.prod.svc:8080\", via: { k8s: { pod: api-0 } } }\n",
    );
    p.opsctl().args(["lint"]).run().code(0);
    p.file(
        "opsctl.yaml",
        "runbooks: [.]\nenvs:\n  prod:\n    postgres:\n      a: { url_env: A, via: { k8s: { service: db, pod: db-0 } } }\n      b: { url_env: B, via: { k8s: { namespace: x } } }\n      c: { url_env: C, via: { k8s: { service: db, port: 70000 } } }\n      d: { url_env: D, via: { ssh: { host: bastion } } }\n",
    );
    let out = p.opsctl().args(["lint"]).run();
    out.code(1)
        .stdout_has("not several")
        .stdout_has("needs one of `service`, `pod` or `selector`")
        .stdout_has("must be a port number")
        .stdout_has("opsctl.yaml:5:");
}
