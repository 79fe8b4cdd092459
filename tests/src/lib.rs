//! Fixtures for emitgate's end-to-end tests: real processes, no mocks.
//!
//! - [`RedisServer`]: a `redis-server` on a free loopback port, which a test
//!   can stop and restart on the same port.
//! - [`Stack`]: the shared Node fixture `tests/harness/stack.js` (real
//!   Socket.IO 4 servers with `@socket.io/redis-adapter`, real
//!   `socket.io-client` clients) and its HTTP control API.
//! - [`Gateway`]: the emitgate server running in-process on port 0.
//! - [`Capture`]: a Redis PSUBSCRIBE that records every published message.
//! - [`browser::Browser`]: a real headless Chromium, for the admin console.
//! - [`failover`]: load, per-node subscribers and health history for the
//!   failover suites; [`sentinel::SentinelGroup`]: Redis with Sentinels.
//! - [`amqp::RabbitMq`]: a `rabbitmq-server` on free loopback ports.
//! - [`wait::wait_until`]: waiting, with a deadline, for a state no event
//!   announces.

pub mod amqp;
pub mod browser;
pub mod failover;
pub mod pki;
pub mod sentinel;
pub mod wait;
pub mod world;

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use emitgate::{
    Config,
    pb::{self, argument::Kind, emitter_service_client::EmitterServiceClient},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::oneshot,
};
use tonic::transport::Channel;

pub mod dialects;
pub mod python_v2;

/// How long fixtures wait for a process to come up before failing the test.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the control API client keeps an idle connection: below Node's
/// `keepAliveTimeout` (5 s), so that a call never goes out on a connection
/// the harness is closing at that moment (which fails the request).
const CONTROL_IDLE: Duration = Duration::from_secs(2);

/// The HTTP client of a harness's control API.
pub(crate) fn control_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(CONTROL_IDLE)
        .build()
        .expect("HTTP client")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// Waits until the Redis on `port` answers PING.
pub async fn wait_for_ping(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("redis url");
    wait::wait_until(
        format_args!("redis-server answering PING on port {port}"),
        STARTUP_TIMEOUT,
        async || {
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
}

/// A `redis-server` process on loopback.
pub struct RedisServer {
    child: Option<std::process::Child>,
    /// Its port.
    pub port: u16,
}

impl RedisServer {
    /// Starts a Redis without persistence on a free port and waits until it
    /// answers PING.
    pub async fn start() -> Self {
        let mut r = Self {
            child: None,
            port: free_port(),
        };
        r.restart().await;
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server not found: run `make setup`");
        self.child = Some(child);
        wait_for_ping(self.port).await;
    }

    /// Kills the process and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A message seen by [`Capture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The channel.
    pub channel: String,
    /// The raw payload.
    pub payload: Vec<u8>,
}

/// A PSUBSCRIBE `*` on a Redis, recording every message in order.
pub struct Capture {
    rx: tokio::sync::mpsc::UnboundedReceiver<Published>,
    _task: tokio::task::JoinHandle<()>,
}

impl Capture {
    /// Subscribes; returns once the subscription is active.
    pub async fn start(redis_url: &str) -> Self {
        Self::try_start(redis_url).await.expect("connect and PSUBSCRIBE")
    }

    /// Subscribes, or `None` if Redis does not answer.
    pub async fn try_start(redis_url: &str) -> Option<Self> {
        // Push messages (pub/sub on a multiplexed connection) need RESP3.
        let client = redis::Client::open(format!("{redis_url}?protocol=resp3")).expect("redis url");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (sub_tx, mut sub_rx) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new().set_push_sender(sub_tx);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .ok()?;
        conn.psubscribe("*").await.ok()?;
        let task = tokio::spawn(async move {
            let _conn = conn;
            while let Some(push) = sub_rx.recv().await {
                // The connection is gone (the server died or killed it).
                if push.kind == redis::PushKind::Disconnection {
                    break;
                }
                if push.kind == redis::PushKind::PMessage
                    && let [_, channel, payload] = push.data.as_slice()
                {
                    let channel: Vec<u8> = redis::from_redis_value(channel.clone()).unwrap_or_default();
                    let payload: Vec<u8> = redis::from_redis_value(payload.clone()).unwrap_or_default();
                    let _ = tx.send(Published {
                        channel: String::from_utf8_lossy(&channel).into(),
                        payload,
                    });
                }
            }
        });
        Some(Self { rx, _task: task })
    }

    /// The next message, or `None` once the subscription's connection is
    /// gone (no timeout).
    pub async fn recv(&mut self) -> Option<Published> {
        self.rx.recv().await
    }

    /// The next message, failing the test after 5 s.
    pub async fn next(&mut self) -> Published {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("no message published within 5 s")
            .expect("capture ended")
    }

    /// Proves nothing else was published: publishes a marker on a channel of
    /// its own and requires it to be the next message seen.
    pub async fn expect_nothing_before_marker(&mut self, redis_url: &str) {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut c = client.get_multiplexed_async_connection().await.expect("connect");
        let _: u64 = redis::cmd("PUBLISH")
            .arg("capture-marker")
            .arg("m")
            .query_async(&mut c)
            .await
            .expect("publish");
        let next = self.next().await;
        assert_eq!(next.channel, "capture-marker", "unexpected message published: {next:?}");
    }
}

/// The gateway, running in-process.
pub struct Gateway {
    /// Its gRPC address.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Starts the gateway on a free port with `config` (its `listen` is
    /// ignored).
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            emitgate::serve(listener, config, async {
                let _ = rx.await;
            })
            .await
            .expect("gateway failed");
        });
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A config for one Redis, from TOML `extra` (limits, more targets).
    pub fn config(redis_url: &str, extra: &str) -> Config {
        let mut c = Config::from_toml(extra).expect("test config");
        c.targets.get_mut("default").expect("default target").redis_url = redis_url.to_owned();
        c.health_interval = Duration::from_millis(100);
        // Tests run many gateways at once: no fixed admin port.
        c.admin_listen = None;
        c
    }

    /// A connected gRPC client.
    pub async fn client(&self) -> EmitterServiceClient<Channel> {
        EmitterServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to gateway")
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("gateway task");
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The Node Socket.IO fixture and its control API.
pub struct Stack {
    child: Child,
    _stdin: ChildStdin,
    http: reqwest::Client,
    /// Base URL of the control API.
    pub control: String,
    /// The Redis the Socket.IO servers use.
    pub redis_url: String,
}

/// A real socket.io-client connection made by the fixture.
#[derive(Debug, Clone)]
pub struct SioClient {
    /// The fixture's id for it.
    pub id: String,
    /// Its Socket.IO socket id.
    pub sid: String,
}

impl Stack {
    /// Starts `servers` Socket.IO servers on `redis_url`.
    pub async fn start(redis_url: &str, servers: u32) -> Self {
        let script = repo_root().join("tests/harness/stack.js");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--redis-url", redis_url, "--servers", &servers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node not found");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(STARTUP_TIMEOUT, lines.next_line())
            .await
            .expect("harness did not start in time (run `make setup` for its npm packages)")
            .expect("read harness stdout")
            .expect("harness exited before it was ready");
        let ready: Value = serde_json::from_str(&line).expect("harness ready line is JSON");
        Self {
            child,
            _stdin: stdin,
            http: control_client(),
            control: ready["control"].as_str().expect("control url").to_owned(),
            redis_url: redis_url.to_owned(),
        }
    }

    /// One control API call: its HTTP status and JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.control, path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("control API request");
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.expect("control API answers JSON");
        (status, body)
    }

    /// Connects a client to server `server`, namespace `nsp`, in `rooms`.
    pub async fn connect(&self, nsp: &str, server: u32, rooms: &[&str]) -> SioClient {
        self.connect_with(nsp, server, rooms, json!({})).await
    }

    /// [`connect`](Self::connect) with the harness's extra client options
    /// in `extra` (an object): `ack` (how it answers an ack callback),
    /// `data` (its `socket.data`), `auth` and `headers`.
    pub async fn connect_with(&self, nsp: &str, server: u32, rooms: &[&str], extra: Value) -> SioClient {
        let mut options = json!({"namespace": nsp, "server": server, "rooms": rooms});
        if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        let (status, body) = self.call(reqwest::Method::POST, "/clients", Some(options)).await;
        assert_eq!(status, 200, "connect failed: {body}");
        SioClient {
            id: body["id"].as_str().expect("id").into(),
            sid: body["sid"].as_str().expect("sid").into(),
        }
    }

    /// Every event `c` received, once one named `until` arrived (the test
    /// fails if it does not within 5 s).
    pub async fn events_until(&self, c: &SioClient, until: &str) -> Vec<Value> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/clients/{}/events?until={until}&timeout_ms=5000", c.id),
                None,
            )
            .await;
        assert_eq!(status, 200, "client {} never got {until:?}: {body}", c.id);
        body["events"].as_array().expect("events").clone()
    }

    /// Every event `c` received before the first `until` event, excluding it.
    pub async fn events_before(&self, c: &SioClient, until: &str) -> Vec<Value> {
        let mut events = self.events_until(c, until).await;
        let pos = events
            .iter()
            .position(|e| e["event"] == until)
            .expect("until event present");
        events.truncate(pos);
        events
    }

    /// Waits until `c` is disconnected; returns the reason.
    pub async fn disconnect_reason(&self, c: &SioClient) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/clients/{}/disconnect?timeout_ms=5000", c.id),
                None,
            )
            .await;
        assert_eq!(status, 200, "client {} was not disconnected: {body}", c.id);
        body["reason"].as_str().expect("reason").to_owned()
    }

    /// The client's state: `connected` and `disconnect_reason`.
    pub async fn state(&self, c: &SioClient) -> Value {
        self.call(reqwest::Method::GET, &format!("/clients/{}", c.id), None)
            .await
            .1
    }

    /// The rooms the server holding `c` has it in.
    pub async fn rooms(&self, c: &SioClient) -> Vec<String> {
        let (_, body) = self
            .call(reqwest::Method::GET, &format!("/clients/{}/rooms", c.id), None)
            .await;
        let mut rooms: Vec<String> = body["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .map(|r| r.as_str().unwrap_or_default().into())
            .collect();
        rooms.sort();
        rooms
    }

    /// Registers a real `io.of(nsp).on(event)` handler on every server.
    pub async fn listen(&self, nsp: &str, event: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/listen",
                Some(json!({"namespace": nsp, "event": event})),
            )
            .await;
        assert_eq!(status, 200, "listen failed: {body}");
    }

    /// The server-side events, once `count` arrived.
    pub async fn server_events(&self, nsp: &str, event: &str, count: usize) -> Vec<Value> {
        let path = format!("/server-events?namespace={nsp}&event={event}&count={count}&timeout_ms=5000");
        let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "servers did not get {count} {event:?}: {body}");
        body["events"].as_array().expect("events").clone()
    }

    /// Errors the Socket.IO servers hit (a malformed packet would crash a
    /// real server); tests require none.
    pub async fn errors(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/errors", None).await.1["errors"]
            .as_array()
            .expect("errors")
            .clone()
    }

    /// The Node process of the Socket.IO servers has not exited and still
    /// answers its control API.
    pub async fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("harness process status");
        assert_eq!(status, None, "the Socket.IO servers' process exited");
        let (code, body) = self.call(reqwest::Method::GET, "/info", None).await;
        assert_eq!(code, 200, "the Socket.IO servers' process does not answer: {body}");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A `value` argument from JSON.
pub fn value(v: Value) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Value(to_proto_value(v))),
    }
}

/// A `json` argument.
pub fn json_arg(text: &str) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Json(text.into())),
    }
}

/// A `binary` argument.
pub fn binary(bytes: &[u8]) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Binary(bytes.to_vec())),
    }
}

/// A `msgpack` argument from raw bytes.
pub fn msgpack(bytes: Vec<u8>) -> pb::Argument {
    pb::Argument {
        kind: Some(Kind::Msgpack(bytes)),
    }
}

/// Converts JSON into a protobuf `Value`.
pub fn to_proto_value(v: Value) -> prost_types::Value {
    use prost_types::value::Kind as K;
    let kind = match v {
        Value::Null => K::NullValue(0),
        Value::Bool(b) => K::BoolValue(b),
        Value::Number(n) => K::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => K::StringValue(s),
        Value::Array(a) => K::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_proto_value).collect(),
        }),
        Value::Object(o) => K::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, to_proto_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The field violations of an INVALID_ARGUMENT status, as `(field, description)`.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}
