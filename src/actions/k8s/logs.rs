//! `k8s.logs`: pod logs (one pod or every pod of a selector), filtered by a regex.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Dur, Exclusive, Int, OutputSpec};
use crate::actions::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Logs;

crate::action_args! {
    /// Arguments of `k8s.logs`.
    pub struct LogsArgs {
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Pod name.
        pod: Option<String>,
        /// Label selector (all matching pods).
        selector: Option<String>,
        /// Container name.
        container: Option<String>,
        /// Only lines newer than this.
        since: Option<Dur>,
        /// Last N lines per pod.
        tail: Option<Int>,
        /// Regex selecting `matches`.
        grep: Option<String>,
        /// Logs of the previous container (after a crash).
        previous: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.logs",
    summary: "Read pod logs, optionally filtered by a regex.",
    args: <LogsArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "lines",
            doc: "Log lines (with a `selector`, each starts with its pod's name and `: `).",
        },
        OutputSpec {
            name: "matches",
            doc: "Lines matching `grep`.",
        },
        OutputSpec {
            name: "match_count",
            doc: "Number of matches.",
        },
        OutputSpec {
            name: "pods",
            doc: "The pods read.",
        },
        OutputSpec {
            name: "without_previous",
            doc: "With `selector` and `previous`: the pods that had no earlier container (never restarted).",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["pod", "selector"],
        required: true,
    }],
    mutating: "never",
    default_expect: "no error answer",
};

impl ActionImpl for Logs {
    type Args = LogsArgs;
    const MAY_MUTATE: bool = false;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn kube_access(&self, a: Option<&LogsArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        let log = KubeAccess::new(KubeResource::sub::<Pod>("pods/log"), &["get"], ns);
        match a {
            // One named pod: its log only.
            Some(a) if a.pod.is_some() => vec![log],
            // A selector lists the pods first.
            _ => vec![
                KubeAccess::new(KubeResource::of::<Pod>(), &["list"], ns),
                log,
            ],
        }
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        let Some(arg) = args.get("grep") else { return };
        if let Some(Value::String(re)) = arg.value.literal() {
            if let Err(e) = crate::expr::regex(&re) {
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

    fn describe(&self, a: &LogsArgs, env: &EnvConfig) -> String {
        format!(
            "logs of {} in {}",
            a.pod.as_deref().or(a.selector.as_deref()).unwrap_or("?"),
            namespace(a.namespace.as_deref(), env)
        )
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: LogsArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let grep = match &a.grep {
                Some(re) => Some(crate::expr::regex(re).map_err(|e| {
                    ActionError::InvalidArgs(format!("k8s.logs: `grep` is not a valid regex: {e}"))
                })?),
                None => None,
            };
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &ns);
            let started = Instant::now();
            let pods: Vec<String> = match (&a.pod, &a.selector) {
                (Some(pod), _) => vec![pod.clone()],
                (None, Some(sel)) => {
                    let lp = kube::api::ListParams::default().labels(sel);
                    crate::targets::kube::read(&format!("list pods {sel} in {ns}"), || {
                        api.list(&lp)
                    })
                    .await?
                }
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect(),
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "k8s.logs: needs `pod` or `selector`".into(),
                    ));
                }
            };
            let params = kube::api::LogParams {
                container: a.container.clone(),
                previous: a.previous,
                tail_lines: a.tail.map(|t| t.0),
                since_seconds: a
                    .since
                    .map(|d| i64::try_from(d.0.as_secs()).unwrap_or(i64::MAX)),
                ..kube::api::LogParams::default()
            };
            // Every pod's log at once; a selector tags each line with its pod.
            let fetches = pods.iter().map(|pod| {
                let (api, params, ns) = (&api, &params, &ns);
                async move {
                    crate::targets::kube::read(&format!("logs of {pod} in {ns}"), || {
                        api.logs(pod, params)
                    })
                    .await
                    .map(|text| (pod.clone(), text))
                }
            });
            let tag = a.pod.is_none();
            let mut lines = Vec::new();
            let mut without = Vec::new();
            for (result, pod) in futures::future::join_all(fetches)
                .await
                .into_iter()
                .zip(&pods)
            {
                // With a selector, `previous` asks every pod for the container before its
                // last restart; a pod that never restarted has none, which is no failure.
                let (pod, text) = match result {
                    Err(e)
                        if tag && a.previous && e.kind() == crate::actions::ErrorKind::Failed =>
                    {
                        without.push(pod.clone());
                        continue;
                    }
                    other => other?,
                };
                for line in text.lines() {
                    lines.push(if tag {
                        format!("{pod}: {line}")
                    } else {
                        line.to_string()
                    });
                }
            }
            let matches: Vec<Value> = match &grep {
                Some(re) => lines
                    .iter()
                    .filter(|l| re.is_match(l))
                    .map(|l| Value::String(l.clone()))
                    .collect(),
                None => Vec::new(),
            };
            let mut out = Outputs::new();
            out.insert("match_count".into(), json!(matches.len()));
            out.insert("matches".into(), Value::Array(matches));
            out.insert("pods".into(), json!(pods));
            out.insert("without_previous".into(), json!(without));
            out.insert(
                "lines".into(),
                Value::Array(lines.into_iter().map(Value::String).collect()),
            );
            out.insert("latency_ms".into(), latency_ms(started));
            Ok(out)
        })
    }
}
