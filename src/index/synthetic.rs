//! Seeded synthetic node trees shaped like file servers, and a mutation step between snapshots, for tests
//! and benchmarks. The same seed always gives the same rows (own PRNG, no dependency on `rand`'s
//! algorithms).
//!
//! Model (measure your own data before trusting figures derived from it):
//! - Ids are assigned the way a scan lists: a directory's entries get consecutive ids, then its
//!   subdirectories are listed depth-first. Rows come out in `node_id` order, streaming (memory is the
//!   stack of pending directories).
//! - Files per directory: log-normal, median ~9, mean ~20; subdirectories per directory fall with depth
//!   (about 5% of nodes are directories; depth rarely beyond 12).
//! - Names: one to three words from a mixed-language list (some non-ASCII), numbers, dates, an extension;
//!   ~21 bytes on average.
//! - Sizes: log-normal, median ~30 KB, long tail to GBs. Times: per directory a creation burst (files
//!   written together share seconds), 100 ns resolution; ctime mostly equals mtime.
//! - xorhash: random 64 bits per file (content hashes do not compress), 0 for directories; about 3% of
//!   files are duplicates of an earlier file (same size and xorhash).

use arrow::array::RecordBatch;

use super::node::{Node, NodeBatchBuilder, NodeColumns, NodeId, NodeKind, ROOT_ID, node_batches};

/// SplitMix64: small, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "report",
    "invoice",
    "budget",
    "scan",
    "IMG",
    "DSC",
    "meeting",
    "notes",
    "draft",
    "final",
    "contract",
    "offer",
    "summary",
    "backup",
    "export",
    "data",
    "Protokoll",
    "Angebot",
    "Rechnung",
    "übersicht",
    "Präsentation",
    "données",
    "résumé",
    "café",
    "projet",
    "año",
    "informe",
    "写真",
    "資料",
    "отчёт",
    "план",
    "customer",
    "Q3",
    "v2",
    "old",
    "copy",
    "template",
    "agenda",
    "minutes",
    "photo",
    "design",
    "spec",
    "README",
    "log",
    "install",
    "setup",
    "sales",
    "HR",
];
const EXTS: &[&str] = &[
    ".pdf", ".docx", ".xlsx", ".jpg", ".jpg", ".png", ".txt", ".log", ".csv", ".zip", ".msg", ".pptx", ".dat", ".xml",
    ".json", ".dll", ".mp4", ".bak", "",
];
const SEPS: &[&str] = &["_", " ", "-", ""];

/// Seconds since the epoch of 2015-01-01 and the span of ten years, for times.
const T0: i64 = 1_420_070_400;
const TEN_YEARS: i64 = 315_569_520;
const NS: i64 = 1_000_000_000;

fn file_name(r: &mut Rng) -> String {
    let mut s = String::with_capacity(32);
    let words = 1 + r.below(3);
    let sep = *r.pick(SEPS);
    for i in 0..words {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(r.pick::<&str>(WORDS));
    }
    match r.below(4) {
        0 => s.push_str(&format!("{sep}{:04}", r.below(10_000))),
        1 => s.push_str(&format!("{sep}20{:02}-{:02}-{:02}", 10 + r.below(16), 1 + r.below(12), 1 + r.below(28))),
        2 => s.push_str(&format!("{sep}{}", r.below(100))),
        _ => {}
    }
    s.push_str(r.pick::<&str>(EXTS));
    s
}

fn dir_name(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!("{}", 2010 + r.below(16)),
        1 => format!("{} {}", r.pick(WORDS), r.pick(WORDS)),
        2 => format!("{}_{:03}", r.pick(WORDS), r.below(1000)),
        _ => r.pick(WORDS).to_string(),
    }
}

/// One synthetic file row (also used by the mutation step for added files).
fn make_file(r: &mut Rng, id: NodeId, parent: NodeId, burst_s: i64) -> Node {
    let mtime = (burst_s + r.lognormal(3.0, 2.5).min(1e8) as i64) * NS + r.below(10_000_000) as i64 * 100;
    let ctime = if r.chance(0.8) { mtime } else { mtime + r.below(1 << 40) as i64 * 100 };
    let size = r.lognormal(10.3, 2.5).min(5e11) as i64;
    let attributes = if r.chance(0.9) { 0x20 } else { *r.pick(&[0x21, 0x22, 0x80, 0x2020]) };
    Node {
        node_id: id,
        parent_id: parent,
        name: file_name(r),
        kind: NodeKind::File,
        size,
        mtime,
        ctime,
        attributes,
        xorhash: r.next_u64() as i64,
    }
}

/// A seeded stream of node rows in `node_id` order, `1..=nodes`.
pub struct SyntheticShare {
    rng: Rng,
    target: u64,
    next_id: i64,
    /// Directories whose entries are yet to be listed: (id, depth).
    stack: Vec<(NodeId, u32)>,
    /// Entries of the directory being listed, in id order.
    pending: std::collections::VecDeque<Node>,
    /// Recent (size, xorhash) pairs, for duplicates.
    seen: Vec<(i64, i64)>,
    /// Names used in the root, which may be listed more than once.
    root_names: std::collections::HashSet<String>,
}

impl SyntheticShare {
    pub fn new(seed: u64, nodes: u64) -> Self {
        SyntheticShare {
            rng: Rng::new(seed),
            target: nodes,
            next_id: 1,
            stack: Vec::new(),
            pending: Default::default(),
            seen: Vec::new(),
            root_names: Default::default(),
        }
    }

    /// List one directory: its files then its subdirectories, consecutive ids.
    fn list(&mut self, dir: NodeId, depth: u32) {
        let r = &mut self.rng;
        let files = if depth == 0 { r.below(8) } else { r.lognormal(2.2, 1.3).min(20_000.0) as u64 };
        let mean_dirs = match depth {
            0 => 12.0,
            1..=2 => 3.0,
            3..=5 => 1.6,
            6..=9 => 0.7,
            10..=13 => 0.3,
            _ => 0.0,
        };
        let dirs = (mean_dirs * 2.0 * r.f64()).round() as u64;
        let burst = T0 + r.below(TEN_YEARS as u64) as i64;
        let mut subdirs = Vec::new();
        let first = self.pending.len();
        for _ in 0..files {
            let id = self.alloc();
            let mut n = make_file(&mut self.rng, id, dir, burst);
            // About 3% of files are copies of an earlier one (same size and content hash).
            if !self.seen.is_empty() && self.rng.chance(0.03) {
                let (size, hash) = *self.rng.pick(&self.seen);
                (n.size, n.xorhash) = (size, hash);
            } else if self.seen.len() < 1024 {
                self.seen.push((n.size, n.xorhash));
            } else {
                let j = self.rng.below(1024) as usize;
                self.seen[j] = (n.size, n.xorhash);
            }
            self.pending.push_back(n);
        }
        for _ in 0..dirs {
            let id = self.alloc();
            let r = &mut self.rng;
            let t = (burst + r.below(86_400) as i64) * NS;
            self.pending.push_back(Node {
                node_id: id,
                parent_id: dir,
                name: dir_name(r),
                kind: NodeKind::Dir,
                size: 0,
                mtime: t,
                ctime: t,
                attributes: 0x10,
                xorhash: 0,
            });
            subdirs.push((id, depth + 1));
        }
        // Names are unique within a directory, as on a real share.
        let mut fresh = std::collections::HashSet::new();
        let names = if dir == ROOT_ID { &mut self.root_names } else { &mut fresh };
        for n in self.pending.range_mut(first..) {
            let mut k = 1;
            let base = n.name.clone();
            while !names.insert(n.name.clone()) {
                k += 1;
                n.name = format!("{base} ({k})");
            }
        }
        // Depth-first: the first subdirectory is listed next.
        self.stack.extend(subdirs.into_iter().rev());
    }

    fn alloc(&mut self) -> NodeId {
        let id = self.next_id;
        self.next_id += 1;
        NodeId(id)
    }

    /// Rows as batches of `batch_rows`.
    pub fn batches(self, batch_rows: usize) -> impl Iterator<Item = RecordBatch> {
        node_batches(self, batch_rows)
    }
}

impl Iterator for SyntheticShare {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        loop {
            if let Some(n) = self.pending.pop_front() {
                if n.node_id.as_u64() > self.target {
                    self.pending.clear();
                    self.stack.clear();
                    return None;
                }
                return Some(n);
            }
            if self.next_id as u64 > self.target {
                return None;
            }
            match self.stack.pop() {
                Some((dir, depth)) => self.list(dir, depth),
                None => self.list(ROOT_ID, 0),
            }
        }
    }
}

/// Metadata of a real directory tree, taken once, to be replicated into a large share by [`ReplicatedShare`].
///
/// Entries are in the order a scan assigns ids: a directory's entries (sorted by name) get consecutive
/// ids, then its subdirectories are listed depth-first. `parent` is the 1-based index of the parent entry
/// in `entries`, 0 for the template's top level. Each source directory given to [`TreeTemplate::walk`]
/// becomes one top-level directory named after its last path component.
#[derive(Debug, Clone, Default)]
pub struct TreeTemplate {
    pub entries: Vec<TemplateEntry>,
    /// Entries skipped because they vanished or could not be read during the walk.
    pub skipped: u64,
}

/// One entry of a [`TreeTemplate`]: what the file system reports, with times rounded down to 100 ns
/// (Azure's resolution).
#[derive(Debug, Clone)]
pub struct TemplateEntry {
    pub parent: u32,
    pub name: String,
    pub kind: NodeKind,
    /// Bytes (`st_size`; for a symbolic link, the length of its target); 0 for directories.
    pub size: i64,
    /// Last-modification time, ns since the Unix epoch, multiple of 100.
    pub mtime: i64,
    /// Status-change time, ns since the Unix epoch, multiple of 100.
    pub ctime: i64,
    /// Directory 0x10 or Archive 0x20, plus ReadOnly 0x1 when no write permission bit is set and
    /// ReparsePoint 0x400 for symbolic links.
    pub attributes: i32,
}

fn round_100ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(NS).saturating_add(nsec / 100 * 100)
}

impl TreeTemplate {
    /// Walk local directory trees without following symbolic links. Names that are not UTF-8 are
    /// converted lossily (a real share's names are UTF-16, so always convertible). Unreadable or vanished
    /// entries are counted in `skipped`, not fatal; a source root that cannot be read is an error.
    pub fn walk(roots: &[std::path::PathBuf]) -> anyhow::Result<Self> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mut t = TreeTemplate::default();
        let entry_of = |parent: u32, name: String, md: &std::fs::Metadata| {
            let ft = md.file_type();
            let kind = if ft.is_dir() { NodeKind::Dir } else { NodeKind::File };
            let mut attributes = if kind == NodeKind::Dir { 0x10 } else { 0x20 };
            if md.permissions().mode() & 0o222 == 0 {
                attributes |= 0x1;
            }
            if ft.is_symlink() {
                attributes |= 0x400;
            }
            TemplateEntry {
                parent,
                name,
                kind,
                size: if kind == NodeKind::Dir { 0 } else { md.len() as i64 },
                mtime: round_100ns(md.mtime(), md.mtime_nsec()),
                ctime: round_100ns(md.ctime(), md.ctime_nsec()),
                attributes,
            }
        };
        // Top level: one directory per root, in the order given.
        let mut pending: Vec<(std::path::PathBuf, u32)> = Vec::new();
        for root in roots {
            let md = std::fs::metadata(root).map_err(|e| anyhow::anyhow!("--from-tree {}: {e}", root.display()))?;
            anyhow::ensure!(md.is_dir(), "--from-tree {}: not a directory", root.display());
            let name = root.file_name().map_or_else(|| "root".to_string(), |n| n.to_string_lossy().into_owned());
            t.entries.push(entry_of(0, name, &md));
            pending.push((root.clone(), t.entries.len() as u32));
        }
        // Depth-first over directories: list one, give its entries consecutive ids, then descend into its
        // subdirectories in name order.
        pending.reverse();
        while let Some((path, idx)) = pending.pop() {
            let rd = match std::fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(_) => {
                    t.skipped += 1;
                    continue;
                }
            };
            let mut children: Vec<(String, std::fs::Metadata)> = Vec::new();
            for e in rd {
                let Ok(e) = e else {
                    t.skipped += 1;
                    continue;
                };
                match e.metadata() {
                    Ok(md) => children.push((e.file_name().to_string_lossy().into_owned(), md)),
                    Err(_) => t.skipped += 1,
                }
            }
            children.sort_by(|a, b| a.0.cmp(&b.0));
            let mut subdirs = Vec::new();
            for (name, md) in children {
                let is_dir = md.is_dir();
                t.entries.push(entry_of(idx, name.clone(), &md));
                if is_dir {
                    subdirs.push((path.join(&name), t.entries.len() as u32));
                }
            }
            pending.extend(subdirs.into_iter().rev());
        }
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Average name length in bytes.
    pub fn average_name_bytes(&self) -> f64 {
        self.entries.iter().map(|e| e.name.len()).sum::<usize>() as f64 / self.entries.len().max(1) as f64
    }
}

/// A share of `nodes` rows made of copies of a [`TreeTemplate`], streaming in `node_id` order.
///
/// The root holds `copies = ceil(nodes / template.len())` directories `copy-00001`, ... (ids
/// `1..=copies`, listed first, as a scan would); copy `k` (0-based) then takes ids
/// `copies + k * template.len() + 1 ..`, its rows in template order under fresh directory ids. Names, kinds,
/// sizes, times and attributes are the template's; `xorhash` is random per file (seeded), 0 for
/// directories. The last copy is cut off at `nodes`.
pub struct ReplicatedShare<'a> {
    t: &'a TreeTemplate,
    rng: Rng,
    nodes: u64,
    copies: u64,
    next: u64,
}

impl<'a> ReplicatedShare<'a> {
    pub fn new(t: &'a TreeTemplate, seed: u64, nodes: u64) -> Self {
        let per = t.len().max(1) as u64;
        // Solve copies + copies * per >= nodes, so the share has exactly `nodes` rows.
        let copies = nodes.div_ceil(per + 1).max(1);
        ReplicatedShare { t, rng: Rng::new(seed), nodes, copies, next: 1 }
    }

    /// Rows as batches of `batch_rows`.
    pub fn batches(self, batch_rows: usize) -> impl Iterator<Item = RecordBatch> + 'a {
        node_batches(self, batch_rows)
    }
}

impl Iterator for ReplicatedShare<'_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        let id = self.next;
        if id > self.nodes || self.t.is_empty() {
            return None;
        }
        self.next += 1;
        let per = self.t.len() as u64;
        if id <= self.copies {
            let top = &self.t.entries[0];
            return Some(Node {
                node_id: NodeId::saturating_from_u64(id),
                parent_id: ROOT_ID,
                name: format!("copy-{id:05}"),
                kind: NodeKind::Dir,
                size: 0,
                mtime: top.mtime,
                ctime: top.ctime,
                attributes: 0x10,
                xorhash: 0,
            });
        }
        let rel = id - self.copies - 1;
        let (k, i) = (rel / per, (rel % per) as usize);
        let e = &self.t.entries[i];
        let base = self.copies + k * per;
        let parent_id = NodeId::saturating_from_u64(if e.parent == 0 { k + 1 } else { base + e.parent as u64 });
        let xorhash = if e.kind == NodeKind::File { self.rng.next_u64() as i64 } else { 0 };
        Some(Node {
            node_id: NodeId::saturating_from_u64(id),
            parent_id,
            name: e.name.clone(),
            kind: e.kind,
            size: e.size,
            mtime: e.mtime,
            ctime: e.ctime,
            attributes: e.attributes,
            xorhash,
        })
    }
}

/// Fractions and counts applied by [`Mutator`].
#[derive(Debug, Clone, Copy)]
pub struct Mutation {
    /// Fraction of files modified (size, mtime, ctime, xorhash change).
    pub modified: f64,
    /// Fraction of files deleted.
    pub deleted: f64,
    /// Files added (as a fraction of all nodes), into random existing directories.
    pub added: f64,
    /// Directories renamed.
    pub dir_renames: u64,
}

impl Default for Mutation {
    /// The benchmark's change between snapshots: 1% modified, 0.5% deleted, 0.5% added, 100 directory
    /// renames.
    fn default() -> Self {
        Mutation { modified: 0.01, deleted: 0.005, added: 0.005, dir_renames: 100 }
    }
}

/// Commits the next snapshot of `tenant/share` (from `from`, a snapshot of any share of `repo`): its
/// rows streamed through a [`Mutator`] seeded with `seed`, then the added rows.
pub async fn write_mutated(
    repo: &super::NodeIndex,
    tenant: &str,
    share: &str,
    from: &super::manifest::IndexManifest,
    m: Mutation,
    seed: u64,
    opts: super::snapshot::WriteOptions,
) -> anyhow::Result<super::manifest::IndexManifest> {
    use futures::TryStreamExt;
    let mut mu = Mutator::new(seed, m, from.totals.nodes, from.totals.dirs, NodeId(from.next_node_id));
    let mut w = repo.begin(tenant, share, opts).await?;
    let mut s = repo.read(from, None)?;
    while let Some(b) = s.try_next().await? {
        w.write(&mu.apply(&b)).await?;
    }
    for b in mu.finish() {
        w.write(&b).await?;
    }
    w.commit(None).await
}

/// Turns one snapshot into the next, streaming: feed the old rows in `node_id` order through
/// [`apply`](Self::apply), then take the added rows from [`finish`](Self::finish).
pub struct Mutator {
    rng: Rng,
    m: Mutation,
    rename_p: f64,
    next_id: NodeId,
    nodes: u64,
    /// A sample of directory ids for added files (reservoir).
    dirs: Vec<NodeId>,
    dirs_seen: u64,
}

impl Mutator {
    /// `total_nodes` and `total_dirs` of the old snapshot set the rates; `next_id` is where new ids start.
    pub fn new(seed: u64, m: Mutation, total_nodes: u64, total_dirs: u64, next_id: NodeId) -> Self {
        let rename_p = if total_dirs == 0 { 0.0 } else { m.dir_renames as f64 / total_dirs as f64 };
        Mutator { rng: Rng::new(seed), m, rename_p, next_id, nodes: total_nodes, dirs: Vec::new(), dirs_seen: 0 }
    }

    /// The next snapshot's rows for one batch of old rows.
    pub fn apply(&mut self, old: &RecordBatch) -> RecordBatch {
        let c = NodeColumns::new(old);
        // One more than the input can hold, so the builder never hands back a batch early.
        let mut out = NodeBatchBuilder::new(c.len() + 1);
        for i in 0..c.len() {
            let mut n = c.node(i);
            if n.kind == NodeKind::Dir {
                self.dirs_seen += 1;
                if self.dirs.len() < 4096 {
                    self.dirs.push(n.node_id);
                } else {
                    let j = self.rng.below(self.dirs_seen) as usize;
                    if j < self.dirs.len() {
                        self.dirs[j] = n.node_id;
                    }
                }
                if self.rng.chance(self.rename_p) {
                    n.name.push_str(" (renamed)");
                }
            } else {
                if self.rng.chance(self.m.deleted) {
                    continue;
                }
                if self.rng.chance(self.m.modified) {
                    n.size = self.rng.lognormal(10.3, 2.5).min(5e11) as i64;
                    n.mtime += (1 + self.rng.below(1 << 30) as i64) * 100;
                    n.ctime = n.mtime;
                    n.xorhash = self.rng.next_u64() as i64;
                }
            }
            out.push(&n);
        }
        out.finish().unwrap_or_else(|| RecordBatch::new_empty(super::node::node_schema()))
    }

    /// The added files (ids from `next_id` on), as batches.
    pub fn finish(mut self) -> Vec<RecordBatch> {
        let count = (self.nodes as f64 * self.m.added).round() as u64;
        let mut b = NodeBatchBuilder::default();
        let mut out = Vec::new();
        for _ in 0..count {
            let parent = if self.dirs.is_empty() { ROOT_ID } else { *self.rng.pick(&self.dirs) };
            let id = self.next_id;
            self.next_id = id.next();
            let burst = T0 + TEN_YEARS;
            let n = make_file(&mut self.rng, id, parent, burst);
            out.extend(b.push(&n));
        }
        out.extend(b.finish());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_share_and_ids_are_dense_and_ordered() {
        let a: Vec<Node> = SyntheticShare::new(7, 5000).collect();
        let b: Vec<Node> = SyntheticShare::new(7, 5000).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 5000);
        assert!(a.iter().enumerate().all(|(i, n)| n.node_id == NodeId(i as i64 + 1)));
        // Every parent is the root or a directory listed earlier.
        let dirs: std::collections::HashSet<NodeId> =
            a.iter().filter(|n| n.kind == NodeKind::Dir).map(|n| n.node_id).collect();
        assert!(a.iter().all(|n| n.parent_id == ROOT_ID || (dirs.contains(&n.parent_id) && n.parent_id < n.node_id)));
        let avg = a.iter().map(|n| n.name.len()).sum::<usize>() as f64 / a.len() as f64;
        assert!((15.0..28.0).contains(&avg), "average name length {avg}");
    }

    #[test]
    fn replicated_tree_keeps_structure_and_ids_are_dense() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/a")).unwrap();
        std::fs::write(d.path().join("src/a/x.txt"), b"hello").unwrap();
        std::fs::write(d.path().join("src/b.rs"), b"fn main() {}").unwrap();
        let t = TreeTemplate::walk(&[d.path().join("src")]).unwrap();
        // src, a, b.rs, x.txt: `a` and `b.rs` are listed together (consecutive), then a's contents.
        let names: Vec<&str> = t.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["src", "a", "b.rs", "x.txt"]);
        assert_eq!(t.entries[3].parent, 2);
        assert_eq!(t.entries[3].size, 5);
        assert!(t.entries.iter().all(|e| e.mtime % 100 == 0 && e.ctime % 100 == 0));
        let rows: Vec<Node> = ReplicatedShare::new(&t, 1, 11).collect();
        assert_eq!(rows.len(), 11);
        assert!(rows.iter().enumerate().all(|(i, n)| n.node_id == NodeId(i as i64 + 1)));
        // 3 copies: ids 1..=3 are the copy roots, then copy 0 is 4..=7, copy 1 is 8..=11.
        assert_eq!(
            rows[..3].iter().map(|n| (n.parent_id, n.kind)).collect::<Vec<_>>(),
            vec![(ROOT_ID, NodeKind::Dir); 3]
        );
        assert_eq!((rows[3].name.as_str(), rows[3].parent_id), ("src", NodeId(1)));
        assert_eq!((rows[6].name.as_str(), rows[6].parent_id), ("x.txt", NodeId(5)));
        assert_eq!((rows[7].name.as_str(), rows[7].parent_id), ("src", NodeId(2)));
        assert_eq!((rows[10].name.as_str(), rows[10].parent_id), ("x.txt", NodeId(9)));
        assert_ne!(rows[6].xorhash, rows[10].xorhash);
        assert_eq!(rows[4].xorhash, 0);
    }
}
