//! What changed between two snapshots of a share: a streaming merge on `node_id` in constant memory.
//!
//! Both inputs are sorted by `node_id` (every snapshot is), so one pass over both decides every node:
//! - only in the old snapshot: **deleted**; only in the new one: **added**;
//! - in both: **modified** by [`Properties::modified_since`](super::node::Properties::modified_since)
//!   (size, mtime, ctime, attributes or kind differ, or two known hashes differ), **renamed** if the
//!   name differs, **moved** if the parent differs (any combination; one row per node).
//!
//! Paths are never compared: renaming a directory with 10,000 files below it changes one row, the
//! directory's own.
//!
//! Two ways to the same answer:
//! - **Change records** (the usual case): every snapshot records its change from the one before it
//!   ([`ChangeRecord`]: the rows before and after, for changed nodes only). When every snapshot from `old`
//!   to `new` has one, the diff merges just those records, reading O(changes) rows instead of two whole
//!   snapshots: the old row of a node is its `before` in the first record that mentions it, the new row
//!   its `after` in the last one.
//! - **Full merge**: otherwise (an older snapshot id first, a forgotten snapshot in between, records
//!   bigger than half the snapshots) both snapshots are read in full and merged.

use anyhow::Context;
use arrow::array::RecordBatch;
use futures::StreamExt;
use serde::Serialize;

use super::BatchStream;
use super::manifest::{ChangeRecord, IndexManifest};
use super::node::{Node, NodeColumns, NodeId, NodeKind, ROOT_ID, check_node_schema, node_schema};
use super::node_index::{Cursor, NodeIndex, READ_BATCH_ROWS};
use super::parquet_io::open_stream;

/// At most this many change records are merged; a longer history is diffed by a full merge.
const MAX_CHANGE_RECORDS: usize = 64;

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
    /// Size, mtime, ctime, attributes or kind differ, or both xorhashes are known and differ.
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
    pub fn node_id(&self) -> NodeId {
        self.new.as_ref().or(self.old.as_ref()).map_or(ROOT_ID, |n| n.node_id)
    }
}

/// Number of nodes and the sum of their sizes in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    /// Count row `i`; its size counts only if it is a file (directories hold no bytes of their own).
    fn add(&mut self, n: &NodeColumns<'_>, i: usize) {
        self.count += 1;
        if n.kind.value(i) != NodeKind::Dir as i8 {
            self.bytes += n.size.value(i).max(0) as u64;
        }
    }
}

/// Counts and bytes (of files) per class. A node both renamed and modified counts in both.
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

/// Diff two committed snapshots of one share; `on_change` sees every changed node in `node_id` order.
pub async fn diff_snapshots(
    repo: &NodeIndex,
    old: &IndexManifest,
    new: &IndexManifest,
    on_change: impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<DiffSummary> {
    let what =
        || format!("diff of {}/{} snapshots {} and {}", new.tenant_id, new.share_id, old.snapshot_id, new.snapshot_id);
    if let Some(chain) = change_chain(repo, old, new).await.with_context(what)? {
        return diff_change_records(repo, &chain, new, on_change).await.with_context(what);
    }
    diff_snapshots_full(repo, old, new, on_change).await
}

/// [`diff_snapshots`] by a full merge of both snapshots, whatever change records exist (for tests and
/// benchmarks that compare the two ways).
pub async fn diff_snapshots_full(
    repo: &NodeIndex,
    old: &IndexManifest,
    new: &IndexManifest,
    on_change: impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<DiffSummary> {
    let a = repo.read(old, None)?;
    let b = repo.read(new, None)?;
    diff_streams(a, b, on_change).await.with_context(|| {
        format!("diff of {}/{} snapshots {} and {}", new.tenant_id, new.share_id, old.snapshot_id, new.snapshot_id)
    })
}

/// Which way [`diff_snapshots`] would go: the change records from `old` to `new` in order, or `None` for
/// a full merge.
pub async fn change_chain(
    repo: &NodeIndex,
    old: &IndexManifest,
    new: &IndexManifest,
) -> anyhow::Result<Option<Vec<ChangeRecord>>> {
    if old.tenant_id != new.tenant_id || old.share_id != new.share_id || old.snapshot_id > new.snapshot_id {
        return Ok(None);
    }
    // Reading more than half of both snapshots' rows from records is no cheaper than a full merge.
    let budget = (old.totals.nodes + new.totals.nodes) / 2;
    let mut chain = Vec::new();
    let mut rows = 0;
    let mut at = new.clone();
    while at.snapshot_id > old.snapshot_id {
        let Some(record) = at.changes.clone() else { return Ok(None) };
        rows += record.before.rows + record.after.rows;
        if rows > budget || chain.len() == MAX_CHANGE_RECORDS || record.since < old.snapshot_id {
            return Ok(None);
        }
        let since = record.since;
        chain.push(record);
        if since == old.snapshot_id {
            break;
        }
        at = match repo.manifest(&new.tenant_id, &new.share_id, since).await {
            Ok(m) => m,
            // Forgotten in between: only a full merge can tell.
            Err(_) => return Ok(None),
        };
    }
    chain.reverse();
    Ok(Some(chain))
}

/// Diff by merging change records (oldest first) that lead to `new`.
async fn diff_change_records(
    repo: &NodeIndex,
    chain: &[ChangeRecord],
    new: &IndexManifest,
    mut on_change: impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<DiffSummary> {
    let store = repo.store();
    let schema = node_schema();
    // (before, after) per record, oldest first.
    let mut cursors = Vec::with_capacity(chain.len());
    for r in chain {
        // open_stream checks each file's columns against the node schema.
        let before = open_stream(store, &r.before.key, Some(r.before.bytes), &schema, READ_BATCH_ROWS).await?;
        let after = open_stream(store, &r.after.key, Some(r.after.bytes), &schema, READ_BATCH_ROWS).await?;
        cursors.push((Cursor::new(before, &r.before.key), Cursor::new(after, &r.after.key)));
    }
    let mut s = DiffSummary::default();
    let mut last = i64::MIN;
    loop {
        let mut min: Option<NodeId> = None;
        for (b, a) in cursors.iter_mut() {
            for c in [b, a] {
                if let Some(h) = c.head().await? {
                    min = Some(min.map_or(h, |m| m.min(h)));
                }
            }
        }
        let Some(id) = min else { break };
        last = ordered(last, id.0, "change record")?;
        // The first record mentioning the node has its old row (if it existed); the last one its new row.
        let mut first: Option<usize> = None;
        let mut latest: Option<usize> = None;
        for (r, (b, a)) in cursors.iter_mut().enumerate() {
            if b.head().await? == Some(id) || a.head().await? == Some(id) {
                first.get_or_insert(r);
                latest = Some(r);
            }
        }
        let (first, latest) = (first.expect("a record holds the minimum"), latest.expect("a record holds the minimum"));
        let has_old = cursors[first].0.head().await? == Some(id);
        let has_new = cursors[latest].1.head().await? == Some(id);
        let old_row = has_old.then(|| cursors[first].0.current_ref());
        let new_row = has_new.then(|| cursors[latest].1.current_ref());
        let old_cols = old_row.map(|(b, i)| (NodeColumns::new(b), i));
        let new_cols = new_row.map(|(b, i)| (NodeColumns::new(b), i));
        judge(
            &mut s,
            old_cols.as_ref().map(|(c, i)| (c, *i)),
            new_cols.as_ref().map(|(c, i)| (c, *i)),
            &mut on_change,
        )?;
        for (b, a) in cursors.iter_mut() {
            for c in [b, a] {
                if c.head().await? == Some(id) {
                    c.advance();
                }
            }
        }
    }
    // Every other row of `new` is unchanged (a node changed and changed back was counted just now too).
    s.unchanged = Tally {
        count: new.totals.nodes.saturating_sub(s.added.count + s.changed.count),
        bytes: new.totals.bytes.saturating_sub(s.added.bytes + s.changed.bytes),
    };
    Ok(s)
}

/// Classify one node from its old row and its new row (either may be absent), count it, and report it
/// if it changed.
fn judge(
    s: &mut DiffSummary,
    old: Option<(&NodeColumns<'_>, usize)>,
    new: Option<(&NodeColumns<'_>, usize)>,
    on_change: &mut impl FnMut(&Change) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match (old, new) {
        (None, None) => Ok(()),
        (Some((ca, ai)), None) => {
            s.deleted.add(ca, ai);
            on_change(&Change {
                kind: ChangeKind::Deleted,
                modified: false,
                renamed: false,
                moved: false,
                old: Some(ca.node(ai)),
                new: None,
            })
        }
        (None, Some((cb, bi))) => {
            s.added.add(cb, bi);
            on_change(&Change {
                kind: ChangeKind::Added,
                modified: false,
                renamed: false,
                moved: false,
                old: None,
                new: Some(cb.node(bi)),
            })
        }
        (Some((ca, ai)), Some((cb, bi))) => {
            let modified = cb.properties(bi).modified_since(&ca.properties(ai));
            let moved = ca.parent_id.value(ai) != cb.parent_id.value(bi);
            let renamed = ca.name.value(ai) != cb.name.value(bi);
            if !(modified || moved || renamed) {
                s.unchanged.add(cb, bi);
                return Ok(());
            }
            s.changed.add(cb, bi);
            if modified {
                s.modified.add(cb, bi);
            }
            if renamed {
                s.renamed.add(cb, bi);
            }
            if moved {
                s.moved.add(cb, bi);
            }
            on_change(&Change {
                kind: ChangeKind::Changed,
                modified,
                renamed,
                moved,
                old: Some(ca.node(ai)),
                new: Some(cb.node(bi)),
            })
        }
    }
}

/// Diff two node streams, each sorted strictly ascending by `node_id` (a full merge).
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
                    judge(&mut s, Some((&ca, ai)), None, &mut on_change)?;
                    ai += 1;
                }
            }
            (None, Some(bb)) => {
                let cb = NodeColumns::new(bb);
                while bi < cb.len() {
                    last_b = ordered(last_b, cb.node_id.value(bi), "new")?;
                    judge(&mut s, None, Some((&cb, bi)), &mut on_change)?;
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
                        judge(&mut s, Some((&ca, ai)), None, &mut on_change)?;
                        ai += 1;
                    } else if ib < ia {
                        last_b = ordered(last_b, ib, "new")?;
                        judge(&mut s, None, Some((&cb, bi)), &mut on_change)?;
                        bi += 1;
                    } else {
                        last_a = ordered(last_a, ia, "old")?;
                        last_b = ordered(last_b, ib, "new")?;
                        judge(&mut s, Some((&ca, ai)), Some((&cb, bi)), &mut on_change)?;
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
