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
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use emitgate::pb;
use emitgate_e2e::{Capture, Gateway, dialects::RedisCluster, wait::wait_until};
use tokio_stream_shim::next_status;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// How long a master may be unreachable before the cluster fails it over.
const NODE_TIMEOUT_MS: u64 = 1000;
/// Calls each caller makes before the kill, so the load is well under way.
const CALLS_BEFORE_KILL: u64 = 300;
/// Calls each caller makes once the gateway serves again.
const CALLS_AFTER_RECOVERY: u64 = 300;
/// PUBLISHes sent after the load, counted at each node.
const PROBE_CALLS: u64 = 50;
const CALLERS: usize = 3;
/// Pause after a failed call, so that the callers do not spin while the
/// cluster has no master for slot 0 (pacing, not synchronisation).
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// One caller's outcome.
#[derive(Default)]
struct Outcome {
    ok: Vec<u64>,
    failed: Vec<(u64, Code, String)>,
}

/// What each node's subscriber received: `(channel, caller, seq)` in order.
type Seen = HashMap<u16, Vec<(String, usize, u64)>>;

fn event(caller: usize, seq: u64) -> String {
    format!("e.{caller}.{seq}")
}

fn channel_room(caller: usize, seq: u64) -> String {
    format!("c{caller}r{}", seq % 2)
}

/// Reads `(caller, seq)` back from a classic packet's event name.
fn decode(payload: &[u8]) -> Option<(usize, u64)> {
    let v = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let packet = v.as_array()?.get(1)?;
    let data = packet
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some("data"))?
        .1
        .as_array()?;
    let name = data.first()?.as_str()?;
    let mut parts = name.strip_prefix("e.")?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

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
    let mut captures = Vec::new();
    for port in cluster.live_ports() {
        captures.push((port, Capture::start(&format!("redis://127.0.0.1:{port}")).await));
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let barrier_seen: Arc<Mutex<HashSet<u16>>> = Arc::default();
    let (barrier_tx, _) = tokio::sync::watch::channel(0usize);
    let barrier_tx = Arc::new(barrier_tx);
    for (port, mut cap) in captures {
        let seen = Arc::clone(&seen);
        let barrier_seen = Arc::clone(&barrier_seen);
        let barrier_tx = Arc::clone(&barrier_tx);
        tokio::spawn(async move {
            while let Some(m) = cap.recv().await {
                if m.channel == "fo#/#barrier#" {
                    let n = {
                        let mut b = barrier_seen.lock().unwrap();
                        b.insert(port);
                        b.len()
                    };
                    barrier_tx.send_replace(n);
                } else if let Some((caller, seq)) = decode(&m.payload) {
                    seen.lock()
                        .unwrap()
                        .entry(port)
                        .or_default()
                        .push((m.channel, caller, seq));
                }
            }
        });
    }

    // Health of the target, as a watcher sees every change.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut statuses = health
        .watch(HealthCheckRequest {
            service: "emitgate.v1.EmitterService/default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let history: Arc<Mutex<Vec<(Instant, ServingStatus)>>> = Arc::default();
    let (health_tx, mut health_rx) = tokio::sync::watch::channel(ServingStatus::Unknown);
    {
        let history = Arc::clone(&history);
        tokio::spawn(async move {
            while let Some(s) = next_status(&mut statuses).await {
                history.lock().unwrap().push((Instant::now(), s));
                health_tx.send_replace(s);
            }
        });
    }
    health_rx.wait_for(|s| *s == ServingStatus::Serving).await.unwrap();

    // The load: each caller sends its Emits one after the other.
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(vec![0u64; CALLERS]);
    let progress_tx = Arc::new(progress_tx);
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let mut c = gw.client().await;
        let progress_tx = Arc::clone(&progress_tx);
        let stopped = Arc::clone(&stopped);
        callers.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut seq = 0;
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                seq += 1;
                let req = pb::EmitRequest {
                    rooms: vec![channel_room(caller, seq)],
                    event: event(caller, seq),
                    ..Default::default()
                };
                match c.emit(req).await {
                    Ok(_) => {
                        out.ok.push(seq);
                        progress_tx.send_modify(|p| p[caller] = out.ok.len() as u64);
                    }
                    Err(e) => {
                        out.failed.push((seq, e.code(), e.message().to_owned()));
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
            out
        }));
    }

    progress_rx
        .wait_for(|p| p.iter().all(|n| *n >= CALLS_BEFORE_KILL))
        .await
        .unwrap();
    let owner = cluster.owner_of(0).await;
    let survivor = *cluster.ports.iter().find(|p| **p != owner).unwrap();
    let before = cluster.publish_calls(owner).await;
    assert!(
        before >= CALLS_BEFORE_KILL,
        "the publish node {owner} took {before} PUBLISHes"
    );

    let killed_at = Instant::now();
    let ok_at_kill: Vec<u64> = progress_rx.borrow().clone();
    cluster.kill(owner);

    // The cluster promotes the replica; no event announces it.
    let new_owner = wait_until(
        "slot 0 owned by another node",
        Duration::from_secs(30),
        async || match cluster.owner_as_seen_by(survivor, 0).await {
            o if o == owner => Err(format!("still owned by the killed node {o}")),
            o => Ok(o),
        },
    )
    .await;
    let promoted_after = killed_at.elapsed();

    let target: Vec<u64> = ok_at_kill.iter().map(|n| n + CALLS_AFTER_RECOVERY).collect();
    tokio::time::timeout(
        Duration::from_secs(NODE_TIMEOUT_MS / 1000 + 20),
        progress_rx.wait_for(|p| p.iter().zip(&target).all(|(n, t)| n >= t)),
    )
    .await
    .expect("the gateway did not serve again after the failover")
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        health_rx.wait_for(|s| *s == ServingStatus::Serving),
    )
    .await
    .expect("health did not return to SERVING")
    .unwrap();
    stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for c in callers {
        outcomes.push(c.await.unwrap());
    }

    // Every failure is UNAVAILABLE.
    for (caller, o) in outcomes.iter().enumerate() {
        for (seq, code, message) in &o.failed {
            assert_eq!(*code, Code::Unavailable, "caller {caller} call {seq}: {message}");
        }
    }

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
    c.emit(pb::EmitRequest {
        rooms: vec!["barrier".into()],
        event: "barrier".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut barrier_rx = barrier_tx.subscribe();
    tokio::time::timeout(Duration::from_secs(10), barrier_rx.wait_for(|n| *n >= live.len()))
        .await
        .expect("a live subscriber did not get the barrier")
        .unwrap();

    // Accounting.
    let seen = seen.lock().unwrap();
    let mut inversions = 0;
    for (port, events) in seen.iter() {
        let mut last: HashMap<(&str, usize), u64> = HashMap::new();
        for (channel, caller, seq) in events {
            let key = (channel.as_str(), *caller);
            if let Some(prev) = last.get(&key)
                && *seq <= *prev
            {
                inversions += 1;
                eprintln!("node {port}: caller {caller} on {channel}: {seq} after {prev}");
            }
            last.insert(key, *seq);
        }
    }
    let received: HashSet<(usize, u64)> = seen.values().flatten().map(|(_, c, s)| (*c, *s)).collect();
    let mut lost = Vec::new();
    let mut missing_after = 0;
    // Each caller has at most one call in flight: the one after its count
    // at the kill may still have been acknowledged by the killed node.
    let recovered_from: Vec<u64> = ok_at_kill.iter().map(|n| n + 1).collect();
    for (caller, o) in outcomes.iter().enumerate() {
        for (i, seq) in o.ok.iter().enumerate() {
            if !received.contains(&(caller, *seq)) {
                lost.push((caller, *seq));
            }
            // Events acknowledged after the failover reached every
            // subscriber that lived through it.
            if i as u64 >= recovered_from[caller] {
                for p in &live {
                    if !seen
                        .get(p)
                        .is_some_and(|e| e.iter().any(|(_, c, s)| *c == caller && s == seq))
                    {
                        missing_after += 1;
                    }
                }
            }
        }
    }
    let ok: usize = outcomes.iter().map(|o| o.ok.len()).sum();
    let failed: usize = outcomes.iter().map(|o| o.failed.len()).sum();
    let health_history = history.lock().unwrap().clone();
    let not_serving = health_history
        .iter()
        .any(|(t, s)| *t > killed_at && *s == ServingStatus::NotServing);
    let back = health_history
        .iter()
        .filter(|(t, s)| *t > killed_at && *s == ServingStatus::Serving)
        .map(|(t, _)| t.duration_since(killed_at))
        .next();
    eprintln!(
        "failover: slot 0 moved {owner} -> {new_owner} after {promoted_after:.1?}; health back after {back:.1?}; \
         calls OK {ok}, failed {failed} (all UNAVAILABLE); lost {}; order inversions {inversions}; \
         missing after recovery {missing_after}",
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged events no subscriber received: {lost:?}");
    assert_eq!(inversions, 0, "events of one caller on one channel out of order");
    assert_eq!(
        missing_after, 0,
        "events acknowledged after the failover missed a live subscriber"
    );
    assert!(
        not_serving,
        "health never turned NOT_SERVING after the kill: {health_history:?}"
    );
    let back = back.expect("health never returned to SERVING");
    assert!(
        back <= promoted_after + Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(5),
        "health back {back:?} after the kill, the cluster promoted after {promoted_after:?}"
    );
}

/// Reads the health watch stream without another dependency.
mod tokio_stream_shim {
    use tonic_health::pb::{HealthCheckResponse, health_check_response::ServingStatus};

    pub async fn next_status(s: &mut tonic::Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
        s.message().await.ok().flatten().map(|r| r.status())
    }
}
