//! What an operation receives and returns: [`Req`], a parsed request, and [`Reply`], a successful
//! response under construction. The server ([`super::server`]) builds one and sends the other; the
//! operations ([`super::ops`], [`super::props`]) work between them.

use super::clock;
use super::error::{StorageError, StorageResult};
use super::store::{Node, ShareRow};
use super::wire::HeaderCase;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// A parsed request, handed to the operation.
pub struct Req {
    /// Decoded share name; empty for service-level requests.
    pub share: String,
    /// Decoded path segments below the share, as sent (trailing-dot handling is the operation's).
    pub path: Vec<String>,
    /// Decoded query parameters, names lower-cased.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Header names as the client spelled them (metadata names keep their case).
    pub header_case: HeaderCase,
    pub body: Bytes,
    /// `http://{host}/devstoreaccount1`, for `ServiceEndpoint` attributes.
    pub endpoint: String,
    /// The time of this request, in ticks (unique per request, see [`Clock`]).
    pub now: i64,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean header (`true`/`false`), false when absent.
    pub fn bool_header(&self, name: &str) -> StorageResult<bool> {
        match self.header(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(StorageError::invalid_header_value(name, v)),
        }
    }

    /// The `sharesnapshot` query parameter, checked to be a snapshot id.
    pub fn snapshot(&self) -> StorageResult<Option<String>> {
        snapshot_param(self, "sharesnapshot")
    }

    /// A copy of the request without its body (for an operation that adjusts headers before reusing
    /// code that reads them).
    pub fn clone_without_body(&self) -> Req {
        Req {
            share: self.share.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            header_case: self.header_case.clone(),
            body: Bytes::new(),
            endpoint: self.endpoint.clone(),
            now: self.now,
        }
    }

    /// Fails if the request names a share snapshot: snapshots are read-only.
    pub fn require_live(&self) -> StorageResult<()> {
        match self.query("sharesnapshot") {
            Some(v) => Err(StorageError::invalid_query_parameter("sharesnapshot", v, "Share snapshots are read-only.")),
            None => Ok(()),
        }
    }
}

/// A snapshot-id query parameter (`sharesnapshot`, `prevsharesnapshot`), normalized to 7 digits.
pub fn snapshot_param(req: &Req, name: &str) -> StorageResult<Option<String>> {
    match req.query(name) {
        None => Ok(None),
        Some(v) => match clock::parse_iso(v) {
            Some(t) => Ok(Some(clock::iso7(t))),
            None => Err(StorageError::invalid_query_parameter(name, v, "Not a valid share snapshot time.")),
        },
    }
}

/// A successful response under construction.
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Spellings of header names that are not lower case (metadata names as they were given).
    pub header_case: HeaderCase,
    /// Instead of `body`: bytes of a file, read by the server after the operation returns, within the
    /// same read transaction (streamed in pieces when large).
    pub file_body: Option<FileBody>,
}

/// The bytes `[start, end)` of `node` in share version `share`, to send as a response body.
pub struct FileBody {
    pub share: ShareRow,
    pub node: Node,
    pub start: i64,
    pub end: i64,
}

impl Reply {
    pub fn new(status: StatusCode) -> Self {
        Reply { status, headers: Vec::new(), body: Bytes::new(), header_case: HeaderCase::default(), file_body: None }
    }

    /// Adds a header; values that are not valid header bytes are dropped with a warning.
    pub fn header(&mut self, name: &'static str, value: impl Into<String>) {
        self.push(HeaderName::from_static_lower(name), value.into());
    }

    /// Adds a header whose name is written as spelled here (HTTP/1 names are case-insensitive, but
    /// Azure keeps the case of metadata names).
    pub fn header_owned(&mut self, name: String, value: String) {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => {
                if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    self.header_case.0.push(name);
                }
                self.push(n, value)
            }
            Err(_) => tracing::warn!("dropping response header with invalid name {name:?}"),
        }
    }

    fn push(&mut self, name: HeaderName, value: String) {
        match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(v) => self.headers.push((name, v)),
            Err(_) => tracing::warn!("dropping response header {name} with invalid value"),
        }
    }

    /// Sets an XML body.
    pub fn xml(mut self, body: String) -> Self {
        self.header("Content-Type", "application/xml");
        self.body = Bytes::from(body);
        self
    }
}

/// `HeaderName::from_static` wants lower case; Azure header names are written in their usual case here.
trait FromStaticLower {
    fn from_static_lower(name: &'static str) -> HeaderName;
}
impl FromStaticLower for HeaderName {
    fn from_static_lower(name: &'static str) -> HeaderName {
        HeaderName::from_bytes(name.as_bytes()).expect("static header names are valid")
    }
}

/// A random (version 4) GUID in lower-case hex, e.g. for lease ids.
pub fn new_guid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0xf,
        b[7],
        (b[8] & 0x3f) | 0x80,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}
