//! Set Share ACL and Get Share ACL (`?restype=share&comp=acl`): a share's stored access policies,
//! which a service SAS names with `si` (checked in `auth`).

use super::share_lease;
use crate::emulator::clock;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{AccessPolicy, Db};
use crate::emulator::xml;
use http::StatusCode;

/// Most stored access policies a share may have.
const MAX_POLICIES: usize = 5;
/// Longest policy id, characters.
const MAX_ID: usize = 64;
/// The permission letters of a share policy.
const SHARE_PERMISSIONS: &str = "rcwdl";

fn invalid_xml(reason: impl Into<String>) -> StorageError {
    StorageError::new(StatusCode::BAD_REQUEST, "InvalidXmlDocument", "XML specified is not syntactically valid.")
        .with("Reason", reason)
}

/// Parses a `<SignedIdentifiers>` body (empty: no policies) and checks each policy.
fn parse_policies(body: &[u8]) -> StorageResult<Vec<AccessPolicy>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut cur: Option<AccessPolicy> = None;
    crate::azure::xml::walk_root(body, "SignedIdentifiers", |step| {
        use crate::azure::xml::Step;
        match step {
            Step::Open(path) => {
                let names: Vec<&str> = path.iter().map(|f| f.name.as_str()).collect();
                match names.as_slice() {
                    ["SignedIdentifiers"] => {}
                    ["SignedIdentifiers", "SignedIdentifier"] => {
                        cur = Some(AccessPolicy {
                            id: String::new(),
                            start: String::new(),
                            expiry: String::new(),
                            permission: String::new(),
                        })
                    }
                    _ => {}
                }
            }
            Step::Close(path) => {
                let names: Vec<&str> = path.iter().map(|f| f.name.as_str()).collect();
                let text = path.last().map(|f| f.text.trim().to_string()).unwrap_or_default();
                let slot = cur.as_mut();
                match (names.as_slice(), slot) {
                    (["SignedIdentifiers", "SignedIdentifier"], _) => out.extend(cur.take()),
                    (["SignedIdentifiers", "SignedIdentifier", "Id"], Some(p)) => p.id = text,
                    (["SignedIdentifiers", "SignedIdentifier", "AccessPolicy", "Start"], Some(p)) => p.start = text,
                    (["SignedIdentifiers", "SignedIdentifier", "AccessPolicy", "Expiry"], Some(p)) => p.expiry = text,
                    (["SignedIdentifiers", "SignedIdentifier", "AccessPolicy", "Permission"], Some(p)) => {
                        p.permission = text
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    })
    .map_err(|e| invalid_xml(e.0))?;
    if out.len() > MAX_POLICIES {
        return Err(invalid_xml(format!("At most {MAX_POLICIES} signed identifiers are allowed.")));
    }
    for p in &out {
        if p.id.is_empty() || p.id.chars().count() > MAX_ID {
            return Err(invalid_xml(format!("A signed identifier's Id must have 1 to {MAX_ID} characters.")));
        }
        for (name, t) in [("Start", &p.start), ("Expiry", &p.expiry)] {
            if !t.is_empty() && clock::parse_sas_time(t).is_none() {
                return Err(invalid_xml(format!("{name} of {} is not an ISO 8601 time.", p.id)));
            }
        }
        let mut seen = String::new();
        for c in p.permission.chars() {
            if !SHARE_PERMISSIONS.contains(c) || seen.contains(c) {
                return Err(invalid_xml(format!("Permission of {} must be letters of {SHARE_PERMISSIONS}.", p.id)));
            }
            seen.push(c);
        }
    }
    if out.iter().enumerate().any(|(i, p)| out[..i].iter().any(|q| q.id == p.id)) {
        return Err(invalid_xml("Signed identifier ids must be unique."));
    }
    Ok(out)
}

/// Set Share ACL: replaces the share's stored access policies (an empty body removes them).
pub fn set(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let mut share = db.live_share(&req.share)?;
    share_lease::check(db, &share, req, false)?;
    let policies = parse_policies(&req.body)?;
    db.set_access_policies(&share.name, &policies)?;
    share.last_modified = req.now;
    db.update_share(&share)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r)
}

/// Get Share ACL: the stored access policies as `<SignedIdentifiers>`.
pub fn get(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.live_share(&req.share)?;
    share_lease::check(db, &share, req, false)?;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers>");
    for p in db.access_policies(&share.name)? {
        out.push_str("<SignedIdentifier>");
        xml::push_element(&mut out, "Id", &p.id);
        out.push_str("<AccessPolicy>");
        for (tag, v) in [("Start", &p.start), ("Expiry", &p.expiry), ("Permission", &p.permission)] {
            if !v.is_empty() {
                xml::push_element(&mut out, tag, v);
            }
        }
        out.push_str("</AccessPolicy></SignedIdentifier>");
    }
    out.push_str("</SignedIdentifiers>");
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r.xml(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_are_checked() {
        let body = b"<?xml version=\"1.0\"?><SignedIdentifiers><SignedIdentifier><Id>p1</Id><AccessPolicy>\
            <Start>2026-01-01T00:00:00Z</Start><Expiry>2027-01-01T00:00:00Z</Expiry><Permission>rl</Permission>\
            </AccessPolicy></SignedIdentifier><SignedIdentifier><Id>p2</Id><AccessPolicy><Permission>w</Permission>\
            </AccessPolicy></SignedIdentifier></SignedIdentifiers>";
        let p = parse_policies(body).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].id.as_str(), p[0].permission.as_str(), p[1].expiry.as_str()), ("p1", "rl", ""));
        assert!(parse_policies(b"").unwrap().is_empty());
        assert!(parse_policies(b"<SignedIdentifiers><SignedIdentifier><Id>x</Id><AccessPolicy><Permission>rx</Permission></AccessPolicy></SignedIdentifier></SignedIdentifiers>").is_err());
        assert!(parse_policies(b"<Other/>").is_err());
        assert!(parse_policies(b"<SignedIdentifiers><SignedIdentifier>").is_err());
    }
}
