//! Attribute and time conversions the backup engine shares, and a sequential scan of exactly what a
//! share client shows (used only for a backup without a share snapshot; backups of share snapshots use
//! the parallel `crate::scan::scan`, see [`super::cli::backup_from_snapshot`]). Walks with
//! `List Directories and Files` (extended info, no per-file HEAD) and commits an index snapshot.

use anyhow::Context;
use futures::StreamExt;

use crate::azure::ShareClient;
use crate::index::manifest::IndexManifest;
use crate::index::node::{Node, NodeKind, ROOT_ID, nodes_to_batch};
use crate::index::snapshot::{NodeIndex, WriteOptions};

/// `ReadOnly | Archive` → bits (unknown names are ignored; table: `crate::azure::model::SMB_ATTRIBUTES`).
pub fn parse_attributes(s: &str) -> u32 {
    crate::azure::model::parse_attributes(s).0
}

/// Bits → `ReadOnly|Archive` as Set Properties takes it (`None` for no bits).
pub fn format_attributes(bits: u32) -> String {
    crate::azure::model::request_attributes(bits)
}

/// Azure's FileId as a u64 (decimal as Azure sends it; anything else is hashed).
pub fn file_id_u64(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| u64::from_le_bytes(blake3::hash(s.as_bytes()).as_bytes()[..8].try_into().unwrap()))
}

pub fn ns(t: Option<time::OffsetDateTime>) -> i64 {
    t.map_or(0, |t| t.unix_timestamp_nanos() as i64)
}

/// Scans `share` (a client at a share snapshot, or the live share) into a new index snapshot.
pub async fn scan_share(
    share: &ShareClient,
    index: &NodeIndex,
    tenant: &str,
    share_id: &str,
) -> anyhow::Result<IndexManifest> {
    let mut idmap = index.load_idmap(tenant, share_id).await?;
    let mut nodes: Vec<Node> = Vec::new();
    let mut queue: Vec<(String, i64)> = vec![(String::new(), ROOT_ID)];
    while let Some((path, parent)) = queue.pop() {
        let dir = share.directory(&path);
        let mut list = Box::pin(dir.list());
        while let Some(entry) = list.next().await {
            let e = entry.with_context(|| format!("listing {path:?} of share {}", share.name()))?;
            let fid =
                e.file_id.as_deref().map(file_id_u64).with_context(|| format!("no FileId for {path}/{}", e.name))?;
            let node_id = idmap.assign(fid);
            let child = if path.is_empty() { e.name.clone() } else { format!("{path}/{}", e.name) };
            let kind = if e.is_dir() { NodeKind::Dir } else { NodeKind::File };
            nodes.push(Node {
                node_id,
                parent_id: parent,
                name: e.name.clone(),
                kind,
                size: e.size as i64,
                mtime: ns(e.last_write_time),
                ctime: ns(e.change_time),
                attributes: e.attributes.as_deref().map_or(0, parse_attributes) as i32,
                xorhash: 0,
            });
            if e.is_dir() {
                queue.push((child, node_id));
            }
        }
    }
    nodes.sort_by_key(|n| n.node_id);
    let mut w = index.begin(tenant, share_id, WriteOptions::default()).await?;
    for part in nodes.chunks(8192) {
        w.write(&nodes_to_batch(part)).await?;
    }
    w.commit(Some(&mut idmap)).await
}
