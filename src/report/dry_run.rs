//! `run --dry-run`: what would happen, without contacting anything — the steps in waves
//! (what runs together), each action with its arguments resolved as far as params, vars
//! and run allow, `when` conditions, and which steps mutate and would ask.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::style::Painter;
use crate::config::EnvConfig;
use crate::expr::Scope;
use crate::library::Checked;
use crate::model::duration::format_duration;
use crate::redact::{Redactor, is_credential_header};

/// The dry-run document (also the `--format json` output).
pub fn build(
    checked: &Checked,
    params: &Map<String, Value>,
    env: &EnvConfig,
    run_id: &str,
    nested_mutates: &dyn Fn(&str) -> bool,
    selected: Option<&[bool]>,
    redactor: &Redactor,
) -> Value {
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
                mutating_steps.push(Value::String(step.id.clone()));
            }
            let description = action.describe(&args, env);
            mask_credential_headers(&mut args);
            let mut s = json!({
                "id": step.id,
                "name": step.title(),
                "action": action.spec().name,
                "description": description,
                "args": args,
                "needs": step.needs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                "when": step.when.as_ref().map(|w| w.source().trim().to_string()),
                "mutating": mutating,
                "asks": asks,
                "timeout": format_duration(step.timeout),
                "tags": step.tags,
            });
            if let Some(r) = &step.retry {
                s["retry"] = json!({
                    "attempts": r.attempts,
                    "delay": format_duration(r.delay),
                    "until": r.until.as_ref().map(|u| u.source().trim().to_string()),
                });
            }
            let expect: Vec<String> = match &step.expect {
                Some(list) => list.iter().map(|e| e.source().trim().to_string()).collect(),
                None => vec![format!("(default) {}", action.spec().default_expect)],
            };
            s["expect"] = json!(expect);
            if !step.warn_if.is_empty() {
                s["warn_if"] = json!(
                    step.warn_if
                        .iter()
                        .map(|e| e.source().trim())
                        .collect::<Vec<_>>()
                );
            }
            if !step.fail_if.is_empty() {
                s["fail_if"] = json!(
                    step.fail_if
                        .iter()
                        .map(|e| e.source().trim())
                        .collect::<Vec<_>>()
                );
            }
            steps.push(s);
        }
        waves.push(json!({"wave": w + 1, "steps": steps}));
    }
    let mut doc = json!({
        "runbook": rb.name,
        "title": rb.title,
        "mode": "dry-run",
        "env": env.name,
        "params": params,
        "waves": waves,
        "mutating_steps": mutating_steps,
    });
    redactor.redact_json(&mut doc);
    doc
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
pub fn render_human(doc: &Value, p: Painter) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    out.push_str(&format!(
        "{} {} — {}  {}\n",
        p.bold("Dry run of"),
        p.bold(&s(&doc["runbook"])),
        s(&doc["title"]),
        p.dim(&format!(
            "(env {}; nothing is contacted, nothing changes)",
            s(&doc["env"])
        ))
    ));
    if let Some(params) = doc["params"].as_object() {
        if !params.is_empty() {
            let list: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::expr::text_of(v)))
                .collect();
            out.push_str(&format!("Params: {}\n", list.join(" ")));
        }
    }
    let empty = Vec::new();
    for wave in doc["waves"].as_array().unwrap_or(&empty) {
        let steps = wave["steps"].as_array().unwrap_or(&empty);
        let together = if steps.len() > 1 {
            format!(" — {} steps run concurrently", steps.len())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n{}{}\n",
            p.bold(&format!("Wave {}", wave["wave"])),
            p.dim(&together)
        ));
        for st in steps {
            let mark = if st["mutating"] == Value::Bool(true) {
                "⚠"
            } else {
                "•"
            };
            out.push_str(&format!(
                "  {mark} {:<20} {:<12} {}\n",
                p.bold(&s(&st["id"])),
                s(&st["action"]),
                s(&st["description"])
            ));
            let needs: Vec<String> = st["needs"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(&s)
                .collect();
            if !needs.is_empty() {
                out.push_str(&format!("      needs: {}\n", needs.join(", ")));
            }
            if let Some(w) = st["when"].as_str() {
                out.push_str(&format!("      when:  {w}\n"));
            }
            out.push_str(&format!(
                "      args:  {}\n",
                p.dim(&st["args"].to_string())
            ));
            if let Some(asks) = st["asks"].as_str() {
                let what = if st["mutating"] == Value::Bool(true) {
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
    let mutating = doc["mutating_steps"].as_array().map_or(0, Vec::len);
    let waves = doc["waves"].as_array().map_or(0, Vec::len);
    let steps: usize = doc["waves"].as_array().map_or(0, |w| {
        w.iter()
            .map(|x| x["steps"].as_array().map_or(0, Vec::len))
            .sum()
    });
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
