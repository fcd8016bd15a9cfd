//! The client side of the opening handshake (RFC 6455 section 4.1), sans-IO: build the
//! `GET` upgrade request, then feed the server's bytes until the response head is complete
//! and validated. Bytes that follow the head (frames the server sent right after its 101)
//! are handed back, not lost.
//!
//! Decisions where the RFC leaves room:
//! - a server that selects no subprotocol although some were offered is accepted (RFC 6455
//!   4.1 and browsers: the subprotocol is then null); set [`HandshakeOptions::require_protocol`]
//!   to fail instead, as Node's `ws` does;
//! - a `Sec-WebSocket-Extensions` header in the response when the client offered none fails the
//!   handshake here; when an offer was made, the values are returned for the caller to check;
//! - `Connection` is matched as a token list (`keep-alive, Upgrade` passes), `Upgrade` must be
//!   exactly `websocket` (case-insensitive), and the 101 must be HTTP/1.1;
//! - redirects (3xx) are not followed: they are failures carrying the status and headers.

use tungstenite::handshake::derive_accept_key;

/// Most header lines accepted in one response.
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Default cap on the response head.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// What the caller adds to the upgrade request.
#[derive(Debug, Clone)]
pub struct HandshakeOptions {
    /// Subprotocols to offer, in preference order (`Sec-WebSocket-Protocol`); each a token.
    pub protocols: Vec<String>,
    /// Fail when the server selects none of the offered subprotocols.
    pub require_protocol: bool,
    /// `Origin` header value, if any.
    pub origin: Option<String>,
    /// `Sec-WebSocket-Extensions` offer, sent as given (e.g. from the permessage-deflate code).
    pub extensions: Option<String>,
    /// Extra headers (e.g. `Authorization`, `Cookie`, `User-Agent`). A `Host` here replaces the
    /// one derived from the URL; the handshake's own headers (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key/-Version/-Protocol/-Extensions`) are refused.
    pub headers: Vec<(String, String)>,
    /// Cap on the response head in bytes (default 16 KiB).
    pub max_response_bytes: usize,
}

impl Default for HandshakeOptions {
    fn default() -> Self {
        HandshakeOptions {
            protocols: Vec::new(),
            require_protocol: false,
            origin: None,
            extensions: None,
            headers: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A request that cannot be built; the text says which input is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError(pub String);

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid handshake request: {}", self.0)
    }
}

impl std::error::Error for RequestError {}

impl From<RequestError> for crate::Error {
    fn from(e: RequestError) -> Self {
        crate::Error::InvalidArgument(e.to_string())
    }
}

/// A validated 101 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server selected (one the client offered).
    pub protocol: Option<String>,
    /// Values of every `Sec-WebSocket-Extensions` response header, in order, for the caller's
    /// extension negotiation (empty when the server accepted none).
    pub extensions: Vec<String>,
    /// All response headers (names as sent; values not UTF-8 are refused).
    pub headers: Vec<(String, String)>,
    /// Bytes after the response head: WebSocket frames to feed to the decoder.
    pub early_data: Vec<u8>,
}

impl Accepted {
    /// First value of a response header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Why the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with another status than 101 (e.g. 401, 404, 503, a redirect).
    Status { status: u16, reason: String, headers: Vec<(String, String)> },
    /// The response is not valid HTTP, is too large, or is a 101 that breaks RFC 6455 4.1.
    Invalid(String),
}

impl HandshakeError {
    fn invalid(msg: impl Into<String>) -> Self {
        HandshakeError::Invalid(msg.into())
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Status { status, reason, .. } => {
                write!(f, "server answered HTTP {status} {reason} instead of 101")
            }
            HandshakeError::Invalid(msg) => write!(f, "invalid handshake response: {msg}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// One client handshake: the request it sent and the state to check the response.
#[derive(Debug)]
pub struct ClientHandshake {
    key: String,
    protocols: Vec<String>,
    require_protocol: bool,
    offered_extensions: bool,
    max_response_bytes: usize,
    buf: Vec<u8>,
}

impl ClientHandshake {
    /// Builds the upgrade request for `host_header` (e.g. `example.com`, `[::1]:8443`) and
    /// `resource` (path and query, starting with `/`), with a fresh random key from the OS.
    /// Returns the handshake state and the request bytes to send.
    pub fn new(
        host_header: &str,
        resource: &str,
        options: &HandshakeOptions,
    ) -> Result<(ClientHandshake, Vec<u8>), RequestError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| RequestError(format!("no OS randomness: {e}")))?;
        Self::with_nonce(nonce, host_header, resource, options)
    }

    /// As [`ClientHandshake::new`] with a given 16-byte nonce (tests and reproducible tools).
    pub fn with_nonce(
        nonce: [u8; 16],
        host_header: &str,
        resource: &str,
        options: &HandshakeOptions,
    ) -> Result<(ClientHandshake, Vec<u8>), RequestError> {
        let key = data_encoding::BASE64.encode(&nonce);
        let request = build_request(&key, host_header, resource, options)?;
        let handshake = ClientHandshake {
            key,
            protocols: options.protocols.clone(),
            require_protocol: options.require_protocol,
            offered_extensions: options.extensions.is_some(),
            max_response_bytes: options.max_response_bytes,
            buf: Vec::new(),
        };
        Ok((handshake, request))
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Feeds bytes from the server. `Ok(None)`: the head is not complete yet, feed more.
    /// After `Ok(Some(_))` or an error the handshake is over and must not be fed again.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<Accepted>, HandshakeError> {
        let old = self.buf.len();
        self.buf.extend_from_slice(input);
        // Re-parse only once the blank line can be there (cheap when fed a byte at a time).
        let search_from = old.saturating_sub(3);
        if !self.buf[search_from..].windows(4).any(|w| w == b"\r\n\r\n")
            && !self.buf[search_from..].windows(2).any(|w| w == b"\n\n")
        {
            if self.buf.len() > self.max_response_bytes {
                return Err(HandshakeError::invalid("response head too large"));
            }
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let consumed = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) if n > self.max_response_bytes => {
                return Err(HandshakeError::invalid("response head too large"))
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.buf.len() > self.max_response_bytes => {
                return Err(HandshakeError::invalid("response head too large"))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::invalid("too many response headers"))
            }
            Err(e) => return Err(HandshakeError::invalid(format!("malformed HTTP response ({e})"))),
        };
        let status = resp.code.unwrap_or(0);
        let reason = resp.reason.unwrap_or("").to_owned();
        let mut list = Vec::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            // Latin-1 bytes in a refusal's headers are kept lossily; in a 101 they fail below.
            list.push((h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()));
        }
        if status != 101 {
            return Err(HandshakeError::Status { status, reason, headers: list });
        }
        if resp.version != Some(1) {
            return Err(HandshakeError::invalid("101 response is not HTTP/1.1"));
        }
        if resp.headers.iter().any(|h| std::str::from_utf8(h.value).is_err()) {
            return Err(HandshakeError::invalid("header value is not UTF-8"));
        }
        let all = |name: &'static str| values(&list, name);
        match all("Upgrade").collect::<Vec<_>>().as_slice() {
            [v] if v.eq_ignore_ascii_case("websocket") => {}
            [] => return Err(HandshakeError::invalid("missing Upgrade: websocket")),
            _ => return Err(HandshakeError::invalid("Upgrade is not websocket")),
        }
        if !all("Connection").flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("upgrade")) {
            return Err(HandshakeError::invalid("missing Connection: Upgrade"));
        }
        let expected = derive_accept_key(self.key.as_bytes());
        match all("Sec-WebSocket-Accept").collect::<Vec<_>>().as_slice() {
            [v] if *v == expected => {}
            [] => return Err(HandshakeError::invalid("missing Sec-WebSocket-Accept")),
            [_] => return Err(HandshakeError::invalid("Sec-WebSocket-Accept does not match the key")),
            _ => return Err(HandshakeError::invalid("more than one Sec-WebSocket-Accept")),
        }
        let protocol = match all("Sec-WebSocket-Protocol").collect::<Vec<_>>().as_slice() {
            [] => None,
            [p] if p.contains(',') => {
                return Err(HandshakeError::invalid("server selected more than one subprotocol"))
            }
            [p] if self.protocols.iter().any(|o| o == p) => Some((*p).to_owned()),
            [p] if self.protocols.is_empty() => {
                return Err(HandshakeError::invalid(format!("server selected subprotocol {p:?}, none was offered")))
            }
            [p] => return Err(HandshakeError::invalid(format!("server selected subprotocol {p:?}, which was not offered"))),
            _ => return Err(HandshakeError::invalid("server selected more than one subprotocol")),
        };
        if protocol.is_none() && self.require_protocol && !self.protocols.is_empty() {
            return Err(HandshakeError::invalid("server selected none of the offered subprotocols"));
        }
        let extensions: Vec<String> =
            all("Sec-WebSocket-Extensions").filter(|v| !v.is_empty()).map(str::to_owned).collect();
        if !extensions.is_empty() && !self.offered_extensions {
            return Err(HandshakeError::invalid("server accepted extensions, none were offered"));
        }
        let early_data = self.buf.split_off(consumed);
        self.buf = Vec::new();
        Ok(Some(Accepted { protocol, extensions, headers: list, early_data }))
    }
}

/// Trimmed values of every header called `name`.
fn values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// RFC 7230 `tchar`: header names and subprotocol names are tokens.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value must not break the request: no CR, LF, NUL or other control byte but tab.
fn check_value(what: &str, value: &str) -> Result<(), RequestError> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(RequestError(format!("{what} contains CR, LF or another control character")));
    }
    Ok(())
}

/// Headers the handshake writes itself.
const RESERVED: [&str; 6] = [
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
];

fn build_request(
    key: &str,
    host_header: &str,
    resource: &str,
    options: &HandshakeOptions,
) -> Result<Vec<u8>, RequestError> {
    if !resource.starts_with('/') || resource.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(RequestError("request target must start with / and hold no spaces, controls or non-ASCII".into()));
    }
    check_value("Host", host_header)?;
    for (name, value) in &options.headers {
        if !is_token(name) {
            return Err(RequestError(format!("header name {name:?} is not a token")));
        }
        check_value(&format!("header {name}"), value)?;
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(RequestError(format!("header {name} is set by the handshake itself")));
        }
        if name.eq_ignore_ascii_case("Origin") && options.origin.is_some() {
            return Err(RequestError("Origin given both as an option and as a header".into()));
        }
    }
    let mut seen = Vec::new();
    for p in &options.protocols {
        if !is_token(p) {
            return Err(RequestError(format!("subprotocol {p:?} is not a token")));
        }
        if seen.contains(&p) {
            return Err(RequestError(format!("subprotocol {p:?} offered twice")));
        }
        seen.push(p);
    }
    if let Some(origin) = &options.origin {
        check_value("Origin", origin)?;
    }
    if let Some(ext) = &options.extensions {
        check_value("Sec-WebSocket-Extensions", ext)?;
    }
    let custom_host = header(&options.headers, "Host");
    let mut out = String::with_capacity(256);
    out.push_str("GET ");
    out.push_str(resource);
    out.push_str(" HTTP/1.1\r\nHost: ");
    out.push_str(custom_host.unwrap_or(host_header));
    out.push_str("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.push_str(key);
    out.push_str("\r\nSec-WebSocket-Version: 13\r\n");
    if let Some(origin) = &options.origin {
        out.push_str(&format!("Origin: {origin}\r\n"));
    }
    if !options.protocols.is_empty() {
        out.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", options.protocols.join(", ")));
    }
    if let Some(ext) = &options.extensions {
        out.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    for (name, value) in &options.headers {
        if !name.eq_ignore_ascii_case("Host") {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6455 section 1.3 sample nonce ("the sample nonce") and its accept value.
    const NONCE: [u8; 16] = *b"the sample nonce";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn handshake(options: &HandshakeOptions) -> (ClientHandshake, String) {
        let (hs, req) = ClientHandshake::with_nonce(NONCE, "server.example.com", "/chat", options).unwrap();
        (hs, String::from_utf8(req).unwrap())
    }

    fn response(extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n")
    }

    fn feed_all(options: &HandshakeOptions, wire: &[u8]) -> Result<Option<Accepted>, HandshakeError> {
        handshake(options).0.feed(wire)
    }

    fn invalid(options: &HandshakeOptions, wire: &str) -> String {
        match feed_all(options, wire.as_bytes()) {
            Err(HandshakeError::Invalid(msg)) => msg,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_bytes_golden() {
        let options = HandshakeOptions {
            protocols: vec!["chat".into(), "superchat".into()],
            origin: Some("http://example.com".into()),
            extensions: Some("permessage-deflate; client_max_window_bits".into()),
            headers: vec![("Authorization".into(), "Bearer t".into()), ("Cookie".into(), "a=1; b=2".into())],
            ..Default::default()
        };
        let (hs, req) = handshake(&options);
        assert_eq!(hs.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            req,
            "GET /chat HTTP/1.1\r\n\
             Host: server.example.com\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Origin: http://example.com\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Authorization: Bearer t\r\n\
             Cookie: a=1; b=2\r\n\r\n"
        );
        // The server side of this crate accepts it and derives the same accept key.
        match crate::protocol::handshake::parse_request(req.as_bytes(), 8192) {
            crate::protocol::handshake::RequestHead::Upgrade { request, consumed } => {
                assert_eq!(consumed, req.len());
                assert_eq!(request.protocols, vec!["chat", "superchat"]);
                assert_eq!(derive_accept_key(request.key.as_bytes()), ACCEPT);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trip_with_this_crates_server_side() {
        use crate::protocol::{client_encoder, decoder, encoder, handshake as server};
        let options = HandshakeOptions { protocols: vec!["v2".into(), "v1".into()], ..Default::default() };
        let (mut client, request) = ClientHandshake::new("127.0.0.1:9001", "/ws", &options).unwrap();
        let server::RequestHead::Upgrade { request, .. } = server::parse_request(&request, 8192) else {
            panic!("server refused the request");
        };
        let supported = ["v1".to_owned()];
        let chosen = server::choose_protocol(&supported, &request.protocols);
        let mut wire = server::accept_response(&request.key, chosen);
        wire.extend_from_slice(&encoder::message_frame(encoder::MessageKind::Text, b"welcome"));
        let accepted = client.feed(&wire).unwrap().unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("v1"));
        let limits = decoder::DecoderLimits { max_message_size: 1024, max_frame_size: 1024 };
        let mut out = Vec::new();
        decoder::Decoder::client().feed(&accepted.early_data, &limits, &mut out).unwrap();
        assert_eq!(out, vec![decoder::Incoming::Message { is_text: true, data: b"welcome".to_vec() }]);
        let mut out = Vec::new();
        let frame = client_encoder::message_frame(encoder::MessageKind::Binary, b"hi");
        decoder::Decoder::default().feed(&frame, &limits, &mut out).unwrap();
        assert_eq!(out, vec![decoder::Incoming::Message { is_text: false, data: b"hi".to_vec() }]);
    }

    #[test]
    fn minimal_request_random_keys_and_host_override() {
        let (a, req) = ClientHandshake::new("[::1]:9001", "/", &HandshakeOptions::default()).unwrap();
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("GET / HTTP/1.1\r\nHost: [::1]:9001\r\n"));
        assert!(!req.contains("Origin") && !req.contains("Protocol") && !req.contains("Extensions"));
        let (b, _) = ClientHandshake::new("h", "/", &HandshakeOptions::default()).unwrap();
        assert_ne!(a.key(), b.key());
        assert_eq!(data_encoding::BASE64.decode(a.key().as_bytes()).unwrap().len(), 16);
        let options = HandshakeOptions { headers: vec![("host".into(), "virtual.example".into())], ..Default::default() };
        let (_, req) = ClientHandshake::new("10.0.0.1:8080", "/", &options).unwrap();
        let req = String::from_utf8(req).unwrap();
        assert!(req.contains("\r\nHost: virtual.example\r\n") && !req.contains("10.0.0.1"));
    }

    #[test]
    fn header_injection_and_bad_options_are_refused() {
        let with_header = |n: &str, v: &str| HandshakeOptions { headers: vec![(n.into(), v.into())], ..Default::default() };
        let build = |o: &HandshakeOptions| ClientHandshake::new("h", "/", o).map(|_| ()).unwrap_err().0;
        assert!(build(&with_header("X-A", "1\r\nX-Evil: 2")).contains("CR, LF"));
        assert!(build(&with_header("X-A", "1\nX")).contains("CR, LF"));
        assert!(build(&with_header("X-A", "1\0")).contains("CR, LF"));
        assert!(build(&with_header("X-A\r\nX-Evil", "1")).contains("token"));
        assert!(build(&with_header("X A", "1")).contains("token"));
        assert!(build(&with_header("", "1")).contains("token"));
        assert!(build(&with_header("sec-websocket-key", "x")).contains("set by the handshake"));
        assert!(build(&with_header("Connection", "close")).contains("set by the handshake"));
        assert!(build(&HandshakeOptions { origin: Some("o\r\n".into()), ..Default::default() }).contains("Origin"));
        assert!(build(&HandshakeOptions { origin: Some("a".into()), ..with_header("origin", "b") }).contains("both"));
        assert!(build(&HandshakeOptions { extensions: Some("x\ry".into()), ..Default::default() }).contains("Extensions"));
        assert!(build(&HandshakeOptions { protocols: vec!["a b".into()], ..Default::default() }).contains("token"));
        assert!(build(&HandshakeOptions { protocols: vec!["a".into(), "a".into()], ..Default::default() }).contains("twice"));
        let resource = ClientHandshake::new("h", "/a b", &HandshakeOptions::default()).unwrap_err().0;
        assert!(resource.contains("request target"));
        assert!(ClientHandshake::new("h\r\nX: y", "/", &HandshakeOptions::default()).is_err());
        // Tabs and non-ASCII (obs-text) are legal in values.
        assert!(ClientHandshake::new("h", "/", &with_header("X-A", "a\tb é")).is_ok());
    }

    #[test]
    fn accepts_a_valid_response_fed_byte_by_byte_and_keeps_early_frames() {
        let options = HandshakeOptions {
            protocols: vec!["chat".into(), "superchat".into()],
            extensions: Some("permessage-deflate".into()),
            ..Default::default()
        };
        let (mut hs, _) = handshake(&options);
        let mut wire = response("Sec-WebSocket-Protocol: superchat\r\nSec-WebSocket-Extensions: permessage-deflate\r\nSet-Cookie: s=1\r\n")
            .into_bytes();
        let head_len = wire.len();
        wire.extend_from_slice(&[0x81, 0x02, b'h', b'i', 0x89, 0x00]);
        let mut result = None;
        for (i, byte) in wire.iter().enumerate() {
            match hs.feed(std::slice::from_ref(byte)).unwrap() {
                None => assert!(i < head_len - 1, "head complete at byte {i}"),
                Some(accepted) => {
                    assert_eq!(i, head_len - 1);
                    result = Some(accepted);
                    break;
                }
            }
        }
        let accepted = result.expect("accepted");
        assert_eq!(accepted.protocol.as_deref(), Some("superchat"));
        assert_eq!(accepted.extensions, vec!["permessage-deflate"]);
        assert_eq!(accepted.header("set-cookie"), Some("s=1"));
        assert!(accepted.early_data.is_empty()); // fed byte by byte: nothing beyond the head yet

        // Fed at once: the frames after the head come back.
        let accepted = feed_all(&options, &wire).unwrap().unwrap();
        assert_eq!(accepted.early_data, &wire[head_len..]);
        // Case-insensitive values, token lists.
        let wire = format!("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: {ACCEPT}\r\n\r\n");
        assert!(feed_all(&HandshakeOptions::default(), wire.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn invalid_101_responses() {
        let none = HandshakeOptions::default();
        let offered = HandshakeOptions { protocols: vec!["chat".into()], ..Default::default() };
        let wrong_key = response("").replace(ACCEPT, "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(invalid(&none, &wrong_key).contains("does not match"));
        assert!(invalid(&none, &response("").replace("Upgrade: websocket\r\n", "")).contains("Upgrade"));
        assert!(invalid(&none, &response("").replace("Upgrade: websocket", "Upgrade: h2c")).contains("Upgrade"));
        assert!(invalid(&none, &response("").replace("Connection: Upgrade", "Connection: close")).contains("Connection"));
        assert!(invalid(&none, &response("").replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "")).contains("missing"));
        assert!(invalid(&none, &response(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"))).contains("more than one"));
        assert!(invalid(&none, &response("").replace("HTTP/1.1", "HTTP/1.0")).contains("HTTP/1.1"));
        assert!(invalid(&none, &response("Sec-WebSocket-Protocol: chat\r\n")).contains("none was offered"));
        assert!(invalid(&offered, &response("Sec-WebSocket-Protocol: other\r\n")).contains("not offered"));
        assert!(invalid(&offered, &response("Sec-WebSocket-Protocol: chat, other\r\n")).contains("more than one"));
        assert!(invalid(&none, &response("Sec-WebSocket-Extensions: permessage-deflate\r\n")).contains("none were offered"));
        assert!(invalid(&none, "garbage\r\n\r\n").contains("malformed"));
        // No subprotocol selected: allowed by default (RFC 6455, browsers), refused on request.
        assert_eq!(feed_all(&offered, response("").as_bytes()).unwrap().unwrap().protocol, None);
        let strict = HandshakeOptions { require_protocol: true, ..offered.clone() };
        assert!(invalid(&strict, &response("")).contains("none of the offered"));
    }

    #[test]
    fn non_101_statuses_carry_status_reason_and_headers() {
        let none = HandshakeOptions::default();
        for (wire, status, reason) in [
            ("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n", 401, "Unauthorized"),
            ("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\r\nbody", 503, "Service Unavailable"),
            ("HTTP/1.0 302 Found\r\nLocation: wss://elsewhere/\r\n\r\n", 302, "Found"),
            ("HTTP/1.1 200 OK\r\n\r\n<html>", 200, "OK"),
            ("HTTP/1.1 429 \r\n\r\n", 429, ""),
        ] {
            match feed_all(&none, wire.as_bytes()) {
                Err(HandshakeError::Status { status: s, reason: r, headers }) => {
                    assert_eq!((s, r.as_str()), (status, reason));
                    if status == 302 {
                        assert_eq!(header(&headers, "location"), Some("wss://elsewhere/"));
                    }
                }
                other => panic!("{wire}: {other:?}"),
            }
        }
    }

    #[test]
    fn partial_and_oversized_heads() {
        let none = HandshakeOptions::default();
        let (mut hs, _) = handshake(&none);
        assert_eq!(hs.feed(b"HTTP/1.1 101 Switching"), Ok(None));
        assert_eq!(hs.feed(b" Protocols\r\nUpgrade: websocket\r\n"), Ok(None));
        let small = HandshakeOptions { max_response_bytes: 64, ..Default::default() };
        let (mut hs, _) = handshake(&small);
        let long = format!("HTTP/1.1 101 OK\r\nX: {}\r\n", "a".repeat(100));
        assert!(matches!(hs.feed(long.as_bytes()), Err(HandshakeError::Invalid(m)) if m.contains("too large")));
        let (mut hs, _) = handshake(&small);
        let mut result = Ok(None);
        for b in long.as_bytes() {
            result = hs.feed(std::slice::from_ref(b));
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(HandshakeError::Invalid(m)) if m.contains("too large")));
        // Default cap: 16 KiB.
        let (mut hs, _) = handshake(&none);
        let huge = format!("HTTP/1.1 101 OK\r\nX: {}\r\n\r\n", "a".repeat(17 * 1024));
        assert!(matches!(hs.feed(huge.as_bytes()), Err(HandshakeError::Invalid(m)) if m.contains("too large")));
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(invalid(&none, &response(&many)).contains("too many"));
    }
}
