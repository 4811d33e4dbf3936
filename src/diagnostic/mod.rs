//! One `Diagnostic` type for every located problem (lint findings, load errors, invalid input),
//! rendered by the sibling modules as human text, JSON or GitHub annotations.

pub(crate) mod github;
mod human;
mod json;

use std::path::PathBuf;
use std::sync::Arc;

use crate::rules::Rule;
use crate::source::{SourceFile, Span};

pub use github::render_github;
pub use human::{render_human, render_human_all};
pub use json::{diagnostic_json, render_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A place in a file with an optional short label ("unknown key", "first defined here").
#[derive(Clone, Debug)]
pub struct Label {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub text: Option<String>,
}

impl Label {
    /// 1-based (line, column) of the span start.
    pub fn line_col(&self) -> (usize, usize) {
        self.file.line_col(self.span.start)
    }
}

/// A problem with a rule code, a one-line message, an optional location and a help line.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub primary: Option<Box<Label>>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// The file concerned when there is no source text to point into (unreadable files).
    pub path: Option<Box<PathBuf>>,
}

impl Diagnostic {
    pub fn error(rule: Rule, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            rule,
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            path: None,
        }
    }

    pub fn warning(rule: Rule, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(rule, message)
        }
    }

    /// Points the diagnostic at `span` of `file`, with a short label under it.
    pub fn at(
        mut self,
        file: &Arc<SourceFile>,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        let label = label.into();
        self.primary = Some(Box::new(Label {
            file: file.clone(),
            span,
            text: (!label.is_empty()).then_some(label),
        }));
        self
    }

    /// Adds a secondary location ("first defined here").
    pub fn also(
        mut self,
        file: &Arc<SourceFile>,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        self.secondary.push(Label {
            file: file.clone(),
            span,
            text: Some(label.into()),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    pub fn in_file(mut self, path: impl Into<PathBuf>) -> Diagnostic {
        self.path = Some(Box::new(path.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The file path shown for this diagnostic.
    pub fn file_display(&self) -> Option<String> {
        match (&self.primary, &self.path) {
            (Some(l), _) => Some(l.file.display_path()),
            (None, Some(p)) => Some(p.display().to_string()),
            (None, None) => None,
        }
    }

    /// Sort key: file, then position, then code.
    fn sort_key(&self) -> (String, usize, &'static str) {
        (
            self.file_display().unwrap_or_default(),
            self.primary.as_ref().map_or(0, |l| l.span.start),
            self.rule.code(),
        )
    }
}

/// Sorts diagnostics by file and position, so output is stable and reads top to bottom.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// A collection that loaders and checkers push into; "report every problem in one pass".
#[derive(Default, Debug)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}
