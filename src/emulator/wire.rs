//! The emulator's HTTP/1.1 server: connections, request heads (parsed with `httparse`), bodies and
//! responses, over plain TCP or TLS.
//!
//! Written here rather than taken from hyper because Azure keeps the case of header names a client
//! gave (metadata names: `x-ms-meta-Name`), and hyper lower-cases names both ways. A request carries
//! the names as sent in [`HeaderCase`]; a response may carry a [`HeaderCase`] of names to write in
//! that spelling (others are written lower-case, which HTTP allows).
//!
//! Contract: one request at a time per connection (pipelined requests wait their turn); keep-alive
//! unless the client says `Connection: close` or speaks HTTP/1.0 without `keep-alive`; request bodies
//! by `Content-Length` or chunked, read whole (up to `max_body` bytes; a larger one is handed to the
//! handler as a body that fails to read, and the connection closes after the answer);
//! `Expect: 100-continue` answered; response bodies with `Content-Length` when their size is known
//! (or set by the handler, as for HEAD), else chunked.

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// Longest request head (request line and headers), bytes.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 128;
/// Buffer sizes of a connection's reader and writer, bytes.
const IO_BUFFER: usize = 64 * 1024;

/// The connection a request came on (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The TCP socket (for a fault that resets the connection).
    pub fd: RawFd,
    /// True on a TLS connection.
    pub https: bool,
}

/// Header names in the spelling to keep: on a request, every name as the client sent it; on a
/// response, names to write in this spelling instead of lower case.
#[derive(Debug, Clone, Default)]
pub struct HeaderCase(pub Vec<String>);

impl HeaderCase {
    /// The spelling of `name` (compared ignoring ASCII case), if recorded.
    pub fn spelling(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|n| n.eq_ignore_ascii_case(name)).map(String::as_str)
    }
}

/// Answers one request.
pub type Handler = Arc<dyn Fn(Request<Body>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Serves `handler` on `listener` (over TLS when `tls` is given) until `shutdown` completes; then stops
/// accepting, lets requests in progress finish, closes idle connections and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Handler,
    max_body: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("emulator accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let peer = Peer { addr, fd: tcp.as_raw_fd(), https: acceptor.is_some() };
        let handler = Arc::clone(&handler);
        let stop = stop_rx.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => connection(tcp, peer, handler, max_body, stop).await,
                Some(a) => match a.accept(tcp).await {
                    Ok(tls) => connection(tls, peer, handler, max_body, stop).await,
                    Err(e) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                },
            }
        });
        // Reap finished connections so the set does not grow with every connection ever served.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves the requests of one connection in turn until the client closes it, an error, or shutdown
/// while idle.
async fn connection<S: AsyncRead + AsyncWrite + Send + Unpin>(
    io: S,
    peer: Peer,
    handler: Handler,
    max_body: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (rd, wr) = tokio::io::split(io);
    let mut rd = BufReader::with_capacity(IO_BUFFER, rd);
    let mut wr = tokio::io::BufWriter::with_capacity(IO_BUFFER, wr);
    let mut head = Vec::with_capacity(4096);
    loop {
        if *stop.borrow() {
            return;
        }
        let got = tokio::select! {
            got = read_head(&mut rd, &mut head) => got,
            _ = stop.changed() => return,
        };
        match got {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::debug!("emulator connection from {}: {e}", peer.addr);
                let _ = write_plain_error(&mut wr, StatusCode::BAD_REQUEST).await;
                return;
            }
        }
        let ParsedHead { mut request, mut keep_alive, framing, expect_continue } = match parse_head(&head) {
            Ok(p) => p,
            Err(status) => {
                let _ = write_plain_error(&mut wr, status).await;
                return;
            }
        };
        let body = match framing {
            Framing::None => Body::empty(),
            Framing::Length(n) if n > max_body as u64 => {
                keep_alive = false;
                too_large_body()
            }
            Framing::Length(n) => {
                if expect_continue && write_continue(&mut wr).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; n as usize];
                if rd.read_exact(&mut buf).await.is_err() {
                    return;
                }
                Body::from(buf)
            }
            Framing::Chunked => {
                if expect_continue && write_continue(&mut wr).await.is_err() {
                    return;
                }
                match read_chunked(&mut rd, max_body).await {
                    Ok(Some(buf)) => Body::from(buf),
                    Ok(None) => {
                        keep_alive = false;
                        too_large_body()
                    }
                    Err(_) => return,
                }
            }
        };
        let is_head = request.method() == Method::HEAD;
        request.extensions_mut().insert(peer);
        let response = handler(request.map(|()| body)).await;
        if write_response(&mut wr, response, is_head, keep_alive).await.is_err() || !keep_alive {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// A body whose reading fails, for a request body over the limit (the handler answers as it does for
/// any body it cannot read).
fn too_large_body() -> Body {
    Body::from_stream(futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("request body over the limit"))
    }))
}

/// Reads one request head (through the blank line) into `head`. `Ok(false)` when the connection closed
/// cleanly before a request began.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(rd: &mut R, head: &mut Vec<u8>) -> std::io::Result<bool> {
    head.clear();
    loop {
        let buf = rd.fill_buf().await?;
        if buf.is_empty() {
            return if head.is_empty() {
                Ok(false)
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed in a request head"))
            };
        }
        let n = buf.len();
        let search_from = head.len().saturating_sub(3);
        head.extend_from_slice(buf);
        if let Some(at) = head[search_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = search_from + at + 4;
            let beyond = head.len() - end;
            rd.consume(n - beyond);
            head.truncate(end);
            return Ok(true);
        }
        rd.consume(n);
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
    }
}

/// How a request body is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

struct ParsedHead {
    request: Request<()>,
    keep_alive: bool,
    framing: Framing,
    expect_continue: bool,
}

/// Parses a complete request head; the error is the status to answer before closing.
fn parse_head(head: &[u8]) -> Result<ParsedHead, StatusCode> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(StatusCode::BAD_REQUEST),
        Err(httparse::Error::TooManyHeaders) => return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    }
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
    let uri: http::Uri = req.path.unwrap_or("").parse().map_err(|_| StatusCode::BAD_REQUEST)?;
    let version = if req.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut names = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| StatusCode::BAD_REQUEST)?;
        headers.append(name, value);
        names.push(h.name.to_string());
    }
    let has_token = |name: &str, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().unwrap_or("").split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let keep_alive = if version == Version::HTTP_10 {
        has_token("connection", "keep-alive")
    } else {
        !has_token("connection", "close")
    };
    let expect_continue = has_token("expect", "100-continue");
    let framing = if has_token("transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match headers.get(http::header::CONTENT_LENGTH) {
            None => Framing::None,
            Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                Some(0) => Framing::None,
                Some(n) => Framing::Length(n),
                None => return Err(StatusCode::BAD_REQUEST),
            },
        }
    };
    let mut request = Request::builder().method(method).uri(uri).version(version).body(()).expect("parts are valid");
    *request.headers_mut() = headers;
    request.extensions_mut().insert(HeaderCase(names));
    Ok(ParsedHead { request, keep_alive, framing, expect_continue })
}

/// Reads a chunked body; `None` when it grows past `max` (the rest is left unread).
async fn read_chunked<R: tokio::io::AsyncBufRead + Unpin>(rd: &mut R, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let bad = |what: &str| std::io::Error::other(format!("bad chunked body: {what}"));
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 || line.len() > 1024 {
            return Err(bad("chunk size line"));
        }
        let size_text = line.trim_end().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if rd.read_line(&mut line).await? == 0 {
                    return Err(bad("trailers"));
                }
                if line == "\r\n" || line == "\n" {
                    return Ok(Some(out));
                }
            }
        }
        if out.len() + size > max {
            return Ok(None);
        }
        let at = out.len();
        out.resize(at + size, 0);
        rd.read_exact(&mut out[at..]).await?;
        let mut crlf = [0u8; 2];
        rd.read_exact(&mut crlf).await?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk end"));
        }
    }
}

async fn write_continue<W: AsyncWrite + Unpin>(wr: &mut W) -> std::io::Result<()> {
    wr.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    wr.flush().await
}

/// A bare answer to a request that could not be parsed (no handler saw it); the connection is closed
/// after it.
async fn write_plain_error<W: AsyncWrite + Unpin>(wr: &mut W, status: StatusCode) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    wr.write_all(head.as_bytes()).await?;
    wr.flush().await
}

/// Writes `response`; header names in its [`HeaderCase`] are written in that spelling.
async fn write_response<W: AsyncWrite + Unpin>(
    wr: &mut W,
    response: Response<Body>,
    is_head: bool,
    keep_alive: bool,
) -> std::io::Result<()> {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let no_body_status =
        status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let bodyless = is_head || no_body_status;
    let exact = axum::body::HttpBody::size_hint(&body).exact();
    let given_length: Option<u64> =
        parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let chunked = !bodyless && given_length.is_none() && exact.is_none();
    let case = parts.extensions.get::<HeaderCase>();
    let mut head: Vec<u8> = Vec::with_capacity(1024);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in parts.headers.iter() {
        if name == http::header::TRANSFER_ENCODING || name == http::header::CONNECTION {
            continue;
        }
        let spelled = case.and_then(|c| c.spelling(name.as_str())).unwrap_or(name.as_str());
        head.extend_from_slice(spelled.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if given_length.is_none()
        && !no_body_status
        && let Some(n) = exact
    {
        head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
    }
    if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    wr.write_all(&head).await?;
    if !bodyless {
        let declared = given_length.or(exact);
        let mut sent: u64 = 0;
        let mut stream = body.into_data_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(std::io::Error::other)?;
            if piece.is_empty() {
                continue;
            }
            sent += piece.len() as u64;
            if chunked {
                wr.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                wr.write_all(&piece).await?;
                wr.write_all(b"\r\n").await?;
            } else {
                wr.write_all(&piece).await?;
            }
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        } else if declared.is_some_and(|d| d != sent) {
            // The body did not match its declared length: the connection cannot carry another answer.
            wr.flush().await?;
            return Err(std::io::Error::other("response body length differs from its Content-Length"));
        }
    }
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_header_name_spelling_and_framing() {
        let p = parse_head(
            b"PUT /a/b?comp=metadata HTTP/1.1\r\nHost: x\r\nx-ms-meta-CamelCase: v\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!(p.request.uri().path(), "/a/b");
        assert_eq!(p.request.headers()["x-ms-meta-camelcase"], "v");
        let case = p.request.extensions().get::<HeaderCase>().unwrap();
        assert_eq!(case.spelling("x-ms-meta-camelcase"), Some("x-ms-meta-CamelCase"));
        assert!(p.keep_alive && matches!(p.framing, Framing::Length(3)));
        let p = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!p.keep_alive && matches!(p.framing, Framing::None));
        let p = parse_head(b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!p.keep_alive && matches!(p.framing, Framing::Chunked));
        assert!(parse_head(b"PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded_and_capped() {
        let mut rd = &b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"[..];
        assert_eq!(read_chunked(&mut rd, 100).await.unwrap(), Some(b"abcde".to_vec()));
        let mut rd = &b"3\r\nabc\r\n0\r\n\r\n"[..];
        assert_eq!(read_chunked(&mut rd, 2).await.unwrap(), None);
    }
}
