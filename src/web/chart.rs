//! Server-side SVG charts. Only numbers and fixed labels go into the SVG (never file names), so the
//! output is safe to embed unescaped.

use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 180.0;
const PAD_L: f64 = 70.0;
const PAD_B: f64 = 24.0;
const PAD_T: f64 = 12.0;

fn axis(out: &mut String, max: f64, fmt: &dyn Fn(f64) -> String) {
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = H - PAD_B - (H - PAD_B - PAD_T) * k as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{PAD_L}" y1="{y:.1}" x2="{W}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            PAD_L - 4.0,
            y + 3.0,
            fmt(v)
        );
    }
}

/// A line of `values` (one per snapshot, labelled by `labels`), y from 0.
pub fn line(title: &str, labels: &[i64], values: &[f64], fmt: &dyn Fn(f64) -> String) -> String {
    let max = values.iter().cloned().fold(0.0, f64::max).max(1.0);
    let n = values.len().max(1);
    let x = |i: usize| PAD_L + (W - PAD_L - 10.0) * if n == 1 { 0.5 } else { i as f64 / (n - 1) as f64 };
    let y = |v: f64| H - PAD_B - (H - PAD_B - PAD_T) * v / max;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg">"#
    );
    axis(&mut s, max, fmt);
    let pts: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
    let _ = write!(s, r##"<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{}"/>"##, pts.join(" "));
    for (i, v) in values.iter().enumerate() {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2563eb"><title>snapshot {}: {}</title></circle>"##,
            x(i),
            y(*v),
            labels.get(i).copied().unwrap_or(0),
            fmt(*v)
        );
    }
    let step = (n / 10).max(1);
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let _ = write!(s, r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">#{l}</text>"#, x(i), H - 8.0);
    }
    s.push_str("</svg>");
    s
}

/// Stacked bars of (added, modified, deleted) per snapshot.
pub fn changes(title: &str, labels: &[i64], values: &[(u64, u64, u64)]) -> String {
    let max = values.iter().map(|(a, m, d)| (a + m + d) as f64).fold(0.0, f64::max).max(1.0);
    let n = values.len().max(1);
    let slot = (W - PAD_L - 10.0) / n as f64;
    let bw = (slot * 0.7).max(1.0);
    let scale = |v: u64| (H - PAD_B - PAD_T) * v as f64 / max;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg">"#
    );
    axis(&mut s, max, &|v| format!("{v:.0}"));
    for (i, (a, m, d)) in values.iter().enumerate() {
        let x = PAD_L + slot * i as f64 + (slot - bw) / 2.0;
        let mut base = H - PAD_B;
        for (v, color, what) in [(*a, "#16a34a", "added"), (*m, "#f59e0b", "modified"), (*d, "#dc2626", "deleted")] {
            let h = scale(v);
            base -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{base:.1}" width="{bw:.1}" height="{h:.1}" fill="{color}"><title>snapshot {}: {v} {what}</title></rect>"#,
                labels.get(i).copied().unwrap_or(0)
            );
        }
    }
    let step = (n / 10).max(1);
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">#{l}</text>"#,
            PAD_L + slot * (i as f64 + 0.5),
            H - 8.0
        );
    }
    s.push_str(r##"<g font-size="10"><rect x="80" y="2" width="8" height="8" fill="#16a34a"/><text x="92" y="10">added</text><rect x="140" y="2" width="8" height="8" fill="#f59e0b"/><text x="152" y="10">modified</text><rect x="210" y="2" width="8" height="8" fill="#dc2626"/><text x="222" y="10">deleted</text></g></svg>"##);
    s
}

/// Bytes for people: `1.5 GiB`.
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", units[u]) }
}

/// Seconds for people: `3 h`, `2 d`.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}
