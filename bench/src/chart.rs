//! The PNG chart: throughput per scenario against the Redis limit, unary
//! latency percentiles and gateway memory against the targets.

use std::{error::Error, fs, path::Path};

use plotters::{
    coord::ranged1d::SegmentValue,
    prelude::*,
    style::{FontStyle, register_font},
};

use crate::report::{Report, format_rate};

/// Fonts tried in order (Debian's fonts-dejavu-core ships the first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn load_font() -> Result<(), Box<dyn Error>> {
    for path in FONTS {
        if let Ok(bytes) = fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{path}: not a font"))?;
            return Ok(());
        }
    }
    Err(format!(
        "no TrueType font found (tried {}); make setup-bench installs fonts-dejavu-core",
        FONTS.join(", ")
    )
    .into())
}

fn group_color(group: &str) -> RGBColor {
    match group {
        "limit" => RGBColor(90, 90, 90),
        "reference" => RGBColor(214, 120, 40),
        "batch" => RGBColor(40, 110, 200),
        "unary" => RGBColor(110, 170, 230),
        "args" => RGBColor(60, 160, 100),
        "peer" => RGBColor(150, 90, 170),
        _ => BLACK,
    }
}

type Result2 = Result<(), Box<dyn Error>>;

/// Draws the chart of `report` into `path` (PNG).
pub fn draw(report: &Report, path: &Path) -> Result2 {
    load_font()?;
    let root = BitMapBackend::new(path, (1600, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "emitgate bench {} — {} × {}{}",
        report.timestamp,
        report.machine.cores,
        report.machine.cpu_model,
        if report.quick { " — QUICK SMOKE RUN" } else { "" }
    );
    let root = root.titled(&title, ("sans-serif", 26))?;
    let (left, right) = root.split_horizontally(1000);
    let (top, bottom) = right.split_vertically(430);
    throughput(report, &left)?;
    latency(report, &top)?;
    memory(report, &bottom)?;
    root.present()?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, plotters::coord::Shift>) -> Result2
where
    DB::ErrorType: 'static,
{
    // Capacity scenarios only: the fixed-rate run's throughput is its offered load.
    // The floor publishes nothing.
    let rows: Vec<_> = report
        .scenarios
        .iter()
        .filter(|s| s.id != "unary-rate" && s.group != "floor")
        .rev()
        .collect();
    let n = rows.len() as i32;
    let xmax = rows.iter().map(|s| s.events_per_s).fold(1.0, f64::max) * 1.3;
    let labels: Vec<String> = rows.iter().map(|s| s.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption("events/s delivered to the subscriber", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(370)
        .build_cartesian_2d(0.0..xmax, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_labels(6)
        .x_label_formatter(&|v| format_rate(*v))
        .y_labels(rows.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels
                .get(usize::try_from(*i).unwrap_or(0))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, s) in rows.iter().enumerate() {
        let i = i as i32;
        let color = group_color(&s.group);
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (s.events_per_s, SegmentValue::Exact(i + 1)),
            ],
            color.filled(),
        )))?;
        // A white gap between bars.
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, SegmentValue::Exact(i)), (xmax, SegmentValue::Exact(i))],
            WHITE.stroke_width(8),
        )))?;
        let text = match s.x_limit {
            Some(x) => format!("{}  ({x:.2}× limit)", format_rate(s.events_per_s)),
            None => format_rate(s.events_per_s),
        };
        chart.draw_series(std::iter::once(Text::new(
            text,
            (s.events_per_s + xmax * 0.01, SegmentValue::CenterOf(i)),
            ("sans-serif", 14),
        )))?;
    }
    // The target: 0.8 × the limit.
    let goal = report.limit_events_per_s * 0.8;
    chart
        .draw_series(DashedLineSeries::new(
            [(goal, SegmentValue::Exact(0)), (goal, SegmentValue::Exact(n))],
            6,
            4,
            RED.stroke_width(2),
        ))?
        .label("0.8 × Redis limit (BatchEmit target)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    unit: &str,
    items: &[(&str, f64)],
    limits: &[(f64, &str)],
) -> Result2
where
    DB::ErrorType: 'static,
{
    let n = items.len() as i32;
    let top = items
        .iter()
        .map(|i| i.1)
        .chain(limits.iter().map(|l| l.0))
        .fold(0.0, f64::max)
        * 1.2;
    let names: Vec<String> = items.iter().map(|i| i.0.to_owned()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top.max(1e-9))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(items.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(usize::try_from(*i).unwrap_or(0)).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(unit)
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, (_, v)) in items.iter().enumerate() {
        let i = i as i32;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)],
            RGBColor(40, 110, 200).filled(),
        )))?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i), top)],
            WHITE.stroke_width(16),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{v:.2}"),
            (SegmentValue::CenterOf(i), *v + top * 0.03),
            ("sans-serif", 14),
        )))?;
    }
    for (k, (v, name)) in limits.iter().enumerate() {
        let color = if k == 0 { RED } else { RGBColor(150, 0, 150) };
        chart
            .draw_series(DashedLineSeries::new(
                [(SegmentValue::Exact(0), *v), (SegmentValue::Exact(n), *v)],
                6,
                4,
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if !limits.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(())
}

fn latency<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, plotters::coord::Shift>) -> Result2
where
    DB::ErrorType: 'static,
{
    let l = &report.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    bars(
        area,
        &format!(
            "unary Emit latency at {:.0} calls/s (open loop; max {:.2} ms)",
            l.offered_per_s,
            ms(l.max_us)
        ),
        "ms",
        &[
            ("p50", ms(l.p50_us)),
            ("p90", ms(l.p90_us)),
            ("p99", ms(l.p99_us)),
            ("p99.9", ms(l.p999_us)),
        ],
        &[(2.0, "p99 target 2 ms"), (5.0, "p99.9 target 5 ms")],
    )
}

fn memory<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, plotters::coord::Shift>) -> Result2
where
    DB::ErrorType: 'static,
{
    let r = &report.rss;
    bars(
        area,
        "gateway resident memory",
        "MiB",
        &[
            ("idle (start)", r.idle_start_mb),
            ("idle (after load)", r.idle_after_load_mb),
            ("peak", r.peak_hwm_mb.max(r.peak_sampled_mb)),
        ],
        &[(30.0, "idle target 30 MB"), (100.0, "peak target 100 MB")],
    )
}
