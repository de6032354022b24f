//! A share's scan split across jobs by a **listing budget**, merged into one atomic index snapshot.
//!
//! A *run* (one scan of one share, named after its root job: `crate::jobs::data::run_name`) goes like this:
//! 1. [`start_run`]: the root job takes the share snapshot once per run, tagged with the run
//!    ([`RUN_TAG`]), and records it in `{tenant}/{share}/index/runs/{run}/run.json` (create-if-absent: a
//!    re-run of the root job, or a concurrent zombie, finds it and uses the same share snapshot; a re-run
//!    after a crash between the two steps adopts the tagged snapshot; surplus tagged ones are deleted).
//! 2. [`list_part`]: a job lists directories of that share snapshot, starting from the ones it was given,
//!    until it has sent `budget.pages` `List Directories and Files` calls (or holds `budget.max_rows` rows). Whatever it has not listed yet
//!    (directories, and directories it listed only in part, with their `NextMarker`) is its *frontier*.
//!    The listing is deterministic: pages are processed in the order they were requested and requests are
//!    issued from a stack that only those results change, so a part lists the same pages and leaves the same
//!    frontier however often it runs and whatever the timing.
//! 3. [`write_part`]: the job writes what it listed as a Parquet *fragment* (`parts/{part}.parquet`: node
//!    rows keyed by **Azure FileId**, not node id: [`listed_schema`], whose first columns are `file_id`
//!    and `parent_file_id`, the parent's FileId or 0 for the root) and then `parts/{part}.json` naming its children. The frontier is split
//!    ([`split`]) into at most `max_children` children `{part}.0`, `{part}.1`, ..., each listing in turn.
//! 4. [`commit_run`]: once every part has succeeded, one commit job checks that the parts form the
//!    complete tree from `r`, maps FileIds to node ids through the share's idmap, and writes one index
//!    snapshot. FileIds not yet in the idmap get the next dense ids **in ascending FileId order**, so the
//!    snapshot is the same whether 1 or 40 workers listed the parts, and whatever the budget. A re-run
//!    of the commit finds the snapshot it committed ([`find_committed`]: same share snapshot) and stops.
//!
//! Node ids therefore stay dense per share and stable across runs (the idmap is the same one `afb scan`
//! uses). Fragments are deleted after the commit ([`remove_parts`]); `run.json` (a few hundred bytes)
//! stays, so a late re-run of any job of the run still resolves to the same share snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use futures::stream::FuturesOrdered;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::resolve::{ListedBatchBuilder, ListedRow, Resolver, listed_schema};
use super::{entry_file_id, entry_row};
use crate::azure::{FileServiceClient, ShareClient};
use crate::ids::FileId;
use crate::index::NodeIndex;
use crate::index::manifest::{IndexManifest, SnapshotSource, share_prefix};
use crate::index::parquet_io::{FileWriter, ParquetTuning, open_stream};
use crate::index::snapshot::WriteOptions;
use crate::index::sort::SpillOptions;

/// The root part's id.
pub const ROOT_PART: &str = "r";

/// What a run recorded when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run: String,
    pub azure_share: String,
    pub share_snapshot: String,
    /// The file service endpoint (no secrets).
    pub endpoint: String,
    /// The latest index snapshot id when the run started (0: none); the run's commit has a larger id.
    pub base_snapshot: i64,
}

/// How much one job lists.
#[derive(Debug, Clone)]
pub struct ListBudget {
    /// `List Directories and Files` calls one job sends before it hands the rest to children.
    pub pages: u64,
    /// Calls in flight at once within a job.
    pub concurrency: usize,
    /// Entries per page (`maxresults`); the service default when `None`.
    pub page_size: Option<u32>,
    /// Most children one job fans out into.
    pub max_children: usize,
    /// A job sends no further listing call once it holds this many rows (bounds its memory when
    /// directories are huge: 2000 pages of 5000 entries would be 10M rows).
    pub max_rows: usize,
}

impl Default for ListBudget {
    fn default() -> Self {
        ListBudget { pages: 2000, concurrency: 16, page_size: None, max_children: 16, max_rows: 1_000_000 }
    }
}

/// A directory still to list (or to go on listing) in a fanned-out scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDir {
    /// Path below the share root, `/`-separated, no leading slash ("" is the root).
    pub path: String,
    /// The directory's Azure FileId ([`FileId::ROOT`] for the share root); a decimal number in JSON.
    pub file_id: FileId,
    /// Where to go on listing it (`NextMarker` of the page listed last), if it was listed in part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

/// Counters of a listing (also what progress reports).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ListStats {
    pub pages: u64,
    pub directories: u64,
    pub files: u64,
    pub bytes: u64,
    /// Entries dropped because their name is one Azure forbids ([`crate::azure::check_entry_name`]).
    pub rejected_names: u64,
}

/// What one part listed.
pub struct PartListing {
    /// Rows keyed by FileId (see the module documentation), in listing order.
    pub rows: Vec<ListedRow>,
    /// Directories not listed (or not to the end) within the budget, in the order they would be listed.
    pub frontier: Vec<PendingDir>,
    pub stats: ListStats,
}

/// `{tenant}/{share}/index/runs/{run}`.
pub fn run_prefix(tenant: &str, share: &str, run: &str) -> String {
    format!("{}/runs/{run}", share_prefix(tenant, share))
}

async fn get_opt(store: &Arc<dyn ObjectStore>, key: &str) -> anyhow::Result<Option<bytes::Bytes>> {
    match store.get(&Path::from(key)).await {
        Ok(r) => Ok(Some(r.bytes().await.with_context(|| format!("reading {key}"))?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {key}")),
    }
}

/// Metadata name under which a run tags the share snapshots it takes (value: [`run_tag`]), so a root job
/// killed between taking the snapshot and recording it finds it again.
pub const RUN_TAG: &str = "afbrun";

/// The [`RUN_TAG`] value of a run: `{tenant}/{share}/{run}`.
pub fn run_tag(tenant: &str, share: &str, run: &str) -> String {
    format!("{tenant}/{share}/{run}")
}

/// Takes a snapshot of `azure_share` tagged with `tag` ([`RUN_TAG`]); returns its timestamp.
pub async fn take_tagged_snapshot(client: &FileServiceClient, azure_share: &str, tag: &str) -> anyhow::Result<String> {
    let metadata = std::collections::BTreeMap::from([(RUN_TAG.to_string(), tag.to_string())]);
    client
        .share(azure_share)
        .create_snapshot_with(&metadata)
        .await
        .with_context(|| format!("taking a snapshot of share {azure_share}"))
}

/// Timestamps of the snapshots of `azure_share` tagged with `tag`, oldest first.
pub async fn tagged_snapshots(client: &FileServiceClient, azure_share: &str, tag: &str) -> anyhow::Result<Vec<String>> {
    let snaps = client
        .list_share_snapshots(azure_share)
        .await
        .with_context(|| format!("listing the snapshots of share {azure_share}"))?;
    Ok(snaps
        .into_iter()
        .filter(|s| s.metadata.get(RUN_TAG).is_some_and(|v| v == tag))
        .filter_map(|s| s.snapshot)
        .collect())
}

/// The run's info, taking the share snapshot if this is the run's first start. Safe to call again and
/// concurrently, and after a crash at any point:
/// - the snapshot is tagged with the run ([`RUN_TAG`]) when it is taken, and recorded in `run.json`
///   (create-if-absent) after;
/// - a start that finds no record but a tagged snapshot of the run (a start killed between the two
///   steps) adopts the oldest one instead of taking another;
/// - once the record exists, every other snapshot tagged with the run (a concurrent loser's, or a
///   surplus one) is deleted, so a run keeps exactly the snapshot it recorded.
pub async fn start_run(
    repo: &NodeIndex,
    client: &FileServiceClient,
    tenant: &str,
    share: &str,
    azure_share: &str,
    run: &str,
) -> anyhow::Result<RunInfo> {
    crate::index::manifest::check_id("tenant", tenant)?;
    crate::index::manifest::check_id("share", share)?;
    let key = format!("{}/run.json", run_prefix(tenant, share, run));
    let tag = run_tag(tenant, share, run);
    if let Some(b) = get_opt(repo.store(), &key).await? {
        let info: RunInfo = serde_json::from_slice(&b).with_context(|| format!("{key}: not a run record"))?;
        remove_strays(client, &info, &tag).await?;
        return Ok(info);
    }
    let base_snapshot = repo.latest(tenant, share).await?.map_or(0, |m| m.snapshot_id);
    let live = client.share(azure_share);
    let ts = match tagged_snapshots(client, azure_share, &tag).await?.into_iter().next() {
        Some(ts) => ts,
        None => take_tagged_snapshot(client, azure_share, &tag).await?,
    };
    let endpoint =
        live.account_config().endpoint.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/').to_string();
    let info = RunInfo {
        run: run.to_string(),
        azure_share: azure_share.to_string(),
        share_snapshot: ts.clone(),
        endpoint,
        base_snapshot,
    };
    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
    let info = match repo
        .store()
        .put_opts(&Path::from(key.as_str()), PutPayload::from(serde_json::to_vec_pretty(&info)?), opts)
        .await
    {
        Ok(_) => info,
        Err(object_store::Error::AlreadyExists { .. }) => {
            let b = get_opt(repo.store(), &key).await?.with_context(|| format!("{key} vanished"))?;
            serde_json::from_slice(&b).with_context(|| format!("{key}: not a run record"))?
        }
        Err(e) => return Err(e).with_context(|| format!("writing {key}")),
    };
    remove_strays(client, &info, &tag).await?;
    Ok(info)
}

/// Deletes the snapshots tagged with the run's `tag` other than the one the run recorded. A snapshot
/// that is gone already is fine; any other failure is only logged (the next start or commit retries).
pub async fn remove_strays(client: &FileServiceClient, info: &RunInfo, tag: &str) -> anyhow::Result<usize> {
    let mut removed = 0;
    for ts in tagged_snapshots(client, &info.azure_share, tag).await? {
        if ts == info.share_snapshot {
            continue;
        }
        match client.share(&info.azure_share).at_snapshot(&ts).delete().await {
            Ok(()) => removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(
                "could not delete the share snapshot {ts} of {} that run {} does not use: {e}",
                info.azure_share,
                info.run
            ),
        }
    }
    Ok(removed)
}

/// The record of a run that has started.
pub async fn load_run(repo: &NodeIndex, tenant: &str, share: &str, run: &str) -> anyhow::Result<RunInfo> {
    let key = format!("{}/run.json", run_prefix(tenant, share, run));
    let b = get_opt(repo.store(), &key)
        .await?
        .with_context(|| format!("run {run} of {tenant}/{share} has no record ({key})"))?;
    serde_json::from_slice(&b).with_context(|| format!("{key}: not a run record"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// Lists `dirs` of the share snapshot `snap` within `budget` (see the module documentation). `progress` is
/// called after every page. Stops with an error when `cancel` fires.
pub async fn list_part(
    snap: &ShareClient,
    dirs: Vec<PendingDir>,
    budget: &ListBudget,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&ListStats),
) -> anyhow::Result<PartListing> {
    let mut stack: Vec<PendingDir> = dirs.into_iter().rev().collect();
    let mut in_flight = FuturesOrdered::new();
    let mut sent = 0u64;
    let mut rows = Vec::new();
    let mut st = ListStats::default();
    // Attribute names this version does not know: ignored, each reported once per part.
    let mut unknown_attributes = BTreeSet::new();
    let page_size = budget.page_size;
    loop {
        while in_flight.len() < budget.concurrency.max(1)
            && sent < budget.pages.max(1)
            && (sent == 0 || rows.len() < budget.max_rows)
        {
            let Some(w) = stack.pop() else { break };
            sent += 1;
            let dir = snap.directory(&w.path);
            in_flight.push_back(async move {
                let r = dir.list_page(w.marker.as_deref(), page_size).await;
                (w, r)
            });
        }
        let next = tokio::select! {
            n = in_flight.next() => n,
            _ = cancel.cancelled() => bail!("stopped"),
        };
        let Some((w, result)) = next else { break };
        let page = result.map_err(anyhow::Error::new).with_context(|| {
            format!(
                "listing directory /{} of share {} (snapshot {})",
                w.path,
                snap.name(),
                snap.snapshot().unwrap_or("-")
            )
        })?;
        st.pages += 1;
        for r in &page.rejected {
            tracing::warn!("entry {r} in /{} rejected: not listed", w.path);
            st.rejected_names += 1;
        }
        for e in &page.entries {
            let fid = entry_file_id(e, &w.path)?;
            let (row, unknown) = entry_row(e, fid, w.file_id);
            for u in unknown {
                if unknown_attributes.insert(u.clone()) {
                    tracing::warn!("unknown file attribute {u:?} ignored");
                }
            }
            rows.push(row);
            let is_dir = e.is_dir();
            if is_dir {
                st.directories += 1;
                stack.push(PendingDir { path: join(&w.path, &e.name), file_id: fid, marker: None });
            } else {
                st.files += 1;
                st.bytes += e.size;
            }
        }
        if let Some(m) = page.next_marker {
            stack.push(PendingDir { marker: Some(m), ..w });
        }
        progress(&st);
    }
    stack.reverse();
    Ok(PartListing { rows, frontier: stack, stats: st })
}

/// Splits a frontier into at most `max_children` contiguous, nearly equal groups.
pub fn split(frontier: Vec<PendingDir>, max_children: usize) -> Vec<Vec<PendingDir>> {
    let n = frontier.len();
    if n == 0 {
        return Vec::new();
    }
    let k = max_children.clamp(1, n);
    let mut out = Vec::with_capacity(k);
    let mut it = frontier.into_iter();
    for i in 0..k {
        let take = n / k + usize::from(i < n % k);
        out.push(it.by_ref().take(take).collect());
    }
    out
}

/// The ids of a part's children.
pub fn child_ids(part: &str, children: usize) -> Vec<String> {
    (0..children).map(|i| format!("{part}.{i}")).collect()
}

/// What `parts/{part}.json` records; written after the fragment, so its presence means the part is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub id: String,
    pub rows: u64,
    pub fragment_bytes: u64,
    pub stats_pages: u64,
    pub children: Vec<String>,
}

/// Writes a part's fragment, then its record. Idempotent: a re-run writes the same rows under the same keys.
#[allow(clippy::too_many_arguments)]
pub async fn write_part(
    repo: &NodeIndex,
    tenant: &str,
    share: &str,
    run: &str,
    part: &str,
    rows: &[ListedRow],
    stats: &ListStats,
    children: Vec<String>,
) -> anyhow::Result<PartMeta> {
    let prefix = format!("{}/parts", run_prefix(tenant, share, run));
    let mut w = FileWriter::create(
        repo.store(),
        &format!("{prefix}/{part}.parquet"),
        listed_schema(),
        ParquetTuning::default(),
    )?;
    let mut batches = ListedBatchBuilder::new(8192);
    for r in rows {
        if let Some(b) = batches.push(r) {
            w.write(&b).await?;
        }
    }
    if let Some(b) = batches.finish() {
        w.write(&b).await?;
    }
    let (_, n, bytes) = w.close().await?;
    let meta = PartMeta { id: part.to_string(), rows: n, fragment_bytes: bytes, stats_pages: stats.pages, children };
    let key = format!("{prefix}/{part}.json");
    repo.store()
        .put(&Path::from(key.as_str()), PutPayload::from(serde_json::to_vec(&meta)?))
        .await
        .with_context(|| format!("writing {key}"))?;
    Ok(meta)
}

/// The index snapshot this run committed, if it did: a snapshot newer than the run's base whose source is
/// the run's share snapshot.
pub async fn find_committed(
    repo: &NodeIndex,
    tenant: &str,
    share: &str,
    info: &RunInfo,
) -> anyhow::Result<Option<IndexManifest>> {
    for id in repo.snapshot_ids(tenant, share).await?.into_iter().rev() {
        if id <= info.base_snapshot {
            break;
        }
        let m = repo.manifest(tenant, share, id).await?;
        if m.source.as_ref().is_some_and(|s| s.share_snapshot == info.share_snapshot && s.share == info.azure_share) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// What a commit did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommitStats {
    pub parts: usize,
    pub rows: u64,
    pub new_node_ids: u64,
    /// True when the run had been committed already (a re-run of the commit job).
    pub already_committed: bool,
    pub duplicate_file_ids: u64,
}

/// Merges the run's fragments into one index snapshot (see the module documentation).
pub async fn commit_run(
    repo: &NodeIndex,
    tenant: &str,
    share: &str,
    info: &RunInfo,
    spill: SpillOptions,
    write: WriteOptions,
) -> anyhow::Result<(IndexManifest, CommitStats)> {
    if let Some(m) = find_committed(repo, tenant, share, info).await? {
        return Ok((m, CommitStats { already_committed: true, ..Default::default() }));
    }
    let prefix = format!("{}/parts", run_prefix(tenant, share, &info.run));
    // The parts: the tree from the root, every member present.
    let mut metas: BTreeMap<String, PartMeta> = BTreeMap::new();
    let listed: Vec<_> = repo
        .store()
        .list(Some(&Path::from(prefix.as_str())))
        .try_collect()
        .await
        .with_context(|| format!("listing {prefix}"))?;
    for o in listed {
        let key = o.location.to_string();
        if let Some(id) = key.strip_prefix(&format!("{prefix}/")).and_then(|f| f.strip_suffix(".json")) {
            let b = get_opt(repo.store(), &key).await?.with_context(|| format!("{key} vanished"))?;
            metas.insert(
                id.to_string(),
                serde_json::from_slice(&b).with_context(|| format!("{key}: not a part record"))?,
            );
        }
    }
    let mut parts = Vec::new();
    let mut todo = vec![ROOT_PART.to_string()];
    while let Some(id) = todo.pop() {
        let Some(m) = metas.get(&id) else {
            bail!(
                "run {} of {tenant}/{share} is incomplete: part {id} has not written its fragment; nothing was committed",
                info.run
            );
        };
        todo.extend(m.children.iter().cloned());
        parts.push(id);
    }
    parts.sort();
    let frag = |p: &str| format!("{prefix}/{p}.parquet");

    let prev = repo.latest(tenant, share).await?;
    let expected = prev.as_ref().map_or(1, |m| m.snapshot_id + 1);
    // FileIds → node ids (new FileIds get the next ids in ascending FileId order), by node id.
    let mut resolver = Resolver::new(spill);
    for p in &parts {
        let mut s = open_stream(repo.store(), &frag(p), Some(metas[p].fragment_bytes), &listed_schema(), 65536).await?;
        while let Some(b) = s.next().await {
            resolver.push(b?).await?;
        }
    }
    let rows = resolver.rows();
    let resolved = resolver.finish(repo, prev.as_ref()).await?;
    let new_node_ids = resolved.new_ids.len();
    let mut writer = repo.begin(tenant, share, write).await?;
    if writer.snapshot_id() != expected {
        bail!(
            "another writer committed snapshot {} of {tenant}/{share} during this commit; nothing was committed",
            writer.snapshot_id() - 1
        );
    }
    writer.set_source(SnapshotSource {
        kind: "azure-files".into(),
        endpoint: info.endpoint.clone(),
        share: info.azure_share.clone(),
        share_snapshot: info.share_snapshot.clone(),
    });
    let mut merge = resolved.rows;
    while let Some(b) = merge.next().await {
        writer.write(&b).await?;
    }
    merge.finish().await?;
    let m = writer.commit(Some(resolved.new_ids)).await?;
    Ok((
        m,
        CommitStats {
            parts: parts.len(),
            rows,
            new_node_ids,
            already_committed: false,
            duplicate_file_ids: resolved.duplicate_file_ids,
        },
    ))
}

/// Deletes a run's fragments and part records (after its commit). `run.json` stays.
pub async fn remove_parts(repo: &NodeIndex, tenant: &str, share: &str, run: &str) -> anyhow::Result<()> {
    let prefix = Path::from(format!("{}/parts", run_prefix(tenant, share, run)));
    let objects: Vec<_> = repo.store().list(Some(&prefix)).try_collect().await?;
    for o in objects {
        match repo.store().delete(&o.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting {}", o.location)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u64) -> PendingDir {
        PendingDir { path: format!("d{i}"), file_id: FileId(i), marker: None }
    }

    #[test]
    fn split_keeps_order_and_balances() {
        let groups = split((0..10).map(d).collect(), 4);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 2, 2]);
        let flat: Vec<FileId> = groups.into_iter().flatten().map(|p| p.file_id).collect();
        assert_eq!(flat, (0..10).map(FileId).collect::<Vec<_>>());
        assert_eq!(split((0..2).map(d).collect(), 16).len(), 2);
        assert!(split(Vec::new(), 4).is_empty());
        assert_eq!(child_ids("r.1", 2), vec!["r.1.0", "r.1.1"]);
    }
}
