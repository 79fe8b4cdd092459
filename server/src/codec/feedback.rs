//! Requests that expect answers (acks, fetchSockets, allRooms,
//! serverSideEmit with ack) and the answers' decoding, per server stack.
//!
//! The gateway acts as one more node of the Socket.IO cluster: it sends a
//! request carrying a random request id on the channel the servers read
//! requests from, and reads the servers' answers from the response channels
//! it subscribes to (docs/protocol.md §8):
//!
//! | dialect | requests | answers |
//! |---|---|---|
//! | `socketio` | `{key}-request#{nsp}#`, JSON (MessagePack when an argument is binary) | `{key}-response#{nsp}#` and `{key}-response#{nsp}#emitter#` |
//! | `socketio-sharded` | SPUBLISH `{key}#{nsp}#`, a ClusterMessage in JSON or MessagePack | SSUBSCRIBE `{key}#{nsp}#emitter#` |
//! | `socketio-streams` | PUBLISH `{key}#{nsp}#`, MessagePack only | SUBSCRIBE `{key}#{nsp}#emitter#` |
//! | `python-socketio` | the manager channel, an `emit` with `callback` | the same channel, `callback` messages |
//! | `socketio-v2` | `{key}-request#{nsp}#`, JSON with `requestid` | `{key}-response#{nsp}#` |
//!
//! Answers are decoded by their first byte (`{`: JSON, anything else:
//! MessagePack) into [`rmpv::Value`]s; [`Wire::interpret`] turns one into an
//! [`Answer`] for the operation that is waiting for it. Anything that does
//! not decode, or does not have the expected shape, is `None`: the caller
//! drops and counts it.

use rmpv::Value as Mp;

use super::{
    CodecError, Command, EMITTER_UID, EncodedArgs, Event, Message, Parser, Selector,
    args::{ArgError, msgpack_to_json_list},
    python::{self, PythonSocketIo},
    write::json_str,
};

/// The classic adapter's request types (`RequestType`).
mod classic_type {
    pub const ALL_ROOMS: u64 = 1;
    pub const REMOTE_FETCH: u64 = 5;
    pub const SERVER_SIDE_EMIT: u64 = 6;
    pub const BROADCAST: u64 = 7;
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub const BROADCAST_ACK: u64 = 9;
}

/// socket.io-redis 5 (socket.io 2) request types.
mod v2_type {
    pub const ALL_ROOMS: u64 = 2;
}

/// `ClusterAdapter` message types (sharded and streams adapters).
mod cluster_type {
    pub const BROADCAST: u64 = 3;
    pub const FETCH_SOCKETS: u64 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub const SERVER_SIDE_EMIT: u64 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub const BROADCAST_ACK: u64 = 12;
}

/// Socket.IO packet type `EVENT`.
const PACKET_TYPE_EVENT: u8 = 2;

/// The ack id put in python-socketio callback requests. The receivers give
/// every client its own ack id; this one only comes back in the reply, and
/// the reply is matched by its token, so one value serves every request.
const PYTHON_ACK_ID: u64 = 1;

/// An operation that waits for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// An event with an ack callback per client.
    EmitWithAck,
    /// The servers' sockets.
    FetchSockets,
    /// The servers' rooms.
    AllRooms,
    /// An event to the servers' handlers, with a callback.
    ServerSideEmitWithAck,
}

impl Op {
    /// The RPC name.
    pub fn rpc(self) -> &'static str {
        match self {
            Op::EmitWithAck => "EmitWithAck",
            Op::FetchSockets => "FetchSockets",
            Op::AllRooms => "AllRooms",
            Op::ServerSideEmitWithAck => "ServerSideEmitWithAck",
        }
    }
}

/// A request to encode.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// [`Op::EmitWithAck`].
    EmitWithAck(&'a Event<'a>),
    /// [`Op::FetchSockets`].
    FetchSockets(Selector<'a>),
    /// [`Op::AllRooms`].
    AllRooms,
    /// [`Op::ServerSideEmitWithAck`].
    ServerSideEmitWithAck {
        /// The event name.
        event: &'a str,
        /// Its arguments.
        args: &'a EncodedArgs,
    },
}

impl Request<'_> {
    /// The operation.
    pub fn op(&self) -> Op {
        match self {
            Request::EmitWithAck(_) => Op::EmitWithAck,
            Request::FetchSockets(_) => Op::FetchSockets,
            Request::AllRooms => Op::AllRooms,
            Request::ServerSideEmitWithAck { .. } => Op::ServerSideEmitWithAck,
        }
    }
}

/// A channel the gateway subscribes to, or counts the subscribers of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The channel name.
    pub name: Vec<u8>,
    /// Sharded pub/sub (SSUBSCRIBE / SHARDNUMSUB) instead of classic.
    pub sharded: bool,
}

/// How one target's servers carry requests and answers.
#[derive(Debug, Clone)]
pub enum Wire {
    /// `@socket.io/redis-adapter` `createAdapter` (≥ 7.2 for acks).
    Classic {
        /// The adapter's `key`.
        key: String,
        /// The adapter's `parser`.
        parser: Parser,
    },
    /// `@socket.io/redis-adapter` `createShardedAdapter` (≥ 8.2).
    Sharded {
        /// The adapter's `channelPrefix`.
        prefix: String,
    },
    /// `@socket.io/redis-streams-adapter` 0.3.x, without `useShardedPubSub`.
    Streams {
        /// The adapter's `channelPrefix`.
        prefix: String,
    },
    /// python-socketio ≥ 5.14 `RedisManager`.
    Python {
        /// The manager's encoder for `emit` messages.
        codec: PythonSocketIo,
        /// The manager's channel.
        channel: String,
    },
    /// socket.io-redis 5 (socket.io 2).
    V2 {
        /// The adapter's `key`.
        key: String,
    },
}

/// One answer, as the operation waiting for it reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A server's count of the clients it sent an ack request to.
    ClientCount(u64),
    /// One client's ack reply (its first argument; `None` for no argument).
    Ack(Option<Mp>),
    /// One server's sockets (the raw socket objects).
    Sockets(Vec<Mp>),
    /// One server's rooms.
    Rooms(Vec<String>),
    /// One server's callback reply.
    ServerReply(Option<Mp>),
}

/// An answer's request id, sender and body, before interpretation.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The request id the answer is for.
    pub request_id: String,
    /// The answering server's uid, when the dialect sends it.
    pub uid: Option<String>,
    /// The message type, when the dialect sends one.
    pub kind: Option<u64>,
    /// The fields that carry the answer.
    pub body: Mp,
}

impl Wire {
    /// The wire of a target.
    pub fn new(cfg: &crate::config::TargetConfig) -> Self {
        use crate::config::DialectOptions as O;
        match &cfg.options {
            O::SocketIo { parser } => Wire::Classic {
                key: cfg.key.clone(),
                parser: *parser,
            },
            O::SocketIoSharded { .. } => Wire::Sharded {
                prefix: cfg.key.clone(),
            },
            O::SocketIoStreams { .. } => Wire::Streams {
                prefix: cfg.key.clone(),
            },
            O::PythonSocketIo { channel, data_shape } => Wire::Python {
                codec: PythonSocketIo::new(channel, *data_shape),
                channel: channel.clone(),
            },
            O::SocketIoV2 => Wire::V2 { key: cfg.key.clone() },
        }
    }

    /// The dialect's config name.
    pub fn dialect(&self) -> &'static str {
        match self {
            Wire::Classic { .. } => "socketio",
            Wire::Sharded { .. } => "socketio-sharded",
            Wire::Streams { .. } => "socketio-streams",
            Wire::Python { .. } => "python-socketio",
            Wire::V2 { .. } => "socketio-v2",
        }
    }

    /// Whether the servers report how many of them answer: false only for
    /// python-socketio, whose servers send nothing but the clients' replies.
    pub fn counts_servers(&self) -> bool {
        !matches!(self, Wire::Python { .. })
    }

    /// Why `request` cannot be sent to this dialect's servers, if it cannot
    /// (checked before anything is published).
    pub fn unsupported(&self, request: &Request<'_>) -> Option<String> {
        let op = request.op();
        match (self, request) {
            (Wire::Python { .. }, Request::EmitWithAck(e)) => {
                let single = matches!(e.rooms, [one] if python::looks_like_sid(one)) && e.except.is_empty();
                (!single).then(|| {
                    "python-socketio servers report no client counts, so EmitWithAck can only address a \
                     single socket id (one room that is a socket id, no except_rooms)"
                        .to_owned()
                })
            }
            (Wire::Python { .. }, _) => Some(format!(
                "python-socketio servers have no {} message (their managers only relay emit callbacks)",
                op.rpc()
            )),
            (Wire::V2 { .. }, Request::AllRooms) => None,
            (Wire::V2 { .. }, _) => Some(format!(
                "socket.io 2 servers (socket.io-redis 5) cannot answer {}: they have no broadcast acks, no \
                 server-side emit and report socket ids only",
                op.rpc()
            )),
            _ => None,
        }
    }

    /// The channels answers arrive on, for a namespace.
    pub fn subscriptions(&self, nsp: &str) -> Vec<Channel> {
        let classic = |name: String| Channel {
            name: name.into_bytes(),
            sharded: false,
        };
        match self {
            Wire::Classic { key, .. } => vec![
                classic(format!("{key}-response#{nsp}#")),
                classic(format!("{key}-response#{nsp}#{EMITTER_UID}#")),
            ],
            Wire::Sharded { prefix } => vec![Channel {
                name: format!("{prefix}#{nsp}#{EMITTER_UID}#").into_bytes(),
                sharded: true,
            }],
            Wire::Streams { prefix } => vec![classic(format!("{prefix}#{nsp}#{EMITTER_UID}#"))],
            Wire::Python { channel, .. } => vec![classic(channel.clone())],
            Wire::V2 { key } => vec![classic(format!("{key}-response#{nsp}#"))],
        }
    }

    /// The channel whose subscribers are the namespace's servers
    /// (`serverCount()` of the adapters). The gateway never subscribes to
    /// it, except for python-socketio, whose one channel carries
    /// everything.
    pub fn counted_channel(&self, nsp: &str) -> Channel {
        let (name, sharded) = match self {
            Wire::Classic { key, .. } | Wire::V2 { key } => (format!("{key}-request#{nsp}#"), false),
            Wire::Sharded { prefix } => (format!("{prefix}#{nsp}#"), true),
            Wire::Streams { prefix } => (format!("{prefix}#{nsp}#"), false),
            Wire::Python { channel, .. } => (channel.clone(), false),
        };
        Channel {
            name: name.into_bytes(),
            sharded,
        }
    }

    /// Encodes `request` for namespace `nsp` with `request_id`.
    pub fn request(&self, nsp: &str, request: &Request<'_>, request_id: &str) -> Result<Message, CodecError> {
        match self {
            Wire::Classic { key, parser } => {
                let channel = format!("{key}-request#{nsp}#").into_bytes();
                let payload = classic_request(nsp, request, request_id, *parser)?;
                Ok(Command::Publish { channel, payload }.into())
            }
            Wire::Sharded { prefix } => {
                let channel = format!("{prefix}#{nsp}#").into_bytes();
                let payload = cluster_request(nsp, request, request_id, false)?;
                Ok(Command::SPublish { channel, payload }.into())
            }
            Wire::Streams { prefix } => {
                let channel = format!("{prefix}#{nsp}#").into_bytes();
                let payload = cluster_request(nsp, request, request_id, true)?;
                Ok(Command::Publish { channel, payload }.into())
            }
            Wire::Python { codec, .. } => match request {
                Request::EmitWithAck(e) => codec.emit_message(e, Some((request_id, PYTHON_ACK_ID))),
                _ => Err(CodecError::Unsupported(self.unsupported(request).unwrap_or_default())),
            },
            Wire::V2 { key } => match request {
                Request::AllRooms => {
                    let mut out = Vec::with_capacity(48 + request_id.len());
                    out.extend_from_slice(br#"{"requestid":"#);
                    json_str(&mut out, request_id);
                    out.extend_from_slice(format!(r#","type":{}}}"#, v2_type::ALL_ROOMS).as_bytes());
                    Ok(Command::Publish {
                        channel: format!("{key}-request#{nsp}#").into_bytes(),
                        payload: out,
                    }
                    .into())
                }
                _ => Err(CodecError::Unsupported(self.unsupported(request).unwrap_or_default())),
            },
        }
    }

    /// Reads an answer's request id and body; `None` when it is not an
    /// answer at all (undecodable, no request id, another host's callback).
    pub fn decode(&self, payload: &[u8]) -> Option<Envelope> {
        match self {
            Wire::Python { .. } => {
                // The channel carries every manager's traffic: skip what
                // cannot be a callback before parsing.
                if !contains(payload, b"\"callback\"") {
                    return None;
                }
                let v = parse(payload)?;
                if get(&v, "method")?.as_str()? != "callback" || get(&v, "host_id")?.as_str()? != python::host_id() {
                    return None;
                }
                Some(Envelope {
                    request_id: get(&v, "sid")?.as_str()?.to_owned(),
                    uid: None,
                    kind: None,
                    body: v,
                })
            }
            Wire::Classic { .. } => {
                let v = parse(payload)?;
                Some(Envelope {
                    request_id: get(&v, "requestId")?.as_str()?.to_owned(),
                    uid: None,
                    kind: get(&v, "type").and_then(Mp::as_u64),
                    body: v,
                })
            }
            Wire::V2 { .. } => {
                let v = parse(payload)?;
                Some(Envelope {
                    request_id: get(&v, "requestid")?.as_str()?.to_owned(),
                    uid: None,
                    kind: None,
                    body: v,
                })
            }
            Wire::Sharded { .. } | Wire::Streams { .. } => {
                let v = parse(payload)?;
                let data = get(&v, "data")?.clone();
                Some(Envelope {
                    request_id: get(&data, "requestId")?.as_str()?.to_owned(),
                    uid: get(&v, "uid").and_then(Mp::as_str).map(str::to_owned),
                    kind: get(&v, "type").and_then(Mp::as_u64),
                    body: data,
                })
            }
        }
    }

    /// What an envelope means for operation `op`; `None` when it does not
    /// have the shape `op`'s answers have.
    pub fn interpret(&self, op: Op, env: &Envelope) -> Option<Answer> {
        let b = &env.body;
        let field = |name: &str| get(b, name).filter(|v| !v.is_nil()).cloned();
        match self {
            Wire::Classic { .. } => match (op, env.kind) {
                (Op::EmitWithAck, Some(classic_type::BROADCAST_CLIENT_COUNT)) => {
                    Some(Answer::ClientCount(get(b, "clientCount")?.as_u64()?))
                }
                (Op::EmitWithAck, Some(classic_type::BROADCAST_ACK)) => Some(Answer::Ack(field("packet"))),
                (Op::FetchSockets, None) => Some(Answer::Sockets(array_or_empty(get(b, "sockets"))?)),
                (Op::AllRooms, None) => Some(Answer::Rooms(strings(get(b, "rooms"))?)),
                (Op::ServerSideEmitWithAck, Some(classic_type::SERVER_SIDE_EMIT)) => {
                    Some(Answer::ServerReply(field("data")))
                }
                _ => None,
            },
            Wire::Sharded { .. } | Wire::Streams { .. } => match (op, env.kind?) {
                (Op::EmitWithAck, cluster_type::BROADCAST_CLIENT_COUNT) => {
                    Some(Answer::ClientCount(get(b, "clientCount")?.as_u64()?))
                }
                (Op::EmitWithAck, cluster_type::BROADCAST_ACK) => Some(Answer::Ack(field("packet"))),
                (Op::FetchSockets, cluster_type::FETCH_SOCKETS_RESPONSE) => {
                    Some(Answer::Sockets(array_or_empty(get(b, "sockets"))?))
                }
                // No ALL_ROOMS message: the union of every socket's rooms.
                (Op::AllRooms, cluster_type::FETCH_SOCKETS_RESPONSE) => {
                    let mut rooms = Vec::new();
                    for s in array_or_empty(get(b, "sockets"))? {
                        rooms.extend(strings(get(&s, "rooms"))?);
                    }
                    Some(Answer::Rooms(rooms))
                }
                (Op::ServerSideEmitWithAck, cluster_type::SERVER_SIDE_EMIT_RESPONSE) => {
                    Some(Answer::ServerReply(field("packet")))
                }
                _ => None,
            },
            Wire::Python { .. } => match op {
                // python-socketio relays every argument of the ack; the
                // first one is the reply, as for the other stacks.
                Op::EmitWithAck => match get(b, "args")? {
                    Mp::Array(args) => Some(Answer::Ack(args.first().cloned().filter(|v| !v.is_nil()))),
                    _ => None,
                },
                _ => None,
            },
            Wire::V2 { .. } => match op {
                Op::AllRooms => Some(Answer::Rooms(strings(get(b, "rooms"))?)),
                _ => None,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Request encoding.

/// A map writer for either JSON or MessagePack, so that each request is
/// written once.
struct Out {
    msgpack: bool,
    buf: Vec<u8>,
    /// Per open JSON map: whether the next key is its first.
    first: Vec<bool>,
}

impl Out {
    fn new(msgpack: bool) -> Self {
        Self {
            msgpack,
            buf: Vec::with_capacity(128),
            first: Vec::new(),
        }
    }

    fn map(&mut self, entries: u32) {
        if self.msgpack {
            let _ = rmp::encode::write_map_len(&mut self.buf, entries);
        } else {
            self.buf.push(b'{');
            self.first.push(true);
        }
    }

    fn end(&mut self) {
        if !self.msgpack {
            self.buf.push(b'}');
            self.first.pop();
        }
    }

    fn key(&mut self, k: &str) {
        if self.msgpack {
            let _ = rmp::encode::write_str(&mut self.buf, k);
        } else {
            if let Some(first) = self.first.last_mut() {
                if !*first {
                    self.buf.push(b',');
                }
                *first = false;
            }
            json_str(&mut self.buf, k);
            self.buf.push(b':');
        }
    }

    fn str(&mut self, s: &str) {
        if self.msgpack {
            let _ = rmp::encode::write_str(&mut self.buf, s);
        } else {
            json_str(&mut self.buf, s);
        }
    }

    fn uint(&mut self, n: u64) {
        if self.msgpack {
            let _ = rmp::encode::write_uint(&mut self.buf, n);
        } else {
            self.buf.extend_from_slice(n.to_string().as_bytes());
        }
    }

    fn strs(&mut self, items: &[String]) {
        if self.msgpack {
            let _ = rmp::encode::write_array_len(&mut self.buf, u32::try_from(items.len()).unwrap_or(u32::MAX));
            for s in items {
                let _ = rmp::encode::write_str(&mut self.buf, s);
            }
        } else {
            let _ = serde_json::to_writer(&mut self.buf, items);
        }
    }

    fn flags(&mut self, volatile: bool, compress: Option<bool>) {
        let n = u32::from(volatile) + u32::from(compress.is_some());
        self.map(n);
        if volatile {
            self.key("volatile");
            self.bool(true);
        }
        if let Some(c) = compress {
            self.key("compress");
            self.bool(c);
        }
        self.end();
    }

    fn bool(&mut self, b: bool) {
        if self.msgpack {
            self.buf.push(if b { 0xc3 } else { 0xc2 });
        } else {
            self.buf.extend_from_slice(if b { b"true" } else { b"false" });
        }
    }

    /// `[event, ...args]`.
    fn event_array(&mut self, event: &str, args: &EncodedArgs) -> Result<(), CodecError> {
        if self.msgpack {
            let _ = rmp::encode::write_array_len(&mut self.buf, args.count.saturating_add(1));
            let _ = rmp::encode::write_str(&mut self.buf, event);
            self.buf.extend_from_slice(&args.bytes);
        } else {
            self.buf.push(b'[');
            json_str(&mut self.buf, event);
            let mut refuse =
                |_: &[u8], _: &mut Vec<u8>| Err(ArgError("binary values need the MessagePack form".into()));
            msgpack_to_json_list(&args.bytes, &mut self.buf, &mut refuse).map_err(|(i, e)| CodecError::Invalid {
                field: format!("args[{i}]"),
                description: e.0,
            })?;
            self.buf.push(b']');
        }
        Ok(())
    }

    /// `{type: 2, data: [event, ...args], nsp}`.
    fn packet(&mut self, e: &Event<'_>) -> Result<(), CodecError> {
        self.map(3);
        self.key("type");
        self.uint(u64::from(PACKET_TYPE_EVENT));
        self.key("data");
        self.event_array(e.event, e.args)?;
        self.key("nsp");
        self.str(e.nsp);
        self.end();
        Ok(())
    }

    /// `{rooms, except, flags}`.
    fn opts(&mut self, rooms: &[String], except: &[String], volatile: bool, compress: Option<bool>) {
        self.map(3);
        self.key("rooms");
        self.strs(rooms);
        self.key("except");
        self.strs(except);
        self.key("flags");
        self.flags(volatile, compress);
        self.end();
    }
}

/// Whether arguments need MessagePack (binary or timestamps inside).
fn needs_msgpack(args: &EncodedArgs) -> bool {
    args.shape.binary || args.shape.timestamp
}

/// A classic-adapter request: JSON unless an argument needs MessagePack.
fn classic_request(nsp: &str, request: &Request<'_>, request_id: &str, parser: Parser) -> Result<Vec<u8>, CodecError> {
    let msgpack = match request {
        Request::EmitWithAck(e) if needs_msgpack(e.args) => {
            if parser == Parser::Json {
                return Err(CodecError::Invalid {
                    field: "args".into(),
                    description: "binary values and timestamps cannot be sent to this target, whose adapter \
                                  parser is `json`"
                        .into(),
                });
            }
            true
        }
        Request::ServerSideEmitWithAck { args, .. } if needs_msgpack(args) => {
            return Err(CodecError::Invalid {
                field: "args".into(),
                description: "binary values cannot be sent to servers: the socketio dialect's requests are JSON".into(),
            });
        }
        _ => false,
    };
    let mut o = Out::new(msgpack);
    let entries = match request {
        Request::EmitWithAck(_) => 5,
        Request::FetchSockets(_) | Request::ServerSideEmitWithAck { .. } => 4,
        Request::AllRooms => 3,
    };
    o.map(entries);
    o.key("uid");
    o.str(EMITTER_UID);
    o.key("requestId");
    o.str(request_id);
    o.key("type");
    match request {
        Request::EmitWithAck(e) => {
            o.uint(classic_type::BROADCAST);
            o.key("packet");
            o.packet(e)?;
            o.key("opts");
            o.opts(e.rooms, e.except, e.flags.volatile, e.flags.compress);
        }
        Request::FetchSockets(sel) => {
            o.uint(classic_type::REMOTE_FETCH);
            o.key("opts");
            o.map(2);
            o.key("rooms");
            o.strs(sel.rooms);
            o.key("except");
            o.strs(sel.except);
            o.end();
        }
        Request::AllRooms => o.uint(classic_type::ALL_ROOMS),
        Request::ServerSideEmitWithAck { event, args } => {
            o.uint(classic_type::SERVER_SIDE_EMIT);
            o.key("data");
            o.event_array(event, args)?;
        }
    }
    o.end();
    let _ = nsp;
    Ok(o.buf)
}

/// A `ClusterAdapter` message `{uid, nsp, type, data}`: JSON unless
/// `always_msgpack` (streams) or an argument needs MessagePack.
fn cluster_request(
    nsp: &str,
    request: &Request<'_>,
    request_id: &str,
    always_msgpack: bool,
) -> Result<Vec<u8>, CodecError> {
    let msgpack = always_msgpack
        || match request {
            Request::EmitWithAck(e) => needs_msgpack(e.args),
            Request::ServerSideEmitWithAck { args, .. } => needs_msgpack(args),
            _ => false,
        };
    let mut o = Out::new(msgpack);
    o.map(4);
    o.key("uid");
    o.str(EMITTER_UID);
    o.key("nsp");
    o.str(nsp);
    o.key("type");
    match request {
        Request::EmitWithAck(e) => {
            o.uint(cluster_type::BROADCAST);
            o.key("data");
            o.map(3);
            o.key("packet");
            o.packet(e)?;
            o.key("opts");
            o.opts(e.rooms, e.except, e.flags.volatile, e.flags.compress);
        }
        Request::FetchSockets(sel) => {
            o.uint(cluster_type::FETCH_SOCKETS);
            o.key("data");
            o.map(2);
            o.key("opts");
            o.opts(sel.rooms, sel.except, false, None);
        }
        Request::AllRooms => {
            o.uint(cluster_type::FETCH_SOCKETS);
            o.key("data");
            o.map(2);
            o.key("opts");
            o.opts(&[], &[], false, None);
        }
        Request::ServerSideEmitWithAck { event, args } => {
            o.uint(cluster_type::SERVER_SIDE_EMIT);
            o.key("data");
            o.map(2);
            o.key("packet");
            o.event_array(event, args)?;
        }
    }
    o.key("requestId");
    o.str(request_id);
    o.end();
    o.end();
    Ok(o.buf)
}

// ---------------------------------------------------------------------------
// Answer decoding.

/// How deeply an answer may nest: answers come from the servers, but a
/// stray publisher on a response channel must not exhaust the stack.
const MAX_ANSWER_DEPTH: usize = 128;

/// Decodes one answer: JSON when it starts with `{`, MessagePack otherwise.
pub fn parse(payload: &[u8]) -> Option<Mp> {
    if payload.first() == Some(&b'{') {
        let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
        json_to_mp(v, 0)
    } else {
        let mut rd = payload;
        let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_ANSWER_DEPTH).ok()?;
        rd.is_empty().then_some(v)
    }
}

fn json_to_mp(v: serde_json::Value, depth: usize) -> Option<Mp> {
    use serde_json::Value as J;
    if depth > MAX_ANSWER_DEPTH {
        return None;
    }
    Some(match v {
        J::Null => Mp::Nil,
        J::Bool(b) => Mp::Boolean(b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Mp::from(i),
            (None, Some(u)) => Mp::from(u),
            _ => Mp::F64(n.as_f64()?),
        },
        J::String(s) => Mp::from(s),
        J::Array(a) => Mp::Array(a.into_iter().map(|x| json_to_mp(x, depth + 1)).collect::<Option<_>>()?),
        J::Object(m) => Mp::Map(
            m.into_iter()
                .map(|(k, x)| Some((Mp::from(k), json_to_mp(x, depth + 1)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A map's value for a string key.
pub fn get<'v>(v: &'v Mp, key: &str) -> Option<&'v Mp> {
    match v {
        Mp::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
        _ => None,
    }
}

/// An array's items; absent or nil is empty, anything else is not an
/// answer.
fn array_or_empty(v: Option<&Mp>) -> Option<Vec<Mp>> {
    match v {
        None | Some(Mp::Nil) => Some(Vec::new()),
        Some(Mp::Array(a)) => Some(a.clone()),
        Some(_) => None,
    }
}

/// An array of strings (absent is empty).
fn strings(v: Option<&Mp>) -> Option<Vec<String>> {
    array_or_empty(v)?
        .into_iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::codec::{Flags, Shape, python::DataShape};

    fn args(bytes: &[u8], count: u32, binary: bool) -> EncodedArgs {
        EncodedArgs {
            count,
            bytes: bytes.to_vec(),
            shape: Shape {
                binary,
                timestamp: false,
            },
        }
    }

    fn event<'a>(rooms: &'a [String], args: &'a EncodedArgs) -> Event<'a> {
        Event {
            nsp: "/",
            rooms,
            except: &[],
            event: "question",
            args,
            flags: Flags::default(),
        }
    }

    #[test]
    fn classic_broadcast_with_ack_is_the_adapters_json() {
        let w = Wire::Classic {
            key: "socket.io".into(),
            parser: Parser::Msgpack,
        };
        let a = args(&[0xa2, b'q', b'1'], 1, false);
        let rooms = vec!["room1".to_owned()];
        let e = event(&rooms, &a);
        let m = w.request("/", &Request::EmitWithAck(&e), "r123").unwrap();
        assert_eq!(m.channel(), b"socket.io-request#/#");
        assert_eq!(
            std::str::from_utf8(m.payload()).unwrap(),
            r#"{"uid":"emitter","requestId":"r123","type":7,"packet":{"type":2,"data":["question","q1"],"nsp":"/"},"opts":{"rooms":["room1"],"except":[],"flags":{}}}"#
        );
    }

    #[test]
    fn classic_requests_for_fetch_all_rooms_and_server_side_emit() {
        let w = Wire::Classic {
            key: "socket.io".into(),
            parser: Parser::Msgpack,
        };
        let rooms = vec!["a".to_owned()];
        let m = w
            .request(
                "/",
                &Request::FetchSockets(Selector {
                    rooms: &rooms,
                    except: &[],
                }),
                "R",
            )
            .unwrap();
        assert_eq!(
            m.payload(),
            br#"{"uid":"emitter","requestId":"R","type":5,"opts":{"rooms":["a"],"except":[]}}"#
        );
        let m = w.request("/", &Request::AllRooms, "R").unwrap();
        assert_eq!(m.payload(), br#"{"uid":"emitter","requestId":"R","type":1}"#);
        let a = args(&[0x01], 1, false);
        let m = w
            .request(
                "/",
                &Request::ServerSideEmitWithAck {
                    event: "ping",
                    args: &a,
                },
                "R",
            )
            .unwrap();
        assert_eq!(
            m.payload(),
            br#"{"uid":"emitter","requestId":"R","type":6,"data":["ping",1]}"#
        );
    }

    #[test]
    fn classic_binary_ack_request_is_msgpack() {
        let w = Wire::Classic {
            key: "socket.io".into(),
            parser: Parser::Msgpack,
        };
        let a = args(&[0xc4, 0x01, 0x07], 1, true);
        let e = event(&[], &a);
        let m = w.request("/", &Request::EmitWithAck(&e), "R").unwrap();
        let v = parse(m.payload()).unwrap();
        assert_eq!(get(&v, "type").and_then(Mp::as_u64), Some(7));
        let data = get(get(&v, "packet").unwrap(), "data").unwrap();
        assert_eq!(data.as_array().unwrap()[1], Mp::Binary(vec![7]));
    }

    #[test]
    fn sharded_and_streams_requests_are_cluster_messages() {
        let a = args(&[0x01], 1, false);
        let e = event(&[], &a);
        let sharded = Wire::Sharded {
            prefix: "socket.io".into(),
        };
        let m = sharded.request("/", &Request::EmitWithAck(&e), "R").unwrap();
        assert!(matches!(m.commands(), [Command::SPublish { .. }]));
        assert_eq!(
            m.payload(),
            br#"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["question",1],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"R"}}"#
        );
        let streams = Wire::Streams {
            prefix: "socket.io".into(),
        };
        let m = streams.request("/", &Request::AllRooms, "R").unwrap();
        assert!(matches!(m.commands(), [Command::Publish { .. }]));
        assert_eq!(m.channel(), b"socket.io#/#");
        let v = parse(m.payload()).unwrap();
        assert_eq!(get(&v, "type").and_then(Mp::as_u64), Some(7));
        let data = get(&v, "data").unwrap();
        assert_eq!(get(data, "requestId").and_then(Mp::as_str), Some("R"));
    }

    #[test]
    fn answers_are_decoded_and_interpreted() {
        let w = Wire::Sharded {
            prefix: "socket.io".into(),
        };
        let env = w
            .decode(br#"{"type":11,"data":{"requestId":"R","clientCount":2},"uid":"abc","nsp":"/"}"#)
            .unwrap();
        assert_eq!(env.request_id, "R");
        assert_eq!(env.uid.as_deref(), Some("abc"));
        assert_eq!(w.interpret(Op::EmitWithAck, &env), Some(Answer::ClientCount(2)));
        assert_eq!(w.interpret(Op::FetchSockets, &env), None);
        assert!(w.decode(b"garbage").is_none());
        assert!(w.decode(b"{not json").is_none());

        let classic = Wire::Classic {
            key: "socket.io".into(),
            parser: Parser::Msgpack,
        };
        // {type: 9, requestId: "R"} without `packet`: an ack with no argument.
        let mut mp = Vec::new();
        rmpv::encode::write_value(
            &mut mp,
            &Mp::Map(vec![
                (Mp::from("type"), Mp::from(9)),
                (Mp::from("requestId"), Mp::from("R")),
            ]),
        )
        .unwrap();
        let env = classic.decode(&mp).unwrap();
        assert_eq!(classic.interpret(Op::EmitWithAck, &env), Some(Answer::Ack(None)));
        let env = classic.decode(br#"{"requestId":"R","rooms":["a","b"]}"#).unwrap();
        assert_eq!(
            classic.interpret(Op::AllRooms, &env),
            Some(Answer::Rooms(vec!["a".into(), "b".into()]))
        );
        // A fetch answer without `sockets` still counts, as an empty one.
        let env = classic.decode(br#"{"requestId":"R"}"#).unwrap();
        assert_eq!(classic.interpret(Op::FetchSockets, &env), Some(Answer::Sockets(vec![])));
    }

    #[test]
    fn python_callbacks_are_matched_by_host_and_token() {
        let w = Wire::Python {
            codec: PythonSocketIo::new("socketio", DataShape::List),
            channel: "socketio".into(),
        };
        let a = args(&[0x01], 1, false);
        let rooms = vec!["AAAAAAAAAAAAAAAAAAAA".to_owned()];
        let e = event(&rooms, &a);
        let m = w.request("/", &Request::EmitWithAck(&e), "tok").unwrap();
        let text = std::str::from_utf8(m.payload()).unwrap();
        assert!(text.contains(r#""callback": ["tok", "/", 1]"#), "{text}");
        let reply = format!(
            r#"{{"method": "callback", "host_id": "{}", "sid": "tok", "namespace": "/", "id": 1, "args": ["ok", 2]}}"#,
            python::host_id()
        );
        let env = w.decode(reply.as_bytes()).unwrap();
        assert_eq!(env.request_id, "tok");
        assert_eq!(
            w.interpret(Op::EmitWithAck, &env),
            Some(Answer::Ack(Some(Mp::from("ok"))))
        );
        let other = reply.replace(python::host_id(), "someone-else");
        assert!(w.decode(other.as_bytes()).is_none());
        let rooms = vec!["a-room".to_owned()];
        let e = event(&rooms, &a);
        assert!(w.unsupported(&Request::EmitWithAck(&e)).is_some());
        assert!(w.unsupported(&Request::AllRooms).is_some());
    }
}
