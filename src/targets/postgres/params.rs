//! Statement parameters: each JSON value checked against the type the server prepared for it
//! and sent in Postgres's text format.

use std::error::Error as StdError;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;
use tokio_postgres::Statement;
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};

use super::PgPool;
use crate::actions::ActionError;

impl PgPool {
    pub(super) fn convert_params(
        &self,
        statement: &Statement,
        params: &[Value],
    ) -> Result<Vec<TextParam>, ActionError> {
        let types = statement.params();
        if types.len() != params.len() {
            let expected = match types.len() {
                0 => "no parameters".to_string(),
                1 => "1 parameter ($1)".to_string(),
                n => format!("{n} parameters ($1..${n})"),
            };
            return Err(self.err(
                ActionError::InvalidArgs,
                format!("the query takes {expected} but {} were given", params.len()),
            ));
        }
        types
            .iter()
            .zip(params)
            .enumerate()
            .map(|(i, (ty, value))| {
                param_text(ty, value).map(TextParam).map_err(|why| {
                    self.err(ActionError::InvalidArgs, format!("param ${}: {why}", i + 1))
                })
            })
            .collect()
    }
}

/// A parameter in Postgres's text format (`None`: NULL).
#[derive(Debug)]
pub(super) struct TextParam(Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A JSON value shown in a message. Long values are described, never cut: a cut secret
/// would no longer match its mask.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        return s;
    }
    match v {
        Value::String(t) => format!("a string of {} characters", t.chars().count()),
        Value::Array(items) => format!("a list of {} items", items.len()),
        Value::Object(m) => format!("an object with {} keys", m.len()),
        _ => format!("a value of {} characters", s.chars().count()),
    }
}

/// The text form of `value` for a parameter of type `ty`, or why it does not fit.
fn param_text(ty: &Type, value: &Value) -> Result<Option<String>, String> {
    if value.is_null() {
        return Ok(None);
    }
    match ty.kind() {
        Kind::Domain(base) => return param_text(base, value),
        Kind::Array(elem) => {
            return match value {
                Value::Array(items) => array_literal(elem, items).map(Some),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(format!("expected an array, got {}", shown(other))),
            };
        }
        Kind::Enum(_) => {
            return match value {
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(format!(
                    "expected a string ({} label), got {}",
                    ty.name(),
                    shown(other)
                )),
            };
        }
        _ => {}
    }
    let text = match *ty {
        Type::BOOL => bool_text(value)?,
        Type::INT2 => int_text(value, i16::MIN.into(), i16::MAX.into())?,
        Type::INT4 => int_text(value, i32::MIN.into(), i32::MAX.into())?,
        Type::INT8 => int_text(value, i64::MIN.into(), i64::MAX.into())?,
        Type::OID | Type::XID | Type::CID | Type::REGCLASS | Type::REGTYPE | Type::REGPROC
            if !value.is_string()
                || value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<i128>().is_ok()) =>
        {
            int_text(value, 0, u32::MAX.into())?
        }
        Type::FLOAT4 | Type::FLOAT8 => float_text(value)?,
        Type::NUMERIC => numeric_text(value)?,
        Type::UUID => match value {
            Value::String(s) => match uuid::Uuid::parse_str(s.trim()) {
                Ok(u) => u.hyphenated().to_string(),
                Err(_) => return Err(format!("expected a UUID, got {}", shown(value))),
            },
            other => return Err(format!("expected a UUID, got {}", shown(other))),
        },
        Type::JSON | Type::JSONB => value.to_string(),
        Type::BYTEA => bytea_text(value)?,
        Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME | Type::TIMETZ => match value
        {
            Value::String(s) => s.clone(),
            other => {
                return Err(format!(
                    "expected a {} string, got {}",
                    type_label(ty),
                    shown(other)
                ));
            }
        },
        Type::INTERVAL => match value {
            Value::String(s) => s.clone(),
            // A bare number is seconds, as in Postgres ('300'::interval).
            Value::Number(n) => n.to_string(),
            other => return Err(format!("expected an interval string, got {}", shown(other))),
        },
        _ => match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    Ok(Some(text))
}

fn type_label(ty: &Type) -> &'static str {
    match *ty {
        Type::DATE => "date",
        Type::TIMESTAMP => "timestamp",
        Type::TIMESTAMPTZ => "timestamp (RFC 3339)",
        Type::TIME | Type::TIMETZ => "time",
        _ => "text",
    }
}

fn bool_text(value: &Value) -> Result<String, String> {
    let ok = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    match ok {
        Some(b) => Ok(if b { "t" } else { "f" }.to_string()),
        None => Err(format!("expected a boolean, got {}", shown(value))),
    }
}

fn int_text(value: &Value, min: i128, max: i128) -> Result<String, String> {
    let n: Option<i128> = match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n.to_string()),
        Some(_) => Err(format!(
            "expected an integer between {min} and {max}, got {}",
            shown(value)
        )),
        None => Err(format!("expected an integer, got {}", shown(value))),
    }
}

fn is_special_float(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "nan" | "infinity" | "+infinity" | "-infinity" | "inf" | "+inf" | "-inf"
    )
}

fn float_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if s.trim().parse::<f64>().is_ok() || is_special_float(s.trim()) => {
            Ok(s.trim().to_string())
        }
        other => Err(format!("expected a number, got {}", shown(other))),
    }
}

fn numeric_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => {
            let t = s.trim();
            let plain = t.strip_prefix(['+', '-']).unwrap_or(t);
            // Rust's f64 grammar minus its words ("inf", "nan"): the decimal syntax Postgres takes.
            let decimal = !plain.is_empty()
                && plain
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '.')
                && t.parse::<f64>().is_ok();
            if decimal || is_special_float(t) {
                Ok(t.to_string())
            } else {
                Err(format!("expected a number, got {}", shown(value)))
            }
        }
        other => Err(format!("expected a number, got {}", shown(other))),
    }
}

fn bytea_text(value: &Value) -> Result<String, String> {
    let Value::String(s) = value else {
        return Err(format!("expected base64 bytes, got {}", shown(value)));
    };
    if let Some(hex) = s.strip_prefix("\\x") {
        if hex.len() % 2 == 0 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(s.clone());
        }
        return Err(format!(
            "expected \\x followed by hex digits, got {}",
            shown(value)
        ));
    }
    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
        Ok(bytes) => {
            let mut out = String::with_capacity(2 + bytes.len() * 2);
            out.push_str("\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            Ok(out)
        }
        Err(_) => Err(format!(
            "expected base64 bytes (or \\x-prefixed hex), got {}",
            shown(value)
        )),
    }
}

/// `{"a","b",NULL,{"c"}}`: every element quoted, so any element type parses.
fn array_literal(elem: &Type, items: &[Value]) -> Result<String, String> {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => {
                out.push_str(&array_literal(elem, inner).map_err(|e| format!("[{i}]: {e}"))?)
            }
            v => {
                let text = param_text(elem, v)
                    .map_err(|e| format!("element [{i}]: {e}"))?
                    .unwrap_or_default();
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_conversion() {
        assert_eq!(
            param_text(&Type::INT4, &serde_json::json!("42"))
                .unwrap()
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            param_text(&Type::INT4, &serde_json::json!("abc")).unwrap_err(),
            "expected an integer, got \"abc\""
        );
        assert!(param_text(&Type::INT2, &serde_json::json!(40000)).is_err());
        assert_eq!(
            param_text(&Type::NUMERIC, &serde_json::json!("12.50"))
                .unwrap()
                .as_deref(),
            Some("12.50")
        );
        assert!(param_text(&Type::NUMERIC, &serde_json::json!("1x")).is_err());
        assert_eq!(
            param_text(&Type::INT4_ARRAY, &serde_json::json!([1, null, [2]]))
                .unwrap()
                .as_deref(),
            Some("{\"1\",NULL,{\"2\"}}")
        );
        assert_eq!(
            param_text(&Type::BYTEA, &serde_json::json!("AAE="))
                .unwrap()
                .as_deref(),
            Some("\\x0001")
        );
        assert_eq!(param_text(&Type::TEXT, &Value::Null).unwrap(), None);
    }
}
