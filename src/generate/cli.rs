//! `afb gen`: fills a share with a generated tree.

use super::fill::{FillOptions, fill};
use super::plan::{ShareSpec, plan};
use crate::azure::SourceArgs;
use crate::cli::{ExitCode, OutputArgs};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Share to fill (created if missing).
    #[arg(long)]
    pub share: Option<String>,
    /// Number of files (overrides the spec's count).
    #[arg(long)]
    pub files: Option<u64>,
    /// Largest file size in bytes (overrides the spec's cap; small values make listing benchmarks cheap).
    #[arg(long)]
    pub max_file_size: Option<u64>,
    /// Seed: the same seed gives the same share.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share description (JSON, like data/sample-share.json); the embedded sample by default.
    #[arg(long)]
    pub spec: Option<std::path::PathBuf>,
    /// Do not send NFS-style modes (needed for real SMB shares).
    #[arg(long)]
    pub no_nfs_modes: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Anchor time for modification times, seconds since the Unix epoch (default: now).
    #[arg(long)]
    pub now: Option<i64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let (account, sas_share) = args.source.account()?;
    let share_name = args.share.clone().or(sas_share).ok_or_else(|| anyhow::anyhow!("no share: pass --share"))?;
    let mut spec = match &args.spec {
        Some(p) => ShareSpec::from_file(p)?,
        None => ShareSpec::sample(),
    };
    if let Some(n) = args.files {
        spec.files = n;
    }
    if let Some(max) = args.max_file_size {
        spec.max_file_size_bytes = max;
    }
    let now = args.now.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let entries = plan(&spec, args.seed, now);
    let client = crate::azure::FileServiceClient::new(account, Default::default())?;
    let options = FillOptions { concurrency: args.concurrency, nfs_modes: !args.no_nfs_modes };
    let started = std::time::Instant::now();
    let summary = fill(&client.share(&share_name), &spec, &entries, &options).await?;
    let secs = started.elapsed().as_secs_f64();
    if args.output.json {
        println!("{}", serde_json::json!({"summary": summary, "seconds": secs, "requests": client.requests_sent()}));
    } else {
        println!(
            "filled share {}: {} directories, {} files, {} bytes, {} permissions in {:.1} s ({} requests)",
            summary.share,
            summary.directories,
            summary.files,
            summary.bytes,
            summary.distinct_permissions,
            secs,
            client.requests_sent()
        );
    }
    Ok(ExitCode::Ok)
}
