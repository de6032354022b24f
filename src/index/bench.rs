//! `afb bench index`: size and speed of the index on a generated share.
//!
//! The share's rows come from `--from-tree DIR...` (the metadata of real local directory trees, replicated
//! under fresh directory ids until `--nodes`; see [`ReplicatedShare`]) or, without it, from the synthetic
//! generator ([`SyntheticShare`]).
//!
//! Writes, into a scratch repository, share `bench` (tenant `bench`): snapshot 1 (a base of `--nodes`
//! rows), snapshot 2 (a delta: 1% modified, 0.5% added, 0.5% deleted, 100 directory renames),
//! snapshot 3 (nothing changed); and share `full` holding snapshot 2 again as a base (for the
//! base-vs-base diff and for DuckDB). Then it measures the diff, the directory map, paths and `du`.
//! Peak RSS is reset before each phase (`/proc/self/clear_refs`) so each figure is that phase's own.

use std::time::Instant;

use anyhow::Context;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use clap::Args;
use futures::StreamExt;
use serde_json::json;

use super::NodeIndex;
use super::diff::{diff_snapshots, diff_snapshots_full};
use super::dirmap::DirMap;
use super::manifest::IndexManifest;
use super::node::{NodeColumns, NodeId, ROOT_ID, col};
use super::parquet_io::{ColumnEncoding, ParquetTuning};
use super::snapshot::WriteOptions;
use super::sql::{Focus, SqlSession};
use super::synthetic::{Mutation, ReplicatedShare, Rng, SyntheticShare, TreeTemplate, write_mutated};
use crate::cli::{ExitCode, OutputArgs};

/// Arguments of `afb bench index`.
#[derive(Debug, Clone, Args)]
pub struct BenchIndexArgs {
    /// Number of nodes in the share.
    #[arg(long, default_value_t = 1_000_000)]
    pub nodes: u64,
    /// Take names, kinds, sizes and times from these local directory trees (walked once, symbolic links
    /// not followed) and replicate them until `--nodes`; without it, the synthetic generator.
    #[arg(long = "from-tree", value_name = "DIR")]
    pub from_tree: Vec<std::path::PathBuf>,
    /// Also rewrite the first `--trial-rows` rows of snapshot 1 with other Parquet settings and report
    /// bytes per column for each.
    #[arg(long)]
    pub encoding_trials: bool,
    /// Rows used by `--encoding-trials`.
    #[arg(long, default_value_t = 2_000_000)]
    pub trial_rows: u64,
    /// Skip the DataFusion SQL path query (it scans the whole snapshot; slow at 100M nodes).
    #[arg(long)]
    pub skip_sql: bool,
    /// Skip building the directory map in memory from the rows (timed next to opening the stored
    /// summary, and compared with it): it takes about 170 bytes per directory, over 10 GiB at 1B nodes.
    #[arg(long)]
    pub skip_dirmap_build: bool,
    /// Seed of the share (synthetic rows, hashes, mutations).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scratch repository directory (default: a new temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Also write snapshot 1 sorted by (parent_id, name) and report its size, to compare sort orders.
    #[arg(long)]
    pub compare_sort: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size since the last reset, in bytes (0 if unknown).
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Compressed bytes per column of a local Parquet file.
fn column_bytes(path: &std::path::Path) -> anyhow::Result<Vec<(String, u64)>> {
    use parquet::file::reader::FileReader;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let r = parquet::file::reader::SerializedFileReader::new(f)?;
    let md = r.metadata();
    let mut out: Vec<(String, u64)> =
        md.file_metadata().schema_descr().columns().iter().map(|c| (c.name().to_string(), 0)).collect();
    for rg in md.row_groups() {
        for (i, c) in rg.columns().iter().enumerate() {
            out[i].1 += c.compressed_size() as u64;
        }
    }
    Ok(out)
}

/// `afb bench index`.
pub async fn run(a: BenchIndexArgs) -> anyhow::Result<ExitCode> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let repo = NodeIndex::open(dir.to_str().context("repository path is not UTF-8")?)?;
    let n = a.nodes;
    let per = |bytes: u64| bytes as f64 / n.max(1) as f64;

    let walk_t = Instant::now();
    let template = if a.from_tree.is_empty() { None } else { Some(TreeTemplate::walk(&a.from_tree)?) };
    let source = match &template {
        None => json!({ "kind": "synthetic", "seed": a.seed }),
        Some(t) => json!({
            "kind": "replicated tree",
            "roots": a.from_tree.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "template_entries": t.len(),
            "template_dirs": t.entries.iter().filter(|e| e.kind == super::node::NodeKind::Dir).count(),
            "template_skipped": t.skipped,
            "average_name_bytes": t.average_name_bytes(),
            "ctime_equals_mtime": t.entries.iter().filter(|e| e.ctime == e.mtime).count() as f64 / t.len().max(1) as f64,
            "copies": n.div_ceil(t.len() as u64 + 1),
            "walk_seconds": walk_t.elapsed().as_secs_f64(),
        }),
    };

    // 1. Base snapshot, streaming from the generator.
    reset_peak_rss();
    let t = Instant::now();
    let mut w = repo.begin("bench", "bench", WriteOptions::default()).await?;
    for b in source_rows(template.as_ref(), a.seed, n) {
        w.write(&b).await?;
    }
    let m1 = w.commit(None).await?;
    let write_s = t.elapsed().as_secs_f64();
    let write_rss = peak_rss();
    let cols = column_bytes(&dir.join(&m1.layers[0].nodes.key))?;

    // 2. Delta with the benchmark's mutation; 3. a delta with nothing changed.
    let t = Instant::now();
    let m2 =
        write_mutated(&repo, "bench", "bench", &m1, Mutation::default(), a.seed + 1, WriteOptions::default()).await?;
    let delta_s = t.elapsed().as_secs_f64();
    let none = Mutation { modified: 0.0, deleted: 0.0, added: 0.0, dir_renames: 0 };
    let m3 = write_mutated(&repo, "bench", "bench", &m2, none, 0, WriteOptions::default()).await?;
    // Snapshot 2 again, as a base of its own (share `full`).
    let mf1 = {
        let mut w = repo.begin("bench", "full", WriteOptions { max_deltas: 0, ..Default::default() }).await?;
        let mut s = repo.read(&m1, None)?;
        while let Some(b) = s.next().await {
            w.write(&b?).await?;
        }
        w.commit(None).await?
    };
    let _ = mf1;
    let mf2 = {
        let mut w = repo.begin("bench", "full", WriteOptions { max_deltas: 0, ..Default::default() }).await?;
        let mut s = repo.read(&m2, None)?;
        while let Some(b) = s.next().await {
            w.write(&b?).await?;
        }
        w.commit(None).await?
    };

    // Diff: through the change record (what the backup engine gets), then by full merges of base vs
    // base+delta and of base vs base. All three must agree.
    reset_peak_rss();
    let t = Instant::now();
    let d12 = diff_snapshots(&repo, &m1, &m2, |_| Ok(())).await?;
    let diff_s = t.elapsed().as_secs_f64();
    let diff_rss = peak_rss();
    reset_peak_rss();
    let t = Instant::now();
    let d12_full = diff_snapshots_full(&repo, &m1, &m2, |_| Ok(())).await?;
    let diff_delta_full_s = t.elapsed().as_secs_f64();
    let diff_delta_full_rss = peak_rss();
    reset_peak_rss();
    let t = Instant::now();
    let dff = diff_snapshots_full(&repo, &mf1, &mf2, |_| Ok(())).await?;
    let diff_full_s = t.elapsed().as_secs_f64();
    let diff_full_rss = peak_rss();
    anyhow::ensure!(d12 == dff && d12 == d12_full, "diff through change records and full merges disagree");

    // The same diffs as `afb diff` in a process of its own, so its peak RSS is its own.
    let diff_child_records = diff_in_child(&dir, "bench", 1, 2, false)?;
    let diff_child = diff_in_child(&dir, "full", 1, 2, true)?;
    let diff_child_delta = diff_in_child(&dir, "bench", 1, 2, true)?;

    // Directory map, paths of 1000 random nodes, du of the whole share.
    let (mut dirmap_s, mut dirmap_rss) = (f64::NAN, 0);
    if !a.skip_dirmap_build {
        reset_peak_rss();
        let t = Instant::now();
        let dm = DirMap::load(&repo, &m2).await?;
        dirmap_s = t.elapsed().as_secs_f64();
        dirmap_rss = peak_rss();
        drop(dm);
    }
    // The same map as `afb sql` and the backup plan open it: from the summary stored at commit.
    reset_peak_rss();
    let t = Instant::now();
    let dm = crate::index::summary::load_dirmap(&repo, &m2).await?;
    let dirmap_open_s = t.elapsed().as_secs_f64();
    let dirmap_open_rss = peak_rss();
    if !a.skip_dirmap_build {
        anyhow::ensure!(
            dm == DirMap::load(&repo, &m2).await?,
            "the stored summary's directory map differs from a build"
        );
    }
    let mut rng = Rng::new(a.seed + 99);
    let mut want: Vec<i64> = (0..1000).map(|_| 1 + rng.below(m2.next_node_id as u64 - 1) as i64).collect();
    want.sort_unstable();
    want.dedup();
    // Fetch those rows (parent_id, name) in one pass, then time the path resolution alone.
    let mut picked: Vec<(NodeId, String)> = Vec::new();
    let mut s = repo.read(&m2, Some(&[col::PARENT_ID, col::NAME]))?;
    while let Some(b) = s.next().await {
        let b: RecordBatch = b?;
        let ids = b.column(0).as_primitive::<Int64Type>();
        let parents = b.column(1).as_primitive::<Int64Type>();
        let names = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            if want.binary_search(&ids.value(i)).is_ok() {
                picked.push((NodeId(parents.value(i)), names.value(i).to_string()));
            }
        }
    }
    let t = Instant::now();
    let mut total_len = 0;
    for (p, name) in &picked {
        total_len += dm.path_of(*p, name).map_or(0, |s| s.len());
    }
    let paths_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let root = dm.du(ROOT_ID).context("root")?;
    let du_lookup_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        root.files == m2.totals.files && root.bytes == m2.totals.bytes,
        "du of the root disagrees with the manifest"
    );

    // The same through SQL (dirmap already built by the session on first use).
    let (mut sql_paths_s, mut sql_rows) = (f64::NAN, 0);
    if !a.skip_sql {
        let session = SqlSession::new(
            repo.clone(),
            Focus { tenant: Some("bench".into()), share: Some("bench".into()), snapshot: Some(2) },
        )
        .await?;
        session.load_dirmap().await?;
        let list = want.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let t = Instant::now();
        let out = session.query(&format!("SELECT path(parent_id, name) FROM nodes WHERE snapshot_id = 2 AND share_id = 'bench' AND node_id IN ({list})")).await?;
        sql_paths_s = t.elapsed().as_secs_f64();
        sql_rows = out.iter().map(|b| b.num_rows()).sum();
    }
    let (dm_dirs, dm_bytes) = (dm.len(), dm.memory_bytes());
    drop(dm);

    let trials = if a.encoding_trials {
        encoding_trials(&repo, &dir, &m1, a.trial_rows).await?
    } else {
        serde_json::Value::Null
    };

    let mut sort_cmp = serde_json::Value::Null;
    if a.compare_sort {
        sort_cmp = compare_sort(&repo, &dir, &m1).await?;
    }

    let report = json!({
        "source": source,
        "build": build_profile(),
        "nodes": n,
        "files": m1.totals.files,
        "dirs": m1.totals.dirs,
        "base_snapshot": { "bytes": m1.own_bytes(), "bytes_per_file": per(m1.own_bytes()), "seconds": write_s, "rows_per_second": n as f64 / write_s, "peak_rss_bytes": write_rss,
            "column_bytes_per_file": cols.iter().map(|(c, b)| (c.clone(), json!(per(*b)))).collect::<serde_json::Map<_, _>>() },
        "delta_snapshot": { "bytes": m2.own_bytes(), "bytes_per_file": per(m2.own_bytes()), "changed_rows": m2.layers.last().map(|l| l.nodes.rows), "deleted_rows": m2.layers.last().and_then(|l| l.deleted.as_ref()).map(|d| d.rows), "seconds": delta_s },
        "unchanged_snapshot": { "bytes": m3.own_bytes(), "bytes_per_file": per(m3.own_bytes()) },
        "delta_change_record": { "before_bytes": m2.changes.as_ref().map(|c| c.before.bytes), "bytes_per_file_over_the_layer": per(m2.changes.as_ref().map_or(0, |c| c.before.bytes)) },
        "full_snapshot_2": { "bytes": mf2.own_bytes(), "bytes_per_file": per(mf2.own_bytes()), "layer_bytes_per_file": per(mf2.layers[0].nodes.bytes), "change_record_bytes_per_file": per(mf2.change_record_bytes()) },
        "diff": { "method": "change records", "seconds": diff_s, "peak_rss_bytes": diff_rss, "changed_rows": d12.changed_rows(), "summary": d12 },
        "diff_full_merge_base_vs_base_plus_delta": { "seconds": diff_delta_full_s, "peak_rss_bytes": diff_delta_full_rss },
        "diff_base_vs_base": { "method": "full merge", "seconds": diff_full_s, "peak_rss_bytes": diff_full_rss },
        "afb_diff_process": { "change_records": diff_child_records, "full_merge_base_vs_base": diff_child, "full_merge_base_vs_base_plus_delta": diff_child_delta },
        "encoding_trials": trials,
        "dirmap": { "seconds": dirmap_s, "peak_rss_bytes": dirmap_rss, "dirs": dm_dirs, "memory_bytes": dm_bytes },
        "dirmap_open": { "seconds": dirmap_open_s, "peak_rss_bytes": dirmap_open_rss },
        "paths_1000": { "nodes": picked.len(), "seconds": paths_s, "chars": total_len, "sql_seconds": sql_paths_s, "sql_rows": sql_rows },
        "du_share": { "lookup_seconds": du_lookup_s, "seconds_with_dirmap_build": dirmap_s + du_lookup_s, "bytes": root.bytes, "files": root.files },
        "sort_order": sort_cmp,
        "repository": dir.display().to_string(),
        "duckdb_inputs": { "snapshot_1": dir.join(&mf1.layers[0].nodes.key), "snapshot_2": dir.join(&mf2.layers[0].nodes.key) },
    });
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("afb bench index: {n} nodes ({} files, {} dirs), source {source}", m1.totals.files, m1.totals.dirs);
        println!(
            "  base snapshot      {:>8.2} bytes/file   {:>10.0} rows/s written",
            per(m1.own_bytes()),
            n as f64 / write_s
        );
        for (c, b) in &cols {
            println!("    {c:<12} {:>6.2}", per(*b));
        }
        println!(
            "  delta snapshot     {:>8.2} bytes/file   (1% mod, 0.5% add, 0.5% del, 100 dir renames; change record included)",
            per(m2.own_bytes())
        );
        println!(
            "  later base         {:>8.2} bytes/file   ({:.2} of them its change record)",
            per(mf2.own_bytes()),
            per(mf2.change_record_bytes())
        );
        println!("  unchanged snapshot {:>8.4} bytes/file", per(m3.own_bytes()));
        println!(
            "  diff (records)     {:>8.3} s, peak RSS {} MB, {} changed rows",
            diff_s,
            diff_rss >> 20,
            d12.changed_rows()
        );
        println!(
            "  diff full merge    {:>8.3} s base vs base+delta, peak RSS {} MB",
            diff_delta_full_s,
            diff_delta_full_rss >> 20
        );
        println!("  diff base vs base  {:>8.3} s (full merge), peak RSS {} MB", diff_full_s, diff_full_rss >> 20);
        println!(
            "  afb diff process   records {diff_child_records}; full merge base vs base {diff_child}; base vs base+delta {diff_child_delta}"
        );
        println!("  dirmap build       {:>8.3} s, {} dirs, {} KB", dirmap_s, dm_dirs, dm_bytes >> 10);
        println!("  dirmap open        {:>8.3} s (from the stored summary)", dirmap_open_s);
        println!(
            "  paths of {} nodes {:>8.3} ms (dirmap); {:.3} s through SQL incl. scan",
            picked.len(),
            paths_s * 1e3,
            sql_paths_s
        );
        println!(
            "  du of the share    {:>8.6} ms lookup; {:.3} s with the dirmap build",
            du_lookup_s * 1e3,
            dirmap_s + du_lookup_s
        );
        if !trials.is_null() {
            println!("  encoding trials    {}", serde_json::to_string_pretty(&trials)?);
        }
        if !sort_cmp.is_null() {
            println!("  sort order         {sort_cmp}");
        }
        println!("  repository         {}", dir.display());
    }
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::Ok)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("afb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Bytes per file of snapshot 1 sorted by (parent_id, name) instead of node_id (in memory: small N only).
async fn compare_sort(repo: &NodeIndex, dir: &std::path::Path, m: &IndexManifest) -> anyhow::Result<serde_json::Value> {
    use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(repo.read(m, None)?).await?;
    let all = concat_batches(&super::node::node_schema(), &batches)?;
    let idx = lexsort_to_indices(
        &[
            SortColumn { values: all.column(col::PARENT_ID).clone(), options: None },
            SortColumn { values: all.column(col::NAME).clone(), options: None },
        ],
        None,
    )?;
    let sorted = take_record_batch(&all, &idx)?;
    let key = "bench/sort-compare/by_parent_name.parquet";
    let mut w =
        super::parquet_io::FileWriter::create(repo.store(), key, super::node::node_schema(), Default::default())?;
    for off in (0..sorted.num_rows()).step_by(65536) {
        w.write(&sorted.slice(off, 65536.min(sorted.num_rows() - off))).await?;
    }
    let (_, _, bytes) = w.close().await?;
    let cols = column_bytes(&dir.join(key))?;
    let n = NodeColumns::new(&all).len() as f64;
    Ok(json!({
        "by_node_id_bytes_per_file": m.layers[0].nodes.bytes as f64 / n,
        "by_parent_name_bytes_per_file": bytes as f64 / n,
        "by_parent_name_columns": cols.iter().map(|(c, b)| (c.clone(), json!(*b as f64 / n))).collect::<serde_json::Map<_, _>>(),
    }))
}

/// The share's rows, `count` of them, as batches: replicated from `template`, or synthetic without one.
fn source_rows(template: Option<&TreeTemplate>, seed: u64, count: u64) -> Box<dyn Iterator<Item = RecordBatch> + '_> {
    match template {
        None => Box::new(SyntheticShare::new(seed, count).batches(8192)),
        Some(t) => Box::new(ReplicatedShare::new(t, seed, count).batches(8192)),
    }
}

/// Which build produced these figures (opt-level and debug assertions of the afb crate).
fn build_profile() -> serde_json::Value {
    json!({ "debug_assertions": cfg!(debug_assertions), "profile": if cfg!(debug_assertions) { "dev" } else { "optimised (opt-level 3 or release)" } })
}

/// Run `afb diff --json` on two snapshots of tenant `bench` as a child process under `/usr/bin/time`;
/// returns its wall seconds, the diff's own seconds and the process's peak RSS.
fn diff_in_child(
    dir: &std::path::Path,
    share: &str,
    a: i64,
    b: i64,
    full_merge: bool,
) -> anyhow::Result<serde_json::Value> {
    let exe = std::env::current_exe().context("locating the afb executable")?;
    let t = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "AFB_MAXRSS_KB=%M"])
        .arg(&exe)
        .args(["diff", "--repo"])
        .arg(dir)
        .args(["--tenant", "bench", "--share", share, &a.to_string(), &b.to_string(), "--json"])
        .args(full_merge.then_some("--full-merge"))
        .output()
        .context("running /usr/bin/time afb diff")?;
    let wall = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "afb diff failed: {stderr}");
    let kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("AFB_MAXRSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .context("no peak RSS from /usr/bin/time")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("afb diff --json output")?;
    Ok(
        json!({ "process_seconds": wall, "diff_seconds": v["seconds"], "method": v["method"], "peak_rss_bytes": kb * 1024, "changed_rows": v["changed_rows"] }),
    )
}

/// Rewrite the first `rows` rows of snapshot `m` with a list of Parquet settings; bytes per file per
/// column for each.
async fn encoding_trials(
    repo: &NodeIndex,
    dir: &std::path::Path,
    m: &IndexManifest,
    rows: u64,
) -> anyhow::Result<serde_json::Value> {
    use ColumnEncoding::*;
    let d = ParquetTuning::default();
    let trials: Vec<(&str, ParquetTuning)> = vec![
        ("default", d),
        (
            "before tuning: zstd 3, size and times delta",
            ParquetTuning { zstd_level: 3, size: Delta, times: Delta, ..d },
        ),
        ("zstd 3", ParquetTuning { zstd_level: 3, ..d }),
        ("zstd 6", ParquetTuning { zstd_level: 6, ..d }),
        ("zstd 12", ParquetTuning { zstd_level: 12, ..d }),
        ("zstd 15", ParquetTuning { zstd_level: 15, ..d }),
        ("zstd 19", ParquetTuning { zstd_level: 19, ..d }),
        ("name dictionary", ParquetTuning { name: Dictionary, ..d }),
        ("name plain", ParquetTuning { name: Plain, ..d }),
        ("size delta", ParquetTuning { size: Delta, ..d }),
        ("size dictionary", ParquetTuning { size: Dictionary, ..d }),
        ("times delta", ParquetTuning { times: Delta, ..d }),
        ("times dictionary", ParquetTuning { times: Dictionary, ..d }),
        ("hash delta", ParquetTuning { hash: Delta, ..d }),
        ("pages of 100k rows, 4 MB", ParquetTuning { page_rows: 100_000, page_bytes: 4 << 20, ..d }),
        ("pages of 5k rows", ParquetTuning { page_rows: 5_000, ..d }),
        ("row groups of 1M", ParquetTuning { row_group_rows: 1 << 20, ..d }),
        ("row groups of 256k", ParquetTuning { row_group_rows: 1 << 18, ..d }),
    ];
    let mut out = serde_json::Map::new();
    for (label, tuning) in trials {
        let key = format!("bench/trials/{}.parquet", label.replace([' ', ','], "_"));
        let mut w = super::parquet_io::FileWriter::create(repo.store(), &key, super::node::node_schema(), tuning)?;
        let mut s = repo.read(m, None)?;
        let mut left = rows;
        let t = Instant::now();
        while let Some(b) = s.next().await {
            let b = b?;
            let take = (b.num_rows() as u64).min(left) as usize;
            w.write(&b.slice(0, take)).await?;
            left -= take as u64;
            if left == 0 {
                break;
            }
        }
        drop(s);
        let (_, written, bytes) = w.close().await?;
        let secs = t.elapsed().as_secs_f64();
        let cols = column_bytes(&dir.join(&key))?;
        let k = written.max(1) as f64;
        // Decode speed: read the file back, all columns.
        let t = Instant::now();
        let mut rs = super::parquet_io::open_stream(
            repo.store(),
            &key,
            Some(bytes),
            &super::node::node_schema(),
            super::node_index::READ_BATCH_ROWS,
        )
        .await?;
        while let Some(b) = rs.next().await {
            b?;
        }
        let read_s = t.elapsed().as_secs_f64();
        out.insert(
            label.to_string(),
            json!({
                "bytes_per_file": bytes as f64 / k,
                "columns": cols.iter().map(|(c, b)| (c.clone(), json!(((*b as f64 / k) * 1000.0).round() / 1000.0))).collect::<serde_json::Map<_, _>>(),
                "write_rows_per_second": k / secs,
                "read_rows_per_second": k / read_s,
            }),
        );
        let _ = std::fs::remove_file(dir.join(&key));
    }
    Ok(json!({ "rows": rows, "trials": out }))
}
