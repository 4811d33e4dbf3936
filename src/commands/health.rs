//! `opsctl health`: the command line around [`crate::health`] — environments from `--env
//! a,b`, the format, `--output` written atomically, `--watch` rounds, Ctrl-C, exit codes
//! (0 healthy, 1 degraded, 2 unhealthy, 3 could not run).

use std::io::{IsTerminal, Write as _};
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::exit_code;
use crate::health::render::{self, HealthFormat};
use crate::health::{self, HealthReport, HealthRequest, PreparedHealth};
use crate::invocation::{Global, HealthOptions};
use crate::library::Library;
use crate::redact::Redactor;
use crate::report::style::{Painter, terminal_width};

pub fn health(g: &Global, opts: &HealthOptions) -> i32 {
    let config = match Config::load(g.config.as_deref()) {
        Ok(c) => c,
        Err(diags) => {
            super::report_errors(g, diags.as_slice(), &Redactor::new());
            return could_not_run("the config is invalid");
        }
    };
    let library = Library::for_config(&config);
    let req = HealthRequest {
        runbook: opts.runbook.clone(),
        envs: g
            .env
            .as_deref()
            .map(|e| {
                e.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        quick: opts.quick,
    };
    let prepared = match health::prepare(&config, &library, &req) {
        Ok(p) => p,
        Err(diags) => {
            // The environments' credentials are masked in these messages too.
            let redactor = Redactor::new();
            for env in &req.envs {
                if let Ok(env) = config.select_env(Some(env)) {
                    crate::targets::register_env_secrets(&env, &redactor);
                }
            }
            if let Ok(env) = config.select_env(None) {
                crate::targets::register_env_secrets(&env, &redactor);
            }
            super::report_errors(g, &diags, &redactor);
            return could_not_run(&format!("`{}` could not be checked", opts.runbook));
        }
    };
    let warnings = prepared.warnings();
    if !warnings.is_empty() {
        super::report_errors(g, &warnings, &Redactor::new());
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return could_not_run(&format!("cannot start the runtime: {e}")),
    };
    let cancel = CancellationToken::new();
    let code = runtime.block_on(rounds(g, opts, &prepared, cancel));
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

fn could_not_run(reason: &str) -> i32 {
    eprintln!("opsctl health: could not run: {reason}");
    exit_code::HEALTH_COULD_NOT_RUN
}

/// One round, or with `--watch` one every interval until Ctrl-C; returns the exit code of
/// the last round.
async fn rounds(
    g: &Global,
    opts: &HealthOptions,
    prepared: &PreparedHealth,
    cancel: CancellationToken,
) -> i32 {
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                crate::exec::children::kill_all();
                std::process::exit(exit_code::INTERRUPTED);
            }
        }
    });
    let to_terminal = opts.output.is_none() && std::io::stdout().is_terminal();
    let progress =
        to_terminal && opts.format == HealthFormat::Table && std::io::stderr().is_terminal();
    let mut previous: Option<HealthReport> = None;
    loop {
        if progress {
            eprint!("opsctl health: checking…");
            let _ = std::io::stderr().flush();
        }
        let report = health::run(prepared, opts.max_parallel, &cancel, &mut |_| Vec::new()).await;
        if progress {
            eprint!("\r\x1b[2K");
        }
        let interrupted = cancel.is_cancelled() || report.interrupted();
        if interrupted && previous.is_some() {
            // Ctrl-C between or during `--watch` rounds: the last full round stands.
            return previous.map_or(exit_code::INTERRUPTED, |p| p.overall.code());
        }
        let changed = previous.as_ref().map(|p| render::changes(p, &report));
        let text = render_report(g, opts, &report, changed.as_ref(), to_terminal);
        let text = redact_all(prepared, &text);
        let written = match &opts.output {
            Some(path) => write_atomically(path, &text),
            None => {
                if opts.watch.is_some() && to_terminal && opts.format == HealthFormat::Table {
                    // Redraw in place.
                    print!("\x1b[H\x1b[2J");
                }
                match super::print_stdout(&text) {
                    exit_code::OK => Ok(()),
                    _ => Err("cannot write to stdout".to_string()),
                }
            }
        };
        if let Err(e) = written {
            return could_not_run(&e);
        }
        if interrupted {
            return exit_code::INTERRUPTED;
        }
        let code = report.overall.code();
        let Some(every) = opts.watch else {
            return code;
        };
        if to_terminal && opts.format == HealthFormat::Table {
            println!(
                "\nnext round in {} — Ctrl-C to stop",
                crate::report::style::human_ms(u64::try_from(every.as_millis()).unwrap_or(0))
            );
        }
        previous = Some(report);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = cancel.cancelled() => return code,
        }
    }
}

fn render_report(
    g: &Global,
    opts: &HealthOptions,
    report: &HealthReport,
    changed: Option<&std::collections::HashMap<(String, String), render::Change>>,
    to_terminal: bool,
) -> String {
    match opts.format {
        HealthFormat::Table => render::table(
            report,
            Painter {
                color: opts.output.is_none() && g.color.enabled_for_stdout(),
            },
            if to_terminal {
                terminal_width().unwrap_or(100)
            } else {
                120
            },
            changed,
        ),
        // `--watch` without a file: one JSON object per line and round.
        HealthFormat::Json if opts.watch.is_some() && opts.output.is_none() => {
            serde_json::to_string(&render::json(report)).unwrap_or_default() + "\n"
        }
        HealthFormat::Json => {
            serde_json::to_string_pretty(&render::json(report)).unwrap_or_default() + "\n"
        }
        HealthFormat::Prometheus => render::prometheus(report),
        HealthFormat::Junit => render::junit(report),
    }
}

/// Masks every environment's credentials (the reports are masked already, run by run;
/// this is the last gate before anything leaves the process).
fn redact_all(prepared: &PreparedHealth, text: &str) -> String {
    let mut text = text.to_string();
    for r in prepared.redactors() {
        text = r.redact(&text);
    }
    crate::redact::mask_url_passwords(&text)
}

/// Writes `text` to `path` through a temporary file in the same directory, renamed into
/// place: a reader (node_exporter's textfile collector) sees the old file or the new one,
/// never half of one. The temporary name does not end in `.prom`, so the collector skips it.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("--output {}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
