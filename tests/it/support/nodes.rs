//! Node rows for index tests: a file and a directory with fixed, recognisable values, and the path of
//! every row computed the slow, obvious way (to check the index's own path answers against).

use std::collections::HashMap;

use afb::index::NodeIndex;
use afb::index::node::{Node, NodeId, NodeKind, ROOT_ID};
use afb::index::snapshot::WriteOptions;
use afb::index::synthetic::{Mutation, SyntheticShare, write_mutated};

/// A file row: mtime `1.7e18 + id` ns, archive attribute, xorhash `id * 7919`.
pub fn file(id: i64, parent: i64, name: &str, size: i64) -> Node {
    Node {
        node_id: NodeId(id),
        parent_id: NodeId(parent),
        name: name.into(),
        kind: NodeKind::File,
        size,
        mtime: 1_700_000_000_000_000_000 + id,
        ctime: 1_700_000_000_000_000_000,
        attributes: 0x20,
        xorhash: id * 7919,
    }
}

/// A directory row: size and times 0, directory attribute.
pub fn dir(id: i64, parent: i64, name: &str) -> Node {
    Node {
        node_id: NodeId(id),
        parent_id: NodeId(parent),
        name: name.into(),
        kind: NodeKind::Dir,
        size: 0,
        mtime: 0,
        ctime: 0,
        attributes: 0x10,
        xorhash: 0,
    }
}

/// node id → `/a/b/c`, by walking parents one row at a time (the root's children have parent 0).
pub fn naive_paths(nodes: &[Node]) -> HashMap<NodeId, String> {
    let by_id: HashMap<NodeId, &Node> = nodes.iter().map(|n| (n.node_id, n)).collect();
    nodes
        .iter()
        .map(|n| {
            let mut parts = vec![n.name.clone()];
            let mut p = n.parent_id;
            while p != ROOT_ID {
                let d = by_id[&p];
                parts.push(d.name.clone());
                p = d.parent_id;
            }
            parts.reverse();
            (n.node_id, format!("/{}", parts.join("/")))
        })
        .collect()
}

/// Three snapshots of `tenant/share` in `repo`: a synthetic share of `nodes` rows (seed 1) as the base,
/// then two snapshots each changed from the one before by `mutation` (seeds 2 and 3).
pub async fn synthetic_history(repo: &NodeIndex, tenant: &str, share: &str, nodes: u64, mutation: Mutation) {
    let mut w = repo.begin(tenant, share, WriteOptions::default()).await.unwrap();
    for b in SyntheticShare::new(1, nodes).batches(1000) {
        w.write(&b).await.unwrap();
    }
    let mut m = w.commit(None).await.unwrap();
    for seed in [2, 3] {
        m = write_mutated(repo, tenant, share, &m, mutation, seed, WriteOptions::default()).await.unwrap();
    }
}
