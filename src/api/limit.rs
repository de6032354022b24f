//! A small, bounded, in-memory limiter of failed token checks (API bearer tokens and `/login`).
//!
//! Failures are counted in fixed windows per key: the client's address (`addr:IP`) and the first
//! characters of the token tried (`token:afb_0123abcd`). Once a key has [`FAILURES_PER_WINDOW`] failures in
//! its current window, every check with that key is refused (429 with `Retry-After`) until the window
//! ends, even with a valid token. The map holds at most [`MAX_KEYS`] keys: expired windows are dropped
//! first, then the oldest window. Tokens are 256-bit random values, so this limits noise and log floods
//! rather than guessing; behind a proxy every client shares the proxy's address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts a key may make per window.
pub const FAILURES_PER_WINDOW: u32 = 10;
/// The length of a window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys held at most.
pub const MAX_KEYS: usize = 10_000;
/// Characters of a token that name its key (`afb_` and 8 hex digits).
const TOKEN_PREFIX: usize = 12;

pub struct Limiter {
    max: u32,
    window: Duration,
    cap: usize,
    /// key -> (start of its window, failures in it)
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

/// The keys a check from `addr` with `token` counts against.
pub fn keys(addr: Option<IpAddr>, token: &str) -> Vec<String> {
    let mut k = Vec::with_capacity(2);
    if let Some(a) = addr {
        k.push(format!("addr:{a}"));
    }
    let prefix: String = token.trim().chars().take(TOKEN_PREFIX).collect();
    k.push(format!("token:{prefix}"));
    k
}

impl Limiter {
    pub fn new(max: u32, window: Duration, cap: usize) -> Self {
        Limiter { max, window, cap: cap.max(1), failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry after)` if one of `keys` has used up its failures in its current window.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let now = Instant::now();
        let m = self.failures.lock().expect("limiter lock");
        let wait = keys
            .iter()
            .filter_map(|k| m.get(k))
            .filter(|(start, n)| *n >= self.max && now < *start + self.window)
            .map(|(start, _)| *start + self.window - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Count one failure against each of `keys`.
    pub fn fail(&self, keys: &[String]) {
        let now = Instant::now();
        let mut m = self.failures.lock().expect("limiter lock");
        for k in keys {
            if !m.contains_key(k) && m.len() >= self.cap {
                m.retain(|_, (start, _)| now < *start + self.window);
                if m.len() >= self.cap
                    && let Some(oldest) = m.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
            let e = m.entry(k.clone()).or_insert((now, 0));
            if now >= e.0 + self.window {
                *e = (now, 0);
            }
            e.1 = e.1.saturating_add(1);
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.failures.lock().expect("limiter lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_after_max_failures_and_stays_bounded() {
        let l = Limiter::new(3, Duration::from_secs(60), 100);
        let k = keys(Some("10.0.0.1".parse().unwrap()), "afb_0123456789abcdef");
        assert_eq!(k, ["addr:10.0.0.1", "token:afb_01234567"]);
        for _ in 0..3 {
            assert!(l.check(&k).is_ok());
            l.fail(&k);
        }
        let wait = l.check(&k).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
        // The same address with another token is limited too; another address and token is not.
        assert!(l.check(&keys(Some("10.0.0.1".parse().unwrap()), "afb_ffff")).is_err());
        assert!(l.check(&keys(Some("10.0.0.2".parse().unwrap()), "afb_ffff")).is_ok());
        for i in 0..1000 {
            l.fail(&[format!("addr:{i}")]);
        }
        assert!(l.len() <= 100, "{}", l.len());
        // A window that has ended starts again.
        let l = Limiter::new(1, Duration::from_millis(10), 10);
        l.fail(&k);
        assert!(l.check(&k).is_err());
        std::thread::sleep(Duration::from_millis(20));
        assert!(l.check(&k).is_ok());
    }
}
