//! Which commands may be sent: the read-only decision, made with the server's own command table
//! (`COMMAND INFO`, cached per pool) plus the list of read-only commands it leaves unflagged,
//! and the commands refused outright because they change a pooled connection's state.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::errors::{is_auth_code, server_error_text};
use super::{Lease, RedisPool};
use crate::actions::ActionError;

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
pub(super) const CONNECTION_STATE: &[&str] = &[
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

/// A command's entry in the server's command table.
#[derive(Debug)]
pub(super) struct CommandInfo {
    /// False when `COMMAND INFO` answered nil: the server has no such command.
    known: bool,
    flags: Vec<String>,
    /// `"config|get"` → its flags (Redis 7+).
    subcommands: HashMap<String, Vec<String>>,
}

pub(super) type InfoCell = Arc<OnceCell<Arc<CommandInfo>>>;

impl RedisPool {
    /// The command's entry in the server's table, asked once per name per pool.
    pub(super) async fn command_info(
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

    pub(super) fn check_read_only(
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
}

/// `SET`, or `CONFIG SET` for a subcommand.
pub(super) fn display_name(argv: &[String], with_sub: bool) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> redis::Value {
        redis::Value::SimpleString(x.into())
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
