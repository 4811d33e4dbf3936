//! The fast path for plain documents: the [`Node`] tree built straight from the parser's
//! events, without serde in between.
//!
//! Going through serde (`Spanned<Value>`, a map access per node, key recording, comment
//! bookkeeping) costs about twice the parsing itself: two thirds of `lint` of a
//! 5,000-step runbook. Most runbooks use none of what makes YAML subtle, so a document
//! without anchors, aliases, tags, merge keys, directives or non-scalar keys is built
//! here, on the caller's thread, with the scalars resolved exactly as serde-saphyr
//! resolves them for [`super::parser_options`]. Anything else — and every error — gives
//! `None`, and the caller parses the file the careful way, which reports what is wrong.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span as ParserSpan};

use super::{MAX_DEPTH, Node, Value};
use crate::source::Span;

/// Nesting this path builds; deeper documents go the careful way, which decides where
/// [`MAX_DEPTH`] refuses them (it counts a little differently than a stack of frames).
const MAX_FAST_DEPTH: usize = MAX_DEPTH - 8;

/// A collection being built.
enum Frame {
    Seq(Span, Vec<Node>),
    Map(Span, Vec<(Node, Node)>, Option<Node>),
}

/// The document as a [`Node`], or `None` when it needs the careful path.
pub(super) fn parse(text: &str) -> Option<Node> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for item in Parser::new_from_str_with_options(text, parser_options(text.len())) {
        let (event, span) = item.ok()?;
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Comment(..) => {
                continue;
            }
            Event::DocumentStart(_, version) => {
                documents += 1;
                if documents > 1 || version.is_some() {
                    return None;
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                Node {
                    span: span_of(&span)?,
                    value: resolve(value, style)?,
                }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_FAST_DEPTH {
                    return None;
                }
                let at = span_of(&span)?;
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq(at, Vec::new()),
                    _ => Frame::Map(at, Vec::new(), None),
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Frame::Seq(span, items) => Node {
                    span,
                    value: Value::Seq(items),
                },
                Frame::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Frame::Map(span, entries, None) => Node {
                    span,
                    value: Value::Map(entries),
                },
                Frame::Map(_, _, Some(_)) | Frame::Seq(..) => return None,
            },
            // Aliases and anchor events: the careful path replays and budgets them.
            _ => return None,
        };
        match stack.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return None,
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                // Keys are scalars here; `<<` would merge.
                None if is_plain_key(&node) => *pending = Some(node),
                None => return None,
            },
        }
    }
    if stack.is_empty() { root } else { None }
}

/// The parser configured as serde-saphyr configures it for [`super::parser_options`], so
/// that what parses here parses there.
fn parser_options(bytes: usize) -> Options {
    let budget = super::parser_options(bytes).budget.unwrap_or_default();
    let mut options = Options::default();
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    options.emit_comments = true;
    options.max_buffered_comment_events = budget.max_buffered_comment_events;
    options
}

fn span_of(span: &ParserSpan) -> Option<Span> {
    let start = span.start.byte_offset()?;
    let end = span.end.byte_offset()?;
    Some(Span::new(start, start + end.saturating_sub(start)))
}

fn is_plain_key(node: &Node) -> bool {
    match &node.value {
        Value::Str(s) => s != "<<",
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => true,
        Value::Seq(_) | Value::Map(_) => false,
    }
}

/// A scalar's value as serde-saphyr gives it to a typeless visitor, with strict (YAML 1.2)
/// booleans and underscored numbers kept as strings; `None` for the spellings whose
/// treatment depends on more than this (radix prefixes, `.inf`, overflow, huge integers).
fn resolve(value: Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::Str(value.into_owned()));
    }
    let t = value.as_ref();
    // serde-saphyr trims these before some checks and not before others.
    if t.starts_with([' ', '\t', '\r', '\n']) || t.ends_with([' ', '\t', '\r', '\n']) {
        return None;
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let Some(first) = t.bytes().next() else {
        return Some(Value::Null);
    };
    // Only these can start a number (or `.inf`/`.nan`); anything else is text.
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) || t.contains('_') {
        return Some(Value::Str(value.into_owned()));
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let radix = ["0x", "0X", "0o", "0O", "0b", "0B"];
    if radix.iter().any(|p| unsigned.starts_with(p)) {
        return None;
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        // A redundant leading zero makes it a float (`012` is 12.0), as below.
        if !unsigned.starts_with('0') || unsigned == "0" {
            if unsigned.len() > 18 {
                return None;
            }
            let magnitude: i64 = unsigned.parse().ok()?;
            return Some(Value::Int(if negative { -magnitude } else { magnitude }));
        }
    }
    if matches!(
        unsigned,
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF"
    ) {
        return None;
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Value::Float(f)),
        // An overflowing literal (`1e999`) is up to the non-finite policy.
        Ok(_) if unsigned.bytes().next().is_some_and(|b| b.is_ascii_digit()) => None,
        _ => Some(Value::Str(value.into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::SourceFile;

    /// The careful path's tree for the same text.
    fn careful(text: &str) -> Option<Node> {
        super::super::parse_carefully(&SourceFile::new("t.yaml", text)).ok()
    }

    /// Where the fast path answers, it answers what the careful path does.
    fn agree(text: &str) -> bool {
        match parse(text) {
            Some(fast) => {
                assert_eq!(Some(fast), careful(text), "for {text:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn scalars_resolve_as_serde_saphyr_resolves_them() {
        let scalars = [
            "0",
            "00",
            "012",
            "-0",
            "-012",
            "+5",
            "7",
            "-7",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "1.5",
            "-1.5",
            "1.",
            ".5",
            "-.5",
            "1e3",
            "1E3",
            "1e-3",
            "-1e+3",
            "1e999",
            "1e",
            "e5",
            ".inf",
            "-.inf",
            "+.inf",
            ".nan",
            ".NaN",
            "inf",
            "-inf",
            "nan",
            "infinity",
            "+",
            "-",
            ".",
            "..",
            "1_000",
            "0x1f",
            "0o17",
            "0b101",
            "1-2",
            "2024-01-01",
            "1.2.3",
            "12:30",
            "1,000",
            "true",
            "True",
            "TRUE",
            "tRue",
            "false",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "~",
            "null",
            "Null",
            "NULL",
            "nULL",
            "--force",
            "-foo",
            ".hidden",
            "+x",
            "5s",
            "100ms",
            "1 2",
            "'quoted 1'",
            "\"2\"",
            "\"\"",
            "''",
            "x # comment",
            "/path",
            "a/b:c",
            "http://x:1/y",
            "\"\\u00e9t\\u00e9\"",
            "été",
            "日本",
        ];
        for s in scalars {
            for text in [format!("a: {s}\n"), format!("- {s}\n"), format!("{s}: v\n")] {
                agree(&text);
            }
            agree(&format!("a: [{s}, {{k: {s}}}]\n"));
        }
        // The common ones take the fast path.
        for s in [
            "0", "7", "-7", "1.5", "true", "null", "5s", "'q'", "x", "été",
        ] {
            assert!(agree(&format!("a: {s}\n")), "{s}");
        }
    }

    #[test]
    fn structures_and_spans_match() {
        let texts = [
            "name: a\nsteps:\n  - id: x\n    http: { target: srv, path: /x }\n",
            "a:\nb: ~\nc: []\nd: {}\n",
            "a: 1\nb: \"x\"\na: [y]\n",
            "{a, b: c}\n",
            "[a, [b, [c]], {d: e}]\n",
            "a: |\n  line\n  two\nb: >-\n  folded\n  text\n",
            "a: multi\n  line plain\n\n  scalar\n",
            "- - a\n  - b\n- c: d\n  e: f\n",
            "---\na: b\n...\n",
            "# only a comment\na: b # trailing\n# end\n",
            "\u{feff}a: b\n",
            "a: 'it''s'\nb: \"tab\\tnew\\nline\"\n",
            "? a\n: b\n",
        ];
        for text in texts {
            assert!(agree(text), "{text:?} took the careful path");
        }
    }

    #[test]
    fn anything_subtle_takes_the_careful_path() {
        let texts = [
            "a: &x 1\nb: *x\n",
            "d: &d {k: v}\ne:\n  <<: *d\n",
            "a: !!str 1\n",
            "a: !!binary aGk=\n",
            "%YAML 1.2\n---\na: b\n",
            "a: b\n---\nc: d\n",
            "? [a]\n: b\n",
            "a: [1, 2\n",
            "a: .inf\n",
            "a: 0x1f\n",
            "# just a comment\n",
        ];
        for text in texts {
            assert!(parse(text).is_none(), "{text:?}");
        }
        let deep = format!("a: {}{}\n", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&deep).is_none());
    }

    /// Every YAML file of the repository parses the same both ways.
    #[test]
    fn the_repository_parses_the_same_both_ways() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack = vec![root.to_path_buf()];
        let (mut fast, mut all) = (0, 0);
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name == "target" {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    let Ok(text) = std::fs::read_to_string(&path) else {
                        continue;
                    };
                    all += 1;
                    if agree(&text) {
                        fast += 1;
                    }
                }
            }
        }
        assert!(all > 50 && fast * 10 > all * 8, "{fast} of {all} fast");
    }
}
