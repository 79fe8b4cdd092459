//! The topology of a Redis Cluster target, as the gateway itself watches it:
//! who owns the publish slot, whether every slot has a live master, and the
//! one connection all of the target's PUBLISHes go through.
//!
//! Classic PUBLISH is accepted by every node of a Redis Cluster and forwarded
//! to all the others over the cluster bus. A target sends all of them
//! through one node, the master of [`PUBLISH_SLOT`], so that a subscriber
//! anywhere receives them in the order they were sent. The redis-rs cluster
//! client cannot keep that promise across a failover: when the pinned master
//! is gone it falls back to a replica or a random node, and as nothing
//! fails its slot map is never refreshed, so PUBLISHes keep landing on
//! whatever node answers and overtake each other on the bus. The gateway
//! therefore holds the publish connection itself:
//!
//! - the owner of [`PUBLISH_SLOT`] is read with `CLUSTER SLOTS` from any
//!   node that answers (the last known nodes first, then the seeds);
//! - while it does not answer, PUBLISHes fail with UNAVAILABLE instead of
//!   going elsewhere: a short window of errors the caller can retry, never
//!   events out of order;
//! - the owner is checked again on every health check and after any failed
//!   PUBLISH; when it changes, the switch waits until every PUBLISH in flight
//!   on the old node has been answered, then sends the next ones to the new
//!   owner;
//! - health is SERVING only while every slot has a master and every master
//!   answers PING.
//!
//! Keyed commands (SPUBLISH, XADD, idempotency keys) stay with the redis-rs
//! cluster client, which routes them by slot and follows MOVED / ASK.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{ConnectionAddr, ConnectionInfo, RedisResult, Value, aio::MultiplexedConnection};
use tokio::sync::RwLock;

/// The slot whose master receives every PUBLISH of a cluster target.
pub const PUBLISH_SLOT: u16 = 0;

/// Slots in a Redis Cluster (0..=16383).
const SLOTS: u32 = 16_384;

/// After a node's connection error has been logged, the same node's next
/// errors are logged at most this often (with how many were left out), so
/// that a dead node does not fill the log while the cluster fails over.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// A node's address as `CLUSTER SLOTS` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// Host name or IP address.
    pub host: String,
    /// Client port.
    pub port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One range of slots and the master serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotRange {
    start: u16,
    end: u16,
    master: NodeAddr,
    replicas: Vec<NodeAddr>,
}

/// Why the topology cannot serve a call right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyError {
    /// No node answered `CLUSTER SLOTS`.
    NoNodeAnswers(String),
    /// Some slots have no master (the cluster is failing over or broken).
    Uncovered {
        /// How many of the 16384 slots have a master.
        covered: u32,
    },
    /// A node did not answer (connect, PING or the command itself).
    Node {
        /// The node.
        addr: NodeAddr,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodeAnswers(reason) => write!(f, "no cluster node answers CLUSTER SLOTS: {reason}"),
            Self::Uncovered { covered } => {
                write!(
                    f,
                    "only {covered} of {SLOTS} slots have a master (the cluster is failing over)"
                )
            }
            Self::Node { addr, reason } => write!(f, "cluster node {addr}: {reason}"),
        }
    }
}

/// The node the target's PUBLISHes go through, and a connection to it.
#[derive(Clone)]
struct Pinned {
    addr: NodeAddr,
    conn: MultiplexedConnection,
    /// Set when a PUBLISH on `conn` failed: the next one looks up the
    /// owner again and reconnects.
    broken: Arc<AtomicBool>,
}

impl Pinned {
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

/// What the gateway knows of one Redis Cluster target's nodes.
pub struct Topology {
    /// The seed URLs' connection settings; every node is reached with the
    /// first seed's credentials and TLS settings.
    seeds: Vec<ConnectionInfo>,
    config: redis::AsyncConnectionConfig,
    timeout: Duration,
    /// Nodes seen in the last `CLUSTER SLOTS` (masters first).
    known: Mutex<Vec<NodeAddr>>,
    /// The master set of the last slot map, to notice a topology change.
    masters: Mutex<Vec<NodeAddr>>,
    /// One direct connection per node, made when first needed.
    conns: Mutex<HashMap<NodeAddr, MultiplexedConnection>>,
    /// The publish node; PUBLISHes hold a read guard while in flight, a
    /// switch takes the write guard (so it waits for them).
    publish: RwLock<Option<Pinned>>,
    errors: Mutex<HashMap<NodeAddr, LoggedError>>,
    target: String,
}

/// The last time a node's connection error was logged.
struct LoggedError {
    at: Instant,
    suppressed: u64,
}

impl Topology {
    /// A topology for `seeds` (Redis URLs; at least one); nothing connects
    /// until first use.
    pub fn new(target: &str, seeds: &[&str], timeout: Duration) -> RedisResult<Self> {
        let seeds = seeds
            .iter()
            .map(|s| {
                redis::IntoConnectionInfo::into_connection_info(*s)
                    .map(|info| info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
            })
            .collect::<RedisResult<Vec<_>>>()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(Self {
            seeds,
            config,
            timeout,
            known: Mutex::new(Vec::new()),
            masters: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            publish: RwLock::new(None),
            errors: Mutex::new(HashMap::new()),
            target: target.to_owned(),
        })
    }

    /// Sends `pipe` (PUBLISHes only) to the publish node and returns its
    /// replies. Fails, without trying another node, when the publish node
    /// does not answer; the next call looks up the owner again.
    pub async fn publish(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>, TopologyError> {
        let mut guard = self.publish.read().await;
        if guard.as_ref().is_none_or(Pinned::is_broken) {
            drop(guard);
            self.repin().await?;
            guard = self.publish.read().await;
        }
        let Some(pinned) = guard.clone() else {
            return Err(TopologyError::NoNodeAnswers("the publish node was lost".into()));
        };
        // The read guard is held while the PUBLISHes are in flight: a switch
        // to another node waits for their answers.
        let mut conn = pinned.conn.clone();
        let result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        drop(guard);
        result.map_err(|e| {
            pinned.broken.store(true, Ordering::SeqCst);
            self.forget(&pinned.addr);
            self.node_error(&pinned.addr, &e)
        })
    }

    /// Looks up the owner of [`PUBLISH_SLOT`] and pins it (waiting for the
    /// PUBLISHes in flight on a previous node).
    async fn repin(&self) -> Result<(), TopologyError> {
        let map = self.slot_map().await?;
        let owner = owner_of(&map, PUBLISH_SLOT).ok_or(TopologyError::Uncovered { covered: covered(&map) })?;
        self.pin(owner).await
    }

    async fn pin(&self, owner: NodeAddr) -> Result<(), TopologyError> {
        let current = |slot: &Option<Pinned>| slot.as_ref().is_some_and(|p| p.addr == owner && !p.is_broken());
        if current(&*self.publish.read().await) {
            return Ok(());
        }
        let conn = self.connection(&owner).await?;
        let mut slot = self.publish.write().await;
        if !current(&slot) {
            let previous = slot.as_ref().map(|p| p.addr.clone()).filter(|p| *p != owner);
            match &previous {
                Some(prev) => tracing::warn!(
                    target_name = %self.target, from = %prev, to = %owner,
                    "publish node changed: PUBLISHes now go through the new owner of slot {PUBLISH_SLOT}"
                ),
                None => tracing::info!(target_name = %self.target, node = %owner, "publish node"),
            }
            *slot = Some(Pinned {
                addr: owner,
                conn,
                broken: Arc::new(AtomicBool::new(false)),
            });
        }
        Ok(())
    }

    /// The health check: every slot has a master and every master answers
    /// PING. Also follows a change of the publish slot's owner, so a switch
    /// that no error revealed (a manual failover, a resharding) happens
    /// within one health interval. Returns whether the set of masters
    /// changed since the last check (the caller refreshes the redis-rs
    /// client then).
    pub async fn check(&self) -> Result<bool, TopologyError> {
        let map = self.slot_map().await?;
        let n = covered(&map);
        if n < SLOTS {
            return Err(TopologyError::Uncovered { covered: n });
        }
        let mut masters: Vec<NodeAddr> = map.iter().map(|r| r.master.clone()).collect();
        masters.sort();
        masters.dedup();
        for m in &masters {
            self.ping(m).await?;
        }
        let changed = {
            let mut last = self.masters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = !last.is_empty() && *last != masters;
            *last = masters;
            changed
        };
        if let Some(owner) = owner_of(&map, PUBLISH_SLOT) {
            self.pin(owner).await?;
        }
        Ok(changed)
    }

    async fn ping(&self, addr: &NodeAddr) -> Result<(), TopologyError> {
        let mut conn = self.connection(addr).await?;
        match tokio::time::timeout(self.timeout, redis::cmd("PING").query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.forget(addr);
                Err(self.node_error(addr, &e))
            }
            Err(_) => {
                self.forget(addr);
                Err(self.node_error(addr, &format!("no answer within {:?}", self.timeout)))
            }
        }
    }

    /// Reads the slot map from the first node that answers: the nodes of
    /// the last map first, then the seeds.
    async fn slot_map(&self) -> Result<Vec<SlotRange>, TopologyError> {
        let mut candidates = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for seed in &self.seeds {
            if let Some(addr) = node_addr(seed)
                && !candidates.contains(&addr)
            {
                candidates.push(addr);
            }
        }
        let mut last = String::from("no seed");
        for addr in candidates {
            let mut conn = match self.connection(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let reply = tokio::time::timeout(
                self.timeout,
                redis::cmd("CLUSTER").arg("SLOTS").query_async::<Value>(&mut conn),
            )
            .await;
            let value = match reply {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    self.forget(&addr);
                    last = self.node_error(&addr, &e).to_string();
                    continue;
                }
                Err(_) => {
                    self.forget(&addr);
                    last = format!("{addr}: no answer within {:?}", self.timeout);
                    continue;
                }
            };
            let Some(map) = parse_slots(value, &addr.host) else {
                last = format!("{addr}: unreadable CLUSTER SLOTS reply");
                continue;
            };
            // A node that lost its cluster state (just restarted) answers
            // with no slots; ask another.
            if map.is_empty() {
                last = format!("{addr}: serves no slots");
                continue;
            }
            let mut nodes: Vec<NodeAddr> = map.iter().map(|r| r.master.clone()).collect();
            nodes.extend(map.iter().flat_map(|r| r.replicas.iter().cloned()));
            let mut seen = std::collections::HashSet::new();
            nodes.retain(|n| seen.insert(n.clone()));
            *self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = nodes;
            return Ok(map);
        }
        Err(TopologyError::NoNodeAnswers(last))
    }

    /// A direct connection to `addr`, made on first use.
    async fn connection(&self, addr: &NodeAddr) -> Result<MultiplexedConnection, TopologyError> {
        if let Some(c) = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(addr)
        {
            return Ok(c.clone());
        }
        let info = self.info_for(addr);
        let client = redis::Client::open(info).map_err(|e| self.node_error(addr, &e))?;
        let conn = tokio::time::timeout(
            self.timeout,
            client.get_multiplexed_async_connection_with_config(&self.config),
        )
        .await
        .map_err(|_| self.node_error(addr, &format!("no connection within {:?}", self.timeout)))?
        .map_err(|e| self.node_error(addr, &e))?;
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
        let mut conns = self.conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(conns.entry(addr.clone()).or_insert(conn).clone())
    }

    fn forget(&self, addr: &NodeAddr) {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(addr);
    }

    /// The first seed's settings with another node's address.
    fn info_for(&self, addr: &NodeAddr) -> ConnectionInfo {
        let base = self.seeds[0].clone();
        let new_addr = match base.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure, tls_params, ..
            } => ConnectionAddr::TcpTls {
                host: addr.host.clone(),
                port: addr.port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        };
        base.set_addr(new_addr)
    }

    /// A node error, logged once per node and then at most every
    /// [`ERROR_LOG_INTERVAL`].
    fn node_error(&self, addr: &NodeAddr, e: &dyn fmt::Display) -> TopologyError {
        let reason = e.to_string();
        let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match errors.get_mut(addr) {
            Some(logged) if now.duration_since(logged.at) < ERROR_LOG_INTERVAL => logged.suppressed += 1,
            Some(logged) => {
                tracing::warn!(target_name = %self.target, node = %addr, error = %reason,
                    repeated = logged.suppressed, "Redis Cluster node does not answer");
                logged.at = now;
                logged.suppressed = 0;
            }
            None => {
                tracing::warn!(target_name = %self.target, node = %addr, error = %reason,
                    "Redis Cluster node does not answer");
                errors.insert(addr.clone(), LoggedError { at: now, suppressed: 0 });
            }
        }
        TopologyError::Node {
            addr: addr.clone(),
            reason,
        }
    }
}

fn node_addr(info: &ConnectionInfo) -> Option<NodeAddr> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => Some(NodeAddr {
            host: host.clone(),
            port: *port,
        }),
        _ => None,
    }
}

fn owner_of(map: &[SlotRange], slot: u16) -> Option<NodeAddr> {
    map.iter()
        .find(|r| (r.start..=r.end).contains(&slot))
        .map(|r| r.master.clone())
}

/// How many slots the map covers (ranges do not overlap).
fn covered(map: &[SlotRange]) -> u32 {
    map.iter().map(|r| u32::from(r.end) - u32::from(r.start) + 1).sum()
}

/// Parses a `CLUSTER SLOTS` reply; a node's empty or unknown (`?`) host
/// means the host of the node that answered.
fn parse_slots(value: Value, answered_by: &str) -> Option<Vec<SlotRange>> {
    let Value::Array(ranges) = value else { return None };
    let node = |v: &Value| -> Option<NodeAddr> {
        let Value::Array(fields) = v else { return None };
        let host = match fields.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = match fields.get(1)? {
            Value::Int(p) => u16::try_from(*p).ok()?,
            _ => return None,
        };
        let host = if host.is_empty() || host == "?" {
            answered_by.to_owned()
        } else {
            host
        };
        Some(NodeAddr { host, port })
    };
    let int = |v: &Value| match v {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    };
    ranges
        .iter()
        .map(|r| {
            let Value::Array(items) = r else { return None };
            Some(SlotRange {
                start: int(items.first()?)?,
                end: int(items.get(1)?)?,
                master: node(items.get(2)?)?,
                replicas: items.iter().skip(3).filter_map(node).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn slot_maps_are_read_with_the_answering_host_for_unknown_ones() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("?", 7001)]),
        ]);
        let map = parse_slots(reply, "10.0.0.9").unwrap_or_default();
        assert_eq!(map.len(), 2);
        assert_eq!(
            owner_of(&map, 0),
            Some(NodeAddr {
                host: "10.0.0.1".into(),
                port: 7000
            })
        );
        assert_eq!(map[0].replicas[0].host, "10.0.0.9");
        assert_eq!(
            owner_of(&map, 16383).map(|n| n.to_string()).as_deref(),
            Some("10.0.0.9:7001")
        );
        assert_eq!(covered(&map), SLOTS);
    }

    #[test]
    fn a_map_with_a_hole_is_not_covered() {
        let reply = Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(100), node("h", 1)])]);
        let map = parse_slots(reply, "h").unwrap_or_default();
        assert_eq!(covered(&map), 100);
        assert_eq!(owner_of(&map, PUBLISH_SLOT), None);
        assert!(parse_slots(Value::Int(1), "h").is_none());
    }
}
