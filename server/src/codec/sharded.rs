//! The `socketio-sharded` dialect: `@socket.io/redis-adapter`
//! `createShardedAdapter` (≥ 8.2, Redis ≥ 7 sharded pub/sub, socket.io 4).
//!
//! Every operation is one `ClusterMessage`
//! `{uid: "emitter", nsp, type, data}` sent with `SPUBLISH` (the servers
//! SSUBSCRIBE; a plain PUBLISH reaches nobody) on the namespace's main
//! channel `{key}#{nsp}#`, which every server subscribes whatever its
//! `subscriptionMode` (docs/protocol.md §4). The message is JSON, or
//! MessagePack when an argument holds binary (or a timestamp), as the
//! adapter's own `encode` does.
//!
//! Room channels `{key}#{nsp}#{room}#` are only subscribed by servers whose
//! adapter runs with `subscriptionMode: "dynamic"` (public rooms) or
//! `"dynamic-private"` (all rooms), and only by servers that have the room.
//! They are used for an event to exactly one room when the target declares
//! that mode ([`SubscriptionMode`]), with the adapter's own rule
//! (`computeChannel`): in `dynamic` mode, not for a room that looks like a
//! socket id (20 UTF-16 units). The default, `static`, always publishes on the
//! main channel, which is correct for every mode; declaring a dynamic mode
//! the servers do not run loses those events.

use serde::Deserialize;

use super::{
    CodecError, Command, Dialect, EMITTER_UID, EncodedArgs, Event, Message, Selector,
    cluster_adapter::{self as ca, Format, OptsOrder, message_type},
    write,
};

/// The servers' `subscriptionMode`, as far as the publisher must know it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionMode {
    /// Publish everything on the main channel (correct for every server
    /// mode; the gateway's default).
    #[default]
    Static,
    /// Servers subscribe a channel per public room: a one-room event that
    /// is not for a socket id goes to the room's channel.
    Dynamic,
    /// Servers subscribe a channel per room, socket-id rooms included: every
    /// one-room event goes to the room's channel.
    DynamicPrivate,
}

/// The length of a Socket.IO 4 socket id in UTF-16 units; the adapter's
/// `looksLikeASocketId` is `room.length === 20`.
const SOCKET_ID_UTF16_LEN: usize = 20;

/// The `socketio-sharded` dialect for one channel prefix.
#[derive(Debug, Clone)]
pub struct Sharded {
    prefix: String,
    mode: SubscriptionMode,
}

impl Sharded {
    /// The dialect for the adapter's `channelPrefix` (`socket.io` by
    /// default) and the servers' subscription mode.
    pub fn new(channel_prefix: &str, mode: SubscriptionMode) -> Self {
        Self {
            prefix: format!("{channel_prefix}#"),
            mode,
        }
    }

    /// The main channel of a namespace (`{key}#{nsp}#`).
    pub fn main_channel(&self, nsp: &str) -> Vec<u8> {
        let mut ch = Vec::with_capacity(self.prefix.len() + nsp.len() + 1);
        ch.extend_from_slice(self.prefix.as_bytes());
        ch.extend_from_slice(nsp.as_bytes());
        ch.push(b'#');
        ch
    }

    /// The channel of an event to `rooms`: the room's own channel when the
    /// configured mode has servers subscribe it, the main channel otherwise.
    pub fn event_channel(&self, nsp: &str, rooms: &[String]) -> Vec<u8> {
        let mut ch = self.main_channel(nsp);
        if let [room] = rooms {
            let room_channel = match self.mode {
                SubscriptionMode::Static => false,
                SubscriptionMode::Dynamic => room.encode_utf16().count() != SOCKET_ID_UTF16_LEN,
                SubscriptionMode::DynamicPrivate => true,
            };
            if room_channel {
                ch.extend_from_slice(room.as_bytes());
                ch.push(b'#');
            }
        }
        ch
    }

    fn message(&self, nsp: &str, channel: Vec<u8>, kind: u8, format: Format, data: &[u8]) -> Command {
        let mut payload = Vec::with_capacity(48 + nsp.len() + data.len());
        match format {
            Format::Json => {
                payload.extend_from_slice(br#"{"uid":"#);
                write::json_str(&mut payload, EMITTER_UID);
                payload.extend_from_slice(br#","nsp":"#);
                write::json_str(&mut payload, nsp);
                payload.extend_from_slice(br#","type":"#);
                payload.extend_from_slice(kind.to_string().as_bytes());
                payload.extend_from_slice(br#","data":"#);
                payload.extend_from_slice(data);
                payload.push(b'}');
            }
            Format::Msgpack => {
                write::mp_map(&mut payload, 4);
                write::mp_str(&mut payload, "uid");
                write::mp_str(&mut payload, EMITTER_UID);
                write::mp_str(&mut payload, "nsp");
                write::mp_str(&mut payload, nsp);
                write::mp_str(&mut payload, "type");
                // Message types are positive fixints.
                payload.push(kind);
                write::mp_str(&mut payload, "data");
                payload.extend_from_slice(data);
            }
        }
        Command::SPublish { channel, payload }
    }
}

impl Dialect for Sharded {
    fn name(&self) -> &'static str {
        "socketio-sharded"
    }

    fn event(&self, e: &Event<'_>) -> Result<Message, CodecError> {
        let format = Format::for_args(e.args);
        let mut data = Vec::new();
        ca::broadcast_data(&mut data, format, OptsOrder::RoomsExceptFlags, e)?;
        let channel = self.event_channel(e.nsp, e.rooms);
        Ok(self
            .message(e.nsp, channel, message_type::BROADCAST, format, &data)
            .into())
    }

    fn sockets_join(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::rooms_data(&mut data, selector, rooms);
        Ok(self
            .message(
                nsp,
                self.main_channel(nsp),
                message_type::SOCKETS_JOIN,
                Format::Json,
                &data,
            )
            .into())
    }

    fn sockets_leave(&self, nsp: &str, selector: Selector<'_>, rooms: &[String]) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::rooms_data(&mut data, selector, rooms);
        Ok(self
            .message(
                nsp,
                self.main_channel(nsp),
                message_type::SOCKETS_LEAVE,
                Format::Json,
                &data,
            )
            .into())
    }

    fn disconnect_sockets(&self, nsp: &str, selector: Selector<'_>, close: bool) -> Result<Message, CodecError> {
        let mut data = Vec::new();
        ca::disconnect_data(&mut data, selector, close);
        Ok(self
            .message(
                nsp,
                self.main_channel(nsp),
                message_type::DISCONNECT_SOCKETS,
                Format::Json,
                &data,
            )
            .into())
    }

    /// SERVER_SIDE_EMIT without `requestId`; binary arguments travel as
    /// MessagePack, which the sharded adapter decodes.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &EncodedArgs) -> Result<Message, CodecError> {
        let format = Format::for_args(args);
        let mut data = Vec::new();
        ca::server_side_emit_data(&mut data, format, event, args)?;
        Ok(self
            .message(
                nsp,
                self.main_channel(nsp),
                message_type::SERVER_SIDE_EMIT,
                format,
                &data,
            )
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_follow_the_adapters_compute_channel() {
        let rooms = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let sid = "AAAAAAAAAAAAAAAAAAAA"; // 20 characters
        let st = Sharded::new("socket.io", SubscriptionMode::Static);
        assert_eq!(st.event_channel("/", &rooms(&["r"])), b"socket.io#/#");
        let dy = Sharded::new("socket.io", SubscriptionMode::Dynamic);
        assert_eq!(dy.event_channel("/", &rooms(&["r"])), b"socket.io#/#r#");
        assert_eq!(dy.event_channel("/", &rooms(&[sid])), b"socket.io#/#");
        assert_eq!(dy.event_channel("/", &rooms(&["a", "b"])), b"socket.io#/#");
        assert_eq!(dy.event_channel("/", &[]), b"socket.io#/#");
        // 20 UTF-16 units, 40 UTF-8 bytes: looks like a socket id to the adapter.
        let wide = "é".repeat(20);
        assert_eq!(dy.event_channel("/", &rooms(&[&wide])), b"socket.io#/#");
        // 10 characters but 20 UTF-16 units (surrogate pairs).
        let astral = "🌸".repeat(10);
        assert_eq!(dy.event_channel("/", &rooms(&[&astral])), b"socket.io#/#");
        let dp = Sharded::new("app", SubscriptionMode::DynamicPrivate);
        assert_eq!(
            dp.event_channel("/x", &rooms(&[sid])),
            format!("app#/x#{sid}#").as_bytes()
        );
    }
}
