//! How failures become messages: tokio-postgres errors sorted into `ActionError` kinds (connect
//! vs. query), and the text helpers that turn server and OS errors into one clean line.

use std::error::Error as StdError;
use std::fmt::Write as _;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use super::PgPool;
use crate::actions::ActionError;
use crate::targets::messages::{clean_os_error, io_text, one_line};

impl PgPool {
    pub(super) fn err(&self, kind: fn(String) -> ActionError, msg: String) -> ActionError {
        kind(format!("postgres {}: {}", self.name, one_line(&msg)))
    }

    /// Errors while opening a connection.
    /// Errors while opening a connection, with the driver's error as the source.
    pub(super) fn connect_error(&self, e: tokio_postgres::Error) -> ActionError {
        self.connect_error_of(&e).with_source(e)
    }

    /// A failed statement (or transaction command), with the driver's error as the source.
    pub(super) fn query_error(&self, e: tokio_postgres::Error) -> ActionError {
        self.query_error_of(&e).with_source(e)
    }

    fn connect_error_of(&self, e: &tokio_postgres::Error) -> ActionError {
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
    fn query_error_of(&self, e: &tokio_postgres::Error) -> ActionError {
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
pub(super) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.source() {
        Some(_) => format!("{}: {}", e, cause_text(e)),
        None => e.to_string(),
    }
}

pub(super) fn describe_hosts(config: &Config) -> String {
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
