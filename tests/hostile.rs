//! A battery of hostile peers on raw sockets. Each case checks the protocol answer and that a
//! good client is served right after.

mod common;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::*;
use wsembed::Event;

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn http_status(server: &wsembed::Server, request: &[u8]) -> String {
    let mut raw = Raw::tcp(server);
    raw.write(request);
    let response = String::from_utf8_lossy(&raw.read_to_end()).into_owned();
    response.lines().next().unwrap_or("").to_owned()
}

#[test]
fn malformed_requests_get_http_errors() {
    let server = start(|c| c.max_header_bytes = 2048);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x00\x01\x02\x03\r\n\r\n".to_vec(), "400"),
        (b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), "400"),
        (format!("POST / HTTP/1.1\r\n{}\r\n", &UPGRADE[16..]).into_bytes(), "400"),
        (format!("{UPGRADE}Sec-WebSocket-Key: short\r\n\r\n").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "").into_bytes(), "400"),
        (UPGRADE.replace("Version: 13", "Version: 99").into_bytes().into_iter().chain(*b"\r\n").collect(), "426"),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).into_bytes(), "431"),
        ((0..100).map(|i| format!("X-{i}: v\r\n")).fold("GET / HTTP/1.1\r\n".to_owned(), |a, h| a + &h).into_bytes().into_iter().chain(*b"\r\n").collect(), "431"),
    ];
    for (request, expected) in cases {
        let status = http_status(&server, &request);
        assert!(status.contains(expected), "{:?} -> {status}", String::from_utf8_lossy(&request[..request.len().min(60)]));
    }
    assert_still_serves(&server);
}

#[test]
fn slowloris_does_not_delay_a_good_client() {
    let server = start(|c| c.handshake_timeout = Duration::from_secs(4));
    let mut slow: Vec<Raw> = (0..200).map(|_| Raw::tcp(&server)).collect();
    for raw in &mut slow {
        raw.write(b"GET / HTTP/1.1\r\nHo");
    }
    let started = Instant::now();
    assert_still_serves(&server);
    assert!(started.elapsed() < Duration::from_secs(2), "good client served in {:?}", started.elapsed());
    for raw in &mut slow {
        raw.write(b"s"); // one byte at a time does not extend the deadline
    }
    let mut last = slow.pop().unwrap();
    assert!(last.read_to_end().is_empty(), "dropped by the handshake deadline");
}

#[test]
fn control_frame_abuse() {
    let server = start(|_| {});
    // Over-long ping payload.
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    raw.frame(0x89, &[0u8; 126]);
    assert_eq!(raw.read_close_code(), Some(1002));
    wait_close(&server, conn);
    // A ping flood from a peer that never reads: answered while it fits, never unbounded.
    let server = start(|c| c.max_buffered_bytes = 64 * 1024);
    let mut flood = Raw::connect(&server);
    let conn = wait_open(&server);
    let ping = masked_frame(0x89, &[b'p'; 125]);
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 20_000).collect();
    flood.write(&burst);
    flood.frame(0x81, b"after the flood");
    let (from, data, _) = wait_message(&server);
    assert_eq!((from, data.as_slice()), (conn, &b"after the flood"[..]));
    assert!(server.handle().buffered_amount(conn).unwrap() <= 64 * 1024 + 256);
    assert_still_serves(&server);
}

#[test]
fn a_message_in_100k_fragments_is_reassembled() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let mut wire = Vec::new();
    for i in 0..100_000u32 {
        let first = match i {
            0 => 0x02,
            99_999 => 0x80,
            _ => 0x00,
        };
        wire.extend(masked_frame(first, &i.to_le_bytes()));
    }
    raw.write(&wire);
    let (from, data, is_text) = wait_message(&server);
    assert_eq!((from, is_text, data.len()), (conn, false, 400_000));
    assert_eq!(&data[4 * 77_777..4 * 77_778], &77_777u32.to_le_bytes());
    assert_still_serves(&server);
}

#[test]
fn declared_huge_frame_and_rst_mid_frame() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let mut header = vec![0x82, 0xff];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    raw.write(&header);
    assert_eq!(raw.read_close_code(), Some(1009));
    assert_eq!(wait_close(&server, conn).0, 1009);

    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let frame = masked_frame(0x82, &[5u8; 10_000]);
    raw.write(&frame[..5_000]);
    // Reset instead of FIN: SO_LINGER with a zero timeout.
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setting a socket option on our own open socket with a correctly sized value.
    unsafe {
        libc::setsockopt(
            raw.stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    drop(raw);
    let (code, _, clean) = wait_close(&server, conn);
    assert_eq!((code, clean), (1006, false));
    assert_still_serves(&server);
}

#[test]
fn garbage_after_the_handshake_and_half_open_peers() {
    let server = start(|c| c.close_timeout = Duration::from_millis(300));
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    raw.write(&[0xff; 64]); // reserved opcode 0xf with FIN and RSV bits
    assert_eq!(raw.read_close_code(), Some(1002));
    assert_eq!(wait_close(&server, conn).0, 1002);
    // The server hangs up even though this peer never closes its side.
    let mut rest = Vec::new();
    let started = Instant::now();
    let _ = raw.stream.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5));
    let stats = server.handle().stats();
    assert_eq!(stats.closes_protocol_error, 1);
    assert!(server.poll(Some(Duration::ZERO)).unwrap().iter().all(|e| !matches!(e, Event::Message { .. })));
    assert_still_serves(&server);
}
