//! The HTTP side: parses a request (path-style `/devstoreaccount1/{share}/{path…}?restype=…&comp=…`,
//! account-less `/{share}/{path…}`, or host-style with `Host: devstoreaccount1.…`),
//! picks the operation, authorizes it, runs it in one store transaction on the blocking pool, and adds
//! the headers every Azure response carries (`x-ms-request-id`, `x-ms-version`, `Date`, and
//! `x-ms-error-code` on errors).

use super::auth;
use super::clock::{self, Clock};
use super::error::{StorageError, StorageResult};
use super::ops::{self, Op};
use super::request::{FileBody, Reply, Req, new_guid};
use super::store::{ReadTx, Store};
use super::wire::{HeaderCase, Peer};
use crate::azure::credential::DEV_ACCOUNT_NAME;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method};
use std::sync::Arc;

/// The service version reported when a request names none.
pub const DEFAULT_VERSION: &str = "2026-10-06";
/// The service versions (`x-ms-version`) the emulator accepts: every version of the File service REST
/// API that current SDKs and tools send, oldest first. Others (an unknown or future version) are 400
/// `InvalidHeaderValue`, as in Azure.
pub const KNOWN_VERSIONS: &[&str] = &[
    "2014-02-14",
    "2015-02-21",
    "2015-04-05",
    "2015-07-08",
    "2015-12-11",
    "2016-05-31",
    "2017-04-17",
    "2017-07-29",
    "2017-11-09",
    "2018-03-28",
    "2018-11-09",
    "2019-02-02",
    "2019-07-07",
    "2019-10-10",
    "2019-12-12",
    "2020-02-10",
    "2020-04-08",
    "2020-06-12",
    "2020-08-04",
    "2020-10-02",
    "2020-12-06",
    "2021-02-12",
    "2021-04-10",
    "2021-06-08",
    "2021-08-06",
    "2021-10-04",
    "2021-12-02",
    "2022-11-02",
    "2023-01-03",
    "2023-05-03",
    "2023-08-03",
    "2023-11-03",
    "2024-02-04",
    "2024-05-04",
    "2024-08-04",
    "2024-11-04",
    "2025-01-05",
    "2025-05-05",
    "2025-07-05",
    "2025-11-05",
    "2026-02-06",
    "2026-04-06",
    "2026-06-06",
    "2026-10-06",
];
/// Largest request body accepted (Put Range's 4 MiB limit).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Shared by all requests.
pub struct App {
    pub store: Store,
    pub clock: Clock,
    /// The decoded account key.
    pub key: Vec<u8>,
    /// Requests running in the store at once (see [`App::new`]).
    pub store_permits: tokio::sync::Semaphore,
}

impl App {
    pub fn new(store: Store, key: Vec<u8>) -> App {
        // SQLite work is CPU-bound: a few requests at a time keep the cores busy, reuse pooled reader
        // connections and threads, and leave the rest waiting cheaply as tasks, not blocked threads.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let permits = (2 * cores).clamp(4, super::store::MAX_IDLE_READERS);
        App { store, clock: Clock::default(), key, store_permits: tokio::sync::Semaphore::new(permits) }
    }
}

/// Answers one request (errors included) with Azure's common headers.
pub async fn handle(app: Arc<App>, request: Request) -> Response {
    let request_id = new_request_id();
    // Answer in the request's version when it is one the emulator knows; refuse others.
    let (version, version_error) = match request.headers().get("x-ms-version") {
        None => (HeaderValue::from_static(DEFAULT_VERSION), None),
        Some(v) if KNOWN_VERSIONS.iter().any(|k| v.as_bytes() == k.as_bytes()) => (v.clone(), None),
        Some(v) => (
            HeaderValue::from_static(DEFAULT_VERSION),
            Some(StorageError::invalid_header_value("x-ms-version", &String::from_utf8_lossy(v.as_bytes()))),
        ),
    };
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    let is_head = request.method() == Method::HEAD;
    let outcome = match version_error {
        Some(e) => Err(e),
        None => serve(&app, request).await,
    };
    let (mut response, error_code) = match outcome {
        Ok((reply, tx)) => {
            let body = match (&reply.file_body, tx) {
                (Some(_), Some(tx)) => stream_file(tx, reply.file_body.expect("checked above")),
                _ => Body::from(reply.body),
            };
            let mut resp = Response::new(body);
            *resp.status_mut() = reply.status;
            if !reply.header_case.0.is_empty() {
                resp.extensions_mut().insert(reply.header_case);
            }
            let h = resp.headers_mut();
            for (n, v) in reply.headers {
                h.append(n, v);
            }
            (resp, None)
        }
        Err(e) => {
            let time = clock::iso7(clock::wall_ticks());
            // HEAD answers and 304 Not Modified carry no body.
            let bodyless = is_head || e.status == http::StatusCode::NOT_MODIFIED;
            let body = if bodyless { Bytes::new() } else { Bytes::from(e.xml_body(&request_id, &time)) };
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = e.status;
            if !bodyless {
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

/// Parses, authorizes and runs one request. A reply with a large file body comes with the read
/// transaction its body is to be read in.
async fn serve(app: &Arc<App>, request: Request) -> StorageResult<(Reply, Option<ReadTx>)> {
    let (parts, body) = request.into_parts();
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let (share, path, addressing) = parse_path(parts.uri.path(), &host)?;
    let query: Vec<(String, String)> = crate::azure::credential::query_pairs(parts.uri.query().unwrap_or(""))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let op = Op::route(&parts.method, &share, &path, &query)?;
    let now = app.clock.now();
    let peer = parts.extensions.get::<Peer>().copied();
    let origin = auth::Origin { ip: peer.map(|p| p.addr.ip()), https: peer.is_some_and(|p| p.https) };
    // A SAS naming a stored access policy reads it (one small read; only such requests do).
    let policy = |id: &str| app.store.run(false, |db| Ok(db.access_policies(&share)?.into_iter().find(|p| p.id == id)));
    auth::check(&app.key, &parts, auth::Access { share: &share, path: &path, need: op.need(), now, origin }, policy)?;
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return Err(StorageError::request_body_too_large()),
    };
    let scheme = if origin.https { "https" } else { "http" };
    let endpoint = match addressing {
        Addressing::HostStyle => format!("{scheme}://{host}"),
        Addressing::PathStyle | Addressing::AccountLess => format!("{scheme}://{host}/{DEV_ACCOUNT_NAME}"),
    };
    let header_case = parts.extensions.get::<HeaderCase>().cloned().unwrap_or_default();
    let req = Req { share, path, query, headers: parts.headers, header_case, body, endpoint, now };
    let permit = app.store_permits.acquire().await.map_err(|_| StorageError::internal("the emulator is stopping"))?;
    let app = Arc::clone(app);
    // The permit is held until the operation returns; a streamed body then reads on its own.
    let _permit = permit;
    tokio::task::spawn_blocking(move || {
        if op.writes() {
            return Ok((app.store.run(true, |db| op.run(db, &req))?, None));
        }
        let tx = app.store.read()?;
        let mut reply = op.run(&tx.db(), &req)?;
        match &reply.file_body {
            Some(f) if f.end - f.start <= INLINE_BODY => {
                reply.body = ops::read_file_body(&tx.db(), f, f.start, f.end)?.into();
                reply.file_body = None;
                Ok((reply, None))
            }
            Some(_) => Ok((reply, Some(tx))),
            None => Ok((reply, None)),
        }
    })
    .await
    .map_err(|e| StorageError::internal(format!("request task failed: {e}")))?
}

/// File bodies up to this size (bytes) are read at once; larger ones are streamed in pieces of
/// [`BODY_PIECE`] bytes, so a request holds at most a few pieces in memory whatever its range.
const INLINE_BODY: i64 = 256 * 1024;
const BODY_PIECE: i64 = 256 * 1024;
/// Pieces read ahead of the client.
const PIECES_AHEAD: usize = 2;

/// Streams `file` from the read transaction `tx` (kept open until the last piece is read, so the body
/// matches the headers already sent). A failed read ends the body early, which the client sees as a
/// broken response.
fn stream_file(tx: ReadTx, file: FileBody) -> Body {
    let (send, recv) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(PIECES_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut pos = file.start;
        while pos < file.end {
            let to = (pos + BODY_PIECE).min(file.end);
            let piece = ops::read_file_body(&tx.db(), &file, pos, to)
                .map(Bytes::from)
                .map_err(|e| std::io::Error::other(format!("{}: {}", e.code, e.message)));
            let failed = piece.is_err();
            if send.blocking_send(piece).is_err() || failed {
                break;
            }
            pos = to;
        }
    });
    Body::from_stream(futures::stream::unfold(recv, |mut r| async move { r.recv().await.map(|p| (p, r)) }))
}

/// How a request names the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addressing {
    /// `/devstoreaccount1/share/…` (what connection strings for the emulator give).
    PathStyle,
    /// `/share/…` on the emulator's address, signed for the emulator's account (the JavaScript SDK
    /// sends Rename like this).
    AccountLess,
    /// `Host: devstoreaccount1.file.localhost[:port]` (any host whose first label is the account), `/share/…`.
    HostStyle,
}

/// Splits the request path into the decoded share and path segments, and says how the account was
/// named: host-style when the `Host` header's first label is the account, else path-style when the
/// first segment is the account (so a share cannot be named `devstoreaccount1`), else account-less.
/// The path is decoded before splitting (an encoded `%2F` separates names too, as in Azure). A trailing
/// `/` is ignored; empty segments elsewhere are `InvalidUri`.
fn parse_path(raw: &str, host: &str) -> StorageResult<(String, Vec<String>, Addressing)> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| StorageError::invalid_uri())?;
    let mut segs: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    let host_account = host.split(':').next().unwrap_or("").split('.').next().unwrap_or("");
    let addressing = if host_account.eq_ignore_ascii_case(DEV_ACCOUNT_NAME) && host.contains('.') {
        Addressing::HostStyle
    } else if segs.first() == Some(&DEV_ACCOUNT_NAME) {
        Addressing::PathStyle
    } else {
        Addressing::AccountLess
    };
    if addressing == Addressing::PathStyle {
        segs.remove(0);
    }
    if segs.iter().any(|s| s.is_empty()) {
        return Err(StorageError::invalid_uri());
    }
    let mut rest: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
    let share = if rest.is_empty() { String::new() } else { rest.remove(0) };
    Ok((share, rest, addressing))
}

/// A request id shaped like Azure's (a UUID).
fn new_request_id() -> String {
    new_guid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_share_and_decoded_segments() {
        let ip = "127.0.0.1:10004";
        let split = |raw: &str, host: &str| parse_path(raw, host).map(|(s, p, _)| (s, p));
        assert_eq!(split("/devstoreaccount1/", ip).unwrap(), (String::new(), vec![]));
        assert_eq!(split("/devstoreaccount1/s1", ip).unwrap(), ("s1".to_string(), vec![]));
        assert_eq!(
            split("/devstoreaccount1/s1/a%20b/c.txt", ip).unwrap(),
            ("s1".to_string(), vec!["a b".to_string(), "c.txt".to_string()])
        );
        assert!(split("/devstoreaccount1/s1//x", ip).is_err());
        assert_eq!(split("/devstoreaccount1/s1/a%2Fb", ip).unwrap().1, vec!["a".to_string(), "b".to_string()]);
        // Account-less and host-style: the first segment is the share.
        let (share, path, how) = parse_path("/s1/a/b.txt", ip).unwrap();
        assert_eq!((share.as_str(), path.len(), how), ("s1", 2, Addressing::AccountLess));
        let (share, _, how) = parse_path("/s1/a", "devstoreaccount1.file.localhost:10004").unwrap();
        assert_eq!((share.as_str(), how), ("s1", Addressing::HostStyle));
        let (share, path, how) = parse_path("/devstoreaccount1/x", "devstoreaccount1.file.localhost").unwrap();
        assert_eq!((share.as_str(), path, how), ("devstoreaccount1", vec!["x".to_string()], Addressing::HostStyle));
        assert_eq!(parse_path("/", ip).unwrap().0, "");
    }
}
