//! Worker metrics in the Prometheus text format, and the health and metrics HTTP endpoint.

use super::model::StateCounts;
use super::queue::Completion;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A counter or gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicI64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one worker process has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    pub claimed: Counter,
    pub succeeded: Counter,
    /// Failures that will be retried or were dead-lettered (the queue decides which).
    pub failed: Counter,
    pub cancelled: Counter,
    pub released: Counter,
    pub lease_lost: Counter,
    pub reaped: Counter,
    pub claim_errors: Counter,
    pub complete_errors: Counter,
    /// Jobs running now (a gauge).
    pub running: Counter,
    claim_calls: Counter,
    /// Sum of claim round-trip times, in microseconds.
    claim_micros: Counter,
    /// Unix time in seconds of the last successful claim or heartbeat: health.
    last_ok: AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Metrics {
    pub fn observe_claim(&self, took: Duration, _jobs: usize) {
        self.claim_calls.inc();
        self.claim_micros.add(took.as_micros() as i64);
        self.last_ok.store(now_secs(), Ordering::Relaxed);
    }

    pub fn heartbeat_ok(&self) {
        self.last_ok.store(now_secs(), Ordering::Relaxed);
    }

    pub fn count_completion(&self, c: &Completion) {
        match c {
            Completion::Succeeded { .. } => self.succeeded.inc(),
            Completion::Failed { .. } => self.failed.inc(),
            Completion::Cancelled { .. } => self.cancelled.inc(),
            Completion::Released { .. } => self.released.inc(),
        }
    }

    /// Healthy if the queue answered within `max_silence`.
    pub fn healthy(&self, max_silence: Duration) -> bool {
        now_secs().saturating_sub(self.last_ok.load(Ordering::Relaxed)) <= max_silence.as_secs()
    }

    /// The Prometheus text exposition, with queue depths if given.
    pub fn render(&self, queue: Option<&StateCounts>) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: i64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"));
        };
        counter("afb_jobs_claimed_total", "Jobs claimed by this worker.", "counter", self.claimed.get());
        counter(
            "afb_jobs_succeeded_total",
            "Jobs this worker completed successfully.",
            "counter",
            self.succeeded.get(),
        );
        counter(
            "afb_jobs_failed_total",
            "Job attempts that failed (retried or dead-lettered).",
            "counter",
            self.failed.get(),
        );
        counter("afb_jobs_cancelled_total", "Jobs stopped on a cancellation request.", "counter", self.cancelled.get());
        counter("afb_jobs_released_total", "Jobs handed back unfinished at shutdown.", "counter", self.released.get());
        counter(
            "afb_jobs_lease_lost_total",
            "Jobs whose lease was lost while running.",
            "counter",
            self.lease_lost.get(),
        );
        counter(
            "afb_jobs_reaped_total",
            "Expired leases this worker queued again or dead-lettered.",
            "counter",
            self.reaped.get(),
        );
        counter(
            "afb_jobs_claim_errors_total",
            "Claims that failed (database unreachable...).",
            "counter",
            self.claim_errors.get(),
        );
        counter("afb_jobs_complete_errors_total", "Outcome writes that failed.", "counter", self.complete_errors.get());
        counter("afb_jobs_running", "Jobs running in this worker now.", "gauge", self.running.get());
        counter("afb_jobs_claim_calls_total", "Claim statements issued.", "counter", self.claim_calls.get());
        out.push_str(&format!(
            "# HELP afb_jobs_claim_seconds_total Time spent in claim statements.\n# TYPE afb_jobs_claim_seconds_total counter\nafb_jobs_claim_seconds_total {:.6}\n",
            self.claim_micros.get() as f64 / 1e6
        ));
        if let Some(q) = queue {
            out.push_str("# HELP afb_jobs_queue_jobs Jobs in the queue by state.\n# TYPE afb_jobs_queue_jobs gauge\n");
            for (state, n) in [
                ("waiting", q.waiting),
                ("queued", q.queued),
                ("running", q.running),
                ("succeeded", q.succeeded),
                ("dead", q.dead),
                ("cancelled", q.cancelled),
            ] {
                out.push_str(&format!("afb_jobs_queue_jobs{{state=\"{state}\"}} {n}\n"));
            }
        }
        out
    }
}

/// Source of queue depths for `/metrics` (None when unavailable).
pub type DepthFn = Arc<dyn Fn() -> futures::future::BoxFuture<'static, Option<StateCounts>> + Send + Sync>;

/// Serves `GET /healthz` (200 `ok`, or 503 when the queue has not answered for 60 s) and `GET /metrics`
/// on `addr` until `shutdown` fires.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    depth: Option<DepthFn>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::{Router, http::StatusCode, routing::get};
    let m1 = metrics.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let m = m1.clone();
                async move {
                    if m.healthy(Duration::from_secs(60)) {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "queue unreachable\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let (m, d) = (metrics.clone(), depth.clone());
                async move {
                    let q = match d {
                        Some(f) => f().await,
                        None => None,
                    };
                    ([("content-type", "text/plain; version=0.0.4")], m.render(q.as_ref()))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding metrics address {addr}: {e}"))?;
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}
