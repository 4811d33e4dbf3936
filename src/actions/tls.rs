//! `tls`: handshake with a TLS server and read its certificate (expiry, subject,
//! issuer). The certificate is inspected, not trusted: an expired or self-signed one is
//! exactly what this check exists to report.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use rustls::pki_types::ServerName;
use serde_json::json;
use x509_cert::der::Decode;

use super::spec::{ActionSpec, ArgsSchema, Int, OutputSpec};
use super::tcp::host_port;
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::targets::tls::{Check, Verifier};

pub struct Tls;

crate::action_args! {
    /// Arguments of `tls`.
    pub struct TlsArgs {
        /// Host name (also sent as SNI).
        host: String = required,
        /// Port (443).
        port: Option<Int>,
        /// SNI name when it differs from `host`.
        server_name: Option<String>,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "tls",
    summary: "Read a server's TLS certificate.",
    args: <TlsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "days_left",
            doc: "Whole days until the certificate expires (negative once expired).",
        },
        OutputSpec {
            name: "not_after",
            doc: "Expiry time (RFC 3339).",
        },
        OutputSpec {
            name: "not_before",
            doc: "Start of validity (RFC 3339).",
        },
        OutputSpec {
            name: "subject",
            doc: "Subject distinguished name.",
        },
        OutputSpec {
            name: "issuer",
            doc: "Issuer distinguished name.",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to connect and handshake.",
        },
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "the handshake succeeds",
};

impl ActionImpl for Tls {
    type Args = TlsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn describe(&self, a: &TlsArgs, _env: &EnvConfig) -> String {
        format!(
            "read the TLS certificate of {}:{}",
            a.host,
            a.port.map_or(443, |p| p.0)
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        a: TlsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let (host, port) = host_port(&a.host, a.port.map_or(443, |p| p.0))?;
            let sni = a.server_name.clone().unwrap_or_else(|| host.clone());
            let server_name = ServerName::try_from(sni.clone()).map_err(|_| {
                ActionError::InvalidArgs(format!("tls: `{sni}` is not a valid server name"))
            })?;
            // Inspected, not trusted: an expired or self-signed certificate is what this
            // check exists to report.
            let verifier = Verifier::new(Check::SignaturesOnly);
            let config = rustls::ClientConfig::builder_with_provider(crate::targets::tls::ring())
                .with_safe_default_protocol_versions()
                .map_err(|e| ActionError::Failed(format!("tls: {e}")))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();

            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let started = Instant::now();
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| ActionError::Unreachable(format!("{host}:{port}: {e}")))?;
            let tls = connector.connect(server_name, tcp).await.map_err(|e| {
                ActionError::Unreachable(format!("{host}:{port}: TLS handshake failed: {e}"))
            })?;
            let latency = latency_ms(started);
            let (_, session) = tls.get_ref();
            let leaf = session
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or_else(|| {
                    ActionError::Failed(format!("{host}:{port}: the server sent no certificate"))
                })?;
            let mut out = inspect(leaf.as_ref())?;
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}

/// Certificate fields as outputs.
pub fn inspect(der: &[u8]) -> Result<Outputs, ActionError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| ActionError::Failed(format!("cannot parse the server certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let not_after = tbs.validity.not_after.to_system_time();
    let not_before = tbs.validity.not_before.to_system_time();
    let now = SystemTime::now();
    let secs_left: i64 = match not_after.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let mut out = Outputs::new();
    out.insert("days_left".into(), json!(secs_left.div_euclid(86_400)));
    out.insert("not_after".into(), json!(rfc3339(not_after)));
    out.insert("not_before".into(), json!(rfc3339(not_before)));
    out.insert("subject".into(), json!(tbs.subject.to_string()));
    out.insert("issuer".into(), json!(tbs.issuer.to_string()));
    Ok(out)
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
