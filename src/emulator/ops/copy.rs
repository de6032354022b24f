//! Copies within the account, all finished within their request: Copy File (`x-ms-copy-source` on
//! Create File's URL), Put Range from URL (`x-ms-copy-source` on Put Range), Abort Copy (always too
//! late: nothing is ever pending), and the `x-ms-copy-*` properties Get File reports afterwards.
//!
//! A source is any file of the account, live or in a share snapshot, stored or virtual; a SAS in its
//! URL is ignored (the request itself is signed for the account). Stored content is never copied:
//! extent rows are, pointing at the same immutable blobs.

use super::tree::{self, FileTarget, Found, OnMismatch, apply_smb, existing, normalize_path, request_path, resolve};
use crate::emulator::clock;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{Reply, Req, new_guid};
use crate::emulator::store::{CopyProps, Db, MAX_EXTENT, Node, ShareRow};
use http::StatusCode;

/// The file a copy source URL names, or 404 `CannotVerifyCopySource`.
fn source_file(db: &Db, url: &str) -> StorageResult<(ShareRow, Node)> {
    let (share_name, snapshot, path) = parse_source(url)?;
    let not_found =
        || StorageError::new(StatusCode::NOT_FOUND, "CannotVerifyCopySource", "The specified resource does not exist.");
    let share = db.share_at(&share_name, snapshot.as_deref()).map_err(|_| not_found())?;
    match resolve(db, &share, &path) {
        Ok(Found::Node(n)) if !n.is_dir => Ok((share, n)),
        _ => Err(not_found()),
    }
}

/// The share, snapshot and path a copy source URL names: `http://host/devstoreaccount1/share/a/b`
/// (or without the account segment), optionally `?sharesnapshot=…` and a SAS, which are ignored
/// otherwise (the request itself is signed for the account).
fn parse_source(url: &str) -> StorageResult<(String, Option<String>, Vec<String>)> {
    let bad = || StorageError::invalid_header_value("x-ms-copy-source", url);
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or_else(bad)?;
    let after_host = rest.find('/').map(|i| &rest[i..]).ok_or_else(bad)?;
    let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
    let mut segs = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        segs.push(percent_encoding::percent_decode_str(s).decode_utf8().map_err(|_| bad())?.into_owned());
    }
    if segs.first().map(String::as_str) == Some(crate::azure::credential::DEV_ACCOUNT_NAME) {
        segs.remove(0);
    }
    if segs.len() < 2 {
        return Err(bad());
    }
    let share = segs.remove(0);
    let snapshot = match crate::azure::credential::query_pairs(query)
        .find(|(k, _)| k.eq_ignore_ascii_case("sharesnapshot"))
    {
        None => None,
        Some((_, v)) => Some(crate::emulator::clock::parse_iso(&v).map(crate::emulator::clock::iso7).ok_or_else(bad)?),
    };
    Ok((share, snapshot, normalize_path(&segs, true)?))
}

/// Copy File (`x-ms-copy-source` on Create's URL), within the account, done synchronously: the
/// destination gets the source's content (extent rows shared, or a virtual file's bytes written), its
/// content headers, metadata and SMB properties; `x-ms-meta-*` replaces the metadata and the SMB headers
/// of the request override (`source` keeps the source's value). 202 with `x-ms-copy-status: success`.
pub fn copy_file(db: &Db, req: &Req) -> StorageResult<Reply> {
    let url = req.header("x-ms-copy-source").expect("copy is called for requests with a copy source");
    let (src_share, source) = source_file(db, url)?;
    let FileTarget { share, parent, replaced, file_id, name } = tree::file_target(db, req)?;
    if source.permission_key != parent.permission_key
        && let Some(sddl) = db.permission(&src_share.name, &source.permission_key)?
    {
        db.put_permission(&share.name, &source.permission_key, &sddl)?;
    }
    let mut node = Node {
        file_id,
        parent_id: parent.file_id,
        name,
        last_modified: req.now,
        change_time: req.now,
        ..source.clone()
    };
    if let Some(m) = props::metadata(req)? {
        node.metadata = m;
    }
    // `source` in an SMB header means: keep the source's value (already there).
    let mut smb = req.clone_without_body();
    for h in ["x-ms-file-attributes", "x-ms-file-creation-time", "x-ms-file-last-write-time", "x-ms-file-change-time"] {
        if smb.header(h).is_some_and(|v| v.eq_ignore_ascii_case("source")) {
            smb.headers.remove(h);
        }
    }
    if smb.header("x-ms-file-permission-copy-mode").is_some_and(|v| v.eq_ignore_ascii_case("source")) {
        smb.headers.remove("x-ms-file-permission");
        smb.headers.remove("x-ms-file-permission-key");
    }
    apply_smb(db, &smb, &share.name, &mut node, &parent.permission_key, false)?;
    match replaced {
        Some(_) => {
            db.clear(share.sid, file_id, 0, i64::MAX)?;
            db.update_node(share.sid, &node)?;
        }
        None => db.insert_node(share.sid, &node)?,
    }
    if src_share.virt.is_some() {
        let mut pos = 0;
        while pos < source.size {
            let end = (pos + MAX_EXTENT).min(source.size);
            db.write(share.sid, file_id, pos, &tree::read(db, &src_share, &source, pos, end)?)?;
            pos = end;
        }
    } else {
        db.copy_extents(src_share.sid, source.file_id, share.sid, file_id)?;
    }
    let copy = CopyProps { id: new_guid(), source: url.to_string(), completed: req.now, bytes: source.size };
    db.set_copy_props(share.sid, file_id, Some(&copy))?;
    let mut r = Reply::new(StatusCode::ACCEPTED);
    props::etag_headers(&mut r, node.last_modified);
    r.header("x-ms-copy-id", copy.id);
    r.header("x-ms-copy-status", "success");
    r.header("x-ms-request-server-encrypted", "true");
    Ok(r)
}

/// A byte range header `bytes=a-b` (both ends required, inclusive) as `[a, b + 1)`.
fn closed_range(req: &Req, name: &str) -> StorageResult<(i64, i64)> {
    let v = req.header(name).ok_or_else(|| StorageError::missing_required_header(name))?;
    let bad = || StorageError::invalid_header_value(name, v);
    let (a, b) = v.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    let a: i64 = a.trim().parse().map_err(|_| bad())?;
    let b: i64 = b.trim().parse().map_err(|_| bad())?;
    if a < 0 || b < a {
        return Err(bad());
    }
    Ok((a, b + 1))
}

/// Put Range from URL: `x-ms-range` of the file gets the bytes `x-ms-source-range` of the file named
/// by `x-ms-copy-source` (same length, at most 4 MiB; both ranges within their files).
pub fn put_range_from_url(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let url = req.header("x-ms-copy-source").expect("called for requests with a copy source");
    match req.header("x-ms-write") {
        Some(w) if w.eq_ignore_ascii_case("update") => {}
        Some(w) => return Err(StorageError::invalid_header_value("x-ms-write", w)),
        None => return Err(StorageError::missing_required_header("x-ms-write")),
    }
    if !req.body.is_empty() {
        return Err(StorageError::invalid_header_value("Content-Length", &req.body.len().to_string()));
    }
    let (start, end) = closed_range(req, "x-ms-range")?;
    let (src_start, src_end) = closed_range(req, "x-ms-source-range")?;
    if end - start != src_end - src_start {
        return Err(StorageError::invalid_header_value(
            "x-ms-source-range",
            req.header("x-ms-source-range").unwrap_or(""),
        )
        .with("Reason", "The source range and the destination range must have the same length."));
    }
    if end - start > MAX_EXTENT {
        return Err(StorageError::out_of_range_input("A range from a URL is at most 4 MiB."));
    }
    let (src_share, source) = source_file(db, url)?;
    let share = db.live_share(&req.share)?;
    let mut node = existing(db, &share, &request_path(req)?, false, OnMismatch::Conflict)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    if end > node.size || src_end > source.size {
        return Err(StorageError::invalid_range());
    }
    db.clear(share.sid, node.file_id, start, end)?;
    if src_share.virt.is_some() {
        db.write(share.sid, node.file_id, start, &tree::read(db, &src_share, &source, src_start, src_end)?)?;
    } else {
        db.copy_extent_range(src_share.sid, source.file_id, src_start, src_end, share.sid, node.file_id, start)?;
    }
    tree::save_range_written(db, &share, req, &mut node)
}

/// Abort Copy (`PUT ?comp=copy&copyid=…`, `x-ms-copy-action: abort`): copies finish within their
/// request, so there is never one to abort: 409 `NoPendingCopyOperation`, or `CopyIdMismatch` when the
/// id is not the file's last copy.
pub fn abort_copy(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let id = req.query("copyid").ok_or_else(|| StorageError::missing_required_query_parameter("copyid"))?;
    match req.header("x-ms-copy-action") {
        Some(a) if a.eq_ignore_ascii_case("abort") => {}
        Some(a) => return Err(StorageError::invalid_header_value("x-ms-copy-action", a)),
        None => return Err(StorageError::missing_required_header("x-ms-copy-action")),
    }
    let share = db.live_share(&req.share)?;
    let node = existing(db, &share, &request_path(req)?, false, OnMismatch::Conflict)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    match db.copy_props(share.sid, node.file_id)? {
        Some(c) if !c.id.eq_ignore_ascii_case(id) => Err(StorageError::new(
            StatusCode::CONFLICT,
            "CopyIdMismatch",
            "The specified copy ID did not match the copy ID for the pending copy operation.",
        )),
        _ => Err(StorageError::new(
            StatusCode::CONFLICT,
            "NoPendingCopyOperation",
            "There is currently no pending copy operation.",
        )),
    }
}

/// The `x-ms-copy-*` headers of a file made by Copy File.
pub fn copy_headers(db: &Db, r: &mut Reply, share: &ShareRow, file: &Node) -> StorageResult<()> {
    if share.virt.is_some() {
        return Ok(());
    }
    if let Some(c) = db.copy_props(share.sid, file.file_id)? {
        r.header("x-ms-copy-id", c.id);
        r.header("x-ms-copy-source", c.source);
        r.header("x-ms-copy-status", "success");
        r.header("x-ms-copy-progress", format!("{}/{}", c.bytes, c.bytes));
        r.header("x-ms-copy-completion-time", clock::rfc1123(c.completed));
    }
    Ok(())
}
