//! The `emitgate` binary as operators run it: start-up refusals, `keygen`,
//! key reload on SIGHUP, and graceful shutdown on SIGTERM under load.
//!
//! The binary is `$EMITGATE_BIN` or `target/debug/emitgate` (`make test`
//! builds it first).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use emitgate::pb::{self, emitter_service_client::EmitterServiceClient};
use emitgate_e2e::{Capture, RedisServer, free_port, repo_root, wait::wait_until};
use nix::{sys::signal, unistd::Pid};
use tokio::process::{Child, Command};
use tonic::{Code, Request, transport::Channel};

/// How long a started binary may take to accept connections (a debug
/// build on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn binary() -> PathBuf {
    let path = std::env::var_os("EMITGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/emitgate"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p emitgate` (make test does)",
        path.display()
    );
    path
}

fn emit(rooms: &[&str], event: &str) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms.iter().map(|s| (*s).into()).collect(),
        event: event.into(),
        ..Default::default()
    }
}

fn with_key<T>(msg: T, secret: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    r
}

/// Starts the binary and waits until its gRPC port accepts connections.
async fn start(args: &[String]) -> (Child, u16) {
    let port = free_port();
    let mut cmd = Command::new(binary());
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    wait_until("the gateway accepting connections", START_TIMEOUT, async || {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map(drop)
    })
    .await;
    (child, port)
}

async fn client(port: u16) -> EmitterServiceClient<Channel> {
    EmitterServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

fn signal(child: &Child, sig: signal::Signal) {
    let pid = i32::try_from(child.id().unwrap()).unwrap();
    signal::kill(Pid::from_raw(pid), sig).unwrap();
}

#[tokio::test]
async fn refuses_a_public_address_without_keys_unless_told_otherwise() {
    let redis = RedisServer::start().await;
    let port = free_port();
    let out = Command::new(binary())
        .args([
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--redis-url",
            &redis.url(),
            "--admin-listen",
            "off",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );

    let mut child = Command::new(binary())
        .args([
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--redis-url",
            &redis.url(),
            "--admin-listen",
            "off",
        ])
        .arg("--insecure-no-auth")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut c = wait_until("the gateway accepting gRPC connections", START_TIMEOUT, async || {
        assert!(child.try_wait().unwrap().is_none(), "exited");
        EmitterServiceClient::connect(format!("http://127.0.0.1:{port}")).await
    })
    .await;
    c.emit(emit(&["a"], "e")).await.unwrap();
    signal(&child, signal::Signal::SIGTERM);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUTHENTICATION IS OFF"),
        "the insecure mode must be loud: {stderr}"
    );
}

/// Runs `emitgate keygen` and returns (secret, config lines).
async fn keygen(id: &str) -> (String, String) {
    let out = Command::new(binary())
        .args(["keygen", "--id", id])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("# egk_"))
        .map(|s| format!("egk_{s}"))
        .unwrap();
    (secret, text)
}

#[tokio::test]
async fn keygen_output_configures_a_key_and_sighup_reloads_keys_without_dropping_connections() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("emitgate.toml");
    let (old_secret, old_lines) = keygen("old").await;
    std::fs::write(&config, &old_lines).unwrap();
    let args = vec![
        "--config".to_owned(),
        config.display().to_string(),
        "--redis-url".to_owned(),
        redis.url(),
        "--admin-listen".to_owned(),
        "off".to_owned(),
    ];
    let (child, port) = start(&args).await;
    let mut c = client(port).await;
    c.emit(with_key(emit(&["a"], "e"), &old_secret)).await.unwrap();
    assert_eq!(
        c.emit(emit(&["a"], "e")).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Revoke the old key, add a new one, SIGHUP.
    let (new_secret, new_lines) = keygen("new").await;
    std::fs::write(&config, &new_lines).unwrap();
    signal(&child, signal::Signal::SIGHUP);
    wait_until(
        "the revoked key refused after SIGHUP",
        Duration::from_secs(10),
        async || match c.emit(with_key(emit(&["a"], "e"), &old_secret)).await {
            Err(e) if e.code() == Code::Unauthenticated => Ok(()),
            Ok(_) => Err("the revoked key still works"),
            Err(e) => panic!("{e:?}"),
        },
    )
    .await;
    // Same client, same connection: the new key works.
    c.emit(with_key(emit(&["a"], "e"), &new_secret)).await.unwrap();

    // A broken file keeps the current keys.
    std::fs::write(&config, "[[auth.keys]]\nid = 1\n").unwrap();
    signal(&child, signal::Signal::SIGHUP);
    c.emit(with_key(emit(&["a"], "e"), &new_secret)).await.unwrap();
}

#[tokio::test]
async fn sigterm_under_load_lets_in_flight_calls_finish_and_exits_zero() {
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let admin_port = free_port();
    let args = vec![
        "--redis-url".to_owned(),
        redis.url(),
        "--admin-listen".to_owned(),
        format!("127.0.0.1:{admin_port}"),
        "--redis-timeout-ms".to_owned(),
        "5000".to_owned(),
    ];
    let (mut child, port) = start(&args).await;
    let c = client(port).await;
    let http = reqwest::Client::new();
    let readyz = || http.get(format!("http://127.0.0.1:{admin_port}/readyz")).send();
    wait_until(
        "/readyz answering 200",
        Duration::from_secs(10),
        async || match readyz().await.unwrap().status() {
            s if s == 200 => Ok(()),
            s => Err(s),
        },
    )
    .await;

    // Pause Redis so that calls pile up in flight, then SIGTERM.
    let pauser = redis::Client::open(redis.url()).unwrap();
    let mut pauser = pauser.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "1500", "ALL"])
        .query_async(&mut pauser)
        .await
        .unwrap();
    let sent_before_term = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut calls = Vec::new();
    for i in 0..20 {
        let mut c = c.clone();
        let log = Arc::clone(&sent_before_term);
        calls.push(tokio::spawn(async move {
            log.lock().unwrap().push(i);
            c.emit(emit(&["a"], &format!("in-flight-{i}"))).await
        }));
    }
    // Every call is issued before the signal.
    while sent_before_term.lock().unwrap().len() < 20 {
        tokio::task::yield_now().await;
    }
    // Wait until the gateway holds them: its in-flight gauge says 20.
    let metrics_url = format!("http://127.0.0.1:{admin_port}/metrics");
    wait_until("emitgate_calls_in_flight 20", Duration::from_secs(5), async || {
        let text = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l == "emitgate_calls_in_flight 20") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    signal(&child, signal::Signal::SIGTERM);
    // Draining: not ready any more, while the paused calls are still waiting.
    wait_until(
        "/readyz answering 503 while draining",
        Duration::from_secs(5),
        async || match readyz().await {
            Ok(r) if r.status() == 503 => Ok(()),
            Ok(r) => Err(r.status()),
            Err(e) => panic!("admin listener gone before the drain ended: {e}"),
        },
    )
    .await;
    for call in calls {
        call.await.unwrap().expect("an in-flight call failed during the drain");
    }
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut events = Vec::new();
    for _ in 0..20 {
        let m = cap.next().await;
        assert_eq!(m.channel, "socket.io#/#a#");
        let packet = rmpv::decode::read_value(&mut m.payload.as_slice()).unwrap();
        events.push(packet[1]["data"][0].as_str().unwrap().to_owned());
    }
    events.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("in-flight-{i}")).collect();
    want.sort();
    assert_eq!(events, want);
}

/// The binary with its whole configuration in `EMITGATE_*` variables (no
/// flag, no file), as a container is configured; the caller's own
/// `EMITGATE_*` variables are removed first.
fn env_only(vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("EMITGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("EMITGATE_ADMIN_LISTEN", "off")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Waits until the gateway configured by [`env_only`] on `port` answers.
async fn connect_to(child: &mut Child, port: u16) -> EmitterServiceClient<Channel> {
    wait_until("the gateway accepting gRPC connections", START_TIMEOUT, async || {
        assert!(child.try_wait().unwrap().is_none(), "the gateway exited");
        EmitterServiceClient::connect(format!("http://127.0.0.1:{port}")).await
    })
    .await
}

/// One XRANGE entry: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

#[tokio::test]
async fn a_streams_target_configured_by_environment_variables_alone() {
    let redis = RedisServer::start().await;
    let port = free_port();
    let mut child = env_only(&[
        ("EMITGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("EMITGATE_REDIS_URL", redis.url()),
        ("EMITGATE_DIALECT", "socketio-streams".into()),
        ("EMITGATE_STREAM_NAME", "app-events".into()),
        ("EMITGATE_STREAM_COUNT", "1".into()),
        ("EMITGATE_MAXLEN", "50".into()),
    ])
    .spawn()
    .unwrap();
    let mut c = connect_to(&mut child, port).await;
    let r = c.emit(emit(&["a"], "e")).await.unwrap().into_inner();
    assert!(!r.stream_id.is_empty(), "a streams target answers the entry id");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg("app-events")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "one entry in the stream the variable names");
    assert_eq!(entries[0].0, r.stream_id);
    let fields: Vec<&str> = entries[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(fields, ["uid", "nsp", "type", "data"]);
}

#[tokio::test]
async fn a_json_parser_target_configured_by_environment_variables_alone() {
    let redis = RedisServer::start().await;
    let port = free_port();
    let mut child = env_only(&[
        ("EMITGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("EMITGATE_REDIS_URL", redis.url()),
        ("EMITGATE_DIALECT", "socketio".into()),
        ("EMITGATE_KEY", "app".into()),
        ("EMITGATE_PARSER", "json".into()),
    ])
    .spawn()
    .unwrap();
    let mut c = connect_to(&mut child, port).await;
    let mut cap = Capture::start(&redis.url()).await;
    c.emit(emit(&["a"], "e")).await.unwrap();
    let msg = cap.next().await;
    assert_eq!(msg.channel, "app#/#a#");
    assert_eq!(
        String::from_utf8_lossy(&msg.payload),
        r#"["emitter",{"type":2,"data":["e"],"nsp":"/"},{"rooms":["a"],"flags":{},"except":[]}]"#
    );
    let e = c
        .emit(pb::EmitRequest {
            args: vec![pb::Argument {
                kind: Some(pb::argument::Kind::Binary(vec![1])),
            }],
            ..emit(&["a"], "e")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("args[0]") && e.message().contains("`json`"),
        "{e:?}"
    );
    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn a_parser_on_a_dialect_without_one_is_refused_at_start() {
    let redis = RedisServer::start().await;
    let out = env_only(&[
        ("EMITGATE_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("EMITGATE_REDIS_URL", redis.url()),
        ("EMITGATE_DIALECT", "socketio-sharded".into()),
        ("EMITGATE_PARSER", "json".into()),
    ])
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--parser (EMITGATE_PARSER)") && stderr.contains("createShardedAdapter has no `parser`"),
        "{stderr}"
    );
    let out = env_only(&[("EMITGATE_DIALECT", "socketio-v3".into())])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown dialect");
    assert!(String::from_utf8_lossy(&out.stderr).contains("socketio-streams"));
}

#[tokio::test]
async fn a_public_admin_listener_without_keys_refuses_to_start_unless_told_otherwise() {
    let redis = RedisServer::start().await;
    let admin = format!("0.0.0.0:{}", free_port());
    let out = Command::new(binary())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--redis-url", &redis.url(), "--admin-listen", &admin])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("admin_listen") && stderr.contains("admin = true") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );

    let port = free_port();
    let child = Command::new(binary())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--redis-url",
            &redis.url(),
            "--admin-listen",
            &admin,
            "--insecure-no-auth",
        ])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // A call answered: the gateway is serving and handles SIGTERM.
    let mut c = wait_until("the gateway accepting gRPC connections", START_TIMEOUT, async || {
        EmitterServiceClient::connect(format!("http://127.0.0.1:{port}")).await
    })
    .await;
    c.emit(emit(&["a"], "e")).await.unwrap();
    signal(&child, signal::Signal::SIGTERM);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ADMIN CONSOLE WITHOUT AUTHENTICATION"),
        "the insecure mode must be loud: {stderr}"
    );
}
