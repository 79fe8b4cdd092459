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

/// Appends the MessagePack encoding of one argument to `out`.
///
/// On error `out` may hold a partial value; callers discard the buffer.
pub fn write_msgpack(kind: &argument::Kind, out: &mut Vec<u8>) -> Result<(), ArgError> {
    match kind {
        argument::Kind::Value(v) => write_value(v, out, 0),
        argument::Kind::Binary(b) => {
            write_bin(out, b);
            Ok(())
        }
        argument::Kind::Json(text) => json_to_msgpack(text, out),
        argument::Kind::Msgpack(bytes) => {
            validate_msgpack(bytes)?;
            out.extend_from_slice(bytes);
            Ok(())
        }
    }
}

/// Appends the JSON encoding of one argument to `out` (for JSON requests).
///
/// Only `value` and `json` arguments can be sent as JSON: Socket.IO servers
/// parse these requests with `JSON.parse`, which has no binary type.
pub fn write_json(kind: &argument::Kind, out: &mut Vec<u8>) -> Result<(), ArgError> {
    match kind {
        argument::Kind::Value(v) => write_value_json(v, out, 0),
        argument::Kind::Json(text) => {
            let raw: &serde_json::value::RawValue =
                serde_json::from_str(text).map_err(|e| ArgError(format!("invalid JSON: {e}")))?;
            out.extend_from_slice(raw.get().as_bytes());
            Ok(())
        }
        argument::Kind::Binary(_) | argument::Kind::Msgpack(_) => {
            err("only `value` and `json` arguments can be sent to servers (they receive JSON)")
        }
    }
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

fn write_value_json(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), ArgError> {
    if depth > MAX_DEPTH {
        return err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match &v.kind {
        None | Some(Kind::NullValue(_)) => out.extend_from_slice(b"null"),
        Some(Kind::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Kind::NumberValue(n)) => {
            let n = *n;
            if !n.is_finite() {
                return err("numbers must be finite (NaN and infinities cannot be sent)");
            }
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
                #[allow(clippy::cast_possible_truncation)]
                out.extend_from_slice((n as i64).to_string().as_bytes());
            } else {
                // serde_json writes the shortest round-trip form.
                let _ = serde_json::to_writer(&mut *out, &n);
            }
        }
        Some(Kind::StringValue(s)) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Some(Kind::ListValue(list)) => {
            out.push(b'[');
            for (i, item) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value_json(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Some(Kind::StructValue(s)) => {
            out.push(b'{');
            for (i, (k, item)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_value_json(item, out, depth + 1)?;
            }
            out.push(b'}');
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
    Key,
    Container { len: u64, map: bool },
}

/// Checks that `bytes` holds exactly one MessagePack value that a Socket.IO
/// adapter decodes safely: well-formed, UTF-8 strings, string or integer map
/// keys, finite floats, the timestamp extension only, at most
/// [`MAX_DEPTH`] levels deep, and nothing after the value.
pub fn validate_msgpack(bytes: &[u8]) -> Result<(), ArgError> {
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
            Item::Scalar if is_key => {
                return err(format!("map key at byte {at} must be a string or an integer"));
            }
            Item::Container { .. } if is_key => {
                return err(format!("map key at byte {at} must be a string or an integer"));
            }
            Item::Scalar | Item::Key => {}
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
    Ok(())
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
            Item::Scalar
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
    Ok(Item::Scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(kind: argument::Kind) -> Result<Vec<u8>, ArgError> {
        let mut out = Vec::new();
        write_msgpack(&kind, &mut out).map(|()| out)
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

    #[test]
    fn json_requests_accept_only_json_kinds() {
        let mut out = Vec::new();
        assert!(write_json(&argument::Kind::Binary(vec![1]), &mut out).is_err());
        write_json(&argument::Kind::Json(" {\"a\": 1} ".into()), &mut out).unwrap();
        assert_eq!(out, b"{\"a\": 1}");
    }
}
