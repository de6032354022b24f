//! Content hashes that are not chunk ids.
//!
//! - [`quickxor`]: Microsoft's QuickXorHash (160 bits), computed while content streams past; the index keeps
//!   its 64-bit fold for change detection, node metadata keeps all 160 bits. It is not collision resistant
//!   and never decides deduplication: chunk ids (keyed BLAKE3, see [`crate::repository::chunker`]) do.

pub mod quickxor;

pub use quickxor::{QuickXorHash, quickxor};
