//! `make bench-profile`: samples the gateway with `perf` under BatchEmit and
//! under unary Emit load, and writes a flamegraph SVG and a text summary of
//! where the time goes for each.
//!
//! Needs `perf` (Debian's linux-perf) and inferno's `inferno-collapse-perf`
//! and `inferno-flamegraph` (installed into `.tools/bin` by
//! `make setup-bench-profile`). Uses the `cpu-clock` software event, which
//! works in VMs without hardware counters, and DWARF unwinding, since
//! release builds have no frame pointers.

use std::{
    collections::{HashMap, HashSet},
    error::Error,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{
    Bench,
    grpc::{self, Client},
    procs,
    report::format_rate,
    workload::{self, ArgKind},
};

fn tool(name: &str) -> PathBuf {
    let local = crate::repo().join(".tools/bin").join(name);
    if local.exists() { local } else { PathBuf::from(name) }
}

/// Runs the profile.
pub fn run(
    bench: &mut Bench,
    rt: &tokio::runtime::Runtime,
    gateway_bin: &Path,
    gateway_args: &[String],
    out_dir: &Path,
    out_root: &Path,
) -> Result<(), Box<dyn Error>> {
    let (gw, gw_addr) = procs::start_gateway(gateway_bin, &bench.redis_url, &bench.key, gateway_args)?;
    let pid = gw.pid();
    let client = rt.block_on(Client::connect(&gw_addr))?;
    let bodies = std::sync::Arc::new(workload::emit_bodies(ArgKind::Json)?);
    crate::ready(rt, &client, &bodies)?;
    let batch = workload::batch_body(ArgKind::Json)?;
    let mut summary = String::new();
    for name in ["batch", "unary"] {
        let load = |deadline: Instant| {
            let client = client.clone();
            let batch = batch.clone();
            let bodies = std::sync::Arc::clone(&bodies);
            async move {
                if name == "batch" {
                    grpc::batch_load(&client, batch, 2, deadline).await
                } else {
                    grpc::unary_load(&client, bodies, 64, deadline).await
                }
            }
        };
        rt.block_on(load(Instant::now() + bench.timing.warmup));
        let data = out_dir.join(format!("perf-{name}.data"));
        let mut perf = Command::new(tool("perf"))
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "997",
                "--call-graph",
                "dwarf,32768",
                "-q",
                "-o",
            ])
            .arg(&data)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e} (make setup-bench-profile installs linux-perf)"))?;
        thread::sleep(Duration::from_millis(300));
        let run = bench.timing.run;
        let m = bench.measure(Some(pid), || {
            let o = rt.block_on(load(Instant::now() + run));
            Ok((Some(o.published), o, None))
        })?;
        // perf writes its data when interrupted.
        Command::new("kill").args(["-INT", &perf.id().to_string()]).status()?;
        perf.wait()?;
        let folded = out_dir.join(format!("{name}.folded"));
        let svg = out_dir.join(format!("flamegraph-{name}.svg"));
        let script = Command::new(tool("perf"))
            .args(["script", "-i"])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let collapsed = Command::new(tool("inferno-collapse-perf"))
            .arg("--all")
            .stdin(script.stdout.ok_or("perf script: no stdout")?)
            .output()
            .map_err(|e| format!("inferno-collapse-perf: {e} (make setup-bench-profile installs it)"))?;
        fs::write(&folded, &collapsed.stdout)?;
        let title = format!(
            "emitgate under {} load ({} events/s while profiled)",
            if name == "batch" {
                "BatchEmit x1000, 2 concurrent"
            } else {
                "unary Emit, 64 in flight"
            },
            format_rate(m.seen.rate())
        );
        let flame = Command::new(tool("inferno-flamegraph"))
            .args(["--title", &title, "--width", "1600"])
            .arg(&folded)
            .output()?;
        if !flame.status.success() {
            return Err(format!("inferno-flamegraph failed: {}", String::from_utf8_lossy(&flame.stderr)).into());
        }
        fs::write(&svg, &flame.stdout)?;
        fs::copy(&svg, out_root.join(format!("flamegraph-{name}.svg")))?;
        let _ = fs::remove_file(&data);
        let gw_cpu = m.gateway_cpu.map_or(0.0, |c| c.1);
        let per_event: Vec<String> = m
            .commands
            .iter()
            .map(|(k, v)| format!("{k} {:.3}", *v as f64 / m.seen.count.max(1) as f64))
            .collect();
        let _ = writeln!(
            summary,
            "== {title}\n{} events delivered, {} errors; gateway CPU {:.0}% of a core, redis {:.0}% \
             (perf sampling included); Redis commands per event: {}\nflamegraph: {}\n",
            m.seen.count,
            m.outcome.errors,
            gw_cpu * 100.0,
            m.redis_cpu * 100.0,
            per_event.join(", "),
            svg.display()
        );
        summary.push_str(&summarize(&String::from_utf8_lossy(&collapsed.stdout)));
        summary.push('\n');
    }
    drop(gw);
    bench.sub.close();
    println!("{summary}");
    fs::write(out_dir.join("profile.txt"), &summary)?;
    fs::copy(out_dir.join("profile.txt"), out_root.join("profile.txt"))?;
    eprintln!("bench: wrote {}", out_dir.display());
    Ok(())
}

/// Shares of CPU time whose stack holds a frame containing one of these
/// (matched against names with nested generic arguments elided).
const BUCKETS: &[(&str, &[&str])] = &[
    (
        "emitgate::service (whole handler: validate, encode, send)",
        &["emitgate::service::"],
    ),
    (
        "  emitgate::validate (field checks, argument transcode)",
        &["emitgate::validate::"],
    ),
    (
        "  emitgate::codec (JSON→MessagePack, packet encode)",
        &["emitgate::codec::"],
    ),
    (
        "  emitgate::target (Redis send, incl. pool checkout)",
        &["emitgate::target::"],
    ),
    ("deadpool Pool::get (incl. recycle)", &["deadpool::managed::pool::Pool"]),
    ("  deadpool_redis recycle (UNWATCH + PING per checkout)", &["::recycle"]),
    (
        "protobuf decode of the request (prost)",
        &["decode<emitgate::pb::", "merge<emitgate::pb::"],
    ),
    (
        "redis multiplexed connection driver task",
        &["redis::aio::multiplexed_connection::PipelineSink"],
    ),
    ("kernel (syscalls, TCP, scheduling)", &["[kernel]"]),
    (
        "  socket writes (sendto/writev/write)",
        &["__send", "sendto", "writev", "__libc_write", "__x64_sys_write"],
    ),
    (
        "  socket reads (recvfrom/read)",
        &["recvfrom", "__libc_recv", "__libc_read", "__x64_sys_read"],
    ),
    ("  epoll", &["epoll_wait"]),
    ("  futex (thread wake-ups)", &["futex"]),
];

/// Components for self time: the first frame from the leaf up whose owner
/// (the function's path, or the type of a `<Type as Trait>` impl) starts
/// with a prefix decides.
const COMPONENTS: &[(&str, &[&str])] = &[
    (
        "emitgate codec (JSON→MessagePack, packet encode; serde_json, rmp)",
        &["emitgate::codec", "serde_json::", "rmp::"],
    ),
    ("emitgate validation", &["emitgate::validate"]),
    // Before protobuf: the generated server glue lives in emitgate::pb too.
    (
        "tonic (incl. the generated server glue)",
        &["tonic::", "tonic_prost::", "emitgate::pb::emitter_service_server"],
    ),
    (
        "protobuf (prost, generated emitgate::pb)",
        &["prost::", "emitgate::pb::", "prost_types::"],
    ),
    ("emitgate service and target", &["emitgate::"]),
    ("redis client (redis, combine)", &["redis::", "combine::"]),
    ("deadpool", &["deadpool"]),
    ("HTTP/2 (h2)", &["h2::"]),
    ("hyper", &["hyper::", "hyper_util::"]),
    ("tokio", &["tokio::", "tokio_util::"]),
    ("tracing", &["tracing"]),
];

/// The owner of a frame: `a::b::f` for `a::b::f<T>`, `X` for `<X as T>::f`.
fn owner(name: &str) -> String {
    let name = name.trim_start_matches('<');
    let name = name.trim_start_matches("&mut ").trim_start_matches('&');
    let mut out = String::new();
    let mut depth = 0;
    for (i, c) in name.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            _ if depth == 0 => {
                if name[i..].starts_with(" as ") {
                    break;
                }
                out.push(c);
            }
            _ => {}
        }
    }
    out
}

fn component(frames: &[&String]) -> &'static str {
    for f in frames.iter().rev() {
        if f.ends_with("[kernel]") {
            return "kernel";
        }
        let o = owner(f);
        for (name, prefixes) in COMPONENTS {
            if prefixes.iter().any(|p| o.starts_with(p)) {
                return name;
            }
        }
    }
    "other (std, libc, unresolved)"
}

/// Splits a folded stack on `;`, except inside `<…>`, `[…]` and `(…)`
/// (Rust names hold `[u8; 16]`).
fn frames(stack: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut prev) = (0i32, 0usize, ' ');
    for (i, c) in stack.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' if prev != '-' => depth -= 1,
            ']' | ')' => depth -= 1,
            ';' if depth <= 0 => {
                out.push(&stack[start..i]);
                start = i + 1;
                depth = 0;
            }
            _ => {}
        }
        prev = c;
    }
    out.push(&stack[start..]);
    out
}

/// A text summary of folded stacks: the buckets above, the hottest leaf
/// functions and the hottest inclusive frames. Weights are `cpu-clock`
/// nanoseconds.
pub fn summarize(folded: &str) -> String {
    let mut total = 0u64;
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut leaf: HashMap<String, u64> = HashMap::new();
    let mut incl: HashMap<String, u64> = HashMap::new();
    let mut buckets = vec![0u64; BUCKETS.len()];
    let mut by_component: HashMap<&'static str, u64> = HashMap::new();
    let (mut alloc_self, mut memcpy_self) = (0u64, 0u64);
    for line in folded.lines() {
        let Some((stack, n)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        total += n;
        // The first frame is the thread name.
        let fs: Vec<&str> = frames(stack).into_iter().skip(1).collect();
        for f in &fs {
            names.entry(f).or_insert_with(|| short(f));
        }
        let short_names: Vec<&String> = fs.iter().filter_map(|f| names.get(f)).collect();
        if let Some(last) = short_names.last() {
            *leaf.entry((*last).clone()).or_default() += n;
            if [
                "malloc",
                "_int_free",
                "cfree",
                "realloc",
                "__libc_free",
                "unlink_chunk",
                "tcache_",
            ]
            .iter()
            .any(|p| last.contains(p))
            {
                alloc_self += n;
            } else if last.contains("memcpy") || last.contains("memmove") {
                memcpy_self += n;
            }
        }
        *by_component.entry(component(&short_names)).or_default() += n;
        let unique: HashSet<&String> = short_names.iter().copied().collect();
        for f in unique {
            *incl.entry(f.clone()).or_default() += n;
        }
        for (b, (_, pats)) in buckets.iter_mut().zip(BUCKETS) {
            if short_names.iter().any(|f| pats.iter().any(|p| f.contains(p))) {
                *b += n;
            }
        }
    }
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let mut out = format!(
        "{:.2} s of gateway CPU sampled\n\nshare of CPU time whose stack contains:\n",
        total as f64 / 1e9
    );
    for ((name, _), n) in BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(out, "  {:6.2}%  {name}", pct(*n));
    }
    let top = |m: &HashMap<String, u64>, k: usize| {
        let mut v: Vec<(&String, &u64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter().take(k).map(|(f, n)| (f.clone(), *n)).collect::<Vec<_>>()
    };
    out.push_str("\nself time by component (a leaf in std/libc counts for its nearest caller in a known crate):\n");
    let mut comps: Vec<(&&str, &u64)> = by_component.iter().collect();
    comps.sort_by(|a, b| b.1.cmp(a.1));
    for (name, n) in comps {
        let _ = writeln!(out, "  {:6.2}%  {name}", pct(*n));
    }
    let _ = writeln!(
        out,
        "  (leaf functions: allocator {:.2}%, memcpy/memmove {:.2}%, spread over the components above)",
        pct(alloc_self),
        pct(memcpy_self)
    );
    out.push_str("\nhottest functions by self time:\n");
    for (f, n) in top(&leaf, 25) {
        let _ = writeln!(out, "  {:6.2}%  {f}", pct(n));
    }
    out.push_str("\nhottest frames by inclusive time (emitgate, deadpool, redis, tonic, prost, h2):\n");
    let interesting: HashMap<String, u64> = incl
        .into_iter()
        .filter(|(f, _)| {
            ["emitgate", "deadpool", "redis::", "tonic::", "prost::", "h2::"]
                .iter()
                .any(|p| f.contains(p))
        })
        .collect();
    for (f, n) in top(&interesting, 30) {
        let _ = writeln!(out, "  {:6.2}%  {f}", pct(n));
    }
    out
}

/// A frame with generic arguments below the first level elided, inline and
/// kernel markers made readable, trimmed to 160 characters.
fn short(frame: &str) -> String {
    let (frame, mark) = if let Some(f) = frame.strip_suffix("_[k]") {
        (f, " [kernel]")
    } else if let Some(f) = frame.strip_suffix("_[i]") {
        (f, " [inlined]")
    } else {
        (frame, "")
    };
    let mut s = String::with_capacity(frame.len());
    let (mut depth, mut prev) = (0i32, ' ');
    for c in frame.chars() {
        match c {
            '<' => {
                depth += 1;
                if depth <= 2 {
                    s.push(c);
                }
                if depth == 2 {
                    s.push('…');
                }
            }
            '>' if prev != '-' && depth > 0 => {
                if depth <= 2 {
                    s.push(c);
                }
                depth -= 1;
            }
            _ if depth <= 1 => s.push(c),
            _ => {}
        }
        prev = c;
    }
    s.push_str(mark);
    s.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_leaf_inclusive_and_buckets() {
        let folded = "emitgate;main;emitgate::service::Gateway::batch;emitgate::codec::args::json_to_msgpack 3000000000\n\
                      emitgate;main;deadpool::managed::pool::Pool<T>::get;<deadpool_redis::Manager as deadpool::managed::manager::Manager>::recycle::{{closure}};f<[u8; 4]> 1000000000\n";
        let s = summarize(folded);
        assert!(s.contains("4.00 s of gateway CPU"), "{s}");
        assert!(s.contains(" 75.00%    emitgate::codec"), "{s}");
        assert!(s.contains(" 25.00%  deadpool Pool::get"), "{s}");
        assert!(s.contains(" 25.00%    deadpool_redis recycle"), "{s}");
        assert!(s.contains(" 75.00%  emitgate codec"), "{s}");
        assert!(s.contains(" 25.00%  deadpool\n"), "{s}");
        assert!(s.contains(" 75.00%  emitgate::codec::args::json_to_msgpack"), "{s}");
        assert!(s.contains(" 25.00%  f<[u8; 4]>"), "{s}");
    }

    #[test]
    fn short_names_drop_generics() {
        assert_eq!(short("h2::proto::Conn<T,B>::poll"), "h2::proto::Conn<T,B>::poll");
        assert_eq!(short("<a::B<c::D<E>> as f::G>::h"), "<a::B<…> as f::G>::h");
        assert_eq!(short("tcp_sendmsg_[k]"), "tcp_sendmsg [kernel]");
        assert_eq!(frames("a;f<[u8; 2]>;b"), ["a", "f<[u8; 2]>", "b"]);
        assert_eq!(
            owner("<&mut serde_json::de::Deserializer<R> as serde::Deserializer>::any"),
            "serde_json::de::Deserializer"
        );
        assert_eq!(
            owner("emitgate::validate::Checker::rooms"),
            "emitgate::validate::Checker::rooms"
        );
    }
}
