//! Lease File (`PUT ?comp=lease`): acquire, change, release and break an infinite lease. The checks
//! of changes against a lease are in `lease_check`.
//!
//! A lease is one row in `leases` (`store::Db::lease`): its id and whether it is broken. Azure's file
//! leases are always infinite, so no time is kept; Lease File has no `renew` action (that is for share
//! leases). Snapshots carry no leases.

use super::lease_check::{lease_error, lease_header};
use super::tree::live_item;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, Lease};
use http::StatusCode;

/// Lease File.
pub fn lease_file(db: &Db, req: &Req) -> StorageResult<Reply> {
    let (share, node) = live_item(db, req, false)?;
    let action =
        req.header("x-ms-lease-action").ok_or_else(|| StorageError::missing_required_header("x-ms-lease-action"))?;
    let current = db.lease(share.sid, node.file_id)?;
    let given = lease_header(req, "x-ms-lease-id")?;
    let proposed = lease_header(req, "x-ms-proposed-lease-id")?;
    let not_present = || {
        lease_error(
            StatusCode::CONFLICT,
            "LeaseNotPresentWithLeaseOperation",
            "There is currently no lease on the file.",
        )
    };
    let mismatch = || {
        lease_error(
            StatusCode::CONFLICT,
            "LeaseIdMismatchWithLeaseOperation",
            "The lease ID specified did not match the lease ID for the file.",
        )
    };
    let require_id = || given.ok_or_else(|| StorageError::missing_required_header("x-ms-lease-id"));
    let (status, lease_id) = match action.to_ascii_lowercase().as_str() {
        "acquire" => {
            match req.header("x-ms-lease-duration") {
                Some("-1") => {}
                None => return Err(StorageError::missing_required_header("x-ms-lease-duration")),
                Some(v) => return Err(StorageError::invalid_header_value("x-ms-lease-duration", v)),
            }
            let id = proposed.map(str::to_ascii_lowercase).unwrap_or_else(crate::emulator::request::new_guid);
            match &current {
                Some(l) if !l.broken && !l.id.eq_ignore_ascii_case(&id) => {
                    return Err(lease_error(
                        StatusCode::CONFLICT,
                        "LeaseAlreadyPresent",
                        "There is already a lease present.",
                    ));
                }
                _ => db.set_lease(share.sid, node.file_id, &Lease { id: id.clone(), broken: false })?,
            }
            (StatusCode::CREATED, Some(id))
        }
        "change" => {
            let given = require_id()?;
            let proposed = proposed.ok_or_else(|| StorageError::missing_required_header("x-ms-proposed-lease-id"))?;
            match &current {
                Some(l) if !l.broken => {
                    if !l.id.eq_ignore_ascii_case(given) && !l.id.eq_ignore_ascii_case(proposed) {
                        return Err(mismatch());
                    }
                    let id = proposed.to_ascii_lowercase();
                    db.set_lease(share.sid, node.file_id, &Lease { id: id.clone(), broken: false })?;
                    (StatusCode::OK, Some(id))
                }
                _ => return Err(not_present()),
            }
        }
        "release" => {
            let given = require_id()?;
            match &current {
                Some(l) if l.id.eq_ignore_ascii_case(given) => {
                    db.delete_lease(share.sid, node.file_id)?;
                    (StatusCode::OK, None)
                }
                Some(_) => return Err(mismatch()),
                None => return Err(not_present()),
            }
        }
        "break" => match &current {
            Some(l) => {
                if let Some(g) = given
                    && !l.id.eq_ignore_ascii_case(g)
                {
                    return Err(mismatch());
                }
                db.set_lease(share.sid, node.file_id, &Lease { id: l.id.clone(), broken: true })?;
                (StatusCode::ACCEPTED, None)
            }
            None => return Err(not_present()),
        },
        _ => return Err(StorageError::invalid_header_value("x-ms-lease-action", action)),
    };
    let mut r = Reply::new(status);
    props::etag_headers(&mut r, node.last_modified);
    if let Some(id) = lease_id {
        r.header("x-ms-lease-id", id);
    }
    if status == StatusCode::ACCEPTED {
        r.header("x-ms-lease-time", "0");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::lease_check::valid_lease_id;

    #[test]
    fn lease_ids_are_guids() {
        assert!(valid_lease_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        for bad in [
            "",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "0f8fad5b-d9cb-469f-a165_70867728950e",
        ] {
            assert!(!valid_lease_id(bad), "{bad}");
        }
    }
}
