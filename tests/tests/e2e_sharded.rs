//! End-to-end: the `socketio-sharded` dialect in front of two real Socket.IO
//! 4 servers with `@socket.io/redis-adapter` `createShardedAdapter` on a
//! standalone Redis 7, in subscription modes `static` (the gateway publishes
//! everything on the namespace channel) and `dynamic` (one-room events go to
//! the room's channel). The Redis Cluster runs are in `e2e_redis_cluster.rs`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod dialect_suite;

use dialect_suite::{Kind, World};
use emitgate_e2e::RedisServer;

#[tokio::test]
async fn sharded_static_on_redis_7() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::Sharded { dynamic: false }, false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}

#[tokio::test]
async fn sharded_dynamic_on_redis_7() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::Sharded { dynamic: true }, false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}
