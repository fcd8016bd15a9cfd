//! Handshake, echo, fragmentation, ping/pong and every close path, with real clients.

mod common;
use common::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;
use std::time::{Duration, Instant};

use wsembed::{Event, MessageKind};

#[test]
fn open_event_carries_request_details() {
    let server = start(|c| c.subprotocols = vec!["v2".into(), "v1".into()]);
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url(&server, "/room/7?user=ann")).unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "v1, v2".parse().unwrap());
    request.headers_mut().insert("X-Token", "abc".parse().unwrap());
    let (_client, response) = tungstenite::connect(request).unwrap();
    assert_eq!(response.headers().get("Sec-WebSocket-Protocol").unwrap(), "v2", "server preference wins");
    let (path, protocol, headers, peer) = wait_for(&server, |e| match e {
        Event::Open { path, protocol, headers, peer, .. } => Some((path.clone(), protocol.clone(), headers.clone(), *peer)),
        _ => None,
    });
    assert_eq!(path, "/room/7?user=ann");
    assert_eq!(protocol.as_deref(), Some("v2"));
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("x-token") && v == "abc"));
    assert!(peer.ip().is_loopback());
}

#[test]
fn echo_text_and_binary() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    let handle = server.handle();
    client.send(Message::text("héllo")).unwrap();
    client.send(Message::binary(vec![0u8, 159, 146, 150])).unwrap();
    for _ in 0..2 {
        let (from, data, is_text) = wait_message(&server);
        assert_eq!(from, conn);
        handle.send(conn, if is_text { MessageKind::Text } else { MessageKind::Binary }, &data).unwrap();
    }
    assert_eq!(client.read().unwrap(), Message::text("héllo"));
    assert_eq!(client.read().unwrap(), Message::binary(vec![0u8, 159, 146, 150]));
}

#[test]
fn large_message_roundtrip() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7) as u8).collect();
    client.send(Message::binary(payload.clone())).unwrap();
    let (_, data, _) = wait_message(&server);
    assert!(data == payload);
    server.handle().send_binary(conn, &data).unwrap();
    assert_eq!(client.read().unwrap().into_data().len(), payload.len());
}

#[test]
fn fragmented_input_is_reassembled_around_control_frames() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    raw.frame(0x01, "frag".as_bytes());
    raw.frame(0x00, "men".as_bytes());
    raw.frame(0x89, b"mid-ping");
    raw.frame(0x80, "ted €".as_bytes());
    assert_eq!(raw.read_frame(), (0x8a, b"mid-ping".to_vec()), "ping answered with the same payload");
    let (from, data, is_text) = wait_message(&server);
    assert_eq!((from, data.as_slice(), is_text), (conn, "fragmented €".as_bytes(), true));
}

#[test]
fn auto_pong_with_a_real_client() {
    let server = start(|_| {});
    let mut client = connect(&server);
    wait_open(&server);
    client.send(Message::Ping(b"are you there".to_vec().into())).unwrap();
    match client.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn client_initiated_close_is_echoed_and_reported() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    client.close(Some(CloseFrame { code: CloseCode::Library(4001), reason: "bye".into() })).unwrap();
    loop {
        match client.read() {
            Ok(Message::Close(Some(frame))) => break assert_eq!(u16::from(frame.code), 4001),
            Ok(_) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wait_close(&server, conn), (4001, "bye".to_owned(), true));
    assert!(matches!(server.handle().send_text(conn, "late"), Err(wsembed::Error::NoSuchConnection)));
}

#[test]
fn server_initiated_close_sends_code_and_reason() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    server.handle().close(conn, 4000, "kicked").unwrap();
    assert!(matches!(server.handle().send_text(conn, "after close"), Err(wsembed::Error::NoSuchConnection)));
    match client.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4000, "kicked")),
        other => panic!("{other:?}"),
    }
    // tungstenite answers the close; the handshake completes.
    let _ = client.flush();
    assert_eq!(wait_close(&server, conn), (4000, "kicked".to_owned(), true));
}

#[test]
fn dropped_tcp_is_reported_as_1006() {
    let server = start(|_| {});
    let client = connect(&server);
    let conn = wait_open(&server);
    drop(client);
    let (code, _, clean) = wait_close(&server, conn);
    assert_eq!((code, clean), (1006, false));
}

#[test]
fn protocol_violations_close_with_the_right_code() {
    let server = start(|c| c.max_message_size = 1024);
    let cases: [(&[u8], u16); 5] = [
        (&[0x81, 0x00], 1002),                     // unmasked frame
        (&masked_frame(0xc1, b"rsv1"), 1002),      // reserved bit, no extension
        (&masked_frame(0x81, &[0xc3, 0x28]), 1007), // invalid UTF-8
        (&masked_frame(0x82, &[0u8; 2000]), 1009), // over max_message_size
        (&masked_frame(0x0a, b"frag-pong"), 1002), // fragmented control frame
    ];
    for (bytes, expected) in cases {
        let mut raw = Raw::connect(&server);
        let conn = wait_open(&server);
        raw.write(bytes);
        assert_eq!(raw.read_close_code(), Some(expected));
        let (code, _, clean) = wait_close(&server, conn);
        assert_eq!((code, clean), (expected, false));
    }
    assert_still_serves(&server);
}

#[test]
fn frames_pipelined_right_after_the_handshake_are_not_lost() {
    let server = start(|_| {});
    let mut raw = Raw::tcp(&server);
    let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec();
    bytes.extend(masked_frame(0x81, b"early"));
    raw.write(&bytes);
    assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
    let (_, data, _) = wait_message(&server);
    assert_eq!(data, b"early");
}

#[test]
fn replies_to_messages_before_a_violation_precede_the_close() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let mut wire = masked_frame(0x81, b"valid first");
    wire.extend(masked_frame(0xa1, b"rsv2 set")); // protocol error right behind it
    raw.write(&wire);
    let (from, data, _) = wait_message(&server);
    assert_eq!((from, data.as_slice()), (conn, &b"valid first"[..]));
    server.handle().send_text(conn, "reply").unwrap(); // still open for the host's reply
    // The host's next poll tells the loop the message was handled; then the close follows.
    let started = Instant::now();
    let (code, _, clean) = wait_close(&server, conn);
    assert_eq!((code, clean), (1002, false));
    assert!(started.elapsed() < Duration::from_secs(2), "closed on the next poll, not at the deadline");
    assert_eq!(raw.read_frame(), (0x81, b"reply".to_vec()), "the reply goes out first");
    assert_eq!(raw.read_close_code(), Some(1002));
    assert!(matches!(server.handle().send_text(conn, "late"), Err(wsembed::Error::NoSuchConnection)));
}
