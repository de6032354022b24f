//! The index's commands: `afb diff`, `afb sql`, `afb snapshots`, `afb gc`.

use clap::Args;

use super::NodeIndex;
use super::diff::{change_chain, diff_snapshots, diff_snapshots_full};
use super::sql::{Focus, OutputFormat, SqlSession, render, write_parquet, write_stream};
use crate::cli::{ExitCode, OutputArgs, RepoArgs};

/// Arguments of `afb diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub share: String,
    /// The older snapshot id.
    pub snap_a: i64,
    /// The newer snapshot id.
    pub snap_b: i64,
    /// Also list every changed node (one line each; in JSON, a `changes` array).
    #[arg(long)]
    pub list: bool,
    /// Read both snapshots in full even when change records could answer (same result; for measuring).
    #[arg(long)]
    pub full_merge: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `afb diff`: counts and bytes per class; with `--list`, the changed nodes.
pub async fn diff(a: DiffArgs) -> anyhow::Result<ExitCode> {
    let repo = NodeIndex::open(&a.repo.repo)?;
    let ma = repo.manifest(&a.tenant, &a.share, a.snap_a).await?;
    let mb = repo.manifest(&a.tenant, &a.share, a.snap_b).await?;
    let mut listed = Vec::new();
    let t0 = std::time::Instant::now();
    let method =
        if !a.full_merge && change_chain(&repo, &ma, &mb).await?.is_some() { "change records" } else { "full merge" };
    let on_change = |c: &super::diff::Change| {
        if a.list {
            let n = c.new.as_ref().or(c.old.as_ref()).expect("a side");
            let mut flags = Vec::new();
            if c.modified {
                flags.push("modified");
            }
            if c.renamed {
                flags.push("renamed");
            }
            if c.moved {
                flags.push("moved");
            }
            listed.push(serde_json::json!({
                "node_id": n.node_id, "change": c.kind.as_str(), "flags": flags,
                "kind": n.kind.as_str(), "name": n.name, "old_name": c.old.as_ref().map(|o| o.name.clone()),
                "parent_id": c.new.as_ref().map(|x| x.parent_id), "old_parent_id": c.old.as_ref().map(|x| x.parent_id),
                "size": c.new.as_ref().map(|x| x.size), "old_size": c.old.as_ref().map(|x| x.size),
            }));
        }
        Ok(())
    };
    let s = match a.full_merge {
        true => diff_snapshots_full(&repo, &ma, &mb, on_change).await?,
        false => diff_snapshots(&repo, &ma, &mb, on_change).await?,
    };
    let secs = t0.elapsed().as_secs_f64();
    if a.out.json {
        let mut v = serde_json::json!({
            "tenant_id": a.tenant, "share_id": a.share, "from": a.snap_a, "to": a.snap_b,
            "changed_rows": s.changed_rows(), "summary": s, "seconds": secs, "method": method,
        });
        if a.list {
            v["changes"] = serde_json::Value::Array(listed);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}/{}: snapshot {} -> {}: {} changed rows ({secs:.3} s, {method})",
            a.tenant,
            a.share,
            a.snap_a,
            a.snap_b,
            s.changed_rows()
        );
        for (k, t) in [
            ("added", s.added),
            ("deleted", s.deleted),
            ("modified", s.modified),
            ("renamed", s.renamed),
            ("moved", s.moved),
            ("unchanged", s.unchanged),
        ] {
            println!("  {k:<10} {:>12} nodes {:>18} bytes", t.count, t.bytes);
        }
        for c in listed {
            println!("{c}");
        }
    }
    Ok(ExitCode::Ok)
}

/// Arguments of `afb sql`.
#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Tenant of the snapshot that path functions resolve against.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Share of the snapshot that path functions resolve against.
    #[arg(long)]
    pub share: Option<String>,
    /// Snapshot that path functions resolve against (default: the share's latest).
    #[arg(long)]
    pub snapshot: Option<i64>,
    /// The SQL statement (`-` or `@FILE` reads it from stdin or a file).
    pub query: String,
    #[command(flatten)]
    pub out: OutputArgs,
    /// CSV with a header instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Write the result to this Parquet file instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub parquet: Option<std::path::PathBuf>,
    /// Memory budget of the query's aggregations, joins and sorts (e.g. `256MiB`, `4GiB`): beyond it they
    /// spill to the system's temporary directory. The directory map of `path()` and friends comes on top.
    #[arg(long, default_value = "1GiB")]
    pub memory: bytesize::ByteSize,
}

/// `afb sql`.
pub async fn sql(a: SqlArgs) -> anyhow::Result<ExitCode> {
    let repo = NodeIndex::open(&a.repo.repo)?;
    let query = if a.query == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else if let Some(f) = a.query.strip_prefix('@') {
        std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading {f}: {e}"))?
    } else {
        a.query.clone()
    };
    let focus = Focus { tenant: a.tenant, share: a.share, snapshot: a.snapshot };
    let memory = usize::try_from(a.memory.as_u64()).unwrap_or(usize::MAX);
    let session = SqlSession::with_memory(repo, focus, memory).await?;
    let result = session.stream(&query).await?;
    if let Some(p) = &a.parquet {
        let rows = write_parquet(result, p).await?;
        eprintln!("wrote {rows} rows to {}", p.display());
        return Ok(ExitCode::Ok);
    }
    // CSV and JSON stream to stdout as the rows come; a table needs them all for its column widths.
    if a.out.json || a.csv {
        let format = if a.out.json { OutputFormat::Json } else { OutputFormat::Csv };
        write_stream(result, format, std::io::BufWriter::new(std::io::stdout().lock())).await?;
    } else {
        let batches: Vec<_> = futures::TryStreamExt::try_collect(result).await?;
        println!("{}", render(&batches, OutputFormat::Table)?.trim_end());
    }
    Ok(ExitCode::Ok)
}

/// Arguments of `afb snapshots`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub share: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `afb snapshots`: the committed snapshots of a share.
pub async fn snapshots(a: SnapshotsArgs) -> anyhow::Result<ExitCode> {
    let repo = NodeIndex::open(&a.repo.repo)?;
    let ms = repo.manifests(&a.tenant, &a.share).await?;
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&ms)?);
    } else {
        for m in ms {
            let kind = if m.layers.len() == 1 { "base" } else { "delta" };
            println!(
                "{:>6}  {}  {kind:<5}  {:>12} nodes {:>16} bytes  {:>12} stored bytes",
                m.snapshot_id,
                m.created_at,
                m.totals.nodes,
                m.totals.bytes,
                m.own_bytes()
            );
        }
    }
    Ok(ExitCode::Ok)
}

/// Arguments of `afb gc`.
#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub share: String,
    /// Leave unreferenced files younger than this many seconds (a writer may still be at work).
    #[arg(long, default_value_t = 3600)]
    pub grace_secs: u64,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `afb gc`: remove data files and directory summaries no manifest references.
pub async fn gc(a: GcArgs) -> anyhow::Result<ExitCode> {
    let repo = NodeIndex::open(&a.repo.repo)?;
    let removed = repo.gc(&a.tenant, &a.share, std::time::Duration::from_secs(a.grace_secs)).await?;
    if a.out.json {
        println!("{}", serde_json::json!({ "removed": removed }));
    } else {
        for k in &removed {
            println!("removed {k}");
        }
        println!("{} unreferenced files removed", removed.len());
    }
    Ok(ExitCode::Ok)
}
