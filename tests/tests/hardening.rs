//! Production hardening against a real Redis: API keys and scopes, rate and
//! in-flight limits, deadlines, idempotency keys, TLS/mTLS, metrics and
//! abusive input. Every refused call must publish nothing.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::{Duration, Instant};

use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use emitgate_e2e::{
    Capture, Gateway, RedisServer, binary, free_port, json_arg, msgpack, pki::Pki, value, violations, wait::wait_until,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_types::StatusExt;

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A config with two keys: `full` may do anything; `narrow` may only Emit
/// to the default target in `/` and `/billing*`, 5 events per second.
fn keys_toml() -> String {
    format!(
        r#"
[[auth.keys]]
id = "full"
secret_sha256 = "{}"

[[auth.keys]]
id = "narrow"
secret_sha256 = "{}"
targets = ["default"]
namespaces = ["/", "/billing*"]
rpcs = ["Emit", "BatchEmit"]
rate_per_second = 5
"#,
        hash("full-secret"),
        hash("narrow-secret")
    )
}

fn with_key<T>(msg: T, secret: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    r
}

fn emit(rooms: &[&str], event: &str) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms.iter().map(|s| (*s).into()).collect(),
        event: event.into(),
        ..Default::default()
    }
}

async fn setup(extra: &str) -> (RedisServer, Gateway, Capture, EmitterServiceClient<Channel>) {
    let redis = RedisServer::start().await;
    let capture = Capture::start(&redis.url()).await;
    let gw = Gateway::start(Gateway::config(&redis.url(), extra)).await;
    let c = gw.client().await;
    (redis, gw, capture, c)
}

#[tokio::test]
async fn calls_without_a_valid_key_are_unauthenticated_and_publish_nothing() {
    let (redis, gw, mut cap, mut c) = setup(&keys_toml()).await;
    let err = c.emit(emit(&["a"], "e")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("Bearer"), "{}", err.message());
    let err = c.emit(with_key(emit(&["a"], "e"), "wrong")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut bad = Request::new(emit(&["a"], "e"));
    bad.metadata_mut()
        .insert("authorization", "Basic full-secret".parse().unwrap());
    assert_eq!(c.emit(bad).await.unwrap_err().code(), Code::Unauthenticated);
    cap.expect_nothing_before_marker(&redis.url()).await;

    // Health and reflection need no key.
    let channel = Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap();

    let r = c
        .emit(with_key(emit(&["a"], "e"), "full-secret"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receivers, 1);
    assert_eq!(cap.next().await.channel, "socket.io#/#a#");
}

#[tokio::test]
async fn keys_out_of_scope_are_permission_denied_naming_what_was_refused() {
    let extra = keys_toml() + "[[targets]]\nname = \"eu\"\n";
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let mut config = Gateway::config(&redis.url(), &extra);
    config.targets.get_mut("eu").unwrap().redis_url = redis.url();
    let gw = Gateway::start(config).await;
    let mut c = gw.client().await;

    let err = c
        .emit(with_key(
            pb::EmitRequest {
                target: "eu".into(),
                ..emit(&["a"], "e")
            },
            "narrow-secret",
        ))
        .await;
    let err = err.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("target \"eu\""), "{}", err.message());

    let req = pb::EmitRequest {
        namespace: "/admin".into(),
        ..emit(&["a"], "e")
    };
    let err = c.emit(with_key(req, "narrow-secret")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("namespace \"/admin\""), "{}", err.message());

    let req = pb::DisconnectSocketsRequest {
        rooms: vec!["a".into()],
        ..Default::default()
    };
    let err = c.disconnect_sockets(with_key(req, "narrow-secret")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("DisconnectSockets"), "{}", err.message());

    // In a batch, the out-of-scope item is refused on its own.
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(emit(&["ok"], "e"))),
        },
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(pb::EmitRequest {
                namespace: "/admin".into(),
                ..emit(&["a"], "e")
            })),
        },
    ];
    let r = c
        .batch_emit(with_key(
            pb::BatchEmitRequest {
                items: items.clone(),
                atomic: false,
            },
            "narrow-secret",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.results.iter().map(|r| r.code).collect::<Vec<_>>(),
        [0, Code::PermissionDenied as i32]
    );
    assert_eq!(cap.next().await.channel, "socket.io#/#ok#");
    let err = c
        .batch_emit(with_key(pb::BatchEmitRequest { items, atomic: true }, "narrow-secret"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("items[1]"), "{}", err.message());
    cap.expect_nothing_before_marker(&redis.url()).await;

    // The billing prefix is in scope.
    let req = pb::EmitRequest {
        namespace: "/billing/eu".into(),
        ..emit(&["a"], "e")
    };
    c.emit(with_key(req, "narrow-secret")).await.unwrap();
    assert_eq!(cap.next().await.channel, "socket.io#/billing/eu#a#");
}

#[tokio::test]
async fn rate_limits_count_batch_items_and_say_when_to_retry() {
    let (redis, _gw, mut cap, mut c) = setup(&keys_toml()).await;
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(emit(&["a"], "e")))
        };
        5
    ];
    c.batch_emit(with_key(pb::BatchEmitRequest { items, atomic: false }, "narrow-secret"))
        .await
        .unwrap();
    for _ in 0..5 {
        cap.next().await;
    }
    let err = c.emit(with_key(emit(&["a"], "e"), "narrow-secret")).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let retry = err
        .get_details_retry_info()
        .expect("RetryInfo")
        .retry_delay
        .expect("delay");
    assert!(retry > Duration::ZERO && retry <= Duration::from_secs(1), "{retry:?}");
    cap.expect_nothing_before_marker(&redis.url()).await;
    // Other keys have their own budget.
    c.emit(with_key(emit(&["a"], "e"), "full-secret")).await.unwrap();
    // A batch bigger than the key's burst can never pass: no retry delay,
    // but INVALID_ARGUMENT saying to split it.
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(emit(&["a"], "e")))
        };
        6
    ];
    let err = c
        .batch_emit(with_key(pb::BatchEmitRequest { items, atomic: false }, "narrow-secret"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(violations(&err)[0].1.contains("burst"), "{err:?}");
    assert!(err.get_details_retry_info().is_none());
}

/// A TCP server that accepts connections and never answers: a Redis that
/// hangs.
async fn black_hole() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

#[tokio::test]
async fn calls_over_the_in_flight_limit_are_shed_and_deadlines_are_honoured() {
    let hole = black_hole().await;
    let redis = RedisServer::start().await;
    let extra = format!(
        "[limits]\nmax_in_flight = 1\n[redis]\ntimeout_ms = 3000\n[[targets]]\nname = \"hang\"\nredis_url = \"redis://127.0.0.1:{hole}\"\n"
    );
    let gw = Gateway::start(Gateway::config(&redis.url(), &extra)).await;
    let mut c = gw.client().await;

    // A deadline shorter than Redis takes: DEADLINE_EXCEEDED, not a hang.
    // The client enforces the same deadline itself; the gateway answers a
    // tenth of it earlier (at most 100 ms), which at 1 s leaves a loaded
    // machine 100 ms for the answer to arrive first.
    let mut req = Request::new(pb::EmitRequest {
        target: "hang".into(),
        ..emit(&["a"], "e")
    });
    req.set_timeout(Duration::from_millis(1000));
    let started = Instant::now();
    let err = c.emit(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("outcome is unknown"), "{}", err.message());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // One call hangs on that Redis; while it does, the next is shed at once.
    // The hanging call itself may lose the race for the only permit to a
    // probe: then it is started again.
    let hang = |mut client: EmitterServiceClient<Channel>| {
        tokio::spawn(async move {
            client
                .emit(pb::EmitRequest {
                    target: "hang".into(),
                    ..emit(&["a"], "e")
                })
                .await
        })
    };
    let mut first = hang(c.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    let shed = loop {
        assert!(Instant::now() < deadline, "the hanging call never held the permit");
        if first.is_finished() {
            let lost = first.await.unwrap().unwrap_err();
            assert_eq!(lost.code(), Code::ResourceExhausted, "{lost:?}");
            first = hang(c.clone());
            tokio::task::yield_now().await;
            continue;
        }
        match c.emit(emit(&["a"], "e")).await {
            Err(e) if e.code() == Code::ResourceExhausted => break e,
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(
        shed.message().contains("max") || shed.message().contains("limit"),
        "{}",
        shed.message()
    );
    assert!(shed.get_details_retry_info().is_some());
    assert_eq!(first.await.unwrap().unwrap_err().code(), Code::Unavailable);
    // The permit came back.
    c.emit(emit(&["a"], "e")).await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_publishes_once_within_its_window() {
    let (redis, _gw, mut cap, mut c) = setup("idempotency_window_ms = 400").await;
    let req = pb::EmitRequest {
        idempotency_key: "invoice-7".into(),
        ..emit(&["u:1"], "paid")
    };
    let first = c.emit(req.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    assert_eq!(first.receivers, 1);
    let again = c.emit(req.clone()).await.unwrap().into_inner();
    assert!(again.duplicate);
    assert_eq!(again.receivers, first.receivers);
    assert_eq!(cap.next().await.channel, "socket.io#/#u:1#");
    cap.expect_nothing_before_marker(&redis.url()).await;

    // Another key of the same call publishes; in a batch, duplicates are per item.
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(req.clone())),
        },
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(pb::EmitRequest {
                idempotency_key: "invoice-8".into(),
                ..req.clone()
            })),
        },
    ];
    let r = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.results.iter().map(|r| r.duplicate).collect::<Vec<_>>(), [true, false]);
    assert_eq!(r.published, 1);
    cap.next().await;
    cap.expect_nothing_before_marker(&redis.url()).await;

    // The same key twice in one batch: published once, the repeat is a duplicate.
    let twice = pb::EmitRequest {
        idempotency_key: "invoice-9".into(),
        ..req.clone()
    };
    let items = vec![
        pb::BatchItem {
            op: Some(pb::batch_item::Op::Emit(twice))
        };
        2
    ];
    let r = c
        .batch_emit(pb::BatchEmitRequest { items, atomic: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.results.iter().map(|r| (r.code, r.duplicate)).collect::<Vec<_>>(),
        [(0, false), (0, true)]
    );
    assert_eq!(r.results[1].receivers, r.results[0].receivers);
    assert_eq!((r.published, r.failed), (1, 0));
    cap.next().await;
    cap.expect_nothing_before_marker(&redis.url()).await;

    // After the window the key is forgotten (wait for Redis to expire it).
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Redis expires keys lazily and in its background cycle: no event to await.
    wait_until("the idempotency key expired", Duration::from_secs(5), async || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("emitgate:idem:*invoice-7")
            .query_async(&mut conn)
            .await
            .unwrap();
        if keys.is_empty() { Ok(()) } else { Err(keys) }
    })
    .await;
    let later = c.emit(req).await.unwrap().into_inner();
    assert!(!later.duplicate);
    assert_eq!(cap.next().await.channel, "socket.io#/#u:1#");
}

/// A keyed XADD and its record are one script: the repeat answers the
/// first call's entry id, and the stream holds one entry.
#[tokio::test]
async fn a_keyed_stream_entry_is_added_once_and_its_id_repeated() {
    let (redis, _gw, _cap, mut c) =
        setup("[[targets]]\nname = \"default\"\ndialect = \"socketio-streams\"\nstream_name = \"idem-stream\"\n").await;
    let req = pb::EmitRequest {
        idempotency_key: "entry-1".into(),
        ..emit(&["a"], "e")
    };
    let first = c.emit(req.clone()).await.unwrap().into_inner();
    let again = c.emit(req).await.unwrap().into_inner();
    assert!(!first.duplicate && again.duplicate);
    assert!(!first.stream_id.is_empty(), "{first:?}");
    assert_eq!(again.stream_id, first.stream_id);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg("idem-stream")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 1);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_api_key() {
    let (_redis, _gw, mut cap, mut c) = setup(&keys_toml()).await;
    let req = pb::EmitRequest {
        idempotency_key: "same".into(),
        ..emit(&["a"], "e")
    };
    assert!(
        !c.emit(with_key(req.clone(), "full-secret"))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    assert!(
        !c.emit(with_key(req.clone(), "narrow-secret"))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    assert!(
        c.emit(with_key(req, "full-secret"))
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );
    cap.next().await;
    cap.next().await;
}

#[tokio::test]
async fn a_publish_that_fails_after_the_key_was_recorded_does_not_block_the_retry() {
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let admin = redis::Client::open(redis.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    // A user that may record keys but not PUBLISH: publishing fails after
    // the key was recorded.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-publish"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("redis://limited:pw@127.0.0.1:{}", redis.port);
    let gw = Gateway::start(Gateway::config(&url, "")).await;
    let mut c = gw.client().await;
    let req = pb::EmitRequest {
        idempotency_key: "k1".into(),
        ..emit(&["a"], "e")
    };
    let err = c.emit(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "limited", "+publish"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let r = c.emit(req).await.unwrap().into_inner();
    assert!(!r.duplicate, "the failed attempt must not count as the first call");
    assert_eq!(cap.next().await.channel, "socket.io#/#a#");
}

#[tokio::test]
async fn abusive_input_is_a_clean_invalid_argument() {
    let (redis, gw, mut cap, mut c) = setup("").await;
    // 100 000 levels of JSON.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let err = c
        .emit(pb::EmitRequest {
            args: vec![json_arg(&deep)],
            ..emit(&["a"], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err)[0].0, "args[0].json");
    // google.protobuf.Value nested far beyond the decoder's limit (100):
    // refused while decoding. (1000 levels: deeper would overflow this
    // test client's own recursive encoder, not the gateway.)
    let mut v = prost_types::Value {
        kind: Some(prost_types::value::Kind::NullValue(0)),
    };
    for _ in 0..1000 {
        v = prost_types::Value {
            kind: Some(prost_types::value::Kind::ListValue(prost_types::ListValue {
                values: vec![v],
            })),
        };
    }
    let arg = pb::Argument {
        kind: Some(pb::argument::Kind::Value(v)),
    };
    let err = c
        .emit(pb::EmitRequest {
            args: vec![arg],
            ..emit(&["a"], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // A huge argument list.
    let err = c
        .emit(pb::EmitRequest {
            args: vec![value(json!(1)); 100_000],
            ..emit(&["a"], "e")
        })
        .await;
    assert_eq!(violations(&err.unwrap_err())[0].0, "args");
    // Invalid UTF-8 inside a MessagePack string, truncated MessagePack, NaN.
    let err = c
        .emit(pb::EmitRequest {
            args: vec![msgpack(vec![0xa2, 0xff, 0xfe])],
            ..emit(&["a"], "e")
        })
        .await;
    assert!(violations(&err.unwrap_err())[0].1.contains("UTF-8"));
    let err = c
        .emit(pb::EmitRequest {
            args: vec![msgpack(vec![0x92, 0x01])],
            ..emit(&["a"], "e")
        })
        .await;
    assert!(violations(&err.unwrap_err())[0].1.contains("truncated"));
    let err = c
        .emit(pb::EmitRequest {
            args: vec![value(json!(null)), nan()],
            ..emit(&["a"], "e")
        })
        .await;
    assert_eq!(violations(&err.unwrap_err())[0].0, "args[1].value");
    let err = c
        .emit(pb::EmitRequest {
            args: vec![binary(&[]), msgpack(vec![0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0])],
            ..emit(&["a"], "e")
        })
        .await;
    assert_eq!(violations(&err.unwrap_err())[0].0, "args[1].msgpack");
    cap.expect_nothing_before_marker(&redis.url()).await;
    // The gateway still serves.
    c.emit(emit(&["a"], "e")).await.unwrap();
    drop(gw);
}

fn nan() -> pb::Argument {
    pb::Argument {
        kind: Some(pb::argument::Kind::Value(prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
        })),
    }
}

#[tokio::test]
async fn tls_and_mtls_handshakes_and_client_subject_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let extra = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\nclient_auth_required = true\n\
         [[auth.keys]]\nid = \"billing\"\nclient_subject = \"CN=billing\"\nrpcs = [\"Emit\"]\n",
        pki.server_cert, pki.server_key, pki.ca
    );
    let gw = Gateway::start(Gateway::config(&redis.url(), &extra)).await;
    let ca = Certificate::from_pem(std::fs::read(&pki.ca).unwrap());
    let identity = Identity::from_pem(
        std::fs::read(&pki.client_cert).unwrap(),
        std::fs::read(&pki.client_key).unwrap(),
    );

    // mTLS: the client certificate's subject authenticates as the key.
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .domain_name("localhost")
        .identity(identity);
    let channel = Channel::from_shared(format!("https://{}", gw.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let mut c = EmitterServiceClient::new(channel.connect().await.unwrap());
    c.emit(emit(&["a"], "e")).await.unwrap();
    assert_eq!(cap.next().await.channel, "socket.io#/#a#");
    // ... and its scope applies.
    let err = c
        .broadcast(pb::BroadcastRequest {
            event: "e".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Without a client certificate the handshake fails.
    let tls = ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", gw.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let result = match channel.connect().await {
        Ok(ch) => EmitterServiceClient::new(ch).emit(emit(&["a"], "e")).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(result.is_err(), "a client without a certificate was served");
    // Plaintext does not reach the API either.
    let plain = Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(EmitterServiceClient::new(ch).emit(emit(&["a"], "e")).await.is_err());
    }
    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn tls_without_client_certificates_serves_bearer_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let redis = RedisServer::start().await;
    let extra = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n{}",
        pki.server_cert,
        pki.server_key,
        keys_toml()
    );
    let gw = Gateway::start(Gateway::config(&redis.url(), &extra)).await;
    let ca = Certificate::from_pem(std::fs::read(&pki.ca).unwrap());
    let tls = ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", gw.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let mut c = EmitterServiceClient::new(channel.connect().await.unwrap());
    c.emit(with_key(emit(&["a"], "e"), "full-secret")).await.unwrap();
    assert_eq!(
        c.emit(emit(&["a"], "e")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn the_admin_listener_serves_metrics_health_and_readiness() {
    let redis = RedisServer::start().await;
    let port = free_port();
    let mut config = Gateway::config(&redis.url(), &keys_toml());
    config.admin_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let gw = Gateway::start(config).await;
    let mut c = gw.client().await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://127.0.0.1:{port}{path}")).send();

    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let readyz = async |want: u16| {
        wait_until(
            format_args!("/readyz answering {want}"),
            Duration::from_secs(10),
            async || match get("/readyz").await.unwrap().status() {
                s if s == want => Ok(()),
                s => Err(s),
            },
        )
        .await;
    };
    readyz(200).await;
    c.emit(with_key(emit(&["a"], "e"), "full-secret")).await.unwrap();
    let _ = c.emit(emit(&["a"], "e")).await.unwrap_err();
    let _ = c.emit(with_key(emit(&[], "e"), "full-secret")).await.unwrap_err();
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    for needle in [
        r#"grpc_server_handled_total{grpc_service="emitgate.v1.EmitterService",grpc_method="Emit",grpc_code="OK"}"#,
        r#"grpc_server_handled_total{grpc_service="emitgate.v1.EmitterService",grpc_method="Emit",grpc_code="InvalidArgument"}"#,
        r#"grpc_server_handling_seconds_bucket{le="0.001",grpc_service="emitgate.v1.EmitterService",grpc_method="Emit"}"#,
        r#"emitgate_events_published_total{target="default",dialect="socketio"}"#,
        r#"emitgate_auth_failures_total{reason="unauthenticated"}"#,
        "emitgate_redis_seconds_bucket",
        "emitgate_publish_receivers_bucket",
        "emitgate_calls_in_flight",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics:\n{text}");
    }
    assert!(!text.contains("full-secret"));

    // Redis down: not ready.
    drop(redis);
    readyz(503).await;
}
