//! Diff of two snapshots: classification, counts and bytes, one row per changed node.

use afb::index::diff::{Change, ChangeKind, diff_snapshots, diff_streams};
use afb::index::node::{Node, NodeKind, nodes_to_batch};
use afb::index::snapshot::{Repo, WriteOptions};
use futures::StreamExt;

fn file(id: i64, parent: i64, name: &str, size: i64) -> Node {
    Node { node_id: id, parent_id: parent, name: name.into(), kind: NodeKind::File, size, mtime: 100, ctime: 100, attributes: 0x20, xorhash: id }
}

fn dir(id: i64, parent: i64, name: &str) -> Node {
    Node { node_id: id, parent_id: parent, name: name.into(), kind: NodeKind::Dir, size: 0, mtime: 0, ctime: 0, attributes: 0x10, xorhash: 0 }
}

/// A directory `big` with `n` files below it, plus a few others.
fn tree(n: i64) -> Vec<Node> {
    let mut v = vec![dir(1, 0, "big"), dir(2, 0, "other"), file(3, 2, "keep.txt", 5), file(4, 2, "gone.txt", 7)];
    for i in 0..n {
        v.push(file(10 + i, 1, &format!("f{i}.dat"), 1000));
    }
    v
}

async fn diff(old: &[Node], new: &[Node]) -> (afb::index::diff::DiffSummary, Vec<Change>) {
    let a = futures::stream::iter(vec![Ok(nodes_to_batch(old))]).boxed();
    let b = futures::stream::iter(vec![Ok(nodes_to_batch(new))]).boxed();
    let mut changes = Vec::new();
    let s = diff_streams(a, b, |c| {
        changes.push(c.clone());
        Ok(())
    })
    .await
    .unwrap();
    (s, changes)
}

#[tokio::test]
async fn rename_of_directory_changes_one_row() {
    let old = tree(10_000);
    let mut new = old.clone();
    new[0].name = "big-renamed".into();
    let (s, changes) = diff(&old, &new).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].node_id(), 1);
    assert!(changes[0].renamed && !changes[0].moved && !changes[0].modified);
    assert_eq!(s.renamed.count, 1);
    assert_eq!(s.changed_rows(), 1);
    assert_eq!(s.unchanged.count, 10_003);
}

#[tokio::test]
async fn move_of_directory_changes_one_row() {
    let old = tree(1000);
    let mut new = old.clone();
    new[0].parent_id = 2;
    let (s, changes) = diff(&old, &new).await;
    assert_eq!(changes.len(), 1);
    assert!(changes[0].moved && !changes[0].renamed);
    assert_eq!(s.moved.count, 1);
}

#[tokio::test]
async fn every_kind_of_change_is_classified_with_counts_and_bytes() {
    let old = tree(3);
    let mut new = old.clone();
    new.retain(|n| n.node_id != 4); // gone.txt deleted (7 bytes)
    new[2].size = 50; // keep.txt modified: 5 -> 50
    new[2].name = "kept.txt".into(); // ... and renamed
    new[3].parent_id = 2; // f0.dat moved to other/
    new[4].xorhash = 999; // f1.dat content changed, same size
    new.push(file(100, 1, "new.bin", 123)); // added
    let (s, changes) = diff(&old, &new).await;

    let kinds: Vec<(i64, ChangeKind, bool, bool, bool)> = changes.iter().map(|c| (c.node_id(), c.kind, c.modified, c.renamed, c.moved)).collect();
    assert_eq!(
        kinds,
        vec![
            (3, ChangeKind::Changed, true, true, false),
            (4, ChangeKind::Deleted, false, false, false),
            (10, ChangeKind::Changed, false, false, true),
            (11, ChangeKind::Changed, true, false, false),
            (100, ChangeKind::Added, false, false, false),
        ]
    );
    assert_eq!((s.added.count, s.added.bytes), (1, 123));
    assert_eq!((s.deleted.count, s.deleted.bytes), (1, 7));
    assert_eq!((s.modified.count, s.modified.bytes), (2, 1050));
    assert_eq!(s.renamed.count, 1);
    assert_eq!(s.moved.count, 1);
    assert_eq!(s.changed.count, 3);
    assert_eq!(s.changed_rows(), 5);
    assert_eq!(s.unchanged.count, 3);
    // Old and new rows are both reported.
    assert_eq!(changes[0].old.as_ref().unwrap().size, 5);
    assert_eq!(changes[0].new.as_ref().unwrap().size, 50);
}

#[tokio::test]
async fn metadata_only_changes_count_as_modified() {
    let old = tree(2);
    let mut new = old.clone();
    new[2].mtime += 1;
    new[3].ctime += 1;
    new[4].attributes |= 0x1;
    let (s, _) = diff(&old, &new).await;
    assert_eq!(s.modified.count, 3);
}

#[tokio::test]
async fn identical_snapshots_have_no_changes() {
    let old = tree(50);
    let (s, changes) = diff(&old, &old).await;
    assert!(changes.is_empty());
    assert_eq!(s.unchanged.count, 54);
    assert_eq!(s.unchanged.bytes, 50 * 1000 + 12);
}

#[tokio::test]
async fn diff_of_committed_snapshots_across_base_and_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().to_str().unwrap()).unwrap();
    let opts = WriteOptions { max_deltas: 1, ..Default::default() };
    let v1 = tree(100);
    let mut v2 = v1.clone();
    v2[0].name = "renamed".into();
    let mut v3 = v2.clone();
    v3.retain(|n| n.node_id != 50);
    let mut ms = Vec::new();
    for v in [&v1, &v2, &v3] {
        let mut w = repo.begin("t", "s", opts).await.unwrap();
        w.write(&nodes_to_batch(v)).await.unwrap();
        ms.push(w.commit(None).await.unwrap());
    }
    // v3 is a base again (max_deltas = 1); diff v1 (base) against v3 (new base) and v2 (delta).
    let s13 = diff_snapshots(&repo, &ms[0], &ms[2], |_| Ok(())).await.unwrap();
    assert_eq!((s13.renamed.count, s13.deleted.count, s13.changed_rows()), (1, 1, 2));
    let s12 = diff_snapshots(&repo, &ms[0], &ms[1], |_| Ok(())).await.unwrap();
    assert_eq!(s12.changed_rows(), 1);
}

#[tokio::test]
async fn unsorted_input_is_an_error() {
    let mut old = tree(3);
    old.swap(0, 1);
    let a = futures::stream::iter(vec![Ok(nodes_to_batch(&old))]).boxed();
    let b = futures::stream::iter(vec![Ok(nodes_to_batch(&tree(3)))]).boxed();
    let err = diff_streams(a, b, |_| Ok(())).await.unwrap_err().to_string();
    assert!(err.contains("not sorted by node_id"), "{err}");
}

/// Bad input: a snapshot id that does not exist gives one error line naming it, from the CLI.
#[tokio::test]
async fn afb_diff_of_a_missing_snapshot_is_one_clear_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open(dir.path().to_str().unwrap()).unwrap();
    let mut w = repo.begin("t", "s", WriteOptions::default()).await.unwrap();
    w.write(&nodes_to_batch(&tree(3))).await.unwrap();
    w.commit(None).await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_afb"))
        .args(["diff", "--repo", dir.path().to_str().unwrap(), "--tenant", "t", "--share", "s", "1", "7"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err, "afb: error: snapshot 7 of t/s does not exist (snapshots 1..=1 exist)\n");
}
