//! emitgate: a gRPC gateway that publishes Socket.IO events into the Redis
//! instance a Socket.IO cluster shares through its adapter.
//!
//! The crate is a library plus a thin binary: [`serve`] runs the gateway on
//! a bound listener until a shutdown future resolves, so tests drive the
//! real server in-process on port 0.
//!
//! Layers: [`config`] → [`service`] (the tonic adapter) → [`gateway`]
//! (admit) → [`pipeline`] (plan with [`plan`]: validate with [`validate`],
//! encode with [`codec`]; reserve idempotency keys; send with [`target`];
//! settle); request errors map to gRPC codes in [`error`], start-up errors
//! are a [`StartError`].

mod admin;
pub mod amqp;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod error;
pub mod feedback;
pub mod gateway;
pub mod grpc_codec;
pub mod idempotency;
pub mod message_limit;
pub mod metrics;
pub mod pipeline;
pub mod plan;
pub mod sentinel;
pub mod service;
pub mod target;
pub mod tls;
pub mod validate;

/// Code generated from `proto/emitgate/v1/emitter.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("emitgate.v1");

    /// The encoded descriptor set of the API, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("emitgate_descriptor");
}

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::{ServingStatus, server::HealthReporter};

pub use crate::{config::Config, error::Error, gateway::Gateway};
use crate::{pb::emitter_service_server::EmitterServiceServer, target::Target};

/// The health service name of the API (besides the server-wide `""`).
pub const SERVICE_NAME: &str = "emitgate.v1.EmitterService";

/// Why the gateway could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A target's Redis (or answer-subscriber) client cannot be built from
    /// its settings, e.g. a URL the client refuses.
    #[error("target {target:?}: {message}")]
    Target {
        /// The target's name.
        target: String,
        /// The client's reason.
        message: String,
    },
    /// An API key of the config is invalid.
    #[error("{setting}: {message}")]
    Keys {
        /// The key's setting, e.g. `auth.keys[0].secret_sha256`.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS files cannot be read or used.
    #[error("{0}")]
    Tls(String),
    /// A listener cannot be bound or read.
    #[error("{setting} {addr}: {source}")]
    Listen {
        /// The setting that names the address (`listen`, `admin_listen`).
        setting: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The reflection service cannot be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs the gateway on `listener` until `shutdown` resolves.
///
/// Shutdown is graceful: health turns NOT_SERVING, `/readyz` fails, new
/// calls are refused, and in-flight calls may finish for up to the drain
/// timeout.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let listen_addr = listener.local_addr().map_err(|source| StartError::Listen {
        setting: "listen",
        addr: config.listen,
        source,
    })?;
    let gateway = Gateway::new(&config)?;
    if gateway.requires_auth() {
        tracing::info!(keys = config.keys.len(), "API keys required");
    } else if config.insecure_no_auth && !listen_addr.ip().is_loopback() {
        tracing::warn!(
            "AUTHENTICATION IS OFF on a non-loopback address (--insecure-no-auth): anyone who reaches \
             this port can push events to every connected browser"
        );
    } else {
        tracing::warn!("no API keys configured: authentication is off (loopback only)");
    }

    let (reporter, health) = tonic_health::server::health_reporter();
    // NOT_SERVING until the first successful Redis PING.
    reporter.set_service_status("", ServingStatus::NotServing).await;
    reporter
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    let default = gateway
        .targets()
        .find(|t| t.name == config::DEFAULT_TARGET)
        .cloned()
        .ok_or_else(|| StartError::Target {
            target: config::DEFAULT_TARGET.to_owned(),
            message: "not configured (Config::load always adds it; a Config built by hand must too)".to_owned(),
        })?;
    let targets: Vec<Arc<Target>> = gateway.targets().cloned().collect();
    // Each target's entry exists from the start (NOT_SERVING until its
    // first PING answers), so a Watch or Check right after start is told
    // the status instead of NOT_FOUND.
    for t in &targets {
        reporter
            .set_service_status(format!("{SERVICE_NAME}/{}", t.name), ServingStatus::NotServing)
            .await;
    }
    let ready = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));
    let redis_health = Arc::new(admin::RedisHealth::default());
    let health_task = tokio::spawn(health_loop(
        reporter.clone(),
        default,
        targets,
        config.health_interval,
        Arc::clone(&ready),
        Arc::clone(&draining),
        Arc::clone(&redis_health),
    ));

    let admin_task = match config.admin_listen {
        Some(addr) => {
            let listen_error = |source| StartError::Listen {
                setting: "admin_listen",
                addr,
                source,
            };
            let admin = TcpListener::bind(addr).await.map_err(listen_error)?;
            let admin_addr = admin.local_addr().map_err(listen_error)?;
            tracing::info!(addr = %admin_addr, "admin listening (/metrics, /healthz, /readyz, console at /console)");
            if !admin_addr.ip().is_loopback() && !gateway.requires_auth() {
                tracing::warn!(
                    "ADMIN CONSOLE WITHOUT AUTHENTICATION on a non-loopback address (--insecure-no-auth): \
                     anyone who reaches {admin_addr} can send events from it"
                );
            }
            Some(tokio::spawn(admin::serve(
                admin,
                Arc::clone(&ready),
                gateway.clone(),
                Arc::clone(&redis_health),
            )))
        }
        None => None,
    };
    let reload_task = config
        .path
        .clone()
        .map(|path| tokio::spawn(reload_keys_on_sighup(path, gateway.clone())));

    // Reflection also serves google.rpc's status.proto and
    // error_details.proto (BadRequest, ErrorInfo, QuotaFailure, RetryInfo),
    // so tools such as grpcurl print an error's details decoded.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let emitter = message_limit::MessageLimit::new(
        EmitterServiceServer::new(gateway.clone()).max_decoding_message_size(config.limits.max_message_bytes),
        config.limits.max_message_bytes,
    );

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls::server_config(tls).map_err(StartError::Tls)?)?;
    }
    tracing::info!(
        addr = %listen_addr,
        tls = config.tls.is_some(),
        targets = config.targets.len(),
        "emitgate listening"
    );

    let (started_draining, mut drain_started) = tokio::sync::watch::channel(false);
    let signal = {
        let gateway = gateway.clone();
        async move {
            shutdown.await;
            tracing::info!(
                in_flight = gateway.in_flight(),
                "shutting down: refusing new calls, draining"
            );
            draining.store(true, Ordering::SeqCst);
            ready.store(false, Ordering::SeqCst);
            gateway.start_draining();
            reporter.set_service_status("", ServingStatus::NotServing).await;
            reporter
                .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
                .await;
            let _ = started_draining.send(true);
        }
    };
    let server = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(emitter)
        // TCP_NODELAY: answers are small and must leave at once; without it
        // Nagle's algorithm and delayed ACKs add tens of milliseconds.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);
    let drain_limit = async {
        let _ = drain_started.wait_for(|started| *started).await;
        tokio::time::sleep(config.drain_timeout).await;
    };
    let result = tokio::select! {
        r = server => r,
        () = drain_limit => {
            tracing::warn!(in_flight = gateway.in_flight(), timeout = ?config.drain_timeout, "drain timeout: stopping with calls in flight");
            Ok(())
        }
    };
    health_task.abort();
    for task in [admin_task, reload_task].into_iter().flatten() {
        task.abort();
    }
    tracing::info!("emitgate stopped");
    Ok(result?)
}

/// Re-reads the API keys from the config file on every SIGHUP; a file with
/// an error keeps the current keys.
async fn reload_keys_on_sighup(path: std::path::PathBuf, gateway: Gateway) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: keys will not reload");
            return;
        };
        while hup.recv().await.is_some() {
            match Config::load_keys(&path) {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "API keys reloaded");
                    gateway.set_keys(keys);
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: keys not reloaded, keeping the current ones"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, gateway);
}

/// Keeps the health service in step with Redis: the server and the API are
/// SERVING while the default target's Redis answers PING; each target also
/// has its own entry, `emitgate.v1.EmitterService/<target>`.
async fn health_loop(
    reporter: HealthReporter,
    default: Arc<Target>,
    targets: Vec<Arc<Target>>,
    every: Duration,
    ready: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    redis_health: Arc<admin::RedisHealth>,
) {
    let mut last: Vec<Option<bool>> = vec![None; targets.len()];
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (i, t) in targets.iter().enumerate() {
            let started = std::time::Instant::now();
            let result = t.ping().await;
            redis_health.record(&t.name, started.elapsed(), result.as_ref().map(|_| ()));
            let up = result.is_ok();
            if last[i] != Some(up) {
                match &result {
                    Ok(()) => tracing::info!(target_name = %t.name, "Redis answers"),
                    Err(e) => tracing::warn!(target_name = %t.name, error = %e, "Redis does not answer"),
                }
                last[i] = Some(up);
                let status = if up {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter
                    .set_service_status(format!("{SERVICE_NAME}/{}", t.name), status)
                    .await;
                // Once draining, the server stays NOT_SERVING whatever Redis does.
                if Arc::ptr_eq(t, &default) && !draining.load(Ordering::SeqCst) {
                    ready.store(up, Ordering::SeqCst);
                    reporter.set_service_status("", status).await;
                    reporter.set_service_status(SERVICE_NAME, status).await;
                }
            }
        }
    }
}
