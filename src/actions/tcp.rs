//! `tcp`: can a TCP connection be opened to host:port?

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Tcp;

static SPEC: ActionSpec = ActionSpec {
    name: "tcp",
    summary: "Open a TCP connection.",
    args: &[
        ArgSpec {
            name: "host",
            ty: ArgType::Str,
            required: true,
            doc: "Host name or IP address.",
        },
        ArgSpec {
            name: "port",
            ty: ArgType::Int,
            required: true,
            doc: "Port.",
        },
    ],
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

/// Host and port from resolved arguments.
pub fn host_port(args: &Value, default_port: Option<u16>) -> Result<(String, u16), ActionError> {
    let host = arg_str(args, "host")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ActionError::InvalidArgs("`host` is required".into()))?
        .to_string();
    let port = match args.get("port") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None => default_port.map(u64::from),
        _ => None,
    }
    .and_then(|p| u16::try_from(p).ok())
    .filter(|p| *p > 0)
    .ok_or_else(|| ActionError::InvalidArgs("`port` must be an integer from 1 to 65535".into()))?;
    Ok((host, port))
}

/// `host:port` of resolved arguments, for descriptions.
pub fn endpoint_text(args: &Value, default_port: &str) -> String {
    format!(
        "{}:{}",
        arg_str(args, "host").unwrap_or("?"),
        args.get("port")
            .map_or(default_port.to_string(), crate::expr::text_of)
    )
}

impl Action for Tcp {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn mutates(&self, _args: &Value) -> bool {
        false
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        format!("connect to {}", endpoint_text(args, "?"))
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
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let (host, port) = host_port(&args, None)?;
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
