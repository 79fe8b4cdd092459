//! Load and accounting for the failover suites (Redis Cluster, Sentinel,
//! gateway replicas): callers sending unary Emits without pause, a pattern
//! subscriber on every Redis node that decodes what it receives, and a
//! health watcher that keeps every status change.
//!
//! Caller `c`'s call `s` emits event `e.<c>.<s>` to room `c<c>r<s % 2>` in
//! the classic `socketio` dialect (two channels per caller, so order is
//! checked per channel). [`Accounting`] then says which acknowledged events
//! no subscriber got and which arrived out of order.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};

use crate::Capture;

/// Pause after a failed call, so that the callers do not spin while Redis
/// has no master (pacing, not synchronisation).
pub const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// The room of the barrier event [`Subscribers`] wait for.
pub const BARRIER_ROOM: &str = "barrier";

/// The event name of caller `caller`'s call `seq`.
pub fn event(caller: usize, seq: u64) -> String {
    format!("e.{caller}.{seq}")
}

/// The room of caller `caller`'s call `seq`: two per caller.
pub fn room(caller: usize, seq: u64) -> String {
    format!("c{caller}r{}", seq % 2)
}

/// Reads `(caller, seq)` back from a classic packet's event name.
pub fn decode(payload: &[u8]) -> Option<(usize, u64)> {
    let v = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let packet = v.as_array()?.get(1)?;
    let data = packet
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some("data"))?
        .1
        .as_array()?;
    parse_event(data.first()?.as_str()?)
}

/// Reads `(caller, seq)` from an event name `e.<caller>.<seq>`.
pub fn parse_event(name: &str) -> Option<(usize, u64)> {
    let mut parts = name.strip_prefix("e.")?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// How callers make their calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Each call carries the idempotency key `k.<caller>.<seq>`, and a
    /// failed call is sent again with the same key until it succeeds
    /// (instead of going on with the next event).
    pub retry_with_key: bool,
}

/// One call's answer.
#[derive(Debug, Clone)]
pub struct Ok {
    /// The call's sequence number.
    pub seq: u64,
    /// When the answer came.
    pub at: Instant,
    /// The gateway found the idempotency key already used.
    pub duplicate: bool,
}

/// One caller's outcome.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Calls that returned OK, in order.
    pub ok: Vec<Ok>,
    /// Calls that failed: `(seq, code, message)`.
    pub failed: Vec<(u64, Code, String)>,
}

/// Callers sending unary Emits one after the other until stopped.
pub struct Load {
    progress: watch::Receiver<Vec<u64>>,
    stopped: Arc<AtomicBool>,
    callers: Vec<tokio::task::JoinHandle<Outcome>>,
}

impl Load {
    /// Starts one caller per client.
    pub fn start(clients: Vec<EmitterServiceClient<Channel>>, options: LoadOptions) -> Self {
        let (progress_tx, progress) = watch::channel(vec![0u64; clients.len()]);
        let progress_tx = Arc::new(progress_tx);
        let stopped = Arc::new(AtomicBool::new(false));
        let callers = clients
            .into_iter()
            .enumerate()
            .map(|(caller, mut c)| {
                let progress_tx = Arc::clone(&progress_tx);
                let stopped = Arc::clone(&stopped);
                tokio::spawn(async move {
                    let mut out = Outcome::default();
                    let mut seq = 0;
                    let mut retrying = false;
                    while !stopped.load(Ordering::SeqCst) {
                        if !retrying {
                            seq += 1;
                        }
                        let req = pb::EmitRequest {
                            rooms: vec![room(caller, seq)],
                            event: event(caller, seq),
                            idempotency_key: if options.retry_with_key {
                                format!("k.{caller}.{seq}")
                            } else {
                                String::new()
                            },
                            ..Default::default()
                        };
                        match c.emit(req).await {
                            Result::Ok(r) => {
                                out.ok.push(Ok {
                                    seq,
                                    at: Instant::now(),
                                    duplicate: r.into_inner().duplicate,
                                });
                                retrying = false;
                                progress_tx.send_modify(|p| p[caller] = out.ok.len() as u64);
                            }
                            Err(e) => {
                                out.failed.push((seq, e.code(), e.message().to_owned()));
                                retrying = options.retry_with_key;
                                tokio::time::sleep(RETRY_PAUSE).await;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        Self {
            progress,
            stopped,
            callers,
        }
    }

    /// How many calls of each caller returned OK so far.
    pub fn ok_counts(&self) -> Vec<u64> {
        self.progress.borrow().clone()
    }

    /// Waits until every caller has at least `target[i]` OK calls, failing
    /// the test after `within`.
    pub async fn wait_ok(&mut self, target: &[u64], within: Duration, what: &str) {
        let reached = tokio::time::timeout(
            within,
            self.progress.wait_for(|p| p.iter().zip(target).all(|(n, t)| n >= t)),
        )
        .await
        .map(|r| r.is_ok());
        assert!(
            reached.is_ok(),
            "{what}: callers at {:?}, wanted {target:?}",
            self.ok_counts()
        );
    }

    /// Waits until every caller has `more` OK calls more than now.
    pub async fn wait_more(&mut self, more: u64, within: Duration, what: &str) {
        let target: Vec<u64> = self.ok_counts().iter().map(|n| n + more).collect();
        self.wait_ok(&target, within, what).await;
    }

    /// Stops the callers (each finishes its call in flight) and returns
    /// their outcomes.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stopped.store(true, Ordering::SeqCst);
        let mut outcomes = Vec::new();
        for c in self.callers {
            outcomes.push(c.await.expect("caller task"));
        }
        outcomes
    }
}

/// One event a subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// The channel.
    pub channel: String,
    /// The caller and its sequence number.
    pub caller: usize,
    /// The caller's sequence number.
    pub seq: u64,
    /// Which subscription of the node got it: 0 for the first, 1 after the
    /// first reconnect (the node restarted, or killed its clients), …
    pub generation: u32,
}

/// What each node's subscriber received, in order.
pub type Seen = HashMap<u16, Vec<SeenEvent>>;

/// How long a subscriber waits before it subscribes again after its
/// connection was lost (pacing while the node is down).
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(10);

/// A pattern subscriber on each of several Redis nodes; one that loses its
/// connection subscribes again as soon as the node answers (a Sentinel
/// reconfiguring a server kills its pub/sub clients).
pub struct Subscribers {
    seen: Arc<Mutex<Seen>>,
    barrier: Arc<Mutex<HashMap<u16, u64>>>,
    barrier_tx: Arc<watch::Sender<()>>,
    generations: Arc<Mutex<HashMap<u16, u32>>>,
    key: String,
}

impl Subscribers {
    /// Subscribes on every port (returns once all subscriptions are active);
    /// `key` is the target's channel prefix.
    pub async fn start(ports: &[u16], key: &str) -> Self {
        let s = Self {
            seen: Arc::default(),
            barrier: Arc::default(),
            barrier_tx: Arc::new(watch::channel(()).0),
            generations: Arc::default(),
            key: key.to_owned(),
        };
        for port in ports {
            s.add(*port).await;
        }
        s
    }

    /// Subscribes on one more node; returns once subscribed.
    pub async fn add(&self, port: u16) {
        let url = format!("redis://127.0.0.1:{port}");
        let first = Capture::start(&url).await;
        let seen = Arc::downgrade(&self.seen);
        let barrier = Arc::clone(&self.barrier);
        let barrier_tx = Arc::clone(&self.barrier_tx);
        let generations = Arc::clone(&self.generations);
        let barrier_channel = format!("{}#/#{BARRIER_ROOM}#", self.key);
        tokio::spawn(async move {
            let mut cap = Some(first);
            let mut generation = 0;
            loop {
                let Some(mut c) = cap.take() else {
                    if seen.strong_count() == 0 {
                        return;
                    }
                    cap = Capture::try_start(&url).await;
                    if cap.is_some() {
                        generation += 1;
                        generations.lock().expect("lock").insert(port, generation);
                    } else {
                        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
                    }
                    continue;
                };
                while let Some(m) = c.recv().await {
                    let Some(seen) = seen.upgrade() else { return };
                    if m.channel == barrier_channel {
                        *barrier.lock().expect("lock").entry(port).or_default() += 1;
                        barrier_tx.send_replace(());
                    } else if let Some((caller, seq)) = decode(&m.payload) {
                        seen.lock().expect("lock").entry(port).or_default().push(SeenEvent {
                            channel: m.channel,
                            caller,
                            seq,
                            generation,
                        });
                    }
                }
            }
        });
    }

    /// How many times the subscriber on `port` subscribed again.
    pub fn generation(&self, port: u16) -> u32 {
        self.generations.lock().expect("lock").get(&port).copied().unwrap_or(0)
    }

    /// Emits a barrier through `client` and waits until the subscriber of
    /// every node in `ports` got it: a node's subscriber then has every
    /// event published before it on that node.
    pub async fn barrier(&self, client: &mut EmitterServiceClient<Channel>, ports: &[u16]) {
        let before: HashMap<u16, u64> = self.barrier.lock().expect("lock").clone();
        client
            .emit(pb::EmitRequest {
                rooms: vec![BARRIER_ROOM.into()],
                event: "barrier".into(),
                ..Default::default()
            })
            .await
            .expect("barrier emit");
        let mut rx = self.barrier_tx.subscribe();
        let barrier = Arc::clone(&self.barrier);
        let all = move || {
            let b = barrier.lock().expect("lock");
            ports
                .iter()
                .all(|p| b.get(p).copied().unwrap_or(0) > before.get(p).copied().unwrap_or(0))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all() {
            assert!(
                Instant::now() < deadline,
                "a subscriber of {ports:?} did not get the barrier"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }

    /// A copy of what every subscriber received so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("lock").clone()
    }
}

/// The figures of a run.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Calls that returned OK.
    pub ok: usize,
    /// Calls that failed.
    pub failed: usize,
    /// Failures other than UNAVAILABLE: `(caller, seq, code, message)`.
    pub not_unavailable: Vec<(usize, u64, Code, String)>,
    /// OK calls whose event no subscriber in `nodes` received.
    pub lost: Vec<(usize, u64)>,
    /// Events of one caller on one channel that a subscriber got out of order.
    pub inversions: usize,
}

impl Accounting {
    /// Counts `outcomes` against what the subscribers of `nodes` received
    /// (`None`: every node).
    pub fn of(outcomes: &[Outcome], seen: &Seen, nodes: Option<&[u16]>) -> Self {
        let mut a = Self::default();
        for (port, events) in seen {
            let mut last: HashMap<(&str, usize), u64> = HashMap::new();
            for e in events {
                let key = (e.channel.as_str(), e.caller);
                if let Some(prev) = last.get(&key)
                    && e.seq <= *prev
                {
                    a.inversions += 1;
                    eprintln!(
                        "node {port}: caller {} on {}: {} after {prev}",
                        e.caller, e.channel, e.seq
                    );
                }
                last.insert(key, e.seq);
            }
        }
        let received: HashSet<(usize, u64)> = seen
            .iter()
            .filter(|(p, _)| nodes.is_none_or(|n| n.contains(p)))
            .flat_map(|(_, e)| e.iter().map(|e| (e.caller, e.seq)))
            .collect();
        for (caller, o) in outcomes.iter().enumerate() {
            a.ok += o.ok.len();
            a.failed += o.failed.len();
            for ok in &o.ok {
                if !received.contains(&(caller, ok.seq)) {
                    a.lost.push((caller, ok.seq));
                }
            }
            for (seq, code, message) in &o.failed {
                if *code != Code::Unavailable {
                    a.not_unavailable.push((caller, *seq, *code, message.clone()));
                }
            }
        }
        a
    }

    /// Fails the test unless nothing was lost, nothing reordered and every
    /// failure was UNAVAILABLE.
    pub fn assert_clean(&self) {
        assert!(
            self.not_unavailable.is_empty(),
            "calls failed with another code than UNAVAILABLE: {:?}",
            self.not_unavailable
        );
        assert!(
            self.lost.is_empty(),
            "acknowledged events no subscriber received: {:?}",
            self.lost
        );
        assert_eq!(self.inversions, 0, "events of one caller on one channel out of order");
    }
}

/// Every status change of one health entry, as a watcher sees it.
pub struct HealthWatch {
    rx: watch::Receiver<ServingStatus>,
    history: Arc<Mutex<Vec<(Instant, ServingStatus)>>>,
}

impl HealthWatch {
    /// Watches `service` (e.g. `emitgate.v1.EmitterService/default`) on the
    /// gateway at `addr`.
    pub async fn start(addr: SocketAddr, service: &str) -> Self {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to gateway");
        let mut statuses = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health watch")
            .into_inner();
        let history: Arc<Mutex<Vec<(Instant, ServingStatus)>>> = Arc::default();
        let (tx, rx) = watch::channel(ServingStatus::Unknown);
        let h = Arc::clone(&history);
        tokio::spawn(async move {
            while let Some(r) = statuses.message().await.ok().flatten() {
                h.lock().expect("lock").push((Instant::now(), r.status()));
                tx.send_replace(r.status());
            }
        });
        Self { rx, history }
    }

    /// Waits for `status`, failing the test after `within`.
    pub async fn wait_for(&mut self, status: ServingStatus, within: Duration) {
        tokio::time::timeout(within, self.rx.wait_for(|s| *s == status))
            .await
            .unwrap_or_else(|_| panic!("health did not turn {status:?} within {within:?}"))
            .expect("health watcher alive");
    }

    /// Whether it was NOT_SERVING at some point after `t`, and when (after
    /// `t`) it first turned SERVING again after that.
    pub fn dip_after(&self, t: Instant) -> (bool, Option<Duration>) {
        let h = self.history.lock().expect("lock");
        let down = h.iter().position(|(at, s)| *at > t && *s == ServingStatus::NotServing);
        let back = down.and_then(|i| {
            h[i..]
                .iter()
                .find(|(_, s)| *s == ServingStatus::Serving)
                .map(|(at, _)| at.duration_since(t))
        });
        (down.is_some(), back)
    }

    /// The whole history, for failure messages.
    pub fn history(&self) -> Vec<(Instant, ServingStatus)> {
        self.history.lock().expect("lock").clone()
    }
}
