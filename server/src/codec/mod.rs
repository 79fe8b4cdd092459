//! The wire codec: channel names and packet bytes, with no I/O.
//!
//! Everything here is a pure function of its input so that it can be tested
//! byte-for-byte against the reference emitters' output
//! (`server/tests/vectors`) without Redis. The service layer validates a
//! request, asks the target's [`Dialect`] to encode it into a [`Message`],
//! and the target sends that message to Redis.
//!
//! Arguments are validated once into MessagePack (the canonical form, see
//! [`args`]); each dialect splices or transcodes them as its servers expect.

pub mod args;
pub mod cluster_adapter;
pub mod feedback;
pub mod python;
pub mod sharded;
pub mod socketio;
pub mod streams;
pub mod v2;
pub mod write;

use std::fmt;

pub use args::Shape;

/// The largest integer magnitude a JavaScript number holds exactly (2^53).
///
/// Integral numbers within ±2^53 are written as MessagePack integers, as the
/// JavaScript encoder (notepack) does for numbers that are integers; anything
/// else is written as float64.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// How deeply arrays and maps may nest inside one argument.
///
/// The receiving adapter decodes MessagePack recursively on the JavaScript
/// stack, so the bound protects the Socket.IO servers; 128 matches
/// `serde_json`'s own recursion limit for `json` arguments.
pub const MAX_DEPTH: usize = 128;

/// The most messages one socket operation may publish on dialects whose
/// remote operations name one socket (and one room) per message: each is
/// handled by every server, so a single call must stay small.
pub const MAX_MESSAGES: usize = 1000;

/// The uid written into every packet: the reference emitter's `"emitter"`,
/// which can never collide with an adapter's own 6-character uid.
pub const EMITTER_UID: &str = "emitter";

/// The `parser` option of a target's adapter: how its servers decode the
/// event packets (`[uid, packet, opts]`) they read from Redis.
///
/// Only the classic `@socket.io/redis-adapter` (`createAdapter`, ≥ 8.0) and
/// `@socket.io/redis-emitter` (≥ 5.1) have this option; socket operations and
/// `ServerSideEmit` are JSON requests whatever it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parser {
    /// notepack.io MessagePack, the adapter's default.
    #[default]
    Msgpack,
    /// `{ encode: JSON.stringify, decode: JSON.parse }`: the packet as
    /// `JSON.stringify` writes it. What JSON cannot carry (binary,
    /// timestamps, integers beyond ±2^53) is refused.
    Json,
}

impl Parser {
    /// The option's config name.
    pub fn name(self) -> &'static str {
        match self {
            Parser::Msgpack => "msgpack",
            Parser::Json => "json",
        }
    }
}

/// Validated event arguments: `count` MessagePack values back to back.
#[derive(Debug, Clone, Default)]
pub struct EncodedArgs {
    /// How many values `bytes` holds.
    pub count: u32,
    /// The values.
    pub bytes: Vec<u8>,
    /// What the values contain.
    pub shape: Shape,
}

/// The delivery flags written into `opts.flags`; only set keys are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The `volatile` flag; written only when true.
    pub volatile: bool,
    /// The `compress` flag; written only when set.
    pub compress: Option<bool>,
}

/// An event to encode: what `Emit` and `Broadcast` carry after validation.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The namespace, with its leading `/`.
    pub nsp: &'a str,
    /// Rooms to reach (empty: the whole namespace), deduplicated.
    pub rooms: &'a [String],
    /// Rooms to skip, deduplicated.
    pub except: &'a [String],
    /// The event name.
    pub event: &'a str,
    /// The arguments.
    pub args: &'a EncodedArgs,
    /// Delivery flags.
    pub flags: Flags,
}

/// The socket selector of a socket operation.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Selector<'a> {
    /// Sockets in at least one of these rooms (empty: all sockets).
    pub rooms: &'a [String],
    /// Minus sockets in any of these rooms.
    pub except: &'a [String],
}

/// One Redis command of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `PUBLISH channel payload`; the reply counts receivers.
    Publish {
        /// The channel.
        channel: Vec<u8>,
        /// The exact payload bytes.
        payload: Vec<u8>,
    },
    /// `SPUBLISH channel payload` (sharded pub/sub, sent to the shard that
    /// owns the channel's slot); the reply counts receivers on that shard.
    SPublish {
        /// The shard channel.
        channel: Vec<u8>,
        /// The exact payload bytes.
        payload: Vec<u8>,
    },
    /// `XADD stream MAXLEN ~ maxlen * uid emitter nsp <nsp> type <kind> data <data>`;
    /// the reply is the new entry's id.
    XAdd {
        /// The stream key.
        stream: Vec<u8>,
        /// The approximate length the stream is trimmed to.
        maxlen: u64,
        /// The `nsp` field.
        nsp: String,
        /// The `type` field (written as a decimal string).
        kind: u8,
        /// The `data` field.
        data: Vec<u8>,
    },
}

impl Command {
    /// The channel (or stream key) the command writes to.
    pub fn channel(&self) -> &[u8] {
        match self {
            Command::Publish { channel, .. } | Command::SPublish { channel, .. } => channel,
            Command::XAdd { stream, .. } => stream,
        }
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        match self {
            Command::Publish { payload, .. } | Command::SPublish { payload, .. } => payload,
            Command::XAdd { data, .. } => data,
        }
    }
}

/// What to send to Redis for one operation: its commands, in order. Most
/// operations are one command; server stacks whose remote operations
/// address one socket (or one room) per message need several. They are
/// sent in order in one pipeline, and the reply sums their receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    commands: smallvec::SmallVec<[Command; 1]>,
}

impl From<Command> for Message {
    fn from(command: Command) -> Self {
        Self {
            commands: smallvec::smallvec![command],
        }
    }
}

impl FromIterator<Command> for Message {
    fn from_iter<I: IntoIterator<Item = Command>>(commands: I) -> Self {
        Self {
            commands: commands.into_iter().collect(),
        }
    }
}

impl Message {
    /// The commands, in sending order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The channel (or stream key) of the first command.
    pub fn channel(&self) -> &[u8] {
        self.commands.first().map_or(&[], Command::channel)
    }

    /// The payload of the first command.
    pub fn payload(&self) -> &[u8] {
        self.commands.first().map_or(&[], Command::payload)
    }

    /// The size of the largest payload among its commands.
    pub fn largest_payload(&self) -> usize {
        self.commands.iter().map(|c| c.payload().len()).max().unwrap_or(0)
    }
}

/// Why a dialect could not encode an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A field's value cannot be expressed in this dialect.
    Invalid {
        /// The field path (relative to the request).
        field: String,
        /// Why.
        description: String,
    },
    /// The operation does not exist on this dialect's server stack.
    Unsupported(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Invalid { field, description } => write!(f, "{field}: {description}"),
            CodecError::Unsupported(what) => f.write_str(what),
        }
    }
}

/// One wire format: how a Socket.IO server stack reads packets from Redis.
pub trait Dialect: Send + Sync + fmt::Debug {
    /// The dialect's config name.
    fn name(&self) -> &'static str;

    /// An event to clients (`Emit` / `Broadcast`).
    fn event(&self, event: &Event<'_>) -> Result<Message, CodecError>;

    /// The selected sockets join `rooms`.
    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError>;

    /// The selected sockets leave `rooms`.
    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError>;

    /// The selected sockets are disconnected.
    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError>;

    /// An event to the servers' handlers.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &EncodedArgs) -> Result<Message, CodecError>;
}

/// The codec of a configured target: its dialect with the target's key and
/// dialect options.
pub fn for_target(target: &crate::config::TargetConfig) -> Box<dyn Dialect> {
    use crate::config::DialectOptions as O;
    match &target.options {
        O::SocketIo { parser } => Box::new(socketio::SocketIo::with_parser(&target.key, *parser)),
        O::PythonSocketIo { channel, data_shape } => Box::new(python::PythonSocketIo::new(channel, *data_shape)),
        O::SocketIoV2 => Box::new(v2::SocketIoV2::new(&target.key)),
        O::SocketIoSharded { subscription_mode } => Box::new(sharded::Sharded::new(&target.key, *subscription_mode)),
        O::SocketIoStreams {
            stream_name,
            stream_count,
            maxlen,
        } => Box::new(streams::Streams::new(stream_name, *stream_count, *maxlen)),
    }
}
