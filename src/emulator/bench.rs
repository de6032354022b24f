//! `afb bench emulator`: the emulator's raw ceiling, in requests per second with many requests in
//! flight, for the three requests a backup scan and an incremental backup make most: a listing page,
//! a small-file GET (of the live share and through a share snapshot) and a Create File. Requests go through the project's own client (`crate::azure`),
//! to an emulator started in this process on a temporary directory (or to `--connection-string`).
//!
//! Each operation runs for `--seconds` with `--concurrency` requests in flight; the report gives
//! requests per second and latency percentiles (milliseconds).

use crate::azure::client::{DirectoryClient, FileServiceClient};
use crate::azure::credential::AccountConfig;
use crate::azure::model::{ClientOptions, NodeProps};
use crate::cli::{ExitCode, OutputArgs};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `afb bench emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchEmulatorArgs {
    /// The emulator (or account) to measure; by default one is started in this process on a
    /// temporary directory.
    #[arg(long)]
    pub connection_string: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds each operation runs.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Entries of the listed directory; every listing request returns all of them as one page (at
    /// most 5000).
    #[arg(long, default_value_t = 1000)]
    pub list_entries: u32,
    /// Size of each file read by the GET benchmark, bytes.
    #[arg(long, default_value_t = 4096)]
    pub file_size: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What one operation measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpReport {
    pub op: String,
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One request of a benchmark: the argument is the request's sequence number.
type Request = Arc<dyn Fn(u64) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Small files written into `small/` for the GET loops (`f0000` ...).
const SMALL_FILES: u64 = 1000;

/// [`drive`] of `size`-byte GETs of the small files in `dir`, round robin.
async fn drive_gets(
    op: &str,
    concurrency: usize,
    duration: Duration,
    dir: DirectoryClient,
    size: u64,
) -> anyhow::Result<OpReport> {
    let request: Request = Arc::new(move |i| {
        let f = dir.file(&format!("f{:04}", i % SMALL_FILES));
        Box::pin(async move {
            let (bytes, _) = f.download_range(0, size).await?;
            anyhow::ensure!(bytes.len() as u64 == size, "a GET returned {} bytes", bytes.len());
            Ok(())
        })
    });
    drive(op, concurrency, duration, u64::MAX, request).await
}

/// Runs `request` with `concurrency` in flight for `duration` (or until `limit` requests are done)
/// and measures it.
async fn drive(
    op: &str,
    concurrency: usize,
    duration: Duration,
    limit: u64,
    request: Request,
) -> anyhow::Result<OpReport> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, request) = (Arc::clone(&next), Arc::clone(&request));
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || Instant::now() >= deadline {
                    return Ok::<_, anyhow::Error>(latencies_us);
                }
                let t = Instant::now();
                request(i).await?;
                latencies_us.push(t.elapsed().as_micros() as u64);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done??);
    }
    let seconds = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    Ok(OpReport {
        op: op.to_string(),
        requests: all.len() as u64,
        seconds,
        requests_per_sec: all.len() as f64 / seconds,
        p50_ms: pct(0.5).unwrap_or(0) as f64 / 1000.0,
        p99_ms: pct(0.99).unwrap_or(0) as f64 / 1000.0,
    })
}

/// Runs `afb bench emulator` and prints the report.
pub async fn run(args: BenchEmulatorArgs) -> anyhow::Result<ExitCode> {
    let data = tempfile::tempdir()?;
    let emulator = match &args.connection_string {
        Some(_) => None,
        None => Some(super::Emulator::start(super::EmulatorConfig {
            addr: "127.0.0.1:0".parse().expect("a socket address"),
            data: data.path().to_path_buf(),
            faults: Default::default(),
            virtual_shares: Vec::new(),
            tls: Default::default(),
        })?),
    };
    let conn = match (&args.connection_string, &emulator) {
        (Some(c), _) => c.clone(),
        (None, Some(e)) => e.connection_string(),
        (None, None) => unreachable!("an emulator is started when no connection string is given"),
    };
    let account = AccountConfig::from_connection_string(&conn)?;
    let concurrency = args.concurrency.max(1);
    let client = FileServiceClient::new(account, ClientOptions { max_concurrency: concurrency, ..Default::default() })?;
    let share_name = format!("bench{}", std::process::id());
    let share = client.share(&share_name);
    share.create().await?;
    for dir in ["list", "small", "create"] {
        share.directory(dir).create(&NodeProps::default()).await?;
    }
    let setup = Duration::from_secs(3600);
    let props = Arc::new(NodeProps::default());

    // Fixtures: the listed directory and the small files.
    let list_dir = share.directory("list");
    let (d, p) = (list_dir.clone(), Arc::clone(&props));
    drive(
        "setup",
        concurrency,
        setup,
        args.list_entries.min(5000) as u64,
        Arc::new(move |i| {
            let (f, p) = (d.file(&format!("entry-{i:06}")), Arc::clone(&p));
            Box::pin(async move { Ok(f.create(0, &p).await.map(|_| ())?) })
        }),
    )
    .await?;
    let content = Bytes::from(vec![0x5au8; args.file_size]);
    let small = share.directory("small");
    let (d, p, c) = (small.clone(), Arc::clone(&props), content.clone());
    drive(
        "setup",
        concurrency,
        setup,
        SMALL_FILES,
        Arc::new(move |i| {
            let (f, p, c) = (d.file(&format!("f{i:04}")), Arc::clone(&p), c.clone());
            Box::pin(async move { Ok(f.upload(c, &p).await?) })
        }),
    )
    .await?;

    let duration = Duration::from_secs_f64(args.seconds);
    let mut reports = Vec::new();
    let d = list_dir.clone();
    let page = args.list_entries.min(5000);
    reports.push(
        drive(
            &format!("list page of {page}"),
            concurrency,
            duration,
            u64::MAX,
            Arc::new(move |_| {
                let d = d.clone();
                Box::pin(async move {
                    let listed = d.list_page(None, Some(page)).await?;
                    anyhow::ensure!(
                        listed.entries.len() == page as usize,
                        "a listing page has {} entries",
                        listed.entries.len()
                    );
                    Ok(())
                })
            }),
        )
        .await?,
    );
    let size = args.file_size as u64;
    reports.push(drive_gets(&format!("GET of a {size}-byte file"), concurrency, duration, small.clone(), size).await?);
    // The same files read through a share snapshot, as a backup reads them (the emulator resolves
    // snapshot paths through its directory cache).
    let snapshot = share.create_snapshot().await?;
    let at_snapshot = share.at_snapshot(&snapshot).directory("small");
    reports.push(
        drive_gets(&format!("GET of a {size}-byte file (share snapshot)"), concurrency, duration, at_snapshot, size)
            .await?,
    );
    let (d, p) = (share.directory("create"), Arc::clone(&props));
    reports.push(
        drive(
            "Create File",
            concurrency,
            duration,
            u64::MAX,
            Arc::new(move |i| {
                let (f, p) = (d.file(&format!("c{i:08}")), Arc::clone(&p));
                Box::pin(async move { Ok(f.create(0, &p).await.map(|_| ())?) })
            }),
        )
        .await?,
    );

    if args.output.json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        for r in &reports {
            println!(
                "{:<44} {:>9.0} requests/s  ({} requests in {:.1} s, {} in flight; p50 {:.2} ms, p99 {:.2} ms)",
                r.op, r.requests_per_sec, r.requests, r.seconds, concurrency, r.p50_ms, r.p99_ms
            );
        }
    }
    if args.connection_string.is_some() {
        share.delete().await?;
    }
    if let Some(e) = emulator {
        e.shutdown().await;
    }
    Ok(ExitCode::Ok)
}
