//! Authenticated encryption (XChaCha20-Poly1305) and the sealed-object envelope.
//!
//! **Sealed bytes** (`seal`/`open`): `nonce (24 random bytes) | ciphertext | tag (16 bytes)`; the
//! associated data (AAD) is given by the caller and binds the bytes to their role (for pack blobs: the
//! chunk id). Overhead: 40 bytes.
//!
//! **Envelope** (`seal_object`/`open_object`), used by every whole object except packs and key objects:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic, ASCII, names the object kind (`AFBI` index, `AFBB` bundle, `AFBM` metadata, `AFBP` permission, `AFBS` snapshot manifest, `AFBH` pack header) |
//! | 1 | format version, 1 |
//! | 1 | compression of the plaintext: 0 none, 1 zstd (a single zstd frame) |
//! | 24 + n + 16 | sealed bytes of the (compressed) plaintext, AAD = the 6 bytes above |
//!
//! Compression is applied only when it makes the plaintext smaller.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngExt;

use super::error::{Error, Result};

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes added by [`seal`].
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Bytes of the envelope header before the sealed bytes.
pub const ENVELOPE_HEADER_LEN: usize = 6;
pub const ENVELOPE_VERSION: u8 = 1;

/// zstd level used for blobs and whole objects. Level 1: on small files level 3 spent a sixth of the
/// backup's CPU in zstd (README "Small files"); readers decode every level alike.
pub const ZSTD_LEVEL: i32 = 1;

/// How a plaintext was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    None = 0,
    Zstd = 1,
}

impl Compression {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::None),
            1 => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// A 256-bit symmetric key for XChaCha20-Poly1305.
#[derive(Clone)]
pub struct SealKey(XChaCha20Poly1305);

impl SealKey {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(&(*key).into()))
    }
}

/// Encrypts `plaintext` with a fresh random nonce: returns `nonce | ciphertext | tag`.
pub fn seal(key: &SealKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    let nonce = XNonce::from(nonce);
    let ct = key.0.encrypt(&nonce, Payload { msg: plaintext, aad }).expect("plaintext within AEAD limits");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts bytes made by [`seal`] with the same key and AAD; `None` if they are not authentic.
pub fn open(key: &SealKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let nonce = XNonce::try_from(&sealed[..NONCE_LEN]).ok()?;
    key.0.decrypt(&nonce, Payload { msg: &sealed[NONCE_LEN..], aad }).ok()
}

thread_local! {
    /// One zstd compression context per thread, reused: a fresh context per call allocated and cleared
    /// its tables each time (about as much CPU as compressing a 16 KiB bundle). The output is the same.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// Likewise one decompression context per thread.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses with zstd when that makes the data smaller; otherwise returns it as is.
pub fn maybe_compress(plaintext: &[u8]) -> (Compression, std::borrow::Cow<'_, [u8]>) {
    let compress = |data: &[u8]| {
        COMPRESSOR.with_borrow_mut(|c| {
            let c = match c {
                Some(c) => c,
                None => c.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
            };
            c.compress(data)
        })
    };
    if plaintext.len() >= 64
        && let Ok(z) = compress(plaintext)
        && z.len() < plaintext.len()
    {
        return (Compression::Zstd, z.into());
    }
    (Compression::None, plaintext.into())
}

/// Undoes [`maybe_compress`]; `raw_len` is the expected plaintext length (an upper bound for zstd).
pub fn decompress(compression: Compression, data: Vec<u8>, raw_len: usize) -> Option<Vec<u8>> {
    match compression {
        Compression::None => Some(data),
        Compression::Zstd => DECOMPRESSOR.with_borrow_mut(|d| {
            let d = match d {
                Some(d) => d,
                None => d.insert(zstd::bulk::Decompressor::new().ok()?),
            };
            d.decompress(&data, raw_len).ok()
        }),
    }
}

/// Wraps `plaintext` in the envelope (compressing when it helps).
pub fn seal_object(key: &SealKey, magic: &[u8; 4], plaintext: &[u8]) -> Vec<u8> {
    let (compression, body) = maybe_compress(plaintext);
    let mut header = [0u8; ENVELOPE_HEADER_LEN];
    header[..4].copy_from_slice(magic);
    header[4] = ENVELOPE_VERSION;
    header[5] = compression as u8;
    let mut out = header.to_vec();
    out.extend_from_slice(&seal(key, &header, &body));
    out
}

/// Opens an envelope made by [`seal_object`]; `object` names the object in errors.
pub fn open_object(key: &SealKey, magic: &[u8; 4], bytes: &[u8], object: &str) -> Result<Vec<u8>> {
    if bytes.len() < ENVELOPE_HEADER_LEN + SEAL_OVERHEAD {
        return Err(Error::corrupt(object, format!("{} bytes is too short for a sealed object", bytes.len())));
    }
    let header = &bytes[..ENVELOPE_HEADER_LEN];
    if &header[..4] != magic {
        return Err(Error::corrupt(
            object,
            format!("magic {:?}, expected {:?}", String::from_utf8_lossy(&header[..4]), String::from_utf8_lossy(magic)),
        ));
    }
    if header[4] != ENVELOPE_VERSION {
        return Err(Error::corrupt(object, format!("unknown format version {}", header[4])));
    }
    let compression = Compression::from_byte(header[5])
        .ok_or_else(|| Error::corrupt(object, format!("unknown compression {}", header[5])))?;
    let body = open(key, header, &bytes[ENVELOPE_HEADER_LEN..])
        .ok_or_else(|| Error::corrupt(object, "does not decrypt (tampered, truncated or another tenant's key)"))?;
    match compression {
        Compression::None => Ok(body),
        Compression::Zstd => {
            zstd::stream::decode_all(&body[..]).map_err(|e| Error::corrupt(object, format!("zstd: {e}")))
        }
    }
}
