//! The job model shared by every runner: kinds, states, what is enqueued and what a worker holds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Database identity of a job (`jobs.job_id`).
pub type JobId = i64;
/// Tenant identity (`tenants.tenant_id`); fairness is computed per tenant.
pub type TenantId = i64;
/// Share identity (`shares.share_id`).
pub type ShareId = i64;

/// What a job does. Stored as its snake_case name in `jobs.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// List a share (or a subtree of it) and write node rows.
    Scan,
    /// Upload the content and metadata of nodes a diff named.
    Backup,
    /// Write a snapshot (or part of it) back to a share or a directory.
    Restore,
    /// Check a snapshot's objects against its manifest.
    Verify,
    /// Delete snapshots a retention policy no longer keeps.
    Prune,
    /// Rewrite small packs or index fragments into larger ones.
    Compact,
    /// Merge the results of a fan-out's children into one atomic commit; runs once all children succeeded.
    Commit,
    /// Does nothing (optionally sleeps `payload.sleep_ms` milliseconds): benchmarks and smoke tests.
    Noop,
}

impl JobKind {
    pub const ALL: [JobKind; 8] = [
        JobKind::Scan,
        JobKind::Backup,
        JobKind::Restore,
        JobKind::Verify,
        JobKind::Prune,
        JobKind::Compact,
        JobKind::Commit,
        JobKind::Noop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Scan => "scan",
            JobKind::Backup => "backup",
            JobKind::Restore => "restore",
            JobKind::Verify => "verify",
            JobKind::Prune => "prune",
            JobKind::Compact => "compact",
            JobKind::Commit => "commit",
            JobKind::Noop => "noop",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown job kind {s:?} (expected one of scan, backup, restore, verify, prune, compact, commit, noop)"
            )
        })
    }
}

/// Where a job is in its life. Stored as its snake_case name in `jobs.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// A commit job waiting for its children; becomes `Queued` when the last child succeeds.
    Waiting,
    /// Claimable once `run_at` has passed.
    Queued,
    /// Held by a worker under a lease.
    Running,
    Succeeded,
    /// Gave up: attempts exhausted, a permanent error, or a child that died. `last_error` says why.
    Dead,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True for states a job never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Dead | JobState::Cancelled)
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "waiting" => JobState::Waiting,
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            _ => return Err(format!("unknown job state {s:?}")),
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub tenant_id: TenantId,
    pub share_id: Option<ShareId>,
    pub kind: JobKind,
    /// Handler input; opaque to the queue.
    pub payload: serde_json::Value,
    /// Higher runs first within a tenant. Across tenants, fairness comes first (see `docs/jobs.md`).
    pub priority: i16,
    /// Claims allowed before the job is dead-lettered (>= 1).
    pub max_attempts: i32,
    /// If set, enqueueing a second job with the same key does nothing (returns no id for it).
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// A job with priority 0, 5 attempts and no share, dedupe key.
    pub fn new(tenant_id: TenantId, kind: JobKind, payload: serde_json::Value) -> Self {
        NewJob { tenant_id, share_id: None, kind, payload, priority: 0, max_attempts: 5, dedupe_key: None }
    }
    pub fn share(mut self, share_id: ShareId) -> Self {
        self.share_id = Some(share_id);
        self
    }
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A job a worker has claimed. `attempt` (1 for the first claim) together with `job_id` names this claim:
/// every later write about the job (heartbeat, completion) is ignored unless both still match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedJob {
    pub job_id: JobId,
    pub tenant_id: TenantId,
    pub share_id: Option<ShareId>,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub priority: i16,
    pub attempt: i32,
    pub max_attempts: i32,
    /// When the job was enqueued, µs since the epoch. With `job_id` it names the job uniquely even across
    /// queues whose ids start again at 1 (an embedded queue after a restart, a re-created database).
    pub created_us: i64,
}

/// A job row as seen by an observer (CLI, API, tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: JobId,
    pub tenant_id: TenantId,
    pub share_id: Option<ShareId>,
    pub kind: JobKind,
    pub state: JobState,
    pub priority: i16,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub parent_id: Option<JobId>,
    pub pending_children: i32,
    pub cancel_requested: bool,
    pub progress: Option<serde_json::Value>,
    /// When the job was first claimed and when it reached a terminal state, µs since the epoch.
    #[serde(default)]
    pub started_us: Option<i64>,
    #[serde(default)]
    pub finished_us: Option<i64>,
}

/// Number of jobs in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub waiting: u64,
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub cancelled: u64,
}

impl StateCounts {
    pub fn add(&mut self, state: JobState, n: u64) {
        match state {
            JobState::Waiting => self.waiting += n,
            JobState::Queued => self.queued += n,
            JobState::Running => self.running += n,
            JobState::Succeeded => self.succeeded += n,
            JobState::Dead => self.dead += n,
            JobState::Cancelled => self.cancelled += n,
        }
    }
    /// Jobs not yet in a terminal state.
    pub fn unfinished(&self) -> u64 {
        self.waiting + self.queued + self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_round_trip_through_their_names() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        for s in ["waiting", "queued", "running", "succeeded", "dead", "cancelled"] {
            assert_eq!(s.parse::<JobState>().unwrap().as_str(), s);
        }
        assert!("reindex".parse::<JobKind>().unwrap_err().contains("reindex"));
    }
}
