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
//! Each new connection introduces itself in one pipelined round trip: `HELLO 3` (with
//! `AUTH user pass` folded in when the URL has a password, `default` as the user when it names
//! none), `SELECT` of the URL's database, and `CLIENT SETNAME opsctl`. Doing the authentication
//! here rather than in the crate keeps the server's own words on failure (`WRONGPASS ...`,
//! `NOAUTH ...`). A server that does not know `HELLO` (Redis < 6) or refuses protocol 3
//! (`NOPROTO`) gets a second round trip in RESP2 (`AUTH [user] pass`, `SELECT`, `SETNAME`).
//! `?protocol=resp2` in the URL skips `HELLO` (RESP2 only); `?protocol=resp3` makes a server
//! without RESP3 an error instead of a fallback.
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
//! Replies are read as the server sends them, which is RESP3 on Redis 6 and later:
//! - bulk, simple and verbatim strings → string; `OK` → `"OK"`;
//! - a bulk string that is not valid UTF-8 → `{"base64": "<standard base64>"}` (an object, so
//!   binary data never looks like text: the text `"base64:YQD//mI="` stays that string);
//! - integers → integer; nil → null; booleans → bool (Redis 7 sends few: Lua scripts that call
//!   `redis.setresp(3)` and return a Lua boolean);
//! - arrays and sets → arrays; maps → objects (`HGETALL`, `CONFIG GET`, `XINFO STREAM`, ...;
//!   a non-string key becomes its compact JSON text);
//! - doubles (`ZSCORE`, `ZINCRBY`, `ZRANGE ... WITHSCORES`; `INCRBYFLOAT` answers with a
//!   string) → numbers in their shortest form (`0.1`, not `0.10000000000000001`); NaN and infinities → the strings
//!   `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - big numbers → a string of digits; an error nested inside a reply → `{"error": "CODE
//!   message"}`; attributes are dropped (their data is kept).
//!
//! On a RESP2 connection (old server, `?protocol=resp2`) the server itself flattens: maps are
//! `[field, value, ...]` arrays, doubles are strings, booleans are `1`/null. `INFO` stays one
//! string either way.
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

mod connect;
mod errors;
mod flags;
mod reply;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use serde_json::Value;
use tokio::sync::SemaphorePermit;

use crate::actions::ActionError;
use crate::targets::pool::Slots;

use connect::{Handshake, Protocol, root_bundle};
use errors::{is_connection_lost, redis_error_text};
pub use flags::READ_ONLY_UNFLAGGED;
use flags::{CONNECTION_STATE, InfoCell, display_name};
use reply::to_json;

/// A bounded pool of connections to one Redis target.
pub struct RedisPool {
    name: String,
    client: redis::Client,
    address: String,
    handshake: Handshake,
    slots: Slots<MultiplexedConnection>,
    commands: Mutex<HashMap<String, InfoCell>>,
    /// The port-forward this pool connects through (`via: k8s`), kept open with it.
    forward: Option<crate::targets::forward::Forward>,
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("available", &self.slots.available())
            .finish_non_exhaustive()
    }
}

impl RedisPool {
    /// Connects through `forward` (its local end is already in the URL): kept open as
    /// long as the pool, and named in messages.
    pub fn through(mut self, forward: crate::targets::forward::Forward) -> RedisPool {
        self.address = format!("{} (via {})", self.address, forward.description);
        self.forward = Some(forward);
        self
    }
}

impl RedisPool {
    /// Parses the URL (no connection yet). `name` is the target name used in every error message.
    pub fn new(
        name: &str,
        url: &str,
        size: usize,
        ca_file: Option<&Path>,
    ) -> Result<RedisPool, ActionError> {
        let config_err = |msg: String| ActionError::Config(format!("redis {name}: {msg}"));
        let info = url
            .into_connection_info()
            .map_err(|e| config_err(format!("invalid Redis URL: {}", redis_error_text(&e))))?;
        let settings = info.redis_settings();
        let handshake = Handshake {
            username: settings.username().map(str::to_string),
            password: settings.password().map(str::to_string),
            db: settings.db(),
            protocol: Protocol::from_url(url),
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
            slots: Slots::new(size),
            commands: Mutex::new(HashMap::new()),
            forward: None,
        })
    }

    /// Runs one command (argv[0] is the command name). Returns the reply as natural JSON.
    pub async fn command(
        &self,
        argv: &[String],
        mutating: bool,
        timeout: Duration,
    ) -> Result<Value, ActionError> {
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

        // Waiting for a free connection does not count against `timeout`: steps beyond the
        // pool wait, they do not fail.
        let permit = self.acquire().await?;
        let work = async {
            let mut lease = self.lease(permit).await?;
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
        };
        if timeout.is_zero() {
            return work.await;
        }
        // Dropping the work on timeout drops its connection, which ends the command on the
        // server too.
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(self.err(
                    ActionError::Unreachable,
                    format!("no answer within {:.1}s", timeout.as_secs_f64()),
                ))
            })
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
        let value = reply.map_err(|e| self.command_error(e))?;
        lease.busy = false;
        Ok(value)
    }

    /// A pool slot; waits while all are taken.
    async fn acquire(&self) -> Result<SemaphorePermit<'_>, ActionError> {
        self.slots
            .acquire()
            .await
            .ok_or_else(|| self.err(ActionError::Failed, "connection pool closed".to_string()))
    }

    /// A connection for a slot: an idle one, or a new one.
    async fn lease<'a>(&'a self, permit: SemaphorePermit<'a>) -> Result<Lease<'a>, ActionError> {
        let idle = self.slots.take_idle(|_| true);
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
            self.pool.slots.put_back(conn);
        }
        // Otherwise the connection is dropped: its driver task stops and the socket closes
        // (which also ends a blocking command on the server).
    }
}
