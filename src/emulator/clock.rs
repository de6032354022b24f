//! Time in the emulator: one unit, 100-nanosecond ticks since the Unix epoch (`i64`), the resolution of
//! SMB/NTFS times, formatted the ways Azure Files does.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 100 ns ticks per second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks between 1601-01-01 (Windows FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: i64 = 116_444_736_000_000_000;

/// A strictly increasing clock: every call returns a tick later than the one before, so each change gets
/// a distinct `ETag` and `Last-Modified` order follows change order.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        let wall = wall_ticks();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = wall.max(prev + 1);
            match self.last.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// The current wall-clock time in ticks.
pub fn wall_ticks() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_nanos() / 100) as i64
}

fn to_datetime(ticks: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ticks as i128 * 100).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// ISO 8601 with exactly seven fractional digits, as Azure sends SMB times and snapshot ids:
/// `2026-11-25T14:43:24.1234567Z`.
pub fn iso7(ticks: i64) -> String {
    // The same wire format the client writes: one formatter for both sides.
    crate::azure::format_file_time(to_datetime(ticks))
}

/// Appends [`iso7`] of `ticks` to `out`.
pub fn push_iso7(out: &mut String, ticks: i64) {
    crate::azure::model::write_file_time(out, to_datetime(ticks))
}

/// RFC 1123 (`Wed, 25 Nov 2026 14:43:24 GMT`), as in `Last-Modified` and `Date`.
pub fn rfc1123(ticks: i64) -> String {
    let secs = ticks.div_euclid(TICKS_PER_SECOND);
    let t = if secs >= 0 { UNIX_EPOCH + std::time::Duration::from_secs(secs as u64) } else { UNIX_EPOCH };
    httpdate::fmt_http_date(t)
}

/// Parses an ISO 8601 UTC time with 0 to 7 (or more, truncated) fractional digits, e.g.
/// `2026-11-25T14:43:24.1234567Z`, into ticks. `None` if it is not such a time.
pub fn parse_iso(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 100) as i64)
}

/// Parses a SAS time: ISO 8601 UTC (`2030-01-01T00:00:00Z`) or a date (`2030-01-01`).
pub fn parse_sas_time(s: &str) -> Option<i64> {
    if let Some(t) = parse_iso(s) {
        return Some(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).ok()?;
    Some((d.midnight().assume_utc().unix_timestamp_nanos() / 100) as i64)
}

/// The quoted ETag for a change made at `ticks`: the Windows FILETIME in hex, like Azure's `"0x8DC…"`.
pub fn etag(ticks: i64) -> String {
    format!("\"0x{:X}\"", ticks + FILETIME_UNIX_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso7_round_trips_and_has_seven_digits() {
        let t = parse_iso("2026-11-25T14:43:24.1234567Z").unwrap();
        assert_eq!(iso7(t), "2026-11-25T14:43:24.1234567Z");
        assert_eq!(iso7(parse_iso("2026-11-25T14:43:24Z").unwrap()), "2026-11-25T14:43:24.0000000Z");
        assert_eq!(iso7(parse_iso("2026-11-25T14:43:24.5Z").unwrap()), "2026-11-25T14:43:24.5000000Z");
        assert_eq!(parse_sas_time("2030-01-01"), parse_iso("2030-01-01T00:00:00Z"));
        assert_eq!(rfc1123(t), "Wed, 25 Nov 2026 14:43:24 GMT");
    }

    #[test]
    fn clock_is_strictly_increasing() {
        let c = Clock::default();
        let a = c.now();
        let b = c.now();
        assert!(b > a);
    }
}
