//! `k8s.*`: Kubernetes actions. Their argument schemas, outputs and mutation rules are
//! complete (lint, dry run and plan use them); execution needs the cluster client,
//! which is not part of this build yet, so a run reports that plainly as an error.

use futures::future::BoxFuture;
use serde_json::Value;

use super::spec::{ActionSpec, ArgSpec, ArgType, Exclusive, OutputSpec};
use super::{Action, ActionError, Outputs, arg_str};
use crate::config::EnvConfig;
use crate::exec::StepContext;

/// One Kubernetes action: its spec and how to tell whether arguments mutate.
pub struct K8s {
    spec: &'static ActionSpec,
    mutates: fn(&Value) -> bool,
}

const NS: ArgSpec = ArgSpec {
    name: "namespace",
    ty: ArgType::Str,
    required: false,
    doc: "Namespace (the config's by default).",
};
const LATENCY: OutputSpec = OutputSpec {
    name: "latency_ms",
    doc: "Time to answer.",
};

fn never(_: &Value) -> bool {
    false
}

fn always(_: &Value) -> bool {
    true
}

pub static K8S_PODS: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.pods",
        summary: "Summarise the pods matching a selector.",
        args: &[
            NS,
            ArgSpec {
                name: "selector",
                ty: ArgType::Str,
                required: false,
                doc: "Label selector, e.g. app=api.",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "total",
                doc: "Pods matched.",
            },
            OutputSpec {
                name: "ready",
                doc: "Pods ready.",
            },
            OutputSpec {
                name: "not_ready",
                doc: "Pods not ready.",
            },
            OutputSpec {
                name: "pending",
                doc: "Pods pending.",
            },
            OutputSpec {
                name: "crashlooping",
                doc: "Pods with a container in CrashLoopBackOff.",
            },
            OutputSpec {
                name: "oom_killed",
                doc: "Pods whose last termination was OOMKilled.",
            },
            OutputSpec {
                name: "restarts",
                doc: "Total container restarts.",
            },
            OutputSpec {
                name: "pods",
                doc: "List of {name, phase, ready, restarts, reason}.",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "never",
        default_expect: "no error answer",
    },
    mutates: never,
};

pub static K8S_GET: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.get",
        summary: "Get an object or list objects of a kind.",
        args: &[
            ArgSpec {
                name: "kind",
                ty: ArgType::Str,
                required: true,
                doc: "Kind, e.g. Deployment, pods, configmap.",
            },
            ArgSpec {
                name: "name",
                ty: ArgType::Str,
                required: false,
                doc: "Object name.",
            },
            ArgSpec {
                name: "selector",
                ty: ArgType::Str,
                required: false,
                doc: "Label selector (list).",
            },
            NS,
        ],
        outputs: &[
            OutputSpec {
                name: "object",
                doc: "The object (with `name`).",
            },
            OutputSpec {
                name: "items",
                doc: "The objects (with `selector` or neither).",
            },
            LATENCY,
        ],
        exclusive: &[Exclusive {
            names: &["name", "selector"],
            required: false,
        }],
        mutating: "never",
        default_expect: "no error answer",
    },
    mutates: never,
};

pub static K8S_EVENTS: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.events",
        summary: "Recent events of a namespace.",
        args: &[
            NS,
            ArgSpec {
                name: "since",
                ty: ArgType::Duration,
                required: false,
                doc: "How far back (15m).",
            },
            ArgSpec {
                name: "type",
                ty: ArgType::Enum(&["any", "Normal", "Warning"]),
                required: false,
                doc: "Event type (any).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "events",
                doc: "Events, newest first.",
            },
            OutputSpec {
                name: "count",
                doc: "Number of events.",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "never",
        default_expect: "no error answer",
    },
    mutates: never,
};

pub static K8S_LOGS: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.logs",
        summary: "Read pod logs, optionally filtered by a regex.",
        args: &[
            NS,
            ArgSpec {
                name: "pod",
                ty: ArgType::Str,
                required: false,
                doc: "Pod name.",
            },
            ArgSpec {
                name: "selector",
                ty: ArgType::Str,
                required: false,
                doc: "Label selector (all matching pods).",
            },
            ArgSpec {
                name: "container",
                ty: ArgType::Str,
                required: false,
                doc: "Container name.",
            },
            ArgSpec {
                name: "since",
                ty: ArgType::Duration,
                required: false,
                doc: "Only lines newer than this.",
            },
            ArgSpec {
                name: "tail",
                ty: ArgType::Int,
                required: false,
                doc: "Last N lines per pod.",
            },
            ArgSpec {
                name: "grep",
                ty: ArgType::Str,
                required: false,
                doc: "Regex selecting `matches`.",
            },
            ArgSpec {
                name: "previous",
                ty: ArgType::Bool,
                required: false,
                doc: "Logs of the previous container (after a crash).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "lines",
                doc: "Log lines.",
            },
            OutputSpec {
                name: "matches",
                doc: "Lines matching `grep`.",
            },
            OutputSpec {
                name: "match_count",
                doc: "Number of matches.",
            },
            LATENCY,
        ],
        exclusive: &[Exclusive {
            names: &["pod", "selector"],
            required: true,
        }],
        mutating: "never",
        default_expect: "no error answer",
    },
    mutates: never,
};

fn rollout_mutates(args: &Value) -> bool {
    // An action not known as text (an unresolved expression) counts as mutating.
    !matches!(arg_str(args, "action"), Some("status" | "history"))
}

pub static K8S_ROLLOUT: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.rollout",
        summary: "Rollout status, history, restart or undo of a deployment.",
        args: &[
            ArgSpec {
                name: "deployment",
                ty: ArgType::Str,
                required: true,
                doc: "Deployment name.",
            },
            NS,
            ArgSpec {
                name: "action",
                ty: ArgType::Enum(&["status", "history", "restart", "undo"]),
                required: true,
                doc: "What to do.",
            },
            ArgSpec {
                name: "to_revision",
                ty: ArgType::Int,
                required: false,
                doc: "Revision for `undo` (previous by default).",
            },
            ArgSpec {
                name: "wait",
                ty: ArgType::Bool,
                required: false,
                doc: "Wait until the rollout completes (within the step timeout).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "revision",
                doc: "Current revision.",
            },
            OutputSpec {
                name: "history",
                doc: "Revisions with their change causes.",
            },
            OutputSpec {
                name: "ready",
                doc: "Ready replicas.",
            },
            OutputSpec {
                name: "desired",
                doc: "Desired replicas.",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "restart and undo",
        default_expect: "no error answer",
    },
    mutates: rollout_mutates,
};

pub static K8S_SCALE: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.scale",
        summary: "Scale a deployment.",
        args: &[
            ArgSpec {
                name: "deployment",
                ty: ArgType::Str,
                required: true,
                doc: "Deployment name.",
            },
            NS,
            ArgSpec {
                name: "replicas",
                ty: ArgType::IntOrStr,
                required: true,
                doc: "`N`, `\"+N\"` (add) or `\"xN\"` (multiply).",
            },
            ArgSpec {
                name: "max",
                ty: ArgType::Int,
                required: false,
                doc: "Never scale above this (guard).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "from",
                doc: "Replicas before.",
            },
            OutputSpec {
                name: "to",
                doc: "Replicas after.",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "yes",
        default_expect: "no error answer",
    },
    mutates: always,
};

pub static K8S_ANNOTATE: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.annotate",
        summary: "Set or remove annotations of an object.",
        args: &[
            ArgSpec {
                name: "kind",
                ty: ArgType::Str,
                required: true,
                doc: "Kind of the object.",
            },
            ArgSpec {
                name: "name",
                ty: ArgType::Str,
                required: true,
                doc: "Object name.",
            },
            NS,
            ArgSpec {
                name: "annotations",
                ty: ArgType::Map,
                required: true,
                doc: "Annotations to set (a null value removes).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "object",
                doc: "The object after the change.",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "yes",
        default_expect: "no error answer",
    },
    mutates: always,
};

fn secret_mutates(args: &Value) -> bool {
    arg_str(args, "action") != Some("check")
}

pub static K8S_SECRET: K8s = K8s {
    spec: &ActionSpec {
        name: "k8s.secret",
        summary: "Check a secret's keys, or set its data (values never shown).",
        args: &[
            ArgSpec {
                name: "name",
                ty: ArgType::Str,
                required: true,
                doc: "Secret name.",
            },
            NS,
            ArgSpec {
                name: "action",
                ty: ArgType::Enum(&["check", "set"]),
                required: true,
                doc: "check or set.",
            },
            ArgSpec {
                name: "data",
                ty: ArgType::StrMap,
                required: false,
                doc: "Keys and values for `set` (values are secrets).",
            },
        ],
        outputs: &[
            OutputSpec {
                name: "exists",
                doc: "Whether the secret exists.",
            },
            OutputSpec {
                name: "keys",
                doc: "Its keys (never the values).",
            },
            LATENCY,
        ],
        exclusive: &[],
        mutating: "set",
        default_expect: "no error answer",
    },
    mutates: secret_mutates,
};

impl Action for K8s {
    fn spec(&self) -> &'static ActionSpec {
        self.spec
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        if self.spec.name == "k8s.logs" {
            if let Some(arg) = args.get("grep") {
                if let Some(Value::String(re)) = arg.value.literal() {
                    if let Err(e) = regex::Regex::new(&re) {
                        cx.error(
                            crate::rules::Rule::InvalidArgument,
                            format!(
                                "`grep` is not a valid regex: {}",
                                e.to_string().lines().last().unwrap_or("")
                            ),
                            arg.value.span(),
                            "invalid regex",
                        );
                    }
                }
            }
        }
        if self.spec.name == "k8s.secret"
            && args.literal_str("action").as_deref() == Some("set")
            && args.get("data").is_none()
        {
            cx.error(
                crate::rules::Rule::MissingArgument,
                "`k8s.secret` with `action: set` needs `data`",
                args.span,
                "missing data",
            );
        }
        if self.spec.name == "k8s.scale" {
            if let Some(arg) = args.get("replicas") {
                if let Some(Value::String(s)) = arg.value.literal() {
                    if parse_replicas(&s).is_none() {
                        cx.error(
                            crate::rules::Rule::InvalidArgument,
                            format!("`replicas` must be N, \"+N\" or \"xN\", found `{s}`"),
                            arg.value.span(),
                            "invalid replicas",
                        );
                    }
                }
            }
        }
    }

    fn mutates(&self, args: &Value) -> bool {
        (self.mutates)(args)
    }

    fn describe(&self, args: &Value, env: &EnvConfig) -> String {
        let ns = arg_str(args, "namespace")
            .map(str::to_string)
            .or_else(|| env.kubernetes.namespace.clone())
            .unwrap_or_else(|| "default".into());
        let s = |k: &str| arg_str(args, k).unwrap_or("?").to_string();
        match self.spec.name {
            "k8s.pods" => format!(
                "pods {} in {ns}",
                arg_str(args, "selector").unwrap_or("(all)")
            ),
            "k8s.get" => format!(
                "get {} {} in {ns}",
                s("kind"),
                arg_str(args, "name")
                    .or(arg_str(args, "selector"))
                    .unwrap_or("(all)")
            ),
            "k8s.events" => format!(
                "events in {ns} since {}",
                arg_str(args, "since").unwrap_or("15m")
            ),
            "k8s.logs" => format!(
                "logs of {} in {ns}",
                arg_str(args, "pod")
                    .or(arg_str(args, "selector"))
                    .unwrap_or("?")
            ),
            "k8s.rollout" => format!(
                "rollout {} deployment/{} in {ns}",
                s("action"),
                s("deployment")
            ),
            "k8s.scale" => format!(
                "scale deployment/{} in {ns} to {}",
                s("deployment"),
                args.get("replicas")
                    .map_or("?".into(), crate::expr::text_of)
            ),
            "k8s.annotate" => format!("annotate {} {} in {ns}", s("kind"), s("name")),
            "k8s.secret" => format!("{} secret {} in {ns}", s("action"), s("name")),
            other => other.to_string(),
        }
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        _args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            Err(ActionError::Unsupported(format!(
                "{}: Kubernetes actions are not available in this build of opsctl (lint, dry run and plan support them)",
                self.spec.name
            )))
        })
    }
}

/// `N`, `+N` or `xN`.
pub fn parse_replicas(s: &str) -> Option<(char, u32)> {
    let s = s.trim();
    if let Some(n) = s.strip_prefix('+') {
        return n.parse().ok().map(|n| ('+', n));
    }
    if let Some(n) = s.strip_prefix('x') {
        return n.parse().ok().map(|n| ('x', n));
    }
    s.parse().ok().map(|n| ('=', n))
}
