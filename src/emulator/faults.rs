//! Fault injection for the emulator: a layer around the whole service, never inside handlers.
//!
//! Every decision comes from one random generator seeded by [`FaultConfig::seed`]: the same seed and the
//! same order of requests give the same faults. Each request draws the same number of values whatever
//! is decided, so one fault never shifts the decisions of later requests.
//!
//! Faults, in the order they are applied to a request:
//! 1. per-share IOPS cap: over the cap, `503 ServerBusy` with `Retry-After` (like Azure's throttling);
//! 2. added latency (`latency_ms` plus up to `latency_jitter_ms`);
//! 3. connection reset: the TCP connection is aborted with RST before the request is processed;
//! 4. `503 ServerBusy` with `Retry-After`, at `busy_rate`;
//! 5. `500 InternalError`, at `error_rate`;
//! 6. slow response bodies: the body trickles at `slow_body_bytes_per_sec`.
//!
//! Injected failures happen before the request reaches a handler, so a failed request never changed state.

use super::wire::Peer;
use axum::body::Body;
use axum::response::Response;
use http::Request;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which faults to inject. Rates are probabilities per request in [0, 1]; zero turns a fault off.
/// Every option is a flag of `afb emulator` and an environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FaultConfig {
    /// Seed for the fault decisions.
    #[arg(long = "fault-seed", env = "AFB_EMULATOR_FAULT_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long = "fault-latency-ms", env = "AFB_EMULATOR_FAULT_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency of up to this many milliseconds.
    #[arg(long = "fault-latency-jitter-ms", env = "AFB_EMULATOR_FAULT_LATENCY_JITTER_MS", default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Rate of `503 ServerBusy` answers (with `Retry-After`).
    #[arg(long = "fault-busy-rate", env = "AFB_EMULATOR_FAULT_BUSY_RATE", default_value_t = 0.0)]
    pub busy_rate: f64,
    /// Seconds named in `Retry-After` on injected and throttled 503s.
    #[arg(long = "fault-retry-after-secs", env = "AFB_EMULATOR_FAULT_RETRY_AFTER_SECS", default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Rate of `500 InternalError` answers.
    #[arg(long = "fault-error-rate", env = "AFB_EMULATOR_FAULT_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Rate of connection resets (TCP RST before the request is processed).
    #[arg(long = "fault-reset-rate", env = "AFB_EMULATOR_FAULT_RESET_RATE", default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Response bodies trickle at this many bytes per second (0: full speed).
    #[arg(
        long = "fault-slow-body-bytes-per-sec",
        env = "AFB_EMULATOR_FAULT_SLOW_BODY_BYTES_PER_SEC",
        default_value_t = 0
    )]
    pub slow_body_bytes_per_sec: u64,
    /// Requests per second allowed per share (0: unlimited); over it, `503 ServerBusy`.
    #[arg(long = "share-iops-limit", env = "AFB_EMULATOR_SHARE_IOPS_LIMIT", default_value_t = 0)]
    pub share_iops_limit: u32,
}

impl FaultConfig {
    /// True when no fault is configured (the layer is then not installed at all).
    pub fn is_off(&self) -> bool {
        self.latency_ms == 0
            && self.latency_jitter_ms == 0
            && self.busy_rate <= 0.0
            && self.error_rate <= 0.0
            && self.reset_rate <= 0.0
            && self.slow_body_bytes_per_sec == 0
            && self.share_iops_limit == 0
    }
}

/// The fault injector of one emulator: [`Faults::apply`] wraps every request.
pub struct Faults {
    config: FaultConfig,
    rng: Mutex<StdRng>,
    /// Share name -> (start of the current one-second window, requests in it).
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// The random draws of one request, taken together so every request consumes the same amount.
struct Draws {
    jitter: f64,
    reset: f64,
    busy: f64,
    error: f64,
}

impl Faults {
    /// The injector for `config`, or `None` when no fault is configured.
    pub fn for_config(config: FaultConfig) -> Option<Arc<Faults>> {
        if config.is_off() { None } else { Some(Arc::new(Faults::new(config))) }
    }

    fn new(config: FaultConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(config.seed));
        Faults { config, rng, windows: Mutex::new(HashMap::new()) }
    }

    fn draw(&self) -> Draws {
        let mut rng = self.rng.lock().expect("fault rng");
        Draws { jitter: rng.random(), reset: rng.random(), busy: rng.random(), error: rng.random() }
    }

    /// Counts a request against its share's one-second window; false when over the cap.
    fn admit(&self, share: &str) -> bool {
        let limit = self.config.share_iops_limit;
        if limit == 0 || share.is_empty() {
            return true;
        }
        let mut windows = self.windows.lock().expect("iops windows");
        let now = Instant::now();
        let entry = windows.entry(share.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// The share a request addresses: the second path segment of `/{account}/{share}/...`.
fn share_of(path: &str) -> &str {
    path.trim_start_matches('/').split('/').nth(1).unwrap_or("")
}

impl Faults {
    /// Decides the faults for `req` and either answers it with one or passes it to `next` (whose
    /// response may then trickle).
    pub async fn apply<F, Fut>(&self, req: Request<Body>, next: F) -> Response
    where
        F: FnOnce(Request<Body>) -> Fut,
        Fut: Future<Output = Response>,
    {
        let cfg = &self.config;
        let draws = self.draw();
        if !self.admit(share_of(req.uri().path())) {
            return server_busy(cfg, "Operations per second is over the share limit.");
        }
        let latency = cfg.latency_ms as f64 + draws.jitter * cfg.latency_jitter_ms as f64;
        if latency > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(latency / 1000.0)).await;
        }
        if draws.reset < cfg.reset_rate {
            if let Some(peer) = req.extensions().get::<Peer>() {
                reset(peer.fd);
            }
            return error_response(500, "InternalError", "connection reset by fault injection", None);
        }
        if draws.busy < cfg.busy_rate {
            return server_busy(cfg, "The server is currently unable to receive requests. Please retry your request.");
        }
        if draws.error < cfg.error_rate {
            return error_response(
                500,
                "InternalError",
                "The server encountered an internal error. Please retry the request.",
                None,
            );
        }
        let response = next(req).await;
        if cfg.slow_body_bytes_per_sec > 0 { trickle(response, cfg.slow_body_bytes_per_sec) } else { response }
    }
}

/// Aborts a TCP connection with RST: SO_LINGER on with a zero timeout, then shutdown of both directions.
fn reset(fd: RawFd) {
    // SAFETY: the connection that carries the current request is open while its handler runs, so `fd`
    // is a valid socket for the duration of this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    let _ = sock.set_linger(Some(Duration::ZERO));
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

fn server_busy(cfg: &FaultConfig, message: &str) -> Response {
    error_response(503, "ServerBusy", message, Some(cfg.retry_after_secs))
}

fn error_response(status: u16, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nTime:{}</Message></Error>",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-ms-error-code", code)
        .header("date", httpdate::fmt_http_date(std::time::SystemTime::now()));
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(Body::from(body)).expect("static response parts are valid")
}

/// Re-streams a response body in small pieces paced to `bytes_per_sec`.
fn trickle(response: Response, bytes_per_sec: u64) -> Response {
    const PIECE: usize = 4096;
    let (mut parts, body) = response.into_parts();
    // Azure always sends Content-Length; keep it although the body is now streamed.
    // (HEAD responses carry the resource's length with an empty body: leave a length already set.)
    if let (None, Some(len)) =
        (parts.headers.get(axum::http::header::CONTENT_LENGTH), axum::body::HttpBody::size_hint(&body).exact())
    {
        parts.headers.insert(axum::http::header::CONTENT_LENGTH, len.into());
    }
    let pause = Duration::from_secs_f64(PIECE as f64 / bytes_per_sec as f64);
    let stream = futures::stream::unfold(
        (body.into_data_stream(), bytes::Bytes::new()),
        move |(mut inner, mut pending)| async move {
            use futures::StreamExt as _;
            if pending.is_empty() {
                match inner.next().await {
                    Some(Ok(b)) => pending = b,
                    Some(Err(e)) => return Some((Err(e), (inner, pending))),
                    None => return None,
                }
            }
            tokio::time::sleep(pause).await;
            let piece = pending.split_to(pending.len().min(PIECE));
            Some((Ok(piece), (inner, pending)))
        },
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let cfg = FaultConfig { seed: 7, busy_rate: 0.3, ..Default::default() };
        let a = Faults::new(cfg.clone());
        let b = Faults::new(cfg);
        let seq_a: Vec<bool> = (0..100).map(|_| a.draw().busy < 0.3).collect();
        let seq_b: Vec<bool> = (0..100).map(|_| b.draw().busy < 0.3).collect();
        assert_eq!(seq_a, seq_b);
        let hits = seq_a.iter().filter(|x| **x).count();
        assert!((15..=45).contains(&hits), "about 30% of 100 requests are busy, got {hits}");
    }

    #[test]
    fn iops_cap_admits_the_limit_per_share_per_second() {
        let f = Faults::new(FaultConfig { share_iops_limit: 3, ..Default::default() });
        let admitted = (0..5).filter(|_| f.admit("s1")).count();
        assert_eq!(admitted, 3);
        assert!(f.admit("s2"), "another share has its own budget");
        assert!(f.admit(""), "account-level requests are not capped");
    }

    #[test]
    fn share_is_the_second_path_segment() {
        assert_eq!(share_of("/devstoreaccount1/myshare/a/b"), "myshare");
        assert_eq!(share_of("/devstoreaccount1"), "");
    }
}
