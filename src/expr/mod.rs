//! Expressions and `${{ }}` templates (contract section 4): parsed once at load time with
//! minijinja, inspected for the names they read (lint: undeclared params, races), and
//! evaluated by the executor against a [`Scope`].

pub mod jq;
mod refs;
mod scope;
pub mod shell;
mod template;

use std::sync::{Arc, LazyLock};

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::source::Span;

pub use refs::{Call, CallKind, Ref, Seg};
pub use scope::Scope;

/// Names known before any step has run: what a dry run or plan can resolve.
pub const BEFORE_RUN: &[&str] = &["params", "vars", "run"];
pub use template::{Part, Template, TemplateError, text_of};

/// Instructions one evaluation may execute (a loop over ten thousand rows fits easily).
const EXPRESSION_FUEL: u64 = 1_000_000;

/// The one expression environment: strict undefined, the builtin filters, plus `jq`
/// and `from_json`. Static so compiled expressions can live in the runbook model.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // An expression is a condition or a value, not a program: bound its work.
    env.set_fuel(Some(EXPRESSION_FUEL));
    env.add_filter("jq", jq_filter);
    env.add_filter("from_json", from_json_filter);
    env.add_function("jq", jq_filter);
    env
});

fn jq_filter(value: Value, program: &str) -> Result<Value, minijinja::Error> {
    let input = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    jq::run(program, &input)
        .map(|out| Value::from(minijinja::value::Serde(&out)))
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
}

fn from_json_filter(text: &str) -> Result<Value, minijinja::Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|v| Value::from(minijinja::value::Serde(&v)))
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

/// A compiled expression with the names it reads.
pub struct Expr {
    source: String,
    /// Where the expression text is in its file (exact when `exact`).
    span: Span,
    exact: bool,
    compiled: minijinja::Expression<'static, 'static>,
    refs: Vec<Ref>,
    calls: Vec<Call>,
    /// The expression is one name and nothing else (`steps.gen.outputs.value`): its value
    /// passes through unchanged.
    bare_ref: bool,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// An expression that does not parse: message and the span of the problem in the file.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

/// An evaluation failure, already phrased for an on-call engineer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

impl Expr {
    /// Parses `source`; `span` is where its text starts in the file, `exact` says whether
    /// offsets inside the text map one-to-one onto the file (false for escaped strings).
    pub fn parse(source: &str, span: Span, exact: bool) -> Result<Expr, SyntaxError> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(SyntaxError {
                message: "empty expression".to_string(),
                span,
            });
        }
        let ast = minijinja::machinery::parse_expr(source).map_err(|e| SyntaxError {
            message: syntax_message(&e),
            span: error_span(&e, span, exact, source.len()),
        })?;
        let (refs, calls) = refs::collect(&ast);
        let bare_ref = matches!(
            ast,
            minijinja::machinery::ast::Expr::Var(_)
                | minijinja::machinery::ast::Expr::GetAttr(_)
                | minijinja::machinery::ast::Expr::GetItem(_)
        ) && refs.len() == 1
            && calls.is_empty();
        let compiled = ENV
            .compile_expression_owned(source.to_string())
            .map_err(|e| SyntaxError {
                message: syntax_message(&e),
                span,
            })?;
        Ok(Expr {
            source: source.to_string(),
            span,
            exact,
            compiled,
            refs,
            calls,
            bare_ref,
        })
    }

    /// Whether the expression is one name and nothing else, so its value is passed on
    /// unchanged (secrets may only be used this way).
    pub fn is_bare_ref(&self) -> bool {
        self.bare_ref
    }

    /// Whether the expression calls `jq` (which may run long: never evaluated statically).
    pub fn calls_jq(&self) -> bool {
        self.calls.iter().any(|c| c.name == "jq")
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn span(&self) -> Span {
        self.span
    }

    /// Names read by the expression (`steps.db.outputs.rows`, `params.ns`, ...).
    pub fn refs(&self) -> &[Ref] {
        &self.refs
    }

    /// Filters, tests and functions used.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The file span of a byte range of the expression text.
    pub fn sub_span(&self, range: std::ops::Range<usize>) -> Span {
        if self.exact {
            Span::new(self.span.start + range.start, self.span.start + range.end)
        } else {
            Span::new(
                self.span.start,
                self.span.start + self.source.len().min(self.span.len().max(1)),
            )
        }
    }

    /// The whole expression's span in the file.
    pub fn full_span(&self) -> Span {
        if self.exact {
            Span::new(self.span.start, self.span.start + self.source.len())
        } else {
            self.span
        }
    }

    /// Whether every name the expression reads is one of `roots`.
    pub fn reads_only(&self, roots: &[&str]) -> bool {
        self.refs.iter().all(|r| roots.contains(&r.root.as_str()))
    }

    /// Evaluates to a minijinja value.
    pub fn eval_value(&self, scope: &Arc<Scope>) -> Result<Value, EvalError> {
        self.compiled
            .eval(Value::from_dyn_object(scope.clone()))
            .map_err(|e| self.explain(&e, scope))
    }

    /// Evaluates to JSON (the value keeps its type: numbers stay numbers).
    pub fn eval_json(&self, scope: &Arc<Scope>) -> Result<serde_json::Value, EvalError> {
        let value = self.eval_value(scope)?;
        to_json(&value).map_err(|message| EvalError {
            message: format!("`{}`: {message}", self.source.trim()),
        })
    }

    /// Evaluates as a condition (Jinja truthiness).
    pub fn eval_bool(&self, scope: &Arc<Scope>) -> Result<bool, EvalError> {
        Ok(self.eval_value(scope)?.is_true())
    }

    fn explain(&self, err: &minijinja::Error, scope: &Arc<Scope>) -> EvalError {
        let expr = self.source.trim();
        if err.kind() == minijinja::ErrorKind::UndefinedError {
            if let Some(why) = scope.explain_undefined(&self.refs) {
                return EvalError {
                    message: format!("`{expr}`: {why}"),
                };
            }
        }
        EvalError {
            message: format!("`{expr}`: {}", error_text(err)),
        }
    }
}

/// minijinja value → JSON. Undefined is an error (strict), `none` is null.
pub fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    if value.is_undefined() {
        return Err("undefined value".to_string());
    }
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// JSON → minijinja value.
pub fn from_json(value: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Whether a filter of this name exists.
pub fn filter_exists(name: &str) -> bool {
    probe("name is filter", name)
}

/// Whether a test of this name exists.
pub fn test_exists(name: &str) -> bool {
    probe("name is test", name)
}

/// Whether a global function of this name exists.
pub fn function_exists(name: &str) -> bool {
    ENV.globals().any(|(n, _)| n == name)
}

fn probe(expr: &str, name: &str) -> bool {
    ENV.compile_expression(expr)
        .and_then(|e| e.eval(minijinja::context! { name => name }))
        .is_ok_and(|v| v.is_true())
}

fn error_text(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", kind_text(err.kind())),
        None => kind_text(err.kind()).to_string(),
    }
}

fn kind_text(kind: minijinja::ErrorKind) -> &'static str {
    use minijinja::ErrorKind as K;
    match kind {
        K::UndefinedError => "undefined value",
        K::InvalidOperation => "invalid operation",
        K::SyntaxError => "syntax error",
        K::UnknownFilter => "unknown filter",
        K::UnknownTest => "unknown test",
        K::UnknownFunction => "unknown function",
        K::UnknownMethod => "unknown method",
        K::MissingArgument => "missing argument",
        K::TooManyArguments => "too many arguments",
        K::BadSerialization => "value cannot be converted",
        _ => "evaluation failed",
    }
}

fn syntax_message(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(d) => format!("expression does not parse: {d}"),
        None => "expression does not parse".to_string(),
    }
}

fn error_span(err: &minijinja::Error, span: Span, exact: bool, len: usize) -> Span {
    match (exact, err.range()) {
        (true, Some(r)) => {
            let start = r.start.min(len);
            let end = r.end.min(len).max(start);
            Span::new(
                span.start + start,
                span.start + end.max(start + 1).min(len.max(start + 1)),
            )
        }
        _ => Span::new(span.start, span.start + len.max(1)),
    }
}

/// A regex compiled once per process for each distinct pattern: runbooks repeat the same
/// few param patterns and log filters, and compiling one (Unicode classes, `\b`) costs far
/// more than linting the step that holds it.
pub fn regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    static CACHE: Memo<Result<regex::Regex, regex::Error>> = Memo::new();
    CACHE.get_or(pattern, || regex::Regex::new(pattern))
}

/// Values computed once per process for each distinct text (compiled regexes, checked jq
/// programs), shared by every thread.
pub(crate) struct Memo<V>(
    std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, V>>>,
);

impl<V: Clone> Memo<V> {
    pub(crate) const fn new() -> Memo<V> {
        Memo(std::sync::LazyLock::new(Default::default))
    }

    /// The value for `key`, made by `make` the first time.
    pub(crate) fn get_or(&self, key: &str, make: impl FnOnce() -> V) -> V {
        if let Some(known) = self.0.lock().ok().and_then(|m| m.get(key).cloned()) {
            return known;
        }
        let value = make();
        if let Ok(mut m) = self.0.lock() {
            m.insert(key.to_string(), value.clone());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(outputs: serde_json::Value) -> Arc<Scope> {
        Arc::new(Scope {
            params: from_json(&json!({"ns": "prod", "n": 3})),
            vars: from_json(&json!({})),
            run: from_json(&json!({"id": "r1", "dry_run": false})),
            steps: from_json(&json!({"failed-jobs": {"status": "ok", "outputs": {"value": 7}}})),
            outputs: Some(from_json(&outputs)),
            item: None,
        })
    }

    #[test]
    fn evaluates_with_types_and_outputs_as_names() {
        let e = Expr::parse("status == 200 and latency_ms < 500", Span::at(0), true).unwrap();
        let s = scope(json!({"status": 200, "latency_ms": 12}));
        assert!(e.eval_bool(&s).unwrap());
        let e = Expr::parse("params.n * 2", Span::at(0), true).unwrap();
        assert_eq!(e.eval_json(&s).unwrap(), json!(6));
        let e = Expr::parse("steps[\"failed-jobs\"].outputs.value", Span::at(0), true).unwrap();
        assert_eq!(e.eval_json(&s).unwrap(), json!(7));
    }

    #[test]
    fn jq_filter_works() {
        let e = Expr::parse(
            "json | jq('.items | map(select(.ready)) | length')",
            Span::at(0),
            true,
        )
        .unwrap();
        let s = scope(json!({"json": {"items": [{"ready": true}, {"ready": false}]}}));
        assert_eq!(e.eval_json(&s).unwrap(), json!(1));
    }

    #[test]
    fn undefined_is_an_error_that_names_the_path() {
        let e = Expr::parse("steps.db.outputs.rows > 1", Span::at(0), true).unwrap();
        let err = e.eval_bool(&scope(json!({}))).unwrap_err();
        assert!(err.message.contains("steps.db"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = Expr::parse("status == ", Span::at(10), true).unwrap_err();
        assert!(err.span.start >= 10);
    }

    #[test]
    fn knows_filters() {
        assert!(filter_exists("jq"));
        assert!(filter_exists("length"));
        assert!(!filter_exists("lenght"));
        assert!(test_exists("defined"));
    }
}
