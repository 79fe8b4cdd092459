//! The client subcommands of the `emitgate` binary: `emit`, `broadcast`,
//! `join`, `leave`, `disconnect` and `server-side-emit` call a running
//! gateway over gRPC, in the words of the JavaScript emitter
//! (`io.of(nsp).to(room).except(room).emit(event, ...args)`). `sockets`,
//! `rooms`, `servers` and the `--ack` option read the servers' answers back
//! (see [`feedback`]).
//!
//! Arguments after the event name are JSON text (`'{"a":1}'`, `'"text"'`,
//! `42`), sent as `json` arguments after a local check that each one is a
//! single JSON value; `@FILE` sends a file's bytes as a `binary` argument
//! and `@-` sends standard input.
//!
//! Exit codes (see [`exit_code`]): 0 when the call succeeded, 2 for a bad
//! command line or local input, and 10 + the gRPC status code when the call
//! failed (13 INVALID_ARGUMENT, 14 DEADLINE_EXCEEDED, 24 UNAVAILABLE,
//! 26 UNAUTHENTICATED, ...). A gateway that cannot be reached is UNAVAILABLE.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use serde::Serialize;
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_types::StatusExt;

use crate::pb::{self, argument::Kind, emitter_service_client::EmitterServiceClient};

pub mod feedback;
pub use feedback::Answer;
use feedback::{Ack, RoomsArgs, ServersArgs, SocketsArgs};

/// Default gateway address: the server's default listen address.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Exit code of a bad command line or unusable local input (an invalid JSON
/// argument, an unreadable file). Clap exits with 2 on its own usage errors:
/// the same number keeps "the command was wrong" to one code.
pub const EXIT_USAGE: u8 = 2;

/// Exit code of a failure that is neither a usage error nor a gRPC status
/// (e.g. standard output closed).
pub const EXIT_FAILURE: u8 = 1;

/// A failed call exits with this plus its gRPC code: every code gets its
/// own exit code, none collides with 0, 1 or 2, and the gRPC code is the
/// exit code minus 10.
pub const EXIT_STATUS_BASE: u8 = 10;

/// The default deadline of one call: ample for a gateway whose own Redis
/// timeout defaults to 2 s, short enough that a script does not hang.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The client subcommands, flattened into the binary's `Command`.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Send an event to the sockets in rooms (`io.to(room).emit(event, ...args)`).
    #[command(allow_negative_numbers = true)]
    Emit(EmitArgs),
    /// Send an event to every socket of a namespace (`io.emit(event, ...args)`).
    #[command(allow_negative_numbers = true)]
    Broadcast(BroadcastArgs),
    /// Make the selected sockets join rooms (`io.in(room).socketsJoin(rooms)`).
    Join(JoinArgs),
    /// Make the selected sockets leave rooms (`io.in(room).socketsLeave(rooms)`).
    Leave(LeaveArgs),
    /// Disconnect the selected sockets (`io.in(room).disconnectSockets(close)`).
    Disconnect(DisconnectArgs),
    /// Send an event to the Socket.IO servers' own handlers (`io.serverSideEmit(event, ...args)`).
    #[command(allow_negative_numbers = true)]
    ServerSideEmit(ServerSideEmitArgs),
    /// List the sockets in rooms, with their rooms and data (`io.in(room).fetchSockets()`).
    Sockets(SocketsArgs),
    /// List the rooms of a namespace, on every server (`io.of(nsp).adapter.allRooms()`).
    Rooms(RoomsArgs),
    /// Count the Socket.IO servers of a namespace (`io.of(nsp).serverCount()`).
    Servers(ServersArgs),
}

/// How to reach the gateway, and how to print the answer.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The gateway's gRPC address; `https://` (or any TLS flag) for TLS.
    #[arg(long, env = "EMITGATE_ADDR", default_value = DEFAULT_ADDR, value_name = "URL")]
    pub addr: String,

    /// API key secret, sent as `authorization: Bearer <secret>`.
    #[arg(long, env = "EMITGATE_API_KEY", value_name = "SECRET", hide_env_values = true)]
    pub api_key: Option<String>,

    /// CA certificate (PEM) the gateway's certificate is checked against.
    #[arg(long, env = "EMITGATE_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM) for mTLS; needs --client-key.
    #[arg(long, env = "EMITGATE_CLIENT_CERT", value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Client private key (PEM) for mTLS; needs --client-cert.
    #[arg(long, env = "EMITGATE_CLIENT_KEY", value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Name the gateway's certificate must carry [default: the host of --addr].
    #[arg(long, env = "EMITGATE_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,

    /// Deadline of the call (connecting included), in milliseconds.
    #[arg(long, env = "EMITGATE_TIMEOUT_MS", value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,

    /// Print one JSON object on stdout: the response's fields, or `{"error": {...}}`.
    #[arg(long)]
    pub json: bool,
}

/// The target and namespace of a call.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// Namespace (`io.of(namespace)`); a missing leading `/` is added [default: /].
    #[arg(long = "of", value_name = "NAMESPACE", default_value = "", hide_default_value = true)]
    pub namespace: String,

    /// Configured target (Socket.IO cluster) [default: the gateway's default target].
    #[arg(long, value_name = "NAME", default_value = "", hide_default_value = true)]
    pub target: String,

    /// Publish at most once per key within the gateway's window; a repeat reports `duplicate`.
    #[arg(long, value_name = "KEY", default_value = "", hide_default_value = true)]
    pub idempotency_key: String,
}

/// The delivery flags of an event.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// The event may be dropped for clients that are not ready (`io.volatile`).
    #[arg(long)]
    pub volatile: bool,

    /// Ask the servers to compress the packet (`io.compress(true)`) [default: the servers' own].
    #[arg(long, overrides_with = "no_compress")]
    pub compress: bool,

    /// Ask the servers not to compress the packet (`io.compress(false)`).
    #[arg(long, overrides_with = "compress")]
    pub no_compress: bool,
}

impl Flags {
    fn to_pb(&self) -> pb::EmitFlags {
        pb::EmitFlags {
            volatile: self.volatile,
            compress: match (self.compress, self.no_compress) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        }
    }
}

/// An event name and its arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Event {
    /// The event name.
    pub event: String,

    /// Arguments: JSON text (`'{"a":1}'`, `'"text"'`, `42`), `@FILE` for a file's bytes as
    /// binary, `@-` for standard input as binary.
    #[arg(value_name = "ARG")]
    pub args: Vec<String>,
}

/// `emitgate emit`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmitArgs {
    /// Room to reach, repeatable; a socket id is a room too. At least one: `broadcast`
    /// reaches every socket.
    #[arg(long = "to", visible_alias = "in", value_name = "ROOM", required = true)]
    pub to: Vec<String>,

    /// Skip the sockets in this room, repeatable.
    #[arg(long, value_name = "ROOM")]
    pub except: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub flags: Flags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub event: Event,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub ack: Ack,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate broadcast`.
#[derive(Debug, Clone, clap::Args)]
pub struct BroadcastArgs {
    /// Skip the sockets in this room, repeatable.
    #[arg(long, value_name = "ROOM")]
    pub except: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub flags: Flags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub event: Event,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub ack: Ack,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// Which sockets a remote operation applies to. Selecting every socket of
/// a namespace takes an explicit `--all`, as reaching everyone takes an
/// explicit `broadcast`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["to", "all"])))]
pub struct Selection {
    /// Select the sockets in this room, repeatable (a socket id is a room too).
    #[arg(long = "to", visible_alias = "in", value_name = "ROOM")]
    pub to: Vec<String>,

    /// Select every socket of the namespace.
    #[arg(long)]
    pub all: bool,

    /// Do not select the sockets in this room, repeatable.
    #[arg(long, value_name = "ROOM")]
    pub except: Vec<String>,
}

/// `emitgate join`.
#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    /// The rooms the selected sockets join.
    #[arg(value_name = "ROOM", required = true)]
    pub rooms: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub select: Selection,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate leave`.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaveArgs {
    /// The rooms the selected sockets leave.
    #[arg(value_name = "ROOM", required = true)]
    pub rooms: Vec<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub select: Selection,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate disconnect`.
#[derive(Debug, Clone, clap::Args)]
pub struct DisconnectArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub select: Selection,

    /// Close the underlying connection too (its other namespaces end as well).
    #[arg(long)]
    pub close: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// `emitgate server-side-emit`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerSideEmitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: Scope,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub event: Event,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub ack: Ack,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub conn: Connection,
}

/// What the CLI could not do before or besides the call.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or local input is unusable: exit [`EXIT_USAGE`].
    #[error("{0}")]
    Usage(String),

    /// The gateway (or the transport to it) answered with an error status.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(Status),
}

impl From<Status> for CliError {
    fn from(s: Status) -> Self {
        CliError::Status(s)
    }
}

/// The fields every write RPC answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Server subscriptions (or servers) that received the packet.
    pub receivers: u64,
    /// The idempotency key was already used: nothing was published again.
    pub duplicate: bool,
    /// The stream entry id, on a streams target.
    pub stream_id: String,
}

macro_rules! outcome_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Outcome {
            fn from(r: $t) -> Self {
                Self { receivers: r.receivers, duplicate: r.duplicate, stream_id: r.stream_id }
            }
        }
    )*};
}
outcome_from!(
    pb::EmitResponse,
    pb::BroadcastResponse,
    pb::SocketsJoinResponse,
    pb::SocketsLeaveResponse,
    pb::DisconnectSocketsResponse,
    pb::ServerSideEmitResponse
);

/// Runs one client subcommand and returns the process's exit code.
pub async fn run(command: ClientCommand) -> ExitCode {
    let conn = command.connection().clone();
    let result = call(command).await;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = match &result {
        Ok(_) => 0,
        Err(CliError::Usage(_)) => EXIT_USAGE,
        Err(CliError::Status(s)) => exit_code(s.code()),
    };
    let written = match (&result, conn.json) {
        (Err(CliError::Usage(m)), _) => writeln!(err, "emitgate: {m}"),
        (Ok(o), true) => write_json(&mut out, o),
        (Err(CliError::Status(s)), true) => write_json(&mut out, &error_json(s)),
        (Ok(o), false) => write!(out, "{}", o.describe()),
        (Err(CliError::Status(s)), false) => write!(err, "{}", describe_status(s, conn.api_key.is_some())),
    };
    match written {
        Ok(()) => ExitCode::from(code),
        Err(_) => ExitCode::from(EXIT_FAILURE),
    }
}

/// One JSON object and a newline.
fn write_json(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

impl ClientCommand {
    fn connection(&self) -> &Connection {
        match self {
            ClientCommand::Emit(a) => &a.conn,
            ClientCommand::Broadcast(a) => &a.conn,
            ClientCommand::Join(a) => &a.conn,
            ClientCommand::Leave(a) => &a.conn,
            ClientCommand::Disconnect(a) => &a.conn,
            ClientCommand::ServerSideEmit(a) => &a.conn,
            ClientCommand::Sockets(a) => &a.conn,
            ClientCommand::Rooms(a) => &a.conn,
            ClientCommand::Servers(a) => &a.conn,
        }
    }

    /// How long the gateway will wait for answers, for the commands that
    /// wait; `None` for the others.
    fn wait_ms(&self) -> Option<u32> {
        let ack = |a: &Ack| a.ack.then(|| a.wait_ms.unwrap_or(feedback::DEFAULT_WAIT_MS));
        match self {
            ClientCommand::Emit(a) => ack(&a.ack),
            ClientCommand::Broadcast(a) => ack(&a.ack),
            ClientCommand::ServerSideEmit(a) => ack(&a.ack),
            ClientCommand::Sockets(a) => Some(a.wait.wait_ms.unwrap_or(feedback::DEFAULT_WAIT_MS)),
            ClientCommand::Rooms(a) => Some(a.wait.wait_ms.unwrap_or(feedback::DEFAULT_WAIT_MS)),
            ClientCommand::Join(_)
            | ClientCommand::Leave(_)
            | ClientCommand::Disconnect(_)
            | ClientCommand::Servers(_) => None,
        }
    }
}

/// Builds the request (reading argument files first), connects and calls.
async fn call(command: ClientCommand) -> Result<Answer, CliError> {
    let conn = command.connection().clone();
    let timeout = Duration::from_millis(conn.timeout_ms);
    if let Some(wait) = command.wait_ms()
        && u64::from(wait) >= conn.timeout_ms
    {
        // The answer would come after the call's own deadline.
        return Err(CliError::Usage(format!(
            "--wait-ms {wait} must be below --timeout-ms {} (the deadline of the whole call)",
            conn.timeout_ms
        )));
    }
    // Local input first: a bad argument never opens a connection.
    let stdin = std::io::stdin();
    let request = Built::new(command, &mut stdin.lock())?;
    let (endpoint, addr) = endpoint(&conn, timeout)?;
    let key = match &conn.api_key {
        Some(k) => Some(
            MetadataValue::try_from(format!("Bearer {k}"))
                .map_err(|_| CliError::Usage("--api-key: not a valid header value".into()))?,
        ),
        None => None,
    };
    let work = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {addr}: {}", error_chain(&e))))?;
        request.send(EmitterServiceClient::new(channel), key, timeout).await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(CliError::from),
        Err(_) => {
            Err(Status::deadline_exceeded(format!("no answer within {} ms (--timeout-ms)", conn.timeout_ms)).into())
        }
    }
}

/// A request ready to send.
enum Built {
    Emit(pb::EmitRequest),
    Broadcast(pb::BroadcastRequest),
    Join(pb::SocketsJoinRequest),
    Leave(pb::SocketsLeaveRequest),
    Disconnect(pb::DisconnectSocketsRequest),
    ServerSideEmit(pb::ServerSideEmitRequest),
    EmitWithAck(pb::EmitWithAckRequest),
    FetchSockets(pb::FetchSocketsRequest),
    AllRooms(pb::AllRoomsRequest),
    ServerCount(pb::ServerCountRequest),
    ServerSideEmitWithAck(pb::ServerSideEmitWithAckRequest),
}

impl Built {
    /// The request of `command`; `stdin` is read for an `@-` argument.
    fn new(command: ClientCommand, stdin: &mut impl Read) -> Result<Self, CliError> {
        Ok(match command {
            ClientCommand::Emit(a) => {
                let m = pb::EmitRequest {
                    target: a.scope.target,
                    namespace: a.scope.namespace,
                    rooms: a.to,
                    except_rooms: a.except,
                    args: parse_args(&a.event.args, stdin)?,
                    event: a.event.event,
                    flags: Some(a.flags.to_pb()),
                    idempotency_key: a.scope.idempotency_key,
                };
                match a.ack.ack {
                    false => Built::Emit(m),
                    true => Built::EmitWithAck(pb::EmitWithAckRequest {
                        op: Some(pb::emit_with_ack_request::Op::Emit(m)),
                        timeout_ms: feedback::timeout_field(a.ack.wait_ms),
                    }),
                }
            }
            ClientCommand::Broadcast(a) => {
                let m = pb::BroadcastRequest {
                    target: a.scope.target,
                    namespace: a.scope.namespace,
                    except_rooms: a.except,
                    args: parse_args(&a.event.args, stdin)?,
                    event: a.event.event,
                    flags: Some(a.flags.to_pb()),
                    idempotency_key: a.scope.idempotency_key,
                };
                match a.ack.ack {
                    false => Built::Broadcast(m),
                    true => Built::EmitWithAck(pb::EmitWithAckRequest {
                        op: Some(pb::emit_with_ack_request::Op::Broadcast(m)),
                        timeout_ms: feedback::timeout_field(a.ack.wait_ms),
                    }),
                }
            }
            ClientCommand::Join(a) => Built::Join(pb::SocketsJoinRequest {
                target: a.scope.target,
                namespace: a.scope.namespace,
                rooms: a.select.to,
                except_rooms: a.select.except,
                join_rooms: a.rooms,
                idempotency_key: a.scope.idempotency_key,
            }),
            ClientCommand::Leave(a) => Built::Leave(pb::SocketsLeaveRequest {
                target: a.scope.target,
                namespace: a.scope.namespace,
                rooms: a.select.to,
                except_rooms: a.select.except,
                leave_rooms: a.rooms,
                idempotency_key: a.scope.idempotency_key,
            }),
            ClientCommand::Disconnect(a) => Built::Disconnect(pb::DisconnectSocketsRequest {
                target: a.scope.target,
                namespace: a.scope.namespace,
                rooms: a.select.to,
                except_rooms: a.select.except,
                close: a.close,
                idempotency_key: a.scope.idempotency_key,
            }),
            ClientCommand::ServerSideEmit(a) if a.ack.ack => {
                Built::ServerSideEmitWithAck(pb::ServerSideEmitWithAckRequest {
                    target: a.scope.target,
                    namespace: a.scope.namespace,
                    args: parse_args(&a.event.args, stdin)?,
                    event: a.event.event,
                    timeout_ms: feedback::timeout_field(a.ack.wait_ms),
                })
            }
            ClientCommand::ServerSideEmit(a) => Built::ServerSideEmit(pb::ServerSideEmitRequest {
                target: a.scope.target,
                namespace: a.scope.namespace,
                args: parse_args(&a.event.args, stdin)?,
                event: a.event.event,
                idempotency_key: a.scope.idempotency_key,
            }),
            ClientCommand::Sockets(a) => Built::FetchSockets(pb::FetchSocketsRequest {
                target: a.place.target,
                namespace: a.place.namespace,
                rooms: a.to,
                except_rooms: a.except,
                timeout_ms: feedback::timeout_field(a.wait.wait_ms),
            }),
            ClientCommand::Rooms(a) => Built::AllRooms(pb::AllRoomsRequest {
                target: a.place.target,
                namespace: a.place.namespace,
                timeout_ms: feedback::timeout_field(a.wait.wait_ms),
            }),
            ClientCommand::Servers(a) => Built::ServerCount(pb::ServerCountRequest {
                target: a.place.target,
                namespace: a.place.namespace,
            }),
        })
    }

    async fn send(
        self,
        mut client: EmitterServiceClient<Channel>,
        key: Option<MetadataValue<tonic::metadata::Ascii>>,
        timeout: Duration,
    ) -> Result<Answer, Status> {
        fn req<T>(msg: T, key: Option<MetadataValue<tonic::metadata::Ascii>>, timeout: Duration) -> Request<T> {
            let mut r = Request::new(msg);
            // The gateway learns the deadline too (grpc-timeout).
            r.set_timeout(timeout);
            if let Some(k) = key {
                r.metadata_mut().insert("authorization", k);
            }
            r
        }
        let outcome = |o: Outcome| Answer::Outcome(o);
        Ok(match self {
            Built::Emit(m) => outcome(client.emit(req(m, key, timeout)).await?.into_inner().into()),
            Built::Broadcast(m) => outcome(client.broadcast(req(m, key, timeout)).await?.into_inner().into()),
            Built::Join(m) => outcome(client.sockets_join(req(m, key, timeout)).await?.into_inner().into()),
            Built::Leave(m) => outcome(client.sockets_leave(req(m, key, timeout)).await?.into_inner().into()),
            Built::Disconnect(m) => outcome(
                client
                    .disconnect_sockets(req(m, key, timeout))
                    .await?
                    .into_inner()
                    .into(),
            ),
            Built::ServerSideEmit(m) => {
                outcome(client.server_side_emit(req(m, key, timeout)).await?.into_inner().into())
            }
            Built::EmitWithAck(m) => client.emit_with_ack(req(m, key, timeout)).await?.into_inner().into(),
            Built::FetchSockets(m) => client.fetch_sockets(req(m, key, timeout)).await?.into_inner().into(),
            Built::AllRooms(m) => client.all_rooms(req(m, key, timeout)).await?.into_inner().into(),
            Built::ServerCount(m) => client.server_count(req(m, key, timeout)).await?.into_inner().into(),
            Built::ServerSideEmitWithAck(m) => client
                .server_side_emit_with_ack(req(m, key, timeout))
                .await?
                .into_inner()
                .into(),
        })
    }
}

/// Turns the command-line arguments into event arguments: `@-` is standard
/// input and `@FILE` a file, both binary; anything else MUST be one JSON
/// value and is sent as a `json` argument (the gateway converts it).
pub fn parse_args(raw: &[String], stdin: &mut impl Read) -> Result<Vec<pb::Argument>, CliError> {
    let mut stdin_used = false;
    raw.iter()
        .enumerate()
        .map(|(i, text)| {
            let n = i + 1;
            let kind = if text == "@-" {
                if stdin_used {
                    return Err(CliError::Usage(format!(
                        "argument {n}: standard input (@-) can be read only once"
                    )));
                }
                stdin_used = true;
                let mut bytes = Vec::new();
                stdin
                    .read_to_end(&mut bytes)
                    .map_err(|e| CliError::Usage(format!("argument {n}: cannot read standard input: {e}")))?;
                Kind::Binary(bytes)
            } else if let Some(path) = text.strip_prefix('@') {
                Kind::Binary(read_file(Path::new(path)).map_err(|e| CliError::Usage(format!("argument {n}: {e}")))?)
            } else {
                // Checked here so a typo fails before anything is sent; the
                // gateway applies its own number and depth rules on top.
                serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                    CliError::Usage(format!(
                        "argument {n}: not JSON ({e}): {text:?}; a string argument is quoted, e.g. '\"text\"', \
                         and a file is @FILE"
                    ))
                })?;
                Kind::Json(text.clone())
            };
            Ok(pb::Argument { kind: Some(kind) })
        })
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The endpoint for `--addr` and the TLS flags.
/// Also returns the URL it connects to (`--addr` with its scheme).
fn endpoint(conn: &Connection, timeout: Duration) -> Result<(Endpoint, String), CliError> {
    let tls_flags = conn.ca_cert.is_some() || conn.client_cert.is_some() || conn.server_name.is_some();
    let addr = if conn.addr.contains("://") {
        conn.addr.clone()
    } else if tls_flags {
        format!("https://{}", conn.addr)
    } else {
        format!("http://{}", conn.addr)
    };
    let usage = |m: String| CliError::Usage(m);
    if tls_flags && addr.starts_with("http://") {
        return Err(usage(format!(
            "--addr {addr}: TLS flags (--ca-cert, --client-cert, --server-name) need an https:// address"
        )));
    }
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| usage(format!("--addr {addr}: {e}")))?
        .connect_timeout(timeout);
    if addr.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        match &conn.ca_cert {
            Some(ca) => {
                tls = tls.ca_certificate(Certificate::from_pem(
                    read_file(ca).map_err(|e| usage(format!("--ca-cert: {e}")))?,
                ));
            }
            None => {
                return Err(usage(format!(
                    "--addr {addr}: an https:// address needs --ca-cert (the CA that signed the gateway's \
                     certificate)"
                )));
            }
        }
        if let (Some(cert), Some(key)) = (&conn.client_cert, &conn.client_key) {
            tls = tls.identity(Identity::from_pem(
                read_file(cert).map_err(|e| usage(format!("--client-cert: {e}")))?,
                read_file(key).map_err(|e| usage(format!("--client-key: {e}")))?,
            ));
        }
        if let Some(name) = &conn.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| usage(format!("TLS: {}", error_chain(&e))))?;
    }
    Ok((endpoint, addr))
}

/// An error and its sources, `a: b: c` (a transport error's own message is
/// only "transport error").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !text.ends_with(&m) {
            text.push_str(": ");
            text.push_str(&m);
        }
        source = s.source();
    }
    text
}

/// The process exit code of a failed call with gRPC `code`:
/// [`EXIT_STATUS_BASE`] + the code (OK is 0).
pub fn exit_code(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        // Codes are 1..=16: the sum fits a u8.
        other => EXIT_STATUS_BASE + other as u8,
    }
}

/// The canonical name of a gRPC code, as `grpcurl` and the gRPC docs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The field violations (google.rpc.BadRequest) and retry delay
/// (google.rpc.RetryInfo) of a status's details.
fn details(status: &Status) -> (Vec<(String, String)>, Option<Duration>) {
    // Undecodable details come back empty: the status itself still prints.
    let d = status.get_error_details();
    let violations = d
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default();
    let retry = d.retry_info().and_then(|r| r.retry_delay);
    (violations, retry)
}

/// What `--json` prints for a failed call: `{"error": {...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    /// The error.
    pub error: ErrorBody,
}

/// The fields of a failed call, in the order they print.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The canonical code name, e.g. `INVALID_ARGUMENT`.
    pub code: &'static str,
    /// The numeric gRPC code.
    pub grpc_code: i32,
    /// The gateway's message.
    pub message: String,
    /// The field violations of `google.rpc.BadRequest` (empty when none).
    pub violations: Vec<ViolationJson>,
    /// The delay of `google.rpc.RetryInfo`, when the gateway suggests one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// One field violation.
#[derive(Debug, Serialize)]
pub struct ViolationJson {
    /// The field path, e.g. `rooms[1]`.
    pub field: String,
    /// Why it is invalid.
    pub description: String,
}

/// The `--json` form of a failed call.
pub fn error_json(status: &Status) -> ErrorJson {
    let (violations, retry) = details(status);
    ErrorJson {
        error: ErrorBody {
            code: code_name(status.code()),
            grpc_code: status.code() as i32,
            message: status.message().to_owned(),
            violations: violations
                .into_iter()
                .map(|(field, description)| ViolationJson { field, description })
                .collect(),
            retry_after_ms: retry.map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX)),
        },
    }
}

/// The human-readable lines of a success.
fn describe_outcome(o: &Outcome) -> String {
    let mut text = format!("ok: {} receivers", o.receivers);
    if !o.stream_id.is_empty() {
        text.push_str(&format!(", stream entry {}", o.stream_id));
    }
    if o.duplicate {
        text.push_str(" (duplicate: this idempotency key was already used; nothing was published again)");
    }
    text.push('\n');
    text
}

/// The human-readable lines of a failed call: code, message, each field
/// violation, the retry delay, and a hint for a missing key.
fn describe_status(status: &Status, sent_key: bool) -> String {
    let (violations, retry) = details(status);
    let mut text = format!("emitgate: {}: {}\n", code_name(status.code()), status.message());
    for (field, description) in violations {
        text.push_str(&format!("  {field}: {description}\n"));
    }
    if let Some(r) = retry {
        text.push_str(&format!("  retry after {} ms\n", r.as_millis()));
    }
    if status.code() == Code::Unauthenticated && !sent_key {
        text.push_str("  hint: pass the key with --api-key or EMITGATE_API_KEY\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str], stdin: &[u8]) -> Result<Vec<pb::Argument>, CliError> {
        let raw: Vec<String> = raw.iter().map(|s| (*s).to_owned()).collect();
        parse_args(&raw, &mut &stdin[..])
    }

    #[test]
    fn json_arguments_are_checked_and_sent_verbatim() {
        let got = args(&[r#"{"a":1}"#, "-1.5", r#""text""#], b"").unwrap();
        let kinds: Vec<_> = got.into_iter().map(|a| a.kind.unwrap()).collect();
        assert_eq!(
            kinds,
            [
                Kind::Json(r#"{"a":1}"#.into()),
                Kind::Json("-1.5".into()),
                Kind::Json(r#""text""#.into())
            ]
        );
        for bad in ["hello", "{\"a\":1} 2", "", "{", "NaN"] {
            let err = args(&["1", bad], b"").unwrap_err();
            assert!(
                matches!(&err, CliError::Usage(m) if m.starts_with("argument 2: not JSON")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn at_arguments_are_binary_from_a_file_or_stdin_once() {
        let dir = std::env::temp_dir().join(format!("emitgate-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.bin");
        std::fs::write(&file, [0u8, 255, 1]).unwrap();
        let at = format!("@{}", file.display());
        let got = args(&[&at, "@-"], b"from stdin").unwrap();
        assert_eq!(got[0].kind, Some(Kind::Binary(vec![0, 255, 1])));
        assert_eq!(got[1].kind, Some(Kind::Binary(b"from stdin".to_vec())));
        let err = args(&["@-", "@-"], b"x").unwrap_err();
        assert!(err.to_string().contains("only once"), "{err}");
        let missing = format!("@{}", dir.join("missing").display());
        let err = args(&[&missing], b"").unwrap_err();
        assert!(err.to_string().starts_with("argument 1: cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_grpc_code_has_its_own_exit_code_apart_from_usage() {
        let codes = (1..=16).map(Code::from_i32).collect::<Vec<_>>();
        let mut exits: Vec<u8> = codes.iter().map(|c| exit_code(*c)).collect();
        assert_eq!(exit_code(Code::InvalidArgument), 13);
        assert_eq!(exit_code(Code::Unavailable), 24);
        exits.sort_unstable();
        exits.dedup();
        assert_eq!(exits.len(), 16);
        assert!(!exits.contains(&0) && !exits.contains(&EXIT_USAGE) && !exits.contains(&EXIT_FAILURE));
        assert_eq!(exit_code(Code::Ok), 0);
    }

    #[test]
    fn error_json_carries_code_message_violations_and_retry() {
        let mut d = tonic_types::ErrorDetails::new();
        d.add_bad_request_violation("event", "reserved");
        d.set_retry_info(Some(Duration::from_millis(250)));
        let s = Status::with_error_details(Code::InvalidArgument, "invalid request", d);
        assert_eq!(
            serde_json::to_value(error_json(&s)).unwrap(),
            serde_json::json!({"error": {
                "code": "INVALID_ARGUMENT", "grpc_code": 3, "message": "invalid request",
                "violations": [{"field": "event", "description": "reserved"}],
                "retry_after_ms": 250,
            }})
        );
        let text = describe_status(&s, false);
        assert!(
            text.contains("  event: reserved\n") && text.contains("retry after 250 ms"),
            "{text}"
        );
    }
}
