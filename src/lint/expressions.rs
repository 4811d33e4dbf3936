//! Expression rules: every name an expression reads must exist and be readable without
//! a race (X002–X007).

use crate::config::Config;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::expr::{self, CallKind, Expr, Ref, Seg};
use crate::graph::StepGraph;
use crate::model::{Field, Runbook, Step};
use crate::rules::Rule;
use crate::suggest;

const RUN_FIELDS: &[&str] = &["id", "user", "env", "dry_run"];
const ROOTS: &[&str] = &["params", "vars", "steps", "run"];
const STEP_FIELDS: &[&str] = &["status", "outputs"];

pub fn check(
    runbook: &Runbook,
    graph: &StepGraph,
    broken: &[String],
    config: Option<&Config>,
    diags: &mut Diagnostics,
) {
    // `vars.X` is checked only against a real config with environments.
    let vars: Option<Vec<&str>> = config
        .filter(|c| c.file.is_some() && !c.envs.is_empty())
        .map(|c| {
            let mut names: Vec<&str> = c
                .envs
                .values()
                .flat_map(|e| e.vars.keys().map(String::as_str))
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        });
    for (i, step) in runbook.steps.iter().enumerate() {
        for (field, e) in step.expressions() {
            let cx = ExprCx {
                runbook,
                graph,
                broken,
                step,
                index: i,
                field,
                expr: e,
                vars: vars.as_deref(),
            };
            for r in e.refs() {
                cx.check_ref(r, diags);
            }
            cx.check_calls(diags);
            cx.check_secret_use(diags);
        }
        // X009: the arguments that become a command line.
        let spec = step.action.action.spec();
        for arg in &step.action.args.entries {
            if !spec
                .arg(&arg.key)
                .is_some_and(|a| matches!(a.ty, crate::actions::spec::ArgType::Argv))
            {
                continue;
            }
            let mut exprs = Vec::new();
            arg.value.collect_exprs(&mut exprs);
            for e in exprs {
                let cx = ExprCx {
                    runbook,
                    graph,
                    broken,
                    step,
                    index: i,
                    field: Field::Args,
                    expr: e,
                    vars: vars.as_deref(),
                };
                cx.check_command_line(&arg.key, diags);
            }
        }
    }
}

struct ExprCx<'a> {
    runbook: &'a Runbook,
    graph: &'a StepGraph,
    broken: &'a [String],
    step: &'a Step,
    index: usize,
    field: Field,
    expr: &'a Expr,
    vars: Option<&'a [&'a str]>,
}

/// Output names of a step: its action's plus its captures.
fn outputs_of(step: &Step) -> Vec<&str> {
    let mut names: Vec<&str> = step.action.action.spec().output_names().collect();
    names.extend(step.capture.iter().map(|c| c.name.as_str()));
    // A loop's own outputs (its assertions see each item's, above).
    if step.foreach.is_some() {
        names.extend([
            "results",
            "count",
            "ok",
            "warn",
            "fail",
            "error",
            "cancelled",
            "skipped",
        ]);
    }
    names
}

impl ExprCx<'_> {
    /// Whether the step's `when` reads `steps.<id>.status` (a guard for reading its outputs).
    fn when_checks_status_of(&self, id: &str) -> bool {
        self.step.when.as_ref().is_some_and(|w| {
            w.refs().iter().any(|r| {
                r.root == "steps" && r.name_at(0) == Some(id) && r.name_at(1) == Some("status")
            })
        })
    }

    fn diag(&self, rule: Rule, message: String, r: &Ref, label: &str) -> Diagnostic {
        Diagnostic::error(
            rule,
            format!(
                "step `{}`, {}: {message}",
                self.step.id,
                self.field.as_str()
            ),
        )
        .at(
            &self.runbook.file,
            self.expr.sub_span(r.range.clone()),
            label,
        )
    }

    fn check_ref(&self, r: &Ref, diags: &mut Diagnostics) {
        match r.root.as_str() {
            "params" => {
                let Some(name) = r.name_at(0) else { return };
                if self.runbook.param(name).is_none() {
                    let declared = self.runbook.params.iter().map(|p| p.name.as_str());
                    let help = suggest::help(name, declared).unwrap_or_else(|| {
                        format!("declare it under `params:` (e.g. `{name}: {{ default: ... }}`)")
                    });
                    diags.push(
                        self.diag(
                            Rule::UndeclaredParam,
                            format!("`params.{name}` is not declared"),
                            r,
                            "undeclared param",
                        )
                        .help(help),
                    );
                }
            }
            "run" => {
                if let Some(name) = r.name_at(0) {
                    if !RUN_FIELDS.contains(&name) {
                        diags.push(
                            self.diag(
                                Rule::UnknownName,
                                format!("`run.{name}` does not exist"),
                                r,
                                "unknown name",
                            )
                            .help(
                                suggest::help(name, RUN_FIELDS.iter().copied()).unwrap_or_else(
                                    || format!("run has: {}", RUN_FIELDS.join(", ")),
                                ),
                            ),
                        );
                    }
                }
            }
            "vars" => {
                let (Some(known), Some(name)) = (self.vars, r.name_at(0)) else {
                    return;
                };
                // `vars.x is defined` / `vars.x | default(...)` are written for optional vars.
                let guarded = self.expr.calls().iter().any(|c| {
                    matches!(
                        (c.kind, c.name.as_str()),
                        (CallKind::Test, "defined" | "undefined")
                            | (CallKind::Filter, "default" | "d")
                    )
                });
                if guarded {
                    return;
                }
                if !known.contains(&name) {
                    let help = suggest::help(name, known.iter().copied()).unwrap_or_else(|| {
                        "define it under `vars:` of the environments in opsctl.yaml".to_string()
                    });
                    diags.push(
                        self.diag(
                            Rule::UnknownName,
                            format!(
                                "`vars.{name}` is not defined in any environment of the config"
                            ),
                            r,
                            "unknown var",
                        )
                        .help(help),
                    );
                }
            }

            "steps" => self.check_step_ref(r, diags),
            "outputs" if self.field.sees_outputs() => {
                if let Some(name) = r.name_at(0) {
                    self.check_own_output(name, r, diags);
                }
            }
            other => {
                if self.field.sees_outputs() && outputs_of(self.step).contains(&other) {
                    return;
                }
                if self.field.sees_item()
                    && self.step.foreach.as_ref().is_some_and(|f| f.name == other)
                {
                    return;
                }
                let mut candidates: Vec<&str> = ROOTS.to_vec();
                if self.field.sees_outputs() {
                    candidates.push("outputs");
                    candidates.extend(outputs_of(self.step));
                }
                let help = if !self.field.sees_outputs() && outputs_of(self.step).contains(&other) {
                    format!(
                        "a step's own outputs are visible only in expect, warn_if, fail_if, capture and retry.until; here use `steps.<id>.outputs.{other}` of an ancestor"
                    )
                } else {
                    suggest::help(other, candidates.iter().copied())
                        .unwrap_or_else(|| format!("names in scope: {}", candidates.join(", ")))
                };
                diags.push(
                    self.diag(
                        Rule::UnknownName,
                        format!("`{other}` is not defined"),
                        r,
                        "unknown name",
                    )
                    .help(help),
                );
            }
        }
    }

    /// X008: a secret output may only be passed on as it is.
    fn check_secret_use(&self, diags: &mut Diagnostics) {
        if self.expr.is_bare_ref() {
            return;
        }
        let Some(r) = self.expr.refs().iter().find(|r| self.reads_secret(r)) else {
            return;
        };
        diags.push(
            self.diag(
                Rule::SecretTransformed,
                format!(
                    "`{}` reads a secret and changes it; a secret may only be passed on as it is",
                    self.expr.source().trim()
                ),
                r,
                "secret used in an expression",
            )
            .help("write `${{ <the reference> }}` alone; the mask matches only the secret's exact text"),
        );
    }

    /// X009: a secret output on a command line (`exec` / `k8s.exec` `command`).
    fn check_command_line(&self, arg: &str, diags: &mut Diagnostics) {
        let Some(r) = self.expr.refs().iter().find(|r| self.reads_secret(r)) else {
            return;
        };
        diags.push(
            self.diag(
                Rule::SecretOnCommandLine,
                format!(
                    "`{}` puts a secret on the command line (`{arg}`), where every user of the machine can read it",
                    self.expr.source().trim()
                ),
                r,
                "secret in a command's arguments",
            )
            .help("pass it through `env:` (`NAME: ${{ <the reference> }}`) or `stdin:` and let the command read it from there"),
        );
    }

    /// Whether a name read by the expression holds (or contains) a secret output.
    fn reads_secret(&self, r: &Ref) -> bool {
        let holds = |step: &Step, out: Option<&str>| {
            let secrets = step.action.action.secret_outputs();
            !secrets.is_empty() && out.is_none_or(|o| secrets.contains(&o))
        };
        match r.root.as_str() {
            "steps" => {
                let Some(&target) = r.name_at(0).and_then(|id| self.graph.index.get(id)) else {
                    return false;
                };
                let step = &self.runbook.steps[target];
                match r.path.get(1) {
                    None => holds(step, None),
                    Some(Seg::Name(f)) if f == "outputs" => holds(step, r.name_at(2)),
                    _ => false,
                }
            }
            "outputs" if self.field.sees_outputs() => holds(self.step, r.name_at(0)),
            name if self.field.sees_outputs() => holds(self.step, Some(name)),
            _ => false,
        }
    }

    fn check_own_output(&self, name: &str, r: &Ref, diags: &mut Diagnostics) {
        let outputs = outputs_of(self.step);
        if !outputs.contains(&name) {
            diags.push(
                self.diag(
                    Rule::UnknownOutput,
                    format!(
                        "`{}` has no output `{name}`",
                        self.step.action.action.spec().name
                    ),
                    r,
                    "unknown output",
                )
                .help(
                    suggest::help(name, outputs.iter().copied())
                        .unwrap_or_else(|| format!("outputs: {}", outputs.join(", "))),
                ),
            );
        }
    }

    fn check_step_ref(&self, r: &Ref, diags: &mut Diagnostics) {
        let id = match r.path.first() {
            None => {
                diags.push(
                    self.diag(
                        Rule::UnknownStep,
                        "`steps` must be indexed by a step id".into(),
                        r,
                        "",
                    )
                    .help("write `steps.<id>.status` or `steps[\"<id>\"].outputs.<name>`"),
                );
                return;
            }
            Some(Seg::Dynamic) | Some(Seg::Index(_)) => {
                diags.push(
                    self.diag(
                        Rule::UnknownStep,
                        "`steps` is indexed by a computed value".into(),
                        r,
                        "not a literal step id",
                    )
                    .help("use a literal id (`steps[\"failed-jobs\"]`) so lint can check ordering"),
                );
                return;
            }
            Some(Seg::Name(id)) => id.as_str(),
        };
        let Some(&target) = self.graph.index.get(id) else {
            if self.broken.iter().any(|b| b == id) {
                return;
            }
            let ids = self.graph.ids.iter().map(String::as_str);
            diags.push(
                self.diag(
                    Rule::UnknownStep,
                    format!("step `{id}` does not exist"),
                    r,
                    "unknown step",
                )
                .help_opt(suggest::help(id, ids)),
            );
            return;
        };
        if target == self.index {
            diags.push(
                self.diag(
                    Rule::Race,
                    format!("step `{id}` reads its own result through `steps.{id}`"),
                    r,
                    "own step",
                )
                .help("in expect/warn_if/fail_if/capture, read the step's outputs by name or as `outputs.<name>`"),
            );
            return;
        }
        if !self.graph.is_ancestor(target, self.index) {
            diags.push(
                self.diag(
                    Rule::Race,
                    format!("reads `steps.{id}`, but `{id}` is not among the steps `{}` needs", self.step.id),
                    r,
                    "not an ancestor",
                )
                .help(format!(
                    "add `needs: [{id}]` to step `{}` (directly or through another step), or `{id}` may not have finished",
                    self.step.id
                )),
            );
        }
        match r.path.get(1) {
            None => {}
            Some(Seg::Name(f)) if f == "status" => {}
            Some(Seg::Name(f)) if f == "outputs" => {
                let other = &self.runbook.steps[target];
                if self.step.always && !other.always && !self.when_checks_status_of(id) {
                    diags.push(
                        self.diag(
                            Rule::CleanupReadsOutputs,
                            format!("clean-up step `{}` reads outputs of `{id}`, which may not exist when it runs (after a failure or Ctrl-C)", self.step.id),
                            r,
                            "may be missing",
                        )
                        .help(format!("add `when: steps.{id}.status == 'ok'` to step `{}`, or read only `steps.{id}.status`", self.step.id)),
                    );
                }
                if let Some(Seg::Name(out)) = r.path.get(2) {
                    let outputs = outputs_of(other);
                    if !outputs.contains(&out.as_str()) {
                        diags.push(
                            self.diag(
                                Rule::UnknownOutput,
                                format!(
                                    "step `{id}` ({}) has no output `{out}`",
                                    other.action.action.spec().name
                                ),
                                r,
                                "unknown output",
                            )
                            .help(
                                suggest::help(out, outputs.iter().copied())
                                    .unwrap_or_else(|| format!("outputs: {}", outputs.join(", "))),
                            ),
                        );
                    }
                }
            }
            Some(Seg::Name(f)) => {
                diags.push(
                    self.diag(
                        Rule::UnknownOutput,
                        format!("`steps.{id}.{f}` does not exist"),
                        r,
                        "unknown field",
                    )
                    .help(
                        suggest::help(f, STEP_FIELDS.iter().copied())
                            .map(|h| format!("{h} (a step has `status` and `outputs`)"))
                            .unwrap_or_else(|| "a step has `status` and `outputs`".to_string()),
                    ),
                );
            }
            Some(_) => {}
        }
    }

    fn check_calls(&self, diags: &mut Diagnostics) {
        for call in self.expr.calls() {
            let exists = match call.kind {
                CallKind::Filter => expr::filter_exists(&call.name),
                CallKind::Test => expr::test_exists(&call.name),
                CallKind::Function => expr::function_exists(&call.name),
            };
            let kind = match call.kind {
                CallKind::Filter => "filter",
                CallKind::Test => "test",
                CallKind::Function => "function",
            };
            if !exists {
                diags.push(
                    Diagnostic::error(
                        Rule::UnknownFilter,
                        format!(
                            "step `{}`, {}: unknown {kind} `{}`",
                            self.step.id,
                            self.field.as_str(),
                            call.name
                        ),
                    )
                    .at(
                        &self.runbook.file,
                        self.expr.sub_span(call.range.clone()),
                        format!("unknown {kind}"),
                    ),
                );
            }
            if let Some((program, range)) = &call.jq_program {
                if let Err(e) = expr::jq::compile(program) {
                    diags.push(
                        Diagnostic::error(
                            Rule::UnknownFilter,
                            format!("step `{}`, {}: {e}", self.step.id, self.field.as_str()),
                        )
                        .at(
                            &self.runbook.file,
                            self.expr.sub_span(range.clone()),
                            "invalid jq",
                        ),
                    );
                }
            }
        }
    }
}
