//! The byte stream under a connection: plain TCP, or TLS (rustls) over TCP. Reads return
//! plaintext, writes take plaintext; TLS records are pushed to the socket as it accepts them.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mio::net::TcpStream;

/// Writes to a TCP socket with `sendmsg(MSG_NOSIGNAL)`: a peer that hangs up while we write
/// gives `EPIPE`, never `SIGPIPE`, so hosts keep the default disposition without dying.
/// (`writev`, which `TcpStream::write_vectored` uses, and rustls's `write_tls` would raise it.)
pub struct NoSigPipe<'a>(pub &'a TcpStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix (guaranteed by std).
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
        loop {
            // SAFETY: fd is a live socket; msg points at `bufs`, valid for the call.
            let n = unsafe { libc::sendmsg(self.0.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plaintext rustls may hold per connection before `write` reports would-block; keeps the
/// send-queue accounting (`buffered_amount`) close to the truth.
const TLS_PLAINTEXT_LIMIT: usize = 64 * 1024;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    tcp: TcpStream,
    /// Server side (accepted) or client side (dialed).
    tls: rustls::Connection,
}

impl Transport {
    pub fn new(tcp: TcpStream, tls: Option<&Arc<rustls::ServerConfig>>) -> io::Result<Transport> {
        Ok(match tls {
            None => Transport::Plain(tcp),
            Some(config) => {
                let mut tls = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
                tls.set_buffer_limit(Some(TLS_PLAINTEXT_LIMIT));
                Transport::Tls(Box::new(TlsStream { tcp, tls: tls.into() }))
            }
        })
    }

    /// A dialed connection: plain, or TLS to `host` (SNI and certificate checked by name).
    pub fn client(tcp: TcpStream, tls: Option<(&Arc<rustls::ClientConfig>, &crate::client::url::Host)>) -> Result<Transport, crate::Error> {
        Ok(match tls {
            None => Transport::Plain(tcp),
            Some((config, host)) => {
                let mut tls = crate::client::tls::client_connection(config, host)?;
                tls.set_buffer_limit(Some(TLS_PLAINTEXT_LIMIT));
                Transport::Tls(Box::new(TlsStream { tcp, tls: tls.into() }))
            }
        })
    }

    pub fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(s) => &mut s.tcp,
        }
    }

    /// Reads plaintext; `Ok(0)` is the end of the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }

    /// Takes plaintext for sending; never returns `Ok(0)` for non-empty input (would-block instead).
    pub fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => NoSigPipe(tcp).write_vectored(bufs),
            Transport::Tls(s) => {
                s.push_records()?;
                let n = s.tls.writer().write_vectored(bufs)?;
                match s.push_records() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }
        }
    }

    /// Pushes pending TLS records (handshake messages, encrypted data) to the socket.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(s) => match s.push_records() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                other => other,
            },
        }
    }

    /// Sends FIN (after a TLS close_notify).
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls(s) = self {
            s.tls.send_close_notify();
            let _ = s.push_records();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

impl TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Peer closed TCP without close_notify: treat as the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Best effort: tell the peer why (the alert is queued by rustls).
                let _ = self.push_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake replies must go out even if the host never writes.
            match self.push_records() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn push_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut NoSigPipe(&self.tcp))?;
        }
        Ok(())
    }
}

/// Builds the rustls server configuration from PEM (TLS 1.2 and 1.3 only).
pub fn server_config(pem: &crate::config::TlsPem) -> Result<Arc<rustls::ServerConfig>, crate::Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| crate::Error::InvalidArgument(format!("TLS {what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.cert_chain)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate chain", &e))?;
    if certs.is_empty() {
        return Err(crate::Error::InvalidArgument("TLS certificate chain: no CERTIFICATE in the PEM".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.private_key).map_err(|e| bad("private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad("versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &e))?;
    Ok(Arc::new(config))
}
