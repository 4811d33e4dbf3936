//! Walks an expression's syntax tree for the names it reads (`steps.X.outputs.Y`,
//! `params.P`) and the filters, tests and functions it calls. Lint uses these to catch
//! undeclared params, unknown steps and races before anything runs.

use std::ops::Range;

use minijinja::machinery::ast::{self, CallArg, Expr};

/// One segment of a name path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// `.name` or `["name"]`
    Name(String),
    /// `[0]`
    Index(i64),
    /// `[expr]`: not known before run time.
    Dynamic,
}

/// A name read by an expression: `root` then `path`, at `range` of the expression text.
#[derive(Clone, Debug)]
pub struct Ref {
    pub root: String,
    pub path: Vec<Seg>,
    pub range: Range<usize>,
}

impl Ref {
    /// The n-th path segment as a name, if it is one.
    pub fn name_at(&self, n: usize) -> Option<&str> {
        match self.path.get(n) {
            Some(Seg::Name(s)) => Some(s),
            _ => None,
        }
    }

    /// Dotted rendering for messages: `steps.db.outputs.rows`.
    pub fn dotted(&self, depth: usize) -> String {
        let mut s = self.root.clone();
        for seg in self.path.iter().take(depth) {
            match seg {
                Seg::Name(n) if is_ident(n) => {
                    s.push('.');
                    s.push_str(n);
                }
                Seg::Name(n) => s.push_str(&format!("[\"{n}\"]")),
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
                Seg::Dynamic => s.push_str("[…]"),
            }
        }
        s
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Filter,
    Test,
    Function,
}

/// A filter, test or function use; for `jq`, its literal program.
#[derive(Clone, Debug)]
pub struct Call {
    pub kind: CallKind,
    pub name: String,
    pub range: Range<usize>,
    pub jq_program: Option<(String, Range<usize>)>,
}

pub fn collect(expr: &Expr<'_>) -> (Vec<Ref>, Vec<Call>) {
    let mut w = Walker::default();
    w.expr(expr);
    (w.refs, w.calls)
}

#[derive(Default)]
struct Walker {
    refs: Vec<Ref>,
    calls: Vec<Call>,
}

fn range(span: minijinja::machinery::Span) -> Range<usize> {
    span.start_offset as usize..span.end_offset as usize
}

impl Walker {
    fn expr(&mut self, e: &Expr<'_>) {
        match e {
            Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) => self.chain(e),
            Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(f) = &i.false_expr {
                    self.expr(f);
                }
            }
            Expr::Filter(f) => {
                if let Some(inner) = &f.expr {
                    self.expr(inner);
                }
                let jq_program = (f.name == "jq").then(|| first_const_str(&f.args)).flatten();
                self.calls.push(Call {
                    kind: CallKind::Filter,
                    name: f.name.to_string(),
                    range: range(f.span()),
                    jq_program,
                });
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.calls.push(Call {
                    kind: CallKind::Test,
                    name: t.name.to_string(),
                    range: range(t.span()),
                    jq_program: None,
                });
                self.args(&t.args);
            }
            Expr::Call(c) => {
                match &c.expr {
                    Expr::Var(v) => {
                        let jq_program = (v.id == "jq").then(|| {
                            c.args.get(1).and_then(|a| match a {
                                CallArg::Pos(Expr::Const(k)) => {
                                    k.value.as_str().map(|s| (s.to_string(), range(k.span())))
                                }
                                _ => None,
                            })
                        });
                        self.calls.push(Call {
                            kind: CallKind::Function,
                            name: v.id.to_string(),
                            range: range(v.span()),
                            jq_program: jq_program.flatten(),
                        });
                    }
                    // A method call: `x.items()` reads `x`.
                    Expr::GetAttr(g) => self.expr(&g.expr),
                    other => self.expr(other),
                }
                self.args(&c.args);
            }
            Expr::List(l) => l.items.iter().for_each(|i| self.expr(i)),
            Expr::Tuple(t) => t.items.iter().for_each(|i| self.expr(i)),
            Expr::Map(m) => {
                m.keys.iter().for_each(|k| self.expr(k));
                m.values.iter().for_each(|v| self.expr(v));
            }
        }
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for a in args {
            match a {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    /// A `a.b["c"][0]` chain rooted at a variable becomes one [`Ref`]; dynamic
    /// subscripts are walked for their own references.
    fn chain(&mut self, e: &Expr<'_>) {
        let mut path = Vec::new();
        let mut cur = e;
        let end = expr_span(e).end;
        loop {
            match cur {
                Expr::GetAttr(g) => {
                    path.push(Seg::Name(g.name.to_string()));
                    cur = &g.expr;
                }
                Expr::GetItem(g) => {
                    let seg = match &g.subscript_expr {
                        Expr::Const(c) => {
                            match (c.value.as_str(), i64::try_from(c.value.clone())) {
                                (Some(s), _) => Seg::Name(s.to_string()),
                                (None, Ok(i)) => Seg::Index(i),
                                _ => Seg::Dynamic,
                            }
                        }
                        other => {
                            self.expr(other);
                            Seg::Dynamic
                        }
                    };
                    path.push(seg);
                    cur = &g.expr;
                }
                Expr::Var(v) => {
                    path.reverse();
                    let start = range(v.span()).start;
                    self.refs.push(Ref {
                        root: v.id.to_string(),
                        path,
                        range: start..end.max(start),
                    });
                    return;
                }
                other => {
                    // e.g. `(a or b).c` or `[1,2][0]`: walk the base normally.
                    self.expr(other);
                    return;
                }
            }
        }
    }
}

fn first_const_str(args: &[CallArg<'_>]) -> Option<(String, Range<usize>)> {
    match args.first() {
        Some(CallArg::Pos(Expr::Const(c))) => {
            c.value.as_str().map(|s| (s.to_string(), range(c.span())))
        }
        _ => None,
    }
}

fn expr_span(e: &Expr<'_>) -> Range<usize> {
    let span = match e {
        Expr::Var(s) => s.span(),
        Expr::Const(s) => s.span(),
        Expr::Slice(s) => s.span(),
        Expr::UnaryOp(s) => s.span(),
        Expr::BinOp(s) => s.span(),
        Expr::Compare(s) => s.span(),
        Expr::IfExpr(s) => s.span(),
        Expr::Filter(s) => s.span(),
        Expr::Test(s) => s.span(),
        Expr::GetAttr(s) => s.span(),
        Expr::GetItem(s) => s.span(),
        Expr::Call(s) => s.span(),
        Expr::List(s) => s.span(),
        Expr::Tuple(s) => s.span(),
        Expr::Map(s) => s.span(),
    };
    range(span)
}

#[allow(dead_code)]
fn _assert_ast_is_used(_: &ast::Expr<'_>) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs_of(src: &str) -> Vec<String> {
        let ast = minijinja::machinery::parse_expr(src).unwrap();
        collect(&ast)
            .0
            .iter()
            .map(|r| r.dotted(usize::MAX))
            .collect()
    }

    #[test]
    fn finds_chains_and_subscripts() {
        assert_eq!(
            refs_of("steps.pods.outputs.crashlooping > 0 and not params.force"),
            vec!["steps.pods.outputs.crashlooping", "params.force"]
        );
        assert_eq!(
            refs_of("steps[\"failed-jobs\"].outputs.value"),
            vec!["steps[\"failed-jobs\"].outputs.value"]
        );
        assert_eq!(refs_of("rows[0].n | int"), vec!["rows[0].n"]);
        assert_eq!(
            refs_of("steps[params.x].status"),
            vec!["params.x", "steps[…].status"]
        );
    }

    #[test]
    fn ranges_cover_the_chain() {
        let src = "1 + steps.a.outputs.b";
        let ast = minijinja::machinery::parse_expr(src).unwrap();
        let r = &collect(&ast).0[0];
        assert_eq!(&src[r.range.clone()], "steps.a.outputs.b");
    }
}
