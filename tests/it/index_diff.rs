//! Diff of two snapshots: classification, counts and bytes, one row per changed node.

use crate::support::nodes::{dir, file};
use afb::index::NodeIndex;
use afb::index::diff::{Change, ChangeKind, change_chain, diff_snapshots, diff_snapshots_full, diff_streams};
use afb::index::node::{Node, NodeId, NodeKind, nodes_to_batch};
use afb::index::snapshot::WriteOptions;
use futures::StreamExt;

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
    assert_eq!(changes[0].node_id(), NodeId(1));
    assert!(changes[0].renamed && !changes[0].moved && !changes[0].modified);
    assert_eq!(s.renamed.count, 1);
    assert_eq!(s.changed_rows(), 1);
    assert_eq!(s.unchanged.count, 10_003);
}

#[tokio::test]
async fn move_of_directory_changes_one_row() {
    let old = tree(1000);
    let mut new = old.clone();
    new[0].parent_id = NodeId(2);
    let (s, changes) = diff(&old, &new).await;
    assert_eq!(changes.len(), 1);
    assert!(changes[0].moved && !changes[0].renamed);
    assert_eq!(s.moved.count, 1);
}

#[tokio::test]
async fn every_kind_of_change_is_classified_with_counts_and_bytes() {
    let old = tree(3);
    let mut new = old.clone();
    new.retain(|n| n.node_id != NodeId(4)); // gone.txt deleted (7 bytes)
    new[2].size = 50; // keep.txt modified: 5 -> 50
    new[2].name = "kept.txt".into(); // ... and renamed
    new[3].parent_id = NodeId(2); // f0.dat moved to other/
    new[4].xorhash = 999; // f1.dat content changed, same size
    new.push(file(100, 1, "new.bin", 123)); // added
    let (s, changes) = diff(&old, &new).await;

    let kinds: Vec<(i64, ChangeKind, bool, bool, bool)> =
        changes.iter().map(|c| (c.node_id().0, c.kind, c.modified, c.renamed, c.moved)).collect();
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
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let opts = WriteOptions { max_deltas: 1, ..Default::default() };
    let v1 = tree(100);
    let mut v2 = v1.clone();
    v2[0].name = "renamed".into();
    let mut v3 = v2.clone();
    v3.retain(|n| n.node_id != NodeId(50));
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
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
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

/// A seeded generator (splitmix64), so a failure names a reproducible history.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// The next version of a share: some files modified, renamed, moved, deleted, added, and some changed
/// back to what an older version had (so a node can differ in between and be equal at the ends).
fn mutate(prev: &[Node], first: &[Node], next_id: &mut i64, rng: &mut Rng) -> Vec<Node> {
    let mut v: Vec<Node> = Vec::with_capacity(prev.len() + 8);
    for n in prev {
        let mut n = n.clone();
        match rng.below(120) {
            0 if n.kind == NodeKind::File => continue, // deleted
            1 if n.kind == NodeKind::File => {
                n.size += 1 + rng.below(100) as i64;
                n.mtime += 1;
            }
            2 => n.name = format!("{}-r{}", n.name, rng.below(1000)),
            3 if n.kind == NodeKind::File => n.parent_id = NodeId([1, 2][rng.below(2) as usize]),
            4 => n.attributes ^= 0x1,
            5 => {
                if let Some(orig) = first.iter().find(|o| o.node_id == n.node_id) {
                    n = orig.clone();
                }
            }
            _ => {}
        }
        v.push(n);
    }
    for _ in 0..rng.below(6) {
        v.push(file(*next_id, [1, 2][rng.below(2) as usize], &format!("new{next_id}"), rng.below(5000) as i64));
        *next_id += 1;
    }
    v
}

/// Every pair of snapshots of a random history, diffed through change records and by a full merge of
/// both snapshots, gives the same changes in the same order and the same summary.
#[tokio::test]
async fn change_records_give_exactly_the_full_merge_for_every_pair_of_snapshots() {
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
        // A base every 4th snapshot, so chains cross bases.
        let opts = WriteOptions { max_deltas: 3, ..Default::default() };
        let mut rng = Rng(seed);
        let first = tree(300);
        let mut next_id = 10 + 300;
        let mut versions = vec![first.clone()];
        for _ in 0..9 {
            let v = mutate(versions.last().unwrap(), &first, &mut next_id, &mut rng);
            versions.push(v);
        }
        let mut ms = Vec::new();
        for v in &versions {
            let mut w = repo.begin("t", "s", opts).await.unwrap();
            w.write(&nodes_to_batch(v)).await.unwrap();
            ms.push(w.commit(None).await.unwrap());
        }
        let mut used_records = 0;
        assert!(ms[0].changes.is_none(), "a share's first snapshot has nothing to compare with");
        assert!(ms[1..].iter().all(|m| m.changes.as_ref().is_some_and(|c| c.since == m.snapshot_id - 1)));
        for i in 0..ms.len() {
            for j in 0..ms.len() {
                let (mut fast, mut full) = (Vec::new(), Vec::new());
                let s_fast = diff_snapshots(&repo, &ms[i], &ms[j], |c| {
                    fast.push(c.clone());
                    Ok(())
                })
                .await
                .unwrap();
                let s_full = diff_snapshots_full(&repo, &ms[i], &ms[j], |c| {
                    full.push(c.clone());
                    Ok(())
                })
                .await
                .unwrap();
                assert_eq!(fast, full, "seed {seed}: changes of snapshots {} → {}", i + 1, j + 1);
                assert_eq!(s_fast, s_full, "seed {seed}: summary of snapshots {} → {}", i + 1, j + 1);
                // Records are used unless they hold more rows than half of the two snapshots.
                let record_rows: u64 = ms
                    .get(i + 1..=j)
                    .unwrap_or_default()
                    .iter()
                    .map(|m| m.changes.as_ref().map_or(0, |c| c.before.rows + c.after.rows))
                    .sum();
                let cheaper = record_rows <= (ms[i].totals.nodes + ms[j].totals.nodes) / 2;
                let chain = change_chain(&repo, &ms[i], &ms[j]).await.unwrap();
                assert_eq!(
                    chain.map(|c| c.len()),
                    (i <= j && cheaper).then(|| j - i),
                    "seed {seed}: records used for {} → {}",
                    i + 1,
                    j + 1
                );
                used_records += usize::from(i < j && cheaper);
            }
        }
        // Both ways were really compared: most pairs went through records, the long spans did not.
        assert!(used_records >= 20, "seed {seed}: only {used_records} pairs used change records");
    }
}

/// A forgotten snapshot in the middle breaks the chain of records: the diff falls back to the full merge
/// and is still right.
#[tokio::test]
async fn a_missing_snapshot_between_the_two_falls_back_to_a_full_merge() {
    let dir = tempfile::tempdir().unwrap();
    let repo = NodeIndex::open(dir.path().to_str().unwrap()).unwrap();
    let opts = WriteOptions::default();
    let v1 = tree(50);
    let mut v2 = v1.clone();
    v2[5].size += 10;
    let mut v3 = v2.clone();
    v3[6].name = "renamed".into();
    let mut ms = Vec::new();
    for v in [&v1, &v2, &v3] {
        let mut w = repo.begin("t", "s", opts).await.unwrap();
        w.write(&nodes_to_batch(v)).await.unwrap();
        ms.push(w.commit(None).await.unwrap());
    }
    assert_eq!(change_chain(&repo, &ms[0], &ms[2]).await.unwrap().map(|c| c.len()), Some(2));
    std::fs::remove_file(dir.path().join(afb::index::manifest::manifest_key("t", "s", 2))).unwrap();
    assert!(change_chain(&repo, &ms[0], &ms[2]).await.unwrap().is_none());
    let s = diff_snapshots(&repo, &ms[0], &ms[2], |_| Ok(())).await.unwrap();
    assert_eq!((s.modified.count, s.renamed.count, s.changed_rows()), (1, 1, 2));
}
