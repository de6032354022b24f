//! The repository through a local-directory object store: round trips, deduplication scope, keys,
//! bundles, metadata, commits and verify.

use crate::support::bytes::noise;
use std::sync::Arc;

use afb::repository::bundle::BundlePolicy;
use afb::repository::chunker::Chunking;
use afb::repository::generated::{BundleRef, KeyValue, NfsAttributes, NodeKind, NodeVersion};
use afb::repository::index::{ChunkIndex, IndexConfig, rebuild_from_packs};
use afb::repository::verify::{verify_packs, verify_snapshot};
use afb::repository::{BackupManifest, Error, MasterKey, Repository, RepositoryConfig, SmallFile};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

fn store(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap())
}

/// Small chunks and packs so tests exercise many of each while staying fast.
fn small_config() -> RepositoryConfig {
    RepositoryConfig {
        chunking: Chunking::Cdc { min: 4 << 10, avg: 16 << 10, max: 64 << 10 },
        pack_target_size: 256 << 10,
        index: IndexConfig { cache_entries: 10_000, flush_entries: 1_000 },
        bundles: BundlePolicy { max_file_size: 16 << 10, min_files: 3, target_size: 64 << 10 },
    }
}

/// Tenant t1's share s1 in the repository in `dir`, with [`small_config`].
async fn open_t1_s1(dir: &tempfile::TempDir, master: &MasterKey) -> Repository {
    Repository::open(store(dir), master, "t1", "s1", small_config()).await.unwrap()
}

/// A new repository in a temporary directory under a new master key, opened at [`open_t1_s1`].
async fn fresh_t1_s1() -> (tempfile::TempDir, MasterKey, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let repo = open_t1_s1(&dir, &master).await;
    (dir, master, repo)
}

async fn object_keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let p = Path::from(prefix);
    let mut keys: Vec<String> = store.list(Some(&p)).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn file_round_trips_through_a_local_directory_store() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let data = noise(1_000_000, 1);
    let content = {
        let mut repo = open_t1_s1(&dir, &master).await;
        // Streamed in uneven pieces: the chunks must not depend on the split.
        let mut w = repo.file_writer();
        for piece in data.chunks(77_777) {
            w.write(&mut repo, piece).await.unwrap();
        }
        let content = w.finish(&mut repo).await.unwrap();
        repo.flush().await.unwrap();
        assert_eq!(content.size, data.len() as u64);
        assert_eq!(content.xorhash, afb::hash::quickxor(&data));
        let whole = repo.store_file(&data).await.unwrap();
        assert_eq!(whole.chunk_ids, content.chunk_ids, "streaming and one-shot chunking agree");
        content
    };
    // A fresh handle finds everything through the persisted index.
    let mut repo = open_t1_s1(&dir, &master).await;
    assert_eq!(repo.read_file(&content.chunk_ids).await.unwrap(), data);
    let keys = object_keys(repo.store(), "").await;
    assert!(keys.iter().all(|k| k.starts_with("t1/s1/") || k == "t1/keys/tenant.key"), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("t1/s1/packs/")));
    assert!(keys.iter().any(|k| k.starts_with("t1/s1/index/")));
}

#[tokio::test]
async fn identical_content_is_stored_once_within_a_share() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let data = noise(500_000, 2);
    let a = repo.store_file(&data).await.unwrap();
    repo.flush().await.unwrap();
    let before = repo.stats();
    let b = repo.store_file(&data).await.unwrap();
    repo.flush().await.unwrap();
    assert_eq!(a.chunk_ids, b.chunk_ids);
    let after = repo.stats();
    assert_eq!(after.chunks_new, before.chunks_new, "second copy adds no chunk");
    assert_eq!(after.packs, before.packs, "second copy adds no pack");

    // Also across handles (a later backup), through the persisted index.
    let mut later = open_t1_s1(&dir, &master).await;
    later.store_file(&data).await.unwrap();
    later.flush().await.unwrap();
    assert_eq!(later.stats().chunks_new, 0);
    assert_eq!(later.stats().objects, 0);
}

#[tokio::test]
async fn identical_content_in_two_tenants_shares_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let data = noise(300_000, 3);
    let mut t1 = Repository::open(store(&dir), &master, "tenant-a", "s", small_config()).await.unwrap();
    let mut t2 = Repository::open(store(&dir), &master, "tenant-b", "s", small_config()).await.unwrap();
    let a = t1.store_file(&data).await.unwrap();
    let b = t2.store_file(&data).await.unwrap();
    t1.flush().await.unwrap();
    t2.flush().await.unwrap();
    assert_eq!(t2.stats().chunks_new, b.chunk_ids.len() as u64, "tenant b stores all of it again");
    assert!(a.chunk_ids.iter().all(|id| !b.chunk_ids.contains(id)), "chunk ids are keyed per tenant");
    // Tenant b cannot read tenant a's chunks: its index does not know them.
    assert!(matches!(t2.read_chunk(&a.chunk_ids[0]).await, Err(Error::UnknownChunk { .. })));
    assert_eq!(t1.read_file(&a.chunk_ids).await.unwrap(), data);
    assert_eq!(t2.read_file(&b.chunk_ids).await.unwrap(), data);
}

#[tokio::test]
async fn wrong_master_key_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Repository::open(store(&dir), &MasterKey::generate(), "t1", "s1", small_config()).await.unwrap();
    let err = Repository::open(store(&dir), &MasterKey::generate(), "t1", "s1", small_config()).await.err().unwrap();
    assert!(matches!(err, Error::WrongMasterKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("wrong master key for tenant t1: t1/keys/tenant.key"), "{msg}");
}

/// Like ssh with private keys: a master key file group or others may read is refused, in one line
/// naming the path, the mode and the fix; at 0600 it reads.
#[test]
fn a_master_key_file_readable_by_group_or_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let master = MasterKey::create_file(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(MasterKey::from_file(&path).unwrap().fingerprint(), master.fingerprint());
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let msg = MasterKey::from_file(&path).err().unwrap().to_string();
        assert!(msg.contains(path.to_str().unwrap()) && msg.contains(&format!("{mode:04o}")), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
}

#[tokio::test]
async fn master_key_parses_from_hex_and_reopens_the_tenant() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let c = repo.store_file(b"hello").await.unwrap();
    repo.flush().await.unwrap();
    let again = MasterKey::from_hex(&master.to_hex()).unwrap();
    let mut repo = Repository::open(store(&dir), &again, "t1", "s1", small_config()).await.unwrap();
    assert_eq!(repo.read_file(&c.chunk_ids).await.unwrap(), b"hello");
    assert!(MasterKey::from_hex("abc").is_err());
}

#[tokio::test]
async fn invalid_tenant_or_share_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (t, s) in [("../x", "s"), ("t", "a/b"), ("", "s"), (".hidden", "s")] {
        let r = Repository::open(store(&dir), &MasterKey::generate(), t, s, small_config()).await;
        assert!(matches!(r, Err(Error::Invalid(_))), "{t:?}/{s:?}");
    }
}

/// One snapshot with a chunked file, a bundle of small files and full metadata.
async fn backup_one_snapshot(repo: &mut Repository) -> (BackupManifest, Vec<u8>, Vec<Vec<u8>>) {
    let big = noise(400_000, 9);
    let smalls: Vec<Vec<u8>> = (0..5).map(|i| format!("small file {i}\n").repeat(50 + i).into_bytes()).collect();
    let content = repo.store_file(&big).await.unwrap();
    let refs = repo.store_small_files(&smalls.iter().map(|v| &v[..]).collect::<Vec<_>>()).await.unwrap();
    let perm = repo.put_permission("O:BAG:BAD:(A;;FA;;;BA)").await.unwrap();
    let mut versions = vec![NodeVersion {
        node_id: 2,
        parent_id: 1,
        name: Some("big.bin".into()),
        kind: NodeKind::File,
        size: content.size,
        attributes: 0x20,
        creation_time_ns: 1_700_000_000_000_000_000,
        last_write_time_ns: 1_700_000_000_500_000_000,
        change_time_ns: 1_700_000_000_600_000_000,
        permission_key: Some("13873833754768004269*422081".into()),
        permission_id: Some(perm.0.to_vec()),
        nfs: Some(Box::new(NfsAttributes { mode: 0o644, owner: 1000, group: 100 })),
        metadata: Some(vec![KeyValue { key: Some("project".into()), value: Some("afb".into()) }]),
        chunk_ids: Some(content.chunk_ids.iter().flat_map(|c| c.0).collect()),
        chunk_lengths: Some(content.chunk_lengths.clone()),
        bundle: None,
        xorhash: Some(content.xorhash.to_vec()),
        symlink_target: None,
    }];
    let mut bundles = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let SmallFile::Bundle { bundle, member, xorhash } = r else { panic!("five small files are bundled") };
        bundles.push(bundle.to_hex());
        versions.push(NodeVersion {
            node_id: 10 + i as u64,
            parent_id: 1,
            name: Some(format!("small-{i}.txt")),
            size: member.length,
            permission_id: Some(perm.0.to_vec()),
            bundle: Some(Box::new(BundleRef {
                bundle_id: Some(bundle.0.to_vec()),
                member: Some(member.id.0.to_vec()),
                offset: member.offset,
                length: member.length,
            })),
            xorhash: Some(xorhash.to_vec()),
            ..Default::default()
        });
    }
    bundles.dedup();
    let meta = repo.put_metadata(versions).await.unwrap();
    let mut manifest = BackupManifest::new(repo.scope().tenant(), repo.scope().share());
    manifest.metadata.push(meta.to_hex());
    manifest.permissions.push(perm.to_hex());
    manifest.bundles = bundles;
    repo.commit(&manifest).await.unwrap();
    (manifest, big, smalls)
}

#[tokio::test]
async fn snapshot_commits_and_restores_content_metadata_and_permissions() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let (manifest, big, smalls) = backup_one_snapshot(&mut repo).await;

    let mut repo = open_t1_s1(&dir, &master).await;
    assert_eq!(repo.list_snapshots().await.unwrap(), vec![manifest.snapshot_id.clone()]);
    let loaded = repo.load_manifest(&manifest.snapshot_id).await.unwrap();
    assert_eq!(loaded, manifest);
    let versions = repo.get_metadata(&afb::repository::ObjectId::from_hex(&loaded.metadata[0]).unwrap()).await.unwrap();
    assert_eq!(versions.len(), 6);
    let file = &versions[0];
    assert_eq!(file.name.as_deref(), Some("big.bin"));
    assert_eq!(file.nfs.as_ref().unwrap().mode, 0o644);
    assert_eq!(file.xorhash.as_deref(), Some(&afb::hash::quickxor(&big)[..]));
    let ids: Vec<_> =
        file.chunk_ids.as_ref().unwrap().chunks(32).map(|c| afb::repository::ChunkId::from_slice(c).unwrap()).collect();
    assert_eq!(repo.read_file(&ids).await.unwrap(), big);
    let perm = afb::repository::ObjectId::from_slice(file.permission_id.as_ref().unwrap()).unwrap();
    assert_eq!(repo.get_permission(&perm).await.unwrap(), "O:BAG:BAD:(A;;FA;;;BA)");
    for (v, want) in versions[1..].iter().zip(&smalls) {
        let b = v.bundle.as_ref().unwrap();
        let member = afb::repository::bundle::BundleMember {
            id: afb::repository::ChunkId::from_slice(b.member.as_ref().unwrap()).unwrap(),
            offset: b.offset,
            length: b.length,
        };
        let bid = afb::repository::ObjectId::from_slice(b.bundle_id.as_ref().unwrap()).unwrap();
        assert_eq!(&repo.read_bundle_member(&bid, &member).await.unwrap(), want);
    }
    let report = verify_snapshot(&mut repo, &manifest.snapshot_id, true).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.chunks_checked >= 1 && report.objects_checked >= 4);
    assert!(verify_packs(&repo).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_manifest_naming_a_missing_object_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::open(store(&dir), &MasterKey::generate(), "t1", "s1", small_config()).await.unwrap();
    let mut m = BackupManifest::new("t1", "s1");
    m.metadata.push("ab".repeat(32));
    let err = repo.commit(&m).await.err().unwrap();
    assert!(matches!(err, Error::Missing { .. }), "{err}");
    assert!(err.to_string().contains("t1/s1/metadata/ab/abab"), "{err}");
    assert!(repo.list_snapshots().await.unwrap().is_empty());
}

async fn only_pack(repo: &Repository) -> Path {
    let packs = repo.list_packs().await.unwrap();
    assert!(!packs.is_empty());
    packs[0].0.clone()
}

#[tokio::test]
async fn missing_pack_is_reported_by_name() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let (manifest, _, _) = backup_one_snapshot(&mut repo).await;
    let pack = only_pack(&repo).await;
    repo.store().delete(&pack).await.unwrap();

    let mut repo = open_t1_s1(&dir, &master).await;
    let report = verify_snapshot(&mut repo, &manifest.snapshot_id, false).await.unwrap();
    assert!(!report.is_ok());
    assert!(report.problems.iter().all(|p| p.object == pack.as_ref()), "{:?}", report.problems);
    assert!(report.problems[0].message.starts_with(&format!("missing object {pack}")), "{:?}", report.problems);
}

#[tokio::test]
async fn corrupted_pack_is_reported_by_name_and_reads_fail_clearly() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let (manifest, big, _) = backup_one_snapshot(&mut repo).await;
    let content = repo.store_file(&big).await.unwrap(); // dedups: just gets the ids back
    // Flip one byte inside the first blob of every pack.
    for (pack, _) in repo.list_packs().await.unwrap() {
        let file = dir.path().join(pack.as_ref());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[100] ^= 0x55;
        std::fs::write(&file, bytes).unwrap();
    }
    let pack = only_pack(&repo).await;

    let mut repo = open_t1_s1(&dir, &master).await;
    let err = repo.read_file(&content.chunk_ids).await.err().unwrap();
    assert!(err.to_string().starts_with("corrupt object t1/s1/packs/"), "{err}");
    let report = verify_snapshot(&mut repo, &manifest.snapshot_id, true).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p.object == pack.as_ref() && p.message.contains("does not decrypt")),
        "{:?}",
        report.problems
    );
    let packs = verify_packs(&repo).await.unwrap();
    assert!(
        packs
            .problems
            .iter()
            .any(|p| p.object == pack.as_ref() && p.message.contains("do not hash to the object's name")),
        "{:?}",
        packs.problems
    );
}

#[tokio::test]
async fn index_rebuilt_from_packs_alone_finds_every_chunk() {
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let data = noise(700_000, 5);
    let content = repo.store_file(&data).await.unwrap();
    repo.flush().await.unwrap();
    for key in object_keys(repo.store(), "t1/s1/index").await {
        repo.store().delete(&Path::from(key)).await.unwrap();
    }
    let n = rebuild_from_packs(repo.store().clone(), repo.scope(), repo.key()).await.unwrap();
    assert_eq!(n, content.chunk_ids.len());
    let mut repo = open_t1_s1(&dir, &master).await;
    assert_eq!(repo.read_file(&content.chunk_ids).await.unwrap(), data);

    // A node index kept in the same root (`index/snapshots/...`) is not the chunk index's: a rebuild over
    // existing chunk-index objects replaces those and leaves the node index alone.
    let node_index_key = Path::from("t1/s1/index/snapshots/00000000000000000001.json");
    repo.store().put(&node_index_key, object_store::PutPayload::from_static(b"{}")).await.unwrap();
    let n = rebuild_from_packs(repo.store().clone(), repo.scope(), repo.key()).await.unwrap();
    assert_eq!(n, content.chunk_ids.len());
    assert!(repo.store().head(&node_index_key).await.is_ok(), "the rebuild deleted the node index");
    let mut repo = open_t1_s1(&dir, &master).await;
    assert_eq!(repo.read_file(&content.chunk_ids).await.unwrap(), data);
}

#[tokio::test]
async fn chunk_index_loads_only_the_partitions_it_is_asked_about_and_stays_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let mut config = small_config();
    config.index = IndexConfig { cache_entries: 200, flush_entries: 100_000 };
    let mut repo = Repository::open(store(&dir), &master, "t1", "s1", config).await.unwrap();
    // 3,000 distinct 1 KiB chunks, written in two flushes: two index objects in most of the 256 partitions.
    let mut ids = Vec::new();
    for i in 0..3000u64 {
        ids.push(repo.store_chunk(&noise(1024, 1000 + i)).await.unwrap());
        if i == 1499 {
            repo.flush().await.unwrap();
        }
    }
    repo.flush().await.unwrap();

    let mut index = ChunkIndex::new(repo.store().clone(), repo.scope().clone(), repo.key().clone(), config.index);
    assert_eq!(index.memory().partitions_loaded, 0, "nothing is loaded up front");
    let e = index.get(&ids[0]).await.unwrap().expect("known chunk");
    assert_eq!(e.id, ids[0]);
    assert_eq!(index.memory().partitions_loaded, 1);
    assert!(index.objects_read <= 2);
    // Every chunk is found, and the cache never exceeds its budget by more than one object.
    for id in &ids {
        assert!(index.get(id).await.unwrap().is_some());
        assert!(index.memory().cached_entries <= 200 + 40, "{:?}", index.memory());
    }
    let unknown = repo.key().chunk_id(b"never stored");
    assert!(index.get(&unknown).await.unwrap().is_none());
    let mem = index.memory();
    // Partitions are the ids' first bytes: 3,001 random ids miss one of the 256 about once in 500 runs.
    let partitions: std::collections::HashSet<u8> = ids.iter().chain([&unknown]).map(|id| id.0[0]).collect();
    assert_eq!(mem.partitions_loaded, partitions.len());
    assert!(mem.bloom_bytes < 3000 * 2 + 256 * 2 * 8, "{mem:?}");

    // Compaction merges each partition into one object without losing an entry.
    index.compact().await.unwrap();
    let per_partition = object_keys(repo.store(), "t1/s1/index").await.len();
    assert!(per_partition <= 256, "{per_partition}");
    let mut fresh = ChunkIndex::new(repo.store().clone(), repo.scope().clone(), repo.key().clone(), config.index);
    for id in &ids {
        assert!(fresh.get(id).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn two_small_files_go_into_packs_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::open(store(&dir), &MasterKey::generate(), "t1", "s1", small_config()).await.unwrap();
    let refs = repo.store_small_files(&[b"one", b"two"]).await.unwrap();
    assert!(refs.iter().all(|r| matches!(r, SmallFile::Chunks(_))));
    assert_eq!(repo.stats().bundles, 0);
    let refs = repo.store_small_files(&[b"one", b"two", b"three"]).await.unwrap();
    assert!(refs.iter().all(|r| matches!(r, SmallFile::Bundle { .. })));
    assert_eq!(repo.stats().bundles, 1);
}

#[tokio::test]
async fn bundle_is_a_tar_that_the_tar_command_lists_once_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::open(store(&dir), &MasterKey::generate(), "t1", "s1", small_config()).await.unwrap();
    let files: Vec<Vec<u8>> = (0..4).map(|i| format!("content {i}\n").into_bytes()).collect();
    let refs = repo.store_small_files(&files.iter().map(|f| &f[..]).collect::<Vec<_>>()).await.unwrap();
    let SmallFile::Bundle { bundle, .. } = refs[0] else { panic!() };
    let tar = repo.open_bundle(&bundle).await.unwrap();
    let path = dir.path().join("bundle.tar");
    std::fs::write(&path, &tar).unwrap();
    let out = match std::process::Command::new("tar").arg("tvf").arg(&path).output() {
        Ok(o) => o,
        Err(_) => {
            eprintln!("skipped: no tar command");
            return;
        }
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listing.lines().count(), 4, "{listing}");
    for (r, f) in refs.iter().zip(&files) {
        let SmallFile::Bundle { member, .. } = r else { panic!() };
        assert!(listing.contains(&member.id.to_hex()));
        assert_eq!(&tar[member.offset as usize..(member.offset + member.length) as usize], &f[..]);
    }
    // The stored object itself is not readable as TAR: it is encrypted.
    let stored = std::fs::read(dir.path().join(repo.scope().bundle(&bundle).as_ref())).unwrap();
    assert!(stored.windows(7).all(|w| w != b"content"));
}

/// Commits a snapshot of one chunked file; returns its manifest.
async fn commit_file(repo: &mut Repository, data: &[u8]) -> BackupManifest {
    let c = repo.store_file(data).await.unwrap();
    let v = NodeVersion {
        node_id: 2,
        parent_id: 1,
        name: Some("f.bin".into()),
        size: c.size,
        chunk_ids: Some(c.chunk_ids.iter().flat_map(|c| c.0).collect()),
        chunk_lengths: Some(c.chunk_lengths.clone()),
        xorhash: Some(c.xorhash.to_vec()),
        ..Default::default()
    };
    let meta = repo.put_metadata(vec![v]).await.unwrap();
    let mut m = BackupManifest::new(repo.scope().tenant(), repo.scope().share());
    m.metadata.push(meta.to_hex());
    repo.commit(&m).await.unwrap();
    m
}

/// The race prune must survive, made deterministic: a backup loads the chunk index (seeing a pack no
/// snapshot references), prune condemns that pack and rewrites the index, the backup then deduplicates
/// against the condemned pack and commits. Prune may not delete the pack while the backup runs, and the
/// next prune rescues it (re-indexes it) instead of deleting it.
#[tokio::test]
async fn prune_rescues_a_condemned_pack_that_a_running_backup_deduplicated_against() {
    use afb::repository::prune::{Marker, PruneOptions, prune};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let old = noise(300_000, 9);
    let kept = noise(200_000, 10);
    let mut repo = open_t1_s1(&dir, &master).await;
    let forgotten = commit_file(&mut repo, &old).await;
    let keeper = commit_file(&mut repo, &kept).await;
    repo.store().delete(&repo.scope().snapshot(&forgotten.snapshot_id)).await.unwrap();

    // The backup: marker first, then it reads the index and finds `old`'s chunks.
    let mut backup = open_t1_s1(&dir, &master).await;
    let marker = Marker::begin_backup(&backup).await.unwrap();
    let ids = repo.store_file(&old).await.unwrap().chunk_ids;
    for id in &ids {
        assert!(backup.index().get(id).await.unwrap().is_some());
    }

    let opts = PruneOptions { grace: Duration::ZERO, repack_unused: 0.0, ..Default::default() };
    let mut pruner = open_t1_s1(&dir, &master).await;
    let p1 = prune(&mut pruner, &opts).await.unwrap();
    assert!(p1.packs_unused + p1.packs_repacked >= 1, "{p1:?}");
    assert_eq!(
        (p1.packs_deleted, p1.records_pending, p1.backups_running.len()),
        (0, 1, 1),
        "nothing deleted while the backup runs: {p1:?}"
    );

    // The backup deduplicates against its (stale) view of the index and commits.
    let before = backup.stats();
    let s3 = commit_file(&mut backup, &old).await;
    assert_eq!(backup.stats().chunks_new, before.chunks_new, "deduplicated against the condemned pack");
    marker.end().await;

    let p2 = prune(&mut pruner, &opts).await.unwrap();
    assert!(p2.packs_rescued >= 1, "{p2:?}");
    assert_eq!(p2.records_pending, 0, "{p2:?}");
    for m in [&keeper, &s3] {
        let mut r = open_t1_s1(&dir, &master).await;
        let report = verify_snapshot(&mut r, &m.snapshot_id, true).await.unwrap();
        assert!(report.is_ok(), "{}: {:?}", m.snapshot_id, report.problems);
    }
    let mut r = open_t1_s1(&dir, &master).await;
    assert_eq!(r.read_file(&ids).await.unwrap(), old);
    assert!(verify_packs(&r).await.unwrap().is_ok());
}

/// Prune frees exactly what no snapshot references: an unreferenced pack is deleted whole, a partly
/// used one is rewritten, and the remaining snapshot still reads back.
#[tokio::test]
async fn prune_deletes_unused_packs_and_rewrites_partly_used_ones() {
    use afb::repository::prune::{PruneOptions, prune};
    use std::time::Duration;
    let (dir, master, mut repo) = fresh_t1_s1().await;
    let a = noise(1_000_000, 1);
    let mut b = a.clone();
    b.truncate(300_000);
    b.extend(noise(700_000, 2));
    let ma = commit_file(&mut repo, &a).await;
    let mb = commit_file(&mut repo, &b).await;
    repo.store().delete(&repo.scope().snapshot(&ma.snapshot_id)).await.unwrap();
    let dry =
        prune(&mut repo, &PruneOptions { grace: Duration::ZERO, dry_run: true, ..Default::default() }).await.unwrap();
    let content_bytes = |dir: &std::path::Path| -> u64 {
        ["packs", "metadata", "bundles"].iter().map(|k| walk_bytes(&dir.join("t1/s1").join(k))).sum()
    };
    let before = content_bytes(dir.path());
    assert!(dry.bytes_condemned > 0 && dry.packs_deleted == 0, "{dry:?}");
    let p = prune(&mut repo, &PruneOptions { grace: Duration::ZERO, ..Default::default() }).await.unwrap();
    assert!(p.packs_unused >= 1 && p.packs_deleted >= 1, "{p:?}");
    assert!(p.bytes_freed > 600_000, "most of a's unique 700 KB is freed: {p:?}");
    assert_eq!(before - content_bytes(dir.path()), p.bytes_freed as u64, "freed bytes are what the store shrank by");
    let mut r = open_t1_s1(&dir, &master).await;
    let report = verify_snapshot(&mut r, &mb.snapshot_id, true).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(verify_packs(&r).await.unwrap().is_ok());
    // A grace period keeps young objects.
    let young = prune(&mut repo, &PruneOptions::default()).await.unwrap();
    assert_eq!(young.packs_deleted + young.packs_unused, 0, "{young:?}");
}

fn walk_bytes(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| if e.path().is_dir() { walk_bytes(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_compactions_lose_no_index_entry() {
    use afb::repository::prune::compact_index;
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let mut config = small_config();
    config.index.flush_entries = 50;
    // Two writers on one share at once, each flushing its index many times.
    let write = |first: u64| {
        let (store, master) = (store(&dir), master.clone());
        async move {
            let mut repo = Repository::open(store, &master, "t1", "s1", config).await.unwrap();
            let mut ids = Vec::new();
            for i in first..first + 300 {
                ids.push(repo.store_chunk(&noise(2048, i)).await.unwrap());
                if i % 60 == 0 {
                    repo.flush().await.unwrap();
                }
            }
            repo.flush().await.unwrap();
            ids
        }
    };
    let (a, b) = tokio::join!(write(1_000), write(2_000));
    let all: Vec<_> = a.iter().chain(&b).copied().collect();
    let before = object_keys(&store(&dir), "t1/s1/index").await.len();
    assert!(before > 256, "several index objects per partition: {before}");

    // A handle that loaded its partitions before another writer indexed more still reads the new chunk.
    let mut reader = Repository::open(store(&dir), &master, "t1", "s1", config).await.unwrap();
    for id in &all {
        assert!(reader.index().get(id).await.unwrap().is_some());
    }
    let late = {
        let mut w = Repository::open(store(&dir), &master, "t1", "s1", config).await.unwrap();
        let id = w.store_chunk(&noise(2048, 9_999)).await.unwrap();
        w.flush().await.unwrap();
        id
    };
    assert_eq!(reader.read_chunk(&late).await.unwrap(), noise(2048, 9_999));

    // Two compactions at once: they exclude each other (the prune lock), or one finds nothing left to do.
    let compact = || {
        let (store, master) = (store(&dir), master.clone());
        async move {
            let mut repo = Repository::open(store, &master, "t1", "s1", config).await.unwrap();
            compact_index(&mut repo, std::time::Duration::from_secs(600)).await
        }
    };
    let (c1, c2) = tokio::join!(compact(), compact());
    for r in [&c1, &c2] {
        if let Err(e) = r {
            assert!(e.to_string().contains("another prune or index compaction"), "{e}");
        }
    }
    assert!(c1.is_ok() || c2.is_ok());
    // Two concurrent merges without the lock (ChunkIndex::compact directly) are safe too.
    let direct = || {
        let (store, master) = (store(&dir), master.clone());
        async move {
            let repo = Repository::open(store.clone(), &master, "t1", "s1", config).await.unwrap();
            ChunkIndex::new(store, repo.scope().clone(), repo.key().clone(), config.index).compact().await
        }
    };
    let w = write(3_000);
    let (x, y, more) = tokio::join!(direct(), direct(), w);
    x.unwrap();
    y.unwrap();
    assert!(object_keys(&store(&dir), "t1/s1/locks").await.is_empty(), "no lock left");
    let mut fresh = ChunkIndex::new(store(&dir), reader.scope().clone(), reader.key().clone(), config.index);
    for id in all.iter().chain(&more).chain([&late]) {
        assert!(fresh.get(id).await.unwrap().is_some(), "chunk {id} lost");
    }
}

/// Commits a snapshot of one large file and `smalls` small files in a bundle (unless fewer than 3).
async fn commit_with_bundle(repo: &mut Repository, big: &[u8], smalls: &[Vec<u8>]) -> BackupManifest {
    let c = repo.store_file(big).await.unwrap();
    let mut versions = vec![NodeVersion {
        node_id: 2,
        parent_id: 1,
        name: Some("f.bin".into()),
        size: c.size,
        chunk_ids: Some(c.chunk_ids.iter().flat_map(|c| c.0).collect()),
        chunk_lengths: Some(c.chunk_lengths.clone()),
        ..Default::default()
    }];
    let mut m = BackupManifest::new(repo.scope().tenant(), repo.scope().share());
    let refs = repo.store_small_files(&smalls.iter().map(|v| &v[..]).collect::<Vec<_>>()).await.unwrap();
    for (i, r) in refs.iter().enumerate() {
        let SmallFile::Bundle { bundle, member, .. } = r else { panic!("small files are bundled") };
        m.bundles.push(bundle.to_hex());
        versions.push(NodeVersion {
            node_id: 10 + i as u64,
            parent_id: 1,
            size: member.length,
            bundle: Some(Box::new(BundleRef {
                bundle_id: Some(bundle.0.to_vec()),
                member: Some(member.id.0.to_vec()),
                offset: member.offset,
                length: member.length,
            })),
            ..Default::default()
        });
    }
    m.bundles.dedup();
    m.metadata.push(repo.put_metadata(versions).await.unwrap().to_hex());
    repo.commit(&m).await.unwrap();
    m
}

/// Prune's live sets spill to disk under a small memory budget: a prune with a budget that forces many
/// sorted runs deletes exactly the objects a prune with the default budget deletes from an identical copy
/// of the repository, reports the same counts, and leaves every kept snapshot restorable.
#[tokio::test]
async fn prune_under_a_tiny_memory_budget_frees_exactly_what_a_large_one_frees() {
    use afb::repository::prune::{PruneOptions, prune};
    use std::time::Duration;
    let (dir, master, mut repo) = fresh_t1_s1().await;
    // Six snapshots sharing parts of their content; three are forgotten.
    let base = noise(600_000, 100);
    let mut kept = Vec::new();
    for i in 0..6u64 {
        let mut big = base[..200_000 + 50_000 * i as usize].to_vec();
        big.extend(noise(150_000, 200 + i));
        let smalls: Vec<Vec<u8>> = (0..4).map(|j| format!("small {i} {j}\n").repeat(20).into_bytes()).collect();
        let m = commit_with_bundle(&mut repo, &big, &smalls).await;
        if i % 2 == 0 {
            repo.store().delete(&repo.scope().snapshot(&m.snapshot_id)).await.unwrap();
        } else {
            kept.push((m.snapshot_id.clone(), big));
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let keys = |d: std::path::PathBuf| {
        let mut out = std::collections::BTreeSet::new();
        let mut stack = vec![d.clone()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.insert(e.path().strip_prefix(&d).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out
    };
    let before = keys(dir.path().join("t1/s1"));
    assert_eq!(before, keys(copy.path().join("t1/s1")));
    let opts = |memory: u64| PruneOptions { grace: Duration::ZERO, memory, ..Default::default() };
    let large = prune(&mut repo, &opts(1 << 30)).await.unwrap();
    let mut small_repo = Repository::open(store(&copy), &master, "t1", "s1", small_config()).await.unwrap();
    let small = prune(&mut small_repo, &opts(1)).await.unwrap();
    assert_eq!(large.sets_spilled, 0, "{large:?}");
    assert_eq!(small.sets_spilled, 4, "every set spilled: {small:?}");
    let counts = |r: &afb::repository::prune::PruneReport| {
        [
            r.snapshots,
            r.packs,
            r.referenced_chunks,
            r.packs_unused,
            r.packs_repacked,
            r.packs_written,
            r.objects_unused,
            r.packs_deleted,
            r.objects_deleted,
            r.packs_rescued,
            r.objects_rescued,
            r.records_pending,
            r.bytes_condemned as usize,
            r.bytes_written as usize,
            r.bytes_deleted as usize,
        ]
    };
    assert_eq!(counts(&large), counts(&small), "{large:?}\n{small:?}");
    assert!(large.packs_deleted >= 1 && large.packs_repacked >= 1 && large.objects_deleted >= 6, "{large:?}");
    let gone = |d: std::path::PathBuf| -> Vec<String> { before.difference(&keys(d)).cloned().collect() };
    let (gone_large, gone_small) = (gone(dir.path().join("t1/s1")), gone(copy.path().join("t1/s1")));
    assert_eq!(gone_large.iter().filter(|k| !k.starts_with("index/")).cloned().collect::<Vec<_>>(), {
        gone_small.iter().filter(|k| !k.starts_with("index/")).cloned().collect::<Vec<_>>()
    });
    assert!(
        gone_large.iter().any(|k| k.starts_with("bundles/")) && gone_large.iter().any(|k| k.starts_with("metadata/"))
    );
    for d in [&dir, &copy] {
        let mut r = Repository::open(store(d), &master, "t1", "s1", small_config()).await.unwrap();
        for (id, big) in &kept {
            let report = verify_snapshot(&mut r, id, true).await.unwrap();
            assert!(report.is_ok(), "{id}: {:?}", report.problems);
            let m = r.load_manifest(id).await.unwrap();
            let v = r.get_metadata(&afb::repository::ObjectId::from_hex(&m.metadata[0]).unwrap()).await.unwrap();
            let ids: Vec<afb::repository::ChunkId> = v[0]
                .chunk_ids
                .as_deref()
                .unwrap()
                .chunks_exact(32)
                .map(|c| afb::repository::ChunkId::from_slice(c).unwrap())
                .collect();
            assert_eq!(&r.read_file(&ids).await.unwrap(), big);
        }
        assert!(verify_packs(&r).await.unwrap().is_ok());
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Not a test: builds a repository for `scripts/prune_rss.sh` to measure prune's peak memory on.
/// `AFB_BENCH_DIR` (created), `AFB_BENCH_CHUNKS` chunks (tiny, distinct, in 16 KiB packs: about 340 per
/// pack), 8 per file, 4,096 files per metadata object; snapshot 1 refers to all of them, snapshot 2 to
/// the first 60%; snapshot 1 is then forgotten. The master key goes to `$AFB_BENCH_DIR.key`.
#[tokio::test]
#[ignore]
async fn prune_bench_repository() {
    let dir = std::path::PathBuf::from(std::env::var("AFB_BENCH_DIR").expect("AFB_BENCH_DIR"));
    let n: u64 = std::env::var("AFB_BENCH_CHUNKS").expect("AFB_BENCH_CHUNKS").parse().unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let master = MasterKey::generate();
    let key_file = dir.with_extension("key");
    std::fs::write(&key_file, master.to_hex()).unwrap();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&dir).unwrap());
    let config = RepositoryConfig {
        pack_target_size: 16 << 10,
        index: IndexConfig { cache_entries: 1 << 16, flush_entries: 1 << 17 },
        ..Default::default()
    };
    let mut repo = Repository::open(store, &master, "t1", "s1", config).await.unwrap();
    let mut first = BackupManifest::new("t1", "s1");
    let mut second = BackupManifest::new("t1", "s1");
    let mut versions = Vec::new();
    let mut chunk_ids = Vec::new();
    for i in 0..n {
        chunk_ids.extend(repo.store_chunk(&i.to_le_bytes()).await.unwrap().0);
        if chunk_ids.len() == 8 * 32 || i + 1 == n {
            let node_id = versions.len() as u64 + 2 + 4096 * (first.metadata.len() as u64);
            versions.push(NodeVersion {
                node_id,
                parent_id: 1,
                size: 8 * (chunk_ids.len() as u64 / 32),
                chunk_lengths: Some(vec![8; chunk_ids.len() / 32]),
                chunk_ids: Some(std::mem::take(&mut chunk_ids)),
                ..Default::default()
            });
        }
        if versions.len() == 4096 || (i + 1 == n && !versions.is_empty()) {
            let id = repo.put_metadata(std::mem::take(&mut versions)).await.unwrap().to_hex();
            if (i + 1) * 10 <= n * 6 {
                second.metadata.push(id.clone());
            }
            first.metadata.push(id);
        }
    }
    repo.commit(&first).await.unwrap();
    repo.commit(&second).await.unwrap();
    repo.store().delete(&repo.scope().snapshot(&first.snapshot_id)).await.unwrap();
    println!("{} chunks, {} metadata objects in {}", n, first.metadata.len(), dir.display());
}

/// A spill directory without room (here: a process limit on file size, so no root is needed to fill a
/// disk) stops prune with one error line naming the directory and the size of the run it could not
/// write, and nothing of the repository changes.
#[tokio::test]
async fn prune_whose_spill_directory_has_no_room_fails_in_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    let master = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&repo_dir).unwrap());
    let mut repo = Repository::open(store, &master, "t1", "s1", small_config()).await.unwrap();
    for i in 0..4u64 {
        let m = commit_with_bundle(&mut repo, &noise(400_000, 300 + i), &[]).await;
        if i % 2 == 0 {
            repo.store().delete(&repo.scope().snapshot(&m.snapshot_id)).await.unwrap();
        }
    }
    let files = |d: &std::path::Path| {
        let mut out = Vec::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push((e.path(), std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, master.to_hex()).unwrap();
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let spill = tempfile::tempdir().unwrap();
    let before = files(&repo_dir);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_afb"));
    cmd.args(["prune", "--tenant", "t1", "--share", "s1", "--grace-secs", "0", "--memory", "15KiB"])
        .arg("--repo")
        .arg(&repo_dir)
        .arg("--master-key-file")
        .arg(&key_file)
        .arg("--spill-dir")
        .arg(spill.path());
    // A run of 20 chunk ids is 640 bytes; markers and the lock are smaller than 512.
    crate::support::limit_file_size(&mut cmd, 512);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let shown = format!("spill directory {}: writing a sorted run of at most 640 bytes failed", spill.path().display());
    assert!(lines[0].starts_with("afb: error: ") && lines[0].contains(&shown), "{stderr}");
    assert_eq!(files(&repo_dir), before, "nothing changed, the prune lock is gone");
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0, "no spill file is left");
}
