//! Delivery feedback: the RPCs that wait for answers from the Socket.IO
//! servers (EmitWithAck, FetchSockets, AllRooms, ServerCount,
//! ServerSideEmitWithAck).
//!
//! Each call: validate → refuse what the dialect cannot do (UNIMPLEMENTED,
//! nothing published) → subscribe the namespace's response channels
//! ([`hub`]) → register a random request id → count the servers that will
//! answer → publish → gather answers until complete, the timeout, or the
//! caller's deadline. The wire formats live in [`crate::codec::feedback`];
//! how answers are counted is explained in docs/feedback.md.
//!
//! Expected answers: on a standalone Redis, `PUBSUB NUMSUB` (or
//! `SHARDNUMSUB`) of the request channel in one MULTI/EXEC with the
//! PUBLISH / SPUBLISH (exactly the channel's subscribers that received this
//! request, without the pattern subscribers a PUBLISH reply also counts);
//! on a Redis Cluster, whose PUBLISH reply counts one node only, the sum of
//! `PUBSUB NUMSUB` / `SHARDNUMSUB` over every node, read just before
//! publishing. Completion is `>=`, so a server that joins mid-request
//! cannot turn a complete answer into a timeout.

pub mod hub;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use prost_types::value::Kind;
use rmpv::Value as Mp;
use serde::Deserialize;

use crate::{
    auth::ApiKey,
    codec::{
        Command, Event, Flags, MAX_SAFE_INTEGER, Message, Selector,
        feedback::{Answer, Channel, Op, Request, get},
    },
    config::{Config, ConfigError, DEFAULT_TARGET, Limits},
    error::{Error, Violation, Violations},
    metrics, pb,
    target::{Route, Target},
    validate::{Checker, Prefix},
};

use self::hub::{Hub, Pending};

/// The wait when a request sets no `timeout_ms`: the adapters' own default
/// (`requestsTimeout` and the ack timeout of the Node requesters).
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;

/// The longest wait a request may ask for: python-socketio's own default
/// for `call()` (60 s). Every wait holds a call slot and a pending entry.
pub const DEFAULT_MAX_TIMEOUT_MS: u32 = 60_000;

/// Most requests waiting at once, gateway-wide: a quarter of the default
/// `max_in_flight`, so waiting calls cannot take every call slot.
pub const DEFAULT_MAX_PENDING: usize = 1024;

/// Most answer bytes held by all waiting requests together: bounds the
/// gateway's memory whatever the servers send (64 MiB).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 64 << 20;

/// Most sockets (or rooms) one FetchSockets (AllRooms) returns; beyond it
/// the answer is `truncated`. 10 000 sockets with handshakes are a few MB,
/// under the usual 4 MiB client message limit only when handshakes are
/// small, so callers SHOULD narrow by room for large namespaces.
pub const DEFAULT_MAX_SOCKETS: usize = 10_000;

/// The largest integer magnitude JSON numbers hold exactly (2^53).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const SAFE_INTEGER: u64 = MAX_SAFE_INTEGER as u64;

/// The headers never returned by FetchSockets: they hold users' secrets.
const SECRET_HEADERS: [&str; 2] = ["cookie", "authorization"];

/// Settings of the request/response RPCs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The largest `timeout_ms` a request may ask for.
    pub max_timeout_ms: u32,
    /// Most requests waiting at once.
    pub max_pending: usize,
    /// Most answer bytes held by waiting requests.
    pub max_reply_bytes: usize,
    /// Most sockets / rooms returned by one call.
    pub max_sockets: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_timeout_ms: DEFAULT_MAX_TIMEOUT_MS,
            max_pending: DEFAULT_MAX_PENDING,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            max_sockets: DEFAULT_MAX_SOCKETS,
        }
    }
}

/// The command-line flags (and environment variables) of [`Settings`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FeedbackArgs {
    /// Largest timeout_ms of EmitWithAck, FetchSockets, AllRooms and ServerSideEmitWithAck [default: 60000].
    #[arg(long, env = "EMITGATE_FEEDBACK_MAX_TIMEOUT_MS", value_name = "MS")]
    pub feedback_max_timeout_ms: Option<u32>,

    /// Most requests waiting for answers at once; beyond it RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, env = "EMITGATE_FEEDBACK_MAX_PENDING", value_name = "N")]
    pub feedback_max_pending: Option<usize>,

    /// Most answer bytes held by waiting requests together; beyond it RESOURCE_EXHAUSTED [default: 67108864].
    #[arg(long, env = "EMITGATE_FEEDBACK_MAX_REPLY_BYTES", value_name = "BYTES")]
    pub feedback_max_reply_bytes: Option<usize>,

    /// Most sockets (rooms) one FetchSockets (AllRooms) returns; beyond it `truncated` [default: 10000].
    #[arg(long, env = "EMITGATE_FEEDBACK_MAX_SOCKETS", value_name = "N")]
    pub feedback_max_sockets: Option<usize>,
}

/// The `[feedback]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFeedback {
    max_timeout_ms: Option<u32>,
    max_pending: Option<usize>,
    max_reply_bytes: Option<usize>,
    max_sockets: Option<usize>,
}

impl Settings {
    /// Flags over the file over the defaults; every value must be positive.
    pub fn resolve(cli: &FeedbackArgs, file: &FileFeedback) -> Result<Self, ConfigError> {
        fn positive<T: PartialEq + Default>(setting: &str, v: Option<T>, default: T) -> Result<T, ConfigError> {
            match v {
                Some(v) if v == T::default() => Err(ConfigError {
                    setting: setting.to_owned(),
                    message: "must be greater than 0".to_owned(),
                }),
                Some(v) => Ok(v),
                None => Ok(default),
            }
        }
        Ok(Self {
            max_timeout_ms: positive(
                "feedback.max_timeout_ms",
                cli.feedback_max_timeout_ms.or(file.max_timeout_ms),
                DEFAULT_MAX_TIMEOUT_MS,
            )?,
            max_pending: positive(
                "feedback.max_pending",
                cli.feedback_max_pending.or(file.max_pending),
                DEFAULT_MAX_PENDING,
            )?,
            max_reply_bytes: positive(
                "feedback.max_reply_bytes",
                cli.feedback_max_reply_bytes.or(file.max_reply_bytes),
                DEFAULT_MAX_REPLY_BYTES,
            )?,
            max_sockets: positive(
                "feedback.max_sockets",
                cli.feedback_max_sockets.or(file.max_sockets),
                DEFAULT_MAX_SOCKETS,
            )?,
        })
    }
}

/// What a call brings from the service layer.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Every target, by name.
    pub targets: &'a HashMap<String, Arc<Target>>,
    /// Request limits.
    pub limits: &'a Limits,
    /// The caller's API key (None: authentication off).
    pub key: Option<&'a ApiKey>,
    /// The caller's deadline, if any.
    pub deadline: Option<Instant>,
}

/// The request/response machinery of the gateway: one [`Hub`] per target
/// and the table of waiting requests.
#[derive(Debug)]
pub struct Feedback {
    hubs: HashMap<String, (Arc<Hub>, bool)>,
    settings: Settings,
}

/// A validated request, ready to send.
struct Prepared<'t> {
    target: &'t Arc<Target>,
    hub: &'t Arc<Hub>,
    cluster: bool,
    nsp: String,
    timeout: Duration,
}

/// What came back for one request.
#[derive(Debug, Default)]
struct Gather {
    expected: u64,
    counts_servers: bool,
    servers: u64,
    uids: HashSet<String>,
    clients: u64,
    acks: Vec<Option<Mp>>,
    sockets: Vec<Mp>,
    rooms: BTreeSet<String>,
    replies: Vec<(Option<Mp>, Option<String>)>,
    truncated: bool,
    max_items: usize,
}

impl Gather {
    /// Counts one server's answer once, by its uid where the dialect
    /// sends one.
    fn server(&mut self, uid: Option<&str>) -> bool {
        if let Some(uid) = uid
            && !self.uids.insert(uid.to_owned())
        {
            return false;
        }
        self.servers += 1;
        true
    }

    fn add(&mut self, answer: Answer, uid: Option<&str>) {
        match answer {
            Answer::ClientCount(n) => {
                if self.server(uid) {
                    self.clients += n;
                }
            }
            Answer::Ack(v) => self.acks.push(v),
            Answer::Sockets(s) => {
                if self.server(uid) {
                    let room = self.max_items.saturating_sub(self.sockets.len());
                    if s.len() > room {
                        self.truncated = true;
                    }
                    self.sockets.extend(s.into_iter().take(room));
                }
            }
            Answer::Rooms(r) => {
                if self.server(uid) {
                    for room in r {
                        if self.rooms.len() >= self.max_items && !self.rooms.contains(&room) {
                            self.truncated = true;
                            continue;
                        }
                        self.rooms.insert(room);
                    }
                }
            }
            Answer::ServerReply(v) => {
                if self.server(uid) {
                    self.replies.push((v, uid.map(str::to_owned)));
                }
            }
        }
    }

    fn complete(&self, op: Op) -> bool {
        match op {
            // No counts: a single socket's one reply completes it.
            Op::EmitWithAck if !self.counts_servers => !self.acks.is_empty(),
            Op::EmitWithAck => self.servers >= self.expected && self.acks.len() as u64 >= self.clients,
            _ => self.servers >= self.expected,
        }
    }
}

fn u32_of(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

impl Feedback {
    /// One hub per configured target; nothing connects yet.
    pub fn new(config: &Config) -> Result<Self, crate::StartError> {
        let pending = Arc::new(Pending::new(
            config.feedback.max_pending,
            config.feedback.max_reply_bytes,
        ));
        let mut hubs = HashMap::new();
        for (name, t) in &config.targets {
            let hub = Hub::new(t, config.redis_timeout, Arc::clone(&pending)).map_err(|message| {
                crate::StartError::Target {
                    target: name.clone(),
                    message,
                }
            })?;
            hubs.insert(name.clone(), (Arc::new(hub), t.cluster));
        }
        Ok(Self {
            hubs,
            settings: config.feedback.clone(),
        })
    }

    /// Looks the target up, checks the key's scope and rate, and the
    /// timeout; field violations come before an unknown target.
    fn prepare<'s, 'c>(
        &'s self,
        ctx: &Ctx<'s>,
        mut c: Checker<'c>,
        target: &str,
        nsp: String,
        timeout_ms: Option<u32>,
    ) -> Result<(Prepared<'s>, Checker<'c>), Error> {
        let timeout_ms = match timeout_ms {
            None | Some(0) => DEFAULT_TIMEOUT_MS.min(self.settings.max_timeout_ms),
            Some(t) if t > self.settings.max_timeout_ms => {
                c.report_root(
                    "timeout_ms",
                    format!(
                        "{t} ms is over the gateway's feedback_max_timeout_ms = {}",
                        self.settings.max_timeout_ms
                    ),
                );
                t
            }
            Some(t) => t,
        };
        if c.has_violations() {
            return Err(Error::InvalidArgument(c.take_violations()));
        }
        let name = if target.is_empty() { DEFAULT_TARGET } else { target };
        let (Some(t), Some((hub, cluster))) = (ctx.targets.get(name), self.hubs.get(name)) else {
            return Err(Error::UnknownTarget(name.to_owned()));
        };
        if t.is_amqp() {
            return Err(t.needs_redis("a request/response RPC"));
        }
        if let Some(k) = ctx.key {
            k.allow(&t.name, &nsp)?;
            k.take(1)?;
        }
        Ok((
            Prepared {
                target: t,
                hub,
                cluster: *cluster,
                nsp,
                timeout: Duration::from_millis(u64::from(timeout_ms)),
            },
            c,
        ))
    }

    /// Sends `request` and gathers its answers.
    async fn exchange(&self, ctx: &Ctx<'_>, p: &Prepared<'_>, request: Request<'_>) -> Result<Gather, Error> {
        let op = request.op();
        let wire = p.hub.wire();
        let unsupported = |what: String| Error::Unsupported {
            target: p.target.name.clone(),
            dialect: wire.dialect(),
            what,
        };
        if let Some(what) = wire.unsupported(&request) {
            return Err(unsupported(what));
        }
        let started = Instant::now();
        let deadline = match ctx.deadline {
            Some(d) => d.min(started + p.timeout),
            None => started + p.timeout,
        };
        // Encode first with a placeholder id: a request that cannot be
        // encoded fails before anything is subscribed or registered.
        let probe = wire
            .request(&p.nsp, &request, "0")
            .map_err(|e| codec_error(e, &unsupported))?;
        drop(probe);
        p.hub.ensure(&wire.subscriptions(&p.nsp)).await?;
        let mut waiter = p.hub.register()?;
        let message = wire
            .request(&p.nsp, &request, waiter.id())
            .map_err(|e| codec_error(e, &unsupported))?;
        let counted = wire.counted_channel(&p.nsp);
        let mut g = Gather {
            counts_servers: wire.counts_servers(),
            max_items: self.settings.max_sockets,
            ..Gather::default()
        };
        if p.cluster && g.counts_servers {
            g.expected = subscribers(p.target, &counted).await?;
        }
        let published = Instant::now();
        if !p.cluster && g.counts_servers {
            g.expected = tokio::time::timeout_at(deadline.into(), publish_counted(p.target, &counted, &message))
                .await
                .unwrap_or(Err(Error::DeadlineExceededWhilePublishing))?;
        } else {
            tokio::time::timeout_at(deadline.into(), p.target.send(&message))
                .await
                .unwrap_or(Err(Error::DeadlineExceededWhilePublishing))?;
        }
        let m = metrics::global();
        let answered = metrics::AnswerLabels {
            target: p.target.name.clone(),
            reason: op.rpc(),
        };
        while !g.complete(op) {
            let arrival = match tokio::time::timeout_at(deadline.into(), waiter.next()).await {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            let Some(answer) = wire.interpret(op, &arrival.envelope) else {
                m.feedback_dropped
                    .get_or_create(&metrics::AnswerLabels {
                        target: p.target.name.clone(),
                        reason: "unexpected",
                    })
                    .inc();
                continue;
            };
            waiter.hold(arrival.bytes)?;
            m.feedback_answer_latency
                .get_or_create(&answered)
                .observe(arrival.at.saturating_duration_since(published).as_secs_f64());
            g.add(answer, arrival.envelope.uid.as_deref());
        }
        let outcome = if g.complete(op) { "complete" } else { "timeout" };
        m.feedback_requests
            .get_or_create(&metrics::FeedbackLabels { rpc: op.rpc(), outcome })
            .inc();
        Ok(g)
    }

    /// EmitWithAck.
    pub async fn emit_with_ack(
        &self,
        ctx: Ctx<'_>,
        req: &pb::EmitWithAckRequest,
    ) -> Result<pb::EmitWithAckResponse, Error> {
        let (prefix, target, nsp_raw, rooms_raw, except_raw, event, args_raw, flags, key) = match &req.op {
            Some(pb::emit_with_ack_request::Op::Emit(r)) => (
                Prefix::Op("emit"),
                &r.target,
                &r.namespace,
                Some(&r.rooms),
                &r.except_rooms,
                &r.event,
                &r.args,
                &r.flags,
                &r.idempotency_key,
            ),
            Some(pb::emit_with_ack_request::Op::Broadcast(r)) => (
                Prefix::Op("broadcast"),
                &r.target,
                &r.namespace,
                None,
                &r.except_rooms,
                &r.event,
                &r.args,
                &r.flags,
                &r.idempotency_key,
            ),
            None => {
                return Err(Error::InvalidArgument(Violations::one(Violation::new(
                    "op",
                    "exactly one of emit or broadcast must be set",
                ))));
            }
        };
        let mut c = Checker::new(ctx.limits, prefix);
        let nsp = c.namespace(nsp_raw);
        c.event("event", event, false);
        let rooms = rooms_raw.map(|r| c.rooms("rooms", r, true)).unwrap_or_default();
        let except = c.rooms("except_rooms", except_raw, false);
        let args = c.args(args_raw);
        if !key.is_empty() {
            c.report(
                "idempotency_key",
                "must be empty: a request that waits for answers is not answered from a cache",
            );
        }
        let flags = flags.as_ref().map_or_else(Flags::default, |f| Flags {
            volatile: f.volatile,
            compress: f.compress,
        });
        let (p, c) = self.prepare(&ctx, c, target, nsp, Some(req.timeout_ms))?;
        c.finish().map_err(Error::InvalidArgument)?;
        let e = Event {
            nsp: &p.nsp,
            rooms: &rooms,
            except: &except,
            event,
            args: &args,
            flags,
        };
        let g = self.exchange(&ctx, &p, Request::EmitWithAck(&e)).await?;
        let complete = g.complete(Op::EmitWithAck);
        Ok(pb::EmitWithAckResponse {
            sockets: u32_of(if g.counts_servers {
                g.clients
            } else {
                g.acks.len() as u64
            }),
            acks: g.acks.into_iter().map(argument).collect(),
            servers: u32_of(g.servers),
            servers_expected: u32_of(g.expected),
            complete,
        })
    }

    /// FetchSockets.
    pub async fn fetch_sockets(
        &self,
        ctx: Ctx<'_>,
        req: &pb::FetchSocketsRequest,
    ) -> Result<pb::FetchSocketsResponse, Error> {
        let mut c = Checker::new(ctx.limits, Prefix::Root);
        let nsp = c.namespace(&req.namespace);
        let rooms = c.rooms("rooms", &req.rooms, false);
        let except = c.rooms("except_rooms", &req.except_rooms, false);
        let (p, c) = self.prepare(&ctx, c, &req.target, nsp, Some(req.timeout_ms))?;
        c.finish().map_err(Error::InvalidArgument)?;
        let selector = Selector {
            rooms: &rooms,
            except: &except,
        };
        let g = self.exchange(&ctx, &p, Request::FetchSockets(selector)).await?;
        Ok(pb::FetchSocketsResponse {
            complete: g.complete(Op::FetchSockets),
            sockets: g.sockets.iter().map(remote_socket).collect(),
            servers: u32_of(g.servers),
            servers_expected: u32_of(g.expected),
            truncated: g.truncated,
        })
    }

    /// AllRooms.
    pub async fn all_rooms(&self, ctx: Ctx<'_>, req: &pb::AllRoomsRequest) -> Result<pb::AllRoomsResponse, Error> {
        let mut c = Checker::new(ctx.limits, Prefix::Root);
        let nsp = c.namespace(&req.namespace);
        let (p, c) = self.prepare(&ctx, c, &req.target, nsp, Some(req.timeout_ms))?;
        c.finish().map_err(Error::InvalidArgument)?;
        let g = self.exchange(&ctx, &p, Request::AllRooms).await?;
        Ok(pb::AllRoomsResponse {
            complete: g.complete(Op::AllRooms),
            rooms: g.rooms.into_iter().collect(),
            servers: u32_of(g.servers),
            servers_expected: u32_of(g.expected),
            truncated: g.truncated,
        })
    }

    /// ServerSideEmitWithAck.
    pub async fn server_side_emit_with_ack(
        &self,
        ctx: Ctx<'_>,
        req: &pb::ServerSideEmitWithAckRequest,
    ) -> Result<pb::ServerSideEmitWithAckResponse, Error> {
        let mut c = Checker::new(ctx.limits, Prefix::Root);
        let nsp = c.namespace(&req.namespace);
        c.event("event", &req.event, true);
        let args = c.args(&req.args);
        let (p, c) = self.prepare(&ctx, c, &req.target, nsp, Some(req.timeout_ms))?;
        c.finish().map_err(Error::InvalidArgument)?;
        let g = self
            .exchange(
                &ctx,
                &p,
                Request::ServerSideEmitWithAck {
                    event: &req.event,
                    args: &args,
                },
            )
            .await?;
        Ok(pb::ServerSideEmitWithAckResponse {
            complete: g.complete(Op::ServerSideEmitWithAck),
            servers_expected: u32_of(g.expected),
            replies: g
                .replies
                .into_iter()
                .map(|(v, uid)| pb::ServerReply {
                    reply: Some(argument(v)),
                    server: uid.unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// ServerCount: the subscribers of the namespace's counted channel.
    pub async fn server_count(
        &self,
        ctx: Ctx<'_>,
        req: &pb::ServerCountRequest,
    ) -> Result<pb::ServerCountResponse, Error> {
        let mut c = Checker::new(ctx.limits, Prefix::Root);
        let nsp = c.namespace(&req.namespace);
        let (p, c) = self.prepare(&ctx, c, &req.target, nsp, None)?;
        c.finish().map_err(Error::InvalidArgument)?;
        let channel = p.hub.wire().counted_channel(&p.nsp);
        let mut n = subscribers(p.target, &channel).await?;
        // python-socketio: the gateway's own subscription to the one
        // channel is not a server.
        if !p.hub.wire().counts_servers() && p.hub.subscribed(&channel).await {
            n = n.saturating_sub(1);
        }
        Ok(pb::ServerCountResponse { servers: u32_of(n) })
    }
}

fn codec_error(e: crate::codec::CodecError, unsupported: &dyn Fn(String) -> Error) -> Error {
    match e {
        crate::codec::CodecError::Invalid { field, description } => {
            Error::InvalidArgument(Violations::one(Violation::new(field, description)))
        }
        crate::codec::CodecError::Unsupported(what) => unsupported(what),
    }
}

fn numsub(channel: &Channel) -> redis::Cmd {
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg(if channel.sharded { "SHARDNUMSUB" } else { "NUMSUB" })
        .arg(&channel.name);
    cmd
}

/// The count in a `PUBSUB NUMSUB` / `SHARDNUMSUB` reply for one channel.
fn numsub_count(value: &redis::Value) -> Option<u64> {
    match value {
        redis::Value::Array(items) => items.get(1).and_then(int),
        redis::Value::Map(entries) => entries.first().and_then(|(_, v)| int(v)),
        _ => None,
    }
}

/// How many subscribers `channel` has (`PUBSUB NUMSUB` / `SHARDNUMSUB`;
/// summed over every node of a Redis Cluster).
async fn subscribers(target: &Target, channel: &Channel) -> Result<u64, Error> {
    let value: redis::Value = target.query(&numsub(channel)).await?;
    Ok(numsub_count(&value).unwrap_or(0))
}

/// Publishes a request on a standalone Redis and returns the subscribers
/// of the counted channel at that instant: `PUBSUB NUMSUB` and the PUBLISH
/// in one MULTI/EXEC, so nothing joins or leaves in between, in the same
/// single round trip as a bare PUBLISH. The PUBLISH reply itself is not
/// used: it also counts pattern subscribers (`PSUBSCRIBE *`, a monitoring
/// tool), which receive the request but never answer it.
async fn publish_counted(target: &Target, counted: &Channel, message: &Message) -> Result<u64, Error> {
    let unavailable = |reason: String| Error::Unavailable {
        target: target.name.clone(),
        reason: format!("request publish: {reason}"),
    };
    let [command] = message.commands() else {
        return Err(unavailable("a request is one command".into()));
    };
    let (verb, channel, payload) = match command {
        Command::Publish { channel, payload } => ("PUBLISH", channel, payload),
        Command::SPublish { channel, payload } => ("SPUBLISH", channel, payload),
        _ => return Err(unavailable("a request is a PUBLISH or SPUBLISH".into())),
    };
    let mut publish = redis::cmd(verb);
    publish.arg(channel).arg(payload);
    let route = Route::Key(channel);
    let values = target
        .pipeline(vec![
            (route, redis::cmd("MULTI")),
            (route, numsub(counted)),
            (route, publish),
            (route, redis::cmd("EXEC")),
        ])
        .await?;
    match values.last() {
        Some(redis::Value::Array(replies)) => match replies.as_slice() {
            [count, redis::Value::Int(_)] => {
                numsub_count(count).ok_or_else(|| unavailable(format!("unexpected PUBSUB reply {count:?}")))
            }
            other => Err(unavailable(format!("unexpected EXEC reply {other:?}"))),
        },
        other => Err(unavailable(format!("unexpected EXEC reply {other:?}"))),
    }
}

fn int(v: &redis::Value) -> Option<u64> {
    match v {
        redis::Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Answers to API values.

/// Whether `v` has an exact JSON form (google.protobuf.Value).
fn json_exact(v: &Mp) -> bool {
    match v {
        Mp::Nil | Mp::Boolean(_) => true,
        Mp::Integer(i) => i.as_i64().is_some_and(|i| i.unsigned_abs() <= SAFE_INTEGER),
        Mp::F32(f) => f.is_finite(),
        Mp::F64(f) => f.is_finite(),
        Mp::String(s) => s.is_str(),
        Mp::Array(a) => a.iter().all(json_exact),
        Mp::Map(m) => m.iter().all(|(k, v)| k.is_str() && json_exact(v)),
        Mp::Binary(_) | Mp::Ext(..) => false,
    }
}

/// The JSON form of `v`; values without one are approximated (binary as
/// base64 text, large integers as float64, extensions as null).
fn json_value(v: &Mp) -> prost_types::Value {
    use base64::Engine;
    #[allow(clippy::cast_precision_loss)]
    let kind = match v {
        Mp::Nil | Mp::Ext(..) => Kind::NullValue(0),
        Mp::Boolean(b) => Kind::BoolValue(*b),
        Mp::Integer(i) => Kind::NumberValue(i.as_i64().map_or_else(|| i.as_u64().unwrap_or(0) as f64, |i| i as f64)),
        Mp::F32(f) => Kind::NumberValue(f64::from(*f)),
        Mp::F64(f) => Kind::NumberValue(*f),
        Mp::String(s) => Kind::StringValue(
            s.as_str()
                .map_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned(), str::to_owned),
        ),
        Mp::Binary(b) => Kind::StringValue(base64::engine::general_purpose::STANDARD.encode(b)),
        Mp::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_value).collect(),
        }),
        Mp::Map(m) => Kind::StructValue(prost_types::Struct {
            fields: m
                .iter()
                .map(|(k, v)| (k.as_str().map_or_else(|| k.to_string(), str::to_owned), json_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn msgpack_bytes(v: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, v);
    out
}

/// An ack or callback reply as an Argument: `value` when JSON holds it
/// exactly, `binary` for bytes, `msgpack` otherwise; no argument is null.
fn argument(v: Option<Mp>) -> pb::Argument {
    use pb::argument::Kind as A;
    let kind = match v {
        None => A::Value(prost_types::Value {
            kind: Some(Kind::NullValue(0)),
        }),
        Some(Mp::Binary(b)) => A::Binary(b),
        Some(v) if json_exact(&v) => A::Value(json_value(&v)),
        Some(v) => A::Msgpack(msgpack_bytes(&v)),
    };
    pb::Argument { kind: Some(kind) }
}

fn text(v: Option<&Mp>) -> String {
    v.and_then(Mp::as_str).unwrap_or_default().to_owned()
}

/// A header or query map: string values, several values joined.
fn string_map(v: Option<&Mp>, sep: &str, skip: &[&str]) -> HashMap<String, String> {
    let Some(Mp::Map(entries)) = v else {
        return HashMap::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let k = k.as_str()?;
            if skip.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                return None;
            }
            let value = match v {
                Mp::String(s) => s.as_str()?.to_owned(),
                Mp::Array(items) => items.iter().filter_map(Mp::as_str).collect::<Vec<_>>().join(sep),
                other if !other.is_nil() => other.to_string(),
                _ => return None,
            };
            Some((k.to_owned(), value))
        })
        .collect()
}

/// One socket of a FetchSockets answer, without `auth`, `cookie` or
/// `authorization`.
fn remote_socket(s: &Mp) -> pb::RemoteSocket {
    let data = get(s, "data");
    let h = get(s, "handshake");
    let field = |name: &str| h.and_then(|h| get(h, name));
    #[allow(clippy::cast_possible_truncation)]
    let issued = field("issued").map_or(0, |v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).unwrap_or(0));
    pb::RemoteSocket {
        id: text(get(s, "id")),
        rooms: match get(s, "rooms") {
            Some(Mp::Array(r)) => r.iter().filter_map(Mp::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        },
        data: data.map(json_value),
        data_msgpack: data.filter(|d| !json_exact(d)).map(msgpack_bytes).unwrap_or_default(),
        handshake: h.map(|_| pb::Handshake {
            headers: string_map(field("headers"), ", ", &SECRET_HEADERS),
            time: text(field("time")),
            address: text(field("address")),
            xdomain: field("xdomain").and_then(Mp::as_bool).unwrap_or(false),
            secure: field("secure").and_then(Mp::as_bool).unwrap_or(false),
            issued,
            url: text(field("url")),
            query: string_map(field("query"), ",", &[]),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn replies_keep_their_exact_form() {
        let big = Mp::from(9_007_199_254_740_993_u64);
        assert!(
            matches!(argument(Some(big.clone())).kind, Some(pb::argument::Kind::Msgpack(b)) if b == msgpack_bytes(&big))
        );
        assert!(
            matches!(argument(Some(Mp::Binary(vec![1, 2]))).kind, Some(pb::argument::Kind::Binary(b)) if b == [1, 2])
        );
        let nested = Mp::Map(vec![(Mp::from("file"), Mp::Binary(vec![9]))]);
        assert!(matches!(
            argument(Some(nested)).kind,
            Some(pb::argument::Kind::Msgpack(_))
        ));
        let json = Mp::Map(vec![(Mp::from("ok"), Mp::from(true)), (Mp::from("n"), Mp::from(7))]);
        assert!(matches!(argument(Some(json)).kind, Some(pb::argument::Kind::Value(_))));
        assert!(matches!(
            argument(None).kind,
            Some(pb::argument::Kind::Value(prost_types::Value {
                kind: Some(Kind::NullValue(0))
            }))
        ));
    }

    #[test]
    fn handshakes_lose_their_secrets() {
        let s = crate::codec::feedback::parse(
            br#"{"id":"s1","rooms":["s1","a"],"data":{"user":"u1"},"handshake":{"headers":{"cookie":"c=1","Authorization":"Bearer x","user-agent":"ua","x-multi":["a","b"]},"time":"t","address":"::1","xdomain":false,"secure":true,"issued":1700000000000,"url":"/socket.io/","query":{"EIO":"4"},"auth":{"token":"secret"}}}"#,
        )
        .unwrap();
        let r = remote_socket(&s);
        assert_eq!(r.id, "s1");
        assert_eq!(r.rooms, ["s1", "a"]);
        let h = r.handshake.unwrap();
        assert!(!h.headers.contains_key("cookie") && !h.headers.contains_key("Authorization"));
        assert_eq!(h.headers["user-agent"], "ua");
        assert_eq!(h.headers["x-multi"], "a, b");
        assert_eq!(h.issued, 1_700_000_000_000);
        assert!(h.secure);
        assert_eq!(h.query["EIO"], "4");
        assert!(r.data_msgpack.is_empty());
    }

    #[test]
    fn completion_is_at_least_not_exactly() {
        let mut g = Gather {
            expected: 1,
            counts_servers: true,
            max_items: 10,
            ..Gather::default()
        };
        assert!(!g.complete(Op::FetchSockets));
        g.add(Answer::Sockets(vec![]), Some("a"));
        g.add(Answer::Sockets(vec![]), Some("a"));
        assert_eq!(g.servers, 1, "one server's duplicate answer counts once");
        g.add(Answer::Sockets(vec![]), Some("b"));
        assert!(
            g.complete(Op::FetchSockets),
            "a server that joined mid-request does not undo completion"
        );
        let mut g = Gather {
            expected: 2,
            counts_servers: true,
            ..Gather::default()
        };
        g.add(Answer::ClientCount(1), None);
        g.add(Answer::ClientCount(0), None);
        assert!(!g.complete(Op::EmitWithAck));
        g.add(Answer::Ack(None), None);
        assert!(g.complete(Op::EmitWithAck));
    }
}
