//! The `python-socketio` dialect against python-socketio's own output: every
//! case of `vectors/python-socketio-redis-manager.json` (captured from
//! python-socketio 5.18.1's `RedisManager`) is encoded through the gateway's
//! validate → encode path (no Redis) and must match channel and bytes,
//! `host_id` aside (it is random per manager).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::collections::BTreeMap;

use emitgate::{
    Config, Gateway,
    pb::{self, argument::Kind},
    service::Operation,
};
use prost_types::{Struct, Value, value};
use tonic::Code;

fn s(v: &str) -> pb::Argument {
    val(value::Kind::StringValue(v.into()))
}
fn n(v: f64) -> pb::Argument {
    val(value::Kind::NumberValue(v))
}
fn val(kind: value::Kind) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Value(Value { kind: Some(kind) })),
    }
}
fn json(text: &str) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Json(text.into())),
    }
}
fn bin(b: &[u8]) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Binary(b.to_vec())),
    }
}
fn msgpack(hex: &str) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Msgpack(hex::decode(hex).unwrap())),
    }
}
fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A python-socketio socket id (python-engineio's `generate_id()` shape).
/// The `skip_sid` vector skips `"abc"`, which the gateway refuses as not a
/// socket id; the test compares against the vector with this id in its place.
const SID: &str = "Ab-_0123456789abcdef";

enum Req {
    Emit(pb::EmitRequest),
    Broadcast(pb::BroadcastRequest),
    Leave(pb::SocketsLeaveRequest),
}

fn emit(rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> Req {
    Req::Emit(pb::EmitRequest {
        rooms: strs(rooms),
        event: event.into(),
        args,
        ..Default::default()
    })
}
fn broadcast(event: &str, args: Vec<pb::Argument>) -> pb::BroadcastRequest {
    pb::BroadcastRequest {
        event: event.into(),
        args,
        ..Default::default()
    }
}

/// Requests mirroring each case of `capture-python-socketio.py`.
fn cases() -> BTreeMap<&'static str, Req> {
    let mut m = BTreeMap::new();
    m.insert(
        "broadcast_root_string",
        Req::Broadcast(broadcast("chat message", vec![s("hello")])),
    );
    m.insert("room_single", emit(&["room1"], "chat message", vec![s("hello")]));
    m.insert(
        "rooms_list",
        emit(&["room1", "room2"], "news", vec![json(r#"{"id":7}"#)]),
    );
    m.insert(
        "namespace_admin",
        Req::Broadcast(pb::BroadcastRequest {
            namespace: "admin".into(),
            ..broadcast("alert", vec![s("x")])
        }),
    );
    m.insert(
        "skip_sid",
        Req::Broadcast(pb::BroadcastRequest {
            except_rooms: strs(&[SID]),
            ..broadcast("tick", vec![n(1.0)])
        }),
    );
    m.insert(
        "multi_args_tuple",
        Req::Broadcast(broadcast(
            "multi",
            vec![
                s("a"),
                n(2.0),
                val(value::Kind::StructValue(Struct {
                    fields: [(
                        "k".to_owned(),
                        Value {
                            kind: Some(value::Kind::NullValue(0)),
                        },
                    )]
                    .into(),
                })),
            ],
        )),
    );
    m.insert(
        "single_list_arg",
        Req::Broadcast(broadcast("list", vec![json("[1,2]")])),
    );
    m.insert(
        "unicode",
        emit(&["部屋"], "メッセージ", vec![json(r#"{"body":"こんにちは 🌸"}"#)]),
    );
    m.insert(
        "binary",
        Req::Broadcast(broadcast("file", vec![bin(&[0, 1, 2, 0xfd, 0xfe, 0xff])])),
    );
    // {"name": "a.bin", "data": <bin "abc">}, keys in Python's dict order.
    m.insert(
        "binary_in_object",
        emit(
            &["room1"],
            "upload",
            vec![msgpack("82a46e616d65a5612e62696ea464617461c403616263")],
        ),
    );
    // Every socket leaving room1 is python-socketio's close_room.
    m.insert(
        "close_room",
        Req::Leave(pb::SocketsLeaveRequest {
            leave_rooms: strs(&["room1"]),
            ..Default::default()
        }),
    );
    m
}

fn gateway(extra: &str) -> Gateway {
    let toml = format!("[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n{extra}");
    // The pools connect lazily: nothing here touches the network.
    Gateway::new(&Config::from_toml(&toml).unwrap()).unwrap()
}

fn op(req: &Req) -> Operation<'_> {
    match req {
        Req::Emit(r) => Operation::Emit(r),
        Req::Broadcast(r) => Operation::Broadcast(r),
        Req::Leave(r) => Operation::SocketsLeave(r),
    }
}

/// The payload with its `host_id` value replaced by `H`.
fn without_host_id(payload: &str) -> String {
    let key = "\"host_id\": \"";
    let start = payload.find(key).unwrap_or_else(|| panic!("no host_id in {payload}")) + key.len();
    let end = start + payload[start..].find('"').unwrap();
    format!("{}H{}", &payload[..start], &payload[end..])
}

#[test]
fn every_python_socketio_vector_is_reproduced_byte_for_byte() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/python-socketio-redis-manager.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let gw = gateway("");
    let mut cases = cases();
    let mut compared = 0;
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !case["error"].is_null() {
            // python-socketio refuses an emit without `data`; the gateway
            // sends `"data": []` (covered below).
            assert_eq!(name, "no_args");
            continue;
        }
        let req = cases
            .remove(name)
            .unwrap_or_else(|| panic!("no request mirrors vector case {name:?}"));
        let encoded = gw.encode(op(&req)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let published = case["published"].as_array().unwrap();
        assert_eq!(published.len(), 1, "{name}: one PUBLISH per operation");
        let mut want = published[0]["payload"].as_str().unwrap().to_owned();
        if name == "skip_sid" {
            want = want.replace("\"skip_sid\": \"abc\"", &format!("\"skip_sid\": \"{SID}\""));
        }
        assert_eq!(
            String::from_utf8_lossy(encoded.message.channel()),
            published[0]["channel"].as_str().unwrap(),
            "{name}: channel"
        );
        let got = String::from_utf8(encoded.message.payload().to_vec()).unwrap();
        assert_eq!(without_host_id(&got), without_host_id(&want), "{name}: payload");
        compared += 1;
    }
    assert_eq!(compared, 11, "vector file changed");
    assert!(
        cases.is_empty(),
        "requests without a vector case: {:?}",
        cases.keys().collect::<Vec<_>>()
    );
}

fn payloads(gw: &Gateway, req: &Req) -> Vec<String> {
    let encoded = gw.encode(op(req)).unwrap();
    encoded
        .message
        .commands()
        .iter()
        .map(|p| {
            assert_eq!(p.channel(), b"socketio");
            without_host_id(std::str::from_utf8(p.payload()).unwrap())
        })
        .collect()
}

#[test]
fn no_arguments_several_rooms_and_several_skipped_sockets() {
    let gw = gateway("");
    let other = "Zz9_0123456789abcdef";
    let req = Req::Emit(pb::EmitRequest {
        rooms: strs(&["a", "b"]),
        except_rooms: strs(&[SID, other]),
        event: "ping".into(),
        ..Default::default()
    });
    assert_eq!(
        payloads(&gw, &req),
        [format!(
            r#"{{"method": "emit", "event": "ping", "data": [], "binary": false, "namespace": "/", "room": ["a", "b"], "skip_sid": ["{SID}", "{other}"], "callback": null, "host_id": "H"}}"#
        )]
    );
}

#[test]
fn the_host_id_never_looks_like_a_servers() {
    let gw = gateway("");
    let encoded = gw.encode(op(&emit(&["r"], "e", vec![]))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(encoded.message.payload()).unwrap();
    let host_id = v["host_id"].as_str().unwrap();
    // Servers use uuid4().hex: 32 lowercase hex digits.
    assert!(!(host_id.len() == 32 && host_id.bytes().all(|b| b.is_ascii_hexdigit())));
    assert!(host_id.starts_with("emitgate-"), "{host_id}");
}

#[test]
fn flask_socketio_channel_and_the_single_data_shape() {
    let gw = gateway("channel = \"flask-socketio\"\ndata_shape = \"single\"");
    let encoded = gw.encode(op(&emit(&["r"], "e", vec![s("x")]))).unwrap();
    assert_eq!(encoded.message.channel(), b"flask-socketio");
    let v: serde_json::Value = serde_json::from_slice(encoded.message.payload()).unwrap();
    assert_eq!(v["data"], "x");
    let v: serde_json::Value =
        serde_json::from_slice(gw.encode(op(&emit(&["r"], "e", vec![]))).unwrap().message.payload()).unwrap();
    assert_eq!(v["data"], serde_json::Value::Null);
    // What older servers would read differently is refused.
    for (args, field) in [
        (vec![s("a"), s("b")], "args"),
        (vec![json("[1]")], "args[0]"),
        (vec![json("null")], "args[0]"),
    ] {
        let e = gw.encode(op(&emit(&["r"], "e", args))).unwrap_err();
        assert_eq!(violation_fields(e), [field]);
    }
}

#[test]
fn socket_operations_name_one_socket_per_message() {
    let gw = gateway("");
    let other = "Zz9_0123456789abcdef";
    let encoded = gw
        .encode(Operation::SocketsJoin(&pb::SocketsJoinRequest {
            namespace: "/admin".into(),
            rooms: strs(&[SID, other]),
            join_rooms: strs(&["r1", "r2"]),
            ..Default::default()
        }))
        .unwrap();
    let got: Vec<String> = encoded
        .message
        .commands()
        .iter()
        .map(|p| without_host_id(std::str::from_utf8(p.payload()).unwrap()))
        .collect();
    let want: Vec<String> = [(SID, "r1"), (SID, "r2"), (other, "r1"), (other, "r2")]
        .iter()
        .map(|(sid, room)| {
            format!(
                r#"{{"method": "enter_room", "sid": "{sid}", "room": "{room}", "namespace": "/admin", "host_id": "H"}}"#
            )
        })
        .collect();
    assert_eq!(got, want);

    let encoded = gw
        .encode(Operation::SocketsLeave(&pb::SocketsLeaveRequest {
            rooms: strs(&[SID]),
            leave_rooms: strs(&["r1"]),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(
        without_host_id(std::str::from_utf8(encoded.message.payload()).unwrap()),
        format!(r#"{{"method": "leave_room", "sid": "{SID}", "room": "r1", "namespace": "/", "host_id": "H"}}"#)
    );

    let encoded = gw
        .encode(Operation::DisconnectSockets(&pb::DisconnectSocketsRequest {
            rooms: strs(&[SID]),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(
        without_host_id(std::str::from_utf8(encoded.message.payload()).unwrap()),
        format!(r#"{{"method": "disconnect", "sid": "{SID}", "namespace": "/", "host_id": "H"}}"#)
    );
}

fn violation_fields(e: emitgate::Error) -> Vec<String> {
    match e {
        emitgate::Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
        other => panic!("not INVALID_ARGUMENT: {other}"),
    }
}

#[test]
fn what_python_socketio_cannot_express_is_refused() {
    let gw = gateway("");
    // A room name in except_rooms would exclude nobody.
    let e = gw
        .encode(Operation::Broadcast(&pb::BroadcastRequest {
            except_rooms: strs(&["muted"]),
            ..broadcast("e", vec![])
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["except_rooms"]);
    // A single null argument arrives as no argument.
    let e = gw.encode(op(&emit(&["r"], "e", vec![json("null")]))).unwrap_err();
    assert_eq!(violation_fields(e), ["args[0]"]);
    // Socket operations need socket ids.
    let join = |rooms: &[&str], except: &[&str]| pb::SocketsJoinRequest {
        rooms: strs(rooms),
        except_rooms: strs(except),
        join_rooms: strs(&["x"]),
        ..Default::default()
    };
    for (req, field) in [
        (join(&[], &[]), "rooms"),
        (join(&["lobby"], &[]), "rooms"),
        (join(&[SID], &[SID]), "except_rooms"),
    ] {
        let e = gw.encode(Operation::SocketsJoin(&req)).unwrap_err();
        assert_eq!(violation_fields(e), [field]);
    }
    let e = gw
        .encode(Operation::DisconnectSockets(&pb::DisconnectSocketsRequest {
            rooms: strs(&[SID]),
            close: true,
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["close"]);
    // A leave of rooms the selector does not cover, by room name.
    let e = gw
        .encode(Operation::SocketsLeave(&pb::SocketsLeaveRequest {
            rooms: strs(&["a"]),
            leave_rooms: strs(&["b"]),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["rooms"]);
    // No server-to-server events.
    let e = gw
        .encode(Operation::ServerSideEmit(&pb::ServerSideEmitRequest {
            event: "hello".into(),
            ..Default::default()
        }))
        .unwrap_err();
    let status = tonic::Status::from(e);
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("python-socketio"), "{}", status.message());
    // Too many socket × room messages for one call.
    let many: Vec<String> = (0..101).map(|i| format!("Ab-_0123456789abc{i:03}")).collect();
    let e = gw
        .encode(Operation::SocketsJoin(&pb::SocketsJoinRequest {
            rooms: many,
            join_rooms: (0..10).map(|i| format!("r{i}")).collect(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(violation_fields(e), ["join_rooms"]);
}

#[test]
fn python_options_are_checked_and_named() {
    let e = Config::from_toml("[[targets]]\nname = \"x\"\nchannel = \"socketio\"\n").unwrap_err();
    assert_eq!(e.setting, "targets[0].channel");
    let e =
        Config::from_toml("[[targets]]\nname = \"x\"\ndialect = \"socketio-v2\"\ndata_shape = \"list\"\n").unwrap_err();
    assert_eq!(e.setting, "targets[0].data_shape");
    let e =
        Config::from_toml("[[targets]]\nname = \"x\"\ndialect = \"python-socketio\"\nchannel = \"\"\n").unwrap_err();
    assert_eq!(e.setting, "targets[0].channel");
    let e = Config::from_toml("[[targets]]\nname = \"x\"\ndialect = \"python-socketio\"\ndata_shape = \"tuple\"\n")
        .unwrap_err();
    assert!(e.message.contains("single"), "{e}");
}
