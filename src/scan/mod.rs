//! Scan: one consistent listing of an Azure Files share turned into a committed index snapshot.
//!
//! 1. Take a share snapshot (`create_snapshot`), so the scan sees one point in time however the live
//!    share changes meanwhile (or scan an existing share snapshot, [`ScanOptions::share_snapshot`]).
//! 2. List the tree of that snapshot with up to [`ScanOptions::concurrency`] `List Directories and Files`
//!    calls in flight, one page per call, following `NextMarker`; depth first, so the frontier of
//!    directories still to list stays small. Every listed entry carries FileId, size, times and
//!    attributes: no per-entry call.
//! 3. Turn every entry into a row ([`resolve::ListedRow`], the columns of a node row) keyed by its Azure
//!    FileId and its directory's FileId (0 for the root), times in ns, attributes as SMB bits, `xorhash` 0
//!    (a listing has no content hash); one conversion for every scanner, [`entry_row`].
//! 4. [`resolve::Resolver`] maps FileIds to dense node ids through the share's idmap (stable across
//!    rename and move; new FileIds get the next ids in ascending FileId order) by external sorts and
//!    merge-joins, in memory bounded by [`sort::SpillOptions`] whatever the share's size, and yields the
//!    rows by `node_id` for [`crate::index::snapshot::SnapshotWriter`], which commits data files, the new
//!    idmap segment and the manifest (with the share snapshot and the source endpoint in
//!    [`crate::index::manifest::SnapshotSource`]).
//!
//! A listing that fails (after the client's retries) aborts the scan with one error naming the
//! directory: nothing is written to the repository (the writer starts only after the listing is
//! complete), and a share snapshot the scan created is deleted again. See `docs/scan.md`.

pub mod cli;
pub mod fanout;
pub mod resolve;

use std::time::Instant;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde::Serialize;

use crate::azure::credential::AccountConfig;
use crate::azure::{ClientOptions, Entry, FileServiceClient, ListPage};
use crate::ids::FileId;
use crate::index::NodeIndex;
use crate::index::manifest::{IndexManifest, SnapshotSource};
use crate::index::node::{NodeKind, Properties};
use crate::index::snapshot::WriteOptions;
use crate::index::sort::{self, SpillOptions};
use resolve::{ListedBatchBuilder, ListedRow, Resolver};

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `List Directories and Files` calls in flight at once (at least 1).
    pub concurrency: usize,
    /// Entries per listing page (`maxresults`, at most 5000); the service default when `None`.
    pub page_size: Option<u32>,
    /// Scan this existing share snapshot instead of creating one.
    pub share_snapshot: Option<String>,
    /// With no `share_snapshot`: list the live share as it is instead of taking a share snapshot (for
    /// shares or credentials that cannot snapshot; the listing is then not one point in time).
    pub live: bool,
    /// The share id the index snapshot is filed under; the Azure share name when `None`.
    pub index_share: Option<String>,
    /// When sorting spills to disk: the scan's memory budget ([`SpillOptions::with_memory`]).
    pub spill: SpillOptions,
    /// How the index snapshot is written.
    pub write: WriteOptions,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: 16,
            page_size: None,
            share_snapshot: None,
            live: false,
            index_share: None,
            spill: SpillOptions::default(),
            write: WriteOptions::default(),
        }
    }
}

/// What a scan did.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub tenant_id: String,
    pub share_id: String,
    /// The committed index snapshot.
    pub snapshot_id: i64,
    /// The Azure share snapshot that was listed (empty: the live share, [`ScanOptions::live`]).
    pub share_snapshot: String,
    /// The file service endpoint (no secrets).
    pub endpoint: String,
    pub directories: u64,
    pub files: u64,
    /// Sum of file sizes.
    pub bytes: u64,
    /// Files and directories (the root not counted).
    pub entries: u64,
    /// Deepest level listed (top-level entries are depth 1).
    pub max_depth: u32,
    /// Node ids assigned for the first time by this scan.
    pub new_node_ids: u64,
    /// `List Directories and Files` pages received.
    pub list_requests: u64,
    /// Every HTTP request the scan sent, retries included.
    pub requests: u64,
    pub requests_per_entry: f64,
    /// Sorted runs spilled to disk (0: sorted in memory).
    pub spilled_runs: usize,
    /// Entries dropped because their FileId was already listed elsewhere (e.g. NFS hard links).
    pub duplicate_file_ids: u64,
    /// Attribute names this version does not know (ignored).
    pub unknown_attributes: Vec<String>,
    /// Listed entries dropped because their name is one Azure forbids
    /// ([`crate::azure::check_entry_name`]): not in the snapshot, the scan went on.
    pub rejected_names: u64,
    /// The first [`MAX_REJECTED_REPORTED`] of them: `directory: "name": why`.
    pub rejected: Vec<String>,
    pub list_seconds: f64,
    pub seconds: f64,
    /// Entries per second of the whole scan (listing, sorting, writing).
    pub entries_per_sec: f64,
    /// The committed manifest.
    #[serde(skip)]
    pub manifest: Option<IndexManifest>,
}

/// How many rejected names a [`ScanReport`] lists one by one (all are counted).
pub const MAX_REJECTED_REPORTED: usize = 100;

/// The one conversion from a listed entry to a row, shared by every scanner (this module's and
/// [`fanout`]'s): keyed by the entry's FileId and its directory's (`parent_file_id`, [`FileId::ROOT`] for
/// the share root); directories have size 0; times fall back from `LastWriteTime` to `Last-Modified`
/// (mtime) and from `ChangeTime` to the mtime (ctime), saturating at the `i64` range of nanoseconds;
/// attributes become SMB bits, and the names this version does not know are returned for the caller to
/// report (never fatal). `xorhash` is 0: listings carry no content hash.
pub fn entry_row(e: &Entry, file_id: FileId, parent_file_id: FileId) -> (ListedRow, Vec<String>) {
    let (attributes, unknown) = crate::azure::model::parse_attributes(e.attributes.as_deref().unwrap_or(""));
    let kind = if e.is_dir() { NodeKind::Dir } else { NodeKind::File };
    let row = ListedRow {
        file_id,
        parent_file_id,
        name: e.name.clone(),
        properties: Properties {
            kind: kind as i8,
            size: if e.is_dir() { 0 } else { i64::try_from(e.size).unwrap_or(i64::MAX) },
            mtime: nanos(e.last_write_time.or(e.last_modified)),
            ctime: nanos(e.change_time.or(e.last_write_time).or(e.last_modified)),
            attributes: attributes as i32,
            xorhash: 0,
        },
    };
    (row, unknown)
}

/// A listed entry's Azure FileId. An entry without one (the listing must ask for extended info) or with
/// one that is not a decimal 64-bit number is an error naming the entry and its directory (`dir`, the
/// path below the share root).
pub fn entry_file_id(e: &Entry, dir: &str) -> anyhow::Result<FileId> {
    let Some(fid) = e.file_id.as_deref() else {
        bail!(
            "entry {:?} in {} has no FileId (the listing must send x-ms-file-extended-info)",
            e.name,
            display_path(dir)
        );
    };
    let id: u64 = fid.trim().parse().with_context(|| {
        format!("entry {:?} in {}: FileId {fid:?} is not a decimal 64-bit number", e.name, display_path(dir))
    })?;
    if id == 0 {
        bail!("entry {:?} in {} has FileId 0, which afb reserves for the share root", e.name, display_path(dir));
    }
    Ok(FileId(id))
}

/// Nanoseconds since the Unix epoch, saturating at the `i64` range; 0 for no time.
pub fn nanos(t: Option<time::OffsetDateTime>) -> i64 {
    t.map_or(0, |t| {
        i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.unix_timestamp() < 0 { i64::MIN } else { i64::MAX })
    })
}

/// A page still to list: directory path within the share, its FileId ([`FileId::ROOT`]: the root), its
/// depth, the page marker.
struct Work {
    path: String,
    dir_file_id: FileId,
    depth: u32,
    marker: Option<String>,
}

fn display_path(p: &str) -> String {
    format!("/{p}")
}

/// Counters the walk keeps.
#[derive(Default)]
struct WalkStats {
    directories: u64,
    files: u64,
    bytes: u64,
    max_depth: u32,
    pages: u64,
    unknown_attributes: Vec<String>,
    rejected_names: u64,
    rejected: Vec<String>,
}

/// Scan share `share` of the account `account` into `repo` as the next snapshot of `tenant`/`share`.
pub async fn scan(
    account: AccountConfig,
    client_options: ClientOptions,
    share: &str,
    repo: &NodeIndex,
    tenant: &str,
    opts: &ScanOptions,
) -> anyhow::Result<ScanReport> {
    let started = Instant::now();
    let concurrency = opts.concurrency.max(1);
    let client_options =
        ClientOptions { max_concurrency: client_options.max_concurrency.max(concurrency), ..client_options };
    let endpoint = account.endpoint.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/').to_string();
    let client = FileServiceClient::new(account, client_options)?;
    crate::index::manifest::check_id("tenant", tenant)?;
    let index_share = opts.index_share.as_deref().unwrap_or(share);
    crate::index::manifest::check_id("share", index_share)?;

    // The repository state this scan builds on, read before anything is sent to Azure.
    let prev = repo.latest(tenant, index_share).await?;

    let live = client.share(share);
    let (share_snapshot, created) = match (&opts.share_snapshot, opts.live) {
        (Some(ts), _) => (Some(ts.clone()), false),
        (None, true) => (None, false),
        (None, false) => {
            let ts = live.create_snapshot().await.with_context(|| format!("taking a snapshot of share {share}"))?;
            (Some(ts), true)
        }
    };
    let target = IndexTarget { repo, tenant, share: index_share };
    let result =
        scan_snapshot(&client, share, share_snapshot.as_deref(), &target, opts, prev.as_ref(), &endpoint).await;
    let (mut report, manifest) = match result {
        Ok(r) => r,
        Err(e) => {
            if created
                && let Some(ts) = &share_snapshot
                && let Err(d) = live.at_snapshot(ts).delete().await
            {
                tracing::warn!("could not delete share snapshot {ts} of {share} after the failed scan: {d}");
            }
            return Err(e);
        }
    };
    report.requests = client.requests_sent();
    report.seconds = started.elapsed().as_secs_f64();
    report.entries_per_sec = if report.seconds > 0.0 { report.entries as f64 / report.seconds } else { 0.0 };
    report.requests_per_entry = if report.entries > 0 { report.requests as f64 / report.entries as f64 } else { 0.0 };
    report.manifest = Some(manifest);
    Ok(report)
}

/// Where the index snapshot goes: repository, tenant and the share id it is filed under.
struct IndexTarget<'a> {
    repo: &'a NodeIndex,
    tenant: &'a str,
    share: &'a str,
}

#[allow(clippy::too_many_arguments)]
async fn scan_snapshot(
    client: &FileServiceClient,
    share: &str,
    share_snapshot: Option<&str>,
    target: &IndexTarget<'_>,
    opts: &ScanOptions,
    prev: Option<&IndexManifest>,
    endpoint: &str,
) -> anyhow::Result<(ScanReport, IndexManifest)> {
    let list_started = Instant::now();
    let snap = match share_snapshot {
        Some(ts) => client.share(share).at_snapshot(ts),
        None => client.share(share),
    };
    let listed = share_snapshot.map_or_else(|| "the live share".to_string(), |ts| format!("snapshot {ts}"));
    let expected_id = prev.map_or(1, |m| m.snapshot_id + 1);
    let mut resolver = Resolver::new(opts.spill.clone());
    let mut rows = ListedBatchBuilder::new(opts.spill.spill_rows.clamp(1, sort::OUT_BATCH_ROWS));
    let mut st = WalkStats::default();

    let mut stack = vec![Work { path: String::new(), dir_file_id: FileId::ROOT, depth: 0, marker: None }];
    let mut in_flight = FuturesUnordered::new();
    let page_size = opts.page_size;
    loop {
        while in_flight.len() < opts.concurrency.max(1)
            && let Some(w) = stack.pop()
        {
            let dir = snap.directory(&w.path);
            in_flight.push(async move {
                let r = dir.list_page(w.marker.as_deref(), page_size).await;
                (w, r)
            });
        }
        let Some((w, result)) = in_flight.next().await else { break };
        let page: ListPage = result.map_err(anyhow::Error::new).with_context(|| {
            format!(
                "scan of share {share} ({listed}) failed listing directory {}; nothing was committed",
                display_path(&w.path)
            )
        })?;
        st.pages += 1;
        for r in &page.rejected {
            tracing::warn!("entry {r} in {} rejected: not scanned", display_path(&w.path));
            st.rejected_names += 1;
            if st.rejected.len() < MAX_REJECTED_REPORTED {
                st.rejected.push(format!("{}: {r}", display_path(&w.path)));
            }
        }
        for e in &page.entries {
            let fid = entry_file_id(e, &w.path)?;
            let depth = w.depth + 1;
            st.max_depth = st.max_depth.max(depth);
            // Keyed by FileIds until the resolver maps them to node ids.
            let (row, unknown) = entry_row(e, fid, w.dir_file_id);
            for u in unknown {
                if !st.unknown_attributes.contains(&u) {
                    tracing::warn!("unknown file attribute {u:?} ignored");
                    st.unknown_attributes.push(u);
                }
            }
            if let Some(b) = rows.push(&row) {
                resolver.push(b).await?;
            }
            if e.is_dir() {
                st.directories += 1;
                let path = if w.path.is_empty() { e.name.clone() } else { format!("{}/{}", w.path, e.name) };
                stack.push(Work { path, dir_file_id: fid, depth, marker: None });
            } else {
                st.files += 1;
                st.bytes += e.size;
            }
        }
        if let Some(m) = page.next_marker {
            // The rest of this directory next (depth first keeps the frontier small).
            stack.push(Work { marker: Some(m), ..w });
        }
    }
    if let Some(b) = rows.finish() {
        resolver.push(b).await?;
    }
    let list_seconds = list_started.elapsed().as_secs_f64();
    let resolved = resolver.finish(target.repo, prev).await?;

    let (tenant, index_share) = (target.tenant, target.share);
    let mut writer = target.repo.begin(tenant, index_share, opts.write).await?;
    if writer.snapshot_id() != expected_id {
        bail!(
            "another writer committed snapshot {} of {tenant}/{index_share} while this scan ran; nothing was committed, run the scan again",
            writer.snapshot_id() - 1
        );
    }
    writer.set_source(SnapshotSource {
        kind: "azure-files".into(),
        endpoint: endpoint.to_string(),
        share: share.to_string(),
        share_snapshot: share_snapshot.unwrap_or_default().to_string(),
    });
    let mut merge = resolved.rows;
    while let Some(b) = merge.next().await {
        writer.write(&b).await?;
    }
    merge.finish().await?;
    let new_node_ids = resolved.new_ids.len();
    let manifest = writer.commit(Some(resolved.new_ids)).await?;
    let entries = st.directories + st.files;
    let report = ScanReport {
        tenant_id: tenant.to_string(),
        share_id: index_share.to_string(),
        snapshot_id: manifest.snapshot_id,
        share_snapshot: share_snapshot.unwrap_or_default().to_string(),
        endpoint: endpoint.to_string(),
        directories: st.directories,
        files: st.files,
        bytes: st.bytes,
        entries,
        max_depth: st.max_depth,
        new_node_ids,
        list_requests: st.pages,
        requests: 0,
        requests_per_entry: 0.0,
        spilled_runs: resolved.spilled_runs,
        duplicate_file_ids: resolved.duplicate_file_ids,
        unknown_attributes: st.unknown_attributes,
        rejected_names: st.rejected_names,
        rejected: st.rejected,
        list_seconds,
        seconds: 0.0,
        entries_per_sec: 0.0,
        manifest: None,
    };
    Ok((report, manifest))
}
