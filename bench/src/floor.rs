//! The no-op floor: `grpc.health.v1.Health/Check` on the same gateway, from
//! the same load client with the same calls in flight as the unary Emit
//! scenario. It does no work of the product's own (a map lookup in the
//! health service), so the gateway CPU it costs per call is what HTTP/2,
//! tonic and the runtime cost; unary Emit's CPU per call is reported as a
//! ratio to it.

use std::{error::Error, sync::Arc, time::Instant};

use bytes::Bytes;
use prost::Message as _;

use crate::{
    Bench, RssSampler,
    grpc::{Client, Outcome},
    report::{self, Scenario},
};

/// Calls in flight of the unary Emit row (`unary-c64`), which the floor and
/// the peers' unary rows use too.
pub const UNARY_IN_FLIGHT: usize = 64;

const CHECK: &str = "/grpc.health.v1.Health/Check";

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    /// The service asked about; empty = the whole server.
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    /// `ServingStatus`: 1 is SERVING.
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: i32 = 1;

/// The encoded request: the whole server's status (the gateway reports
/// SERVING there once Redis answers).
pub fn check_body() -> Bytes {
    Bytes::from(HealthCheckRequest { service: String::new() }.encode_to_vec())
}

/// One Check call; an answer other than SERVING is an error.
async fn check(client: &Client, body: Bytes) -> Result<(), String> {
    let raw = client.call(CHECK, body).await.map_err(|e| e.to_string())?;
    let r = HealthCheckResponse::decode(raw).map_err(|e| e.to_string())?;
    if r.status == SERVING {
        Ok(())
    } else {
        Err(format!("Health/Check answered status {}, not SERVING", r.status))
    }
}

/// `concurrency` loops each sending Check until `deadline`: the same closed
/// loop as [`crate::grpc::unary_load`]. `published` stays 0: nothing goes to
/// Redis; `calls` counts the SERVING answers.
pub async fn load(client: &Client, body: Bytes, concurrency: usize, deadline: Instant) -> Outcome {
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let body = Arc::clone(&body);
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            while Instant::now() < deadline {
                match check(&client, (*body).clone()).await {
                    Ok(()) => o.calls += 1,
                    Err(e) => o.fail(e),
                }
            }
            o
        }));
    }
    crate::grpc::join(tasks).await
}

/// Measures the floor on the running gateway `gw_pid` through `client`
/// (the unary Emit row's client): warm-up, then the measured run. Its CPU
/// and Redis commands per event are per answered call, since it publishes
/// nothing.
pub fn scenario(
    bench: &mut Bench,
    rt: &tokio::runtime::Runtime,
    gw_pid: u32,
    sampler: &RssSampler,
    client: &Client,
) -> Result<Scenario, Box<dyn Error>> {
    let body = check_body();
    rt.block_on(load(
        client,
        body.clone(),
        UNARY_IN_FLIGHT,
        Instant::now() + bench.timing.warmup,
    ));
    sampler.reset();
    let run = bench.timing.run;
    let m = bench.measure(Some(gw_pid), || {
        let o = rt.block_on(load(client, body.clone(), UNARY_IN_FLIGHT, Instant::now() + run));
        // Nothing is published: the subscriber is not waited for.
        Ok((Some(0), o, None))
    })?;
    let mut s = Scenario::new(
        &format!("floor-c{UNARY_IN_FLIGHT}"),
        "floor",
        &format!("no-op floor: Health/Check, {UNARY_IN_FLIGHT} in flight"),
        &m,
    );
    s.gateway_cpu_us_per_event = m
        .gateway_cpu
        .map(|(secs, _)| secs * 1e6 / m.outcome.calls.max(1) as f64);
    // Per call too: the gateway's own Redis traffic (its health probe).
    let calls = m.outcome.calls.max(1) as f64;
    s.redis_commands_per_event = m
        .commands
        .iter()
        .map(|(k, v)| (k.clone(), (*v as f64 / calls * 1000.0).round() / 1000.0))
        .collect();
    s.gateway_rss_mb = Some(report::mb(sampler.max()));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_answer_use_the_health_proto_field_numbers() -> Result<(), prost::DecodeError> {
        // An empty service name encodes to nothing; a named one is field 1.
        assert!(check_body().is_empty());
        let named = HealthCheckRequest { service: "x".into() }.encode_to_vec();
        assert_eq!(named, [0x0a, 1, b'x']);
        // status = SERVING is field 1, varint 1.
        assert_eq!(HealthCheckResponse::decode(&[0x08, 1][..])?.status, SERVING);
        Ok(())
    }
}
