//! `opsctl run`, `opsctl plan` and `run --dry-run`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnvConfig};
use crate::diagnostic::Diagnostic;
use crate::exec::{EventSink, Mode, Reporter, RunCtx, RunStatus, Shared};
use crate::exit_code;
use crate::invocation::{Global, RunFormat, RunOptions};
use crate::library::{Checked, Library};
use crate::redact::Redactor;
use crate::report::prompt::Prompter;
use crate::report::{self, HumanReporter, JsonReporter, RecordWriter};
use crate::rules::Rule;
use crate::targets::{Clients, register_env_secrets};

/// Everything a run needs, loaded and checked before anything starts.
struct Prepared {
    env: EnvConfig,
    checked: Arc<Checked>,
    params: serde_json::Map<String, serde_json::Value>,
    nested: HashMap<String, Arc<Checked>>,
    redactor: Redactor,
    /// Steps taking part (`--only`, `--tags`); `None`: all.
    selected: Option<Vec<bool>>,
}

fn prepare(g: &Global, opts: &RunOptions, use_examples: bool) -> Result<Prepared, i32> {
    let config = super::load_config(g)?;
    let redactor = Redactor::new();
    let env = config.select_env(g.env.as_deref()).map_err(|d| {
        super::report_errors(g, &[d], &redactor);
        exit_code::INVALID
    })?;
    register_env_secrets(&env, &redactor);
    let (library, checked) = super::load_runbook(g, &config, &opts.name)?;
    let mut given = Vec::new();
    let mut errors = Vec::new();
    for p in &opts.params {
        match crate::params::parse_cli_param(p) {
            Ok(kv) => given.push(kv),
            Err(e) => errors.push(Diagnostic::error(
                Rule::InvalidValue,
                format!("--param {e}"),
            )),
        }
    }
    let params = match crate::params::resolve(&checked.runbook, &given, use_examples) {
        Ok(p) if errors.is_empty() => p,
        Ok(_) => {
            super::report_errors(g, &errors, &redactor);
            return Err(exit_code::INVALID);
        }
        Err(mut e) => {
            errors.append(&mut e);
            super::report_errors(g, &errors, &redactor);
            return Err(exit_code::INVALID);
        }
    };
    let mut nested = HashMap::new();
    let mut path = vec![checked.runbook.name.clone()];
    preload_nested(
        g,
        &library,
        &config,
        &checked,
        &mut nested,
        &mut path,
        &redactor,
    )?;
    // Every credential any step can reach is masked from the first line on, even in the
    // output of a step that runs before the one that uses it.
    for step in std::iter::once(&checked)
        .chain(nested.values().map(|c| c.as_ref()))
        .flat_map(|c| &c.runbook.steps)
    {
        redactor.add_reachable(&step.action.args.as_written());
    }
    let selected = select(g, &checked, opts)?;
    Ok(Prepared {
        env,
        checked: Arc::new(checked),
        params,
        nested,
        redactor,
        selected,
    })
}

/// Loads and checks every runbook reachable through `runbook` steps, so a bad nested
/// runbook stops the run before it starts rather than halfway.
fn preload_nested(
    g: &Global,
    library: &Library,
    config: &Config,
    checked: &Checked,
    out: &mut HashMap<String, Arc<Checked>>,
    path: &mut Vec<String>,
    redactor: &Redactor,
) -> Result<(), i32> {
    for step in &checked.runbook.steps {
        let Some(arg) = step.action.action.called_runbook(&step.action.args) else {
            continue;
        };
        let Some(serde_json::Value::String(name)) = arg.value.literal() else {
            let d = Diagnostic::error(
                Rule::UnknownRunbook,
                format!("step `{}`: the nested runbook's name must be written literally", step.id),
            )
            .at(&checked.runbook.file, arg.value.span(), "computed name")
            .help("opsctl checks nested runbooks before the run starts; it cannot check a computed name");
            super::report_errors(g, &[d], redactor);
            return Err(exit_code::INVALID);
        };
        if path.contains(&name) {
            let d = Diagnostic::error(
                Rule::RunbookCycle,
                format!(
                    "runbooks call each other in a loop: {} → {name}",
                    path.join(" → ")
                ),
            )
            .at(&checked.runbook.file, arg.value.span(), "closes the loop");
            super::report_errors(g, &[d], redactor);
            return Err(exit_code::INVALID);
        }
        if out.contains_key(&name) {
            continue;
        }
        let file = library.resolve(&name).map_err(|d| {
            super::report_errors(g, &[d], redactor);
            exit_code::INVALID
        })?;
        let nested = library.load_checked(&file, Some(config)).map_err(|diags| {
            super::report_errors(g, &diags, redactor);
            exit_code::INVALID
        })?;
        path.push(name.clone());
        preload_nested(g, library, config, &nested, out, path, redactor)?;
        path.pop();
        out.insert(name, Arc::new(nested));
    }
    Ok(())
}

/// Whether a runbook (or one it calls) has a mutating step, judged on its arguments
/// as written.
fn mutates_deep(checked: &Checked, nested: &HashMap<String, Arc<Checked>>, depth: usize) -> bool {
    checked
        .runbook
        .steps
        .iter()
        .any(|s| match s.action.action.called_runbook(&s.action.args) {
            Some(arg) => {
                depth < 16
                    && match arg.value.literal() {
                        Some(serde_json::Value::String(n)) => nested
                            .get(&n)
                            .is_some_and(|c| mutates_deep(c, nested, depth + 1)),
                        _ => false,
                    }
            }
            None => s.action.action.mutates(&s.action.args.as_written()),
        })
}

pub fn dry_run(g: &Global, opts: &RunOptions) -> i32 {
    let p = match prepare(g, opts, opts.examples) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let run_id = crate::exec::new_run_id();
    let nested = &p.nested;
    let doc = report::dry_run::build(
        &p.checked,
        &p.params,
        &p.env,
        &run_id,
        &|name| nested.get(name).is_some_and(|c| mutates_deep(c, nested, 0)),
        p.selected.as_deref(),
        &p.redactor,
    );

    let text = match opts.format {
        RunFormat::Json => serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        RunFormat::Human => report::dry_run::render_human(
            &doc,
            report::style::Painter {
                color: g.color.enabled_for_stdout(),
            },
        ),
    };
    super::print_stdout(&p.redactor.redact(&text))
}

/// The steps taking part: `--only` and `--tags` select, ancestors come along.
fn select(g: &Global, checked: &Checked, opts: &RunOptions) -> Result<Option<Vec<bool>>, i32> {
    if opts.only.is_none() && opts.tags.is_empty() {
        return Ok(None);
    }
    let rb = &checked.runbook;
    if let Some(only) = &opts.only {
        if rb.step(only).is_none() {
            let d = Diagnostic::error(
                Rule::UnknownStep,
                format!("--only {only}: no such step in `{}`", rb.name),
            )
            .help_opt(crate::suggest::help(
                only,
                rb.steps.iter().map(|s| s.id.as_str()),
            ));
            super::report_errors(g, &[d], &Redactor::new());
            return Err(exit_code::INVALID);
        }
    }
    let base: Vec<usize> = (0..rb.steps.len())
        .filter(|&i| {
            let s = &rb.steps[i];
            opts.only.as_ref().is_none_or(|o| *o == s.id)
                && (opts.tags.is_empty() || s.tags.iter().any(|t| opts.tags.contains(t)))
        })
        .collect();
    if base.is_empty() {
        let d = Diagnostic::error(
            Rule::InvalidValue,
            format!(
                "no step of `{}` matches --tags {}",
                rb.name,
                opts.tags.join(",")
            ),
        );
        super::report_errors(g, &[d], &Redactor::new());
        return Err(exit_code::INVALID);
    }
    Ok(Some(checked.graph.with_ancestors(&base)))
}

pub fn run(g: &Global, opts: &RunOptions, mode: Mode) -> i32 {
    let p = match prepare(g, opts, false) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let run_id = crate::exec::new_run_id();
    let record_path = opts
        .record
        .clone()
        .unwrap_or_else(|| report::record::default_path(&run_id));
    let record = match RecordWriter::create(&record_path) {
        Ok(r) => Some(r),
        Err(e) if opts.record.is_some() => {
            eprintln!(
                "opsctl: cannot write the record {}: {e}",
                record_path.display()
            );
            return exit_code::INVALID;
        }
        Err(e) => {
            eprintln!(
                "opsctl: warning: no record for this run ({}: {e})",
                record_path.display()
            );
            None
        }
    };
    let stdout_tty = std::io::stdout().is_terminal();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    let mut display = None;
    match opts.format {
        RunFormat::Human => {
            let mut human = HumanReporter::new(
                stdout_tty && g.color != report::style::ColorChoice::Never,
                g.color.enabled_for_stdout(),
                Box::new(std::io::stdout()),
            );
            human.set_record(record.as_ref().map(|r| r.path().display().to_string()));
            display = human.live_handle();
            reporters.push(Box::new(human));
        }
        RunFormat::Json => reporters.push(Box::new(JsonReporter::new(Box::new(std::io::stdout())))),
    }
    if let Some(r) = record {
        reporters.push(Box::new(r));
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("opsctl: cannot start the runtime: {e}");
            return exit_code::INVALID;
        }
    };
    let sink = EventSink::new(p.redactor.clone(), reporters);
    let cancel = CancellationToken::new();
    let env = Arc::new(p.env);
    let shared = Arc::new(Shared {
        clients: Clients::new(&env, p.redactor.clone()),
        env,
        redactor: p.redactor.clone(),
        interact: Arc::new(Prompter::new(
            opts.yes,
            opts.yes_manual,
            interactive,
            display,
            p.redactor.clone(),
            cancel.clone(),
        )),
        sink: sink.clone(),
        cancel: cancel.clone(),
        mode,
        permits: Arc::new(tokio::sync::Semaphore::new(opts.max_parallel.max(1))),
        nested: p.nested,
        run_id,
        user: crate::exec::current_user(),
        aborted: AtomicBool::new(false),
    });
    let ctx = Arc::new(RunCtx::new(
        shared.clone(),
        p.checked,
        p.params,
        String::new(),
        p.selected,
        0,
    ));
    let outcome = runtime.block_on(async move {
        let interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\nopsctl: interrupted — cancelling running steps (Ctrl-C again to quit now)"
                );
                interrupt.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    crate::exec::children::kill_all();
                    std::process::exit(exit_code::INTERRUPTED);
                }
            }
        });
        let outcome = crate::exec::run(ctx, None).await;
        // Cancel requests for queries a Ctrl-C or a timeout cut short.
        crate::targets::cleanup::wait(std::time::Duration::from_secs(2)).await;
        outcome
    });
    sink.finish();
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome.status {
        RunStatus::Cancelled | RunStatus::Unfinished => exit_code::INTERRUPTED,
        RunStatus::Failed => exit_code::FAILED,
        RunStatus::Ok | RunStatus::Warn => exit_code::OK,
    }
}
