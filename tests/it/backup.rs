//! Backup, restore, verify and forget end to end against the in-process emulator and a tempdir
//! repository. Test names read as specifications.

use crate::support::bytes::printable;
use crate::support::tree::read_tree;
use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use afb::azure::credential::AccountConfig;
use afb::azure::{ClientOptions, FileServiceClient, NodeProps, Permission, ShareClient};
use afb::backup::cli::{backup_from_snapshot, backup_share};
use afb::backup::forget::{Policy, select};
use afb::backup::restore::{RestoreOptions, Target, restore};
use afb::backup::verify::{VerifyOptions, verify};
use afb::backup::{BackupInput, NoProgress, find_previous, run};
use afb::emulator::{Emulator, faults::FaultConfig};
use afb::index::NodeIndex;
use afb::repository::{MasterKey, Repository, RepositoryConfig};
use anyhow::{Result, ensure};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};

const SDDL: &str = "O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)";

struct Env {
    _dir: tempfile::TempDir,
    emulator: Option<Emulator>,
    svc: FileServiceClient,
    share: ShareClient,
    repo_dir: std::path::PathBuf,
    master: MasterKey,
    index: NodeIndex,
}

impl Env {
    async fn new(faults: FaultConfig) -> Result<Env> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("emu"))?;
        let emulator = crate::support::emulator(&dir.path().join("emu"), faults);
        let cfg = AccountConfig::from_connection_string(&emulator.connection_string())?;
        let svc = FileServiceClient::new(cfg, ClientOptions::default())?;
        let share = svc.share("src");
        let repo_dir = dir.path().join("repo");
        std::fs::create_dir_all(&repo_dir)?;
        let index = NodeIndex::open(repo_dir.to_str().unwrap())?;
        Ok(Env { _dir: dir, emulator: Some(emulator), svc, share, repo_dir, master: MasterKey::generate(), index })
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(&self.repo_dir).unwrap())
    }

    async fn repo(&self) -> Result<Repository> {
        Ok(Repository::open(self.store(), &self.master, "t1", "s1", RepositoryConfig::default()).await?)
    }

    async fn shutdown(mut self) {
        if let Some(e) = self.emulator.take() {
            e.shutdown().await;
        }
    }
}

/// Scans the live share (no share snapshot) into index snapshots of t1/s1, as a backup of a share that
/// cannot snapshot does.
async fn scan_live(env: &Env) -> Result<afb::index::manifest::IndexManifest> {
    let opts = afb::scan::ScanOptions { live: true, index_share: Some("s1".into()), ..Default::default() };
    let share = &env.share;
    let report = afb::scan::scan(
        share.account_config().clone(),
        share.client_options().clone(),
        share.name(),
        &env.index,
        "t1",
        &opts,
    )
    .await?;
    Ok(report.manifest.expect("a committed scan has a manifest"))
}

/// Backs up the live share as index snapshot `current` lists it (no share snapshot), diffed against the
/// latest backup: what a backup does when the share changes between its scan and its reads.
async fn back_up_live(
    env: &Env,
    repo: &mut Repository,
    current: afb::index::manifest::IndexManifest,
) -> Result<afb::backup::BackupSummary> {
    let previous = find_previous(repo, &env.index).await?;
    let input = BackupInput {
        share: env.share.clone(),
        share_snapshot: None,
        index: &env.index,
        current,
        previous,
        progress: &NoProgress,
        concurrency: Default::default(),
    };
    run(repo, input).await
}

/// A small share: a bundle-sized directory, a nested one, a 3 MB file, a top-level file.
async fn fill(share: &ShareClient) -> Result<BTreeMap<String, Vec<u8>>> {
    share.create().await?;
    let key = share.create_permission(SDDL).await?;
    let mut files = BTreeMap::new();
    for d in ["docs", "docs/sub", "big", "empty"] {
        share
            .directory(d)
            .create(&NodeProps { permission: Some(Permission::Key(key.clone())), ..Default::default() })
            .await?;
    }
    for i in 0..6u64 {
        files.insert(format!("docs/note{i}.txt"), printable(1000 + 5000 * i as usize, i));
    }
    files.insert("docs/sub/a.txt".into(), printable(20_000, 100));
    files.insert("docs/sub/b.bin".into(), printable(300_000, 101));
    files.insert("big/disk.img".into(), printable(3 << 20, 102));
    files.insert("top.txt".into(), printable(10, 103));
    files.insert("zero.txt".into(), Vec::new());
    for (p, d) in &files {
        let props = NodeProps {
            permission: Some(Permission::Key(key.clone())),
            attributes: Some("Archive|ReadOnly".into()),
            metadata: [("owner".to_string(), "alice".to_string())].into(),
            ..Default::default()
        };
        share.file(p).upload(Bytes::from(d.clone()), &props).await?;
    }
    Ok(files)
}

async fn download(share: &ShareClient, path: &str) -> Result<Vec<u8>> {
    let chunks: Vec<Bytes> = share.file(path).download().try_collect().await?;
    Ok(chunks.concat())
}

/// Every file below `dir`: (path, size in bytes).
fn walk_files(dir: &FsPath) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path())
            } else {
                out.push((e.path().to_string_lossy().into_owned(), md.len()))
            }
        }
    }
    out
}

/// Restore options for the latest snapshot, the whole share, into `dir`, not overwriting.
fn whole_to(dir: &FsPath) -> RestoreOptions {
    whole(local(dir))
}

/// Restore the latest snapshot, whole, to `target`, without overwriting.
fn whole(target: Target) -> RestoreOptions {
    RestoreOptions { snapshot: None, path: None, target, overwrite: false, concurrency: Default::default() }
}

/// The common start: a share filled by [`fill`] and its (empty) repository; with the files.
async fn filled() -> Result<(Env, BTreeMap<String, Vec<u8>>, Repository)> {
    let env = Env::new(FaultConfig::default()).await?;
    let files = fill(&env.share).await?;
    let repo = env.repo().await?;
    Ok((env, files, repo))
}

/// [`filled`], then one backup of the share.
async fn backed_up() -> Result<(Env, BTreeMap<String, Vec<u8>>, Repository)> {
    let (env, files, mut repo) = filled().await?;
    backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    Ok((env, files, repo))
}

/// Restores the latest snapshot, whole, into a new temporary directory and reads the tree back.
async fn restore_latest(repo: &mut Repository) -> Result<BTreeMap<String, Vec<u8>>> {
    let out = tempfile::tempdir()?;
    restore(repo, whole_to(out.path())).await?;
    Ok(read_tree(out.path()))
}

fn local(dir: &FsPath) -> Target {
    Target::Local(dir.to_path_buf())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_backup_then_restore_to_local_dir_is_byte_identical() -> Result<()> {
    let (env, files, mut repo) = filled().await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_new == files.len() as u64 && s.files_unchanged == 0, "{s:?}");
    ensure!(s.bytes_read == files.values().map(|d| d.len() as u64).sum::<u64>(), "{s:?}");
    ensure!(s.skipped.is_empty() && s.warnings.is_empty(), "{s:?}");
    let m = repo.load_manifest(&s.snapshot_id).await?;
    ensure!(m.bundles.len() == 1 && m.permissions.len() == 1, "small files of docs/ are bundled, one SDDL: {m:?}");
    // What a first backup uploads includes its bundles (and its packs' sealed blobs).
    let objects = walk_files(&env.repo_dir);
    let bytes_in = |dir: &str| objects.iter().filter(|(p, _)| p.contains(dir)).map(|(_, n)| n).sum::<u64>();
    let (bundle_bytes, pack_bytes) = (bytes_in("/bundles/"), bytes_in("/packs/"));
    // Packs hold sealed blobs plus a small header and index each, so the blobs alone stay below the packs.
    ensure!(
        bundle_bytes > 0 && s.bytes_uploaded > pack_bytes && s.bytes_uploaded <= pack_bytes + bundle_bytes,
        "uploaded {} bytes; bundles {bundle_bytes}, packs {pack_bytes}",
        s.bytes_uploaded
    );
    let out = tempfile::tempdir()?;
    let r = restore(&mut repo, whole_to(out.path())).await?;
    ensure!(r.files_restored == files.len() as u64, "{r:?}");
    ensure!(read_tree(out.path()) == files, "restored tree differs");
    ensure!(out.path().join("empty").is_dir());
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: Some(env.share.clone()),
        },
    )
    .await?;
    ensure!(v.problems.is_empty(), "{:?}", v.problems);
    env.shutdown().await;
    Ok(())
}

/// A new file costs one request (Get File answers with its properties; a file of one download piece is
/// read whole), a directory or an empty file one Get Properties, each distinct permission key one Get
/// Permission: nothing else of the backup reaches the share (the scan has its own client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_of_one_piece_costs_one_request() -> Result<()> {
    let (env, files, mut repo) = filled().await?;
    let before = env.svc.requests_sent();
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let sent = env.svc.requests_sent() - before;
    ensure!(s.files_new == files.len() as u64 && s.skipped.is_empty(), "{s:?}");
    let m = repo.load_manifest(&s.snapshot_id).await?;
    // Create Share Snapshot, one request per node read (the root is not read), one Get Permission per
    // distinct key (one here: every node read has the same SDDL).
    ensure!(m.permissions.len() == 1, "{m:?}");
    let expected = 1 + s.nodes_read + 1;
    ensure!(sent == expected, "{sent} requests, expected {expected}: {s:?} {m:?}");
    env.shutdown().await;
    Ok(())
}

/// A bucket's small files are bundled together, ordered by directory: three directories of two small
/// files each (too few per directory for a bundle of its own) make one bundle and no chunk in packs,
/// and restore byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_of_several_directories_in_one_bucket_share_a_bundle() -> Result<()> {
    let env = Env::new(FaultConfig::default()).await?;
    env.share.create().await?;
    let mut files = BTreeMap::new();
    for (i, d) in ["a", "b", "c"].into_iter().enumerate() {
        env.share.directory(d).create(&NodeProps::default()).await?;
        for j in 0..2u64 {
            let content = printable(500 + 100 * j as usize, 10 * i as u64 + j);
            let path = format!("{d}/f{j}.txt");
            env.share.file(&path).upload(Bytes::from(content.clone()), &NodeProps::default()).await?;
            files.insert(path, content);
        }
    }
    let mut repo = env.repo().await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_new == 6 && s.chunks_new == 0, "no small file went into a pack: {s:?}");
    let m = repo.load_manifest(&s.snapshot_id).await?;
    ensure!(m.bundles.len() == 1, "one bundle for the three directories: {m:?}");
    ensure!(restore_latest(&mut repo).await? == files, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backup_reads_only_changed_files() -> Result<()> {
    let (env, mut files, mut repo) = backed_up().await?;
    // Nothing changed: nothing read, no content written.
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.bytes_read == 0 && s.files_unchanged == files.len() as u64 && s.chunks_new == 0, "{s:?}");
    ensure!(s.metadata_objects_written == 0 && s.metadata_objects_reused >= 1, "{s:?}");
    // One small file changed, one added, one deleted.
    let changed = printable(7777, 999);
    env.share.file("docs/note1.txt").upload(Bytes::from(changed.clone()), &NodeProps::default()).await?;
    files.insert("docs/note1.txt".into(), changed);
    let added = printable(1234, 998);
    env.share.file("docs/new.txt").upload(Bytes::from(added.clone()), &NodeProps::default()).await?;
    files.insert("docs/new.txt".into(), added);
    env.share.file("top.txt").delete().await?;
    files.remove("top.txt");
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_new == 1 && s.files_changed == 1, "{s:?}");
    ensure!(s.bytes_read == 7777 + 1234, "only the two changed files are read: {s:?}");
    ensure!(restore_latest(&mut repo).await? == files, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

/// A clean bucket is reused without reading its previous object: the previous manifest's
/// `metadata_info` says what the object holds. An unchanged backup reads no previous metadata object and
/// restores byte-identical; after a manifest without `metadata_info` (written before it existed) the next
/// backup reads the objects as before and records it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_backup_reuses_clean_buckets_without_reading_them() -> Result<()> {
    let (env, files, mut repo) = filled().await?;
    let s1 = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let m1 = repo.load_manifest(&s1.snapshot_id).await?;
    ensure!(!m1.metadata.is_empty() && m1.metadata_info.len() == m1.metadata.len(), "{m1:?}");
    let s2 = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s2.metadata_objects_read == 0, "no previous metadata object read: {s2:?}");
    ensure!(s2.metadata_objects_reused == m1.metadata.len() as u64 && s2.metadata_objects_written == 0, "{s2:?}");
    ensure!(s2.files_unchanged == files.len() as u64 && s2.dirs == s1.dirs && s2.bytes_read == 0, "{s2:?}");
    let m2 = repo.load_manifest(&s2.snapshot_id).await?;
    ensure!(
        (&m2.metadata, &m2.metadata_info, &m2.bundles, &m2.permissions)
            == (&m1.metadata, &m1.metadata_info, &m1.bundles, &m1.permissions),
        "{m1:?}\n{m2:?}"
    );
    ensure!(restored(&mut repo, &s2.snapshot_id).await? == files, "restored tree differs");

    // The same manifest as one written before metadata_info existed.
    let mut old = m2.clone();
    old.metadata_info.clear();
    repo.store().delete(&repo.scope().snapshot(&old.snapshot_id)).await?;
    repo.commit(&old).await?;
    ensure!(repo.load_manifest(&old.snapshot_id).await?.metadata_info.is_empty());
    let s3 = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s3.metadata_objects_read == m1.metadata.len() as u64, "today's behaviour: each object read: {s3:?}");
    ensure!(s3.metadata_objects_reused == m1.metadata.len() as u64 && s3.metadata_objects_written == 0, "{s3:?}");
    let m3 = repo.load_manifest(&s3.snapshot_id).await?;
    ensure!(m3.metadata_info == m1.metadata_info, "recorded again: {m3:?}");
    ensure!(restored(&mut repo, &s3.snapshot_id).await? == files, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

/// The files of snapshot `id` restored to a fresh directory.
async fn restored(repo: &mut Repository, id: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let out = tempfile::tempdir()?;
    let target = local(out.path());
    let snapshot = Some(id.to_string());
    restore(repo, RestoreOptions { snapshot, ..whole(target) }).await?;
    Ok(read_tree(out.path()))
}

/// A manifest whose `metadata_info` does not describe its metadata objects is refused when loaded, with
/// one error naming the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_inconsistent_metadata_info_is_refused() -> Result<()> {
    use afb::repository::manifest::MetadataInfo;
    let env = Env::new(FaultConfig::default()).await?;
    fill(&env.share).await?;
    let mut repo = env.repo().await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let m = repo.load_manifest(&s.snapshot_id).await?;
    let info = m.metadata_info[0].clone();
    let bad = [
        vec![info.clone(), info.clone()],
        vec![MetadataInfo { bundles: vec![m.bundles.len() as u32], ..info.clone() }],
        vec![MetadataInfo { first: info.last + 1, ..info.clone() }],
        vec![MetadataInfo { nodes: 0, ..info.clone() }],
    ];
    for wrong in bad {
        let mut hostile = afb::repository::BackupManifest::new("t1", "s1");
        hostile.metadata = m.metadata.clone();
        hostile.bundles = m.bundles.clone();
        hostile.permissions = m.permissions.clone();
        hostile.metadata_info = wrong;
        repo.commit(&hostile).await?;
        let err = repo.load_manifest(&hostile.snapshot_id).await.expect_err("refused").to_string();
        ensure!(err.contains(&hostile.snapshot_id) && err.contains("metadata_info"), "{err}");
        repo.store().delete(&repo.scope().snapshot(&hostile.snapshot_id)).await?;
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_rename_uploads_no_content() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    env.share.directory("docs").rename("papers").await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.bytes_read == 0 && s.chunks_new == 0 && s.bytes_uploaded == 0, "{s:?}");
    ensure!(s.files_new == 0 && s.files_changed == 0, "{s:?}");
    let out = tempfile::tempdir()?;
    restore(&mut repo, whole_to(out.path())).await?;
    let expected: BTreeMap<String, Vec<u8>> = files
        .into_iter()
        .map(|(p, d)| (p.strip_prefix("docs/").map_or(p.clone(), |r| format!("papers/{r}")), d))
        .collect();
    ensure!(read_tree(out.path()) == expected, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_with_a_few_ranges_rewritten_rereads_only_those_ranges() -> Result<()> {
    let (env, mut files, mut repo) = backed_up().await?;
    let f = env.share.file("big/disk.img");
    let img = files.get_mut("big/disk.img").unwrap();
    for (i, off) in [100_000usize, 1_500_000, 2_900_000].into_iter().enumerate() {
        let patch = printable(4096, 500 + i as u64);
        f.put_range(off as u64, Bytes::from(patch.clone())).await?;
        img[off..off + 4096].copy_from_slice(&patch);
    }
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_changed == 1, "{s:?}");
    ensure!(s.bytes_read == 3 * 4096, "only the rewritten ranges are read: {s:?}");
    ensure!(s.bytes_reused == (3 << 20) - 3 * 4096, "{s:?}");
    ensure!(s.chunks_new <= 9, "only chunks around the edits are new: {s:?}");
    let out = tempfile::tempdir()?;
    restore(&mut repo, RestoreOptions { path: Some("big/disk.img".into()), ..whole_to(out.path()) }).await?;
    ensure!(std::fs::read(out.path().join("big/disk.img"))? == files["big/disk.img"], "restored file differs");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_of_a_subtree_and_of_one_file() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    let out = tempfile::tempdir()?;
    restore(&mut repo, RestoreOptions { path: Some("docs/sub".into()), ..whole_to(out.path()) }).await?;
    let want: BTreeMap<String, Vec<u8>> =
        files.iter().filter(|(p, _)| p.starts_with("docs/sub/")).map(|(p, d)| (p.clone(), d.clone())).collect();
    ensure!(read_tree(out.path()) == want, "subtree restore");
    let one = tempfile::tempdir()?;
    restore(&mut repo, RestoreOptions { path: Some("docs/note3.txt".into()), ..whole_to(one.path()) }).await?;
    let tree = read_tree(one.path());
    ensure!(tree.len() == 1 && tree["docs/note3.txt"] == files["docs/note3.txt"], "one-file restore");
    // A path the backup does not hold: one error naming it, nothing written.
    let none = tempfile::tempdir()?;
    for missing in ["docs/nope.txt", "nope/note3.txt", "docs/sub/a.txt/x"] {
        let opts = RestoreOptions { path: Some(missing.into()), ..whole_to(none.path()) };
        let err = restore(&mut repo, opts).await.expect_err(missing).to_string();
        ensure!(err.contains(&format!("{missing:?} is not in backup")), "{err}");
    }
    ensure!(read_tree(none.path()).is_empty() && std::fs::read_dir(none.path())?.next().is_none(), "nothing written");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_another_share_keeps_sddl_attributes_times_and_metadata() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    let dest = env.svc.share("dest");
    dest.create().await?;
    let r = restore(&mut repo, whole(Target::Share(dest.clone()))).await?;
    ensure!(r.files_restored == files.len() as u64, "{r:?}");
    for (p, d) in &files {
        ensure!(&download(&dest, p).await? == d, "{p} differs");
        let a = env.share.file(p).properties().await?;
        let b = dest.file(p).properties().await?;
        ensure!(a.attributes == b.attributes, "{p}: attributes {:?} vs {:?}", a.attributes, b.attributes);
        ensure!(
            a.last_write_time == b.last_write_time && a.creation_time == b.creation_time,
            "{p}: times {a:?} vs {b:?}"
        );
        ensure!(b.metadata.get("owner").map(String::as_str) == Some("alice"), "{p}: metadata {:?}", b.metadata);
        let sddl = dest.get_permission(b.permission_key.as_deref().unwrap()).await?;
        ensure!(sddl == SDDL, "{p}: SDDL {sddl}");
    }
    let a = env.share.directory("docs").properties().await?;
    let b = dest.directory("docs").properties().await?;
    ensure!(a.last_write_time == b.last_write_time, "directory times {a:?} vs {b:?}");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_overwrites_without_overwrite_and_resumes() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    let out = tempfile::tempdir()?;
    // An interrupted restore: one file already there (identical), one different.
    std::fs::create_dir_all(out.path().join("docs"))?;
    std::fs::write(out.path().join("docs/note0.txt"), &files["docs/note0.txt"])?;
    std::fs::write(out.path().join("top.txt"), b"local edit")?;
    let r = restore(&mut repo, whole_to(out.path())).await?;
    ensure!(r.files_already_present == 1 && r.conflicts.len() == 1, "{r:?}");
    ensure!(std::fs::read(out.path().join("top.txt"))? == b"local edit", "not overwritten");
    let r = restore(&mut repo, RestoreOptions { overwrite: true, ..whole_to(out.path()) }).await?;
    ensure!(r.files_restored == 1 && r.conflicts.is_empty(), "{r:?}");
    ensure!(read_tree(out.path()) == files);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_fault_injection_completes_and_restores_byte_identical() -> Result<()> {
    let clean = Env::new(FaultConfig::default()).await?;
    let files = fill(&clean.share).await?;
    // Same emulator data, now served with faults.
    let dir = clean._dir.path().join("emu");
    let Env { _dir, emulator, master, repo_dir, index, .. } = clean;
    emulator.unwrap().shutdown().await;
    let faults = FaultConfig {
        seed: 7,
        busy_rate: 0.05,
        error_rate: 0.05,
        reset_rate: 0.03,
        latency_ms: 1,
        retry_after_secs: 0,
        ..Default::default()
    };
    let emu = crate::support::emulator(&dir, faults);
    let svc = FileServiceClient::new(
        AccountConfig::from_connection_string(&emu.connection_string())?,
        ClientOptions::default(),
    )?;
    let share = svc.share("src");
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&repo_dir)?);
    let mut repo = Repository::open(store, &master, "t1", "s1", RepositoryConfig::default()).await?;
    let s = backup_share(&mut repo, &index, &share, &NoProgress).await?;
    ensure!(s.files_new == files.len() as u64 && s.skipped.is_empty(), "{s:?}");
    ensure!(restore_latest(&mut repo).await? == files, "restored tree differs");
    emu.shutdown().await;
    Ok(())
}

/// A share that allows 100 requests per second (the emulator's `--share-iops-limit`, answering 503
/// ServerBusy with `Retry-After: 1` beyond it) and a backup asking for 64 requests in flight: the client
/// halves its limit on the throttled answers, the backup completes, reports the throttles and the lowest
/// limit, and restores byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_share_slows_the_backup_down_and_it_completes() -> Result<()> {
    let clean = Env::new(FaultConfig::default()).await?;
    clean.share.create().await?;
    let mut files = BTreeMap::new();
    for d in 0..4 {
        clean.share.directory(&format!("d{d}")).create(&NodeProps::default()).await?;
        for i in 0..75u64 {
            files.insert(format!("d{d}/f{i}.txt"), printable(100 + 37 * i as usize, 1000 * d + i));
        }
    }
    let uploads = futures::stream::iter(files.clone()).map(|(p, d)| {
        let share = clean.share.clone();
        async move { share.file(&p).upload(Bytes::from(d), &NodeProps::default()).await }
    });
    uploads.buffer_unordered(16).try_collect::<Vec<()>>().await?;
    let dir = clean._dir.path().join("emu");
    let Env { _dir, emulator, master, repo_dir, index, .. } = clean;
    emulator.unwrap().shutdown().await;
    let faults = FaultConfig { share_iops_limit: 100, retry_after_secs: 1, ..Default::default() };
    let emu = crate::support::emulator(&dir, faults);
    let svc = FileServiceClient::new(
        AccountConfig::from_connection_string(&emu.connection_string())?,
        ClientOptions { max_concurrency: 64, ..ClientOptions::default() },
    )?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&repo_dir)?);
    let mut repo = Repository::open(store, &master, "t1", "s1", RepositoryConfig::default()).await?;
    let concurrency = afb::backup::Concurrency { requests_in_flight: 64, cpu_workers: 2 };
    let s = afb::backup::cli::backup_share_with(
        &mut repo,
        &index,
        &svc.share("src"),
        &NoProgress,
        concurrency,
        &Default::default(),
    )
    .await?;
    ensure!(s.files_new == files.len() as u64 && s.skipped.is_empty(), "{s:?}");
    ensure!(s.requests_throttled > 0 && s.requests_in_flight_lowest < 64, "the share throttled the reads: {s:?}");
    ensure!(s.requests_sent >= s.nodes_read + s.requests_throttled, "{s:?}");
    let out = tempfile::tempdir()?;
    let opts = whole_to(out.path());
    restore(&mut repo, opts).await?;
    ensure!(read_tree(out.path()) == files, "restored tree differs");
    emu.shutdown().await;
    Ok(())
}

/// A restore spanning several metadata buckets (a virtual share of 10,000 files), with files of one
/// bucket still being written while the next bucket is loaded: every file comes back, equal to the
/// share's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_many_buckets_restores_every_file() -> Result<()> {
    let data = tempfile::tempdir()?;
    let emulator = afb::emulator::Emulator::start(afb::emulator::EmulatorConfig {
        addr: "127.0.0.1:0".parse()?,
        data: data.path().to_path_buf(),
        faults: Default::default(),
        virtual_shares: vec![afb::emulator::virtual_share::VirtualShareSpec::parse("many=10000,seed=3").unwrap()],
        tls: Default::default(),
    })?;
    let svc = FileServiceClient::from_connection_string(&emulator.connection_string())?;
    let share = svc.share("many");
    let repo_dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(repo_dir.path())?);
    let mut repo = Repository::open(store, &MasterKey::generate(), "t1", "s1", RepositoryConfig::default()).await?;
    let index = NodeIndex::open(repo_dir.path().to_str().unwrap())?;
    let s = backup_share(&mut repo, &index, &share, &NoProgress).await?;
    ensure!(s.files_new >= 9_000 && s.metadata_objects_written >= 3, "{s:?}");
    let out = tempfile::tempdir()?;
    let opts = RestoreOptions {
        concurrency: afb::backup::Concurrency { requests_in_flight: 64, cpu_workers: 2 },
        ..whole_to(out.path())
    };
    let r = restore(&mut repo, opts).await?;
    ensure!(r.files_restored == s.files_new && r.damaged.is_empty() && r.refused.is_empty(), "{r:?}");
    let restored = read_tree(out.path());
    ensure!(restored.len() as u64 == s.files_new, "{} files restored", restored.len());
    let at = share.at_snapshot(s.share_snapshot.as_deref().unwrap());
    for (path, content) in restored.iter().step_by(500) {
        ensure!(download(&at, path).await? == *content, "{path} differs");
    }
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_the_live_share_names_each_file_that_changed_by_its_path() -> Result<()> {
    let (env, _, mut repo) = backed_up().await?;
    env.share.file("top.txt").delete().await?;
    env.share.file("docs/sub/a.txt").upload(Bytes::from(printable(20_000, 999)), &NodeProps::default()).await?;
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: false,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: Some(env.share.clone()),
        },
    )
    .await?;
    ensure!(v.nodes_compared == 11, "every file compared: {v:?}");
    let mut named: Vec<&str> = v.problems.iter().map(|p| p.split(':').next().unwrap_or_default()).collect();
    named.dedup();
    ensure!(named == ["top.txt", "docs/sub/a.txt"] || named == ["docs/sub/a.txt", "top.txt"], "{:?}", v.problems);
    ensure!(v.problems.iter().any(|p| p.starts_with("top.txt: not on the live share")), "{:?}", v.problems);
    ensure!(
        v.problems.iter().any(|p| p == "docs/sub/a.txt: content (xorhash) differs from the backup"),
        "{:?}",
        v.problems
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_bundle_makes_verify_report_exactly_that_bundle() -> Result<()> {
    let (env, _, _repo) = backed_up().await?;
    let bundles = env.repo_dir.join("t1/s1/bundles");
    let victim = std::fs::read_dir(&bundles)?
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .next()
        .expect("a bundle")?
        .path();
    std::fs::remove_file(&victim)?;
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    let mut repo = env.repo().await?;
    let opts = VerifyOptions {
        snapshot: None,
        read_data: false,
        read_data_subset: 0.0,
        index: Some(&env.index),
        compare_live: None,
    };
    let v = verify(&mut repo, opts).await?;
    ensure!(v.problems.len() == 1 && v.problems[0].contains(&name), "one line naming the bundle: {:?}", v.problems);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pack_makes_verify_report_exactly_that_pack() -> Result<()> {
    let (env, _, repo) = backed_up().await?;
    let packs = repo.list_packs().await?;
    ensure!(!packs.is_empty());
    let victim = packs[0].0.clone();
    env.store().delete(&victim).await?;
    let mut repo = env.repo().await?;
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: false,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(!v.problems.is_empty(), "verify found nothing");
    ensure!(
        v.problems.iter().all(|p| p.contains(victim.as_ref())),
        "every problem names the pack {victim}: {:?}",
        v.problems
    );
    ensure!(v.problems.len() == 1, "one line for the pack: {:?}", v.problems);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_master_key_gives_one_clear_error() -> Result<()> {
    let (env, _, _repo) = backed_up().await?;
    let err = match Repository::open(env.store(), &MasterKey::generate(), "t1", "s1", RepositoryConfig::default()).await
    {
        Ok(_) => anyhow::bail!("a wrong master key opened the repository"),
        Err(e) => e.to_string(),
    };
    ensure!(err.contains("wrong master key") && err.contains("t1"), "{err}");
    ensure!(!err.contains('\n'), "one line: {err}");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_between_scan_and_read_is_reported_and_the_backup_ends_consistent() -> Result<()> {
    let (env, mut files, mut repo) = filled().await?;
    // Scan the live share (no snapshot), then delete a file before the backup reads it.
    let current = scan_live(&env).await?;
    env.share.file("docs/note2.txt").delete().await?;
    files.remove("docs/note2.txt");
    let s = back_up_live(&env, &mut repo, current).await?;
    ensure!(s.skipped.len() == 1 && s.skipped[0].path == "docs/note2.txt", "{s:?}");
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(v.problems.is_empty(), "{:?}", v.problems);
    ensure!(restore_latest(&mut repo).await? == files, "restored tree differs");
    // The next backup (from a share snapshot) is clean.
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.skipped.is_empty() && s.bytes_read == 0, "{s:?}");
    let _ = backup_from_snapshot;
    env.shutdown().await;
    Ok(())
}

#[test]
fn forget_keeps_last_and_one_per_period() {
    let day = 86_400_000_000_000i64;
    let snaps: Vec<(String, i64)> = (0..40).map(|i| (format!("s{i:02}"), i * day / 2)).collect();
    let keep = select(&snaps, &Policy { keep_last: 2, keep_daily: 3, ..Default::default() });
    // Newest two, plus the newest of each of the last three days (two snapshots a day).
    let want: Vec<&str> = vec!["s35", "s37", "s38", "s39"];
    assert_eq!(keep.iter().map(String::as_str).collect::<Vec<_>>(), want);
    let keep = select(&snaps, &Policy { keep_monthly: 5, ..Default::default() });
    assert_eq!(keep.len(), 1, "all within one month: {keep:?}");
}

fn afb_cli(args: &[&str], conn: &str, key: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
        .args(args)
        .env("AZURE_STORAGE_CONNECTION_STRING", conn)
        .env("AFB_MASTER_KEY", key)
        .output()
        .expect("afb runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The command line end to end: backup --json, cat-object of a bundle is a plain TAR, verify exits 3 with
/// one line naming a deleted pack, a wrong master key is one error line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backup_cat_object_tar_and_verify_exit_codes() -> Result<()> {
    let env = Env::new(FaultConfig::default()).await?;
    fill(&env.share).await?;
    let conn = env.emulator.as_ref().unwrap().connection_string();
    let key = env.master.to_hex();
    let repo = env.repo_dir.to_str().unwrap().to_string();
    let base = ["--tenant", "t1", "--share", "src", "--repo", repo.as_str()];
    let dry_run = || -> Result<serde_json::Value> {
        let (code, out, err) = afb_cli(&[&["backup", "--dry-run", "--json"][..], &base].concat(), &conn, &key);
        ensure!(code == 0, "backup --dry-run: {err}");
        Ok(serde_json::from_str::<serde_json::Value>(&out)?["survey"].clone())
    };
    let before = dry_run()?;
    ensure!(
        before["files_to_read"] == 11 && before["files_kept"] == 0 && before["ranges"].as_array().unwrap().len() == 1,
        "{before}"
    );
    ensure!(
        env.repo_dir.join("t1/src/snapshots").read_dir().map_or(true, |mut d| d.next().is_none()),
        "a dry run commits no backup"
    );
    let (code, _, err) = afb_cli(&[&["backup", "--requests-in-flight", "0"][..], &base].concat(), &conn, &key);
    ensure!(code == 2 && err.contains("--requests-in-flight"), "no request in flight is refused: {err}");
    let concurrency = ["--requests-in-flight", "5", "--cpu-workers", "1"];
    let (code, out, err) = afb_cli(&[&["backup"][..], &base, &concurrency, &["--json"]].concat(), &conn, &key);
    ensure!(code == 0, "backup: {err}");
    let s: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(s["files_new"] == 11 && s["requests_in_flight"] == 5 && s["cpu_workers"] == 1, "{s}");
    ensure!(err.contains("5 requests in flight, 1 CPU workers"), "the progress line shows them: {err}");
    let restored = tempfile::tempdir()?;
    let to = format!("local:{}", restored.path().display());
    let args = [&["restore", "--target", to.as_str(), "--readers", "3", "--json"][..], &base].concat();
    let (code, out, err) = afb_cli(&args, &conn, &key);
    ensure!(code == 0, "restore: {err}");
    let r: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(r["files_restored"] == 11 && r["requests_in_flight"] == 3 && r["cpu_workers"].as_u64() >= Some(1), "{r}");
    let after = dry_run()?;
    ensure!(after["nodes_to_read"] == 0 && after["files_kept"] == 11, "after the backup, nothing to read: {after}");
    let bundles = env.repo_dir.join("t1/src/bundles");
    let bundle = std::fs::read_dir(std::fs::read_dir(&bundles)?.next().unwrap()?.path())?.next().unwrap()?.path();
    let rel = bundle.strip_prefix(&env.repo_dir)?.to_str().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
        .args(["cat-object", "--repo", &repo, "--tenant", "t1", &rel])
        .env("AFB_MASTER_KEY", &key)
        .output()?;
    ensure!(out.status.success());
    let mut tar = tar::Archive::new(out.stdout.as_slice());
    ensure!(tar.entries()?.count() >= 3, "a bundle lists as a TAR of its members");
    let (code, out, _) = afb_cli(&[&["verify"][..], &base].concat(), &conn, &key);
    ensure!(code == 0 && out.is_empty(), "{out}");
    let pack = std::fs::read_dir(std::fs::read_dir(env.repo_dir.join("t1/src/packs"))?.next().unwrap()?.path())?
        .next()
        .unwrap()?
        .path();
    std::fs::remove_file(&pack)?;
    let (code, out, _) = afb_cli(&[&["verify"][..], &base].concat(), &conn, &key);
    let name = pack.file_name().unwrap().to_str().unwrap();
    ensure!(code == 3 && out.lines().count() == 1 && out.contains(name), "exit {code}: {out}");
    let (code, _, err) = afb_cli(&[&["verify"][..], &base].concat(), &conn, &"11".repeat(32));
    ensure!(code == 1 && err.lines().count() == 1 && err.contains("wrong master key"), "exit {code}: {err}");
    env.shutdown().await;
    Ok(())
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &FsPath) -> u64 {
    read_tree(dir).values().map(|d| d.len() as u64).sum()
}

/// The prune scenario with real concurrency: a backup runs in its own task on its own repository
/// handle while prune (of a snapshot forgotten before) runs; prune sees the backup's marker, condemns what
/// is unreferenced, waits for the backup to end before deleting, and both remaining snapshots verify and
/// restore byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_while_a_backup_runs_frees_bytes_and_every_snapshot_restores() -> Result<()> {
    use afb::backup::forget::forget;
    use afb::backup::prune::{PruneOptions, list_backups, prune};
    use std::time::{Duration, Instant};
    let env = Env::new(FaultConfig { latency_ms: 3, ..Default::default() }).await?;
    let files = fill(&env.share).await?;
    env.share.directory("old").create(&NodeProps::default()).await?;
    for i in 0..4u64 {
        env.share
            .file(&format!("old/f{i}.bin"))
            .upload(Bytes::from(printable(400_000, 700 + 2 * i)), &NodeProps::default())
            .await?;
    }
    let mut repo = env.repo().await?;
    backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    for i in 0..4u64 {
        env.share.file(&format!("old/f{i}.bin")).delete().await?;
    }
    let s2 = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let f = forget(&repo, &Policy { keep_last: 1, ..Default::default() }, false).await?;
    ensure!(f.forgotten.len() == 1 && f.kept == vec![s2.snapshot_id.clone()], "{f:?}");
    let packs_before = dir_bytes(&env.repo_dir.join("t1/s1/packs"));

    // New content for the concurrent backup (a backup re-using condemned chunks is the rescue test in
    // tests/repository_store.rs, made deterministic there).
    let mut files3 = files.clone();
    files3.retain(|p, _| !p.starts_with("old/"));
    env.share.directory("new").create(&NodeProps::default()).await?;
    for i in 0..40u64 {
        let d = printable(150_000, 800 + 2 * i);
        env.share.file(&format!("new/g{i}.bin")).upload(Bytes::from(d.clone()), &NodeProps::default()).await?;
        files3.insert(format!("new/g{i}.bin"), d);
    }

    let (store, master, index, share) =
        (env.store(), MasterKey::from_hex(&env.master.to_hex())?, env.index.clone(), env.share.clone());
    let backup = tokio::spawn(async move {
        let mut r = Repository::open(store, &master, "t1", "s1", RepositoryConfig::default()).await?;
        backup_share(&mut r, &index, &share, &NoProgress).await
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while list_backups(&repo).await?.is_empty() {
        ensure!(Instant::now() < deadline && !backup.is_finished(), "the backup's in-progress marker never appeared");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let opts = PruneOptions { grace: Duration::ZERO, wait: Duration::from_secs(120), ..Default::default() };
    let p = prune(&mut repo, &opts).await?;
    let s3 = backup.await??;
    ensure!(p.backups_running.len() == 1, "prune saw the running backup: {p:?}");
    ensure!(p.records_pending == 0 && p.packs_deleted + p.packs_repacked >= 1, "{p:?}");
    ensure!(p.bytes_freed > 0 && p.bytes_deleted > 0, "prune frees bytes: {p:?}");
    ensure!(list_backups(&repo).await?.is_empty(), "the backup removed its marker");
    let packs_after = dir_bytes(&env.repo_dir.join("t1/s1/packs"));
    eprintln!(
        "prune: {} packs deleted, {} rewritten, {} rescued, {} bytes freed; packs {} -> {} bytes (the concurrent backup added {} bytes)",
        p.packs_deleted, p.packs_repacked, p.packs_rescued, p.bytes_freed, packs_before, packs_after, s3.bytes_uploaded
    );

    for (snap, want) in [(&s2.snapshot_id, &files), (&s3.snapshot_id, &files3)] {
        let mut r = env.repo().await?;
        let v = verify(
            &mut r,
            VerifyOptions {
                snapshot: Some(snap.clone()),
                read_data: true,
                read_data_subset: 0.0,
                index: Some(&env.index),
                compare_live: None,
            },
        )
        .await?;
        ensure!(v.problems.is_empty(), "{snap}: {:?}", v.problems);
        let out = tempfile::tempdir()?;
        restore(&mut r, RestoreOptions { snapshot: Some(snap.clone()), ..whole_to(out.path()) }).await?;
        ensure!(&read_tree(out.path()) == want, "{snap}: restored tree differs");
    }
    // Nothing is left to free once no snapshot was forgotten.
    let p2 = prune(&mut repo, &opts).await?;
    ensure!(p2.packs_deleted == 0 && p2.packs_unused == 0 && p2.objects_deleted == 0, "{p2:?}");
    env.shutdown().await;
    Ok(())
}

/// A file rewritten continuously while it is read (a live share, no share snapshot): the download sees
/// its ETag change, the backup reads it once more, then leaves it out with a clear reason; everything else
/// is backed up and verify finds nothing wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changing_while_read_is_skipped_with_a_clear_reason() -> Result<()> {
    let env = Env::new(FaultConfig { latency_ms: 20, ..Default::default() }).await?;
    let mut files = fill(&env.share).await?;
    let busy = printable(12 << 20, 4242);
    env.share.file("big/busy.img").upload(Bytes::from(busy), &NodeProps::default()).await?;
    let mut repo = env.repo().await?;
    let current = scan_live(&env).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (f, stop) = (env.share.file("big/busy.img"), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = f.put_range((i % 3000) * 4096, Bytes::from(printable(4096, i))).await;
                i += 1;
            }
        })
    };
    let s = back_up_live(&env, &mut repo, current).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await?;
    ensure!(s.skipped.len() == 1 && s.skipped[0].path == "big/busy.img", "{s:?}");
    ensure!(s.skipped[0].reason.contains("changed while it was read"), "{}", s.skipped[0].reason);
    ensure!(s.files_new == files.len() as u64, "every other file is backed up: {s:?}");
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(v.problems.is_empty(), "{:?}", v.problems);
    let out = tempfile::tempdir()?;
    restore(&mut repo, whole_to(out.path())).await?;
    files.remove("big/busy.img");
    ensure!(read_tree(out.path()) == files, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

/// A permission key that no longer resolves (its SDDL removed from the share between scan and read):
/// the file is backed up without SDDL, the summary names it, and verify reports exactly that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_key_that_no_longer_resolves_is_named_by_backup_and_verify() -> Result<()> {
    let env = Env::new(FaultConfig::default()).await?;
    let files = fill(&env.share).await?;
    let other = "O:BAG:SYD:(A;;FA;;;BA)";
    let key = env.share.create_permission(other).await?;
    env.share
        .file("lonely.txt")
        .upload(
            Bytes::from_static(b"only file with this SDDL"),
            &NodeProps { permission: Some(Permission::Key(key.clone())), ..Default::default() },
        )
        .await?;
    let mut repo = env.repo().await?;
    let current = scan_live(&env).await?;
    let db = rusqlite::Connection::open(env._dir.path().join("emu/emulator.sqlite"))?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    ensure!(db.execute("DELETE FROM permissions WHERE key = ?1", [&key])? == 1, "the SDDL was stored under its key");
    ensure!(env.share.get_permission(&key).await.is_err(), "the key no longer resolves");
    let s = back_up_live(&env, &mut repo, current).await?;
    ensure!(s.sddl_missing == vec!["lonely.txt".to_string()], "{s:?}");
    ensure!(s.warnings.iter().any(|w| w.contains(&key) && w.contains("lonely.txt")), "{:?}", s.warnings);
    ensure!(s.files_new == files.len() as u64 + 1 && s.skipped.is_empty(), "the file itself is backed up: {s:?}");
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(v.problems.len() == 1 && v.problems[0].starts_with("lonely.txt: no SDDL"), "{:?}", v.problems);
    let out = tempfile::tempdir()?;
    restore(&mut repo, RestoreOptions { path: Some("lonely.txt".into()), ..whole_to(out.path()) }).await?;
    ensure!(std::fs::read(out.path().join("lonely.txt"))? == b"only file with this SDDL");
    env.shutdown().await;
    Ok(())
}

/// One flipped byte in a pack: verify without reading data cannot see it, `read_data` names exactly that
/// pack (one line), and restore restores every other file and names the damaged ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_pack_is_named_by_verify_and_restore_skips_only_its_files() -> Result<()> {
    let (env, files, repo) = backed_up().await?;
    let packs = repo.list_packs().await?;
    ensure!(packs.len() == 1, "{packs:?}");
    let victim = env.repo_dir.join(packs[0].0.as_ref());
    let mut bytes = std::fs::read(&victim)?;
    bytes[1000] ^= 0x40;
    std::fs::write(&victim, &bytes)?;
    let mut repo = env.repo().await?;
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: false,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(v.problems.is_empty(), "without reading data the pack looks fine: {:?}", v.problems);
    let v = verify(
        &mut repo,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&env.index),
            compare_live: None,
        },
    )
    .await?;
    ensure!(v.problems.len() == 1 && v.problems[0].contains(packs[0].0.as_ref()), "{:?}", v.problems);
    ensure!(v.problems[0].contains("does not decrypt"), "{:?}", v.problems);
    let v = verify(
        &mut repo,
        VerifyOptions { snapshot: None, read_data: false, read_data_subset: 100.0, index: None, compare_live: None },
    )
    .await?;
    ensure!(
        v.problems.len() == 1 && v.problems[0].contains(packs[0].0.as_ref()),
        "a pack read in full fails its hash: {:?}",
        v.problems
    );
    let out = tempfile::tempdir()?;
    let r = restore(&mut repo, whole_to(out.path())).await?;
    ensure!(r.damaged.len() == 1 && r.damaged[0].contains(packs[0].0.as_ref()), "{r:?}");
    let tree = read_tree(out.path());
    ensure!(tree.len() == files.len() - 1, "every other file is restored: {r:?}");
    ensure!(tree.iter().all(|(p, d)| files.get(p) == Some(d)), "restored files are byte-identical");
    ensure!(
        !std::fs::read_dir(out.path())?.any(|e| e.unwrap().file_name().to_string_lossy().contains("afb-restore")),
        "no half-written file"
    );
    env.shutdown().await;
    Ok(())
}

/// A copy of backup `id` whose node names are changed by `rename` (node name → new name): what a
/// damaged or hostile repository could hold. Returns the new snapshot's id.
async fn snapshot_with_names(repo: &mut Repository, id: &str, rename: &[(&str, &str)]) -> Result<String> {
    let m = repo.load_manifest(id).await?;
    let versions = crate::support::versions(repo, &m).await?;
    let versions: Vec<_> = versions
        .into_values()
        .map(|mut v| {
            if let Some((_, to)) = rename.iter().find(|(from, _)| v.name.as_deref() == Some(*from)) {
                v.name = Some(to.to_string());
            }
            v
        })
        .collect();
    let meta = repo.put_metadata(versions).await?;
    let mut hostile = afb::repository::BackupManifest::new("t1", "s1");
    hostile.metadata = vec![meta.to_hex()];
    hostile.bundles = m.bundles.clone();
    hostile.permissions = m.permissions.clone();
    repo.commit(&hostile).await?;
    Ok(hostile.snapshot_id)
}

/// Names in a repository that would leave the target (`../x`, `..`, a control character) are refused
/// one by one, named in the summary; nothing is written outside the root and the rest is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_names_that_would_leave_the_root() -> Result<()> {
    let (env, files, mut repo) = filled().await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let hostile = snapshot_with_names(
        &mut repo,
        &s.snapshot_id,
        &[("top.txt", "../escaped.txt"), ("zero.txt", ".."), ("a.txt", "bell\u{7}"), ("b.bin", "sub2/b.bin")],
    )
    .await?;
    let out = tempfile::tempdir()?;
    let root = out.path().join("root");
    let r = restore(&mut repo, RestoreOptions { snapshot: Some(hostile), ..whole_to(&root) }).await?;
    ensure!(!out.path().join("escaped.txt").exists(), "a file was written outside the root");
    ensure!(r.refused.len() == 4, "{r:?}");
    ensure!(r.refused.iter().any(|l| l.contains("../escaped.txt") && l.contains("separator")), "{r:?}");
    ensure!(r.refused.iter().any(|l| l.contains("\"..\"")), "{r:?}");
    ensure!(r.refused.iter().any(|l| l.contains("docs/sub/bell\\u{7}") && l.contains("control")), "{r:?}");
    ensure!(r.refused.iter().any(|l| l.contains("\"sub2/b.bin\"")), "a name holding / is one bad name: {r:?}");
    ensure!(!root.join("docs/sub/sub2").exists(), "a name holding / was split into directories");
    ensure!(r.files_restored == files.len() as u64 - 4, "{r:?}");
    ensure!(std::fs::read(root.join("big/disk.img"))? == files["big/disk.img"]);
    env.shutdown().await;
    Ok(())
}

/// A symlink below the root is never followed (a directory link is refused with its path, a file link
/// is a conflict even with overwrite), and a fifo in the way is a conflict, never opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_symlinks_and_special_files_below_the_root() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    let out = tempfile::tempdir()?;
    let root = out.path().join("root");
    let elsewhere = out.path().join("elsewhere");
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&elsewhere)?;
    let secret = out.path().join("secret.txt");
    std::fs::write(&secret, b"not yours")?;
    std::os::unix::fs::symlink(&elsewhere, root.join("docs"))?;
    std::os::unix::fs::symlink(&secret, root.join("top.txt"))?;
    let fifo = std::ffi::CString::new(root.join("zero.txt").to_str().unwrap())?;
    ensure!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) } == 0, "mkfifo");
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        restore(&mut repo, RestoreOptions { overwrite: true, ..whole_to(&root) }),
    )
    .await??;
    ensure!(std::fs::read_dir(&elsewhere)?.next().is_none(), "written through the docs symlink");
    ensure!(std::fs::read(&secret)? == b"not yours", "written through the top.txt symlink");
    ensure!(std::fs::symlink_metadata(root.join("top.txt"))?.file_type().is_symlink());
    let docs_files = files.keys().filter(|p| p.starts_with("docs/")).count();
    // docs itself and docs/sub (a directory below it) are refused, and so is every file below docs.
    ensure!(r.refused.len() == docs_files + 2, "{r:?}");
    ensure!(r.refused.iter().all(|l| l.contains("docs") && l.contains("symbolic link")), "{r:?}");
    ensure!(r.conflicts.len() == 2, "{r:?}");
    ensure!(r.conflicts.iter().any(|c| c.contains("top.txt") && c.contains("symbolic link")), "{r:?}");
    ensure!(r.conflicts.iter().any(|c| c.contains("zero.txt") && c.contains("fifo")), "{r:?}");
    ensure!(std::fs::read(root.join("big/disk.img"))? == files["big/disk.img"]);
    env.shutdown().await;
    Ok(())
}

/// Operator restores to any path keep working: a root that does not exist yet is created, with
/// symlinks in the root's own path followed (the root is trusted, only what is below it is confined).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_root_may_be_reached_through_a_symlink_and_is_created() -> Result<()> {
    let (env, files, mut repo) = backed_up().await?;
    let out = tempfile::tempdir()?;
    std::fs::create_dir_all(out.path().join("real"))?;
    std::os::unix::fs::symlink(out.path().join("real"), out.path().join("link"))?;
    let root = out.path().join("link/new/root");
    let r = restore(&mut repo, whole_to(&root)).await?;
    ensure!(r.refused.is_empty() && r.conflicts.is_empty(), "{r:?}");
    ensure!(read_tree(&out.path().join("real/new/root")) == files, "restored tree differs");
    env.shutdown().await;
    Ok(())
}

/// A manifest is bound to the tenant, share and snapshot id it is stored under: a copy placed under
/// another share (same tenant key) or another snapshot id is refused with both names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_copied_to_another_share_or_id_is_refused() -> Result<()> {
    let env = Env::new(FaultConfig::default()).await?;
    fill(&env.share).await?;
    let mut repo = env.repo().await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let original = env.repo_dir.join(format!("t1/s1/snapshots/{}", s.snapshot_id));
    std::fs::create_dir_all(env.repo_dir.join("t1/s2/snapshots"))?;
    std::fs::copy(&original, env.repo_dir.join(format!("t1/s2/snapshots/{}", s.snapshot_id)))?;
    let other = Repository::open(env.store(), &env.master, "t1", "s2", RepositoryConfig::default()).await?;
    let err = other.load_manifest(&s.snapshot_id).await.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(err.contains("t1/s1") && err.contains("t1/s2"), "{err}");
    let moved_id = "20000101T000000Z-00000000";
    std::fs::copy(&original, env.repo_dir.join(format!("t1/s1/snapshots/{moved_id}")))?;
    let err = repo.load_manifest(moved_id).await.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(err.contains(&s.snapshot_id) && err.contains(moved_id), "{err}");
    env.shutdown().await;
    Ok(())
}

/// Content is streamed: a 64 MiB file (far over one chunk or one 4 MiB range) restores byte-identical
/// to a local directory and to a share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_restores_byte_identical_to_a_directory_and_a_share() -> Result<()> {
    let env = Env::new(FaultConfig::default()).await?;
    env.share.create().await?;
    let big = printable(64 << 20, 7);
    env.share.file("big.bin").upload(Bytes::from(big.clone()), &NodeProps::default()).await?;
    let mut repo = env.repo().await?;
    backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let out = tempfile::tempdir()?;
    let r = restore(&mut repo, whole_to(out.path())).await?;
    ensure!(r.files_restored == 1 && r.bytes_written == big.len() as u64, "{r:?}");
    ensure!(std::fs::read(out.path().join("big.bin"))? == big, "local copy differs");
    let copy = env.svc.share("copy");
    copy.create().await?;
    let r = restore(&mut repo, whole(Target::Share(copy.clone()))).await?;
    ensure!(r.files_restored == 1 && r.bytes_written == big.len() as u64, "{r:?}");
    ensure!(download(&copy, "big.bin").await? == big, "share copy differs");
    env.shutdown().await;
    Ok(())
}

/// Node rows of the latest index snapshot of t1/s1 by name: (xorhash as readers see it, xorhash the
/// snapshot's own layers store).
async fn hashes_by_name(index: &NodeIndex) -> Result<BTreeMap<String, (i64, i64)>> {
    let m = index.latest("t1", "s1").await?.expect("a snapshot");
    let mut out = BTreeMap::new();
    let read: Vec<_> = index.read(&m, None)?.try_collect().await?;
    let stored: Vec<_> = index.read_layers(&m, None)?.try_collect().await?;
    for (a, b) in read
        .iter()
        .flat_map(afb::index::node::batch_to_nodes)
        .zip(stored.iter().flat_map(afb::index::node::batch_to_nodes))
    {
        ensure!(a.node_id == b.node_id);
        out.insert(a.name.clone(), (a.xorhash, b.xorhash));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likely_duplicates_finds_exactly_the_identical_pair_after_a_backup_and_unchanged_files_keep_their_hash()
-> Result<()> {
    use afb::index::hashes::xorhash64;
    let env = Env::new(FaultConfig::default()).await?;
    env.share.create().await?;
    env.share.directory("d").create(&NodeProps::default()).await?;
    let same = printable(5000, 7);
    let other = printable(5000, 8); // same size, other content: not a duplicate
    for (p, d) in [("a.bin", &same), ("d/copy.bin", &same), ("c.bin", &other)] {
        env.share.file(p).upload(Bytes::from(d.clone()), &NodeProps::default()).await?;
    }
    let mut repo = env.repo().await?;
    backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    let h = hashes_by_name(&env.index).await?;
    let want = xorhash64(&afb::backup::restore::xorhash(&same));
    ensure!(want != 0 && h["a.bin"].0 == want && h["copy.bin"].0 == want, "{h:?}");
    ensure!(h["c.bin"].0 == xorhash64(&afb::backup::restore::xorhash(&other)) && h["d"].0 == 0, "{h:?}");
    ensure!(
        h.values().all(|(_, stored)| *stored == 0),
        "the scan's rows store no hash; the hash layer has them: {h:?}"
    );

    let query = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/likely_duplicates.sql"))?;
    let sql = afb::index::sql::SqlSession::new(env.index.clone(), Default::default()).await?;
    let rows = afb::index::sql::render(&sql.query(&query).await?, afb::index::sql::OutputFormat::Csv)?;
    let lines: Vec<&str> = rows.lines().collect();
    ensure!(lines.len() == 2, "a header and exactly one pair: {rows}");
    ensure!(lines[1] == format!("5000,{want},2,5000,/a.bin"), "{rows}");

    // The next backup: c.bin rewritten. The scan keeps the hashes of the unchanged files in its own
    // rows; the backup's hash layer holds only c.bin's new hash.
    let other2 = printable(5000, 9);
    env.share.file("c.bin").upload(Bytes::from(other2.clone()), &NodeProps::default()).await?;
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_unchanged == 2 && s.files_changed == 1, "the known hashes make no file look modified: {s:?}");
    let h = hashes_by_name(&env.index).await?;
    ensure!(h["a.bin"] == (want, want) && h["copy.bin"] == (want, want), "{h:?}");
    ensure!(h["c.bin"] == (xorhash64(&afb::backup::restore::xorhash(&other2)), 0), "{h:?}");
    let m = env.index.latest("t1", "s1").await?.unwrap();
    let layer = afb::index::hashes::open(env.index.store(), "t1", "s1", m.snapshot_id).await?.expect("a hash layer");
    let mut layer = layer;
    let mut pairs = Vec::new();
    while let Some(p) = layer.next_pair().await? {
        pairs.push(p);
    }
    ensure!(pairs.len() == 1, "only the rewritten file's hash is new: {pairs:?}");
    // The diff of the two snapshots, by change records (a.bin's stored hash went from 0 to known) and
    // by full merge: only c.bin is modified.
    let first = env.index.manifest("t1", "s1", m.snapshot_id - 1).await?;
    for full in [false, true] {
        let mut changed = Vec::new();
        let on_change = |c: &afb::index::diff::Change| {
            changed.push((c.new.as_ref().unwrap().name.clone(), c.modified, c.renamed, c.moved));
            Ok(())
        };
        let d = match full {
            false => afb::index::diff::diff_snapshots(&env.index, &first, &m, on_change).await?,
            true => afb::index::diff::diff_snapshots_full(&env.index, &first, &m, on_change).await?,
        };
        ensure!(changed == [("c.bin".to_string(), true, false, false)], "full merge {full}: {changed:?}");
        ensure!(d.unchanged.count == 3, "{d:?}");
    }
    // A third backup of the unchanged share: its snapshot stores c.bin's hash (learned by the second
    // backup) in its own row; the diff through that change record reports nothing.
    let s = backup_share(&mut repo, &env.index, &env.share, &NoProgress).await?;
    ensure!(s.files_unchanged == 3 && s.bytes_read == 0, "{s:?}");
    let third = env.index.latest("t1", "s1").await?.unwrap();
    ensure!(third.changes.as_ref().is_some_and(|c| c.after.rows == 1), "c.bin's hash moved into the rows: {third:?}");
    let d = afb::index::diff::diff_snapshots(&env.index, &m, &third, |c| anyhow::bail!("{c:?} reported")).await?;
    ensure!(d.unchanged.count == 4, "{d:?}");
    let rows = afb::index::sql::render(&sql_again(&env.index, &query).await?, afb::index::sql::OutputFormat::Csv)?;
    ensure!(rows.lines().count() == 2 && rows.contains(",2,5000,/a.bin"), "{rows}");
    env.shutdown().await;
    Ok(())
}

async fn sql_again(index: &NodeIndex, query: &str) -> Result<Vec<arrow::array::RecordBatch>> {
    afb::index::sql::SqlSession::new(index.clone(), Default::default()).await?.query(query).await
}
