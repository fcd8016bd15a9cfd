//! TLS for `wss://` clients: rustls with the ring provider, TLS 1.3 and 1.2, server
//! certificates always verified (chain and host name; there is no switch to turn it off).
//!
//! Trust anchors:
//! - by default the platform's roots (`rustls-native-certs`: the system bundle, honouring
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`), loaded once per process; where the system has none
//!   (minimal containers), the Mozilla roots compiled in from `webpki-roots`;
//! - when `ca_pem` and/or `ca_file` is given, those certificates only (a private CA replaces
//!   the defaults, as Node's `ca` option and Python's `cafile` do).
//!
//! The server name is sent as SNI for DNS names (not for IP literals, which are checked
//! against the certificate's IP addresses).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;

use super::url::Host;
use crate::Error;

/// Where the trust anchors of a client come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsOptions {
    /// PEM with one or more CA certificates to trust instead of the defaults.
    pub ca_pem: Option<Vec<u8>>,
    /// A PEM file with CA certificates to trust instead of the defaults (read when the
    /// configuration is built). Given together with `ca_pem`, both are trusted.
    pub ca_file: Option<PathBuf>,
}

/// Which roots the default store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// This many certificates from the platform.
    Platform(usize),
    /// The platform had none: the compiled-in Mozilla roots.
    WebpkiRoots,
}

struct DefaultRoots {
    store: Arc<RootCertStore>,
    source: RootSource,
}

fn default_roots() -> &'static DefaultRoots {
    static ROOTS: OnceLock<DefaultRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let native = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(native.certs);
        if added > 0 {
            return DefaultRoots { store: Arc::new(store), source: RootSource::Platform(added) };
        }
        let store: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        DefaultRoots { store: Arc::new(store), source: RootSource::WebpkiRoots }
    })
}

/// Where the default roots came from (loads them on first use).
pub fn default_root_source() -> RootSource {
    default_roots().source
}

fn build(roots: Arc<RootCertStore>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::InvalidArgument(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn parse_cas(pem: &[u8], what: &str, store: &mut RootCertStore) -> Result<(), Error> {
    let bad = |e: &dyn std::fmt::Display| Error::InvalidArgument(format!("TLS {what}: {e}"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!("TLS {what}: no CERTIFICATE in the PEM")));
    }
    for cert in certs {
        store.add(cert).map_err(|e| bad(&e))?;
    }
    Ok(())
}

/// The client configuration for these options. Without a CA the configuration is built once
/// and shared (so TLS sessions resume across clients); with one it is new each call.
pub fn client_config(options: &ClientTlsOptions) -> Result<Arc<rustls::ClientConfig>, Error> {
    if options.ca_pem.is_none() && options.ca_file.is_none() {
        static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
        if let Some(config) = DEFAULT.get() {
            return Ok(config.clone());
        }
        let config = build(default_roots().store.clone())?;
        return Ok(DEFAULT.get_or_init(|| config).clone());
    }
    let mut store = RootCertStore::empty();
    if let Some(pem) = &options.ca_pem {
        parse_cas(pem, "ca_pem", &mut store)?;
    }
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::InvalidArgument(format!("TLS ca_file {}: {e}", path.display())))?;
        parse_cas(&pem, &format!("ca_file {}", path.display()), &mut store)?;
    }
    build(Arc::new(store))
}

/// The name the certificate must match: the DNS name, or the IP address of a literal.
pub fn server_name(host: &Host) -> Result<ServerName<'static>, Error> {
    match host {
        Host::Domain(name) => {
            // A trailing dot (absolute name) is not part of the certificate's name.
            let name = name.strip_suffix('.').unwrap_or(name);
            ServerName::try_from(name.to_owned())
                .map_err(|e| Error::InvalidArgument(format!("TLS server name {name:?}: {e}")))
        }
        Host::V4(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*a).into())),
        Host::V6(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*a).into())),
    }
}

/// A new client TLS session to `host` (SNI and certificate checks by that name).
pub fn client_connection(config: &Arc<rustls::ClientConfig>, host: &Host) -> Result<rustls::ClientConnection, Error> {
    rustls::ClientConnection::new(config.clone(), server_name(host)?)
        .map_err(|e| Error::InvalidArgument(format!("TLS client: {e}")))
}

/// Whether a TLS error means the server's certificate was refused (untrusted issuer, wrong
/// host name, expired, bad signature, none sent): such a failure is not retried.
pub fn is_verification_failure(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType
            | rustls::Error::InvalidCertRevocationList(_)
    )
}

/// As [`is_verification_failure`] for an I/O error that wraps a rustls error (the transport
/// reports TLS failures as `io::Error`s of kind `InvalidData` around the rustls error).
pub fn is_verification_failure_io(e: &std::io::Error) -> bool {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(is_verification_failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use std::io::{Read, Write};

    struct Pki {
        ca_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    }

    fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    /// A CA and a server certificate it signed for `names` (DNS names or IP addresses).
    fn pki(names: &[&str]) -> Pki {
        let (ca_cert, ca_key) = ca("wsembed test CA");
        let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            chain: vec![cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        }
    }

    fn server(pki: &Pki, tls12_only: bool) -> rustls::ServerConnection {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] =
            if tls12_only { &[&rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), pki.key.clone_key())
            .unwrap();
        rustls::ServerConnection::new(Arc::new(config)).unwrap()
    }

    /// Runs the handshake in memory; the client's error if it fails, else echoes a message.
    fn handshake(client: &mut rustls::ClientConnection, server: &mut rustls::ServerConnection) -> Result<(), rustls::Error> {
        for _ in 0..20 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                server.read_tls(&mut &buf[..]).unwrap();
                if server.process_new_packets().is_err() {
                    // Deliver the server's alert; the client's error says why.
                    let mut alert = Vec::new();
                    server.write_tls(&mut alert).unwrap();
                    client.read_tls(&mut &alert[..]).unwrap();
                    client.process_new_packets()?;
                    return Err(rustls::Error::General("server failed".into()));
                }
            }
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            if !buf.is_empty() {
                client.read_tls(&mut &buf[..]).unwrap();
                client.process_new_packets()?;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                client.writer().write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                let mut buf = Vec::new();
                client.write_tls(&mut buf).unwrap();
                server.read_tls(&mut &buf[..]).unwrap();
                server.process_new_packets().unwrap();
                let mut got = vec![0u8; 18];
                server.reader().read_exact(&mut got).unwrap();
                assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    fn url_host(s: &str) -> Host {
        super::super::url::WsUrl::parse(s).unwrap().host
    }

    fn with_ca(pem: &str) -> Arc<rustls::ClientConfig> {
        client_config(&ClientTlsOptions { ca_pem: Some(pem.as_bytes().to_vec()), ca_file: None }).unwrap()
    }

    #[test]
    fn private_ca_verifies_by_dns_name_and_ip_with_tls13_and_tls12() {
        let pki = pki(&["localhost", "127.0.0.1", "::1"]);
        let config = with_ca(&pki.ca_pem);
        for tls12 in [false, true] {
            for url in ["wss://localhost:9443/", "wss://127.0.0.1/", "wss://[::1]/", "wss://LOCALHOST./"] {
                let mut client = client_connection(&config, &url_host(url)).unwrap();
                handshake(&mut client, &mut server(&pki, tls12)).unwrap_or_else(|e| panic!("{url}: {e}"));
                let expected = if tls12 { rustls::ProtocolVersion::TLSv1_2 } else { rustls::ProtocolVersion::TLSv1_3 };
                assert_eq!(client.protocol_version(), Some(expected));
            }
        }
        // SNI goes out for names only.
        let mut s = server(&pki, false);
        handshake(&mut client_connection(&config, &url_host("wss://localhost/")).unwrap(), &mut s).unwrap();
        assert_eq!(s.server_name(), Some("localhost"));
        let mut s = server(&pki, false);
        handshake(&mut client_connection(&config, &url_host("wss://127.0.0.1/")).unwrap(), &mut s).unwrap();
        assert_eq!(s.server_name(), None);
    }

    #[test]
    fn wrong_ca_and_wrong_name_are_verification_failures() {
        let pki = pki(&["localhost"]);
        let other = ca("another CA").0.pem();
        let mut client = client_connection(&with_ca(&other), &url_host("wss://localhost/")).unwrap();
        let err = handshake(&mut client, &mut server(&pki, false)).unwrap_err();
        assert_eq!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert!(is_verification_failure(&err));
        // A different CA under the same name: the chain's signature fails.
        let impostor = ca("wsembed test CA").0.pem();
        let mut client = client_connection(&with_ca(&impostor), &url_host("wss://localhost/")).unwrap();
        let err = handshake(&mut client, &mut server(&pki, false)).unwrap_err();
        assert_eq!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature));
        assert!(is_verification_failure(&err));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err.clone());
        assert!(is_verification_failure_io(&io));
        assert_eq!(super::super::reconnect::Failure::from_io(&io), super::super::reconnect::Failure::TlsVerification);

        let config = with_ca(&pki.ca_pem);
        for url in ["wss://example.com/", "wss://127.0.0.1/"] {
            let mut client = client_connection(&config, &url_host(url)).unwrap();
            let err = handshake(&mut client, &mut server(&pki, false)).unwrap_err();
            assert!(
                matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })),
                "{url}: {err:?}"
            );
            assert!(is_verification_failure(&err));
        }
        // The default roots do not trust a private CA either.
        let mut client = client_connection(&client_config(&ClientTlsOptions::default()).unwrap(), &url_host("wss://localhost/")).unwrap();
        assert!(is_verification_failure(&handshake(&mut client, &mut server(&pki, false)).unwrap_err()));
        // Other TLS errors are not verification failures.
        assert!(!is_verification_failure(&rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)));
        assert!(!is_verification_failure(&rustls::Error::DecryptError));
        assert!(!is_verification_failure_io(&std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
    }

    #[test]
    fn ca_file_and_bad_inputs() {
        let pki = pki(&["localhost"]);
        let dir = std::env::temp_dir().join(format!("wsembed-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, &pki.ca_pem).unwrap();
        let config = client_config(&ClientTlsOptions { ca_pem: None, ca_file: Some(path.clone()) }).unwrap();
        handshake(&mut client_connection(&config, &url_host("wss://localhost/")).unwrap(), &mut server(&pki, false)).unwrap();
        // ca_pem and ca_file together: both trusted.
        let both = client_config(&ClientTlsOptions { ca_pem: Some(ca("another CA").0.pem().into_bytes()), ca_file: Some(path) }).unwrap();
        handshake(&mut client_connection(&both, &url_host("wss://localhost/")).unwrap(), &mut server(&pki, false)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let err = |o: ClientTlsOptions| client_config(&o).unwrap_err().to_string();
        assert!(err(ClientTlsOptions { ca_pem: Some(b"nothing".to_vec()), ca_file: None }).contains("no CERTIFICATE"));
        assert!(err(ClientTlsOptions { ca_pem: None, ca_file: Some("/nonexistent/ca.pem".into()) }).contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn default_roots_are_loaded_and_shared() {
        let a = client_config(&ClientTlsOptions::default()).unwrap();
        let b = client_config(&ClientTlsOptions::default()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        match default_root_source() {
            RootSource::Platform(n) => assert!(n > 0),
            RootSource::WebpkiRoots => assert!(default_roots().store.len() > 50),
        }
    }
}
