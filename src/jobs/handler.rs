//! The interface every job kind implements, and what a running job may see and do.
//!
//! # The idempotence contract
//! Delivery is **at least once**: a job may run more than once, concurrently with a worker that lost its
//! lease but has not noticed yet, or again from the start after a crash. A handler must therefore give the
//! same end state however many times it runs, in whole or in part:
//! - write content-addressed or deterministically named objects (re-uploading one is harmless);
//! - commit with one atomic step at the end (a manifest written last, invariant 8), so a half-run leaves
//!   nothing a reader would take for a result;
//! - derive any children it fans out from its payload and the source alone, so a re-run returns the same
//!   children (they are enqueued only when the job's success is recorded, atomically with it).
//!
//! The queue guarantees the rest: at most one claim of a job holds a live lease at a time, and only the
//! claim that holds it can record the job's outcome, so a job's effects in the control plane (its state,
//! its children, its parent's countdown) happen exactly once.

use super::model::{ClaimedJob, JobKind, NewJob};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a handler hands back when it succeeds.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job is done.
    Done,
    /// The job split its work: `children` run in parallel (on any worker), then `commit` runs once all of
    /// them have succeeded. If a child dies or is cancelled, `commit` becomes dead with that child's error.
    /// Children and commit are enqueued atomically with this job's success, and never otherwise.
    FanOut { children: Vec<NewJob>, commit: NewJob },
}

/// Why a handler failed.
#[derive(Debug)]
pub enum JobError {
    /// Worth retrying (throttling, a lost connection): the job is queued again after a backoff, or
    /// dead-lettered once `max_attempts` claims have been used.
    Transient(anyhow::Error),
    /// Retrying cannot help (a malformed payload, a missing share): the job is dead-lettered at once.
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(e.into())
    }
    /// The message recorded in `jobs.last_error`: the error with its causes, on one line.
    pub fn message(&self) -> String {
        match self {
            JobError::Transient(e) | JobError::Permanent(e) => format!("{e:#}"),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::Transient(e.into())
    }
}

/// What a running job can see and do besides its payload.
#[derive(Clone)]
pub struct JobContext {
    pub job: Arc<ClaimedJob>,
    cancel: CancellationToken,
    progress: Arc<watch::Sender<Option<serde_json::Value>>>,
}

impl JobContext {
    /// A context for `job`; the runner keeps `cancel` and the receiving side of `progress`.
    pub fn new(job: ClaimedJob, cancel: CancellationToken, progress: watch::Sender<Option<serde_json::Value>>) -> Self {
        JobContext { job: Arc::new(job), cancel, progress: Arc::new(progress) }
    }

    /// Fires when the job should stop as soon as it safely can: cancellation was requested, the lease was
    /// lost to another worker, or the worker is shutting down past its grace period. Whatever the handler
    /// returns afterwards is discarded (the job is cancelled, or released to run again).
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Report progress (any JSON, e.g. `{"listed": 120000, "bytes": 5e9}`). Cheap: only the latest value is
    /// kept, and the runner stores it with the next heartbeat (`jobs.progress`).
    pub fn progress(&self, value: serde_json::Value) {
        self.progress.send_replace(Some(value));
    }
}

/// A job kind's implementation. See the module documentation for the idempotence contract.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Run the job described by `payload`. Long handlers should watch `ctx.cancelled()`.
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError>;
}

/// The handler for each job kind a worker accepts. A worker claims any kind; a job whose kind has no
/// handler here fails permanently with an error saying so.
#[derive(Clone, Default)]
pub struct Handlers {
    map: HashMap<JobKind, Arc<dyn JobHandler>>,
}

impl Handlers {
    pub fn new() -> Self {
        Handlers::default()
    }

    pub fn with(mut self, kind: JobKind, handler: impl JobHandler) -> Self {
        self.map.insert(kind, Arc::new(handler));
        self
    }

    pub fn get(&self, kind: JobKind) -> Option<Arc<dyn JobHandler>> {
        self.map.get(&kind).cloned()
    }
}
