//! The redis pool against the real test server.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::*;
use futures::StreamExt;
use opsctl::actions::{ActionError, ErrorView};
use opsctl::targets::redis::RedisPool;
use serde_json::{Value, json};

fn pool_for(url: &str, size: usize) -> RedisPool {
    init();
    RedisPool::new("cache", url, size, None).expect("pool")
}

fn pool() -> RedisPool {
    pool_for(&env("OPSCTL_TEST_REDIS_URL"), 2)
}

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

async fn run(p: &RedisPool, args: &[&str], mutating: bool) -> Result<Value, ActionError> {
    p.command(&argv(args), mutating, Duration::ZERO).await
}

async fn raw_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(env("OPSCTL_TEST_REDIS_URL"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

#[test]
fn types_are_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedisPool>();
    fn assert_send<T: Send>(_: &T) {}
    init();
    let p = RedisPool::new("cache", "redis://127.0.0.1:1/0", 1, None).expect("pool");
    let args = argv(&["PING"]);
    let fut = p.command(&args, false, Duration::ZERO);
    assert_send(&fut);
}

#[tokio::test]
async fn read_commands_return_natural_json() {
    let p = pool();
    let k = unique("opsctl:test");
    let (list, hash, stream, bin) = (
        format!("{k}:list"),
        format!("{k}:hash"),
        format!("{k}:stream"),
        format!("{k}:bin"),
    );
    run(&p, &["RPUSH", &list, "a", "b", "c"], true)
        .await
        .expect("rpush");
    run(&p, &["HSET", &hash, "f1", "v1", "f2", "v2"], true)
        .await
        .expect("hset");
    run(&p, &["XADD", &stream, "*", "field", "value"], true)
        .await
        .expect("xadd");
    let mut raw = raw_conn().await;
    redis::cmd("SET")
        .arg(&bin)
        .arg(&[0xffu8, 0x00, 0x41][..])
        .exec_async(&mut raw)
        .await
        .expect("binary set");

    assert_eq!(
        run(&p, &["LLEN", &list], false).await.expect("llen"),
        json!(3)
    );
    assert_eq!(
        run(&p, &["LRANGE", &list, "0", "-1"], false)
            .await
            .expect("lrange"),
        json!(["a", "b", "c"])
    );
    assert_eq!(
        run(&p, &["hgetall", &hash], false).await.expect("hgetall"),
        json!({"f1": "v1", "f2": "v2"})
    );
    assert_eq!(
        run(&p, &["TYPE", &list], false).await.expect("type"),
        json!("list")
    );
    assert_eq!(
        run(&p, &["TTL", &list], false).await.expect("ttl"),
        json!(-1)
    );
    assert_eq!(
        run(&p, &["GET", &format!("{k}:missing")], false)
            .await
            .expect("get"),
        Value::Null
    );
    assert_eq!(
        run(&p, &["GET", &bin], false).await.expect("bin"),
        json!({"base64": "/wBB"})
    );
    assert_eq!(
        run(&p, &["XLEN", &stream], false).await.expect("xlen"),
        json!(1)
    );
    assert_eq!(
        run(&p, &["PING"], false).await.expect("ping"),
        json!("PONG")
    );
    assert_eq!(
        run(&p, &["ECHO", "hi"], false).await.expect("echo"),
        json!("hi")
    );
    assert!(
        run(&p, &["OBJECT", "ENCODING", &list], false)
            .await
            .expect("object")
            .is_string()
    );
    assert_eq!(
        run(&p, &["CONFIG", "GET", "maxmemory"], false)
            .await
            .expect("config get"),
        json!({"maxmemory": "0"})
    );
    assert_eq!(
        run(
            &p,
            &[
                "SCRIPT",
                "EXISTS",
                "0000000000000000000000000000000000000000"
            ],
            false
        )
        .await
        .expect("script"),
        json!([0])
    );
    let scan = run(
        &p,
        &["SCAN", "0", "MATCH", &format!("{k}:*"), "COUNT", "1000"],
        false,
    )
    .await
    .expect("scan");
    assert!(scan[0].is_string() && scan[1].is_array(), "{scan}");
    let info = run(&p, &["INFO", "memory"], false).await.expect("info");
    assert!(
        info.as_str().is_some_and(|s| s.contains("used_memory:")),
        "{info}"
    );
    assert!(run(&p, &["DBSIZE"], false).await.expect("dbsize").is_u64());
    assert!(
        run(&p, &["MEMORY", "USAGE", &list], false)
            .await
            .expect("memory usage")
            .is_u64()
    );
    assert!(
        run(&p, &["CLIENT", "LIST"], false)
            .await
            .expect("client list")
            .as_str()
            .is_some_and(|s| s.contains("name=opsctl"))
    );
    assert!(
        run(&p, &["SLOWLOG", "GET", "1"], false)
            .await
            .expect("slowlog")
            .is_array()
    );
    let xinfo = run(&p, &["XINFO", "STREAM", &stream], false)
        .await
        .expect("xinfo");
    assert_eq!(xinfo["length"], json!(1));

    match run(&p, &["LLEN", &hash], false)
        .await
        .expect_err("wrongtype")
        .view()
    {
        ErrorView::Failed(msg) => {
            assert_eq!(
                msg,
                "redis cache: WRONGTYPE Operation against a key holding the wrong kind of value"
            )
        }
        other => panic!("{other:?}"),
    }
    // the connection survives an error reply
    assert_eq!(
        run(&p, &["LLEN", &list], false).await.expect("after error"),
        json!(3)
    );
    run(&p, &["DEL", &list, &hash, &stream, &bin], true)
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn resp3_maps_become_objects() {
    let url = with_param(&env("OPSCTL_TEST_REDIS_URL"), "protocol=resp3");
    let p = pool_for(&url, 1);
    let hash = unique("opsctl:test:h3");
    run(&p, &["HSET", &hash, "a", "1", "b", "2"], true)
        .await
        .expect("hset");
    assert_eq!(
        run(&p, &["HGETALL", &hash], false).await.expect("hgetall"),
        json!({"a": "1", "b": "2"})
    );
    run(&p, &["DEL", &hash], true).await.expect("del");
}

#[tokio::test]
async fn writes_are_refused_before_reaching_the_server() {
    let p = pool();
    let key = unique("opsctl:test:refused");
    let marker = unique("opsctl-marker");

    let client = redis::Client::open(env("OPSCTL_TEST_REDIS_URL")).expect("client");
    let monitor = client.get_async_monitor().await.expect("monitor");
    let mut lines = monitor.into_on_message::<String>();

    match run(&p, &["SET", &key, "x"], false)
        .await
        .expect_err("refused")
        .view()
    {
        ErrorView::Refused(msg) => assert_eq!(
            msg,
            "redis cache: SET writes; add `mutating: true` to the step to allow it"
        ),
        other => panic!("{other:?}"),
    }
    let refused: &[(&[&str], &str)] = &[
        (&["DEL", &key], "DEL writes"),
        (&["lpush", &key, "a"], "LPUSH writes"),
        (&["FLUSHALL"], "FLUSHALL writes"),
        (&["CONFIG", "SET", "maxmemory", "1"], "CONFIG SET may write"),
        (&["EVAL", "return 1", "0"], "EVAL may write"),
        (
            &["FOOBAR", &key],
            "FOOBAR is not a command this server knows",
        ),
        (
            &["CONFIG", "NOPE"],
            "CONFIG NOPE is not a subcommand this server knows",
        ),
        (&["BLPOP", &key, "1"], "BLPOP writes"),
        (&["SHUTDOWN"], "SHUTDOWN may write"),
    ];
    for (args, why) in refused {
        match view(&run(&p, args, false).await) {
            Err(ErrorView::Refused(msg)) => {
                assert!(msg.starts_with(&format!("redis cache: {why}")), "{msg}");
                assert!(
                    msg.ends_with("add `mutating: true` to the step to allow it"),
                    "{msg}"
                );
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert_eq!(
        run(&p, &["EXISTS", &key], false).await.expect("exists"),
        json!(0),
        "key must be absent"
    );
    run(&p, &["ECHO", &marker], false).await.expect("marker");

    // The server saw no SET/DEL/... for the key: everything up to the marker.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(remaining, lines.next())
            .await
            .expect("marker in MONITOR")
            .expect("monitor line");
        if line.contains(&marker) {
            break;
        }
        seen.push(line);
    }
    // A MONITOR line: `<time> [<db> <addr>] "CMD" "arg" ...`
    let command_of = |line: &str| -> (String, String) {
        let rest = line.split_once("] ").map_or("", |(_, r)| r);
        let mut words = rest
            .split("\" \"")
            .map(|w| w.trim_matches('"').to_ascii_uppercase());
        (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        )
    };
    let bad: Vec<&String> = seen
        .iter()
        .filter(|l| {
            let (cmd, sub) = command_of(l);
            // Other tests run beside this one: keyed commands count only with our key.
            ["FLUSHALL", "FOOBAR", "EVAL", "SHUTDOWN"].contains(&cmd.as_str())
                || (cmd == "CONFIG" && sub != "GET")
                || (["SET", "DEL", "LPUSH", "BLPOP"].contains(&cmd.as_str()) && l.contains(&key))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "refused commands reached the server: {bad:?}"
    );
    assert!(
        seen.iter().any(|l| l.contains("\"EXISTS\"")),
        "MONITOR saw our traffic: {seen:?}"
    );
}

#[tokio::test]
async fn mutating_sends_writes() {
    let p = pool();
    let key = unique("opsctl:test:set");
    assert_eq!(
        run(&p, &["SET", &key, "v1"], true).await.expect("set"),
        json!("OK")
    );
    assert_eq!(
        run(&p, &["GET", &key], false).await.expect("get"),
        json!("v1")
    );
    assert_eq!(run(&p, &["DEL", &key], true).await.expect("del"), json!(1));
}

#[tokio::test]
async fn connection_state_commands_are_unsupported() {
    let p = pool();
    for args in [
        &["SUBSCRIBE", "x"][..],
        &["MULTI"],
        &["SELECT", "1"],
        &["CLIENT", "REPLY", "OFF"],
        &["MONITOR"],
    ] {
        match view(&run(&p, args, true).await) {
            Err(ErrorView::Unsupported(msg)) => {
                assert!(msg.starts_with("redis cache: "), "{msg}")
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert!(matches!(
        view(&run(&p, &[], false).await),
        Err(ErrorView::InvalidArgs(_))
    ));
}

#[tokio::test]
async fn wrong_password_is_auth_without_the_password() {
    let secret = "wrong-redis-secret-77";
    let p = pool_for(&with_password(&env("OPSCTL_TEST_REDIS_URL"), secret), 1);
    match run(&p, &["PING"], false).await.expect_err("auth").view() {
        ErrorView::Auth(msg) => {
            assert!(
                msg.starts_with(
                    "redis cache: WRONGPASS invalid username-password pair or user is disabled"
                ),
                "{msg}"
            );
            assert!(!msg.contains(secret));
        }
        other => panic!("{other:?}"),
    }
    // no password at all on a server that needs one
    let url = env("OPSCTL_TEST_REDIS_URL");
    let host = url.split('@').nth(1).expect("host");
    let p = pool_for(&format!("redis://{host}"), 1);
    match run(&p, &["GET", "x"], false)
        .await
        .expect_err("noauth")
        .view()
    {
        ErrorView::Auth(msg) => assert_eq!(msg, "redis cache: NOAUTH Authentication required."),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_port_is_unreachable_fast() {
    let port = closed_port();
    let p = pool_for(
        &with_hostport(&env("OPSCTL_TEST_REDIS_URL"), &format!("127.0.0.1:{port}")),
        1,
    );
    let start = Instant::now();
    match run(&p, &["PING"], false).await.expect_err("refused").view() {
        ErrorView::Unreachable(msg) => {
            assert_eq!(
                msg,
                format!("redis cache: cannot connect to 127.0.0.1:{port}: connection refused")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    let p = pool_for("redis://no-such-host.invalid:6379/0", 1);
    assert!(
        matches!(view(&run(&p, &["PING"], false).await), Err(ErrorView::Unreachable(m)) if m.contains("no-such-host.invalid:6379"))
    );
}

#[tokio::test]
async fn bad_config_is_config_error() {
    init();
    assert!(matches!(
        view(&RedisPool::new("cache", "http://x", 1, None)),
        Err(ErrorView::Config(_))
    ));
    let r = RedisPool::new(
        "cache",
        "redis://:pw-secret-9@h:1/0",
        1,
        Some(std::path::Path::new("/etc/hostname")),
    );
    assert!(
        matches!(view(&r), Err(ErrorView::Config(m)) if m.contains("not rediss://") && !m.contains("pw-secret-9")),
        "{r:?}"
    );
    let r = RedisPool::new(
        "cache",
        "rediss://h:1/0",
        1,
        Some(std::path::Path::new("/nonexistent.pem")),
    );
    assert!(
        matches!(view(&r), Err(ErrorView::Config(m)) if m.contains("cannot read CA file")),
        "{r:?}"
    );
}

/// Our connection killed mid-command → Unreachable; a dead idle connection is replaced for reads.
#[tokio::test]
async fn server_going_away() {
    let p = Arc::new(pool_for(&env("OPSCTL_TEST_REDIS_URL"), 1));
    let key = unique("opsctl:test:block");
    let id = run(&p, &["CLIENT", "ID"], false).await.expect("client id");
    let id = id.as_i64().expect("id");
    let task = {
        let p = p.clone();
        let key = key.clone();
        tokio::spawn(async move {
            p.command(&argv(&["BLPOP", &key, "10"]), true, Duration::ZERO)
                .await
        })
    };
    let mut raw = raw_conn().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query_async(&mut raw)
            .await
            .expect("list");
        if list.contains("cmd=blpop") {
            break;
        }
        assert!(Instant::now() < deadline, "BLPOP never showed up: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut raw)
        .await
        .expect("kill");
    assert_eq!(killed, 1);
    match task.await.expect("join").expect_err("killed").view() {
        ErrorView::Unreachable(msg) => {
            assert!(msg.starts_with("redis cache: connection closed: "), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // idle connection killed while idle: a read is retried on a new connection
    let id = run(&p, &["CLIENT", "ID"], false)
        .await
        .expect("client id")
        .as_i64()
        .expect("id");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut raw)
        .await
        .expect("kill");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        run(&p, &["PING"], false).await.expect("retried"),
        json!("PONG")
    );
}

/// `redis-cli -3 --json` (RESP3, as the server means its replies) run against the test server:
/// the oracle for our conversion. Fails with instructions when redis-cli is missing.
fn redis_cli_json(url: &str, args: &[&str]) -> Value {
    let parsed = redis::parse_redis_url(url).expect("test Redis URL");
    let db = parsed.path().trim_start_matches('/');
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args(["-3", "--json", "-h"])
        .arg(parsed.host_str().unwrap_or("127.0.0.1"))
        .arg("-p")
        .arg(parsed.port().unwrap_or(6379).to_string())
        .arg("-n")
        .arg(if db.is_empty() { "0" } else { db })
        .args(args)
        .env_remove("REDISCLI_AUTH");
    if let Some(pw) = parsed.password() {
        // In the environment, not argv: redis-cli takes it from there without a warning.
        cmd.env("REDISCLI_AUTH", pw);
    }
    if !parsed.username().is_empty() {
        cmd.arg("--user").arg(parsed.username());
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run redis-cli ({e}); install it (Debian: apt-get install redis-tools)")
    });
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("redis-cli {args:?}: {e}: {text}"))
}

/// A `CLIENT INFO` reply has `key=value` among its blank-separated fields.
fn has_field(client_info: &Value, field: &str) -> bool {
    client_info
        .as_str()
        .is_some_and(|s| s.split_whitespace().any(|f| f == field))
}

#[tokio::test]
async fn replies_match_redis_cli_resp3() {
    let url = env("OPSCTL_TEST_REDIS_URL");
    let p = pool_for(&url, 1);
    let k = unique("opsctl:test:resp3");
    let (hash, zset, stream, set) = (
        format!("{k}:hash"),
        format!("{k}:zset"),
        format!("{k}:stream"),
        format!("{k}:set"),
    );
    for args in [
        &["HSET", &hash, "f1", "v1", "f2", "2"][..],
        &["ZADD", &zset, "0.1", "a", "2.5", "b"],
        &["XADD", &stream, "1-1", "field", "value"],
        &["SADD", &set, "only"],
    ] {
        run(&p, args, true).await.expect("setup");
    }
    let checks: &[(&[&str], Value)] = &[
        (&["HGETALL", &hash], json!({"f1": "v1", "f2": "2"})),
        (&["CONFIG", "GET", "maxmemory"], json!({"maxmemory": "0"})),
        (&["ZSCORE", &zset, "a"], json!(0.1)),
        (&["ZSCORE", &zset, "nope"], Value::Null),
        (&["ZMSCORE", &zset, "a", "b"], json!([0.1, 2.5])),
        (
            &["ZRANGE", &zset, "0", "-1", "WITHSCORES"],
            json!([["a", 0.1], ["b", 2.5]]),
        ),
        (&["SMEMBERS", &set], json!(["only"])),
        (&["SISMEMBER", &set, "only"], json!(1)),
        (
            &["EVAL_RO", "redis.setresp(3); return true", "0"],
            json!(true),
        ),
        (
            &["EVAL_RO", "redis.setresp(3); return false", "0"],
            json!(false),
        ),
        (&["EVAL_RO", "return {double=0.1}", "0"], json!(0.1)),
        (&["EVAL_RO", "return {map={a=1}}", "0"], json!({"a": 1})),
    ];
    for (args, want) in checks {
        let got = run(&p, args, false).await.expect("command");
        assert_eq!(&got, want, "{args:?}");
        // redis-cli prints doubles with 17 digits (0.10000000000000001): equal as numbers.
        assert_eq!(got, redis_cli_json(&url, args), "{args:?} vs redis-cli");
    }
    // Shortest form: 0.1, not 0.10000000000000001.
    let score = run(&p, &["ZSCORE", &zset, "a"], false)
        .await
        .expect("zscore");
    assert_eq!(score.to_string(), "0.1");

    let xinfo = run(&p, &["XINFO", "STREAM", &stream], false)
        .await
        .expect("xinfo");
    assert_eq!(xinfo["length"], json!(1));
    assert_eq!(xinfo["last-entry"], json!(["1-1", ["field", "value"]]));
    assert_eq!(
        xinfo,
        redis_cli_json(&url, &["XINFO", "STREAM", &stream]),
        "XINFO STREAM vs redis-cli"
    );

    // Beyond what redis-cli 7.0 can print: a big number, a verbatim string, a set.
    assert_eq!(
        run(
            &p,
            &[
                "EVAL_RO",
                "return {big_number='123456789012345678901234567890'}",
                "0"
            ],
            false
        )
        .await
        .expect("big number"),
        json!("123456789012345678901234567890")
    );
    assert_eq!(
        run(
            &p,
            &[
                "EVAL_RO",
                "return {verbatim_string={format='txt', string='hi'}}",
                "0"
            ],
            false
        )
        .await
        .expect("verbatim"),
        json!("hi")
    );
    assert_eq!(
        run(&p, &["ZINCRBY", &zset, "inf", "b"], true)
            .await
            .expect("zincrby"),
        json!("Infinity")
    );
    let info = run(&p, &["CLIENT", "INFO"], false)
        .await
        .expect("client info");
    assert!(has_field(&info, "resp=3"), "{info}");
    run(&p, &["DEL", &hash, &zset, &stream, &set], true)
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn binary_and_text_stay_distinct() {
    let p = pool();
    let k = unique("opsctl:test:bin");
    let (bin, text) = (format!("{k}:bin"), format!("{k}:text"));
    let mut raw = raw_conn().await;
    redis::cmd("SET")
        .arg(&bin)
        .arg(&[0x61u8, 0x00, 0xff, 0xfe, 0x62][..])
        .exec_async(&mut raw)
        .await
        .expect("binary set");
    run(&p, &["SET", &text, "base64:YQD//mI="], true)
        .await
        .expect("text set");
    let got_bin = run(&p, &["GET", &bin], false).await.expect("get bin");
    let got_text = run(&p, &["GET", &text], false).await.expect("get text");
    assert_eq!(got_bin, json!({"base64": "YQD//mI="}));
    assert_eq!(got_text, json!("base64:YQD//mI="));
    assert_ne!(got_bin, got_text);
    // Valid UTF-8 with a NUL byte is text.
    redis::cmd("SET")
        .arg(&bin)
        .arg(&b"a\x00b"[..])
        .exec_async(&mut raw)
        .await
        .expect("nul set");
    assert_eq!(
        run(&p, &["GET", &bin], false).await.expect("get nul"),
        json!("a\u{0}b")
    );
    run(&p, &["DEL", &bin, &text], true).await.expect("cleanup");
}

#[tokio::test]
async fn resp2_when_the_url_asks() {
    let url = with_param(&env("OPSCTL_TEST_REDIS_URL"), "protocol=resp2");
    let p = pool_for(&url, 1);
    let k = unique("opsctl:test:resp2");
    let (hash, zset) = (format!("{k}:hash"), format!("{k}:zset"));
    run(&p, &["HSET", &hash, "a", "1"], true)
        .await
        .expect("hset");
    run(&p, &["ZADD", &zset, "0.5", "m"], true)
        .await
        .expect("zadd");
    assert_eq!(
        run(&p, &["HGETALL", &hash], false).await.expect("hgetall"),
        json!(["a", "1"])
    );
    assert_eq!(
        run(&p, &["ZSCORE", &zset, "m"], false)
            .await
            .expect("zscore"),
        json!("0.5")
    );
    let info = run(&p, &["CLIENT", "INFO"], false)
        .await
        .expect("client info");
    assert!(has_field(&info, "resp=2"), "{info}");
    run(&p, &["DEL", &hash, &zset], true)
        .await
        .expect("cleanup");
}

/// A real redis-server of our own, with HELLO renamed away: what a Redis 5 server answers to
/// HELLO (`ERR unknown command`). Killed on drop.
struct OldStyleServer {
    child: std::process::Child,
    port: u16,
    password: &'static str,
}

impl OldStyleServer {
    fn start() -> OldStyleServer {
        let port = closed_port();
        let password = "old-style-pw-41";
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--save", "", "--appendonly", "no", "--requirepass", password])
            .args(["--rename-command", "HELLO", ""])
            .args(["--daemonize", "no", "--logfile", ""])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it (Debian: apt-get install redis-server)")
            });
        let server = OldStyleServer {
            child,
            port,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/1", self.port)
    }
}

impl Drop for OldStyleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn falls_back_to_resp2_without_hello() {
    let server = OldStyleServer::start();
    let p = pool_for(&server.url(server.password), 1);
    run(&p, &["HSET", "h", "a", "1"], true).await.expect("hset");
    assert_eq!(
        run(&p, &["HGETALL", "h"], false).await.expect("hgetall"),
        json!(["a", "1"])
    );
    let info = run(&p, &["CLIENT", "INFO"], false)
        .await
        .expect("client info");
    for field in ["resp=2", "db=1", "name=opsctl"] {
        assert!(has_field(&info, field), "{field}: {info}");
    }

    // Wrong password: the server's words, not the password (which an old server's
    // "unknown command" error echoes).
    let secret = "wrong-old-style-secret";
    let p = pool_for(&server.url(secret), 1);
    match run(&p, &["PING"], false).await.expect_err("auth").view() {
        ErrorView::Auth(msg) => {
            assert!(msg.starts_with("redis cache: WRONGPASS"), "{msg}");
            assert!(!msg.contains(secret), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // RESP3 demanded: refused, with the reason.
    let url = with_param(&server.url(server.password), "protocol=resp3");
    let p = pool_for(&url, 1);
    match run(&p, &["PING"], false)
        .await
        .expect_err("no resp3")
        .view()
    {
        ErrorView::Unsupported(msg) => {
            assert!(
                msg.starts_with("redis cache: the server does not speak RESP3"),
                "{msg}"
            );
            assert!(!msg.contains(server.password), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}
