//! Format fixtures: `tests/fixtures/format-v1/` holds a tiny repository (content, node versions, node
//! index) written by the code of 2026-12 and checked in, with its master key. The specs
//! (docs/repository.md, docs/index.md) promise that fields are only ever appended; this test holds every
//! later version of afb to that: it must still restore, verify and diff the repository exactly as
//! `pinned.txt` records.
//!
//! The share behind it: a directory of small files (bundled), a 600 KiB file (several chunks), a
//! top-level file; then the directory renamed, a file deleted, one file changed, and a second backup.
//! Rewrite the fixture only for a new format version, into a new directory (`format-v2`), keeping this
//! one: `AFB_WRITE_FIXTURES=tests/fixtures/format-vN cargo test --test it write_format_fixture -- --ignored`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use afb::azure::credential::AccountConfig;
use afb::azure::{ClientOptions, FileServiceClient, NodeProps};
use afb::backup::NoProgress;
use afb::backup::cli::backup_share;
use afb::backup::restore::{RestoreOptions, Target, restore};
use afb::backup::verify::{VerifyOptions, verify};

use afb::index::NodeIndex;
use afb::index::diff::diff_snapshots;
use afb::repository::{MasterKey, Repository, RepositoryConfig};
use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::support::tree::read_tree;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1");
const TENANT: &str = "t1";
const SHARE: &str = "s1";

/// Deterministic content: `len` bytes from `seed`, very compressible (runs of one of four letters), so
/// the checked-in packs stay small; a file above the largest chunk (256 KiB) has several chunks.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let run = (x % 2048) as usize + 64;
        out.extend(std::iter::repeat_n(b'a' + (x >> 32) as u8 % 4, run.min(len - out.len())));
    }
    out
}

fn store(root: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(root).unwrap())
}

/// What the test pins, one line per fact: per backup (oldest first) every restored file with its size
/// and BLAKE3; per index snapshot its rows; the diff between the two index snapshots.
async fn describe(repo_dir: &Path, master: &MasterKey) -> Result<Vec<String>> {
    let mut repo = Repository::open(store(repo_dir), master, TENANT, SHARE, RepositoryConfig::default()).await?;
    let index = NodeIndex::open(repo_dir.to_str().unwrap())?;
    let mut lines = Vec::new();
    // Backups oldest first: each names its parent.
    let mut manifests = Vec::new();
    for id in repo.list_snapshots().await? {
        manifests.push(repo.load_manifest(&id).await?);
    }
    manifests.sort_by_key(|m| (m.parent.is_some(), m.created_ns));
    for (n, m) in manifests.iter().enumerate() {
        let out = tempfile::tempdir()?;
        let target = Target::Local(out.path().to_path_buf());
        let opts = RestoreOptions {
            snapshot: Some(m.snapshot_id.clone()),
            path: None,
            target,
            overwrite: false,
            concurrency: Default::default(),
        };
        let sum = restore(&mut repo, opts).await?;
        ensure!(sum.damaged.is_empty() && sum.conflicts.is_empty(), "restore of backup {n}: {sum:?}");
        for (path, data) in read_tree(out.path()) {
            lines.push(format!("backup {n} file {path} {} {}", data.len(), blake3::hash(&data).to_hex()));
        }
        let versions = crate::support::versions(&repo, m).await?;
        for v in versions.values() {
            let name = v.name.as_deref().unwrap_or_default();
            let xorhash: String = v.xorhash.iter().flatten().map(|b| format!("{b:02x}")).collect();
            lines.push(format!(
                "backup {n} version {} parent {} {name:?} {:?} size {} attributes {:#x} mtime {} xorhash {xorhash} chunks {} bundled {}",
                v.node_id,
                v.parent_id,
                v.kind,
                v.size,
                v.attributes,
                v.last_write_time_ns,
                v.chunk_lengths.as_ref().map_or(0, Vec::len),
                v.bundle.is_some()
            ));
        }
        let verified = verify(
            &mut repo,
            VerifyOptions {
                snapshot: Some(m.snapshot_id.clone()),
                read_data: true,
                read_data_subset: 0.0,
                index: Some(&index),
                compare_live: None,
            },
        )
        .await?;
        ensure!(verified.problems.is_empty(), "verify of backup {n}: {:?}", verified.problems);
    }
    let snapshots = index.manifests(TENANT, SHARE).await?;
    for m in &snapshots {
        let batches: Vec<_> = index.read(m, None)?.try_collect().await?;
        for b in &batches {
            for node in afb::index::node::batch_to_nodes(b) {
                lines.push(format!(
                    "index {} row {} parent {} {:?} {:?} size {} mtime {}",
                    m.snapshot_id, node.node_id, node.parent_id, node.name, node.kind, node.size, node.mtime
                ));
            }
        }
    }
    ensure!(snapshots.len() == 2, "two index snapshots, found {}", snapshots.len());
    diff_snapshots(&index, &snapshots[0], &snapshots[1], |c| {
        let name = |n: &Option<afb::index::node::Node>| n.as_ref().map_or(String::new(), |n| n.name.clone());
        lines.push(format!(
            "diff {} {} modified {} renamed {} moved {} {:?} -> {:?}",
            c.node_id(),
            c.kind.as_str(),
            c.modified,
            c.renamed,
            c.moved,
            name(&c.old),
            name(&c.new)
        ));
        Ok(())
    })
    .await?;
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_v1_fixture_restores_verifies_and_diffs_as_written() -> Result<()> {
    let fixture = PathBuf::from(FIXTURE);
    // Work on a copy: restore and verify must not write into the checked-in tree (the chunk index may
    // be rebuilt, for example).
    let work = tempfile::tempdir()?;
    copy_tree(&fixture.join("repo"), &work.path().join("repo"))?;
    let master = MasterKey::from_hex(std::fs::read_to_string(fixture.join("master-key.hex"))?.trim())?;
    let have = describe(&work.path().join("repo"), &master).await?;
    let want: Vec<String> = std::fs::read_to_string(fixture.join("pinned.txt"))?.lines().map(str::to_string).collect();
    for (i, (h, w)) in have.iter().zip(&want).enumerate() {
        ensure!(h == w, "pinned.txt line {}: the fixture now reads as\n  {h}\nbut was written as\n  {w}", i + 1);
    }
    ensure!(have.len() == want.len(), "{} lines read, {} pinned", have.len(), want.len());
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// Writes a new fixture into `$AFB_WRITE_FIXTURES` (see the module documentation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a format fixture; run by hand for a new format version"]
async fn write_format_fixture() -> Result<()> {
    let out = PathBuf::from(std::env::var("AFB_WRITE_FIXTURES").context("set AFB_WRITE_FIXTURES to a new directory")?);
    ensure!(!out.exists(), "{} exists: fixtures are never rewritten", out.display());
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("emu"))?;
    let emulator = crate::support::emulator(&tmp.path().join("emu"), Default::default());
    let svc = FileServiceClient::new(
        AccountConfig::from_connection_string(&emulator.connection_string())?,
        ClientOptions::default(),
    )?;
    let share = svc.share("src");
    share.create().await?;
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for d in ["docs", "big"] {
        share.directory(d).create(&NodeProps::default()).await?;
    }
    for (i, p) in ["docs/a.txt", "docs/b.txt", "docs/c.txt"].into_iter().enumerate() {
        files.insert(p, content(300 + 700 * i, i as u64));
    }
    files.insert("big/disk.img", content(600 << 10, 10));
    files.insert("top.txt", b"top\n".to_vec());
    files.insert("gone.txt", b"deleted before the second backup\n".to_vec());
    for (p, d) in &files {
        let props = NodeProps { attributes: Some("Archive".into()), ..Default::default() };
        share.file(p).upload(Bytes::from(d.clone()), &props).await?;
    }
    let repo_dir = out.join("repo");
    std::fs::create_dir_all(&repo_dir)?;
    let master = MasterKey::generate();
    let index = NodeIndex::open(repo_dir.to_str().unwrap())?;
    let mut repo = Repository::open(store(&repo_dir), &master, TENANT, SHARE, RepositoryConfig::default()).await?;
    backup_share(&mut repo, &index, &share, &NoProgress).await?;
    share.directory("docs").rename("papers").await?;
    share.file("gone.txt").delete().await?;
    share.file("top.txt").upload(Bytes::from_static(b"top, changed\n"), &NodeProps::default()).await?;
    backup_share(&mut repo, &index, &share, &NoProgress).await?;
    emulator.shutdown().await;
    std::fs::write(out.join("master-key.hex"), format!("{}\n", master.to_hex()))?;
    let lines = describe(&repo_dir, &master).await?;
    std::fs::write(out.join("pinned.txt"), lines.join("\n") + "\n")?;
    Ok(())
}

#[test]
fn fixture_content_is_deterministic() {
    assert_eq!(content(100, 3), content(100, 3));
    assert_ne!(content(100, 3), content(100, 4));
    assert_eq!(content(600 << 10, 10).len(), 600 << 10);
}
