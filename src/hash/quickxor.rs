//! QuickXorHash: Microsoft's 160-bit xor-and-shift hash, as used by OneDrive and SharePoint.
//!
//! Contract (from Microsoft's published description): the state is a 160-bit circular register, initially
//! zero. Byte number `k` of the input (counting from 0 over the whole stream) is XORed into the register
//! with its least significant bit at bit position `(11 * k) mod 160`, wrapping from bit 159 to bit 0.
//! The digest is the register as 20 bytes, little-endian (bit `p` is bit `p % 8` of byte `p / 8`), with the
//! input length in bytes, a little-endian signed 64-bit integer, XORed into the last 8 bytes (12..20).
//! The empty input hashes to 20 zero bytes. OneDrive shows the digest in base64.
//!
//! Implementation: bytes whose indices are congruent modulo 160 land at the same bit position, so the
//! hasher XORs input into a 160-byte accumulator (a tight loop the compiler vectorises) and places the 160
//! accumulated bytes into the register only when the digest is asked for. Streaming in any split gives the
//! same digest as one call.

/// Width of the digest in bytes (160 bits).
pub const DIGEST_LEN: usize = 20;

const WIDTH_BITS: usize = 160;
const SHIFT: usize = 11;

/// A streaming QuickXorHash. `update` in any split, then `digest` (which does not consume the hasher).
#[derive(Clone)]
pub struct QuickXorHash {
    /// `acc[r]` is the XOR of every input byte whose stream index is congruent to `r` modulo 160.
    acc: [u8; WIDTH_BITS],
    /// Bytes hashed so far.
    len: u64,
}

impl Default for QuickXorHash {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for QuickXorHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickXorHash").field("len", &self.len).finish_non_exhaustive()
    }
}

impl QuickXorHash {
    pub fn new() -> Self {
        Self { acc: [0; WIDTH_BITS], len: 0 }
    }

    /// Feeds more bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        let mut pos = (self.len % WIDTH_BITS as u64) as usize;
        self.len += data.len() as u64;
        while !data.is_empty() {
            let n = (WIDTH_BITS - pos).min(data.len());
            for (a, b) in self.acc[pos..pos + n].iter_mut().zip(&data[..n]) {
                *a ^= *b;
            }
            data = &data[n..];
            pos = (pos + n) % WIDTH_BITS;
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 160-bit digest of everything fed so far.
    pub fn digest(&self) -> [u8; DIGEST_LEN] {
        // The register as 160 bits held in 3 little-endian u64 words (the last uses 32 bits).
        let mut cells = [0u64; 3];
        for (r, &byte) in self.acc.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            let bit = (r * SHIFT) % WIDTH_BITS;
            for i in 0..8 {
                if byte >> i & 1 == 1 {
                    let p = (bit + i) % WIDTH_BITS;
                    cells[p / 64] ^= 1 << (p % 64);
                }
            }
        }
        let mut out = [0u8; DIGEST_LEN];
        out[0..8].copy_from_slice(&cells[0].to_le_bytes());
        out[8..16].copy_from_slice(&cells[1].to_le_bytes());
        out[16..20].copy_from_slice(&cells[2].to_le_bytes()[..4]);
        for (o, l) in out[12..20].iter_mut().zip((self.len as i64).to_le_bytes()) {
            *o ^= l;
        }
        out
    }

    /// The 64-bit fold the index keeps: see [`fold64`].
    pub fn digest64(&self) -> u64 {
        fold64(&self.digest())
    }
}

/// Folds a 160-bit digest to 64 bits: `u64_le(d[0..8]) ^ u64_le(d[8..16]) ^ u32_le(d[16..20])`.
///
/// Every digest bit affects the fold; the empty input folds to 0. Used only for change detection.
pub fn fold64(d: &[u8; DIGEST_LEN]) -> u64 {
    let a = u64::from_le_bytes(d[0..8].try_into().unwrap());
    let b = u64::from_le_bytes(d[8..16].try_into().unwrap());
    let c = u32::from_le_bytes(d[16..20].try_into().unwrap()) as u64;
    a ^ b ^ c
}

/// One-shot QuickXorHash of `data`.
pub fn quickxor(data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = QuickXorHash::new();
    h.update(data);
    h.digest()
}
