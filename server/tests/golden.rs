//! The codec against the reference emitter's captured output: every case of
//! `vectors/socketio-redis-emitter.json` is encoded through the gateway's
//! validate → encode path (no Redis) and must match channel and bytes; the
//! same for a target with `parser = "json"` against
//! `vectors/socketio-redis-emitter-json.json` (the emitter with
//! `parser: { encode: JSON.stringify }`), where what JSON cannot carry is
//! refused instead.

use std::collections::BTreeMap;

use emitgate::{
    Config, Gateway,
    pb::{self, argument::Kind},
    service::Operation,
};
use prost_types::{ListValue, Struct, Value, value};

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
fn obj(fields: &[(&str, Value)]) -> Value {
    Value {
        kind: Some(value::Kind::StructValue(Struct {
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        })),
    }
}
fn num(v: f64) -> Value {
    Value {
        kind: Some(value::Kind::NumberValue(v)),
    }
}
fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Requests built to mirror each case's JavaScript `code`.
enum Req {
    Emit(pb::EmitRequest),
    Broadcast(pb::BroadcastRequest),
    Join(pb::SocketsJoinRequest),
    Leave(pb::SocketsLeaveRequest),
    Disconnect(pb::DisconnectSocketsRequest),
    ServerSide(pb::ServerSideEmitRequest),
}

fn emit(rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: strs(rooms),
        event: event.into(),
        args,
        ..Default::default()
    }
}
fn broadcast(event: &str, args: Vec<pb::Argument>) -> pb::BroadcastRequest {
    pb::BroadcastRequest {
        event: event.into(),
        args,
        ..Default::default()
    }
}

fn cases() -> BTreeMap<&'static str, Req> {
    let mut m = BTreeMap::new();
    m.insert(
        "broadcast_root_string",
        Req::Broadcast(broadcast("chat message", vec![s("hello")])),
    );
    m.insert(
        "room_single",
        Req::Emit(emit(&["room1"], "chat message", vec![s("hello")])),
    );
    m.insert(
        "rooms_two",
        Req::Emit(emit(
            &["room1", "room2"],
            "news",
            vec![val_of(obj(&[("id", num(7.0))]))],
        )),
    );
    m.insert(
        "except_only",
        Req::Broadcast(pb::BroadcastRequest {
            except_rooms: strs(&["muted"]),
            ..broadcast("tick", vec![n(1.0)])
        }),
    );
    m.insert(
        "room_and_except",
        Req::Emit(pb::EmitRequest {
            except_rooms: strs(&["a", "b"]),
            ..emit(&["room1"], "tick", vec![n(2.0)])
        }),
    );
    m.insert(
        "namespace_admin",
        Req::Broadcast(pb::BroadcastRequest {
            namespace: "/admin".into(),
            ..broadcast("alert", vec![s("x")])
        }),
    );
    m.insert(
        "namespace_without_slash",
        Req::Emit(pb::EmitRequest {
            namespace: "admin".into(),
            ..emit(&["ops"], "alert", vec![s("y")])
        }),
    );
    m.insert(
        "volatile",
        Req::Broadcast(pb::BroadcastRequest {
            flags: Some(pb::EmitFlags {
                volatile: true,
                compress: None,
            }),
            ..broadcast("pos", vec![n(1.5)])
        }),
    );
    m.insert(
        "compress_false",
        Req::Broadcast(pb::BroadcastRequest {
            flags: Some(pb::EmitFlags {
                volatile: false,
                compress: Some(false),
            }),
            ..broadcast("big", vec![s("z")])
        }),
    );
    m.insert(
        "volatile_compress_room",
        Req::Emit(pb::EmitRequest {
            flags: Some(pb::EmitFlags {
                volatile: true,
                compress: Some(true),
            }),
            ..emit(&["r"], "ev", vec![])
        }),
    );
    m.insert("no_args", Req::Broadcast(broadcast("ping", vec![])));
    m.insert(
        "many_args",
        Req::Broadcast(broadcast(
            "multi",
            vec![
                n(1.0),
                s("two"),
                val(value::Kind::BoolValue(true)),
                val(value::Kind::NullValue(0)),
                val(value::Kind::ListValue(ListValue {
                    values: vec![num(3.0), num(4.0)],
                })),
                json(r#"{"five":5}"#),
            ],
        )),
    );
    let numbers = [
        0.0,
        -1.0,
        127.0,
        128.0,
        255.0,
        256.0,
        65535.0,
        65536.0,
        4294967295.0,
        4294967296.0,
        -32.0,
        -33.0,
        -128.0,
        -129.0,
        -32768.0,
        -32769.0,
        -2147483648.0,
        -2147483649.0,
        0.5,
        -0.25,
        1e300,
        9007199254740991.0,
    ];
    m.insert(
        "numbers",
        Req::Broadcast(broadcast("num", numbers.iter().map(|v| n(*v)).collect())),
    );
    m.insert(
        "unicode",
        Req::Emit(emit(
            &["部屋"],
            "メッセージ",
            vec![val_of(obj(&[
                (
                    "body",
                    Value {
                        kind: Some(value::Kind::StringValue("こんにちは 🌸".into())),
                    },
                ),
                (
                    "emoji",
                    Value {
                        kind: Some(value::Kind::StringValue("👍".into())),
                    },
                ),
            ]))],
        )),
    );
    // JSON text keeps key order (a protobuf Struct does not).
    m.insert(
        "nested",
        Req::Broadcast(broadcast(
            "doc",
            vec![json(
                r#"{ "a": { "b": { "c": [1, { "d": "e" }] } }, "empty_obj": {}, "empty_arr": [] }"#,
            )],
        )),
    );
    m.insert(
        "binary",
        Req::Broadcast(broadcast(
            "file",
            vec![pb::Argument {
                kind: Some(Kind::Binary(vec![0, 1, 2, 253, 254, 255])),
            }],
        )),
    );
    // {name: "a.bin", data: <bin "abc">}, pre-encoded as an SDK would.
    m.insert(
        "binary_in_object",
        Req::Emit(emit(
            &["room1"],
            "upload",
            vec![pb::Argument {
                kind: Some(Kind::Msgpack(
                    hex::decode("82a46e616d65a5612e62696ea464617461c403616263").expect("valid hex"),
                )),
            }],
        )),
    );
    m.insert(
        "long_string",
        Req::Broadcast(broadcast("long", vec![s(&"x".repeat(300))])),
    );
    let arr: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    m.insert(
        "big_array",
        Req::Broadcast(broadcast("arr", vec![json(&format!("[{}]", arr.join(",")))])),
    );
    let map: Vec<String> = (0..20).map(|i| format!("\"k{i}\":{i}")).collect();
    m.insert(
        "big_map",
        Req::Broadcast(broadcast("map", vec![json(&format!("{{{}}}", map.join(",")))])),
    );
    m.insert(
        "sockets_join",
        Req::Join(pb::SocketsJoinRequest {
            rooms: strs(&["room1"]),
            join_rooms: strs(&["room2", "room3"]),
            ..Default::default()
        }),
    );
    m.insert(
        "sockets_join_all",
        Req::Join(pb::SocketsJoinRequest {
            join_rooms: strs(&["everyone"]),
            ..Default::default()
        }),
    );
    m.insert(
        "sockets_leave",
        Req::Leave(pb::SocketsLeaveRequest {
            rooms: strs(&["room1"]),
            except_rooms: strs(&["vip"]),
            leave_rooms: strs(&["room2"]),
            ..Default::default()
        }),
    );
    m.insert(
        "disconnect_sockets",
        Req::Disconnect(pb::DisconnectSocketsRequest {
            rooms: strs(&["room1"]),
            ..Default::default()
        }),
    );
    m.insert(
        "disconnect_sockets_close",
        Req::Disconnect(pb::DisconnectSocketsRequest {
            namespace: "/admin".into(),
            close: true,
            ..Default::default()
        }),
    );
    m.insert(
        "server_side_emit",
        Req::ServerSide(pb::ServerSideEmitRequest {
            event: "hello".into(),
            args: vec![s("world"), n(1.0)],
            ..Default::default()
        }),
    );
    m
}

fn val_of(v: Value) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Value(v)),
    }
}

/// The reference encoder's 1e300 bug and the correct float64 bytes.
const NOTEPACK_1E300_BUG: &str = "cf0000000000000000";
const FLOAT64_1E300: &str = "cb7e37e43c8800759c";

/// The same operation as a request and as a gateway operation.
fn operation(req: &Req) -> Operation<'_> {
    match req {
        Req::Emit(r) => Operation::Emit(r),
        Req::Broadcast(r) => Operation::Broadcast(r),
        Req::Join(r) => Operation::SocketsJoin(r),
        Req::Leave(r) => Operation::SocketsLeave(r),
        Req::Disconnect(r) => Operation::DisconnectSockets(r),
        Req::ServerSide(r) => Operation::ServerSideEmit(r),
    }
}

#[test]
fn every_reference_vector_is_reproduced_byte_for_byte() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/socketio-redis-emitter.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The pools connect lazily: nothing here touches the network.
    let gateway = Gateway::new(&Config::from_toml("").unwrap()).unwrap();
    let mut cases = cases();
    let vectors = file["cases"].as_array().unwrap();
    assert!(vectors.len() >= 26, "vector file shrank");
    for case in vectors {
        let name = case["name"].as_str().unwrap();
        let req = cases
            .remove(name)
            .unwrap_or_else(|| panic!("no request mirrors vector case {name:?}"));
        let encoded = gateway
            .encode(operation(&req))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let published = case["published"].as_array().unwrap();
        assert_eq!(published.len(), 1, "{name}: one PUBLISH per operation");
        let want_channel = published[0]["channel"].as_str().unwrap();
        let mut want_hex = published[0]["hex"].as_str().unwrap().to_owned();
        if name == "numbers" {
            assert_eq!(want_hex.matches(NOTEPACK_1E300_BUG).count(), 1);
            want_hex = want_hex.replace(NOTEPACK_1E300_BUG, FLOAT64_1E300);
        }
        assert_eq!(
            String::from_utf8_lossy(encoded.message.channel()),
            want_channel,
            "{name}: channel"
        );
        assert_eq!(hex::encode(encoded.message.payload()), want_hex, "{name}: payload");
    }
    assert!(
        cases.is_empty(),
        "requests without a vector case: {:?}",
        cases.keys().collect::<Vec<_>>()
    );
}

#[test]
fn encoded_events_decode_with_an_independent_decoder() {
    let gateway = Gateway::new(&Config::from_toml("").unwrap()).unwrap();
    let req = emit(
        &["a", "b", "a"],
        "ev",
        vec![json(r#"{"x":[1,2.5,"s",null,true]}"#), n(-7.0)],
    );
    let encoded = gateway.encode(Operation::Emit(&req)).unwrap();
    let v = rmpv::decode::read_value(&mut encoded.message.payload()).unwrap();
    assert_eq!(
        v.to_string(),
        r#"["emitter", {"type": 2, "data": ["ev", {"x": [1, 2.5, "s", nil, true]}, -7], "nsp": "/"}, {"rooms": ["a", "b"], "flags": {}, "except": []}]"#
    );
}

/// The cases of the JSON vector file beyond the MessagePack ones.
fn json_cases() -> BTreeMap<&'static str, Req> {
    let mut m = cases();
    let numbers = [
        1e21,
        1e-7,
        123_456_789_012_345_680_000.0,
        0.1,
        -0.0,
        1.5e-10,
        5e-324,
        1.797_693_134_862_315_7e308,
        9_007_199_254_740_992.0,
        -9_007_199_254_740_992.0,
        18_014_398_509_481_984.0,
        100.0,
        0.000_001,
        1e-6,
        123.456,
    ];
    m.insert(
        "js_numbers",
        Req::Broadcast(broadcast("num", numbers.iter().map(|v| n(*v)).collect())),
    );
    m.insert(
        "escapes",
        Req::Emit(emit(
            &["r\"1"],
            "esc\n",
            vec![s(
                "quote\" backslash\\ \u{8}\u{c}\n\r\t \u{1} \u{1f} \u{7f} \u{2028} é /",
            )],
        )),
    );
    // JSON text in the order written; the gateway orders the keys as a
    // JavaScript object does (array indices first).
    m.insert(
        "key_order",
        Req::Broadcast(broadcast(
            "keys",
            vec![json(
                r#"{"b":1,"10":2,"2":3,"a":4,"-1":5,"01":6,"4294967294":7,"4294967295":8,"0":9}"#,
            )],
        )),
    );
    m.insert(
        "duplicate_keys",
        Req::Broadcast(broadcast("dup", vec![json(r#"{"a":1,"b":2,"a":3}"#)])),
    );
    // A Date is a MessagePack timestamp for the gateway (as notepack writes one).
    m.insert(
        "date",
        Req::Broadcast(broadcast(
            "when",
            vec![pb::Argument {
                kind: Some(Kind::Msgpack(hex::decode("d6ff6553f100").expect("valid hex"))),
            }],
        )),
    );
    m
}

/// Cases the emitter publishes with `JSON.stringify`, but whose clients would
/// not get what was sent: a Buffer becomes `{"type":"Buffer","data":[…]}`, a
/// Date a string. A json target refuses them, naming the argument.
const REFUSED_ON_JSON: &[(&str, &str)] = &[
    ("binary", "binary data"),
    ("binary_in_object", "binary data"),
    ("date", "timestamp"),
];

#[test]
fn every_json_parser_vector_is_reproduced_byte_for_byte_or_refused() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/socketio-redis-emitter-json.json"
    ))
    .unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let config = Config::from_toml("[[targets]]\nname = \"default\"\nparser = \"json\"\n").unwrap();
    let gateway = Gateway::new(&config).unwrap();
    let mut cases = json_cases();
    let vectors = file["cases"].as_array().unwrap();
    assert!(vectors.len() >= 31, "vector file shrank");
    for case in vectors {
        let name = case["name"].as_str().unwrap();
        let req = cases
            .remove(name)
            .unwrap_or_else(|| panic!("no request mirrors vector case {name:?}"));
        let published = case["published"].as_array().unwrap();
        assert_eq!(published.len(), 1, "{name}: one PUBLISH per operation");
        let result = gateway.encode(operation(&req));
        if let Some((_, why)) = REFUSED_ON_JSON.iter().find(|(n, _)| *n == name) {
            match result {
                Err(emitgate::error::Error::InvalidArgument(v)) => {
                    assert_eq!(v.len(), 1, "{name}: {v:?}");
                    let v = v.listed();
                    assert_eq!(v[0].field, "args[0]", "{name}");
                    assert!(v[0].description.contains(why), "{name}: {}", v[0].description);
                    assert!(
                        v[0].description.contains("parser is `json`"),
                        "{name}: {}",
                        v[0].description
                    );
                }
                other => panic!("{name}: a json target must refuse it, got {other:?}"),
            }
            continue;
        }
        let encoded = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(encoded.message.channel()),
            published[0]["channel"].as_str().unwrap(),
            "{name}: channel"
        );
        assert_eq!(
            String::from_utf8_lossy(encoded.message.payload()),
            String::from_utf8(hex::decode(published[0]["hex"].as_str().unwrap()).unwrap()).unwrap(),
            "{name}: payload"
        );
    }
    assert!(
        cases.is_empty(),
        "requests without a vector case: {:?}",
        cases.keys().collect::<Vec<_>>()
    );
}
