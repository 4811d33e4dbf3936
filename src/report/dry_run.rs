//! `run --dry-run`: what would happen, without contacting anything — the steps in waves
//! (what runs together), each action with its arguments resolved as far as params, vars
//! and run allow, `when` conditions, and which steps mutate and would ask.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::style::Painter;
use crate::config::EnvConfig;
use crate::expr::Scope;
use crate::library::Checked;
use crate::model::duration::format_duration;
use crate::redact::{Redactor, is_credential_header};

/// The dry-run document (also the `--format json` output).
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub runbook: String,
    pub title: String,
    pub mode: &'static str,
    pub env: String,
    pub params: Map<String, Value>,
    pub waves: Vec<Wave>,
    pub mutating_steps: Vec<String>,
}

/// Steps that run together.
#[derive(Debug, Serialize)]
pub struct Wave {
    pub wave: usize,
    pub steps: Vec<PlannedStep>,
}

/// One step as the dry run shows it: resolved as far as params, vars and run allow.
#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub id: String,
    pub name: String,
    pub action: String,
    pub description: String,
    pub args: Value,
    pub needs: Vec<String>,
    pub when: Option<String>,
    pub mutating: bool,
    pub asks: Option<&'static str>,
    pub timeout: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPlan>,
    pub expect: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warn_if: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail_if: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RetryPlan {
    pub attempts: u32,
    pub delay: String,
    pub until: Option<String>,
}

fn sources(list: &[crate::expr::Expr]) -> Vec<String> {
    list.iter().map(|e| e.source().trim().to_string()).collect()
}

/// Builds the dry-run document; every string in it is already masked.
pub fn build(
    checked: &Checked,
    params: &Map<String, Value>,
    env: &EnvConfig,
    run_id: &str,
    nested_mutates: &dyn Fn(&str) -> bool,
    selected: Option<&[bool]>,
    redactor: &Redactor,
) -> DryRun {
    let rb = &checked.runbook;
    let scope = Arc::new(Scope::new(
        crate::expr::from_json(&Value::Object(params.clone())),
        crate::expr::from_json(&Value::Object(env.vars.clone())),
        crate::expr::from_json(
            &json!({"id": run_id, "user": crate::exec::current_user(), "env": env.name, "dry_run": true}),
        ),
        minijinja::Value::UNDEFINED,
    ));
    let mut waves = Vec::new();
    let mut mutating_steps = Vec::new();
    let waves_of_selected = checked.graph.waves().into_iter().filter_map(|wave| {
        let kept: Vec<usize> = wave
            .into_iter()
            .filter(|&i| selected.is_none_or(|s| s[i]))
            .collect();
        (!kept.is_empty()).then_some(kept)
    });
    for (w, wave) in waves_of_selected.enumerate() {
        let mut steps = Vec::new();
        for &i in &wave {
            let step = &rb.steps[i];
            let action = step.action.action;
            let mut args = step
                .action
                .args
                .render_partial(&scope, crate::expr::BEFORE_RUN);
            redactor.add_from_args(&args);
            let mut mutating = action.mutates(&args);
            let nested = action.called_runbook(&step.action.args).is_some();
            if let Some(arg) = action.called_runbook(&step.action.args) {
                if let Some(Value::String(name)) = arg.value.literal() {
                    mutating = nested_mutates(&name);
                }
            }
            let asks = if action.asks_person() {
                Some("a person")
            } else if (mutating && !nested) || step.confirm == Some(true) {
                Some("confirmation")
            } else if mutating {
                Some("confirmation (in the nested runbook)")
            } else {
                None
            };
            if mutating {
                mutating_steps.push(step.id.clone());
            }
            let description = redactor.redact(&action.describe(&args, env));
            mask_credential_headers(&mut args);
            redactor.redact_json(&mut args);
            steps.push(PlannedStep {
                id: step.id.clone(),
                name: redactor.redact(step.title()),
                action: action.spec().name.to_string(),
                description,
                args,
                needs: step.needs.iter().map(|(n, _)| n.clone()).collect(),
                when: step.when.as_ref().map(|w| w.source().trim().to_string()),
                mutating,
                asks,
                timeout: format_duration(step.timeout),
                tags: step.tags.clone(),
                retry: step.retry.as_ref().map(|r| RetryPlan {
                    attempts: r.attempts,
                    delay: format_duration(r.delay),
                    until: r.until.as_ref().map(|u| u.source().trim().to_string()),
                }),
                expect: match &step.expect {
                    Some(list) => sources(list),
                    None => vec![format!("(default) {}", action.spec().default_expect)],
                },
                warn_if: sources(&step.warn_if),
                fail_if: sources(&step.fail_if),
            });
        }
        waves.push(Wave { wave: w + 1, steps });
    }
    let mut params = Value::Object(params.clone());
    redactor.redact_json(&mut params);
    DryRun {
        runbook: rb.name.clone(),
        title: redactor.redact(&rb.title),
        mode: "dry-run",
        env: env.name.clone(),
        params: match params {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        waves,
        mutating_steps,
    }
}

fn mask_credential_headers(args: &mut Value) {
    if let Some(headers) = args.get_mut("headers").and_then(Value::as_object_mut) {
        for (k, v) in headers.iter_mut() {
            if is_credential_header(k) {
                *v = Value::String(crate::redact::MASK.to_string());
            }
        }
    }
}

/// The human rendering of the dry-run document.
pub fn render_human(doc: &DryRun, p: Painter) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} {} — {}  {}\n",
        p.bold("Dry run of"),
        p.bold(&doc.runbook),
        doc.title,
        p.dim(&format!(
            "(env {}; nothing is contacted, nothing changes)",
            doc.env
        ))
    ));
    if !doc.params.is_empty() {
        let list: Vec<String> = doc
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::expr::text_of(v)))
            .collect();
        out.push_str(&format!("Params: {}\n", list.join(" ")));
    }
    for wave in &doc.waves {
        let together = if wave.steps.len() > 1 {
            format!(" — {} steps run concurrently", wave.steps.len())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n{}{}\n",
            p.bold(&format!("Wave {}", wave.wave)),
            p.dim(&together)
        ));
        for st in &wave.steps {
            let mark = if st.mutating { "⚠" } else { "•" };
            out.push_str(&format!(
                "  {mark} {:<20} {:<12} {}\n",
                p.bold(&st.id),
                st.action,
                st.description
            ));
            if !st.needs.is_empty() {
                out.push_str(&format!("      needs: {}\n", st.needs.join(", ")));
            }
            if let Some(w) = &st.when {
                out.push_str(&format!("      when:  {w}\n"));
            }
            out.push_str(&format!("      args:  {}\n", p.dim(&st.args.to_string())));
            if let Some(asks) = st.asks {
                let what = if st.mutating {
                    "mutates — asks for "
                } else {
                    "asks for "
                };
                out.push_str(&format!(
                    "      {}\n",
                    p.paint(
                        anstyle::AnsiColor::Yellow.on_default().bold(),
                        &format!("{what}{asks}")
                    )
                ));
            }
        }
    }
    let mutating = doc.mutating_steps.len();
    let waves = doc.waves.len();
    let steps: usize = doc.waves.iter().map(|w| w.steps.len()).sum();
    out.push_str(&format!(
        "\n{} {}, {} {}, {mutating} mutating.\n",
        waves,
        plural(waves, "wave"),
        steps,
        plural(steps, "step")
    ));
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
