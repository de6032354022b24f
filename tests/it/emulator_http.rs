//! The emulator over HTTP with Shared Key signed requests (signing from `afb::azure::credential`):
//! restart keeps state, snapshots stay frozen, and listing pages through 100,000 entries.

use afb::azure::credential::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, shared_key_authorization, shared_key_string_to_sign};
use afb::emulator::{Emulator, EmulatorConfig};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method};
use std::net::SocketAddr;
use std::path::Path;

fn config(data: &Path) -> EmulatorConfig {
    EmulatorConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        data: data.to_path_buf(),
        faults: Default::default(),
        virtual_shares: Vec::new(),
        tls: Default::default(),
    }
}

/// A minimal signed client for one emulator.
struct Client {
    http: reqwest::Client,
    addr: SocketAddr,
    key: Vec<u8>,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let key = base64::engine::general_purpose::STANDARD.decode(DEV_ACCOUNT_KEY).unwrap();
        Client { http: reqwest::Client::new(), addr, key }
    }

    /// Sends `method /devstoreaccount1/{path_and_query}` signed with Shared Key.
    async fn send(&self, method: Method, path_and_query: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        self.send_raw(method, &format!("/{DEV_ACCOUNT_NAME}/{path_and_query}"), headers, body).await
    }

    /// Sends `method {full}` (a path and query from the root) signed with Shared Key for the
    /// development account; a `host` header in `headers` replaces the address.
    async fn send_raw(&self, method: Method, full: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        let full = full.to_string();
        let (path, query) = full.split_once('?').unwrap_or((&full, ""));
        let mut h = HeaderMap::new();
        h.insert("x-ms-version", HeaderValue::from_static("2025-05-05"));
        h.insert("x-ms-date", HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())).unwrap());
        if !body.is_empty() {
            h.insert("content-length", HeaderValue::from_str(&body.len().to_string()).unwrap());
        }
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let sts = shared_key_string_to_sign(method.as_str(), DEV_ACCOUNT_NAME, path, query, &h);
        h.insert(
            "authorization",
            HeaderValue::from_str(&shared_key_authorization(DEV_ACCOUNT_NAME, &self.key, &sts)).unwrap(),
        );
        let r = self
            .http
            .request(method, format!("http://{}{full}", self.addr))
            .headers(h)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        Resp { status, headers, body }
    }

    async fn ok(&self, method: Method, path_and_query: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        let r = self.send(method.clone(), path_and_query, headers, body).await;
        assert!((200..300).contains(&r.status), "{method} {path_and_query}: {} {}", r.status, r.text());
        r
    }

    async fn create_file(&self, path: &str, content: &[u8]) {
        let len = content.len().to_string();
        self.ok(Method::PUT, path, &[("x-ms-type", "file"), ("x-ms-content-length", &len)], vec![]).await;
        if !content.is_empty() {
            let range = format!("bytes=0-{}", content.len() - 1);
            self.ok(
                Method::PUT,
                &format!("{path}?comp=range"),
                &[("x-ms-range", &range), ("x-ms-write", "update")],
                content.to_vec(),
            )
            .await;
        }
    }
}

/// The `<Name>` values and the `NextMarker` of a listing page.
fn names_and_marker(xml: &str) -> (Vec<String>, Option<String>) {
    let names = xml.split("<Name>").skip(1).map(|s| s.split("</Name>").next().unwrap().to_string()).collect();
    let marker = xml.split("<NextMarker>").nth(1).map(|s| s.split("</NextMarker>").next().unwrap().to_string());
    (names, marker)
}

#[tokio::test]
async fn restart_keeps_shares_files_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = Client::new(emu.addr());
    c.ok(Method::PUT, "keep?restype=share", &[("x-ms-meta-a", "b")], vec![]).await;
    c.ok(Method::PUT, "keep/dir?restype=directory", &[], vec![]).await;
    c.create_file("keep/dir/f.txt", b"before").await;
    let id = c.ok(Method::HEAD, "keep/dir/f.txt", &[], vec![]).await.header("x-ms-file-id").to_string();
    let snap =
        c.ok(Method::PUT, "keep?restype=share&comp=snapshot", &[], vec![]).await.header("x-ms-snapshot").to_string();
    c.create_file("keep/dir/f.txt", b"after!").await;
    emu.shutdown().await;

    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = Client::new(emu.addr());
    let props = c.ok(Method::GET, "keep?restype=share", &[], vec![]).await;
    assert_eq!(props.header("x-ms-meta-a"), "b");
    let live = c.ok(Method::GET, "keep/dir/f.txt", &[], vec![]).await;
    assert_eq!(live.body, b"after!");
    assert_eq!(live.header("x-ms-file-id"), id);
    let frozen = c.ok(Method::GET, &format!("keep/dir/f.txt?sharesnapshot={snap}"), &[], vec![]).await;
    assert_eq!(frozen.body, b"before");
    emu.shutdown().await;
}

#[tokio::test]
async fn snapshots_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = Client::new(emu.addr());
    c.ok(Method::PUT, "snaps?restype=share", &[], vec![]).await;
    c.create_file("snaps/a.bin", &[1u8; 4096]).await;
    let snap =
        c.ok(Method::PUT, "snaps?restype=share&comp=snapshot", &[], vec![]).await.header("x-ms-snapshot").to_string();
    c.ok(Method::PUT, "snaps/a.bin?comp=range", &[("x-ms-range", "bytes=0-511"), ("x-ms-write", "clear")], vec![])
        .await;
    c.ok(Method::PUT, "snaps/a.bin?comp=properties", &[("x-ms-content-length", "1024")], vec![]).await;
    c.create_file("snaps/b.bin", b"new").await;
    // Writing through the snapshot is refused.
    let w = c
        .send(
            Method::PUT,
            &format!("snaps/a.bin?comp=range&sharesnapshot={snap}"),
            &[("x-ms-range", "bytes=0-0"), ("x-ms-write", "update")],
            vec![9],
        )
        .await;
    assert_eq!(w.status, 400);

    let old = c.ok(Method::GET, &format!("snaps/a.bin?sharesnapshot={snap}"), &[], vec![]).await;
    assert_eq!(old.body, vec![1u8; 4096]);
    let listing =
        c.ok(Method::GET, &format!("snaps?restype=directory&comp=list&sharesnapshot={snap}"), &[], vec![]).await;
    assert_eq!(names_and_marker(&listing.text()).0, vec!["a.bin"]);
    let live = c.ok(Method::GET, "snaps/a.bin", &[], vec![]).await;
    assert_eq!(live.body.len(), 1024);
    assert_eq!(&live.body[..512], &[0u8; 512][..]);
    let diff = c.ok(Method::GET, &format!("snaps/a.bin?comp=rangelist&prevsharesnapshot={snap}"), &[], vec![]).await;
    assert_eq!(
        diff.text(),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Ranges><ClearRange><Start>0</Start><End>511</End></ClearRange></Ranges>"
    );
    assert_eq!(diff.header("x-ms-content-length"), "1024");
    emu.shutdown().await;
}

#[tokio::test]
async fn errors_carry_azure_codes_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = Client::new(emu.addr());
    let r = c.send(Method::GET, "nosuch?restype=share", &[], vec![]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-ms-error-code"), "ShareNotFound");
    assert!(!r.header("x-ms-request-id").is_empty() && !r.header("date").is_empty());
    assert!(r.text().contains("<Code>ShareNotFound</Code>"));
    // HEAD errors have the code in the header only.
    c.ok(Method::PUT, "errs?restype=share", &[], vec![]).await;
    let h = c.send(Method::HEAD, "errs/missing.txt", &[], vec![]).await;
    assert_eq!((h.status, h.header("x-ms-error-code")), (404, "ResourceNotFound"));
    // HEAD on a file reports its size as Content-Length.
    c.create_file("errs/five.txt", b"12345").await;
    let h = c.ok(Method::HEAD, "errs/five.txt", &[], vec![]).await;
    assert_eq!(h.header("content-length"), "5");
    // A bad signature.
    let bad = reqwest::Client::new()
        .get(format!("http://{}/{DEV_ACCOUNT_NAME}/?comp=list", emu.addr()))
        .header("x-ms-date", httpdate::fmt_http_date(std::time::SystemTime::now()))
        .header("x-ms-version", "2025-05-05")
        .header("authorization", format!("SharedKey {DEV_ACCOUNT_NAME}:AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 403);
    assert_eq!(bad.headers()["x-ms-error-code"], "AuthenticationFailed");
    assert!(bad.text().await.unwrap().contains("<AuthenticationErrorDetail>"));
    emu.shutdown().await;
}

/// 100,000 entries in one directory, created over HTTP, listed page by page with `maxresults` and
/// `NextMarker`: every name once, in order, and the last page as fast as the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_100k_entries_in_pages() {
    const N: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = std::sync::Arc::new(Client::new(emu.addr()));
    c.ok(Method::PUT, "big?restype=share", &[], vec![]).await;
    c.ok(Method::PUT, "big/d?restype=directory", &[], vec![]).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..N).step_by(16) {
                c.ok(
                    Method::PUT,
                    &format!("big/d/n{i:06}"),
                    &[("x-ms-type", "file"), ("x-ms-content-length", "0")],
                    vec![],
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("created {N} files in {:?}", started.elapsed());

    let mut all = Vec::with_capacity(N);
    let mut marker: Option<String> = None;
    let mut page_times = Vec::new();
    loop {
        let q = match &marker {
            Some(m) => format!("big/d?restype=directory&comp=list&maxresults=5000&marker={m}"),
            None => "big/d?restype=directory&comp=list&maxresults=5000".to_string(),
        };
        let t = std::time::Instant::now();
        let page = c.ok(Method::GET, &q, &[], vec![]).await;
        page_times.push(t.elapsed());
        let (names, next) = names_and_marker(&page.text());
        assert!(names.len() <= 5000);
        all.extend(names);
        match next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(all.len(), N);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "pages are in name order without repeats");
    assert_eq!(page_times.len(), N / 5000);
    let (first, last) = (page_times[0], *page_times.last().unwrap());
    eprintln!("first page {first:?}, last page {last:?}");
    assert!(last < first * 5 + std::time::Duration::from_millis(200), "late pages must not scan from the start");
    emu.shutdown().await;
}

/// The account-less form `PUT /{share}/{path}?comp=rename` (as the JavaScript SDK sends Rename) and
/// host-style requests (`Host: devstoreaccount1.file.localhost`) reach the same shares as path-style ones.
#[tokio::test]
async fn account_less_and_host_style_requests() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(config(dir.path())).unwrap();
    let c = Client::new(emu.addr());
    c.ok(Method::PUT, "addr?restype=share", &[], vec![]).await;
    c.create_file("addr/old.txt", b"moved").await;
    let source = format!("http://{}/addr/old.txt", emu.addr());
    let r = c.send_raw(Method::PUT, "/addr/new.txt?comp=rename", &[("x-ms-file-rename-source", &source)], vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.ok(Method::GET, "addr/new.txt", &[], vec![]).await.body, b"moved");
    assert_eq!(c.send(Method::HEAD, "addr/old.txt", &[], vec![]).await.status, 404);

    let host = format!("devstoreaccount1.file.localhost:{}", emu.addr().port());
    let r = c.send_raw(Method::GET, "/addr/new.txt", &[("host", &host)], vec![]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"moved"[..]));
    let list = c.send_raw(Method::GET, "/addr?restype=directory&comp=list", &[("host", &host)], vec![]).await;
    assert!(list.text().contains(&format!("ServiceEndpoint=\"http://{host}/\"")), "{}", list.text());
    // A wrong signature is still refused in both forms.
    let unsigned = reqwest::Client::new()
        .get(format!("http://{}/addr/new.txt", emu.addr()))
        .header("x-ms-version", "2025-05-05")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn serves_https_with_a_given_certificate() {
    // A certificate made by --https in one data directory, given with --cert/--key to another emulator.
    let made = tempfile::tempdir().unwrap();
    let mut cfg = config(made.path());
    cfg.tls.https = true;
    let first = Emulator::start(cfg).unwrap();
    let cert = first.cert_path().unwrap().to_path_buf();
    assert!(first.connection_string().contains("FileEndpoint=https://"));
    first.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.tls.cert = Some(cert.clone());
    cfg.tls.key = Some(made.path().join("tls").join("key.pem"));
    let emu = Emulator::start(cfg).unwrap();
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([trusted]).build().unwrap();
    let url = format!("https://localhost:{}/{DEV_ACCOUNT_NAME}/?comp=list", emu.addr().port());
    let r = http.get(&url).header("x-ms-version", "2025-05-05").send().await.unwrap();
    // Unsigned, so refused, but by the emulator, over TLS.
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["x-ms-error-code"], "NoAuthenticationInformation");
    // A client that does not trust the certificate never gets an answer.
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    emu.shutdown().await;
}
