//! `metrics`: scrape a Prometheus text endpoint, select one metric by labels, aggregate.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::http::{Endpoint, PATH_NEEDS_TARGET, URL_OR_TARGET, url_of};
use super::spec::{ActionSpec, ArgsSchema, OutputSpec, StrMap};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::prometheus::{self, Aggregate};

pub struct Metrics;

/// Scrapes beyond this size are refused rather than parsed.
const MAX_SCRAPE_BYTES: usize = 16 * 1024 * 1024;

crate::arg_enum! {
    /// How matching series combine into `value`.
    pub enum AggregateArg {
        #[default]
        Sum = "sum",
        Max = "max",
        Min = "min",
        Avg = "avg",
        Count = "count",
    }
}

crate::action_args! {
    /// Arguments of `metrics`.
    pub struct MetricsArgs {
        /// Full URL of the metrics endpoint.
        url: Option<String>,
        /// An http target of the config.
        target: Option<String>,
        /// Path under the target (`/metrics`).
        path: Option<String>,
        /// Sample name, e.g. `http_requests_total` or `x_bucket`.
        metric: String = required,
        /// Exact label matches.
        labels: StrMap,
        /// How series combine into `value` (sum).
        aggregate: AggregateArg,
        /// Skip TLS certificate verification (false).
        insecure: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "metrics",
    summary: "Scrape a Prometheus endpoint and read one metric.",
    args: <MetricsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "value",
            doc: "The aggregate of the matching series (null when none match, except sum/count: 0).",
        },
        OutputSpec {
            name: "series",
            doc: "Matching series: list of `{labels, value}`.",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to scrape.",
        },
    ],
    exclusive: &[URL_OR_TARGET, PATH_NEEDS_TARGET],
    mutating: "never",
    default_expect: "the metric has at least one matching series",
};

impl ActionImpl for Metrics {
    type Args = MetricsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<&'static str> {
        Some("http")
    }

    fn describe(&self, a: &MetricsArgs, env: &EnvConfig) -> String {
        let labels = if a.labels.0.is_empty() {
            String::new()
        } else {
            format!(
                "{{{}}}",
                a.labels
                    .0
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        format!(
            "{}({}{labels}) from {}",
            a.aggregate.as_str(),
            a.metric,
            url_of(
                a.url.as_deref(),
                a.target.as_deref(),
                a.path.as_deref(),
                env,
                "/metrics"
            )
        )
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        let n = outputs
            .get("series")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        (n == 0).then(|| "no series matched".to_string())
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: MetricsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let how: Aggregate =
                a.aggregate
                    .as_str()
                    .parse()
                    .map_err(|e: prometheus::UnknownAggregate| {
                        ActionError::InvalidArgs(e.to_string())
                    })?;
            let endpoint = Endpoint::resolve(
                cx,
                "metrics",
                a.url.as_deref(),
                a.target.as_deref(),
                a.path.as_deref(),
                "/metrics",
                a.insecure,
            )
            .await?;
            let url = endpoint.url.clone();
            let req = endpoint
                .request(reqwest::Method::GET, &url)
                .header("accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1");
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| {
                ActionError::Unreachable(format!(
                    "GET {url}: {}",
                    crate::targets::http::error_text(&e)
                ))
                .with_source(e)
            })?;
            let status = resp.status();
            let (body, truncated) = crate::targets::http::read_body(resp, MAX_SCRAPE_BYTES)
                .await
                .map_err(|e| ActionError::Unreachable(format!("GET {url}: {e}")))?;
            let latency = latency_ms(started);
            if !status.is_success() {
                return Err(ActionError::Failed(format!(
                    "GET {url}: scrape answered HTTP {}",
                    status.as_u16()
                )));
            }
            if truncated {
                return Err(ActionError::Failed(format!(
                    "GET {url}: scrape is larger than {MAX_SCRAPE_BYTES} bytes"
                )));
            }
            let text = String::from_utf8_lossy(&body);
            let expo = prometheus::parse(&text).map_err(|e| {
                ActionError::Failed(format!("GET {url}: not Prometheus text format: {e}"))
            })?;
            let selected = expo.select(&a.metric, &a.labels.0);
            let value = prometheus::aggregate(&selected, how);
            let series: Vec<Value> = selected
                .iter()
                .map(|s| {
                    let labels: Map<String, Value> = s
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    json!({"labels": labels, "value": number(s.value)})
                })
                .collect();
            let mut out = Outputs::new();
            out.insert("value".into(), value.map_or(Value::Null, number));
            out.insert("series".into(), Value::Array(series));
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}

/// JSON has no NaN/Inf: they become strings so they stay visible.
fn number(v: f64) -> Value {
    if v.is_finite() {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            json!(v as i64)
        } else {
            json!(v)
        }
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("+Inf")
    } else {
        json!("-Inf")
    }
}
