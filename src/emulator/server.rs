//! The HTTP side: parses a path-style request (`/devstoreaccount1/{share}/{path…}?restype=…&comp=…`),
//! picks the operation, authorizes it, runs it in one store transaction on the blocking pool, and adds
//! the headers every Azure response carries (`x-ms-request-id`, `x-ms-version`, `Date`, and
//! `x-ms-error-code` on errors).

use super::auth;
use super::clock::{self, Clock};
use super::error::{StorageError, StorageResult};
use super::ops::Op;
use super::store::Store;
use crate::azure::credential::DEV_ACCOUNT_NAME;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::sync::Arc;

/// The service version reported when a request names none.
pub const DEFAULT_VERSION: &str = "2026-10-06";
/// Largest request body accepted (Put Range's 4 MiB limit).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Shared by all requests.
pub struct App {
    pub store: Store,
    pub clock: Clock,
    /// The decoded account key.
    pub key: Vec<u8>,
}

/// A parsed request, handed to the operation.
pub struct Req {
    /// Decoded share name; empty for service-level requests.
    pub share: String,
    /// Decoded path segments below the share, as sent (trailing-dot handling is the operation's).
    pub path: Vec<String>,
    /// Decoded query parameters, names lower-cased.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
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
}

impl Reply {
    pub fn new(status: StatusCode) -> Self {
        Reply { status, headers: Vec::new(), body: Bytes::new() }
    }

    /// Adds a header; values that are not valid header bytes are dropped with a warning.
    pub fn header(&mut self, name: &'static str, value: impl Into<String>) {
        self.push(HeaderName::from_static_lower(name), value.into());
    }

    pub fn header_owned(&mut self, name: String, value: String) {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => self.push(n, value),
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

/// The router: every request goes to [`handle`].
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let request_id = new_request_id();
    let version = request.headers().get("x-ms-version").cloned().unwrap_or(HeaderValue::from_static(DEFAULT_VERSION));
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    let is_head = request.method() == Method::HEAD;
    let (mut response, error_code) = match serve(&app, request).await {
        Ok(reply) => {
            let mut resp = Response::new(Body::from(reply.body));
            *resp.status_mut() = reply.status;
            let h = resp.headers_mut();
            for (n, v) in reply.headers {
                h.append(n, v);
            }
            (resp, None)
        }
        Err(e) => {
            let time = clock::iso7(clock::wall_ticks());
            let body = if is_head { Bytes::new() } else { Bytes::from(e.xml_body(&request_id, &time)) };
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = e.status;
            if !is_head {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            }
            (resp, Some(e.code))
        }
    };
    let h = response.headers_mut();
    h.insert("x-ms-request-id", HeaderValue::from_str(&request_id).expect("request ids are ASCII"));
    h.insert("x-ms-version", version);
    h.insert(
        http::header::DATE,
        HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())).expect("dates are ASCII"),
    );
    h.insert(
        http::header::SERVER,
        HeaderValue::from_static("Windows-Azure-File/1.0 Microsoft-HTTPAPI/2.0 (afb emulator)"),
    );
    if let Some(id) = client_request_id {
        h.insert("x-ms-client-request-id", id);
    }
    if let Some(code) = error_code {
        h.insert("x-ms-error-code", HeaderValue::from_static(code));
    }
    response
}

async fn serve(app: &Arc<App>, request: Request) -> StorageResult<Reply> {
    let (parts, body) = request.into_parts();
    let (share, path) = parse_path(parts.uri.path())?;
    let query: Vec<(String, String)> = crate::azure::credential::query_pairs(parts.uri.query().unwrap_or(""))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let op = Op::route(&parts.method, &share, &path, &query)?;
    let now = app.clock.now();
    auth::check(&app.key, &parts, &share, &path, op.need(), now)?;
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return Err(StorageError::request_body_too_large()),
    };
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let req = Req {
        share,
        path,
        query,
        headers: parts.headers,
        body,
        endpoint: format!("http://{host}/{DEV_ACCOUNT_NAME}"),
        now,
    };
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || app.store.run(op.writes(), |db| op.run(db, &req)))
        .await
        .map_err(|e| StorageError::internal(format!("request task failed: {e}")))?
}

/// Splits `/devstoreaccount1/share/a/b` into the decoded share and path segments. The path is decoded
/// before splitting (an encoded `%2F` separates names too, as in Azure). A trailing `/` is ignored;
/// empty segments elsewhere and other accounts are `InvalidUri`.
fn parse_path(raw: &str) -> StorageResult<(String, Vec<String>)> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| StorageError::invalid_uri())?;
    let mut segs: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    if segs.first() != Some(&DEV_ACCOUNT_NAME) {
        return Err(StorageError::invalid_uri());
    }
    if segs[1..].iter().any(|s| s.is_empty()) {
        return Err(StorageError::invalid_uri());
    }
    let mut rest: Vec<String> = segs[1..].iter().map(|s| s.to_string()).collect();
    let share = if rest.is_empty() { String::new() } else { rest.remove(0) };
    Ok((share, rest))
}

/// A request id shaped like Azure's (a UUID).
fn new_request_id() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_share_and_decoded_segments() {
        assert_eq!(parse_path("/devstoreaccount1/").unwrap(), (String::new(), vec![]));
        assert_eq!(parse_path("/devstoreaccount1/s1").unwrap(), ("s1".to_string(), vec![]));
        assert_eq!(
            parse_path("/devstoreaccount1/s1/a%20b/c.txt").unwrap(),
            ("s1".to_string(), vec!["a b".to_string(), "c.txt".to_string()])
        );
        assert!(parse_path("/other/s1").is_err());
        assert!(parse_path("/devstoreaccount1/s1//x").is_err());
        assert_eq!(parse_path("/devstoreaccount1/s1/a%2Fb").unwrap().1, vec!["a".to_string(), "b".to_string()]);
    }
}
