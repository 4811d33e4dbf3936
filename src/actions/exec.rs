//! `exec`: run a local command (argv, no shell unless `shell` is used). The process gets
//! its own process group so a timeout or Ctrl-C kills everything it started.

use std::process::Stdio;
use std::time::Instant;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use super::spec::{ActionSpec, ArgSpec, ArgType, Exclusive, OutputSpec};
use super::{Action, ActionError, Outputs, arg_bool, latency_ms, parse_args};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Exec;

/// Output beyond this per stream is dropped (the step still sees the first part).
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long output is still read once the command's process group has ended.
const READ_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

static SPEC: ActionSpec = ActionSpec {
    name: "exec",
    summary: "Run a local command.",
    args: &[
        ArgSpec {
            name: "command",
            ty: ArgType::StrList,
            required: false,
            doc: "Program and arguments, run without a shell.",
        },
        ArgSpec {
            name: "shell",
            ty: ArgType::Str,
            required: false,
            doc: "A script for `sh -c` (opt-in).",
        },
        ArgSpec {
            name: "env",
            ty: ArgType::StrMap,
            required: false,
            doc: "Extra environment variables.",
        },
        ArgSpec {
            name: "dir",
            ty: ArgType::Str,
            required: false,
            doc: "Working directory.",
        },
        ArgSpec {
            name: "readonly",
            ty: ArgType::Bool,
            required: false,
            doc: "Declares the command changes nothing, so it needs no confirmation (false).",
        },
    ],
    outputs: &[
        OutputSpec {
            name: "exit_code",
            doc: "Exit code (null if killed by a signal).",
        },
        OutputSpec {
            name: "stdout",
            doc: "Standard output.",
        },
        OutputSpec {
            name: "stderr",
            doc: "Standard error.",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Run time.",
        },
    ],
    exclusive: &[Exclusive {
        names: &["command", "shell"],
        required: true,
    }],
    mutating: "unless `readonly: true`",
    default_expect: "exit_code == 0",
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: Option<Vec<Value>>,
    shell: Option<String>,
    #[serde(default)]
    env: Map<String, Value>,
    dir: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    readonly: bool,
}

impl Action for Exec {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        super::spec::check_not_empty(&SPEC, args, "command", cx);
    }

    fn mutates(&self, args: &Value) -> bool {
        !arg_bool(args, "readonly", false)
    }

    fn describe(&self, args: &Value, _env: &EnvConfig) -> String {
        if let Some(s) = args.get("shell").and_then(Value::as_str) {
            return format!("sh -c {}", shell_quote(s));
        }
        let argv: Vec<String> = args
            .get("command")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| shell_quote(&crate::expr::text_of(v)))
                    .collect()
            })
            .unwrap_or_default();
        format!("run {}", argv.join(" "))
    }

    fn default_failure(&self, outputs: &Outputs) -> Option<String> {
        match outputs.get("exit_code").and_then(Value::as_i64) {
            Some(0) => None,
            Some(code) => Some(format!("exit code {code} (expected 0)")),
            None => Some("killed by a signal".to_string()),
        }
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StepContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let a: Args = parse_args("exec", args)?;
            let argv: Vec<String> = match (&a.command, &a.shell) {
                (Some(cmd), _) => cmd.iter().map(crate::expr::text_of).collect(),
                (None, Some(script)) => vec!["sh".into(), "-c".into(), script.clone()],
                (None, None) => {
                    return Err(ActionError::InvalidArgs(
                        "exec: needs `command` or `shell`".into(),
                    ));
                }
            };
            let Some((program, rest)) = argv.split_first() else {
                return Err(ActionError::InvalidArgs("exec: `command` is empty".into()));
            };
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(rest)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            for (k, v) in &a.env {
                cmd.env(k, crate::expr::text_of(v));
            }
            if let Some(dir) = &a.dir {
                cmd.current_dir(dir);
            }
            let started = Instant::now();
            let mut child = cmd
                .spawn()
                .map_err(|e| ActionError::Unreachable(format!("cannot start `{program}`: {e}")))?;
            // Dropped on timeout or cancellation: kills the whole process group.
            let group = child.id().map(ProcessGroup);
            let stdout = tokio::spawn(read_capped(child.stdout.take()));
            let stderr = tokio::spawn(read_capped(child.stderr.take()));
            let status = child.wait().await;
            // The step owns what it started: background children still in the group end
            // with it, which also closes the pipes they held open.
            drop(group);
            let (out, err) = tokio::join!(finish_reading(stdout), finish_reading(stderr));
            let status = status.map_err(|e| ActionError::Failed(format!("`{program}`: {e}")))?;
            let mut outputs = Outputs::new();
            outputs.insert(
                "exit_code".into(),
                status.code().map_or(Value::Null, |c| json!(c)),
            );
            outputs.insert("stdout".into(), json!(out));
            outputs.insert("stderr".into(), json!(err));
            outputs.insert("latency_ms".into(), latency_ms(started));
            Ok(outputs)
        })
    }
}

/// The output read so far; a process outside the group (one that left it with `setsid`)
/// may hold the pipe open, so reading stops after a short grace.
async fn finish_reading(reader: tokio::task::JoinHandle<String>) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(READ_GRACE, reader).await {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            String::new()
        }
    }
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < MAX_OUTPUT_BYTES {
                    let take = n.min(MAX_OUTPUT_BYTES - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Kills the process group on drop (a no-op if it already exited).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
