//! A real headless Chromium for the admin console tests: Debian's
//! `chromium` and `chromium-driver`, driven with Selenium by
//! `tests/browser/driver.py` (in the venv `make setup` makes), one JSON
//! command per line over its stdin and stdout.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::repo_root;

/// How long the browser may take to start: Chromium's first start on a
/// busy two-core machine takes several seconds.
const BROWSER_STARTUP: Duration = Duration::from_secs(90);
/// How long the page may take to show an expected text: several of the
/// console's one-second refreshes.
const WAIT_TEXT: Duration = Duration::from_secs(15);
/// Bound on any one command, waits included, so that a hung browser fails
/// the test instead of stalling it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A browser window.
pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    /// Starts Chromium with a new empty profile.
    pub async fn start() -> Self {
        let python = repo_root().join("tests/browser/.venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make setup` (Selenium venv, chromium, chromium-driver)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(repo_root().join("tests/browser/driver.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // No kill on drop: closing stdin makes the driver quit Chromium
            // and chromedriver, which a kill would leave running.
            .spawn()
            .expect("start tests/browser/driver.py");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut b = Self { child, stdin, lines };
        let ready = b.answer(BROWSER_STARTUP).await.expect("the browser did not start");
        assert_eq!(ready, "ready");
        b
    }

    async fn answer(&mut self, timeout: Duration) -> Result<Value, String> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .map_err(|_| format!("no answer from the browser within {timeout:?}"))?
            .map_err(|e| format!("reading the browser's answer: {e}"))?
            .ok_or("the browser driver exited (see its output above)")?;
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("bad answer {line:?}: {e}"))?;
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or("unknown error").to_owned())
        }
    }

    /// Runs one command; a failure fails the test with the browser's reason.
    async fn call(&mut self, command: Value) -> Value {
        let stdin = self.stdin.as_mut().expect("browser running");
        let mut line = command.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the browser driver");
        stdin.flush().await.expect("flush");
        match self.answer(COMMAND_TIMEOUT).await {
            Ok(v) => v,
            Err(e) => panic!("browser: {command}: {e}"),
        }
    }

    /// Loads `url`.
    pub async fn open(&mut self, url: &str) {
        self.call(json!({"cmd": "open", "url": url})).await;
    }

    /// The text of the first element matching `css`, once it contains
    /// `contains` (the test fails if it does not within 15 s).
    pub async fn wait_text(&mut self, css: &str, contains: &str) -> String {
        let timeout_ms = u64::try_from(WAIT_TEXT.as_millis()).unwrap_or(u64::MAX);
        let v = self
            .call(json!({"cmd": "wait_text", "css": css, "contains": contains, "timeout_ms": timeout_ms}))
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The texts of every element matching `css`, now.
    pub async fn texts(&mut self, css: &str) -> Vec<String> {
        let v = self.call(json!({"cmd": "texts", "css": css})).await;
        v.as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Whether the first element matching `css` is displayed.
    pub async fn visible(&mut self, css: &str) -> bool {
        self.call(json!({"cmd": "visible", "css": css})).await == true
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn fill(&mut self, css: &str, text: &str) {
        self.call(json!({"cmd": "fill", "css": css, "text": text})).await;
    }

    /// Chooses the option with `value` in the `<select>` `css`.
    pub async fn select(&mut self, css: &str, value: &str) {
        self.call(json!({"cmd": "select", "css": css, "value": value})).await;
    }

    /// Clicks the element `css`.
    pub async fn click(&mut self, css: &str) {
        self.call(json!({"cmd": "click", "css": css})).await;
    }

    /// Writes a PNG of the whole page to `path`.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        self.call(json!({"cmd": "screenshot", "path": path})).await;
    }

    /// Closes the browser and waits for the driver to exit.
    pub async fn quit(mut self) {
        self.stdin.take();
        let status = tokio::time::timeout(COMMAND_TIMEOUT, self.child.wait())
            .await
            .expect("the browser driver did not exit")
            .expect("wait for the browser driver");
        assert!(status.success(), "the browser driver failed: {status}");
    }
}
