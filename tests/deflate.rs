//! permessage-deflate through the whole engine, with hand-built frames (real clients are in the
//! Python and Node suites and the Autobahn runs): negotiation, compressed both ways, a broadcast
//! compressed once, and hostile input (bomb, corrupt data, RSV1 where it is not allowed).

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsembed::config::CompressionMode;
use wsembed::protocol::deflate::{Compressor, CompressorSettings, Inflater, InflaterSettings};
use wsembed::{Event, MessageKind};

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// Connects raw with `extra` request headers; returns the socket and the 101 head.
fn upgrade(server: &wsembed::Server, extra: &str) -> (Raw, String) {
    let mut raw = Raw::tcp(server);
    raw.write(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .as_bytes(),
    );
    let head = raw.read_http_head();
    (raw, head)
}

fn compressor() -> Compressor {
    Compressor::new(CompressorSettings { window_bits: 15, mem_level: 8, level: 6, threshold: 0, no_context_takeover: true })
}

fn inflate(data: &[u8]) -> Vec<u8> {
    Inflater::new(InflaterSettings { no_context_takeover: true }).inflate(data.to_vec(), false, 64 << 20).unwrap()
}

fn json(n: usize) -> String {
    (0..n).map(|i| format!("{{\"player\":{i},\"x\":1.5,\"y\":2.5,\"state\":\"running\"}}")).collect::<Vec<_>>().join(",")
}

#[test]
fn shared_mode_negotiates_and_compresses_both_ways() {
    let server = start(|c| c.compression = CompressionMode::Shared);
    let (mut raw, head) = upgrade(&server, OFFER);
    assert!(head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), "{head}");
    let extensions = wait_for(&server, |e| match e {
        Event::Open { extensions, .. } => Some(extensions.clone()),
        _ => None,
    });
    assert!(extensions.unwrap().starts_with("permessage-deflate"));
    // A compressed message from the client (RSV1 + text) arrives inflated.
    let text = json(20);
    let compressed = compressor().compress(text.as_bytes()).unwrap();
    assert!(compressed.len() < text.len() / 2);
    raw.frame(0xc1, &compressed);
    let (conn, data, is_text) = wait_message(&server);
    assert_eq!((data.as_slice(), is_text), (text.as_bytes(), true));
    // The server's messages over the threshold go out compressed; short ones plain.
    server.handle().send_text(conn, &text).unwrap();
    server.handle().send_text(conn, "hi").unwrap();
    let (first, payload) = raw.read_frame();
    assert_eq!(first, 0xc1, "FIN + RSV1 + text");
    assert_eq!(inflate(&payload), text.as_bytes());
    assert_eq!(raw.read_frame(), (0x81, b"hi".to_vec()), "under compression_threshold: plain");
}

#[test]
fn a_broadcast_is_compressed_once_and_plain_for_peers_without_deflate() {
    let server = start(|c| c.compression = CompressionMode::Shared);
    let (mut a, _) = upgrade(&server, OFFER);
    let (mut b, _) = upgrade(&server, OFFER);
    let (mut plain, head) = upgrade(&server, "");
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "declined by leaving it out");
    for _ in 0..3 {
        wait_open(&server);
    }
    let text = json(10);
    server.handle().broadcast(MessageKind::Text, text.as_bytes(), None).unwrap();
    let (fa, pa) = a.read_frame();
    let (fb, pb) = b.read_frame();
    assert_eq!((fa, fb), (0xc1, 0xc1));
    assert_eq!(pa, pb, "the same compressed bytes for both");
    assert_eq!(inflate(&pa), text.as_bytes());
    assert_eq!(plain.read_frame(), (0x81, text.into_bytes()), "the peer that did not negotiate gets it plain");
}

#[test]
fn dedicated_mode_keeps_context_between_messages() {
    let server = start(|c| c.compression = CompressionMode::Dedicated);
    let (mut raw, head) = upgrade(&server, OFFER);
    assert!(head.contains("permessage-deflate") && !head.contains("server_no_context_takeover"), "{head}");
    let conn = wait_open(&server);
    let text = json(20);
    let mut inflater = Inflater::new(InflaterSettings { no_context_takeover: false });
    let mut sizes = Vec::new();
    for _ in 0..3 {
        server.handle().send_text(conn, &text).unwrap();
        let (first, payload) = raw.read_frame();
        assert_eq!(first, 0xc1);
        sizes.push(payload.len());
        assert_eq!(inflater.inflate(payload, true, 1 << 20).unwrap(), text.as_bytes());
    }
    assert!(sizes[1] < sizes[0] / 2, "the second message refers back to the first: {sizes:?}");
}

#[test]
fn hostile_compressed_input_gets_the_right_close_codes() {
    let server = start(|c| {
        c.compression = CompressionMode::Shared;
        c.max_message_size = 1 << 20;
    });
    // A bomb: 64 MiB of zeros in a few tens of KiB, against a 1 MiB limit.
    let bomb = compressor().compress(&vec![0u8; 64 << 20]).unwrap();
    assert!(bomb.len() < 100_000);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("bomb", [vec![0xc2u8], bomb].concat(), 1009),
        ("corrupt", vec![0xc2, 0xff, 0xff, 0xff, 0x00, 0x12], 1007),
        ("rsv1 on continuation", vec![0x41, b'a', 0xc0, b'b'], 1002),
        ("rsv1 on a ping", vec![0xc9, b'p'], 1002),
    ];
    for (name, spec, code) in cases {
        let (mut raw, _) = upgrade(&server, OFFER);
        let conn = wait_open(&server);
        write_frames(&mut raw, &spec);
        let started = Instant::now();
        assert_eq!(raw.read_close_code(), Some(code), "{name}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");
        wait_close(&server, conn);
    }
    // Without negotiation RSV1 is a protocol error.
    let (mut raw, _) = upgrade(&server, "");
    wait_open(&server);
    raw.frame(0xc1, &compressor().compress(b"hello hello hello").unwrap());
    assert_eq!(raw.read_close_code(), Some(1002));
    // A malformed offer fails the handshake with 400.
    let (_raw, head) = upgrade(&server, "Sec-WebSocket-Extensions: permessage-deflate; =\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_still_serves(&server);
}

#[test]
fn long_compressed_messages_from_two_peers_are_inflated_over_turns_without_mixing() {
    for mode in [CompressionMode::Shared, CompressionMode::Dedicated] {
        let server = start(|c| {
            c.compression = mode;
            c.max_message_size = 16 << 20;
        });
        let (mut a, _) = upgrade(&server, OFFER);
        let id_a = wait_open(&server);
        let (mut b, _) = upgrade(&server, OFFER);
        let id_b = wait_open(&server);
        // Each inflates to many times the per-turn inflate budget, so both are half done at
        // the same time (in shared mode each leaves the loop's inflater for its connection).
        let big_a = vec![b'a'; 6 << 20];
        let big_b = json(40_000).into_bytes();
        let small = json(3).into_bytes();
        let (za, zb, zs) = (compressor().compress(&big_a).unwrap(), compressor().compress(&big_b).unwrap(), compressor().compress(&small).unwrap());
        let mut both = masked_frame(0xc2, &za);
        both.extend(masked_frame(0xc1, &zs));
        a.write(&both);
        b.write(&masked_frame(0xc2, &zb));
        let mut got: Vec<(u64, usize, bool)> = Vec::new();
        for _ in 0..3 {
            let (conn, data, is_text) = wait_message(&server);
            let expected: &[u8] = match (conn, is_text) {
                (c, false) if c == id_a => &big_a,
                (c, true) if c == id_a => &small,
                (c, false) if c == id_b => &big_b,
                other => panic!("unexpected message {other:?}"),
            };
            assert!(data == expected, "{mode:?}: message of {} bytes from {conn} differs", data.len());
            got.push((conn, data.len(), is_text));
        }
        let order_a: Vec<bool> = got.iter().filter(|m| m.0 == id_a).map(|m| m.2).collect();
        assert_eq!(order_a, vec![false, true], "{mode:?}: per-connection order kept");
        assert_still_serves(&server);
    }
}

/// `spec` is a list of (first byte, payload) frames packed as [first, payload...]: the bomb and
/// corrupt cases are one frame; the continuation case is two one-byte frames.
fn write_frames(raw: &mut Raw, spec: &[u8]) {
    match spec {
        [first @ (0x41 | 0xc9), a, rest @ ..] if rest.len() == 2 => {
            raw.frame(*first, &[*a]);
            raw.frame(rest[0], &rest[1..]);
        }
        [0xc9, payload @ ..] => raw.frame(0xc9, payload),
        [first, payload @ ..] => raw.frame(*first, payload),
        [] => {}
    }
}
