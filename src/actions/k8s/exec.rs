//! `k8s.exec`: run a command in a pod's container over the exec subresource (a WebSocket,
//! `v5.channel.k8s.io` with `v4` as fallback), what the seeds do with `kubectl exec … psql |
//! redis-cli | curl`. Mutating unless `readonly: true`, like `exec`. The step's timeout
//! closes the stream.

use std::time::Instant;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::{LATENCY, namespace};
use crate::actions::access::{KubeAccess, KubeResource};
use crate::actions::spec::{ActionSpec, ArgsSchema, Argv, Exclusive, OutputSpec};
use crate::actions::{ActionError, ActionImpl, ErrorKind, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Exec;

crate::action_args! {
    /// Arguments of `k8s.exec`.
    pub struct ExecArgs {
        /// The pod, by name.
        pod: Option<String>,
        /// Or a label selector: the first ready pod (by name) of those it matches.
        selector: Option<String>,
        /// Container (the pod's first by default).
        container: Option<String>,
        /// Namespace (the config's by default).
        namespace: Option<String>,
        /// Program and arguments, run in the container without a shell. Never a secret (the API server's audit log records it).
        command: Argv,
        /// Declares the command changes nothing, so it needs no confirmation (false).
        readonly: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "k8s.exec",
    summary: "Run a command in a pod's container (kubectl exec).",
    args: <ExecArgs as ArgsSchema>::ARGS,
    outputs: &[
        OutputSpec {
            name: "exit_code",
            doc: "Exit code of the command.",
        },
        OutputSpec {
            name: "stdout",
            doc: "Standard output (at most 1 MiB).",
        },
        OutputSpec {
            name: "stderr",
            doc: "Standard error (at most 1 MiB).",
        },
        OutputSpec {
            name: "json",
            doc: "Standard output parsed as JSON (null when it is not JSON).",
        },
        OutputSpec {
            name: "pod",
            doc: "The pod it ran in.",
        },
        LATENCY,
    ],
    exclusive: &[Exclusive {
        names: &["pod", "selector"],
        required: true,
    }],
    mutating: "unless `readonly: true`",
    default_expect: "exit_code == 0",
};

impl ActionImpl for Exec {
    type Args = ExecArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        crate::actions::spec::check_not_empty(&SPEC, args, "command", cx);
    }

    fn mutates(&self, a: &ExecArgs) -> bool {
        !a.readonly
    }

    fn kube_access(&self, a: Option<&ExecArgs>) -> Vec<KubeAccess> {
        let ns = a.and_then(|a| a.namespace.as_deref());
        // The exec subresource is opened with a GET upgraded to a WebSocket, which RBAC
        // authorises as `create` (and `get` on older servers).
        let exec = KubeAccess::new(
            KubeResource::sub::<Pod>("pods/exec"),
            &["create", "get"],
            ns,
        );
        match a {
            Some(a) if a.pod.is_some() => vec![exec],
            _ => vec![
                KubeAccess::new(KubeResource::of::<Pod>(), &["list"], ns),
                exec,
            ],
        }
    }

    fn describe(&self, a: &ExecArgs, env: &EnvConfig) -> String {
        let target = a
            .pod
            .clone()
            .or_else(|| a.selector.as_ref().map(|s| format!("a ready pod of {s}")))
            .unwrap_or_default();
        let argv: Vec<String> = a
            .command
            .0
            .iter()
            .map(|v| crate::expr::shell::quote(v))
            .collect();
        format!(
            "exec in {target} ({}): {}",
            namespace(a.namespace.as_deref(), env),
            argv.join(" ")
        )
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        match outputs.get("exit_code").and_then(Value::as_i64) {
            Some(0) => None,
            Some(code) => Some(format!("exit code {code} (expected 0)")),
            None => Some("the command's exit code is unknown".to_string()),
        }
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepContext,
        a: ExecArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            a.command.check_no_secret("k8s.exec", cx.redactor())?;
            if a.command.0.is_empty() {
                return Err(ActionError::InvalidArgs(
                    "k8s.exec: `command` is empty".into(),
                ));
            }
            let kube = cx.clients().kube().await?;
            let ns = kube.namespace_or(a.namespace.as_deref());
            let started = Instant::now();
            let pod = match (&a.pod, &a.selector) {
                (Some(p), _) => p.clone(),
                (None, Some(sel)) => kube.ready_pod(&ns, sel).await?,
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "k8s.exec: needs `pod` or `selector`".into(),
                    ));
                }
            };
            let api: kube::Api<Pod> = kube::Api::namespaced(kube.client.clone(), &ns);
            let mut params = kube::api::AttachParams::default()
                .stdin(false)
                .stdout(true)
                .stderr(true);
            if let Some(c) = &a.container {
                params = params.container(c.clone());
            }
            let mut attached = api
                .exec(&pod, a.command.0.clone(), &params)
                .await
                .map_err(|e| {
                    crate::targets::kube::error(&format!("exec in pod {pod} in {ns}"), e)
                })?;
            let stdout = tokio::spawn(crate::actions::exec::read_capped(attached.stdout()));
            let stderr = tokio::spawn(crate::actions::exec::read_capped(attached.stderr()));
            let status = match attached.take_status() {
                Some(s) => s.await,
                None => None,
            };
            let out = stdout.await.unwrap_or_default();
            let err = stderr.await.unwrap_or_default();
            let _ = attached.join().await;
            let exit_code = exit_code(status.as_ref()).map_err(|message| {
                ActionError::new(
                    ErrorKind::Failed,
                    format!("exec in pod {pod} in {ns}: {message}"),
                )
            })?;
            let out = cx
                .redactor()
                .redact_cut(&out, crate::actions::exec::MAX_OUTPUT_BYTES);
            let err = cx
                .redactor()
                .redact_cut(&err, crate::actions::exec::MAX_OUTPUT_BYTES);
            let mut outputs = Outputs::new();
            outputs.insert("exit_code".into(), json!(exit_code));
            outputs.insert("json".into(), crate::actions::exec::stdout_json(&out));
            outputs.insert("stdout".into(), json!(out));
            outputs.insert("stderr".into(), json!(err));
            outputs.insert("pod".into(), json!(pod));
            outputs.insert("latency_ms".into(), latency_ms(started));
            Ok(outputs)
        })
    }
}

/// The exit code the exec stream's final `Status` reports: `Success` is 0; a failure with
/// reason `NonZeroExitCode` carries the code in a cause of reason `ExitCode`; any other
/// failure (the container could not run the command) is an error with the server's message.
fn exit_code(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> Result<i64, String> {
    let Some(status) = status else {
        return Err("the stream ended without the command's exit status".to_string());
    };
    match status.status.as_deref() {
        Some("Success") => Ok(0),
        _ if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse().ok())
            .ok_or_else(|| "a non-zero exit without its code".to_string()),
        _ => Err(status
            .message
            .clone()
            .unwrap_or_else(|| "the command failed to run".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    fn status(v: serde_json::Value) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
        serde_json::from_value(v).expect("status")
    }

    #[test]
    fn exit_codes_as_the_kubelet_reports_them() {
        assert_eq!(
            exit_code(Some(&status(serde_json::json!({"status": "Success"})))),
            Ok(0)
        );
        let three = status(
            serde_json::json!({"status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}),
        );
        assert_eq!(exit_code(Some(&three)), Ok(3));
        let missing = status(
            serde_json::json!({"status": "Failure", "reason": "InternalError",
            "message": "executable file not found in $PATH"}),
        );
        assert_eq!(
            exit_code(Some(&missing)),
            Err("executable file not found in $PATH".to_string())
        );
        assert!(exit_code(None).is_err());
    }
}
