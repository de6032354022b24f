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
    /// Start the emulator, fill a sample share and list it (the embedded default).
    Demo(afb::demo::DemoArgs),
    /// Apply the PostgreSQL schema migrations not yet applied.
    Migrate(afb::jobs::cli::MigrateArgs),
    /// Claim and run jobs from the PostgreSQL queue until SIGTERM.
    Worker(afb::jobs::cli::WorkerArgs),
    /// Enqueue jobs from per-share cron schedules.
    Schedule(afb::jobs::cli::ScheduleArgs),
    /// Enqueue, inspect and cancel jobs.
    Jobs(afb::jobs::cli::JobsArgs),
    /// Benchmarks.
    Bench(afb::jobs::cli::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("AFB_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => afb::demo::run(args).await,
            Command::Migrate(args) => afb::jobs::cli::migrate(args).await,
            Command::Worker(args) => afb::jobs::cli::worker(args).await,
            Command::Schedule(args) => afb::jobs::cli::schedule(args).await,
            Command::Jobs(args) => afb::jobs::cli::jobs(args).await,
            Command::Bench(args) => afb::jobs::cli::bench(args).await,
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            // One line: what failed, with its causes.
            eprintln!("afb: error: {e:#}");
            std::process::ExitCode::from(ExitCode::Failed as u8)
        }
    }
}
