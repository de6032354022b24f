//! What a file's lease allows: the check every change to a file makes against its lease, the lease
//! headers of reads, and lease-id parsing. The Lease File operation itself is in `lease`.

use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, Lease, Node, ShareRow};
use http::StatusCode;

/// A lease id as Azure requires it: a GUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits).
pub(super) fn valid_lease_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// A lease-id header, validated; `None` when absent.
pub(super) fn lease_header<'r>(req: &'r Req, name: &str) -> StorageResult<Option<&'r str>> {
    match req.header(name) {
        None => Ok(None),
        Some(v) if valid_lease_id(v) => Ok(Some(v)),
        Some(v) => Err(StorageError::invalid_header_value(name, v)),
    }
}

pub(super) fn lease_error(status: StatusCode, code: &'static str, message: &str) -> StorageError {
    StorageError::new(status, code, message)
}

/// Checks a change to `file` against its lease: an active lease needs its id in `header`
/// (`x-ms-lease-id`, or `x-ms-source-lease-id` for a rename source); a lease id given for a file
/// without an active lease is refused too.
pub fn check_write(db: &Db, share: &ShareRow, file: &Node, req: &Req, header: &str) -> StorageResult<()> {
    let given = lease_header(req, header)?;
    let active = db.lease(share.sid, file.file_id)?.filter(|l| !l.broken);
    match (active, given) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseIdMissing",
            "There is currently a lease on the file and no lease ID was specified in the request.",
        )),
        (Some(l), Some(g)) if l.id.eq_ignore_ascii_case(g) => Ok(()),
        (Some(_), Some(_)) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseIdMismatchWithFileOperation",
            "The lease ID specified did not match the lease ID for the file.",
        )),
        (None, Some(_)) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseNotPresentWithFileOperation",
            "There is currently no lease on the file.",
        )),
    }
}

/// The `x-ms-lease-state`/`-status`/`-duration` headers of Get File and Get File Properties.
pub fn state_headers(r: &mut Reply, lease: Option<&Lease>) {
    match lease {
        None => {
            r.header("x-ms-lease-state", "available");
            r.header("x-ms-lease-status", "unlocked");
        }
        Some(l) if l.broken => {
            r.header("x-ms-lease-state", "broken");
            r.header("x-ms-lease-status", "unlocked");
        }
        Some(_) => {
            r.header("x-ms-lease-state", "leased");
            r.header("x-ms-lease-status", "locked");
            r.header("x-ms-lease-duration", "infinite");
        }
    }
}
