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

/// The environment variable naming a file that receives this process's peak resident set size, in bytes
/// (decimal), when the command ends: how benchmarks and the memory test measure a command from inside.
pub const PEAK_RSS_FILE_VAR: &str = "AFB_PEAK_RSS_FILE";

/// This process's peak resident set size in bytes so far (`getrusage`; Linux reports KiB).
pub fn peak_rss_bytes() -> u64 {
    // SAFETY: getrusage writes one plain struct we own; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    usage.ru_maxrss.max(0) as u64 * 1024
}
