//! Configuration: command-line flags, `EMITGATE_*` environment variables and
//! an optional TOML file (`--config`).
//!
//! Precedence, highest first: flag, environment variable, file, built-in
//! default. [`Config::load`] resolves everything once at start-up and fails
//! with a message naming the setting that is wrong.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use serde::Deserialize;

/// Default gRPC listen address: loopback, so a fresh install exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default Redis of the `default` target.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default channel prefix: the adapter's and the emitter's default `key`.
pub const DEFAULT_KEY: &str = "socket.io";
/// Name of the target that flags configure and empty `target` fields select.
pub const DEFAULT_TARGET: &str = "default";

/// Command-line flags; each also reads an `EMITGATE_*` environment variable.
#[derive(Debug, Parser, Default)]
#[command(name = "emitgate", version, about = "gRPC gateway that publishes Socket.IO events into Redis", long_about = None)]
pub struct Cli {
    /// TOML config file (listen address, limits, named targets).
    #[arg(long, env = "EMITGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "EMITGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Redis URL of the `default` target [default: redis://127.0.0.1:6379].
    #[arg(long, env = "EMITGATE_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// Channel prefix (the adapter's `key` option) of the `default` target [default: socket.io].
    #[arg(long, env = "EMITGATE_KEY", value_name = "KEY")]
    pub key: Option<String>,

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

    /// Log format: `plain` or `json` (level from RUST_LOG, default info) [default: plain].
    #[arg(long, env = "EMITGATE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
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
}

impl Dialect {
    /// The codec of this dialect for a target.
    pub fn codec(self, target: &TargetConfig) -> Box<dyn crate::codec::Dialect> {
        match self {
            Dialect::SocketIo => Box::new(crate::codec::socketio::SocketIo::new(&target.key)),
        }
    }
}

/// Request limits. Each one protects the Socket.IO servers or the gateway;
/// a request over a limit is INVALID_ARGUMENT naming the limit and its value.
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
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
        }
    }
}

/// One named Socket.IO cluster to publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Name used in requests' `target` field.
    pub name: String,
    /// Redis URL (`redis://`, `rediss://`, `unix://`).
    pub redis_url: String,
    /// Wire format of the target's servers.
    pub dialect: Dialect,
    /// Channel prefix (the adapter's `key`).
    pub key: String,
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
}

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
        Self::resolve(cli, file)
    }

    /// Parses a config from TOML text alone (flags unset), for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| bad("config file", e.to_string()))?;
        Self::resolve(Cli::default(), file)
    }

    fn resolve(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let listen_text = cli.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            bad(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:50051 ({e})"),
            )
        })?;

        let d = Limits::default();
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
        };

        let mut targets = BTreeMap::new();
        for (i, t) in file.targets.into_iter().enumerate() {
            let setting = format!("targets[{i}]");
            if t.name.is_empty() {
                return Err(bad(format!("{setting}.name"), "must not be empty"));
            }
            let target = TargetConfig {
                redis_url: t.redis_url.unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned()),
                dialect: t.dialect,
                key: t.key.unwrap_or_else(|| DEFAULT_KEY.to_owned()),
                name: t.name,
            };
            check_target(&setting, &target)?;
            if targets.insert(target.name.clone(), target).is_some() {
                return Err(bad(format!("{setting}.name"), "duplicate target name"));
            }
        }
        // The default target: the file's `default` entry, with flags
        // overriding its URL and key, or one built from flags and defaults.
        let default = targets
            .entry(DEFAULT_TARGET.to_owned())
            .or_insert_with(|| TargetConfig {
                name: DEFAULT_TARGET.to_owned(),
                redis_url: DEFAULT_REDIS_URL.to_owned(),
                dialect: Dialect::SocketIo,
                key: DEFAULT_KEY.to_owned(),
            });
        if let Some(url) = cli.redis_url {
            default.redis_url = url;
        }
        if let Some(key) = cli.key {
            default.key = key;
        }
        check_target("redis_url/key of the default target", default)?;

        let fr = file.redis;
        Ok(Self {
            listen,
            targets,
            limits,
            redis_timeout: Duration::from_millis(positive_u64(
                "redis_timeout_ms",
                cli.redis_timeout_ms.or(fr.timeout_ms),
                2000,
            )?),
            redis_pool_size: positive("redis_pool_size", cli.redis_pool_size.or(fr.pool_size), 8)?,
            health_interval: Duration::from_millis(positive_u64(
                "health_interval_ms",
                cli.health_interval_ms.or(fr.health_interval_ms),
                1000,
            )?),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
        })
    }
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
                format!("{setting}.redis_url"),
                format!("{:?} is not a redis:// URL", t.redis_url),
            )
        })?;
    if t.key.is_empty() {
        return Err(bad(format!("{setting}.key"), "must not be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn file_targets_and_limits() {
        let c = Config::from_toml(
            r#"
            listen = "0.0.0.0:6000"
            [limits]
            max_batch_items = 5
            [[targets]]
            name = "eu"
            redis_url = "redis://10.0.0.1:6379/2"
            dialect = "socketio"
            key = "app"
            "#,
        )
        .unwrap();
        assert_eq!(c.limits.max_batch_items, 5);
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
    fn the_example_config_file_is_valid() {
        let c = Config::from_toml(include_str!("../../config/emitgate.example.toml")).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.redis_pool_size, 8);
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
