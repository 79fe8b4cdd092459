//! A Redis Cluster failover under load: three masters with one replica
//! each, the classic `socketio` dialect with `cluster = true`, three callers
//! sending unary Emits without pause, a pattern subscriber on every node.
//! The master that receives the target's PUBLISHes (the owner of slot 0) is
//! killed with SIGKILL; its replica takes over. The test proves what
//! docs/dialects.md promises for a failover:
//!
//! - no acknowledged event is lost (every OK call reached a subscriber);
//! - no subscriber sees two events of one caller on one channel out of
//!   order, before, during or after the failover;
//! - calls that failed meanwhile failed with UNAVAILABLE;
//! - health turns NOT_SERVING while a master is missing and SERVING again;
//! - once the gateway serves again, its PUBLISHes go through the new owner
//!   of slot 0 and no other node.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use emitgate::pb;
use emitgate_e2e::{
    Gateway,
    dialects::RedisCluster,
    failover::{Accounting, HealthWatch, Load, LoadOptions, Subscribers},
    wait::wait_until,
};
use tonic_health::pb::health_check_response::ServingStatus;

/// How long a master may be unreachable before the cluster fails it over.
const NODE_TIMEOUT_MS: u64 = 1000;
/// Calls each caller makes before the kill, so the load is well under way.
const CALLS_BEFORE_KILL: u64 = 300;
/// Calls each caller makes once the gateway serves again.
const CALLS_AFTER_RECOVERY: u64 = 300;
/// PUBLISHes sent after the load, counted at each node.
const PROBE_CALLS: u64 = 50;
const CALLERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_publish_master_under_load_keeps_order_and_loses_nothing() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1, NODE_TIMEOUT_MS).await;
    let seeds: Vec<String> = cluster.urls();
    let gw = Gateway::start(Gateway::config(
        &seeds[0],
        &format!(
            "[redis]\ntimeout_ms = 1000\n[[targets]]\nname = \"default\"\ndialect = \"socketio\"\nkey = \"fo\"\n\
             cluster = true\ncluster_seeds = {:?}\n",
            &seeds[1..]
        ),
    ))
    .await;

    // A subscriber on every node, masters and replicas.
    let subscribers = Subscribers::start(&cluster.live_ports(), "fo").await;
    let mut health = HealthWatch::start(gw.addr, "emitgate.v1.EmitterService/default").await;
    health.wait_for(ServingStatus::Serving, Duration::from_secs(10)).await;

    // The load: each caller sends its Emits one after the other.
    let mut clients = Vec::new();
    for _ in 0..CALLERS {
        clients.push(gw.client().await);
    }
    let mut load = Load::start(clients, LoadOptions::default());
    load.wait_ok(
        &[CALLS_BEFORE_KILL; CALLERS],
        Duration::from_secs(60),
        "load before the kill",
    )
    .await;
    let owner = cluster.owner_of(0).await;
    let survivor = *cluster.ports.iter().find(|p| **p != owner).unwrap();
    let before = cluster.publish_calls(owner).await;
    assert!(
        before >= CALLS_BEFORE_KILL,
        "the publish node {owner} took {before} PUBLISHes"
    );

    let killed_at = Instant::now();
    let ok_at_kill = load.ok_counts();
    cluster.kill(owner);

    // The cluster promotes the replica; no event announces it.
    let new_owner = wait_until(
        format_args!("slot 0 owned by another node than the killed {owner}"),
        Duration::from_secs(30),
        async || match cluster.owner_as_seen_by(survivor, 0).await {
            o if o != owner => Ok(o),
            o => Err(o),
        },
    )
    .await;
    let promoted_after = killed_at.elapsed();

    let target: Vec<u64> = ok_at_kill.iter().map(|n| n + CALLS_AFTER_RECOVERY).collect();
    load.wait_ok(
        &target,
        Duration::from_secs(NODE_TIMEOUT_MS / 1000 + 20),
        "the gateway did not serve again after the failover",
    )
    .await;
    health.wait_for(ServingStatus::Serving, Duration::from_secs(10)).await;
    let outcomes = load.stop().await;

    // After the failover the gateway's PUBLISHes land on the new owner only.
    let live = cluster.live_ports();
    let mut counts_before = HashMap::new();
    for p in &live {
        counts_before.insert(*p, cluster.publish_calls(*p).await);
    }
    let mut c = gw.client().await;
    for i in 0..PROBE_CALLS {
        c.emit(pb::EmitRequest {
            rooms: vec!["probe".into()],
            event: format!("probe{i}"),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    for p in &live {
        let delta = cluster.publish_calls(*p).await - counts_before[p];
        if *p == new_owner {
            assert_eq!(delta, PROBE_CALLS, "PUBLISHes on the new owner {p}");
        } else {
            assert_eq!(delta, 0, "PUBLISHes on node {p}, which is not the owner of slot 0");
        }
    }

    // A barrier through the same node: once every live subscriber has it,
    // they have every earlier event too.
    subscribers.barrier(&mut c, &live).await;

    // Accounting.
    let seen = subscribers.seen();
    let accounting = Accounting::of(&outcomes, &seen, None);
    let mut missing_after = 0;
    // Each caller has at most one call in flight: the one after its count
    // at the kill may still have been acknowledged by the killed node.
    for (caller, (o, n)) in outcomes.iter().zip(&ok_at_kill).enumerate() {
        // Events acknowledged after the failover reached every subscriber
        // that lived through it.
        for ok in o.ok.iter().skip(*n as usize + 1) {
            for p in &live {
                if !seen
                    .get(p)
                    .is_some_and(|e| e.iter().any(|e| e.caller == caller && e.seq == ok.seq))
                {
                    missing_after += 1;
                }
            }
        }
    }
    let (not_serving, back) = health.dip_after(killed_at);
    eprintln!(
        "failover: slot 0 moved {owner} -> {new_owner} after {promoted_after:.1?}; health back after {back:.1?}; \
         calls OK {}, failed {} ({} not UNAVAILABLE); lost {}; order inversions {}; missing after recovery \
         {missing_after}",
        accounting.ok,
        accounting.failed,
        accounting.not_unavailable.len(),
        accounting.lost.len(),
        accounting.inversions,
    );
    accounting.assert_clean();
    assert_eq!(
        missing_after, 0,
        "events acknowledged after the failover missed a live subscriber"
    );
    assert!(
        not_serving,
        "health never turned NOT_SERVING after the kill: {:?}",
        health.history()
    );
    let back = back.expect("health never returned to SERVING");
    assert!(
        back <= promoted_after + Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(5),
        "health back {back:?} after the kill, the cluster promoted after {promoted_after:?}"
    );
}
