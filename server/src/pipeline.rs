//! One path for every operation: admit → plan → reserve → send → settle.
//!
//! A call is admitted by [`Gateway::admit`]; then [`run`] takes its
//! operations (one for a unary call, a batch's items for `BatchEmit`)
//! through the same stages:
//!
//! 1. **plan**: each operation is validated and encoded ([`crate::plan`]),
//!    and checked against the key's target/namespace scope; an atomic batch
//!    stops here if any item is invalid; the key's rate budget is taken for
//!    the valid items.
//! 2. **reserve**: the idempotency keys of every item, one pipelined round
//!    trip per target; a key seen before answers its item from the first
//!    result, a key repeated within the call answers as its first item.
//! 3. **send**: one pipeline per target, the targets concurrently, bounded
//!    by the caller's deadline (on one Redis server a keyed item's commands
//!    and its idempotency record go in one script).
//! 4. **settle**: each item's result; idempotency records stored for what
//!    was sent and released for what failed (one round trip per target);
//!    metrics.
//!
//! Per-item state lives in one [`Item`]. Operations that wait for the
//! servers' answers add a stage after send that gathers them; they reuse
//! admit, plan and send unchanged.

use std::{collections::HashMap, sync::Arc, time::Instant};

use crate::{
    error::{Error, Violation, Violations},
    gateway::{Admission, Gateway},
    idempotency::{self, Key, Reservation},
    plan::{self, Operation, Plan},
    target::{Reply, Target},
    validate::Prefix,
};

/// What an operation that was sent (or answered from an earlier call)
/// returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Redis's reply (receivers, stream entry id).
    pub reply: Reply,
    /// Whether the reply is an earlier call's, for the same idempotency key.
    pub duplicate: bool,
}

/// One operation of a call on its way through the stages.
#[derive(Debug)]
struct Item<'r> {
    /// Where the operation's fields sit in the request, for errors.
    prefix: Prefix,
    /// The caller's idempotency key (empty: none).
    idempotency_key: &'r str,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// Planned, not sent yet; `record` is its reserved idempotency record.
    Ready { plan: Plan, record: Option<String> },
    /// Its idempotency key repeats that of this earlier item of the call.
    RepeatOf(usize),
    /// Answered.
    Done(Result<Sent, Error>),
}

impl Item<'_> {
    fn plan(&self) -> Option<&Plan> {
        match &self.stage {
            Stage::Ready { plan, .. } => Some(plan),
            _ => None,
        }
    }
}

/// An operation of a call: where its fields sit, and the operation (`Err`
/// when the item names none).
pub type Input<'r> = (Prefix, Result<Operation<'r>, Error>);

/// Runs a call's operations through every stage; returns each one's result
/// in order. The call fails as a whole when the key's rate budget or the
/// deadline refuses it, when `atomic` and any item is invalid, or when
/// nothing could be sent because Redis is down (so that the caller retries
/// the whole call).
pub async fn run(
    gw: &Gateway,
    adm: &Admission,
    inputs: Vec<Input<'_>>,
    atomic: bool,
) -> Result<Vec<Result<Sent, Error>>, Error> {
    let mut items = plan_all(gw, adm, inputs);
    if atomic {
        reject_if_any_invalid(&items, gw.limits.max_violations)?;
    }
    adm.take(items.iter().filter(|i| i.plan().is_some()).count())?;
    adm.check_deadline()?;
    let redis_down = reserve(gw, adm, &mut items).await;
    let redis_down = send(gw, adm, &mut items).await.or(redis_down);
    settle(items, redis_down)
}

/// The plan stage: validate, encode, check the key's scope.
fn plan_all<'r>(gw: &Gateway, adm: &Admission, inputs: Vec<Input<'r>>) -> Vec<Item<'r>> {
    inputs
        .into_iter()
        .map(|(prefix, op)| {
            let idempotency_key = op.as_ref().map_or("", Operation::idempotency_key);
            let planned = op
                .and_then(|op| plan::plan(&gw.targets, &gw.limits, prefix, op))
                .and_then(|p| adm.allow(&p).map(|()| p));
            // Idempotency records live in Redis, which an AMQP target lacks.
            let planned = planned.and_then(|p| match p.target.is_amqp() && !idempotency_key.is_empty() {
                true => Err(p.target.needs_redis("an idempotency key")),
                false => Ok(p),
            });
            let stage = match planned {
                Ok(plan) => Stage::Ready { plan, record: None },
                Err(e) => Stage::Done(Err(e)),
            };
            Item {
                prefix,
                idempotency_key,
                stage,
            }
        })
        .collect()
}

/// Items grouped by target, in first-seen order, with their indices.
fn by_target(items: &[Item<'_>], mut select: impl FnMut(&Item<'_>) -> bool) -> Vec<(Arc<Target>, Vec<usize>)> {
    let mut groups: Vec<(Arc<Target>, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(plan) = item.plan() else { continue };
        if !select(item) {
            continue;
        }
        match groups.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &plan.target)) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((Arc::clone(&plan.target), vec![i])),
        }
    }
    groups
}

/// The reserve stage: records every item's idempotency key, one round trip
/// per target, the targets concurrently. Returns a Redis error if one
/// refused a whole reservation.
async fn reserve(gw: &Gateway, adm: &Admission, items: &mut [Item<'_>]) -> Option<Error> {
    if items.iter().all(|i| i.idempotency_key.is_empty()) {
        return None;
    }
    // A key repeated within the call is a duplicate of its first item here,
    // answered once that one is settled.
    let mut first_with_key: HashMap<String, usize> = HashMap::new();
    let mut keys: Vec<Option<Key>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter_mut().enumerate() {
        let key = match item.plan() {
            Some(plan) if !item.idempotency_key.is_empty() => {
                let redis_key = idempotency::redis_key(adm.key_id(), &plan.target.name, item.idempotency_key);
                if let Some(&first) = first_with_key.get(&redis_key) {
                    item.stage = Stage::RepeatOf(first);
                    None
                } else {
                    first_with_key.insert(redis_key.clone(), i);
                    Some(Key {
                        key: item.idempotency_key.to_owned(),
                        redis_key,
                    })
                }
            }
            _ => None,
        };
        keys.push(key);
    }
    let groups = by_target(items, |i| !i.idempotency_key.is_empty());
    let window = gw.idempotency_window;
    let reservations = futures_util::future::join_all(groups.iter().map(|(target, indices)| {
        let group_keys: Vec<Key> = indices.iter().filter_map(|&i| keys[i].clone()).collect();
        async move { idempotency::reserve_all(target, &group_keys, window).await }
    }))
    .await;
    let mut redis_down = None;
    for ((target, indices), found) in groups.iter().zip(reservations) {
        let indices = indices.iter().copied().filter(|&i| keys[i].is_some());
        match found {
            Ok(found) => {
                for (i, reservation) in indices.zip(found) {
                    let item = &mut items[i];
                    match reservation {
                        Ok(Reservation::Fresh(k)) => {
                            if let Stage::Ready { record, .. } = &mut item.stage {
                                *record = Some(k);
                            }
                        }
                        Ok(Reservation::Duplicate(reply)) => {
                            count_duplicate(target);
                            item.stage = Stage::Done(Ok(Sent { reply, duplicate: true }));
                        }
                        Err(e) => item.stage = Stage::Done(Err(e)),
                    }
                }
            }
            Err(e) => {
                for i in indices {
                    items[i].stage = Stage::Done(Err(e.clone()));
                }
                redis_down.get_or_insert(e);
            }
        }
    }
    redis_down
}

/// The send stage: one pipeline per target, items in call order, the
/// targets concurrently, each bounded by the caller's deadline; then the
/// idempotency records of what was sent are stored and those of what failed
/// released. Returns the first Redis error when nothing at all was sent.
async fn send(gw: &Gateway, adm: &Admission, items: &mut [Item<'_>]) -> Option<Error> {
    let window = gw.idempotency_window;
    let groups = by_target(items, |_| true);
    if groups.is_empty() {
        return None;
    }
    let sends = groups.iter().map(|(target, indices)| {
        let messages: Vec<(&crate::codec::Message, Option<&str>)> = indices
            .iter()
            .filter_map(|&i| match &items[i].stage {
                Stage::Ready { plan, record } => Some((&plan.message, record.as_deref())),
                _ => None,
            })
            .collect();
        async move {
            let started = Instant::now();
            let sent = match adm.deadline {
                Some(d) => tokio::time::timeout_at(d.into(), target.send_all_recorded(&messages, window))
                    .await
                    .unwrap_or(Err(Error::DeadlineExceededWhilePublishing)),
                None => target.send_all_recorded(&messages, window).await,
            };
            observe_send(target, started, sent.as_deref());
            sent
        }
    });
    let results = futures_util::future::join_all(sends).await;

    let mut published = 0usize;
    let mut first_error = None;
    let mut records = Vec::with_capacity(groups.len());
    for ((target, indices), sent) in groups.iter().zip(results) {
        let mut stored: Vec<(String, Reply)> = Vec::new();
        let mut released: Vec<String> = Vec::new();
        match sent {
            Ok(replies) => {
                for (&i, (reply, recorded)) in indices.iter().zip(replies) {
                    published += 1;
                    let sent = Sent {
                        reply,
                        duplicate: false,
                    };
                    let old = std::mem::replace(&mut items[i].stage, Stage::Done(Ok(sent.clone())));
                    if let Stage::Ready { record: Some(k), .. } = old
                        && !recorded
                    {
                        stored.push((k, sent.reply));
                    }
                }
            }
            Err(e) => {
                for &i in indices {
                    let old = std::mem::replace(&mut items[i].stage, Stage::Done(Err(e.clone())));
                    if let Stage::Ready { record: Some(k), .. } = old {
                        released.push(k);
                    }
                }
                first_error.get_or_insert(e);
            }
        }
        records.push((Arc::clone(target), stored, released));
    }
    futures_util::future::join_all(records.iter().map(|(target, stored, released)| async move {
        let stored: Vec<(&str, &Reply)> = stored.iter().map(|(k, r)| (k.as_str(), r)).collect();
        let released: Vec<&str> = released.iter().map(String::as_str).collect();
        tokio::join!(
            idempotency::complete_all(target, &stored, window),
            idempotency::release_all(target, &released)
        );
    }))
    .await;
    if published == 0 { first_error } else { None }
}

/// The settle stage: every item's result, repeats answered as their first
/// item. Fails the call when Redis refused everything that was tried and
/// nothing was sent.
fn settle(items: Vec<Item<'_>>, redis_down: Option<Error>) -> Result<Vec<Result<Sent, Error>>, Error> {
    let mut results: Vec<Result<Sent, Error>> = Vec::with_capacity(items.len());
    for item in items {
        let result = match item.stage {
            Stage::Done(r) => r,
            Stage::RepeatOf(first) => match &results[first] {
                Ok(sent) => Ok(Sent {
                    reply: sent.reply.clone(),
                    duplicate: true,
                }),
                Err(e) => Err(e.clone()),
            },
            // The send stage answers every planned item; this is never
            // reached.
            Stage::Ready { plan, .. } => Err(Error::Unavailable {
                target: plan.target.name.clone(),
                reason: "not sent".to_owned(),
            }),
        };
        results.push(result);
    }
    if let Some(e) = redis_down
        && !results.iter().any(|r| matches!(r, Ok(Sent { duplicate: false, .. })))
    {
        return Err(e);
    }
    Ok(results)
}

/// In an atomic call any invalid item rejects the call: every violation of
/// every item is reported at once (the first `max_violations` listed, the
/// others counted); unknown targets alone are NOT_FOUND.
fn reject_if_any_invalid(items: &[Item<'_>], max_violations: usize) -> Result<(), Error> {
    let mut violations = Violations::new(max_violations);
    let mut only_targets = true;
    let mut unknown = None;
    let mut unsupported = None;
    for (i, item) in items.iter().enumerate() {
        let Stage::Done(Err(e)) = &item.stage else { continue };
        match e {
            Error::InvalidArgument(v) => {
                only_targets = false;
                violations.append(v.clone());
            }
            Error::UnknownTarget(name) => {
                violations.push(Violation::new(item.prefix.path("target"), e.to_string()));
                unknown.get_or_insert_with(|| name.clone());
            }
            Error::Unsupported { .. } => {
                unsupported.get_or_insert_with(|| e.to_string());
            }
            Error::PermissionDenied(m) => return Err(Error::PermissionDenied(format!("items[{i}]: {m}"))),
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

/// Records a Redis round trip: latency, errors, and per message the
/// published event and its receivers.
/// `result` holds each message's reply (and whether its idempotency record
/// was stored with it).
fn observe_send(target: &Target, started: Instant, result: Result<&[(Reply, bool)], &Error>) {
    let m = &target.metrics;
    m.redis_latency.observe(started.elapsed().as_secs_f64());
    match result {
        Ok(replies) => {
            m.events_published.inc_by(replies.len() as u64);
            for (r, _) in replies {
                #[allow(clippy::cast_precision_loss)]
                m.publish_receivers.observe(r.receivers as f64);
            }
        }
        Err(_) => {
            m.redis_errors.inc();
        }
    }
}

fn count_duplicate(target: &Target) {
    target.metrics.idempotent_duplicates.inc();
}
