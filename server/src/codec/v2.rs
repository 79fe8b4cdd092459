//! The `socketio-v2` dialect: socket.io 2.x servers with socket.io-redis
//! 5.x (socket.io-adapter 1.x, socket.io-parser 3.x, notepack.io 2.2).
//!
//! Events are the `socketio` dialect's MessagePack array on the same
//! channels (`{key}#{nsp}#`, or `{key}#{nsp}#{room}#` for exactly one room),
//! with the differences socket.io 2 needs (docs/protocol.md §3):
//! - packet type 5 (`BINARY_EVENT`) when any argument holds binary:
//!   socket.io-parser 3 only encodes attachments for type 5, and JSON-encodes
//!   a Buffer in a type-2 packet;
//! - `except` holds socket ids (socket.io-adapter 1.x compares socket ids),
//!   so a room name there would silently exclude nobody and is refused;
//! - notepack.io 2.2 decodes the timestamp extension as `[-1, Buffer]`, so
//!   timestamps are refused.
//!
//! Socket operations are socket.io-redis 5's requests on
//! `{key}-request#{nsp}#`, one socket (and one room) each:
//! `{"requestid":R,"type":3|4,"sid":S,"room":ROOM}` (remoteJoin /
//! remoteLeave) and `{"requestid":R,"type":6,"sid":S,"close":C}`
//! (remoteDisconnect). The server holding the socket applies it and
//! publishes `{"requestid":R}` on the response channel; every server drops
//! responses to request ids it did not issue, so they are fire-and-forget.
//! The request id is `"emitter"`, 7 characters, which can never equal the
//! 6-character ids the adapter issues. socket.io 2 has no server-side emit;
//! `ServerSideEmit` is socket.io-redis 5's `customRequest` (type 5), which
//! each server hands to its adapter's `customHook(data, cb)` with
//! `data = [event, ...args]`.

use super::{
    CodecError, Command, Dialect, EncodedArgs, Event, MAX_MESSAGES, Message, Selector,
    args::{ArgError, msgpack_to_json_list},
    socketio::{SocketIo, encode_event_with_type},
    write,
};

/// socket.io-parser 3 packet types.
const PACKET_TYPE_EVENT: u8 = 2;
const PACKET_TYPE_BINARY_EVENT: u8 = 5;

/// socket.io-redis 5 request types (`requestTypes` in its `index.js`).
mod request_type {
    pub const REMOTE_JOIN: u8 = 3;
    pub const REMOTE_LEAVE: u8 = 4;
    pub const CUSTOM_REQUEST: u8 = 5;
    pub const REMOTE_DISCONNECT: u8 = 6;
}

/// The `requestid` of every request: the adapter's own ids are `uid2(6)`.
const REQUEST_ID: &str = "emitter";

/// engine.io 3 ids (`base64id.generateId()`): 15 bytes in base64url.
const ENGINE_ID_LEN: usize = 20;

/// Whether `s` has the shape of a socket.io 2 socket id in namespace
/// `nsp`: the engine.io id in `/`, `{nsp}#{engine.io id}` elsewhere.
pub fn looks_like_sid(nsp: &str, s: &str) -> bool {
    let id = if nsp == "/" {
        s
    } else {
        match s.strip_prefix(nsp).and_then(|rest| rest.strip_prefix('#')) {
            Some(id) => id,
            None => return false,
        }
    };
    id.len() == ENGINE_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn sid_shape(nsp: &str) -> String {
    if nsp == "/" {
        "20 characters of base64url".to_owned()
    } else {
        format!("{nsp:?} + \"#\" + 20 characters of base64url")
    }
}

/// The `socketio-v2` dialect for one adapter key.
#[derive(Debug, Clone)]
pub struct SocketIoV2 {
    channels: SocketIo,
}

impl SocketIoV2 {
    /// The dialect for the adapter key (socket.io-redis's `key` option).
    pub fn new(key: &str) -> Self {
        Self {
            channels: SocketIo::new(key),
        }
    }

    fn request(&self, nsp: &str, payload: Vec<u8>) -> Command {
        Command::Publish {
            channel: self.channels.request_channel(nsp),
            payload,
        }
    }

    /// `{"requestid":"emitter","type":T,"sid":S,` + `tail` + `}`.
    fn socket_request(&self, nsp: &str, kind: u8, sid: &str, tail: &[u8]) -> Command {
        let mut out = Vec::with_capacity(64 + sid.len() + tail.len());
        out.extend_from_slice(b"{\"requestid\":\"");
        out.extend_from_slice(REQUEST_ID.as_bytes());
        out.extend_from_slice(b"\",\"type\":");
        out.extend_from_slice(kind.to_string().as_bytes());
        out.extend_from_slice(b",\"sid\":");
        write::json_str(&mut out, sid);
        out.push(b',');
        out.extend_from_slice(tail);
        out.push(b'}');
        self.request(nsp, out)
    }

    fn room_requests(&self, nsp: &str, kind: u8, sids: &[String], rooms: &[String]) -> Message {
        let parts: Vec<Command> = sids
            .iter()
            .flat_map(|sid| rooms.iter().map(move |room| (sid, room)))
            .map(|(sid, room)| {
                let mut tail = b"\"room\":".to_vec();
                write::json_str(&mut tail, room);
                self.socket_request(nsp, kind, sid, &tail)
            })
            .collect();
        parts.into_iter().collect()
    }
}

fn invalid(field: &str, description: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        field: field.to_owned(),
        description: description.into(),
    }
}

/// The selector as socket ids, or why socket.io-redis 5 cannot address it.
fn socket_ids<'a>(nsp: &str, selector: &Selector<'a>, operation: &str) -> Result<&'a [String], CodecError> {
    if !selector.except.is_empty() {
        return Err(invalid(
            "except_rooms",
            format!(
                "socket.io-redis 5's {operation} names one socket by id; except_rooms cannot be applied: \
                 list only the socket ids to select in rooms"
            ),
        ));
    }
    if selector.rooms.is_empty() {
        return Err(invalid(
            "rooms",
            format!(
                "socket.io-redis 5's {operation} names one socket by id and cannot select every socket \
                 of a namespace: list the socket ids in rooms"
            ),
        ));
    }
    if let Some(room) = selector.rooms.iter().find(|r| !looks_like_sid(nsp, r)) {
        return Err(invalid(
            "rooms",
            format!(
                "{room:?} is not a socket.io 2 socket id of namespace {nsp:?} ({}): socket.io-redis 5's \
                 {operation} names sockets by id, not by room",
                sid_shape(nsp)
            ),
        ));
    }
    Ok(selector.rooms)
}

fn check_count(field: &str, sockets: usize, rooms: usize) -> Result<(), CodecError> {
    let n = sockets.saturating_mul(rooms);
    if n > MAX_MESSAGES {
        return Err(invalid(
            field,
            format!(
                "{sockets} sockets × {rooms} rooms = {n} requests, over the {MAX_MESSAGES} one call may \
                 publish on socket.io-redis 5 (one request per socket and room)"
            ),
        ));
    }
    Ok(())
}

impl Dialect for SocketIoV2 {
    fn name(&self) -> &'static str {
        "socketio-v2"
    }

    fn event(&self, e: &Event<'_>) -> Result<Message, CodecError> {
        if let Some(room) = e.except.iter().find(|r| !looks_like_sid(e.nsp, r)) {
            return Err(invalid(
                "except_rooms",
                format!(
                    "{room:?} is not a socket.io 2 socket id of namespace {:?} ({}): socket.io 2 skips \
                     sockets by id only, a room name would exclude nobody",
                    e.nsp,
                    sid_shape(e.nsp)
                ),
            ));
        }
        if e.args.shape.timestamp {
            // Find which argument holds it: the JSON transcoder refuses
            // timestamps and nothing else when binary is let through.
            let mut allow_binary = |_: &[u8], _: &mut Vec<u8>| Ok::<(), ArgError>(());
            let index = msgpack_to_json_list(&e.args.bytes, &mut Vec::new(), &mut allow_binary)
                .err()
                .map_or(0, |(i, _)| i);
            return Err(invalid(
                &format!("args[{index}]"),
                "socket.io-redis 5 (notepack.io 2) decodes MessagePack timestamps as [-1, <Buffer>]: \
                 send dates as strings or numbers",
            ));
        }
        let packet_type = if e.args.shape.binary {
            PACKET_TYPE_BINARY_EVENT
        } else {
            PACKET_TYPE_EVENT
        };
        let mut payload = Vec::new();
        encode_event_with_type(e, packet_type, &mut payload);
        Ok(Message::from(Command::Publish {
            channel: self.channels.event_channel(e.nsp, e.rooms),
            payload,
        }))
    }

    /// One remoteJoin per socket id and room.
    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let sids = socket_ids(nsp, &selector, "remoteJoin")?;
        check_count("join_rooms", sids.len(), rooms.len())?;
        Ok(self.room_requests(nsp, request_type::REMOTE_JOIN, sids, rooms))
    }

    /// One remoteLeave per socket id and room.
    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let sids = socket_ids(nsp, &selector, "remoteLeave")?;
        check_count("leave_rooms", sids.len(), rooms.len())?;
        Ok(self.room_requests(nsp, request_type::REMOTE_LEAVE, sids, rooms))
    }

    /// One remoteDisconnect per socket id.
    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError> {
        let sids = socket_ids(nsp, &selector, "remoteDisconnect")?;
        check_count("rooms", sids.len(), 1)?;
        let tail: &[u8] = if close { b"\"close\":true" } else { b"\"close\":false" };
        let parts: Vec<Command> = sids
            .iter()
            .map(|sid| self.socket_request(nsp, request_type::REMOTE_DISCONNECT, sid, tail))
            .collect();
        Ok(parts.into_iter().collect::<Message>())
    }

    /// `{"requestid":"emitter","type":5,"data":[event, ...args]}`: a
    /// customRequest, handed to each server's `adapter.customHook`. The
    /// adapter parses requests with `JSON.parse`, so binary is refused.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &EncodedArgs) -> Result<Message, CodecError> {
        let mut out = Vec::with_capacity(48 + event.len() + args.bytes.len() * 2);
        out.extend_from_slice(b"{\"requestid\":\"");
        out.extend_from_slice(REQUEST_ID.as_bytes());
        out.extend_from_slice(b"\",\"type\":");
        out.extend_from_slice(request_type::CUSTOM_REQUEST.to_string().as_bytes());
        out.extend_from_slice(b",\"data\":[");
        write::json_str(&mut out, event);
        let mut refuse = |_: &[u8], _: &mut Vec<u8>| {
            Err(ArgError(
                "binary values cannot be sent to servers: socket.io-redis 5's requests are JSON".into(),
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
    fn socket_ids_carry_the_namespace() {
        assert!(looks_like_sid("/", "Ab-_0123456789abcdef"));
        assert!(!looks_like_sid("/", "/admin#Ab-_0123456789abcdef"));
        assert!(looks_like_sid("/admin", "/admin#Ab-_0123456789abcdef"));
        assert!(!looks_like_sid("/admin", "Ab-_0123456789abcdef"));
        assert!(!looks_like_sid("/admin", "/other#Ab-_0123456789abcdef"));
        assert!(!looks_like_sid("/", "room1"));
    }

    #[test]
    fn requests_have_the_socket_io_redis_5_layout() {
        let d = SocketIoV2::new("socket.io");
        let sids = ["Ab-_0123456789abcdef".to_owned()];
        let m = d
            .sockets_join(
                "/",
                Selector {
                    rooms: &sids,
                    except: &[],
                },
                &["r1".into(), "r2".into()],
            )
            .unwrap();
        let parts: Vec<String> = m
            .commands()
            .iter()
            .map(|p| String::from_utf8(p.payload().to_vec()).unwrap())
            .collect();
        assert_eq!(
            parts,
            [
                r#"{"requestid":"emitter","type":3,"sid":"Ab-_0123456789abcdef","room":"r1"}"#,
                r#"{"requestid":"emitter","type":3,"sid":"Ab-_0123456789abcdef","room":"r2"}"#
            ]
        );
        assert_eq!(m.channel(), b"socket.io-request#/#");
        let m = d
            .disconnect_sockets(
                "/",
                Selector {
                    rooms: &sids,
                    except: &[],
                },
                true,
            )
            .unwrap();
        assert_eq!(
            m.payload(),
            br#"{"requestid":"emitter","type":6,"sid":"Ab-_0123456789abcdef","close":true}"#
        );
    }
}
