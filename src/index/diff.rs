//! What changed between two snapshots of a share: a streaming merge on `node_id` in constant memory.
//!
//! Both inputs are sorted by `node_id` (every snapshot is), so one pass over both decides every node:
//! - only in the old snapshot: **deleted**; only in the new one: **added**;
//! - in both: **modified** if size, mtime, ctime, attributes, xorhash or kind differ, **renamed** if the
//!   name differs, **moved** if the parent differs (any combination; one row per node).
//!
//! Paths are never compared: renaming a directory with 10,000 files below it changes one row, the
//! directory's own.

use anyhow::Context;
use arrow::array::RecordBatch;
use futures::StreamExt;
use serde::Serialize;

use super::BatchStream;
use super::manifest::Manifest;
use super::node::{Node, NodeColumns, NodeKind, check_node_schema};
use super::snapshot::Repo;

/// How a node differs between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Deleted,
    /// Present in both; see the flags of [`Change`].
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Changed => "changed",
        }
    }
}

/// One changed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Size, mtime, ctime, attributes, xorhash or kind differ.
    pub modified: bool,
    /// The name differs.
    pub renamed: bool,
    /// The parent differs.
    pub moved: bool,
    /// The row in the old snapshot (`None` when added).
    pub old: Option<Node>,
    /// The row in the new snapshot (`None` when deleted).
    pub new: Option<Node>,
}

impl Change {
    pub fn node_id(&self) -> i64 {
        self.new.as_ref().or(self.old.as_ref()).map_or(0, |n| n.node_id)
    }
}

/// Number of nodes and the sum of their sizes in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, n: &NodeColumns<'_>, i: usize) {
        self.count += 1;
        self.bytes += n.size.value(i).max(0) as u64;
    }
}

/// Counts and bytes per class. A node both renamed and modified counts in both.
/// Bytes are the old size for deleted nodes and the new size otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    pub added: Tally,
    pub deleted: Tally,
    pub modified: Tally,
    pub renamed: Tally,
    pub moved: Tally,
    /// Present in both snapshots and different in any way (modified, renamed or moved).
    pub changed: Tally,
    pub unchanged: Tally,
}

impl DiffSummary {
    /// Rows that differ (each changed node once).
    pub fn changed_rows(&self) -> u64 {
        self.added.count + self.deleted.count + self.changed.count
    }
}

/// Diff two committed snapshots; `on_change` sees every changed node in `node_id` order.
pub async fn diff_snapshots(
    repo: &Repo,
    old: &Manifest,
    new: &Manifest,
    on_change: impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<DiffSummary> {
    let a = repo.read(old, None)?;
    let b = repo.read(new, None)?;
    diff_streams(a, b, on_change)
        .await
        .with_context(|| format!("diff of {}/{} snapshots {} and {}", new.tenant_id, new.share_id, old.snapshot_id, new.snapshot_id))
}

/// Diff two node streams, each sorted strictly ascending by `node_id`.
pub async fn diff_streams(
    mut old: BatchStream,
    mut new: BatchStream,
    mut on_change: impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<DiffSummary> {
    let mut s = DiffSummary::default();
    let (mut a, mut ai): (Option<RecordBatch>, usize) = (None, 0);
    let (mut b, mut bi): (Option<RecordBatch>, usize) = (None, 0);
    let (mut a_done, mut b_done) = (false, false);
    let (mut last_a, mut last_b) = (i64::MIN, i64::MIN);
    loop {
        if !a_done && a.as_ref().is_none_or(|x| ai >= x.num_rows()) {
            a = next_batch(&mut old, "old snapshot").await?;
            ai = 0;
            a_done = a.is_none();
            continue;
        }
        if !b_done && b.as_ref().is_none_or(|x| bi >= x.num_rows()) {
            b = next_batch(&mut new, "new snapshot").await?;
            bi = 0;
            b_done = b.is_none();
            continue;
        }
        match (&a, &b) {
            (None, None) => break,
            (Some(ab), None) => {
                let ca = NodeColumns::new(ab);
                while ai < ca.len() {
                    last_a = ordered(last_a, ca.node_id.value(ai), "old")?;
                    s.deleted.add(&ca, ai);
                    on_change(&Change { kind: ChangeKind::Deleted, modified: false, renamed: false, moved: false, old: Some(ca.node(ai)), new: None })?;
                    ai += 1;
                }
            }
            (None, Some(bb)) => {
                let cb = NodeColumns::new(bb);
                while bi < cb.len() {
                    last_b = ordered(last_b, cb.node_id.value(bi), "new")?;
                    s.added.add(&cb, bi);
                    on_change(&Change { kind: ChangeKind::Added, modified: false, renamed: false, moved: false, old: None, new: Some(cb.node(bi)) })?;
                    bi += 1;
                }
            }
            (Some(ab), Some(bb)) => {
                let ca = NodeColumns::new(ab);
                let cb = NodeColumns::new(bb);
                while ai < ca.len() && bi < cb.len() {
                    let (ia, ib) = (ca.node_id.value(ai), cb.node_id.value(bi));
                    if ia < ib {
                        last_a = ordered(last_a, ia, "old")?;
                        s.deleted.add(&ca, ai);
                        on_change(&Change { kind: ChangeKind::Deleted, modified: false, renamed: false, moved: false, old: Some(ca.node(ai)), new: None })?;
                        ai += 1;
                    } else if ib < ia {
                        last_b = ordered(last_b, ib, "new")?;
                        s.added.add(&cb, bi);
                        on_change(&Change { kind: ChangeKind::Added, modified: false, renamed: false, moved: false, old: None, new: Some(cb.node(bi)) })?;
                        bi += 1;
                    } else {
                        last_a = ordered(last_a, ia, "old")?;
                        last_b = ordered(last_b, ib, "new")?;
                        let modified = ca.size.value(ai) != cb.size.value(bi)
                            || ca.mtime.value(ai) != cb.mtime.value(bi)
                            || ca.ctime.value(ai) != cb.ctime.value(bi)
                            || ca.attributes.value(ai) != cb.attributes.value(bi)
                            || ca.xorhash.value(ai) != cb.xorhash.value(bi)
                            || ca.kind.value(ai) != cb.kind.value(bi);
                        let moved = ca.parent_id.value(ai) != cb.parent_id.value(bi);
                        let renamed = ca.name.value(ai) != cb.name.value(bi);
                        if modified || moved || renamed {
                            s.changed.add(&cb, bi);
                            if modified {
                                s.modified.add(&cb, bi);
                            }
                            if renamed {
                                s.renamed.add(&cb, bi);
                            }
                            if moved {
                                s.moved.add(&cb, bi);
                            }
                            on_change(&Change {
                                kind: ChangeKind::Changed,
                                modified,
                                renamed,
                                moved,
                                old: Some(ca.node(ai)),
                                new: Some(cb.node(bi)),
                            })?;
                        } else {
                            s.unchanged.add(&cb, bi);
                        }
                        ai += 1;
                        bi += 1;
                    }
                }
            }
        }
    }
    Ok(s)
}

fn ordered(last: i64, id: i64, side: &str) -> anyhow::Result<i64> {
    if id <= last {
        anyhow::bail!("{side} snapshot is not sorted by node_id: {id} after {last}");
    }
    Ok(id)
}

async fn next_batch(s: &mut BatchStream, what: &str) -> anyhow::Result<Option<RecordBatch>> {
    match s.next().await {
        Some(Ok(b)) => {
            check_node_schema(&b.schema()).with_context(|| format!("reading {what}"))?;
            Ok(Some(b))
        }
        Some(Err(e)) => Err(e).with_context(|| format!("reading {what}")),
        None => Ok(None),
    }
}

/// Is the node a directory (for callers that only have the change).
pub fn is_dir(c: &Change) -> bool {
    c.new.as_ref().or(c.old.as_ref()).is_some_and(|n| n.kind == NodeKind::Dir)
}
