//! `opsctl lint`: loads runbooks and config, runs every check, and returns all findings.
//! The same checks gate `run`, `plan` and dry runs, so nothing invalid ever starts.

mod expressions;
mod graph_checks;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crate::config::{Config, TargetKind, load_config};
use crate::diagnostic::{self, Diagnostic, Diagnostics};
use crate::graph::StepGraph;
use crate::library::{Library, is_config_file, read_source, yaml_files};
use crate::loader::load_runbook;
use crate::model::Runbook;
use crate::rules::Rule;
use crate::suggest;

/// Runbook name → the runbooks its `runbook` steps call (name, span, file).
type Calls = BTreeMap<
    String,
    Vec<(
        String,
        crate::source::Span,
        std::sync::Arc<crate::source::SourceFile>,
    )>,
>;

/// Runs every semantic check on a loaded runbook; returns its graph.
pub fn check_runbook(
    runbook: &Runbook,
    broken: &[String],
    library: Option<&Library>,
    config: Option<&Config>,
    diags: &mut Diagnostics,
) -> StepGraph {
    let graph = graph_checks::check(runbook, broken, diags);
    expressions::check(runbook, &graph, broken, diags);
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
    for step in &runbook.steps {
        let action = step.action.action;
        let name = action.spec().name;
        let as_written = step.action.args.as_written();
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
        if name == "runbook" {
            if let (Some(lib), Some(arg)) = (library, step.action.args.get("name")) {
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
                    }
                }
            }
        }
        let kind = match name {
            "http" | "metrics" => Some(TargetKind::Http),
            "postgres" => Some(TargetKind::Postgres),
            "redis" => Some(TargetKind::Redis),
            _ => None,
        };
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
                                format!("no {} target named `{t}` in the config", kind_name(kind)),
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

fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Http => "http",
        TargetKind::Postgres => "postgres",
        TargetKind::Redis => "redis",
    }
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
            files.extend(yaml_files(dir));
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
    let mut calls: Calls = BTreeMap::new();
    for path in &files {
        let file = match read_source(path) {
            Ok(f) => f,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let Some((runbook, broken)) = load_runbook(&file, &mut diags) else {
            continue;
        };
        check_runbook(&runbook, &broken, Some(&library), Some(config), &mut diags);
        let entry = calls.entry(runbook.name.clone()).or_default();
        for step in &runbook.steps {
            if step.action.action.spec().name == "runbook" {
                if let Some(arg) = step.action.args.get("name") {
                    if let Some(serde_json::Value::String(t)) = arg.value.literal() {
                        entry.push((t, arg.value.span(), runbook.file.clone()));
                    }
                }
            }
        }
    }
    runbook_cycles(&calls, &mut diags);
    let mut out = diags.into_vec();
    diagnostic::sort(&mut out);
    out
}

/// N002: runbooks that call each other in a loop through `runbook` steps.
fn runbook_cycles(calls: &Calls, diags: &mut Diagnostics) {
    let mut reported: HashSet<String> = HashSet::new();
    for start in calls.keys() {
        // DFS keeping the path; report a loop once, at the call that closes it.
        let mut stack: Vec<(String, usize)> = vec![(start.clone(), 0)];
        let mut on_path: Vec<String> = vec![start.clone()];
        let mut visited: HashSet<String> = HashSet::new();
        while let Some((node, edge)) = stack.last().cloned() {
            let edges = calls.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some((target, span, file)) = edges.get(edge) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                if let Some(pos) = on_path.iter().position(|p| p == target) {
                    let mut lp: Vec<String> = on_path[pos..].to_vec();
                    let mut key = lp.clone();
                    key.sort();
                    if reported.insert(key.join(",")) {
                        lp.push(target.clone());
                        diags.push(
                            Diagnostic::error(
                                Rule::RunbookCycle,
                                format!("runbooks call each other in a loop: {}", lp.join(" → ")),
                            )
                            .at(file, *span, "closes the loop")
                            .help("a nested `runbook` step must not lead back to a runbook that is already running"),
                        );
                    }
                } else if visited.insert(target.clone()) {
                    on_path.push(target.clone());
                    stack.push((target.clone(), 0));
                }
            } else {
                stack.pop();
                on_path.pop();
            }
        }
    }
}
