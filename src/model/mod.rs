//! The runbook model: what the loader builds from YAML and every later stage reads.
//! Values that come from the file keep their spans so later checks can point at them.

pub mod args;
pub mod duration;

use std::sync::Arc;
use std::time::Duration;

use crate::actions::Action;
use crate::expr::Expr;
use crate::source::{SourceFile, Span};

pub use args::{Arg, ArgValue, Args};

/// Default step timeout (contract section 2).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A loaded, structurally valid runbook.
#[derive(Debug)]
pub struct Runbook {
    pub file: Arc<SourceFile>,
    pub name: String,
    pub name_span: Span,
    pub title: String,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    pub tags: Vec<String>,
    pub params: Vec<Param>,
    pub steps: Vec<Step>,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["sev1", "sev2", "sev3", "sev4"];

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "sev1" => Some(Severity::Sev1),
            "sev2" => Some(Severity::Sev2),
            "sev3" => Some(Severity::Sev3),
            "sev4" => Some(Severity::Sev4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A runbook input.
#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub span: Span,
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
    pub required: bool,
    pub pattern: Option<regex::Regex>,
    pub example: Option<serde_json::Value>,
    /// `enum:` the values allowed.
    pub choices: Option<Vec<serde_json::Value>>,
    /// `type:` what a value must be (else: the default's type).
    pub ty: Option<ParamType>,
}

/// A param's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    String,
    Int,
    Number,
    Bool,
    /// `30s`, `5m`, `1h` (kept as text, checked as a duration).
    Duration,
}

impl ParamType {
    pub const NAMES: &'static [&'static str] = &["string", "int", "number", "bool", "duration"];

    pub fn parse(name: &str) -> Option<ParamType> {
        Some(match name {
            "string" => ParamType::String,
            "int" | "integer" => ParamType::Int,
            "number" => ParamType::Number,
            "bool" | "boolean" => ParamType::Bool,
            "duration" => ParamType::Duration,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Number => "number",
            ParamType::Bool => "bool",
            ParamType::Duration => "duration",
        }
    }
}

/// One step: exactly one action plus flow control and assertions.
#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub id_span: Span,
    pub name: Option<String>,
    pub doc: Option<String>,
    pub needs: Vec<(String, Span)>,
    pub when: Option<Expr>,
    pub tags: Vec<String>,
    pub timeout: Duration,
    pub retry: Option<Retry>,
    pub confirm: Option<bool>,
    /// `always: true` (and every step of `finally:`): runs once its needs have ended,
    /// whatever their status, and also after Ctrl-C or a failure elsewhere.
    pub always: bool,
    /// Listed under the runbook's `finally:` (runs after every other step).
    pub finally: bool,
    /// `foreach:`: the step runs once per item of a list.
    pub foreach: Option<Foreach>,
    pub action: ActionCall,
    /// `None`: the action's default expectation applies.
    pub expect: Option<Vec<Expr>>,
    pub warn_if: Vec<Expr>,
    pub fail_if: Vec<Expr>,
    pub capture: Vec<Capture>,
}

impl Step {
    /// The human title: `name`, else the id.
    pub fn title(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// Every expression of the step with the field it sits in.
    pub fn expressions(&self) -> Vec<(Field, &Expr)> {
        let mut out = Vec::new();
        for e in self.action.args.exprs() {
            out.push((Field::Args, e));
        }
        if let Some(w) = &self.when {
            out.push((Field::When, w));
        }
        for e in self.expect.iter().flatten() {
            out.push((Field::Expect, e));
        }
        for e in &self.warn_if {
            out.push((Field::WarnIf, e));
        }
        for e in &self.fail_if {
            out.push((Field::FailIf, e));
        }
        for c in &self.capture {
            out.push((Field::Capture, &c.expr));
        }
        if let Some(u) = self.retry.as_ref().and_then(|r| r.until.as_ref()) {
            out.push((Field::RetryUntil, u));
        }
        if let Some(f) = &self.foreach {
            out.push((Field::Foreach, &f.list));
        }
        out
    }
}

/// Where in a step an expression sits; decides which names are in scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Args,
    When,
    Expect,
    WarnIf,
    FailIf,
    Capture,
    RetryUntil,
    Foreach,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Args => "arguments",
            Field::When => "when",
            Field::Expect => "expect",
            Field::WarnIf => "warn_if",
            Field::FailIf => "fail_if",
            Field::Capture => "capture",
            Field::RetryUntil => "retry.until",
            Field::Foreach => "foreach",
        }
    }

    /// Whether the step's own outputs are in scope.
    pub fn sees_outputs(self) -> bool {
        !matches!(self, Field::Args | Field::When | Field::Foreach)
    }

    /// Whether a `foreach` item is in scope.
    pub fn sees_item(self) -> bool {
        !matches!(self, Field::When | Field::Foreach)
    }
}

/// `foreach: <list>`, `as: item`, `max_parallel: N`, `max: N`.
#[derive(Debug)]
pub struct Foreach {
    pub list: Expr,
    /// The name each item has in the step's expressions (`item`).
    pub name: String,
    /// Items running at once (default 10).
    pub max_parallel: usize,
    /// More items than this: the step fails and runs none (a guard for mutations).
    pub max: Option<usize>,
}

#[derive(Debug)]
pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
    pub until: Option<Expr>,
}

#[derive(Debug)]
pub struct Capture {
    pub name: String,
    pub span: Span,
    pub expr: Expr,
}

/// The step's action and its (templated) arguments.
pub struct ActionCall {
    pub action: &'static dyn Action,
    pub key_span: Span,
    pub args: Args,
}

impl std::fmt::Debug for ActionCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionCall")
            .field("action", &self.action.spec().name)
            .field("args", &self.args)
            .finish()
    }
}
