//! `postgres`: one query on a pooled connection of a target. Unless `mutating: true`,
//! the query runs in a READ ONLY transaction, so the server itself refuses writes.

use std::time::Instant;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_bool, arg_str, latency_ms, parse_args};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Postgres;

static SPEC: ActionSpec = ActionSpec {
    name: "postgres",
    summary: "Run a SQL query.",
    args: &[
        ArgSpec {
            name: "target",
            ty: ArgType::Str,
            required: false,
            doc: "A postgres target of the config (`default`).",
        },
        ArgSpec {
            name: "query",
            ty: ArgType::Str,
            required: true,
            doc: "SQL, with `$1`, `$2`... for `params`.",
        },
        ArgSpec {
            name: "params",
            ty: ArgType::List,
            required: false,
            doc: "Positional parameters.",
        },
        ArgSpec {
            name: "mutating",
            ty: ArgType::Bool,
            required: false,
            doc: "Allow writes (asks for confirmation; false).",
        },
    ],
    outputs: &[
        OutputSpec {
            name: "rows",
            doc: "Rows as maps of column to value.",
        },
        OutputSpec {
            name: "row_count",
            doc: "Rows returned (or affected, for writes).",
        },
        OutputSpec {
            name: "value",
            doc: "First column of the first row (null if none).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to run the query.",
        },
    ],
    exclusive: &[],
    mutating: "only with `mutating: true`; otherwise the query runs in a READ ONLY transaction",
    default_expect: "no error answer",
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    target: Option<String>,
    query: String,
    #[serde(default)]
    params: Vec<Value>,
    #[serde(default)]
    mutating: bool,
}

impl Action for Postgres {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        super::spec::check_not_empty(&SPEC, args, "query", cx);
    }

    fn mutates(&self, args: &Value) -> bool {
        arg_bool(args, "mutating", false)
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        let query = arg_str(args, "query").unwrap_or("?");
        let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let mode = if self.mutates(args) {
            ""
        } else {
            " (read-only)"
        };
        format!(
            "postgres {}{mode}: {one_line}",
            arg_str(args, "target").unwrap_or("default")
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let a: Args = parse_args("postgres", args)?;
            let target = a.target.as_deref().unwrap_or("default");
            let pool = cx.clients().postgres(target).await?;
            let started = Instant::now();
            // A little under the step's timeout, so the server's own "canceling statement
            // due to statement timeout" is what the step reports.
            let statement_timeout = cx
                .timeout()
                .saturating_sub(std::time::Duration::from_millis(100))
                .max(std::time::Duration::from_millis(1));
            let result = pool
                .query(&a.query, &a.params, a.mutating, statement_timeout)
                .await?;

            let latency = latency_ms(started);
            let value = result
                .rows
                .first()
                .and_then(|r| r.values().next().cloned())
                .unwrap_or(Value::Null);
            let mut out = Outputs::new();
            out.insert("row_count".into(), json!(result.row_count));
            out.insert("value".into(), value);
            out.insert(
                "rows".into(),
                Value::Array(result.rows.into_iter().map(Value::Object).collect()),
            );
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}
