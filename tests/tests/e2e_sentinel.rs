//! A Sentinel failover under load: one master, two replicas, three
//! `redis-sentinel` processes; the gateway's default target names the
//! Sentinels (`sentinel_master`, `sentinel_urls`), three callers send unary
//! Emits without pause, a pattern subscriber listens on every server. The
//! master is killed with SIGKILL; the Sentinels promote a replica; later the
//! old master is started again (as a master, until Sentinel demotes it).
//! The test proves:
//!
//! - the gateway publishes to the new master within Sentinel's failover
//!   time (kill to `+switch-master`) + 5 s, without a restart;
//! - every call that returned OK reached the subscriber of the master that
//!   took it: the old master, or (for calls after the kill) the new one;
//! - calls that failed meanwhile failed with UNAVAILABLE;
//! - the target's health turned NOT_SERVING and SERVING again;
//! - no replica ever took a PUBLISH from the gateway.
//!
//! Attribution: a replica executes the PUBLISHes its master replicates to
//! it (its subscribers see them, and INFO commandstats counts them, as it
//! counts the Sentinels' own hello PUBLISHes, so counts cannot tell), while
//! a PUBLISH sent to a replica goes nowhere else. So an event that the
//! gateway published on a replica is one seen on that replica and not on
//! its master: every event seen anywhere must have been seen on the old
//! master (before the kill) or on the new one, and what the new master saw
//! while it was still a replica (its first subscription, which Sentinel's
//! promotion ends by killing its clients) must have been seen on the old
//! master.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use emitgate_e2e::{
    Gateway,
    failover::{Accounting, HealthWatch, Load, LoadOptions, Subscribers},
    sentinel::{MASTER_NAME, SentinelGroup, SwitchWatch},
    wait::wait_until,
};
use tonic_health::pb::health_check_response::ServingStatus;

/// Sentinel's `down-after-milliseconds`: how long the master may not answer
/// before a Sentinel considers it down.
const DOWN_AFTER_MS: u64 = 1000;
/// Sentinel's `failover-timeout`: small, so that a failover that stalls is
/// retried soon instead of after the default 3 minutes.
const FAILOVER_TIMEOUT_MS: u64 = 3000;
/// How much later than Sentinel's `+switch-master` the gateway may serve
/// again.
const RECOVERY_SLACK: Duration = Duration::from_secs(5);
const CALLERS: usize = 3;
/// Calls each caller makes before the kill, so the load is well under way.
const CALLS_BEFORE_KILL: u64 = 300;
/// Calls each caller makes once the gateway serves again.
const CALLS_AFTER_RECOVERY: u64 = 200;
/// Calls each caller makes while the old master is back and after it was
/// demoted.
const CALLS_AFTER_RESTART: u64 = 200;
const KEY: &str = "st";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_under_load_loses_no_acknowledged_event_and_never_writes_to_a_replica() {
    let mut group = SentinelGroup::start(2, 3, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS).await;
    let ports = group.server_ports();
    let old_master = ports[0];
    let mut config = emitgate::Config::from_toml(&format!(
        "[redis]\ntimeout_ms = 1000\n[[targets]]\nname = \"default\"\ndialect = \"socketio\"\nkey = \"{KEY}\"\n\
         sentinel_master = \"{MASTER_NAME}\"\nsentinel_urls = {:?}\n",
        group.sentinel_urls()
    ))
    .unwrap();
    config.health_interval = Duration::from_millis(100);
    config.admin_listen = None;
    let gw = Gateway::start(config).await;

    let subscribers = Subscribers::start(&ports, KEY).await;
    let mut switches = SwitchWatch::start(group.sentinel_ports()[0]).await;
    let mut health = HealthWatch::start(gw.addr, "emitgate.v1.EmitterService/default").await;
    health.wait_for(ServingStatus::Serving, Duration::from_secs(10)).await;

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

    let ok_at_kill = load.ok_counts();
    let killed_at = Instant::now();
    group.kill(old_master);

    // A failover whose election splits the votes is retried after twice
    // the failover timeout; a loaded machine may need a few rounds.
    let (switched_at, new_master) = switches.next(Duration::from_secs(60)).await;
    let failover_time = switched_at.duration_since(killed_at);
    assert!(ports[1..].contains(&new_master), "+switch-master names {new_master}");
    let other_replica = *ports[1..].iter().find(|p| **p != new_master).unwrap();

    load.wait_more(
        CALLS_AFTER_RECOVERY,
        RECOVERY_SLACK + Duration::from_secs(20),
        "the gateway did not serve again after the failover",
    )
    .await;
    health.wait_for(ServingStatus::Serving, Duration::from_secs(10)).await;

    // The old master comes back as a master, and under load waits for
    // Sentinel to demote it; its subscriber, which has been trying to
    // subscribe again since the kill, listens from the start.
    group.restart(old_master).await;
    wait_until(
        format_args!("the old master {old_master} is a connected replica of {new_master}"),
        Duration::from_secs(60),
        async || match SentinelGroup::role(old_master).await {
            Some((role, Some(master), true)) if role == "slave" && master == new_master => Ok(()),
            other => Err(other),
        },
    )
    .await;
    load.wait_more(CALLS_AFTER_RESTART, Duration::from_secs(30), "load after the restart")
        .await;
    let outcomes = load.stop().await;
    // Every live subscriber has everything published before this.
    let mut c = gw.client().await;
    subscribers
        .barrier(&mut c, &[new_master, other_replica, old_master])
        .await;

    let seen = subscribers.seen();
    let events = |port: u16, keep: &dyn Fn(u32) -> bool| -> HashSet<(usize, u64)> {
        seen.get(&port)
            .map(|e| {
                e.iter()
                    .filter(|e| keep(e.generation))
                    .map(|e| (e.caller, e.seq))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The old master's first subscription ended with its kill.
    let on_old_master = events(old_master, &|g| g == 0);
    let on_new_master = events(new_master, &|_| true);
    let while_new_master_was_replica = events(new_master, &|g| g == 0);
    let mut on_replicas = Vec::new();
    for port in [other_replica, old_master] {
        for e in events(port, &|_| true) {
            if port != old_master || !on_old_master.contains(&e) {
                on_replicas.push((port, e));
            }
        }
    }
    let replica_only: Vec<_> = on_replicas
        .iter()
        .filter(|(_, e)| !on_old_master.contains(e) && !on_new_master.contains(e))
        .collect();
    // A call the old master took (answered before the kill, or the call in
    // flight at the kill; each caller makes one call at a time) reaches its
    // replicas through the replication stream. The old master's own
    // subscriber may still miss it: the replication stream and a
    // subscriber's socket are separate writes, and a SIGKILL can fall
    // between them. Such an event on the new master is not one the gateway
    // published on a replica.
    let taken_by_old_master = |&(caller, seq): &(usize, u64)| {
        let before_kill = ok_at_kill[caller] as usize;
        let last_ok = before_kill
            .checked_sub(1)
            .and_then(|i| outcomes[caller].ok.get(i))
            .map_or(1, |ok| ok.seq + 1);
        seq <= last_ok
    };
    let replicated_not_seen_on_old_master = while_new_master_was_replica
        .iter()
        .filter(|e| !on_old_master.contains(e) && taken_by_old_master(e))
        .count();
    let new_master_as_replica: Vec<_> = while_new_master_was_replica
        .iter()
        .filter(|e| !on_old_master.contains(e) && !taken_by_old_master(e))
        .collect();

    let accounting = Accounting::of(&outcomes, &seen, Some(&[old_master, new_master]));
    // OK calls after the kill (each caller's call in flight at the kill may
    // still have been taken by the old master) reached the new master.
    let mut missed_by_new_master = Vec::new();
    for (caller, (o, n)) in outcomes.iter().zip(&ok_at_kill).enumerate() {
        for ok in o.ok.iter().skip(*n as usize + 1) {
            if !on_new_master.contains(&(caller, ok.seq)) {
                missed_by_new_master.push((caller, ok.seq));
            }
        }
    }
    let first_ok_after = outcomes
        .iter()
        .zip(&ok_at_kill)
        .filter_map(|(o, n)| o.ok.get(*n as usize + 1))
        .map(|ok| ok.at.duration_since(killed_at))
        .min()
        .unwrap();
    let (went_down, back) = health.dip_after(killed_at);
    eprintln!(
        "sentinel failover: master {old_master} -> {new_master}, +switch-master after {failover_time:.1?}; \
         gateway published again after {first_ok_after:.1?}; health back after {back:.1?}; calls OK {}, \
         failed {} ({} not UNAVAILABLE); lost {}; missed by the new master {}; order inversions {}; \
         events on replicas {} (published on a replica: {}, on the new master while a replica: {}; taken by the \
         old master, replicated, missed by its subscriber at the kill: {}); \
         the new master resubscribed {} times, the old one {}",
        accounting.ok,
        accounting.failed,
        accounting.not_unavailable.len(),
        accounting.lost.len(),
        missed_by_new_master.len(),
        accounting.inversions,
        on_replicas.len(),
        replica_only.len(),
        new_master_as_replica.len(),
        replicated_not_seen_on_old_master,
        subscribers.generation(new_master),
        subscribers.generation(old_master),
    );
    accounting.assert_clean();
    assert!(
        missed_by_new_master.is_empty(),
        "calls acknowledged after the kill that the new master's subscriber did not get: {missed_by_new_master:?}"
    );
    assert!(
        replica_only.is_empty(),
        "events published on a replica: {replica_only:?}"
    );
    assert!(
        new_master_as_replica.is_empty(),
        "events published on the new master while it was a replica: {new_master_as_replica:?}"
    );
    assert!(
        !on_replicas.is_empty(),
        "the replicas' subscribers saw no replicated event, so the check above proves nothing"
    );
    assert!(
        first_ok_after <= failover_time + RECOVERY_SLACK,
        "the gateway published again {first_ok_after:?} after the kill; Sentinel switched after {failover_time:?}"
    );
    assert!(
        went_down,
        "health never turned NOT_SERVING after the kill: {:?}",
        health.history()
    );
    assert!(back.is_some(), "health never returned to SERVING");
    gw.stop().await;
}
