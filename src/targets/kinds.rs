//! Target kinds: an open registry. Each kind names its section of an environment in
//! `opsctl.yaml` (`http:`, `postgres:`, ...), reads it, registers the credentials its
//! targets can reach, and builds a target's client the first time a step needs it.
//! The config loader, lint and the clients know kinds only through [`KINDS`]: adding
//! one (Kubernetes next) is a new kind here and the actions that use it.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::actions::ActionError;
use crate::config::{Address, DbTarget, HttpTarget, KubeTarget};
use crate::loader::Cx;
use crate::redact::Redactor;
use crate::yaml::Node;

/// A built client, shared by every step of the run that uses its target.
pub type Client = Arc<dyn Any + Send + Sync>;

/// One kind of target.
pub trait TargetKind: Send + Sync + 'static {
    /// Its section in an environment and the kind steps name (`target_kind` of actions).
    fn section(&self) -> &'static str;

    /// Reads the section: its named targets (problems go to `cx`).
    fn load(
        &self,
        cx: &mut Cx<'_>,
        node: &Node,
        base: &Path,
    ) -> Vec<(String, Arc<dyn TargetConfig>)>;

    /// What to say when a step names the target `default` and none is configured.
    fn default_hint(&self) -> Option<&'static str> {
        None
    }
}

/// One configured target.
pub trait TargetConfig: Send + Sync + std::fmt::Debug + 'static {
    fn as_any(&self) -> &dyn Any;

    /// Registers every credential the target can reach (before anything runs or prints).
    fn register_secrets(&self, redactor: &Redactor);

    /// How it is reached through the cluster (`via: k8s`), if it is.
    fn via(&self) -> Option<&crate::config::Via> {
        None
    }

    /// Builds its client (on first use; some need I/O, such as reading a kubeconfig).
    fn build<'a>(
        &'a self,
        name: &'a str,
        clients: &'a super::Clients,
    ) -> BoxFuture<'a, Result<Client, ActionError>>;
}

/// Every kind of target.
pub static KINDS: &[&dyn TargetKind] = &[&HttpKind, &POSTGRES, &REDIS, &KubernetesKind];

/// The kind whose section is `section`.
pub fn kind(section: &str) -> Option<&'static dyn TargetKind> {
    KINDS.iter().copied().find(|k| k.section() == section)
}

fn address_secrets(a: &Address, redactor: &Redactor) {
    let url = match a {
        Address::Literal(u) => Some(u.clone()),
        Address::Env(var) => std::env::var(var).ok(),
    };
    if let Some(u) = url {
        redactor.add_url_password(&u);
        // A key=value connection string (`host=db password=...`) carries one too.
        if let Ok(config) = u.parse::<tokio_postgres::Config>() {
            if let Some(pw) = config.get_password() {
                redactor.add(&String::from_utf8_lossy(pw));
            }
        }
    }
}

pub struct HttpKind;

impl TargetKind for HttpKind {
    fn section(&self) -> &'static str {
        "http"
    }

    fn load(
        &self,
        cx: &mut Cx<'_>,
        node: &Node,
        base: &Path,
    ) -> Vec<(String, Arc<dyn TargetConfig>)> {
        crate::config::named_targets(cx, node, "http")
            .into_iter()
            .filter_map(|(name, n)| {
                crate::config::load_http(cx, &name, n, base)
                    .map(|t| (name, Arc::new(t) as Arc<dyn TargetConfig>))
            })
            .collect()
    }
}

impl TargetConfig for HttpTarget {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn via(&self) -> Option<&crate::config::Via> {
        self.via.as_ref()
    }

    fn register_secrets(&self, redactor: &Redactor) {
        address_secrets(&self.base_url, redactor);
        if let Some(token) = self.bearer_env.as_ref().and_then(|v| std::env::var(v).ok()) {
            redactor.add(&token);
        }
        for (k, v) in &self.headers {
            if crate::redact::is_credential_header(k) {
                redactor.add(v);
            }
        }
    }

    fn build<'a>(
        &'a self,
        name: &'a str,
        clients: &'a super::Clients,
    ) -> BoxFuture<'a, Result<Client, ActionError>> {
        Box::pin(async move {
            let forward = match &self.via {
                Some(via) => {
                    let what = format!("http target `{name}`");
                    let url = self.base_url.resolve(&what).map_err(ActionError::Config)?;
                    Some(through(clients, via, &url, &what).await?.1)
                }
                None => None,
            };
            super::http::resolve(self, forward).map(|t| t as Client)
        })
    }
}

/// A Postgres target (its config is a [`DbTarget`]).
#[derive(Debug, Clone)]
pub struct PostgresTarget(pub DbTarget);
/// A Redis target (its config is a [`DbTarget`]).
#[derive(Debug, Clone)]
pub struct RedisTarget(pub DbTarget);

/// Postgres and Redis: named targets with a URL, a pool size and a CA file, read alike.
pub struct DbKind {
    section: &'static str,
    hint: &'static str,
    wrap: fn(DbTarget) -> Arc<dyn TargetConfig>,
}

pub static POSTGRES: DbKind = DbKind {
    section: "postgres",
    hint: "set DATABASE_URL",
    wrap: |t| Arc::new(PostgresTarget(t)),
};

pub static REDIS: DbKind = DbKind {
    section: "redis",
    hint: "set REDIS_URL",
    wrap: |t| Arc::new(RedisTarget(t)),
};

impl TargetKind for DbKind {
    fn section(&self) -> &'static str {
        self.section
    }

    fn load(
        &self,
        cx: &mut Cx<'_>,
        node: &Node,
        base: &Path,
    ) -> Vec<(String, Arc<dyn TargetConfig>)> {
        crate::config::named_targets(cx, node, self.section)
            .into_iter()
            .filter_map(|(name, n)| {
                crate::config::load_db(cx, self.section, &name, n, base)
                    .map(|t| (name, (self.wrap)(t)))
            })
            .collect()
    }

    fn default_hint(&self) -> Option<&'static str> {
        Some(self.hint)
    }
}

/// Starts the port-forward of a target reached `via` the cluster; returns its URL pointed
/// at the forward's local end, and the forward (kept open with the client).
async fn through(
    clients: &super::Clients,
    via: &crate::config::Via,
    url: &str,
    what: &str,
) -> Result<(String, super::forward::Forward), ActionError> {
    let mut parsed = url::Url::parse(url).map_err(|_| {
        ActionError::Config(format!(
            "{what}: `via` needs the address as a URL (scheme://host:port/...)"
        ))
    })?;
    let port = parsed
        .port_or_known_default()
        .or(match parsed.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "redis" | "rediss" => Some(6379),
            _ => None,
        })
        .ok_or_else(|| ActionError::Config(format!("{what}: the URL has no port")))?;
    let kube = clients.kube().await?;
    let forward = super::forward::start(kube, via, port, what).await?;
    let postgres = matches!(parsed.scheme(), "postgres" | "postgresql");
    // Postgres connects to `hostaddr` and checks TLS against `host` (libpq's rule), so the
    // URL keeps its host name and only its address moves; others connect to the host.
    let ok = if postgres {
        parsed
            .query_pairs_mut()
            .append_pair("hostaddr", "127.0.0.1");
        parsed.set_port(Some(forward.local.port())).is_ok()
    } else {
        parsed.set_host(Some("127.0.0.1")).is_ok()
            && parsed.set_port(Some(forward.local.port())).is_ok()
    };
    if !ok {
        return Err(ActionError::Config(format!(
            "{what}: cannot point the URL at the port-forward"
        )));
    }
    Ok((parsed.to_string(), forward))
}

/// A Postgres or Redis pool: straight to its URL, or through the cluster (`via`).
async fn build_db<P: Send + Sync + 'static>(
    t: &DbTarget,
    kind: &str,
    name: &str,
    clients: &super::Clients,
    new: fn(&str, &str, usize, Option<&Path>) -> Result<P, ActionError>,
    through_forward: fn(P, super::forward::Forward) -> P,
) -> Result<Client, ActionError> {
    let what = format!("{kind} target `{name}`");
    let url = t.url.resolve(&what).map_err(ActionError::Config)?;
    match &t.via {
        None => new(name, &url, t.pool, t.ca_file.as_deref()).map(|p| Arc::new(p) as Client),
        Some(via) => {
            let (local, forward) = through(clients, via, &url, &what).await?;
            new(name, &local, t.pool, t.ca_file.as_deref())
                .map(|p| Arc::new(through_forward(p, forward)) as Client)
        }
    }
}

impl TargetConfig for PostgresTarget {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn via(&self) -> Option<&crate::config::Via> {
        self.0.via.as_ref()
    }

    fn register_secrets(&self, redactor: &Redactor) {
        address_secrets(&self.0.url, redactor);
    }

    fn build<'a>(
        &'a self,
        name: &'a str,
        clients: &'a super::Clients,
    ) -> BoxFuture<'a, Result<Client, ActionError>> {
        Box::pin(build_db(
            &self.0,
            "postgres",
            name,
            clients,
            super::PgPool::new,
            super::PgPool::through,
        ))
    }
}

impl TargetConfig for RedisTarget {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn via(&self) -> Option<&crate::config::Via> {
        self.0.via.as_ref()
    }

    fn register_secrets(&self, redactor: &Redactor) {
        address_secrets(&self.0.url, redactor);
    }

    fn build<'a>(
        &'a self,
        name: &'a str,
        clients: &'a super::Clients,
    ) -> BoxFuture<'a, Result<Client, ActionError>> {
        Box::pin(build_db(
            &self.0,
            "redis",
            name,
            clients,
            super::RedisPool::new,
            super::RedisPool::through,
        ))
    }
}

/// The environment's cluster: one target, `default` (`kubernetes: {context, namespace}`).
pub struct KubernetesKind;

impl TargetKind for KubernetesKind {
    fn section(&self) -> &'static str {
        "kubernetes"
    }

    fn load(
        &self,
        cx: &mut Cx<'_>,
        node: &Node,
        _base: &Path,
    ) -> Vec<(String, Arc<dyn TargetConfig>)> {
        crate::config::load_kubernetes(cx, node)
            .map(|k| ("default".to_string(), Arc::new(k) as Arc<dyn TargetConfig>))
            .into_iter()
            .collect()
    }
}

impl TargetConfig for KubeTarget {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn register_secrets(&self, _redactor: &Redactor) {}

    fn build<'a>(
        &'a self,
        _name: &'a str,
        _clients: &'a super::Clients,
    ) -> BoxFuture<'a, Result<Client, ActionError>> {
        Box::pin(async move { super::kube::connect(self).await.map(|k| k as Client) })
    }
}
