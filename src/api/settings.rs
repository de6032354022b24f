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
        return SettingsView { configured: false, account_name: None, endpoint: None, azure_share: None, credential: None };
    };
    let (account, endpoint, credential) = if let Some(c) = &s.connection_string {
        let cfg = crate::azure::credential::AccountConfig::from_connection_string(c).ok();
        (cfg.as_ref().map(|c| c.account.clone()), cfg.as_ref().map(|c| c.endpoint.to_string()), Some("connection_string"))
    } else if let Some(u) = &s.sas_url {
        let base = u.split('?').next().unwrap_or_default().to_string();
        (None, Some(base), Some("sas_url"))
    } else {
        (None, None, None)
    };
    SettingsView { configured: credential.is_some(), account_name: account, endpoint, azure_share: s.azure_share.clone(), credential }
}

impl Settings {
    pub fn new(file: PathBuf) -> Self {
        Settings { file, lock: Mutex::new(()) }
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

    /// Validate and store; returns the redacted view.
    pub fn put(&self, tenant: &str, share: &str, input: SettingsInput) -> anyhow::Result<SettingsView> {
        match (&input.connection_string, &input.sas_url) {
            (Some(c), None) => {
                crate::azure::credential::AccountConfig::from_connection_string(c).map_err(|e| anyhow::anyhow!("invalid connection string: {e}"))?;
            }
            (None, Some(u)) => {
                crate::azure::credential::AccountConfig::from_sas_url(u).map_err(|e| anyhow::anyhow!("invalid SAS URL: {e}"))?;
            }
            _ => anyhow::bail!("give exactly one of connection_string and sas_url"),
        }
        let _g = self.lock.lock().expect("settings lock");
        let mut all = load(&self.file)?;
        all.insert(format!("{tenant}/{share}"), input);
        if let Some(d) = self.file.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&all)?)?;
        std::fs::rename(&tmp, &self.file)?;
        Ok(view(all.get(&format!("{tenant}/{share}"))))
    }
}
