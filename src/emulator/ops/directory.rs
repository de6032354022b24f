//! Directory operations and List Directories and Files.

use super::share::max_results;
use super::tree::{self, Found, OnMismatch, apply_smb, existing, live_item, request_path, resolve};
use crate::emulator::clock;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, Node, name_key};
use crate::emulator::xml;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use http::StatusCode;
use std::fmt::Write as _;

/// Create Directory: the parent must exist; an existing item of that name is `ResourceAlreadyExists`.
pub fn create(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let share = db.live_share(&req.share)?;
    let path = request_path(req)?;
    let parent = match resolve(db, &share, &path)? {
        Found::Missing { parent } => parent,
        Found::Node(_) => return Err(StorageError::resource_already_exists()),
    };
    let mut node = Node {
        file_id: db.alloc_file_id(share.sid)?,
        parent_id: parent.file_id,
        name: path.last().expect("a missing node has a name").clone(),
        is_dir: true,
        last_modified: req.now,
        metadata: props::metadata(req)?.unwrap_or_default(),
        ..Default::default()
    };
    apply_smb(db, req, &share.name, &mut node, &parent.permission_key, true)?;
    db.insert_node(share.sid, &node)?;
    let mut r = Reply::new(StatusCode::CREATED);
    props::node_headers(&mut r, &node);
    r.header("x-ms-request-server-encrypted", "true");
    Ok(r)
}

/// Get Directory Properties (live share or snapshot).
pub fn properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let node = existing(db, &share, &request_path(req)?, true, OnMismatch::NotFound)?;
    let mut r = Reply::new(StatusCode::OK);
    props::node_headers(&mut r, &node);
    props::metadata_headers(&mut r, &node.metadata);
    r.header("x-ms-server-encrypted", "true");
    Ok(r)
}

/// Delete Directory: only empty directories; never the root.
pub fn delete(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let share = db.live_share(&req.share)?;
    let path = request_path(req)?;
    if path.is_empty() {
        return Err(StorageError::invalid_uri());
    }
    let node = existing(db, &share, &path, true, OnMismatch::Conflict)?;
    if db.has_children(share.sid, node.file_id)? {
        return Err(StorageError::directory_not_empty());
    }
    db.delete_node(share.sid, node.file_id)?;
    Ok(Reply::new(StatusCode::ACCEPTED))
}

/// Set Directory Properties: SMB properties, permission, NFS properties; absent means preserve.
pub fn set_properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, mut node) = live_item(db, req, true)?;
    apply_smb(db, req, &share.name, &mut node, "", false)?;
    tree::save_answering_properties(db, &share, req, &mut node, StatusCode::OK)
}

/// Set Directory Metadata: replaces all metadata.
pub fn set_metadata(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, mut node) = live_item(db, req, true)?;
    tree::save_metadata(db, &share, req, &mut node)
}

/// What `include=` asked for.
#[derive(Default)]
struct Include {
    timestamps: bool,
    etag: bool,
    attributes: bool,
    permission_key: bool,
}

fn parse_include(req: &Req) -> StorageResult<Include> {
    let mut inc = Include::default();
    let Some(v) = req.query("include") else { return Ok(inc) };
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "timestamps" => inc.timestamps = true,
            "etag" => inc.etag = true,
            "attributes" => inc.attributes = true,
            "permissionkey" => inc.permission_key = true,
            _ => return Err(StorageError::invalid_query_parameter("include", v, "Unknown include value.")),
        }
    }
    Ok(inc)
}

/// List Directories and Files: one level, sorted by name (case-insensitively), paged by `maxresults`
/// with an opaque `NextMarker` naming the first entry of the next page.
pub fn list(db: &Db, req: &Req) -> StorageResult<Reply> {
    let snapshot = req.snapshot()?;
    let share = db.share_at(&req.share, snapshot.as_deref())?;
    let path = request_path(req)?;
    let dir = existing(db, &share, &path, true, OnMismatch::NotFound)?;
    let limit = max_results(req)?;
    let include = parse_include(req)?;
    let extended = req.bool_header("x-ms-file-extended-info")?;
    let prefix = req.query("prefix").unwrap_or("");
    let from = match req.query("marker") {
        None | Some("") => String::new(),
        Some(m) => decode_marker(m)
            .ok_or_else(|| StorageError::invalid_query_parameter("marker", m, "Not a marker this service returned."))?,
    };
    let mut children = tree::children(db, &share, &dir, &name_key(prefix), &from, limit + 1)?;
    let next_marker =
        if children.len() > limit { children.pop().map(|n| encode_marker(&name_key(&n.name))) } else { None };

    // About 450 bytes per entry with every `include`: reserve once.
    let mut out = String::with_capacity(512 + children.len() * 512);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}/\" ShareName=\"{}\"",
        xml::escape(&req.endpoint),
        xml::escape(&share.name)
    );
    if !share.snapshot.is_empty() {
        let _ = write!(out, " ShareSnapshot=\"{}\"", share.snapshot);
    }
    let dir_path = path.join("/");
    if xml::is_xml_safe(&dir_path) {
        let _ = write!(out, " DirectoryPath=\"{}\">", xml::escape(&dir_path));
    } else {
        let _ = write!(out, " DirectoryPath=\"{}\" Encoded=\"true\">", xml::percent_encode(&dir_path));
    }
    if let Some(p) = req.query("prefix") {
        xml::push_name_element(&mut out, "Prefix", p);
    }
    if let Some(m) = req.query("marker") {
        xml::push_element(&mut out, "Marker", m);
    }
    if let Some(m) = req.query("maxresults") {
        xml::push_element(&mut out, "MaxResults", m);
    }
    if extended {
        let _ = write!(out, "<DirectoryId>{}</DirectoryId>", dir.file_id);
    }
    out.push_str("<Entries>");
    for n in &children {
        let tag = if n.is_dir { "Directory" } else { "File" };
        let _ = write!(out, "<{tag}>");
        xml::push_name_element(&mut out, "Name", &n.name);
        if extended {
            let _ = write!(out, "<FileId>{}</FileId>", n.file_id);
        }
        out.push_str("<Properties>");
        if !n.is_dir {
            let _ = write!(out, "<Content-Length>{}</Content-Length>", n.size);
        }
        if include.timestamps {
            for (tag, ticks) in [
                ("CreationTime", n.creation_time),
                ("LastAccessTime", n.last_write_time),
                ("LastWriteTime", n.last_write_time),
                ("ChangeTime", n.change_time),
            ] {
                let _ = write!(out, "<{tag}>");
                clock::push_iso7(&mut out, ticks);
                let _ = write!(out, "</{tag}>");
            }
            let _ = write!(out, "<Last-Modified>{}</Last-Modified>", clock::rfc1123(n.last_modified));
        }
        if include.etag {
            xml::push_element(&mut out, "Etag", &clock::etag(n.last_modified));
        }
        out.push_str("</Properties>");
        if include.attributes {
            xml::push_element(&mut out, "Attributes", &props::format_attributes(n.attributes));
        }
        if include.permission_key {
            xml::push_element(&mut out, "PermissionKey", &n.permission_key);
        }
        let _ = write!(out, "</{tag}>");
    }
    out.push_str("</Entries>");
    match next_marker {
        Some(m) => xml::push_element(&mut out, "NextMarker", &m),
        None => out.push_str("<NextMarker />"),
    }
    out.push_str("</EnumerationResults>");
    Ok(Reply::new(StatusCode::OK).xml(out))
}

fn encode_marker(key: &str) -> String {
    B64URL.encode(format!("d1\n{key}"))
}

fn decode_marker(m: &str) -> Option<String> {
    let raw = String::from_utf8(B64URL.decode(m).ok()?).ok()?;
    raw.strip_prefix("d1\n").map(str::to_string)
}
