//! Writes a planned share through the Azure Files client: permissions, directories (parents first),
//! then files with their content, SMB properties and NFS-style modes.

use super::plan::{EntryKind, PlannedEntry, ShareSpec, content};
use crate::azure::{AzureError, NfsProperties, NodeProps, Permission, ShareClient};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use time::OffsetDateTime;

/// What a fill wrote.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FillSummary {
    pub share: String,
    pub directories: u64,
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    pub distinct_permissions: usize,
}

/// Options of a fill.
#[derive(Debug, Clone)]
pub struct FillOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Send NFS-style modes (`x-ms-mode`); real SMB shares reject them, the emulator keeps them.
    pub nfs_modes: bool,
}

impl Default for FillOptions {
    fn default() -> Self {
        FillOptions { concurrency: 16, nfs_modes: true }
    }
}

/// Creates the share if needed and writes every planned entry into it.
///
/// Entries must come parents first (as [`super::plan::plan`] returns them). The share must not already
/// hold entries of the same paths: an existing path is an error naming it.
pub async fn fill(
    share: &ShareClient,
    spec: &ShareSpec,
    entries: &[PlannedEntry],
    options: &FillOptions,
) -> Result<FillSummary, AzureError> {
    match share.create().await {
        Ok(()) => {}
        Err(e) if e.code() == Some("ShareAlreadyExists") => {}
        Err(e) => return Err(e),
    }
    let mut keys = Vec::with_capacity(spec.sddls.len());
    for sddl in &spec.sddls {
        keys.push(share.create_permission(sddl).await?);
    }
    let props = |e: &PlannedEntry| -> NodeProps {
        let mut attributes: Vec<&str> = Vec::new();
        if e.read_only {
            attributes.push("ReadOnly");
        }
        if e.hidden {
            attributes.push("Hidden");
        }
        match e.kind {
            EntryKind::Directory => attributes.push("Directory"),
            EntryKind::File => attributes.push("Archive"),
        }
        NodeProps {
            attributes: Some(attributes.join("|")),
            creation_time: OffsetDateTime::from_unix_timestamp(e.ctime_unix).ok(),
            last_write_time: OffsetDateTime::from_unix_timestamp(e.mtime_unix).ok(),
            change_time: OffsetDateTime::from_unix_timestamp(e.mtime_unix).ok(),
            permission: Some(Permission::Key(keys[e.sddl].clone())),
            nfs: NfsProperties {
                mode: options.nfs_modes.then(|| spec.nfs_modes[e.nfs_mode].clone()),
                owner: None,
                group: None,
            },
            ..NodeProps::default()
        }
    };

    // Directories level by level: every parent exists before its children are created.
    let mut by_depth: Vec<Vec<&PlannedEntry>> = Vec::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Directory) {
        let depth = e.path.matches('/').count();
        if by_depth.len() <= depth {
            by_depth.resize_with(depth + 1, Vec::new);
        }
        by_depth[depth].push(e);
    }
    for level in &by_depth {
        futures::stream::iter(level.iter().map(|e| {
            let dir = share.directory(&e.path);
            let p = props(e);
            async move { dir.create(&p).await.map(|_| ()) }
        }))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    }

    let files: Vec<&PlannedEntry> = entries.iter().filter(|e| e.kind == EntryKind::File).collect();
    futures::stream::iter(files.iter().map(|e| {
        let file = share.file(&e.path);
        let p = props(e);
        let data = Bytes::from(content(e.content_seed, e.size));
        async move {
            file.upload(data, &p).await?;
            // Put Range sets the last-write time to "now", as Azure does: set the planned times again.
            if e.size > 0 {
                file.set_properties(&p, None).await?;
            }
            Ok::<(), AzureError>(())
        }
    }))
    .buffer_unordered(options.concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;

    Ok(FillSummary {
        share: share.name().to_string(),
        directories: by_depth.iter().map(|l| l.len() as u64).sum(),
        files: files.len() as u64,
        bytes: files.iter().map(|e| e.size).sum(),
        distinct_permissions: keys.len(),
    })
}
