//! Numbers for people, one way everywhere: the dashboard ([`crate::web`]) and the command line (`afb jobs`)
//! format sizes, counts, rates and durations through these functions only.
//!
//! - Sizes are binary (IEC): 1 KiB = 1024 bytes; one decimal from KiB up (`1.5 GiB`), whole bytes below.
//! - Counts are grouped by thousands with commas (`1,234,567`).
//! - Rates are per second (`12.3 MiB/s`, `1,234 files/s`).
//! - Durations pick two units at most (`850 ms`, `12.3 s`, `3 min 05 s`, `1 h 02 min`, `2 d 03 h`).

const BYTE_UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// A size in bytes: `0 B`, `999 B`, `1.0 KiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    bytes_f64(n as f64)
}

/// A size in bytes given as a float (sums and averages); negative values keep their sign.
pub fn bytes_f64(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let mut v = v.abs();
    let mut u = 0;
    while v >= 1024.0 && u < BYTE_UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    // 1023.96 KiB would print as "1024.0 KiB": step up instead.
    if u > 0 && v >= 1023.95 && u < BYTE_UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{sign}{v:.0} B") } else { format!("{sign}{v:.1} {}", BYTE_UNITS[u]) }
}

/// The power of 1024 whose unit a size of `v` bytes is shown in (0: B, 1: KiB, ...).
fn unit_power(v: f64) -> usize {
    let mut v = v.abs();
    let mut u = 0;
    while v >= 1024.0 && u < BYTE_UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    u
}

/// `v` bytes in the unit `reference` bytes would be shown in, with at most two decimals and no trailing
/// zeros (`0.6 GiB` beside `2.4 GiB`): the labels of one axis share one unit.
pub fn bytes_in_unit_of(v: f64, reference: f64) -> String {
    let u = unit_power(reference);
    let x = v / 1024f64.powi(u as i32);
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {}", BYTE_UNITS[u])
}

/// `v` bytes rounded up to a round number in its binary unit whose quarters are round too (1, 1.2, 1.6,
/// 2, 2.4, 3.2, 4, 4.8, 6 or 8 times a power of ten of that unit): the top of a size axis.
pub fn bytes_axis_max(v: f64) -> f64 {
    if v.is_nan() || v <= 1.0 {
        return 4.0;
    }
    let unit = 1024f64.powi(unit_power(v) as i32);
    let x = v / unit;
    let p = 10f64.powf(x.log10().floor());
    let m = [1.0, 1.2, 1.6, 2.0, 2.4, 3.2, 4.0, 4.8, 6.0, 8.0, 10.0].iter().map(|m| m * p).find(|c| *c >= x - 1e-9);
    m.unwrap_or(10.0 * p) * unit
}

/// A signed change of size: `+1.5 MiB`, `-200 B`, `±0 B`.
pub fn bytes_delta(d: i64) -> String {
    match d {
        0 => "±0 B".to_string(),
        d if d > 0 => format!("+{}", bytes(d as u64)),
        d => bytes_f64(d as f64),
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count: `+1,234`, `-5`, `±0`.
pub fn count_delta(d: i64) -> String {
    match d {
        0 => "±0".to_string(),
        d if d > 0 => format!("+{}", count(d as u64)),
        d => format!("-{}", count(d.unsigned_abs())),
    }
}

/// Bytes per second: `12.3 MiB/s`.
pub fn byte_rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes_f64(bytes_per_sec))
}

/// Things per second, `what` in the plural: `1,234 files/s`, `2.5 files/s` below 10.
pub fn count_rate(per_sec: f64, what: &str) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return format!("– {what}/s");
    }
    if per_sec < 10.0 {
        format!("{per_sec:.1} {what}/s")
    } else {
        format!("{} {what}/s", count(per_sec.round() as u64))
    }
}

/// A duration in seconds: `850 ms`, `12.3 s`, `3 min 05 s`, `1 h 02 min`, `2 d 03 h`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".to_string();
    }
    if secs < 1.0 {
        return format!("{:.0} ms", secs * 1000.0);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    match s {
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {:02} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago, coarsely, from seconds: `45 s`, `12 min`, `3 h`, `2 d`.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A fraction 0..=1 as a percentage with no decimals (`45%`); values outside are clamped.
pub fn percent(fraction: f64) -> String {
    format!("{:.0}%", (fraction.clamp(0.0, 1.0) * 100.0).floor())
}
