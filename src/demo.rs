//! `afb demo`: the embedded default, end to end on one machine.

use crate::cli::ExitCode;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("demo is not wired up yet")
}
