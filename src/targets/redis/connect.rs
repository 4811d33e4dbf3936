//! Opening a connection: the handshake each new connection makes (AUTH or HELLO, SELECT, CLIENT
//! SETNAME in one round trip) and the TLS root bundle for a target's CA file.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::RedisPool;
use super::errors::{is_auth_code, server_error_text};
use crate::actions::ActionError;

/// Name every pooled connection gives itself (`CLIENT LIST` shows it).
const CLIENT_NAME: &str = "opsctl";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a new connection introduces itself.
pub(super) struct Handshake {
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) db: i64,
    pub(super) resp3: bool,
}

impl RedisPool {
    pub(super) async fn connect(&self) -> Result<MultiplexedConnection, ActionError> {
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
}

/// The system roots plus the CA file, as one PEM bundle (the crate replaces its root store with
/// the bundle it is given).
pub(super) fn root_bundle(ca_file: &Path) -> Result<Vec<u8>, String> {
    let extra = crate::targets::tls::read_ca_file(ca_file)?;
    let mut pem = Vec::new();
    for cert in crate::targets::tls::system_roots().iter().chain(&extra) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(chunk);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    Ok(pem)
}
