//! Idempotency keys: publish an operation at most once per key and window.
//!
//! Before publishing, the gateway records the key in the target's Redis with
//! `SET NX PX <window>` (a Lua script also returns the current value, in one
//! round trip). A repeat within the window publishes nothing and returns the
//! first call's result, stored under the key once the first call published.
//! If publishing fails after the key was recorded, the key is deleted so a
//! retry can publish. Keys are scoped per API key and target, so two tenants
//! never collide.

use std::time::Duration;

use crate::{error::Error, target::Reply, target::Target};

/// Prefix of the Redis keys that hold idempotency records.
pub const KEY_PREFIX: &str = "emitgate:idem";

/// The value of a key whose first call is still publishing.
const PENDING: &str = "p";

/// `SET key PENDING NX PX window`; returns nil when the key was recorded
/// now, or the key's current value when it already existed.
const RESERVE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end \
                       return redis.call('GET', KEYS[1])";

/// What a reservation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is new: publish, then [`complete`] or [`release`].
    Fresh(String),
    /// The key was used before: this is the first call's result.
    Duplicate(Reply),
}

/// The Redis key for an idempotency key of `api_key` on `target`.
pub fn redis_key(api_key: &str, target: &str, key: &str) -> String {
    // Lengths first, so that ids containing ':' cannot make two different
    // triples produce the same Redis key.
    format!(
        "{KEY_PREFIX}:{}:{api_key}:{}:{target}:{key}",
        api_key.len(),
        target.len()
    )
}

/// Records `key` unless it exists. `key` is the caller's idempotency key,
/// used in errors (the Redis key names the API key and stays internal).
pub async fn reserve(target: &Target, key: &str, redis_key: String, window: Duration) -> Result<Reservation, Error> {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RESERVE).arg(1).arg(&redis_key).arg(PENDING).arg(window_ms);
    let existing: Option<String> = target.query(&cmd).await?;
    match existing {
        None => Ok(Reservation::Fresh(redis_key)),
        Some(v) if v == PENDING => Err(Error::IdempotencyInProgress(key.to_owned())),
        Some(v) => Ok(Reservation::Duplicate(decode(&v))),
    }
}

/// Stores the first call's result under the key, keeping its expiry.
pub async fn complete(target: &Target, redis_key: &str, reply: &Reply) -> Result<(), Error> {
    let mut cmd = redis::cmd("SET");
    cmd.arg(redis_key).arg(encode(reply)).arg("XX").arg("KEEPTTL");
    target.query::<()>(&cmd).await
}

/// Forgets the key after a failed publish, so that a retry publishes.
pub async fn release(target: &Target, redis_key: &str) {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(redis_key);
    if let Err(e) = target.query::<()>(&cmd).await {
        tracing::warn!(error = %e, "could not release an idempotency key; it expires with its window");
    }
}

/// `r:<receivers>`, then `:<stream id>` when the operation added a stream
/// entry (entry ids hold no `:`).
fn encode(reply: &Reply) -> String {
    match &reply.stream_id {
        Some(id) => format!("r:{}:{id}", reply.receivers),
        None => format!("r:{}", reply.receivers),
    }
}

fn decode(value: &str) -> Reply {
    let rest = value.strip_prefix("r:").unwrap_or_default();
    let (receivers, stream_id) = match rest.split_once(':') {
        Some((n, id)) => (n, Some(id.to_owned())),
        None => (rest, None),
    };
    Reply {
        receivers: receivers.parse().unwrap_or_default(),
        stream_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_collide_across_tenants() {
        assert_ne!(redis_key("a:b", "t", "k"), redis_key("a", "b:t", "k"));
        assert_eq!(
            redis_key("billing", "default", "k1"),
            "emitgate:idem:7:billing:7:default:k1"
        );
    }

    #[test]
    fn results_round_trip() {
        let r = Reply {
            receivers: 3,
            stream_id: None,
        };
        assert_eq!(decode(&encode(&r)), r);
        let r = Reply {
            receivers: 0,
            stream_id: Some("1700000000000-5".into()),
        };
        assert_eq!(decode(&encode(&r)), r);
    }
}
