//! `${{ expr }}` templates inside strings. A string that is exactly one `${{ expr }}`
//! keeps the value's type; otherwise the parts are joined as text.

use std::sync::Arc;

use crate::source::{SourceFile, Span};

use super::{EvalError, Expr, Scope, SyntaxError};

#[derive(Debug)]
pub enum Part {
    Lit(String),
    Expr(Expr),
}

/// A string with zero or more `${{ }}` expressions, parsed once at load time.
#[derive(Debug)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

/// Problems found while parsing one template (all of them).
pub type TemplateError = Vec<SyntaxError>;

impl Template {
    /// Parses `raw`, the value of a YAML string at `span` of `file`.
    pub fn parse(raw: &str, span: Span, file: &SourceFile) -> Result<Template, TemplateError> {
        let node_text = file.slice(span);
        let base = node_text.find(raw).map(|pos| span.start + pos);
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut rest = 0;
        while let Some(open) = raw[rest..].find("${{").map(|i| rest + i) {
            if open > rest {
                parts.push(Part::Lit(raw[rest..open].to_string()));
            }
            let inner_start = open + 3;
            let Some(close) = find_close(&raw[inner_start..]).map(|i| inner_start + i) else {
                errors.push(SyntaxError {
                    message: "`${{` is never closed with `}}`".to_string(),
                    span: base.map_or(span, |b| Span::new(b + open, b + open + 3)),
                });
                rest = raw.len();
                break;
            };
            let inner = &raw[inner_start..close];
            let (expr_span, exact) = match base {
                Some(b) => (Span::at(b + inner_start), true),
                None => match node_text.find(inner) {
                    Some(pos) if !inner.trim().is_empty() => (Span::at(span.start + pos), true),
                    _ => (span, false),
                },
            };
            match Expr::parse(inner, expr_span, exact) {
                Ok(e) => parts.push(Part::Expr(e)),
                Err(e) => errors.push(e),
            }
            rest = close + 2;
        }
        if rest < raw.len() {
            parts.push(Part::Lit(raw[rest..].to_string()));
        }
        if errors.is_empty() {
            Ok(Template {
                raw: raw.to_string(),
                parts,
            })
        } else {
            Err(errors)
        }
    }

    /// A template without any expression.
    pub fn literal(text: impl Into<String>) -> Template {
        let text = text.into();
        Template {
            parts: vec![Part::Lit(text.clone())],
            raw: text,
        }
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The expression when the string is exactly one `${{ expr }}`.
    pub fn single_expr(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }

    /// Evaluates: a single expression keeps its type, anything else is a string.
    pub fn render(&self, scope: &Arc<Scope>) -> Result<serde_json::Value, EvalError> {
        if let Some(e) = self.single_expr() {
            return e.eval_json(scope);
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => out.push_str(&text_of(&e.eval_json(scope)?)),
            }
        }
        Ok(serde_json::Value::String(out))
    }

    /// A `shell:` script: `{"script": ..., "values": {"OPSCTL_VALUE_1": ...}}`, where the
    /// script refers to each value through its environment variable (see [`super::shell`]).
    pub fn render_shell(&self, scope: &Arc<Scope>) -> Result<serde_json::Value, EvalError> {
        let mut script = String::new();
        let mut values = serde_json::Map::new();
        let mut scanner = super::shell::Scanner::default();
        for part in &self.parts {
            match part {
                Part::Lit(s) => {
                    scanner.feed(s);
                    script.push_str(s);
                }
                Part::Expr(e) => {
                    let value = text_of(&e.eval_json(scope)?);
                    let name = format!("{}{}", super::shell::VAR_PREFIX, values.len() + 1);
                    script.push_str(&super::shell::reference(&name, scanner.quote()));
                    scanner.inserted();
                    values.insert(name, serde_json::Value::String(value));
                }
            }
        }
        Ok(serde_json::json!({"script": script, "values": values}))
    }

    /// [`render_shell`](Self::render_shell) when every value is known before the run,
    /// else the script as written.
    pub fn render_shell_partial(&self, scope: &Arc<Scope>, roots: &[&str]) -> serde_json::Value {
        if self.exprs().all(|e| evaluable_before_run(e, roots)) {
            if let Ok(v) = self.render_shell(scope) {
                return v;
            }
        }
        serde_json::Value::String(self.raw.clone())
    }

    /// Like [`render`](Self::render) but leaves `${{ }}` parts that read anything outside
    /// `roots` as written (a dry run knows params, not step outputs).
    pub fn render_partial(&self, scope: &Arc<Scope>, roots: &[&str]) -> serde_json::Value {
        if let Some(e) = self.single_expr() {
            if evaluable_before_run(e, roots) {
                if let Ok(v) = e.eval_json(scope) {
                    return v;
                }
            }
            return serde_json::Value::String(self.raw.clone());
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => match evaluable_before_run(e, roots).then(|| e.eval_json(scope)) {
                    Some(Ok(v)) => out.push_str(&text_of(&v)),
                    _ => {
                        out.push_str("${{ ");
                        out.push_str(e.source().trim());
                        out.push_str(" }}");
                    }
                },
            }
        }
        serde_json::Value::String(out)
    }
}

/// Whether a partial render may evaluate `e`: it reads only `roots` (none: evaluate
/// nothing) and calls no `jq` (which can run long; nothing static runs it).
fn evaluable_before_run(e: &Expr, roots: &[&str]) -> bool {
    !roots.is_empty() && e.reads_only(roots) && !e.calls_jq()
}

/// How an interpolated value reads inside a string.
pub fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Index of the closing `}}`, skipping quoted strings inside the expression.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'\'' || b == b'"' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::from_json;
    use serde_json::json;

    fn scope() -> Arc<Scope> {
        Arc::new(Scope::new(
            from_json(&json!({"ns": "prod", "replicas": 3})),
            from_json(&json!({})),
            from_json(&json!({})),
            from_json(&json!({})),
        ))
    }

    fn tmpl(text: &str) -> Template {
        let file = SourceFile::new("t.yaml", format!("k: \"{text}\"\n"));
        Template::parse(text, Span::new(3, 3 + text.len() + 2), &file).unwrap()
    }

    #[test]
    fn single_expression_keeps_type() {
        assert_eq!(
            tmpl("${{ params.replicas }}").render(&scope()).unwrap(),
            json!(3)
        );
        assert_eq!(
            tmpl("ns=${{ params.ns }}/${{ params.replicas }}")
                .render(&scope())
                .unwrap(),
            json!("ns=prod/3")
        );
    }

    #[test]
    fn locates_expressions_in_the_file() {
        let file = SourceFile::new("t.yaml", "k: \"a ${{ params.x }}\"\n");
        let t = Template::parse("a ${{ params.x }}", Span::new(3, 22), &file).unwrap();
        let e = t.exprs().next().unwrap();
        assert_eq!(file.slice(e.full_span()), " params.x ");
    }

    #[test]
    fn partial_render_keeps_unknown_parts() {
        let t = tmpl("${{ params.ns }}-${{ steps.a.outputs.x }}");
        assert_eq!(
            t.render_partial(&scope(), &["params"]),
            json!("prod-${{ steps.a.outputs.x }}")
        );
    }

    #[test]
    fn unclosed_is_an_error_and_quotes_are_respected() {
        let file = SourceFile::new("t.yaml", "k: x\n");
        assert!(Template::parse("${{ params.x ", Span::new(3, 4), &file).is_err());
        let t = tmpl("${{ '}}' }}");
        assert_eq!(t.render(&scope()).unwrap(), json!("}}"));
    }
}
