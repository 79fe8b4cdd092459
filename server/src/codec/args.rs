//! Event arguments: validation and encoding.
//!
//! Each [`Argument`](crate::pb::Argument) kind is turned into exactly one
//! MessagePack value (for event packets) or one JSON value (for the JSON
//! requests of `ServerSideEmit`). Nothing here allocates a value tree: JSON is
//! transcoded in one streaming pass and `msgpack` arguments are checked in
//! place and then copied as bytes.

use std::fmt;

use prost_types::{Value, value::Kind};
use rmp::Marker;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{MAX_DEPTH, MAX_SAFE_INTEGER};
use crate::pb::argument;

/// Why an argument was refused. The text is shown to callers as the
/// description of a field violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

/// Appends the MessagePack encoding of one argument to `out` and tells what
/// it contains.
///
/// On error `out` may hold a partial value; callers discard the buffer.
pub fn write_msgpack(kind: &argument::Kind, out: &mut Vec<u8>) -> Result<Shape, ArgError> {
    match kind {
        argument::Kind::Value(v) => write_value(v, out, 0).map(|()| Shape::default()),
        argument::Kind::Binary(b) => {
            write_bin(out, b);
            Ok(Shape {
                binary: true,
                timestamp: false,
            })
        }
        argument::Kind::Json(text) => json_to_msgpack(text, out).map(|()| Shape::default()),
        argument::Kind::Msgpack(bytes) => {
            let shape = validate_msgpack(bytes)?;
            out.extend_from_slice(bytes);
            Ok(shape)
        }
    }
}

/// Writes the JSON for one `bin` value found while transcoding to JSON, or
/// refuses it.
pub type BinaryToJson<'a> = dyn FnMut(&[u8], &mut Vec<u8>) -> Result<(), ArgError> + 'a;

/// Appends the JSON text of validated MessagePack values (back to back in
/// `bytes`), each preceded by a comma, for splicing into a JSON array.
///
/// `binary` writes the JSON for one `bin` value (e.g. a placeholder), or
/// refuses it. Timestamps are refused: JSON has no date type. An error
/// carries the index of the value that failed.
pub fn msgpack_to_json_list(
    bytes: &[u8],
    out: &mut Vec<u8>,
    binary: &mut BinaryToJson<'_>,
) -> Result<(), (usize, ArgError)> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let mut index = 0;
    while c.remaining() > 0 {
        out.push(b',');
        value_to_json(&mut c, out, binary, 0).map_err(|e| (index, e))?;
        index += 1;
    }
    Ok(())
}

fn value_to_json(
    c: &mut Cursor<'_>,
    out: &mut Vec<u8>,
    binary: &mut BinaryToJson<'_>,
    depth: usize,
) -> Result<(), ArgError> {
    if depth > MAX_DEPTH {
        return err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let at = c.pos;
    let marker = Marker::from_u8(c.u8()?);
    #[allow(clippy::cast_possible_wrap)]
    match marker {
        Marker::Null => out.extend_from_slice(b"null"),
        Marker::True => out.extend_from_slice(b"true"),
        Marker::False => out.extend_from_slice(b"false"),
        Marker::FixPos(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Marker::FixNeg(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
            let width = 1 << (marker.to_u8() - 0xcc);
            out.extend_from_slice(c.be(width)?.to_string().as_bytes());
        }
        Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
            let width = 1usize << (marker.to_u8() - 0xd0);
            let raw = c.be(width)?;
            let shift = 64 - 8 * width as u32;
            let v = ((raw << shift) as i64) >> shift;
            out.extend_from_slice(v.to_string().as_bytes());
        }
        Marker::F32 => {
            let bits = u32::try_from(c.be(4)?).unwrap_or_default();
            let _ = serde_json::to_writer(&mut *out, &f64::from(f32::from_bits(bits)));
        }
        Marker::F64 => {
            let _ = serde_json::to_writer(&mut *out, &f64::from_bits(c.be(8)?));
        }
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let s = js_str(c, marker, at)?;
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let width = match marker {
                Marker::Bin8 => 1,
                Marker::Bin16 => 2,
                _ => 4,
            };
            let n = c.be(width)?;
            let body = c.take(to_usize(n))?;
            binary(body, out)?;
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = container_len(c, marker)?;
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                value_to_json(c, out, binary, depth + 1)?;
            }
            out.push(b']');
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = container_len(c, marker)?;
            out.push(b'{');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                // Keys are strings or integers (validated); JSON keys are strings.
                let mut key = Vec::new();
                value_to_json(c, &mut key, binary, depth + 1)?;
                if key.first() == Some(&b'"') {
                    out.extend_from_slice(&key);
                } else {
                    out.push(b'"');
                    out.extend_from_slice(&key);
                    out.push(b'"');
                }
                out.push(b':');
                value_to_json(c, out, binary, depth + 1)?;
            }
            out.push(b'}');
        }
        _ => {
            return err(format!(
                "value at byte {at} has no JSON form (timestamps need a MessagePack transport)"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// MessagePack → the JSON text JavaScript writes (targets whose adapter parser
// is `JSON`).

/// Largest array index of a JavaScript object property (2^32 − 2): such
/// keys come first in a JavaScript object, in ascending order.
const MAX_ARRAY_INDEX: u64 = (1 << 32) - 2;

/// Appends, each preceded by a comma, the JSON text `JSON.stringify` writes
/// for validated MessagePack values as a JavaScript process holds them:
/// numbers in ECMAScript's shortest form (`1e+21`, `-0` as `0`), object keys
/// in JavaScript property order (array indices first, ascending; a repeated
/// key keeps its first place and its last value).
///
/// Refuses what a JSON reader cannot get back: binary, timestamps and
/// integers beyond ±2^53 (`JSON.parse` would round them). Floats are finite
/// (validated). An error carries the index of the value that failed.
pub fn msgpack_to_js_json_list(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), (usize, ArgError)> {
    let mut rest = bytes;
    let mut index = 0;
    while !rest.is_empty() {
        out.push(b',');
        // One cursor per value: byte offsets in errors count from the
        // argument's own start.
        let mut c = Cursor { buf: rest, pos: 0 };
        js_value(&mut c, out, 0).map_err(|e| (index, e))?;
        rest = &rest[c.pos..];
        index += 1;
    }
    Ok(())
}

/// Writes a finite number as ECMAScript's `Number.prototype.toString` does.
pub fn write_js_number(out: &mut Vec<u8>, n: f64) {
    if n == 0.0 {
        // `JSON.stringify(-0)` is `0`.
        out.push(b'0');
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(n).as_bytes());
    }
}

/// An integer as a JavaScript number, or why it is not one exactly.
fn js_integer(c: &mut Cursor<'_>, marker: Marker, at: usize) -> Result<Option<i128>, ArgError> {
    #[allow(clippy::cast_possible_wrap)]
    let v = match marker {
        Marker::FixPos(n) => i128::from(n),
        Marker::FixNeg(n) => i128::from(n),
        Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => i128::from(c.be(1 << (marker.to_u8() - 0xcc))?),
        Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
            let width = 1usize << (marker.to_u8() - 0xd0);
            let raw = c.be(width)?;
            let shift = 64 - 8 * width as u32;
            i128::from(((raw << shift) as i64) >> shift)
        }
        _ => return Ok(None),
    };
    if v.unsigned_abs() > 1 << 53 {
        return err(format!(
            "integer {v} at byte {at} is beyond ±2^53, which JSON.parse rounds (send it as a string)"
        ));
    }
    Ok(Some(v))
}

fn js_value(c: &mut Cursor<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), ArgError> {
    if depth > MAX_DEPTH {
        return err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let at = c.pos;
    let marker = Marker::from_u8(c.u8()?);
    if let Some(v) = js_integer(c, marker, at)? {
        out.extend_from_slice(v.to_string().as_bytes());
        return Ok(());
    }
    match marker {
        Marker::Null => out.extend_from_slice(b"null"),
        Marker::True => out.extend_from_slice(b"true"),
        Marker::False => out.extend_from_slice(b"false"),
        Marker::F32 => {
            let bits = u32::try_from(c.be(4)?).unwrap_or_default();
            write_js_number(out, f64::from(f32::from_bits(bits)));
        }
        Marker::F64 => write_js_number(out, f64::from_bits(c.be(8)?)),
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let s = js_str(c, marker, at)?;
            // serde_json escapes exactly what JSON.stringify escapes.
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            return err(format!("binary data at byte {at} (JSON has no binary type)"));
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            let n = container_len(c, marker)?;
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                js_value(c, out, depth + 1)?;
            }
            out.push(b']');
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            let n = container_len(c, marker)?;
            js_object(c, n, out, depth)?;
        }
        _ => {
            return err(format!(
                "timestamp at byte {at} (JSON has no date type: send an ISO 8601 string)"
            ));
        }
    }
    Ok(())
}

/// The element count of an array or map whose marker was read.
fn container_len(c: &mut Cursor<'_>, marker: Marker) -> Result<u64, ArgError> {
    match marker {
        Marker::FixArray(n) | Marker::FixMap(n) => Ok(u64::from(n)),
        Marker::Array16 | Marker::Map16 => c.be(2),
        _ => c.be(4),
    }
}

/// The body of a string whose marker was read.
fn js_str<'a>(c: &mut Cursor<'a>, marker: Marker, at: usize) -> Result<&'a str, ArgError> {
    let n = match marker {
        Marker::FixStr(n) => u64::from(n),
        Marker::Str8 => c.be(1)?,
        Marker::Str16 => c.be(2)?,
        _ => c.be(4)?,
    };
    let body = c.take(to_usize(n))?;
    std::str::from_utf8(body).map_err(|_| ArgError(format!("string at byte {at} is not valid UTF-8")))
}

/// A map of `n` entries as a JavaScript object: keys in property order.
fn js_object(c: &mut Cursor<'_>, n: u64, out: &mut Vec<u8>, depth: usize) -> Result<(), ArgError> {
    // (key, value's range in `values`), in first-seen order of the keys.
    let mut entries: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut values = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for _ in 0..n {
        let at = c.pos;
        let marker = Marker::from_u8(c.u8()?);
        // Keys are strings or integers (validated); a JavaScript key is a string.
        let key = match js_integer(c, marker, at)? {
            Some(i) => i.to_string(),
            None => js_str(c, marker, at)?.to_owned(),
        };
        let start = values.len();
        js_value(c, &mut values, depth + 1)?;
        let range = start..values.len();
        match seen.get(&key) {
            Some(&i) => entries[i].1 = range,
            None => {
                seen.insert(key.clone(), entries.len());
                entries.push((key, range));
            }
        }
    }
    // Array indices first, ascending; the other keys keep their order.
    entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
    out.push(b'{');
    for (i, (key, range)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        out.extend_from_slice(&values[range.clone()]);
    }
    out.push(b'}');
    Ok(())
}

/// The array index a property key denotes in JavaScript (a canonical
/// decimal from 0 to 2^32 − 2), if any.
fn array_index(key: &str) -> Option<u64> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty() && key.len() <= 10);
    if !canonical || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u64>().ok().filter(|&i| i <= MAX_ARRAY_INDEX)
}

// ---------------------------------------------------------------------------
// MessagePack writers (rmp writes the smallest form, as notepack does).

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_str(out, s);
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_bin(out, b);
}

/// Writes a JSON-model number the way the JavaScript encoder does.
fn write_number(out: &mut Vec<u8>, n: f64) -> Result<(), ArgError> {
    if !n.is_finite() {
        return err("numbers must be finite (NaN and infinities cannot be sent)");
    }
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // Exact: |n| <= 2^53 fits i64 without rounding.
        #[allow(clippy::cast_possible_truncation)]
        write_int(out, n as i64);
    } else {
        let _ = rmp::encode::write_f64(out, n);
    }
    Ok(())
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        #[allow(clippy::cast_sign_loss)]
        let _ = rmp::encode::write_uint(out, i as u64);
    } else {
        let _ = rmp::encode::write_sint(out, i);
    }
}

fn write_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), ArgError> {
    if depth > MAX_DEPTH {
        return err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match &v.kind {
        None | Some(Kind::NullValue(_)) => out.push(0xc0),
        Some(Kind::BoolValue(b)) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Some(Kind::NumberValue(n)) => write_number(out, *n)?,
        Some(Kind::StringValue(s)) => write_str(out, s),
        Some(Kind::ListValue(list)) => {
            let len = u32::try_from(list.values.len()).map_err(|_| ArgError("list too long".into()))?;
            let _ = rmp::encode::write_array_len(out, len);
            for item in &list.values {
                write_value(item, out, depth + 1)?;
            }
        }
        Some(Kind::StructValue(s)) => {
            let len = u32::try_from(s.fields.len()).map_err(|_| ArgError("struct too large".into()))?;
            let _ = rmp::encode::write_map_len(out, len);
            // prost decodes `Struct.fields` into a BTreeMap, so keys come out
            // sorted; protobuf maps have no order to preserve.
            for (k, item) in &s.fields {
                write_str(out, k);
                write_value(item, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// JSON text → MessagePack in one streaming pass.

/// Transcodes one JSON value to MessagePack, appending to `out`.
pub fn json_to_msgpack(text: &str, out: &mut Vec<u8>) -> Result<(), ArgError> {
    let mut de = serde_json::Deserializer::from_str(text);
    Transcode { out }
        .deserialize(&mut de)
        .map_err(|e| ArgError(format!("invalid JSON: {e}")))?;
    de.end().map_err(|e| ArgError(format!("invalid JSON: {e}")))
}

/// A serde seed that writes whatever it is fed as MessagePack.
struct Transcode<'a> {
    out: &'a mut Vec<u8>,
}

/// Size of the widest array/map header (marker + u32), reserved up front
/// because a streaming JSON parser does not know a container's length.
const HEADER_RESERVE: usize = 5;

impl Transcode<'_> {
    /// Replaces the reserved header at `start` by the real one for `len`
    /// items, moving the content left when the header is shorter.
    fn finish_container(&mut self, start: usize, len: u32, map: bool) {
        let mut header = Vec::with_capacity(HEADER_RESERVE);
        if map {
            let _ = rmp::encode::write_map_len(&mut header, len);
        } else {
            let _ = rmp::encode::write_array_len(&mut header, len);
        }
        let content_start = start + HEADER_RESERVE;
        let shift = HEADER_RESERVE - header.len();
        self.out[start..start + header.len()].copy_from_slice(&header);
        if shift > 0 {
            let end = self.out.len();
            self.out.copy_within(content_start..end, start + header.len());
            self.out.truncate(end - shift);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        #[allow(clippy::cast_precision_loss)]
        if v.unsigned_abs() <= 1 << 53 {
            write_int(self.out, v);
            Ok(())
        } else {
            // JSON numbers are JavaScript numbers: beyond 2^53 they are floats.
            write_number(self.out, v as f64).map_err(|e| E::custom(e.0))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        #[allow(clippy::cast_precision_loss)]
        if v <= 1 << 53 {
            let _ = rmp::encode::write_uint(self.out, v);
            Ok(())
        } else {
            write_number(self.out, v as f64).map_err(|e| E::custom(e.0))
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_number(self.out, v).map_err(|e| E::custom(e.0))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_str(self.out, v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(0xc0);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; HEADER_RESERVE]);
        let mut len: u32 = 0;
        while seq.next_element_seed(Transcode { out: self.out })?.is_some() {
            len = len.checked_add(1).ok_or_else(|| de::Error::custom("array too long"))?;
        }
        self.finish_container(start, len, false);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; HEADER_RESERVE]);
        let mut len: u32 = 0;
        while map.next_key_seed(Transcode { out: self.out })?.is_some() {
            map.next_value_seed(Transcode { out: self.out })?;
            len = len
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("object too large"))?;
        }
        self.finish_container(start, len, true);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Validation of pre-encoded MessagePack.

/// A read cursor over a MessagePack buffer.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArgError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| ArgError(format!("truncated MessagePack at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ArgError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, ArgError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// One open array or map while walking a MessagePack value.
struct Frame {
    /// Values still to read (a map of n entries holds 2n values).
    remaining: u64,
    map: bool,
}

/// What a MessagePack item turned out to be, as far as structure goes.
enum Item {
    Scalar,
    Binary,
    Timestamp,
    Key,
    Container { len: u64, map: bool },
}

/// What a validated MessagePack value contains, for dialects whose encoding
/// depends on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// A `bin` value occurs somewhere inside.
    pub binary: bool,
    /// A timestamp extension occurs somewhere inside.
    pub timestamp: bool,
}

impl std::ops::BitOrAssign for Shape {
    fn bitor_assign(&mut self, rhs: Self) {
        self.binary |= rhs.binary;
        self.timestamp |= rhs.timestamp;
    }
}

/// Checks that `bytes` holds exactly one MessagePack value that a Socket.IO
/// adapter decodes safely: well-formed, UTF-8 strings, string or integer map
/// keys, finite floats, the timestamp extension only, at most
/// [`MAX_DEPTH`] levels deep, and nothing after the value.
pub fn validate_msgpack(bytes: &[u8]) -> Result<Shape, ArgError> {
    let mut shape = Shape::default();
    if bytes.is_empty() {
        return err("empty: exactly one MessagePack value is required");
    }
    let mut c = Cursor { buf: bytes, pos: 0 };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_read = false;
    loop {
        let is_key = match stack.last_mut() {
            Some(f) => {
                let key = f.map && f.remaining % 2 == 0;
                f.remaining -= 1;
                key
            }
            None if root_read => break,
            None => {
                root_read = true;
                false
            }
        };
        let at = c.pos;
        match read_item(&mut c)? {
            Item::Scalar | Item::Binary | Item::Timestamp | Item::Container { .. } if is_key => {
                return err(format!("map key at byte {at} must be a string or an integer"));
            }
            Item::Scalar | Item::Key => {}
            Item::Binary => shape.binary = true,
            Item::Timestamp => shape.timestamp = true,
            Item::Container { len, map } => {
                let values = if map { len * 2 } else { len };
                // Every value takes at least one byte: refuse impossible
                // lengths before walking them.
                if values > c.remaining() as u64 {
                    return err(format!(
                        "truncated MessagePack: container at byte {at} claims {len} items"
                    ));
                }
                if values > 0 {
                    if stack.len() >= MAX_DEPTH {
                        return err(format!("nested deeper than {MAX_DEPTH} levels"));
                    }
                    stack.push(Frame { remaining: values, map });
                }
            }
        }
        while stack.last().is_some_and(|f| f.remaining == 0) {
            stack.pop();
        }
    }
    if c.pos != bytes.len() {
        return err(format!(
            "{} trailing bytes after the MessagePack value: exactly one value is allowed",
            bytes.len() - c.pos
        ));
    }
    Ok(shape)
}

fn read_item(c: &mut Cursor<'_>) -> Result<Item, ArgError> {
    let at = c.pos;
    let marker = Marker::from_u8(c.u8()?);
    let item = match marker {
        Marker::FixPos(_) | Marker::FixNeg(_) => Item::Key,
        Marker::Null | Marker::True | Marker::False => Item::Scalar,
        Marker::U8 | Marker::I8 => {
            c.take(1)?;
            Item::Key
        }
        Marker::U16 | Marker::I16 => {
            c.take(2)?;
            Item::Key
        }
        Marker::U32 | Marker::I32 => {
            c.take(4)?;
            Item::Key
        }
        Marker::U64 | Marker::I64 => {
            c.take(8)?;
            Item::Key
        }
        Marker::F32 => {
            let bits = u32::try_from(c.be(4)?).unwrap_or_default();
            if !f32::from_bits(bits).is_finite() {
                return err(format!("float at byte {at} is not finite"));
            }
            Item::Scalar
        }
        Marker::F64 => {
            if !f64::from_bits(c.be(8)?).is_finite() {
                return err(format!("float at byte {at} is not finite"));
            }
            Item::Scalar
        }
        Marker::FixStr(n) => str_body(c, usize::from(n), at)?,
        Marker::Str8 => {
            let n = c.be(1)?;
            str_body(c, to_usize(n), at)?
        }
        Marker::Str16 => {
            let n = c.be(2)?;
            str_body(c, to_usize(n), at)?
        }
        Marker::Str32 => {
            let n = c.be(4)?;
            str_body(c, to_usize(n), at)?
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let width = match marker {
                Marker::Bin8 => 1,
                Marker::Bin16 => 2,
                _ => 4,
            };
            let n = c.be(width)?;
            c.take(to_usize(n))?;
            Item::Binary
        }
        Marker::FixArray(n) => Item::Container {
            len: u64::from(n),
            map: false,
        },
        Marker::Array16 => Item::Container {
            len: c.be(2)?,
            map: false,
        },
        Marker::Array32 => Item::Container {
            len: c.be(4)?,
            map: false,
        },
        Marker::FixMap(n) => Item::Container {
            len: u64::from(n),
            map: true,
        },
        Marker::Map16 => Item::Container {
            len: c.be(2)?,
            map: true,
        },
        Marker::Map32 => Item::Container {
            len: c.be(4)?,
            map: true,
        },
        Marker::FixExt4 => ext_body(c, 4, at)?,
        Marker::FixExt8 => ext_body(c, 8, at)?,
        Marker::Ext8 => {
            let n = c.be(1)?;
            ext_body(c, to_usize(n), at)?
        }
        Marker::FixExt1 | Marker::FixExt2 | Marker::FixExt16 | Marker::Ext16 | Marker::Ext32 => {
            return err(format!(
                "extension at byte {at}: only the timestamp extension (type -1) is allowed"
            ));
        }
        Marker::Reserved => return err(format!("invalid MessagePack byte 0xc1 at byte {at}")),
    };
    Ok(item)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn str_body(c: &mut Cursor<'_>, n: usize, at: usize) -> Result<Item, ArgError> {
    let body = c.take(n)?;
    if std::str::from_utf8(body).is_err() {
        return err(format!("string at byte {at} is not valid UTF-8"));
    }
    Ok(Item::Key)
}

/// Accepts the MessagePack timestamp extension (type -1, 4/8/12 bytes), which
/// the adapter decodes to a `Date`; any other extension type is refused.
fn ext_body(c: &mut Cursor<'_>, n: usize, at: usize) -> Result<Item, ArgError> {
    #[allow(clippy::cast_possible_wrap)]
    let ty = c.u8()? as i8;
    if ty != -1 || !matches!(n, 4 | 8 | 12) {
        return err(format!(
            "extension at byte {at}: only the timestamp extension (type -1) is allowed"
        ));
    }
    c.take(n)?;
    Ok(Item::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(kind: argument::Kind) -> Result<Vec<u8>, ArgError> {
        let mut out = Vec::new();
        write_msgpack(&kind, &mut out).map(|_| out)
    }

    fn to_json(hex_values: &str) -> Result<String, ArgError> {
        let mut out = Vec::new();
        let mut refuse = |_: &[u8], _: &mut Vec<u8>| err("binary");
        msgpack_to_json_list(&hex::decode(hex_values).unwrap(), &mut out, &mut refuse).map_err(|(_, e)| e)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn msgpack_transcodes_to_json() {
        assert_eq!(to_json("").unwrap(), "");
        assert_eq!(to_json("a5776f726c6401").unwrap(), r#","world",1"#);
        assert_eq!(
            to_json("83a161920102a162cb3ff8000000000000a163d0df").unwrap(),
            r#",{"a":[1,2],"b":1.5,"c":-33}"#
        );
        assert_eq!(
            to_json("8101a178cf0020000000000001").unwrap(),
            r#",{"1":"x"},9007199254740993"#
        );
        assert_eq!(to_json("c0c3c2d1ff7f").unwrap(), ",null,true,false,-129");
        assert!(to_json("c40101").is_err());
        let mut refuse = |_: &[u8], _: &mut Vec<u8>| err("binary");
        let e = msgpack_to_json_list(&hex::decode("01c40101").unwrap(), &mut Vec::new(), &mut refuse).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(to_json("d6ff6553f100").is_err());
        let mut out = Vec::new();
        let mut placeholder = |b: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(format!("{{\"len\":{}}}", b.len()).as_bytes());
            Ok(())
        };
        msgpack_to_json_list(&hex::decode("91c403010203").unwrap(), &mut out, &mut placeholder).unwrap();
        assert_eq!(out, br#",[{"len":3}]"#);
    }

    fn to_js(hex_values: &str) -> Result<String, ArgError> {
        let mut out = Vec::new();
        msgpack_to_js_json_list(&hex::decode(hex_values).unwrap(), &mut out).map_err(|(_, e)| e)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn msgpack_transcodes_to_the_json_javascript_writes() {
        // float32 0.1 is the double 0.10000000149011612; -0 is 0; 1e21 is 1e+21.
        assert_eq!(to_js("ca3dcccccd").unwrap(), ",0.10000000149011612");
        assert_eq!(to_js("cb8000000000000000").unwrap(), ",0");
        assert_eq!(to_js("cb444b1ae4d6e2ef50").unwrap(), ",1e+21");
        assert_eq!(to_js("cb4415af1d78b58c40").unwrap(), ",100000000000000000000");
        // 2^53 fits, 2^53 + 1 and -(2^53 + 1) do not, as integers.
        assert_eq!(to_js("cf0020000000000000").unwrap(), ",9007199254740992");
        assert!(to_js("cf0020000000000001").unwrap_err().0.contains("beyond ±2^53"));
        assert!(to_js("d3ffdfffffffffffff").unwrap_err().0.contains("beyond ±2^53"));
        // Integer keys are strings; array indices first, ascending; a
        // repeated key keeps its first place and its last value.
        assert_eq!(to_js("84a1620a0201a16101a16203").unwrap(), r#",{"2":1,"b":3,"a":1}"#);
        assert!(to_js("91c40101").unwrap_err().0.contains("binary data at byte 1"));
        // Offsets count from the failing argument's start.
        let mut out = Vec::new();
        let e = msgpack_to_js_json_list(&hex::decode("a3616263c40101").unwrap(), &mut out).unwrap_err();
        assert_eq!((e.0, e.1.0.starts_with("binary data at byte 0")), (1, true), "{e:?}");
        assert!(to_js("81a174d6ff6553f100").unwrap_err().0.contains("timestamp"));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
    }

    #[test]
    fn shapes_report_binary_and_timestamps() {
        assert_eq!(
            validate_msgpack(&hex::decode("91c400").unwrap()).unwrap(),
            Shape {
                binary: true,
                timestamp: false
            }
        );
        assert_eq!(
            validate_msgpack(&hex::decode("81a174d6ff6553f100").unwrap()).unwrap(),
            Shape {
                binary: false,
                timestamp: true
            }
        );
        assert_eq!(validate_msgpack(&hex::decode("c0").unwrap()).unwrap(), Shape::default());
    }

    fn json(text: &str) -> Result<String, ArgError> {
        mp(argument::Kind::Json(text.into())).map(hex::encode)
    }

    #[test]
    fn json_numbers_follow_javascript() {
        assert_eq!(json("7").unwrap(), "07");
        assert_eq!(json("7.0").unwrap(), "07");
        assert_eq!(json("-33").unwrap(), "d0df");
        assert_eq!(json("1.5").unwrap(), "cb3ff8000000000000");
        assert_eq!(json("9007199254740992").unwrap(), "cf0020000000000000");
        // 2^53 + 1 parses to the double 2^53, as JSON.parse gives.
        assert_eq!(json("9007199254740993").unwrap(), "cf0020000000000000");
        // Beyond 2^53 integers are not exact in JavaScript: float64.
        assert_eq!(json("18014398509481984").unwrap(), "cb4350000000000000");
        assert_eq!(json("-18014398509481984").unwrap(), "cbc350000000000000");
        assert_eq!(json("1e300").unwrap(), "cb7e37e43c8800759c");
    }

    #[test]
    fn json_containers_get_compact_headers() {
        assert_eq!(json("[]").unwrap(), "90");
        assert_eq!(json("{}").unwrap(), "80");
        assert_eq!(json(r#"{"a":[1,{"b":null}]}"#).unwrap(), "81a161920181a162c0");
        let big = format!("[{}]", vec!["0"; 20].join(","));
        assert_eq!(json(&big).unwrap(), format!("dc0014{}", "00".repeat(20)));
    }

    #[test]
    fn json_rejects_garbage_and_depth() {
        assert!(json("").is_err());
        assert!(json("[1,").is_err());
        assert!(json("1 2").is_err());
        assert!(json("NaN").is_err());
        assert!(json(&"[".repeat(100_000)).is_err());
    }

    #[test]
    fn values_follow_number_rules() {
        let num = |n: f64| {
            mp(argument::Kind::Value(Value {
                kind: Some(Kind::NumberValue(n)),
            }))
        };
        assert_eq!(num(7.0).unwrap(), vec![7]);
        assert_eq!(num(-1.0).unwrap(), vec![0xff]);
        assert!(num(f64::NAN).is_err());
        assert!(num(f64::INFINITY).is_err());
        assert_eq!(num(1e300).unwrap()[0], 0xcb);
    }

    #[test]
    fn msgpack_accepts_well_formed_values() {
        for ok in [
            "c0",
            "93a161c403010203cb3ff8000000000000",
            "82a16101a162c2",
            "8101a178",     // integer key
            "d6ff6553f100", // timestamp 32
            "d7ff1d5353006553f100",
            "cf0020000000000001",
        ] {
            validate_msgpack(&hex::decode(ok).unwrap()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn msgpack_rejects_what_crashes_or_corrupts_a_server() {
        for bad in [
            "",                      // empty
            "93a7656d6974746572",    // truncated array
            "c0c0",                  // two values
            "a2ff00",                // invalid UTF-8
            "81c0c0",                // nil key
            "819000",                // array key
            "d40000",                // fixext1
            "d70100000000000000000", // odd hex, caught below
            "cb7ff8000000000000",    // NaN
            "c1",                    // reserved
            "ddffffffff",            // huge array, no items
        ] {
            let Ok(bytes) = hex::decode(bad) else { continue };
            assert!(validate_msgpack(&bytes).is_err(), "{bad} accepted");
        }
        let deep = [vec![0x91; 200], vec![0xc0]].concat();
        assert!(validate_msgpack(&deep).is_err());
        let ok_deep = [vec![0x91; 100], vec![0xc0]].concat();
        assert!(validate_msgpack(&ok_deep).is_ok());
    }
}
