//! The health loop's last PING of each target's Redis, with its round-trip
//! time, for the admin console (the console never pings Redis itself, so
//! opening it adds no load).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::error::Error;

/// One PING.
#[derive(Debug, Clone)]
pub struct Ping {
    /// When it finished.
    pub at: Instant,
    /// How long it took (to the answer, or to the failure).
    pub latency: Duration,
    /// Why it failed; `None` when Redis answered.
    pub error: Option<String>,
}

/// The last PING of every target, by name.
#[derive(Debug, Default)]
pub struct RedisHealth {
    last: Mutex<HashMap<String, Ping>>,
}

impl RedisHealth {
    /// Records the outcome of a PING of `target`'s Redis.
    pub fn record(&self, target: &str, latency: Duration, result: Result<(), &Error>) {
        let ping = Ping {
            at: Instant::now(),
            latency,
            error: result.err().map(ToString::to_string),
        };
        let mut last = match self.last.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        last.insert(target.to_owned(), ping);
    }

    /// The last PING of `target`, if one finished.
    pub fn last(&self, target: &str) -> Option<Ping> {
        let last = match self.last.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        last.get(target).cloned()
    }
}
