//! Targets: one Socket.IO cluster each, with its Redis pool and channel
//! names. The only module that talks to Redis.

use std::time::Duration;

use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};

use crate::{
    codec::{Dialect, Message},
    config::{Config, TargetConfig},
    error::Error,
};

/// One configured Socket.IO cluster.
pub struct Target {
    /// The target's name.
    pub name: String,
    /// The wire format its servers read.
    pub dialect: Box<dyn Dialect>,
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("dialect", &self.dialect.name())
            .finish_non_exhaustive()
    }
}

/// Redis's answer to one [`Message`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reply {
    /// How many subscriptions received it (PUBLISH / SPUBLISH).
    pub receivers: u64,
}

impl Target {
    /// Builds the target's pool; no connection is made until first use, so
    /// the gateway starts while Redis is down and recovers when it returns.
    pub fn new(cfg: &TargetConfig, config: &Config) -> Result<Self, String> {
        let mut redis = deadpool_redis::Config::from_url(cfg.redis_url.clone());
        let t = Some(config.redis_timeout);
        redis.pool = Some(PoolConfig {
            max_size: config.redis_pool_size,
            timeouts: Timeouts {
                wait: t,
                create: t,
                recycle: t,
            },
            ..PoolConfig::default()
        });
        let pool = redis.create_pool(Some(Runtime::Tokio1)).map_err(|e| e.to_string())?;
        Ok(Self {
            name: cfg.name.clone(),
            dialect: cfg.dialect.codec(cfg),
            pool,
            timeout: config.redis_timeout,
        })
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> Error {
        Error::Unavailable {
            target: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Runs `f` on a pooled connection, bounded by the Redis timeout. A
    /// connection that failed a command is dropped from the pool so the next
    /// call reconnects.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    {
        let work = async {
            let mut conn = self.pool.get().await.map_err(|e| self.unavailable(e))?;
            match f(&mut conn).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    drop(Connection::take(conn));
                    Err(self.unavailable(e))
                }
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::RedisTimeout {
                target: self.name.clone(),
                timeout: self.timeout,
            })?
    }

    /// Sends one message.
    pub async fn send(&self, message: &Message) -> Result<Reply, Error> {
        let cmd = command(message);
        let receivers = self.with_conn(async |conn| cmd.query_async(conn).await).await?;
        Ok(Reply { receivers })
    }

    /// Sends messages in one pipeline, in order; returns each one's reply.
    pub async fn send_all(&self, messages: &[&Message]) -> Result<Vec<Reply>, Error> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(messages.len());
        for m in messages {
            pipe.add_command(command(m));
        }
        let counts: Vec<u64> = self.with_conn(async |conn| pipe.query_async(conn).await).await?;
        Ok(counts.into_iter().map(|receivers| Reply { receivers }).collect())
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.with_conn(async |conn| redis::cmd("PING").query_async::<()>(conn).await)
            .await
    }
}

/// The Redis command for a message (raw bytes, never re-encoded).
fn command(message: &Message) -> redis::Cmd {
    match message {
        Message::Publish { channel, payload } => {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(payload);
            cmd
        }
    }
}
