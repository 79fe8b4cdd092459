//! The `emitgate.v1.EmitterService` implementation: validate → encode →
//! publish. Validation lives in [`crate::validate`], encoding in the
//! target's [`Dialect`](crate::codec::Dialect), Redis in [`crate::target`].

use std::{collections::HashMap, sync::Arc};

use tonic::{Request, Response, Status};

use crate::{
    codec::{CodecError, Event, Flags, Message, Selector},
    config::{Config, DEFAULT_TARGET, Limits},
    error::{Error, Violation},
    pb::{self, emitter_service_server::EmitterService},
    target::{Reply, Target},
    validate::Checker,
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
    /// The Redis message.
    pub message: Message,
}

/// The messages of one batch that go to one target, with their item indices.
struct TargetBatch {
    target: Arc<Target>,
    indices: Vec<usize>,
    messages: Vec<Message>,
}

/// The gRPC service: targets and limits, shared by every call.
#[derive(Debug, Clone)]
pub struct Gateway {
    targets: Arc<HashMap<String, Arc<Target>>>,
    limits: Arc<Limits>,
}

impl Gateway {
    /// Builds the service and every target's Redis pool.
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut targets = HashMap::new();
        for (name, t) in &config.targets {
            let target = Target::new(t, config).map_err(|e| format!("target {name:?}: {e}"))?;
            targets.insert(name.clone(), Arc::new(target));
        }
        Ok(Self {
            targets: Arc::new(targets),
            limits: Arc::new(config.limits.clone()),
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
        self.encode_at("", op)
    }

    /// [`encode`](Self::encode) with field paths under `prefix`. Field
    /// violations are reported before an unknown target.
    fn encode_at(&self, prefix: &str, op: Operation<'_>) -> Result<Encoded, Error> {
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
                (target, target.dialect.event(&event))
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
                (target, target.dialect.event(&event))
            }
            Operation::SocketsJoin(r) => {
                let nsp = c.namespace(&r.namespace);
                let rooms = c.rooms("rooms", &r.rooms, false);
                let except = c.rooms("except_rooms", &r.except_rooms, false);
                let join = c.rooms("join_rooms", &r.join_rooms, true);
                let target = checked_target(self, &mut c, op)?;
                (
                    target,
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
                (target, target.dialect.server_side_emit(&nsp, &r.event, &args))
            }
        };
        let (target, encoded) = message;
        let message = match encoded {
            Ok(m) => m,
            Err(CodecError::Invalid { field, description }) => {
                c.report(&field, description);
                return Err(Error::InvalidArgument(c.violations));
            }
            Err(CodecError::Unsupported(what)) => {
                return Err(Error::Unsupported {
                    target: target.name.clone(),
                    dialect: target.dialect.name(),
                    what,
                });
            }
        };
        c.packet_size(message.payload().len());
        c.finish().map_err(Error::InvalidArgument)?;
        Ok(Encoded {
            target: Arc::clone(target),
            message,
        })
    }

    /// Validates, encodes and sends one operation.
    async fn run(&self, op: Operation<'_>) -> Result<Reply, Error> {
        let e = self.encode(op)?;
        e.target.send(&e.message).await
    }

    async fn batch(&self, req: pb::BatchEmitRequest) -> Result<pb::BatchEmitResponse, Error> {
        let max = self.limits.max_batch_items;
        if req.items.len() > max {
            return Err(Error::InvalidArgument(vec![Violation::new(
                "items",
                format!("{} items, over the limit max_batch_items = {max}", req.items.len()),
            )]));
        }
        let encoded: Vec<Result<Encoded, Error>> = req
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.op {
                Some(pb::batch_item::Op::Emit(e)) => self.encode_at(&format!("items[{i}].emit."), Operation::Emit(e)),
                Some(pb::batch_item::Op::Broadcast(b)) => {
                    self.encode_at(&format!("items[{i}].broadcast."), Operation::Broadcast(b))
                }
                None => Err(Error::InvalidArgument(vec![Violation::new(
                    format!("items[{i}]"),
                    "exactly one of emit or broadcast must be set",
                )])),
            })
            .collect();

        if req.atomic {
            reject_if_any_invalid(&req.items, &encoded)?;
        }

        let mut results: Vec<pb::ItemResult> = encoded
            .iter()
            .map(|p| match p {
                Ok(_) => pb::ItemResult::default(),
                Err(e) => item_error(e),
            })
            .collect();

        // One pipeline per target, items in request order.
        let mut groups: Vec<TargetBatch> = Vec::new();
        for (i, p) in encoded.into_iter().enumerate() {
            let Ok(p) = p else { continue };
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
            match target.send_all(&refs).await {
                Ok(replies) => {
                    for (&i, reply) in indices.iter().zip(replies) {
                        results[i].receivers = reply.receivers;
                        published += 1;
                    }
                }
                Err(e) => {
                    for &i in indices {
                        results[i] = item_error(&e);
                    }
                    first_redis_error.get_or_insert(e);
                }
            }
        }
        // Nothing reached Redis because it is down: fail the call so that the
        // caller retries it as a whole.
        if let Some(e) = first_redis_error
            && published == 0
        {
            return Err(e);
        }
        let failed = results.len() - published;
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
    if !c.violations.is_empty() {
        return Err(Error::InvalidArgument(std::mem::take(&mut c.violations)));
    }
    gw.target(op.target())
}

/// In an atomic batch any invalid item rejects the call: every violation
/// of every item is reported at once; unknown targets alone are NOT_FOUND.
fn reject_if_any_invalid(items: &[pb::BatchItem], encoded: &[Result<Encoded, Error>]) -> Result<(), Error> {
    let mut violations = Vec::new();
    let mut unknown = None;
    let mut unsupported = None;
    for (i, p) in encoded.iter().enumerate() {
        match p {
            Err(Error::InvalidArgument(v)) => violations.extend(v.iter().cloned()),
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
            _ => {}
        }
    }
    if let Some(name) = unknown
        && violations.iter().all(|v| v.field.ends_with(".target"))
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
            .iter()
            .map(|v| pb::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    pb::ItemResult {
        code: e.code() as i32,
        message: e.to_string(),
        violations,
        ..Default::default()
    }
}

/// Turns a call's outcome into a gRPC answer, logging failures.
fn answer<T>(method: &'static str, result: Result<T, Error>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => Ok(Response::new(v)),
        Err(e) => {
            match e.code() {
                tonic::Code::Unavailable => tracing::warn!(method, code = ?e.code(), error = %e, "call failed"),
                _ => tracing::info!(method, code = ?e.code(), error = %e, "call failed"),
            }
            Err(e.into())
        }
    }
}

#[tonic::async_trait]
impl EmitterService for Gateway {
    async fn emit(&self, request: Request<pb::EmitRequest>) -> Result<Response<pb::EmitResponse>, Status> {
        let r = self.run(Operation::Emit(request.get_ref())).await;
        answer(
            "Emit",
            r.map(|r| pb::EmitResponse {
                receivers: r.receivers,
                ..Default::default()
            }),
        )
    }

    async fn broadcast(
        &self,
        request: Request<pb::BroadcastRequest>,
    ) -> Result<Response<pb::BroadcastResponse>, Status> {
        let r = self.run(Operation::Broadcast(request.get_ref())).await;
        answer(
            "Broadcast",
            r.map(|r| pb::BroadcastResponse {
                receivers: r.receivers,
                ..Default::default()
            }),
        )
    }

    async fn batch_emit(
        &self,
        request: Request<pb::BatchEmitRequest>,
    ) -> Result<Response<pb::BatchEmitResponse>, Status> {
        answer("BatchEmit", self.batch(request.into_inner()).await)
    }

    async fn sockets_join(
        &self,
        request: Request<pb::SocketsJoinRequest>,
    ) -> Result<Response<pb::SocketsJoinResponse>, Status> {
        let r = self.run(Operation::SocketsJoin(request.get_ref())).await;
        answer(
            "SocketsJoin",
            r.map(|r| pb::SocketsJoinResponse {
                receivers: r.receivers,
                ..Default::default()
            }),
        )
    }

    async fn sockets_leave(
        &self,
        request: Request<pb::SocketsLeaveRequest>,
    ) -> Result<Response<pb::SocketsLeaveResponse>, Status> {
        let r = self.run(Operation::SocketsLeave(request.get_ref())).await;
        answer(
            "SocketsLeave",
            r.map(|r| pb::SocketsLeaveResponse {
                receivers: r.receivers,
                ..Default::default()
            }),
        )
    }

    async fn disconnect_sockets(
        &self,
        request: Request<pb::DisconnectSocketsRequest>,
    ) -> Result<Response<pb::DisconnectSocketsResponse>, Status> {
        let r = self.run(Operation::DisconnectSockets(request.get_ref())).await;
        let r = r.map(|r| pb::DisconnectSocketsResponse {
            receivers: r.receivers,
            ..Default::default()
        });
        answer("DisconnectSockets", r)
    }

    async fn server_side_emit(
        &self,
        request: Request<pb::ServerSideEmitRequest>,
    ) -> Result<Response<pb::ServerSideEmitResponse>, Status> {
        let r = self.run(Operation::ServerSideEmit(request.get_ref())).await;
        let r = r.map(|r| pb::ServerSideEmitResponse {
            receivers: r.receivers,
            ..Default::default()
        });
        answer("ServerSideEmit", r)
    }
}
