//! emitgate: a gRPC gateway that publishes Socket.IO events into the Redis
//! instance a Socket.IO cluster shares through its adapter.
//!
//! The crate is a library plus a thin binary: [`serve`] runs the gateway on
//! a bound listener until a shutdown future resolves, so tests drive the
//! real server in-process on port 0.
//!
//! Layers: [`config`] → [`service`] (validate with [`validate`], encode with
//! [`codec`], publish with [`target`]); errors map to gRPC codes in
//! [`error`].

pub mod codec;
pub mod config;
pub mod error;
pub mod service;
pub mod target;
pub mod validate;

/// Code generated from `proto/emitgate/v1/emitter.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("emitgate.v1");

    /// The encoded descriptor set of the API, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("emitgate_descriptor");
}

use std::{future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::{ServingStatus, server::HealthReporter};

pub use crate::{config::Config, error::Error, service::Gateway};
use crate::{pb::emitter_service_server::EmitterServiceServer, target::Target};

/// The health service name of the API (besides the server-wide `""`).
pub const SERVICE_NAME: &str = "emitgate.v1.EmitterService";

/// Runs the gateway on `listener` until `shutdown` resolves, then stops
/// accepting calls and lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let gateway = Gateway::new(&config)?;

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
        .ok_or("no default target")?;
    let targets: Vec<Arc<Target>> = gateway.targets().cloned().collect();
    let health_task = tokio::spawn(health_loop(reporter, default, targets, config.health_interval));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let emitter = EmitterServiceServer::new(gateway).max_decoding_message_size(config.limits.max_message_bytes);

    tracing::info!(addr = %listener.local_addr()?, targets = config.targets.len(), "emitgate listening");
    let result = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(emitter)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    health_task.abort();
    tracing::info!("emitgate stopped");
    Ok(result?)
}

/// Keeps the health service in step with Redis: the server and the API are
/// SERVING while the default target's Redis answers PING; each target also
/// has its own entry, `emitgate.v1.EmitterService/<target>`.
async fn health_loop(reporter: HealthReporter, default: Arc<Target>, targets: Vec<Arc<Target>>, every: Duration) {
    let mut last: Vec<Option<bool>> = vec![None; targets.len()];
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (i, t) in targets.iter().enumerate() {
            let result = t.ping().await;
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
                if Arc::ptr_eq(t, &default) {
                    reporter.set_service_status("", status).await;
                    reporter.set_service_status(SERVICE_NAME, status).await;
                }
            }
        }
    }
}
