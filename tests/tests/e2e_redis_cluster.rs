//! End-to-end on a Redis Cluster of three masters started on loopback by
//! the test: the `socketio-sharded` dialect (subscription modes `static`
//! and `dynamic`) and the classic `socketio` dialect, each in front of two
//! real Socket.IO 4 servers whose node-redis clients use `createCluster`;
//! SPUBLISH following a MOVED redirection after a slot migration; health and
//! UNAVAILABLE for cluster targets. One cluster serves the whole file: the
//! setups run side by side, kept apart by their channel prefixes (which
//! also spreads their channels over the shards).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod dialect_suite;

use std::time::{Duration, Instant};

use dialect_suite::{Kind, Mode, World};
use emitgate::pb;
use emitgate_e2e::{Gateway, dialects::RedisCluster, wait::wait_until};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_and_classic_dialects_on_a_three_master_redis_cluster() {
    let cluster = RedisCluster::start(3).await;
    let seed = cluster.seed_url();

    let suite = async |kind: Kind, key: &str| {
        let mut w = World::start(&seed, kind, true, key).await;
        dialect_suite::run(&mut w).await;
    };
    tokio::join!(
        suite(Kind::sharded(Mode::Static), "static"),
        suite(Kind::sharded(Mode::Dynamic), "dynamic"),
        suite(Kind::ClassicOnCluster, "classic"),
    );

    spublish_follows_a_moved_redirection(&cluster).await;
    cluster_targets_report_health_and_unavailability(&cluster).await;
}

/// The gateway learns the slot map, the slot of `moved#/#` then moves to
/// another master: the next SPUBLISH gets MOVED from the old owner and is
/// resent to the new one, where a subscriber receives it.
async fn spublish_follows_a_moved_redirection(cluster: &RedisCluster) {
    let gw = Gateway::start(Gateway::config(
        &cluster.seed_url(),
        "[[targets]]\nname = \"default\"\ndialect = \"socketio-sharded\"\nkey = \"moved\"\ncluster = true\n",
    ))
    .await;
    let mut c = gw.client().await;
    let broadcast = |event: &str| pb::BroadcastRequest {
        event: event.into(),
        ..Default::default()
    };
    // Nobody subscribes yet; this call makes the gateway learn the slots.
    let r = c.broadcast(broadcast("before")).await.unwrap().into_inner();
    assert_eq!(r.receivers, 0);

    let slot: u16 = cluster
        .command(cluster.ports[0], redis::cmd("CLUSTER").arg("KEYSLOT").arg("moved#/#"))
        .await;
    let from = cluster.owner_of(slot).await;
    let to = *cluster.ports.iter().find(|p| **p != from).unwrap();
    cluster.move_slot(slot, to).await;

    // An independent subscriber on the new owner.
    let mut sub = tokio::process::Command::new("redis-cli")
        .args(["-p", &to.to_string(), "SSUBSCRIBE", "moved#/#"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-cli");
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("redis-cli said nothing within 5 s")
            .unwrap()
            .expect("redis-cli ended")
    };
    assert_eq!(
        [next().await, next().await, next().await],
        ["ssubscribe", "moved#/#", "1"]
    );

    let r = c.broadcast(broadcast("after")).await.unwrap().into_inner();
    assert_eq!(r.receivers, 1, "the SPUBLISH reached the new owner's subscriber");
    assert_eq!([next().await, next().await], ["smessage", "moved#/#"]);
    assert_eq!(
        next().await,
        r#"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["after"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}}"#
    );
}

/// A cluster target is SERVING while every master answers PING; one whose
/// seeds are unreachable answers UNAVAILABLE within the Redis timeout.
async fn cluster_targets_report_health_and_unavailability(cluster: &RedisCluster) {
    let gw = Gateway::start(Gateway::config(
        &cluster.seed_url(),
        "[redis]\ntimeout_ms = 500\n\
         [[targets]]\nname = \"default\"\ndialect = \"socketio-sharded\"\ncluster = true\n\
         [[targets]]\nname = \"down\"\ndialect = \"socketio-sharded\"\nredis_url = \"redis://127.0.0.1:1\"\ncluster = true\n",
    ))
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    // The gateway PINGs every 100 ms in tests; wait for the expected status.
    let expect = async |health: &mut HealthClient<tonic::transport::Channel>, service: &str, want: ServingStatus| {
        wait_until(format_args!("{service} {want:?}"), Duration::from_secs(5), async || {
            let got = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .map(|r| r.into_inner().status());
            if got.as_ref().is_ok_and(|s| *s == want) {
                Ok(())
            } else {
                Err(got)
            }
        })
        .await;
    };
    expect(
        &mut health,
        "emitgate.v1.EmitterService/default",
        ServingStatus::Serving,
    )
    .await;
    expect(
        &mut health,
        "emitgate.v1.EmitterService/down",
        ServingStatus::NotServing,
    )
    .await;

    let mut c = gw.client().await;
    let started = Instant::now();
    let err = c
        .broadcast(pb::BroadcastRequest {
            target: "down".into(),
            event: "e".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}
