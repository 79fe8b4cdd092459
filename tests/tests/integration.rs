//! The gateway against a real `redis-server`: exact channels and bytes as a
//! PSUBSCRIBE sees them, validation answers, and Redis outages.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb;
use emitgate_e2e::{Capture, Gateway, RedisServer, binary, json_arg, msgpack, value, violations, wait::wait_until};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

async fn setup(extra: &str) -> (RedisServer, Gateway, Capture) {
    let redis = RedisServer::start().await;
    let capture = Capture::start(&redis.url()).await;
    let gateway = Gateway::start(Gateway::config(&redis.url(), extra)).await;
    (redis, gateway, capture)
}

fn emit(rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms.iter().map(|s| (*s).into()).collect(),
        event: event.into(),
        args,
        ..Default::default()
    }
}

#[tokio::test]
async fn emit_publishes_the_reference_bytes_on_the_room_channel() {
    let (_redis, gw, mut cap) = setup("").await;
    let mut c = gw.client().await;
    let r = c
        .emit(emit(&["room1"], "chat message", vec![value(json!("hello"))]))
        .await
        .unwrap()
        .into_inner();
    // Only the capture's pattern subscription is listening.
    assert_eq!(r.receivers, 1);
    let m = cap.next().await;
    assert_eq!(m.channel, "socket.io#/#room1#");
    assert_eq!(
        hex::encode(&m.payload),
        "93a7656d697474657283a47479706502a46461746192ac63686174206d657373616765a568656c6c6fa36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490"
    );
}

#[tokio::test]
async fn custom_key_and_namespace_shape_the_channels() {
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let mut config = Gateway::config(&redis.url(), "[[targets]]\nname = \"app\"\nkey = \"myapp\"");
    config.targets.get_mut("app").unwrap().redis_url = redis.url();
    let gw = Gateway::start(config).await;
    let mut c = gw.client().await;
    c.emit(pb::EmitRequest {
        target: "app".into(),
        namespace: "chat".into(),
        ..emit(&["r"], "e", vec![])
    })
    .await
    .unwrap();
    assert_eq!(cap.next().await.channel, "myapp#/chat#r#");
    c.sockets_join(pb::SocketsJoinRequest {
        target: "app".into(),
        namespace: "/chat".into(),
        join_rooms: vec!["x".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let m = cap.next().await;
    assert_eq!(m.channel, "myapp-request#/chat#");
    assert_eq!(
        m.payload,
        br#"{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["x"]}"#
    );
}

#[tokio::test]
async fn batch_is_one_pipeline_in_request_order_and_reports_each_item() {
    let (redis, gw, mut cap) = setup("").await;
    let mut c = gw.client().await;
    let item = |op| pb::BatchItem { op: Some(op) };
    let items = vec![
        item(pb::batch_item::Op::Emit(emit(&["a"], "one", vec![]))),
        item(pb::batch_item::Op::Emit(emit(&[], "bad", vec![]))),
        item(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
            event: "two".into(),
            ..Default::default()
        })),
        item(pb::batch_item::Op::Emit(pb::EmitRequest {
            target: "nope".into(),
            ..emit(&["a"], "x", vec![])
        })),
        pb::BatchItem { op: None },
        item(pb::batch_item::Op::Emit(emit(
            &["b", "c"],
            "three",
            vec![json_arg("[1]")],
        ))),
    ];
    let r = c
        .batch_emit(pb::BatchEmitRequest {
            items: items.clone(),
            atomic: false,
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = r.results.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            0,
            Code::InvalidArgument as i32,
            0,
            Code::NotFound as i32,
            Code::InvalidArgument as i32,
            0
        ]
    );
    assert_eq!((r.published, r.failed, r.receivers), (3, 3, 3));
    assert_eq!(r.results[1].violations[0].field, "items[1].emit.rooms");
    assert_eq!(r.results[4].violations[0].field, "items[4]");
    assert!(r.results[3].message.contains("nope"), "{}", r.results[3].message);
    let channels: Vec<String> = [cap.next().await, cap.next().await, cap.next().await]
        .map(|m| m.channel)
        .into();
    assert_eq!(channels, ["socket.io#/#a#", "socket.io#/#", "socket.io#/#"]);
    cap.expect_nothing_before_marker(&redis.url()).await;

    // Atomic: the same batch publishes nothing and names every bad field.
    let err = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&err).into_iter().map(|v| v.0).collect();
    assert_eq!(fields, ["items[1].emit.rooms", "items[3].emit.target", "items[4]"]);
    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn invalid_requests_name_every_bad_field_and_publish_nothing() {
    let (redis, gw, mut cap) = setup("[limits]\nmax_args = 3\nmax_event_bytes = 10").await;
    let mut c = gw.client().await;
    let req = pb::EmitRequest {
        rooms: vec!["ok".into(), "".into()],
        except_rooms: vec!["".into()],
        event: "connect".into(),
        args: vec![json_arg("{bad"), msgpack(vec![0x93, 0xa1]), value(json!(1))],
        ..Default::default()
    };
    let err = c.emit(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&err).into_iter().map(|v| v.0).collect();
    assert_eq!(
        fields,
        [
            "event",
            "rooms[1]",
            "except_rooms[0]",
            "args[0].json",
            "args[1].msgpack"
        ]
    );
    assert!(err.message().contains("reserved event name"), "{}", err.message());

    let err = c.emit(emit(&[], "ok", vec![])).await.unwrap_err();
    assert_eq!(
        violations(&err),
        [("rooms".into(), "at least one room is required".into())]
    );

    let err = c
        .broadcast(pb::BroadcastRequest {
            event: "much_too_long".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(violations(&err)[0].1.contains("max_event_bytes = 10"), "{err:?}");

    let err = c
        .broadcast(pb::BroadcastRequest {
            event: "e".into(),
            args: vec![value(json!(1)); 4],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&err),
        [("args".into(), "4 arguments, over the limit max_args = 3".into())]
    );

    let err = c
        .server_side_emit(pb::ServerSideEmitRequest {
            event: "connection".into(),
            args: vec![binary(b"x")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|v| v.0).collect();
    assert_eq!(fields, ["event"]);
    // Binary has no JSON form: the socketio dialect's requests are JSON.
    let err = c
        .server_side_emit(pb::ServerSideEmitRequest {
            event: "hello".into(),
            args: vec![value(json!(1)), msgpack(vec![0x91, 0xc4, 0x01, 0x00])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let v = violations(&err);
    assert_eq!(v[0].0, "args[1]");
    assert!(v[0].1.contains("binary"), "{v:?}");

    let err = c.sockets_join(pb::SocketsJoinRequest::default()).await.unwrap_err();
    assert_eq!(violations(&err)[0].0, "join_rooms");

    let err = c
        .emit(pb::EmitRequest {
            target: "nope".into(),
            ..emit(&["a"], "e", vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"));

    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn limits_on_packet_size_and_batch_items() {
    let (redis, gw, mut cap) = setup("[limits]\nmax_packet_bytes = 1000\nmax_batch_items = 2").await;
    let mut c = gw.client().await;
    let err = c
        .broadcast(pb::BroadcastRequest {
            event: "e".into(),
            args: vec![binary(&[0; 1000])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let v = violations(&err);
    assert_eq!(v[0].0, "args");
    assert!(v[0].1.contains("max_packet_bytes = 1000"), "{v:?}");
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Broadcast(pb::BroadcastRequest {
                event: "e".into(),
                ..Default::default()
            }))
        };
        3
    ];
    let err = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: false })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&err),
        [("items".into(), "3 items, over the limit max_batch_items = 2".into())]
    );
    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn oversized_grpc_messages_are_refused() {
    let (_redis, gw, _cap) = setup("[limits]\nmax_message_bytes = 10000").await;
    let mut c = gw.client().await;
    let err = c
        .broadcast(pb::BroadcastRequest {
            event: "e".into(),
            args: vec![binary(&[0; 20000])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_message_bytes = 10000"), "{err:?}");
}

async fn health(gw: &Gateway, service: &str) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = HealthClient::new(channel);
    h.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| r.into_inner().status)
    .unwrap_or(-1)
}

async fn wait_health(gw: &Gateway, want: ServingStatus) {
    // The gateway PINGs every 100 ms in tests; no event announces a change.
    wait_until(
        format_args!("health {want:?}"),
        Duration::from_secs(10),
        async || match health(gw, "").await {
            s if s == want as i32 => Ok(()),
            s => Err(s),
        },
    )
    .await;
}

#[tokio::test]
async fn redis_outage_is_unavailable_fast_and_recovers_without_restart() {
    let (mut redis, gw, _cap) = setup("[redis]\ntimeout_ms = 1000").await;
    let mut c = gw.client().await;
    wait_health(&gw, ServingStatus::Serving).await;
    assert_eq!(
        health(&gw, "emitgate.v1.EmitterService").await,
        ServingStatus::Serving as i32
    );
    c.emit(emit(&["a"], "e", vec![])).await.unwrap();

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = c.emit(emit(&["a"], "e", vec![])).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }
    let err = c
        .batch_emit(pb::BatchEmitRequest {
            items: vec![pb::BatchItem {
                op: Some(pb::batch_item::Op::Emit(emit(&["a"], "e", vec![]))),
            }],
            atomic: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    wait_health(&gw, ServingStatus::NotServing).await;

    redis.restart().await;
    let mut cap = Capture::start(&redis.url()).await;
    wait_until(
        "an Emit answered after the restart",
        Duration::from_secs(10),
        async || {
            let r = c.emit(emit(&["a"], "back", vec![])).await;
            if let Err(e) = &r {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
            }
            r
        },
    )
    .await;
    assert_eq!(cap.next().await.channel, "socket.io#/#a#");
    wait_health(&gw, ServingStatus::Serving).await;
}

#[tokio::test]
async fn a_target_whose_redis_is_down_does_not_affect_the_others() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(Gateway::config(
        &redis.url(),
        "[redis]\ntimeout_ms = 500\n[[targets]]\nname = \"down\"\nredis_url = \"redis://127.0.0.1:1\"",
    ))
    .await;
    let mut c = gw.client().await;
    let err = c
        .emit(pb::EmitRequest {
            target: "down".into(),
            ..emit(&["a"], "e", vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("down"), "{}", err.message());
    c.emit(emit(&["a"], "e", vec![])).await.unwrap();
    wait_health(&gw, ServingStatus::Serving).await;
    assert_eq!(
        health(&gw, "emitgate.v1.EmitterService/down").await,
        ServingStatus::NotServing as i32
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let (_redis, gw, _cap) = setup("").await;
    let addr = gw.addr;
    gw.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
