//! Client connections dialed from an engine, against wsembed's own server (other peers are
//! in the Python and Node suites and the Autobahn client run): echo, close both ways,
//! reconnect with the same id, final failures, wss verified.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsembed::client::ClientOptions;
use wsembed::{ConnId, Event, MessageKind, Server, ServerConfig};

/// A client-only engine.
fn client_engine() -> Server {
    start(|c| c.listen = false)
}

/// Echoes every message of `server` back, on a thread, until the server stops.
fn echo(server: Server) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let handle = server.handle();
        while let Ok(events) = server.poll(Some(Duration::from_millis(100))) {
            for event in events {
                if let Event::Message { conn, data, is_text } = event {
                    let kind = if is_text { MessageKind::Text } else { MessageKind::Binary };
                    let _ = handle.send(conn, kind, &data);
                }
            }
            if handle.is_stopping() {
                break;
            }
        }
    })
}

fn wait_failed(engine: &Server, conn: ConnId) -> wsembed::event::ClientFailure {
    wait_for(engine, |e| match e {
        Event::Failed { conn: c, failure } if *c == conn => Some(failure.clone()),
        _ => None,
    })
}

#[test]
fn dials_echoes_and_closes() {
    let server = start(|c| c.subprotocols = vec!["chat".into()]);
    let url = format!("ws://127.0.0.1:{}/room?x=1", server.local_addr().port());
    let engine = client_engine();
    let options = ClientOptions {
        protocols: vec!["chat".into()],
        headers: vec![("Authorization".into(), "Bearer t0k".into())],
        ..Default::default()
    };
    let conn = engine.handle().connect(&url, &options).unwrap();
    assert!(matches!(engine.handle().send_text(conn, "too early"), Err(wsembed::Error::NotOpen)));
    let (path, headers) = wait_for(&server, |e| match e {
        Event::Open { path, headers, .. } => Some((path.clone(), headers.clone())),
        _ => None,
    });
    assert_eq!(path, "/room?x=1");
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("authorization") && v == "Bearer t0k"));
    let protocol = wait_for(&engine, |e| match e {
        Event::Open { conn: c, protocol, .. } if *c == conn => Some(protocol.clone()),
        _ => None,
    });
    assert_eq!(protocol.as_deref(), Some("chat"));
    let server_thread = echo(server);
    engine.handle().send_text(conn, "hello").unwrap();
    engine.handle().send_binary(conn, &[1, 2, 3]).unwrap();
    let big = vec![7u8; 300_000];
    engine.handle().send_binary(conn, &big).unwrap();
    assert_eq!(wait_message(&engine), (conn, b"hello".to_vec(), true));
    assert_eq!(wait_message(&engine), (conn, vec![1, 2, 3], false));
    assert_eq!(wait_message(&engine), (conn, big, false));
    engine.handle().close(conn, 4001, "done").unwrap();
    assert_eq!(wait_close(&engine, conn), (4001, "done".to_owned(), true));
    drop(server_thread);
}

#[test]
fn refused_without_reconnect_is_final() {
    let port = common::redis::free_port();
    let engine = client_engine();
    let conn = engine.handle().connect(&format!("ws://127.0.0.1:{port}/"), &ClientOptions::default()).unwrap();
    let failure = wait_failed(&engine, conn);
    assert_eq!(failure.code, 2, "connection refused: {failure:?}");
    assert!(matches!(engine.handle().send_text(conn, "x"), Err(wsembed::Error::NoSuchConnection)));
}

#[test]
fn http_4xx_is_final_and_5xx_is_retried() {
    let server = start(|c| c.approve_handshakes = true);
    let url = format!("ws://127.0.0.1:{}/", server.local_addr().port());
    let engine = client_engine();
    let mut options = ClientOptions::default();
    options.set("reconnect_min_delay_ms", "10").unwrap();
    options.set("reconnect_max_delay_ms", "50").unwrap();
    options.set("reconnect_max_attempts", "2").unwrap();
    let conn = engine.handle().connect(&url, &options).unwrap();
    // 503 twice: retried, then the attempts run out.
    for _ in 0..3 {
        let pending = wait_for(&server, |e| match e {
            Event::Handshake { conn, .. } => Some(*conn),
            _ => None,
        });
        server.handle().reject(pending, 503, "busy").unwrap();
    }
    let mut attempts = Vec::new();
    let failure = loop {
        let event = wait_for(&engine, |e| match e {
            Event::Reconnecting { conn: c, .. } | Event::Failed { conn: c, .. } if *c == conn => Some(e.clone()),
            _ => None,
        });
        match event {
            Event::Reconnecting { attempt, delay, failure, .. } => {
                assert!(delay <= Duration::from_millis(50), "within the cap");
                assert_eq!((failure.code, failure.status), (8, 503));
                attempts.push(attempt);
            }
            Event::Failed { failure, .. } => break failure,
            _ => unreachable!(),
        }
    };
    assert_eq!(attempts, vec![1, 2]);
    assert_eq!((failure.code, failure.status), (8, 503));
    // 401: final at once.
    let conn = engine.handle().connect(&url, &options).unwrap();
    let pending = wait_for(&server, |e| match e {
        Event::Handshake { conn, .. } => Some(*conn),
        _ => None,
    });
    server.handle().reject(pending, 401, "who?").unwrap();
    let failure = wait_failed(&engine, conn);
    assert_eq!((failure.code, failure.status), (8, 401));
}

#[test]
fn reconnects_to_a_server_that_comes_back_with_the_same_id() {
    let server = start(|_| {});
    let port = server.local_addr().port();
    let engine = client_engine();
    let mut options = ClientOptions { queue_while_connecting: 1 << 20, ..Default::default() };
    options.set("reconnect_min_delay_ms", "50").unwrap();
    options.set("reconnect_max_delay_ms", "200").unwrap();
    let conn = engine.handle().connect(&format!("ws://127.0.0.1:{port}/"), &options).unwrap();
    wait_for(&engine, |e| matches!(e, Event::Open { conn: c, .. } if *c == conn).then_some(()));
    wait_open(&server);
    // The server goes away: 1001 (going away) is retried.
    server.stop(Duration::from_secs(1)).unwrap();
    let (code, _, _) = wait_close(&engine, conn);
    assert_eq!(code, 1001);
    let went = Instant::now();
    wait_for(&engine, |e| matches!(e, Event::Reconnecting { conn: c, .. } if *c == conn).then_some(()));
    // Queued while down, delivered in order once back.
    engine.handle().send_text(conn, "one").unwrap();
    engine.handle().send_text(conn, "two").unwrap();
    let again = start(move |c| c.port = port);
    wait_for(&engine, |e| matches!(e, Event::Open { conn: c, .. } if *c == conn).then_some(()));
    let back = went.elapsed();
    assert_eq!(wait_message(&again).1, b"one");
    assert_eq!(wait_message(&again).1, b"two");
    assert!(back < Duration::from_secs(5), "reconnected within the delay cap: {back:?}");
    engine.handle().terminate(conn).unwrap();
    assert_eq!(wait_close(&engine, conn).0, 1006);
}

#[test]
fn wss_is_verified_against_the_given_ca() {
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (ca.cert.pem(), ca.key_pair.serialize_pem());
    let server = Server::start(ServerConfig {
        tls: Some(wsembed::TlsPem { cert_chain: cert.clone().into_bytes(), private_key: key.into_bytes() }),
        ..Default::default()
    })
    .unwrap();
    let port = server.local_addr().port();
    let _echo = echo(server);
    let engine = client_engine();
    let trusted = ClientOptions { ca_pem: Some(cert.into_bytes()), ..Default::default() };
    let conn = engine.handle().connect(&format!("wss://localhost:{port}/"), &trusted).unwrap();
    wait_for(&engine, |e| matches!(e, Event::Open { conn: c, .. } if *c == conn).then_some(()));
    engine.handle().send_text(conn, "secret").unwrap();
    assert_eq!(wait_message(&engine), (conn, b"secret".to_vec(), true));
    // The system roots do not trust it: a final verification failure, even with reconnect on.
    let mut untrusted = ClientOptions::default();
    untrusted.set("reconnect", "1").unwrap();
    let conn = engine.handle().connect(&format!("wss://localhost:{port}/"), &untrusted).unwrap();
    assert_eq!(wait_failed(&engine, conn).code, 6);
    // The right CA but another name: also a verification failure.
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
    let wrong_ca = ClientOptions { ca_pem: Some(other.cert.pem().into_bytes()), ..Default::default() };
    let conn = engine.handle().connect(&format!("wss://localhost:{port}/"), &wrong_ca).unwrap();
    assert_eq!(wait_failed(&engine, conn).code, 6);
}

#[test]
fn bad_urls_and_headers_are_refused_at_once() {
    let engine = client_engine();
    for url in ["http://x/", "ws://", "ws://host/#frag", "ws://[::1/"] {
        assert!(engine.handle().connect(url, &ClientOptions::default()).is_err(), "{url}");
    }
    let injected = ClientOptions { headers: vec![("X".into(), "a\r\nEvil: 1".into())], ..Default::default() };
    assert!(engine.handle().connect("ws://127.0.0.1:1/", &injected).is_err());
}
