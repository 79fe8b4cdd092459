//! The gateway's CPU per event beside its peers of the same run: unary Emit
//! against the no-op floor (per call) and against Centrifugo's unary
//! Publish, BatchEmit against Centrifugo's Batch (per event). A ratio below
//! 1 means the gateway spends less CPU than the peer.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::Scenario;

/// One comparison: two rows' CPU per event and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub name: String,
    /// The emitgate row.
    pub emitgate_id: String,
    /// The peer's row.
    pub peer_id: String,
    /// CPU of the gateway per event (per call for unary rows), µs.
    pub emitgate_cpu_us: Option<f64>,
    /// CPU of the peer's process per event (per call for the floor), µs.
    pub peer_cpu_us: Option<f64>,
    /// `emitgate_cpu_us / peer_cpu_us`; absent when a row did not run.
    pub ratio: Option<f64>,
}

/// The pairs compared: (name, emitgate row, peer row).
const PAIRS: [(&str, &str, &str); 3] = [
    (
        "unary Emit over the no-op floor (Health/Check), per call",
        "unary-c64",
        "floor-c64",
    ),
    (
        "unary Emit over Centrifugo Publish, per event",
        "unary-c64",
        "centrifugo-publish-c64",
    ),
    (
        "BatchEmit x1000 over Centrifugo Batch x1000 parallel, 2 concurrent, per event",
        "batch-c2",
        "centrifugo-batch-c2",
    ),
];

/// Every comparison of [`PAIRS`] from the run's rows.
pub fn compare(scenarios: &[Scenario]) -> Vec<Comparison> {
    let cpu = |id: &str| {
        scenarios
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.gateway_cpu_us_per_event)
            .filter(|v| *v > 0.0)
    };
    PAIRS
        .iter()
        .map(|(name, ours, theirs)| {
            let (a, b) = (cpu(ours), cpu(theirs));
            Comparison {
                name: (*name).into(),
                emitgate_id: (*ours).into(),
                peer_id: (*theirs).into(),
                emitgate_cpu_us: a,
                peer_cpu_us: b,
                ratio: a.zip(b).map(|(a, b)| a / b),
            }
        })
        .collect()
}

/// The comparisons as a Markdown table for the report.
pub fn table(comparisons: &[Comparison]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "CPU of the process under test per event, from /proc (the gateway; in the peer rows, Centrifugo):\n"
    );
    let _ = writeln!(t, "| comparison | emitgate µs | peer µs | ratio |");
    let _ = writeln!(t, "|---|---:|---:|---:|");
    let f = |v: Option<f64>, d: usize| v.map_or_else(|| "not run".into(), |v| format!("{v:.d$}"));
    for c in comparisons {
        let _ = writeln!(
            t,
            "| {} ({} / {}) | {} | {} | {} |",
            c.name,
            c.emitgate_id,
            c.peer_id,
            f(c.emitgate_cpu_us, 2),
            f(c.peer_cpu_us, 2),
            f(c.ratio, 2)
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, us: Option<f64>) -> Scenario {
        let m = crate::Measured {
            seen: crate::subscriber::Seen {
                count: 0,
                bytes: 0,
                span: std::time::Duration::ZERO,
            },
            outcome: crate::grpc::Outcome::default(),
            redis_cpu: 0.0,
            gateway_cpu: None,
            sender_cpu: 0.0,
            subscriber_cpu: 0.0,
            commands: std::collections::BTreeMap::new(),
            wall_s: 1.0,
        };
        let mut s = Scenario::new(id, "", "", &m);
        s.gateway_cpu_us_per_event = us;
        s
    }

    #[test]
    fn ratios_are_emitgate_over_peer_and_absent_rows_give_none() {
        let rows = [
            row("unary-c64", Some(22.0)),
            row("floor-c64", Some(11.0)),
            row("batch-c2", Some(1.5)),
        ];
        let c = compare(&rows);
        assert_eq!(c[0].ratio, Some(2.0));
        assert_eq!(c[1].ratio, None, "Centrifugo did not run");
        assert_eq!(c[2].emitgate_cpu_us, Some(1.5));
        assert!(table(&c).contains("| not run |"));
    }
}
