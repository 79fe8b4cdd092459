//! End-to-end: the `socketio` dialect with `parser = "json"` in front of two
//! real Socket.IO 4 servers whose `@socket.io/redis-adapter` runs with
//! `parser: { encode: JSON.stringify, decode: JSON.parse }`, on a standalone
//! Redis. Every case of the dialect suite runs; what JSON cannot carry
//! (binary, timestamps, integers beyond 2^53) is refused with
//! INVALID_ARGUMENT, publishes nothing, and the servers' process stays up
//! with no decode error.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod dialect_suite;

use dialect_suite::{Kind, World};
use emitgate_e2e::RedisServer;

#[tokio::test]
async fn classic_adapter_with_the_json_parser() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::ClassicJson, false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}
