//! Action arguments as written: a tree of literals and `${{ }}` templates, resolved
//! against a scope when the step runs (or partially, for a dry run).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::expr::{EvalError, Expr, Scope, Template};
use crate::source::Span;

/// The mapping under a step's action key.
#[derive(Debug, Default)]
pub struct Args {
    pub entries: Vec<Arg>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Arg {
    pub key: String,
    pub key_span: Span,
    pub value: ArgValue,
}

#[derive(Debug)]
pub enum ArgValue {
    Lit {
        value: Value,
        span: Span,
    },
    Tmpl {
        template: Template,
        span: Span,
    },
    /// A `shell:` script with `${{ }}` parts: rendered as the script plus the values,
    /// which travel as environment variables (see [`Template::render_shell`]).
    Shell {
        template: Template,
        span: Span,
    },
    List {
        items: Vec<ArgValue>,
        span: Span,
    },
    Map {
        entries: Vec<Arg>,
        span: Span,
    },
}

impl ArgValue {
    pub fn span(&self) -> Span {
        match self {
            ArgValue::Lit { span, .. }
            | ArgValue::Tmpl { span, .. }
            | ArgValue::Shell { span, .. }
            | ArgValue::List { span, .. }
            | ArgValue::Map { span, .. } => *span,
        }
    }

    /// The value, if it contains no expression.
    pub fn literal(&self) -> Option<Value> {
        match self {
            ArgValue::Lit { value, .. } => Some(value.clone()),
            ArgValue::Tmpl { .. } | ArgValue::Shell { .. } => None,
            ArgValue::List { items, .. } => items
                .iter()
                .map(ArgValue::literal)
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            ArgValue::Map { entries, .. } => entries
                .iter()
                .map(|a| a.value.literal().map(|v| (a.key.clone(), v)))
                .collect::<Option<Map<_, _>>>()
                .map(Value::Object),
        }
    }

    pub fn is_template(&self) -> bool {
        matches!(self, ArgValue::Tmpl { .. } | ArgValue::Shell { .. })
    }

    /// Short type name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ArgValue::Lit { value, .. } => match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "a mapping",
            },
            ArgValue::Tmpl { .. } | ArgValue::Shell { .. } => "an expression",
            ArgValue::List { .. } => "a list",
            ArgValue::Map { .. } => "a mapping",
        }
    }

    fn render(&self, scope: &Arc<Scope>, path: &str) -> Result<Value, EvalError> {
        match self {
            ArgValue::Lit { value, .. } => Ok(value.clone()),
            ArgValue::Tmpl { template, .. } => template.render(scope).map_err(|e| EvalError {
                message: format!("argument `{path}`: {}", e.message),
            }),
            ArgValue::Shell { template, .. } => {
                template.render_shell(scope).map_err(|e| EvalError {
                    message: format!("argument `{path}`: {}", e.message),
                })
            }
            ArgValue::List { items, .. } => items
                .iter()
                .enumerate()
                .map(|(i, v)| v.render(scope, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            ArgValue::Map { entries, .. } => {
                render_entries(entries, scope, path).map(Value::Object)
            }
        }
    }

    fn render_partial(&self, scope: &Arc<Scope>, roots: &[&str]) -> Value {
        match self {
            ArgValue::Lit { value, .. } => value.clone(),
            ArgValue::Tmpl { template, .. } => template.render_partial(scope, roots),
            ArgValue::Shell { template, .. } => template.render_shell_partial(scope, roots),
            ArgValue::List { items, .. } => Value::Array(
                items
                    .iter()
                    .map(|v| v.render_partial(scope, roots))
                    .collect(),
            ),
            ArgValue::Map { entries, .. } => Value::Object(
                entries
                    .iter()
                    .map(|a| (a.key.clone(), a.value.render_partial(scope, roots)))
                    .collect(),
            ),
        }
    }

    pub fn collect_exprs<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            ArgValue::Lit { .. } => {}
            ArgValue::Tmpl { template, .. } | ArgValue::Shell { template, .. } => {
                out.extend(template.exprs())
            }
            ArgValue::List { items, .. } => items.iter().for_each(|v| v.collect_exprs(out)),
            ArgValue::Map { entries, .. } => {
                entries.iter().for_each(|a| a.value.collect_exprs(out))
            }
        }
    }
}

fn render_entries(
    entries: &[Arg],
    scope: &Arc<Scope>,
    path: &str,
) -> Result<Map<String, Value>, EvalError> {
    entries
        .iter()
        .map(|a| {
            let sub = if path.is_empty() {
                a.key.clone()
            } else {
                format!("{path}.{}", a.key)
            };
            a.value.render(scope, &sub).map(|v| (a.key.clone(), v))
        })
        .collect()
}

impl Args {
    pub fn get(&self, key: &str) -> Option<&Arg> {
        self.entries.iter().find(|a| a.key == key)
    }

    /// A literal string argument (`None` if absent or templated).
    pub fn literal_str(&self, key: &str) -> Option<String> {
        match self.get(key)?.value.literal()? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Resolves every template: the arguments the action receives.
    pub fn render(&self, scope: &Arc<Scope>) -> Result<Value, EvalError> {
        render_entries(&self.entries, scope, "").map(Value::Object)
    }

    /// Resolves what only reads `roots` (a dry run: params, vars, run); the rest stays
    /// as written.
    pub fn render_partial(&self, scope: &Arc<Scope>, roots: &[&str]) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|a| (a.key.clone(), a.value.render_partial(scope, roots)))
                .collect(),
        )
    }

    /// The arguments as written, `${{ }}` kept as text.
    pub fn as_written(&self) -> Value {
        self.render_partial(
            &Arc::new(Scope::new(
                minijinja::Value::UNDEFINED,
                minijinja::Value::UNDEFINED,
                minijinja::Value::UNDEFINED,
                minijinja::Value::UNDEFINED,
            )),
            &[],
        )
    }

    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        for a in &self.entries {
            a.value.collect_exprs(&mut out);
        }
        out
    }
}
