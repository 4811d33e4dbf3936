//! Real local HTTP/HTTPS test servers and a counting TCP listener that record what they saw.
//!
//! Tests assert on the server's observations (requests, concurrency, connections), never on timing.
//!
//! Every server owns a dedicated multi-thread tokio runtime living on its own std thread, so
//! it keeps serving whatever the calling test does: `#[tokio::test]` of either flavour, a plain
//! `#[test]` that blocks on a child process, or a test that drives opsctl's library. All
//! constructors are non-blocking (the socket is bound and listening before they return); the
//! `async` ones exist for symmetry and are interchangeable with the `*_blocking` ones. Dropping a
//! server stops its runtime, closes the listener and every open connection, and joins the thread.
//!
//! TLS servers never touch rustls' process-wide default crypto provider (they use ring
//! explicitly); clients built by the test (reqwest, or opsctl in-process) still need
//! `rustls::crypto::ring::default_provider().install_default()` as usual.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

const SECS_PER_DAY: i64 = 86_400;

/// One canned answer: which requests it matches and what it replies.
#[derive(Clone, Debug)]
pub struct Route {
    method: String,
    path: String,
    status: StatusCode,
    body: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    delay: Duration,
    sequence: Vec<(StatusCode, String)>,
}

impl Route {
    /// Matches `method` (`"*"` = any, compared case-insensitively) and exactly `path`
    /// (the request path without its query string). Answers 200 with an empty body by default.
    pub fn new(method: &str, path: &str) -> Route {
        Route {
            method: method.to_string(),
            path: path.to_string(),
            status: StatusCode::OK,
            body: String::new(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            sequence: Vec::new(),
        }
    }

    pub fn status(mut self, code: u16) -> Route {
        self.status = status_code(code);
        self
    }

    /// Response body. Content-type defaults to `text/plain; charset=utf-8` unless set.
    pub fn body(mut self, text: impl Into<String>) -> Route {
        self.body = text.into();
        self
    }

    /// JSON response body; sets `content-type: application/json`.
    pub fn json(mut self, v: serde_json::Value) -> Route {
        self.body = v.to_string();
        self.header(CONTENT_TYPE.as_str(), "application/json")
    }

    /// Adds a response header. `content-type` replaces any earlier one; other names append
    /// (so repeated headers such as `set-cookie` are possible).
    pub fn header(mut self, name: &str, value: &str) -> Route {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("Route::header: invalid header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value)
            .unwrap_or_else(|e| panic!("Route::header: invalid header value {value:?}: {e}"));
        if name == CONTENT_TYPE {
            self.headers.retain(|(n, _)| n != CONTENT_TYPE);
        }
        self.headers.push((name, value));
        self
    }

    /// Waits this long (tokio sleep, no lock held) before answering each hit.
    pub fn delay(mut self, d: std::time::Duration) -> Route {
        self.delay = d;
        self
    }

    /// A sequence of responses: the Nth hit on this route gets the Nth (status, body); the last
    /// repeats. Overrides `status`/`body`; headers and delay still apply to every hit.
    pub fn sequence(mut self, responses: Vec<(u16, String)>) -> Route {
        self.sequence = responses
            .into_iter()
            .map(|(code, body)| (status_code(code), body))
            .collect();
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        method_matches(&self.method, method) && self.path == path
    }

    /// The response for the `hit`-th (0-based) request this route matched.
    fn respond(&self, hit: usize) -> Response<Full<Bytes>> {
        let (status, body) = match self.sequence.get(hit).or(self.sequence.last()) {
            Some((status, body)) => (*status, body.clone()),
            None => (self.status, self.body.clone()),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        for (name, value) in &self.headers {
            resp.headers_mut().append(name.clone(), value.clone());
        }
        if !resp.headers().contains_key(CONTENT_TYPE) {
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        resp
    }
}

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|_| panic!("Route: invalid HTTP status {code}"))
}

fn method_matches(pattern: &str, method: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(method)
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string (without `?`), if any.
    pub query: Option<String>,
    /// Header names are lowercase (as hyper delivers them), in received order.
    pub headers: Vec<(String, String)>,
    /// The full request body, lossily decoded as UTF-8.
    pub body: String,
}

impl Recorded {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    route_hits: Vec<usize>,
    in_flight: usize,
    max_in_flight: usize,
    connections: usize,
}

struct Shared {
    routes: Vec<Route>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a request as in flight from its arrival until the guard drops (after the response is
/// built, or when hyper drops the handler because the client went away).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        let mut st = shared.lock();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

/// A listener on 127.0.0.1:0 served by its own runtime on its own std thread until dropped.
struct Background {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start<F, Fut>(name: &str, serve: F) -> (Background, SocketAddr)
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("test server: cannot build tokio runtime");
        let listener = {
            let _guard = rt.enter();
            let socket = TcpSocket::new_v4().expect("test server: cannot create socket");
            socket
                .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .expect("test server: cannot bind 127.0.0.1:0");
            socket.listen(1024).expect("test server: cannot listen")
        };
        let addr = listener
            .local_addr()
            .expect("test server: no local address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        () = serve(listener) => {}
                        _ = stop => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("test server: cannot spawn thread");
        let background = Background {
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        (background, addr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts forever (until the runtime stops), one task per connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // e.g. EMFILE: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        shared.lock().connections += 1;
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, shared).await,
                Some(acceptor) => {
                    // A failed handshake (e.g. the client rejected the certificate) just ends the task.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, shared).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(io: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, Arc::clone(&shared)));
    // Errors here are client misbehaviour (disconnects, garbage): the connection just ends.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::enter(&shared);
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away or sent a malformed body; it will not read this anyway.
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "unreadable request body")),
    };
    let recorded = Recorded {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_string(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let not_found = format!("no route for {} {}\n", recorded.method, recorded.path);
    let matched = {
        let mut st = shared.lock();
        let index = shared
            .routes
            .iter()
            .position(|r| r.matches(&recorded.method, &recorded.path));
        st.requests.push(recorded);
        index.map(|i| {
            let hit = st.route_hits[i];
            st.route_hits[i] += 1;
            (i, hit)
        })
    };
    let resp = match matched {
        Some((i, hit)) => {
            let route = &shared.routes[i];
            if !route.delay.is_zero() {
                tokio::time::sleep(route.delay).await;
            }
            route.respond(hit)
        }
        None => plain(StatusCode::NOT_FOUND, not_found),
    };
    Ok(resp)
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970");
    i64::try_from(since.as_secs()).expect("clock out of range")
}

/// Self-signed certificate (SANs `localhost` and `127.0.0.1`, subject CN `cn`, valid from 30 days
/// before the earlier of now and its expiry until exactly `now + days_from_now * 86400 s`), and
/// a TLS acceptor serving it (HTTP/1.1 ALPN, TLS 1.2 and 1.3, ring provider).
fn tls_acceptor(cn: &str, days_from_now: i64) -> (TlsAcceptor, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("test server: certificate params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    // rcgen's date type is `time::OffsetDateTime`; build it from rcgen's own helper so this
    // module needs no `time` dependency. Whole seconds since the Unix epoch:
    let at = |unix_secs: i64| {
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let magnitude = Duration::from_secs(unix_secs.unsigned_abs());
        if unix_secs >= 0 {
            epoch + magnitude
        } else {
            epoch - magnitude
        }
    };
    let now = unix_now();
    let not_after = now + days_from_now * SECS_PER_DAY;
    params.not_after = at(not_after);
    params.not_before = at(now.min(not_after) - 30 * SECS_PER_DAY);
    let key = rcgen::KeyPair::generate().expect("test server: key generation");
    let cert = params.self_signed(&key).expect("test server: self-signing");
    let pem = cert.pem();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("test server: TLS protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .expect("test server: TLS certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (TlsAcceptor::from(Arc::new(config)), pem)
}

/// A local HTTP or HTTPS server answering from a fixed list of [`Route`]s (first match wins;
/// anything else gets 404 and is still recorded). Shuts down when dropped.
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    _background: Background,
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1:0.
    pub async fn start(routes: Vec<Route>) -> TestServer {
        Self::launch(routes, None)
    }

    /// HTTPS with a fresh self-signed certificate for `localhost` + `127.0.0.1` (CN `localhost`,
    /// valid for 365 days); trust it via [`TestServer::ca_pem`].
    pub async fn start_tls(routes: Vec<Route>) -> TestServer {
        Self::start_tls_blocking(routes)
    }

    /// HTTPS with a certificate whose validity ends `days_from_now` days from now (may be
    /// negative = expired), subject CN `cn`. SANs are still `localhost` and `127.0.0.1`.
    pub async fn start_tls_with_cert(
        routes: Vec<Route>,
        cn: &str,
        days_from_now: i64,
    ) -> TestServer {
        Self::start_tls_with_cert_blocking(routes, cn, days_from_now)
    }

    /// Same as [`TestServer::start`], callable from a plain `#[test]`.
    pub fn start_blocking(routes: Vec<Route>) -> TestServer {
        Self::launch(routes, None)
    }

    /// Same as [`TestServer::start_tls`], callable from a plain `#[test]`.
    pub fn start_tls_blocking(routes: Vec<Route>) -> TestServer {
        Self::start_tls_with_cert_blocking(routes, "localhost", 365)
    }

    /// Same as [`TestServer::start_tls_with_cert`], callable from a plain `#[test]`.
    pub fn start_tls_with_cert_blocking(
        routes: Vec<Route>,
        cn: &str,
        days_from_now: i64,
    ) -> TestServer {
        let (acceptor, pem) = tls_acceptor(cn, days_from_now);
        Self::launch(routes, Some((acceptor, pem)))
    }

    fn launch(routes: Vec<Route>, tls: Option<(TlsAcceptor, String)>) -> TestServer {
        let state = State {
            route_hits: vec![0; routes.len()],
            ..State::default()
        };
        let shared = Arc::new(Shared {
            routes,
            state: Mutex::new(state),
        });
        let (acceptor, ca_pem) = tls.unzip();
        let tls = acceptor.is_some();
        let for_loop = Arc::clone(&shared);
        let (background, addr) = Background::start("test-http-server", move |listener| {
            accept_loop(listener, for_loop, acceptor)
        });
        TestServer {
            addr,
            tls,
            ca_pem,
            shared,
            _background: background,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// PEM of the server's self-signed certificate (TLS servers only): add it as a trusted root.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Every request seen (including 404s), in arrival order. A request is recorded once its
    /// body has been read, before its response (and before any route delay), so it is here by
    /// the time the client has the response.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Number of recorded requests with this method (`"*"` = any) and exact path (no query).
    pub fn hits(&self, method: &str, path: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| method_matches(method, &r.method) && r.path == path)
            .count()
    }

    /// Largest number of requests handled at the same moment: a request counts from its arrival
    /// until its response has been produced (after any delay).
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }

    /// TCP connections accepted so far (counted at accept, before any TLS handshake).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }
}

/// A bare TCP listener that accepts and counts connections, answering nothing (for "contacts
/// nothing" tests of dry runs, and as a tcp-check target). Accepted sockets are closed after
/// `hold` (default: immediately). Shuts down when dropped.
pub struct CountingListener {
    addr: SocketAddr,
    connections: Arc<Mutex<usize>>,
    _background: Background,
}

impl CountingListener {
    pub async fn start() -> CountingListener {
        Self::start_holding(Duration::ZERO)
    }

    /// Same as [`CountingListener::start`], callable from a plain `#[test]`.
    pub fn start_blocking() -> CountingListener {
        Self::start_holding(Duration::ZERO)
    }

    /// Keeps each accepted socket open (silently) for `hold` before closing it. Non-blocking,
    /// usable from sync and async tests.
    pub fn start_holding(hold: Duration) -> CountingListener {
        let connections = Arc::new(Mutex::new(0usize));
        let counter = Arc::clone(&connections);
        let (background, addr) = Background::start("test-tcp-listener", move |listener| {
            count_loop(listener, counter, hold)
        });
        CountingListener {
            addr,
            connections,
            _background: background,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far. The kernel completes a client's `connect` before the
    /// listener accepts it, so right after a client connected this may briefly lag; use
    /// [`CountingListener::wait_for_connections`] when asserting a positive count.
    pub fn connections(&self) -> usize {
        *self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls until at least `n` connections were accepted or `timeout` passed, and returns the
    /// count seen last, so `assert_eq!(l.wait_for_connections(3, timeout), 3)` also catches
    /// extras already accepted. Blocks the calling thread (fine in tests: the listener runs on
    /// its own runtime).
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.connections();
            if seen >= n || Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

async fn count_loop(listener: TcpListener, connections: Arc<Mutex<usize>>, hold: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        *connections.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        if !hold.is_zero() {
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(stream);
            });
        }
    }
}

/// A free port on 127.0.0.1 that nothing listens on (bind :0, read port, drop) — for
/// "connection refused" tests. Another process could in principle grab it meanwhile.
pub fn closed_port() -> u16 {
    let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}
