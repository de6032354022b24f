//! Lease Share (`PUT ?restype=share&comp=lease`, on a share or a share snapshot): acquire, renew,
//! change, release and break leases of 15 to 60 seconds or infinite; the checks share operations make
//! against a share's lease; the lease headers of Get Share Properties and List Shares.
//!
//! A lease is one row in `share_leases` (`node::ShareLease`); its state (`leased`, `expired`,
//! `breaking`, `broken`) follows from the request time, so nothing runs in the background.

use super::lease_check::{lease_error, lease_header};
use crate::emulator::clock::TICKS_PER_SECOND;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::node::LeaseState;
use crate::emulator::props;
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, ShareLease, ShareRow};
use http::StatusCode;

/// The state of `share`'s lease at `now`, with the lease row.
pub fn lease_of(db: &Db, share: &ShareRow, now: i64) -> StorageResult<(LeaseState, Option<ShareLease>)> {
    Ok(match db.share_lease(share.sid)? {
        None => (LeaseState::Available, None),
        Some(l) => (l.state(now), Some(l)),
    })
}

/// True while a lease holds the share (`leased` or `breaking`).
fn active(state: LeaseState) -> bool {
    matches!(state, LeaseState::Leased | LeaseState::Breaking)
}

/// Checks a share operation against the share's lease. `required`: the operation needs the lease id
/// when the share is leased (Delete Share); otherwise an `x-ms-lease-id`, when given, must name the
/// active lease (Get/Set Share Properties, Set Share Metadata, Set Share ACL).
pub fn check(db: &Db, share: &ShareRow, req: &Req, required: bool) -> StorageResult<()> {
    let given = lease_header(req, "x-ms-lease-id")?;
    let (state, lease) = lease_of(db, share, req.now)?;
    let held = lease.filter(|_| active(state));
    match (held, given) {
        (None, None) => Ok(()),
        (Some(_), None) if !required => Ok(()),
        (Some(_), None) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseIdMissing",
            "There is currently a lease on the share and no lease ID was specified in the request.",
        )),
        (Some(l), Some(g)) if l.id.eq_ignore_ascii_case(g) => Ok(()),
        (Some(_), Some(_)) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseIdMismatchWithShareOperation",
            "The lease ID specified did not match the lease ID for the share.",
        )),
        (None, Some(_)) => Err(lease_error(
            StatusCode::PRECONDITION_FAILED,
            "LeaseNotPresentWithShareOperation",
            "There is currently no lease on the share.",
        )),
    }
}

/// True if share version `share` has an active lease at `now`.
pub fn is_leased(db: &Db, share: &ShareRow, now: i64) -> StorageResult<bool> {
    Ok(active(lease_of(db, share, now)?.0))
}

/// `(state, status, duration)` as the lease headers and listing elements spell them; no duration
/// unless leased.
pub fn lease_words(
    state: LeaseState,
    lease: Option<&ShareLease>,
) -> (&'static str, &'static str, Option<&'static str>) {
    match state {
        LeaseState::Available => ("available", "unlocked", None),
        LeaseState::Expired => ("expired", "unlocked", None),
        LeaseState::Broken => ("broken", "unlocked", None),
        LeaseState::Breaking => ("breaking", "locked", None),
        LeaseState::Leased => {
            let infinite = lease.is_some_and(|l| l.duration_secs < 0);
            ("leased", "locked", Some(if infinite { "infinite" } else { "fixed" }))
        }
    }
}

/// Adds `x-ms-lease-state`, `-status` and (when leased) `-duration` for `share`.
pub fn state_headers(db: &Db, r: &mut Reply, share: &ShareRow, now: i64) -> StorageResult<()> {
    let (state, lease) = lease_of(db, share, now)?;
    let (state, status, duration) = lease_words(state, lease.as_ref());
    r.header("x-ms-lease-state", state);
    r.header("x-ms-lease-status", status);
    if let Some(d) = duration {
        r.header("x-ms-lease-duration", d);
    }
    Ok(())
}

/// `x-ms-lease-duration`: -1 (infinite) or 15 to 60 seconds.
fn duration_header(req: &Req) -> StorageResult<i64> {
    let v = req
        .header("x-ms-lease-duration")
        .ok_or_else(|| StorageError::missing_required_header("x-ms-lease-duration"))?;
    match v.parse::<i64>() {
        Ok(d) if d == -1 || (15..=60).contains(&d) => Ok(d),
        _ => Err(StorageError::invalid_header_value("x-ms-lease-duration", v)),
    }
}

/// When a lease of `duration_secs` taken at `now` runs out.
fn expiry(duration_secs: i64, now: i64) -> Option<i64> {
    (duration_secs >= 0).then(|| now + duration_secs * TICKS_PER_SECOND)
}

/// Lease Share.
pub fn lease_share(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let action =
        req.header("x-ms-lease-action").ok_or_else(|| StorageError::missing_required_header("x-ms-lease-action"))?;
    let now = req.now;
    let (state, current) = lease_of(db, &share, now)?;
    let given = lease_header(req, "x-ms-lease-id")?;
    let proposed = lease_header(req, "x-ms-proposed-lease-id")?;
    let conflict = |code: &'static str, message: &str| lease_error(StatusCode::CONFLICT, code, message);
    let not_present = || conflict("LeaseNotPresentWithLeaseOperation", "There is currently no lease on the share.");
    let mismatch = || {
        conflict(
            "LeaseIdMismatchWithLeaseOperation",
            "The lease ID specified did not match the lease ID for the share.",
        )
    };
    let require_id = || given.ok_or_else(|| StorageError::missing_required_header("x-ms-lease-id"));
    let same = |id: &str| current.as_ref().is_some_and(|l| l.id.eq_ignore_ascii_case(id));
    let mut r;
    match action.to_ascii_lowercase().as_str() {
        "acquire" => {
            let duration_secs = duration_header(req)?;
            let id = proposed.map(str::to_ascii_lowercase).unwrap_or_else(crate::emulator::request::new_guid);
            match state {
                LeaseState::Breaking => {
                    return Err(conflict(
                        "LeaseIsBreakingAndCannotBeAcquired",
                        "There is already a breaking lease on the share.",
                    ));
                }
                LeaseState::Leased if !same(&id) => {
                    return Err(conflict("LeaseAlreadyPresent", "There is already a lease present."));
                }
                _ => {}
            }
            db.set_share_lease(
                share.sid,
                &ShareLease { id: id.clone(), duration_secs, expires: expiry(duration_secs, now), broken_at: None },
            )?;
            r = Reply::new(StatusCode::CREATED);
            r.header("x-ms-lease-id", id);
        }
        "renew" => {
            let id = require_id()?;
            let lease = current.clone().ok_or_else(not_present)?;
            match state {
                LeaseState::Breaking | LeaseState::Broken => {
                    return Err(conflict(
                        "LeaseIsBrokenAndCannotBeRenewed",
                        "The lease ID matched, but the lease has been broken explicitly and cannot be renewed.",
                    ));
                }
                _ if !same(id) => return Err(mismatch()),
                _ => {}
            }
            db.set_share_lease(share.sid, &ShareLease { expires: expiry(lease.duration_secs, now), ..lease.clone() })?;
            r = Reply::new(StatusCode::OK);
            r.header("x-ms-lease-id", lease.id);
        }
        "change" => {
            let id = require_id()?;
            let to = proposed.ok_or_else(|| StorageError::missing_required_header("x-ms-proposed-lease-id"))?;
            let lease = match state {
                LeaseState::Leased => current.clone().expect("a leased share has a lease row"),
                LeaseState::Breaking => {
                    return Err(conflict(
                        "LeaseIsBreakingAndCannotBeChanged",
                        "The lease ID matched, but the lease is currently in breaking state and cannot be changed.",
                    ));
                }
                _ => return Err(not_present()),
            };
            if !same(id) && !same(to) {
                return Err(mismatch());
            }
            let to = to.to_ascii_lowercase();
            db.set_share_lease(share.sid, &ShareLease { id: to.clone(), ..lease })?;
            r = Reply::new(StatusCode::OK);
            r.header("x-ms-lease-id", to);
        }
        "release" => {
            let id = require_id()?;
            if current.is_none() {
                return Err(not_present());
            }
            if !same(id) {
                return Err(mismatch());
            }
            db.delete_share_lease(share.sid)?;
            r = Reply::new(StatusCode::OK);
            r.header("x-ms-lease-id", id.to_ascii_lowercase());
        }
        "break" => {
            if let Some(g) = given
                && current.is_some()
                && !same(g)
            {
                return Err(mismatch());
            }
            let period = match req.header("x-ms-lease-break-period") {
                None => None,
                Some(v) => match v.parse::<i64>() {
                    Ok(p) if (0..=60).contains(&p) => Some(p * TICKS_PER_SECOND),
                    _ => return Err(StorageError::invalid_header_value("x-ms-lease-break-period", v)),
                },
            };
            let lease = match state {
                LeaseState::Leased | LeaseState::Breaking | LeaseState::Broken => {
                    current.clone().expect("a lease in this state has a row")
                }
                LeaseState::Available | LeaseState::Expired => return Err(not_present()),
            };
            let broken_at = match state {
                LeaseState::Broken => lease.broken_at.expect("a broken lease has a break time"),
                _ => {
                    // A fixed lease breaks when it would have run out, or after the period if sooner;
                    // an infinite one after the period (at once without one).
                    let remaining = lease.expires.map(|e| e - now);
                    let wait = match (remaining, period) {
                        (Some(rem), Some(p)) => rem.min(p),
                        (Some(rem), None) => rem,
                        (None, Some(p)) => p,
                        (None, None) => 0,
                    };
                    let at = now + wait.max(0);
                    lease.broken_at.map_or(at, |b| b.min(at))
                }
            };
            db.set_share_lease(share.sid, &ShareLease { broken_at: Some(broken_at), ..lease })?;
            r = Reply::new(StatusCode::ACCEPTED);
            let secs = ((broken_at - now).max(0) + TICKS_PER_SECOND - 1) / TICKS_PER_SECOND;
            r.header("x-ms-lease-time", secs.to_string());
        }
        _ => return Err(StorageError::invalid_header_value("x-ms-lease-action", action)),
    }
    props::etag_headers(&mut r, share.last_modified);
    Ok(r)
}
