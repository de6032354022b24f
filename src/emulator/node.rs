//! The emulator's rows of a share's tree: nodes, their content extents and leases, as the stored tree
//! (`store`) and the computed one (`virtual_share`) both hand them to the operations.

use sha2::{Digest, Sha256};

/// The SDDL a share's root directory gets, and what new items inherit when given no permission.
pub const DEFAULT_SDDL: &str = "O:SYG:SYD:(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;AU)(A;OICI;0x1200a9;;;BU)";

/// The permission key of an SDDL string: the same SDDL always gets the same key, shaped like Azure's
/// (`12501538048846835188*422928105932735866`).
pub fn permission_key(sddl: &str) -> String {
    let h = Sha256::digest(sddl.as_bytes());
    let a = u64::from_be_bytes(h[0..8].try_into().unwrap());
    let b = u64::from_be_bytes(h[8..16].try_into().unwrap());
    format!("{a}*{b}")
}

/// The FileId Azure gives every share's root directory.
pub const ROOT_FILE_ID: u64 = 13_835_128_424_026_341_376;
/// The first FileId handed out in a share; ids count up from here and are never reused.
pub const FIRST_FILE_ID: u64 = 0xA000_0000_0000_0001;
/// Longest extent (and blob): the Put Range limit.
pub const MAX_EXTENT: i64 = 4 * 1024 * 1024;

/// User metadata in the order it was given.
pub type Metadata = Vec<(String, String)>;

/// Standard HTTP properties stored with a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_md5: Option<Vec<u8>>,
}

/// A file or directory. Times are ticks (100 ns since the Unix epoch).
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub file_id: u64,
    /// 0 for the root directory.
    pub parent_id: u64,
    /// Empty for the root directory.
    pub name: String,
    pub is_dir: bool,
    /// File size in bytes (0 for directories).
    pub size: i64,
    /// SMB attribute bits, see `props::Attributes`.
    pub attributes: u32,
    pub creation_time: i64,
    pub last_write_time: i64,
    pub change_time: i64,
    /// Time of the last change through the REST API; the ETag derives from it.
    pub last_modified: i64,
    pub permission_key: String,
    pub metadata: Metadata,
    pub content: ContentHeaders,
    /// NFS properties, stored and returned as given.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// A lease on a file: its id (a lower-case GUID) and whether it has been broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub broken: bool,
}

/// How a file was last made by Copy File (reported as `x-ms-copy-*` until the file is recreated or its
/// properties are set). Copies finish within their request, so their status is always `success`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyProps {
    /// `x-ms-copy-id`, a GUID.
    pub id: String,
    /// `x-ms-copy-source` as the request gave it.
    pub source: String,
    /// Completion time, ticks.
    pub completed: i64,
    /// Bytes copied (the progress is `bytes/bytes`).
    pub bytes: i64,
}

/// A lease on a share or share snapshot. Times are ticks. Its state at a time `t` is
/// [`ShareLease::state`]: leases last `duration_secs` (or forever, -1) from their last acquire or renew,
/// and a broken lease stays `breaking` until `broken_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLease {
    /// A lower-case GUID.
    pub id: String,
    /// 15 to 60, or -1 for an infinite lease.
    pub duration_secs: i64,
    /// When a fixed lease runs out; `None` for an infinite one.
    pub expires: Option<i64>,
    /// When a break takes (took) effect; `None` unless broken.
    pub broken_at: Option<i64>,
}

/// The state of a share lease, as Azure reports it in `x-ms-lease-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Available,
    Leased,
    Expired,
    Breaking,
    Broken,
}

impl ShareLease {
    /// The state at `now` (ticks).
    pub fn state(&self, now: i64) -> LeaseState {
        match (self.broken_at, self.expires) {
            (Some(b), _) if now >= b => LeaseState::Broken,
            (Some(_), _) => LeaseState::Breaking,
            (None, Some(e)) if now >= e => LeaseState::Expired,
            (None, _) => LeaseState::Leased,
        }
    }
}

/// `[pos, pos + length)` of a file holds `blob_id`'s bytes from `blob_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub pos: i64,
    pub length: i64,
    pub blob_id: i64,
    pub blob_offset: i64,
}

impl Extent {
    pub fn end(&self) -> i64 {
        self.pos + self.length
    }
}

/// The key names are unique and sorted by: each character upper-cased one to one (as NTFS does), so
/// `A.txt` and `a.txt` collide and listing order ignores case.
pub fn name_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}
