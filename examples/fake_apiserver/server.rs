//! A test Kubernetes API server: real REST protocol over HTTPS with a bearer token, objects
//! from a YAML fixture, enough controller behaviour for kubectl's rollout/scale/drain flows.
//!
//! Start it in-process with [`start`]; [`Running`] gives the address, the kubeconfig it wrote,
//! the stored objects and write counters (so tests can prove a dry run changed nothing).
#![allow(dead_code)] // Tests and the binary each use a different part of the API.

#[path = "computed.rs"]
mod computed;
#[path = "controller.rs"]
mod controller;
#[path = "fixture.rs"]
mod fixture;
#[path = "inflate.rs"]
mod inflate;
#[path = "patch.rs"]
mod patch;
#[path = "pods.rs"]
mod pods;
#[path = "protobuf.rs"]
mod protobuf;
#[path = "resources.rs"]
mod resources;
#[path = "selector.rs"]
mod selector;
#[path = "spdy.rs"]
mod spdy;
#[path = "store.rs"]
mod store;
#[path = "streams.rs"]
mod streams;
#[path = "table.rs"]
mod table;

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::FutureExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use resources::Resource;
pub use store::RequestRecord;
use store::{Store, new_uid, now};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Why the server could not start.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `--fail METHOD:PATH:STATUS[@N]`: requests with this method (`*` = any) and path (a
/// trailing `*` matches any suffix) get this status as a `kind: Status` error; with `@N` only
/// the first N matching requests do (to test retries).
#[derive(Debug, Clone)]
pub struct FailRule {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// How many more requests fail; None = all.
    pub times: Option<u32>,
}

impl std::str::FromStr for FailRule {
    type Err = Error;

    fn from_str(s: &str) -> Result<FailRule, Error> {
        let bad = || Error(format!("--fail {s:?}: expected METHOD:PATH:STATUS[@N]"));
        let (method, rest) = s.split_once(':').ok_or_else(bad)?;
        let (path, status) = rest.rsplit_once(':').ok_or_else(bad)?;
        let (status, times) = match status.split_once('@') {
            Some((status, n)) => (status, Some(n.parse::<u32>().map_err(|_| bad())?)),
            None => (status, None),
        };
        let status: u16 = status.parse().map_err(|_| bad())?;
        if !(400..=599).contains(&status) || !path.starts_with('/') {
            return Err(bad());
        }
        Ok(FailRule {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            status,
            times,
        })
    }
}

impl FailRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        if self.times == Some(0) {
            return false;
        }
        let method_ok = self.method == "*" || self.method.eq_ignore_ascii_case(method);
        let path_ok = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        };
        method_ok && path_ok
    }
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Multi-document YAML of Kubernetes objects.
    pub fixture_yaml: String,
    /// Where to write the kubeconfig.
    pub kubeconfig: PathBuf,
    pub fail: Vec<FailRule>,
    /// Values for `${NAME}` references in fixture strings (e.g. the address a pod's
    /// `opsctl-test/forward` annotation tunnels to); a reference to a missing name is an error.
    pub vars: BTreeMap<String, String>,
}

struct State {
    store: Mutex<Store>,
    token: String,
    fail: Mutex<Vec<FailRule>>,
    addr: SocketAddr,
    vars: BTreeMap<String, String>,
    /// Where `pods/exec` runs its processes: `SCRATCH/NAMESPACE/POD/CONTAINER`.
    scratch: PathBuf,
    /// Stops the server, and with it the exec processes and tunnels it started.
    cancel: CancellationToken,
}

impl State {
    /// The store; a panic elsewhere while holding the lock leaves data that is still usable
    /// for a test double, so poisoning is ignored.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail_rules(&self) -> MutexGuard<'_, Vec<FailRule>> {
        self.fail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status of the first `--fail` rule matching this request, using up one of its
    /// counted failures.
    fn injected(&self, method: &str, path: &str) -> Option<u16> {
        let mut rules = self.fail_rules();
        let rule = rules.iter_mut().find(|f| f.matches(method, path))?;
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
        }
        Some(rule.status)
    }
}

/// A started server. Dropping it stops the server.
pub struct Running {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    state: Arc<State>,
    cancel: CancellationToken,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// One stored object: `running.get("apps/v1", "deployments", "prod", "api")`. The
    /// namespace is ignored for cluster-scoped resources.
    pub fn get(&self, api_version: &str, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let r = resource_for(api_version, resource)?;
        self.state.store().get(r, ns, name).cloned()
    }

    /// All stored objects of a resource, in one namespace or all.
    pub fn list(&self, api_version: &str, resource: &str, ns: Option<&str>) -> Vec<Value> {
        match resource_for(api_version, resource) {
            Some(r) => self.state.store().list(r, ns),
            None => Vec::new(),
        }
    }

    /// Committed write requests (dry runs and failed writes are not counted).
    pub fn writes(&self) -> u64 {
        self.state.store().writes.values().sum()
    }

    /// Committed writes to `resource` (`"deployments"` counts `deployments/scale` too;
    /// `"deployments/scale"` only the subresource).
    pub fn writes_for(&self, resource: &str) -> u64 {
        self.state
            .store()
            .writes
            .iter()
            .filter(|(k, _)| *k == resource || k.starts_with(&format!("{resource}/")))
            .map(|(_, v)| v)
            .sum()
    }

    /// The latest resourceVersion (it only grows when something changed).
    pub fn resource_version(&self) -> u64 {
        self.state.store().rv()
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.store().requests.clone()
    }

    /// Replaces the `--fail` rules (e.g. to break the API only after a test's setup).
    pub fn set_failures(&self, rules: Vec<FailRule>) {
        *self.state.fail_rules() = rules;
    }

    /// Adds or replaces objects from fixture YAML mid-test (a pod turning ready, a new
    /// event). Watchers see the changes; they are not counted as writes. Replaced objects keep
    /// their UID and creation time unless the YAML gives them.
    pub fn upsert(&self, yaml: &str) -> Result<(), Error> {
        fixture::load_fixture(&mut self.state.store(), yaml, &self.state.vars)
    }

    /// Removes an object mid-test (no cascade; watchers see DELETED; not counted as a write).
    pub fn remove(&self, api_version: &str, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let r = resource_for(api_version, resource)?;
        self.state.store().remove(r, ns, name)
    }

    pub fn stop(self) {
        self.cancel.cancel();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
        // Best effort: an exec process still being killed may hold a file for a moment.
        let _ = std::fs::remove_dir_all(&self.state.scratch);
    }
}

fn resource_for(api_version: &str, plural: &str) -> Option<&'static Resource> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    resources::by_plural(group, version, plural)
}

/// Loads the fixture, binds, writes the kubeconfig and starts serving on the current tokio
/// runtime.
pub async fn start(opts: Options) -> Result<Running, Error> {
    // kubectl tests and opsctl share one process; whoever installs first wins, both are ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut store = Store::new();
    fixture::load_fixture(&mut store, &opts.fixture_yaml, &opts.vars)?;
    let (acceptor, ca_pem) = tls()?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error(format!("bind {}: {e}", opts.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error(format!("local address: {e}")))?;
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| Error(format!("random token: {e}")))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    write_kubeconfig(&opts.kubeconfig, addr, &ca_pem, &token)?;
    let cancel = CancellationToken::new();
    let state = Arc::new(State {
        store: Mutex::new(store),
        token,
        fail: Mutex::new(opts.fail),
        addr,
        vars: opts.vars,
        scratch: std::env::temp_dir().join(format!(
            "fake-apiserver-{}-{}",
            std::process::id(),
            addr.port()
        )),
        cancel: cancel.clone(),
    });
    tokio::spawn(accept_loop(
        listener,
        acceptor,
        state.clone(),
        cancel.clone(),
    ));
    Ok(Running {
        addr,
        kubeconfig: opts.kubeconfig,
        state,
        cancel,
    })
}

/// A CA, a server certificate for 127.0.0.1/localhost signed by it, and an acceptor that
/// offers only HTTP/1.1 (the server speaks no HTTP/2).
fn tls() -> Result<(TlsAcceptor, String), Error> {
    let rc = |e: rcgen::Error| Error(format!("certificate generation: {e}"));
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake-apiserver-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(rc)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rc)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(rc)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake-apiserver");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(rc)?;
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], key_der)
        .map_err(|e| Error(format!("TLS certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

fn write_kubeconfig(path: &Path, addr: SocketAddr, ca_pem: &str, token: &str) -> Result<(), Error> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://{addr}
    certificate-authority-data: {ca}
users:
- name: fake
  user:
    token: {token}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
preferences: {{}}
"
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error(format!("kubeconfig directory {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| Error(format!("write {}: {e}", path.display())))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    cancel: CancellationToken,
) {
    loop {
        let tcp = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // A failed accept (e.g. too many files) affects one client, not the server.
                Err(_) => continue,
            },
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            // Upgrades: exec and port-forward continue as WebSocket or SPDY on this connection.
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

/// An error answered as a `kind: Status` object.
#[derive(Debug)]
pub struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    fn about(mut self, r: &Resource, name: &str) -> ApiError {
        self.details = json!({"name": name, "group": r.group, "kind": r.plural});
        self
    }

    fn not_found(r: &Resource, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", r.qualified()),
        )
        .about(r, name)
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    fn invalid(r: &Resource, name: &str, field_message: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!(
                "{}.{} \"{name}\" is invalid: {field_message}",
                r.kind, r.group
            )
            .replace(". \"", " \""),
        )
        .about(r, name)
    }

    fn conflict(r: &Resource, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                r.qualified()
            ),
        )
        .about(r, name)
    }

    fn status_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            v["details"] = self.details.clone();
        }
        v
    }

    fn response(&self) -> Response<Body> {
        json_response(self.code, &self.status_json())
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut resp = Response::new(full(v.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    resp
}

/// Decodes `%XX` and `+` in a query component.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits make one byte: at most 0xff.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

/// Everything a handler needs about one request.
struct Req {
    method: Method,
    path: String,
    query: Query,
    accept: String,
    content_type: String,
    body: Bytes,
    headers: hyper::HeaderMap,
    /// The connection after a `101 Switching Protocols` answer; taken by the streaming
    /// subresources (exec, port-forward).
    upgrade: Mutex<Option<hyper::upgrade::OnUpgrade>>,
}

impl Req {
    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        if self.body.starts_with(b"k8s\0") {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the fake API server decodes JSON and YAML bodies only (protobuf just for \
                 SelfSubjectAccessReview); kubectl's `create <kind>` generators send protobuf, \
                 use `kubectl create -f`/`apply -f` instead",
            ));
        }
        serde_json::from_slice(&self.body)
            .or_else(|e| {
                // Server-side apply and hand-written requests may send YAML.
                let text = std::str::from_utf8(&self.body).map_err(|_| e.to_string())?;
                serde_saphyr::from_str::<Value>(text).map_err(|y| y.to_string())
            })
            .map_err(|e| ApiError::bad_request(format!("unable to decode the request body: {e}")))
    }
}

async fn handle(state: Arc<State>, mut req: Request<Incoming>) -> Response<Body> {
    let upgrade = hyper::upgrade::on(&mut req);
    let headers = req.headers().clone();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let auth = header("authorization");
    let accept = header("accept");
    let content_type = header("content-type");
    let user_agent = header("user-agent");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiError::bad_request(format!("reading body: {e}")).response(),
    };
    let r = Req {
        method,
        path,
        query: Query::parse(&raw_query),
        accept,
        content_type,
        body,
        headers,
        upgrade: Mutex::new(Some(upgrade)),
    };
    let resp = if auth != format!("Bearer {}", state.token) {
        ApiError::new(401, "Unauthorized", "Unauthorized").response()
    } else if let Some(status) = state.injected(r.method.as_str(), &r.path) {
        injected_failure(status, &r).response()
    } else {
        // A bug in a handler answers 500 like the real server's panic filter, rather than
        // dropping the connection with no answer.
        match AssertUnwindSafe(route(&state, &r)).catch_unwind().await {
            Ok(result) => result.unwrap_or_else(|e| e.response()),
            Err(_) => ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: handler panicked",
            )
            .response(),
        }
    };
    state.store().requests.push(RequestRecord {
        method: r.method.to_string(),
        path: r.path.clone(),
        query: raw_query,
        status: resp.status().as_u16(),
        user_agent,
        content_type: r.content_type.clone(),
        body: String::from_utf8_lossy(&r.body).into_owned(),
    });
    resp
}

/// The error a `--fail` rule injects, worded like the real server's.
fn injected_failure(code: u16, r: &Req) -> ApiError {
    let target = parse_resource_path(&r.path);
    let verb = match (
        r.method.as_str(),
        target.as_ref().and_then(|t| t.name.as_ref()),
    ) {
        ("GET", None) if r.query.flag("watch") => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => "access",
    };
    let (plural, group, ns, name) = match &target {
        Some(t) => (
            t.plural.clone(),
            t.group.clone(),
            t.namespace.clone(),
            t.name.clone().unwrap_or_default(),
        ),
        None => (r.path.clone(), String::new(), None, String::new()),
    };
    let message = match code {
        403 => {
            let scope = match &ns {
                Some(ns) => format!(" in the namespace \"{ns}\""),
                None => " at the cluster scope".to_string(),
            };
            let subject = if name.is_empty() {
                plural.clone()
            } else {
                format!("{plural} \"{name}\"")
            };
            format!(
                "{subject} is forbidden: User \"system:serviceaccount:default:opsctl-test\" \
                 cannot {verb} resource \"{plural}\" in API group \"{group}\"{scope}"
            )
        }
        404 => format!("{plural} \"{name}\" not found"),
        409 => format!(
            "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again"
        ),
        429 => "Too many requests, please try again later.".to_string(),
        500 => "Internal error occurred: injected failure".to_string(),
        503 => "the server is currently unable to handle the request".to_string(),
        _ => format!("injected failure {code}"),
    };
    let mut e = ApiError::new(code, reason_for(code), message);
    if !name.is_empty() || target.is_some() {
        e.details = json!({"name": name, "group": group, "kind": plural});
    }
    e
}

/// A parsed resource URL.
#[derive(Debug)]
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_resource_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] => {
            return Some(Target {
                group: group.into(),
                version: version.into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some(ns.to_string()),
                sub: Some(sub.to_string()),
            });
        }
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Target {
        group: group.into(),
        version: version.into(),
        namespace,
        plural: plural.into(),
        name,
        sub,
    })
}

fn not_served(path: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
    )
}

async fn route(state: &State, r: &Req) -> Result<Response<Body>, ApiError> {
    let path = r.path.trim_end_matches('/');
    if r.method == Method::GET
        && (path == "/api" || path == "/apis")
        && r.accept.contains("as=APIGroupDiscoveryList")
        && r.accept.contains("v=v2;")
    {
        let mut resp = json_response(200, &resources::aggregated_discovery(path == "/api"));
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(resources::AGGREGATED_CONTENT_TYPE),
        );
        return Ok(resp);
    }
    if r.method == Method::GET {
        let doc = match path {
            "/version" => Some(resources::version()),
            "/api" => Some(resources::api_versions(&state.addr.to_string())),
            "/apis" => Some(resources::api_group_list()),
            "/openapi/v3" => Some(resources::openapi_v3_root()),
            "/healthz" | "/readyz" | "/livez" => return Ok(text_response("ok".into())),
            _ => {
                let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                match segs.as_slice() {
                    ["api", "v1"] => resources::resource_list("", "v1"),
                    ["apis", g] => resources::api_group(g),
                    ["apis", g, v] => resources::resource_list(g, v),
                    ["openapi", "v3", "api", "v1"] => resources::openapi_v3_group("", "v1"),
                    ["openapi", "v3", "apis", g, v] => resources::openapi_v3_group(g, v),
                    _ => None,
                }
            }
        };
        if let Some(doc) = doc {
            return Ok(json_response(200, &doc));
        }
    }
    if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" && r.method == Method::POST
    {
        return computed::access_review(state, r);
    }
    if let Some(rest) = path.strip_prefix("/apis/metrics.k8s.io/v1beta1/") {
        if r.method == Method::GET {
            return computed::metrics(state, r, rest);
        }
    }
    let t = parse_resource_path(path).ok_or_else(|| not_served(path))?;
    let res =
        resources::by_plural(&t.group, &t.version, &t.plural).ok_or_else(|| not_served(path))?;
    if res.namespaced != t.namespace.is_some() && t.name.is_some() {
        return Err(not_served(path));
    }
    if !res.namespaced && t.namespace.is_some() {
        return Err(not_served(path));
    }
    let ns = t.namespace.clone();
    let nsr = ns.as_deref().unwrap_or("");
    if let Some(source) = view_source(res) {
        // A read-only view of another resource's objects (events.k8s.io/v1 over core events).
        return match (&r.method, t.name.as_deref(), t.sub.as_deref()) {
            (&Method::GET, None, None) if r.query.flag("watch") => watch(state, r, source, res, ns),
            (&Method::GET, None, None) => list(state, r, source, res, ns.as_deref()),
            (&Method::GET, Some(name), None) => {
                let obj = state
                    .store()
                    .get(source, nsr, name)
                    .map(|o| present(res, o))
                    .ok_or_else(|| ApiError::not_found(res, name))?;
                Ok(object_response(r, res, 200, obj))
            }
            _ => Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "{} is served read-only; write core v1 events instead",
                    res.qualified()
                ),
            )),
        };
    }
    match (&r.method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, None, None) if r.query.flag("watch") => watch(state, r, res, res, ns),
        (&Method::GET, None, None) => list(state, r, res, res, ns.as_deref()),
        (&Method::POST, None, None) => create(state, r, res, nsr),
        (&Method::DELETE, None, None) => delete_collection(state, r, res, ns.as_deref()),
        (&Method::GET, Some(name), None) => {
            let obj = state
                .store()
                .get(res, nsr, name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(res, name))?;
            Ok(object_response(r, res, 200, obj))
        }
        (&Method::PUT, Some(name), None) => update(state, r, res, nsr, name, false),
        (&Method::PUT, Some(name), Some("status")) => update(state, r, res, nsr, name, true),
        (&Method::PATCH, Some(name), None) => patch(state, r, res, nsr, name, false),
        (&Method::PATCH, Some(name), Some("status")) => patch(state, r, res, nsr, name, true),
        (&Method::GET, Some(name), Some("status")) => {
            let obj = state
                .store()
                .get(res, nsr, name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(res, name))?;
            Ok(object_response(r, res, 200, obj))
        }
        (&Method::DELETE, Some(name), None) => delete(state, r, res, nsr, name),
        (&Method::GET, Some(name), Some("log")) if res.plural == "pods" => {
            pods::logs(state, r, nsr, name)
        }
        (&Method::POST, Some(name), Some("eviction")) if res.plural == "pods" => {
            pods::evict(state, r, nsr, name)
        }
        (&Method::GET | &Method::POST, Some(name), Some("exec")) if res.plural == "pods" => {
            streams::exec(state, r, nsr, name)
        }
        (&Method::GET | &Method::POST, Some(name), Some("portforward")) if res.plural == "pods" => {
            streams::portforward(state, r, nsr, name)
        }
        (m, Some(name), Some("scale")) if res.subresources.contains(&"scale") => {
            scale(state, r, m, res, nsr, name)
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({path})"),
        )),
    }
}

/// An object or, when kubectl asks for one, a one-row Table.
fn object_response(r: &Req, res: &Resource, code: u16, obj: Value) -> Response<Body> {
    if r.wants_table() && r.method == Method::GET {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return json_response(code, &table::table(res.kind, &[obj], &rv));
    }
    json_response(code, &obj)
}

fn selectors(r: &Req) -> Result<(selector::LabelSelector, selector::FieldSelector), ApiError> {
    let labels = selector::LabelSelector::parse(r.query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = selector::FieldSelector::parse(r.query.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// The stored resource a read-only view presents (None for ordinary resources).
fn view_source(res: &Resource) -> Option<&'static Resource> {
    (res.group == "events.k8s.io")
        .then(|| resources::by_plural("", "v1", "events"))
        .flatten()
}

/// A stored object as `view` presents it: core Events in the events.k8s.io/v1 shape.
fn present(view: &Resource, obj: &Value) -> Value {
    if view.group != "events.k8s.io" {
        return obj.clone();
    }
    let mut out = json!({
        "apiVersion": view.api_version(),
        "kind": "Event",
        "metadata": obj["metadata"],
        "regarding": obj["involvedObject"],
        "note": obj["message"],
        "reason": obj["reason"],
        "type": obj["type"],
        "deprecatedCount": obj["count"],
        "deprecatedFirstTimestamp": obj["firstTimestamp"],
        "deprecatedLastTimestamp": obj["lastTimestamp"],
        "deprecatedSource": obj["source"],
        "eventTime": obj["eventTime"],
        "reportingController": obj.get("reportingComponent").cloned()
            .unwrap_or_else(|| obj.pointer("/source/component").cloned().unwrap_or(Value::Null)),
        "reportingInstance": obj.get("reportingInstance").cloned()
            .unwrap_or_else(|| obj.pointer("/source/host").cloned().unwrap_or(Value::Null)),
        "action": obj["action"],
        "related": obj["related"],
        "series": obj["series"],
    });
    if let Some(m) = out.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    out
}

/// A list of `res` objects, presented as `view` (the same resource unless it is a view).
fn list(
    state: &State,
    r: &Req,
    res: &'static Resource,
    view: &'static Resource,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(r)?;
    let store = state.store();
    let mut items: Vec<Value> = store
        .list(res, ns)
        .iter()
        .map(|o| present(view, o))
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let rv = store.rv().to_string();
    drop(store);
    // Paging: `limit` cuts the (name-ordered) list and `continue` carries the offset of the
    // next page. Unlike the real server, later pages show the current state, not the first
    // page's snapshot.
    let offset = match r.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?,
        None => 0,
    };
    items.drain(..offset.min(items.len()));
    let mut meta = json!({"resourceVersion": rv});
    if let Some(limit) = r.query.get("limit").and_then(|l| l.parse::<usize>().ok()) {
        if limit > 0 && items.len() > limit {
            let remaining = items.len() - limit;
            items.truncate(limit);
            let token = format!("offset:{}", offset + limit);
            meta["continue"] = json!(base64::engine::general_purpose::STANDARD.encode(token));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    if r.wants_table() {
        let mut t = table::table(view.kind, &items, &rv);
        t["metadata"] = meta;
        return Ok(json_response(200, &t));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", view.kind),
            "apiVersion": view.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

/// A watch on `res` objects, presented as `view` (the same resource unless it is a view).
fn watch(
    state: &State,
    r: &Req,
    res: &'static Resource,
    view: &'static Resource,
    ns: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(r)?;
    let timeout = r
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let since: Option<u64> = match r.query.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let wanted = {
        let ns = ns.clone();
        move |group: &str, plural: &str, obj_ns: &str, obj: &Value| {
            group == res.group
                && plural == res.plural
                && ns.as_deref().is_none_or(|n| n == obj_ns)
                && labels.matches(obj)
                && fields.matches(obj)
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    // `kubectl get -w` asks for Tables: each event then carries a one-row Table.
    let as_table = r.wants_table();
    let line = move |kind: &str, obj: &Value| {
        let object = if as_table && kind != "BOOKMARK" {
            table::table(
                view.kind,
                std::slice::from_ref(obj),
                s(obj, "/metadata/resourceVersion"),
            )
        } else {
            obj.clone()
        };
        Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
    };
    let key_of = |obj: &Value| {
        (
            s(obj, "/metadata/namespace").to_string(),
            s(obj, "/metadata/name").to_string(),
        )
    };
    // What the client has seen: a change that makes an object stop matching the selectors
    // is reported as DELETED, one that makes it start matching as ADDED (as the real server
    // does).
    let mut visible: HashSet<(String, String)> = HashSet::new();
    let mut first: Vec<Bytes> = Vec::new();
    let initial_events = r.query.flag("sendInitialEvents");
    let (past, mut changes) = {
        let store = state.store();
        let matching = |objects: Vec<Value>| -> Vec<Value> {
            objects
                .iter()
                .map(|o| present(view, o))
                .filter(|o| wanted(res.group, res.plural, s(o, "/metadata/namespace"), o))
                .collect()
        };
        match since {
            // No resourceVersion, or initial events asked for: the current state as ADDED
            // (then a bookmark marking its end, if asked), then changes.
            _ if since.is_none() || initial_events => {
                for o in matching(store.list(res, ns.as_deref())) {
                    visible.insert(key_of(&o));
                    first.push(line("ADDED", &o));
                }
                if initial_events {
                    first.push(line(
                        "BOOKMARK",
                        &json!({"kind": view.kind, "apiVersion": view.api_version(),
                                "metadata": {"resourceVersion": store.rv().to_string(),
                                  "annotations": {"k8s.io/initial-events-end": "true"}}}),
                    ));
                }
                store.subscribe_after(store.rv())
            }
            Some(rv) => {
                for o in matching(store.objects_at(rv, res)) {
                    visible.insert(key_of(&o));
                }
                store.subscribe_after(rv)
            }
            None => store.subscribe_after(store.rv()),
        }
    };
    let mut translate = move |c: &store::Change| -> Option<Bytes> {
        if c.group != res.group || c.plural != res.plural {
            return None;
        }
        let obj = present(view, &c.object);
        let key = key_of(&obj);
        let kind = if c.kind == "DELETED" {
            visible.remove(&key).then_some("DELETED")
        } else if wanted(c.group, c.plural, &c.namespace, &obj) {
            Some(if visible.insert(key) {
                "ADDED"
            } else {
                "MODIFIED"
            })
        } else {
            visible.remove(&key).then_some("DELETED")
        };
        kind.map(|k| line(k, &obj))
    };
    for c in past {
        first.extend(translate(&c));
    }
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                c = changes.recv() => match c {
                    Ok(c) => {
                        if let Some(b) = translate(&c) {
                            if tx.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Lagging behind 4096 changes cannot happen in a test; keep going.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Checks and completes an object about to be written, runs the controller hooks, and stores
/// it unless this is a dry run. `old` is the stored version for updates.
fn commit(
    store: &mut Store,
    res: &'static Resource,
    old: Option<&Value>,
    mut obj: Value,
    dry_run: bool,
    counter: &str,
) -> Result<Value, ApiError> {
    let name = s(&obj, "/metadata/name").to_string();
    if !obj.is_object() || !obj.get("metadata").is_some_and(Value::is_object) {
        return Err(ApiError::bad_request("the object has no metadata"));
    }
    obj["apiVersion"] = json!(res.api_version());
    obj["kind"] = json!(res.kind);
    validate(res, &name, &obj)?;
    if res.kind == "Secret" {
        // Like the real server: stringData is write-only, merged into data base64-encoded.
        let string_data = obj
            .as_object_mut()
            .and_then(|m| m.remove("stringData"))
            .and_then(|v| v.as_object().cloned());
        for (k, v) in string_data.unwrap_or_default() {
            let text = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    let spec_changed = old.is_none_or(|o| o.get("spec") != obj.get("spec"));
    match old {
        None => {
            let m = &mut obj["metadata"];
            m["uid"] = json!(new_uid());
            m["creationTimestamp"] = json!(now());
            m["generation"] = json!(1);
            if let Some(m) = m.as_object_mut() {
                m.remove("resourceVersion");
                m.remove("deletionTimestamp");
            }
        }
        Some(old) => {
            for field in ["uid", "creationTimestamp"] {
                obj["metadata"][field] = old["metadata"][field].clone();
            }
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            obj["metadata"]["generation"] = json!(if spec_changed {
                generation + 1
            } else {
                generation
            });
        }
    }
    if dry_run {
        // The would-be object keeps the stored resourceVersion: nothing was written.
        if let Some(old) = old {
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        return Ok(obj);
    }
    match res.kind {
        "Deployment" => controller::reconcile_deployment(store, &mut obj, spec_changed),
        "StatefulSet" | "ReplicaSet" if spec_changed => {
            controller::converge_status(res.kind, &mut obj)
        }
        "Pod" => controller::kubelet(store, old, &mut obj),
        _ => {}
    }
    store.count_write(counter);
    // Like the real server, a write that changes nothing keeps the resourceVersion and
    // tells no watcher.
    if let Some(old) = old.filter(|old| same_content(old, &obj)) {
        return Ok(old.clone());
    }
    Ok(store.put(res, obj))
}

/// Equal apart from bookkeeping (resourceVersion, managedFields timestamps).
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// The validation kubectl users hit most: names, namespaces, selectors, and the shapes the
/// controller relies on (string maps for labels and annotations, object specs).
fn validate(res: &Resource, name: &str, obj: &Value) -> Result<(), ApiError> {
    let string_maps: &[&str] = match res.kind {
        "Secret" | "ConfigMap" => &["/data", "/stringData"],
        _ => &[],
    };
    for pointer in [
        "/metadata/labels",
        "/metadata/annotations",
        "/spec/template/metadata/labels",
        "/spec/template/metadata/annotations",
    ]
    .iter()
    .chain(string_maps)
    {
        match obj.pointer(pointer) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
            Some(_) => {
                return Err(ApiError::invalid(
                    res,
                    name,
                    &format!(
                        "{}: Invalid value: must be a map of strings",
                        pointer.trim_start_matches('/').replace('/', ".")
                    ),
                ));
            }
        }
    }
    for pointer in [
        "/spec",
        "/spec/template",
        "/spec/template/metadata",
        "/status",
    ] {
        if obj
            .pointer(pointer)
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err(ApiError::invalid(
                res,
                name,
                &format!(
                    "{}: Invalid value: must be an object",
                    pointer.trim_start_matches('/').replace('/', ".")
                ),
            ));
        }
    }
    if name.is_empty() {
        return Err(ApiError::invalid(
            res,
            name,
            "metadata.name: Required value: name or generateName is required",
        ));
    }
    let dns_ok = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    if !dns_ok {
        return Err(ApiError::invalid(
            res,
            name,
            &format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and \
                 end with an alphanumeric character"
            ),
        ));
    }
    if matches!(
        res.kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
    ) {
        if let Some(r) = obj.pointer("/spec/replicas") {
            if r.as_i64().is_none_or(|r| r < 0) {
                return Err(ApiError::invalid(
                    res,
                    name,
                    &format!(
                        "spec.replicas: Invalid value: {r}: must be greater than or equal to 0"
                    ),
                ));
            }
        }
        let sel = obj.pointer("/spec/selector").unwrap_or(&Value::Null);
        if sel.is_null() {
            return Err(ApiError::invalid(
                res,
                name,
                "spec.selector: Required value",
            ));
        }
        let template = json!({"metadata": {"labels": obj.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({}))}});
        if !selector::LabelSelector::from_object(sel).matches(&template) {
            return Err(ApiError::invalid(
                res,
                name,
                "spec.template.metadata.labels: Invalid value: map[string]string{...}: \
                 `selector` does not match template `labels`",
            ));
        }
    }
    Ok(())
}

fn check_namespace(store: &Store, res: &Resource, ns: &str) -> Result<(), ApiError> {
    if !res.namespaced {
        return Ok(());
    }
    let ns_res =
        resources::by_plural("", "v1", "namespaces").ok_or_else(|| not_served("namespaces"))?;
    if store.get(ns_res, "", ns).is_none() {
        return Err(ApiError::not_found(ns_res, ns));
    }
    Ok(())
}

fn create(
    state: &State,
    r: &Req,
    res: &'static Resource,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let mut obj = r.json_body()?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if res.namespaced {
        let body_ns = s(&obj, "/metadata/namespace");
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(ns);
    }
    if s(&obj, "/metadata/name").is_empty() {
        let prefix = s(&obj, "/metadata/generateName").to_string();
        if !prefix.is_empty() {
            let suffix: String = new_uid()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(5)
                .collect();
            obj["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
        }
    }
    let name = s(&obj, "/metadata/name").to_string();
    let mut store = state.store();
    check_namespace(&store, res, ns)?;
    if store.get(res, ns, &name).is_some() {
        return Err(ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.qualified()),
        )
        .about(res, &name));
    }
    let stored = commit(&mut store, res, None, obj, r.query.dry_run(), res.plural)?;
    Ok(json_response(201, &stored))
}

/// A Conflict when the body names a resourceVersion other than the stored one.
fn check_rv(res: &Resource, name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let want = s(new, "/metadata/resourceVersion");
    if !want.is_empty() && want != s(old, "/metadata/resourceVersion") {
        return Err(ApiError::conflict(res, name));
    }
    Ok(())
}

/// Keeps the name and namespace of the stored object and, for resources with a status
/// subresource, the part the request may not change (status via the main resource,
/// everything else via `/status`).
fn scope_write(res: &Resource, old: &Value, mut new: Value, status_only: bool) -> Value {
    if status_only {
        let mut kept = old.clone();
        kept["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        kept["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
        return kept;
    }
    if res.subresources.contains(&"status") {
        match old.get("status") {
            Some(st) => new["status"] = st.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    new
}

fn update(
    state: &State,
    r: &Req,
    res: &'static Resource,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Response<Body>, ApiError> {
    let mut obj = r.json_body()?;
    if !obj.get("metadata").is_some_and(Value::is_object) {
        return Err(ApiError::bad_request("the object has no metadata"));
    }
    if s(&obj, "/metadata/name") != name {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if res.namespaced {
        obj["metadata"]["namespace"] = json!(ns);
    }
    let mut store = state.store();
    let old = store
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res, name))?;
    check_rv(res, name, &old, &obj)?;
    let obj = scope_write(res, &old, obj, status_only);
    let counter = if status_only {
        format!("{}/status", res.plural)
    } else {
        res.plural.to_string()
    };
    let stored = commit(
        &mut store,
        res,
        Some(&old),
        obj,
        r.query.dry_run(),
        &counter,
    )?;
    Ok(json_response(200, &stored))
}

/// Applies a patch body of the request's content type to `target`.
fn apply_patch(r: &Req, target: &mut Value) -> Result<(), ApiError> {
    let ct = r.content_type.split(';').next().unwrap_or("").trim();
    let body = r.json_body()?;
    match ct {
        "application/merge-patch+json" => patch::merge_patch(target, &body),
        "application/strategic-merge-patch+json" | "application/apply-patch+yaml" => {
            patch::strategic_merge(target, &body)
        }
        "application/json-patch+json" => {
            patch::json_patch(target, &body).map_err(|e| ApiError::new(422, "Invalid", e))?
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                ),
            ));
        }
    }
    Ok(())
}

/// Records the field manager of a server-side apply (no per-field ownership is tracked).
fn record_manager(obj: &mut Value, manager: &str, api_version: &str, operation: &str) {
    let entry = json!({
        "manager": manager, "operation": operation, "apiVersion": api_version,
        "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {},
    });
    let list = obj["metadata"]
        .as_object_mut()
        .map(|m| m.entry("managedFields").or_insert(json!([])));
    if let Some(Value::Array(list)) = list {
        list.retain(|e| !(s(e, "/manager") == manager && s(e, "/operation") == operation));
        list.push(entry);
    }
}

fn patch(
    state: &State,
    r: &Req,
    res: &'static Resource,
    ns: &str,
    name: &str,
    status_only: bool,
) -> Result<Response<Body>, ApiError> {
    let is_apply = r.content_type.starts_with("application/apply-patch");
    let manager = r.query.get("fieldManager").unwrap_or("");
    if is_apply && manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut store = state.store();
    let old = store.get(res, ns, name).cloned();
    let Some(old) = old else {
        if !is_apply {
            return Err(ApiError::not_found(res, name));
        }
        // Server-side apply creates what does not exist.
        check_namespace(&store, res, ns)?;
        let mut obj = r.json_body()?;
        if s(&obj, "/metadata/name") != name {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        if res.namespaced {
            obj["metadata"]["namespace"] = json!(ns);
        }
        record_manager(&mut obj, manager, &res.api_version(), "Apply");
        let stored = commit(&mut store, res, None, obj, r.query.dry_run(), res.plural)?;
        return Ok(json_response(201, &stored));
    };
    let mut obj = old.clone();
    apply_patch(r, &mut obj)?;
    if s(&obj, "/metadata/name") != name || (res.namespaced && s(&obj, "/metadata/namespace") != ns)
    {
        return Err(ApiError::invalid(
            res,
            name,
            "metadata.name: Invalid value: the name and namespace of an object cannot be patched",
        ));
    }
    check_rv(res, name, &old, &obj)?;
    if is_apply {
        record_manager(&mut obj, manager, &res.api_version(), "Apply");
    } else if !manager.is_empty() {
        record_manager(&mut obj, manager, &res.api_version(), "Update");
    }
    let obj = scope_write(res, &old, obj, status_only);
    let counter = if status_only {
        format!("{}/status", res.plural)
    } else {
        res.plural.to_string()
    };
    let stored = commit(
        &mut store,
        res,
        Some(&old),
        obj,
        r.query.dry_run(),
        &counter,
    )?;
    Ok(json_response(200, &stored))
}

/// `propagationPolicy` and `dryRun` from the query or a DeleteOptions body.
fn delete_options(r: &Req) -> (bool, String) {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let dry_run = r.query.dry_run()
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let policy = r
        .query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Background".to_string());
    (dry_run, policy)
}

/// Deletes one object and (unless orphaning) what it owns; a namespace takes its contents.
fn remove_object(
    store: &mut Store,
    res: &'static Resource,
    ns: &str,
    name: &str,
    policy: &str,
) -> Option<Value> {
    let removed = store.remove(res, ns, name)?;
    if res.plural == "pods" {
        controller::replace_pod(store, &removed);
    }
    if policy != "Orphan" {
        let uid = s(&removed, "/metadata/uid").to_string();
        for (r, dns, dname) in controller::dependents(store, &uid) {
            store.remove(r, &dns, &dname);
        }
    }
    if res.plural == "namespaces" {
        let inside: Vec<(&'static Resource, String)> = resources::RESOURCES
            .iter()
            .filter(|r| r.namespaced)
            .flat_map(|r| {
                store
                    .list(r, Some(name))
                    .into_iter()
                    .map(move |o| (r, s(&o, "/metadata/name").to_string()))
            })
            .collect();
        for (r, n) in inside {
            store.remove(r, name, &n);
        }
    }
    Some(removed)
}

fn delete(
    state: &State,
    r: &Req,
    res: &'static Resource,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let (dry_run, policy) = delete_options(r);
    let mut store = state.store();
    let obj = store
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res, name))?;
    // DeleteOptions.preconditions: delete only the object the client saw.
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    for field in ["uid", "resourceVersion"] {
        let want = s(&body, &format!("/preconditions/{field}"));
        if !want.is_empty() && want != s(&obj, &format!("/metadata/{field}")) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: \
                     {field} in precondition: {want}, {field} in object meta: {}",
                    res.qualified(),
                    s(&obj, &format!("/metadata/{field}"))
                ),
            )
            .about(res, name));
        }
    }
    if dry_run {
        return Ok(json_response(200, &obj));
    }
    let removed = remove_object(&mut store, res, ns, name, &policy).unwrap_or(obj);
    store.count_write(res.plural);
    Ok(json_response(200, &removed))
}

fn delete_collection(
    state: &State,
    r: &Req,
    res: &'static Resource,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(r)?;
    let (dry_run, policy) = delete_options(r);
    let mut store = state.store();
    let doomed: Vec<Value> = store
        .list(res, ns)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    if !dry_run {
        for o in &doomed {
            remove_object(
                &mut store,
                res,
                s(o, "/metadata/namespace"),
                s(o, "/metadata/name"),
                &policy,
            );
        }
        store.count_write(res.plural);
    }
    let rv = store.rv().to_string();
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
                "metadata": {"resourceVersion": rv}, "items": doomed}),
    ))
}

/// The autoscaling/v1 Scale view of a workload.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(|sel| selector::LabelSelector::from_object(sel).to_query())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn scale(
    state: &State,
    r: &Req,
    method: &Method,
    res: &'static Resource,
    ns: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let mut store = state.store();
    let old = store
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(res, name))?;
    let current = scale_of(&old);
    let wanted = match *method {
        Method::GET => return Ok(json_response(200, &current)),
        Method::PUT => r.json_body()?,
        Method::PATCH => {
            let mut sc = current.clone();
            apply_patch(r, &mut sc)?;
            sc
        }
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "scale supports get, update and patch",
            ));
        }
    };
    check_rv(res, name, &old, &wanted)?;
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid(res, name, "spec.replicas: Required value"))?;
    let mut obj = old.clone();
    obj["spec"]["replicas"] = json!(replicas);
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let stored = commit(
        &mut store,
        res,
        Some(&old),
        obj,
        r.query.dry_run(),
        &format!("{}/scale", res.plural),
    )?;
    Ok(json_response(200, &scale_of(&stored)))
}
