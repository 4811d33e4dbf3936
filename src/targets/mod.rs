//! The clients steps talk through, one per target per run, built on first use and
//! shared by every step (the hot path does no per-step set-up).

pub mod cleanup;
pub mod http;
pub mod messages;
pub mod pool;
pub mod postgres;
pub mod redis;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::actions::ActionError;
use crate::config::{DbTarget, EnvConfig};
use crate::redact::Redactor;

pub use http::ResolvedHttpTarget;
pub use postgres::PgPool;
pub use redis::RedisPool;

/// How a pool is made: target name, URL, size, CA file, redactor.
type NewPool<P> =
    fn(&str, &str, usize, Option<&std::path::Path>, Redactor) -> Result<P, ActionError>;

/// A client built on first use; the error is kept so every step sees the same cause.
pub type Lazy<T> = OnceLock<Result<T, String>>;

/// Every client of a run.
pub struct Clients {
    redactor: Redactor,
    http: http::HttpClients,
    postgres: HashMap<String, (DbTarget, Lazy<Arc<PgPool>>)>,
    redis: HashMap<String, (DbTarget, Lazy<Arc<RedisPool>>)>,
}

impl Clients {
    /// Registers nothing and connects nothing: clients are built when a step first needs
    /// them.
    pub fn new(env: &EnvConfig, redactor: Redactor) -> Clients {
        Clients {
            http: http::HttpClients::new(&env.http),
            postgres: cells(&env.postgres),
            redis: cells(&env.redis),
            redactor,
        }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn http(&self, insecure: bool) -> Result<reqwest::Client, ActionError> {
        self.http.client(insecure)
    }

    pub fn http_target(&self, name: &str) -> Result<Arc<ResolvedHttpTarget>, ActionError> {
        self.http.target(name, &self.redactor)
    }

    pub fn postgres(&self, name: &str) -> Result<Arc<PgPool>, ActionError> {
        self.pooled(&self.postgres, "postgres", name, PgPool::new)
    }

    pub fn redis(&self, name: &str) -> Result<Arc<RedisPool>, ActionError> {
        self.pooled(&self.redis, "redis", name, RedisPool::new)
    }

    /// A Postgres or Redis target's pool, built the first time a step needs it.
    fn pooled<P>(
        &self,
        targets: &HashMap<String, (DbTarget, Lazy<Arc<P>>)>,
        kind: &str,
        name: &str,
        new: NewPool<P>,
    ) -> Result<Arc<P>, ActionError> {
        let (target, cell) = lookup(targets, kind, name)?;
        cell.get_or_init(|| {
            let url = target.url.resolve(&format!("{kind} target `{name}`"))?;
            self.redactor.add_url_password(&url);
            new(
                name,
                &url,
                target.pool,
                target.ca_file.as_deref(),
                self.redactor.clone(),
            )
            .map(Arc::new)
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ActionError::Config)
    }
}

fn cells<T>(
    m: &std::collections::BTreeMap<String, DbTarget>,
) -> HashMap<String, (DbTarget, OnceLock<T>)> {
    m.iter()
        .map(|(k, t)| (k.clone(), (t.clone(), OnceLock::new())))
        .collect()
}

fn lookup<'a, T>(
    map: &'a HashMap<String, (DbTarget, T)>,
    kind: &str,
    name: &str,
) -> Result<(&'a DbTarget, &'a T), ActionError> {
    map.get(name).map(|(t, c)| (t, c)).ok_or_else(|| {
        let mut known: Vec<&str> = map.keys().map(String::as_str).collect();
        known.sort_unstable();
        let hint = if known.is_empty() {
            if name == "default" {
                let var = if kind == "postgres" {
                    "DATABASE_URL"
                } else {
                    "REDIS_URL"
                };
                format!("; configure `{kind}:` targets in opsctl.yaml or set {var}")
            } else {
                format!("; configure `{kind}:` targets in opsctl.yaml")
            }
        } else {
            crate::suggest::help(name, known.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_else(|| format!("; configured: {}", known.join(", ")))
        };
        ActionError::Config(format!(
            "no {kind} target `{name}` in this environment{hint}"
        ))
    })
}

/// Registers every credential the environment's targets can reach (bearer tokens, URL
/// passwords), before anything runs or prints: secrets are masked even in messages
/// produced before a client is built.
pub fn register_env_secrets(env: &EnvConfig, redactor: &Redactor) {
    let address = |a: &crate::config::Address| match a {
        crate::config::Address::Literal(u) => Some(u.clone()),
        crate::config::Address::Env(var) => std::env::var(var).ok(),
    };
    for t in env.http.values() {
        if let Some(u) = address(&t.base_url) {
            redactor.add_url_password(&u);
        }
        if let Some(token) = t.bearer_env.as_ref().and_then(|v| std::env::var(v).ok()) {
            redactor.add(&token);
        }
        for (k, v) in &t.headers {
            if crate::redact::is_credential_header(k) {
                redactor.add(v);
            }
        }
    }
    for t in env.postgres.values().chain(env.redis.values()) {
        if let Some(u) = address(&t.url) {
            redactor.add_url_password(&u);
        }
    }
}
