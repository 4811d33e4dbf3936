//! Turning client errors and values into what a step reports: one-line causes without
//! OS noise, and floats as JSON (NaN and infinities as strings, which JSON lacks).

use serde_json::{Number, Value};

/// Joins a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An I/O error as a short cause: "connection refused", "no route to host".
pub fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::ConnectionReset => "connection reset by peer".to_string(),
        K::TimedOut => "timed out".to_string(),
        K::UnexpectedEof => "server closed the connection".to_string(),
        _ => clean_os_error(&e.to_string()),
    }
}

/// "No route to host (os error 113)" → "no route to host".
pub fn clean_os_error(s: &str) -> String {
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    };
    let mut chars = s.chars();
    match chars.next() {
        // Lower-case a leading capital only when the next letter is lower case ("No route" but not "TLS").
        Some(c)
            if c.is_ascii_uppercase()
                && chars.clone().next().is_some_and(|n| n.is_ascii_lowercase()) =>
        {
            c.to_ascii_lowercase().to_string() + chars.as_str()
        }
        _ => s.to_string(),
    }
}

/// A float as JSON; NaN and ±infinity become `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_os_errors() {
        assert_eq!(
            clean_os_error("No route to host (os error 113)"),
            "no route to host"
        );
        assert_eq!(
            clean_os_error("TLS handshake failed"),
            "TLS handshake failed"
        );
        assert_eq!(one_line("a\n  b\r\n"), "a b");
        assert_eq!(float_json(f64::NAN), Value::String("NaN".into()));
    }
}
