//! Opening a connection: the handshake each new connection makes (HELLO 3 or AUTH, SELECT,
//! CLIENT SETNAME in one round trip; a second one only when an old server does not know HELLO)
//! and the TLS root bundle for a target's CA file.

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

/// The protocol a new connection asks for: the URL's `?protocol=` (`resp2`/`2`,
/// `resp3`/`3`), else RESP3 when the server has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// No `protocol` in the URL: RESP3, or RESP2 on a server without `HELLO` (Redis < 6).
    Auto,
    /// `?protocol=resp2`: never sends `HELLO`.
    Resp2,
    /// `?protocol=resp3`: a server without RESP3 is an error.
    Resp3,
}

impl Protocol {
    /// The `protocol` query parameter of a Redis URL. The crate has already parsed the URL
    /// (and refused values other than 2/3/resp2/resp3) but cannot tell "absent" from "resp2".
    pub(super) fn from_url(url: &str) -> Protocol {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let value = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == "protocol")
            .map(|(_, v)| v)
            .next_back();
        match value {
            Some("2" | "resp2") => Protocol::Resp2,
            Some("3" | "resp3") => Protocol::Resp3,
            _ => Protocol::Auto,
        }
    }
}

/// How a new connection introduces itself.
pub(super) struct Handshake {
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) db: i64,
    pub(super) protocol: Protocol,
}

impl RedisPool {
    /// A new connection, authenticated, on the URL's database, named, speaking RESP3 when it can.
    ///
    /// The crate is told nothing about RESP3 (its connection info says RESP2, no password): told,
    /// it would send its own `HELLO 3` without our credentials before ours. Its reply parser reads
    /// RESP3 whatever the setting; the setting only gates push-message and client-side-caching
    /// features, which pooled connections do not use (`SUBSCRIBE`, `CLIENT TRACKING` are refused).
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
            .map_err(|e| self.connect_error(e))?;

        let protocol = self.handshake.protocol;
        if protocol != Protocol::Resp2 {
            let Some(refusal) = self.introduce(&mut conn, true).await? else {
                return Ok(conn);
            };
            if protocol == Protocol::Resp3 {
                return Err(self.err(
                    ActionError::Unsupported,
                    format!(
                        "the server does not speak RESP3 (remove `protocol=resp3` from the URL): {}",
                        without_echoed_args(&server_error_text(&refusal))
                    ),
                ));
            }
            // Nothing was authenticated or selected (the commands after the failed HELLO were
            // refused or are repeated harmlessly): start over in RESP2 on the same connection.
            // An old server's "unknown command" echoes HELLO's arguments, password included.
            tracing::debug!(target: "opsctl::redis", "redis {}: no RESP3 ({}); using RESP2", self.name, without_echoed_args(&server_error_text(&refusal)));
        }
        match self.introduce(&mut conn, false).await? {
            None => Ok(conn),
            // Without HELLO in the pipeline there is nothing to refuse this way.
            Some(e) => Err(self.err(ActionError::Failed, server_error_text(&e))),
        }
    }

    /// One round trip: `HELLO 3 [AUTH user pass]` (if `resp3`) or `AUTH [user] pass`, then
    /// `SELECT db` (if not 0) and `CLIENT SETNAME`. `Ok(Some(error))` when the server refused
    /// HELLO as unknown or its protocol as unsupported (the caller may fall back to RESP2).
    async fn introduce(
        &self,
        conn: &mut MultiplexedConnection,
        resp3: bool,
    ) -> Result<Option<redis::ServerError>, ActionError> {
        let h = &self.handshake;
        let mut pipe = redis::pipe();
        let mut auth_idx = None;
        if resp3 {
            // AUTH folded into HELLO: a server that needs a password refuses a bare HELLO 3.
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
            .map_err(|e| self.connect_error(e))?;
        if let Some(redis::Value::ServerError(e)) = auth_idx.and_then(|i| replies.get(i)) {
            if resp3 && hello_not_understood(e) {
                return Ok(Some(e.clone()));
            }
            // A bare HELLO 3 (no password in the URL) on a server that needs one is refused
            // with a long hint about `HELLO AUTH`; the plain `NOAUTH Authentication required.`
            // of the next command says what is missing.
            let plainer = match (resp3, &h.password, replies.last()) {
                (true, None, Some(redis::Value::ServerError(later)))
                    if is_auth_code(later.code()) =>
                {
                    later
                }
                _ => e,
            };
            return Err(self.err(ActionError::Auth, server_error_text(plainer)));
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
        Ok(None)
    }
}

/// HELLO refused as unknown (Redis < 6: `ERR unknown command 'HELLO'`; also a server with
/// HELLO renamed away) or protocol 3 refused (`NOPROTO`): RESP2 still works there.
fn hello_not_understood(e: &redis::ServerError) -> bool {
    let code = e.code().to_ascii_uppercase();
    code == "NOPROTO"
        || (code == "ERR"
            && e.details()
                .is_some_and(|d| d.to_ascii_lowercase().starts_with("unknown command")))
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

/// A server error without the arguments an old server echoes back ("unknown command
/// 'HELLO', with args beginning with: '3' 'AUTH' 'user' 'password'"): HELLO's carry the
/// password.
fn without_echoed_args(text: &str) -> String {
    match text.find(", with args beginning with") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol;

    #[test]
    fn protocol_from_url() {
        assert_eq!(Protocol::from_url("redis://h/0"), Protocol::Auto);
        assert_eq!(
            Protocol::from_url("redis://h/0?protocol=resp2"),
            Protocol::Resp2
        );
        assert_eq!(
            Protocol::from_url("redis://h/0?x=1&protocol=2"),
            Protocol::Resp2
        );
        assert_eq!(
            Protocol::from_url("rediss://h?protocol=resp3"),
            Protocol::Resp3
        );
        assert_eq!(
            Protocol::from_url("redis://h?protocol=3#frag"),
            Protocol::Resp3
        );
        assert_eq!(Protocol::from_url("redis://h?protocolx=3"), Protocol::Auto);
    }
}
