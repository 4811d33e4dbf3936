//! Source text → a YAML node tree that keeps the byte span of every key and value.
//!
//! Parsing goes through serde-saphyr (with `Spanned`) into our own generic [`Node`] tree,
//! so the loader can walk it by hand: duplicate keys stay visible, unknown keys get
//! suggestions, and every problem of a file is reported in one pass. Oversized files,
//! deep nesting and alias bombs are refused before they can hang or exhaust memory:
//! size by bytes ([`MAX_FILE_BYTES`]), nesting by depth ([`MAX_DEPTH`]), and alias bombs by
//! what the aliases ADD ([`alias_allowance`]: events replayed, judged against the size of what
//! is written), never by how much is written:
//! a long plain runbook is not a bomb. The parser's own counters (events, nodes, aliases,
//! anchors) are set above anything a file within the byte limit can contain, so they only
//! back up the expansion limit. One document per file; `!!binary` values are refused.

mod plain;

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diagnostic::Diagnostic;
use crate::rules::Rule;
use crate::source::{SourceFile, Span};

/// Largest YAML file opsctl reads. Runbooks are usually a few kilobytes; generated ones with
/// 20,000 steps (about 1.1 MB) must still load.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// Deepest nesting accepted (a runbook needs about 8 levels).
pub const MAX_DEPTH: usize = 48;
/// Parse events that alias expansion may add to any file (each `*name` replays the events of
/// what it names), however small: plenty for anchors that share defaults.
pub const MIN_ALIAS_EVENTS: usize = 20_000;
/// Cap on the events alias expansion may add, however large the file: bounds the time and
/// memory a refused bomb costs.
pub const MAX_ALIAS_EVENTS: usize = 250_000;

/// The alias-bomb guard: how many events alias expansion may add to a file of `bytes` bytes.
/// Expansion is judged against what is written: [`MIN_ALIAS_EVENTS`] plus one event for every
/// two bytes (written YAML takes about 8 bytes an event, so aliases may add several times the
/// written events), at most [`MAX_ALIAS_EVENTS`]. Sharing defaults with `<<: *defaults` in
/// every step adds well under one event per written byte; a billion-laughs file of a few
/// hundred bytes is stopped after about 20,000.
pub fn alias_allowance(bytes: usize) -> usize {
    MIN_ALIAS_EVENTS
        .saturating_add(bytes / 2)
        .min(MAX_ALIAS_EVENTS)
}
/// Most events a file within [`MAX_FILE_BYTES`] can produce without aliases: every event takes
/// at least a byte of text, and a flow mapping's implicit null value (`{a}`) at worst one more.
const MAX_WRITTEN_EVENTS: usize = 2 * MAX_FILE_BYTES;

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
/// Y002 limits); an empty document is `Null`. A plain document (no anchors, aliases, tags
/// or merge keys: most runbooks) is built by the fast path of [`plain`].
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
    plain::parse(text).map_or_else(|| parse_carefully(file), Ok)
}

/// Parses through serde-saphyr with every guard (aliases, merge keys, tags, budgets), on
/// a thread of its own; every error of a document is reported from here.
fn parse_carefully(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let text = file.text();
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
                SOURCE.with(|s| *s.borrow_mut() = Some(file.clone()));
                serde_saphyr::from_str_with_options::<Node>(text, parser_options(text.len()))
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
fn parser_options(bytes: usize) -> serde_saphyr::options::Options {
    let allowance = alias_allowance(bytes);
    let mut options = serde_saphyr::options::Options::default();
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    // YAML 1.2 core schema: `yes`, `no`, `on`, `off`, `y`, `n` stay strings (YAML 1.1 would
    // turn `command: [echo, n]` into `echo false`), and so does `1_000`.
    options.strict_booleans = true;
    options.underscored_numbers_as_strings = true;
    // The expansion judge: events replayed by aliases, whatever the file's size.
    options.alias_limits.max_total_replayed_events = allowance;
    options.alias_limits.max_replay_stack_depth = 16;
    let mut budget = serde_saphyr::budget::Budget::default();
    // The budget counts written AND replayed events/nodes; sized so that only expansion can
    // reach it (the written part is bounded by the byte limit).
    budget.max_events = MAX_WRITTEN_EVENTS + allowance;
    budget.max_nodes = MAX_WRITTEN_EVENTS + allowance;
    // Counts of what is written, bounded by size already: `*a` and `&a` take 2 bytes at least.
    budget.max_aliases = MAX_FILE_BYTES / 2;
    budget.max_anchors = MAX_FILE_BYTES / 2;
    budget.max_merge_keys = MAX_FILE_BYTES / 2;
    // "Many aliases per anchor" is how every `<<: *defaults` runbook looks; expansion is what
    // matters, and it is limited above.
    budget.enforce_alias_anchor_ratio = false;
    // Copies kept for anchors (an event inside nested anchors is kept once per anchor, and
    // replays inside an anchor are kept too): a file without anchors keeps none, one that
    // anchors small shared values keeps few; this bounds the memory nested anchors can take.
    budget.max_recorded_anchor_events = 2 * MAX_ALIAS_EVENTS;
    // Scalar text, written and replayed: the written part is at most the file.
    budget.max_total_scalar_bytes = 4 * MAX_FILE_BYTES;
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options
}

/// Stack for the parser thread: ample for [`MAX_DEPTH`] levels in a debug build.
const PARSER_STACK_BYTES: usize = 32 * 1024 * 1024;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The file being parsed on this thread, for looking at a scalar's tag (see [`Node`]'s
    /// `Deserialize`).
    static SOURCE: std::cell::RefCell<Option<Arc<SourceFile>>> = const { std::cell::RefCell::new(None) };
}

/// Whether the scalar starting at `start` carries a `!!binary` tag. The parser decodes a
/// `!!binary` value that happens to be UTF-8 into a string without telling the visitor, so
/// the tag is looked up in the text just before the value.
fn tagged_binary(start: usize) -> bool {
    SOURCE.with(|s| {
        let source = s.borrow();
        let Some(before) = source.as_ref().and_then(|f| f.text().get(..start)) else {
            return false;
        };
        let before = before.trim_end();
        let tag = ["!!binary", "!<tag:yaml.org,2002:binary>"]
            .into_iter()
            .find(|t| before.ends_with(t));
        // Not when the "tag" is the end of a comment just before the value.
        let line = before.rsplit('\n').next().unwrap_or(before);
        tag.and_then(|t| line.strip_suffix(t))
            .is_some_and(|rest| !rest.contains('#'))
    })
}

fn to_diagnostic(file: &Arc<SourceFile>, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let inner = err.without_snippet();
    let raw = inner.to_string();
    let message = clean_message(&raw);
    let offset = inner.location().map_or(0, |loc| {
        let span = loc.span();
        match span.byte_offset() {
            Some(b) if (b as usize) <= file.text().len() => b as usize,
            _ => file.offset_of(loc.line() as usize, loc.column() as usize),
        }
    });
    let span = Span::new(offset, (offset + 1).min(file.text().len()).max(offset));
    let refuse = |why: &str, help: &str| {
        Diagnostic::error(Rule::YamlLimits, format!("document refused: {why}"))
            .at(file, span, "here")
            .help(help.to_string())
    };
    let too_deep = || {
        refuse(
            &format!("{DEPTH_MESSAGE} ({MAX_DEPTH})"),
            &format!("runbooks must stay shallow: at most {MAX_DEPTH} levels of nesting"),
        )
    };
    let expands = || {
        refuse(
            "its aliases expand to too much (an alias-expansion bomb?)",
            &format!(
                "aliases (`*name`) may add at most {} YAML events to this file ({MIN_ALIAS_EVENTS} \
                 plus one for every 2 bytes written); use anchors to share small values",
                alias_allowance(file.text().len())
            ),
        )
    };
    // What went wrong, under the wrappers that add where an alias was used (whose location,
    // that of `inner`, is the one to show).
    let mut cause = inner;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = cause {
        cause = error;
    }
    match cause {
        E::Budget {
            breach: B::Documents { .. },
            ..
        } => {
            // The location is the second document's start (`---`).
            return Diagnostic::error(
                Rule::YamlLimits,
                "a second YAML document: one runbook per file",
            )
            .at(file, span, "second document starts here")
            .help("put each runbook in its own file; a `---` line starts a new document");
        }
        E::Budget {
            breach: B::Depth { .. },
            ..
        } => return too_deep(),
        // Every other counter is set above what the byte limit allows to be written (see
        // `parser_options`), so only alias expansion reaches it.
        E::Budget { .. }
        | E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => return expands(),
        E::BinaryNotUtf8 { .. } | E::InvalidBinaryBase64 { .. } => return binary(file, span),
        _ => {}
    }
    if message.contains(BINARY_MESSAGE) {
        return binary(file, span);
    }
    if message.contains("recursion limit") || message.contains(DEPTH_MESSAGE) {
        return too_deep();
    }
    if message.contains("budget breached") {
        return expands();
    }
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

/// `!!binary` refused, in words a runbook author can act on.
fn binary(file: &Arc<SourceFile>, span: Span) -> Diagnostic {
    Diagnostic::error(Rule::YamlSyntax, BINARY_MESSAGE)
        .at(file, span, "binary value")
        .help("write the value as plain text (drop the `!!binary` tag)")
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
const BINARY_MESSAGE: &str = "binary values (`!!binary`) are not supported in runbooks";

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
        if matches!(spanned.value, Value::Str(_)) && tagged_binary(start) {
            return Err(de::Error::custom(BINARY_MESSAGE));
        }
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
        assert!(d.message.contains("alias-expansion bomb"), "{}", d.message);
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

    #[test]
    fn a_second_document_is_one_runbook_per_file() {
        let text = "name: a\nsteps: []\n---\nname: b\n";
        let d = parse_str(text).unwrap_err();
        assert_eq!(d.rule, Rule::YamlLimits);
        assert!(d.message.contains("one runbook per file"), "{}", d.message);
        assert!(!d.message.contains("budget"), "{}", d.message);
        let at = d.primary.as_ref().map(|l| l.span.start);
        assert_eq!(at, text.find("---"));
        // A leading `---` starts the only document: fine.
        assert!(parse_str("---\nname: a\n").is_ok());
    }

    #[test]
    fn binary_values_are_refused_plainly() {
        for value in [
            "!!binary aGVsbG8=",
            "!!binary /wA=",
            "!!binary \"@@@\"",
            "!<tag:yaml.org,2002:binary> aGk=",
        ] {
            let text = format!("a: {value}\n");
            let d = parse_str(&text).unwrap_err();
            assert_eq!(d.message, BINARY_MESSAGE, "{value}");
            assert!(d.help.as_deref().is_some_and(|h| !h.contains("Options")));
        }
        // The word in a string is just text.
        let node = parse_str("a: \"!!binary\"\nb: x !!binary y\nc: # !!binary\n  z\n").unwrap();
        assert_eq!(node.as_map().unwrap()[1].1.as_str(), Some("x !!binary y"));
        assert_eq!(node.as_map().unwrap()[2].1.as_str(), Some("z"));
    }

    #[test]
    fn expansion_is_judged_not_size() {
        // Many plain nodes: no aliases, no expansion, nothing refused (size is bounded in
        // bytes only).
        let mut plain = String::from("steps:\n");
        for i in 0..8_000 {
            plain.push_str(&format!(
                "  - id: s{i}\n    http: {{ url: \"http://127.0.0.1:1/x\" }}\n"
            ));
        }
        assert!(parse_str(&plain).is_ok());
        // Shared defaults in every step: the expansion grows with what is written.
        let mut shared =
            String::from("defaults: &d {timeout: 5s, retries: 3, severity: warning}\nsteps:\n");
        for i in 0..4_000 {
            shared.push_str(&format!("  - id: s{i}\n    with: *d\n"));
        }
        assert!(parse_str(&shared).is_ok());
        assert!(alias_allowance(shared.len()) > 4_000 * 8);
        assert_eq!(alias_allowance(0), MIN_ALIAS_EVENTS);
        assert_eq!(alias_allowance(MAX_FILE_BYTES), MAX_ALIAS_EVENTS);
    }
}
