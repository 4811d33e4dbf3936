//! `run --dry-run`: contacts nothing (proved with listeners that count connections on
//! every configured target), shows waves, resolved arguments and mutations, never a
//! credential; params are validated first.

use crate::support::Project;
use crate::support::http_server::CountingListener;

const CANARY: &str = "canary-7f3a9c1e-secret-token";
const PW_CANARY: &str = "pw-canary-51d2e8";

fn project(http: &CountingListener, pg: &CountingListener, tcp: &CountingListener) -> Project {
    let p = Project::new();
    p.file(
        "opsctl.yaml",
        &format!(
            r#"runbooks: [runbooks]
default_env: prod
envs:
  prod:
    vars: {{ deployment: api-gateway }}
    http:
      api: {{ base_url: "http://127.0.0.1:{http}", auth: {{ bearer_env: OPS_TOKEN }} }}
      literal: {{ base_url: "http://admin:{PW_CANARY}@127.0.0.1:{http}" }}
    postgres:
      primary: {{ url_env: PRIMARY_URL }}
      replica: {{ url: "postgres://app:{PW_CANARY}@127.0.0.1:{pg}/app" }}
    redis:
      cache: {{ url_env: CACHE_URL }}
"#,
            http = http.port(),
            pg = pg.port(),
        ),
    );
    p.runbook(
        "incident",
        &format!(
            r#"name: incident
title: Everything, touching every kind of target
params:
  tenant:
    required: true
    pattern: '^[a-z-]+$'
    example: acme
  limit:
    default: 10
steps:
  - id: health
    http: {{ target: api, path: "/health/${{{{ params.tenant }}}}" }}
  - id: admin
    http: {{ target: literal, path: /admin, headers: {{ Authorization: "Bearer {CANARY}" }} }}
  - id: metrics
    metrics: {{ target: api, metric: up }}
  - id: db
    postgres: {{ target: primary, query: "SELECT count(*) FROM jobs WHERE tenant = $1", params: ["${{{{ params.tenant }}}}"] }}
  - id: replica
    postgres: {{ target: replica, query: "SELECT 1" }}
  - id: dlq
    redis: {{ target: cache, command: [LLEN, "dlq:${{{{ params.tenant }}}}"] }}
  - id: port
    tcp: {{ host: 127.0.0.1, port: {tcp} }}
  - id: cert
    tls: {{ host: 127.0.0.1, port: {tcp} }}
  - id: token
    secret.generate: {{ bytes: 32 }}
  - id: retry
    needs: [db, health]
    when: steps.db.outputs.value > 0
    http:
      target: api
      path: /retry
      method: POST
      json: {{ tenant: "${{{{ params.tenant }}}}", limit: "${{{{ params.limit }}}}", via: "${{{{ vars.deployment }}}}" }}
  - id: restart
    needs: [health]
    k8s.rollout: {{ deployment: "${{{{ vars.deployment }}}}", action: restart }}
  - id: tell
    needs: [retry]
    manual: {{ instructions: "Tell #incident about ${{{{ steps.retry.outputs.status }}}}" }}
"#,
            tcp = tcp.port()
        ),
    );
    p
}

fn env_cmd(p: &Project, pg: &CountingListener, redis: &CountingListener) -> crate::support::Cmd {
    p.opsctl()
        .env("OPS_TOKEN", CANARY)
        .env(
            "PRIMARY_URL",
            format!("postgres://app:{PW_CANARY}@127.0.0.1:{}/app", pg.port()),
        )
        .env(
            "CACHE_URL",
            format!("redis://:{PW_CANARY}@127.0.0.1:{}/0", redis.port()),
        )
}

#[test]
fn dry_run_contacts_nothing_and_shows_no_secret() {
    let (http, pg, redis, tcp) = (
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
    );
    let p = project(&http, &pg, &tcp);
    let human = env_cmd(&p, &pg, &redis)
        .args(["run", "incident", "--dry-run", "--param", "tenant=acme"])
        .run();
    human.code(0).never_shows(CANARY).never_shows(PW_CANARY);
    human
        .stdout_has("Wave 1")
        .stdout_has("/health/acme")
        .stdout_has("when:  steps.db.outputs.value > 0")
        .stdout_has("mutates — asks for confirmation")
        .stdout_has("asks for a person");
    let json = env_cmd(&p, &pg, &redis)
        .args([
            "run",
            "incident",
            "--dry-run",
            "--param",
            "tenant=acme",
            "--format",
            "json",
        ])
        .run();
    json.code(0).never_shows(CANARY).never_shows(PW_CANARY);
    let doc = json.json();
    assert_eq!(doc["mode"], "dry-run");
    let waves = doc["waves"].as_array().expect("waves");
    assert_eq!(waves.len(), 3, "{doc:#}");
    assert_eq!(
        waves[0]["steps"].as_array().map(Vec::len),
        Some(9),
        "independent steps share wave 1"
    );
    let retry = &waves[1]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "retry")
        .cloned()
        .expect("retry");
    assert_eq!(retry["mutating"], true);
    assert_eq!(retry["args"]["json"]["tenant"], "acme");
    assert_eq!(
        retry["args"]["json"]["limit"], 10,
        "a single ${{ }} keeps the param's type"
    );
    assert_eq!(retry["args"]["json"]["via"], "api-gateway");
    assert_eq!(retry["when"], "steps.db.outputs.value > 0");
    let tell = &waves[2]["steps"][0];
    assert_eq!(
        tell["args"]["instructions"],
        "Tell #incident about ${{ steps.retry.outputs.status }}"
    );
    let mutating: Vec<&str> = doc["mutating_steps"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(mutating, vec!["retry", "restart"]);
    for (name, l) in [
        ("http", &http),
        ("postgres", &pg),
        ("redis", &redis),
        ("tcp/tls", &tcp),
    ] {
        assert_eq!(l.connections(), 0, "dry run connected to the {name} target");
    }
    assert!(
        !p.path().join(".state").exists(),
        "a dry run writes no record"
    );
}

#[test]
fn params_are_validated_before_anything() {
    let (http, pg, redis, tcp) = (
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
        CountingListener::start_blocking(),
    );
    let p = project(&http, &pg, &tcp);
    env_cmd(&p, &pg, &redis)
        .args(["run", "incident", "--dry-run"])
        .run()
        .code(2)
        .stderr_has("missing required param `tenant`")
        .stderr_has("--param tenant=acme");
    env_cmd(&p, &pg, &redis)
        .args(["run", "incident", "--dry-run", "--param", "tenant=ACME!"])
        .run()
        .code(2)
        .stderr_has("param `tenant`");
    env_cmd(&p, &pg, &redis)
        .args([
            "run",
            "incident",
            "--dry-run",
            "--param",
            "tenant=acme",
            "--param",
            "tennant=x",
        ])
        .run()
        .code(2)
        .stderr_has("did you mean `tenant`?");
    env_cmd(&p, &pg, &redis)
        .args([
            "run",
            "incident",
            "--dry-run",
            "--param",
            "tenant=acme",
            "--param",
            "limit=many",
        ])
        .run()
        .code(2)
        .stderr_has("not an integer");
    // A real run is refused the same way, before any step.
    env_cmd(&p, &pg, &redis)
        .args(["run", "incident", "--yes"])
        .run()
        .code(2);
    env_cmd(&p, &pg, &redis)
        .args(["run", "incident", "--dry-run", "--examples"])
        .run()
        .code(0)
        .stdout_has("tenant=acme");
    for l in [&http, &pg, &redis, &tcp] {
        assert_eq!(l.connections(), 0);
    }
}

#[test]
fn an_invalid_runbook_never_starts() {
    let http = CountingListener::start_blocking();
    let p = Project::new();
    p.runbook(
        "broken",
        &format!(
            "name: broken\ntitle: B\nsteps:\n  - id: a\n    http: {{ url: \"http://127.0.0.1:{}/\" }}\n  - id: b\n    needs: [nope]\n    tcp: {{ host: x, port: 1 }}\n",
            http.port()
        ),
    );
    p.opsctl()
        .args(["run", "broken", "--yes"])
        .run()
        .code(2)
        .stderr_has("error[R003]")
        .stderr_has("runbooks/broken.yaml:7:13");
    assert_eq!(
        http.connections(),
        0,
        "no step of an invalid runbook may start"
    );
}
