//! `afb scan`: snapshot a share, list it, commit the next index snapshot, print a summary.

use clap::Args;

use super::{ScanOptions, ScanReport, scan};
use crate::azure::ClientOptions;
use crate::azure::SourceArgs;
use crate::cli::{ExitCode, OutputArgs, RepoArgs};
use crate::index::NodeIndex;
use crate::index::sort::SpillOptions;

/// Arguments of `afb scan`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub tenant: String,
    /// The Azure share (also the share id in the repository); may come from the SAS URL instead.
    #[arg(long)]
    pub share: Option<String>,
    /// List calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Entries per listing page (at most 5000; the service default when absent).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Scan this existing share snapshot (its `x-ms-snapshot` timestamp) instead of taking a new one.
    #[arg(long)]
    pub share_snapshot: Option<String>,
    /// Memory budget of the scan's sorts (e.g. `512MiB`, `2GiB`): whatever the share's size, the scan
    /// holds at most about this much, spilling sorted runs to `--spill-dir` beyond it.
    #[arg(long, default_value = "1GiB")]
    pub memory: bytesize::ByteSize,
    /// Also spill a sorted run once this many rows are buffered (a testing knob; unlimited by default).
    #[arg(long)]
    pub spill_rows: Option<usize>,
    /// Directory for spilled runs (the system's temporary directory by default).
    #[arg(long)]
    pub spill_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Runs `afb scan`.
pub async fn run(a: ScanArgs) -> anyhow::Result<ExitCode> {
    let (account, sas_share) = a.source.account()?;
    let share = a.share.clone().or(sas_share).ok_or_else(|| anyhow::anyhow!("no share: pass --share"))?;
    let repo = NodeIndex::open(&a.repo.repo)?;
    let opts = ScanOptions {
        concurrency: a.concurrency,
        page_size: a.page_size,
        share_snapshot: a.share_snapshot.clone(),
        spill: SpillOptions {
            spill_rows: a.spill_rows.unwrap_or(usize::MAX),
            dir: a.spill_dir.clone(),
            ..SpillOptions::with_memory(a.memory.as_u64())
        },
        ..ScanOptions::default()
    };
    let report = scan(account, ClientOptions::default(), &share, &repo, &a.tenant, &opts).await?;
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", summary(&report));
    }
    Ok(ExitCode::Ok)
}

/// The human summary of a scan (a few lines).
pub fn summary(r: &ScanReport) -> String {
    let stored = r.manifest.as_ref().map_or(0, |m| m.own_bytes());
    format!(
        "scanned {}/{} (share snapshot {}) into snapshot {}\n  {} directories, {} files, {} bytes, depth {}, {} new node ids\n  {} list requests, {} requests in all ({:.3} per entry), {:.0} entries/s ({:.2} s, listing {:.2} s){}\n  {} bytes stored for this snapshot",
        r.tenant_id,
        r.share_id,
        r.share_snapshot,
        r.snapshot_id,
        r.directories,
        r.files,
        r.bytes,
        r.max_depth,
        r.new_node_ids,
        r.list_requests,
        r.requests,
        r.requests_per_entry,
        r.entries_per_sec,
        r.seconds,
        r.list_seconds,
        if r.spilled_runs > 0 { format!(", {} sorted runs spilled", r.spilled_runs) } else { String::new() },
        stored,
    )
}
