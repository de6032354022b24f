//! What the API and the dashboard read from the index: shares, snapshots, directory listings, search,
//! diffs and trends. Everything comes from manifests, the directory summary written at commit
//! ([`crate::index::summary`]: the [`DirMap`] plus where each directory's entries are, so a listing reads
//! only a few pages) and streaming reads of a snapshot's Parquet layers (search, diff); nothing is kept per
//! file outside the repository.
//!
//! Caches (per server, bounded by entry count): directory summaries per snapshot, sorted directory listings per
//! (snapshot, directory), diff summaries per snapshot pair. Snapshots are immutable, so entries never go
//! stale; when a cache is full it is emptied.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::{Int8Type, Int64Type};
use futures::StreamExt;
use serde::Serialize;

use super::error::ApiError;
use crate::index::NodeIndex;
use crate::index::diff::{ChangeKind, DiffSummary, diff_snapshots};
use crate::index::dirmap::{DirMap, SubtreeTotals, glob_match};
use crate::index::manifest::{IndexManifest, LayerKind};
use crate::index::node::{NodeId, NodeKind, col};
use crate::index::summary::{Origin, Summary};

type SnapKey = (String, String, i64);

/// Each entry's value and the tick of its last use, and the tick now.
type Ticked<K, V> = (HashMap<K, (V, u64)>, u64);

/// A map of at most `cap` entries; when full, the entry used least recently makes room.
struct Bounded<K, V> {
    cap: usize,
    map: Mutex<Ticked<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Bounded { cap: cap.max(1), map: Mutex::new((HashMap::new(), 0)) }
    }
    fn get(&self, k: &K) -> Option<V> {
        let mut g = self.map.lock().expect("cache lock");
        let (map, tick) = &mut *g;
        *tick += 1;
        map.get_mut(k).map(|(v, used)| {
            *used = *tick;
            v.clone()
        })
    }
    fn put(&self, k: K, v: V) {
        let mut g = self.map.lock().expect("cache lock");
        let (map, tick) = &mut *g;
        *tick += 1;
        if map.len() >= self.cap
            && !map.contains_key(&k)
            && let Some(oldest) = map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(k, (v, *tick));
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn the_least_recently_used_entry_makes_room() {
        let c = Bounded::new(2);
        c.put("a", 1);
        c.put("b", 2);
        assert_eq!(c.get(&"a"), Some(1)); // "b" is now the least recently used
        c.put("c", 3);
        assert_eq!((c.get(&"a"), c.get(&"b"), c.get(&"c")), (Some(1), None, Some(3)));
        c.put("c", 4); // replacing evicts nothing
        assert_eq!((c.get(&"a"), c.get(&"c")), (Some(1), Some(4)));
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub node_id: NodeId,
    pub name: String,
    /// `file` or `dir`.
    pub kind: &'static str,
    /// Bytes of a file; for a directory, the bytes of its whole subtree.
    pub size: u64,
    /// Last-write time, RFC 3339 UTC.
    pub mtime: String,
    /// Directories only: totals of the subtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtree: Option<SubtreeTotals>,
}

/// A page of a directory listing.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub path: String,
    pub node_id: NodeId,
    pub totals: SubtreeTotals,
    /// Entries in this directory (not below it).
    pub entry_count: usize,
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One point of a share's trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub snapshot_id: i64,
    pub created_at: String,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Against the previous snapshot (absent for the first).
    pub added: Option<u64>,
    pub modified: Option<u64>,
    pub deleted: Option<u64>,
}

/// One changed node with its path.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub node_id: NodeId,
    pub change: &'static str,
    pub kind: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub modified: bool,
    pub renamed: bool,
    pub moved: bool,
    pub size: Option<i64>,
    pub old_size: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffResult {
    pub from: i64,
    pub to: i64,
    pub summary: DiffSummary,
    pub changes: Vec<ChangeRow>,
    /// More changes exist than were listed.
    pub truncated: bool,
}

/// A directory that grew between two snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    pub path: String,
    pub bytes: u64,
    pub grew_bytes: i64,
    pub grew_files: i64,
}

/// One directory's part of the change between two snapshots: the files added, deleted and modified
/// directly in it (not below it), with their bytes. Added and modified bytes are the files' new sizes
/// (what a backup reads again), deleted bytes their old sizes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirChange {
    pub path: String,
    /// The snapshot `path` is in: the new one, or the old one for a directory that is gone.
    pub snapshot_id: i64,
    pub added_files: u64,
    pub added_bytes: u64,
    pub deleted_files: u64,
    pub deleted_bytes: u64,
    pub modified_files: u64,
    pub modified_bytes: u64,
}

/// The directories with most added, deleted and modified bytes between two snapshots, each list sorted
/// by its bytes (descending) and at most `n` long.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeMap {
    pub from: i64,
    pub to: i64,
    pub summary: DiffSummary,
    pub added: Vec<DirChange>,
    pub deleted: Vec<DirChange>,
    pub modified: Vec<DirChange>,
    /// Directories with any change (all of them, not only the listed ones).
    pub directories: usize,
}

/// Per directory (node id, and whether it is the old snapshot's): counts and bytes of changed files.
#[derive(Debug, Clone, Copy, Default)]
struct DirTally {
    added: (u64, u64),
    deleted: (u64, u64),
    modified: (u64, u64),
}

/// Directory summaries kept in memory (each about 4 bytes per node: 40 MB at 10M nodes).
const SUMMARY_CACHE: usize = 16;

/// Index reads with caches.
pub struct Index {
    pub repo: NodeIndex,
    summaries: Bounded<SnapKey, Arc<Summary>>,
    listings: Bounded<(SnapKey, NodeId), Arc<Vec<Entry>>>,
    /// Just the subdirectories of a directory, sorted (the first pages of a listing).
    subdir_listings: Bounded<(SnapKey, NodeId), Arc<Vec<Entry>>>,
    diffs: Bounded<(String, String, i64, i64), DiffSummary>,
    growth: Bounded<(String, String, i64, i64), Arc<Vec<Growth>>>,
    change_maps: Bounded<(String, String, i64, i64, usize), Arc<ChangeMap>>,
}

/// Listing rows as API entries (directories with their subtree totals), directories first, then by name.
fn sorted_entries(sm: &Summary, rows: Vec<crate::index::summary::DirEntryRow>) -> Vec<Entry> {
    let mut out: Vec<Entry> = rows
        .into_iter()
        .map(|r| {
            let is_dir = r.kind == NodeKind::Dir;
            let subtree = if is_dir { sm.dirs.du(r.node_id) } else { None };
            Entry {
                node_id: r.node_id,
                name: r.name,
                kind: if is_dir { "dir" } else { "file" },
                size: subtree.map_or(r.size.max(0) as u64, |t| t.bytes),
                mtime: rfc3339_ns(r.mtime),
                subtree,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    out
}

fn rfc3339_ns(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Map the index's "does not exist" errors to 404 and everything else to 500.
fn index_err(e: anyhow::Error) -> ApiError {
    let s = format!("{e:#}");
    if s.contains("does not exist") || s.contains("invalid") || s.contains("must") {
        ApiError::not_found(s)
    } else {
        ApiError::internal(e)
    }
}

impl Index {
    pub fn new(repo: NodeIndex) -> Self {
        Index {
            repo,
            summaries: Bounded::new(SUMMARY_CACHE),
            listings: Bounded::new(256),
            subdir_listings: Bounded::new(256),
            diffs: Bounded::new(4096),
            growth: Bounded::new(256),
            change_maps: Bounded::new(64),
        }
    }

    /// Load the summaries of the latest two snapshots of the largest shares, as many as the cache holds,
    /// so the first share page and listing after a start need no decode (a 10M-node summary is ~40 MB).
    /// Failures are only logged: a page that needs a summary loads it itself.
    pub async fn warm(&self) {
        let started = std::time::Instant::now();
        let result: anyhow::Result<usize> = async {
            let mut latest = Vec::new();
            for (t, s) in self.repo.shares().await? {
                if let Some(m) = self.repo.latest(&t, &s).await? {
                    latest.push(m);
                }
            }
            latest.sort_by_key(|m| std::cmp::Reverse(m.totals.nodes));
            let mut loaded = 0;
            for m in latest.into_iter().take(SUMMARY_CACHE / 2) {
                let previous = match m.snapshot_id > 1 {
                    true => self.repo.manifest(&m.tenant_id, &m.share_id, m.snapshot_id - 1).await.ok(),
                    false => None,
                };
                for m in std::iter::once(&m).chain(previous.as_ref()) {
                    self.summary(m).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
                    loaded += 1;
                }
            }
            Ok(loaded)
        }
        .await;
        match result {
            Ok(n) => tracing::info!("warmed {n} directory summaries in {} ms", started.elapsed().as_millis()),
            Err(e) => tracing::warn!("warming directory summaries: {e:#}"),
        }
    }

    /// Every (tenant, share) with at least one snapshot.
    pub async fn shares(&self) -> Result<Vec<(String, String)>, ApiError> {
        self.repo.shares().await.map_err(ApiError::internal)
    }

    /// The snapshots of a share; 404 if it has none (or does not exist).
    pub async fn manifests(&self, tenant: &str, share: &str) -> Result<Vec<IndexManifest>, ApiError> {
        let ms = self.repo.manifests(tenant, share).await.map_err(index_err)?;
        if ms.is_empty() {
            return Err(ApiError::not_found(format!("share {tenant}/{share} not found")));
        }
        Ok(ms)
    }

    /// The snapshots of a share, oldest first; empty if it has none (404 only for an invalid id).
    pub async fn manifests_or_none(&self, tenant: &str, share: &str) -> Result<Vec<IndexManifest>, ApiError> {
        self.repo.manifests(tenant, share).await.map_err(index_err)
    }

    pub async fn manifest(&self, tenant: &str, share: &str, id: i64) -> Result<IndexManifest, ApiError> {
        self.repo.manifest(tenant, share, id).await.map_err(index_err)
    }

    /// The directory summary of a snapshot: stored at commit (fast), else built once by a full read.
    pub async fn summary(&self, m: &IndexManifest) -> Result<Arc<Summary>, ApiError> {
        let k = (m.tenant_id.clone(), m.share_id.clone(), m.snapshot_id);
        if let Some(d) = self.summaries.get(&k) {
            return Ok(d);
        }
        let t = std::time::Instant::now();
        let (s, origin) = crate::index::summary::load_or_build(&self.repo, m).await.map_err(ApiError::internal)?;
        tracing::info!(
            "directory summary of {}/{} snapshot {}: {} ({} directories, {} ms)",
            m.tenant_id,
            m.share_id,
            m.snapshot_id,
            if origin == Origin::Stored { "loaded" } else { "built and stored" },
            s.dirs.len(),
            t.elapsed().as_millis()
        );
        let d = Arc::new(s);
        self.summaries.put(k, d.clone());
        Ok(d)
    }

    /// Entries of one directory, directories first, then by name. Reads only the pages of the snapshot
    /// that hold the directory's entries (see [`crate::index::summary`]).
    async fn entries(&self, m: &IndexManifest, sm: &Summary, dir: NodeId) -> Result<Arc<Vec<Entry>>, ApiError> {
        let k = ((m.tenant_id.clone(), m.share_id.clone(), m.snapshot_id), dir);
        if let Some(e) = self.listings.get(&k) {
            return Ok(e);
        }
        let rows = sm.list(&self.repo, m, dir).await.map_err(ApiError::internal)?;
        let out = Arc::new(sorted_entries(sm, rows));
        self.listings.put(k, out.clone());
        Ok(out)
    }

    /// A page of the directory at `path`. `cursor` is opaque (the offset of the next entry).
    pub async fn browse(
        &self,
        m: &IndexManifest,
        path: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Listing, ApiError> {
        let sm = self.summary(m).await?;
        let dm = &sm.dirs;
        let Some(dir) = dm.resolve(path) else {
            return Err(ApiError::not_found(format!(
                "no directory {path:?} in snapshot {} of {}/{}",
                m.snapshot_id, m.tenant_id, m.share_id
            )));
        };
        let start = match cursor {
            None | Some("") => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("cursor {c:?} is not one this server gave out")))?,
        };
        // Subdirectories come first and the summary has them; files are read only for a page that
        // reaches them. The summary also counts them, so the total is known without reading.
        let k = ((m.tenant_id.clone(), m.share_id.clone(), m.snapshot_id), dir);
        let subdirs = match self.subdir_listings.get(&k) {
            Some(e) => e,
            None => {
                let e = Arc::new(sorted_entries(&sm, sm.list_subdirs(dir)));
                self.subdir_listings.put(k, e.clone());
                e
            }
        };
        let count = subdirs.len() + dm.direct_files(dir).unwrap_or(0) as usize;
        let end = (start + limit).min(count);
        let entries = if end <= subdirs.len() {
            subdirs.get(start..end).map(|s| s.to_vec()).unwrap_or_default()
        } else {
            let all = self.entries(m, &sm, dir).await?;
            all.get(start..end.min(all.len())).map(|s| s.to_vec()).unwrap_or_default()
        };
        Ok(Listing {
            path: dm.path(dir).unwrap_or_else(|| "/".into()),
            node_id: dir,
            totals: dm.du(dir).unwrap_or_default(),
            entry_count: count,
            entries,
            next_cursor: (end < count).then(|| end.to_string()),
        })
    }

    /// Nodes whose path matches `glob` (a pattern without `/` matches names), at most `limit`.
    pub async fn search(
        &self,
        m: &IndexManifest,
        glob: &str,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, bool), ApiError> {
        let sm = self.summary(m).await?;
        let dm = &sm.dirs;
        let names_only = !glob.contains('/');
        let mut s =
            self.repo.read(m, Some(&[col::PARENT_ID, col::NAME, col::KIND, col::SIZE])).map_err(ApiError::internal)?;
        let mut out = Vec::new();
        let mut truncated = false;
        'outer: while let Some(b) = s.next().await {
            let b = b.map_err(ApiError::internal)?;
            let ids = b.column(0).as_primitive::<Int64Type>();
            let parents = b.column(1).as_primitive::<Int64Type>();
            let names = b.column(2).as_string::<i32>();
            let kinds = b.column(3).as_primitive::<Int8Type>();
            let sizes = b.column(4).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let name = names.value(i);
                if names_only && !glob_match(glob, name) {
                    continue;
                }
                let Some(path) = dm.path_of(NodeId(parents.value(i)), name) else { continue };
                if !names_only && !glob_match(glob, &path) {
                    continue;
                }
                if out.len() >= limit {
                    truncated = true;
                    break 'outer;
                }
                let is_dir = kinds.value(i) == NodeKind::Dir as i8;
                let size = if is_dir {
                    dm.du(NodeId(ids.value(i))).map_or(0, |t| t.bytes)
                } else {
                    sizes.value(i).max(0) as u64
                };
                out.push(serde_json::json!({"node_id": ids.value(i), "path": path, "kind": if is_dir {"dir"} else {"file"}, "size": size}));
            }
        }
        Ok((out, truncated))
    }

    /// Changes between two snapshots of a share, the first `limit` with paths.
    pub async fn diff(&self, old: &IndexManifest, new: &IndexManifest, limit: usize) -> Result<DiffResult, ApiError> {
        let (sm_old, sm_new) = (self.summary(old).await?, self.summary(new).await?);
        let (dm_old, dm_new) = (&sm_old.dirs, &sm_new.dirs);
        let mut changes = Vec::new();
        let mut truncated = false;
        let summary = diff_snapshots(&self.repo, old, new, |c| {
            if changes.len() >= limit {
                truncated = true;
                return Ok(());
            }
            let n = c.new.as_ref().or(c.old.as_ref()).expect("a change has a row");
            let path_in = |dm: &DirMap, x: &crate::index::node::Node| {
                dm.path_of(x.parent_id, &x.name).unwrap_or_else(|| format!("?/{}", x.name))
            };
            let path = match &c.new {
                Some(x) => path_in(dm_new, x),
                None => path_in(dm_old, c.old.as_ref().expect("deleted has old")),
            };
            let old_path = match (&c.old, c.kind) {
                (Some(o), ChangeKind::Changed) if c.renamed || c.moved => Some(path_in(dm_old, o)),
                _ => None,
            };
            changes.push(ChangeRow {
                node_id: n.node_id,
                change: c.kind.as_str(),
                kind: n.kind.as_str(),
                path,
                old_path,
                modified: c.modified,
                renamed: c.renamed,
                moved: c.moved,
                size: c.new.as_ref().map(|x| x.size),
                old_size: c.old.as_ref().map(|x| x.size),
            });
            Ok(())
        })
        .await
        .map_err(ApiError::internal)?;
        self.diffs.put((new.tenant_id.clone(), new.share_id.clone(), old.snapshot_id, new.snapshot_id), summary);
        Ok(DiffResult { from: old.snapshot_id, to: new.snapshot_id, summary, changes, truncated })
    }

    /// The directories where most bytes were added, deleted and modified from `old` to `new` (counting
    /// the files directly in each), `n` of each kind. One streaming diff ([`diff_snapshots`]: the change
    /// records when they exist, O(changes) rows) tallied per parent directory: memory grows with the
    /// directories that hold changes, never with the files. Paths are resolved for the listed ones only.
    pub async fn change_map(
        &self,
        old: &IndexManifest,
        new: &IndexManifest,
        n: usize,
    ) -> Result<Arc<ChangeMap>, ApiError> {
        let k = (new.tenant_id.clone(), new.share_id.clone(), old.snapshot_id, new.snapshot_id, n);
        if let Some(c) = self.change_maps.get(&k) {
            return Ok(c);
        }
        let (sm_old, sm_new) = (self.summary(old).await?, self.summary(new).await?);
        // Key: (directory node id, whether the id is the old snapshot's): a deleted file counts where it was.
        let mut per_dir: HashMap<(NodeId, bool), DirTally> = HashMap::new();
        let summary = diff_snapshots(&self.repo, old, new, |c| {
            let add = |t: &mut (u64, u64), size: i64| {
                t.0 += 1;
                t.1 += size.max(0) as u64;
            };
            match (c.kind, &c.old, &c.new) {
                (ChangeKind::Added, _, Some(x)) if x.kind != NodeKind::Dir => {
                    add(&mut per_dir.entry((x.parent_id, false)).or_default().added, x.size)
                }
                (ChangeKind::Deleted, Some(x), _) if x.kind != NodeKind::Dir => {
                    add(&mut per_dir.entry((x.parent_id, true)).or_default().deleted, x.size)
                }
                (ChangeKind::Changed, _, Some(x)) if c.modified && x.kind != NodeKind::Dir => {
                    add(&mut per_dir.entry((x.parent_id, false)).or_default().modified, x.size)
                }
                _ => {}
            }
            Ok(())
        })
        .await
        .map_err(ApiError::internal)?;
        let top = |pick: fn(&DirTally) -> (u64, u64)| -> Vec<DirChange> {
            let mut v: Vec<(&(NodeId, bool), &DirTally)> = per_dir.iter().filter(|(_, t)| pick(t).0 > 0).collect();
            v.sort_by(|a, b| pick(b.1).1.cmp(&pick(a.1).1).then(pick(b.1).0.cmp(&pick(a.1).0)).then(a.0.cmp(b.0)));
            v.truncate(n);
            v.into_iter()
                .map(|(&(id, in_old), t)| {
                    let (dm, snapshot_id) =
                        if in_old { (&sm_old.dirs, old.snapshot_id) } else { (&sm_new.dirs, new.snapshot_id) };
                    DirChange {
                        path: dm.path(id).unwrap_or_else(|| format!("?/directory {id}")),
                        snapshot_id,
                        added_files: t.added.0,
                        added_bytes: t.added.1,
                        deleted_files: t.deleted.0,
                        deleted_bytes: t.deleted.1,
                        modified_files: t.modified.0,
                        modified_bytes: t.modified.1,
                    }
                })
                .collect()
        };
        let c = Arc::new(ChangeMap {
            from: old.snapshot_id,
            to: new.snapshot_id,
            summary,
            added: top(|t| t.added),
            deleted: top(|t| t.deleted),
            modified: top(|t| t.modified),
            directories: per_dir.len(),
        });
        self.change_maps.put(k, c.clone());
        Ok(c)
    }

    /// Files, bytes and changes per snapshot. A delta snapshot's changes come from its manifest (new ids
    /// are added nodes; the delta's deleted rows; its changed rows minus the added ones are modified);
    /// after a base, a streaming diff (cached).
    pub async fn trends(&self, ms: &[IndexManifest]) -> Result<Vec<TrendPoint>, ApiError> {
        let mut out = Vec::with_capacity(ms.len());
        for (i, m) in ms.iter().enumerate() {
            let mut p = TrendPoint {
                snapshot_id: m.snapshot_id,
                created_at: m.created_at.clone(),
                files: m.totals.files,
                dirs: m.totals.dirs,
                bytes: m.totals.bytes,
                added: None,
                modified: None,
                deleted: None,
            };
            if i > 0 {
                let prev = &ms[i - 1];
                let last = m.layers.last().expect("manifest has layers");
                if last.kind == LayerKind::Delta && last.snapshot_id == m.snapshot_id {
                    let added = (m.next_node_id - prev.next_node_id).max(0) as u64;
                    p.added = Some(added);
                    p.deleted = Some(last.deleted.as_ref().map_or(0, |d| d.rows));
                    p.modified = Some(last.nodes.rows.saturating_sub(added));
                } else {
                    let k = (m.tenant_id.clone(), m.share_id.clone(), prev.snapshot_id, m.snapshot_id);
                    let s = match self.diffs.get(&k) {
                        Some(s) => s,
                        None => {
                            let s =
                                diff_snapshots(&self.repo, prev, m, |_| Ok(())).await.map_err(ApiError::internal)?;
                            self.diffs.put(k, s);
                            s
                        }
                    };
                    p.added = Some(s.added.count);
                    p.deleted = Some(s.deleted.count);
                    p.modified = Some(s.changed.count);
                }
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Directories of `new` whose subtree grew most in bytes since `old` (matched by node id, so renamed
    /// directories still match).
    pub async fn fastest_growing(
        &self,
        old: &IndexManifest,
        new: &IndexManifest,
        n: usize,
    ) -> Result<Vec<Growth>, ApiError> {
        let k = (new.tenant_id.clone(), new.share_id.clone(), old.snapshot_id, new.snapshot_id);
        if let Some(g) = self.growth.get(&k) {
            return Ok(g.iter().take(n).cloned().collect());
        }
        let g = Arc::new(self.compute_growth(old, new, n.max(25)).await?);
        self.growth.put(k, g.clone());
        Ok(g.iter().take(n).cloned().collect())
    }

    async fn compute_growth(
        &self,
        old: &IndexManifest,
        new: &IndexManifest,
        n: usize,
    ) -> Result<Vec<Growth>, ApiError> {
        let (sa, sb) = (self.summary(old).await?, self.summary(new).await?);
        let (a, b) = (&sa.dirs, &sb.dirs);
        let mut g: Vec<(NodeId, i64, i64)> = b
            .dir_ids()
            .skip(1)
            .filter_map(|id| {
                let nb = b.du(id)?;
                let na = a.du(id).unwrap_or_default();
                Some((id, nb.bytes as i64 - na.bytes as i64, nb.files as i64 - na.files as i64))
            })
            .filter(|x| x.1 > 0)
            .collect();
        g.sort_by_key(|x| std::cmp::Reverse(x.1));
        Ok(g.into_iter()
            .take(n)
            .map(|(id, db, df)| Growth {
                path: b.path(id).unwrap_or_default(),
                bytes: b.du(id).unwrap_or_default().bytes,
                grew_bytes: db,
                grew_files: df,
            })
            .collect())
    }
}
