//! A compact map of a snapshot's directories: paths in microseconds and subtree totals.
//!
//! Holds, per directory: its id, its parent, its name and the totals of its subtree; 48 bytes per
//! directory plus names (directories are ~5-10% of nodes on file servers). Files are not held: a file's
//! path is `path_of(parent_id, name)`. Built in one streaming pass over a snapshot, or opened in place
//! from the snapshot's stored summary (memory-mapped, so only the pages a lookup reads become resident).
//!
//! Paths are `/`-separated from the share root, which is `/`: a top-level directory `docs` is `/docs`.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::Context;
use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::BatchStream;
use super::NodeIndex;
use super::le_array::LeArray;
use super::manifest::IndexManifest;
use super::node::{NodeId, NodeKind, ROOT_ID, col};

const NONE: u32 = u32::MAX;

/// Totals of a subtree (the directory itself not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubtreeTotals {
    /// Sum of file sizes in bytes.
    pub bytes: u64,
    pub files: u64,
    pub dirs: u64,
}

/// Directories of one snapshot. Index 0 is the share root.
///
/// The arrays are little-endian bytes ([`LeArray`]): built in memory by [`DirMap::build`], or regions of
/// a stored summary mapped from disk ([`crate::index::summary`]), read in place. Every reference (a parent,
/// a child, a name's end) is checked where it is followed, so a damaged summary gives wrong answers at
/// worst, never a panic.
#[derive(Debug, Default, PartialEq)]
pub struct DirMap {
    /// Node ids, ascending; `ids[0]` is the root, [`ROOT_ID`].
    pub(super) ids: LeArray<i64>,
    /// Index of the parent directory; `NONE` for the root (and for orphans whose parent is missing).
    pub(super) parent: LeArray<u32>,
    /// Name of directory `i` is `names[name_end[i-1]..name_end[i]]` (UTF-8).
    pub(super) name_end: LeArray<u32>,
    pub(super) names: Bytes,
    /// Subtree totals of directory `i`: bytes, files, directories.
    pub(super) total_bytes: LeArray<u64>,
    pub(super) total_files: LeArray<u64>,
    pub(super) total_dirs: LeArray<u64>,
    /// Children of directory `i` are `child[child_start[i]..child_start[i+1]]`.
    pub(super) child_start: LeArray<u32>,
    pub(super) child: LeArray<u32>,
}

/// A directory map while it is built: plain vectors, the same meaning as [`DirMap`]'s arrays.
#[derive(Default)]
struct Building {
    ids: Vec<NodeId>,
    parent: Vec<u32>,
    name_end: Vec<u32>,
    names: String,
    totals: Vec<SubtreeTotals>,
}

impl Building {
    fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    fn depths(&self) -> Vec<u32> {
        let n = self.ids.len();
        let mut depth = vec![u32::MAX; n];
        depth[0] = 0;
        let mut stack = Vec::new();
        for i in 1..n {
            let mut j = i;
            while depth[j] == u32::MAX {
                stack.push(j);
                let p = self.parent[j];
                if p == NONE || stack.len() > n {
                    depth[j] = 1; // orphan (or a cycle): treat as top level
                    stack.pop();
                    break;
                }
                j = p as usize;
            }
            while let Some(k) = stack.pop() {
                depth[k] = depth[self.parent[k] as usize].saturating_add(1);
            }
        }
        depth
    }
}

impl DirMap {
    /// Build from a committed snapshot.
    pub async fn load(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<Self> {
        let s = repo.read(m, Some(&[col::PARENT_ID, col::NAME, col::KIND, col::SIZE]))?;
        Self::build(s).await.with_context(|| {
            format!("building the directory map of {}/{} snapshot {}", m.tenant_id, m.share_id, m.snapshot_id)
        })
    }

    /// Build from a stream with columns `node_id, parent_id, name, kind, size`, sorted by `node_id`.
    pub async fn build(mut s: BatchStream) -> anyhow::Result<Self> {
        let mut d = Building {
            ids: vec![ROOT_ID],
            parent: vec![NONE],
            name_end: vec![0],
            totals: vec![SubtreeTotals::default()],
            ..Default::default()
        };
        let mut dir_parent_ids: Vec<NodeId> = vec![ROOT_ID];
        // Direct children's totals per parent id, resolved to indices at the end.
        let mut own: HashMap<NodeId, SubtreeTotals> = HashMap::new();
        while let Some(b) = s.next().await {
            let b = b?;
            add_batch(&mut d, &mut dir_parent_ids, &mut own, &b)?;
        }
        // Parents to indices.
        for (i, pid) in dir_parent_ids.iter().enumerate().skip(1) {
            d.parent[i] = d.index_of(*pid).map_or(NONE, |p| p as u32);
        }
        // Children lists (CSR).
        let n = d.ids.len();
        let mut counts = vec![0u32; n + 1];
        for i in 1..n {
            if d.parent[i] != NONE {
                counts[d.parent[i] as usize + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let child_start = counts.clone();
        let mut child = vec![0; counts[n] as usize];
        let mut fill = counts;
        for i in 1..n {
            let p = d.parent[i];
            if p != NONE {
                child[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        // Own totals, then roll up children before parents (post-order by depth).
        for (pid, t) in own {
            if let Some(i) = d.index_of(pid) {
                d.totals[i] = t;
            }
        }
        let depth = d.depths();
        let mut order: Vec<u32> = (1..n as u32).collect();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(depth[i as usize]));
        for i in order {
            let p = d.parent[i as usize];
            if p != NONE {
                let t = d.totals[i as usize];
                let pt = &mut d.totals[p as usize];
                pt.bytes += t.bytes;
                pt.files += t.files;
                pt.dirs += t.dirs;
            }
        }
        Ok(DirMap {
            ids: LeArray::from_values(d.ids.iter().map(|x| x.0)),
            parent: LeArray::from_values(d.parent),
            name_end: LeArray::from_values(d.name_end),
            names: Bytes::from(d.names.into_bytes()),
            total_bytes: LeArray::from_values(d.totals.iter().map(|t| t.bytes)),
            total_files: LeArray::from_values(d.totals.iter().map(|t| t.files)),
            total_dirs: LeArray::from_values(d.totals.iter().map(|t| t.dirs)),
            child_start: LeArray::from_values(child_start),
            child: LeArray::from_values(child),
        })
    }

    /// Number of directories, the root included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.len() <= 1
    }

    /// Bytes of its arrays: heap memory when built, the mapped part of a stored summary when opened from
    /// one (resident only where read).
    pub fn memory_bytes(&self) -> usize {
        self.ids.as_bytes().len()
            + self.parent.as_bytes().len()
            + self.name_end.as_bytes().len()
            + self.names.len()
            + self.total_bytes.as_bytes().len() * 3
            + self.child_start.as_bytes().len()
            + self.child.as_bytes().len()
    }

    pub(super) fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.binary_search(id.0).ok()
    }

    /// Name of directory `i` (empty for the root and for a damaged entry; invalid UTF-8 replaced).
    fn name(&self, i: usize) -> Cow<'_, str> {
        let Some(before) = i.checked_sub(1) else { return Cow::Borrowed("") };
        let (Some(a), Some(b)) = (self.name_end.get(before), self.name_end.get(i)) else { return Cow::Borrowed("") };
        match self.names.get(a as usize..b as usize) {
            Some(bytes) => String::from_utf8_lossy(bytes),
            None => Cow::Borrowed(""),
        }
    }

    /// Index of the parent of directory `i`; `None` for the root, an orphan or a reference out of range.
    fn parent_of(&self, i: usize) -> Option<usize> {
        self.parent.get(i).map(|p| p as usize).filter(|&p| p < self.len())
    }

    /// Indices of the subdirectories of directory `i` (references out of range skipped).
    fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.child_start.get(i + 1).map_or(0, |e| (e as usize).min(self.child.len()));
        let start = self.child_start.get(i).map_or(end, |s| (s as usize).min(end));
        (start..end).filter_map(|k| self.child.get(k)).map(|c| c as usize).filter(|&c| c < self.len())
    }

    /// Subtree totals of directory `i`.
    pub(super) fn totals(&self, i: usize) -> SubtreeTotals {
        SubtreeTotals {
            bytes: self.total_bytes.get(i).unwrap_or(0),
            files: self.total_files.get(i).unwrap_or(0),
            dirs: self.total_dirs.get(i).unwrap_or(0),
        }
    }

    /// Is `id` a directory of this snapshot (or the root)?
    pub fn is_dir(&self, id: NodeId) -> bool {
        self.index_of(id).is_some()
    }

    /// Path of a directory (`/` for the root); `None` if `id` is not a directory of this snapshot.
    pub fn path(&self, id: NodeId) -> Option<String> {
        let i = self.index_of(id)?;
        let mut s = String::with_capacity(64);
        self.push_path(i, &mut s);
        if s.is_empty() {
            s.push('/');
        }
        Some(s)
    }

    /// Path of an entry named `name` in directory `parent_id`; `None` if the parent is unknown.
    pub fn path_of(&self, parent_id: NodeId, name: &str) -> Option<String> {
        let i = self.index_of(parent_id)?;
        let mut s = String::with_capacity(64 + name.len());
        self.push_path(i, &mut s);
        s.push('/');
        s.push_str(name);
        Some(s)
    }

    fn push_path(&self, i: usize, out: &mut String) {
        let mut chain = [0u32; 64];
        let mut heap: Vec<u32> = Vec::new();
        let mut n = 0;
        let mut j = i;
        // At most len() steps: a cycle in a damaged map ends there.
        while j != 0 && (n + heap.len()) <= self.len() {
            if n < chain.len() {
                chain[n] = j as u32;
                n += 1;
            } else {
                heap.push(j as u32);
            }
            match self.parent_of(j) {
                Some(p) => j = p,
                None => break,
            }
        }
        for &k in heap.iter().rev().chain(chain[..n].iter().rev()) {
            out.push('/');
            out.push_str(&self.name(k as usize));
        }
    }

    /// Subtree totals of a directory (the root: the whole share); `None` if not a directory.
    pub fn du(&self, id: NodeId) -> Option<SubtreeTotals> {
        self.index_of(id).map(|i| self.totals(i))
    }

    /// The directory at `path` (`/`, `/a/b`, trailing `/` allowed); `None` if there is none.
    pub fn resolve(&self, path: &str) -> Option<NodeId> {
        let mut i = 0usize;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            i = self.children(i).find(|&c| self.name(c) == part)?;
        }
        self.ids.get(i).map(NodeId)
    }

    /// Ids of all directories, ascending (the root, [`ROOT_ID`], first).
    pub fn dir_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.ids.iter().map(NodeId)
    }

    /// Files directly in directory `id` (its subtree's files less its subdirectories' subtrees');
    /// `None` if not a directory.
    pub fn direct_files(&self, id: NodeId) -> Option<u64> {
        let total = self.du(id)?.files;
        Some(total.saturating_sub(self.subdirs(id).map(|(i, _, _)| self.totals(i).files).sum::<u64>()))
    }

    /// The subdirectories of directory `id` as (index, node id, name); none for an unknown id.
    pub fn subdirs(&self, id: NodeId) -> impl Iterator<Item = (usize, NodeId, Cow<'_, str>)> + '_ {
        let i = self.index_of(id);
        i.into_iter().flat_map(|i| self.children(i)).filter_map(|c| Some((c, NodeId(self.ids.get(c)?), self.name(c))))
    }
}

fn add_batch(
    d: &mut Building,
    dir_parent_ids: &mut Vec<NodeId>,
    own: &mut HashMap<NodeId, SubtreeTotals>,
    b: &RecordBatch,
) -> anyhow::Result<()> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int8Type, Int64Type};
    let schema = b.schema();
    let colx = |name: &str| schema.index_of(name).with_context(|| format!("directory map input lacks column {name}"));
    let ids = b.column(colx("node_id")?).as_primitive::<Int64Type>();
    let parents = b.column(colx("parent_id")?).as_primitive::<Int64Type>();
    let names = b.column(colx("name")?).as_string::<i32>();
    let kinds = b.column(colx("kind")?).as_primitive::<Int8Type>();
    let sizes = b.column(colx("size")?).as_primitive::<Int64Type>();
    let mut last: Option<(NodeId, SubtreeTotals)> = None;
    let flush = |own: &mut HashMap<NodeId, SubtreeTotals>, l: Option<(NodeId, SubtreeTotals)>| {
        if let Some((p, t)) = l {
            let e = own.entry(p).or_default();
            e.bytes += t.bytes;
            e.files += t.files;
            e.dirs += t.dirs;
        }
    };
    for i in 0..b.num_rows() {
        let p = NodeId(parents.value(i));
        if last.as_ref().is_none_or(|l| l.0 != p) {
            flush(own, last.take());
            last = Some((p, SubtreeTotals::default()));
        }
        let t = &mut last.as_mut().expect("set above").1;
        if kinds.value(i) == NodeKind::Dir as i8 {
            t.dirs += 1;
            let name = names.value(i);
            d.ids.push(NodeId(ids.value(i)));
            dir_parent_ids.push(p);
            d.names.push_str(name);
            let end = u32::try_from(d.names.len()).context("directory names exceed 4 GiB")?;
            d.name_end.push(end);
            d.parent.push(NONE);
            d.totals.push(SubtreeTotals::default());
        } else {
            t.files += 1;
            t.bytes += sizes.value(i).max(0) as u64;
        }
    }
    flush(own, last);
    Ok(())
}

/// Match `path` against a glob: `*` any run within one component, `?` one character, `**` any run
/// including `/`. A pattern without `/` matches the last component only (`*.pdf`).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let subject = if pattern.contains('/') { path } else { path.rsplit('/').next().unwrap_or(path) };
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = subject.chars().collect();
    glob_rec(&p, &s)
}

fn glob_rec(p: &[char], s: &[char]) -> bool {
    // Iterative with backtracking to the last star.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize, bool)> = None; // (pattern index after star, subject index, crosses '/')
    while si < s.len() {
        if pi < p.len() && p[pi] == '*' {
            let double = pi + 1 < p.len() && p[pi + 1] == '*';
            pi += if double { 2 } else { 1 };
            star = Some((pi, si, double));
        } else if pi < p.len() && (p[pi] == '?' && s[si] != '/' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss, double)) = star {
            if !double && s[ss] == '/' {
                return false;
            }
            pi = sp;
            si = ss + 1;
            star = Some((sp, ss + 1, double));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.pdf", "/a/b/x.pdf"));
        assert!(!glob_match("*.pdf", "/a/b/x.pdf.bak"));
        assert!(glob_match("/a/*/x.pdf", "/a/b/x.pdf"));
        assert!(!glob_match("/a/*/x.pdf", "/a/b/c/x.pdf"));
        assert!(glob_match("/a/**/x.pdf", "/a/b/c/x.pdf"));
        assert!(glob_match("/a/**", "/a/b/c"));
        assert!(glob_match("?.txt", "/q/b.txt"));
    }
}
