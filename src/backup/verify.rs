//! `afb verify`: the repository check of a backup plus agreement with its index snapshot, a sampled
//! `--read-data-subset`, and an optional compare against the live share.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::Serialize;

use super::{EXTRA_INDEX_SNAPSHOT, EXTRA_SKIPPED, load_versions, restore};
use crate::azure::ShareClient;
use crate::index::node::{NodeKind as IndexKind, batch_to_nodes};
use crate::index::snapshot::NodeIndex;
use crate::repository::Repository;
use crate::repository::generated::NodeKind;
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
    let Ok((versions, _)) = load_versions(repo, &manifest).await else { return Ok(out) };
    // Nodes stored without their SDDL (the permission key did not resolve when they were backed up).
    let names = restore::paths(&versions);
    for (id, v) in &versions {
        if let (Some(k), None) = (&v.permission_key, &v.permission_id) {
            out.problems.push(format!(
                "{}: no SDDL in the backup (node {id}; permission key {k} did not resolve when it was read)",
                names[id]
            ));
        }
    }
    // The index snapshot and the backup metadata agree.
    if let Some(index) = opts.index
        && let Some(idx) = manifest.extra.get(EXTRA_INDEX_SNAPSHOT).and_then(|s| s.parse::<i64>().ok())
    {
        let skipped: BTreeSet<u64> =
            manifest.extra.get(EXTRA_SKIPPED).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let im = index.manifest(&manifest.tenant_id, &manifest.share_id, idx).await?;
        let mut in_index = BTreeSet::new();
        let mut s = index.read(&im, None)?;
        while let Some(b) = s.next().await {
            for n in batch_to_nodes(&b?) {
                let id = n.node_id as u64;
                in_index.insert(id);
                if skipped.contains(&id) {
                    continue;
                }
                match versions.get(&id) {
                    None => out.problems.push(format!(
                        "node {id} ({}): in index snapshot {idx} but not in the backup metadata",
                        n.name
                    )),
                    Some(v) => {
                        let kind_ok = (v.kind == NodeKind::Directory) == (n.kind == IndexKind::Dir);
                        if v.name.as_deref() != Some(n.name.as_str()) || v.parent_id != n.parent_id as u64 || !kind_ok {
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
        }
        for id in versions.keys().filter(|id| !in_index.contains(id)) {
            out.problems.push(format!("node {id}: in the backup metadata but not in index snapshot {idx}"));
        }
    }
    if let Some(live) = &opts.compare_live {
        let paths = names;
        let by_path: BTreeMap<&String, u64> = paths.iter().map(|(id, p)| (p, *id)).collect();
        for (path, id) in by_path {
            let v = &versions[&id];
            if v.kind != NodeKind::File {
                continue;
            }
            out.nodes_compared += 1;
            let f = live.file(path);
            let p = match f.properties().await {
                Ok(p) => p,
                Err(e) => {
                    out.problems.push(format!("{path}: not on the live share ({e})"));
                    continue;
                }
            };
            if p.content_length != v.size {
                out.problems.push(format!("{path}: size {} live, {} in the backup", p.content_length, v.size));
                continue;
            }
            let lw = super::scan::ns(p.last_write_time);
            if lw != v.last_write_time_ns {
                out.problems.push(format!(
                    "{path}: last-write time differs (live {lw} ns, backup {} ns)",
                    v.last_write_time_ns
                ));
            }
            let mut data = Vec::new();
            let mut s = Box::pin(f.download());
            while let Some(b) = s.next().await {
                data.extend_from_slice(&b?);
            }
            if Some(restore::xorhash(&data).as_slice()) != v.xorhash.as_deref() {
                out.problems.push(format!("{path}: content (xorhash) differs from the backup"));
            }
        }
    }
    Ok(out)
}
