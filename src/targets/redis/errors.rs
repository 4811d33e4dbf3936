//! How failures become messages: error replies and `redis` crate errors sorted into
//! `ActionError` kinds (connect vs. command), and their text as the server sent it.

use super::RedisPool;
use crate::actions::ActionError;
use crate::targets::messages::clean_os_error;

impl RedisPool {
    pub(super) fn err(&self, kind: fn(String) -> ActionError, msg: String) -> ActionError {
        let msg = msg
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        kind(format!("redis {}: {msg}", self.name))
    }

    /// An error reply to a command.
    pub(super) fn reply_error(&self, e: &redis::ServerError) -> ActionError {
        self.err(kind_of_code(e.code()), server_error_text(e))
    }

    /// Errors while connecting, with the driver's error as the source.
    pub(super) fn connect_error(&self, e: redis::RedisError) -> ActionError {
        self.connect_error_of(&e).with_source(e)
    }

    /// A failure other than an error reply, with the driver's error as the source.
    pub(super) fn command_error(&self, e: redis::RedisError) -> ActionError {
        self.command_error_of(&e).with_source(e)
    }

    fn connect_error_of(&self, e: &redis::RedisError) -> ActionError {
        if let Some(code) = e.code() {
            return self.err(kind_of_code(code), redis_error_text(e));
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
    fn command_error_of(&self, e: &redis::RedisError) -> ActionError {
        if let Some(code) = e.code() {
            return self.err(kind_of_code(code), redis_error_text(e));
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

/// An error reply's kind: a refused credential, or any other failure.
fn kind_of_code(code: &str) -> fn(String) -> ActionError {
    if is_auth_code(code) {
        ActionError::Auth
    } else {
        ActionError::Failed
    }
}

pub(super) fn is_auth_code(code: &str) -> bool {
    matches!(code.to_ascii_uppercase().as_str(), "NOAUTH" | "WRONGPASS")
}

pub(super) fn is_connection_lost(e: &redis::RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_io_error()
        || (e.is_unrecoverable_error() && e.code().is_none())
}

/// `CODE message`, as the server sent it.
pub(super) fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

pub(super) fn redis_error_text(e: &redis::RedisError) -> String {
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
    clean_os_error(&e.to_string())
}
