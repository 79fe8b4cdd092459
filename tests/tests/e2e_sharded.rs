//! End-to-end: the `socketio-sharded` dialect in front of two real Socket.IO
//! 4 servers with `@socket.io/redis-adapter` `createShardedAdapter` on a
//! standalone Redis 7, in subscription modes `static` (the gateway publishes
//! everything on the namespace channel), `dynamic` (one-room events go to
//! the room's channel unless the room is a socket id) and `dynamic-private`
//! (every one-room event goes to the room's channel), and with the gateway's
//! default (`static`) in front of servers in a dynamic mode. The Redis
//! Cluster runs are in `e2e_redis_cluster.rs`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

mod dialect_suite;

use dialect_suite::{Kind, Mode, World};
use emitgate_e2e::RedisServer;

#[tokio::test]
async fn sharded_static_on_redis_7() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::sharded(Mode::Static), false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}

#[tokio::test]
async fn sharded_dynamic_on_redis_7() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::sharded(Mode::Dynamic), false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}

#[tokio::test]
async fn sharded_dynamic_private_on_redis_7() {
    let redis = RedisServer::start().await;
    let mut w = World::start(&redis.url(), Kind::sharded(Mode::DynamicPrivate), false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}

/// The main channel reaches servers in any mode: the gateway's default is
/// right even when the servers use room channels.
#[tokio::test]
async fn gateway_static_in_front_of_dynamic_private_servers() {
    let redis = RedisServer::start().await;
    let kind = Kind::Sharded {
        gateway: Mode::Static,
        servers: Mode::DynamicPrivate,
    };
    let mut w = World::start(&redis.url(), kind, false, "socket.io").await;
    dialect_suite::run(&mut w).await;
}
