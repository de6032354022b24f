//! Node-version metadata (FlatBuffers) and permission (SDDL) objects.
//!
//! **Metadata object**: a sealed envelope (magic `AFBM`, see [`super::crypto`]) whose plaintext is a
//! FlatBuffers buffer with root `MetadataBatch` from `schema/node_version.fbs`: the node versions one
//! snapshot wrote, in node_id order. Stored at `{tenant}/{share}/metadata/{id[0..2]}/{id}`, `id` = BLAKE3
//! of the object's bytes. A snapshot manifest lists its metadata objects.
//!
//! **Permission object**: a sealed envelope (magic `AFBP`) whose plaintext is one SDDL string in UTF-8,
//! stored once per distinct SDDL at `{tenant}/{share}/permissions/{permission_id}`, where
//! `permission_id` = the tenant-keyed BLAKE3 of the SDDL bytes (the same function as chunk ids), so equal
//! SDDLs share one object and the name reveals nothing across tenants. Node versions refer to it by
//! `permission_id`.

use planus::ReadAsRoot;

use super::crypto;
use super::error::{Error, Result};
use super::generated::{MetadataBatch, MetadataBatchRef, NodeVersion};
use super::id::ObjectId;
use super::keys::TenantKey;

pub(crate) const METADATA_MAGIC: &[u8; 4] = b"AFBM";
pub(crate) const PERMISSION_MAGIC: &[u8; 4] = b"AFBP";
/// Format version written in `MetadataBatch.format_version`.
pub const METADATA_FORMAT_VERSION: u16 = 1;

/// Orders node versions (one metadata object's) so that the files of one bundle come together: files
/// in bundles first, by bundle and offset, then the others in their order. A reader that opens each
/// bundle once for its members (restore, verify) then never reopens one: a bundle holds small
/// files of a bucket by directory, which need not have consecutive node ids.
pub fn group_by_bundle(versions: &mut [NodeVersion]) {
    versions.sort_by(|a, b| {
        let key = |v: &NodeVersion| v.bundle.as_ref().map(|r| (r.bundle_id.clone(), r.offset));
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
}

/// FlatBuffers bytes of a batch of node versions.
pub fn encode_batch(versions: Vec<NodeVersion>) -> Vec<u8> {
    let batch = MetadataBatch { format_version: METADATA_FORMAT_VERSION, versions: Some(versions) };
    planus::Builder::new().finish(&batch, None).to_vec()
}

/// Decodes FlatBuffers bytes of a batch; `object` names them in errors.
pub fn decode_batch(object: &str, bytes: &[u8]) -> Result<Vec<NodeVersion>> {
    let root =
        MetadataBatchRef::read_as_root(bytes).map_err(|e| Error::corrupt(object, format!("flatbuffers: {e}")))?;
    let batch = MetadataBatch::try_from(root).map_err(|e| Error::corrupt(object, format!("flatbuffers: {e}")))?;
    if batch.format_version != METADATA_FORMAT_VERSION {
        return Err(Error::corrupt(object, format!("unknown metadata format version {}", batch.format_version)));
    }
    Ok(batch.versions.unwrap_or_default())
}

/// Sealed bytes and id of a metadata object.
pub fn seal_metadata(key: &TenantKey, versions: Vec<NodeVersion>) -> (ObjectId, Vec<u8>) {
    let bytes = crypto::seal_object(key.seal_key(), METADATA_MAGIC, &encode_batch(versions));
    (ObjectId::of(&bytes), bytes)
}

/// Opens a metadata object's bytes.
pub fn open_metadata(key: &TenantKey, object: &str, bytes: &[u8]) -> Result<Vec<NodeVersion>> {
    decode_batch(object, &crypto::open_object(key.seal_key(), METADATA_MAGIC, bytes, object)?)
}

/// The permission id of an SDDL string in this tenant.
pub fn permission_id(key: &TenantKey, sddl: &str) -> ObjectId {
    ObjectId(key.chunk_id(sddl.as_bytes()).0)
}

/// Sealed bytes and id of a permission object.
pub fn seal_permission(key: &TenantKey, sddl: &str) -> (ObjectId, Vec<u8>) {
    (permission_id(key, sddl), crypto::seal_object(key.seal_key(), PERMISSION_MAGIC, sddl.as_bytes()))
}

/// Opens a permission object and checks it against its id.
pub fn open_permission(key: &TenantKey, object: &str, id: &ObjectId, bytes: &[u8]) -> Result<String> {
    let plain = crypto::open_object(key.seal_key(), PERMISSION_MAGIC, bytes, object)?;
    let sddl = String::from_utf8(plain).map_err(|_| Error::corrupt(object, "SDDL is not UTF-8"))?;
    if permission_id(key, &sddl) != *id {
        return Err(Error::corrupt(object, "SDDL does not hash to the permission id"));
    }
    Ok(sddl)
}
