//! `Sec-WebSocket-Extensions` parsing and permessage-deflate negotiation (RFC 7692 section 7.1),
//! for both roles: a server answering offers and a client checking the server's response.
//!
//! The header grammar is RFC 6455 section 9.1 with RFC 7230 tokens and quoted strings:
//!
//! ```text
//! extension-list = 1#extension
//! extension      = token *( OWS ";" OWS param )
//! param          = token [ OWS "=" OWS ( token / quoted-string ) ]   ; unquoted value must be a token
//! ```
//!
//! A header that does not follow it is an error (the server answers 400). Offers of unknown
//! extensions are skipped; an offer of permessage-deflate with an unknown, repeated or invalid
//! parameter is declined and the next offer is tried.

use std::fmt;

use super::deflate::{CompressorSettings, InflaterSettings};
use super::handshake::UpgradeRequest;

/// Registered name of the extension.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// One element of an extension list: an offer (request) or an accepted extension (response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    pub name: String,
    /// Parameters in order; the value is unquoted (`None` for a parameter without `=`).
    pub params: Vec<(String, Option<String>)>,
}

/// A `Sec-WebSocket-Extensions` value that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// Byte offset of the problem in the header value.
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed Sec-WebSocket-Extensions header at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for HeaderError {}

/// Parses one or more `Sec-WebSocket-Extensions` header values (several header lines are one
/// comma-separated list, RFC 7230 section 3.2.2). Empty list elements are ignored.
pub fn parse_extensions<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<ExtensionOffer>, HeaderError> {
    let mut out = Vec::new();
    for value in values {
        Parser { s: value.as_bytes(), pos: 0 }.list(&mut out)?;
    }
    Ok(out)
}

/// All extension offers of an upgrade request (every `Sec-WebSocket-Extensions` header).
pub fn request_offers(request: &UpgradeRequest) -> Result<Vec<ExtensionOffer>, HeaderError> {
    parse_extensions(
        request
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .map(|(_, value)| value.as_str()),
    )
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn error(&self, reason: &'static str) -> HeaderError {
        HeaderError { offset: self.pos, reason }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self, what: &'static str) -> Result<String, HeaderError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error(what));
        }
        Ok(String::from_utf8(self.s[start..self.pos].to_vec()).expect("tchars are ASCII"))
    }

    /// RFC 7230 quoted-string, returning the unescaped content.
    fn quoted(&mut self) -> Result<String, HeaderError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(HeaderError { offset: start, reason: "unterminated quoted string" }),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) if c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) || c >= 0x80 => {
                            value.push(c);
                            self.pos += 1;
                        }
                        _ => return Err(self.error("invalid escape in quoted string")),
                    }
                }
                Some(c) if c == b'\t' || c == b' ' || c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80 => {
                    value.push(c);
                    self.pos += 1;
                }
                Some(_) => return Err(self.error("control character in quoted string")),
            }
        }
        // RFC 6455 section 9.1: the unescaped value must itself be a token.
        match String::from_utf8(value) {
            Ok(v) if is_token(&v) => Ok(v),
            _ => Err(HeaderError { offset: start, reason: "quoted parameter value is not a token" }),
        }
    }

    fn list(&mut self, out: &mut Vec<ExtensionOffer>) -> Result<(), HeaderError> {
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {
                    self.pos += 1; // empty list element
                    continue;
                }
                Some(_) => {}
            }
            let name = self.token("expected an extension name")?;
            let mut params = Vec::new();
            loop {
                self.skip_ows();
                if self.peek() != Some(b';') {
                    break;
                }
                self.pos += 1;
                self.skip_ows();
                let param = self.token("expected a parameter name")?;
                self.skip_ows();
                let value = if self.peek() == Some(b'=') {
                    self.pos += 1;
                    self.skip_ows();
                    if self.peek() == Some(b'"') {
                        Some(self.quoted()?)
                    } else {
                        Some(self.token("expected a parameter value")?)
                    }
                } else {
                    None
                };
                params.push((param, value));
            }
            out.push(ExtensionOffer { name, params });
            match self.peek() {
                None => return Ok(()),
                Some(b',') => self.pos += 1,
                Some(_) => return Err(self.error("unexpected character")),
            }
        }
    }
}

/// Which end of the connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// The `compression` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionMode {
    /// permessage-deflate is neither offered nor accepted.
    #[default]
    Off,
    /// No context takeover in either direction: one compressor and one inflater per loop serve
    /// every connection (reset between messages), so a connection costs no zlib memory.
    Shared,
    /// Context takeover (unless the peer asked for none): better ratios, but each connection
    /// has its own compressor (and inflater), created when first needed.
    Dedicated,
}

impl CompressionMode {
    /// `"off"`, `"shared"` or `"dedicated"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(CompressionMode::Off),
            "shared" => Some(CompressionMode::Shared),
            "dedicated" => Some(CompressionMode::Dedicated),
            _ => None,
        }
    }
}

/// Local permessage-deflate settings (what the config's `compression*` keys map to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    pub mode: CompressionMode,
    /// `compression_window_bits`: LZ77 window of our compressor, 9-15 (the negotiated limit
    /// may lower it).
    pub window_bits: u8,
    /// `compression_mem_level`: zlib memLevel of our compressor, 1-9.
    pub mem_level: u8,
    /// zlib compression level, 0-9.
    pub level: u8,
    /// `compression_threshold`: messages shorter than this (bytes) are sent uncompressed.
    pub threshold: usize,
}

/// Default for `compression_threshold`: ws's default (1024 bytes). uWebSockets has no
/// threshold and compresses everything; below ~1 KiB deflate rarely saves more than a few
/// bytes while the per-message sync flush and, for shared contexts, the reset still cost CPU.
pub const DEFAULT_THRESHOLD: usize = 1024;

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig { mode: CompressionMode::Off, window_bits: 15, mem_level: 8, level: 6, threshold: DEFAULT_THRESHOLD }
    }
}

impl DeflateConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(9..=15).contains(&self.window_bits) {
            return Err(format!("compression_window_bits must be 9-15, not {}", self.window_bits));
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err(format!("compression_mem_level must be 1-9, not {}", self.mem_level));
        }
        if self.level > 9 {
            return Err(format!("compression level must be 0-9, not {}", self.level));
        }
        Ok(())
    }
}

/// What was agreed for one connection: the parameters of the accepted response, plus which
/// side we are. `Copy` and small, so a connection can keep it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    pub role: Role,
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// Limit on the server's compressor window (`None`: 15).
    pub server_max_window_bits: Option<u8>,
    /// Limit on the client's compressor window (`None`: 15).
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value of the response (what the server sends back).
    pub fn response_header(&self) -> String {
        let mut out = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            out.push_str("; ");
            out.push_str(SERVER_NO_CONTEXT_TAKEOVER);
        }
        if self.client_no_context_takeover {
            out.push_str("; ");
            out.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
        }
        if let Some(bits) = self.server_max_window_bits {
            out.push_str(&format!("; {SERVER_MAX_WINDOW_BITS}={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            out.push_str(&format!("; {CLIENT_MAX_WINDOW_BITS}={bits}"));
        }
        out
    }

    /// Text for the host's OPEN event: the negotiated extension as it appears on the wire.
    pub fn describe(&self) -> String {
        self.response_header()
    }

    /// Whether our compressor starts afresh for every message.
    pub fn local_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.server_no_context_takeover,
            Role::Client => self.client_no_context_takeover,
        }
    }

    /// Whether the peer's compressor starts afresh for every message (so our inflater may be
    /// reset, or shared, between its messages).
    pub fn peer_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.client_no_context_takeover,
            Role::Client => self.server_no_context_takeover,
        }
    }

    /// The window our compressor may use at most.
    pub fn local_max_window_bits(&self) -> u8 {
        match self.role {
            Role::Server => self.server_max_window_bits,
            Role::Client => self.client_max_window_bits,
        }
        .unwrap_or(15)
    }

    /// False when the negotiated window for our side is 8 bits, which zlib cannot produce for
    /// raw deflate: every message of the connection then goes out uncompressed (RSV1 is per
    /// message, so that is valid). Inflating is unaffected (always with a 15-bit window).
    pub fn compresses_outgoing(&self) -> bool {
        self.local_max_window_bits() >= 9
    }

    /// Settings for this connection's compressor; `None` when nothing may be compressed.
    pub fn compressor_settings(&self, config: &DeflateConfig) -> Option<CompressorSettings> {
        if !self.compresses_outgoing() {
            return None;
        }
        Some(CompressorSettings {
            window_bits: config.window_bits.clamp(9, 15).min(self.local_max_window_bits()),
            mem_level: config.mem_level,
            level: config.level,
            threshold: config.threshold,
            no_context_takeover: self.local_no_context_takeover(),
        })
    }

    /// Settings for this connection's inflater.
    pub fn inflater_settings(&self) -> InflaterSettings {
        InflaterSettings { no_context_takeover: self.peer_no_context_takeover() }
    }
}

/// permessage-deflate parameters as written in one offer or response.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Written {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (only valid in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// A window size: a decimal 8-15 without leading zeros (RFC 7692 section 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    match value {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => value.parse().ok(),
        _ => None,
    }
}

fn parse_params(params: &[(String, Option<String>)], is_offer: bool) -> Result<Written, String> {
    let mut w = Written::default();
    let mut seen = [false; 4];
    for (name, value) in params {
        let index = [SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER, SERVER_MAX_WINDOW_BITS, CLIENT_MAX_WINDOW_BITS]
            .iter()
            .position(|known| name.eq_ignore_ascii_case(known))
            .ok_or_else(|| format!("unknown parameter {name}"))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(format!("repeated parameter {name}"));
        }
        let value = value.as_deref();
        let invalid = || format!("invalid value for {name}");
        match index {
            0 | 1 => {
                if value.is_some() {
                    return Err(invalid());
                }
                if index == 0 {
                    w.server_no_context_takeover = true;
                } else {
                    w.client_no_context_takeover = true;
                }
            }
            2 => w.server_max_window_bits = Some(value.and_then(window_bits).ok_or_else(invalid)?),
            _ => {
                w.client_max_window_bits = Some(match value {
                    None if is_offer => None,
                    None => return Err(format!("{name} without a value in a response")),
                    Some(v) => Some(window_bits(v).ok_or_else(invalid)?),
                })
            }
        }
    }
    Ok(w)
}

/// Server side: accepts the first acceptable permessage-deflate offer (the client's order is
/// its preference), or `None` (no compression) when there is none or compression is off.
///
/// - `shared`: the response always carries both `*_no_context_takeover` parameters.
/// - `dedicated`: context takeover, except for a direction the client asked to reset
///   (`server_no_context_takeover` is honoured; `client_no_context_takeover` is echoed so that
///   our inflater may reset too).
/// - `server_max_window_bits=N` in the offer is answered with `min(N, window_bits)`; without it
///   the response names our window when it is below 15 (RFC 7692 7.1.2.1 allows that), so the
///   client may allocate less. N=8 is accepted, but then the connection's messages go out
///   uncompressed ([`DeflateParams::compresses_outgoing`]).
/// - `client_max_window_bits` is never constrained in the response: we inflate with a 15-bit
///   window, which accepts a stream made with any smaller one.
pub fn negotiate_server(offers: &[ExtensionOffer], config: &DeflateConfig) -> Option<DeflateParams> {
    if config.mode == CompressionMode::Off {
        return None;
    }
    let local_bits = config.window_bits.clamp(9, 15);
    offers
        .iter()
        .filter(|offer| offer.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .find_map(|offer| {
            let w = parse_params(&offer.params, true).ok()?;
            let shared = config.mode == CompressionMode::Shared;
            Some(DeflateParams {
                role: Role::Server,
                server_no_context_takeover: shared || w.server_no_context_takeover,
                client_no_context_takeover: shared || w.client_no_context_takeover,
                server_max_window_bits: match w.server_max_window_bits {
                    Some(bits) => Some(bits.min(local_bits)),
                    None => (local_bits < 15).then_some(local_bits),
                },
                client_max_window_bits: None,
            })
        })
}

/// Client side: the `Sec-WebSocket-Extensions` value to send (empty when compression is off).
/// `shared` asks for no context takeover both ways; a window below 15 is announced as
/// `client_max_window_bits=N` (a promise the client keeps), otherwise the bare parameter tells
/// the server it may limit our window.
pub fn client_offer(config: &DeflateConfig) -> String {
    if config.mode == CompressionMode::Off {
        return String::new();
    }
    let mut out = String::from(PERMESSAGE_DEFLATE);
    if config.mode == CompressionMode::Shared {
        out.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    let bits = config.window_bits.clamp(9, 15);
    if bits < 15 {
        out.push_str(&format!("; {CLIENT_MAX_WINDOW_BITS}={bits}"));
    } else {
        out.push_str("; ");
        out.push_str(CLIENT_MAX_WINDOW_BITS);
    }
    out
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` response values against what we
/// offered (`offer` as returned by [`client_offer`]). `Ok(None)`: the server declined.
/// An `Err` means the connection must be failed (RFC 6455 4.1): an extension we did not offer,
/// permessage-deflate twice, an unknown/repeated/invalid parameter, or parameters that break
/// the offer (RFC 7692 7.1).
pub fn accept_client_response(header_values: &[&str], offer: &str) -> Result<Option<DeflateParams>, String> {
    let response = parse_extensions(header_values.iter().copied()).map_err(|e| e.to_string())?;
    let offered = parse_extensions([offer]).map_err(|e| format!("our own offer: {e}"))?;
    let offered: Vec<Written> = offered
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .map(|o| parse_params(&o.params, true))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("our own offer: {e}"))?;
    let mut accepted = None;
    for item in &response {
        if !item.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) || offered.is_empty() {
            return Err(format!("the server accepted an extension that was not offered: {}", item.name));
        }
        if accepted.is_some() {
            return Err("the server accepted permessage-deflate twice".into());
        }
        let got = parse_params(&item.params, false)?;
        // With several offers the response must fit at least one of them.
        let mut last_error = String::new();
        let fit = offered.iter().find_map(|ours| match check_response(ours, &got) {
            Ok(params) => Some(params),
            Err(e) => {
                last_error = e;
                None
            }
        });
        accepted = Some(fit.ok_or(last_error)?);
    }
    Ok(accepted)
}

fn check_response(ours: &Written, got: &Written) -> Result<DeflateParams, String> {
    if ours.server_no_context_takeover && !got.server_no_context_takeover {
        return Err("the server ignored server_no_context_takeover".into());
    }
    if let Some(limit) = ours.server_max_window_bits {
        match got.server_max_window_bits {
            None => return Err("the server ignored server_max_window_bits".into()),
            Some(bits) if bits > limit => return Err(format!("server_max_window_bits={bits} exceeds the offered {limit}")),
            Some(_) => {}
        }
    }
    let client_max_window_bits = match (ours.client_max_window_bits, got.client_max_window_bits) {
        (None, Some(_)) => return Err("client_max_window_bits was not offered".into()),
        (Some(Some(limit)), Some(Some(bits))) if bits > limit => {
            return Err(format!("client_max_window_bits={bits} exceeds the offered {limit}"))
        }
        (_, Some(bits)) => bits,
        // Our own value in the offer binds us even when the server does not repeat it.
        (Some(ours), None) => ours,
        (None, None) => None,
    };
    Ok(DeflateParams {
        role: Role::Client,
        server_no_context_takeover: got.server_no_context_takeover,
        client_no_context_takeover: ours.client_no_context_takeover || got.client_no_context_takeover,
        server_max_window_bits: got.server_max_window_bits,
        client_max_window_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(name: &str, params: &[(&str, Option<&str>)]) -> ExtensionOffer {
        ExtensionOffer {
            name: name.into(),
            params: params.iter().map(|(n, v)| (n.to_string(), v.map(str::to_owned))).collect(),
        }
    }

    fn config(mode: CompressionMode) -> DeflateConfig {
        DeflateConfig { mode, ..DeflateConfig::default() }
    }

    fn server(header: &str, mode: CompressionMode) -> Option<String> {
        let offers = parse_extensions([header]).expect("well-formed");
        negotiate_server(&offers, &config(mode)).map(|p| p.response_header())
    }

    #[test]
    fn parses_lists_params_and_quoted_strings() {
        let parsed = parse_extensions([
            "permessage-deflate; client_max_window_bits ;server_max_window_bits = \"10\", x-webkit-deflate-frame",
            " , foo;bar=\"b\\az\",,",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                offer(PERMESSAGE_DEFLATE, &[("client_max_window_bits", None), ("server_max_window_bits", Some("10"))]),
                offer("x-webkit-deflate-frame", &[]),
                offer("foo", &[("bar", Some("baz"))]),
            ]
        );
        assert_eq!(parse_extensions([""]).unwrap(), vec![]);
        assert_eq!(parse_extensions(Vec::<&str>::new()).unwrap(), vec![]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "permessage-deflate;",                 // missing parameter
            "permessage-deflate; =10",             // missing parameter name
            "permessage-deflate; a=",              // missing value
            "permessage-deflate; a=\"10",          // unterminated quoted string
            "permessage-deflate; a=\"1 0\"",       // quoted value is not a token
            "permessage-deflate; a=\"\"",          // empty quoted value
            "permessage-deflate; a=b c",           // junk after a value
            "permessage deflate",                  // space inside a name
            "permessage-deflate; a=1;; b",         // empty parameter
            ";a",                                  // no extension name
            "permessage-deflate; a=\"\\\u{1}\"",   // escaped control character
            "permessage-deflate, [x]",             // separator as a name
            "permessage-deflate; client_max_window_bits=1/0",
        ] {
            let err = parse_extensions([bad]).expect_err(bad);
            assert!(err.offset <= bad.len(), "{bad}: {err}");
        }
        // An error in any of several header lines fails the whole request.
        assert!(parse_extensions(["permessage-deflate", "x;"]).is_err());
    }

    #[test]
    fn rfc7692_section_7_examples() {
        use CompressionMode::Dedicated;
        // 7.1.3 (examples): the simplest offer.
        assert_eq!(server("permessage-deflate", Dedicated).as_deref(), Some("permessage-deflate"));
        // The bare client_max_window_bits is not echoed: we inflate with 15 bits anyway.
        assert_eq!(server("permessage-deflate; client_max_window_bits", Dedicated).as_deref(), Some("permessage-deflate"));
        // Two offers, the first asking for a 10-bit server window: we can do that.
        let two = "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits";
        assert_eq!(server(two, Dedicated).as_deref(), Some("permessage-deflate; server_max_window_bits=10"));
        // 7.1.1.1 / 7.1.1.2 in an offer.
        assert_eq!(
            server("permessage-deflate; server_no_context_takeover; client_no_context_takeover", Dedicated).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn every_parameter_with_and_without_values() {
        use CompressionMode::{Dedicated, Shared};
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        // Flags take no value; a value declines the offer.
        assert_eq!(server("permessage-deflate; server_no_context_takeover=1", Dedicated), None);
        assert_eq!(server("permessage-deflate; client_no_context_takeover=\"x\"", Dedicated), None);
        assert_eq!(server("permessage-deflate; server_no_context_takeover", Shared).as_deref(), Some(both));
        // server_max_window_bits needs a value 8-15 without leading zeros.
        assert_eq!(server("permessage-deflate; server_max_window_bits", Dedicated), None);
        for bad in ["7", "16", "08", "+9", "0x9", "ten", "150"] {
            assert_eq!(server(&format!("permessage-deflate; server_max_window_bits={bad}"), Dedicated), None, "{bad}");
            assert_eq!(server(&format!("permessage-deflate; client_max_window_bits={bad}"), Dedicated), None, "{bad}");
        }
        for bits in 8..=15 {
            let answer = server(&format!("permessage-deflate; server_max_window_bits=\"{bits}\""), Dedicated).unwrap();
            assert_eq!(answer, format!("permessage-deflate; server_max_window_bits={bits}"));
            // client_max_window_bits with a value is valid, and not constrained further.
            assert_eq!(server(&format!("permessage-deflate; client_max_window_bits={bits}"), Dedicated).as_deref(), Some("permessage-deflate"));
        }
        // Shared mode always answers both no-takeover parameters, whatever was offered.
        assert_eq!(server("permessage-deflate", Shared).as_deref(), Some(both));
        assert_eq!(
            server("permessage-deflate; server_max_window_bits=12; client_max_window_bits", Shared).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12")
        );
        // Names are matched case-insensitively.
        assert_eq!(server("PerMessage-Deflate; Server_No_Context_Takeover", Dedicated).as_deref(), Some("permessage-deflate; server_no_context_takeover"));
    }

    #[test]
    fn repeated_unknown_or_invalid_params_decline_that_offer_only() {
        use CompressionMode::Dedicated;
        assert_eq!(server("permessage-deflate; server_no_context_takeover; server_no_context_takeover", Dedicated), None);
        assert_eq!(server("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", Dedicated), None);
        assert_eq!(server("permessage-deflate; client_max_window_bits; client_max_window_bits=9", Dedicated), None);
        assert_eq!(server("permessage-deflate; foo", Dedicated), None);
        // The next offer is tried.
        assert_eq!(
            server("permessage-deflate; foo, permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=11", Dedicated).as_deref(),
            Some("permessage-deflate; server_max_window_bits=11")
        );
        // Unknown extensions are skipped; compression off accepts nothing.
        assert_eq!(server("x-webkit-deflate-frame, permessage-deflate", Dedicated).as_deref(), Some("permessage-deflate"));
        assert_eq!(server("x-webkit-deflate-frame", Dedicated), None);
        assert_eq!(server("permessage-deflate", CompressionMode::Off), None);
    }

    #[test]
    fn window_bits_from_config_and_the_8_bit_case() {
        let cfg = DeflateConfig { window_bits: 10, ..config(CompressionMode::Dedicated) };
        let negotiate = |h: &str| negotiate_server(&parse_extensions([h]).unwrap(), &cfg).unwrap();
        // Our smaller window is announced even unasked, and never raised above the request.
        let p = negotiate("permessage-deflate");
        assert_eq!(p.response_header(), "permessage-deflate; server_max_window_bits=10");
        assert_eq!(p.compressor_settings(&cfg).unwrap().window_bits, 10);
        let p = negotiate("permessage-deflate; server_max_window_bits=12");
        assert_eq!(p.server_max_window_bits, Some(10));
        let p = negotiate("permessage-deflate; server_max_window_bits=9");
        assert_eq!(p.compressor_settings(&cfg).unwrap().window_bits, 9);
        assert!(!p.compressor_settings(&cfg).unwrap().no_context_takeover);
        // 8 bits: accepted, but this connection's messages are sent uncompressed.
        let p = negotiate("permessage-deflate; server_max_window_bits=8");
        assert_eq!(p.describe(), "permessage-deflate; server_max_window_bits=8");
        assert!(!p.compresses_outgoing());
        assert_eq!(p.compressor_settings(&cfg), None);
        assert!(!p.inflater_settings().no_context_takeover);
        // A client limited to 8 bits is no problem: our inflater has 15.
        let p = negotiate("permessage-deflate; client_max_window_bits=8; client_no_context_takeover");
        assert!(p.compresses_outgoing());
        assert!(p.inflater_settings().no_context_takeover);
    }

    #[test]
    fn client_offer_and_response_validation() {
        let dedicated = config(CompressionMode::Dedicated);
        let offer = client_offer(&dedicated);
        assert_eq!(offer, "permessage-deflate; client_max_window_bits");
        assert_eq!(client_offer(&config(CompressionMode::Off)), "");
        let shared = client_offer(&config(CompressionMode::Shared));
        assert_eq!(shared, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits");
        let small = client_offer(&DeflateConfig { window_bits: 11, ..dedicated.clone() });
        assert_eq!(small, "permessage-deflate; client_max_window_bits=11");

        // Declined, plain accept, and the parameters a server may add on its own.
        assert_eq!(accept_client_response(&[], &offer), Ok(None));
        let p = accept_client_response(&["permessage-deflate"], &offer).unwrap().unwrap();
        assert_eq!((p.role, p.local_no_context_takeover(), p.local_max_window_bits()), (Role::Client, false, 15));
        let p = accept_client_response(&["permessage-deflate; client_no_context_takeover; client_max_window_bits=9; server_max_window_bits=10"], &offer)
            .unwrap()
            .unwrap();
        assert!(p.local_no_context_takeover() && !p.peer_no_context_takeover());
        assert_eq!(p.compressor_settings(&dedicated).unwrap().window_bits, 9);
        let p = accept_client_response(&["permessage-deflate; client_max_window_bits=8"], &offer).unwrap().unwrap();
        assert!(!p.compresses_outgoing());
        // Our own hint binds us when the server does not repeat it.
        let p = accept_client_response(&["permessage-deflate"], &small).unwrap().unwrap();
        assert_eq!(p.local_max_window_bits(), 11);
        // Shared: both flags must come back for the server's part.
        let p = accept_client_response(&["permessage-deflate; server_no_context_takeover"], &shared).unwrap().unwrap();
        assert!(p.local_no_context_takeover() && p.peer_no_context_takeover());

        for (response, why) in [
            ("x-foo", "extension not offered"),
            ("permessage-deflate, permessage-deflate", "accepted twice"),
            ("permessage-deflate; foo", "unknown parameter"),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", "repeated"),
            ("permessage-deflate; client_max_window_bits", "no value in a response"),
            ("permessage-deflate; server_max_window_bits=16", "invalid value"),
            ("permessage-deflate; server_max_window_bits", "missing value"),
            ("permessage-deflate;", "malformed"),
        ] {
            assert!(accept_client_response(&[response], &offer).is_err(), "{why}");
        }
        assert!(accept_client_response(&["permessage-deflate"], &shared).is_err(), "server_no_context_takeover ignored");
        assert!(accept_client_response(&["permessage-deflate; client_max_window_bits=12"], &small).is_err(), "above our limit");
        let no_cmwb = "permessage-deflate; server_max_window_bits=10";
        assert!(accept_client_response(&["permessage-deflate; client_max_window_bits=12"], no_cmwb).is_err(), "not offered");
        assert!(accept_client_response(&["permessage-deflate"], no_cmwb).is_err(), "server_max_window_bits ignored");
        assert!(accept_client_response(&["permessage-deflate; server_max_window_bits=11"], no_cmwb).is_err(), "window too big");
        assert!(accept_client_response(&["permessage-deflate; server_max_window_bits=9"], no_cmwb).unwrap().is_some());
        assert!(accept_client_response(&["permessage-deflate"], "").is_err(), "nothing offered");
    }

    #[test]
    fn request_offers_reads_every_header_line() {
        let request = UpgradeRequest {
            path: "/".into(),
            headers: vec![
                ("Sec-WebSocket-Extensions".into(), "x-a".into()),
                ("Host".into(), "h".into()),
                ("sec-websocket-extensions".into(), "permessage-deflate; client_max_window_bits".into()),
            ],
            key: String::new(),
            protocols: vec![],
        };
        let offers = request_offers(&request).unwrap();
        assert_eq!(offers.len(), 2);
        assert!(negotiate_server(&offers, &config(CompressionMode::Dedicated)).is_some());
    }
}
