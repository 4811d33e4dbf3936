//! Rows → JSON: every column read in Postgres's binary format and decoded by type (numbers,
//! numeric, dates and times, intervals, arrays, composites, ranges, ...). Types whose text
//! depends on the catalog or the session (`regclass` names, `money` in `lc_monetary`) or
//! whose output rules are intricate (text search, geometry, multiranges) are printed by the
//! server itself: their binary values are sent back, typed, in one `SELECT $1::text, ...`
//! on the same connection (see [`server_texts`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;

use crate::targets::messages::float_json;
use base64::Engine as _;
use serde_json::{Map, Number, Value};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};

use super::json_text;

/// Any column, as its raw binary value.
struct RawValue<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawValue(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Texts the server gave for values of [`server_printed`] types, by type OID and binary value.
#[derive(Debug, Default)]
pub(super) struct ServerTexts(HashMap<(u32, Vec<u8>), String>);

/// Values (type, binary form) the server is to print, gathered by the first pass.
type Wanted = RefCell<Vec<(Type, Vec<u8>)>>;

/// Decoding state: the server's texts, and (first pass) the values still needing one.
struct Cx<'a> {
    texts: &'a ServerTexts,
    wanted: Option<Wanted>,
}

/// Whether the server prints this type's values for us.
fn server_printed(ty: &Type) -> bool {
    matches!(ty.kind(), Kind::Multirange(_))
        || matches!(
            *ty,
            Type::REGPROC
                | Type::REGPROCEDURE
                | Type::REGOPER
                | Type::REGOPERATOR
                | Type::REGCLASS
                | Type::REGTYPE
                | Type::REGCONFIG
                | Type::REGDICTIONARY
                | Type::REGNAMESPACE
                | Type::REGROLE
                | Type::REGCOLLATION
                | Type::MONEY
                | Type::TS_VECTOR
                | Type::TSQUERY
                | Type::POINT
                | Type::LINE
                | Type::LSEG
                | Type::BOX
                | Type::PATH
                | Type::POLYGON
                | Type::CIRCLE
        )
}

/// Types [`try_decode`] reads itself.
fn decoded_here(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::XID
            | Type::CID
            | Type::XID8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::XML
            | Type::REFCURSOR
            | Type::CHAR
            | Type::JSON
            | Type::JSONB
            | Type::JSONPATH
            | Type::UUID
            | Type::BYTEA
            | Type::DATE
            | Type::TIME
            | Type::TIMETZ
            | Type::TIMESTAMP
            | Type::TIMESTAMPTZ
            | Type::INTERVAL
            | Type::INET
            | Type::CIDR
            | Type::MACADDR
            | Type::MACADDR8
            | Type::BIT
            | Type::VARBIT
            | Type::PG_LSN
            | Type::TID
            | Type::VOID
    ) || matches!(ty.name(), "hstore" | "citext")
}

/// Whether a column of this type may hold values the server prints for us (anonymous
/// records may hold anything).
fn may_need_server(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(t) | Kind::Domain(t) | Kind::Range(t) => may_need_server(t),
        Kind::Composite(fields) => fields.iter().any(|f| may_need_server(f.type_())),
        Kind::Enum(_) => false,
        _ => !decoded_here(ty),
    }
}

/// Values of one type sent back in binary form, exactly as received.
#[derive(Debug)]
struct RawParam<'a>(&'a [u8]);

impl ToSql for RawParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Parameters per round trip when asking the server for texts (the protocol allows 65535).
const TEXTS_PER_QUERY: usize = 1000;

/// The server's text for every distinct value of a [`server_printed`] type in `rows` (an
/// extra round trip on `client` only when there are some). Values it cannot print are left
/// out: they decode to a fallback (the OID for `reg*` types, a placeholder otherwise).
pub(super) async fn server_texts(
    client: &Client,
    statement: &Statement,
    rows: &[Row],
) -> ServerTexts {
    let mut texts = ServerTexts::default();
    if rows.is_empty()
        || !statement
            .columns()
            .iter()
            .any(|c| may_need_server(c.type_()))
    {
        return texts;
    }
    // First pass: decode to find the values (the output is thrown away).
    let cx = Cx {
        texts: &texts,
        wanted: Some(RefCell::new(Vec::new())),
    };
    decode_rows(&cx, statement, rows);
    let mut wanted = cx.wanted.map(RefCell::into_inner).unwrap_or_default();
    wanted.sort_by(|a, b| (a.0.oid(), &a.1).cmp(&(b.0.oid(), &b.1)));
    wanted.dedup_by(|a, b| a.0.oid() == b.0.oid() && a.1 == b.1);
    // One type per query: a type the server cannot take back (`anyarray`, a type without a
    // binary input function) costs only its own texts.
    let chunks = wanted
        .chunk_by(|a, b| a.0.oid() == b.0.oid())
        .flat_map(|same_type| same_type.chunks(TEXTS_PER_QUERY));
    for chunk in chunks {
        let sql = (1..=chunk.len())
            .map(|i| format!("${i}::text"))
            .collect::<Vec<_>>()
            .join(", ");
        let raws: Vec<RawParam<'_>> = chunk.iter().map(|(_, b)| RawParam(b)).collect();
        let params: Vec<(&(dyn ToSql + Sync), Type)> = raws
            .iter()
            .zip(chunk)
            .map(|(r, (ty, _))| (r as &(dyn ToSql + Sync), ty.clone()))
            .collect();
        // Output functions are the server's (or an extension's): run them in a READ ONLY
        // transaction too, pipelined into one round trip.
        let select = format!("SELECT {sql}");
        let (begun, row, ended) = tokio::join!(biased;
            client.batch_execute("BEGIN READ ONLY"),
            client.query_typed_one(&select, &params),
            client.batch_execute("ROLLBACK"),
        );
        let (Ok(()), Ok(row), Ok(())) = (begun, row, ended) else {
            // A value the server refuses (or a lost connection): keep the fallbacks.
            continue;
        };
        for (i, (ty, raw)) in chunk.iter().enumerate() {
            if let Ok(Some(text)) = row.try_get::<_, Option<String>>(i) {
                texts.0.insert((ty.oid(), raw.clone()), text);
            }
        }
    }
    texts
}

pub(super) fn rows_to_json(
    statement: &Statement,
    rows: &[Row],
    texts: &ServerTexts,
) -> Vec<Map<String, Value>> {
    decode_rows(
        &Cx {
            texts,
            wanted: None,
        },
        statement,
        rows,
    )
}

fn decode_rows(cx: &Cx<'_>, statement: &Statement, rows: &[Row]) -> Vec<Map<String, Value>> {
    let columns = statement.columns();
    // Repeated names ("?column?" twice) get a suffix instead of overwriting each other.
    let mut names: Vec<String> = Vec::with_capacity(columns.len());
    for col in columns {
        let base = col.name();
        let mut name = base.to_string();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.push(name);
    }
    rows.iter()
        .map(|row| {
            let mut obj = Map::with_capacity(columns.len());
            for (i, (col, name)) in columns.iter().zip(&names).enumerate() {
                let value = match row.try_get::<usize, RawValue<'_>>(i) {
                    Ok(RawValue(Some(raw))) => decode(cx, col.type_(), raw),
                    Ok(RawValue(None)) => Value::Null,
                    Err(e) => Value::String(format!("<undecodable {}: {e}>", col.type_().name())),
                };
                obj.insert(name.clone(), value);
            }
            obj
        })
        .collect()
}

/// One non-NULL value in binary format → JSON. Never fails: a malformed or unknown value becomes
/// a descriptive string.
fn decode(cx: &Cx<'_>, ty: &Type, raw: &[u8]) -> Value {
    if server_printed(ty) {
        return server_printed_value(cx, ty, raw);
    }
    match try_decode(cx, ty, raw) {
        Ok(v) => v,
        Err(e) => Value::String(format!("<undecodable {}: {e}>", ty.name())),
    }
}

/// The server's text for a value, or a fallback when it has none.
fn server_printed_value(cx: &Cx<'_>, ty: &Type, raw: &[u8]) -> Value {
    if let Some(text) = cx.texts.0.get(&(ty.oid(), raw.to_vec())) {
        return Value::String(text.clone());
    }
    if let Some(wanted) = &cx.wanted {
        wanted.borrow_mut().push((ty.clone(), raw.to_vec()));
        return Value::Null;
    }
    // reg* values are OIDs: the server prints an OID it cannot name as the number.
    match <[u8; 4]>::try_from(raw) {
        Ok(b) if ty.name().starts_with("reg") => Value::String(u32::from_be_bytes(b).to_string()),
        // Types sent as their text (`pg_node_tree`, ...) but not accepted back.
        _ if printable(raw) => text(raw),
        _ => Value::String(format!("<unsupported type {}>", ty.name())),
    }
}

type DecodeResult = Result<Value, String>;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("value too short".to_string());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_be_bytes(self.array()?))
    }
    /// A length-prefixed value (`-1`: NULL).
    fn field(&mut self) -> Result<Option<&'a [u8]>, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }
}

/// UTF-8 without control characters other than tab and line breaks.
fn printable(raw: &[u8]) -> bool {
    std::str::from_utf8(raw).is_ok_and(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    })
}

fn text(raw: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(raw).into_owned())
}

fn try_decode(cx: &Cx<'_>, ty: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    match ty.kind() {
        Kind::Array(elem) => return decode_array(cx, elem, raw),
        Kind::Domain(base) => return Ok(decode(cx, base, raw)),
        Kind::Enum(_) => return Ok(text(raw)),
        Kind::Composite(fields) => return decode_record(cx, raw, Some(fields)),
        Kind::Range(elem) => return decode_range(cx, elem, raw),
        _ => {}
    }
    let v = match *ty {
        Type::BOOL => Value::Bool(r.u8()? != 0),
        Type::INT2 => r.i16()?.into(),
        Type::INT4 => r.i32()?.into(),
        Type::INT8 => r.i64()?.into(),
        Type::OID | Type::XID | Type::CID => r.u32()?.into(),
        Type::XID8 => r.u64()?.into(),
        // The shortest text that reads back as the same f32 (what the server prints), so
        // 0.1::float4 is 0.1 and not 0.10000000149011612.
        Type::FLOAT4 => {
            let f = f32::from_be_bytes(r.array()?);
            float_json(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
        }
        Type::FLOAT8 => float_json(r.f64()?),
        Type::NUMERIC => decode_numeric(raw)?,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::XML
        | Type::REFCURSOR => text(raw),
        Type::CHAR => {
            let b = r.u8()?;
            Value::String(if b.is_ascii() {
                (b as char).to_string()
            } else {
                format!("\\{b:03o}")
            })
        }
        Type::JSON => json_value(raw),
        Type::JSONB => {
            let version = r.u8()?;
            if version != 1 {
                return Err(format!("unknown jsonb version {version}"));
            }
            json_value(r.buf)
        }
        Type::JSONPATH => {
            let _version = r.u8()?;
            text(r.buf)
        }
        Type::UUID => {
            let u = uuid::Uuid::from_slice(raw).map_err(|e| e.to_string())?;
            Value::String(u.hyphenated().to_string())
        }
        Type::BYTEA => Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        Type::DATE => Value::String(date_text(r.i32()?)?),
        Type::TIME => Value::String(time_text(r.i64()?)),
        Type::TIMETZ => {
            let micros = r.i64()?;
            let zone = r.i32()?;
            Value::String(format!("{}{}", time_text(micros), offset_text(-zone)))
        }
        Type::TIMESTAMP => Value::String(timestamp_text(r.i64()?, false)?),
        Type::TIMESTAMPTZ => Value::String(timestamp_text(r.i64()?, true)?),
        Type::INTERVAL => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            Value::String(interval_text(micros, days, months))
        }
        Type::INET | Type::CIDR => Value::String(inet_text(raw)?),
        Type::MACADDR | Type::MACADDR8 => Value::String(
            raw.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        Type::BIT | Type::VARBIT => {
            let bits = r.i32()?.max(0) as usize;
            let bytes = r.buf;
            let s: String = (0..bits)
                .map(|i| {
                    if bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0) {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            Value::String(s)
        }
        Type::PG_LSN => {
            let lsn = r.u64()?;
            Value::String(format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff))
        }
        Type::TID => {
            let block = r.u32()?;
            let offset = r.u16()?;
            Value::String(format!("({block},{offset})"))
        }
        Type::VOID => Value::Null,
        Type::RECORD => decode_record(cx, raw, None)?,
        // `pg_stats.most_common_vals` and friends: an array that names its element type.
        Type::ANYARRAY => {
            let _ndim = r.i32()?;
            let _has_nulls = r.i32()?;
            match Type::from_oid(r.u32()?) {
                Some(elem) => decode_array(cx, &elem, raw)?,
                None => server_printed_value(cx, ty, raw),
            }
        }
        _ if ty.name() == "hstore" => decode_hstore(raw)?,
        _ => {
            // Extension types (citext and the like): text when the bytes are printable text.
            if ty.name() == "citext" || (ty.schema() != "pg_catalog" && printable(raw)) {
                text(raw)
            } else {
                // Anything else (aclitem, ltree, PostGIS geometry, ...): the server's text.
                server_printed_value(cx, ty, raw)
            }
        }
    };
    Ok(v)
}

/// `json` text (or `jsonb` after its version byte) with exact numbers; text that is not
/// valid JSON (never expected from the server) stays a string.
fn json_value(raw: &[u8]) -> Value {
    match std::str::from_utf8(raw) {
        Ok(s) => json_text::parse(s).unwrap_or_else(|| Value::String(s.to_string())),
        Err(_) => text(raw),
    }
}

/// `hstore`: a count, then each key and value length-prefixed (value length -1: NULL) →
/// an object of key → string or null.
fn decode_hstore(raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let count = r.i32()?.max(0) as usize;
    let mut obj = Map::new();
    for _ in 0..count {
        let key = r.field()?.ok_or("NULL hstore key")?;
        let value = r.field()?.map(text).unwrap_or(Value::Null);
        obj.insert(String::from_utf8_lossy(key).into_owned(), value);
    }
    Ok(Value::Object(obj))
}

/// N-dimensional array → nested JSON arrays (lower bounds are not kept).
fn decode_array(cx: &Cx<'_>, elem: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _elem_oid = r.u32()?;
    if ndim <= 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim > 6 {
        return Err(format!("array with {ndim} dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let len = r.i32()?;
        let _lower = r.i32()?;
        dims.push(len.max(0) as usize);
    }
    fn build(cx: &Cx<'_>, dims: &[usize], elem: &Type, r: &mut Reader<'_>) -> DecodeResult {
        let mut out = Vec::with_capacity(dims[0].min(1 << 16));
        for _ in 0..dims[0] {
            if dims.len() > 1 {
                out.push(build(cx, &dims[1..], elem, r)?);
            } else {
                out.push(match r.field()? {
                    Some(bytes) => decode(cx, elem, bytes),
                    None => Value::Null,
                });
            }
        }
        Ok(Value::Array(out))
    }
    build(cx, &dims, elem, &mut r)
}

/// A composite value → object by field name; an anonymous record → array.
fn decode_record(
    cx: &Cx<'_>,
    raw: &[u8],
    fields: Option<&[tokio_postgres::types::Field]>,
) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let count = r.i32()?.max(0) as usize;
    let mut values = Vec::with_capacity(count.min(1600));
    for i in 0..count {
        let oid = r.u32()?;
        let bytes = r.field()?;
        // An anonymous record says only its fields' OIDs: types not built in (a composite,
        // an enum, ...) are printed by the server.
        values.push(match (bytes, fields.and_then(|f| f.get(i))) {
            (None, _) => Value::Null,
            (Some(b), Some(field)) => decode(cx, field.type_(), b),
            (Some(b), None) => match Type::from_oid(oid) {
                Some(ty) => decode(cx, &ty, b),
                None => {
                    let ty = Type::new(format!("oid {oid}"), oid, Kind::Simple, String::new());
                    server_printed_value(cx, &ty, b)
                }
            },
        });
    }
    match fields {
        Some(fields) => {
            let mut obj = Map::new();
            for (i, v) in values.into_iter().enumerate() {
                let name = fields
                    .get(i)
                    .map_or_else(|| format!("f{}", i + 1), |f| f.name().to_string());
                obj.insert(name, v);
            }
            Ok(Value::Object(obj))
        }
        None => Ok(Value::Array(values)),
    }
}

/// A range → its text form, e.g. `[1,10)`, `empty`, `[2024-01-01T00:00:00Z,)`.
fn decode_range(cx: &Cx<'_>, elem: &Type, raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Ok(Value::String("empty".into()));
    }
    let mut bound = |infinite: bool| -> Result<String, String> {
        if infinite {
            return Ok(String::new());
        }
        let bytes = r.field()?.ok_or("NULL range bound")?;
        Ok(match decode(cx, elem, bytes) {
            Value::String(s)
                if s.is_empty() || s.contains([',', '(', ')', '[', ']', '"', '\\', ' ']) =>
            {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let lower = bound(flags & 0x08 != 0)?;
    let upper = bound(flags & 0x10 != 0)?;
    Ok(Value::String(format!(
        "{}{lower},{upper}{}",
        if flags & 0x02 != 0 { '[' } else { '(' },
        if flags & 0x04 != 0 { ']' } else { ')' }
    )))
}

/// NUMERIC's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
fn decode_numeric(raw: &[u8]) -> DecodeResult {
    let mut r = Reader { buf: raw };
    let ndigits = r.i16()?.max(0) as usize;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()? & 0x3fff);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(Value::String("NaN".into())),
        0xD000 => return Ok(Value::String("Infinity".into())),
        0xF000 => return Ok(Value::String("-Infinity".into())),
        other => return Err(format!("bad numeric sign {other:#x}")),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..10000).contains(&d) {
            return Err(format!("bad numeric digit {d}"));
        }
        digits.push(d);
    }
    // digits[i] is worth 10000^(weight - i).
    let digit_at = |pos: i32| -> i16 {
        let i = weight - pos;
        if i < 0 {
            0
        } else {
            digits.get(i as usize).copied().unwrap_or(0)
        }
    };
    let mut int_part = String::new();
    if weight < 0 {
        int_part.push('0');
    } else {
        for pos in (0..=weight).rev() {
            if int_part.is_empty() {
                let _ = write!(int_part, "{}", digit_at(pos));
            } else {
                let _ = write!(int_part, "{:04}", digit_at(pos));
            }
        }
    }
    let mut frac = String::new();
    let mut pos = -1;
    while frac.len() < dscale {
        let _ = write!(frac, "{:04}", digit_at(pos));
        pos -= 1;
    }
    frac.truncate(dscale);
    let negative = sign == 0x4000;
    let text = format!(
        "{}{int_part}{}{frac}",
        if negative { "-" } else { "" },
        if dscale > 0 { "." } else { "" }
    );
    Ok(numeric_json(&text, negative, &int_part, &frac))
}

/// A JSON number when it says exactly the same value, else the exact decimal string.
fn numeric_json(text: &str, negative: bool, int_part: &str, frac: &str) -> Value {
    const MAX_SAFE: i64 = 1 << 53;
    let frac_trimmed = frac.trim_end_matches('0');
    let sign = if negative { "-" } else { "" };
    if frac_trimmed.is_empty() {
        return match format!("{sign}{int_part}").parse::<i64>() {
            Ok(n) if (-MAX_SAFE..=MAX_SAFE).contains(&n) => Value::from(n),
            _ => Value::String(text.to_string()),
        };
    }
    let canonical = format!("{sign}{int_part}.{frac_trimmed}");
    match canonical.parse::<f64>() {
        Ok(f) if f.is_finite() && f.to_string() == canonical => {
            Number::from_f64(f).map_or_else(|| Value::String(text.to_string()), Value::Number)
        }
        _ => Value::String(text.to_string()),
    }
}

/// `.5`, `.123456`: the fraction of a second without trailing zeros ("" when whole).
fn fraction(micros: i64) -> String {
    let micros = micros.unsigned_abs() % 1_000_000;
    if micros == 0 {
        return String::new();
    }
    let s = format!(".{micros:06}");
    s.trim_end_matches('0').to_string()
}

const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_UNIX_DAYS: i64 = 10_957;

fn date_text(days: i32) -> Result<String, String> {
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let unix_secs = (i64::from(days) + PG_EPOCH_UNIX_DAYS) * 86_400;
    let dt = chrono::DateTime::from_timestamp(unix_secs, 0).ok_or("date out of range")?;
    Ok(dt.date_naive().to_string())
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    format!(
        "{:02}:{:02}:{:02}{}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        fraction(micros)
    )
}

/// `+02`, `-05:30`, `+05:45:10` (seconds east of UTC).
fn offset_text(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
    match (m, s) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{s:02}"),
    }
}

fn timestamp_text(micros: i64, utc: bool) -> Result<String, String> {
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let unix = micros
        .checked_add(PG_EPOCH_UNIX_MICROS)
        .ok_or("timestamp out of range")?;
    let dt = chrono::DateTime::from_timestamp_micros(unix).ok_or("timestamp out of range")?;
    let base = dt.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(format!(
        "{base}{}{}",
        fraction(unix.rem_euclid(1_000_000)),
        if utc { "Z" } else { "" }
    ))
}

/// Postgres's `IntervalStyle = postgres` output (its EncodeInterval).
fn interval_text(micros: i64, days: i32, months: i32) -> String {
    if micros == i64::MAX && days == i32::MAX && months == i32::MAX {
        return "infinity".into();
    }
    if micros == i64::MIN && days == i32::MIN && months == i32::MIN {
        return "-infinity".into();
    }
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(i64::from(months / 12), "year", &mut out);
    part(i64::from(months % 12), "mon", &mut out);
    part(i64::from(days), "day", &mut out);
    let hours = micros / 3_600_000_000;
    let rest = micros % 3_600_000_000;
    let minutes = rest / 60_000_000;
    let rest = rest % 60_000_000;
    let seconds = rest / 1_000_000;
    let fsec = rest % 1_000_000;
    if is_zero || micros != 0 {
        let minus = hours < 0 || minutes < 0 || seconds < 0 || fsec < 0;
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:{:02}{}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            hours.unsigned_abs(),
            minutes.unsigned_abs(),
            seconds.unsigned_abs(),
            fraction(fsec)
        );
    }
    out
}

fn inet_text(raw: &[u8]) -> Result<String, String> {
    let mut r = Reader { buf: raw };
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let len = usize::from(r.u8()?);
    let addr = r.take(len)?;
    let (text, max) = match (family, addr.len()) {
        (2, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            (std::net::Ipv6Addr::from(a).to_string(), 128)
        }
        _ => return Err(format!("bad inet family {family}")),
    };
    Ok(if is_cidr || bits != max {
        format!("{text}/{bits}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rendering() {
        fn num(ndigits: &[i16], weight: i16, neg: bool, dscale: u16) -> Value {
            let mut raw = Vec::new();
            raw.extend_from_slice(&(ndigits.len() as i16).to_be_bytes());
            raw.extend_from_slice(&weight.to_be_bytes());
            raw.extend_from_slice(&(if neg { 0x4000u16 } else { 0 }).to_be_bytes());
            raw.extend_from_slice(&dscale.to_be_bytes());
            for d in ndigits {
                raw.extend_from_slice(&d.to_be_bytes());
            }
            decode_numeric(&raw).unwrap()
        }
        assert_eq!(num(&[12, 3400], 0, false, 2), serde_json::json!(12.34));
        assert_eq!(num(&[], 0, false, 0), serde_json::json!(0));
        assert_eq!(num(&[5000], -1, true, 1), serde_json::json!(-0.5));
        assert_eq!(num(&[3], 0, false, 2), serde_json::json!(3));
        assert_eq!(
            num(&[1], 5, false, 0),
            serde_json::json!("100000000000000000000")
        );
        assert_eq!(
            num(&[1234, 5678, 9012, 3456, 7890], 2, false, 8),
            serde_json::json!("123456789012.34567890")
        );
        assert_eq!(num(&[1], -2, false, 8), serde_json::json!(0.00000001));
    }

    #[test]
    fn timestamps_before_1970_keep_their_fraction() {
        // 1969-12-31 23:59:59.25 UTC, in microseconds since 2000-01-01.
        let micros = -PG_EPOCH_UNIX_MICROS - 750_000;
        assert_eq!(
            timestamp_text(micros, true).unwrap(),
            "1969-12-31T23:59:59.25Z"
        );
        assert_eq!(
            timestamp_text(-PG_EPOCH_UNIX_MICROS - 1, false).unwrap(),
            "1969-12-31T23:59:59.999999"
        );
    }

    #[test]
    fn interval_rendering() {
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(300_000_000, 0, 0), "00:05:00");
        assert_eq!(interval_text(7_384_500_000, 1, 0), "1 day 02:03:04.5");
        assert_eq!(interval_text(0, 2, 3), "3 mons 2 days");
        assert_eq!(interval_text(-1_000_000, 0, 0), "-00:00:01");
        assert_eq!(interval_text(7_200_000_000, -1, 0), "-1 days +02:00:00");
        assert_eq!(interval_text(0, 0, 14), "1 year 2 mons");
    }
}
