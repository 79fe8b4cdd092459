//! Targets: one Socket.IO cluster each, with its Redis connections and
//! dialect. The only module that talks to Redis.
//!
//! A target's Redis is either one server (a pool of connections) or a Redis
//! Cluster (`cluster = true`): one multiplexed cluster connection that
//! learns the shards from the seed nodes, sends each SPUBLISH / XADD to the
//! master that owns its channel's or stream's slot and follows MOVED / ASK
//! redirections. A batch is split into one pipeline per slot, run
//! concurrently; order is kept among the messages of one channel or stream.
//!
//! PUBLISH is different: every node accepts it and forwards it to all the
//! others over the cluster bus. The gateway sends all of a target's
//! PUBLISHes to one node (the master of slot 0), so that a subscriber gets
//! them in the order they were sent, whatever their channels (routed by
//! channel, messages of different channels would cross the bus on
//! different links and could overtake each other). Its reply counts only
//! the subscribers connected to that node. [`crate::cluster`] holds that
//! connection and follows the owner across failovers.
//!
//! A standalone target may also be Sentinel-managed (`sentinel_master`):
//! its connections then go to the master that [`crate::sentinel`] finds.
//!
//! A python-socketio target may instead reach its servers through an AMQP
//! broker (`amqp_url`): [`crate::amqp`] publishes its messages there, and
//! what needs Redis itself (idempotency records, request/response RPCs) is
//! refused as unsupported.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};
use redis::{
    RedisResult, Value,
    aio::MultiplexedConnection,
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    cluster_routing::Slot,
};

use crate::{
    cluster::Topology,
    codec::{Command, Dialect, Message},
    config::{Config, TargetConfig},
    error::Error,
    idempotency,
};

/// How often the cluster client retries a command after a redirection, a
/// resharding (`TRYAGAIN`) or a lost node connection, refreshing the slot map
/// in between; the whole call stays bounded by the Redis timeout.
const CLUSTER_RETRIES: u32 = 4;

/// One configured Socket.IO cluster.
pub struct Target {
    /// The target's name.
    pub name: String,
    /// The wire format its servers read.
    pub dialect: Box<dyn Dialect>,
    /// Its metrics.
    pub metrics: crate::metrics::TargetMetrics,
    backend: Backend,
    timeout: Duration,
}

/// How a target reaches its Redis.
enum Backend {
    /// One Redis server (or a proxy in front of several).
    Standalone(Box<StandaloneBackend>),
    /// A Redis Cluster.
    Cluster(Box<ClusterBackend>),
    /// An AMQP broker (python-socketio's KombuManager / AsyncAioPikaManager).
    Amqp(Box<crate::amqp::AmqpBackend>),
}

/// A Redis Cluster client and its shared, lazily made connection.
struct ClusterBackend {
    /// The publish node and the cluster's health, watched by the gateway.
    topology: Topology,
    /// Keyed commands, routed by slot.
    client: ClusterClient,
    /// The multiplexed connection every call clones; dropped after a failure
    /// so that the next call rediscovers the cluster from the seeds.
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

impl ClusterBackend {
    async fn connection(&self) -> RedisResult<ClusterConnection> {
        // Held while connecting, so that concurrent calls wait for one
        // connection instead of each opening their own.
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.client.get_async_connection().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the connection (unless another call is reconnecting already).
    fn reset(&self) {
        if let Ok(mut slot) = self.conn.try_lock() {
            *slot = None;
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("dialect", &self.dialect.name())
            .field("cluster", &matches!(self.backend, Backend::Cluster(_)))
            .finish_non_exhaustive()
    }
}

/// Redis's answer to one [`Message`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// How many subscriptions received it (PUBLISH / SPUBLISH; in a Redis
    /// Cluster, those on the node that executed the command).
    pub receivers: u64,
    /// The id of the stream entry an XADD added.
    pub stream_id: Option<String>,
}

impl Reply {
    /// Reads one command's reply: an integer (receivers) or an entry id.
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Int(n) => Ok(Reply {
                receivers: u64::try_from(n).unwrap_or_default(),
                stream_id: None,
            }),
            Value::BulkString(id) => Ok(Reply {
                receivers: 0,
                stream_id: Some(String::from_utf8_lossy(&id).into_owned()),
            }),
            Value::SimpleString(id) => Ok(Reply {
                receivers: 0,
                stream_id: Some(id),
            }),
            Value::ServerError(e) => Err(e.to_string()),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Folds the reply of a further part of the same operation into this one.
    fn add(&mut self, other: Reply) {
        self.receivers += other.receivers;
        if self.stream_id.is_none() {
            self.stream_id = other.stream_id;
        }
    }
}

impl Target {
    /// Builds the target's client; no connection is made until first use,
    /// so the gateway starts while Redis is down and recovers when it
    /// returns.
    pub fn new(cfg: &TargetConfig, config: &Config) -> Result<Self, String> {
        if let (Some(amqp), crate::config::DialectOptions::PythonSocketIo { channel, .. }) = (&cfg.amqp, &cfg.options) {
            let b = crate::amqp::AmqpBackend::new(&cfg.name, amqp, channel, config.redis_timeout)?;
            return Ok(Self::with_backend(cfg, config, Backend::Amqp(Box::new(b))));
        }
        let backend = if cfg.cluster {
            let seeds: Vec<&str> = std::iter::once(cfg.redis_url.as_str())
                .chain(cfg.cluster_seeds.iter().map(String::as_str))
                .collect();
            let client = ClusterClientBuilder::new(seeds.clone())
                .connection_timeout(config.redis_timeout)
                .response_timeout(config.redis_timeout)
                .retries(CLUSTER_RETRIES)
                .build()
                .map_err(|e| e.to_string())?;
            let topology = Topology::new(&cfg.name, &seeds, config.redis_timeout).map_err(|e| e.to_string())?;
            Backend::Cluster(Box::new(ClusterBackend {
                topology,
                client,
                conn: tokio::sync::Mutex::new(None),
            }))
        } else {
            // Connecting is bounded by the same timeout as commands (redis-rs
            // would otherwise give up after its own 1 s default).
            let connection = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.redis_timeout))
                .set_response_timeout(Some(config.redis_timeout));
            // Small commands must leave at once: no Nagle delay on the socket.
            let info = redis::IntoConnectionInfo::into_connection_info(cfg.redis_url.as_str())
                .map_err(|e| e.to_string())?
                .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
            if let Some(sentinel) = &cfg.sentinel {
                let s = crate::sentinel::Sentinel::new(&cfg.name, sentinel, connection)?;
                let backend = StandaloneBackend::new(Connector::Sentinel(Box::new(s)), config.redis_pool_size);
                return Ok(Self::with_backend(cfg, config, Backend::Standalone(Box::new(backend))));
            }
            let manager = deadpool_redis::Manager::new_with_config(info, connection).map_err(|e| e.to_string())?;
            let t = Some(config.redis_timeout);
            let pool = Pool::builder(manager)
                .config(PoolConfig {
                    max_size: config.redis_pool_size,
                    timeouts: Timeouts {
                        wait: t,
                        create: t,
                        recycle: t,
                    },
                    ..PoolConfig::default()
                })
                .runtime(Runtime::Tokio1)
                .build()
                .map_err(|e| e.to_string())?;
            Backend::Standalone(Box::new(StandaloneBackend::new(
                Connector::Pool(pool),
                config.redis_pool_size,
            )))
        };
        Ok(Self::with_backend(cfg, config, backend))
    }

    fn with_backend(cfg: &TargetConfig, config: &Config, backend: Backend) -> Self {
        let dialect = crate::codec::for_target(cfg);
        Self {
            metrics: crate::metrics::TargetMetrics::new(&cfg.name, dialect.name()),
            name: cfg.name.clone(),
            dialect,
            backend,
            timeout: config.redis_timeout,
        }
    }

    /// Whether the target publishes to an AMQP broker instead of Redis.
    pub fn is_amqp(&self) -> bool {
        matches!(self.backend, Backend::Amqp(_))
    }

    /// The error of an operation that needs Redis on an AMQP target.
    pub fn needs_redis(&self, what: &str) -> Error {
        Error::Unsupported {
            target: self.name.clone(),
            dialect: self.dialect.name(),
            what: format!(
                "{what} needs Redis (it keeps state there or reads the servers' answers from it); \
                 this target publishes to an AMQP broker (amqp_url)"
            ),
        }
    }

    /// The Redis timeout that bounds each round trip.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            target: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Bounds a Redis Cluster call by the Redis timeout; after a failure
    /// the cluster connection is rebuilt from the seeds on next use.
    /// (Standalone calls are bounded in [`Self::pooled`].)
    async fn bounded<T>(&self, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let result = tokio::time::timeout(self.timeout, work).await.unwrap_or_else(|_| {
            Err(Error::RedisTimeout {
                target: self.name.clone(),
                timeout: self.timeout,
            })
        });
        if result.is_err()
            && let Backend::Cluster(c) = &self.backend
        {
            c.reset();
        }
        result
    }

    /// Runs `f` on one of a standalone target's shared connections, the
    /// whole call (connecting included) bounded by the Redis timeout.
    async fn pooled<T>(
        &self,
        backend: &StandaloneBackend,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> Result<T, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timed_out = || Error::RedisTimeout {
            target: self.name.clone(),
            timeout: self.timeout,
        };
        let (slot, mut conn) = tokio::time::timeout_at(deadline, backend.connection())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| self.unavailable(e))?;
        match tokio::time::timeout_at(deadline, f(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.code() == Some("READONLY") {
                    // The server is a replica now: no connection stays on it.
                    backend.discard_all();
                } else if e.is_connection_dropped() || e.is_io_error() {
                    // The server went away (a restart): every shared
                    // connection to it is dead, not only this one, and each
                    // would fail one more call before being replaced.
                    backend.discard_all();
                } else {
                    backend.discard(slot);
                }
                Err(self.unavailable(e))
            }
            // A connection that stopped answering is replaced as well.
            Err(_) => {
                backend.discard(slot);
                Err(timed_out())
            }
        }
    }

    /// Runs one command.
    async fn command_value(&self, cmd: &redis::Cmd) -> Result<Value, Error> {
        match &self.backend {
            Backend::Standalone(pool) => self.pooled(pool, async |conn| cmd.query_async(conn).await).await,
            Backend::Cluster(c) => {
                self.bounded(async {
                    let mut conn = c.connection().await.map_err(|e| self.unavailable(e))?;
                    cmd.query_async(&mut conn).await.map_err(|e| self.unavailable(e))
                })
                .await
            }
            Backend::Amqp(_) => Err(self.needs_redis("a Redis command")),
        }
    }

    /// Sends single messages, in order; returns each one's raw reply.
    async fn pipeline_values(&self, parts: &[&Command]) -> Result<Vec<Value>, Error> {
        let commands: Vec<(Route<'_>, redis::Cmd)> = parts
            .iter()
            .map(|part| {
                let route = match part {
                    Command::Publish { .. } => Route::PublishNode,
                    keyed => Route::Key(keyed.channel()),
                };
                (route, command(part))
            })
            .collect();
        self.pipeline(commands).await
    }

    /// Runs commands in one pipeline (on a Redis Cluster, one per
    /// destination, concurrently), bounded by the Redis timeout; returns
    /// each command's reply in order.
    pub(crate) async fn pipeline(&self, commands: Vec<(Route<'_>, redis::Cmd)>) -> Result<Vec<Value>, Error> {
        match &self.backend {
            Backend::Standalone(pool) => {
                let mut pipe = redis::Pipeline::with_capacity(commands.len());
                for (_, cmd) in commands {
                    pipe.add_command(cmd);
                }
                let values: Vec<Value> = self.pooled(pool, async |conn| pipe.query_async(conn).await).await?;
                if values.iter().any(crate::sentinel::is_readonly) {
                    pool.discard_all();
                    return Err(self.unavailable("the Redis server is a read-only replica; reconnecting"));
                }
                Ok(values)
            }
            Backend::Cluster(c) => {
                self.bounded(async { per_route_pipelines(c, commands).await.map_err(|e| self.unavailable(e)) })
                    .await
            }
            Backend::Amqp(_) => Err(self.needs_redis("a Redis command")),
        }
    }

    /// Sends one message (its commands in one
    /// pipeline, their receivers summed).
    pub async fn send(&self, message: &Message) -> Result<Reply, Error> {
        let replies = self.send_all(&[message]).await?;
        Ok(replies.into_iter().next().unwrap_or_default())
    }

    /// Sends messages in one pipeline (one per slot on a Redis Cluster), in
    /// order; returns each one's reply (for a message of several commands, the sum
    /// over its parts).
    pub async fn send_all(&self, messages: &[&Message]) -> Result<Vec<Reply>, Error> {
        let part_counts: Vec<usize> = messages.iter().map(|m| m.commands().len()).collect();
        let parts: Vec<&Command> = messages.iter().flat_map(|m| m.commands()).collect();
        if parts.is_empty() {
            return Ok(vec![Reply::default(); messages.len()]);
        }
        if let Backend::Amqp(b) = &self.backend {
            // A message a queue took counts one receiver: the broker does not
            // say how many queues (servers) it reached.
            let bodies: Vec<&[u8]> = parts.iter().map(|c| c.payload()).collect();
            let mut routed = b.publish_all(&bodies).await?.into_iter();
            return Ok(part_counts
                .into_iter()
                .map(|n| Reply {
                    receivers: routed.by_ref().take(n).filter(|r| *r).count() as u64,
                    stream_id: None,
                })
                .collect());
        }
        let mut values = self.pipeline_values(&parts).await?.into_iter();
        let mut replies = Vec::with_capacity(messages.len());
        for n in part_counts {
            let mut reply = Reply::default();
            for value in values.by_ref().take(n) {
                reply.add(Reply::from_value(value).map_err(|e| self.unavailable(e))?);
            }
            replies.push(reply);
        }
        Ok(replies)
    }

    /// [`send_all`](Self::send_all) where a message may come with its
    /// reserved idempotency record: on one Redis server such a message and
    /// the store of its result run as one script
    /// ([`idempotency::publish_and_record`]), and its flag in the answer is
    /// true; on a Redis Cluster the messages are sent as by `send_all` and
    /// every flag is false (the caller stores the results).
    pub async fn send_all_recorded(
        &self,
        messages: &[(&Message, Option<&str>)],
        window: Duration,
    ) -> Result<Vec<(Reply, bool)>, Error> {
        if matches!(self.backend, Backend::Amqp(_)) && messages.iter().any(|(_, r)| r.is_some()) {
            return Err(self.needs_redis("an idempotency key"));
        }
        if matches!(self.backend, Backend::Cluster(_)) || messages.iter().all(|(_, r)| r.is_none()) {
            let plain: Vec<&Message> = messages.iter().map(|(m, _)| *m).collect();
            return Ok(self.send_all(&plain).await?.into_iter().map(|r| (r, false)).collect());
        }
        let mut commands = Vec::new();
        let mut shapes = Vec::with_capacity(messages.len());
        for (m, record) in messages {
            match record {
                Some(key) => {
                    let parts: Vec<redis::Cmd> = m.commands().iter().map(command).collect();
                    commands.push((Route::PublishNode, idempotency::publish_and_record(&parts, key, window)));
                    shapes.push(None);
                }
                None => {
                    commands.extend(m.commands().iter().map(|c| (Route::PublishNode, command(c))));
                    shapes.push(Some(m.commands().len()));
                }
            }
        }
        let mut values = self.pipeline(commands).await?.into_iter();
        let mut replies = Vec::with_capacity(messages.len());
        for shape in shapes {
            let mut reply = Reply::default();
            match shape {
                None => {
                    let value = values.next().unwrap_or(Value::Nil);
                    reply = idempotency::recorded_reply(value).map_err(|e| self.unavailable(e))?;
                }
                Some(n) => {
                    for value in values.by_ref().take(n) {
                        reply.add(Reply::from_value(value).map_err(|e| self.unavailable(e))?);
                    }
                }
            }
            replies.push((reply, shape.is_none()));
        }
        Ok(replies)
    }

    /// Runs one command on the target's Redis (bounded by the timeout).
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let value = self.command_value(cmd).await?;
        redis::from_redis_value(value).map_err(|e| self.unavailable(e))
    }

    /// Checks that Redis answers (on a Redis Cluster: that every slot has a
    /// master and every master answers; this also follows a change of the
    /// publish node).
    pub async fn ping(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Standalone(b) => {
                b.drop_replicas(self.timeout).await;
                self.query::<()>(&redis::cmd("PING")).await
            }
            Backend::Cluster(c) => {
                let changed = tokio::time::timeout(self.timeout * 2, c.topology.check())
                    .await
                    .map_err(|_| Error::RedisTimeout {
                        target: self.name.clone(),
                        timeout: self.timeout,
                    })?
                    .map_err(|e| self.unavailable(e))?;
                if changed {
                    // The redis-rs client learns the new masters from scratch
                    // instead of retrying the ones that are gone.
                    tracing::info!(target_name = %self.name, "cluster masters changed: refreshing the slot map");
                    c.reset();
                }
                Ok(())
            }
            Backend::Amqp(b) => b.ping().await,
        }
    }
}

/// A standalone target's connections: `slots` multiplexed connections used
/// round-robin and shared by every call (a multiplexed connection pipelines
/// concurrent commands on one socket). The deadpool pool only makes new
/// connections, within the Redis timeout: checking a connection out for
/// each call would cost a health-check round trip (UNWATCH + PING) every
/// time. A connection that fails a command is discarded and replaced on
/// next use, so the target recovers by itself when Redis returns.
struct StandaloneBackend {
    connector: Connector,
    slots: Vec<std::sync::Mutex<Option<MultiplexedConnection>>>,
    next: AtomicUsize,
    /// The Sentinel epoch the connections were made in.
    epoch: AtomicU64,
}

/// How a standalone target makes a connection.
enum Connector {
    /// To `redis_url`, through the deadpool manager.
    Pool(Pool),
    /// To the master that the Sentinels name.
    Sentinel(Box<crate::sentinel::Sentinel>),
}

impl StandaloneBackend {
    fn new(connector: Connector, size: usize) -> Self {
        Self {
            connector,
            slots: (0..size.max(1)).map(|_| std::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    fn slot(&self, i: usize) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.slots[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A shared connection and its slot, connecting the slot if it is empty.
    async fn connection(&self) -> Result<(usize, MultiplexedConnection), String> {
        if let Connector::Sentinel(s) = &self.connector {
            // A failover was announced: every connection may be on the old master.
            let epoch = s.epoch();
            if self.epoch.swap(epoch, Ordering::SeqCst) != epoch {
                self.discard_all();
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(conn) = self.slot(i).as_ref() {
            return Ok((i, conn.clone()));
        }
        let conn = match &self.connector {
            // Taken out of the pool for good: the slot owns it from now on.
            Connector::Pool(pool) => Connection::take(pool.get().await.map_err(|e| e.to_string())?),
            Connector::Sentinel(s) => s.connect().await?,
        };
        let mut slot = self.slot(i);
        let conn = slot.get_or_insert(conn).clone();
        Ok((i, conn))
    }

    /// Drops a slot's connection after a failure.
    fn discard(&self, i: usize) {
        self.slot(i).take();
    }

    /// Drops every connection: the server they reach is no longer the master.
    fn discard_all(&self) {
        for i in 0..self.slots.len() {
            self.discard(i);
        }
    }

    /// On a Sentinel-managed target, drops each connection whose server no
    /// longer says it is the master (`ROLE`); part of the health check.
    async fn drop_replicas(&self, timeout: Duration) {
        if !matches!(self.connector, Connector::Sentinel(_)) {
            return;
        }
        for i in 0..self.slots.len() {
            let Some(mut conn) = self.slot(i).clone() else { continue };
            let master = tokio::time::timeout(timeout, crate::sentinel::is_master(&mut conn)).await;
            if master != Ok(true) {
                tracing::warn!("a Redis connection no longer reaches the master: reconnecting");
                self.discard(i);
            }
        }
    }
}

/// Where a message goes in a Redis Cluster.
/// Where a command goes on a Redis Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// PUBLISH: the publish node ([`crate::cluster::PUBLISH_SLOT`]'s master),
    /// for every channel.
    PublishNode,
    /// A keyed command (SPUBLISH, XADD, idempotency records): the master of
    /// this key's slot.
    Key(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClusterRoute {
    PublishNode,
    Slot(Slot),
}

/// Sends `commands` to a Redis Cluster as one pipeline per destination (see
/// [`Route`]), all concurrently, and returns the replies in order. A
/// pipeline keeps its commands' order.
async fn per_route_pipelines(
    backend: &ClusterBackend,
    commands: Vec<(Route<'_>, redis::Cmd)>,
) -> Result<Vec<Value>, String> {
    let total = commands.len();
    let mut group_of: HashMap<ClusterRoute, usize> = HashMap::new();
    let mut groups: Vec<(ClusterRoute, Vec<usize>, redis::Pipeline)> = Vec::new();
    for (i, (route, cmd)) in commands.into_iter().enumerate() {
        let route = match route {
            Route::PublishNode => ClusterRoute::PublishNode,
            Route::Key(key) => ClusterRoute::Slot(Slot::for_key(key)),
        };
        let g = *group_of.entry(route).or_insert_with(|| {
            groups.push((route, Vec::new(), redis::Pipeline::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
        groups[g].2.add_command(cmd);
    }
    let keyed = groups.iter().any(|(route, ..)| matches!(route, ClusterRoute::Slot(_)));
    let conn = if keyed {
        Some(backend.connection().await.map_err(|e| e.to_string())?)
    } else {
        None
    };
    let sends = groups.iter().map(|(route, _, pipe)| {
        let conn = conn.clone();
        let route = *route;
        async move {
            match (route, conn) {
                (ClusterRoute::PublishNode, _) => backend.topology.publish(pipe).await.map_err(|e| e.to_string()),
                (ClusterRoute::Slot(_), Some(mut conn)) => pipe
                    .query_async::<Vec<Value>>(&mut conn)
                    .await
                    .map_err(|e| e.to_string()),
                (ClusterRoute::Slot(_), None) => Err("no cluster connection".to_owned()),
            }
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut values = vec![Value::Nil; total];
    for ((_, indices, _), result) in groups.iter().zip(results) {
        for (&i, value) in indices.iter().zip(result?) {
            values[i] = value;
        }
    }
    Ok(values)
}

/// The Redis command of a message's command (raw bytes, never re-encoded).
fn command(message: &Command) -> redis::Cmd {
    match message {
        Command::Publish { channel, payload } => {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(payload);
            cmd
        }
        Command::SPublish { channel, payload } => {
            let mut cmd = redis::cmd("SPUBLISH");
            cmd.arg(channel).arg(payload);
            cmd
        }
        Command::XAdd {
            stream,
            maxlen,
            nsp,
            kind,
            data,
        } => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(*maxlen)
                .arg("*")
                .arg("uid")
                .arg(crate::codec::EMITTER_UID)
                .arg("nsp")
                .arg(nsp)
                .arg("type")
                .arg(kind.to_string())
                .arg("data")
                .arg(data);
            cmd
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xadd_has_the_streams_emitters_layout() {
        let m = Command::XAdd {
            stream: b"socket.io".to_vec(),
            maxlen: 10_000,
            nsp: "/".into(),
            kind: 3,
            data: b"{}".to_vec(),
        };
        let args: Vec<Vec<u8>> = command(&m)
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let want: Vec<&[u8]> = vec![
            b"XADD",
            b"socket.io",
            b"MAXLEN",
            b"~",
            b"10000",
            b"*",
            b"uid",
            b"emitter",
            b"nsp",
            b"/",
            b"type",
            b"3",
            b"data",
            b"{}",
        ];
        assert_eq!(args, want);
    }

    #[test]
    fn replies_are_receivers_or_entry_ids() {
        assert_eq!(
            Reply::from_value(Value::Int(2)),
            Ok(Reply {
                receivers: 2,
                stream_id: None
            })
        );
        let mut r = Reply::from_value(Value::BulkString(b"1700000000000-0".to_vec())).unwrap_or_default();
        assert_eq!(r.stream_id.as_deref(), Some("1700000000000-0"));
        r.add(Reply {
            receivers: 1,
            stream_id: Some("later".into()),
        });
        assert_eq!(r.receivers, 1);
        assert_eq!(r.stream_id.as_deref(), Some("1700000000000-0"));
        assert!(Reply::from_value(Value::Nil).is_err());
    }
}
