//! Prometheus metrics, served as text on the admin listener's `/metrics`.
//!
//! The gRPC metrics follow the go-grpc-prometheus names
//! (`grpc_server_handled_total`, `grpc_server_handling_seconds`) so existing
//! dashboards work; emitgate's own are prefixed `emitgate_`.

use std::sync::{LazyLock, Mutex};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of the per-RPC metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Always `emitgate.v1.EmitterService`.
    pub grpc_service: &'static str,
    /// The RPC name.
    pub grpc_method: &'static str,
}

/// Labels of `grpc_server_handled_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    /// Always `emitgate.v1.EmitterService`.
    pub grpc_service: &'static str,
    /// The RPC name.
    pub grpc_method: &'static str,
    /// The gRPC code name, e.g. `OK`, `InvalidArgument`.
    pub grpc_code: &'static str,
}

/// Labels of per-target metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// The target name.
    pub target: String,
    /// Its dialect.
    pub dialect: &'static str,
}

/// Labels of per-reason counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// Labels of per-API-key counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// The API key id.
    pub key: String,
}

/// Labels of the request/response RPCs' counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    /// The RPC name (`EmitWithAck`, `FetchSockets`, …).
    pub rpc: &'static str,
    /// `complete`, `timeout`, `cancelled` or `error`.
    pub outcome: &'static str,
}

/// Labels of the answer counters and latencies.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    /// The target name.
    pub target: String,
    /// Why an answer was dropped (`unknown_request`, `undecodable`,
    /// `unexpected`), or the RPC it answered.
    pub reason: &'static str,
}

/// Latency buckets in seconds: 100 µs to 10 s, for gRPC handling and Redis.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];
/// Batch-size buckets, up to the default item limit and beyond.
const BATCH_BUCKETS: [f64; 8] = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];
/// Receiver-count buckets: how many server subscriptions got a message.
const RECEIVER_BUCKETS: [f64; 8] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}
fn receivers() -> Histogram {
    Histogram::new(RECEIVER_BUCKETS)
}

/// Every metric of the process.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Calls handled, by RPC and code.
    pub handled: Family<HandledLabels, Counter>,
    /// Call latency, by RPC.
    pub handling: Family<RpcLabels, Histogram, fn() -> Histogram>,
    /// Calls in flight.
    pub in_flight: Gauge,
    /// Events (emits, broadcasts, socket operations) published, by target.
    pub events_published: Family<TargetLabels, Counter>,
    /// Items per BatchEmit call.
    pub batch_items: Histogram,
    /// Receivers reported by Redis per published message, by target.
    pub publish_receivers: Family<TargetLabels, Histogram, fn() -> Histogram>,
    /// Redis commands or pipelines that failed, by target.
    pub redis_errors: Family<TargetLabels, Counter>,
    /// Redis round-trip latency (command or pipeline), by target.
    pub redis_latency: Family<TargetLabels, Histogram, fn() -> Histogram>,
    /// Operations answered from an earlier call's idempotency record.
    pub idempotent_duplicates: Family<TargetLabels, Counter>,
    /// Calls refused by authentication or scopes, by reason.
    pub auth_failures: Family<ReasonLabels, Counter>,
    /// Calls refused by a key's rate limit, by key.
    pub rate_limited: Family<KeyLabels, Counter>,
    /// Request/response RPCs by outcome.
    pub feedback_requests: Family<FeedbackLabels, Counter>,
    /// Time from publishing a request to each answer, by target and RPC.
    pub feedback_answer_latency: Family<AnswerLabels, Histogram, fn() -> Histogram>,
    /// Answers dropped (unknown or finished request, undecodable, wrong
    /// shape), by target and reason.
    pub feedback_dropped: Family<AnswerLabels, Counter>,
    /// Requests waiting for answers (registered, not yet finished).
    pub feedback_pending: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::default()),
            handled: Family::default(),
            handling: Family::new_with_constructor(latency),
            in_flight: Gauge::default(),
            events_published: Family::default(),
            batch_items: Histogram::new(BATCH_BUCKETS),
            publish_receivers: Family::new_with_constructor(receivers),
            redis_errors: Family::default(),
            redis_latency: Family::new_with_constructor(latency),
            idempotent_duplicates: Family::default(),
            auth_failures: Family::default(),
            rate_limited: Family::default(),
            feedback_requests: Family::default(),
            feedback_answer_latency: Family::new_with_constructor(latency),
            feedback_dropped: Family::default(),
            feedback_pending: Gauge::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "grpc_server_handled",
                "RPCs completed on the server, by code",
                m.handled.clone(),
            );
            r.register(
                "grpc_server_handling_seconds",
                "RPC handling latency",
                m.handling.clone(),
            );
            r.register(
                "emitgate_calls_in_flight",
                "calls being handled now",
                m.in_flight.clone(),
            );
            r.register(
                "emitgate_events_published",
                "operations published to Redis",
                m.events_published.clone(),
            );
            r.register(
                "emitgate_batch_items",
                "items per BatchEmit call",
                m.batch_items.clone(),
            );
            r.register(
                "emitgate_publish_receivers",
                "server subscriptions that received each published message",
                m.publish_receivers.clone(),
            );
            r.register(
                "emitgate_redis_errors",
                "failed Redis commands or pipelines",
                m.redis_errors.clone(),
            );
            r.register(
                "emitgate_redis_seconds",
                "Redis round-trip latency",
                m.redis_latency.clone(),
            );
            r.register(
                "emitgate_idempotent_duplicates",
                "operations answered from an earlier call with the same idempotency key",
                m.idempotent_duplicates.clone(),
            );
            r.register(
                "emitgate_auth_failures",
                "calls refused by authentication or scope",
                m.auth_failures.clone(),
            );
            r.register(
                "emitgate_rate_limited",
                "calls refused by an API key's rate limit",
                m.rate_limited.clone(),
            );
            r.register(
                "emitgate_feedback_requests",
                "request/response RPCs (acks, fetchSockets, allRooms, serverSideEmit with ack), by outcome",
                m.feedback_requests.clone(),
            );
            r.register(
                "emitgate_feedback_answer_seconds",
                "time from publishing a request to each server or client answer",
                m.feedback_answer_latency.clone(),
            );
            r.register(
                "emitgate_feedback_dropped_answers",
                "answers dropped: unknown or finished request, undecodable, or of the wrong shape",
                m.feedback_dropped.clone(),
            );
            r.register(
                "emitgate_feedback_pending",
                "requests waiting for answers; a finished, timed-out or cancelled one is removed",
                m.feedback_pending.clone(),
            );
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut out, &r);
        }
        out
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// One target's metrics, looked up once when the target is built: the
/// handles share their values with the registered families, so the hot path
/// updates them without hashing labels or taking the family's lock.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    /// Its series of [`Metrics::events_published`].
    pub events_published: Counter,
    /// Its series of [`Metrics::publish_receivers`].
    pub publish_receivers: Histogram,
    /// Its series of [`Metrics::redis_errors`].
    pub redis_errors: Counter,
    /// Its series of [`Metrics::redis_latency`].
    pub redis_latency: Histogram,
    /// Its series of [`Metrics::idempotent_duplicates`].
    pub idempotent_duplicates: Counter,
}

impl TargetMetrics {
    /// The series of target `target` (dialect `dialect`), created now.
    pub fn new(target: &str, dialect: &'static str) -> Self {
        let m = global();
        let labels = target_labels(target, dialect);
        Self {
            events_published: m.events_published.get_or_create(&labels).clone(),
            publish_receivers: m.publish_receivers.get_or_create(&labels).clone(),
            redis_errors: m.redis_errors.get_or_create(&labels).clone(),
            redis_latency: m.redis_latency.get_or_create(&labels).clone(),
            idempotent_duplicates: m.idempotent_duplicates.get_or_create(&labels).clone(),
        }
    }
}

/// Per-target labels.
pub fn target_labels(target: &str, dialect: &'static str) -> TargetLabels {
    TargetLabels {
        target: target.to_owned(),
        dialect,
    }
}
