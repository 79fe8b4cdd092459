//! The message bodies of socket.io-adapter's `ClusterAdapter`, shared by the
//! `socketio-sharded` and `socketio-streams` dialects.
//!
//! Both server stacks read a `ClusterMessage` `{uid, nsp, type, data}` and
//! dispatch on `type` (docs/protocol.md §4). The sharded adapter carries
//! the whole message over pub/sub; the streams adapter stores `uid`, `nsp`
//! and `type` as stream fields and only `data` as a string. This module
//! writes `data` for each operation, as JSON or as MessagePack: the readers
//! parse JSON when the first byte is `{` and MessagePack otherwise.

use super::{
    CodecError, EncodedArgs, Event, Flags, Selector,
    args::msgpack_to_json_list,
    write::{json_flags, json_str, json_str_array, mp_flags, mp_str, mp_str_array},
};

/// `ClusterAdapter` message types (`MessageType` in socket.io-adapter).
pub mod message_type {
    /// An event to clients, without ack.
    pub const BROADCAST: u8 = 3;
    /// Selected sockets join rooms.
    pub const SOCKETS_JOIN: u8 = 4;
    /// Selected sockets leave rooms.
    pub const SOCKETS_LEAVE: u8 = 5;
    /// Selected sockets are disconnected.
    pub const DISCONNECT_SOCKETS: u8 = 6;
    /// An event to the servers' namespace handlers.
    pub const SERVER_SIDE_EMIT: u8 = 9;
}

/// Socket.IO packet type `EVENT`; servers detect binary themselves.
const PACKET_TYPE_EVENT: u8 = 2;

/// How `data` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON text starting with `{`.
    Json,
    /// One MessagePack map.
    Msgpack,
}

impl Format {
    /// MessagePack when an argument holds a `bin` or a timestamp anywhere
    /// inside (neither has a JSON form), JSON otherwise, as the adapters
    /// themselves choose (`hasBinary(data)`).
    pub fn for_args(args: &EncodedArgs) -> Self {
        if args.shape.binary || args.shape.timestamp {
            Format::Msgpack
        } else {
            Format::Json
        }
    }
}

/// The key order of `opts` (decoders do not care; the orders reproduce the
/// reference publishers byte for byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptsOrder {
    /// `{rooms, except, flags}`: the adapters' own publishes.
    RoomsExceptFlags,
    /// `{rooms, flags, except}`: `@socket.io/redis-streams-emitter`.
    RoomsFlagsExcept,
}

// ---------------------------------------------------------------------------
// Small writers.

/// Writes `[event, ...args]` in `format`. In JSON the arguments are
/// transcoded from MessagePack; a value without a JSON form is reported
/// with its index (it cannot occur when `format` came from
/// [`Format::for_args`]).
fn event_array(out: &mut Vec<u8>, format: Format, event: &str, args: &EncodedArgs) -> Result<(), CodecError> {
    match format {
        Format::Msgpack => {
            let _ = rmp::encode::write_array_len(out, args.count.saturating_add(1));
            mp_str(out, event);
            out.extend_from_slice(&args.bytes);
        }
        Format::Json => {
            out.push(b'[');
            json_str(out, event);
            let mut refuse = |_: &[u8], _: &mut Vec<u8>| {
                Err(super::args::ArgError("binary values need the MessagePack form".into()))
            };
            msgpack_to_json_list(&args.bytes, out, &mut refuse).map_err(|(i, e)| CodecError::Invalid {
                field: format!("args[{i}]"),
                description: e.0,
            })?;
            out.push(b']');
        }
    }
    Ok(())
}

/// Writes `opts` `{rooms, except, flags}` (in `order`). `flags` holds only
/// the set flags: `volatile` only when true, since the adapters treat any
/// `volatile` key, even `false`, as volatile (no connection-state-recovery
/// offset).
fn opts(out: &mut Vec<u8>, format: Format, order: OptsOrder, rooms: &[String], except: &[String], flags: Flags) {
    match format {
        Format::Msgpack => {
            out.push(0x83);
            let flags_part = |out: &mut Vec<u8>| mp_flags(out, flags);
            mp_str(out, "rooms");
            mp_str_array(out, rooms);
            if order == OptsOrder::RoomsFlagsExcept {
                flags_part(out);
            }
            mp_str(out, "except");
            mp_str_array(out, except);
            if order == OptsOrder::RoomsExceptFlags {
                flags_part(out);
            }
        }
        Format::Json => {
            let flags_part = |out: &mut Vec<u8>| json_flags(out, flags);
            out.extend_from_slice(br#"{"rooms":"#);
            json_str_array(out, rooms);
            out.push(b',');
            if order == OptsOrder::RoomsFlagsExcept {
                flags_part(out);
                out.push(b',');
            }
            out.extend_from_slice(br#""except":"#);
            json_str_array(out, except);
            if order == OptsOrder::RoomsExceptFlags {
                out.push(b',');
                flags_part(out);
            }
            out.push(b'}');
        }
    }
}

/// A key of a map in `format` (JSON: with its leading comma when not first).
fn key(out: &mut Vec<u8>, format: Format, name: &str, first: bool) {
    match format {
        Format::Msgpack => mp_str(out, name),
        Format::Json => {
            if !first {
                out.push(b',');
            }
            json_str(out, name);
            out.push(b':');
        }
    }
}

fn open(out: &mut Vec<u8>, format: Format, entries: u8) {
    match format {
        Format::Msgpack => out.push(0x80 | entries),
        Format::Json => out.push(b'{'),
    }
}

fn close(out: &mut Vec<u8>, format: Format) {
    if format == Format::Json {
        out.push(b'}');
    }
}

/// BROADCAST `data`: `{packet: {type: 2, data: [event, ...args], nsp}, opts}`.
pub fn broadcast_data(out: &mut Vec<u8>, format: Format, order: OptsOrder, e: &Event<'_>) -> Result<(), CodecError> {
    out.reserve(96 + e.nsp.len() + e.event.len() + e.args.bytes.len() * 2);
    open(out, format, 2);
    key(out, format, "packet", true);
    open(out, format, 3);
    key(out, format, "type", true);
    out.push(if format == Format::Json {
        b'0' + PACKET_TYPE_EVENT
    } else {
        PACKET_TYPE_EVENT
    });
    key(out, format, "data", false);
    event_array(out, format, e.event, e.args)?;
    key(out, format, "nsp", false);
    match format {
        Format::Msgpack => mp_str(out, e.nsp),
        Format::Json => json_str(out, e.nsp),
    }
    close(out, format);
    key(out, format, "opts", false);
    opts(out, format, order, e.rooms, e.except, e.flags);
    close(out, format);
    Ok(())
}

/// SOCKETS_JOIN / SOCKETS_LEAVE `data`: `{opts, rooms}` (always JSON: only
/// strings).
pub fn rooms_data(out: &mut Vec<u8>, selector: Selector<'_>, rooms: &[String]) {
    out.extend_from_slice(br#"{"opts":"#);
    opts(
        out,
        Format::Json,
        OptsOrder::RoomsExceptFlags,
        selector.rooms,
        selector.except,
        Flags::default(),
    );
    out.extend_from_slice(br#","rooms":"#);
    json_str_array(out, rooms);
    out.push(b'}');
}

/// DISCONNECT_SOCKETS `data`: `{opts, close}` (always JSON).
pub fn disconnect_data(out: &mut Vec<u8>, selector: Selector<'_>, close: bool) {
    out.extend_from_slice(br#"{"opts":"#);
    opts(
        out,
        Format::Json,
        OptsOrder::RoomsExceptFlags,
        selector.rooms,
        selector.except,
        Flags::default(),
    );
    out.extend_from_slice(if close {
        br#","close":true}"#
    } else {
        br#","close":false}"#
    });
}

/// SERVER_SIDE_EMIT `data`: `{packet: [event, ...args]}` (no `requestId`:
/// no acknowledgement is awaited).
pub fn server_side_emit_data(
    out: &mut Vec<u8>,
    format: Format,
    event: &str,
    args: &EncodedArgs,
) -> Result<(), CodecError> {
    open(out, format, 1);
    key(out, format, "packet", true);
    event_array(out, format, event, args)?;
    close(out, format);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args_of(values: &[&[u8]], binary: bool) -> EncodedArgs {
        EncodedArgs {
            count: u32::try_from(values.len()).unwrap(),
            bytes: values.concat(),
            shape: super::super::Shape {
                binary,
                timestamp: false,
            },
        }
    }

    /// An independent MessagePack decoder's view of a value, as JSON.
    pub(crate) fn to_json(v: rmpv::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            rmpv::Value::Nil => J::Null,
            rmpv::Value::Boolean(b) => J::Bool(b),
            rmpv::Value::Integer(i) => i
                .as_i64()
                .map_or_else(|| serde_json::json!(i.as_u64()), |i| serde_json::json!(i)),
            rmpv::Value::F64(f) => serde_json::json!(f),
            rmpv::Value::String(s) => J::String(s.into_str().unwrap()),
            rmpv::Value::Binary(b) => serde_json::json!({ "$binary": hex::encode(b) }),
            rmpv::Value::Array(a) => J::Array(a.into_iter().map(to_json).collect()),
            rmpv::Value::Map(m) => J::Object(
                m.into_iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_owned(), to_json(v)))
                    .collect(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn flags_are_written_only_when_set() {
        let mut out = Vec::new();
        let f = Flags {
            volatile: true,
            compress: Some(false),
        };
        opts(&mut out, Format::Json, OptsOrder::RoomsExceptFlags, &[], &[], f);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"rooms":[],"except":[],"flags":{"volatile":true,"compress":false}}"#
        );
        let mut out = Vec::new();
        let f = Flags {
            volatile: false,
            compress: Some(true),
        };
        opts(
            &mut out,
            Format::Json,
            OptsOrder::RoomsFlagsExcept,
            &["a".into()],
            &[],
            f,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"rooms":["a"],"flags":{"compress":true},"except":[]}"#
        );
    }

    #[test]
    fn json_and_msgpack_bodies_decode_to_the_same_value() {
        let args = args_of(&[b"\xa5hello", b"\x81\xa1k\x92\x01\xc3"], false);
        let rooms = vec!["r1".to_owned()];
        let except = vec!["x".to_owned()];
        let e = Event {
            nsp: "/ns",
            rooms: &rooms,
            except: &except,
            event: "ev",
            args: &args,
            flags: Flags {
                volatile: true,
                compress: None,
            },
        };
        let mut json = Vec::new();
        broadcast_data(&mut json, Format::Json, OptsOrder::RoomsExceptFlags, &e).unwrap();
        let mut mp = Vec::new();
        broadcast_data(&mut mp, Format::Msgpack, OptsOrder::RoomsExceptFlags, &e).unwrap();
        let from_json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let from_mp = to_json(rmpv::decode::read_value(&mut mp.as_slice()).unwrap());
        assert_eq!(from_json, from_mp);
        assert_eq!(
            from_json,
            serde_json::json!({"packet": {"type": 2, "data": ["ev", "hello", {"k": [1, true]}], "nsp": "/ns"},
                "opts": {"rooms": ["r1"], "except": ["x"], "flags": {"volatile": true}}})
        );
    }

    #[test]
    fn a_binary_argument_has_no_json_form() {
        let args = args_of(&[b"\xc4\x01\x00"], true);
        assert_eq!(Format::for_args(&args), Format::Msgpack);
        let mut out = Vec::new();
        let err = server_side_emit_data(&mut out, Format::Json, "e", &args).unwrap_err();
        assert!(matches!(err, CodecError::Invalid { field, .. } if field == "args[0]"));
    }
}
