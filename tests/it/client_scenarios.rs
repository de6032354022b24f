//! End-to-end scenarios of the Azure Files client, the same ones the Python SDK conformance suite runs
//! against the emulator: shares, snapshot isolation, SMB and NFS properties, permissions, ranges,
//! List Ranges against a previous snapshot, rename keeping the FileId, paging, unicode names, errors,
//! and listing and downloading with faults injected.
//!
//! Each scenario is a function of a [`FileServiceClient`] and a fresh share name, so the same code runs
//! against the in-process emulator and, when `AFB_TEST_AZURE_CONNECTION_STRING` is set, against a real
//! storage account (`real_account_scenarios`; NFS runs there only when `AFB_TEST_AZURE_NFS=1`, since it
//! needs a premium account).

use afb::azure::credential::{AccountConfig, Credential, SasFields};
use afb::azure::{
    ClientOptions, EntryKind, FileServiceClient, NfsProperties, NodeProps, Permission, RetryPolicy, ShareOptions,
    parse_file_time,
};
use afb::emulator::{Emulator, faults::FaultConfig};
use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;
use futures::TryStreamExt as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SDDL: &str = "O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)";

/// Deterministic bytes (xorshift), so failures reproduce.
fn data(len: usize, seed: u64) -> Bytes {
    crate::support::bytes::xorshift(seed | 1).take(len).map(|x| x as u8).collect::<Vec<u8>>().into()
}

async fn download_all(file: &afb::azure::FileClient) -> Result<Vec<u8>> {
    let chunks: Vec<Bytes> = file.download().try_collect().await?;
    Ok(chunks.concat())
}

async fn names(dir: &afb::azure::DirectoryClient) -> Result<BTreeSet<String>> {
    let entries: Vec<_> = dir.list().try_collect().await?;
    Ok(entries.into_iter().map(|e| e.name).collect())
}

async fn shares(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create_with(&ShareOptions {
        quota_gib: Some(7),
        metadata: [("purpose".to_string(), "test".to_string())].into(),
        ..Default::default()
    })
    .await?;
    let again = s.create().await.expect_err("creating an existing share fails");
    ensure!(again.status() == Some(409) && again.code() == Some("ShareAlreadyExists"), "{again}");
    let listed = svc.list_shares().await?;
    let item = listed.iter().find(|i| i.name == share).context("created share is listed")?;
    ensure!(item.quota_gib == Some(7), "{item:?}");
    ensure!(item.metadata.get("purpose").map(String::as_str) == Some("test"), "{item:?}");
    let props = s.properties().await?;
    ensure!(props.quota_gib == Some(7) && props.etag.is_some(), "{props:?}");
    s.delete().await?;
    ensure!(!svc.list_shares().await?.iter().any(|i| i.name == share), "deleted share still listed");
    let e = s.properties().await.expect_err("deleted share has no properties");
    ensure!(e.code() == Some("ShareNotFound"), "{e}");
    Ok(())
}

async fn snapshot_isolation(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    s.directory("d").create(&NodeProps::default()).await?;
    s.file("d/a.txt").upload(Bytes::from_static(b"version one"), &NodeProps::default()).await?;
    s.file("d/gone.txt").upload(Bytes::from_static(b"bye"), &NodeProps::default()).await?;
    let ts = s.create_snapshot().await?;
    ensure!(parse_file_time(&ts).is_some(), "snapshot timestamp {ts:?}");

    s.file("d/a.txt").upload(Bytes::from_static(b"version two!"), &NodeProps::default()).await?;
    s.file("d/new.txt").upload(Bytes::from_static(b"new"), &NodeProps::default()).await?;
    s.file("d/gone.txt").delete().await?;

    let snap = s.at_snapshot(&ts);
    ensure!(download_all(&snap.file("d/a.txt")).await? == b"version one");
    ensure!(download_all(&s.file("d/a.txt")).await? == b"version two!");
    ensure!(names(&snap.directory("d")).await? == BTreeSet::from(["a.txt".to_string(), "gone.txt".to_string()]));
    ensure!(names(&s.directory("d")).await? == BTreeSet::from(["a.txt".to_string(), "new.txt".to_string()]));
    ensure!(snap.file("d/a.txt").properties().await?.content_length == 11);
    let e = snap
        .file("d/x")
        .upload(Bytes::from_static(b"x"), &NodeProps::default())
        .await
        .expect_err("snapshots are read-only");
    ensure!(e.to_string().contains("read-only"), "{e}");
    s.delete().await?;
    Ok(())
}

async fn smb_properties(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    let created = parse_file_time("2020-01-02T03:04:05.1234567Z").unwrap();
    let written = parse_file_time("2021-02-03T04:05:06.7654321Z").unwrap();
    let dir_props = NodeProps {
        attributes: Some("Directory|Hidden".into()),
        creation_time: Some(created),
        last_write_time: Some(written),
        permission: Some(Permission::Sddl(SDDL.into())),
        metadata: [("owner".to_string(), "team-a".to_string())].into(),
        ..Default::default()
    };
    let dir = s.directory("projects");
    dir.create(&dir_props).await?;
    let dp = dir.properties().await?;
    ensure!(dp.creation_time == Some(created) && dp.last_write_time == Some(written), "{dp:?}");
    ensure!(dp.attributes.as_deref().is_some_and(|a| a.contains("Hidden") && a.contains("Directory")), "{dp:?}");
    ensure!(dp.metadata.get("owner").map(String::as_str) == Some("team-a"), "{dp:?}");
    let dir_key = dp.permission_key.clone().context("directory has a permission key")?;

    let file = dir.file("plan.txt");
    let fprops = NodeProps {
        attributes: Some("ReadOnly|Archive".into()),
        creation_time: Some(created),
        last_write_time: Some(written),
        permission: Some(Permission::Key(dir_key.clone())),
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    file.create(1234, &fprops).await?;
    let fp = file.properties().await?;
    ensure!(fp.content_length == 1234, "{fp:?}");
    ensure!(fp.creation_time == Some(created) && fp.last_write_time == Some(written), "{fp:?}");
    ensure!(fp.attributes.as_deref().is_some_and(|a| a.contains("ReadOnly") && a.contains("Archive")), "{fp:?}");
    ensure!(fp.permission_key.as_deref() == Some(dir_key.as_str()), "{fp:?}");
    ensure!(fp.file_id.is_some() && fp.parent_id == dp.file_id, "{fp:?} parent {dp:?}");

    // The listing carries everything the HEAD did.
    let entries: Vec<_> = dir.list().try_collect().await?;
    ensure!(entries.len() == 1, "{entries:?}");
    let e = &entries[0];
    ensure!(e.kind == EntryKind::File && e.name == "plan.txt" && e.size == 1234, "{e:?}");
    ensure!(e.file_id == fp.file_id && e.permission_key == fp.permission_key && e.etag.is_some(), "{e:?}");
    ensure!(
        e.creation_time == fp.creation_time && e.last_write_time == fp.last_write_time && e.change_time.is_some(),
        "{e:?}"
    );
    ensure!(e.last_access_time.is_some() && e.attributes.is_some(), "{e:?}");

    // Set properties: resize, new attributes; times not sent are preserved.
    let set = NodeProps { attributes: Some("Archive".into()), ..Default::default() };
    file.set_properties(&set, Some(4096)).await?;
    let fp2 = file.properties().await?;
    ensure!(fp2.content_length == 4096 && fp2.creation_time == Some(created), "{fp2:?}");
    ensure!(fp2.attributes.as_deref().is_some_and(|a| !a.contains("ReadOnly")), "{fp2:?}");
    file.set_metadata(&[("k".to_string(), "v".to_string())].into()).await?;
    ensure!(file.properties().await?.metadata == BTreeMap::from([("k".to_string(), "v".to_string())]));
    dir.set_metadata(&BTreeMap::new()).await?;
    ensure!(dir.properties().await?.metadata.is_empty());
    dir.set_properties(&NodeProps { attributes: Some("Directory".into()), ..Default::default() }).await?;
    ensure!(dir.properties().await?.creation_time == Some(created));

    // Directories must be empty to be deleted.
    let e = dir.delete().await.expect_err("non-empty directory");
    ensure!(e.status() == Some(409), "{e}");
    file.delete().await?;
    dir.delete().await?;
    s.delete().await?;
    Ok(())
}

async fn nfs_properties(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create_with(&ShareOptions { enabled_protocols: Some("NFS".into()), ..Default::default() }).await?;
    let nfs = NfsProperties { mode: Some("0750".into()), owner: Some("1000".into()), group: Some("100".into()) };
    s.directory("home").create(&NodeProps { nfs: nfs.clone(), ..Default::default() }).await?;
    ensure!(s.directory("home").properties().await?.nfs == nfs);
    let file = s.file("home/run.sh");
    let fnfs = NfsProperties { mode: Some("0755".into()), owner: Some("1000".into()), group: Some("1000".into()) };
    file.create(10, &NodeProps { nfs: fnfs.clone(), ..Default::default() }).await?;
    ensure!(file.properties().await?.nfs == fnfs);
    file.set_properties(
        &NodeProps { nfs: NfsProperties { mode: Some("0644".into()), ..Default::default() }, ..Default::default() },
        None,
    )
    .await?;
    let after = file.properties().await?.nfs;
    ensure!(after.mode.as_deref() == Some("0644") && after.owner.as_deref() == Some("1000"), "{after:?}");
    s.delete().await?;
    Ok(())
}

async fn permissions(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    let key = s.create_permission(SDDL).await?;
    ensure!(!key.is_empty());
    let back = s.get_permission(&key).await?;
    ensure!(back.starts_with("O:BAG:SY") && back.contains("(A;;FA;;;BA)"), "{back}");
    ensure!(s.create_permission(SDDL).await? == key, "the same SDDL gives the same key");
    let f = s.file("f");
    f.create(0, &NodeProps { permission: Some(Permission::Key(key.clone())), ..Default::default() }).await?;
    let fkey = f.properties().await?.permission_key.context("file has a permission key")?;
    ensure!(s.get_permission(&fkey).await?.contains("(A;;FA;;;BA)"));
    let e = s.get_permission("12345*999").await.expect_err("unknown key");
    ensure!(e.status().is_some_and(|st| st == 404 || st == 400), "{e}");
    s.delete().await?;
    Ok(())
}

async fn ranges_up_and_down(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    let content = data(9 * 1024 * 1024 + 123, 7);
    let f = s.file("big.bin");
    f.upload(content.clone(), &NodeProps::default()).await?;
    ensure!(download_all(&f).await? == content[..], "whole download differs");
    let (part, total) = f.download_range(4 * 1024 * 1024 - 10, 20).await?;
    ensure!(total == content.len() as u64 && part[..] == content[4 * 1024 * 1024 - 10..4 * 1024 * 1024 + 10]);
    // Past the end: only what exists.
    let (tail, _) = f.download_range(content.len() as u64 - 5, 100).await?;
    ensure!(tail[..] == content[content.len() - 5..]);

    let ranges = f.list_ranges(None).await?;
    let covered: u64 = ranges.ranges.iter().map(|r| r.len()).sum();
    ensure!(covered >= content.len() as u64 && ranges.content_length == Some(content.len() as u64), "{ranges:?}");

    f.clear_range(1024 * 1024, 512).await?;
    let after = download_all(&f).await?;
    ensure!(after[1024 * 1024..1024 * 1024 + 512].iter().all(|b| *b == 0));
    ensure!(
        after[..1024 * 1024] == content[..1024 * 1024] && after[1024 * 1024 + 512..] == content[1024 * 1024 + 512..]
    );

    // A sparse file: only written ranges are listed.
    let sparse = s.file("sparse.bin");
    sparse.create(8 * 1024 * 1024, &NodeProps::default()).await?;
    sparse.put_range(4 * 1024 * 1024, data(512, 3)).await?;
    let r = sparse.list_ranges(None).await?;
    ensure!(
        r.ranges.len() == 1 && r.ranges[0].start == 4 * 1024 * 1024 && r.ranges[0].end == 4 * 1024 * 1024 + 511,
        "{r:?}"
    );
    let e = sparse.put_range(0, data(4 * 1024 * 1024 + 1, 1)).await.expect_err("ranges are at most 4 MiB");
    ensure!(e.to_string().contains("4 MiB"), "{e}");

    // An empty file downloads as nothing.
    let empty = s.file("empty");
    empty.create(0, &NodeProps::default()).await?;
    ensure!(download_all(&empty).await?.is_empty());
    s.delete().await?;
    Ok(())
}

async fn ranges_since_snapshot(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    let f = s.file("disk.img");
    f.upload(data(3 * 1024 * 1024, 11), &NodeProps::default()).await?;
    let s1 = s.create_snapshot().await?;
    f.put_range(1024 * 1024, data(512, 12)).await?;
    f.clear_range(2 * 1024 * 1024, 512).await?;
    let s2 = s.create_snapshot().await?;
    f.put_range(0, data(512, 13)).await?;

    let diff = s.at_snapshot(&s2).file("disk.img").list_ranges(Some(&s1)).await?;
    let changed: Vec<_> = diff.ranges.iter().map(|r| (r.start, r.end)).collect();
    ensure!(changed.contains(&(1024 * 1024, 1024 * 1024 + 511)), "{diff:?}");
    ensure!(!changed.iter().any(|(a, _)| *a == 0), "a write after s2 must not show: {diff:?}");
    let cleared: Vec<_> = diff.clear_ranges.iter().map(|r| (r.start, r.end)).collect();
    ensure!(cleared.contains(&(2 * 1024 * 1024, 2 * 1024 * 1024 + 511)), "{diff:?}");

    let live = f.list_ranges(Some(&s2)).await?;
    ensure!(live.ranges.iter().any(|r| r.start == 0 && r.end == 511), "{live:?}");
    s.delete().await?;
    Ok(())
}

async fn rename_keeps_file_id(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    for d in ["src", "dst"] {
        s.directory(d).create(&NodeProps::default()).await?;
    }
    let f = s.file("src/a.txt");
    f.upload(Bytes::from_static(b"hello"), &NodeProps::default()).await?;
    let id = f.properties().await?.file_id;
    let moved = f.rename("dst/b.txt", false).await?;
    ensure!(moved.path() == "dst/b.txt");
    ensure!(moved.properties().await?.file_id == id, "FileId kept across rename");
    ensure!(f.properties().await.expect_err("old path is gone").is_not_found());
    s.file("src/c.txt").upload(Bytes::from_static(b"c"), &NodeProps::default()).await?;
    let e = s.file("src/c.txt").rename("dst/b.txt", false).await.expect_err("destination exists");
    ensure!(e.status() == Some(409), "{e}");
    s.file("src/c.txt").rename("dst/b.txt", true).await?;
    ensure!(download_all(&s.file("dst/b.txt")).await? == b"c");

    let dir_id = s.directory("src").properties().await?.file_id;
    s.file("src/keep.txt").upload(Bytes::from_static(b"k"), &NodeProps::default()).await?;
    let renamed = s.directory("src").rename("dst/sub").await?;
    ensure!(renamed.properties().await?.file_id == dir_id, "directory FileId kept");
    ensure!(download_all(&renamed.file("keep.txt")).await? == b"k");
    ensure!(s.directory("src").properties().await.expect_err("old directory is gone").is_not_found());
    s.delete().await?;
    Ok(())
}

async fn paging(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    let dir = s.directory("many");
    dir.create(&NodeProps::default()).await?;
    let mut expected = BTreeSet::new();
    for i in 0..23 {
        let name = format!("file-{i:02}.txt");
        dir.file(&name).create(i, &NodeProps::default()).await?;
        expected.insert(name);
    }
    for i in 0..4 {
        let name = format!("dir-{i}");
        dir.subdirectory(&name).create(&NodeProps::default()).await?;
        expected.insert(name);
    }
    let first = dir.list_page(None, Some(5)).await?;
    ensure!(first.entries.len() == 5 && first.next_marker.is_some(), "{first:?}");
    let pages: Vec<_> = dir.list_pages(Some(5)).try_collect().await?;
    ensure!(pages.len() >= 6 && pages.iter().all(|p| p.entries.len() <= 5), "{} pages", pages.len());
    let mut seen = BTreeSet::new();
    for e in pages.iter().flat_map(|p| &p.entries) {
        ensure!(seen.insert(e.name.clone()), "{} listed twice", e.name);
        ensure!(e.file_id.is_some() && e.etag.is_some() && e.creation_time.is_some(), "{e:?}");
        if let Some(i) = e.name.strip_prefix("file-").and_then(|n| n.strip_suffix(".txt")) {
            ensure!(e.kind == EntryKind::File && e.size == i.parse::<u64>()?, "{e:?}");
        } else {
            ensure!(e.kind == EntryKind::Directory, "{e:?}");
        }
    }
    ensure!(seen == expected);
    ensure!(names(&dir).await? == expected);
    s.delete().await?;
    Ok(())
}

async fn unicode_names(svc: &FileServiceClient, share: &str) -> Result<()> {
    let s = svc.share(share);
    s.create().await?;
    // Everything Azure allows in a name except `" \ / : | < > * ?`.
    let dir_name = "café ñ 日本語 #%&+;=@[]{}";
    s.directory(dir_name).create(&NodeProps::default()).await?;
    let names_in: BTreeSet<String> = [
        "a b.txt",
        "ünïcödé.txt",
        "emoji 😀.bin",
        "100% & more.txt",
        "plus+equals=.txt",
        "quote'&amp;.txt",
        " lead.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (i, n) in names_in.iter().enumerate() {
        s.directory(dir_name)
            .file(n)
            .upload(Bytes::from(n.clone().into_bytes()), &NodeProps::default())
            .await
            .with_context(|| format!("upload {n:?} ({i})"))?;
    }
    ensure!(names(&s.directory(dir_name)).await? == names_in);
    ensure!(names(&s.root()).await? == BTreeSet::from([dir_name.to_string()]));
    for n in &names_in {
        ensure!(download_all(&s.directory(dir_name).file(n)).await? == n.as_bytes(), "content of {n:?}");
    }
    s.delete().await?;
    Ok(())
}

async fn errors(svc: &FileServiceClient, share: &str, config: &AccountConfig) -> Result<()> {
    // Missing share: the error names the operation, the share and the path.
    let e = svc.share(share).directory("a/b").list_page(None, None).await.expect_err("no such share");
    ensure!(e.code() == Some("ShareNotFound") && e.status() == Some(404), "{e}");
    let text = e.to_string();
    ensure!(text.starts_with(&format!("list directory {share}/a/b: 404 ShareNotFound")), "{text}");
    let e = svc.share(share).file("x/y.txt").properties().await.expect_err("no such share");
    ensure!(e.to_string().starts_with(&format!("get file properties {share}/x/y.txt: 404")), "{e}");

    // Missing parent / file inside an existing share.
    let s = svc.share(share);
    s.create().await?;
    let e = s.file("nodir/f").create(1, &NodeProps::default()).await.expect_err("no parent");
    ensure!(e.code() == Some("ParentNotFound"), "{e}");
    let e = s.file("nofile").properties().await.expect_err("no file");
    ensure!(e.is_not_found(), "{e}");

    // Wrong key.
    let wrong = AccountConfig {
        credential: Credential::shared_key(
            &config.account,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        )?,
        ..config.clone()
    };
    let bad = FileServiceClient::new(wrong, ClientOptions::default())?;
    let e = bad.share(share).properties().await.expect_err("wrong key");
    ensure!(e.status() == Some(403) && e.code() == Some("AuthenticationFailed"), "{e}");

    // Expired SAS (an account SAS signed with the real key, but in the past).
    if let Credential::SharedKey { account, key } = &config.credential {
        let fields = SasFields {
            version: "2025-11-05".into(),
            services: "f".into(),
            resource_types: "sco".into(),
            permissions: "rl".into(),
            start: "2020-01-01T00:00:00Z".into(),
            expiry: "2020-01-02T00:00:00Z".into(),
            ..Default::default()
        };
        let token = fields.clone().sign_account(account, key);
        let expired = FileServiceClient::new(
            AccountConfig { credential: Credential::Sas { token }, ..config.clone() },
            ClientOptions::default(),
        )?;
        let e = expired.share(share).root().list_page(None, None).await.expect_err("expired SAS");
        ensure!(e.status() == Some(403) && e.code() == Some("AuthenticationFailed"), "{e}");

        // And a valid SAS works.
        let valid = SasFields { start: String::new(), expiry: "2099-01-01T00:00:00Z".into(), ..fields };
        let token = valid.sign_account(account, key);
        let ok = FileServiceClient::new(
            AccountConfig { credential: Credential::Sas { token }, ..config.clone() },
            ClientOptions::default(),
        )?;
        ok.share(share).root().list_page(None, None).await?;
    }
    s.delete().await?;
    Ok(())
}

/// Runs every scenario against `config`, each on its own share named `{prefix}-{scenario}`.
async fn run_all(config: &AccountConfig, prefix: &str, nfs: bool) -> Result<()> {
    let svc = FileServiceClient::new(config.clone(), ClientOptions::default())?;
    let name = |s: &str| format!("{prefix}-{s}");
    shares(&svc, &name("shares")).await.context("shares")?;
    snapshot_isolation(&svc, &name("snap")).await.context("snapshot isolation")?;
    smb_properties(&svc, &name("smb")).await.context("SMB properties")?;
    if nfs {
        nfs_properties(&svc, &name("nfs")).await.context("NFS properties")?;
    }
    permissions(&svc, &name("perm")).await.context("permissions")?;
    ranges_up_and_down(&svc, &name("ranges")).await.context("ranges")?;
    ranges_since_snapshot(&svc, &name("diff")).await.context("ranges since snapshot")?;
    rename_keeps_file_id(&svc, &name("rename")).await.context("rename")?;
    paging(&svc, &name("paging")).await.context("paging")?;
    unicode_names(&svc, &name("unicode")).await.context("unicode names")?;
    errors(&svc, &name("errors"), config).await.context("errors")?;
    Ok(())
}

fn start_emulator(dir: &tempfile::TempDir, faults: FaultConfig) -> Result<Emulator> {
    Ok(crate::support::emulator(dir.path(), faults))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_scenarios() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = start_emulator(&dir, FaultConfig::default())?;
    let config = AccountConfig::from_connection_string(&emulator.connection_string())?;
    let result = run_all(&config, "afbtest", true).await;
    emulator.shutdown().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_account_scenarios() -> Result<()> {
    let Ok(conn) = std::env::var("AFB_TEST_AZURE_CONNECTION_STRING") else {
        println!("skipped: set AFB_TEST_AZURE_CONNECTION_STRING to run the scenarios against a real account");
        return Ok(());
    };
    let config = AccountConfig::from_connection_string(&conn)?;
    let nfs = std::env::var("AFB_TEST_AZURE_NFS").is_ok_and(|v| v == "1");
    let prefix = format!("afbtest{}", std::process::id());
    let result = run_all(&config, &prefix, nfs).await;
    // Best effort cleanup of shares a failed scenario left behind.
    if let Ok(svc) = FileServiceClient::new(config, ClientOptions::default())
        && let Ok(shares) = svc.list_shares().await
    {
        for s in shares.iter().filter(|s| s.name.starts_with(&prefix)) {
            let _ = svc.share(&s.name).delete().await;
        }
    }
    result
}

/// With 503s, 500s, connection resets and latency injected (seeded), a listing and a download still
/// return exactly the right data, and retries were needed to get there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_to_correct_results() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let setup = start_emulator(&dir, FaultConfig::default())?;
    let config = AccountConfig::from_connection_string(&setup.connection_string())?;
    let svc = FileServiceClient::new(config, ClientOptions::default())?;
    let s = svc.share("faulty");
    s.create().await?;
    let d = s.directory("d");
    d.create(&NodeProps::default()).await?;
    let mut expected = BTreeSet::new();
    for i in 0..40 {
        let name = format!("f{i:02}");
        d.file(&name).create(i, &NodeProps::default()).await?;
        expected.insert(name);
    }
    let content = data(3 * 1024 * 1024 + 77, 5);
    s.file("blob.bin").upload(content.clone(), &NodeProps::default()).await?;
    setup.shutdown().await;

    for seed in [42, 7, 2026] {
        let faults = FaultConfig {
            seed,
            busy_rate: 0.2,
            error_rate: 0.1,
            reset_rate: 0.1,
            retry_after_secs: 0,
            latency_ms: 1,
            latency_jitter_ms: 3,
            slow_body_bytes_per_sec: if seed == 2026 { 64 * 1024 * 1024 } else { 0 },
            ..Default::default()
        };
        let emulator = start_emulator(&dir, faults)?;
        let config = AccountConfig::from_connection_string(&emulator.connection_string())?;
        let options = ClientOptions {
            retry: RetryPolicy {
                max_attempts: 12,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(100),
                ..Default::default()
            },
            download_chunk_size: 256 * 1024,
            ..Default::default()
        };
        let svc = FileServiceClient::new(config, options)?;
        let s = svc.share("faulty");
        let result = async {
            let pages: Vec<_> = s.directory("d").list_pages(Some(7)).try_collect().await?;
            let listed: BTreeSet<String> = pages.iter().flat_map(|p| &p.entries).map(|e| e.name.clone()).collect();
            ensure!(listed == expected, "listing under faults");
            let got = download_all(&s.file("blob.bin")).await?;
            ensure!(got == content[..], "download under faults");
            // 6 list pages + 1 HEAD + 13 chunks without faults; with them, retries add requests.
            let logical = pages.len() as u64 + 1 + content.len().div_ceil(256 * 1024) as u64;
            ensure!(
                svc.requests_sent() > logical,
                "no retries happened ({} requests): are faults applied?",
                svc.requests_sent()
            );
            Ok(())
        }
        .await;
        emulator.shutdown().await;
        result.with_context(|| format!("fault seed {seed}"))?;
    }
    Ok(())
}

/// The listing benchmark walks the whole tree and counts what it listed and the requests it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_lists_the_whole_tree() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = start_emulator(&dir, FaultConfig::default())?;
    let config = AccountConfig::from_connection_string(&emulator.connection_string())?;
    let svc = FileServiceClient::new(config, ClientOptions::default())?;
    let result = async {
        let s = svc.share("bench");
        s.create().await?;
        for d in ["a", "a/b", "a/b/c", "x"] {
            s.directory(d).create(&NodeProps::default()).await?;
        }
        for (i, d) in ["", "a", "a/b", "a/b/c", "x"].iter().enumerate() {
            for j in 0..7 {
                s.directory(d).file(&format!("f{j}")).create((i * 10 + j) as u64, &NodeProps::default()).await?;
            }
        }
        let report = afb::azure::bench::bench_list(&svc, "bench", 3, Some(4)).await?;
        ensure!(report.directories == 4 && report.files == 35 && report.entries == 39, "{report:?}");
        ensure!(
            report.bytes == (0..5u64).map(|i| (0..7u64).map(|j| i * 10 + j).sum::<u64>()).sum::<u64>(),
            "{report:?}"
        );
        // 5 directories listed 4 entries a page: root 9 entries (3 pages), a 8 (2), a/b 8 (2), a/b/c 7 (2), x 7 (2).
        ensure!(report.requests == 11, "{report:?}");
        ensure!((report.requests_per_entry - 11.0 / 39.0).abs() < 1e-9 && report.entries_per_sec > 0.0, "{report:?}");
        Ok(())
    }
    .await;
    emulator.shutdown().await;
    result
}
