//! A backup split into **parts**: contiguous node-id ranges of what it must read, stored by different jobs
//! (on different workers at once), assembled into one manifest by a final commit.
//!
//! Every job of a split backup derives the same [`Plan`] from what its payload names ([`Upload`]: the
//! index snapshot, the previous backup, the snapshot id to commit), never from "the latest" of anything:
//! - the planning job ([`plan_upload`]) computes the plan and cuts its nodes to read, in node-id order,
//!   into [`PartRange`]s within a [`BatchBudget`] (bytes and nodes). One range or none: it stores and
//!   commits itself, like [`super::run`]. More: the caller fans out one job per range and a commit job;
//! - a part ([`run_part`]) stores the plan's nodes within its range ([`super::store_nodes`]: content
//!   addressed, so storing again is harmless), writes the node versions it produced as one metadata
//!   object, and last its part record `runs/{run}/{part}` ([`crate::repository::runs`]), which prune
//!   treats as a root until the run commits;
//! - the commit ([`commit_parts`]) takes the reused versions of the plan and every part's versions, writes
//!   the metadata buckets and the manifest under the fixed snapshot id (create-only), then deletes the
//!   run's part records.
//!
//! Idempotence: a part whose record already matches its range stores nothing again; any job finding the
//! manifest of its snapshot id stops (a commit that ran twice, or a zombie of a job whose lease was
//! lost, cannot commit a second snapshot: the id is fixed and the put is create-only).

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::{BackupSummary, Plan, Progress, ToRead, load_manifest_opt, previous_of, store_nodes, with_backup_marker};
use crate::azure::ShareClient;
use crate::index::node::NodeKind as IndexKind;
use crate::index::snapshot::NodeIndex;
use crate::repository::generated::NodeVersion;
use crate::repository::runs::{self, PartRecord};
use crate::repository::{ObjectId, Repository};

/// How much one part reads at most (a single larger file is a part of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchBudget {
    /// Content bytes (the index sizes of the files to read).
    pub bytes: u64,
    /// Nodes to read: files and directories (each costs at least one Get Properties call).
    pub nodes: u64,
}

impl Default for BatchBudget {
    fn default() -> Self {
        BatchBudget { bytes: 1 << 30, nodes: 20_000 }
    }
}

/// What every job of one split backup agrees on, fixed by the planning job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The backup snapshot id the commit creates.
    pub snapshot_id: String,
    /// The index snapshot backed up.
    pub index_snapshot: i64,
    /// The backup snapshot diffed against (none for a first backup).
    pub previous: Option<String>,
}

/// One part: the nodes to read with ids in `first..=last`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRange {
    /// `p0`, `p1`, ... in node-id order.
    pub id: String,
    pub first: u64,
    pub last: u64,
    /// Nodes to read in the range, and their content bytes (what the plan counted).
    pub nodes: u64,
    pub bytes: u64,
}

/// Cuts a plan's nodes to read (ascending node id) into contiguous ranges within `budget`.
pub fn batches(to_read: &[ToRead], budget: &BatchBudget) -> Vec<PartRange> {
    let mut out: Vec<PartRange> = Vec::new();
    let mut cur: Option<PartRange> = None;
    for t in to_read {
        let id = t.node.node_id as u64;
        let bytes = if t.node.kind == IndexKind::File { t.node.size.max(0) as u64 } else { 0 };
        if let Some(c) = &cur
            && (c.nodes + 1 > budget.nodes.max(1) || c.bytes + bytes > budget.bytes)
        {
            out.extend(cur.take());
        }
        let c = cur.get_or_insert_with(|| PartRange {
            id: format!("p{}", out.len()),
            first: id,
            last: id,
            nodes: 0,
            bytes: 0,
        });
        c.last = id;
        c.nodes += 1;
        c.bytes += bytes;
    }
    out.extend(cur);
    out
}

/// The plan an upload names (its index snapshot and previous backup), with `share_snapshot` the share
/// snapshot the index snapshot describes.
pub async fn plan_of(
    repo: &Repository,
    index: &NodeIndex,
    upload: &Upload,
    share_snapshot: &str,
) -> anyhow::Result<Plan> {
    let (tenant, share) = (repo.scope().tenant(), repo.scope().share());
    let current = index.manifest(tenant, share, upload.index_snapshot).await?;
    let previous = match &upload.previous {
        Some(id) => {
            let m = repo.load_manifest(id).await.with_context(|| format!("the previous backup {id} of this upload"))?;
            Some(
                previous_of(repo, index, m)
                    .await?
                    .with_context(|| format!("the previous backup {id} names no index snapshot"))?,
            )
        }
        None => None,
    };
    Plan::new(repo, index, current, Some(share_snapshot.to_string()), previous).await
}

/// What the planning job found.
pub enum Planned {
    /// The upload fit one part (or there was nothing to read): stored and committed (or found committed).
    Committed(BackupSummary),
    /// More than one part: run one job per range, then [`commit_parts`].
    Split(Vec<PartRange>),
}

/// Plans the backup of `upload` (see the module docs): within the budget it is stored and committed here
/// (`share` is a client at the index snapshot's share snapshot), otherwise the ranges are returned.
pub async fn plan_upload(
    repo: &mut Repository,
    index: &NodeIndex,
    share: &ShareClient,
    upload: &Upload,
    budget: &BatchBudget,
    readers: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Planned> {
    if let Some(m) = load_manifest_opt(repo, &upload.snapshot_id).await? {
        return Ok(Planned::Committed(committed(m, upload)));
    }
    let share_snapshot = share.snapshot().context("a split backup reads a share snapshot")?.to_string();
    with_backup_marker(repo, async |repo| {
        let started = std::time::Instant::now();
        let stats0 = repo.stats();
        let mut plan = plan_of(repo, index, upload, &share_snapshot).await?;
        let ranges = batches(&plan.to_read, budget);
        if ranges.len() > 1 {
            return Ok(Planned::Split(ranges));
        }
        let mut sum = plan.summary();
        let nodes = std::mem::take(&mut plan.to_read);
        let produced = store_nodes(repo, share, &plan, nodes, readers, progress, &mut sum).await?;
        plan.commit(repo, produced, &mut sum, Some(upload.snapshot_id.clone())).await?;
        sum.add_stats(&repo.stats(), &stats0);
        sum.seconds = started.elapsed().as_secs_f64();
        Ok(Planned::Committed(sum))
    })
    .await
}

/// The summary of an upload whose manifest exists already.
fn committed(m: crate::repository::BackupManifest, upload: &Upload) -> BackupSummary {
    BackupSummary {
        snapshot_id: m.snapshot_id,
        parent: m.parent,
        index_snapshot: upload.index_snapshot,
        share_snapshot: m.extra.get(super::EXTRA_SHARE_SNAPSHOT).cloned(),
        already_committed: true,
        ..Default::default()
    }
}

/// What a part record's `info` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartInfo {
    upload: Upload,
    range: PartRange,
    summary: BackupSummary,
}

/// What [`run_part`] did.
pub enum PartDone {
    /// Stored the range and wrote the part record.
    Stored(BackupSummary),
    /// The part record was there already (a re-run): nothing stored.
    AlreadyStored(BackupSummary),
    /// The upload's manifest exists: nothing to do.
    AlreadyCommitted,
}

/// Runs part `range` of run `run` (see the module docs); `share` is a client at the share snapshot.
pub async fn run_part(
    repo: &mut Repository,
    index: &NodeIndex,
    share: &ShareClient,
    run: &str,
    upload: &Upload,
    range: &PartRange,
    readers: usize,
    progress: &dyn Progress,
) -> anyhow::Result<PartDone> {
    if load_manifest_opt(repo, &upload.snapshot_id).await?.is_some() {
        return Ok(PartDone::AlreadyCommitted);
    }
    if let Some(record) = runs::get_part(repo, run, &range.id).await?
        && let Ok(info) = serde_json::from_value::<PartInfo>(record.info)
        && info.upload == *upload
        && info.range == *range
    {
        return Ok(PartDone::AlreadyStored(info.summary));
    }
    let share_snapshot = share.snapshot().context("a split backup reads a share snapshot")?.to_string();
    with_backup_marker(repo, async |repo| {
        let started = std::time::Instant::now();
        let stats0 = repo.stats();
        let mut plan = plan_of(repo, index, upload, &share_snapshot).await?;
        let nodes: Vec<ToRead> = std::mem::take(&mut plan.to_read)
            .into_iter()
            .filter(|t| (range.first..=range.last).contains(&(t.node.node_id as u64)))
            .collect();
        if nodes.len() as u64 != range.nodes {
            bail!(
                "part {} of run {run}: the plan has {} nodes to read in {}..={}, the planning job counted {}",
                range.id,
                nodes.len(),
                range.first,
                range.last,
                range.nodes
            );
        }
        let mut sum = BackupSummary::default();
        let produced = store_nodes(repo, share, &plan, nodes, readers, progress, &mut sum).await?;
        let metadata = repo.put_metadata(produced.into_values().collect()).await?;
        sum.add_stats(&repo.stats(), &stats0);
        sum.seconds = started.elapsed().as_secs_f64();
        let info = PartInfo { upload: upload.clone(), range: range.clone(), summary: sum.clone() };
        let record = PartRecord { metadata: vec![metadata.to_hex()], info: serde_json::to_value(&info)? };
        runs::put_part(repo, run, &range.id, &record).await?;
        Ok(PartDone::Stored(sum))
    })
    .await
}

/// Commits a split backup from its parts' records (see the module docs) and deletes the records.
/// `share_snapshot` is the share snapshot the index snapshot describes.
pub async fn commit_parts(
    repo: &mut Repository,
    index: &NodeIndex,
    run: &str,
    upload: &Upload,
    parts: &[PartRange],
    share_snapshot: &str,
) -> anyhow::Result<BackupSummary> {
    if let Some(m) = load_manifest_opt(repo, &upload.snapshot_id).await? {
        runs::remove_run(repo, run).await?;
        return Ok(committed(m, upload));
    }
    let sum = with_backup_marker(repo, async |repo| {
        let started = std::time::Instant::now();
        let stats0 = repo.stats();
        let plan = plan_of(repo, index, upload, &share_snapshot).await?;
        let mut sum = plan.summary();
        let mut produced: BTreeMap<u64, NodeVersion> = BTreeMap::new();
        for range in parts {
            let Some(record) = runs::get_part(repo, run, &range.id).await? else {
                bail!("part {} of run {run} has no record (it stored nothing); nothing was committed", range.id);
            };
            let info: PartInfo = serde_json::from_value(record.info)
                .with_context(|| format!("part record {} of run {run}", range.id))?;
            if info.upload != *upload || info.range != *range {
                bail!(
                    "the record of part {} of run {run} is for another upload or range; nothing was committed",
                    range.id
                );
            }
            for id in &record.metadata {
                let oid = ObjectId::from_hex(id)
                    .with_context(|| format!("part {} names a malformed metadata id {id}", range.id))?;
                for v in repo.get_metadata(&oid).await? {
                    if !(range.first..=range.last).contains(&v.node_id) {
                        bail!(
                            "part {} of run {run} holds node {} outside its range {}..={}",
                            range.id,
                            v.node_id,
                            range.first,
                            range.last
                        );
                    }
                    produced.insert(v.node_id, v);
                }
            }
            sum.add_part(&info.summary);
        }
        plan.commit(repo, produced, &mut sum, Some(upload.snapshot_id.clone())).await?;
        sum.add_stats(&repo.stats(), &stats0);
        sum.seconds = started.elapsed().as_secs_f64();
        Ok(sum)
    })
    .await?;
    runs::remove_run(repo, run).await?;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::node::Node;

    fn node(id: i64, kind: IndexKind, size: i64) -> ToRead {
        let node = Node {
            node_id: id,
            parent_id: 1,
            name: format!("n{id}"),
            kind,
            size,
            mtime: 0,
            ctime: 0,
            attributes: 0,
            xorhash: 0,
        };
        ToRead { node, path: String::new(), prev: None }
    }

    #[test]
    fn batches_are_contiguous_within_the_budget_and_a_large_file_stands_alone() {
        let f = IndexKind::File;
        let nodes = vec![
            node(2, IndexKind::Dir, 0),
            node(3, f, 40),
            node(5, f, 50),
            node(9, f, 500),
            node(10, f, 1),
            node(11, f, 1),
            node(12, f, 1),
        ];
        let b = batches(&nodes, &BatchBudget { bytes: 100, nodes: 3 });
        let got: Vec<(&str, u64, u64, u64, u64)> =
            b.iter().map(|r| (r.id.as_str(), r.first, r.last, r.nodes, r.bytes)).collect();
        assert_eq!(got, vec![("p0", 2, 5, 3, 90), ("p1", 9, 9, 1, 500), ("p2", 10, 12, 3, 3)]);
        assert_eq!(batches(&nodes, &BatchBudget::default()).len(), 1);
        assert!(batches(&[], &BatchBudget::default()).is_empty());
    }
}
