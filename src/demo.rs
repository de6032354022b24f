//! `afb demo`: the embedded default, end to end on one machine: an in-process emulator, a generated
//! sample share, and a listing of it through the client.

use crate::azure::{EntryKind, FileServiceClient};
use crate::cli::ExitCode;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::generate::fill::{FillOptions, fill};
use crate::generate::plan::{ShareSpec, plan};
use clap::Args;
use futures::TryStreamExt as _;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory for the demo's state (emulator data); a temporary directory by default.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Files in the sample share.
    #[arg(long, default_value_t = 400)]
    pub files: u64,
    /// Seed of the sample share.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let emulator = Emulator::start(EmulatorConfig {
        addr: "127.0.0.1:0".parse().expect("valid address"),
        data: data.join("emulator"),
        faults: Default::default(),
    })?;
    println!("1. Azure Files emulator listening at {}", emulator.endpoint());

    let client = FileServiceClient::from_connection_string(&emulator.connection_string())?;
    let share = client.share("demo");
    let mut spec = ShareSpec::sample();
    spec.files = args.files;
    let entries = plan(&spec, args.seed, time::OffsetDateTime::now_utc().unix_timestamp());
    let started = std::time::Instant::now();
    let summary = fill(&share, &spec, &entries, &FillOptions::default()).await?;
    println!(
        "2. generated share 'demo': {} directories, {} files, {:.1} MiB, {} distinct permissions in {:.1} s",
        summary.directories,
        summary.files,
        summary.bytes as f64 / 1048576.0,
        summary.distinct_permissions,
        started.elapsed().as_secs_f64()
    );

    // 3. Walk the share through the client, breadth first.
    let before = client.requests_sent();
    let started = std::time::Instant::now();
    let (mut dirs, mut files, mut bytes) = (0u64, 0u64, 0u64);
    let mut queue = vec![String::new()];
    let mut top_level = Vec::new();
    while let Some(path) = queue.pop() {
        let listed: Vec<_> = share.directory(&path).list().try_collect().await?;
        for e in listed {
            let child = if path.is_empty() { e.name.clone() } else { format!("{path}/{}", e.name) };
            if path.is_empty() {
                top_level.push((e.kind, e.name.clone(), e.file_id.clone().unwrap_or_default()));
            }
            match e.kind {
                EntryKind::Directory => {
                    dirs += 1;
                    queue.push(child);
                }
                EntryKind::File => {
                    files += 1;
                    bytes += e.size;
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("3. listed it through the REST client: {dirs} directories, {files} files, {bytes} bytes");
    println!("   {:.0} entries/s, {} list requests", (dirs + files) as f64 / secs, client.requests_sent() - before);
    println!("   top level:");
    for (kind, name, id) in top_level.iter().take(10) {
        let kind = if *kind == EntryKind::Directory { "dir " } else { "file" };
        println!("     {kind} {name:<40} FileId {id}");
    }
    emulator.shutdown().await;
    Ok(ExitCode::Ok)
}
