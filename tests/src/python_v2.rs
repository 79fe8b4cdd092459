//! Fixtures for the end-to-end suites of the `python-socketio` and
//! `socketio-v2` dialects: [`Stack`]s over other real server stacks, with
//! the same CLI, ready line and control API as `tests/harness/stack.js`.
//!
//! - [`Stack::python_socketio`] runs `tests/fixtures/python-socketio/stack.js`:
//!   python-socketio 5 `AsyncServer`s with `AsyncRedisManager` (in the venv
//!   `make setup` creates) and real socket.io-client 4 clients.
//! - [`Stack::python_socketio_amqp`]: the same fixture with the servers'
//!   managers on RabbitMQ (KombuManager, AsyncAioPikaManager, Flask-SocketIO).
//! - [`Stack::socketio_v2`] runs `tests/fixtures/socketio-v2/stack.js`:
//!   Socket.IO 2 servers with socket.io-redis 5 and socket.io-client 2.

use std::process::Stdio;

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::{STARTUP_TIMEOUT, Stack, repo_root};

impl Stack {
    /// Starts `servers` python-socketio servers on `redis_url`, whose
    /// managers use `channel` (`socketio`, or Flask-SocketIO's
    /// `flask-socketio`).
    pub async fn python_socketio(redis_url: &str, servers: u32, channel: &str) -> Self {
        let script = repo_root().join("tests/fixtures/python-socketio/stack.js");
        spawn(
            &script,
            &[
                "--redis-url",
                redis_url,
                "--servers",
                &servers.to_string(),
                "--channel",
                channel,
            ],
            redis_url,
            "run `make setup` for the python-socketio venv",
        )
        .await
    }

    /// Starts `servers` python-socketio servers on the AMQP broker
    /// `amqp_url` (kombu's spelling, `amqp://…//`), whose managers use the
    /// exchange `channel`: `manager` is `kombu` (a threading-mode `Server`
    /// with `KombuManager`), `aiopika` (an `AsyncServer` with
    /// `AsyncAioPikaManager`) or `flask` (Flask-SocketIO with
    /// `message_queue`). `redis_url` is only recorded.
    pub async fn python_socketio_amqp(
        redis_url: &str,
        amqp_url: &str,
        manager: &str,
        servers: u32,
        channel: &str,
    ) -> Self {
        let script = repo_root().join("tests/fixtures/python-socketio/stack.js");
        spawn(
            &script,
            &[
                "--redis-url",
                redis_url,
                "--amqp-url",
                amqp_url,
                "--manager",
                manager,
                "--servers",
                &servers.to_string(),
                "--channel",
                channel,
            ],
            redis_url,
            "run `make setup` for the python-socketio venv and rabbitmq-server",
        )
        .await
    }

    /// Starts `servers` Socket.IO 2 servers with socket.io-redis 5 (key
    /// `socket.io`) on `redis_url`.
    pub async fn socketio_v2(redis_url: &str, servers: u32) -> Self {
        let script = repo_root().join("tests/fixtures/socketio-v2/stack.js");
        spawn(
            &script,
            &["--redis-url", redis_url, "--servers", &servers.to_string()],
            redis_url,
            "run `make setup` for the fixture's npm packages",
        )
        .await
    }
}

/// Spawns a fixture stack and waits for its ready line.
async fn spawn(script: &std::path::Path, args: &[&str], redis_url: &str, hint: &str) -> Stack {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
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
        .unwrap_or_else(|_| panic!("{} did not start in time ({hint})", script.display()))
        .expect("read fixture stdout")
        .unwrap_or_else(|| panic!("{} exited before it was ready ({hint})", script.display()));
    let ready: Value = serde_json::from_str(&line).expect("fixture ready line is JSON");
    Stack {
        child,
        _stdin: stdin,
        http: reqwest::Client::new(),
        control: ready["control"].as_str().expect("control url").to_owned(),
        redis_url: redis_url.to_owned(),
    }
}
