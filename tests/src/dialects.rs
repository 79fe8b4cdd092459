//! Fixtures for the end-to-end suites of the `socketio-sharded` and
//! `socketio-streams` dialects and of Redis Cluster targets:
//!
//! - [`RedisCluster`]: a Redis Cluster of N masters on loopback, started with
//!   `redis-server --cluster-enabled yes` and `redis-cli --cluster create`,
//!   killed (and its files removed) on drop.
//! - [`StackOptions`] and [`Stack::start_with`]: the Node harness with another
//!   adapter (`--adapter sharded|streams`), a sharded subscription mode, a
//!   Redis Cluster (`--redis-cluster`), several streams, or the classic
//!   adapter with the JSON parser (`--parser json`).
//! - [`Stack::drop_transport`] / [`Stack::reconnect`]: a client loses its
//!   connection as on a network failure and comes back, with
//!   connection-state recovery when the servers offer it.

use std::{net::TcpListener, path::PathBuf, process::Stdio};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::{STARTUP_TIMEOUT, SioClient, Stack, free_port, repo_root, wait::wait_until, wait_for_ping};

/// The offset between a cluster node's client port and its cluster bus port.
const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// A Redis Cluster on loopback: masters only ([`RedisCluster::start`]) or
/// masters with replicas ([`RedisCluster::start_with_replicas`]).
pub struct RedisCluster {
    nodes: Vec<Option<std::process::Child>>,
    /// The nodes' client ports.
    pub ports: Vec<u16>,
    dir: PathBuf,
}

/// A free port whose cluster bus port (+10000) is free as well.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET)
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
        {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts `masters` nodes, joins them into a cluster that covers every
    /// slot, and waits until every node reports `cluster_state:ok`.
    pub async fn start(masters: usize) -> Self {
        Self::start_with_replicas(masters, 0, 5000).await
    }

    /// Starts `masters * (1 + replicas)` nodes with `cluster-node-timeout`
    /// `node_timeout_ms` (how long a master may be unreachable before its
    /// replica takes over), joins them so that every master has `replicas`
    /// replicas, and waits until every node reports `cluster_state:ok` and
    /// every replica is in sync.
    pub async fn start_with_replicas(masters: usize, replicas: usize, node_timeout_ms: u64) -> Self {
        let ports: Vec<u16> = (0..masters * (1 + replicas)).map(|_| free_cluster_port()).collect();
        let node_timeout = node_timeout_ms.to_string();
        let dir = std::env::temp_dir().join(format!("emitgate-cluster-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut cluster = Self {
            nodes: Vec::new(),
            ports: ports.clone(),
            dir,
        };
        for port in &ports {
            let p = port.to_string();
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &p,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{p}.conf"),
                    "--cluster-node-timeout",
                    &node_timeout,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                ])
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("redis-server not found: run `make setup`");
            cluster.nodes.push(Some(child));
        }
        for port in &ports {
            wait_for_ping(*port).await;
        }
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string()])
            .arg("--cluster-yes")
            .output()
            .await
            .expect("redis-cli not found: run `make setup`");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // No event announces the end of the gossip: poll each node's view.
        let nodes = ports.len();
        for port in &ports {
            wait_until(
                format_args!("cluster_state:ok and {nodes} known nodes on port {port}"),
                STARTUP_TIMEOUT,
                async || {
                    let info: String = cluster.command(*port, redis::cmd("CLUSTER").arg("INFO")).await;
                    let known = info.contains(&format!("cluster_known_nodes:{nodes}"));
                    if info.contains("cluster_state:ok") && known {
                        Ok(())
                    } else {
                        Err(info)
                    }
                },
            )
            .await;
        }
        // A replica that has not finished its first sync cannot take over.
        for port in &ports {
            wait_until(
                format_args!("the node on port {port} a master or an in-sync replica"),
                STARTUP_TIMEOUT,
                async || {
                    let info: String = cluster.command(*port, redis::cmd("INFO").arg("replication")).await;
                    if info.contains("role:master") || info.contains("master_link_status:up") {
                        Ok(())
                    } else {
                        Err(info)
                    }
                },
            )
            .await;
        }
        cluster
    }

    /// Kills the node on `port` with SIGKILL, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let i = self
            .ports
            .iter()
            .position(|p| *p == port)
            .expect("a node of this cluster");
        if let Some(mut node) = self.nodes[i].take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }

    /// The ports of the nodes still running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// The client port of the master that owns `slot`, as the node on
    /// `port` sees it.
    pub async fn owner_as_seen_by(&self, port: u16, slot: u16) -> u16 {
        owner_from(self, port, slot).await
    }

    /// How many PUBLISH commands clients sent to the node on `port` (not
    /// counting those forwarded over the cluster bus).
    pub async fn publish_calls(&self, port: u16) -> u64 {
        let info: String = self.command(port, redis::cmd("INFO").arg("commandstats")).await;
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The URL of the first node (a seed).
    pub fn seed_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect()
    }

    /// Runs one command on one node (no cluster routing).
    pub async fn command<T: redis::FromRedisValue>(&self, port: u16, cmd: &redis::Cmd) -> T {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to node");
        cmd.query_async(&mut conn).await.expect("node command")
    }

    /// The client port of the master that owns `slot`, as the first node
    /// sees it.
    pub async fn owner_of(&self, slot: u16) -> u16 {
        owner_from(self, self.ports[0], slot).await
    }

    /// The node id of the node on `port`.
    pub async fn node_id(&self, port: u16) -> String {
        self.command(port, redis::cmd("CLUSTER").arg("MYID")).await
    }

    /// Moves `slot` (which must hold no keys) from its owner to the node on
    /// `to`, and tells every node; clients with an old slot map now get
    /// MOVED from the previous owner.
    pub async fn move_slot(&self, slot: u16, to: u16) {
        let from = self.owner_of(slot).await;
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (from_id, to_id) = (self.node_id(from).await, self.node_id(to).await);
        let setslot = |state: &str, id: &str| {
            let mut c = redis::cmd("CLUSTER");
            c.arg("SETSLOT").arg(slot).arg(state).arg(id);
            c
        };
        let () = self.command(to, &setslot("IMPORTING", &from_id)).await;
        let () = self.command(from, &setslot("MIGRATING", &to_id)).await;
        for port in [to, from] {
            let () = self.command(port, &setslot("NODE", &to_id)).await;
        }
        // The other masters; replicas refuse SETSLOT and learn the new
        // owner from their masters' gossip.
        for port in self.live_ports().iter().filter(|p| ![to, from].contains(p)) {
            let role: Vec<redis::Value> = self.command(*port, &redis::cmd("ROLE")).await;
            if role.first() == Some(&redis::Value::BulkString(b"master".to_vec())) {
                let () = self.command(*port, &setslot("NODE", &to_id)).await;
            }
        }
        // Every node now routes the slot to `to`.
        for port in &self.live_ports() {
            wait_until(
                format_args!("node {port} routing slot {slot} to {to}"),
                STARTUP_TIMEOUT,
                async || match owner_from(self, *port, slot).await {
                    owner if owner == to => Ok(()),
                    owner => Err(format!("routed to {owner}")),
                },
            )
            .await;
        }
    }
}

async fn owner_from(cluster: &RedisCluster, port: u16, slot: u16) -> u16 {
    let raw: redis::Value = cluster.command(port, redis::cmd("CLUSTER").arg("SLOTS")).await;
    let slots = slots_to_json(raw);
    for range in slots.as_array().expect("slots") {
        let (start, end) = (range[0].as_u64().unwrap_or(0), range[1].as_u64().unwrap_or(0));
        if (start..=end).contains(&u64::from(slot)) {
            return u16::try_from(range[2][1].as_u64().expect("port")).expect("port");
        }
    }
    panic!("slot {slot} is not served: {slots}");
}

fn slots_to_json(v: redis::Value) -> Value {
    match v {
        redis::Value::Array(items) => Value::Array(items.into_iter().map(slots_to_json).collect()),
        redis::Value::Int(i) => Value::from(i),
        redis::Value::BulkString(b) => Value::from(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => Value::from(s),
        _ => Value::Null,
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How to start the Node harness (see tests/harness/README.md).
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Socket.IO servers (default 2).
    pub servers: u32,
    /// `classic`, `sharded` or `streams`.
    pub adapter: &'static str,
    /// The sharded adapter's `subscriptionMode` (the adapter's default,
    /// `dynamic`, when unset).
    pub subscription_mode: Option<&'static str>,
    /// The Redis URL is a Redis Cluster seed (node-redis `createCluster`).
    pub redis_cluster: bool,
    /// Adapter key / channel prefix (default `socket.io`).
    pub key: Option<String>,
    /// The streams adapter's `streamName`.
    pub stream_name: Option<String>,
    /// The streams adapter's `streamCount`.
    pub stream_count: Option<u32>,
    /// The classic adapter's `parser`: `msgpack` (unset) or `json`.
    pub parser: Option<&'static str>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            servers: 2,
            adapter: "classic",
            subscription_mode: None,
            redis_cluster: false,
            key: None,
            stream_name: None,
            stream_count: None,
            parser: None,
        }
    }
}

impl StackOptions {
    fn args(&self, redis_url: &str) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--redis-url".into(),
            redis_url.into(),
            "--servers".into(),
            self.servers.to_string(),
            "--adapter".into(),
            self.adapter.into(),
        ];
        if let Some(m) = self.subscription_mode {
            a.extend(["--subscription-mode".into(), m.into()]);
        }
        if self.redis_cluster {
            a.push("--redis-cluster".into());
        }
        if let Some(k) = &self.key {
            a.extend(["--key".into(), k.clone()]);
        }
        if let Some(n) = &self.stream_name {
            a.extend(["--stream-name".into(), n.clone()]);
        }
        if let Some(n) = self.stream_count {
            a.extend(["--stream-count".into(), n.to_string()]);
        }
        if let Some(p) = self.parser {
            a.extend(["--parser".into(), p.into()]);
        }
        a
    }
}

impl Stack {
    /// Starts the harness with `options` on `redis_url`.
    pub async fn start_with(redis_url: &str, options: &StackOptions) -> Self {
        let script = repo_root().join("tests/harness/stack.js");
        let mut child = Command::new("node")
            .arg(&script)
            .args(options.args(redis_url))
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
            http: crate::control_client(),
            control: ready["control"].as_str().expect("control url").to_owned(),
            redis_url: redis_url.to_owned(),
        }
    }

    /// Every event `c` received, once `count` events named `until` arrived
    /// (the test fails if they do not within 5 s).
    pub async fn events_until_count(&self, c: &SioClient, until: &str, count: usize) -> Vec<Value> {
        let path = format!(
            "/clients/{}/events?until={}&count={count}&timeout_ms=5000",
            c.id,
            urlencode(until)
        );
        let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "client {} never got {count} {until:?}: {body}", c.id);
        body["events"].as_array().expect("events").clone()
    }

    /// Every event `c` received so far (answers at once).
    pub async fn events_now(&self, c: &SioClient) -> Vec<Value> {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/clients/{}/events", c.id), None)
            .await;
        assert_eq!(status, 200, "events of client {}: {body}", c.id);
        body["events"].as_array().expect("events").clone()
    }

    /// Disconnects and forgets every client and server-side listener.
    pub async fn reset(&self) {
        let (status, body) = self.call(reqwest::Method::POST, "/reset", None).await;
        assert_eq!(status, 200, "reset failed: {body}");
    }

    /// Closes `c`'s transport as a network failure would and waits until
    /// both the client and its server consider it disconnected; returns the
    /// client's disconnect reason.
    pub async fn drop_transport(&self, c: &SioClient) -> String {
        let (status, body) = self
            .call(reqwest::Method::POST, &format!("/clients/{}/drop", c.id), None)
            .await;
        assert_eq!(status, 200, "drop failed: {body}");
        body["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// Reconnects a dropped client; returns its socket id and whether the
    /// server recovered its session.
    pub async fn reconnect(&self, c: &SioClient) -> (String, bool) {
        let (status, body) = self
            .call(reqwest::Method::POST, &format!("/clients/{}/reconnect", c.id), None)
            .await;
        assert_eq!(status, 200, "reconnect failed: {body}");
        (
            body["sid"].as_str().expect("sid").to_owned(),
            body["recovered"].as_bool().expect("recovered"),
        )
    }
}

/// Percent-encodes a query parameter value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
