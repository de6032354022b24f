//! File operations: Create, Get (ranged), Get Properties, Delete, Set Properties (resize), Set Metadata,
//! Put Range (update/clear) and List Ranges (with `prevsharesnapshot` diffs).

use super::tree::{self, FileTarget, Found, OnMismatch, apply_smb, existing, live_item, request_path, resolve};
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{FileBody, Reply, Req, snapshot_param};
use crate::emulator::store::{Db, Extent, MAX_EXTENT, Node, ShareRow};
use http::StatusCode;
use std::fmt::Write as _;

/// Largest file, bytes (4 TiB).
pub const MAX_FILE_SIZE: i64 = 4 * 1024 * 1024 * 1024 * 1024;

/// A byte range from a header: start and optional inclusive end.
type ByteRange = (i64, Option<i64>);

/// Parses `bytes=a-b` or `bytes=a-` (inclusive end).
fn parse_range(header: &str, value: &str) -> StorageResult<ByteRange> {
    let bad = || StorageError::invalid_header_value(header, value);
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: i64 = a.trim().parse().map_err(|_| bad())?;
    let end = if b.trim().is_empty() { None } else { Some(b.trim().parse::<i64>().map_err(|_| bad())?) };
    if start < 0 || end.is_some_and(|e| e < start) {
        return Err(bad());
    }
    Ok((start, end))
}

/// The requested range: `x-ms-range` wins over `Range`.
fn range_header(req: &Req) -> StorageResult<Option<(&'static str, ByteRange)>> {
    for name in ["x-ms-range", "range"] {
        if let Some(v) = req.header(name) {
            return Ok(Some((name, parse_range(name, v)?)));
        }
    }
    Ok(None)
}

fn content_length_header(req: &Req) -> StorageResult<Option<i64>> {
    match req.header("x-ms-content-length") {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (0..=MAX_FILE_SIZE).contains(&n) => Ok(Some(n)),
            Ok(_) => Err(StorageError::out_of_range_input("x-ms-content-length must be between 0 and 4 TiB.")),
            Err(_) => Err(StorageError::invalid_header_value("x-ms-content-length", v)),
        },
    }
}

/// Create File: a new file of `x-ms-content-length` zero bytes. An existing file at the path is
/// replaced in place (content, properties and metadata reset; the FileId stays).
pub fn create(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    if req.header("x-ms-copy-source").is_some() {
        return super::copy::copy_file(db, req);
    }
    match req.header("x-ms-type") {
        None => return Err(StorageError::missing_required_header("x-ms-type")),
        Some(t) if t.eq_ignore_ascii_case("file") => {}
        Some(t) => return Err(StorageError::invalid_header_value("x-ms-type", t)),
    }
    let size =
        content_length_header(req)?.ok_or_else(|| StorageError::missing_required_header("x-ms-content-length"))?;
    let FileTarget { share, parent, replaced, file_id, name } = tree::file_target(db, req)?;
    let mut node = Node {
        file_id,
        parent_id: parent.file_id,
        name,
        is_dir: false,
        size,
        last_modified: req.now,
        metadata: props::metadata(req)?.unwrap_or_default(),
        content: props::content_headers(req)?,
        ..Default::default()
    };
    apply_smb(db, req, &share.name, &mut node, &parent.permission_key, true)?;
    match replaced {
        Some(_) => {
            db.clear(share.sid, file_id, 0, i64::MAX)?;
            db.set_copy_props(share.sid, file_id, None)?;
            db.update_node(share.sid, &node)?;
        }
        None => db.insert_node(share.sid, &node)?,
    }
    let mut r = Reply::new(StatusCode::CREATED);
    props::node_headers(&mut r, &node);
    r.header("x-ms-request-server-encrypted", "true");
    Ok(r)
}

fn file_reply(db: &Db, share: &ShareRow, status: StatusCode, n: &Node, with_md5: bool) -> StorageResult<Reply> {
    let mut r = Reply::new(status);
    props::node_headers(&mut r, n);
    props::metadata_headers(&mut r, &n.metadata);
    props::content_response_headers(&mut r, &n.content, with_md5);
    r.header("x-ms-type", "File");
    r.header("x-ms-server-encrypted", "true");
    let lease = if share.snapshot.is_empty() { db.lease(share.sid, n.file_id)? } else { None };
    super::lease_check::state_headers(&mut r, lease.as_ref());
    super::copy::copy_headers(db, &mut r, share, n)?;
    Ok(r)
}

/// `If-Match` / `If-None-Match` of Get File and Get File Properties against the file's ETag: a failed
/// `If-Match` is 412 `ConditionNotMet`, a matching `If-None-Match` is 304 Not Modified. Each header is a
/// comma-separated list of quoted ETags, or `*`.
fn check_conditions(req: &Req, node: &Node) -> StorageResult<()> {
    let etag = crate::emulator::clock::etag(node.last_modified);
    let matches = |v: &str| v.split(',').map(str::trim).any(|t| t == "*" || t == etag);
    if let Some(v) = req.header("if-match")
        && !matches(v)
    {
        return Err(StorageError::new(
            StatusCode::PRECONDITION_FAILED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        ));
    }
    if let Some(v) = req.header("if-none-match")
        && matches(v)
    {
        return Err(StorageError::new(
            StatusCode::NOT_MODIFIED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        ));
    }
    Ok(())
}

/// Get File: the whole file (200) or a range (206 with `Content-Range`). A range starting at or beyond
/// the end is 416 `InvalidRange`; one running past the end is cut at the end.
pub fn get(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let node = existing(db, &share, &request_path(req)?, false, OnMismatch::NotFound)?;
    check_conditions(req, &node)?;
    match range_header(req)? {
        None => {
            let mut r = file_reply(db, &share, StatusCode::OK, &node, true)?;
            r.header("Accept-Ranges", "bytes");
            r.header("Content-Length", node.size.to_string());
            let end = node.size;
            r.file_body = Some(FileBody { share, node, start: 0, end });
            Ok(r)
        }
        Some((_, (start, end))) => {
            if start >= node.size {
                let mut e = StorageError::invalid_range();
                e.details.push((
                    "RangeRequested",
                    format!("bytes={start}-{}", end.map(|e| e.to_string()).unwrap_or_default()),
                ));
                return Err(e);
            }
            let last = end.unwrap_or(i64::MAX).min(node.size - 1);
            let mut r = file_reply(db, &share, StatusCode::PARTIAL_CONTENT, &node, false)?;
            r.header("Accept-Ranges", "bytes");
            r.header("Content-Range", format!("bytes {start}-{last}/{}", node.size));
            r.header("Content-Length", (last + 1 - start).to_string());
            r.file_body = Some(FileBody { share, node, start, end: last + 1 });
            Ok(r)
        }
    }
}

/// Get File Properties (HEAD): headers only, `Content-Length` is the file size.
pub fn properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let node = existing(db, &share, &request_path(req)?, false, OnMismatch::NotFound)?;
    check_conditions(req, &node)?;
    let mut r = file_reply(db, &share, StatusCode::OK, &node, true)?;
    r.header("Content-Length", node.size.to_string());
    Ok(r)
}

/// Delete File.
pub fn delete(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, node) = live_item(db, req, false)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    db.delete_node(share.sid, node.file_id)?;
    Ok(Reply::new(StatusCode::ACCEPTED))
}

/// Set File Properties: the standard HTTP properties are replaced (absent ones are cleared, as in
/// Azure), `x-ms-content-length` resizes (shrinking drops the content past the end), SMB and NFS
/// properties absent from the request are preserved.
pub fn set_properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, mut node) = live_item(db, req, false)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    if let Some(size) = content_length_header(req)? {
        if size < node.size {
            db.clear(share.sid, node.file_id, size, i64::MAX)?;
        }
        node.size = size;
    }
    node.content = props::content_headers(req)?;
    apply_smb(db, req, &share.name, &mut node, "", false)?;
    // As in Azure, a file whose properties are set no longer reports how it was copied.
    db.set_copy_props(share.sid, node.file_id, None)?;
    tree::save_answering_properties(db, &share, req, &mut node, StatusCode::OK)
}

/// Set File Metadata: replaces all metadata.
pub fn set_metadata(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, mut node) = live_item(db, req, false)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    tree::save_metadata(db, &share, req, &mut node)
}

/// Put Range: `x-ms-write: update` writes the body (at most 4 MiB, exactly the range's length);
/// `clear` makes the range read as zeros. The range must lie within the file.
pub fn put_range(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    if req.header("x-ms-copy-source").is_some() {
        return super::copy::put_range_from_url(db, req);
    }
    let (header, (start, end)) =
        range_header(req)?.ok_or_else(|| StorageError::missing_required_header("x-ms-range"))?;
    let end = end.ok_or_else(|| StorageError::invalid_header_value(header, req.header(header).unwrap_or("")))?;
    let len = end - start + 1;
    let write = req.header("x-ms-write").ok_or_else(|| StorageError::missing_required_header("x-ms-write"))?;
    let clear = match write.to_ascii_lowercase().as_str() {
        "update" => false,
        "clear" => true,
        _ => return Err(StorageError::invalid_header_value("x-ms-write", write)),
    };
    if clear {
        if !req.body.is_empty() {
            return Err(StorageError::invalid_header_value("Content-Length", &req.body.len().to_string()));
        }
    } else {
        if len > MAX_EXTENT {
            return Err(StorageError::request_body_too_large());
        }
        if req.body.len() as i64 != len {
            return Err(StorageError::invalid_header_value("Content-Length", &req.body.len().to_string())
                .with("Reason", "The body length must equal the length of the range."));
        }
        if let Some(given) = req.header("content-md5") {
            use base64::Engine as _;
            let computed =
                base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(&req.body));
            if base64::engine::general_purpose::STANDARD.decode(given).map(|d| d.len()) != Ok(16) {
                return Err(StorageError::invalid_header_value("Content-MD5", given));
            }
            if given != computed {
                return Err(StorageError::new(
                    StatusCode::BAD_REQUEST,
                    "Md5Mismatch",
                    "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
                )
                .with("UserSpecifiedMd5", given)
                .with("ServerCalculatedMd5", computed));
            }
        }
    }
    let share = db.live_share(&req.share)?;
    let mut node = existing(db, &share, &request_path(req)?, false, OnMismatch::Conflict)?;
    super::lease_check::check_write(db, &share, &node, req, "x-ms-lease-id")?;
    if end >= node.size {
        return Err(StorageError::invalid_range());
    }
    if clear {
        db.clear(share.sid, node.file_id, start, end + 1)?;
    } else {
        db.write(share.sid, node.file_id, start, &req.body)?;
    }
    tree::save_range_written(db, &share, req, &mut node)
}

/// List Ranges: the written ranges of the file (adjacent ones merged), within `x-ms-range` if given.
/// With `prevsharesnapshot`: the ranges whose content differs from that snapshot (`<Range>`) and the
/// ranges that held data there but are unwritten now (`<ClearRange>`).
pub fn list_ranges(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let path = request_path(req)?;
    let node = existing(db, &share, &path, false, OnMismatch::NotFound)?;
    let (start, end) = match range_header(req)? {
        None => (0, node.size),
        Some((_, (s, e))) => (s, e.map(|e| e + 1).unwrap_or(node.size).min(node.size)),
    };
    let clip = |v: Vec<Extent>| -> Vec<Extent> {
        v.into_iter()
            .filter_map(|e| {
                let a = e.pos.max(start);
                let b = e.end().min(end);
                (a < b).then(|| Extent {
                    pos: a,
                    length: b - a,
                    blob_id: e.blob_id,
                    blob_offset: e.blob_offset + (a - e.pos),
                })
            })
            .collect()
    };
    let current = clip(tree::extents(db, &share, &node, start, end)?);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><Ranges>");
    match snapshot_param(req, "prevsharesnapshot")? {
        None => {
            for (a, b) in merge(current.iter().map(|e| (e.pos, e.end()))) {
                let _ = write!(out, "<Range><Start>{a}</Start><End>{}</End></Range>", b - 1);
            }
        }
        Some(prev_id) => {
            let prev_share = db.share_at(&req.share, Some(&prev_id))?;
            let previous = match resolve(db, &prev_share, &path)? {
                Found::Node(p) if !p.is_dir => clip(tree::extents(db, &prev_share, &p, start, end)?),
                _ => {
                    return Err(StorageError::new(
                        StatusCode::CONFLICT,
                        "PreviousSnapshotNotFound",
                        "The previous snapshot is not found.",
                    ));
                }
            };
            for (a, b, changed) in diff(&current, &previous) {
                let tag = if changed { "Range" } else { "ClearRange" };
                let _ = write!(out, "<{tag}><Start>{a}</Start><End>{}</End></{tag}>", b - 1);
            }
        }
    }
    out.push_str("</Ranges>");
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, node.last_modified);
    r.header("x-ms-content-length", node.size.to_string());
    Ok(r.xml(out))
}

/// Merges touching or overlapping `[a, b)` intervals given in order.
fn merge(iter: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in iter {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Compares two extent maps (sorted, non-overlapping): returns `[a, b)` pieces, `true` where the current
/// content is data that differs from the previous, `false` where the previous had data and the current
/// has none. Touching pieces of the same kind are merged.
fn diff(current: &[Extent], previous: &[Extent]) -> Vec<(i64, i64, bool)> {
    let mut points: Vec<i64> = current.iter().chain(previous).flat_map(|e| [e.pos, e.end()]).collect();
    points.sort_unstable();
    points.dedup();
    // Where a byte at `x` comes from: (blob, offset in blob).
    let source = |map: &[Extent], x: i64| -> Option<(i64, i64)> {
        let i = map.partition_point(|e| e.end() <= x);
        map.get(i).filter(|e| e.pos <= x).map(|e| (e.blob_id, e.blob_offset + (x - e.pos)))
    };
    let mut out: Vec<(i64, i64, bool)> = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let kind = match (source(current, a), source(previous, a)) {
            (Some(c), p) if Some(c) != p => Some(true),
            (None, Some(_)) => Some(false),
            _ => None,
        };
        if let Some(k) = kind {
            match out.last_mut() {
                Some(last) if last.1 == a && last.2 == k => last.1 = b,
                _ => out.push((a, b, k)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pos: i64, length: i64, blob_id: i64, blob_offset: i64) -> Extent {
        Extent { pos, length, blob_id, blob_offset }
    }

    #[test]
    fn diff_reports_changed_and_cleared_ranges() {
        let prev = [e(0, 100, 1, 0), e(200, 100, 2, 0)];
        // 0..50 unchanged, 50..60 rewritten, 60..100 unchanged, 200..300 cleared, 400..410 new.
        let cur = [e(0, 50, 1, 0), e(50, 10, 3, 0), e(60, 40, 1, 60), e(400, 10, 4, 0)];
        assert_eq!(diff(&cur, &prev), vec![(50, 60, true), (200, 300, false), (400, 410, true)]);
        assert_eq!(diff(&cur, &cur), vec![]);
    }

    #[test]
    fn ranges_parse_and_merge() {
        assert_eq!(parse_range("range", "bytes=0-511").unwrap(), (0, Some(511)));
        assert_eq!(parse_range("range", "bytes=5-").unwrap(), (5, None));
        assert!(parse_range("range", "bytes=5-1").is_err());
        assert_eq!(merge([(0, 5), (5, 9), (10, 12)].into_iter()), vec![(0, 9), (10, 12)]);
    }
}
