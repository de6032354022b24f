//! Jobs in the API and the dashboard: start scan, backup, restore and verify jobs over the job queue,
//! read their status and progress, cancel them.
//!
//! - The queue is any [`Queue`]: the embedded [`MemoryQueue`] (default of `afb serve`) or the PostgreSQL
//!   queue (`--database-url`). `afb serve` runs one embedded worker over it with [`job_handlers`].
//! - Jobs carry exactly the payloads of [`crate::jobs::payloads`], with the queue's tenant id from
//!   [`queue_tenant_id`].
//! - Scope: a job belongs to the tenant named in its payload; a tenant token sees, and cancels, only its
//!   own tenant's jobs (others' answer 404 like missing ones). Jobs without a tenant are operator-only.
//! - Listing: jobs started through this server are remembered in memory (the memory queue has no listing);
//!   with PostgreSQL the `jobs` table is read instead, so jobs enqueued elsewhere show too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::auth::Scope;
use super::error::ApiError;
use crate::jobs::payloads::{
    BackupPayload, RestorePayload, RestoreTarget, ScanPayload, ShareRef, VerifyPayload, queue_tenant_id,
};
use crate::jobs::{Handlers, JobId, JobKind, JobRecord, JobState, MemoryQueue, NewJob, Queue, Worker, WorkerConfig};

/// The handlers the embedded runner of `afb serve` uses: the data handlers of [`crate::jobs::data`]
/// (scan, backup, restore, verify, prune) over the repository, with the node index at the repository root
/// (where the API reads it). Without a master key only `noop` runs, and a data job fails with "no handler".
/// Fails when a Blob repository has no control area (`AFB_CONTROL_DIR`).
pub fn job_handlers(repo_dir: &str, master: Option<crate::repository::MasterKey>) -> anyhow::Result<Handlers> {
    Ok(match master {
        Some(m) => crate::jobs::data::data_handlers(std::sync::Arc::new(crate::jobs::data::DataEnv::new(repo_dir, m)?)),
        None => crate::jobs::noop::builtin_handlers(),
    })
}

/// A job started through this server, as remembered for listing.
#[derive(Debug, Clone)]
struct Started {
    job_id: JobId,
    tenant: String,
    share: String,
    kind: JobKind,
    payload: Value,
    created_at: String,
}

/// A job as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub job_id: JobId,
    /// Tenant and share names from the payload (absent for jobs that name none).
    pub tenant: Option<String>,
    pub share: Option<String>,
    pub kind: JobKind,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    /// What the handler last reported (any JSON), stored with its heartbeats.
    pub progress: Option<Value>,
    pub payload: Value,
    /// RFC 3339 UTC, when known.
    pub created_at: Option<String>,
    /// When the job was first claimed and when it ended, RFC 3339 UTC (absent until then).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The same two times in µs since the epoch, for the dashboard's rates and durations.
    #[serde(skip)]
    pub started_us: Option<i64>,
    #[serde(skip)]
    pub finished_us: Option<i64>,
}

/// µs since the epoch as RFC 3339 UTC with milliseconds.
fn rfc3339_us(us: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000).ok()?;
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

/// The queue, the embedded runner over it, and what this server started.
pub struct Jobs {
    pub queue: Arc<dyn Queue>,
    pg: Option<Pool>,
    started: Mutex<Vec<Started>>,
    runner: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>)>>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl Jobs {
    /// An embedded memory queue; with `handlers`, one worker runs its jobs (two at a time).
    pub fn memory(handlers: Option<Handlers>) -> Arc<Jobs> {
        let q: Arc<dyn Queue> = Arc::new(MemoryQueue::new());
        Self::with_queue(q, None, handlers)
    }

    /// The PostgreSQL queue (migrated first); with `handlers`, one worker of this process runs jobs too.
    pub async fn postgres(database_url: &str, handlers: Option<Handlers>) -> anyhow::Result<Arc<Jobs>> {
        crate::jobs::migrate::migrate_url(database_url).await?;
        let pool = crate::jobs::postgres::pool(database_url, 4)?;
        let q: Arc<dyn Queue> = Arc::new(crate::jobs::PgQueue::connect(database_url, pool.clone()).await?);
        Ok(Self::with_queue(q, Some(pool), handlers))
    }

    fn with_queue(queue: Arc<dyn Queue>, pg: Option<Pool>, handlers: Option<Handlers>) -> Arc<Jobs> {
        let runner = handlers.map(|h| {
            let mut cfg = WorkerConfig::new(format!("afb-serve-{}", std::process::id()));
            cfg.concurrency = 2;
            cfg.retry.base = Duration::from_secs(1);
            cfg.poll = Duration::from_millis(200);
            // Progress reaches the queue with heartbeats: every second, so the job monitor moves smoothly.
            cfg.heartbeat = Duration::from_secs(1);
            let stop = CancellationToken::new();
            let handle = tokio::spawn(Worker::new(queue.clone(), h, cfg).run(stop.clone()));
            (stop, handle)
        });
        Arc::new(Jobs { queue, pg, started: Mutex::new(Vec::new()), runner: Mutex::new(runner) })
    }

    /// Stop the embedded worker (running jobs get its shutdown grace, then are released).
    pub async fn shutdown(&self) {
        let r = self.runner.lock().expect("runner lock").take();
        if let Some((stop, handle)) = r {
            stop.cancel();
            let _ = handle.await;
        }
    }

    /// Enqueue one data job for `tenant`/`share`; returns its id.
    pub async fn start(&self, tenant: &str, share: &str, kind: JobKind, payload: Value) -> Result<JobId, ApiError> {
        let job = NewJob::new(queue_tenant_id(tenant), kind, payload.clone()).max_attempts(3);
        let ids = self.queue.enqueue(&[job]).await.map_err(ApiError::internal)?;
        let Some(&id) = ids.first() else {
            return Err(ApiError::internal(anyhow::anyhow!("the queue created no job")));
        };
        self.started.lock().expect("started lock").push(Started {
            job_id: id,
            tenant: tenant.to_string(),
            share: share.to_string(),
            kind,
            payload,
            created_at: now_rfc3339(),
        });
        Ok(id)
    }

    /// One job, if it exists and `scope` may see it (else 404, the same for both).
    pub async fn get(&self, scope: &Scope, id: JobId) -> Result<JobView, ApiError> {
        let missing = || ApiError::not_found(format!("job {id} not found"));
        let v = match &self.pg {
            Some(pool) => pg_views(pool, None, Some(id), 1).await?.pop(),
            None => {
                let rec = self.queue.get(id).await.map_err(ApiError::internal)?;
                let s = self.started.lock().expect("started lock").iter().find(|s| s.job_id == id).cloned();
                rec.map(|r| memory_view(r, s))
            }
        };
        let v = v.ok_or_else(missing)?;
        if !visible(scope, &v) {
            return Err(missing());
        }
        Ok(v)
    }

    /// Jobs `scope` sees (optionally of one tenant and share), newest first, at most `limit`.
    pub async fn list(
        &self,
        scope: &Scope,
        tenant: Option<&str>,
        share: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobView>, ApiError> {
        let want_tenant = match (scope, tenant) {
            (Scope::Tenant(t), _) => Some(t.as_str()),
            (Scope::Operator, t) => t,
        };
        let all = match &self.pg {
            Some(pool) => pg_views(pool, want_tenant, None, if share.is_some() { 10 * limit } else { limit }).await?,
            None => {
                let started: Vec<Started> = self.started.lock().expect("started lock").iter().rev().cloned().collect();
                let mut out = Vec::new();
                for s in started {
                    if want_tenant.is_some_and(|t| t != s.tenant) {
                        continue;
                    }
                    if let Some(r) = self.queue.get(s.job_id).await.map_err(ApiError::internal)? {
                        out.push(memory_view(r, Some(s)));
                    }
                }
                out
            }
        };
        Ok(all
            .into_iter()
            .filter(|v| {
                visible(scope, v)
                    && tenant.is_none_or(|t| v.tenant.as_deref() == Some(t))
                    && share.is_none_or(|s| v.share.as_deref() == Some(s))
            })
            .take(limit)
            .collect())
    }

    /// Request cancellation. 409 `job_finished` if the job already ended.
    pub async fn cancel(&self, scope: &Scope, id: JobId) -> Result<JobView, ApiError> {
        let v = self.get(scope, id).await?;
        if v.state.is_terminal() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_finished",
                format!("job {id} already ended ({})", v.state.as_str()),
            ));
        }
        self.queue.cancel(id).await.map_err(ApiError::internal)?;
        self.get(scope, id).await
    }
}

fn visible(scope: &Scope, v: &JobView) -> bool {
    match (scope, &v.tenant) {
        (Scope::Operator, _) => true,
        // The payload's name and the queue's numeric id must both be the tenant's.
        (Scope::Tenant(t), Some(vt)) => t == vt,
        (Scope::Tenant(_), None) => false,
    }
}

fn names_of(payload: &Value) -> (Option<String>, Option<String>) {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
    (s("tenant"), s("share"))
}

fn memory_view(r: JobRecord, s: Option<Started>) -> JobView {
    let (tenant, share, payload, created_at, kind) = match s {
        Some(s) => (Some(s.tenant), Some(s.share), s.payload, Some(s.created_at), s.kind),
        None => (None, None, Value::Null, None, r.kind),
    };
    // A tenant name whose queue id differs is not trusted as that tenant's (defensive; never expected).
    let tenant = tenant.filter(|t| queue_tenant_id(t) == r.tenant_id);
    JobView {
        job_id: r.job_id,
        tenant,
        share,
        kind,
        state: r.state,
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        cancel_requested: r.cancel_requested,
        last_error: r.last_error,
        progress: r.progress,
        payload,
        created_at,
        started_at: r.started_us.and_then(rfc3339_us),
        finished_at: r.finished_us.and_then(rfc3339_us),
        started_us: r.started_us,
        finished_us: r.finished_us,
    }
}

async fn pg_views(
    pool: &Pool,
    tenant: Option<&str>,
    id: Option<JobId>,
    limit: usize,
) -> Result<Vec<JobView>, ApiError> {
    let c = pool.get().await.map_err(|e| ApiError::internal(e.into()))?;
    let tid = tenant.map(queue_tenant_id);
    let rows = c
        .query(
            "SELECT job_id, tenant_id, kind, state, attempts, max_attempts, cancel_requested, last_error, progress, payload,
                    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    (extract(epoch FROM started_at) * 1000000)::bigint,
                    (extract(epoch FROM finished_at) * 1000000)::bigint
             FROM jobs
             WHERE ($1::bigint IS NULL OR tenant_id = $1) AND ($2::bigint IS NULL OR job_id = $2)
               AND ($2::bigint IS NOT NULL OR parent_id IS NULL)
             ORDER BY job_id DESC LIMIT $3",
            &[&tid, &id, &(limit as i64)],
        )
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let payload: Value = r.get(9);
        let (t, s) = names_of(&payload);
        let tenant_id: i64 = r.get(1);
        out.push(JobView {
            job_id: r.get(0),
            tenant: t.filter(|t| queue_tenant_id(t) == tenant_id),
            share: s,
            kind: r.get::<_, &str>(2).parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!(e)))?,
            state: r.get::<_, &str>(3).parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!(e)))?,
            attempts: r.get(4),
            max_attempts: r.get(5),
            cancel_requested: r.get(6),
            last_error: r.get(7),
            progress: r.get(8),
            payload,
            created_at: r.get(10),
            started_at: r.get::<_, Option<i64>>(11).and_then(rfc3339_us),
            finished_at: r.get::<_, Option<i64>>(12).and_then(rfc3339_us),
            started_us: r.get(11),
            finished_us: r.get(12),
        });
    }
    Ok(out)
}

/// The body of `POST .../shares/{share}/jobs`: `kind` plus that kind's options (unknown fields refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    target: Option<RestoreTarget>,
    #[serde(default)]
    overwrite: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    read_data_percent: f64,
    #[serde(default)]
    compare_live: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", msg)
}

/// A path below the share root: `/` separated, no `.`/`..` components, no NUL. `/` and empty mean the
/// whole share (`None`). Returned without the leading `/`.
pub fn restore_path(p: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(p) = p else { return Ok(None) };
    if p.contains('\0') || p.contains('\\') {
        return Err(invalid(format!("path {p:?}: only '/' separates components, and NUL is not allowed")));
    }
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(invalid(format!("path {p:?}: '.' and '..' are not allowed")));
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The directory a local restore writes to, checked once here at the API boundary and put in the job
/// payload as an absolute path (the restore writer then keeps every write below it):
/// - the operator: any absolute path;
/// - a tenant: only with `afb serve --restore-root DIR`, a relative path of normal components (no `.`,
///   `..`, backslash or NUL) below `DIR/<tenant>` (which [`tenant_restore_dir`] creates, 0700, when the
///   job is enqueued).
pub fn local_restore_target(
    scope: &Scope,
    restore_root: Option<&std::path::Path>,
    tenant: &str,
    path: &str,
) -> Result<String, ApiError> {
    if path.contains('\0') {
        return Err(invalid(format!("target path {path:?}: NUL is not allowed")));
    }
    if matches!(scope, Scope::Operator) {
        if !path.starts_with('/') {
            return Err(invalid(format!("target path {path:?} must be absolute")));
        }
        return Ok(path.to_string());
    }
    let Some(root) = restore_root else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_restore_not_allowed",
            "this server has no --restore-root: a tenant may restore to its shares only",
        ));
    };
    if path.starts_with('/') || path.contains('\\') {
        return Err(invalid(format!(
            "target path {path:?}: a tenant gives a relative path below its restore directory ('/'-separated)"
        )));
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err(invalid(format!("target path {path:?}: '.' and '..' are not allowed")));
    }
    crate::index::manifest::check_id("tenant", tenant).map_err(|e| invalid(format!("{e:#}")))?;
    let mut target = root.join(tenant);
    target.extend(parts);
    target.to_str().map(str::to_string).ok_or_else(|| invalid("target path is not UTF-8"))
}

/// Create a tenant's restore directory (0700) unless it exists; it must be a real directory, not a
/// symbolic link.
pub fn tenant_restore_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {}", dir.display()))),
    }
    let m = std::fs::symlink_metadata(dir)?;
    anyhow::ensure!(m.is_dir() && !m.file_type().is_symlink(), "{} is not a directory", dir.display());
    Ok(())
}

/// Validate a start-job body for `tenant`/`share` from `scope` and build the queue payload. A local
/// restore target goes through [`local_restore_target`].
pub fn payload_for(
    scope: &Scope,
    restore_root: Option<&std::path::Path>,
    tenant: &str,
    share: &str,
    body: &Value,
) -> Result<(JobKind, Value), ApiError> {
    let Some(obj) = body.as_object() else { return Err(invalid("the body must be a JSON object with a \"kind\"")) };
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return Err(invalid("missing \"kind\" (scan, backup, restore or verify)"));
    };
    let mut rest = obj.clone();
    rest.remove("kind");
    let rest = Value::Object(rest);
    let share_ref = ShareRef { tenant: tenant.to_string(), share: share.to_string() };
    let opts = |e: serde_json::Error| invalid(format!("{kind} options: {e}"));
    let (kind, payload) = match kind {
        "scan" => {
            serde_json::from_value::<NoOptions>(rest).map_err(opts)?;
            (JobKind::Scan, serde_json::to_value(ScanPayload { share: share_ref }))
        }
        "backup" => {
            serde_json::from_value::<NoOptions>(rest).map_err(opts)?;
            (JobKind::Backup, serde_json::to_value(BackupPayload { share: share_ref }))
        }
        "restore" => {
            let b: RestoreBody = serde_json::from_value(rest).map_err(opts)?;
            let path = restore_path(b.path.as_deref())?;
            let target = match b.target.unwrap_or(RestoreTarget::Original) {
                RestoreTarget::Share { share } => {
                    crate::index::manifest::check_id("share", &share).map_err(|e| invalid(format!("target: {e:#}")))?;
                    RestoreTarget::Share { share }
                }
                RestoreTarget::Local { path } => {
                    RestoreTarget::Local { path: local_restore_target(scope, restore_root, tenant, &path)? }
                }
                RestoreTarget::Original => RestoreTarget::Original,
            };
            let p = RestorePayload {
                share: share_ref,
                snapshot: b.snapshot.filter(|s| !s.is_empty()),
                path,
                target,
                overwrite: b.overwrite,
            };
            (JobKind::Restore, serde_json::to_value(p))
        }
        "verify" => {
            let b: VerifyBody = serde_json::from_value(rest).map_err(opts)?;
            if !(0.0..=100.0).contains(&b.read_data_percent) {
                return Err(invalid(format!("read_data_percent {} is out of range 0-100", b.read_data_percent)));
            }
            let p = VerifyPayload {
                share: share_ref,
                snapshot: b.snapshot.filter(|s| !s.is_empty()),
                read_data_percent: b.read_data_percent,
                compare_live: b.compare_live,
            };
            (JobKind::Verify, serde_json::to_value(p))
        }
        k => return Err(invalid(format!("kind {k:?}: expected scan, backup, restore or verify"))),
    };
    Ok((kind, payload.map_err(|e| ApiError::internal(e.into()))?))
}

/// A job's JSON with a link to itself.
pub fn job_json(v: &JobView) -> Value {
    let mut j = serde_json::to_value(v).unwrap_or(Value::Null);
    j["href"] = json!(format!("/api/v1/jobs/{}", v.job_id));
    j
}
