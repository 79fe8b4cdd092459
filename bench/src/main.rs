//! `make bench`: emitgate measured against the Redis limit and the reference
//! emitters, in one run on one machine.
//!
//! One `redis-server` (started here, on a free loopback port) with one
//! pattern subscriber draining `{key}#*` during every measurement; every
//! scenario publishes the same event (one ~100-byte JSON object argument,
//! 1–3 rooms) and is measured by what the subscriber received. The results
//! go to stdout as a table, and to `bench/results/<timestamp>/` as JSON and
//! a PNG chart (copied to `bench/results/latest.*`).

mod centrifugo;
mod chart;
mod floor;
mod grpc;
mod peers;
mod procs;
mod profile;
mod publisher;
mod report;
mod sdk;
mod subscriber;
mod workload;

use std::{
    error::Error,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use clap::Parser;
use serde_json::json;

use crate::{
    grpc::{Client, Latency, Outcome},
    procs::{CpuMeter, Guard},
    report::{Machine, Report, Rss, Scenario},
    subscriber::Subscriber,
    workload::ArgKind,
};

/// The repository root (the bench crate's parent directory).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "emitgate throughput, latency and memory against the Redis limit and the reference emitters")]
struct Args {
    /// Smoke mode: tiny durations, no timing conclusions (used by `make test`).
    #[arg(long)]
    quick: bool,
    /// Seconds each throughput scenario runs (default 4, quick 0.3).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of the fixed-rate latency run (default 8, quick 0.3).
    #[arg(long)]
    latency_seconds: Option<f64>,
    /// Offered load of the latency run, Emit calls per second.
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// The gateway binary (default: target/release/emitgate).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Extra gateway flag (repeatable), e.g. --gateway-arg=--redis-pool-size=16.
    #[arg(long = "gateway-arg", allow_hyphen_values = true)]
    gateway_args: Vec<String>,
    /// The directory holding the Node reference emitter (bench/node).
    #[arg(long)]
    node_dir: Option<PathBuf>,
    /// The Python interpreter of the venv with python-socketio (bench/.venv/bin/python).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where results go (bench/results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Profile the gateway with perf under BatchEmit and unary load instead
    /// of running the benchmark; writes flamegraph SVGs.
    #[arg(long)]
    profile: bool,
    /// Run only these scenario groups (comma-separated: limit, reference,
    /// batch, unary, floor, args, peer, sdk); for experiments, the targets
    /// need them all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Fail (exit 1) when a scenario had errors, lost events or delivered
    /// nothing; timings are never checked (`make bench-smoke`).
    #[arg(long)]
    strict: bool,
    /// Print the summary of a folded-stacks file written by --profile and exit.
    #[arg(long, value_name = "FOLDED")]
    summarize: Option<PathBuf>,
    /// The Centrifugo binary of the peer rows (default: .tools/bin/centrifugo,
    /// from `make setup-bench-peers`); without it, smoke mode skips them.
    #[arg(long)]
    centrifugo: Option<PathBuf>,
    /// The channel prefix (the adapter's key).
    #[arg(long, default_value = "socket.io")]
    key: String,
}

/// Durations of one run.
#[derive(Debug, Clone, Copy)]
struct Timing {
    run: Duration,
    warmup: Duration,
    latency: Duration,
}

/// What one measurement found.
struct Measured {
    seen: subscriber::Seen,
    outcome: Outcome,
    /// CPU of redis-server, in cores.
    redis_cpu: f64,
    /// CPU of the gateway: (seconds, cores), when it was measured.
    gateway_cpu: Option<(f64, f64)>,
    /// CPU of the sender, in cores: the bench's load client (its process
    /// minus the subscriber thread), or what a reference emitter reports.
    sender_cpu: f64,
    /// CPU of the subscriber thread, in cores.
    subscriber_cpu: f64,
    /// Redis commands executed during the measurement, by name.
    commands: std::collections::BTreeMap<String, u64>,
    /// Wall time of the measurement, seconds.
    wall_s: f64,
}

/// The channel python-socketio publishes on (its default).
const PYTHON_CHANNEL: &str = "socketio";

/// Everything the scenarios share.
struct Bench {
    timing: Timing,
    quick: bool,
    key: String,
    redis_url: String,
    redis_addr: String,
    redis: Guard,
    sub: Subscriber,
    tck: f64,
}

impl Bench {
    /// Runs `load` (which returns what it sent, if it knows), then waits for
    /// the subscriber to receive it; measures CPU of `pids` meanwhile.
    fn measure(
        &mut self,
        gateway: Option<u32>,
        load: impl FnOnce() -> Result<(Option<u64>, Outcome, Option<f64>), Box<dyn Error>>,
    ) -> Result<Measured, Box<dyn Error>> {
        self.redis.check_alive()?;
        // Whatever an earlier run left in flight is not counted.
        self.sub.settle(None, Duration::from_secs(5));
        self.sub.reset();
        let mut paths = vec![
            procs::stat_path(self.redis.pid()),
            procs::stat_path(std::process::id()),
            self.sub.stat_path.clone(),
        ];
        paths.extend(gateway.map(procs::stat_path));
        let before = procs::redis_command_calls(&self.redis_addr)?;
        let cpu = CpuMeter::start(&paths, self.tck);
        let (expected, outcome, sender_cpu_s) = load()?;
        let seen = self.sub.settle(expected, Duration::from_secs(30));
        let usage = cpu.stop();
        let wall = cpu_wall(&usage);
        if self.sub.failed() {
            return Err("the subscriber lost its connection; counts are wrong".into());
        }
        let after = procs::redis_command_calls(&self.redis_addr)?;
        let commands = after
            .into_iter()
            .map(|(k, v)| {
                let d = v.saturating_sub(before.get(&k).copied().unwrap_or(0));
                (k, d)
            })
            .filter(|(_, d)| *d > 0)
            .collect();
        let core = |i: usize| usage.get(i).map_or(0.0, |u| u.1);
        Ok(Measured {
            seen,
            outcome,
            redis_cpu: core(0),
            gateway_cpu: usage.get(3).copied(),
            sender_cpu: sender_cpu_s.map_or_else(|| (core(1) - core(2)).max(0.0), |s| s / wall),
            subscriber_cpu: core(2),
            commands,
            wall_s: wall,
        })
    }
}

/// The wall time of a CPU measurement, from its (seconds, cores) pairs.
fn cpu_wall(usage: &[(f64, f64)]) -> f64 {
    usage.iter().find(|u| u.1 > 0.0).map_or(1.0, |u| u.0 / u.1)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    if let Some(folded) = &args.summarize {
        println!("{}", profile::summarize(&fs::read_to_string(folded)?));
        return Ok(());
    }
    let root = repo();
    let timing = if args.quick {
        Timing {
            run: Duration::from_secs_f64(args.seconds.unwrap_or(0.3)),
            warmup: Duration::from_millis(100),
            latency: Duration::from_secs_f64(args.latency_seconds.unwrap_or(0.3)),
        }
    } else {
        Timing {
            run: Duration::from_secs_f64(args.seconds.unwrap_or(4.0)),
            warmup: Duration::from_millis(700),
            latency: Duration::from_secs_f64(args.latency_seconds.unwrap_or(8.0)),
        }
    };
    let gateway_bin = args
        .gateway
        .clone()
        .unwrap_or_else(|| root.join("target/release/emitgate"));
    let out_root = args.out.clone().unwrap_or_else(|| root.join("bench/results"));
    let stamp = report::timestamp();
    let machine = Machine::detect();
    let out_dir = out_root.join(&stamp);
    fs::create_dir_all(&out_dir)?;

    let (redis, redis_addr) = procs::start_redis()?;
    let redis_url = format!("redis://{redis_addr}");
    let sub = Subscriber::start(&redis_addr, &args.key, &[PYTHON_CHANNEL, centrifugo::REDIS_PATTERN])?;
    let mut bench = Bench {
        timing,
        quick: args.quick,
        key: args.key.clone(),
        redis_url,
        redis_addr: redis_addr.clone(),
        redis,
        sub,
        tck: procs::clock_ticks(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    if args.profile {
        return profile::run(&mut bench, &rt, &gateway_bin, &args.gateway_args, &out_dir, &out_root);
    }

    eprintln!(
        "bench: redis {} , {:.1} s per scenario{}",
        redis_addr,
        timing.run.as_secs_f64(),
        if args.quick {
            " (quick smoke mode: figures mean nothing)"
        } else {
            ""
        }
    );
    let mut scenarios: Vec<Scenario> = Vec::new();
    let want = |group: &str| args.only.is_empty() || args.only.iter().any(|g| g == group);

    // 1. The Redis limit.
    let (pipeline, packet_bytes) = workload::publish_pipeline(&bench.key, workload::BATCH_ITEMS)?;
    let pipeline = Arc::new(pipeline);
    for conns in [1usize, 2].into_iter().filter(|_| want("limit")) {
        eprintln!("bench: 1. Redis limit, {conns} connection(s)");
        let addr = redis_addr.clone();
        let p = Arc::clone(&pipeline);
        let run = timing.run;
        let m = bench.measure(None, || {
            let n = publisher::run(&addr, p, workload::BATCH_ITEMS as u64, conns, Instant::now() + run)?;
            Ok((
                Some(n),
                Outcome {
                    calls: n,
                    published: n,
                    ..Outcome::default()
                },
                None,
            ))
        })?;
        scenarios.push(Scenario::new(
            &format!("limit-{conns}conn"),
            "limit",
            &format!("Redis limit: pipelined PUBLISH, {conns} conn"),
            &m,
        ));
    }

    // 2. Reference emitters.
    let node_dir = args.node_dir.clone().unwrap_or_else(|| root.join("bench/node"));
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| root.join("bench/.venv/bin/python"));
    let rooms = workload::room_cycle();
    let common = json!({
        "redis_url": bench.redis_url,
        "key": bench.key,
        "seconds": timing.run.as_secs_f64(),
        "event": workload::EVENT,
        "payload_json": workload::PAYLOAD_JSON,
        "rooms": rooms,
        "chunk": workload::BATCH_ITEMS,
        "channel": PYTHON_CHANNEL,
    });
    let refs: [(&str, &str, Command); 2] = [
        ("node", "@socket.io/redis-emitter 5 (Node, tight loop)", {
            let mut c = Command::new("node");
            c.arg(node_dir.join("emit.js")).current_dir(&node_dir);
            c
        }),
        ("python", "python-socketio RedisManager(write_only)", {
            let mut c = Command::new(&python);
            c.arg(root.join("bench/python/emit.py"));
            c
        }),
    ];
    for (id, label, cmd) in refs.into_iter().filter(|_| want("reference")) {
        eprintln!("bench: 2. {label}");
        let cfg = common.to_string();
        let m = bench.measure(None, || {
            let (sent, cpu_s) = reference(cmd, &cfg, id)?;
            Ok((
                Some(sent),
                Outcome {
                    calls: sent,
                    published: sent,
                    ..Outcome::default()
                },
                cpu_s,
            ))
        })?;
        scenarios.push(Scenario::new(id, "reference", label, &m));
    }

    // The gateway.
    let (mut gw, gw_addr) = procs::start_gateway(&gateway_bin, &bench.redis_url, &bench.key, &args.gateway_args)?;
    let gw_pid = gw.pid();
    let client = rt.block_on(Client::connect(&gw_addr))?;
    let unary_bodies = Arc::new(workload::emit_bodies(ArgKind::Json)?);
    ready(&rt, &client, &unary_bodies)?;
    thread::sleep(Duration::from_millis(if args.quick { 100 } else { 1000 }));
    let rss_idle_start = procs::status_kb(gw_pid, "VmRSS").unwrap_or(0);
    let sampler = RssSampler::start(gw_pid);

    // 3. BatchEmit.
    let batch_json = workload::batch_body(ArgKind::Json)?;
    for c in [1usize, 2, 4].into_iter().filter(|_| want("batch")) {
        eprintln!("bench: 3. BatchEmit x{} items, {c} concurrent", workload::BATCH_ITEMS);
        let s = gateway_scenario(&mut bench, &rt, gw_pid, &sampler, |deadline| {
            grpc::batch_load(&client, batch_json.clone(), c, deadline)
        })?;
        scenarios.push(s.named(
            &format!("batch-c{c}"),
            "batch",
            &format!("emitgate BatchEmit x1000, {c} concurrent"),
        ));
    }

    // 4. Unary Emit: throughput with 64 in flight, then latency at a fixed rate.
    if want("unary") {
        eprintln!("bench: 4. unary Emit, 64 in flight");
        let s = gateway_scenario(&mut bench, &rt, gw_pid, &sampler, |deadline| {
            grpc::unary_load(&client, Arc::clone(&unary_bodies), 64, deadline)
        })?;
        scenarios.push(s.named("unary-c64", "unary", "emitgate Emit, 64 in flight"));
    }
    if want("floor") {
        eprintln!(
            "bench: 4. no-op floor: Health/Check, {} in flight",
            floor::UNARY_IN_FLIGHT
        );
        scenarios.push(floor::scenario(&mut bench, &rt, gw_pid, &sampler, &client)?);
    }

    let mut latency = Latency::default();
    if want("unary") {
        eprintln!("bench: 4. unary Emit at {} calls/s, open loop", args.rate);
        let handle = rt.handle().clone();
        let bodies = Arc::clone(&unary_bodies);
        let warm_end = Instant::now() + timing.warmup;
        rt.block_on(grpc::unary_load(&client, Arc::clone(&bodies), 8, warm_end));
        sampler.reset();
        let m = bench.measure(Some(gw_pid), || {
            let (lat, o) = grpc::open_loop(&handle, &client, bodies, args.rate, timing.latency)?;
            latency = lat;
            Ok((Some(o.published), o, None))
        })?;
        let mut s = Scenario::new(
            "unary-rate",
            "unary",
            &format!("emitgate Emit at {:.0}/s (latency)", args.rate),
            &m,
        );
        s.gateway_rss_mb = Some(report::mb(sampler.max()));
        s.latency = Some(latency.clone());
        scenarios.push(s);
    }

    // 5. The msgpack-argument path against the JSON and Value paths.
    for kind in [ArgKind::Json, ArgKind::Msgpack, ArgKind::Value]
        .into_iter()
        .filter(|_| want("args"))
    {
        eprintln!("bench: 5. BatchEmit with {} arguments", kind.name());
        let body = workload::batch_body(kind)?;
        let s = gateway_scenario(&mut bench, &rt, gw_pid, &sampler, |deadline| {
            grpc::batch_load(&client, body.clone(), 2, deadline)
        })?;
        scenarios.push(s.named(
            &format!("args-{}", kind.name()),
            "args",
            &format!("BatchEmit, 2 concurrent, {} argument", kind.name()),
        ));
    }

    // 6. Each SDK's Publisher, through the same gateway.
    if want("sdk") {
        let cfg = json!({
            "grpc": gw_addr,
            "seconds": timing.run.as_secs_f64(),
            "event": workload::EVENT,
            "payload_json": workload::PAYLOAD_JSON,
            "rooms": rooms,
        })
        .to_string();
        for d in sdk::drivers(&root)? {
            eprintln!("bench: 7. {}", d.label);
            sampler.reset();
            let (id, command) = (d.id, d.command);
            let m = bench.measure(Some(gw_pid), || {
                let r = sdk::run(command, &cfg, id)?;
                Ok((
                    Some(r.sent),
                    Outcome {
                        calls: r.sent,
                        published: r.sent,
                        errors: r.errors,
                        first_error: r.first_error,
                    },
                    r.cpu_s,
                ))
            })?;
            let mut s = Scenario::new(d.id, "sdk", d.label, &m);
            s.gateway_rss_mb = Some(report::mb(sampler.max()));
            scenarios.push(s);
        }
    }

    // 7. Memory.
    thread::sleep(Duration::from_millis(if args.quick { 100 } else { 2000 }));
    gw.check_alive()?;
    let rss = Rss {
        idle_start_mb: report::mb(rss_idle_start),
        idle_after_load_mb: report::mb(procs::status_kb(gw_pid, "VmRSS").unwrap_or(0)),
        peak_sampled_mb: report::mb(sampler.max_ever()),
        peak_hwm_mb: report::mb(procs::status_kb(gw_pid, "VmHWM").unwrap_or(0)),
    };
    sampler.stop();
    drop(gw);

    // 7. Centrifugo as a peer (after the gateway stopped).
    let centrifugo_bin = args
        .centrifugo
        .clone()
        .unwrap_or_else(|| root.join(".tools/bin/centrifugo"));
    if want("peer") {
        if args.quick && !centrifugo_bin.exists() {
            eprintln!(
                "bench: note: {} is absent, Centrifugo rows skipped (smoke mode; make setup-bench-peers builds it)",
                centrifugo_bin.display()
            );
        } else {
            scenarios.extend(centrifugo::scenarios(&mut bench, &rt, &centrifugo_bin, &out_dir)?);
        }
    }
    bench.sub.close();

    let report = Report::build(
        &stamp,
        args.quick,
        machine,
        report::Config {
            seconds_per_scenario: timing.run.as_secs_f64(),
            latency_seconds: timing.latency.as_secs_f64(),
            offered_rate: args.rate,
            payload_json_bytes: workload::PAYLOAD_JSON.len(),
            packet_bytes_avg: packet_bytes,
            rooms_per_event: "1-3 (cycling)".into(),
            batch_items: workload::BATCH_ITEMS,
            key: bench.key.clone(),
            gateway: repo_relative(&gateway_bin),
            gateway_args: args.gateway_args.clone(),
        },
        scenarios,
        latency,
        rss,
    );
    let table = report.table();
    println!("{table}");
    let json_path = out_dir.join("results.json");
    fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    fs::write(out_dir.join("table.txt"), &table)?;
    let png_path = out_dir.join("results.png");
    chart::draw(&report, &png_path)?;
    for (from, to) in [
        ("results.json", "latest.json"),
        ("results.png", "latest.png"),
        ("table.txt", "latest.txt"),
    ] {
        fs::copy(out_dir.join(from), out_root.join(to))?;
    }
    eprintln!(
        "bench: wrote {} and {} (copied to {}/latest.*)",
        json_path.display(),
        png_path.display(),
        out_root.display()
    );
    if args.strict {
        // One check per scenario (it ran, had no errors and every event it
        // sent reached the subscriber), plus the JSON and the chart.
        let mut failed: Vec<String> = report
            .scenarios
            .iter()
            .filter(|s| s.errors > 0 || (s.delivered == 0 && s.calls == 0) || s.delivered != s.sent)
            .map(|s| {
                format!(
                    "{}: {} errors (first: {}), {} delivered of {} sent",
                    s.id,
                    s.errors,
                    s.first_error.as_deref().unwrap_or("none"),
                    s.delivered,
                    s.sent
                )
            })
            .collect();
        for f in [&json_path, &png_path] {
            if fs::metadata(f).map_or(true, |m| m.len() == 0) {
                failed.push(format!("{} was not written", f.display()));
            }
        }
        let checks = report.scenarios.len() + 2;
        for f in &failed {
            eprintln!("bench: FAILED {f}");
        }
        println!("bench-smoke: {} passed, {} failed", checks - failed.len(), failed.len());
        if !failed.is_empty() {
            return Err("--strict: see the failures above".into());
        }
    }
    Ok(())
}

/// Waits until the gateway publishes an Emit (its pool connects lazily).
fn ready(rt: &tokio::runtime::Runtime, client: &Client, bodies: &[bytes::Bytes]) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rt.block_on(client.emit(bodies[0].clone())) {
            Ok(n) if n >= 1 => return Ok(()),
            Ok(n) => return Err(format!("an Emit reached {n} subscribers; expected the bench's subscriber").into()),
            Err(e) if Instant::now() > deadline => return Err(format!("the gateway does not publish: {e}").into()),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A gateway scenario: warm up, then measure `load` until the deadline.
fn gateway_scenario<F, Fut>(
    bench: &mut Bench,
    rt: &tokio::runtime::Runtime,
    gw_pid: u32,
    sampler: &RssSampler,
    load: F,
) -> Result<Scenario, Box<dyn Error>>
where
    F: Fn(Instant) -> Fut,
    Fut: Future<Output = Outcome>,
{
    rt.block_on(load(Instant::now() + bench.timing.warmup));
    sampler.reset();
    let run = bench.timing.run;
    let m = bench.measure(Some(gw_pid), || {
        let o = rt.block_on(load(Instant::now() + run));
        Ok((Some(o.published), o, None))
    })?;
    if !bench.quick && m.outcome.errors > 0 {
        eprintln!(
            "bench: {} errors, first: {}",
            m.outcome.errors,
            m.outcome.first_error.as_deref().unwrap_or("?")
        );
    }
    let mut s = Scenario::new("", "", "", &m);
    s.gateway_rss_mb = Some(report::mb(sampler.max()));
    Ok(s)
}

/// Runs a reference emitter with `cfg` on stdin; returns what it sent and
/// the CPU seconds it reports using.
fn reference(mut cmd: Command, cfg: &str, name: &str) -> Result<(u64, Option<f64>), Box<dyn Error>> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{name} reference emitter: {e} (make setup-bench installs it)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(cfg.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("{name} reference emitter failed: {}", out.status).into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{name} reference emitter printed no result: {e}"))?;
    let sent = v["sent"]
        .as_u64()
        .ok_or_else(|| format!("{name} reference emitter: no `sent` in {v}"))?;
    Ok((sent, v["cpu_s"].as_f64()))
}

/// Samples the gateway's VmRSS every 50 ms in the background.
struct RssSampler {
    max: Arc<AtomicU64>,
    max_ever: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let max = Arc::new(AtomicU64::new(0));
        let max_ever = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, me, s) = (Arc::clone(&max), Arc::clone(&max_ever), Arc::clone(&stop));
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if let Some(rss) = procs::status_kb(pid, "VmRSS") {
                    m.fetch_max(rss, Ordering::SeqCst);
                    me.fetch_max(rss, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Self { max, max_ever, stop }
    }
    fn reset(&self) {
        self.max.store(0, Ordering::SeqCst);
    }
    fn max(&self) -> u64 {
        self.max.load(Ordering::SeqCst)
    }
    fn max_ever(&self) -> u64 {
        self.max_ever.load(Ordering::SeqCst)
    }
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `path` relative to the working directory (the repository root under
/// `make bench`), else its file name: a committed report names no path
/// outside the repository.
fn repo_relative(path: &Path) -> String {
    let inside = std::env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf));
    inside
        .or_else(|| path.file_name().map(PathBuf::from))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
