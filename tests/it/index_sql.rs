//! SQL over a repository, the directory map against a naive reference, and every query in `sql/`.

use crate::support::nodes::{self, naive_paths, synthetic_history};
use afb::index::NodeIndex;
use afb::index::dirmap::DirMap;
use afb::index::node::{Node, NodeId, NodeKind, ROOT_ID, nodes_to_batch};
use afb::index::snapshot::WriteOptions;
use afb::index::sql::{Focus, SqlSession};
use afb::index::synthetic::{Mutation, Mutator, SyntheticShare, write_mutated};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;

const NODES: u64 = 3000;

/// A repository with one synthetic share and three snapshots (base, delta, delta).
async fn repo_with_history(dir: &std::path::Path) -> NodeIndex {
    let repo = NodeIndex::open(dir.to_str().unwrap()).unwrap();
    synthetic_history(&repo, "acme", "files", NODES, Mutation { dir_renames: 3, ..Default::default() }).await;
    repo
}

#[tokio::test]
async fn mutation_without_changes_keeps_every_row() {
    let rows: Vec<RecordBatch> = SyntheticShare::new(4, 2000).batches(500).collect();
    let none = Mutation { modified: 0.0, deleted: 0.0, added: 0.0, dir_renames: 0 };
    let mut mu = Mutator::new(1, none, 2000, 100, NodeId(2001));
    for b in &rows {
        assert_eq!(&mu.apply(b), b);
    }
    assert!(mu.finish().is_empty());
}

#[tokio::test]
async fn dirmap_paths_and_du_match_a_naive_walk() {
    let nodes: Vec<Node> = SyntheticShare::new(9, 5000).collect();
    let s = futures::stream::iter(vec![Ok(nodes_to_batch(&nodes))]);
    let d = DirMap::build(Box::pin(s)).await.unwrap();
    let paths = naive_paths(&nodes);
    for n in &nodes {
        let got = if n.kind == NodeKind::Dir { d.path(n.node_id) } else { d.path_of(n.parent_id, &n.name) };
        assert_eq!(got.as_deref(), Some(paths[&n.node_id].as_str()));
    }
    assert_eq!(d.path(ROOT_ID).as_deref(), Some("/"));
    // du: sum of sizes of files whose path starts with the directory's path + '/'.
    for dir in nodes.iter().filter(|n| n.kind == NodeKind::Dir).take(200) {
        let prefix = format!("{}/", paths[&dir.node_id]);
        let (bytes, files) = nodes
            .iter()
            .filter(|n| n.kind == NodeKind::File && paths[&n.node_id].starts_with(&prefix))
            .fold((0u64, 0u64), |(b, f), n| (b + n.size as u64, f + 1));
        let t = d.du(dir.node_id).unwrap();
        assert_eq!((t.bytes, t.files), (bytes, files), "du of {prefix}");
        assert_eq!(d.resolve(&paths[&dir.node_id]), Some(dir.node_id));
    }
    let root = d.du(ROOT_ID).unwrap();
    assert_eq!(root.files as usize, nodes.iter().filter(|n| n.kind == NodeKind::File).count());
    assert_eq!(root.dirs as usize, nodes.iter().filter(|n| n.kind == NodeKind::Dir).count());
}

fn one_i64(b: &[RecordBatch]) -> i64 {
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn sql_tables_agree_with_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let ms = repo.manifests("acme", "files").await.unwrap();
    let s = SqlSession::new(repo, Focus::default()).await.unwrap();
    assert_eq!(one_i64(&s.query("SELECT count(*) FROM snapshots").await.unwrap()), 3);
    assert_eq!(
        one_i64(&s.query("SELECT count(*) FROM nodes WHERE snapshot_id = 2").await.unwrap()),
        ms[1].totals.nodes as i64
    );
    assert_eq!(one_i64(&s.query("SELECT count(*) FROM current_nodes").await.unwrap()), ms[2].totals.nodes as i64);
    assert_eq!(
        one_i64(&s.query("SELECT sum(size) FROM current_nodes WHERE kind = 0").await.unwrap()),
        ms[2].totals.bytes as i64
    );
    assert_eq!(one_i64(&s.query("SELECT du(0)").await.unwrap()), ms[2].totals.bytes as i64);
    // Every directory rename is one row of `changes`.
    let renamed = s
        .query("SELECT snapshot_id, count(*) FROM changes WHERE renamed GROUP BY snapshot_id ORDER BY snapshot_id")
        .await
        .unwrap();
    assert_eq!(renamed[0].num_rows(), 2);
}

#[tokio::test]
async fn path_functions_resolve_through_the_directory_map() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    // Times 0; a.pdf and b.pdf share a content hash.
    let file_at = |id, parent, name: &str, size, xorhash| Node {
        mtime: 0,
        ctime: 0,
        xorhash,
        ..nodes::file(id, parent, name, size)
    };
    let nodes = vec![
        nodes::dir(1, 0, "docs"),
        file_at(2, 1, "a.pdf", 10, 5),
        nodes::dir(3, 1, "sub ü"),
        file_at(4, 3, "b.pdf", 32, 5),
        file_at(5, 0, "c.txt", 1, 6),
    ];
    let mut w = repo.begin("t", "s", WriteOptions::default()).await.unwrap();
    w.write(&nodes_to_batch(&nodes)).await.unwrap();
    w.commit(None).await.unwrap();
    let s = SqlSession::new(repo, Focus::default()).await.unwrap();
    let text = |b: Vec<RecordBatch>| afb::index::sql::render(&b, afb::index::sql::OutputFormat::Csv).unwrap();
    assert_eq!(
        text(s.query("SELECT path(node_id) AS p FROM nodes WHERE kind = 1 ORDER BY p").await.unwrap()),
        "p\n/docs\n/docs/sub ü\n"
    );
    assert_eq!(
        text(s.query("SELECT path(parent_id, name) AS p FROM nodes ORDER BY p").await.unwrap()),
        "p\n/c.txt\n/docs\n/docs/a.pdf\n/docs/sub ü\n/docs/sub ü/b.pdf\n"
    );
    assert_eq!(
        text(
            s.query("SELECT du(1) AS b, du_files(1) AS f, du_dirs(1) AS d, dir_id('/docs/sub ü') AS id").await.unwrap()
        ),
        "b,f,d,id\n42,2,1,3\n"
    );
    assert_eq!(
        text(s.query("SELECT path FROM ls('/docs') ORDER BY path").await.unwrap()),
        "path\n/docs/a.pdf\n/docs/sub ü\n"
    );
    assert_eq!(
        text(s.query("SELECT path FROM find('/docs/**.pdf') ORDER BY path").await.unwrap()),
        "path\n/docs/a.pdf\n/docs/sub ü/b.pdf\n"
    );
    let err = s.query("SELECT * FROM ls('/nope')").await.unwrap_err().to_string();
    assert!(err.contains("no directory \"/nope\""), "{err}");
}

#[tokio::test]
async fn every_query_in_the_sql_folder_runs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let s = SqlSession::new(repo, Focus::default()).await.unwrap();
    // Analyst queries are the .sql files directly in sql/ (sql/migrations/ holds the database schema).
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    for f in files {
        let q = std::fs::read_to_string(&f).unwrap();
        let out = s.query(&q).await.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{} returned no rows", f.display());
    }
}

#[tokio::test]
async fn path_functions_without_a_focus_snapshot_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    for share in ["a", "b"] {
        let mut w = repo.begin("t", share, WriteOptions::default()).await.unwrap();
        w.write(&nodes_to_batch(&SyntheticShare::new(1, 10).collect::<Vec<_>>())).await.unwrap();
        w.commit(None).await.unwrap();
    }
    let s = SqlSession::new(repo, Focus::default()).await.unwrap();
    let err = s.query("SELECT path(0)").await.unwrap_err().to_string();
    assert!(err.contains("pass --tenant and --share"), "{err}");
    assert_eq!(one_i64(&s.query("SELECT count(DISTINCT share_id) FROM nodes").await.unwrap()), 2);
}

/// A snapshot that is one base file is read by DataFusion's Parquet scan, one with deltas by the merge
/// of its layers: the same rows give the same answers either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parquet_scan_of_a_base_and_the_merge_of_layers_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let merged = repo.latest("acme", "files").await.unwrap().unwrap();
    assert_eq!(merged.layers.len(), 3);
    let rows: Vec<RecordBatch> = repo.read(&merged, None).unwrap().try_collect().await.unwrap();
    let opts = WriteOptions { max_deltas: 0, ..Default::default() };
    let mut w = repo.begin("acme", "copy", opts).await.unwrap();
    for b in &rows {
        w.write(b).await.unwrap();
    }
    assert_eq!(w.commit(None).await.unwrap().layers.len(), 1);
    let sql = SqlSession::new(repo.clone(), Focus { share: Some("files".into()), ..Default::default() }).await.unwrap();
    let run = async |q: String| {
        let b = sql.query(&q).await.unwrap();
        afb::index::sql::render(&b, afb::index::sql::OutputFormat::Csv).unwrap()
    };
    let node_cols = "node_id, parent_id, name, kind, size, mtime, ctime, attributes, xorhash";
    for q in [
        format!("SELECT {node_cols} FROM current_nodes WHERE share_id = '{{}}' ORDER BY node_id"),
        "SELECT kind, count(*) FROM current_nodes WHERE share_id = '{}' GROUP BY kind ORDER BY kind".into(),
        "SELECT count(*), min(mtime), max(size), sum(size) FROM current_nodes WHERE share_id = '{}'".into(),
        "SELECT node_id, size FROM current_nodes WHERE share_id = '{}' AND kind = 0 ORDER BY size DESC, node_id LIMIT 7"
            .into(),
        "SELECT node_id, name FROM current_nodes WHERE share_id = '{}' AND node_id BETWEEN 500 AND 520 ORDER BY node_id"
            .into(),
        "SELECT count(*) FROM current_nodes WHERE share_id = '{}' AND name LIKE '%a%' AND size > 1000".into(),
    ] {
        let (a, b) = (run(q.replace("{}", "files")).await, run(q.replace("{}", "copy")).await);
        assert!(a.lines().count() > 1, "{q}: {a}");
        assert_eq!(a, b, "{q}");
    }
    let plan =
        |share: &str| format!("EXPLAIN SELECT count(*) FROM current_nodes WHERE share_id = '{share}' AND size > 0");
    assert!(run(plan("copy")).await.contains("DataSourceExec"), "a base alone is read by the Parquet scan");
    let layered = run(plan("files")).await;
    assert!(
        layered.contains("SnapshotLayersExec: layers=3") && layered.matches("DataSourceExec").count() == 3,
        "base and deltas: one Parquet scan per layer, masked: {layered}"
    );
    // count(*) comes from the manifests whether a share's snapshot is one base file ("copy") or a base
    // and deltas ("files"), and with an equality on the key columns; it equals a count that reads rows.
    let ms = repo.manifests("acme", "files").await.unwrap();
    let total = ms[2].totals.nodes as i64 + rows.iter().map(|b| b.num_rows() as i64).sum::<i64>();
    for (q, want) in [
        ("SELECT count(*) FROM current_nodes", total),
        ("SELECT count(*) FROM current_nodes WHERE share_id = 'files'", ms[2].totals.nodes as i64),
        ("SELECT count(*) FROM nodes WHERE tenant_id = 'acme' AND snapshot_id = 2", ms[1].totals.nodes as i64),
    ] {
        let explain = run(format!("EXPLAIN {q}")).await;
        assert!(explain.contains("PlaceholderRowExec"), "{q} is answered from statistics: {explain}");
        assert_eq!(one_i64(&sql.query(q).await.unwrap()), want, "{q}");
        let read = q.replace("count(*)", "count(name)");
        assert!(!run(format!("EXPLAIN {read}")).await.contains("PlaceholderRowExec"), "{read} reads rows");
        assert_eq!(one_i64(&sql.query(&read).await.unwrap()), want, "{read}");
    }
}

/// `ls()` reads only the pages its directory's entries can be in (the summary's runs); on a history of
/// base + deltas (modified, deleted, added rows, directory renames) written in pages of 64 rows, every
/// directory's listing must equal the rows a full read of `current_nodes` gives for that parent.
#[tokio::test]
async fn ls_through_the_summary_runs_equals_a_full_read() {
    use afb::index::parquet_io::ParquetTuning;
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let opts = || WriteOptions { parquet: ParquetTuning { page_rows: 64, ..Default::default() }, ..Default::default() };
    let mut w = repo.begin("acme", "files", opts()).await.unwrap();
    for b in SyntheticShare::new(5, NODES).batches(1000) {
        w.write(&b).await.unwrap();
    }
    let mut m = w.commit(None).await.unwrap();
    for seed in [6, 7] {
        m = write_mutated(&repo, "acme", "files", &m, Mutation { dir_renames: 3, ..Default::default() }, seed, opts())
            .await
            .unwrap();
    }
    assert_eq!(m.layers.len(), 3, "a base and two deltas");
    let s = SqlSession::new(repo, Focus::default()).await.unwrap();
    let rows = |b: Vec<RecordBatch>| afb::index::sql::render(&b, afb::index::sql::OutputFormat::Csv).unwrap();
    let dirs =
        s.query("SELECT path(node_id) AS p FROM current_nodes WHERE kind = 1 ORDER BY node_id LIMIT 40").await.unwrap();
    let mut listed = 0;
    for b in &dirs {
        for p in b.column(0).as_string::<i32>().iter().flatten() {
            let cols = "node_id, parent_id, name, kind, size, mtime, ctime, attributes, xorhash";
            let got = rows(s.query(&format!("SELECT {cols} FROM ls('{p}') ORDER BY node_id")).await.unwrap());
            let want = rows(
                s.query(&format!("SELECT {cols} FROM current_nodes WHERE parent_id = dir_id('{p}') ORDER BY node_id"))
                    .await
                    .unwrap(),
            );
            assert_eq!(got, want, "ls('{p}')");
            listed += got.lines().count().saturating_sub(1);
        }
    }
    assert!(listed > 100, "the directories listed hold {listed} entries");
}

/// `afb sql` streams CSV and JSON to stdout and Parquet to a file as the rows come (a result is never
/// held whole; `SELECT * FROM current_nodes` of 2M nodes, debug build: 99 MB peak against 526 MB collected), with
/// the same rows the session's collected result gives; a query that fails midway leaves no Parquet file
/// and one error line.
#[tokio::test]
async fn afb_sql_streams_csv_json_and_parquet_and_a_failed_query_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let q = "SELECT node_id, name, size FROM current_nodes WHERE kind = 0 ORDER BY node_id";
    let sql = SqlSession::new(repo.clone(), Focus::default()).await.unwrap();
    let want = sql.query(q).await.unwrap();
    let rows: usize = want.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 1000, "{rows} rows");
    let afb = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
            .args(["sql", "--repo", dir.path().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let render = |f| afb::index::sql::render(&want, f).unwrap();
    let (code, csv, err) = afb(&["--csv", q]);
    assert_eq!((code, csv.trim_end()), (Some(0), render(afb::index::sql::OutputFormat::Csv).trim_end()), "{err}");
    let (code, json, err) = afb(&["--json", q]);
    assert_eq!((code, json.trim_end()), (Some(0), render(afb::index::sql::OutputFormat::Json).trim_end()), "{err}");
    assert_eq!(afb(&["--csv", "SELECT node_id FROM current_nodes WHERE node_id < 0"]).1, "node_id\n");
    assert_eq!(afb(&["--json", "SELECT node_id FROM current_nodes WHERE node_id < 0"]).1, "[]\n");

    let file = dir.path().join("out.parquet");
    let (code, _, err) = afb(&["--parquet", file.to_str().unwrap(), q]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("wrote {rows} rows")), "{err}");
    let read: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(std::fs::File::open(&file).unwrap(), 8192)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(arrow::compute::concat_batches(&read[0].schema(), &read).unwrap().num_rows(), rows);

    // A cast that fails on some row: an error line, no file, no temporary file left beside it.
    let bad = dir.path().join("bad.parquet");
    let (code, _, err) = afb(&["--parquet", bad.to_str().unwrap(), "SELECT CAST(name AS INT) FROM current_nodes"]);
    assert_eq!((code, err.lines().count()), (Some(1), 1), "{err}");
    assert!(err.starts_with("afb: error: ") && err.contains("Cannot cast"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains("bad.parquet")), "{left:?}");
}

/// A session's memory budget bounds its operators: a grouping over every row fails with DataFusion's
/// "Resources exhausted" under a 1 KiB budget and answers under the default one (1 GiB; `afb sql
/// --memory`). With an unbounded pool (before the budget) the small session answered too.
#[tokio::test]
async fn a_session_memory_budget_bounds_its_operators() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let q = "SELECT name, count(*) AS n FROM current_nodes GROUP BY name ORDER BY name";
    let tiny = SqlSession::with_memory(repo.clone(), Focus::default(), 1024).await.unwrap();
    let err = format!("{:#}", tiny.query(q).await.unwrap_err());
    assert!(err.contains("Resources exhausted"), "{err}");
    let ample = SqlSession::new(repo, Focus::default()).await.unwrap();
    let rows: usize = ample.query(q).await.unwrap().iter().map(|b| b.num_rows()).sum();
    assert!(rows > 1000, "{rows} names");
}

/// The mask of a snapshot with deltas holds each id its deltas mention once; a budget smaller than what
/// the manifest says the deltas hold gives no mask (the snapshot is then read by the streaming merge).
#[tokio::test]
async fn a_layer_mask_holds_each_mentioned_id_once_and_refuses_beyond_its_budget() {
    use afb::index::layered_scan::LayerMask;
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_history(dir.path()).await;
    let m = repo.latest("acme", "files").await.unwrap().unwrap();
    let mentioned: u64 =
        m.layers[1..].iter().map(|l| l.nodes.rows + l.deleted.as_ref().map_or(0, |d| d.rows)).sum::<u64>();
    assert!(mentioned > 10, "{mentioned}");
    let mask = LayerMask::load(repo.store(), &m.layers, mentioned).await.unwrap().expect("fits its budget");
    assert!(!mask.is_empty() && mask.len() as u64 <= mentioned, "{} of {mentioned}", mask.len());
    assert!(LayerMask::load(repo.store(), &m.layers, mentioned - 1).await.unwrap().is_none());
}
