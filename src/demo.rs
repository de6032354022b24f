//! `afb demo`: the embedded default, end to end on one machine: an in-process emulator, a generated
//! sample share, a listing of it through the client, two scans into a local repository with changes to
//! the share in between, their diff, and SQL over the result.

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

    // 4. Scan it into a repository (under the demo's data directory).
    let repo_dir = data.join("repo");
    let repo = crate::index::snapshot::Repo::open(repo_dir.to_str().ok_or_else(|| anyhow::anyhow!("data directory is not UTF-8"))?)?;
    let account = crate::azure::credential::AccountConfig::from_connection_string(&emulator.connection_string())?;
    let opts = crate::scan::ScanOptions::default();
    let first = crate::scan::scan(account.clone(), Default::default(), "demo", &repo, "demo", &opts).await?;
    println!("4. scanned into the repository {}:", repo_dir.display());
    println!("   {}", crate::scan::cli::summary(&first).replace('\n', "\n   "));

    // 5. Change the share a little, through the client.
    let changes = change_share(&share, &entries).await?;
    println!("5. changed the share: {changes}");
    let second = crate::scan::scan(account, Default::default(), "demo", &repo, "demo", &opts).await?;
    println!("6. scanned again:");
    println!("   {}", crate::scan::cli::summary(&second).replace('\n', "\n   "));

    // 7. What changed, and some SQL.
    let (ma, mb) = (first.manifest.as_ref().expect("committed"), second.manifest.as_ref().expect("committed"));
    let d = crate::index::diff::diff_snapshots(&repo, ma, mb, |_| Ok(())).await?;
    println!("7. afb diff --tenant demo --share demo {} {}: {} changed rows", ma.snapshot_id, mb.snapshot_id, d.changed_rows());
    for (k, t) in [("added", d.added), ("deleted", d.deleted), ("modified", d.modified), ("renamed", d.renamed), ("moved", d.moved), ("unchanged", d.unchanged)] {
        println!("     {k:<10} {:>8} nodes {:>12} bytes", t.count, t.bytes);
    }
    let session = crate::index::sql::SqlSession::new(repo, crate::index::sql::Focus { tenant: Some("demo".into()), share: Some("demo".into()), snapshot: None }).await?;
    for (step, (title, q)) in [
        ("largest directories", "SELECT path(node_id) AS directory, du(node_id) AS bytes, du_files(node_id) AS files FROM current_nodes WHERE kind = 1 ORDER BY bytes DESC, directory LIMIT 5"),
        ("snapshots", "SELECT snapshot_id, layer, files, dirs, bytes, stored_bytes FROM snapshots ORDER BY snapshot_id"),
    ]
    .into_iter()
    .enumerate()
    {
        let batches = session.query(q).await?;
        println!("{}. {title}: afb sql \"{q}\"", 8 + step);
        for line in crate::index::sql::render(&batches, crate::index::sql::OutputFormat::Table)?.trim_end().lines() {
            println!("   {line}");
        }
    }
    if args.data.is_some() {
        println!("   (try: AFB_REPO={} afb sql --tenant demo --share demo @sql/bytes_by_extension.sql)", repo_dir.display());
    } else {
        println!("   (the demo used a temporary directory; keep its repository with --data DIR)");
    }
    emulator.shutdown().await;
    Ok(ExitCode::Ok)
}

/// Modify three files, delete two, add three, rename one directory. Returns a one-line description.
async fn change_share(share: &crate::azure::ShareClient, entries: &[crate::generate::plan::PlannedEntry]) -> anyhow::Result<String> {
    use crate::generate::plan::EntryKind as Planned;
    let files: Vec<_> = entries.iter().filter(|e| e.kind == Planned::File && !e.read_only).collect();
    let props = crate::azure::NodeProps::default();
    let mut modified = 0;
    for e in files.iter().take(3) {
        share.file(&e.path).upload(bytes::Bytes::from(format!("changed by afb demo: {}\n", e.path)), &props).await?;
        modified += 1;
    }
    let mut deleted = 0;
    for e in files.iter().skip(3).take(2) {
        share.file(&e.path).delete().await?;
        deleted += 1;
    }
    for i in 0..3 {
        share.file(&format!("added-by-demo-{i}.txt")).upload(bytes::Bytes::from(vec![b'a'; 1000 * (i + 1)]), &props).await?;
    }
    let renamed = match entries.iter().find(|e| e.kind == Planned::Directory && !e.read_only && e.parent.is_some()) {
        Some(d) => {
            let to = format!("{}-renamed", d.path);
            share.directory(&d.path).rename(&to).await?;
            format!(", renamed directory /{} to /{to}", d.path)
        }
        None => String::new(),
    };
    Ok(format!("modified {modified} files, deleted {deleted}, added 3{renamed}"))
}
