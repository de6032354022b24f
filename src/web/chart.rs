//! Server-side SVG charts over a real time axis: snapshots sit at their creation time, ticks fall on
//! whole seconds, minutes, hours, days, months or years (UTC) depending on the span, and every point has a
//! `<title>` (the hover text) with its exact values. Text that comes from users (share names in legends)
//! goes through [`xml_escape`]; everything else is numbers and fixed words.

use std::fmt::Write;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::units;

const W: f64 = 640.0;
const PAD_L: f64 = 76.0;
const PAD_R: f64 = 16.0;
/// Height of one panel's plot area, in SVG units.
const PANEL_H: f64 = 120.0;
/// Room below the last panel for tick labels (time and, where it changes, the date).
const AXIS_H: f64 = 34.0;
/// Room above the first panel for the legend.
const LEGEND_H: f64 = 22.0;
/// Gap between two stacked panels.
const GAP: f64 = 26.0;
/// Most ticks on the time axis.
const MAX_TICKS: usize = 7;
const TEXT: &str = "#374151";
const GRID: &str = "#e5e7eb";
/// Line colours, in order; dark enough for 3:1 against white.
pub const PALETTE: [&str; 6] = ["#1d4ed8", "#15803d", "#b45309", "#7e22ce", "#be123c", "#0e7490"];

/// Escape `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
pub fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Seconds since the epoch of an RFC 3339 time (a manifest's `created_at`); 0 if it does not parse.
pub fn unix_secs(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

fn utc(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// A time for hover text: `2026-12-05 14:03:09 UTC`.
pub fn when(t: i64) -> String {
    utc(t).format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The step between ticks: a fixed number of seconds, or whole calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Secs(i64),
    Months(u32),
}

const DAY: i64 = 86_400;
/// Candidate steps, shortest first; the first that gives at most [`MAX_TICKS`] ticks is used.
const STEPS: [Step; 27] = [
    Step::Secs(1),
    Step::Secs(2),
    Step::Secs(5),
    Step::Secs(10),
    Step::Secs(15),
    Step::Secs(30),
    Step::Secs(60),
    Step::Secs(120),
    Step::Secs(300),
    Step::Secs(600),
    Step::Secs(900),
    Step::Secs(1800),
    Step::Secs(3600),
    Step::Secs(3 * 3600),
    Step::Secs(6 * 3600),
    Step::Secs(12 * 3600),
    Step::Secs(DAY),
    Step::Secs(2 * DAY),
    Step::Secs(7 * DAY),
    Step::Months(1),
    Step::Months(2),
    Step::Months(3),
    Step::Months(6),
    Step::Months(12),
    Step::Months(24),
    Step::Months(60),
    Step::Months(120),
];

/// One tick of the time axis: where (seconds since the epoch) and its label lines (the second line, the
/// date, only on the first tick and where the date changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub t: i64,
    pub label: String,
    pub date: Option<String>,
}

/// Ticks for the span `t0..=t1` (seconds since the epoch, UTC): at most [`MAX_TICKS`], on whole seconds,
/// minutes, hours, days (labelled `2026-12-05`), weeks, months (`Dec 2026`) or years (`2026`). An empty
/// span gets one tick at `t0`, labelled with its date and time.
pub fn time_ticks(t0: i64, t1: i64) -> Vec<Tick> {
    let (t0, t1) = (t0.min(t1), t0.max(t1));
    if t0 == t1 {
        let d = utc(t0);
        return vec![Tick {
            t: t0,
            label: d.format("%H:%M:%S").to_string(),
            date: Some(d.format("%Y-%m-%d").to_string()),
        }];
    }
    let span = t1 - t0;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| match *s {
            Step::Secs(k) => span / k < MAX_TICKS as i64,
            Step::Months(k) => span / (k as i64 * 30 * DAY) < MAX_TICKS as i64 - 1,
        })
        .unwrap_or(Step::Months(1200));
    let mut ticks = Vec::new();
    match step {
        Step::Secs(k) => {
            // Weeks start on Mondays; shorter steps on multiples of themselves since midnight UTC.
            let offset = if k == 7 * DAY { 4 * DAY } else { 0 };
            let mut t = (t0 - offset).div_euclid(k) * k + offset;
            if t < t0 {
                t += k;
            }
            let mut last_date = String::new();
            while t <= t1 {
                let d = utc(t);
                let date = d.format("%Y-%m-%d").to_string();
                if k >= DAY {
                    ticks.push(Tick { t, label: date, date: None });
                } else {
                    let label = d.format(if k < 60 { "%H:%M:%S" } else { "%H:%M" }).to_string();
                    let date = (date != last_date).then(|| date.clone());
                    last_date = d.format("%Y-%m-%d").to_string();
                    ticks.push(Tick { t, label, date });
                }
                t += k;
            }
        }
        Step::Months(k) => {
            let start = utc(t0);
            let (mut y, mut m) = (start.year(), start.month0());
            // The first month boundary at or after t0 whose month number is a multiple of the step.
            loop {
                let t = Utc.with_ymd_and_hms(y, m + 1, 1, 0, 0, 0).single().map_or(i64::MAX, |d| d.timestamp());
                if t > t1 {
                    break;
                }
                if t >= t0 && (y as i64 * 12 + m as i64) % k as i64 == 0 {
                    let label = if k >= 12 { format!("{y}") } else { utc(t).format("%b %Y").to_string() };
                    ticks.push(Tick { t, label, date: None });
                }
                m += 1;
                if m == 12 {
                    m = 0;
                    y += 1;
                }
            }
        }
    }
    ticks
}

/// What a value axis counts, which decides its top and its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Sizes in bytes: binary units, one unit per axis (`0.6 GiB … 2.4 GiB`).
    Bytes,
    /// Counts (files, nodes): grouped integers.
    Count,
}

impl Measure {
    /// The top of an axis showing values up to `v`: a round number whose quarters are round too.
    fn axis_max(self, v: f64) -> f64 {
        match self {
            Measure::Bytes => units::bytes_axis_max(v),
            Measure::Count => {
                let v = v.max(4.0);
                let p = 10f64.powf(v.log10().floor());
                [1.0, 2.0, 4.0, 5.0, 8.0, 10.0].iter().map(|m| m * p).find(|x| *x >= v).unwrap_or(10.0 * p)
            }
        }
    }
    fn label(self, v: f64, max: f64) -> String {
        match self {
            Measure::Bytes => units::bytes_in_unit_of(v, max),
            Measure::Count => units::count(v.round() as u64),
        }
    }
}

/// Maps times to x across the plot area; one instant sits in the middle.
struct TimeScale {
    t0: i64,
    t1: i64,
    /// Units kept free at both ends of the plot area (half a bar, or a point's radius).
    pad: f64,
}

impl TimeScale {
    fn new(ts: impl Iterator<Item = i64> + Clone, pad: f64) -> Self {
        TimeScale { t0: ts.clone().min().unwrap_or(0), t1: ts.max().unwrap_or(0), pad }
    }
    fn x(&self, t: i64) -> f64 {
        if self.t1 == self.t0 {
            return PAD_L + (W - PAD_L - PAD_R) / 2.0;
        }
        let width = W - PAD_L - PAD_R - 2.0 * self.pad;
        PAD_L + self.pad + width * (t - self.t0) as f64 / (self.t1 - self.t0) as f64
    }
}

/// One line of a chart: a name for the legend and (time, value, hover text) points in time order.
pub struct Series {
    pub name: String,
    pub points: Vec<(i64, f64, String)>,
}

fn open_svg(out: &mut String, h: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">"#,
        xml_escape(title)
    );
}

/// Horizontal grid lines and value labels for a panel whose plot area starts at `top`.
fn value_axis(out: &mut String, top: f64, max: f64, measure: Measure) {
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = top + PANEL_H - PANEL_H * k as f64 / 4.0;
        let _ = write!(
            out,
            r#"<line x1="{PAD_L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="{TEXT}" text-anchor="end">{}</text>"#,
            W - PAD_R,
            PAD_L - 6.0,
            y + 3.5,
            measure.label(v, max)
        );
    }
}

/// The time axis under a plot area that ends at `bottom`, with grid lines up to `top`.
fn time_axis(out: &mut String, sc: &TimeScale, top: f64, bottom: f64) {
    let _ = write!(out, r#"<g class="time-axis" font-size="10" fill="{TEXT}" text-anchor="middle">"#);
    for tick in time_ticks(sc.t0, sc.t1) {
        let x = sc.x(tick.t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/><text class="tick" x="{x:.1}" y="{:.1}">{}</text>"#,
            bottom + 4.0,
            bottom + 15.0,
            tick.label
        );
        if let Some(d) = tick.date {
            let _ = write!(out, r#"<text class="tick-date" x="{x:.1}" y="{:.1}">{d}</text>"#, bottom + 28.0);
        }
    }
    out.push_str("</g>");
}

fn legend(out: &mut String, items: &[(&str, &str)]) {
    let mut x = PAD_L;
    out.push_str(r#"<g class="legend" font-size="11">"#);
    for (name, color) in items {
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="6" width="14" height="4" fill="{color}"/><text x="{:.1}" y="12" fill="{TEXT}">{}</text>"#,
            x + 18.0,
            xml_escape(name)
        );
        x += 28.0 + 6.5 * name.chars().count() as f64;
    }
    out.push_str("</g>");
}

/// One panel: the lines of `series` (values from 0 to a rounded maximum) in a plot area from `top`.
fn panel(out: &mut String, sc: &TimeScale, top: f64, series: &[(&Series, &str)], measure: Measure) {
    let max = measure.axis_max(series.iter().flat_map(|(s, _)| s.points.iter().map(|p| p.1)).fold(0.0, f64::max));
    value_axis(out, top, max, measure);
    let y = |v: f64| top + PANEL_H - PANEL_H * v / max;
    for (s, color) in series {
        let pts: Vec<String> = s.points.iter().map(|p| format!("{:.1},{:.1}", sc.x(p.0), y(p.1))).collect();
        let _ = write!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in &s.points {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}</title></circle>"#,
                sc.x(p.0),
                y(p.1),
                xml_escape(&p.2)
            );
        }
    }
}

/// Several series in one panel over a time axis, with a legend (the tenant page: bytes per share).
pub fn lines(title: &str, series: &[Series], measure: Measure) -> String {
    let sc =
        TimeScale::new(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect::<Vec<_>>().into_iter(), 8.0);
    let h = LEGEND_H + PANEL_H + AXIS_H;
    let mut out = String::new();
    open_svg(&mut out, h, title);
    let colored: Vec<(&Series, &str)> = series.iter().zip(PALETTE.iter().cycle()).map(|(s, c)| (s, *c)).collect();
    legend(&mut out, &colored.iter().map(|(s, c)| (s.name.as_str(), *c)).collect::<Vec<_>>());
    panel(&mut out, &sc, LEGEND_H, &colored, measure);
    time_axis(&mut out, &sc, LEGEND_H, LEGEND_H + PANEL_H);
    out.push_str("</svg>");
    out
}

/// One snapshot on the growth chart.
pub struct GrowthPoint {
    pub snapshot_id: i64,
    /// Creation time, seconds since the epoch.
    pub t: i64,
    pub bytes: u64,
    pub files: u64,
}

/// Bytes and files of a share over time: two panels, one above the other, on the same time axis.
pub fn growth(title: &str, points: &[GrowthPoint]) -> String {
    let sc = TimeScale::new(points.iter().map(|p| p.t), 8.0);
    let hover = |p: &GrowthPoint| {
        format!(
            "snapshot #{} · {} · {} ({} bytes) · {} files",
            p.snapshot_id,
            when(p.t),
            units::bytes(p.bytes),
            units::count(p.bytes),
            units::count(p.files)
        )
    };
    let bytes =
        Series { name: "bytes".into(), points: points.iter().map(|p| (p.t, p.bytes as f64, hover(p))).collect() };
    let files =
        Series { name: "files".into(), points: points.iter().map(|p| (p.t, p.files as f64, hover(p))).collect() };
    let h = LEGEND_H + 2.0 * PANEL_H + GAP + AXIS_H;
    let mut out = String::new();
    open_svg(&mut out, h, title);
    legend(&mut out, &[("bytes (upper)", PALETTE[0]), ("files (lower)", PALETTE[1])]);
    panel(&mut out, &sc, LEGEND_H, &[(&bytes, PALETTE[0])], Measure::Bytes);
    let lower = LEGEND_H + PANEL_H + GAP;
    panel(&mut out, &sc, lower, &[(&files, PALETTE[1])], Measure::Count);
    time_axis(&mut out, &sc, LEGEND_H, lower + PANEL_H);
    out.push_str("</svg>");
    out
}

/// One snapshot's changes against the one before.
pub struct ChangePoint {
    pub snapshot_id: i64,
    pub t: i64,
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

/// Stacked bars of added, modified and deleted nodes per snapshot, at the snapshots' times.
pub fn changes(title: &str, points: &[ChangePoint]) -> String {
    // Bars are as wide as 70% of the closest two snapshots' distance, between 3 and 40 units; half a bar
    // is kept free at both ends so the first and last stay inside the plot area.
    const MAX_BAR: f64 = 40.0;
    let unpadded = TimeScale::new(points.iter().map(|p| p.t), MAX_BAR / 2.0 + 2.0);
    let mut xs: Vec<f64> = points.iter().map(|p| unpadded.x(p.t)).collect();
    xs.sort_by(f64::total_cmp);
    let gap = xs.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0.0).fold(f64::INFINITY, f64::min);
    let bw = if gap.is_finite() { (gap * 0.7).clamp(3.0, MAX_BAR) } else { MAX_BAR };
    let sc = TimeScale::new(points.iter().map(|p| p.t), bw / 2.0 + 2.0);
    let max =
        Measure::Count.axis_max(points.iter().map(|p| (p.added + p.modified + p.deleted) as f64).fold(0.0, f64::max));
    let h = LEGEND_H + PANEL_H + AXIS_H;
    let mut out = String::new();
    open_svg(&mut out, h, title);
    let colors = [("added", "#15803d"), ("modified", "#b45309"), ("deleted", "#b91c1c")];
    legend(&mut out, &colors);
    value_axis(&mut out, LEGEND_H, max, Measure::Count);
    for p in points {
        let x = sc.x(p.t) - bw / 2.0;
        let mut base = LEGEND_H + PANEL_H;
        for ((what, color), v) in colors.iter().zip([p.added, p.modified, p.deleted]) {
            let h = PANEL_H * v as f64 / max;
            base -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{base:.1}" width="{bw:.1}" height="{h:.1}" fill="{color}"><title>snapshot #{} · {} · {} {what}</title></rect>"#,
                p.snapshot_id,
                when(p.t),
                units::count(v)
            );
        }
    }
    time_axis(&mut out, &sc, LEGEND_H, LEGEND_H + PANEL_H);
    out.push_str("</svg>");
    out
}
