//! `afb bench queue`: claim-and-complete throughput of the PostgreSQL queue.
//!
//! Each run creates a scratch database next to the one named (so the user needs CREATEDB), enqueues
//! `jobs` noop jobs spread over `tenants` tenants, then starts `workers` tasks. Each task loops: claim up
//! to `batch` jobs (one statement), then record them all succeeded (one transaction), until the queue is
//! empty. Tasks share a pool of at most `connections` connections (PostgreSQL's default limit is 100, so
//! 1000 workers cannot each have their own). It reports jobs per second, claim latency percentiles
//! (from asking for a connection to holding the jobs) and checks, in the client and in the database, that
//! no job was claimed twice and every job succeeded exactly once.

use super::model::JobId;
use super::postgres::{PgQueue, pool_with};
use super::queue::{ClaimRef, Completion, Queue};
use anyhow::Context as _;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct QueueBenchArgs {
    /// PostgreSQL server to benchmark (a scratch database is created beside the one named, then dropped).
    #[arg(long, env = "AFB_DATABASE_URL")]
    pub database_url: String,
    /// Concurrent workers (tasks); repeat or separate with commas for several runs.
    #[arg(long, value_delimiter = ',', default_values_t = vec![10, 100, 1000])]
    pub workers: Vec<usize>,
    /// Jobs per run.
    #[arg(long, default_value_t = 50_000)]
    pub jobs: usize,
    /// Jobs claimed per claim statement (1 = one job per transaction).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Most connections the workers share (40 did best on a 2-core machine; PostgreSQL allows 100).
    #[arg(long, default_value_t = 40)]
    pub connections: usize,
    /// Tenants the jobs are spread over (the claim is fair across tenants).
    #[arg(long, default_value_t = 10)]
    pub tenants: i64,
    /// Commit queue changes with synchronous_commit = off (see `postgres::pool_with`).
    #[arg(long)]
    pub async_commit: bool,
    #[command(flatten)]
    pub output: crate::cli::OutputArgs,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueueBenchResult {
    pub workers: usize,
    pub connections: usize,
    pub batch: usize,
    pub synchronous_commit: bool,
    pub jobs: usize,
    pub tenants: i64,
    pub seconds: f64,
    /// Claims plus completions per second (one job claimed and completed counts once).
    pub jobs_per_second: f64,
    pub claim_statements: usize,
    pub claim_p50_ms: f64,
    pub claim_p95_ms: f64,
    pub claim_p99_ms: f64,
    /// Jobs a client saw claimed more than once (must be 0).
    pub duplicate_claims: usize,
    /// Jobs the database shows succeeded, and those that needed more than one claim (must be 0).
    pub succeeded_in_db: i64,
    pub reclaimed_in_db: i64,
}

/// Runs the benchmark for every worker count in `args.workers`.
pub async fn run(args: &QueueBenchArgs) -> anyhow::Result<Vec<QueueBenchResult>> {
    let mut results = Vec::new();
    for &w in &args.workers {
        let scratch = Scratch::create(&args.database_url).await?;
        let r = run_one(&scratch.url, args, w).await;
        scratch.drop_db().await?;
        results.push(r?);
    }
    Ok(results)
}

async fn run_one(url: &str, args: &QueueBenchArgs, workers: usize) -> anyhow::Result<QueueBenchResult> {
    super::migrate::migrate_url(url).await?;
    let connections = args.connections.min(workers).max(1);
    let pool = pool_with(url, connections + 1, !args.async_commit)?;
    {
        let c = pool.get().await?;
        c.execute(
            "INSERT INTO jobs (tenant_id, kind, payload) SELECT 1 + (i % $2::bigint), 'noop', '{}'::jsonb FROM generate_series(1, $1::bigint) i",
            &[&(args.jobs as i64), &args.tenants.max(1)],
        )
        .await?;
        c.batch_execute("VACUUM ANALYZE jobs").await?;
    }
    let queue = Arc::new(PgQueue::without_listener(pool.clone()));
    let lease = Duration::from_secs(60);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let completed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let target = args.jobs;
    for w in 0..workers {
        let q = queue.clone();
        let completed = completed.clone();
        let batch = args.batch.max(1);
        tasks.spawn(async move {
            let me = format!("bench-{w}");
            let mut claimed: Vec<JobId> = Vec::new();
            let mut latencies: Vec<Duration> = Vec::new();
            use std::sync::atomic::Ordering::Relaxed;
            while completed.load(Relaxed) < target {
                let t = Instant::now();
                let jobs = q.claim(&me, batch, lease).await?;
                latencies.push(t.elapsed());
                if jobs.is_empty() {
                    // Rows locked by other claimers are skipped: empty does not mean done.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let done: Vec<Completion> =
                    jobs.iter().map(|j| Completion::Succeeded { claim: ClaimRef::from(j), fan_out: None }).collect();
                q.complete(&me, &done).await?;
                completed.fetch_add(jobs.len(), Relaxed);
                claimed.extend(jobs.iter().map(|j| j.job_id));
            }
            anyhow::Ok((claimed, latencies))
        });
    }
    let mut all: Vec<JobId> = Vec::with_capacity(args.jobs);
    let mut lat: Vec<Duration> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (c, l) = r??;
        all.extend(c);
        lat.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    let duplicate_claims = total - all.len();
    let c = pool.get().await?;
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE attempts <> 1) FROM jobs",
            &[],
        )
        .await?;
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    drop(c);
    drop(queue);
    pool.close();
    Ok(QueueBenchResult {
        workers,
        connections,
        batch: args.batch,
        synchronous_commit: !args.async_commit,
        jobs: args.jobs,
        tenants: args.tenants,
        seconds,
        jobs_per_second: all.len() as f64 / seconds,
        claim_statements: lat.len(),
        claim_p50_ms: pct(0.50),
        claim_p95_ms: pct(0.95),
        claim_p99_ms: pct(0.99),
        duplicate_claims,
        succeeded_in_db: row.get(0),
        reclaimed_in_db: row.get(1),
    })
}

/// A database created for one run and dropped after it.
pub struct Scratch {
    admin_url: String,
    name: String,
    /// URL of the scratch database.
    pub url: String,
}

impl Scratch {
    /// Creates a uniquely named database on the server of `database_url`.
    pub async fn create(database_url: &str) -> anyhow::Result<Scratch> {
        let name = format!("afb_scratch_{}_{:08x}", std::process::id(), rand::random::<u32>());
        let mut u = url::Url::parse(database_url).with_context(|| format!("invalid database URL {database_url:?}"))?;
        let (client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {}", super::migrate::redact(database_url)))?;
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        drop(client);
        let _ = driver.await;
        u.set_path(&format!("/{name}"));
        Ok(Scratch { admin_url: database_url.to_string(), name, url: u.to_string() })
    }

    /// Drops the database (closing any connections still open to it).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        let (client, conn) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        drop(client);
        let _ = driver.await;
        Ok(())
    }
}

/// Prints results as a table, or as JSON lines.
pub fn print(results: &[QueueBenchResult], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(results).expect("serializable"));
        return;
    }
    println!("workers  conns  batch  sync     jobs  seconds    jobs/s   claim p50/p95/p99 ms   dup  db ok");
    for r in results {
        let ok = r.succeeded_in_db as usize == r.jobs && r.reclaimed_in_db == 0;
        println!(
            "{:>7}  {:>5}  {:>5}  {:>4}  {:>7}  {:>7.2}  {:>8.0}   {:>5.1} / {:>5.1} / {:>5.1}  {:>4}  {}",
            r.workers,
            r.connections,
            r.batch,
            if r.synchronous_commit { "on" } else { "off" },
            r.jobs,
            r.seconds,
            r.jobs_per_second,
            r.claim_p50_ms,
            r.claim_p95_ms,
            r.claim_p99_ms,
            r.duplicate_claims,
            if ok { "yes" } else { "NO" }
        );
    }
}
