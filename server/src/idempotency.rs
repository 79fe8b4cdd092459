//! Idempotency keys: publish an operation at most once per key and window.
//!
//! Before publishing, the gateway records the key in the target's Redis as
//! pending with `SET NX PX <claim>` (a Lua script also returns the current
//! value, in one round trip). Once the first call published, its result is
//! stored under the key for the whole window; a repeat within the window
//! publishes nothing and returns that result. If publishing fails, the key
//! is deleted so a retry can publish. The pending claim expires on its own
//! after a few Redis timeouts, so that a gateway which dies mid-call (a
//! replica killed, a node lost) does not block retries of that key for the
//! whole window: they publish once the claim expires. Keys are scoped per API key and target, so two tenants
//! never collide.
//!
//! On one Redis server (standalone or Sentinel-managed) a keyed operation's
//! commands and the store of its result run as one Lua script
//! ([`publish_and_record`]): Redis runs a script whole or not at all, so a
//! gateway that dies after sending it cannot leave an operation published
//! with its key still only claimed, which a retry after the claim expired
//! would publish a second time. On a Redis Cluster the key and the channel
//! live on different nodes, so there the result is stored by a second
//! round trip ([`complete_all`]) and that gap remains (docs/deployment.md).

use std::time::Duration;

use redis::Value;

use crate::{
    error::Error,
    target::{Reply, Route, Target},
};

/// Prefix of the Redis keys that hold idempotency records.
pub const KEY_PREFIX: &str = "emitgate:idem";

/// The value of a key whose first call is still publishing.
const PENDING: &str = "p";

/// How many Redis timeouts a pending claim lasts: a call that reserved its
/// key makes at most the publish round trip and the one that stores its
/// result before the claim is replaced by the result, each bounded by the
/// Redis timeout; one more is margin.
const CLAIM_TIMEOUTS: u32 = 3;

/// `SET key PENDING NX PX claim`; returns nil when the key was recorded
/// now, or the key's current value when it already existed.
const RESERVE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end \
                       return redis.call('GET', KEYS[1])";

/// What a reservation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is new (its Redis key): publish, then [`complete_all`] or
    /// [`release_all`].
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

/// One idempotency key of a call: the caller's key (used in errors) and
/// the Redis key that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The caller's idempotency key.
    pub key: String,
    /// The Redis key ([`redis_key`]).
    pub redis_key: String,
}

/// Records every key that does not exist yet, all in one pipelined round
/// trip (one per slot on a Redis Cluster); returns what each one found, in
/// order. The call fails as a whole only when Redis does not answer.
pub async fn reserve_all(
    target: &Target,
    keys: &[Key],
    window: Duration,
) -> Result<Vec<Result<Reservation, Error>>, Error> {
    let claim_ms = millis((target.timeout() * CLAIM_TIMEOUTS).min(window));
    let commands = keys
        .iter()
        .map(|k| {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RESERVE).arg(1).arg(&k.redis_key).arg(PENDING).arg(claim_ms);
            (Route::Key(k.redis_key.as_bytes()), cmd)
        })
        .collect();
    let values = target.pipeline(commands).await?;
    Ok(keys
        .iter()
        .zip(values)
        .map(|(k, value)| match value {
            Value::Nil | Value::Boolean(false) => Ok(Reservation::Fresh(k.redis_key.clone())),
            Value::BulkString(v) if v == PENDING.as_bytes() => Err(Error::IdempotencyInProgress(k.key.clone())),
            Value::BulkString(v) => Ok(Reservation::Duplicate(decode(&String::from_utf8_lossy(&v)))),
            other => Err(Error::Unavailable {
                target: target.name.clone(),
                reason: format!("unexpected reply to an idempotency reservation: {other:?}"),
            }),
        })
        .collect())
}

/// Runs one operation's commands and stores its result under the key, in
/// one script. `KEYS[1]` is the record, `ARGV[1]` the window in ms,
/// `ARGV[2]` the number of commands, then each command as its argument
/// count and its arguments. The first call is a write, so that a replica
/// refuses the script (READONLY) before anything is published on it. The
/// stored value is the one [`encode`] writes: `r:<receivers>[:<entry id>]`,
/// receivers summed over the commands, the first entry id kept (as
/// `Reply::add` folds them). Returns `{receivers, entry id or false}`.
const PUBLISH_AND_RECORD: &str = "\
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local receivers, id, i = 0, false, 3
for _ = 1, tonumber(ARGV[2]) do
  local argc = tonumber(ARGV[i])
  local r = redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + 1 + argc
  if type(r) == 'number' then receivers = receivers + r elseif not id then id = r end
end
local value = 'r:' .. receivers
if id then value = value .. ':' .. id end
redis.call('SET', KEYS[1], value, 'PX', ARGV[1])
return {receivers, id}";

/// The script call that sends `commands` (one operation's) and records its
/// result under `redis_key` for `window`: see [`PUBLISH_AND_RECORD`].
pub fn publish_and_record(commands: &[redis::Cmd], redis_key: &str, window: Duration) -> redis::Cmd {
    let mut eval = redis::cmd("EVAL");
    eval.arg(PUBLISH_AND_RECORD)
        .arg(1)
        .arg(redis_key)
        .arg(millis(window))
        .arg(commands.len());
    for c in commands {
        eval.arg(c.args_iter().len());
        for a in c.args_iter() {
            if let redis::Arg::Simple(bytes) = a {
                eval.arg(bytes);
            }
        }
    }
    eval
}

/// Reads the reply of a [`publish_and_record`] script.
pub fn recorded_reply(value: Value) -> Result<Reply, String> {
    match value {
        Value::Array(v) => match v.as_slice() {
            [Value::Int(n), id] => Ok(Reply {
                receivers: u64::try_from(*n).unwrap_or_default(),
                stream_id: match id {
                    Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    Value::SimpleString(s) => Some(s.clone()),
                    _ => None,
                },
            }),
            other => Err(format!("unexpected reply to a publish script: {other:?}")),
        },
        Value::ServerError(e) => Err(e.to_string()),
        other => Err(format!("unexpected reply to a publish script: {other:?}")),
    }
}

/// A duration in whole milliseconds, at least 1 (`PX 0` is an error).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Stores each first call's result under its key for the whole window, in
/// one pipelined round trip (only where the key is still this call's claim).
pub async fn complete_all(target: &Target, done: &[(&str, &Reply)], window: Duration) {
    if done.is_empty() {
        return;
    }
    let commands = done
        .iter()
        .map(|(redis_key, reply)| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(*redis_key)
                .arg(encode(reply))
                .arg("XX")
                .arg("PX")
                .arg(millis(window));
            (Route::Key(redis_key.as_bytes()), cmd)
        })
        .collect();
    if let Err(e) = target.pipeline(commands).await {
        tracing::warn!(error = %e, "published, but could not store the idempotency results");
    }
}

/// Forgets keys after a failed publish, so that a retry publishes, in one
/// pipelined round trip.
pub async fn release_all(target: &Target, redis_keys: &[&str]) {
    if redis_keys.is_empty() {
        return;
    }
    let commands = redis_keys
        .iter()
        .map(|k| {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(*k);
            (Route::Key(k.as_bytes()), cmd)
        })
        .collect();
    if let Err(e) = target.pipeline(commands).await {
        tracing::warn!(error = %e, "could not release idempotency keys; they expire with their window");
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
