//! End-to-end: the gateway in front of a real Socket.IO 4 cluster (two
//! servers with `@socket.io/redis-adapter` on a real Redis) and real
//! `socket.io-client` clients. Every test asserts what the clients (or the
//! servers' handlers) actually received; a broadcast "barrier" event proves
//! what they did not receive.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::pb;
use emitgate_e2e::world::{World, b64, emit_req, ev};
use emitgate_e2e::{Capture, Stack, binary, json_arg, msgpack, repo_root, value, violations};
use serde_json::{Value, json};
use tonic::Code;

async fn world() -> World {
    World::start(|url| async move { Stack::start(&url, 2).await }, "").await
}

#[tokio::test]
async fn emit_to_a_room_reaches_its_members_on_every_server_only() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1"]).await;
    let other = w.stack.connect("/", 1, &["room2"]).await;
    let receivers = w.emit(&["room1"], "chat message", vec![value(json!("hello"))]).await;
    assert_eq!(receivers, 2, "both servers subscribe to the namespace");
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
async fn except_rooms_and_broadcast() {
    let mut w = world().await;
    let muted = w.stack.connect("/", 0, &["muted", "room1"]).await;
    let a = w.stack.connect("/", 1, &["room1"]).await;
    let b = w.stack.connect("/", 0, &[]).await;
    w.c.broadcast(pb::BroadcastRequest {
        event: "tick".into(),
        except_rooms: vec!["muted".into()],
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
async fn argument_kinds_arrive_as_the_client_expects() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    // {name: "a.bin", data: <bin "abc">, big: 2^60} pre-encoded, as SDKs send nested binary.
    let nested = hex::decode("83a46e616d65a5612e62696ea464617461c403616263a3626967cf1000000000000000").unwrap();
    w.emit(
        &["r"],
        "kinds",
        vec![
            binary(&[0, 1, 2, 253, 254, 255]),
            msgpack(nested),
            json_arg(r#"{"a":{"b":{"c":[1,{"d":"e"}]}},"empty_obj":{},"empty_arr":[],"f":1.5,"i":7.0}"#),
            value(json!({"n": null, "t": true, "list": [1, "two", 3.25]})),
        ],
    )
    .await;
    let mut got = w.received("/", "barrier", &[&a]).await;
    // A JavaScript client holds 2^60 as the double 2^60 (it prints it as
    // 1152921504606847000): same number, so compare as f64.
    let big = got[0][0]["args"][1]["big"].take();
    assert_eq!(big.as_f64(), Some(2f64.powi(60)), "{big}");
    got[0][0]["args"][1]["big"] = json!("<checked below>");
    assert_eq!(
        got[0],
        [ev(
            "kinds",
            json!([
                b64(&[0, 1, 2, 253, 254, 255]),
                {"name": "a.bin", "data": b64(b"abc"), "big": "<checked below>"},
                {"a": {"b": {"c": [1, {"d": "e"}]}}, "empty_obj": {}, "empty_arr": [], "f": 1.5, "i": 7},
                {"n": null, "t": true, "list": [1, "two", 3.25]},
            ])
        )]
    );
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn unicode_names_and_a_large_payload() {
    let mut w = world().await;
    let a = w.stack.connect("/名前空間", 1, &["部屋"]).await;
    let big = "x".repeat(900_000);
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

/// A volatile event may be dropped by design: the flags are asserted on the
/// wire, and only the non-volatile event is awaited at the client (the
/// volatile one, if it arrived, arrived first and intact).
#[tokio::test]
async fn volatile_and_compress_flags_reach_the_servers_and_connected_clients() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let mut cap = Capture::start(&w.stack.redis_url).await;
    w.c.emit(pb::EmitRequest {
        flags: Some(pb::EmitFlags {
            volatile: true,
            compress: Some(false),
        }),
        ..emit_req(&["r"], "pos", vec![value(json!(1.5))])
    })
    .await
    .unwrap();
    w.c.broadcast(pb::BroadcastRequest {
        event: "big".into(),
        flags: Some(pb::EmitFlags {
            volatile: false,
            compress: Some(true),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    // [uid, packet, opts] in MessagePack; opts.flags as the servers read them.
    let flags = |m: &emitgate_e2e::Published| {
        let message = rmpv::decode::read_value(&mut m.payload.as_slice()).unwrap();
        message[2]["flags"].to_string()
    };
    assert_eq!(flags(&cap.next().await), r#"{"volatile": true, "compress": false}"#);
    assert_eq!(flags(&cap.next().await), r#"{"compress": true}"#);
    let got = w.received("/", "barrier", &[&a]).await.remove(0);
    let big = ev("big", json!([]));
    assert!(
        got == [big.clone()] || got == [ev("pos", json!([1.5])), big],
        "events of {}: {got:?}",
        a.id
    );
}

#[tokio::test]
async fn batch_emit_delivers_valid_items_and_atomic_batches_all_or_nothing() {
    let mut w = world().await;
    let u1 = w.stack.connect("/", 0, &["u:1"]).await;
    let u2 = w.stack.connect("/", 1, &["u:2"]).await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let mixed = vec![
        item(pb::batch_item::Op::Emit(emit_req(&["u:1"], "n", vec![value(json!(1))]))),
        item(pb::batch_item::Op::Emit(emit_req(&["u:2"], "disconnect", vec![]))),
        item(pb::batch_item::Op::Emit(emit_req(&["u:2"], "n", vec![value(json!(2))]))),
        item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
            event: "all".into(),
            except_rooms: vec!["u:1".into()],
            ..Default::default()
        })),
    ];
    let r =
        w.c.batch_emit(pb::BatchEmitRequest {
            items: mixed.clone(),
            atomic: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results.iter().map(|r| r.code).collect::<Vec<_>>(), [0, 3, 0, 0]);
    assert_eq!(r.results[1].violations[0].field, "items[1].emit.event");
    let got = w.received("/", "barrier1", &[&u1, &u2]).await;
    assert_eq!(got[0], [ev("n", json!([1]))]);
    assert_eq!(got[1], [ev("n", json!([2])), ev("all", json!([]))]);

    let err =
        w.c.batch_emit(pb::BatchEmitRequest {
            items: mixed,
            atomic: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err)[0].0, "items[1].emit.event");
    // Nothing new arrived before the second barrier, and nobody was disconnected.
    w.barrier("/", "barrier2").await;
    for c in [&u1, &u2] {
        let events = w.stack.events_until(c, "barrier2").await;
        let after_first: Vec<&Value> = events
            .iter()
            .skip_while(|e| e["event"] != "barrier1")
            .skip(1)
            .take_while(|e| e["event"] != "barrier2")
            .collect();
        assert!(after_first.is_empty(), "{after_first:?}");
        assert_eq!(w.stack.state(c).await["connected"], true);
    }
}

#[tokio::test]
async fn sockets_join_then_emit_and_sockets_leave() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1", "vip"]).await;
    let c = w.stack.connect("/", 1, &[]).await;
    let r =
        w.c.sockets_join(pb::SocketsJoinRequest {
            rooms: vec!["room1".into()],
            except_rooms: vec!["vip".into()],
            join_rooms: vec!["joined".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 2);
    // The request and the emit travel in order through Redis to each server.
    w.emit(&["joined"], "welcome", vec![]).await;
    let got = w.received("/", "barrier1", &[&a, &b, &c]).await;
    assert_eq!(got[0], [ev("welcome", json!([]))]);
    assert_eq!(got[1], Vec::<Value>::new());
    assert_eq!(got[2], Vec::<Value>::new());
    assert_eq!(w.stack.rooms(&a).await, {
        let mut r = vec![a.sid.clone(), "joined".into(), "room1".into()];
        r.sort();
        r
    });

    w.c.sockets_leave(pb::SocketsLeaveRequest {
        leave_rooms: vec!["joined".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    w.emit(&["joined"], "after leave", vec![]).await;
    w.barrier("/", "barrier2").await;
    let events = w.stack.events_until(&a, "barrier2").await;
    assert!(!events.iter().any(|e| e["event"] == "after leave"), "{events:?}");
    assert!(!w.stack.rooms(&a).await.contains(&"joined".to_string()));
}

#[tokio::test]
async fn disconnect_sockets_with_and_without_close() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["kick"]).await;
    let b = w.stack.connect("/", 1, &["kick"]).await;
    let stay = w.stack.connect("/", 1, &["stay"]).await;
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec!["kick".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    assert_eq!(w.stack.disconnect_reason(&b).await, "io server disconnect");

    let c = w.stack.connect("/", 0, &["close"]).await;
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec![c.sid.clone()],
        close: true,
        ..Default::default()
    })
    .await
    .unwrap();
    // With close, the server disconnects each socket of the connection and
    // then closes it: the client sees the server's disconnect first.
    assert_eq!(w.stack.disconnect_reason(&c).await, "io server disconnect");
    let got = w.received("/", "barrier", &[&stay]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert_eq!(w.stack.state(&stay).await["connected"], true);
}

#[tokio::test]
async fn server_side_emit_reaches_the_servers_handlers() {
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
}

#[tokio::test]
async fn rejected_calls_reach_nobody_and_disconnect_nobody() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["r"]).await;
    let b = w.stack.connect("/", 1, &[]).await;
    for event in ["connect", "disconnect", "connect_error", "newListener"] {
        let err = w.c.emit(emit_req(&["r"], event, vec![])).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    let err = w.c.emit(emit_req(&[], "everyone", vec![])).await.unwrap_err();
    assert_eq!(
        violations(&err),
        [("rooms".into(), "at least one room is required".into())]
    );
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
    w.assert_servers_healthy().await;
}

/// grpcurl finds the API by reflection alone (no proto file) and its Emit
/// reaches a client.
#[tokio::test]
async fn grpcurl_drives_the_gateway_through_reflection() {
    let mut w = world().await;
    let a = w.stack.connect("/", 0, &["ops"]).await;
    let grpcurl =
        std::env::var("GRPCURL").unwrap_or_else(|_| repo_root().join(".tools/bin/grpcurl").display().to_string());
    let addr = w.gw.addr.to_string();
    // Async: the in-process gateway runs on this test's runtime.
    let run = async |args: Vec<String>| {
        let out = tokio::process::Command::new(&grpcurl)
            .args(&args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{grpcurl} not runnable ({e}): run `make setup`"));
        assert!(
            out.status.success(),
            "grpcurl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list = run(vec!["-plaintext".into(), addr.clone(), "list".into()]).await;
    for svc in [
        "emitgate.v1.EmitterService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(list.lines().any(|l| l == svc), "{svc} missing from:\n{list}");
    }
    let out = run(vec![
        "-plaintext".into(),
        "-d".into(),
        r#"{"rooms":["ops"],"event":"deploy","args":[{"value":{"version":"1.2.3","canary":true}}]}"#.into(),
        addr,
        "emitgate.v1.EmitterService/Emit".into(),
    ])
    .await;
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["receivers"], "2");
    let got = w.received("/", "barrier", &[&a]).await;
    assert_eq!(got[0], [ev("deploy", json!([{"version": "1.2.3", "canary": true}]))]);
}
