//! Worker processes killed with SIGKILL at random moments, restarted, and every job still takes effect
//! exactly once.

use crate::support::jobs::{TestDb, eventually};
use crate::support::tree::{read_tree, share_files};
use afb::jobs::{JobKind, NewJob, Queue};
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a worker process: the `afb` binary, or this test binary re-executing itself.
enum WorkerBin {
    Afb(PathBuf),
    SelfExec(PathBuf),
}

/// A private copy of the `afb` binary. The build directory may be shared with other checkouts whose
/// builds replace `target/debug/afb` at any moment; if the one found has no `worker` command, this test
/// binary (a copy of the running executable, so certainly this checkout's code) runs the same
/// `afb::jobs::cli::worker` through [`child_worker_process`] instead.
fn worker_bin(dir: &Path) -> WorkerBin {
    let copy = dir.join("afb");
    std::fs::copy(env!("CARGO_BIN_EXE_afb"), &copy).expect("copy the afb binary");
    // This checkout's worker has the data flags; a foreign build may not.
    let help = Command::new(&copy).args(["worker", "--help"]).stderr(Stdio::null()).output();
    if help.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("--backup-batch-files"))
        && std::env::var_os("AFB_CRASH_TEST_SELF_EXEC").is_none()
    {
        return WorkerBin::Afb(copy);
    }
    eprintln!("worker processes: this test binary re-executed (not {})", env!("CARGO_BIN_EXE_afb"));
    let me = dir.join("jobs_crash");
    std::fs::copy("/proc/self/exe", &me).expect("copy the test binary");
    WorkerBin::SelfExec(me)
}

const CHILD_URL_VAR: &str = "AFB_CRASH_TEST_WORKER_URL";
const CHILD_REPO_VAR: &str = "AFB_CRASH_TEST_WORKER_REPO";
const CHILD_KEY_VAR: &str = "AFB_CRASH_TEST_WORKER_KEY_FILE";

/// The data options of the backup crash test's workers: small listing and upload budgets, so a backup
/// fans out into many scan jobs and then splits its upload into many parts.
fn data_args(repo: &str, key_file: &Path) -> afb::jobs::cli::DataArgs {
    afb::jobs::cli::DataArgs {
        repo: Some(repo.to_string()),
        master_key_file: Some(key_file.to_path_buf()),
        scan_budget_pages: 3,
        scan_max_children: 3,
        scan_concurrency: 4,
        scan_page_size: Some(40),
        backup_batch_bytes: 2_000_000,
        backup_batch_files: 60,
    }
}

/// Not a test: the entry point of worker processes started by re-executing this binary. Does nothing
/// unless the crash test set its environment variable.
#[test]
fn child_worker_process() {
    let Ok(url) = std::env::var(CHILD_URL_VAR) else { return };
    let args = afb::jobs::cli::WorkerArgs {
        db: afb::jobs::cli::DatabaseArgs { database_url: url },
        concurrency: 4,
        lease_secs: 1.0,
        shutdown_grace_secs: 30.0,
        retry_base_secs: 0.05,
        metrics_addr: None,
        async_commit: false,
        worker_id: None,
        noop_effects_dir: std::env::var_os("AFB_NOOP_EFFECTS_DIR").map(PathBuf::from),
        data: match std::env::var(CHILD_REPO_VAR) {
            Ok(repo) => data_args(&repo, &PathBuf::from(std::env::var(CHILD_KEY_VAR).unwrap())),
            Err(_) => Default::default(),
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(afb::jobs::cli::worker(args)).unwrap();
    std::process::exit(0);
}

fn spawn_worker(bin: &WorkerBin, url: &str, effects: &Path, n: usize) -> Child {
    spawn_worker_with(bin, url, effects, n, None)
}

/// A worker process; with `data` (repository, master key file) it runs the data handlers too.
fn spawn_worker_with(bin: &WorkerBin, url: &str, effects: &Path, n: usize, data: Option<(&str, &Path)>) -> Child {
    let log = std::fs::File::create(effects.join(format!("worker-{n}.log"))).unwrap();
    let mut cmd = match bin {
        WorkerBin::Afb(path) => {
            let mut c = Command::new(path);
            c.args([
                "worker",
                "--database-url",
                url,
                "--concurrency",
                "4",
                "--lease-secs",
                "1",
                "--retry-base-secs",
                "0.05",
            ]);
            if let Some((repo, key)) = data {
                let d = data_args(repo, key);
                c.args(["--repo", repo, "--master-key-file", key.to_str().unwrap()]);
                c.args([
                    "--scan-budget-pages",
                    &d.scan_budget_pages.to_string(),
                    "--scan-max-children",
                    &d.scan_max_children.to_string(),
                ]);
                c.args([
                    "--scan-concurrency",
                    &d.scan_concurrency.to_string(),
                    "--scan-page-size",
                    &d.scan_page_size.unwrap().to_string(),
                ]);
                c.args([
                    "--backup-batch-bytes",
                    &d.backup_batch_bytes.to_string(),
                    "--backup-batch-files",
                    &d.backup_batch_files.to_string(),
                ]);
            }
            c
        }
        WorkerBin::SelfExec(path) => {
            let mut c = Command::new(path);
            c.args(["jobs_crash::child_worker_process", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_URL_VAR, url);
            if let Some((repo, key)) = data {
                c.env(CHILD_REPO_VAR, repo).env(CHILD_KEY_VAR, key);
            }
            c
        }
    };
    cmd.env("AFB_NOOP_EFFECTS_DIR", effects)
        .env("AFB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start a worker process")
}

/// Sends SIGTERM to every worker and checks that each exits cleanly.
fn terminate(workers: &mut [Child]) {
    for w in workers.iter() {
        let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
    }
    for w in workers.iter_mut() {
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker exited badly on SIGTERM: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_at_random_moments_still_completes_every_job_exactly_once_in_effect() {
    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let effects = tmp.path().join("effects");
    std::fs::create_dir_all(&effects).unwrap();
    let bin = worker_bin(tmp.path());
    let q = db.queue().await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let jobs: Vec<NewJob> = (0..400)
        .map(|i| {
            NewJob::new(1 + i % 4, JobKind::Noop, json!({ "sleep_ms": rng.random_range(20..120) })).max_attempts(50)
        })
        .collect();
    let ids = q.enqueue(&jobs).await.unwrap();

    let mut workers: Vec<Child> = (0..3).map(|n| spawn_worker(&bin, &db.url, &effects, n)).collect();
    let started = Instant::now();
    let mut kills = 0;
    let mut spawned = 3;
    // Kill a random worker every 150-400 ms for the first 3 s, restarting it at once.
    while started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..400))).await;
        let victim = rng.random_range(0..workers.len());
        workers[victim].kill().unwrap(); // SIGKILL
        workers[victim].wait().unwrap();
        kills += 1;
        workers[victim] = spawn_worker(&bin, &db.url, &effects, spawned);
        spawned += 1;
    }
    let drained = eventually(Duration::from_secs(30), || async { q.counts().await.unwrap().unfinished() == 0 }).await;
    terminate(&mut workers);
    assert!(drained, "jobs left unfinished: {:?}", q.counts().await.unwrap());

    // Control plane: every job succeeded once; none dead.
    let counts = q.counts().await.unwrap();
    assert_eq!((counts.succeeded, counts.dead), (400, 0), "{counts:?}");

    // Effects: exactly one done file per job, none for anything else.
    let done: BTreeSet<i64> = std::fs::read_dir(effects.join("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(done, ids.iter().copied().collect::<BTreeSet<_>>());

    // Every run was a claim: no job ran more often than the database counted attempts.
    let mut runs: BTreeMap<i64, i32> = BTreeMap::new();
    for line in std::fs::read_to_string(effects.join("runs.log")).unwrap().lines() {
        let id: i64 = line.split(' ').next().unwrap().parse().unwrap();
        *runs.entry(id).or_default() += 1;
    }
    let client = db.client().await;
    for row in client.query("SELECT job_id, attempts FROM jobs", &[]).await.unwrap() {
        let (id, attempts): (i64, i32) = (row.get(0), row.get(1));
        assert!(runs.get(&id).copied().unwrap_or(0) <= attempts, "job {id} ran more often than it was claimed");
    }
    let reruns: i32 = runs.values().map(|n| n - 1).sum();
    eprintln!("{kills} kills, {reruns} re-runs of interrupted jobs, {:.1} s", started.elapsed().as_secs_f64());
    assert!(kills >= 5);
}

/// The emulator as a process of its own (`afb emulator`); killed when dropped.
struct EmulatorProcess {
    child: Child,
    connection_string: String,
}

impl EmulatorProcess {
    fn start(afb: &Path, data: &Path) -> EmulatorProcess {
        use std::io::BufRead;
        let mut child = Command::new(afb)
            .args(["emulator", "--addr", "127.0.0.1:0", "--data", data.to_str().unwrap()])
            .env("AFB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start afb emulator");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("FileEndpoint="), "afb emulator printed {line:?}");
        EmulatorProcess { child, connection_string: line.trim().to_string() }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_during_fanned_out_backups_commits_each_backup_once_complete_and_restorable() {
    use afb::generate::fill::{FillOptions, fill};
    use afb::generate::plan::{ShareSpec, plan};
    use afb::jobs::JobState;
    use afb::jobs::payloads::queue_tenant_id;
    use afb::jobs::settings::{Settings, SettingsInput};

    let db = TestDb::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let effects = tmp.path().join("effects");
    std::fs::create_dir_all(&effects).unwrap();
    let bin = worker_bin(tmp.path());
    let emu = EmulatorProcess::start(&tmp.path().join("afb"), &tmp.path().join("emu"));
    let svc = afb::azure::FileServiceClient::from_connection_string(&emu.connection_string).unwrap();

    // Three generated shares; every backup fans out (a budget of 3 listing pages of 40 entries per job),
    // then splits its upload into parts (2 MB or 60 files each).
    let repo = tmp.path().join("repo");
    let key_file = tmp.path().join("master.key");
    let master = afb::repository::MasterKey::create_file(&key_file).unwrap();
    let settings = Settings::new(repo.join(".afb").join("shares.json"), Some(master.clone()));
    let shares = ["alpha", "beta", "gamma"];
    for (i, name) in shares.iter().enumerate() {
        let mut spec = ShareSpec::sample();
        spec.files = 400;
        spec.max_file_size_bytes = 300_000;
        let entries = plan(&spec, 10 + i as u64, 1_700_000_000);
        fill(&svc.share(name), &spec, &entries, &FillOptions { concurrency: 16, nfs_modes: false }).await.unwrap();
        let input =
            SettingsInput { connection_string: Some(emu.connection_string.clone()), sas_url: None, azure_share: None };
        settings.put("t", name, input).unwrap();
    }
    let repo_s = repo.to_str().unwrap().to_string();

    let q = db.queue().await;
    let jobs: Vec<NewJob> = shares
        .iter()
        .map(|s| {
            NewJob::new(queue_tenant_id("t"), JobKind::Backup, json!({ "tenant": "t", "share": s })).max_attempts(50)
        })
        .collect();
    q.enqueue(&jobs).await.unwrap();

    let data = Some((repo_s.as_str(), key_file.as_path()));
    let mut workers: Vec<Child> = (0..3).map(|n| spawn_worker_with(&bin, &db.url, &effects, n, data)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(66);
    let started = Instant::now();
    let (mut kills, mut spawned) = (0, 3);
    // Kill a random worker every 0.3-1.2 s for 12 s (or until the work is done), restarting it at once.
    while started.elapsed() < Duration::from_secs(12) && q.counts().await.unwrap().unfinished() > 0 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        let victim = rng.random_range(0..workers.len());
        workers[victim].kill().unwrap(); // SIGKILL
        workers[victim].wait().unwrap();
        kills += 1;
        workers[victim] = spawn_worker_with(&bin, &db.url, &effects, spawned, data);
        spawned += 1;
    }
    let drained = eventually(Duration::from_secs(240), || async { q.counts().await.unwrap().unfinished() == 0 }).await;
    // A worker restarted a moment ago may not have reached main yet, where SIGTERM would kill it outright:
    // give it time to install its handler.
    tokio::time::sleep(Duration::from_secs(1)).await;
    terminate(&mut workers);
    assert!(drained, "jobs left unfinished: {:?}", q.counts().await.unwrap());

    // Control plane: every job (roots, scan parts, commits) succeeded; none dead.
    let client = db.client().await;
    let rows = client
        .query("SELECT kind, state, count(*), sum(attempts) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2", &[])
        .await
        .unwrap();
    let summary: Vec<(String, String, i64, i64)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    eprintln!(
        "{kills} kills in {:.1} s; jobs (kind, state, count, attempts): {summary:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(summary.iter().all(|(_, state, _, _)| state == JobState::Succeeded.as_str()), "{summary:?}");
    let count = |k: &str| summary.iter().filter(|s| s.0 == k).map(|s| s.2).sum::<i64>();
    assert!(count("scan") >= 6 && count("commit") >= 6, "the backups fanned out: {summary:?}");
    let parts =
        client.query("SELECT count(*) FROM jobs WHERE kind = 'backup' AND payload ? 'part'", &[]).await.unwrap()[0]
            .get::<_, i64>(0);
    assert_eq!(count("backup") - parts, 3, "three root backup jobs");
    assert!(parts >= 9, "every upload split into parts: {parts} part jobs");
    let reruns: i64 = summary.iter().map(|s| s.3 - s.2).sum();
    eprintln!("{reruns} extra attempts after kills");
    let errors = client.query("SELECT kind, left(last_error, 160), count(*) FROM jobs WHERE last_error IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC", &[]).await.unwrap();
    for r in &errors {
        eprintln!("last error of {} {} jobs: {}", r.get::<_, i64>(2), r.get::<_, &str>(0), r.get::<_, &str>(1));
    }
    assert!(kills >= 5);

    // Effects: per share one index snapshot and one backup snapshot, complete, verified, restorable.
    let index = afb::index::NodeIndex::open(&repo_s).unwrap();
    for name in shares {
        assert_eq!(index.snapshot_ids("t", name).await.unwrap(), vec![1], "{name}: one index snapshot");
        let store: std::sync::Arc<dyn object_store::ObjectStore> =
            std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&repo).unwrap());
        let mut r = afb::repository::Repository::open(store, &master, "t", name, Default::default()).await.unwrap();
        let snaps = r.list_snapshots().await.unwrap();
        assert_eq!(snaps.len(), 1, "{name}: one backup snapshot, not {snaps:?}");
        assert!(
            walk_files(&repo.join("t").join(name).join("runs")).is_empty(),
            "{name}: part records deleted after the commit"
        );
        // Share snapshots taken by killed root jobs were adopted or deleted: the run's one is left.
        let azure: Vec<_> =
            svc.list_share_snapshots(name).await.unwrap().into_iter().filter_map(|s| s.snapshot).collect();
        assert_eq!(azure.len(), 1, "{name}: one share snapshot, not {azure:?}");
        let m = index.latest("t", name).await.unwrap().unwrap();
        let live = share_files(&svc.share(name), "").await;
        assert_eq!(m.totals.files as usize, live.len(), "{name}: the index snapshot has every file");

        let opts = afb::backup::verify::VerifyOptions {
            snapshot: None,
            read_data: true,
            read_data_subset: 0.0,
            index: Some(&index),
            compare_live: None,
        };
        let v = afb::backup::verify::verify(&mut r, opts).await.unwrap();
        assert!(v.problems.is_empty(), "{name}: verify found {:?}", v.problems);

        let out = tmp.path().join(format!("restored-{name}"));
        let target = afb::backup::restore::Target::Local(out.clone());
        let ro = afb::backup::restore::RestoreOptions {
            snapshot: None,
            path: None,
            target,
            overwrite: false,
            concurrency: Default::default(),
        };
        let s = afb::backup::restore::restore(&mut r, ro).await.unwrap();
        assert_eq!(s.files_restored as usize, live.len());
        assert!(read_tree(&out) == live, "{name}: the restore is byte-identical to the share");
    }
}

/// Every file below `dir` (none when it does not exist).
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
