//! The data handlers (scan, backup, restore, verify, commit) on the embedded queue against the in-process
//! emulator: fanned-out scans equal one worker's scan, a backup job is idempotent, restore, verify and
//! prune jobs.

mod jobs_support;

mod tree_support;
use tree_support::{read_tree, share_files};
use afb::api::settings::{Settings, SettingsInput};
use afb::azure::FileServiceClient;
use afb::emulator::{Emulator, EmulatorConfig};
use afb::generate::fill::{FillOptions, fill};
use afb::generate::plan::{ShareSpec, plan};
use afb::index::node::{Node, batch_to_nodes};
use afb::index::snapshot::Repo as IndexRepo;
use afb::jobs::data::{DataEnv, data_handlers};
use afb::jobs::payloads::queue_tenant_id;
use afb::jobs::{JobKind, JobState, MemoryQueue, NewJob, Queue, Worker, WorkerConfig};
use afb::repository::MasterKey;
use afb::scan::fanout::ListBudget;
use futures::TryStreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
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
    let emu = Emulator::start(EmulatorConfig { addr: "127.0.0.1:0".parse().unwrap(), data: dir.path().join("emu"), faults: Default::default() }).unwrap();
    Env { dir: dir.path().to_path_buf(), _dir: dir, emu, master: MasterKey::generate() }
}

impl Env {
    /// A generated share of `files` files (small contents) in the emulator.
    async fn share(&self, name: &str, files: u64) {
        let svc = FileServiceClient::from_connection_string(&self.emu.connection_string()).unwrap();
        let mut spec = ShareSpec::sample();
        spec.files = files;
        spec.max_file_size_bytes = 20_000;
        let entries = plan(&spec, 7, 1_700_000_000);
        fill(&svc.share(name), &spec, &entries, &FillOptions { concurrency: 16, nfs_modes: false }).await.unwrap();
    }

    /// A repository directory whose settings name share `share` of tenant `t` in the emulator.
    fn repo(&self, name: &str, share: &str) -> String {
        let repo = self.dir.join(name);
        Settings::new(repo.join(".afb").join("shares.json"))
            .put("t", share, SettingsInput { connection_string: Some(self.emu.connection_string()), sas_url: None, azure_share: None })
            .unwrap();
        repo.to_str().unwrap().to_string()
    }

    fn data_env(&self, repo: &str, pages: u64) -> Arc<DataEnv> {
        Arc::new(DataEnv::new(repo, self.master.clone()).with_budget(ListBudget { pages, concurrency: 4, page_size: Some(50), max_children: 3, max_rows: 1_000_000 }))
    }
}

/// Runs `jobs` to the end on `workers` workers sharing one memory queue; returns the queue.
async fn run_jobs(env: Arc<DataEnv>, workers: usize, jobs: Vec<NewJob>) -> Arc<MemoryQueue> {
    let q = Arc::new(MemoryQueue::new());
    q.enqueue(&jobs).await.unwrap();
    let stop = CancellationToken::new();
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let mut cfg = WorkerConfig::new(format!("w{i}"));
            cfg.concurrency = 2;
            cfg.retry.base = Duration::from_millis(50);
            cfg.poll = Duration::from_millis(50);
            tokio::spawn(Worker::new(q.clone(), data_handlers(env.clone()), cfg).run(stop.clone()))
        })
        .collect();
    let done = jobs_support::eventually(Duration::from_secs(120), || async { q.counts().await.unwrap().unfinished() == 0 }).await;
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
    let index = IndexRepo::open(&format!("{repo}/nodeindex")).unwrap();
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
    let ids: Vec<i64> = r_one.iter().map(|n| n.node_id).collect();
    assert_eq!(ids, (1..=r_one.len() as i64).collect::<Vec<_>>());
    assert!(r_one.iter().all(|n| n.parent_id == 0 || n.parent_id <= r_one.len() as i64));
    // Fragments are gone after the commit.
    let runs = Path::new(&four).join("nodeindex/t/big/index/runs");
    let leftover: Vec<_> = walk(&runs).into_iter().filter(|p| p.contains("/parts/")).collect();
    assert!(leftover.is_empty(), "{leftover:?}");

    // The same fanned-out scan against the plain `afb scan` of the share: the same rows by path.
    let plain = IndexRepo::open(e.dir.join("plain").to_str().unwrap()).unwrap();
    let acct = afb::azure::credential::AccountConfig::from_connection_string(&e.emu.connection_string()).unwrap();
    let r = afb::scan::scan(acct, Default::default(), "big", &plain, "t", &afb::scan::ScanOptions::default()).await.unwrap();
    let b: Vec<_> = plain.read(r.manifest.as_ref().unwrap(), None).unwrap().try_collect().await.unwrap();
    let plain_rows: Vec<Node> = b.iter().flat_map(batch_to_nodes).collect();
    assert_eq!(by_path(&plain_rows), by_path(&r_one));
}

/// path → (kind, size, mtime, ctime, attributes).
fn by_path(nodes: &[Node]) -> BTreeMap<String, (String, i64, i64, i64, i32)> {
    let idx: BTreeMap<i64, &Node> = nodes.iter().map(|n| (n.node_id, n)).collect();
    nodes
        .iter()
        .map(|n| {
            let mut parts = vec![n.name.clone()];
            let mut p = n.parent_id;
            while p != 0 {
                parts.push(idx[&p].name.clone());
                p = idx[&p].parent_id;
            }
            parts.reverse();
            (parts.join("/"), (n.kind.as_str().to_string(), n.size, n.mtime, n.ctime, n.attributes))
        })
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
    let commit_payload = json!({ "tenant": "t", "share": "docs", "run": "job-1", "op": "backup" });
    let q2 = run_jobs(denv.clone(), 1, vec![job(JobKind::Commit, commit_payload)]).await;
    assert_eq!(q2.counts().await.unwrap().succeeded, 1);
    r = denv.repository("t", "docs").await.unwrap();
    assert_eq!(r.list_snapshots().await.unwrap(), snaps, "a re-run commits no second backup snapshot");
    assert_eq!(rows(&repo, "docs").await.0, 1, "nor a second index snapshot");

    // Restore into a directory: byte-identical to the share; verify with all data read: clean.
    let out = e.dir.join("restored");
    let jobs = vec![
        job(JobKind::Restore, json!({ "tenant": "t", "share": "docs", "target": { "kind": "local", "path": out.to_str().unwrap() } })),
        job(JobKind::Verify, json!({ "tenant": "t", "share": "docs", "read_data_percent": 100.0, "compare_live": true })),
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

    // A share without settings: dead at once, naming what is missing.
    let q4 = run_jobs(denv, 1, vec![job(JobKind::Scan, json!({ "tenant": "t", "share": "nosuch" }))]).await;
    let j = q4.get(1).await.unwrap().unwrap();
    assert_eq!((j.state, j.attempts), (JobState::Dead, 1));
    assert!(j.last_error.unwrap().contains("t/nosuch has no Azure source"));
}

