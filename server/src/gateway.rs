//! The gateway's shared state and the admit stage of every call.
//!
//! [`Gateway`] holds what every call shares: targets, limits, API keys and
//! the in-flight budget. [`Gateway::admit`] is the first stage of the
//! pipeline ([`crate::pipeline`]): authentication, the RPC scope, the
//! in-flight limit and the caller's deadline; the rate and the
//! target/namespace scope are checked per item once the items are planned.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Request;

use crate::{
    admin::FailedCalls,
    auth::{ApiKey, KeyStore},
    config::{Config, Limits},
    error::Error,
    metrics,
    plan::{self, Operation, Plan, Targets},
    target::Target,
    validate::Prefix,
};

/// The gRPC service's state: targets, limits and keys, shared by every call.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(crate) targets: Arc<Targets>,
    pub(crate) limits: Arc<Limits>,
    keys: Arc<RwLock<Arc<KeyStore>>>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    draining: Arc<AtomicBool>,
    pub(crate) idempotency_window: Duration,
    pub(crate) failed: Arc<FailedCalls>,
    /// The request/response machinery (acks, fetchSockets, …).
    pub(crate) feedback: Arc<crate::feedback::Feedback>,
}

/// A call that passed authentication and admission control; holds its
/// in-flight permit until dropped.
#[derive(Debug)]
pub struct Admission {
    key: Option<Arc<ApiKey>>,
    /// When the gateway gives up on the call, from `grpc-timeout`.
    pub deadline: Option<Instant>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        metrics::global().in_flight.dec();
    }
}

impl Admission {
    /// The key id that scopes idempotency keys (`-` without authentication).
    pub fn key_id(&self) -> &str {
        self.key.as_ref().map_or("-", |k| k.id.as_str())
    }

    /// Fails when the caller's deadline has passed: work past its deadline
    /// is not started.
    pub fn check_deadline(&self) -> Result<(), Error> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::DeadlineExceeded),
            _ => Ok(()),
        }
    }

    /// Checks the key's scope for a planned operation.
    pub fn allow(&self, p: &Plan) -> Result<(), Error> {
        match &self.key {
            Some(k) => k.allow(&p.target.name, &p.namespace),
            None => Ok(()),
        }
    }

    /// What a request/response call needs from the gateway.
    pub(crate) fn feedback<'a>(&'a self, gw: &'a Gateway) -> crate::feedback::Ctx<'a> {
        crate::feedback::Ctx {
            targets: &gw.targets,
            limits: &gw.limits,
            key: self.key.as_deref(),
            deadline: self.deadline,
        }
    }

    /// Takes `events` from the key's rate budget.
    pub fn take(&self, events: usize) -> Result<(), Error> {
        match &self.key {
            Some(k) => k.take(u32::try_from(events).unwrap_or(u32::MAX)),
            None => Ok(()),
        }
    }
}

/// How much earlier than the caller's deadline the gateway gives up: a
/// tenth of the timeout, between these bounds. The transport also enforces
/// `grpc-timeout`, counting from an earlier instant, and answers CANCELLED
/// ("Timeout expired"); giving up a little earlier makes the caller see the
/// accurate DEADLINE_EXCEEDED instead.
const DEADLINE_MARGIN_MIN: Duration = Duration::from_millis(2);
const DEADLINE_MARGIN_MAX: Duration = Duration::from_millis(100);

/// Parses the `grpc-timeout` header (`<digits><H|M|S|m|u|n>`).
fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl Gateway {
    /// Builds the service and every target's Redis client.
    pub fn new(config: &Config) -> Result<Self, crate::StartError> {
        let mut targets = Targets::new();
        for (name, t) in &config.targets {
            let target = Target::new(t, config).map_err(|message| crate::StartError::Target {
                target: name.clone(),
                message,
            })?;
            targets.insert(name.clone(), Arc::new(target));
        }
        let keys =
            KeyStore::new(&config.keys).map_err(|(setting, message)| crate::StartError::Keys { setting, message })?;
        Ok(Self {
            targets: Arc::new(targets),
            limits: Arc::new(config.limits.clone()),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            in_flight: Arc::new(Semaphore::new(config.limits.max_in_flight)),
            max_in_flight: config.limits.max_in_flight,
            draining: Arc::new(AtomicBool::new(false)),
            idempotency_window: config.idempotency_window,
            failed: Arc::new(FailedCalls::default()),
            feedback: Arc::new(crate::feedback::Feedback::new(config)?),
        })
    }

    /// Replaces the API keys (SIGHUP); calls in flight keep the key they had.
    pub fn set_keys(&self, keys: KeyStore) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    fn key_store(&self) -> Arc<KeyStore> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The API key that `metadata` (its `authorization` header) presents;
    /// `Ok(None)` when authentication is off.
    pub fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Option<Arc<ApiKey>>, Error> {
        self.key_store().authenticate(metadata, &[])
    }

    /// The last failed calls, newest first (method, code and message only).
    pub(crate) fn failed_calls(&self) -> Vec<crate::admin::failures::FailedCall> {
        self.failed.recent()
    }

    /// Whether callers must send an API key.
    pub fn requires_auth(&self) -> bool {
        self.key_store().required()
    }

    /// Refuses new calls from now on (graceful shutdown).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// How many calls are in flight.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }

    /// The admit stage: authenticates a call, checks that its key may call
    /// `method`, and admits it under the in-flight limit.
    pub fn admit<T>(&self, method: &'static str, request: &Request<T>) -> Result<Admission, Error> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        let subjects = crate::tls::peer_subjects(request);
        let key = self.key_store().authenticate(request.metadata(), &subjects)?;
        if let Some(k) = &key {
            k.allow_rpc(method)?;
        }
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded {
                limit: self.max_in_flight,
            })?;
        let deadline = grpc_timeout(request.metadata())
            .map(|d| Instant::now() + d.saturating_sub((d / 10).clamp(DEADLINE_MARGIN_MIN, DEADLINE_MARGIN_MAX)));
        metrics::global().in_flight.inc();
        Ok(Admission {
            key,
            deadline,
            _permit: permit,
        })
    }

    /// Every target.
    pub fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.targets.values()
    }

    /// The target a request names (`""` is the default target).
    pub fn target(&self, name: &str) -> Result<&Arc<Target>, Error> {
        plan::target(&self.targets, name)
    }

    /// Validates and encodes one operation without sending it (no I/O).
    pub fn encode(&self, op: Operation<'_>) -> Result<Plan, Error> {
        plan::plan(&self.targets, &self.limits, Prefix::Root, op)
    }
}
