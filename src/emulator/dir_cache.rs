//! Directories of share snapshots by path, so a request under a snapshot resolves its path with one
//! lookup instead of one SQLite query per path component.
//!
//! Contract: only share *snapshots* are cached. A snapshot's tree never changes after it is taken (the
//! REST API has no write under `sharesnapshot`), so an entry can never be stale while the snapshot
//! exists; deleting a share or snapshot clears the cache ([`DirCache::clear`]), and the key carries the
//! snapshot id as well as the store's share number, so a number SQLite reuses for a later share cannot
//! meet an old entry either. The live share is never cached (renames and deletes change its paths).
//!
//! Memory: at most [`DIR_CACHE_ENTRIES`] directories, least recently used evicted first; an entry is a
//! directory's node row (a few hundred bytes) and its path key, so the cache stays under ~50 MiB
//! whatever the share's size.

use crate::emulator::node::{Node, name_key};
use hashlink::LruCache;
use std::sync::{Arc, Mutex};

/// Directories kept (all share snapshots together).
pub const DIR_CACHE_ENTRIES: usize = 65_536;

/// One directory of one share snapshot: the store's share number, the snapshot id and the path's name
/// keys (case folded, as lookups compare names) joined by `/` (no name holds a `/`).
#[derive(Clone, PartialEq, Eq, Hash)]
struct DirKey {
    sid: i64,
    snapshot: String,
    path: String,
}

/// The cache, shared by every request of one store.
pub struct DirCache {
    dirs: Mutex<LruCache<DirKey, Arc<Node>>>,
}

impl Default for DirCache {
    fn default() -> Self {
        DirCache { dirs: Mutex::new(LruCache::new(DIR_CACHE_ENTRIES)) }
    }
}

impl DirCache {
    /// The directory at `path` (names, root = empty) of share number `sid` at `snapshot`, if cached.
    /// Always `None` for a live share (`snapshot` empty).
    pub fn get(&self, sid: i64, snapshot: &str, path: &[String]) -> Option<Arc<Node>> {
        let key = key(sid, snapshot, path)?;
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
    }

    /// Remembers directory `dir` found at `path` of share number `sid` at `snapshot`; does nothing for
    /// a live share or a file.
    pub fn put(&self, sid: i64, snapshot: &str, path: &[String], dir: &Arc<Node>) {
        if !dir.is_dir {
            return;
        }
        if let Some(key) = key(sid, snapshot, path) {
            self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::clone(dir));
        }
    }

    /// Forgets everything (a share or snapshot was deleted).
    pub fn clear(&self) {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The key of `path`, or `None` for a live share (never cached).
fn key(sid: i64, snapshot: &str, path: &[String]) -> Option<DirKey> {
    if snapshot.is_empty() {
        return None;
    }
    let path = path.iter().map(|n| name_key(n)).collect::<Vec<_>>().join("/");
    Some(DirKey { sid, snapshot: snapshot.to_string(), path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(file_id: u64) -> Arc<Node> {
        Arc::new(Node { file_id, is_dir: true, ..Default::default() })
    }

    fn path(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn snapshot_directories_are_found_by_case_folded_path_and_forgotten_on_clear() {
        let cache = DirCache::default();
        let snap = "2026-12-07T06:00:00.0000000Z";
        cache.put(1, snap, &path(&["a", "B"]), &dir(7));
        assert_eq!(cache.get(1, snap, &path(&["A", "b"])).map(|d| d.file_id), Some(7));
        // Another share number, another snapshot or another path is another directory.
        assert!(cache.get(2, snap, &path(&["a", "B"])).is_none());
        assert!(cache.get(1, "2026-12-07T06:00:00.0000001Z", &path(&["a", "B"])).is_none());
        assert!(cache.get(1, snap, &path(&["a"])).is_none());
        cache.clear();
        assert!(cache.get(1, snap, &path(&["a", "B"])).is_none());
    }

    #[test]
    fn the_live_share_and_files_are_never_cached() {
        let cache = DirCache::default();
        cache.put(1, "", &path(&["a"]), &dir(7));
        assert!(cache.get(1, "", &path(&["a"])).is_none());
        let file = Arc::new(Node { file_id: 8, is_dir: false, ..Default::default() });
        cache.put(1, "s", &path(&["f"]), &file);
        assert!(cache.get(1, "s", &path(&["f"])).is_none());
    }
}
