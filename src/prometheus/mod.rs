//! Prometheus text exposition format: parse a scrape body into samples, select by labels, aggregate.
//!
//! Implements version 0.0.4 of the text format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>). Where the spec is silent the
//! parser follows the Prometheus server's scraper, so typical exporter quirks (unknown escapes,
//! TYPE after samples) parse, while real syntax errors fail with the line number and the cause.
//! UTF-8 quoted metric names (`{"my.metric"}`, a newer format) are not 0.0.4 and are rejected.
//!
//! Histogram and summary series (`x_bucket{le=".."}`, `x_sum`, `x_count`, `x{quantile=".."}`) are
//! kept as the ordinary samples they are on the wire; [`Exposition::types`] is keyed by the family
//! name from `# TYPE`, and [`Exposition::family_type`] maps a sample name back to its family.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// One sample line: a metric name, its labels in the order written, a value and an optional
/// timestamp in milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`, if the sample carries it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The type declared by a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    /// The keyword as written in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    fn from_keyword(keyword: &str) -> Option<MetricType> {
        // Case-sensitive, as in the Prometheus server: `COUNTER` is rejected there too.
        match keyword {
            "counter" => Some(MetricType::Counter),
            "gauge" => Some(MetricType::Gauge),
            "histogram" => Some(MetricType::Histogram),
            "summary" => Some(MetricType::Summary),
            "untyped" => Some(MetricType::Untyped),
            _ => None,
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed scrape body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// Every sample line, in input order (duplicates are kept).
    pub samples: Vec<Sample>,
    /// `# TYPE` declarations, keyed by the family name as written.
    pub types: HashMap<String, MetricType>,
    /// `# HELP` text with escapes resolved, keyed by the metric name as written. A HELP line
    /// without text sets nothing (as in Go's parser, it is a comment).
    pub help: HashMap<String, String>,
}

/// Why a scrape body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A malformed line: `line` is 1-based, `message` a short cause.
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

impl ParseError {
    /// The 1-based line the error was found on.
    pub fn line(&self) -> usize {
        match self {
            ParseError::Syntax { line, .. } => *line,
        }
    }
}

/// How [`aggregate`] folds a set of sample values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Sum,
    Max,
    Min,
    Avg,
    Count,
}

impl Aggregate {
    /// The name accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Avg => "avg",
            Aggregate::Count => "count",
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string given to [`Aggregate::from_str`] names no aggregate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregate {0:?} (expected sum, max, min, avg or count)")]
pub struct UnknownAggregate(pub String);

impl FromStr for Aggregate {
    type Err = UnknownAggregate;

    /// Accepts `sum`, `max`, `min`, `avg`, `count`, ignoring ASCII case (command-line friendly).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Aggregate::Sum,
            Aggregate::Max,
            Aggregate::Min,
            Aggregate::Avg,
            Aggregate::Count,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| UnknownAggregate(s.to_owned()))
    }
}

impl Exposition {
    /// Samples whose name equals `metric` exactly and whose labels contain every (k, v) in `matchers` exactly.
    ///
    /// Matching is literal: `("k", "")` matches only a sample that spells out `k=""`, not one
    /// lacking `k` (PromQL would treat those alike).
    pub fn select<'a>(&'a self, metric: &str, matchers: &[(String, String)]) -> Vec<&'a Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == metric
                    && matchers
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .collect()
    }

    /// The declared type of the family a sample name belongs to: an exact `# TYPE` entry first,
    /// then `x` for `x_bucket` (histogram) and for `x_sum` / `x_count` (histogram or summary).
    pub fn family_type(&self, sample_name: &str) -> Option<MetricType> {
        if let Some(t) = self.types.get(sample_name) {
            return Some(*t);
        }
        let suffixes: [(&str, &[MetricType]); 3] = [
            ("_bucket", &[MetricType::Histogram]),
            ("_sum", &[MetricType::Histogram, MetricType::Summary]),
            ("_count", &[MetricType::Histogram, MetricType::Summary]),
        ];
        suffixes.into_iter().find_map(|(suffix, allowed)| {
            let family = sample_name.strip_suffix(suffix)?;
            self.types
                .get(family)
                .copied()
                .filter(|t| allowed.contains(t))
        })
    }
}

/// Aggregate values; Sum/Count of an empty set are 0, Max/Min/Avg of an empty set are None.
///
/// NaN handling follows PromQL: it poisons Sum and Avg, while Max and Min skip it unless every
/// value is NaN. Sum and Avg use compensated summation, and Avg does not overflow to Inf when
/// only the intermediate sum of finite values would.
pub fn aggregate(samples: &[&Sample], how: Aggregate) -> Option<f64> {
    let values = || samples.iter().map(|s| s.value);
    match how {
        Aggregate::Count => Some(samples.len() as f64),
        Aggregate::Sum => Some(compensated_sum(values())),
        // f64::max/min return the non-NaN operand, which is exactly PromQL's NaN rule.
        Aggregate::Max => values().reduce(f64::max),
        Aggregate::Min => values().reduce(f64::min),
        Aggregate::Avg => {
            if samples.is_empty() {
                return None;
            }
            let n = samples.len() as f64;
            let sum = compensated_sum(values());
            if sum.is_infinite() && values().all(f64::is_finite) {
                Some(compensated_sum(values().map(|v| v / n)))
            } else {
                Some(sum / n)
            }
        }
    }
}

/// Neumaier summation: counters in the 1e15 range plus small increments would otherwise lose
/// the increments.
fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    for v in values {
        let t = sum + v;
        if t.is_infinite() {
            // Once the running sum is infinite the error term would become Inf - Inf = NaN.
            compensation = 0.0;
        } else if sum.abs() >= v.abs() {
            compensation += (sum - t) + v;
        } else {
            compensation += (v - t) + sum;
        }
        sum = t;
    }
    sum + compensation
}

/// Parse a text-format (0.0.4) scrape body.
///
/// Runs in time linear in `text.len()` and never panics.
///
/// # Errors
///
/// The first malformed line aborts with [`ParseError::Syntax`], naming the 1-based line and
/// the cause.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut expo = Exposition::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut cur = Cursor {
            line,
            pos: 0,
            number: index + 1,
        };
        cur.skip_blanks();
        match cur.peek() {
            None => {}
            Some(b'#') => {
                cur.pos += 1;
                parse_comment(&mut cur, &mut expo)?;
            }
            Some(_) => {
                let sample = parse_sample(&mut cur)?;
                expo.samples.push(sample);
            }
        }
    }
    Ok(expo)
}

/// A position within one line. Every index it stores sits on an ASCII byte or at the end, so
/// slicing `line` with it never splits a UTF-8 sequence.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::Syntax {
            line: self.number,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// Skips spaces and tabs; reports whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Takes the longest run of ASCII bytes matching `accept` (so the end is a char boundary).
    fn take_ascii(&mut self, accept: fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && accept(b)) {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or("")
    }

    /// Takes everything up to the next space or tab (or the end of the line).
    fn take_token(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    /// A human-readable description of what sits at the cursor, for error messages.
    fn found(&self) -> String {
        match self.peek_char() {
            Some(c) => format!("{c:?}"),
            None => "end of line".to_owned(),
        }
    }

    /// Reads a metric name and checks it against `[a-zA-Z_:][a-zA-Z0-9_:]*`. Stops before the
    /// first byte that cannot continue a name; the caller decides what may follow.
    fn metric_name(&mut self) -> Result<&'a str, ParseError> {
        let name = self.take_ascii(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
        if name.is_empty() {
            return Err(self.error(format!("expected metric name, found {}", self.found())));
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error(format!(
                "invalid metric name {}: must not start with a digit",
                snippet(name)
            )));
        }
        Ok(name)
    }

    /// After a name: a blank or the end of the line must follow, otherwise the name contained
    /// a character outside its alphabet (`foo.bar`, `foo-1`).
    fn expect_name_end(&self, name: &str) -> Result<(), ParseError> {
        match self.peek() {
            None | Some(b' ' | b'\t') => Ok(()),
            Some(_) => Err(self.error(format!(
                "invalid character {} in metric name {}",
                self.found(),
                snippet(name)
            ))),
        }
    }
}

/// Handles the text after a leading `#`: `HELP` and `TYPE` lines; anything else is a comment.
fn parse_comment(cur: &mut Cursor<'_>, expo: &mut Exposition) -> Result<(), ParseError> {
    // Like the Prometheus server: `#HELP x` (no blank after `#`) is a plain comment.
    if !cur.skip_blanks() {
        return Ok(());
    }
    let keyword = cur.take_token();
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    cur.skip_blanks();
    if cur.at_end() {
        // A bare `# HELP` names nothing; both reference parsers treat it as a comment.
        return Ok(());
    }
    let name = cur.metric_name()?;
    cur.expect_name_end(name)?;
    cur.skip_blanks();
    if keyword == "HELP" {
        // `# HELP name` with no text is a comment to the Go parser (`expfmt`, behind
        // `promtool check metrics`): no help is set, so it neither clashes with nor counts
        // against a `# HELP name text` line before or after it.
        if cur.at_end() {
            return Ok(());
        }
        if expo.help.contains_key(name) {
            return Err(cur.error(format!("duplicate HELP line for {}", snippet(name))));
        }
        expo.help.insert(name.to_owned(), unescape_help(cur.rest()));
        return Ok(());
    }
    let type_word = cur.take_token();
    if type_word.is_empty() {
        return Err(cur.error(format!("missing metric type for {}", snippet(name))));
    }
    let Some(metric_type) = MetricType::from_keyword(type_word) else {
        return Err(cur.error(format!(
            "unknown metric type {} (expected counter, gauge, histogram, summary or untyped)",
            snippet(type_word)
        )));
    };
    cur.skip_blanks();
    if !cur.at_end() {
        return Err(cur.error(format!(
            "unexpected text after metric type: {}",
            snippet(cur.rest())
        )));
    }
    if expo.types.contains_key(name) {
        return Err(cur.error(format!("duplicate TYPE line for {}", snippet(name))));
    }
    expo.types.insert(name.to_owned(), metric_type);
    Ok(())
}

/// HELP text knows only `\\` and `\n`; any other backslash is kept literally.
fn unescape_help(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// `name [{labels}] value [timestamp]`, the cursor standing on the first byte of `name`.
fn parse_sample(cur: &mut Cursor<'_>) -> Result<Sample, ParseError> {
    let name = cur.metric_name()?;
    let blank_after_name = cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        cur.pos += 1;
        let labels = parse_labels(cur)?;
        // `}` already ends the label set, so a blank before the value is optional, as in Prometheus.
        cur.skip_blanks();
        labels
    } else {
        if !blank_after_name {
            cur.expect_name_end(name)?;
        }
        Vec::new()
    };

    let value_token = cur.take_token();
    if value_token.is_empty() {
        return Err(cur.error(format!("missing value for {}", snippet(name))));
    }
    let value = parse_value(value_token).map_err(|why| {
        cur.error(format!(
            "invalid value {} for {}: {why}",
            snippet(value_token),
            snippet(name)
        ))
    })?;

    cur.skip_blanks();
    let timestamp_token = cur.take_token();
    let timestamp_ms = if timestamp_token.is_empty() {
        None
    } else {
        // i64::from_str takes an optional sign and decimal digits, like Go's ParseInt(s, 10, 64).
        let ts = timestamp_token.parse::<i64>().map_err(|e| {
            cur.error(format!(
                "invalid timestamp {}: {e} (expected integer milliseconds)",
                snippet(timestamp_token)
            ))
        })?;
        Some(ts)
    };

    cur.skip_blanks();
    if !cur.at_end() {
        return Err(cur.error(format!(
            "unexpected text after timestamp: {}",
            snippet(cur.rest())
        )));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// The label set after `{`, up to and including the closing `}`. Blanks are allowed around
/// every token, and one trailing comma is allowed.
fn parse_labels(cur: &mut Cursor<'_>) -> Result<Vec<(String, String)>, ParseError> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        cur.skip_blanks();
        match cur.peek() {
            None => return Err(cur.error("unterminated label set: missing '}'")),
            Some(b'}') => {
                cur.pos += 1;
                break;
            }
            Some(_) => {}
        }
        let label = cur.take_ascii(|b| b.is_ascii_alphanumeric() || b == b'_');
        if label.is_empty() {
            return Err(cur.error(format!("expected label name, found {}", cur.found())));
        }
        if label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(cur.error(format!(
                "invalid label name {}: must not start with a digit",
                snippet(label)
            )));
        }
        cur.skip_blanks();
        if cur.peek() != Some(b'=') {
            return Err(cur.error(format!(
                "expected '=' after label name {}, found {}",
                snippet(label),
                cur.found()
            )));
        }
        cur.pos += 1;
        cur.skip_blanks();
        if cur.peek() != Some(b'"') {
            return Err(cur.error(format!(
                "expected '\"' to open the value of label {}, found {}",
                snippet(label),
                cur.found()
            )));
        }
        cur.pos += 1;
        let value = parse_label_value(cur, label)?;
        labels.push((label.to_owned(), value));
        cur.skip_blanks();
        match cur.peek() {
            Some(b',') => cur.pos += 1,
            Some(b'}') => {
                cur.pos += 1;
                break;
            }
            None => return Err(cur.error("unterminated label set: missing '}'")),
            Some(_) => {
                return Err(cur.error(format!(
                    "expected ',' or '}}' after the value of label {}, found {}",
                    snippet(label),
                    cur.found()
                )));
            }
        }
    }
    if let Some(dup) = duplicate_label(&labels) {
        return Err(cur.error(format!("duplicate label name {}", snippet(dup))));
    }
    Ok(labels)
}

/// The body of a quoted label value, the cursor just past the opening quote; consumes the
/// closing quote. Escapes `\\`, `\"`, `\n` are resolved; any other backslash is kept literally,
/// as the Prometheus server does.
fn parse_label_value(cur: &mut Cursor<'_>, label: &str) -> Result<String, ParseError> {
    let line = cur.line;
    let bytes = line.as_bytes();
    let mut out = String::new();
    // Unescaped runs are copied in bulk; `run_start` and `i` only ever stop on ASCII bytes.
    let mut run_start = cur.pos;
    let mut i = cur.pos;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                out.push_str(line.get(run_start..i).unwrap_or(""));
                cur.pos = i + 1;
                return Ok(out);
            }
            b'\\' => {
                out.push_str(line.get(run_start..i).unwrap_or(""));
                match bytes.get(i + 1) {
                    Some(b'\\') => {
                        out.push('\\');
                        i += 2;
                    }
                    Some(b'"') => {
                        out.push('"');
                        i += 2;
                    }
                    Some(b'n') => {
                        out.push('\n');
                        i += 2;
                    }
                    // The following character starts the next run, so a multi-byte one is
                    // copied whole.
                    Some(_) => {
                        out.push('\\');
                        i += 1;
                    }
                    None => break,
                }
                run_start = i;
            }
            _ => i += 1,
        }
    }
    cur.pos = line.len();
    Err(cur.error(format!(
        "unterminated value of label {}: missing closing '\"'",
        snippet(label)
    )))
}

/// The first label name that occurs twice, if any.
fn duplicate_label(labels: &[(String, String)]) -> Option<&str> {
    // Pairwise comparison is cheapest for the usual handful of labels; hash beyond that so a
    // hostile line with thousands of labels stays linear.
    if labels.len() <= 16 {
        labels.iter().enumerate().find_map(|(i, (name, _))| {
            labels[..i]
                .iter()
                .any(|(earlier, _)| earlier == name)
                .then_some(name.as_str())
        })
    } else {
        let mut seen = HashSet::with_capacity(labels.len());
        labels
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| !seen.insert(*name))
    }
}

/// A sample value as Go's `strconv.ParseFloat` reads it in the text format: decimal with
/// optional exponent, `NaN`, and optionally signed `Inf`/`Infinity`, all case-insensitive.
/// Like the Prometheus parsers, hex floats and `_` digit separators are rejected, and a finite
/// literal beyond f64 range is an error rather than a silent Inf.
fn parse_value(token: &str) -> Result<f64, &'static str> {
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if token.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go accepts no sign on NaN.
    if unsigned.len() == token.len() && unsigned.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    // Past the special words, restricting the alphabet leaves a decimal grammar that Rust and
    // Go read identically (and shuts out Rust's signed NaN).
    if !token
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err("not a number");
    }
    let value: f64 = token.parse().map_err(|_| "not a number")?;
    if value.is_infinite() {
        return Err("out of range for a 64-bit float");
    }
    Ok(value)
}

/// Quotes a piece of input for an error message, cut short so a huge token cannot flood it.
fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", text.get(..cut).unwrap_or(text)),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
