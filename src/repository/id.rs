//! 32-byte identifiers and their lowercase-hex text form.
//!
//! - [`ChunkId`]: BLAKE3 *keyed* hash of a chunk's (or small file's) plaintext, keyed by the tenant's
//!   chunk-id key, so equal content has different ids in different tenants.
//! - [`ObjectId`]: plain BLAKE3 hash of an object's stored (encrypted) bytes; content-addressed objects
//!   (packs, index objects, bundles, metadata objects) are named by it, so anyone can check an object
//!   against its name without any key.

use std::fmt;

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }

            /// Parses 64 hex characters.
            pub fn from_hex(s: &str) -> Option<Self> {
                let bytes = unhex(s)?;
                Some(Self(bytes.try_into().ok()?))
            }

            /// Reads exactly 32 bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                Some(Self(b.try_into().ok()?))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }
    };
}

id32!(
    /// BLAKE3 keyed hash (tenant chunk-id key) of plaintext content.
    ChunkId
);
id32!(
    /// BLAKE3 hash of an object's stored bytes.
    ObjectId
);

impl ObjectId {
    /// The id of stored bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

/// Lowercase hex of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex character.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}
