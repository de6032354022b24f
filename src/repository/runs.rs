//! Part records: what the parts of a backup split across jobs stored, kept until the backup commits.
//!
//! A backup split into parts (see `crate::backup::parts`) stores content in several jobs, possibly on
//! several machines at once, and commits one manifest at the end. Until then, what a finished part stored
//! is reachable only through its **part record** `{tenant}/{share}/runs/{run}/{part}`: a sealed envelope
//! (magic `AFBR`) whose plaintext is the JSON of [`PartRecord`]. Its `metadata` objects hold the node
//! versions the part produced; prune ([`super::prune`]) treats them as referenced, like a manifest's,
//! until the record is deleted (after the commit) or grows older than the prune's run retention (a run
//! that never committed).
//!
//! A part writes its record last, after its packs, index objects, bundles and metadata object; the record
//! key is fixed by the run and part, so a part that runs twice writes the same key again (each version
//! names objects that exist). The committing job deletes the run's records once its manifest exists.

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::crypto;
use super::error::{Error, Result};
use super::keys::get_bytes;
use super::repo::Repository;

pub(crate) const MAGIC: &[u8; 4] = b"AFBR";

/// What one finished part of a run stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Metadata objects (object ids) holding the node versions the part produced.
    pub metadata: Vec<String>,
    /// What the writer records beside (for a backup part: its node range and summary); opaque here.
    pub info: serde_json::Value,
}

/// Writes (or writes again) the record of part `part` of run `run`.
pub async fn put_part(repo: &Repository, run: &str, part: &str, record: &PartRecord) -> Result<()> {
    let path = repo.scope().run_part(run, part)?;
    let json = serde_json::to_vec(record).expect("part record serialises");
    let bytes = crypto::seal_object(repo.key().seal_key(), MAGIC, &json);
    repo.store().put(&path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&path, e))?;
    Ok(())
}

/// The record of part `part` of run `run`, if it was written.
pub async fn get_part(repo: &Repository, run: &str, part: &str) -> Result<Option<PartRecord>> {
    let path = repo.scope().run_part(run, part)?;
    match read(repo, &path).await {
        Ok(r) => Ok(Some(r)),
        Err(Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a part record at `path`.
pub async fn read(repo: &Repository, path: &object_store::path::Path) -> Result<PartRecord> {
    let bytes = get_bytes(repo.store().as_ref(), path).await?;
    let json = crypto::open_object(repo.key().seal_key(), MAGIC, &bytes, path.as_ref())?;
    serde_json::from_slice(&json).map_err(|e| Error::corrupt(path, format!("part record JSON: {e}")))
}

/// Every part record of the share (all runs).
pub async fn list_all(repo: &Repository) -> Result<Vec<ObjectMeta>> {
    let prefix = repo.scope().runs_prefix();
    repo.store().list(Some(&prefix)).try_collect().await.map_err(|e| Error::store(&prefix, e))
}

/// Deletes the records of run `run` (after its commit). Records already gone are fine.
pub async fn remove_run(repo: &Repository, run: &str) -> Result<usize> {
    let prefix = repo.scope().run_prefix(run)?;
    let objects: Vec<ObjectMeta> =
        repo.store().list(Some(&prefix)).try_collect().await.map_err(|e| Error::store(&prefix, e))?;
    for o in &objects {
        match repo.store().delete(&o.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::store(&o.location, e)),
        }
    }
    Ok(objects.len())
}
