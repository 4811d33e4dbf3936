//! `http`: one HTTP request through the run's shared client (or the target's client,
//! which carries its base URL, auth and headers).

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::spec::{ActionSpec, ArgType, ArgsSchema, Exclusive, OutputSpec, StrMap};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Http;

/// Bodies beyond this are cut (the step still sees the first part).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

crate::arg_enum! {
    /// The HTTP method of an `http` step.
    pub enum Method {
        #[default]
        Get = "GET",
        Head = "HEAD",
        Options = "OPTIONS",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
    }
}

impl Method {
    /// GET, HEAD and OPTIONS change nothing.
    pub fn is_safe(self) -> bool {
        matches!(self, Method::Get | Method::Head | Method::Options)
    }
}

/// `auth: {bearer_env: VAR}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub bearer_env: String,
}

impl super::spec::ArgKind for Auth {
    const TY: ArgType = ArgType::Keys(&["bearer_env"]);
}

crate::action_args! {
    /// Arguments of `http`.
    pub struct HttpArgs {
        /// Full URL (or use `target` + `path`).
        url: Option<String>,
        /// An http target of the config (base URL, auth).
        target: Option<String>,
        /// Path appended to the target's base URL (default: none, the base URL as it is — a webhook's URL stays exact).
        path: Option<String>,
        /// HTTP method (GET).
        method: Method,
        /// Request headers.
        headers: StrMap,
        /// Query-string parameters.
        query: StrMap,
        /// `{bearer_env: VAR}`: send `Authorization: Bearer $VAR`.
        auth: Option<Auth>,
        /// JSON request body.
        json: Option<Value>,
        /// Raw request body.
        body: Option<String>,
        /// Skip TLS certificate verification (false).
        insecure: bool,
    }
}

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
    args: <HttpArgs as ArgsSchema>::ARGS,
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

/// The URL a request goes to, for descriptions: `url`, or the target's base URL joined
/// with `path` (the base as configured: `$VAR` when it comes from the environment).
pub fn url_of(
    url: Option<&str>,
    target: Option<&str>,
    path: Option<&str>,
    env: &EnvConfig,
    default_path: &str,
) -> String {
    if let Some(url) = url {
        return url.to_string();
    }
    let target = target.unwrap_or("?");
    let base = match env.target::<crate::config::HttpTarget>("http", target) {
        Some(t) => match &t.base_url {
            crate::config::Address::Literal(u) => u.clone(),
            crate::config::Address::Env(var) => format!("${var}"),
        },
        None => format!("<{target}>"),
    };
    join_url(&base, path.unwrap_or(default_path))
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
    pub async fn resolve(
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
                let t = cx.clients().http_target(name).await?;
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

impl ActionImpl for Http {
    type Args = HttpArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn target_kind(&self) -> Option<&'static str> {
        Some("http")
    }

    fn mutates(&self, a: &HttpArgs) -> bool {
        !a.method.is_safe()
    }

    fn describe(&self, a: &HttpArgs, env: &EnvConfig) -> String {
        let url = url_of(
            a.url.as_deref(),
            a.target.as_deref(),
            a.path.as_deref(),
            env,
            "",
        );
        let mut s = format!("{} {url}", a.method.as_str());
        if a.json.is_some() {
            s.push_str(" with a JSON body");
        } else if a.body.is_some() {
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
        a: HttpArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let method_name = a.method.as_str();
            let method = reqwest::Method::from_bytes(method_name.as_bytes()).map_err(|_| {
                ActionError::InvalidArgs(format!("http: invalid method `{method_name}`"))
            })?;
            let endpoint = Endpoint::resolve(
                cx,
                "http",
                a.url.as_deref(),
                a.target.as_deref(),
                a.path.as_deref(),
                "",
                a.insecure,
            )
            .await?;
            let mut url = endpoint.url.clone();
            if !a.query.0.is_empty() {
                let mut parsed = reqwest::Url::parse(&url).map_err(|e| {
                    ActionError::InvalidArgs(format!("http: `{url}` is not a valid URL: {e}"))
                })?;
                for (k, v) in &a.query.0 {
                    parsed.query_pairs_mut().append_pair(k, v);
                }
                url = parsed.to_string();
            }
            let mut req = endpoint.request(method, &url);
            for (k, v) in &a.headers.0 {
                if crate::redact::is_credential_header(k) {
                    cx.redactor().add(v);
                }
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(auth) = &a.auth {
                let token = cx.secret_env(&auth.bearer_env)?;
                req = req.bearer_auth(token);
            }
            if let Some(j) = &a.json {
                req = req.json(j);
            } else if let Some(b) = &a.body {
                req = req.body(b.clone());
            }
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| {
                ActionError::Unreachable(format!(
                    "{method_name} {url}: {}",
                    crate::targets::http::error_text(&e)
                ))
                .with_source(e)
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
