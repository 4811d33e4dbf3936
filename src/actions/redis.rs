//! `redis`: one command on a pooled connection of a target. Writes are refused before
//! anything is sent unless `mutating: true`; "write" is decided from the server's own
//! command flags (`COMMAND INFO`), and unknown commands count as writes.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::spec::{ActionSpec, ArgsSchema, OutputSpec, StrList};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Redis;

crate::action_args! {
    /// Arguments of `redis`.
    pub struct RedisArgs {
        /// A redis target of the config (`default`).
        target: Option<String>,
        /// Command and arguments, e.g. `[LLEN, "dlq:jobs"]`.
        command: StrList = required,
        /// Allow write commands (asks for confirmation; false).
        mutating: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "redis",
    summary: "Run a Redis command.",
    args: <RedisArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "value",
            doc: "The reply as JSON (strings, integers, lists, maps).",
        },
        OutputSpec {
            name: "truncated",
            doc: "Whether a list reply was cut to its first 10 000 items.",
        },
        OutputSpec {
            name: "info",
            doc: "For INFO: the fields as a map (numbers as numbers).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to answer.",
        },
    ],
    exclusive: &[],
    mutating: "write commands, only with `mutating: true` (refused otherwise)",
    default_expect: "no error answer",
};

impl ActionImpl for Redis {
    type Args = RedisArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<&'static str> {
        Some("redis")
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        super::spec::check_not_empty(&SPEC, args, "command", cx);
    }

    fn mutates(&self, a: &RedisArgs) -> bool {
        a.mutating
    }

    fn times_itself(&self) -> bool {
        true
    }

    fn describe(&self, a: &RedisArgs, _env: &EnvConfig) -> String {
        format!(
            "redis {}: {}",
            a.target.as_deref().unwrap_or("default"),
            a.command.0.join(" ")
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: RedisArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let argv = a.command.0;
            if argv.is_empty() {
                return Err(ActionError::InvalidArgs("redis: `command` is empty".into()));
            }
            let target = a.target.as_deref().unwrap_or("default");
            let pool = cx.clients().redis(target).await?;
            let started = Instant::now();
            let value = pool.command(&argv, a.mutating, cx.timeout()).await?;
            let latency = latency_ms(started);
            let mut out = Outputs::new();
            if argv[0].eq_ignore_ascii_case("info") {
                if let Some(text) = value.as_str() {
                    out.insert("info".into(), Value::Object(parse_info(text)));
                }
            }
            let (value, truncated) = match value {
                Value::Array(mut items) if items.len() > super::MAX_ITEMS => {
                    items.truncate(super::MAX_ITEMS);
                    (Value::Array(items), true)
                }
                other => (other, false),
            };
            out.insert("value".into(), value);
            out.insert("truncated".into(), json!(truncated));
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}

/// `INFO` text → map of fields; numbers become numbers, `a=1,b=2` values become maps.
pub fn parse_info(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let value = if v.contains('=') && v.contains(',')
            || (v.contains('=') && !v.contains(' ') && k.starts_with("db"))
        {
            Value::Object(
                v.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(a, b)| (a.to_string(), scalar(b)))
                    .collect(),
            )
        } else {
            scalar(v)
        };
        out.insert(k.to_string(), value);
    }
    out
}

fn scalar(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() {
            return json!(f);
        }
    }
    Value::String(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let text = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmem_fragmentation_ratio:1.5\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n";
        let info = parse_info(text);
        assert_eq!(info["used_memory"], json!(1048576));
        assert_eq!(info["used_memory_human"], json!("1.00M"));
        assert_eq!(info["mem_fragmentation_ratio"], json!(1.5));
        assert_eq!(info["db0"]["keys"], json!(3));
    }
}
