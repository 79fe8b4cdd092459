//! The admin console in a real headless Chromium (Debian's `chromium`,
//! driven with Selenium through `chromium-driver`), in front of the real
//! gateway, a real Redis and a real Socket.IO 4 cluster with real clients:
//! the page shows the targets, a test event sent from its form reaches the
//! clients (and, sent with acks, shows what they answered), "who is online"
//! lists a room's sockets without their secrets, rejected calls are listed,
//! and with API keys the console needs a key with `admin = true`.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use std::time::Duration;

use emitgate::pb;
use emitgate_e2e::{
    Gateway, RedisServer, SioClient, Stack,
    browser::Browser,
    free_port, repo_root,
    wait::wait_until,
    world::{World, emit_req, ev},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

/// A port on loopback where nothing ever listens (TCP port 1, `tcpmux`):
/// a target there is down for the whole test.
const CLOSED_PORT: u16 = 1;

/// Waits until the admin listener answers `/readyz` (the default target's
/// Redis answered its first PING).
async fn admin_ready(port: u16) {
    let http = reqwest::Client::new();
    wait_until("the admin listener ready", Duration::from_secs(20), async || match http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(r.status().to_string()),
        Err(e) => Err(e.to_string()),
    })
    .await;
}

fn admin_config(redis_url: &str, extra: &str, admin_port: u16) -> emitgate::Config {
    let mut c = Gateway::config(redis_url, extra);
    c.admin_listen = Some(format!("127.0.0.1:{admin_port}").parse().unwrap());
    c
}

/// The console in a browser, how many answers its send form and its "who
/// is online" form showed, and whether "wait for acks" is ticked.
struct Console {
    b: Browser,
    answers: u32,
    lookups: u32,
    ack: bool,
}

impl Console {
    async fn start() -> Self {
        Self {
            b: Browser::start().await,
            answers: 0,
            lookups: 0,
            ack: false,
        }
    }
}

/// Fills in and submits the console's send form, with acks or without;
/// returns the answer shown.
async fn send_from_form(c: &mut Console, op: &str, rooms: &str, event: &str, args: &str, ack: bool) -> String {
    if c.ack != ack {
        c.b.click("#send-ack").await;
        c.ack = ack;
    }
    let b = &mut c.b;
    b.select("#send-op", op).await;
    b.select("#send-target", "default").await;
    b.fill("#send-namespace", "/").await;
    if op == "emit" {
        b.fill("#send-rooms", rooms).await;
    }
    b.fill("#send-event", event).await;
    b.fill("#send-args", args).await;
    b.click("#send-button").await;
    c.answers += 1;
    b.wait_text(&format!("#send-result[data-answer=\"{}\"]", c.answers), "")
        .await
}

/// Asks "who is online" in `room` of `/`; returns the summary shown.
async fn look_up(c: &mut Console, room: &str) -> String {
    c.b.select("#online-target", "default").await;
    c.b.fill("#online-namespace", "/").await;
    c.b.fill("#online-room", room).await;
    c.b.click("#online-button").await;
    c.lookups += 1;
    c.b.wait_text(&format!("#online-result[data-answer=\"{}\"]", c.lookups), "")
        .await
}

/// Connects a client through the harness with its extra options (`ack`:
/// how it answers an ack callback; `auth`, `headers`, `data`: what must
/// never reach the page).
async fn client(w: &World, server: u32, rooms: &[&str], extra: Value) -> SioClient {
    w.stack.connect_with("/", server, rooms, extra).await
}

#[tokio::test]
async fn the_console_shows_targets_sends_test_events_and_lists_failed_calls() {
    let admin_port = free_port();
    let offline = format!(
        "[[targets]]\nname = \"offline\"\nredis_url = \"redis://127.0.0.1:{CLOSED_PORT}\"\ndialect = \"python-socketio\"\n"
    );
    let mut w = World::start_with(
        |url| async move { Stack::start(&url, 2).await },
        |url| admin_config(url, &offline, admin_port),
    )
    .await;
    let a = client(
        &w,
        0,
        &["console-room"],
        json!({
            "ack": {"reply": {"seen": true}},
            "data": {"email": "private@example.com"},
            "auth": {"token": "secret-token"},
            "headers": {"cookie": "session=secret-cookie", "authorization": "Bearer secret-bearer"},
        }),
    )
    .await;
    let b = client(&w, 1, &["console-room", "vip"], json!({"ack": {"reply": "here"}})).await;
    let outside = w.stack.connect("/", 0, &[]).await;
    // A call the gateway rejects, made over gRPC: the console lists it.
    let rejected =
        w.c.emit(pb::EmitRequest {
            target: "nope".into(),
            ..emit_req(&["console-room"], "lost", vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(rejected.code(), Code::NotFound);
    admin_ready(admin_port).await;

    let mut console = Console::start().await;
    console.b.open(&format!("http://127.0.0.1:{admin_port}/")).await;
    // Each target, with its dialect and Redis health.
    let default = console.b.wait_text("#targets tr[data-target=default]", "up").await;
    assert!(default.contains("socketio"), "{default}");
    assert!(default.contains(" ms"), "the ping time is shown: {default}");
    let down = console.b.wait_text("#targets tr[data-target=offline]", "down").await;
    assert!(down.contains("python-socketio"), "{down}");
    assert!(down.contains("unavailable"), "the reason is shown: {down}");
    assert_eq!(console.b.texts("#targets tbody tr").await.len(), 2);
    assert!(!console.b.visible("#login").await, "no key is needed without API keys");

    // The gRPC call rejected above.
    let failure = console.b.wait_text("#failures tbody", "unknown target \"nope\"").await;
    assert!(failure.contains("Emit") && failure.contains("NotFound"), "{failure}");

    // Rejected from the form: validated as any gRPC call, with field violations.
    let answer = send_from_form(&mut console, "emit", "", "console test", "[]", false).await;
    assert!(answer.starts_with("InvalidArgument"), "{answer}");
    assert!(answer.contains("rooms"), "the violation names the field: {answer}");
    let failure = console
        .b
        .wait_text("#failures tbody tr:first-child", "InvalidArgument")
        .await;
    assert!(failure.contains("Emit") && failure.contains("rooms"), "{failure}");
    // Not JSON arguments: refused by the console itself, nothing sent.
    let answer = send_from_form(&mut console, "emit", "console-room", "console test", "[1,", false).await;
    assert!(answer.starts_with("Not sent: args must be a JSON array"), "{answer}");

    // Sent from the form: both servers subscribe to "/", so 2 receivers.
    let answer = send_from_form(&mut console, "broadcast", "", "console broadcast", "[42]", false).await;
    assert_eq!(answer, "OK · receivers: 2");
    let answer = send_from_form(
        &mut console,
        "emit",
        "console-room",
        "console test",
        r#"["hello from the console", {"n": 1.5, "list": [true, null]}]"#,
        false,
    )
    .await;
    assert_eq!(answer, "OK · receivers: 2");

    // With acks (EmitWithAck): both clients in the room answer.
    let answer = send_from_form(
        &mut console,
        "emit",
        "console-room",
        "console ack",
        r#"["are you there?"]"#,
        true,
    )
    .await;
    let mut lines: Vec<&str> = answer.lines().collect();
    assert_eq!(
        lines[0], "OK · sockets: 2 · acks: 2 · servers: 2/2 · complete",
        "{answer}"
    );
    lines[1..].sort_unstable();
    assert_eq!(lines[1..], [r#""here""#, r#"{"seen":true}"#], "{answer}");

    // Who is online in the room: ids and rooms, nothing of the handshake
    // or socket.data.
    let online = look_up(&mut console, "console-room").await;
    assert_eq!(online, "2 sockets · servers: 2/2 · complete");
    let rows = console.b.texts("#online-sockets tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (c, rooms) in [(&a, &["console-room"][..]), (&b, &["console-room", "vip"][..])] {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&c.sid))
            .unwrap_or_else(|| panic!("{} is not listed: {rows:?}", c.sid));
        // Its rooms, its own id included, in the order the server keeps.
        let mut shown: Vec<&str> = row[c.sid.len()..].trim().split(", ").collect();
        shown.sort_unstable();
        let mut want = vec![c.sid.as_str()];
        want.extend(rooms);
        want.sort_unstable();
        assert_eq!(shown, want, "{row}");
    }
    let page = console.b.texts("body").await.concat();
    for secret in ["secret-token", "secret-cookie", "secret-bearer", "private@example.com"] {
        assert!(!page.contains(secret), "{secret} is on the page");
    }

    // Live numbers from the gateway's metrics (shared by every gateway of
    // this test process, so only lower bounds are certain).
    let calls = console
        .b
        .wait_text("#calls tr[data-method=Emit]", "InvalidArgument")
        .await;
    assert!(calls.contains("NotFound") && calls.contains("OK"), "{calls}");
    let total: u64 = console
        .b
        .wait_text("#total-events", "in all")
        .await
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 2, "{total} events published");
    let rate = console.b.wait_text("#rate-events", "").await;
    assert!(rate.parse::<f64>().is_ok(), "events/s is a number: {rate:?}");

    let shot = repo_root().join("target/console/console.png");
    console.b.screenshot(&shot).await;
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "{} is a real picture",
        shot.display()
    );
    console.b.quit().await;

    // What the Socket.IO clients actually received.
    let got = w.received("/", "barrier", &[&a, &b, &outside]).await;
    let expected = [
        ev("console broadcast", json!([42])),
        ev(
            "console test",
            json!(["hello from the console", {"n": 1.5, "list": [true, null]}]),
        ),
        ev("console ack", json!(["are you there?"])),
    ];
    for (i, events) in got.iter().take(2).enumerate() {
        assert_eq!(events, &expected, "client {i}");
    }
    assert_eq!(got[2], [ev("console broadcast", json!([42]))]);
    w.assert_servers_healthy().await;
}

fn key_toml(id: &str, secret: &str, extra: &str) -> String {
    format!(
        "[[auth.keys]]\nid = \"{id}\"\nsecret_sha256 = \"{}\"\n{extra}\n",
        hex::encode(Sha256::digest(secret.as_bytes()))
    )
}

#[tokio::test]
async fn with_api_keys_the_console_needs_an_admin_key_and_keeps_the_keys_scopes() {
    let redis = RedisServer::start().await;
    let admin_port = free_port();
    let keys = key_toml("ops", "ops-secret", "admin = true\nrpcs = [\"Broadcast\"]")
        + &key_toml("app", "app-secret", "rpcs = [\"*\"]");
    let _gw = Gateway::start(admin_config(&redis.url(), &keys, admin_port)).await;
    admin_ready(admin_port).await;

    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{admin_port}{path}");
    let status = |key: Option<&'static str>| {
        let mut r = http.get(url("/api/status"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move { r.send().await.unwrap() }
    };
    let refused = status(None).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(status(Some("wrong")).await.status(), 401);
    let not_admin = status(Some("app-secret")).await;
    assert_eq!(not_admin.status(), 403);
    let body: Value = not_admin.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("admin = true"), "{body}");
    let ok: Value = status(Some("ops-secret")).await.json().await.unwrap();
    assert_eq!(ok["key"], "ops");
    // Prometheus keeps scraping without a key, as before.
    let metrics = http.get(url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    // The send API takes only JSON from the console's own origin.
    let form = json!({"op": "broadcast", "event": "x"}).to_string();
    let as_text = http
        .post(url("/api/send"))
        .bearer_auth("ops-secret")
        .header("content-type", "text/plain")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(as_text.status(), 415);
    let cross_site = http
        .post(url("/api/send"))
        .bearer_auth("ops-secret")
        .header("content-type", "application/json")
        .header("origin", "http://evil.example")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);

    let mut console = Console::start().await;
    console.b.open(&url("/console")).await;
    let refusal = console.b.wait_text("#refused", "Refused").await;
    assert!(refusal.contains("missing API key"), "{refusal}");
    assert!(!console.b.visible("#app").await, "no data without a key");
    assert_eq!(console.b.texts("#targets tbody tr").await, Vec::<String>::new());

    console.b.fill("#key", "app-secret").await;
    console.b.click("#key-form button").await;
    let refusal = console.b.wait_text("#refused", "admin = true").await;
    assert!(refusal.contains("\"app\""), "{refusal}");
    assert!(!console.b.visible("#app").await);

    console.b.fill("#key", "ops-secret").await;
    console.b.click("#key-form button").await;
    console.b.wait_text("#targets tr[data-target=default]", "up").await;
    assert!(console.b.wait_text("#whoami", "ops").await.contains("API key \"ops\""));

    // The form's calls carry the admin key, with its scopes: this one may
    // Broadcast but not Emit.
    let answer = send_from_form(&mut console, "emit", "room", "e", "[]", false).await;
    assert!(answer.starts_with("PermissionDenied"), "{answer}");
    assert!(answer.contains("may not call Emit"), "{answer}");
    let answer = send_from_form(&mut console, "broadcast", "", "e", "[]", false).await;
    assert_eq!(answer, "OK · receivers: 0", "nobody subscribes to this Redis");
    // Who is online reads users' data: this key's scopes do not name FetchSockets.
    let online = look_up(&mut console, "room").await;
    assert!(online.starts_with("PermissionDenied"), "{online}");
    assert!(online.contains("FetchSockets"), "{online}");
    let failures = console.b.wait_text("#failures tbody", "FetchSockets").await;
    assert!(failures.contains("may not call Emit"), "{failures}");
    let page = console.b.texts("body").await.concat();
    assert!(!page.contains("ops-secret") && !page.contains("app-secret"), "{page}");
    console.b.quit().await;
}
