//! The backup plan, streamed: which nodes a backup keeps from the previous backup and which it reads,
//! decided in node-id order from three sorted inputs, one metadata bucket at a time.
//!
//! Inputs (all ascending by node id): the current index snapshot, the index snapshot the previous backup
//! recorded, and the previous backup's node versions (its metadata objects, listed in node-id order).
//! For each node id:
//! - **keep** the previous version (with the current name, parent and attributes) when the previous
//!   backup has a version of it and its index row is not [modified](crate::index::node::Node::modified_since)
//!   (unchanged, renamed or moved);
//! - **read** it otherwise (added, modified, or skipped by the previous backup).
//!
//! A bucket ([`BUCKET`] node ids) is **clean** when its rows equal the previous snapshot's, every node
//! keeps its version and the previous backup stored the bucket as one object: that object is reused as
//! it is.
//!
//! Memory: one bucket of versions and steps (at most 4,096 of each), one index batch per snapshot, and
//! the directory map of the current snapshot (one entry per directory, for the paths of nodes to read).
//! Nothing is held per file of the share.
//!
//! [`Plan::survey`] walks the index snapshots alone (no repository reads) to count what a backup will
//! read and to cut it into part ranges; [`Plan::walk`] yields the buckets of one range with the previous
//! versions loaded, for [`super::store_range`].

use std::collections::{BTreeSet, VecDeque};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::{BUCKET, EXTRA_SKIPPED, ObjectRefs, Previous, ToRead, bucket_of, load_bucket};
use crate::index::NodeIndex;
use crate::index::dirmap::DirMap;
use crate::index::manifest::IndexManifest;
use crate::index::node::{Node, NodeId, NodeKind as IndexKind};
use crate::index::node_index::Cursor;
use crate::repository::generated::NodeVersion;
use crate::repository::{BackupManifest, Repository};

/// The last node id a range can name (node ids are `i64`): [`NodeId::MAX`] as the `u64` ranges hold.
pub const LAST_NODE_ID: u64 = NodeId::MAX.as_u64();

/// What one backup works from: the current index snapshot and the previous backup. Every job of a
/// split backup builds the same plan from the same inputs.
pub struct Plan {
    pub current: IndexManifest,
    /// The Azure share-snapshot timestamp the current index snapshot describes.
    pub share_snapshot: Option<String>,
    pub previous: Option<Previous>,
    /// Node ids the previous backup skipped (its manifest's `skipped_nodes`): they have no version there.
    prev_skipped: BTreeSet<NodeId>,
}

/// How much one part reads at most (a single larger file is a part of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchBudget {
    /// Content bytes (the index sizes of the files to read).
    pub bytes: u64,
    /// Nodes to read: files and directories (each costs at least one Get Properties call).
    pub nodes: u64,
}

impl BatchBudget {
    /// No limit: one range.
    pub const UNLIMITED: BatchBudget = BatchBudget { bytes: u64::MAX, nodes: u64::MAX };
}

impl Default for BatchBudget {
    fn default() -> Self {
        BatchBudget { bytes: 1 << 30, nodes: 20_000 }
    }
}

/// One part: the node ids `first..=last`. The ranges of one upload are contiguous and cover every node id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRange {
    /// `p0`, `p1`, ... in node-id order.
    pub id: String,
    pub first: u64,
    pub last: u64,
    /// Nodes to read in the range, and their content bytes (what the survey counted).
    pub nodes: u64,
    pub bytes: u64,
}

/// What a backup will do, counted by [`Plan::survey`] without reading the repository or the share.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Survey {
    /// Files and directories to read (added, modified, or without a previous version).
    pub nodes_to_read: u64,
    pub files_to_read: u64,
    /// Content bytes of the files to read (their index sizes).
    pub bytes_to_read: u64,
    /// Files and directories that keep their previous version.
    pub files_kept: u64,
    pub dirs_kept: u64,
    /// Contiguous node-id ranges covering every node id (`0..=LAST_NODE_ID`), each within the budget
    /// (see [`RangeCutter`]); at least one.
    pub ranges: Vec<PartRange>,
}

/// What to do with one node.
#[allow(clippy::large_enum_variant, reason = "at most one bucket of steps exists at a time")]
pub enum Step {
    /// Its previous version, renamed and moved to the current row.
    Keep(NodeVersion),
    Read(ToRead),
}

/// How a bucket ends: whether its previous object can stand for it.
#[derive(Clone, Debug)]
pub struct BucketEnd {
    pub bucket: u64,
    /// The previous backup's object holding exactly this bucket, when the bucket is clean and lies
    /// wholly inside the walked range.
    pub reusable: Option<String>,
    /// Set when `reusable` was decided from the previous manifest's `metadata_info` without reading the
    /// object (the bucket then has no steps).
    pub unread: Option<UnreadObject>,
}

/// A clean bucket's previous object, reused unread: what it holds, from the previous manifest.
#[derive(Clone, Debug)]
pub struct UnreadObject {
    /// Files and directories it keeps (the bucket's rows).
    pub files: u64,
    pub dirs: u64,
    pub info: ObjectRefs,
}

/// One bucket of a walk: its steps in node-id order.
pub struct BucketPlan {
    pub steps: Vec<Step>,
    pub end: BucketEnd,
}

impl Plan {
    pub fn new(current: IndexManifest, share_snapshot: Option<String>, previous: Option<Previous>) -> Plan {
        let prev_skipped = previous
            .as_ref()
            .and_then(|p| p.backup.extra.get(EXTRA_SKIPPED))
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Plan { current, share_snapshot, previous, prev_skipped }
    }

    /// The Azure share snapshot of the previous backup (List Ranges compares against it).
    pub fn prev_snapshot(&self) -> Option<&str> {
        self.previous.as_ref().and_then(|p| p.share_snapshot.as_deref())
    }

    fn rows(&self, index: &NodeIndex) -> anyhow::Result<RowPairs> {
        let cur = Cursor::new(index.read(&self.current, None)?, "the current index snapshot");
        let prev = match &self.previous {
            Some(p) => Some(Cursor::new(index.read(&p.index, None)?, "the previous backup's index snapshot")),
            None => None,
        };
        Ok(RowPairs { cur, prev })
    }

    /// Counts what the backup reads and keeps, and cuts the nodes to read into ranges within `budget`.
    /// Reads the two index snapshots only: a node is taken to have a previous version when the
    /// previous index snapshot has its row and the previous backup did not skip it.
    pub async fn survey(&self, index: &NodeIndex, budget: &BatchBudget) -> anyhow::Result<Survey> {
        let mut rows = self.rows(index)?;
        let mut s = Survey::default();
        let mut cutter = RangeCutter::new(*budget);
        while let Some((prev, cur)) = rows.next_below(None).await? {
            let Some(cur) = cur else { continue };
            let has_version = self.previous.is_some() && prev.is_some() && !self.prev_skipped.contains(&cur.node_id);
            if keeps_version(prev.as_ref(), &cur, has_version) {
                match cur.kind {
                    IndexKind::File => s.files_kept += 1,
                    IndexKind::Dir => s.dirs_kept += 1,
                }
                continue;
            }
            let bytes = if cur.kind == IndexKind::File { cur.size.max(0) as u64 } else { 0 };
            s.nodes_to_read += 1;
            s.files_to_read += (cur.kind == IndexKind::File) as u64;
            s.bytes_to_read += bytes;
            cutter.push(cur.node_id.as_u64(), bytes);
        }
        s.ranges = cutter.finish();
        Ok(s)
    }

    /// Walks the buckets of node ids `first..=last` (see the module docs). Loads the directory map of
    /// the current snapshot (paths of the nodes to read) and seeks the previous backup's metadata to
    /// `first` with a binary search over its objects.
    pub async fn walk(&self, repo: &Repository, index: &NodeIndex, first: u64, last: u64) -> anyhow::Result<PlanWalk> {
        let dirmap = crate::index::summary::load_dirmap(index, &self.current).await?;
        let versions = match &self.previous {
            Some(p) => Some(PrevVersions::seek(repo, Arc::new(p.backup.clone()), first).await?),
            None => None,
        };
        let mut rows = self.rows(index)?;
        rows.skip_below(NodeId::saturating_from_u64(first)).await?;
        Ok(PlanWalk { rows, versions, dirmap, first, last })
    }
}

/// Whether a node keeps its previous version: it has one and its row is not modified since the
/// previous index snapshot's (see the module docs).
fn keeps_version(prev_row: Option<&Node>, cur: &Node, has_version: bool) -> bool {
    has_version && prev_row.is_some_and(|p| !cur.modified_since(p))
}

/// The current and the previous index snapshot merged on node id.
struct RowPairs {
    cur: Cursor,
    prev: Option<Cursor>,
}

impl RowPairs {
    /// Moves both cursors past the ids below `bound` without decoding their rows.
    async fn skip_below(&mut self, bound: NodeId) -> anyhow::Result<()> {
        for c in std::iter::once(&mut self.cur).chain(self.prev.as_mut()) {
            while c.head().await?.is_some_and(|id| id < bound) {
                c.advance();
            }
        }
        Ok(())
    }

    /// The next node id present in either snapshot and below `bound` (any when `None`), with its
    /// previous and current rows.
    async fn next_below(&mut self, bound: Option<NodeId>) -> anyhow::Result<Option<(Option<Node>, Option<Node>)>> {
        let c = self.cur.head().await?;
        let p = match &mut self.prev {
            Some(prev) => prev.head().await?,
            None => None,
        };
        let id = match (c, p) {
            (None, None) => return Ok(None),
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        };
        if bound.is_some_and(|b| id >= b) {
            return Ok(None);
        }
        let cur = if c == Some(id) { self.cur.next_node_below(None).await? } else { None };
        let prev = match &mut self.prev {
            Some(prev) if p == Some(id) => prev.next_node_below(None).await?,
            _ => None,
        };
        Ok(Some((prev, cur)))
    }
}

/// The previous backup's node versions, read object by object in node-id order.
struct PrevVersions {
    /// The previous manifest: its metadata object ids in node-id order, and (when it has them) what
    /// each holds (`metadata_info`, checked when the manifest was loaded).
    manifest: Arc<BackupManifest>,
    /// Next object to load.
    next: usize,
    /// The loaded object not yet used up: its id, whether it was entered at its first version, and its
    /// remaining versions.
    loaded: Option<(String, bool, VecDeque<NodeVersion>)>,
    /// Objects read so far.
    loads: u64,
}

impl PrevVersions {
    /// Positioned at the first version with node id `>= first`: a binary search over the objects' first
    /// node ids (from `metadata_info`, else by loading O(log objects) objects) finds where to start.
    async fn seek(repo: &Repository, manifest: Arc<BackupManifest>, first: u64) -> anyhow::Result<PrevVersions> {
        let mut v = PrevVersions { manifest, next: 0, loaded: None, loads: 0 };
        if first > 0 {
            // The last object whose first node id is <= first.
            let (mut lo, mut hi) = (0usize, v.manifest.metadata.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let head = match v.manifest.metadata_info.get(mid) {
                    Some(info) => info.first,
                    None => {
                        v.loads += 1;
                        load_bucket(repo, &v.manifest.metadata[mid]).await?.first().map_or(0, |v| v.node_id)
                    }
                };
                if head <= first { lo = mid + 1 } else { hi = mid }
            }
            v.next = lo.saturating_sub(1);
        }
        // Drop the versions below `first` (none when the next object starts at or after it).
        if v.manifest.metadata_info.get(v.next).is_none_or(|info| info.first < first) {
            v.take_below(repo, first).await?;
        }
        Ok(v)
    }

    /// The next object as the reuse of the clean bucket `start..bound` (whose rows in both index
    /// snapshots are `pairs`), decided from the manifest's `metadata_info` without reading it: when no
    /// object is partly used, the next one lies inside the bucket, holds as many versions as the bucket
    /// has rows, and every row is the same in both snapshots. The previous backup wrote (or reused) that
    /// object for the rows of its index snapshot, so its versions are exactly those rows'.
    fn take_unread(&mut self, start: u64, bound: u64, pairs: &[(Option<Node>, Option<Node>)]) -> Option<UnreadObject> {
        if self.loaded.as_ref().is_some_and(|(_, _, v)| !v.is_empty()) {
            return None;
        }
        let info = self.manifest.metadata_info.get(self.next)?;
        if info.first < start || info.last >= bound || info.nodes != pairs.len() as u64 {
            return None;
        }
        let (mut files, mut dirs) = (0, 0);
        for pair in pairs {
            match pair {
                (Some(prev), Some(cur)) if prev == cur => match cur.kind {
                    IndexKind::File => files += 1,
                    IndexKind::Dir => dirs += 1,
                },
                _ => return None,
            }
        }
        let info = ObjectRefs::from_manifest(&self.manifest, info);
        self.loaded = None;
        self.next += 1;
        Some(UnreadObject { files, dirs, info })
    }

    /// Loads the next object when the current one is used up; `false` at the end.
    async fn fill(&mut self, repo: &Repository) -> anyhow::Result<bool> {
        while self.loaded.as_ref().is_none_or(|(_, _, v)| v.is_empty()) {
            let Some(id) = self.manifest.metadata.get(self.next).cloned() else {
                self.loaded = None;
                return Ok(false);
            };
            self.next += 1;
            self.loads += 1;
            let versions = load_bucket(repo, &id).await.with_context(|| format!("previous backup's metadata {id}"))?;
            self.loaded = Some((id, true, versions.into()));
        }
        Ok(true)
    }

    /// Removes and returns the versions with node id below `bound`, in order; with the one object that
    /// held all of them and nothing else, when there is such an object.
    async fn take_below(
        &mut self,
        repo: &Repository,
        bound: u64,
    ) -> anyhow::Result<(Vec<NodeVersion>, Option<String>)> {
        let mut out = Vec::new();
        let mut sources = 0;
        let mut whole: Option<String> = None;
        let mut last = None;
        while self.fill(repo).await? {
            let (id, entered_at_start, versions) = self.loaded.as_mut().expect("filled");
            if versions.front().is_none_or(|v| v.node_id >= bound) {
                break;
            }
            sources += 1;
            let from_start = *entered_at_start;
            *entered_at_start = false;
            while let Some(v) = versions.pop_front_if(|v| v.node_id < bound) {
                if last.is_some_and(|l| v.node_id <= l) {
                    anyhow::bail!("previous backup's metadata {id}: node ids not ascending at {}", v.node_id);
                }
                last = Some(v.node_id);
                out.push(v);
            }
            whole = (from_start && versions.is_empty()).then(|| id.clone());
        }
        Ok((out, if sources == 1 { whole } else { None }))
    }
}

/// The buckets of one range of a plan, in node-id order (see [`Plan::walk`]).
pub struct PlanWalk {
    rows: RowPairs,
    versions: Option<PrevVersions>,
    dirmap: DirMap,
    first: u64,
    last: u64,
}

impl PlanWalk {
    /// The previous backup's metadata objects this walk has read so far.
    pub fn objects_loaded(&self) -> u64 {
        self.versions.as_ref().map_or(0, |v| v.loads)
    }

    /// The next bucket with a node in the range; `None` after the last.
    pub async fn next_bucket(&mut self, repo: &Repository) -> anyhow::Result<Option<BucketPlan>> {
        let last = self.last.min(LAST_NODE_ID);
        // The first pair in the range (pairs of a bucket are taken below its bound only, so the next
        // bucket's first pair is still unread).
        let pair = loop {
            let Some(pair) = self.rows.next_below(None).await? else { return Ok(None) };
            let id = pair_id(&pair).as_u64();
            if id > last {
                return Ok(None);
            }
            if id >= self.first {
                break pair;
            }
        };
        let bucket = bucket_of(pair_id(&pair));
        let bucket_start = bucket * BUCKET;
        let bound = (bucket_start + BUCKET).min(last + 1);
        let whole_bucket = bucket_start >= self.first && bucket_start + BUCKET - 1 <= self.last;
        // The bucket's rows (at most BUCKET pairs).
        let mut pairs = vec![pair];
        while let Some(p) = self.rows.next_below(Some(NodeId::saturating_from_u64(bound))).await? {
            pairs.push(p);
        }
        if whole_bucket
            && let Some(v) = &mut self.versions
            && let Some(unread) = v.take_unread(bucket_start, bound, &pairs)
        {
            let reusable = Some(v.manifest.metadata[v.next - 1].clone());
            return Ok(Some(BucketPlan {
                steps: Vec::new(),
                end: BucketEnd { bucket, reusable, unread: Some(unread) },
            }));
        }
        let (versions, object) = match &mut self.versions {
            Some(v) => v.take_below(repo, bound).await?,
            None => (Vec::new(), None),
        };
        let mut versions = versions.into_iter().peekable();
        let mut clean = object.is_some() && whole_bucket;
        let mut steps = Vec::new();
        for pair in pairs {
            let id = pair_id(&pair).as_u64();
            let (prev, cur) = pair;
            // Versions of nodes neither snapshot has: the metadata disagrees with the index.
            while versions.next_if(|v| v.node_id < id).is_some() {
                clean = false;
            }
            let version = versions.next_if(|v| v.node_id == id);
            match cur {
                None => clean = false,
                Some(cur) => {
                    if prev.as_ref() != Some(&cur) {
                        clean = false;
                    }
                    if keeps_version(prev.as_ref(), &cur, version.is_some()) {
                        let mut v = version.expect("kept versions exist");
                        v.name = Some(cur.name.clone());
                        v.parent_id = cur.parent_id.as_u64();
                        v.attributes = cur.attributes as u32;
                        steps.push(Step::Keep(v));
                    } else {
                        clean = false;
                        let path = self.dirmap.path_of(cur.parent_id, &cur.name).unwrap_or_else(|| cur.name.clone());
                        let path = path.trim_start_matches('/').to_string();
                        steps.push(Step::Read(ToRead { node: cur, path, prev: version }));
                    }
                }
            }
        }
        if versions.next().is_some() {
            clean = false;
        }
        let reusable = if clean { object } else { None };
        Ok(Some(BucketPlan { steps, end: BucketEnd { bucket, reusable, unread: None } }))
    }
}

fn pair_id(pair: &(Option<Node>, Option<Node>)) -> NodeId {
    match pair {
        (_, Some(n)) | (Some(n), None) => n.node_id,
        (None, None) => unreachable!("a pair has a row"),
    }
}

/// Cuts the nodes to read (pushed in ascending node id) into contiguous ranges that together cover
/// `0..=LAST_NODE_ID`, each holding at most `budget.nodes` nodes and `budget.bytes` bytes to read (a
/// single larger file makes a range of its own). A cut falls on a bucket boundary when the nodes on
/// either side are in different buckets, so parts rarely share a metadata bucket.
pub struct RangeCutter {
    budget: BatchBudget,
    done: Vec<PartRange>,
    open: PartRange,
    /// The last node pushed into `open`.
    last_read: Option<u64>,
}

impl RangeCutter {
    pub fn new(budget: BatchBudget) -> Self {
        RangeCutter { budget, done: Vec::new(), open: range(0, 0), last_read: None }
    }

    pub fn push(&mut self, id: u64, bytes: u64) {
        if let Some(prev) = self.last_read
            && (self.open.nodes + 1 > self.budget.nodes.max(1) || self.open.bytes + bytes > self.budget.bytes)
        {
            let cut = if id / BUCKET > prev / BUCKET { id / BUCKET * BUCKET } else { id };
            let mut closed = std::mem::replace(&mut self.open, range(self.done.len() + 1, cut));
            closed.last = cut - 1;
            self.done.push(closed);
        }
        self.open.nodes += 1;
        self.open.bytes += bytes;
        self.last_read = Some(id);
    }

    pub fn finish(mut self) -> Vec<PartRange> {
        self.open.last = LAST_NODE_ID;
        self.done.push(self.open);
        self.done
    }
}

fn range(n: usize, first: u64) -> PartRange {
    PartRange { id: format!("p{n}"), first, last: LAST_NODE_ID, nodes: 0, bytes: 0 }
}
