//! The processes the bench starts (redis-server, the gateway, the reference
//! emitters) and what it reads about them from `/proc`.

use std::{
    error::Error,
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct Guard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Guard {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), Box<dyn Error>> {
        match self.child.try_wait()? {
            Some(status) => Err(format!("{} exited: {status}", self.name).into()),
            None => Ok(()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16, Box<dyn Error>> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() > deadline {
            return Err(format!("{what} not ready within {timeout:?}").into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn redis_pings(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Starts `redis-server` on a free loopback port with persistence off and
/// room for a subscriber that falls behind; returns it and its address.
pub fn start_redis() -> Result<(Guard, String), Box<dyn Error>> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--client-output-buffer-limit", "pubsub 1gb 256mb 60"])
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e} (make setup installs it)"))?;
        let mut g = Guard {
            child,
            name: "redis-server".into(),
        };
        let addr = format!("127.0.0.1:{port}");
        if wait_until("redis-server", Duration::from_secs(5), || redis_pings(&addr)).is_ok() {
            return Ok((g, addr));
        }
        last_err = g
            .check_alive()
            .err()
            .map_or_else(|| "no PONG".into(), |e| e.to_string());
    }
    Err(format!("could not start redis-server: {last_err}").into())
}

/// Starts the gateway binary on a free port against `redis_url`; returns it
/// and its address once it accepts connections.
pub fn start_gateway(
    bin: &Path,
    redis_url: &str,
    key: &str,
    extra: &[String],
) -> Result<(Guard, String), Box<dyn Error>> {
    if !bin.exists() {
        return Err(format!("{} does not exist (make release builds it)", bin.display()).into());
    }
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .args(["--listen", &addr, "--redis-url", redis_url, "--key", key])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut g = Guard {
        child,
        name: "emitgate".into(),
    };
    let a = addr.clone();
    wait_until("emitgate", Duration::from_secs(10), || TcpStream::connect(&a).is_ok())?;
    g.check_alive()?;
    Ok((g, addr))
}

/// Calls per command so far (`INFO commandstats`), without INFO itself.
pub fn redis_command_calls(addr: &str) -> Result<std::collections::BTreeMap<String, u64>, Box<dyn Error>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"INFO commandstats\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // A bulk string: `$<len>\r\n<text>\r\n`.
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err("redis closed the INFO connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n")
            && let Ok(len) = head.trim_start_matches('$').parse::<usize>()
            && body.len() >= len
        {
            let mut out = std::collections::BTreeMap::new();
            for line in body.lines() {
                let Some(rest) = line.strip_prefix("cmdstat_") else {
                    continue;
                };
                let Some((name, stats)) = rest.split_once(':') else {
                    continue;
                };
                let calls = stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if name != "info" {
                    out.insert(name.to_owned(), calls);
                }
            }
            return Ok(out);
        }
    }
}

/// Reads one `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM), in bytes.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) so far, in clock ticks, from a `stat` file
/// (`/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`).
pub fn cpu_ticks(stat_path: &str) -> Option<u64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The `stat` file of a process.
pub fn stat_path(pid: u32) -> String {
    format!("/proc/{pid}/stat")
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU use of a set of processes or threads over a measurement.
#[derive(Debug)]
pub struct CpuMeter {
    paths: Vec<String>,
    start: Vec<u64>,
    at: Instant,
    tck: f64,
}

impl CpuMeter {
    /// Starts measuring the `stat` files in `paths`.
    pub fn start(paths: &[String], tck: f64) -> Self {
        Self {
            paths: paths.to_vec(),
            start: paths.iter().map(|p| cpu_ticks(p).unwrap_or(0)).collect(),
            at: Instant::now(),
            tck,
        }
    }

    /// Per path: (CPU seconds used, share of one core over the wall time).
    pub fn stop(&self) -> Vec<(f64, f64)> {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        self.paths
            .iter()
            .zip(&self.start)
            .map(|(p, &s)| {
                let secs = cpu_ticks(p).unwrap_or(s).saturating_sub(s) as f64 / self.tck;
                (secs, secs / wall)
            })
            .collect()
    }
}

/// The output of a command, trimmed (empty on failure).
pub fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
