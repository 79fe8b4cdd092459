//! The tonic adapter of `emitgate.v1.EmitterService`: each RPC is
//! admitted ([`Gateway::admit`]), its operations run through the pipeline
//! ([`crate::pipeline`]), and the outcome becomes the RPC's response, its
//! metrics and, on failure, one log line.

use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::{
    error::{Error, Limit, Violation, Violations},
    metrics,
    pb::{self, emitter_service_server::EmitterService},
    pipeline::{self, Sent},
    validate::Prefix,
};
pub use crate::{
    gateway::{Admission, Gateway},
    plan::{Operation, Plan as Encoded},
};

impl Gateway {
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

    /// Runs one operation of an admitted unary call: a batch of one.
    async fn run_one(&self, adm: &Admission, op: Operation<'_>) -> Result<Sent, Error> {
        let mut results = pipeline::run(self, adm, vec![(Prefix::Root, Ok(op))], false).await?;
        results.pop().unwrap_or_else(|| Ok(Sent::default()))
    }

    /// Runs an admitted BatchEmit call.
    async fn batch(&self, adm: &Admission, req: &pb::BatchEmitRequest) -> Result<pb::BatchEmitResponse, Error> {
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
        let inputs = req
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| match Operation::of_item(item) {
                Some((op, name)) => (Prefix::Item(i, name), Ok(op)),
                None => (
                    Prefix::Item(i, "emit"),
                    Err(Error::InvalidArgument(Violations::one(Violation::new(
                        format!("items[{i}]"),
                        "exactly one of emit or broadcast must be set",
                    )))),
                ),
            })
            .collect();
        let results: Vec<pb::ItemResult> = pipeline::run(self, adm, inputs, req.atomic)
            .await?
            .into_iter()
            .map(|r| match r {
                Ok(sent) => pb::ItemResult {
                    receivers: sent.reply.receivers,
                    stream_id: sent.reply.stream_id.unwrap_or_default(),
                    duplicate: sent.duplicate,
                    ..Default::default()
                },
                Err(e) => item_error(&e),
            })
            .collect();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let failed = results.iter().filter(|r| r.code != 0).count();
        Ok(pb::BatchEmitResponse {
            receivers: results.iter().map(|r| r.receivers).sum(),
            published: count(results.iter().filter(|r| r.code == 0 && !r.duplicate).count()),
            failed: count(failed),
            results,
        })
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

/// A gRPC code's name as go-grpc-prometheus writes it (`OK`,
/// `InvalidArgument`, …), so existing dashboards and alerts match.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
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
            Ok(adm) => $self.run_one(&adm, Operation::$op($request.get_ref())).await,
            Err(e) => Err(e),
        };
        let result = result.map(|sent| pb::$response {
            receivers: sent.reply.receivers,
            stream_id: sent.reply.stream_id.unwrap_or_default(),
            duplicate: sent.duplicate,
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
            Ok(adm) => self.batch(&adm, request.get_ref()).await,
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
