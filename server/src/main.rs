//! The `emitgate` binary: parse config → init tracing → serve; or run one
//! of the tools (`keygen`, the client subcommands of [`emitgate::cli`]).

use std::io::IsTerminal;

use clap::Parser;
use emitgate::config::{Cli, Command, Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Keygen { id }) => return keygen(&id),
        Some(Command::Client(command)) => return emitgate::cli::run(*command).await,
        None => {}
    }
    let config = match Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("emitgate: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    // Before the port opens: a SIGTERM that arrives as soon as a caller can
    // connect must drain the gateway, not kill it.
    let shutdown = shutdown_signal();
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.listen, error = %e, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    match emitgate::serve(listener, config, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "emitgate failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `emitgate keygen`: the secret for the client, the hash for the config.
fn keygen(id: &str) -> std::process::ExitCode {
    match emitgate::auth::generate_secret() {
        Ok((secret, hash)) => {
            println!("# Secret for the client (shown once; send it as `authorization: Bearer <secret>`):");
            println!("# {secret}");
            println!("# Add to the config file (only the hash is stored):");
            println!("[[auth.keys]]");
            println!("id = {id:?}");
            println!("secret_sha256 = {hash:?}");
            println!("# targets = [\"*\"]       # scopes: names, \"prefix*\" or \"*\"");
            println!("# namespaces = [\"*\"]");
            println!("# rpcs = [\"*\"]          # e.g. [\"Emit\", \"Broadcast\", \"BatchEmit\"]");
            println!("# rate_per_second = 1000");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("emitgate keygen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The log filter when `RUST_LOG` is not set. The redis client's own
/// warnings are left out: it repeats a dead cluster node's connection error
/// on every retry, and the gateway reports Redis failures itself (once per
/// node, then rate-limited, and in every UNAVAILABLE answer).
const DEFAULT_LOG_FILTER: &str = "info,redis=error";

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: logs piped to files or collectors stay plain.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = async |s: Option<tokio::signal::unix::Signal>| match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            };
            tokio::select! {
                () = wait(int) => {},
                () = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received, draining");
    }
}
