//! The admin HTTP listener: `/metrics` (Prometheus text), `/healthz` (the
//! process is up) and `/readyz` (the default target's Redis answers and the
//! gateway is not draining).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio::net::TcpListener;

/// Serves the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, ready: Arc<AtomicBool>) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ready);
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

async fn readyz(State(ready): State<Arc<AtomicBool>>) -> impl IntoResponse {
    if ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Redis does not answer or the gateway is draining\n",
        )
    }
}
