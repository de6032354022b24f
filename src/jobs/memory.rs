//! The embedded queue: the same semantics as [`super::postgres::PgQueue`] in one process's memory, for
//! single-machine use with no database. Nothing survives the process; handlers' idempotence makes a
//! re-run after a restart safe.

use super::model::{ClaimedJob, JobId, JobKind, JobRecord, JobState, NewJob, ShareId, StateCounts, TenantId};
use super::queue::{ClaimRef, Completion, LeaseStatus, Queue};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

struct Job {
    tenant_id: TenantId,
    share_id: Option<ShareId>,
    kind: JobKind,
    payload: serde_json::Value,
    state: JobState,
    priority: i16,
    attempts: i32,
    max_attempts: i32,
    run_at: Instant,
    lease_owner: Option<String>,
    lease_expires: Option<Instant>,
    cancel_requested: bool,
    last_error: Option<String>,
    parent_id: Option<JobId>,
    pending_children: i32,
    progress: Option<serde_json::Value>,
    /// Enqueue time, µs since the epoch.
    created_us: i64,
    /// First claim and end (terminal state), µs since the epoch.
    started_us: Option<i64>,
    finished_us: Option<i64>,
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<JobId, Job>,
    next_id: JobId,
    dedupe: HashSet<String>,
    tenant_cursor: Option<TenantId>,
    cancels: Vec<JobId>,
}

/// The in-process queue.
#[derive(Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    work: Notify,
    cancel: Notify,
}

fn wake(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

impl MemoryQueue {
    pub fn new() -> Self {
        MemoryQueue::default()
    }
}

impl State {
    fn insert(&mut self, jobs: &[NewJob], state: JobState, parent: Option<JobId>, pending: i32) -> Vec<JobId> {
        let mut ids = Vec::new();
        for j in jobs {
            if let Some(k) = &j.dedupe_key
                && !self.dedupe.insert(k.clone())
            {
                continue;
            }
            self.next_id += 1;
            let id = self.next_id;
            self.jobs.insert(
                id,
                Job {
                    tenant_id: j.tenant_id,
                    share_id: j.share_id,
                    kind: j.kind,
                    payload: j.payload.clone(),
                    state,
                    priority: j.priority,
                    attempts: 0,
                    max_attempts: j.max_attempts.max(1),
                    run_at: Instant::now(),
                    lease_owner: None,
                    lease_expires: None,
                    cancel_requested: false,
                    last_error: None,
                    parent_id: parent,
                    pending_children: pending,
                    progress: None,
                    created_us: now_us(),
                    started_us: None,
                    finished_us: None,
                },
            );
            ids.push(id);
        }
        ids
    }

    /// The job if `worker` holds it under `claim`.
    fn held(&mut self, worker: &str, claim: ClaimRef) -> Option<&mut Job> {
        self.jobs.get_mut(&claim.job_id).filter(|j| {
            j.state == JobState::Running && j.attempts == claim.attempt && j.lease_owner.as_deref() == Some(worker)
        })
    }

    fn finish(j: &mut Job, state: JobState) {
        if state.is_terminal() {
            j.finished_us = Some(now_us());
        }
        j.state = state;
        j.lease_owner = None;
        j.lease_expires = None;
    }

    /// A child reached a terminal state: update its commit job. Returns true if the parent became queued.
    fn settle_parent(&mut self, parent: Option<JobId>, child: JobId, state: JobState, error: Option<String>) -> bool {
        let Some(p) = parent.and_then(|p| self.jobs.get_mut(&p)) else { return false };
        if p.state != JobState::Waiting {
            return false;
        }
        match state {
            JobState::Succeeded => {
                p.pending_children -= 1;
                if p.pending_children <= 0 {
                    p.state = JobState::Queued;
                    p.run_at = Instant::now();
                    return true;
                }
            }
            s => {
                p.state = if s == JobState::Cancelled { JobState::Cancelled } else { JobState::Dead };
                p.finished_us = Some(now_us());
                p.last_error = Some(format!(
                    "child job {child} {}: {}",
                    s.as_str(),
                    error.as_deref().unwrap_or("no error recorded")
                ));
            }
        }
        false
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn enqueue(&self, jobs: &[NewJob]) -> anyhow::Result<Vec<JobId>> {
        let ids = self.state.lock().unwrap().insert(jobs, JobState::Queued, None, 0);
        wake(&self.work);
        Ok(ids)
    }

    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> anyhow::Result<Vec<ClaimedJob>> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        // Ready jobs per tenant, best first.
        let mut ready: BTreeMap<TenantId, Vec<(i16, JobId)>> = BTreeMap::new();
        for (id, j) in &st.jobs {
            if j.state == JobState::Queued && j.run_at <= now {
                ready.entry(j.tenant_id).or_default().push((j.priority, *id));
            }
        }
        // Round robin: tenants after the cursor first, then from the start; at most `max` tenants.
        let cursor = st.tenant_cursor.unwrap_or(TenantId::MIN);
        let mut chosen: Vec<TenantId> = ready.keys().copied().filter(|t| *t > cursor).collect();
        chosen.extend(ready.keys().copied().filter(|t| *t <= cursor));
        chosen.truncate(max);
        let per_tenant = max.div_ceil(chosen.len().max(1));
        let mut picked: Vec<(usize, i16, usize, JobId)> = Vec::new();
        for (turn, t) in chosen.iter().enumerate() {
            let list = ready.get_mut(t).unwrap();
            list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (rank, (prio, id)) in list.iter().take(per_tenant).enumerate() {
                picked.push((rank, *prio, turn, *id));
            }
        }
        picked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        picked.truncate(max);
        let mut out = Vec::new();
        let mut last_turn = None;
        for (_, _, turn, id) in picked {
            let j = st.jobs.get_mut(&id).unwrap();
            j.state = JobState::Running;
            j.started_us = j.started_us.or(Some(now_us()));
            j.attempts += 1;
            j.lease_owner = Some(worker.to_string());
            j.lease_expires = Some(now + lease);
            out.push(ClaimedJob {
                job_id: id,
                tenant_id: j.tenant_id,
                share_id: j.share_id,
                kind: j.kind,
                payload: j.payload.clone(),
                priority: j.priority,
                attempt: j.attempts,
                max_attempts: j.max_attempts,
                created_us: j.created_us,
            });
            if last_turn.is_none_or(|t| turn >= t) {
                last_turn = Some(turn);
                st.tenant_cursor = Some(chosen[turn]);
            }
        }
        Ok(out)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        held: &[(ClaimRef, Option<serde_json::Value>)],
        lease: Duration,
    ) -> anyhow::Result<Vec<LeaseStatus>> {
        let mut st = self.state.lock().unwrap();
        Ok(held
            .iter()
            .map(|(claim, progress)| match st.held(worker, *claim) {
                Some(j) => {
                    j.lease_expires = Some(Instant::now() + lease);
                    if progress.is_some() {
                        j.progress = progress.clone();
                    }
                    LeaseStatus { claim: *claim, held: true, cancel_requested: j.cancel_requested }
                }
                None => LeaseStatus { claim: *claim, held: false, cancel_requested: false },
            })
            .collect())
    }

    async fn complete(&self, worker: &str, outcomes: &[Completion]) -> anyhow::Result<()> {
        let mut st = self.state.lock().unwrap();
        let mut notify = false;
        for o in outcomes {
            let claim = o.claim();
            let Some(j) = st.held(worker, claim) else { continue };
            let parent = j.parent_id;
            match o {
                Completion::Succeeded { fan_out: None, .. } => {
                    State::finish(j, JobState::Succeeded);
                    notify |= st.settle_parent(parent, claim.job_id, JobState::Succeeded, None);
                }
                Completion::Succeeded { fan_out: Some((children, commit)), .. } => {
                    State::finish(j, JobState::Succeeded);
                    let n = children.len() as i32;
                    let state = if n == 0 { JobState::Queued } else { JobState::Waiting };
                    // The commit job takes this job's place under its parent (nested fan-out).
                    if let Some(&commit_id) = st.insert(std::slice::from_ref(commit), state, parent, n).first() {
                        st.insert(children, JobState::Queued, Some(commit_id), 0);
                    }
                    notify = true;
                }
                Completion::Failed { error, permanent, retry_after, .. } => {
                    let dead = *permanent || j.attempts >= j.max_attempts;
                    j.last_error = Some(error.clone());
                    if dead {
                        State::finish(j, JobState::Dead);
                        notify |= st.settle_parent(parent, claim.job_id, JobState::Dead, Some(error.clone()));
                    } else {
                        State::finish(j, JobState::Queued);
                        j.run_at = Instant::now() + *retry_after;
                    }
                }
                Completion::Cancelled { .. } => {
                    State::finish(j, JobState::Cancelled);
                    notify |= st.settle_parent(parent, claim.job_id, JobState::Cancelled, Some("cancelled".into()));
                }
                Completion::Released { .. } => {
                    State::finish(j, JobState::Queued);
                    j.attempts -= 1;
                    j.run_at = Instant::now();
                    notify = true;
                }
            }
        }
        drop(st);
        if notify {
            wake(&self.work);
        }
        Ok(())
    }

    async fn cancel(&self, job_id: JobId) -> anyhow::Result<bool> {
        let mut st = self.state.lock().unwrap();
        if st.jobs.get(&job_id).is_none_or(|j| j.state.is_terminal()) {
            return Ok(false);
        }
        let mut todo = vec![job_id];
        let mut running = Vec::new();
        while let Some(id) = todo.pop() {
            todo.extend(st.jobs.iter().filter(|(_, j)| j.parent_id == Some(id)).map(|(cid, _)| *cid));
            let Some(j) = st.jobs.get_mut(&id) else { continue };
            match j.state {
                JobState::Queued | JobState::Waiting => {
                    j.state = JobState::Cancelled;
                    j.finished_us = Some(now_us());
                    j.cancel_requested = true;
                }
                JobState::Running => {
                    j.cancel_requested = true;
                    running.push(id);
                }
                _ => {}
            }
        }
        st.cancels.extend(running);
        drop(st);
        wake(&self.cancel);
        Ok(true)
    }

    async fn reap_expired(&self) -> anyhow::Result<u64> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        let expired: Vec<JobId> = st
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Running && j.lease_expires.is_some_and(|t| t < now))
            .map(|(id, _)| *id)
            .collect();
        let mut notify = false;
        for id in &expired {
            let j = st.jobs.get_mut(id).unwrap();
            let msg = format!(
                "lease expired: worker {} stopped heartbeating on attempt {} of {}",
                j.lease_owner.as_deref().unwrap_or("?"),
                j.attempts,
                j.max_attempts
            );
            j.last_error = Some(msg.clone());
            let state = if j.cancel_requested {
                JobState::Cancelled
            } else if j.attempts >= j.max_attempts {
                JobState::Dead
            } else {
                JobState::Queued
            };
            State::finish(j, state);
            j.run_at = now;
            let parent = j.parent_id;
            if state == JobState::Queued {
                notify = true;
            } else {
                st.settle_parent(parent, *id, state, Some(msg));
            }
        }
        drop(st);
        if notify {
            wake(&self.work);
        }
        Ok(expired.len() as u64)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }

    async fn wait_for_cancel(&self, timeout: Duration) -> Vec<JobId> {
        {
            let mut st = self.state.lock().unwrap();
            if !st.cancels.is_empty() {
                return std::mem::take(&mut st.cancels);
            }
        }
        let _ = tokio::time::timeout(timeout, self.cancel.notified()).await;
        std::mem::take(&mut self.state.lock().unwrap().cancels)
    }

    async fn get(&self, job_id: JobId) -> anyhow::Result<Option<JobRecord>> {
        let st = self.state.lock().unwrap();
        Ok(st.jobs.get(&job_id).map(|j| JobRecord {
            job_id,
            tenant_id: j.tenant_id,
            share_id: j.share_id,
            kind: j.kind,
            state: j.state,
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            last_error: j.last_error.clone(),
            parent_id: j.parent_id,
            pending_children: j.pending_children,
            cancel_requested: j.cancel_requested,
            progress: j.progress.clone(),
            started_us: j.started_us,
            finished_us: j.finished_us,
        }))
    }

    async fn counts(&self) -> anyhow::Result<StateCounts> {
        let st = self.state.lock().unwrap();
        let mut c = StateCounts::default();
        for j in st.jobs.values() {
            c.add(j.state, 1);
        }
        Ok(c)
    }
}
