//! Verify: check that what a snapshot refers to exists, decrypts and hashes to its id.
//!
//! [`verify_snapshot`] walks one snapshot: its manifest, every metadata object (bytes hash to the name,
//! decrypts, decodes), every permission object (decrypts, SDDL hashes to the permission id), every bundle
//! (hashes, decrypts, each referenced member hashes to its content id), and for every chunk of every file:
//! the chunk index knows it and its pack exists; with `read_data`, the blob is also read, decrypted and
//! hashed. File sizes must equal the sum of their chunk lengths.
//!
//! [`verify_packs`] reads every pack of the share: its bytes hash to its name, its header decrypts, and
//! every blob decrypts and hashes to its chunk id.
//!
//! Problems are collected, not fatal: the report names each damaged object once per finding, so a
//! repair (or a restore that skips the damage) knows exactly what is affected.

use std::collections::{HashMap, HashSet};

use object_store::ObjectStoreExt;

use super::bundle::{self, BundleMember};
use super::error::{Error, Result};
use super::id::{ChunkId, ObjectId};
use super::layout::object_id_of;
use super::pack;
use super::repo::{BundleCache, Repository};

/// One finding: the object it concerns (an object key, or a chunk id) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub object: String,
    pub message: String,
}

impl Problem {
    fn from_error(e: &Error, context: &str) -> Self {
        let object = e.object().unwrap_or("").to_string();
        let message = if context.is_empty() { e.to_string() } else { format!("{e} ({context})") };
        Self { object, message }
    }
}

/// What verify checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Objects read or checked for existence.
    pub objects_checked: u64,
    /// Chunk references resolved (and read, with `read_data`).
    pub chunks_checked: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Chunk ids verify remembers as checked (32 bytes each, about 64 MiB with the set's overhead).
pub const CHUNKS_REMEMBERED: usize = 1 << 20;

/// Verifies one snapshot of the repository's share (see the module docs).
pub async fn verify_snapshot(repo: &mut Repository, snapshot_id: &str, read_data: bool) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let manifest = match repo.load_manifest(snapshot_id).await {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(Problem::from_error(&e, "snapshot manifest"));
            return Ok(report);
        }
    };
    report.objects_checked += 1;
    let mut permissions_ok: HashMap<ObjectId, bool> = HashMap::new();
    let mut bundles = RecentBundles::default();
    let mut packs_seen: HashMap<ObjectId, bool> = HashMap::new();
    // Chunks checked recently, so a chunk many files share is checked once, not once per file; forgotten
    // when the set reaches CHUNKS_REMEMBERED, so memory stays bounded (a chunk seen again after that is
    // checked again: correct, only slower).
    let mut chunks_seen: HashSet<ChunkId> = HashSet::new();

    for id in manifest.permissions.iter().filter_map(|s| ObjectId::from_hex(s)) {
        check_permission(repo, &id, &mut permissions_ok, &mut report).await;
    }
    for meta in &manifest.metadata {
        let Some(meta_id) = ObjectId::from_hex(meta) else {
            report.problems.push(Problem { object: meta.clone(), message: "malformed metadata id in manifest".into() });
            continue;
        };
        report.objects_checked += 1;
        let versions = match repo.get_metadata(&meta_id).await {
            Ok(mut v) => {
                super::metadata::group_by_bundle(&mut v);
                v
            }
            Err(e) => {
                report.problems.push(Problem::from_error(&e, "metadata object"));
                continue;
            }
        };
        for v in versions {
            let node = format!("node {} ({:?})", v.node_id, v.name.as_deref().unwrap_or(""));
            if let Some(pid) = v.permission_id.as_deref() {
                match ObjectId::from_slice(pid) {
                    Some(pid) => check_permission(repo, &pid, &mut permissions_ok, &mut report).await,
                    None => report
                        .problems
                        .push(Problem { object: node.clone(), message: "permission id is not 32 bytes".into() }),
                }
            }
            if let Some(b) = &v.bundle {
                let (Some(bid), Some(member)) = (
                    b.bundle_id.as_deref().and_then(ObjectId::from_slice),
                    b.member.as_deref().and_then(ChunkId::from_slice),
                ) else {
                    report
                        .problems
                        .push(Problem { object: node.clone(), message: "malformed bundle reference".into() });
                    continue;
                };
                let member = BundleMember { id: member, offset: b.offset, length: b.length };
                if let Some(tar) = bundles.open(repo, &bid, &mut report).await {
                    let path = repo.scope().bundle(&bid);
                    if let Err(e) = bundle::member_data(repo.key(), path.as_ref(), &tar, &member) {
                        report.problems.push(Problem::from_error(&e, &node));
                    }
                }
            }
            let ids = v.chunk_ids.as_deref().unwrap_or_default();
            let lengths = v.chunk_lengths.as_deref().unwrap_or_default();
            if ids.len() % 32 != 0 || ids.len() / 32 != lengths.len() {
                report
                    .problems
                    .push(Problem { object: node.clone(), message: "chunk ids and lengths disagree".into() });
                continue;
            }
            if v.bundle.is_none() && lengths.iter().map(|l| *l as u64).sum::<u64>() != v.size {
                report.problems.push(Problem {
                    object: node.clone(),
                    message: "size differs from the sum of its chunk lengths".into(),
                });
            }
            for raw in ids.chunks_exact(32) {
                let id = ChunkId::from_slice(raw).unwrap();
                if chunks_seen.len() >= CHUNKS_REMEMBERED {
                    chunks_seen.clear();
                }
                if !chunks_seen.insert(id) {
                    continue;
                }
                report.chunks_checked += 1;
                check_chunk(repo, &id, read_data, &node, &mut packs_seen, &mut report).await?;
            }
        }
    }
    // Bundles the manifest lists that no node referred to: checked too, one at a time.
    for id in manifest.bundles.iter().filter_map(|s| ObjectId::from_hex(s)) {
        if !bundles.checked.contains_key(&id) {
            bundles.open(repo, &id, &mut report).await;
        }
    }
    Ok(report)
}

async fn check_permission(
    repo: &Repository,
    id: &ObjectId,
    seen: &mut HashMap<ObjectId, bool>,
    report: &mut VerifyReport,
) {
    if seen.contains_key(id) {
        return;
    }
    report.objects_checked += 1;
    let ok = match repo.get_permission(id).await {
        Ok(_) => true,
        Err(e) => {
            report.problems.push(Problem::from_error(&e, "permission object"));
            false
        }
    };
    seen.insert(*id, ok);
}

/// Bundles checked so far (whether each opened and decrypted: one bool per bundle, a bundle holding up
/// to 4 MiB of small files) and the last few opened ([`BundleCache`]).
#[derive(Default)]
struct RecentBundles {
    checked: HashMap<ObjectId, bool>,
    cache: BundleCache,
}

impl RecentBundles {
    /// Bundle `id`, decrypted; `None` if it is missing or damaged (reported once, the first time).
    async fn open(
        &mut self,
        repo: &Repository,
        id: &ObjectId,
        report: &mut VerifyReport,
    ) -> Option<std::sync::Arc<Vec<u8>>> {
        match self.checked.get(id) {
            Some(false) => return None,
            Some(true) => {}
            None => report.objects_checked += 1,
        }
        match self.cache.tar(repo, id).await {
            Ok(tar) => {
                self.checked.insert(*id, true);
                Some(tar)
            }
            Err(e) => {
                report.problems.push(Problem::from_error(&e, "bundle object"));
                self.checked.insert(*id, false);
                None
            }
        }
    }
}

async fn check_chunk(
    repo: &mut Repository,
    id: &ChunkId,
    read_data: bool,
    node: &str,
    packs: &mut HashMap<ObjectId, bool>,
    report: &mut VerifyReport,
) -> Result<()> {
    let entry = match repo.index().get(id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            let e = Error::UnknownChunk {
                chunk: id.to_hex(),
                scope: format!("{}/{}", repo.scope().tenant(), repo.scope().share()),
            };
            report.problems.push(Problem::from_error(&e, node));
            return Ok(());
        }
        Err(e) => {
            report.problems.push(Problem::from_error(&e, "chunk index"));
            return Ok(());
        }
    };
    let path = repo.scope().pack(&entry.pack);
    let exists = match packs.get(&entry.pack) {
        Some(ok) => *ok,
        None => {
            report.objects_checked += 1;
            let ok = match repo.store().head(&path).await {
                Ok(_) => true,
                Err(e) => {
                    report.problems.push(Problem::from_error(&Error::store(&path, e), "pack"));
                    false
                }
            };
            packs.insert(entry.pack, ok);
            ok
        }
    };
    if exists
        && read_data
        && let Err(e) = repo.read_blob(&entry).await
    {
        report.problems.push(Problem::from_error(&e, node));
    }
    Ok(())
}

/// Reads every pack of the repository's share (see the module docs).
pub async fn verify_packs(repo: &Repository) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for (path, _) in repo.list_packs().await? {
        report.objects_checked += 1;
        let bytes = match repo.get_checked(&path).await {
            Ok(b) => b,
            Err(e) => {
                report.problems.push(Problem::from_error(&e, "pack"));
                continue;
            }
        };
        debug_assert!(object_id_of(&path).is_some());
        let entries = match pack::read_header(repo.key(), path.as_ref(), &bytes, bytes.len() as u64) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(Problem::from_error(&e, "pack header"));
                continue;
            }
        };
        for e in entries {
            report.chunks_checked += 1;
            let blob = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            if let Err(err) = pack::open_blob(repo.key(), path.as_ref(), &e, blob) {
                report.problems.push(Problem::from_error(&err, ""));
            }
        }
    }
    Ok(report)
}
