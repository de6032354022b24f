//! Worker processes killed with SIGKILL at random moments, restarted, and every job still takes effect
//! exactly once.

mod jobs_support;

use afb::jobs::{JobKind, NewJob, Queue};
use jobs_support::{TestDb, eventually};
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
    let ok = Command::new(&copy).args(["worker", "--help"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if ok.is_ok_and(|s| s.success()) && std::env::var_os("AFB_CRASH_TEST_SELF_EXEC").is_none() {
        return WorkerBin::Afb(copy);
    }
    eprintln!("worker processes: this test binary re-executed (not {})", env!("CARGO_BIN_EXE_afb"));
    let me = dir.join("jobs_crash");
    std::fs::copy("/proc/self/exe", &me).expect("copy the test binary");
    WorkerBin::SelfExec(me)
}

const CHILD_URL_VAR: &str = "AFB_CRASH_TEST_WORKER_URL";

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
        toy_effects_dir: std::env::var_os("AFB_TOY_EFFECTS_DIR").map(PathBuf::from),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(afb::jobs::cli::worker(args)).unwrap();
    std::process::exit(0);
}

fn spawn_worker(bin: &WorkerBin, url: &str, effects: &Path, n: usize) -> Child {
    let log = std::fs::File::create(effects.join(format!("worker-{n}.log"))).unwrap();
    let mut cmd = match bin {
        WorkerBin::Afb(path) => {
            let mut c = Command::new(path);
            c.args(["worker", "--database-url", url, "--concurrency", "4", "--lease-secs", "1", "--retry-base-secs", "0.05"]);
            c
        }
        WorkerBin::SelfExec(path) => {
            let mut c = Command::new(path);
            c.args(["child_worker_process", "--exact", "--nocapture", "--test-threads=1"]).env(CHILD_URL_VAR, url);
            c
        }
    };
    cmd.env("AFB_TOY_EFFECTS_DIR", effects)
        .env("AFB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start a worker process")
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
        .map(|i| NewJob::new(1 + i % 4, JobKind::Noop, json!({ "sleep_ms": rng.random_range(20..120) })).max_attempts(50))
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
    for w in &mut workers {
        let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
    }
    for w in &mut workers {
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker exited badly on SIGTERM: {status}");
    }
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
