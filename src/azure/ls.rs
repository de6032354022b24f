//! `afb ls`: lists one directory of a share (or of one of its snapshots) through the REST client.

use super::SourceArgs;
use super::client::FileServiceClient;
use super::model::{ClientOptions, EntryKind};
use crate::cli::{ExitCode, OutputArgs};
use futures::TryStreamExt as _;

/// Arguments of `afb ls`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Share to list (or the share named by the SAS URL).
    #[arg(long)]
    pub share: Option<String>,
    /// Directory within the share; the root by default.
    #[arg(default_value = "")]
    pub path: String,
    /// Read a share snapshot (its timestamp) instead of the live share.
    #[arg(long)]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let (account, sas_share) = args.source.account()?;
    let share_name = args.share.clone().or(sas_share).ok_or_else(|| anyhow::anyhow!("no share: pass --share"))?;
    let client = FileServiceClient::new(account, ClientOptions::default())?;
    let mut share = client.share(&share_name);
    if let Some(ts) = &args.snapshot {
        share = share.at_snapshot(ts);
    }
    let entries: Vec<_> = share.directory(&args.path).list().try_collect().await?;
    if args.output.json {
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "kind": if e.is_dir() { "directory" } else { "file" },
                    "size": e.size,
                    "file_id": e.file_id,
                    "last_write_time": e.last_write_time.map(super::model::format_file_time),
                    "attributes": e.attributes,
                    "permission_key": e.permission_key,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        for e in &entries {
            let kind = if e.kind == EntryKind::Directory { "d" } else { "-" };
            let mtime = e.last_write_time.map(super::model::format_file_time).unwrap_or_default();
            println!("{kind} {:>12} {mtime:<28} {}", e.size, e.name);
        }
    }
    Ok(ExitCode::Ok)
}
