//! The client subcommands of the `emitgate` binary (`emit`, `broadcast`,
//! `join`, `leave`, `disconnect`, `server-side-emit`, `sockets`, `rooms`,
//! `servers`, and `--ack`) run as subprocesses against a real gateway in
//! front of a real Socket.IO 4 cluster (two servers with
//! `@socket.io/redis-adapter`, real `socket.io-client` clients): what the
//! clients and the servers' handlers received and answered, exit codes,
//! printed violations and `--json` output.
//!
//! The binary is `$EMITGATE_BIN` or `target/debug/emitgate` (`make test`
//! builds it first).

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use emitgate_e2e::world::{World, b64, ev};
use emitgate_e2e::{Capture, Gateway, RedisServer, SioClient, Stack, free_port, pki::Pki, repo_root};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::{io::AsyncWriteExt, process::Command};

/// The environment variables the client subcommands read: cleared so that
/// the test's own environment cannot change a call.
const CLIENT_ENV: [&str; 7] = [
    "EMITGATE_ADDR",
    "EMITGATE_API_KEY",
    "EMITGATE_CA_CERT",
    "EMITGATE_CLIENT_CERT",
    "EMITGATE_CLIENT_KEY",
    "EMITGATE_SERVER_NAME",
    "EMITGATE_TIMEOUT_MS",
];

/// Exit codes the CLI documents: 10 + the gRPC code, 2 for usage.
const EXIT_USAGE: i32 = 2;
const EXIT_INVALID_ARGUMENT: i32 = 13;
const EXIT_DEADLINE_EXCEEDED: i32 = 14;
const EXIT_NOT_FOUND: i32 = 15;
const EXIT_RESOURCE_EXHAUSTED: i32 = 18;
const EXIT_UNIMPLEMENTED: i32 = 22;
const EXIT_UNAVAILABLE: i32 = 24;
const EXIT_UNAUTHENTICATED: i32 = 26;

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

/// One finished run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Requires success; returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:?}");
        &self.stdout
    }

    /// Its stdout as the one JSON object `--json` prints.
    fn json(&self) -> Value {
        assert_eq!(self.stdout.lines().count(), 1, "one line of JSON: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs `emitgate ARGS...` with `stdin` and extra environment variables.
async fn run_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary());
    for var in CLIENT_ENV {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("emitgate did not exit within 30 s")
        .unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn run(args: &[&str]) -> Run {
    run_with(args, b"", &[]).await
}

async fn world(gateway_toml: &str) -> (World, String) {
    let w = World::start(|url| async move { Stack::start(&url, 2).await }, gateway_toml).await;
    let addr = format!("http://{}", w.gw.addr);
    (w, addr)
}

#[tokio::test]
async fn emit_to_rooms_delivers_json_arguments_and_binary_files_and_stdin() {
    let (mut w, addr) = world("").await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let b = w.stack.connect("/", 1, &["room1"]).await;
    let muted = w.stack.connect("/", 1, &["room1", "muted"]).await;
    let other = w.stack.connect("/", 0, &["room2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("avatar.bin");
    std::fs::write(&file, [0u8, 1, 2, 253, 254, 255]).unwrap();
    let at_file = format!("@{}", file.display());

    let r = run_with(
        &[
            "emit",
            "--addr",
            &addr,
            "--to",
            "room1",
            "--except",
            "muted",
            "chat message",
            r#"{"a":1,"nested":{"list":[1,"two",3.5]}}"#,
            r#""hello""#,
            "-7",
            "null",
            &at_file,
            "@-",
        ],
        b"\x00from stdin\xff",
        &[],
    )
    .await;
    assert_eq!(r.ok(), "ok: 2 receivers\n", "both servers subscribe to the namespace");

    let want = ev(
        "chat message",
        json!([
            {"a": 1, "nested": {"list": [1, "two", 3.5]}},
            "hello",
            -7,
            null,
            b64(&[0, 1, 2, 253, 254, 255]),
            b64(b"\x00from stdin\xff"),
        ]),
    );
    let got = w.received("/", "barrier", &[&a, &b, &muted, &other]).await;
    assert_eq!(got[0], std::slice::from_ref(&want));
    assert_eq!(got[1], [want]);
    assert_eq!(got[2], Vec::<Value>::new(), "--except skips the muted socket");
    assert_eq!(got[3], Vec::<Value>::new(), "other rooms get nothing");
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn broadcast_with_namespace_flags_and_json_output_and_idempotency() {
    let (mut w, addr) = world("").await;
    let admin = w.stack.connect("/admin", 0, &[]).await;
    let admin_muted = w.stack.connect("/admin", 1, &["muted"]).await;
    let root = w.stack.connect("/", 1, &[]).await;
    let args = [
        "broadcast",
        "--addr",
        &addr,
        "--of",
        "admin",
        "--except",
        "muted",
        "--idempotency-key",
        "deploy-42",
        "--json",
        "tick",
        "1",
    ];
    let first = run(&args).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        first.json(),
        json!({"receivers": 2, "duplicate": false, "stream_id": ""})
    );
    // The same key again: the gateway publishes nothing and says so.
    let again = run(&args).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.json(),
        json!({"receivers": 2, "duplicate": true, "stream_id": ""})
    );

    let got = w.received("/admin", "barrier", &[&admin, &admin_muted]).await;
    assert_eq!(got[0], [ev("tick", json!([1]))], "delivered once");
    assert_eq!(got[1], Vec::<Value>::new());
    let got = w.received("/", "barrier", &[&root]).await;
    assert_eq!(got[0], Vec::<Value>::new(), "another namespace gets nothing");
}

#[tokio::test]
async fn delivery_flags_are_written_into_the_packet_and_a_silent_redis_exceeds_the_deadline() {
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let gw = Gateway::start(Gateway::config(&redis.url(), "")).await;
    let addr = format!("http://{}", gw.addr);
    let flags = |m: &emitgate_e2e::Published| {
        let packet = rmpv::decode::read_value(&mut m.payload.as_slice()).unwrap();
        packet[2]["flags"].to_string()
    };
    run(&["emit", "--addr", &addr, "--to", "r", "--volatile", "--no-compress", "e"])
        .await
        .ok();
    assert_eq!(flags(&cap.next().await), r#"{"volatile": true, "compress": false}"#);
    run(&[
        "broadcast",
        "--addr",
        &addr,
        "--compress",
        "--no-compress",
        "--compress",
        "e",
    ])
    .await
    .ok();
    assert_eq!(flags(&cap.next().await), r#"{"compress": true}"#);
    run(&["broadcast", "--addr", &addr, "e"]).await.ok();
    assert_eq!(flags(&cap.next().await), "{}", "no flag given, none written");

    // A Redis that does not answer within --timeout-ms: DEADLINE_EXCEEDED.
    let pauser = redis::Client::open(redis.url()).unwrap();
    let mut pauser = pauser.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "3000", "ALL"])
        .query_async(&mut pauser)
        .await
        .unwrap();
    let r = run(&["broadcast", "--addr", &addr, "--timeout-ms", "300", "late"]).await;
    assert_eq!(r.code, EXIT_DEADLINE_EXCEEDED, "{r:?}");
    assert!(r.stderr.starts_with("emitgate: DEADLINE_EXCEEDED: "), "{r:?}");
}

/// The events each client of `/` received between the barriers `since` (an
/// earlier one) and `name`.
async fn received_since(w: &mut World, since: &str, name: &str, clients: &[&SioClient]) -> Vec<Vec<Value>> {
    let mut got = w.received("/", name, clients).await;
    for events in &mut got {
        let start = events
            .iter()
            .position(|e| e["event"] == since)
            .expect("earlier barrier");
        events.drain(..=start);
    }
    got
}

#[tokio::test]
async fn join_leave_and_disconnect_act_on_the_selected_sockets() {
    let (mut w, addr) = world("").await;
    let a = w.stack.connect("/", 0, &["room1"]).await;
    let vip = w.stack.connect("/", 1, &["room1", "vip"]).await;
    let c = w.stack.connect("/", 1, &[]).await;

    let r = run(&[
        "join", "--addr", &addr, "--to", "room1", "--except", "vip", "joined", "also",
    ])
    .await;
    assert_eq!(r.ok(), "ok: 2 receivers\n");
    run(&["emit", "--addr", &addr, "--to", "joined", "welcome"]).await.ok();
    let got = w.received("/", "barrier1", &[&a, &vip, &c]).await;
    assert_eq!(got, [vec![ev("welcome", json!([]))], vec![], vec![]]);
    let mut want = vec![a.sid.clone(), "also".into(), "joined".into(), "room1".into()];
    want.sort();
    assert_eq!(w.stack.rooms(&a).await, want);

    // `--all` is the explicit "every socket"; without it or --to, nothing is sent.
    let r = run(&["leave", "--addr", &addr, "joined"]).await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    assert!(r.stderr.contains("--to"), "{r:?}");
    run(&["leave", "--addr", &addr, "--all", "joined"]).await.ok();
    run(&["emit", "--addr", &addr, "--to", "joined", "after leave"])
        .await
        .ok();
    let got = received_since(&mut w, "barrier1", "barrier2", &[&a]).await;
    assert_eq!(got[0], Vec::<Value>::new());
    assert!(!w.stack.rooms(&a).await.contains(&"joined".to_owned()));

    let r = run(&["disconnect", "--addr", &addr]).await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    let r = run(&["disconnect", "--addr", &addr, "--in", &a.sid, "--close", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["receivers"], 2);
    assert_eq!(w.stack.disconnect_reason(&a).await, "io server disconnect");
    let got = received_since(&mut w, "barrier2", "barrier3", &[&vip, &c]).await;
    assert_eq!(got, [Vec::<Value>::new(), vec![]]);
    assert_eq!(w.stack.state(&vip).await["connected"], true);
    assert_eq!(w.stack.state(&c).await["connected"], true);
}

#[tokio::test]
async fn server_side_emit_reaches_the_servers_handlers() {
    let (w, addr) = world("").await;
    w.stack.listen("/", "hello").await;
    let r = run(&["server-side-emit", "--addr", &addr, "hello", r#""world""#, r#"{"n":1}"#]).await;
    assert_eq!(r.ok(), "ok: 2 receivers\n");
    let mut events = w.stack.server_events("/", "hello", 2).await;
    events.sort_by_key(|e| e["server"].as_u64());
    assert_eq!(
        events,
        [
            json!({"server": 0, "args": ["world", {"n": 1}]}),
            json!({"server": 1, "args": ["world", {"n": 1}]})
        ]
    );
}

#[tokio::test]
async fn a_rejected_call_exits_with_its_code_and_prints_the_violations() {
    let (mut w, addr) = world("").await;
    let a = w.stack.connect("/", 0, &["r"]).await;

    let r = run(&["emit", "--addr", &addr, "--to", "r", "connect", "1"]).await;
    assert_eq!(r.code, EXIT_INVALID_ARGUMENT, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.starts_with("emitgate: INVALID_ARGUMENT: "), "{r:?}");
    let violation = r
        .stderr
        .lines()
        .find(|l| l.starts_with("  event: "))
        .unwrap_or_else(|| panic!("no violation line: {r:?}"));
    assert!(violation.contains("reserved"), "{violation}");

    let r = run(&["emit", "--addr", &addr, "--to", "r", "--to", "", "connect", "--json"]).await;
    assert_eq!(r.code, EXIT_INVALID_ARGUMENT, "{r:?}");
    let err = r.json();
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(err["error"]["grpc_code"], 3);
    assert!(err["error"]["message"].as_str().unwrap().contains("event"), "{err}");
    let fields: Vec<&str> = err["error"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["event", "rooms[1]"], "{err}");

    let r = run(&["broadcast", "--addr", &addr, "--target", "nope", "e"]).await;
    assert_eq!(r.code, EXIT_NOT_FOUND, "{r:?}");
    assert!(r.stderr.starts_with("emitgate: NOT_FOUND: "), "{r:?}");

    // Not JSON: refused locally with the usage code.
    let r = run(&["emit", "--addr", &addr, "--to", "r", "ev", "hello"]).await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    assert!(r.stderr.contains("argument 1: not JSON"), "{r:?}");
    assert!(r.stderr.contains(r#"'"text"'"#), "says how to quote a string: {r:?}");

    let got = w.received("/", "barrier", &[&a]).await;
    assert_eq!(got[0], Vec::<Value>::new(), "nothing was published");
}

#[tokio::test]
async fn an_unreachable_gateway_is_unavailable_without_waiting_for_the_deadline() {
    let addr = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let r = run(&["emit", "--addr", &addr, "--timeout-ms", "60000", "--to", "r", "e"]).await;
    // Well under the 60 s deadline: a refused connection is not waited out.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.code, EXIT_UNAVAILABLE, "{r:?}");
    assert!(
        r.stderr.starts_with("emitgate: UNAVAILABLE: cannot connect to"),
        "{r:?}"
    );

    // The address from the environment, the error as JSON.
    let r = run_with(&["broadcast", "--json", "e"], b"", &[("EMITGATE_ADDR", &addr)]).await;
    assert_eq!(r.code, EXIT_UNAVAILABLE, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "UNAVAILABLE");
}

#[tokio::test]
async fn api_keys_from_the_flag_or_the_environment() {
    let toml = format!(
        "[[auth.keys]]\nid = \"ops\"\nsecret_sha256 = \"{}\"\n\
         [[auth.keys]]\nid = \"slow\"\nsecret_sha256 = \"{}\"\nrate_per_second = 1\n",
        hex::encode(Sha256::digest(b"ops-secret")),
        hex::encode(Sha256::digest(b"slow-secret"))
    );
    let (w, addr) = world(&toml).await;
    let a = w.stack.connect("/", 0, &["r"]).await;

    let r = run(&["emit", "--addr", &addr, "--to", "r", "no-key"]).await;
    assert_eq!(r.code, EXIT_UNAUTHENTICATED, "{r:?}");
    assert!(r.stderr.starts_with("emitgate: UNAUTHENTICATED: "), "{r:?}");
    assert!(r.stderr.contains("--api-key"), "hints at the flag: {r:?}");
    let r = run(&["emit", "--addr", &addr, "--api-key", "wrong", "--to", "r", "bad-key"]).await;
    assert_eq!(r.code, EXIT_UNAUTHENTICATED, "{r:?}");

    run(&[
        "emit",
        "--addr",
        &addr,
        "--api-key",
        "ops-secret",
        "--to",
        "r",
        "by-flag",
    ])
    .await
    .ok();
    run_with(
        &["emit", "--to", "r", "by-env"],
        b"",
        &[("EMITGATE_ADDR", &addr), ("EMITGATE_API_KEY", "ops-secret")],
    )
    .await
    .ok();

    // One event per second: calls in quick succession are refused with the
    // retry delay from google.rpc.RetryInfo. (Bounded: two of these calls
    // within one second is all it takes.)
    let slow = [
        "emit",
        "--addr",
        &addr,
        "--api-key",
        "slow-secret",
        "--to",
        "nobody",
        "e",
        "--json",
    ];
    let refused = 'refused: {
        for _ in 0..20 {
            let r = run(&slow).await;
            if r.code != 0 {
                break 'refused r;
            }
        }
        panic!("a key limited to 1 event/s was never refused");
    };
    assert_eq!(refused.code, EXIT_RESOURCE_EXHAUSTED, "{refused:?}");
    let err = refused.json();
    assert_eq!(err["error"]["code"], "RESOURCE_EXHAUSTED");
    let retry = err["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 1000, "{err}");

    // The barrier itself needs the key: send it through the CLI too.
    run(&["broadcast", "--addr", &addr, "--api-key", "ops-secret", "barrier"])
        .await
        .ok();
    let got = w.stack.events_before(&a, "barrier").await;
    assert_eq!(got, [ev("by-flag", json!([])), ev("by-env", json!([]))]);
}

#[tokio::test]
async fn tls_with_a_ca_and_mtls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let redis = RedisServer::start().await;
    let mut cap = Capture::start(&redis.url()).await;
    let toml = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\
         [[auth.keys]]\nid = \"billing\"\nclient_subject = \"CN=billing\"\n",
        pki.server_cert, pki.server_key, pki.ca
    );
    let gw = Gateway::start(Gateway::config(&redis.url(), &toml)).await;
    let ca = pki.ca.display().to_string();
    let cert = pki.client_cert.display().to_string();
    let key = pki.client_key.display().to_string();
    let https = format!("https://127.0.0.1:{}", gw.addr.port());

    // The client certificate is the credential; the CA checks the server.
    let mtls = [
        "emit",
        "--addr",
        &https,
        "--ca-cert",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
        "--server-name",
        "localhost",
        "--to",
        "a",
        "e",
    ];
    run(&mtls).await.ok();
    assert_eq!(cap.next().await.channel, "socket.io#/#a#");

    // TLS without a client certificate: the handshake succeeds, the call
    // has no credential.
    let r = run(&["emit", "--addr", &https, "--ca-cert", &ca, "--to", "a", "e"]).await;
    assert_eq!(r.code, EXIT_UNAUTHENTICATED, "{r:?}");

    // https:// needs a CA; a TLS flag with http:// is a usage error.
    let r = run(&["emit", "--addr", &https, "--to", "a", "e"]).await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    assert!(r.stderr.contains("--ca-cert"), "{r:?}");
    let http = format!("http://{}", gw.addr);
    let r = run(&["emit", "--addr", &http, "--ca-cert", &ca, "--to", "a", "e"]).await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    cap.expect_nothing_before_marker(&redis.url()).await;
}

#[tokio::test]
async fn usage_errors_and_help_name_the_subcommands() {
    let r = run(&["--help"]).await;
    for sub in [
        "emit",
        "broadcast",
        "join",
        "leave",
        "disconnect",
        "server-side-emit",
        "sockets",
        "rooms",
        "servers",
        "keygen",
    ] {
        assert!(r.ok().lines().any(|l| l.trim_start().starts_with(sub)), "{sub}: {r:?}");
    }
    let r = run(&["emit", "chat"]).await;
    assert_eq!(r.code, EXIT_USAGE, "emit needs a room: {r:?}");
    assert!(r.stderr.contains("--to"), "{r:?}");
}

/// Connects a client through the harness with its extra options: `ack`
/// (how it answers an ack callback), `data` (its `socket.data`), `auth` and
/// `headers` (secrets that must never come back).
async fn client(w: &World, server: u32, rooms: &[&str], extra: Value) -> SioClient {
    w.stack.connect_with("/", server, rooms, extra).await
}

/// `values` sorted by their JSON text (answers arrive in any order).
fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(Value::to_string);
    values
}

#[tokio::test]
async fn emit_and_broadcast_with_ack_print_what_the_clients_answered() {
    // A second target whose dialect cannot gather broadcast acks.
    let mut w = World::start_with(
        |url| async move { Stack::start(&url, 2).await },
        |url| {
            Gateway::config(
                url,
                &format!("[[targets]]\nname = \"py\"\nredis_url = {url:?}\ndialect = \"python-socketio\"\n"),
            )
        },
    )
    .await;
    let addr = format!("http://{}", w.gw.addr);
    let a = client(&w, 0, &["r"], json!({"ack": {"reply": {"ok": true, "n": 7}}})).await;
    let b = client(&w, 1, &["r"], json!({"ack": {"reply": {"$binary": "AQID"}}})).await;
    let outside = client(&w, 0, &["other"], json!({"ack": {"reply": "outside"}})).await;

    let r = run(&["emit", "--addr", &addr, "--ack", "--to", "r", "question", r#""q1""#]).await;
    let mut lines: Vec<&str> = r.ok().lines().collect();
    assert_eq!(lines[0], "ok: 2 sockets, 2 acks, 2 of 2 servers, complete", "{r:?}");
    lines[1..].sort_unstable();
    assert_eq!(
        lines[1..],
        ["  ack: <3 bytes> AQID", r#"  ack: {"n":7,"ok":true}"#],
        "{r:?}"
    );

    let r = run(&[
        "broadcast",
        "--addr",
        &addr,
        "--ack",
        "--wait-ms",
        "3000",
        "--json",
        "question",
        r#""q2""#,
    ])
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let mut answer = r.json();
    let acks = answer.as_object_mut().unwrap().remove("acks").unwrap();
    assert_eq!(
        answer,
        json!({"sockets": 3, "servers": 2, "servers_expected": 2, "complete": true})
    );
    assert_eq!(
        sorted(acks.as_array().unwrap().clone()),
        sorted(vec![
            json!({"value": {"n": 7, "ok": true}}),
            json!({"binary": "AQID"}),
            json!({"value": "outside"}),
        ])
    );

    // A client that never acks: the wait ends, the call still succeeds and
    // says what is missing.
    let silent = w.stack.connect("/", 1, &["slow"]).await;
    let started = Instant::now();
    let r = run(&[
        "emit",
        "--addr",
        &addr,
        "--ack",
        "--wait-ms",
        "500",
        "--to",
        "slow",
        "question",
        r#""q3""#,
    ])
    .await;
    assert_eq!(
        r.ok(),
        "ok: 1 socket, 0 acks, 2 of 2 servers, incomplete (not every server or socket answered within the wait)\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(500), "waited for the ack");

    // Refused: by the gateway (with the violation), by the dialect, or locally.
    let r = run(&[
        "emit",
        "--addr",
        &addr,
        "--ack",
        "--wait-ms",
        "70000",
        "--timeout-ms",
        "80000",
        "--to",
        "r",
        "question",
    ])
    .await;
    assert_eq!(r.code, EXIT_INVALID_ARGUMENT, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("  timeout_ms: 70000 ms is over")),
        "{r:?}"
    );
    let r = run(&["broadcast", "--addr", &addr, "--ack", "--target", "py", "question"]).await;
    assert_eq!(r.code, EXIT_UNIMPLEMENTED, "{r:?}");
    assert!(
        r.stderr.starts_with("emitgate: UNIMPLEMENTED: ") && r.stderr.contains("python-socketio"),
        "{r:?}"
    );
    let r = run(&[
        "emit",
        "--addr",
        &addr,
        "--ack",
        "--idempotency-key",
        "k1",
        "--to",
        "r",
        "question",
    ])
    .await;
    assert_eq!(r.code, EXIT_USAGE, "a call that waits is never replayed: {r:?}");
    let r = run(&[
        "emit",
        "--addr",
        &addr,
        "--ack",
        "--timeout-ms",
        "3000",
        "--to",
        "r",
        "question",
    ])
    .await;
    assert_eq!(r.code, EXIT_USAGE, "{r:?}");
    assert!(
        r.stderr.contains("--wait-ms 5000 must be below --timeout-ms 3000"),
        "the default wait counts too: {r:?}"
    );

    let got = w.received("/", "barrier", &[&a, &b, &outside, &silent]).await;
    let (q1, q2, q3) = (
        ev("question", json!(["q1"])),
        ev("question", json!(["q2"])),
        ev("question", json!(["q3"])),
    );
    assert_eq!(got[0], [q1.clone(), q2.clone()]);
    assert_eq!(got[1], [q1, q2.clone()]);
    assert_eq!(got[2], [q2], "the refused calls published nothing");
    assert_eq!(got[3], [q3]);
    w.assert_servers_healthy().await;
}

#[tokio::test]
async fn server_side_emit_with_ack_prints_each_servers_reply() {
    let (w, addr) = world("").await;
    let (status, v) = w
        .stack
        .call(
            reqwest::Method::POST,
            "/listen",
            Some(json!({"namespace": "/", "event": "ping", "servers": [0, 1], "reply": {"pong": 1}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    let r = run(&[
        "server-side-emit",
        "--addr",
        &addr,
        "--ack",
        "--json",
        "ping",
        r#""hi""#,
    ])
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let answer = r.json();
    assert_eq!(
        (&answer["servers_expected"], &answer["complete"]),
        (&json!(2), &json!(true))
    );
    let replies: Vec<&Value> = answer["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["reply"])
        .collect();
    assert_eq!(
        replies,
        [&json!({"value": {"pong": 1}}), &json!({"value": {"pong": 1}})]
    );

    let r = run(&["server-side-emit", "--addr", &addr, "--ack", "ping"]).await;
    let lines: Vec<&str> = r.ok().lines().collect();
    assert_eq!(lines[0], "ok: 2 replies, 2 servers expected, complete", "{r:?}");
    assert_eq!(lines.len(), 3, "{r:?}");
    for line in &lines[1..] {
        assert!(
            line.starts_with("  reply") && line.ends_with(r#": {"pong":1}"#),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn sockets_rooms_and_servers_show_the_clusters_state_without_secrets() {
    let (w, addr) = world("").await;
    let a = client(
        &w,
        0,
        &["r", "vip"],
        json!({
            "data": {"user": "u1", "n": 3},
            "auth": {"token": "secret-token"},
            "headers": {"cookie": "session=secret-cookie", "authorization": "Bearer secret-bearer", "x-app": "demo"},
        }),
    )
    .await;
    let b = client(&w, 1, &["r"], json!({})).await;
    let c = client(&w, 1, &["elsewhere"], json!({})).await;

    let r = run(&["sockets", "--addr", &addr, "--to", "r", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    for secret in ["secret-token", "secret-cookie", "secret-bearer"] {
        assert!(!r.stdout.contains(secret), "{secret} came back: {r:?}");
    }
    let answer = r.json();
    assert_eq!(
        (
            &answer["servers"],
            &answer["servers_expected"],
            &answer["complete"],
            &answer["truncated"]
        ),
        (&json!(2), &json!(2), &json!(true), &json!(false))
    );
    let sockets = answer["sockets"].as_array().unwrap();
    let ids = sorted(sockets.iter().map(|s| s["id"].clone()).collect());
    assert_eq!(ids, sorted(vec![json!(a.sid), json!(b.sid)]));
    let sa = sockets.iter().find(|s| s["id"] == a.sid.as_str()).unwrap();
    assert_eq!(
        sorted(sa["rooms"].as_array().unwrap().clone()),
        sorted(vec![json!(a.sid), json!("r"), json!("vip")])
    );
    assert_eq!(sa["data"], json!({"user": "u1", "n": 3}));
    assert_eq!(sa["handshake"]["headers"]["x-app"], "demo");

    // As text: one line per socket, --except honoured.
    let r = run(&["sockets", "--addr", &addr, "--in", "r", "--except", "vip"]).await;
    let lines: Vec<&str> = r.ok().lines().collect();
    assert_eq!(lines[0], "ok: 1 socket from 2 of 2 servers, complete", "{r:?}");
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[1].starts_with(&format!("  {}  rooms: ", b.sid)), "{r:?}");
    assert!(
        lines[1].ends_with("  data: {}"),
        "Socket.IO's socket.data starts empty: {r:?}"
    );

    let r = run(&["rooms", "--addr", &addr, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let mut want = vec![
        a.sid.clone(),
        b.sid.clone(),
        c.sid.clone(),
        "elsewhere".into(),
        "r".into(),
        "vip".into(),
    ];
    want.sort();
    assert_eq!(
        r.json(),
        json!({"rooms": want, "servers": 2, "servers_expected": 2, "complete": true, "truncated": false})
    );
    let r = run(&["rooms", "--addr", &addr, "--wait-ms", "2000"]).await;
    let text = r.ok();
    assert!(text.starts_with("ok: 6 rooms from 2 of 2 servers, complete\n"), "{r:?}");
    assert!(text.contains("\n  vip\n"), "{r:?}");

    assert_eq!(run(&["servers", "--addr", &addr]).await.ok(), "ok: 2 servers\n");
    let r = run(&["servers", "--addr", &addr, "--of", "nobody", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), json!({"servers": 0}), "no server has that namespace");
    let r = run(&["sockets", "--addr", &addr, "--target", "nope"]).await;
    assert_eq!(r.code, EXIT_NOT_FOUND, "{r:?}");
}
