//! What the data jobs (scan, backup, restore, verify, prune, compact) carry in `jobs.payload`: the contract between
//! whoever enqueues them (`afb jobs enqueue`, the API, `afb schedule`) and the handlers that run them.
//!
//! Payloads name the tenant and share by the names the repository uses (`{tenant}/{share}/...` keys). They
//! never carry secrets: a worker resolves a share's Azure source from the share settings stored in the
//! repository's control area, and its master key from its own configuration.
//!
//! The queue's `tenant_id` column is a number (fairness and per-tenant counts); [`queue_tenant_id`] derives
//! it from the tenant's name so every enqueuer agrees without a lookup.

use serde::{Deserialize, Serialize};

pub use crate::scan::fanout::PendingDir;

pub use crate::backup::parts::{PartRange, Upload};

/// The tenant and share a data job works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRef {
    pub tenant: String,
    pub share: String,
}

/// `scan`: take a share snapshot and write an index snapshot of it. A fan-out child also names the
/// subtree it lists and the share snapshot its parent took: see [`ScanJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPayload {
    #[serde(flatten)]
    pub share: ShareRef,
}

/// What a `scan` handler reads: a [`ScanPayload`] (what enqueuers send), or the same plus `part` on the
/// children a scan or backup fans out into (only handlers create those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanJob {
    #[serde(flatten)]
    pub share: ShareRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<ScanPart>,
}

/// One child of a fanned-out scan: the directories it lists, within the run its root job started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPart {
    /// The run: `job-{root job id}-{enqueue time in µs}` (`crate::jobs::data::run_name`).
    pub run: String,
    /// The part's id in the run's tree: `r` is the root job, `r.3` its fourth child, `r.3.0` ...
    pub id: String,
    /// The Azure share name and the share snapshot the root job took.
    pub azure_share: String,
    pub share_snapshot: String,
    pub dirs: Vec<PendingDir>,
}

/// `commit`: the job that runs once all children of a fan-out succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitPayload {
    #[serde(flatten)]
    pub share: ShareRef,
    pub run: String,
    pub op: CommitOp,
    /// `backup_parts`: the upload the parts stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Upload>,
    /// `backup_parts`: every part of the upload, in node-id order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRange>,
}

impl CommitPayload {
    /// A commit of `op` with no upload (`scan`, `backup`, `join`).
    pub fn new(share: ShareRef, run: String, op: CommitOp) -> Self {
        CommitPayload { share, run, op, upload: None, parts: Vec::new() }
    }
}

/// What a commit job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOp {
    /// Merge the run's scan fragments into one index snapshot.
    Scan,
    /// The same, then back up that index snapshot.
    Backup,
    /// Nothing: stands for a child that fanned out itself, so the outer commit waits for its children.
    Join,
    /// Assemble the parts of a backup's upload (the `backup` children a `backup` commit fanned out
    /// into) into one backup snapshot.
    BackupParts,
}

/// `backup`: scan, diff against the last backup, upload what changed, commit a backup snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupPayload {
    #[serde(flatten)]
    pub share: ShareRef,
}

/// What a `backup` handler reads: a [`BackupPayload`] (what enqueuers send), or the same plus `part` on
/// the parts a backup's upload is split into (only handlers create those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupJob {
    #[serde(flatten)]
    pub share: ShareRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<BackupPart>,
}

/// One part of a backup's upload: store the nodes to read within `range` (see `crate::backup::parts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupPart {
    /// The run whose index snapshot is backed up.
    pub run: String,
    pub upload: Upload,
    pub range: PartRange,
}

/// Where a restore writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RestoreTarget {
    /// The share the backup came from.
    Original,
    /// Another share of the same tenant, by its share id in the settings store.
    Share { share: String },
    /// A directory on the worker's file system.
    Local { path: String },
}

/// `restore`: write a backup snapshot (or a subtree or one file of it) to a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorePayload {
    #[serde(flatten)]
    pub share: ShareRef,
    /// Backup snapshot id; the latest when absent.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Path below the share root; the whole share when absent.
    #[serde(default)]
    pub path: Option<String>,
    pub target: RestoreTarget,
    #[serde(default)]
    pub overwrite: bool,
}

/// `verify`: check a backup snapshot's objects; optionally read packs and compare with the live share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyPayload {
    #[serde(flatten)]
    pub share: ShareRef,
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Percentage of packs to read in full (0 = none, 100 = all).
    #[serde(default)]
    pub read_data_percent: f64,
    #[serde(default)]
    pub compare_live: bool,
}

/// `prune`: delete what no backup snapshot of the share references any more (after `forget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunePayload {
    #[serde(flatten)]
    pub share: ShareRef,
    /// Report what would be deleted; delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `compact`: merge the share's chunk index objects (one per partition) and delete node-index data
/// files no index snapshot references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactPayload {
    #[serde(flatten)]
    pub share: ShareRef,
    /// Node-index data files younger than this are kept (a scan may still be writing them). Default 3600.
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u64,
}

fn default_grace_secs() -> u64 {
    3600
}

/// The queue's numeric tenant id for a tenant name: the first 8 bytes of BLAKE3(name), as a non-negative
/// i64. Stable across processes and versions.
pub fn queue_tenant_id(tenant: &str) -> i64 {
    let h = blake3::hash(tenant.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_documented_json_shape() {
        let p = RestorePayload {
            share: ShareRef { tenant: "acme".into(), share: "docs".into() },
            snapshot: None,
            path: Some("a/b".into()),
            target: RestoreTarget::Local { path: "/tmp/x".into() },
            overwrite: false,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["target"]["kind"], "local");
        let back: RestorePayload = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        assert_eq!(queue_tenant_id("acme"), queue_tenant_id("acme"));
        assert!(queue_tenant_id("acme") >= 0);
        assert_ne!(queue_tenant_id("acme"), queue_tenant_id("acme2"));
    }
}
