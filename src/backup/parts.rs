//! A backup split into **parts**: contiguous node-id ranges, stored by different jobs (on different
//! workers at once), assembled into one manifest by a final commit.
//!
//! Every job of a split backup derives the same [`Plan`] from what its payload names ([`Upload`]: the
//! index snapshot, the previous backup, the snapshot id to commit), never from "the latest" of anything:
//! - the planning job ([`plan_upload`]) surveys the plan ([`Plan::survey`]: the two index snapshots,
//!   nothing else) and cuts the node ids into [`PartRange`]s covering every id, each within a
//!   [`BatchBudget`] of nodes and bytes to read. One range: it stores and commits itself, like
//!   [`super::run`]. More: the caller fans out one job per range and a commit job;
//! - a part ([`run_part`]) walks only its range ([`Plan::walk`], [`super::store_range`]: content
//!   addressed, so storing again is harmless), writing the metadata buckets of its range, and last its
//!   part record `runs/{run}/{part}` ([`crate::repository::runs`]) naming them, which prune treats as a
//!   root until the run commits;
//! - the commit ([`commit_parts`]) concatenates the parts' metadata lists (in range order) into the
//!   manifest under the fixed snapshot id (create-only), then deletes the run's part records. It reads
//!   the part records only, never the share or the metadata.
//!
//! Idempotence: a part whose record already matches its range stores nothing again; any job finding the
//! manifest of its snapshot id stops (a commit that ran twice, or a zombie of a job whose lease was
//! lost, cannot commit a second snapshot: the id is fixed and the put is create-only).

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

pub use super::plan::{BatchBudget, PartRange};
use super::plan::{LAST_NODE_ID, Plan};
use super::{
    BackupSummary, ManifestRefs, ObjectRefs, Progress, load_manifest_opt, previous_of, store_range, with_backup_marker,
};
use crate::azure::ShareClient;
use crate::index::NodeIndex;
use crate::repository::Repository;
use crate::repository::runs::{self, PartRecord};

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
    Ok(Plan::new(current, Some(share_snapshot.to_string()), previous))
}

/// What the planning job found.
#[allow(clippy::large_enum_variant, reason = "one value per backup plan, returned once, never stored in bulk")]
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
    concurrency: super::Concurrency,
    progress: &dyn Progress,
) -> anyhow::Result<Planned> {
    if let Some(m) = load_manifest_opt(repo, &upload.snapshot_id).await? {
        return Ok(Planned::Committed(committed(m, upload)));
    }
    let share_snapshot = share.snapshot().context("a split backup reads a share snapshot")?.to_string();
    with_backup_marker(repo, async |repo| {
        let started = std::time::Instant::now();
        let stats0 = repo.stats();
        let plan = plan_of(repo, index, upload, &share_snapshot).await?;
        let survey = plan.survey(index, budget).await?;
        if survey.ranges.len() > 1 {
            return Ok(Planned::Split(survey.ranges));
        }
        let mut sum = plan.base_summary();
        let mut walk = plan.walk(repo, index, 0, LAST_NODE_ID).await?;
        let totals = (survey.files_to_read, survey.bytes_to_read);
        let refs = store_range(repo, share, &plan, &mut walk, totals, concurrency, progress, &mut sum).await?;
        plan.commit(repo, index, refs, &mut sum, Some(upload.snapshot_id.clone())).await?;
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
    /// The permissions and bundles the range's versions refer to (its metadata objects are the record's).
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    bundles: Vec<String>,
    /// Per metadata object of the record, its node ids and references (absent in older records).
    #[serde(default)]
    metadata_info: Vec<ObjectRefs>,
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
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of a part job; a struct would only rename them")]
pub async fn run_part(
    repo: &mut Repository,
    index: &NodeIndex,
    share: &ShareClient,
    run: &str,
    upload: &Upload,
    range: &PartRange,
    concurrency: super::Concurrency,
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
        let plan = plan_of(repo, index, upload, &share_snapshot).await?;
        let mut sum = BackupSummary::default();
        let mut walk = plan.walk(repo, index, range.first, range.last).await?;
        let totals = (range.nodes, range.bytes);
        let refs = store_range(repo, share, &plan, &mut walk, totals, concurrency, progress, &mut sum).await?;
        let read = sum.nodes_read;
        if read != range.nodes {
            bail!(
                "part {} of run {run}: the walk read {read} nodes in {}..={}, the planning job counted {}",
                range.id,
                range.first,
                range.last,
                range.nodes
            );
        }
        sum.add_stats(&repo.stats(), &stats0);
        sum.seconds = started.elapsed().as_secs_f64();
        let info = PartInfo {
            upload: upload.clone(),
            range: range.clone(),
            summary: sum.clone(),
            permissions: refs.permissions.into_iter().collect(),
            bundles: refs.bundles.into_iter().collect(),
            metadata_info: refs.metadata_info,
        };
        let record = PartRecord { metadata: refs.metadata, info: serde_json::to_value(&info)? };
        runs::put_part(repo, run, &range.id, &record).await?;
        // A part whose lease was lost may finish after the commit deleted the run's records: finding the
        // manifest now, it deletes what it just wrote, so no stray record stays a prune root.
        if load_manifest_opt(repo, &upload.snapshot_id).await?.is_some() {
            runs::remove_run(repo, run).await?;
            return Ok(PartDone::AlreadyCommitted);
        }
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
        let plan = plan_of(repo, index, upload, share_snapshot).await?;
        check_cover(parts)?;
        let mut sum = plan.base_summary();
        let mut refs = ManifestRefs::default();
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
            refs.append(ManifestRefs {
                metadata: record.metadata,
                permissions: info.permissions.into_iter().collect(),
                bundles: info.bundles.into_iter().collect(),
                metadata_info: info.metadata_info,
            });
            sum.add_part(&info.summary);
        }
        plan.commit(repo, index, refs, &mut sum, Some(upload.snapshot_id.clone())).await?;
        sum.add_stats(&repo.stats(), &stats0);
        sum.seconds = started.elapsed().as_secs_f64();
        Ok(sum)
    })
    .await?;
    runs::remove_run(repo, run).await?;
    Ok(sum)
}

/// The ranges are contiguous and cover every node id, so the concatenated metadata lists miss none.
fn check_cover(parts: &[PartRange]) -> anyhow::Result<()> {
    let mut next = 0u64;
    for r in parts {
        if r.first != next || r.last < r.first {
            bail!("part {} covers {}..={}, expected a range from {next}; nothing was committed", r.id, r.first, r.last);
        }
        next = r.last.saturating_add(1);
    }
    if next != LAST_NODE_ID + 1 {
        bail!("the parts end before node id {LAST_NODE_ID}; nothing was committed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::plan::RangeCutter;

    fn cut(reads: &[(u64, u64)], budget: BatchBudget) -> Vec<(String, u64, u64, u64, u64)> {
        let mut c = RangeCutter::new(budget);
        for &(id, bytes) in reads {
            c.push(id, bytes);
        }
        c.finish().into_iter().map(|r| (r.id, r.first, r.last, r.nodes, r.bytes)).collect()
    }

    #[test]
    fn ranges_cover_every_id_within_the_budget_and_a_large_file_stands_alone() {
        let reads = [(2, 0), (3, 40), (5, 50), (9, 500), (10, 1), (11, 1), (12, 1)];
        let got = cut(&reads, BatchBudget { bytes: 100, nodes: 3 });
        let want = vec![
            ("p0".to_string(), 0, 8, 3, 90),
            ("p1".to_string(), 9, 9, 1, 500),
            ("p2".to_string(), 10, LAST_NODE_ID, 3, 3),
        ];
        assert_eq!(got, want);
        check_cover(&cut(&reads, BatchBudget { bytes: 100, nodes: 3 }).iter().map(range_of).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(cut(&reads, BatchBudget::default()).len(), 1);
        assert_eq!(cut(&[], BatchBudget::default()), vec![("p0".to_string(), 0, LAST_NODE_ID, 0, 0)]);
    }

    #[test]
    fn a_cut_between_buckets_falls_on_the_bucket_boundary() {
        let b = crate::backup::BUCKET;
        let got = cut(&[(b - 5, 1), (b + 7, 1)], BatchBudget { bytes: 100, nodes: 1 });
        assert_eq!(got[0].2, b - 1, "the first part ends with its bucket");
        assert_eq!(got[1].1, b, "the second starts at the next bucket, not at node {}", b + 7);
    }

    #[test]
    fn parts_that_leave_a_gap_are_refused() {
        let mut r = vec![range_of(&("p0".into(), 0, 9, 1, 1)), range_of(&("p1".into(), 11, LAST_NODE_ID, 1, 1))];
        assert!(check_cover(&r).unwrap_err().to_string().contains("expected a range from 10"));
        r[1].first = 10;
        check_cover(&r).unwrap();
        r.pop();
        assert!(check_cover(&r).is_err());
    }

    fn range_of(r: &(String, u64, u64, u64, u64)) -> PartRange {
        PartRange { id: r.0.clone(), first: r.1, last: r.2, nodes: r.3, bytes: r.4 }
    }
}
