//! Request headers that carry file and directory properties, parsed and validated the way Azure Files
//! does, and the response headers that report them.

use super::clock;
use super::error::{StorageError, StorageResult};
use super::node::{ContentHeaders, Metadata, Node};
pub use super::node::{DEFAULT_SDDL, permission_key};
use super::request::{Reply, Req};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

// The one SMB attribute table is in `crate::azure::model`; requests are parsed strictly, as Azure does.
pub use crate::azure::model::{
    ATTR_ARCHIVE, ATTR_DIRECTORY, format_attributes, parse_request_attributes as parse_attributes,
};

/// The longest permission accepted in the `x-ms-file-permission` header; longer ones go through
/// Create Permission.
pub const MAX_PERMISSION_HEADER: usize = 8 * 1024;

/// An SMB time header value.
pub enum TimeValue {
    Now,
    Preserve,
    At(i64),
}

/// Parses an SMB time header (`x-ms-file-creation-time` etc.): ISO 8601 UTC, `now`, or `preserve`.
pub fn time_header(req: &Req, name: &str) -> StorageResult<Option<TimeValue>> {
    let Some(v) = req.header(name) else { return Ok(None) };
    if v.eq_ignore_ascii_case("now") {
        return Ok(Some(TimeValue::Now));
    }
    if v.eq_ignore_ascii_case("preserve") {
        return Ok(Some(TimeValue::Preserve));
    }
    clock::parse_iso(v).map(|t| Some(TimeValue::At(t))).ok_or_else(|| StorageError::invalid_header_value(name, v))
}

/// Applies an SMB time header to `slot`: absent means `default` (`Now` or `Preserve`).
pub fn apply_time(req: &Req, name: &str, slot: &mut i64, now: i64, default: TimeValue) -> StorageResult<()> {
    match time_header(req, name)?.unwrap_or(default) {
        TimeValue::Now => *slot = now,
        TimeValue::Preserve => {}
        TimeValue::At(t) => *slot = t,
    }
    Ok(())
}

/// `x-ms-meta-*` headers as metadata (names spelled as the client sent them), or `None` if the request
/// has none. Names must be C# identifiers and the total at most 8 KiB.
pub fn metadata(req: &Req) -> StorageResult<Option<Metadata>> {
    let mut out = Vec::new();
    let mut total = 0;
    for (name, value) in req.headers.iter() {
        let Some(lower) = name.as_str().strip_prefix("x-ms-meta-") else { continue };
        // The name as the client spelled it: Azure keeps the case of metadata names.
        let key = req.header_case.spelling(name.as_str()).map(|s| &s["x-ms-meta-".len()..]).unwrap_or(lower);
        let valid_name = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let value = value.to_str().map_err(|_| StorageError::invalid_metadata())?;
        if !valid_name {
            return Err(StorageError::invalid_metadata());
        }
        total += key.len() + value.len();
        out.push((key.to_string(), value.to_string()));
    }
    if total > 8 * 1024 {
        return Err(StorageError::new(
            http::StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "The size of the specified metadata exceeds the maximum size permitted.",
        ));
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

/// The `x-ms-content-*`/`x-ms-cache-control` headers of Create File and Set File Properties.
pub fn content_headers(req: &Req) -> StorageResult<ContentHeaders> {
    let get = |n: &str| req.header(n).map(str::to_string);
    let content_md5 = match req.header("x-ms-content-md5") {
        None => None,
        Some(v) => Some(BASE64.decode(v).map_err(|_| StorageError::invalid_header_value("x-ms-content-md5", v))?),
    };
    Ok(ContentHeaders {
        content_type: get("x-ms-content-type"),
        content_encoding: get("x-ms-content-encoding"),
        content_language: get("x-ms-content-language"),
        cache_control: get("x-ms-cache-control"),
        content_disposition: get("x-ms-content-disposition"),
        content_md5,
    })
}

/// Parses `x-ms-file-attributes` if present.
pub fn attributes_header(req: &Req) -> StorageResult<Option<u32>> {
    match req.header("x-ms-file-attributes") {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("preserve") => Ok(None),
        Some(v) => {
            parse_attributes(v).map(Some).ok_or_else(|| StorageError::invalid_header_value("x-ms-file-attributes", v))
        }
    }
}

/// What the permission headers ask for.
pub enum PermissionChoice {
    /// Neither header, or `inherit`: the parent's permission (on create) / keep (on set).
    Inherit,
    /// `preserve`: keep the current permission.
    Preserve,
    /// A permission key known to the share.
    Key(String),
}

/// Reads `x-ms-file-permission` / `x-ms-file-permission-key`; an SDDL given inline is stored and
/// turned into its key. Only one of the two may be given.
pub fn permission_choice(req: &Req, db: &super::store::Db, share: &str) -> StorageResult<PermissionChoice> {
    let perm = req.header("x-ms-file-permission");
    let key = req.header("x-ms-file-permission-key");
    if let Some(f) = req.header("x-ms-file-permission-format")
        && !f.eq_ignore_ascii_case("sddl")
    {
        // Binary security descriptors are not supported by the emulator (see docs/emulator.md).
        return Err(StorageError::invalid_header_value("x-ms-file-permission-format", f));
    }
    match (perm, key) {
        (Some(p), Some(_)) => Err(StorageError::invalid_header_value("x-ms-file-permission", p)
            .with("Reason", "Only one of x-ms-file-permission and x-ms-file-permission-key may be specified.")),
        (Some(p), None) if p.eq_ignore_ascii_case("inherit") => Ok(PermissionChoice::Inherit),
        (Some(p), None) if p.eq_ignore_ascii_case("preserve") => Ok(PermissionChoice::Preserve),
        (Some(p), None) => {
            if p.len() > MAX_PERMISSION_HEADER {
                return Err(StorageError::invalid_header_value("x-ms-file-permission", "(longer than 8 KiB)"));
            }
            validate_sddl(p).map_err(|_| StorageError::invalid_header_value("x-ms-file-permission", p))?;
            let k = permission_key(p);
            db.put_permission(share, &k, p)?;
            Ok(PermissionChoice::Key(k))
        }
        (None, Some(k)) => {
            if db.permission(share, k)?.is_none() {
                return Err(StorageError::invalid_header_value("x-ms-file-permission-key", k));
            }
            Ok(PermissionChoice::Key(k.to_string()))
        }
        (None, None) => Ok(PermissionChoice::Inherit),
    }
}

/// A light SDDL check: it must consist of `O:`, `G:`, `D:` and `S:` parts.
pub fn validate_sddl(s: &str) -> Result<(), ()> {
    let s = s.trim();
    if s.is_empty() || !(s.starts_with("O:") || s.starts_with("G:") || s.starts_with("D:") || s.starts_with("S:")) {
        return Err(());
    }
    Ok(())
}

/// Stores the default permission for `share` and returns its key.
pub fn default_permission_key(db: &super::store::Db, share: &str) -> StorageResult<String> {
    let k = permission_key(DEFAULT_SDDL);
    db.put_permission(share, &k, DEFAULT_SDDL)?;
    Ok(k)
}

/// NFS headers (`x-ms-mode`, `x-ms-owner`, `x-ms-group`): stored as given when present.
pub fn apply_nfs(req: &Req, node: &mut Node) -> StorageResult<()> {
    if let Some(m) = req.header("x-ms-mode") {
        let octal = m.len() == 4 && m.chars().all(|c| ('0'..='7').contains(&c));
        let symbolic = m.len() == 9 || m.len() == 10;
        if !octal && !symbolic {
            return Err(StorageError::invalid_header_value("x-ms-mode", m));
        }
        node.mode = Some(m.to_string());
    }
    for (h, slot) in [("x-ms-owner", &mut node.owner), ("x-ms-group", &mut node.group)] {
        if let Some(v) = req.header(h) {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
                return Err(StorageError::invalid_header_value(h, v));
            }
            *slot = Some(v.to_string());
        }
    }
    Ok(())
}

/// Adds `ETag` and `Last-Modified` for a change at `ticks`.
pub fn etag_headers(r: &mut Reply, ticks: i64) {
    r.header("ETag", clock::etag(ticks));
    r.header("Last-Modified", clock::rfc1123(ticks));
}

/// Adds the SMB/NFS property headers of a file or directory (what Create, Get Properties, Set
/// Properties and Rename return).
pub fn node_headers(r: &mut Reply, n: &Node) {
    etag_headers(r, n.last_modified);
    r.header("x-ms-file-attributes", format_attributes(n.attributes));
    r.header("x-ms-file-creation-time", clock::iso7(n.creation_time));
    r.header("x-ms-file-last-write-time", clock::iso7(n.last_write_time));
    r.header("x-ms-file-change-time", clock::iso7(n.change_time));
    r.header("x-ms-file-permission-key", n.permission_key.clone());
    r.header("x-ms-file-id", n.file_id.to_string());
    r.header("x-ms-file-parent-id", n.parent_id.to_string());
    if let Some(m) = &n.mode {
        r.header("x-ms-mode", m.clone());
    }
    if let Some(o) = &n.owner {
        r.header("x-ms-owner", o.clone());
    }
    if let Some(g) = &n.group {
        r.header("x-ms-group", g.clone());
    }
}

/// Adds `x-ms-meta-*` headers.
pub fn metadata_headers(r: &mut Reply, m: &Metadata) {
    for (k, v) in m {
        r.header_owned(format!("x-ms-meta-{k}"), v.clone());
    }
}

/// Adds the stored standard HTTP properties of a file (`Content-Type` defaults to
/// `application/octet-stream`).
pub fn content_response_headers(r: &mut Reply, c: &ContentHeaders, with_md5: bool) {
    r.header("Content-Type", c.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()));
    for (name, v) in [
        ("Content-Encoding", &c.content_encoding),
        ("Content-Language", &c.content_language),
        ("Cache-Control", &c.cache_control),
        ("Content-Disposition", &c.content_disposition),
    ] {
        if let Some(v) = v {
            r.header(name, v.clone());
        }
    }
    if with_md5 && let Some(md5) = &c.content_md5 {
        r.header("Content-MD5", BASE64.encode(md5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_keys_depend_only_on_the_sddl() {
        assert_eq!(permission_key(DEFAULT_SDDL), permission_key(DEFAULT_SDDL));
        assert_ne!(permission_key(DEFAULT_SDDL), permission_key("O:BAG:BAD:"));
        assert!(permission_key("O:BA").contains('*'));
    }
}
