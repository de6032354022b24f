//! `afb bench index`: size and speed of the index on a synthetic share.
//!
//! Writes, into a scratch repository, share `bench` (tenant `bench`): snapshot 1 (a base of `--nodes`
//! synthetic rows), snapshot 2 (a delta: 1% modified, 0.5% added, 0.5% deleted, 100 directory renames),
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

use super::diff::diff_snapshots;
use super::dirmap::DirMap;
use super::manifest::Manifest;
use super::node::{NodeColumns, col};
use super::snapshot::{Repo, WriteOptions};
use super::sql::{Focus, SqlSession};
use super::synthetic::{Mutation, Mutator, Rng, SyntheticShare};
use crate::cli::{ExitCode, OutputArgs};

/// Arguments of `afb bench index`.
#[derive(Debug, Clone, Args)]
pub struct BenchIndexArgs {
    /// Number of nodes in the synthetic share.
    #[arg(long, default_value_t = 1_000_000)]
    pub nodes: u64,
    /// Seed of the synthetic share.
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

async fn write_mutated(repo: &Repo, share: &str, from: &Manifest, m: Mutation, seed: u64, opts: WriteOptions) -> anyhow::Result<Manifest> {
    let mut mu = Mutator::new(seed, m, from.totals.nodes, from.totals.dirs, from.next_node_id);
    let mut w = repo.begin("bench", share, opts).await?;
    let mut s = repo.read(from, None)?;
    while let Some(b) = s.next().await {
        w.write(&mu.apply(&b?)).await?;
    }
    for b in mu.finish() {
        w.write(&b).await?;
    }
    w.commit(None).await
}

/// Compressed bytes per column of a local Parquet file.
fn column_bytes(path: &std::path::Path) -> anyhow::Result<Vec<(String, u64)>> {
    use parquet::file::reader::FileReader;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let r = parquet::file::reader::SerializedFileReader::new(f)?;
    let md = r.metadata();
    let mut out: Vec<(String, u64)> = md.file_metadata().schema_descr().columns().iter().map(|c| (c.name().to_string(), 0)).collect();
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
    let repo = Repo::open(dir.to_str().context("repository path is not UTF-8")?)?;
    let n = a.nodes;
    let per = |bytes: u64| bytes as f64 / n.max(1) as f64;

    // 1. Base snapshot, streaming from the generator.
    reset_peak_rss();
    let t = Instant::now();
    let mut w = repo.begin("bench", "bench", WriteOptions::default()).await?;
    for b in SyntheticShare::new(a.seed, n).batches(8192) {
        w.write(&b).await?;
    }
    let m1 = w.commit(None).await?;
    let write_s = t.elapsed().as_secs_f64();
    let write_rss = peak_rss();
    let cols = column_bytes(&dir.join(&m1.layers[0].nodes.key))?;

    // 2. Delta with the benchmark's mutation; 3. a delta with nothing changed.
    let t = Instant::now();
    let m2 = write_mutated(&repo, "bench", &m1, Mutation::default(), a.seed + 1, WriteOptions::default()).await?;
    let delta_s = t.elapsed().as_secs_f64();
    let none = Mutation { modified: 0.0, deleted: 0.0, added: 0.0, dir_renames: 0 };
    let m3 = write_mutated(&repo, "bench", &m2, none, 0, WriteOptions::default()).await?;
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

    // Diff: base vs base+delta (the usual case), and base vs base.
    reset_peak_rss();
    let t = Instant::now();
    let d12 = diff_snapshots(&repo, &m1, &m2, |_| Ok(())).await?;
    let diff_s = t.elapsed().as_secs_f64();
    let diff_rss = peak_rss();
    reset_peak_rss();
    let t = Instant::now();
    let dff = diff_snapshots(&repo, &mf1, &mf2, |_| Ok(())).await?;
    let diff_full_s = t.elapsed().as_secs_f64();
    let diff_full_rss = peak_rss();
    anyhow::ensure!(d12 == dff, "diff over deltas and over bases disagree");

    // Directory map, paths of 1000 random nodes, du of the whole share.
    reset_peak_rss();
    let t = Instant::now();
    let dm = DirMap::load(&repo, &m2).await?;
    let dirmap_s = t.elapsed().as_secs_f64();
    let dirmap_rss = peak_rss();
    let mut rng = Rng::new(a.seed + 99);
    let mut want: Vec<i64> = (0..1000).map(|_| 1 + rng.below(m2.next_node_id as u64 - 1) as i64).collect();
    want.sort_unstable();
    want.dedup();
    // Fetch those rows (parent_id, name) in one pass, then time the path resolution alone.
    let mut picked: Vec<(i64, String)> = Vec::new();
    let mut s = repo.read(&m2, Some(&[col::PARENT_ID, col::NAME]))?;
    while let Some(b) = s.next().await {
        let b: RecordBatch = b?;
        let ids = b.column(0).as_primitive::<Int64Type>();
        let parents = b.column(1).as_primitive::<Int64Type>();
        let names = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            if want.binary_search(&ids.value(i)).is_ok() {
                picked.push((parents.value(i), names.value(i).to_string()));
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
    let root = dm.du(0).context("root")?;
    let du_lookup_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(root.files == m2.totals.files && root.bytes == m2.totals.bytes, "du of the root disagrees with the manifest");

    // The same through SQL (dirmap already built by the session on first use).
    let session = SqlSession::new(repo.clone(), Focus { tenant: Some("bench".into()), share: Some("bench".into()), snapshot: Some(2) }).await?;
    session.load_dirmap().await?;
    let list = want.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let t = Instant::now();
    let rows = session.query(&format!("SELECT path(parent_id, name) FROM nodes WHERE snapshot_id = 2 AND share_id = 'bench' AND node_id IN ({list})")).await?;
    let sql_paths_s = t.elapsed().as_secs_f64();
    let sql_rows: usize = rows.iter().map(|b| b.num_rows()).sum();

    let mut sort_cmp = serde_json::Value::Null;
    if a.compare_sort {
        sort_cmp = compare_sort(&repo, &dir, &m1).await?;
    }

    let report = json!({
        "nodes": n,
        "files": m1.totals.files,
        "dirs": m1.totals.dirs,
        "base_snapshot": { "bytes": m1.own_bytes(), "bytes_per_file": per(m1.own_bytes()), "seconds": write_s, "rows_per_second": n as f64 / write_s, "peak_rss_bytes": write_rss,
            "column_bytes_per_file": cols.iter().map(|(c, b)| (c.clone(), json!(per(*b)))).collect::<serde_json::Map<_, _>>() },
        "delta_snapshot": { "bytes": m2.own_bytes(), "bytes_per_file": per(m2.own_bytes()), "changed_rows": m2.layers.last().map(|l| l.nodes.rows), "deleted_rows": m2.layers.last().and_then(|l| l.deleted.as_ref()).map(|d| d.rows), "seconds": delta_s },
        "unchanged_snapshot": { "bytes": m3.own_bytes(), "bytes_per_file": per(m3.own_bytes()) },
        "full_snapshot_2": { "bytes": mf2.own_bytes(), "bytes_per_file": per(mf2.own_bytes()) },
        "diff": { "seconds": diff_s, "peak_rss_bytes": diff_rss, "changed_rows": d12.changed_rows(), "summary": d12 },
        "diff_base_vs_base": { "seconds": diff_full_s, "peak_rss_bytes": diff_full_rss },
        "dirmap": { "seconds": dirmap_s, "peak_rss_bytes": dirmap_rss, "dirs": dm.len(), "memory_bytes": dm.memory_bytes() },
        "paths_1000": { "nodes": picked.len(), "seconds": paths_s, "chars": total_len, "sql_seconds": sql_paths_s, "sql_rows": sql_rows },
        "du_share": { "lookup_seconds": du_lookup_s, "seconds_with_dirmap_build": dirmap_s + du_lookup_s, "bytes": root.bytes, "files": root.files },
        "sort_order": sort_cmp,
        "repository": dir.display().to_string(),
        "duckdb_inputs": { "snapshot_1": dir.join(&mf1.layers[0].nodes.key), "snapshot_2": dir.join(&mf2.layers[0].nodes.key) },
    });
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("afb bench index: {n} nodes ({} files, {} dirs)", m1.totals.files, m1.totals.dirs);
        println!("  base snapshot      {:>8.2} bytes/file   {:>10.0} rows/s written", per(m1.own_bytes()), n as f64 / write_s);
        for (c, b) in &cols {
            println!("    {c:<12} {:>6.2}", per(*b));
        }
        println!("  delta snapshot     {:>8.2} bytes/file   (1% mod, 0.5% add, 0.5% del, 100 dir renames)", per(m2.own_bytes()));
        println!("  unchanged snapshot {:>8.4} bytes/file", per(m3.own_bytes()));
        println!("  diff               {:>8.3} s, peak RSS {} MB, {} changed rows", diff_s, diff_rss >> 20, d12.changed_rows());
        println!("  diff base vs base  {:>8.3} s, peak RSS {} MB", diff_full_s, diff_full_rss >> 20);
        println!("  dirmap build       {:>8.3} s, {} dirs, {} KB", dirmap_s, dm.len(), dm.memory_bytes() >> 10);
        println!("  paths of {} nodes {:>8.3} ms (dirmap); {:.3} s through SQL incl. scan", picked.len(), paths_s * 1e3, sql_paths_s);
        println!("  du of the share    {:>8.6} ms lookup; {:.3} s with the dirmap build", du_lookup_s * 1e3, dirmap_s + du_lookup_s);
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
async fn compare_sort(repo: &Repo, dir: &std::path::Path, m: &Manifest) -> anyhow::Result<serde_json::Value> {
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
    let mut w = super::parquet_io::FileWriter::create(repo.store(), key, super::node::node_schema(), Default::default())?;
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
