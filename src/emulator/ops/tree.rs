//! Names, path resolution, reading a share version's tree (stored or virtual), the SMB properties shared
//! by files and directories, and Rename.

use crate::azure::credential::DEV_ACCOUNT_NAME;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props::{self, PermissionChoice, TimeValue};
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, Extent, Node, ROOT_FILE_ID, ShareRow};
use http::StatusCode;
use std::sync::Arc;

/// Longest path below the share, in UTF-16 units.
const MAX_PATH: usize = 2048;

/// Share names follow [`crate::azure::is_valid_share_name`].
pub fn validate_share_name(name: &str) -> StorageResult<()> {
    if crate::azure::is_valid_share_name(name) { Ok(()) } else { Err(StorageError::invalid_resource_name()) }
}

/// File and directory names: 1-255 UTF-16 units, none of `"\/:|<>*?` or control characters, not `.`
/// or `..`.
pub fn validate_name(name: &str) -> StorageResult<()> {
    let ok = !name.is_empty()
        && name.encode_utf16().count() <= 255
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| matches!(c, '"' | '\\' | '/' | ':' | '|' | '<' | '>' | '*' | '?') || (c as u32) < 0x20);
    if ok { Ok(()) } else { Err(StorageError::invalid_resource_name()) }
}

/// The path segments as Azure sees them: without `x-ms-allow-trailing-dot: true`, trailing dots are
/// dropped from every name (as SMB does); each name is then validated.
pub fn normalize_path(segments: &[String], allow_trailing_dot: bool) -> StorageResult<Vec<String>> {
    let mut out = Vec::with_capacity(segments.len());
    let mut total = 0;
    for s in segments {
        let name = if allow_trailing_dot { s.as_str() } else { s.trim_end_matches('.') };
        validate_name(name)?;
        total += name.encode_utf16().count() + 1;
        out.push(name.to_string());
    }
    if total > MAX_PATH {
        return Err(StorageError::invalid_resource_name());
    }
    Ok(out)
}

/// The request's own path, normalized.
pub fn request_path(req: &Req) -> StorageResult<Vec<String>> {
    normalize_path(&req.path, req.bool_header("x-ms-allow-trailing-dot")?)
}

/// Where a path leads.
pub enum Found {
    /// The node exists.
    Node(Node),
    /// The parent directory exists, the last name does not.
    Missing { parent: Node },
}

// ---- Reading a share version's tree: rows in SQLite, or computed for a virtual share. The operations
// read trees only through these, so both kinds get the same headers and XML.

/// The share version's root directory.
pub fn root(db: &Db, share: &ShareRow) -> StorageResult<Node> {
    match &share.virt {
        Some(v) => Ok(v.share.root()),
        None => db.node(share.sid, ROOT_FILE_ID)?.ok_or_else(|| StorageError::internal("share has no root directory")),
    }
}

/// The child of directory `dir` named `name` (case-insensitively).
pub fn child(db: &Db, share: &ShareRow, dir: &Node, name: &str) -> StorageResult<Option<Node>> {
    match &share.virt {
        Some(v) => Ok(v.share.child(v.generation, dir, name)),
        None => db.child(share.sid, dir.file_id, name),
    }
}

/// Children of `dir` whose name key starts with `prefix_key` and is at least `from_key`, in name-key
/// order, at most `limit`.
pub fn children(
    db: &Db,
    share: &ShareRow,
    dir: &Node,
    prefix_key: &str,
    from_key: &str,
    limit: usize,
) -> StorageResult<Vec<Node>> {
    match &share.virt {
        Some(v) => Ok(v.share.children(v.generation, dir, prefix_key, from_key, limit)),
        None => db.children(share.sid, dir.file_id, prefix_key, from_key, limit),
    }
}

/// The extents of `file` overlapping `[start, end)` (not clipped).
pub fn extents(db: &Db, share: &ShareRow, file: &Node, start: i64, end: i64) -> StorageResult<Vec<Extent>> {
    match &share.virt {
        Some(v) => Ok(v.share.extents(v.generation, file)),
        None => db.extents(share.sid, file.file_id, start, end),
    }
}

/// The bytes `[start, end)` of `file` (`end` at most its size); unwritten ranges are zeros.
pub fn read(db: &Db, share: &ShareRow, file: &Node, start: i64, end: i64) -> StorageResult<Vec<u8>> {
    match &share.virt {
        Some(v) => Ok(v.share.read(v.generation, file, start, end)),
        None => db.read(share.sid, file.file_id, start, end),
    }
}

/// Bytes used by the share version's files (for a virtual share, an estimate).
pub fn usage(db: &Db, share: &ShareRow) -> StorageResult<i64> {
    match &share.virt {
        Some(v) => Ok(v.share.usage_estimate()),
        None => db.share_usage(share.sid),
    }
}

/// Walks `path` from the root. Fails with `ParentNotFound` if a directory on the way is missing or is
/// a file. Under a share snapshot the walk starts at the last directory on the path if the snapshot's
/// directory cache knows it (one lookup instead of a query per name), and remembers the directories it
/// passes.
pub fn resolve(db: &Db, share: &ShareRow, path: &[String]) -> StorageResult<Found> {
    let cache = db.dir_cache();
    let parent_len = path.len().saturating_sub(1);
    let (mut cur, start) = match cache.get(share.sid, &share.snapshot, &path[..parent_len]) {
        Some(dir) => (dir, parent_len),
        None => {
            let root = Arc::new(root(db, share)?);
            cache.put(share.sid, &share.snapshot, &[], &root);
            (root, 0)
        }
    };
    for (i, name) in path.iter().enumerate().skip(start) {
        if !cur.is_dir {
            return Err(StorageError::parent_not_found());
        }
        match child(db, share, &cur, name)? {
            Some(n) => {
                cur = Arc::new(n);
                cache.put(share.sid, &share.snapshot, &path[..=i], &cur);
            }
            None if i + 1 == path.len() => return Ok(Found::Missing { parent: Arc::unwrap_or_clone(cur) }),
            None => return Err(StorageError::parent_not_found()),
        }
    }
    Ok(Found::Node(Arc::unwrap_or_clone(cur)))
}

/// How to answer when the path names the other kind of item.
#[derive(Clone, Copy)]
pub enum OnMismatch {
    /// 404 ResourceNotFound (reads).
    NotFound,
    /// 409 ResourceTypeMismatch (changes).
    Conflict,
}

/// The existing node at `path`, which must be a directory (`want_dir`) or a file.
pub fn existing(
    db: &Db,
    share: &ShareRow,
    path: &[String],
    want_dir: bool,
    mismatch: OnMismatch,
) -> StorageResult<Node> {
    match resolve(db, share, path)? {
        Found::Node(n) if n.is_dir == want_dir => Ok(n),
        Found::Node(_) => Err(match mismatch {
            OnMismatch::NotFound => StorageError::resource_not_found(),
            OnMismatch::Conflict => StorageError::resource_type_mismatch(),
        }),
        Found::Missing { .. } => Err(StorageError::resource_not_found()),
    }
}

/// Applies the SMB and NFS headers of a create/set/rename request to `node`.
/// `creating`: absent headers mean defaults (attributes `Archive`/`Directory`, times `now`, the parent's
/// permission); otherwise absent means preserve (the change time defaults to now).
pub fn apply_smb(
    db: &Db,
    req: &Req,
    share: &str,
    node: &mut Node,
    parent_permission: &str,
    creating: bool,
) -> StorageResult<()> {
    let now = req.now;
    match props::attributes_header(req)? {
        Some(bits) => node.attributes = bits,
        None if creating => node.attributes = if node.is_dir { 0 } else { props::ATTR_ARCHIVE },
        None => {}
    }
    if node.is_dir {
        node.attributes |= props::ATTR_DIRECTORY;
    } else {
        node.attributes &= !props::ATTR_DIRECTORY;
    }
    let keep = || if creating { TimeValue::Now } else { TimeValue::Preserve };
    props::apply_time(req, "x-ms-file-creation-time", &mut node.creation_time, now, keep())?;
    props::apply_time(req, "x-ms-file-last-write-time", &mut node.last_write_time, now, keep())?;
    props::apply_time(req, "x-ms-file-change-time", &mut node.change_time, now, TimeValue::Now)?;
    match props::permission_choice(req, db, share)? {
        PermissionChoice::Key(k) => node.permission_key = k,
        PermissionChoice::Inherit if creating => node.permission_key = parent_permission.to_string(),
        PermissionChoice::Inherit | PermissionChoice::Preserve => {}
    }
    props::apply_nfs(req, node)
}

/// The file or directory a handle request names (the whole share when the path is empty).
/// The live share a write request names and the existing item at its path (a directory if `is_dir`,
/// else a file; the other kind answers 409). Refuses a request under a share snapshot.
pub fn live_item(db: &Db, req: &Req, is_dir: bool) -> StorageResult<(ShareRow, Node)> {
    req.require_live()?;
    let share = db.live_share(&req.share)?;
    let node = existing(db, &share, &request_path(req)?, is_dir, OnMismatch::Conflict)?;
    Ok((share, node))
}

/// Saves `node` as request `req` changed it (its Last-Modified becomes the request's time) and answers
/// `status` with the node's properties, as Set Properties and Rename do.
pub fn save_answering_properties(
    db: &Db,
    share: &ShareRow,
    req: &Req,
    node: &mut Node,
    status: StatusCode,
) -> StorageResult<Reply> {
    node.last_modified = req.now;
    db.update_node(share.sid, node)?;
    let mut r = Reply::new(status);
    props::node_headers(&mut r, node);
    r.header("x-ms-request-server-encrypted", "true");
    Ok(r)
}

/// Replaces `node`'s metadata with the request's `x-ms-meta-*` headers, saves it and answers 200 with the
/// ETag, as Set File Metadata and Set Directory Metadata do.
pub fn save_metadata(db: &Db, share: &ShareRow, req: &Req, node: &mut Node) -> StorageResult<Reply> {
    node.metadata = props::metadata(req)?.unwrap_or_default();
    node.last_modified = req.now;
    db.update_node(share.sid, node)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, node.last_modified);
    r.header("x-ms-request-server-encrypted", "true");
    Ok(r)
}

/// Saves file `node` after request `req` wrote a range of its content (last write time as the request
/// says, change and Last-Modified times now) and answers 201 with the ETag and times, as Put Range and
/// Put Range From URL do.
pub fn save_range_written(db: &Db, share: &ShareRow, req: &Req, node: &mut Node) -> StorageResult<Reply> {
    props::apply_time(req, "x-ms-file-last-write-time", &mut node.last_write_time, req.now, TimeValue::Now)?;
    node.change_time = req.now;
    node.last_modified = req.now;
    db.update_node(share.sid, node)?;
    let mut r = Reply::new(StatusCode::CREATED);
    props::etag_headers(&mut r, node.last_modified);
    r.header("x-ms-request-server-encrypted", "true");
    r.header("x-ms-file-last-write-time", crate::emulator::clock::iso7(node.last_write_time));
    Ok(r)
}

fn handle_target(db: &Db, req: &Req) -> StorageResult<()> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    match resolve(db, &share, &request_path(req)?)? {
        Found::Node(_) => Ok(()),
        Found::Missing { .. } => Err(StorageError::resource_not_found()),
    }
}

/// List Handles: the emulator has no SMB clients, so the list is always empty.
pub fn list_handles(db: &Db, req: &Req) -> StorageResult<Reply> {
    handle_target(db, req)?;
    Ok(Reply::new(StatusCode::OK).xml(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Entries /><NextMarker /></EnumerationResults>"
            .to_string(),
    ))
}

/// Force Close Handles: `x-ms-handle-id` (`*` or an id) is required; nothing is ever open, so none
/// are closed.
pub fn force_close_handles(db: &Db, req: &Req) -> StorageResult<Reply> {
    if req.header("x-ms-handle-id").is_none() {
        return Err(StorageError::missing_required_header("x-ms-handle-id"));
    }
    handle_target(db, req)?;
    let mut r = Reply::new(StatusCode::OK);
    r.header("x-ms-number-of-handles-closed", "0");
    r.header("x-ms-number-of-handles-failed", "0");
    Ok(r)
}

/// Rename File / Rename Directory: `x-ms-file-rename-source` names the item (a URL in the same share);
/// the request path is the destination. The FileId never changes.
pub fn rename(db: &Db, req: &Req, is_dir: bool) -> StorageResult<Reply> {
    req.require_live()?;
    let share = db.live_share(&req.share)?;
    let dest = request_path(req)?;
    if dest.is_empty() {
        return Err(StorageError::invalid_uri());
    }
    let source_url = req
        .header("x-ms-file-rename-source")
        .ok_or_else(|| StorageError::missing_required_header("x-ms-file-rename-source"))?;
    let source = source_path(source_url, &req.share, req.bool_header("x-ms-source-allow-trailing-dot")?)?;
    if source.is_empty() {
        return Err(StorageError::invalid_header_value("x-ms-file-rename-source", source_url));
    }
    let mut node = existing(db, &share, &source, is_dir, OnMismatch::Conflict)?;
    if !is_dir {
        super::lease_check::check_write(db, &share, &node, req, "x-ms-source-lease-id")?;
    }
    let dest_name = dest.last().expect("dest is not empty").clone();
    let parent = match resolve(db, &share, &dest)? {
        Found::Missing { parent } => parent,
        Found::Node(other) if other.file_id == node.file_id => {
            db.node(share.sid, node.parent_id)?.ok_or_else(|| StorageError::internal("parent of a node is missing"))?
        }
        Found::Node(other) => {
            if !req.bool_header("x-ms-file-rename-replace-if-exists")? || other.is_dir {
                return Err(StorageError::resource_already_exists());
            }
            if other.attributes & 0x1 != 0 && !req.bool_header("x-ms-file-rename-ignore-readonly")? {
                return Err(StorageError::new(
                    StatusCode::CONFLICT,
                    "ReadOnlyAttribute",
                    "The specified resource is read-only and cannot be modified at this time.",
                ));
            }
            super::lease_check::check_write(db, &share, &other, req, "x-ms-destination-lease-id")?;
            db.delete_node(share.sid, other.file_id)?;
            db.node(share.sid, other.parent_id)?.ok_or_else(|| StorageError::internal("parent of a node is missing"))?
        }
    };
    if is_dir {
        // A directory cannot move below itself.
        let mut at = parent.clone();
        loop {
            if at.file_id == node.file_id {
                return Err(StorageError::invalid_input("The destination is inside the source directory."));
            }
            if at.file_id == ROOT_FILE_ID {
                break;
            }
            at = db
                .node(share.sid, at.parent_id)?
                .ok_or_else(|| StorageError::internal("parent of a node is missing"))?;
        }
    }
    node.parent_id = parent.file_id;
    node.name = dest_name;
    apply_smb(db, req, &share.name, &mut node, &parent.permission_key, false)?;
    if let Some(m) = props::metadata(req)? {
        node.metadata = m;
    }
    save_answering_properties(db, &share, req, &mut node, StatusCode::OK)
}

/// The path below `share` named by a rename source URL (`http://host/devstoreaccount1/share/a/b?sas`)
/// or a path (`/share/a/b`, `share/a/b`).
fn source_path(url: &str, share: &str, allow_trailing_dot: bool) -> StorageResult<Vec<String>> {
    let bad = || StorageError::invalid_header_value("x-ms-file-rename-source", url);
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("/")
        }
        None => url,
    };
    let path = path.split('?').next().unwrap_or("");
    let mut segs = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        segs.push(percent_encoding::percent_decode_str(s).decode_utf8().map_err(|_| bad())?.into_owned());
    }
    if segs.first().map(String::as_str) == Some(DEV_ACCOUNT_NAME) && segs.get(1).map(String::as_str) == Some(share) {
        segs.remove(0);
    }
    if segs.first().map(String::as_str) != Some(share) {
        return Err(bad());
    }
    segs.remove(0);
    normalize_path(&segs, allow_trailing_dot)
}

/// Where Create File (and Copy File, a Create with a copy source) puts its file.
pub(super) struct FileTarget {
    pub share: ShareRow,
    /// The directory the file is (or goes) in.
    pub parent: Node,
    /// The file already at the path, whose lease allowed the write; it is replaced in place.
    pub replaced: Option<Node>,
    /// The existing file's FileId, or a new one.
    pub file_id: u64,
    /// The existing file's name (its stored case), or the path's last segment.
    pub name: String,
}

/// Resolves the request's path in the live share for a file about to be created: a directory there is
/// `ResourceTypeMismatch`, an existing file must allow the write (its lease).
pub(super) fn file_target(db: &Db, req: &Req) -> StorageResult<FileTarget> {
    let share = db.live_share(&req.share)?;
    let path = request_path(req)?;
    let Some(last) = path.last() else { return Err(StorageError::invalid_uri()) };
    let (parent, replaced) = match resolve(db, &share, &path)? {
        Found::Missing { parent } => (parent, None),
        Found::Node(n) if n.is_dir => return Err(StorageError::resource_type_mismatch()),
        Found::Node(n) => {
            super::lease_check::check_write(db, &share, &n, req, "x-ms-lease-id")?;
            let parent = db
                .node(share.sid, n.parent_id)?
                .ok_or_else(|| StorageError::internal("parent of a node is missing"))?;
            (parent, Some(n))
        }
    };
    let (file_id, name) = match &replaced {
        Some(n) => (n.file_id, n.name.clone()),
        None => (db.alloc_file_id(share.sid)?, last.clone()),
    };
    Ok(FileTarget { share, parent, replaced, file_id, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azure_rules() {
        assert!(validate_share_name("abc").is_ok());
        assert!(validate_share_name("a-b-c1").is_ok());
        for bad in ["ab", "Abc", "a--b", "-ab", "ab-", "a_b", &"a".repeat(64)] {
            assert!(validate_share_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name("ok name.txt").is_ok());
        for bad in ["", ".", "..", "a:b", "a*", "a\u{1}", &"x".repeat(256)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize_path(&["a..".into(), "b".into()], false).unwrap(), vec!["a", "b"]);
        assert_eq!(normalize_path(&["a.".into()], true).unwrap(), vec!["a."]);
        assert!(normalize_path(&["...".into()], false).is_err());
    }

    #[test]
    fn rename_sources_are_paths_in_the_share() {
        let p = source_path("http://127.0.0.1:1/devstoreaccount1/s1/d/a%20b.txt?sv=x&sig=y", "s1", false).unwrap();
        assert_eq!(p, vec!["d", "a b.txt"]);
        assert_eq!(source_path("/s1/x", "s1", false).unwrap(), vec!["x"]);
        assert!(source_path("http://h/devstoreaccount1/s2/x", "s1", false).is_err());
    }
}
