//! The `socketio-sharded` and `socketio-streams` codecs against canonical
//! bytes, through the gateway's validate → encode path (no Redis).
//!
//! The expected bytes are the adapters' own forms (docs/protocol.md):
//! - §4: the sharded adapter's canonical JSON ClusterMessage and the
//!   MessagePack one for `emit("file", <bin 010203>)` to `room1`;
//! - §4, as a sharded server publishes them: the `data` of SOCKETS_JOIN (4),
//!   DISCONNECT_SOCKETS (6) and SERVER_SIDE_EMIT (9), here inside the
//!   emitter's envelope `{"uid":"emitter","nsp":…,"type":…,"data":…}`;
//! - §5: `@socket.io/redis-streams-emitter`'s canonical XADD entry, its base64
//!   MessagePack entry for `["file", <bin 010203>]`, the `data` of a type 4
//!   entry as a server writes it, and the `hashCode` stream examples.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use base64::Engine;
use emitgate::{
    Config, Gateway,
    codec::{Command, Message},
    pb::{self, argument::Kind},
    service::Operation,
};
use prost_types::{Value, value};

const CONFIG: &str = r#"
[[targets]]
name = "sharded"
dialect = "socketio-sharded"

[[targets]]
name = "dynamic"
dialect = "socketio-sharded"
subscription_mode = "dynamic"

[[targets]]
name = "private"
dialect = "socketio-sharded"
subscription_mode = "dynamic-private"
key = "app"

[[targets]]
name = "streams"
dialect = "socketio-streams"

[[targets]]
name = "streams4"
dialect = "socketio-streams"
stream_name = "socket.io"
stream_count = 4
maxlen = 500
"#;

fn gateway() -> Gateway {
    // The clients connect lazily: nothing here touches the network.
    Gateway::new(&Config::from_toml(CONFIG).unwrap()).unwrap()
}

fn s(v: &str) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Value(Value {
            kind: Some(value::Kind::StringValue(v.into())),
        })),
    }
}

fn bin(b: &[u8]) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Binary(b.to_vec())),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn broadcast(target: &str, nsp: &str, event: &str, args: Vec<pb::Argument>) -> pb::BroadcastRequest {
    pb::BroadcastRequest {
        target: target.into(),
        namespace: nsp.into(),
        event: event.into(),
        args,
        ..Default::default()
    }
}

fn emit(target: &str, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        target: target.into(),
        rooms: strs(rooms),
        event: event.into(),
        args,
        ..Default::default()
    }
}

fn encode(gw: &Gateway, op: Operation<'_>) -> Message {
    gw.encode(op).unwrap().message
}

/// `(command, channel, payload)` of a pub/sub message.
fn spublish(m: &Message) -> (&'static str, String, Vec<u8>) {
    match &m.commands()[0] {
        Command::SPublish { channel, payload } => {
            ("SPUBLISH", String::from_utf8(channel.clone()).unwrap(), payload.clone())
        }
        other => panic!("expected SPUBLISH, got {other:?}"),
    }
}

/// `(stream, maxlen, nsp, type, data)` of a stream entry.
fn xadd(m: &Message) -> (String, u64, String, u8, String) {
    match &m.commands()[0] {
        Command::XAdd {
            stream,
            maxlen,
            nsp,
            kind,
            data,
        } => (
            String::from_utf8(stream.clone()).unwrap(),
            *maxlen,
            nsp.clone(),
            *kind,
            String::from_utf8(data.clone()).unwrap(),
        ),
        other => panic!("expected XADD, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// socketio-sharded

/// §2.6 item 2, the canonical JSON ClusterMessage.
const SHARDED_JSON: &str = r#"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["chat message","hello"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}}"#;

/// §2.6 item 2, `emit("file", <bin 010203>)` to `room1` as MessagePack.
const SHARDED_MSGPACK_HEX: &str = "84a3756964a7656d6974746572a36e7370a12fa47479706503a46461746182a67061636b657483a47479706502a46461746192a466696c65c403010203a36e7370a12fa46f70747383a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380";

#[test]
fn sharded_broadcast_is_the_canonical_json_cluster_message_on_the_main_channel() {
    let gw = gateway();
    let req = broadcast("sharded", "", "chat message", vec![s("hello")]);
    let (cmd, channel, payload) = spublish(&encode(&gw, Operation::Broadcast(&req)));
    assert_eq!((cmd, channel.as_str()), ("SPUBLISH", "socket.io#/#"));
    assert_eq!(String::from_utf8(payload).unwrap(), SHARDED_JSON);
}

#[test]
fn sharded_binary_is_the_canonical_msgpack_message() {
    let gw = gateway();
    let req = emit("sharded", &["room1"], "file", vec![bin(&[1, 2, 3])]);
    let (_, channel, payload) = spublish(&encode(&gw, Operation::Emit(&req)));
    // static (the default): the main channel, which every server subscribes.
    assert_eq!(channel, "socket.io#/#");
    assert_eq!(hex::encode(payload), SHARDED_MSGPACK_HEX);
    // dynamic: the room's own channel, same bytes.
    let req = emit("dynamic", &["room1"], "file", vec![bin(&[1, 2, 3])]);
    let (_, channel, payload) = spublish(&encode(&gw, Operation::Emit(&req)));
    assert_eq!(channel, "socket.io#/#room1#");
    assert_eq!(hex::encode(payload), SHARDED_MSGPACK_HEX);
}

#[test]
fn sharded_room_channels_follow_the_subscription_mode() {
    let gw = gateway();
    let sid = "Xy3_abcdefghijklmnop"; // 20 characters: looks like a socket id
    let channel = |target: &str, rooms: &[&str]| {
        let req = emit(target, rooms, "e", vec![]);
        spublish(&encode(&gw, Operation::Emit(&req))).1
    };
    assert_eq!(channel("sharded", &["r"]), "socket.io#/#");
    assert_eq!(channel("dynamic", &["r"]), "socket.io#/#r#");
    assert_eq!(channel("dynamic", &[sid]), "socket.io#/#");
    assert_eq!(channel("dynamic", &["r", "s"]), "socket.io#/#");
    assert_eq!(channel("private", &[sid]), format!("app#/#{sid}#"));
    // Broadcasts and socket operations always use the main channel.
    let b = broadcast("dynamic", "/admin", "e", vec![]);
    assert_eq!(spublish(&encode(&gw, Operation::Broadcast(&b))).1, "socket.io#/admin#");
    let j = pb::SocketsJoinRequest {
        target: "private".into(),
        rooms: strs(&["r"]),
        join_rooms: strs(&["s"]),
        ..Default::default()
    };
    assert_eq!(spublish(&encode(&gw, Operation::SocketsJoin(&j))).1, "app#/#");
}

#[test]
fn sharded_flags_and_except() {
    let gw = gateway();
    let req = pb::EmitRequest {
        except_rooms: strs(&["muted"]),
        flags: Some(pb::EmitFlags {
            volatile: false,
            compress: Some(false),
        }),
        ..emit("sharded", &["a", "b"], "m", vec![])
    };
    let payload = spublish(&encode(&gw, Operation::Emit(&req))).2;
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        r#"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["m"],"nsp":"/"},"opts":{"rooms":["a","b"],"except":["muted"],"flags":{"compress":false}}}}"#,
        "volatile:false is never written (it would count as volatile)"
    );
}

#[test]
fn sharded_socket_operations_and_server_side_emit() {
    let gw = gateway();
    let join = pb::SocketsJoinRequest {
        target: "sharded".into(),
        rooms: strs(&["room1"]),
        join_rooms: strs(&["room3"]),
        ..Default::default()
    };
    let leave = pb::SocketsLeaveRequest {
        target: "sharded".into(),
        except_rooms: strs(&["vip"]),
        leave_rooms: strs(&["room2"]),
        ..Default::default()
    };
    let disconnect = pb::DisconnectSocketsRequest {
        target: "sharded".into(),
        close: true,
        ..Default::default()
    };
    let sse = pb::ServerSideEmitRequest {
        target: "sharded".into(),
        event: "hello".into(),
        args: vec![s("world")],
        ..Default::default()
    };
    let cases: Vec<(Operation<'_>, &str)> = vec![
        (
            Operation::SocketsJoin(&join),
            r#"{"uid":"emitter","nsp":"/","type":4,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room3"]}}"#,
        ),
        (
            Operation::SocketsLeave(&leave),
            r#"{"uid":"emitter","nsp":"/","type":5,"data":{"opts":{"rooms":[],"except":["vip"],"flags":{}},"rooms":["room2"]}}"#,
        ),
        (
            Operation::DisconnectSockets(&disconnect),
            r#"{"uid":"emitter","nsp":"/","type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":true}}"#,
        ),
        (
            Operation::ServerSideEmit(&sse),
            r#"{"uid":"emitter","nsp":"/","type":9,"data":{"packet":["hello","world"]}}"#,
        ),
    ];
    for (op, want) in cases {
        let (_, channel, payload) = spublish(&encode(&gw, op));
        assert_eq!(channel, "socket.io#/#");
        assert_eq!(String::from_utf8(payload).unwrap(), want);
    }
}

#[test]
fn sharded_server_side_emit_with_binary_is_msgpack() {
    let gw = gateway();
    let sse = pb::ServerSideEmitRequest {
        target: "sharded".into(),
        namespace: "/admin".into(),
        event: "blob".into(),
        args: vec![bin(&[9])],
        ..Default::default()
    };
    let payload = spublish(&encode(&gw, Operation::ServerSideEmit(&sse))).2;
    // {uid:"emitter", nsp:"/admin", type:9, data:{packet:["blob", <bin 09>]}}
    assert_eq!(
        hex::encode(payload),
        "84a3756964a7656d6974746572a36e7370a62f61646d696ea47479706509a46461746181a67061636b657492a4626c6f62c40109"
    );
}

// ---------------------------------------------------------------------------
// socketio-streams

/// §3, `@socket.io/redis-streams-emitter`'s canonical entry's `data`.
const STREAMS_JSON: &str =
    r#"{"packet":{"type":2,"data":["chat message","hello"],"nsp":"/"},"opts":{"rooms":[],"flags":{},"except":[]}}"#;

/// §3, its `data` for `emit("file", <bin 010203>)`.
const STREAMS_BINARY_B64: &str =
    "gqZwYWNrZXSDpHR5cGUCpGRhdGGSpGZpbGXEAwECA6Nuc3ChL6RvcHRzg6Vyb29tc5ClZmxhZ3OApmV4Y2VwdJA=";

#[test]
fn streams_broadcast_is_the_canonical_entry() {
    let gw = gateway();
    let req = broadcast("streams", "/", "chat message", vec![s("hello")]);
    let entry = xadd(&encode(&gw, Operation::Broadcast(&req)));
    assert_eq!(entry, ("socket.io".into(), 10_000, "/".into(), 3, STREAMS_JSON.into()));
}

#[test]
fn streams_binary_is_base64_msgpack() {
    let gw = gateway();
    let req = broadcast("streams", "/", "file", vec![bin(&[1, 2, 3])]);
    let (_, _, _, kind, data) = xadd(&encode(&gw, Operation::Broadcast(&req)));
    assert_eq!(kind, 3);
    assert_eq!(data, STREAMS_BINARY_B64);
    // The base64 alphabet never starts with `{`: readers tell the forms apart.
    let raw = base64::engine::general_purpose::STANDARD.decode(&data).unwrap();
    assert_eq!(raw[0], 0x82);
}

#[test]
fn streams_socket_operations_and_server_side_emit() {
    let gw = gateway();
    let join = pb::SocketsJoinRequest {
        target: "streams".into(),
        rooms: strs(&["room1"]),
        join_rooms: strs(&["room3"]),
        ..Default::default()
    };
    let entry = xadd(&encode(&gw, Operation::SocketsJoin(&join)));
    assert_eq!(
        entry,
        (
            "socket.io".into(),
            10_000,
            "/".into(),
            4,
            r#"{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room3"]}"#.into()
        )
    );
    let leave = pb::SocketsLeaveRequest {
        target: "streams".into(),
        leave_rooms: strs(&["room3"]),
        ..Default::default()
    };
    assert_eq!(xadd(&encode(&gw, Operation::SocketsLeave(&leave))).3, 5);
    let disconnect = pb::DisconnectSocketsRequest {
        target: "streams".into(),
        namespace: "admin".into(),
        rooms: strs(&["room1"]),
        ..Default::default()
    };
    let entry = xadd(&encode(&gw, Operation::DisconnectSockets(&disconnect)));
    assert_eq!(
        (entry.2.as_str(), entry.3, entry.4.as_str()),
        (
            "/admin",
            6,
            r#"{"opts":{"rooms":["room1"],"except":[],"flags":{}},"close":false}"#
        )
    );
    let sse = pb::ServerSideEmitRequest {
        target: "streams".into(),
        event: "hello".into(),
        args: vec![s("world")],
        ..Default::default()
    };
    let entry = xadd(&encode(&gw, Operation::ServerSideEmit(&sse)));
    assert_eq!((entry.3, entry.4.as_str()), (9, r#"{"packet":["hello","world"]}"#));
}

#[test]
fn streams_are_chosen_by_the_adapters_hash_code() {
    let gw = gateway();
    let stream = |nsp: &str| {
        let req = broadcast("streams4", nsp, "e", vec![]);
        let (stream, maxlen, ..) = xadd(&encode(&gw, Operation::Broadcast(&req)));
        assert_eq!(maxlen, 500);
        stream
    };
    assert_eq!(stream("/"), "socket.io-3");
    assert_eq!(stream("/admin"), "socket.io-0");
    assert_eq!(stream("/a-very-long-namespace-name-xyz"), "socket.io--2");
}

// ---------------------------------------------------------------------------
// Configuration of these dialects

#[test]
fn dialect_options_are_validated_by_name() {
    let err = |toml: &str| Config::from_toml(toml).unwrap_err();
    let e = err("[[targets]]\nname = \"x\"\nsubscription_mode = \"dynamic\"");
    assert_eq!(e.setting, "targets[0].subscription_mode");
    let e = err("[[targets]]\nname = \"x\"\ndialect = \"socketio-sharded\"\nsubscription_mode = \"sometimes\"");
    assert!(e.message.contains("dynamic-private"), "{e}");
    let e = err("[[targets]]\nname = \"x\"\ndialect = \"socketio-sharded\"\nmaxlen = 5");
    assert_eq!(e.setting, "targets[0].maxlen");
    let e = err("[[targets]]\nname = \"x\"\ndialect = \"socketio-streams\"\nstream_count = 0");
    assert_eq!(e.setting, "targets[0].stream_count");
    let e = err("[[targets]]\nname = \"x\"\ndialect = \"socketio-streams\"\nstream_name = \"\"");
    assert_eq!(e.setting, "targets[0].stream_name");
    let e = err("[[targets]]\nname = \"x\"\ndialect = \"socketio-streams\"\nmaxlen = 0");
    assert_eq!(e.setting, "targets[0].maxlen");
    let e = err("[[targets]]\nname = \"x\"\ncluster_seeds = [\"redis://a:1\"]");
    assert_eq!(e.setting, "targets[0].cluster_seeds");
    let e = err("[[targets]]\nname = \"x\"\ncluster = true\ncluster_seeds = [\"http://a:1\"]");
    assert_eq!(e.setting, "targets[0].cluster_seeds[0]");
    let e = err("[[targets]]\nname = \"x\"\ncluster = true\nredis_url = \"unix:///tmp/r.sock\"");
    assert_eq!(e.setting, "targets[0].redis_url");

    let c = Config::from_toml(
        "[[targets]]\nname = \"c\"\ndialect = \"socketio-sharded\"\nredis_url = \"redis://10.0.0.1:7000\"\n\
         cluster = true\ncluster_seeds = [\"redis://10.0.0.2:7000\"]",
    )
    .unwrap();
    assert!(c.targets["c"].cluster);
    assert_eq!(c.targets["c"].cluster_seeds, ["redis://10.0.0.2:7000"]);
    // A cluster target is built without connecting.
    Gateway::new(&c).unwrap();
}
