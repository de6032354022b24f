//! `afb bench backup`: the backup benchmarks of docs/backup.md against a running emulator (or any account).
//!
//! One scenario per run: generate a share (`afb gen`'s planner and filler), back it up, change it, back it
//! up again; with `--restic`, restore each afb snapshot to a local directory and back that directory up
//! with restic in the same run (the reference). Reports one JSON document: per run the seconds, MB/s and
//! files/s over the content the run had to process, bytes read from the share, bytes and objects added to
//! the store (walked on disk), and the ratio of processed bytes to stored bytes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::cli::{RepoTarget, backup_share_with};
use super::restore::{RestoreOptions, Target, restore};
use super::{BackupSummary, Concurrency, NoProgress};
use crate::azure::SourceArgs;
use crate::azure::{ClientOptions, FileServiceClient, NodeProps, ShareClient};
use crate::cli::ExitCode;
use crate::generate::fill::{FillOptions, fill};
use crate::generate::plan::{EntryKind, ShareSpec, plan};
use crate::repository::MasterKey;

#[derive(Debug, Clone, Args)]
pub struct BenchBackupArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// `mixed` (sample spec), `small` (files of at most 8 KiB), `bigfile` (one file, 1% of its 4 KiB
    /// ranges rewritten) or `rename` (a directory of `--files` files renamed).
    #[arg(long)]
    pub scenario: String,
    /// Files to generate (scenario default when 0).
    #[arg(long, default_value_t = 0)]
    pub files: u64,
    /// Size of the `bigfile` file in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub big_size: u64,
    /// Working directory (repositories, restores, restic); must be empty or absent.
    #[arg(long)]
    pub work: PathBuf,
    #[command(flatten)]
    pub concurrency: super::cli::ConcurrencyArgs,
    /// Also time the first backup with this many requests in flight, into a second repository
    /// (before/after).
    #[arg(long)]
    pub compare_requests_in_flight: Option<usize>,
    /// Back up the same files with restic from a local directory (needs `restic` on PATH).
    #[arg(long)]
    pub restic: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub label: String,
    pub tool: String,
    pub seconds: f64,
    /// Files and bytes of content the run had to process (afb: new and changed files; restic: its own
    /// count of new and changed files).
    pub files: u64,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub files_per_s: f64,
    /// Bytes read from the share (afb only).
    pub bytes_read: Option<u64>,
    pub store_bytes_added: u64,
    pub store_objects_added: u64,
    /// Logical bytes of the whole snapshot / bytes the store grew by.
    pub dedup_ratio: f64,
    pub summary: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub files: u64,
    pub bytes: u64,
    pub generate_seconds: f64,
    pub change: String,
    pub runs: Vec<Run>,
}

/// Bytes and files under `dir` (0 if absent).
fn du(dir: &Path) -> (u64, u64) {
    let mut out = (0, 0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                let (b, n) = du(&p);
                out.0 += b;
                out.1 += n;
            } else if let Ok(m) = e.metadata() {
                out.0 += m.len();
                out.1 += 1;
            }
        }
    }
    out
}

fn rate(x: u64, secs: f64) -> f64 {
    x as f64 / secs.max(1e-9)
}

async fn afb_backup(
    label: &str,
    target: &RepoTarget,
    share: &ShareClient,
    concurrency: Concurrency,
    logical: u64,
) -> anyhow::Result<(Run, BackupSummary)> {
    let store_dir = Path::new(&target.repo).join(&target.tenant).join(&target.share);
    let (b0, n0) = du(&store_dir);
    let mut repo = target.open().await?;
    let index = target.index()?;
    let t = Instant::now();
    let s = backup_share_with(&mut repo, &index, share, &NoProgress, concurrency, &Default::default()).await?;
    let secs = t.elapsed().as_secs_f64();
    let (b1, n1) = du(&store_dir);
    let files = s.files_new + s.files_changed;
    let run = Run {
        label: label.into(),
        tool: format!("afb ({} requests in flight)", concurrency.requests_in_flight),
        seconds: secs,
        files,
        bytes: s.bytes_processed,
        mb_per_s: rate(s.bytes_processed, secs) / 1e6,
        files_per_s: rate(files, secs),
        bytes_read: Some(s.bytes_read),
        store_bytes_added: b1 - b0,
        store_objects_added: n1 - n0,
        dedup_ratio: logical as f64 / (b1 - b0).max(1) as f64,
        summary: serde_json::to_value(&s)?,
    };
    eprintln!(
        "afb: {label}: {:.1} s, {:.1} MB/s, {:.0} files/s, stored {} bytes",
        run.seconds, run.mb_per_s, run.files_per_s, run.store_bytes_added
    );
    Ok((run, s))
}

fn restic(args: &[&str], repo: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", "afb-bench")
        .output()
        .context("running restic (install Debian's restic)")?;
    anyhow::ensure!(out.status.success(), "restic {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn restic_backup(label: &str, repo: &Path, dir: &Path, logical: u64) -> anyhow::Result<Run> {
    let (b0, n0) = du(repo);
    let t = Instant::now();
    // From inside the directory, so renamed subdirectories keep their relative place.
    let out = std::process::Command::new("restic")
        .args(["backup", "--json", "."])
        .current_dir(dir)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", "afb-bench")
        .output()
        .context("running restic")?;
    anyhow::ensure!(out.status.success(), "restic backup: {}", String::from_utf8_lossy(&out.stderr));
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .context("restic printed no summary")?;
    let (b1, n1) = du(repo);
    let files = summary["files_new"].as_u64().unwrap_or(0) + summary["files_changed"].as_u64().unwrap_or(0);
    // restic reads every new or changed file in full.
    let bytes = summary["total_bytes_processed"].as_u64().unwrap_or(0);
    let run = Run {
        label: label.into(),
        tool: "restic".into(),
        seconds: secs,
        files,
        bytes,
        mb_per_s: rate(bytes, secs) / 1e6,
        files_per_s: rate(files, secs),
        bytes_read: None,
        store_bytes_added: b1 - b0,
        store_objects_added: n1 - n0,
        dedup_ratio: logical as f64 / (b1 - b0).max(1) as f64,
        summary,
    };
    eprintln!("restic: {label}: {:.1} s, stored {} bytes", run.seconds, run.store_bytes_added);
    Ok(run)
}

async fn restore_local(target: &RepoTarget, dir: &Path) -> anyhow::Result<()> {
    let mut repo = target.open().await?;
    restore(
        &mut repo,
        RestoreOptions {
            snapshot: None,
            path: None,
            target: Target::Local(dir.to_path_buf()),
            overwrite: true,
            concurrency: Default::default(),
        },
    )
    .await?;
    Ok(())
}

/// Random bytes (incompressible), deterministic in `seed`.
fn noise(len: usize, seed: u64) -> Bytes {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    Bytes::from(v)
}

pub async fn run(args: BenchBackupArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.work.exists() || std::fs::read_dir(&args.work)?.next().is_none(),
        "{} is not empty",
        args.work.display()
    );
    std::fs::create_dir_all(&args.work)?;
    let (account, _) = args.source.account()?;
    let concurrency = args.concurrency.concurrency();
    let options = ClientOptions { max_concurrency: concurrency.requests_in_flight, ..ClientOptions::default() };
    let svc = FileServiceClient::new(account, options)?;
    let name = format!("bench-{}", args.scenario);
    let share = svc.share(&name);
    // A share left by an earlier run is replaced.
    match share.delete().await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e).context("deleting the share of an earlier run"),
    }
    let master = args.work.join("master.key");
    MasterKey::create_file(&master)?;
    let target = |repo: &str| RepoTarget {
        repo: args.work.join(repo).to_string_lossy().into_owned(),
        tenant: "bench".into(),
        share: name.clone(),
        master_key_file: Some(master.clone()),
    };
    let main = target("repo");

    // Generate.
    let t = Instant::now();
    let mut spec = ShareSpec::sample();
    let mut rename_files = 0;
    match args.scenario.as_str() {
        "mixed" => spec.files = if args.files > 0 { args.files } else { 13_300 },
        "small" => {
            spec.files = if args.files > 0 { args.files } else { 200_000 };
            spec.max_file_size_bytes = 8 << 10;
        }
        "bigfile" => {
            spec.files = 1;
            spec.size_median_bytes = args.big_size;
            spec.max_file_size_bytes = args.big_size;
            spec.size_sigma = 0.0;
            spec.empty_file_ratio = 0.0;
            spec.duplicate_ratio = 0.0;
        }
        "rename" => {
            spec.files = 0;
            rename_files = if args.files > 0 { args.files } else { 10_000 };
        }
        s => anyhow::bail!("unknown scenario {s:?}: mixed, small, bigfile or rename"),
    }
    let entries = plan(&spec, args.seed, 1_700_000_000);
    let mut files: Vec<(String, u64)> =
        entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| (e.path.clone(), e.size)).collect();
    if spec.files > 0 {
        fill(&share, &spec, &entries, &FillOptions { concurrency: 16, nfs_modes: true }).await?;
    } else {
        match share.create().await {
            Ok(()) => {}
            Err(e) if e.code() == Some("ShareAlreadyExists") => {}
            Err(e) => return Err(e.into()),
        }
        share.directory("project").create(&NodeProps::default()).await?;
        let new: Vec<(String, u64)> =
            (0..rename_files).map(|i| (format!("project/file-{i:05}.txt"), 1024 + (i * 37) % 3072)).collect();
        let uploads = futures::stream::iter(new.iter().cloned().enumerate())
            .map(|(i, (p, size))| {
                let share = share.clone();
                async move { share.file(&p).upload(noise(size as usize, i as u64), &NodeProps::default()).await }
            })
            .buffer_unordered(16);
        uploads.collect::<Vec<_>>().await.into_iter().collect::<Result<Vec<_>, _>>()?;
        files = new;
    }
    let generate_seconds = t.elapsed().as_secs_f64();
    let total_bytes: u64 = files.iter().map(|(_, s)| s).sum();
    eprintln!("generated {} files, {} bytes in {generate_seconds:.1} s", files.len(), total_bytes);

    let mut runs = Vec::new();
    if let Some(n) = args.compare_requests_in_flight {
        let compare = Concurrency { requests_in_flight: n, ..concurrency };
        let (r, _) = afb_backup("first backup", &target("repo-compare"), &share, compare, total_bytes).await?;
        runs.push(r);
    }
    let (r, _) = afb_backup("first backup", &main, &share, concurrency, total_bytes).await?;
    runs.push(r);
    let local = args.work.join("local");
    let restic_repo = args.work.join("restic");
    if args.restic {
        let t = Instant::now();
        restore_local(&main, &local).await?;
        eprintln!("restored to {} in {:.1} s", local.display(), t.elapsed().as_secs_f64());
        restic(&["init"], &restic_repo)?;
        runs.push(restic_backup("first backup", &restic_repo, &local, total_bytes)?);
    }

    // Change the share.
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let change = match args.scenario.as_str() {
        "mixed" | "small" => {
            // 1% of the files: 4 KiB rewritten in the middle (the whole file when smaller).
            let picked: Vec<(String, u64)> = files.iter().filter(|(_, s)| *s > 0).step_by(100).cloned().collect();
            let n = picked.len();
            let puts = futures::stream::iter(picked.into_iter().enumerate())
                .map(|(i, (p, size))| {
                    let share = share.clone();
                    async move {
                        let len = size.min(4096);
                        let off = if size >= 8192 { (size / 2) & !4095 } else { 0 };
                        share.file(&p).put_range(off, noise(len as usize, 1_000_000 + i as u64)).await
                    }
                })
                .buffer_unordered(16);
            puts.collect::<Vec<_>>().await.into_iter().collect::<Result<Vec<_>, _>>()?;
            format!("{n} files (1%) had 4 KiB rewritten in place")
        }
        "bigfile" => {
            let (path, size) = files[0].clone();
            let blocks = size / 4096;
            let n = blocks / 100;
            let offsets: Vec<u64> = (0..n).map(|_| rng.random_range(0..blocks) * 4096).collect();
            let f = share.file(&path);
            let puts = futures::stream::iter(offsets.into_iter().enumerate())
                .map(|(i, off)| {
                    let f = f.clone();
                    async move { f.put_range(off, noise(4096, 2_000_000 + i as u64)).await }
                })
                .buffer_unordered(16);
            puts.collect::<Vec<_>>().await.into_iter().collect::<Result<Vec<_>, _>>()?;
            format!("{n} random 4 KiB ranges (1% of the file) rewritten")
        }
        _ => {
            share.directory("project").rename("project-renamed").await?;
            format!("directory project/ ({rename_files} files) renamed")
        }
    };
    let (r, _) = afb_backup("incremental backup", &main, &share, concurrency, total_bytes).await?;
    runs.push(r);
    if args.restic {
        if args.scenario == "rename" {
            std::fs::rename(local.join("project"), local.join("project-renamed"))?;
        } else {
            restore_local(&main, &local).await?;
        }
        runs.push(restic_backup("incremental backup", &restic_repo, &local, total_bytes)?);
    }
    let report = Report {
        scenario: args.scenario.clone(),
        files: files.len() as u64,
        bytes: total_bytes,
        generate_seconds,
        change,
        runs,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::Ok)
}
