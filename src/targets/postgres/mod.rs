//! Postgres targets: a bounded, lazily filled connection pool per target, and one-statement execution (read-only transaction unless `mutating`) returning typed JSON rows.
//!
//! # Pool
//! A [`Semaphore`] of `size` permits bounds the connections open to the target; idle clients
//! wait in a `Vec`. A call takes a permit (waiting for one if all are busy), pops an idle client
//! that is still open or connects a new one, and gives it back only if the call ran to its end.
//! A call dropped mid-query (step timeout, Ctrl-C) or a broken connection discards the client;
//! when dropped mid-query a cancel request is sent to the server in a spawned task.
//!
//! # Transactions
//! Every statement runs in its own transaction: `BEGIN READ ONLY` (or `BEGIN` with `mutating`)
//! plus `SET LOCAL statement_timeout`, the statement, then `ROLLBACK` (or `COMMIT`). The
//! transaction start is pipelined with `PREPARE`, and the end with the statement itself, so a
//! call costs two round trips. Statements that cannot run inside a transaction block (`VACUUM`,
//! `CREATE INDEX CONCURRENTLY`, ...) therefore fail with the server's error.
//!
//! # TLS (`sslmode` in the URL, default `prefer`)
//! - `disable`: plain TCP.
//! - `prefer` / `allow`: TLS if the server offers it, else plain; the certificate is not checked
//!   (libpq semantics: encryption only).
//! - `require`: TLS, certificate not checked, unless a CA is given (`sslrootcert` or the
//!   target's CA file), in which case it behaves as `verify-ca` (as libpq does).
//! - `verify-ca`: the chain must lead to the given CA file(s), or to the system roots when none is
//!   given; the host name is NOT checked.
//! - `verify-full`: the chain must lead to the system roots or the given CA file(s), and the
//!   certificate must name the host.
//!
//! `sslrootcert=system` means the system roots only. Client certificates (`sslcert`, `sslkey`)
//! are not supported. `gssencmode`, `sslsni` and `sslcompression` are accepted and ignored.
//!
//! # Parameters (`$1`, `$2`, ...)
//! The statement is prepared to learn the parameter types; each JSON value is checked against its
//! type and sent in Postgres's text format (the server parses it with the type's own input
//! function). `null` is SQL NULL. Integers, floats, numerics, booleans and UUIDs are checked here
//! (numeric strings are accepted: templated values are often strings); a JSON array is sent as an
//! array literal for array types; `json`/`jsonb` receive the JSON value itself (a JSON string stays
//! a JSON string); `bytea` takes base64 (or `\x`-prefixed hex); dates, times and intervals take
//! strings that the server parses (RFC 3339 works); any other type gets the value's text.
//!
//! # Rows
//! Columns keep their order; a repeated column name gets a `_2`, `_3`, ... suffix. Values by type:
//! - `bool` → bool; `int2/int4/int8`, `oid`, `xid`, `xid8`, `cid` → integer.
//! - `float8` → number; `float4` → the number of its shortest text (`0.1`, as the server prints
//!   it, not `0.10000000149011612`); NaN and ±infinity → `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! - `numeric` → a JSON number when that is exact: an integral value within ±2^53, or a value
//!   whose decimal text survives the round trip through `f64` (trailing zeros aside); otherwise a
//!   string with the exact decimal as Postgres prints it (`"12345678901234567890.50"`); `"NaN"`,
//!   `"Infinity"`, `"-Infinity"`.
//! - text types, enums, `citext` → string. Other extension types whose binary form is printable
//!   UTF-8 → string.
//! - `timestamp` → `"YYYY-MM-DDTHH:MM:SS[.ffffff]"` (no offset); `timestamptz` → the same in UTC
//!   with a `Z`; `date` → `"YYYY-MM-DD"`; `time` → `"HH:MM:SS[.ffffff]"`; `timetz` adds the offset;
//!   fractions are printed without trailing zeros; infinite values → `"infinity"`/`"-infinity"`.
//! - `interval` → Postgres's own default (`IntervalStyle = postgres`) text: `"1 year 2 mons 3 days
//!   04:05:06.5"`, `"00:05:00"`, `"-1 days +02:00:00"`.
//! - `json/jsonb` → the JSON value, read from the server's text with the same exactness rule as
//!   `numeric`: a number stays a JSON number when an `i64`, `u64` or `f64` holds it exactly,
//!   otherwise it becomes a string with its exact text (`12345678901234567890123456789` →
//!   `"12345678901234567890123456789"`; `1e400` in `json` → `"1e400"`, in `jsonb` the server's
//!   400-digit text). A duplicate key in `json` keeps its last value; a document nested more
//!   than 512 levels deep stays one string of its text.
//! - `uuid` → string; `bytea` → base64 (standard alphabet); `hstore` → an object of key →
//!   string or null.
//! - `inet/cidr`, `macaddr`, `bit/varbit`, `pg_lsn`, `tid`, ranges → their text form.
//! - Printed by the server itself, exactly as `value::text`: the `reg*` types (`regclass` →
//!   `"pg_class"`, `"pg_catalog.pg_locks"` or `"public.t"` as the session's `search_path` makes
//!   it; an OID naming nothing → its number as a string, as the server prints it), `money` (in
//!   the session's `lc_monetary`: `"$1,234.56"`), `tsvector`/`tsquery`, the geometric types
//!   (`point`, `line`, `lseg`, `box`, `path`, `polygon`, `circle`), multiranges
//!   (`"{[1,3),[5,7)}"`) and any other type not decoded here (e.g. `aclitem`, PostGIS
//!   `geometry`). After the statement, the distinct binary values of each such type go back
//!   typed in one `SELECT $1::text, ...` on the same connection, inside `BEGIN READ ONLY` ...
//!   `ROLLBACK` (pipelined: one round trip per type). If the server refuses a type's values
//!   (it cannot take back `pg_node_tree`, say) or the lookup fails, `reg*` values become their
//!   OID as a string, values whose binary form is printable text that text, and others
//!   `"<unsupported type NAME>"`.
//! - arrays (any number of dimensions, and `anyarray` such as `pg_stats.most_common_vals`) →
//!   nested JSON arrays; named composite values (a `CREATE TYPE ... AS (...)` type, a table's
//!   row type) → objects keyed by attribute name; anonymous `record`s (`ROW(1, 'a')`, `(r, 1)`)
//!   → arrays, because the server sends only their fields' type OIDs: fields of built-in types
//!   are decoded as above, others (composites, enums) are the server's text
//!   (`"(1,\"a b\",sad)"`); `void` and SQL NULL → null.
//!
//! # Errors
//! Every message names the target and passes through the run's [`Redactor`]. Server errors read
//! `ERROR 42P01: relation "x" does not exist` (plus `; detail: ...; hint: ...` when present);
//! authentication failures and other errors met while connecting carry the server's message
//! alone.

mod errors;
mod json_text;
mod params;
mod rows;
pub mod statement;
mod tls;

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::SemaphorePermit;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::actions::ActionError;
use crate::targets::pool::Slots;

use errors::{describe_hosts, error_text};
use rows::{rows_to_json, server_texts};
use tls::{TlsMode, split_ssl_params, tls_connector};

/// `application_name` sent when the URL does not set one (visible in `pg_stat_activity`).
const DEFAULT_APPLICATION_NAME: &str = "opsctl";
/// Connect timeout per host when the URL does not set `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much earlier than the step's deadline the server's `statement_timeout` fires (at most),
/// so a slow statement ends with the server's own message.
const STATEMENT_MARGIN: Duration = Duration::from_millis(100);

/// Rows of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// One object per row, keys in column order.
    pub rows: Vec<Map<String, Value>>,
    /// Rows returned; for a statement that returns no columns, the rows it affected.
    pub row_count: u64,
}

/// A bounded pool of connections to one Postgres target.
pub struct PgPool {
    name: String,
    config: Config,
    tls: MakeRustlsConnect,
    /// `host:port` list for messages.
    address: String,
    slots: Slots<Client>,
    /// The port-forward this pool connects through (`via: k8s`), kept open with it.
    forward: Option<crate::targets::forward::Forward>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("available", &self.slots.available())
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// Connects through `forward` (its local end is already in the URL): kept open as
    /// long as the pool, and named in messages.
    pub fn through(mut self, forward: crate::targets::forward::Forward) -> PgPool {
        self.address = format!("{} (via {})", self.address, forward.description);
        self.forward = Some(forward);
        self
    }

    /// Parses the URL (no connection yet). `name` is the target name used in every error message.
    pub fn new(
        name: &str,
        url: &str,
        size: usize,
        ca_file: Option<&Path>,
    ) -> Result<PgPool, ActionError> {
        let config_err = |msg: String| ActionError::Config(format!("postgres {name}: {msg}"));

        let (clean_url, mode, rootcert) = split_ssl_params(url).map_err(config_err)?;
        let mut config: Config = clean_url.parse().map_err(|e: tokio_postgres::Error| {
            config_err(format!("invalid database URL: {}", error_text(&e)))
        })?;
        // A key=value connection string carries sslmode itself (disable/prefer/require).
        let mode = mode.unwrap_or(match config.get_ssl_mode() {
            SslMode::Disable => TlsMode::Disable,
            SslMode::Require => TlsMode::Require,
            _ => TlsMode::Prefer,
        });
        let mut ca_files: Vec<&Path> = Vec::new();
        let mut system_only = false;
        match rootcert.as_deref() {
            Some("system") => system_only = true,
            Some(path) => ca_files.push(Path::new(path)),
            None => {}
        }
        // `sslrootcert=system` in the URL means the system roots only, whatever the config adds.
        if let (Some(ca), false) = (ca_file, system_only) {
            ca_files.push(ca);
        }
        // libpq: `require` with a root certificate behaves as `verify-ca`.
        let mode = if mode == TlsMode::Require && (!ca_files.is_empty() || system_only) {
            TlsMode::VerifyCa
        } else {
            mode
        };
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        if config.get_application_name().is_none() {
            config.application_name(DEFAULT_APPLICATION_NAME);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let tls = tls_connector(mode, &ca_files).map_err(config_err)?;
        let address = describe_hosts(&config);
        Ok(PgPool {
            name: name.to_string(),
            config,
            tls,
            address,
            slots: Slots::new(size),
            forward: None,
        })
    }

    /// Runs one statement with `params` and returns its rows. Waiting for a free connection
    /// does not count against `timeout` (steps beyond the pool wait, they do not fail);
    /// from then on connecting and running must fit in it. The server is told a little
    /// less as `statement_timeout`, so its own message is what a slow query reports.
    /// `Duration::ZERO`: no limit.
    pub async fn query(
        &self,
        sql: &str,
        params: &[Value],
        mutating: bool,
        timeout: Duration,
    ) -> Result<QueryResult, ActionError> {
        let permit = self.acquire().await?;
        let started = std::time::Instant::now();
        let work = async {
            let mut lease = self.lease(permit).await?;
            // What is left once connected, a little less, so the server ends the statement
            // (with its own message) before the client gives up.
            let statement_timeout = if timeout.is_zero() {
                Duration::ZERO
            } else {
                let left = timeout.saturating_sub(started.elapsed());
                left.saturating_sub((left / 10).min(STATEMENT_MARGIN))
                    .max(Duration::from_millis(1))
            };
            match self
                .run(&mut lease, sql, params, mutating, statement_timeout)
                .await
            {
                // The idle connection had died unseen; nothing ran yet, so try a new one.
                Err(Attempt::Stale(_)) if lease.reused => {
                    lease.replace(self.connect().await?);
                    self.run(&mut lease, sql, params, mutating, statement_timeout)
                        .await
                        .map_err(Attempt::into_error)
                }
                other => other.map_err(Attempt::into_error),
            }
        };
        if timeout.is_zero() {
            return work.await;
        }
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            // Dropping the work leaves the lease in flight: it fires a cancel and is discarded.
            Err(_) => Err(self.err(
                ActionError::Unreachable,
                format!(
                    "no answer from {} within {:.1}s",
                    self.address,
                    timeout.as_secs_f64()
                ),
            )),
        }
    }

    async fn run(
        &self,
        lease: &mut Lease<'_>,
        sql: &str,
        params: &[Value],
        mutating: bool,
        timeout: Duration,
    ) -> Result<QueryResult, Attempt> {
        // 0 disables the limit in Postgres: a non-zero timeout is at least 1 ms.
        let timeout_ms = match timeout.as_millis().min(i32::MAX as u128) {
            0 if !timeout.is_zero() => 1,
            ms => ms,
        };
        let begin = format!(
            "{}; SET LOCAL statement_timeout = {timeout_ms}",
            if mutating { "BEGIN" } else { "BEGIN READ ONLY" }
        );
        let end = if mutating { "COMMIT" } else { "ROLLBACK" };
        lease.in_flight = true;
        let client = lease.client()?;

        // tokio-postgres sends requests in the order their futures are FIRST POLLED, so every
        // pipelined pair below is joined `biased` (polled in the order written). That order is
        // what keeps a read-only statement inside its READ ONLY transaction.
        //
        // Round trip 1: transaction start, pipelined with the statement's preparation.
        let (begun, prepared) =
            tokio::join!(biased; client.batch_execute(&begin), client.prepare(sql));
        if let Err(e) = begun {
            let err = self.query_error(e);
            let lost = err.kind() == crate::actions::ErrorKind::Unreachable;
            return Err(if lost {
                Attempt::Stale(err)
            } else {
                Attempt::Done(err)
            });
        }
        let statement = match prepared {
            Ok(s) => s,
            Err(e) => {
                let err = self.query_error(e);
                self.rollback(lease).await;
                return Err(err.into());
            }
        };
        let args = match self.convert_params(&statement, params) {
            Ok(a) => a,
            Err(err) => {
                self.rollback(lease).await;
                return Err(err.into());
            }
        };
        let refs: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();

        // Round trip 2: the statement, pipelined with the transaction's end. After a failed
        // statement COMMIT acts as ROLLBACK, so pipelining it is safe.
        let outcome = if statement.columns().is_empty() {
            let (done, ended) =
                tokio::join!(biased; client.execute(&statement, &refs), client.batch_execute(end));
            finish(done, ended).map(|count| QueryResult {
                rows: Vec::new(),
                row_count: count,
            })
        } else {
            let (done, ended) =
                tokio::join!(biased; client.query(&statement, &refs), client.batch_execute(end));
            match finish(done, ended) {
                Ok(rows) => {
                    // After the transaction: only catalog and session state is read.
                    let texts = server_texts(client, &statement, &rows).await;
                    let rows = rows_to_json(&statement, &rows, &texts);
                    Ok(QueryResult {
                        row_count: rows.len() as u64,
                        rows,
                    })
                }
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok(result) => {
                lease.completed();
                Ok(result)
            }
            Err(Ending::Statement(e)) => {
                // The transaction was closed by the pipelined end: the connection is clean.
                lease.completed();
                Err(self.query_error(e).into())
            }
            Err(Ending::Both(e)) | Err(Ending::End(e)) => Err(self.query_error(e).into()),
        }
    }

    /// Ends the transaction after a failure before the statement ran; the connection is kept
    /// only if that worked.
    async fn rollback(&self, lease: &mut Lease<'_>) {
        let Ok(client) = lease.client() else { return };
        if client.batch_execute("ROLLBACK").await.is_ok() {
            lease.completed();
        }
    }

    /// A pool slot; waits while all are taken.
    async fn acquire(&self) -> Result<SemaphorePermit<'_>, ActionError> {
        self.slots
            .acquire()
            .await
            .ok_or_else(|| self.err(ActionError::Failed, "connection pool closed".to_string()))
    }

    /// A connection for a slot: an idle one that is still open, or a new one.
    async fn lease<'a>(&'a self, permit: SemaphorePermit<'a>) -> Result<Lease<'a>, ActionError> {
        let reused = self.slots.take_idle(|c| !c.is_closed());
        let (client, reused) = match reused {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        Ok(Lease {
            pool: self,
            client: Some(client),
            reused,
            in_flight: false,
            reusable: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, ActionError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.connect_error(e))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "opsctl::postgres", "postgres {name}: connection ended: {e}");
            }
        });
        Ok(client)
    }
}

/// A checked-out connection. Back to the idle list on drop only after [`Lease::completed`];
/// dropped while a request is in flight, it asks the server to cancel that request.
struct Lease<'a> {
    pool: &'a PgPool,
    client: Option<Client>,
    /// Taken from the idle list (it may have died while idle).
    reused: bool,
    in_flight: bool,
    reusable: bool,
    // Released after `drop` has put the client back (fields drop after the body).
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    fn client(&self) -> Result<&Client, ActionError> {
        self.client.as_ref().ok_or_else(|| {
            self.pool.err(
                ActionError::Failed,
                "connection already released".to_string(),
            )
        })
    }

    fn completed(&mut self) {
        self.in_flight = false;
        self.reusable = true;
    }

    /// Swaps in a new connection for a dead one.
    fn replace(&mut self, client: Client) {
        self.client = Some(client);
        self.reused = false;
        self.in_flight = false;
        self.reusable = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.reusable && !client.is_closed() {
            self.pool.slots.put_back(client);
            return;
        }
        if self.in_flight && !client.is_closed() {
            let token = client.cancel_token();
            let tls = self.pool.tls.clone();
            // The run waits for it before exiting, so the server stops the query.
            crate::targets::cleanup::spawn(async move {
                let _ = token.cancel_query(tls).await;
            });
        }
        // Dropping the client ends its connection task; the server rolls back the transaction.
    }
}

/// How one attempt at a statement failed.
enum Attempt {
    /// The connection was found dead before anything ran (safe to retry elsewhere).
    Stale(ActionError),
    Done(ActionError),
}

impl Attempt {
    fn into_error(self) -> ActionError {
        match self {
            Attempt::Stale(e) | Attempt::Done(e) => e,
        }
    }
}

impl From<ActionError> for Attempt {
    fn from(e: ActionError) -> Attempt {
        Attempt::Done(e)
    }
}

enum Ending {
    /// The statement failed; the transaction end went through.
    Statement(tokio_postgres::Error),
    /// The statement ran but the transaction end failed (e.g. a deferred constraint on COMMIT).
    End(tokio_postgres::Error),
    /// Both failed (connection lost): report the statement's error.
    Both(tokio_postgres::Error),
}

fn finish<T>(
    done: Result<T, tokio_postgres::Error>,
    ended: Result<(), tokio_postgres::Error>,
) -> Result<T, Ending> {
    match (done, ended) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Ok(())) => Err(Ending::Statement(e)),
        (Ok(_), Err(e)) => Err(Ending::End(e)),
        (Err(e), Err(_)) => Err(Ending::Both(e)),
    }
}
