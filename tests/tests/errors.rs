//! Error answers against a real Redis: bounded trailers whatever the
//! request, limits as data (`ErrorInfo`, `QuotaFailure`), RESOURCE_EXHAUSTED
//! for requests over `max_message_bytes`, and details that the real grpcurl
//! prints decoded through reflection. Every refused call publishes nothing.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use emitgate_e2e::{Capture, Gateway, RedisServer, json_arg, repo_root, value, violations};
use serde_json::json;
use tonic::{Code, metadata::MetadataMap, transport::Channel};
use tonic_types::StatusExt;

/// What the tests allow for `grpc-message` plus `grpc-status-details-bin`:
/// well under the 8 KiB some clients accept, whatever the request.
const MAX_TRAILER_BYTES: usize = 6 * 1024;

async fn setup(extra: &str) -> (RedisServer, Gateway, Capture, EmitterServiceClient<Channel>) {
    let redis = RedisServer::start().await;
    let capture = Capture::start(&redis.url()).await;
    let gw = Gateway::start(Gateway::config(&redis.url(), extra)).await;
    let c = gw.client().await;
    (redis, gw, capture, c)
}

fn emit(rooms: Vec<String>, event: &str) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms,
        event: event.into(),
        ..Default::default()
    }
}

fn item(e: pb::EmitRequest) -> pb::BatchItem {
    pb::BatchItem {
        op: Some(pb::batch_item::Op::Emit(e)),
    }
}

/// The size of the status trailers as they travel: tonic writes
/// `grpc-message` percent-encoded and `grpc-status-details-bin` in base64,
/// the same encoding on both ends.
fn trailer_bytes(status: &tonic::Status) -> usize {
    let mut headers = MetadataMap::new().into_headers();
    status.add_header(&mut headers).unwrap();
    ["grpc-message", "grpc-status-details-bin"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .map(|v| v.len())
        .sum()
}

/// The count in the last violation, "N more violations not listed".
fn not_listed(status: &tonic::Status) -> usize {
    let v = violations(status);
    let (field, description) = v.last().unwrap();
    assert_eq!(field, "", "{v:?}");
    description.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn error_trailers_stay_small_whatever_the_request() {
    let (redis, gw, mut cap, mut c) = setup("").await;

    for n in [100, 1000] {
        let err = c.emit(emit(vec![String::new(); n], "e")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let v = violations(&err);
        assert_eq!(v.len(), 21, "20 violations and one counting the rest: {v:?}");
        assert_eq!(v[0], ("rooms[0]".into(), "room names must not be empty".into()));
        assert_eq!(not_listed(&err), n - 20);
        assert!(err.message().len() <= 512, "{}", err.message().len());
        assert!(
            trailer_bytes(&err) < MAX_TRAILER_BYTES,
            "{n} empty rooms: {} bytes",
            trailer_bytes(&err)
        );
    }

    // An atomic batch of 1000 invalid items, each with 11 violations.
    let items = (0..1000).map(|_| item(emit(vec![String::new(); 10], ""))).collect();
    let err = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(violations(&err)[0].0, "items[0].emit.event");
    assert_eq!(not_listed(&err), 11_000 - 20);
    assert!(trailer_bytes(&err) < MAX_TRAILER_BYTES, "{} bytes", trailer_bytes(&err));

    // Huge and non-ASCII caller values (percent-encoded three bytes for one
    // in grpc-message) quoted in messages and violations.
    let huge = "é".repeat(100_000);
    let err = c
        .emit(pb::EmitRequest {
            target: huge.clone(),
            ..emit(vec!["r".into()], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().ends_with("(200000 bytes)"), "{}", err.message());
    assert!(trailer_bytes(&err) < MAX_TRAILER_BYTES, "{} bytes", trailer_bytes(&err));

    // Half the items valid but for an unknown target with a long name
    // (quoted in their violations), half over the name limits.
    let long = "é".repeat(2000);
    let items = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                item(pb::EmitRequest {
                    target: format!("{long}{i}"),
                    ..emit(vec!["r".into()], "e")
                })
            } else {
                item(emit(vec![long.clone(), "x".repeat(300)], &long))
            }
        })
        .collect();
    let err = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        violations(&err)[0].1.starts_with("unknown target \""),
        "{:?}",
        violations(&err)[0]
    );
    assert!(trailer_bytes(&err) < MAX_TRAILER_BYTES, "{} bytes", trailer_bytes(&err));
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.metadata["max_event_bytes"], "256");
    assert_eq!(info.metadata["max_room_bytes"], "256");

    // A non-atomic batch answers per item, each bounded the same way.
    let items = (0..3).map(|_| item(emit(vec![String::new(); 1000], ""))).collect();
    let answer = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: false })
        .await
        .unwrap()
        .into_inner();
    for r in &answer.results {
        assert_eq!(r.code, Code::InvalidArgument as i32);
        assert_eq!(r.violations.len(), 21);
        assert_eq!(r.violations[20].description, "981 more violations not listed");
        assert!(r.message.len() <= 512);
    }

    cap.expect_nothing_before_marker(&redis.url()).await;
    c.emit(emit(vec!["r".into()], "e")).await.unwrap();
    drop(gw);
}

#[tokio::test]
async fn the_cap_on_listed_violations_is_configurable() {
    let (_redis, gw, _cap, mut c) = setup("[limits]\nmax_violations = 3\n").await;
    let err = c.emit(emit(vec![String::new(); 5], "")).await.unwrap_err();
    let v = violations(&err);
    assert_eq!(v.len(), 4, "{v:?}");
    assert_eq!(v[0].0, "event");
    assert_eq!(v[3], (String::new(), "3 more violations not listed".into()));
    assert!(err.message().ends_with("and 3 more"), "{}", err.message());
    drop(gw);
}

/// `(key, value)` or `(subject, description)` pairs.
type Pairs = Vec<(String, String)>;

/// The limit reported as data for one bad request: ErrorInfo metadata and
/// the QuotaFailure violations as `(subject, description)`.
fn limits(err: &tonic::Status) -> (Pairs, Pairs) {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let info = err.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "LIMIT_EXCEEDED");
    assert_eq!(info.domain, "emitgate");
    let mut metadata: Vec<_> = info.metadata.into_iter().collect();
    metadata.sort();
    let quota = err
        .get_details_quota_failure()
        .expect("QuotaFailure")
        .violations
        .into_iter()
        .map(|v| (v.subject, v.description))
        .collect();
    (metadata, quota)
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test]
async fn limits_are_reported_as_data() {
    let config = "[limits]\nmax_rooms = 3\nmax_args = 2\nmax_packet_bytes = 200\nmax_namespace_bytes = 8\n";
    let (redis, gw, mut cap, mut c) = setup(config).await;

    let err = c
        .emit(pb::EmitRequest {
            namespace: "/much-too-long".into(),
            args: vec![value(json!(1)); 3],
            ..emit(vec!["r".into(); 4], &"e".repeat(300))
        })
        .await
        .unwrap_err();
    let (metadata, quota) = limits(&err);
    assert_eq!(
        metadata,
        [
            pair("max_args", "2"),
            pair("max_event_bytes", "256"),
            pair("max_namespace_bytes", "8"),
            pair("max_rooms", "3")
        ]
    );
    assert_eq!(
        quota,
        [
            pair("namespace", "max_namespace_bytes = 8"),
            pair("event", "max_event_bytes = 256"),
            pair("rooms", "max_rooms = 3"),
            pair("args", "max_args = 2")
        ]
    );
    // BadRequest still lists every field.
    assert_eq!(violations(&err).len(), 4);

    let items = (0..1001).map(|_| item(emit(vec!["r".into()], "e"))).collect();
    let err = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: false })
        .await
        .unwrap_err();
    assert_eq!(
        limits(&err),
        (
            vec![pair("max_batch_items", "1000")],
            vec![pair("items", "max_batch_items = 1000")]
        )
    );

    let err = c.emit(emit(vec!["x".repeat(300)], "e")).await.unwrap_err();
    assert_eq!(limits(&err).1, [pair("rooms[0]", "max_room_bytes = 256")]);

    let err = c
        .emit(pb::EmitRequest {
            args: vec![value(json!("x".repeat(300)))],
            ..emit(vec!["r".into()], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(limits(&err).1, [pair("args", "max_packet_bytes = 200")]);

    let deep = "[".repeat(200) + &"]".repeat(200);
    let err = c
        .emit(pb::EmitRequest {
            args: vec![json_arg(&deep)],
            ..emit(vec!["r".into()], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(limits(&err).1, [pair("args[0].json", "max_depth = 128")]);

    // A violation that is not a limit carries no limit details.
    let err = c.emit(emit(vec![String::new()], "e")).await.unwrap_err();
    assert!(err.get_details_error_info().is_none());
    assert!(err.get_details_quota_failure().is_none());

    cap.expect_nothing_before_marker(&redis.url()).await;
    drop(gw);
}

#[tokio::test]
async fn requests_over_max_message_bytes_are_resource_exhausted() {
    let (redis, gw, mut cap, mut c) = setup("[limits]\nmax_message_bytes = 1000\n").await;
    let err = c
        .emit(pb::EmitRequest {
            args: vec![value(json!("x".repeat(2000)))],
            ..emit(vec!["r".into()], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_message_bytes = 1000"), "{}", err.message());
    // Not a retry-later refusal: no RetryInfo, and the limit as data.
    assert!(err.get_details_retry_info().is_none());
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.reason, "LIMIT_EXCEEDED");
    assert_eq!(info.metadata["max_message_bytes"], "1000");
    cap.expect_nothing_before_marker(&redis.url()).await;
    // The gateway still serves, on the same connection.
    c.emit(emit(vec!["r".into()], "e")).await.unwrap();
    drop(gw);
}

/// The real grpcurl prints a rejected call's details decoded: reflection
/// serves google/rpc/error_details.proto.
#[tokio::test]
async fn grpcurl_prints_error_details_decoded() {
    let (_redis, gw, _cap, _c) = setup("").await;
    let grpcurl =
        std::env::var("GRPCURL").unwrap_or_else(|_| repo_root().join(".tools/bin/grpcurl").display().to_string());
    let long = "e".repeat(300);
    let out = tokio::process::Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-d",
            &format!(r#"{{"rooms":["", "ok"],"event":"{long}"}}"#),
            &gw.addr.to_string(),
            "emitgate.v1.EmitterService/Emit",
        ])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{grpcurl} not runnable ({e}): run `make setup`"));
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Code: InvalidArgument"), "{text}");
    assert!(!text.contains("is not recognized"), "{text}");
    for decoded in [
        r#""@type": "type.googleapis.com/google.rpc.BadRequest""#,
        r#""field": "rooms[0]""#,
        r#""description": "room names must not be empty""#,
        r#""@type": "type.googleapis.com/google.rpc.ErrorInfo""#,
        r#""reason": "LIMIT_EXCEEDED""#,
        r#""max_event_bytes": "256""#,
        r#""@type": "type.googleapis.com/google.rpc.QuotaFailure""#,
    ] {
        assert!(text.contains(decoded), "{decoded} missing from:\n{text}");
    }
    drop(gw);
}
