//! The `emitgate.v1.EmitterService` implementation: validate → encode →
//! publish. Validation lives in [`crate::validate`], encoding in the
//! target's [`Dialect`](crate::codec::Dialect), Redis in [`crate::target`].

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::{
    admin::FailedCalls,
    auth::{ApiKey, KeyStore},
    codec::{CodecError, Event, Flags, Message, Selector},
    config::{Config, DEFAULT_TARGET, Limits},
    error::{Error, Limit, Violation, Violations},
    idempotency::{self, Reservation},
    metrics,
    pb::{self, emitter_service_server::EmitterService},
    target::{Reply, Target},
    validate::{Checker, Prefix},
};

/// One operation of the API, borrowed from its request.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// An Emit to rooms.
    Emit(&'a pb::EmitRequest),
    /// A Broadcast to a namespace.
    Broadcast(&'a pb::BroadcastRequest),
    /// A SocketsJoin request.
    SocketsJoin(&'a pb::SocketsJoinRequest),
    /// A SocketsLeave request.
    SocketsLeave(&'a pb::SocketsLeaveRequest),
    /// A DisconnectSockets request.
    DisconnectSockets(&'a pb::DisconnectSocketsRequest),
    /// A ServerSideEmit request.
    ServerSideEmit(&'a pb::ServerSideEmitRequest),
}

impl Operation<'_> {
    /// The `idempotency_key` field of the request.
    pub fn idempotency_key(&self) -> &str {
        match self {
            Operation::Emit(r) => &r.idempotency_key,
            Operation::Broadcast(r) => &r.idempotency_key,
            Operation::SocketsJoin(r) => &r.idempotency_key,
            Operation::SocketsLeave(r) => &r.idempotency_key,
            Operation::DisconnectSockets(r) => &r.idempotency_key,
            Operation::ServerSideEmit(r) => &r.idempotency_key,
        }
    }

    /// The `target` field of the request.
    pub fn target(&self) -> &str {
        match self {
            Operation::Emit(r) => &r.target,
            Operation::Broadcast(r) => &r.target,
            Operation::SocketsJoin(r) => &r.target,
            Operation::SocketsLeave(r) => &r.target,
            Operation::DisconnectSockets(r) => &r.target,
            Operation::ServerSideEmit(r) => &r.target,
        }
    }
}

/// A validated, encoded operation: what is sent, and where.
#[derive(Debug)]
pub struct Encoded {
    /// The target it is sent to.
    pub target: Arc<Target>,
    /// The normalized namespace.
    pub namespace: String,
    /// The Redis message.
    pub message: Message,
}

/// The messages of one batch that go to one target, with their item indices.
struct TargetBatch {
    target: Arc<Target>,
    indices: Vec<usize>,
    messages: Vec<Message>,
}

/// The gRPC service: targets, limits and keys, shared by every call.
#[derive(Debug, Clone)]
pub struct Gateway {
    targets: Arc<HashMap<String, Arc<Target>>>,
    limits: Arc<Limits>,
    keys: Arc<RwLock<Arc<KeyStore>>>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    draining: Arc<AtomicBool>,
    idempotency_window: Duration,
    failed: Arc<FailedCalls>,
    feedback: Arc<crate::feedback::Feedback>,
}

/// A call that passed authentication and admission control.
struct Admission {
    key: Option<Arc<ApiKey>>,
    deadline: Option<Instant>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        metrics::global().in_flight.dec();
    }
}

impl Admission {
    /// The key id that scopes idempotency keys (`-` without authentication).
    fn key_id(&self) -> &str {
        self.key.as_ref().map_or("-", |k| k.id.as_str())
    }

    /// Fails when the caller's deadline has passed: work past its deadline
    /// is not started.
    fn check_deadline(&self) -> Result<(), Error> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::DeadlineExceeded),
            _ => Ok(()),
        }
    }

    /// Checks the key's scope for an encoded operation.
    fn allow(&self, e: &Encoded) -> Result<(), Error> {
        match &self.key {
            Some(k) => k.allow(&e.target.name, &e.namespace),
            None => Ok(()),
        }
    }

    /// What a request/response call needs from the service.
    fn feedback<'a>(&'a self, gw: &'a Gateway) -> crate::feedback::Ctx<'a> {
        crate::feedback::Ctx {
            targets: &gw.targets,
            limits: &gw.limits,
            key: self.key.as_deref(),
            deadline: self.deadline,
        }
    }

    /// Takes `events` from the key's rate budget.
    fn take(&self, events: usize) -> Result<(), Error> {
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
    /// Builds the service and every target's Redis pool.
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut targets = HashMap::new();
        for (name, t) in &config.targets {
            let target = Target::new(t, config).map_err(|e| format!("target {name:?}: {e}"))?;
            targets.insert(name.clone(), Arc::new(target));
        }
        let keys = KeyStore::new(&config.keys).map_err(|(setting, message)| format!("{setting}: {message}"))?;
        Ok(Self {
            targets: Arc::new(targets),
            limits: Arc::new(config.limits.clone()),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            max_in_flight: config.max_in_flight,
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

    /// Answers a call: records it in the failed calls when it failed, then
    /// [`answer`]s it.
    fn finish<T>(
        &self,
        method: &'static str,
        started: Instant,
        result: Result<T, Error>,
    ) -> Result<Response<T>, Status> {
        if let Err(e) = &result {
            self.failed.record(method, e);
        }
        answer(method, started, result)
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

    /// Authenticates a call and admits it under the in-flight limit.
    fn admit<T>(&self, method: &'static str, request: &Request<T>) -> Result<Admission, Error> {
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

    /// Every target, by name.
    pub fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.targets.values()
    }

    fn target(&self, name: &str) -> Result<&Arc<Target>, Error> {
        let name = if name.is_empty() { DEFAULT_TARGET } else { name };
        self.targets
            .get(name)
            .ok_or_else(|| Error::UnknownTarget(name.to_owned()))
    }

    /// Validates and encodes one operation without sending it (no I/O).
    pub fn encode(&self, op: Operation<'_>) -> Result<Encoded, Error> {
        self.encode_at(Prefix::Root, op)
    }

    /// [`encode`](Self::encode) with field paths under `prefix`. Field
    /// violations are reported before an unknown target.
    fn encode_at(&self, prefix: Prefix, op: Operation<'_>) -> Result<Encoded, Error> {
        let mut c = Checker::new(&self.limits, prefix);
        let message = match op {
            Operation::Emit(r) => {
                let nsp = c.namespace(&r.namespace);
                c.event("event", &r.event, false);
                let rooms = c.rooms("rooms", &r.rooms, true);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let args = c.args(&r.args);
                let target = checked_target(self, &mut c, op)?;
                let flags = r.flags.as_ref().map_or_else(Flags::default, flags);
                let event = Event {
                    nsp: &nsp,
                    rooms: &rooms,
                    except: &except,
                    event: &r.event,
                    args: &args,
                    flags,
                };
                (target, nsp.clone(), target.dialect.event(&event))
            }
            Operation::Broadcast(r) => {
                let nsp = c.namespace(&r.namespace);
                c.event("event", &r.event, false);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let args = c.args(&r.args);
                let target = checked_target(self, &mut c, op)?;
                let flags = r.flags.as_ref().map_or_else(Flags::default, flags);
                let event = Event {
                    nsp: &nsp,
                    rooms: &[],
                    except: &except,
                    event: &r.event,
                    args: &args,
                    flags,
                };
                (target, nsp.clone(), target.dialect.event(&event))
            }
            Operation::SocketsJoin(r) => {
                let nsp = c.namespace(&r.namespace);
                let rooms = c.rooms("rooms", &r.rooms, false);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let join = c.rooms("join_rooms", &r.join_rooms, true);
                let target = checked_target(self, &mut c, op)?;
                (
                    target,
                    nsp.clone(),
                    target.dialect.sockets_join(
                        &nsp,
                        Selector {
                            rooms: &rooms,
                            except: &except,
                        },
                        &join,
                    ),
                )
            }
            Operation::SocketsLeave(r) => {
                let nsp = c.namespace(&r.namespace);
                let rooms = c.rooms("rooms", &r.rooms, false);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let leave = c.rooms("leave_rooms", &r.leave_rooms, true);
                let target = checked_target(self, &mut c, op)?;
                (
                    target,
                    nsp.clone(),
                    target.dialect.sockets_leave(
                        &nsp,
                        Selector {
                            rooms: &rooms,
                            except: &except,
                        },
                        &leave,
                    ),
                )
            }
            Operation::DisconnectSockets(r) => {
                let nsp = c.namespace(&r.namespace);
                let rooms = c.rooms("rooms", &r.rooms, false);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let target = checked_target(self, &mut c, op)?;
                (
                    target,
                    nsp.clone(),
                    target.dialect.disconnect_sockets(
                        &nsp,
                        Selector {
                            rooms: &rooms,
                            except: &except,
                        },
                        r.close,
                    ),
                )
            }
            Operation::ServerSideEmit(r) => {
                let nsp = c.namespace(&r.namespace);
                c.event("event", &r.event, true);
                let args = c.args(&r.args);
                let target = checked_target(self, &mut c, op)?;
                (
                    target,
                    nsp.clone(),
                    target.dialect.server_side_emit(&nsp, &r.event, &args),
                )
            }
        };
        let (target, namespace, encoded) = message;
        let message = match encoded {
            Ok(m) => m,
            Err(CodecError::Invalid { field, description }) => {
                c.report(&field, description);
                return Err(Error::InvalidArgument(c.take_violations()));
            }
            Err(CodecError::Unsupported(what)) => {
                return Err(Error::Unsupported {
                    target: target.name.clone(),
                    dialect: target.dialect.name(),
                    what,
                });
            }
        };
        c.packet_size(message.parts().iter().map(|p| p.payload().len()).max().unwrap_or(0));
        c.finish().map_err(Error::InvalidArgument)?;
        Ok(Encoded {
            target: Arc::clone(target),
            namespace,
            message,
        })
    }

    /// Validates, encodes and sends one operation for an admitted call;
    /// returns the reply and whether it repeats an earlier call's.
    async fn run(&self, adm: &Admission, op: Operation<'_>) -> Result<(Reply, bool), Error> {
        let e = self.encode(op)?;
        adm.allow(&e)?;
        adm.take(1)?;
        adm.check_deadline()?;
        let key = op.idempotency_key();
        if key.is_empty() {
            return Ok((self.send(adm, &e.target, &e.message).await?, false));
        }
        let redis_key = idempotency::redis_key(adm.key_id(), &e.target.name, key);
        match idempotency::reserve(&e.target, key, redis_key, self.idempotency_window).await? {
            Reservation::Duplicate(reply) => {
                count_duplicate(&e.target);
                Ok((reply, true))
            }
            Reservation::Fresh(redis_key) => match self.send(adm, &e.target, &e.message).await {
                Ok(reply) => {
                    if let Err(err) = idempotency::complete(&e.target, &redis_key, &reply).await {
                        tracing::warn!(error = %err, "published, but could not store the idempotency result");
                    }
                    Ok((reply, false))
                }
                Err(err) => {
                    idempotency::release(&e.target, &redis_key).await;
                    Err(err)
                }
            },
        }
    }

    /// Sends a message, bounded by the caller's deadline as well as the
    /// Redis timeout.
    async fn send(&self, adm: &Admission, target: &Target, message: &Message) -> Result<Reply, Error> {
        let started = Instant::now();
        let result = match adm.deadline {
            Some(d) => tokio::time::timeout_at(d.into(), target.send(message))
                .await
                .unwrap_or(Err(Error::DeadlineExceededWhilePublishing)),
            None => target.send(message).await,
        };
        observe_send(target, started, result.as_ref().map(std::slice::from_ref));
        result
    }

    async fn batch(&self, adm: &Admission, req: pb::BatchEmitRequest) -> Result<pb::BatchEmitResponse, Error> {
        let max = self.limits.max_batch_items;
        #[allow(clippy::cast_precision_loss)]
        metrics::global().batch_items.observe(req.items.len() as f64);
        if req.items.len() > max {
            return Err(Error::InvalidArgument(Violations::one(Violation::over(
                "items",
                format!("{} items, over the limit max_batch_items = {max}", req.items.len()),
                Limit::new("max_batch_items", max),
            ))));
        }
        let mut encoded: Vec<Result<Encoded, Error>> = req
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.op {
                Some(pb::batch_item::Op::Emit(e)) => self.encode_at(Prefix::Item(i, "emit"), Operation::Emit(e)),
                Some(pb::batch_item::Op::Broadcast(b)) => {
                    self.encode_at(Prefix::Item(i, "broadcast"), Operation::Broadcast(b))
                }
                None => Err(Error::InvalidArgument(Violations::one(Violation::new(
                    format!("items[{i}]"),
                    "exactly one of emit or broadcast must be set",
                )))),
            })
            .collect();
        for e in &mut encoded {
            if let Ok(x) = e
                && let Err(denied) = adm.allow(x)
            {
                *e = Err(denied);
            }
        }

        if req.atomic {
            reject_if_any_invalid(&req.items, &encoded, self.limits.max_violations)?;
        }
        adm.take(encoded.iter().filter(|e| e.is_ok()).count())?;
        adm.check_deadline()?;

        let mut results: Vec<pb::ItemResult> = encoded
            .iter()
            .map(|p| match p {
                Ok(_) => pb::ItemResult::default(),
                Err(e) => item_error(e),
            })
            .collect();
        // From here on an item is either still to be sent, or already
        // answered in `results`.
        let mut to_send: Vec<Option<Encoded>> = encoded.into_iter().map(Result::ok).collect();

        // Idempotency keys: duplicates are answered from their first result
        // and left out of the pipeline. A key repeated within this batch is a
        // duplicate of its first item here, answered once that one is sent.
        let mut reserved: Vec<Option<String>> = vec![None; to_send.len()];
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut first_with_key: HashMap<String, usize> = HashMap::new();
        for (i, item) in to_send.iter_mut().enumerate() {
            let Some(x) = item else { continue };
            let key = req.items[i].op.as_ref().map_or("", |op| match op {
                pb::batch_item::Op::Emit(r) => r.idempotency_key.as_str(),
                pb::batch_item::Op::Broadcast(r) => r.idempotency_key.as_str(),
            });
            if key.is_empty() {
                continue;
            }
            let redis_key = idempotency::redis_key(adm.key_id(), &x.target.name, key);
            if let Some(&first) = first_with_key.get(&redis_key) {
                repeats.push((i, first));
                *item = None;
                continue;
            }
            first_with_key.insert(redis_key.clone(), i);
            match idempotency::reserve(&x.target, key, redis_key, self.idempotency_window).await {
                Ok(Reservation::Fresh(k)) => reserved[i] = Some(k),
                Ok(Reservation::Duplicate(reply)) => {
                    count_duplicate(&x.target);
                    results[i] = pb::ItemResult {
                        receivers: reply.receivers,
                        stream_id: reply.stream_id.unwrap_or_default(),
                        duplicate: true,
                        ..Default::default()
                    };
                    *item = None;
                }
                Err(err) => {
                    results[i] = item_error(&err);
                    *item = None;
                }
            }
        }

        // One pipeline per target, items in request order.
        let mut groups: Vec<TargetBatch> = Vec::new();
        for (i, p) in to_send.into_iter().enumerate() {
            let Some(p) = p else { continue };
            let slot = match groups.iter().position(|g| Arc::ptr_eq(&g.target, &p.target)) {
                Some(slot) => slot,
                None => {
                    groups.push(TargetBatch {
                        target: Arc::clone(&p.target),
                        indices: Vec::new(),
                        messages: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[slot].indices.push(i);
            groups[slot].messages.push(p.message);
        }
        let mut published = 0usize;
        let mut first_redis_error = None;
        for TargetBatch {
            target,
            indices,
            messages,
        } in &groups
        {
            let refs: Vec<&Message> = messages.iter().collect();
            let started = Instant::now();
            let sent = match adm.deadline {
                Some(d) => tokio::time::timeout_at(d.into(), target.send_all(&refs))
                    .await
                    .unwrap_or(Err(Error::DeadlineExceededWhilePublishing)),
                None => target.send_all(&refs).await,
            };
            observe_send(target, started, sent.as_deref());
            match sent {
                Ok(replies) => {
                    for (&i, reply) in indices.iter().zip(replies) {
                        results[i].receivers = reply.receivers;
                        results[i].stream_id = reply.stream_id.clone().unwrap_or_default();
                        published += 1;
                        if let Some(k) = &reserved[i]
                            && let Err(err) = idempotency::complete(target, k, &reply).await
                        {
                            tracing::warn!(error = %err, "published, but could not store the idempotency result");
                        }
                    }
                }
                Err(e) => {
                    for &i in indices {
                        results[i] = item_error(&e);
                        if let Some(k) = &reserved[i] {
                            idempotency::release(target, k).await;
                        }
                    }
                    first_redis_error.get_or_insert(e);
                }
            }
        }
        for (i, first) in repeats {
            results[i] = results[first].clone();
            if results[i].code == 0 {
                results[i].duplicate = true;
            }
        }
        // Nothing reached Redis because it is down: fail the call so that the
        // caller retries it as a whole.
        if let Some(e) = first_redis_error
            && published == 0
        {
            return Err(e);
        }
        let failed = results.iter().filter(|r| r.code != 0).count();
        Ok(pb::BatchEmitResponse {
            receivers: results.iter().map(|r| r.receivers).sum(),
            results,
            published: u32::try_from(published).unwrap_or(u32::MAX),
            failed: u32::try_from(failed).unwrap_or(u32::MAX),
        })
    }
}

fn flags(f: &pb::EmitFlags) -> Flags {
    Flags {
        volatile: f.volatile,
        compress: f.compress,
    }
}

/// Ends validation of the request's own fields: their violations first,
/// then the target lookup.
fn checked_target<'g>(gw: &'g Gateway, c: &mut Checker<'_>, op: Operation<'_>) -> Result<&'g Arc<Target>, Error> {
    if c.has_violations() {
        return Err(Error::InvalidArgument(c.take_violations()));
    }
    gw.target(op.target())
}

/// In an atomic batch any invalid item rejects the call: every violation
/// of every item is reported at once (the first `max_violations` listed,
/// the others counted); unknown targets alone are NOT_FOUND.
fn reject_if_any_invalid(
    items: &[pb::BatchItem],
    encoded: &[Result<Encoded, Error>],
    max_violations: usize,
) -> Result<(), Error> {
    let mut violations = Violations::new(max_violations);
    let mut only_targets = true;
    let mut unknown = None;
    let mut unsupported = None;
    for (i, p) in encoded.iter().enumerate() {
        match p {
            Err(Error::InvalidArgument(v)) => {
                only_targets = false;
                violations.append(v.clone());
            }
            Err(e @ Error::UnknownTarget(name)) => {
                let op = match items[i].op {
                    Some(pb::batch_item::Op::Broadcast(_)) => "broadcast",
                    _ => "emit",
                };
                violations.push(Violation::new(format!("items[{i}].{op}.target"), e.to_string()));
                unknown.get_or_insert_with(|| name.clone());
            }
            Err(e @ Error::Unsupported { .. }) => {
                unsupported.get_or_insert_with(|| e.to_string());
            }
            Err(Error::PermissionDenied(m)) => return Err(Error::PermissionDenied(format!("items[{i}]: {m}"))),
            _ => {}
        }
    }
    if let Some(name) = unknown
        && only_targets
    {
        return Err(Error::UnknownTarget(name));
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    match unsupported {
        Some(what) => Err(Error::Unsupported {
            target: String::new(),
            dialect: "batch",
            what,
        }),
        None => Ok(()),
    }
}

fn item_error(e: &Error) -> pb::ItemResult {
    let violations = match e {
        Error::InvalidArgument(v) => v
            .bounded()
            .into_iter()
            .map(|v| pb::FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
        _ => Vec::new(),
    };
    pb::ItemResult {
        code: e.code() as i32,
        message: e.message(),
        violations,
        ..Default::default()
    }
}

/// Records a Redis round trip: latency, errors, and per message the
/// published event and its receivers.
fn observe_send(target: &Target, started: Instant, result: Result<&[Reply], &Error>) {
    let m = metrics::global();
    let labels = metrics::target_labels(&target.name, target.dialect.name());
    m.redis_latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(replies) => {
            m.events_published.get_or_create(&labels).inc_by(replies.len() as u64);
            let hist = m.publish_receivers.get_or_create(&labels);
            for r in replies {
                #[allow(clippy::cast_precision_loss)]
                hist.observe(r.receivers as f64);
            }
        }
        Err(_) => {
            m.redis_errors.get_or_create(&labels).inc();
        }
    }
}

fn count_duplicate(target: &Target) {
    let labels = metrics::target_labels(&target.name, target.dialect.name());
    metrics::global().idempotent_duplicates.get_or_create(&labels).inc();
}

/// A gRPC code's name as go-grpc-prometheus writes it (`OK`,
/// `InvalidArgument`, …), so existing dashboards and alerts match.
pub(crate) fn code_name(code: tonic::Code) -> String {
    match code {
        tonic::Code::Ok => "OK".to_owned(),
        tonic::Code::Cancelled => "Canceled".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Turns a call's outcome into a gRPC answer: metrics, and one log line per
/// failed call (never with secrets or payloads).
fn answer<T>(method: &'static str, started: Instant, result: Result<T, Error>) -> Result<Response<T>, Status> {
    let m = metrics::global();
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(e) => e.code(),
    };
    m.handled
        .get_or_create(&metrics::HandledLabels {
            grpc_service: crate::SERVICE_NAME,
            grpc_method: method,
            grpc_code: code_name(code),
        })
        .inc();
    m.handling
        .get_or_create(&metrics::RpcLabels {
            grpc_service: crate::SERVICE_NAME,
            grpc_method: method,
        })
        .observe(started.elapsed().as_secs_f64());
    let auth_failure = match &result {
        Err(Error::Unauthenticated(_)) => Some("unauthenticated"),
        Err(Error::PermissionDenied(_)) => Some("permission_denied"),
        _ => None,
    };
    if let Some(reason) = auth_failure {
        m.auth_failures.get_or_create(&metrics::ReasonLabels { reason }).inc();
    }
    if let Err(Error::RateLimited { key, .. }) = &result {
        m.rate_limited
            .get_or_create(&metrics::KeyLabels { key: key.clone() })
            .inc();
    }
    match result {
        Ok(v) => Ok(Response::new(v)),
        Err(e) => {
            match e.code() {
                tonic::Code::Unavailable => {
                    tracing::warn!(method, code = ?e.code(), error = %e.message(), "call failed")
                }
                _ => tracing::info!(method, code = ?e.code(), error = %e.message(), "call failed"),
            }
            Err(e.into())
        }
    }
}

/// Admits, runs and answers one unary call, with its log line on failure.
macro_rules! unary {
    ($self:ident, $method:literal, $request:ident, $op:ident, $response:ident) => {{
        let started = Instant::now();
        let result = match $self.admit($method, &$request) {
            Ok(adm) => $self.run(&adm, Operation::$op($request.get_ref())).await,
            Err(e) => Err(e),
        };
        let result = result.map(|(reply, duplicate)| pb::$response {
            receivers: reply.receivers,
            stream_id: reply.stream_id.unwrap_or_default(),
            duplicate,
        });
        $self.finish($method, started, result)
    }};
}

/// Admits a request/response call and hands it to [`crate::feedback`].
macro_rules! feedback {
    ($self:ident, $method:literal, $request:ident, $call:ident) => {{
        let started = Instant::now();
        let result = match $self.admit($method, &$request) {
            Ok(adm) => $self.feedback.$call(adm.feedback($self), $request.get_ref()).await,
            Err(e) => Err(e),
        };
        $self.finish($method, started, result)
    }};
}

#[tonic::async_trait]
impl EmitterService for Gateway {
    async fn emit(&self, request: Request<pb::EmitRequest>) -> Result<Response<pb::EmitResponse>, Status> {
        unary!(self, "Emit", request, Emit, EmitResponse)
    }

    async fn broadcast(
        &self,
        request: Request<pb::BroadcastRequest>,
    ) -> Result<Response<pb::BroadcastResponse>, Status> {
        unary!(self, "Broadcast", request, Broadcast, BroadcastResponse)
    }

    async fn batch_emit(
        &self,
        request: Request<pb::BatchEmitRequest>,
    ) -> Result<Response<pb::BatchEmitResponse>, Status> {
        let started = Instant::now();
        let result = match self.admit("BatchEmit", &request) {
            Ok(adm) => self.batch(&adm, request.into_inner()).await,
            Err(e) => Err(e),
        };
        self.finish("BatchEmit", started, result)
    }

    async fn sockets_join(
        &self,
        request: Request<pb::SocketsJoinRequest>,
    ) -> Result<Response<pb::SocketsJoinResponse>, Status> {
        unary!(self, "SocketsJoin", request, SocketsJoin, SocketsJoinResponse)
    }

    async fn sockets_leave(
        &self,
        request: Request<pb::SocketsLeaveRequest>,
    ) -> Result<Response<pb::SocketsLeaveResponse>, Status> {
        unary!(self, "SocketsLeave", request, SocketsLeave, SocketsLeaveResponse)
    }

    async fn disconnect_sockets(
        &self,
        request: Request<pb::DisconnectSocketsRequest>,
    ) -> Result<Response<pb::DisconnectSocketsResponse>, Status> {
        unary!(
            self,
            "DisconnectSockets",
            request,
            DisconnectSockets,
            DisconnectSocketsResponse
        )
    }

    async fn server_side_emit(
        &self,
        request: Request<pb::ServerSideEmitRequest>,
    ) -> Result<Response<pb::ServerSideEmitResponse>, Status> {
        unary!(self, "ServerSideEmit", request, ServerSideEmit, ServerSideEmitResponse)
    }

    async fn emit_with_ack(
        &self,
        request: Request<pb::EmitWithAckRequest>,
    ) -> Result<Response<pb::EmitWithAckResponse>, Status> {
        feedback!(self, "EmitWithAck", request, emit_with_ack)
    }

    async fn fetch_sockets(
        &self,
        request: Request<pb::FetchSocketsRequest>,
    ) -> Result<Response<pb::FetchSocketsResponse>, Status> {
        feedback!(self, "FetchSockets", request, fetch_sockets)
    }

    async fn all_rooms(&self, request: Request<pb::AllRoomsRequest>) -> Result<Response<pb::AllRoomsResponse>, Status> {
        feedback!(self, "AllRooms", request, all_rooms)
    }

    async fn server_count(
        &self,
        request: Request<pb::ServerCountRequest>,
    ) -> Result<Response<pb::ServerCountResponse>, Status> {
        feedback!(self, "ServerCount", request, server_count)
    }

    async fn server_side_emit_with_ack(
        &self,
        request: Request<pb::ServerSideEmitWithAckRequest>,
    ) -> Result<Response<pb::ServerSideEmitWithAckResponse>, Status> {
        feedback!(self, "ServerSideEmitWithAck", request, server_side_emit_with_ack)
    }
}
