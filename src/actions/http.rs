//! `http`: one HTTP request through the run's shared client (or the target's client,
//! which carries its base URL, auth and headers).

use std::time::Instant;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::spec::{ActionSpec, ArgSpec, ArgType, Exclusive, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str, latency_ms, parse_args};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Http;

const METHODS: &[&str] = &["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];
const SAFE_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];
/// Bodies beyond this are cut (the step still sees the first part).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// `insecure`, shared by the HTTP-family actions.
pub const INSECURE_ARG: ArgSpec = ArgSpec {
    name: "insecure",
    ty: ArgType::Bool,
    required: false,
    doc: "Skip TLS certificate verification (false).",
};

/// HTTP-family steps address a full `url` or a configured `target`...
pub const URL_OR_TARGET: Exclusive = Exclusive {
    names: &["url", "target"],
    required: true,
};
/// ...and `path` only goes with a `target`.
pub const PATH_NEEDS_TARGET: Exclusive = Exclusive {
    names: &["url", "path"],
    required: false,
};

static SPEC: ActionSpec = ActionSpec {
    name: "http",
    summary: "Send an HTTP request and inspect the answer.",
    args: &[
        ArgSpec {
            name: "url",
            ty: ArgType::Str,
            required: false,
            doc: "Full URL (or use `target` + `path`).",
        },
        ArgSpec {
            name: "target",
            ty: ArgType::Str,
            required: false,
            doc: "An http target of the config (base URL, auth).",
        },
        ArgSpec {
            name: "path",
            ty: ArgType::Str,
            required: false,
            doc: "Path appended to the target's base URL (default `/`).",
        },
        ArgSpec {
            name: "method",
            ty: ArgType::Enum(METHODS),
            required: false,
            doc: "HTTP method (GET).",
        },
        ArgSpec {
            name: "headers",
            ty: ArgType::StrMap,
            required: false,
            doc: "Request headers.",
        },
        ArgSpec {
            name: "query",
            ty: ArgType::StrMap,
            required: false,
            doc: "Query-string parameters.",
        },
        ArgSpec {
            name: "auth",
            ty: ArgType::Keys(&["bearer_env"]),
            required: false,
            doc: "`{bearer_env: VAR}`: send `Authorization: Bearer $VAR`.",
        },
        ArgSpec {
            name: "json",
            ty: ArgType::Any,
            required: false,
            doc: "JSON request body.",
        },
        ArgSpec {
            name: "body",
            ty: ArgType::Str,
            required: false,
            doc: "Raw request body.",
        },
        INSECURE_ARG,
    ],
    outputs: &[
        OutputSpec {
            name: "status",
            doc: "HTTP status code.",
        },
        OutputSpec {
            name: "headers",
            doc: "Response headers (lower-case names).",
        },
        OutputSpec {
            name: "body",
            doc: "Response body as text.",
        },
        OutputSpec {
            name: "json",
            doc: "Response body parsed as JSON (null if it is not JSON).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Time to the full answer.",
        },
    ],
    exclusive: &[
        URL_OR_TARGET,
        Exclusive {
            names: &["json", "body"],
            required: false,
        },
        PATH_NEEDS_TARGET,
    ],
    mutating: "unless the method is GET, HEAD or OPTIONS",
    default_expect: "status < 400",
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: Option<String>,
    target: Option<String>,
    path: Option<String>,
    method: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    query: Map<String, Value>,
    auth: Option<Auth>,
    json: Option<Value>,
    body: Option<Value>,
    #[serde(default)]
    insecure: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub bearer_env: String,
}

fn method_of(args: &Value) -> String {
    arg_str(args, "method")
        .unwrap_or("GET")
        .to_ascii_uppercase()
}

/// The URL a request goes to: `url`, or the target's base URL joined with `path`.
pub fn url_of(args: &Value, env: &EnvConfig, default_path: &str) -> String {
    if let Some(url) = arg_str(args, "url") {
        return url.to_string();
    }
    let path = arg_str(args, "path").unwrap_or(default_path);
    let target = arg_str(args, "target").unwrap_or("?");
    let base = match env.http.get(target) {
        Some(t) => match &t.base_url {
            crate::config::Address::Literal(u) => u.clone(),
            crate::config::Address::Env(var) => format!("${var}"),
        },
        None => format!("<{target}>"),
    };
    join_url(&base, path)
}

/// Where an HTTP-family step sends its request: the shared client to use, the full URL,
/// and the configured target whose auth and headers go with it.
pub struct Endpoint {
    pub client: reqwest::Client,
    pub url: String,
    pub target: Option<std::sync::Arc<crate::targets::ResolvedHttpTarget>>,
}

impl Endpoint {
    /// `url`, or the target's base URL joined with `path` (else `default_path`);
    /// `insecure` swaps in the client that skips certificate checks.
    pub fn resolve(
        cx: &StepContext,
        action: &str,
        url: Option<&str>,
        target: Option<&str>,
        path: Option<&str>,
        default_path: &str,
        insecure: bool,
    ) -> Result<Endpoint, ActionError> {
        match (url, target) {
            (Some(url), _) => Ok(Endpoint {
                client: cx.clients().http(insecure)?,
                url: url.to_string(),
                target: None,
            }),
            (None, Some(name)) => {
                let t = cx.clients().http_target(name)?;
                let client = if insecure {
                    cx.clients().http(true)?
                } else {
                    t.client.clone()
                };
                Ok(Endpoint {
                    client,
                    url: join_url(&t.base_url, path.unwrap_or(default_path)),
                    target: Some(t),
                })
            }
            (None, None) => Err(ActionError::InvalidArgs(format!(
                "{action}: needs `url` or `target`"
            ))),
        }
    }

    /// A request with the target's auth and headers.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url);
        match &self.target {
            Some(t) => t.apply(req),
            None => req,
        }
    }
}

pub fn join_url(base: &str, path: &str) -> String {
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

impl Action for Http {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<crate::config::TargetKind> {
        Some(crate::config::TargetKind::Http)
    }

    fn mutates(&self, args: &Value) -> bool {
        !SAFE_METHODS.contains(&method_of(args).as_str())
    }

    fn describe(&self, args: &Value, env: &EnvConfig) -> String {
        let mut s = format!("{} {}", method_of(args), url_of(args, env, "/"));
        if args.get("json").is_some() {
            s.push_str(" with a JSON body");
        } else if args.get("body").is_some() {
            s.push_str(" with a body");
        }
        s
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        let status = outputs.get("status").and_then(Value::as_u64)?;
        (status >= 400).then(|| format!("HTTP {status} (expected a status below 400)"))
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let a: Args = parse_args("http", args)?;
            let method_name = a.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
            let method = reqwest::Method::from_bytes(method_name.as_bytes()).map_err(|_| {
                ActionError::InvalidArgs(format!("http: invalid method `{method_name}`"))
            })?;
            let endpoint = Endpoint::resolve(
                cx,
                "http",
                a.url.as_deref(),
                a.target.as_deref(),
                a.path.as_deref(),
                "/",
                a.insecure,
            )?;
            let mut url = endpoint.url.clone();
            if !a.query.is_empty() {
                let mut parsed = reqwest::Url::parse(&url).map_err(|e| {
                    ActionError::InvalidArgs(format!("http: `{url}` is not a valid URL: {e}"))
                })?;
                for (k, v) in &a.query {
                    parsed
                        .query_pairs_mut()
                        .append_pair(k, &crate::expr::text_of(v));
                }
                url = parsed.to_string();
            }
            let mut req = endpoint.request(method.clone(), &url);
            for (k, v) in &a.headers {
                let v = crate::expr::text_of(v);
                if crate::redact::is_credential_header(k) {
                    cx.redactor().add(&v);
                }
                req = req.header(k.as_str(), v);
            }
            if let Some(auth) = &a.auth {
                let token = cx.secret_env(&auth.bearer_env)?;
                req = req.bearer_auth(token);
            }
            if let Some(j) = &a.json {
                req = req.json(j);
            } else if let Some(b) = &a.body {
                req = req.body(crate::expr::text_of(b));
            }
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| {
                ActionError::Unreachable(format!(
                    "{method_name} {url}: {}",
                    crate::targets::http::error_text(&e)
                ))
            })?;
            let status = resp.status().as_u16();
            let mut headers = Map::new();
            for (k, v) in resp.headers() {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                // `Set-Cookie` and friends carry credentials too.
                if crate::redact::is_credential_header(k.as_str()) {
                    cx.redactor().add(&value);
                }
                headers.insert(k.as_str().to_string(), Value::String(value));
            }
            let (body, _) =
                crate::targets::http::read_body(resp, MAX_BODY_BYTES + crate::redact::CUT_SLACK)
                    .await
                    .map_err(|e| ActionError::Unreachable(format!("{method_name} {url}: {e}")))?;
            let latency = latency_ms(started);
            let truncated = body.len() > MAX_BODY_BYTES;
            // Masked before it is cut (see `Redactor::redact_cut`).
            let text = cx
                .redactor()
                .redact_cut(&String::from_utf8_lossy(&body), MAX_BODY_BYTES);
            let json = if truncated {
                Value::Null
            } else {
                parse_json_body(&text)
            };
            let mut out = Outputs::new();
            out.insert("status".into(), json!(status));
            out.insert("headers".into(), Value::Object(headers));
            out.insert("body".into(), Value::String(text));
            out.insert("json".into(), json);
            out.insert("latency_ms".into(), latency);
            Ok(out)
        })
    }
}

fn parse_json_body(text: &str) -> Value {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') || t.starts_with('"') {
        serde_json::from_str(text).unwrap_or(Value::Null)
    } else {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .unwrap_or(Value::Null)
    }
}
