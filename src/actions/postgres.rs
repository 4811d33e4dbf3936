//! `postgres`: one query on a pooled connection of a target. Unless `mutating: true`,
//! the query runs in a READ ONLY transaction, so the server itself refuses writes.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgsSchema, OutputSpec};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

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
    mutating: "with `mutating: true`, or when the query calls a function that acts outside transactions (pg_terminate_backend, advisory locks, dblink, ...); otherwise the query runs in a READ ONLY transaction",
    default_expect: "no error answer",
};

/// Functions that act even inside a READ ONLY transaction (terminating backends, taking
/// session locks, reloading config, reaching other servers, running programs): a query
/// calling them changes something, so it asks for confirmation and `plan` does not run it.
static SIDE_EFFECTS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(pg_terminate_backend|pg_cancel_backend|pg_(try_)?advisory_(xact_)?lock(_shared)?|pg_advisory_unlock(_shared|_all)?|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_create_restore_point|pg_promote|pg_wal_replay_(pause|resume)|pg_log_backend_memory_contexts|pg_notify|set_config|dblink(_exec|_connect|_send_query)?|lo_(import|export|unlink)|pg_file_(write|rename|unlink))\s*\(|\bprogram\s+'",
    )
    .expect("static regex")
});

/// Whether a query calls something that acts outside its READ ONLY transaction.
pub fn acts_outside_transactions(query: &str) -> bool {
    SIDE_EFFECTS.is_match(query)
}

impl ActionImpl for Postgres {
    type Args = PostgresArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<crate::config::TargetKind> {
        Some(crate::config::TargetKind::Postgres)
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
        let mode = if ActionImpl::mutates(self, a) {
            ""
        } else {
            " (read-only)"
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
    }
}
