//! Every configured limit answers with the right protocol response, and a good client is
//! still served afterwards.

mod common;
use std::time::{Duration, Instant};

use common::*;
use wsembed::Event;

#[test]
fn max_frame_size_closes_1009_from_the_header_alone() {
    let server = start(|c| c.max_frame_size = 1000);
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    // Only the header of a 2^62-byte frame: refused without waiting for (or allocating) it.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    raw.write(&header);
    assert_eq!(raw.read_close_code(), Some(1009));
    assert_eq!(wait_close(&server, conn).0, 1009);
    assert_still_serves(&server);
}

#[test]
fn fragments_adding_up_past_max_message_size_close_1009() {
    let server = start(|c| c.max_message_size = 10_000);
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    raw.frame(0x02, &[0u8; 6000]);
    raw.frame(0x00, &[0u8; 6000]);
    assert_eq!(raw.read_close_code(), Some(1009));
    assert_eq!(wait_close(&server, conn).0, 1009);
}

#[test]
fn max_connections_answers_503() {
    let server = start(|c| c.max_connections = 2);
    let _a = connect(&server);
    let _b = connect(&server);
    wait_open(&server);
    wait_open(&server);
    let mut third = Raw::tcp(&server);
    let response = String::from_utf8_lossy(&third.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
}

#[test]
fn silent_and_slow_handshakes_are_dropped_while_good_clients_get_through() {
    let server = start(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut silent = Raw::tcp(&server);
    let mut slow = Raw::tcp(&server);
    slow.write(b"GET / HTTP/1.1\r\nHost: x\r\n"); // never finishes
    assert_still_serves(&server);
    let started = Instant::now();
    assert!(silent.read_to_end().is_empty());
    assert!(slow.read_to_end().is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "dropped by the handshake timeout");
}

#[test]
fn oversized_request_head_gets_431() {
    let server = start(|c| c.max_header_bytes = 1024);
    let mut raw = Raw::tcp(&server);
    raw.write(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(4000)).as_bytes());
    let response = String::from_utf8_lossy(&raw.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    let mut garbage = Raw::tcp(&server);
    garbage.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    let response = String::from_utf8_lossy(&garbage.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert_still_serves(&server);
}

#[test]
fn unanswered_pings_close_with_1006_ping_timeout() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.pong_timeout = Duration::from_millis(300);
    });
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let (first, _) = raw.read_frame();
    assert_eq!(first, 0x89, "server pings an idle client");
    // No pong: the server gives up.
    let (code, reason, clean) = wait_close(&server, conn);
    assert_eq!((code, reason.as_str(), clean), (1006, "ping timeout", false));
}

#[test]
fn answered_pings_keep_the_connection() {
    let server = start(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.pong_timeout = Duration::from_millis(300);
    });
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    for _ in 0..5 {
        let (first, payload) = raw.read_frame();
        assert_eq!(first, 0x89);
        raw.frame(0x8a, &payload);
    }
    assert!(server.handle().buffered_amount(conn).is_ok(), "still open after 5 ping rounds");
}

#[test]
fn upgrade_required_without_static_dir() {
    let server = start(|_| {});
    let mut raw = Raw::tcp(&server);
    raw.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = String::from_utf8_lossy(&raw.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(response.contains("Sec-WebSocket-Version: 13"), "{response}");
    let mut old = Raw::tcp(&server);
    old.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    let response = String::from_utf8_lossy(&old.read_to_end()).into_owned();
    assert!(response.starts_with("HTTP/1.1 426") && response.contains("Sec-WebSocket-Version: 13"), "{response}");
}

#[test]
fn stop_flushes_queued_messages_then_sends_1001() {
    let server = start(|_| {});
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    let handle = server.handle();
    for i in 0..2000 {
        handle.send_text(conn, &format!("message {i} {}", "x".repeat(500))).unwrap();
    }
    let reader = std::thread::spawn(move || {
        let mut texts = 0;
        loop {
            let (first, payload) = raw.read_frame();
            match first & 0x0f {
                0x1 => {
                    assert!(String::from_utf8(payload).unwrap().starts_with(&format!("message {texts} ")));
                    texts += 1;
                }
                0x8 => {
                    raw.frame(0x88, &payload[..2]);
                    return (texts, u16::from_be_bytes([payload[0], payload[1]]));
                }
                _ => {}
            }
        }
    });
    server.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(reader.join().unwrap(), (2000, 1001));
    let closes: Vec<_> = std::iter::from_fn(|| server.poll(Some(Duration::ZERO)).ok())
        .flatten()
        .filter(|e| matches!(e, Event::Close { .. }))
        .collect();
    assert!(matches!(closes.as_slice(), [Event::Close { code: 1001, clean: true, .. }]), "{closes:?}");
    assert!(matches!(server.handle().send_text(conn, "x"), Err(wsembed::Error::Stopped | wsembed::Error::NoSuchConnection)));
    assert!(matches!(server.stop(Duration::ZERO), Err(wsembed::Error::Stopped)));
    assert!(matches!(server.poll(Some(Duration::ZERO)), Err(wsembed::Error::Stopped)));
}

#[test]
fn a_client_that_never_reads_hits_the_buffer_cap_not_memory() {
    client_that_never_reads_hits_the_cap(true);
}

/// Host-driven mode: the sends made between polls go straight into the queue, past the same cap.
#[test]
fn a_client_that_never_reads_hits_the_buffer_cap_in_host_driven_mode() {
    client_that_never_reads_hits_the_cap(false);
}

fn client_that_never_reads_hits_the_cap(loop_thread: bool) {
    let server = start(|c| {
        c.max_buffered_bytes = 1 << 20;
        c.loop_thread = loop_thread;
    });
    let (raw, conn) = Raw::connect_polling(&server); // never reads
    let handle = server.handle();
    let chunk = vec![7u8; 64 * 1024];
    let deadline = Instant::now() + DEADLINE;
    let mut refused = false;
    while Instant::now() < deadline {
        match handle.send_binary(conn, &chunk) {
            // (Host-driven: a turn writes what the socket takes.)
            Ok(()) => server.service(Some(Duration::ZERO)).unwrap(),
            Err(wsembed::Error::WouldBlock) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused, "sending is refused once the cap is reached");
    assert!(handle.buffered_amount(conn).unwrap() <= (1 << 20) + chunk.len() + 16);
    // Reading drains the queue and the host hears about it.
    let reader = std::thread::spawn(move || {
        let mut raw = raw;
        let mut total = 0;
        while total < 8 * 64 * 1024 {
            total += raw.read_frame().1.len();
        }
        raw
    });
    wait_for(&server, |e| matches!(e, Event::Drain { conn: c } if *c == conn).then_some(()));
    drop(reader.join().unwrap());
}

#[test]
fn a_lagging_host_pauses_reading_instead_of_buffering_without_bound() {
    let server = start(|c| c.max_pending_event_bytes = 64 * 1024);
    let mut raw = Raw::connect(&server);
    let conn = wait_open(&server);
    const COUNT: usize = 4000;
    let writer = std::thread::spawn(move || {
        let frame = masked_frame(0x82, &[3u8; 1000]);
        for _ in 0..COUNT {
            raw.write(&frame); // blocks once the server stops reading
        }
        raw
    });
    // The host does not poll for a while: what the server has read stays bounded.
    let watch_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < watch_until {
        let read = server.handle().stats().bytes_in;
        assert!(read < 64 * 1024 + 2 * 256 * 1024, "server read {read} bytes for a host that does not poll");
        std::thread::yield_now();
    }
    // Then it catches up and loses nothing.
    let mut received = 0;
    while received < COUNT {
        let (from, data, _) = wait_message(&server);
        assert_eq!((from, data.len()), (conn, 1000));
        received += 1;
    }
    drop(writer.join().unwrap());
}

/// One `accept` call takes a bounded batch of connections; the rest of a burst (which the
/// edge-triggered listener does not announce again) must still be taken on later turns.
#[test]
fn a_burst_of_connects_larger_than_an_accept_batch_all_open() {
    for loop_thread in [true, false] {
        let server = start(|c| c.loop_thread = loop_thread);
        const COUNT: usize = 300;
        // Every connect and request is in the kernel before the loop looks (host-driven: no
        // turn runs until the first poll below; threaded: most of them).
        let mut raws: Vec<Raw> = (0..COUNT).map(|_| Raw::tcp(&server)).collect();
        for raw in &mut raws {
            raw.write(UPGRADE);
        }
        let mut opened = std::collections::HashSet::new();
        while opened.len() < COUNT {
            opened.insert(wait_open(&server));
        }
        for raw in &mut raws {
            assert!(raw.read_http_head().starts_with("HTTP/1.1 101"));
        }
        server.stop(Duration::from_secs(1)).unwrap();
    }
}
