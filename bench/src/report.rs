//! The results: ratios, the targets with PASS/FAIL, the stdout table
//! and the JSON document.

use std::{fmt::Write as _, fs};

use serde::Serialize;

use crate::{Measured, grpc::Latency, procs::command_output};

/// Bytes to megabytes (MiB).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for the results folder.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online cores.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// `uname -sr`.
    pub kernel: String,
    /// `redis-server --version`.
    pub redis: String,
    /// `node --version`.
    pub node: String,
    /// The gateway's commit (`git describe`).
    pub commit: String,
    /// `/proc/loadavg` when the run started: other work on the machine
    /// skews every figure.
    pub loadavg_at_start: String,
}

impl Machine {
    /// Reads it from the system.
    pub fn detect() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".into(), |s| s.trim().to_owned());
        let memory_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
        let redis = command_output("redis-server", &["--version"]);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib,
            kernel: command_output("uname", &["-sr"]),
            redis: redis
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v="))
                .unwrap_or(&redis)
                .to_owned(),
            node: command_output("node", &["--version"]),
            commit: command_output(
                "git",
                &["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"],
            ),
            loadavg_at_start: fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        }
    }
}

/// The run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Seconds each throughput scenario ran.
    pub seconds_per_scenario: f64,
    /// Seconds of the latency run.
    pub latency_seconds: f64,
    /// Offered calls/s of the latency run.
    pub offered_rate: f64,
    /// The JSON argument's size.
    pub payload_json_bytes: usize,
    /// Average packet size published to Redis.
    pub packet_bytes_avg: usize,
    /// Rooms per event.
    pub rooms_per_event: String,
    /// Items per BatchEmit.
    pub batch_items: usize,
    /// The channel prefix.
    pub key: String,
    /// The gateway binary.
    pub gateway: String,
    /// Extra gateway flags.
    pub gateway_args: Vec<String>,
}

/// One measured scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Stable id (`limit-1conn`, `node`, `batch-c2`, ...).
    pub id: String,
    /// Group: limit, reference, batch, unary, args.
    pub group: String,
    /// Human label.
    pub label: String,
    /// Messages per second delivered to the subscriber (first to last).
    pub events_per_s: f64,
    /// Messages the subscriber received.
    pub delivered: u64,
    /// Messages the sender reports published.
    pub sent: u64,
    /// Payload megabytes (MiB) per second delivered to the subscriber.
    pub delivered_mib_per_s: f64,
    /// Seconds from the first to the last delivered message.
    pub seconds: f64,
    /// RPCs that answered OK.
    pub calls: u64,
    /// RPCs that answered OK per second of the measurement.
    pub calls_per_s: f64,
    /// Failed calls or items.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Gateway CPU, in cores (1.0 = one core busy).
    pub gateway_cpu_cores: Option<f64>,
    /// Gateway CPU time per delivered event, microseconds (in the floor
    /// row, which publishes nothing, per answered call; in the peer rows,
    /// the CPU columns are the peer's process).
    pub gateway_cpu_us_per_event: Option<f64>,
    /// Redis CPU, in cores.
    pub redis_cpu_cores: f64,
    /// CPU of the sender, in cores: the bench's load client, or the CPU a
    /// reference emitter reports for itself.
    pub sender_cpu_cores: f64,
    /// CPU of the bench's subscriber thread, in cores.
    pub subscriber_cpu_cores: f64,
    /// Largest gateway VmRSS sampled during the scenario, MiB.
    pub gateway_rss_mb: Option<f64>,
    /// Throughput over the Redis limit (scenario 1, best connection count).
    pub x_limit: Option<f64>,
    /// Throughput over the Node reference emitter.
    pub x_node: Option<f64>,
    /// Throughput over the python-socketio manager.
    pub x_python: Option<f64>,
    /// Throughput over the bench's own Rust load client (the best BatchEmit
    /// scenario): what an SDK keeps of the gateway's speed.
    pub x_rust: Option<f64>,
    /// Redis commands executed per delivered event, by command (shows
    /// round trips the gateway adds, e.g. a pool's UNWATCH + PING).
    pub redis_commands_per_event: std::collections::BTreeMap<String, f64>,
    /// Latency percentiles (the fixed-rate run only).
    pub latency: Option<Latency>,
}

impl Scenario {
    /// A scenario from what the subscriber saw and the CPU used (redis
    /// first, then the gateway if measured).
    pub fn new(id: &str, group: &str, label: &str, m: &Measured) -> Self {
        let (seen, outcome) = (m.seen, &m.outcome);
        let gw = m.gateway_cpu;
        Self {
            id: id.into(),
            group: group.into(),
            label: label.into(),
            events_per_s: seen.rate(),
            delivered: seen.count,
            sent: outcome.published,
            delivered_mib_per_s: if seen.span.is_zero() {
                0.0
            } else {
                mb(seen.bytes) / seen.span.as_secs_f64()
            },
            seconds: seen.span.as_secs_f64(),
            calls: outcome.calls,
            calls_per_s: outcome.calls as f64 / m.wall_s.max(1e-9),
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            gateway_cpu_cores: gw.map(|g| g.1),
            gateway_cpu_us_per_event: gw.map(|g| {
                if seen.count > 0 {
                    g.0 * 1e6 / seen.count as f64
                } else {
                    0.0
                }
            }),
            redis_cpu_cores: m.redis_cpu,
            sender_cpu_cores: m.sender_cpu,
            subscriber_cpu_cores: m.subscriber_cpu,
            gateway_rss_mb: None,
            x_limit: None,
            x_node: None,
            x_python: None,
            x_rust: None,
            redis_commands_per_event: m
                .commands
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        (*v as f64 / seen.count.max(1) as f64 * 1000.0).round() / 1000.0,
                    )
                })
                .collect(),
            latency: None,
        }
    }

    /// Sets id, group and label.
    pub fn named(mut self, id: &str, group: &str, label: &str) -> Self {
        self.id = id.into();
        self.group = group.into();
        self.label = label.into();
        self
    }
}

/// Gateway memory.
#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    /// VmRSS after start and one call, before any load, MiB.
    pub idle_start_mb: f64,
    /// VmRSS two seconds after the last load, MiB.
    pub idle_after_load_mb: f64,
    /// Largest VmRSS sampled every 50 ms during the load, MiB.
    pub peak_sampled_mb: f64,
    /// VmHWM (the kernel's peak resident set) at the end, MiB.
    pub peak_hwm_mb: f64,
}

/// One of the targets.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is checked.
    pub name: String,
    /// The measured value.
    pub measured: f64,
    /// `>=` or `<=`.
    pub op: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// The unit of both.
    pub unit: &'static str,
    /// Whether it holds.
    pub pass: bool,
    /// How the value was obtained.
    pub detail: String,
}

fn target(name: &str, measured: f64, op: &'static str, threshold: f64, unit: &'static str, detail: String) -> Target {
    let pass = measured.is_finite()
        && match op {
            ">=" => measured >= threshold,
            _ => measured <= threshold,
        };
    Target {
        name: name.into(),
        measured,
        op,
        threshold,
        unit,
        pass,
        detail,
    }
}

/// The whole result document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When (UTC), also the results folder name.
    pub timestamp: String,
    /// True in smoke mode: the figures mean nothing.
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub config: Config,
    /// The Redis limit used for ratios (best of scenario 1).
    pub limit_events_per_s: f64,
    /// Every scenario, in run order.
    pub scenarios: Vec<Scenario>,
    /// The fixed-rate latency run.
    pub latency: Latency,
    /// Gateway memory.
    pub rss: Rss,
    /// The gateway's CPU per event beside the no-op floor and Centrifugo.
    pub peers: Vec<crate::peers::Comparison>,
    /// The targets.
    pub targets: Vec<Target>,
    /// True when every target holds.
    pub all_targets_pass: bool,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

impl Report {
    /// Computes ratios and targets.
    pub fn build(
        timestamp: &str,
        quick: bool,
        machine: Machine,
        config: Config,
        mut scenarios: Vec<Scenario>,
        latency: Latency,
        rss: Rss,
    ) -> Self {
        let rate = |id: &str| scenarios.iter().find(|s| s.id == id).map_or(0.0, |s| s.events_per_s);
        let limit = scenarios
            .iter()
            .filter(|s| s.group == "limit")
            .map(|s| s.events_per_s)
            .fold(0.0, f64::max);
        let node = rate("node");
        let python = rate("python");
        for s in &mut scenarios {
            s.x_limit = ratio(s.events_per_s, limit);
            s.x_node = ratio(s.events_per_s, node);
            s.x_python = ratio(s.events_per_s, python);
        }
        let best_batch = scenarios
            .iter()
            .filter(|s| s.group == "batch")
            .max_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
        let (batch, batch_id) = best_batch.map_or((0.0, String::new()), |s| (s.events_per_s, s.id.clone()));
        let fmt = |v: f64| format_rate(v);
        // The SDK targets: events/s of each SDK's Publisher.
        let sdk_targets = [
            ("sdk-python", "Python", 120_000.0),
            ("sdk-go", "Go", 400_000.0),
            ("sdk-php", "PHP", 50_000.0),
        ]
        .into_iter()
        .map(|(id, sdk, threshold)| {
            let r = scenarios.iter().find(|s| s.id == id).map_or(0.0, |s| s.events_per_s);
            target(
                &format!("{sdk} SDK Publisher >= {} events/s", fmt(threshold)),
                r,
                ">=",
                threshold,
                "events/s",
                format!(
                    "{id} {} events/s, {} x the Rust load client ({batch_id} {})",
                    fmt(r),
                    ratio(r, batch).map_or_else(|| "–".into(), |x| format!("{x:.2}")),
                    fmt(batch)
                ),
            )
        })
        .collect::<Vec<_>>();
        for s in &mut scenarios {
            s.x_rust = ratio(s.events_per_s, batch);
        }
        let mut targets = vec![
            target(
                "BatchEmit >= 0.8x Redis limit",
                ratio(batch, limit).unwrap_or(0.0),
                ">=",
                0.8,
                "x",
                format!("{batch_id} {} / limit {} events/s", fmt(batch), fmt(limit)),
            ),
            target(
                "BatchEmit >= 2x @socket.io/redis-emitter",
                ratio(batch, node).unwrap_or(0.0),
                ">=",
                2.0,
                "x",
                format!("{batch_id} {} / node {} events/s", fmt(batch), fmt(node)),
            ),
            target(
                "BatchEmit >= 10x python-socketio manager",
                ratio(batch, python).unwrap_or(0.0),
                ">=",
                10.0,
                "x",
                format!("{batch_id} {} / python {} events/s", fmt(batch), fmt(python)),
            ),
            target(
                "Unary Emit p99 <= 2 ms at fixed rate",
                latency.p99_us as f64 / 1000.0,
                "<=",
                2.0,
                "ms",
                format!("{:.0} calls/s offered, open loop", latency.offered_per_s),
            ),
            target(
                "Unary Emit p99.9 <= 5 ms at fixed rate",
                latency.p999_us as f64 / 1000.0,
                "<=",
                5.0,
                "ms",
                format!("{:.0} calls/s offered, open loop", latency.offered_per_s),
            ),
            target(
                "Gateway RSS idle <= 30 MB",
                rss.idle_start_mb.max(rss.idle_after_load_mb),
                "<=",
                30.0,
                "MiB",
                format!(
                    "VmRSS at start {:.1}, after load {:.1}",
                    rss.idle_start_mb, rss.idle_after_load_mb
                ),
            ),
            target(
                "Gateway RSS at peak <= 100 MB",
                rss.peak_hwm_mb.max(rss.peak_sampled_mb),
                "<=",
                100.0,
                "MiB",
                format!("VmHWM {:.1}, sampled max {:.1}", rss.peak_hwm_mb, rss.peak_sampled_mb),
            ),
        ];
        targets.extend(sdk_targets);
        let all_targets_pass = targets.iter().all(|t| t.pass);
        let peers = crate::peers::compare(&scenarios);
        Self {
            timestamp: timestamp.into(),
            quick,
            machine,
            config,
            limit_events_per_s: limit,
            scenarios,
            latency,
            rss,
            peers,
            targets,
            all_targets_pass,
        }
    }

    /// The table printed on stdout (Markdown, so it pastes into docs).
    pub fn table(&self) -> String {
        let m = &self.machine;
        let c = &self.config;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "emitgate bench {} — {} × {}, {} GiB, {}; redis {}, node {}; gateway {}; load average at start {}{}",
            self.timestamp,
            m.cores,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.redis,
            m.node,
            m.commit,
            m.loadavg_at_start,
            if self.quick {
                " — QUICK SMOKE RUN, figures mean nothing"
            } else {
                ""
            }
        );
        let _ = writeln!(
            t,
            "{:.1} s per scenario; one {} B JSON object argument ({} B packets on average), {} rooms; \
             one pattern subscriber on `{}#*`; events/s counted at the subscriber\n",
            c.seconds_per_scenario, c.payload_json_bytes, c.packet_bytes_avg, c.rooms_per_event, c.key
        );
        let _ = writeln!(
            t,
            "| # | scenario | events/s | × limit | × node | × python | × rust | gateway CPU | gateway µs/event | redis CPU | sender CPU | Redis cmds/event | gateway RSS |"
        );
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
        let num = |g: &str| match g {
            "limit" => "1",
            "reference" => "2",
            "batch" => "3",
            "unary" => "4",
            "floor" => "4",
            "args" => "5",
            "peer" => "6",
            "sdk" => "7",
            _ => "",
        };
        let x = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.2}"));
        for s in &self.scenarios {
            let mut label = s.label.clone();
            if s.errors > 0 {
                let _ = write!(label, " ({} errors)", s.errors);
            }
            if s.delivered != s.sent {
                let _ = write!(label, " (delivered {} of {} sent)", s.delivered, s.sent);
            }
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {} | {} |",
                num(&s.group),
                label,
                if s.delivered == 0 && s.calls > 0 {
                    format!("({} calls/s)", format_rate(s.calls_per_s))
                } else {
                    format_rate(s.events_per_s)
                },
                x(s.x_limit),
                x(s.x_node),
                x(s.x_python),
                x(s.x_rust),
                s.gateway_cpu_cores
                    .map_or_else(|| "–".into(), |v| format!("{:.0}%", v * 100.0)),
                s.gateway_cpu_us_per_event
                    .map_or_else(|| "–".into(), |v| format!("{v:.2}")),
                s.redis_cpu_cores * 100.0,
                s.sender_cpu_cores * 100.0,
                commands(&s.redis_commands_per_event),
                s.gateway_rss_mb.map_or_else(|| "–".into(), |v| format!("{v:.1} MiB")),
            );
        }
        let l = &self.latency;
        let _ = writeln!(
            t,
            "\nUnary Emit latency at {:.0} calls/s offered (open loop, from the intended send time; {} calls): \
             p50 {} · p90 {} · p99 {} · p99.9 {} · max {} (client send lag p99 {})",
            l.offered_per_s,
            l.sent,
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            ms(l.send_lag_p99_us)
        );
        let r = &self.rss;
        let _ = writeln!(
            t,
            "Gateway RSS: idle at start {:.1} MiB · idle after load {:.1} MiB · peak {:.1} MiB (VmHWM; sampled max {:.1})\n",
            r.idle_start_mb, r.idle_after_load_mb, r.peak_hwm_mb, r.peak_sampled_mb
        );
        let _ = writeln!(t, "{}", crate::peers::table(&self.peers));
        let _ = writeln!(t, "| target | measured | result | how |");
        let _ = writeln!(t, "|---|---:|---|---|");
        for g in &self.targets {
            let _ = writeln!(
                t,
                "| {} | {:.2} {} | {} | {} |",
                g.name,
                g.measured,
                g.unit,
                if g.pass { "PASS" } else { "FAIL" },
                g.detail
            );
        }
        t
    }
}

/// `3.00 (ping 1.00, unwatch 1.00)`: the total, then every command other
/// than the publish itself.
fn commands(per_event: &std::collections::BTreeMap<String, f64>) -> String {
    let total: f64 = per_event.values().sum();
    let extra: Vec<String> = per_event
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "publish") && **v >= 0.005)
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    if extra.is_empty() {
        format!("{total:.2}")
    } else {
        format!("{total:.2} ({})", extra.join(", "))
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// `1 234 567` style.
pub fn format_rate(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rates_and_timestamps() {
        assert_eq!(format_rate(1_234_567.4), "1 234 567");
        assert_eq!(format_rate(999.0), "999");
        let ts = timestamp();
        assert_eq!(ts.len(), 16);
        assert!(ts.starts_with("20") && ts.ends_with('Z'));
    }

    #[test]
    fn targets_compare_in_the_right_direction() {
        assert!(target("a", 0.9, ">=", 0.8, "x", String::new()).pass);
        assert!(!target("a", 0.7, ">=", 0.8, "x", String::new()).pass);
        assert!(target("b", 1.5, "<=", 2.0, "ms", String::new()).pass);
        assert!(!target("b", f64::NAN, "<=", 2.0, "ms", String::new()).pass);
    }
}
