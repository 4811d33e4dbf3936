//! Source text → a YAML node tree that keeps the byte span of every key and value.
//!
//! Parsing goes through serde-saphyr (with `Spanned`) into our own generic [`Node`] tree,
//! so the loader can walk it by hand: duplicate keys stay visible, unknown keys get
//! suggestions, and every problem of a file is reported in one pass. Oversized files,
//! deep nesting and alias bombs are refused by size and budget limits before they can
//! hang or exhaust memory.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostic;
use crate::rules::Rule;
use crate::source::{SourceFile, Span};

/// Largest YAML file opsctl reads: runbooks are a few kilobytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting accepted (a runbook needs about 8 levels).
pub const MAX_DEPTH: usize = 48;
/// Upper bound on parse events, including alias replays; caps alias-expansion bombs.
pub const MAX_EVENTS: usize = 60_000;
/// Upper bound on nodes after alias expansion.
pub const MAX_NODES: usize = 30_000;

/// A YAML value with the byte span it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are kept (the loader reports them).
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A short name of the node's type for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Scalars as text: numbers and booleans too (a key `200:` or a value `5`).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The plain JSON value of this node (spans dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses one YAML document. Errors come back as a located diagnostic (Y001 syntax,
/// Y002 limits); an empty document is `Null`.
pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let text = file.text();
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Rule::YamlLimits,
            format!(
                "file is too large ({} bytes; the limit is {} bytes)",
                text.len(),
                MAX_FILE_BYTES
            ),
        )
        .at(file, Span::at(0), "")
        .help("a runbook is a few kilobytes; split large runbooks with `runbook` steps"));
    }
    if text.trim().is_empty() {
        return Ok(Node {
            span: Span::at(0),
            value: Value::Null,
        });
    }
    // The parser recurses once per nesting level; on its own thread with a generous stack
    // the depth limit, not the caller's stack size (2 MiB on test and tokio threads),
    // decides what is refused.
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("yaml-parse".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, || {
                // Depth is also bounded by our own visitor, independent of the parser's accounting.
                DEPTH.with(|d| d.set(0));
                serde_saphyr::from_str_with_options::<Node>(text, parser_options())
            })
            .map(|handle| handle.join())
    });
    match parsed {
        Ok(Ok(result)) => result.map_err(|e| to_diagnostic(file, &e)),
        Ok(Err(_)) | Err(_) => Err(Diagnostic::error(
            Rule::YamlLimits,
            "document refused: the YAML parser could not process it",
        )
        .at(file, Span::at(0), "")),
    }
}

/// Duplicate keys pass through (the loader reports them); budgets refuse bombs.
fn parser_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    // YAML 1.2 core schema: `yes`, `no`, `on`, `off`, `y`, `n` stay strings (YAML 1.1 would
    // turn `command: [echo, n]` into `echo false`), and so does `1_000`.
    options.strict_booleans = true;
    options.underscored_numbers_as_strings = true;
    options.alias_limits.max_total_replayed_events = MAX_EVENTS;
    options.alias_limits.max_replay_stack_depth = 16;
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_events = MAX_EVENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_documents = 1;
    budget.max_aliases = 10_000;
    budget.max_recorded_anchor_events = MAX_EVENTS;
    options.budget = Some(budget);
    options
}

/// Stack for the parser thread: ample for [`MAX_DEPTH`] levels in a debug build.
const PARSER_STACK_BYTES: usize = 32 * 1024 * 1024;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn to_diagnostic(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let inner = err.without_snippet();
    let limits = matches!(
        inner,
        E::Budget { .. }
            | E::AliasReplayCounterOverflow { .. }
            | E::AliasReplayLimitExceeded { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayStackDepthExceeded { .. }
    );
    let raw = inner.to_string();
    let message = clean_message(&raw);
    let limits = limits
        || message.contains("budget breached")
        || message.contains("recursion limit")
        || message.contains(DEPTH_MESSAGE);
    let offset = inner.location().map_or(0, |loc| {
        let span = loc.span();
        match span.byte_offset() {
            Some(b) if (b as usize) <= file.text().len() => b as usize,
            _ => file.offset_of(loc.line() as usize, loc.column() as usize),
        }
    });
    let span = Span::new(offset, (offset + 1).min(file.text().len()).max(offset));
    if limits {
        Diagnostic::error(
            Rule::YamlLimits,
            format!("document refused: {}", limits_message(&message)),
        )
        .at(file, span, "here")
        .help("runbooks must stay small and shallow: at most 48 levels of nesting and 30000 nodes after alias expansion")
    } else {
        let d = Diagnostic::error(Rule::YamlSyntax, format!("invalid YAML: {message}"))
            .at(file, span, "here");
        match (
            message.contains("flow"),
            unclosed_bracket(file.text(), offset),
        ) {
            (true, Some(open)) => d.also(
                file,
                Span::new(open, open + 1),
                "opened here and never closed",
            ),
            _ => d,
        }
    }
}

/// The last `{` or `[` still open at `offset` (outside quotes and comments): flow
/// collection errors are reported where the parser gave up, not where the bracket was.
fn unclosed_bracket(text: &str, offset: usize) -> Option<usize> {
    let mut stack = Vec::new();
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < offset.min(bytes.len()) {
        let b = bytes[i];
        if comment {
            comment = b != b'\n';
        } else if let Some(q) = quote {
            if b == b'\\' && q == b'"' {
                i += 1;
            } else if b == q {
                quote = None;
            }
        } else {
            match b {
                b'"' | b'\'' => quote = Some(b),
                b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => comment = true,
                b'{' | b'[' => stack.push(i),
                b'}' | b']' => {
                    stack.pop();
                }
                _ => {}
            }
        }
        i += 1;
    }
    stack.pop()
}

const DEPTH_MESSAGE: &str = "nesting is deeper than the limit";

fn limits_message(message: &str) -> String {
    if message.contains("Nodes") || message.contains("Events") || message.contains("lias") {
        "it expands to too many nodes (an alias-expansion bomb?)".to_string()
    } else if message.contains("Depth")
        || message.contains("recursion")
        || message.contains(DEPTH_MESSAGE)
    {
        format!("{DEPTH_MESSAGE} ({MAX_DEPTH})")
    } else {
        message.to_string()
    }
}

/// serde-saphyr messages start with "error: line N column M: "; the location is shown separately.
fn clean_message(raw: &str) -> String {
    let mut s = raw.trim().strip_prefix("error: ").unwrap_or(raw.trim());
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some(idx) = rest.find(": ") {
            if rest[..idx].contains("column") {
                s = &rest[idx + 2..];
            }
        }
    }
    let first = s.lines().next().unwrap_or(s);
    // The position is shown by the diagnostic itself.
    match first.rfind(" at line ") {
        Some(i) if first[i..].contains("column") => first[..i].to_string(),
        _ => first.to_string(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        let span = spanned.referenced.span();
        let start = span.byte_offset().unwrap_or(0) as usize;
        let len = span.byte_len().unwrap_or(0) as usize;
        Ok(Node {
            span: Span::new(start, start + len),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

struct DepthGuard;

impl DepthGuard {
    fn enter<E: de::Error>() -> Result<DepthGuard, E> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        if depth > MAX_DEPTH {
            DEPTH.with(|d| d.set(d.get() - 1));
            return Err(E::custom(DEPTH_MESSAGE));
        }
        Ok(DepthGuard)
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let _guard = DepthGuard::enter()?;
        let mut items = Vec::new();
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let _guard = DepthGuard::enter()?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new("t.yaml", text))
    }

    #[test]
    fn keeps_spans_and_duplicate_keys() {
        let text = "a: 1\nb: \"x\"\na: [y]\n";
        let node = parse_str(text).unwrap();
        let map = node.as_map().unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(&text[map[1].1.span.start..map[1].1.span.end], "\"x\"");
        assert_eq!(&text[map[2].0.span.start..map[2].0.span.end], "a");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let node = parse_str("a: [y, n, yes, no, on, off, NO, 1_000]\nb: true\nn: 1\n").unwrap();
        let map = node.as_map().unwrap();
        let items: Vec<serde_json::Value> = map[0]
            .1
            .as_seq()
            .unwrap()
            .iter()
            .map(Node::to_json)
            .collect();
        assert_eq!(
            items,
            ["y", "n", "yes", "no", "on", "off", "NO", "1_000"]
                .map(|s| serde_json::Value::String(s.into()))
                .to_vec()
        );
        assert_eq!(map[1].1.value, Value::Bool(true));
        assert_eq!(map[2].0.as_str(), Some("n"));
    }

    #[test]
    fn syntax_error_is_located() {
        let d = parse_str("a: [1, 2\nb: c\n").unwrap_err();
        assert_eq!(d.rule, Rule::YamlSyntax);
        assert!(d.primary.is_some());
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(",");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let d = parse_str(&text).unwrap_err();
        assert_eq!(d.rule, Rule::YamlLimits, "{}", d.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_str(&text).unwrap_err().rule, Rule::YamlLimits);
        let mut block = String::new();
        for i in 0..100 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        block.push_str(&format!("{}x\n", "  ".repeat(100)));
        assert_eq!(parse_str(&block).unwrap_err().rule, Rule::YamlLimits);
    }
}
