//! Service- and share-level operations: List Shares, Create/Delete Share, properties, metadata,
//! snapshots, permissions, statistics. Share leases are in `share_lease`.

use super::share_lease;
use super::tree::validate_share_name;
use crate::emulator::clock;
use crate::emulator::error::{StorageError, StorageResult};
use crate::emulator::props;
use crate::emulator::request::{Reply, Req};
use crate::emulator::store::{Db, Node, ROOT_FILE_ID, ShareProps, ShareRow};
use crate::emulator::xml;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use http::StatusCode;
use std::fmt::Write as _;

/// Default quota of a new share, GiB.
const DEFAULT_QUOTA: i64 = 5120;
/// Largest quota, GiB (100 TiB).
const MAX_QUOTA: i64 = 102_400;
/// Default and largest page of a listing.
pub const MAX_RESULTS: usize = 5000;

/// `maxresults`: 1..; values above 5000 are capped at 5000 as Azure does.
pub fn max_results(req: &Req) -> StorageResult<usize> {
    match req.query("maxresults") {
        None => Ok(MAX_RESULTS),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(MAX_RESULTS)),
            Ok(_) => Err(StorageError::out_of_range_query_parameter("maxresults", v)),
            Err(_) => Err(StorageError::invalid_query_parameter("maxresults", v, "Not an integer.")),
        },
    }
}

fn quota_header(req: &Req) -> StorageResult<Option<i64>> {
    match req.header("x-ms-share-quota") {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(q) if (1..=MAX_QUOTA).contains(&q) => Ok(Some(q)),
            _ => Err(StorageError::invalid_header_value("x-ms-share-quota", v)),
        },
    }
}

/// Access tiers a share may have (`x-ms-access-tier`), as Azure spells them.
const ACCESS_TIERS: &[&str] = &["TransactionOptimized", "Hot", "Cool", "Premium"];
/// Root squash settings of NFS shares (`x-ms-root-squash`).
const ROOT_SQUASH: &[&str] = &["NoRootSquash", "RootSquash", "AllSquash"];

/// A header whose value must be one of `allowed` (compared ignoring ASCII case), in Azure's spelling.
fn one_of(req: &Req, name: &str, allowed: &[&'static str]) -> StorageResult<Option<&'static str>> {
    match req.header(name) {
        None => Ok(None),
        Some(v) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())) {
            Some(a) => Ok(Some(a)),
            None => Err(StorageError::invalid_header_value(name, v)),
        },
    }
}

/// Applies the property headers of Create Share (`creating`) or Set Share Properties to `props`.
/// Protocols can only be chosen at creation; root squash and snapshot directory access are for NFS
/// shares.
fn apply_share_props(req: &Req, props: &mut ShareProps, creating: bool) -> StorageResult<()> {
    if let Some(tier) = one_of(req, "x-ms-access-tier", ACCESS_TIERS)? {
        if !creating {
            props.access_tier_change_time = Some(req.now);
        }
        props.access_tier = tier.to_string();
    }
    if creating && let Some(p) = one_of(req, "x-ms-enabled-protocols", &["SMB", "NFS"])? {
        props.protocols = p.to_string();
    }
    let nfs = props.protocols == "NFS";
    if let Some(squash) = one_of(req, "x-ms-root-squash", ROOT_SQUASH)? {
        if !nfs {
            return Err(StorageError::invalid_header_value("x-ms-root-squash", squash)
                .with("Reason", "Root squash applies to NFS shares only."));
        }
        props.root_squash = Some(squash.to_string());
    }
    if req.header("x-ms-enable-snapshot-virtual-directory-access").is_some() {
        props.snapshot_dir_access = Some(req.bool_header("x-ms-enable-snapshot-virtual-directory-access")?);
    }
    if creating && nfs && props.root_squash.is_none() {
        props.root_squash = Some("NoRootSquash".into());
    }
    Ok(())
}

/// What a provisioned (premium, v1) share of `quota` GiB gets, by Azure's published formulas: the
/// values Get Share Properties and List Shares report.
struct Provisioned {
    iops: i64,
    burst_iops: i64,
    max_burst_credits: i64,
    ingress_mibps: i64,
    egress_mibps: i64,
    bandwidth_mibps: i64,
}

fn provisioned(quota: i64) -> Provisioned {
    let ceil_pct = |pct: i64| (quota * pct + 99) / 100;
    let iops = (3000 + quota).min(100_000);
    let burst_iops = (3 * quota).clamp(10_000, 100_000);
    let ingress_mibps = 40 + ceil_pct(4);
    let egress_mibps = 60 + ceil_pct(6);
    Provisioned {
        iops,
        burst_iops,
        max_burst_credits: (burst_iops - iops).max(0) * 3600,
        ingress_mibps,
        egress_mibps,
        bandwidth_mibps: (ingress_mibps + egress_mibps).min(10_340),
    }
}

/// List Shares: sorted by name, each share followed by its snapshots when `include=snapshots`.
pub fn list(db: &Db, req: &Req) -> StorageResult<Reply> {
    let prefix = req.query("prefix").unwrap_or("");
    let limit = max_results(req)?;
    let include = req.query("include").unwrap_or("");
    let with_snapshots = include.split(',').any(|s| s.trim().eq_ignore_ascii_case("snapshots"));
    let with_metadata = include.split(',').any(|s| s.trim().eq_ignore_ascii_case("metadata"));
    let from = match req.query("marker") {
        None | Some("") => (String::new(), String::new()),
        Some(m) => decode_share_marker(m)
            .ok_or_else(|| StorageError::invalid_query_parameter("marker", m, "Not a marker this service returned."))?,
    };
    let mut rows = db.list_shares(prefix, (&from.0, &from.1), limit + 1, with_snapshots)?;
    // The marker names the first share version of the next page.
    let next_marker =
        if rows.len() > limit { rows.pop().map(|s| encode_share_marker(&s.name, &s.snapshot)) } else { None };
    let mut out = String::with_capacity(256 + rows.len() * 256);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}/\">",
        xml::escape(&req.endpoint)
    );
    if let Some(p) = req.query("prefix") {
        xml::push_element(&mut out, "Prefix", p);
    }
    if let Some(m) = req.query("marker") {
        xml::push_element(&mut out, "Marker", m);
    }
    if let Some(m) = req.query("maxresults") {
        xml::push_element(&mut out, "MaxResults", m);
    }
    out.push_str("<Shares>");
    for s in &rows {
        out.push_str("<Share>");
        xml::push_element(&mut out, "Name", &s.name);
        if !s.snapshot.is_empty() {
            xml::push_element(&mut out, "Snapshot", &s.snapshot);
        }
        let (state, lease) = share_lease::lease_of(db, s, req.now)?;
        let (lease_state, lease_status, lease_duration) = share_lease::lease_words(state, lease.as_ref());
        let _ = write!(
            out,
            "<Properties><Last-Modified>{}</Last-Modified><Etag>{}</Etag><Quota>{}</Quota><AccessTier>{}</AccessTier><EnabledProtocols>{}</EnabledProtocols><LeaseStatus>{lease_status}</LeaseStatus><LeaseState>{lease_state}</LeaseState>",
            clock::rfc1123(s.last_modified),
            xml::escape(&clock::etag(s.last_modified)),
            s.quota,
            s.props.access_tier,
            s.props.protocols
        );
        if let Some(d) = lease_duration {
            let _ = write!(out, "<LeaseDuration>{d}</LeaseDuration>");
        }
        let p = provisioned(s.quota);
        let _ = write!(
            out,
            "<ProvisionedIops>{}</ProvisionedIops><ProvisionedIngressMBps>{}</ProvisionedIngressMBps><ProvisionedEgressMBps>{}</ProvisionedEgressMBps><ProvisionedBandwidthMiBps>{}</ProvisionedBandwidthMiBps>",
            p.iops, p.ingress_mibps, p.egress_mibps, p.bandwidth_mibps
        );
        if let Some(t) = s.props.access_tier_change_time {
            let _ = write!(out, "<AccessTierChangeTime>{}</AccessTierChangeTime>", clock::rfc1123(t));
        }
        if let Some(r) = &s.props.root_squash {
            let _ = write!(out, "<RootSquash>{r}</RootSquash>");
        }
        if let Some(a) = s.props.snapshot_dir_access {
            let _ = write!(out, "<EnableSnapshotVirtualDirectoryAccess>{a}</EnableSnapshotVirtualDirectoryAccess>");
        }
        out.push_str("</Properties>");
        if with_metadata {
            out.push_str("<Metadata>");
            for (k, v) in &s.metadata {
                xml::push_element(&mut out, k, v);
            }
            out.push_str("</Metadata>");
        }
        out.push_str("</Share>");
    }
    out.push_str("</Shares>");
    match next_marker {
        Some(m) => xml::push_element(&mut out, "NextMarker", &m),
        None => out.push_str("<NextMarker />"),
    }
    out.push_str("</EnumerationResults>");
    Ok(Reply::new(StatusCode::OK).xml(out))
}

fn encode_share_marker(name: &str, snapshot: &str) -> String {
    B64URL.encode(format!("s1\n{name}\n{snapshot}"))
}

fn decode_share_marker(m: &str) -> Option<(String, String)> {
    let raw = String::from_utf8(B64URL.decode(m).ok()?).ok()?;
    let mut parts = raw.split('\n');
    if parts.next()? != "s1" {
        return None;
    }
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

/// Create Share: a new share with an empty root directory.
pub fn create(db: &Db, req: &Req) -> StorageResult<Reply> {
    validate_share_name(&req.share)?;
    let quota = quota_header(req)?.unwrap_or(DEFAULT_QUOTA);
    let metadata = props::metadata(req)?.unwrap_or_default();
    let mut share_props = ShareProps::default();
    apply_share_props(req, &mut share_props, true)?;
    if db.share(&req.share, "")?.is_some() {
        return Err(StorageError::share_already_exists());
    }
    let now = req.now;
    let root = Node {
        file_id: ROOT_FILE_ID,
        parent_id: 0,
        name: String::new(),
        is_dir: true,
        attributes: props::ATTR_DIRECTORY,
        creation_time: now,
        last_write_time: now,
        change_time: now,
        last_modified: now,
        permission_key: props::default_permission_key(db, &req.share)?,
        ..Default::default()
    };
    let share = db.create_share(&req.share, quota, &metadata, &share_props, now, &root)?;
    let mut r = Reply::new(StatusCode::CREATED);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r)
}

/// Get Share Properties (live share or snapshot).
pub fn properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    share_lease::check(db, &share, req, false)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    props::metadata_headers(&mut r, &share.metadata);
    share_lease::state_headers(db, &mut r, &share, req.now)?;
    r.header("x-ms-share-quota", share.quota.to_string());
    r.header("x-ms-access-tier", share.props.access_tier.clone());
    if let Some(t) = share.props.access_tier_change_time {
        r.header("x-ms-access-tier-change-time", clock::rfc1123(t));
    }
    r.header("x-ms-enabled-protocols", share.props.protocols.clone());
    if let Some(squash) = &share.props.root_squash {
        r.header("x-ms-root-squash", squash.clone());
    }
    if let Some(a) = share.props.snapshot_dir_access {
        r.header("x-ms-enable-snapshot-virtual-directory-access", a.to_string());
    }
    let p = provisioned(share.quota);
    r.header("x-ms-share-provisioned-iops", p.iops.to_string());
    r.header("x-ms-share-provisioned-ingress-mbps", p.ingress_mibps.to_string());
    r.header("x-ms-share-provisioned-egress-mbps", p.egress_mibps.to_string());
    r.header("x-ms-share-provisioned-bandwidth-mibps", p.bandwidth_mibps.to_string());
    r.header("x-ms-share-included-burst-iops", p.burst_iops.to_string());
    r.header("x-ms-share-max-burst-credits-for-iops", p.max_burst_credits.to_string());
    Ok(r)
}

/// Delete Share: the live share (with its snapshots only if `x-ms-delete-snapshots: include`), or
/// one snapshot when `sharesnapshot` is given.
pub fn delete(db: &Db, req: &Req) -> StorageResult<Reply> {
    if let Some(snap) = req.snapshot()? {
        let s = db.share_at(&req.share, Some(&snap))?;
        share_lease::check(db, &s, req, true)?;
        db.delete_share(s.sid)?;
        return Ok(Reply::new(StatusCode::ACCEPTED));
    }
    let live = db.live_share(&req.share)?;
    if live.virt.is_some() {
        return Err(StorageError::virtual_share_read_only());
    }
    share_lease::check(db, &live, req, true)?;
    let snapshots = db.snapshots_of(&req.share)?;
    if !snapshots.is_empty() {
        let include_leased = match req.header("x-ms-delete-snapshots") {
            Some(v) if v.eq_ignore_ascii_case("include") => false,
            Some(v) if v.eq_ignore_ascii_case("include-leased") => true,
            Some(v) => return Err(StorageError::invalid_header_value("x-ms-delete-snapshots", v)),
            None => return Err(StorageError::share_has_snapshots()),
        };
        if !include_leased {
            for s in &snapshots {
                if share_lease::is_leased(db, s, req.now)? {
                    return Err(StorageError::new(
                        StatusCode::CONFLICT,
                        "DeleteShareWhenSnapshotLeased",
                        "Unable to delete share because one or more share snapshots have active leases.",
                    ));
                }
            }
        }
        for s in snapshots {
            db.delete_share(s.sid)?;
        }
    }
    db.delete_share(live.sid)?;
    db.delete_permissions(&req.share)?;
    Ok(Reply::new(StatusCode::ACCEPTED))
}

/// Set Share Metadata: replaces all metadata.
pub fn set_metadata(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let mut share = db.live_share(&req.share)?;
    share_lease::check(db, &share, req, false)?;
    share.metadata = props::metadata(req)?.unwrap_or_default();
    share.last_modified = req.now;
    db.update_share(&share)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r)
}

/// Set Share Properties: quota, access tier, root squash (NFS), snapshot directory access.
pub fn set_properties(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let mut share = db.live_share(&req.share)?;
    share_lease::check(db, &share, req, false)?;
    if let Some(q) = quota_header(req)? {
        share.quota = q;
    }
    apply_share_props(req, &mut share.props, false)?;
    share.last_modified = req.now;
    db.update_share(&share)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r)
}

/// Snapshot Share: freezes the live share; the snapshot id is the request time with 7 fractional
/// digits (unique, since request times are). A virtual share's snapshot records the live generation,
/// and the live share moves on to the next one.
pub fn snapshot(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    let live = db.live_share(&req.share)?;
    if let Some(v) = &live.virt
        && v.generation >= crate::emulator::virtual_share::MAX_GENERATION
    {
        return Err(StorageError::out_of_range_input("The virtual share has reached its last generation."));
    }
    let id = clock::iso7(req.now);
    let mut snap = db.create_snapshot(&live, &id)?;
    if live.virt.is_some() {
        db.advance_generation(live.sid)?;
    }
    if let Some(m) = props::metadata(req)? {
        snap.metadata = m;
        db.update_share(&snap)?;
    }
    let mut r = Reply::new(StatusCode::CREATED);
    r.header("x-ms-snapshot", id);
    props::etag_headers(&mut r, snap.last_modified);
    Ok(r)
}

/// Create Permission: JSON body `{"permission": "<SDDL>"}`; the same SDDL always gets the same key.
pub fn create_permission(db: &Db, req: &Req) -> StorageResult<Reply> {
    req.require_live()?;
    db.live_share(&req.share)?;
    let body: serde_json::Value = serde_json::from_slice(&req.body)
        .map_err(|e| StorageError::invalid_input(&format!("The body is not JSON: {e}")))?;
    let sddl = body
        .get("permission")
        .and_then(|v| v.as_str())
        .ok_or_else(|| StorageError::invalid_input("The body has no \"permission\" string."))?;
    if let Some(f) = body.get("format").and_then(|v| v.as_str())
        && !f.eq_ignore_ascii_case("sddl")
    {
        return Err(StorageError::invalid_input("Only the sddl permission format is supported by the emulator."));
    }
    props::validate_sddl(sddl).map_err(|_| StorageError::invalid_input("The permission is not an SDDL string."))?;
    let key = props::permission_key(sddl);
    db.put_permission(&req.share, &key, sddl)?;
    let mut r = Reply::new(StatusCode::CREATED);
    r.header("x-ms-file-permission-key", key);
    Ok(r)
}

/// Get Permission: the SDDL for `x-ms-file-permission-key`, as JSON.
pub fn get_permission(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let key = req
        .header("x-ms-file-permission-key")
        .ok_or_else(|| StorageError::missing_required_header("x-ms-file-permission-key"))?;
    let sddl = db
        .permission(&share.name, key)?
        .ok_or_else(|| StorageError::invalid_header_value("x-ms-file-permission-key", key))?;
    let mut r = Reply::new(StatusCode::OK);
    r.header("Content-Type", "application/json; charset=utf-8");
    r.body = serde_json::json!({ "permission": sddl }).to_string().into();
    Ok(r)
}

/// Get Share Stats: the bytes used by the share's files.
pub fn stats(db: &Db, req: &Req) -> StorageResult<Reply> {
    let share: ShareRow = db.share_at(&req.share, req.snapshot()?.as_deref())?;
    let used = super::tree::usage(db, &share)?;
    let mut r = Reply::new(StatusCode::OK);
    props::etag_headers(&mut r, share.last_modified);
    Ok(r.xml(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><ShareStats><ShareUsageBytes>{used}</ShareUsageBytes></ShareStats>"
    )))
}
