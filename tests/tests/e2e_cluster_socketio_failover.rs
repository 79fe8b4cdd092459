//! A Redis Cluster failover under load, seen by real Socket.IO clients: three
//! masters with one replica each, two Socket.IO 4 servers with the classic
//! redis adapter on the cluster (node-redis `createCluster`), a real
//! socket.io-client on each server in every room the load uses; the
//! gateway's classic `socketio` target with `cluster = true`; three callers
//! sending unary Emits without pause. The master that takes the target's
//! PUBLISHes (the owner of slot 0) is killed with SIGKILL; its replica takes
//! over. The test proves:
//!
//! - every call that returned OK reached every client, on both servers, in
//!   order per caller and room;
//! - calls that failed meanwhile failed with UNAVAILABLE;
//! - the gateway published again after the promotion, without a restart,
//!   within the node timeout + 5 s.
//!
//! Where the servers subscribe: node-redis keeps a cluster client's
//! subscriptions on one node it picks at random. Redis pub/sub keeps
//! nothing for a subscriber that is not connected, so a server subscribed on
//! the killed node misses what is published until node-redis subscribes
//! elsewhere, whatever the publisher does. The test therefore first moves
//! slot 0 to a master no server subscribes on: the kill then tests what the
//! gateway can answer for, and the servers keep their subscriptions.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use emitgate::pb;
use emitgate_e2e::{
    Gateway, SioClient, Stack,
    dialects::{RedisCluster, StackOptions},
    failover::{self, Accounting, Load, LoadOptions, Seen, SeenEvent},
    wait::wait_until,
};

/// How long a master may be unreachable before the cluster fails it over.
const NODE_TIMEOUT_MS: u64 = 1000;
/// How much later than the promotion the gateway may publish again.
const RECOVERY_SLACK: Duration = Duration::from_secs(5);
const CALLERS: usize = 3;
/// Calls each caller makes before the kill, so the load is well under way.
const CALLS_BEFORE_KILL: u64 = 200;
/// Calls each caller makes once the gateway serves again.
const CALLS_AFTER_RECOVERY: u64 = 200;
/// The Socket.IO servers (each with one client).
const SERVERS: u32 = 2;
const KEY: &str = "sf";
/// How node-redis reports a connection to a node that died (the reset of
/// the open connection, then refused reconnects).
const CONNECTION_LOST: [&str; 3] = ["ECONNRESET", "ECONNREFUSED", "Socket closed unexpectedly"];
/// The event after the load: once a client has it, it has every earlier one.
const BARRIER: &str = "barrier";

/// How many pattern subscriptions (the classic adapter's `psubscribe`) the
/// node on `port` serves.
async fn pattern_subscribers(cluster: &RedisCluster, port: u16) -> usize {
    let list: String = cluster
        .command(port, redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub"))
        .await;
    list.lines()
        .filter(|l| l.split(' ').any(|f| f.strip_prefix("psub=").is_some_and(|n| n != "0")))
        .count()
}

/// The ports of the nodes that are masters now.
async fn masters(cluster: &RedisCluster) -> Vec<u16> {
    let mut out = Vec::new();
    for port in cluster.live_ports() {
        let role: Vec<redis::Value> = cluster.command(port, &redis::cmd("ROLE")).await;
        if role
            .first()
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
            == Some("master".into())
        {
            out.push(port);
        }
    }
    out
}

/// What `client` received before the barrier, as the failover accounting
/// reads it: the room stands in for the channel (each client is in every
/// room, so order is checked per caller and room).
async fn received(stack: &Stack, client: &SioClient) -> Vec<SeenEvent> {
    stack
        .events_before(client, BARRIER)
        .await
        .iter()
        .filter_map(|e| failover::parse_event(e["event"].as_str()?))
        .map(|(caller, seq)| SeenEvent {
            channel: failover::room(caller, seq),
            caller,
            seq,
            generation: 0,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socketio_clients_get_every_acknowledged_event_when_the_publish_master_dies() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1, NODE_TIMEOUT_MS).await;
    let seeds = cluster.urls();
    let mut stack = Stack::start_with(
        &seeds.join(","),
        &StackOptions {
            servers: SERVERS,
            redis_cluster: true,
            key: Some(KEY.into()),
            ..Default::default()
        },
    )
    .await;
    let rooms: Vec<String> = (0..CALLERS)
        .flat_map(|c| [failover::room(c, 0), failover::room(c, 1)])
        .collect();
    let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
    let mut clients = Vec::new();
    for server in 0..SERVERS {
        clients.push(stack.connect("/", server, &rooms).await);
    }

    // Where the servers subscribe (their node-redis clients connect on
    // their own time): move slot 0 to a master that none of them uses.
    let by_node: HashMap<u16, usize> = wait_until(
        "both Socket.IO servers subscribed on some node",
        Duration::from_secs(20),
        async || {
            let mut n = HashMap::new();
            for p in cluster.live_ports() {
                n.insert(p, pattern_subscribers(&cluster, p).await);
            }
            if n.values().sum::<usize>() >= SERVERS as usize {
                Ok(n)
            } else {
                Err(n)
            }
        },
    )
    .await;
    let free = masters(&cluster)
        .await
        .into_iter()
        .find(|m| by_node.get(m).copied().unwrap_or(0) == 0)
        .expect("three masters, two subscriptions: one master is free");
    if cluster.owner_of(0).await != free {
        cluster.move_slot(0, free).await;
    }

    let gw = Gateway::start(Gateway::config(
        &seeds[0],
        &format!(
            "[redis]\ntimeout_ms = 1000\n[[targets]]\nname = \"default\"\ndialect = \"socketio\"\nkey = \"{KEY}\"\n\
             cluster = true\ncluster_seeds = {:?}\n",
            &seeds[1..]
        ),
    ))
    .await;
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        callers.push(gw.client().await);
    }
    let mut load = Load::start(callers, LoadOptions::default());
    load.wait_ok(
        &[CALLS_BEFORE_KILL; CALLERS],
        Duration::from_secs(60),
        "load before the kill",
    )
    .await;
    let owner = cluster.owner_of(0).await;
    assert_eq!(owner, free, "slot 0 stayed where the test put it");
    let survivor = *cluster.ports.iter().find(|p| **p != owner).unwrap();

    let killed_at = Instant::now();
    let ok_at_kill = load.ok_counts();
    cluster.kill(owner);
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
    let outcomes = load.stop().await;

    let mut c = gw.client().await;
    c.broadcast(pb::BroadcastRequest {
        event: BARRIER.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut seen = Seen::new();
    for (i, client) in clients.iter().enumerate() {
        seen.insert(u16::try_from(i).unwrap(), received(&stack, client).await);
    }
    // Every client must have every acknowledged event: count per client.
    let per_client: Vec<Accounting> = (0..clients.len())
        .map(|i| {
            let i = u16::try_from(i).unwrap();
            Accounting::of(&outcomes, &seen, Some(&[i]))
        })
        .collect();
    let first_ok_after = outcomes
        .iter()
        .zip(&ok_at_kill)
        .filter_map(|(o, n)| o.ok.get(*n as usize + 1))
        .map(|ok| ok.at.duration_since(killed_at))
        .min()
        .unwrap();
    let all = &per_client[0];
    eprintln!(
        "socket.io cluster failover: slot 0 moved {owner} -> {new_owner} after {promoted_after:.1?}; gateway \
         published again after {first_ok_after:.1?}; calls OK {}, failed {} ({} not UNAVAILABLE); lost per client \
         {:?}; order inversions {}; events per client {:?}",
        all.ok,
        all.failed,
        all.not_unavailable.len(),
        per_client.iter().map(|a| a.lost.len()).collect::<Vec<_>>(),
        all.inversions,
        seen.values().map(Vec::len).collect::<Vec<_>>(),
    );
    for a in &per_client {
        a.assert_clean();
    }
    assert!(
        first_ok_after <= promoted_after + RECOVERY_SLACK,
        "the gateway published again {first_ok_after:?} after the kill; the cluster promoted after {promoted_after:?}"
    );
    // The servers' node-redis clients report losing the killed node (they
    // hold a connection to every master); anything else (a decode error, an
    // exception) is a failure.
    let unexpected: Vec<serde_json::Value> = stack
        .errors()
        .await
        .into_iter()
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or_default();
            !(e["kind"] == "redis" && CONNECTION_LOST.iter().any(|m| message.contains(m)))
        })
        .collect();
    assert_eq!(unexpected, Vec::<serde_json::Value>::new(), "Socket.IO server errors");
    stack.assert_running().await;
}
