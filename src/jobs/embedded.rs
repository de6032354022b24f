//! The embedded runner: the single-machine default. A [`Worker`] over a [`MemoryQueue`] in this process,
//! no database. Callers enqueue jobs, wait until the queue is idle, and read the outcomes.
//!
//! ```no_run
//! # async fn demo(handlers: afb::jobs::Handlers, jobs: Vec<afb::jobs::NewJob>) -> anyhow::Result<()> {
//! use afb::jobs::{Queue, embedded::EmbeddedRunner};
//! let runner = EmbeddedRunner::start(handlers, 4);
//! runner.queue().enqueue(&jobs).await?;
//! let counts = runner.wait_idle().await?; // fan-outs and retries included
//! runner.shutdown().await?;
//! # Ok(()) }
//! ```

use super::handler::Handlers;
use super::memory::MemoryQueue;
use super::model::StateCounts;
use super::queue::Queue;
use super::worker::{Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct EmbeddedRunner {
    queue: Arc<MemoryQueue>,
    stop: CancellationToken,
    worker: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl EmbeddedRunner {
    /// Starts a worker running up to `concurrency` jobs at once. Retries back off from 1 s.
    pub fn start(handlers: Handlers, concurrency: usize) -> Self {
        let queue = Arc::new(MemoryQueue::new());
        let mut cfg = WorkerConfig::new("embedded");
        cfg.concurrency = concurrency.max(1);
        cfg.retry.base = Duration::from_secs(1);
        cfg.poll = Duration::from_millis(200);
        let stop = CancellationToken::new();
        let worker = tokio::spawn(Worker::new(queue.clone(), handlers, cfg).run(stop.clone()));
        EmbeddedRunner { queue, stop, worker }
    }

    /// The queue to enqueue into and inspect.
    pub fn queue(&self) -> &Arc<MemoryQueue> {
        &self.queue
    }

    /// Resolves when no job is waiting, queued or running (checked every 10 ms); returns the counts.
    pub async fn wait_idle(&self) -> anyhow::Result<StateCounts> {
        loop {
            let c = self.queue.counts().await?;
            if c.unfinished() == 0 {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the worker (running jobs get its shutdown grace, then are released) and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.worker.await?
    }
}
