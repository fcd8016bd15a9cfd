//! `ws://` and `wss://` URLs (RFC 6455 section 3 on top of RFC 3986), parsed by a small
//! strict parser rather than the WHATWG `url` crate: only two schemes matter, the crate's
//! IDNA tables would be most of the client's code size, and its browser leniency (backslashes,
//! `ws:host`, numeric hosts like `0x7f.1`) is not wanted for a client that dials out.
//!
//! Rules:
//! - scheme `ws` (default port 80) or `wss` (443), case-insensitive; anything else is refused;
//! - host: a DNS name (ASCII letters, digits, `-`, `_`, `.`; lowercased), a dotted-quad IPv4
//!   address, or an IPv6 address in brackets (no zone id). Internationalized names must be
//!   given in punycode (`xn--...`). A name whose last label is numeric must be a valid IPv4
//!   address (`127.1` is refused: resolvers would read it as 127.0.0.1);
//! - port 1-65535 (`host:` alone means the default port);
//! - path and query kept as written (default path `/`); spaces, non-ASCII and the other
//!   characters RFC 3986 does not allow there are percent-encoded, control characters refused;
//! - a fragment (`#`) is refused (RFC 6455 section 3: it must be escaped as `%23`);
//! - userinfo (`user:password@`) becomes HTTP Basic credentials ([`WsUrl::basic_auth`]), as in
//!   `ws` (Node) and Python's `websockets`; both parts are percent-decoded and must be UTF-8.
//!   `Debug` and [`WsUrl::redacted`] hide the password.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URL was refused; the text names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid WebSocket URL: {}", self.0)
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for crate::Error {
    fn from(e: UrlError) -> Self {
        crate::Error::InvalidArgument(e.to_string())
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, UrlError> {
    Err(UrlError(msg.into()))
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercased (to be resolved).
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host {
    /// The IP address when the host is a literal (no name resolution needed).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::V4(a) => Some((*a).into()),
            Host::V6(a) => Some((*a).into()),
        }
    }
}

impl fmt::Display for Host {
    /// As in a URL or `Host` header: IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `true` for `wss://`.
    pub secure: bool,
    pub host: Host,
    /// The port to dial (the scheme's default when the URL gives none).
    pub port: u16,
    /// Path and query, as sent in the request line: starts with `/`.
    pub resource: String,
    /// Percent-decoded user and password from the URL's userinfo.
    credentials: Option<(String, String)>,
}

impl fmt::Debug for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WsUrl({})", self.redacted())
    }
}

impl WsUrl {
    /// Parses a URL (leading and trailing ASCII whitespace is ignored).
    pub fn parse(input: &str) -> Result<WsUrl, UrlError> {
        let input = input.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Some(c) = input.chars().find(|c| c.is_control()) {
            return err(format!("control character {c:?} in the URL"));
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return err("expected ws://host[:port][/path] or wss://...");
        };
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return err(format!("scheme must be ws or wss, not {scheme:?}"));
        };
        if rest.contains('#') {
            return err("fragments are not allowed (RFC 6455 section 3); write # as %23");
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        if authority.contains('\\') {
            return err("backslash in the host part");
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let credentials = userinfo.map(parse_userinfo).transpose()?;
        let (host, port) = split_host_port(hostport)?;
        let host = parse_host(host)?;
        let port = match port {
            None | Some("") => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => parse_port(p)?,
        };
        let resource = if resource.is_empty() {
            "/".to_owned()
        } else if resource.starts_with('?') {
            format!("/{}", encode_resource(resource))
        } else {
            encode_resource(resource)
        };
        Ok(WsUrl { secure, host, port, resource, credentials })
    }

    /// The scheme's default port: 443 for wss, 80 for ws.
    pub fn default_port(&self) -> u16 {
        if self.secure {
            443
        } else {
            80
        }
    }

    /// Value of the `Host` request header: the host (IPv6 in brackets), with `:port` when
    /// the port is not the scheme's default.
    pub fn host_header(&self) -> String {
        if self.port == self.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name to resolve (a DNS name), or `None` for an IP literal.
    pub fn domain(&self) -> Option<&str> {
        match &self.host {
            Host::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// Percent-decoded `(user, password)` from the URL's userinfo, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `Authorization` header value (`Basic base64(user:password)`) for URL credentials.
    pub fn basic_auth(&self) -> Option<String> {
        self.credentials.as_ref().map(|(user, password)| {
            format!("Basic {}", data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes()))
        })
    }

    /// The URL with the password (if any) replaced by `***`, for logs and events.
    pub fn redacted(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        let userinfo = match &self.credentials {
            None => String::new(),
            Some((user, pass)) if pass.is_empty() => format!("{}@", encode_userinfo(user)),
            Some((user, _)) => format!("{}:***@", encode_userinfo(user)),
        };
        format!("{scheme}://{userinfo}{}{}", self.host_header(), self.resource)
    }
}

fn parse_userinfo(userinfo: &str) -> Result<(String, String), UrlError> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user, "user name")?;
    let password = percent_decode(password, "password")?;
    if user.is_empty() {
        return err("empty user name before @");
    }
    if user.contains(':') {
        return err("user name contains ':' (Basic authentication cannot carry it)");
    }
    Ok((user, password))
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return err("IPv6 address without closing ]");
        };
        let host = &hostport[..close + 2];
        match &rest[close + 1..] {
            "" => Ok((host, None)),
            after => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => err(format!("unexpected {after:?} after the IPv6 address")),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => Ok((host, Some(port))),
            None => Ok((hostport, None)),
        }
    }
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => err(format!("port {port} is out of range (1-65535)")),
    }
}

fn parse_host(host: &str) -> Result<Host, UrlError> {
    if host.is_empty() {
        return err("missing host");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = &inner[..inner.len() - 1];
        if inner.contains('%') {
            return err("IPv6 zone identifiers are not supported");
        }
        return inner
            .parse::<Ipv6Addr>()
            .map(Host::V6)
            .map_err(|_| UrlError(format!("invalid IPv6 address [{inner}]")));
    }
    if let Some(c) = host.chars().find(|c| !c.is_ascii()) {
        return err(format!(
            "non-ASCII character {c:?} in the host; give internationalized names in punycode (xn--...)"
        ));
    }
    if host.contains('%') {
        return err("percent-encoding in the host is not supported");
    }
    if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))) {
        return err(format!("character {c:?} is not allowed in a host name"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return err(format!("host {host:?} has an empty label"));
    }
    if name.len() > 253 || name.split('.').any(|l| l.len() > 63) {
        return err(format!("host name {host:?} is too long"));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.len() > 1 && last[..2].eq_ignore_ascii_case("0x"));
    if numeric {
        // Only the canonical dotted quad: resolvers accept 127.1, 0x7f.0.0.1 and 0177.0.0.1
        // as aliases of 127.0.0.1, which would surprise whoever checks the URL.
        return match name.parse::<Ipv4Addr>() {
            Ok(addr) if host == name => Ok(Host::V4(addr)),
            _ => err(format!("{host:?} is not a valid IPv4 address (use the dotted quad a.b.c.d)")),
        };
    }
    Ok(Host::Domain(host.to_ascii_lowercase()))
}

/// Characters kept as written in the path and query: RFC 3986 `pchar`, `/`, `?` and `%`
/// (existing escapes are not re-encoded).
fn is_resource_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

fn encode_resource(resource: &str) -> String {
    let mut out = String::with_capacity(resource.len());
    for b in resource.bytes() {
        if is_resource_char(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str, what: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => out.push(b),
                None => return err(format!("bad percent-encoding in the {what}")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| UrlError(format!("the {what} is not UTF-8")))?;
    if decoded.chars().any(|c| c.is_control()) {
        return err(format!("control character in the {what}"));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> String {
        match WsUrl::parse(s) {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn defaults_and_parts() {
        let u = ok("ws://example.com");
        assert_eq!((u.secure, u.port, u.resource.as_str()), (false, 80, "/"));
        assert_eq!(u.host, Host::Domain("example.com".into()));
        assert_eq!(u.host_header(), "example.com");
        let u = ok("wss://Example.COM/chat?room=1&x=%20y");
        assert_eq!((u.secure, u.port), (true, 443));
        assert_eq!(u.domain(), Some("example.com"));
        assert_eq!(u.resource, "/chat?room=1&x=%20y");
        assert_eq!(ok("WSS://h:8443").host_header(), "h:8443");
        assert_eq!(ok("ws://h:80/").host_header(), "h");
        assert_eq!(ok("wss://h:443/").host_header(), "h");
        assert_eq!(ok("ws://h:443/").host_header(), "h:443");
        assert_eq!(ok("ws://h:/p").port, 80);
        assert_eq!(ok("ws://h?q=1").resource, "/?q=1");
        assert_eq!(ok("  ws://h/a b/ü \n").resource, "/a%20b/%C3%BC");
        assert_eq!(ok("ws://h/x%23y").resource, "/x%23y");
        assert_eq!(ok("ws://my_host.local./").host, Host::Domain("my_host.local.".into()));
        // The RFC 6455 section 1.3 example.
        let u = ok("ws://server.example.com/chat");
        assert_eq!((u.host_header(), u.resource.as_str()), ("server.example.com".into(), "/chat"));
    }

    #[test]
    fn ip_literals() {
        let u = ok("ws://127.0.0.1:9001/x");
        assert_eq!(u.host, Host::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(u.host_header(), "127.0.0.1:9001");
        assert!(u.domain().is_none() && u.host.ip().is_some());
        let u = ok("wss://[::1]:8443/");
        assert_eq!(u.host, Host::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(u.host_header(), "[::1]:8443");
        assert_eq!(ok("ws://[2001:DB8::1]").host_header(), "[2001:db8::1]");
        assert_eq!(ok("ws://[::ffff:1.2.3.4]/").port, 80);
        assert!(bad("ws://127.1/").contains("IPv4"));
        assert!(bad("ws://0x7f.0.0.1/").contains("IPv4"));
        assert!(bad("ws://256.0.0.1/").contains("IPv4"));
        assert!(bad("ws://a.b.1/").contains("IPv4"));
        assert!(bad("ws://[::1/").contains(']'));
        assert!(bad("ws://[::1]x/").contains("after"));
        assert!(bad("ws://[fe80::1%25eth0]/").contains("zone"));
        assert!(bad("ws://[zz::1]/").contains("IPv6"));
        assert!(bad("ws://::1/").contains("not a number") || bad("ws://::1/").contains("host"));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(bad("http://h/").contains("scheme"));
        assert!(bad("h:80").contains("expected"));
        assert!(bad("ws:h/").contains("expected"));
        assert!(bad("ws://h/#frag").contains("fragment"));
        assert!(bad("ws://h#").contains("fragment"));
        assert!(bad("ws:///path").contains("missing host"));
        assert!(bad("ws://:80/").contains("missing host"));
        assert!(bad("ws://h:0/").contains("range"));
        assert!(bad("ws://h:65536/").contains("range"));
        assert!(bad("ws://h:99999999999999999999/").contains("range"));
        assert!(bad("ws://h:8o/").contains("number"));
        assert!(bad("ws://h:-1/").contains("number"));
        assert!(bad("ws://bücher.de/").contains("punycode"));
        assert!(bad("ws://a..b/").contains("empty label"));
        assert!(bad("ws://a b/").contains("not allowed"));
        assert!(bad("ws://h\\x/").contains("backslash"));
        assert!(bad("ws://h/a\r\nX-Evil: 1").contains("control"));
        assert!(bad("ws://h/\0").contains("control"));
        assert!(bad(&format!("ws://{}.com/", "a".repeat(64))).contains("too long"));
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        let u = ok("wss://alice:s%3Acret%40@example.com/");
        assert_eq!(u.credentials(), Some(("alice", "s:cret@")));
        // base64("alice:s:cret@")
        assert_eq!(u.basic_auth().as_deref(), Some("Basic YWxpY2U6czpjcmV0QA=="));
        assert_eq!(u.redacted(), "wss://alice:***@example.com/");
        assert!(!format!("{u:?}").contains("cret"));
        assert_eq!(ok("ws://bob@h/").credentials(), Some(("bob", "")));
        assert_eq!(ok("ws://bob@h/").redacted(), "ws://bob@h/");
        // RFC 7617 example: Aladdin / open sesame.
        assert_eq!(
            ok("ws://Aladdin:open%20sesame@h/").basic_auth().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert!(ok("ws://h/").basic_auth().is_none());
        assert!(bad("ws://:pw@h/").contains("empty user"));
        assert!(bad("ws://a%3Ab:pw@h/").contains("':'"));
        assert!(bad("ws://a:%zz@h/").contains("percent"));
        assert!(bad("ws://a:%0d%0a@h/").contains("control"));
        assert!(bad("ws://a:%ff@h/").contains("UTF-8"));
    }
}
