//! HTTP clients: one shared client for plain URLs (plus one that skips certificate
//! checks, built only if a step asks for it), and one per configured target (its base
//! URL, auth header, extra headers and CA). Built on first use, shared by every step.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, RequestBuilder};

use crate::actions::ActionError;
use crate::config::HttpTarget;

/// A configured target, resolved: address read, credentials registered as secrets.
pub struct ResolvedHttpTarget {
    pub name: String,
    pub base_url: String,
    pub client: Client,
    bearer: Option<String>,
    headers: Vec<(String, String)>,
    /// The port-forward this target's requests go through (`via: k8s`), kept open with it.
    _forward: Option<crate::targets::forward::Forward>,
}

impl ResolvedHttpTarget {
    /// Adds the target's auth and headers to a request.
    pub fn apply(&self, mut req: RequestBuilder) -> RequestBuilder {
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token);
        }
        req
    }
}

/// The shared clients for plain URLs: verified, and (built only if a step asks) one
/// that skips certificate checks.
#[derive(Default)]
pub struct HttpClients {
    verified: super::Lazy<Client>,
    insecure: super::Lazy<Client>,
}

fn builder() -> reqwest::ClientBuilder {
    Client::builder()
        .user_agent(concat!("opsctl/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .tls_backend_rustls()
}

impl HttpClients {
    /// The shared client (`insecure`: certificates are not checked).
    pub fn client(&self, insecure: bool) -> Result<Client, ActionError> {
        let cell = if insecure {
            &self.insecure
        } else {
            &self.verified
        };
        cell.get_or_init(|| {
            builder()
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
        })
        .clone()
        .map_err(ActionError::Config)
    }
}

/// A configured target, resolved: address read, auth and headers ready, its own client
/// (CA file, `insecure`).
pub fn resolve(
    t: &HttpTarget,
    forward: Option<crate::targets::forward::Forward>,
) -> Result<Arc<ResolvedHttpTarget>, ActionError> {
    resolve_text(t, forward).map_err(ActionError::Config)
}

fn resolve_text(
    t: &HttpTarget,
    forward: Option<crate::targets::forward::Forward>,
) -> Result<Arc<ResolvedHttpTarget>, String> {
    let what = format!("http target `{}`", t.name);
    let base_url = t.base_url.resolve(&what)?;
    let bearer = match &t.bearer_env {
        Some(var) => Some(
            std::env::var(var)
                .map_err(|_| format!("{what}: environment variable {var} is not set"))?,
        ),
        None => None,
    };
    let mut b = builder().tls_danger_accept_invalid_certs(t.insecure);
    if let Some(f) = &forward {
        // Through the cluster: the URL's host resolves to the forward's local end, so the
        // Host header, SNI and certificate checks stay those of the URL.
        let host = url::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .ok_or_else(|| format!("{what}: `via` needs a base URL with a host"))?;
        b = b.resolve(&host, f.local);
    }
    if let Some(ca) = &t.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("{what}: cannot read ca_file {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{what}: ca_file {} is not PEM: {e}", ca.display()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let client = b
        .build()
        .map_err(|e| format!("{what}: cannot build the HTTP client: {}", chain(&e)))?;
    Ok(Arc::new(ResolvedHttpTarget {
        name: t.name.clone(),
        base_url,
        client,
        bearer,
        headers: t.headers.clone(),
        _forward: forward,
    }))
}

/// A reqwest error as one line: the root cause, not "error sending request for url".
pub fn error_text(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let root = chain(e);
    if e.is_connect() {
        format!("cannot connect: {root}")
    } else {
        root
    }
}

/// The innermost messages of an error chain, deduplicated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts
            .iter()
            .any(|p| p.contains(&text) || text.contains(p.as_str()))
        {
            parts.push(text);
        } else if let Some(last) = parts.last_mut() {
            if text.len() < last.len() {
                *last = text;
            }
        }
        cur = s.source();
    }
    match parts.last() {
        Some(root) => root.clone(),
        None => e.to_string(),
    }
}

/// Reads a response body up to `max` bytes; the flag says whether it was cut.
pub async fn read_body(mut resp: reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), String> {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > max {
                    let take = max - buf.len();
                    buf.extend_from_slice(&chunk[..take]);
                    return Ok((buf, true));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((buf, false)),
            Err(e) => return Err(format!("reading the body failed: {}", error_text(&e))),
        }
    }
}
