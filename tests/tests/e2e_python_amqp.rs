//! End-to-end: the gateway's `python-socketio` dialect on an AMQP target
//! (`amqp_url`), in front of real python-socketio 5 servers scaled out
//! through one real RabbitMQ broker:
//! - two threading-mode `Server`s with `KombuManager`;
//! - two `AsyncServer`s (aiohttp) with `AsyncAioPikaManager`, the gateway
//!   copying aio-pika's message properties (`amqp_publisher = "aio-pika"`);
//! - two Flask-SocketIO apps with `message_queue = 'amqp://…'` on its
//!   default channel `flask-socketio`, with `data_shape = "single"`;
//!
//! and real socket.io-client 4 clients. Each stack plays the dialect's
//! cases in turn, each case in namespaces of its own, and asserts what the
//! clients received; a broadcast barrier proves what they did not receive
//! (each server handles its queue's messages in publish order). One broker
//! serves the binary (its boot takes seconds); each stack has its own
//! exchange.
//!
//! Also here: a capture of what `KombuManager` and `AsyncAioPikaManager`
//! themselves publish, compared with the gateway's messages property by
//! property, and the refusals of what needs Redis (idempotency keys,
//! request/response RPCs) or a broker (an unreachable one is UNAVAILABLE
//! within the timeout).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb;
use emitgate_e2e::amqp::RabbitMq;
use emitgate_e2e::world::{World, b64, emit_req, ev};
use emitgate_e2e::{Gateway, Stack, binary, json_arg, value, violations};
use serde_json::{Value, json};
use tonic::Code;

/// One python-socketio stack on the shared broker.
struct Setup {
    manager: &'static str,
    channel: &'static str,
    /// Extra target options.
    options: &'static str,
}

async fn world(s: &Setup) -> World {
    let broker = RabbitMq::shared();
    let toml = format!(
        "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\nchannel = {:?}\namqp_url = {:?}\n{}",
        s.channel,
        broker.url(),
        s.options
    );
    let (manager, channel) = (s.manager, s.channel);
    World::start(
        |redis_url| async move {
            Stack::python_socketio_amqp(&redis_url, &broker.python_url(), manager, 2, channel).await
        },
        &toml,
    )
    .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// An Emit to `rooms` of `nsp`.
fn emit_in(nsp: &str, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        namespace: nsp.into(),
        ..emit_req(rooms, event, args)
    }
}

async fn emit(w: &mut World, nsp: &str, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> u64 {
    w.c.emit(emit_in(nsp, rooms, event, args))
        .await
        .expect("emit")
        .into_inner()
        .receivers
}

async fn rooms_and_except(w: &mut World) {
    let ns = "/rooms";
    let a = w.stack.connect(ns, 0, &["room1", "r2"]).await;
    let b = w.stack.connect(ns, 1, &["room1"]).await;
    let other = w.stack.connect(ns, 1, &["room2"]).await;
    let lone = w.stack.connect(ns, 0, &[]).await;
    // The broker routed it to the servers' queues: 1 (it does not say how many).
    assert_eq!(
        emit(w, ns, &["room1"], "chat message", vec![value(json!("hello"))]).await,
        1
    );
    emit(w, ns, &["room1", "r2", "room1"], "news", vec![value(json!({"id": 7}))]).await;
    emit(w, ns, &[&lone.sid], "direct", vec![value(json!("just you"))]).await;
    w.c.broadcast(pb::BroadcastRequest {
        namespace: ns.into(),
        event: "tick".into(),
        except_rooms: vec![a.sid.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let err =
        w.c.broadcast(pb::BroadcastRequest {
            namespace: ns.into(),
            event: "never".into(),
            except_rooms: vec!["room1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "except_rooms");
    let got = w.received(ns, "barrier", &[&a, &b, &other, &lone]).await;
    let hello = ev("chat message", json!(["hello"]));
    let news = ev("news", json!([{"id": 7}]));
    let tick = ev("tick", json!([]));
    assert_eq!(got[0], [hello.clone(), news.clone()]);
    assert_eq!(got[1], [hello, news, tick.clone()]);
    assert_eq!(got[2], [tick.clone()]);
    assert_eq!(got[3], [ev("direct", json!(["just you"])), tick]);
}

async fn namespaces(w: &mut World) {
    let admin = w.stack.connect("/ns/admin", 1, &["ops"]).await;
    let root = w.stack.connect("/ns", 0, &["ops"]).await;
    emit(w, "ns/admin", &["ops"], "alert", vec![value(json!("y"))]).await;
    let got_admin = w.received("/ns/admin", "barrier", &[&admin]).await;
    let got_root = w.received("/ns", "barrier", &[&root]).await;
    assert_eq!(got_admin[0], [ev("alert", json!(["y"]))]);
    assert_eq!(got_root[0], Vec::<Value>::new());
}

/// Argument kinds with `data_shape = "list"` (python-socketio ≥ 5.15.1).
async fn argument_kinds(w: &mut World) {
    let ns = "/kinds";
    let a = w.stack.connect(ns, 0, &["r"]).await;
    emit(
        w,
        ns,
        &["r"],
        "kinds",
        vec![
            binary(&[0, 1, 2, 253, 254, 255]),
            json_arg(r#"{"a":{"b":[1,{"d":"e"}]},"f":1.5}"#),
            value(json!({"n": null, "t": true, "list": [1, "two", 3.25]})),
        ],
    )
    .await;
    emit(w, ns, &["r"], "one list", vec![json_arg("[1,2]")]).await;
    emit(w, ns, &["r"], "none", vec![]).await;
    let big = "x".repeat(300_000);
    emit(
        w,
        ns,
        &["r"],
        "メッセージ",
        vec![value(json!("こんにちは 🌸 \"\\")), value(json!(big))],
    )
    .await;
    let got = w.received(ns, "barrier", &[&a]).await;
    assert_eq!(
        got[0],
        [
            ev(
                "kinds",
                json!([
                    b64(&[0, 1, 2, 253, 254, 255]),
                    {"a": {"b": [1, {"d": "e"}]}, "f": 1.5},
                    {"n": null, "t": true, "list": [1, "two", 3.25]},
                ])
            ),
            ev("one list", json!([[1, 2]])),
            ev("none", json!([])),
            ev("メッセージ", json!(["こんにちは 🌸 \"\\", big])),
        ]
    );
}

/// Arguments with `data_shape = "single"`: one bare argument at most.
async fn single_arguments(w: &mut World) {
    let ns = "/single";
    let a = w.stack.connect(ns, 0, &["r"]).await;
    let b = w.stack.connect(ns, 1, &["r"]).await;
    emit(w, ns, &["r"], "one", vec![value(json!({"k": [1, 2]}))]).await;
    emit(w, ns, &["r"], "none", vec![]).await;
    emit(w, ns, &["r"], "bytes", vec![binary(b"\x01\x02")]).await;
    let err =
        w.c.emit(emit_in(ns, &["r"], "two", vec![value(json!(1)), value(json!(2))]))
            .await
            .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args");
    let got = w.received(ns, "barrier", &[&a, &b]).await;
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
}

async fn batch(w: &mut World) {
    let ns = "/batch";
    let u1 = w.stack.connect(ns, 0, &["u:1"]).await;
    let u2 = w.stack.connect(ns, 1, &["u:2"]).await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let r =
        w.c.batch_emit(pb::BatchEmitRequest {
            items: vec![
                item(pb::batch_item::Op::Emit(emit_in(
                    ns,
                    &["u:1"],
                    "n",
                    vec![value(json!(1))],
                ))),
                item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                    namespace: ns.into(),
                    event: "all".into(),
                    except_rooms: vec!["u:1".into()],
                    ..Default::default()
                })),
                item(pb::batch_item::Op::Emit(emit_in(
                    ns,
                    &["u:2"],
                    "n",
                    vec![value(json!(2))],
                ))),
                item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                    namespace: ns.into(),
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
    assert_eq!(r.published, 3);
    assert_eq!(r.receivers, 3, "3 messages, each routed");
    let got = w.received(ns, "barrier", &[&u1, &u2]).await;
    assert_eq!(got[0], [ev("n", json!([1]))]);
    assert_eq!(got[1], [ev("n", json!([2])), ev("all", json!([]))]);
}

async fn join_leave_close_room(w: &mut World) {
    let ns = "/rooms-ops";
    let a = w.stack.connect(ns, 0, &["room1"]).await;
    let b = w.stack.connect(ns, 1, &["room1"]).await;
    let c = w.stack.connect(ns, 1, &[]).await;
    let r =
        w.c.sockets_join(pb::SocketsJoinRequest {
            namespace: ns.into(),
            rooms: vec![a.sid.clone(), c.sid.clone()],
            join_rooms: vec!["joined".into(), "also".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 4, "one enter_room per socket and room, each routed");
    emit(w, ns, &["joined"], "welcome", vec![]).await;
    let got = w.received(ns, "barrier1", &[&a, &b, &c]).await;
    assert_eq!(got[0], [ev("welcome", json!([]))]);
    assert_eq!(got[1], Vec::<Value>::new());
    assert_eq!(got[2], [ev("welcome", json!([]))]);
    assert_eq!(
        w.stack.rooms(&a).await,
        sorted(vec![a.sid.clone(), "also".into(), "joined".into(), "room1".into()])
    );
    w.c.sockets_leave(pb::SocketsLeaveRequest {
        namespace: ns.into(),
        rooms: vec![a.sid.clone()],
        leave_rooms: vec!["joined".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Every socket leaving "also" is python-socketio's close_room.
    w.c.sockets_leave(pb::SocketsLeaveRequest {
        namespace: ns.into(),
        leave_rooms: vec!["also".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    emit(w, ns, &["joined"], "still joined", vec![]).await;
    emit(w, ns, &["also"], "closed", vec![]).await;
    // A client's events accumulate: those after the first barrier.
    let got = w.received(ns, "barrier2", &[&a, &c]).await;
    let after_first = |events: &[Value]| -> Vec<Value> {
        let start = events.iter().position(|e| e["event"] == "barrier1").expect("barrier1");
        events[start + 1..].to_vec()
    };
    assert_eq!(after_first(&got[0]), Vec::<Value>::new());
    assert_eq!(after_first(&got[1]), [ev("still joined", json!([]))]);
    assert_eq!(w.stack.rooms(&a).await, sorted(vec![a.sid.clone(), "room1".into()]));
    assert_eq!(w.stack.rooms(&c).await, sorted(vec![c.sid.clone(), "joined".into()]));
}

async fn disconnect(w: &mut World) {
    let ns = "/kick";
    let a = w.stack.connect(ns, 0, &["kick"]).await;
    let b = w.stack.connect(ns, 1, &["kick"]).await;
    let stay = w.stack.connect(ns, 1, &["kick"]).await;
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        namespace: ns.into(),
        rooms: vec![a.sid.clone(), b.sid.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    assert_eq!(w.stack.disconnect_reason(&b).await, "io server disconnect");
    let got = w.received(ns, "barrier", &[&stay]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert_eq!(w.stack.state(&stay).await["connected"], true);
}

/// What python-socketio cannot express, and what needs Redis, is refused
/// and reaches nobody.
async fn refused(w: &mut World) {
    let ns = "/refused";
    let a = w.stack.connect(ns, 0, &["r"]).await;
    let err = w.c.emit(emit_in(ns, &["r"], "connect", vec![])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err =
        w.c.sockets_join(pb::SocketsJoinRequest {
            namespace: ns.into(),
            rooms: vec!["r".into()],
            join_rooms: vec!["x".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "rooms");
    let err =
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            namespace: ns.into(),
            event: "hello".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    // Idempotency records live in Redis.
    let err =
        w.c.emit(pb::EmitRequest {
            idempotency_key: "k1".into(),
            ..emit_in(ns, &["r"], "keyed", vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{}", err.message());
    assert!(err.message().contains("amqp_url"), "{}", err.message());
    // The request/response RPCs read the servers' answers from Redis.
    let err =
        w.c.fetch_sockets(pb::FetchSocketsRequest {
            namespace: ns.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{}", err.message());
    let got = w.received(ns, "barrier", &[&a]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert_eq!(w.stack.state(&a).await["connected"], true);
}

async fn play(s: Setup, single: bool) {
    let mut w = world(&s).await;
    rooms_and_except(&mut w).await;
    namespaces(&mut w).await;
    if single {
        single_arguments(&mut w).await;
    } else {
        argument_kinds(&mut w).await;
    }
    batch(&mut w).await;
    join_leave_close_room(&mut w).await;
    disconnect(&mut w).await;
    refused(&mut w).await;
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn kombu_manager_servers() {
    play(
        Setup {
            manager: "kombu",
            channel: "socketio",
            options: "",
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn async_aio_pika_manager_servers() {
    play(
        Setup {
            manager: "aiopika",
            channel: "socketio-aiopika",
            options: "amqp_publisher = \"aio-pika\"\n",
        },
        false,
    )
    .await;
}

#[tokio::test]
async fn flask_socketio_servers_with_message_queue() {
    play(
        Setup {
            manager: "flask",
            channel: "flask-socketio",
            options: "data_shape = \"single\"\n",
        },
        true,
    )
    .await;
}

/// A broker nobody listens on: every call is UNAVAILABLE within the
/// timeout, and the target's health says so.
#[tokio::test]
async fn an_unreachable_broker_is_unavailable_fast() {
    let port = emitgate_e2e::free_port();
    let toml = format!(
        "[redis]\ntimeout_ms = 500\n[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\namqp_url = \"amqp://127.0.0.1:{port}/%2f\"\n"
    );
    let gw = Gateway::start(Gateway::config("redis://127.0.0.1:1", &toml)).await;
    let mut c = gw.client().await;
    for _ in 0..3 {
        let started = Instant::now();
        let err = c.emit(emit_req(&["r"], "e", vec![])).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        assert!(err.message().contains("AMQP broker"), "{}", err.message());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }
}
