//! Centrifugo as a peer: the same job (publish an event into Redis for the
//! servers that fan it out) done by another server with a gRPC API,
//! measured the same way as the gateway.
//!
//! The bench starts the Centrifugo binary (`make setup-bench-peers` builds
//! it into `.tools/bin`) with its Redis engine on the bench's Redis and its
//! gRPC server API on a free loopback port, then drives it with the same
//! load client: unary `Publish` with the same calls in flight as unary
//! Emit, and `Batch` with [`BATCH_COMMANDS`] publishes and `parallel: true`.
//! Every answer is checked: Centrifugo reports most failures inside the
//! response body (`error` of a reply), not as a gRPC status. Its Redis
//! engine publishes each event with one PUBLISH on `<prefix>.client.<channel>`,
//! which the bench's subscriber counts, so a lost event shows as in every
//! other row.

use std::{
    error::Error,
    fs,
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use bytes::Bytes;
use prost::Message as _;
use serde_json::json;

use crate::{
    Bench, RssSampler,
    floor::UNARY_IN_FLIGHT,
    gateway_scenario,
    grpc::{Client, Outcome},
    procs::{self, Guard},
    report::Scenario,
    workload,
};

/// The version `make setup-bench-peers` installs (the Makefile's
/// CENTRIFUGO_VERSION); the bench records it with the results.
pub const VERSION: &str = "v6.9.1";

/// The Redis key and channel prefix given to Centrifugo's Redis engine
/// (its default, written out so that [`REDIS_PATTERN`] matches it).
const REDIS_PREFIX: &str = "centrifugo";

/// What the bench's subscriber pattern-subscribes to for Centrifugo's
/// publications: its engine publishes on `<prefix>.client.<channel>`.
pub const REDIS_PATTERN: &str = "centrifugo.client.*";

/// Distinct channels the publishes cycle through. Channel names hold no
/// `:`: in Centrifugo `a:b` names channel `b` of namespace `a`, and a
/// namespace that is not configured is refused (in the response body).
const CHANNELS: usize = 1000;

/// Commands per `Batch` call: the size of a BatchEmit.
pub const BATCH_COMMANDS: usize = workload::BATCH_ITEMS;

const PUBLISH: &str = "/centrifugal.centrifugo.api.CentrifugoApi/Publish";
const BATCH: &str = "/centrifugal.centrifugo.api.CentrifugoApi/Batch";

// The messages of Centrifugo's `api.proto` (package
// centrifugal.centrifugo.api) the bench uses, with their field numbers;
// fields it does not use are left out (prost skips them when decoding).

/// `PublishRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct PublishRequest {
    #[prost(string, tag = "1")]
    channel: String,
    /// The publication's data: JSON, as Centrifugo's JSON clients get it.
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

/// `Error`: what Centrifugo reports in a response body.
#[derive(Clone, PartialEq, prost::Message)]
struct ApiError {
    #[prost(uint32, tag = "1")]
    code: u32,
    #[prost(string, tag = "2")]
    message: String,
}

/// `PublishResult`.
#[derive(Clone, PartialEq, prost::Message)]
struct PublishResult {
    #[prost(uint64, tag = "1")]
    offset: u64,
}

/// `PublishResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct PublishResponse {
    #[prost(message, optional, tag = "1")]
    error: Option<ApiError>,
    #[prost(message, optional, tag = "2")]
    result: Option<PublishResult>,
}

/// `Command` (only its `publish` field).
#[derive(Clone, PartialEq, prost::Message)]
struct ApiCommand {
    #[prost(message, optional, tag = "4")]
    publish: Option<PublishRequest>,
}

/// `BatchRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct BatchRequest {
    #[prost(message, repeated, tag = "1")]
    commands: Vec<ApiCommand>,
    #[prost(bool, tag = "2")]
    parallel: bool,
}

/// `Reply` (its error and its `publish` result).
#[derive(Clone, PartialEq, prost::Message)]
struct Reply {
    #[prost(message, optional, tag = "2")]
    error: Option<ApiError>,
    #[prost(message, optional, tag = "4")]
    publish: Option<PublishResult>,
}

/// `BatchResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct BatchResponse {
    #[prost(message, repeated, tag = "1")]
    replies: Vec<Reply>,
}

/// The channel of event `i`.
fn channel(i: usize) -> String {
    format!("user_{}", i % CHANNELS)
}

fn publish_request(i: usize) -> PublishRequest {
    PublishRequest {
        channel: channel(i),
        data: workload::PAYLOAD_JSON.as_bytes().to_vec(),
    }
}

/// The encoded Publish requests of one cycle (one per room set, as the
/// unary Emit bodies).
pub fn publish_bodies() -> Vec<Bytes> {
    (0..workload::ROOM_SETS)
        .map(|i| Bytes::from(publish_request(i).encode_to_vec()))
        .collect()
}

/// One encoded Batch request of [`BATCH_COMMANDS`] publishes, run in
/// parallel by Centrifugo.
pub fn batch_body() -> Bytes {
    let req = BatchRequest {
        commands: (0..BATCH_COMMANDS)
            .map(|i| ApiCommand {
                publish: Some(publish_request(i)),
            })
            .collect(),
        parallel: true,
    };
    Bytes::from(req.encode_to_vec())
}

fn api_error(e: &ApiError) -> String {
    format!("Centrifugo error {}: {}", e.code, e.message)
}

/// One Publish call; an error in the body is an error.
async fn publish(client: &Client, body: Bytes) -> Result<(), String> {
    let raw = client.call(PUBLISH, body).await.map_err(|e| e.to_string())?;
    let r = PublishResponse::decode(raw).map_err(|e| e.to_string())?;
    match (r.error, r.result) {
        (Some(e), _) => Err(api_error(&e)),
        (None, Some(_)) => Ok(()),
        (None, None) => Err("Publish answered neither a result nor an error".into()),
    }
}

/// One Batch call: (publishes that succeeded, first failure), counting
/// every reply with an error and every missing reply as failed.
async fn batch(client: &Client, body: Bytes) -> Result<(u64, u64, Option<String>), String> {
    let raw = client.call(BATCH, body).await.map_err(|e| e.to_string())?;
    let r = BatchResponse::decode(raw).map_err(|e| e.to_string())?;
    let mut ok = 0u64;
    let mut failed = 0u64;
    let mut first = None;
    for reply in &r.replies {
        match (&reply.error, &reply.publish) {
            (Some(e), _) => {
                failed += 1;
                first.get_or_insert_with(|| api_error(e));
            }
            (None, Some(_)) => ok += 1,
            (None, None) => {
                failed += 1;
                first.get_or_insert_with(|| "a Batch reply held neither a result nor an error".into());
            }
        }
    }
    let missing = BATCH_COMMANDS.saturating_sub(r.replies.len()) as u64;
    if missing > 0 {
        failed += missing;
        first.get_or_insert_with(|| {
            format!(
                "Batch answered {} replies for {BATCH_COMMANDS} commands",
                r.replies.len()
            )
        });
    }
    Ok((ok, failed, first))
}

/// `concurrency` loops each sending Publish calls (cycling through
/// `bodies`) until `deadline`, as [`crate::grpc::unary_load`] does for Emit.
pub async fn publish_load(client: &Client, bodies: Arc<Vec<Bytes>>, concurrency: usize, deadline: Instant) -> Outcome {
    let client = client.clone();
    crate::grpc::closed_loop(bodies, concurrency, deadline, move |body| {
        let client = client.clone();
        async move { publish(&client, body).await }
    })
    .await
}

/// `concurrency` loops each sending `body` (a Batch) until `deadline`, as
/// [`crate::grpc::batch_load`] does for BatchEmit.
pub async fn batch_load(client: &Client, body: Bytes, concurrency: usize, deadline: Instant) -> Outcome {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            while Instant::now() < deadline {
                match batch(&client, body.clone()).await {
                    Ok((ok, failed, first)) => {
                        o.calls += 1;
                        o.published += ok;
                        o.errors += failed;
                        if let Some(e) = first {
                            o.first_error.get_or_insert(e);
                        }
                    }
                    Err(e) => o.fail(e),
                }
            }
            o
        }));
    }
    crate::grpc::join(tasks).await
}

/// The configuration the bench runs Centrifugo with: the Redis engine on
/// `redis_addr`, the gRPC API on `grpc_port` and the HTTP server (which
/// Centrifugo always starts) on `http_port`, both on loopback; no usage
/// statistics sent anywhere; errors only in the log (a `go install` build
/// warns at start that it is a development build).
pub fn config(redis_addr: &str, grpc_port: u16, http_port: u16) -> serde_json::Value {
    json!({
        "engine": {
            "type": "redis",
            "redis": { "address": [format!("redis://{redis_addr}")], "prefix": REDIS_PREFIX },
        },
        "grpc_api": { "enabled": true, "address": "127.0.0.1", "port": grpc_port },
        "http_server": { "address": "127.0.0.1", "port": http_port },
        "usage_stats": { "disabled": true },
        "log": { "level": "error" },
    })
}

/// Starts `bin` with [`config`] (written to `dir/centrifugo.json`, kept with
/// the results); returns it and its gRPC API address once a Publish answers
/// without an error.
pub fn start(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    redis_addr: &str,
    dir: &Path,
) -> Result<(Guard, String, Client), Box<dyn Error>> {
    let (grpc_port, http_port) = (procs::free_port()?, procs::free_port()?);
    let path = dir.join("centrifugo.json");
    fs::write(
        &path,
        serde_json::to_string_pretty(&config(redis_addr, grpc_port, http_port))? + "\n",
    )?;
    let child = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut g = Guard {
        child,
        name: "centrifugo".into(),
    };
    let addr = format!("127.0.0.1:{grpc_port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        g.check_alive()?;
        if Instant::now() > deadline {
            return Err(format!("centrifugo: no gRPC API on {addr} within 20 s").into());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let client = rt.block_on(Client::connect(&addr))?;
    let body = Bytes::from(publish_request(0).encode_to_vec());
    loop {
        match rt.block_on(publish(&client, body.clone())) {
            Ok(()) => return Ok((g, addr, client)),
            Err(e) if Instant::now() > deadline => return Err(format!("centrifugo does not publish: {e}").into()),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The module version `bin` was built from, from its Go build information
/// (`go version -m`): a `go install` build reports version 0.0.0 itself.
fn version(bin: &Path) -> String {
    let info = procs::command_output("go", &["version", "-m", &bin.display().to_string()]);
    info.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"mod") && f.get(1) == Some(&"github.com/centrifugal/centrifugo/v6"))
        .and_then(|f| f.get(2).map(|v| (*v).to_owned()))
        .unwrap_or_default()
}

/// Concurrent Batch calls: as the BatchEmit row it is compared with
/// (`batch-c2`).
const BATCH_CONCURRENCY: usize = 2;

/// Measures the Centrifugo rows: unary Publish with [`UNARY_IN_FLIGHT`]
/// calls in flight, then Batch; CPU, RSS and the Redis-side count are those
/// of the Centrifugo process, taken as for the gateway.
pub fn scenarios(
    bench: &mut Bench,
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    dir: &Path,
) -> Result<Vec<Scenario>, Box<dyn Error>> {
    if !bin.exists() {
        return Err(format!("{} does not exist (make setup-bench-peers builds it)", bin.display()).into());
    }
    let v = version(bin);
    if v != VERSION {
        return Err(format!(
            "{} was built from Centrifugo {v:?}, not {VERSION} (make setup-bench-peers installs it)",
            bin.display()
        )
        .into());
    }
    let (mut centrifugo, _, client) = start(rt, bin, &bench.redis_addr, dir)?;
    let pid = centrifugo.pid();
    let sampler = RssSampler::start(pid);
    let mut out = Vec::new();

    eprintln!("bench: 6. Centrifugo {VERSION} Publish, {UNARY_IN_FLIGHT} in flight");
    let bodies = Arc::new(publish_bodies());
    let s = gateway_scenario(bench, rt, pid, &sampler, |deadline| {
        publish_load(&client, Arc::clone(&bodies), UNARY_IN_FLIGHT, deadline)
    })?;
    out.push(s.named(
        &format!("centrifugo-publish-c{UNARY_IN_FLIGHT}"),
        "peer",
        &format!("Centrifugo {VERSION} Publish, {UNARY_IN_FLIGHT} in flight"),
    ));

    eprintln!("bench: 6. Centrifugo {VERSION} Batch x{BATCH_COMMANDS} parallel, {BATCH_CONCURRENCY} concurrent");
    let body = batch_body();
    let s = gateway_scenario(bench, rt, pid, &sampler, |deadline| {
        batch_load(&client, body.clone(), BATCH_CONCURRENCY, deadline)
    })?;
    out.push(s.named(
        &format!("centrifugo-batch-c{BATCH_CONCURRENCY}"),
        "peer",
        &format!("Centrifugo Batch x{BATCH_COMMANDS} parallel, {BATCH_CONCURRENCY} concurrent"),
    ));

    centrifugo.check_alive()?;
    sampler.stop();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_no_namespace() {
        assert!((0..2 * CHANNELS).all(|i| !channel(i).contains(':')));
    }

    #[test]
    fn batch_holds_every_publish_and_runs_in_parallel() -> Result<(), prost::DecodeError> {
        let req = BatchRequest::decode(batch_body())?;
        assert!(req.parallel);
        assert_eq!(req.commands.len(), BATCH_COMMANDS);
        let p = req.commands[7]
            .publish
            .as_ref()
            .map(|p| (p.channel.clone(), p.data.clone()));
        assert_eq!(p, Some(("user_7".into(), workload::PAYLOAD_JSON.as_bytes().to_vec())));
        Ok(())
    }
}
