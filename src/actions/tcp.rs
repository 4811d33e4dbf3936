//! `tcp`: can a TCP connection be opened to host:port?

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgsSchema, Int, OutputSpec};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Tcp;

crate::action_args! {
    /// Arguments of `tcp`.
    pub struct TcpArgs {
        /// Host name or IP address.
        host: String = required,
        /// Port.
        port: Int = required,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "tcp",
    summary: "Open a TCP connection.",
    args: <TcpArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "connected",
            doc: "Whether the connection was accepted.",
        },
        OutputSpec {
            name: "error",
            doc: "Why it was not (null when connected).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to connect.",
        },
    ],
    exclusive: &[],
    mutating: "never",
    default_expect: "connected",
};

/// A host and port checked: a non-empty host, a port from 1 to 65535.
pub fn host_port(host: &str, port: i64) -> Result<(String, u16), ActionError> {
    if host.trim().is_empty() {
        return Err(ActionError::InvalidArgs("`host` is required".into()));
    }
    let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
        ActionError::InvalidArgs("`port` must be an integer from 1 to 65535".into())
    })?;
    Ok((host.to_string(), port))
}

impl ActionImpl for Tcp {
    type Args = TcpArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn describe(&self, a: &TcpArgs, _env: &EnvConfig) -> String {
        format!("connect to {}:{}", a.host, a.port.0)
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        if outputs.get("connected") == Some(&Value::Bool(true)) {
            return None;
        }
        Some(
            outputs
                .get("error")
                .and_then(Value::as_str)
                .map_or("not connected".to_string(), |e| {
                    format!("not connected: {e}")
                }),
        )
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        a: TcpArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let (host, port) = host_port(&a.host, a.port.0)?;
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| ActionError::Unreachable(format!("cannot resolve {host}: {e}")))?
                .collect();
            let started = Instant::now();
            let mut last_err = None;
            let mut connected = false;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(_) => {
                        connected = true;
                        break;
                    }
                    Err(e) => last_err = Some(e.to_string()),
                }
            }
            let mut out = Outputs::new();
            out.insert("connected".into(), json!(connected));
            out.insert(
                "error".into(),
                if connected {
                    Value::Null
                } else {
                    json!(last_err.unwrap_or_else(|| "no address".into()))
                },
            );
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
