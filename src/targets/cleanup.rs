//! Work that must finish after a step is gone: the cancel request for a Postgres query
//! whose step was cancelled or timed out. Clients hand it to [`spawn`]; a run waits for it
//! ([`wait`], bounded) before opsctl exits, so Ctrl-C stops the query on the server too.

use std::sync::LazyLock;
use std::time::Duration;

use tokio_util::task::TaskTracker;

static PENDING: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Runs `work` on the current runtime and remembers it until it ends.
pub fn spawn<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        PENDING.spawn_on(work, &handle);
    }
}

/// Waits for every pending clean-up, at most `limit`.
pub async fn wait(limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        // `wait` returns once the tracker is closed and empty; reopen for later runs
        // of this process (tests, a long-running server).
        PENDING.close();
        PENDING.wait().await;
        PENDING.reopen();
    })
    .await;
    PENDING.reopen();
}
