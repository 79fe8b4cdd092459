//! End-to-end: request/response RPCs beyond the happy path — EmitWithAck
//! to single sockets of real python-socketio servers (callbacks relayed
//! back over Redis), the answer subscriber after a Redis restart, and a
//! `PSUBSCRIBE *` subscriber that must not be counted as a server.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb::{self, argument::Kind as ArgKind};
use emitgate_e2e::{
    Capture, Gateway, RedisServer, SioClient, Stack, dialects::StackOptions, value, wait::wait_until, world::World,
};
use serde_json::{Value, json};

/// A client of the stack with the harness's `ack` option.
async fn client(stack: &Stack, server: u32, rooms: &[&str], ack: Value) -> SioClient {
    stack.connect_with("/", server, rooms, json!({"ack": ack})).await
}

fn emit_with_ack(rooms: &[&str], timeout_ms: u32) -> pb::EmitWithAckRequest {
    pb::EmitWithAckRequest {
        op: Some(pb::emit_with_ack_request::Op::Emit(pb::EmitRequest {
            rooms: rooms.iter().map(|r| (*r).into()).collect(),
            event: "question".into(),
            args: vec![value(json!("q1"))],
            ..Default::default()
        })),
        timeout_ms,
    }
}

fn acks(r: &pb::EmitWithAckResponse) -> Vec<Value> {
    r.acks
        .iter()
        .map(|a| match &a.kind {
            Some(ArgKind::Value(v)) => proto_to_json(v),
            other => panic!("unexpected ack {other:?}"),
        })
        .collect()
}

fn proto_to_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NullValue(_)) | None => Value::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(t)) => json!(t),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(proto_to_json).collect()),
        Some(Kind::StructValue(st)) => {
            Value::Object(st.fields.iter().map(|(k, x)| (k.clone(), proto_to_json(x))).collect())
        }
    }
}

/// python-socketio relays an emit callback to its sender over Redis: the
/// gateway's request carries `callback: [request id, namespace, 1]` and
/// its own `host_id`; the server holding the socket publishes a
/// `callback` message with that host id and the request id as `sid`.
/// Two concurrent requests get their own socket's ack each.
#[tokio::test]
async fn python_socketio_acks_of_a_single_socket_come_back_by_request_id() {
    let mut w = World::start(
        async |url| Stack::python_socketio(&url, 2, "socketio").await,
        "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n",
    )
    .await;
    let a = client(&w.stack, 0, &[], json!({"reply": {"ok": true, "n": 7}})).await;
    let b = client(&w.stack, 1, &[], json!({"reply": "from-b"})).await;
    let silent = client(&w.stack, 1, &[], json!("never")).await;

    let (mut ca, mut cb) = (w.c.clone(), w.c.clone());
    let (ra, rb) = tokio::join!(
        ca.emit_with_ack(emit_with_ack(&[&a.sid], 5000)),
        cb.emit_with_ack(emit_with_ack(&[&b.sid], 5000)),
    );
    let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
    assert!(ra.complete && rb.complete, "{ra:?} {rb:?}");
    assert_eq!(acks(&ra), [json!({"ok": true, "n": 7.0})]);
    assert_eq!(acks(&rb), [json!("from-b")]);
    // The servers report no counts: the one addressed socket is the count.
    assert_eq!((ra.sockets, ra.servers, ra.servers_expected), (1, 0, 0), "{ra:?}");
    // The client got the event with its argument.
    let events = w.stack.events_until(&a, "question").await;
    assert_eq!(events[0]["args"], json!(["q1"]), "{events:?}");

    let started = Instant::now();
    let r =
        w.c.emit_with_ack(emit_with_ack(&[&silent.sid], 700))
            .await
            .unwrap()
            .into_inner();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(!r.complete && r.acks.is_empty(), "{r:?}");
    assert_eq!(r.sockets, 0, "{r:?}");
    assert!(w.stack.errors().await.is_empty(), "{:?}", w.stack.errors().await);
}

/// A binary ack cannot cross python-socketio's JSON pub/sub: the server
/// cannot publish the callback (it gives up, an error in its log), and the
/// call times out.
#[tokio::test]
async fn python_socketio_binary_acks_never_reach_redis() {
    let mut w = World::start(
        async |url| Stack::python_socketio(&url, 1, "socketio").await,
        "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n",
    )
    .await;
    let a = client(&w.stack, 0, &[], json!({"reply": {"$binary": "AQID"}})).await;
    let r =
        w.c.emit_with_ack(emit_with_ack(&[&a.sid], 800))
            .await
            .unwrap()
            .into_inner();
    assert!(!r.complete && r.acks.is_empty(), "{r:?}");
    let errors = w.stack.errors().await;
    assert!(
        errors
            .iter()
            .any(|e| e["message"] == "Cannot publish to redis... giving up"),
        "{errors:?}"
    );
}

/// Redis restarts between two calls: the gateway's answer subscriber
/// connects and subscribes again by itself.
#[tokio::test]
async fn a_redis_restart_between_two_requests_needs_no_gateway_restart() {
    let mut redis = RedisServer::start().await;
    let stack = Stack::start_with(&redis.url(), &StackOptions::default()).await;
    let gw = Gateway::start(Gateway::config(&redis.url(), "")).await;
    let mut c = gw.client().await;
    let _a = client(&stack, 0, &["r"], json!({"reply": "a"})).await;
    let _b = client(&stack, 1, &["r"], json!({"reply": "b"})).await;
    let r = c.emit_with_ack(emit_with_ack(&["r"], 5000)).await.unwrap().into_inner();
    assert!(r.complete && r.sockets == 2, "{r:?}");

    redis.stop();
    redis.restart().await;
    // The Socket.IO servers reconnect and subscribe again on their own.
    wait_until("both servers subscribed again", Duration::from_secs(15), async || {
        let n = c
            .server_count(pb::ServerCountRequest::default())
            .await
            .map(|r| r.into_inner().servers);
        if matches!(n, Ok(2)) { Ok(()) } else { Err(n) }
    })
    .await;
    let r = c.emit_with_ack(emit_with_ack(&["r"], 5000)).await.unwrap().into_inner();
    assert!(r.complete, "{r:?}");
    assert_eq!((r.sockets, r.servers, r.servers_expected), (2, 2, 2));
    let mut got = acks(&r);
    got.sort_by_key(ToString::to_string);
    assert_eq!(got, [json!("a"), json!("b")]);
}

/// A pattern subscriber receives every PUBLISH, so the PUBLISH reply counts
/// it; the gateway counts the request channel's own subscribers instead,
/// and the call is complete as soon as both servers answered.
#[tokio::test]
async fn a_psubscribe_star_subscriber_is_not_waited_for() {
    for (adapter, dialect) in [("classic", "socketio"), ("streams", "socketio-streams")] {
        let redis = RedisServer::start().await;
        let stack = Stack::start_with(
            &redis.url(),
            &StackOptions {
                adapter,
                ..StackOptions::default()
            },
        )
        .await;
        let gw = Gateway::start(Gateway::config(
            &redis.url(),
            &format!("[[targets]]\nname = \"default\"\ndialect = \"{dialect}\"\n"),
        ))
        .await;
        let mut c = gw.client().await;
        let _a = client(&stack, 0, &["r"], json!({"reply": "a"})).await;
        let _b = client(&stack, 1, &["r"], json!({"reply": "b"})).await;
        let _capture = Capture::start(&redis.url()).await;
        let started = Instant::now();
        let r = c.emit_with_ack(emit_with_ack(&["r"], 5000)).await.unwrap().into_inner();
        assert!(r.complete, "{adapter}: {r:?}");
        assert_eq!((r.sockets, r.servers, r.servers_expected), (2, 2, 2), "{adapter}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{adapter}: answered by the servers, not by the timeout"
        );
    }
}
