//! The data handlers (scan, backup, restore, verify, prune, compact, commit) on the embedded queue against
//! the in-process emulator: fanned-out scans equal one worker's scan, a backup split into parts equals
//! itself on 1 and 4 workers, every job run twice commits nothing twice, a root job killed after taking
//! its share snapshot leaks none, restore, verify, prune and compact jobs.

use crate::support::tree::{read_tree, share_files};
use afb::azure::FileServiceClient;
use afb::backup::parts::BatchBudget;
use afb::emulator::Emulator;
use afb::generate::fill::{FillOptions, fill};
use afb::generate::plan::{ShareSpec, plan};
use afb::index::NodeIndex;
use afb::index::node::{Node, ROOT_ID, batch_to_nodes};
use afb::jobs::data::{DataEnv, data_handlers};
use afb::jobs::payloads::queue_tenant_id;
use afb::jobs::settings::{Settings, SettingsInput};
use afb::jobs::{
    Handlers, JobContext, JobError, JobHandler, JobKind, JobState, MemoryQueue, NewJob, Outcome, Queue, Worker,
    WorkerConfig,
};
use afb::repository::MasterKey;
use afb::repository::generated::NodeVersion;
use afb::repository::{ChunkId, Repository};
use afb::scan::fanout::ListBudget;
use futures::TryStreamExt;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Env {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    emu: Emulator,
    master: MasterKey,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let emu = crate::support::emulator(&dir.path().join("emu"), Default::default());
    Env { dir: dir.path().to_path_buf(), _dir: dir, emu, master: MasterKey::generate() }
}

impl Env {
    /// A generated share of `files` files (small contents) in the emulator.
    async fn share(&self, name: &str, files: u64) {
        self.share_sized(name, files, 20_000, 7).await;
    }

    /// A generated share of `files` files of at most `max_size` bytes.
    async fn share_sized(&self, name: &str, files: u64, max_size: u64, seed: u64) {
        let mut spec = ShareSpec::sample();
        spec.files = files;
        spec.max_file_size_bytes = max_size;
        let entries = plan(&spec, seed, 1_700_000_000);
        fill(&self.svc().share(name), &spec, &entries, &FillOptions { concurrency: 16, nfs_modes: false })
            .await
            .unwrap();
    }

    fn svc(&self) -> FileServiceClient {
        FileServiceClient::from_connection_string(&self.emu.connection_string()).unwrap()
    }

    /// A repository directory whose settings name share `share` of tenant `t` in the emulator.
    fn repo(&self, name: &str, share: &str) -> String {
        let repo = self.dir.join(name);
        Settings::new(repo.join(".afb").join("shares.json"), Some(self.master.clone()))
            .put(
                "t",
                share,
                SettingsInput {
                    connection_string: Some(self.emu.connection_string()),
                    sas_url: None,
                    azure_share: None,
                },
            )
            .unwrap();
        repo.to_str().unwrap().to_string()
    }

    fn data_env(&self, repo: &str, pages: u64) -> Arc<DataEnv> {
        Arc::new(DataEnv::new(repo, self.master.clone()).unwrap().with_budget(ListBudget {
            pages,
            concurrency: 4,
            page_size: Some(50),
            max_children: 3,
            max_rows: 1_000_000,
        }))
    }
}

/// Runs `jobs` to the end on `workers` workers sharing one memory queue; returns the queue.
async fn run_jobs(env: Arc<DataEnv>, workers: usize, jobs: Vec<NewJob>) -> Arc<MemoryQueue> {
    run_with(data_handlers(env), workers, 2, jobs).await
}

/// Runs `jobs` to the end on `workers` workers of `concurrency` jobs each, with `handlers`.
async fn run_with(handlers: Handlers, workers: usize, concurrency: usize, jobs: Vec<NewJob>) -> Arc<MemoryQueue> {
    let q = Arc::new(MemoryQueue::new());
    q.enqueue(&jobs).await.unwrap();
    let stop = CancellationToken::new();
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let mut cfg = WorkerConfig::new(format!("w{i}"));
            cfg.concurrency = concurrency;
            cfg.retry.base = Duration::from_millis(50);
            cfg.poll = Duration::from_millis(50);
            tokio::spawn(Worker::new(q.clone(), handlers.clone(), cfg).run(stop.clone()))
        })
        .collect();
    let done = crate::support::jobs::eventually(Duration::from_secs(120), || async {
        q.counts().await.unwrap().unfinished() == 0
    })
    .await;
    stop.cancel();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert!(done, "jobs left unfinished: {:?}", q.counts().await.unwrap());
    q
}

fn job(kind: JobKind, payload: serde_json::Value) -> NewJob {
    NewJob::new(queue_tenant_id("t"), kind, payload)
}

async fn rows(repo: &str, share: &str) -> (i64, Vec<Node>) {
    let index = NodeIndex::open(repo).unwrap();
    let m = index.latest("t", share).await.unwrap().expect("a committed index snapshot");
    let b: Vec<_> = index.read(&m, None).unwrap().try_collect().await.unwrap();
    (m.snapshot_id, b.iter().flat_map(batch_to_nodes).collect())
}

async fn kinds(q: &MemoryQueue, n: i64) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for id in 1..=n {
        if let Some(r) = q.get(id).await.unwrap() {
            let e = out.entry(r.kind.to_string()).or_default();
            e.0 += 1;
            e.1 += usize::from(r.state == JobState::Succeeded);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_fanned_out_over_four_workers_commits_exactly_the_snapshot_of_one_worker() {
    let e = env().await;
    e.share("big", 1500).await;
    let scan = || vec![job(JobKind::Scan, json!({ "tenant": "t", "share": "big" }))];

    // One job lists everything (a budget no share here exceeds): no fan-out.
    let whole = e.repo("whole", "big");
    let q = run_jobs(e.data_env(&whole, 1_000_000), 1, scan()).await;
    assert_eq!(kinds(&q, 1000).await.keys().cloned().collect::<Vec<_>>(), vec!["scan"]);
    // A budget of 3 pages per job: the scan splits into nested subtree jobs, on 1 worker and on 4.
    let one = e.repo("one", "big");
    let q1 = run_jobs(e.data_env(&one, 3), 1, scan()).await;
    let four = e.repo("four", "big");
    let q4 = run_jobs(e.data_env(&four, 3), 4, scan()).await;
    let (k1, k4) = (kinds(&q1, 10_000).await, kinds(&q4, 10_000).await);
    assert_eq!(k1, k4, "the same job tree whatever the number of workers");
    assert!(k1["scan"].0 > 10 && k1["commit"].0 > 2, "fanned out: {k1:?}");
    assert!(k1.values().all(|(n, ok)| n == ok), "every job succeeded: {k1:?}");

    let (id_whole, r_whole) = rows(&whole, "big").await;
    let (id_one, r_one) = rows(&one, "big").await;
    let (id_four, r_four) = rows(&four, "big").await;
    assert_eq!((id_whole, id_one, id_four), (1, 1, 1), "one index snapshot per scan");
    assert!(r_one.len() > 1500, "every file and directory: {}", r_one.len());
    assert_eq!(r_one, r_four, "4 workers: exactly the rows of 1 worker");
    assert_eq!(r_one, r_whole, "and of a scan that did not fan out");
    // Dense node ids 1..=n, parents among them.
    let ids: Vec<i64> = r_one.iter().map(|n| n.node_id.0).collect();
    assert_eq!(ids, (1..=r_one.len() as i64).collect::<Vec<_>>());
    assert!(r_one.iter().all(|n| n.parent_id == ROOT_ID || n.parent_id.0 <= r_one.len() as i64));
    // Fragments are gone after the commit.
    let runs = Path::new(&four).join("t/big/index/runs");
    let leftover: Vec<_> = walk(&runs).into_iter().filter(|p| p.contains("/parts/")).collect();
    assert!(leftover.is_empty(), "{leftover:?}");

    // The same fanned-out scan against the plain `afb scan` of the share: the same rows by path.
    let plain = NodeIndex::open(e.dir.join("plain").to_str().unwrap()).unwrap();
    let acct = afb::azure::credential::AccountConfig::from_connection_string(&e.emu.connection_string()).unwrap();
    let r = afb::scan::scan(acct, Default::default(), "big", &plain, "t", &afb::scan::ScanOptions::default())
        .await
        .unwrap();
    let b: Vec<_> = plain.read(r.manifest.as_ref().unwrap(), None).unwrap().try_collect().await.unwrap();
    let plain_rows: Vec<Node> = b.iter().flat_map(batch_to_nodes).collect();
    assert_eq!(by_path(&plain_rows), by_path(&r_one));
}

/// path → (kind, size, mtime, ctime, attributes).
fn by_path(nodes: &[Node]) -> BTreeMap<String, (String, i64, i64, i64, i32)> {
    let paths = crate::support::nodes::naive_paths(nodes);
    nodes
        .iter()
        .map(|n| (paths[&n.node_id].clone(), (n.kind.as_str().to_string(), n.size, n.mtime, n.ctime, n.attributes)))
        .collect()
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_verify_and_prune_jobs_round_trip_and_a_rerun_backup_commits_nothing_new() {
    let e = env().await;
    e.share("docs", 300).await;
    let repo = e.repo("repo", "docs");
    let denv = e.data_env(&repo, 4);
    let q = run_jobs(denv.clone(), 2, vec![job(JobKind::Backup, json!({ "tenant": "t", "share": "docs" }))]).await;
    let k = kinds(&q, 1000).await;
    assert!(k["scan"].0 >= 1 && k["commit"].0 >= 1 && k.values().all(|(n, ok)| n == ok), "{k:?}");
    let mut r = denv.repository("t", "docs").await.unwrap();
    let snaps = r.list_snapshots().await.unwrap();
    assert_eq!(snaps.len(), 1);

    // The backup's commit job again (as after a crash before its success was recorded): no new snapshot.
    let root = q.get(1).await.unwrap().unwrap();
    assert_eq!(root.kind, JobKind::Backup);
    let runs: Vec<_> = std::fs::read_dir(Path::new(&repo).join("t/docs/index/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(runs.len() == 1 && runs[0].starts_with("job-1-"), "one run, named after its root job: {runs:?}");
    let commit_payload = json!({ "tenant": "t", "share": "docs", "run": runs[0], "op": "backup" });
    let q2 = run_jobs(denv.clone(), 1, vec![job(JobKind::Commit, commit_payload)]).await;
    assert_eq!(q2.counts().await.unwrap().succeeded, 1);
    r = denv.repository("t", "docs").await.unwrap();
    assert_eq!(r.list_snapshots().await.unwrap(), snaps, "a re-run commits no second backup snapshot");
    assert_eq!(rows(&repo, "docs").await.0, 1, "nor a second index snapshot");

    // Restore into a directory: byte-identical to the share; verify with all data read: clean.
    let out = e.dir.join("restored");
    let jobs = vec![
        job(
            JobKind::Restore,
            json!({ "tenant": "t", "share": "docs", "target": { "kind": "local", "path": out.to_str().unwrap() } }),
        ),
        job(
            JobKind::Verify,
            json!({ "tenant": "t", "share": "docs", "read_data_percent": 100.0, "compare_live": true }),
        ),
        job(JobKind::Prune, json!({ "tenant": "t", "share": "docs", "dry_run": true })),
    ];
    let q3 = run_jobs(denv.clone(), 1, jobs).await;
    for id in [1, 2, 3] {
        let j = q3.get(id).await.unwrap().unwrap();
        assert_eq!(j.state, JobState::Succeeded, "{j:?}");
    }
    let svc = FileServiceClient::from_connection_string(&e.emu.connection_string()).unwrap();
    let share_tree = share_files(&svc.share("docs"), "").await;
    assert!(share_tree.len() >= 300);
    assert_eq!(read_tree(&out), share_tree);

    // A bundle lost from the repository: the restore job restores the rest and fails, naming the damage.
    let bundles = Path::new(&repo).join("t/docs/bundles");
    let bundle =
        std::fs::read_dir(&bundles).unwrap().flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap()).next();
    std::fs::remove_file(bundle.expect("a bundle").unwrap().path()).unwrap();
    let out = e.dir.join("restored-damaged");
    let target = json!({ "kind": "local", "path": out.to_str().unwrap() });
    let q5 = run_jobs(
        denv.clone(),
        1,
        vec![job(JobKind::Restore, json!({ "tenant": "t", "share": "docs", "target": target }))],
    )
    .await;
    let j = q5.get(1).await.unwrap().unwrap();
    assert_eq!(j.state, JobState::Dead, "{j:?}");
    assert!(j.last_error.as_deref().unwrap_or("").contains("damaged in the repository"), "{j:?}");

    // A share without settings: dead at once, naming what is missing.
    let q4 = run_jobs(denv, 1, vec![job(JobKind::Scan, json!({ "tenant": "t", "share": "nosuch" }))]).await;
    let j = q4.get(1).await.unwrap().unwrap();
    assert_eq!((j.state, j.attempts), (JobState::Dead, 1));
    assert!(j.last_error.unwrap().contains("t/nosuch has no Azure source"));
}

type Log = Arc<Mutex<Vec<(JobKind, serde_json::Value)>>>;

/// Wraps a handler: logs every run's kind and payload; with `fail_first`, the first attempt of every job
/// does all its work and then fails, as if its worker died before the outcome was recorded.
struct Wrapped {
    inner: Arc<dyn JobHandler>,
    log: Log,
    fail_first: bool,
}

#[async_trait::async_trait]
impl JobHandler for Wrapped {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        self.log.lock().unwrap().push((ctx.job.kind, payload.clone()));
        let r = self.inner.run(ctx, payload).await;
        if self.fail_first && ctx.job.attempt == 1 && r.is_ok() {
            return Err(JobError::Transient(anyhow::anyhow!(
                "simulated crash after the work, before the outcome was recorded"
            )));
        }
        r
    }
}

fn wrapped(env: Arc<DataEnv>, log: &Log, fail_first: bool) -> Handlers {
    let inner = data_handlers(env);
    JobKind::ALL.into_iter().fold(Handlers::new(), |h, k| match inner.get(k) {
        Some(handler) => h.with(k, Wrapped { inner: handler, log: log.clone(), fail_first }),
        None => h,
    })
}

impl Env {
    /// A data environment whose scans fan out (4 pages of 50 entries) and whose backups split their upload
    /// into parts within `budget`.
    fn parts_env(&self, repo: &str, budget: BatchBudget) -> Arc<DataEnv> {
        let list = ListBudget { pages: 4, concurrency: 4, page_size: Some(50), max_children: 3, max_rows: 1_000_000 };
        Arc::new(DataEnv::new(repo, self.master.clone()).unwrap().with_budget(list).with_backup_budget(budget))
    }
}

/// A backup's node versions by node id, without bundle ids (sealing gives every bundle a fresh id).
async fn versions(r: &Repository, snapshot: &str) -> BTreeMap<u64, NodeVersion> {
    let m = r.load_manifest(snapshot).await.unwrap();
    let mut v = crate::support::versions(r, &m).await.unwrap();
    for x in v.values_mut() {
        if let Some(b) = x.bundle.as_mut() {
            b.bundle_id = None;
        }
    }
    v
}

/// The blobs in all packs of the share, and the distinct chunk ids among them.
async fn pack_chunks(r: &Repository) -> (usize, BTreeSet<ChunkId>) {
    let mut blobs = 0;
    let mut ids = BTreeSet::new();
    for (path, size) in r.list_packs().await.unwrap() {
        let header = afb::repository::index::read_pack_header(r.store().as_ref(), r.key(), &path, size).await.unwrap();
        blobs += header.len();
        ids.extend(header.iter().map(|b| b.id));
    }
    (blobs, ids)
}

/// Every file below `dir` → BLAKE3 of its bytes.
fn digest_tree(dir: &Path) -> BTreeMap<String, String> {
    walk(dir).into_iter().map(|p| (p.clone(), blake3::hash(&std::fs::read(&p).unwrap()).to_hex().to_string())).collect()
}

async fn restore_latest(r: &mut Repository, out: &Path) -> u64 {
    let target = afb::backup::restore::Target::Local(out.to_path_buf());
    let opts = afb::backup::restore::RestoreOptions {
        snapshot: None,
        path: None,
        target,
        overwrite: false,
        concurrency: Default::default(),
    };
    let s = afb::backup::restore::restore(r, opts).await.unwrap();
    assert!(s.damaged.is_empty() && s.conflicts.is_empty(), "{s:?}");
    s.files_restored
}

/// Asserts two trees (path → content) are equal, naming the paths that differ rather than printing bytes.
fn assert_same_tree(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let only_got: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let only_want: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let differ: Vec<(&String, usize, usize)> =
        got.iter().filter_map(|(k, v)| want.get(k).filter(|w| *w != v).map(|w| (k, v.len(), w.len()))).collect();
    assert!(
        only_got.is_empty() && only_want.is_empty() && differ.is_empty(),
        "{what}: extra {only_got:?}, missing {only_want:?}, differing (path, got bytes, wanted bytes) {differ:?}"
    );
}

fn all_succeeded(k: &BTreeMap<String, (usize, usize)>) -> bool {
    k.values().all(|(n, ok)| n == ok)
}

/// Index objects per chunk-index partition of a share.
/// Chunk-index objects per partition (`t/{share}/index/{2 hex}/{id}`; the node index beside them is not
/// counted).
fn index_objects(repo: &str, share: &str) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    let root = Path::new(repo).join("t").join(share).join("index");
    for p in walk(&root) {
        let parent = Path::new(&p).parent().unwrap();
        let partition = parent.file_name().unwrap().to_string_lossy().into_owned();
        if parent.parent() == Some(root.as_path())
            && partition.len() == 2
            && partition.bytes().all(|b| b.is_ascii_hexdigit())
        {
            *out.entry(partition).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_split_into_parts_is_the_same_on_one_and_four_workers_and_running_every_job_twice_commits_nothing_twice()
 {
    let e = env().await;
    e.share_sized("parts", 240, 150_000, 11).await;
    let live = e.svc().share("parts");
    let budget = BatchBudget { bytes: 1_500_000, nodes: 40 };
    let backup = || vec![job(JobKind::Backup, json!({ "tenant": "t", "share": "parts" }))];

    // One worker running one job at a time, then four workers running two each.
    let one = e.repo("one", "parts");
    let env1 = e.parts_env(&one, budget);
    let log1 = Log::default();
    let q1 = run_with(wrapped(env1.clone(), &log1, false), 1, 1, backup()).await;
    let k1 = kinds(&q1, 10_000).await;
    assert!(all_succeeded(&k1), "{k1:?}");
    let parts: Vec<serde_json::Value> = log1
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, p)| *k == JobKind::Backup && p.get("part").is_some())
        .map(|(_, p)| p.clone())
        .collect();
    assert!(parts.len() >= 4, "the upload split into parts: {k1:?}");
    let four = e.repo("four", "parts");
    // The same tenant key in both repositories, so chunk ids (keyed per tenant) compare.
    std::fs::create_dir_all(Path::new(&four).join("t/keys")).unwrap();
    std::fs::copy(Path::new(&one).join("t/keys/tenant.key"), Path::new(&four).join("t/keys/tenant.key")).unwrap();
    let env4 = e.parts_env(&four, budget);
    let q4 = run_jobs(env4.clone(), 4, backup()).await;
    assert_eq!(kinds(&q4, 10_000).await, k1, "the same jobs on 4 workers");

    let mut r1 = env1.repository("t", "parts").await.unwrap();
    let mut r4 = env4.repository("t", "parts").await.unwrap();
    let (s1, s4) = (r1.list_snapshots().await.unwrap(), r4.list_snapshots().await.unwrap());
    assert_eq!((s1.len(), s4.len()), (1, 1), "one backup snapshot each: {s1:?} {s4:?}");
    // The id is derived from the run and the time of its share snapshot.
    let run1 = log1
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, p)| p.get("run").and_then(|r| r.as_str()).map(str::to_string))
        .unwrap();
    assert!(s1[0].ends_with(&blake3::hash(format!("t/parts/{run1}").as_bytes()).to_hex()[..8]), "{s1:?} of {run1}");
    let (v1, v4) = (versions(&r1, &s1[0]).await, versions(&r4, &s4[0]).await);
    assert_eq!(v1, v4, "the same node versions on 1 and 4 workers");
    let (_, index_rows) = rows(&one, "parts").await;
    assert_eq!(
        v1.keys().copied().collect::<Vec<_>>(),
        index_rows.iter().map(|n| n.node_id.as_u64()).collect::<Vec<_>>(),
        "a version for every node"
    );
    // Both backups wrote the hash layer of their index snapshot: every file's hash is in the index.
    for (repo, v) in [(&one, &v1), (&four, &v4)] {
        for n in rows(repo, "parts").await.1.iter().filter(|n| n.size > 0) {
            let digest: &[u8; 20] = v[&n.node_id.as_u64()].xorhash.as_deref().unwrap().try_into().unwrap();
            assert_eq!(n.xorhash, afb::index::hashes::xorhash64(digest), "the index hash of node {}", n.node_id);
        }
    }
    // One worker ran the parts one after the other: no chunk was stored twice. Four workers stored the
    // same chunks (a chunk two parts stored at the same moment may be in two packs).
    let (blobs1, chunks1) = pack_chunks(&r1).await;
    assert_eq!(blobs1, chunks1.len(), "every chunk stored once");
    assert_eq!(pack_chunks(&r4).await.1, chunks1);
    for repo in [&one, &four] {
        assert!(walk(&Path::new(repo).join("t/parts/runs")).is_empty(), "part records are deleted after the commit");
        assert!(walk(&Path::new(repo).join("t/parts/locks")).is_empty(), "no marker left");
    }
    let share_tree = share_files(&live, "").await;
    assert!(share_tree.len() >= 240);
    for (r, out) in [(&mut r1, e.dir.join("restored-one")), (&mut r4, e.dir.join("restored-four"))] {
        assert_eq!(restore_latest(r, &out).await as usize, share_tree.len());
        assert_same_tree(&read_tree(&out), &share_tree, "restore byte-identical to the share");
    }

    // Every part and the commit of the finished backup again: nothing is written.
    let before = digest_tree(Path::new(&one));
    let again: Vec<NewJob> = log1
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, p)| {
            (*k == JobKind::Backup && p.get("part").is_some()) || (*k == JobKind::Commit && p["op"] == "backup_parts")
        })
        .map(|(k, p)| job(*k, p.clone()))
        .collect();
    assert_eq!(again.len(), parts.len() + 1);
    let q = run_with(data_handlers(env1.clone()), 1, 2, again).await;
    assert_eq!(q.counts().await.unwrap().succeeded as usize, parts.len() + 1);
    for id in 1..=parts.len() as i64 + 1 {
        let p = q.get(id).await.unwrap().unwrap().progress.unwrap();
        assert!(
            p["result"] == "already_committed" || p["already_committed"] == true,
            "job {id} found the snapshot committed: {p}"
        );
    }
    assert_eq!(digest_tree(Path::new(&one)), before, "re-running the parts and the commit wrote nothing");

    // An incremental backup whose every job runs twice (the first attempt does the work, then fails): a
    // large file rewritten in one range, new files, a directory renamed, a file deleted.
    let big = share_tree.iter().find(|(_, d)| d.len() > 100_000).unwrap().0.clone();
    live.file(&big).put_range(8192, bytes::Bytes::from(vec![0xab; 4096])).await.unwrap();
    live.directory("added").create(&Default::default()).await.unwrap();
    for i in 0..5u8 {
        live.file(&format!("added/new-{i}.bin"))
            .upload(bytes::Bytes::from(vec![i; 3000 + 100 * i as usize]), &Default::default())
            .await
            .unwrap();
    }
    // A top-level directory that does not hold the rewritten file (List Ranges follows a path).
    let dir = share_tree
        .keys()
        .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_string()))
        .find(|d| !big.starts_with(&format!("{d}/")))
        .unwrap();
    live.directory(&dir).rename("renamed-dir").await.unwrap();
    let gone = share_tree.keys().find(|p| !p.starts_with(&format!("{dir}/")) && **p != big).unwrap().clone();
    live.file(&gone).delete().await.unwrap();
    let log2 = Log::default();
    let small = BatchBudget { bytes: 200_000, nodes: 3 };
    let q2 = run_with(wrapped(e.parts_env(&one, small), &log2, true), 1, 1, backup()).await;
    let k2 = kinds(&q2, 10_000).await;
    assert!(all_succeeded(&k2), "{k2:?}");
    for id in 1..=k2.values().map(|(n, _)| n).sum::<usize>() as i64 {
        assert_eq!(q2.get(id).await.unwrap().unwrap().attempts, 2, "job {id} ran twice");
    }
    let parts2 = log2.lock().unwrap().iter().filter(|(k, p)| *k == JobKind::Backup && p.get("part").is_some()).count();
    assert!(parts2 >= 4, "the incremental upload split into parts too ({parts2} runs)");
    // What the parts read from the share (their re-runs report the first attempt's summary): the new
    // files and the rewritten range (List Ranges against the previous backup's share snapshot), not the
    // whole rewritten file.
    let mut read = 0;
    for id in 1..=k2.values().map(|(n, _)| n).sum::<usize>() as i64 {
        let j = q2.get(id).await.unwrap().unwrap();
        if let Some(p) = j.progress.filter(|p| p.get("part").is_some() && p["phase"] == "done") {
            assert_eq!(p["result"], "already_stored", "the second attempt found its part record: {p}");
            read += p["bytes_read"].as_u64().unwrap();
        }
    }
    let new_bytes: u64 = (0..5).map(|i| 3000 + 100 * i).sum();
    assert!(
        read >= new_bytes + 4096 && read < new_bytes + 64 * 1024,
        "read {read} bytes, not the whole {} of {big}",
        share_tree[&big].len()
    );
    let s1 = r1.list_snapshots().await.unwrap();
    assert_eq!(s1.len(), 2, "one more backup snapshot, not {s1:?}");
    let (blobs1, chunks1) = pack_chunks(&r1).await;
    assert_eq!(blobs1, chunks1.len(), "running every job twice stored no chunk twice");
    let now_tree = share_files(&live, "").await;
    let out = e.dir.join("restored-incremental");
    restore_latest(&mut r1, &out).await;
    assert_same_tree(&read_tree(&out), &now_tree, "the incremental backup restores byte-identical");
    assert!(walk(&Path::new(&one).join("t/parts/runs")).is_empty());

    // Compaction: one index object per partition, then nothing more to do; the backups still verify.
    let objects = index_objects(&one, "parts");
    assert!(objects.values().any(|n| *n > 1), "the parts wrote several index objects per partition");
    let garbage = Path::new(&one).join("t/parts/index/data/00000000000000000999-dead/nodes.parquet");
    std::fs::create_dir_all(garbage.parent().unwrap()).unwrap();
    std::fs::write(&garbage, b"not referenced by any index snapshot").unwrap();
    let compact = || job(JobKind::Compact, json!({ "tenant": "t", "share": "parts", "grace_secs": 0 }));
    let verify = || {
        job(
            JobKind::Verify,
            json!({ "tenant": "t", "share": "parts", "read_data_percent": 100.0, "compare_live": true }),
        )
    };
    let q3 = run_jobs(env1.clone(), 1, vec![compact()]).await;
    assert_eq!(q3.get(1).await.unwrap().unwrap().state, JobState::Succeeded);
    let after = index_objects(&one, "parts");
    assert!(after.values().all(|n| *n == 1) && after.keys().eq(objects.keys()), "{after:?}");
    assert!(!garbage.exists(), "node-index garbage collected");
    assert_eq!(rows(&one, "parts").await.0, 2, "the index snapshots are intact");
    let before = digest_tree(Path::new(&one));
    let q3 = run_jobs(env1.clone(), 1, vec![compact(), verify()]).await;
    for id in [1, 2] {
        let j = q3.get(id).await.unwrap().unwrap();
        assert_eq!(j.state, JobState::Succeeded, "{j:?}");
    }
    assert_eq!(digest_tree(Path::new(&one)), before, "a second compaction changes nothing");
    let out = e.dir.join("restored-compacted");
    restore_latest(&mut env1.repository("t", "parts").await.unwrap(), &out).await;
    assert_same_tree(&read_tree(&out), &now_tree, "restore after compaction");
}

/// The root `backup` job's first `kills` attempts take their run's tagged share snapshot (the call the
/// root job makes) and then die, as if killed before recording it; later attempts run the real handler.
struct KilledAfterSnapshot {
    inner: Arc<dyn JobHandler>,
    svc: FileServiceClient,
    kills: i32,
    taken: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl JobHandler for KilledAfterSnapshot {
    async fn run(&self, ctx: &JobContext, payload: &serde_json::Value) -> Result<Outcome, JobError> {
        if ctx.job.attempt <= self.kills && payload.get("part").is_none() {
            let tag = afb::scan::fanout::run_tag("t", "leak", &afb::jobs::data::run_name(&ctx.job));
            let ts = afb::scan::fanout::take_tagged_snapshot(&self.svc, "leak", &tag).await?;
            self.taken.lock().unwrap().push(ts);
            return Err(JobError::Transient(anyhow::anyhow!(
                "killed between taking the share snapshot and recording it"
            )));
        }
        self.inner.run(ctx, payload).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_job_killed_between_taking_and_recording_its_share_snapshot_leaks_none() {
    use afb::scan::fanout::{RUN_TAG, load_run, run_tag, take_tagged_snapshot};
    let e = env().await;
    e.share("leak", 30).await;
    let svc = e.svc();
    let repo = e.repo("repo", "leak");
    // A snapshot another run took and one a user took must stay.
    let other = take_tagged_snapshot(&svc, "leak", &run_tag("t", "leak", "job-99-1")).await.unwrap();
    let user = svc.share("leak").create_snapshot().await.unwrap();

    // The root job is killed twice right after taking its share snapshot, then runs to the end.
    let denv = e.data_env(&repo, 4);
    let taken = Arc::new(Mutex::new(Vec::new()));
    let handlers = data_handlers(denv.clone());
    let inner = handlers.get(JobKind::Backup).unwrap();
    let handlers =
        handlers.with(JobKind::Backup, KilledAfterSnapshot { inner, svc: svc.clone(), kills: 2, taken: taken.clone() });
    let q = run_with(handlers, 1, 2, vec![job(JobKind::Backup, json!({ "tenant": "t", "share": "leak" }))]).await;
    assert!(all_succeeded(&kinds(&q, 1000).await));
    assert_eq!(q.get(1).await.unwrap().unwrap().attempts, 3);
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 2);
    let tagged = svc.list_share_snapshots("leak").await.unwrap();
    let runs: Vec<_> = std::fs::read_dir(Path::new(&repo).join("t/leak/index/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(runs.len(), 1);
    let index = NodeIndex::open(&repo).unwrap();
    let info = load_run(&index, "t", "leak", &runs[0]).await.unwrap();
    assert_eq!(info.share_snapshot, taken[0], "the re-run adopted the oldest snapshot of its run");
    let mine = tagged.iter().find(|s| s.snapshot.as_deref() == Some(&taken[0])).unwrap();
    assert_eq!(
        mine.metadata.get(RUN_TAG),
        Some(&run_tag("t", "leak", &runs[0])),
        "tagged with its run, in the snapshot's own metadata"
    );
    let left: BTreeSet<String> = tagged.into_iter().filter_map(|s| s.snapshot).collect();
    assert_eq!(
        left,
        BTreeSet::from([taken[0].clone(), other, user]),
        "the surplus snapshot of the run ({}) is deleted, nothing else",
        taken[1]
    );
    let r = denv.repository("t", "leak").await.unwrap();
    assert_eq!(r.list_snapshots().await.unwrap().len(), 1);
}
