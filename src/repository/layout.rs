//! Object keys: where every object of the repository lives.
//!
//! ```text
//! {tenant_id}/keys/tenant.key                              the tenant key, wrapped by the master key
//! {tenant_id}/{share_id}/packs/{id[0..2]}/{id}             pack objects (chunk blobs)
//! {tenant_id}/{share_id}/index/{partition}/{id}            chunk index objects, {partition} = 2 hex digits
//! {tenant_id}/{share_id}/bundles/{id[0..2]}/{id}           TAR bundles of small files
//! {tenant_id}/{share_id}/metadata/{id[0..2]}/{id}          node-version metadata (FlatBuffers)
//! {tenant_id}/{share_id}/permissions/{permission_id}       one SDDL string per distinct permission
//! {tenant_id}/{share_id}/snapshots/{snapshot_id}           snapshot manifests, written last
//! {tenant_id}/{share_id}/locks/backup-{id}                 in-progress backup markers (see super::prune)
//! {tenant_id}/{share_id}/locks/prune                       the prune lock
//! {tenant_id}/{share_id}/prune/{id}                        prune deletion records (objects awaiting deletion)
//! {tenant_id}/{share_id}/runs/{run}/{part}                 results of a backup's parts until it commits (see super::runs)
//! ```
//!
//! `{id}` is the 64-hex-digit [`ObjectId`](super::id::ObjectId) of the stored bytes; `{permission_id}` the
//! keyed hash of the SDDL (see [`super::metadata`]). Tenant and share ids are 1 to 128 characters of
//! `[A-Za-z0-9._-]`, not starting with a dot, so they can never escape their prefix.

use object_store::path::Path;

use super::error::{Error, Result};
use super::id::ObjectId;

/// The share a repository handle works on: every data object lives under `{tenant_id}/{share_id}/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    tenant: String,
    share: String,
}

/// Checks a tenant or share id: 1 to 128 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid {what} {id:?}: use 1-128 of [A-Za-z0-9._-], not starting with '.'")))
    }
}

impl Scope {
    pub fn new(tenant: &str, share: &str) -> Result<Self> {
        check_id("tenant id", tenant)?;
        check_id("share id", share)?;
        Ok(Self { tenant: tenant.into(), share: share.into() })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn share(&self) -> &str {
        &self.share
    }

    /// `{tenant}/{share}/{rest}`.
    fn path(&self, rest: &str) -> Path {
        Path::from(format!("{}/{}/{rest}", self.tenant, self.share))
    }

    pub fn packs_prefix(&self) -> Path {
        self.path("packs")
    }

    pub fn pack(&self, id: &ObjectId) -> Path {
        let h = id.to_hex();
        self.path(&format!("packs/{}/{h}", &h[..2]))
    }

    pub fn index_prefix(&self) -> Path {
        self.path("index")
    }

    pub fn index_partition_prefix(&self, partition: u8) -> Path {
        self.path(&format!("index/{partition:02x}"))
    }

    pub fn index_object(&self, partition: u8, id: &ObjectId) -> Path {
        self.path(&format!("index/{partition:02x}/{id}"))
    }

    pub fn bundle(&self, id: &ObjectId) -> Path {
        let h = id.to_hex();
        self.path(&format!("bundles/{}/{h}", &h[..2]))
    }

    pub fn metadata(&self, id: &ObjectId) -> Path {
        let h = id.to_hex();
        self.path(&format!("metadata/{}/{h}", &h[..2]))
    }

    pub fn permission(&self, id: &ObjectId) -> Path {
        self.path(&format!("permissions/{id}"))
    }

    pub fn snapshots_prefix(&self) -> Path {
        self.path("snapshots")
    }

    pub fn snapshot(&self, snapshot_id: &str) -> Path {
        self.path(&format!("snapshots/{snapshot_id}"))
    }

    pub fn bundles_prefix(&self) -> Path {
        self.path("bundles")
    }

    pub fn metadata_prefix(&self) -> Path {
        self.path("metadata")
    }

    pub fn locks_prefix(&self) -> Path {
        self.path("locks")
    }

    /// `locks/{name}`: `backup-{id}` markers and the `prune` lock.
    pub fn lock(&self, name: &str) -> Path {
        self.path(&format!("locks/{name}"))
    }

    pub fn prune_records_prefix(&self) -> Path {
        self.path("prune")
    }

    pub fn prune_record(&self, id: &str) -> Path {
        self.path(&format!("prune/{id}"))
    }

    pub fn runs_prefix(&self) -> Path {
        self.path("runs")
    }

    /// `runs/{run}`: the part results of one run (run and part ids are checked like share ids).
    pub fn run_prefix(&self, run: &str) -> Result<Path> {
        check_id("run id", run)?;
        Ok(self.path(&format!("runs/{run}")))
    }

    /// `runs/{run}/{part}`.
    pub fn run_part(&self, run: &str, part: &str) -> Result<Path> {
        check_id("run id", run)?;
        check_id("part id", part)?;
        Ok(self.path(&format!("runs/{run}/{part}")))
    }
}

/// `{tenant}/keys/tenant.key`.
pub fn tenant_key(tenant: &str) -> Path {
    Path::from(format!("{tenant}/keys/tenant.key"))
}

/// The object id in the last segment of a content-addressed key, if it is one.
pub fn object_id_of(path: &Path) -> Option<ObjectId> {
    ObjectId::from_hex(path.filename()?)
}
