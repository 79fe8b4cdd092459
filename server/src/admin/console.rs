//! The admin console: one page (HTML, CSS and JavaScript built into the
//! binary, nothing fetched from elsewhere, so it works offline) and its
//! JSON API:
//!
//! - `GET /api/status`: each target with its dialect and the health loop's
//!   last Redis PING; calls by RPC and code, events published and calls in
//!   flight, read from the gateway's own metrics (the page turns the
//!   counters into rates); the last failed calls.
//! - `POST /api/send`: an Emit or Broadcast (or, with `"ack": true`, an
//!   EmitWithAck that answers with the clients' acks), made by calling the
//!   gateway's gRPC service in-process with the caller's `authorization`
//!   header, so it is authenticated, scoped, rate limited, validated,
//!   counted and logged exactly as a gRPC call is.
//! - `POST /api/sockets`: "who is online", a FetchSockets made the same
//!   way, answered with each socket's id and rooms only (never its data or
//!   handshake).
//!
//! With API keys configured, the API requires `authorization: Bearer
//! <secret>` of a key with `admin = true` (the page itself is static and
//! holds no data; it asks for the key). Without keys on a loopback
//! listener, requests must name the host as `localhost` or an IP address,
//! which keeps other web sites out by DNS rebinding. `POST /api/send` takes
//! only `application/json` from the page's own origin, which a form or a
//! script on another site cannot send.

use std::collections::BTreeMap;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use tonic::{
    Request,
    metadata::{MetadataMap, MetadataValue},
};
use tonic_types::StatusExt;

use super::Admin;
use crate::{
    metrics::{self, HandledLabels},
    pb::{self, emitter_service_server::EmitterService},
    service::code_name,
};

const PAGE: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The page may load only its own script and style, talk only to its own
/// origin, and may not be framed (no clickjacking of the send form).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Every gRPC status code, for reading `grpc_server_handled_total`.
const GRPC_CODES: std::ops::RangeInclusive<i32> = 0..=16;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console`.
pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /console/app.js`.
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console/app.css`.
pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// A request the console does not serve: `{"error": …}` with its status.
struct Refusal {
    status: StatusCode,
    message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"emitgate admin\""),
            );
        }
        response
    }
}

/// The caller, once allowed to use the console.
struct Caller {
    /// The admin key's id; `None` when authentication is off.
    key: Option<String>,
    /// The request's `authorization` header as gRPC metadata, for the
    /// calls the console makes on the caller's behalf.
    metadata: MetadataMap,
}

/// Whether `host` (a Host header: `name[:port]`) names the host as
/// `localhost` or an IP address rather than by some other DNS name.
fn is_local_host_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

impl Admin {
    /// Lets the request use the console, or answers why not.
    fn authorize(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let mut metadata = MetadataMap::new();
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = MetadataValue::try_from(value.as_bytes()).map_err(|_| {
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "the authorization header must be `Bearer <key>`",
                )
            })?;
            metadata.insert("authorization", value);
        }
        if !self.gateway.requires_auth() {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            if self.loopback && !is_local_host_name(host) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "authentication is off, so the console answers only requests to localhost or an IP \
                         address, not to {host:?}"
                    ),
                ));
            }
            return Ok(Caller { key: None, metadata });
        }
        let key = match self.gateway.authenticate(&metadata) {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(Caller { key: None, metadata }),
            Err(e) => {
                tracing::info!(error = %e, "admin console: refused");
                return Err(refuse(StatusCode::UNAUTHORIZED, e.to_string()));
            }
        };
        if let Err(e) = key.allow_admin() {
            tracing::info!(error = %e, "admin console: refused");
            return Err(refuse(StatusCode::FORBIDDEN, e.to_string()));
        }
        Ok(Caller {
            key: Some(key.id.clone()),
            metadata,
        })
    }
}

/// `GET /api/status`.
pub(super) async fn status(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    let caller = match admin.authorize(&headers) {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    let m = metrics::global();
    let mut targets: Vec<_> = admin.gateway.targets().collect();
    targets.sort_by_key(|t| (t.name != crate::config::DEFAULT_TARGET, t.name.clone()));
    let targets: Vec<Value> = targets
        .into_iter()
        .map(|t| {
            let labels = metrics::target_labels(&t.name, t.dialect.name());
            let redis = match admin.health.last(&t.name) {
                None => json!({ "state": "unknown" }),
                Some(ping) => json!({
                    "state": if ping.error.is_none() { "up" } else { "down" },
                    "latency_ms": ping.latency.as_secs_f64() * 1000.0,
                    "error": ping.error,
                    "checked_ms_ago": u64::try_from(ping.at.elapsed().as_millis()).unwrap_or(u64::MAX),
                }),
            };
            json!({
                "name": t.name,
                "dialect": t.dialect.name(),
                "redis": redis,
                "events_published": m.events_published.get(&labels).map_or(0, |c| c.get()),
                "redis_errors": m.redis_errors.get(&labels).map_or(0, |c| c.get()),
            })
        })
        .collect();
    let calls: Vec<Value> = crate::auth::RPCS
        .iter()
        .map(|&method| {
            let codes: BTreeMap<&str, u64> = GRPC_CODES
                .filter_map(|i| {
                    let labels = HandledLabels {
                        grpc_service: crate::SERVICE_NAME,
                        grpc_method: method,
                        grpc_code: code_name(tonic::Code::from_i32(i)),
                    };
                    let n = m.handled.get(&labels).map_or(0, |c| c.get());
                    (n > 0).then_some((labels.grpc_code, n))
                })
                .collect();
            let total: u64 = codes.values().sum();
            let ok = codes.get("OK").copied().unwrap_or(0);
            json!({ "method": method, "total": total, "errors": total - ok, "codes": codes })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "auth_required": admin.gateway.requires_auth(),
            "key": caller.key,
            "uptime_ms": u64::try_from(admin.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "ready": admin.ready.load(std::sync::atomic::Ordering::SeqCst),
            "in_flight": m.in_flight.get(),
            "targets": targets,
            "calls": calls,
            "failures": admin.gateway.failed_calls(),
        }),
    )
}

/// What the page's form sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendForm {
    /// `emit` (to rooms) or `broadcast` (to the whole namespace).
    op: SendOp,
    #[serde(default)]
    target: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    except_rooms: Vec<String>,
    #[serde(default)]
    event: String,
    /// The arguments as the JSON text of an array, one element each.
    #[serde(default)]
    args: String,
    /// Send with an ack callback (EmitWithAck) and answer with the acks.
    #[serde(default)]
    ack: bool,
    /// How long EmitWithAck waits, in milliseconds (0: the gateway's default).
    #[serde(default)]
    timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SendOp {
    Emit,
    Broadcast,
}

/// Reads the form's arguments: a JSON array, each element one `json`
/// argument holding the element's text exactly as typed.
fn arguments(text: &str) -> Result<Vec<pb::Argument>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        format!("args must be a JSON array, one element per argument, e.g. [\"hello\", {{\"n\": 1}}]: {e}")
    })?;
    Ok(items
        .into_iter()
        .map(|raw| pb::Argument {
            kind: Some(pb::argument::Kind::Json(raw.get().to_owned())),
        })
        .collect())
}

/// Whether the request comes from the console's own page: JSON, and no
/// other site's origin.
fn same_origin_json(headers: &HeaderMap) -> Result<(), Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form as application/json",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://").or_else(|| o.strip_prefix("https://")));
        if host.is_none() || origin_host != host {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "requests from another origin are refused",
            ));
        }
    }
    Ok(())
}

/// A gRPC request made in-process, with the console caller's metadata.
fn in_process<T>(metadata: MetadataMap, message: T) -> Request<T> {
    Request::from_parts(metadata, tonic::Extensions::default(), message)
}

/// `POST /api/send`: the gateway's answer, `{"ok": true, "receivers": N, …}`
/// or `{"ok": false, "code": …, "message": …, "violations": […]}`.
pub(super) async fn send(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match admin
        .authorize(&headers)
        .and_then(|c| same_origin_json(&headers).map(|()| c))
    {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    let form: SendForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad form: {e}")).into_response(),
    };
    let args = match arguments(&form.args) {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e).into_response(),
    };
    let metadata = caller.metadata;
    let emit = |form: SendForm, args| pb::EmitRequest {
        target: form.target,
        namespace: form.namespace,
        rooms: form.rooms,
        except_rooms: form.except_rooms,
        event: form.event,
        args,
        ..Default::default()
    };
    let broadcast = |form: SendForm, args| pb::BroadcastRequest {
        target: form.target,
        namespace: form.namespace,
        except_rooms: form.except_rooms,
        event: form.event,
        args,
        ..Default::default()
    };
    let answer = match (form.op, form.ack) {
        (op, true) => {
            let timeout_ms = form.timeout_ms;
            let op = match op {
                SendOp::Emit => pb::emit_with_ack_request::Op::Emit(emit(form, args)),
                SendOp::Broadcast => pb::emit_with_ack_request::Op::Broadcast(broadcast(form, args)),
            };
            admin
                .gateway
                .emit_with_ack(in_process(
                    metadata,
                    pb::EmitWithAckRequest {
                        op: Some(op),
                        timeout_ms,
                    },
                ))
                .await
                .map(|r| {
                    let r = r.into_inner();
                    json!({
                        "ok": true,
                        "ack": true,
                        "sockets": r.sockets,
                        "acks": r.acks.iter().map(crate::cli::feedback::argument_json).collect::<Vec<_>>(),
                        "servers": r.servers,
                        "servers_expected": r.servers_expected,
                        "complete": r.complete,
                    })
                })
        }
        (SendOp::Emit, false) => admin
            .gateway
            .emit(in_process(metadata, emit(form, args)))
            .await
            .map(|r| {
                let r = r.into_inner();
                sent(r.receivers, &r.stream_id, r.duplicate)
            }),
        (SendOp::Broadcast, false) => admin
            .gateway
            .broadcast(in_process(metadata, broadcast(form, args)))
            .await
            .map(|r| {
                let r = r.into_inner();
                sent(r.receivers, &r.stream_id, r.duplicate)
            }),
    };
    json_response(StatusCode::OK, &answer.unwrap_or_else(|status| failed(&status)))
}

/// The answer of a write: receivers, stream entry, duplicate.
fn sent(receivers: u64, stream_id: &str, duplicate: bool) -> Value {
    json!({
        "ok": true,
        "receivers": receivers,
        "stream_id": stream_id,
        "duplicate": duplicate,
    })
}

/// The answer of a failed call: code, message, field violations.
fn failed(status: &tonic::Status) -> Value {
    let violations: Vec<Value> = status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default()
        .into_iter()
        .map(|v| json!({ "field": v.field, "description": v.description }))
        .collect();
    json!({
        "ok": false,
        "code": code_name(status.code()),
        "message": status.message(),
        "violations": violations,
    })
}

/// What the "who is online" form sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlineForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    namespace: String,
    /// The room whose sockets to list; empty lists the whole namespace.
    #[serde(default)]
    room: String,
}

/// `POST /api/sockets`: `{"ok": true, "sockets": [{"id", "rooms"}], …}`
/// or a failed call as for `/api/send`. Only ids and rooms leave the
/// gateway: `socket.data` and the handshake may hold users' details.
pub(super) async fn sockets(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match admin
        .authorize(&headers)
        .and_then(|c| same_origin_json(&headers).map(|()| c))
    {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    let form: OnlineForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad form: {e}")).into_response(),
    };
    let request = pb::FetchSocketsRequest {
        target: form.target,
        namespace: form.namespace,
        rooms: if form.room.is_empty() {
            Vec::new()
        } else {
            vec![form.room]
        },
        ..Default::default()
    };
    let answer = admin
        .gateway
        .fetch_sockets(in_process(caller.metadata, request))
        .await
        .map(|r| {
            let r = r.into_inner();
            let sockets: Vec<Value> = r
                .sockets
                .into_iter()
                .map(|s| json!({ "id": s.id, "rooms": s.rooms }))
                .collect();
            json!({
                "ok": true,
                "sockets": sockets,
                "servers": r.servers,
                "servers_expected": r.servers_expected,
                "complete": r.complete,
                "truncated": r.truncated,
            })
        });
    json_response(StatusCode::OK, &answer.unwrap_or_else(|status| failed(&status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_that_dns_rebinding_cannot_use() {
        for ok in [
            "localhost",
            "localhost:9090",
            "127.0.0.1:9090",
            "127.0.0.1",
            "[::1]:9090",
            "LOCALHOST:1",
        ] {
            assert!(is_local_host_name(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example:9090",
            "127.0.0.1.evil.example",
            "[evil]:1",
            "localhost.evil:80",
        ] {
            assert!(!is_local_host_name(bad), "{bad}");
        }
    }

    #[test]
    fn arguments_keep_each_element_as_typed() {
        let args = arguments(r#" ["hello", {"n": 1, "big": 12345678901234567890}, [1.50]] "#).unwrap();
        let texts: Vec<_> = args
            .iter()
            .map(|a| match &a.kind {
                Some(pb::argument::Kind::Json(t)) => t.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [r#""hello""#, r#"{"n": 1, "big": 12345678901234567890}"#, "[1.50]"]
        );
        assert!(arguments("   ").unwrap().is_empty());
        assert!(arguments(r#"{"a": 1}"#).unwrap_err().contains("JSON array"));
        assert!(arguments("[1,").is_err());
    }
}
