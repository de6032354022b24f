//! Command-line conventions every `afb` command follows.
//!
//! - The Azure source comes from `--connection-string` or `AZURE_STORAGE_CONNECTION_STRING`, or from a
//!   SAS URL (`--sas-url` or `AFB_SAS_URL`): [`crate::azure::SourceArgs`].
//! - The repository comes from `--repo` or `AFB_REPO`: a local path, `file:///DIR` or `az://CONTAINER/PREFIX`.
//! - `--tenant` and `--share` name what is worked on.
//! - `--json` gives machine-readable output on every command that reports.
//! - Exit codes: see [`ExitCode`].

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
