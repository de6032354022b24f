//! The queue's contract, run against both backends (embedded memory queue and PostgreSQL).

use crate::support::jobs::{Backend, eventually, queue};
use afb::jobs::{
    ClaimRef, Completion, Handlers, JobContext, JobError, JobHandler, JobKind, JobState, NewJob, Outcome, Queue,
    Worker, WorkerConfig,
};
use async_trait::async_trait;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Generates `<scenario>::memory` and `<scenario>::postgres` tests.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() { super::$name(super::Backend::Memory).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(super::Backend::Postgres).await }
        }
    )*};
}

on_both_backends!(
    two_workers_never_hold_the_same_job,
    an_expired_lease_is_taken_over_and_the_old_holder_can_no_longer_complete,
    a_poisoned_job_lands_in_dead_letter_with_its_error,
    a_permanent_error_dead_letters_without_retrying,
    cancelling_a_queued_job_means_it_never_runs,
    cancelling_a_running_job_stops_its_handler_promptly,
    one_huge_tenant_does_not_starve_the_others,
    higher_priority_runs_first_within_a_tenant,
    an_enqueue_wakes_an_idle_worker_at_once,
    a_commit_job_runs_once_after_all_children_succeeded,
    a_dead_child_makes_its_commit_job_dead,
    graceful_shutdown_releases_unfinished_jobs_without_using_an_attempt,
    a_dedupe_key_enqueues_once,
);

fn noop(tenant: i64) -> NewJob {
    NewJob::new(tenant, JobKind::Noop, json!({}))
}

fn fast_worker(name: &str) -> WorkerConfig {
    let mut c = WorkerConfig::new(name).lease(Duration::from_secs(30));
    c.poll = Duration::from_millis(100);
    c.retry.base = Duration::from_millis(10);
    c.retry.max = Duration::from_millis(50);
    c.shutdown_grace = Duration::from_millis(200);
    c
}

/// Starts `worker` in the background; the token stops it, the handle finishes when it has.
fn start(worker: Worker<dyn Queue>) -> (CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let stop = CancellationToken::new();
    let s = stop.clone();
    (stop, tokio::spawn(async move { worker.run(s).await }))
}

async fn state(q: &Arc<dyn Queue>, id: i64) -> JobState {
    q.get(id).await.unwrap().expect("job exists").state
}

async fn two_workers_never_hold_the_same_job(b: Backend) {
    let (q, _db) = queue(b).await;
    let jobs: Vec<NewJob> = (0..1000).map(|i| noop(1 + i % 3)).collect();
    q.enqueue(&jobs).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let q = q.clone();
        tasks.spawn(async move {
            let me = format!("w{w}");
            let mut mine = Vec::new();
            let mut empty = 0;
            while empty < 3 {
                let got = q.claim(&me, 7, Duration::from_secs(30)).await.unwrap();
                if got.is_empty() {
                    empty += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                empty = 0;
                let done: Vec<Completion> =
                    got.iter().map(|j| Completion::Succeeded { claim: j.into(), fan_out: None }).collect();
                q.complete(&me, &done).await.unwrap();
                mine.extend(got.iter().map(|j| j.job_id));
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 1000, "every job claimed exactly once");
    assert_eq!(unique.len(), 1000);
    assert_eq!(q.counts().await.unwrap().succeeded, 1000);
}

async fn an_expired_lease_is_taken_over_and_the_old_holder_can_no_longer_complete(b: Backend) {
    let (q, _db) = queue(b).await;
    let id = q.enqueue(&[noop(1)]).await.unwrap()[0];
    let a = q.claim("a", 1, Duration::from_millis(200)).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(q.claim("b", 1, Duration::from_secs(30)).await.unwrap().is_empty(), "a live lease is not claimable");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(q.reap_expired().await.unwrap(), 1);
    let b_claim = q.claim("b", 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(b_claim.len(), 1);
    assert_eq!((b_claim[0].job_id, b_claim[0].attempt), (id, 2));
    // The old holder learns it lost the lease, and its late outcome is ignored.
    let hb = q.heartbeat("a", &[(ClaimRef::from(&a[0]), None)], Duration::from_secs(30)).await.unwrap();
    assert!(!hb[0].held);
    q.complete(
        "a",
        &[Completion::Failed {
            claim: (&a[0]).into(),
            error: "late".into(),
            permanent: true,
            retry_after: Duration::ZERO,
        }],
    )
    .await
    .unwrap();
    assert_eq!(state(&q, id).await, JobState::Running);
    q.complete("b", &[Completion::Succeeded { claim: (&b_claim[0]).into(), fan_out: None }]).await.unwrap();
    assert_eq!(state(&q, id).await, JobState::Succeeded);
}

struct Failing {
    permanent: bool,
    runs: Arc<Mutex<u32>>,
}

#[async_trait]
impl JobHandler for Failing {
    async fn run(&self, _ctx: &JobContext, _payload: &serde_json::Value) -> Result<Outcome, JobError> {
        *self.runs.lock().unwrap() += 1;
        let e = anyhow::anyhow!("disk on fire");
        Err(if self.permanent { JobError::Permanent(e) } else { JobError::Transient(e) })
    }
}

async fn a_poisoned_job_lands_in_dead_letter_with_its_error(b: Backend) {
    let (q, _db) = queue(b).await;
    let runs = Arc::new(Mutex::new(0));
    let handlers = Handlers::new().with(JobKind::Backup, Failing { permanent: false, runs: runs.clone() });
    let id = q.enqueue(&[NewJob::new(1, JobKind::Backup, json!({})).max_attempts(3)]).await.unwrap()[0];
    let (stop, h) = start(Worker::new(q.clone(), handlers, fast_worker("w")));
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Dead }).await);
    let rec = q.get(id).await.unwrap().unwrap();
    assert_eq!(rec.attempts, 3);
    assert!(rec.last_error.as_deref().unwrap().contains("disk on fire"), "{rec:?}");
    assert_eq!(*runs.lock().unwrap(), 3);
    stop.cancel();
    h.await.unwrap().unwrap();
}

async fn a_permanent_error_dead_letters_without_retrying(b: Backend) {
    let (q, _db) = queue(b).await;
    let runs = Arc::new(Mutex::new(0));
    let handlers = Handlers::new().with(JobKind::Verify, Failing { permanent: true, runs: runs.clone() });
    let id = q.enqueue(&[NewJob::new(1, JobKind::Verify, json!({}))]).await.unwrap()[0];
    let (stop, h) = start(Worker::new(q.clone(), handlers, fast_worker("w")));
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Dead }).await);
    assert_eq!(q.get(id).await.unwrap().unwrap().attempts, 1);
    assert_eq!(*runs.lock().unwrap(), 1);
    stop.cancel();
    h.await.unwrap().unwrap();
}

async fn cancelling_a_queued_job_means_it_never_runs(b: Backend) {
    let (q, _db) = queue(b).await;
    let id = q.enqueue(&[noop(1)]).await.unwrap()[0];
    assert!(q.cancel(id).await.unwrap());
    assert_eq!(state(&q, id).await, JobState::Cancelled);
    assert!(q.claim("w", 10, Duration::from_secs(30)).await.unwrap().is_empty());
    assert!(!q.cancel(id).await.unwrap(), "a finished job cannot be cancelled again");
}

async fn cancelling_a_running_job_stops_its_handler_promptly(b: Backend) {
    let (q, _db) = queue(b).await;
    // Heartbeats every 10 s: a prompt stop proves the cancel announcement, not the heartbeat, did it.
    let id = q.enqueue(&[NewJob::new(1, JobKind::Noop, json!({"sleep_ms": 60_000}))]).await.unwrap()[0];
    let (stop, h) = start(Worker::new(q.clone(), afb::jobs::noop::builtin_handlers(), fast_worker("w")));
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Running }).await);
    let t = Instant::now();
    assert!(q.cancel(id).await.unwrap());
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Cancelled }).await);
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());
    stop.cancel();
    h.await.unwrap().unwrap();
}

async fn one_huge_tenant_does_not_starve_the_others(b: Backend) {
    let (q, _db) = queue(b).await;
    q.enqueue(&(0..400).map(|_| noop(1)).collect::<Vec<_>>()).await.unwrap();
    q.enqueue(&(0..5).map(|_| noop(2)).chain((0..5).map(|_| noop(3))).collect::<Vec<_>>()).await.unwrap();
    let mut order = Vec::new();
    while order.len() < 60 {
        let got = q.claim("w", 4, Duration::from_secs(30)).await.unwrap();
        let done: Vec<Completion> =
            got.iter().map(|j| Completion::Succeeded { claim: j.into(), fan_out: None }).collect();
        q.complete("w", &done).await.unwrap();
        order.extend(got.iter().map(|j| j.tenant_id));
    }
    // Three tenants share each claim: the small tenants' 10 jobs are done within the first 30 claimed.
    let small_done_by = order.iter().enumerate().filter(|(_, t)| **t != 1).map(|(i, _)| i).max().unwrap();
    assert_eq!(order.iter().filter(|t| **t != 1).count(), 10, "{order:?}");
    assert!(small_done_by < 30, "small tenants finished only at position {small_done_by}: {order:?}");
}

async fn higher_priority_runs_first_within_a_tenant(b: Backend) {
    let (q, _db) = queue(b).await;
    q.enqueue(&[noop(1), noop(1), noop(1).priority(5), noop(1)]).await.unwrap();
    let got = q.claim("w", 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got[0].priority, 5);
}

async fn an_enqueue_wakes_an_idle_worker_at_once(b: Backend) {
    let (q, _db) = queue(b).await;
    let mut cfg = fast_worker("w");
    cfg.poll = Duration::from_secs(60);
    let (stop, h) = start(Worker::new(q.clone(), afb::jobs::noop::builtin_handlers(), cfg));
    tokio::time::sleep(Duration::from_millis(300)).await; // the worker found nothing and sleeps
    let t = Instant::now();
    let id = q.enqueue(&[noop(1)]).await.unwrap()[0];
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Succeeded }).await);
    assert!(t.elapsed() < Duration::from_millis(1000), "an idle worker took {:?} to notice", t.elapsed());
    stop.cancel();
    h.await.unwrap().unwrap();
}

/// Fans out into `payload.children` backup jobs; the commit job records how many children had run.
struct CountingHandler {
    ran: Arc<Mutex<HashSet<u64>>>,
    committed_after: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl JobHandler for CountingHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        match ctx.job.kind {
            JobKind::Scan => {
                let n = payload["children"].as_u64().unwrap();
                let poison = payload["poison"].as_i64();
                let children = (0..n)
                    .map(|i| {
                        let p = poison == Some(i as i64);
                        NewJob::new(ctx.job.tenant_id, JobKind::Backup, json!({ "part": i, "poison": p }))
                    })
                    .collect();
                Ok(Outcome::FanOut { children, commit: NewJob::new(ctx.job.tenant_id, JobKind::Commit, json!({})) })
            }
            JobKind::Backup => {
                if payload["poison"] == true {
                    return Err(JobError::permanent(anyhow::anyhow!("part {} unreadable", payload["part"])));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                self.ran.lock().unwrap().insert(payload["part"].as_u64().unwrap());
                Ok(Outcome::Done)
            }
            _ => {
                let n = self.ran.lock().unwrap().len();
                self.committed_after.lock().unwrap().push(n);
                Ok(Outcome::Done)
            }
        }
    }
}

fn counting_handlers(ran: &Arc<Mutex<HashSet<u64>>>, committed: &Arc<Mutex<Vec<usize>>>) -> Handlers {
    let t = || CountingHandler { ran: ran.clone(), committed_after: committed.clone() };
    Handlers::new().with(JobKind::Scan, t()).with(JobKind::Backup, t()).with(JobKind::Commit, t())
}

async fn a_commit_job_runs_once_after_all_children_succeeded(b: Backend) {
    let (q, _db) = queue(b).await;
    let (ran, committed) = (Arc::default(), Arc::default());
    let scan = q.enqueue(&[NewJob::new(1, JobKind::Scan, json!({"children": 20, "poison": -1}))]).await.unwrap()[0];
    let (stop1, h1) = start(Worker::new(q.clone(), counting_handlers(&ran, &committed), fast_worker("w1")));
    let (stop2, h2) = start(Worker::new(q.clone(), counting_handlers(&ran, &committed), fast_worker("w2")));
    assert!(eventually(Duration::from_secs(10), || async { committed.lock().unwrap().len() == 1 }).await);
    assert_eq!(*committed.lock().unwrap(), vec![20], "the commit ran after all 20 children, once");
    assert_eq!(state(&q, scan).await, JobState::Succeeded);
    // The commit handler has run; its outcome is recorded a moment later.
    assert!(
        eventually(Duration::from_secs(60), || async { q.counts().await.unwrap().unfinished() == 0 }).await,
        "the commit job's outcome was never recorded"
    );
    let c = q.counts().await.unwrap();
    assert_eq!((c.succeeded, c.unfinished()), (22, 0));
    stop1.cancel();
    stop2.cancel();
    h1.await.unwrap().unwrap();
    h2.await.unwrap().unwrap();
}

async fn a_dead_child_makes_its_commit_job_dead(b: Backend) {
    let (q, _db) = queue(b).await;
    let (ran, committed) = (Arc::default(), Arc::default());
    q.enqueue(&[NewJob::new(1, JobKind::Scan, json!({"children": 3, "poison": 1}))]).await.unwrap();
    let (stop, h) = start(Worker::new(q.clone(), counting_handlers(&ran, &committed), fast_worker("w")));
    assert!(eventually(Duration::from_secs(10), || async { q.counts().await.unwrap().dead == 2 }).await);
    // Find the commit job: the dead job that is not a backup child.
    let mut commit = None;
    for id in 1..=10 {
        if let Some(r) = q.get(id).await.unwrap()
            && r.kind == JobKind::Commit
        {
            commit = Some(r);
        }
    }
    let commit = commit.expect("a commit job");
    assert_eq!(commit.state, JobState::Dead);
    assert!(commit.last_error.as_deref().unwrap().contains("part 1 unreadable"), "{commit:?}");
    assert!(committed.lock().unwrap().is_empty(), "the commit handler never ran");
    stop.cancel();
    h.await.unwrap().unwrap();
}

async fn graceful_shutdown_releases_unfinished_jobs_without_using_an_attempt(b: Backend) {
    let (q, _db) = queue(b).await;
    let id = q.enqueue(&[NewJob::new(1, JobKind::Noop, json!({"sleep_ms": 60_000}))]).await.unwrap()[0];
    let (stop, h) = start(Worker::new(q.clone(), afb::jobs::noop::builtin_handlers(), fast_worker("w")));
    assert!(eventually(Duration::from_secs(5), || async { state(&q, id).await == JobState::Running }).await);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), h).await.expect("stops within grace + 2 s").unwrap().unwrap();
    let r = q.get(id).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts), (JobState::Queued, 0));
}

async fn a_dedupe_key_enqueues_once(b: Backend) {
    let (q, _db) = queue(b).await;
    let first = q.enqueue(&[noop(1).dedupe_key("nightly:2025-01-01")]).await.unwrap();
    let second = q.enqueue(&[noop(1).dedupe_key("nightly:2025-01-01"), noop(1)]).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_eq!(q.counts().await.unwrap().queued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_runner_runs_a_fan_out_to_completion_without_a_database() {
    let (ran, committed) = (Arc::default(), Arc::default());
    let runner = afb::jobs::embedded::EmbeddedRunner::start(counting_handlers(&ran, &committed), 4);
    runner.queue().enqueue(&[NewJob::new(1, JobKind::Scan, json!({"children": 8, "poison": -1}))]).await.unwrap();
    let counts = tokio::time::timeout(Duration::from_secs(10), runner.wait_idle()).await.unwrap().unwrap();
    assert_eq!((counts.succeeded, counts.dead), (10, 0));
    assert_eq!(*committed.lock().unwrap(), vec![8]);
    runner.shutdown().await.unwrap();
}
