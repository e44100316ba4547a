//! A small, strict HTTP/1.x request-head parser and the framing the proxy needs.
//!
//! Written by hand rather than with hyper so that hostile request lines reach the host
//! checks as sent (and are recorded as sent), and so nothing is silently repaired: bare LF,
//! obs-fold, whitespace before `:`, conflicting `Content-Length` or `Transfer-Encoding` with
//! `Content-Length` are refused, which rules out request smuggling through the proxy.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};

/// The longest chunk-size line or trailer line accepted in a chunked request body.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer bytes accepted after a chunked request body (they are dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// The end of the header section: the index just past the first `\r\n\r\n`.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub method: String,
    /// The request target as sent (lossily decoded, so non-UTF-8 shows as non-ASCII).
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: &'static str,
    /// Names as sent; values as bytes (obs-text is allowed in values).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    /// All values of the header `name` (case-insensitive).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses the head (including its final blank line). The error is the reason for a 400.
pub(crate) fn parse_request_head(head: &[u8]) -> Result<RequestHead, String> {
    let head = head.strip_suffix(b"\r\n\r\n").ok_or("request head does not end with CRLF CRLF")?;
    let mut lines = split_crlf(head);
    let request_line = lines.next().ok_or("empty request")?;
    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err("request line is not `METHOD target HTTP/1.1` with single spaces".to_owned());
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err("request method is not a token".to_owned());
    }
    if target.is_empty() {
        return Err("request target is empty".to_owned());
    }
    let version = match *version {
        b"HTTP/1.1" => "HTTP/1.1",
        b"HTTP/1.0" => "HTTP/1.0",
        _ => return Err("only HTTP/1.1 and HTTP/1.0 are supported".to_owned()),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            return Err("obsolete header line folding is not accepted".to_owned());
        }
        let colon = line.iter().position(|&b| b == b':').ok_or("header line without `:`")?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err("header name is not a token (no whitespace before `:`)".to_owned());
        }
        let value = value.trim_ascii();
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!("header `{}` contains a control character", String::from_utf8_lossy(name)));
        }
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Ok(RequestHead {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        version,
        headers,
    })
}

fn split_crlf(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(buf);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                rest = Some(&current[i + 2..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Headers that describe one hop and are never forwarded, in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
];

/// The hop-by-hop header names: the fixed set plus those listed in `Connection`.
fn hop_by_hop<'a>(connection_values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut names: Vec<String> = HOP_BY_HOP.iter().map(|n| (*n).to_owned()).collect();
    for value in connection_values {
        for name in String::from_utf8_lossy(value).split(',') {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// Decides the body framing (RFC 9112 §6.3), refusing the ambiguous cases smuggling uses.
pub(crate) fn body_framing(head: &RequestHead) -> Result<BodyFraming, String> {
    let encodings: Vec<&[u8]> = head.values("transfer-encoding").collect();
    let lengths: Vec<&[u8]> = head.values("content-length").collect();
    if !encodings.is_empty() {
        if !lengths.is_empty() {
            return Err("both Transfer-Encoding and Content-Length are present".to_owned());
        }
        if head.version == "HTTP/1.0" {
            return Err("Transfer-Encoding is not defined for HTTP/1.0".to_owned());
        }
        let [only] = encodings.as_slice() else {
            return Err("more than one Transfer-Encoding header".to_owned());
        };
        if !only.eq_ignore_ascii_case(b"chunked") {
            return Err("only `Transfer-Encoding: chunked` is supported".to_owned());
        }
        return Ok(BodyFraming::Chunked);
    }
    let mut length = None;
    for value in lengths {
        // One header may repeat the value as a list (`5, 5`); every value must agree.
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err("Content-Length is not a number".to_owned());
            }
            let n: u64 = String::from_utf8_lossy(part).parse().map_err(|_| "Content-Length is not a number")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values".to_owned());
            }
            length = Some(n);
        }
    }
    // `Content-Length: 0` is kept as sent: some servers answer a bodiless POST without it with 411.
    Ok(length.map_or(BodyFraming::None, BodyFraming::Length))
}

/// The request head sent upstream: origin-form target, our `Host`, hop-by-hop headers
/// removed, the body framing restated, `Connection: close`.
pub(crate) fn upstream_request_head(head: &RequestHead, path: &str, authority: &str, framing: BodyFraming) -> Vec<u8> {
    let drop = hop_by_hop(head.values("connection"));
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("{} {} {}\r\nHost: {}\r\n", head.method, path, head.version, authority).as_bytes());
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "host" || lower == "content-length" || drop.contains(&lower) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(n) => out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes()),
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// A response head rewritten for the client: hop-by-hop headers removed (except the body's
/// own framing, which passes through unchanged), `Connection: close` added. Returns the new
/// head and whether it is an interim (1xx) response, after which another head follows.
pub(crate) fn client_response_head(head: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let head = head.strip_suffix(b"\r\n\r\n").ok_or("upstream response head is incomplete")?;
    let mut lines = split_crlf(head);
    let status_line = lines.next().ok_or("upstream sent an empty response")?;
    let status = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .filter(|code| code.iter().all(u8::is_ascii_digit))
        .ok_or("upstream did not answer with an HTTP/1.x status line")?;
    let interim = status[0] == b'1';
    let lines: Vec<&[u8]> = lines.collect();
    let name_of = |line: &[u8]| -> String {
        let end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        String::from_utf8_lossy(&line[..end]).trim().to_ascii_lowercase()
    };
    let connection_values: Vec<&[u8]> = lines
        .iter()
        .filter(|line| name_of(line) == "connection")
        .map(|line| line.iter().position(|&b| b == b':').map_or(&line[line.len()..], |i| &line[i + 1..]))
        .collect();
    let drop = hop_by_hop(connection_values.into_iter());
    let mut out = Vec::with_capacity(head.len() + 32);
    out.extend_from_slice(status_line);
    out.extend_from_slice(b"\r\n");
    for line in lines {
        let name = name_of(line);
        if name != "transfer-encoding" && drop.contains(&name) {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if !interim {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok((out, interim))
}

/// Reads one CRLF-terminated line of at most `limit` bytes, without the CRLF.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = (&mut *reader).take(limit as u64 + 1).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "body ended early"));
    }
    match line.strip_suffix(b"\r\n") {
        Some(content) if line.len() <= limit => Ok(content.to_vec()),
        _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed chunked body line")),
    }
}

/// One step of a chunked body, re-emitted in canonical form (extensions and trailers dropped).
pub(crate) enum Chunk {
    /// A data chunk of this many bytes follows, then CRLF.
    Data(u64),
    /// The last chunk; trailers have been read and dropped.
    Last,
}

/// Reads a chunk-size line (and, for the last chunk, the trailer section).
pub(crate) async fn read_chunk_header<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Chunk> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed chunk size");
    let line = read_line(reader, MAX_CHUNK_LINE).await?;
    let size_end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let size = line[..size_end].trim_ascii();
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid());
    }
    let size = u64::from_str_radix(&String::from_utf8_lossy(size), 16).map_err(|_| invalid())?;
    if size > 0 {
        return Ok(Chunk::Data(size));
    }
    let mut trailer_bytes = 0;
    loop {
        let trailer = read_line(reader, MAX_CHUNK_LINE).await?;
        if trailer.is_empty() {
            return Ok(Chunk::Last);
        }
        trailer_bytes += trailer.len();
        if trailer_bytes > MAX_TRAILERS {
            return Err(invalid());
        }
    }
}

/// Reads the CRLF that ends a data chunk.
pub(crate) async fn read_chunk_end<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<()> {
    let mut crlf = [0u8; 2];
    reader.read_exact(&mut crlf).await?;
    if &crlf != b"\r\n" {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "chunk not followed by CRLF"));
    }
    Ok(())
}

/// A complete, short response from the proxy itself.
pub(crate) fn proxy_response(status: u16, body: &str) -> Vec<u8> {
    let phrase = match status {
        200 => "Connection Established",
        400 => "Bad Request",
        403 => "Forbidden",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    if status == 200 {
        return format!("HTTP/1.1 200 {phrase}\r\n\r\n").into_bytes();
    }
    let body = format!("airlock egress: {body}\n");
    format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequestHead, String> {
        parse_request_head(text.as_bytes())
    }

    #[test]
    fn parses_a_connect_head() {
        let head = parse("CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n").unwrap();
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.target, "github.com:443");
        assert_eq!(head.values("host").collect::<Vec<_>>(), vec![b"github.com:443".as_slice()]);
    }

    #[test]
    fn malformed_heads_are_refused() {
        for text in [
            "CONNECT  github.com:443 HTTP/1.1\r\n\r\n",
            "CONNECT github.com:443 HTTP/1.1 \r\n\r\n",
            "CONNECT github.com:443\r\n\r\n",
            "CONNECT github.com:443 HTTP/2\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX: a\nHost: b\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nX: a\0\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nnocolon\r\n\r\n",
            "G\0T http://a/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn ambiguous_body_framing_is_refused() {
        let framing =
            |headers: &str| body_framing(&parse(&format!("POST http://a/ HTTP/1.1\r\n{headers}\r\n")).unwrap());
        assert_eq!(framing(""), Ok(BodyFraming::None));
        assert_eq!(framing("Content-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
        assert_eq!(framing("Content-Length: 0\r\n"), Ok(BodyFraming::Length(0)));
        assert_eq!(framing("Content-Length: 5\r\nContent-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
        assert_eq!(framing("Transfer-Encoding: chunked\r\n"), Ok(BodyFraming::Chunked));
        assert!(framing("Content-Length: 5\r\nContent-Length: 6\r\n").is_err());
        assert!(framing("Content-Length: 5, 6\r\n").is_err());
        assert!(framing("Content-Length: +5\r\n").is_err());
        assert!(framing("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n").is_err());
        assert!(framing("Transfer-Encoding: gzip, chunked\r\n").is_err());
        assert!(framing("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n").is_err());
    }

    #[test]
    fn upstream_head_drops_hop_by_hop_headers() {
        let head = parse(
            "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nProxy-Authorization: Basic c2VjcmV0\r\n\
             Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        let out = String::from_utf8(upstream_request_head(&head, "/x", "a.test", BodyFraming::None)).unwrap();
        assert_eq!(out, "GET /x HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn response_head_is_rewritten_for_the_client() {
        let (out, interim) = client_response_head(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
              Transfer-Encoding: chunked\r\nServer: t\r\n\r\n",
        )
        .unwrap();
        assert!(!interim);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: t\r\nConnection: close\r\n\r\n"
        );
        let (_, interim) = client_response_head(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        assert!(interim);
        assert!(client_response_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
