//! [`SourceArgs`]: the command-line options that say where an Azure Files source is, shared by every
//! command that reads a share (`afb ls`, `scan`, `backup`, `gen`, `bench list`).

use super::credential::AccountConfig;
use clap::Args;

/// Where the Azure Files source is.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Azure Storage connection string.
    #[arg(long, env = "AZURE_STORAGE_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: Option<String>,
    /// A SAS URL for the account or share, instead of a connection string.
    #[arg(long, env = "AFB_SAS_URL", hide_env_values = true, conflicts_with = "connection_string")]
    pub sas_url: Option<String>,
}

impl SourceArgs {
    /// The account to talk to. A SAS URL may also name a share (returned as the second value).
    pub fn account(&self) -> anyhow::Result<(AccountConfig, Option<String>)> {
        if let Some(c) = &self.connection_string {
            let cfg = AccountConfig::from_connection_string(c)
                .map_err(|e| anyhow::anyhow!("invalid connection string: {e}"))?;
            return Ok((cfg, None));
        }
        if let Some(u) = &self.sas_url {
            let (cfg, rest) = AccountConfig::from_sas_url(u).map_err(|e| anyhow::anyhow!("invalid SAS URL: {e}"))?;
            let share = rest.split('/').next().filter(|s| !s.is_empty()).map(str::to_string);
            return Ok((cfg, share));
        }
        anyhow::bail!(
            "no Azure source: pass --connection-string, set AZURE_STORAGE_CONNECTION_STRING, or pass --sas-url"
        )
    }
}
