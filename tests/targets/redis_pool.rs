//! The pool bound and dropped calls, observed by the server. The pool uses its own database
//! number, so `CLIENT LIST` tells its connections (`name=opsctl db=N`) from other tests' (and,
//! mostly, from another test run against the same server: N depends on the process id).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::common::*;
use opsctl::targets::redis::RedisPool;
use serde_json::json;

/// Database used only by this test.
fn db() -> u32 {
    8 + std::process::id() % 8
}

/// `(blocked, open)`: our pool's connections (`name=opsctl`, `db=N`) blocked / open now.
async fn observe(raw: &mut redis::aio::MultiplexedConnection) -> (i64, i64) {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(raw)
        .await
        .expect("client list");
    let ours: Vec<&str> = list
        .lines()
        .filter(|l| l.contains(" name=opsctl ") && l.contains(&format!(" db={} ", db())))
        .collect();
    let blocked = ours
        .iter()
        .filter(|l| {
            l.split(' ')
                .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('b')))
        })
        .count();
    (blocked as i64, ours.len() as i64)
}

fn pool_url() -> String {
    let url = env("OPSCTL_TEST_REDIS_URL");
    let base = match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |j| j + 2) => &url[..i],
        _ => url.as_str(),
    };
    format!("{base}/{}", db())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_size_connections_and_dropped_calls_close_theirs() {
    init();
    let pool = Arc::new(RedisPool::new("cache", &pool_url(), 4, None).expect("pool"));
    let key = unique("opsctl:test:pool");
    let client = redis::Client::open(env("OPSCTL_TEST_REDIS_URL")).expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("observer");

    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let done = done.clone();
        let mut raw = raw.clone();
        tokio::spawn(async move {
            let (mut max_blocked, mut max_conns, mut samples) = (0, 0, 0);
            while !done.load(Ordering::Relaxed) {
                let (blocked, conns) = observe(&mut raw).await;
                max_blocked = max_blocked.max(blocked);
                max_conns = max_conns.max(conns);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (max_blocked, max_conns, samples)
        })
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            let args = vec!["BLPOP".to_string(), key.clone(), "1".to_string()];
            tokio::spawn(async move { pool.command(&args, true, Duration::ZERO).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await
                .expect("join")
                .expect("every caller eventually runs"),
            serde_json::Value::Null
        );
    }
    done.store(true, Ordering::Relaxed);
    let (max_blocked, max_conns, samples) = observer.await.expect("observer");
    eprintln!(
        "server saw at most {max_blocked} blocked and {max_conns} opsctl connections ({samples} samples, {:?})",
        start.elapsed()
    );
    assert!(max_blocked <= 4, "{max_blocked} blocked at once");
    assert!(max_conns <= 4, "{max_conns} connections");
    assert!(
        max_blocked >= 3,
        "pool not used in parallel: at most {max_blocked}"
    );

    // A call dropped mid-command closes its connection: the server stops blocking at once.
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        pool.command(
            &["BLPOP".to_string(), key.clone(), "30".to_string()],
            true,
            Duration::ZERO,
        ),
    )
    .await;
    assert!(r.is_err(), "should have been cut short");
    let deadline = Instant::now() + Duration::from_secs(3);
    while observe(&mut raw).await.0 != 0 {
        assert!(
            Instant::now() < deadline,
            "dropped BLPOP still blocked on the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // and the pool is whole again (its permit came back)
    let len = pool
        .command(&["LLEN".to_string(), key.clone()], false, Duration::ZERO)
        .await
        .expect("after drop");
    assert_eq!(len, json!(0));
}
