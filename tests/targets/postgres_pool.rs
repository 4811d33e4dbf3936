//! The Postgres pool bound, observed by the server: queries beyond the pool wait, never fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::common::*;
use opsctl::targets::postgres::PgPool;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_size_connections_and_callers_wait() {
    init();
    let app = unique("opsctl_pool");
    let url = with_param(
        &env("OPSCTL_TEST_DATABASE_URL"),
        &format!("application_name={app}"),
    );
    let pool = Arc::new(PgPool::new("primary", &url, 5, None).expect("pool"));
    let admin = pg_admin().await;

    let done = Arc::new(AtomicBool::new(false));
    let observer = {
        let done = done.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let (mut max_active, mut max_conns, mut samples) = (0i64, 0i64, 0u32);
            while !done.load(Ordering::Relaxed) {
                let row = admin
                    .query_one(
                        "SELECT count(*) FILTER (WHERE state = 'active' AND query LIKE '%pg_sleep%'), count(*) \
                         FROM pg_stat_activity WHERE application_name = $1",
                        &[&app],
                    )
                    .await
                    .expect("poll");
                max_active = max_active.max(row.get(0));
                max_conns = max_conns.max(row.get(1));
                samples += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            (max_active, max_conns, samples)
        })
    };

    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.query("SELECT pg_sleep(0.3)", &[], false, Duration::from_secs(30))
                    .await
            })
        })
        .collect();
    for t in tasks {
        let r = t
            .await
            .expect("join")
            .expect("every caller eventually runs");
        assert_eq!(r.row_count, 1);
    }
    done.store(true, Ordering::Relaxed);
    let (max_active, max_conns, samples) = observer.await.expect("observer");
    eprintln!(
        "server saw at most {max_active} running and {max_conns} connections ({samples} samples)"
    );
    assert!(max_active <= 5, "server saw {max_active} queries at once");
    assert!(max_conns <= 5, "server saw {max_conns} connections");
    assert!(
        max_active >= 4,
        "pool not used in parallel: at most {max_active} at once"
    );
}
