//! The opening request for a URL: [`ClientHandshake`] fed with the URL's `Host` value,
//! resource and credentials.

use super::url::WsUrl;
use crate::protocol::client_handshake::{ClientHandshake, HandshakeOptions, RequestError};

/// Builds the upgrade request for `url`. URL credentials become `Authorization: Basic ...`;
/// giving them and an `Authorization` header in `options` is refused (which one was meant?).
/// Returns the handshake state and the bytes to send once connected (after TLS for wss).
pub fn handshake_request(url: &WsUrl, options: &HandshakeOptions) -> Result<(ClientHandshake, Vec<u8>), RequestError> {
    match url.basic_auth() {
        None => ClientHandshake::new(&url.host_header(), &url.resource, options),
        Some(auth) => {
            if options.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Authorization")) {
                return Err(RequestError("credentials both in the URL and in an Authorization header".into()));
            }
            let mut options = options.clone();
            options.headers.push(("Authorization".to_owned(), auth));
            ClientHandshake::new(&url.host_header(), &url.resource, &options)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, options: &HandshakeOptions) -> Result<String, RequestError> {
        let url = WsUrl::parse(url).unwrap();
        handshake_request(&url, options).map(|(_, bytes)| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn url_parts_land_in_the_request() {
        let req = request("wss://user:pw@[::1]:8443/a/b?c=d", &HandshakeOptions::default()).unwrap();
        assert!(req.starts_with("GET /a/b?c=d HTTP/1.1\r\nHost: [::1]:8443\r\n"), "{req}");
        assert!(req.contains("\r\nAuthorization: Basic dXNlcjpwdw==\r\n"), "{req}");
        let req = request("ws://example.com", &HandshakeOptions::default()).unwrap();
        assert!(req.starts_with("GET / HTTP/1.1\r\nHost: example.com\r\n") && !req.contains("Authorization"));
        let with_auth = HandshakeOptions { headers: vec![("authorization".into(), "Bearer x".into())], ..Default::default() };
        assert!(request("ws://u:p@h/", &with_auth).unwrap_err().0.contains("both"));
        assert!(request("ws://h/", &with_auth).unwrap().contains("authorization: Bearer x\r\n"));
    }
}
