//! `afb api-sample`: fill a repository with synthetic tenants for the dashboard's browser tests, demos
//! and benchmarks: `tenant-000`, `tenant-001`, ... each with a share `files` holding a seeded synthetic
//! tree and a history of mutated snapshots; `tenant-000` also gets a share `names` whose file names are
//! hostile HTML (`<script>`), to show they are escaped.

use clap::Args;

use crate::cli::{ExitCode, RepoArgs};
use crate::index::NodeIndex;
use crate::index::node::{Node, NodeKind, nodes_to_batch};
use crate::index::snapshot::WriteOptions;
use crate::index::synthetic::{Mutation, SyntheticShare, write_mutated};

#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Number of tenants.
    #[arg(long, default_value_t = 3)]
    pub tenants: usize,
    /// Nodes in each tenant's share.
    #[arg(long, default_value_t = 5000)]
    pub nodes: u64,
    /// Snapshots per share (the first a base, then mutations of 1% modified, 0.5% deleted, 2% added).
    #[arg(long, default_value_t = 4)]
    pub snapshots: usize,
    /// Hours between two snapshots of a share: the last is now, the first `(snapshots - 1) * hours` ago.
    #[arg(long, default_value_t = 24.0)]
    pub interval_hours: f64,
}

/// Write options for snapshot `k` of `n` (0-based): created `(n - 1 - k) * hours` before `now`.
fn dated(now: chrono::DateTime<chrono::Utc>, k: usize, n: usize, hours: f64) -> WriteOptions {
    let back_ms = ((n - 1 - k) as f64 * hours * 3_600_000.0) as i64;
    WriteOptions { created_ms: Some(now.timestamp_millis() - back_ms), ..Default::default() }
}

/// Write the sample; returns the number of snapshots written.
pub async fn write_sample(repo: &NodeIndex, a: &SampleArgs) -> anyhow::Result<usize> {
    let mut written = 0;
    let now = chrono::Utc::now();
    let n = a.snapshots.max(1);
    for t in 0..a.tenants {
        let tenant = format!("tenant-{t:03}");
        let mut w = repo.begin(&tenant, "files", dated(now, 0, n, a.interval_hours)).await?;
        for b in SyntheticShare::new(t as u64 + 1, a.nodes).batches(65536) {
            w.write(&b).await?;
        }
        let mut m = w.commit(None).await?;
        written += 1;
        for k in 1..a.snapshots {
            let mutation = Mutation { added: 0.02, dir_renames: 5, ..Default::default() };
            let opts = dated(now, k, n, a.interval_hours);
            m = write_mutated(repo, &tenant, "files", &m, mutation, (t * 1000 + k) as u64, opts).await?;
            written += 1;
        }
    }
    if a.tenants > 0 {
        let mut nodes = vec![
            sample_node(1, 0, "<script>", NodeKind::Dir, 0),
            sample_node(2, 1, "<script>alert(1).txt", NodeKind::File, 10),
            sample_node(3, 0, "a&b \"q\".txt", NodeKind::File, 20),
        ];
        for round in 0..2 {
            if round == 1 {
                nodes.push(sample_node(4, 1, "<img src=x onerror=alert(2)>.txt", NodeKind::File, 5));
            }
            let mut w = repo.begin("tenant-000", "names", dated(now, round, 2, a.interval_hours)).await?;
            w.write(&nodes_to_batch(&nodes)).await?;
            w.commit(None).await?;
            written += 1;
        }
    }
    Ok(written)
}

/// `afb api-sample`.
pub async fn run(a: SampleArgs) -> anyhow::Result<ExitCode> {
    let repo = NodeIndex::open(&a.repo.repo)?;
    let t0 = std::time::Instant::now();
    let n = write_sample(&repo, &a).await?;
    eprintln!("wrote {n} snapshots for {} tenants in {:.1} s", a.tenants, t0.elapsed().as_secs_f64());
    Ok(ExitCode::Ok)
}

/// A node row of the hand-made samples: times fixed at 2023-11-14 (Unix nanoseconds), attributes
/// ARCHIVE, the node id as its hash.
pub fn sample_node(id: i64, parent: i64, name: &str, kind: NodeKind, size: i64) -> Node {
    Node {
        node_id: crate::index::node::NodeId(id),
        parent_id: crate::index::node::NodeId(parent),
        name: name.into(),
        kind,
        size,
        mtime: 1_700_000_000_000_000_000,
        ctime: 1_700_000_000_000_000_000,
        attributes: 0x20,
        xorhash: id,
    }
}
