//! Retry policy: which failures are retried, and how long to wait before the next attempt.
//!
//! Exponential backoff with full jitter: before retry `n` (1 for the first retry) the client waits a
//! uniformly random time in `[0, min(max_delay, base_delay * 2^(n-1))]`. When the service sends
//! `Retry-After` (seconds, as Azure does on 503 ServerBusy), the client waits that long plus a jitter of up
//! to `base_delay`, capped at `max_retry_after`, so throttled clients do not come back in lockstep.
//!
//! Retried: HTTP 408, 500, 503, and transport failures (connection refused or reset, timeouts, bodies
//! that end early). Everything else (4xx, other 5xx) is returned at once.
//!
//! Every operation is retried the same way, as the Azure SDKs do. For the few that are not idempotent
//! this shows when an attempt succeeded but its answer was lost: a retried Create Share Snapshot may make
//! a second snapshot, a retried rename may answer 404 for its (already moved) source, a retried create
//! may answer 409 AlreadyExists.

use std::time::Duration;

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (at least 1; 1 means no retries).
    pub max_attempts: u32,
    /// The backoff cap for the first retry.
    pub base_delay: Duration,
    /// The largest backoff cap, however many retries.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the backoff before retry `retry` (1-based), ignoring jitter.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay)
    }

    /// The wait before retry `retry` (1-based). `jitter` is a uniform random number in `[0, 1)`;
    /// `retry_after` is the service's `Retry-After`, if any.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let jitter = jitter.clamp(0.0, 1.0);
        match retry_after {
            Some(after) => (after + self.base_delay.mul_f64(jitter)).min(self.max_retry_after),
            None => self.backoff_cap(retry).mul_f64(jitter),
        }
    }

    /// The wait before retry `retry`, with jitter from the thread's random generator.
    pub fn delay_random(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        use rand::RngExt as _;
        self.delay(retry, retry_after, rand::rng().random_range(0.0..1.0))
    }
}

/// True for the statuses that are retried: 408 Request Timeout, 500 (Azure's OperationTimedOut and
/// InternalError), 503 ServerBusy.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 500 | 503)
}

/// Parses `Retry-After` as whole seconds (what Azure sends) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let caps: Vec<u64> = (1..=6).map(|n| p.backoff_cap(n).as_millis() as u64).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff_cap(1000), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_cap() {
        let p = policy();
        assert_eq!(p.delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, None, 0.5), Duration::from_millis(200));
        assert!(p.delay(3, None, 0.999) < Duration::from_millis(400));
        for n in 1..10 {
            let d = p.delay_random(n, None);
            assert!(d <= p.backoff_cap(n), "{d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_with_a_little_jitter_and_capped() {
        let p = policy();
        assert_eq!(p.delay(1, Some(Duration::from_secs(2)), 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(1, Some(Duration::from_secs(2)), 0.5), Duration::from_millis(2050));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600)), 0.0), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 500, 503] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 400, 403, 404, 409, 412, 501, 502] {
            assert!(!is_retryable_status(s));
        }
    }
}
