//! The demo API's own Prometheus metrics: what it really counts (requests by method,
//! endpoint and status, their durations, the jobs its workers finished), rendered in the
//! text exposition format together with gauges read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the request-duration histogram, in seconds (Prometheus client defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts, one per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<(String, String), Histogram>,
    jobs_completed: u64,
    jobs_failed: u64,
}

/// Counters shared by the request handlers and the workers.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

/// Gauges read when Prometheus scrapes: job counts by status (None when Postgres did not
/// answer) and whether each dependency answered.
pub struct Gauges {
    pub queue_depth: Option<BTreeMap<String, i64>>,
    pub dependencies: Vec<(&'static str, bool)>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding the lock cannot leave the counters half-updated in a way
        // that matters for a demo; keep serving.
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One request answered.
    pub fn observe(&self, method: &str, endpoint: &str, status: u16, seconds: f64) {
        let mut c = self.lock();
        *c.requests
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default() += 1;
        let h = c
            .durations
            .entry((method.to_string(), endpoint.to_string()))
            .or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.buckets[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Jobs the workers finished.
    pub fn jobs(&self, completed: u64, failed: u64) {
        let mut c = self.lock();
        c.jobs_completed += completed;
        c.jobs_failed += failed;
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let c = self.lock();
        let mut out = String::new();
        out.push_str(
            "# HELP tg_tinker_requests_total Requests answered, by method, endpoint and status.\n",
        );
        out.push_str("# TYPE tg_tinker_requests_total counter\n");
        for ((method, endpoint, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "tg_tinker_requests_total{{method=\"{method}\",endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP tg_tinker_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE tg_tinker_request_duration_seconds histogram\n");
        for ((method, endpoint), h) in &c.durations {
            let labels = format!("method=\"{method}\",endpoint=\"{endpoint}\"");
            for (le, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "tg_tinker_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "tg_tinker_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "tg_tinker_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "tg_tinker_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out.push_str("# HELP tg_tinker_jobs_completed_total Jobs the workers completed.\n");
        out.push_str("# TYPE tg_tinker_jobs_completed_total counter\n");
        let _ = writeln!(out, "tg_tinker_jobs_completed_total {}", c.jobs_completed);
        out.push_str(
            "# HELP tg_tinker_jobs_failed_total Jobs that failed and went to the dead letter queue.\n",
        );
        out.push_str("# TYPE tg_tinker_jobs_failed_total counter\n");
        let _ = writeln!(out, "tg_tinker_jobs_failed_total {}", c.jobs_failed);
        if let Some(depth) = &gauges.queue_depth {
            out.push_str("# HELP tg_tinker_queue_depth Jobs in the jobs table, by status.\n");
            out.push_str("# TYPE tg_tinker_queue_depth gauge\n");
            for (status, n) in depth {
                let _ = writeln!(out, "tg_tinker_queue_depth{{status=\"{status}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP tg_tinker_dependency_up Whether a dependency answered during this scrape.\n",
        );
        out.push_str("# TYPE tg_tinker_dependency_up gauge\n");
        for (name, up) in &gauges.dependencies {
            let _ = writeln!(
                out,
                "tg_tinker_dependency_up{{dependency=\"{name}\"}} {}",
                u8::from(*up)
            );
        }
        out
    }
}
