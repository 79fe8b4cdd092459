//! Targets: one Socket.IO cluster each, with its Redis pool and channel
//! names. The only module that talks to Redis.

use std::time::Duration;

use deadpool_redis::{Connection, Pool, PoolConfig, Runtime, Timeouts};

use crate::{
    codec::socketio::Channels,
    config::{Config, Dialect, TargetConfig},
    error::Error,
};

/// One configured Socket.IO cluster.
pub struct Target {
    /// The target's name.
    pub name: String,
    /// The wire format its servers read.
    pub dialect: Dialect,
    /// Its channel names.
    pub channels: Channels,
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
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
            dialect: cfg.dialect,
            channels: Channels::new(&cfg.key),
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

    /// PUBLISHes one message; returns how many subscriptions received it.
    pub async fn publish(&self, channel: &[u8], payload: &[u8]) -> Result<u64, Error> {
        self.with_conn(async |conn| redis::cmd("PUBLISH").arg(channel).arg(payload).query_async(conn).await)
            .await
    }

    /// PUBLISHes messages in one pipeline, in order; returns each message's
    /// receiver count.
    pub async fn publish_all(&self, messages: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<u64>, Error> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(messages.len());
        for (channel, payload) in messages {
            pipe.cmd("PUBLISH").arg(channel).arg(payload);
        }
        self.with_conn(async |conn| pipe.query_async(conn).await).await
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), Error> {
        self.with_conn(async |conn| redis::cmd("PING").query_async::<()>(conn).await)
            .await
    }
}
