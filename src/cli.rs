//! Command-line conventions every `afb` command follows.
//!
//! - The Azure source comes from `--connection-string` or `AZURE_STORAGE_CONNECTION_STRING`, or from a
//!   SAS URL (`--sas-url` or `AFB_SAS_URL`).
//! - The repository comes from `--repo` or `AFB_REPO`: a local path, `file:///DIR` or `az://CONTAINER/PREFIX`.
//! - `--tenant` and `--share` name what is worked on.
//! - `--json` gives machine-readable output on every command that reports.
//! - Exit codes: see [`ExitCode`].

use crate::azure::credential::AccountConfig;
use clap::Args;

/// Process exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// The command failed; one error line on stderr says what and where.
    Failed = 1,
    /// The command line was wrong (clap's usage errors).
    Usage = 2,
    /// The command ran but found problems (for example verify found damage).
    Problems = 3,
}

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

/// Which repository to use.
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// Repository location: a local directory, file:///DIR, or az://CONTAINER/PREFIX (Azure Blob).
    #[arg(long, env = "AFB_REPO")]
    pub repo: String,
}

/// Output format switch shared by every reporting command.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Machine-readable JSON output.
    #[arg(long)]
    pub json: bool,
}
