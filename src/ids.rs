//! The two kinds of 64-bit ids afb handles, as distinct types so the compiler keeps them apart.
//!
//! - [`FileId`]: the id **Azure Files** gives a file or directory (the REST API's `x-ms-file-id` header
//!   and the `FileId` of listings, a decimal unsigned 64-bit number). Stable across rename and move,
//!   random-looking, assigned by the service. afb reserves 0 for the share root (which Azure lists with
//!   no FileId of its own here).
//! - [`NodeId`]: the id **afb** gives a node of a share's index: dense per share (`1, 2, 3, ...`,
//!   assigned in ascending FileId order by the share's idmap, [`crate::index::idmap`], never reused),
//!   so it is stable across rename and move too. 0 is the implicit share root ([`NodeId::ROOT`]), which
//!   has no row.
//!
//! Storage (the formats do not change with these types):
//! - Parquet and Arrow store a [`NodeId`] as `INT64` (`node_id`, `parent_id` columns), its value as is.
//! - A [`FileId`] is `UINT64` in Azure's API and in JSON (decimal); where a signed `INT64` column holds one
//!   (the idmap's `file_id` column, the `file_id`/`parent_file_id` columns of listed rows) it holds its
//!   two's-complement bits: [`FileId::to_int64_bits`] and [`FileId::from_int64_bits`] are the one
//!   conversion, and `INT64` order of those bits is the order ids are assigned in.
//! - The repository's FlatBuffers node versions and backup JSON store a [`NodeId`] as `uint64`
//!   ([`NodeId::as_u64`]); node ids are never negative, so the value is the same.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's id in a share's index: dense per share, `>= 1` for real nodes, [`NodeId::ROOT`] (0) for the
/// implicit share root. Stored as `INT64` in Parquet. See the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct NodeId(pub i64);

impl NodeId {
    /// The implicit share root: it has no row; top-level entries have it as their parent.
    pub const ROOT: NodeId = NodeId(0);
    /// The largest node id (node ids are `i64`).
    pub const MAX: NodeId = NodeId(i64::MAX);

    /// The id as the repository's metadata stores it (`uint64`). Node ids are never negative.
    pub const fn as_u64(self) -> u64 {
        self.0 as u64
    }

    /// A node id stored as `uint64` (repository metadata, backup ranges), saturating at [`NodeId::MAX`].
    pub fn saturating_from_u64(v: u64) -> NodeId {
        NodeId(i64::try_from(v).unwrap_or(i64::MAX))
    }

    /// The next id (`self + 1`, saturating at [`NodeId::MAX`]).
    pub fn next(self) -> NodeId {
        NodeId(self.0.saturating_add(1))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An Azure Files FileId (`x-ms-file-id`): unsigned 64-bit, assigned by the service, stable across rename
/// and move; [`FileId::ROOT`] (0) stands for the share root. Decimal in the REST API and in JSON. See the
/// module documentation for how `INT64` columns hold it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct FileId(pub u64);

impl FileId {
    /// afb's id for the share root (Azure gives real entries non-zero FileIds).
    pub const ROOT: FileId = FileId(0);

    /// The FileId's two's-complement bits, as an `INT64` column stores it.
    pub fn to_int64_bits(self) -> i64 {
        self.0 as i64
    }

    /// The FileId whose two's-complement bits an `INT64` column holds.
    pub fn from_int64_bits(bits: i64) -> FileId {
        FileId(bits as u64)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_round_trip_through_int64_bits_and_print_unsigned() {
        for v in [0, 1, i64::MAX as u64, 1 << 63, u64::MAX] {
            assert_eq!(FileId::from_int64_bits(FileId(v).to_int64_bits()), FileId(v));
        }
        assert_eq!(FileId(u64::MAX).to_int64_bits(), -1);
        assert_eq!(FileId(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(serde_json::to_string(&FileId(1 << 63)).unwrap(), "9223372036854775808");
    }

    #[test]
    fn node_ids_convert_to_the_metadata_u64_and_back() {
        assert_eq!(NodeId(42).as_u64(), 42);
        assert_eq!(NodeId::saturating_from_u64(42), NodeId(42));
        assert_eq!(NodeId::saturating_from_u64(u64::MAX), NodeId::MAX);
        assert_eq!(NodeId(7).to_string(), "7");
        assert_eq!(serde_json::to_string(&NodeId(7)).unwrap(), "7");
    }
}
