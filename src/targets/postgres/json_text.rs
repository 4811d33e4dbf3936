//! JSON text (a `json` value, or `jsonb` after its version byte) → [`Value`], keeping every
//! number exact: a number stays a JSON number only when an `i64`, `u64` or `f64` holds
//! exactly the value written; otherwise it becomes a string with the server's text
//! (`12345678901234567890123456789`, `1e400`, `0.10000000000000000001`). serde_json's own
//! parser would round such numbers (or fail on `1e400`) without saying so.

use serde_json::{Map, Number, Value};

/// Deeper documents are refused (the caller keeps the whole text as a string) rather than
/// risking the stack.
const MAX_DEPTH: usize = 512;

/// Parses one JSON document; `None` if it is not valid JSON.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word.as_bytes()).then(|| self.i = end)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut map = Map::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(Value::Object(map));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    let v = self.value(depth + 1)?;
                    // Duplicate keys (possible in `json`): the last wins, as `->` does.
                    map.insert(key, v);
                    self.ws();
                    match *self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(Value::Object(map));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match *self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(Value::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(Value::String),
            b't' => self.eat("true").map(|()| Value::Bool(true)),
            b'f' => self.eat("false").map(|()| Value::Bool(false)),
            b'n' => self.eat("null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i > from
        };
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if !digits(self) {
            return None;
        }
        let mut integral = true;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            integral = false;
            if !digits(self) {
                return None;
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            integral = false;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        let text = self.text.get(start..self.i)?;
        Some(exact_number(text, integral))
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.text.get(self.i..self.i + 4)?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote or backslash as is (it is valid UTF-8:
            // the input is a &str and both stops are ASCII).
            let from = self.i;
            while !matches!(self.s.get(self.i), Some(b'"' | b'\\') | None) {
                self.i += 1;
            }
            out.push_str(self.text.get(from..self.i)?);
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => {
                    self.i += 1;
                    let c = *self.s.get(self.i)?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    // An unpaired high surrogate, then another escape.
                                    out.push(char::REPLACEMENT_CHARACTER);
                                    lo
                                }
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

/// A JSON number as written → a JSON number when one holds it exactly, else its text.
fn exact_number(text: &str, integral: bool) -> Value {
    if integral {
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Value::from(n);
        }
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && decimal(&format!("{f:e}")) == decimal(text) => {
            Number::from_f64(f).map_or_else(|| Value::String(text.into()), Value::Number)
        }
        _ => Value::String(text.into()),
    }
}

/// A decimal's value in canonical form: sign, significant digits (no leading or trailing
/// zeros) and the exponent of the last digit. Zero is `(false, "", 0)` whatever its sign.
fn decimal(text: &str) -> (bool, String, i64) {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = all.trim_start_matches('0');
    let digits = trimmed.trim_end_matches('0');
    exp += (trimmed.len() - digits.len()) as i64;
    if digits.is_empty() {
        return (false, String::new(), 0);
    }
    (negative, digits.to_string(), exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_stay_exact() {
        let v = parse(
            r#"[1, -2, 0.1, 1.5e3, 12345678901234567890123456789, 1e400, 18446744073709551615,
                -9223372036854775808, 0.10000000000000000001, 1.0, -0, 2.5E-3]"#,
        )
        .expect("valid");
        assert_eq!(
            v,
            json!([
                1,
                -2,
                0.1,
                1500.0,
                "12345678901234567890123456789",
                "1e400",
                18446744073709551615u64,
                i64::MIN,
                "0.10000000000000000001",
                1.0,
                0,
                0.0025
            ])
        );
    }

    #[test]
    fn strings_objects_and_escapes() {
        let v = parse(r#" {"a": "x\"y\\u00e9\n\ud83d\ude00", "a": [true, false, null], "b": {}} "#)
            .expect("valid");
        assert_eq!(v, json!({"a": [true, false, null], "b": {}}));
        assert_eq!(parse(r#""\u00e9\ud83d\ude00\/""#), Some(json!("é😀/")));
        assert_eq!(parse("[1,]"), None);
        assert_eq!(parse("{\"a\" 1}"), None);
        assert_eq!(parse("01x"), None);
        assert_eq!(parse(&"[".repeat(10_000)), None);
    }
}
