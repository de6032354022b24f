//! Types the Azure Files client takes and returns.
//!
//! Times are [`OffsetDateTime`] in UTC. Azure Files keeps SMB times to 100 ns; [`format_file_time`] writes
//! them back with seven fractional digits, so a time read and written again is unchanged.

use std::collections::BTreeMap;
use time::OffsetDateTime;

use super::retry::RetryPolicy;

/// Azure's rule for share names: 3-63 characters of lower-case letters, digits and single hyphens,
/// starting and ending with a letter or digit. The emulator enforces it; the API checks it on registration.
pub fn is_valid_share_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// The longest directory or file name Azure Files allows, in UTF-16 code units.
pub const MAX_ENTRY_NAME_UTF16: usize = 255;

/// Checks one directory or file name (decoded) as a listing or a repository hands it over: the one name
/// check at the client boundary, used again by restore on every path component before writing.
///
/// Refuses what Azure Files forbids in a name and what would not be one safe path component: empty,
/// `.`, `..`, `/`, `\`, control characters U+0000-U+001F, and names over [`MAX_ENTRY_NAME_UTF16`]
/// UTF-16 units. (Azure also forbids `"` `:` `|` `<` `>` `*` `?` on SMB; NFS shares may hold them and
/// they are harmless in one component, so they are kept.) Returns why a name is refused.
pub fn check_entry_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == "." || name == ".." {
        return Err("name is . or ..");
    }
    if name.contains(['/', '\\']) {
        return Err("name holds a path separator (/ or \\)");
    }
    if name.chars().any(|c| (c as u32) < 0x20) {
        return Err("name holds a control character (U+0000-U+001F)");
    }
    if name.encode_utf16().count() > MAX_ENTRY_NAME_UTF16 {
        return Err("name is longer than 255 UTF-16 units");
    }
    Ok(())
}

/// Options shared by every request a [`super::FileServiceClient`] (and the clients made from it) sends.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Retry and backoff policy for failed attempts.
    pub retry: RetryPolicy,
    /// Time allowed for one attempt: connecting, sending, and reading the whole response body.
    pub request_timeout: std::time::Duration,
    /// Requests in flight at once across all clients made from one service client (at least 1).
    pub max_concurrency: usize,
    /// Bytes fetched per ranged GET by [`super::FileClient::download`] (at most 4 MiB is typical).
    pub download_chunk_size: u64,
    /// Chunks of one download fetched concurrently (at least 1); chunks are yielded in order.
    pub download_parallelism: usize,
    /// Which addresses connections may go to (see [`super::AddressPolicy`]); `Any` by default.
    pub address_policy: super::AddressPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            request_timeout: std::time::Duration::from_secs(60),
            max_concurrency: 64,
            download_chunk_size: 4 * 1024 * 1024,
            download_parallelism: 2,
            address_policy: super::AddressPolicy::Any,
        }
    }
}

/// A share as listed by [`super::FileServiceClient::list_shares`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShareItem {
    pub name: String,
    /// The snapshot timestamp when the item is a share snapshot (only listed when snapshots are asked for).
    pub snapshot: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<OffsetDateTime>,
    /// Quota in GiB.
    pub quota_gib: Option<u64>,
    /// `SMB` or `NFS`, when the service reports it.
    pub enabled_protocols: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// One page of a share listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharesPage {
    pub shares: Vec<ShareItem>,
    /// Marker for the next page; `None` on the last page.
    pub next_marker: Option<String>,
}

/// Options for [`super::ShareClient::create_with`].
#[derive(Debug, Clone, Default)]
pub struct ShareOptions {
    /// Quota in GiB (service default when `None`).
    pub quota_gib: Option<u64>,
    /// `SMB` (default) or `NFS` (premium accounts only on Azure).
    pub enabled_protocols: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Properties of a share (`Get Share Properties`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShareProperties {
    pub etag: Option<String>,
    pub last_modified: Option<OffsetDateTime>,
    pub quota_gib: Option<u64>,
    pub enabled_protocols: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Where a file or directory's security descriptor comes from when it is created or changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Permission {
    /// An SDDL string sent inline (`x-ms-file-permission`, at most 8 KiB; larger ones need a key).
    Sddl(String),
    /// A key from [`super::ShareClient::create_permission`] (`x-ms-file-permission-key`).
    Key(String),
    /// Inherit from the parent directory (`x-ms-file-permission: inherit`, create only).
    Inherit,
}

/// NFS properties. Each is `None` when the service does not report it (SMB shares) or, when setting,
/// when it is to be left as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NfsProperties {
    /// Octal mode, e.g. `0644` (`x-ms-mode`).
    pub mode: Option<String>,
    /// Numeric owner id (`x-ms-owner`).
    pub owner: Option<String>,
    /// Numeric group id (`x-ms-group`).
    pub group: Option<String>,
}

/// Properties sent when creating or changing a file or directory. `None` fields are left to the service:
/// on create that is its default (attributes `None`/`Directory`, times "now", permission inherited), on
/// set_properties the current value is preserved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeProps {
    /// SMB attributes joined with `|`, e.g. `ReadOnly|Archive` (`x-ms-file-attributes`).
    pub attributes: Option<String>,
    pub creation_time: Option<OffsetDateTime>,
    pub last_write_time: Option<OffsetDateTime>,
    pub change_time: Option<OffsetDateTime>,
    pub permission: Option<Permission>,
    pub nfs: NfsProperties,
    /// Metadata sent on create only (`x-ms-meta-*`); use `set_metadata` to change it later.
    pub metadata: BTreeMap<String, String>,
    /// Files only: `x-ms-content-type`. Note that Set File Properties clears a content type not sent.
    pub content_type: Option<String>,
}

/// Properties of a file or directory as returned by `Get File Properties` / `Get Directory Properties`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties {
    /// Azure's FileId: stable across rename, unique within the share.
    pub file_id: Option<String>,
    /// FileId of the parent directory.
    pub parent_id: Option<String>,
    /// Size in bytes (0 for directories).
    pub content_length: u64,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<OffsetDateTime>,
    /// SMB attributes joined with ` | ` as the service returns them, e.g. `Archive | ReadOnly`.
    pub attributes: Option<String>,
    pub creation_time: Option<OffsetDateTime>,
    pub last_write_time: Option<OffsetDateTime>,
    pub change_time: Option<OffsetDateTime>,
    pub permission_key: Option<String>,
    pub nfs: NfsProperties,
    pub metadata: BTreeMap<String, String>,
}

/// Whether a listed entry is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
}

/// One entry of a directory listing, with everything `include=Timestamps,ETag,Attributes,PermissionKey`
/// and `x-ms-file-extended-info: true` return: no per-entry HEAD is needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: EntryKind,
    /// The name within the directory (decoded; may be any unicode).
    pub name: String,
    pub file_id: Option<String>,
    /// Size in bytes; 0 for directories.
    pub size: u64,
    pub creation_time: Option<OffsetDateTime>,
    pub last_access_time: Option<OffsetDateTime>,
    pub last_write_time: Option<OffsetDateTime>,
    pub change_time: Option<OffsetDateTime>,
    pub last_modified: Option<OffsetDateTime>,
    pub etag: Option<String>,
    pub attributes: Option<String>,
    pub permission_key: Option<String>,
}

impl Entry {
    /// An entry with only a kind and a name.
    pub fn new(kind: EntryKind, name: impl Into<String>) -> Entry {
        Entry {
            kind,
            name: name.into(),
            file_id: None,
            size: 0,
            creation_time: None,
            last_access_time: None,
            last_write_time: None,
            change_time: None,
            last_modified: None,
            etag: None,
            attributes: None,
            permission_key: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }
}

/// One page of a directory listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// Marker for the next page; `None` on the last page.
    pub next_marker: Option<String>,
    /// FileId of the listed directory, when the service returns it.
    pub directory_id: Option<String>,
    /// Entries dropped because [`check_entry_name`] refused their name; the rest of the page is kept.
    pub rejected: Vec<RejectedEntry>,
}

/// A listed entry whose name was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedEntry {
    /// The name as listed (decoded), escaped for logs: control characters as `\u{..}`.
    pub name: String,
    /// Why [`check_entry_name`] refused it.
    pub reason: &'static str,
}

impl std::fmt::Display for RejectedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\": {}", self.name, self.reason)
    }
}

/// An inclusive byte range `start..=end`, as List Ranges reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The result of List Ranges: ranges holding data (or, against a previous snapshot, changed), and
/// ranges cleared since that snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeList {
    pub ranges: Vec<ByteRange>,
    pub clear_ranges: Vec<ByteRange>,
    /// The file's size in bytes (`x-ms-content-length`), when reported.
    pub content_length: Option<u64>,
}

/// Formats a time as Azure Files expects for SMB times: `YYYY-MM-DDTHH:MM:SS.fffffffZ` (UTC, 100 ns).
pub fn format_file_time(t: OffsetDateTime) -> String {
    let mut out = String::with_capacity(28);
    write_file_time(&mut out, t);
    out
}

/// Appends `t` as [`format_file_time`] writes it (without allocating: the emulator writes thousands
/// per listing page).
pub fn write_file_time(out: &mut String, t: OffsetDateTime) {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        use std::fmt::Write as _;
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond() / 100
        );
        return;
    }
    /// `v` as exactly `width` decimal digits (at most 7).
    fn push(out: &mut String, v: u32, width: usize) {
        let mut buf = [b'0'; 7];
        let mut v = v;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.push_str(std::str::from_utf8(&buf[..width]).expect("ASCII digits"));
    }
    push(out, t.year() as u32, 4);
    out.push('-');
    push(out, u8::from(t.month()) as u32, 2);
    out.push('-');
    push(out, t.day() as u32, 2);
    out.push('T');
    push(out, t.hour() as u32, 2);
    out.push(':');
    push(out, t.minute() as u32, 2);
    out.push(':');
    push(out, t.second() as u32, 2);
    out.push('.');
    push(out, t.nanosecond() / 100, 7);
    out.push('Z');
}

/// Parses an ISO 8601 / RFC 3339 time such as `2026-01-02T03:04:05.1234567Z`.
pub fn parse_file_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// Parses an HTTP date (`Last-Modified`), e.g. `Wed, 25 Nov 2026 12:00:00 GMT`.
pub fn parse_http_time(s: &str) -> Option<OffsetDateTime> {
    httpdate::parse_http_date(s.trim()).ok().map(OffsetDateTime::from)
}

/// SMB file attributes: name as Azure Files spells it, bit, and whether a request may set it. The
/// settable ones (with `None` for no bits) are exactly what Azure Files accepts in
/// `x-ms-file-attributes`; `Normal` and `IntegrityStream` are Windows attributes a listing may report but
/// a request may not set. In bit order, which is the order Azure lists them in.
pub const SMB_ATTRIBUTES: [(&str, u32, bool); 11] = [
    ("ReadOnly", 0x1, true),
    ("Hidden", 0x2, true),
    ("System", 0x4, true),
    ("Directory", 0x10, true),
    ("Archive", 0x20, true),
    ("Normal", 0x80, false),
    ("Temporary", 0x100, true),
    ("Offline", 0x1000, true),
    ("NotContentIndexed", 0x2000, true),
    ("IntegrityStream", 0x8000, false),
    ("NoScrubData", 0x20000, true),
];
pub const ATTR_DIRECTORY: u32 = 0x10;
pub const ATTR_ARCHIVE: u32 = 0x20;

/// Parses an attribute list as a request carries it (`ReadOnly|Hidden`, `None`; case-insensitive,
/// spaces around names allowed) the way Azure Files does: `None` if any part is not a settable name.
pub fn parse_request_attributes(s: &str) -> Option<u32> {
    let mut bits = 0;
    for part in s.split('|').map(str::trim) {
        if !part.eq_ignore_ascii_case("None") {
            bits |= SMB_ATTRIBUTES.iter().find(|(n, _, settable)| *settable && n.eq_ignore_ascii_case(part))?.1;
        }
    }
    Some(bits)
}

/// Parses an attribute list as a listing reports it (`Archive | ReadOnly`; empty means none), leniently:
/// the bits of every known name, and the unknown names (for the caller to report, not fatal).
pub fn parse_attributes(s: &str) -> (u32, Vec<String>) {
    let mut bits = 0;
    let mut unknown = Vec::new();
    for part in s.split('|').map(str::trim).filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("None")) {
        match SMB_ATTRIBUTES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(part)) {
            Some((_, b, _)) => bits |= b,
            None => unknown.push(part.to_string()),
        }
    }
    (bits, unknown)
}

/// Bits as the service reports them: `ReadOnly | Archive`, or `None`.
pub fn format_attributes(bits: u32) -> String {
    join_attributes(bits, false, " | ")
}

/// Bits as a request sets them (`x-ms-file-attributes`): `ReadOnly|Archive`, or `None`; bits a request
/// may not set are left out.
pub fn request_attributes(bits: u32) -> String {
    join_attributes(bits, true, "|")
}

fn join_attributes(bits: u32, settable_only: bool, sep: &str) -> String {
    let names: Vec<&str> = SMB_ATTRIBUTES
        .iter()
        .filter(|(_, b, settable)| bits & b != 0 && (*settable || !settable_only))
        .map(|(n, _, _)| *n)
        .collect();
    if names.is_empty() { "None".to_string() } else { names.join(sep) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_strictly_for_requests_and_leniently_for_listings() {
        assert_eq!(parse_request_attributes("ReadOnly|Archive"), Some(0x21));
        assert_eq!(parse_request_attributes("readonly | hidden"), Some(0x3));
        assert_eq!(parse_request_attributes("None"), Some(0));
        assert_eq!(parse_request_attributes("Bogus"), None);
        assert_eq!(parse_request_attributes("Normal"), None, "Azure Files does not accept Normal in a request");
        assert_eq!(parse_request_attributes(""), None);
        assert_eq!(parse_attributes("Archive | ReadOnly"), (0x21, vec![]));
        assert_eq!(parse_attributes("Directory|Hidden|System"), (0x16, vec![]));
        assert_eq!(parse_attributes("None"), (0, vec![]));
        assert_eq!(parse_attributes(""), (0, vec![]));
        assert_eq!(parse_attributes("archive | Sparkly | IntegrityStream"), (0x8020, vec!["Sparkly".to_string()]));
        assert_eq!(format_attributes(0x21), "ReadOnly | Archive");
        assert_eq!(format_attributes(0x10), "Directory");
        assert_eq!(format_attributes(0), "None");
        assert_eq!(request_attributes(0x8021), "ReadOnly|Archive");
        assert_eq!(request_attributes(0x80), "None");
    }

    #[test]
    fn file_times_round_trip_at_100ns() {
        let t = parse_file_time("2026-01-02T03:04:05.1234567Z").unwrap();
        assert_eq!(t.nanosecond(), 123_456_700);
        assert_eq!(format_file_time(t), "2026-01-02T03:04:05.1234567Z");
        assert_eq!(format_file_time(parse_file_time("2026-01-02T03:04:05Z").unwrap()), "2026-01-02T03:04:05.0000000Z");
        assert!(parse_file_time("yesterday").is_none());
    }

    #[test]
    fn http_times_parse() {
        let t = parse_http_time("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!((t.year(), t.hour()), (2026, 12));
    }
}
