//! The pattern subscriber that drains `{key}#*` during every measurement
//! (as a Socket.IO node always does in production) and counts what Redis
//! actually delivered. Throughput is measured here, not at the senders.
//!
//! It also subscribes to python-socketio's own channel and to Centrifugo's
//! channels, so the Python reference manager's and Centrifugo's messages
//! are counted the same way.

use std::{
    io::{self, Read, Write},
    net::TcpStream,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// Counters shared with the reading thread.
#[derive(Debug)]
struct Shared {
    base: Instant,
    count: AtomicU64,
    bytes: AtomicU64,
    /// Nanoseconds after `base` of the first and last message since the last
    /// reset, plus one (0 = none yet).
    first: AtomicU64,
    last: AtomicU64,
    failed: AtomicBool,
    closing: AtomicBool,
}

/// A running subscriber.
#[derive(Debug)]
pub struct Subscriber {
    shared: Arc<Shared>,
    /// The reading thread's `/proc` stat file, for its CPU use.
    pub stat_path: String,
}

/// What the subscriber saw since the last reset.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Messages delivered.
    pub count: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Time from the first to the last message.
    pub span: Duration,
}

impl Seen {
    /// Messages per second between the first and the last message.
    pub fn rate(&self) -> f64 {
        let s = self.span.as_secs_f64();
        if self.count < 2 || s <= 0.0 {
            0.0
        } else {
            (self.count - 1) as f64 / s
        }
    }
}

fn resp_command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

/// Parses one RESP line (`\r\n`-terminated) at `pos`: its bytes and the
/// position after it.
fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], pos + end + 2))
}

fn number(bytes: &[u8]) -> Option<usize> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// One complete push at `pos`: (is a delivered message, payload length,
/// position after it); `None` when the buffer does not hold all of it yet.
/// Pushes are arrays of bulk strings and integers.
fn push(buf: &[u8], pos: usize) -> io::Result<Option<(bool, usize, usize)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("subscriber: {what}"));
    let Some((head, mut pos)) = line(buf, pos) else {
        return Ok(None);
    };
    let n = match head.split_first() {
        Some((b'*', n)) => number(n).ok_or_else(|| bad("bad array length"))?,
        Some((b'-', e)) => return Err(bad(&String::from_utf8_lossy(e))),
        _ => return Err(bad("expected an array")),
    };
    let mut kind: &[u8] = b"";
    let mut last_len = 0;
    for k in 0..n {
        let Some((h, after)) = line(buf, pos) else {
            return Ok(None);
        };
        match h.split_first() {
            Some((b'$', len)) => {
                let len = number(len).ok_or_else(|| bad("bad bulk length"))?;
                if buf.len() < after + len + 2 {
                    return Ok(None);
                }
                if k == 0 {
                    kind = &buf[after..after + len];
                }
                last_len = len;
                pos = after + len + 2;
            }
            Some((b':', _)) => pos = after,
            _ => return Err(bad("unexpected element")),
        }
    }
    let delivered = kind == b"pmessage" || kind == b"message";
    Ok(Some((delivered, last_len, pos)))
}

impl Subscriber {
    /// Connects to Redis at `addr`, subscribes to `{key}#*` and to the
    /// channels in `extra` (a name ending in `*` is a pattern), and waits
    /// until the subscriptions are confirmed.
    pub fn start(addr: &str, key: &str, extra: &[&str]) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let pattern = format!("{key}#*");
        stream.write_all(&resp_command(&["PSUBSCRIBE", &pattern]))?;
        for ch in extra {
            let cmd = if ch.ends_with('*') { "PSUBSCRIBE" } else { "SUBSCRIBE" };
            stream.write_all(&resp_command(&[cmd, ch]))?;
        }
        // Wait for every confirmation.
        let mut buf = Vec::new();
        let mut confirmed = 0;
        let mut pos = 0;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut chunk = [0u8; 4096];
        while confirmed < 1 + extra.len() {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "subscriber: Redis closed"));
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some((_, _, next)) = push(&buf, pos)? {
                confirmed += 1;
                pos = next;
            }
        }
        stream.set_read_timeout(None)?;
        let shared = Arc::new(Shared {
            base: Instant::now(),
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        buf.drain(..pos);
        let (tx, rx) = std::sync::mpsc::channel();
        thread::Builder::new().name("subscriber".into()).spawn(move || {
            let me = std::fs::read_link("/proc/thread-self")
                .map(|p| format!("/proc/{}/stat", p.display()))
                .unwrap_or_default();
            let _ = tx.send(me);
            if let Err(e) = drain(&mut stream, buf, &s)
                && !s.closing.load(Ordering::SeqCst)
            {
                eprintln!("bench: subscriber stopped: {e}");
                s.failed.store(true, Ordering::SeqCst);
            }
        })?;
        let stat_path = rx
            .recv()
            .map_err(|_| io::Error::other("subscriber thread did not start"))?;
        Ok(Self { shared, stat_path })
    }

    /// Starts a new count.
    pub fn reset(&self) {
        let s = &self.shared;
        s.first.store(0, Ordering::SeqCst);
        s.last.store(0, Ordering::SeqCst);
        s.bytes.store(0, Ordering::SeqCst);
        s.count.store(0, Ordering::SeqCst);
    }

    /// What was delivered since the last reset.
    pub fn seen(&self) -> Seen {
        let s = &self.shared;
        let first = s.first.load(Ordering::SeqCst);
        let last = s.last.load(Ordering::SeqCst);
        Seen {
            count: s.count.load(Ordering::SeqCst),
            bytes: s.bytes.load(Ordering::SeqCst),
            span: Duration::from_nanos(last.saturating_sub(first)),
        }
    }

    /// Marks the end of the run: Redis going away is expected now.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
    }

    /// True once the connection failed (e.g. Redis dropped a slow
    /// subscriber): every later count is wrong.
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Waits until `expected` messages arrived (or, with no expectation,
    /// until nothing new arrives for a while), at most `timeout`.
    pub fn settle(&self, expected: Option<u64>, timeout: Duration) -> Seen {
        let deadline = Instant::now() + timeout;
        let mut last_count = u64::MAX;
        let mut quiet_since = Instant::now();
        loop {
            let seen = self.seen();
            let now = Instant::now();
            if expected.is_some_and(|e| seen.count >= e) || now >= deadline || self.failed() {
                return seen;
            }
            if seen.count != last_count {
                last_count = seen.count;
                quiet_since = now;
            } else if now - quiet_since > Duration::from_millis(if expected.is_some() { 2000 } else { 500 }) {
                return seen;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn drain(stream: &mut TcpStream, mut buf: Vec<u8>, s: &Shared) -> io::Result<()> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut pos = 0;
    loop {
        // Count what is complete, then read more.
        let mut n_msgs = 0u64;
        let mut n_bytes = 0u64;
        while let Some((delivered, len, next)) = push(&buf, pos)? {
            if delivered {
                n_msgs += 1;
                n_bytes += len as u64;
            }
            pos = next;
        }
        if n_msgs > 0 {
            let now = u64::try_from(s.base.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1;
            let _ = s.first.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
            s.last.store(now, Ordering::SeqCst);
            s.bytes.fetch_add(n_bytes, Ordering::SeqCst);
            s.count.fetch_add(n_msgs, Ordering::SeqCst);
        }
        if pos > 0 {
            buf.drain(..pos);
            pos = 0;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "Redis closed the connection",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pushes_and_waits_for_partial_ones() -> io::Result<()> {
        let msg = b"*4\r\n$8\r\npmessage\r\n$3\r\nk#*\r\n$4\r\nk#/#\r\n$5\r\nhello\r\n";
        assert_eq!(push(msg, 0)?, Some((true, 5, msg.len())));
        for cut in 0..msg.len() {
            assert_eq!(push(&msg[..cut], 0)?, None, "cut at {cut}");
        }
        let confirm = b"*3\r\n$10\r\npsubscribe\r\n$3\r\nk#*\r\n:1\r\n";
        assert_eq!(push(confirm, 0)?, Some((false, 3, confirm.len())));
        let plain = b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n";
        assert_eq!(push(plain, 0)?, Some((true, 2, plain.len())));
        Ok(())
    }

    #[test]
    fn payload_bytes_may_contain_crlf() -> io::Result<()> {
        let msg = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\n\r\n\r\n\r\n";
        assert_eq!(push(msg, 0)?, Some((true, 4, msg.len())));
        Ok(())
    }
}
