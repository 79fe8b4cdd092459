//! The plan stage: one operation validated and encoded, with no I/O.
//!
//! This module is the only user of the [`Checker`]: the request's own
//! fields are checked first (every violation at once), then the target is
//! looked up, then the target's [`Dialect`](crate::codec::Dialect) encodes
//! the operation, returning a typed [`CodecError`] that is reported under
//! the request's field path.

use std::{collections::HashMap, sync::Arc};

use crate::{
    codec::{CodecError, Event, Flags, Message, Selector},
    config::{DEFAULT_TARGET, Limits},
    error::Error,
    pb,
    target::Target,
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

impl<'a> Operation<'a> {
    /// The operation of a batch item, if one is set.
    pub fn of_item(item: &'a pb::BatchItem) -> Option<(Self, &'static str)> {
        match &item.op {
            Some(pb::batch_item::Op::Emit(e)) => Some((Operation::Emit(e), "emit")),
            Some(pb::batch_item::Op::Broadcast(b)) => Some((Operation::Broadcast(b), "broadcast")),
            None => None,
        }
    }

    /// The `idempotency_key` field of the request.
    pub fn idempotency_key(&self) -> &'a str {
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
    pub fn target(&self) -> &'a str {
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
pub struct Plan {
    /// The target it is sent to.
    pub target: Arc<Target>,
    /// The normalized namespace.
    pub namespace: String,
    /// The Redis message.
    pub message: Message,
}

/// The targets of a gateway, by name.
pub type Targets = HashMap<String, Arc<Target>>;

/// The target a request names (`""` is the default target).
pub fn target<'t>(targets: &'t Targets, name: &str) -> Result<&'t Arc<Target>, Error> {
    let name = if name.is_empty() { DEFAULT_TARGET } else { name };
    targets.get(name).ok_or_else(|| Error::UnknownTarget(name.to_owned()))
}

/// Validates and encodes one operation, field paths under `prefix`. Field
/// violations are reported before an unknown target.
pub fn plan(targets: &Targets, limits: &Limits, prefix: Prefix, op: Operation<'_>) -> Result<Plan, Error> {
    let mut c = Checker::new(limits, prefix);
    let (target, nsp, encoded) = match op {
        Operation::Emit(r) => {
            let nsp = c.namespace(&r.namespace);
            c.event("event", &r.event, false);
            let rooms = c.rooms("rooms", &r.rooms, true);
            let except = c.rooms("except_rooms", &r.except_rooms, false);
            let args = c.args(&r.args);
            let target = checked_target(targets, &mut c, op)?;
            let event = Event {
                nsp: &nsp,
                rooms: &rooms,
                except: &except,
                event: &r.event,
                args: &args,
                flags: flags(r.flags.as_ref()),
            };
            let m = target.dialect.event(&event);
            (target, nsp, m)
        }
        Operation::Broadcast(r) => {
            let nsp = c.namespace(&r.namespace);
            c.event("event", &r.event, false);
            let except = c.rooms("except_rooms", &r.except_rooms, false);
            let args = c.args(&r.args);
            let target = checked_target(targets, &mut c, op)?;
            let event = Event {
                nsp: &nsp,
                rooms: &[],
                except: &except,
                event: &r.event,
                args: &args,
                flags: flags(r.flags.as_ref()),
            };
            let m = target.dialect.event(&event);
            (target, nsp, m)
        }
        Operation::SocketsJoin(r) => {
            let nsp = c.namespace(&r.namespace);
            let rooms = c.rooms("rooms", &r.rooms, false);
            let except = c.rooms("except_rooms", &r.except_rooms, false);
            let join = c.rooms("join_rooms", &r.join_rooms, true);
            let target = checked_target(targets, &mut c, op)?;
            let m = target.dialect.sockets_join(&nsp, selector(&rooms, &except), &join);
            (target, nsp, m)
        }
        Operation::SocketsLeave(r) => {
            let nsp = c.namespace(&r.namespace);
            let rooms = c.rooms("rooms", &r.rooms, false);
            let except = c.rooms("except_rooms", &r.except_rooms, false);
            let leave = c.rooms("leave_rooms", &r.leave_rooms, true);
            let target = checked_target(targets, &mut c, op)?;
            let m = target.dialect.sockets_leave(&nsp, selector(&rooms, &except), &leave);
            (target, nsp, m)
        }
        Operation::DisconnectSockets(r) => {
            let nsp = c.namespace(&r.namespace);
            let rooms = c.rooms("rooms", &r.rooms, false);
            let except = c.rooms("except_rooms", &r.except_rooms, false);
            let target = checked_target(targets, &mut c, op)?;
            let m = target
                .dialect
                .disconnect_sockets(&nsp, selector(&rooms, &except), r.close);
            (target, nsp, m)
        }
        Operation::ServerSideEmit(r) => {
            let nsp = c.namespace(&r.namespace);
            c.event("event", &r.event, true);
            let args = c.args(&r.args);
            let target = checked_target(targets, &mut c, op)?;
            let m = target.dialect.server_side_emit(&nsp, &r.event, &args);
            (target, nsp, m)
        }
    };
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
    c.packet_size(message.largest_payload());
    c.finish().map_err(Error::InvalidArgument)?;
    Ok(Plan {
        target: Arc::clone(target),
        namespace: nsp,
        message,
    })
}

fn flags(f: Option<&pb::EmitFlags>) -> Flags {
    f.map_or_else(Flags::default, |f| Flags {
        volatile: f.volatile,
        compress: f.compress,
    })
}

fn selector<'a>(rooms: &'a [String], except: &'a [String]) -> Selector<'a> {
    Selector { rooms, except }
}

/// Ends validation of the request's own fields: their violations first,
/// then the target lookup.
fn checked_target<'t>(targets: &'t Targets, c: &mut Checker<'_>, op: Operation<'_>) -> Result<&'t Arc<Target>, Error> {
    if c.has_violations() {
        return Err(Error::InvalidArgument(c.take_violations()));
    }
    target(targets, op.target())
}
