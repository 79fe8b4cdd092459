//! Configuration: command-line flags, `EMITGATE_*` environment variables and
//! an optional TOML file (`--config`).
//!
//! Precedence, highest first: flag, environment variable, file, built-in
//! default. [`Config::load`] resolves everything once at start-up and fails
//! with a message naming the setting that is wrong.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

pub use crate::codec::Parser;
use crate::codec::{python::DataShape, sharded::SubscriptionMode};

/// Default gRPC listen address: loopback, so a fresh install exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default Redis of the `default` target.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default channel prefix: the adapter's and the emitter's default `key`.
pub const DEFAULT_KEY: &str = "socket.io";
/// Name of the target that flags configure and empty `target` fields select.
pub const DEFAULT_TARGET: &str = "default";

/// Command-line flags; each also reads an `EMITGATE_*` environment variable.
#[derive(Debug, clap::Parser, Default)]
#[command(name = "emitgate", version, about = "gRPC gateway that publishes Socket.IO events into Redis", long_about = None)]
pub struct Cli {
    /// A tool instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML config file (listen address, limits, named targets).
    #[arg(long, env = "EMITGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "EMITGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Redis URL of the `default` target [default: redis://127.0.0.1:6379].
    #[arg(long, env = "EMITGATE_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// python-socketio: the `default` target's AMQP broker (`amqp://…`), instead of Redis: its servers
    /// use KombuManager / AsyncAioPikaManager (or Flask-SocketIO's `message_queue='amqp://…'`).
    #[arg(long, env = "EMITGATE_AMQP_URL", value_name = "URL")]
    pub amqp_url: Option<String>,

    /// python-socketio on AMQP: whose message properties to copy, `kombu` or `aio-pika` [default: kombu].
    #[arg(long, env = "EMITGATE_AMQP_PUBLISHER", value_name = "PUBLISHER", value_parser = from_name::<crate::amqp::Publisher>)]
    pub amqp_publisher: Option<crate::amqp::Publisher>,

    /// Sentinel: the monitored master's name for the `default` target (with
    /// --sentinel-url, instead of --redis-url); the gateway asks the Sentinels for the master.
    #[arg(long, env = "EMITGATE_SENTINEL_MASTER", value_name = "NAME")]
    pub sentinel_master: Option<String>,

    /// Sentinel: a Sentinel's URL (`redis://host:26379`), repeatable; the variable is comma-separated.
    #[arg(
        long = "sentinel-url",
        env = "EMITGATE_SENTINEL_URLS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub sentinel_urls: Vec<String>,

    /// Sentinel: the Sentinels' password, for the URLs that carry none.
    #[arg(
        long,
        env = "EMITGATE_SENTINEL_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub sentinel_password: Option<String>,

    /// Sentinel: the master's password (its `requirepass`).
    #[arg(
        long,
        env = "EMITGATE_SENTINEL_MASTER_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub sentinel_master_password: Option<String>,

    /// Channel prefix (the adapter's `key` option) of the `default` target [default: socket.io].
    #[arg(long, env = "EMITGATE_KEY", value_name = "KEY")]
    pub key: Option<String>,

    /// Wire format of the `default` target's servers: `socketio`, `python-socketio`,
    /// `socketio-v2`, `socketio-sharded` or `socketio-streams` [default: socketio].
    #[arg(long, env = "EMITGATE_DIALECT", value_name = "DIALECT", value_parser = from_name::<Dialect>)]
    pub dialect: Option<Dialect>,

    /// socketio: the `default` target's adapter `parser`, `msgpack` or `json` [default: msgpack].
    #[arg(long, env = "EMITGATE_PARSER", value_name = "PARSER", value_parser = from_name::<Parser>)]
    pub parser: Option<Parser>,

    /// python-socketio: the manager's channel of the `default` target [default: socketio].
    #[arg(long, env = "EMITGATE_CHANNEL", value_name = "CHANNEL")]
    pub channel: Option<String>,

    /// python-socketio: how `data` carries the arguments, `list` or `single` [default: list].
    #[arg(long, env = "EMITGATE_DATA_SHAPE", value_name = "SHAPE", value_parser = from_name::<DataShape>)]
    pub data_shape: Option<DataShape>,

    /// The `default` target's --redis-url (and --cluster-seeds) are Redis Cluster seed nodes.
    #[arg(long, env = "EMITGATE_CLUSTER")]
    pub cluster: bool,

    /// More Redis Cluster seed nodes of the `default` target, comma-separated (needs --cluster).
    #[arg(long, env = "EMITGATE_CLUSTER_SEEDS", value_name = "URLS", value_delimiter = ',')]
    pub cluster_seeds: Vec<String>,

    /// socketio-sharded: the servers' `subscriptionMode`, `static`, `dynamic` or
    /// `dynamic-private` [default: static].
    #[arg(long, env = "EMITGATE_SUBSCRIPTION_MODE", value_name = "MODE", value_parser = from_name::<SubscriptionMode>)]
    pub subscription_mode: Option<SubscriptionMode>,

    /// socketio-streams: the adapter's `streamName` [default: socket.io].
    #[arg(long, env = "EMITGATE_STREAM_NAME", value_name = "NAME")]
    pub stream_name: Option<String>,

    /// socketio-streams: the adapter's `streamCount` [default: 1].
    #[arg(long, env = "EMITGATE_STREAM_COUNT", value_name = "N")]
    pub stream_count: Option<u32>,

    /// socketio-streams: the adapter's `maxLen` (`XADD … MAXLEN ~`) [default: 10000].
    #[arg(long, env = "EMITGATE_MAXLEN", value_name = "N")]
    pub maxlen: Option<u64>,

    /// Redis command timeout in milliseconds; past it a call fails with UNAVAILABLE [default: 2000].
    #[arg(long, env = "EMITGATE_REDIS_TIMEOUT_MS", value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,

    /// Redis connections per target [default: 8].
    #[arg(long, env = "EMITGATE_REDIS_POOL_SIZE", value_name = "N")]
    pub redis_pool_size: Option<usize>,

    /// How often health checks PING each target's Redis, in milliseconds [default: 1000].
    #[arg(long, env = "EMITGATE_HEALTH_INTERVAL_MS", value_name = "MS")]
    pub health_interval_ms: Option<u64>,

    /// Longest event name, in bytes [default: 256].
    #[arg(long, env = "EMITGATE_MAX_EVENT_BYTES", value_name = "N")]
    pub max_event_bytes: Option<usize>,

    /// Longest room name (rooms, except rooms, joined/left rooms), in bytes [default: 256].
    #[arg(long, env = "EMITGATE_MAX_ROOM_BYTES", value_name = "N")]
    pub max_room_bytes: Option<usize>,

    /// Longest namespace, in bytes [default: 256].
    #[arg(long, env = "EMITGATE_MAX_NAMESPACE_BYTES", value_name = "N")]
    pub max_namespace_bytes: Option<usize>,

    /// Most rooms in one room list of a request [default: 1000].
    #[arg(long, env = "EMITGATE_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,

    /// Most arguments of one event [default: 64].
    #[arg(long, env = "EMITGATE_MAX_ARGS", value_name = "N")]
    pub max_args: Option<usize>,

    /// Largest encoded packet published to Redis, in bytes [default: 1048576].
    #[arg(long, env = "EMITGATE_MAX_PACKET_BYTES", value_name = "N")]
    pub max_packet_bytes: Option<usize>,

    /// Most items in one BatchEmit [default: 1000].
    #[arg(long, env = "EMITGATE_MAX_BATCH_ITEMS", value_name = "N")]
    pub max_batch_items: Option<usize>,

    /// Largest gRPC request message, in bytes [default: 16777216].
    #[arg(long, env = "EMITGATE_MAX_MESSAGE_BYTES", value_name = "N")]
    pub max_message_bytes: Option<usize>,

    /// Most field violations listed in one error; the rest are counted in one last entry [default: 20].
    #[arg(long, env = "EMITGATE_MAX_VIOLATIONS", value_name = "N")]
    pub max_violations: Option<usize>,

    /// Allow listening (gRPC or admin) on a non-loopback address with no API key configured.
    /// Anyone who reaches the port can then push events to every browser.
    #[arg(long, env = "EMITGATE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// TLS certificate chain (PEM); with --tls-key, serve gRPC over TLS.
    #[arg(long, env = "EMITGATE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "EMITGATE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// CA (PEM) whose client certificates are accepted: enables mTLS.
    #[arg(long, env = "EMITGATE_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Admin HTTP listener for /metrics, /healthz, /readyz and the console (/console); `off` disables it
    /// [default: 127.0.0.1:9090].
    #[arg(long, env = "EMITGATE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Most calls in flight at once; beyond it calls get RESOURCE_EXHAUSTED [default: 4096].
    #[arg(long, env = "EMITGATE_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// How long an idempotency key is remembered, in milliseconds [default: 300000].
    #[arg(long, env = "EMITGATE_IDEMPOTENCY_WINDOW_MS", value_name = "MS")]
    pub idempotency_window_ms: Option<u64>,

    /// On SIGTERM/SIGINT, how long in-flight calls may take to finish, in milliseconds [default: 10000].
    #[arg(long, env = "EMITGATE_DRAIN_TIMEOUT_MS", value_name = "MS")]
    pub drain_timeout_ms: Option<u64>,

    /// Log format: `plain` or `json` (level from RUST_LOG, default info) [default: plain].
    #[arg(long, env = "EMITGATE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Limits of the request/response RPCs (EmitWithAck, FetchSockets, …).
    #[command(flatten)]
    pub feedback: crate::feedback::FeedbackArgs,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a new API key secret and the config lines that accept it.
    Keygen {
        /// The key's id (used in logs, metrics and scopes).
        #[arg(long, default_value = "my-service")]
        id: String,
    },
    /// Calls to a running gateway: emit, broadcast, join, leave, disconnect, server-side-emit.
    #[command(flatten)]
    Client(Box<crate::cli::ClientCommand>),
}

/// The log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// The wire format a target's Socket.IO servers read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Dialect {
    /// `@socket.io/redis-adapter` classic pub/sub (socket.io 4): MessagePack
    /// on `{key}#{nsp}#`, JSON requests on `{key}-request#{nsp}#`.
    #[default]
    #[serde(rename = "socketio")]
    SocketIo,
    /// python-socketio / Flask-SocketIO `RedisManager` / `AsyncRedisManager`:
    /// JSON messages on one channel (target option `channel`).
    #[serde(rename = "python-socketio")]
    PythonSocketIo,
    /// socket.io 2 with socket.io-redis 5: MessagePack on `{key}#{nsp}#`,
    /// packet type 5 for binary, socket ids in `except`.
    #[serde(rename = "socketio-v2")]
    SocketIoV2,
    /// `@socket.io/redis-adapter` `createShardedAdapter` (Redis ≥ 7):
    /// ClusterMessages with SPUBLISH on `{key}#{nsp}#` (target option
    /// `subscription_mode`).
    #[serde(rename = "socketio-sharded")]
    SocketIoSharded,
    /// `@socket.io/redis-streams-adapter`: XADD entries (target options
    /// `stream_name`, `stream_count`, `maxlen`).
    #[serde(rename = "socketio-streams")]
    SocketIoStreams,
}

/// Request limits. Each one protects the Socket.IO servers or the gateway;
/// a request over a limit is INVALID_ARGUMENT naming the limit and its value
/// (RESOURCE_EXHAUSTED for the gateway-wide `max_in_flight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest event name in bytes.
    pub max_event_bytes: usize,
    /// Longest room name in bytes.
    pub max_room_bytes: usize,
    /// Longest namespace in bytes.
    pub max_namespace_bytes: usize,
    /// Most rooms per room list.
    pub max_rooms: usize,
    /// Most arguments per event.
    pub max_args: usize,
    /// Largest encoded packet in bytes.
    pub max_packet_bytes: usize,
    /// Most items per BatchEmit.
    pub max_batch_items: usize,
    /// Largest gRPC request in bytes.
    pub max_message_bytes: usize,
    /// Most field violations listed in one error (not a request limit: it
    /// bounds the answer to a bad request).
    pub max_violations: usize,
    /// Most calls in flight at once, gateway-wide.
    pub max_in_flight: usize,
}

impl Limits {
    /// The built-in limits: the one place their defaults are declared (the
    /// flags' `[default: …]` help is checked against it by a test).
    pub const DEFAULT: Limits = Limits {
        // Event and room names are identifiers, not payloads.
        max_event_bytes: 256,
        max_room_bytes: 256,
        max_namespace_bytes: 256,
        // Enough for fan-out to a page of users, small enough that the
        // servers' per-packet room set stays cheap.
        max_rooms: 1000,
        max_args: 64,
        // Socket.IO's own default `maxHttpBufferSize` is 1 MB: a bigger
        // packet would be refused by the clients' transport anyway.
        max_packet_bytes: 1 << 20,
        // One BatchEmit is one Redis pipeline; 1000 items keeps a
        // pipeline's memory and latency bounded.
        max_batch_items: 1000,
        // Room for a full batch of near-limit items.
        max_message_bytes: 16 << 20,
        // Enough to fix a request in one round; the error details then
        // stay a few kB, far under the 8 KiB trailers some clients take.
        max_violations: 20,
        // Far above the concurrency that keeps one gateway busy, low
        // enough that a stalled Redis cannot pile up unbounded memory of
        // waiting calls.
        max_in_flight: 4096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Default Redis command timeout in milliseconds: a healthy Redis answers
/// in well under a millisecond, so two seconds means it is gone (or a
/// failover is under way) and the caller should hear UNAVAILABLE.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 2000;
/// Default Redis connections per target: enough to keep Redis's one thread
/// busy from pipelined writes, few enough not to crowd its `maxclients`.
pub const DEFAULT_REDIS_POOL_SIZE: usize = 8;
/// Default health-check period in milliseconds: readiness follows a Redis
/// outage within about a second at one PING per second per target.
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 1000;
/// Default idempotency window in milliseconds: five minutes covers a
/// caller's retries with backoff, and bounds the keys Redis keeps.
pub const DEFAULT_IDEMPOTENCY_WINDOW_MS: u64 = 300_000;
/// Default drain time at shutdown in milliseconds: under the 30 s grace
/// period Kubernetes gives a pod, with room for the process to exit.
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 10_000;

/// One named Socket.IO cluster to publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Name used in requests' `target` field.
    pub name: String,
    /// Redis URL (`redis://`, `rediss://`, `unix://`).
    pub redis_url: String,
    /// Wire format of the target's servers, with its adapter's options.
    pub options: DialectOptions,
    /// Channel prefix (the adapter's `key`).
    pub key: String,
    /// Redis Cluster: `redis_url` (and `cluster_seeds`) are seed nodes; the
    /// gateway discovers the cluster and sends each command to the master
    /// that owns its channel's (or stream's) slot, following redirections.
    pub cluster: bool,
    /// Redis Cluster: more seed nodes, tried after `redis_url`.
    pub cluster_seeds: Vec<String>,
    /// Redis Sentinel: the master is found through Sentinels (`redis_url`
    /// is then unused).
    pub sentinel: Option<crate::sentinel::SentinelConfig>,
    /// AMQP: the servers' managers share a broker, not Redis (`redis_url`
    /// is then unused; python-socketio only).
    pub amqp: Option<crate::amqp::AmqpConfig>,
}

impl TargetConfig {
    /// The target's dialect.
    pub fn dialect(&self) -> Dialect {
        self.options.dialect()
    }
}

/// A target's dialect and the options of its servers' adapter: the
/// dialect (`dialect = "…"`) decides which options exist, so a target holds
/// exactly the options its servers read, each resolved to its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectOptions {
    /// `socketio`.
    SocketIo {
        /// The adapter's `parser` (default `msgpack`).
        parser: Parser,
    },
    /// `python-socketio`.
    PythonSocketIo {
        /// The manager's channel (default `socketio`; Flask-SocketIO's
        /// default is `flask-socketio`).
        channel: String,
        /// How `data` carries the arguments (default `list`).
        data_shape: crate::codec::python::DataShape,
    },
    /// `socketio-v2`: socket.io-redis 5 has no options besides `key`.
    SocketIoV2,
    /// `socketio-sharded`.
    SocketIoSharded {
        /// The servers' `subscriptionMode` (default `static`: everything on
        /// the namespace's main channel, right for every mode).
        subscription_mode: crate::codec::sharded::SubscriptionMode,
    },
    /// `socketio-streams`.
    SocketIoStreams {
        /// The adapter's `streamName` (default `socket.io`).
        stream_name: String,
        /// The adapter's `streamCount` (default 1).
        stream_count: u32,
        /// The adapter's `maxLen`, `XADD … MAXLEN ~` (default 10000).
        maxlen: u64,
    },
}

impl Default for DialectOptions {
    fn default() -> Self {
        DialectOptions::SocketIo {
            parser: Parser::default(),
        }
    }
}

impl DialectOptions {
    /// The dialect these options belong to.
    pub fn dialect(&self) -> Dialect {
        match self {
            DialectOptions::SocketIo { .. } => Dialect::SocketIo,
            DialectOptions::PythonSocketIo { .. } => Dialect::PythonSocketIo,
            DialectOptions::SocketIoV2 => Dialect::SocketIoV2,
            DialectOptions::SocketIoSharded { .. } => Dialect::SocketIoSharded,
            DialectOptions::SocketIoStreams { .. } => Dialect::SocketIoStreams,
        }
    }

    /// The options of `dialect` from what a file entry or the flags set
    /// (`setting` names them in errors); an option the dialect's adapter
    /// does not have is an error naming it.
    fn resolve(dialect: Dialect, s: &DialectSettings, setting: &str) -> Result<Self, ConfigError> {
        let named = |name: &str| self::setting(setting, name);
        let only = |name: &'static str, set: bool, why: &'static str| {
            if set { Err(bad(named(name), why)) } else { Ok(()) }
        };
        if dialect != Dialect::SocketIo {
            only("parser", s.parser.is_some(), no_parser_option(dialect))?;
        }
        if dialect != Dialect::PythonSocketIo {
            only(
                "channel",
                s.channel.is_some(),
                "only the python-socketio dialect reads it",
            )?;
            only(
                "data_shape",
                s.data_shape.is_some(),
                "only the python-socketio dialect reads it",
            )?;
        }
        if dialect != Dialect::SocketIoSharded {
            only(
                "subscription_mode",
                s.subscription_mode.is_some(),
                "only the socketio-sharded dialect reads it",
            )?;
        }
        if dialect != Dialect::SocketIoStreams {
            for (name, set) in [
                ("stream_name", s.stream_name.is_some()),
                ("stream_count", s.stream_count.is_some()),
                ("maxlen", s.maxlen.is_some()),
            ] {
                only(name, set, "only the socketio-streams dialect reads it")?;
            }
        }
        Ok(match dialect {
            Dialect::SocketIo => DialectOptions::SocketIo {
                parser: s.parser.unwrap_or_default(),
            },
            Dialect::PythonSocketIo => {
                let channel = s
                    .channel
                    .clone()
                    .unwrap_or_else(|| crate::codec::python::DEFAULT_CHANNEL.to_owned());
                if channel.is_empty() {
                    return Err(bad(named("channel"), "must not be empty"));
                }
                DialectOptions::PythonSocketIo {
                    channel,
                    data_shape: s.data_shape.unwrap_or_default(),
                }
            }
            Dialect::SocketIoV2 => DialectOptions::SocketIoV2,
            Dialect::SocketIoSharded => DialectOptions::SocketIoSharded {
                subscription_mode: s.subscription_mode.unwrap_or_default(),
            },
            Dialect::SocketIoStreams => {
                let stream_name = s
                    .stream_name
                    .clone()
                    .unwrap_or_else(|| crate::codec::streams::DEFAULT_STREAM_NAME.to_owned());
                if stream_name.is_empty() {
                    return Err(bad(named("stream_name"), "must not be empty"));
                }
                let stream_count = s.stream_count.unwrap_or(crate::codec::streams::DEFAULT_STREAM_COUNT);
                // The adapter computes the stream index with 32-bit integers.
                if !(1..=i32::MAX.unsigned_abs()).contains(&stream_count) {
                    return Err(bad(named("stream_count"), format!("must be from 1 to {}", i32::MAX)));
                }
                let maxlen = s.maxlen.unwrap_or(crate::codec::streams::DEFAULT_MAXLEN);
                if maxlen == 0 {
                    return Err(bad(named("maxlen"), "must be greater than 0"));
                }
                DialectOptions::SocketIoStreams {
                    stream_name,
                    stream_count,
                    maxlen,
                }
            }
        })
    }
}

/// The dialect options as a file entry or the flags write them, before the
/// dialect decides which of them exist ([`DialectOptions::resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DialectSettings {
    parser: Option<Parser>,
    channel: Option<String>,
    data_shape: Option<crate::codec::python::DataShape>,
    subscription_mode: Option<crate::codec::sharded::SubscriptionMode>,
    stream_name: Option<String>,
    stream_count: Option<u32>,
    maxlen: Option<u64>,
}

/// A target as written, before its dialect options are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetDraft {
    name: String,
    redis_url: String,
    dialect: Dialect,
    key: String,
    settings: DialectSettings,
    cluster: bool,
    cluster_seeds: Vec<String>,
    sentinel: Option<crate::sentinel::SentinelConfig>,
    amqp_url: Option<String>,
    amqp_publisher: Option<crate::amqp::Publisher>,
}

impl TargetDraft {
    /// The default target when the file has none.
    fn default_target() -> Self {
        Self {
            name: DEFAULT_TARGET.to_owned(),
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            dialect: Dialect::SocketIo,
            key: DEFAULT_KEY.to_owned(),
            settings: DialectSettings::default(),
            cluster: false,
            cluster_seeds: Vec::new(),
            sentinel: None,
            amqp_url: None,
            amqp_publisher: None,
        }
    }

    /// The checked target; `setting` names its options in errors.
    fn finish(&self, setting: &str) -> Result<TargetConfig, ConfigError> {
        let options = DialectOptions::resolve(self.dialect, &self.settings, setting)?;
        let t = TargetConfig {
            name: self.name.clone(),
            redis_url: self.redis_url.clone(),
            options,
            key: self.key.clone(),
            cluster: self.cluster,
            cluster_seeds: self.cluster_seeds.clone(),
            sentinel: self.sentinel.clone(),
            amqp: crate::amqp::settings(self.dialect, self.amqp_url.as_deref(), self.amqp_publisher)
                .map_err(|(option, message)| bad(self::setting(setting, option), message))?,
        };
        if t.amqp.is_some() {
            return check_amqp_target(setting, &t).map(|()| t);
        }
        check_target(setting, &t)?;
        Ok(t)
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Targets by name; always holds [`DEFAULT_TARGET`].
    pub targets: BTreeMap<String, TargetConfig>,
    /// Request limits.
    pub limits: Limits,
    /// Redis command timeout.
    pub redis_timeout: Duration,
    /// Redis connections per target.
    pub redis_pool_size: usize,
    /// Health-check period.
    pub health_interval: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// API keys (empty: authentication off).
    pub keys: Vec<crate::auth::KeyConfig>,
    /// Whether listening beyond loopback without keys was explicitly allowed.
    pub insecure_no_auth: bool,
    /// TLS, when configured.
    pub tls: Option<TlsConfig>,
    /// Admin HTTP listener (None: off).
    pub admin_listen: Option<SocketAddr>,
    /// How long idempotency keys are remembered.
    pub idempotency_window: Duration,
    /// How long in-flight calls may take to finish at shutdown.
    pub drain_timeout: Duration,
    /// The config file, re-read on SIGHUP for API keys.
    pub path: Option<PathBuf>,
    /// Limits of the request/response RPCs.
    pub feedback: crate::feedback::Settings,
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Client CA (PEM): when set, clients may present certificates (mTLS).
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required (mTLS only).
    pub client_auth_required: bool,
}

/// The default admin listener: loopback, so metrics are not exposed.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// A configuration error, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("config: {setting}: {message}")]
pub struct ConfigError {
    /// The setting, e.g. `targets[1].redis_url` or `--listen`.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        message: message.into(),
    }
}

/// The TOML file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    redis: FileRedis,
    #[serde(default)]
    targets: Vec<FileTarget>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    tls: FileTls,
    admin_listen: Option<String>,
    idempotency_window_ms: Option<u64>,
    drain_timeout_ms: Option<u64>,
    #[serde(default)]
    feedback: crate::feedback::FileFeedback,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    #[serde(default)]
    insecure_no_auth: bool,
    #[serde(default)]
    keys: Vec<crate::auth::KeyConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    #[serde(default)]
    client_auth_required: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_event_bytes: Option<usize>,
    max_room_bytes: Option<usize>,
    max_namespace_bytes: Option<usize>,
    max_rooms: Option<usize>,
    max_args: Option<usize>,
    max_packet_bytes: Option<usize>,
    max_batch_items: Option<usize>,
    max_message_bytes: Option<usize>,
    max_violations: Option<usize>,
    max_in_flight: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRedis {
    timeout_ms: Option<u64>,
    pool_size: Option<usize>,
    health_interval_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    name: String,
    redis_url: Option<String>,
    #[serde(default)]
    dialect: Dialect,
    key: Option<String>,
    parser: Option<Parser>,
    channel: Option<String>,
    data_shape: Option<crate::codec::python::DataShape>,
    #[serde(default)]
    cluster: bool,
    #[serde(default)]
    cluster_seeds: Vec<String>,
    sentinel_master: Option<String>,
    #[serde(default)]
    sentinel_urls: Vec<String>,
    sentinel_password: Option<String>,
    sentinel_master_password: Option<String>,
    subscription_mode: Option<crate::codec::sharded::SubscriptionMode>,
    stream_name: Option<String>,
    stream_count: Option<u32>,
    maxlen: Option<u64>,
    amqp_url: Option<String>,
    amqp_publisher: Option<crate::amqp::Publisher>,
}

impl Config {
    /// Resolves flags, environment and the file named by `--config`.
    pub fn load(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| bad(format!("--config {}", path.display()), e.to_string()))?
            }
            None => FileConfig::default(),
        };
        let path = cli.config.clone();
        Self::resolve(cli, file).map(|c| Self { path, ..c })
    }

    /// Reads only the API keys from the config file (SIGHUP reload).
    pub fn load_keys(path: &std::path::Path) -> Result<crate::auth::KeyStore, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        let file = toml::from_str::<FileConfig>(&text)
            .map_err(|e| bad(format!("--config {}", path.display()), e.to_string()))?;
        crate::auth::KeyStore::new(&file.auth.keys).map_err(|(setting, message)| bad(setting, message))
    }

    /// Parses a config from TOML text alone (flags unset), for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| bad("config file", e.to_string()))?;
        Self::resolve(Cli::default(), file)
    }

    fn resolve(mut cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let listen_text = cli
            .listen
            .take()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            bad(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:50051 ({e})"),
            )
        })?;

        let d = Limits::DEFAULT;
        let fl = file.limits;
        let limits = Limits {
            max_event_bytes: positive(
                "max_event_bytes",
                cli.max_event_bytes.or(fl.max_event_bytes),
                d.max_event_bytes,
            )?,
            max_room_bytes: positive(
                "max_room_bytes",
                cli.max_room_bytes.or(fl.max_room_bytes),
                d.max_room_bytes,
            )?,
            max_namespace_bytes: positive(
                "max_namespace_bytes",
                cli.max_namespace_bytes.or(fl.max_namespace_bytes),
                d.max_namespace_bytes,
            )?,
            max_rooms: positive("max_rooms", cli.max_rooms.or(fl.max_rooms), d.max_rooms)?,
            max_args: positive("max_args", cli.max_args.or(fl.max_args), d.max_args)?,
            max_packet_bytes: positive(
                "max_packet_bytes",
                cli.max_packet_bytes.or(fl.max_packet_bytes),
                d.max_packet_bytes,
            )?,
            max_batch_items: positive(
                "max_batch_items",
                cli.max_batch_items.or(fl.max_batch_items),
                d.max_batch_items,
            )?,
            max_message_bytes: positive(
                "max_message_bytes",
                cli.max_message_bytes.or(fl.max_message_bytes),
                d.max_message_bytes,
            )?,
            max_violations: positive(
                "max_violations",
                cli.max_violations.or(fl.max_violations),
                d.max_violations,
            )?,
            max_in_flight: positive("max_in_flight", cli.max_in_flight.or(fl.max_in_flight), d.max_in_flight)?,
        };

        let mut targets = BTreeMap::new();
        let mut default_draft = None;
        for (i, t) in file.targets.into_iter().enumerate() {
            let setting = format!("targets[{i}]");
            if t.name.is_empty() {
                return Err(bad(format!("{setting}.name"), "must not be empty"));
            }
            let sentinel = crate::sentinel::SentinelConfig::from_settings(
                t.sentinel_master,
                t.sentinel_urls,
                t.sentinel_password,
                t.sentinel_master_password,
            )
            .map_err(|(option, message)| bad(format!("{setting}.{option}"), message))?;
            if sentinel.is_some() && t.redis_url.is_some() {
                return Err(bad(format!("{setting}.redis_url"), SENTINEL_OR_URL));
            }
            if t.amqp_url.is_some() && t.redis_url.is_some() {
                return Err(bad(format!("{setting}.amqp_url"), crate::amqp::AMQP_OR_REDIS));
            }
            let draft = TargetDraft {
                sentinel,
                redis_url: t.redis_url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned()),
                dialect: t.dialect,
                key: t.key.unwrap_or_else(|| DEFAULT_KEY.to_owned()),
                settings: DialectSettings {
                    parser: t.parser,
                    channel: t.channel,
                    data_shape: t.data_shape,
                    subscription_mode: t.subscription_mode,
                    stream_name: t.stream_name,
                    stream_count: t.stream_count,
                    maxlen: t.maxlen,
                },
                cluster: t.cluster,
                cluster_seeds: t.cluster_seeds,
                amqp_url: t.amqp_url,
                amqp_publisher: t.amqp_publisher,
                name: t.name,
            };
            let target = draft.finish(&setting)?;
            if targets.insert(target.name.clone(), target).is_some() {
                return Err(bad(format!("{setting}.name"), "duplicate target name"));
            }
            if draft.name == DEFAULT_TARGET {
                default_draft = Some(draft);
            }
        }
        // The default target: the file's `default` entry, with flags
        // overriding its settings, or one built from flags and defaults.
        let mut default = default_draft.unwrap_or_else(TargetDraft::default_target);
        let sentinel_flags = apply_sentinel_flags(&mut default, &mut cli)?;
        let flags_changed = apply_target_flags(&mut default, &mut cli) || sentinel_flags;
        if flags_changed || !targets.contains_key(DEFAULT_TARGET) {
            targets.insert(DEFAULT_TARGET.to_owned(), default.finish(FLAGS)?);
        }

        let fr = file.redis;
        crate::auth::KeyStore::new(&file.auth.keys).map_err(|(setting, message)| bad(setting, message))?;
        let insecure_no_auth = cli.insecure_no_auth || file.auth.insecure_no_auth;
        if file.auth.keys.is_empty() && !listen.ip().is_loopback() && !insecure_no_auth {
            return Err(bad(
                "listen",
                format!(
                    "{listen} is not a loopback address and no API key is configured ([[auth.keys]]): \
                     anyone reaching it could push events to every browser. Configure keys \
                     (`emitgate keygen`), or pass --insecure-no-auth to accept that"
                ),
            ));
        }
        let tls = match (cli.tls_cert.or(file.tls.cert), cli.tls_key.or(file.tls.key)) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert,
                key,
                client_ca: cli.tls_client_ca.or(file.tls.client_ca),
                client_auth_required: file.tls.client_auth_required,
            }),
            (None, None) if cli.tls_client_ca.is_none() && file.tls.client_ca.is_none() => None,
            (None, None) => return Err(bad("tls.client_ca", "needs tls.cert and tls.key")),
            (Some(_), None) => return Err(bad("tls.key", "tls.cert is set, so tls.key is needed")),
            (None, Some(_)) => return Err(bad("tls.cert", "tls.key is set, so tls.cert is needed")),
        };
        let admin_text = cli
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
        let admin_listen: Option<SocketAddr> = match admin_text.as_str() {
            "off" | "" => None,
            text => Some(
                text.parse()
                    .map_err(|e| bad("admin_listen", format!("{text:?} is not an address ({e})")))?,
            ),
        };
        if let Some(addr) = admin_listen
            && file.auth.keys.is_empty()
            && !addr.ip().is_loopback()
            && !insecure_no_auth
        {
            return Err(bad(
                "admin_listen",
                format!(
                    "{addr} is not a loopback address and no API key is configured ([[auth.keys]]): anyone \
                     reaching it could send events from the admin console. Configure keys with `admin = true` \
                     (`emitgate keygen`), keep the admin listener on loopback, or pass --insecure-no-auth to \
                     accept that"
                ),
            ));
        }
        Ok(Self {
            keys: file.auth.keys,
            insecure_no_auth,
            tls,
            admin_listen,
            idempotency_window: Duration::from_millis(positive_u64(
                "idempotency_window_ms",
                cli.idempotency_window_ms.or(file.idempotency_window_ms),
                DEFAULT_IDEMPOTENCY_WINDOW_MS,
            )?),
            drain_timeout: Duration::from_millis(positive_u64(
                "drain_timeout_ms",
                cli.drain_timeout_ms.or(file.drain_timeout_ms),
                DEFAULT_DRAIN_TIMEOUT_MS,
            )?),
            path: None,
            feedback: crate::feedback::Settings::resolve(&cli.feedback, &file.feedback)?,
            listen,
            targets,
            limits,
            redis_timeout: Duration::from_millis(positive_u64(
                "redis_timeout_ms",
                cli.redis_timeout_ms.or(fr.timeout_ms),
                DEFAULT_REDIS_TIMEOUT_MS,
            )?),
            redis_pool_size: positive(
                "redis_pool_size",
                cli.redis_pool_size.or(fr.pool_size),
                DEFAULT_REDIS_POOL_SIZE,
            )?,
            health_interval: Duration::from_millis(positive_u64(
                "health_interval_ms",
                cli.health_interval_ms.or(fr.health_interval_ms),
                DEFAULT_HEALTH_INTERVAL_MS,
            )?),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
        })
    }
}

/// Parses a flag's value by the name the config file uses for it (the
/// enum's serde name), so that flag, variable and file accept the same words.
fn from_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text)).map_err(|e| e.to_string())
}

/// The setting prefix of the default target's options given as flags or
/// `EMITGATE_*` variables; [`setting`] turns it into flag names.
const FLAGS: &str = "flags";

/// The name of option `name` of the target whose settings start with
/// `prefix`: `targets[1].stream_count`, or `--stream-count
/// (EMITGATE_STREAM_COUNT)` for the default target's flags.
fn setting(prefix: &str, name: &str) -> String {
    if prefix == FLAGS {
        format!("--{} (EMITGATE_{})", name.replace('_', "-"), name.to_uppercase())
    } else {
        format!("{prefix}.{name}")
    }
}

/// Moves the default target's options given as flags (or `EMITGATE_*`
/// variables) into it, over the file's values; tells whether that changed it.
fn apply_target_flags(t: &mut TargetDraft, cli: &mut Cli) -> bool {
    let before = t.clone();
    if let Some(v) = cli.redis_url.take() {
        t.redis_url = v;
        // --redis-url alone moves a file's AMQP target to Redis.
        t.amqp_url = None;
    }
    if let Some(v) = cli.amqp_url.take() {
        t.amqp_url = Some(v);
    }
    t.amqp_publisher = cli.amqp_publisher.or(t.amqp_publisher);
    if let Some(v) = cli.key.take() {
        t.key = v;
    }
    t.dialect = cli.dialect.unwrap_or(t.dialect);
    let s = &mut t.settings;
    s.parser = cli.parser.or(s.parser);
    s.channel = cli.channel.take().or(s.channel.take());
    s.data_shape = cli.data_shape.or(s.data_shape);
    s.subscription_mode = cli.subscription_mode.or(s.subscription_mode);
    s.stream_name = cli.stream_name.take().or(s.stream_name.take());
    s.stream_count = cli.stream_count.or(s.stream_count);
    s.maxlen = cli.maxlen.or(s.maxlen);
    t.cluster |= cli.cluster;
    if !cli.cluster_seeds.is_empty() {
        t.cluster_seeds = std::mem::take(&mut cli.cluster_seeds);
    }
    *t != before
}

/// Why a target may not have both `redis_url` and Sentinel settings.
const SENTINEL_OR_URL: &str = "a target reaches Redis either through redis_url or through Sentinel \
     (sentinel_master, sentinel_urls), not both";

/// Applies the default target's Sentinel flags over the file's settings;
/// `--redis-url` alone replaces a Sentinel of the file. Tells whether that
/// changed the target.
fn apply_sentinel_flags(t: &mut TargetDraft, cli: &mut Cli) -> Result<bool, ConfigError> {
    let given = cli.sentinel_master.is_some()
        || !cli.sentinel_urls.is_empty()
        || cli.sentinel_password.is_some()
        || cli.sentinel_master_password.is_some();
    if cli.amqp_url.is_some() && cli.redis_url.is_some() {
        return Err(bad(setting(FLAGS, "amqp_url"), crate::amqp::AMQP_OR_REDIS));
    }
    if !given {
        return Ok((cli.redis_url.is_some() || cli.amqp_url.is_some()) && t.sentinel.take().is_some());
    }
    if cli.redis_url.is_some() {
        return Err(bad(setting(FLAGS, "redis_url"), SENTINEL_OR_URL));
    }
    let current = t.sentinel.take();
    let (master, urls, password, master_password) = match current {
        Some(c) => (Some(c.master), c.urls, c.password, c.master_password),
        None => (None, Vec::new(), None, None),
    };
    let flag_urls = std::mem::take(&mut cli.sentinel_urls);
    t.sentinel = crate::sentinel::SentinelConfig::from_settings(
        cli.sentinel_master.take().or(master),
        if flag_urls.is_empty() { urls } else { flag_urls },
        cli.sentinel_password.take().or(password),
        cli.sentinel_master_password.take().or(master_password),
    )
    .map_err(|(option, message)| match option {
        "sentinel_urls" => bad("--sentinel-url (EMITGATE_SENTINEL_URLS)", message),
        option => bad(setting(FLAGS, option), message),
    })?;
    Ok(true)
}

fn positive(setting: &str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(bad(setting, "must be greater than 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn positive_u64(setting: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value {
        Some(0) => Err(bad(setting, "must be greater than 0")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn check_target(setting: &str, t: &TargetConfig) -> Result<(), ConfigError> {
    redis::parse_redis_url(&t.redis_url)
        .filter(|u| matches!(u.scheme(), "redis" | "rediss" | "unix" | "redis+unix"))
        .ok_or_else(|| {
            bad(
                self::setting(setting, "redis_url"),
                format!("{:?} is not a redis:// URL", t.redis_url),
            )
        })?;
    if t.key.is_empty() {
        return Err(bad(self::setting(setting, "key"), "must not be empty"));
    }
    check_cluster_options(setting, t)
}

/// An AMQP target: no Redis Cluster or Sentinel settings.
fn check_amqp_target(setting: &str, t: &TargetConfig) -> Result<(), ConfigError> {
    if t.cluster || !t.cluster_seeds.is_empty() {
        return Err(bad(self::setting(setting, "cluster"), crate::amqp::AMQP_OR_REDIS));
    }
    if t.sentinel.is_some() {
        return Err(bad(
            self::setting(setting, "sentinel_master"),
            crate::amqp::AMQP_OR_REDIS,
        ));
    }
    Ok(())
}

/// Why a dialect's servers have no `parser` to name: only the classic
/// adapter (`createAdapter`, the `socketio` dialect) takes one.
fn no_parser_option(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::SocketIoSharded => {
            "only the socketio dialect reads it: createShardedAdapter has no `parser` option \
             (it reads JSON and MessagePack messages alike, and the gateway writes what it reads)"
        }
        Dialect::SocketIoStreams => {
            "only the socketio dialect reads it: @socket.io/redis-streams-adapter has no `parser` option \
             (it reads JSON and MessagePack entries alike, and the gateway writes what it reads)"
        }
        Dialect::SocketIoV2 => {
            "only the socketio dialect reads it: socket.io-redis 5 has no `parser` option (always MessagePack)"
        }
        Dialect::PythonSocketIo | Dialect::SocketIo => {
            "only the socketio dialect reads it: python-socketio's managers have no `parser` option (always JSON)"
        }
    }
}

/// Redis Cluster seeds, and Sentinel.
fn check_cluster_options(setting: &str, t: &TargetConfig) -> Result<(), ConfigError> {
    if t.cluster && t.sentinel.is_some() {
        return Err(bad(
            self::setting(setting, "sentinel_master"),
            "a target is either a Redis Cluster or Sentinel-managed, not both",
        ));
    }
    if !t.cluster && !t.cluster_seeds.is_empty() {
        return Err(bad(self::setting(setting, "cluster_seeds"), "needs cluster = true"));
    }
    if t.cluster && !t.redis_url.starts_with("redis://") {
        return Err(bad(
            self::setting(setting, "redis_url"),
            "a Redis Cluster seed must be a redis:// URL",
        ));
    }
    for (i, seed) in t.cluster_seeds.iter().enumerate() {
        if !seed.starts_with("redis://") || redis::parse_redis_url(seed).is_none() {
            return Err(bad(
                self::setting(setting, &format!("cluster_seeds[{i}]")),
                format!("{seed:?} is not a redis:// URL"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        let t = &c.targets[DEFAULT_TARGET];
        assert_eq!(t.redis_url, DEFAULT_REDIS_URL);
        assert_eq!(t.key, "socket.io");
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.redis_timeout, Duration::from_secs(2));
    }

    /// Every flag's `[default: …]` help is what the config resolves to when
    /// nothing is set: the defaults are declared once (the `DEFAULT_*`
    /// constants, `Limits::DEFAULT`, the dialects' constants) and the help
    /// text, the file and the flags cannot drift from them.
    #[test]
    fn the_documented_defaults_are_the_resolved_defaults() {
        use clap::CommandFactory as _;

        let c = Config::from_toml("").unwrap();
        let t = &c.targets[DEFAULT_TARGET];
        let options = |dialect| DialectOptions::resolve(dialect, &DialectSettings::default(), FLAGS).unwrap();
        let (
            DialectOptions::PythonSocketIo { channel, data_shape },
            DialectOptions::SocketIoStreams {
                stream_name,
                stream_count,
                maxlen,
            },
        ) = (options(Dialect::PythonSocketIo), options(Dialect::SocketIoStreams))
        else {
            unreachable!("each dialect resolves to its own options")
        };
        let DialectOptions::SocketIoSharded { subscription_mode } = options(Dialect::SocketIoSharded) else {
            unreachable!("each dialect resolves to its own options")
        };
        let DialectOptions::SocketIo { parser } = options(Dialect::SocketIo) else {
            unreachable!("each dialect resolves to its own options")
        };
        let ms = |d: Duration| d.as_millis().to_string();
        let (l, f) = (&c.limits, &c.feedback);
        // How each documented default is checked: the resolved value
        // printed, or the documented word parsed as the flag parses it.
        type Check<'a> = Box<dyn Fn(&str) -> bool + 'a>;
        let is = |v: String| move |text: &str| text == v;
        let checks: Vec<(&str, Check)> = vec![
            ("listen", Box::new(is(c.listen.to_string()))),
            ("redis_url", Box::new(is(t.redis_url.clone()))),
            ("key", Box::new(is(t.key.clone()))),
            ("dialect", Box::new(move |v| from_name::<Dialect>(v) == Ok(t.dialect()))),
            ("parser", Box::new(move |v| from_name::<Parser>(v) == Ok(parser))),
            ("channel", Box::new(is(channel))),
            ("data_shape", Box::new(move |v| from_name(v) == Ok(data_shape))),
            (
                "subscription_mode",
                Box::new(move |v| from_name(v) == Ok(subscription_mode)),
            ),
            ("stream_name", Box::new(is(stream_name))),
            ("stream_count", Box::new(is(stream_count.to_string()))),
            ("maxlen", Box::new(is(maxlen.to_string()))),
            ("redis_timeout_ms", Box::new(is(ms(c.redis_timeout)))),
            ("redis_pool_size", Box::new(is(c.redis_pool_size.to_string()))),
            ("health_interval_ms", Box::new(is(ms(c.health_interval)))),
            ("max_event_bytes", Box::new(is(l.max_event_bytes.to_string()))),
            ("max_room_bytes", Box::new(is(l.max_room_bytes.to_string()))),
            ("max_namespace_bytes", Box::new(is(l.max_namespace_bytes.to_string()))),
            ("max_rooms", Box::new(is(l.max_rooms.to_string()))),
            ("max_args", Box::new(is(l.max_args.to_string()))),
            ("max_packet_bytes", Box::new(is(l.max_packet_bytes.to_string()))),
            ("max_batch_items", Box::new(is(l.max_batch_items.to_string()))),
            ("max_message_bytes", Box::new(is(l.max_message_bytes.to_string()))),
            ("max_violations", Box::new(is(l.max_violations.to_string()))),
            ("max_in_flight", Box::new(is(l.max_in_flight.to_string()))),
            (
                "admin_listen",
                Box::new(is(c.admin_listen.map(|a| a.to_string()).unwrap_or_default())),
            ),
            ("idempotency_window_ms", Box::new(is(ms(c.idempotency_window)))),
            ("drain_timeout_ms", Box::new(is(ms(c.drain_timeout)))),
            (
                "log_format",
                Box::new(move |v| <LogFormat as clap::ValueEnum>::from_str(v, true) == Ok(c.log_format)),
            ),
            (
                "amqp_publisher",
                Box::new(|v| {
                    let amqp = crate::amqp::settings(Dialect::PythonSocketIo, Some("amqp://127.0.0.1"), None);
                    from_name::<crate::amqp::Publisher>(v) == Ok(amqp.unwrap().unwrap().publisher)
                }),
            ),
            ("feedback_max_timeout_ms", Box::new(is(f.max_timeout_ms.to_string()))),
            ("feedback_max_pending", Box::new(is(f.max_pending.to_string()))),
            ("feedback_max_reply_bytes", Box::new(is(f.max_reply_bytes.to_string()))),
            ("feedback_max_sockets", Box::new(is(f.max_sockets.to_string()))),
        ];
        let checks: BTreeMap<&str, _> = checks.into_iter().collect();
        let command = Cli::command();
        let mut documented = Vec::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some(default) = help
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(v, _)| v)
            else {
                continue;
            };
            let check = checks
                .get(id)
                .unwrap_or_else(|| panic!("--{id} documents a default; add it to this test"));
            assert!(
                check(default),
                "--{id}: help says [default: {default}], the config resolves otherwise"
            );
            documented.push(id);
        }
        for id in checks.keys() {
            assert!(documented.contains(id), "--{id}: no [default: …] in its help");
        }
        // README's configuration table: `| `--flag` | variable | file key | default | … |`.
        let mut in_readme = Vec::new();
        for line in include_str!("../../README.md").lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (Some(flag), Some(default)) = (cells.get(1), cells.get(4)) else {
                continue;
            };
            let Some(id) = flag.strip_prefix("`--").and_then(|f| f.strip_suffix('`')) else {
                continue;
            };
            let id = id.replace('-', "_");
            if let Some(check) = checks.get(id.as_str()) {
                let default = default.trim_matches('`');
                assert!(
                    check(default),
                    "README: --{id} says {default}, the config resolves otherwise"
                );
                in_readme.push(id);
            }
        }
        for id in checks.keys() {
            assert!(
                in_readme.iter().any(|r| r == id),
                "--{id}: no default in README's configuration table"
            );
        }
    }

    #[test]
    fn file_targets_and_limits() {
        let c = Config::from_toml(
            r#"
            listen = "0.0.0.0:6000"
            [auth]
            insecure_no_auth = true
            [limits]
            max_batch_items = 5
            max_violations = 3
            [[targets]]
            name = "eu"
            redis_url = "redis://10.0.0.1:6379/2"
            dialect = "socketio"
            key = "app"
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.max_batch_items, 5);
        assert_eq!(c.limits.max_violations, 3);
        assert_eq!(c.targets["eu"].key, "app");
        assert!(c.targets.contains_key(DEFAULT_TARGET));
    }

    #[test]
    fn flags_override_file_for_the_default_target() {
        let file = toml::from_str::<FileConfig>("[[targets]]\nname = \"default\"\nkey = \"filekey\"\n").unwrap();
        let cli = Cli {
            key: Some("flagkey".into()),
            max_args: Some(3),
            ..Cli::default()
        };
        let c = Config::resolve(cli, file).unwrap();
        assert_eq!(c.targets[DEFAULT_TARGET].key, "flagkey");
        assert_eq!(c.limits.max_args, 3);
    }

    #[test]
    fn non_loopback_without_keys_is_refused_unless_explicit() {
        let e = Config::from_toml("listen = \"0.0.0.0:50051\"").unwrap_err();
        assert_eq!(e.setting, "listen");
        assert!(e.message.contains("--insecure-no-auth"), "{e}");
        let cli = Cli {
            listen: Some("0.0.0.0:50051".into()),
            insecure_no_auth: true,
            ..Cli::default()
        };
        assert!(Config::resolve(cli, FileConfig::default()).unwrap().insecure_no_auth);
        let with_key = "listen = \"0.0.0.0:50051\"\n[[auth.keys]]\nid = \"a\"\nsecret_sha256 = \"".to_owned()
            + &"ab".repeat(32)
            + "\"";
        assert_eq!(Config::from_toml(&with_key).unwrap().keys.len(), 1);
    }

    #[test]
    fn a_public_admin_listener_needs_keys_or_the_insecure_flag() {
        let e = Config::from_toml("admin_listen = \"0.0.0.0:9090\"").unwrap_err();
        assert_eq!(e.setting, "admin_listen");
        assert!(
            e.message.contains("admin = true") && e.message.contains("--insecure-no-auth"),
            "{e}"
        );
        let insecure = "admin_listen = \"0.0.0.0:9090\"\n[auth]\ninsecure_no_auth = true";
        assert!(Config::from_toml(insecure).unwrap().admin_listen.is_some());
        let with_key = "admin_listen = \"0.0.0.0:9090\"\n[[auth.keys]]\nid = \"ops\"\nadmin = true\nsecret_sha256 = \""
            .to_owned()
            + &"ab".repeat(32)
            + "\"";
        let c = Config::from_toml(&with_key).unwrap();
        assert!(c.keys[0].admin);
        assert!(Config::from_toml("admin_listen = \"[::1]:9090\"").is_ok());
        assert!(
            Config::from_toml("admin_listen = \"off\"")
                .unwrap()
                .admin_listen
                .is_none()
        );
    }

    #[test]
    fn the_example_config_file_is_valid() {
        let c = Config::from_toml(include_str!("../../config/emitgate.example.toml")).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.keys.len(), 2);
        assert_eq!(c.limits.max_in_flight, 4096);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.redis_pool_size, 8);
    }

    #[test]
    fn every_option_of_the_default_target_has_a_flag() {
        let cli = Cli::try_parse_from([
            "emitgate",
            "--dialect",
            "socketio-streams",
            "--stream-name",
            "events",
            "--stream-count",
            "4",
            "--maxlen",
            "500",
            "--cluster",
            "--cluster-seeds",
            "redis://10.0.0.2:6379,redis://10.0.0.3:6379",
        ])
        .unwrap();
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        let t = &c.targets[DEFAULT_TARGET];
        assert_eq!(t.dialect(), Dialect::SocketIoStreams);
        assert_eq!(
            t.options,
            DialectOptions::SocketIoStreams {
                stream_name: "events".into(),
                stream_count: 4,
                maxlen: 500
            }
        );
        assert!(t.cluster);
        assert_eq!(t.cluster_seeds, ["redis://10.0.0.2:6379", "redis://10.0.0.3:6379"]);

        let cli = Cli::try_parse_from([
            "emitgate",
            "--dialect",
            "python-socketio",
            "--channel",
            "flask-socketio",
            "--data-shape",
            "single",
        ])
        .unwrap();
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        let t = &c.targets[DEFAULT_TARGET];
        assert_eq!(
            t.options,
            DialectOptions::PythonSocketIo {
                channel: "flask-socketio".into(),
                data_shape: DataShape::Single
            }
        );

        let cli = Cli::try_parse_from([
            "emitgate",
            "--dialect",
            "socketio-sharded",
            "--subscription-mode",
            "dynamic-private",
        ])
        .unwrap();
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        assert_eq!(
            c.targets[DEFAULT_TARGET].options,
            DialectOptions::SocketIoSharded {
                subscription_mode: SubscriptionMode::DynamicPrivate
            }
        );

        let cli = Cli::try_parse_from(["emitgate", "--parser", "json"]).unwrap();
        let c = Config::resolve(cli, FileConfig::default()).unwrap();
        assert_eq!(
            c.targets[DEFAULT_TARGET].options,
            DialectOptions::SocketIo { parser: Parser::Json }
        );

        let e = Cli::try_parse_from(["emitgate", "--parser", "yaml"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("msgpack") && e.contains("json"), "{e}");
    }

    #[test]
    fn flags_override_the_file_default_target_and_are_checked_by_their_name() {
        let file = toml::from_str::<FileConfig>(
            "[[targets]]\nname = \"default\"\ndialect = \"socketio-streams\"\nstream_name = \"s\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from(["emitgate", "--stream-name", "flag"]).unwrap();
        let c = Config::resolve(cli, file).unwrap();
        assert!(
            matches!(&c.targets[DEFAULT_TARGET].options, DialectOptions::SocketIoStreams { stream_name, .. } if stream_name == "flag")
        );

        // A dialect option the flags' dialect does not read.
        let cli = Cli::try_parse_from(["emitgate", "--maxlen", "5"]).unwrap();
        let e = Config::resolve(cli, FileConfig::default()).unwrap_err();
        assert_eq!(e.setting, "--maxlen (EMITGATE_MAXLEN)");
        let cli = Cli::try_parse_from(["emitgate", "--stream-count", "0", "--dialect", "socketio-streams"]).unwrap();
        let e = Config::resolve(cli, FileConfig::default()).unwrap_err();
        assert_eq!(e.setting, "--stream-count (EMITGATE_STREAM_COUNT)");
    }

    #[test]
    fn only_the_socketio_dialect_takes_a_parser() {
        for (dialect, why) in [
            ("socketio-sharded", "createShardedAdapter"),
            ("socketio-streams", "redis-streams-adapter"),
            ("socketio-v2", "socket.io-redis 5"),
            ("python-socketio", "python-socketio"),
        ] {
            for parser in ["json", "msgpack"] {
                let e = Config::from_toml(&format!(
                    "[[targets]]\nname = \"x\"\ndialect = \"{dialect}\"\nparser = \"{parser}\"\n"
                ))
                .unwrap_err();
                assert_eq!(e.setting, "targets[0].parser");
                assert!(e.message.contains(why), "{e}");
            }
            let cli = Cli::try_parse_from(["emitgate", "--dialect", dialect, "--parser", "json"]).unwrap();
            let e = Config::resolve(cli, FileConfig::default()).unwrap_err();
            assert_eq!(e.setting, "--parser (EMITGATE_PARSER)");
        }
        let c = Config::from_toml("[[targets]]\nname = \"x\"\nparser = \"json\"\n").unwrap();
        assert_eq!(
            c.targets["x"].options,
            DialectOptions::SocketIo { parser: Parser::Json }
        );
        assert_eq!(crate::codec::for_target(&c.targets["x"]).name(), "socketio");
        let e = Config::from_toml("[[targets]]\nname = \"x\"\nparser = \"cbor\"\n").unwrap_err();
        assert!(e.message.contains("msgpack"), "{e}");
    }

    #[test]
    fn errors_name_the_setting() {
        let e = Config::from_toml("listen = \"nope\"").unwrap_err();
        assert_eq!(e.setting, "listen");
        let e = Config::from_toml("[[targets]]\nname = \"x\"\nredis_url = \"http://x\"").unwrap_err();
        assert_eq!(e.setting, "targets[0].redis_url");
        let e = Config::from_toml("[limits]\nmax_args = 0").unwrap_err();
        assert_eq!(e.setting, "max_args");
        let e = Config::from_toml("[[targets]]\nname = \"x\"\ndialect = \"nope\"").unwrap_err();
        assert!(e.message.contains("socketio"), "{e}");
        let e = Config::from_toml("lsten = \"x\"").unwrap_err();
        assert!(e.message.contains("lsten"), "{e}");
        let e = Config::from_toml("[[targets]]\nname = \"a\"\n[[targets]]\nname = \"a\"").unwrap_err();
        assert_eq!(e.setting, "targets[1].name");
    }
}
