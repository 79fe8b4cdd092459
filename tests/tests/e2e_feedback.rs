//! End-to-end: the request/response RPCs (EmitWithAck, FetchSockets,
//! AllRooms, ServerCount, ServerSideEmitWithAck) against two real Socket.IO
//! 4 servers with the classic, sharded (static and dynamic) and streams
//! adapters, on a standalone Redis and on a Redis Cluster, with real
//! socket.io-client clients that ack with values, binary and nested binary,
//! one that never acks, socket.data set by the server, server-side
//! handlers that reply or do not, and a server killed mid-request. The dialects that lack operations answer
//! UNIMPLEMENTED before publishing anything.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb::{self, argument::Kind as ArgKind, emitter_service_client::EmitterServiceClient};
use emitgate_e2e::{
    Capture, Gateway, RedisServer, SioClient, Stack,
    dialects::{RedisCluster, StackOptions},
    value,
    wait::wait_until,
};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

/// One gateway target in front of one harness stack.
struct Setup {
    c: EmitterServiceClient<Channel>,
    stack: Stack,
    _gw: Gateway,
    redis_url: String,
    /// The channel answers to the gateway arrive on (garbage goes there).
    response_channel: String,
    sharded: bool,
    /// Namespace prefix, so that setups sharing a Redis stay apart.
    key: String,
}

#[derive(Debug, Clone, Copy)]
enum Adapter {
    Classic,
    Sharded(&'static str),
    Streams,
}

impl Setup {
    async fn start(redis_url: &str, adapter: Adapter, cluster: bool, key: &str) -> Self {
        let mut options = StackOptions {
            redis_cluster: cluster,
            key: Some(key.into()),
            ..StackOptions::default()
        };
        let mut target = vec![format!("key = {key:?}")];
        let (response_channel, sharded) = match adapter {
            Adapter::Classic => (format!("{key}-response#/#"), false),
            Adapter::Sharded(mode) => {
                options.adapter = "sharded";
                options.subscription_mode = Some(mode);
                target.push("dialect = \"socketio-sharded\"".into());
                (format!("{key}#/#emitter#"), true)
            }
            Adapter::Streams => {
                options.adapter = "streams";
                options.stream_name = Some(key.into());
                target.push("dialect = \"socketio-streams\"".into());
                target.push(format!("stream_name = {key:?}"));
                (format!("{key}#/#emitter#"), false)
            }
        };
        if cluster {
            target.push("cluster = true".into());
        }
        let toml = format!("[[targets]]\nname = \"default\"\n{}\n", target.join("\n"));
        let stack = Stack::start_with(redis_url, &options).await;
        let gw = Gateway::start(Gateway::config(redis_url, &toml)).await;
        let c = gw.client().await;
        Self {
            c,
            stack,
            _gw: gw,
            redis_url: redis_url.to_owned(),
            response_channel,
            sharded,
            key: key.to_owned(),
        }
    }

    /// Connects a client with the harness's extra options (`ack`, `data`,
    /// `auth`, `headers`).
    async fn client(&self, server: u32, rooms: &[&str], extra: Value) -> SioClient {
        self.stack.connect_with("/", server, rooms, extra).await
    }

    async fn reset(&self) {
        let (status, v) = self.stack.call(reqwest::Method::POST, "/reset", None).await;
        assert_eq!(status, 200, "{v}");
    }

    async fn emit_with_ack(&mut self, rooms: &[&str], timeout_ms: u32) -> pb::EmitWithAckResponse {
        let op = if rooms.is_empty() {
            pb::emit_with_ack_request::Op::Broadcast(pb::BroadcastRequest {
                event: "question".into(),
                args: vec![value(json!("q1"))],
                ..Default::default()
            })
        } else {
            pb::emit_with_ack_request::Op::Emit(pb::EmitRequest {
                rooms: rooms.iter().map(|r| (*r).into()).collect(),
                event: "question".into(),
                args: vec![value(json!("q1"))],
                ..Default::default()
            })
        };
        self.c
            .emit_with_ack(pb::EmitWithAckRequest {
                op: Some(op),
                timeout_ms,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn fetch(&mut self, rooms: &[&str], except: &[&str]) -> pb::FetchSocketsResponse {
        self.c
            .fetch_sockets(pb::FetchSocketsRequest {
                rooms: rooms.iter().map(|r| (*r).into()).collect(),
                except_rooms: except.iter().map(|r| (*r).into()).collect(),
                timeout_ms: 3000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Publishes junk on the gateway's response channel.
    async fn publish_garbage(&self) {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let verb = if self.sharded { "SPUBLISH" } else { "PUBLISH" };
        for junk in [
            b"not json at all".to_vec(),
            b"{\"requestId\":".to_vec(),
            br#"{"requestId":"00000000000000000000000000000000","type":8,"clientCount":99}"#.to_vec(),
            vec![0xc1, 0xff, 0x00],
        ] {
            let _: i64 = redis::cmd(verb)
                .arg(&self.response_channel)
                .arg(junk)
                .query_async(&mut conn)
                .await
                .unwrap_or(0);
        }
    }
}

fn as_json(a: &pb::Argument) -> Value {
    match &a.kind {
        Some(ArgKind::Value(v)) => proto_to_json(v),
        Some(ArgKind::Binary(b)) => json!({"binary": b}),
        Some(ArgKind::Msgpack(b)) => json!({"msgpack": msgpack_to_json(b)}),
        other => panic!("unexpected argument {other:?}"),
    }
}

fn proto_to_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NullValue(_)) | None => Value::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(proto_to_json).collect()),
        Some(Kind::StructValue(s)) => {
            Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), proto_to_json(v))).collect())
        }
    }
}

fn msgpack_to_json(bytes: &[u8]) -> Value {
    fn conv(v: rmpv::Value) -> Value {
        match v {
            rmpv::Value::Binary(b) => json!({"bin": b}),
            rmpv::Value::Map(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_owned(), conv(v)))
                    .collect(),
            ),
            rmpv::Value::Array(a) => Value::Array(a.into_iter().map(conv).collect()),
            rmpv::Value::String(s) => json!(s.as_str().unwrap()),
            rmpv::Value::Integer(i) => json!(
                i.as_u64()
                    .map_or_else(|| i.as_i64().unwrap().to_string(), |u| u.to_string())
            ),
            rmpv::Value::F64(f) => json!(f),
            rmpv::Value::Boolean(b) => json!(b),
            _ => Value::Null,
        }
    }
    conv(rmpv::decode::read_value(&mut &bytes[..]).unwrap())
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(std::string::ToString::to_string);
    v
}

/// Every case, on one setup.
async fn run(s: &mut Setup) {
    acks_with_values_binary_and_nested_binary(s).await;
    s.reset().await;
    a_client_that_never_acks(s).await;
    s.reset().await;
    a_namespace_without_sockets(s).await;
    s.reset().await;
    fetch_sockets(s).await;
    s.reset().await;
    all_rooms_and_server_count(s).await;
    s.reset().await;
    server_side_emit_with_ack(s).await;
    s.reset().await;
    garbage_does_not_disturb_a_request(s).await;
    s.reset().await;
    // Last: it leaves one server dead.
    a_server_killed_mid_request(s).await;
    let (_, errors) = s.stack.call(reqwest::Method::GET, "/errors", None).await;
    let errors: Vec<&Value> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "adapter.decode")
        .collect();
    assert!(errors.is_empty(), "{}: server errors {errors:?}", s.key);
}

async fn acks_with_values_binary_and_nested_binary(s: &mut Setup) {
    let _a = s
        .client(0, &["r"], json!({"ack": {"reply": {"ok": true, "n": 7}}}))
        .await;
    let _b = s
        .client(1, &["r"], json!({"ack": {"reply": {"$binary": "AQID"}}}))
        .await;
    let _c = s
        .client(
            1,
            &["r"],
            json!({"ack": {"reply": {"file": {"$binary": "CQ=="}, "name": "x"}}}),
        )
        .await;
    let _outside = s.client(0, &["other"], json!({"ack": {"reply": "wrong"}})).await;
    let r = s.emit_with_ack(&["r"], 5000).await;
    assert!(r.complete, "{}: {r:?}", s.key);
    assert_eq!((r.sockets, r.servers, r.servers_expected), (3, 2, 2), "{}", s.key);
    let acks = sorted(r.acks.iter().map(as_json).collect());
    assert_eq!(
        acks,
        sorted(vec![
            json!({"ok": true, "n": 7.0}),
            json!({"binary": [1, 2, 3]}),
            json!({"msgpack": {"file": {"bin": [9]}, "name": "x"}}),
        ]),
        "{}",
        s.key
    );
}

async fn a_client_that_never_acks(s: &mut Setup) {
    let _a = s.client(0, &[], json!({"ack": {"reply": 1}})).await;
    let _silent = s.client(1, &[], json!({"ack": "never"})).await;
    let started = Instant::now();
    let r = s.emit_with_ack(&[], 700).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(!r.complete, "{}: {r:?}", s.key);
    assert_eq!((r.sockets, r.servers, r.servers_expected), (2, 2, 2));
    assert_eq!(r.acks.iter().map(as_json).collect::<Vec<_>>(), [json!(1.0)]);
}

async fn a_namespace_without_sockets(s: &mut Setup) {
    let started = Instant::now();
    let r = s.emit_with_ack(&[], 5000).await;
    assert!(r.complete, "{}: {r:?}", s.key);
    assert_eq!((r.sockets, r.servers, r.servers_expected, r.acks.len()), (0, 2, 2, 0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered by the servers, not by the timeout"
    );
}

async fn fetch_sockets(s: &mut Setup) {
    let a = s
        .client(
            0,
            &["r", "vip"],
            json!({
                "data": {"user": "u1", "n": 3},
                "auth": {"token": "secret-token"},
                "headers": {"cookie": "session=secret", "authorization": "Bearer secret", "x-app": "demo"},
            }),
        )
        .await;
    let b = s.client(1, &["r"], json!({})).await;
    let c = s.client(1, &["elsewhere"], json!({})).await;

    let r = s.fetch(&["r"], &[]).await;
    assert!(r.complete && !r.truncated, "{}: {r:?}", s.key);
    assert_eq!((r.servers, r.servers_expected), (2, 2));
    let mut ids: Vec<&str> = r.sockets.iter().map(|x| x.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![a.sid.as_str(), b.sid.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let sa = r.sockets.iter().find(|x| x.id == a.sid).unwrap();
    let mut rooms = sa.rooms.clone();
    rooms.sort();
    let mut want_rooms = vec![a.sid.clone(), "r".into(), "vip".into()];
    want_rooms.sort();
    assert_eq!(rooms, want_rooms);
    assert_eq!(
        sa.data.clone().map(|d| proto_to_json(&d)),
        Some(json!({"user": "u1", "n": 3.0}))
    );
    let h = sa.handshake.as_ref().unwrap();
    assert_eq!(h.headers.get("x-app").map(String::as_str), Some("demo"));
    assert!(
        !h.headers.contains_key("cookie") && !h.headers.contains_key("authorization"),
        "{h:?}"
    );
    assert!(
        h.issued > 0 && !h.address.is_empty() && h.url.starts_with("/socket.io/"),
        "{h:?}"
    );
    let text = format!("{r:?}");
    assert!(!text.contains("secret"), "a secret came back: {text}");

    let all = s.fetch(&[], &[]).await;
    assert_eq!(all.sockets.len(), 3, "{}", s.key);
    let except = s.fetch(&[], &["vip"]).await;
    let mut ids: Vec<&str> = except.sockets.iter().map(|x| x.id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![b.sid.as_str(), c.sid.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
}

async fn all_rooms_and_server_count(s: &mut Setup) {
    let a = s.client(0, &["x"], json!({})).await;
    let b = s.client(1, &["y", "x"], json!({})).await;
    let r =
        s.c.all_rooms(pb::AllRoomsRequest {
            timeout_ms: 3000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete, "{r:?}");
    let mut want = vec![a.sid.clone(), b.sid.clone(), "x".into(), "y".into()];
    want.sort();
    assert_eq!(r.rooms, want, "{}", s.key);
    let n =
        s.c.server_count(pb::ServerCountRequest::default())
            .await
            .unwrap()
            .into_inner();
    assert_eq!(n.servers, 2);
}

async fn server_side_emit_with_ack(s: &mut Setup) {
    let listen = |event: &str, reply: Option<Value>, servers: Value| {
        let mut body = json!({"namespace": "/", "event": event, "servers": servers});
        if let Some(r) = reply {
            body["reply"] = r;
        }
        body
    };
    let (st, v) = s
        .stack
        .call(
            reqwest::Method::POST,
            "/listen",
            Some(listen("ping", Some(json!({"pong": 1})), json!([0, 1]))),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let req = |event: &str, timeout_ms| pb::ServerSideEmitWithAckRequest {
        event: event.into(),
        args: vec![value(json!("hi"))],
        timeout_ms,
        ..Default::default()
    };
    let r =
        s.c.server_side_emit_with_ack(req("ping", 3000))
            .await
            .unwrap()
            .into_inner();
    assert!(r.complete, "{}: {r:?}", s.key);
    assert_eq!(r.servers_expected, 2);
    let replies: Vec<Value> = r.replies.iter().map(|x| as_json(x.reply.as_ref().unwrap())).collect();
    assert_eq!(replies, [json!({"pong": 1.0}), json!({"pong": 1.0})]);

    // Only server 0's handler calls back.
    let (st, v) = s
        .stack
        .call(
            reqwest::Method::POST,
            "/listen",
            Some(listen("half", Some(json!("only-0")), json!([0]))),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r =
        s.c.server_side_emit_with_ack(req("half", 600))
            .await
            .unwrap()
            .into_inner();
    assert!(!r.complete, "{r:?}");
    assert_eq!(r.servers_expected, 2);
    let replies: Vec<Value> = r.replies.iter().map(|x| as_json(x.reply.as_ref().unwrap())).collect();
    assert_eq!(replies, [json!("only-0")]);
}

async fn garbage_does_not_disturb_a_request(s: &mut Setup) {
    let _a = s.client(0, &["g"], json!({"ack": {"reply": "a"}})).await;
    let _b = s.client(1, &["g"], json!({"ack": {"reply": "b"}})).await;
    let (r, ()) = tokio::join!(
        async {
            let mut c = s.c.clone();
            c.emit_with_ack(pb::EmitWithAckRequest {
                op: Some(pb::emit_with_ack_request::Op::Emit(pb::EmitRequest {
                    rooms: vec!["g".into()],
                    event: "question".into(),
                    ..Default::default()
                })),
                timeout_ms: 5000,
            })
            .await
            .unwrap()
            .into_inner()
        },
        s.publish_garbage(),
    );
    assert!(r.complete, "{r:?}");
    assert_eq!(r.sockets, 2);
    assert_eq!(sorted(r.acks.iter().map(as_json).collect()), [json!("a"), json!("b")]);
    // The gateway still answers afterwards.
    let again = s.fetch(&["g"], &[]).await;
    assert_eq!(again.sockets.len(), 2);
}

/// Server 1 dies when the request reaches it: Redis counted it, it never
/// answers. The call ends at its timeout with server 0's answers, and the
/// next one counts the live server only.
async fn a_server_killed_mid_request(s: &mut Setup) {
    let _a = s.client(0, &["k"], json!({"ack": {"reply": "from-0"}})).await;
    let _b = s.client(1, &["k"], json!({"ack": {"reply": "from-1"}})).await;
    let (st, v) = s
        .stack
        .call(
            reqwest::Method::POST,
            "/servers/1/kill",
            Some(json!({"when": "request"})),
        )
        .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("armed")), "{v}");
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let r = s.emit_with_ack(&["k"], 1500).await;
    let elapsed = started.elapsed();
    assert!(!r.complete, "{}: {r:?}", s.key);
    assert_eq!(
        (r.sockets, r.servers, r.servers_expected),
        (1, 1, 2),
        "{}: {r:?}",
        s.key
    );
    assert_eq!(r.acks.iter().map(as_json).collect::<Vec<_>>(), [json!("from-0")]);
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(1),
        "{}: answered after {elapsed:?}, not at its timeout",
        s.key
    );
    // It was this request that killed it.
    let (st, v) = s
        .stack
        .call(reqwest::Method::GET, "/servers/1/killed?timeout_ms=0", None)
        .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("dead")), "{v}");

    // Once Redis dropped the dead server's subscriptions, calls are
    // complete again without it.
    let mut c = s.c.clone();
    wait_until(
        "the dead server's subscriptions are gone",
        Duration::from_secs(10),
        async || {
            let n = c
                .server_count(pb::ServerCountRequest::default())
                .await
                .map(|r| r.into_inner().servers);
            if matches!(n, Ok(1)) { Ok(()) } else { Err(n) }
        },
    )
    .await;
    let r = s.emit_with_ack(&["k"], 5000).await;
    assert!(r.complete, "{}: {r:?}", s.key);
    assert_eq!((r.sockets, r.servers, r.servers_expected), (1, 1, 1), "{}", s.key);
}

#[tokio::test]
async fn classic_adapter_on_standalone_redis() {
    let redis = RedisServer::start().await;
    let mut s = Setup::start(&redis.url(), Adapter::Classic, false, "socket.io").await;
    run(&mut s).await;
}

#[tokio::test]
async fn sharded_adapter_static_on_standalone_redis() {
    let redis = RedisServer::start().await;
    let mut s = Setup::start(&redis.url(), Adapter::Sharded("static"), false, "socket.io").await;
    run(&mut s).await;
}

#[tokio::test]
async fn sharded_adapter_dynamic_on_standalone_redis() {
    let redis = RedisServer::start().await;
    let mut s = Setup::start(&redis.url(), Adapter::Sharded("dynamic"), false, "socket.io").await;
    run(&mut s).await;
}

#[tokio::test]
async fn streams_adapter_on_standalone_redis() {
    let redis = RedisServer::start().await;
    let mut s = Setup::start(&redis.url(), Adapter::Streams, false, "socket.io").await;
    run(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3).await;
    let seed = cluster.seed_url();
    let suite = async |adapter: Adapter, key: &str| {
        let mut s = Setup::start(&seed, adapter, true, key).await;
        run(&mut s).await;
    };
    tokio::join!(
        suite(Adapter::Classic, "classic"),
        suite(Adapter::Sharded("static"), "static"),
        suite(Adapter::Sharded("dynamic"), "dynamic"),
        suite(Adapter::Streams, "streams"),
    );
}

/// python-socketio and socket.io 2 servers lack operations: UNIMPLEMENTED
/// naming the dialect, and nothing reaches Redis.
#[tokio::test]
async fn dialects_without_an_operation_refuse_it_before_publishing() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let toml = format!(
        "[[targets]]\nname = \"py\"\ndialect = \"python-socketio\"\nredis_url = {url:?}\n\
         [[targets]]\nname = \"v2\"\ndialect = \"socketio-v2\"\nredis_url = {url:?}\n"
    );
    let gw = Gateway::start(Gateway::config(&url, &toml)).await;
    let mut c = gw.client().await;
    let mut capture = Capture::start(&redis.url()).await;
    let emit = |target: &str, rooms: &[&str]| pb::EmitWithAckRequest {
        op: Some(pb::emit_with_ack_request::Op::Emit(pb::EmitRequest {
            target: target.into(),
            rooms: rooms.iter().map(|r| (*r).into()).collect(),
            event: "question".into(),
            ..Default::default()
        })),
        timeout_ms: 100,
    };
    let unimplemented = |e: tonic::Status, dialect: &str| {
        assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
        assert!(e.message().contains(dialect), "{}", e.message());
    };
    unimplemented(
        c.emit_with_ack(emit("py", &["a-room"])).await.unwrap_err(),
        "python-socketio",
    );
    unimplemented(
        c.fetch_sockets(pb::FetchSocketsRequest {
            target: "py".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "python-socketio",
    );
    unimplemented(
        c.all_rooms(pb::AllRoomsRequest {
            target: "py".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "python-socketio",
    );
    unimplemented(
        c.server_side_emit_with_ack(pb::ServerSideEmitWithAckRequest {
            target: "py".into(),
            event: "e".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "python-socketio",
    );
    unimplemented(c.emit_with_ack(emit("v2", &["r"])).await.unwrap_err(), "socketio-v2");
    unimplemented(
        c.fetch_sockets(pb::FetchSocketsRequest {
            target: "v2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "socketio-v2",
    );
    unimplemented(
        c.server_side_emit_with_ack(pb::ServerSideEmitWithAckRequest {
            target: "v2".into(),
            event: "e".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        "socketio-v2",
    );
    capture.expect_nothing_before_marker(&url).await;

    // socket.io 2 answers AllRooms; with no server it is complete at once.
    // (On another Redis, so that the capture above sees nothing of it.)
    let other = RedisServer::start().await;
    let v2 = Gateway::start(Gateway::config(
        &other.url(),
        &format!(
            "[[targets]]\nname = \"v2\"\ndialect = \"socketio-v2\"\nredis_url = {:?}\n",
            other.url()
        ),
    ))
    .await;
    let r = v2
        .client()
        .await
        .all_rooms(pb::AllRoomsRequest {
            target: "v2".into(),
            timeout_ms: 2000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete && r.rooms.is_empty() && r.servers_expected == 0, "{r:?}");

    // Bad requests: INVALID_ARGUMENT with the field.
    let e = c
        .emit_with_ack(pb::EmitWithAckRequest {
            op: None,
            timeout_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut over = emit("", &["r"]);
    over.timeout_ms = 600_001;
    let e = c.emit_with_ack(over).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("timeout_ms"), "{}", e.message());
}
