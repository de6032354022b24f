//! The HTTP calls: one method per Azure Files REST operation, on four cheap, cloneable clients.
//!
//! [`FileServiceClient`] (the account) → [`ShareClient`] (a share, or a read-only view of one snapshot)
//! → [`DirectoryClient`] and [`FileClient`]. All clients made from one service client share its HTTP
//! connection pool, its concurrency limit and its retry policy.
//!
//! Every request carries `x-ms-version: 2025-11-05` ([`API_VERSION`]) and `x-ms-date`, and is signed with
//! Shared Key or carries the SAS token. Paths are percent-encoded once, per segment, and the Shared Key
//! signature is computed over the path and query exactly as sent. Failed attempts are retried as
//! [`super::retry`] describes; every attempt holds one slot of the client's [`super::window`] (at most
//! `max_concurrency`, halved while the share throttles) only while it is in flight (not while it waits
//! to retry), and reads its whole body before releasing it: at most
//! [`MAX_RESPONSE_BODY_BYTES`] (a ranged download: the range asked for), counted as it arrives.
//!
//! Redirects are never followed. [`ClientOptions::address_policy`] is enforced on every connection: a
//! literal IP host when the client is made, names through the DNS resolver
//! ([`super::address::PolicyResolver`]); a refusal is [`ErrorKind::Refused`], never retried.

use super::credential::{AccountConfig, Credential, shared_key_authorization, shared_key_string_to_sign};
use super::error::{AzureError, ErrorKind, first_line};
use super::model::*;
use super::retry::{is_retryable_status, parse_retry_after};
use super::window::{Answer, Window};
use super::xml;
use bytes::Bytes;
use futures::{Stream, StreamExt as _, TryStreamExt as _, stream};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The Azure Files REST API version every request is sent with (`x-ms-version`). One version is pinned
/// so the headers and XML this client reads are always the ones that version documents.
pub const API_VERSION: &str = "2025-11-05";

/// The largest range one Put Range may write: 4 MiB.
pub const MAX_RANGE_BYTES: u64 = 4 * 1024 * 1024;

/// The largest response body read for anything but file content (listings, XML, JSON, error bodies):
/// 16 MiB. A listing page of 5000 entries is about 3.5 MB at 700 bytes an entry; the rest is room for
/// long, percent-encoded names. A larger body is a protocol error, not retried. Ranged downloads are
/// capped at the range asked for instead.
pub const MAX_RESPONSE_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Characters left as they are in a path segment or query value: the unreserved set `A-Za-z0-9-._~`.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Headers asking for everything a backup scan needs in one listing call.
const LIST_INCLUDE: &str = "Timestamps,ETag,Attributes,PermissionKey";

struct Inner {
    http: reqwest::Client,
    account: AccountConfig,
    /// `scheme://host[:port]`.
    origin: String,
    /// The endpoint's path without a trailing slash: `""` on Azure, `/devstoreaccount1` path-style.
    base_path: String,
    options: ClientOptions,
    /// Requests in flight at once, at most: `options.max_concurrency`, halved while the share throttles.
    window: Window,
    /// HTTP attempts sent so far (retries included).
    attempts: AtomicU64,
}

/// A response read in full.
struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One REST call, ready to be sent (and re-sent on retry: the body is [`Bytes`]).
#[derive(Debug)]
struct Request {
    operation: &'static str,
    /// `share/path`, for error messages.
    target: String,
    method: Method,
    /// The encoded path below the endpoint, starting with `/`.
    path: String,
    query: Vec<(&'static str, String)>,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The longest successful response body accepted, in bytes ([`MAX_RESPONSE_BODY_BYTES`] unless set).
    max_response_body: usize,
}

impl Request {
    fn new(operation: &'static str, target: &str, method: Method, path: String) -> Request {
        Request {
            operation,
            target: target.to_string(),
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            max_response_body: MAX_RESPONSE_BODY_BYTES,
        }
    }

    fn query(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.query.push((name, value.into()));
        self
    }

    fn query_opt(self, name: &'static str, value: Option<impl Into<String>>) -> Request {
        match value {
            Some(v) => self.query(name, v),
            None => self,
        }
    }

    fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn headers(mut self, headers: Vec<(String, String)>) -> Request {
        self.headers.extend(headers);
        self
    }

    fn body(mut self, body: Bytes, content_type: &str) -> Request {
        self.body = body;
        self.header("content-type", content_type)
    }

    fn error(&self, kind: ErrorKind) -> AzureError {
        AzureError::new(self.operation, self.target.clone(), kind)
    }
}

impl Inner {
    /// The full URL of a request: endpoint, encoded path, query, and the SAS token if that is the
    /// credential.
    fn url(&self, path: &str, query: &[(&'static str, String)]) -> String {
        let mut url = format!("{}{}{}", self.origin, self.base_path, path);
        let mut sep = '?';
        for (k, v) in query {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.extend(utf8_percent_encode(v, ENCODE));
            sep = '&';
        }
        if let Credential::Sas { token } = &self.account.credential
            && !token.is_empty()
        {
            url.push(sep);
            url.push_str(token);
        }
        url
    }

    /// Sends a request, retrying transient failures. Returns the successful (2xx) response or an error
    /// naming the request's operation and target.
    async fn send(&self, req: &Request) -> Result<Response, AzureError> {
        let url = url::Url::parse(&self.url(&req.path, &req.query))
            .map_err(|e| req.error(ErrorKind::Invalid(format!("bad URL: {e}"))))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| req.error(ErrorKind::Invalid(format!("bad header name {name:?}"))))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                req.error(ErrorKind::Invalid(format!("header {name} has a value HTTP cannot carry: {value:?}")))
            })?;
            headers.insert(name, value);
        }
        headers.insert("x-ms-version", HeaderValue::from_static(API_VERSION));
        if !req.body.is_empty() {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        let policy = &self.options.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (kind, retry_after, retryable) = match self.attempt(req, &url, &headers).await {
                Ok(resp) if resp.status.is_success() => return Ok(resp),
                Ok(resp) => {
                    let retry_after =
                        resp.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                    (status_error(&resp), retry_after, is_retryable_status(resp.status.as_u16()))
                }
                Err(AttemptError::Transport(message)) => (ErrorKind::Transport(message), None, true),
                Err(AttemptError::Permanent(kind)) => (kind, None, false),
            };
            if !retryable || attempt >= policy.max_attempts.max(1) {
                return Err(req.error(kind));
            }
            let delay = policy.delay_random(attempt, retry_after);
            tracing::debug!(operation = req.operation, target = %req.target, attempt, ?delay, error = ?kind, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: sign, send, read the whole body (at most `req.max_response_body` bytes on success,
    /// [`MAX_RESPONSE_BODY_BYTES`] otherwise).
    async fn attempt(&self, req: &Request, url: &url::Url, headers: &HeaderMap) -> Result<Response, AttemptError> {
        let slot =
            self.window.acquire().await.ok_or_else(|| AttemptError::Transport("client is shut down".to_string()))?;
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let mut headers = headers.clone();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        headers.insert("x-ms-date", HeaderValue::from_str(&date).expect("HTTP dates are ASCII"));
        if let Credential::SharedKey { account, key } = &self.account.credential {
            let to_sign = shared_key_string_to_sign(
                req.method.as_str(),
                account,
                url.path(),
                url.query().unwrap_or(""),
                &headers,
            );
            let auth = shared_key_authorization(account, key, &to_sign);
            headers.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&auth).map_err(|e| AttemptError::Transport(e.to_string()))?,
            );
        }
        let mut builder =
            self.http.request(req.method.clone(), url.clone()).headers(headers).timeout(self.options.request_timeout);
        if req.method == Method::PUT || !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        let mut resp = builder.send().await.map_err(|e| match refused_by_policy(&e) {
            Some(r) => AttemptError::Permanent(ErrorKind::Refused(r.to_string())),
            None => AttemptError::Transport(describe(e)),
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Read chunk by chunk against the cap: Content-Length is not trusted.
        let max = if status.is_success() { req.max_response_body } else { MAX_RESPONSE_BODY_BYTES };
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| AttemptError::Transport(describe(e)))? {
            if body.len() + chunk.len() > max {
                return Err(AttemptError::Permanent(ErrorKind::Protocol(format!(
                    "response body is larger than {max} bytes (status {})",
                    status.as_u16()
                ))));
            }
            body.extend_from_slice(&chunk);
        }
        let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        slot.end(if status == StatusCode::SERVICE_UNAVAILABLE || retry_after.is_some() {
            Answer::Throttled(retry_after)
        } else {
            Answer::Clean
        });
        Ok(Response { status, headers, body: body.freeze() })
    }
}

/// Why one attempt failed.
enum AttemptError {
    /// The request could not be completed (connection refused or reset, timeout): retried.
    Transport(String),
    /// Retrying cannot help (an address the policy refuses, a body over its cap).
    Permanent(ErrorKind),
}

/// The policy refusal behind a transport error, when the DNS resolver refused the host's addresses.
fn refused_by_policy(e: &reqwest::Error) -> Option<&super::AddressRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<super::AddressRefused>() {
            return Some(r);
        }
        // An io::Error's source() skips the error it wraps; look at that one too.
        if let Some(r) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<super::AddressRefused>())
        {
            return Some(r);
        }
        source = cause.source();
    }
    None
}

/// A transport error as one line with its causes, without the URL (which may hold a SAS token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The error of a non-success response: status, Azure's code and the first line of its message.
fn status_error(resp: &Response) -> ErrorKind {
    let header_code = resp.headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (body_code, message) = xml::parse_error(&resp.body).unwrap_or_default();
    let message = message.or_else(|| {
        // Some answers (HEAD, JSON operations) carry no XML; keep a short plain-text body if any.
        let text = std::str::from_utf8(&resp.body).ok()?;
        first_line(text).filter(|l| l.len() <= 200 && !l.starts_with('<') && !l.starts_with('{'))
    });
    ErrorKind::Status { status: resp.status.as_u16(), code: header_code.or(body_code), message }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).filter(|s| !s.is_empty())
}

fn header_string(h: &HeaderMap, name: &str) -> Option<String> {
    header(h, name).map(str::to_string)
}

fn metadata_from(h: &HeaderMap) -> BTreeMap<String, String> {
    h.iter()
        .filter_map(|(k, v)| Some((k.as_str().strip_prefix("x-ms-meta-")?.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

fn metadata_headers(metadata: &BTreeMap<String, String>) -> Vec<(String, String)> {
    metadata.iter().map(|(k, v)| (format!("x-ms-meta-{k}"), v.clone())).collect()
}

/// Parses the properties headers of Get File/Directory Properties (and of a download).
fn properties_from(h: &HeaderMap) -> Result<Properties, String> {
    let time = |name: &str, http: bool| -> Result<Option<time::OffsetDateTime>, String> {
        match header(h, name) {
            None => Ok(None),
            Some(v) => {
                let t = if http { parse_http_time(v) } else { parse_file_time(v) };
                t.map(Some).ok_or_else(|| format!("header {name} is not a time: {v:?}"))
            }
        }
    };
    let content_length = match header(h, "content-length") {
        Some(v) => v.parse().map_err(|_| format!("Content-Length is not a number: {v:?}"))?,
        None => 0,
    };
    Ok(Properties {
        file_id: header_string(h, "x-ms-file-id"),
        parent_id: header_string(h, "x-ms-file-parent-id"),
        content_length,
        content_type: header_string(h, "content-type"),
        etag: header_string(h, "etag"),
        last_modified: time("last-modified", true)?,
        attributes: header_string(h, "x-ms-file-attributes"),
        creation_time: time("x-ms-file-creation-time", false)?,
        last_write_time: time("x-ms-file-last-write-time", false)?,
        change_time: time("x-ms-file-change-time", false)?,
        permission_key: header_string(h, "x-ms-file-permission-key"),
        nfs: NfsProperties {
            mode: header_string(h, "x-ms-mode"),
            owner: header_string(h, "x-ms-owner"),
            group: header_string(h, "x-ms-group"),
        },
        metadata: metadata_from(h),
    })
}

/// The headers that set SMB and NFS properties; fields that are `None` are not sent.
fn props_headers(props: &NodeProps, with_metadata: bool, file: bool) -> Vec<(String, String)> {
    let mut h = Vec::new();
    let mut push = |k: &str, v: String| h.push((k.to_string(), v));
    if let Some(a) = &props.attributes {
        push("x-ms-file-attributes", a.clone());
    }
    for (name, t) in [
        ("x-ms-file-creation-time", props.creation_time),
        ("x-ms-file-last-write-time", props.last_write_time),
        ("x-ms-file-change-time", props.change_time),
    ] {
        if let Some(t) = t {
            push(name, format_file_time(t));
        }
    }
    match &props.permission {
        Some(Permission::Sddl(s)) => push("x-ms-file-permission", s.clone()),
        Some(Permission::Key(k)) => push("x-ms-file-permission-key", k.clone()),
        Some(Permission::Inherit) => push("x-ms-file-permission", "inherit".into()),
        None => {}
    }
    if let Some(m) = &props.nfs.mode {
        push("x-ms-mode", m.clone());
    }
    if let Some(o) = &props.nfs.owner {
        push("x-ms-owner", o.clone());
    }
    if let Some(g) = &props.nfs.group {
        push("x-ms-group", g.clone());
    }
    if file && let Some(ct) = &props.content_type {
        push("x-ms-content-type", ct.clone());
    }
    if with_metadata {
        h.extend(metadata_headers(&props.metadata));
    }
    h
}

/// Splits a path on `/`, dropping empty segments: `"/a//b/"` → `["a", "b"]`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn normalize(path: &str) -> String {
    segments(path).collect::<Vec<_>>().join("/")
}

fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

/// The account's file service.
#[derive(Clone)]
pub struct FileServiceClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServiceClient").field("endpoint", &self.inner.account.endpoint).finish()
    }
}

impl FileServiceClient {
    /// A client for the account `config` names. Fails only if the endpoint is not a valid URL or the
    /// HTTP client cannot be built.
    pub fn new(config: AccountConfig, options: ClientOptions) -> Result<FileServiceClient, AzureError> {
        let invalid = |m: String| AzureError::new("create client", config.endpoint.clone(), ErrorKind::Invalid(m));
        let endpoint = url::Url::parse(&config.endpoint).map_err(|e| invalid(format!("endpoint is not a URL: {e}")))?;
        let origin = endpoint[..url::Position::BeforePath].to_string();
        let base_path = endpoint.path().trim_end_matches('/').to_string();
        let policy = options.address_policy;
        // A literal IP host never reaches the DNS resolver: it is checked here, before any request.
        let literal_ip = match endpoint.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal_ip
            && !policy.allows(ip)
        {
            let refused =
                super::AddressRefused { host: endpoint.host_str().unwrap_or_default().to_string(), address: ip };
            return Err(AzureError::new(
                "create client",
                config.endpoint.clone(),
                ErrorKind::Refused(refused.to_string()),
            ));
        }
        // Never follow redirects: a redirect could lead to any host, past the address policy.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(options.max_concurrency.max(1))
            .connect_timeout(options.request_timeout.min(std::time::Duration::from_secs(30)));
        if policy != super::AddressPolicy::Any {
            // Names are resolved, and their addresses checked, for every connection; a proxy would
            // resolve them out of reach of the check, so none is used.
            builder = builder.dns_resolver(super::address::PolicyResolver { policy }).no_proxy();
        }
        let http = builder.build().map_err(|e| invalid(describe(e)))?;
        let window = Window::new(options.max_concurrency);
        Ok(FileServiceClient {
            inner: Arc::new(Inner {
                http,
                account: config,
                origin,
                base_path,
                options,
                window,
                attempts: AtomicU64::new(0),
            }),
        })
    }

    /// A client from a connection string with default options.
    pub fn from_connection_string(conn: &str) -> Result<FileServiceClient, AzureError> {
        let config = AccountConfig::from_connection_string(conn)
            .map_err(|e| AzureError::new("create client", "", ErrorKind::Invalid(e.to_string())))?;
        FileServiceClient::new(config, ClientOptions::default())
    }

    /// The account's name.
    pub fn account(&self) -> &str {
        &self.inner.account.account
    }

    /// HTTP requests sent so far by this client and every client made from it, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// Throttled answers so far (503, or `Retry-After`), of this client and every client made from it.
    pub fn requests_throttled(&self) -> u64 {
        self.inner.window.throttled()
    }

    /// The options every request uses.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// One page of `List Shares` (with metadata; with snapshots too when `include_snapshots`).
    pub async fn list_shares_page(
        &self,
        marker: Option<&str>,
        maxresults: Option<u32>,
        include_snapshots: bool,
    ) -> Result<SharesPage, AzureError> {
        self.list_shares_page_with(None, marker, maxresults, include_snapshots).await
    }

    /// One page of `List Shares` of the shares whose names start with `prefix` (with metadata; with
    /// snapshots too when `include_snapshots`).
    pub async fn list_shares_page_with(
        &self,
        prefix: Option<&str>,
        marker: Option<&str>,
        maxresults: Option<u32>,
        include_snapshots: bool,
    ) -> Result<SharesPage, AzureError> {
        let include = if include_snapshots { "metadata,snapshots" } else { "metadata" };
        let req = Request::new("list shares", "", Method::GET, "/".into())
            .query("comp", "list")
            .query_opt("prefix", prefix)
            .query("include", include)
            .query_opt("marker", marker)
            .query_opt("maxresults", maxresults.map(|m| m.to_string()));
        let resp = self.inner.send(&req).await?;
        xml::parse_list_shares(&resp.body).map_err(|e| req.error(ErrorKind::Protocol(e.0)))
    }

    /// The snapshots of share `name` (all pages of `List Shares` with `prefix=name`,
    /// `include=metadata,snapshots`), each with its own metadata, oldest first.
    pub async fn list_share_snapshots(&self, name: &str) -> Result<Vec<ShareItem>, AzureError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_shares_page_with(Some(name), marker.as_deref(), None, true).await?;
            out.extend(page.shares.into_iter().filter(|s| s.name == name && s.snapshot.is_some()));
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        out.sort_by(|a, b| a.snapshot.cmp(&b.snapshot));
        Ok(out)
    }

    /// Every share of the account (all pages), without snapshots.
    pub async fn list_shares(&self) -> Result<Vec<ShareItem>, AzureError> {
        let mut shares = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self.list_shares_page(marker.as_deref(), None, false).await?;
            shares.extend(page.shares);
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => return Ok(shares),
            }
        }
    }

    /// A client for share `name` (nothing is sent).
    pub fn share(&self, name: &str) -> ShareClient {
        ShareClient { inner: self.inner.clone(), name: name.to_string(), snapshot: None }
    }
}

/// A share, or with [`ShareClient::at_snapshot`] a read-only view of one of its snapshots.
#[derive(Clone)]
pub struct ShareClient {
    inner: Arc<Inner>,
    name: String,
    snapshot: Option<String>,
}

impl std::fmt::Debug for ShareClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareClient").field("name", &self.name).field("snapshot", &self.snapshot).finish()
    }
}

impl ShareClient {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account this share belongs to (endpoint and credential).
    pub fn account_config(&self) -> &AccountConfig {
        &self.inner.account
    }

    /// The options every request of this client uses.
    pub fn client_options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Requests this client (and every client of its service) sends at once now, at most: the
    /// configured maximum, lowered while the share throttles (see [`super::window`]).
    pub fn requests_in_flight_limit(&self) -> usize {
        self.inner.window.limit()
    }

    /// The lowest [`ShareClient::requests_in_flight_limit`] so far.
    pub fn requests_in_flight_lowest(&self) -> usize {
        self.inner.window.lowest()
    }

    /// HTTP requests sent so far through this client's service (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// Throttled answers so far (503, or `Retry-After`) through this client's service.
    pub fn requests_throttled(&self) -> u64 {
        self.inner.window.throttled()
    }

    /// The snapshot this view reads, if it is one.
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref()
    }

    /// A read-only view of snapshot `timestamp` of this share (e.g. from [`ShareClient::create_snapshot`]).
    /// Reads through it add `sharesnapshot=`; writes fail without sending anything.
    pub fn at_snapshot(&self, timestamp: &str) -> ShareClient {
        ShareClient { inner: self.inner.clone(), name: self.name.clone(), snapshot: Some(timestamp.to_string()) }
    }

    /// A client for the directory at `path` (`""` or `"/"` is the root; nothing is sent).
    pub fn directory(&self, path: &str) -> DirectoryClient {
        DirectoryClient { share: self.clone(), path: normalize(path) }
    }

    /// The root directory.
    pub fn root(&self) -> DirectoryClient {
        self.directory("")
    }

    /// A client for the file at `path` (nothing is sent).
    pub fn file(&self, path: &str) -> FileClient {
        FileClient { share: self.clone(), path: normalize(path) }
    }

    /// The encoded URL path of `path` in this share: `/share/seg/seg`.
    fn encoded_path(&self, path: &str) -> String {
        let mut s = String::from("/");
        s.extend(utf8_percent_encode(&self.name, ENCODE));
        for seg in segments(path) {
            s.push('/');
            s.extend(utf8_percent_encode(seg, ENCODE));
        }
        s
    }

    fn target(&self, path: &str) -> String {
        if path.is_empty() { self.name.clone() } else { format!("{}/{}", self.name, path) }
    }

    /// A request that reads: through a snapshot view it carries `sharesnapshot`.
    fn read(&self, operation: &'static str, method: Method, path: &str) -> Request {
        Request::new(operation, &self.target(path), method, self.encoded_path(path))
            .query_opt("sharesnapshot", self.snapshot.clone())
    }

    /// A request that writes: refused through a snapshot view.
    fn write(&self, operation: &'static str, method: Method, path: &str) -> Result<Request, AzureError> {
        let req = Request::new(operation, &self.target(path), method, self.encoded_path(path));
        match &self.snapshot {
            Some(ts) => Err(req.error(ErrorKind::Invalid(format!("share snapshot {ts} is read-only")))),
            None => Ok(req),
        }
    }

    async fn send(&self, req: Request) -> Result<(Request, Response), AzureError> {
        let resp = self.inner.send(&req).await?;
        Ok((req, resp))
    }

    /// Creates the share with the service's defaults.
    pub async fn create(&self) -> Result<(), AzureError> {
        self.create_with(&ShareOptions::default()).await
    }

    /// Creates the share with a quota, protocols and metadata.
    pub async fn create_with(&self, options: &ShareOptions) -> Result<(), AzureError> {
        let mut req = self
            .write("create share", Method::PUT, "")?
            .query("restype", "share")
            .headers(metadata_headers(&options.metadata));
        if let Some(q) = options.quota_gib {
            req = req.header("x-ms-share-quota", q.to_string());
        }
        if let Some(p) = &options.enabled_protocols {
            req = req.header("x-ms-enabled-protocols", p.clone());
        }
        self.send(req).await.map(drop)
    }

    /// Deletes the share with all its snapshots; through a snapshot view, deletes only that snapshot.
    pub async fn delete(&self) -> Result<(), AzureError> {
        let req =
            Request::new("delete share", &self.name, Method::DELETE, self.encoded_path("")).query("restype", "share");
        let req = match &self.snapshot {
            Some(ts) => req.query("sharesnapshot", ts.clone()),
            None => req.header("x-ms-delete-snapshots", "include"),
        };
        self.send(req).await.map(drop)
    }

    /// Get Share Properties.
    pub async fn properties(&self) -> Result<ShareProperties, AzureError> {
        let (req, resp) =
            self.send(self.read("get share properties", Method::GET, "").query("restype", "share")).await?;
        let h = &resp.headers;
        let quota = match header(h, "x-ms-share-quota") {
            Some(q) => Some(
                q.parse()
                    .map_err(|_| req.error(ErrorKind::Protocol(format!("x-ms-share-quota is not a number: {q:?}"))))?,
            ),
            None => None,
        };
        Ok(ShareProperties {
            etag: header_string(h, "etag"),
            last_modified: header(h, "last-modified").and_then(parse_http_time),
            quota_gib: quota,
            enabled_protocols: header_string(h, "x-ms-enabled-protocols"),
            metadata: metadata_from(h),
        })
    }

    /// Creates a snapshot of the share and returns its timestamp (`x-ms-snapshot`, e.g.
    /// `2026-01-02T03:04:05.0000000Z`), the value [`ShareClient::at_snapshot`] takes.
    pub async fn create_snapshot(&self) -> Result<String, AzureError> {
        self.create_snapshot_with(&BTreeMap::new()).await
    }

    /// [`ShareClient::create_snapshot`] with metadata of the snapshot's own (`x-ms-meta-*`; without any,
    /// the service copies the share's metadata to the snapshot).
    pub async fn create_snapshot_with(&self, metadata: &BTreeMap<String, String>) -> Result<String, AzureError> {
        let req = self
            .write("create share snapshot", Method::PUT, "")?
            .query("restype", "share")
            .query("comp", "snapshot")
            .headers(metadata_headers(metadata));
        let (req, resp) = self.send(req).await?;
        header_string(&resp.headers, "x-ms-snapshot")
            .ok_or_else(|| req.error(ErrorKind::Protocol("no x-ms-snapshot header".into())))
    }

    /// Stores an SDDL security descriptor at share level and returns its permission key.
    pub async fn create_permission(&self, sddl: &str) -> Result<String, AzureError> {
        let body = serde_json::json!({ "permission": sddl, "format": "sddl" }).to_string();
        let req = self
            .write("create permission", Method::PUT, "")?
            .query("restype", "share")
            .query("comp", "filepermission")
            .body(Bytes::from(body), "application/json");
        let (req, resp) = self.send(req).await?;
        header_string(&resp.headers, "x-ms-file-permission-key")
            .ok_or_else(|| req.error(ErrorKind::Protocol("no x-ms-file-permission-key header".into())))
    }

    /// The SDDL stored under a permission key.
    pub async fn get_permission(&self, key: &str) -> Result<String, AzureError> {
        let req = Request::new("get permission", &self.name, Method::GET, self.encoded_path(""))
            .query("restype", "share")
            .query("comp", "filepermission")
            .header("x-ms-file-permission-key", key)
            .header("x-ms-file-permission-format", "sddl")
            .header("accept", "application/json");
        let (req, resp) = self.send(req).await?;
        let value: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| req.error(ErrorKind::Protocol(format!("permission body is not JSON: {e}"))))?;
        value
            .get("permission")
            .and_then(|p| p.as_str())
            .map(str::to_string)
            .ok_or_else(|| req.error(ErrorKind::Protocol("permission body has no \"permission\" string".into())))
    }
}

/// A directory in a share (the root is the empty path).
#[derive(Clone, Debug)]
pub struct DirectoryClient {
    share: ShareClient,
    path: String,
}

impl DirectoryClient {
    /// The path within the share, without leading or trailing `/` (`""` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn share(&self) -> &ShareClient {
        &self.share
    }

    /// A client for the child directory `name`.
    pub fn subdirectory(&self, name: &str) -> DirectoryClient {
        self.share.directory(&join(&self.path, name))
    }

    /// A client for the child file `name`.
    pub fn file(&self, name: &str) -> FileClient {
        self.share.file(&join(&self.path, name))
    }

    /// Creates the directory (its parent must exist) with the given SMB/NFS properties and metadata.
    pub async fn create(&self, props: &NodeProps) -> Result<Properties, AzureError> {
        let req = self
            .share
            .write("create directory", Method::PUT, &self.path)?
            .query("restype", "directory")
            .headers(props_headers(props, true, false));
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Deletes the directory, which must be empty.
    pub async fn delete(&self) -> Result<(), AzureError> {
        let req = self.share.write("delete directory", Method::DELETE, &self.path)?.query("restype", "directory");
        self.share.send(req).await.map(drop)
    }

    /// Get Directory Properties.
    pub async fn properties(&self) -> Result<Properties, AzureError> {
        let req = self.share.read("get directory properties", Method::GET, &self.path).query("restype", "directory");
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Changes SMB/NFS properties; `None` fields are preserved (metadata in `props` is ignored).
    pub async fn set_properties(&self, props: &NodeProps) -> Result<Properties, AzureError> {
        let req = self
            .share
            .write("set directory properties", Method::PUT, &self.path)?
            .query("restype", "directory")
            .query("comp", "properties")
            .headers(props_headers(props, false, false));
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Replaces the directory's metadata.
    pub async fn set_metadata(&self, metadata: &BTreeMap<String, String>) -> Result<(), AzureError> {
        let req = self
            .share
            .write("set directory metadata", Method::PUT, &self.path)?
            .query("restype", "directory")
            .query("comp", "metadata")
            .headers(metadata_headers(metadata));
        self.share.send(req).await.map(drop)
    }

    /// Renames (moves) the directory to `dest` (a path within the same share); its FileId is kept.
    /// Returns a client for the new path.
    pub async fn rename(&self, dest: &str) -> Result<DirectoryClient, AzureError> {
        let dest = self.share.directory(dest);
        let source = self.share.inner.url(&self.share.encoded_path(&self.path), &[]);
        let mut req = self
            .share
            .write("rename directory", Method::PUT, &dest.path)?
            .query("restype", "directory")
            .query("comp", "rename")
            .header("x-ms-file-rename-source", source);
        req.target = format!("{} -> {}", self.share.target(&self.path), dest.path);
        self.share.send(req).await?;
        Ok(dest)
    }

    /// One page of `List Directories and Files` with FileId, size, times, attributes, permission key and
    /// ETag for every entry. `marker` is the previous page's `next_marker`; `maxresults` is at most 5000
    /// (the service's default when `None`).
    pub async fn list_page(&self, marker: Option<&str>, maxresults: Option<u32>) -> Result<ListPage, AzureError> {
        let req = self
            .share
            .read("list directory", Method::GET, &self.path)
            .query("restype", "directory")
            .query("comp", "list")
            .query("include", LIST_INCLUDE)
            .query_opt("marker", marker)
            .query_opt("maxresults", maxresults.map(|m| m.to_string()))
            .header("x-ms-file-extended-info", "true")
            .header("accept", "application/xml");
        let (req, resp) = self.share.send(req).await?;
        xml::parse_list_directory(&resp.body).map_err(|e| req.error(ErrorKind::Protocol(e.0)))
    }

    /// The directory's pages, following `NextMarker` until the last.
    pub fn list_pages(
        &self,
        maxresults: Option<u32>,
    ) -> impl Stream<Item = Result<ListPage, AzureError>> + Send + 'static {
        let this = self.clone();
        // State: `Some(marker)` while there is a page to fetch (`Some(None)` is the first page).
        stream::try_unfold(Some(None::<String>), move |state| {
            let this = this.clone();
            async move {
                let Some(marker) = state else { return Ok(None) };
                let page = this.list_page(marker.as_deref(), maxresults).await?;
                let next = page.next_marker.clone().map(Some);
                Ok(Some((page, next)))
            }
        })
    }

    /// Every entry of the directory (not recursive), page after page.
    pub fn list(&self) -> impl Stream<Item = Result<Entry, AzureError>> + Send + 'static {
        self.list_pages(None).map_ok(|page| stream::iter(page.entries.into_iter().map(Ok))).try_flatten()
    }
}

/// A file in a share.
#[derive(Clone, Debug)]
pub struct FileClient {
    share: ShareClient,
    path: String,
}

impl FileClient {
    /// The path within the share, without leading `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn share(&self) -> &ShareClient {
        &self.share
    }

    /// Creates (or replaces) the file with `size` bytes, all zero, and the given properties.
    pub async fn create(&self, size: u64, props: &NodeProps) -> Result<Properties, AzureError> {
        let req = self
            .share
            .write("create file", Method::PUT, &self.path)?
            .header("x-ms-type", "file")
            .header("x-ms-content-length", size.to_string())
            .headers(props_headers(props, true, true));
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Deletes the file.
    pub async fn delete(&self) -> Result<(), AzureError> {
        let req = self.share.write("delete file", Method::DELETE, &self.path)?;
        self.share.send(req).await.map(drop)
    }

    /// Get File Properties (a HEAD): FileId, parent id, size, SMB and NFS properties, metadata, ETag.
    pub async fn properties(&self) -> Result<Properties, AzureError> {
        let req = self.share.read("get file properties", Method::HEAD, &self.path);
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Changes SMB/NFS properties, and resizes the file when `new_size` is given. `None` SMB/NFS fields are
    /// preserved; note the service clears content headers (content type etc.) that are not sent.
    pub async fn set_properties(&self, props: &NodeProps, new_size: Option<u64>) -> Result<Properties, AzureError> {
        let mut req = self
            .share
            .write("set file properties", Method::PUT, &self.path)?
            .query("comp", "properties")
            .headers(props_headers(props, false, true));
        if let Some(size) = new_size {
            req = req.header("x-ms-content-length", size.to_string());
        }
        let (req, resp) = self.share.send(req).await?;
        properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))
    }

    /// Replaces the file's metadata.
    pub async fn set_metadata(&self, metadata: &BTreeMap<String, String>) -> Result<(), AzureError> {
        let req = self
            .share
            .write("set file metadata", Method::PUT, &self.path)?
            .query("comp", "metadata")
            .headers(metadata_headers(metadata));
        self.share.send(req).await.map(drop)
    }

    /// Renames (moves) the file to `dest` within the share, keeping its FileId. Fails if `dest` exists
    /// unless `replace_if_exists`. Returns a client for the new path.
    pub async fn rename(&self, dest: &str, replace_if_exists: bool) -> Result<FileClient, AzureError> {
        let dest = self.share.file(dest);
        let source = self.share.inner.url(&self.share.encoded_path(&self.path), &[]);
        let mut req = self
            .share
            .write("rename file", Method::PUT, &dest.path)?
            .query("comp", "rename")
            .header("x-ms-file-rename-source", source)
            .header("x-ms-file-rename-replace-if-exists", replace_if_exists.to_string());
        req.target = format!("{} -> {}", self.share.target(&self.path), dest.path);
        self.share.send(req).await?;
        Ok(dest)
    }

    /// Writes `data` at byte `offset` (Put Range, `x-ms-write: update`). `data` must be 1 byte to 4 MiB
    /// and the file must already be large enough.
    pub async fn put_range(&self, offset: u64, data: Bytes) -> Result<(), AzureError> {
        let req = self.share.write("put range", Method::PUT, &self.path)?;
        if data.is_empty() || data.len() as u64 > MAX_RANGE_BYTES {
            return Err(
                req.error(ErrorKind::Invalid(format!("a range must be 1 byte to 4 MiB, not {} bytes", data.len())))
            );
        }
        let end = offset + data.len() as u64 - 1;
        let req = req
            .query("comp", "range")
            .header("x-ms-range", format!("bytes={offset}-{end}"))
            .header("x-ms-write", "update")
            .body(data, "application/octet-stream");
        self.share.send(req).await.map(drop)
    }

    /// Clears (deallocates, reads as zero) `len` bytes at `offset`. Azure requires 512-byte alignment.
    pub async fn clear_range(&self, offset: u64, len: u64) -> Result<(), AzureError> {
        let req = self.share.write("clear range", Method::PUT, &self.path)?;
        if len == 0 {
            return Err(req.error(ErrorKind::Invalid("cannot clear an empty range".into())));
        }
        let req = req
            .query("comp", "range")
            .header("x-ms-range", format!("bytes={offset}-{}", offset + len - 1))
            .header("x-ms-write", "clear");
        self.share.send(req).await.map(drop)
    }

    /// List Ranges: the ranges holding data, or with `prev_snapshot` the ranges changed and cleared
    /// since that share snapshot (the view's own snapshot, if any, is the newer side). Follows
    /// `NextMarker` if the service pages the answer.
    pub async fn list_ranges(&self, prev_snapshot: Option<&str>) -> Result<RangeList, AzureError> {
        let mut out = RangeList::default();
        let mut marker: Option<String> = None;
        loop {
            let req = self
                .share
                .read("list ranges", Method::GET, &self.path)
                .query("comp", "rangelist")
                .query_opt("prevsharesnapshot", prev_snapshot)
                .query_opt("marker", marker.clone())
                .header("accept", "application/xml");
            let (req, resp) = self.share.send(req).await?;
            let page = xml::parse_ranges(&resp.body).map_err(|e| req.error(ErrorKind::Protocol(e.0)))?;
            if let Some(len) = header(&resp.headers, "x-ms-content-length") {
                out.content_length = Some(len.parse().map_err(|_| {
                    req.error(ErrorKind::Protocol(format!("x-ms-content-length is not a number: {len:?}")))
                })?);
            }
            out.ranges.extend(page.ranges);
            out.clear_ranges.extend(page.clear_ranges);
            match page.next_marker {
                Some(m) if Some(&m) != marker.as_ref() => marker = Some(m),
                _ => return Ok(out),
            }
        }
    }

    /// Reads up to `len` bytes at `offset` with one ranged GET (`x-ms-range`). The answer is checked:
    /// its Content-Range must start at `offset`, and the body must be exactly as long as Content-Range
    /// (and Content-Length, when sent) say, or it is an error (never short data). Fewer than `len`
    /// bytes come back only when the file ends first. Returns the bytes and the file's total size.
    pub async fn download_range(&self, offset: u64, len: u64) -> Result<(Bytes, u64), AzureError> {
        self.get_range(offset, len).await.map(|(_, resp, total)| (resp.body, total))
    }

    /// Get File of the first `len` bytes (`len` at least 1): one request that answers with the content
    /// and, in its headers, every property Get File Properties gives (SMB attributes and times, the
    /// permission key, FileId, NFS mode/owner/group, metadata, ETag). A file of at most `len` bytes is
    /// read whole with this one request. The properties' `content_length` is the file's size (from
    /// Content-Range), not the length of the answer. An empty file has no range to read (the service
    /// answers 416 InvalidRange): its properties then come from Get File Properties.
    pub async fn download_start(&self, len: u64) -> Result<(Properties, Bytes), AzureError> {
        match self.get_range(0, len).await {
            Ok((req, resp, total)) => {
                let mut props = properties_from(&resp.headers).map_err(|e| req.error(ErrorKind::Protocol(e)))?;
                props.content_length = total;
                Ok((props, resp.body))
            }
            Err(e) if e.status() == Some(416) => {
                let props = self.properties().await?;
                if props.content_length != 0 {
                    return Err(AzureError::new(
                        "download",
                        self.share.target(&self.path),
                        ErrorKind::Protocol(format!(
                            "file changed during download: size was 0, now {}",
                            props.content_length
                        )),
                    ));
                }
                Ok((props, Bytes::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// One ranged GET, checked (see [`FileClient::download_range`]): the request, the response and the
    /// file's total size.
    async fn get_range(&self, offset: u64, len: u64) -> Result<(Request, Response, u64), AzureError> {
        let req = self.share.read("download", Method::GET, &self.path);
        if len == 0 {
            return Err(req.error(ErrorKind::Invalid("cannot download an empty range".into())));
        }
        let mut req = req.header("x-ms-range", format!("bytes={offset}-{}", offset + len - 1));
        req.max_response_body = usize::try_from(len).unwrap_or(usize::MAX);
        let (req, resp) = self.share.send(req).await?;
        let protocol = |m: String| req.error(ErrorKind::Protocol(m));
        let got = resp.body.len() as u64;
        // Azure always sends Content-Length; a proxy that re-chunks the body may drop it, and then
        // Content-Range alone says how long the body must be.
        if let Some(v) = header(&resp.headers, "content-length") {
            let declared: u64 = v.parse().map_err(|_| protocol(format!("Content-Length is not a number: {v:?}")))?;
            if got != declared {
                return Err(protocol(format!("body has {got} bytes, Content-Length says {declared}")));
            }
        }
        let content_range = header(&resp.headers, "content-range")
            .ok_or_else(|| protocol("no Content-Range on a ranged GET".into()))?;
        let (start, end, total) = parse_content_range(content_range)
            .ok_or_else(|| protocol(format!("bad Content-Range {content_range:?}")))?;
        if start != offset || end >= offset + len {
            return Err(protocol(format!(
                "asked for bytes {offset}-{}, got Content-Range {content_range}",
                offset + len - 1
            )));
        }
        if got != end - start + 1 {
            return Err(protocol(format!(
                "body has {got} bytes, Content-Range {content_range} says {}",
                end - start + 1
            )));
        }
        Ok((req, resp, total))
    }

    /// The whole file as a stream of chunks of [`ClientOptions::download_chunk_size`] bytes, fetched
    /// with ranged GETs (each retried on its own) and yielded in order: the first with
    /// [`FileClient::download_start`], the rest with [`FileClient::download_rest`]. A file whose size or
    /// ETag changes during the download is an error.
    pub fn download(&self) -> impl Stream<Item = Result<Bytes, AzureError>> + Send + 'static {
        let this = self.clone();
        stream::once(async move {
            let chunk = this.share.inner.options.download_chunk_size.max(1);
            let (props, first) = this.download_start(chunk).await?;
            Ok::<_, AzureError>(this.download_rest(&props, first))
        })
        .try_flatten()
    }

    /// The rest of a download begun with [`FileClient::download_start`], whose answer was `props` and
    /// `first` (the bytes from offset 0): `first` (unless empty), then the following bytes in pieces of
    /// [`ClientOptions::download_chunk_size`], [`ClientOptions::download_parallelism`] of them fetched at
    /// once, yielded in order. A piece showing another size or ETag than `props` is an error ("file
    /// changed during download").
    pub fn download_rest(
        &self,
        props: &Properties,
        first: Bytes,
    ) -> impl Stream<Item = Result<Bytes, AzureError>> + Send + 'static + use<> {
        let this = self.clone();
        let chunk = this.share.inner.options.download_chunk_size.max(1);
        let parallelism = this.share.inner.options.download_parallelism.max(1);
        let size = props.content_length;
        let etag = props.etag.clone();
        let from = first.len() as u64;
        let offsets = (0..size.saturating_sub(from).div_ceil(chunk)).map(move |i| from + i * chunk);
        let rest = stream::iter(offsets)
            .map(move |offset| {
                let (this, etag) = (this.clone(), etag.clone());
                async move {
                    let want = chunk.min(size - offset);
                    let (_, resp, total) = this.get_range(offset, want).await?;
                    let piece_etag = header(&resp.headers, "etag");
                    let changed = if total != size || resp.body.len() as u64 != want {
                        Some(format!("size was {size}, now {total}"))
                    } else if let (Some(a), Some(b)) = (&etag, piece_etag)
                        && a != b
                    {
                        Some(format!("ETag was {a}, now {b}"))
                    } else {
                        None
                    };
                    match changed {
                        Some(what) => Err(AzureError::new(
                            "download",
                            this.share.target(&this.path),
                            ErrorKind::Protocol(format!("file changed during download: {what}")),
                        )),
                        None => Ok(resp.body),
                    }
                }
            })
            .buffered(parallelism);
        let first = (!first.is_empty()).then_some(Ok(first));
        stream::iter(first).chain(rest)
    }

    /// Creates the file with `data` as its content (create, then Put Range per 4 MiB).
    pub async fn upload(&self, data: Bytes, props: &NodeProps) -> Result<(), AzureError> {
        self.create(data.len() as u64, props).await?;
        let mut offset = 0usize;
        while offset < data.len() {
            let end = (offset + MAX_RANGE_BYTES as usize).min(data.len());
            self.put_range(offset as u64, data.slice(offset..end)).await?;
            offset = end;
        }
        Ok(())
    }
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`, read as END+1).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if end < start {
        return None;
    }
    let total = if total.trim() == "*" { end + 1 } else { total.trim().parse().ok()? };
    Some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, credential: Credential) -> FileServiceClient {
        FileServiceClient::new(
            AccountConfig { account: "acct".into(), endpoint: endpoint.into(), credential },
            ClientOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn paths_are_encoded_once_per_segment() {
        let c = client("http://127.0.0.1:9/devstoreaccount1", Credential::shared_key("acct", "AAAA").unwrap());
        let share = c.share("my share");
        assert_eq!(share.encoded_path("/dir a//fé#?%.txt/"), "/my%20share/dir%20a/f%C3%A9%23%3F%25.txt");
        assert_eq!(share.directory("/a/b/").path(), "a/b");
        assert_eq!(share.directory("a").file("b c").path(), "a/b c");
        assert_eq!(
            c.inner.url("/s", &[("comp", "list".into()), ("marker", "a b/c=".into())]),
            "http://127.0.0.1:9/devstoreaccount1/s?comp=list&marker=a%20b%2Fc%3D"
        );
    }

    #[test]
    fn sas_tokens_are_appended() {
        let c = client("https://acct.file.core.windows.net/", Credential::Sas { token: "sv=1&sig=x".into() });
        assert_eq!(c.inner.url("/s/f", &[]), "https://acct.file.core.windows.net/s/f?sv=1&sig=x");
        assert_eq!(
            c.inner.url("/s", &[("restype", "share".into())]),
            "https://acct.file.core.windows.net/s?restype=share&sv=1&sig=x"
        );
    }

    #[test]
    fn snapshot_views_are_read_only() {
        let c = client("http://127.0.0.1:9/a", Credential::Sas { token: String::new() });
        let snap = c.share("s").at_snapshot("2026-01-01T00:00:00.0000000Z");
        let e = snap.write("create file", Method::PUT, "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "create file s/f: invalid request: share snapshot 2026-01-01T00:00:00.0000000Z is read-only"
        );
        let read = snap.read("list directory", Method::GET, "d");
        assert_eq!(read.query, [("sharesnapshot", "2026-01-01T00:00:00.0000000Z".to_string())]);
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(parse_content_range("bytes 0-511/1024"), Some((0, 511, 1024)));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19, 20)));
        assert_eq!(parse_content_range("bytes 9-1/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn props_become_headers() {
        let t = parse_file_time("2026-01-02T03:04:05.1234567Z").unwrap();
        let props = NodeProps {
            attributes: Some("ReadOnly|Archive".into()),
            creation_time: Some(t),
            permission: Some(Permission::Key("k1".into())),
            nfs: NfsProperties { mode: Some("0644".into()), ..Default::default() },
            metadata: [("a".to_string(), "b".to_string())].into(),
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        let h = props_headers(&props, true, true);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ms-file-attributes"), Some("ReadOnly|Archive"));
        assert_eq!(get("x-ms-file-creation-time"), Some("2026-01-02T03:04:05.1234567Z"));
        assert_eq!(get("x-ms-file-last-write-time"), None);
        assert_eq!(get("x-ms-file-permission-key"), Some("k1"));
        assert_eq!(get("x-ms-mode"), Some("0644"));
        assert_eq!(get("x-ms-meta-a"), Some("b"));
        assert_eq!(get("x-ms-content-type"), Some("text/plain"));
        assert_eq!(
            props_headers(&props, false, false)
                .iter()
                .filter(|(n, _)| n.starts_with("x-ms-meta-") || n == "x-ms-content-type")
                .count(),
            0
        );
    }

    #[test]
    fn error_responses_carry_code_and_first_message_line() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-error-code", HeaderValue::from_static("ShareNotFound"));
        let resp = Response {
            status: StatusCode::NOT_FOUND,
            headers,
            body: Bytes::from_static(b"<?xml version=\"1.0\"?><Error><Code>ShareNotFound</Code><Message>The specified share does not exist.\nRequestId:x</Message></Error>"),
        };
        let e = AzureError::new("list directory", "devshare/a/b", status_error(&resp));
        assert_eq!(
            e.to_string(),
            "list directory devshare/a/b: 404 ShareNotFound: The specified share does not exist."
        );
        let resp = Response {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"<Error><Code>AuthenticationFailed</Code></Error>"),
        };
        assert_eq!(
            status_error(&resp),
            ErrorKind::Status { status: 403, code: Some("AuthenticationFailed".into()), message: None }
        );
    }
}
