//! Shares' Azure connection settings. Embedded mode stores them in `{repo}/.afb/shares.json` (the
//! repository's control area). The secret (connection string or SAS URL) is stored and never returned:
//! reads answer only the account name, the endpoint and whether a secret is set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What a client sends to set a share's source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    pub connection_string: Option<String>,
    pub sas_url: Option<String>,
    /// The share's name in Azure, if it differs from the share id.
    pub azure_share: Option<String>,
}

/// What is returned: never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub configured: bool,
    pub account_name: Option<String>,
    pub endpoint: Option<String>,
    pub azure_share: Option<String>,
    /// `connection_string` or `sas_url`.
    pub credential: Option<&'static str>,
}

pub struct Settings {
    file: PathBuf,
    lock: Mutex<()>,
    /// Host patterns a tenant may name as a source (see [`host_allowed`]); the operator may name any.
    tenant_endpoints: Mutex<Vec<String>>,
}

/// The hosts a tenant may register a share source on unless the operator allows more (`afb serve
/// --allow-endpoint`): Azure's public, China and US Government file endpoints. Anything else (a private
/// address, a loopback emulator) only the operator can register, so a tenant cannot make the workers
/// connect into the operator's network.
pub const DEFAULT_TENANT_ENDPOINTS: [&str; 3] =
    ["*.file.core.windows.net", "*.file.core.chinacloudapi.cn", "*.file.core.usgovcloudapi.net"];

/// The host a source connects to, with its port when one is given (`acct.file.core.windows.net`,
/// `127.0.0.1:10004`), lower-case.
pub fn source_host(input: &SettingsInput) -> anyhow::Result<String> {
    let cfg = match (&input.connection_string, &input.sas_url) {
        (Some(c), _) => crate::azure::credential::AccountConfig::from_connection_string(c)
            .map_err(|e| anyhow::anyhow!("invalid connection string: {e}"))?,
        (None, Some(u)) => {
            crate::azure::credential::AccountConfig::from_sas_url(u)
                .map_err(|e| anyhow::anyhow!("invalid SAS URL: {e}"))?
                .0
        }
        (None, None) => anyhow::bail!("give exactly one of connection_string and sas_url"),
    };
    let rest = cfg.endpoint.split_once("://").map_or(cfg.endpoint.as_str(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Ok(host.to_ascii_lowercase())
}

/// Does `host` (from [`source_host`]) match a pattern: `*.suffix` (any host below it, no port) or an
/// exact `host` or `host:port`, case-insensitively.
pub fn host_allowed(host: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(suffix) => {
                !host.contains(':') && host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}"))
            }
            None => host == p,
        }
    })
}

fn load(file: &PathBuf) -> anyhow::Result<BTreeMap<String, SettingsInput>> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}: not a settings file", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

fn view(s: Option<&SettingsInput>) -> SettingsView {
    let Some(s) = s else {
        return SettingsView {
            configured: false,
            account_name: None,
            endpoint: None,
            azure_share: None,
            credential: None,
        };
    };
    let (account, endpoint, credential) = if let Some(c) = &s.connection_string {
        let cfg = crate::azure::credential::AccountConfig::from_connection_string(c).ok();
        (
            cfg.as_ref().map(|c| c.account.clone()),
            cfg.as_ref().map(|c| c.endpoint.to_string()),
            Some("connection_string"),
        )
    } else if let Some(u) = &s.sas_url {
        let base = u.split('?').next().unwrap_or_default().to_string();
        (None, Some(base), Some("sas_url"))
    } else {
        (None, None, None)
    };
    SettingsView {
        configured: credential.is_some(),
        account_name: account,
        endpoint,
        azure_share: s.azure_share.clone(),
        credential,
    }
}

impl Settings {
    pub fn new(file: PathBuf) -> Self {
        Settings {
            file,
            lock: Mutex::new(()),
            tenant_endpoints: Mutex::new(DEFAULT_TENANT_ENDPOINTS.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// Let tenants also register sources on these host patterns (see [`host_allowed`]).
    pub fn allow_tenant_endpoints(&self, patterns: &[String]) {
        self.tenant_endpoints.lock().expect("settings lock").extend(patterns.iter().cloned());
    }

    /// `Ok` if a tenant may register `input` as a source; else the host and the patterns allowed.
    pub fn check_tenant_endpoint(&self, input: &SettingsInput) -> anyhow::Result<Result<(), (String, Vec<String>)>> {
        let host = source_host(input)?;
        let allowed = self.tenant_endpoints.lock().expect("settings lock").clone();
        Ok(if host_allowed(&host, &allowed) { Ok(()) } else { Err((host, allowed)) })
    }

    /// A share's stored source, secret included: for workers resolving where to read (never for replies).
    pub fn source(&self, tenant: &str, share: &str) -> anyhow::Result<Option<SettingsInput>> {
        let _g = self.lock.lock().expect("settings lock");
        Ok(load(&self.file)?.remove(&format!("{tenant}/{share}")))
    }

    pub fn get(&self, tenant: &str, share: &str) -> anyhow::Result<SettingsView> {
        let _g = self.lock.lock().expect("settings lock");
        Ok(view(load(&self.file)?.get(&format!("{tenant}/{share}"))))
    }

    /// Every (tenant, share) with stored settings, sorted: registered shares, with or without snapshots.
    pub fn shares(&self) -> anyhow::Result<Vec<(String, String)>> {
        let _g = self.lock.lock().expect("settings lock");
        Ok(load(&self.file)?
            .into_keys()
            .filter_map(|k| k.split_once('/').map(|(t, s)| (t.to_string(), s.to_string())))
            .collect())
    }

    /// Validate and store; returns the redacted view.
    pub fn put(&self, tenant: &str, share: &str, input: SettingsInput) -> anyhow::Result<SettingsView> {
        validate(&input)?;
        let _g = self.lock.lock().expect("settings lock");
        let mut all = load(&self.file)?;
        all.insert(format!("{tenant}/{share}"), input);
        self.store(&all)?;
        Ok(view(all.get(&format!("{tenant}/{share}"))))
    }

    /// Validate and store settings for a share that has none yet: `Ok(None)` (nothing written) if it
    /// already has some. Returns the redacted view.
    pub fn insert_new(&self, tenant: &str, share: &str, input: SettingsInput) -> anyhow::Result<Option<SettingsView>> {
        validate(&input)?;
        let _g = self.lock.lock().expect("settings lock");
        let mut all = load(&self.file)?;
        let key = format!("{tenant}/{share}");
        if all.contains_key(&key) {
            return Ok(None);
        }
        all.insert(key.clone(), input);
        self.store(&all)?;
        Ok(Some(view(all.get(&key))))
    }

    /// Replace the file atomically (write a temporary file, rename). Call with the lock held.
    fn store(&self, all: &BTreeMap<String, SettingsInput>) -> anyhow::Result<()> {
        if let Some(d) = self.file.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(all)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file).with_context(|| format!("replacing {}", self.file.display()))?;
        Ok(())
    }
}

/// Exactly one credential, and it parses.
fn validate(input: &SettingsInput) -> anyhow::Result<()> {
    match (&input.connection_string, &input.sas_url) {
        (Some(c), None) => {
            crate::azure::credential::AccountConfig::from_connection_string(c)
                .map_err(|e| anyhow::anyhow!("invalid connection string: {e}"))?;
        }
        (None, Some(u)) => {
            crate::azure::credential::AccountConfig::from_sas_url(u)
                .map_err(|e| anyhow::anyhow!("invalid SAS URL: {e}"))?;
        }
        _ => anyhow::bail!("give exactly one of connection_string and sas_url"),
    }
    if let Some(a) = &input.azure_share
        && !crate::azure::is_valid_share_name(a)
    {
        anyhow::bail!("azure_share {a:?}: {SHARE_NAME_RULE}");
    }
    Ok(())
}

/// Azure's share-name rule in words, for error messages.
pub const SHARE_NAME_RULE: &str = "Azure share names are 3-63 characters of lower-case letters, digits and single hyphens, starting and ending with a letter or digit";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_suffix_and_exact_patterns_only() {
        let p: Vec<String> = ["*.file.core.windows.net", "files.internal:8443"].iter().map(|s| s.to_string()).collect();
        assert!(host_allowed("acct.file.core.windows.net", &p));
        assert!(host_allowed("files.internal:8443", &p));
        for h in [
            "file.core.windows.net",
            "evil.com",
            "acct.file.core.windows.net.evil.com",
            "acct.file.core.windows.net:444",
            "files.internal",
            "127.0.0.1:10004",
        ] {
            assert!(!host_allowed(h, &p), "{h}");
        }
        let cs = |e: &str| SettingsInput {
            connection_string: Some(format!(
                "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=AAAA;FileEndpoint={e}"
            )),
            sas_url: None,
            azure_share: None,
        };
        assert_eq!(source_host(&cs("http://127.0.0.1:10004/devstoreaccount1")).unwrap(), "127.0.0.1:10004");
        assert_eq!(source_host(&cs("https://Acct.File.Core.Windows.Net")).unwrap(), "acct.file.core.windows.net");
    }
}
