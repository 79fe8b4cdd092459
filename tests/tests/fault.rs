//! Redis dies under sustained load and comes back: every call that
//! returned OK (with a subscriber listening) was delivered, every failed
//! call failed fast with UNAVAILABLE or DEADLINE_EXCEEDED, health follows
//! Redis, and the gateway serves again without a restart.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use emitgate::pb;
use emitgate_e2e::{Capture, Gateway, RedisServer, value, wait::wait_until};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// The Redis timeout of the gateway under test.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1000);

/// One finished call of the load.
struct Call {
    ids: Vec<String>,
    result: Result<u64, Code>,
    took: Duration,
}

fn item(id: &str) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: vec!["r".into()],
        event: "f".into(),
        args: vec![value(json!(id))],
        ..Default::default()
    }
}

/// Collects the ids of every event a capture sees, until its connection
/// ends or it sees the marker channel.
fn collect(mut cap: Capture, seen: Arc<Mutex<HashSet<String>>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(m) = cap.recv().await {
            if m.channel == "capture-marker" {
                return;
            }
            let packet = rmpv::decode::read_value(&mut m.payload.as_slice()).unwrap();
            seen.lock()
                .unwrap()
                .insert(packet[1]["data"][1].as_str().unwrap().to_owned());
        }
    })
}

async fn health(addr: std::net::SocketAddr) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn wait_health(addr: std::net::SocketAddr, want: ServingStatus) {
    // The gateway PINGs every 100 ms in tests; no event announces a change.
    wait_until(
        format_args!("health {want:?}"),
        Duration::from_secs(10),
        async || match health(addr).await {
            s if s == want as i32 => Ok(()),
            s => Err(s),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dies_under_load_and_comes_back() {
    let mut redis = RedisServer::start().await;
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let first_capture = collect(Capture::start(&redis.url()).await, Arc::clone(&seen));
    let mut config = Gateway::config(&redis.url(), "");
    config.redis_timeout = REDIS_TIMEOUT;
    let gw = Gateway::start(config).await;
    wait_health(gw.addr, ServingStatus::Serving).await;

    let stop = Arc::new(AtomicBool::new(false));
    // (OK calls, failed calls) so far, for the test to await.
    let (progress_tx, progress) = tokio::sync::watch::channel((0usize, 0usize));
    let progress_tx = Arc::new(progress_tx);
    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    let mut load = Vec::new();
    for task in 0..4 {
        let mut c = gw.client().await;
        let (stop, progress_tx, calls) = (Arc::clone(&stop), Arc::clone(&progress_tx), Arc::clone(&calls));
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let (ids, result) = if i % 2 == 0 {
                    let id = format!("{task}-{i}");
                    (
                        vec![id.clone()],
                        c.emit(item(&id)).await.map(|r| r.into_inner().receivers),
                    )
                } else {
                    let ids: Vec<String> = (0..3).map(|k| format!("{task}-{i}-{k}")).collect();
                    let items = ids
                        .iter()
                        .map(|id| pb::BatchItem {
                            op: Some(pb::batch_item::Op::Emit(item(id))),
                        })
                        .collect();
                    let r = c.batch_emit(pb::BatchEmitRequest { items, atomic: false }).await;
                    let r = r.map(|r| {
                        let r = r.into_inner();
                        assert_eq!(r.failed, 0, "a batch on one target fails as a whole: {r:?}");
                        r.results.iter().map(|x| x.receivers).min().unwrap_or(0)
                    });
                    (ids, r)
                };
                let succeeded = result.is_ok();
                calls.lock().unwrap().push(Call {
                    ids,
                    result: result.map_err(|e| e.code()),
                    took: started.elapsed(),
                });
                progress_tx.send_modify(|(ok, failed)| *if succeeded { ok } else { failed } += 1);
            }
        }));
    }
    // Awaits `what` of the progress, failing after `deadline`.
    let progress_until = async |what: &str, deadline: Duration, done: &dyn Fn(&(usize, usize)) -> bool| {
        let mut rx = progress.clone();
        if tokio::time::timeout(deadline, rx.wait_for(|p| done(p))).await.is_err() {
            panic!(
                "{what}: not within {deadline:?}; (OK, failed) calls: {:?}",
                *rx.borrow()
            );
        }
    };
    let wait_ok = async |n: usize| {
        progress_until(&format!("{n} OK calls"), Duration::from_secs(20), &|p| p.0 >= n).await;
    };

    wait_ok(200).await;
    redis.stop();
    first_capture.await.unwrap();
    wait_health(gw.addr, ServingStatus::NotServing).await;
    progress_until("8 calls failed while Redis was down", Duration::from_secs(10), &|p| {
        p.1 >= 8
    })
    .await;

    redis.restart().await;
    let restarted = Instant::now();
    let second_capture = Capture::start(&redis.url()).await;
    let second = collect(second_capture, Arc::clone(&seen));
    let before = progress.borrow().0;
    wait_ok(before + 1).await;
    let recovery = restarted.elapsed();
    wait_ok(before + 200).await;
    wait_health(gw.addr, ServingStatus::Serving).await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    // Everything published has reached the second capture once the marker has.
    let marker = redis::Client::open(redis.url()).unwrap();
    let mut marker = marker.get_multiplexed_async_connection().await.unwrap();
    let _: u64 = redis::cmd("PUBLISH")
        .arg("capture-marker")
        .arg("m")
        .query_async(&mut marker)
        .await
        .unwrap();
    second.await.unwrap();

    assert!(
        recovery < Duration::from_secs(5),
        "the gateway took {recovery:?} to serve again"
    );
    let calls = calls.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut delivered = 0;
    for call in calls.iter() {
        match call.result {
            // Published while a subscriber listened: it must have arrived.
            Ok(receivers) if receivers > 0 => {
                for id in &call.ids {
                    assert!(seen.contains(id), "call {id} returned OK but was never delivered");
                }
                delivered += 1;
            }
            // Published while no subscriber was connected yet (just after
            // the restart, before the capture re-subscribed).
            Ok(_) => {}
            Err(code) => {
                assert!(
                    matches!(code, Code::Unavailable | Code::DeadlineExceeded),
                    "failed with {code:?}"
                );
                assert!(
                    call.took < REDIS_TIMEOUT + Duration::from_millis(1500),
                    "a failure took {:?}",
                    call.took
                );
            }
        }
    }
    assert!(delivered >= 400, "only {delivered} delivered calls checked");
}
