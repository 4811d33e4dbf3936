//! Replies → JSON: the `redis` crate's `Value` (RESP2 and RESP3) converted to natural JSON.
//!
//! Binary data gets a shape of its own, `{"base64": "<standard base64>"}`, so it can never be
//! mistaken for text: a string that happens to read `base64:...` stays that string.

use crate::targets::messages::float_json;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::errors::server_error_text;

/// A reply as natural JSON (see the module docs).
pub(super) fn to_json(v: redis::Value) -> Value {
    use redis::Value as R;
    match v {
        R::Nil => Value::Null,
        R::Int(i) => Value::from(i),
        R::BulkString(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Value::String(s),
            Err(e) => binary_json(e.as_bytes()),
        },
        R::Array(items) | R::Set(items) => Value::Array(items.into_iter().map(to_json).collect()),
        R::SimpleString(s) => Value::String(s),
        R::Okay => Value::String("OK".into()),
        R::Map(pairs) => {
            let mut obj = Map::with_capacity(pairs.len());
            for (k, v) in pairs {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, to_json(v));
            }
            Value::Object(obj)
        }
        R::Attribute { data, .. } => to_json(*data),
        R::Double(f) => float_json(f),
        R::Boolean(b) => Value::Bool(b),
        R::VerbatimString { text, .. } => Value::String(text),
        R::BigNumber(n) => Value::String(n.to_string()),
        R::Push { data, .. } => Value::Array(data.into_iter().map(to_json).collect()),
        R::ServerError(e) => {
            let mut obj = Map::new();
            obj.insert("error".into(), Value::String(server_error_text(&e)));
            Value::Object(obj)
        }
        _ => Value::Null,
    }
}

/// Bytes that are not UTF-8 text: `{"base64": "..."}`.
pub(super) fn binary_json(bytes: &[u8]) -> Value {
    let mut obj = Map::with_capacity(1);
    obj.insert(
        "base64".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> redis::Value {
        redis::Value::SimpleString(x.into())
    }

    #[test]
    fn reply_conversion() {
        use redis::Value as R;
        let v = R::Array(vec![
            R::BulkString(b"hi".to_vec()),
            R::BulkString(vec![0xff, 0x00]),
            R::Int(-3),
            R::Nil,
            R::Okay,
            R::Map(vec![
                (R::Int(1), R::Double(1.5)),
                (s("k"), R::Boolean(true)),
            ]),
            R::Double(f64::INFINITY),
            R::Double(0.1),
            R::BulkString(b"base64:/wA=".to_vec()),
            R::Set(vec![s("m")]),
            R::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text: "v".into(),
            },
            R::BigNumber("123456789012345678901234567890".parse().expect("bigint")),
        ]);
        assert_eq!(
            to_json(v),
            serde_json::json!([
                "hi",
                {"base64": "/wA="},
                -3,
                null,
                "OK",
                {"1": 1.5, "k": true},
                "Infinity",
                0.1,
                "base64:/wA=",
                ["m"],
                "v",
                "123456789012345678901234567890"
            ])
        );
        assert_eq!(
            serde_json::to_string(&to_json(R::Double(0.1)))
                .ok()
                .as_deref(),
            Some("0.1")
        );
    }
}
