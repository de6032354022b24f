//! The shape of a synthetic share: which directories and files exist, with names, sizes, times,
//! attributes, permissions and modes. Pure and seeded: the same spec and seed give the same plan.

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use serde::Deserialize;

/// The embedded default description (`data/sample-share.json`).
pub const SAMPLE_SPEC_JSON: &str = include_str!("../../data/sample-share.json");

/// What a generated share looks like. See `data/sample-share.json` for a documented example.
#[derive(Debug, Clone, Deserialize)]
pub struct ShareSpec {
    /// Number of files (directories come on top, about `files / files_per_directory_mean`).
    pub files: u64,
    pub files_per_directory_mean: f64,
    /// Deepest directory level below the root (the root is depth 0).
    pub max_depth: u32,
    /// File sizes are log-normal with this median (bytes) and sigma, capped at `max_file_size_bytes`.
    pub size_median_bytes: u64,
    pub size_sigma: f64,
    pub max_file_size_bytes: u64,
    pub empty_file_ratio: f64,
    /// Share of files whose content repeats an earlier file's content.
    pub duplicate_ratio: f64,
    pub unicode_name_ratio: f64,
    /// Modification times spread over this many years before the generation time.
    pub years_of_history: u32,
    pub stems: Vec<String>,
    pub unicode_stems: Vec<String>,
    pub directory_stems: Vec<String>,
    /// `(extension, weight)`.
    pub extensions: Vec<(String, u32)>,
    /// Distinct security descriptors (SDDL); each entry picks one.
    pub sddls: Vec<String>,
    /// NFS-style octal modes.
    pub nfs_modes: Vec<String>,
}

impl ShareSpec {
    /// The embedded sample description.
    pub fn sample() -> ShareSpec {
        serde_json::from_str(SAMPLE_SPEC_JSON).expect("data/sample-share.json is valid")
    }

    /// Reads a description from a JSON file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<ShareSpec> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read share spec {}: {e}", path.display()))?;
        let spec: ShareSpec = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("share spec {} is invalid: {e}", path.display()))?;
        spec.validate().map_err(|e| anyhow::anyhow!("share spec {}: {e}", path.display()))?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        if self.stems.is_empty()
            || self.directory_stems.is_empty()
            || self.extensions.is_empty()
            || self.sddls.is_empty()
            || self.nfs_modes.is_empty()
        {
            return Err("stems, directory_stems, extensions, sddls and nfs_modes must not be empty".into());
        }
        if self.files_per_directory_mean < 1.0 {
            return Err("files_per_directory_mean must be at least 1".into());
        }
        Ok(())
    }
}

/// Whether an entry is a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File,
}

/// One planned entry. Entries come parents first, so creating them in order always works.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEntry {
    /// Index of this entry in the plan; the root directory (not listed) is `u32::MAX` as a parent.
    pub index: u32,
    pub parent: Option<u32>,
    /// Path below the share root, `/`-separated, no leading slash.
    pub path: String,
    pub kind: EntryKind,
    /// Bytes (0 for directories).
    pub size: u64,
    /// Seed of the content; duplicates share the seed (and size) of an earlier file.
    pub content_seed: u64,
    /// Last-write time, seconds since the Unix epoch (UTC). Creation time is earlier or equal.
    pub mtime_unix: i64,
    pub ctime_unix: i64,
    /// Index into `ShareSpec::sddls`.
    pub sddl: usize,
    /// Index into `ShareSpec::nfs_modes`.
    pub nfs_mode: usize,
    pub read_only: bool,
    pub hidden: bool,
}

/// Plans a share: directories first in creation order (parents before children), then files.
///
/// `now_unix` anchors the modification times so that a plan is reproducible.
pub fn plan(spec: &ShareSpec, seed: u64, now_unix: i64) -> Vec<PlannedEntry> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir_count = ((spec.files as f64 / spec.files_per_directory_mean).ceil() as u64).max(1);
    let mut entries: Vec<PlannedEntry> = Vec::with_capacity((dir_count + spec.files) as usize);
    let mut depths: Vec<u32> = Vec::new();
    let mut used_names: std::collections::HashSet<(Option<u32>, String)> = std::collections::HashSet::new();
    let history = spec.years_of_history.max(1) as f64 * 365.25 * 86_400.0;

    // Directories: each attaches to an earlier directory (or the root), preferring recent and shallow
    // ones, which gives the long-tailed fan-out and moderate depth of real file servers.
    for i in 0..dir_count as u32 {
        let parent = if i < 4 || depths.is_empty() {
            None
        } else {
            let mut pick = None;
            for _ in 0..8 {
                // Bias towards later directories: project folders grow deeper over time.
                let r: f64 = rng.random();
                let candidate = ((1.0 - r * r) * depths.len() as f64) as usize;
                let candidate = candidate.min(depths.len() - 1);
                if depths[candidate] < spec.max_depth {
                    pick = Some(candidate as u32);
                    break;
                }
            }
            pick
        };
        let depth = parent.map(|p| depths[p as usize] + 1).unwrap_or(1);
        let name = unique_name(&mut used_names, parent, || dir_name(spec, &mut rng));
        let path = join(&entries, parent, &name);
        let (mtime, ctime) = times(&mut rng, now_unix, history);
        entries.push(PlannedEntry {
            index: i,
            parent,
            path,
            kind: EntryKind::Directory,
            size: 0,
            content_seed: 0,
            mtime_unix: mtime,
            ctime_unix: ctime,
            sddl: pick_sddl(spec, &mut rng),
            nfs_mode: rng.random_range(0..spec.nfs_modes.len()),
            read_only: false,
            hidden: rng.random::<f64>() < 0.01,
        });
        depths.push(depth);
    }

    // Files: assigned to directories with a Zipf-like skew so a few directories are large.
    let ext_total: u32 = spec.extensions.iter().map(|(_, w)| *w).sum();
    let mut file_indices: Vec<u32> = Vec::new();
    for _ in 0..spec.files {
        let r: f64 = rng.random();
        let dir = ((r.powf(1.6)) * dir_count as f64) as u32;
        let parent = Some(dir.min(dir_count as u32 - 1));
        let name = unique_name(&mut used_names, parent, || file_name(spec, &mut rng, ext_total));
        let index = entries.len() as u32;
        let path = join(&entries, parent, &name);
        let (mtime, ctime) = times(&mut rng, now_unix, history);
        let duplicate_of = if !file_indices.is_empty() && rng.random::<f64>() < spec.duplicate_ratio {
            Some(file_indices[rng.random_range(0..file_indices.len())])
        } else {
            None
        };
        let (size, content_seed) = match duplicate_of {
            Some(d) => (entries[d as usize].size, entries[d as usize].content_seed),
            None => (file_size(spec, &mut rng), rng.random::<u64>()),
        };
        entries.push(PlannedEntry {
            index,
            parent,
            path,
            kind: EntryKind::File,
            size,
            content_seed,
            mtime_unix: mtime,
            ctime_unix: ctime,
            sddl: pick_sddl(spec, &mut rng),
            nfs_mode: rng.random_range(0..spec.nfs_modes.len()),
            read_only: rng.random::<f64>() < 0.03,
            hidden: rng.random::<f64>() < 0.01,
        });
        file_indices.push(index);
    }
    entries
}

/// Deterministic content of `size` bytes for `seed`: text-like, so it compresses like office files do
/// (about 2-3x with zstd), not like random bytes.
pub fn content(seed: u64, size: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"the ",
        b"report ",
        b"of ",
        b"quarterly ",
        b"revenue ",
        b"and ",
        b"customer ",
        b"2024 ",
        b"total ",
        b"\n",
        b"data ",
        b"value ",
        b"; ",
        b"project ",
        b"status ",
        b"12345 ",
    ];
    let mut out = Vec::with_capacity(size as usize);
    let mut x = seed | 1;
    while (out.len() as u64) < size {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if r & 3 == 0 {
            out.extend_from_slice(&r.to_le_bytes());
        } else {
            out.extend_from_slice(WORDS[(r >> 60) as usize]);
        }
    }
    out.truncate(size as usize);
    out
}

fn unique_name(
    used: &mut std::collections::HashSet<(Option<u32>, String)>,
    parent: Option<u32>,
    mut make: impl FnMut() -> String,
) -> String {
    let base = make();
    let mut name = base.clone();
    let mut n = 1;
    // Azure names are case-insensitive: compare lowercased.
    while !used.insert((parent, name.to_lowercase())) {
        n += 1;
        name = match base.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
            _ => format!("{base} ({n})"),
        };
    }
    name
}

fn join(entries: &[PlannedEntry], parent: Option<u32>, name: &str) -> String {
    match parent {
        Some(p) => format!("{}/{name}", entries[p as usize].path),
        None => name.to_string(),
    }
}

fn dir_name(spec: &ShareSpec, rng: &mut StdRng) -> String {
    let stem = &spec.directory_stems[rng.random_range(0..spec.directory_stems.len())];
    match rng.random_range(0..4) {
        0 => stem.clone(),
        1 => format!("{stem} {}", rng.random_range(2015..2026)),
        2 => format!("{stem}_{}", spec.stems[rng.random_range(0..spec.stems.len())]),
        _ => format!("{} {stem}", spec.stems[rng.random_range(0..spec.stems.len())]),
    }
}

fn file_name(spec: &ShareSpec, rng: &mut StdRng, ext_total: u32) -> String {
    let stem = if !spec.unicode_stems.is_empty() && rng.random::<f64>() < spec.unicode_name_ratio {
        &spec.unicode_stems[rng.random_range(0..spec.unicode_stems.len())]
    } else {
        &spec.stems[rng.random_range(0..spec.stems.len())]
    };
    let second = &spec.stems[rng.random_range(0..spec.stems.len())];
    let mut pick = rng.random_range(0..ext_total.max(1));
    let mut ext = "";
    for (e, w) in &spec.extensions {
        if pick < *w {
            ext = e;
            break;
        }
        pick -= w;
    }
    match rng.random_range(0..5) {
        0 => format!("{stem}_{second}{ext}"),
        1 => format!("{stem} {}-{:02}{ext}", rng.random_range(2015..2026), rng.random_range(1..13)),
        2 => format!("{stem}-{second}-v{}{ext}", rng.random_range(1..10)),
        3 => format!("IMG_{:04}{ext}", rng.random_range(0..10_000)),
        _ => format!("{stem} {second} {}{ext}", rng.random_range(1..100)),
    }
}

fn file_size(spec: &ShareSpec, rng: &mut StdRng) -> u64 {
    if rng.random::<f64>() < spec.empty_file_ratio {
        return 0;
    }
    // Log-normal by Box-Muller.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let size = (spec.size_median_bytes as f64) * (spec.size_sigma * z).exp();
    (size as u64).clamp(1, spec.max_file_size_bytes.max(1))
}

fn times(rng: &mut StdRng, now: i64, history_secs: f64) -> (i64, i64) {
    // Recent times are more common than old ones.
    let age = history_secs * rng.random::<f64>().powi(2);
    let mtime = now - age as i64;
    let created_before = (history_secs - age) * rng.random::<f64>() * 0.2;
    (mtime, mtime - created_before as i64)
}

fn pick_sddl(spec: &ShareSpec, rng: &mut StdRng) -> usize {
    // The first descriptor dominates, as inherited ACLs do on real shares.
    if rng.random::<f64>() < 0.7 { 0 } else { rng.random_range(0..spec.sddls.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn the_same_seed_gives_the_same_share() {
        let spec = ShareSpec::sample();
        assert_eq!(plan(&spec, 42, NOW), plan(&spec, 42, NOW));
        assert_ne!(plan(&spec, 42, NOW), plan(&spec, 43, NOW));
    }

    #[test]
    fn sample_share_looks_like_a_file_server() {
        let spec = ShareSpec::sample();
        let entries = plan(&spec, 1, NOW);
        let files: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::File).collect();
        let dirs = entries.len() - files.len();
        assert_eq!(files.len() as u64, spec.files);
        assert!(dirs > 50 && dirs < 200, "about files/19 directories, got {dirs}");
        let names: Vec<&str> = entries.iter().map(|e| e.path.rsplit('/').next().unwrap()).collect();
        let mean = names.iter().map(|n| n.len()).sum::<usize>() as f64 / names.len() as f64;
        assert!((15.0..28.0).contains(&mean), "names average about 21 bytes, got {mean:.1}");
        assert!(names.iter().any(|n| !n.is_ascii()), "some names are unicode");
        let depth = entries.iter().map(|e| e.path.matches('/').count()).max().unwrap();
        assert!((3..=spec.max_depth as usize).contains(&depth), "depth {depth}");
        let mut sizes: Vec<u64> = files.iter().map(|f| f.size).collect();
        sizes.sort();
        let median = sizes[sizes.len() / 2];
        assert!(median > 4_000 && median < 64_000, "median {median}");
        assert!(sizes[sizes.len() - 1] > 50 * median, "long tail");
        let sddls: std::collections::HashSet<usize> = entries.iter().map(|e| e.sddl).collect();
        assert!(sddls.len() > 1 && sddls.len() <= spec.sddls.len());
    }

    #[test]
    fn parents_come_before_children_and_names_are_unique_per_directory() {
        let entries = plan(&ShareSpec::sample(), 5, NOW);
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            if let Some(p) = e.parent {
                assert!(p < e.index, "{} before its parent", e.path);
                assert_eq!(entries[p as usize].kind, EntryKind::Directory);
            }
            assert!(seen.insert(e.path.to_lowercase()), "duplicate path {}", e.path);
        }
    }

    #[test]
    fn content_is_deterministic_and_sized() {
        assert_eq!(content(9, 1000), content(9, 1000));
        assert_eq!(content(9, 1000).len(), 1000);
        assert_ne!(content(9, 1000), content(10, 1000));
    }
}
