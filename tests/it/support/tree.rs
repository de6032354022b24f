//! Reading whole trees for byte-identical comparisons: a local directory and a share, each as
//! path (`/`-separated, relative to the root) → content.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

/// Every file below `root` (empty when `root` does not exist).
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// Every file of a share below directory `dir` ("" for the root), listed and downloaded through the client.
pub async fn share_files(share: &afb::azure::ShareClient, dir: &str) -> BTreeMap<String, Vec<u8>> {
    use futures::{StreamExt, TryStreamExt};
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_string()];
    while let Some(d) = todo.pop() {
        let entries: Vec<_> = share.directory(&d).list().try_collect().await.unwrap();
        for e in entries {
            let p = if d.is_empty() { e.name.clone() } else { format!("{d}/{}", e.name) };
            if e.is_dir() {
                todo.push(p);
            } else {
                let mut data = Vec::new();
                let mut s = Box::pin(share.file(&p).download());
                while let Some(b) = s.next().await {
                    data.extend_from_slice(&b.unwrap());
                }
                out.insert(p, data);
            }
        }
    }
    out
}
