//! The queue interface both runners are built on: [`super::memory::MemoryQueue`] (embedded, no database)
//! and [`super::postgres::PgQueue`] (PostgreSQL, for many workers).

use super::model::{ClaimedJob, JobId, JobRecord, NewJob, StateCounts};
use async_trait::async_trait;
use std::time::Duration;

/// Names one claim of a job: the job and the attempt number its claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimRef {
    pub job_id: JobId,
    pub attempt: i32,
}

impl From<&ClaimedJob> for ClaimRef {
    fn from(j: &ClaimedJob) -> Self {
        ClaimRef { job_id: j.job_id, attempt: j.attempt }
    }
}

/// How a claimed job ended, as reported by the worker holding it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Succeeded; with a fan-out, the children and the commit job to enqueue atomically with it.
    Succeeded { claim: ClaimRef, fan_out: Option<(Vec<NewJob>, NewJob)> },
    /// Failed. Queued again after `retry_after` unless `permanent` or the attempts are used up, in which
    /// case it is dead-lettered with `error`.
    Failed { claim: ClaimRef, error: String, permanent: bool, retry_after: Duration },
    /// Stopped because cancellation was requested.
    Cancelled { claim: ClaimRef },
    /// Handed back unfinished (graceful shutdown): queued again at once, and the claim does not count as
    /// an attempt.
    Released { claim: ClaimRef },
}

impl Completion {
    pub fn claim(&self) -> ClaimRef {
        match self {
            Completion::Succeeded { claim, .. }
            | Completion::Failed { claim, .. }
            | Completion::Cancelled { claim }
            | Completion::Released { claim } => *claim,
        }
    }
}

/// The answer to a heartbeat for one held job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseStatus {
    pub claim: ClaimRef,
    /// False if the lease was lost (expired and reclaimed, or the job was finished by someone else):
    /// the worker must stop the job and not report it.
    pub held: bool,
    pub cancel_requested: bool,
}

/// Exponential backoff between attempts: `base * 2^(attempt-1)`, capped at `max`, plus up to 20% jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(600) }
    }
}

impl RetryPolicy {
    /// Delay before the attempt after `attempt` (1-based).
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = (attempt.max(1) - 1).min(30) as u32;
        let d = self.base.saturating_mul(1u32 << exp.min(31)).min(self.max);
        let jitter = rand::random_range(0.0..0.2);
        d.mul_f64(1.0 + jitter)
    }
}

/// A job queue with leases. All methods are safe to call from many workers at once.
///
/// Guarantees every implementation gives:
/// - a job is held by at most one live claim; `claim` never returns a job whose lease has not expired;
/// - `complete` applies an outcome only if the claim still holds the lease (else it is silently dropped);
/// - a claim whose lease expires is queued again (or dead-lettered when its attempts are used up) by
///   `reap_expired`, which every worker calls periodically;
/// - fairness: when several tenants have ready jobs, one claim takes from each in turn (round robin),
///   highest priority first within a tenant.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Enqueue jobs (state `queued`, claimable now) and wake idle workers. Returns the ids of the jobs
    /// created, in order; a job whose `dedupe_key` already exists is skipped and has no id in the result.
    async fn enqueue(&self, jobs: &[NewJob]) -> anyhow::Result<Vec<JobId>>;

    /// Claim up to `max` ready jobs for `worker` with a lease of `lease`.
    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> anyhow::Result<Vec<ClaimedJob>>;

    /// Extend the leases of `held` by `lease` from now, store `progress` where given, and report for each
    /// claim whether it is still held and whether cancellation was requested.
    async fn heartbeat(
        &self,
        worker: &str,
        held: &[(ClaimRef, Option<serde_json::Value>)],
        lease: Duration,
    ) -> anyhow::Result<Vec<LeaseStatus>>;

    /// Record outcomes (in one transaction where the backend has them).
    async fn complete(&self, worker: &str, outcomes: &[Completion]) -> anyhow::Result<()>;

    /// Request cancellation. A queued or waiting job (and a waiting job's unfinished children) is
    /// cancelled at once; a running one is flagged, and its worker stops it. Returns false if the job was
    /// already finished or does not exist.
    async fn cancel(&self, job_id: JobId) -> anyhow::Result<bool>;

    /// Queue again (or dead-letter) jobs whose lease expired. Returns how many were touched.
    async fn reap_expired(&self) -> anyhow::Result<u64>;

    /// Wait until new work may be ready (an enqueue, a commit job released, an expired lease reaped) or
    /// `timeout` passes. Spurious wake-ups are allowed.
    async fn wait_for_work(&self, timeout: Duration);

    /// Wait until cancellation is requested for some job, or `timeout`. Returns the job ids announced
    /// (possibly none, possibly not held by this worker).
    async fn wait_for_cancel(&self, timeout: Duration) -> Vec<JobId>;

    async fn get(&self, job_id: JobId) -> anyhow::Result<Option<JobRecord>>;

    async fn counts(&self) -> anyhow::Result<StateCounts>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap_with_at_most_20_percent_jitter() {
        let p = RetryPolicy { base: Duration::from_secs(2), max: Duration::from_secs(600) };
        for (attempt, base) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 600.0), (40, 600.0)] {
            let d = p.delay(attempt).as_secs_f64();
            assert!(d >= base && d <= base * 1.2, "attempt {attempt}: {d}");
        }
    }
}
