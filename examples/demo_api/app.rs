//! The demo API: a small service shaped like the "TenSafe" API of the seed runbooks.
//! It answers liveness, readiness (Postgres and Redis), Prometheus metrics and the admin
//! dead-letter-queue endpoints over HTTP, optionally also over HTTPS (a certificate it
//! generates, for the `tls` check), and runs the job workers that drain the jobs table.
//!
//! `main.rs` runs it as a program; tests include this file with `#[path]` and call
//! [`start`].

#[path = "backends.rs"]
mod backends;
#[path = "metrics.rs"]
mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use backends::{DLQ_KEY, SCHEMA};
use backends::{Pg, Redis};
use metrics::{Gauges, Metrics};

/// How often the workers look for pending jobs.
const WORK_INTERVAL: Duration = Duration::from_millis(200);
/// Most DLQ entries listed at once.
const MAX_LIST: usize = 1000;

/// What to serve and where the dependencies are.
pub struct Options {
    /// Plain HTTP (what Prometheus scrapes and opsctl's `api` target reads).
    pub listen: SocketAddr,
    /// HTTPS with a generated certificate, same endpoints.
    pub tls_listen: Option<SocketAddr>,
    pub database_url: String,
    pub redis_url: String,
    /// Bearer token of `/v1/admin/*`.
    pub admin_token: String,
    /// Jobs the workers finish per round (five rounds a second); 0 runs no workers.
    pub worker_batch: i64,
}

/// A running demo API; stops when dropped.
pub struct Running {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    #[allow(dead_code)] // for tests
    cert_pem: Option<String>,
    stop: CancellationToken,
}

impl Running {
    #[allow(dead_code)] // for tests
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }
    /// The served certificate (PEM), when serving HTTPS.
    #[allow(dead_code)] // for tests
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct State {
    pg: Pg,
    redis: Redis,
    metrics: Metrics,
    admin_token: String,
}

type Body = Full<Bytes>;

/// Binds the listeners, starts the workers and serves until stopped.
pub async fn start(opts: Options) -> Result<Running, String> {
    let state = Arc::new(State {
        pg: Pg::new(opts.database_url),
        redis: Redis::new(&opts.redis_url)?,
        metrics: Metrics::default(),
        admin_token: opts.admin_token,
    });
    let stop = CancellationToken::new();
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (mut tls_addr, mut cert_pem) = (None, None);
    if let Some(tls) = opts.tls_listen {
        let (acceptor, pem) = tls_acceptor()?;
        let tls_listener = TcpListener::bind(tls)
            .await
            .map_err(|e| format!("--tls-listen {tls}: {e}"))?;
        tls_addr = Some(tls_listener.local_addr().map_err(|e| e.to_string())?);
        cert_pem = Some(pem);
        tokio::spawn(serve(
            tls_listener,
            Some(acceptor),
            state.clone(),
            stop.clone(),
        ));
    }
    tokio::spawn(serve(listener, None, state.clone(), stop.clone()));
    if opts.worker_batch > 0 {
        tokio::spawn(workers(state, opts.worker_batch, stop.clone()));
    }
    Ok(Running {
        addr,
        tls_addr,
        cert_pem,
        stop,
    })
}

async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let builder = http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    // A client that only reads the certificate (opsctl's `tls` check)
                    // hangs up after the handshake: not an error worth reporting.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        tokio::select! { _ = conn => {}, () = stop.cancelled() => {} }
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! { _ = conn => {}, () = stop.cancelled() => {} }
                }
            }
        });
    }
}

/// The job workers, in-process for the demo: a round every [`WORK_INTERVAL`]. Without
/// Redis they cannot take leases, so the queue backs up until it returns.
async fn workers(state: Arc<State>, batch: i64, stop: CancellationToken) {
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(WORK_INTERVAL) => {}
        }
        match backends::work_once(&state.pg, &state.redis, &state.metrics, batch).await {
            Ok(_) => {
                if last_error.take().is_some() {
                    eprintln!("demo_api: workers resumed");
                }
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    eprintln!("demo_api: workers paused: {e}");
                }
                last_error = Some(e);
            }
        }
    }
}

/// Routes a request, then counts it (method, route, status, duration).
async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    let (endpoint, response) = route(state, req).await;
    state.metrics.observe(
        method,
        endpoint,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn route(state: &State, req: Request<Incoming>) -> (&'static str, Response<Body>) {
    let path = req.uri().path().to_string();
    let endpoint: &'static str = match path.as_str() {
        "/internal/health" => "/internal/health",
        "/internal/ready" => "/internal/ready",
        "/internal/metrics" => "/internal/metrics",
        "/v1/admin/dlq" => "/v1/admin/dlq",
        "/v1/admin/dlq/stats" => "/v1/admin/dlq/stats",
        // One label for everything else, so unknown paths cannot grow the metrics.
        _ => return ("other", json_response(404, &json!({"error": "not found"}))),
    };
    let admin = endpoint.starts_with("/v1/admin/");
    if admin && !authorized(&state.admin_token, req.headers().get(AUTHORIZATION)) {
        let mut r = json_response(401, &json!({"error": "missing or invalid bearer token"}));
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return (endpoint, r);
    }
    // Every endpoint is a read: the seed's admin API names no write on the DLQ.
    let expected = Method::GET;
    if *req.method() != expected {
        return (
            endpoint,
            json_response(405, &json!({"error": format!("use {expected}")})),
        );
    }
    let response = match endpoint {
        "/internal/health" => json_response(200, &json!({"status": "ok"})),
        "/internal/ready" => ready(state).await,
        "/internal/metrics" => metrics(state).await,
        "/v1/admin/dlq/stats" => dlq_stats(state).await,
        _ => dlq_list(state, req.uri().query().unwrap_or("")).await,
    };
    (endpoint, response)
}

fn authorized(token: &str, header: Option<&HeaderValue>) -> bool {
    let Some(given) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Length and content compared without an early exit.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `200 {"status": "ready", "checks": {...}}`, or 503 naming the dependency that failed.
async fn ready(state: &State) -> Response<Body> {
    let (db, cache) = tokio::join!(state.pg.ping(), state.redis.ping());
    let check = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(format!("error: {e}")),
    };
    let ok = db.is_ok() && cache.is_ok();
    json_response(
        if ok { 200 } else { 503 },
        &json!({
            "status": if ok { "ready" } else { "not ready" },
            "checks": {"database": check(&db), "redis": check(&cache)},
        }),
    )
}

async fn metrics(state: &State) -> Response<Body> {
    let (depth, cache) = tokio::join!(state.pg.queue_depth(), state.redis.ping());
    let gauges = Gauges {
        dependencies: vec![("postgres", depth.is_ok()), ("redis", cache.is_ok())],
        queue_depth: depth.ok(),
    };
    let mut r = Response::new(Full::new(Bytes::from(state.metrics.render(&gauges))));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn dlq_entries(state: &State, count: isize) -> Result<Vec<Value>, Response<Body>> {
    let raw: Vec<String> = state
        .redis
        .cmd(redis::cmd("LRANGE").arg(DLQ_KEY).arg(0).arg(count - 1))
        .await
        .map_err(|e| unavailable("redis", &e))?;
    Ok(raw.iter().map(|r| backends::parse_entry(r)).collect())
}

/// Entries per job type and per error, and the total.
async fn dlq_stats(state: &State) -> Response<Body> {
    let entries = match dlq_entries(state, 0).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut by_type = serde_json::Map::new();
    let mut by_error = serde_json::Map::new();
    for e in &entries {
        for (field, map) in [("job_type", &mut by_type), ("error", &mut by_error)] {
            let key = e.get(field).and_then(Value::as_str).unwrap_or("unknown");
            let n = map.get(key).and_then(Value::as_u64).unwrap_or(0);
            map.insert(key.to_string(), json!(n + 1));
        }
    }
    json_response(
        200,
        &json!({
            "depth": entries.len(),
            "by_job_type": by_type,
            "by_error": by_error,
            "oldest_failed_at": entries.first().and_then(|e| e.get("failed_at")),
        }),
    )
}

/// The first `limit` entries (default 20, at most 1000).
async fn dlq_list(state: &State, query: &str) -> Response<Body> {
    let limit = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .map(str::parse::<usize>);
    let limit = match limit {
        None => 20,
        Some(Ok(n)) if (1..=MAX_LIST).contains(&n) => n,
        Some(_) => {
            return json_response(
                400,
                &json!({"error": format!("limit must be an integer from 1 to {MAX_LIST}")}),
            );
        }
    };
    let total: i64 = match state.redis.cmd(redis::cmd("LLEN").arg(DLQ_KEY)).await {
        Ok(n) => n,
        Err(e) => return unavailable("redis", &e),
    };
    match dlq_entries(state, isize::try_from(limit).unwrap_or(20)).await {
        Ok(entries) => json_response(200, &json!({"total": total, "entries": entries})),
        Err(r) => r,
    }
}

fn unavailable(dependency: &str, error: &str) -> Response<Body> {
    json_response(
        503,
        &json!({"error": format!("{dependency} unavailable: {error}")}),
    )
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, valid for 90 days from now
/// (as a certificate authority like Let's Encrypt issues them), and an acceptor serving it.
fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, String), String> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| format!("certificate: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "opsctl demo");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("clock: {e}"))?;
    // rcgen's date type, built from its own helper (no `time` dependency needed).
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + (now - Duration::from_secs(3600));
    params.not_after = epoch + (now + Duration::from_secs(90 * 86_400));
    let key = rcgen::KeyPair::generate().map_err(|e| format!("key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("certificate: {e}"))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert.pem(),
    ))
}
