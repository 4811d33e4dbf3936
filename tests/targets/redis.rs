//! The redis pool against the real test server.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::*;
use futures::StreamExt;
use opsctl::actions::ActionError;
use opsctl::targets::redis::RedisPool;
use serde_json::{Value, json};

fn pool_for(url: &str, size: usize) -> RedisPool {
    init();
    RedisPool::new("cache", url, size, None, redactor()).expect("pool")
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
    let p = RedisPool::new("cache", "redis://127.0.0.1:1/0", 1, None, redactor()).expect("pool");
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
        json!(["f1", "v1", "f2", "v2"])
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
        json!("base64:/wBB")
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
        json!(["maxmemory", "0"])
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
    assert_eq!(xinfo[0], json!("length"));

    match run(&p, &["LLEN", &hash], false)
        .await
        .expect_err("wrongtype")
    {
        ActionError::Failed(msg) => {
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
    {
        ActionError::Refused(msg) => assert_eq!(
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
        match run(&p, args, false).await {
            Err(ActionError::Refused(msg)) => {
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
        match run(&p, args, true).await {
            Err(ActionError::Unsupported(msg)) => {
                assert!(msg.starts_with("redis cache: "), "{msg}")
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert!(matches!(
        run(&p, &[], false).await,
        Err(ActionError::InvalidArgs(_))
    ));
}

#[tokio::test]
async fn wrong_password_is_auth_without_the_password() {
    let secret = "wrong-redis-secret-77";
    let p = pool_for(&with_password(&env("OPSCTL_TEST_REDIS_URL"), secret), 1);
    match run(&p, &["PING"], false).await.expect_err("auth") {
        ActionError::Auth(msg) => {
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
    match run(&p, &["GET", "x"], false).await.expect_err("noauth") {
        ActionError::Auth(msg) => assert!(msg.starts_with("redis cache: NOAUTH"), "{msg}"),
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
    match run(&p, &["PING"], false).await.expect_err("refused") {
        ActionError::Unreachable(msg) => {
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
        matches!(run(&p, &["PING"], false).await, Err(ActionError::Unreachable(m)) if m.contains("no-such-host.invalid:6379"))
    );
}

#[tokio::test]
async fn bad_config_is_config_error() {
    init();
    assert!(matches!(
        RedisPool::new("cache", "http://x", 1, None, redactor()),
        Err(ActionError::Config(_))
    ));
    let r = RedisPool::new(
        "cache",
        "redis://:pw-secret-9@h:1/0",
        1,
        Some(std::path::Path::new("/etc/hostname")),
        redactor(),
    );
    assert!(
        matches!(r, Err(ActionError::Config(ref m)) if m.contains("not rediss://") && !m.contains("pw-secret-9")),
        "{r:?}"
    );
    let r = RedisPool::new(
        "cache",
        "rediss://h:1/0",
        1,
        Some(std::path::Path::new("/nonexistent.pem")),
        redactor(),
    );
    assert!(
        matches!(r, Err(ActionError::Config(ref m)) if m.contains("cannot read CA file")),
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
    match task.await.expect("join").expect_err("killed") {
        ActionError::Unreachable(msg) => {
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
