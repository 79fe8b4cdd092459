//! One target's answer subscriber and the table of requests waiting for
//! answers.
//!
//! A [`Hub`] holds one RESP3 subscriber connection per target, opened the
//! first time a request needs it: a multiplexed connection on a standalone
//! Redis, a cluster connection on a Redis Cluster (which sends each
//! SSUBSCRIBE to the node owning the channel's slot, and re-subscribes by
//! itself after a node reconnect or a slot move). When the standalone
//! connection drops, the hub forgets it and its subscriptions: the next
//! request connects again and subscribes its channels before publishing.
//! A namespace's response channels are subscribed once per connection, and
//! a request is published only after Redis confirmed them.
//!
//! Every message received is handed to a dispatcher task: it decodes the
//! request id and passes the answer to the waiting request, or drops and
//! counts it (unknown or finished request, undecodable). A [`Waiter`]
//! removes its entry when dropped, so a request that completes, times out
//! or whose caller goes away leaves nothing behind.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value, aio::MultiplexedConnection,
    cluster::ClusterClientBuilder, cluster_async::ClusterConnection,
};
use tokio::sync::mpsc;

use crate::{
    codec::feedback::{Channel, Envelope, Wire},
    config::TargetConfig,
    error::{Error, Limit},
    metrics,
};

/// One answer for a waiting request.
#[derive(Debug)]
pub struct Arrival {
    /// The decoded answer.
    pub envelope: Envelope,
    /// Its size on the wire.
    pub bytes: usize,
    /// When it was received.
    pub at: Instant,
}

/// The requests waiting for answers, shared by every target: their number
/// and the answer bytes they hold are bounded gateway-wide.
#[derive(Debug)]
pub struct Pending {
    map: Mutex<HashMap<String, mpsc::UnboundedSender<Arrival>>>,
    max_pending: usize,
    buffered: AtomicUsize,
    max_buffered: usize,
}

impl Pending {
    /// An empty table.
    pub fn new(max_pending: usize, max_buffered: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max_pending,
            buffered: AtomicUsize::new(0),
            max_buffered,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Arrival>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a request under a fresh random id (before it is
    /// published); RESOURCE_EXHAUSTED at the limit.
    pub fn register(self: &Arc<Self>) -> Result<Waiter, Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut map = self.lock();
        if map.len() >= self.max_pending {
            return Err(Error::FeedbackLimit(Limit::new(
                "feedback_max_pending",
                self.max_pending,
            )));
        }
        let id = loop {
            let id = request_id();
            if !map.contains_key(&id) {
                break id;
            }
        };
        map.insert(id.clone(), tx);
        metrics::global().feedback_pending.inc();
        Ok(Waiter {
            id,
            rx,
            pending: Arc::clone(self),
            held: 0,
        })
    }

    /// Hands an answer to its request; false when no request has that id.
    fn deliver(&self, arrival: Arrival) -> bool {
        let map = self.lock();
        match map.get(&arrival.envelope.request_id) {
            Some(tx) => tx.send(arrival).is_ok(),
            None => false,
        }
    }
}

/// A fresh request id: 128 random bits in hex (32 characters), a shape no
/// server's own ids have.
fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS's randomness is unavailable: fall back to a seeded hash
        // (still unique per process thanks to the counter).
        use std::hash::{BuildHasher, RandomState};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
        bytes[..8].copy_from_slice(&n.to_le_bytes());
    }
    hex::encode(bytes)
}

/// A registered request: its id, its answers, and its entry in the table
/// (removed on drop).
#[derive(Debug)]
pub struct Waiter {
    id: String,
    rx: mpsc::UnboundedReceiver<Arrival>,
    pending: Arc<Pending>,
    held: usize,
}

impl Waiter {
    /// The request id to publish.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next answer, or `None` if the table dropped the entry.
    pub async fn next(&mut self) -> Option<Arrival> {
        self.rx.recv().await
    }

    /// Accounts for `bytes` more answer bytes held by this request;
    /// RESOURCE_EXHAUSTED when the gateway-wide budget is spent.
    pub fn hold(&mut self, bytes: usize) -> Result<(), Error> {
        let before = self.pending.buffered.fetch_add(bytes, Ordering::Relaxed);
        self.held += bytes;
        if before + bytes > self.pending.max_buffered {
            return Err(Error::FeedbackLimit(Limit::new(
                "feedback_max_reply_bytes",
                self.pending.max_buffered,
            )));
        }
        Ok(())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.pending.lock().remove(&self.id).is_some() {
            metrics::global().feedback_pending.dec();
        }
        self.pending.buffered.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// How the subscriber reaches Redis.
enum Connector {
    Standalone(redis::Client),
    Cluster(Vec<String>),
}

/// The live subscriber connection.
enum SubConn {
    /// With the flag its dispatcher clears when the connection drops.
    Standalone(MultiplexedConnection, Arc<AtomicBool>),
    Cluster(ClusterConnection),
}

impl SubConn {
    fn alive(&self) -> bool {
        match self {
            SubConn::Standalone(_, alive) => alive.load(Ordering::Acquire),
            SubConn::Cluster(_) => true,
        }
    }
}

/// One target's subscriber.
pub struct Hub {
    target: String,
    wire: Arc<Wire>,
    connector: Connector,
    timeout: Duration,
    pending: Arc<Pending>,
    /// The connection and the channels Redis confirmed; held while
    /// connecting or subscribing, so concurrent requests wait for one.
    state: tokio::sync::Mutex<(Option<SubConn>, HashSet<Channel>)>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub for a target; nothing is connected until first use.
    pub fn new(cfg: &TargetConfig, timeout: Duration, pending: Arc<Pending>) -> Result<Self, String> {
        let connector = if cfg.cluster {
            Connector::Cluster(
                std::iter::once(cfg.redis_url.clone())
                    .chain(cfg.cluster_seeds.iter().cloned())
                    .collect(),
            )
        } else {
            let info = cfg
                .redis_url
                .as_str()
                .into_connection_info()
                .map_err(|e| e.to_string())?;
            let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
            Connector::Standalone(redis::Client::open(info.set_redis_settings(settings)).map_err(|e| e.to_string())?)
        };
        Ok(Self {
            target: cfg.name.clone(),
            wire: Arc::new(Wire::new(cfg)),
            connector,
            timeout,
            pending,
            state: tokio::sync::Mutex::new((None, HashSet::new())),
        })
    }

    /// Registers a request in the gateway-wide table of waiting requests.
    pub fn register(&self) -> Result<Waiter, Error> {
        self.pending.register()
    }

    /// The target's request/response wire.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            target: self.target.clone(),
            reason: format!("answer subscriber: {reason}"),
        }
    }

    /// Makes sure `channels` are subscribed (connecting first if needed),
    /// bounded by the Redis timeout.
    pub async fn ensure(&self, channels: &[Channel]) -> Result<(), Error> {
        let work = async {
            let mut state = self.state.lock().await;
            if state.0.as_ref().is_some_and(|c| !c.alive()) {
                *state = (None, HashSet::new());
            }
            if channels.iter().all(|c| state.1.contains(c)) {
                return Ok(());
            }
            if state.0.is_none() {
                state.0 = Some(self.connect().await?);
            }
            for ch in channels {
                if state.1.contains(ch) {
                    continue;
                }
                let result = match state.0.as_mut() {
                    Some(SubConn::Standalone(m, _)) => {
                        let verb = if ch.sharded { "SSUBSCRIBE" } else { "SUBSCRIBE" };
                        redis::cmd(verb).arg(&ch.name).exec_async(m).await
                    }
                    Some(SubConn::Cluster(c)) if ch.sharded => c.ssubscribe(&ch.name).await,
                    Some(SubConn::Cluster(c)) => c.subscribe(&ch.name).await,
                    None => Ok(()),
                };
                match result {
                    Ok(()) => {
                        state.1.insert(ch.clone());
                    }
                    Err(e) => {
                        // Start over with a fresh connection next time.
                        *state = (None, HashSet::new());
                        return Err(self.unavailable(e));
                    }
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.timeout, work).await.unwrap_or_else(|_| {
            Err(Error::RedisTimeout {
                target: self.target.clone(),
                timeout: self.timeout,
            })
        })
    }

    /// Whether the hub holds a subscription to `channel` (python-socketio's
    /// server count leaves it out).
    pub async fn subscribed(&self, channel: &Channel) -> bool {
        let state = self.state.lock().await;
        state.0.as_ref().is_some_and(SubConn::alive) && state.1.contains(channel)
    }

    async fn connect(&self) -> Result<SubConn, Error> {
        let (tx, rx) = mpsc::unbounded_channel::<PushInfo>();
        let alive = Arc::new(AtomicBool::new(true));
        let conn = match &self.connector {
            Connector::Standalone(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_push_sender(tx)
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                SubConn::Standalone(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map_err(|e| self.unavailable(e))?,
                    Arc::clone(&alive),
                )
            }
            Connector::Cluster(seeds) => {
                let client = ClusterClientBuilder::new(seeds.clone())
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .connection_timeout(self.timeout)
                    .response_timeout(self.timeout)
                    .build()
                    .map_err(|e| self.unavailable(e))?;
                SubConn::Cluster(client.get_async_connection().await.map_err(|e| self.unavailable(e))?)
            }
        };
        tokio::spawn(dispatch(
            rx,
            alive,
            Arc::clone(&self.wire),
            Arc::clone(&self.pending),
            self.target.clone(),
        ));
        Ok(conn)
    }
}

/// Hands every received message to its request, until the connection is
/// gone for good.
async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<PushInfo>,
    alive: Arc<AtomicBool>,
    wire: Arc<Wire>,
    pending: Arc<Pending>,
    target: String,
) {
    let drop_one = |reason: &'static str| {
        metrics::global()
            .feedback_dropped
            .get_or_create(&metrics::AnswerLabels {
                target: target.clone(),
                reason,
            })
            .inc();
    };
    while let Some(push) = rx.recv().await {
        if push.kind == PushKind::Disconnection {
            alive.store(false, Ordering::Release);
            continue;
        }
        if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
            continue;
        }
        let Some(Value::BulkString(payload)) = push.data.into_iter().nth(1) else {
            continue;
        };
        let at = Instant::now();
        match wire.decode(&payload) {
            Some(envelope) => {
                let arrival = Arrival {
                    envelope,
                    bytes: payload.len(),
                    at,
                };
                if !pending.deliver(arrival) {
                    drop_one("unknown_request");
                }
            }
            // python-socketio's channel carries every manager's traffic;
            // only the other stacks' response channels hold answers alone.
            None if wire.counts_servers() => drop_one("undecodable"),
            None => {}
        }
    }
}
