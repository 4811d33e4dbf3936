//! Redis targets: a bounded pool of connections per target and one-command execution, with commands the server does not flag read-only refused unless `mutating`.
//!
//! # Pool
//! A [`Semaphore`] of `size` permits plus a `Vec` of idle connections, as for Postgres: a call
//! takes a permit (waiting if all are busy), reuses an idle connection or opens one, and holds
//! it alone for that one command, so at most `size` connections are open to the target and at
//! most `size` commands are in flight. The connections are the `redis` crate's
//! `MultiplexedConnection`s, used one command at a time. A connection goes back to the idle list
//! only after a complete reply; a call dropped mid-command (step timeout, Ctrl-C) closes its
//! connection, which also ends a blocking command (`BLPOP`) on the server.
//!
//! Each new connection authenticates itself (`AUTH [user] pass`, or `HELLO 3 AUTH user pass`
//! for `?protocol=resp3`), selects the URL's database and names itself `opsctl`
//! (`CLIENT SETNAME`, in one pipelined round trip). Doing the `AUTH` here rather than in the
//! crate keeps the server's own words on failure (`WRONGPASS ...`, `NOAUTH ...`).
//!
//! # Read-only enforcement
//! Without `mutating`, the command is checked BEFORE it is sent, with the server's own command
//! table: `COMMAND INFO <name>`, asked once per distinct command name per pool and cached (the
//! reply includes every subcommand's entry on Redis 7). A command passes when its flags (for a
//! container command such as `CONFIG`, `CLIENT`, `XINFO`, the flags of `config|get` etc.) do not
//! include `write` and either include `readonly` or name a known read-only introspection
//! command that the server leaves unflagged because it touches no keys: `PING`, `ECHO`, `INFO`,
//! `TIME`, `LASTSAVE`, `ROLE`, `CONFIG GET`, `CLIENT LIST/INFO/GETNAME/ID`, `SLOWLOG GET/LEN`,
//! `MEMORY STATS/DOCTOR/MALLOC-STATS`, `LATENCY LATEST/HISTORY/DOCTOR/GRAPH/HISTOGRAM`,
//! `COMMAND INFO/COUNT/LIST/DOCS/GETKEYS`, `ACL WHOAMI/CAT/USERS`, `SCRIPT EXISTS`,
//! `FUNCTION LIST/STATS`, `PUBSUB CHANNELS/NUMSUB/NUMPAT/...`, `CLUSTER INFO/NODES/SLOTS/...`,
//! `MODULE LIST` and the `HELP` subcommands (see [`READ_ONLY_UNFLAGGED`]). The server cannot tell
//! `CONFIG GET` from `CONFIG SET` by flags (both are `admin noscript loading stale`), hence the
//! list. Everything else is refused: unknown commands (nil `COMMAND INFO` reply), unknown
//! subcommands, `EVAL`/`EVALSHA`/`FCALL` (use `EVAL_RO`/`FCALL_RO`, which the server flags
//! read-only and enforces), admin commands. On servers without subcommand entries (Redis 6) a
//! listed `name|sub` is judged by the container's flags plus the list.
//!
//! Commands that change a pooled connection's state (`SUBSCRIBE` and friends, `MONITOR`,
//! `MULTI`/`EXEC`/`WATCH`, `SELECT`, `AUTH`, `HELLO`, `RESET`, `QUIT`, `CLIENT REPLY/TRACKING/
//! SETNAME/CACHING`) are [`ActionError::Unsupported`], `mutating` or not.
//!
//! A read-only command (and the `COMMAND INFO` lookup) that fails on a reused idle connection
//! because that connection had died (server restart, idle timeout) is retried once on a new
//! connection; a command sent with `mutating: true` never is (it may have reached the server).
//!
//! # Replies → JSON
//! Bulk and simple strings → string (a bulk string that is not UTF-8 → `"base64:<standard
//! base64>"`); `OK` → `"OK"`; integers → integer; nil → null; arrays and sets → arrays; RESP3 maps
//! → objects (non-string keys as their compact JSON text); doubles → numbers (`"NaN"`,
//! `"Infinity"`, `"-Infinity"`); booleans → bool; verbatim strings → their text; big numbers → a
//! string of digits; an error nested inside a reply → `{"error": "CODE message"}`. RESP2 replies
//! to `HGETALL`/`CONFIG GET` are flat `[field, value, ...]` arrays (use `?protocol=resp3` for
//! objects). `INFO` stays one string.
//!
//! # Errors
//! All messages name the target and pass through the run's [`Redactor`]: an error reply is
//! `Failed("redis cache: WRONGTYPE Operation against a key holding the wrong kind of value")`;
//! `WRONGPASS`/`NOAUTH` → `Auth`; refused connections, DNS and TLS failures and connections lost
//! → `Unreachable`; a bad URL or CA file → `Config`.
//!
//! # TLS
//! `rediss://` uses rustls with the system roots; a target CA file is added to them (the crate
//! builds the rustls config with the process's default crypto provider).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
};
use serde_json::{Map, Number, Value};
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

use crate::actions::ActionError;
use crate::redact::Redactor;

/// Name every pooled connection gives itself (`CLIENT LIST` shows it).
const CLIENT_NAME: &str = "opsctl";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands and subcommands that only read but that the server does not flag `readonly`
/// (they touch no keys). Lower case, `container|sub` for subcommands.
pub const READ_ONLY_UNFLAGGED: &[&str] = &[
    "ping",
    "echo",
    "info",
    "time",
    "lastsave",
    "role",
    "dbsize",
    "config|get",
    "config|help",
    "client|list",
    "client|info",
    "client|getname",
    "client|id",
    "client|getredir",
    "client|trackinginfo",
    "client|help",
    "slowlog|get",
    "slowlog|len",
    "slowlog|help",
    "memory|stats",
    "memory|doctor",
    "memory|malloc-stats",
    "memory|usage",
    "memory|help",
    "latency|latest",
    "latency|history",
    "latency|doctor",
    "latency|graph",
    "latency|histogram",
    "latency|help",
    "command|info",
    "command|count",
    "command|list",
    "command|docs",
    "command|getkeys",
    "command|getkeysandflags",
    "command|help",
    "acl|whoami",
    "acl|cat",
    "acl|users",
    "acl|help",
    "script|exists",
    "script|help",
    "function|list",
    "function|stats",
    "function|help",
    "pubsub|channels",
    "pubsub|numsub",
    "pubsub|numpat",
    "pubsub|shardchannels",
    "pubsub|shardnumsub",
    "pubsub|help",
    "cluster|info",
    "cluster|nodes",
    "cluster|slots",
    "cluster|shards",
    "cluster|myid",
    "cluster|keyslot",
    "cluster|countkeysinslot",
    "cluster|getkeysinslot",
    "cluster|links",
    "cluster|replicas",
    "cluster|slaves",
    "cluster|help",
    "module|list",
    "module|help",
    "object|help",
    "xinfo|help",
];

/// Commands that would change a pooled connection's state (or never return a reply).
const CONNECTION_STATE: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "monitor",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "select",
    "auth",
    "hello",
    "reset",
    "quit",
    "readonly",
    "readwrite",
    "sync",
    "psync",
    "replconf",
    "client|reply",
    "client|tracking",
    "client|caching",
    "client|setname",
    "client|no-evict",
    "client|no-touch",
];

/// How a new connection introduces itself.
struct Handshake {
    username: Option<String>,
    password: Option<String>,
    db: i64,
    resp3: bool,
}

/// A command's entry in the server's command table.
#[derive(Debug)]
struct CommandInfo {
    /// False when `COMMAND INFO` answered nil: the server has no such command.
    known: bool,
    flags: Vec<String>,
    /// `"config|get"` → its flags (Redis 7+).
    subcommands: HashMap<String, Vec<String>>,
}

type InfoCell = Arc<OnceCell<Arc<CommandInfo>>>;

/// A bounded pool of connections to one Redis target.
pub struct RedisPool {
    name: String,
    client: redis::Client,
    address: String,
    handshake: Handshake,
    permits: Semaphore,
    idle: Mutex<Vec<MultiplexedConnection>>,
    commands: Mutex<HashMap<String, InfoCell>>,
    redactor: Redactor,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl RedisPool {
    /// Parses the URL (no connection yet). `name` is the target name used in every error message.
    pub fn new(
        name: &str,
        url: &str,
        size: usize,
        ca_file: Option<&Path>,
        redactor: Redactor,
    ) -> Result<RedisPool, ActionError> {
        redactor.add_url_password(url);
        let config_err =
            |msg: String| ActionError::Config(redactor.redact(&format!("redis {name}: {msg}")));
        let info = url
            .into_connection_info()
            .map_err(|e| config_err(format!("invalid Redis URL: {}", redis_error_text(&e))))?;
        let settings = info.redis_settings();
        if let Some(pw) = settings.password() {
            redactor.add(pw);
        }
        let handshake = Handshake {
            username: settings.username().map(str::to_string),
            password: settings.password().map(str::to_string),
            db: settings.db(),
            resp3: settings.protocol() == ProtocolVersion::RESP3,
        };
        let address = info.addr().to_string();
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        // The crate must not authenticate itself (we do, to keep the server's error text).
        let info = info.set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let client = match ca_file {
            Some(path) if tls => {
                let roots = root_bundle(path).map_err(config_err)?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(roots),
                    },
                )
            }
            Some(path) => {
                return Err(config_err(format!(
                    "a CA file ({}) is configured but the URL is not rediss:// (TLS)",
                    path.display()
                )));
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| config_err(redis_error_text(&e)))?;
        Ok(RedisPool {
            name: name.to_string(),
            client,
            address,
            handshake,
            permits: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
            commands: Mutex::new(HashMap::new()),
            redactor,
        })
    }

    /// Runs one command (argv[0] is the command name). Returns the reply as natural JSON.
    pub async fn command(&self, argv: &[String], mutating: bool) -> Result<Value, ActionError> {
        let Some(name) = argv.first().filter(|n| !n.trim().is_empty()) else {
            return Err(self.err(ActionError::InvalidArgs, "empty command".to_string()));
        };
        let lname = name.to_ascii_lowercase();
        let sub = argv.get(1).map(|s| s.to_ascii_lowercase());
        let state_key = match &sub {
            Some(s) => format!("{lname}|{s}"),
            None => lname.clone(),
        };
        if CONNECTION_STATE.contains(&lname.as_str())
            || CONNECTION_STATE.contains(&state_key.as_str())
        {
            return Err(self.err(
                ActionError::Unsupported,
                format!(
                    "{} changes the connection's state (connections are pooled and shared between steps); not supported",
                    display_name(argv, CONNECTION_STATE.contains(&state_key.as_str()))
                ),
            ));
        }

        let mut lease = self.checkout().await?;
        if !mutating {
            let info = self.command_info(&mut lease, &lname, argv).await?;
            self.check_read_only(&info, &lname, argv)?;
        }
        let mut cmd = redis::cmd(name);
        for arg in &argv[1..] {
            cmd.arg(arg.as_str());
        }
        // Only commands known to be read-only are safe to send twice.
        match self.send(&mut lease, &cmd, !mutating).await? {
            redis::Value::ServerError(e) => Err(self.reply_error(&e)),
            value => Ok(to_json(value)),
        }
    }

    /// Sends one command on the lease's connection and reads its reply (an error reply is a
    /// reply). If `retry_safe` and a reused connection turns out dead, once more on a new one.
    async fn send(
        &self,
        lease: &mut Lease<'_>,
        cmd: &redis::Cmd,
        retry_safe: bool,
    ) -> Result<redis::Value, ActionError> {
        lease.busy = true;
        let mut reply = lease.send(cmd).await;
        let dead_idle = retry_safe && lease.reused && reply.as_ref().is_err_and(is_connection_lost);
        if let (true, Err(e)) = (dead_idle, &reply) {
            tracing::debug!(target: "opsctl::redis", "redis {}: idle connection was dead ({e}); reconnecting", self.name);
            lease.conn = Some(self.connect().await?);
            lease.reused = false;
            reply = lease.send(cmd).await;
        }
        let value = reply.map_err(|e| self.command_error(&e))?;
        lease.busy = false;
        Ok(value)
    }

    /// The command's entry in the server's table, asked once per name per pool.
    async fn command_info(
        &self,
        lease: &mut Lease<'_>,
        lname: &str,
        argv: &[String],
    ) -> Result<Arc<CommandInfo>, ActionError> {
        let cell = {
            let mut map = self.commands.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(lname.to_string()).or_default().clone()
        };
        let info = cell
            .get_or_try_init(|| async {
                let mut cmd = redis::cmd("COMMAND");
                cmd.arg("INFO").arg(lname);
                match self.send(lease, &cmd, true).await? {
                    redis::Value::ServerError(e) if is_auth_code(e.code()) => Err(self.reply_error(&e)),
                    redis::Value::ServerError(e) => Err(self.err(
                        ActionError::Refused,
                        format!(
                            "cannot tell whether {} writes (COMMAND INFO failed: {}); add `mutating: true` to the step to send it anyway",
                            display_name(argv, false),
                            server_error_text(&e)
                        ),
                    )),
                    value => Ok(Arc::new(parse_command_info(&value))),
                }
            })
            .await?;
        Ok(info.clone())
    }

    fn check_read_only(
        &self,
        info: &CommandInfo,
        lname: &str,
        argv: &[String],
    ) -> Result<(), ActionError> {
        let refuse = |why: &str, with_sub: bool| {
            Err(self.err(
                ActionError::Refused,
                format!(
                    "{} {why}; add `mutating: true` to the step to allow it",
                    display_name(argv, with_sub)
                ),
            ))
        };
        if !info.known {
            return refuse("is not a command this server knows, so it may write", false);
        }
        let sub = argv
            .get(1)
            .map(|s| format!("{lname}|{}", s.to_ascii_lowercase()));
        let (key, flags, with_sub) = match &sub {
            Some(key) if !info.subcommands.is_empty() => match info.subcommands.get(key) {
                Some(flags) => (key.as_str(), flags, true),
                None => {
                    return refuse(
                        "is not a subcommand this server knows, so it may write",
                        true,
                    );
                }
            },
            // Servers without subcommand entries: the container's flags plus the list.
            Some(key) if READ_ONLY_UNFLAGGED.contains(&key.as_str()) => {
                (key.as_str(), &info.flags, true)
            }
            _ => (lname, &info.flags, false),
        };
        let has = |f: &str| flags.iter().any(|x| x == f);
        if has("write") {
            return refuse("writes", with_sub);
        }
        if has("readonly") || READ_ONLY_UNFLAGGED.contains(&key) {
            return Ok(());
        }
        refuse(
            "may write (the server does not flag it read-only)",
            with_sub,
        )
    }

    async fn checkout(&self) -> Result<Lease<'_>, ActionError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.err(ActionError::Failed, "connection pool closed".to_string()))?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (conn, reused) = match idle {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            reused,
            busy: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<MultiplexedConnection, ActionError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // No client-side response timeout: blocking commands may legitimately wait; the
            // caller's step timeout drops the call (and so the connection).
            .set_response_timeout(None);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.connect_error(&e))?;

        let h = &self.handshake;
        let mut pipe = redis::pipe();
        let mut auth_idx = None;
        if h.resp3 {
            pipe.cmd("HELLO").arg(3);
            if let Some(pw) = &h.password {
                pipe.arg("AUTH")
                    .arg(h.username.as_deref().unwrap_or("default"))
                    .arg(pw.as_str());
            }
            auth_idx = Some(0);
        } else if let Some(pw) = &h.password {
            pipe.cmd("AUTH");
            if let Some(user) = &h.username {
                pipe.arg(user.as_str());
            }
            pipe.arg(pw.as_str());
            auth_idx = Some(0);
        }
        let select_idx = (h.db != 0).then(|| {
            pipe.cmd("SELECT").arg(h.db);
            pipe.len() - 1
        });
        pipe.cmd("CLIENT").arg("SETNAME").arg(CLIENT_NAME);
        let replies = conn
            .send_packed_commands(&pipe, 0, pipe.len())
            .await
            .map_err(|e| self.connect_error(&e))?;
        if let Some(redis::Value::ServerError(e)) = auth_idx.and_then(|i| replies.get(i)) {
            let code = e.code().to_ascii_uppercase();
            return Err(if code == "NOPROTO" {
                self.err(
                    ActionError::Unsupported,
                    format!("the server does not speak RESP3: {}", server_error_text(e)),
                )
            } else {
                self.err(ActionError::Auth, server_error_text(e))
            });
        }
        if let Some(redis::Value::ServerError(e)) = select_idx.and_then(|i| replies.get(i)) {
            let kind: fn(String) -> ActionError = if is_auth_code(e.code()) {
                ActionError::Auth
            } else {
                ActionError::Config
            };
            return Err(self.err(
                kind,
                format!("cannot select database {}: {}", h.db, server_error_text(e)),
            ));
        }
        // CLIENT SETNAME is a courtesy: without AUTH on a server that needs it, it says NOAUTH.
        if let Some(redis::Value::ServerError(e)) = replies.last() {
            if is_auth_code(e.code()) {
                return Err(self.err(ActionError::Auth, server_error_text(e)));
            }
        }
        Ok(conn)
    }

    fn err(&self, kind: fn(String) -> ActionError, msg: String) -> ActionError {
        let msg = msg
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        kind(self.redactor.redact(&format!("redis {}: {msg}", self.name)))
    }

    /// An error reply to a command.
    fn reply_error(&self, e: &redis::ServerError) -> ActionError {
        let kind: fn(String) -> ActionError = if is_auth_code(e.code()) {
            ActionError::Auth
        } else {
            ActionError::Failed
        };
        self.err(kind, server_error_text(e))
    }

    fn connect_error(&self, e: &redis::RedisError) -> ActionError {
        if let Some(code) = e.code() {
            let kind: fn(String) -> ActionError = if is_auth_code(code) {
                ActionError::Auth
            } else {
                ActionError::Failed
            };
            return self.err(kind, redis_error_text(e));
        }
        match e.kind() {
            redis::ErrorKind::AuthenticationFailed => {
                self.err(ActionError::Auth, redis_error_text(e))
            }
            redis::ErrorKind::InvalidClientConfig => {
                self.err(ActionError::Config, redis_error_text(e))
            }
            _ => self.err(
                ActionError::Unreachable,
                format!(
                    "cannot connect to {}: {}",
                    self.address,
                    redis_error_text(e)
                ),
            ),
        }
    }

    /// A failure other than an error reply, on an open connection.
    fn command_error(&self, e: &redis::RedisError) -> ActionError {
        if let Some(code) = e.code() {
            let kind: fn(String) -> ActionError = if is_auth_code(code) {
                ActionError::Auth
            } else {
                ActionError::Failed
            };
            return self.err(kind, redis_error_text(e));
        }
        if is_connection_lost(e) {
            return self.err(
                ActionError::Unreachable,
                format!("connection closed: {}", redis_error_text(e)),
            );
        }
        self.err(ActionError::Failed, redis_error_text(e))
    }
}

/// A checked-out connection: back to the idle list on drop unless a request is outstanding on
/// it (dropped mid-command) or it failed.
struct Lease<'a> {
    pool: &'a RedisPool,
    conn: Option<MultiplexedConnection>,
    /// Taken from the idle list (it may have died while idle).
    reused: bool,
    /// A request was sent and no complete reply read.
    busy: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    async fn send(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self.conn.as_mut() {
            Some(conn) => conn.send_packed_command(cmd).await,
            None => Err(std::io::Error::from(std::io::ErrorKind::NotConnected).into()),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), false) = (conn, self.busy) {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        // Otherwise the connection is dropped: its driver task stops and the socket closes
        // (which also ends a blocking command on the server).
    }
}

fn is_auth_code(code: &str) -> bool {
    matches!(code.to_ascii_uppercase().as_str(), "NOAUTH" | "WRONGPASS")
}

fn is_connection_lost(e: &redis::RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_io_error()
        || (e.is_unrecoverable_error() && e.code().is_none())
}

/// `CODE message`, as the server sent it.
fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

fn redis_error_text(e: &redis::RedisError) -> String {
    if let Some(code) = e.code() {
        return match e.detail() {
            Some(d) => format!("{code} {d}"),
            None => code.to_string(),
        };
    }
    if e.is_connection_refusal() {
        return "connection refused".to_string();
    }
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(c)
            if c.is_ascii_uppercase()
                && chars.clone().next().is_some_and(|n| n.is_ascii_lowercase()) =>
        {
            c.to_ascii_lowercase().to_string() + chars.as_str()
        }
        _ => s,
    }
}

/// `SET`, or `CONFIG SET` for a subcommand.
fn display_name(argv: &[String], with_sub: bool) -> String {
    let mut s = argv
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    if let (true, Some(sub)) = (with_sub, argv.get(1)) {
        s.push(' ');
        s.push_str(&sub.to_ascii_uppercase());
    }
    s
}

fn items(v: &redis::Value) -> Option<&[redis::Value]> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => Some(items),
        _ => None,
    }
}

fn value_str(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

fn flags_of(entry: &[redis::Value]) -> Vec<String> {
    entry
        .get(2)
        .and_then(items)
        .map(|f| {
            f.iter()
                .filter_map(value_str)
                .map(|s| s.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// `COMMAND INFO name` → flags and subcommand flags. Reply: `[nil]` for an unknown command, else
/// `[[name, arity, flags, first, last, step, acl-categories, tips, key-specs, subcommands]]`.
fn parse_command_info(reply: &redis::Value) -> CommandInfo {
    let entry = items(reply).and_then(|r| r.first()).and_then(items);
    let Some(entry) = entry else {
        return CommandInfo {
            known: false,
            flags: Vec::new(),
            subcommands: HashMap::new(),
        };
    };
    let mut subcommands = HashMap::new();
    if let Some(subs) = entry.get(9).and_then(items) {
        for sub in subs.iter().filter_map(items) {
            if let Some(name) = sub.first().and_then(value_str) {
                subcommands.insert(name.to_ascii_lowercase(), flags_of(sub));
            }
        }
    }
    CommandInfo {
        known: true,
        flags: flags_of(entry),
        subcommands,
    }
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

/// A reply as natural JSON (see the module docs).
fn to_json(v: redis::Value) -> Value {
    use redis::Value as R;
    match v {
        R::Nil => Value::Null,
        R::Int(i) => Value::from(i),
        R::BulkString(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Value::String(s),
            Err(e) => Value::String(format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(e.as_bytes())
            )),
        },
        R::Array(items) | R::Set(items) => Value::Array(items.into_iter().map(to_json).collect()),
        R::SimpleString(s) => Value::String(s),
        R::Okay => Value::String("OK".into()),
        R::Map(pairs) => {
            let mut obj = Map::with_capacity(pairs.len());
            for (k, v) in pairs {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, to_json(v));
            }
            Value::Object(obj)
        }
        R::Attribute { data, .. } => to_json(*data),
        R::Double(f) => float_json(f),
        R::Boolean(b) => Value::Bool(b),
        R::VerbatimString { text, .. } => Value::String(text),
        R::BigNumber(n) => Value::String(n.to_string()),
        R::Push { data, .. } => Value::Array(data.into_iter().map(to_json).collect()),
        R::ServerError(e) => {
            let mut obj = Map::new();
            obj.insert("error".into(), Value::String(server_error_text(&e)));
            Value::Object(obj)
        }
        _ => Value::Null,
    }
}

/// The system roots plus the CA file, as one PEM bundle (the crate replaces its root store with
/// the bundle it is given).
fn root_bundle(ca_file: &Path) -> Result<Vec<u8>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let extra = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read CA file {}: {e}", ca_file.display()))?;
    let count = CertificateDer::pem_slice_iter(&extra)
        .filter(Result::is_ok)
        .count();
    if count == 0 {
        return Err(format!(
            "CA file {} holds no PEM certificate",
            ca_file.display()
        ));
    }
    let mut pem = Vec::new();
    for cert in rustls_native_certs::load_native_certs().certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(chunk);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem.extend_from_slice(&extra);
    if !extra.ends_with(b"\n") {
        pem.push(b'\n');
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> redis::Value {
        redis::Value::SimpleString(x.into())
    }

    #[test]
    fn reply_conversion() {
        use redis::Value as R;
        let v = R::Array(vec![
            R::BulkString(b"hi".to_vec()),
            R::BulkString(vec![0xff, 0x00]),
            R::Int(-3),
            R::Nil,
            R::Okay,
            R::Map(vec![
                (R::Int(1), R::Double(1.5)),
                (s("k"), R::Boolean(true)),
            ]),
            R::Double(f64::INFINITY),
        ]);
        assert_eq!(
            to_json(v),
            serde_json::json!(["hi", "base64:/wA=", -3, null, "OK", {"1": 1.5, "k": true}, "Infinity"])
        );
    }

    #[test]
    fn command_info_parsing() {
        use redis::Value as R;
        let sub = |name: &str, flags: &[&str]| {
            R::Array(vec![
                R::BulkString(name.as_bytes().to_vec()),
                R::Int(-2),
                R::Set(flags.iter().map(|f| s(f)).collect()),
            ])
        };
        let reply = R::Array(vec![R::Array(vec![
            R::BulkString(b"config".to_vec()),
            R::Int(-2),
            R::Array(vec![]),
            R::Int(0),
            R::Int(0),
            R::Int(0),
            R::Array(vec![]),
            R::Array(vec![]),
            R::Array(vec![]),
            R::Array(vec![
                sub("config|get", &["admin", "noscript"]),
                sub("config|set", &["admin", "noscript"]),
            ]),
        ])]);
        let info = parse_command_info(&reply);
        assert!(info.known);
        assert_eq!(info.subcommands["config|get"], vec!["admin", "noscript"]);
        assert!(!parse_command_info(&R::Array(vec![R::Nil])).known);
    }
}
