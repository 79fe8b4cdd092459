//! The gRPC load client: BatchEmit and unary Emit against the gateway.
//!
//! Requests are encoded once, up front, and sent as raw bytes through a
//! pass-through codec, so the client spends its (shared) CPU on the wire and
//! not on re-encoding the same messages.

use std::{
    error::Error,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use emitgate::pb;
use hdrhistogram::Histogram;
use http::uri::PathAndQuery;
use prost::Message as _;
use tonic::{
    Request, Status,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

/// A codec that sends pre-encoded messages and returns the raw answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        *self
    }
    fn decoder(&mut self) -> RawCodec {
        *self
    }
}

const EMIT: &str = "/emitgate.v1.EmitterService/Emit";
const BATCH_EMIT: &str = "/emitgate.v1.EmitterService/BatchEmit";

/// A connected client (one HTTP/2 connection, as an SDK uses).
#[derive(Debug, Clone)]
pub struct Client {
    grpc: Grpc<Channel>,
}

/// What a load run achieved, as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// RPCs that answered OK.
    pub calls: u64,
    /// Events the gateway reports published.
    pub published: u64,
    /// RPCs or items that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.calls += o.calls;
        self.published += o.published;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    pub(crate) fn fail(&mut self, e: impl ToString) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

impl Client {
    /// Connects to the gateway at `addr` (`127.0.0.1:port`).
    pub async fn connect(addr: &str) -> Result<Self, Box<dyn Error>> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(Self {
            grpc: Grpc::new(channel),
        })
    }

    pub(crate) async fn call(&self, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
        let res = grpc
            .unary(Request::new(body), PathAndQuery::from_static(path), RawCodec)
            .await?;
        Ok(res.into_inner())
    }

    /// One Emit call; returns the receivers count.
    pub async fn emit(&self, body: Bytes) -> Result<u64, Status> {
        let raw = self.call(EMIT, body).await?;
        let r = pb::EmitResponse::decode(raw).map_err(|e| Status::internal(e.to_string()))?;
        Ok(r.receivers)
    }

    /// One BatchEmit call; returns (published, failed, first item error).
    pub async fn batch(&self, body: Bytes) -> Result<(u64, u64, Option<String>), Status> {
        let raw = self.call(BATCH_EMIT, body).await?;
        let r = pb::BatchEmitResponse::decode(raw).map_err(|e| Status::internal(e.to_string()))?;
        let first = r.results.iter().find(|x| x.code != 0).map(|x| x.message.clone());
        Ok((u64::from(r.published), u64::from(r.failed), first))
    }
}

/// `concurrency` loops each sending `body` (a BatchEmit) until `deadline`.
pub async fn batch_load(client: &Client, body: Bytes, concurrency: usize, deadline: Instant) -> Outcome {
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            while Instant::now() < deadline {
                match client.batch(body.clone()).await {
                    Ok((published, failed, first)) => {
                        o.calls += 1;
                        o.published += published;
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
    join(tasks).await
}

/// `concurrency` loops each sending Emit calls (cycling through `bodies`)
/// until `deadline`: a closed loop with that many calls in flight.
pub async fn unary_load(client: &Client, bodies: Arc<Vec<Bytes>>, concurrency: usize, deadline: Instant) -> Outcome {
    let client = client.clone();
    closed_loop(bodies, concurrency, deadline, move |body| {
        let client = client.clone();
        async move { client.emit(body).await.map(drop) }
    })
    .await
}

/// `concurrency` loops each calling `call` with the next of `bodies` (loop
/// `t` takes bodies `t`, `t + concurrency`, …) until `deadline`; each OK is
/// one call and one published event. Shared by the unary scenarios of the
/// gateway and of its peers, so they load alike.
pub(crate) async fn closed_loop<F, Fut, E>(
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    deadline: Instant,
    call: F,
) -> Outcome
where
    F: Fn(Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send,
    E: ToString,
{
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let call = call.clone();
        let bodies = Arc::clone(&bodies);
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            let mut i = t;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += concurrency;
                match call(body).await {
                    Ok(()) => {
                        o.calls += 1;
                        o.published += 1;
                    }
                    Err(e) => o.fail(e),
                }
            }
            o
        }));
    }
    join(tasks).await
}

pub(crate) async fn join(tasks: Vec<tokio::task::JoinHandle<Outcome>>) -> Outcome {
    let mut total = Outcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => total.merge(o),
            Err(e) => total.fail(e),
        }
    }
    total
}

/// Latency percentiles of an open-loop run, in microseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    /// The offered rate, calls per second.
    pub offered_per_s: f64,
    /// Calls sent.
    pub sent: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest call.
    pub max_us: u64,
    /// How late the dispatcher sent calls (99th percentile): the client's
    /// own timing noise, already included in the figures above.
    pub send_lag_p99_us: u64,
}

/// Sends Emit calls at a fixed `rate` for `duration`, open loop: a call is
/// sent at its intended time whether or not earlier calls have answered,
/// and its latency is measured from that intended time, so a stall of the
/// gateway counts against every call it delayed (no coordinated omission).
pub fn open_loop(
    rt: &tokio::runtime::Handle,
    client: &Client,
    bodies: Arc<Vec<Bytes>>,
    rate: f64,
    duration: Duration,
) -> Result<(Latency, Outcome), Box<dyn Error>> {
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let pending = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let n = (duration.as_secs_f64() * rate) as u64;
    let start = Instant::now() + Duration::from_millis(10);
    for k in 0..n {
        let intended = start + interval.mul_f64(k as f64);
        // Sleep until the intended time (no spinning: on a small machine a
        // spinning client would steal the gateway's CPU). The kernel wakes
        // the thread some tens of microseconds late; that lag is recorded
        // and is part of every latency figure.
        let now = Instant::now();
        if intended > now {
            thread::sleep(intended - now);
        }
        let _ = lag.record(u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
        let client = client.clone();
        let body = bodies[k as usize % bodies.len()].clone();
        let hist = Arc::clone(&hist);
        let outcome = Arc::clone(&outcome);
        let pending = Arc::clone(&pending);
        pending.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            let r = client.emit(body).await;
            let us = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
            if let Ok(mut h) = hist.lock() {
                let _ = h.record(us);
            }
            if let Ok(mut o) = outcome.lock() {
                match r {
                    Ok(_) => {
                        o.calls += 1;
                        o.published += 1;
                    }
                    Err(e) => o.fail(e),
                }
            }
            pending.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let wait_until = Instant::now() + Duration::from_secs(10);
    while pending.load(Ordering::SeqCst) > 0 && Instant::now() < wait_until {
        thread::sleep(Duration::from_millis(5));
    }
    let h = hist.lock().map_err(|_| "histogram lock poisoned")?;
    let lat = Latency {
        offered_per_s: rate,
        sent: n,
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
        send_lag_p99_us: lag.value_at_quantile(0.99),
    };
    let mut o = outcome.lock().map_err(|_| "outcome lock poisoned")?.clone();
    let unanswered = pending.load(Ordering::SeqCst);
    if unanswered > 0 {
        o.fail(format!("{unanswered} calls unanswered after 10 s"));
    }
    Ok((lat, o))
}
