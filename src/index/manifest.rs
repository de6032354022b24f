//! Snapshot manifests and the object keys of a share's index.
//!
//! Keys (all under `{tenant_id}/{share_id}/`):
//! - `index/snapshots/{snapshot_id:020}.json`: the manifest; its existence *is* the commit.
//! - `index/data/{snapshot_id:020}-{nonce}/{nodes|changed|deleted|before|after|idmap}.parquet`: data files, written
//!   before the manifest. A file no manifest references is garbage (a crashed or aborted writer) and is
//!   removed by `gc`.
//!
//! The manifest lists every file needed to read its snapshot (the base and the deltas after it, in order),
//! so a reader needs exactly one manifest.

use serde::{Deserialize, Serialize};

/// Value of [`IndexManifest::format`] for this version of the format.
pub const FORMAT: &str = "afb-index-snapshot/1";

/// One data file referenced by a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Object key relative to the repository root.
    pub key: String,
    /// Number of rows in the file.
    pub rows: u64,
    /// Size of the object in bytes.
    pub bytes: u64,
}

/// Whether a layer holds every row (`base`) or only changes since the previous snapshot (`delta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Base,
    Delta,
}

/// One layer of a snapshot: a base (all rows) or a delta on the layer before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The snapshot that wrote this layer.
    pub snapshot_id: i64,
    pub kind: LayerKind,
    /// Node rows sorted by `node_id`: every row for a base; rows added or changed for a delta.
    pub nodes: FileRef,
    /// Delta only: ids (sorted, one `node_id` column) present in the previous snapshot and gone in this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<FileRef>,
}

/// Totals over the rows of one snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// All rows (files and directories; the implicit root not counted).
    pub nodes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Sum of file sizes in bytes.
    pub bytes: u64,
}

/// The manifest of one committed snapshot of one share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexManifest {
    /// Always [`FORMAT`]; a reader rejects anything else.
    pub format: String,
    pub tenant_id: String,
    pub share_id: String,
    /// Per share, starting at 1, increasing by 1 per commit.
    pub snapshot_id: i64,
    /// When the snapshot was committed, RFC 3339 UTC.
    pub created_at: String,
    /// Layers to merge to read this snapshot: `layers[0]` is a base, the rest are deltas in order; a row's
    /// latest mention wins, and a delete in a later layer removes it.
    pub layers: Vec<Layer>,
    /// Idmap segments (FileId → node id), all of them, in the order written.
    pub idmap: Vec<FileRef>,
    /// One more than the largest node id ever assigned in this share.
    pub next_node_id: i64,
    pub totals: Totals,
    /// Where the rows came from (set by `afb scan`; absent for snapshots written otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SnapshotSource>,
    /// What changed since the previous snapshot (absent for a share's first snapshot, and for snapshots
    /// written before change records existed). Lets a diff of nearby snapshots read only the changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeRecord>,
}

/// The change from snapshot `since` to the snapshot holding this record, as two small node tables. A node
/// in `after` only was added, in `before` only was deleted, in both was changed (in some column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The snapshot compared with: always this snapshot's id minus 1.
    pub since: i64,
    /// This snapshot's rows that are new or differ from `since` in any column (node schema, sorted by
    /// `node_id`). For a delta it is the delta layer's own `nodes` file.
    pub after: FileRef,
    /// The rows of `since` for every node changed or deleted here (node schema, sorted by `node_id`).
    pub before: FileRef,
}

/// The Azure Files share snapshot a scan read: the backup engine reads content from it and asks List
/// Ranges against the previous snapshot's. Never holds secrets (no keys, no SAS tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSource {
    /// Always `azure-files` so far.
    pub kind: String,
    /// The file service endpoint, e.g. `https://acct.file.core.windows.net` (no query string).
    pub endpoint: String,
    /// The Azure share name.
    pub share: String,
    /// The share snapshot timestamp (`x-ms-snapshot`, e.g. `2026-01-02T03:04:05.0000000Z`).
    pub share_snapshot: String,
}

impl IndexManifest {
    /// The totals agree with the layers (what `count(*)` and the `snapshots` table answer from without
    /// reading rows): files plus directories are the nodes; a base alone holds exactly the nodes; with
    /// deltas, the nodes are at most every layer's rows and at least the base's rows less every deletion.
    pub fn check_totals(&self) -> anyhow::Result<()> {
        let t = &self.totals;
        if t.files.checked_add(t.dirs) != Some(t.nodes) {
            anyhow::bail!("totals: {} files + {} directories is not {} nodes", t.files, t.dirs, t.nodes);
        }
        let stored: u64 = self.layers.iter().map(|l| l.nodes.rows).fold(0, u64::saturating_add);
        let deleted: u64 =
            self.layers.iter().filter_map(|l| l.deleted.as_ref()).map(|d| d.rows).fold(0, u64::saturating_add);
        let base = self.layers.first().map_or(0, |l| l.nodes.rows);
        let fits = if self.layers.len() == 1 {
            t.nodes == base
        } else {
            t.nodes <= stored && t.nodes >= base.saturating_sub(deleted)
        };
        if !fits {
            anyhow::bail!(
                "totals: {} nodes cannot come from layers of {stored} rows with {deleted} deletions (base {base})",
                t.nodes
            );
        }
        Ok(())
    }

    /// Every data key this manifest references.
    pub fn referenced_keys(&self) -> impl Iterator<Item = &str> {
        self.layers
            .iter()
            .flat_map(|l| std::iter::once(&l.nodes).chain(l.deleted.as_ref()))
            .chain(&self.idmap)
            .chain(self.changes.iter().flat_map(|c| [&c.after, &c.before]))
            .map(|f| f.key.as_str())
    }

    /// Bytes written by this snapshot itself (its own layer, change record and idmap segment), not
    /// inherited ones. A file referenced twice (a delta's `nodes` is also its change record's `after`)
    /// counts once.
    pub fn own_bytes(&self) -> u64 {
        let prefix = format!("{}/", data_dir_prefix(&self.tenant_id, &self.share_id, self.snapshot_id));
        let mut own: Vec<&FileRef> = self
            .layers
            .iter()
            .filter(|l| l.snapshot_id == self.snapshot_id)
            .flat_map(|l| std::iter::once(&l.nodes).chain(l.deleted.as_ref()))
            .collect();
        own.extend(self.idmap.iter().filter(|f| f.key.starts_with(&prefix)));
        own.extend(self.changes.iter().flat_map(|c| [&c.after, &c.before]));
        own.sort_by(|a, b| a.key.cmp(&b.key));
        own.dedup_by(|a, b| a.key == b.key);
        own.iter().map(|f| f.bytes).sum()
    }

    /// Bytes of this snapshot's change record (`before` plus `after`, which a delta shares with its layer).
    pub fn change_record_bytes(&self) -> u64 {
        self.changes.as_ref().map_or(0, |c| c.before.bytes + c.after.bytes)
    }
}

/// `{tenant}/{share}/index`: everything of a share's index lives below this.
pub fn share_prefix(tenant: &str, share: &str) -> String {
    format!("{tenant}/{share}/index")
}

/// Key of a snapshot's manifest.
pub fn manifest_key(tenant: &str, share: &str, snapshot_id: i64) -> String {
    format!("{}/snapshots/{snapshot_id:020}.json", share_prefix(tenant, share))
}

/// Prefix of the data directories a snapshot's writers use (a nonce follows).
pub fn data_dir_prefix(tenant: &str, share: &str, snapshot_id: i64) -> String {
    format!("{}/data/{snapshot_id:020}", share_prefix(tenant, share))
}

/// Parse the snapshot id out of a manifest key's file name (`00000000000000000007.json` → 7).
pub fn snapshot_id_from_key(key: &str) -> Option<i64> {
    let file = key.rsplit('/').next()?;
    file.strip_suffix(".json")?.parse().ok()
}

/// Tenant and share ids must be usable as one object-key segment.
pub fn check_id(what: &str, id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || id.len() > 128
        || id.starts_with('.')
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        anyhow::bail!("invalid {what} id {id:?}: use 1-128 characters from A-Z a-z 0-9 - _ . (not starting with '.')");
    }
    Ok(())
}
