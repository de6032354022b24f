//! The repository on Azure Blob: the same suites run against a local directory and against a real
//! Azurite (`node_modules/.bin/azurite-blob`, from package.json's devDependencies; run `npm ci` first).
//! Without Azurite the Azurite tests fail, naming what is missing. Test names read as specifications:
//! `SUITE::local` and `SUITE::azurite`.

use crate::support::tree::read_tree;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::Path as FsPath;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::support::nodes::{dir, file};
use afb::azure::credential::{AccountConfig, DEV_ACCOUNT_NAME};
use afb::azure::{ClientOptions, FileServiceClient, NodeProps, ShareClient};
use afb::backup::NoProgress;
use afb::backup::cli::backup_share;
use afb::backup::restore::{RestoreOptions, Target, restore};
use afb::backup::verify::{VerifyOptions, verify};
use afb::emulator::Emulator;
use afb::index::NodeIndex;
use afb::index::diff::diff_snapshots;
use afb::index::node::{Node, NodeId, batch_to_nodes, nodes_to_batch};
use afb::index::snapshot::WriteOptions;
use afb::repository::store::{AZURITE_ACCOUNT_KEY, Location};
use afb::repository::{BackupManifest, MasterKey, Repository, RepositoryConfig};
use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

// ---- Azurite ----------------------------------------------------------------------------------------

/// One Azurite per test process (in-memory, a free port), started on first use.
fn azurite_endpoint() -> &'static str {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    let args = ["--inMemoryPersistence", "--extentMemoryLimit", "2048", "--silent"];
    &AZURITE.get_or_init(|| Azurite::start(&args).unwrap_or_else(|e| panic!("{e:#}"))).url
}

/// A running `azurite-blob` on a free port. It is spawned from a thread that never returns, with
/// PR_SET_PDEATHSIG, so it dies with the test process. Without `--silent`, its access log lines
/// (`"PUT /devstoreaccount1/c/k HTTP/1.1" 201`) are counted per method in `requests`.
struct Azurite {
    url: String,
    requests: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
}

impl Azurite {
    fn start(args: &[&str]) -> Result<Azurite> {
        let bin = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/azurite-blob");
        ensure!(
            bin.exists(),
            "Azurite is not installed: {} is missing; run `npm ci` in the repository root (azurite is in package.json's devDependencies)",
            bin.display()
        );
        let mut cmd = Command::new(&bin);
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--disableTelemetry", "--skipApiVersionCheck"])
            .args(args)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let requests = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let counts = requests.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<String>>();
        std::thread::Builder::new().name("azurite".into()).spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::anyhow!("starting {}: {e}", bin.display())));
                    return;
                }
            };
            let mut sent = false;
            // "Azurite Blob service successfully listens on http://127.0.0.1:PORT", then the access log.
            for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines().map_while(|l| l.ok()) {
                if !sent && let Some(url) = line.split("successfully listens on ").nth(1) {
                    let _ = tx.send(Ok(url.trim().trim_end_matches('/').to_string()));
                    sent = true;
                } else if let Some(method) = line.split('"').nth(1).and_then(|r| r.split(' ').next()) {
                    *counts.lock().unwrap().entry(method.to_string()).or_insert(0) += 1;
                }
            }
            if !sent {
                let _ = tx.send(Err(anyhow::anyhow!("azurite-blob exited before listening: {:?}", child.wait())));
            }
            // PR_SET_PDEATHSIG follows the spawning thread: it must outlive every use of this Azurite.
            loop {
                std::thread::park();
            }
        })?;
        let url = rx.recv_timeout(Duration::from_secs(90)).context("Azurite did not report its port within 90 s")??;
        Ok(Azurite { url, requests })
    }

    fn connection_string(&self) -> String {
        dev_connection_string(&self.url)
    }

    fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.lock().unwrap().clone()
    }
}

/// The development account at an Azurite's path-style endpoint.
fn dev_connection_string(url: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={AZURITE_ACCOUNT_KEY};BlobEndpoint={url}/{DEV_ACCOUNT_NAME};"
    )
}

/// The shared Azurite's connection string.
fn azurite_connection_string() -> String {
    dev_connection_string(azurite_endpoint())
}

/// A new container per test; names must be 3-63 of [a-z0-9-].
fn unique_container() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("afb-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

// ---- the two backends -------------------------------------------------------------------------------

/// A repository location the suites run against, with what opening it needs.
struct Backend {
    location: Location,
    /// The Blob connection string (None for a local directory).
    conn: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn local() -> Result<Backend> {
        let dir = tempfile::tempdir()?;
        let location = Location::parse(dir.path().join("repo").to_str().unwrap())?;
        Ok(Backend { location, conn: None, _dir: Some(dir) })
    }

    /// A fresh container in Azurite, with the repository under a two-level prefix.
    async fn azurite() -> Result<Backend> {
        let conn = azurite_connection_string();
        let location = Location::parse(&format!("az://{}/deploy/eu", unique_container()))?;
        ensure!(location.create_container(Some(conn.as_str())).await?, "container was new");
        ensure!(!location.create_container(Some(conn.as_str())).await?, "creating it again is a no-op");
        Ok(Backend { location, conn: Some(conn), _dir: None })
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        self.location.open_with(self.conn.as_deref()).unwrap()
    }

    /// The node index at the repository root, as the commands open it.
    fn index(&self) -> NodeIndex {
        let loc = self.location.clone();
        NodeIndex::from_store(loc.open_with(self.conn.as_deref()).unwrap(), &loc.to_string())
    }
}

/// Runs `suite` as `suite::local` and `suite::azurite`.
macro_rules! on_both_backends {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() -> anyhow::Result<()> {
                super::$suite(super::Backend::local()?).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn azurite() -> anyhow::Result<()> {
                super::$suite(super::Backend::azurite().await?).await
            }
        }
    )*};
}

on_both_backends!(
    index_snapshots_commit_read_back_and_diff,
    concurrent_creates_of_one_key_have_exactly_one_winner,
    concurrent_index_commits_of_one_snapshot_id_have_one_winner,
    concurrent_content_commits_of_one_snapshot_id_have_one_winner,
    backup_restore_verify_round_trip,
);

// ---- the suites -------------------------------------------------------------------------------------

fn tree(files: i64) -> Vec<Node> {
    let mut v = vec![dir(1, 0, "docs"), dir(2, 1, "Fotos ü")];
    v.extend((0..files).map(|i| file(10 + i, 1 + i % 2, &format!("f{i}.txt"), 100 + i)));
    v
}

async fn read_all(repo: &NodeIndex, m: &afb::index::manifest::IndexManifest) -> Result<Vec<Node>> {
    let batches: Vec<_> = repo.read(m, None)?.try_collect().await?;
    Ok(batches.iter().flat_map(batch_to_nodes).collect())
}

async fn index_snapshots_commit_read_back_and_diff(b: Backend) -> Result<()> {
    let repo = b.index();
    let opts = WriteOptions { max_deltas: 2, ..Default::default() };
    let v1 = tree(3000);
    let mut v2 = v1.clone();
    v2[0].name = "papers".into(); // a directory rename
    v2[5].size += 1; // a modification
    v2.retain(|n| n.node_id != NodeId(20)); // a deletion
    v2.push(file(99_999, 2, "new.txt", 7)); // an addition
    let mut ms = Vec::new();
    for v in [&v1, &v2] {
        let mut w = repo.begin("t1", "s1", opts).await?;
        // Several batches, so the Parquet writer streams (multipart uploads on Blob).
        for part in v.chunks(700) {
            w.write(&nodes_to_batch(part)).await?;
        }
        ms.push(w.commit(None).await?);
    }
    ensure!(ms[0].layers.len() == 1 && ms[1].layers.len() == 2, "base, then base + delta: {:?}", ms[1].layers);
    ensure!(read_all(&repo, &ms[0]).await? == v1, "snapshot 1 reads back");
    ensure!(read_all(&repo, &ms[1]).await? == v2, "snapshot 2 (base + delta) reads back merged");
    ensure!(repo.snapshot_ids("t1", "s1").await? == vec![1, 2]);
    ensure!(repo.shares().await? == vec![("t1".to_string(), "s1".to_string())]);
    // A reopened handle (as another process would) sees the same.
    let again = b.index();
    ensure!(again.latest("t1", "s1").await?.map(|m| m.snapshot_id) == Some(2));
    let s = diff_snapshots(&again, &ms[0], &ms[1], |_| Ok(())).await?;
    ensure!((s.renamed.count, s.modified.count, s.deleted.count, s.added.count) == (1, 1, 1, 1), "{s:?}");
    // Nothing unreferenced: gc deletes nothing.
    ensure!(again.gc("t1", "s1", Duration::ZERO).await?.is_empty());
    Ok(())
}

async fn concurrent_creates_of_one_key_have_exactly_one_winner(b: Backend) -> Result<()> {
    let store = b.store();
    for round in 0..8 {
        let key = Path::from(format!("race/{round}"));
        let tries = (0..8u8).map(|w| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
                (w, store.put_opts(&key, PutPayload::from(vec![w; 1000]), opts).await)
            })
        });
        let results = futures::future::try_join_all(tries).await?;
        let winners: Vec<u8> = results.iter().filter(|(_, r)| r.is_ok()).map(|(w, _)| *w).collect();
        ensure!(winners.len() == 1, "round {round}: winners {winners:?}");
        for (w, r) in &results {
            if let Err(e) = r {
                ensure!(matches!(e, object_store::Error::AlreadyExists { .. }), "writer {w}: {e}");
            }
        }
        let stored = store.get(&key).await?.bytes().await?;
        ensure!(
            stored.as_ref() == vec![winners[0]; 1000].as_slice(),
            "round {round}: the stored object is the winner's"
        );
    }
    Ok(())
}

async fn concurrent_index_commits_of_one_snapshot_id_have_one_winner(b: Backend) -> Result<()> {
    let repo = b.index();
    let (one, two) = (tree(10), tree(20));
    // Both writers start before either commits, so both are writing snapshot 1.
    let mut wa = repo.begin("t1", "s1", WriteOptions::default()).await?;
    let mut wb = b.index().begin("t1", "s1", WriteOptions::default()).await?;
    ensure!(wa.snapshot_id() == 1 && wb.snapshot_id() == 1);
    wa.write(&nodes_to_batch(&one)).await?;
    wb.write(&nodes_to_batch(&two)).await?;
    let (ra, rb) = tokio::join!(wa.commit(None), wb.commit(None));
    let (winner, loser) = match (ra, rb) {
        (Ok(_), Err(e)) => (one, e),
        (Err(e), Ok(_)) => (two, e),
        (a, b) => anyhow::bail!(
            "exactly one commit must win: {:?} / {:?}",
            a.map(|m| m.snapshot_id),
            b.map(|m| m.snapshot_id)
        ),
    };
    ensure!(loser.to_string().contains("committed by another writer"), "{loser:#}");
    ensure!(repo.snapshot_ids("t1", "s1").await? == vec![1]);
    let m = repo.manifest("t1", "s1", 1).await?;
    ensure!(read_all(&repo, &m).await? == winner, "snapshot 1 holds the winner's rows");
    Ok(())
}

async fn concurrent_content_commits_of_one_snapshot_id_have_one_winner(b: Backend) -> Result<()> {
    let master = MasterKey::generate();
    let mut ra = Repository::open(b.store(), &master, "t1", "s1", RepositoryConfig::default()).await?;
    let mut rb = Repository::open(b.store(), &master, "t1", "s1", RepositoryConfig::default()).await?;
    let mut ma = BackupManifest::new("t1", "s1");
    let mut mb = ma.clone();
    ma.parent = Some("from-a".into());
    mb.parent = Some("from-b".into());
    let (xa, xb) = tokio::join!(ra.commit(&ma), rb.commit(&mb));
    let (winner, loser) = match (xa, xb) {
        (Ok(_), Err(e)) => (ma, e),
        (Err(e), Ok(_)) => (mb, e),
        (a, b) => anyhow::bail!("exactly one commit must win: {a:?} / {b:?}"),
    };
    let loser = format!("{loser:#}");
    ensure!(loser.contains(&winner.snapshot_id) && loser.to_lowercase().contains("exist"), "{loser}");
    ensure!(ra.list_snapshots().await? == vec![winner.snapshot_id.clone()]);
    ensure!(rb.load_manifest(&winner.snapshot_id).await? == winner, "the stored manifest is the winner's");
    Ok(())
}

/// Deterministic text-like content (the generator `afb gen` uses).
fn data(len: usize, seed: u64) -> Vec<u8> {
    afb::generate::plan::content(seed, len as u64)
}

/// A small share in the emulator: small files (bundled), a nested directory, a 2 MiB file, an empty file.
async fn fill(share: &ShareClient) -> Result<BTreeMap<String, Vec<u8>>> {
    share.create().await?;
    let mut files = BTreeMap::new();
    for d in ["docs", "docs/sub", "big"] {
        share.directory(d).create(&NodeProps::default()).await?;
    }
    for i in 0..5u64 {
        files.insert(format!("docs/note{i}.txt"), data(500 + 3000 * i as usize, i));
    }
    files.insert("docs/sub/b.bin".into(), data(200_000, 101));
    files.insert("big/disk.img".into(), data(2 << 20, 102));
    files.insert("zero.txt".into(), Vec::new());
    for (p, d) in &files {
        share.file(p).upload(Bytes::from(d.clone()), &NodeProps::default()).await?;
    }
    Ok(files)
}

fn start_emulator(dir: &FsPath) -> Result<Emulator> {
    Ok(crate::support::emulator(dir, Default::default()))
}

/// A client of the emulator's file service.
fn service(emulator: &Emulator) -> Result<FileServiceClient> {
    Ok(FileServiceClient::new(
        AccountConfig::from_connection_string(&emulator.connection_string())?,
        ClientOptions::default(),
    )?)
}

async fn backup_restore_verify_round_trip(b: Backend) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let emulator = start_emulator(tmp.path())?;
    let svc = service(&emulator)?;
    let share = svc.share("src");
    let files = fill(&share).await?;
    let master = MasterKey::generate();
    let index = b.index();
    let mut repo = Repository::open(b.store(), &master, "t1", "s1", RepositoryConfig::default()).await?;
    let s = backup_share(&mut repo, &index, &share, &NoProgress).await?;
    ensure!(s.files_new == files.len() as u64 && s.skipped.is_empty() && s.warnings.is_empty(), "{s:?}");
    // Restore through a fresh handle, as another process would.
    let mut reader = Repository::open(b.store(), &master, "t1", "s1", RepositoryConfig::default()).await?;
    let out = tmp.path().join("restored");
    let r = restore(
        &mut reader,
        RestoreOptions {
            snapshot: None,
            path: None,
            target: Target::Local(out.clone()),
            overwrite: false,
            concurrency: Default::default(),
        },
    )
    .await?;
    ensure!(r.files_restored == files.len() as u64, "{r:?}");
    ensure!(read_tree(&out) == files, "restored tree differs");
    let v = verify(
        &mut reader,
        VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&index),
            compare_live: Some(share.clone()),
        },
    )
    .await?;
    ensure!(v.problems.is_empty(), "{:?}", v.problems);
    // Nothing changed: the second backup reads nothing and adds one more snapshot.
    let s2 = backup_share(&mut repo, &index, &share, &NoProgress).await?;
    ensure!(s2.bytes_read == 0 && s2.files_unchanged == files.len() as u64, "{s2:?}");
    ensure!(reader.list_snapshots().await?.len() == 2);
    ensure!(index.snapshot_ids("t1", "s1").await? == vec![1, 2]);
    emulator.shutdown().await;
    Ok(())
}

// ---- the commands, on an az:// repository -----------------------------------------------------------

/// Runs the afb binary with only the given repository environment (none inherited).
fn afb(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_afb"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AZURE_") || k.starts_with("AFB_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied()).output().expect("afb runs")
}

/// Stdout of a run that must succeed.
fn ok(out: std::process::Output, what: &str) -> Result<String> {
    ensure!(out.status.success(), "{what}: {}; stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_repository_command_runs_on_an_az_location() -> Result<()> {
    let b = Backend::azurite().await?;
    let tmp = tempfile::tempdir()?;
    let emulator = start_emulator(tmp.path())?;
    let svc = service(&emulator)?;
    let mut files = fill(&svc.share("src")).await?;
    let repo = b.location.to_string();
    let repo_root = repo.clone();
    let master = "42".repeat(32);
    let conn = b.conn.clone().unwrap();
    let src_conn = emulator.connection_string();
    let control = tmp.path().join("control");
    let env: Vec<(&str, &str)> = vec![
        ("AFB_REPO_CONNECTION_STRING", &conn),
        ("AZURE_STORAGE_CONNECTION_STRING", &src_conn),
        ("AFB_MASTER_KEY", &master),
        ("AFB_CONTROL_DIR", control.to_str().unwrap()),
    ];
    let target = ["--repo", repo.as_str(), "--tenant", "t1", "--share", "src"];
    let run = |args: Vec<String>| {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                afb(&args, &env)
            })
            .await
            .unwrap()
        }
    };
    let strings = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let cmd = |first: &str, rest: &[&str]| -> Vec<String> {
        [&[first][..], &target[..], rest].concat().into_iter().map(String::from).collect()
    };

    let first: serde_json::Value = serde_json::from_str(&ok(run(cmd("backup", &["--json"])).await, "backup")?)?;
    ensure!(first["files_new"] == files.len() as u64, "{first}");
    let changed = data(4321, 77);
    svc.share("src").file("docs/note1.txt").upload(Bytes::from(changed.clone()), &NodeProps::default()).await?;
    files.insert("docs/note1.txt".into(), changed);
    let second: serde_json::Value = serde_json::from_str(&ok(run(cmd("backup", &["--json"])).await, "second backup")?)?;
    ensure!(second["files_changed"] == 1 && second["bytes_read"] == 4321, "{second}");

    let out = tmp.path().join("out");
    let target_arg = format!("local:{}", out.display());
    ok(run(cmd("restore", &["--target", &target_arg])).await, "restore")?;
    ensure!(read_tree(&out) == files, "restored tree differs");
    ok(run(cmd("verify", &["--read-data"])).await, "verify")?;

    let idx = ["--repo", repo_root.as_str(), "--tenant", "t1", "--share", "src"];
    let snaps: Vec<serde_json::Value> =
        serde_json::from_str(&ok(run(strings(&[&["snapshots", "--json"], &idx[..]].concat())).await, "snapshots")?)?;
    ensure!(snaps.len() == 2, "{snaps:?}");
    let diff: serde_json::Value =
        serde_json::from_str(&ok(run(strings(&[&["diff", "--json"], &idx[..], &["1", "2"]].concat())).await, "diff")?)?;
    let count = |class: &str| diff["summary"][class]["count"].as_u64();
    ensure!((count("modified"), count("added"), count("deleted")) == (Some(1), Some(0), Some(0)), "{diff}");
    let sql = ok(
        run(strings(&[
            "sql",
            "--repo",
            &repo_root,
            "--tenant",
            "t1",
            "--share",
            "src",
            "--csv",
            "SELECT count(*) AS n FROM current_nodes WHERE kind = 0",
        ]))
        .await,
        "sql",
    )?;
    ensure!(sql.lines().nth(1).map(str::trim) == Some(files.len().to_string().as_str()), "{sql}");

    // scan writes an index straight at an az:// location too.
    let scanned = b.location.child("scans").to_string();
    ok(run(strings(&["scan", "--repo", &scanned, "--tenant", "t1", "--share", "src"])).await, "scan")?;
    let snaps: Vec<serde_json::Value> = serde_json::from_str(&ok(
        run(strings(&["snapshots", "--json", "--repo", &scanned, "--tenant", "t1", "--share", "src"])).await,
        "snapshots of the scan",
    )?)?;
    ensure!(snaps.len() == 1, "{snaps:?}");

    ok(run(cmd("forget", &["--keep-last", "1"])).await, "forget")?;
    ok(run(cmd("verify", &[])).await, "verify after forget")?;
    let token = ok(run(strings(&["api-token", "--repo", &repo, "--operator"])).await, "api-token")?;
    ensure!(!token.trim().is_empty() && control.join(".afb/api-tokens.json").exists());
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_locations_give_one_clear_error_line() -> Result<()> {
    let conn = azurite_connection_string();
    let missing_container = format!("az://{}/x", unique_container());
    // (arguments, environment, words the one error line must contain)
    type Case<'w> = (Vec<String>, Vec<(&'static str, String)>, Vec<&'w str>);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["snapshots".into(), "--repo".into(), "s3://bucket/x".into()],
            vec![],
            vec!["s3://bucket/x", "unsupported scheme"],
        ),
        (
            vec!["snapshots".into(), "--repo".into(), "az://Bad_Name/x".into()],
            vec![],
            vec!["az://Bad_Name/x", "container name"],
        ),
        (
            vec!["snapshots".into(), "--repo".into(), "az://backups/x".into()],
            vec![],
            vec!["az://backups/x", "AFB_REPO_CONNECTION_STRING"],
        ),
        (
            vec!["snapshots".into(), "--repo".into(), "az://backups/x".into()],
            vec![(
                "AFB_REPO_CONNECTION_STRING",
                "AccountName=a;FileEndpoint=http://127.0.0.1:1/a;AccountKey=a2V5".into(),
            )],
            vec!["az://backups/x", "no BlobEndpoint"],
        ),
        (
            vec!["snapshots".into(), "--repo".into(), missing_container.clone()],
            vec![("AFB_REPO_CONNECTION_STRING", conn.clone())],
            vec![&missing_container, "does not exist (ContainerNotFound)"],
        ),
        (
            vec!["serve".into(), "--repo".into(), "az://backups/x".into()],
            vec![("AFB_REPO_CONNECTION_STRING", conn.clone())],
            vec!["AFB_CONTROL_DIR"],
        ),
    ];
    for (args, env, needles) in cases {
        let mut args: Vec<String> = args;
        if args[0] == "snapshots" {
            args.extend(["--tenant", "t", "--share", "s"].map(String::from));
        }
        let run = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            afb(&a, &e)
        })
        .await?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        ensure!(run.status.code() == Some(1), "{} for {needles:?}; stderr: {stderr}", run.status);
        let lines: Vec<&str> = stderr.lines().collect();
        ensure!(lines.len() == 1 && lines[0].starts_with("afb: error: "), "one error line: {stderr:?}");
        for n in needles {
            ensure!(lines[0].contains(n), "{:?} should name {n:?}", lines[0]);
        }
    }
    Ok(())
}

// ---- benchmark --------------------------------------------------------------------------------------

/// A backup of a generated share into a local directory and into Azurite (disk persistence), side by
/// side in one run, then a restore from each; figures for README. `AFB_BENCH_FILES` (default 1000) files
/// from `afb gen --seed 1`; `AFB_BIN` picks the afb binary (default: this build's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --test repository_blob -- --ignored --nocapture"]
async fn bench_backup_to_local_and_to_azurite() -> Result<()> {
    let n: u64 = std::env::var("AFB_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let bin = std::env::var("AFB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_afb").to_string());
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("emu"))?;
    std::fs::create_dir_all(tmp.path().join("azurite"))?;
    let emulator = start_emulator(&tmp.path().join("emu"))?;
    let azurite = Azurite::start(&["--location", tmp.path().join("azurite").to_str().unwrap()])?;
    let src = emulator.connection_string();
    let blob = azurite.connection_string();
    let master = "42".repeat(32);
    let exec = |args: Vec<String>| {
        let (bin, src, blob, master) = (bin.clone(), src.clone(), blob.clone(), master.clone());
        tokio::task::spawn_blocking(move || -> Result<(String, f64)> {
            let t0 = std::time::Instant::now();
            let out = Command::new(&bin)
                .args(&args)
                .env("AZURE_STORAGE_CONNECTION_STRING", &src)
                .env("AFB_REPO_CONNECTION_STRING", &blob)
                .env("AFB_MASTER_KEY", &master)
                .output()?;
            let secs = t0.elapsed().as_secs_f64();
            ensure!(out.status.success(), "afb {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            Ok((String::from_utf8_lossy(&out.stdout).into_owned(), secs))
        })
    };
    let (_, gen_secs) =
        exec(["gen", "--share", "bench", "--files", &n.to_string(), "--seed", "1"].map(String::from).to_vec())
            .await??;
    eprintln!("generated {n} files in {gen_secs:.1} s");
    let az = Location::parse("az://bench/repo")?;
    az.create_container(Some(blob.as_str())).await?;
    let local = tmp.path().join("local-repo");
    let mut rows = Vec::new();
    for (name, repo) in [("local directory", local.to_str().unwrap().to_string()), ("Azurite", az.to_string())] {
        let target = |cmd: &str| -> Vec<String> {
            [cmd, "--repo", &repo, "--tenant", "t1", "--share", "bench", "--json"].map(String::from).to_vec()
        };
        let before = azurite.requests();
        let (first, first_secs) = exec(target("backup")).await??;
        let after_first = azurite.requests();
        let (_, second_secs) = exec(target("backup")).await??;
        let after_second = azurite.requests();
        let mut restore = target("restore");
        restore.extend([
            "--target".to_string(),
            format!("local:{}", tmp.path().join(format!("out-{}", rows.len())).display()),
        ]);
        let (_, restore_secs) = exec(restore).await??;
        let after_restore = azurite.requests();
        let s: serde_json::Value = serde_json::from_str(&first)?;
        let store = Location::parse(&repo)?.open_with(Some(blob.as_str()))?;
        let metas: Vec<_> = store.list(None).try_collect().await?;
        let delta = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| -> String {
            let d: Vec<String> = b
                .iter()
                .map(|(k, v)| (k, v - a.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            if d.is_empty() { "-".into() } else { d.join(", ") }
        };
        rows.push(format!(
            "| {name} | {first_secs:.1} s | {:.1} MB/s | {} | {:.1} MB | {} objects, {:.1} MB | {} | {second_secs:.2} s ({}) | {restore_secs:.1} s ({}) |",
            s["bytes_read"].as_f64().unwrap_or(0.0) / 1e6 / first_secs,
            s["objects_written"],
            s["bytes_uploaded"].as_f64().unwrap_or(0.0) / 1e6,
            metas.len(),
            metas.iter().map(|m| m.size).sum::<u64>() as f64 / 1e6,
            delta(&before, &after_first),
            delta(&after_first, &after_second),
            delta(&after_second, &after_restore),
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    println!(
        "| store | first backup | read rate | content objects written | uploaded | repository after 2 backups | Blob requests, first backup | second backup (requests) | restore (requests) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
    emulator.shutdown().await;
    Ok(())
}
