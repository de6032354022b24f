//! `afb scan` against the in-process emulator: consistency (share snapshot), node ids, renames and moves,
//! failures, paging, spilling, awkward names, deep trees.

use std::collections::HashMap;
use std::sync::Arc;

use afb::azure::credential::AccountConfig;
use afb::azure::{ClientOptions, FileServiceClient, NodeProps, RetryPolicy, ShareClient};
use afb::emulator::Emulator;
use afb::index::NodeIndex;
use afb::index::diff::diff_snapshots;
use afb::index::idmap::idmap_schema;
use afb::index::manifest::IndexManifest;
use afb::index::node::{Node, NodeKind, ROOT_ID, batch_to_nodes};
use afb::index::sort::SpillOptions;
use afb::scan::{ScanOptions, ScanReport, scan};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};

struct Env {
    emu: Emulator,
    _data: tempfile::TempDir,
    repo_dir: tempfile::TempDir,
    repo: NodeIndex,
    client: FileServiceClient,
}

async fn env() -> Env {
    let data = tempfile::tempdir().unwrap();
    let emu = crate::support::emulator(&data.path().join("emu"), Default::default());
    let client = FileServiceClient::from_connection_string(&emu.connection_string()).unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(repo_dir.path().to_str().unwrap()).unwrap();
    Env { emu, _data: data, repo_dir, repo, client }
}

impl Env {
    fn account(&self) -> AccountConfig {
        AccountConfig::from_connection_string(&self.emu.connection_string()).unwrap()
    }

    async fn share(&self, name: &str) -> ShareClient {
        let s = self.client.share(name);
        s.create().await.unwrap();
        s
    }

    async fn scan_with(&self, share: &str, opts: &ScanOptions) -> anyhow::Result<ScanReport> {
        scan(self.account(), ClientOptions::default(), share, &self.repo, "t", opts).await
    }

    async fn scan(&self, share: &str) -> ScanReport {
        self.scan_with(share, &ScanOptions::default()).await.unwrap()
    }
}

async fn mkdir(s: &ShareClient, p: &str) {
    s.directory(p).create(&NodeProps::default()).await.unwrap();
}

async fn put(s: &ShareClient, p: &str, data: &[u8]) {
    s.file(p).upload(Bytes::copy_from_slice(data), &NodeProps::default()).await.unwrap();
}

async fn rows(repo: &NodeIndex, m: &IndexManifest) -> Vec<Node> {
    let b: Vec<_> = repo.read(m, None).unwrap().try_collect().await.unwrap();
    b.iter().flat_map(batch_to_nodes).collect()
}

/// path → row.
fn by_path(nodes: &[Node]) -> HashMap<String, Node> {
    let paths = crate::support::nodes::naive_paths(nodes);
    nodes.iter().map(|n| (paths[&n.node_id].clone(), n.clone())).collect()
}

fn manifest(r: &ScanReport) -> &IndexManifest {
    r.manifest.as_ref().unwrap()
}

#[tokio::test]
async fn scan_commits_every_entry_with_ids_parents_times_and_attributes() {
    let e = env().await;
    let s = e.share("basic").await;
    mkdir(&s, "docs").await;
    mkdir(&s, "docs/sub").await;
    let t = time::macros::datetime!(2024-03-04 05:06:07.1234567 UTC);
    let props = NodeProps {
        attributes: Some("ReadOnly|Archive".into()),
        last_write_time: Some(t),
        change_time: Some(t),
        ..Default::default()
    };
    s.file("docs/a.txt").upload(Bytes::from_static(b"hello"), &props).await.unwrap();
    // Writing content moves the last-write time; set the times again afterwards.
    s.file("docs/a.txt").set_properties(&props, None).await.unwrap();
    put(&s, "docs/sub/b.bin", &[7u8; 1000]).await;
    put(&s, "top.txt", b"x").await;
    s.directory("hidden")
        .create(&NodeProps { attributes: Some("Directory|Hidden".into()), ..Default::default() })
        .await
        .unwrap();

    let r = e.scan("basic").await;
    assert_eq!((r.directories, r.files, r.bytes, r.entries, r.max_depth), (3, 3, 1006, 6, 3));
    assert_eq!(r.snapshot_id, 1);
    assert_eq!(r.new_node_ids, 6);
    assert_eq!(r.list_requests, 4, "one page per directory including the root");
    let m = manifest(&r);
    let src = m.source.as_ref().expect("scan records its source");
    assert_eq!(
        (src.kind.as_str(), src.share.as_str(), src.share_snapshot.as_str()),
        ("azure-files", "basic", r.share_snapshot.as_str())
    );
    assert_eq!(src.endpoint, e.emu.endpoint());
    assert_eq!((m.totals.nodes, m.totals.files, m.totals.dirs, m.totals.bytes), (6, 3, 3, 1006));
    // The manifest on disk carries it too, and no secret.
    let json =
        std::fs::read_to_string(e.repo_dir.path().join("t/basic/index/snapshots/00000000000000000001.json")).unwrap();
    assert!(json.contains("\"share_snapshot\"") && !json.contains("AccountKey") && !json.contains("Eby8vdM02"));

    let nodes = rows(&e.repo, m).await;
    let p = by_path(&nodes);
    let a = &p["/docs/a.txt"];
    assert_eq!((a.kind, a.size, a.attributes, a.xorhash), (NodeKind::File, 5, 0x21, 0));
    assert_eq!(a.mtime, t.unix_timestamp_nanos() as i64);
    assert_eq!(a.ctime, t.unix_timestamp_nanos() as i64);
    assert_eq!(p["/docs/sub/b.bin"].parent_id, p["/docs/sub"].node_id);
    assert_eq!(p["/docs"].parent_id, ROOT_ID);
    assert_eq!(p["/docs"].kind, NodeKind::Dir);
    assert_eq!(p["/hidden"].attributes & 0x12, 0x12);
    // The idmap is persisted: a second scan assigns nothing new and changes nothing.
    assert_eq!(m.idmap.iter().map(|f| f.rows).sum::<u64>(), 6);
    let r2 = e.scan("basic").await;
    assert_eq!((r2.snapshot_id, r2.new_node_ids), (2, 0));
    let d = diff_snapshots(&e.repo, m, manifest(&r2), |_| Ok(())).await.unwrap();
    assert_eq!(d.changed_rows(), 0);
    assert_ne!(r2.share_snapshot, r.share_snapshot);
}

#[tokio::test]
async fn scan_reads_the_share_snapshot_not_the_live_share() {
    let e = env().await;
    let s = e.share("live").await;
    mkdir(&s, "d").await;
    put(&s, "d/before.txt", b"1").await;
    let ts = s.create_snapshot().await.unwrap();
    // The live share changes after the snapshot: a file created, one deleted, one modified.
    put(&s, "d/after.txt", b"2").await;
    put(&s, "new.txt", b"3").await;
    s.file("d/before.txt").delete().await.unwrap();
    let r = e.scan_with("live", &ScanOptions { share_snapshot: Some(ts.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(r.share_snapshot, ts);
    let p = by_path(&rows(&e.repo, manifest(&r)).await);
    let mut names: Vec<_> = p.keys().cloned().collect();
    names.sort();
    assert_eq!(names, vec!["/d", "/d/before.txt"]);
    // A scan that takes its own snapshot sees the live share as it is now.
    let r2 = e.scan("live").await;
    let p2 = by_path(&rows(&e.repo, manifest(&r2)).await);
    let mut names: Vec<_> = p2.keys().cloned().collect();
    names.sort();
    assert_eq!(names, vec!["/d", "/d/after.txt", "/new.txt"]);
}

#[tokio::test]
async fn rename_of_directory_changes_one_row_in_the_next_scan() {
    let e = env().await;
    let s = e.share("ren").await;
    mkdir(&s, "projects").await;
    mkdir(&s, "projects/alpha").await;
    for i in 0..50 {
        put(&s, &format!("projects/alpha/f{i:03}.dat"), b"data").await;
    }
    let r1 = e.scan("ren").await;
    s.directory("projects/alpha").rename("projects/beta").await.unwrap();
    let r2 = e.scan("ren").await;
    let mut changes = Vec::new();
    let d = diff_snapshots(&e.repo, manifest(&r1), manifest(&r2), |c| {
        changes.push(c.clone());
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(d.changed_rows(), 1);
    assert_eq!(d.renamed.count, 1);
    assert_eq!(changes[0].new.as_ref().unwrap().name, "beta");
    // The delta stored for it is one changed row.
    let own = manifest(&r2).layers.last().unwrap();
    assert_eq!(own.nodes.rows, 1);
}

#[tokio::test]
async fn node_ids_are_stable_across_rename_and_move() {
    let e = env().await;
    let s = e.share("mvs").await;
    for d in ["a", "b", "a/inner"] {
        mkdir(&s, d).await;
    }
    put(&s, "a/inner/x.txt", b"x").await;
    put(&s, "a/y.txt", b"y").await;
    let r1 = e.scan("mvs").await;
    let p1 = by_path(&rows(&e.repo, manifest(&r1)).await);
    s.directory("a/inner").rename("b/inner2").await.unwrap();
    s.file("a/y.txt").rename("b/z.txt", false).await.unwrap();
    put(&s, "a/new.txt", b"n").await;
    let r2 = e.scan("mvs").await;
    let p2 = by_path(&rows(&e.repo, manifest(&r2)).await);
    assert_eq!(p2["/b/inner2"].node_id, p1["/a/inner"].node_id);
    assert_eq!(p2["/b/inner2/x.txt"].node_id, p1["/a/inner/x.txt"].node_id);
    assert_eq!(p2["/b/z.txt"].node_id, p1["/a/y.txt"].node_id);
    assert_eq!(p2["/b/inner2"].parent_id, p2["/b"].node_id);
    assert!(p2["/a/new.txt"].node_id > p1.values().map(|n| n.node_id).max().unwrap());
    assert_eq!(r2.new_node_ids, 1);
    let d = diff_snapshots(&e.repo, manifest(&r1), manifest(&r2), |_| Ok(())).await.unwrap();
    assert_eq!((d.added.count, d.moved.count, d.renamed.count, d.changed_rows()), (1, 2, 2, 3));
}

/// A proxy in front of the emulator that answers 500 to every listing of one directory.
async fn failing_proxy(target: std::net::SocketAddr, broken: &'static str) -> std::net::SocketAddr {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let http = http.clone();
        async move {
            let uri = req.uri().clone();
            let q = uri.query().unwrap_or("");
            if uri.path().ends_with(broken) && q.contains("comp=list") {
                return Response::builder()
                    .status(500)
                    .header("x-ms-error-code", "InternalError")
                    .body(Body::empty())
                    .unwrap();
            }
            let url = format!("http://{target}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            let mut rb = http.request(req.method().clone(), url);
            for (k, v) in req.headers() {
                if k != "host" {
                    rb = rb.header(k, v);
                }
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX).await.unwrap();
            let resp = rb.body(body).send().await.unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn failed_listing_commits_nothing() {
    let e = env().await;
    let s = e.share("broken").await;
    for i in 0..10 {
        mkdir(&s, &format!("d{i}")).await;
        put(&s, &format!("d{i}/f.txt"), b"f").await;
    }
    let proxy = failing_proxy(e.emu.addr(), "/broken/d7").await;
    let conn = afb::emulator::connection_string_for(proxy);
    let account = AccountConfig::from_connection_string(&conn).unwrap();
    let fast = RetryPolicy { max_attempts: 3, base_delay: std::time::Duration::from_millis(5), ..Default::default() };
    let opts = ClientOptions { retry: fast, ..Default::default() };
    let err = scan(account, opts, "broken", &e.repo, "t", &ScanOptions { concurrency: 4, ..Default::default() })
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("failed listing directory /d7") && msg.contains("nothing was committed"), "{msg}");
    assert!(msg.contains("500"), "{msg}");
    // Nothing in the repository at all, and the share snapshot the scan took is gone again.
    assert!(e.repo.snapshot_ids("t", "broken").await.unwrap().is_empty());
    let files: Vec<_> = e.repo.store().list(None).try_collect().await.unwrap();
    assert!(files.is_empty(), "{files:?}");
    let page = e.client.list_shares_page(None, None, true).await.unwrap();
    assert!(page.shares.iter().all(|sh| sh.snapshot.is_none()), "{:?}", page.shares);
    // The next scan through a healthy path works.
    let r = e.scan("broken").await;
    assert_eq!((r.snapshot_id, r.entries), (1, 20));
}

#[tokio::test]
async fn large_directory_is_scanned_in_pages() {
    let e = env().await;
    let s = e.share("big").await;
    mkdir(&s, "many").await;
    let n = 20_000;
    futures::stream::iter(0..n)
        .map(|i| {
            let f = s.file(&format!("many/file-{i:05}.txt"));
            async move { f.create(i % 100, &NodeProps::default()).await.map(drop) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let r = e.scan_with("big", &ScanOptions { page_size: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!((r.files, r.directories), (n, 1));
    assert!(r.list_requests >= 21, "{} pages", r.list_requests);
    assert!(r.list_requests <= 22, "{} pages", r.list_requests);
    let nodes = rows(&e.repo, manifest(&r)).await;
    assert_eq!(nodes.len() as u64, n + 1);
    let mut names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len() as u64, n + 1);
    eprintln!("20,000-entry directory: {:.0} entries/s, {:.4} requests/entry", r.entries_per_sec, r.requests_per_entry);
    // Default pages (5000 entries): 4-5 calls for the big directory.
    let r2 = e.scan("big").await;
    assert!(r2.list_requests <= 6, "{} pages", r2.list_requests);
}

#[tokio::test]
async fn spilled_sort_gives_the_same_snapshot_as_in_memory() {
    let e = env().await;
    let share = e.client.share("gen");
    let mut spec = afb::generate::plan::ShareSpec::sample();
    spec.files = 300;
    let entries = afb::generate::plan::plan(&spec, 7, 1_700_000_000);
    afb::generate::fill::fill(&share, &spec, &entries, &Default::default()).await.unwrap();
    let ts = share.create_snapshot().await.unwrap();
    let mem_opts = ScanOptions { concurrency: 1, share_snapshot: Some(ts.clone()), ..Default::default() };
    let spill_opts = ScanOptions { spill: SpillOptions { spill_rows: 37, ..Default::default() }, ..mem_opts.clone() };
    let other_dir = tempfile::tempdir().unwrap();
    let other = NodeIndex::open(other_dir.path().to_str().unwrap()).unwrap();
    let a = e.scan_with("gen", &mem_opts).await.unwrap();
    let b = scan(e.account(), ClientOptions::default(), "gen", &other, "t", &spill_opts).await.unwrap();
    assert_eq!(a.spilled_runs, 0);
    assert!(b.spilled_runs > 5, "{} runs", b.spilled_runs);
    let (ra, rb) = (rows(&e.repo, manifest(&a)).await, rows(&other, manifest(&b)).await);
    assert_eq!(ra.len() as u64, a.entries);
    assert_eq!(ra, rb);
    // New ids were handed out in ascending FileId order: the segment ascends by both columns, and the
    // segment is tagged so that readers merge it without sorting.
    let seg = &manifest(&a).idmap[0];
    let batches: Vec<arrow::array::RecordBatch> =
        afb::index::parquet_io::open_stream(e.repo.store(), &seg.key, Some(seg.bytes), &idmap_schema(), 1 << 16)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    let col = |b: &arrow::array::RecordBatch, c: usize| {
        b.column(c).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().values().to_vec()
    };
    let (node_ids, file_ids): (Vec<i64>, Vec<i64>) =
        (batches.iter().flat_map(|b| col(b, 0)).collect(), batches.iter().flat_map(|b| col(b, 1)).collect());
    assert_eq!(node_ids, (1..=a.entries as i64).collect::<Vec<_>>());
    assert!(file_ids.windows(2).all(|w| w[0] < w[1]), "FileIds ascend with node ids");
    let tag = afb::index::parquet_io::key_value(e.repo.store(), &seg.key, None, "afb.sorted_by").await.unwrap();
    assert_eq!(tag.as_deref(), Some("node_id,file_id"));
    // Spilled again on top of the in-memory one (ids now known, parallel listing): nothing changed.
    let c = e.scan_with("gen", &ScanOptions { concurrency: 8, ..spill_opts }).await.unwrap();
    let d = diff_snapshots(&e.repo, manifest(&a), manifest(&c), |_| Ok(())).await.unwrap();
    assert_eq!(d.changed_rows(), 0);
    assert_eq!(rows(&e.repo, manifest(&c)).await, ra);
}

#[tokio::test]
async fn names_with_control_characters_and_255_utf16_units_are_kept_exactly() {
    let e = env().await;
    let s = e.share("names").await;
    let long_ascii = "a".repeat(255);
    let long_astral = format!("{}b", "😀".repeat(127)); // 254 + 1 UTF-16 units
    assert_eq!(long_astral.encode_utf16().count(), 255);
    let odd = ["del\u{7f}char", "c1\u{85}next\u{9c}", "tab-like\u{2028}sep", "ünï cødé ✓", " lead and trail space "];
    mkdir(&s, &long_ascii).await;
    put(&s, &format!("{long_ascii}/{long_astral}"), b"l").await;
    for n in odd {
        put(&s, n, n.as_bytes()).await;
    }
    // C0 control characters cannot exist in a share: the service refuses them, so no scan meets them.
    let err = s.file("bad\u{1}name").create(0, &NodeProps::default()).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidResourceName"));
    let r = e.scan("names").await;
    let p = by_path(&rows(&e.repo, manifest(&r)).await);
    assert!(p.contains_key(&format!("/{long_ascii}/{long_astral}")));
    for n in odd {
        assert_eq!(p[&format!("/{n}")].size, n.len() as i64, "{n:?}");
    }
}

#[tokio::test]
async fn deepest_path_the_service_allows_is_scanned() {
    let e = env().await;
    let s = e.share("deep").await;
    // Paths are limited to 2048 UTF-16 units (as on Azure), so one-character names reach depth 1024; a
    // depth of 2000 cannot exist.
    let mut path = String::new();
    for _ in 0..1024 {
        path = if path.is_empty() { "d".to_string() } else { format!("{path}/d") };
        mkdir(&s, &path).await;
    }
    assert!(s.directory(&format!("{path}/d")).create(&NodeProps::default()).await.is_err());
    put(&s, &format!("{}/f", &path[..path.len() - 2]), b"leaf").await;
    let r = e.scan_with("deep", &ScanOptions { concurrency: 8, ..Default::default() }).await.unwrap();
    assert_eq!((r.directories, r.files, r.max_depth), (1024, 1, 1024));
    let nodes = rows(&e.repo, manifest(&r)).await;
    let p = by_path(&nodes);
    assert_eq!(p.keys().map(|k| k.matches('/').count()).max(), Some(1024));
}

#[tokio::test]
async fn missing_share_is_a_clear_error_and_commits_nothing() {
    let e = env().await;
    let err = e.scan_with("nosuch", &ScanOptions::default()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("nosuch") && msg.contains("ShareNotFound"), "{msg}");
    assert!(e.repo.snapshot_ids("t", "nosuch").await.unwrap().is_empty());
}

#[tokio::test]
async fn afb_scan_cli_prints_a_json_report() {
    let e = env().await;
    let s = e.share("cli").await;
    mkdir(&s, "x").await;
    put(&s, "x/y", b"yy").await;
    let conn = e.emu.connection_string();
    let repo = e.repo_dir.path().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
            .args(["scan", "--tenant", "t", "--share", "cli", "--json", "--concurrency", "4"])
            .env("AZURE_STORAGE_CONNECTION_STRING", conn)
            .env("AFB_REPO", repo)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["files"].as_u64(), v["directories"].as_u64(), v["bytes"].as_u64(), v["snapshot_id"].as_i64()),
        (Some(1), Some(1), Some(2), Some(1))
    );
    assert!(v["share_snapshot"].as_str().unwrap().ends_with('Z'));
    let _ = Arc::new(());
}

/// A listing holding names Azure forbids (from a hostile or broken endpoint): the scan drops those
/// entries, counts and names them in its report, and commits the rest.
#[tokio::test]
async fn rejected_names_are_counted_and_the_scan_goes_on() {
    let body = r#"<EnumerationResults><Entries>
        <File><FileId>11</FileId><Name>ok.txt</Name><Properties><Content-Length>5</Content-Length></Properties></File>
        <File><FileId>12</FileId><Name Encoded="true">%2Fetc%2Fcron.d%2Fx</Name><Properties><Content-Length>1</Content-Length></Properties></File>
        <Directory><FileId>13</FileId><Name Encoded="true">..</Name><Properties/></Directory>
        </Entries><NextMarker /></EnumerationResults>"#;
    let srv = crate::support::net::fixed_server(crate::support::net::response("200 OK", &[], body)).await;
    let account = AccountConfig::from_connection_string(&afb::emulator::connection_string_for(srv.addr)).unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(repo_dir.path().to_str().unwrap()).unwrap();
    let opts = ScanOptions { share_snapshot: Some("2026-01-01T00:00:00.0000000Z".into()), ..Default::default() };
    let report = scan(account, ClientOptions::default(), "s", &repo, "t", &opts).await.unwrap();
    assert_eq!((report.files, report.directories), (1, 0), "{report:?}");
    assert_eq!(report.rejected_names, 2, "{report:?}");
    assert_eq!(report.rejected.len(), 2);
    assert!(report.rejected[0].starts_with("/: \"/etc/cron.d/x\": "), "{:?}", report.rejected);
    assert!(report.rejected[1].starts_with("/: \"..\": "), "{:?}", report.rejected);
}

/// A spill directory without room (here: a file-size limit of 64 KiB on the scan's process, so the first
/// sorted run cannot be written) stops `afb scan` with one line naming the directory and the run's size;
/// no snapshot is committed and no spill file is left.
#[tokio::test]
async fn a_full_spill_directory_is_one_clear_error_and_commits_nothing() {
    let data = tempfile::tempdir().unwrap();
    let emu = Emulator::start(afb::emulator::EmulatorConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data: data.path().to_path_buf(),
        faults: Default::default(),
        virtual_shares: vec![afb::emulator::virtual_share::VirtualShareSpec::parse("many=30000,seed=5").unwrap()],
        tls: Default::default(),
    })
    .unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_afb"));
    cmd.args(["scan", "--tenant", "t", "--share", "many", "--memory", "1MiB", "--spill-dir"])
        .arg(spill.path())
        .arg("--repo")
        .arg(repo_dir.path())
        .env("AZURE_STORAGE_CONNECTION_STRING", emu.connection_string());
    crate::support::limit_file_size(&mut cmd, 64 << 10);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let shown = format!("spill directory {}: writing a sorted run of at most ", spill.path().display());
    assert!(lines[0].starts_with("afb: error: ") && lines[0].contains(&shown), "{stderr}");
    assert!(lines[0].contains("free there: ") && lines[0].contains("--spill-dir"), "{stderr}");
    let repo = NodeIndex::open(repo_dir.path().to_str().unwrap()).unwrap();
    assert!(repo.snapshot_ids("t", "many").await.unwrap().is_empty(), "nothing committed");
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0, "no spill file is left");
    emu.shutdown().await;
}
