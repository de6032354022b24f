//! Jobs: scans, backups, restores, verifies, prunes and compactions as handlers behind one interface,
//! run by an embedded in-process runner or by stateless workers sharing a PostgreSQL queue.
//!
//! - [`model`]: kinds, states, what is enqueued and claimed.
//! - [`payloads`]: what data jobs carry (tenant and share names, restore targets); never secrets.
//! - [`data`]: the scan, backup, restore, verify and commit handlers over a repository ([`data::data_handlers`]).
//! - [`handler`]: the [`JobHandler`] trait and its idempotence contract, [`JobContext`] (cancellation and
//!   progress), fan-out through [`Outcome::FanOut`].
//! - [`progress`]: what a job's progress JSON means for people (phase in words, fraction, rate, ETA).
//! - [`queue`]: the [`Queue`] trait both backends implement, with leases, retries and completions.
//! - [`memory`]: the embedded queue (no database; the single-machine default).
//! - [`embedded`]: the embedded runner: a worker over the memory queue, with `wait_idle`.
//! - [`postgres`]: the PostgreSQL queue (`FOR UPDATE SKIP LOCKED`, LISTEN/NOTIFY).
//! - [`migrate`]: the schema in `sql/migrations/`.
//! - [`worker`]: the runner (claim loop, heartbeats, reaper, graceful shutdown).
//! - [`metrics`]: Prometheus text and health endpoint.
//! - [`schedule`]: cron-like schedules per share that enqueue due jobs.
//! - [`settings`]: each share's Azure source (secrets sealed, never echoed), written by the API, read by
//!   the data handlers.
//! - [`noop`]: the `noop` handler every worker has (benchmarks, smoke and crash tests).
//! - [`bench`]: `afb bench queue`.
//! - [`cli`]: `afb migrate`, `afb worker`, `afb schedule`, `afb jobs`, `afb bench queue`.
//!
//! Design, state machine, deployment and measurements: `docs/jobs.md`.

pub mod bench;
pub mod cli;
pub mod data;
pub mod embedded;
pub mod handler;
pub mod memory;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod noop;
pub mod payloads;
pub mod postgres;
pub mod progress;
pub mod queue;
pub mod schedule;
pub mod settings;
pub mod worker;

pub use handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
pub use memory::MemoryQueue;
pub use model::{ClaimedJob, JobId, JobKind, JobRecord, JobState, NewJob, StateCounts};
pub use postgres::PgQueue;
pub use queue::{ClaimRef, Completion, Queue, RetryPolicy};
pub use worker::{Worker, WorkerConfig};
