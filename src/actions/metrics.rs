//! `metrics`: scrape a Prometheus text endpoint, select one metric by labels, aggregate.

use std::time::Instant;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{Endpoint, INSECURE_ARG, PATH_NEEDS_TARGET, URL_OR_TARGET, url_of};
use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str, latency_ms, parse_args};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::prometheus::{self, Aggregate};

pub struct Metrics;

const AGGREGATES: &[&str] = &["sum", "max", "min", "avg", "count"];
/// Scrapes beyond this size are refused rather than parsed.
const MAX_SCRAPE_BYTES: usize = 16 * 1024 * 1024;

static SPEC: ActionSpec = ActionSpec {
    name: "metrics",
    summary: "Scrape a Prometheus endpoint and read one metric.",
    args: &[
        ArgSpec {
            name: "url",
            ty: ArgType::Str,
            required: false,
            doc: "Full URL of the metrics endpoint.",
        },
        ArgSpec {
            name: "target",
            ty: ArgType::Str,
            required: false,
            doc: "An http target of the config.",
        },
        ArgSpec {
            name: "path",
            ty: ArgType::Str,
            required: false,
            doc: "Path under the target (`/metrics`).",
        },
        ArgSpec {
            name: "metric",
            ty: ArgType::Str,
            required: true,
            doc: "Sample name, e.g. `http_requests_total` or `x_bucket`.",
        },
        ArgSpec {
            name: "labels",
            ty: ArgType::StrMap,
            required: false,
            doc: "Exact label matches.",
        },
        ArgSpec {
            name: "aggregate",
            ty: ArgType::Enum(AGGREGATES),
            required: false,
            doc: "How series combine into `value` (sum).",
        },
        INSECURE_ARG,
    ],
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: Option<String>,
    target: Option<String>,
    path: Option<String>,
    metric: String,
    #[serde(default)]
    labels: Map<String, Value>,
    aggregate: Option<String>,
    #[serde(default)]
    insecure: bool,
}

impl Action for Metrics {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<crate::config::TargetKind> {
        Some(crate::config::TargetKind::Http)
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn describe(&self, args: &Value, env: &EnvConfig) -> String {
        let metric = arg_str(args, "metric").unwrap_or("?");
        let labels = match args.get("labels").and_then(Value::as_object) {
            Some(m) if !m.is_empty() => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", crate::expr::text_of(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => String::new(),
        };
        let agg = arg_str(args, "aggregate").unwrap_or("sum");
        format!(
            "{agg}({metric}{labels}) from {}",
            url_of(args, env, "/metrics")
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
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let a: Args = parse_args("metrics", args)?;
            let how: Aggregate = a.aggregate.as_deref().unwrap_or("sum").parse().map_err(
                |e: prometheus::UnknownAggregate| ActionError::InvalidArgs(e.to_string()),
            )?;
            let endpoint = Endpoint::resolve(
                cx,
                "metrics",
                a.url.as_deref(),
                a.target.as_deref(),
                a.path.as_deref(),
                "/metrics",
                a.insecure,
            )?;
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
            let matchers: Vec<(String, String)> = a
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), crate::expr::text_of(v)))
                .collect();
            let selected = expo.select(&a.metric, &matchers);
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
