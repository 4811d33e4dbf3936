//! `postgres`: one query on a pooled connection of a target. Unless `mutating: true`,
//! the query runs in a READ ONLY transaction, so the server itself refuses writes.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgsSchema, OutputSpec};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::targets::postgres::statement;

pub struct Postgres;

crate::action_args! {
    /// Arguments of `postgres`.
    pub struct PostgresArgs {
        /// A postgres target of the config (`default`).
        target: Option<String>,
        /// SQL, with `$1`, `$2`... for `params`.
        query: String = required,
        /// Positional parameters.
        params: Vec<Value>,
        /// Allow writes (asks for confirmation; false).
        mutating: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "postgres",
    summary: "Run a SQL query.",
    args: <PostgresArgs as ArgsSchema>::ARGS,
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

impl ActionImpl for Postgres {
    type Args = PostgresArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<&'static str> {
        Some("postgres")
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        super::spec::check_not_empty(&SPEC, args, "query", cx);
        if let Some(arg) = args.get("query").filter(|a| a.value.is_template()) {
            cx.push(
                crate::diagnostic::Diagnostic::warning(
                    crate::rules::Rule::SqlInterpolation,
                    "`${{ }}` inside SQL text: a value pasted into the query can change the statement",
                )
                .at(cx.file, arg.value.span(), "value pasted into SQL")
                .help("pass values as `params: [...]` and refer to them as `$1`, `$2`, ... in the query"),
            );
        }
    }

    fn mutates(&self, a: &PostgresArgs) -> bool {
        a.mutating || acts_outside_transactions(&a.query)
    }

    fn times_itself(&self) -> bool {
        true
    }

    fn describe(&self, a: &PostgresArgs, _env: &EnvConfig) -> String {
        let one_line = a.query.split_whitespace().collect::<Vec<_>>().join(" ");
        // Say why an undeclared query asks for confirmation: the reader must see it.
        let mode = if a.mutating {
            String::new()
        } else {
            match statement::side_effect(&a.query) {
                Some(why) => format!(" (changes something: {why})"),
                None => " (read-only)".to_string(),
            }
        };
        format!(
            "postgres {}{mode}: {one_line}",
            a.target.as_deref().unwrap_or("default")
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: PostgresArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let target = a.target.as_deref().unwrap_or("default");
            let pool = cx.clients().postgres(target).await?;
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
    use crate::actions::Action;
    use serde_json::json;

    #[test]
    fn side_effecting_functions_make_a_query_mutating() {
        let p: &dyn Action = &Postgres;
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
        let p: &dyn Action = &Postgres;
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
