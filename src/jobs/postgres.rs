//! The PostgreSQL queue: `FOR UPDATE SKIP LOCKED` claims, leases with heartbeats, LISTEN/NOTIFY wake-ups.
//!
//! Every statement is one round trip and every multi-statement change is one transaction. A claim is
//! guarded by `(job_id, attempts, lease_owner, state = 'running')`; every later write by the worker repeats
//! that guard, so a worker that lost its lease can no longer change the job.

use super::model::{ClaimedJob, JobId, JobRecord, JobState, NewJob, StateCounts};
use super::queue::{ClaimRef, Completion, LeaseStatus, Queue};
use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

/// NOTIFY channel announcing that jobs became claimable.
pub const WORK_CHANNEL: &str = "afb_jobs";
/// NOTIFY channel announcing a cancellation request; the payload is the job id.
pub const CANCEL_CHANNEL: &str = "afb_jobs_cancel";

/// A pool of connections to one database. `size` is the most connections it opens.
pub fn pool(database_url: &str, size: usize) -> anyhow::Result<Pool> {
    pool_with(database_url, size, true)
}

/// A pool whose sessions commit with `synchronous_commit = off` unless `durable`.
///
/// Not durable is safe for the queue because delivery is at least once: if PostgreSQL itself crashes,
/// the last fraction of a second of state changes is lost, which only means some jobs run again
/// (a lost claim or completion leaves the job queued or leased, and the lease expires). A worker crash
/// loses nothing either way. It saves one WAL flush wait per claim and per completion.
pub fn pool_with(database_url: &str, size: usize, durable: bool) -> anyhow::Result<Pool> {
    let mut config: tokio_postgres::Config =
        database_url.parse().with_context(|| format!("invalid database URL {database_url:?}"))?;
    if !durable {
        let options = format!("{} -c synchronous_commit=off", config.get_options().unwrap_or(""));
        config.options(options.trim());
    }
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager).max_size(size.max(1)).build()?)
}

/// The queue in PostgreSQL. Cheap to share (`Arc`); one instance per process is enough.
pub struct PgQueue {
    pool: Pool,
    /// Fired on NOTIFY `afb_jobs` (and whenever this process itself makes work ready).
    work: Arc<Notify>,
    /// Job ids announced on `afb_jobs_cancel`, not yet taken by `wait_for_cancel`.
    cancels: Arc<(Mutex<Vec<JobId>>, Notify)>,
    listener: Option<tokio::task::JoinHandle<()>>,
    /// The tenant this process claimed from last: the next claim starts after it (round robin).
    tenant_cursor: AtomicI64,
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
    }
}

impl PgQueue {
    /// A queue over `pool` that also LISTENs on its own connection to `database_url` (reconnecting on
    /// loss), so idle workers wake as soon as work is enqueued anywhere.
    pub async fn connect(database_url: &str, pool: Pool) -> anyhow::Result<Self> {
        let mut q = PgQueue::without_listener(pool);
        let work = q.work.clone();
        let cancels = q.cancels.clone();
        let url = database_url.to_string();
        // Connect once here so a wrong URL fails now, not in the background.
        let first = tokio_postgres::connect(&url, NoTls).await.with_context(|| "connecting the LISTEN connection")?;
        q.listener = Some(tokio::spawn(listen_forever(url, Some(first), work, cancels)));
        Ok(q)
    }

    /// A queue with no LISTEN connection: idle workers find new work only by polling.
    pub fn without_listener(pool: Pool) -> Self {
        PgQueue {
            pool,
            work: Arc::new(Notify::new()),
            cancels: Arc::new((Mutex::new(Vec::new()), Notify::new())),
            listener: None,
            tenant_cursor: AtomicI64::new(i64::MIN),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn wake_local(&self) {
        wake(&self.work);
    }
}

fn wake(n: &Notify) {
    // Wake everyone waiting now, and leave a permit for a waiter that is about to wait.
    n.notify_waiters();
    n.notify_one();
}

type Conn =
    (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>);

async fn listen_forever(
    url: String,
    mut first: Option<Conn>,
    work: Arc<Notify>,
    cancels: Arc<(Mutex<Vec<JobId>>, Notify)>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let conn = match first.take() {
            Some(c) => Ok(c),
            None => tokio_postgres::connect(&url, NoTls).await,
        };
        match conn {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = futures::channel::mpsc::unbounded();
                let stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let driver = tokio::spawn(stream.for_each(move |m| {
                    let _ = tx.unbounded_send(m);
                    async {}
                }));
                let listen = client.batch_execute(&format!("LISTEN {WORK_CHANNEL}; LISTEN {CANCEL_CHANNEL};")).await;
                if let Err(e) = listen {
                    tracing::warn!("LISTEN failed: {e}");
                } else {
                    backoff = Duration::from_millis(100);
                    // Anything enqueued while we were not listening: look now.
                    wake(&work);
                    while let Some(msg) = rx.next().await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) if n.channel() == CANCEL_CHANNEL => {
                                if let Ok(id) = n.payload().parse::<JobId>() {
                                    cancels.0.lock().unwrap().push(id);
                                    wake(&cancels.1);
                                }
                            }
                            Ok(AsyncMessage::Notification(_)) => wake(&work),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("LISTEN connection lost: {e}");
                                break;
                            }
                        }
                    }
                }
                driver.abort();
                drop(client);
            }
            Err(e) => tracing::warn!("LISTEN connection failed: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// True for errors after which the same transaction may simply be run again (deadlock, serialization).
fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Runs the transaction `$body` (an expression using `$client`) up to 5 times while it fails retryably.
macro_rules! retrying {
    ($body:expr) => {{
        let mut tries = 0u64;
        loop {
            match $body.await {
                Ok(v) => break Ok::<_, anyhow::Error>(v),
                Err(e) if retryable(&e) && tries < 4 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(5 * tries)).await;
                }
                Err(e) => break Err(e.into()),
            }
        }
    }};
}

const CLAIM_SQL: &str = r#"
WITH RECURSIVE after_cursor(tenant_id) AS (
    (SELECT tenant_id FROM jobs WHERE state = 'queued' AND tenant_id > $2 ORDER BY tenant_id LIMIT 1)
  UNION ALL
    SELECT (SELECT j.tenant_id FROM jobs j
            WHERE j.state = 'queued' AND j.tenant_id > a.tenant_id ORDER BY j.tenant_id LIMIT 1)
    FROM after_cursor a WHERE a.tenant_id IS NOT NULL
),
from_start(tenant_id) AS (
    (SELECT tenant_id FROM jobs WHERE state = 'queued' AND tenant_id <= $2 ORDER BY tenant_id LIMIT 1)
  UNION ALL
    SELECT (SELECT j.tenant_id FROM jobs j
            WHERE j.state = 'queued' AND j.tenant_id > f.tenant_id AND j.tenant_id <= $2 ORDER BY j.tenant_id LIMIT 1)
    FROM from_start f WHERE f.tenant_id IS NOT NULL
),
chosen AS MATERIALIZED (
    SELECT tenant_id, row_number() OVER () AS turn FROM (
        SELECT tenant_id FROM after_cursor WHERE tenant_id IS NOT NULL
        UNION ALL
        SELECT tenant_id FROM from_start WHERE tenant_id IS NOT NULL
        LIMIT $1
    ) t
),
picked AS (
    SELECT c.turn, s.job_id, s.priority, s.rank
    FROM chosen c CROSS JOIN LATERAL (
        SELECT job_id, priority, row_number() OVER () AS rank FROM (
            SELECT job_id, priority FROM jobs
            WHERE tenant_id = c.tenant_id AND state = 'queued' AND run_at <= now()
            ORDER BY priority DESC, job_id
            LIMIT (SELECT ceil($1::numeric / greatest(count(*), 1))::bigint FROM chosen)
            FOR UPDATE SKIP LOCKED
        ) locked
    ) s
    ORDER BY s.rank, s.priority DESC, c.turn
    LIMIT $1
)
UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_owner = $3,
    lease_expires_at = now() + $4 * interval '1 millisecond', started_at = coalesce(jobs.started_at, now())
FROM picked WHERE jobs.job_id = picked.job_id
RETURNING jobs.job_id, jobs.tenant_id, jobs.share_id, jobs.kind, jobs.payload, jobs.priority,
    jobs.attempts, jobs.max_attempts, picked.turn, (extract(epoch FROM jobs.created_at) * 1000000)::bigint
"#;

/// Inserts jobs in `state`, reporting to `parent`. Returns the ids created.
pub(crate) async fn insert_jobs(
    tx: &tokio_postgres::Transaction<'_>,
    jobs: &[NewJob],
    state: JobState,
    parent: Option<JobId>,
    pending_children: i32,
) -> Result<Vec<JobId>, tokio_postgres::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<i64> = jobs.iter().map(|j| j.tenant_id).collect();
    let shares: Vec<Option<i64>> = jobs.iter().map(|j| j.share_id).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.payload).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts.max(1)).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.dedupe_key.as_deref()).collect();
    let rows = tx
        .query(
            "INSERT INTO jobs (tenant_id, share_id, kind, payload, priority, max_attempts, dedupe_key,
                               state, parent_id, pending_children)
             SELECT t, s, k, p, pr, m, d, $8, $9, $10
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::jsonb[], $5::smallint[], $6::int[], $7::text[])
                  WITH ORDINALITY AS u(t, s, k, p, pr, m, d, n)
             ORDER BY n
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING job_id",
            &[
                &tenants,
                &shares,
                &kinds,
                &payloads,
                &priorities,
                &max_attempts,
                &keys,
                &state.as_str(),
                &parent,
                &pending_children,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// After children reached a terminal state: count successes down on their commit jobs (releasing those
/// that reach zero), and fail commit jobs whose child died or was cancelled. Returns true if some commit
/// job became claimable.
async fn settle_parents(
    tx: &tokio_postgres::Transaction<'_>,
    succeeded_parents: &[JobId],
    failed: &[(JobId, JobId, JobState, Option<String>)],
) -> Result<bool, tokio_postgres::Error> {
    let mut released = false;
    if !succeeded_parents.is_empty() {
        let mut counts: BTreeMap<JobId, i32> = BTreeMap::new();
        for p in succeeded_parents {
            *counts.entry(*p).or_default() += 1;
        }
        let ids: Vec<JobId> = counts.keys().copied().collect();
        let ns: Vec<i32> = counts.values().copied().collect();
        // Lock in id order so concurrent completions cannot deadlock on the same parents.
        tx.execute("SELECT 1 FROM jobs WHERE job_id = ANY($1) ORDER BY job_id FOR UPDATE", &[&ids]).await?;
        let rows = tx
            .query(
                "UPDATE jobs p SET pending_children = p.pending_children - c.n,
                        state = CASE WHEN p.pending_children - c.n <= 0 THEN 'queued' ELSE p.state END,
                        run_at = now()
                 FROM unnest($1::bigint[], $2::int[]) AS c(job_id, n)
                 WHERE p.job_id = c.job_id AND p.state = 'waiting'
                 RETURNING p.state",
                &[&ids, &ns],
            )
            .await?;
        released = rows.iter().any(|r| r.get::<_, &str>(0) == "queued");
    }
    for (parent, child, state, error) in failed {
        let parent_state = if *state == JobState::Cancelled { "cancelled" } else { "dead" };
        let msg = format!("child job {child} {}: {}", state.as_str(), error.as_deref().unwrap_or("no error recorded"));
        tx.execute(
            "UPDATE jobs SET state = $2, last_error = $3, finished_at = now() WHERE job_id = $1 AND state = 'waiting'",
            &[parent, &parent_state, &msg],
        )
        .await?;
    }
    Ok(released)
}

/// The columns [`record`] reads, in its order.
const RECORD_COLUMNS: &str = "job_id, tenant_id, share_id, kind, state, priority, attempts, max_attempts, last_error,
    parent_id, pending_children, cancel_requested, progress,
    (extract(epoch FROM started_at) * 1000000)::bigint, (extract(epoch FROM finished_at) * 1000000)::bigint";

/// A job row selected with [`RECORD_COLUMNS`].
fn record(r: &tokio_postgres::Row) -> anyhow::Result<JobRecord> {
    Ok(JobRecord {
        job_id: r.get(0),
        tenant_id: r.get(1),
        share_id: r.get(2),
        kind: r.get::<_, &str>(3).parse().map_err(anyhow::Error::msg)?,
        state: r.get::<_, &str>(4).parse().map_err(anyhow::Error::msg)?,
        priority: r.get(5),
        attempts: r.get(6),
        max_attempts: r.get(7),
        last_error: r.get(8),
        parent_id: r.get(9),
        pending_children: r.get(10),
        cancel_requested: r.get(11),
        progress: r.get(12),
        started_us: r.get(13),
        finished_us: r.get(14),
    })
}

impl PgQueue {
    /// The newest `limit` jobs that are not a fan-out's children (what `afb jobs list` shows).
    pub async fn recent(&self, limit: i64) -> anyhow::Result<Vec<JobRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {RECORD_COLUMNS} FROM jobs WHERE parent_id IS NULL ORDER BY job_id DESC LIMIT $1"),
                &[&limit.max(0)],
            )
            .await?;
        rows.iter().map(record).collect()
    }
}

#[async_trait]
impl Queue for PgQueue {
    async fn enqueue(&self, jobs: &[NewJob]) -> anyhow::Result<Vec<JobId>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ids = insert_jobs(&tx, jobs, JobState::Queued, None, 0).await?;
        if !ids.is_empty() {
            tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]).await?;
        }
        tx.commit().await?;
        self.wake_local();
        Ok(ids)
    }

    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> anyhow::Result<Vec<ClaimedJob>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(CLAIM_SQL).await?;
        let cursor = self.tenant_cursor.load(Ordering::Relaxed);
        let lease_ms = lease.as_millis() as f64;
        let rows = client.query(&stmt, &[&(max as i64), &cursor, &worker, &lease_ms]).await?;
        let mut last_turn = 0i64;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: &str = r.get(3);
            let turn: i64 = r.get(8);
            let job = ClaimedJob {
                job_id: r.get(0),
                tenant_id: r.get(1),
                share_id: r.get(2),
                kind: kind.parse().map_err(anyhow::Error::msg)?,
                payload: r.get(4),
                priority: r.get(5),
                attempt: r.get(6),
                max_attempts: r.get(7),
                created_us: r.get(9),
            };
            if turn >= last_turn {
                last_turn = turn;
                self.tenant_cursor.store(job.tenant_id, Ordering::Relaxed);
            }
            out.push(job);
        }
        Ok(out)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        held: &[(ClaimRef, Option<serde_json::Value>)],
        lease: Duration,
    ) -> anyhow::Result<Vec<LeaseStatus>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<JobId> = held.iter().map(|(c, _)| c.job_id).collect();
        let attempts: Vec<i32> = held.iter().map(|(c, _)| c.attempt).collect();
        let progress: Vec<Option<&serde_json::Value>> = held.iter().map(|(_, p)| p.as_ref()).collect();
        let lease_ms = lease.as_millis() as f64;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "UPDATE jobs j SET lease_expires_at = now() + $4 * interval '1 millisecond',
                        progress = coalesce(h.progress, j.progress)
                 FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS h(job_id, attempt, progress)
                 WHERE j.job_id = h.job_id AND j.attempts = h.attempt AND j.lease_owner = $5 AND j.state = 'running'
                 RETURNING j.job_id, j.cancel_requested",
                &[&ids, &attempts, &progress, &lease_ms, &worker],
            )
            .await?;
        let live: BTreeMap<JobId, bool> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(held
            .iter()
            .map(|(c, _)| LeaseStatus {
                claim: *c,
                held: live.contains_key(&c.job_id),
                cancel_requested: live.get(&c.job_id).copied().unwrap_or(false),
            })
            .collect())
    }

    async fn complete(&self, worker: &str, outcomes: &[Completion]) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut client = self.pool.get().await?;
        let all_plain = outcomes.iter().all(|o| matches!(o, Completion::Succeeded { fan_out: None, .. }));
        let notify = if all_plain {
            retrying!(complete_plain(&client, worker, outcomes))?
        } else {
            retrying!(complete_tx(&mut client, worker, outcomes))?
        };
        if notify {
            self.wake_local();
        }
        Ok(())
    }

    async fn cancel(&self, job_id: JobId) -> anyhow::Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "WITH RECURSIVE tree(job_id) AS (
                     SELECT job_id FROM jobs WHERE job_id = $1
                   UNION ALL
                     SELECT j.job_id FROM jobs j JOIN tree t ON j.parent_id = t.job_id
                 )
                 UPDATE jobs SET
                     state = CASE WHEN state IN ('queued', 'waiting') THEN 'cancelled' ELSE state END,
                     finished_at = CASE WHEN state IN ('queued', 'waiting') THEN now() ELSE finished_at END,
                     cancel_requested = true
                 WHERE job_id IN (SELECT job_id FROM tree) AND state IN ('queued', 'waiting', 'running')
                 RETURNING job_id, state",
                &[&job_id],
            )
            .await?;
        for r in &rows {
            if r.get::<_, &str>(1) == "running" {
                let id: JobId = r.get(0);
                tx.execute("SELECT pg_notify($1, $2)", &[&CANCEL_CHANNEL, &id.to_string()]).await?;
            }
        }
        tx.commit().await?;
        Ok(rows.iter().any(|r| r.get::<_, JobId>(0) == job_id))
    }

    async fn reap_expired(&self) -> anyhow::Result<u64> {
        let mut client = self.pool.get().await?;
        let (n, notify) = retrying!(reap_tx(&mut client))?;
        if notify {
            self.wake_local();
        }
        Ok(n)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }

    async fn wait_for_cancel(&self, timeout: Duration) -> Vec<JobId> {
        let (ids, notify) = &*self.cancels;
        {
            let mut pending = ids.lock().unwrap();
            if !pending.is_empty() {
                return std::mem::take(&mut *pending);
            }
        }
        let _ = tokio::time::timeout(timeout, notify.notified()).await;
        std::mem::take(&mut *ids.lock().unwrap())
    }

    async fn get(&self, job_id: JobId) -> anyhow::Result<Option<JobRecord>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {RECORD_COLUMNS} FROM jobs WHERE job_id = $1"), &[&job_id]).await?;
        row.map(|r| record(&r)).transpose()
    }

    async fn counts(&self) -> anyhow::Result<StateCounts> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT state, count(*) FROM jobs GROUP BY state", &[]).await?;
        let mut c = StateCounts::default();
        for r in rows {
            let state: JobState = r.get::<_, &str>(0).parse().map_err(anyhow::Error::msg)?;
            c.add(state, r.get::<_, i64>(1) as u64);
        }
        Ok(c)
    }
}

/// The common case, plain successes, in one autocommit statement: the jobs, their commit jobs' countdown
/// and the wake-up if a commit job became claimable. Returns true if one did.
async fn complete_plain(
    client: &deadpool_postgres::Object,
    worker: &str,
    outcomes: &[Completion],
) -> Result<bool, tokio_postgres::Error> {
    let ids: Vec<JobId> = outcomes.iter().map(|o| o.claim().job_id).collect();
    let attempts: Vec<i32> = outcomes.iter().map(|o| o.claim().attempt).collect();
    let stmt = client
        .prepare_cached(
            "WITH done AS (
                 UPDATE jobs j SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                 FROM unnest($1::bigint[], $2::int[]) AS c(job_id, attempt)
                 WHERE j.job_id = c.job_id AND j.attempts = c.attempt AND j.lease_owner = $3 AND j.state = 'running'
                 RETURNING j.parent_id
             ),
             counts AS (
                 SELECT parent_id, count(*)::int AS n FROM done WHERE parent_id IS NOT NULL GROUP BY parent_id
             ),
             released AS (
                 UPDATE jobs p SET pending_children = p.pending_children - c.n,
                        state = CASE WHEN p.pending_children - c.n <= 0 THEN 'queued' ELSE p.state END,
                        run_at = now()
                 FROM counts c WHERE p.job_id = c.parent_id AND p.state = 'waiting'
                 RETURNING p.state
             )
             SELECT pg_notify('afb_jobs', '') FROM (SELECT count(*) AS n FROM released WHERE state = 'queued') r
             WHERE r.n > 0",
        )
        .await?;
    Ok(!client.query(&stmt, &[&ids, &attempts, &worker]).await?.is_empty())
}

/// One transaction recording `outcomes`. Returns true if some job became claimable now.
/// The rows a claim still holds: job `$1` at attempt `$2`, leased by worker `$3` and running.
const CLAIM_GUARD: &str = "job_id = $1 AND attempts = $2 AND lease_owner = $3 AND state = 'running'";

async fn complete_tx(
    client: &mut deadpool_postgres::Object,
    worker: &str,
    outcomes: &[Completion],
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let mut parents_done: Vec<JobId> = Vec::new();
    let mut parents_failed: Vec<(JobId, JobId, JobState, Option<String>)> = Vec::new();
    let mut notify = false;

    // Plain successes: one statement for all of them.
    let mut ids = Vec::new();
    let mut attempts = Vec::new();
    for o in outcomes {
        if let Completion::Succeeded { claim, fan_out: None } = o {
            ids.push(claim.job_id);
            attempts.push(claim.attempt);
        }
    }
    if !ids.is_empty() {
        let stmt = tx
            .prepare_cached(
                "UPDATE jobs j SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                 FROM unnest($1::bigint[], $2::int[]) AS c(job_id, attempt)
                 WHERE j.job_id = c.job_id AND j.attempts = c.attempt AND j.lease_owner = $3 AND j.state = 'running'
                 RETURNING j.parent_id",
            )
            .await?;
        for r in tx.query(&stmt, &[&ids, &attempts, &worker]).await? {
            if let Some(p) = r.get::<_, Option<JobId>>(0) {
                parents_done.push(p);
            }
        }
    }

    for o in outcomes {
        let c = o.claim();
        match o {
            Completion::Succeeded { fan_out: None, .. } => {}
            Completion::Succeeded { fan_out: Some((children, commit)), .. } => {
                let Some(grandparent) = end_claim(&tx, c, worker, JobState::Succeeded).await? else { continue };
                // The commit job takes this job's place under its own parent (nested fan-out): the parent
                // is counted down when the commit succeeds, not now.
                let n = children.len() as i32;
                let state = if n == 0 { JobState::Queued } else { JobState::Waiting };
                let commit_ids = insert_jobs(&tx, std::slice::from_ref(commit), state, grandparent, n).await?;
                let Some(&commit_id) = commit_ids.first() else { continue };
                insert_jobs(&tx, children, JobState::Queued, Some(commit_id), 0).await?;
                notify = true;
            }
            Completion::Failed { error, permanent, retry_after, .. } => {
                let delay_ms = retry_after.as_millis() as f64;
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET
                                 state = CASE WHEN $4 OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                                 finished_at = CASE WHEN $4 OR attempts >= max_attempts THEN now() END,
                                 run_at = now() + $5 * interval '1 millisecond',
                                 last_error = $6, lease_owner = NULL, lease_expires_at = NULL
                             WHERE {CLAIM_GUARD} RETURNING state, parent_id"
                        ),
                        &[&c.job_id, &c.attempt, &worker, permanent, &delay_ms, error],
                    )
                    .await?;
                if let Some(r) = row
                    && r.get::<_, &str>(0) == "dead"
                    && let Some(p) = r.get::<_, Option<JobId>>(1)
                {
                    parents_failed.push((p, c.job_id, JobState::Dead, Some(error.clone())));
                }
            }
            Completion::Cancelled { .. } => {
                if let Some(Some(p)) = end_claim(&tx, c, worker, JobState::Cancelled).await? {
                    parents_failed.push((p, c.job_id, JobState::Cancelled, Some("cancelled".into())));
                }
            }
            Completion::Released { .. } => {
                let n = tx
                    .execute(
                        &format!(
                            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = now(),
                                    lease_owner = NULL, lease_expires_at = NULL WHERE {CLAIM_GUARD}"
                        ),
                        &[&c.job_id, &c.attempt, &worker],
                    )
                    .await?;
                notify |= n > 0;
            }
        }
    }
    notify |= settle_parents(&tx, &parents_done, &parents_failed).await?;
    if notify {
        tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]).await?;
    }
    tx.commit().await?;
    Ok(notify)
}

/// One transaction queueing again (or dead-lettering, or cancelling) up to 1000 expired leases.
/// Ends claim `c` of `worker` in the final `state` (succeeded or cancelled). `None` if the claim is no
/// longer held (its lease expired and the job moved on); otherwise the job's parent, if it has one.
async fn end_claim(
    tx: &tokio_postgres::Transaction<'_>,
    c: ClaimRef,
    worker: &str,
    state: JobState,
) -> Result<Option<Option<JobId>>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE jobs SET state = $4, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
                 WHERE {CLAIM_GUARD} RETURNING parent_id"
            ),
            &[&c.job_id, &c.attempt, &worker, &state.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn reap_tx(client: &mut deadpool_postgres::Object) -> Result<(u64, bool), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "WITH expired AS (
                 SELECT job_id FROM jobs WHERE state = 'running' AND lease_expires_at < now()
                 ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs j SET
                 state = CASE WHEN j.cancel_requested THEN 'cancelled'
                              WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,
                 finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN now() END,
                 last_error = left('lease expired: worker ' || coalesce(j.lease_owner, '?')
                              || ' stopped heartbeating on attempt ' || j.attempts || ' of ' || j.max_attempts
                              || coalesce('; previous error: ' || j.last_error, ''), 4000),
                 lease_owner = NULL, lease_expires_at = NULL, run_at = now()
             FROM expired WHERE j.job_id = expired.job_id
             RETURNING j.job_id, j.state, j.parent_id, j.last_error",
            &[],
        )
        .await?;
    let mut failed = Vec::new();
    let mut notify = false;
    for r in &rows {
        let state: JobState = r.get::<_, &str>(1).parse().unwrap_or(JobState::Dead);
        match (state, r.get::<_, Option<JobId>>(2)) {
            (JobState::Queued, _) => notify = true,
            (s, Some(p)) => failed.push((p, r.get(0), s, r.get(3))),
            _ => {}
        }
    }
    settle_parents(&tx, &[], &failed).await?;
    if notify {
        tx.execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL]).await?;
    }
    tx.commit().await?;
    Ok((rows.len() as u64, notify))
}
