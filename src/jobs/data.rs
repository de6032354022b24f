//! The data handlers: `scan`, `backup`, `restore`, `verify`, `prune`, `compact`, and the `commit` of
//! fanned-out scans and split backups.
//!
//! ```no_run
//! # async fn demo(master: afb::repository::MasterKey) -> anyhow::Result<()> {
//! use afb::jobs::data::{DataEnv, data_handlers};
//! use afb::jobs::embedded::EmbeddedRunner;
//! let env = DataEnv::new("/srv/afb-repo", master)?; // once per process
//! let runner = EmbeddedRunner::start(data_handlers(env.into()), 4);
//! # Ok(()) }
//! ```
//!
//! A [`DataEnv`] is built once per worker process: the repository location, the master key (from the
//! worker's configuration, never from a payload), the share settings store in the repository's control
//! area (`{repo}/.afb/shares.json`, [`crate::jobs::settings`]) where each share's Azure source is, and the
//! listing budget of fanned-out scans. Payloads are the shapes of [`super::payloads`].
//!
//! Idempotence (see [`super::handler`]):
//! - `scan` and `backup` are runs of [`crate::scan::fanout`] named [`run_name`]: the share snapshot is taken
//!   once per run (tagged with the run, recorded in `run.json`; a re-run adopts a tagged snapshot it
//!   finds unrecorded and deletes surplus ones), parts list deterministically and write fragments under
//!   fixed names, and the commit recognises an index snapshot it already committed (same share snapshot).
//! - A `backup` then backs up that index snapshot under a snapshot id derived from the run
//!   ([`run_snapshot_id`], create-only), in this job or split into `backup` parts and a `backup_parts`
//!   commit ([`crate::backup::parts`]); any job of the run that finds the manifest stops, so a re-run or a
//!   zombie commits no second backup snapshot. Content objects are content-addressed; a crash mid-upload
//!   leaves only unreferenced objects; a part's result is its part record, written last.
//! - `restore` skips files already present with the same size and QuickXorHash.
//! - `verify` only reads.
//! - `prune` is the repository's own two-phase prune (condemn, then sweep deletion records), safe to
//!   repeat and serialised per share by its lock marker.
//! - `compact` merges index objects (nothing to do the second time) under the same lock, and deletes
//!   only node-index files no index snapshot references.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use async_trait::async_trait;
use serde_json::json;

use super::handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
use super::model::{JobKind, NewJob};
use super::payloads::{
    BackupJob, BackupPart, CommitOp, CommitPayload, CompactPayload, PendingDir, PrunePayload, RestorePayload,
    RestoreTarget, ScanJob, ScanPart, ShareRef, VerifyPayload,
};
use crate::azure::credential::AccountConfig;
use crate::azure::{ClientOptions, FileServiceClient, ShareClient};
use crate::backup::Concurrency;
use crate::backup::cli::RepoTarget;
use crate::backup::parts::{self, BatchBudget, PartDone, PartRange, Planned, Upload};
use crate::backup::restore::{RestoreOptions, Target, restore};
use crate::backup::verify::{VerifyOptions, verify};
use crate::backup::{BackupSummary, Progress, latest_manifest};
use crate::index::NodeIndex;
use crate::index::manifest::check_id;
use crate::index::snapshot::WriteOptions;
use crate::index::sort::SpillOptions;
use crate::jobs::settings::Settings;
use crate::repository::{MasterKey, Repository, RepositoryConfig};
use crate::scan::fanout::{self, ListBudget, ROOT_PART, RunInfo};

/// What every data handler of one worker process shares.
pub struct DataEnv {
    /// Repository location (`--repo`): a local directory (object-store URLs as `RepoTarget` opens them).
    pub repo: String,
    master: MasterKey,
    settings: Settings,
    /// How much one scan job lists before it fans out.
    pub budget: ListBudget,
    /// How much one backup part reads before a backup's upload is split into parts.
    pub backup_budget: BatchBudget,
    /// Azure client options for share sources.
    pub client_options: ClientOptions,
    /// Where sorting spills during a commit.
    pub spill: SpillOptions,
    /// The Parquet node index's location; the repository root (where every command keeps it) when `None`.
    pub index_location: Option<String>,
}

impl DataEnv {
    /// An environment for the repository at `repo`, with the share settings of its control area
    /// ([`crate::jobs::settings::settings_file`]). Fails when a Blob repository has no control area set.
    pub fn new(repo: impl Into<String>, master: MasterKey) -> anyhow::Result<Self> {
        let repo = repo.into();
        Ok(DataEnv {
            settings: Settings::new(crate::jobs::settings::settings_file(&repo)?, Some(master.clone())),
            repo,
            master,
            budget: ListBudget::default(),
            backup_budget: BatchBudget::default(),
            client_options: ClientOptions::default(),
            spill: SpillOptions::default(),
            index_location: None,
        })
    }

    /// Keeps the node index at `location` instead of the repository root. Scan and backup jobs of one
    /// worker use the same index.
    pub fn with_index(mut self, location: impl Into<String>) -> Self {
        self.index_location = Some(location.into());
        self
    }

    /// Sets the listing budget of scan jobs.
    pub fn with_budget(mut self, budget: ListBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Sets how much one backup part reads.
    pub fn with_backup_budget(mut self, budget: BatchBudget) -> Self {
        self.backup_budget = budget;
        self
    }

    fn target(&self, tenant: &str, share: &str) -> RepoTarget {
        RepoTarget { repo: self.repo.clone(), tenant: tenant.into(), share: share.into(), master_key_file: None }
    }

    /// The Parquet node index (the repository root unless [`Self::with_index`] moved it).
    pub fn index(&self) -> anyhow::Result<NodeIndex> {
        match &self.index_location {
            Some(l) => NodeIndex::open(l),
            None => self.target("-", "-").index(),
        }
    }

    /// The content repository of one share.
    pub async fn repository(&self, tenant: &str, share: &str) -> anyhow::Result<Repository> {
        let store = self.target(tenant, share).store()?;
        Repository::open(store, &self.master, tenant, share, RepositoryConfig::default())
            .await
            .with_context(|| format!("opening repository {} for {tenant}/{share}", self.repo))
    }

    /// The Azure file service and share name of a share, from the settings store, its client held to
    /// the address policy stored with the source. Not configured is a permanent error.
    pub fn source(&self, tenant: &str, share: &str) -> Result<(FileServiceClient, String), JobError> {
        let Some(src) = self.settings.source(tenant, share)? else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "share {tenant}/{share} has no Azure source configured (PUT /api/v1/tenants/{tenant}/shares/{share}/settings)"
            )));
        };
        let s = &src.input;
        let (cfg, sas_share) = match (&s.connection_string, &s.sas_url) {
            (Some(c), _) => (
                AccountConfig::from_connection_string(c).map_err(|e| {
                    JobError::permanent(anyhow::anyhow!("share {tenant}/{share}: invalid connection string: {e}"))
                })?,
                None,
            ),
            (None, Some(u)) => {
                let (cfg, rest) = AccountConfig::from_sas_url(u).map_err(|e| {
                    JobError::permanent(anyhow::anyhow!("share {tenant}/{share}: invalid SAS URL: {e}"))
                })?;
                (cfg, rest.split('/').next().filter(|s| !s.is_empty()).map(str::to_string))
            }
            (None, None) => {
                return Err(JobError::permanent(anyhow::anyhow!(
                    "share {tenant}/{share}: settings hold no credential"
                )));
            }
        };
        let name = s.azure_share.clone().or(sas_share).unwrap_or_else(|| share.to_string());
        let options = ClientOptions { address_policy: src.address_policy, ..self.client_options.clone() };
        let svc = FileServiceClient::new(cfg, options)
            .map_err(|e| JobError::permanent(anyhow::anyhow!("share {tenant}/{share}: {e}")))?;
        Ok((svc, name))
    }
}

/// The handlers of a worker with a repository: `noop` plus scan, backup, restore, verify, prune, compact
/// and commit, all sharing `env`. `afb worker --repo`, `afb serve` and the embedded runner use the same set.
pub fn data_handlers(env: Arc<DataEnv>) -> Handlers {
    super::noop::builtin_handlers()
        .with(JobKind::Scan, ScanHandler { env: env.clone() })
        .with(JobKind::Backup, BackupHandler { env: env.clone() })
        .with(JobKind::Commit, CommitHandler { env: env.clone() })
        .with(JobKind::Restore, RestoreHandler { env: env.clone() })
        .with(JobKind::Verify, VerifyHandler { env: env.clone() })
        .with(JobKind::Prune, PruneHandler { env: env.clone() })
        .with(JobKind::Compact, CompactHandler { env })
}

/// Runs `f` until it finishes or the job is told to stop (cancelled, lease lost, shutdown); a stopped job's
/// future is dropped at its next await point, so a job that lost its lease does not go on to commit.
async fn stoppable<T>(ctx: &JobContext, f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        r = f => r,
        _ = ctx.cancelled().cancelled() => Err(anyhow::anyhow!("stopped")),
    }
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, payload: &serde_json::Value) -> Result<T, JobError> {
    serde_json::from_value(payload.clone())
        .map_err(|e| JobError::permanent(anyhow::anyhow!("malformed {kind} payload: {e}")))
}

fn check_share(s: &ShareRef) -> Result<(), JobError> {
    check_id("tenant", &s.tenant).map_err(JobError::Permanent)?;
    check_id("share", &s.share).map_err(JobError::Permanent)
}

/// A job like `parent` (tenant, share, priority, attempts) of another kind and payload.
fn like(parent: &JobContext, kind: JobKind, payload: serde_json::Value) -> NewJob {
    let j = &parent.job;
    let mut n = NewJob::new(j.tenant_id, kind, payload).priority(j.priority).max_attempts(j.max_attempts);
    n.share_id = j.share_id;
    n
}

struct ScanHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for ScanHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let job: ScanJob = parse("scan", payload)?;
        check_share(&job.share)?;
        match job.part {
            None => start(&self.env, ctx, &job.share, CommitOp::Scan).await,
            Some(part) => {
                let children = list_and_write(&self.env, ctx, &job.share, &part).await?;
                if children.is_empty() {
                    return Ok(Outcome::Done);
                }
                let commit = CommitPayload::new(job.share.clone(), part.run.clone(), CommitOp::Join);
                Ok(Outcome::FanOut { children, commit: like(ctx, JobKind::Commit, serde_json::to_value(commit)?) })
            }
        }
    }
}

struct BackupHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for BackupHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: BackupJob = parse("backup", payload)?;
        check_share(&p.share)?;
        match &p.part {
            None => start(&self.env, ctx, &p.share, CommitOp::Backup).await,
            Some(part) => {
                backup_part(&self.env, ctx, &p.share, part).await?;
                Ok(Outcome::Done)
            }
        }
    }
}

/// The run a root `scan` or `backup` job starts: `job-{job id}-{enqueue time in µs}`, the same for every
/// attempt of the job and never the same for two jobs, even of queues whose ids start again at 1 (the
/// embedded queue after a restart) over one repository.
pub fn run_name(job: &super::model::ClaimedJob) -> String {
    format!("job-{}-{}", job.job_id, job.created_us)
}

/// The root job of a run: take (or find) the run's share snapshot, list the root part, and either finish
/// at once (the share fit in the budget) or fan out with a commit job doing `op`.
async fn start(env: &DataEnv, ctx: &JobContext, share: &ShareRef, op: CommitOp) -> Result<Outcome, JobError> {
    let (svc, azure_share) = env.source(&share.tenant, &share.share)?;
    let index = env.index()?;
    let run = run_name(&ctx.job);
    ctx.progress(json!({ "phase": "snapshot" }));
    let info = fanout::start_run(&index, &svc, &share.tenant, &share.share, &azure_share, &run).await?;
    let part = ScanPart {
        run: run.clone(),
        id: ROOT_PART.into(),
        azure_share: info.azure_share.clone(),
        share_snapshot: info.share_snapshot.clone(),
        dirs: vec![PendingDir { path: String::new(), file_id: crate::ids::FileId::ROOT, marker: None }],
    };
    let children = list_and_write_with(env, ctx, share, &part, &svc).await?;
    if children.is_empty() {
        return finish(env, ctx, share, &svc, &info, op).await;
    }
    let commit = CommitPayload::new(share.clone(), run, op);
    Ok(Outcome::FanOut { children, commit: like(ctx, JobKind::Commit, serde_json::to_value(commit)?) })
}

async fn list_and_write(
    env: &DataEnv,
    ctx: &JobContext,
    share: &ShareRef,
    part: &ScanPart,
) -> Result<Vec<NewJob>, JobError> {
    let (svc, _) = env.source(&share.tenant, &share.share)?;
    list_and_write_with(env, ctx, share, part, &svc).await
}

/// Lists one part within the budget, writes its fragment, and returns the children for its frontier.
async fn list_and_write_with(
    env: &DataEnv,
    ctx: &JobContext,
    share: &ShareRef,
    part: &ScanPart,
    svc: &FileServiceClient,
) -> Result<Vec<NewJob>, JobError> {
    let index = env.index()?;
    let snap: ShareClient = svc.share(&part.azure_share).at_snapshot(&part.share_snapshot);
    let listing = fanout::list_part(&snap, part.dirs.clone(), &env.budget, ctx.cancelled(), |st| {
        ctx.progress(json!({ "phase": "listing", "part": part.id, "pages": st.pages, "directories": st.directories, "files": st.files, "bytes": st.bytes }));
    })
    .await?;
    let groups = fanout::split(listing.frontier, env.budget.max_children);
    let ids = fanout::child_ids(&part.id, groups.len());
    fanout::write_part(
        &index,
        &share.tenant,
        &share.share,
        &part.run,
        &part.id,
        &listing.rows,
        &listing.stats,
        ids.clone(),
    )
    .await?;
    let st = listing.stats;
    ctx.progress(json!({ "phase": "listed", "part": part.id, "pages": st.pages, "directories": st.directories, "files": st.files, "bytes": st.bytes, "children": ids.len() }));
    let mut children = Vec::with_capacity(groups.len());
    for (id, dirs) in ids.into_iter().zip(groups) {
        let child = ScanJob {
            share: share.clone(),
            part: Some(ScanPart {
                run: part.run.clone(),
                id,
                azure_share: part.azure_share.clone(),
                share_snapshot: part.share_snapshot.clone(),
                dirs,
            }),
        };
        children.push(like(ctx, JobKind::Scan, serde_json::to_value(child)?));
    }
    Ok(children)
}

struct CommitHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for CommitHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: CommitPayload = parse("commit", payload)?;
        check_share(&p.share)?;
        if p.op == CommitOp::Join {
            return Ok(Outcome::Done);
        }
        let (svc, _) = self.env.source(&p.share.tenant, &p.share.share)?;
        let index = self.env.index()?;
        let info = fanout::load_run(&index, &p.share.tenant, &p.share.share, &p.run).await?;
        if p.op == CommitOp::BackupParts {
            let upload = p
                .upload
                .as_ref()
                .ok_or_else(|| JobError::permanent(anyhow::anyhow!("a backup_parts commit without its upload")))?;
            commit_backup_parts(&self.env, ctx, &p.share, &svc, &info, upload, &p.parts).await?;
            return Ok(Outcome::Done);
        }
        finish(&self.env, ctx, &p.share, &svc, &info, p.op).await
    }
}

/// Commits the run's index snapshot, then (for a backup) backs it up: in this job, or split into parts
/// (the outcome then fans out into them and a `backup_parts` commit).
async fn finish(
    env: &DataEnv,
    ctx: &JobContext,
    share: &ShareRef,
    svc: &FileServiceClient,
    info: &RunInfo,
    op: CommitOp,
) -> Result<Outcome, JobError> {
    let index = env.index()?;
    ctx.progress(json!({ "phase": "committing index" }));
    let (m, stats) = stoppable(
        ctx,
        fanout::commit_run(&index, &share.tenant, &share.share, info, env.spill.clone(), WriteOptions::default()),
    )
    .await?;
    fanout::remove_parts(&index, &share.tenant, &share.share, &info.run).await?;
    // A stray share snapshot of this run (a zombie root job's) goes now at the latest.
    fanout::remove_strays(svc, info, &fanout::run_tag(&share.tenant, &share.share, &info.run)).await?;
    let t = m.totals;
    ctx.progress(json!({
        "phase": "indexed", "index_snapshot": m.snapshot_id, "files": t.files, "directories": t.dirs, "bytes": t.bytes,
        "parts": stats.parts, "new_node_ids": stats.new_node_ids, "already_committed": stats.already_committed,
    }));
    if op == CommitOp::Backup {
        return backup_index_snapshot(env, ctx, share, svc, info, m.snapshot_id).await;
    }
    Ok(Outcome::Done)
}

/// The backup snapshot id of a run: the time of its share snapshot and 8 hex digits of
/// BLAKE3(`{tenant}/{share}/{run}`), so every claim of every job of the run commits (create-only) the
/// same id, and a claim that lost its lease cannot commit a second snapshot.
pub fn run_snapshot_id(share: &ShareRef, info: &RunInfo) -> anyhow::Result<String> {
    crate::repository::manifest::derived_snapshot_id(
        &info.share_snapshot,
        &fanout::run_tag(&share.tenant, &share.share, &info.run),
    )
}

/// Plans the backup of the run's index snapshot: within the worker's backup budget it is stored and
/// committed here; beyond it, the outcome fans out into one `backup` part per node range and a
/// `backup_parts` commit.
async fn backup_index_snapshot(
    env: &DataEnv,
    ctx: &JobContext,
    share: &ShareRef,
    svc: &FileServiceClient,
    info: &RunInfo,
    index_snapshot: i64,
) -> Result<Outcome, JobError> {
    let index = env.index()?;
    let mut repo = env.repository(&share.tenant, &share.share).await?;
    let snapshot_id = run_snapshot_id(share, info).map_err(JobError::Permanent)?;
    // The previous backup is fixed here, in the upload every part and the commit receive.
    let previous = match crate::backup::load_manifest_opt(&repo, &snapshot_id).await? {
        Some(m) => m.parent,
        None => latest_manifest(&repo).await?.map(|m| m.snapshot_id),
    };
    let upload = Upload { snapshot_id, index_snapshot, previous };
    let at = svc.share(&info.azure_share).at_snapshot(&info.share_snapshot);
    let progress = JobProgress::new(ctx);
    ctx.progress(json!({ "phase": "planning backup", "snapshot_id": upload.snapshot_id }));
    let planned = stoppable(
        ctx,
        parts::plan_upload(&mut repo, &index, &at, &upload, &env.backup_budget, Concurrency::default(), &progress),
    )
    .await?;
    match planned {
        Planned::Committed(sum) => {
            report_backup(ctx, &sum);
            Ok(Outcome::Done)
        }
        Planned::Split(ranges) => {
            ctx.progress(json!({ "phase": "split", "snapshot_id": upload.snapshot_id, "parts": ranges.len() }));
            let mut children = Vec::with_capacity(ranges.len());
            for range in &ranges {
                let part = BackupJob {
                    share: share.clone(),
                    part: Some(BackupPart { run: info.run.clone(), upload: upload.clone(), range: range.clone() }),
                };
                children.push(like(ctx, JobKind::Backup, serde_json::to_value(part)?));
            }
            let commit = CommitPayload {
                share: share.clone(),
                run: info.run.clone(),
                op: CommitOp::BackupParts,
                upload: Some(upload),
                parts: ranges,
            };
            Ok(Outcome::FanOut { children, commit: like(ctx, JobKind::Commit, serde_json::to_value(commit)?) })
        }
    }
}

/// One part of a split backup: stores the nodes of its range and writes its part record.
async fn backup_part(env: &DataEnv, ctx: &JobContext, share: &ShareRef, part: &BackupPart) -> Result<(), JobError> {
    let (svc, _) = env.source(&share.tenant, &share.share)?;
    let index = env.index()?;
    let info = fanout::load_run(&index, &share.tenant, &share.share, &part.run).await?;
    let mut repo = env.repository(&share.tenant, &share.share).await?;
    let at = svc.share(&info.azure_share).at_snapshot(&info.share_snapshot);
    let progress = JobProgress::new(ctx);
    let r = &part.range;
    let done = stoppable(
        ctx,
        parts::run_part(&mut repo, &index, &at, &part.run, &part.upload, r, Concurrency::default(), &progress),
    )
    .await?;
    let (sum, result) = match &done {
        PartDone::Stored(s) => (Some(s), "stored"),
        PartDone::AlreadyStored(s) => (Some(s), "already_stored"),
        PartDone::AlreadyCommitted => (None, "already_committed"),
    };
    ctx.progress(json!({
        "phase": "done", "part": r.id, "first": r.first, "last": r.last, "snapshot_id": part.upload.snapshot_id, "result": result,
        "files_new": sum.map(|s| s.files_new), "files_changed": sum.map(|s| s.files_changed), "bytes_read": sum.map(|s| s.bytes_read),
        "bytes_uploaded": sum.map(|s| s.bytes_uploaded), "skipped": sum.map(|s| s.skipped.len()),
    }));
    Ok(())
}

/// The commit of a split backup: the parts' results and the reused versions into one manifest.
async fn commit_backup_parts(
    env: &DataEnv,
    ctx: &JobContext,
    share: &ShareRef,
    svc: &FileServiceClient,
    info: &RunInfo,
    upload: &Upload,
    ranges: &[PartRange],
) -> Result<(), JobError> {
    let index = env.index()?;
    let mut repo = env.repository(&share.tenant, &share.share).await?;
    ctx.progress(json!({ "phase": "committing backup", "snapshot_id": upload.snapshot_id, "parts": ranges.len() }));
    let sum =
        stoppable(ctx, parts::commit_parts(&mut repo, &index, &info.run, upload, ranges, &info.share_snapshot)).await?;
    fanout::remove_strays(svc, info, &fanout::run_tag(&share.tenant, &share.share, &info.run)).await?;
    report_backup(ctx, &sum);
    Ok(())
}

fn report_backup(ctx: &JobContext, sum: &BackupSummary) {
    ctx.progress(json!({
        "phase": "done", "snapshot_id": sum.snapshot_id, "index_snapshot": sum.index_snapshot, "already_committed": sum.already_committed,
        "files_new": sum.files_new, "files_changed": sum.files_changed, "files_unchanged": sum.files_unchanged,
        "bytes_read": sum.bytes_read, "bytes_uploaded": sum.bytes_uploaded, "skipped": sum.skipped.len(), "warnings": sum.warnings.len(),
    }));
}

/// Backup progress as job progress: files and bytes read so far of the totals, and `elapsed_ms` since the
/// backup began planning (its rate and ETA are computed from these, see [`super::progress`]).
struct JobProgress<'a> {
    ctx: &'a JobContext,
    started: std::time::Instant,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    /// Milliseconds after `started` of the last report.
    reported_ms: AtomicU64,
}

/// Reports come at least this often while files complete (the runner keeps only the latest).
const REPORT_EVERY_MS: u64 = 250;

impl<'a> JobProgress<'a> {
    fn new(ctx: &'a JobContext) -> Self {
        JobProgress {
            ctx,
            started: std::time::Instant::now(),
            files_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            reported_ms: AtomicU64::new(0),
        }
    }

    fn report(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.reported_ms.store(ms, Ordering::Relaxed);
        self.ctx.progress(json!({
            "phase": "backup",
            "files": self.files.load(Ordering::Relaxed), "files_total": self.files_total.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed), "bytes_total": self.bytes_total.load(Ordering::Relaxed),
            "elapsed_ms": ms,
        }));
    }
}

impl Progress for JobProgress<'_> {
    fn start(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.report();
    }
    fn file_done(&self, _path: &str, bytes: u64) {
        let f = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        // The runner keeps only the latest value; building it for every file is wasted work.
        let due =
            self.started.elapsed().as_millis() as u64 >= self.reported_ms.load(Ordering::Relaxed) + REPORT_EVERY_MS;
        if f.is_multiple_of(64) || bytes > (1 << 20) || due {
            self.report();
        }
    }
    fn finish(&self) {
        self.report();
    }
}

struct RestoreHandler {
    env: Arc<DataEnv>,
}

/// A share client for restoring into, created if it does not exist.
async fn ensure_share(svc: &FileServiceClient, name: &str) -> anyhow::Result<ShareClient> {
    let share = svc.share(name);
    match share.create().await {
        Ok(()) => {}
        Err(e) if e.code() == Some("ShareAlreadyExists") => {}
        Err(e) => return Err(e).with_context(|| format!("creating share {name}")),
    }
    Ok(share)
}

#[async_trait]
impl JobHandler for RestoreHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: RestorePayload = parse("restore", payload)?;
        check_share(&p.share)?;
        let target = match &p.target {
            RestoreTarget::Original => {
                let (svc, name) = self.env.source(&p.share.tenant, &p.share.share)?;
                Target::Share(ensure_share(&svc, &name).await?)
            }
            RestoreTarget::Share { share } => {
                check_id("share", share).map_err(JobError::Permanent)?;
                let (svc, name) = self.env.source(&p.share.tenant, share)?;
                Target::Share(ensure_share(&svc, &name).await?)
            }
            RestoreTarget::Local { path } => Target::Local(local_root(path)?),
        };
        let mut repo = self.env.repository(&p.share.tenant, &p.share.share).await?;
        ctx.progress(json!({ "phase": "restoring" }));
        let s = stoppable(
            ctx,
            restore(
                &mut repo,
                RestoreOptions {
                    snapshot: p.snapshot.clone(),
                    path: p.path.clone(),
                    target,
                    overwrite: p.overwrite,
                    concurrency: Default::default(),
                },
            ),
        )
        .await?;
        ctx.progress(json!({
            "phase": "done", "snapshot_id": s.snapshot_id, "files": s.files_restored, "directories": s.dirs, "bytes": s.bytes_written,
            "files_already_present": s.files_already_present, "conflicts": s.conflicts.len(),
            "damaged": s.damaged.len(), "refused": s.refused.len(),
        }));
        // Everything else was restored; the job fails naming what was not, so no one mistakes it for complete.
        let left_out = [
            (&s.conflicts, "existing files differ and were not overwritten (set overwrite)"),
            (&s.damaged, "files are damaged in the repository and were not restored"),
            (&s.refused, "entries were refused: writing them would leave the restore target"),
        ];
        if let Some((list, what)) = left_out.into_iter().find(|(list, _)| !list.is_empty()) {
            return Err(JobError::permanent(anyhow::anyhow!("{} {what}, e.g. {}", list.len(), list[0])));
        }
        Ok(Outcome::Done)
    }
}

/// The directory a local restore writes below: the API put an absolute path of normal components in the
/// payload (a tenant's below its `--restore-root` directory); anything else is refused, whoever enqueued it.
fn local_root(path: &str) -> Result<PathBuf, JobError> {
    use std::path::Component;
    let p = PathBuf::from(path);
    let normal = p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !p.is_absolute() || !normal || path.contains('\0') {
        return Err(JobError::permanent(anyhow::anyhow!(
            "restore target {path:?}: a local target must be an absolute path without '.' or '..'"
        )));
    }
    Ok(p)
}

struct VerifyHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for VerifyHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: VerifyPayload = parse("verify", payload)?;
        check_share(&p.share)?;
        if !(0.0..=100.0).contains(&p.read_data_percent) {
            return Err(JobError::permanent(anyhow::anyhow!(
                "read_data_percent must be within 0..=100, not {}",
                p.read_data_percent
            )));
        }
        let live = if p.compare_live {
            let (svc, name) = self.env.source(&p.share.tenant, &p.share.share)?;
            Some(svc.share(&name))
        } else {
            None
        };
        let index = self.env.index()?;
        let mut repo = self.env.repository(&p.share.tenant, &p.share.share).await?;
        ctx.progress(json!({ "phase": "verifying" }));
        let o = stoppable(
            ctx,
            verify(
                &mut repo,
                VerifyOptions {
                    snapshot: p.snapshot.clone(),
                    read_data: p.read_data_percent >= 100.0,
                    read_data_subset: if p.read_data_percent >= 100.0 { 0.0 } else { p.read_data_percent },
                    index: Some(&index),
                    compare_live: live,
                },
            ),
        )
        .await?;
        ctx.progress(json!({
            "phase": "done", "snapshot_id": o.snapshot_id, "objects_checked": o.objects_checked, "chunks_checked": o.chunks_checked,
            "packs_read": o.packs_read, "nodes_compared": o.nodes_compared, "problems": o.problems.len(),
        }));
        if !o.problems.is_empty() {
            return Err(JobError::permanent(anyhow::anyhow!(
                "verify of {} found {} problems, first: {}",
                o.snapshot_id,
                o.problems.len(),
                o.problems[0]
            )));
        }
        Ok(Outcome::Done)
    }
}

struct PruneHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for PruneHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: PrunePayload = parse("prune", payload)?;
        check_share(&p.share)?;
        let mut repo = self.env.repository(&p.share.tenant, &p.share.share).await?;
        ctx.progress(json!({ "phase": "pruning", "dry_run": p.dry_run }));
        let opts = crate::repository::prune::PruneOptions { dry_run: p.dry_run, ..Default::default() };
        let r = stoppable(ctx, async { Ok(crate::repository::prune::prune(&mut repo, &opts).await?) }).await?;
        ctx.progress(json!({ "phase": "done", "dry_run": p.dry_run, "report": r }));
        Ok(Outcome::Done)
    }
}

struct CompactHandler {
    env: Arc<DataEnv>,
}

#[async_trait]
impl JobHandler for CompactHandler {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        let p: CompactPayload = parse("compact", payload)?;
        check_share(&p.share)?;
        let mut repo = self.env.repository(&p.share.tenant, &p.share.share).await?;
        let index = self.env.index()?;
        ctx.progress(json!({ "phase": "compacting chunk index" }));
        let stale_after = crate::repository::prune::PruneOptions::default().stale_after;
        let stats =
            stoppable(ctx, async { Ok(crate::repository::prune::compact_index(&mut repo, stale_after).await?) })
                .await?;
        ctx.progress(json!({ "phase": "collecting node-index garbage", "index": stats }));
        let grace = std::time::Duration::from_secs(p.grace_secs);
        let deleted = stoppable(ctx, index.gc(&p.share.tenant, &p.share.share, grace)).await?;
        ctx.progress(json!({ "phase": "done", "index": stats, "node_index_files_deleted": deleted.len() }));
        Ok(Outcome::Done)
    }
}
