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
    assert_eq!(got[2], std::slice::from_ref(&tick));
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
    // Names beyond ASCII, and a control character in a string: JSON text
    // in an AMQP body the managers decode as UTF-8.
    let uni = w.stack.connect("/名前空間", 1, &["部屋"]).await;
    let body = json!({"body": "こんにちは 🌸 \u{7f}\"\\"});
    emit(w, "/名前空間", &["部屋"], "メッセージ", vec![value(body.clone())]).await;
    let got_uni = w.received("/名前空間", "barrier", &[&uni]).await;
    assert_eq!(got_uni[0], [ev("メッセージ", json!([body]))]);
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
    emit(w, ns, &["r"], "two nulls", vec![json_arg("null"), json_arg("null")]).await;
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
            ev("two nulls", json!([null, null])),
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
    let err =
        w.c.server_count(pb::ServerCountRequest {
            namespace: ns.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{}", err.message());
    let err =
        w.c.emit_with_ack(pb::EmitWithAckRequest {
            timeout_ms: 1000,
            op: Some(pb::emit_with_ack_request::Op::Emit(emit_in(
                ns,
                &[&a.sid],
                "ack?",
                vec![],
            ))),
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

/// The gateway's overall health status.
async fn health(addr: std::net::SocketAddr) -> i32 {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    else {
        return -1;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn wait_health(addr: std::net::SocketAddr, want: tonic_health::pb::health_check_response::ServingStatus) {
    // The gateway checks the broker every 100 ms in tests; no event announces a change.
    emitgate_e2e::wait::wait_until(
        format_args!("health {want:?}"),
        Duration::from_secs(20),
        async || match health(addr).await {
            s if s == want as i32 => Ok(()),
            s => Err(s),
        },
    )
    .await;
}

/// One call of the load.
struct Call {
    id: String,
    result: Result<u64, Code>,
    took: Duration,
    /// When the answer came.
    at: Instant,
}

/// The broker is killed and restarted while calls keep coming: every call
/// is OK or UNAVAILABLE within the timeout, every OK call a queue took
/// reached the client (after the restart: all of them; before the kill: all
/// but what the server's queue still held when the broker died, the newest
/// of each task), and the gateway serves again by itself. (A call the
/// broker took while no server had re-bound its queue yet counts 0
/// receivers: the broker dropped it, as it would a server's own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_dies_under_load_and_comes_back() {
    use std::sync::{Arc, Mutex, atomic::AtomicBool, atomic::Ordering};
    use tonic_health::pb::health_check_response::ServingStatus;
    const TIMEOUT: Duration = Duration::from_millis(1000);
    const NS: &str = "/restart";

    let mut broker = RabbitMq::start();
    let redis = emitgate_e2e::RedisServer::start().await;
    let stack = Stack::python_socketio_amqp(&redis.url(), &broker.python_url(), "kombu", 1, "socketio-restart").await;
    let client = stack.connect(NS, 0, &["r"]).await;
    let toml = format!(
        "[redis]\ntimeout_ms = {}\n[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n\
         channel = \"socketio-restart\"\namqp_url = {:?}\n",
        TIMEOUT.as_millis(),
        broker.url()
    );
    let gw = Gateway::start(Gateway::config(&redis.url(), &toml)).await;
    wait_health(gw.addr, ServingStatus::Serving).await;

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    // (OK calls a queue took, failed calls) so far, for the test to await.
    let (progress_tx, progress) = tokio::sync::watch::channel((0usize, 0usize));
    let progress_tx = Arc::new(progress_tx);
    let mut load = Vec::new();
    for task in 0..2 {
        let mut c = gw.client().await;
        let (stop, calls, progress_tx) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&progress_tx));
        load.push(tokio::spawn(async move {
            // Paced, so that the one threading-mode server keeps up.
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                i += 1;
                let id = format!("{task}-{i}");
                let started = Instant::now();
                let result = c
                    .emit(emit_in(NS, &["r"], "load", vec![value(json!(id))]))
                    .await
                    .map(|r| r.into_inner().receivers)
                    .map_err(|e| e.code());
                let routed = matches!(result, Ok(n) if n > 0);
                let failed = result.is_err();
                calls.lock().unwrap().push(Call {
                    id,
                    result,
                    took: started.elapsed(),
                    at: Instant::now(),
                });
                progress_tx.send_modify(|(ok, bad)| {
                    *ok += usize::from(routed);
                    *bad += usize::from(failed);
                });
            }
        }));
    }
    let progress_until = async |what: &str, deadline: Duration, done: &dyn Fn(&(usize, usize)) -> bool| {
        let mut rx = progress.clone();
        if tokio::time::timeout(deadline, rx.wait_for(|p| done(p))).await.is_err() {
            panic!(
                "{what}: not within {deadline:?}; (routed, failed) calls: {:?}",
                *rx.borrow()
            );
        }
    };

    progress_until("100 routed calls", Duration::from_secs(20), &|p| p.0 >= 100).await;
    let killed = Instant::now();
    broker.stop();
    wait_health(gw.addr, ServingStatus::NotServing).await;
    progress_until("5 failed calls", Duration::from_secs(10), &|p| p.1 >= 5).await;
    broker.restart();
    let restarted = Instant::now();
    let before = progress.borrow().0;
    // The server's KombuManager re-binds a queue after its own back-off.
    progress_until("a routed call after the restart", Duration::from_secs(60), &|p| {
        p.0 > before
    })
    .await;
    let recovery = restarted.elapsed();
    progress_until("100 more routed calls", Duration::from_secs(30), &|p| {
        p.0 >= before + 100
    })
    .await;
    wait_health(gw.addr, ServingStatus::Serving).await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    // The barrier goes through the same queue after every load call.
    w_barrier(&gw, NS).await;
    let received: std::collections::HashSet<String> = stack
        .events_before(&client, "barrier")
        .await
        .iter()
        .map(|e| e["args"][0].as_str().unwrap().to_owned())
        .collect();

    let calls = calls.lock().unwrap();
    let mut routed = 0;
    let mut unavailable = 0;
    // A message the broker confirmed sits in the server's (non-durable)
    // queue until the server takes it: the kill loses what the queue still
    // held, the newest messages of each task, never one in the middle.
    let mut lost_before_kill: Vec<&str> = Vec::new();
    for call in calls.iter() {
        let task = call.id.split('-').next().unwrap();
        match call.result {
            Ok(n) if n > 0 && call.at < killed => {
                if received.contains(&call.id) {
                    assert!(
                        !lost_before_kill.contains(&task),
                        "call {} arrived after an earlier call of its task was lost",
                        call.id
                    );
                } else {
                    lost_before_kill.push(task);
                }
                routed += 1;
            }
            Ok(n) if n > 0 => {
                assert!(
                    received.contains(&call.id),
                    "call {} was OK but never delivered",
                    call.id
                );
                routed += 1;
            }
            Ok(_) => {}
            Err(code) => {
                assert_eq!(code, Code::Unavailable, "call {} failed", call.id);
                assert!(
                    call.took < TIMEOUT + Duration::from_millis(1000),
                    "a failure took {:?}",
                    call.took
                );
                unavailable += 1;
            }
        }
    }
    assert!(
        lost_before_kill.len() < 100,
        "{} calls lost at the kill",
        lost_before_kill.len()
    );
    assert!(
        routed >= 200 && unavailable >= 5,
        "{routed} routed, {unavailable} unavailable"
    );
    // The gateway itself answers OK again at once; delivery waits for the
    // server's own back-off before it re-binds its queue.
    let first_ok = calls
        .iter()
        .filter(|c| c.at > restarted && c.result.is_ok())
        .map(|c| c.at - restarted)
        .min()
        .expect("an OK call after the restart");
    assert!(
        first_ok < Duration::from_secs(3),
        "the gateway took {first_ok:?} to publish again"
    );
    assert!(recovery < Duration::from_secs(60), "took {recovery:?} to deliver again");
}

async fn w_barrier(gw: &Gateway, nsp: &str) {
    gw.client()
        .await
        .broadcast(pb::BroadcastRequest {
            namespace: nsp.into(),
            event: "barrier".into(),
            ..Default::default()
        })
        .await
        .expect("barrier");
}

/// What the fixture's capture saw of one message.
async fn next_capture(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a captured message")
        .unwrap()
        .expect("capture ended early");
    serde_json::from_str(&line).unwrap()
}

/// The gateway's message equals the one the manager itself publishes for
/// the same emit: exchange, routing key, every property (aio-pika's random
/// `message_id` aside) and the body's bytes (its `host_id` aside).
async fn same_as_the_manager(manager: &str, publisher: &str) {
    use tokio::io::AsyncBufReadExt;
    let broker = RabbitMq::shared();
    let exchange = format!("socketio-capture-{manager}");
    let python = emitgate_e2e::repo_root().join("tests/fixtures/python-socketio/.venv/bin/python");
    let script = emitgate_e2e::repo_root().join("tests/fixtures/python-socketio/amqp_capture.py");
    let mut capture = tokio::process::Command::new(&python)
        .arg(&script)
        .args([
            "capture",
            "--url",
            &broker.python_url(),
            "--exchange",
            &exchange,
            "--count",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the python-socketio venv (make setup)");
    let mut lines = tokio::io::BufReader::new(capture.stdout.take().unwrap()).lines();
    assert_eq!(next_capture(&mut lines).await, json!({"ready": true}));

    let toml = format!(
        "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\nchannel = {exchange:?}\n\
         amqp_url = {:?}\namqp_publisher = {publisher:?}\n",
        broker.url()
    );
    let gw = Gateway::start(Gateway::config("redis://127.0.0.1:1", &toml)).await;
    let r = gw
        .client()
        .await
        .emit(emit_req(&["r1"], "chat message", vec![value(json!("hello"))]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 1, "the capture's queue took it");
    let ours = next_capture(&mut lines).await;
    let status = tokio::process::Command::new(&python)
        .arg(&script)
        .args([
            "publish",
            "--url",
            &broker.python_url(),
            "--exchange",
            &exchange,
            "--manager",
            manager,
        ])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let theirs = next_capture(&mut lines).await;

    let comparable = |mut m: Value| {
        let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
        let host_id = body["host_id"].as_str().unwrap().to_owned();
        let text = m["body"].as_str().unwrap().replace(&host_id, "H");
        m["body"] = json!(text);
        if let Some(id) = m["properties"].get_mut("message_id") {
            let s = id.as_str().unwrap();
            assert!(s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
            *id = json!("ID");
        }
        m
    };
    assert_eq!(comparable(ours), comparable(theirs));
}

#[tokio::test]
async fn the_gateway_publishes_what_kombu_manager_publishes() {
    same_as_the_manager("kombu", "kombu").await;
}

#[tokio::test]
async fn the_gateway_publishes_what_async_aio_pika_manager_publishes() {
    same_as_the_manager("aiopika", "aio-pika").await;
}
