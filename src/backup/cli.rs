//! `afb backup`, `afb restore`, `afb verify`, `afb forget`, `afb cat-object`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::forget::{Policy, forget};
use super::prune::{PruneOptions, PruneReport, prune};
use super::restore::{RestoreOptions, Target, restore};
use super::verify::{VerifyOptions, verify};
use super::{BackupInput, BackupSummary, Concurrency, DEFAULT_REQUESTS_IN_FLIGHT, Progress, find_previous, run};
use crate::azure::SourceArgs;
use crate::azure::{ClientOptions, FileServiceClient, ShareClient};
use crate::cli::{ExitCode, OutputArgs};
use crate::index::NodeIndex;
use crate::index::sort::SpillOptions;
use crate::repository::keys::load_tenant_key;
use crate::repository::store::Location;
use crate::repository::{MasterKey, Repository, RepositoryConfig, crypto};

/// Repository, tenant, share and master key: what every repository command needs.
#[derive(Debug, Clone, Args)]
pub struct RepoTarget {
    /// Repository location: a local directory, file:///DIR, or az://CONTAINER/PREFIX (Azure Blob).
    #[arg(long, env = "AFB_REPO")]
    pub repo: String,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub share: String,
    /// File holding the master key (64 hex digits); or set AFB_MASTER_KEY.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
}

impl RepoTarget {
    /// The master key: `--master-key-file`, else `AFB_MASTER_KEY`, else the file `afb init` writes by
    /// default ([`default_key_file`]) if it exists. Without any, the error says how to make one.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(f) = &self.master_key_file {
            return Ok(MasterKey::from_file(f)?);
        }
        if let Some(hex) = std::env::var("AFB_MASTER_KEY").ok().filter(|v| !v.trim().is_empty()) {
            return Ok(MasterKey::from_hex(hex.trim())?);
        }
        if let Some(f) = default_key_file().filter(|f| f.exists()) {
            return Ok(MasterKey::from_file(&f)?);
        }
        anyhow::bail!(
            "no master key: create a repository and its key with `afb init --repo {}`, or pass --master-key-file or set AFB_MASTER_KEY",
            self.repo
        )
    }

    pub fn store(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        crate::repository::store::open(&self.repo)
    }

    /// The Parquet node index: at the repository root, beside the content, where `afb scan`, `afb sql`
    /// and `afb serve` find it too. Their keys never collide (`{t}/{s}/index/{snapshots,data,summaries,runs}`
    /// against the chunk index's `{t}/{s}/index/{2 hex digits}`; see docs/repository.md).
    pub fn index(&self) -> anyhow::Result<NodeIndex> {
        NodeIndex::open(&Location::parse(&self.repo)?.to_string())
    }

    pub async fn open(&self) -> anyhow::Result<Repository> {
        let master = self.master_key()?;
        Repository::open(self.store()?, &master, &self.tenant, &self.share, RepositoryConfig::default())
            .await
            .with_context(|| format!("opening repository {} for {}/{}", self.repo, self.tenant, self.share))
    }
}

/// Where `afb init` writes the master key unless told otherwise, and where commands look for it last:
/// `$XDG_CONFIG_HOME/afb/master.key`, else `$HOME/.config/afb/master.key` (`None` without either).
pub fn default_key_file() -> Option<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(config.join("afb").join("master.key"))
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: crate::cli::RepoArgs,
    /// Where to write the new master key (default: $XDG_CONFIG_HOME/afb/master.key, else
    /// ~/.config/afb/master.key). An existing file is never overwritten.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
}

/// `afb init`: creates the repository (a local directory, or the container on Azure Blob) and a new
/// master key in a file of mode 0600 ([`MasterKey::create_file`], which never overwrites one), then says
/// where both are and what to keep safe.
pub async fn init_cmd(a: InitArgs) -> anyhow::Result<ExitCode> {
    let location = Location::parse(&a.repo.repo)?;
    let key_file = match a.master_key_file {
        Some(f) => f,
        None => {
            default_key_file().context("no --master-key-file given, and neither XDG_CONFIG_HOME nor HOME is set")?
        }
    };
    // Refuse before creating anything: an existing key may protect backups elsewhere.
    if std::fs::symlink_metadata(&key_file).is_ok() {
        anyhow::bail!(
            "master key file {} already exists; afb init never overwrites a key (pass --master-key-file with a new path, or use this key with --master-key-file)",
            key_file.display()
        );
    }
    match location.local_dir() {
        Some(dir) => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating repository directory {}", dir.display()))?;
        }
        None => {
            location.create_container(None).await?;
        }
    }
    if let Some(parent) = key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    MasterKey::create_file(&key_file)?;
    let default = default_key_file().is_some_and(|d| d == key_file);
    println!("created repository {location}");
    println!("created master key {} (mode 0600)", key_file.display());
    println!();
    println!("Keep the master key safe, and apart from the repository: every backup in the repository is");
    println!("encrypted under it, so without it nothing can be restored, and with it and the repository");
    println!("anyone can read them all. Copy it to a password manager or vault now.");
    println!();
    println!("Next, back up a share:");
    let key_arg = if default { String::new() } else { format!(" --master-key-file {}", key_file.display()) };
    println!("    afb backup --repo {} --tenant T --share S --connection-string '...'{key_arg}", a.repo.repo);
    if default {
        println!(
            "(commands find the key at this default path; elsewhere pass --master-key-file or set AFB_MASTER_KEY)"
        );
    }
    Ok(ExitCode::Ok)
}

fn service(source: &SourceArgs) -> anyhow::Result<FileServiceClient> {
    service_with(source, Concurrency::default())
}

/// The source's file service, sending at most `concurrency.requests_in_flight` requests at once.
fn service_with(source: &SourceArgs, concurrency: Concurrency) -> anyhow::Result<FileServiceClient> {
    let (cfg, _) = source.account()?;
    let options = ClientOptions { max_concurrency: concurrency.requests_in_flight, ..ClientOptions::default() };
    Ok(FileServiceClient::new(cfg, options)?)
}

/// `--requests-in-flight` and `--cpu-workers` of `afb backup` and `afb restore` (see [`Concurrency`]).
#[derive(Debug, Clone, Args)]
pub struct ConcurrencyArgs {
    /// Requests in flight at once, at most (files per second = requests in flight / latency; the
    /// client sends fewer while the share throttles). `--readers` is its old name.
    #[arg(long, visible_alias = "readers", default_value_t = DEFAULT_REQUESTS_IN_FLIGHT as u32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub requests_in_flight: u32,
    /// Threads for chunking, hashing, compression and encryption (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_workers: Option<u32>,
}

impl ConcurrencyArgs {
    pub fn concurrency(&self) -> Concurrency {
        Concurrency {
            requests_in_flight: self.requests_in_flight as usize,
            cpu_workers: self.cpu_workers.map_or_else(|| Concurrency::default().cpu_workers, |n| n as usize),
        }
    }
}

/// Snapshot the live share, scan the snapshot into the index, and back up what changed since the last
/// backup. The library entry point tests and the CLI share.
pub async fn backup_share(
    repo: &mut Repository,
    index: &NodeIndex,
    share: &ShareClient,
    progress: &dyn Progress,
) -> anyhow::Result<BackupSummary> {
    backup_share_with(repo, index, share, progress, Concurrency::default(), &SpillOptions::default()).await
}

/// [`backup_share`] with the given concurrency, its scan sorting within `spill` (`--memory`).
pub async fn backup_share_with(
    repo: &mut Repository,
    index: &NodeIndex,
    share: &ShareClient,
    progress: &dyn Progress,
    concurrency: Concurrency,
    spill: &SpillOptions,
) -> anyhow::Result<BackupSummary> {
    let ts = share.create_snapshot().await.with_context(|| format!("creating a snapshot of share {}", share.name()))?;
    let at = share.at_snapshot(&ts);
    backup_from_snapshot_with(repo, index, &at, Some(ts), progress, concurrency, spill).await
}

/// Scan `at` (normally a share snapshot, whose timestamp is `ts`) and back it up.
pub async fn backup_from_snapshot(
    repo: &mut Repository,
    index: &NodeIndex,
    at: &ShareClient,
    ts: Option<String>,
    progress: &dyn Progress,
) -> anyhow::Result<BackupSummary> {
    backup_from_snapshot_with(repo, index, at, ts, progress, Concurrency::default(), &SpillOptions::default()).await
}

/// [`backup_from_snapshot`] with the given concurrency, its scan sorting within `spill`.
pub async fn backup_from_snapshot_with(
    repo: &mut Repository,
    index: &NodeIndex,
    at: &ShareClient,
    ts: Option<String>,
    progress: &dyn Progress,
    concurrency: Concurrency,
    spill: &SpillOptions,
) -> anyhow::Result<BackupSummary> {
    let current = scan_into_index(repo, index, at, ts.clone(), spill).await?;
    let previous = find_previous(repo, index).await?;
    let input = BackupInput { share: at.clone(), share_snapshot: ts, index, current, previous, progress, concurrency };
    run(repo, input).await
}

/// Scans `at` into the index under the repository's tenant and share id, sorting within `spill`; the
/// new index snapshot.
async fn scan_into_index(
    repo: &Repository,
    index: &NodeIndex,
    at: &ShareClient,
    ts: Option<String>,
    spill: &SpillOptions,
) -> anyhow::Result<crate::index::manifest::IndexManifest> {
    let tenant = repo.scope().tenant().to_string();
    let share_id = repo.scope().share().to_string();
    // The parallel, spilling scan of `crate::scan`, filed under this repository's share id: of the share
    // snapshot `ts`, or of exactly what `at` shows when there is none (a live share).
    let opts = crate::scan::ScanOptions {
        share_snapshot: ts.clone(),
        live: ts.is_none(),
        index_share: Some(share_id.clone()),
        spill: spill.clone(),
        ..Default::default()
    };
    let report =
        crate::scan::scan(at.account_config().clone(), at.client_options().clone(), at.name(), index, &tenant, &opts)
            .await?;
    report.manifest.ok_or_else(|| anyhow::anyhow!("scan of {} committed no manifest", at.name()))
}

/// What a backup of the live share would read now, without reading it: scans the live share (no share
/// snapshot is created) into a new index snapshot and surveys the plan against the latest backup.
pub async fn dry_run(
    repo: &Repository,
    index: &NodeIndex,
    share: &ShareClient,
    budget: &super::parts::BatchBudget,
    spill: &SpillOptions,
) -> anyhow::Result<(i64, super::plan::Survey)> {
    let current = scan_into_index(repo, index, share, None, spill).await?;
    let id = current.snapshot_id;
    let previous = find_previous(repo, index).await?;
    let plan = super::Plan::new(current, None, previous);
    Ok((id, plan.survey(index, budget).await?))
}

/// Progress of the reads: on a terminal an indicatif bar (bytes, MB/s, files, files/s, ETA); otherwise a
/// plain log line on stderr every 1,000 files or 10 s, and at the end.
pub struct LineProgress {
    bar: Option<indicatif::ProgressBar>,
    start: Instant,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    /// Milliseconds since `start` of the last plain log line.
    last_line_ms: AtomicU64,
    /// The client's limit on requests in flight now, and the CPU workers (see [`Progress::concurrency`]).
    requests_in_flight: AtomicU64,
    cpu_workers: AtomicU64,
}

impl LineProgress {
    pub fn new() -> Self {
        Self::with_terminal(std::io::stderr().is_terminal())
    }

    /// `tty`: draw a bar (true) or write log lines (false).
    pub fn with_terminal(tty: bool) -> Self {
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {msg} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Self {
            bar,
            start: Instant::now(),
            files_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_line_ms: AtomicU64::new(0),
            requests_in_flight: AtomicU64::new(0),
            cpu_workers: AtomicU64::new(0),
        }
    }

    /// `N requests in flight, W CPU workers` (empty before [`Progress::concurrency`] was called).
    fn concurrency_text(&self) -> String {
        match (self.requests_in_flight.load(Ordering::Relaxed), self.cpu_workers.load(Ordering::Relaxed)) {
            (0, _) => String::new(),
            (r, w) => format!(", {r} requests in flight, {w} CPU workers"),
        }
    }

    /// `f/total files, MB, files/s, MB/s, requests in flight, CPU workers, ETA` now.
    pub fn line(&self) -> String {
        let f = self.files.load(Ordering::Relaxed);
        let b = self.bytes.load(Ordering::Relaxed);
        let total_f = self.files_total.load(Ordering::Relaxed);
        let total_b = self.bytes_total.load(Ordering::Relaxed).max(1);
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let eta = if b > 0 { secs * (total_b as f64 / b as f64 - 1.0) } else { 0.0 };
        format!(
            "{f}/{total_f} files, {:.1}/{:.1} MB, {:.0} files/s, {:.1} MB/s{}, ETA {:.0} s",
            b as f64 / 1e6,
            total_b as f64 / 1e6,
            f as f64 / secs,
            b as f64 / 1e6 / secs,
            self.concurrency_text(),
            eta.max(0.0)
        )
    }
}

impl Default for LineProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for LineProgress {
    fn start(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        match &self.bar {
            Some(b) => {
                b.set_length(bytes);
                b.set_message(format!("0/{files} files"));
            }
            None => eprintln!("afb: {files} changed files to read, {:.1} MB", bytes as f64 / 1e6),
        }
    }

    fn concurrency(&self, requests_in_flight: usize, cpu_workers: usize) {
        self.requests_in_flight.store(requests_in_flight as u64, Ordering::Relaxed);
        self.cpu_workers.store(cpu_workers as u64, Ordering::Relaxed);
    }

    fn file_done(&self, _path: &str, bytes: u64) {
        let f = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let total_f = self.files_total.load(Ordering::Relaxed);
        match &self.bar {
            Some(b) => {
                b.inc(bytes);
                let secs = self.start.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!("{f}/{total_f} files {:.0} files/s{}", f as f64 / secs, self.concurrency_text()));
            }
            None => {
                let ms = self.start.elapsed().as_millis() as u64;
                let last = self.last_line_ms.load(Ordering::Relaxed);
                if f.is_multiple_of(1000) || f == total_f || ms >= last + 10_000 {
                    self.last_line_ms.store(ms, Ordering::Relaxed);
                    eprintln!("afb: {}", self.line());
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: RepoTarget,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,
    /// Only say what a backup would read: scan the live share into the index (no share snapshot is
    /// created) and compare it with the latest backup; nothing is read or stored in the repository.
    #[arg(long)]
    pub dry_run: bool,
    /// Memory budget (e.g. `512MiB`, `2GiB`): the scan inside the backup sorts within it, spilling sorted
    /// runs to `--spill-dir` beyond it (as `afb scan --memory`); the rest of the backup holds a fixed
    /// number of buckets, reads and bundles whatever the share's size.
    #[arg(long, default_value = "1GiB")]
    pub memory: bytesize::ByteSize,
    /// Directory for spilled runs (the system's temporary directory by default).
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn backup_cmd(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let concurrency = args.concurrency.concurrency();
    let svc = service_with(&args.source, concurrency)?;
    let mut repo = args.target.open().await?;
    let index = args.target.index()?;
    let spill = SpillOptions { dir: args.spill_dir.clone(), ..SpillOptions::with_memory(args.memory.as_u64()) };
    if args.dry_run {
        let budget = super::parts::BatchBudget::default();
        let (idx, s) = dry_run(&repo, &index, &svc.share(&args.target.share), &budget, &spill).await?;
        if args.output.json {
            let v = serde_json::json!({ "index_snapshot": idx, "survey": s });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "index snapshot {idx}: a backup would read {} nodes ({} files, {:.2} MB) and keep {} files and {} directories from the latest backup; {} part(s) at the default worker budget",
                s.nodes_to_read,
                s.files_to_read,
                s.bytes_to_read as f64 / 1e6,
                s.files_kept,
                s.dirs_kept,
                s.ranges.len()
            );
        }
        return Ok(ExitCode::Ok);
    }
    let progress = LineProgress::new();
    let s =
        backup_share_with(&mut repo, &index, &svc.share(&args.target.share), &progress, concurrency, &spill).await?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "snapshot {} (index snapshot {}, share snapshot {})",
            s.snapshot_id,
            s.index_snapshot,
            s.share_snapshot.as_deref().unwrap_or("-")
        );
        println!(
            "files: {} new, {} changed, {} unchanged; {} directories",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs
        );
        println!(
            "read {:.2} MB from the share ({:.2} MB reused from the previous version), uploaded {:.2} MB in {} objects, {:.1} s",
            s.bytes_read as f64 / 1e6,
            s.bytes_reused as f64 / 1e6,
            s.bytes_uploaded as f64 / 1e6,
            s.objects_written,
            s.seconds
        );
        println!(
            "{} requests ({} throttled), {} in flight at most (lowest limit {}), {} CPU workers",
            s.requests_sent, s.requests_throttled, s.requests_in_flight, s.requests_in_flight_lowest, s.cpu_workers
        );
        for w in &s.warnings {
            println!("warning: {w}");
        }
        for k in &s.skipped {
            println!("skipped: {} (node {}): {}", k.path, k.node_id, k.reason);
        }
    }
    Ok(if s.skipped.is_empty() && s.sddl_missing.is_empty() { ExitCode::Ok } else { ExitCode::Problems })
}

/// The repository, the source account and one backup snapshot: what `afb restore` and `afb verify` name.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub target: RepoTarget,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Backup snapshot id (default: the latest).
    #[arg(long)]
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub of: SnapshotArgs,
    /// A subtree or one file, as a path below the share root.
    #[arg(long)]
    pub path: Option<String>,
    /// `local:DIR` or `share:NAME`.
    #[arg(long = "target")]
    pub to: String,
    /// Replace existing files that differ.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn restore_cmd(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let concurrency = args.concurrency.concurrency();
    let mut repo = args.of.target.open().await?;
    let target = if let Some(dir) = args.to.strip_prefix("local:") {
        Target::Local(PathBuf::from(dir))
    } else if let Some(name) = args.to.strip_prefix("share:") {
        let share = service_with(&args.of.source, concurrency)?.share(name);
        match share.create().await {
            Ok(()) => {}
            Err(e) if e.code() == Some("ShareAlreadyExists") => {}
            Err(e) => return Err(e).with_context(|| format!("creating share {name}")),
        }
        Target::Share(share)
    } else {
        anyhow::bail!("--target must be local:DIR or share:NAME, not {:?}", args.to)
    };
    let s = restore(
        &mut repo,
        RestoreOptions { snapshot: args.of.snapshot, path: args.path, target, overwrite: args.overwrite, concurrency },
    )
    .await?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "restored {} files ({:.2} MB) and {} directories from {}; {} already present",
            s.files_restored,
            s.bytes_written as f64 / 1e6,
            s.dirs,
            s.snapshot_id,
            s.files_already_present
        );
        println!("{} requests in flight at most, {} CPU workers", s.requests_in_flight, s.cpu_workers);
        for c in &s.conflicts {
            println!("exists, not overwritten (use --overwrite): {c}");
        }
        for d in &s.damaged {
            println!("damaged, not restored: {d}");
        }
        for r in &s.refused {
            println!("refused, not restored: {r}");
        }
    }
    let clean = s.conflicts.is_empty() && s.damaged.is_empty() && s.refused.is_empty();
    Ok(if clean { ExitCode::Ok } else { ExitCode::Problems })
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub of: SnapshotArgs,
    /// Read and check every chunk the snapshot references.
    #[arg(long)]
    pub read_data: bool,
    /// Read and hash this percentage of the share's packs.
    #[arg(long, default_value_t = 0.0)]
    pub read_data_subset: f64,
    /// Compare the backup against the live share (size, last-write time, xorhash).
    #[arg(long)]
    pub compare_live: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn verify_cmd(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut repo = args.of.target.open().await?;
    let index = args.of.target.index()?;
    let live = if args.compare_live { Some(service(&args.of.source)?.share(&args.of.target.share)) } else { None };
    let o = verify(
        &mut repo,
        VerifyOptions {
            snapshot: args.of.snapshot,
            read_data: args.read_data,
            read_data_subset: args.read_data_subset,
            index: Some(&index),
            compare_live: live,
        },
    )
    .await?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        for p in &o.problems {
            println!("{p}");
        }
        eprintln!(
            "verify {}: {} objects, {} chunks, {} packs read, {} files compared: {}",
            o.snapshot_id,
            o.objects_checked,
            o.chunks_checked,
            o.packs_read,
            o.nodes_compared,
            if o.problems.is_empty() { "ok".to_string() } else { format!("{} problems", o.problems.len()) }
        );
    }
    Ok(if o.problems.is_empty() { ExitCode::Ok } else { ExitCode::Problems })
}

#[derive(Debug, Clone, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub target: RepoTarget,
    #[arg(long, default_value_t = 0)]
    pub keep_last: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_daily: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: usize,
    #[arg(long, default_value_t = 0)]
    pub keep_yearly: usize,
    /// Show what would be forgotten without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Then prune: free data no remaining snapshot references (see `afb prune`).
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub prune_options: PruneFlags,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prune's tunables on the command line (see `repository::prune::PruneOptions`).
#[derive(Debug, Clone, Args)]
pub struct PruneFlags {
    /// Objects younger than this many seconds are kept (covers writers without in-progress markers).
    #[arg(long, default_value_t = 3600)]
    pub grace_secs: u64,
    /// Wait up to this many seconds for backups that started before the index rewrite, then delete;
    /// otherwise their deletion is left to the next prune.
    #[arg(long, default_value_t = 0)]
    pub wait_secs: u64,
    /// Rewrite a pack once this percentage of its bytes is unreferenced.
    #[arg(long, default_value_t = 20.0)]
    pub repack_unused_pct: f64,
    /// Markers not refreshed for this many seconds are a crashed backup's and are ignored.
    #[arg(long, default_value_t = 600)]
    pub stale_after_secs: u64,
    /// Part records of a split backup job older than this many seconds belong to a run that never
    /// committed: they stop protecting what they refer to and are deleted.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub run_retention_secs: u64,
    /// Memory budget (e.g. `512MiB`, `2GiB`): whatever the repository's size, prune holds at most about
    /// this much of marked ids and pack usage, spilling sorted runs to `--spill-dir` beyond it.
    #[arg(long, default_value = "1GiB")]
    pub memory: bytesize::ByteSize,
    /// Directory for spilled runs (the system's temporary directory by default).
    #[arg(long)]
    pub spill_dir: Option<std::path::PathBuf>,
}

impl PruneFlags {
    pub fn options(&self, dry_run: bool) -> PruneOptions {
        PruneOptions {
            grace: Duration::from_secs(self.grace_secs),
            stale_after: Duration::from_secs(self.stale_after_secs),
            wait: Duration::from_secs(self.wait_secs),
            repack_unused: self.repack_unused_pct / 100.0,
            dry_run,
            run_retention: Duration::from_secs(self.run_retention_secs),
            memory: self.memory.as_u64(),
            spill_dir: self.spill_dir.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub target: RepoTarget,
    #[command(flatten)]
    pub prune_options: PruneFlags,
    /// Show what would be freed without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn prune_cmd(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let mut repo = args.target.open().await?;
    let r = prune(&mut repo, &args.prune_options.options(args.dry_run))
        .await
        .with_context(|| format!("prune of {}/{}", args.target.tenant, args.target.share))?;
    print_prune(&r, args.output.json, args.dry_run)?;
    Ok(ExitCode::Ok)
}

fn print_prune(r: &PruneReport, json: bool, dry_run: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{} snapshots reference {} chunks; {} packs ({:.2} MB): {} unused, {} to rewrite, {} too young; {} unused bundle/metadata objects",
        r.snapshots,
        r.referenced_chunks,
        r.packs,
        mb(r.pack_bytes),
        r.packs_unused,
        r.packs_repacked,
        r.packs_too_young,
        r.objects_unused
    );
    if dry_run {
        println!("would free up to {:.2} MB (dry run: nothing changed)", mb(r.bytes_condemned));
        return Ok(());
    }
    println!(
        "deleted {} packs and {} objects ({:.2} MB), wrote {} packs ({:.2} MB): freed {:.2} MB; rescued {} packs; {} deletion records pending",
        r.packs_deleted,
        r.objects_deleted,
        mb(r.bytes_deleted),
        r.packs_written,
        mb(r.bytes_written),
        r.bytes_freed as f64 / 1e6,
        r.packs_rescued,
        r.records_pending
    );
    for b in &r.backups_running {
        println!("backup in progress: {} (host {:?}, pid {})", b.marker, b.host, b.pid);
    }
    for m in &r.stale_markers {
        println!("stale marker ignored: {m}");
    }
    Ok(())
}

pub async fn forget_cmd(args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let mut repo = args.target.open().await?;
    let p = Policy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_yearly: args.keep_yearly,
    };
    let o = forget(&repo, &p, args.dry_run).await?;
    // With --prune a dry run also leaves the data alone; with --json one document holds both results.
    let pruned = if args.prune {
        let r = prune(&mut repo, &args.prune_options.options(args.dry_run))
            .await
            .with_context(|| format!("prune of {}/{}", args.target.tenant, args.target.share))?;
        Some(r)
    } else {
        None
    };
    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "kept": o.kept, "forgotten": o.forgotten, "prune": pruned })
            )?
        );
    } else {
        for k in &o.kept {
            println!("keep {k}");
        }
        for f in &o.forgotten {
            println!("forget {f}");
        }
        if let Some(r) = &pruned {
            print_prune(r, false, args.dry_run)?;
        }
    }
    Ok(ExitCode::Ok)
}

#[derive(Debug, Clone, Args)]
pub struct CatObjectArgs {
    /// Repository location: a local directory, file:///DIR, or az://CONTAINER/PREFIX (Azure Blob).
    #[arg(long, env = "AFB_REPO")]
    pub repo: String,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// Object key, e.g. `t1/s1/bundles/ab/ab12…`.
    pub key: String,
}

/// Prints a decrypted object to stdout: the plaintext of an envelope (a bundle is then a plain TAR).
pub async fn cat_object(args: CatObjectArgs) -> anyhow::Result<ExitCode> {
    let t = RepoTarget {
        repo: args.repo,
        tenant: args.tenant.clone(),
        share: "-".into(),
        master_key_file: args.master_key_file,
    };
    let store = t.store()?;
    let key = load_tenant_key(store.as_ref(), &t.master_key()?, &args.tenant).await?;
    anyhow::ensure!(
        args.key.starts_with(&format!("{}/", args.tenant)),
        "{} is not an object of tenant {}",
        args.key,
        args.tenant
    );
    let path = Path::from(args.key.as_str());
    let bytes = store.get(&path).await.with_context(|| format!("reading {path}"))?.bytes().await?;
    anyhow::ensure!(bytes.len() >= 4, "{path}: too short to be an object");
    let magic: [u8; 4] = bytes[..4].try_into().unwrap();
    anyhow::ensure!(
        magic.starts_with(b"AFB"),
        "{path}: not an envelope (packs hold sealed blobs: read them with restore)"
    );
    let plain = crypto::open_object(key.seal_key(), &magic, &bytes, path.as_ref())?;
    std::io::stdout().write_all(&plain)?;
    Ok(ExitCode::Ok)
}
