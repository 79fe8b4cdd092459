//! The `emitgate.v1.EmitterService` implementation: validate → encode →
//! publish. Validation and encoding live in [`crate::validate`] and
//! [`crate::codec`]; Redis in [`crate::target`].

use std::{collections::HashMap, sync::Arc};

use tonic::{Request, Response, Status};

use crate::{
    codec::socketio::{self, EventPacket, Flags, Selector},
    config::{Config, DEFAULT_TARGET, Limits},
    error::{Error, Violation},
    pb::{self, emitter_service_server::EmitterService},
    target::Target,
    validate::Checker,
};

/// A channel and a payload, as PUBLISHed.
type Message = (Vec<u8>, Vec<u8>);

/// The messages of one batch that go to one target, with their item indices.
struct TargetBatch {
    target: Arc<Target>,
    indices: Vec<usize>,
    messages: Vec<Message>,
}

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

/// A validated, encoded operation: what is published, and where.
#[derive(Debug)]
pub struct Encoded {
    /// The target it is published to.
    pub target: Arc<Target>,
    /// The Redis channel.
    pub channel: Vec<u8>,
    /// The exact payload bytes.
    pub payload: Vec<u8>,
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

    /// Validates and encodes an Emit (`rooms` is `Some`) or a Broadcast.
    #[allow(clippy::too_many_arguments)]
    fn prepare_event(
        &self,
        prefix: &str,
        target: &str,
        namespace: &str,
        rooms: Option<&[String]>,
        except: &[String],
        event: &str,
        args: &[pb::Argument],
        flags: Option<&pb::EmitFlags>,
    ) -> Result<Encoded, Error> {
        let mut c = Checker::new(&self.limits, prefix);
        let nsp = c.namespace(namespace);
        c.event("event", event, false);
        let rooms = rooms.map(|r| c.rooms("rooms", r, true)).unwrap_or_default();
        let except = c.rooms("except_rooms", except, false);
        let (arg_count, args) = c.msgpack_args(args);
        if !c.violations.is_empty() {
            return Err(Error::InvalidArgument(c.violations));
        }
        let target = self.target(target)?;
        let packet = EventPacket {
            nsp: &nsp,
            rooms: &rooms,
            except: &except,
            event,
            arg_count,
            args: &args,
            flags: flags.map_or_else(Flags::default, |f| Flags {
                volatile: f.volatile,
                compress: f.compress,
            }),
        };
        let mut payload = Vec::new();
        packet.encode(&mut payload);
        c.packet_size(payload.len());
        c.finish().map_err(Error::InvalidArgument)?;
        Ok(Encoded {
            channel: target.channels.event_channel(&nsp, &rooms),
            payload,
            target: Arc::clone(target),
        })
    }

    /// Validates and encodes one operation without publishing it (no I/O).
    pub fn encode(&self, op: Operation<'_>) -> Result<Encoded, Error> {
        self.encode_at("", op)
    }

    /// [`encode`](Self::encode) with field paths under `prefix`.
    fn encode_at(&self, prefix: &str, op: Operation<'_>) -> Result<Encoded, Error> {
        match op {
            Operation::Emit(r) => self.prepare_emit(prefix, r),
            Operation::Broadcast(r) => self.prepare_broadcast(prefix, r),
            Operation::SocketsJoin(r) => self.prepare_request(
                &r.target,
                &r.namespace,
                &r.rooms,
                &r.except_rooms,
                |c| Some(c.rooms("join_rooms", &r.join_rooms, true)),
                socketio::sockets_join,
            ),
            Operation::SocketsLeave(r) => self.prepare_request(
                &r.target,
                &r.namespace,
                &r.rooms,
                &r.except_rooms,
                |c| Some(c.rooms("leave_rooms", &r.leave_rooms, true)),
                socketio::sockets_leave,
            ),
            Operation::DisconnectSockets(r) => self.prepare_request(
                &r.target,
                &r.namespace,
                &r.rooms,
                &r.except_rooms,
                |_| None,
                |sel, _| socketio::disconnect_sockets(sel, r.close),
            ),
            Operation::ServerSideEmit(r) => {
                let mut c = Checker::new(&self.limits, prefix);
                let nsp = c.namespace(&r.namespace);
                c.event("event", &r.event, true);
                let args = c.json_args(&r.args);
                if !c.violations.is_empty() {
                    return Err(Error::InvalidArgument(c.violations));
                }
                let target = self.target(&r.target)?;
                let payload = socketio::server_side_emit(&r.event, &args);
                c.packet_size(payload.len());
                c.finish().map_err(Error::InvalidArgument)?;
                Ok(Encoded {
                    channel: target.channels.request_channel(&nsp),
                    payload,
                    target: Arc::clone(target),
                })
            }
        }
    }

    /// Validates, encodes and publishes one operation; returns the receivers.
    async fn run(&self, op: Operation<'_>) -> Result<u64, Error> {
        let e = self.encode(op)?;
        e.target.publish(&e.channel, &e.payload).await
    }

    fn prepare_emit(&self, prefix: &str, r: &pb::EmitRequest) -> Result<Encoded, Error> {
        self.prepare_event(
            prefix,
            &r.target,
            &r.namespace,
            Some(&r.rooms),
            &r.except_rooms,
            &r.event,
            &r.args,
            r.flags.as_ref(),
        )
    }

    fn prepare_broadcast(&self, prefix: &str, r: &pb::BroadcastRequest) -> Result<Encoded, Error> {
        self.prepare_event(
            prefix,
            &r.target,
            &r.namespace,
            None,
            &r.except_rooms,
            &r.event,
            &r.args,
            r.flags.as_ref(),
        )
    }

    /// Validates a socket operation's selector and encodes its JSON request
    /// with `encode`.
    fn prepare_request(
        &self,
        target: &str,
        namespace: &str,
        rooms: &[String],
        except: &[String],
        check: impl FnOnce(&mut Checker<'_>) -> Option<Vec<String>>,
        encode: impl FnOnce(Selector<'_>, &[String]) -> Vec<u8>,
    ) -> Result<Encoded, Error> {
        let mut c = Checker::new(&self.limits, "");
        let nsp = c.namespace(namespace);
        let rooms = c.rooms("rooms", rooms, false);
        let except = c.rooms("except_rooms", except, false);
        let extra = check(&mut c).unwrap_or_default();
        c.finish().map_err(Error::InvalidArgument)?;
        let target = self.target(target)?;
        let payload = encode(
            Selector {
                rooms: &rooms,
                except: &except,
            },
            &extra,
        );
        Ok(Encoded {
            channel: target.channels.request_channel(&nsp),
            payload,
            target: Arc::clone(target),
        })
    }

    async fn batch(&self, req: pb::BatchEmitRequest) -> Result<pb::BatchEmitResponse, Error> {
        let max = self.limits.max_batch_items;
        if req.items.len() > max {
            return Err(Error::InvalidArgument(vec![Violation::new(
                "items",
                format!("{} items, over the limit max_batch_items = {max}", req.items.len()),
            )]));
        }
        let prepared: Vec<Result<Encoded, Error>> = req
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
            reject_if_any_invalid(&req.items, &prepared)?;
        }

        let mut results: Vec<pb::ItemResult> = prepared
            .iter()
            .map(|p| match p {
                Ok(_) => pb::ItemResult::default(),
                Err(e) => item_error(e),
            })
            .collect();

        // One pipeline per target, items in request order.
        let mut groups: Vec<TargetBatch> = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
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
            groups[slot].messages.push((p.channel, p.payload));
        }
        let mut published = 0usize;
        let mut first_redis_error = None;
        for TargetBatch {
            target,
            indices,
            messages,
        } in &groups
        {
            match target.publish_all(messages).await {
                Ok(counts) => {
                    for (&i, n) in indices.iter().zip(counts) {
                        results[i].receivers = n;
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

/// In an atomic batch any invalid item rejects the call: every violation
/// of every item is reported at once; unknown targets alone are NOT_FOUND.
fn reject_if_any_invalid(items: &[pb::BatchItem], prepared: &[Result<Encoded, Error>]) -> Result<(), Error> {
    let mut violations = Vec::new();
    let mut unknown = None;
    for (i, p) in prepared.iter().enumerate() {
        match p {
            Err(Error::InvalidArgument(v)) => violations.extend(v.iter().cloned()),
            Err(e @ Error::UnknownTarget(_)) => {
                let op = match items[i].op {
                    Some(pb::batch_item::Op::Broadcast(_)) => "broadcast",
                    _ => "emit",
                };
                violations.push(Violation::new(format!("items[{i}].{op}.target"), e.to_string()));
                unknown.get_or_insert_with(|| e.to_string());
            }
            _ => {}
        }
    }
    match unknown {
        Some(_) if violations.iter().all(|v| v.field.ends_with(".target")) => {
            let name = prepared.iter().find_map(|p| match p {
                Err(Error::UnknownTarget(n)) => Some(n.clone()),
                _ => None,
            });
            Err(Error::UnknownTarget(name.unwrap_or_default()))
        }
        _ if !violations.is_empty() => Err(Error::InvalidArgument(violations)),
        _ => Ok(()),
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
        receivers: 0,
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
        answer("Emit", r.map(|receivers| pb::EmitResponse { receivers }))
    }

    async fn broadcast(
        &self,
        request: Request<pb::BroadcastRequest>,
    ) -> Result<Response<pb::BroadcastResponse>, Status> {
        let r = self.run(Operation::Broadcast(request.get_ref())).await;
        answer("Broadcast", r.map(|receivers| pb::BroadcastResponse { receivers }))
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
        answer("SocketsJoin", r.map(|receivers| pb::SocketsJoinResponse { receivers }))
    }

    async fn sockets_leave(
        &self,
        request: Request<pb::SocketsLeaveRequest>,
    ) -> Result<Response<pb::SocketsLeaveResponse>, Status> {
        let r = self.run(Operation::SocketsLeave(request.get_ref())).await;
        answer(
            "SocketsLeave",
            r.map(|receivers| pb::SocketsLeaveResponse { receivers }),
        )
    }

    async fn disconnect_sockets(
        &self,
        request: Request<pb::DisconnectSocketsRequest>,
    ) -> Result<Response<pb::DisconnectSocketsResponse>, Status> {
        let r = self.run(Operation::DisconnectSockets(request.get_ref())).await;
        answer(
            "DisconnectSockets",
            r.map(|receivers| pb::DisconnectSocketsResponse { receivers }),
        )
    }

    async fn server_side_emit(
        &self,
        request: Request<pb::ServerSideEmitRequest>,
    ) -> Result<Response<pb::ServerSideEmitResponse>, Status> {
        let r = self.run(Operation::ServerSideEmit(request.get_ref())).await;
        answer(
            "ServerSideEmit",
            r.map(|receivers| pb::ServerSideEmitResponse { receivers }),
        )
    }
}
