//! Restore a backup (whole share, a subtree or one file) to a local directory or to a share.
//!
//! Never overwrites an existing file unless asked; an existing file of the same size and QuickXorHash is
//! skipped as already restored, so an interrupted restore is resumed by running it again. Local files are
//! written to a temporary name and renamed into place, so a file is either complete or absent.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::{chunk_ids, load_versions};
use crate::azure::{NfsProperties, NodeProps, Permission, ShareClient};
use crate::hash::QuickXorHash;
use crate::repository::bundle::BundleMember;
use crate::repository::generated::{NodeKind, NodeVersion};
use crate::repository::{ChunkId, ObjectId, Repository};

/// Where to restore to.
pub enum Target {
    Local(PathBuf),
    Share(ShareClient),
}

pub struct RestoreOptions {
    /// Snapshot id; the latest when `None`.
    pub snapshot: Option<String>,
    /// A subtree or one file (path below the share root); everything when `None`.
    pub path: Option<String>,
    pub target: Target,
    pub overwrite: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreSummary {
    pub snapshot_id: String,
    pub files_restored: u64,
    pub dirs: u64,
    pub bytes_written: u64,
    /// Files already present with the same size and xorhash (a resumed restore).
    pub files_already_present: u64,
    /// Existing files left alone because `--overwrite` was not given.
    pub conflicts: Vec<String>,
    /// Files not restored because their content is damaged in the repository: `path: what is damaged`
    /// (a missing or corrupt pack or bundle). Everything else is restored.
    pub damaged: Vec<String>,
}

/// Records a file whose content could not be read from the repository because an object is missing or
/// corrupt; any other failure (the store is unreachable) is returned.
fn damaged(sum: &mut RestoreSummary, path: &str, e: anyhow::Error) -> anyhow::Result<()> {
    use crate::repository::Error as R;
    match e.downcast_ref::<R>() {
        Some(R::Missing { .. } | R::Corrupt { .. } | R::UnknownChunk { .. }) => {
            sum.damaged.push(format!("{path}: {e}"));
            Ok(())
        }
        _ => Err(e.context(format!("reading {path} from the repository"))),
    }
}

/// Paths (below the share root, `/`-separated) of every node of a backup.
pub fn paths(versions: &BTreeMap<u64, NodeVersion>) -> HashMap<u64, String> {
    fn path_of(id: u64, v: &BTreeMap<u64, NodeVersion>, memo: &mut HashMap<u64, String>) -> String {
        if let Some(p) = memo.get(&id) {
            return p.clone();
        }
        let Some(n) = v.get(&id) else { return String::new() };
        let name = n.name.clone().unwrap_or_default();
        let p = if n.parent_id == 0 || n.parent_id == id {
            name
        } else {
            format!("{}/{}", path_of(n.parent_id, v, memo), name)
        };
        memo.insert(id, p.clone());
        p
    }
    let mut memo = HashMap::new();
    for id in versions.keys() {
        path_of(*id, versions, &mut memo);
    }
    memo
}

/// Recently opened bundles (decrypted TARs), so restoring a directory of small files opens each bundle
/// once rather than once per member. Holds at most [`BundleCache::CAPACITY`] bundles (4 MiB each).
#[derive(Default)]
pub struct BundleCache {
    recent: std::collections::VecDeque<(ObjectId, std::sync::Arc<Vec<u8>>)>,
}

impl BundleCache {
    pub const CAPACITY: usize = 8;

    async fn tar(&mut self, repo: &Repository, id: &ObjectId) -> anyhow::Result<std::sync::Arc<Vec<u8>>> {
        if let Some(at) = self.recent.iter().position(|(b, _)| b == id) {
            let hit = self.recent.remove(at).unwrap();
            self.recent.push_front(hit.clone());
            return Ok(hit.1);
        }
        let tar = std::sync::Arc::new(repo.open_bundle(id).await?);
        self.recent.push_front((*id, tar.clone()));
        self.recent.truncate(Self::CAPACITY);
        Ok(tar)
    }
}

/// The bundle and member holding a small file's content; `None` for content stored in chunks.
fn bundle_ref(v: &NodeVersion) -> anyhow::Result<Option<(ObjectId, BundleMember)>> {
    let Some(b) = &v.bundle else { return Ok(None) };
    let bundle = b.bundle_id.as_deref().and_then(ObjectId::from_slice).context("bundle ref without id")?;
    let member = BundleMember {
        id: b.member.as_deref().and_then(ChunkId::from_slice).context("bundle ref without member")?,
        offset: b.offset,
        length: b.length,
    };
    Ok(Some((bundle, member)))
}

/// A file's content from its node version, opening bundles through `cache`.
pub async fn read_content_cached(
    repo: &mut Repository,
    v: &NodeVersion,
    cache: &mut BundleCache,
) -> anyhow::Result<Vec<u8>> {
    if let Some((bundle, member)) = bundle_ref(v)? {
        let tar = cache.tar(repo, &bundle).await?;
        let path = repo.scope().bundle(&bundle);
        return Ok(crate::repository::bundle::member_data(repo.key(), path.as_ref(), &tar, &member)?.to_vec());
    }
    Ok(repo.read_file(&chunk_ids(v)).await?)
}

/// A file's content from its node version.
pub async fn read_content(repo: &mut Repository, v: &NodeVersion) -> anyhow::Result<Vec<u8>> {
    if let Some((bundle, member)) = bundle_ref(v)? {
        return Ok(repo.read_bundle_member(&bundle, &member).await?);
    }
    Ok(repo.read_file(&chunk_ids(v)).await?)
}

pub fn xorhash(data: &[u8]) -> [u8; 20] {
    let mut x = QuickXorHash::new();
    x.update(data);
    x.digest()
}

fn time_of(ns: i64) -> Option<time::OffsetDateTime> {
    (ns != 0).then(|| time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128).ok()).flatten()
}

/// Resolves the snapshot to restore: the given id or the latest.
pub async fn resolve_snapshot(repo: &Repository, snapshot: Option<&str>) -> anyhow::Result<String> {
    match snapshot {
        Some(s) if s != "latest" => Ok(s.to_string()),
        _ => {
            Ok(super::latest_manifest(repo).await?.context("the repository holds no backup of this share")?.snapshot_id)
        }
    }
}

pub async fn restore(repo: &mut Repository, opts: RestoreOptions) -> anyhow::Result<RestoreSummary> {
    let snapshot_id = resolve_snapshot(repo, opts.snapshot.as_deref()).await?;
    let manifest = repo.load_manifest(&snapshot_id).await?;
    let (versions, _) = load_versions(repo, &manifest).await?;
    let paths = paths(&versions);
    let want = opts.path.as_deref().map(|p| p.trim_matches('/').to_string()).filter(|p| !p.is_empty());
    let mut selected: Vec<(&String, &NodeVersion)> = versions
        .iter()
        .map(|(id, v)| (&paths[id], v))
        .filter(|(p, _)| want.as_ref().is_none_or(|w| *p == w || p.starts_with(&format!("{w}/"))))
        .collect();
    if let Some(w) = &want {
        anyhow::ensure!(!selected.is_empty(), "{w:?} is not in backup {snapshot_id}");
        // Restore the directories leading to the subtree too.
        let mut acc = String::new();
        let parts: Vec<&str> = w.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            acc = if acc.is_empty() { part.to_string() } else { format!("{acc}/{part}") };
            if let Some((id, _)) = paths.iter().find(|(_, p)| **p == acc) {
                selected.push((&paths[id], &versions[id]));
            }
        }
    }
    // Directories first, parents before children; then files.
    selected.sort_by_key(|(p, v)| (v.kind != NodeKind::Directory, p.matches('/').count(), (*p).clone()));
    let mut sum = RestoreSummary { snapshot_id: snapshot_id.clone(), ..Default::default() };
    let mut perm_keys: HashMap<Vec<u8>, String> = HashMap::new();
    let mut dir_times: Vec<(String, NodeVersion)> = Vec::new();
    let mut bundles = BundleCache::default();
    for (path, v) in selected {
        match &opts.target {
            Target::Local(root) => {
                let dest = root.join(path);
                if v.kind == NodeKind::Directory {
                    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
                    sum.dirs += 1;
                    continue;
                }
                if let Ok(existing) = std::fs::read(&dest) {
                    if existing.len() as u64 == v.size && Some(xorhash(&existing).as_slice()) == v.xorhash.as_deref() {
                        sum.files_already_present += 1;
                        continue;
                    }
                    if !opts.overwrite {
                        sum.conflicts.push(dest.display().to_string());
                        continue;
                    }
                }
                let data = match read_content_cached(repo, v, &mut bundles).await {
                    Ok(d) => d,
                    Err(e) => {
                        damaged(&mut sum, path, e)?;
                        continue;
                    }
                };
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let tmp = dest
                    .with_file_name(format!(".{}.afb-restore", dest.file_name().unwrap_or_default().to_string_lossy()));
                std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
                if let Some(t) = time_of(v.last_write_time_ns) {
                    let f = std::fs::File::options().write(true).open(&tmp)?;
                    f.set_modified(t.into())?;
                }
                std::fs::rename(&tmp, &dest)?;
                sum.files_restored += 1;
                sum.bytes_written += data.len() as u64;
            }
            Target::Share(share) => {
                let mut props = NodeProps {
                    attributes: Some(crate::azure::model::request_attributes(v.attributes)),
                    creation_time: time_of(v.creation_time_ns),
                    last_write_time: time_of(v.last_write_time_ns),
                    change_time: time_of(v.change_time_ns),
                    nfs: NfsProperties {
                        mode: v.nfs.as_ref().map(|n| format!("{:04o}", n.mode)),
                        owner: v.nfs.as_ref().map(|n| n.owner.to_string()),
                        group: v.nfs.as_ref().map(|n| n.group.to_string()),
                    },
                    metadata: v
                        .metadata
                        .iter()
                        .flatten()
                        .filter_map(|kv| Some((kv.key.clone()?, kv.value.clone().unwrap_or_default())))
                        .collect(),
                    ..Default::default()
                };
                if let Some(pid) = &v.permission_id {
                    if !perm_keys.contains_key(pid) {
                        let id = ObjectId::from_slice(pid).context("malformed permission id")?;
                        let sddl = repo.get_permission(&id).await?;
                        perm_keys.insert(pid.clone(), share.create_permission(&sddl).await?);
                    }
                    props.permission = Some(Permission::Key(perm_keys[pid].clone()));
                }
                if v.kind == NodeKind::Directory {
                    let d = share.directory(path);
                    match d.create(&props).await {
                        Ok(_) => {}
                        Err(e) if e.code() == Some("ResourceAlreadyExists") => {
                            d.set_properties(&NodeProps { metadata: Default::default(), ..props.clone() }).await?;
                        }
                        Err(e) => return Err(e).with_context(|| format!("creating directory {path}")),
                    }
                    sum.dirs += 1;
                    dir_times.push((path.clone(), v.clone()));
                    continue;
                }
                let f = share.file(path);
                if let Ok(p) = f.properties().await {
                    if p.content_length == v.size {
                        let mut existing = Vec::new();
                        let mut s = Box::pin(f.download());
                        while let Some(b) = s.next().await {
                            existing.extend_from_slice(&b?);
                        }
                        if Some(xorhash(&existing).as_slice()) == v.xorhash.as_deref() {
                            sum.files_already_present += 1;
                            continue;
                        }
                    }
                    if !opts.overwrite {
                        sum.conflicts.push(path.clone());
                        continue;
                    }
                }
                let data = match read_content_cached(repo, v, &mut bundles).await {
                    Ok(d) => d,
                    Err(e) => {
                        damaged(&mut sum, path, e)?;
                        continue;
                    }
                };
                f.create(v.size, &props).await.with_context(|| format!("creating {path}"))?;
                let mut off = 0usize;
                while off < data.len() {
                    let end = (off + crate::azure::MAX_RANGE_BYTES as usize).min(data.len());
                    f.put_range(off as u64, Bytes::copy_from_slice(&data[off..end])).await?;
                    off = end;
                }
                // Writing content moves the times: set them (and attributes, permission) again.
                f.set_properties(&NodeProps { metadata: Default::default(), ..props }, None).await?;
                sum.files_restored += 1;
                sum.bytes_written += data.len() as u64;
            }
        }
    }
    // Directory times last (creating children changes them), deepest first.
    if let Target::Share(share) = &opts.target {
        for (path, v) in dir_times.iter().rev() {
            let props = NodeProps {
                last_write_time: time_of(v.last_write_time_ns),
                change_time: time_of(v.change_time_ns),
                creation_time: time_of(v.creation_time_ns),
                ..Default::default()
            };
            share.directory(path).set_properties(&props).await?;
        }
    }
    Ok(sum)
}
