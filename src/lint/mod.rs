//! `opsctl lint`: loads runbooks and config, runs every check, and returns all findings.
//! The same checks gate `run`, `plan` and dry runs, so nothing invalid ever starts.

mod expressions;
mod graph_checks;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::config::{Config, load_config};
use crate::diagnostic::{self, Diagnostic, Diagnostics};
use crate::graph::StepGraph;
use crate::library::{Library, is_config_file, read_source, yaml_files};
use crate::model::Runbook;
use crate::rules::Rule;
use crate::suggest;

/// Runs every semantic check on a loaded runbook; returns its graph.
pub fn check_runbook(
    runbook: &Runbook,
    broken: &[String],
    library: Option<&Library>,
    config: Option<&Config>,
    diags: &mut Diagnostics,
) -> StepGraph {
    let graph = graph_checks::check(runbook, broken, diags);
    expressions::check(runbook, &graph, broken, config, diags);
    check_step_settings(runbook, library, config, diags);
    graph
}

fn check_step_settings(
    runbook: &Runbook,
    library: Option<&Library>,
    config: Option<&Config>,
    diags: &mut Diagnostics,
) {
    let file = &runbook.file;
    let health = is_health_runbook(runbook);
    for step in &runbook.steps {
        let action = step.action.action;
        let as_written = step.action.args.as_written();
        if health {
            check_health_step(runbook, step, library, diags);
        }
        if step.confirm == Some(false) && action.mutates(&as_written) {
            diags.push(
                Diagnostic::warning(
                    Rule::ConfirmIgnored,
                    format!("step `{}` mutates; `confirm: false` is ignored", step.id),
                )
                .at(file, step.id_span, "")
                .help("opsctl always asks before a mutation (or needs --yes)"),
            );
        }
        if let Some(arg) = action.called_runbook(&step.action.args) {
            if let Some(lib) = library {
                if let Some(serde_json::Value::String(target)) = arg.value.literal() {
                    if !lib.contains(&target) {
                        diags.push(
                            Diagnostic::error(
                                Rule::UnknownRunbook,
                                format!("no runbook named `{target}`"),
                            )
                            .at(file, arg.value.span(), "unknown runbook")
                            .help_opt(suggest::help(&target, lib.names())),
                        );
                    } else if let Some(callee) = lib.load_quietly(&target) {
                        check_nested_params(file, step, &callee, diags);
                    }
                }
            }
        }
        let kind = action.target_kind();
        if let (Some(kind), Some(config)) = (kind, config) {
            if config.file.is_none() || config.envs.is_empty() {
                continue;
            }
            if let Some(arg) = step.action.args.get("target") {
                if let Some(serde_json::Value::String(t)) = arg.value.literal() {
                    let known = config.target_names(kind);
                    if !known.contains(&t) {
                        diags.push(
                            Diagnostic::error(
                                Rule::UnknownTarget,
                                format!("no {} target named `{t}` in the config", kind),
                            )
                            .at(file, arg.value.span(), "unknown target")
                            .help(
                                suggest::help(&t, known.iter().map(String::as_str))
                                    .unwrap_or_else(|| format!("configured: {}", known.join(", "))),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// A runbook `opsctl health` is meant to run: named `health` or tagged `health`.
pub fn is_health_runbook(runbook: &Runbook) -> bool {
    runbook.name == crate::health::DEFAULT_RUNBOOK
        || runbook
            .tags
            .iter()
            .any(|t| t == crate::health::DEFAULT_RUNBOOK)
}

/// Health runs unattended: a step that mutates, asks a person, or calls a runbook with
/// such a step has no place in it (H001).
fn check_health_step(
    runbook: &Runbook,
    step: &crate::model::Step,
    library: Option<&Library>,
    diags: &mut Diagnostics,
) {
    let action = step.action.action;
    let what = if let Some(arg) = action.called_runbook(&step.action.args) {
        let callee = match (library, arg.value.literal()) {
            (Some(lib), Some(serde_json::Value::String(name))) => lib.load_quietly(&name),
            _ => None,
        };
        match callee {
            Some(c)
                if c.steps.iter().any(|s| {
                    s.action.action.mutates(&s.action.args.as_written())
                        || s.action.action.asks_person()
                }) =>
            {
                "calls a runbook that mutates or asks a person"
            }
            _ => return,
        }
    } else if action.mutates(&step.action.args.as_written()) {
        "mutates"
    } else if action.asks_person() {
        "asks a person"
    } else {
        return;
    };
    diags.push(
        Diagnostic::error(
            Rule::HealthMutates,
            format!(
                "health runbook `{}`: step `{}` {what}",
                runbook.name, step.id
            ),
        )
        .at(&runbook.file, step.id_span, "")
        .help("`opsctl health` runs unattended and only looks; move the step to another runbook"),
    );
}

/// The params a `runbook` step passes must be ones the called runbook declares, its
/// required ones must be there, and literal values must match their patterns: a nested
/// run must not fail on its params halfway through the parent run.
fn check_nested_params(
    file: &std::sync::Arc<crate::source::SourceFile>,
    step: &crate::model::Step,
    callee: &Runbook,
    diags: &mut Diagnostics,
) {
    let given = step.action.args.get("params");
    let entries: &[crate::model::Arg] = match given.map(|a| &a.value) {
        Some(crate::model::ArgValue::Map { entries, .. }) => entries,
        // A computed params map cannot be checked here; the nested run checks it.
        Some(_) => return,
        None => &[],
    };
    for e in entries {
        match callee.param(&e.key) {
            None => diags.push(
                Diagnostic::error(
                    Rule::UndeclaredParam,
                    format!("runbook `{}` has no param `{}`", callee.name, e.key),
                )
                .at(file, e.key_span, "unknown param")
                .help(
                    suggest::help(&e.key, callee.params.iter().map(|p| p.name.as_str()))
                        .unwrap_or_else(|| {
                            format!(
                                "its params: {}",
                                callee
                                    .params
                                    .iter()
                                    .map(|p| p.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }),
                ),
            ),
            Some(p) => {
                if let (Some(re), Some(v)) = (&p.pattern, e.value.literal()) {
                    let text = crate::expr::text_of(&v);
                    if !re.is_match(&text) {
                        diags.push(
                            Diagnostic::error(
                                Rule::InvalidValue,
                                format!(
                                    "`{text}` does not match the pattern `{}` of param `{}` of runbook `{}`",
                                    re.as_str(),
                                    p.name,
                                    callee.name
                                ),
                            )
                            .at(file, e.value.span(), "does not match"),
                        );
                    }
                }
            }
        }
    }
    for p in callee
        .params
        .iter()
        .filter(|p| p.required && p.default.is_none())
    {
        if !entries.iter().any(|e| e.key == p.name) {
            let span = given.map_or(step.action.key_span, |a| a.key_span);
            diags.push(
                Diagnostic::error(
                    Rule::MissingArgument,
                    format!("runbook `{}` needs the param `{}`", callee.name, p.name),
                )
                .at(file, span, "missing param")
                .help(format!(
                    "add `{}: {}` to `params`",
                    p.name,
                    p.example
                        .as_ref()
                        .map_or_else(|| "...".to_string(), crate::expr::text_of)
                )),
            );
        }
    }
}

/// `f` over `items` on up to as many threads as there are cores, results in `items`' order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 8 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Lints files and directories (or, with none, the config and its runbook directories).
/// Returns every finding, sorted by file and position.
pub fn lint_paths(paths: &[PathBuf], config: &Config) -> Vec<Diagnostic> {
    let mut diags = Diagnostics::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut config_files: Vec<PathBuf> = Vec::new();
    if paths.is_empty() {
        if let Some(f) = &config.file {
            config_files.push(f.path().to_path_buf());
        }
        for dir in &config.runbook_dirs {
            files.extend(yaml_files(dir).into_iter().filter(|f| !is_config_file(f)));
        }
    }
    for p in paths {
        if p.is_dir() {
            for f in yaml_files(p) {
                if is_config_file(&f) {
                    config_files.push(f);
                } else {
                    files.push(f);
                }
            }
        } else if is_config_file(p) {
            config_files.push(p.clone());
        } else if p.exists() {
            files.push(p.clone());
        } else {
            diags.push(
                Diagnostic::error(Rule::Io, format!("{} does not exist", p.display())).in_file(p),
            );
        }
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.clone()));

    for cf in &config_files {
        match read_source(cf) {
            Ok(file) => {
                load_config(&file, &mut diags);
            }
            Err(d) => diags.push(d),
        }
    }

    // Runbooks are resolvable by name among the linted files and the config's library.
    let mut library = Library::for_config(config);
    for f in &files {
        library.add(f.clone());
    }
    let mut roots = Vec::new();
    let mut linted: HashSet<String> = HashSet::new();
    // Each file is read, loaded and checked on its own (on every core); the findings are
    // then taken in file order, so the output does not depend on the threads.
    let checked = par_map(&files, |path| {
        let parsed = library.parsed(path);
        let mut own = Diagnostics::new();
        if let Some((runbook, broken)) = &parsed.loaded {
            check_runbook(runbook, broken, Some(&library), Some(config), &mut own);
        }
        (parsed, own)
    });
    for (parsed, own) in checked {
        for d in &parsed.diagnostics {
            diags.push(d.clone());
        }
        let Some((runbook, _)) = &parsed.loaded else {
            continue;
        };
        for d in own.into_vec() {
            diags.push(d);
        }
        linted.insert(runbook.name.clone());
        roots.push(runbook.clone());
    }
    // Loops through linted runbooks, following calls into runbooks that were not linted.
    let graph = crate::calls::CallGraph::reachable(&library, &roots);
    for (chain, at) in graph.loops(&linted) {
        diags.push(
            Diagnostic::error(
                Rule::RunbookCycle,
                format!("runbooks call each other in a loop: {}", chain.join(" → ")),
            )
            .at(&at.file, at.span, "part of the loop")
            .help(
                "a nested `runbook` step must not lead back to a runbook that is already running",
            ),
        );
    }
    for name in &linted {
        let depth = graph.depth(name);
        if let (true, Some(call)) = (depth > crate::calls::MAX_NESTING, graph.calls(name).first()) {
            diags.push(
                Diagnostic::error(
                    Rule::RunbookCycle,
                    format!(
                        "runbooks nested {depth} deep from `{name}`; at most {} can run inside each other",
                        crate::calls::MAX_NESTING
                    ),
                )
                .at(&call.file, call.span, "starts the chain"),
            );
        }
    }
    for (name, first, second) in library.duplicates() {
        diags.push(
            Diagnostic::error(
                Rule::DuplicateRunbook,
                format!(
                    "runbook name `{name}` is defined by two files: {} and {}",
                    first.display(),
                    second.display()
                ),
            )
            .in_file(second)
            .help("`opsctl run` would not know which one to run; rename or remove one"),
        );
    }
    let mut out = diags.into_vec();
    diagnostic::sort(&mut out);
    out
}
