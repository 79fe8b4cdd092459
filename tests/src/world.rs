//! One end-to-end setup shared by the per-dialect suites: a real Redis, a
//! Socket.IO fixture on it, the gateway in front, and a gRPC client — with
//! the barrier technique that proves what clients did not receive.

use base64::Engine;
use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{Gateway, RedisServer, SioClient, Stack};

/// Fields drop in order: clients and servers before the Redis they use.
pub struct World {
    /// A client of the gateway.
    pub c: EmitterServiceClient<Channel>,
    /// The Socket.IO fixture.
    pub stack: Stack,
    /// The gateway.
    pub gw: Gateway,
    _redis: RedisServer,
}

impl World {
    /// Starts Redis, the fixture `stack` builds on it, and a gateway whose
    /// config adds `gateway_toml` (e.g. the default target's dialect).
    pub async fn start<F, Fut>(stack: F, gateway_toml: &str) -> Self
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Stack>,
    {
        Self::start_with(stack, |redis_url| Gateway::config(redis_url, gateway_toml)).await
    }

    /// [`start`](Self::start) with the gateway config `config` makes from
    /// the Redis URL.
    pub async fn start_with<F, Fut>(stack: F, config: impl FnOnce(&str) -> emitgate::Config) -> Self
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Stack>,
    {
        let redis = RedisServer::start().await;
        let stack = stack(redis.url()).await;
        let gw = Gateway::start(config(&redis.url())).await;
        let c = gw.client().await;
        Self {
            c,
            stack,
            gw,
            _redis: redis,
        }
    }

    /// Broadcasts `name` to `nsp`: once a client has it, it has everything
    /// published before.
    pub async fn barrier(&mut self, nsp: &str, name: &str) {
        self.c
            .broadcast(pb::BroadcastRequest {
                namespace: nsp.into(),
                event: name.into(),
                ..Default::default()
            })
            .await
            .expect("barrier broadcast");
    }

    /// The events each client received before the barrier `name`.
    pub async fn received(&mut self, nsp: &str, name: &str, clients: &[&SioClient]) -> Vec<Vec<Value>> {
        self.barrier(nsp, name).await;
        let mut out = Vec::new();
        for c in clients {
            out.push(self.stack.events_before(c, name).await);
        }
        out
    }

    /// Emits to `rooms`; returns the receivers.
    pub async fn emit(&mut self, rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> u64 {
        self.c
            .emit(emit_req(rooms, event, args))
            .await
            .expect("emit")
            .into_inner()
            .receivers
    }

    /// The servers never hit a decode error (which would crash a real one).
    pub async fn assert_servers_healthy(&self) {
        assert_eq!(self.stack.errors().await, Vec::<Value>::new());
    }
}

/// An Emit request.
pub fn emit_req(rooms: &[&str], event: &str, args: Vec<pb::Argument>) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms.iter().map(|s| (*s).into()).collect(),
        event: event.into(),
        args,
        ..Default::default()
    }
}

/// A received event as the fixture reports it.
pub fn ev(event: &str, args: Value) -> Value {
    json!({"event": event, "args": args})
}

/// Binary as the fixture reports it.
pub fn b64(bytes: &[u8]) -> Value {
    json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)})
}
