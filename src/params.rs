//! Runbook params: `--param key=value` (or a nested runbook's `params`) checked against
//! the declarations — unknown, missing required, pattern — before anything runs.

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::expr::text_of;
use crate::model::Runbook;
use crate::rules::Rule;
use crate::suggest;

/// Splits `key=value` from the command line.
pub fn parse_cli_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

/// The params of a run: given values (converted to the default's type), defaults, and
/// with `use_examples` the examples of required params. Every problem is reported.
pub fn resolve(
    runbook: &Runbook,
    given: &[(String, String)],
    use_examples: bool,
) -> Result<Map<String, Value>, Vec<Diagnostic>> {
    let typed: Vec<(String, Value)> = given
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    resolve_values(runbook, &typed, use_examples)
}

pub fn resolve_values(
    runbook: &Runbook,
    given: &[(String, Value)],
    use_examples: bool,
) -> Result<Map<String, Value>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    for (k, _) in given {
        if runbook.param(k).is_none() {
            let declared = runbook.params.iter().map(|p| p.name.as_str());
            let help = suggest::help(k, declared).unwrap_or_else(|| {
                if runbook.params.is_empty() {
                    format!("runbook `{}` takes no params", runbook.name)
                } else {
                    format!(
                        "params of `{}`: {}",
                        runbook.name,
                        runbook
                            .params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            });
            errors.push(
                Diagnostic::error(
                    Rule::UndeclaredParam,
                    format!("unknown param `{k}` for runbook `{}`", runbook.name),
                )
                .help(help),
            );
        }
    }
    let mut out = Map::new();
    for p in &runbook.params {
        let given_value = given
            .iter()
            .rev()
            .find(|(k, _)| *k == p.name)
            .map(|(_, v)| v.clone());
        let value = match given_value {
            Some(v) => match convert_for(p, &v) {
                Ok(v) => Some(v),
                Err(why) => {
                    errors.push(
                        Diagnostic::error(Rule::InvalidValue, format!("param `{}`: {why}", p.name))
                            .at(&runbook.file, p.span, "declared here"),
                    );
                    continue;
                }
            },
            None => p.default.clone().or_else(|| {
                if use_examples {
                    p.example.clone()
                } else {
                    None
                }
            }),
        };
        let Some(value) = value else {
            if p.required {
                let example = p
                    .example
                    .as_ref()
                    .map_or_else(|| "VALUE".to_string(), text_of);
                errors.push(
                    Diagnostic::error(
                        Rule::MissingKey,
                        format!("missing required param `{}`", p.name),
                    )
                    .at(&runbook.file, p.span, "declared here")
                    .help(format!(
                        "pass --param {}={example}{}",
                        p.name,
                        p.description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    )),
                );
            } else {
                out.insert(p.name.clone(), Value::Null);
            }
            continue;
        };
        if let Err(why) = check_declared(p, &value) {
            errors.push(
                Diagnostic::error(Rule::InvalidValue, format!("param `{}`: {why}", p.name)).at(
                    &runbook.file,
                    p.span,
                    "declared here",
                ),
            );
            continue;
        }
        if let Some(re) = &p.pattern {
            let text = text_of(&value);
            if !re.is_match(&text) {
                errors.push(
                    Diagnostic::error(
                        Rule::InvalidValue,
                        format!(
                            "param `{}` = `{text}` does not match the pattern `{}`",
                            p.name,
                            re.as_str()
                        ),
                    )
                    .at(&runbook.file, p.span, "declared here")
                    .help_opt(
                        p.example
                            .as_ref()
                            .map(|e| format!("for example: --param {}={}", p.name, text_of(e))),
                    ),
                );
                continue;
            }
        }
        out.insert(p.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A given value as the param's `type` says (else as its default's type).
pub fn convert_for(p: &crate::model::Param, v: &Value) -> Result<Value, String> {
    use crate::model::ParamType;
    let Some(ty) = p.ty else {
        return convert(v, p.default.as_ref());
    };
    let text = text_of(v);
    match ty {
        ParamType::String => Ok(Value::String(text)),
        ParamType::Int => convert(v, Some(&Value::from(0))),
        ParamType::Number => convert(v, Some(&Value::from(0.5))),
        ParamType::Bool => convert(v, Some(&Value::Bool(false))),
        ParamType::Duration => crate::model::duration::parse_duration(text.trim())
            .map(|_| Value::String(text.trim().to_string()))
            .map_err(|e| format!("`{text}` is not a duration ({e}; e.g. 30s, 5m, 1h)")),
    }
}

/// Whether a value (given, a default or an example) is one the param allows: of its
/// `type` and among its `enum`.
pub fn check_declared(p: &crate::model::Param, v: &Value) -> Result<(), String> {
    let v = convert_for(p, v)?;
    if let Some(choices) = &p.choices {
        let text = text_of(&v);
        if !choices.iter().any(|c| *c == v || text_of(c) == text) {
            let names: Vec<String> = choices.iter().map(text_of).collect();
            let hint = suggest::help(&text, names.iter().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(format!("`{text}` is not one of {}{hint}", names.join(", ")));
        }
    }
    Ok(())
}

/// A command-line string takes the type of the param's default (number, boolean).
fn convert(v: &Value, default: Option<&Value>) -> Result<Value, String> {
    let Value::String(s) = v else {
        return Ok(v.clone());
    };
    match default {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{s}` is not an integer")),
        Some(Value::Number(_)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{s}` is not a number")),
        Some(Value::Bool(_)) => match s.trim() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{s}` is not true or false")),
        },
        _ => Ok(v.clone()),
    }
}
