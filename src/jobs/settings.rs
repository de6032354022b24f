//! Shares' Azure sources. Embedded mode stores them in `{repo}/.afb/shares.json` (the repository's
//! control area), a file created with mode 0600. The secret (connection string or SAS URL) is stored
//! sealed with a key derived from the master key (XChaCha20-Poly1305, associated data: tenant, share and
//! credential kind), so the file holds no usable secret; reads answer only the account name, the
//! endpoint and whether a secret is set. Without a master key no secret can be stored (`NoMasterKey`).
//! Files written before sealing (plain `connection_string`/`sas_url`) are still read, and sealed on the
//! next write.
//!
//! Each source also keeps the [`AddressPolicy`] decided when it was registered ([`Settings::tenant_policy`]):
//! workers build the share's client with it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::azure::AddressPolicy;
use crate::azure::credential::{AccountConfig, endpoint_host};
use crate::repository::MasterKey;

/// The share-settings file of the repository at `repo`: `shares.json` in the `.afb/` of its control
/// area (a local repository's own directory; for Blob, `AFB_CONTROL_DIR`, see
/// [`crate::repository::store::Location::control_root`]). `afb serve` and every worker must agree on it.
pub fn settings_file(repo: &str) -> anyhow::Result<PathBuf> {
    Ok(crate::repository::store::Location::parse(repo)?.control_root()?.join(".afb").join("shares.json"))
}

/// What a client sends to set a share's source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    pub connection_string: Option<String>,
    pub sas_url: Option<String>,
    /// The share's name in Azure, if it differs from the share id.
    pub azure_share: Option<String>,
}

/// A share's source as a worker uses it: the secret and the addresses its client may connect to.
#[derive(Debug, Clone)]
pub struct ShareSource {
    pub input: SettingsInput,
    pub address_policy: AddressPolicy,
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

/// A share's source as `shares.json` keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azure_share: Option<String>,
    /// `connection_string` or `sas_url`: which secret `sealed` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    /// base64 of nonce | ciphertext | tag ([`crate::repository::keys::seal_share_secret`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    /// Absent in files written before policies were stored: see [`Stored::policy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address_policy: Option<AddressPolicy>,
    /// Plain secrets of files written before sealing; never written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sas_url: Option<String>,
}

/// The associated data a secret is sealed with: it opens only as the secret of this share and kind.
fn secret_aad(tenant: &str, share: &str, credential: &str) -> Vec<u8> {
    format!("afb share source\0{tenant}\0{share}\0{credential}").into_bytes()
}

/// Why settings could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The input is not a usable source (the message says why).
    #[error("{0}")]
    Invalid(String),
    #[error(
        "this server has no master key (afb serve --master-key-file or AFB_MASTER_KEY), and share secrets are stored only sealed with it"
    )]
    NoMasterKey,
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

pub struct Settings {
    file: PathBuf,
    master: Option<MasterKey>,
    lock: Mutex<()>,
    /// Host patterns the operator added with `--allow-endpoint` (see [`host_allowed`]).
    operator_allowed: Mutex<Vec<String>>,
}

/// The hosts a tenant may register a share source on unless the operator allows more (`afb serve
/// --allow-endpoint`): Azure's public, China and US Government file endpoints. Anything else (a private
/// address, a loopback emulator) only the operator can register, so a tenant cannot make the workers
/// connect into the operator's network.
pub const DEFAULT_TENANT_ENDPOINTS: [&str; 3] =
    ["*.file.core.windows.net", "*.file.core.chinacloudapi.cn", "*.file.core.usgovcloudapi.net"];

/// The parsed account of a source: exactly one credential, and it parses (the endpoint by
/// [`crate::azure::credential::parse_endpoint`], the parse the client uses).
pub fn account_of(input: &SettingsInput) -> anyhow::Result<AccountConfig> {
    match (&input.connection_string, &input.sas_url) {
        (Some(c), None) => {
            AccountConfig::from_connection_string(c).map_err(|e| anyhow::anyhow!("invalid connection string: {e}"))
        }
        (None, Some(u)) => Ok(AccountConfig::from_sas_url(u).map_err(|e| anyhow::anyhow!("invalid SAS URL: {e}"))?.0),
        _ => anyhow::bail!("give exactly one of connection_string and sas_url"),
    }
}

/// The host a source connects to, with its port when it is not the scheme's default
/// (`acct.file.core.windows.net`, `127.0.0.1:10004`), lower-case: `url::Url`'s host and port of the
/// endpoint the client connects to.
pub fn source_host(input: &SettingsInput) -> anyhow::Result<String> {
    let url = account_of(input)?.endpoint_url().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(endpoint_host(&url))
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

fn default_patterns() -> Vec<String> {
    DEFAULT_TENANT_ENDPOINTS.iter().map(|s| s.to_string()).collect()
}

impl Stored {
    /// The policy of a source. Files written before policies were stored: a source on Azure's public
    /// endpoints is held to public addresses (a tenant may have registered it); any other could only have
    /// been registered by the operator or on a host the operator allowed.
    fn policy(&self, tenant: &str, share: &str) -> AddressPolicy {
        if let Some(p) = self.address_policy {
            return p;
        }
        let host = self.endpoint.as_deref().and_then(|e| crate::azure::credential::parse_endpoint(e).ok());
        let host = match host {
            Some(u) => endpoint_host(&u),
            None => match self.plain().and_then(|i| source_host(&i).ok()) {
                Some(h) => h,
                None => {
                    tracing::warn!(
                        "share {tenant}/{share}: no readable endpoint; its client may use public addresses only"
                    );
                    return AddressPolicy::PublicOnly;
                }
            },
        };
        if host_allowed(&host, &default_patterns()) { AddressPolicy::PublicOnly } else { AddressPolicy::Any }
    }

    /// The plain secret of a file written before sealing.
    fn plain(&self) -> Option<SettingsInput> {
        (self.connection_string.is_some() || self.sas_url.is_some()).then(|| SettingsInput {
            connection_string: self.connection_string.clone(),
            sas_url: self.sas_url.clone(),
            azure_share: self.azure_share.clone(),
        })
    }

    fn view(&self) -> SettingsView {
        if let Some(input) = self.plain() {
            let cfg = account_of(&input).ok();
            return SettingsView {
                configured: true,
                account_name: cfg.as_ref().map(|c| c.account.clone()),
                endpoint: cfg.as_ref().map(|c| c.endpoint.clone()),
                azure_share: self.azure_share.clone(),
                credential: Some(if input.connection_string.is_some() { "connection_string" } else { "sas_url" }),
            };
        }
        let credential = match self.credential.as_deref() {
            Some("connection_string") => Some("connection_string"),
            Some("sas_url") => Some("sas_url"),
            _ => None,
        };
        SettingsView {
            configured: credential.is_some() && self.sealed.is_some(),
            account_name: self.account_name.clone(),
            endpoint: self.endpoint.clone(),
            azure_share: self.azure_share.clone(),
            credential,
        }
    }
}

fn load(file: &PathBuf) -> anyhow::Result<BTreeMap<String, Stored>> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("{}: not a settings file", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

impl Settings {
    /// Settings in `file`; secrets are sealed with (a key derived from) `master`.
    pub fn new(file: PathBuf, master: Option<MasterKey>) -> Self {
        Settings { file, master, lock: Mutex::new(()), operator_allowed: Mutex::new(Vec::new()) }
    }

    /// Let tenants also register sources on these host patterns (see [`host_allowed`]); their sources
    /// may connect to any address (the operator vouched for the host).
    pub fn allow_tenant_endpoints(&self, patterns: &[String]) {
        self.operator_allowed.lock().expect("settings lock").extend(patterns.iter().cloned());
    }

    /// Can secrets be stored (is there a master key to seal them with)?
    pub fn can_seal(&self) -> bool {
        self.master.is_some()
    }

    /// Where a source a tenant registers may connect: `Ok(PublicOnly)` on Azure's public endpoints,
    /// `Ok(Any)` on a host the operator allowed explicitly, else `Err` with the host and the patterns
    /// allowed. An unparsable source is the outer error.
    pub fn tenant_policy(&self, input: &SettingsInput) -> anyhow::Result<Result<AddressPolicy, (String, Vec<String>)>> {
        let host = source_host(input)?;
        let operator = self.operator_allowed.lock().expect("settings lock").clone();
        Ok(if host_allowed(&host, &operator) {
            Ok(AddressPolicy::Any)
        } else if host_allowed(&host, &default_patterns()) {
            Ok(AddressPolicy::PublicOnly)
        } else {
            Err((host, default_patterns().into_iter().chain(operator).collect()))
        })
    }

    /// A share's stored source, secret included: for workers resolving where to read (never for replies).
    pub fn source(&self, tenant: &str, share: &str) -> anyhow::Result<Option<ShareSource>> {
        let _g = self.lock.lock().expect("settings lock");
        let Some(st) = load(&self.file)?.remove(&format!("{tenant}/{share}")) else { return Ok(None) };
        let address_policy = st.policy(tenant, share);
        if let Some(input) = st.plain() {
            return Ok(Some(ShareSource { input, address_policy }));
        }
        let (Some(kind), Some(sealed)) = (st.credential.as_deref(), st.sealed.as_deref()) else { return Ok(None) };
        let master = self.master.as_ref().ok_or(SettingsError::NoMasterKey)?;
        let secret = BASE64
            .decode(sealed)
            .ok()
            .and_then(|b| crate::repository::keys::open_share_secret(master, &secret_aad(tenant, share, kind), &b))
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "share {tenant}/{share}: its stored secret does not open with this master key (another key, or changed)"
                )
            })?;
        let (connection_string, sas_url) =
            if kind == "connection_string" { (Some(secret), None) } else { (None, Some(secret)) };
        Ok(Some(ShareSource {
            input: SettingsInput { connection_string, sas_url, azure_share: st.azure_share },
            address_policy,
        }))
    }

    pub fn get(&self, tenant: &str, share: &str) -> anyhow::Result<SettingsView> {
        let _g = self.lock.lock().expect("settings lock");
        Ok(load(&self.file)?.get(&format!("{tenant}/{share}")).map(Stored::view).unwrap_or(SettingsView {
            configured: false,
            account_name: None,
            endpoint: None,
            azure_share: None,
            credential: None,
        }))
    }

    /// Every (tenant, share) with stored settings, sorted: registered shares, with or without snapshots.
    pub fn shares(&self) -> anyhow::Result<Vec<(String, String)>> {
        let _g = self.lock.lock().expect("settings lock");
        Ok(load(&self.file)?
            .into_keys()
            .filter_map(|k| k.split_once('/').map(|(t, s)| (t.to_string(), s.to_string())))
            .collect())
    }

    /// Validate and store a source the operator sets (it may connect anywhere); returns the redacted view.
    pub fn put(&self, tenant: &str, share: &str, input: SettingsInput) -> Result<SettingsView, SettingsError> {
        let entry = self.seal(tenant, share, &input, AddressPolicy::Any)?;
        let _g = self.lock.lock().expect("settings lock");
        let mut all = load(&self.file)?;
        let view = entry.view();
        all.insert(format!("{tenant}/{share}"), entry);
        self.store(all)?;
        Ok(view)
    }

    /// Validate and store settings for a share that has none yet, with the policy its registrant gets:
    /// `Ok(None)` (nothing written) if it already has some. Returns the redacted view.
    pub fn insert_new(
        &self,
        tenant: &str,
        share: &str,
        input: SettingsInput,
        policy: AddressPolicy,
    ) -> Result<Option<SettingsView>, SettingsError> {
        let entry = self.seal(tenant, share, &input, policy)?;
        let _g = self.lock.lock().expect("settings lock");
        let mut all = load(&self.file)?;
        let key = format!("{tenant}/{share}");
        if all.contains_key(&key) {
            return Ok(None);
        }
        let view = entry.view();
        all.insert(key, entry);
        self.store(all)?;
        Ok(Some(view))
    }

    /// A validated input as stored: its secret sealed, its account and endpoint in the clear.
    fn seal(
        &self,
        tenant: &str,
        share: &str,
        input: &SettingsInput,
        policy: AddressPolicy,
    ) -> Result<Stored, SettingsError> {
        let cfg = validate(input).map_err(|e| SettingsError::Invalid(format!("{e:#}")))?;
        let master = self.master.as_ref().ok_or(SettingsError::NoMasterKey)?;
        let (kind, secret) = match (&input.connection_string, &input.sas_url) {
            (Some(c), _) => ("connection_string", c),
            (None, Some(u)) => ("sas_url", u),
            (None, None) => unreachable!("validate checked there is one credential"),
        };
        let sealed =
            crate::repository::keys::seal_share_secret(master, &secret_aad(tenant, share, kind), secret.as_bytes());
        Ok(Stored {
            account_name: Some(cfg.account),
            endpoint: Some(cfg.endpoint),
            azure_share: input.azure_share.clone(),
            credential: Some(kind.to_string()),
            sealed: Some(BASE64.encode(sealed)),
            address_policy: Some(policy),
            connection_string: None,
            sas_url: None,
        })
    }

    /// Replace the file atomically (a temporary file created 0600, renamed over it), sealing plain
    /// secrets left by older versions on the way. Call with the lock held.
    fn store(&self, mut all: BTreeMap<String, Stored>) -> Result<(), SettingsError> {
        for (key, st) in all.iter_mut() {
            if let (Some(input), Some((t, s))) = (st.plain(), key.split_once('/')) {
                let policy = st.policy(t, s);
                if let Ok(sealed) = self.seal(t, s, &input, policy) {
                    *st = sealed;
                }
            }
        }
        if let Some(d) = self.file.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let tmp = self.file.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&all)?)?;
            f.sync_all()
        };
        write().with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file).with_context(|| format!("replacing {}", self.file.display()))?;
        Ok(())
    }
}

/// Exactly one credential, it parses, and `azure_share` is a name Azure accepts.
fn validate(input: &SettingsInput) -> anyhow::Result<AccountConfig> {
    let cfg = account_of(input)?;
    if let Some(a) = &input.azure_share
        && !crate::azure::is_valid_share_name(a)
    {
        anyhow::bail!("azure_share {a:?}: {SHARE_NAME_RULE}");
    }
    Ok(cfg)
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
