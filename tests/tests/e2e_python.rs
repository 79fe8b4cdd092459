//! End-to-end: the gateway's `python-socketio` dialect in front of real
//! python-socketio 5 servers (two `AsyncServer`s on aiohttp with
//! `AsyncRedisManager`, on a real Redis) and real socket.io-client 4
//! clients. Every test asserts what the clients received; a broadcast
//! "barrier" event proves what they did not receive (each server handles
//! the channel's messages in publish order).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::pb;
use emitgate_e2e::world::{World, b64, emit_req, ev};
use emitgate_e2e::{Gateway, Stack, binary, json_arg, msgpack, value, violations};
use serde_json::{Value, json};
use tonic::Code;

async fn world() -> World {
    with_channel("socketio", "").await
}

/// Servers on `channel`; the gateway's default target is a python-socketio
/// target with `target_options`.
async fn with_channel(channel: &str, target_options: &str) -> World {
    let toml = format!("[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n{target_options}");
    let channel = channel.to_owned();
    World::start(
        |url| async move { Stack::python_socketio(&url, 2, &channel).await },
        &toml,
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
    assert_eq!(receivers, 2, "both managers subscribe to the channel");
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
        except_rooms: vec![muted.sid.clone(), b.sid.clone()],
        ..emit_req(&["room1"], "tock", vec![])
    })
    .await
    .unwrap();
    // python-socketio compares skip_sid with socket ids only: a room name
    // would exclude nobody, so the gateway refuses it.
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
async fn namespaces_are_separate_and_the_leading_slash_is_added() {
    let mut w = world().await;
    let admin = w.stack.connect("/admin", 1, &["ops"]).await;
    let root = w.stack.connect("/", 0, &["ops"]).await;
    w.c.emit(pb::EmitRequest {
        namespace: "admin".into(),
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
    let got_admin = w.received("/admin", "barrier", &[&admin]).await;
    let got_root = w.received("/", "barrier", &[&root]).await;
    assert_eq!(got_admin[0], [ev("alert", json!(["y"])), ev("all", json!([]))]);
    assert_eq!(got_root[0], Vec::<Value>::new());
}

#[tokio::test]
async fn argument_kinds_and_counts_arrive_as_the_client_expects() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    // {name: "a.bin", data: <bin "abc">, list: [<bin 01>, 2]} pre-encoded.
    let nested = hex::decode("83a46e616d65a5612e62696ea464617461c403616263a46c69737492c4010102").unwrap();
    w.emit(
        &["r"],
        "kinds",
        vec![
            binary(&[0, 1, 2, 253, 254, 255]),
            msgpack(nested),
            json_arg(r#"{"a":{"b":[1,{"d":"e"}]},"empty_obj":{},"empty_arr":[],"f":1.5,"i":7.0}"#),
            value(json!({"n": null, "t": true, "list": [1, "two", 3.25]})),
        ],
    )
    .await;
    // python-socketio reads `data` as the argument list (>= 5.15.1).
    w.emit(&["r"], "one list", vec![json_arg("[1,2]")]).await;
    w.emit(&["r"], "two nulls", vec![json_arg("null"), json_arg("null")])
        .await;
    w.emit(&["r"], "none", vec![]).await;
    w.emit(&["r"], "bytes only", vec![binary(b"\x01\x02\x03")]).await;
    let got = w.received("/", "barrier", &[&a]).await;
    assert_eq!(
        got[0],
        [
            ev(
                "kinds",
                json!([
                    b64(&[0, 1, 2, 253, 254, 255]),
                    {"name": "a.bin", "data": b64(b"abc"), "list": [b64(&[1]), 2]},
                    {"a": {"b": [1, {"d": "e"}]}, "empty_obj": {}, "empty_arr": [], "f": 1.5, "i": 7},
                    {"n": null, "t": true, "list": [1, "two", 3.25]},
                ])
            ),
            ev("one list", json!([[1, 2]])),
            ev("two nulls", json!([null, null])),
            ev("none", json!([])),
            ev("bytes only", json!([b64(&[1, 2, 3])])),
        ]
    );
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
            vec![value(json!({"body": "こんにちは 🌸 \u{7f}\"\\"})), value(json!(big))],
        )
    })
    .await
    .unwrap();
    let got = w.received("/名前空間", "barrier", &[&a]).await;
    assert_eq!(
        got[0],
        [ev("メッセージ", json!([{"body": "こんにちは 🌸 \u{7f}\"\\"}, big]))]
    );
}

#[tokio::test]
async fn batch_emit_delivers_valid_items_and_refuses_what_python_cannot_express() {
    let mut w = world().await;
    let u1 = w.stack.connect("/", 0, &["u:1"]).await;
    let u2 = w.stack.connect("/", 1, &["u:2"]).await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let r =
        w.c.batch_emit(pb::BatchEmitRequest {
            items: vec![
                item(pb::batch_item::Op::Emit(emit_req(&["u:1"], "n", vec![value(json!(1))]))),
                item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                    event: "all".into(),
                    except_rooms: vec!["u:1".into()],
                    ..Default::default()
                })),
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
    assert_eq!(r.results[1].violations[0].field, "items[1].broadcast.except_rooms");
    assert_eq!(r.published, 3);
    assert_eq!(r.receivers, 6, "3 messages × 2 servers");
    let got = w.received("/", "barrier", &[&u1, &u2]).await;
    assert_eq!(got[0], [ev("n", json!([1]))]);
    assert_eq!(got[1], [ev("n", json!([2])), ev("all", json!([]))]);
}

#[tokio::test]
async fn sockets_join_leave_and_close_room_by_socket_id() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1"]).await;
    let c = w.stack.connect("/", 1, &[]).await;
    // One enter_room per socket id and room; each reaches both servers.
    let r =
        w.c.sockets_join(pb::SocketsJoinRequest {
            rooms: vec![a.sid.clone(), c.sid.clone()],
            join_rooms: vec!["joined".into(), "also".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 8, "4 messages × 2 servers");
    // The messages and the emit travel in order through the channel.
    w.emit(&["joined"], "welcome", vec![]).await;
    let got = w.received("/", "barrier1", &[&a, &b, &c]).await;
    assert_eq!(got[0], [ev("welcome", json!([]))]);
    assert_eq!(got[1], Vec::<Value>::new());
    assert_eq!(got[2], [ev("welcome", json!([]))]);
    assert_eq!(
        w.stack.rooms(&a).await,
        sorted(vec![a.sid.clone(), "also".into(), "joined".into(), "room1".into()])
    );
    assert_eq!(
        w.stack.rooms(&c).await,
        sorted(vec![c.sid.clone(), "also".into(), "joined".into()])
    );

    // leave_room for one socket.
    w.c.sockets_leave(pb::SocketsLeaveRequest {
        rooms: vec![a.sid.clone()],
        leave_rooms: vec!["joined".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Every socket leaving "also" is python-socketio's close_room.
    w.c.sockets_leave(pb::SocketsLeaveRequest {
        leave_rooms: vec!["also".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    w.emit(&["joined"], "still joined", vec![]).await;
    w.emit(&["also"], "closed", vec![]).await;
    w.barrier("/", "barrier2").await;
    let events = w.stack.events_until(&a, "barrier2").await;
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "still joined" || e["event"] == "closed"),
        "{events:?}"
    );
    let events = w.stack.events_until(&c, "barrier2").await;
    assert!(events.iter().any(|e| e["event"] == "still joined"), "{events:?}");
    assert!(!events.iter().any(|e| e["event"] == "closed"), "{events:?}");
    assert_eq!(w.stack.rooms(&a).await, sorted(vec![a.sid.clone(), "room1".into()]));
    assert_eq!(w.stack.rooms(&c).await, sorted(vec![c.sid.clone(), "joined".into()]));
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn disconnect_sockets_by_socket_id() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["kick"]).await;
    let b = w.stack.connect("/", 1, &["kick"]).await;
    let stay = w.stack.connect("/", 1, &["kick"]).await;
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec![a.sid.clone(), b.sid.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    assert_eq!(w.stack.disconnect_reason(&b).await, "io server disconnect");
    let got = w.received("/", "barrier", &[&stay]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert_eq!(w.stack.state(&stay).await["connected"], true);
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn rejected_and_unsupported_calls_reach_nobody_and_disconnect_nobody() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let b = w.stack.connect("/", 1, &[]).await;
    let err = w.c.emit(emit_req(&["r"], "connect", vec![])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err =
        w.c.emit(emit_req(&["r"], "null", vec![json_arg("null")]))
            .await
            .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args[0]");
    // Socket operations need socket ids, no except, and no close.
    let err =
        w.c.sockets_join(pb::SocketsJoinRequest {
            rooms: vec!["r".into()],
            join_rooms: vec!["x".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rooms");
    let err =
        w.c.disconnect_sockets(pb::DisconnectSocketsRequest { ..Default::default() })
            .await
            .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rooms");
    let err =
        w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
            rooms: vec![a.sid.clone()],
            close: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "close");
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
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            event: "hello".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("python-socketio"), "{}", err.message());
    let got = w.received("/", "barrier", &[&a, &b]).await;
    assert_eq!(got, [Vec::<Value>::new(), Vec::new()]);
    for c in [&a, &b] {
        assert_eq!(w.stack.state(c).await["connected"], true);
    }
    assert_eq!(w.stack.rooms(&a).await, sorted(vec![a.sid.clone(), "r".into()]));
    w.assert_servers_healthy().await;
}

/// Flask-SocketIO's managers use the channel `flask-socketio`; the target's
/// `channel` option reaches them, the default channel reaches nobody.
#[tokio::test]
async fn a_flask_socketio_channel_and_the_single_data_shape() {
    let mut w = with_channel(
        "flask-socketio",
        "channel = \"flask-socketio\"\ndata_shape = \"single\"",
    )
    .await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let b = w.stack.connect("/", 1, &["r"]).await;
    assert_eq!(w.emit(&["r"], "one", vec![value(json!({"k": [1, 2]}))]).await, 2);
    w.emit(&["r"], "none", vec![]).await;
    w.emit(&["r"], "bytes", vec![binary(b"\x01\x02")]).await;
    let err =
        w.c.emit(emit_req(&["r"], "two", vec![value(json!(1)), value(json!(2))]))
            .await
            .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args");
    // A second gateway on python-socketio's default channel reaches nobody.
    let other = Gateway::start(Gateway::config(
        &w.stack.redis_url,
        "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n",
    ))
    .await;
    let r = other
        .client()
        .await
        .emit(emit_req(&["r"], "lost", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 0);
    let got = w.received("/", "barrier", &[&a, &b]).await;
    for events in got {
        assert_eq!(
            events,
            [
                ev("one", json!([{"k": [1, 2]}])),
                ev("none", json!([])),
                ev("bytes", json!([b64(&[1, 2])]))
            ]
        );
    }
    w.assert_servers_healthy().await;
}
