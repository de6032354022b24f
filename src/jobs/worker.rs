//! The runner: claims jobs from a [`Queue`], runs their handlers, heartbeats their leases and records
//! their outcomes. The same runner serves the embedded queue and PostgreSQL.
//!
//! Tasks inside one worker:
//! - the claim loop: claims as many jobs as it has free slots (one statement), and when the queue came
//!   back short waits for a wake-up (NOTIFY) or `poll`;
//! - one task per running job;
//! - the heartbeat: every `heartbeat`, extends all held leases in one statement and stops jobs whose lease
//!   was lost or whose cancellation was requested;
//! - the cancel listener: stops a held job as soon as its cancellation is announced;
//! - the completer: writes finished jobs' outcomes, batching those that finish together into one
//!   transaction;
//! - the reaper: every `reap_every`, queues again jobs whose lease expired (their worker died).

use super::handler::{Handlers, JobContext, JobError, Outcome};
use super::metrics::Metrics;
use super::model::{ClaimedJob, JobId};
use super::queue::{ClaimRef, Completion, Queue, RetryPolicy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a worker behaves. All durations are wall-clock.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process (recorded as `jobs.lease_owner`).
    pub worker_id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim stays valid without a heartbeat.
    pub lease: Duration,
    /// Heartbeat period; keep it well under `lease` (default: a third).
    pub heartbeat: Duration,
    /// Longest an idle worker waits before looking again when no NOTIFY arrives (delayed retries).
    pub poll: Duration,
    /// Period of the expired-lease reaper.
    pub reap_every: Duration,
    /// On shutdown, how long running jobs may take to finish before they are stopped and released.
    pub shutdown_grace: Duration,
    pub retry: RetryPolicy,
}

impl WorkerConfig {
    /// Defaults for a worker named `worker_id`: 4 slots, 30 s leases, 10 s heartbeats.
    pub fn new(worker_id: impl Into<String>) -> Self {
        WorkerConfig {
            worker_id: worker_id.into(),
            concurrency: 4,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(2),
            reap_every: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the lease and a heartbeat of a third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.heartbeat = lease / 3;
        self
    }
}

/// A name unique to this process: host, pid and a random suffix.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "local".into());
    format!("{host}-{}-{:06x}", std::process::id(), rand::random::<u32>() & 0xff_ffff)
}

/// Why a held job was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    LeaseLost,
    Shutdown,
}

struct Held {
    claim: ClaimRef,
    token: CancellationToken,
    stop: Option<Stop>,
    progress: watch::Receiver<Option<serde_json::Value>>,
}

type HeldMap = Arc<Mutex<HashMap<JobId, Held>>>;

fn stop(held: &HeldMap, job_id: JobId, why: Stop) {
    if let Some(h) = held.lock().unwrap().get_mut(&job_id) {
        h.stop.get_or_insert(why);
        h.token.cancel();
    }
}

/// A worker over queue `Q`.
pub struct Worker<Q: Queue + ?Sized> {
    queue: Arc<Q>,
    handlers: Handlers,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
}

impl<Q: Queue + ?Sized> Worker<Q> {
    pub fn new(queue: Arc<Q>, handlers: Handlers, config: WorkerConfig) -> Self {
        Worker { queue, handlers, config, metrics: Arc::new(Metrics::default()) }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` fires, then stops claiming, lets running jobs finish for up to
    /// `shutdown_grace`, stops and releases the rest, records every outcome and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let cfg = Arc::new(self.config.clone());
        let held: HeldMap = Arc::default();
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Completion>();
        let background = CancellationToken::new();

        let completer = tokio::spawn(complete_loop(self.queue.clone(), cfg.clone(), self.metrics.clone(), done_rx));
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.queue.clone(),
            cfg.clone(),
            held.clone(),
            self.metrics.clone(),
            background.clone(),
        ));
        let canceller = tokio::spawn(cancel_loop(self.queue.clone(), held.clone(), background.clone()));
        let reaper = tokio::spawn(reap_loop(self.queue.clone(), cfg.clone(), self.metrics.clone(), background.clone()));

        let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let mut running: JoinSet<()> = JoinSet::new();
        let mut failures = 0u32;
        loop {
            while running.try_join_next().is_some() {}
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p?,
                _ = shutdown.cancelled() => break,
            };
            let mut permits = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
            let want = permits.len();
            let started = Instant::now();
            let jobs = match self.queue.claim(&cfg.worker_id, want, cfg.lease).await {
                Ok(j) => {
                    failures = 0;
                    self.metrics.observe_claim(started.elapsed(), j.len());
                    j
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.claim_errors.inc();
                    tracing::warn!("claim failed: {e:#}");
                    drop(permits);
                    let pause = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tokio::select! { _ = tokio::time::sleep(pause) => continue, _ = shutdown.cancelled() => break }
                }
            };
            let got = jobs.len();
            for job in jobs {
                let permit = permits.pop().expect("one permit per claimed job");
                let ctx = self.register(&held, job);
                let run = run_job(
                    ctx,
                    self.handlers.clone(),
                    held.clone(),
                    cfg.clone(),
                    self.queue.clone(),
                    done_tx.clone(),
                    self.metrics.clone(),
                );
                running.spawn(async move {
                    run.await;
                    drop(permit);
                });
            }
            drop(permits);
            if got < want {
                tokio::select! {
                    _ = self.queue.wait_for_work(cfg.poll) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }

        // Graceful shutdown: no more claims; running jobs get the grace period, then are told to stop.
        tracing::info!(worker = %cfg.worker_id, running = running.len(), "shutting down");
        if tokio::time::timeout(cfg.shutdown_grace, drain(&mut running)).await.is_err() {
            let ids: Vec<JobId> = held.lock().unwrap().keys().copied().collect();
            for id in ids {
                stop(&held, id, Stop::Shutdown);
            }
            // Handlers that ignore cancellation are abandoned after a short while and released here.
            if tokio::time::timeout(Duration::from_secs(2), drain(&mut running)).await.is_err() {
                running.abort_all();
                drain(&mut running).await;
                for (_, h) in held.lock().unwrap().drain() {
                    if h.stop != Some(Stop::LeaseLost) {
                        let _ = done_tx.send(Completion::Released { claim: h.claim });
                    }
                }
            }
        }
        drop(done_tx);
        let _ = completer.await;
        background.cancel();
        let _ = tokio::join!(heartbeat, canceller, reaper);
        Ok(())
    }

    fn register(&self, held: &HeldMap, job: ClaimedJob) -> JobContext {
        let token = CancellationToken::new();
        let (progress_tx, progress_rx) = watch::channel(None);
        held.lock().unwrap().insert(
            job.job_id,
            Held { claim: ClaimRef::from(&job), token: token.clone(), stop: None, progress: progress_rx },
        );
        self.metrics.claimed.inc();
        JobContext::new(job, token, progress_tx)
    }
}

async fn drain(set: &mut JoinSet<()>) {
    while set.join_next().await.is_some() {}
}

async fn run_job<Q: Queue + ?Sized>(
    ctx: JobContext,
    handlers: Handlers,
    held: HeldMap,
    cfg: Arc<WorkerConfig>,
    queue: Arc<Q>,
    done: mpsc::UnboundedSender<Completion>,
    metrics: Arc<Metrics>,
) {
    let retry = cfg.retry;
    let job = ctx.job.clone();
    let claim = ClaimRef::from(&*job);
    metrics.running.add(1);
    let result = match handlers.get(job.kind) {
        None => Err(JobError::permanent(anyhow::anyhow!("this worker has no handler for job kind {}", job.kind))),
        Some(h) => {
            // A panic is caught (in its own task) and recorded as a transient failure.
            let (c, payload) = (ctx.clone(), job.payload.clone());
            match tokio::spawn(async move { h.run(&c, &payload).await }).await {
                Ok(r) => r,
                Err(e) => Err(JobError::Transient(anyhow::anyhow!("handler panicked: {e}"))),
            }
        }
    };
    metrics.running.add(-1);
    let (why, last_progress) = match held.lock().unwrap().remove(&job.job_id) {
        Some(mut h) => {
            let p =
                if h.progress.has_changed().unwrap_or(false) { h.progress.borrow_and_update().clone() } else { None };
            (h.stop, p)
        }
        None => (None, None),
    };
    // Progress reported since the last heartbeat (typically the handler's final summary) is stored before
    // the outcome, so `jobs.progress` ends with what the job did. Best effort: the outcome is what counts.
    if why != Some(Stop::LeaseLost)
        && let Some(p) = last_progress
        && let Err(e) = queue.heartbeat(&cfg.worker_id, &[(claim, Some(p))], cfg.lease).await
    {
        tracing::warn!(job = job.job_id, "storing final progress failed: {e:#}");
    }
    let completion = match (why, result) {
        // Someone else holds the job now: whatever we did is theirs to redo; report nothing.
        (Some(Stop::LeaseLost), _) => {
            metrics.lease_lost.inc();
            return;
        }
        (_, Ok(Outcome::Done)) => Completion::Succeeded { claim, fan_out: None },
        (_, Ok(Outcome::FanOut { children, commit })) => {
            Completion::Succeeded { claim, fan_out: Some((children, commit)) }
        }
        (Some(Stop::Cancelled), Err(_)) => Completion::Cancelled { claim },
        (Some(Stop::Shutdown), Err(_)) => Completion::Released { claim },
        (None, Err(e)) => {
            let permanent = matches!(e, JobError::Permanent(_));
            tracing::info!(job = job.job_id, attempt = job.attempt, "job failed: {}", e.message());
            Completion::Failed { claim, error: e.message(), permanent, retry_after: retry.delay(job.attempt) }
        }
    };
    let _ = done.send(completion);
}

async fn complete_loop<Q: Queue + ?Sized>(
    queue: Arc<Q>,
    cfg: Arc<WorkerConfig>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Completion>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let mut tries = 0u32;
        loop {
            match queue.complete(&cfg.worker_id, &batch).await {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    metrics.complete_errors.inc();
                    tracing::warn!("recording {} outcomes failed (try {tries}): {e:#}", batch.len());
                    // Past the lease the outcomes are moot: the jobs will be reaped and run again.
                    if Duration::from_millis(100) * 2u32.pow(tries.min(8)) > cfg.lease {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(tries)).await;
                }
            }
        }
        for c in batch.drain(..) {
            metrics.count_completion(&c);
        }
    }
}

async fn heartbeat_loop<Q: Queue + ?Sized>(
    queue: Arc<Q>,
    cfg: Arc<WorkerConfig>,
    held: HeldMap,
    metrics: Arc<Metrics>,
    stop_all: CancellationToken,
) {
    let mut tick = tokio::time::interval(cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! { _ = tick.tick() => {}, _ = stop_all.cancelled() => return }
        let claims: Vec<(ClaimRef, Option<serde_json::Value>)> = held
            .lock()
            .unwrap()
            .values_mut()
            .map(|h| {
                let p = if h.progress.has_changed().unwrap_or(false) {
                    h.progress.borrow_and_update().clone()
                } else {
                    None
                };
                (h.claim, p)
            })
            .collect();
        if claims.is_empty() {
            continue;
        }
        match queue.heartbeat(&cfg.worker_id, &claims, cfg.lease).await {
            Ok(statuses) => {
                metrics.heartbeat_ok();
                for s in statuses {
                    if !s.held {
                        stop(&held, s.claim.job_id, Stop::LeaseLost);
                    } else if s.cancel_requested {
                        stop(&held, s.claim.job_id, Stop::Cancelled);
                    }
                }
            }
            Err(e) => tracing::warn!("heartbeat failed: {e:#}"),
        }
    }
}

async fn cancel_loop<Q: Queue + ?Sized>(queue: Arc<Q>, held: HeldMap, stop_all: CancellationToken) {
    while !stop_all.is_cancelled() {
        let ids = tokio::select! { ids = queue.wait_for_cancel(Duration::from_secs(1)) => ids, _ = stop_all.cancelled() => return };
        for id in ids {
            stop(&held, id, Stop::Cancelled);
        }
    }
}

async fn reap_loop<Q: Queue + ?Sized>(
    queue: Arc<Q>,
    cfg: Arc<WorkerConfig>,
    metrics: Arc<Metrics>,
    stop_all: CancellationToken,
) {
    let mut tick = tokio::time::interval(cfg.reap_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! { _ = tick.tick() => {}, _ = stop_all.cancelled() => return }
        match queue.reap_expired().await {
            Ok(n) => metrics.reaped.add(n as i64),
            Err(e) => tracing::warn!("reaping expired leases failed: {e:#}"),
        }
    }
}
