//! Virtual shares of the emulator (`--virtual-share`), through the product's own client: a full
//! listing has every file once, content is the same for the same seed (and differs for another),
//! snapshots freeze a generation and the next generation has every kind of change, writes are refused,
//! and the emulator's memory stays flat while it serves pages from deep in a 10-million-file share.

use afb::azure::client::{DirectoryClient, FileServiceClient, ShareClient};
use afb::azure::model::{Entry, EntryKind};
use afb::emulator::virtual_share::VirtualShareSpec;
use afb::emulator::{Emulator, EmulatorConfig};
use futures::TryStreamExt as _;
use std::collections::HashMap;

fn start(data: &std::path::Path, specs: &[&str]) -> Emulator {
    Emulator::start(EmulatorConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data: data.to_path_buf(),
        faults: Default::default(),
        virtual_shares: specs.iter().map(|s| VirtualShareSpec::parse(s).unwrap()).collect(),
        tls: Default::default(),
    })
    .unwrap()
}

fn share(emu: &Emulator, name: &str) -> ShareClient {
    FileServiceClient::from_connection_string(&emu.connection_string()).unwrap().share(name)
}

/// Every file below `dir` as (path, entry), walking directories depth first in listing order.
async fn walk(dir: DirectoryClient) -> Vec<(String, Entry)> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let entries: Vec<Entry> = d.list().try_collect().await.unwrap();
        let mut subdirs = Vec::new();
        for e in entries {
            let path = if d.path().is_empty() { e.name.clone() } else { format!("{}/{}", d.path(), e.name) };
            match e.kind {
                EntryKind::Directory => subdirs.push(d.subdirectory(&e.name)),
                EntryKind::File => out.push((path, e)),
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out
}

async fn read(share: &ShareClient, path: &str) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = share.file(path).download().try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_file_once_and_content_depends_only_on_the_seed() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = start(dirs[0].path(), &["virt=5000,seed=1"]);
    let b = start(dirs[1].path(), &["virt=5000,seed=1"]);
    let c = start(dirs[2].path(), &["virt=5000,seed=2"]);
    let files = walk(share(&a, "virt").root()).await;
    assert_eq!(files.len(), 5000);
    let ids: std::collections::HashSet<_> = files.iter().map(|(_, e)| e.file_id.clone().unwrap()).collect();
    assert_eq!(ids.len(), 5000, "FileIds are unique");
    assert_eq!(files[0].0, "d0000/f000000.dat");
    assert_eq!(files[4999].0, "d0004/f004999.dat");
    assert!(files.iter().all(|(_, e)| e.last_write_time.is_some() && e.permission_key.is_some()));
    // The same tree from a second emulator with the same seed; another seed gives other sizes.
    let twin = walk(share(&b, "virt").root()).await;
    let summary = |f: &[(String, Entry)]| -> Vec<(String, u64, Option<String>)> {
        f.iter().map(|(p, e)| (p.clone(), e.size, e.file_id.clone())).collect()
    };
    assert_eq!(summary(&files), summary(&twin));
    let other = walk(share(&c, "virt").root()).await;
    assert_ne!(summary(&files), summary(&other));

    let sample: Vec<&(String, Entry)> = files.iter().filter(|(_, e)| e.size > 16).step_by(500).collect();
    assert!(sample.len() >= 5);
    for (path, e) in sample {
        let first = read(&share(&a, "virt"), path).await;
        assert_eq!(first.len() as u64, e.size);
        assert_eq!(read(&share(&a, "virt"), path).await, first, "{path} read twice");
        assert_eq!(read(&share(&b, "virt"), path).await, first, "{path} from a twin emulator");
        assert_ne!(read(&share(&c, "virt"), path).await, first, "{path} with another seed");
        let (part, total) = share(&a, "virt").file(path).download_range(5, 11).await.unwrap();
        assert_eq!((&part[..], total), (&first[5..16], e.size));
    }
    // The larger files exist too (1 in 1000), so chunking gets exercised.
    let big = walk(share(&a, "virt").root()).await.into_iter().filter(|(_, e)| e.size > 64 * 1024).count();
    assert!(big >= 1, "at least one file above 64 KiB in 5000");
    for emu in [a, b, c] {
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_freeze_a_generation_and_the_next_one_changes_every_kind_of_thing() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(dir.path(), &["chg=5000,seed=3,change=0.02"]);
    let live = share(&emu, "chg");
    let gen0 = walk(live.root()).await;
    // Writes are refused with one clear error.
    let err = live.file("d0000/new.txt").create(1, &Default::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("VirtualShareIsReadOnly")));
    let err = live.directory("d0000/f000001.dat").delete().await.unwrap_err();
    assert_eq!(err.status(), Some(409));

    let s0 = live.create_snapshot().await.unwrap();
    let s1 = live.create_snapshot().await.unwrap();
    let at0 = walk(live.at_snapshot(&s0).root()).await;
    let at1 = walk(live.at_snapshot(&s1).root()).await;
    let key = |f: &[(String, Entry)]| -> Vec<(String, u64, Option<String>)> {
        f.iter().map(|(p, e)| (p.clone(), e.size, e.etag.clone())).collect()
    };
    assert_eq!(key(&at0), key(&gen0), "the first snapshot is generation 0");
    let by_id = |f: &[(String, Entry)]| -> HashMap<String, (String, Entry)> {
        f.iter().map(|(p, e)| (e.file_id.clone().unwrap(), (p.clone(), e.clone()))).collect()
    };
    let (before, after) = (by_id(&at0), by_id(&at1));
    let deleted = before.keys().filter(|k| !after.contains_key(*k)).count();
    let added = after.keys().filter(|k| !before.contains_key(*k)).count();
    let modified: Vec<&String> =
        before.keys().filter(|k| after.get(*k).is_some_and(|(_, e)| e.etag != before[*k].1.etag)).collect();
    let moved = before.keys().filter(|k| after.get(*k).is_some_and(|(p, _)| *p != before[*k].0)).count();
    // 2% modified, 1% deleted, 1% added of 5,000, with room for chance.
    assert!((50..160).contains(&modified.len()), "modified {}", modified.len());
    assert!((20..90).contains(&deleted), "deleted {deleted}");
    assert!((15..90).contains(&added), "added {added}");
    assert!(moved >= 900, "a directory of 1,000 files was renamed: {moved} moved");

    // List Ranges against the previous snapshot: the whole file when its content changed, else nothing.
    let newer = live.at_snapshot(&s1);
    let changed =
        modified.iter().map(|k| &after[*k]).find(|(p, e)| e.size > 0 && before[&e.file_id.clone().unwrap()].0 == *p);
    let (path, e) = changed.expect("a modified file that kept its path");
    let diff = newer.file(path).list_ranges(Some(&s0)).await.unwrap();
    assert_eq!(diff.ranges.len(), 1);
    assert_eq!((diff.ranges[0].start, diff.ranges[0].end), (0, e.size - 1));
    let (same_path, _) = after
        .iter()
        .find(|(k, (p, e))| before.get(*k).is_some_and(|(q, old)| q == p && old.etag == e.etag))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(newer.file(&same_path).list_ranges(Some(&s0)).await.unwrap().ranges.is_empty());
    emu.shutdown().await;
}

/// A child process killed when the test ends, even by a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `afb emulator` serving a 10,000,000-file virtual share: pages from deep directories, lookups and
/// reads all over the tree, and the process's resident memory does not grow with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_on_a_ten_million_file_share() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
            .args(["emulator", "--addr", "127.0.0.1:0", "--data", dir.path().to_str().unwrap()])
            .args(["--virtual-share", "huge=10M,seed=5,change=0.001"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let huge = FileServiceClient::from_connection_string(line.trim()).unwrap().share("huge");
    let pid = child.0.id();
    // Leaves are `d000a/d0bbb`: 10 top directories of 1,000 leaves of 1,000 files.
    let visit = |top: u64, leaf: u64| {
        let huge = huge.clone();
        async move {
            let d = huge.directory(&format!("d{top:04}/d{leaf:04}"));
            let page = d.list_page(None, Some(1000)).await.unwrap();
            assert_eq!(page.entries.len(), 1000);
            let first = &page.entries[0];
            assert_eq!(first.name, format!("f{:07}.dat", (top * 1000 + leaf) * 1000));
            let f = d.file(&page.entries[999].name);
            assert_eq!(f.properties().await.unwrap().content_length, page.entries[999].size);
        }
    };
    for i in 0..5 {
        visit(i, i * 7).await;
    }
    let warm = rss_kib(pid);
    let started = std::time::Instant::now();
    for i in 0..40u64 {
        visit(9 - i % 10, 999 - i * 23 % 1000).await;
    }
    let after = rss_kib(pid);
    eprintln!(
        "10M-file virtual share: RSS {warm} KiB after warm-up, {after} KiB after 40 more pages ({:?})",
        started.elapsed()
    );
    drop(child);
    assert!(after <= warm + 4096, "RSS grew from {warm} KiB to {after} KiB");
    assert!(after < 200 * 1024, "RSS {after} KiB");
}

/// A virtual share's snapshots survive a restart with the same spec; another spec starts it afresh; a
/// stored share cannot be shadowed by a virtual one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_snapshots_only_for_the_same_spec() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(dir.path(), &["keep=1500,seed=1,change=0.1"]);
    let snap = share(&emu, "keep").create_snapshot().await.unwrap();
    let gen1 = walk(share(&emu, "keep").root()).await;
    emu.shutdown().await;

    let emu = start(dir.path(), &["keep=1500,seed=1,change=0.1"]);
    let snapshots = FileServiceClient::from_connection_string(&emu.connection_string())
        .unwrap()
        .list_share_snapshots("keep")
        .await
        .unwrap();
    assert_eq!(snapshots.iter().filter(|s| s.snapshot.as_deref() == Some(snap.as_str())).count(), 1);
    let again = walk(share(&emu, "keep").root()).await;
    assert_eq!(again.len(), gen1.len(), "the live share is still at generation 1");
    // Stored shares of other names live beside virtual ones.
    share(&emu, "stored").create().await.unwrap();
    emu.shutdown().await;

    let emu = start(dir.path(), &["keep=1500,seed=2,change=0.1"]);
    let snapshots = FileServiceClient::from_connection_string(&emu.connection_string())
        .unwrap()
        .list_share_snapshots("keep")
        .await
        .unwrap();
    assert!(snapshots.iter().all(|s| s.snapshot.is_none()), "another spec drops the old snapshots");
    assert_eq!(walk(share(&emu, "keep").root()).await.len(), 1500, "and starts at generation 0");
    emu.shutdown().await;

    let clash = Emulator::start(EmulatorConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data: dir.path().to_path_buf(),
        faults: Default::default(),
        virtual_shares: vec![VirtualShareSpec::parse("stored=10").unwrap()],
        tls: Default::default(),
    });
    let err = clash.err().expect("a stored share of that name is an error").to_string();
    assert!(err.contains("stored is a stored share"), "{err}");
}
