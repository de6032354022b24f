//! Restore a backup (whole share, a subtree or one file) to a local directory or to a share.
//!
//! Never overwrites an existing file unless asked; an existing file of the same size and QuickXorHash is
//! skipped as already restored, so an interrupted restore is resumed by running it again. Local files are
//! written to a temporary name and renamed into place, so a file is either complete or absent.
//!
//! Local writes are confined below the target root ([`super::confined`]): every path component is
//! checked with [`crate::azure::check_entry_name`] and opened relative to its parent without following
//! symlinks; an existing entry that is not a regular file is a conflict and is never read.
//!
//! Directories are made first, one at a time; then up to `requests_in_flight` files are restored at
//! once, each streamed piece by piece (a chunk, with [`CHUNKS_AHEAD`] read ahead, or one bundled small
//! file) to its temporary file or as Put Range calls of at most 4 MiB, so memory does not grow with a
//! file's size. Blob and bundle reads of all those files are in flight together and are decrypted on
//! the repository's pool (`cpu_workers`); a bundle is opened once for all its members.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::confined::{self, ConfinedRoot, Existing};
use super::{chunk_ids, load_bucket};
use crate::azure::{FileClient, NfsProperties, NodeProps, Permission, ShareClient, check_entry_name};
use crate::hash::QuickXorHash;
use crate::repository::bundle::BundleMember;
use crate::repository::generated::{NodeKind, NodeVersion};
use crate::repository::{BackupManifest, BundleCache, ChunkId, ContentReader, ObjectId, Repository};

/// Where to restore to.
pub enum Target {
    /// A root directory (created if missing): everything is written below it and nowhere else; symlinks
    /// below it are never followed ([`super::confined`]).
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
    pub concurrency: super::Concurrency,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreSummary {
    pub snapshot_id: String,
    /// The concurrency the restore was given.
    pub requests_in_flight: usize,
    pub cpu_workers: usize,
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
    /// Entries not restored because writing them would leave the target: a name that is not one safe
    /// path component (`..`, `/`, control characters: a damaged or hostile repository), or a symlink or
    /// non-directory in the way below a local root. One line each, naming the path.
    pub refused: Vec<String>,
}

/// Records an entry refused by the confinement checks ([`confined::Refused`]); any other error is returned.
fn refused(sum: &mut RestoreSummary, e: anyhow::Error) -> anyhow::Result<()> {
    if e.downcast_ref::<confined::Refused>().is_some() {
        sum.refused.push(e.to_string());
        Ok(())
    } else {
        Err(e)
    }
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

/// Paths (below the share root, `/`-separated) of every node of a backup. Iterative (any depth); a node
/// that is its own ancestor (a parent cycle, only in a damaged or hostile backup) is an error naming it.
/// A node whose parent is not in the backup is placed below the root.
pub fn paths(versions: &BTreeMap<u64, NodeVersion>) -> anyhow::Result<HashMap<u64, String>> {
    let mut out: HashMap<u64, String> = HashMap::with_capacity(versions.len());
    for &start in versions.keys() {
        // Walk up until a node whose path is known, the root, or a parent not in the backup; then build
        // the paths of the nodes walked, top down.
        let mut chain: Vec<u64> = Vec::new();
        let mut on_chain: HashSet<u64> = HashSet::new();
        let mut prefix = String::new();
        let mut id = start;
        loop {
            if let Some(p) = out.get(&id) {
                prefix = p.clone();
                break;
            }
            let Some(n) = versions.get(&id) else { break };
            anyhow::ensure!(
                on_chain.insert(id),
                "node {id} ({:?}) is its own ancestor: the backup's parent links form a cycle",
                n.name.as_deref().unwrap_or_default()
            );
            chain.push(id);
            if n.parent_id == 0 || n.parent_id == id {
                break;
            }
            id = n.parent_id;
        }
        for id in chain.into_iter().rev() {
            let name = versions[&id].name.as_deref().unwrap_or_default();
            prefix = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            out.insert(id, prefix.clone());
        }
    }
    Ok(out)
}

/// Why the name of node `v`, or of a directory above it (in `dirs`), is not one safe path component
/// ([`check_entry_name`]); `None` when every name is fine. A name holding `/` is caught here, where
/// splitting the joined path could not see it.
fn bad_name(v: &NodeVersion, dirs: &BTreeMap<u64, NodeVersion>) -> Option<String> {
    let mut n = v;
    // Ends: `paths` has refused parent cycles among the directories already.
    loop {
        let name = n.name.as_deref().unwrap_or_default();
        if let Err(why) = check_entry_name(name) {
            return Some(format!("name \"{}\": {why}", name.escape_debug()));
        }
        if n.parent_id == 0 || n.parent_id == n.node_id {
            return None;
        }
        n = dirs.get(&n.parent_id)?;
    }
}

/// Every directory of backup `m`, by node id, from one pass over its metadata buckets: with [`paths`],
/// all that restore and verify keep for the tree (one entry per directory, none per file).
pub(super) async fn directories(repo: &Repository, m: &BackupManifest) -> anyhow::Result<BTreeMap<u64, NodeVersion>> {
    let mut dirs = BTreeMap::new();
    for id in &m.metadata {
        let bucket = load_bucket(repo, id).await?;
        dirs.extend(bucket.into_iter().filter(|v| v.kind == NodeKind::Directory).map(|v| (v.node_id, v)));
    }
    Ok(dirs)
}

/// The path (below the share root) of node `v`, from the paths of the directories ([`paths`] of
/// [`directories`]): its parent's path and its name; its name alone below the root or when its parent
/// is not in the backup.
pub(super) fn path_of(dir_paths: &HashMap<u64, String>, v: &NodeVersion) -> String {
    let name = v.name.as_deref().unwrap_or_default();
    match dir_paths.get(&v.parent_id) {
        Some(dir) if v.parent_id != v.node_id && !dir.is_empty() => format!("{dir}/{name}"),
        _ => name.to_string(),
    }
}

/// QuickXorHash of a share file's content, hashed piece by piece as it downloads, never held whole.
pub(super) async fn share_file_xorhash(f: &FileClient) -> anyhow::Result<[u8; 20]> {
    let mut hasher = QuickXorHash::new();
    let mut s = Box::pin(f.download());
    while let Some(b) = s.next().await {
        hasher.update(&b?);
    }
    Ok(hasher.digest())
}

/// Whether backup `m` holds a file for which `matches` is true (one bucket in memory at a time).
async fn file_exists(
    repo: &Repository,
    m: &BackupManifest,
    matches: impl Fn(&NodeVersion) -> bool,
) -> anyhow::Result<bool> {
    for id in &m.metadata {
        if load_bucket(repo, id).await?.iter().any(|v| v.kind != NodeKind::Directory && matches(v)) {
            return Ok(true);
        }
    }
    Ok(false)
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

/// A file's content from its node version, whole in memory (small files and tests; restore streams
/// with [`ContentPieces`]).
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
    // Memory: the directories (one entry each, with their paths) and one metadata bucket at a time; files
    // stream from the buckets in node-id order, never all at once.
    let dirs = directories(repo, &manifest).await?;
    let dir_paths = paths(&dirs)?;
    let want = opts.path.as_deref().map(|p| p.trim_matches('/').to_string()).filter(|p| !p.is_empty());
    let wanted = |p: &str| want.as_ref().is_none_or(|w| p == w || p.starts_with(&format!("{w}/")));
    let mut selected_dirs: Vec<(String, NodeVersion)> = dirs
        .values()
        .filter(|v| wanted(&dir_paths[&v.node_id]))
        .map(|v| (dir_paths[&v.node_id].clone(), v.clone()))
        .collect();
    if let Some(w) = &want {
        if selected_dirs.is_empty() && !file_exists(repo, &manifest, |v| path_of(&dir_paths, v) == *w).await? {
            anyhow::bail!("{w:?} is not in backup {snapshot_id}");
        }
        // Restore the directories leading to the subtree too.
        let mut acc = String::new();
        let parts: Vec<&str> = w.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            acc = if acc.is_empty() { part.to_string() } else { format!("{acc}/{part}") };
            if let Some((id, _)) = dir_paths.iter().find(|(_, p)| **p == acc) {
                selected_dirs.push((acc.clone(), dirs[id].clone()));
            }
        }
    }
    // Directories first, parents before children; then the files, bucket by bucket.
    selected_dirs.sort_by_key(|(p, _)| (p.matches('/').count(), p.clone()));
    repo.set_cpu_workers(opts.concurrency.cpu_workers);
    let mut sum = RestoreSummary {
        snapshot_id: snapshot_id.clone(),
        requests_in_flight: opts.concurrency.requests_in_flight,
        cpu_workers: opts.concurrency.cpu_workers,
        ..Default::default()
    };
    let local_root = match &opts.target {
        Target::Local(root) => Some(ConfinedRoot::open(root)?),
        Target::Share(_) => None,
    };
    let shared = Shared {
        reader: repo.reader(),
        repo: tokio::sync::Mutex::new(repo),
        bundles: Default::default(),
        perm_keys: Default::default(),
    };
    // Directories first, parents before children, one at a time.
    let mut dir_times: Vec<(String, NodeVersion)> = Vec::new();
    for (path, v) in &selected_dirs {
        if let Some(why) = bad_name(v, &dirs) {
            sum.refused.push(format!("refusing path \"{}\": {why}", path.escape_debug()));
            continue;
        }
        match &opts.target {
            Target::Local(_) => match local_root.as_ref().expect("opened for local targets").dir(path, true) {
                Ok(_) => sum.dirs += 1,
                Err(e) => refused(&mut sum, e)?,
            },
            Target::Share(share) => {
                let props = shared.props(share, v).await?;
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
            }
        }
    }
    // Then the files, bucket by bucket, up to `requests_in_flight` of them at once.
    let sum = std::sync::Mutex::new(sum);
    let at_once = opts.concurrency.requests_in_flight.max(1);
    let mut running = futures::stream::FuturesUnordered::new();
    let mut buckets = manifest.metadata.iter();
    let mut bucket: std::vec::IntoIter<NodeVersion> = Vec::new().into_iter();
    loop {
        let Some(v) = bucket.next() else {
            let Some(id) = buckets.next() else { break };
            // Not through the repository: a running file may hold it while this task does not poll it.
            let oid = ObjectId::from_hex(id).with_context(|| format!("malformed metadata id {id}"))?;
            let mut versions = shared.reader.get_metadata(&oid).await?;
            crate::repository::metadata::group_by_bundle(&mut versions);
            bucket = versions.into_iter();
            continue;
        };
        if v.kind == NodeKind::Directory {
            continue;
        }
        let path = path_of(&dir_paths, &v);
        if !wanted(&path) {
            continue;
        }
        // Every name on the way is checked again here: a repository may hold names from older
        // versions, or be hostile.
        if let Some(why) = bad_name(&v, &dirs) {
            lock(&sum).refused.push(format!("refusing path \"{}\": {why}", path.escape_debug()));
            continue;
        }
        while running.len() >= at_once {
            running.next().await.expect("files running")?;
        }
        let (shared, sum, target, root) = (&shared, &sum, &opts.target, local_root.as_ref());
        running.push(async move {
            match target {
                Target::Local(_) => {
                    let root = root.expect("opened for local targets");
                    shared.restore_local(root, &path, &v, opts.overwrite, sum).await
                }
                Target::Share(share) => shared.restore_to_share(share, &path, &v, opts.overwrite, sum).await,
            }
        });
    }
    while let Some(done) = running.next().await {
        done?;
    }
    drop(running);
    let sum = sum.into_inner().expect("restore summary");
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

fn lock(sum: &std::sync::Mutex<RestoreSummary>) -> std::sync::MutexGuard<'_, RestoreSummary> {
    sum.lock().expect("restore summary")
}

/// Chunks of one file read ahead of its writing, at most (each at most 256 KiB with the default
/// chunking): with `requests_in_flight` files at once, a few MiB.
const CHUNKS_AHEAD: usize = 2;

/// A bundle's TAR, decrypted by the first file that needs it; the others wait for it.
type OpenedBundle = Arc<tokio::sync::OnceCell<Arc<Vec<u8>>>>;

/// What the files restored at once share (their futures are polled by the restoring task only while
/// it waits for them, so it never waits for the repository or a pool slot itself, which a parked file
/// may hold): chunk lookups through the repository (one at a time: the
/// index is the repository's), reads of blobs and bundles in flight at once with their decryption on
/// the pool ([`ContentReader`]), the last bundles opened (each opened once however many of its members
/// are restored at once), and the share's permission keys of the SDDLs restored so far.
struct Shared<'a> {
    repo: tokio::sync::Mutex<&'a mut Repository>,
    reader: ContentReader,
    bundles: std::sync::Mutex<VecDeque<(ObjectId, OpenedBundle)>>,
    perm_keys: tokio::sync::Mutex<HashMap<Vec<u8>, String>>,
}

impl Shared<'_> {
    /// Bundle `id` decrypted: opened once, then kept among the last [`BundleCache::CAPACITY`].
    async fn bundle(&self, id: ObjectId) -> anyhow::Result<Arc<Vec<u8>>> {
        let cell = {
            let mut recent = self.bundles.lock().expect("bundle cache");
            match recent.iter().find(|(b, _)| *b == id) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    recent.push_front((id, cell.clone()));
                    recent.truncate(BundleCache::CAPACITY);
                    cell
                }
            }
        };
        let tar = cell.get_or_try_init(|| async { self.reader.open_bundle(&id).await.map(Arc::new) }).await?;
        Ok(tar.clone())
    }

    /// A file's content in pieces, in order: a bundled file is one piece, a chunked file one chunk per
    /// piece with [`CHUNKS_AHEAD`] chunks read ahead. Memory stays bounded whatever the file's size.
    fn pieces<'s>(&'s self, v: &NodeVersion) -> futures::stream::BoxStream<'s, anyhow::Result<Vec<u8>>> {
        match bundle_ref(v) {
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            Ok(Some((bundle, member))) => futures::stream::once(async move {
                let tar = self.bundle(bundle).await?;
                let path = self.reader.scope().bundle(&bundle);
                let data = crate::repository::bundle::member_data(self.reader.key(), path.as_ref(), &tar, &member)?;
                Ok(data.to_vec())
            })
            .boxed(),
            Ok(None) => futures::stream::iter(chunk_ids(v))
                .map(move |id| async move {
                    let entry = self.repo.lock().await.locate_chunk(&id).await?;
                    Ok(self.reader.read_blob(&entry).await?)
                })
                .buffered(CHUNKS_AHEAD)
                .boxed(),
        }
    }

    /// Restores one file below a local root (see the module docs).
    async fn restore_local(
        &self,
        root: &ConfinedRoot,
        path: &str,
        v: &NodeVersion,
        overwrite: bool,
        sum: &std::sync::Mutex<RestoreSummary>,
    ) -> anyhow::Result<()> {
        let (dir_path, name) = path.rsplit_once('/').unwrap_or(("", path));
        let dir = match root.dir(dir_path, true) {
            Ok(d) => d,
            Err(e) => return refused(&mut lock(sum), e),
        };
        match dir.existing(name)? {
            Existing::Nothing => {}
            Existing::Other(what) => {
                lock(sum).conflicts.push(format!("{} (exists and is {what}, not a regular file)", root.display(path)));
                return Ok(());
            }
            Existing::File(size) => {
                if size == v.size && Some(dir.hash_file(name)?.0.as_slice()) == v.xorhash.as_deref() {
                    lock(sum).files_already_present += 1;
                    return Ok(());
                }
                if !overwrite {
                    lock(sum).conflicts.push(root.display(path));
                    return Ok(());
                }
            }
        }
        let mut pending = dir.create_pending(name)?;
        let mut written = 0u64;
        let mut failed = None;
        let mut pieces = self.pieces(v);
        while let Some(piece) = pieces.next().await {
            match piece {
                Ok(piece) => {
                    dir.write(&mut pending, &piece)?;
                    written += piece.len() as u64;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(pieces);
        if let Some(e) = failed {
            dir.abandon(pending);
            return damaged(&mut lock(sum), path, e);
        }
        dir.commit(pending, time_of(v.last_write_time_ns).map(Into::into))?;
        let mut s = lock(sum);
        s.files_restored += 1;
        s.bytes_written += written;
        Ok(())
    }

    /// The properties a node is created with on a share: attributes, times, NFS mode/owner/group,
    /// metadata, and its SDDL as a permission key of that share (created once per SDDL).
    async fn props(&self, share: &ShareClient, v: &NodeVersion) -> anyhow::Result<NodeProps> {
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
            let mut keys = self.perm_keys.lock().await;
            if !keys.contains_key(pid) {
                let id = ObjectId::from_slice(pid).context("malformed permission id")?;
                let sddl = self.repo.lock().await.get_permission(&id).await?;
                keys.insert(pid.clone(), share.create_permission(&sddl).await?);
            }
            props.permission = Some(Permission::Key(keys[pid].clone()));
        }
        Ok(props)
    }

    /// Restores one file to a share: created with its properties, written in Put Range calls of at most
    /// 4 MiB, its properties set again (writing moves the times).
    async fn restore_to_share(
        &self,
        share: &ShareClient,
        path: &str,
        v: &NodeVersion,
        overwrite: bool,
        sum: &std::sync::Mutex<RestoreSummary>,
    ) -> anyhow::Result<()> {
        let props = self.props(share, v).await?;
        let f = share.file(path);
        if let Ok(p) = f.properties().await {
            if p.content_length == v.size && Some(share_file_xorhash(&f).await?.as_slice()) == v.xorhash.as_deref() {
                lock(sum).files_already_present += 1;
                return Ok(());
            }
            if !overwrite {
                lock(sum).conflicts.push(path.to_string());
                return Ok(());
            }
        }
        f.create(v.size, &props).await.with_context(|| format!("creating {path}"))?;
        // Pieces are gathered into ranges of at most MAX_RANGE_BYTES, each written as it fills.
        let range_bytes = crate::azure::MAX_RANGE_BYTES as usize;
        let mut range: Vec<u8> = Vec::new();
        let mut offset = 0u64;
        let mut failed = None;
        let mut pieces = self.pieces(v);
        loop {
            let piece = match pieces.next().await.transpose() {
                Ok(p) => p,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let last = piece.is_none();
            let mut piece: &[u8] = piece.as_deref().unwrap_or_default();
            while !piece.is_empty() {
                let take = (range_bytes - range.len()).min(piece.len());
                range.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                if range.len() == range_bytes {
                    f.put_range(offset, Bytes::from(std::mem::take(&mut range))).await?;
                    offset += range_bytes as u64;
                }
            }
            if last {
                if !range.is_empty() {
                    let n = range.len() as u64;
                    f.put_range(offset, Bytes::from(std::mem::take(&mut range))).await?;
                    offset += n;
                }
                break;
            }
        }
        drop(pieces);
        if let Some(e) = failed {
            // A partial file is not left behind.
            if let Err(d) = f.delete().await {
                tracing::warn!("could not delete the partly restored {path}: {d}");
            }
            return damaged(&mut lock(sum), path, e);
        }
        // Writing content moves the times: set them (and attributes, permission) again.
        f.set_properties(&NodeProps { metadata: Default::default(), ..props }, None).await?;
        let mut s = lock(sum);
        s.files_restored += 1;
        s.bytes_written += offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, parent: u64, name: &str) -> (u64, NodeVersion) {
        (id, NodeVersion { node_id: id, parent_id: parent, name: Some(name.into()), ..Default::default() })
    }

    #[test]
    fn paths_are_built_iteratively_at_any_depth() {
        // A chain 5,000 directories deep (no recursion, so no stack to run out of).
        let depth = 5_000u64;
        let versions: BTreeMap<u64, NodeVersion> = (1..=depth).map(|id| node(id, id - 1, "d")).collect();
        let p = paths(&versions).unwrap();
        assert_eq!(p[&1], "d");
        assert_eq!(p[&3], "d/d/d");
        assert_eq!(p[&depth].len() as u64, 2 * depth - 1);
    }

    #[test]
    fn a_parent_cycle_is_an_error_naming_the_node() {
        let versions: BTreeMap<u64, NodeVersion> =
            [node(1, 0, "top"), node(5, 7, "a"), node(7, 6, "b"), node(6, 5, "c")].into_iter().collect();
        let err = paths(&versions).unwrap_err().to_string();
        assert!(err.contains("node 5") && err.contains("cycle"), "{err}");
        // Without the cycle, everything has a path; a parent missing from the backup starts at the root.
        let versions: BTreeMap<u64, NodeVersion> =
            [node(1, 0, "top"), node(2, 1, "a"), node(3, 99, "orphan")].into_iter().collect();
        let p = paths(&versions).unwrap();
        assert_eq!((p[&2].as_str(), p[&3].as_str()), ("top/a", "orphan"));
    }
}
