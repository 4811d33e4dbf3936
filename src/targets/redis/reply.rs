//! Replies → JSON: the `redis` crate's `Value` (RESP2 and RESP3) converted to natural JSON.

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
            Err(e) => Value::String(format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(e.as_bytes())
            )),
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
        ]);
        assert_eq!(
            to_json(v),
            serde_json::json!(["hi", "base64:/wA=", -3, null, "OK", {"1": 1.5, "k": true}, "Infinity"])
        );
    }
}
