//! The client's transport behaviour against a scripted HTTP server: retries of 503/500/resets/
//! truncated bodies, `Retry-After`, giving up, no retry of 4xx, the per-request timeout, the concurrency
//! limit, and checks of ranged downloads and XML bodies. Each connection gets one scripted answer and is
//! closed.

use afb::azure::credential::{AccountConfig, Credential, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use afb::azure::{AddressPolicy, ClientOptions, ErrorKind, FileServiceClient, RetryPolicy};
use futures::TryStreamExt as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the scripted server does with request number `n`.
enum Answer {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Close without answering (the client sees the connection reset or closed).
    Close,
    /// Wait, then write these bytes.
    Slow(Duration, Vec<u8>),
}

fn reply(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

struct Server {
    addr: SocketAddr,
    /// Request heads received, in order.
    heads: Arc<Mutex<Vec<String>>>,
    /// Most connections open at once.
    max_open: Arc<AtomicUsize>,
}

async fn server(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let max_open = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let (h, m) = (heads.clone(), max_open.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (heads, max_open, open, script) = (h.clone(), m.clone(), open.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                max_open.fetch_max(now, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&buf).to_string();
                let n = {
                    let mut heads = heads.lock().unwrap();
                    heads.push(head);
                    heads.len() - 1
                };
                match script(n) {
                    Answer::Raw(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                    }
                    Answer::Slow(delay, bytes) => {
                        tokio::time::sleep(delay).await;
                        let _ = sock.write_all(&bytes).await;
                    }
                    Answer::Close => {}
                }
                open.fetch_sub(1, Ordering::SeqCst);
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { addr, heads, max_open }
}

fn client(addr: SocketAddr, options: ClientOptions) -> FileServiceClient {
    let config = AccountConfig {
        account: DEV_ACCOUNT_NAME.into(),
        endpoint: format!("http://{addr}/{DEV_ACCOUNT_NAME}"),
        credential: Credential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY).unwrap(),
    };
    FileServiceClient::new(config, options).unwrap()
}

fn fast_retries(max_attempts: u32) -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..Default::default()
        },
        ..Default::default()
    }
}

const LISTING: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ShareName=\"s\" DirectoryPath=\"d\"><Entries><File><FileId>7</FileId><Name>a.txt</Name><Properties><Content-Length>3</Content-Length></Properties></File></Entries><NextMarker /></EnumerationResults>";

#[tokio::test]
async fn busy_reset_and_truncated_answers_are_retried() {
    let srv = server(|n| match n {
        0 => Answer::Raw(reply("503 Server Busy", &[("Retry-After", "0"), ("x-ms-error-code", "ServerBusy")], b"")),
        1 => Answer::Close,
        2 => {
            // Promises 100 bytes, sends 20.
            let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n".to_vec();
            r.extend_from_slice(&LISTING[..20]);
            Answer::Raw(r)
        }
        3 => Answer::Raw(reply("500 Operation Timed Out", &[("x-ms-error-code", "OperationTimedOut")], b"")),
        _ => Answer::Raw(reply("200 OK", &[("Content-Type", "application/xml")], LISTING)),
    })
    .await;
    let c = client(srv.addr, fast_retries(6));
    let page = c.share("s").directory("d").list_page(None, None).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].name, "a.txt");
    assert_eq!(c.requests_sent(), 5);

    let heads = srv.heads.lock().unwrap();
    assert_eq!(heads.len(), 5);
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /devstoreaccount1/s/d?restype=directory&comp=list&include=timestamps%2cetag%2cattributes%2cpermissionkey "), "{head}");
    for needed in [
        "x-ms-version: 2025-11-05",
        "x-ms-date: ",
        "authorization: sharedkey devstoreaccount1:",
        "x-ms-file-extended-info: true",
    ] {
        assert!(head.contains(needed), "missing {needed:?} in {head}");
    }
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_never_retries_client_errors() {
    let srv =
        server(|_| Answer::Raw(reply("500 Internal Server Error", &[("x-ms-error-code", "InternalError")], b""))).await;
    let c = client(srv.addr, fast_retries(3));
    let e = c.share("s").properties().await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.to_string(), "get share properties s: 500 InternalError");
    assert_eq!(srv.heads.lock().unwrap().len(), 3);

    let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ShareNotFound</Code><Message>The specified share does not exist.\nRequestId:1\nTime:x</Message></Error>";
    let srv = server(move |_| {
        Answer::Raw(reply("404 The specified share does not exist.", &[("x-ms-error-code", "ShareNotFound")], body))
    })
    .await;
    let c = client(srv.addr, fast_retries(3));
    let e = c.share("devshare").directory("a/b").list_page(None, None).await.unwrap_err();
    assert_eq!(e.to_string(), "list directory devshare/a/b: 404 ShareNotFound: The specified share does not exist.");
    assert_eq!(srv.heads.lock().unwrap().len(), 1);

    let srv = server(|_| Answer::Close).await;
    let c = client(srv.addr, fast_retries(2));
    let e = c.list_shares().await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Transport(_)), "{e}");
    assert_eq!(srv.heads.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let srv = server(|n| match n {
        0 => Answer::Raw(reply("503 Server Busy", &[("Retry-After", "1")], b"")),
        _ => Answer::Raw(reply("200 OK", &[], LISTING)),
    })
    .await;
    let c = client(srv.addr, fast_retries(3));
    let start = Instant::now();
    c.share("s").root().list_page(None, None).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
}

#[tokio::test]
async fn slow_answers_time_out_per_attempt() {
    let srv = server(|_| Answer::Slow(Duration::from_secs(5), reply("200 OK", &[], LISTING))).await;
    let c = client(srv.addr, ClientOptions { request_timeout: Duration::from_millis(200), ..fast_retries(2) });
    let start = Instant::now();
    let e = c.share("s").root().list_page(None, None).await.unwrap_err();
    assert!(matches!(&e.kind, ErrorKind::Transport(m) if m.contains("timed out") || m.contains("timeout")), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(srv.heads.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn concurrency_is_limited_across_the_client() {
    let srv = server(|_| Answer::Slow(Duration::from_millis(100), reply("200 OK", &[], LISTING))).await;
    let c = client(srv.addr, ClientOptions { max_concurrency: 2, ..fast_retries(1) });
    let dirs: Vec<_> = (0..6).map(|i| c.share("s").directory(&format!("d{i}"))).collect();
    let pages = futures::future::try_join_all(dirs.iter().map(|d| d.list_page(None, None))).await.unwrap();
    assert_eq!(pages.len(), 6);
    assert!(srv.max_open.load(Ordering::SeqCst) <= 2, "{}", srv.max_open.load(Ordering::SeqCst));
}

#[tokio::test]
async fn short_or_misplaced_download_bodies_are_errors() {
    // Content-Range claims 20 bytes, the body (and Content-Length) has 10.
    let srv =
        server(|_| Answer::Raw(reply("206 Partial Content", &[("Content-Range", "bytes 0-19/20")], &[1u8; 10]))).await;
    let c = client(srv.addr, fast_retries(1));
    let e = c.share("s").file("f").download_range(0, 20).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Protocol(_)), "{e}");
    assert!(e.to_string().starts_with("download s/f: bad response:"), "{e}");

    // A range starting elsewhere than asked.
    let srv =
        server(|_| Answer::Raw(reply("206 Partial Content", &[("Content-Range", "bytes 5-14/20")], &[1u8; 10]))).await;
    let c = client(srv.addr, fast_retries(1));
    assert!(c.share("s").file("f").download_range(0, 10).await.is_err());

    // A well-formed answer, and the request used x-ms-range.
    let srv =
        server(|_| Answer::Raw(reply("206 Partial Content", &[("Content-Range", "bytes 10-19/20")], &[7u8; 10]))).await;
    let c = client(srv.addr, fast_retries(1));
    let (data, total) = c.share("s").file("f").download_range(10, 10).await.unwrap();
    assert_eq!((data.len(), total), (10, 20));
    let head = srv.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("x-ms-range: bytes=10-19") && !head.contains("\r\nrange:"), "{head}");

    // download(): the first piece says the file has 20 bytes, the next one 30: an error, not mixed data.
    let srv = server(|n| match n {
        0 => Answer::Raw(reply("206 Partial Content", &[("Content-Range", "bytes 0-9/20")], &[1u8; 10])),
        _ => Answer::Raw(reply("206 Partial Content", &[("Content-Range", "bytes 10-19/30")], &[1u8; 10])),
    })
    .await;
    let c = client(srv.addr, ClientOptions { download_chunk_size: 10, ..fast_retries(1) });
    let e = c.share("s").file("f").download().try_collect::<Vec<_>>().await.unwrap_err();
    assert!(e.to_string().contains("changed during download"), "{e}");
}

#[tokio::test]
async fn malformed_xml_is_an_error_naming_the_operation() {
    let srv = server(|_| Answer::Raw(reply("200 OK", &[], b"<EnumerationResults><Entries><File>"))).await;
    let c = client(srv.addr, fast_retries(1));
    let e = c.share("s").directory("d").list_page(None, None).await.unwrap_err();
    assert!(e.to_string().starts_with("list directory s/d: bad response:"), "{e}");
    let srv = server(|_| Answer::Raw(reply("200 OK", &[], b"\xff\xfe garbage"))).await;
    let c = client(srv.addr, fast_retries(1));
    let e = c.list_shares().await.unwrap_err();
    assert!(e.to_string().starts_with("list shares: bad response:"), "{e}");
}

/// A client of `endpoint` (`http://host:port`) with the address policy `policy`.
fn client_at(endpoint: &str, policy: AddressPolicy) -> Result<FileServiceClient, afb::azure::AzureError> {
    let config = AccountConfig {
        account: DEV_ACCOUNT_NAME.into(),
        endpoint: format!("{endpoint}/{DEV_ACCOUNT_NAME}"),
        credential: Credential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY).unwrap(),
    };
    FileServiceClient::new(config, ClientOptions { address_policy: policy, ..fast_retries(3) })
}

fn listing_response() -> String {
    crate::support::net::response(
        "200 OK",
        &[("content-type", "application/xml")],
        std::str::from_utf8(LISTING).unwrap(),
    )
}

/// The message of an error that must be a refusal by the address policy: one line naming the policy.
fn refusal(err: &afb::azure::AzureError) -> String {
    assert!(matches!(err.kind, ErrorKind::Refused(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("address policy"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    msg
}

/// The server at `endpoint` is reached (and lists) with the default policy.
async fn assert_reached_with_any_policy(endpoint: &str, srv: &crate::support::net::FixedServer) {
    let c = client_at(endpoint, AddressPolicy::Any).unwrap();
    let page = c.share("s").directory("d").list_page(None, None).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert!(srv.connections() >= 1);
}

#[tokio::test]
async fn public_only_refuses_a_loopback_ip_before_connecting() {
    let srv = crate::support::net::fixed_server(listing_response()).await;
    let endpoint = format!("http://{}", srv.addr);
    let err = client_at(&endpoint, AddressPolicy::PublicOnly).expect_err("a loopback literal is refused");
    let msg = refusal(&err);
    assert!(msg.contains("127.0.0.1"), "{msg}");
    assert_eq!(srv.connections(), 0);

    // The same server with the default policy is reached.
    assert_reached_with_any_policy(&endpoint, &srv).await;
}

#[tokio::test]
async fn public_only_refuses_a_name_resolving_to_loopback_without_retrying() {
    let srv = crate::support::net::fixed_server(listing_response()).await;
    let endpoint = format!("http://localhost:{}", srv.addr.port());
    let c = client_at(&endpoint, AddressPolicy::PublicOnly).unwrap();
    let err = c.share("s").directory("d").list_page(None, None).await.unwrap_err();
    let msg = refusal(&err);
    assert!(msg.contains("localhost") && (msg.contains("127.0.0.1") || msg.contains("::1")), "{msg}");
    assert_eq!(c.requests_sent(), 1, "a refusal is permanent: not retried");
    assert_eq!(srv.connections(), 0);

    assert_reached_with_any_policy(&endpoint, &srv).await;
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let target = crate::support::net::fixed_server(listing_response()).await;
    let location = format!("http://{}/devstoreaccount1/s/d?restype=directory&comp=list", target.addr);
    let redirector =
        crate::support::net::fixed_server(crate::support::net::response("302 Found", &[("location", &location)], ""))
            .await;
    let c = client_at(&format!("http://{}", redirector.addr), AddressPolicy::Any).unwrap();
    let err = c.share("s").directory("d").list_page(None, None).await.unwrap_err();
    assert_eq!(err.status(), Some(302), "{err}");
    assert!(redirector.connections() >= 1);
    assert_eq!(target.connections(), 0, "the redirect was followed");
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_retrying() {
    // A listing one byte over the cap, sent without Content-Length (chunked), so only counting stops it.
    let filler = "x".repeat(afb::azure::client::MAX_RESPONSE_BODY_BYTES);
    let body = format!("<EnumerationResults><Entries/><!--{filler}--></EnumerationResults>");
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let srv = crate::support::net::fixed_server(chunked).await;
    let c = client_at(&format!("http://{}", srv.addr), AddressPolicy::Any).unwrap();
    let err = c.share("s").directory("d").list_page(None, None).await.unwrap_err();
    assert!(matches!(&err.kind, ErrorKind::Protocol(m) if m.contains("larger than")), "{err}");
    assert_eq!(c.requests_sent(), 1, "an oversized body is not retried");
}

#[tokio::test]
async fn listed_names_that_escape_are_rejected_and_the_rest_kept() {
    let body = r#"<EnumerationResults><Entries>
        <File><FileId>1</FileId><Name>ok.txt</Name><Properties><Content-Length>1</Content-Length></Properties></File>
        <File><FileId>2</FileId><Name Encoded="true">%2Fetc%2Fcron.d%2Fx</Name><Properties><Content-Length>1</Content-Length></Properties></File>
        <Directory><FileId>3</FileId><Name Encoded="true">..</Name><Properties/></Directory>
        </Entries><NextMarker /></EnumerationResults>"#;
    let srv = crate::support::net::fixed_server(crate::support::net::response("200 OK", &[], body)).await;
    let c = client_at(&format!("http://{}", srv.addr), AddressPolicy::Any).unwrap();
    let page = c.share("s").directory("d").list_page(None, None).await.unwrap();
    assert_eq!(page.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["ok.txt"]);
    assert_eq!(page.rejected.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["/etc/cron.d/x", ".."]);
}
