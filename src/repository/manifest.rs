//! Snapshot manifests: the small object written last, which makes a snapshot exist.
//!
//! Commit protocol (every commit of state is atomic): data objects first (packs, then index objects,
//! bundles, permission and metadata objects), then the manifest, created with a conditional put so it is
//! never overwritten. A reader sees a snapshot only once its manifest exists, and then every object it
//! names exists too ([`super::Repository::commit`] checks them before writing the manifest). A crash before
//! the manifest leaves only unreferenced objects, which prune may delete and a later backup may reuse.
//!
//! Object: a sealed envelope (magic `AFBS`, see [`super::crypto`]) whose plaintext is the JSON of
//! [`BackupManifest`], at `{tenant}/{share}/snapshots/{snapshot_id}`. Snapshot ids are
//! `YYYYMMDDTHHMMSSZ-xxxxxxxx` (UTC creation time, 8 random hex digits), so they list in time order. A
//! backup job derives its id instead ([`derived_snapshot_id`]: the time of the share snapshot it reads and
//! 8 hex digits of a hash of its run), so every attempt of the job commits the same id.

use std::collections::BTreeMap;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};

pub(crate) const MAGIC: &[u8; 4] = b"AFBS";
/// `BackupManifest::format` written by this code.
pub const MANIFEST_FORMAT: u32 = 1;

/// What a snapshot consists of. Object ids are 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: u32,
    pub snapshot_id: String,
    pub tenant_id: String,
    pub share_id: String,
    /// Creation time, nanoseconds since the Unix epoch, UTC.
    pub created_ns: i64,
    /// The snapshot this one was diffed against, if any.
    pub parent: Option<String>,
    /// Metadata objects holding this snapshot's node versions.
    pub metadata: Vec<String>,
    /// Permission objects the node versions refer to.
    pub permissions: Vec<String>,
    /// Bundle objects the node versions refer to.
    pub bundles: Vec<String>,
    /// What a later backup needs to reuse each metadata object without reading it: one entry per
    /// `metadata` entry, in the same order. Empty in manifests written before it existed (a backup then
    /// reads a previous object to reuse it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata_info: Vec<MetadataInfo>,
    /// Other objects of the snapshot by role, for other components (e.g. the Parquet node index):
    /// role → object key relative to `{tenant}/{share}/`.
    pub extra: BTreeMap<String, String>,
}

/// One metadata object's node ids and references (see [`BackupManifest::metadata_info`]). In a manifest
/// `R` is `u32`: a position in the manifest's `permissions` or `bundles` list; a backup collects them as
/// hex ids (`String`) before the lists are fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataInfo<R = u32> {
    /// Its first and last node id, and how many node versions it holds.
    pub first: u64,
    pub last: u64,
    pub nodes: u64,
    /// The permission objects and bundles its versions refer to, ascending, without repeats.
    pub permissions: Vec<R>,
    pub bundles: Vec<R>,
}

impl BackupManifest {
    /// An empty manifest for a new snapshot created now.
    pub fn new(tenant_id: &str, share_id: &str) -> Self {
        let created_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        Self {
            format: MANIFEST_FORMAT,
            snapshot_id: new_snapshot_id(created_ns),
            tenant_id: tenant_id.into(),
            share_id: share_id.into(),
            created_ns,
            parent: None,
            metadata: Vec::new(),
            permissions: Vec::new(),
            bundles: Vec::new(),
            metadata_info: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    pub(crate) fn from_json(object: &str, bytes: &[u8]) -> Result<Self> {
        let m: Self =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(object, format!("manifest JSON: {e}")))?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::corrupt(object, format!("unknown manifest format {}", m.format)));
        }
        m.check_metadata_info().map_err(|why| Error::corrupt(object, format!("manifest metadata_info: {why}")))?;
        Ok(m)
    }
}

impl BackupManifest {
    /// `metadata_info` is empty or describes every metadata object: node ids ascending within and across
    /// objects, at least one version and no more than its id range holds, positions inside the lists.
    fn check_metadata_info(&self) -> std::result::Result<(), String> {
        if self.metadata_info.is_empty() {
            return Ok(());
        }
        if self.metadata_info.len() != self.metadata.len() {
            return Err(format!("{} entries for {} metadata objects", self.metadata_info.len(), self.metadata.len()));
        }
        let mut after: Option<u64> = None;
        for (i, m) in self.metadata_info.iter().enumerate() {
            if m.first > m.last || m.nodes == 0 || m.nodes - 1 > m.last - m.first || after.is_some_and(|a| m.first <= a)
            {
                return Err(format!("entry {i} has node ids {}..={} and {} nodes", m.first, m.last, m.nodes));
            }
            after = Some(m.last);
            let ascending_below =
                |xs: &[u32], n: usize| xs.is_sorted_by(|a, b| a < b) && xs.iter().all(|&x| (x as usize) < n);
            if !ascending_below(&m.permissions, self.permissions.len())
                || !ascending_below(&m.bundles, self.bundles.len())
            {
                return Err(format!("entry {i} names a permission or bundle outside the manifest's lists"));
            }
        }
        Ok(())
    }
}

/// `YYYYMMDDTHHMMSSZ-xxxxxxxx` for a creation time in ns since the epoch (UTC).
pub fn new_snapshot_id(created_ns: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp_nanos(created_ns as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let suffix: u32 = rand::rng().random();
    format!("{}-{suffix:08x}", t.format(&fmt).expect("formats"))
}

/// `YYYYMMDDTHHMMSSZ-xxxxxxxx` from an Azure share-snapshot timestamp (`2026-01-02T03:04:05.0000000Z`:
/// its first 14 digits) and the first 8 hex digits of BLAKE3(`seed`). The same inputs always give the
/// same id.
pub fn derived_snapshot_id(timestamp: &str, seed: &str) -> anyhow::Result<String> {
    let digits: String = timestamp.chars().filter(char::is_ascii_digit).take(14).collect();
    anyhow::ensure!(digits.len() == 14, "share snapshot timestamp {timestamp:?} has no date and time");
    Ok(format!("{}T{}Z-{}", &digits[..8], &digits[8..], &blake3::hash(seed.as_bytes()).to_hex()[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_sort_like_created_ones() {
        let a = derived_snapshot_id("2026-01-02T03:04:05.1234567Z", "t/s/job-1").unwrap();
        assert_eq!(a, derived_snapshot_id("2026-01-02T03:04:05.1234567Z", "t/s/job-1").unwrap());
        assert!(a.starts_with("20260102T030405Z-") && a.len() == new_snapshot_id(0).len(), "{a}");
        assert_ne!(a, derived_snapshot_id("2026-01-02T03:04:05.1234567Z", "t/s/job-2").unwrap());
        assert!(derived_snapshot_id("yesterday", "x").is_err());
    }
}
