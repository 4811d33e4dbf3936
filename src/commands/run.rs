//! `opsctl run`, `opsctl plan` and `run --dry-run`: the command line around the run API
//! ([`crate::exec::runner`]): reporters, the terminal prompt, Ctrl-C, exit codes.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::exec::runner::{self, Prepared, Request, Settings};
use crate::exec::{Mode, Reporter, RunStatus};
use crate::exit_code;
use crate::invocation::{Global, RunFormat, RunOptions};
use crate::library::Library;
use crate::redact::Redactor;
use crate::report::prompt::Prompter;
use crate::report::{self, HumanReporter, JsonReporter, RecordWriter};

/// `run --resume RECORD`: what the earlier run was, and which of its steps to reuse.
mod resume {
    use std::collections::HashMap;
    use std::path::Path;

    use crate::exec::context::Reused;
    use crate::exec::events::SkipReason;
    use crate::exec::runner::Prepared;
    use crate::exec::{Event, Mode, StepStatus};
    use crate::report::summary::{Finished, Summary};

    pub struct Earlier {
        pub run_id: String,
        pub runbook: String,
        pub env: String,
        /// `key=value` as `--param` takes them.
        pub params: Vec<String>,
        pub summary: Summary,
    }

    pub fn read(path: &Path) -> Result<Earlier, String> {
        let record = crate::report::record::read(path).map_err(|e| e.to_string())?;
        let header = record.events.iter().find_map(|e| match e {
            Event::Record {
                run_id,
                runbook,
                mode,
                env,
                params,
                ..
            } => Some((
                run_id.clone(),
                runbook.clone(),
                *mode,
                env.clone(),
                params.clone(),
            )),
            _ => None,
        });
        let Some((run_id, runbook, mode, env, params)) = header else {
            return Err(format!(
                "{}: no record header (not a run record?)",
                path.display()
            ));
        };
        if mode != Mode::Run {
            return Err(format!(
                "{}: run {run_id} was a {}, not a run: nothing was done to resume",
                path.display(),
                mode.as_str()
            ));
        }
        let summary = Summary::of(&record.events);
        let params = params
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k}={}", crate::expr::text_of(v)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Earlier {
            run_id,
            runbook,
            env,
            params,
            summary,
        })
    }

    /// Which steps to reuse (per step index) and the ids of those that run again: what
    /// ended fail, error or cancelled, what did not run for lack of a yes or because of
    /// those, what the record lacks — and everything downstream of them. A reused step
    /// whose secret output a re-run step may read is run again too (records hold no
    /// secrets).
    pub fn plan(
        p: &Prepared,
        earlier: &Earlier,
    ) -> Result<(Vec<Option<Reused>>, Vec<String>), String> {
        let rb = &p.checked.runbook;
        let graph = &p.checked.graph;
        let by_id: HashMap<&str, &Finished> = earlier
            .summary
            .top_level()
            .into_iter()
            .map(|f| (f.id.as_str(), f))
            .collect();
        let n = rb.steps.len();
        let mut rerun: Vec<bool> = rb
            .steps
            .iter()
            .map(|s| match by_id.get(s.id.as_str()) {
                None => true,
                Some(f) => match f.status {
                    StepStatus::Ok | StepStatus::Warn => false,
                    StepStatus::Skipped => {
                        f.plan.is_some() || !matches!(f.skip, Some(SkipReason::When) | None)
                    }
                    _ => true,
                },
            })
            .collect();
        loop {
            let before = rerun.clone();
            for i in 0..n {
                if graph.needs[i].iter().any(|&j| rerun[j]) {
                    rerun[i] = true;
                }
            }
            for j in 0..n {
                let secret = !rb.steps[j].action.action.secret_outputs().is_empty();
                if !rerun[j] && secret && (0..n).any(|i| rerun[i] && graph.is_ancestor(j, i)) {
                    rerun[j] = true;
                }
            }
            if rerun == before {
                break;
            }
        }
        let again: Vec<String> = (0..n)
            .filter(|&i| rerun[i])
            .map(|i| rb.steps[i].id.clone())
            .collect();
        if again.is_empty() {
            return Err(format!(
                "run {} of `{}` ended with every step done; nothing to resume",
                earlier.run_id, earlier.runbook
            ));
        }
        let reused = (0..n)
            .map(|i| {
                if rerun[i] {
                    return None;
                }
                let f = by_id.get(rb.steps[i].id.as_str())?;
                Some(Reused {
                    status: f.status,
                    outputs: f.outputs.as_object().cloned().unwrap_or_default(),
                    message: f.message.clone(),
                    run_id: earlier.run_id.clone(),
                })
            })
            .collect();
        Ok((reused, again))
    }
}

/// Loads and checks what the run needs; problems are printed (exit 2).
fn prepare(g: &Global, opts: &RunOptions, use_examples: bool) -> Result<Prepared, i32> {
    let config = super::load_config(g)?;
    let library = Library::for_config(&config);
    let mut params = opts.params.clone();
    // On a terminal, a required param that was not given is asked for (not for a dry run:
    // it shows what a run would need).
    if !opts.dry_run && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        ask_missing_params(&library, &opts.name, &mut params)?;
    }
    let req = Request {
        runbook: opts.name.clone(),
        env: g.env.clone(),
        params,
        use_examples,
        tags: opts.tags.clone(),
        only: opts.only.clone(),
    };
    match runner::prepare(&config, &library, &req) {
        Ok(p) => {
            if !p.warnings.is_empty() {
                super::report_errors(g, &p.warnings, &p.redactor);
            }
            Ok(p)
        }
        Err(diags) => {
            // Credentials of the environment are masked in these messages too.
            let redactor = Redactor::new();
            if let Ok(env) = config.select_env(g.env.as_deref()) {
                crate::targets::register_env_secrets(&env, &redactor);
            }
            super::report_errors(g, &diags, &redactor);
            Err(exit_code::INVALID)
        }
    }
}

/// Asks on the terminal for each required param without a value: a menu for an `enum`,
/// the example and description as hints, validated as `--param` would be (three tries).
fn ask_missing_params(library: &Library, name: &str, params: &mut Vec<String>) -> Result<(), i32> {
    use std::io::{BufRead as _, Write as _};
    let Ok(path) = library.resolve(name) else {
        return Ok(()); // The run's own checks say what is wrong.
    };
    let mut lib = library.clone();
    lib.add(path.clone());
    let Ok(checked) = lib.load_checked(&path, None) else {
        return Ok(());
    };
    let given: Vec<String> = params
        .iter()
        .filter_map(|p| crate::params::parse_cli_param(p).ok().map(|(k, _)| k))
        .collect();
    let stdin = std::io::stdin();
    for p in &checked.runbook.params {
        if !p.required || p.default.is_some() || given.contains(&p.name) {
            continue;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\n? param `{}`{}",
            p.name,
            p.description
                .as_deref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
        if let Some(choices) = &p.choices {
            for (i, c) in choices.iter().enumerate() {
                let _ = writeln!(err, "  {}) {}", i + 1, crate::expr::text_of(c));
            }
        }
        drop(err);
        let mut value = None;
        for _ in 0..3 {
            let hint = p
                .example
                .as_ref()
                .map(|e| format!(" (e.g. {})", crate::expr::text_of(e)))
                .unwrap_or_default();
            eprint!("  {}{hint}: ", p.name);
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
                eprintln!();
                return Err(exit_code::INVALID);
            }
            let mut text = line.trim().to_string();
            if let (Some(choices), Ok(n)) = (&p.choices, text.parse::<usize>()) {
                if let Some(c) = n.checked_sub(1).and_then(|i| choices.get(i)) {
                    text = crate::expr::text_of(c);
                }
            }
            let ok = crate::params::check_declared(p, &serde_json::Value::String(text.clone()))
                .and_then(|()| match &p.pattern {
                    Some(re) if !re.is_match(&text) => {
                        Err(format!("`{text}` does not match `{}`", re.as_str()))
                    }
                    _ => Ok(()),
                });
            match ok {
                Ok(()) if !text.is_empty() => {
                    value = Some(text);
                    break;
                }
                Ok(()) => eprintln!("  a value is required"),
                Err(why) => eprintln!("  {why}"),
            }
        }
        match value {
            Some(v) => params.push(format!("{}={v}", p.name)),
            None => return Err(exit_code::INVALID),
        }
    }
    Ok(())
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
        &|name| {
            nested
                .get(name)
                .is_some_and(|c| runner::mutates_deep(c, nested, 0))
        },
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

pub fn run(g: &Global, opts: &RunOptions, mode: Mode) -> i32 {
    let resumed = match &opts.resume {
        None => None,
        Some(_) if mode != Mode::Run => {
            eprintln!("opsctl: --resume goes with `run`, not `plan`");
            return exit_code::INVALID;
        }
        Some(path) => match resume::read(path) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("opsctl: cannot resume: {e}");
                return exit_code::INVALID;
            }
        },
    };
    let (g, opts) = match &resumed {
        Some(r) => {
            let g = Global {
                env: g.env.clone().or_else(|| Some(r.env.clone())),
                ..g.clone()
            };
            let mut opts = opts.clone();
            opts.name = r.runbook.clone();
            // The earlier run's params, then any given now (the last one wins).
            let mut params = r.params.clone();
            params.extend(opts.params.iter().cloned());
            opts.params = params;
            (g, opts)
        }
        None => (g.clone(), opts.clone()),
    };
    let (g, opts) = (&g, &opts);
    let mut p = match prepare(g, opts, false) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(r) = &resumed {
        match resume::plan(&p, r) {
            Ok((reused, rerun)) => {
                eprintln!(
                    "opsctl: resuming run {} of `{}` in {}: running again {}; reusing the results of {}",
                    r.run_id,
                    r.runbook,
                    p.env.name,
                    rerun.join(", "),
                    if reused.iter().flatten().count() == 0 {
                        "no step".to_string()
                    } else {
                        format!("{} steps", reused.iter().flatten().count())
                    }
                );
                p.reused = reused;
                p.resumes = Some(r.run_id.clone());
            }
            Err(e) => {
                eprintln!("opsctl: cannot resume: {e}");
                return exit_code::INVALID;
            }
        }
    }
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
    let cancel = CancellationToken::new();
    let settings = Settings {
        mode,
        max_parallel: opts.max_parallel,
        run_id,
        user: crate::exec::current_user(),
        interact: Arc::new(Prompter::new(
            opts.yes,
            opts.yes_manual,
            interactive,
            display,
            p.redactor.clone(),
            cancel.clone(),
        )),
        reporters,
        cancel: cancel.clone(),
        lock: if opts.wait_lock {
            runner::LockPolicy::Wait
        } else {
            runner::LockPolicy::Take
        },
        givens: None,
    };
    let cleanup: Vec<String> = p
        .checked
        .runbook
        .steps
        .iter()
        .filter(|s| s.always)
        .map(|s| s.id.clone())
        .collect();
    let outcome = runtime.block_on(async move {
        let interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                if cleanup.is_empty() {
                    eprintln!(
                        "\nopsctl: interrupted — cancelling running steps (Ctrl-C again to quit now)"
                    );
                } else {
                    eprintln!(
                        "\nopsctl: interrupted — cancelling running steps, then running the clean-up ({}); Ctrl-C again to quit now and leave it undone",
                        cleanup.join(", ")
                    );
                }
                interrupt.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    if !cleanup.is_empty() {
                        eprintln!(
                            "opsctl: quit — clean-up steps may be left undone: {} (see the record)",
                            cleanup.join(", ")
                        );
                    }
                    crate::exec::children::kill_all();
                    std::process::exit(exit_code::INTERRUPTED);
                }
            }
        });
        runner::execute(p, settings).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome.status {
        RunStatus::Cancelled | RunStatus::Unfinished => exit_code::INTERRUPTED,
        RunStatus::Failed => exit_code::FAILED,
        RunStatus::Ok | RunStatus::Warn => exit_code::OK,
    }
}
