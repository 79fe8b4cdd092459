//! The subcommands that read answers back from the Socket.IO servers:
//! `sockets` (FetchSockets), `rooms` (AllRooms), `servers` (ServerCount),
//! and the `--ack` option of `emit`, `broadcast` (EmitWithAck) and
//! `server-side-emit` (ServerSideEmitWithAck).
//!
//! An answer that is not `complete` (a server or a socket did not answer
//! within the wait) is still a successful call: it exits 0 and says
//! `incomplete`, with what did arrive; `--json` carries `"complete": false`.

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::{Connection, Outcome, describe_outcome};
use crate::pb::{self, argument::Kind};

/// How long the gateway waits for answers when `--wait-ms` is not given
/// (the gateway's own default for a `timeout_ms` of 0).
pub const DEFAULT_WAIT_MS: u32 = crate::feedback::DEFAULT_TIMEOUT_MS;

/// Integers up to 2^53 are exact in a float64: such a number prints as an
/// integer (`7`, not `7.0`), as JavaScript prints it.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// `--ack` and its `--wait-ms`, for the commands that can carry a callback.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Acknowledgements")]
pub struct Ack {
    /// Send with an acknowledgement callback and print the answers
    /// (EmitWithAck, ServerSideEmitWithAck); not with --idempotency-key.
    #[arg(long, conflicts_with = "idempotency_key")]
    pub ack: bool,

    /// How long the gateway waits for the answers, in milliseconds; below
    /// --timeout-ms [default: the gateway's, 5000].
    #[arg(long, value_name = "MS", requires = "ack")]
    pub wait_ms: Option<u32>,
}

/// `--wait-ms` of the commands that always wait for the servers.
#[derive(Debug, Clone, clap::Args)]
pub struct Wait {
    /// How long the gateway waits for the servers' answers, in
    /// milliseconds; below --timeout-ms [default: the gateway's, 5000].
    #[arg(long, value_name = "MS")]
    pub wait_ms: Option<u32>,
}

/// The target and namespace of a call that publishes nothing (no
/// idempotency key).
#[derive(Debug, Clone, clap::Args)]
pub struct Place {
    /// Namespace (`io.of(namespace)`); a missing leading `/` is added [default: /].
    #[arg(long = "of", value_name = "NAMESPACE", default_value = "", hide_default_value = true)]
    pub namespace: String,

    /// Configured target (Socket.IO cluster) [default: the gateway's default target].
    #[arg(long, value_name = "NAME", default_value = "", hide_default_value = true)]
    pub target: String,
}

/// `emitgate sockets`.
#[derive(Debug, Clone, clap::Args)]
pub struct SocketsArgs {
    /// Only the sockets in this room, repeatable [default: every socket of the namespace].
    #[arg(long = "to", visible_alias = "in", value_name = "ROOM")]
    pub to: Vec<String>,

    /// Not the sockets in this room, repeatable.
    #[arg(long, value_name = "ROOM")]
    pub except: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub place: Place,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub wait: Wait,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate rooms`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub place: Place,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub wait: Wait,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate servers`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServersArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub place: Place,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// The `timeout_ms` field for `--wait-ms` (0: the gateway's default).
pub(super) fn timeout_field(wait_ms: Option<u32>) -> u32 {
    wait_ms.unwrap_or(0)
}

/// What a successful call printed, one variant per kind of response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A write RPC: receivers, duplicate, stream id.
    Outcome(Outcome),
    /// EmitWithAck.
    Acks(Acks),
    /// FetchSockets.
    Sockets(Sockets),
    /// AllRooms.
    Rooms(Rooms),
    /// ServerCount.
    Servers(Servers),
    /// ServerSideEmitWithAck.
    Replies(Replies),
}

/// The answer of EmitWithAck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acks {
    /// Clients that received the event, as the servers counted them.
    pub sockets: u32,
    /// Each ack reply, in the protobuf JSON form of `Argument`
    /// (`{"value": …}`, `{"binary": "<base64>"}`, `{"msgpack": "<base64>"}`).
    pub acks: Vec<Value>,
    /// Servers that reported their count.
    pub servers: u32,
    /// Servers expected to answer.
    pub servers_expected: u32,
    /// Every expected server and every counted client answered.
    pub complete: bool,
}

/// The answer of FetchSockets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sockets {
    /// The sockets, in arrival order.
    pub sockets: Vec<Socket>,
    /// Servers that answered.
    pub servers: u32,
    /// Servers expected to answer.
    pub servers_expected: u32,
    /// Every expected server answered.
    pub complete: bool,
    /// The gateway kept only the first `feedback_max_sockets` sockets.
    pub truncated: bool,
}

/// One socket of FetchSockets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Socket {
    /// The socket id.
    pub id: String,
    /// Its rooms, its own id included.
    pub rooms: Vec<String>,
    /// `socket.data` as JSON (null when unset).
    pub data: Value,
    /// The exact MessagePack of `socket.data` (base64), when JSON cannot
    /// carry it exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_msgpack: Option<String>,
    /// The connection details the gateway returns (never `auth`, cookies
    /// or the authorization header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<Value>,
}

/// The answer of AllRooms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rooms {
    /// The rooms, sorted.
    pub rooms: Vec<String>,
    /// Servers that answered.
    pub servers: u32,
    /// Servers expected to answer.
    pub servers_expected: u32,
    /// Every expected server answered.
    pub complete: bool,
    /// The gateway kept only the first rooms.
    pub truncated: bool,
}

/// The answer of ServerCount.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Servers {
    /// Socket.IO servers subscribed to the namespace.
    pub servers: u32,
}

/// The answer of ServerSideEmitWithAck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replies {
    /// Each server's reply, in arrival order.
    pub replies: Vec<Reply>,
    /// Servers expected to answer.
    pub servers_expected: u32,
    /// Every expected server replied.
    pub complete: bool,
}

/// One server's reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The reply, in the form of [`Acks::acks`].
    pub reply: Value,
    /// The server's adapter uid, where the dialect tells it.
    pub server: String,
}

impl From<pb::EmitWithAckResponse> for Answer {
    fn from(r: pb::EmitWithAckResponse) -> Self {
        Answer::Acks(Acks {
            sockets: r.sockets,
            acks: r.acks.iter().map(argument_json).collect(),
            servers: r.servers,
            servers_expected: r.servers_expected,
            complete: r.complete,
        })
    }
}

impl From<pb::FetchSocketsResponse> for Answer {
    fn from(r: pb::FetchSocketsResponse) -> Self {
        Answer::Sockets(Sockets {
            sockets: r
                .sockets
                .into_iter()
                .map(|s| Socket {
                    data: s.data.as_ref().map_or(Value::Null, value_json),
                    data_msgpack: (!s.data_msgpack.is_empty()).then(|| base64(&s.data_msgpack)),
                    handshake: s.handshake.map(handshake_json),
                    id: s.id,
                    rooms: s.rooms,
                })
                .collect(),
            servers: r.servers,
            servers_expected: r.servers_expected,
            complete: r.complete,
            truncated: r.truncated,
        })
    }
}

impl From<pb::AllRoomsResponse> for Answer {
    fn from(r: pb::AllRoomsResponse) -> Self {
        Answer::Rooms(Rooms {
            rooms: r.rooms,
            servers: r.servers,
            servers_expected: r.servers_expected,
            complete: r.complete,
            truncated: r.truncated,
        })
    }
}

impl From<pb::ServerCountResponse> for Answer {
    fn from(r: pb::ServerCountResponse) -> Self {
        Answer::Servers(Servers { servers: r.servers })
    }
}

impl From<pb::ServerSideEmitWithAckResponse> for Answer {
    fn from(r: pb::ServerSideEmitWithAckResponse) -> Self {
        Answer::Replies(Replies {
            replies: r
                .replies
                .into_iter()
                .map(|x| Reply {
                    reply: x.reply.as_ref().map_or(Value::Null, argument_json),
                    server: x.server,
                })
                .collect(),
            servers_expected: r.servers_expected,
            complete: r.complete,
        })
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `google.protobuf.Value` as JSON; integral numbers within ±2^53 as
/// integers.
pub fn value_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind as V;
    match &v.kind {
        None | Some(V::NullValue(_)) => Value::Null,
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::NumberValue(n)) if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER => {
            // In range and integral: the cast is exact.
            #[allow(clippy::cast_possible_truncation)]
            Value::from(*n as i64)
        }
        Some(V::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::ListValue(l)) => Value::Array(l.values.iter().map(value_json).collect()),
        Some(V::StructValue(s)) => Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
    }
}

/// An ack or reply argument in the protobuf JSON form of `Argument`.
pub fn argument_json(a: &pb::Argument) -> Value {
    match &a.kind {
        Some(Kind::Value(v)) => serde_json::json!({ "value": value_json(v) }),
        Some(Kind::Binary(b)) => serde_json::json!({ "binary": base64(b) }),
        Some(Kind::Msgpack(b)) => serde_json::json!({ "msgpack": base64(b) }),
        Some(Kind::Json(t)) => serde_json::json!({ "json": t }),
        None => Value::Null,
    }
}

fn handshake_json(h: pb::Handshake) -> Value {
    serde_json::json!({
        "headers": h.headers,
        "time": h.time,
        "address": h.address,
        "xdomain": h.xdomain,
        "secure": h.secure,
        "issued": h.issued,
        "url": h.url,
        "query": h.query,
    })
}

/// One argument as text: JSON as is, binary as its size and base64,
/// MessagePack decoded.
fn argument_text(a: &Value) -> String {
    if let Some(v) = a.get("value") {
        return v.to_string();
    }
    if let Some(Value::String(b)) = a.get("binary") {
        let n = base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_or(0, |v| v.len());
        return format!("<{n} bytes> {b}");
    }
    if let Some(Value::String(b)) = a.get("msgpack") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b)
            .ok()
            .and_then(|bytes| rmpv::decode::read_value(&mut bytes.as_slice()).ok());
        return match decoded {
            Some(v) => format!("<msgpack> {v}"),
            None => format!("<msgpack> {b}"),
        };
    }
    a.to_string()
}

fn completeness(complete: bool, truncated: bool) -> &'static str {
    match (complete, truncated) {
        (true, false) => "complete",
        (true, true) => "complete, truncated (more than the gateway's feedback_max_sockets: narrow the selection)",
        (false, false) => "incomplete (not every server or socket answered within the wait)",
        (false, true) => {
            "incomplete (not every server answered within the wait), truncated (more than the gateway's \
             feedback_max_sockets)"
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Answer {
    /// The human-readable lines: a summary starting with `ok:`, then one
    /// indented line per item.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let mut line = |s: String| {
            text.push_str(&s);
            text.push('\n');
        };
        match self {
            Answer::Outcome(o) => return describe_outcome(o),
            Answer::Acks(a) => {
                line(format!(
                    "ok: {}, {}, {} of {} servers, {}",
                    plural(a.sockets as usize, "socket", "sockets"),
                    plural(a.acks.len(), "ack", "acks"),
                    a.servers,
                    a.servers_expected,
                    completeness(a.complete, false)
                ));
                for ack in &a.acks {
                    line(format!("  ack: {}", argument_text(ack)));
                }
            }
            Answer::Sockets(s) => {
                line(format!(
                    "ok: {} from {} of {} servers, {}",
                    plural(s.sockets.len(), "socket", "sockets"),
                    s.servers,
                    s.servers_expected,
                    completeness(s.complete, s.truncated)
                ));
                for x in &s.sockets {
                    line(format!("  {}  rooms: {}  data: {}", x.id, x.rooms.join(", "), x.data));
                }
            }
            Answer::Rooms(r) => {
                line(format!(
                    "ok: {} from {} of {} servers, {}",
                    plural(r.rooms.len(), "room", "rooms"),
                    r.servers,
                    r.servers_expected,
                    completeness(r.complete, r.truncated)
                ));
                for room in &r.rooms {
                    line(format!("  {room}"));
                }
            }
            Answer::Servers(s) => line(format!("ok: {}", plural(s.servers as usize, "server", "servers"))),
            Answer::Replies(r) => {
                line(format!(
                    "ok: {}, {} servers expected, {}",
                    plural(r.replies.len(), "reply", "replies"),
                    r.servers_expected,
                    completeness(r.complete, false)
                ));
                for x in &r.replies {
                    let from = if x.server.is_empty() {
                        String::new()
                    } else {
                        format!(" from {}", x.server)
                    };
                    line(format!("  reply{from}: {}", argument_text(&x.reply)));
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(n: f64) -> prost_types::Value {
        prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(n)),
        }
    }

    #[test]
    fn integral_numbers_print_as_integers_and_others_as_floats() {
        assert_eq!(value_json(&number(7.0)), json!(7));
        assert_eq!(value_json(&number(-3.0)), json!(-3));
        assert_eq!(value_json(&number(1.5)), json!(1.5));
        assert_eq!(value_json(&number(1e300)), json!(1e300));
        assert_eq!(value_json(&number(f64::NAN)), Value::Null);
    }

    #[test]
    fn acks_print_as_text_and_as_protobuf_json() {
        let answer = Answer::from(pb::EmitWithAckResponse {
            sockets: 3,
            acks: vec![
                pb::Argument {
                    kind: Some(Kind::Value(number(7.0))),
                },
                pb::Argument {
                    kind: Some(Kind::Binary(vec![1, 2, 3])),
                },
                pb::Argument {
                    // {"a": <bin 09>}
                    kind: Some(Kind::Msgpack(vec![0x81, 0xa1, b'a', 0xc4, 0x01, 0x09])),
                },
            ],
            servers: 2,
            servers_expected: 2,
            complete: false,
        });
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({"sockets": 3, "acks": [{"value": 7}, {"binary": "AQID"}, {"msgpack": "gaFhxAEJ"}],
                   "servers": 2, "servers_expected": 2, "complete": false})
        );
        let text = answer.describe();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ok: 3 sockets, 3 acks, 2 of 2 servers, incomplete"),
            "{text}"
        );
        assert_eq!(lines[1], "  ack: 7");
        assert_eq!(lines[2], "  ack: <3 bytes> AQID");
        assert!(lines[3].starts_with("  ack: <msgpack> {"), "{text}");
    }

    #[test]
    fn one_server_is_singular() {
        assert_eq!(
            Answer::from(pb::ServerCountResponse { servers: 1 }).describe(),
            "ok: 1 server\n"
        );
        assert_eq!(
            serde_json::to_value(Answer::from(pb::ServerCountResponse { servers: 2 })).unwrap(),
            json!({"servers": 2})
        );
    }
}
