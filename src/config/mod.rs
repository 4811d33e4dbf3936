//! `opsctl.yaml` (contract section 6): where runbooks live, and per environment the
//! vars and targets (HTTP, Postgres, Redis, Kubernetes) that steps talk to.

mod load;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::rules::Rule;
use crate::source::{SourceFile, Span};
use crate::targets::kinds::{PostgresTarget, RedisTarget, TargetConfig};

pub use load::{load_config, load_db, load_http, load_kubernetes, named_targets};

pub const CONFIG_NAMES: &[&str] = &["opsctl.yaml", "opsctl.yml"];
/// Default connections per Postgres/Redis target.
pub const DEFAULT_POOL: usize = 10;

/// The loaded config file (or the implicit one when there is none).
#[derive(Debug, Default)]
pub struct Config {
    pub file: Option<Arc<SourceFile>>,
    /// Directories searched for runbook names, absolute or relative to the cwd.
    pub runbook_dirs: Vec<PathBuf>,
    pub default_env: Option<String>,
    pub envs: BTreeMap<String, EnvConfig>,
}

/// Where a target's address comes from.
#[derive(Clone, Debug)]
pub enum Address {
    /// A literal in the file (a password in it is a secret).
    Literal(String),
    /// The name of an environment variable holding the address.
    Env(String),
}

impl Address {
    /// Reads the address; an unset variable is a config error naming it.
    pub fn resolve(&self, what: &str) -> Result<String, String> {
        match self {
            Address::Literal(s) => Ok(s.clone()),
            Address::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(v),
                _ => Err(format!("{what}: environment variable {var} is not set")),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Address::Literal(_) => "url in config".to_string(),
            Address::Env(var) => format!("${var}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpTarget {
    pub name: String,
    pub base_url: Address,
    pub bearer_env: Option<String>,
    pub headers: Vec<(String, String)>,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// Reached through the cluster (`via: { k8s: ... }`).
    pub via: Option<Via>,
}

/// A Postgres or Redis target.
#[derive(Clone, Debug)]
pub struct DbTarget {
    pub name: String,
    pub url: Address,
    pub pool: usize,
    pub ca_file: Option<PathBuf>,
    /// Reached through the cluster (`via: { k8s: ... }`).
    pub via: Option<Via>,
}

/// `via: { k8s: { service|pod|selector: ..., namespace: NS, port: N } }`: a target reached
/// through an API-server port-forward to a ready pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub to: ViaTo,
    /// The environment's namespace when not given.
    pub namespace: Option<String>,
    /// The port on the pod (a Service's port, mapped to its target port); the URL's port
    /// when not given.
    pub port: Option<u16>,
}

/// What a port-forward goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViaTo {
    /// A Service: a ready pod behind its selector, its port mapped to the target port.
    Service(String),
    Pod(String),
    /// The first ready pod (by name) of a label selector.
    Selector(String),
}

#[derive(Clone, Debug, Default)]
pub struct KubeTarget {
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// One environment: vars, and targets by kind (section) and name.
#[derive(Clone, Debug, Default)]
pub struct EnvConfig {
    pub name: String,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub targets: BTreeMap<&'static str, BTreeMap<String, Arc<dyn TargetConfig>>>,
}

impl EnvConfig {
    /// The implicit environment without a config file: `DATABASE_URL` and `REDIS_URL`
    /// become the `default` targets.
    pub fn implicit() -> EnvConfig {
        let mut env = EnvConfig {
            name: "default".to_string(),
            ..EnvConfig::default()
        };
        let db = |var: &str| DbTarget {
            name: "default".to_string(),
            url: Address::Env(var.to_string()),
            pool: DEFAULT_POOL,
            ca_file: None,
            via: None,
        };
        if std::env::var_os("DATABASE_URL").is_some() {
            env.add_target(
                "postgres",
                "default",
                Arc::new(PostgresTarget(db("DATABASE_URL"))),
            );
        }
        if std::env::var_os("REDIS_URL").is_some() {
            env.add_target("redis", "default", Arc::new(RedisTarget(db("REDIS_URL"))));
        }
        env
    }

    pub fn add_target(&mut self, section: &'static str, name: &str, t: Arc<dyn TargetConfig>) {
        self.targets
            .entry(section)
            .or_default()
            .insert(name.to_string(), t);
    }

    /// The targets of one kind.
    pub fn targets_of(
        &self,
        section: &str,
    ) -> impl Iterator<Item = (&String, &Arc<dyn TargetConfig>)> {
        self.targets.get(section).into_iter().flatten()
    }

    /// A target's config, as its kind's type.
    pub fn target<T: 'static>(&self, section: &str, name: &str) -> Option<&T> {
        self.targets
            .get(section)?
            .get(name)?
            .as_any()
            .downcast_ref::<T>()
    }

    /// The environment's cluster settings (`kubernetes:`), if any.
    pub fn kubernetes(&self) -> Option<&KubeTarget> {
        self.target::<KubeTarget>("kubernetes", "default")
    }
}

impl Config {
    /// Finds the config: `--config` wins, else `opsctl.yaml` in the cwd and upward, else
    /// `$XDG_CONFIG_HOME/opsctl/`. `Ok(None)` when there is none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<PathBuf>, Diagnostic> {
        if let Some(p) = explicit {
            if !p.is_file() {
                return Err(Diagnostic::error(
                    Rule::Io,
                    format!("config file {} not found", p.display()),
                )
                .in_file(p));
            }
            return Ok(Some(p.to_path_buf()));
        }
        if let Ok(cwd) = std::env::current_dir() {
            for dir in cwd.ancestors() {
                for name in CONFIG_NAMES {
                    let candidate = dir.join(name);
                    if candidate.is_file() {
                        return Ok(Some(candidate));
                    }
                }
            }
        }
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(base) = xdg {
            for name in CONFIG_NAMES {
                let candidate = base.join("opsctl").join(name);
                if candidate.is_file() {
                    return Ok(Some(candidate));
                }
            }
        }
        Ok(None)
    }

    /// Discovers and loads the config; problems come back as diagnostics.
    pub fn load(explicit: Option<&Path>) -> Result<Config, Diagnostics> {
        let mut diags = Diagnostics::new();
        match Config::discover(explicit) {
            Err(d) => {
                diags.push(d);
                Err(diags)
            }
            Ok(None) => Ok(Config::implicit()),
            Ok(Some(path)) => {
                let file = match crate::library::read_source(&path) {
                    Ok(f) => f,
                    Err(d) => {
                        diags.push(d);
                        return Err(diags);
                    }
                };
                let config = load_config(&file, &mut diags);
                if diags.has_errors() {
                    Err(diags)
                } else {
                    Ok(config)
                }
            }
        }
    }

    /// No config file: runbooks from `./runbooks`.
    pub fn implicit() -> Config {
        Config {
            file: None,
            runbook_dirs: vec![PathBuf::from("runbooks")],
            default_env: None,
            envs: BTreeMap::new(),
        }
    }

    /// The environment to use: `--env`, else `default_env`, else the only one.
    pub fn select_env(&self, requested: Option<&str>) -> Result<EnvConfig, Diagnostic> {
        if self.file.is_none() {
            return match requested {
                None | Some("default") => Ok(EnvConfig::implicit()),
                Some(name) => Err(Diagnostic::error(
                    Rule::InvalidValue,
                    format!("environment `{name}` requested but there is no opsctl.yaml"),
                )
                .help("create opsctl.yaml with an `envs:` section, or pass --config FILE")),
            };
        }
        let name = match (requested, &self.default_env) {
            (Some(n), _) => n.to_string(),
            (None, Some(d)) => d.clone(),
            (None, None) if self.envs.len() == 1 => {
                self.envs.keys().next().cloned().unwrap_or_default()
            }
            (None, None) if self.envs.is_empty() => return Ok(EnvConfig::implicit()),
            (None, None) => {
                return Err(Diagnostic::error(
                    Rule::MissingKey,
                    "several environments are configured and none is selected",
                )
                .help(format!(
                    "pass --env with one of: {} (or set default_env)",
                    self.envs.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        };
        self.envs.get(&name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.envs.keys().map(String::as_str).collect();
            Diagnostic::error(Rule::InvalidValue, format!("unknown environment `{name}`")).help(
                crate::suggest::help(&name, known.iter().copied())
                    .unwrap_or_else(|| format!("configured environments: {}", known.join(", "))),
            )
        })
    }

    /// Every target name of a kind (section) across all environments (for lint).
    pub fn target_names(&self, section: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .envs
            .values()
            .flat_map(|e| e.targets_of(section).map(|(n, _)| n.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Paths are shown relative to the cwd when they are under it.
pub fn display_path(path: &Path) -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.to_path_buf();
        }
    }
    path.to_path_buf()
}

/// A span-less config problem is still pointed at the file.
pub fn config_error(file: &Arc<SourceFile>, rule: Rule, message: String, span: Span) -> Diagnostic {
    Diagnostic::error(rule, message).at(file, span, "")
}
