//! `afb bench list`: how fast a whole share can be listed, and how many requests each entry costs.
//!
//! Walks the share breadth-first with up to `concurrency` directories listed at once (each directory's
//! pages in order), using the same listing call a backup scan uses. Reports entries per second and HTTP
//! requests per listed entry (retries included), as text or JSON.

use super::SourceArgs;
use super::client::FileServiceClient;
use super::model::ClientOptions;
use crate::cli::{ExitCode, OutputArgs};
use futures::stream::{FuturesUnordered, StreamExt as _, TryStreamExt as _};
use std::time::Instant;

/// What one listing run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListBenchReport {
    pub share: String,
    /// Entries listed (files and directories, the root not counted).
    pub entries: u64,
    pub directories: u64,
    pub files: u64,
    /// Sum of listed file sizes, in bytes.
    pub bytes: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub seconds: f64,
    pub entries_per_sec: f64,
    pub requests_per_entry: f64,
    pub concurrency: usize,
}

/// Lists every directory of `share` and reports the rate. `maxresults` caps entries per page (service
/// default when `None`).
pub async fn bench_list(
    client: &FileServiceClient,
    share: &str,
    concurrency: usize,
    maxresults: Option<u32>,
) -> anyhow::Result<ListBenchReport> {
    let share_client = client.share(share);
    let start = Instant::now();
    let requests_before = client.requests_sent();
    let (mut directories, mut files, mut bytes) = (0u64, 0u64, 0u64);
    let mut pending = vec![String::new()];
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < concurrency.max(1)
            && let Some(path) = pending.pop()
        {
            let dir = share_client.directory(&path);
            in_flight.push(async move {
                let pages: Vec<_> = dir.list_pages(maxresults).try_collect().await?;
                Ok::<_, super::AzureError>((dir, pages))
            });
        }
        let Some(result) = in_flight.next().await else { break };
        let (dir, pages) = result?;
        for entry in pages.into_iter().flat_map(|p| p.entries) {
            if entry.is_dir() {
                directories += 1;
                pending.push(dir.subdirectory(&entry.name).path().to_string());
            } else {
                files += 1;
                bytes += entry.size;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let entries = directories + files;
    let requests = client.requests_sent() - requests_before;
    Ok(ListBenchReport {
        share: share.to_string(),
        entries,
        directories,
        files,
        bytes,
        requests,
        seconds,
        entries_per_sec: if seconds > 0.0 { entries as f64 / seconds } else { 0.0 },
        requests_per_entry: if entries > 0 { requests as f64 / entries as f64 } else { 0.0 },
        concurrency,
    })
}

/// Arguments of `afb bench list`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchListArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The share to list (may come from the SAS URL instead).
    #[arg(long)]
    pub share: Option<String>,
    /// Directories listed at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Entries per page (at most 5000; service default when absent).
    #[arg(long)]
    pub maxresults: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `afb bench list` and prints the report.
pub async fn run(args: BenchListArgs) -> anyhow::Result<ExitCode> {
    let (account, sas_share) = args.source.account()?;
    let share = args.share.or(sas_share).ok_or_else(|| anyhow::anyhow!("no share: pass --share"))?;
    let options = ClientOptions { max_concurrency: args.concurrency.max(1) * 2, ..ClientOptions::default() };
    let client = FileServiceClient::new(account, options)?;
    let report = bench_list(&client, &share, args.concurrency, args.maxresults).await?;
    if args.output.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} entries ({} directories, {} files, {} bytes) in {:.2} s: {:.0} entries/s, {} requests, {:.4} requests/entry (concurrency {})",
            report.share,
            report.entries,
            report.directories,
            report.files,
            report.bytes,
            report.seconds,
            report.entries_per_sec,
            report.requests,
            report.requests_per_entry,
            report.concurrency
        );
    }
    Ok(ExitCode::Ok)
}
