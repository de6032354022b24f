//! The job system's commands: `afb migrate`, `afb worker`, `afb schedule`, `afb jobs`, `afb bench queue`.
//! All take `--database-url` (or `AFB_DATABASE_URL`).

use super::bench;
use super::handler::Handlers;
use super::metrics;
use super::model::{JobKind, NewJob};
use super::postgres::{PgQueue, pool};
use super::queue::Queue;
use super::worker::{Worker, WorkerConfig, default_worker_id};
use crate::cli::{ExitCode, OutputArgs};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the control plane is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://afb@db:5432/afb.
    #[arg(long, env = "AFB_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// `afb migrate`: apply the schema migrations not yet applied.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let applied = super::migrate::migrate_url(&args.db.database_url).await?;
    if applied.is_empty() {
        eprintln!("schema up to date ({} migrations)", super::migrate::MIGRATIONS.len());
    } else {
        eprintln!("applied migrations {applied:?}");
    }
    Ok(ExitCode::Ok)
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Jobs run at once by this process.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Lease length in seconds; heartbeats come every third of it.
    #[arg(long, default_value_t = 30.0)]
    pub lease_secs: f64,
    /// Seconds running jobs get to finish after SIGTERM before they are stopped and released.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_grace_secs: f64,
    /// Seconds between the retries of a failed job: the first delay, doubled each attempt up to 10 min.
    #[arg(long, default_value_t = 2.0)]
    pub retry_base_secs: f64,
    /// Serve /healthz and /metrics (Prometheus text) here, e.g. 0.0.0.0:9187.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Name recorded as the lease owner (default: host, pid, random suffix).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Commit queue changes with synchronous_commit = off: faster; a PostgreSQL crash can only make some
    /// jobs run again (delivery is at least once anyway).
    #[arg(long)]
    pub async_commit: bool,
    /// Test aid: `noop` jobs leave an idempotent effect file here (see jobs::noop).
    #[arg(long, env = "AFB_NOOP_EFFECTS_DIR", hide = true)]
    pub noop_effects_dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Where data jobs (scan, backup, restore, verify) read and write. Without `--repo` a worker runs `noop`
/// jobs only.
#[derive(Debug, Clone, Args, Default)]
pub struct DataArgs {
    /// Repository location (a local directory, file:///DIR or az://CONTAINER/PREFIX); share sources come
    /// from `.afb/shares.json` of its control area (the directory itself, or AFB_CONTROL_DIR for Blob).
    #[arg(long, env = "AFB_REPO")]
    pub repo: Option<String>,
    /// File holding the master key (64 hex digits); or set AFB_MASTER_KEY.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// `List Directories and Files` calls one scan job sends before it splits the rest into child jobs.
    #[arg(long, default_value_t = 2000)]
    pub scan_budget_pages: u64,
    /// Most child jobs one scan job splits into.
    #[arg(long, default_value_t = 16)]
    pub scan_max_children: usize,
    /// Listing calls in flight within one scan job.
    #[arg(long, default_value_t = 16)]
    pub scan_concurrency: usize,
    /// Entries per listing page (at most 5000; the service default when absent).
    #[arg(long)]
    pub scan_page_size: Option<u32>,
    /// Content bytes one backup part reads: a backup whose changed files exceed it (or
    /// --backup-batch-files) splits its upload into parts of contiguous node ids, run as separate jobs.
    #[arg(long, default_value_t = 1 << 30)]
    pub backup_batch_bytes: u64,
    /// Files and directories one backup part reads.
    #[arg(long, default_value_t = 20_000)]
    pub backup_batch_files: u64,
}

impl DataArgs {
    /// The data environment, or `None` without `--repo`. A missing or malformed master key is an error.
    pub fn env(&self) -> anyhow::Result<Option<super::data::DataEnv>> {
        let Some(repo) = &self.repo else { return Ok(None) };
        let target = crate::backup::cli::RepoTarget {
            repo: repo.clone(),
            tenant: "-".into(),
            share: "-".into(),
            master_key_file: self.master_key_file.clone(),
        };
        let budget = crate::scan::fanout::ListBudget {
            pages: self.scan_budget_pages.max(1),
            concurrency: self.scan_concurrency.max(1),
            page_size: self.scan_page_size,
            max_children: self.scan_max_children.max(1),
            ..Default::default()
        };
        let backup = crate::backup::parts::BatchBudget {
            bytes: self.backup_batch_bytes.max(1),
            nodes: self.backup_batch_files.max(1),
        };
        Ok(Some(
            super::data::DataEnv::new(repo.clone(), target.master_key()?)?
                .with_budget(budget)
                .with_backup_budget(backup),
        ))
    }
}

/// The handlers a worker process runs: `noop`, and with a repository the data handlers.
pub fn worker_handlers(noop_effects_dir: Option<PathBuf>, data: Option<super::data::DataEnv>) -> Handlers {
    let h = match data {
        Some(env) => super::data::data_handlers(Arc::new(env)),
        None => super::noop::builtin_handlers(),
    };
    match noop_effects_dir {
        Some(dir) => h.with(JobKind::Noop, super::noop::EffectFileHandler { dir }),
        None => h,
    }
}

/// `afb worker`: migrate, then claim and run jobs until SIGTERM or Ctrl-C.
pub async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    // SIGTERM is handled from the start: one that arrives while the worker is still migrating or
    // connecting stops it cleanly before it claims anything.
    let shutdown = CancellationToken::new();
    let signalled = signal_listener()?;
    let s = shutdown.clone();
    tokio::spawn(async move {
        signalled.await;
        s.cancel();
    });
    let url = &args.db.database_url;
    let data = args.data.env()?;
    super::migrate::migrate_url(url).await?;
    // Claims, completions and heartbeats are serialized per task; a few connections are plenty.
    let queue = Arc::new(PgQueue::connect(url, super::postgres::pool_with(url, 4, !args.async_commit)?).await?);
    let mut cfg = WorkerConfig::new(args.worker_id.clone().unwrap_or_else(default_worker_id))
        .lease(Duration::from_secs_f64(args.lease_secs));
    cfg.concurrency = args.concurrency.max(1);
    cfg.shutdown_grace = Duration::from_secs_f64(args.shutdown_grace_secs);
    cfg.retry.base = Duration::from_secs_f64(args.retry_base_secs);
    cfg.reap_every = cfg.heartbeat.min(Duration::from_secs(5));
    let worker = Worker::new(queue.clone(), worker_handlers(args.noop_effects_dir.clone(), data), cfg.clone());
    if let Some(addr) = args.metrics_addr {
        let q = queue.clone();
        let depth: metrics::DepthFn = Arc::new(move || {
            let q = q.clone();
            Box::pin(
                async move { tokio::time::timeout(Duration::from_secs(2), q.counts()).await.ok().and_then(|r| r.ok()) },
            )
        });
        let (m, s) = (worker.metrics(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, m, Some(depth), s).await {
                tracing::error!("metrics endpoint: {e:#}");
            }
        });
    }
    eprintln!("worker {} started", cfg.worker_id);
    worker.run(shutdown).await?;
    eprintln!("worker {} stopped", cfg.worker_id);
    Ok(ExitCode::Ok)
}

/// Registers for SIGTERM and Ctrl-C now (not when first polled); the future resolves when either arrives.
pub fn signal_listener() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("installing the SIGTERM handler: {e}"))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ScheduleCommand {
    /// Enqueue due jobs every `--interval-secs` (or once with `--once`).
    Run {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long, default_value_t = 30.0)]
        interval_secs: f64,
        #[arg(long)]
        once: bool,
    },
    /// Add a schedule for a share (tenant and share must exist).
    Add {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        tenant: i64,
        #[arg(long)]
        share: i64,
        #[arg(long)]
        kind: JobKind,
        /// Cron expression, UTC: "0 2 * * *", "@hourly", ...
        #[arg(long)]
        cron: String,
        /// Job payload (JSON).
        #[arg(long, default_value = "{}")]
        payload: String,
    },
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", super::migrate::redact(url)))?;
    tokio::spawn(conn);
    Ok(client)
}

/// `afb schedule`.
pub async fn schedule(args: ScheduleArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ScheduleCommand::Add { db, tenant, share, kind, cron, payload } => {
            super::migrate::migrate_url(&db.database_url).await?;
            let payload: serde_json::Value =
                serde_json::from_str(&payload).map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
            let client = connect(&db.database_url).await?;
            let id = super::schedule::add(&client, tenant, share, kind, &cron, &payload).await?;
            println!("{id}");
        }
        ScheduleCommand::Run { db, interval_secs, once } => {
            super::migrate::migrate_url(&db.database_url).await?;
            let mut client = connect(&db.database_url).await?;
            let stop = CancellationToken::new();
            let s = stop.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                s.cancel();
            });
            loop {
                let n = super::schedule::run_due(&mut client, chrono::Utc::now()).await?;
                if n > 0 {
                    tracing::info!("enqueued {n} scheduled jobs");
                }
                if once {
                    println!("{n}");
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(interval_secs)) => {}
                    _ = stop.cancelled() => break,
                }
            }
        }
    }
    Ok(ExitCode::Ok)
}

#[derive(Debug, Clone, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// Enqueue a job; prints its id.
    Enqueue {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        tenant: i64,
        #[arg(long)]
        share: Option<i64>,
        #[arg(long)]
        kind: JobKind,
        #[arg(long, default_value = "{}")]
        payload: String,
        #[arg(long, default_value_t = 0)]
        priority: i16,
        #[arg(long, default_value_t = 5)]
        max_attempts: i32,
    },
    /// Show one job: its state and its progress (bar, phase, amounts, rate, time left or taken).
    Show {
        #[command(flatten)]
        db: DatabaseArgs,
        job_id: i64,
        /// Show it again every second until the job ends.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The newest jobs (not fan-out children), one block each as `show` prints it.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Request cancellation of a job (and of a commit job's unfinished children).
    Cancel {
        #[command(flatten)]
        db: DatabaseArgs,
        job_id: i64,
    },
    /// Number of jobs in each state.
    Status {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `afb jobs`.
pub async fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.command {
        JobsCommand::Enqueue { db, .. }
        | JobsCommand::Show { db, .. }
        | JobsCommand::List { db, .. }
        | JobsCommand::Cancel { db, .. }
        | JobsCommand::Status { db, .. } => db.database_url.clone(),
    };
    super::migrate::migrate_url(&url).await?;
    let queue = PgQueue::without_listener(pool(&url, 1)?);
    match args.command {
        JobsCommand::Enqueue { tenant, share, kind, payload, priority, max_attempts, .. } => {
            let payload = serde_json::from_str(&payload).map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
            let mut job = NewJob::new(tenant, kind, payload).priority(priority).max_attempts(max_attempts);
            job.share_id = share;
            let ids = queue.enqueue(&[job]).await?;
            println!("{}", ids[0]);
        }
        JobsCommand::Show { job_id, watch, output, .. } => loop {
            let Some(j) = queue.get(job_id).await? else { anyhow::bail!("no job {job_id}") };
            if output.json {
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                println!("{}", show_line(&j));
            }
            if !watch || j.state.is_terminal() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        },
        JobsCommand::List { limit, output, .. } => {
            let jobs = queue.recent(limit).await?;
            if output.json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                for j in &jobs {
                    println!("{}", show_line(j));
                }
            }
        }
        JobsCommand::Cancel { job_id, .. } => {
            if !queue.cancel(job_id).await? {
                anyhow::bail!("job {job_id} does not exist or has already finished");
            }
        }
        JobsCommand::Status { output, .. } => {
            let c = queue.counts().await?;
            if output.json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!(
                    "waiting {} queued {} running {} succeeded {} dead {} cancelled {}",
                    c.waiting, c.queued, c.running, c.succeeded, c.dead, c.cancelled
                );
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// One job for a terminal: `job 7 backup tenant 3 running attempts 1/5` and, when it reported progress,
/// its bar, phase, amounts and timing ([`super::progress`], the dashboard's reading of the same JSON).
pub fn show_line(j: &super::model::JobRecord) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
    let p = super::progress::view(j.progress.as_ref(), j.state.is_terminal(), j.started_us, j.finished_us, now);
    let mut line = format!(
        "job {} {} tenant {} {} attempts {}/{}",
        j.job_id,
        j.kind,
        j.tenant_id,
        j.state.as_str(),
        j.attempts,
        j.max_attempts
    );
    if j.progress.is_some() || j.started_us.is_some() {
        line.push_str("\n  ");
        line.push_str(&p.line());
    }
    if !p.outcome.is_empty() {
        line.push_str("\n  ");
        line.push_str(&p.outcome);
    }
    if let Some(e) = &j.last_error {
        line.push_str(&format!("\n  last error: {e}"));
    }
    line
}

/// `afb bench queue`.
pub async fn bench_queue(a: bench::QueueBenchArgs) -> anyhow::Result<ExitCode> {
    let results = bench::run(&a).await?;
    bench::print(&results, a.output.json);
    let clean = results
        .iter()
        .all(|r| r.duplicate_claims == 0 && r.reclaimed_in_db == 0 && r.succeeded_in_db as usize == r.jobs);
    Ok(if clean { ExitCode::Ok } else { ExitCode::Problems })
}
