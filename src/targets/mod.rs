//! The clients steps talk through, one per target per run, built on first use and
//! shared by every step (the hot path does no per-step set-up). Targets come from the
//! open registry of kinds ([`kinds`]); clients hold no per-run state (events are masked
//! where they leave the executor), so they could serve several runs.

pub mod cleanup;
pub mod forward;
pub mod http;
pub mod kinds;
pub mod kube;
pub mod messages;
pub mod pool;
pub mod postgres;
pub mod redis;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::actions::ActionError;
use crate::config::EnvConfig;
use crate::redact::Redactor;

pub use http::ResolvedHttpTarget;
pub use kinds::{Client, TargetConfig, TargetKind};
pub use postgres::PgPool;
pub use redis::RedisPool;

/// A client built on first use; the error is kept so every step sees the same cause.
pub type Lazy<T> = OnceLock<Result<T, String>>;

/// A configured target and its client, built on first use.
type Target = (
    Arc<dyn TargetConfig>,
    tokio::sync::OnceCell<Result<Client, String>>,
);

/// Every client of a run: the shared plain-URL HTTP clients, and one lazily built client
/// per configured target, by kind and name.
pub struct Clients {
    http: http::HttpClients,
    targets: HashMap<(&'static str, String), Target>,
    /// Names per kind, for "did you mean" messages.
    names: HashMap<&'static str, Vec<String>>,
    /// The cluster of the kubeconfig, for an environment without a `kubernetes:` section.
    implicit_kube: Target,
}

impl Clients {
    /// Registers nothing and connects nothing: clients are built when a step first needs
    /// them.
    pub fn new(env: &EnvConfig) -> Clients {
        let mut targets = HashMap::new();
        let mut names: HashMap<&'static str, Vec<String>> = HashMap::new();
        for (section, by_name) in &env.targets {
            for (name, t) in by_name {
                targets.insert(
                    (*section, name.clone()),
                    (t.clone(), tokio::sync::OnceCell::new()),
                );
                names.entry(*section).or_default().push(name.clone());
            }
        }
        Clients {
            http: http::HttpClients::default(),
            targets,
            names,
            implicit_kube: (
                Arc::new(crate::config::KubeTarget::default()),
                tokio::sync::OnceCell::new(),
            ),
        }
    }

    /// The shared client for plain URLs (`insecure`: certificates are not checked).
    pub fn http(&self, insecure: bool) -> Result<reqwest::Client, ActionError> {
        self.http.client(insecure)
    }

    /// The client of target `name` of kind `section`, built the first time (once, however
    /// many steps ask at the same moment).
    pub async fn get<C: Send + Sync + 'static>(
        &self,
        section: &'static str,
        name: &str,
    ) -> Result<Arc<C>, ActionError> {
        let Some(target) = self.targets.get(&(section, name.to_string())) else {
            return Err(self.unknown(section, name));
        };
        self.built(target, section, name).await
    }

    async fn built<C: Send + Sync + 'static>(
        &self,
        (config, cell): &Target,
        section: &str,
        name: &str,
    ) -> Result<Arc<C>, ActionError> {
        let client = cell
            .get_or_init(|| async { config.build(name, self).await.map_err(|e| e.to_string()) })
            .await
            .clone()
            .map_err(ActionError::Config)?;
        client.downcast::<C>().map_err(|_| {
            ActionError::Config(format!(
                "{section} target `{name}`: its client is not the kind this action uses"
            ))
        })
    }

    pub async fn http_target(&self, name: &str) -> Result<Arc<ResolvedHttpTarget>, ActionError> {
        self.get("http", name).await
    }

    pub async fn postgres(&self, name: &str) -> Result<Arc<PgPool>, ActionError> {
        self.get("postgres", name).await
    }

    pub async fn redis(&self, name: &str) -> Result<Arc<RedisPool>, ActionError> {
        self.get("redis", name).await
    }

    /// The environment's cluster: its `kubernetes:` section, else the kubeconfig's
    /// current context (or the in-cluster service account).
    pub async fn kube(&self) -> Result<Arc<kube::KubeClient>, ActionError> {
        match self.targets.get(&("kubernetes", "default".to_string())) {
            Some(t) => self.built(t, "kubernetes", "default").await,
            None => {
                self.built(&self.implicit_kube, "kubernetes", "default")
                    .await
            }
        }
    }

    fn unknown(&self, section: &str, name: &str) -> ActionError {
        let mut known: Vec<&str> = self
            .names
            .get(section)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        known.sort_unstable();
        let hint = if known.is_empty() {
            match kinds::kind(section).and_then(|k| k.default_hint()) {
                Some(h) if name == "default" => {
                    format!("; configure `{section}:` targets in opsctl.yaml or {h}")
                }
                _ => format!("; configure `{section}:` targets in opsctl.yaml"),
            }
        } else {
            crate::suggest::help(name, known.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_else(|| format!("; configured: {}", known.join(", ")))
        };
        ActionError::Config(format!(
            "no {section} target `{name}` in this environment{hint}"
        ))
    }
}

/// Registers every credential the environment's targets can reach (bearer tokens, URL
/// passwords), before anything runs or prints: secrets are masked even in messages
/// produced before a client is built.
pub fn register_env_secrets(env: &EnvConfig, redactor: &Redactor) {
    for t in env.targets.values().flat_map(|m| m.values()) {
        t.register_secrets(redactor);
    }
}
