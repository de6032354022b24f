//! The `afb` command line. Each subcommand delegates to the module that owns the work.

use afb::cli::ExitCode;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "afb", version, about = "Azure Files Backup")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The embedded default: emulator, sample share, listing, two scans around a few changes, diff and SQL,
    /// then backup, verify and restore jobs, then the dashboard until Ctrl-C (`--no-serve` ends before it).
    Demo(afb::demo::DemoArgs),
    /// Run the Azure Files emulator; prints its connection string as the first stdout line.
    Emulator(afb::emulator::EmulatorConfig),
    /// Fill a share with a generated, realistic tree.
    Gen(afb::generate::cli::GenArgs),
    /// Create a repository and a master key file (never overwriting one); says what to keep safe.
    Init(afb::backup::cli::InitArgs),
    /// List a directory of a share (or of a share snapshot).
    Ls(afb::azure::ls::LsArgs),
    /// Snapshot a share, list it, and commit the next index snapshot.
    Scan(afb::scan::cli::ScanArgs),
    /// List the snapshots of a share.
    Snapshots(afb::index::cli::SnapshotsArgs),
    /// What changed between two snapshots of a share.
    Diff(afb::index::cli::DiffArgs),
    /// SQL over the snapshots of a repository.
    Sql(afb::index::cli::SqlArgs),
    /// Remove data files and directory summaries that no snapshot references.
    Gc(afb::index::cli::GcArgs),
    /// Back up a share: snapshot, scan, diff, read only what changed.
    Backup(afb::backup::cli::BackupArgs),
    /// Restore a backup (share, subtree or file) to a local directory or a share.
    Restore(afb::backup::cli::RestoreArgs),
    /// Check a backup: objects exist, decrypt and hash to their ids; index and metadata agree.
    Verify(afb::backup::cli::VerifyArgs),
    /// Apply retention rules to backups.
    Forget(afb::backup::cli::ForgetArgs),
    /// Free packs and objects no backup references (safe while backups run).
    Prune(afb::backup::cli::PruneArgs),
    /// Print a decrypted repository object to stdout.
    CatObject(afb::backup::cli::CatObjectArgs),
    /// Serve the REST API and the web dashboard over a repository.
    Serve(afb::server::ServeArgs),
    /// Create an API token (scoped to a tenant or the operator), store its hash, print it once.
    ApiToken(afb::api::TokenArgs),
    /// Fill a repository with synthetic tenants and snapshot histories (for the dashboard's tests and demos).
    ApiSample(afb::api::sample::SampleArgs),
    /// Apply the PostgreSQL schema migrations not yet applied.
    Migrate(afb::jobs::cli::MigrateArgs),
    /// Claim and run jobs from the PostgreSQL queue until SIGTERM.
    Worker(afb::jobs::cli::WorkerArgs),
    /// Enqueue jobs from per-share cron schedules.
    Schedule(afb::jobs::cli::ScheduleArgs),
    /// Enqueue, inspect and cancel jobs.
    Jobs(afb::jobs::cli::JobsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// List a whole share and report entries per second and requests per entry.
    List(afb::azure::bench::BenchListArgs),
    /// Size and speed of the index on a synthetic share.
    Index(afb::index::bench::BenchIndexArgs),
    /// Claim-and-complete throughput and claim latency of the PostgreSQL queue.
    Queue(afb::jobs::bench::QueueBenchArgs),
    /// First and incremental backup of a generated share, with restic as the reference.
    Backup(afb::backup::bench::BenchBackupArgs),
    /// The emulator's ceiling: requests/s for a listing page, a small-file GET and a Create File.
    Emulator(afb::emulator::bench::BenchEmulatorArgs),
}

/// Keeps the memory budgets true under glibc's malloc. By default it raises its mmap threshold each time
/// a large block is freed and keeps up to 8 arenas per core, so the memory of the large Arrow buffers a
/// bounded sort allocates and frees again stays with the process: a 10M-file scan with a 1 GiB budget
/// peaked at 1,694 MiB, and at 1,152 MiB with a fixed 1 MiB threshold (large buffers are mapped and
/// returned when freed) and 2 arenas (`scripts/bench_scale.sh`, same binary, same run); a first backup
/// of 20,000 small files peaked at 201 MB of RSS with 75 MB of heap, 128 MB with the threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: called first, before any thread exists; both are documented mallopt parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> std::process::ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`afb ... | head`).
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tune_malloc();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("AFB_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => afb::demo::run(args).await,
            Command::Init(args) => afb::backup::cli::init_cmd(args).await,
            Command::Ls(args) => afb::azure::ls::run(args).await,
            Command::Gen(args) => afb::generate::cli::run(args).await,
            Command::Emulator(config) => afb::emulator::run(config).await,
            Command::Bench(BenchCommand::List(args)) => afb::azure::bench::run(args).await,
            Command::Scan(args) => afb::scan::cli::run(args).await,
            Command::Diff(args) => afb::index::cli::diff(args).await,
            Command::Sql(args) => afb::index::cli::sql(args).await,
            Command::Snapshots(args) => afb::index::cli::snapshots(args).await,
            Command::Gc(args) => afb::index::cli::gc(args).await,
            Command::Backup(args) => afb::backup::cli::backup_cmd(args).await,
            Command::Restore(args) => afb::backup::cli::restore_cmd(args).await,
            Command::Verify(args) => afb::backup::cli::verify_cmd(args).await,
            Command::Forget(args) => afb::backup::cli::forget_cmd(args).await,
            Command::Prune(args) => afb::backup::cli::prune_cmd(args).await,
            Command::CatObject(args) => afb::backup::cli::cat_object(args).await,
            Command::Bench(BenchCommand::Index(args)) => afb::index::bench::run(args).await,
            Command::Migrate(args) => afb::jobs::cli::migrate(args).await,
            Command::Worker(args) => afb::jobs::cli::worker(args).await,
            Command::Schedule(args) => afb::jobs::cli::schedule(args).await,
            Command::Jobs(args) => afb::jobs::cli::jobs(args).await,
            Command::Bench(BenchCommand::Queue(args)) => afb::jobs::cli::bench_queue(args).await,
            Command::Bench(BenchCommand::Backup(args)) => afb::backup::bench::run(args).await,
            Command::Bench(BenchCommand::Emulator(args)) => afb::emulator::bench::run(args).await,
            Command::Serve(args) => afb::server::serve(args).await,
            Command::ApiToken(args) => afb::api::issue(args).await,
            Command::ApiSample(args) => afb::api::sample::run(args).await,
        }
    });
    if let Some(path) = std::env::var_os(afb::cli::PEAK_RSS_FILE_VAR)
        && let Err(e) = std::fs::write(&path, afb::cli::peak_rss_bytes().to_string())
    {
        eprintln!("afb: warning: writing the peak RSS to {}: {e}", std::path::Path::new(&path).display());
    }
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            // One line: what failed, with its causes (a cause quoting a multi-line response body, such
            // as an object store's XML error, is folded onto the line).
            let msg = format!("{e:#}");
            eprintln!(
                "afb: error: {}",
                msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
            );
            std::process::ExitCode::from(ExitCode::Failed as u8)
        }
    }
}
