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
use crate::targets::postgres::statement;

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
            name: "truncated",
            doc: "Whether `rows` holds only the first 10 000 rows (`row_count` counts them all).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to run the query.",
        },
    ],
    exclusive: &[],
    mutating: "with `mutating: true`, or when the query is anything but a read (SELECT, VALUES, TABLE, SHOW, SET LOCAL, EXPLAIN of those) or calls a function that acts outside transactions (pg_terminate_backend, advisory locks, nextval, dblink, ...), as PostgreSQL's own parser reads it; otherwise the query runs in a READ ONLY transaction",
    default_expect: "no error answer",
};

/// Whether a query may change something although it runs in a READ ONLY transaction: any
/// statement kind but a read, or a call to a function that acts outside the transaction
/// (judged on PostgreSQL's own parse tree, see [`statement`]).
pub fn acts_outside_transactions(query: &str) -> bool {
    statement::side_effect(query).is_some()
}

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
            || arg_str(args, "query").is_some_and(acts_outside_transactions)
    }

    fn times_itself(&self) -> bool {
        true
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        let query = arg_str(args, "query").unwrap_or("?");
        let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
        // Say why an undeclared query asks for confirmation: the reader must see it.
        let mode = if arg_bool(args, "mutating", false) {
            String::new()
        } else {
            match statement::side_effect(query) {
                Some(why) => format!(" (changes something: {why})"),
                None => " (read-only)".to_string(),
            }
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
            let pool = cx.clients().postgres(target)?;
            let started = Instant::now();
            let result = pool
                .query(&a.query, &a.params, a.mutating, cx.timeout())
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
            let truncated = result.rows.len() > super::MAX_ITEMS;
            out.insert(
                "rows".into(),
                Value::Array(
                    result
                        .rows
                        .into_iter()
                        .take(super::MAX_ITEMS)
                        .map(Value::Object)
                        .collect(),
                ),
            );
            out.insert("truncated".into(), json!(truncated));
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn side_effecting_functions_make_a_query_mutating() {
        let p = Postgres;
        assert!(!p.mutates(&json!({"query": "SELECT count(*) FROM pg_stat_activity"})));
        assert!(p.mutates(&json!({"query": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle'"})));
        assert!(p.mutates(&json!({"query": "select PG_ADVISORY_LOCK (42)"})));
        assert!(p.mutates(&json!({"query": "COPY t TO PROGRAM 'rm -rf /'"})));
        assert!(p.mutates(&json!({"query": "SELECT 1", "mutating": true})));
        assert!(!p.mutates(&json!({"query": "SELECT 'pg_terminate_backend is dangerous'"})));
        // Spellings a regular expression missed: the server calls the same function.
        for query in [
            "SELECT \"pg_terminate_backend\"(pid) FROM pg_stat_activity",
            "SELECT pg_terminate_backend/**/(pid) FROM pg_stat_activity",
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity",
            "WITH k AS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity) SELECT * FROM k",
            "SELECT * FROM pg_terminate_backend(1)",
            "SELECT nextval('s')",
            "LISTEN c",
            "DO $$ BEGIN END $$",
            "SELEC 1",
        ] {
            assert!(p.mutates(&json!({ "query": query })), "{query}");
        }
        assert!(!p.mutates(&json!({"query": "SELECT \"PG_TERMINATE_BACKEND\"(1)"})));
        assert!(!p.mutates(&json!({"query": "EXPLAIN SELECT * FROM pg_class"})));
    }

    #[test]
    fn the_description_says_why_a_query_asks_first() {
        let env = EnvConfig::default();
        let p = Postgres;
        assert_eq!(
            p.describe(
                &json!({"query": "SELECT \"pg_terminate_backend\"(1)"}),
                &env
            ),
            "postgres default (changes something: calls pg_terminate_backend(), which terminates another session): SELECT \"pg_terminate_backend\"(1)"
        );
        assert_eq!(
            p.describe(&json!({"query": "SELECT 1", "target": "primary"}), &env),
            "postgres primary (read-only): SELECT 1"
        );
        assert_eq!(
            p.describe(&json!({"query": "DELETE FROM t", "mutating": true}), &env),
            "postgres default: DELETE FROM t"
        );
    }
}
