//! `tls`: handshake with a TLS server and read its certificate (expiry, subject,
//! issuer). The certificate is inspected, not trusted: an expired or self-signed one is
//! exactly what this check exists to report.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use x509_cert::der::Decode;

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::tcp::{endpoint_text, host_port};
use super::{Action, ActionError, Outputs, arg_str, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;
use crate::targets::tls::{Check, Verifier};

pub struct Tls;

static SPEC: ActionSpec = ActionSpec {
    name: "tls",
    summary: "Read a server's TLS certificate.",
    args: &[
        ArgSpec {
            name: "host",
            ty: ArgType::Str,
            required: true,
            doc: "Host name (also sent as SNI).",
        },
        ArgSpec {
            name: "port",
            ty: ArgType::Int,
            required: false,
            doc: "Port (443).",
        },
        ArgSpec {
            name: "server_name",
            ty: ArgType::Str,
            required: false,
            doc: "SNI name when it differs from `host`.",
        },
    ],
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

impl Action for Tls {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        format!("read the TLS certificate of {}", endpoint_text(args, "443"))
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let (host, port) = host_port(&args, Some(443))?;
            let sni = arg_str(&args, "server_name").unwrap_or(&host).to_string();
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
