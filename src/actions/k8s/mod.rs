//! `k8s.*`: Kubernetes actions, one file each. Their arguments, outputs and mutation rules
//! are complete (lint, dry run and plan use them); execution needs the cluster client,
//! which is not part of this build yet, so a run reports that plainly as an error.
//! What the actions share lives here.

mod annotate;
mod events;
mod get;
mod logs;
mod pods;
mod rollout;
mod scale;
mod secret;

pub use annotate::Annotate;
pub use events::Events;
pub use get::Get;
pub use logs::Logs;
pub use pods::Pods;
pub use rollout::Rollout;
pub use scale::Scale;
pub use secret::Secret;

use super::ActionError;
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

/// What a run reports for a Kubernetes step in this build.
pub(crate) fn unavailable(action: &str) -> ActionError {
    ActionError::Unsupported(format!(
        "{action}: Kubernetes actions are not available in this build of opsctl (lint, dry run and plan support them)"
    ))
}
