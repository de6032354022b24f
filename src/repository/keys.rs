//! Keys: the master key from configuration, and per-tenant keys wrapped by it.
//!
//! A tenant has one random 32-byte secret, created on first use and stored wrapped (encrypted) by the master
//! key in the key object `{tenant_id}/keys/tenant.key`. Two keys are derived from the secret with BLAKE3's
//! key derivation, so one secret serves both purposes without reuse:
//! - the encryption key: `blake3::derive_key("afb tenant encryption key v1", secret)`
//!   (XChaCha20-Poly1305 for every blob and object of the tenant);
//! - the chunk-id key: `blake3::derive_key("afb tenant chunk id key v1", secret)`
//!   (chunk id = `blake3::keyed_hash(chunk_id_key, plaintext)`).
//!
//! Key object bytes (86 bytes):
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `AFBK` |
//! | 1 | format version, 1 |
//! | 1 | reserved, 0 |
//! | 8 | master key fingerprint: the first 8 bytes of `blake3::derive_key("afb master key fingerprint v1", master)` |
//! | 24 + 32 + 16 | the secret sealed with the master key (XChaCha20-Poly1305), AAD = the 14 bytes above followed by the tenant id in UTF-8 |
//!
//! The fingerprint lets a wrong master key be reported as such rather than as corruption; it reveals
//! nothing useful about the master key.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rand::RngExt;

use super::crypto::{self, SealKey};
use super::error::{Error, Result};
use super::id::{ChunkId, hex, unhex};
use super::layout;

const MAGIC: &[u8; 4] = b"AFBK";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 14;
/// Length of a key object in bytes.
pub const KEY_OBJECT_LEN: usize = HEADER_LEN + crypto::SEAL_OVERHEAD + 32;

/// The master key from configuration (32 bytes, given as 64 hex characters). Only wraps tenant keys.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Writes a new random master key to `path` (64 hex digits and a newline) in a file created with
    /// mode 0600; an existing file is an error, never overwritten.
    pub fn create_file(path: &std::path::Path) -> Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let key = Self::generate();
        let io = |e: std::io::Error| Error::Invalid(format!("creating master key file {}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
        f.write_all(format!("{}\n", key.to_hex()).as_bytes()).map_err(io)?;
        Ok(key)
    }

    /// Reads a master key file (64 hex digits). Like ssh with private keys, a file that group or others
    /// may read (any of mode bits 0o077) is refused, with one error line naming the path, the mode and
    /// the fix. Write key files with mode 0600.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        use std::io::Read as _;
        use std::os::unix::fs::MetadataExt as _;
        let io =
            |what: &str, e: std::io::Error| Error::Invalid(format!("{what} master key file {}: {e}", path.display()));
        let mut file = std::fs::File::open(path).map_err(|e| io("opening", e))?;
        // The mode of the file opened (fstat), not of whatever the path names a moment later.
        let mode = file.metadata().map_err(|e| io("inspecting", e))?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Invalid(format!(
                "master key file {} has mode {mode:04o} and is readable by group or others; run chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
        let mut hex = String::new();
        file.read_to_string(&mut hex).map_err(|e| io("reading", e))?;
        Self::from_hex(hex.trim()).map_err(|e| Error::Invalid(format!("master key file {}: {e}", path.display())))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = unhex(s.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::Invalid("a master key is 64 hex characters (32 bytes)".into()))?;
        Ok(Self(bytes.try_into().unwrap()))
    }

    /// A new random master key.
    pub fn generate() -> Self {
        Self(rand::rng().random())
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// First 8 bytes of `derive_key("afb master key fingerprint v1", key)`, stored in key objects.
    pub fn fingerprint(&self) -> [u8; 8] {
        blake3::derive_key("afb master key fingerprint v1", &self.0)[..8].try_into().unwrap()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(fingerprint {})", hex(&self.fingerprint()))
    }
}

/// A tenant's keys, derived from its secret. Cheap to clone.
#[derive(Clone)]
pub struct TenantKey {
    tenant: Arc<str>,
    seal: SealKey,
    chunk_id_key: [u8; 32],
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantKey({})", self.tenant)
    }
}

impl TenantKey {
    /// Derives the tenant's keys from its 32-byte secret.
    pub fn from_secret(tenant: &str, secret: &[u8; 32]) -> Self {
        Self {
            tenant: tenant.into(),
            seal: SealKey::new(&blake3::derive_key("afb tenant encryption key v1", secret)),
            chunk_id_key: blake3::derive_key("afb tenant chunk id key v1", secret),
        }
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The id of plaintext content in this tenant: BLAKE3 keyed with the tenant's chunk-id key.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.chunk_id_key, plaintext).as_bytes())
    }

    /// A streaming hasher giving the same result as [`TenantKey::chunk_id`].
    pub fn chunk_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.chunk_id_key)
    }

    /// The encryption key for this tenant's blobs and objects.
    pub fn seal_key(&self) -> &SealKey {
        &self.seal
    }
}

/// The key share-source secrets (connection strings, SAS URLs) are sealed with in the control area's
/// `shares.json`: derived from the master key, so it differs from the key that wraps tenant keys.
fn share_secret_key(master: &MasterKey) -> SealKey {
    SealKey::new(&blake3::derive_key("afb share source secret v1", &master.0))
}

/// Seals a share source's secret; `aad` binds it to where it is stored (tenant and share).
pub fn seal_share_secret(master: &MasterKey, aad: &[u8], secret: &[u8]) -> Vec<u8> {
    crypto::seal(&share_secret_key(master), aad, secret)
}

/// Opens what [`seal_share_secret`] sealed with the same master key and `aad`; `None` if it is not
/// authentic (another master key, another tenant or share, or changed bytes).
pub fn open_share_secret(master: &MasterKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    crypto::open(&share_secret_key(master), aad, sealed)
}

fn aad(header: &[u8], tenant: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad
}

/// Makes a key object for `secret`, wrapped by `master`.
pub fn wrap_tenant_secret(master: &MasterKey, tenant: &str, secret: &[u8; 32]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.push(0);
    header.extend_from_slice(&master.fingerprint());
    let sealed = crypto::seal(&SealKey::new(&master.0), &aad(&header, tenant), secret);
    let mut out = header;
    out.extend_from_slice(&sealed);
    out
}

/// Opens a key object; `object` names it in errors. A different master key gives [`Error::WrongMasterKey`].
pub fn unwrap_tenant_secret(master: &MasterKey, tenant: &str, bytes: &[u8], object: &str) -> Result<[u8; 32]> {
    if bytes.len() != KEY_OBJECT_LEN || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(Error::corrupt(object, format!("not a version {VERSION} key object ({} bytes)", bytes.len())));
    }
    let stored = &bytes[6..14];
    if stored != master.fingerprint() {
        return Err(Error::WrongMasterKey {
            tenant: tenant.to_string(),
            object: object.to_string(),
            stored: hex(stored),
            configured: hex(&master.fingerprint()),
        });
    }
    let secret = crypto::open(&SealKey::new(&master.0), &aad(&bytes[..HEADER_LEN], tenant), &bytes[HEADER_LEN..])
        .ok_or_else(|| {
            Error::corrupt(object, "tenant key does not decrypt with the master key its fingerprint names")
        })?;
    Ok(secret.try_into().unwrap())
}

/// Loads the tenant's key, creating and storing a new random one if the tenant has none.
///
/// Safe against concurrent first use: the key object is created with a conditional put, and a loser of
/// that race loads the winner's key.
pub async fn load_or_create_tenant_key(store: &dyn ObjectStore, master: &MasterKey, tenant: &str) -> Result<TenantKey> {
    layout::check_id("tenant id", tenant)?;
    match load_tenant_key(store, master, tenant).await {
        Err(Error::Missing { .. }) => {}
        other => return other,
    }
    let secret: [u8; 32] = rand::rng().random();
    let path = layout::tenant_key(tenant);
    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
    match store.put_opts(&path, PutPayload::from(wrap_tenant_secret(master, tenant, &secret)), opts).await {
        Ok(_) => Ok(TenantKey::from_secret(tenant, &secret)),
        Err(object_store::Error::AlreadyExists { .. }) => load_tenant_key(store, master, tenant).await,
        Err(e) => Err(Error::store(&path, e)),
    }
}

/// Loads an existing tenant key; [`Error::Missing`] if the tenant has none.
pub async fn load_tenant_key(store: &dyn ObjectStore, master: &MasterKey, tenant: &str) -> Result<TenantKey> {
    let path: Path = layout::tenant_key(tenant);
    let bytes = get_bytes(store, &path).await?;
    let secret = unwrap_tenant_secret(master, tenant, &bytes, path.as_ref())?;
    Ok(TenantKey::from_secret(tenant, &secret))
}

pub(crate) async fn get_bytes(store: &dyn ObjectStore, path: &Path) -> Result<bytes::Bytes> {
    let get = store.get(path).await.map_err(|e| Error::store(path, e))?;
    get.bytes().await.map_err(|e| Error::store(path, e))
}
