//! `afb verify`: the repository check of a backup plus agreement with its index snapshot, a sampled
//! `--read-data-subset`, and an optional compare against the live share.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{EXTRA_INDEX_SNAPSHOT, EXTRA_SKIPPED, load_bucket, restore};
use crate::azure::ShareClient;
use crate::index::NodeIndex;
use crate::index::node::{Node, NodeId, NodeKind as IndexKind};
use crate::index::node_index::Cursor;
use crate::repository::Repository;
use crate::repository::generated::{NodeKind, NodeVersion};
use crate::repository::verify::verify_snapshot;

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyOutcome {
    pub snapshot_id: String,
    pub objects_checked: u64,
    pub chunks_checked: u64,
    pub packs_read: u64,
    pub nodes_compared: u64,
    /// One line per problem: `object: message`.
    pub problems: Vec<String>,
}

pub struct VerifyOptions<'a> {
    pub snapshot: Option<String>,
    pub read_data: bool,
    /// Percentage of packs to read in full and hash (0 = none).
    pub read_data_subset: f64,
    pub index: Option<&'a NodeIndex>,
    pub compare_live: Option<ShareClient>,
}

pub async fn verify(repo: &mut Repository, opts: VerifyOptions<'_>) -> anyhow::Result<VerifyOutcome> {
    let snapshot_id = restore::resolve_snapshot(repo, opts.snapshot.as_deref()).await?;
    let report = verify_snapshot(repo, &snapshot_id, opts.read_data).await?;
    let mut out = VerifyOutcome {
        snapshot_id: snapshot_id.clone(),
        objects_checked: report.objects_checked,
        chunks_checked: report.chunks_checked,
        ..Default::default()
    };
    // One line per damaged object, however many chunks it held.
    let mut seen = BTreeSet::new();
    for p in &report.problems {
        let line = if p.object.is_empty() { p.message.clone() } else { format!("{}: {}", p.object, p.message) };
        if seen.insert(if p.object.is_empty() { line.clone() } else { p.object.clone() }) {
            out.problems.push(line);
        }
    }
    if opts.read_data_subset > 0.0 && !opts.read_data {
        // No thread-local RNG held across an await: the future stays Send (job handlers run it on workers).
        for (path, _) in repo.list_packs().await? {
            if rand::random::<f64>() * 100.0 >= opts.read_data_subset {
                continue;
            }
            out.packs_read += 1;
            if let Err(e) = repo.get_checked(&path).await {
                out.problems.push(format!("{path}: {e}"));
            }
        }
    }
    let Ok(manifest) = repo.load_manifest(&snapshot_id).await else { return Ok(out) };
    // Memory: the directories' paths (one entry per directory, never per file) and one metadata bucket
    // at a time; the index snapshot is merge-joined with the buckets in node-id order.
    // A bucket that does not load is already a problem of the repository check above.
    let Ok(dirs) = restore::directories(repo, &manifest).await else { return Ok(out) };
    let dir_paths = match restore::paths(&dirs) {
        Ok(p) => p,
        Err(e) => {
            out.problems.push(format!("{e:#}"));
            return Ok(out);
        }
    };
    drop(dirs);
    let skipped: BTreeSet<u64> =
        manifest.extra.get(EXTRA_SKIPPED).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    // The index snapshot the backup names, read in node-id order beside the buckets.
    let mut index_rows = match (opts.index, manifest.extra.get(EXTRA_INDEX_SNAPSHOT).and_then(|s| s.parse().ok())) {
        (Some(index), Some(idx)) => {
            let im = index.manifest(&manifest.tenant_id, &manifest.share_id, idx).await?;
            Some((idx, Cursor::new(index.read(&im, None)?, &format!("index snapshot {idx}"))))
        }
        _ => None,
    };
    for bucket in &manifest.metadata {
        // A bucket that does not load is already a problem of the repository check above.
        let Ok(versions) = load_bucket(repo, bucket).await else { return Ok(out) };
        for v in &versions {
            let id = v.node_id;
            // Nodes stored without their SDDL (the permission key did not resolve when they were backed up).
            if let (Some(k), None) = (&v.permission_key, &v.permission_id) {
                out.problems.push(format!(
                    "{}: no SDDL in the backup (node {id}; permission key {k} did not resolve when it was read)",
                    restore::path_of(&dir_paths, v)
                ));
            }
            // The index snapshot and the backup metadata agree.
            if let Some((idx, rows)) = &mut index_rows {
                let node = NodeId::saturating_from_u64(id);
                while let Some(n) = rows.next_node_below(Some(node)).await? {
                    not_in_backup(&mut out, *idx, &n, &skipped);
                }
                // Every row below `id` is taken: a row below `id + 1` is node `id`.
                match rows.next_node_below(Some(node.next())).await? {
                    None => {
                        out.problems.push(format!("node {id}: in the backup metadata but not in index snapshot {idx}"))
                    }
                    Some(_) if skipped.contains(&id) => {}
                    Some(n) => {
                        let kind_ok = (v.kind == NodeKind::Directory) == (n.kind == IndexKind::Dir);
                        if v.name.as_deref() != Some(n.name.as_str()) || v.parent_id != n.parent_id.as_u64() || !kind_ok
                        {
                            out.problems.push(format!(
                                "node {id}: name/parent/kind differ between index snapshot {idx} and the backup"
                            ));
                        } else if n.kind == IndexKind::File && v.size != n.size as u64 {
                            out.problems.push(format!(
                                "node {id} ({}): size {} in the index, {} in the backup",
                                n.name, n.size, v.size
                            ));
                        }
                    }
                }
            }
            if let Some(live) = &opts.compare_live
                && v.kind == NodeKind::File
            {
                compare_with_live(live, &restore::path_of(&dir_paths, v), v, &mut out).await?;
            }
        }
    }
    if let Some((idx, rows)) = &mut index_rows {
        while let Some(n) = rows.next_node_below(None).await? {
            not_in_backup(&mut out, *idx, &n, &skipped);
        }
    }
    Ok(out)
}

/// Reports index row `n` of index snapshot `idx` as missing from the backup, unless the backup skipped it.
fn not_in_backup(out: &mut VerifyOutcome, idx: i64, n: &Node, skipped: &BTreeSet<u64>) {
    if !skipped.contains(&n.node_id.as_u64()) {
        out.problems
            .push(format!("node {} ({}): in index snapshot {idx} but not in the backup metadata", n.node_id, n.name));
    }
}

/// Compares file `v` (at `path`) with the live share: present, same size, same last-write time, same
/// content (hashed piece by piece as it downloads, never held whole).
async fn compare_with_live(
    live: &ShareClient,
    path: &str,
    v: &NodeVersion,
    out: &mut VerifyOutcome,
) -> anyhow::Result<()> {
    out.nodes_compared += 1;
    let f = live.file(path);
    let p = match f.properties().await {
        Ok(p) => p,
        Err(e) => {
            out.problems.push(format!("{path}: not on the live share ({e})"));
            return Ok(());
        }
    };
    if p.content_length != v.size {
        out.problems.push(format!("{path}: size {} live, {} in the backup", p.content_length, v.size));
        return Ok(());
    }
    let lw = crate::scan::nanos(p.last_write_time);
    if lw != v.last_write_time_ns {
        out.problems
            .push(format!("{path}: last-write time differs (live {lw} ns, backup {} ns)", v.last_write_time_ns));
    }
    if Some(restore::share_file_xorhash(&f).await?.as_slice()) != v.xorhash.as_deref() {
        out.problems.push(format!("{path}: content (xorhash) differs from the backup"));
    }
    Ok(())
}
