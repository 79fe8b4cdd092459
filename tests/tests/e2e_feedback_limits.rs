//! End-to-end: the bounds of the request/response RPCs against real
//! Socket.IO servers — `feedback.max_pending` and `feedback.max_reply_bytes`
//! (RESOURCE_EXHAUSTED), API key scopes per RPC, a caller that goes away
//! or whose deadline passes (its waiting entry is removed, read from the
//! `emitgate_feedback_pending` gauge), and the feedback metrics read from
//! the admin listener's /metrics.
//!
//! One test: the metrics are per process, and another test of this binary
//! running at the same time would move them.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use emitgate_e2e::{Gateway, RedisServer, SioClient, Stack, free_port, value, wait::wait_until};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, transport::Channel};

async fn client(stack: &Stack, server: u32, rooms: &[&str], ack: Value) -> SioClient {
    stack.connect_with("/", server, rooms, json!({"ack": ack})).await
}

fn ask(rooms: &[&str], timeout_ms: u32) -> pb::EmitWithAckRequest {
    pb::EmitWithAckRequest {
        op: Some(pb::emit_with_ack_request::Op::Emit(pb::EmitRequest {
            rooms: rooms.iter().map(|r| (*r).into()).collect(),
            event: "question".into(),
            args: vec![value(json!("q"))],
            ..Default::default()
        })),
        timeout_ms,
    }
}

fn with_key<T>(msg: T, secret: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    r
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The gateway's /metrics on its admin listener.
struct Metrics {
    url: String,
    http: reqwest::Client,
}

impl Metrics {
    async fn text(&self) -> String {
        self.http.get(&self.url).send().await.unwrap().text().await.unwrap()
    }

    /// The value of the sample `series` (name and labels, exactly as
    /// rendered), 0 when absent.
    async fn value(&self, series: &str) -> f64 {
        let text = self.text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits until `series` reads `want` (no event announces a gauge).
    async fn wait_for(&self, series: &str, want: f64) {
        wait_until(format_args!("{series} = {want}"), Duration::from_secs(5), async || {
            let v = self.value(series).await;
            if (v - want).abs() < f64::EPSILON {
                Ok(())
            } else {
                Err(v)
            }
        })
        .await;
    }
}

const PENDING: &str = "emitgate_feedback_pending";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_scopes_cancellation_and_metrics() {
    let redis = RedisServer::start().await;
    let stack = Stack::start(&redis.url(), 2).await;
    let port = free_port();
    let mut config = Gateway::config(
        &redis.url(),
        &format!(
            "[feedback]\nmax_pending = 1\n\
             [[auth.keys]]\nid = \"all\"\nsecret_sha256 = \"{}\"\n\
             [[auth.keys]]\nid = \"emitter\"\nsecret_sha256 = \"{}\"\nrpcs = [\"Emit\"]\n\
             [[auth.keys]]\nid = \"reader\"\nsecret_sha256 = \"{}\"\nrpcs = [\"Emit\", \"FetchSockets\"]\n",
            hash("all-secret"),
            hash("emitter-secret"),
            hash("reader-secret"),
        ),
    );
    config.admin_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let gw = Gateway::start(config).await;
    let mut c = gw.client().await;
    let metrics = Metrics {
        url: format!("http://127.0.0.1:{port}/metrics"),
        http: reqwest::Client::new(),
    };
    let silent = client(&stack, 1, &["silent"], json!("never")).await;
    let _a = client(&stack, 0, &["r"], json!({"reply": "a"})).await;
    let _b = client(&stack, 1, &["r"], json!({"reply": "b"})).await;

    // Scopes: a key that may Emit may not read sockets or wait for acks.
    let fetch = pb::FetchSocketsRequest {
        rooms: vec!["r".into()],
        timeout_ms: 3000,
        ..Default::default()
    };
    for e in [
        c.fetch_sockets(with_key(fetch.clone(), "emitter-secret"))
            .await
            .unwrap_err(),
        c.emit_with_ack(with_key(ask(&["r"], 3000), "emitter-secret"))
            .await
            .unwrap_err(),
        c.all_rooms(with_key(pb::AllRoomsRequest::default(), "emitter-secret"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("\"emitter\" may not call"), "{}", e.message());
    }
    c.emit(with_key(
        pb::EmitRequest {
            rooms: vec!["r".into()],
            event: "plain".into(),
            ..Default::default()
        },
        "emitter-secret",
    ))
    .await
    .unwrap();
    let r = c
        .fetch_sockets(with_key(fetch, "reader-secret"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete && r.sockets.len() == 2, "{r:?}");
    let e = c
        .emit_with_ack(with_key(ask(&["r"], 3000), "reader-secret"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // A complete call, counted with its outcome.
    let r = c
        .emit_with_ack(with_key(ask(&["r"], 5000), "all-secret"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete && r.sockets == 2, "{r:?}");
    metrics.wait_for(PENDING, 0.0).await;

    // max_pending = 1: while one call waits, the next is RESOURCE_EXHAUSTED.
    let mut waiting_client = c.clone();
    let waiting = tokio::spawn(async move {
        waiting_client
            .emit_with_ack(with_key(ask(&["silent"], 20_000), "all-secret"))
            .await
    });
    // The silent client has the event: the call is registered and waiting.
    stack.events_until(&silent, "question").await;
    assert!((metrics.value(PENDING).await - 1.0).abs() < f64::EPSILON);
    let e = c
        .emit_with_ack(with_key(ask(&["r"], 1000), "all-secret"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("feedback_max_pending = 1"), "{}", e.message());

    // The caller goes away: its entry is removed long before its 20 s.
    let cancelled = Instant::now();
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    metrics.wait_for(PENDING, 0.0).await;
    assert!(cancelled.elapsed() < Duration::from_secs(5));
    let r = c
        .emit_with_ack(with_key(ask(&["r"], 5000), "all-secret"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.complete, "the freed slot takes a new call: {r:?}");

    // The caller's deadline ends the wait before timeout_ms.
    let started = Instant::now();
    let mut req = with_key(ask(&["silent"], 20_000), "all-secret");
    req.set_timeout(Duration::from_millis(400));
    match c.emit_with_ack(req).await {
        Ok(r) => assert!(!r.get_ref().complete, "{:?}", r.get_ref()),
        Err(e) => assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    metrics.wait_for(PENDING, 0.0).await;

    // A timeout, counted with its outcome.
    let r = c
        .emit_with_ack(with_key(ask(&["silent"], 300), "all-secret"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.complete && r.sockets == 1 && r.acks.is_empty(), "{r:?}");

    // An answer for no request of this gateway is dropped and counted.
    let dropped = r#"emitgate_feedback_dropped_answers_total{target="default",reason="unknown_request"}"#;
    let before = metrics.value(dropped).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("socket.io-response#/#")
        .arg(r#"{"requestId":"0123456789abcdef0123456789abcdef","type":8,"clientCount":1}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    metrics.wait_for(dropped, before + 1.0).await;

    let text = metrics.text().await;
    for series in [
        r#"emitgate_feedback_requests_total{rpc="EmitWithAck",outcome="complete"}"#,
        r#"emitgate_feedback_requests_total{rpc="EmitWithAck",outcome="timeout"}"#,
        r#"emitgate_feedback_requests_total{rpc="FetchSockets",outcome="complete"}"#,
        r#"emitgate_feedback_answer_seconds_count{target="default",reason="EmitWithAck"}"#,
    ] {
        let v = metrics.value(series).await;
        assert!(v >= 1.0, "{series} = {v} in:\n{text}");
    }
    // Two complete EmitWithAck, one that timed out; the cancelled and
    // refused ones are not outcomes.
    assert!(
        (metrics
            .value(r#"emitgate_feedback_requests_total{rpc="EmitWithAck",outcome="complete"}"#)
            .await
            - 2.0)
            .abs()
            < f64::EPSILON,
        "{text}"
    );

    // max_reply_bytes: a gateway whose budget one answer overflows.
    let small = Gateway::start(Gateway::config(&redis.url(), "[feedback]\nmax_reply_bytes = 16\n")).await;
    let mut sc: EmitterServiceClient<Channel> = small.client().await;
    let e = sc.emit_with_ack(ask(&["r"], 5000)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("feedback_max_reply_bytes = 16"), "{}", e.message());
    metrics.wait_for(PENDING, 0.0).await;
}
