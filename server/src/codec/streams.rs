//! The `socketio-streams` dialect: `@socket.io/redis-streams-adapter` 0.3.x
//! (socket.io 4, Redis ≥ 5).
//!
//! Every operation is one stream entry, written as
//! `XADD <stream> MAXLEN ~ <maxlen> * uid emitter nsp <nsp> type <type> data <data>`
//! (docs/protocol.md §5), the layout of `@socket.io/redis-streams-emitter`:
//! `type` is the `ClusterAdapter` message type as a decimal string and
//! `data` is JSON text, or base64 of MessagePack when an argument holds
//! binary (or a timestamp). The servers read every type from the stream,
//! SERVER_SIDE_EMIT (9) included.
//!
//! A namespace's stream is `stream_name`, or `stream_name-<i>` when the
//! servers run with `streamCount > 1`, where `i` is the adapter's
//! `hashCode(nsp) % streamCount` with JavaScript semantics ([`stream_for`]).
//! An entry has no receiver count: Redis answers the entry id, which the
//! gateway returns as `stream_id`. When the servers enable connection-state
//! recovery, each non-volatile event reaches the clients with that id
//! appended as the last argument (their recovery offset).

use base64::Engine;

use super::{
    CodecError, Command, Dialect, Event, Message, Selector,
    cluster_adapter::{self as ca, Format, OptsOrder, message_type},
};
use crate::codec::EncodedArgs;

/// The adapter's default `streamName`.
pub const DEFAULT_STREAM_NAME: &str = "socket.io";
/// The adapter's default `streamCount`.
pub const DEFAULT_STREAM_COUNT: u32 = 1;
/// The adapter's default `maxLen`: streams are trimmed to about this many
/// entries (`MAXLEN ~`), which bounds how far back a recovering client can
/// catch up.
pub const DEFAULT_MAXLEN: u64 = 10_000;

/// Java's `String.hashCode` as the adapter computes it: over UTF-16 code
/// units, `h = h * 31 + unit` wrapping at 32 bits.
pub fn hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The stream a namespace's entries go to. With several streams the suffix
/// is `hashCode(nsp) % count` with the dividend's sign (JavaScript `%`, and
/// Rust's `%` on `i32`), so it may be negative: `socket.io--2`.
pub fn stream_for(name: &str, count: u32, nsp: &str) -> String {
    if count <= 1 {
        return name.to_owned();
    }
    // Config validation bounds the count to i32; a larger one saturates.
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    format!("{name}-{}", hash_code(nsp) % count)
}

/// The `socketio-streams` dialect for one stream configuration.
#[derive(Debug, Clone)]
pub struct Streams {
    name: String,
    count: u32,
    maxlen: u64,
}

impl Streams {
    /// The dialect for the adapter's `streamName`, `streamCount` and
    /// `maxLen`.
    pub fn new(name: &str, count: u32, maxlen: u64) -> Self {
        Self {
            name: name.to_owned(),
            count,
            maxlen,
        }
    }

    fn entry(&self, nsp: &str, kind: u8, format: Format, data: Vec<u8>) -> Command {
        let data = match format {
            Format::Json => data,
            Format::Msgpack => base64::engine::general_purpose::STANDARD.encode(&data).into_bytes(),
        };
        Command::XAdd {
            stream: stream_for(&self.name, self.count, nsp).into_bytes(),
            maxlen: self.maxlen,
            nsp: nsp.to_owned(),
            kind,
            data,
        }
    }
}

impl Dialect for Streams {
    fn name(&self) -> &'static str {
        "socketio-streams"
    }

    fn event(&self, e: &Event<'_>) -> Result<Message, CodecError> {
        let format = Format::for_args(e.args);
        let mut data = Vec::new();
        ca::broadcast_data(&mut data, format, OptsOrder::RoomsFlagsExcept, e)?;
        Ok(self.entry(e.nsp, message_type::BROADCAST, format, data).into())
    }

    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::rooms_data(&mut data, selector, rooms);
        Ok(self.entry(nsp, message_type::SOCKETS_JOIN, Format::Json, data).into())
    }

    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::rooms_data(&mut data, selector, rooms);
        Ok(self.entry(nsp, message_type::SOCKETS_LEAVE, Format::Json, data).into())
    }

    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::disconnect_data(&mut data, selector, close);
        Ok(self
            .entry(nsp, message_type::DISCONNECT_SOCKETS, Format::Json, data)
            .into())
    }

    /// SERVER_SIDE_EMIT into the stream: the adapter sends its own through
    /// pub/sub, but its stream reader dispatches every type.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &EncodedArgs) -> Result<Message, CodecError> {
        let format = Format::for_args(args);
        let mut data = Vec::new();
        ca::server_side_emit_data(&mut data, format, event, args)?;
        Ok(self.entry(nsp, message_type::SERVER_SIDE_EMIT, format, data).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_code_matches_the_adapter() {
        assert_eq!(hash_code("/"), 47);
        assert_eq!(hash_code("/admin"), 1_438_238_848);
        assert_eq!(hash_code(""), 0);
    }

    #[test]
    fn stream_names_keep_the_sign_of_the_hash() {
        assert_eq!(stream_for("socket.io", 1, "/admin"), "socket.io");
        assert_eq!(stream_for("socket.io", 4, "/"), "socket.io-3");
        assert_eq!(stream_for("socket.io", 4, "/admin"), "socket.io-0");
        assert_eq!(
            stream_for("socket.io", 4, "/a-very-long-namespace-name-xyz"),
            "socket.io--2"
        );
    }

    #[test]
    fn hashing_is_over_utf16_units() {
        // U+1F338 is the surrogate pair D83C DF38.
        let expected = 47i32
            .wrapping_mul(31)
            .wrapping_add(0xD83C)
            .wrapping_mul(31)
            .wrapping_add(0xDF38);
        assert_eq!(hash_code("/🌸"), expected);
    }
}
