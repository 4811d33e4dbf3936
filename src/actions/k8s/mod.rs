//! `k8s.*`: Kubernetes actions, one file each, through the run's one cluster client
//! (`targets::kube`). Mutations take the server's own dry run in `opsctl plan`. What the
//! actions share lives here.

mod annotate;
mod apply;
mod delete;
mod describe;
mod events;
mod exec;
mod get;
mod logs;
mod node;
mod patch;
mod pods;
mod rollout;
mod scale;
mod secret;
mod top;

pub use annotate::Annotate;
pub use apply::Apply;
pub use delete::Delete;
pub use describe::Describe;
pub use events::Events;
pub use exec::Exec;
pub use get::Get;
pub use logs::Logs;
pub use node::{Cordon, Drain};
pub use patch::PatchAction;
pub use pods::Pods;
pub use rollout::Rollout;
pub use scale::Scale;
pub use secret::Secret;
pub use top::Top;

use super::spec::OutputSpec;
use crate::config::EnvConfig;

/// `latency_ms`, which every Kubernetes action outputs.
pub(crate) const LATENCY: OutputSpec = OutputSpec {
    name: "latency_ms",
    doc: "Time to answer.",
};

/// The namespace a step acts in: its own, else the environment's, else `default`.
pub(crate) fn namespace(ns: Option<&str>, env: &EnvConfig) -> String {
    ns.map(str::to_string)
        .or_else(|| env.kubernetes().and_then(|k| k.namespace.clone()))
        .unwrap_or_else(|| "default".into())
}
