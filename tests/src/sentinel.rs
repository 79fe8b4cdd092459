//! A Redis master with replicas, monitored by `redis-sentinel` processes,
//! all on free loopback ports, each with a config file in a temporary
//! directory (Sentinel rewrites its own and the servers' config files).

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::{free_port, wait::wait_for};

/// How long the group may take to come up: Sentinels learn replicas from
/// the master's INFO (every 10 s) and each other from hello messages
/// (every 2 s), slower on a loaded machine.
const GROUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The master's name the Sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// One `redis-server` or `redis-sentinel` process with its config file.
struct Node {
    program: &'static str,
    config: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl Node {
    fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "{} on {} already running",
            self.program,
            self.port
        );
        let child = std::process::Command::new(self.program)
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{} not found ({e}): run `make setup`", self.program));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A master, its replicas and the Sentinels that watch them.
pub struct SentinelGroup {
    servers: Vec<Node>,
    sentinels: Vec<Node>,
    down_after_ms: u64,
    _dir: tempfile::TempDir,
}

impl SentinelGroup {
    /// Starts a master, `replicas` replicas of it and `sentinels` Sentinels
    /// (quorum: a majority) that consider the master down after
    /// `down_after_ms`; returns once every replica is in sync and every
    /// Sentinel knows every replica and every other Sentinel.
    pub async fn start(replicas: usize, sentinels: usize, down_after_ms: u64, failover_timeout_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut servers = Vec::new();
        let master_port = free_port();
        for i in 0..=replicas {
            let port = if i == 0 { master_port } else { free_port() };
            let config = dir.path().join(format!("redis-{port}.conf"));
            let mut text = format!(
                "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n",
                dir.path().display()
            );
            text.push_str(&format!("dbfilename dump-{port}.rdb\n"));
            if i > 0 {
                text.push_str(&format!("replicaof 127.0.0.1 {master_port}\n"));
            }
            std::fs::write(&config, text).expect("write redis config");
            servers.push(Node {
                program: "redis-server",
                config,
                port,
                child: None,
            });
        }
        let quorum = sentinels / 2 + 1;
        let mut sentinel_nodes = Vec::new();
        for _ in 0..sentinels {
            let port = free_port();
            let config = dir.path().join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
                     sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
                     sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}\n\
                     sentinel parallel-syncs {MASTER_NAME} 2\n",
                    dir = dir.path().display()
                ),
            )
            .expect("write sentinel config");
            sentinel_nodes.push(Node {
                program: "redis-sentinel",
                config,
                port,
                child: None,
            });
        }
        let mut g = Self {
            servers,
            sentinels: sentinel_nodes,
            down_after_ms,
            _dir: dir,
        };
        for n in &mut g.servers {
            n.spawn();
        }
        for port in g.server_ports() {
            wait_for(format!("redis-server on {port} answers"), GROUP_TIMEOUT, async || {
                try_cmd::<String>(port, &redis::cmd("PING")).await.is_some()
            })
            .await;
        }
        for port in g.server_ports().into_iter().skip(1) {
            wait_for(format!("replica {port} in sync"), GROUP_TIMEOUT, async || {
                try_cmd::<String>(port, redis::cmd("INFO").arg("replication"))
                    .await
                    .is_some_and(|i| i.contains("master_link_status:up"))
            })
            .await;
        }
        for n in &mut g.sentinels {
            n.spawn();
        }
        for port in g.sentinel_ports() {
            wait_for(format!("Sentinel {port} knows the group"), GROUP_TIMEOUT, async || {
                let info: Option<Vec<String>> =
                    try_cmd(port, redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME)).await;
                info.is_some_and(|kv| {
                    let field = |k: &str| kv.iter().position(|x| x == k).and_then(|i| kv.get(i + 1)).cloned();
                    field("num-slaves").and_then(|n| n.parse::<usize>().ok()) == Some(replicas)
                        && field("num-other-sentinels").and_then(|n| n.parse::<usize>().ok()) == Some(sentinels - 1)
                })
            })
            .await;
        }
        g
    }

    /// The Redis servers' ports, the first master first.
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(|n| n.port).collect()
    }

    /// The Sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|n| n.port).collect()
    }

    /// The Sentinels' URLs.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinel_ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The Sentinels' `down-after-milliseconds`.
    pub fn down_after(&self) -> Duration {
        Duration::from_millis(self.down_after_ms)
    }

    /// Kills the Redis server on `port` with SIGKILL.
    pub fn kill(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Starts the Redis server on `port` again with its config file (a
    /// former master comes back as a master until Sentinel demotes it).
    pub async fn restart(&mut self, port: u16) {
        self.node(port).spawn();
        wait_for(
            format!("redis-server on {port} answers again"),
            GROUP_TIMEOUT,
            async || try_cmd::<String>(port, &redis::cmd("PING")).await.is_some(),
        )
        .await;
    }

    fn node(&mut self, port: u16) -> &mut Node {
        self.servers
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a server of this group")
    }

    /// The server's role (`master`, `slave`) and, for a replica, its
    /// master's port and whether its link is up; `None` if it does not answer.
    pub async fn role(port: u16) -> Option<(String, Option<u16>, bool)> {
        let role: Vec<redis::Value> = try_cmd(port, &redis::cmd("ROLE")).await?;
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v.clone()).ok();
        let kind = text(role.first()?)?;
        if kind == "slave" {
            let master: Option<u16> = role.get(2).and_then(|v| redis::from_redis_value(v.clone()).ok());
            let state = role.get(3).and_then(text);
            Some((kind, master, state.as_deref() == Some("connected")))
        } else {
            Some((kind, None, false))
        }
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for n in self.sentinels.iter_mut().chain(self.servers.iter_mut()) {
            n.kill();
        }
    }
}

/// Runs a command on the process at `port`; `None` if it fails.
async fn try_cmd<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    cmd.query_async(&mut c).await.ok()
}

/// A subscription to one Sentinel's `+switch-master` announcements.
pub struct SwitchWatch {
    rx: tokio::sync::mpsc::UnboundedReceiver<(Instant, String)>,
    _task: tokio::task::JoinHandle<()>,
}

impl SwitchWatch {
    /// Subscribes on the Sentinel at `port`; returns once subscribed.
    pub async fn start(port: u16) -> Self {
        use futures_util::StreamExt as _;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        let mut pubsub = client.get_async_pubsub().await.expect("connect to Sentinel");
        pubsub.subscribe("+switch-master").await.expect("subscribe");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut messages = pubsub.on_message();
            while let Some(m) = messages.next().await {
                let _ = tx.send((Instant::now(), m.get_payload().unwrap_or_default()));
            }
        });
        Self { rx, _task: task }
    }

    /// The next switch: when it was announced and the new master's port.
    pub async fn next(&mut self, within: Duration) -> (Instant, u16) {
        let (at, payload) = tokio::time::timeout(within, self.rx.recv())
            .await
            .expect("no +switch-master in time")
            .expect("Sentinel subscription ended");
        // "<name> <old-ip> <old-port> <new-ip> <new-port>"
        let port = payload
            .split(' ')
            .nth(4)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected +switch-master payload {payload:?}"));
        (at, port)
    }
}
