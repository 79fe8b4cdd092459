//! The `python-socketio` dialect: python-socketio's `RedisManager` /
//! `AsyncRedisManager` (and Flask-SocketIO, which uses them), 5.x.
//!
//! Every operation is one JSON object published on the manager's channel
//! (`socketio` by default, `flask-socketio` for Flask-SocketIO), with the
//! keys in the order python-socketio's `PubSubManager` writes them and
//! formatted as its `json.dumps` does (`", "` / `": "` separators, non-ASCII
//! escaped), so a message is byte-identical to one python-socketio 5.18
//! publishes except for `host_id` (docs/protocol.md §6):
//!
//! ```text
//! {"method": "emit", "event": E, "data": D, "binary": B, "namespace": N,
//!  "room": R, "skip_sid": S, "callback": null, "host_id": H}
//! {"method": "enter_room" | "leave_room", "sid": S, "room": R, "namespace": N, "host_id": H}
//! {"method": "disconnect", "sid": S, "namespace": N, "host_id": H}
//! {"method": "close_room", "room": R, "namespace": N, "host_id": H}
//! ```
//!
//! What python-socketio's receivers do with them decides what can be sent:
//! - `skip_sid` is compared with socket ids only, so `except_rooms` must be
//!   socket ids: anything else would silently exclude nobody and is refused.
//! - `enter_room`, `leave_room` and `disconnect` name one socket each: socket
//!   operations work on selectors made of socket ids (one message per socket
//!   and room). Every socket leaving a room is `close_room`.
//! - There is no server-to-server event.

use std::{fmt::Write as _, sync::OnceLock};

use serde::Deserialize;

use super::{
    CodecError, Command, Dialect, EncodedArgs, Event, MAX_MESSAGES, Message, Selector, args::msgpack_to_json_list,
    write,
};

/// python-socketio's default channel (`RedisManager(channel='socketio')`).
pub const DEFAULT_CHANNEL: &str = "socketio";

/// The length of a python-socketio socket id: python-engineio's
/// `generate_id()` is 15 random bytes in base64url, 20 characters.
const SID_LEN: usize = 20;

/// How `data` carries the event arguments; python-socketio's receivers
/// changed its meaning in 5.15.1 (docs/protocol.md §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataShape {
    /// `data` is the argument list, as python-socketio ≥ 5.15.1 reads it
    /// (and writes it since 5.14): `["a", 2]` is two arguments, `[[1, 2]]`
    /// one list argument, `[]` none.
    #[default]
    List,
    /// `data` is the single argument itself, which every python-socketio
    /// version reads the same way: `null` for no argument. Older servers
    /// read a list `data` as one list argument, so several arguments, a list
    /// argument or a null argument cannot be sent this way and are refused.
    Single,
}

/// The `python-socketio` dialect for one channel.
#[derive(Debug, Clone)]
pub struct PythonSocketIo {
    channel: Vec<u8>,
    data_shape: DataShape,
}

/// The `host_id` written into every message: fixed for the process, and
/// never equal to a server's (theirs are `uuid4().hex`, 32 hex digits;
/// ours has a non-hex prefix). Receivers skip only messages carrying their
/// own host_id.
pub fn host_id() -> &'static str {
    static HOST_ID: OnceLock<String> = OnceLock::new();
    HOST_ID.get_or_init(|| {
        use std::hash::{BuildHasher, RandomState};
        // RandomState is seeded from the OS's randomness.
        let n = RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now()));
        format!("emitgate-{n:016x}")
    })
}

/// Whether `s` has the shape of a python-socketio socket id (20 characters
/// of base64url).
pub fn looks_like_sid(s: &str) -> bool {
    s.len() == SID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PythonSocketIo {
    /// The dialect for the manager's `channel`, with arguments shaped as
    /// `data_shape` says.
    pub fn new(channel: &str, data_shape: DataShape) -> Self {
        Self {
            channel: channel.as_bytes().to_vec(),
            data_shape,
        }
    }

    /// The `emit` message, with `"callback": [token, namespace, ack_id]`
    /// when `callback` is set: the receiving servers then ask each client
    /// for an ack and publish each reply as a `callback` message carrying
    /// `token` as its `sid` and the gateway's `host_id`.
    pub fn emit_message(&self, e: &Event<'_>, callback: Option<(&str, u64)>) -> Result<Message, CodecError> {
        if let Some(room) = e.except.iter().find(|r| !looks_like_sid(r)) {
            return Err(invalid(
                "except_rooms",
                format!(
                    "{room:?} is not a python-socketio socket id (20 characters of base64url): \
                     python-socketio skips sockets by id only (skip_sid), a room name would exclude nobody"
                ),
            ));
        }
        let (data, binary) = self.data(e.args)?;
        let mut out = Vec::with_capacity(160 + e.event.len() + data.len() + e.nsp.len());
        out.extend_from_slice(b"{\"method\":\"emit\",\"event\":");
        write::json_str(&mut out, e.event);
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(&data);
        out.extend_from_slice(if binary {
            b",\"binary\":true,\"namespace\":"
        } else {
            b",\"binary\":false,\"namespace\":"
        });
        write::json_str(&mut out, e.nsp);
        out.extend_from_slice(b",\"room\":");
        write_one_or_list(&mut out, e.rooms);
        out.extend_from_slice(b",\"skip_sid\":");
        write_one_or_list(&mut out, e.except);
        match callback {
            None => out.extend_from_slice(b",\"callback\":null,\"host_id\":"),
            Some((token, ack_id)) => {
                out.extend_from_slice(b",\"callback\":[");
                write::json_str(&mut out, token);
                out.push(b',');
                write::json_str(&mut out, e.nsp);
                out.push(b',');
                out.extend_from_slice(ack_id.to_string().as_bytes());
                out.extend_from_slice(b"],\"host_id\":");
            }
        }
        write::json_str(&mut out, host_id());
        out.push(b'}');
        Ok(self.publish(&out).into())
    }

    fn publish(&self, compact_json: &[u8]) -> Command {
        Command::Publish {
            channel: self.channel.clone(),
            payload: python_style(compact_json),
        }
    }

    /// `{"method": M, "sid": S, "room": R, "namespace": N, "host_id": H}`.
    fn room_op(&self, method: &str, sid: &str, room: &str, nsp: &str) -> Command {
        let mut out = Vec::with_capacity(96 + sid.len() + room.len() + nsp.len());
        out.extend_from_slice(b"{\"method\":");
        write::json_str(&mut out, method);
        out.extend_from_slice(b",\"sid\":");
        write::json_str(&mut out, sid);
        out.extend_from_slice(b",\"room\":");
        write::json_str(&mut out, room);
        finish(&mut out, nsp);
        self.publish(&out)
    }

    fn close_room(&self, room: &str, nsp: &str) -> Command {
        let mut out = Vec::with_capacity(80 + room.len() + nsp.len());
        out.extend_from_slice(b"{\"method\":\"close_room\",\"room\":");
        write::json_str(&mut out, room);
        finish(&mut out, nsp);
        self.publish(&out)
    }

    fn disconnect(&self, sid: &str, nsp: &str) -> Command {
        let mut out = Vec::with_capacity(80 + sid.len() + nsp.len());
        out.extend_from_slice(b"{\"method\":\"disconnect\",\"sid\":");
        write::json_str(&mut out, sid);
        finish(&mut out, nsp);
        self.publish(&out)
    }

    /// The `data` value and whether it holds binary attachments.
    fn data(&self, args: &EncodedArgs) -> Result<(Vec<u8>, bool), CodecError> {
        let mut attachments: Vec<Vec<u8>> = Vec::new();
        let mut placeholder = |bytes: &[u8], out: &mut Vec<u8>| {
            // Packet.deconstruct_binary numbers attachments in traversal order.
            let _ = write!(Bytes(out), "{{\"_placeholder\":true,\"num\":{}}}", attachments.len());
            attachments.push(bytes.to_vec());
            Ok(())
        };
        let mut list = Vec::with_capacity(args.bytes.len() * 2 + 2);
        msgpack_to_json_list(&args.bytes, &mut list, &mut placeholder).map_err(|(i, e)| CodecError::Invalid {
            field: format!("args[{i}]"),
            description: e.0,
        })?;
        // Each value came with a leading comma.
        let values = list.get(1..).unwrap_or_default();
        let first = args.bytes.first().copied();
        let deconstructed = match self.data_shape {
            DataShape::List => {
                if args.count == 1 && first == Some(NIL) {
                    return Err(invalid(
                        "args[0]",
                        "python-socketio delivers a single null argument as no argument at all; send no arguments instead",
                    ));
                }
                let mut d = Vec::with_capacity(values.len() + 2);
                d.push(b'[');
                d.extend_from_slice(values);
                d.push(b']');
                d
            }
            DataShape::Single => match args.count {
                0 => b"null".to_vec(),
                1 if first == Some(NIL) => {
                    return Err(invalid(
                        "args[0]",
                        "python-socketio delivers a null argument as no argument at all; send no arguments instead",
                    ));
                }
                1 if first.is_some_and(is_array_marker) => {
                    return Err(invalid(
                        "args[0]",
                        "with data_shape = \"single\" a list argument would arrive as its items; \
                         servers on python-socketio >= 5.15.1 take data_shape = \"list\"",
                    ));
                }
                1 => values.to_vec(),
                n => {
                    return Err(invalid(
                        "args",
                        format!(
                            "{n} arguments: with data_shape = \"single\" (python-socketio < 5.15.1) an event \
                             carries at most one argument; servers on python-socketio >= 5.15.1 take \
                             data_shape = \"list\""
                        ),
                    ));
                }
            },
        };
        if attachments.is_empty() {
            return Ok((deconstructed, false));
        }
        // [deconstructed, base64(attachment 0), ...]
        let mut d =
            Vec::with_capacity(deconstructed.len() + attachments.iter().map(|a| a.len() * 4 / 3 + 8).sum::<usize>());
        d.push(b'[');
        d.extend_from_slice(&deconstructed);
        for a in &attachments {
            d.extend_from_slice(b",\"");
            base64(a, &mut d);
            d.push(b'"');
        }
        d.push(b']');
        Ok((d, true))
    }
}

const NIL: u8 = 0xc0;

fn is_array_marker(b: u8) -> bool {
    matches!(b, 0x90..=0x9f | 0xdc | 0xdd)
}

fn invalid(field: &str, description: impl Into<String>) -> CodecError {
    CodecError::Invalid {
        field: field.to_owned(),
        description: description.into(),
    }
}

/// `fmt::Write` over a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `null`, one JSON string, or a list of them: how python-socketio's
/// `room` and `skip_sid` hold one name or several.
fn write_one_or_list(out: &mut Vec<u8>, items: &[String]) {
    match items {
        [] => out.extend_from_slice(b"null"),
        [one] => write::json_str(out, one),
        many => {
            out.push(b'[');
            for (i, s) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write::json_str(out, s);
            }
            out.push(b']');
        }
    }
}

/// Ends a message: `,"namespace":N,"host_id":H}`.
fn finish(out: &mut Vec<u8>, nsp: &str) {
    out.extend_from_slice(b",\"namespace\":");
    write::json_str(out, nsp);
    out.extend_from_slice(b",\"host_id\":");
    write::json_str(out, host_id());
    out.push(b'}');
}

/// Standard base64 with padding, as Python's `base64.b64encode`.
fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// Reformats compact JSON text (no whitespace, as serde_json writes it) the
/// way Python's `json.dumps` writes it by default: `", "` and `": "`
/// separators, and every non-ASCII character (and DEL) escaped as `\uXXXX`
/// (UTF-16 units, lowercase hex). Numbers are left as they are (Python
/// spells some floats differently, e.g. `1e+300`; both parse to the same
/// value).
pub fn python_style(compact: &[u8]) -> Vec<u8> {
    // The input is built from Rust strings and serde_json output.
    let text = String::from_utf8_lossy(compact);
    let mut out = Vec::with_capacity(compact.len() + compact.len() / 4);
    let mut in_string = false;
    let mut escaped = false;
    let mut units = [0u16; 2];
    for ch in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            } else if !ch.is_ascii() || ch == '\x7f' {
                for u in ch.encode_utf16(&mut units) {
                    let _ = write!(Bytes(&mut out), "\\u{u:04x}");
                }
                continue;
            }
            out.push(ch as u8);
        } else {
            match ch {
                '"' => {
                    in_string = true;
                    out.push(b'"');
                }
                ',' => out.extend_from_slice(b", "),
                ':' => out.extend_from_slice(b": "),
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
    out
}

/// Refuses a selector python-socketio cannot address: it names sockets by
/// id only, one per message.
fn socket_ids<'a>(selector: &Selector<'a>, operation: &str) -> Result<&'a [String], CodecError> {
    if !selector.except.is_empty() {
        return Err(invalid(
            "except_rooms",
            format!(
                "python-socketio's {operation} names sockets by id; except_rooms cannot be applied: \
                 list only the socket ids to select in rooms"
            ),
        ));
    }
    if selector.rooms.is_empty() {
        return Err(invalid(
            "rooms",
            format!(
                "python-socketio's {operation} names sockets by id and cannot select every socket \
                 of a namespace: list the socket ids in rooms"
            ),
        ));
    }
    if let Some(room) = selector.rooms.iter().find(|r| !looks_like_sid(r)) {
        return Err(invalid(
            "rooms",
            format!(
                "{room:?} is not a python-socketio socket id (20 characters of base64url): \
                 python-socketio's {operation} names sockets by id, not by room"
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
                "{sockets} sockets × {rooms} rooms = {n} messages, over the {MAX_MESSAGES} one call may \
                 publish on python-socketio (one message per socket and room)"
            ),
        ));
    }
    Ok(())
}

impl Dialect for PythonSocketIo {
    fn name(&self) -> &'static str {
        "python-socketio"
    }

    /// python-socketio has no delivery flags: `volatile` (a permission to
    /// drop) and `compress` (a hint) are not written.
    fn event(&self, e: &Event<'_>) -> Result<Message, CodecError> {
        self.emit_message(e, None)
    }

    /// One `enter_room` per socket id and room.
    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let sids = socket_ids(&selector, "enter_room")?;
        check_count("join_rooms", sids.len(), rooms.len())?;
        let parts: Vec<Command> = sids
            .iter()
            .flat_map(|sid| rooms.iter().map(move |room| (sid, room)))
            .map(|(sid, room)| self.room_op("enter_room", sid, room, nsp))
            .collect();
        Ok(parts.into_iter().collect::<Message>())
    }

    /// `close_room` for each room when every socket in those rooms is
    /// selected (no selector, or the selector includes each room left);
    /// otherwise one `leave_room` per socket id and room.
    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let everyone_in_them = selector.except.is_empty()
            && rooms
                .iter()
                .all(|r| selector.rooms.is_empty() || selector.rooms.contains(r));
        if everyone_in_them {
            return Ok(rooms.iter().map(|r| self.close_room(r, nsp)).collect());
        }
        let sids = socket_ids(&selector, "leave_room")?;
        check_count("leave_rooms", sids.len(), rooms.len())?;
        let parts: Vec<Command> = sids
            .iter()
            .flat_map(|sid| rooms.iter().map(move |room| (sid, room)))
            .map(|(sid, room)| self.room_op("leave_room", sid, room, nsp))
            .collect();
        Ok(parts.into_iter().collect::<Message>())
    }

    /// One `disconnect` per socket id.
    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError> {
        let sids = socket_ids(&selector, "disconnect")?;
        if close {
            return Err(invalid(
                "close",
                "python-socketio disconnects a socket from its namespace only and cannot close the \
                 underlying connection: set close = false",
            ));
        }
        check_count("rooms", sids.len(), 1)?;
        Ok(sids.iter().map(|sid| self.disconnect(sid, nsp)).collect())
    }

    fn server_side_emit(&self, _nsp: &str, _event: &str, _args: &EncodedArgs) -> Result<Message, CodecError> {
        Err(CodecError::Unsupported(
            "python-socketio's message queue carries events to clients and room/disconnect operations, \
             not events between servers"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_style_matches_json_dumps() {
        assert_eq!(
            python_style(br#"{"a":[1,"x,y:z"],"b":{"c":null}}"#),
            br#"{"a": [1, "x,y:z"], "b": {"c": null}}"#
        );
        assert_eq!(
            String::from_utf8(python_style("\"部屋 🌸\\\"\u{7f}\\n\"".as_bytes())).unwrap(),
            r#""\u90e8\u5c4b \ud83c\udf38\"\u007f\n""#
        );
    }

    #[test]
    fn base64_pads_like_python() {
        for (input, want) in [
            (&b""[..], ""),
            (b"a", "YQ=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
            (b"\x01\x02\x03", "AQID"),
            (b"\x00\x01\x02\xfd\xfe\xff", "AAEC/f7/"),
        ] {
            let mut out = Vec::new();
            base64(input, &mut out);
            assert_eq!(out, want.as_bytes());
        }
    }

    #[test]
    fn socket_ids_have_the_engineio_shape() {
        assert!(looks_like_sid("Ab-_0123456789abcdef"));
        assert!(!looks_like_sid("room1"));
        assert!(!looks_like_sid("Ab-_0123456789abcde/"));
        assert!(host_id().starts_with("emitgate-"));
        assert_eq!(host_id(), host_id());
    }

    fn args(hex_values: &str, count: u32) -> EncodedArgs {
        EncodedArgs {
            count,
            bytes: hex::decode(hex_values).unwrap(),
            shape: super::super::Shape::default(),
        }
    }

    fn data(shape: DataShape, a: &EncodedArgs) -> Result<String, CodecError> {
        PythonSocketIo::new("socketio", shape)
            .data(a)
            .map(|(d, _)| String::from_utf8(d).unwrap())
    }

    #[test]
    fn data_shapes() {
        use DataShape::{List, Single};
        assert_eq!(data(List, &args("", 0)).unwrap(), "[]");
        assert_eq!(data(List, &args("a161", 1)).unwrap(), r#"["a"]"#);
        assert_eq!(data(List, &args("920102", 1)).unwrap(), "[[1,2]]");
        assert_eq!(data(List, &args("c0c0", 2)).unwrap(), "[null,null]");
        assert!(data(List, &args("c0", 1)).is_err());
        assert_eq!(data(Single, &args("", 0)).unwrap(), "null");
        assert_eq!(data(Single, &args("a161", 1)).unwrap(), r#""a""#);
        assert_eq!(data(Single, &args("81a16101", 1)).unwrap(), r#"{"a":1}"#);
        assert!(data(Single, &args("920102", 1)).is_err());
        assert!(data(Single, &args("c0", 1)).is_err());
        let e = data(Single, &args("0102", 2)).unwrap_err();
        assert!(
            matches!(e, CodecError::Invalid { ref field, .. } if field == "args"),
            "{e:?}"
        );
        // A bare binary argument in the single shape: [placeholder, base64].
        assert_eq!(
            data(Single, &args("c403010203", 1)).unwrap(),
            r#"[{"_placeholder":true,"num":0},"AQID"]"#
        );
        assert_eq!(
            data(List, &args("c40101c40102", 2)).unwrap(),
            r#"[[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}],"AQ==","Ag=="]"#
        );
    }
}
