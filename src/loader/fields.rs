//! Walking a YAML mapping by hand: take the keys you know, and report duplicates and
//! unknown keys (with a suggestion) for the rest.

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::rules::Rule;
use crate::source::{SourceFile, Span};
use crate::suggest;
use crate::yaml::{Node, Value};

/// Where diagnostics of one file go.
pub struct Cx<'a> {
    pub file: &'a Arc<SourceFile>,
    pub diags: &'a mut Diagnostics,
}

impl Cx<'_> {
    pub fn error(
        &mut self,
        rule: Rule,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) {
        let d = Diagnostic::error(rule, message).at(self.file, span, label);
        self.diags.push(d);
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// "expected a string, found a list" at the node.
    pub fn type_error(&mut self, node: &Node, what: &str, expected: &str) {
        self.error(
            Rule::InvalidType,
            format!("`{what}` must be {expected}, found {}", node.kind()),
            node.span,
            format!("expected {expected}"),
        );
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, what, "a string");
                None
            }
        }
    }

    /// A string, or a scalar read as one (numbers and booleans are accepted as text).
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.type_error(node, what, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.type_error(node, what, "true or false");
                None
            }
        }
    }

    /// A list of strings without their spans (tags).
    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        self.string_list(node, what)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Vec<(String, Span)> {
        match &node.value {
            Value::Str(s) => vec![(s.clone(), node.span)],
            Value::Seq(items) => items
                .iter()
                .filter_map(|n| self.text(n, what).map(|s| (s, n.span)))
                .collect(),
            Value::Null => Vec::new(),
            _ => {
                self.type_error(node, what, "a list of strings");
                Vec::new()
            }
        }
    }
}

/// The entries of one mapping, with the keys taken so far.
pub struct Fields<'n> {
    entries: Vec<(String, &'n Node, &'n Node)>,
    used: Vec<bool>,
    pub span: Span,
}

impl<'n> Fields<'n> {
    /// Reads `node` as a mapping (reporting a type error otherwise) and reports
    /// duplicate keys.
    pub fn of(cx: &mut Cx<'_>, node: &'n Node, what: &str) -> Option<Fields<'n>> {
        let Some(map) = node.as_map() else {
            cx.type_error(node, what, "a mapping");
            return None;
        };
        let mut entries: Vec<(String, &Node, &Node)> = Vec::with_capacity(map.len());
        let mut used = Vec::with_capacity(map.len());
        let mut seen: std::collections::HashMap<String, Span> = std::collections::HashMap::new();
        for (k, v) in map {
            let key = k
                .scalar_text()
                .unwrap_or_else(|| "<complex key>".to_string());
            if let Some(first) = seen.get(&key) {
                cx.push(
                    Diagnostic::error(
                        Rule::DuplicateKey,
                        format!("duplicate key `{key}` in {what}"),
                    )
                    .at(cx.file, k.span, "repeated here")
                    .also(cx.file, *first, "first defined here")
                    .help("remove one of the two; YAML tools disagree on which one wins"),
                );
                continue;
            }
            seen.insert(key.clone(), k.span);
            entries.push((key, k, v));
            used.push(false);
        }
        Some(Fields {
            entries,
            used,
            span: node.span,
        })
    }

    /// The value under `key`, marking it known.
    pub fn take(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        self.used[i] = true;
        Some(self.entries[i].2)
    }

    /// The key node of `key` (for pointing at it).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, k, _)| k.span)
    }

    /// Entries not taken yet, in order.
    pub fn remaining(&self) -> Vec<(String, &'n Node, &'n Node)> {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((k, kn, v), _)| (k.clone(), *kn, *v))
            .collect()
    }

    pub fn mark(&mut self, key: &str) {
        if let Some(i) = self.entries.iter().position(|(k, _, _)| k == key) {
            self.used[i] = true;
        }
    }

    /// Reports every key not taken as unknown, suggesting the closest of `known`.
    pub fn finish(self, cx: &mut Cx<'_>, what: &str, known: &[&str]) {
        for (key, key_node, _) in self.remaining() {
            cx.push(unknown_key(cx.file, &key, key_node.span, what, known));
        }
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &'n Node, &'n Node)> {
        self.entries.iter().map(|(k, kn, v)| (k.as_str(), *kn, *v))
    }
}

/// S001 with a did-you-mean help line.
pub fn unknown_key(
    file: &Arc<SourceFile>,
    key: &str,
    span: Span,
    what: &str,
    known: &[&str],
) -> Diagnostic {
    let help = suggest::help(key, known.iter().copied())
        .unwrap_or_else(|| format!("known keys: {}", known.join(", ")));
    Diagnostic::error(Rule::UnknownKey, format!("unknown key `{key}` in {what}"))
        .at(file, span, "unknown key")
        .help(help)
}
