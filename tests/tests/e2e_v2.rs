//! End-to-end: the gateway's `socketio-v2` dialect in front of a real
//! Socket.IO 2 cluster (two socket.io 2.5 servers with socket.io-redis 5.4
//! on a real Redis) and real socket.io-client 2 clients. Every test asserts
//! what the clients (or the servers' adapter hooks) received; a broadcast
//! "barrier" event proves what they did not receive.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::pb;
use emitgate_e2e::world::{World, b64, emit_req, ev};
use emitgate_e2e::{Stack, binary, json_arg, msgpack, value, violations};
use serde_json::{Value, json};
use tonic::Code;

async fn world() -> World {
    World::start(
        |url| async move { Stack::socketio_v2(&url, 2).await },
        "[[targets]]\nname = \"default\"\ndialect = \"socketio-v2\"\n",
    )
    .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn emit_to_a_room_reaches_its_members_on_every_server_only() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1"]).await;
    let other = w.stack.connect("/", 1, &["room2"]).await;
    let receivers = w.emit(&["room1"], "chat message", vec![value(json!("hello"))]).await;
    assert_eq!(receivers, 2, "both servers psubscribe the namespace");
    let got = w.received("/", "barrier", &[&a, &b, &other]).await;
    assert_eq!(got[0], [ev("chat message", json!(["hello"]))]);
    assert_eq!(got[1], [ev("chat message", json!(["hello"]))]);
    assert_eq!(got[2], Vec::<Value>::new());
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn several_rooms_reach_each_member_once_and_socket_ids_are_rooms() {
    let mut w = world().await;
    let both = w.stack.connect("/", 0, &["r1", "r2"]).await;
    let r2 = w.stack.connect("/", 1, &["r2"]).await;
    let r3 = w.stack.connect("/", 1, &["r3"]).await;
    let lone = w.stack.connect("/", 0, &[]).await;
    w.emit(&["r1", "r2", "r1"], "news", vec![value(json!({"id": 7}))]).await;
    w.emit(&[&lone.sid], "direct", vec![value(json!("just you"))]).await;
    let got = w.received("/", "barrier", &[&both, &r2, &r3, &lone]).await;
    assert_eq!(got[0], [ev("news", json!([{"id": 7}]))]);
    assert_eq!(got[1], [ev("news", json!([{"id": 7}]))]);
    assert_eq!(got[2], Vec::<Value>::new());
    assert_eq!(got[3], [ev("direct", json!(["just you"]))]);
}

#[tokio::test]
async fn except_skips_socket_ids_and_a_room_name_there_is_refused() {
    let mut w = world().await;
    let muted = w.stack.connect("/", 0, &["room1"]).await;
    let a = w.stack.connect("/", 1, &["room1"]).await;
    let b = w.stack.connect("/", 0, &[]).await;
    w.c.broadcast(pb::BroadcastRequest {
        event: "tick".into(),
        except_rooms: vec![muted.sid.clone()],
        args: vec![value(json!(1))],
        ..Default::default()
    })
    .await
    .unwrap();
    w.c.emit(pb::EmitRequest {
        except_rooms: vec![muted.sid.clone()],
        ..emit_req(&["room1"], "tock", vec![])
    })
    .await
    .unwrap();
    // socket.io-adapter 1.x compares except with socket ids only.
    let err =
        w.c.broadcast(pb::BroadcastRequest {
            event: "leak".into(),
            except_rooms: vec!["room1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err)[0].0, "except_rooms");
    let got = w.received("/", "barrier", &[&muted, &a, &b]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert_eq!(got[1], [ev("tick", json!([1])), ev("tock", json!([]))]);
    assert_eq!(got[2], [ev("tick", json!([1]))]);
}

#[tokio::test]
async fn namespaces_are_separate_and_their_socket_ids_carry_the_namespace() {
    let mut w = world().await;
    let admin = w.stack.connect("/admin", 1, &["ops"]).await;
    let skipped = w.stack.connect("/admin", 0, &["ops"]).await;
    let root = w.stack.connect("/", 0, &["ops"]).await;
    assert!(admin.sid.starts_with("/admin#"), "{}", admin.sid);
    w.c.emit(pb::EmitRequest {
        namespace: "admin".into(),
        except_rooms: vec![skipped.sid.clone()],
        ..emit_req(&["ops"], "alert", vec![value(json!("y"))])
    })
    .await
    .unwrap();
    w.c.broadcast(pb::BroadcastRequest {
        namespace: "/admin".into(),
        event: "all".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let got_admin = w.received("/admin", "barrier", &[&admin, &skipped]).await;
    let got_root = w.received("/", "barrier", &[&root]).await;
    assert_eq!(got_admin[0], [ev("alert", json!(["y"])), ev("all", json!([]))]);
    assert_eq!(got_admin[1], [ev("all", json!([]))]);
    assert_eq!(got_root[0], Vec::<Value>::new());
}

#[tokio::test]
async fn binary_arguments_arrive_as_buffers_through_binary_event_packets() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let b = w.stack.connect("/", 1, &["r"]).await;
    // {name: "a.bin", data: <bin "abc">, list: [<bin 01>, 2]} pre-encoded.
    let nested = hex::decode("83a46e616d65a5612e62696ea464617461c403616263a46c69737492c4010102").unwrap();
    w.emit(
        &["r"],
        "kinds",
        vec![
            binary(&[0, 1, 2, 253, 254, 255]),
            msgpack(nested),
            json_arg(r#"{"a":{"b":[1,{"d":"e"}]},"f":1.5,"i":7.0}"#),
            value(json!({"n": null, "t": true})),
        ],
    )
    .await;
    w.emit(&["r"], "plain", vec![value(json!([1, "two"]))]).await;
    // notepack.io 2 cannot decode MessagePack timestamps: refused.
    let err =
        w.c.emit(emit_req(
            &["r"],
            "date",
            vec![value(json!(1)), msgpack(hex::decode("d6ff6553f100").unwrap())],
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args[1]");
    let got = w.received("/", "barrier", &[&a, &b]).await;
    for events in got {
        assert_eq!(
            events,
            [
                ev(
                    "kinds",
                    json!([
                        b64(&[0, 1, 2, 253, 254, 255]),
                        {"name": "a.bin", "data": b64(b"abc"), "list": [b64(&[1]), 2]},
                        {"a": {"b": [1, {"d": "e"}]}, "f": 1.5, "i": 7},
                        {"n": null, "t": true},
                    ])
                ),
                ev("plain", json!([[1, "two"]])),
            ]
        );
    }
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn unicode_names_and_a_large_payload() {
    let mut w = world().await;
    let a = w.stack.connect("/名前空間", 1, &["部屋"]).await;
    let big = "x".repeat(500_000);
    w.c.emit(pb::EmitRequest {
        namespace: "/名前空間".into(),
        ..emit_req(
            &["部屋"],
            "メッセージ",
            vec![value(json!({"body": "こんにちは 🌸"})), value(json!(big))],
        )
    })
    .await
    .unwrap();
    let got = w.received("/名前空間", "barrier", &[&a]).await;
    assert_eq!(got[0], [ev("メッセージ", json!([{"body": "こんにちは 🌸"}, big]))]);
}

#[tokio::test]
async fn batch_emit_delivers_valid_items() {
    let mut w = world().await;
    let u1 = w.stack.connect("/", 0, &["u:1"]).await;
    let u2 = w.stack.connect("/", 1, &["u:2"]).await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let r =
        w.c.batch_emit(pb::BatchEmitRequest {
            items: vec![
                item(pb::batch_item::Op::Emit(emit_req(&["u:1"], "n", vec![binary(b"\x01")]))),
                item(pb::batch_item::Op::Emit(emit_req(&["u:2"], "disconnect", vec![]))),
                item(pb::batch_item::Op::Emit(emit_req(&["u:2"], "n", vec![value(json!(2))]))),
                item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                    event: "all".into(),
                    except_rooms: vec![u1.sid.clone()],
                    ..Default::default()
                })),
            ],
            atomic: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results.iter().map(|r| r.code).collect::<Vec<_>>(), [0, 3, 0, 0]);
    let got = w.received("/", "barrier", &[&u1, &u2]).await;
    assert_eq!(got[0], [ev("n", json!([b64(&[1])]))]);
    assert_eq!(got[1], [ev("n", json!([2])), ev("all", json!([]))]);
}

#[tokio::test]
async fn remote_join_leave_and_disconnect_by_socket_id() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1"]).await;
    let c = w.stack.connect("/", 1, &[]).await;
    let r =
        w.c.sockets_join(pb::SocketsJoinRequest {
            rooms: vec![a.sid.clone(), c.sid.clone()],
            join_rooms: vec!["joined".into(), "also".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 8, "4 requests × 2 servers");
    w.emit(&["joined"], "welcome", vec![]).await;
    let got = w.received("/", "barrier1", &[&a, &b, &c]).await;
    assert_eq!(got[0], [ev("welcome", json!([]))]);
    assert_eq!(got[1], Vec::<Value>::new());
    assert_eq!(got[2], [ev("welcome", json!([]))]);
    assert_eq!(
        w.stack.rooms(&c).await,
        sorted(vec![c.sid.clone(), "also".into(), "joined".into()])
    );

    w.c.sockets_leave(pb::SocketsLeaveRequest {
        rooms: vec![c.sid.clone()],
        leave_rooms: vec!["joined".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    w.emit(&["joined"], "after leave", vec![]).await;
    let got = w.received("/", "barrier2", &[&c]).await;
    assert!(!got[0].iter().any(|e| e["event"] == "after leave"), "{got:?}");
    assert_eq!(w.stack.rooms(&c).await, sorted(vec![c.sid.clone(), "also".into()]));

    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec![a.sid.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec![c.sid.clone()],
        close: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    assert_eq!(w.stack.disconnect_reason(&c).await, "io server disconnect");
    assert_eq!(w.stack.state(&b).await["connected"], true);
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn server_side_emit_is_a_custom_request_to_every_server() {
    let mut w = world().await;
    w.stack.listen("/", "hello").await;
    let r =
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            event: "hello".into(),
            args: vec![value(json!("world")), json_arg(r#"{"n":1}"#)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 2);
    let mut events = w.stack.server_events("/", "hello", 2).await;
    events.sort_by_key(|e| e["server"].as_u64());
    assert_eq!(
        events,
        [
            json!({"server": 0, "args": ["world", {"n": 1}]}),
            json!({"server": 1, "args": ["world", {"n": 1}]})
        ]
    );
    let err =
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            event: "hello".into(),
            args: vec![binary(b"x")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args[0]");
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn rejected_calls_reach_nobody_and_disconnect_nobody() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let b = w.stack.connect("/", 1, &[]).await;
    for event in ["connect", "disconnect"] {
        let err = w.c.emit(emit_req(&["r"], event, vec![])).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    // Socket operations need socket ids and no except.
    let err =
        w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
            rooms: vec!["r".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rooms");
    let err =
        w.c.sockets_join(pb::SocketsJoinRequest {
            join_rooms: vec!["x".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rooms");
    let err =
        w.c.sockets_leave(pb::SocketsLeaveRequest {
            rooms: vec![a.sid.clone()],
            except_rooms: vec![b.sid.clone()],
            leave_rooms: vec!["r".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "except_rooms");
    let err =
        w.c.emit(emit_req(&["r"], "bad", vec![msgpack(vec![0x93, 0xa7])]))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let got = w.received("/", "barrier", &[&a, &b]).await;
    assert_eq!(got, [Vec::<Value>::new(), Vec::new()]);
    for c in [&a, &b] {
        assert_eq!(w.stack.state(c).await["connected"], true);
    }
    assert_eq!(w.stack.rooms(&a).await, sorted(vec![a.sid.clone(), "r".into()]));
    w.assert_servers_healthy().await;
}
