//! The end-to-end cases shared by the `socketio-sharded` and
//! `socketio-streams` suites, by the Redis Cluster suite and by the classic
//! adapter with the JSON parser (`e2e_json_parser.rs`): rooms, except,
//! namespaces, argument kinds (binary, timestamps), unicode, flags, batches,
//! socket operations and serverSideEmit, each asserted on what real
//! socket.io-client clients (or the servers' handlers) received.
//!
//! A [`World`] is one gateway target in front of one harness stack (two real
//! Socket.IO servers with the dialect's adapter). [`run`] plays every case on
//! it in turn, resetting the harness's clients in between; a broadcast
//! barrier after each call proves what did *not* arrive.
//!
//! Each case plays in namespaces of its own ([`World::ns`]): `/` is
//! `/<case>`, `/admin` is `/<case>/admin`. A publish reaches only sockets
//! of its namespace, so an event of one case that a server gets late (on a
//! Redis Cluster, PUBLISH reaches the other nodes' subscribers after the
//! reply) can never be counted as received by a client of another case.
//!
//! On a Redis Cluster with room channels (sharded, dynamic modes), a room's
//! channel and the namespace's channel may live on different shards, and
//! the servers read each shard on its own connection: events on different
//! channels may arrive in either order, with the gateway as with the
//! adapter's own publishes. There [`World::expect`] first waits for every
//! expected event, then sends the barrier, and compares without order.

#![allow(dead_code, reason = "each suite file uses the cases it needs")]

use base64::Engine;
use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use std::collections::HashMap;

use emitgate_e2e::{Gateway, SioClient, Stack, binary, dialects::StackOptions, json_arg, msgpack, value};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

/// The server stack behind the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `socketio` dialect, classic adapter, on a Redis Cluster: PUBLISH is
    /// forwarded to every node, and its reply counts only the subscribers
    /// of the node that ran it.
    ClassicOnCluster,
    /// `socketio` dialect with `parser = "json"`, classic adapter with
    /// `parser: { encode: JSON.stringify, decode: JSON.parse }`: what JSON
    /// cannot carry is refused, publishes nothing and leaves the servers up.
    ClassicJson,
    /// `socketio-sharded` with `createShardedAdapter`.
    Sharded {
        /// The target's `subscription_mode`.
        gateway: Mode,
        /// The servers' `subscriptionMode`.
        servers: Mode,
    },
    /// `socketio-streams` with `@socket.io/redis-streams-adapter` and
    /// connection-state recovery.
    Streams,
}

/// A sharded subscription mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `static`.
    Static,
    /// `dynamic`.
    Dynamic,
    /// `dynamic-private`.
    DynamicPrivate,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Static => "static",
            Mode::Dynamic => "dynamic",
            Mode::DynamicPrivate => "dynamic-private",
        }
    }
}

impl Kind {
    /// The sharded dialect with the same mode on gateway and servers.
    pub fn sharded(mode: Mode) -> Self {
        Kind::Sharded {
            gateway: mode,
            servers: mode,
        }
    }
}

/// One gateway target and its Socket.IO servers.
pub struct World {
    /// A client of the gateway.
    pub c: EmitterServiceClient<Channel>,
    /// The harness.
    pub stack: Stack,
    /// The gateway (in-process).
    pub gw: Gateway,
    /// The server stack.
    pub kind: Kind,
    /// Whether a client gets events of different channels in publish order.
    pub ordered: bool,
    barriers: u32,
    /// Per client id, how many of its events earlier expectations consumed.
    seen: HashMap<String, usize>,
    /// The case being played (empty outside [`run`]): names its namespaces.
    case: &'static str,
}

impl World {
    /// Starts the harness (adapter per `kind`, channel prefix / stream name
    /// `key`) on `redis_url` and a gateway whose default target matches it.
    pub async fn start(redis_url: &str, kind: Kind, cluster: bool, key: &str) -> Self {
        let mut stack = StackOptions {
            redis_cluster: cluster,
            key: Some(key.into()),
            ..StackOptions::default()
        };
        let mut target = vec![format!("key = {key:?}")];
        match kind {
            Kind::ClassicOnCluster => {}
            Kind::ClassicJson => {
                stack.parser = Some("json");
                target.push("parser = \"json\"".into());
            }
            Kind::Sharded { gateway, servers } => {
                stack.adapter = "sharded";
                stack.subscription_mode = Some(servers.name());
                target.push("dialect = \"socketio-sharded\"".into());
                target.push(format!("subscription_mode = {:?}", gateway.name()));
            }
            Kind::Streams => {
                stack.adapter = "streams";
                stack.stream_name = Some(key.into());
                target.push("dialect = \"socketio-streams\"".into());
                target.push(format!("stream_name = {key:?}"));
            }
        }
        if cluster {
            target.push("cluster = true".into());
        }
        let toml = format!("[[targets]]\nname = \"default\"\n{}\n", target.join("\n"));
        let stack = Stack::start_with(redis_url, &stack).await;
        let gw = Gateway::start(Gateway::config(redis_url, &toml)).await;
        let c = gw.client().await;
        Self {
            c,
            stack,
            gw,
            kind,
            ordered: !(cluster && matches!(kind, Kind::Sharded { gateway, .. } if gateway != Mode::Static)),
            barriers: 0,
            seen: HashMap::new(),
            case: "",
        }
    }

    /// Whether an event to one room (a socket id when `sid`) goes to the
    /// room's channel.
    pub fn room_channel(&self, sid: bool) -> bool {
        match self.kind {
            Kind::Sharded {
                gateway: Mode::Dynamic, ..
            } => !sid,
            Kind::Sharded {
                gateway: Mode::DynamicPrivate,
                ..
            } => true,
            _ => false,
        }
    }

    /// The subscribers of an event to one room: on its room channel, the
    /// servers that have the room; else both servers.
    pub fn one_room(&self, sid: bool, servers_with_room: u64) -> u64 {
        if self.room_channel(sid) { servers_with_room } else { 2 }
    }

    /// The namespace `name` stands for in the current case: `/` is
    /// `/<case>`, `/x` is `/<case>/x`, and `x` (no leading slash, which the
    /// gateway adds) is `<case>/x`. Outside [`run`], `name` itself.
    pub fn ns(&self, name: &str) -> String {
        if self.case.is_empty() {
            return name.to_owned();
        }
        let (slash, rest) = name.strip_prefix('/').map_or(("", name), |r| ("/", r));
        if rest.is_empty() {
            format!("{slash}{}", self.case)
        } else {
            format!("{slash}{}/{rest}", self.case)
        }
    }

    /// Connects a client to server `server` in the case's namespace `nsp`
    /// (see [`ns`](Self::ns)), in `rooms`.
    pub async fn connect(&self, nsp: &str, server: u32, rooms: &[&str]) -> SioClient {
        self.stack.connect(&self.ns(nsp), server, rooms).await
    }

    /// An Emit request in the case's `/`.
    pub fn emit_req(&self, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
        pb::EmitRequest {
            namespace: self.ns("/"),
            ..emit_req(rooms, event, args)
        }
    }

    /// Broadcasts a new barrier event to `nsp` (a namespace as it is, not
    /// mapped by [`ns`](Self::ns)); returns its name.
    pub async fn barrier(&mut self, nsp: &str) -> String {
        self.barriers += 1;
        let name = format!("barrier-{}", self.barriers);
        self.c
            .broadcast(pb::BroadcastRequest {
                namespace: nsp.into(),
                event: name.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        name
    }

    /// Requires that each client received exactly `events` (streams offsets
    /// removed, see [`split_offset`]) since the previous expectation: after
    /// a barrier broadcast to `nsp`, nothing else arrived. In order, unless
    /// the setup does not order events across channels (see the module doc);
    /// then every expected event is awaited before the barrier.
    pub async fn expect(&mut self, nsp: &str, expected: &[(&SioClient, Vec<Value>)]) {
        let got = self.collect(nsp, expected).await;
        for ((c, want), (_, got)) in expected.iter().zip(got) {
            let got: Vec<Value> = got.into_iter().map(|(e, _)| e).collect();
            if self.ordered {
                assert_eq!(&got, want, "events of client {} ({})", c.id, c.sid);
            } else {
                assert_eq!(by_text(&got), by_text(want), "events of client {} ({})", c.id, c.sid);
            }
        }
    }

    /// Like [`expect`](Self::expect), for one client that must receive
    /// events named `names`: returns each event with its streams offset, in
    /// arrival order, instead of comparing them.
    pub async fn received_with_offsets(
        &mut self,
        nsp: &str,
        c: &SioClient,
        names: &[&str],
    ) -> Vec<(Value, Option<String>)> {
        let placeholders: Vec<Value> = names.iter().map(|n| json!({"event": n})).collect();
        let mut got = self.collect_n(nsp, &[(c, &placeholders)]).await;
        let got = got.remove(0).1;
        assert_eq!(got.len(), names.len(), "{got:?}");
        got
    }

    async fn collect(
        &mut self,
        nsp: &str,
        expected: &[(&SioClient, Vec<Value>)],
    ) -> Vec<(String, Vec<(Value, Option<String>)>)> {
        let refs: Vec<(&SioClient, &Vec<Value>)> = expected.iter().map(|(c, e)| (*c, e)).collect();
        self.collect_n(nsp, &refs).await
    }

    async fn collect_n(
        &mut self,
        nsp: &str,
        expected: &[(&SioClient, &Vec<Value>)],
    ) -> Vec<(String, Vec<(Value, Option<String>)>)> {
        let nsp = &self.ns(nsp);
        if !self.ordered {
            for (c, want) in expected {
                let seen = self.seen.get(&c.id).copied().unwrap_or(0);
                let before = self.stack.events_now(c).await;
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for e in *want {
                    *counts.entry(e["event"].as_str().unwrap_or_default()).or_default() += 1;
                }
                for (name, n) in counts {
                    let earlier = before[..seen.min(before.len())]
                        .iter()
                        .filter(|e| e["event"] == name)
                        .count();
                    self.stack.events_until_count(c, name, earlier + n).await;
                }
            }
        }
        let name = self.barrier(nsp).await;
        let mut out = Vec::new();
        for (c, _) in expected {
            let events = self.stack.events_until(c, &name).await;
            let end = events.iter().position(|e| e["event"] == name.as_str()).unwrap();
            let seen = self.seen.get(&c.id).copied().unwrap_or(0).min(end);
            let got = events[seen..end]
                .iter()
                .filter(|e| !e["event"].as_str().is_some_and(|n| n.starts_with("barrier-")))
                .map(|e| split_offset(self.kind, e))
                .collect();
            self.seen.insert(c.id.clone(), end + 1);
            out.push((c.id.clone(), got));
        }
        out
    }

    /// Checks a publish reply: `servers` servers received it (pub/sub
    /// dialects), or a stream entry id came back (streams).
    pub fn check_reply(&self, receivers: u64, stream_id: &str, servers: u64) {
        match self.kind {
            Kind::Sharded { .. } | Kind::ClassicJson => {
                assert_eq!(receivers, servers, "(S)PUBLISH receivers");
                assert_eq!(stream_id, "");
            }
            Kind::Streams => {
                assert_eq!(receivers, 0, "a stream entry has no receiver count");
                assert!(is_offset(stream_id), "stream id {stream_id:?}");
            }
            Kind::ClassicOnCluster => assert_eq!(stream_id, ""),
        }
    }

    /// The servers never hit a decode error or an exception, and their
    /// process is still running.
    pub async fn assert_servers_healthy(&mut self) {
        assert_eq!(self.stack.errors().await, Vec::<Value>::new());
        self.stack.assert_running().await;
    }

    async fn emit(&mut self, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitResponse {
        let req = self.emit_req(rooms, event, args);
        self.c.emit(req).await.unwrap().into_inner()
    }
}

/// Whether `s` is a Redis stream entry id (`<ms>-<seq>`).
pub fn is_offset(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
    })
}

/// With connection-state recovery (the streams suite), the servers append
/// the stream entry id to every non-volatile event as its last argument;
/// the client's recovery offset. Returns the event without it, and the id.
pub fn split_offset(kind: Kind, e: &Value) -> (Value, Option<String>) {
    let mut e = e.clone();
    let mut offset = None;
    if kind == Kind::Streams
        && let Some(args) = e["args"].as_array_mut()
        && args.last().and_then(Value::as_str).is_some_and(is_offset)
    {
        offset = args.pop().and_then(|v| v.as_str().map(str::to_owned));
    }
    (e, offset)
}

pub fn emit_req(rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms.iter().map(|s| (*s).into()).collect(),
        event: event.into(),
        args,
        ..Default::default()
    }
}

pub fn ev(event: &str, args: Value) -> Value {
    json!({"event": event, "args": args})
}

pub fn b64(bytes: &[u8]) -> Value {
    json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// Events as sorted JSON texts, to compare without order.
fn by_text(events: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = events.iter().map(Value::to_string).collect();
    t.sort();
    t
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Plays every case on `w`, resetting the harness's clients in between.
pub async fn run(w: &mut World) {
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            eprintln!("--- {:?}: case {}", w.kind, stringify!($case));
            w.case = stringify!($case);
            $case(w).await;
            w.assert_servers_healthy().await;
            w.stack.reset().await;
            w.seen.clear();
            w.case = "";
        )*};
    }
    cases!(
        rooms,
        several_rooms_and_socket_ids,
        except_and_broadcast,
        namespaces,
        argument_kinds,
        unicode_and_a_large_payload,
        flags,
        batch,
        sockets_join_and_leave,
        disconnect_sockets,
        server_side_emit,
    );
}

/// An emit to one room reaches its members on every server, and only them.
pub async fn rooms(w: &mut World) {
    let a = w.connect("/", 0, &["room1"]).await;
    let b = w.connect("/", 1, &["room1"]).await;
    let other = w.connect("/", 1, &["room2"]).await;
    let r = w.emit(&["room1"], "chat message", vec![value(json!("hello"))]).await;
    // Both servers have room1: its channel has the same 2 subscribers.
    w.check_reply(r.receivers, &r.stream_id, 2);
    let r2 = w.emit(&["room2"], "second", vec![]).await;
    // Only server 1 has room2: on the room channel, 1 subscriber.
    w.check_reply(r2.receivers, &r2.stream_id, w.one_room(false, 1));
    w.expect(
        "/",
        &[
            (&a, vec![ev("chat message", json!(["hello"]))]),
            (&b, vec![ev("chat message", json!(["hello"]))]),
            (&other, vec![ev("second", json!([]))]),
        ],
    )
    .await;
    if w.kind == Kind::Streams {
        // The recovery offset the clients got is the entry the gateway added.
        let r3 = w.emit(&["room1"], "third", vec![]).await;
        let r4 = w.emit(&["room1"], "fourth", vec![]).await;
        let got = w.received_with_offsets("/", &a, &["third", "fourth"]).await;
        assert_eq!(got[0].1.as_deref(), Some(r3.stream_id.as_str()));
        assert_eq!(got[1].1.as_deref(), Some(r4.stream_id.as_str()));
    }
}

/// Several rooms reach each member once; socket ids are rooms.
pub async fn several_rooms_and_socket_ids(w: &mut World) {
    let both = w.connect("/", 0, &["r1", "r2"]).await;
    let r2 = w.connect("/", 1, &["r2"]).await;
    let r3 = w.connect("/", 1, &["r3"]).await;
    let lone = w.connect("/", 0, &[]).await;
    let r = w.emit(&["r1", "r2", "r1"], "news", vec![value(json!({"id": 7}))]).await;
    w.check_reply(r.receivers, &r.stream_id, 2);
    // A socket id uses a room channel only in dynamic-private mode (in
    // dynamic mode the servers subscribe no channel for private rooms).
    let r = w.emit(&[&lone.sid], "direct", vec![value(json!("just you"))]).await;
    w.check_reply(r.receivers, &r.stream_id, w.one_room(true, 1));
    w.expect(
        "/",
        &[
            (&both, vec![ev("news", json!([{"id": 7}]))]),
            (&r2, vec![ev("news", json!([{"id": 7}]))]),
            (&r3, vec![]),
            (&lone, vec![ev("direct", json!(["just you"]))]),
        ],
    )
    .await;
}

/// `except` rooms (names and socket ids) and namespace broadcasts.
pub async fn except_and_broadcast(w: &mut World) {
    let muted = w.connect("/", 0, &["muted", "room1"]).await;
    let a = w.connect("/", 1, &["room1"]).await;
    let b = w.connect("/", 0, &[]).await;
    let r =
        w.c.broadcast(pb::BroadcastRequest {
            event: "tick".into(),
            except_rooms: vec!["muted".into()],
            args: vec![value(json!(1))],
            namespace: w.ns("/"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, 2);
    w.c.emit(pb::EmitRequest {
        except_rooms: vec![muted.sid.clone()],
        ..w.emit_req(&["room1"], "tock", vec![])
    })
    .await
    .unwrap();
    w.expect(
        "/",
        &[
            (&muted, vec![]),
            (&a, vec![ev("tick", json!([1])), ev("tock", json!([]))]),
            (&b, vec![ev("tick", json!([1]))]),
        ],
    )
    .await;
}

/// Namespaces are separate; a missing leading `/` is added.
pub async fn namespaces(w: &mut World) {
    let admin = w.connect("/admin", 1, &["ops"]).await;
    let root = w.connect("/", 0, &["ops"]).await;
    w.c.emit(pb::EmitRequest {
        namespace: w.ns("admin"),
        ..w.emit_req(&["ops"], "alert", vec![value(json!("y"))])
    })
    .await
    .unwrap();
    w.c.broadcast(pb::BroadcastRequest {
        namespace: w.ns("/admin"),
        event: "all".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    w.expect(
        "/admin",
        &[(&admin, vec![ev("alert", json!(["y"])), ev("all", json!([]))])],
    )
    .await;
    w.expect("/", &[(&root, vec![])]).await;
}

/// Binary (top level and nested), pre-encoded MessagePack with a timestamp,
/// JSON text and protobuf values all arrive as a JavaScript client expects.
pub async fn argument_kinds(w: &mut World) {
    if w.kind == Kind::ClassicJson {
        return argument_kinds_on_json(w).await;
    }
    let a = w.connect("/", 0, &["r"]).await;
    // {name: "a.bin", data: <bin "abc">, big: 2^60}, as SDKs send nested binary.
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
    // A timestamp has no JSON form: the whole message goes as MessagePack
    // and the server hands the client a Date (as JSON, an ISO string).
    w.emit(&["r"], "when", vec![msgpack(hex::decode("d6ff6553f100").unwrap())])
        .await;
    let mut got = w.received_with_offsets("/", &a, &["kinds", "when"]).await;
    if !w.ordered {
        got.sort_by_key(|(e, _)| e["event"] == "when");
    }
    // A JavaScript client holds 2^60 as the double 2^60: compare as f64.
    let big = got[0].0["args"][1]["big"].take();
    assert_eq!(big.as_f64(), Some(2f64.powi(60)), "{big}");
    got[0].0["args"][1]["big"] = json!("<checked above>");
    assert_eq!(
        got.into_iter().map(|(e, _)| e).collect::<Vec<_>>(),
        [
            ev(
                "kinds",
                json!([
                    b64(&[0, 1, 2, 253, 254, 255]),
                    {"name": "a.bin", "data": b64(b"abc"), "big": "<checked above>"},
                    {"a": {"b": {"c": [1, {"d": "e"}]}}, "empty_obj": {}, "empty_arr": [], "f": 1.5, "i": 7},
                    {"n": null, "t": true, "list": [1, "two", 3.25]},
                ])
            ),
            ev("when", json!(["2023-11-14T22:13:20.000Z"])),
        ]
    );
}

/// The refusal of one emit by a json target: INVALID_ARGUMENT naming
/// `field` and the parser, with `why` in the description.
async fn refused_on_json(w: &mut World, args: Vec<pb::Argument>, field: &str, why: &str) {
    let e = w.c.emit(w.emit_req(&["r"], "refused", args)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let v = emitgate_e2e::violations(&e);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, field);
    assert!(v[0].1.contains(why) && v[0].1.contains("`json`"), "{}", v[0].1);
}

/// On a json target, what JSON cannot carry is refused (binary, nested
/// binary, timestamps, integers beyond 2^53) and publishes nothing; JSON
/// text, protobuf values and MessagePack without those arrive as sent.
async fn argument_kinds_on_json(w: &mut World) {
    let a = w.connect("/", 0, &["r"]).await;
    let nested_binary = hex::decode("82a46e616d65a5612e62696ea464617461c403616263").unwrap();
    // {name: "a.bin", big: 2^60}
    let big = hex::decode("82a46e616d65a5612e62696ea3626967cf1000000000000000").unwrap();
    refused_on_json(w, vec![binary(&[0, 1, 2])], "args[0]", "binary data").await;
    refused_on_json(
        w,
        vec![value(json!(1)), msgpack(nested_binary)],
        "args[1]",
        "binary data",
    )
    .await;
    refused_on_json(
        w,
        vec![msgpack(hex::decode("d6ff6553f100").unwrap())],
        "args[0]",
        "timestamp",
    )
    .await;
    refused_on_json(w, vec![msgpack(big)], "args[0]", "beyond ±2^53").await;
    // {name: "a.bin", n: 2^53, k: {2: "two", 1: "one"}}: integer keys are strings in JSON.
    let carried = hex::decode("83a46e616d65a5612e62696ea16ecf0020000000000000a16b8202a374776f01a36f6e65").unwrap();
    w.emit(
        &["r"],
        "kinds",
        vec![
            msgpack(carried),
            json_arg(r#"{"a":{"b":{"c":[1,{"d":"e"}]}},"empty_obj":{},"empty_arr":[],"f":1.5,"i":7.0,"e":1e21}"#),
            value(json!({"n": null, "t": true, "list": [1, "two", 3.25]})),
        ],
    )
    .await;
    w.expect(
        "/",
        &[(
            &a,
            vec![ev(
                "kinds",
                json!([
                    {"name": "a.bin", "n": 9_007_199_254_740_992_u64, "k": {"1": "one", "2": "two"}},
                    {"a": {"b": {"c": [1, {"d": "e"}]}}, "empty_obj": {}, "empty_arr": [], "f": 1.5, "i": 7, "e": 1e21},
                    {"n": null, "t": true, "list": [1, "two", 3.25]},
                ]),
            )],
        )],
    )
    .await;
}

/// Non-ASCII namespace, room, event and payload, and a 900 kB argument.
pub async fn unicode_and_a_large_payload(w: &mut World) {
    let a = w.connect("/名前空間", 1, &["部屋"]).await;
    let big = "x".repeat(900_000);
    let r =
        w.c.emit(pb::EmitRequest {
            namespace: w.ns("/名前空間"),
            ..w.emit_req(
                &["部屋"],
                "メッセージ",
                vec![value(json!({"body": "こんにちは 🌸"})), value(json!(big))],
            )
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, w.one_room(false, 1));
    w.expect(
        "/名前空間",
        &[(&a, vec![ev("メッセージ", json!([{"body": "こんにちは 🌸"}, big]))])],
    )
    .await;
}

/// `volatile` and `compress` flags. A volatile event may be dropped by
/// design, so only the non-volatile one is awaited: it arrives, and the
/// volatile one, if it arrived, arrived intact. With connection-state
/// recovery, only non-volatile events carry an offset: `volatile: false` is
/// never written (the adapters would count it as volatile).
pub async fn flags(w: &mut World) {
    let a = w.connect("/", 0, &["r"]).await;
    w.c.emit(pb::EmitRequest {
        flags: Some(pb::EmitFlags {
            volatile: true,
            compress: Some(false),
        }),
        ..w.emit_req(&["r"], "pos", vec![value(json!(1.5))])
    })
    .await
    .unwrap();
    w.c.broadcast(pb::BroadcastRequest {
        event: "big".into(),
        flags: Some(pb::EmitFlags {
            volatile: false,
            compress: Some(true),
        }),
        namespace: w.ns("/"),
        ..Default::default()
    })
    .await
    .unwrap();
    let awaited = vec![json!({"event": "big"})];
    let got = w.collect_n("/", &[(&a, &awaited)]).await.remove(0).1;
    if w.ordered {
        // On one channel, in publish order: a volatile event that arrived
        // came first.
        let names: Vec<&Value> = got.iter().map(|(e, _)| &e["event"]).collect();
        assert!(names == ["big"] || names == ["pos", "big"], "{got:?}");
    }
    let (volatile, durable): (Vec<_>, Vec<_>) = got.into_iter().partition(|(e, _)| e["event"] == "pos");
    assert_eq!(
        durable.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
        [ev("big", json!([]))]
    );
    assert!(
        volatile.len() <= 1,
        "the volatile event arrived more than once: {volatile:?}"
    );
    for (e, offset) in &volatile {
        assert_eq!(*e, ev("pos", json!([1.5])));
        assert_eq!(*offset, None, "a volatile event has no recovery offset");
    }
    if w.kind == Kind::Streams {
        assert!(durable[0].1.is_some(), "a non-volatile event has one");
    }
}

/// A batch: valid items are published (in order per channel), an invalid
/// one is reported alone; each item has its own reply.
pub async fn batch(w: &mut World) {
    let u1 = w.connect("/", 0, &["u:1"]).await;
    let u2 = w.connect("/", 1, &["u:2"]).await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let items = vec![
        item(pb::batch_item::Op::Emit(w.emit_req(
            &["u:1"],
            "n",
            vec![value(json!(1))],
        ))),
        item(pb::batch_item::Op::Emit(w.emit_req(&["u:2"], "disconnect", vec![]))),
        item(pb::batch_item::Op::Emit(w.emit_req(
            &["u:2"],
            "n",
            vec![value(json!(2))],
        ))),
        item(pb::batch_item::Op::Emit(w.emit_req(&["u:1"], "m", vec![binary(&[7])]))),
        item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
            event: "all".into(),
            except_rooms: vec!["u:1".into()],
            namespace: w.ns("/"),
            ..Default::default()
        })),
    ];
    let r =
        w.c.batch_emit(pb::BatchEmitRequest { items, atomic: false })
            .await
            .unwrap()
            .into_inner();
    assert_eq!(r.results[1].violations[0].field, "items[1].emit.event");
    let one = w.one_room(false, 1);
    if w.kind == Kind::ClassicJson {
        // Binary has no JSON form: the item is refused, the others go out.
        assert_eq!(r.results.iter().map(|r| r.code).collect::<Vec<_>>(), [0, 3, 0, 3, 0]);
        assert_eq!(r.results[3].violations[0].field, "items[3].emit.args[0]");
        assert_eq!((r.published, r.failed), (3, 2));
        for (i, servers) in [(0, one), (2, one), (4, 2)] {
            w.check_reply(r.results[i].receivers, &r.results[i].stream_id, servers);
        }
        w.expect(
            "/",
            &[
                (&u1, vec![ev("n", json!([1]))]),
                (&u2, vec![ev("n", json!([2])), ev("all", json!([]))]),
            ],
        )
        .await;
        return;
    }
    assert_eq!(r.results.iter().map(|r| r.code).collect::<Vec<_>>(), [0, 3, 0, 0, 0]);
    assert_eq!((r.published, r.failed), (4, 1));
    for (i, servers) in [(0, one), (2, one), (3, one), (4, 2)] {
        w.check_reply(r.results[i].receivers, &r.results[i].stream_id, servers);
    }
    assert_eq!(r.results[1].stream_id, "");
    if w.kind == Kind::Streams {
        let ids: Vec<&str> = [0, 2, 3, 4].iter().map(|&i| r.results[i].stream_id.as_str()).collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "entries in item order: {ids:?}");
    }
    w.expect(
        "/",
        &[
            (&u1, vec![ev("n", json!([1])), ev("m", json!([b64(&[7])]))]),
            (&u2, vec![ev("n", json!([2])), ev("all", json!([]))]),
        ],
    )
    .await;
}

/// SocketsJoin (with rooms and except), an emit to the joined room, and
/// SocketsLeave.
pub async fn sockets_join_and_leave(w: &mut World) {
    let a = w.connect("/", 0, &["room1"]).await;
    let b = w.connect("/", 1, &["room1", "vip"]).await;
    let c = w.connect("/", 1, &[]).await;
    let r =
        w.c.sockets_join(pb::SocketsJoinRequest {
            rooms: vec!["room1".into()],
            except_rooms: vec!["vip".into()],
            join_rooms: vec!["joined".into()],
            namespace: w.ns("/"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, 2);
    // The join is applied once a later event on the same channel arrived.
    w.expect("/", &[(&a, vec![]), (&b, vec![]), (&c, vec![])]).await;
    // The rooms as the servers see them; this also waits until a dynamic
    // server has subscribed the new room's channel.
    assert_eq!(
        w.stack.rooms(&a).await,
        sorted(vec![a.sid.clone(), "joined".into(), "room1".into()])
    );
    assert_eq!(
        w.stack.rooms(&b).await,
        sorted(vec![b.sid.clone(), "room1".into(), "vip".into()])
    );
    let r = w.emit(&["joined"], "welcome", vec![]).await;
    w.check_reply(r.receivers, &r.stream_id, w.one_room(false, 1));
    w.expect("/", &[(&a, vec![ev("welcome", json!([]))]), (&b, vec![]), (&c, vec![])])
        .await;

    let r =
        w.c.sockets_leave(pb::SocketsLeaveRequest {
            leave_rooms: vec!["joined".into()],
            namespace: w.ns("/"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, 2);
    w.expect("/", &[(&a, vec![])]).await;
    assert_eq!(w.stack.rooms(&a).await, sorted(vec![a.sid.clone(), "room1".into()]));
    w.emit(&["joined"], "after leave", vec![]).await;
    w.expect("/", &[(&a, vec![])]).await;
}

/// DisconnectSockets by room, and by socket id with `close`.
pub async fn disconnect_sockets(w: &mut World) {
    let a = w.connect("/", 0, &["kick"]).await;
    let b = w.connect("/", 1, &["kick"]).await;
    let stay = w.connect("/", 1, &["stay"]).await;
    let r =
        w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
            rooms: vec!["kick".into()],
            namespace: w.ns("/"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, 2);
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    assert_eq!(w.stack.disconnect_reason(&b).await, "io server disconnect");

    let c = w.connect("/", 0, &["close"]).await;
    w.c.disconnect_sockets(pb::DisconnectSocketsRequest {
        rooms: vec![c.sid.clone()],
        close: true,
        namespace: w.ns("/"),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(w.stack.disconnect_reason(&c).await, "io server disconnect");
    w.expect("/", &[(&stay, vec![])]).await;
    assert_eq!(w.stack.state(&stay).await["connected"], true);
}

/// ServerSideEmit reaches every server's namespace handler, binary included
/// (these dialects send it as MessagePack).
pub async fn server_side_emit(w: &mut World) {
    w.stack.listen(&w.ns("/"), "hello").await;
    w.stack.listen(&w.ns("/admin"), "blob").await;
    let r =
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            event: "hello".into(),
            args: vec![value(json!("world")), json_arg(r#"{"n":1}"#)],
            namespace: w.ns("/"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    w.check_reply(r.receivers, &r.stream_id, 2);
    let mut events = w.stack.server_events(&w.ns("/"), "hello", 2).await;
    events.sort_by_key(|e| e["server"].as_u64());
    assert_eq!(
        events,
        [
            json!({"server": 0, "args": ["world", {"n": 1}]}),
            json!({"server": 1, "args": ["world", {"n": 1}]})
        ]
    );
    let r =
        w.c.server_side_emit(pb::ServerSideEmitRequest {
            namespace: w.ns("admin"),
            event: "blob".into(),
            args: vec![binary(&[1, 2, 3]), value(json!("x"))],
            ..Default::default()
        })
        .await;
    match w.kind {
        // The classic adapter's requests are JSON, whatever its parser.
        Kind::ClassicOnCluster | Kind::ClassicJson => assert_eq!(r.unwrap_err().code(), Code::InvalidArgument),
        _ => {
            r.unwrap();
            let mut events = w.stack.server_events(&w.ns("/admin"), "blob", 2).await;
            events.sort_by_key(|e| e["server"].as_u64());
            assert_eq!(
                events,
                [
                    json!({"server": 0, "args": [b64(&[1, 2, 3]), "x"]}),
                    json!({"server": 1, "args": [b64(&[1, 2, 3]), "x"]})
                ]
            );
        }
    }
}
