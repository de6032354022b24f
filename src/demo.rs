//! `afb demo`: the embedded default, end to end on one machine: an in-process emulator, a generated
//! sample share, a listing of it through the client, two scans into a local repository with changes to
//! the share in between, their diff, and SQL over the result. Then the product's own jobs on the embedded
//! runner of `afb serve` (the same [`crate::api::jobs::job_handlers`]): a backup of the share, a verify of
//! it (every pack read, the index compared with the live share) and a restore into a local directory,
//! checked byte for byte against the share. Last, unless `--no-serve`, the dashboard over the demo's
//! repository ([`crate::server::serve_until`], as `afb serve`), with the share's settings pointing at the
//! emulator and a one-off operator token, until SIGTERM or Ctrl-C.

use crate::api::SharedState;
use crate::api::auth::{Auth, Scope};
use crate::api::jobs::JobView;
use crate::azure::{EntryKind, FileServiceClient};
use crate::cli::ExitCode;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::generate::fill::{FillOptions, fill};
use crate::generate::plan::{ShareSpec, plan};
use crate::jobs::JobState;
use anyhow::Context as _;
use clap::Args;
use futures::TryStreamExt as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory for the demo's state (emulator data, repository, restore); a temporary directory by
    /// default. Kept afterwards; a second demo there starts over.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Files in the sample share.
    #[arg(long, default_value_t = 400)]
    pub files: u64,
    /// Seed of the sample share.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest file of the sample share, in bytes (sizes follow the sample spec below this cap).
    #[arg(long, default_value_t = 256 << 10)]
    pub max_file_size: u64,
    /// End after the backup, verify and restore instead of serving the dashboard.
    #[arg(long)]
    pub no_serve: bool,
    /// Port of the dashboard on 127.0.0.1 (0: any free port). If it is taken, a free port is used instead
    /// and the demo says so.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// Marks a directory as the demo's own, so a later `afb demo --data` may clear it.
const DEMO_MARKER: &str = ".afb-demo";
/// What the demo writes below `--data` (and removes again when it starts over there).
const DEMO_ENTRIES: [&str; 4] = ["emulator", "repo", "restore", "master.key"];

/// Prepare `--data DIR`: a new or empty directory, or one an earlier demo made (its demo state is
/// removed, so the demo starts over). Anything else is refused, so the demo never deletes a user's files.
fn start_fresh(dir: &std::path::Path) -> anyhow::Result<()> {
    let marker = dir.join(DEMO_MARKER);
    if dir.exists() && !marker.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "--data {}: the directory is not empty and was not made by afb demo (no {DEMO_MARKER} in it)",
            dir.display()
        );
    }
    for entry in DEMO_ENTRIES {
        let p = dir.join(entry);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&marker, "afb demo state; `afb demo --data` clears the demo's entries here\n")?;
    Ok(())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let data = match &args.data {
        Some(d) => {
            start_fresh(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let emulator = Emulator::start(EmulatorConfig {
        addr: "127.0.0.1:0".parse().expect("valid address"),
        data: data.join("emulator"),
        faults: Default::default(),
        virtual_shares: Vec::new(),
        tls: Default::default(),
    })?;
    println!("1. Azure Files emulator listening at {}", emulator.endpoint());

    let client = FileServiceClient::from_connection_string(&emulator.connection_string())?;
    let share = client.share("demo");
    let mut spec = ShareSpec::sample();
    spec.files = args.files;
    spec.max_file_size_bytes = args.max_file_size;
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
    let repo = crate::index::NodeIndex::open(
        repo_dir.to_str().ok_or_else(|| anyhow::anyhow!("data directory is not UTF-8"))?,
    )?;
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
    println!(
        "7. afb diff --tenant demo --share demo {} {}: {} changed rows",
        ma.snapshot_id,
        mb.snapshot_id,
        d.changed_rows()
    );
    for (k, t) in [
        ("added", d.added),
        ("deleted", d.deleted),
        ("modified", d.modified),
        ("renamed", d.renamed),
        ("moved", d.moved),
        ("unchanged", d.unchanged),
    ] {
        println!("     {k:<10} {:>8} nodes {:>12} bytes", t.count, t.bytes);
    }
    let session = crate::index::sql::SqlSession::new(
        repo,
        crate::index::sql::Focus { tenant: Some("demo".into()), share: Some("demo".into()), snapshot: None },
    )
    .await?;
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
        println!(
            "   (try: AFB_REPO={} afb sql --tenant demo --share demo @sql/bytes_by_extension.sql)",
            repo_dir.display()
        );
    } else {
        println!("   (the demo used a temporary directory; keep its repository with --data DIR)");
    }

    // 10-12. Back up, verify and restore with the jobs `afb serve` runs, on its embedded runner.
    let repo_location = repo_dir.to_str().ok_or_else(|| anyhow::anyhow!("data directory is not UTF-8"))?;
    let key_file = data.join("master.key");
    let master = master_key(&key_file)?;
    let jobs =
        crate::api::jobs::Jobs::memory(Some(crate::api::jobs::job_handlers(repo_location, Some(master.clone()))?));
    // A one-off operator token, valid while this process serves (never written down).
    let token = crate::api::auth::new_token();
    let control = crate::repository::store::Location::parse(repo_location)?.control_root()?;
    let opts = crate::api::ServeOptions { master_key: Some(master.clone()), ..Default::default() };
    let st = crate::api::state_with(
        repo_location,
        Auth::new(crate::api::auth::token_file(&control), Some(&token)),
        jobs,
        opts,
    )?;
    let source = crate::jobs::settings::SettingsInput {
        connection_string: Some(emulator.connection_string()),
        sas_url: None,
        azure_share: None,
    };
    st.settings.put("demo", "demo", source)?;

    let (backup, secs) = run_job(&st, serde_json::json!({"kind": "backup"})).await?;
    let p = progress(&backup);
    let backup_id = p["snapshot_id"].as_str().unwrap_or_default().to_string();
    println!(
        "10. backed up the share with job #{} on the embedded runner (master key {}): index snapshot {}, backup snapshot {backup_id}",
        backup.job_id,
        key_file.display(),
        p["index_snapshot"]
    );
    println!(
        "    {} files backed up ({} new, {} changed), {} bytes read from the share, {} bytes stored, in {secs:.1} s",
        n(p, "files_new") + n(p, "files_changed") + n(p, "files_unchanged"),
        n(p, "files_new"),
        n(p, "files_changed"),
        n(p, "bytes_read"),
        n(p, "bytes_uploaded")
    );

    // Every chunk read back, decrypted and checked against its id; metadata checked against the index.
    let (verified, secs) =
        run_job(&st, serde_json::json!({"kind": "verify", "snapshot": backup_id, "read_data_percent": 100})).await?;
    let p = progress(&verified);
    println!(
        "11. verified it with job #{}: {} objects and {} chunks read and checked, metadata agrees with index snapshot {}: {} problems, in {secs:.1} s",
        verified.job_id,
        n(p, "objects_checked"),
        n(p, "chunks_checked"),
        progress(&backup)["index_snapshot"],
        n(p, "problems")
    );

    let restore_dir = std::path::absolute(data.join("restore"))?;
    let target = restore_dir.to_str().ok_or_else(|| anyhow::anyhow!("data directory is not UTF-8"))?;
    let (restored, secs) = run_job(
        &st,
        serde_json::json!({"kind": "restore", "snapshot": backup_id, "target": {"kind": "local", "path": target}}),
    )
    .await?;
    let p = progress(&restored);
    println!(
        "12. restored it to {} with job #{}: {} files, {} directories, {} bytes in {secs:.1} s",
        restore_dir.display(),
        restored.job_id,
        n(p, "files"),
        n(p, "directories"),
        n(p, "bytes")
    );
    let (files, bytes) = compare_with_share(&share, &restore_dir).await?;
    println!("    identical to the share: {files} files, {bytes} bytes compared byte for byte, the same directories");

    if args.no_serve {
        st.jobs.shutdown().await;
        emulator.shutdown().await;
        return Ok(ExitCode::Ok);
    }

    // 13. The dashboard, as `afb serve` serves it, until SIGTERM or Ctrl-C.
    let stop = crate::jobs::cli::signal_listener()?;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("binding 127.0.0.1:0")?;
            println!("    port {} is in use: the dashboard takes port {} instead", args.port, l.local_addr()?.port());
            l
        }
        Err(e) => return Err(e).with_context(|| format!("binding 127.0.0.1:{}", args.port)),
    };
    println!("13. dashboard at http://{}/ — log in with token {token}; Ctrl-C stops", listener.local_addr()?);
    crate::server::serve_until(listener, st, stop).await?;
    emulator.shutdown().await;
    Ok(ExitCode::Ok)
}

/// The master key in `file` (64 hex digits); a new random one is written there (mode 0600) if the file
/// does not exist.
fn master_key(file: &Path) -> anyhow::Result<crate::repository::MasterKey> {
    match std::fs::symlink_metadata(file) {
        Ok(_) => Ok(crate::repository::MasterKey::from_file(file)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(crate::repository::MasterKey::create_file(file)?),
        Err(e) => Err(e).with_context(|| format!("reading master key file {}", file.display())),
    }
}

/// Starts a job of share demo/demo through the API's validation (as the dashboard does) and waits for it
/// to end. Returns the ended job and its wall time in seconds; a job that did not succeed is an error
/// naming it and its last error.
async fn run_job(st: &SharedState, body: serde_json::Value) -> anyhow::Result<(JobView, f64)> {
    let started = std::time::Instant::now();
    let job = crate::api::routes::start_job_for(st, &Scope::Operator, "demo", "demo", &body)
        .await
        .map_err(|e| anyhow::anyhow!("starting {body}: {}", e.message))?;
    loop {
        let v = st
            .jobs
            .get(&Scope::Operator, job.job_id)
            .await
            .map_err(|e| anyhow::anyhow!("reading job {}: {}", job.job_id, e.message))?;
        if v.state.is_terminal() {
            if v.state != JobState::Succeeded {
                anyhow::bail!(
                    "{} job #{} ended {}: {}",
                    v.kind.as_str(),
                    v.job_id,
                    v.state.as_str(),
                    v.last_error.unwrap_or_default()
                );
            }
            return Ok((v, started.elapsed().as_secs_f64()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What a job last reported (its final figures once it has ended).
fn progress(v: &JobView) -> &serde_json::Value {
    v.progress.as_ref().unwrap_or(&serde_json::Value::Null)
}

/// A number a job reported, 0 if it reported none.
fn n(p: &serde_json::Value, key: &str) -> u64 {
    p[key].as_u64().unwrap_or(0)
}

/// Checks that `dir` holds exactly the share's tree: the same directories, the same files, each with
/// the same bytes (read back through the REST client). Returns the files and bytes compared.
async fn compare_with_share(share: &crate::azure::ShareClient, dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut share_dirs = Vec::new();
    let mut share_files = BTreeMap::new();
    let mut queue = vec![String::new()];
    while let Some(path) = queue.pop() {
        let listed: Vec<_> = share.directory(&path).list().try_collect().await?;
        for e in listed {
            let child = if path.is_empty() { e.name.clone() } else { format!("{path}/{}", e.name) };
            match e.kind {
                EntryKind::Directory => {
                    share_dirs.push(child.clone());
                    queue.push(child);
                }
                EntryKind::File => {
                    share_files.insert(child, e.size);
                }
            }
        }
    }
    let (mut local_dirs, mut local_files) = (Vec::new(), Vec::new());
    walk_local(dir, "", &mut local_dirs, &mut local_files)?;
    share_dirs.sort();
    local_dirs.sort();
    if share_dirs != local_dirs {
        let missing = share_dirs.iter().find(|d| !local_dirs.contains(d));
        let extra = local_dirs.iter().find(|d| !share_dirs.contains(d));
        anyhow::bail!("restored directories differ from the share's: missing {missing:?}, extra {extra:?}");
    }
    let local: Vec<&String> = local_files.iter().collect();
    let expected: Vec<&String> = share_files.keys().collect();
    if local != expected {
        let missing = expected.iter().find(|f| !local.contains(f));
        let extra = local.iter().find(|f| !expected.contains(f));
        anyhow::bail!("restored files differ from the share's: missing {missing:?}, extra {extra:?}");
    }
    let mut bytes = 0;
    for (path, size) in &share_files {
        let from_share: Vec<u8> = share.file(path).download().try_collect::<Vec<_>>().await?.concat();
        let restored = std::fs::read(dir.join(path)).with_context(|| format!("reading restored {path}"))?;
        if from_share != restored || from_share.len() as u64 != *size {
            anyhow::bail!(
                "restored {path} differs from the share: {} bytes restored, {} in the share",
                restored.len(),
                from_share.len()
            );
        }
        bytes += *size;
    }
    Ok((share_files.len() as u64, bytes))
}

/// Every directory and file below `dir`, as `/`-separated paths relative to it, files sorted.
fn walk_local(dir: &Path, prefix: &str, dirs: &mut Vec<String>, files: &mut Vec<String>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 name", path.display()))?;
        let rel = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        if path.is_dir() {
            dirs.push(rel.clone());
            walk_local(&path, &rel, dirs, files)?;
        } else {
            files.push(rel);
        }
    }
    files.sort();
    Ok(())
}

/// Modify three files, delete two, add three, rename one directory. Returns a one-line description.
async fn change_share(
    share: &crate::azure::ShareClient,
    entries: &[crate::generate::plan::PlannedEntry],
) -> anyhow::Result<String> {
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
        share
            .file(&format!("added-by-demo-{i}.txt"))
            .upload(bytes::Bytes::from(vec![b'a'; 1000 * (i + 1)]), &props)
            .await?;
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
