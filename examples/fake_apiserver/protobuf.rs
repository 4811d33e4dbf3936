//! Just enough protobuf to read the one request kubectl sends only as protobuf: the
//! SelfSubjectAccessReview of `kubectl auth can-i` (its typed client offers JSON for the reply,
//! so answers stay JSON).

use serde_json::{Map, Value, json};

/// The magic prefix of Kubernetes' protobuf envelope (`runtime.Unknown`).
const MAGIC: &[u8] = b"k8s\0";

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// The length-delimited fields of a message, by field number (other wire types skipped).
fn fields(buf: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                out.push((key >> 3, &buf[pos..end]));
                pos = end;
            }
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn field(buf: &[u8], number: u64) -> Result<Option<&[u8]>, String> {
    Ok(fields(buf)?
        .into_iter()
        .find(|(n, _)| *n == number)
        .map(|(_, b)| b))
}

fn strings(buf: &[u8], names: &[&str]) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, bytes) in fields(buf)? {
        let idx = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
        if let Some(name) = idx.and_then(|i| names.get(i)) {
            m.insert((*name).to_string(), json!(String::from_utf8_lossy(bytes)));
        }
    }
    Ok(Value::Object(m))
}

/// A protobuf-encoded SelfSubjectAccessReview as its JSON form (spec only).
pub fn access_review(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf body")?;
    let raw = field(envelope, 2)?.ok_or("protobuf envelope without an object")?;
    let mut spec = Map::new();
    if let Some(spec_bytes) = field(raw, 2)? {
        if let Some(attrs) = field(spec_bytes, 1)? {
            spec.insert(
                "resourceAttributes".into(),
                strings(
                    attrs,
                    &[
                        "namespace",
                        "verb",
                        "group",
                        "version",
                        "resource",
                        "subresource",
                        "name",
                    ],
                )?,
            );
        }
        if let Some(attrs) = field(spec_bytes, 2)? {
            spec.insert(
                "nonResourceAttributes".into(),
                strings(attrs, &["path", "verb"])?,
            );
        }
    }
    Ok(json!({"spec": spec}))
}
