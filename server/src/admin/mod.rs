//! The admin HTTP listener: `/metrics` (Prometheus text), `/healthz` (the
//! process is up), `/readyz` (the default target's Redis answers and the
//! gateway is not draining), and the admin console: a page at `/console`
//! and the JSON API it uses under `/api/` (see [`console`]).
//!
//! `/metrics`, `/healthz` and `/readyz` never ask for a key, so scrapers and
//! probes work as they always did. The console's API requires an API key
//! with `admin = true` whenever keys are configured.

mod console;
pub mod failures;
pub mod health;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect},
    routing::{get, post},
};
use tokio::net::TcpListener;

pub use self::{failures::FailedCalls, health::RedisHealth};
use crate::service::Gateway;

/// What the admin endpoints share.
#[derive(Clone)]
struct Admin {
    /// Whether `/readyz` answers 200.
    ready: Arc<AtomicBool>,
    /// The gateway the console shows and sends through.
    gateway: Gateway,
    /// The health loop's last PING of each target.
    health: Arc<RedisHealth>,
    /// Whether the listener is on a loopback address.
    loopback: bool,
    /// When the listener started (the console's rates are per second of it).
    started: Instant,
}

/// Serves the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, ready: Arc<AtomicBool>, gateway: Gateway, health: Arc<RedisHealth>) {
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let state = Admin {
        ready,
        gateway,
        health,
        loopback,
        started: Instant::now(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(console::page))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .route("/api/status", get(console::status))
        .route("/api/send", post(console::send))
        .route("/api/sockets", post(console::sockets))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::global().render(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    if admin.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Redis does not answer or the gateway is draining\n",
        )
    }
}
