//! `exec`: run a local command (argv, no shell unless `shell` is used). The process gets
//! its own process group so a timeout or Ctrl-C kills everything it started.

use std::process::Stdio;
use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use super::spec::{ActionSpec, ArgsSchema, Argv, Exclusive, OutputSpec, StrMap};
use super::{ActionError, ActionImpl, Outputs, latency_ms};
use crate::config::EnvConfig;
use crate::exec::StepContext;

pub struct Exec;

/// Output beyond this per stream is dropped (the step still sees the first part).
pub(crate) const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long output is still read once the command's process group has ended.
const READ_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

crate::action_args! {
    /// Arguments of `exec`.
    pub struct ExecArgs {
        /// Program and arguments, run without a shell. Never a secret: pass those through `env` or `stdin`.
        command: Option<Argv>,
        /// A script for `sh -c` (opt-in); `${{ }}` values reach it as environment variables, never as script text.
        shell: Option<Script>,
        /// Environment variables of the command. It gets only PATH, HOME, LANG, TZ, KUBECONFIG and the AWS profile and region (AWS_PROFILE, AWS_REGION, AWS_DEFAULT_REGION, AWS_CONFIG_FILE) from opsctl's own environment, never a credential, plus these. `NAME_env: VAR` passes opsctl's `$VAR` as `NAME` (a secret: masked everywhere).
        env: StrMap,
        /// Working directory.
        cwd: Option<String>,
        /// Working directory (the same as `cwd`).
        dir: Option<String>,
        /// Text fed to the command's standard input (then closed).
        stdin: Option<String>,
        /// Declares the command changes nothing, so it needs no confirmation (false).
        readonly: bool,
        /// The command prints a secret (an admin CLI that creates a key): its standard output, the JSON strings under a credential's name (key, secret, token, password; not ids) or else each long word are masked in every output, record and page, and still passed on whole (false).
        secret_output: bool,
    }
}

static SPEC: ActionSpec = ActionSpec {
    name: "exec",
    summary: "Run a local command.",
    args: <ExecArgs as ArgsSchema>::ARGS,
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
            name: "json",
            doc: "Standard output parsed as JSON (null when it is not JSON).",
        },
        OutputSpec {
            name: "latency_ms",
            doc: "Run time.",
        },
    ],
    exclusive: &[
        Exclusive {
            names: &["command", "shell"],
            required: true,
        },
        Exclusive {
            names: &["cwd", "dir"],
            required: false,
        },
    ],
    mutating: "unless `readonly: true`",
    default_expect: "exit_code == 0",
};

/// Variables a command inherits from opsctl's environment: where things are and which
/// cluster, cloud profile and region an admin CLI (kubectl, helm, aws) talks to, never a
/// credential. Everything else (tokens and keys of the shell that started opsctl) stays
/// out; a step passes one on with `NAME_env: VAR`, masked.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "TZ",
    "KUBECONFIG",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
];

/// A `shell:` argument: a plain script, or one with inserted values (rendered by
/// [`crate::expr::Template::render_shell`]).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Script {
    Plain(String),
    WithValues {
        script: String,
        values: Map<String, Value>,
    },
}

impl super::spec::ArgKind for Script {
    const TY: super::spec::ArgType = super::spec::ArgType::ShellScript;
}

impl Script {
    fn parts(&self) -> (&str, Option<&Map<String, Value>>) {
        match self {
            Script::Plain(s) => (s, None),
            Script::WithValues { script, values } => (script, Some(values)),
        }
    }
}

impl ActionImpl for Exec {
    type Args = ExecArgs;

    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn check(&self, args: &crate::model::Args, cx: &mut crate::loader::Cx<'_>) {
        super::spec::check_not_empty(&SPEC, args, "command", cx);
        if let Some(arg) = args.get("shell").filter(|a| a.value.is_template()) {
            cx.push(
                crate::diagnostic::Diagnostic::warning(
                    crate::rules::Rule::ShellInterpolation,
                    "`shell:` script with `${{ }}` values: each value is passed as an environment variable ($OPSCTL_VALUE_1, ...), never as script text",
                )
                .at(cx.file, arg.value.span(), "values inserted here")
                .help("prefer `command: [program, arg, ...]`, which runs without a shell"),
            );
        }
    }

    fn mutates(&self, a: &ExecArgs) -> bool {
        !a.readonly
    }

    fn describe(&self, a: &ExecArgs, _env: &EnvConfig) -> String {
        if let Some(script) = &a.shell {
            let shown = match script.parts() {
                (text, Some(values)) => crate::expr::shell::display(text, values),
                (text, None) => text.to_string(),
            };
            return format!("sh -c {}", crate::expr::shell::quote(&shown));
        }
        let argv: Vec<String> = a
            .command
            .iter()
            .flat_map(|c| &c.0)
            .map(|v| crate::expr::shell::quote(v))
            .collect();
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
        cx: &'a StepContext,
        a: ExecArgs,
    ) -> BoxFuture<'a, Result<Outputs, ActionError>> {
        Box::pin(async move {
            let mut values = None;
            let argv: Vec<String> = match (&a.command, &a.shell) {
                (Some(cmd), _) => {
                    cmd.check_no_secret("exec", cx.redactor())?;
                    cmd.0.clone()
                }
                (None, Some(script)) => {
                    let (text, v) = script.parts();
                    values = v;
                    vec!["sh".into(), "-c".into(), text.to_string()]
                }
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
                .stdin(if a.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true)
                .env_clear();
            for name in INHERITED_ENV {
                if let Some(v) = std::env::var_os(name) {
                    cmd.env(name, v);
                }
            }
            for (k, v) in &a.env.0 {
                match k.strip_suffix("_env").filter(|name| !name.is_empty()) {
                    // Registered as a secret before the run (`Redactor::add_reachable`).
                    Some(name) => {
                        let value = std::env::var(v).map_err(|_| {
                            ActionError::Config(format!(
                                "exec: env `{k}`: environment variable {v} is not set"
                            ))
                        })?;
                        cmd.env(name, value);
                    }
                    None => {
                        cmd.env(k, v);
                    }
                }
            }
            for (k, v) in values.into_iter().flatten() {
                cmd.env(k, crate::expr::text_of(v));
            }
            crate::exec::children::die_with_parent(&mut cmd);
            if let Some(dir) = a.cwd.as_ref().or(a.dir.as_ref()) {
                cmd.current_dir(dir);
            }
            let started = Instant::now();
            let mut child = cmd.spawn().map_err(|e| {
                ActionError::Unreachable(format!("cannot start `{program}`: {e}")).with_source(e)
            })?;
            // Dropped on timeout or cancellation: kills the whole process group.
            let group = child.id().map(crate::exec::children::Group::track);
            if let (Some(text), Some(mut input)) = (a.stdin.clone(), child.stdin.take()) {
                // Fed beside the reading, so a command that answers before it has read
                // everything cannot dead-lock on a full pipe; closed when written.
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt as _;
                    let _ = input.write_all(text.as_bytes()).await;
                    let _ = input.shutdown().await;
                });
            }
            let stdout = tokio::spawn(read_capped(child.stdout.take()));
            let stderr = tokio::spawn(read_capped(child.stderr.take()));
            let status = child.wait().await;
            // The step owns what it started: background children still in the group end
            // with it, which also closes the pipes they held open.
            drop(group);
            let (out, err) = tokio::join!(finish_reading(stdout), finish_reading(stderr));
            // Masked before it is cut: a secret across the limit would otherwise survive
            // in part, where no mask matches it. A printed secret the next steps need
            // (`secret_output`) stays whole in the outputs, registered, so that every output,
            // record and page masks it, as `secret.generate`'s value.
            let out = if a.secret_output && out.len() <= MAX_OUTPUT_BYTES {
                register_printed_secrets(cx.redactor(), &out);
                out
            } else {
                cx.redactor().redact_cut(&out, MAX_OUTPUT_BYTES)
            };
            let err = cx.redactor().redact_cut(&err, MAX_OUTPUT_BYTES);
            let status = status.map_err(|e| ActionError::Failed(format!("`{program}`: {e}")))?;
            let mut outputs = Outputs::new();
            outputs.insert(
                "exit_code".into(),
                status.code().map_or(Value::Null, |c| json!(c)),
            );
            outputs.insert("json".into(), stdout_json(&out));
            outputs.insert("stdout".into(), json!(out));
            outputs.insert("stderr".into(), json!(err));
            outputs.insert("latency_ms".into(), latency_ms(started));
            Ok(outputs)
        })
    }
}

/// Shortest word of a secret output masked on its own (ids and words like `rotated` stay).
const SECRET_WORD_MIN: usize = 16;

/// `secret_output: true`: what the command printed holds a secret. The whole output is
/// registered, and so are, when it is JSON, the strings under a name that says credential
/// (`key`, `secret`, `token`, `password`; not `key_id`), and otherwise every long word, so
/// that no form of it a later step reads or shows escapes the mask. Ids stay usable.
fn register_printed_secrets(redactor: &crate::redact::Redactor, stdout: &str) {
    fn credential(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        let id = n == "id"
            || n.ends_with("_id")
            || n.ends_with("id") && n.len() > 2 && !n.ends_with("key");
        !id && ["key", "secret", "token", "password", "passwd", "credential"]
            .iter()
            .any(|w| n.contains(w))
    }
    fn strings(v: &Value, under_credential: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) if under_credential => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| strings(i, under_credential, out)),
            Value::Object(m) => m
                .iter()
                .for_each(|(k, i)| strings(i, under_credential || credential(k), out)),
            _ => {}
        }
    }
    let text = stdout.trim();
    if text.is_empty() {
        return;
    }
    redactor.add(text);
    let mut parts = Vec::new();
    match stdout_json(text) {
        Value::Null => parts.extend(
            text.split_whitespace()
                .filter(|w| w.len() >= SECRET_WORD_MIN)
                .map(str::to_string),
        ),
        json => strings(&json, false, &mut parts),
    }
    for p in parts {
        redactor.add(&p);
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

pub(crate) async fn read_capped<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    // Read past the limit by the longest secret we mask, so one that crosses the limit
    // is still whole when it is masked (then the text is cut).
    let keep = MAX_OUTPUT_BYTES + crate::redact::CUT_SLACK;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < keep {
                    let take = n.min(keep - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A command's standard output as JSON, when it is JSON (a document, not a stream of
/// several); `null` otherwise.
pub(crate) fn stdout_json(stdout: &str) -> Value {
    let text = stdout.trim();
    if !(text.starts_with('{') || text.starts_with('[')) {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or(Value::Null)
}
