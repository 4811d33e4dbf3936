//! Whether SQL can change anything, judged on PostgreSQL's own parse tree (`pg_query`).
//!
//! A `postgres` step that is not `mutating` runs inside `BEGIN READ ONLY`, so the server
//! refuses writes to tables. It does NOT refuse what acts outside the transaction: killing
//! sessions, session-level advisory locks, `NOTIFY`, sequences, large objects written to
//! the server's disk, reaching other servers, ... A step whose SQL may do any of that is
//! mutating: it asks for confirmation, is skipped without `--yes` on a non-terminal and is
//! not run by `opsctl plan`.
//!
//! The judgement is an allow-list of statement kinds plus a deny-list of functions:
//! - SQL the parser rejects is mutating (the server might read it differently than we do).
//! - Read-only statements: `SELECT` (without `INTO`), `VALUES`, `TABLE x`, `SHOW`,
//!   `SET LOCAL` (ends with our transaction) and `EXPLAIN` of one of these (the inner
//!   statement is judged even without `ANALYZE`). Every other kind is mutating.
//! - A data-modifying statement anywhere in the tree (`WITH x AS (DELETE ...) SELECT ...`)
//!   or `SELECT ... INTO` is mutating.
//! - Every function call anywhere in the tree (CTEs, subqueries, arguments, `ORDER BY`,
//!   `FROM f(...)`, ...) is checked against [`FUNCTIONS`] by its last name component as
//!   the parser left it: unquoted names are already lower-cased, quoted ones keep their
//!   case, exactly as the server resolves them. Attribute notation (`(t).f`, which calls
//!   `f(t)`) is checked too.
//! - The SQL is also read as a session with `standard_conforming_strings = off` would read
//!   it (backslashes escape quotes in '...'), where a string can end elsewhere and uncover
//!   a call; that reading must be harmless as well.
//!
//! What a parse tree cannot show: functions, views and rules defined in the database that
//! call these functions themselves (`SELECT my_kill_all()`). Those run inside the READ ONLY
//! transaction like any read, so only their out-of-transaction effects escape; declare such
//! steps `mutating: true`.

use std::fmt;

use pg_query::ParserOptions;
use serde_json::Value;

/// Why SQL may change something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideEffect {
    /// PostgreSQL's parser rejects it (its message).
    Unparseable(String),
    /// A statement kind outside the read-only allow-list (`INSERT`, `COPY`, `DO`, ...).
    Statement(String),
    /// A call to a function that acts outside the transaction or on the server.
    Function { name: String, why: &'static str },
}

impl fmt::Display for SideEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideEffect::Unparseable(msg) => write!(f, "SQL that does not parse ({msg})"),
            SideEffect::Statement(kind) => write!(f, "a {kind} statement"),
            SideEffect::Function { name, why } => write!(f, "calls {name}(), which {why}"),
        }
    }
}

/// How a [`FUNCTIONS`] entry matches a function name.
#[derive(Clone, Copy)]
enum Match {
    Exact,
    Prefix,
    Suffix,
}

/// Functions that act even inside a READ ONLY transaction, or whose effect outlives it
/// (PostgreSQL docs, "System Administration Functions" and friends, plus common
/// extensions). Matched against the last component of the called name.
#[rustfmt::skip]
const FUNCTIONS: &[(&str, Match, &str)] = &[
    // Server signalling.
    ("pg_cancel_backend", Match::Exact, "cancels another session's query"),
    ("pg_terminate_backend", Match::Exact, "terminates another session"),
    ("pg_reload_conf", Match::Exact, "reloads the server configuration"),
    ("pg_rotate_logfile", Match::Prefix, "rotates the server log"),
    ("pg_log_backend_memory_contexts", Match::Exact, "writes to the server log"),
    ("pg_log_standby_snapshot", Match::Exact, "writes WAL"),
    // Locks that outlive the statement (session level) or block others while it runs.
    ("pg_advisory_", Match::Prefix, "takes or releases an advisory lock"),
    ("pg_try_advisory_", Match::Prefix, "takes an advisory lock"),
    // Notifications and settings.
    ("pg_notify", Match::Exact, "sends a notification"),
    // `set_config(.., .., true)` is local to our transaction: see `judge_call`.
    ("set_config", Match::Exact, "changes a session setting"),
    // Sequences are not transactional.
    ("nextval", Match::Exact, "advances a sequence"),
    ("setval", Match::Exact, "sets a sequence"),
    // Transaction ids are consumed even by a rolled-back transaction.
    ("txid_current", Match::Exact, "consumes a transaction id"),
    ("pg_current_xact_id", Match::Exact, "consumes a transaction id"),
    // Backup and WAL control.
    ("pg_backup_start", Match::Exact, "starts a backup"),
    ("pg_backup_stop", Match::Exact, "stops a backup"),
    ("pg_start_backup", Match::Exact, "starts a backup"),
    ("pg_stop_backup", Match::Exact, "stops a backup"),
    ("pg_switch_wal", Match::Exact, "switches the WAL file"),
    ("pg_switch_xlog", Match::Exact, "switches the WAL file"),
    ("pg_create_restore_point", Match::Exact, "writes a restore point"),
    ("pg_promote", Match::Exact, "promotes a standby"),
    ("pg_wal_replay_", Match::Prefix, "pauses or resumes recovery"),
    ("pg_xlog_replay_", Match::Prefix, "pauses or resumes recovery"),
    ("pg_logical_emit_message", Match::Exact, "writes WAL"),
    // Replication slots and origins. Any `pg_create_*`, `pg_drop_*`, `pg_copy_*` or
    // `pg_set_*` makes or changes a server object.
    ("pg_create_", Match::Prefix, "creates a server object (replication slot, ...)"),
    ("pg_drop_", Match::Prefix, "drops a server object (replication slot, ...)"),
    ("pg_copy_", Match::Prefix, "copies a replication slot"),
    ("pg_set_", Match::Prefix, "changes server state"),
    ("pg_replication_slot_advance", Match::Exact, "advances a replication slot"),
    ("pg_logical_slot_get_", Match::Prefix, "consumes a replication slot's changes"),
    ("pg_sync_replication_slots", Match::Exact, "synchronises replication slots"),
    ("pg_replication_origin_", Match::Prefix, "manages a replication origin"),
    // Statistics (extensions name theirs `*_reset`: pg_stat_statements_reset, ...).
    ("pg_stat_reset", Match::Prefix, "resets statistics"),
    ("_reset", Match::Suffix, "resets server state"),
    ("pg_restore_relation_stats", Match::Exact, "changes planner statistics"),
    ("pg_clear_relation_stats", Match::Exact, "changes planner statistics"),
    ("pg_restore_attribute_stats", Match::Exact, "changes planner statistics"),
    ("pg_clear_attribute_stats", Match::Exact, "changes planner statistics"),
    // Catalog, index and buffer maintenance.
    ("pg_import_system_collations", Match::Exact, "creates collations"),
    ("pg_extension_config_dump", Match::Exact, "changes an extension's configuration"),
    ("brin_summarize_new_values", Match::Exact, "changes an index"),
    ("brin_summarize_range", Match::Exact, "changes an index"),
    ("brin_desummarize_range", Match::Exact, "changes an index"),
    ("gin_clean_pending_list", Match::Exact, "changes an index"),
    ("pg_truncate_visibility_map", Match::Exact, "changes a relation's visibility map"),
    ("pg_buffercache_evict", Match::Prefix, "evicts shared buffers"),
    ("heap_force_", Match::Prefix, "changes tuples directly (pg_surgery)"),
    ("binary_upgrade_", Match::Prefix, "changes the catalog"),
    // Large objects and server files.
    ("lo_import", Match::Exact, "reads a server file into a large object"),
    ("lo_export", Match::Exact, "writes a server file"),
    ("lo_unlink", Match::Exact, "deletes a large object"),
    ("lo_create", Match::Exact, "creates a large object"),
    ("lo_creat", Match::Exact, "creates a large object"),
    ("lo_put", Match::Exact, "writes a large object"),
    ("lo_from_bytea", Match::Exact, "creates a large object"),
    ("lo_truncate", Match::Prefix, "truncates a large object"),
    ("lowrite", Match::Exact, "writes a large object"),
    ("pg_file_", Match::Prefix, "writes, renames or deletes a server file (adminpack)"),
    // Reaching other servers.
    ("dblink", Match::Prefix, "runs SQL on another connection"),
    ("postgres_fdw_disconnect", Match::Prefix, "closes foreign-server connections"),
    // Functions that run SQL given as text, which this check cannot see.
    ("query_to_xml", Match::Prefix, "runs SQL given as text"),
    ("ts_stat", Match::Exact, "runs SQL given as text"),
    ("crosstab", Match::Prefix, "runs SQL given as text"),
    ("connectby", Match::Exact, "runs SQL built from text"),
    // `ts_rewrite(query, select_text)` runs SQL; the three-argument form does not.
    ("ts_rewrite", Match::Exact, "runs SQL given as text"),
];

/// Why `sql` may change something, or `None` if every statement in it is read-only.
pub fn side_effect(sql: &str) -> Option<SideEffect> {
    let parsed = match pg_query::parse(sql, ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => return Some(SideEffect::Unparseable(parse_message(&e))),
    };
    if let Some(effect) = tree_effect(&parsed) {
        return Some(effect);
    }
    // A server (or role, or URL) with `standard_conforming_strings = off` reads backslashes
    // in '...' as escapes, so `'a\' -- ', pg_terminate_backend(1)` hides a call from the
    // reading above. That reading must be harmless too; if it does not parse, such a server
    // refuses the SQL, so nothing runs there.
    match pg_query::parse(sql, ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS) {
        Ok(other) => tree_effect(&other),
        Err(_) => None,
    }
}

/// The first side effect of any statement of a parse.
fn tree_effect(parsed: &pg_query::ParseResult) -> Option<SideEffect> {
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            return Some(SideEffect::Unparseable("an empty statement node".into()));
        };
        // The tree as JSON: one generic walk reaches every node, whatever its type.
        let tree = match serde_json::to_value(node) {
            Ok(t) => t,
            Err(e) => return Some(SideEffect::Unparseable(e.to_string())),
        };
        if let Some(effect) = statement_effect(&tree).or_else(|| walk(&tree, true)) {
            return Some(effect);
        }
    }
    None
}

fn parse_message(e: &pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// The one `{"KindStmt": {...}}` entry of a serialized node.
fn variant(node: &Value) -> Option<(&str, &Value)> {
    let map = node.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// The node inside a `{"node": {...}}` wrapper (`protobuf::Node`).
fn unwrap_node(wrapper: &Value) -> Option<&Value> {
    wrapper.get("node").filter(|n| !n.is_null())
}

/// The top-level statement kind against the allow-list.
fn statement_effect(stmt: &Value) -> Option<SideEffect> {
    let Some((kind, body)) = variant(stmt) else {
        return Some(SideEffect::Unparseable("an unexpected parse tree".into()));
    };
    match kind {
        "SelectStmt" | "VariableShowStmt" => None,
        "VariableSetStmt" if body.get("is_local") == Some(&Value::Bool(true)) => None,
        "ExplainStmt" => match body.get("query").and_then(unwrap_node) {
            Some(inner) => statement_effect(inner),
            None => Some(SideEffect::Unparseable(
                "EXPLAIN without a statement".into(),
            )),
        },
        other => Some(SideEffect::Statement(statement_name(other, body))),
    }
}

/// The SQL words for a statement node kind (`CopyStmt` → `COPY`).
fn statement_name(kind: &str, body: &Value) -> String {
    let flag = |name: &str| body.get(name) == Some(&Value::Bool(true));
    match kind {
        "CopyStmt" if flag("is_program") => "COPY ... PROGRAM".into(),
        "VariableSetStmt" => {
            // VAR_RESET (5) and VAR_RESET_ALL (6) in the parser's VariableSetKind.
            let reset = matches!(
                body.get("kind").and_then(Value::as_str),
                Some("VarReset" | "VarResetAll")
            ) || matches!(body.get("kind").and_then(Value::as_i64), Some(5 | 6));
            if reset { "RESET" } else { "session-level SET" }.into()
        }
        "CheckPointStmt" => "CHECKPOINT".into(),
        "DoStmt" => "DO".into(),
        "TransactionStmt" => "transaction control".into(),
        "CreateStmt" => "CREATE TABLE".into(),
        "CreateTableAsStmt" => "CREATE TABLE AS".into(),
        "IndexStmt" => "CREATE INDEX".into(),
        "ViewStmt" => "CREATE VIEW".into(),
        "CreateFunctionStmt" => "CREATE FUNCTION".into(),
        "RuleStmt" => "CREATE RULE".into(),
        "CreateTrigStmt" => "CREATE TRIGGER".into(),
        "TruncateStmt" => "TRUNCATE".into(),
        "VacuumStmt" if !flag("is_vacuumcmd") => "ANALYZE".into(),
        other => {
            // Split the CamelCase node name into upper-case words: `ListenStmt` → `LISTEN`.
            let base = other.strip_suffix("Stmt").unwrap_or(other);
            let mut words = String::new();
            for (i, c) in base.char_indices() {
                if i > 0 && c.is_ascii_uppercase() {
                    words.push(' ');
                }
                words.push(c.to_ascii_uppercase());
            }
            words
        }
    }
}

/// Looks for data-modifying statements, `INTO` clauses and denied function calls anywhere
/// below `node`. `top` skips the statement node itself (judged by `statement_effect`).
fn walk(node: &Value, top: bool) -> Option<SideEffect> {
    match node {
        Value::Array(items) => items.iter().find_map(|v| walk(v, false)),
        Value::Object(map) => {
            for (key, value) in map {
                if let Some(effect) = node_effect(key, value, top) {
                    return Some(effect);
                }
                if let Some(effect) = walk(value, false) {
                    return Some(effect);
                }
            }
            None
        }
        _ => None,
    }
}

/// What one node (`key` is its type) does by itself.
fn node_effect(key: &str, body: &Value, top: bool) -> Option<SideEffect> {
    match key {
        "FuncCall" => judge_call(body),
        "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" if !top => {
            Some(SideEffect::Statement(format!(
                "{} (inside another statement)",
                statement_name(key, body)
            )))
        }
        // `SELECT ... INTO t` creates a table.
        "into_clause" if !body.is_null() => Some(SideEffect::Statement("SELECT INTO".into())),
        // Attribute notation calls a one-argument function: `(t).f` and `t.f` are `f(t)`.
        "ColumnRef" => names_of(body.get("fields"))
            .skip(1)
            .find_map(|name| denied(name, 1)),
        "AIndirection" => names_of(body.get("indirection")).find_map(|name| denied(name, 1)),
        _ => None,
    }
}

/// The names in a list of `String` nodes (a qualified name, a column reference's fields).
fn names_of(list: Option<&Value>) -> impl Iterator<Item = &str> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| unwrap_node(n)?.get("String")?.get("sval")?.as_str())
}

/// A function call against [`FUNCTIONS`].
fn judge_call(call: &Value) -> Option<SideEffect> {
    let name = names_of(call.get("funcname")).last()?;
    let args = call
        .get("args")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    // Local to our transaction when the third argument is literally true.
    if name == "set_config" && args.len() == 3 && args.get(2).is_some_and(is_true_literal) {
        return None;
    }
    denied(name, args.len())
}

/// `name`, called with `args` arguments, against [`FUNCTIONS`].
fn denied(name: &str, args: usize) -> Option<SideEffect> {
    let (_, _, why) = FUNCTIONS.iter().find(|(f, how, _)| match how {
        Match::Exact => name == *f,
        Match::Prefix => name.starts_with(f),
        Match::Suffix => name.ends_with(f),
    })?;
    // `ts_rewrite(query, target, substitute)` runs no SQL; only the two-argument form does.
    if name == "ts_rewrite" && args != 2 {
        return None;
    }
    Some(SideEffect::Function {
        name: name.to_string(),
        why,
    })
}

/// A literal `true` (or a string the boolean input reads as true).
fn is_true_literal(arg: &Value) -> bool {
    let Some(val) = unwrap_node(arg)
        .and_then(|n| n.get("AConst"))
        .and_then(|c| c.get("val"))
    else {
        return false;
    };
    if let Some(b) = val.get("Boolval") {
        return b.get("boolval") == Some(&Value::Bool(true));
    }
    val.get("Sval")
        .and_then(|s| s.get("sval"))
        .and_then(Value::as_str)
        .is_some_and(|s| {
            matches!(
                s.to_ascii_lowercase().as_str(),
                "t" | "true" | "on" | "yes" | "y" | "1"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(sql: &str) -> String {
        side_effect(sql).map(|e| e.to_string()).unwrap_or_default()
    }

    #[track_caller]
    fn read_only(sql: &str) {
        assert_eq!(side_effect(sql), None, "{sql}");
    }

    #[track_caller]
    fn calls(sql: &str, function: &str) {
        match side_effect(sql) {
            Some(SideEffect::Function { name, .. }) => assert_eq!(name, function, "{sql}"),
            other => panic!("{sql}: expected a call to {function}, got {other:?}"),
        }
    }

    #[track_caller]
    fn statement(sql: &str, kind: &str) {
        match side_effect(sql) {
            Some(SideEffect::Statement(k)) => assert_eq!(k, kind, "{sql}"),
            other => panic!("{sql}: expected a {kind} statement, got {other:?}"),
        }
    }

    #[test]
    fn reads_are_read_only() {
        for sql in [
            "SELECT 1",
            "select count(*) from pg_stat_activity where state = 'idle'",
            "VALUES (1, 'a'), (2, 'b')",
            "TABLE pg_class",
            "SHOW work_mem",
            "SET LOCAL work_mem = '64MB'",
            "SET LOCAL statement_timeout TO DEFAULT",
            "EXPLAIN SELECT * FROM pg_class",
            "EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
            "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
            "SELECT 'pg_terminate_backend(1)' AS text_only",
            "SELECT 1 -- pg_terminate_backend(1)",
            "SELECT 1 /* pg_advisory_lock(1) */",
            "SELECT \"PG_TERMINATE_BACKEND\"(1)",
            "SELECT set_config('work_mem', '1MB', true)",
            "SELECT set_config('work_mem', '1MB', 'on')",
            "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)",
            "SELECT currval('s'), lastval(), pg_sleep(0)",
            "SELECT * FROM pg_locks FOR UPDATE",
            r"SELECT 'C:\' AS windows_path",
            r"SELECT 'a\' AS x, ' -- ', pg_sleep(0)",
            "SELECT stats_reset FROM pg_stat_database",
            "SELECT nextval FROM t",
            "",
            "-- nothing",
        ] {
            read_only(sql);
        }
    }

    #[test]
    fn every_spelling_of_a_denied_call_is_found() {
        for sql in [
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            "SELECT \"pg_terminate_backend\"(pid) FROM pg_stat_activity",
            "SELECT pg_terminate_backend/**/(pid) FROM pg_stat_activity",
            "SELECT pg_terminate_backend /* x */ (pid) FROM pg_stat_activity",
            "SELECT pg_terminate_backend\n(pid) FROM pg_stat_activity",
            "SELECT pg_terminate_backend--x\n(pid) FROM pg_stat_activity",
            "SELECT PG_TERMINATE_BACKEND(pid) FROM pg_stat_activity",
            "SELECT Pg_Terminate_Backend(pid) FROM pg_stat_activity",
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity",
            "SELECT \"pg_catalog\".\"pg_terminate_backend\"(pid) FROM pg_stat_activity",
            "SELECT U&\"pg_terminate_backen\\0064\"(pid) FROM pg_stat_activity",
            "WITH k AS (SELECT pg_terminate_backend(pid) FROM pg_stat_activity) SELECT * FROM k",
            "SELECT * FROM (SELECT pg_terminate_backend(1)) s",
            "SELECT count(*) FROM pg_stat_activity WHERE pg_terminate_backend(pid)",
            "SELECT coalesce(pg_terminate_backend(1), false)",
            "SELECT 1 ORDER BY pg_terminate_backend(1)",
            "SELECT * FROM pg_stat_activity a, LATERAL (SELECT pg_terminate_backend(a.pid)) k",
            "SELECT * FROM pg_terminate_backend(1)",
            "SELECT * FROM ROWS FROM (pg_terminate_backend(1))",
            "SELECT CASE WHEN true THEN pg_terminate_backend(1) END",
            "SELECT array_agg(x ORDER BY pg_terminate_backend(1)) FROM generate_series(1,2) x",
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(1)) FROM pg_class",
            "SELECT EXISTS (SELECT pg_terminate_backend(1))",
            "SELECT 1 UNION ALL SELECT pg_terminate_backend(1)::int",
            "VALUES (pg_terminate_backend(1))",
            "EXPLAIN ANALYZE SELECT pg_terminate_backend(1)",
            "SELECT 1; SELECT pg_terminate_backend(1)",
            "SELECT 1 GROUP BY pg_terminate_backend(1) HAVING true",
            "SELECT row_number() OVER (ORDER BY pg_terminate_backend(1))",
            "SELECT * FROM pg_class TABLESAMPLE system (pg_terminate_backend(1)::int)",
            // Read with standard_conforming_strings = off, the string ends later.
            r"SELECT 'a\' -- ', pg_terminate_backend(1)",
            r"SELECT 'a\' AS x, $$ -- $$ || pg_terminate_backend(1)::text",
        ] {
            calls(sql, "pg_terminate_backend");
        }
    }

    #[test]
    fn every_denied_family_is_found() {
        for (sql, f) in [
            ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
            ("SELECT pg_advisory_lock(42)", "pg_advisory_lock"),
            ("select PG_ADVISORY_LOCK (42)", "pg_advisory_lock"),
            (
                "SELECT pg_advisory_lock_shared(1, 2)",
                "pg_advisory_lock_shared",
            ),
            ("SELECT pg_try_advisory_lock(1)", "pg_try_advisory_lock"),
            ("SELECT pg_advisory_xact_lock(1)", "pg_advisory_xact_lock"),
            (
                "SELECT pg_try_advisory_xact_lock_shared(1)",
                "pg_try_advisory_xact_lock_shared",
            ),
            ("SELECT pg_advisory_unlock_all()", "pg_advisory_unlock_all"),
            ("SELECT pg_reload_conf()", "pg_reload_conf"),
            ("SELECT pg_rotate_logfile()", "pg_rotate_logfile"),
            ("SELECT pg_switch_wal()", "pg_switch_wal"),
            (
                "SELECT pg_create_restore_point('x')",
                "pg_create_restore_point",
            ),
            ("SELECT pg_promote()", "pg_promote"),
            ("SELECT pg_wal_replay_pause()", "pg_wal_replay_pause"),
            ("SELECT pg_wal_replay_resume()", "pg_wal_replay_resume"),
            (
                "SELECT pg_log_backend_memory_contexts(1)",
                "pg_log_backend_memory_contexts",
            ),
            ("SELECT pg_notify('c', 'x')", "pg_notify"),
            ("SELECT set_config('work_mem', '1MB', false)", "set_config"),
            ("SELECT set_config('work_mem', '1MB', $1)", "set_config"),
            (
                "SELECT set_config('work_mem', '1MB', is_local => true)",
                "set_config",
            ),
            ("SELECT dblink('host=x', 'DELETE FROM t')", "dblink"),
            ("SELECT dblink_exec('DROP TABLE t')", "dblink_exec"),
            ("SELECT lo_import('/etc/passwd')", "lo_import"),
            ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
            ("SELECT lo_unlink(1)", "lo_unlink"),
            ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
            ("SELECT pg_file_write('x', 'y', false)", "pg_file_write"),
            (
                "SELECT pg_create_logical_replication_slot('s', 'pgoutput')",
                "pg_create_logical_replication_slot",
            ),
            (
                "SELECT pg_drop_replication_slot('s')",
                "pg_drop_replication_slot",
            ),
            (
                "SELECT pg_replication_origin_create('o')",
                "pg_replication_origin_create",
            ),
            ("SELECT pg_stat_reset()", "pg_stat_reset"),
            (
                "SELECT pg_stat_reset_shared('bgwriter')",
                "pg_stat_reset_shared",
            ),
            ("SELECT pg_backup_start('x')", "pg_backup_start"),
            (
                "SELECT pg_import_system_collations('pg_catalog')",
                "pg_import_system_collations",
            ),
            ("SELECT txid_current()", "txid_current"),
            ("SELECT pg_current_xact_id()", "pg_current_xact_id"),
            ("SELECT nextval('orders_id_seq')", "nextval"),
            ("SELECT setval('orders_id_seq', 1)", "setval"),
            (
                "SELECT query_to_xml('SELECT pg_terminate_backend(1)', true, true, '')",
                "query_to_xml",
            ),
            ("SELECT * FROM ts_stat('SELECT 1')", "ts_stat"),
            ("SELECT ts_rewrite('a'::tsquery, 'SELECT 1')", "ts_rewrite"),
            (
                "SELECT pg_create_physical_replication_slot('s')",
                "pg_create_physical_replication_slot",
            ),
            (
                "SELECT pg_copy_logical_replication_slot('a', 'b')",
                "pg_copy_logical_replication_slot",
            ),
            (
                "SELECT pg_stat_statements_reset()",
                "pg_stat_statements_reset",
            ),
            ("SELECT pg_stat_kcache_reset()", "pg_stat_kcache_reset"),
            (
                "SELECT * FROM connectby('t', 'id', 'parent', '1', 0)",
                "connectby",
            ),
            (
                "SELECT (s).nextval FROM (SELECT 's'::regclass AS s) x",
                "nextval",
            ),
            ("SELECT x.nextval FROM (SELECT 's'::regclass) x", "nextval"),
        ] {
            calls(sql, f);
        }
    }

    #[test]
    fn every_other_statement_kind_is_mutating() {
        for (sql, kind) in [
            ("DO $$ BEGIN PERFORM 1; END $$", "DO"),
            ("CALL p()", "CALL"),
            ("COPY t TO STDOUT", "COPY"),
            ("COPY (SELECT 1) TO STDOUT", "COPY"),
            ("COPY t TO PROGRAM 'rm -rf /'", "COPY ... PROGRAM"),
            ("COPY t FROM '/etc/passwd'", "COPY"),
            ("LISTEN c", "LISTEN"),
            ("UNLISTEN *", "UNLISTEN"),
            ("NOTIFY c, 'x'", "NOTIFY"),
            ("SET work_mem = '1MB'", "session-level SET"),
            ("SET SESSION work_mem = '1MB'", "session-level SET"),
            ("RESET work_mem", "RESET"),
            ("RESET ALL", "RESET"),
            ("LOAD 'auto_explain'", "LOAD"),
            ("CHECKPOINT", "CHECKPOINT"),
            ("VACUUM t", "VACUUM"),
            ("ANALYZE t", "ANALYZE"),
            ("LOCK TABLE t", "LOCK"),
            ("DISCARD ALL", "DISCARD"),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("EXECUTE p", "EXECUTE"),
            ("DEALLOCATE p", "DEALLOCATE"),
            ("CREATE TABLE t (a int)", "CREATE TABLE"),
            ("DROP TABLE t", "DROP"),
            ("ALTER TABLE t ADD COLUMN b int", "ALTER TABLE"),
            ("TRUNCATE t", "TRUNCATE"),
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            (
                "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
                "MERGE",
            ),
            ("SELECT 1 INTO t", "SELECT INTO"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE AS"),
            ("BEGIN", "transaction control"),
            ("COMMIT", "transaction control"),
            ("DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR"),
            ("GRANT SELECT ON t TO u", "GRANT"),
            ("REFRESH MATERIALIZED VIEW v", "REFRESH MAT VIEW"),
            ("EXPLAIN DELETE FROM t", "DELETE"),
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (1)", "INSERT"),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "DELETE (inside another statement)",
            ),
            ("SELECT 1; DELETE FROM t", "DELETE"),
        ] {
            statement(sql, kind);
        }
    }

    #[test]
    fn unparseable_sql_is_mutating() {
        assert!(matches!(
            side_effect("SELEC 1"),
            Some(SideEffect::Unparseable(_))
        ));
        assert!(matches!(
            side_effect("SELECT {{ x }}"),
            Some(SideEffect::Unparseable(_))
        ));
        assert!(matches!(
            side_effect("SELECT 1\0"),
            Some(SideEffect::Unparseable(_))
        ));
        assert!(
            reason("SELEC 1").contains("syntax error"),
            "{}",
            reason("SELEC 1")
        );
    }

    #[test]
    fn reasons_read_as_one_line() {
        assert_eq!(
            reason("SELECT pg_terminate_backend(1)"),
            "calls pg_terminate_backend(), which terminates another session"
        );
        assert_eq!(
            reason("COPY t TO PROGRAM 'x'"),
            "a COPY ... PROGRAM statement"
        );
    }
}
