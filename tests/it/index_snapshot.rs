//! Snapshots in a repository: round trip, base + delta history, atomic commit, garbage collection, bad
//! input.

use crate::support::nodes::{dir, file};
use std::sync::Arc;

use afb::ids::FileId;
use afb::index::NodeIndex;
use afb::index::idmap::{KnownIds, NewIds, idmap_schema};
use afb::index::manifest::LayerKind;
use afb::index::node::{Node, NodeId, NodeKind, ROOT_ID, batch_to_nodes, nodes_to_batch};
use afb::index::parquet_io::{FileWriter, ParquetTuning};
use afb::index::snapshot::WriteOptions;
use afb::index::sort::SpillOptions;
use arrow::array::{Int64Array, RecordBatch};
use futures::TryStreamExt;

fn tree() -> Vec<Node> {
    vec![
        dir(1, 0, "docs"),
        file(2, 1, "a.txt", 10),
        file(3, 1, "b.txt", 20),
        dir(4, 0, "Fotos ü"),
        file(5, 4, "снимок.jpg", 3000),
    ]
}

async fn commit(repo: &NodeIndex, nodes: &[Node], opts: WriteOptions) -> afb::index::manifest::IndexManifest {
    let mut w = repo.begin("t1", "s1", opts).await.unwrap();
    // Two batches, to exercise streaming.
    let (x, y) = nodes.split_at(nodes.len() / 2);
    w.write(&nodes_to_batch(x)).await.unwrap();
    w.write(&nodes_to_batch(y)).await.unwrap();
    w.commit(None).await.unwrap()
}

async fn read_all(repo: &NodeIndex, m: &afb::index::manifest::IndexManifest) -> Vec<Node> {
    let batches: Vec<_> = repo.read(m, None).unwrap().try_collect().await.unwrap();
    batches.iter().flat_map(batch_to_nodes).collect()
}

#[tokio::test]
async fn written_snapshot_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let m = commit(&repo, &tree(), WriteOptions::default()).await;
    assert_eq!(m.snapshot_id, 1);
    assert_eq!((m.totals.nodes, m.totals.files, m.totals.dirs, m.totals.bytes), (5, 3, 2, 3030));
    assert_eq!(read_all(&repo, &m).await, tree());
    // The manifest is where the docs say it is.
    assert!(dir.path().join("t1/s1/index/snapshots/00000000000000000001.json").exists());
    assert_eq!(repo.shares().await.unwrap(), vec![("t1".to_string(), "s1".to_string())]);
}

#[tokio::test]
async fn delta_snapshots_store_only_changes_and_read_back_merged() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let opts = WriteOptions { max_deltas: 2, ..Default::default() };
    let v1 = tree();
    commit(&repo, &v1, opts).await;

    // v2: b.txt modified, snimok deleted, new file 6.
    let mut v2 = v1.clone();
    v2[2].size = 21;
    v2.remove(4);
    v2.push(file(6, 4, "new.bin", 5));
    let m2 = commit(&repo, &v2, opts).await;
    assert_eq!(m2.layers.len(), 2);
    let delta = &m2.layers[1];
    assert_eq!(delta.kind, LayerKind::Delta);
    assert_eq!(delta.nodes.rows, 2, "only the modified and the added row");
    assert_eq!(delta.deleted.as_ref().unwrap().rows, 1);
    assert_eq!(read_all(&repo, &m2).await, v2);

    // v3: unchanged: an empty delta.
    let m3 = commit(&repo, &v2, opts).await;
    assert_eq!(m3.layers.len(), 3);
    assert_eq!(m3.layers[2].nodes.rows, 0);
    assert_eq!(read_all(&repo, &m3).await, v2);

    // v4: max_deltas reached: a new base.
    let mut v4 = v2.clone();
    v4[0].name = "Docs".into();
    let m4 = commit(&repo, &v4, opts).await;
    assert_eq!(m4.layers.len(), 1);
    assert_eq!(m4.layers[0].kind, LayerKind::Base);
    assert_eq!(read_all(&repo, &m4).await, v4);

    // Older snapshots still read as they were.
    let m2again = repo.manifest("t1", "s1", 2).await.unwrap();
    assert_eq!(read_all(&repo, &m2again).await, v2);
}

#[tokio::test]
async fn reading_selected_columns_keeps_node_id_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    commit(&repo, &tree(), WriteOptions::default()).await;
    let mut v2 = tree();
    v2[1].size = 99;
    let m = commit(&repo, &v2, WriteOptions::default()).await;
    let batches: Vec<_> = repo.read(&m, Some(&[afb::index::node::col::SIZE])).unwrap().try_collect().await.unwrap();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, vec!["node_id", "size"]);
    let sizes: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(1).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().values().to_vec())
        .collect();
    assert_eq!(sizes, vec![0, 99, 20, 0, 3000]);
}

#[tokio::test]
async fn crash_before_manifest_leaves_no_visible_snapshot_and_gc_removes_the_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    commit(&repo, &tree(), WriteOptions::default()).await;
    // A writer that crashed after its data file was complete, before the manifest.
    let orphan = "t1/s1/index/data/00000000000000000002-00000000deadbeef/nodes.parquet";
    let mut f = afb::index::parquet_io::FileWriter::create(
        repo.store(),
        orphan,
        afb::index::node::node_schema(),
        Default::default(),
    )
    .unwrap();
    f.write(&nodes_to_batch(&tree())).await.unwrap();
    f.close().await.unwrap();
    assert!(dir.path().join(orphan).exists());
    // ... and its directory summary, which is written just before the manifest.
    let orphan_summary = "t1/s1/index/summaries/00000000000000000002-00000000deadbeef.dirs";
    object_store::ObjectStoreExt::put(
        repo.store().as_ref(),
        &object_store::path::Path::from(orphan_summary),
        vec![7u8; 100].into(),
    )
    .await
    .unwrap();
    // A writer dropped without commit.
    {
        let mut w = repo.begin("t1", "s1", WriteOptions { max_deltas: 0, ..Default::default() }).await.unwrap();
        w.write(&nodes_to_batch(&tree())).await.unwrap();
    }
    assert_eq!(repo.snapshot_ids("t1", "s1").await.unwrap(), vec![1]);
    let latest = repo.latest("t1", "s1").await.unwrap().unwrap();
    assert_eq!(latest.snapshot_id, 1);
    // Within the grace period gc keeps everything; after it, only referenced files remain.
    assert!(repo.gc("t1", "s1", std::time::Duration::from_secs(3600)).await.unwrap().is_empty());
    let removed = repo.gc("t1", "s1", std::time::Duration::ZERO).await.unwrap();
    assert_eq!(removed, vec![orphan.to_string(), orphan_summary.to_string()]);
    assert!(!dir.path().join(orphan).exists() && !dir.path().join(orphan_summary).exists());
    assert_eq!(read_all(&repo, &latest).await, tree());
    assert!(afb::index::summary::load(&repo, &latest).await.unwrap().is_some(), "the live snapshot's summary stays");
}

#[tokio::test]
async fn second_writer_of_the_same_snapshot_id_fails_without_committing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let mut w1 = repo.begin("t1", "s1", WriteOptions::default()).await.unwrap();
    let mut w2 = repo.begin("t1", "s1", WriteOptions::default()).await.unwrap();
    w1.write(&nodes_to_batch(&tree())).await.unwrap();
    w2.write(&nodes_to_batch(&tree()[..2])).await.unwrap();
    w1.commit(None).await.unwrap();
    let err = w2.commit(None).await.unwrap_err().to_string();
    assert!(err.contains("committed by another writer"), "{err}");
    let m = repo.latest("t1", "s1").await.unwrap().unwrap();
    assert_eq!(read_all(&repo, &m).await, tree());
}

#[tokio::test]
async fn rows_out_of_node_id_order_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let mut w = repo.begin("t1", "s1", WriteOptions::default()).await.unwrap();
    let mut rows = tree();
    rows.swap(1, 2);
    let err = w.write(&nodes_to_batch(&rows)).await.unwrap_err().to_string();
    assert!(err.contains("ascending node_id"), "{err}");
}

#[tokio::test]
async fn unknown_snapshot_id_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    commit(&repo, &tree(), WriteOptions::default()).await;
    let err = repo.manifest("t1", "s1", 42).await.unwrap_err().to_string();
    assert_eq!(err, "snapshot 42 of t1/s1 does not exist (snapshots 1..=1 exist)");
}

#[tokio::test]
async fn corrupt_or_foreign_parquet_file_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let m = commit(&repo, &tree(), WriteOptions::default()).await;
    let key = m.layers[0].nodes.key.clone();
    let path = dir.path().join(&key);

    // Foreign: a valid Parquet file with other columns, same size so the manifest's length matches or not.
    let foreign = arrow::array::RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(arrow::array::Int32Array::from(vec![1, 2])) as _,
    )])
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, foreign.schema(), None).unwrap();
    w.write(&foreign).unwrap();
    w.close().unwrap();
    std::fs::write(&path, &buf).unwrap();
    let mut m2 = m.clone();
    m2.layers[0].nodes.bytes = buf.len() as u64;
    let err = format!("{:#}", repo.read(&m2, None).unwrap().try_collect::<Vec<_>>().await.unwrap_err());
    assert!(err.contains(&key) && err.contains("not an afb index file"), "{err}");

    // Corrupt: garbage bytes.
    std::fs::write(&path, b"this is not parquet at all, just some bytes").unwrap();
    let mut m3 = m.clone();
    m3.layers[0].nodes.bytes = 44;
    let err = format!("{:#}", repo.read(&m3, None).unwrap().try_collect::<Vec<_>>().await.unwrap_err());
    assert!(err.contains(&key) && err.contains("not a readable Parquet file"), "{err}");
}

#[tokio::test]
async fn idmap_is_persisted_with_the_snapshot_and_keeps_ids_stable() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let spill = SpillOptions::default();
    // New FileIds come in ascending order as signed INT64 bits: 0xdead_beef_0000_0001 is below
    // 0xffff_ffff_ffff_fff0 (-16), both negative.
    let (small, big) = (FileId(0xdead_beef_0000_0001), FileId(0xffff_ffff_ffff_fff0));
    let mut new_ids = NewIds::new(NodeId(1), &spill);
    let a = new_ids.assign(small).unwrap();
    let b = new_ids.assign(big).unwrap();
    assert_eq!((a, b), (NodeId(1), NodeId(2)));
    assert!(new_ids.assign(small).is_err(), "FileIds must ascend");
    let mut w = repo.begin("t1", "s1", WriteOptions::default()).await.unwrap();
    w.write(&nodes_to_batch(&[file(a.0, 0, "x", 1), file(b.0, 0, "y", 2)])).await.unwrap();
    let m = w.commit(Some(new_ids)).await.unwrap();
    assert_eq!(m.idmap.len(), 1);
    assert_eq!(m.next_node_id, 3);

    let mut known = KnownIds::open(&repo, Some(&m), &spill).await.unwrap();
    assert_eq!(known.next_node_id(), NodeId(3));
    assert_eq!(known.get(small).await.unwrap(), Some(NodeId(1)));
    assert_eq!(known.get(FileId::from_int64_bits(-17)).await.unwrap(), None);
    assert_eq!(known.get(big).await.unwrap(), Some(NodeId(2)));
    assert_eq!(known.get(FileId(5)).await.unwrap(), None);
    known.finish().await.unwrap();

    // A segment written before the FileId-order rule (no `afb.sorted_by` tag, ids in listing order) is
    // sorted when read: the same answers.
    let legacy = m.idmap[0].key.clone();
    let mut fw = FileWriter::create(repo.store(), &legacy, idmap_schema(), ParquetTuning::default()).unwrap();
    let pairs = [(1_i64, 900_i64), (2, 7), (3, -5), (4, 100)];
    let batch = RecordBatch::try_new(
        idmap_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.0))),
            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.1))),
        ],
    )
    .unwrap();
    fw.write(&batch).await.unwrap();
    let (_, rows, bytes) = fw.close().await.unwrap();
    let mut old = m.clone();
    old.idmap[0].rows = rows;
    old.idmap[0].bytes = bytes;
    old.next_node_id = 5;
    let mut known = KnownIds::open(&repo, Some(&old), &SpillOptions { spill_rows: 1, ..spill.clone() }).await.unwrap();
    let mut got = Vec::new();
    for fid in [-5, 7, 8, 100, 900] {
        got.push(known.get(FileId::from_int64_bits(fid)).await.unwrap().map(|id| id.0));
    }
    assert_eq!(got, vec![Some(3), Some(2), None, Some(4), Some(1)]);
    known.finish().await.unwrap();

    // Hostile: one FileId with two node ids, or a node id the manifest says was never handed out.
    old.next_node_id = 4;
    let known = KnownIds::open(&repo, Some(&old), &spill).await.unwrap();
    let err = format!("{:#}", known.finish().await.unwrap_err());
    assert!(err.contains("node id 4 of FileId 100 is outside 1..4"), "{err}");
}

/// Bad input: a directory with a million entries. Tested at the index layer (writer, merged read,
/// directory map, diff) rather than through the emulator, where creating a million files takes minutes;
/// tests/scan.rs `large_directory_is_scanned_in_pages` covers paging through a 20,000-entry listing.
#[tokio::test]
async fn directory_with_a_million_entries_round_trips_with_totals_paths_and_diff() {
    const N: i64 = 1_000_000;
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let rows = |skip: i64| {
        let mut b = afb::index::node::NodeBatchBuilder::new(65536);
        let mut out = vec![];
        out.extend(b.push(&dir(1, 0, "huge")));
        for i in 0..N {
            if i == skip {
                continue;
            }
            out.extend(b.push(&file(2 + i, 1, &format!("entry-{i:07}.dat"), i % 4096)));
        }
        out.extend(b.finish());
        out
    };
    let opts = WriteOptions { max_deltas: 1, ..Default::default() };
    let mut w = repo.begin("t1", "s1", opts).await.unwrap();
    for b in rows(-1) {
        w.write(&b).await.unwrap();
    }
    let m1 = w.commit(None).await.unwrap();
    assert_eq!((m1.totals.files, m1.totals.dirs), (N as u64, 1));
    let want_bytes: u64 = (0..N).map(|i| (i % 4096) as u64).sum();
    assert_eq!(m1.totals.bytes, want_bytes);

    // Snapshot 2: one entry gone (a delta).
    let mut w = repo.begin("t1", "s1", opts).await.unwrap();
    for b in rows(123_456) {
        w.write(&b).await.unwrap();
    }
    let m2 = w.commit(None).await.unwrap();
    assert_eq!(m2.layers.len(), 2);
    assert_eq!((m2.layers[1].nodes.rows, m2.layers[1].deleted.as_ref().unwrap().rows), (0, 1));

    // Merged read streams every row back in order.
    let mut s = repo.read(&m2, Some(&[afb::index::node::col::NAME])).unwrap();
    let (mut count, mut last) = (0u64, 0i64);
    while let Some(b) = futures::StreamExt::next(&mut s).await {
        let b = b.unwrap();
        let ids = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
        for id in ids.values() {
            assert!(*id > last);
            last = *id;
        }
        count += b.num_rows() as u64;
    }
    assert_eq!(count, N as u64);

    let dm = afb::index::dirmap::DirMap::load(&repo, &m2).await.unwrap();
    let t = dm.du(NodeId(1)).unwrap();
    assert_eq!((t.files, t.bytes), (N as u64 - 1, want_bytes - 123_456 % 4096));
    assert_eq!(dm.path_of(NodeId(1), "entry-0999999.dat").as_deref(), Some("/huge/entry-0999999.dat"));

    let s = afb::index::diff::diff_snapshots(&repo, &m1, &m2, |c| {
        assert_eq!(c.node_id(), NodeId(2 + 123_456));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!((s.deleted.count, s.changed_rows(), s.unchanged.count), (1, 1, N as u64));
}

/// Bad input: depth 2000. An Azure path is at most 2048 UTF-16 units, so a share cannot be deeper than
/// 1024 (tests/scan.rs `deepest_path_the_service_allows_is_scanned`); the index itself has no depth limit
/// and resolves paths and subtree totals without recursion.
#[tokio::test]
async fn depth_2000_resolves_paths_and_totals() {
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let mut nodes: Vec<Node> = (1..=2000).map(|i| dir(i, i - 1, "d")).collect();
    nodes.push(file(2001, 2000, "leaf.txt", 42));
    let m = commit(&repo, &nodes, WriteOptions::default()).await;
    assert_eq!(read_all(&repo, &m).await, nodes);
    let dm = afb::index::dirmap::DirMap::load(&repo, &m).await.unwrap();
    let p = dm.path_of(NodeId(2000), "leaf.txt").unwrap();
    assert_eq!(p, format!("{}/leaf.txt", "/d".repeat(2000)));
    let top = dm.du(NodeId(1)).unwrap();
    assert_eq!((top.files, top.dirs, top.bytes), (1, 1999, 42));
    assert_eq!(dm.resolve(&p[..p.len() - "/leaf.txt".len()]), Some(NodeId(2000)));
}

/// Bad input: names with control characters and 255 UTF-16 units are stored and read back byte for byte
/// (the Azure service refuses C0 controls, but the index does not depend on that).
#[tokio::test]
async fn names_with_control_characters_and_255_utf16_units_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let astral = format!("{}b", "😀".repeat(127));
    assert_eq!(astral.encode_utf16().count(), 255);
    let names =
        ["a\u{0}nul", "new\nline", "tab\there", "\u{1}\u{1f}\u{7f}\u{85}", &"x".repeat(255), &astral, "back\\slash"];
    let mut nodes = vec![dir(1, 0, "top")];
    for (i, n) in names.iter().enumerate() {
        nodes.push(file(2 + i as i64, 1, n, i as i64));
    }
    let m = commit(&repo, &nodes, WriteOptions::default()).await;
    assert_eq!(read_all(&repo, &m).await, nodes);
    let dm = afb::index::dirmap::DirMap::load(&repo, &m).await.unwrap();
    assert_eq!(dm.path_of(NodeId(1), &astral).unwrap(), format!("/top/{astral}"));
}

/// Bad input: a data file cut short (a torn copy) and a manifest whose data file is missing.
#[tokio::test]
async fn truncated_or_missing_data_file_is_a_clear_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let m = commit(&repo, &tree(), WriteOptions::default()).await;
    let key = m.layers[0].nodes.key.clone();
    let path = d.path().join(&key);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = format!("{:#}", repo.read(&m, None).unwrap().try_collect::<Vec<_>>().await.unwrap_err());
    assert!(err.contains(&key), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = format!("{:#}", repo.read(&m, None).unwrap().try_collect::<Vec<_>>().await.unwrap_err());
    assert!(err.contains(&key), "{err}");
}

/// The counts a manifest records are what `count(*)` and the `snapshots` table answer from without reading
/// a row, so a manifest whose totals disagree with its layers is refused when read, and a layer file whose
/// footer holds another number of rows than its manifest says is refused when read.
#[tokio::test]
async fn a_manifest_whose_counts_disagree_with_its_files_is_refused_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let m = commit(&repo, &tree(), WriteOptions::default()).await;
    let path = d.path().join("t1/s1/index/snapshots/00000000000000000001.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        f(&mut v);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    };

    // Totals that files and directories do not add up to, or that a lone base does not hold.
    edit(&|v| v["totals"]["nodes"] = 6.into());
    let err = format!("{:#}", repo.manifest("t1", "s1", 1).await.unwrap_err());
    assert!(err.contains("00000000000000000001.json") && err.contains("6 nodes"), "{err}");
    edit(&|v| {
        v["totals"]["nodes"] = 9.into();
        v["totals"]["files"] = 7.into();
    });
    let err = format!("{:#}", repo.manifest("t1", "s1", 1).await.unwrap_err());
    assert!(err.contains("inconsistent manifest") && err.contains("9 nodes"), "{err}");
    // The SQL session reads every manifest, so it refuses the repository rather than answer count(*) = 9.
    assert!(afb::index::sql::SqlSession::new(repo.clone(), Default::default()).await.is_err());

    // Totals and base agree with each other but not with the file: refused on read, naming the file.
    edit(&|v| {
        v["totals"]["nodes"] = 9.into();
        v["totals"]["files"] = 7.into();
        v["layers"][0]["nodes"]["rows"] = 9.into();
    });
    let lying = repo.manifest("t1", "s1", 1).await.unwrap();
    let err = format!("{:#}", repo.read(&lying, None).unwrap().try_collect::<Vec<_>>().await.unwrap_err());
    assert!(err.contains(&m.layers[0].nodes.key) && err.contains("holds 5 rows, its manifest says 9"), "{err}");

    // The manifest as written reads back.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(repo.manifest("t1", "s1", 1).await.unwrap(), m);
}

/// Listing any directory of any snapshot through the directory summary (subdirectories from the summary,
/// files from the pages of their runs, layers merged) gives exactly what a full read of the snapshot
/// gives, across a base and deltas with renames, moves, deletions, kind changes and new directories.
#[tokio::test]
async fn summary_listings_equal_full_reads_in_every_directory_of_every_snapshot() {
    use afb::index::dirmap::DirMap;
    use afb::index::summary::{DirEntryRow, load, load_dirmap};
    let dir_at = |id: i64, parent: i64, name: &str, mtime: i64| Node { mtime, ..dir(id, parent, name) };
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    // v1: /only-dirs/{x,y}/..., /mixed with files and a subdirectory, files at the root.
    let mut v1 = vec![
        dir_at(1, 0, "only-dirs", 11),
        dir_at(2, 1, "x", 12),
        dir_at(3, 1, "y", 13),
        dir_at(4, 0, "mixed", 14),
        dir_at(5, 4, "sub", 15),
    ];
    for i in 0..300 {
        v1.push(file(10 + i, [2, 3, 4, 5, 0][i as usize % 5], &format!("f{i}"), i));
    }
    // v2: a directory renamed, files moved and deleted, a new directory with files, a file becomes a directory.
    let mut v2: Vec<Node> = v1.iter().filter(|n| n.node_id.0 % 17 != 0).cloned().collect();
    for n in &mut v2 {
        match n.node_id.0 {
            3 => n.name = "y-renamed".into(),
            id if id % 11 == 0 && n.kind == NodeKind::File => n.parent_id = NodeId(5),
            23 => *n = dir_at(23, 4, "was-a-file", 99),
            _ => {}
        }
    }
    v2.push(dir_at(400, 0, "new", 40));
    for i in 0..20 {
        v2.push(file(401 + i, 400, &format!("n{i}"), 1));
    }
    let mut v3 = v2.clone();
    v3.retain(|n| n.parent_id != NodeId(2)); // /only-dirs/x emptied
    let opts = WriteOptions { max_deltas: 2, ..Default::default() };
    for v in [&v1, &v2, &v3] {
        let m = commit(&repo, v, opts).await;
        let s = load(&repo, &m).await.unwrap().expect("a summary is stored at commit");
        // The directory map opened from the summary is the one a full read builds.
        assert_eq!(load_dirmap(&repo, &m).await.unwrap(), DirMap::load(&repo, &m).await.unwrap());
        let rows: Vec<Node> = repo
            .read(&m, None)
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .iter()
            .flat_map(batch_to_nodes)
            .collect();
        let dirs: Vec<NodeId> = std::iter::once(ROOT_ID)
            .chain(rows.iter().filter(|n| n.kind == NodeKind::Dir).map(|n| n.node_id))
            .collect();
        for dir_id in dirs {
            let key = |e: &DirEntryRow| e.node_id;
            let mut got = s.list(&repo, &m, dir_id).await.unwrap();
            got.sort_by_key(key);
            let want: Vec<DirEntryRow> = rows
                .iter()
                .filter(|n| n.parent_id == dir_id)
                .map(|n| DirEntryRow {
                    node_id: n.node_id,
                    name: n.name.clone(),
                    kind: n.kind,
                    size: n.size,
                    mtime: n.mtime,
                })
                .collect();
            assert_eq!(got, want, "snapshot {} directory {dir_id}", m.snapshot_id);
        }
    }
}

/// A stored directory summary is an outside input: a flipped byte, a cut-off end, an inflated count and
/// bytes after the checksum are each refused with an error naming the object, and the directory map
/// then comes from a full read of the snapshot instead, identical to the one the summary held.
#[tokio::test]
async fn a_damaged_directory_summary_is_refused_and_the_map_is_rebuilt() {
    use afb::index::dirmap::DirMap;
    use afb::index::summary::{load, load_dirmap, summary_key};
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let mut nodes = vec![dir(1, 0, "a"), dir(2, 1, "b"), dir(3, 0, "c")];
    for i in 0..50 {
        nodes.push(file(10 + i, [0, 1, 2, 3][i as usize % 4], &format!("f{i}"), i));
    }
    let m = commit(&repo, &nodes, WriteOptions::default()).await;
    let key = summary_key(&m).unwrap();
    let path = d.path().join(&key);
    let good = std::fs::read(&path).unwrap();
    let want = DirMap::load(&repo, &m).await.unwrap();
    assert_eq!(load_dirmap(&repo, &m).await.unwrap(), want);
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    let mut inflated = good.clone();
    inflated[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // the directory count
    let damaged = [
        ("a flipped byte", flipped),
        ("a cut-off end", good[..good.len() - 5].to_vec()),
        ("an inflated count", inflated),
        ("bytes after the checksum", [&good[..], b"x"].concat()),
        ("an empty object", Vec::new()),
    ];
    for (what, bytes) in damaged {
        std::fs::write(&path, &bytes).unwrap();
        let err = format!("{:#}", load(&repo, &m).await.unwrap_err());
        assert!(err.contains(&key) && err.contains("not a valid directory summary"), "{what}: {err}");
        assert_eq!(load_dirmap(&repo, &m).await.unwrap(), want, "{what}");
    }
    std::fs::remove_file(&path).unwrap();
    assert!(load(&repo, &m).await.unwrap().is_none());
    assert_eq!(load_dirmap(&repo, &m).await.unwrap(), want);
}

/// A stored summary is read in place, its references checked where they are followed: one whose hash is
/// right but whose parent, name end and child references point out of range (what a hostile writer could
/// store) opens, and every lookup through it answers without a panic; the undamaged directories still
/// have their paths.
#[tokio::test]
async fn a_summary_with_references_out_of_range_answers_every_lookup_without_a_panic() {
    use afb::index::summary::{load, summary_key};
    let d = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(d.path().to_str().unwrap()).unwrap();
    let mut nodes = vec![dir(1, 0, "a"), dir(2, 1, "b"), dir(3, 0, "c"), dir(4, 3, "d")];
    for i in 0..40 {
        nodes.push(file(10 + i, [0, 1, 2, 3, 4][i as usize % 5], &format!("f{i}"), i));
    }
    let m = commit(&repo, &nodes, WriteOptions::default()).await;
    let path = d.path().join(summary_key(&m).unwrap());
    let good = std::fs::read(&path).unwrap();
    let count = |k: usize| u64::from_le_bytes(good[8 + 8 * k..16 + 8 * k].try_into().unwrap()) as usize;
    let (n, names_len) = (count(0), count(1));
    assert_eq!(n, 5, "the root and four directories");
    // Offsets of the arrays (the layout in src/index/summary.rs).
    let (parent, name_end) = (40 + 8 * n, 40 + 12 * n);
    let child_start = 40 + 16 * n + names_len + 32 * n;
    let child = child_start + 4 * (n + 1);
    let mut bad = good[..good.len() - 32].to_vec();
    let mut put = |at: usize, v: u32| bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put(parent + 4 * 2, 1_000_000); // "b"'s parent
    put(name_end + 4 * 3, u32::MAX); // "c"'s name end
    put(child, 77); // the root's first child
    put(child_start + 4 * 4, 999); // "d"'s children start past the end
    let hash = blake3::hash(&bad);
    bad.extend_from_slice(hash.as_bytes());
    std::fs::write(&path, &bad).unwrap();
    let s = load(&repo, &m).await.unwrap().expect("the summary opens");
    for id in 0..60 {
        let id = NodeId(id);
        let _ = (s.dirs.path(id), s.dirs.path_of(id, "x"), s.dirs.du(id), s.dirs.direct_files(id), s.runs(id));
        let _ = s.dirs.subdirs(id).count();
        let _ = s.list(&repo, &m, id).await;
    }
    for p in ["/", "/a", "/a/b", "/c/d", "/c", "/zz"] {
        let _ = s.dirs.resolve(p);
    }
    assert_eq!(s.dirs.path(NodeId(1)).as_deref(), Some("/a"));
    assert_eq!(s.dirs.path(NodeId(2)).as_deref(), Some("/b"), "an out-of-range parent ends the path");
    assert_eq!(s.dirs.path(NodeId(3)).as_deref(), Some("/"), "a name end out of range reads as no name");
}
