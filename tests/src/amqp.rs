//! A real RabbitMQ broker for the AMQP suites: Debian's `rabbitmq-server`
//! run as a process of the test on free loopback ports, with its own node
//! name, data and log directories, and no plugins (no management
//! listener); never the system service.
//!
//! The broker runs under a small shell wrapper in a process group of its
//! own: a line on the wrapper's stdin (or the test process exiting, which
//! closes it) kills the whole group and removes the broker's directory, so
//! a broker shared by a test binary ([`RabbitMq::shared`]) never outlives
//! it. Only `epmd`, Erlang's port mapper that every node on the machine
//! shares, keeps running, as it does for any Erlang program.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::free_port;

/// How long a broker may take to boot: a first boot creates its database,
/// which takes 10 to 20 s on a loaded two-core machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// The broker's start script itself, not Debian's wrapper in /usr/sbin
/// (which switches to the `rabbitmq` user and the system's directories).
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// Runs the broker (`"$@"`) in a session and process group of its own
/// (`setsid`, util-linux); on a line or EOF on stdin, kills that group and
/// removes the broker's directory (`env kill`: dash's builtin takes no
/// process group).
const WRAPPER: &str = r#"setsid "$@" &
pid=$!
read _ || true
env kill -KILL -- "-$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$EMITGATE_BROKER_DIR"
"#;

/// A `rabbitmq-server` on loopback.
pub struct RabbitMq {
    /// Its AMQP port.
    pub port: u16,
    running: Option<(Child, ChildStdin)>,
    starts: u32,
}

impl RabbitMq {
    /// Starts a broker on a free port and waits until it speaks AMQP.
    pub fn start() -> Self {
        let mut b = Self {
            port: free_port(),
            running: None,
            starts: 0,
        };
        b.restart();
        b
    }

    /// One broker for the whole test binary, started on first use.
    pub fn shared() -> &'static RabbitMq {
        static SHARED: OnceLock<RabbitMq> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// Its URL (the default vhost, the built-in `guest` user, which
    /// RabbitMQ accepts from loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The same URL as kombu and aio-pika write it.
    pub fn python_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}//", self.port)
    }

    /// (Re)starts the broker on the same port, with fresh directories, and
    /// waits until it speaks AMQP.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "rabbitmq-server already running");
        self.starts += 1;
        let dir: PathBuf = std::env::temp_dir().join(format!(
            "emitgate-rabbitmq-{}-{}-{}",
            std::process::id(),
            self.port,
            self.starts
        ));
        std::fs::create_dir_all(&dir).expect("broker directory");
        // No plugins: no management listener on a fixed port.
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        let node = format!(
            "emitgate-{}-{}-{}@localhost",
            std::process::id(),
            self.port,
            self.starts
        );
        let d = |name: &str| dir.join(name);
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "sh", RABBITMQ_SERVER])
            .env("EMITGATE_BROKER_DIR", &dir)
            // The Erlang cookie is written into $HOME.
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", d("plugins-expand"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", d("feature_flags"))
            .env("RABBITMQ_QUORUM_DIR", d("quorum"))
            .env("RABBITMQ_STREAM_DIR", d("stream"))
            .env("RABBITMQ_PID_FILE", d("pid"))
            // No config files of the system's broker.
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_LOGS", d("log/broker.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh not found");
        let stdin = child.stdin.take().expect("stdin");
        self.running = Some((child, stdin));
        self.wait_ready(&dir);
    }

    /// Waits until the broker answers the AMQP protocol header with its
    /// `connection.start` frame.
    fn wait_ready(&mut self, dir: &std::path::Path) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if speaks_amqp(self.port) {
                return;
            }
            if let Some((child, _)) = self.running.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("rabbitmq-server exited ({status}) before it was ready (run `make setup`)");
            }
            assert!(
                Instant::now() < deadline,
                "rabbitmq-server did not accept AMQP connections on port {} within {BOOT_TIMEOUT:?}; log: {}",
                self.port,
                std::fs::read_to_string(dir.join("log/broker.log")).unwrap_or_default()
            );
            // Polling: the broker announces readiness on no channel we can await.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker (every process of it) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some((mut child, mut stdin)) = self.running.take() {
            let _ = stdin.write_all(b"stop\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the server on `port` answers the AMQP 0-9-1 protocol header
/// with a method frame (`connection.start`).
fn speaks_amqp(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut frame_type = [0u8; 1];
    matches!(s.read_exact(&mut frame_type), Ok(()) if frame_type[0] == 1)
}
