//! wss://, handshake approval, origins, subprotocols, rate limits, per-IP limits,
//! backpressure policies and the counters.

mod common;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tungstenite::Message;
use wsembed::{Error, Event, MessageKind, RateLimitPolicy, TlsPem};

fn self_signed() -> (TlsPem, rustls::pki_types::CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    (TlsPem { cert_chain: cert.cert.pem().into_bytes(), private_key: cert.key_pair.serialize_pem().into_bytes() }, der)
}

fn tls_client(port: u16, trusted: rustls::pki_types::CertificateDer<'static>) -> WebSocketTls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let connector = tungstenite::Connector::Rustls(Arc::new(config));
    let (ws, _) =
        tungstenite::client_tls_with_config(format!("wss://localhost:{port}/secure"), tcp, None, Some(connector)).unwrap();
    ws
}

type WebSocketTls = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

#[test]
fn wss_echo_with_a_real_tls_client() {
    let (pem, der) = self_signed();
    let server = start(|c| c.tls = Some(pem));
    let port = server.local_addr().port();
    let mut client = tls_client(port, der.clone());
    let conn = wait_open(&server);
    client.send(Message::text("over tls")).unwrap();
    let big = vec![9u8; 300_000];
    client.send(Message::binary(big.clone())).unwrap();
    let handle = server.handle();
    for _ in 0..2 {
        let (_, data, is_text) = wait_message(&server);
        handle.send(conn, if is_text { MessageKind::Text } else { MessageKind::Binary }, &data).unwrap();
    }
    assert_eq!(client.read().unwrap(), Message::text("over tls"));
    assert_eq!(client.read().unwrap().into_data().len(), big.len());
    // A peer speaking plain HTTP/garbage to the TLS port is only its own problem.
    let mut plain = Raw::tcp(&server);
    plain.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let _ = plain.read_to_end();
    let mut second = tls_client(port, der);
    let conn2 = wait_open(&server);
    handle.send_text(conn2, "second").unwrap();
    assert_eq!(second.read().unwrap(), Message::text("second"));
}

#[test]
fn bad_tls_material_fails_at_start_with_a_clear_error() {
    let config = wsembed::ServerConfig {
        tls: Some(TlsPem { cert_chain: b"not a pem".to_vec(), private_key: b"nope".to_vec() }),
        ..Default::default()
    };
    let err = wsembed::Server::start(config).err().expect("refused").to_string();
    assert!(err.contains("TLS"), "{err}");
    let mut config = wsembed::ServerConfig::default();
    let err = config.set("tls_cert_file", "/nonexistent/cert.pem").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn handshake_approval_accepts_with_protocol_or_rejects() {
    let server = start(|c| c.approve_handshakes = true);
    let handle = server.handle();
    let url_ok = url(&server, "/game?token=good");
    let accepted = std::thread::spawn(move || {
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(url_ok).unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "a, b".parse().unwrap());
        request.headers_mut().insert("Cookie", "session=42".parse().unwrap());
        let (_ws, response) = tungstenite::connect(request).unwrap();
        response.headers().get("Sec-WebSocket-Protocol").unwrap().to_str().unwrap().to_owned()
    });
    let (conn, headers, protocols) = wait_for(&server, |e| match e {
        Event::Handshake { conn, headers, protocols, path, .. } if path == "/game?token=good" => {
            Some((*conn, headers.clone(), protocols.clone()))
        }
        _ => None,
    });
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("cookie") && v == "session=42"));
    assert_eq!(protocols, vec!["a", "b"]);
    assert!(matches!(handle.send_text(conn, "too early"), Err(Error::NoSuchConnection)), "not open yet");
    handle.accept(conn, Some("b")).unwrap();
    assert!(matches!(handle.accept(conn, None), Err(Error::NoSuchConnection)), "answered once");
    assert_eq!(accepted.join().unwrap(), "b");
    assert_eq!(wait_open(&server), conn);

    let mut raw = Raw::tcp(&server);
    raw.write(b"GET /game?token=bad HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let conn = wait_for(&server, |e| match e {
        Event::Handshake { conn, .. } => Some(*conn),
        _ => None,
    });
    handle.reject(conn, 401, "bad token").unwrap();
    let response = String::from_utf8_lossy(&raw.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 401") && response.ends_with("bad token"), "{response}");
    assert!(matches!(handle.reject(conn, 200, ""), Err(Error::InvalidArgument(_))));
}

#[test]
fn unanswered_handshake_gets_503() {
    let server = start(|c| {
        c.approve_handshakes = true;
        c.approval_timeout = Duration::from_millis(200);
    });
    let mut raw = Raw::tcp(&server);
    raw.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let response = String::from_utf8_lossy(&raw.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(server.handle().stats().handshakes_rejected >= 1);
}

#[test]
fn origin_allowlist() {
    let server = start(|c| c.allowed_origins = vec!["https://good.example".into()]);
    let upgrade = |origin: &str| {
        let mut raw = Raw::tcp(&server);
        raw.write(format!("GET / HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes());
        raw.read_http_head()
    };
    assert!(upgrade("https://evil.example").starts_with("HTTP/1.1 403"));
    assert!(upgrade("https://good.example").starts_with("HTTP/1.1 101"));
}

#[test]
fn message_rate_limit_closes_with_1008() {
    let server = start(|c| {
        c.max_messages_per_sec = 5;
        c.close_timeout = Duration::from_millis(300);
    });
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    for _ in 0..20 {
        raw.frame(0x81, b"spam");
    }
    assert_eq!(raw.read_close_code(), Some(1008));
    let mut delivered = 0;
    let code = loop {
        let next = wait_for(&server, |e| match e {
            Event::Message { conn: c, .. } if *c == conn => Some(None),
            Event::Close { conn: c, code, .. } if *c == conn => Some(Some(*code)),
            _ => None,
        });
        match next {
            None => delivered += 1,
            Some(code) => break code,
        }
    };
    assert_eq!(code, 1008);
    // The burst (5) plus what refills while the 20 frames arrive; far fewer than 20.
    assert!((1..=10).contains(&delivered), "burst of about one second passes: {delivered}");
    assert_still_serves(&server);
}

#[test]
fn byte_rate_limit_drops_and_counts_when_configured() {
    let server = start(|c| {
        c.max_bytes_per_sec = 1000;
        c.rate_limit_policy = RateLimitPolicy::Drop;
    });
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    for _ in 0..5 {
        raw.frame(0x82, &[1u8; 400]);
    }
    raw.frame(0x89, b"sync");
    assert_eq!(raw.read_frame().0, 0x8a, "pong after all five were processed");
    let stats = server.handle().stats();
    assert!(stats.rate_limited >= 3, "{stats:?}");
    assert!(server.handle().buffered_amount(conn).is_ok(), "still open");
}

#[test]
fn per_ip_connection_cap_and_handshake_rate() {
    let server = start(|c| c.max_connections_per_ip = 2);
    let _a = connect(&server);
    let _b = connect(&server);
    let mut third = Raw::tcp(&server);
    assert!(String::from_utf8_lossy(&third.read_to_end()).starts_with("HTTP/1.1 429"));

    let server = start(|c| c.max_handshakes_per_ip_per_sec = 3);
    let statuses: Vec<String> = (0..6)
        .map(|_| {
            let mut raw = Raw::tcp(&server);
            raw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            raw.read_http_head()
        })
        .collect();
    assert!(statuses.iter().filter(|s| s.starts_with("HTTP/1.1 429")).count() >= 2, "{statuses:?}");
}

#[test]
fn backpressure_close_policy_closes_a_slow_reader_and_broadcast_skips_it_otherwise() {
    let server = start(|c| {
        c.max_buffered_bytes = 256 * 1024;
        c.backpressure = wsembed::BackpressurePolicy::Close;
        c.backpressure_close_code = 1013;
        c.close_timeout = Duration::from_millis(500);
    });
    let _slow = Raw::connect(&server); // never reads
    let slow = wait_open(&server);
    let mut fast = connect(&server);
    let fast_id = wait_open(&server);
    let handle = server.handle();
    let chunk = vec![1u8; 32 * 1024];
    // Enough to overflow the slow peer's socket buffers and queue; the fast one keeps reading.
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let reader = std::thread::spawn(move || {
        while counter.load(std::sync::atomic::Ordering::Acquire) < 400 {
            if let Message::Binary(_) = fast.read().unwrap() {
                counter.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
        }
        fast
    });
    let deadline = std::time::Instant::now() + DEADLINE;
    for i in 0..400 {
        // Pace to the fast reader so that only the slow one falls behind.
        while i > received.load(std::sync::atomic::Ordering::Acquire) + 2 {
            assert!(std::time::Instant::now() < deadline, "fast reader stalled");
            std::thread::yield_now();
        }
        handle.broadcast(MessageKind::Binary, &chunk, None).unwrap();
    }
    let _fast = reader.join().unwrap();
    let (code, _, _) = wait_close(&server, slow);
    assert_eq!(code, 1013);
    assert!(handle.buffered_amount(fast_id).is_ok());
    assert!(server.handle().stats().closes_policy >= 1 || server.handle().stats().closes_dropped >= 1);
}

#[test]
fn stats_count_the_traffic() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    client.send(Message::text("12345")).unwrap();
    wait_message(&server);
    server.handle().send_text(conn, "abc").unwrap();
    assert_eq!(client.read().unwrap(), Message::text("abc"));
    let stats = server.handle().stats();
    assert_eq!((stats.open_connections, stats.handshakes_accepted, stats.messages_in, stats.messages_out), (1, 1, 1, 1));
    assert!(stats.bytes_in > 5 && stats.bytes_out > 3);
    client.close(None).unwrap();
    wait_close(&server, conn);
    let stats = server.handle().stats();
    assert_eq!((stats.open_connections, stats.closes_clean), (0, 1));
}
