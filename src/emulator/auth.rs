//! Request authorization: Shared Key and SAS (service SAS for a share or file, account SAS), verified
//! with the same signing code the client uses (`azure::credential`).

use super::clock;
use super::error::{StorageError, StorageResult};
use crate::azure::credential::{DEV_ACCOUNT_NAME, SasFields, shared_key_string_to_sign, sign};
use http::request::Parts;

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

/// Checks that the request is signed with the account key (Shared Key or SAS) and, for a SAS, that it
/// is valid now and grants `need`. `share` and `path` are the decoded share name and path below it.
pub fn check(key: &[u8], parts: &Parts, share: &str, path: &[String], need: Need, now: i64) -> StorageResult<()> {
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
        return check_sas(key, &SasFields::parse(raw_query), share, path, need, now);
    }
    Err(StorageError::no_authentication_information())
}

fn check_sas(key: &[u8], sas: &SasFields, share: &str, path: &[String], need: Need, now: i64) -> StorageResult<()> {
    if !sas.identifier.is_empty() {
        return Err(StorageError::authentication_failed(
            "Stored access policies (si) are not supported by the emulator.",
        ));
    }
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
    let start = if sas.start.is_empty() { None } else { Some(time_field("st", &sas.start)?) };
    if sas.expiry.is_empty() {
        return Err(StorageError::authentication_failed("Signed expiry time (se) is required."));
    }
    let expiry = time_field("se", &sas.expiry)?;
    if now > expiry || start.is_some_and(|s| now < s) {
        return Err(StorageError::authentication_failed(format!(
            "Signature not valid in the specified time frame: Start [{}] - Expiry [{}] - Current [{}]",
            start.map(clock::rfc1123).unwrap_or_default(),
            clock::rfc1123(expiry),
            clock::rfc1123(now)
        )));
    }
    if sas.protocol == "https" {
        return Err(StorageError::protocol_mismatch());
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
    if !need.perms.chars().any(|p| sas.permissions.contains(p)) {
        return Err(StorageError::permission_mismatch());
    }
    Ok(())
}

fn time_field(name: &str, v: &str) -> StorageResult<i64> {
    clock::parse_sas_time(v)
        .ok_or_else(|| StorageError::authentication_failed(format!("The value of {name} ('{v}') is not a valid time.")))
}
