//! Helpers shared by the Postgres and Redis pool tests.
#![allow(dead_code)]

/// The URL of a test service; the tests fail (not skip) without it.
pub fn env(name: &str) -> String {
    crate::support::service_url(name)
}

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A unique suffix for tables, keys and application names.
pub use crate::support::unique;

/// A port on 127.0.0.1 nobody listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `url` with `key=value` added to its query string.
pub fn with_param(url: &str, kv: &str) -> String {
    if url.contains('?') {
        format!("{url}&{kv}")
    } else {
        format!("{url}?{kv}")
    }
}

/// `url` with the password replaced.
pub fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, host) = rest.split_once('@').expect("userinfo");
    let user = userinfo.split(':').next().unwrap_or("");
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` with host:port replaced.
pub fn with_hostport(url: &str, hostport: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, tail) = rest.split_once('@').expect("userinfo");
    let path = tail.find(['/', '?']).map_or("", |i| &tail[i..]);
    format!("{scheme}://{userinfo}@{hostport}{path}")
}

/// A plain admin connection (for fixtures and observation).
pub async fn pg_admin() -> tokio_postgres::Client {
    let url = env("OPSCTL_TEST_PG_ADMIN_URL");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("admin connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A result's error seen as its kind with its message, for matching.
pub fn view<T>(
    r: &Result<T, opsctl::actions::ActionError>,
) -> Result<&T, opsctl::actions::ErrorView<'_>> {
    r.as_ref().map_err(opsctl::actions::ActionError::view)
}
