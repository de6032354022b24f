//! Request authorization: Shared Key and SAS (service SAS for a share or file, with or without a stored
//! access policy; account SAS), verified with the same signing code the client uses
//! (`azure::credential`). A SAS's time window, protocol (`spr`), IP range (`sip`) and permissions
//! are checked.

use super::clock;
use super::error::{StorageError, StorageResult};
use super::store::AccessPolicy;
use crate::azure::credential::{DEV_ACCOUNT_NAME, SasFields, shared_key_string_to_sign, sign};
use http::request::Parts;
use std::net::{IpAddr, Ipv4Addr};

/// The resource level of an operation, for account SAS `srt` (`s` service, `c` share, `o` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Service,
    Share,
    Object,
}

/// What an operation needs from a SAS: any one of `perms` (e.g. `"cw"`: create or write) at `level`.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub perms: &'static str,
    pub level: Level,
}

/// Where a request came from, for a SAS's `sip` (IP range) and `spr` (protocol).
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// True if the request came over TLS.
    pub https: bool,
}

/// What a request asks for: the decoded share name and path below it, what its operation needs, the
/// time it arrived (Unix nanoseconds, the emulator's clock) and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub share: &'a str,
    pub path: &'a [String],
    pub need: Need,
    pub now: i64,
    pub origin: Origin,
}

/// Checks that the request is signed with the account key (Shared Key or SAS) and, for a SAS, that it
/// is valid at `access.now`, from `access.origin`, and grants `access.need`; `policy` looks up a stored access policy of the share by id (for a SAS with `si`).
pub fn check(
    key: &[u8],
    parts: &Parts,
    access: Access,
    policy: impl FnOnce(&str) -> StorageResult<Option<AccessPolicy>>,
) -> StorageResult<()> {
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    if let Some(auth) = parts.headers.get("authorization") {
        let auth = auth.to_str().unwrap_or("");
        let Some((scheme, cred)) = auth.split_once(' ') else {
            return Err(StorageError::authentication_failed(format!(
                "The authorization header '{auth}' is not in a recognized format."
            )));
        };
        if scheme != "SharedKey" {
            return Err(StorageError::authentication_failed(format!(
                "Authentication scheme {scheme} is not supported."
            )));
        }
        let (account, given) = cred.split_once(':').unwrap_or((cred, ""));
        if account != DEV_ACCOUNT_NAME {
            return Err(StorageError::authentication_failed(format!(
                "The account {account} does not exist on this emulator."
            )));
        }
        if !parts.headers.contains_key("x-ms-date") && !parts.headers.contains_key("date") {
            return Err(StorageError::authentication_failed("Request date header not specified."));
        }
        let sts =
            shared_key_string_to_sign(parts.method.as_str(), DEV_ACCOUNT_NAME, raw_path, raw_query, &parts.headers);
        if !crate::azure::credential::same_secret(&sign(key, &sts), given) {
            return Err(StorageError::authentication_failed(format!(
                "The MAC signature found in the HTTP request '{given}' is not the same as any computed signature. Server used following string to sign: '{sts}'."
            )));
        }
        return Ok(());
    }
    if raw_query.split('&').any(|p| p.starts_with("sig=")) {
        return check_sas(key, &SasFields::parse(raw_query), access, policy);
    }
    Err(StorageError::no_authentication_information())
}

fn check_sas(
    key: &[u8],
    sas: &SasFields,
    access: Access,
    policy: impl FnOnce(&str) -> StorageResult<Option<AccessPolicy>>,
) -> StorageResult<()> {
    let Access { share, path, need, now, origin } = access;
    let stored = if sas.identifier.is_empty() {
        None
    } else if sas.is_account_sas() {
        return Err(StorageError::authentication_failed("An account SAS cannot name a stored access policy (si)."));
    } else {
        Some(policy(&sas.identifier)?.ok_or_else(|| {
            StorageError::authentication_failed(format!(
                "The stored access policy '{}' does not exist on share '{share}'.",
                sas.identifier
            ))
        })?)
    };
    let (sts, resource) = if sas.is_account_sas() {
        (sas.account_string_to_sign(DEV_ACCOUNT_NAME), None)
    } else {
        let resource = match sas.resource.as_str() {
            "s" => share.to_string(),
            "f" => format!("{share}/{}", path.join("/")),
            other => {
                return Err(StorageError::authentication_failed(format!(
                    "The signed resource '{other}' is not supported."
                )));
            }
        };
        (sas.service_string_to_sign(DEV_ACCOUNT_NAME, &resource), Some(resource))
    };
    if !crate::azure::credential::same_secret(&sign(key, &sts), &sas.signature) {
        return Err(StorageError::authentication_failed(format!(
            "Signature did not match. String to sign used was {}",
            sts.replace('\n', "\\n")
        )));
    }
    // Each of start, expiry and permissions comes from the SAS or from its stored policy, never both.
    let field = |name: &str, in_sas: &str, in_policy: Option<&str>| -> StorageResult<String> {
        match in_policy.filter(|v| !v.is_empty()) {
            Some(_) if !in_sas.is_empty() => Err(StorageError::authentication_failed(format!(
                "{name} is given both by the SAS and by its stored access policy."
            ))),
            Some(v) => Ok(v.to_string()),
            None => Ok(in_sas.to_string()),
        }
    };
    let start = field("Signed start (st)", &sas.start, stored.as_ref().map(|p| p.start.as_str()))?;
    let expiry = field("Signed expiry (se)", &sas.expiry, stored.as_ref().map(|p| p.expiry.as_str()))?;
    let permissions =
        field("Signed permissions (sp)", &sas.permissions, stored.as_ref().map(|p| p.permission.as_str()))?;
    let start = if start.is_empty() { None } else { Some(time_field("st", &start)?) };
    if expiry.is_empty() {
        return Err(StorageError::authentication_failed("Signed expiry time (se) is required."));
    }
    let expiry = time_field("se", &expiry)?;
    if now > expiry || start.is_some_and(|s| now < s) {
        return Err(StorageError::authentication_failed(format!(
            "Signature not valid in the specified time frame: Start [{}] - Expiry [{}] - Current [{}]",
            start.map(clock::rfc1123).unwrap_or_default(),
            clock::rfc1123(expiry),
            clock::rfc1123(now)
        )));
    }
    if sas.protocol == "https" && !origin.https {
        return Err(StorageError::protocol_mismatch());
    }
    if !sas.ip.is_empty() {
        let (low, high) = ip_range(&sas.ip)?;
        let ip = origin.ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        });
        match ip {
            Some(IpAddr::V4(v4)) if low <= v4 && v4 <= high => {}
            other => {
                return Err(StorageError::new(
                    http::StatusCode::FORBIDDEN,
                    "AuthorizationSourceIPMismatch",
                    format!(
                        "This request is not authorized to perform this operation using this source IP {}.",
                        other.map(|ip| ip.to_string()).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if sas.is_account_sas() {
        if !sas.services.contains('f') {
            return Err(StorageError::service_mismatch());
        }
        let srt = match need.level {
            Level::Service => 's',
            Level::Share => 'c',
            Level::Object => 'o',
        };
        if !sas.resource_types.contains(srt) {
            return Err(StorageError::resource_type_not_authorized());
        }
    } else if need.level == Level::Service || (resource.is_some() && sas.resource == "f" && need.level != Level::Object)
    {
        return Err(StorageError::resource_type_not_authorized());
    }
    if !need.perms.chars().any(|p| permissions.contains(p)) {
        return Err(StorageError::permission_mismatch());
    }
    Ok(())
}

/// A SAS `sip`: one IPv4 address or `low-high`, inclusive.
fn ip_range(v: &str) -> StorageResult<(Ipv4Addr, Ipv4Addr)> {
    let bad = || StorageError::authentication_failed(format!("The signed IP range (sip) '{v}' is not valid."));
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let low: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let high: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if low > high {
        return Err(bad());
    }
    Ok((low, high))
}

fn time_field(name: &str, v: &str) -> StorageResult<i64> {
    clock::parse_sas_time(v)
        .ok_or_else(|| StorageError::authentication_failed(format!("The value of {name} ('{v}') is not a valid time.")))
}
