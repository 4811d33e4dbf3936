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
//! - `bool` → bool; `int2/int4/int8`, `oid` and the `reg*`/`xid` family → integer.
//! - `float4/float8` → number; NaN and ±infinity → `"NaN"`, `"Infinity"`, `"-Infinity"`.
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
//! - `json/jsonb` → the JSON value; `uuid` → string; `bytea` → base64 (standard alphabet).
//! - `inet/cidr`, `macaddr`, `bit/varbit`, `pg_lsn`, `tid`, `point`, ranges → their text form.
//! - arrays (any number of dimensions) → nested JSON arrays; composite values → objects;
//!   anonymous records → arrays; `void` and SQL NULL → null.
//! - anything else → the string `"<unsupported type NAME>"` (cast it to `text` in the SQL).
//!
//! # Errors
//! Every message names the target and passes through the run's [`Redactor`]. Server errors read
//! `ERROR 42P01: relation "x" does not exist` (plus `; detail: ...; hint: ...` when present);
//! authentication failures and other errors met while connecting carry the server's message
//! alone.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::{Map, Number, Value};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type};
use tokio_postgres::{Client, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::actions::ActionError;
use crate::redact::Redactor;

/// `application_name` sent when the URL does not set one (visible in `pg_stat_activity`).
const DEFAULT_APPLICATION_NAME: &str = "opsctl";
/// Connect timeout per host when the URL does not set `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past the statement timeout the client waits for an answer before giving up on an
/// unresponsive server (the server normally ends the statement itself at the timeout).
const CLIENT_GRACE: Duration = Duration::from_secs(5);

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
    permits: Semaphore,
    idle: Mutex<Vec<Client>>,
    redactor: Redactor,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgPool {
    /// Parses the URL (no connection yet). `name` is the target name used in every error message.
    pub fn new(
        name: &str,
        url: &str,
        size: usize,
        ca_file: Option<&Path>,
        redactor: Redactor,
    ) -> Result<PgPool, ActionError> {
        redactor.add_url_password(url);
        let config_err =
            |msg: String| ActionError::Config(redactor.redact(&format!("postgres {name}: {msg}")));

        let (clean_url, mode, rootcert) = split_ssl_params(url).map_err(config_err)?;
        let mut config: Config = clean_url.parse().map_err(|e: tokio_postgres::Error| {
            config_err(format!("invalid database URL: {}", error_text(&e)))
        })?;
        if let Some(password) = config.get_password() {
            redactor.add(&String::from_utf8_lossy(password));
        }
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
        if let Some(ca) = ca_file {
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
            permits: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
            redactor,
        })
    }

    /// Runs one query with positional params ($1..). Opens connections lazily, at most `size` at once; callers beyond that WAIT for a free connection (they never fail for lack of one).
    ///
    /// `timeout` becomes the statement's `statement_timeout` (`Duration::ZERO`: no limit).
    pub async fn query(
        &self,
        sql: &str,
        params: &[Value],
        mutating: bool,
        timeout: Duration,
    ) -> Result<QueryResult, ActionError> {
        let mut lease = self.checkout().await?;
        let work = async {
            match self.run(&mut lease, sql, params, mutating, timeout).await {
                // The idle connection had died unseen; nothing ran yet, so try a new one.
                Err(Attempt::Stale(_)) if lease.reused => {
                    lease.replace(self.connect().await?);
                    self.run(&mut lease, sql, params, mutating, timeout)
                        .await
                        .map_err(Attempt::into_error)
                }
                other => other.map_err(Attempt::into_error),
            }
        };
        if timeout.is_zero() {
            return work.await;
        }
        match tokio::time::timeout(timeout.saturating_add(CLIENT_GRACE), work).await {
            Ok(result) => result,
            // Dropping the work leaves the lease in flight: it fires a cancel and is discarded.
            Err(_) => Err(self.err(
                ActionError::Unreachable,
                format!(
                    "no answer from {} within {:.1}s (statement timeout {:.1}s)",
                    self.address,
                    timeout.saturating_add(CLIENT_GRACE).as_secs_f64(),
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
            let err = self.query_error(&e);
            let lost = matches!(err, ActionError::Unreachable(_));
            return Err(if lost {
                Attempt::Stale(err)
            } else {
                Attempt::Done(err)
            });
        }
        let statement = match prepared {
            Ok(s) => s,
            Err(e) => {
                let err = self.query_error(&e);
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
            finish(done, ended).map(|rows| {
                let rows = rows_to_json(&statement, &rows);
                QueryResult {
                    row_count: rows.len() as u64,
                    rows,
                }
            })
        };
        match outcome {
            Ok(result) => {
                lease.completed();
                Ok(result)
            }
            Err(Ending::Statement(e)) => {
                // The transaction was closed by the pipelined end: the connection is clean.
                lease.completed();
                Err(self.query_error(&e).into())
            }
            Err(Ending::Both(e)) | Err(Ending::End(e)) => Err(self.query_error(&e).into()),
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

    async fn checkout(&self) -> Result<Lease<'_>, ActionError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.err(ActionError::Failed, "connection pool closed".to_string()))?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(client) = idle.pop() {
                if !client.is_closed() {
                    found = Some(client);
                    break;
                }
            }
            found
        };
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
            .map_err(|e| self.connect_error(&e))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "opsctl::postgres", "postgres {name}: connection ended: {e}");
            }
        });
        Ok(client)
    }

    fn convert_params(
        &self,
        statement: &Statement,
        params: &[Value],
    ) -> Result<Vec<TextParam>, ActionError> {
        let types = statement.params();
        if types.len() != params.len() {
            let expected = match types.len() {
                0 => "no parameters".to_string(),
                1 => "1 parameter ($1)".to_string(),
                n => format!("{n} parameters ($1..${n})"),
            };
            return Err(self.err(
                ActionError::InvalidArgs,
                format!("the query takes {expected} but {} were given", params.len()),
            ));
        }
        types
            .iter()
            .zip(params)
            .enumerate()
            .map(|(i, (ty, value))| {
                param_text(ty, value).map(TextParam).map_err(|why| {
                    self.err(ActionError::InvalidArgs, format!("param ${}: {why}", i + 1))
                })
            })
            .collect()
    }

    fn err(&self, kind: fn(String) -> ActionError, msg: String) -> ActionError {
        kind(
            self.redactor
                .redact(&format!("postgres {}: {}", self.name, one_line(&msg))),
        )
    }

    /// Errors while opening a connection.
    fn connect_error(&self, e: &tokio_postgres::Error) -> ActionError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let msg = db_error_text(db, false);
            return if code.starts_with("28") {
                self.err(ActionError::Auth, msg)
            } else if code.starts_with("08") || code == "53300" || code.starts_with("57P") {
                self.err(ActionError::Unreachable, format!("{}: {msg}", self.address))
            } else {
                self.err(ActionError::Failed, msg)
            };
        }
        let cause = cause_text(e);
        match e.to_string().as_str() {
            "error connecting to server" => self.err(
                ActionError::Unreachable,
                format!("cannot connect to {}: {cause}", self.address),
            ),
            "timeout waiting for server" => self.err(
                ActionError::Unreachable,
                format!("cannot connect to {}: timed out", self.address),
            ),
            "error performing TLS handshake" => self.err(
                ActionError::Unreachable,
                format!("TLS handshake with {} failed: {cause}", self.address),
            ),
            "authentication error" => {
                self.err(ActionError::Auth, format!("authentication failed: {cause}"))
            }
            "invalid configuration" | "invalid connection string" => self.err(
                ActionError::Config,
                format!("invalid database URL: {cause}"),
            ),
            "connection closed" => self.err(
                ActionError::Unreachable,
                format!(
                    "{} closed the connection during the handshake",
                    self.address
                ),
            ),
            _ => self.err(
                ActionError::Unreachable,
                format!("cannot connect to {}: {}", self.address, error_text(e)),
            ),
        }
    }

    /// Errors on an open connection.
    fn query_error(&self, e: &tokio_postgres::Error) -> ActionError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            return if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
                self.err(
                    ActionError::Unreachable,
                    format!("connection closed: {}", db.message()),
                )
            } else if code.starts_with("28") {
                self.err(ActionError::Auth, db_error_text(db, false))
            } else {
                self.err(ActionError::Failed, db_error_text(db, true))
            };
        }
        let kind = e.to_string();
        if e.is_closed()
            || kind == "error communicating with the server"
            || kind == "unexpected message from server"
        {
            let cause = if e.is_closed() {
                "server closed the connection".to_string()
            } else {
                cause_text(e)
            };
            return self.err(
                ActionError::Unreachable,
                format!("connection closed: {cause}"),
            );
        }
        if kind.starts_with("error serializing parameter") {
            return self.err(ActionError::InvalidArgs, error_text(e));
        }
        self.err(ActionError::Failed, error_text(e))
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
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(client);
            return;
        }
        if self.in_flight && !client.is_closed() {
            let token = client.cancel_token();
            let tls = self.pool.tls.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = token.cancel_query(tls).await;
                });
            }
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

// ---------------------------------------------------------------------------------------------
// Messages

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ERROR 42P01: relation "x" does not exist; detail: ...; hint: ...` (or the message alone).
fn db_error_text(db: &tokio_postgres::error::DbError, with_code: bool) -> String {
    let mut s = if with_code {
        format!("{} {}: {}", db.severity(), db.code().code(), db.message())
    } else {
        db.message().to_string()
    };
    if let Some(d) = db.detail() {
        let _ = write!(s, "; detail: {d}");
    }
    if let Some(h) = db.hint() {
        let _ = write!(s, "; hint: {h}");
    }
    s
}

/// The error's cause (its first source), cleaned up; or the error itself.
fn cause_text(e: &tokio_postgres::Error) -> String {
    match e.source() {
        Some(src) => match src.downcast_ref::<std::io::Error>() {
            Some(io) => io_text(io),
            None => clean_os_error(&src.to_string()),
        },
        None => e.to_string(),
    }
}

/// `kind: cause`, as one line.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.source() {
        Some(_) => format!("{}: {}", e, cause_text(e)),
        None => e.to_string(),
    }
}

fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by peer".to_string(),
        K::TimedOut => "timed out".to_string(),
        K::UnexpectedEof => "server closed the connection".to_string(),
        _ => clean_os_error(&e.to_string()),
    }
}

/// "No route to host (os error 113)" → "no route to host".
fn clean_os_error(s: &str) -> String {
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    };
    let mut chars = s.chars();
    match chars.next() {
        // Lower-case a leading capital only when the next letter is lower case ("No route" but not "TLS").
        Some(c)
            if c.is_ascii_uppercase()
                && chars.clone().next().is_some_and(|n| n.is_ascii_lowercase()) =>
        {
            c.to_ascii_lowercase().to_string() + chars.as_str()
        }
        _ => s.to_string(),
    }
}

fn describe_hosts(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return "localhost".to_string();
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.last()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// URL and TLS

/// Takes the libpq TLS options tokio-postgres does not know out of a URL's query string.
fn split_ssl_params(url: &str) -> Result<(String, Option<TlsMode>, Option<String>), String> {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Ok((url.to_string(), None, None));
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let mut mode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        let value = percent_decode(value);
        match key.as_str() {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "invalid sslmode `{other}` (expected disable, allow, prefer, require, verify-ca or verify-full)"
                        ));
                    }
                })
            }
            "sslrootcert" => rootcert = Some(value),
            "gssencmode" | "sslsni" | "sslcompression" => {}
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslcertmode" => {
                return Err(format!(
                    "`{key}` is not supported (client certificates and CRLs are not)"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((clean, mode, rootcert))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)),
            _ => None,
        };
        if let Some((h, l)) = escaped {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_connector(mode: TlsMode, ca_files: &[&Path]) -> Result<MakeRustlsConnect, String> {
    let provider = ring();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptionOnly { provider }))
            .with_no_client_auth(),
        TlsMode::VerifyCa => {
            // Only the given CA file(s) when there are any: the name is not checked, so trusting
            // every public CA as well would accept any certificate they ever issued.
            let roots = root_store(ca_files, ca_files.is_empty())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly {
                    roots: Arc::new(roots),
                    provider,
                }))
                .with_no_client_auth()
        }
        TlsMode::VerifyFull => builder
            .with_root_certificates(root_store(ca_files, true)?)
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(ca_files: &[&Path], system: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if system {
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 && !native.errors.is_empty() {
            tracing::debug!(target: "opsctl::postgres", "system CA certificates: {:?}", native.errors);
        }
    }
    for path in ca_files {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read CA file {}: {}", path.display(), io_text(&e)))?;
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            count += 1;
        }
        if count == 0 {
            return Err(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            ));
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted CA certificates: the system store is empty and no CA file was given"
                .to_string(),
        );
    }
    Ok(roots)
}

/// `prefer` / `require`: any certificate, but the handshake signatures are still checked.
#[derive(Debug)]
struct EncryptionOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// A parameter in Postgres's text format (`None`: NULL).
#[derive(Debug)]
struct TextParam(Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A JSON value shown in a message, shortened.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// The text form of `value` for a parameter of type `ty`, or why it does not fit.
fn param_text(ty: &Type, value: &Value) -> Result<Option<String>, String> {
    if value.is_null() {
        return Ok(None);
    }
    match ty.kind() {
        Kind::Domain(base) => return param_text(base, value),
        Kind::Array(elem) => {
            return match value {
                Value::Array(items) => array_literal(elem, items).map(Some),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(format!("expected an array, got {}", shown(other))),
            };
        }
        Kind::Enum(_) => {
            return match value {
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(format!(
                    "expected a string ({} label), got {}",
                    ty.name(),
                    shown(other)
                )),
            };
        }
        _ => {}
    }
    let text = match *ty {
        Type::BOOL => bool_text(value)?,
        Type::INT2 => int_text(value, i16::MIN.into(), i16::MAX.into())?,
        Type::INT4 => int_text(value, i32::MIN.into(), i32::MAX.into())?,
        Type::INT8 => int_text(value, i64::MIN.into(), i64::MAX.into())?,
        Type::OID | Type::XID | Type::CID | Type::REGCLASS | Type::REGTYPE | Type::REGPROC
            if !value.is_string()
                || value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<i128>().is_ok()) =>
        {
            int_text(value, 0, u32::MAX.into())?
        }
        Type::FLOAT4 | Type::FLOAT8 => float_text(value)?,
        Type::NUMERIC => numeric_text(value)?,
        Type::UUID => match value {
            Value::String(s) => match uuid::Uuid::parse_str(s.trim()) {
                Ok(u) => u.hyphenated().to_string(),
                Err(_) => return Err(format!("expected a UUID, got {}", shown(value))),
            },
            other => return Err(format!("expected a UUID, got {}", shown(other))),
        },
        Type::JSON | Type::JSONB => value.to_string(),
        Type::BYTEA => bytea_text(value)?,
        Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME | Type::TIMETZ => match value
        {
            Value::String(s) => s.clone(),
            other => {
                return Err(format!(
                    "expected a {} string, got {}",
                    type_label(ty),
                    shown(other)
                ));
            }
        },
        Type::INTERVAL => match value {
            Value::String(s) => s.clone(),
            // A bare number is seconds, as in Postgres ('300'::interval).
            Value::Number(n) => n.to_string(),
            other => return Err(format!("expected an interval string, got {}", shown(other))),
        },
        _ => match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    Ok(Some(text))
}

fn type_label(ty: &Type) -> &'static str {
    match *ty {
        Type::DATE => "date",
        Type::TIMESTAMP => "timestamp",
        Type::TIMESTAMPTZ => "timestamp (RFC 3339)",
        Type::TIME | Type::TIMETZ => "time",
        _ => "text",
    }
}

fn bool_text(value: &Value) -> Result<String, String> {
    let ok = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    match ok {
        Some(b) => Ok(if b { "t" } else { "f" }.to_string()),
        None => Err(format!("expected a boolean, got {}", shown(value))),
    }
}

fn int_text(value: &Value, min: i128, max: i128) -> Result<String, String> {
    let n: Option<i128> = match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n.to_string()),
        Some(_) => Err(format!(
            "expected an integer between {min} and {max}, got {}",
            shown(value)
        )),
        None => Err(format!("expected an integer, got {}", shown(value))),
    }
}

fn is_special_float(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "nan" | "infinity" | "+infinity" | "-infinity" | "inf" | "+inf" | "-inf"
    )
}

fn float_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if s.trim().parse::<f64>().is_ok() || is_special_float(s.trim()) => {
            Ok(s.trim().to_string())
        }
        other => Err(format!("expected a number, got {}", shown(other))),
    }
}

fn numeric_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => {
            let t = s.trim();
            let plain = t.strip_prefix(['+', '-']).unwrap_or(t);
            // Rust's f64 grammar minus its words ("inf", "nan"): the decimal syntax Postgres takes.
            let decimal = !plain.is_empty()
                && plain
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '.')
                && t.parse::<f64>().is_ok();
            if decimal || is_special_float(t) {
                Ok(t.to_string())
            } else {
                Err(format!("expected a number, got {}", shown(value)))
            }
        }
        other => Err(format!("expected a number, got {}", shown(other))),
    }
}

fn bytea_text(value: &Value) -> Result<String, String> {
    let Value::String(s) = value else {
        return Err(format!("expected base64 bytes, got {}", shown(value)));
    };
    if let Some(hex) = s.strip_prefix("\\x") {
        if hex.len() % 2 == 0 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(s.clone());
        }
        return Err(format!(
            "expected \\x followed by hex digits, got {}",
            shown(value)
        ));
    }
    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
        Ok(bytes) => {
            let mut out = String::with_capacity(2 + bytes.len() * 2);
            out.push_str("\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            Ok(out)
        }
        Err(_) => Err(format!(
            "expected base64 bytes (or \\x-prefixed hex), got {}",
            shown(value)
        )),
    }
}

/// `{"a","b",NULL,{"c"}}`: every element quoted, so any element type parses.
fn array_literal(elem: &Type, items: &[Value]) -> Result<String, String> {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => {
                out.push_str(&array_literal(elem, inner).map_err(|e| format!("[{i}]: {e}"))?)
            }
            v => {
                let text = param_text(elem, v)
                    .map_err(|e| format!("element [{i}]: {e}"))?
                    .unwrap_or_default();
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Rows

/// Any column, as its raw binary value.
struct RawValue<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn rows_to_json(statement: &Statement, rows: &[Row]) -> Vec<Map<String, Value>> {
    let columns = statement.columns();
    // Repeated names ("?column?" twice) get a suffix instead of overwriting each other.
    let mut names: Vec<String> = Vec::with_capacity(columns.len());
    for col in columns {
        let base = col.name();
        let mut name = base.to_string();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.push(name);
    }
    rows.iter()
        .map(|row| {
            let mut obj = Map::with_capacity(columns.len());
            for (i, (col, name)) in columns.iter().zip(&names).enumerate() {
                let value = match row.try_get::<usize, RawValue<'_>>(i) {
                    Ok(RawValue(Some(raw))) => decode(col.type_(), raw),
                    Ok(RawValue(None)) => Value::Null,
                    Err(e) => Value::String(format!("<undecodable {}: {e}>", col.type_().name())),
                };
                obj.insert(name.clone(), value);
            }
            obj
        })
        .collect()
}

/// One non-NULL value in binary format → JSON. Never fails: a malformed or unknown value becomes
/// a descriptive string.
fn decode(ty: &Type, raw: &[u8]) -> Value {
    match try_decode(ty, raw) {
        Ok(v) => v,
        Err(e) => Value::String(format!("<undecodable {}: {e}>", ty.name())),
    }
}

type DecodeResult = Result<Value, String>;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("value too short".to_string());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_be_bytes(self.array()?))
    }
    /// A length-prefixed value (`-1`: NULL).
    fn field(&mut self) -> Result<Option<&'a [u8]>, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }
}

fn text(raw: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(raw).into_owned())
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn try_decode(ty: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    match ty.kind() {
        Kind::Array(elem) => return decode_array(elem, raw),
        Kind::Domain(base) => return try_decode(base, raw),
        Kind::Enum(_) => return Ok(text(raw)),
        Kind::Composite(fields) => return decode_record(raw, Some(fields)),
        Kind::Range(elem) => return decode_range(elem, raw),
        _ => {}
    }
    let v = match *ty {
        Type::BOOL => Value::Bool(r.u8()? != 0),
        Type::INT2 => r.i16()?.into(),
        Type::INT4 => r.i32()?.into(),
        Type::INT8 => r.i64()?.into(),
        Type::OID
        | Type::XID
        | Type::CID
        | Type::REGPROC
        | Type::REGPROCEDURE
        | Type::REGOPER
        | Type::REGOPERATOR
        | Type::REGCLASS
        | Type::REGTYPE
        | Type::REGCONFIG
        | Type::REGDICTIONARY
        | Type::REGNAMESPACE
        | Type::REGROLE
        | Type::REGCOLLATION => r.u32()?.into(),
        Type::XID8 => r.u64()?.into(),
        Type::FLOAT4 => float_json(f32::from_be_bytes(r.array()?).into()),
        Type::FLOAT8 => float_json(r.f64()?),
        Type::NUMERIC => decode_numeric(raw)?,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::XML
        | Type::REFCURSOR => text(raw),
        Type::CHAR => {
            let b = r.u8()?;
            Value::String(if b.is_ascii() {
                (b as char).to_string()
            } else {
                format!("\\{b:03o}")
            })
        }
        Type::JSON => serde_json::from_slice(raw).unwrap_or_else(|_| text(raw)),
        Type::JSONB => {
            let version = r.u8()?;
            if version != 1 {
                return Err(format!("unknown jsonb version {version}"));
            }
            serde_json::from_slice(r.buf).unwrap_or_else(|_| text(r.buf))
        }
        Type::JSONPATH => {
            let _version = r.u8()?;
            text(r.buf)
        }
        Type::UUID => {
            let u = uuid::Uuid::from_slice(raw).map_err(|e| e.to_string())?;
            Value::String(u.hyphenated().to_string())
        }
        Type::BYTEA => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        Type::DATE => Value::String(date_text(r.i32()?)?),
        Type::TIME => Value::String(time_text(r.i64()?)),
        Type::TIMETZ => {
            let micros = r.i64()?;
            let zone = r.i32()?;
            Value::String(format!("{}{}", time_text(micros), offset_text(-zone)))
        }
        Type::TIMESTAMP => Value::String(timestamp_text(r.i64()?, false)?),
        Type::TIMESTAMPTZ => Value::String(timestamp_text(r.i64()?, true)?),
        Type::INTERVAL => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            Value::String(interval_text(micros, days, months))
        }
        Type::INET | Type::CIDR => Value::String(inet_text(raw)?),
        Type::MACADDR | Type::MACADDR8 => Value::String(
            raw.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        Type::BIT | Type::VARBIT => {
            let bits = r.i32()?.max(0) as usize;
            let bytes = r.buf;
            let s: String = (0..bits)
                .map(|i| {
                    if bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0) {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            Value::String(s)
        }
        Type::PG_LSN => {
            let lsn = r.u64()?;
            Value::String(format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff))
        }
        Type::TID => {
            let block = r.u32()?;
            let offset = r.u16()?;
            Value::String(format!("({block},{offset})"))
        }
        Type::POINT => {
            let x = r.f64()?;
            let y = r.f64()?;
            Value::String(format!("({x},{y})"))
        }
        Type::VOID => Value::Null,
        Type::RECORD => decode_record(raw, None)?,
        _ => {
            // Extension types (citext and the like): text when the bytes are printable text.
            let printable = std::str::from_utf8(raw).is_ok_and(|s| {
                !s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            });
            if ty.name() == "citext" || (ty.schema() != "pg_catalog" && printable) {
                text(raw)
            } else {
                Value::String(format!("<unsupported type {}>", ty.name()))
            }
        }
    };
    Ok(v)
}

/// N-dimensional array → nested JSON arrays (lower bounds are not kept).
fn decode_array(elem: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _elem_oid = r.u32()?;
    if ndim <= 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim > 6 {
        return Err(format!("array with {ndim} dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let len = r.i32()?;
        let _lower = r.i32()?;
        dims.push(len.max(0) as usize);
    }
    fn build(dims: &[usize], elem: &Type, r: &mut Reader<'_>) -> DecodeResult {
        let mut out = Vec::with_capacity(dims[0].min(1 << 16));
        for _ in 0..dims[0] {
            if dims.len() > 1 {
                out.push(build(&dims[1..], elem, r)?);
            } else {
                out.push(match r.field()? {
                    Some(bytes) => decode(elem, bytes),
                    None => Value::Null,
                });
            }
        }
        Ok(Value::Array(out))
    }
    build(&dims, elem, &mut r)
}

/// A composite value → object by field name; an anonymous record → array.
fn decode_record(raw: &[u8], fields: Option<&[tokio_postgres::types::Field]>) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let count = r.i32()?.max(0) as usize;
    let mut values = Vec::with_capacity(count.min(1600));
    for i in 0..count {
        let oid = r.u32()?;
        let bytes = r.field()?;
        let ty = match fields.and_then(|f| f.get(i)) {
            Some(field) => Some(field.type_().clone()),
            None => Type::from_oid(oid),
        };
        values.push(match (bytes, ty) {
            (None, _) => Value::Null,
            (Some(b), Some(ty)) => decode(&ty, b),
            (Some(_), None) => Value::String(format!("<unsupported type oid {oid}>")),
        });
    }
    match fields {
        Some(fields) => {
            let mut obj = Map::new();
            for (i, v) in values.into_iter().enumerate() {
                let name = fields
                    .get(i)
                    .map_or_else(|| format!("f{}", i + 1), |f| f.name().to_string());
                obj.insert(name, v);
            }
            Ok(Value::Object(obj))
        }
        None => Ok(Value::Array(values)),
    }
}

/// A range → its text form, e.g. `[1,10)`, `empty`, `[2024-01-01T00:00:00Z,)`.
fn decode_range(elem: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Ok(Value::String("empty".into()));
    }
    let mut bound = |infinite: bool| -> Result<String, String> {
        if infinite {
            return Ok(String::new());
        }
        let bytes = r.field()?.ok_or("NULL range bound")?;
        Ok(match decode(elem, bytes) {
            Value::String(s)
                if s.is_empty() || s.contains([',', '(', ')', '[', ']', '"', '\\', ' ']) =>
            {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let lower = bound(flags & 0x08 != 0)?;
    let upper = bound(flags & 0x10 != 0)?;
    Ok(Value::String(format!(
        "{}{lower},{upper}{}",
        if flags & 0x02 != 0 { '[' } else { '(' },
        if flags & 0x04 != 0 { ']' } else { ')' }
    )))
}

/// NUMERIC's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
fn decode_numeric(raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let ndigits = r.i16()?.max(0) as usize;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()? & 0x3fff);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(Value::String("NaN".into())),
        0xD000 => return Ok(Value::String("Infinity".into())),
        0xF000 => return Ok(Value::String("-Infinity".into())),
        other => return Err(format!("bad numeric sign {other:#x}")),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..10000).contains(&d) {
            return Err(format!("bad numeric digit {d}"));
        }
        digits.push(d);
    }
    // digits[i] is worth 10000^(weight - i).
    let digit_at = |pos: i32| -> i16 {
        let i = weight - pos;
        if i < 0 {
            0
        } else {
            digits.get(i as usize).copied().unwrap_or(0)
        }
    };
    let mut int_part = String::new();
    if weight < 0 {
        int_part.push('0');
    } else {
        for pos in (0..=weight).rev() {
            if int_part.is_empty() {
                let _ = write!(int_part, "{}", digit_at(pos));
            } else {
                let _ = write!(int_part, "{:04}", digit_at(pos));
            }
        }
    }
    let mut frac = String::new();
    let mut pos = -1;
    while frac.len() < dscale {
        let _ = write!(frac, "{:04}", digit_at(pos));
        pos -= 1;
    }
    frac.truncate(dscale);
    let negative = sign == 0x4000;
    let text = format!(
        "{}{int_part}{}{frac}",
        if negative { "-" } else { "" },
        if dscale > 0 { "." } else { "" }
    );
    Ok(numeric_json(&text, negative, &int_part, &frac))
}

/// A JSON number when it says exactly the same value, else the exact decimal string.
fn numeric_json(text: &str, negative: bool, int_part: &str, frac: &str) -> Value {
    const MAX_SAFE: i64 = 1 << 53;
    let frac_trimmed = frac.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if frac_trimmed.is_empty() {
        return match format!("{sign}{int_part}").parse::<i64>() {
            Ok(n) if (-MAX_SAFE..=MAX_SAFE).contains(&n) => Value::from(n),
            _ => Value::String(text.to_string()),
        };
    }
    let canonical = format!("{sign}{int_part}.{frac_trimmed}");
    match canonical.parse::<f64>() {
        Ok(f) if f.is_finite() && f.to_string() == canonical => {
            Number::from_f64(f).map_or_else(|| Value::String(text.to_string()), Value::Number)
        }
        _ => Value::String(text.to_string()),
    }
}

/// `.5`, `.123456`: the fraction of a second without trailing zeros ("" when whole).
fn fraction(micros: i64) -> String {
    let micros = micros.unsigned_abs() % 1_000_000;
    if micros == 0 {
        return String::new();
    }
    let s = format!(".{micros:06}");
    s.trim_end_matches('0').to_string()
}

const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_UNIX_DAYS: i64 = 10_957;

fn date_text(days: i32) -> Result<String, String> {
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let unix_secs = (i64::from(days) + PG_EPOCH_UNIX_DAYS) * 86_400;
    let dt = chrono::DateTime::from_timestamp(unix_secs, 0).ok_or("date out of range")?;
    Ok(dt.date_naive().to_string())
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    format!(
        "{:02}:{:02}:{:02}{}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        fraction(micros)
    )
}

/// `+02`, `-05:30`, `+05:45:10` (seconds east of UTC).
fn offset_text(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
    match (m, s) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{s:02}"),
    }
}

fn timestamp_text(micros: i64, utc: bool) -> Result<String, String> {
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let unix = micros
        .checked_add(PG_EPOCH_UNIX_MICROS)
        .ok_or("timestamp out of range")?;
    let dt = chrono::DateTime::from_timestamp_micros(unix).ok_or("timestamp out of range")?;
    let base = dt.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(format!(
        "{base}{}{}",
        fraction(unix),
        if utc { "Z" } else { "" }
    ))
}

/// Postgres's `IntervalStyle = postgres` output (its EncodeInterval).
fn interval_text(micros: i64, days: i32, months: i32) -> String {
    if micros == i64::MAX && days == i32::MAX && months == i32::MAX {
        return "infinity".into();
    }
    if micros == i64::MIN && days == i32::MIN && months == i32::MIN {
        return "-infinity".into();
    }
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(i64::from(months / 12), "year", &mut out);
    part(i64::from(months % 12), "mon", &mut out);
    part(i64::from(days), "day", &mut out);
    let hours = micros / 3_600_000_000;
    let rest = micros % 3_600_000_000;
    let minutes = rest / 60_000_000;
    let rest = rest % 60_000_000;
    let seconds = rest / 1_000_000;
    let fsec = rest % 1_000_000;
    if is_zero || micros != 0 {
        let minus = hours < 0 || minutes < 0 || seconds < 0 || fsec < 0;
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:{:02}{}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hours.unsigned_abs(),
            minutes.unsigned_abs(),
            seconds.unsigned_abs(),
            fraction(fsec)
        );
    }
    out
}

fn inet_text(raw: &[u8]) -> Result<String, String> {
    let mut r = Reader { buf: raw };
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let len = usize::from(r.u8()?);
    let addr = r.take(len)?;
    let (text, max) = match (family, addr.len()) {
        (2, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            (std::net::Ipv6Addr::from(a).to_string(), 128)
        }
        _ => return Err(format!("bad inet family {family}")),
    };
    Ok(if is_cidr || bits != max {
        format!("{text}/{bits}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rendering() {
        fn num(ndigits: &[i16], weight: i16, neg: bool, dscale: u16) -> Value {
            let mut raw = Vec::new();
            raw.extend_from_slice(&(ndigits.len() as i16).to_be_bytes());
            raw.extend_from_slice(&weight.to_be_bytes());
            raw.extend_from_slice(&(if neg { 0x4000u16 } else { 0 }).to_be_bytes());
            raw.extend_from_slice(&dscale.to_be_bytes());
            for d in ndigits {
                raw.extend_from_slice(&d.to_be_bytes());
            }
            decode_numeric(&raw).unwrap()
        }
        assert_eq!(num(&[12, 3400], 0, false, 2), serde_json::json!(12.34));
        assert_eq!(num(&[], 0, false, 0), serde_json::json!(0));
        assert_eq!(num(&[5000], -1, true, 1), serde_json::json!(-0.5));
        assert_eq!(num(&[3], 0, false, 2), serde_json::json!(3));
        assert_eq!(
            num(&[1], 5, false, 0),
            serde_json::json!("100000000000000000000")
        );
        assert_eq!(
            num(&[1234, 5678, 9012, 3456, 7890], 2, false, 8),
            serde_json::json!("123456789012.34567890")
        );
        assert_eq!(num(&[1], -2, false, 8), serde_json::json!(0.00000001));
    }

    #[test]
    fn interval_rendering() {
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(300_000_000, 0, 0), "00:05:00");
        assert_eq!(interval_text(7_384_500_000, 1, 0), "1 day 02:03:04.5");
        assert_eq!(interval_text(0, 2, 3), "3 mons 2 days");
        assert_eq!(interval_text(-1_000_000, 0, 0), "-00:00:01");
        assert_eq!(interval_text(7_200_000_000, -1, 0), "-1 days +02:00:00");
        assert_eq!(interval_text(0, 0, 14), "1 year 2 mons");
    }

    #[test]
    fn url_ssl_params() {
        let (url, mode, root) =
            split_ssl_params("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x")
                .unwrap();
        assert_eq!(url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));
        assert!(split_ssl_params("postgres://h/db?sslmode=bogus").is_err());
        assert!(split_ssl_params("postgres://h/db?sslcert=/x").is_err());
    }

    #[test]
    fn param_conversion() {
        assert_eq!(
            param_text(&Type::INT4, &serde_json::json!("42"))
                .unwrap()
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            param_text(&Type::INT4, &serde_json::json!("abc")).unwrap_err(),
            "expected an integer, got \"abc\""
        );
        assert!(param_text(&Type::INT2, &serde_json::json!(40000)).is_err());
        assert_eq!(
            param_text(&Type::NUMERIC, &serde_json::json!("12.50"))
                .unwrap()
                .as_deref(),
            Some("12.50")
        );
        assert!(param_text(&Type::NUMERIC, &serde_json::json!("1x")).is_err());
        assert_eq!(
            param_text(&Type::INT4_ARRAY, &serde_json::json!([1, null, [2]]))
                .unwrap()
                .as_deref(),
            Some("{\"1\",NULL,{\"2\"}}")
        );
        assert_eq!(
            param_text(&Type::BYTEA, &serde_json::json!("AAE="))
                .unwrap()
                .as_deref(),
            Some("\\x0001")
        );
        assert_eq!(param_text(&Type::TEXT, &Value::Null).unwrap(), None);
    }
}
