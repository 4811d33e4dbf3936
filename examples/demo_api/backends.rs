//! The demo API's connections to Postgres (the jobs table) and Redis (the dead letter
//! queue `dlq:jobs`), each opened on first use and opened again after the server went
//! away, so the API survives a dependency that stops and comes back, as a real service
//! must; and the job workers that drain the queue.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::metrics::Metrics;

/// The Redis list holding jobs that failed (the seeds' dead letter queue).
pub const DLQ_KEY: &str = "dlq:jobs";

/// How long a dependency gets to answer before it counts as down.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);

/// The jobs table the workers drain and the queue-depth gauge counts.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id            bigserial PRIMARY KEY,
    tenant_id     text NOT NULL,
    job_type      text NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    payload       jsonb NOT NULL DEFAULT '{}',
    attempt_count int NOT NULL DEFAULT 0,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_status_id ON jobs (status, id);
";

/// A Postgres connection, (re)opened on demand.
pub struct Pg {
    url: String,
    client: Mutex<Option<Arc<tokio_postgres::Client>>>,
}

impl Pg {
    pub fn new(url: String) -> Pg {
        Pg {
            url,
            client: Mutex::new(None),
        }
    }

    pub async fn client(&self) -> Result<Arc<tokio_postgres::Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let (client, conn) = tokio::time::timeout(
            DEPENDENCY_TIMEOUT,
            tokio_postgres::connect(&self.url, tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// `SELECT 1`, within the dependency timeout.
    pub async fn ping(&self) -> Result<(), String> {
        let c = self.client().await?;
        tokio::time::timeout(DEPENDENCY_TIMEOUT, c.simple_query("SELECT 1"))
            .await
            .map_err(|_| "query timed out".to_string())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Job counts by status (every status present, 0 when none).
    pub async fn queue_depth(&self) -> Result<std::collections::BTreeMap<String, i64>, String> {
        let c = self.client().await?;
        let rows = tokio::time::timeout(
            DEPENDENCY_TIMEOUT,
            c.query("SELECT status, count(*) FROM jobs GROUP BY status", &[]),
        )
        .await
        .map_err(|_| "query timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let mut depth: std::collections::BTreeMap<String, i64> =
            ["pending", "running", "completed", "failed"]
                .iter()
                .map(|s| ((*s).to_string(), 0))
                .collect();
        for row in rows {
            let status: String = row.try_get(0).map_err(|e| e.to_string())?;
            let n: i64 = row.try_get(1).map_err(|e| e.to_string())?;
            depth.insert(status, n);
        }
        Ok(depth)
    }
}

/// A Redis connection, (re)opened on demand.
pub struct Redis {
    client: redis::Client,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl Redis {
    pub fn new(url: &str) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis URL: {e}"))?;
        Ok(Redis {
            client,
            conn: Mutex::new(None),
        })
    }

    /// Runs one command; a failed command drops the connection so the next one reconnects.
    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut slot = self.conn.lock().await;
        let mut conn = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = tokio::time::timeout(
                    DEPENDENCY_TIMEOUT,
                    self.client.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let result = tokio::time::timeout(DEPENDENCY_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .await
            .map_err(|_| "command timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    pub async fn ping(&self) -> Result<(), String> {
        let pong: String = self.cmd(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("PING answered {pong:?}"))
        }
    }
}

/// Claims up to `$1` pending jobs and finishes them: a job whose payload names a `fail`
/// reason fails with it (a poison message), every other one completes.
const CLAIM_SQL: &str = "
WITH picked AS (
    SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET status = CASE WHEN j.payload ? 'fail' THEN 'failed' ELSE 'completed' END,
    error_message = j.payload->>'fail',
    attempt_count = j.attempt_count + 1,
    updated_at = now()
FROM picked
WHERE j.id = picked.id
RETURNING j.id, j.tenant_id, j.job_type, j.status, j.error_message, j.attempt_count,
          to_char(j.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
";

/// One round of the workers: with Redis answering (jobs take a lease there, and failed
/// ones go to its dead letter queue) claim a batch, finish it, and push the failures to
/// `dlq:jobs`. Returns (completed, failed).
pub async fn work_once(
    pg: &Pg,
    redis: &Redis,
    metrics: &Metrics,
    batch: i64,
) -> Result<(u64, u64), String> {
    redis.ping().await.map_err(|e| format!("redis: {e}"))?;
    let client = pg.client().await.map_err(|e| format!("postgres: {e}"))?;
    let rows = client
        .query(CLAIM_SQL, &[&batch])
        .await
        .map_err(|e| format!("postgres: {e}"))?;
    let (mut completed, mut failed) = (0u64, 0u64);
    for row in rows {
        let status: String = row.try_get(3).map_err(|e| e.to_string())?;
        if status != "failed" {
            completed += 1;
            continue;
        }
        failed += 1;
        let entry = json!({
            "job_id": row.try_get::<_, i64>(0).map_err(|e| e.to_string())?,
            "tenant_id": row.try_get::<_, String>(1).map_err(|e| e.to_string())?,
            "job_type": row.try_get::<_, String>(2).map_err(|e| e.to_string())?,
            "error": row.try_get::<_, Option<String>>(4).map_err(|e| e.to_string())?,
            "attempts": row.try_get::<_, i32>(5).map_err(|e| e.to_string())?,
            "failed_at": row.try_get::<_, String>(6).map_err(|e| e.to_string())?,
        });
        let _: i64 = redis
            .cmd(redis::cmd("RPUSH").arg(DLQ_KEY).arg(entry.to_string()))
            .await
            .map_err(|e| format!("redis: {e}"))?;
    }
    metrics.jobs(completed, failed);
    Ok((completed, failed))
}

/// A DLQ entry as stored (JSON), or the raw text when it is not JSON.
pub fn parse_entry(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}
