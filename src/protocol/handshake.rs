//! The HTTP side of a connection: parse the request head (httparse), decide between a
//! WebSocket upgrade, a plain HTTP request and a refusal, and write the 101 response
//! (accept key by tungstenite).

use tungstenite::handshake::derive_accept_key;

/// Most header lines accepted in one request.
pub const MAX_HEADERS: usize = 64;

/// A validated upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Request target: path with query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub key: String,
    /// Subprotocols offered by the client, in its order.
    pub protocols: Vec<String>,
}

impl UpgradeRequest {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RequestHead {
    /// More bytes are needed.
    Partial,
    /// A WebSocket upgrade; `consumed` bytes belong to the request head (more may follow).
    Upgrade { request: UpgradeRequest, consumed: usize },
    /// An ordinary HTTP request (no `Upgrade: websocket`).
    Http {
        method: String,
        target: String,
        /// `If-None-Match` / `If-Modified-Since` headers (name, value), for 304 answers.
        conditional: Vec<(String, String)>,
    },
    /// Refuse with this status (and `Sec-WebSocket-Version: 13` when it is 426).
    Refuse { status: u16, reason: &'static str },
}

/// Parses the request head accumulated so far in `buf`.
pub fn parse_request(buf: &[u8], max_header_bytes: usize) -> RequestHead {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > max_header_bytes => {
            return RequestHead::Refuse { status: 431, reason: "request header too large" }
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_header_bytes => {
            return RequestHead::Refuse { status: 431, reason: "request header too large" }
        }
        Ok(httparse::Status::Partial) => return RequestHead::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return RequestHead::Refuse { status: 431, reason: "too many request headers" }
        }
        Err(_) => return RequestHead::Refuse { status: 400, reason: "malformed HTTP request" },
    };
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or_default().to_owned();
    let find = |name: &str| {
        req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    };
    let has_token = |name: &str, token: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("Upgrade", "websocket") {
        let conditional = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("if-none-match") || h.name.eq_ignore_ascii_case("if-modified-since"))
            .filter_map(|h| Some((h.name.to_owned(), std::str::from_utf8(h.value).ok()?.to_owned())))
            .collect();
        return RequestHead::Http { method, target, conditional };
    }
    if method != "GET" || req.version != Some(1) {
        return RequestHead::Refuse { status: 400, reason: "WebSocket upgrade must be GET over HTTP/1.1" };
    }
    if !has_token("Connection", "upgrade") {
        return RequestHead::Refuse { status: 400, reason: "missing Connection: Upgrade" };
    }
    if find("Sec-WebSocket-Version") != Some(b"13") {
        return RequestHead::Refuse { status: 426, reason: "unsupported WebSocket version" };
    }
    let key = match find("Sec-WebSocket-Key").and_then(|k| std::str::from_utf8(k).ok()) {
        Some(k) if is_valid_key(k.trim()) => k.trim().to_owned(),
        _ => return RequestHead::Refuse { status: 400, reason: "missing or invalid Sec-WebSocket-Key" },
    };
    if !target.starts_with('/') {
        return RequestHead::Refuse { status: 400, reason: "invalid request target" };
    }
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        match std::str::from_utf8(h.value) {
            Ok(v) => headers.push((h.name.to_owned(), v.to_owned())),
            Err(_) => return RequestHead::Refuse { status: 400, reason: "header value is not UTF-8" },
        }
    }
    let protocols = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    RequestHead::Upgrade { request: UpgradeRequest { path: target, headers, key, protocols }, consumed }
}

/// A key is the base64 encoding of 16 bytes: 22 base64 characters and "==".
fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Picks the first of the server's subprotocols (its preference order) that the client offered.
pub fn choose_protocol<'a>(server: &'a [String], offered: &[String]) -> Option<&'a str> {
    server.iter().find(|s| offered.iter().any(|o| o == *s)).map(String::as_str)
}

/// The `101 Switching Protocols` response.
pub fn accept_response(key: &str, protocol: Option<&str>) -> Vec<u8> {
    accept_response_with_extensions(key, protocol, None)
}

/// The `101 Switching Protocols` response, with a `Sec-WebSocket-Extensions` line when an
/// extension was accepted (e.g. `DeflateParams::response_header()`).
pub fn accept_response_with_extensions(key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = protocol {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(p);
        out.push_str("\r\n");
    }
    if let Some(e) = extensions {
        out.push_str("Sec-WebSocket-Extensions: ");
        out.push_str(e);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    #[test]
    fn accepts_a_valid_upgrade_and_keeps_trailing_bytes() {
        let mut wire = GOOD.as_bytes().to_vec();
        wire.extend_from_slice(&[0x81, 0x80]);
        match parse_request(&wire, 8192) {
            RequestHead::Upgrade { request, consumed } => {
                assert_eq!(consumed, GOOD.len());
                assert_eq!(request.path, "/chat?room=1");
                assert_eq!(request.protocols, vec!["chat", "superchat"]);
                assert_eq!(request.header("host"), Some("x"));
                let resp = String::from_utf8(accept_response(&request.key, Some("chat"))).unwrap();
                assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
                assert!(resp.contains("Sec-WebSocket-Protocol: chat\r\n"));
                assert!(!resp.contains("Extensions"));
                let resp = accept_response_with_extensions(&request.key, None, Some("permessage-deflate"));
                let resp = String::from_utf8(resp).unwrap();
                assert!(resp.ends_with("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_request(&GOOD.as_bytes()[..30], 8192), RequestHead::Partial);
        let v8 = GOOD.replace("Version: 13", "Version: 8");
        assert!(matches!(parse_request(v8.as_bytes(), 8192), RequestHead::Refuse { status: 426, .. }));
        let nokey = GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert!(matches!(parse_request(nokey.as_bytes(), 8192), RequestHead::Refuse { status: 400, .. }));
        assert!(matches!(parse_request(b"\x16\x03\x01garbage\r\n\r\n", 8192), RequestHead::Refuse { status: 400, .. }));
        assert!(matches!(parse_request(GOOD.as_bytes(), 64), RequestHead::Refuse { status: 431, .. }));
        assert!(matches!(parse_request(&[b'a'; 100], 64), RequestHead::Refuse { status: 431, .. }));
        let plain = parse_request(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 8192);
        assert_eq!(plain, RequestHead::Http { method: "GET".into(), target: "/index.html".into(), conditional: vec![] });
    }

    #[test]
    fn server_preference_wins() {
        let server = vec!["b".to_owned(), "a".to_owned()];
        assert_eq!(choose_protocol(&server, &["a".into(), "b".into()]), Some("b"));
        assert_eq!(choose_protocol(&server, &["c".into()]), None);
    }
}
