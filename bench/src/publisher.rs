//! Scenario 1, the Redis limit: pipelined PUBLISH of the exact packet bytes
//! the gateway would publish, straight over TCP with nothing in between.

use std::{
    error::Error,
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, mpsc},
    thread,
    time::Instant,
};

/// Counts the replies of pipelined PUBLISH commands: one line each; every
/// reply must be an integer (`:n`), any other line is an error.
#[derive(Debug, Default)]
struct ReplyCounter {
    at_line_start: bool,
    lines: u64,
    errors: u64,
}

impl ReplyCounter {
    fn new() -> Self {
        Self {
            at_line_start: true,
            ..Self::default()
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.at_line_start && b != b':' {
                self.errors += 1;
            }
            self.at_line_start = b == b'\n';
            if self.at_line_start {
                self.lines += 1;
            }
        }
    }
}

/// Publishes `pipeline` (holding `per_pipeline` PUBLISH commands) over
/// `conns` connections, keeping two pipelines in flight per connection,
/// until `deadline`. Returns how many commands Redis answered.
pub fn run(
    addr: &str,
    pipeline: Arc<Vec<u8>>,
    per_pipeline: u64,
    conns: usize,
    deadline: Instant,
) -> Result<u64, Box<dyn Error>> {
    let mut handles = Vec::new();
    for _ in 0..conns {
        let mut writer = TcpStream::connect(addr)?;
        writer.set_nodelay(true)?;
        let mut reader = writer.try_clone()?;
        let pipeline = Arc::clone(&pipeline);
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let w = thread::spawn(move || -> std::io::Result<()> {
            while Instant::now() < deadline {
                if tx.send(()).is_err() {
                    break;
                }
                writer.write_all(&pipeline)?;
            }
            Ok(())
        });
        let r = thread::spawn(move || -> Result<u64, String> {
            let mut counter = ReplyCounter::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut expected = 0u64;
            while rx.recv().is_ok() {
                expected += per_pipeline;
                while counter.lines < expected {
                    let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("Redis closed the connection".into());
                    }
                    counter.feed(&buf[..n]);
                }
            }
            if counter.errors > 0 {
                return Err(format!("{} PUBLISH replies were errors", counter.errors));
            }
            Ok(counter.lines)
        });
        handles.push((w, r));
    }
    let mut total = 0;
    for (w, r) in handles {
        w.join().map_err(|_| "publisher thread panicked")??;
        total += r.join().map_err(|_| "reply thread panicked")??;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_integer_replies_across_reads_and_flags_errors() {
        let mut c = ReplyCounter::new();
        c.feed(b":1\r\n:1");
        c.feed(b"\r\n:0\r\n");
        assert_eq!((c.lines, c.errors), (3, 0));
        c.feed(b"-ERR x\r\n");
        assert_eq!((c.lines, c.errors), (4, 1));
    }
}
