//! The connection machine without sockets: every close path, the limits, the `Failing` order.

use std::time::Duration;

use super::*;
use crate::protocol::encoder::client_frame;
use crate::protocol::deflate::Compressor;

const UPGRADE: &[u8] = b"GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const MASK: [u8; 4] = [1, 2, 3, 4];

/// A connection plus everything it has output so far.
struct Harness {
    conn: Connection,
    config: ServerConfig,
    events: Vec<Event>,
    actions: Vec<Action>,
    queued: usize,
    settled: u64,
    t0: Instant,
}

impl Harness {
    fn new(config: ServerConfig) -> Self {
        let t0 = Instant::now();
        let (mut events, mut actions) = (Vec::new(), Vec::new());
        let mut out = Outputs { events: &mut events, event_base: 0, actions: &mut actions, queued: 0, settled: 0, deflate: None, decoded: &mut Vec::new(), messages_in: 0 };
        let conn = Connection::accepted(7, "127.0.0.1:5000".parse().unwrap(), &config, t0, &mut out);
        Harness { conn, config, events, actions, queued: 0, settled: 0, t0 }
    }

    fn open(config: ServerConfig) -> Self {
        let mut h = Harness::new(config);
        h.bytes(UPGRADE, 0);
        assert!(h.conn.is_open());
        assert!(matches!(h.events.as_slice(), [Event::Open { .. }]), "{:?}", h.events);
        h.take();
        h
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Runs one input and returns the actions (events stay in `self.events`).
    fn run(&mut self, input: impl FnOnce(&mut Connection, &ServerConfig, &mut Outputs)) {
        let mut out = Outputs {
            events: &mut self.events,
            event_base: 0,
            actions: &mut self.actions,
            queued: self.queued,
            settled: self.settled,
            deflate: None,
            decoded: &mut Vec::new(),
            messages_in: 0,
        };
        input(&mut self.conn, &self.config, &mut out);
    }

    fn bytes(&mut self, data: &[u8], ms: u64) {
        let now = self.at(ms);
        self.run(|c, config, out| c.on_bytes(data, config, now, out));
    }

    fn frame(&mut self, first: u8, payload: &[u8], ms: u64) {
        self.bytes(&client_frame(first, payload, MASK), ms);
    }

    fn resume(&mut self) {
        let now = self.t0;
        self.run(|c, config, out| c.on_resume(config, now, out));
    }

    fn timer(&mut self, ms: u64) -> Option<Instant> {
        let now = self.at(ms);
        let mut next = None;
        self.run(|c, config, out| next = c.on_timer(config, now, out));
        next
    }

    fn take(&mut self) -> (Vec<Event>, Vec<Action>) {
        (std::mem::take(&mut self.events), std::mem::take(&mut self.actions))
    }

    /// The queued frames, each as (first header byte, payload) for server frames.
    fn queued_frames(actions: &[Action]) -> Vec<(u8, Vec<u8>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Queue(b) if b.first().is_some_and(|&f| f & 0x80 != 0) => {
                    let len = (b[1] & 0x7f) as usize;
                    assert!(len < 126, "short frames only in these tests");
                    Some((b[0], b[2..2 + len].to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    fn close_codes(actions: &[Action]) -> Vec<Option<u16>> {
        Self::queued_frames(actions)
            .into_iter()
            .filter(|(first, _)| first & 0x0f == 0x8)
            .map(|(_, p)| (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
            .collect()
    }
}

fn close_event(events: &[Event]) -> Option<(u16, String, bool)> {
    events.iter().find_map(|e| match e {
        Event::Close { code, reason, clean, .. } => Some((*code, reason.clone(), *clean)),
        _ => None,
    })
}

fn has(actions: &[Action], want: &Action) -> bool {
    actions.iter().any(|a| a == want)
}

fn position(actions: &[Action], pred: impl Fn(&Action) -> bool) -> usize {
    actions.iter().position(pred).expect("action present")
}

#[test]
fn upgrade_sends_101_and_opens() {
    let mut h = Harness::new(ServerConfig::default());
    h.bytes(&UPGRADE[..20], 0);
    assert!(h.actions.iter().all(|a| matches!(a, Action::Schedule(_))), "nothing before the head is whole");
    h.bytes(&UPGRADE[20..], 1);
    let (events, actions) = h.take();
    assert!(matches!(&actions[1], Action::Queue(b) if b.starts_with(b"HTTP/1.1 101")));
    assert!(has(&actions, &Action::Opened) && has(&actions, &Action::CountHandshakeAccepted));
    assert!(matches!(&events[..], [Event::Open { conn: 7, path, .. }] if path == "/room"));
}

#[test]
fn peer_closes_cleanly() {
    let mut h = Harness::open(ServerConfig::default());
    h.frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e'], 10);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1000, "bye".to_owned(), true)));
    assert_eq!(Harness::close_codes(&actions), vec![Some(1000)], "the peer's code is echoed");
    assert!(has(&actions, &Action::LeftOpen));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Clean, clean: true }));
    assert!(has(&actions, &Action::ShutdownWrite));
    assert!(!h.conn.is_open() && h.conn.is_finishing());
    // Whatever arrives afterwards is ignored, and the finishing deadline removes it.
    h.frame(0x81, b"late", 20);
    assert!(h.take().0.is_empty());
    let deadline = h.config.close_timeout.as_millis() as u64 + 10;
    h.timer(deadline + 1);
    assert!(has(&h.take().1, &Action::Remove));
}

#[test]
fn peer_close_without_code_reports_1005() {
    let mut h = Harness::open(ServerConfig::default());
    h.frame(0x88, b"", 10);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1005, String::new(), true)));
    assert_eq!(Harness::close_codes(&actions), vec![None]);
}

#[test]
fn server_closes_and_peer_answers() {
    let mut h = Harness::open(ServerConfig::default());
    let now = h.at(5);
    h.run(|c, config, out| c.close(4000, "done", config, now, out));
    let (events, actions) = h.take();
    assert!(events.is_empty(), "the host hears of it when the peer answers");
    assert_eq!(Harness::close_codes(&actions), vec![Some(4000)]);
    assert!(has(&actions, &Action::LeftOpen) && !h.conn.is_open());
    // A second close does nothing.
    h.run(|c, config, out| c.close(1000, "", config, now, out));
    assert!(h.take().1.is_empty());
    h.frame(0x88, &[0x0f, 0xa0], 10);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((4000, "done".to_owned(), true)));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Clean, clean: true }));
    assert!(Harness::close_codes(&actions).is_empty(), "no second close frame");
}

#[test]
fn close_timeout_drops_and_reports_the_servers_code() {
    let mut h = Harness::open(ServerConfig { close_timeout: Duration::from_millis(100), ..Default::default() });
    let now = h.at(0);
    h.run(|c, config, out| c.close(1001, "away", config, now, out));
    h.take();
    assert_eq!(h.timer(50), Some(h.at(100)), "not yet");
    assert!(h.take().0.is_empty());
    h.timer(101);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1001, "away".to_owned(), false)));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Timeout, clean: false }));
    assert!(has(&actions, &Action::Remove));
}

#[test]
fn policy_close_counts_as_policy_however_it_ends() {
    let mut h = Harness::open(ServerConfig::default());
    let now = h.at(0);
    h.run(|c, config, out| c.close(1008, "slow", config, now, out));
    h.frame(0x88, &[0x03, 0xf0], 1);
    assert!(has(&h.take().1, &Action::Closed { cause: CloseCause::Policy, clean: true }));
}

#[test]
fn protocol_violation_with_nothing_pending_closes_at_once() {
    let mut h = Harness::open(ServerConfig::default());
    h.frame(0xa1, b"rsv2", 1); // RSV2 set
    let (events, actions) = h.take();
    assert_eq!(close_event(&events).map(|(c, _, clean)| (c, clean)), Some((1002, false)));
    assert_eq!(Harness::close_codes(&actions), vec![Some(1002)]);
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Protocol, clean: false }));
}

#[test]
fn host_replies_to_earlier_messages_go_out_before_the_failing_close() {
    let mut h = Harness::open(ServerConfig::default());
    let mut wire = client_frame(0x81, b"first", MASK);
    wire.extend(client_frame(0x81, &[0xff], MASK)); // invalid UTF-8: 1007
    h.bytes(&wire, 1);
    let (events, actions) = h.take();
    assert!(matches!(&events[..], [Event::Message { data, .. }] if data == b"first"));
    assert!(has(&actions, &Action::Failing), "waits for the host");
    assert!(Harness::close_codes(&actions).is_empty(), "no close frame yet");
    assert!(h.conn.is_open(), "the host may still reply");
    // The host has not polled past the message yet: keep waiting.
    let now = h.at(2);
    let mut waiting = false;
    h.run(|c, config, out| waiting = c.settle(0, false, config, now, out));
    assert!(waiting && h.take().1.is_empty());
    // Input meanwhile is ignored.
    h.frame(0x81, b"ignored", 3);
    assert!(h.take().0.is_empty());
    // The host polled again (event 1 is settled): now the close goes out.
    h.run(|c, config, out| waiting = c.settle(1, false, config, now, out));
    let (events, actions) = h.take();
    assert!(!waiting);
    assert_eq!(close_event(&events).map(|(c, _, clean)| (c, clean)), Some((1007, false)));
    assert_eq!(Harness::close_codes(&actions), vec![Some(1007)]);
    let left = position(&actions, |a| *a == Action::LeftOpen);
    let queued = position(&actions, |a| matches!(a, Action::Queue(_)));
    assert!(left < queued, "sends stop before the close frame is queued");
}

#[test]
fn failing_is_bounded_by_its_deadline() {
    let mut h = Harness::open(ServerConfig { close_timeout: Duration::from_millis(100), ..Default::default() });
    let mut wire = client_frame(0x81, b"first", MASK);
    wire.extend(client_frame(0x81, &vec![b'x'; 10][..], [0; 4])[..2].to_vec()); // unmasked header: 1002
    wire[client_frame(0x81, b"first", MASK).len() + 1] &= 0x7f;
    h.bytes(&wire, 0);
    assert!(has(&h.take().1, &Action::Failing));
    assert_eq!(h.timer(50), Some(h.at(100)));
    h.timer(100);
    let (events, _) = h.take();
    assert_eq!(close_event(&events).map(|(c, _, _)| c), Some(1002));
}

#[test]
fn handshake_timeout_removes_and_counts_a_rejection() {
    let mut h = Harness::new(ServerConfig { handshake_timeout: Duration::from_millis(100), ..Default::default() });
    h.bytes(b"GET / HTTP/1.1\r\n", 10);
    assert_eq!(h.timer(50), Some(h.at(100)));
    h.timer(100);
    let (events, actions) = h.take();
    assert!(events.is_empty(), "the host never knew of it");
    assert!(has(&actions, &Action::CountHandshakeRejected) && has(&actions, &Action::Remove));
}

#[test]
fn ping_then_timeout_reports_1006() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let mut h = Harness::open(config);
    assert_eq!(h.timer(50), Some(h.at(100)), "pings after silence only");
    h.timer(100);
    let (_, actions) = h.take();
    assert_eq!(Harness::queued_frames(&actions), vec![(0x89, vec![])], "a ping");
    assert_eq!(h.timer(120), Some(h.at(150)));
    h.timer(150);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1006, "ping timeout".to_owned(), false)));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Timeout, clean: false }));
    assert!(has(&actions, &Action::LeftOpen) && has(&actions, &Action::Remove));
}

#[test]
fn traffic_answers_a_ping() {
    let config = ServerConfig { ping_interval: Duration::from_millis(100), pong_timeout: Duration::from_millis(50), ..Default::default() };
    let mut h = Harness::open(config);
    h.timer(100);
    h.frame(0x8a, b"", 120); // pong
    h.take();
    assert_eq!(h.timer(149), Some(h.at(220)), "the next ping is due 100 ms after the pong");
}

#[test]
fn pings_are_answered_and_reported_on_request() {
    let mut h = Harness::open(ServerConfig { ping_events: true, ..Default::default() });
    h.frame(0x89, b"t=1", 1);
    h.frame(0x8a, b"t=2", 2);
    let (events, actions) = h.take();
    assert_eq!(Harness::queued_frames(&actions), vec![(0x8a, b"t=1".to_vec())]);
    assert_eq!(events, vec![Event::Ping { conn: 7, data: b"t=1".to_vec() }, Event::Pong { conn: 7, data: b"t=2".to_vec() }]);
    // Without the option nothing is reported.
    let mut h = Harness::open(ServerConfig::default());
    h.frame(0x89, b"x", 1);
    assert!(h.take().0.is_empty());
}

#[test]
fn pongs_stop_while_the_queue_is_full() {
    let mut h = Harness::open(ServerConfig { max_buffered_bytes: 1000, ..Default::default() });
    h.queued = 2000;
    h.frame(0x89, b"flood", 1);
    assert!(Harness::queued_frames(&h.take().1).is_empty());
}

#[test]
fn oversized_messages_get_1009() {
    let mut h = Harness::open(ServerConfig { max_message_size: 10, ..Default::default() });
    h.frame(0x82, &[0u8; 11], 1);
    let (events, actions) = h.take();
    assert_eq!(close_event(&events).map(|(c, _, _)| c), Some(1009));
    assert_eq!(Harness::close_codes(&actions), vec![Some(1009)]);
}

#[test]
fn rate_limits_drop_or_close() {
    let config = ServerConfig { max_messages_per_sec: 2, rate_limit_policy: RateLimitPolicy::Drop, ..Default::default() };
    let mut h = Harness::open(config);
    for _ in 0..3 {
        h.frame(0x81, b"m", 1);
    }
    let (events, actions) = h.take();
    assert_eq!(events.len(), 2);
    assert_eq!(actions.iter().filter(|a| **a == Action::CountRateLimited).count(), 1);
    let config = ServerConfig { max_messages_per_sec: 1, ..Default::default() };
    let mut h = Harness::open(config);
    h.frame(0x81, b"m", 1);
    h.frame(0x81, b"m", 1);
    let (_, actions) = h.take();
    assert_eq!(Harness::close_codes(&actions), vec![Some(1008)]);
}

#[test]
fn stop_closes_open_connections_with_1001_then_abort_reports_them() {
    let mut h = Harness::open(ServerConfig::default());
    let (now, deadline) = (h.at(0), h.at(300));
    h.run(|c, config, out| c.stop(deadline, config, now, out));
    let (_, actions) = h.take();
    assert_eq!(Harness::close_codes(&actions), vec![Some(1001)]);
    assert_eq!(h.timer(10), Some(deadline), "the stop deadline, not the close timeout");
    h.run(|c, _, out| c.abort(now, out));
    let (events, actions) = h.take();
    assert_eq!(close_event(&events).map(|(c, _, _)| c), Some(1001));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Server, clean: false }));
    // Handshakes in progress are just dropped.
    let mut h = Harness::new(ServerConfig::default());
    h.run(|c, config, out| c.stop(deadline, config, now, out));
    assert!(has(&h.take().1, &Action::Remove));
}

#[test]
fn terminate_drops_without_a_handshake() {
    let mut h = Harness::open(ServerConfig::default());
    let now = h.at(1);
    h.run(|c, _, out| c.terminate(now, out));
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1006, "terminated".to_owned(), false)));
    assert!(Harness::close_codes(&actions).is_empty(), "no close frame");
    assert!(has(&actions, &Action::Remove));
    // After a close too: the pending CLOSE is reported as the termination.
    let mut h = Harness::open(ServerConfig::default());
    let now = h.at(0);
    h.run(|c, config, out| c.close(1000, "", config, now, out));
    h.take();
    h.run(|c, _, out| c.terminate(now, out));
    assert_eq!(close_event(&h.take().0).map(|(c, _, _)| c), Some(1006));
}

#[test]
fn disconnect_while_open_reports_1006() {
    let mut h = Harness::open(ServerConfig::default());
    let now = h.at(1);
    h.run(|c, _, out| c.on_disconnect(now, out));
    let (events, actions) = h.take();
    assert_eq!(close_event(&events), Some((1006, "connection lost".to_owned(), false)));
    assert!(has(&actions, &Action::Closed { cause: CloseCause::Dropped, clean: false }));
}

#[test]
fn approval_accept_reject_and_timeout() {
    let config = ServerConfig { approve_handshakes: true, approval_timeout: Duration::from_millis(100), ..Default::default() };
    let mut h = Harness::new(config.clone());
    h.bytes(UPGRADE, 0);
    let (events, actions) = h.take();
    assert!(matches!(&events[..], [Event::Handshake { .. }]));
    assert!(has(&actions, &Action::AwaitApproval) && h.conn.awaits_approval());
    let now = h.at(1);
    h.run(|c, config, out| c.accept(None, config, now, out));
    let (events, actions) = h.take();
    assert!(matches!(&events[..], [Event::Open { .. }]));
    assert!(has(&actions, &Action::Answered) && has(&actions, &Action::Opened));

    let mut h = Harness::new(config.clone());
    h.bytes(UPGRADE, 0);
    h.take();
    h.run(|c, config, out| c.reject(401, "who are you", config, now, out));
    let (_, actions) = h.take();
    assert!(matches!(&actions[1], Action::CountHandshakeRejected));
    assert!(actions.iter().any(|a| matches!(a, Action::Queue(b) if b.starts_with(b"HTTP/1.1 401"))));

    let mut h = Harness::new(config);
    h.bytes(UPGRADE, 0);
    h.take();
    h.timer(100);
    let (_, actions) = h.take();
    assert!(actions.iter().any(|a| matches!(a, Action::Queue(b) if b.starts_with(b"HTTP/1.1 503"))));
}

#[test]
fn plain_http_is_served_and_bad_requests_refused() {
    let mut h = Harness::new(ServerConfig::default());
    h.bytes(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    let (_, actions) = h.take();
    assert!(matches!(&actions[1], Action::ServeHttp { method, target, .. } if method == "GET" && target == "/index.html"));
    assert!(has(&actions, &Action::ShutdownWrite));
    let mut h = Harness::new(ServerConfig::default());
    h.bytes(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", 0);
    let (_, actions) = h.take();
    assert!(actions.iter().any(|a| matches!(a, Action::Queue(b) if b.starts_with(b"HTTP/1.1 400"))), "no key: 400");
    let mut h = Harness::new(ServerConfig { allowed_origins: vec!["https://good".into()], ..Default::default() });
    let request = String::from_utf8(UPGRADE.to_vec()).unwrap().replace("Host: x\r\n", "Host: x\r\nOrigin: https://evil\r\n");
    h.bytes(request.as_bytes(), 0);
    let (_, actions) = h.take();
    assert!(actions.iter().any(|a| matches!(a, Action::Queue(b) if b.starts_with(b"HTTP/1.1 403"))));
}

// ---- inflating is bounded per call ----------------------------------------------------------

const DEFLATE_UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

fn deflate_harness() -> Harness {
    let config = ServerConfig { compression: extensions::CompressionMode::Dedicated, max_message_size: 8 << 20, ..ServerConfig::default() };
    let mut h = Harness::new(config);
    h.bytes(DEFLATE_UPGRADE, 0);
    assert!(h.conn.codec.is_some(), "deflate negotiated: {:?}", h.events);
    h.take();
    h
}

/// A compressed text frame (RSV1) of `text`, with context takeover as the client compresses.
fn compressed_frame(compressor: &mut Compressor, text: &[u8]) -> Vec<u8> {
    client_frame(0xc1, &compressor.compress(text).expect("compressible"), MASK)
}

fn takeover_compressor() -> Compressor {
    use crate::protocol::deflate::CompressorSettings;
    Compressor::new(CompressorSettings { window_bits: 15, mem_level: 8, level: 6, threshold: 0, no_context_takeover: false })
}

fn messages(events: &[Event]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_long_compressed_message_is_inflated_over_several_calls_and_input_after_it_waits() {
    let mut h = deflate_harness();
    let mut compressor = takeover_compressor();
    let big = vec![b'a'; 3 * INFLATE_BUDGET + 1000];
    let mut input = compressed_frame(&mut compressor, &big);
    input.extend(client_frame(0x89, b"p", MASK)); // a ping after it
    let after = b"after the big one, with context; after the big one, with context".to_vec();
    input.extend(compressed_frame(&mut compressor, &after));
    h.bytes(&input, 1);
    let (events, actions) = h.take();
    assert!(messages(&events).is_empty(), "not done in one call");
    assert!(has(&actions, &Action::ReadLater) && h.conn.has_backlog());
    assert!(Harness::queued_frames(&actions).is_empty(), "the ping waits behind the message");
    let mut calls = 1;
    let mut got = Vec::new();
    let mut pong_after = None;
    while h.conn.has_backlog() {
        calls += 1;
        assert!(calls < 20, "ends");
        h.resume();
        let (events, actions) = h.take();
        got.extend(messages(&events));
        if Harness::queued_frames(&actions).iter().any(|(first, _)| *first == 0x8a) {
            pong_after = Some(got.len());
        }
        assert_eq!(has(&actions, &Action::ReadLater), h.conn.has_backlog());
    }
    assert!(calls >= 4, "{calls} calls for {} bytes", big.len());
    assert!(got.len() == 2 && got[0] == big && got[1] == after, "{:?}", got.iter().map(Vec::len).collect::<Vec<_>>());
    assert_eq!(pong_after, Some(1), "the pong came between the two messages");
    assert!(h.conn.is_open());
}

#[test]
fn many_small_compressed_messages_share_one_budget_per_call() {
    let mut h = deflate_harness();
    let mut compressor = takeover_compressor();
    let each = INFLATE_BUDGET / 4;
    let sent: Vec<Vec<u8>> = (0..12u8).map(|i| vec![b'a' + i; each]).collect();
    let input: Vec<u8> = sent.iter().flat_map(|m| compressed_frame(&mut compressor, m)).collect();
    h.bytes(&input, 1);
    let mut got = messages(&h.take().0);
    assert!((3..=4).contains(&got.len()), "{} messages inflated in the first call", got.len());
    while h.conn.has_backlog() {
        h.resume();
        got.extend(messages(&h.take().0));
    }
    assert!(got == sent, "all of them, in order: {:?}", got.iter().map(|m| (m[0], m.len())).collect::<Vec<_>>());
}

#[test]
fn a_bomb_in_the_backlog_still_closes_1009_and_a_protocol_error_after_it_waits_its_turn() {
    let config = ServerConfig { compression: extensions::CompressionMode::Dedicated, max_message_size: 1 << 20, ..ServerConfig::default() };
    let mut h = Harness::new(config);
    h.bytes(DEFLATE_UPGRADE, 0);
    h.take();
    let mut compressor = takeover_compressor();
    let mut input = compressed_frame(&mut compressor, &vec![b'x'; 900 * 1024]);
    input.extend(compressed_frame(&mut compressor, &vec![b'y'; 2 << 20])); // over the limit
    h.bytes(&input, 1);
    for _ in 0..20 {
        if !h.conn.has_backlog() {
            break;
        }
        h.resume();
    }
    let (events, actions) = h.take();
    assert_eq!(messages(&events).len(), 1, "the first message is delivered");
    assert!(!h.conn.has_backlog());
    assert_eq!(h.conn.codec.as_ref().map(|c| c.inflater.as_ref().is_some_and(|i| i.is_busy())), Some(false));
    // The close waits (Failing) until the host has settled the message before it.
    assert!(has(&actions, &Action::Failing), "{actions:?}");
    let settled = h.conn.last_message_seq;
    let now = h.at(2);
    h.run(|c, config, out| {
        c.settle(settled, false, config, now, out);
    });
    let (_, later) = h.take();
    let codes: Vec<_> = Harness::close_codes(&actions).into_iter().chain(Harness::close_codes(&later)).collect();
    assert_eq!(codes, vec![Some(1009)]);
}
