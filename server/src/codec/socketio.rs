//! The `socketio` dialect: `@socket.io/redis-adapter` classic pub/sub
//! (socket.io-redis ≥ 6.1 / `@socket.io/redis-adapter` 7–8, socket.io 4).
//!
//! Event packets are the reference emitter's MessagePack array
//! `["emitter", {type: 2, data: [event, ...args], nsp}, {rooms, flags, except}]`
//! published on `{key}#{nsp}#`, or on `{key}#{nsp}#{room}#` when exactly one
//! room is targeted. Socket operations are JSON requests on
//! `{key}-request#{nsp}#` (wire-protocols.md §1.5, §2.4).

use serde::Serialize;

use super::EMITTER_UID;

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

/// The delivery flags written into `opts.flags`; only set keys are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The `volatile` flag; written only when true.
    pub volatile: bool,
    /// The `compress` flag; written only when set.
    pub compress: Option<bool>,
}

/// Channel names of one target, with the key-dependent prefixes built once.
#[derive(Debug, Clone)]
pub struct Channels {
    broadcast_prefix: String,
    request_prefix: String,
}

impl Channels {
    /// Channel names for the adapter key (the adapter's `key` option,
    /// `socket.io` by default).
    pub fn new(key: &str) -> Self {
        Self {
            broadcast_prefix: format!("{key}#"),
            request_prefix: format!("{key}-request#"),
        }
    }

    /// The channel an event packet goes to: the room channel when exactly
    /// one room is targeted, the namespace channel otherwise. The room
    /// channel is only a pre-filter for the servers: the payload's `rooms`
    /// decides who receives it.
    pub fn event_channel(&self, nsp: &str, rooms: &[String]) -> Vec<u8> {
        let mut ch = Vec::with_capacity(self.broadcast_prefix.len() + nsp.len() + 2 + 32);
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
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_str(out, s);
}

fn write_str_array(out: &mut Vec<u8>, items: &[String]) {
    // Lengths are bounded by the validated limits, far below u32::MAX.
    let _ = rmp::encode::write_array_len(out, u32::try_from(items.len()).unwrap_or(u32::MAX));
    for s in items {
        write_str(out, s);
    }
}

/// An event packet ready to be encoded. `args` holds `arg_count`
/// already-validated MessagePack values, back to back.
#[derive(Debug, Clone, Copy)]
pub struct EventPacket<'a> {
    /// The namespace, with its leading `/`.
    pub nsp: &'a str,
    /// Rooms to reach (empty: the whole namespace), deduplicated.
    pub rooms: &'a [String],
    /// Rooms to skip, deduplicated.
    pub except: &'a [String],
    /// The event name.
    pub event: &'a str,
    /// How many values `args` holds.
    pub arg_count: u32,
    /// The encoded arguments.
    pub args: &'a [u8],
    /// Delivery flags.
    pub flags: Flags,
}

impl EventPacket<'_> {
    /// The exact number of bytes [`encode`](Self::encode) appends, give or
    /// take a few header bytes (used to size buffers and check limits early).
    pub fn size_hint(&self) -> usize {
        let strs = |v: &[String]| v.iter().map(|s| s.len() + 5).sum::<usize>();
        64 + self.nsp.len() + self.event.len() + self.args.len() + strs(self.rooms) + strs(self.except)
    }

    /// Appends the MessagePack packet, byte-identical to
    /// `@socket.io/redis-emitter` 5.x, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.size_hint());
        out.push(0x93);
        write_str(out, EMITTER_UID);
        // packet: {type, data, nsp}
        out.push(0x83);
        write_str(out, "type");
        out.push(PACKET_TYPE_EVENT);
        write_str(out, "data");
        let _ = rmp::encode::write_array_len(out, self.arg_count.saturating_add(1));
        write_str(out, self.event);
        out.extend_from_slice(self.args);
        write_str(out, "nsp");
        write_str(out, self.nsp);
        // opts: {rooms, flags, except}
        out.push(0x83);
        write_str(out, "rooms");
        write_str_array(out, self.rooms);
        write_str(out, "flags");
        let flag_count = u8::from(self.flags.volatile) + u8::from(self.flags.compress.is_some());
        out.push(0x80 | flag_count);
        if self.flags.volatile {
            write_str(out, "volatile");
            out.push(0xc3);
        }
        if let Some(c) = self.flags.compress {
            write_str(out, "compress");
            out.push(if c { 0xc3 } else { 0xc2 });
        }
        write_str(out, "except");
        write_str_array(out, self.except);
    }
}

/// The socket selector of a request (`opts`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Selector<'a> {
    /// Sockets in at least one of these rooms (empty: all sockets).
    pub rooms: &'a [String],
    /// Minus sockets in any of these rooms.
    pub except: &'a [String],
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

/// `socketsJoin`: the selected sockets join `rooms`.
pub fn sockets_join(selector: Selector<'_>, rooms: &[String]) -> Vec<u8> {
    to_json(&RoomsRequest {
        kind: request_type::REMOTE_JOIN,
        opts: selector,
        rooms,
    })
}

/// `socketsLeave`: the selected sockets leave `rooms`.
pub fn sockets_leave(selector: Selector<'_>, rooms: &[String]) -> Vec<u8> {
    to_json(&RoomsRequest {
        kind: request_type::REMOTE_LEAVE,
        opts: selector,
        rooms,
    })
}

/// `disconnectSockets(close)`.
pub fn disconnect_sockets(selector: Selector<'_>, close: bool) -> Vec<u8> {
    to_json(&DisconnectRequest {
        kind: request_type::REMOTE_DISCONNECT,
        opts: selector,
        close,
    })
}

/// `serverSideEmit(event, ...args)`; `json_args` are already-encoded JSON
/// values.
pub fn server_side_emit(event: &str, json_args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + event.len() + json_args.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(br#"{"uid":""#);
    out.extend_from_slice(EMITTER_UID.as_bytes());
    out.extend_from_slice(br#"","type":"#);
    out.extend_from_slice(request_type::SERVER_SIDE_EMIT.to_string().as_bytes());
    out.extend_from_slice(br#","data":["#);
    let _ = serde_json::to_writer(&mut out, event);
    for arg in json_args {
        out.push(b',');
        out.extend_from_slice(arg);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_match_the_adapter() {
        let ch = Channels::new("socket.io");
        assert_eq!(ch.event_channel("/", &[]), b"socket.io#/#");
        assert_eq!(ch.event_channel("/", &["r".into()]), b"socket.io#/#r#");
        assert_eq!(ch.event_channel("/", &["a".into(), "b".into()]), b"socket.io#/#");
        assert_eq!(ch.request_channel("/admin"), b"socket.io-request#/admin#");
    }
}
