//! The `socketio-v2` dialect's bytes. Its event packets are the reference
//! emitter's (`vectors/socketio-redis-emitter.json`) with one difference
//! socket.io 2 needs: packet type 5 (`BINARY_EVENT`) when an argument holds
//! binary, as socket.io-emitter 3.1.2 (the socket.io 2 line) wrote it. Its
//! requests are socket.io-redis 5.4's JSON (`remoteJoin`, `remoteLeave`,
//! `remoteDisconnect`, `customRequest`), one socket id each.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::{
    Config, Gateway,
    pb::{self, argument::Kind},
    service::Operation,
};
use prost_types::{Value, value};

fn s(v: &str) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Value(Value {
            kind: Some(value::Kind::StringValue(v.into())),
        })),
    }
}
fn raw(kind: Kind) -> pb::Argument {
    pb::Argument { kind: Some(kind) }
}
fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Offset of the packet type in `[uid, {type, ...}, opts]`: fixarray(1),
/// "emitter"(8), fixmap(1), "type"(5).
const TYPE_OFFSET: usize = 15;

const SID: &str = "Ab-_0123456789abcdef";

fn gateway() -> Gateway {
    let toml = "[[targets]]\nname = \"default\"\ndialect = \"socketio-v2\"\n";
    Gateway::new(&Config::from_toml(toml).unwrap()).unwrap()
}

fn vector(name: &str) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/socketio-redis-emitter.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    let p = &case["published"][0];
    (
        p["channel"].as_str().unwrap().to_owned(),
        hex::decode(p["hex"].as_str().unwrap()).unwrap(),
    )
}

#[test]
fn events_are_the_emitters_with_binary_event_for_binary() {
    let gw = gateway();
    let emit = |rooms: &[&str], event: &str, args| pb::EmitRequest {
        rooms: strs(rooms),
        event: event.into(),
        args,
        ..Default::default()
    };
    let broadcast = |nsp: &str, event: &str, args| pb::BroadcastRequest {
        namespace: nsp.into(),
        event: event.into(),
        args,
        ..Default::default()
    };
    let reqs = [
        (
            "broadcast_root_string",
            None,
            Some(broadcast("/", "chat message", vec![s("hello")])),
            false,
        ),
        (
            "room_single",
            Some(emit(&["room1"], "chat message", vec![s("hello")])),
            None,
            false,
        ),
        (
            "namespace_admin",
            None,
            Some(broadcast("/admin", "alert", vec![s("x")])),
            false,
        ),
        (
            "binary",
            None,
            Some(broadcast(
                "/",
                "file",
                vec![raw(Kind::Binary(vec![0, 1, 2, 253, 254, 255]))],
            )),
            true,
        ),
        (
            "binary_in_object",
            Some(emit(
                &["room1"],
                "upload",
                // {name: "a.bin", data: <bin "abc">}
                vec![raw(Kind::Msgpack(
                    hex::decode("82a46e616d65a5612e62696ea464617461c403616263").unwrap(),
                ))],
            )),
            None,
            true,
        ),
    ];
    for (name, emit_req, broadcast_req, binary) in &reqs {
        let op = match (emit_req, broadcast_req) {
            (Some(e), _) => Operation::Emit(e),
            (_, Some(b)) => Operation::Broadcast(b),
            _ => unreachable!(),
        };
        let encoded = gw.encode(op).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (channel, mut want) = vector(name);
        assert_eq!(want[TYPE_OFFSET], 2, "{name}: the emitter writes EVENT");
        if *binary {
            want[TYPE_OFFSET] = 5;
        }
        assert_eq!(String::from_utf8_lossy(encoded.message.channel()), channel, "{name}");
        assert_eq!(hex::encode(encoded.message.payload()), hex::encode(&want), "{name}");
    }
}

fn requests(gw: &Gateway, op: Operation<'_>) -> Vec<(String, String)> {
    let encoded = gw.encode(op).unwrap();
    encoded
        .message
        .commands()
        .iter()
        .map(|p| {
            (
                String::from_utf8(p.channel().to_vec()).unwrap(),
                String::from_utf8(p.payload().to_vec()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn socket_operations_are_socket_io_redis_5_requests() {
    let gw = gateway();
    let admin_sid = format!("/admin#{SID}");
    assert_eq!(
        requests(
            &gw,
            Operation::SocketsJoin(&pb::SocketsJoinRequest {
                namespace: "/admin".into(),
                rooms: vec![admin_sid.clone()],
                join_rooms: strs(&["r1", "部屋"]),
                ..Default::default()
            })
        ),
        [
            (
                "socket.io-request#/admin#".to_owned(),
                format!(r#"{{"requestid":"emitter","type":3,"sid":"{admin_sid}","room":"r1"}}"#)
            ),
            (
                "socket.io-request#/admin#".to_owned(),
                format!(r#"{{"requestid":"emitter","type":3,"sid":"{admin_sid}","room":"部屋"}}"#)
            ),
        ]
    );
    assert_eq!(
        requests(
            &gw,
            Operation::SocketsLeave(&pb::SocketsLeaveRequest {
                rooms: vec![SID.into()],
                leave_rooms: strs(&["r1"]),
                ..Default::default()
            })
        ),
        [(
            "socket.io-request#/#".to_owned(),
            format!(r#"{{"requestid":"emitter","type":4,"sid":"{SID}","room":"r1"}}"#)
        )]
    );
    assert_eq!(
        requests(
            &gw,
            Operation::DisconnectSockets(&pb::DisconnectSocketsRequest {
                rooms: vec![SID.into()],
                ..Default::default()
            })
        ),
        [(
            "socket.io-request#/#".to_owned(),
            format!(r#"{{"requestid":"emitter","type":6,"sid":"{SID}","close":false}}"#)
        )]
    );
    assert_eq!(
        requests(
            &gw,
            Operation::ServerSideEmit(&pb::ServerSideEmitRequest {
                event: "hello".into(),
                args: vec![s("world"), raw(Kind::Json("{\"n\":1}".into()))],
                ..Default::default()
            })
        ),
        [(
            "socket.io-request#/#".to_owned(),
            r#"{"requestid":"emitter","type":5,"data":["hello","world",{"n":1}]}"#.to_owned()
        )]
    );
}

fn violation_fields(e: emitgate::Error) -> Vec<String> {
    match e {
        emitgate::Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
        other => panic!("not INVALID_ARGUMENT: {other}"),
    }
}

#[test]
fn what_socket_io_2_cannot_express_is_refused() {
    let gw = gateway();
    let e = gw
        .encode(Operation::Broadcast(&pb::BroadcastRequest {
            event: "e".into(),
            except_rooms: strs(&["muted"]),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["except_rooms"]);
    // A socket id of another namespace is not one of this namespace's.
    let e = gw
        .encode(Operation::Broadcast(&pb::BroadcastRequest {
            namespace: "/admin".into(),
            event: "e".into(),
            except_rooms: strs(&[SID]),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["except_rooms"]);
    let e = gw
        .encode(Operation::Emit(&pb::EmitRequest {
            rooms: strs(&["r"]),
            event: "e".into(),
            args: vec![s("x"), raw(Kind::Msgpack(hex::decode("d6ff6553f100").unwrap()))],
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["args[1]"]);
    let e = gw
        .encode(Operation::SocketsJoin(&pb::SocketsJoinRequest {
            join_rooms: strs(&["x"]),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["rooms"]);
    let e = gw
        .encode(Operation::DisconnectSockets(&pb::DisconnectSocketsRequest {
            rooms: strs(&["room1"]),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["rooms"]);
}
