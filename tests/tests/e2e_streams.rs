//! End-to-end: the `socketio-streams` dialect in front of two real Socket.IO
//! 4 servers with `@socket.io/redis-streams-adapter` 0.3 (connection-state
//! recovery enabled) on a real Redis, and real socket.io-client clients:
//! the shared cases, a client that loses its connection, misses events and
//! gets them on reconnection, several streams, and trimming.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod dialect_suite;

use dialect_suite::{Kind, World, emit_req, ev, is_offset, split_offset};
use emitgate::pb;
use emitgate_e2e::{Gateway, RedisServer, Stack, dialects::StackOptions, value};
use serde_json::{Value, json};

#[tokio::test]
async fn streams_shared_cases() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::Streams, false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}

#[tokio::test]
async fn a_client_that_missed_events_gets_them_when_it_recovers() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::Streams, false, "socket.io").await;
    let a = w.stack.connect("/", 1, &["room1"]).await;
    let other = w.stack.connect("/", 0, &["room1"]).await;
    // A first event gives the client its recovery offset.
    let first =
        w.c.emit(emit_req(&["room1"], "first", vec![]))
            .await
            .unwrap()
            .into_inner();
    w.stack.events_until(&a, "first").await;

    assert_eq!(w.stack.drop_transport(&a).await, "forced close");
    // While it is away: an event to a room it was in, one to a room it was
    // not in, and a broadcast.
    let missed1 =
        w.c.emit(emit_req(&["room1"], "missed1", vec![value(json!({"n": 1}))]))
            .await
            .unwrap()
            .into_inner();
    w.c.emit(emit_req(&["elsewhere"], "not for a", vec![])).await.unwrap();
    let missed2 =
        w.c.broadcast(pb::BroadcastRequest {
            event: "missed2".into(),
            args: vec![value(json!("all"))],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A volatile event, kept away from the connected client: a live client
    // may drop a volatile packet (that is what volatile allows), so only the
    // replay below can be asserted.
    w.c.emit(pb::EmitRequest {
        except_rooms: vec![other.sid.clone()],
        flags: Some(pb::EmitFlags {
            volatile: true,
            compress: None,
        }),
        ..emit_req(&["room1"], "volatile", vec![])
    })
    .await
    .unwrap();
    // The other client is still connected and gets the live events.
    w.expect(
        "/",
        &[(
            &other,
            vec![
                ev("first", json!([])),
                ev("missed1", json!([{"n": 1}])),
                ev("missed2", json!(["all"])),
            ],
        )],
    )
    .await;

    let (sid, recovered) = w.stack.reconnect(&a).await;
    assert!(recovered, "the server restored the session");
    assert_eq!(sid, a.sid, "a recovered session keeps its socket id");
    // The replay ends with the barrier broadcast while it was away.
    let events = w.stack.events_before(&a, "barrier-1").await;
    let replayed: Vec<(Value, Option<String>)> = events.iter().map(|e| split_offset(Kind::Streams, e)).collect();
    assert_eq!(replayed.len(), 4, "{replayed:?}");
    assert_eq!(
        replayed[..3],
        [
            (ev("first", json!([])), Some(first.stream_id)),
            (ev("missed1", json!([{"n": 1}])), Some(missed1.stream_id)),
            (ev("missed2", json!(["all"])), Some(missed2.stream_id)),
        ],
        "the missed entries of its rooms, in stream order, with their entry ids"
    );
    // The adapter (0.3.1) replays every entry of the session's rooms from the
    // stream, volatile ones too (live, a volatile event carries no offset).
    assert_eq!(replayed[3].0, ev("volatile", json!([])));
    // The session's rooms are back, and live events flow again.
    // (Both sides sorted: a socket id may sort before or after "room1".)
    let mut want = [a.sid.clone(), "room1".to_string()];
    want.sort();
    assert_eq!(w.stack.rooms(&a).await, want);
    let live =
        w.c.emit(emit_req(&["room1"], "live", vec![]))
            .await
            .unwrap()
            .into_inner();
    let events = w.stack.events_until(&a, "live").await;
    let last = split_offset(Kind::Streams, events.last().unwrap());
    assert_eq!(last, (ev("live", json!([])), Some(live.stream_id)));
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn a_room_joined_while_away_is_part_of_the_recovered_session() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::Streams, false, "socket.io").await;
    let a = w.stack.connect("/", 0, &[]).await;
    let first =
        w.c.emit(emit_req(&[&a.sid], "hello", vec![]))
            .await
            .unwrap()
            .into_inner();
    assert!(is_offset(&first.stream_id));
    w.stack.events_until(&a, "hello").await;
    // Joined to "late" by the gateway, then dropped before any event to it.
    w.c.sockets_join(pb::SocketsJoinRequest {
        rooms: vec![a.sid.clone()],
        join_rooms: vec!["late".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    w.expect("/", &[(&a, vec![ev("hello", json!([]))])]).await;
    w.stack.drop_transport(&a).await;
    let late =
        w.c.emit(emit_req(&["late"], "late news", vec![]))
            .await
            .unwrap()
            .into_inner();
    let (_, recovered) = w.stack.reconnect(&a).await;
    assert!(recovered);
    let events = w.stack.events_until(&a, "late news").await;
    let last = split_offset(Kind::Streams, events.last().unwrap());
    assert_eq!(last, (ev("late news", json!([])), Some(late.stream_id)));
    w.assert_servers_healthy().await;
}

/// With `streamCount` 4 each namespace has its stream, chosen by the
/// adapter's hash; the gateway picks the same one.
#[tokio::test]
async fn several_streams_are_chosen_by_namespace() {
    let redis = RedisServer::start().await;
    let options = StackOptions {
        adapter: "streams",
        stream_count: Some(4),
        ..StackOptions::default()
    };
    let stack = Stack::start_with(&redis.url(), &options).await;
    let gw = Gateway::start(Gateway::config(
        &redis.url(),
        "[[targets]]\nname = \"default\"\ndialect = \"socketio-streams\"\nstream_count = 4\n",
    ))
    .await;
    let mut c = gw.client().await;
    let root = stack.connect("/", 0, &["r"]).await;
    let admin = stack.connect("/admin", 1, &["r"]).await;
    for nsp in ["/", "/admin"] {
        c.emit(pb::EmitRequest {
            namespace: nsp.into(),
            ..emit_req(&["r"], &format!("to {nsp}"), vec![])
        })
        .await
        .unwrap();
    }
    let got = stack.events_until(&root, "to /").await;
    assert_eq!(split_offset(Kind::Streams, &got[0]).0, ev("to /", json!([])));
    let got = stack.events_until(&admin, "to /admin").await;
    assert_eq!(split_offset(Kind::Streams, &got[0]).0, ev("to /admin", json!([])));
    // hashCode("/") % 4 = 3, hashCode("/admin") % 4 = 0.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let last_nsp = async |conn: &mut redis::aio::MultiplexedConnection, stream: &str| -> String {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await
            .unwrap();
        let fields = &entries[0].1;
        fields.iter().find(|(k, _)| k == "nsp").unwrap().1.clone()
    };
    assert_eq!(last_nsp(&mut conn, "socket.io-3").await, "/");
    assert_eq!(last_nsp(&mut conn, "socket.io-0").await, "/admin");
    assert_eq!(stack.errors().await, Vec::<Value>::new());
}

/// `maxlen` bounds the stream (`XADD … MAXLEN ~`: Redis trims whole nodes,
/// so the length stays near the bound, never far above it).
#[tokio::test]
async fn the_stream_is_trimmed_to_about_maxlen() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(Gateway::config(
        &redis.url(),
        "[[targets]]\nname = \"default\"\ndialect = \"socketio-streams\"\nmaxlen = 10\n",
    ))
    .await;
    let mut c = gw.client().await;
    let items: Vec<pb::BatchItem> = (0..300)
        .map(|i| pb::BatchItem {
            op: Some(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                event: format!("e{i}"),
                ..Default::default()
            })),
        })
        .collect();
    let r = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.published, 300);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg("socket.io")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Without trimming it would be 300; a stream node holds 100 entries.
    assert!(len < 110, "XLEN {len}");
}
