//! The `socketio` dialect: `@socket.io/redis-adapter` classic pub/sub
//! (socket.io-redis ≥ 6.1 / `@socket.io/redis-adapter` 7–8, socket.io 4).
//!
//! Event packets are the reference emitter's MessagePack array
//! `["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}]`
//! published on `{key}#{nsp}#`, or on `{key}#{nsp}#{room}#` when exactly one
//! room is targeted. Socket operations are JSON requests on
//! `{key}-request#{nsp}#` (docs/protocol.md §2.5).
//!
//! With the adapter option `parser: { encode: JSON.stringify, decode:
//! JSON.parse }` ([`Parser::Json`]) the same array goes out as the JSON text
//! `JSON.stringify` writes, byte for byte as the emitter with that parser
//! publishes it; arguments JSON cannot carry are refused.

use serde::Serialize;

use super::{
    CodecError, Command, Dialect, EMITTER_UID, EncodedArgs, Event, Message, Parser, Selector,
    args::{ArgError, msgpack_to_js_json_list, msgpack_to_json_list},
    write::{json_flags, json_str, json_str_array, mp_array, mp_flags, mp_str, mp_str_array},
};

/// Socket.IO packet type `EVENT`. Socket.IO ≥ 3 servers detect binary
/// themselves; `BINARY_EVENT` (5) would make every client drop the packet.
const PACKET_TYPE_EVENT: u8 = 2;

/// Request types of the classic adapter (`RequestType` in its source).
mod request_type {
    pub const REMOTE_JOIN: u8 = 2;
    pub const REMOTE_LEAVE: u8 = 3;
    pub const REMOTE_DISCONNECT: u8 = 4;
    pub const SERVER_SIDE_EMIT: u8 = 6;
}

/// The `socketio` dialect for one adapter key.
#[derive(Debug, Clone)]
pub struct SocketIo {
    broadcast_prefix: String,
    request_prefix: String,
    parser: Parser,
}

impl SocketIo {
    /// The dialect for the adapter key (the adapter's `key` option,
    /// `socket.io` by default) and the default (MessagePack) parser;
    /// channel prefixes are built once here.
    pub fn new(key: &str) -> Self {
        Self::with_parser(key, Parser::Msgpack)
    }

    /// The dialect for the adapter key and the adapter's `parser` option.
    pub fn with_parser(key: &str, parser: Parser) -> Self {
        Self {
            broadcast_prefix: format!("{key}#"),
            request_prefix: format!("{key}-request#"),
            parser,
        }
    }

    /// The channel an event packet goes to: the room channel when exactly
    /// one room is targeted, the namespace channel otherwise. The room
    /// channel is only a pre-filter for the servers: the payload's `rooms`
    /// decides who receives it.
    pub fn event_channel(&self, nsp: &str, rooms: &[String]) -> Vec<u8> {
        let room_len = rooms.first().map_or(0, |r| r.len() + 1);
        let mut ch = Vec::with_capacity(self.broadcast_prefix.len() + nsp.len() + 1 + room_len);
        ch.extend_from_slice(self.broadcast_prefix.as_bytes());
        ch.extend_from_slice(nsp.as_bytes());
        ch.push(b'#');
        if let [room] = rooms {
            ch.extend_from_slice(room.as_bytes());
            ch.push(b'#');
        }
        ch
    }

    /// The request channel of a namespace (`{key}-request#{nsp}#`).
    pub fn request_channel(&self, nsp: &str) -> Vec<u8> {
        let mut ch = Vec::with_capacity(self.request_prefix.len() + nsp.len() + 1);
        ch.extend_from_slice(self.request_prefix.as_bytes());
        ch.extend_from_slice(nsp.as_bytes());
        ch.push(b'#');
        ch
    }

    fn request(&self, nsp: &str, payload: Vec<u8>) -> Command {
        Command::Publish {
            channel: self.request_channel(nsp),
            payload,
        }
    }
}

/// The exact number of bytes [`encode_event`] appends, give or take a few
/// header bytes (sizes the buffer once).
fn size_hint(e: &Event<'_>) -> usize {
    let strs = |v: &[String]| v.iter().map(|s| s.len() + 5).sum::<usize>();
    64 + e.nsp.len() + e.event.len() + e.args.bytes.len() + strs(e.rooms) + strs(e.except)
}

/// Appends the MessagePack event packet, byte-identical to
/// `@socket.io/redis-emitter` 5.x, to `out`.
pub fn encode_event(e: &Event<'_>, out: &mut Vec<u8>) {
    encode_event_with_type(e, PACKET_TYPE_EVENT, out);
}

/// [`encode_event`] with another packet type (a positive fixint): socket.io
/// 2 servers need `BINARY_EVENT` (5) for binary arguments (`socketio-v2`).
pub fn encode_event_with_type(e: &Event<'_>, packet_type: u8, out: &mut Vec<u8>) {
    out.reserve(size_hint(e));
    out.push(0x93);
    mp_str(out, EMITTER_UID);
    // packet: {type, data, nsp}
    out.push(0x83);
    mp_str(out, "type");
    out.push(packet_type);
    mp_str(out, "data");
    mp_array(out, e.args.count.saturating_add(1));
    mp_str(out, e.event);
    out.extend_from_slice(&e.args.bytes);
    mp_str(out, "nsp");
    mp_str(out, e.nsp);
    // opts: {rooms, flags, except}
    out.push(0x83);
    mp_str(out, "rooms");
    mp_str_array(out, e.rooms);
    mp_flags(out, e.flags);
    mp_str(out, "except");
    mp_str_array(out, e.except);
}

/// Appends the event packet as `JSON.stringify([uid, packet, opts])` writes
/// it (the emitter with `parser: JSON`): the same keys in the same order as
/// [`encode_event`]. Fails with the index of an argument JSON cannot carry.
pub fn encode_event_json(e: &Event<'_>, out: &mut Vec<u8>) -> Result<(), (usize, ArgError)> {
    out.reserve(size_hint(e) + e.args.bytes.len() / 2);
    out.extend_from_slice(b"[");
    json_str(out, EMITTER_UID);
    out.extend_from_slice(br#",{"type":"#);
    out.extend_from_slice(PACKET_TYPE_EVENT.to_string().as_bytes());
    out.extend_from_slice(br#","data":["#);
    json_str(out, e.event);
    msgpack_to_js_json_list(&e.args.bytes, out)?;
    out.extend_from_slice(br#"],"nsp":"#);
    json_str(out, e.nsp);
    out.extend_from_slice(br#"},{"rooms":"#);
    json_str_array(out, e.rooms);
    out.push(b',');
    json_flags(out, e.flags);
    out.extend_from_slice(br#","except":"#);
    json_str_array(out, e.except);
    out.extend_from_slice(b"}]");
    Ok(())
}

#[derive(Serialize)]
struct RoomsRequest<'a> {
    #[serde(rename = "type")]
    kind: u8,
    opts: Selector<'a>,
    rooms: &'a [String],
}

#[derive(Serialize)]
struct DisconnectRequest<'a> {
    #[serde(rename = "type")]
    kind: u8,
    opts: Selector<'a>,
    close: bool,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Dialect for SocketIo {
    fn name(&self) -> &'static str {
        "socketio"
    }

    fn event(&self, e: &Event<'_>) -> Result<Message, CodecError> {
        let mut payload = Vec::new();
        match self.parser {
            Parser::Msgpack => encode_event(e, &mut payload),
            Parser::Json => encode_event_json(e, &mut payload).map_err(|(i, err)| CodecError::Invalid {
                field: format!("args[{i}]"),
                description: format!(
                    "{err}: cannot be sent to this target, whose adapter parser is `json` \
                     (JSON.stringify/JSON.parse)"
                ),
            })?,
        }
        Ok(Message::from(Command::Publish {
            channel: self.event_channel(e.nsp, e.rooms),
            payload,
        }))
    }

    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        Ok(self
            .request(
                nsp,
                to_json(&RoomsRequest {
                    kind: request_type::REMOTE_JOIN,
                    opts: selector,
                    rooms,
                }),
            )
            .into())
    }

    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        Ok(self
            .request(
                nsp,
                to_json(&RoomsRequest {
                    kind: request_type::REMOTE_LEAVE,
                    opts: selector,
                    rooms,
                }),
            )
            .into())
    }

    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError> {
        let req = DisconnectRequest {
            kind: request_type::REMOTE_DISCONNECT,
            opts: selector,
            close,
        };
        Ok(self.request(nsp, to_json(&req)).into())
    }

    /// `{"uid":"emitter","type":6,"data":[event, ...args]}` as JSON: the
    /// adapter parses requests with `JSON.parse` before 7.2, so binary and
    /// timestamps cannot be sent this way.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &EncodedArgs) -> Result<Message, CodecError> {
        let mut out = Vec::with_capacity(48 + event.len() + args.bytes.len() * 2);
        out.extend_from_slice(br#"{"uid":""#);
        out.extend_from_slice(EMITTER_UID.as_bytes());
        out.extend_from_slice(br#"","type":"#);
        out.extend_from_slice(request_type::SERVER_SIDE_EMIT.to_string().as_bytes());
        out.extend_from_slice(br#","data":["#);
        let _ = serde_json::to_writer(&mut out, event);
        let mut refuse = |_: &[u8], _: &mut Vec<u8>| {
            Err(ArgError(
                "binary values cannot be sent to servers: the socketio dialect's requests are JSON".into(),
            ))
        };
        msgpack_to_json_list(&args.bytes, &mut out, &mut refuse).map_err(|(i, e)| CodecError::Invalid {
            field: format!("args[{i}]"),
            description: e.0,
        })?;
        out.extend_from_slice(b"]}");
        Ok(self.request(nsp, out).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_match_the_adapter() {
        let d = SocketIo::new("socket.io");
        assert_eq!(d.event_channel("/", &[]), b"socket.io#/#");
        assert_eq!(d.event_channel("/", &["r".into()]), b"socket.io#/#r#");
        assert_eq!(d.event_channel("/", &["a".into(), "b".into()]), b"socket.io#/#");
        assert_eq!(d.request_channel("/admin"), b"socket.io-request#/admin#");
    }
}
