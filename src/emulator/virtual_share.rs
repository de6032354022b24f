//! Virtual shares: a share whose tree is computed, not stored, so that afb can be tested at millions of
//! files through the real REST path (`afb emulator --virtual-share NAME=FILES[,seed=N][,change=F][,every=K]`).
//!
//! Everything about an item (name, size, times, attributes, FileId, content) is a pure function of the
//! share's spec (files, seed, change), the item's position in the tree and the share version's
//! *generation*. Nothing is kept per file, in memory or in SQLite: a share version is one row in
//! `shares` plus one in `virtual_versions` (its generation). The operations read a virtual share
//! through the same calls as a stored one (`ops::tree`), so headers and XML come from one code path.
//!
//! Tree shape (`FANOUT` = 1000 entries per directory):
//! - FILES ≤ 1000: the files are in the root. Otherwise directories are nested as deep as needed:
//!   `d0003/d0999/f003999123.dat`. Directory names are `d` + the position within the parent (4 digits);
//!   file names are `f` + the file's index in the share (at least 6 digits), `.dat`.
//! - Leaf directories hold files `[leaf * 1000, leaf * 1000 + 1000)`; every directory holds up to 1000
//!   directories. All names sort in position order, so one position is found by binary search.
//!
//! Generations: the live share starts at generation 0; each Snapshot Share records the live generation
//! in the snapshot and advances the live share by one. The changes of generation g ≥ 1 are dated in
//! the day before 2024-01-01 + g days (generation 0's files are from the year before 2024-01-01).
//! In generation g ≥ 1, with `change` = c:
//! - each existing file is modified (new size, content, last-write time) with probability c;
//! - each existing file is deleted with probability c / 2;
//! - each leaf directory gets up to `ceil(1000 c)` new files (each with probability 1/2), named
//!   `g{generation:05}-{k:04}.dat` (they sort after the `f…` files);
//! - one directory (when there are any) is renamed to `{name}-r{g}` (its FileId and contents stay).
//!
//! With `every` = K (default 1), only generations that are multiples of K change anything; the others
//! equal the generation before them (so with K = 2, a snapshot of generation 1 is an unchanged re-run
//! and generation 2 brings the changes).
//!
//! Whether something happens in generation g is a hash of (seed, FileId, g) against a threshold: O(1).
//! An item's state at generation g is found by looking at generations `birth+1 ..= g`: O(g).
//! Directory listings and lookups cost O(log 1000 + page) name computations, whatever the share's size.

use super::clock::TICKS_PER_SECOND;
use super::node::{DEFAULT_SDDL, permission_key};
use super::node::{Extent, Node, ROOT_FILE_ID};
use crate::azure::model::{ATTR_ARCHIVE, ATTR_DIRECTORY};
use std::fmt::Write as _;

/// Entries per directory.
pub const FANOUT: u64 = 1000;
/// Most files a virtual share may hold (FileIds encode positions in bit fields sized for this).
pub const MAX_FILES: u64 = 10_000_000_000;
/// Most generations (snapshots) of a virtual share: FileIds of added files hold the generation in 16 bits.
pub const MAX_GENERATION: u32 = 0xFFFF;

/// FileId layout: the top nibble says what the rest encodes. The root keeps Azure's root id
/// (`0xC000…`), so no generated id collides with it.
const TAG_FILE: u64 = 0xA << 60; // | file index (< 2^34)
const TAG_ADDED: u64 = 0xB << 60; // | generation << 40 | leaf << 10 | k
const TAG_DIR: u64 = 0xD << 60; // | level << 48 | index within level

/// Ticks of 2024-01-01T00:00:00Z: generation 0's time.
const BASE_TIME: i64 = 1_704_067_200 * TICKS_PER_SECOND;
/// Generation g happens at `BASE_TIME + g * DAY`.
const DAY: i64 = 86_400 * TICKS_PER_SECOND;
const YEAR: i64 = 365 * DAY;
/// Largest "small" file, bytes; 999 in 1000 files are 0..=SMALL_MAX bytes.
const SMALL_MAX: u64 = 8 * 1024;
/// Sizes of the 1 in 1000 large files: LARGE_MIN..LARGE_MIN + LARGE_SPAN bytes.
const LARGE_MIN: u64 = 64 * 1024;
const LARGE_SPAN: u64 = 4 * 1024 * 1024 - 64 * 1024;

/// A second SDDL, given to 1 in 50 items, so that permission keys differ.
pub const OTHER_SDDL: &str = "O:BAG:SYD:(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;WD)";

/// `NAME=FILES[,seed=N][,change=F][,every=K]` from the command line, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualShareSpec {
    pub name: String,
    /// Files in generation 0.
    pub files: u64,
    pub seed: u64,
    /// Fraction of files modified per generation, in [0, 1] (half as many are deleted and added).
    pub change: f64,
    /// Only generations that are multiples of this (≥ 1) change anything.
    pub every: u32,
}

impl VirtualShareSpec {
    /// Parses the `--virtual-share` value. FILES may carry a `k`, `M` or `G` suffix (powers of 1000).
    pub fn parse(s: &str) -> Result<VirtualShareSpec, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("virtual share {s:?}: expected NAME=FILES[,seed=N][,change=F][,every=K]"))?;
        if !crate::azure::is_valid_share_name(name) {
            return Err(format!("virtual share {s:?}: {name:?} is not a valid share name"));
        }
        let mut parts = rest.split(',');
        let files = parse_count(parts.next().unwrap_or(""))
            .filter(|n| *n <= MAX_FILES)
            .ok_or_else(|| format!("virtual share {s:?}: FILES must be a whole number from 0 to {MAX_FILES}"))?;
        let mut spec = VirtualShareSpec { name: name.to_string(), files, seed: 0, change: 0.0, every: 1 };
        for part in parts {
            match part.split_once('=') {
                Some(("seed", v)) => {
                    spec.seed = v.parse().map_err(|_| format!("virtual share {s:?}: seed must be a u64"))?;
                }
                Some(("change", v)) => {
                    spec.change = v
                        .parse::<f64>()
                        .ok()
                        .filter(|c| (0.0..=1.0).contains(c))
                        .ok_or_else(|| format!("virtual share {s:?}: change must be a number from 0 to 1"))?;
                }
                Some(("every", v)) => {
                    spec.every = v
                        .parse::<u32>()
                        .ok()
                        .filter(|k| *k >= 1)
                        .ok_or_else(|| format!("virtual share {s:?}: every must be a whole number from 1"))?;
                }
                _ => return Err(format!("virtual share {s:?}: unknown option {part:?} (seed=N, change=F, every=K)")),
            }
        }
        Ok(spec)
    }

    /// The spec as stored beside the share's rows: a restart with another spec starts the share afresh.
    pub fn fingerprint(&self) -> String {
        let every = if self.every == 1 { String::new() } else { format!(",every={}", self.every) };
        format!("files={},seed={},change={}{every}", self.files, self.seed, self.change)
    }
}

fn parse_count(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1_000),
        b'm' | b'M' => (&s[..s.len() - 1], 1_000_000),
        b'g' | b'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// The finalizer of splitmix64: a fast 64-bit mixing function.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// What a hash decides; each purpose gets its own stream.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Purpose {
    Modified = 1,
    Deleted,
    Added,
    Size,
    LargeSize,
    Times,
    Attributes,
    Permission,
    Content,
    Rename,
}

/// A virtual share: the spec and the tree shape derived from it.
#[derive(Debug)]
pub struct VirtualShare {
    pub spec: VirtualShareSpec,
    /// Directory levels below the root (0 when the files are in the root); files are at `levels + 1`.
    levels: u32,
    /// `counts[l]`: directories at level l (`counts[0] = 1`, the root); `counts[levels]` are the leaves.
    counts: Vec<u64>,
    /// Width of the digits in base file names.
    file_digits: usize,
    /// Candidate added files per leaf per generation.
    adds_per_leaf: u64,
    /// Hash thresholds (probability × 2^64).
    modify_below: u64,
    delete_below: u64,
    /// Permission keys of [`DEFAULT_SDDL`] and [`OTHER_SDDL`].
    default_key: String,
    other_key: String,
}

/// A file of a virtual share, by position: a base file (born in generation 0) or one added later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileItem {
    Base { index: u64 },
    Added { generation: u32, leaf: u64, k: u64 },
}

/// What a directory position holds.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Dir { level: u32, index: u64 },
    File(FileItem),
}

fn probability_threshold(p: f64) -> u64 {
    // Float-to-int casts saturate: p = 1 gives u64::MAX.
    (p * 18_446_744_073_709_551_616.0) as u64
}

impl VirtualShare {
    pub fn new(spec: VirtualShareSpec) -> VirtualShare {
        let mut counts_up = Vec::new(); // leaves first
        if spec.files > FANOUT {
            let mut n = spec.files.div_ceil(FANOUT);
            loop {
                counts_up.push(n);
                if n <= FANOUT {
                    break;
                }
                n = n.div_ceil(FANOUT);
            }
        }
        let levels = counts_up.len() as u32;
        let mut counts = vec![1];
        counts.extend(counts_up.iter().rev());
        let file_digits = (spec.files.saturating_sub(1).max(1).ilog10() as usize + 1).max(6);
        let adds_per_leaf = (FANOUT as f64 * spec.change).ceil() as u64;
        VirtualShare {
            levels,
            counts,
            file_digits,
            adds_per_leaf: adds_per_leaf.min(FANOUT),
            modify_below: probability_threshold(spec.change),
            delete_below: probability_threshold(spec.change / 2.0),
            default_key: permission_key(DEFAULT_SDDL),
            other_key: permission_key(OTHER_SDDL),
            spec,
        }
    }

    fn hash(&self, purpose: Purpose, id: u64, generation: u32) -> u64 {
        let mut h = mix64(self.spec.seed ^ GOLDEN);
        h = mix64(h ^ (purpose as u64).wrapping_mul(GOLDEN));
        h = mix64(h ^ id);
        mix64(h ^ (generation as u64).wrapping_add(1).wrapping_mul(GOLDEN))
    }

    // ---- FileIds ----

    fn file_id(item: FileItem) -> u64 {
        match item {
            FileItem::Base { index } => TAG_FILE | index,
            FileItem::Added { generation, leaf, k } => TAG_ADDED | (generation as u64) << 40 | leaf << 10 | k,
        }
    }

    fn dir_id(level: u32, index: u64) -> u64 {
        if level == 0 { ROOT_FILE_ID } else { TAG_DIR | (level as u64) << 48 | index }
    }

    /// The directory a FileId names: (level, index within the level).
    fn dir_of(&self, id: u64) -> Option<(u32, u64)> {
        if id == ROOT_FILE_ID {
            return Some((0, 0));
        }
        if id >> 60 != TAG_DIR >> 60 {
            return None;
        }
        let level = ((id >> 48) & 0xFFF) as u32;
        let index = id & ((1 << 48) - 1);
        (level >= 1 && level <= self.levels && index < self.counts[level as usize]).then_some((level, index))
    }

    fn file_of(&self, id: u64) -> Option<FileItem> {
        match id >> 60 {
            0xA => Some(FileItem::Base { index: id & ((1 << 60) - 1) }),
            0xB => Some(FileItem::Added {
                generation: ((id >> 40) & 0xFFFF) as u32,
                leaf: (id >> 10) & ((1 << 30) - 1),
                k: id & 0x3FF,
            }),
            _ => None,
        }
    }

    // ---- state at a generation ----

    /// Whether generation `g` changes anything (generation 0 is the initial tree).
    fn changes_in(&self, g: u32) -> bool {
        g >= 1 && g.is_multiple_of(self.spec.every)
    }

    fn birth(item: FileItem) -> u32 {
        match item {
            FileItem::Base { .. } => 0,
            FileItem::Added { generation, .. } => generation,
        }
    }

    /// The generation whose content the file has at `generation`, or `None` if it does not exist then.
    /// O(generation - birth).
    fn content_generation(&self, item: FileItem, generation: u32) -> Option<u32> {
        let birth = Self::birth(item);
        if birth > generation {
            return None;
        }
        if let FileItem::Added { generation: g, leaf, k } = item
            && (!self.changes_in(g) || self.hash(Purpose::Added, leaf << 10 | k, g) >= u64::MAX / 2)
        {
            return None;
        }
        let id = Self::file_id(item);
        let mut content = birth;
        if self.modify_below > 0 {
            for g in (birth + 1..=generation).filter(|g| self.changes_in(*g)) {
                if self.hash(Purpose::Deleted, id, g) < self.delete_below {
                    return None;
                }
                if self.hash(Purpose::Modified, id, g) < self.modify_below {
                    content = g;
                }
            }
        }
        Some(content)
    }

    fn size(&self, id: u64, content_generation: u32) -> i64 {
        let h = self.hash(Purpose::Size, id, content_generation);
        let size = if h.is_multiple_of(1000) {
            LARGE_MIN + self.hash(Purpose::LargeSize, id, content_generation) % LARGE_SPAN
        } else {
            (h / 1000) % (SMALL_MAX + 1)
        };
        size as i64
    }

    /// Expected bytes of all generation-0 files (Get Share Stats reports this estimate: the exact sum
    /// would take a pass over every file).
    pub fn usage_estimate(&self) -> i64 {
        let small = SMALL_MAX as f64 / 2.0;
        let large = LARGE_MIN as f64 + LARGE_SPAN as f64 / 2.0;
        (self.spec.files as f64 * (0.999 * small + 0.001 * large)) as i64
    }

    /// The directory renamed in `generation` (≥ 1), if the share has directories.
    fn renamed_in(&self, generation: u32) -> Option<(u32, u64)> {
        if self.levels == 0 || !self.changes_in(generation) {
            return None;
        }
        let h = self.hash(Purpose::Rename, 0, generation);
        let level = 1 + (h % self.levels as u64) as u32;
        let index = mix64(h) % self.counts[level as usize];
        Some((level, index))
    }

    /// The last generation ≤ `generation` in which the directory was renamed. O(generation).
    fn last_rename(&self, level: u32, index: u64, generation: u32) -> Option<u32> {
        (1..=generation).rev().find(|g| self.renamed_in(*g) == Some((level, index)))
    }

    fn time_offset(&self, id: u64, generation: u32, span: i64) -> i64 {
        (self.hash(Purpose::Times, id, generation) % span as u64) as i64
    }

    // ---- names and positions ----

    /// Positions in a directory: child directories, or a leaf's base files followed by the candidate
    /// added files of generations `1..=generation`.
    fn slot_count(&self, level: u32, index: u64, generation: u32) -> u64 {
        let count_below = if level < self.levels { self.counts[level as usize + 1] } else { self.spec.files };
        let first = index * FANOUT;
        let own = count_below.saturating_sub(first).min(FANOUT);
        if level < self.levels { own } else { own + generation as u64 * self.adds_per_leaf }
    }

    fn slot(&self, level: u32, index: u64, pos: u64) -> Slot {
        if level < self.levels {
            return Slot::Dir { level: level + 1, index: index * FANOUT + pos };
        }
        let base = self.spec.files.saturating_sub(index * FANOUT).min(FANOUT);
        if pos < base {
            Slot::File(FileItem::Base { index: index * FANOUT + pos })
        } else {
            let added = pos - base;
            Slot::File(FileItem::Added {
                generation: (added / self.adds_per_leaf) as u32 + 1,
                leaf: index,
                k: added % self.adds_per_leaf,
            })
        }
    }

    /// The name a position has at `generation` (whether or not a file exists there).
    fn slot_name(&self, slot: Slot, generation: u32) -> String {
        let mut name = String::with_capacity(24);
        match slot {
            Slot::Dir { level, index } => {
                let _ = write!(name, "d{:04}", index % FANOUT);
                if let Some(g) = self.last_rename(level, index, generation) {
                    let _ = write!(name, "-r{g}");
                }
            }
            Slot::File(FileItem::Base { index }) => {
                let _ = write!(name, "f{index:0width$}.dat", width = self.file_digits);
            }
            Slot::File(FileItem::Added { generation: g, k, .. }) => {
                let _ = write!(name, "g{g:05}-{k:04}.dat");
            }
        }
        name
    }

    /// The node at `slot` in `generation`, or `None` if nothing is there.
    fn slot_node(&self, parent_id: u64, slot: Slot, generation: u32) -> Option<Node> {
        let name = self.slot_name(slot, generation);
        match slot {
            Slot::Dir { level, index } => Some(self.dir_node(level, index, parent_id, name, generation)),
            Slot::File(item) => {
                let content = self.content_generation(item, generation)?;
                Some(self.file_node(item, content, parent_id, name))
            }
        }
    }

    fn dir_node(&self, level: u32, index: u64, parent_id: u64, name: String, generation: u32) -> Node {
        let id = Self::dir_id(level, index);
        let creation_time = BASE_TIME - YEAR + self.time_offset(id, 0, YEAR);
        let last_write_time = creation_time + self.time_offset(id, 1, BASE_TIME - creation_time);
        let change_time = match self.last_rename(level, index, generation) {
            Some(g) => BASE_TIME + (g as i64 - 1) * DAY + self.time_offset(id, g, DAY),
            None => last_write_time,
        };
        Node {
            file_id: id,
            parent_id,
            name,
            is_dir: true,
            attributes: ATTR_DIRECTORY,
            creation_time,
            last_write_time,
            change_time,
            last_modified: change_time,
            permission_key: self.permission_key(id),
            ..Default::default()
        }
    }

    fn file_node(&self, item: FileItem, content: u32, parent_id: u64, name: String) -> Node {
        let id = Self::file_id(item);
        let birth = Self::birth(item);
        let creation_time = if birth == 0 {
            BASE_TIME - YEAR + self.time_offset(id, 0, YEAR)
        } else {
            BASE_TIME + (birth as i64 - 1) * DAY + self.time_offset(id, birth, DAY)
        };
        let last_write_time = if content == birth {
            creation_time + self.time_offset(id, 1_000_000, BASE_TIME + birth as i64 * DAY - creation_time)
        } else {
            BASE_TIME + (content as i64 - 1) * DAY + self.time_offset(id, content, DAY)
        };
        let a = self.hash(Purpose::Attributes, id, 0) % 200;
        let attributes = ATTR_ARCHIVE
            | if a < 2 { 0x1 } else { 0 } // ReadOnly
            | if a == 2 { 0x2 } else { 0 }; // Hidden
        Node {
            file_id: id,
            parent_id,
            name,
            is_dir: false,
            size: self.size(id, content),
            attributes,
            creation_time,
            last_write_time,
            change_time: last_write_time,
            last_modified: last_write_time,
            permission_key: self.permission_key(id),
            ..Default::default()
        }
    }

    fn permission_key(&self, id: u64) -> String {
        if self.hash(Purpose::Permission, id, 0).is_multiple_of(50) {
            self.other_key.clone()
        } else {
            self.default_key.clone()
        }
    }

    // ---- what the operations call ----

    /// The root directory.
    pub fn root(&self) -> Node {
        self.dir_node(0, 0, 0, String::new(), 0)
    }

    /// The first position in a directory whose name key is ≥ `key` (binary search: names sort in
    /// position order).
    fn lower_bound(&self, level: u32, index: u64, generation: u32, key: &str) -> u64 {
        let (mut lo, mut hi) = (0, self.slot_count(level, index, generation));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let name = self.slot_name(self.slot(level, index, mid), generation);
            if super::node::name_key(&name).as_str() < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The child of `dir` named `name` (case-insensitively) at `generation`.
    pub fn child(&self, generation: u32, dir: &Node, name: &str) -> Option<Node> {
        let (level, index) = self.dir_of(dir.file_id)?;
        let key = super::node::name_key(name);
        let pos = self.lower_bound(level, index, generation, &key);
        if pos >= self.slot_count(level, index, generation) {
            return None;
        }
        let slot = self.slot(level, index, pos);
        if super::node::name_key(&self.slot_name(slot, generation)) != key {
            return None;
        }
        self.slot_node(dir.file_id, slot, generation)
    }

    /// Children of `dir` at `generation` whose name key starts with `prefix_key` and is at least
    /// `from_key`, in name-key order, at most `limit` (what `Db::children` returns for stored shares).
    pub fn children(&self, generation: u32, dir: &Node, prefix_key: &str, from_key: &str, limit: usize) -> Vec<Node> {
        let Some((level, index)) = self.dir_of(dir.file_id) else { return Vec::new() };
        let start = if from_key > prefix_key { from_key } else { prefix_key };
        let count = self.slot_count(level, index, generation);
        let mut out = Vec::new();
        let mut pos = self.lower_bound(level, index, generation, start);
        while pos < count && out.len() < limit {
            let slot = self.slot(level, index, pos);
            pos += 1;
            if !super::node::name_key(&self.slot_name(slot, generation)).starts_with(prefix_key) {
                break;
            }
            if let Some(n) = self.slot_node(dir.file_id, slot, generation) {
                out.push(n);
            }
        }
        out
    }

    /// The content of `file` (a node this share returned at `generation`) as one extent: the blob id is
    /// a hash of the content's identity, so List Ranges against an older version reports the whole file
    /// when its content changed and nothing when it did not.
    pub fn extents(&self, generation: u32, file: &Node) -> Vec<Extent> {
        match self.content_key(generation, file) {
            Some(key) if file.size > 0 => {
                vec![Extent { pos: 0, length: file.size, blob_id: (key >> 1) as i64, blob_offset: 0 }]
            }
            _ => Vec::new(),
        }
    }

    fn content_key(&self, generation: u32, file: &Node) -> Option<u64> {
        let item = self.file_of(file.file_id)?;
        let content = self.content_generation(item, generation)?;
        Some(self.hash(Purpose::Content, file.file_id, content))
    }

    /// Bytes `[start, end)` of `file` (a node this share returned at `generation`), clipped to its size:
    /// 64-bit words of a counter-based generator keyed by (seed, FileId, content generation), so any
    /// range is computed directly.
    pub fn read(&self, generation: u32, file: &Node, start: i64, end: i64) -> Vec<u8> {
        let end = end.min(file.size);
        let Some(key) = self.content_key(generation, file) else { return Vec::new() };
        if start >= end {
            return Vec::new();
        }
        let (start, end) = (start as u64, end as u64);
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut word_index = start / 8;
        let mut skip = (start % 8) as usize;
        while (out.len() as u64) < end - start {
            let word = mix64(key ^ word_index.wrapping_mul(GOLDEN)).to_le_bytes();
            let want = ((end - start) as usize - out.len()).min(8 - skip);
            out.extend_from_slice(&word[skip..skip + want]);
            skip = 0;
            word_index += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(files: u64, change: f64) -> VirtualShare {
        VirtualShare::new(VirtualShareSpec { name: "v".into(), files, seed: 7, change, every: 1 })
    }

    fn all_files(v: &VirtualShare, generation: u32) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), v.root())];
        while let Some((path, dir)) = stack.pop() {
            for n in v.children(generation, &dir, "", "", usize::MAX) {
                let p = format!("{path}/{}", n.name);
                if n.is_dir { stack.push((p, n)) } else { out.push((p, n)) }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        let s = VirtualShareSpec::parse("big=10M,seed=3,change=0.001").unwrap();
        assert_eq!((s.name.as_str(), s.files, s.seed, s.change, s.every), ("big", 10_000_000, 3, 0.001, 1));
        assert_eq!(VirtualShareSpec::parse("big=10M,change=0.001,every=2").unwrap().every, 2);
        assert_eq!(VirtualShareSpec::parse("vv1=5000").unwrap().files, 5000);
        for bad in [
            "vv1",
            "VV1=5",
            "v1=5",
            "vv1=",
            "vv1=x",
            "vv1=5,seed=-1",
            "vv1=5,change=2",
            "vv1=5,other=1",
            "vv1=99G",
            "vv1=5,every=0",
        ] {
            assert!(VirtualShareSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_nest_as_needed() {
        assert_eq!(share(1000, 0.0).levels, 0);
        assert_eq!(share(1001, 0.0).levels, 1);
        assert_eq!(share(10_000_000, 0.0).counts, vec![1, 10, 10_000]);
        let v = share(2500, 0.0);
        let files = all_files(&v, 0);
        assert_eq!(files.len(), 2500);
        assert_eq!(files[0].0, "/d0000/f000000.dat");
        assert_eq!(files[2499].0, "/d0002/f002499.dat");
        let mut ids: Vec<u64> = files.iter().map(|(_, n)| n.file_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2500);
    }

    #[test]
    fn lookups_and_pages_agree_with_the_full_listing() {
        let v = share(3000, 0.05);
        for generation in [0, 3] {
            let d1 = v.children(generation, &v.root(), "", "", 2).pop().unwrap();
            let all = v.children(generation, &d1, "", "", usize::MAX);
            let names: Vec<&str> = all.iter().map(|n| n.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_by_key(|n| super::super::node::name_key(n));
            assert_eq!(names, sorted);
            for n in &all {
                assert_eq!(v.child(generation, &d1, &n.name.to_uppercase()).unwrap().file_id, n.file_id);
            }
            // Pages of 7 resumed from the next entry's key give the same sequence.
            let mut paged = Vec::new();
            let mut from = String::new();
            loop {
                let mut page = v.children(generation, &d1, "", &from, 8);
                let next = if page.len() == 8 { page.pop() } else { None };
                paged.extend(page.into_iter().map(|n| n.name));
                match next {
                    Some(n) => from = super::super::node::name_key(&n.name),
                    None => break,
                }
            }
            assert_eq!(paged, names);
            let with_prefix = v.children(generation, &d1, "F00150", "", usize::MAX);
            assert!(with_prefix.iter().all(|n| n.name.starts_with("f00150")));
            assert_eq!(with_prefix.len(), names.iter().filter(|n| n.starts_with("f00150")).count());
        }
    }

    #[test]
    fn content_is_deterministic_and_ranged() {
        let v = share(100, 0.0);
        let f = v.children(0, &v.root(), "", "", usize::MAX).into_iter().find(|n| n.size > 100).unwrap();
        let whole = v.read(0, &f, 0, f.size);
        assert_eq!(whole.len() as i64, f.size);
        assert_eq!(v.read(0, &f, 13, 77), whole[13..77].to_vec());
        let other = VirtualShare::new(VirtualShareSpec { seed: 8, ..v.spec.clone() });
        let g = other.child(0, &other.root(), &f.name).unwrap();
        assert_ne!(other.read(0, &g, 0, g.size.min(f.size)), whole[..g.size.min(f.size) as usize].to_vec());
    }

    #[test]
    fn generations_modify_delete_add_and_rename() {
        let v = share(20_000, 0.01);
        let before = all_files(&v, 0);
        let after = all_files(&v, 1);
        let by_id = |files: &[(String, Node)]| -> std::collections::HashMap<u64, (String, Node)> {
            files.iter().map(|(p, n)| (n.file_id, (p.clone(), n.clone()))).collect()
        };
        let (b, a) = (by_id(&before), by_id(&after));
        let deleted = b.keys().filter(|id| !a.contains_key(id)).count();
        let added = a.keys().filter(|id| !b.contains_key(id)).count();
        let modified = b
            .iter()
            .filter(|(id, (_, n))| a.get(id).is_some_and(|(_, m)| m.last_write_time != n.last_write_time))
            .count();
        let moved = b.iter().filter(|(id, (p, _))| a.get(id).is_some_and(|(q, _)| q != p)).count();
        assert!((100..300).contains(&modified), "modified {modified}");
        assert!((40..170).contains(&deleted), "deleted {deleted}");
        assert!((40..170).contains(&added), "added {added}");
        assert!(moved > 0, "one directory was renamed");
        // A file's state at generation 0 is unchanged by later generations.
        assert_eq!(all_files(&v, 0).len(), before.len());
    }

    #[test]
    fn with_every_two_odd_generations_repeat_the_one_before() {
        let v = VirtualShare::new(VirtualShareSpec { every: 2, ..share(5_000, 0.01).spec });
        let listing =
            |g| all_files(&v, g).into_iter().map(|(p, n)| (p, n.file_id, n.last_write_time)).collect::<Vec<_>>();
        let (g0, g1, g2, g3) = (listing(0), listing(1), listing(2), listing(3));
        assert_eq!(g1, g0);
        assert_ne!(g2, g1);
        assert_eq!(g3, g2);
        assert_eq!(v.spec.fingerprint(), "files=5000,seed=7,change=0.01,every=2");
    }
}
