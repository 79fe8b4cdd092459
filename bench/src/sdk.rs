//! The SDK scenarios: each SDK's Publisher, driven by its own program in
//! `bench/sdk/` (Python: the sync Publisher in one process; Go; PHP: one CLI
//! process), publishing the same workload as every other scenario through
//! the bench's gateway, events counted at the subscriber.
//!
//! A driver reads its configuration as one JSON object on stdin (the
//! gateway's address, the seconds to run, the event, the payload and the
//! room sets) and prints one JSON line when done: `{"sent", "errors",
//! "first_error", "cpu_s"}`.

use std::{
    error::Error,
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;

/// One SDK scenario: its id, its label and the command of its driver.
pub struct Driver {
    /// Scenario id (`sdk-python`, ...).
    pub id: &'static str,
    /// Human label.
    pub label: &'static str,
    /// The driver's command.
    pub command: Command,
}

/// What a driver reports.
pub struct Report {
    /// Events published and answered OK.
    pub sent: u64,
    /// Events that failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// CPU seconds the driver's process used.
    pub cpu_s: Option<f64>,
}

/// The drivers, the Go one built first into `target/bench-sdk/` (the SDKs'
/// toolchains come from `make setup`).
pub fn drivers(root: &Path) -> Result<Vec<Driver>, Box<dyn Error>> {
    let bin = root.join("target/bench-sdk/go-driver");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(root.join("bench/sdk/go"))
        .status()
        .map_err(|e| format!("go build of bench/sdk/go: {e} (make setup installs Go)"))?;
    if !status.success() {
        return Err(format!("go build of bench/sdk/go failed: {status}").into());
    }
    let mut python = Command::new(root.join("sdk/python/.venv/bin/python"));
    python.arg(root.join("bench/sdk/python.py"));
    let mut php = Command::new("php");
    php.arg(root.join("bench/sdk/php.php"));
    Ok(vec![
        Driver {
            id: "sdk-python",
            label: "Python SDK Publisher (sync, one process)",
            command: python,
        },
        Driver {
            id: "sdk-go",
            label: "Go SDK Publisher",
            command: Command::new(bin),
        },
        Driver {
            id: "sdk-php",
            label: "PHP SDK Publisher (one CLI process)",
            command: php,
        },
    ])
}

/// Runs a driver with `cfg` on stdin and reads its report.
pub fn run(mut cmd: Command, cfg: &str, id: &str) -> Result<Report, Box<dyn Error>> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{id} driver: {e} (make setup installs the SDKs)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(cfg.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("{id} driver failed: {}", out.status).into());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{id} driver printed no result: {e}"))?;
    let sent = v["sent"]
        .as_u64()
        .ok_or_else(|| format!("{id} driver: no `sent` in {v}"))?;
    Ok(Report {
        sent,
        errors: v["errors"].as_u64().unwrap_or(0),
        first_error: v["first_error"].as_str().map(str::to_owned),
        cpu_s: v["cpu_s"].as_f64(),
    })
}
