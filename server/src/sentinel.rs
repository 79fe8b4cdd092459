//! Redis Sentinel: a target whose master is found through Sentinels
//! (`sentinel_master` + `sentinel_urls`) instead of a fixed `redis_url`.
//!
//! A connection is made to the master that a Sentinel names (redis-rs asks
//! `SENTINEL MASTERS` and skips a master flagged down), and is used only
//! after `ROLE` on that very connection says `master`. A replica accepts
//! PUBLISH without an error, and its subscribers are not the ones the
//! Socket.IO servers listen on, so the gateway never relies on an error to
//! notice a demoted master. It drops its connections when:
//!
//! - a Sentinel announces `+switch-master` for the master (a watcher task
//!   subscribed to one Sentinel at a time bumps [`Sentinel::epoch`]);
//! - a command fails on a connection (the master died, or Sentinel's
//!   reconfiguration killed the clients of a demoted master);
//! - Redis answers `READONLY` (an XADD on a replica);
//! - the health check's `ROLE` no longer says `master` ([`Sentinel::is_master`]).
//!
//! The next call then asks the Sentinels again.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{
    AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo, Value,
    aio::MultiplexedConnection,
    sentinel::{Sentinel as SentinelLookup, SentinelNodeConnectionInfo},
};

/// After a Sentinel's `+switch-master` subscription fails, the watcher waits
/// this long before it subscribes to the next Sentinel: a Sentinel that is
/// restarting is no reason to spin.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// The channel on which every Sentinel announces a completed failover:
/// `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.
const SWITCH_MASTER: &str = "+switch-master";

/// How a target finds its master through Redis Sentinel.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// The monitored master's name (`sentinel monitor <name> …`).
    pub master: String,
    /// The Sentinels' URLs (`redis://host:26379`), asked in this order.
    pub urls: Vec<String>,
    /// AUTH for the Sentinels whose URL carries no password
    /// (Sentinel's `requirepass`).
    pub password: Option<String>,
    /// AUTH for the master (its `requirepass`, Sentinel's `auth-pass`).
    pub master_password: Option<String>,
}

impl std::fmt::Debug for SentinelConfig {
    /// Passwords are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("master", &self.master)
            .field("urls", &self.urls.iter().map(|u| redact(u)).collect::<Vec<_>>())
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("master_password", &self.master_password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// A URL without its password, for logs and debug output.
fn redact(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("…"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl SentinelConfig {
    /// A target's Sentinel settings, checked: both or neither of the master
    /// name and the Sentinel URLs, and passwords only with them. An error is
    /// `(option, message)`.
    pub fn from_settings(
        master: Option<String>,
        urls: Vec<String>,
        password: Option<String>,
        master_password: Option<String>,
    ) -> Result<Option<Self>, (&'static str, String)> {
        let master = match (master, urls.is_empty()) {
            (None, true) => {
                if password.is_some() {
                    return Err(("sentinel_password", "needs sentinel_master and sentinel_urls".into()));
                }
                if master_password.is_some() {
                    return Err((
                        "sentinel_master_password",
                        "needs sentinel_master and sentinel_urls".into(),
                    ));
                }
                return Ok(None);
            }
            (None, false) => {
                return Err((
                    "sentinel_master",
                    "sentinel_urls is set, so sentinel_master is needed".into(),
                ));
            }
            (Some(_), true) => {
                return Err((
                    "sentinel_urls",
                    "sentinel_master needs at least one Sentinel URL".into(),
                ));
            }
            (Some(master), false) => master,
        };
        if master.is_empty() || master.contains(char::is_whitespace) {
            return Err(("sentinel_master", format!("{master:?} is not a Sentinel master name")));
        }
        for url in &urls {
            let ok = url.starts_with("redis://") && redis::parse_redis_url(url).is_some_and(|u| u.host().is_some());
            if !ok {
                return Err((
                    "sentinel_urls",
                    format!("{:?} is not a redis://host:port URL of a Sentinel", redact(url)),
                ));
            }
        }
        Ok(Some(Self {
            master,
            urls,
            password,
            master_password,
        }))
    }

    /// The Sentinels' connection details, with `password` where the URL has
    /// none.
    fn sentinel_infos(&self) -> Result<Vec<ConnectionInfo>, String> {
        self.urls
            .iter()
            .map(|url| {
                let info = url.as_str().into_connection_info().map_err(|e| e.to_string())?;
                Ok(match &self.password {
                    Some(p) if info.redis_settings().password().is_none() => {
                        let redis = info.redis_settings().clone().set_password(p);
                        info.set_redis_settings(redis)
                    }
                    _ => info,
                })
            })
            .collect()
    }
}

/// A Sentinel-managed target's way to its master.
pub struct Sentinel {
    target: String,
    config: SentinelConfig,
    lookup: tokio::sync::Mutex<SentinelLookup>,
    node: SentinelNodeConnectionInfo,
    connection: AsyncConnectionConfig,
    epoch: std::sync::Arc<AtomicU64>,
    watcher: OnceLock<AbortOnDrop>,
}

/// Aborts the `+switch-master` watcher when the target goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Sentinel {
    /// Builds the lookup; connects to nothing yet. `connection` bounds the
    /// master's connections (timeouts); the master gets `nodelay` sockets.
    pub fn new(target: &str, config: &SentinelConfig, connection: AsyncConnectionConfig) -> Result<Self, String> {
        let lookup = SentinelLookup::build(config.sentinel_infos()?).map_err(|e| e.to_string())?;
        let mut redis = redis::RedisConnectionInfo::default();
        if let Some(p) = &config.master_password {
            redis = redis.set_password(p);
        }
        let node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(redis)
            // Small commands must leave at once: no Nagle delay on the socket.
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        Ok(Self {
            target: target.to_owned(),
            config: config.clone(),
            lookup: tokio::sync::Mutex::new(lookup),
            node,
            connection,
            epoch: std::sync::Arc::default(),
            watcher: OnceLock::new(),
        })
    }

    /// Counts the failovers announced by `+switch-master` since start: a
    /// connection made under an older epoch must be dropped.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// A new connection to the master the Sentinels name, checked with
    /// `ROLE` on that connection. Starts the `+switch-master` watcher on
    /// first use.
    pub async fn connect(&self) -> Result<MultiplexedConnection, String> {
        self.watcher.get_or_init(|| self.watch());
        let client = {
            let mut lookup = self.lookup.lock().await;
            lookup
                .async_master_for(&self.config.master, Some(&self.node))
                .await
                .map_err(|e| format!("the Sentinels name no reachable master {:?}: {e}", self.config.master))?
        };
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&self.connection)
            .await
            .map_err(|e| format!("master {:?} of the Sentinels: {e}", client.get_connection_info().addr()))?;
        if !is_master(&mut conn).await {
            return Err(format!(
                "{} is not a master (a failover is in progress)",
                client.get_connection_info().addr()
            ));
        }
        tracing::debug!(target_name = %self.target, master = %client.get_connection_info().addr(), "connected to the master");
        Ok(conn)
    }

    /// Subscribes to `+switch-master` on one Sentinel after the other, for
    /// as long as the target lives.
    fn watch(&self) -> AbortOnDrop {
        let infos = self.config.sentinel_infos().unwrap_or_default();
        let (master, target, epoch) = (self.config.master.clone(), self.target.clone(), self.epoch.clone());
        AbortOnDrop(tokio::spawn(async move {
            for info in infos.iter().cycle() {
                if let Err(e) = watch_one(info, &master, &target, &epoch).await {
                    tracing::debug!(target_name = %target, sentinel = %info.addr(), error = %e, "Sentinel subscription lost");
                }
                tokio::time::sleep(RESUBSCRIBE_DELAY).await;
            }
        }))
    }
}

/// Follows one Sentinel's `+switch-master` until its connection ends.
async fn watch_one(info: &ConnectionInfo, master: &str, target: &str, epoch: &AtomicU64) -> redis::RedisResult<()> {
    use futures_util::StreamExt as _;
    let mut pubsub = redis::Client::open(info.clone())?.get_async_pubsub().await?;
    pubsub.subscribe(SWITCH_MASTER).await?;
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let payload: String = msg.get_payload().unwrap_or_default();
        if payload.split(' ').next() == Some(master) {
            tracing::warn!(target_name = %target, switch = %payload, "Sentinel switched the master: reconnecting");
            epoch.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Whether the server behind `conn` answers `ROLE` with `master`.
pub async fn is_master(conn: &mut MultiplexedConnection) -> bool {
    let role = redis::cmd("ROLE").query_async::<Value>(conn).await;
    matches!(&role, Ok(Value::Array(items))
        if matches!(items.first(), Some(Value::BulkString(r)) if r == b"master"))
}

/// Whether a reply is Redis's READONLY error: the server is a replica.
pub fn is_readonly(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == "READONLY")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        master: Option<&str>,
        urls: &[&str],
        password: Option<&str>,
    ) -> Result<Option<SentinelConfig>, (&'static str, String)> {
        SentinelConfig::from_settings(
            master.map(Into::into),
            urls.iter().map(|u| (*u).to_owned()).collect(),
            password.map(Into::into),
            None,
        )
    }

    #[test]
    fn master_and_urls_come_together() {
        assert_eq!(settings(None, &[], None), Ok(None));
        assert_eq!(settings(Some("m"), &[], None).unwrap_err().0, "sentinel_urls");
        assert_eq!(
            settings(None, &["redis://h:26379"], None).unwrap_err().0,
            "sentinel_master"
        );
        assert_eq!(settings(None, &[], Some("p")).unwrap_err().0, "sentinel_password");
        let c = settings(Some("m"), &["redis://h:26379", "redis://:pw@g:26380"], Some("p"))
            .unwrap()
            .unwrap();
        assert_eq!(c.master, "m");
        assert_eq!(c.urls.len(), 2);
    }

    #[test]
    fn bad_names_and_urls_are_refused() {
        assert_eq!(
            settings(Some(""), &["redis://h:26379"], None).unwrap_err().0,
            "sentinel_master"
        );
        assert_eq!(
            settings(Some("a b"), &["redis://h:26379"], None).unwrap_err().0,
            "sentinel_master"
        );
        for bad in ["h:26379", "http://h:26379", "rediss://h:26379", "redis://"] {
            let (option, message) = settings(Some("m"), &[bad], None).unwrap_err();
            assert_eq!(option, "sentinel_urls", "{bad}");
            assert!(message.contains("Sentinel"), "{message}");
        }
    }

    #[test]
    fn the_sentinel_password_fills_in_urls_without_one() {
        let c = settings(Some("m"), &["redis://h:26379", "redis://:own@g:26380"], Some("shared"))
            .unwrap()
            .unwrap();
        let infos = c.sentinel_infos().unwrap();
        assert_eq!(infos[0].redis_settings().password(), Some("shared"));
        assert_eq!(infos[1].redis_settings().password(), Some("own"));
    }

    #[test]
    fn debug_output_hides_passwords() {
        let c = SentinelConfig::from_settings(
            Some("m".into()),
            vec!["redis://:secret1@h:26379".into()],
            Some("secret2".into()),
            Some("secret3".into()),
        )
        .unwrap()
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn readonly_replies_are_recognised() {
        let v = redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n").unwrap();
        assert!(is_readonly(&v), "{v:?}");
        let other = redis::parse_redis_value(b"-ERR other\r\n").unwrap();
        assert!(!is_readonly(&other));
        assert!(!is_readonly(&Value::Int(1)));
    }

    fn load(args: &[&str]) -> Result<crate::config::Config, crate::config::ConfigError> {
        use clap::Parser as _;
        let mut all = vec!["emitgate"];
        all.extend_from_slice(args);
        crate::config::Config::load(crate::config::Cli::try_parse_from(all).unwrap())
    }

    #[test]
    fn file_keys_make_a_sentinel_target() {
        let c = crate::config::Config::from_toml(
            "[[targets]]\nname = \"default\"\nsentinel_master = \"mymaster\"\n\
             sentinel_urls = [\"redis://127.0.0.1:26379\", \"redis://127.0.0.1:26380\"]\n\
             sentinel_password = \"s\"\nsentinel_master_password = \"m\"\n",
        )
        .unwrap();
        let s = c.targets["default"].sentinel.clone().unwrap();
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.urls, ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]);
        assert_eq!(
            (s.password.as_deref(), s.master_password.as_deref()),
            (Some("s"), Some("m"))
        );
    }

    #[test]
    fn file_errors_name_the_option() {
        for (toml, setting, words) in [
            (
                "redis_url = \"redis://h:6379\"\nsentinel_master = \"m\"\nsentinel_urls = [\"redis://h:26379\"]",
                "targets[0].redis_url",
                "not both",
            ),
            ("sentinel_master = \"m\"", "targets[0].sentinel_urls", "at least one"),
            (
                "sentinel_urls = [\"redis://h:26379\"]",
                "targets[0].sentinel_master",
                "needed",
            ),
            (
                "sentinel_master = \"m\"\nsentinel_urls = [\"h:26379\"]",
                "targets[0].sentinel_urls",
                "URL",
            ),
            (
                "cluster = true\nsentinel_master = \"m\"\nsentinel_urls = [\"redis://h:26379\"]",
                "targets[0].sentinel_master",
                "Redis Cluster",
            ),
        ] {
            let e = crate::config::Config::from_toml(&format!("[[targets]]\nname = \"x\"\n{toml}")).unwrap_err();
            assert_eq!(e.setting, setting, "{toml}: {}", e.message);
            assert!(e.message.contains(words), "{toml}: {}", e.message);
        }
    }

    #[test]
    fn flags_make_the_default_target_sentinel_managed() {
        let c = load(&[
            "--sentinel-master",
            "mymaster",
            "--sentinel-url",
            "redis://127.0.0.1:26379",
            "--sentinel-url",
            "redis://127.0.0.1:26380",
        ])
        .unwrap();
        let s = c.targets["default"].sentinel.clone().unwrap();
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.urls.len(), 2);

        let e = load(&[
            "--redis-url",
            "redis://h:6379",
            "--sentinel-master",
            "m",
            "--sentinel-url",
            "redis://h:1",
        ])
        .unwrap_err();
        assert!(e.setting.contains("--redis-url"), "{e:?}");
        assert!(e.message.contains("not both"), "{e:?}");

        let e = load(&["--sentinel-master", "m"]).unwrap_err();
        assert!(e.setting.contains("--sentinel-url"), "{e:?}");
        let e = load(&["--sentinel-url", "redis://h:26379"]).unwrap_err();
        assert!(e.setting.contains("--sentinel-master"), "{e:?}");
    }
}
