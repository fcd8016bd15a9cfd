//! The Redis bridge against a real `redis-server` (one per test, on a free port, killed by
//! PID when the test ends). Every wait is a condition with a deadline.
//!
//! Needs `redis-server` on PATH (Debian: `apt-get install redis-server`).
//! Benchmark: `cargo test --release --test redis_bridge -- --ignored --nocapture bench`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use wsembed::bridge::{Bridge, BridgeConfig, BridgeEvent};

// ---------------------------------------------------------------------------------------
// redis-server, started and stopped by PID

use common::redis::{free_port, RedisServer};

// ---------------------------------------------------------------------------------------
// Bridges whose events land in a channel

struct Node {
    bridge: Bridge,
    events: Receiver<BridgeEvent>,
}

fn node_with(config: BridgeConfig) -> Node {
    let (tx, events) = crossbeam_channel::unbounded();
    let bridge = Bridge::start(config, Box::new(move |e| drop(tx.send(e)))).unwrap();
    Node { bridge, events }
}

fn node(url: &str) -> Node {
    node_with(BridgeConfig { url: url.into(), prefix: "wst".into(), ..Default::default() })
}

/// A message as the test sees it: (topic, is_text, payload).
type Got = (Option<String>, bool, Vec<u8>);

impl Node {
    /// Waits for an event matching `pred`, keeping messages seen on the way in `seen`.
    fn wait_event(
        &self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&BridgeEvent) -> bool,
    ) -> BridgeEvent {
        let deadline = Instant::now() + within;
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(event) if pred(&event) => return event,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {within:?}"),
                Err(RecvTimeoutError::Disconnected) => unreachable!(),
            }
        }
    }

    fn wait_up(&self, within: Duration) {
        self.wait_event("Up", within, |e| matches!(e, BridgeEvent::Up));
        assert!(self.bridge.is_up());
    }

    fn wait_down(&self, within: Duration) -> String {
        match self.wait_event("Down", within, |e| matches!(e, BridgeEvent::Down { .. })) {
            BridgeEvent::Down { reason } => reason,
            _ => unreachable!(),
        }
    }

    /// Collects messages until one whose payload is `last` (included).
    fn messages_until(&self, last: &[u8], within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(BridgeEvent::Message { topic, is_text, payload }) => {
                    let done = payload[..] == *last;
                    got.push((topic.map(|t| t.to_string()), is_text, payload.to_vec()));
                    if done {
                        return got;
                    }
                }
                Ok(other) => panic!("unexpected event {other:?} (after {} messages)", got.len()),
                Err(_) => panic!(
                    "no message {:?} within {within:?}; got {}",
                    String::from_utf8_lossy(last),
                    got.len()
                ),
            }
        }
    }

    /// No event at all is pending.
    fn assert_quiet(&self) {
        if let Ok(e) = self.events.try_recv() {
            panic!("unexpected event {e:?}");
        }
    }
}

fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const UP: Duration = Duration::from_secs(5);
const MSG: Duration = Duration::from_secs(5);
/// Backoff cap (5 s) + connect + a margin for a loaded machine.
const RECONNECT: Duration = Duration::from_secs(9);

// ---------------------------------------------------------------------------------------

#[test]
fn publish_reaches_the_other_node_exactly_once_and_not_its_origin() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    assert_ne!(a.bridge.node_id(), b.bridge.node_id());
    a.wait_up(UP);
    b.wait_up(UP);
    a.bridge.subscribe("room");
    b.bridge.subscribe("room");
    eventually("both subscribed", UP, || redis.numsub("wst:t:room") == 2);

    assert!(a.bridge.publish(Some("room"), true, b"hello"));
    assert!(a.bridge.publish(Some("room"), false, &[0, 1, 2, 255]));
    assert!(a.bridge.publish(Some("room"), true, b"end-a"));
    let got = b.messages_until(b"end-a", MSG);
    assert_eq!(
        got,
        vec![
            (Some("room".into()), true, b"hello".to_vec()),
            (Some("room".into()), false, vec![0, 1, 2, 255]),
            (Some("room".into()), true, b"end-a".to_vec()),
        ]
    );
    // A's subscriber saw its own three messages before B's reply (Redis keeps its order):
    // if echoes were not dropped, they would come first here.
    assert!(b.bridge.publish(Some("room"), true, b"end-b"));
    assert_eq!(
        a.messages_until(b"end-b", MSG),
        vec![(Some("room".into()), true, b"end-b".to_vec())]
    );
    b.assert_quiet();
    eventually("counters", MSG, || {
        a.bridge.stats().published == 3 && b.bridge.stats().published == 1
    });
    let (sa, sb) = (a.bridge.stats(), b.bridge.stats());
    assert_eq!((sa.received, sb.received), (1, 3));
    assert_eq!((sa.dropped, sb.dropped, sa.broken, sb.broken), (0, 0, 0, 0));
    assert_eq!((sa.reconnects, sb.reconnects), (0, 0));
}

#[test]
fn a_thousand_messages_arrive_in_order_per_topic() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    a.wait_up(UP);
    b.wait_up(UP);
    b.bridge.subscribe("x");
    b.bridge.subscribe("y");
    eventually("subscribed", UP, || redis.channels("wst:t:*").len() == 2);
    for i in 0..1000 {
        let topic = if i % 3 == 0 { "y" } else { "x" };
        assert!(a.bridge.publish(Some(topic), true, format!("{i}").as_bytes()));
    }
    assert!(a.bridge.publish(None, true, b"done"));
    let got = b.messages_until(b"done", MSG);
    assert_eq!(got.len(), 1001);
    // One origin, one queue, one connection: the order holds per topic and overall.
    for (i, (topic, is_text, payload)) in got[..1000].iter().enumerate() {
        assert_eq!(topic.as_deref(), Some(if i % 3 == 0 { "y" } else { "x" }));
        assert!(is_text);
        assert_eq!(payload, format!("{i}").as_bytes());
    }
    assert_eq!(got[1000].0, None);
    eventually("published", MSG, || a.bridge.stats().published == 1001);
    assert_eq!(b.bridge.stats().received, 1001);
}

#[test]
fn broadcast_reaches_every_other_node() {
    let redis = RedisServer::start();
    let nodes: Vec<Node> = (0..3).map(|_| node(&redis.url())).collect();
    for n in &nodes {
        n.wait_up(UP);
    }
    // The broadcast channel is subscribed without being asked, once per node.
    assert_eq!(redis.numsub("wst:b"), 3);
    assert!(redis.channels("wst:t:*").is_empty());
    assert!(nodes[0].bridge.publish(None, true, b"to all"));
    for n in &nodes[1..] {
        assert_eq!(n.messages_until(b"to all", MSG), vec![(None, true, b"to all".to_vec())]);
    }
    // Node 0 hears node 1's broadcast but not its own, which came earlier.
    assert!(nodes[1].bridge.publish(None, false, b"from 1"));
    assert_eq!(nodes[0].messages_until(b"from 1", MSG), vec![(None, false, b"from 1".to_vec())]);
}

#[test]
fn a_topic_is_subscribed_only_while_wanted_and_released_after_the_linger() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    a.wait_up(UP);
    b.wait_up(UP);
    assert!(redis.channels("wst:t:*").is_empty());

    // Publishing to a topic nobody wants costs no subscription.
    assert!(b.bridge.publish(Some("nobody"), true, b"lost"));
    eventually("published", MSG, || b.bridge.stats().published == 1);
    assert!(redis.channels("wst:t:*").is_empty());

    a.bridge.subscribe("news");
    eventually("subscribed", UP, || redis.channels("wst:t:*") == ["wst:t:news"]);
    a.bridge.unsubscribe("news");
    let released = Instant::now();
    // During the linger the subscription stays, but its messages are not passed on.
    assert!(b.bridge.publish(Some("news"), true, b"late"));
    eventually("unsubscribed after the linger", Duration::from_secs(6), || {
        redis.channels("wst:t:*").is_empty()
    });
    let lingered = released.elapsed();
    assert!(lingered >= Duration::from_millis(1400), "unsubscribed after {lingered:?}");
    // (The broadcast below arrives after "late" would have.)
    assert!(b.bridge.publish(None, true, b"mark"));
    assert_eq!(a.messages_until(b"mark", MSG), vec![(None, true, b"mark".to_vec())]);

    // A subscriber that comes back during the linger cancels the unsubscribe.
    a.bridge.subscribe("news");
    eventually("subscribed again", UP, || redis.channels("wst:t:*") == ["wst:t:news"]);
    a.bridge.unsubscribe("news");
    std::thread::sleep(Duration::from_millis(300));
    a.bridge.subscribe("news");
    // Waits past the first linger's deadline to show that nothing happens.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(redis.channels("wst:t:*"), ["wst:t:news"]);
    assert!(b.bridge.publish(Some("news"), true, b"still here"));
    assert_eq!(a.messages_until(b"still here", MSG).len(), 1);
}

#[test]
fn churn_leaves_no_subscription_behind() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    a.wait_up(UP);
    b.wait_up(UP);
    a.bridge.subscribe("keep");
    // 200 topics, joined and left over and over, some left and rejoined at once.
    for round in 0..20 {
        for t in 0..200 {
            let topic = format!("churn-{t}");
            a.bridge.subscribe(&topic);
            if (t + round) % 3 == 0 {
                a.bridge.unsubscribe(&topic);
                a.bridge.subscribe(&topic);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
        for t in 0..200 {
            a.bridge.unsubscribe(&format!("churn-{t}"));
        }
    }
    eventually("only the kept topic stays", Duration::from_secs(8), || {
        redis.channels("wst:t:*") == ["wst:t:keep"]
    });
    assert!(b.bridge.publish(Some("keep"), true, b"kept"));
    assert!(b.bridge.publish(Some("churn-7"), true, b"gone"));
    assert!(b.bridge.publish(None, true, b"mark"));
    let got = a.messages_until(b"mark", MSG);
    assert_eq!(got[0], (Some("keep".into()), true, b"kept".to_vec()));
    assert_eq!(got.len(), 2, "{got:?}");
    a.bridge.unsubscribe("keep");
    eventually("nothing left", Duration::from_secs(6), || redis.channels("wst:t:*").is_empty());
    assert!(a.bridge.is_up());
}

#[test]
fn redis_down_at_start_then_up() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let a = node(&url);
    assert!(started.elapsed() < Duration::from_millis(200), "start took {:?}", started.elapsed());
    let reason = a.wait_down(UP);
    assert!(reason.contains("refused") || reason.contains("onnect"), "{reason}");
    assert!(!a.bridge.is_up());
    a.bridge.subscribe("t");
    for i in 0..10 {
        assert!(!a.bridge.publish(Some("t"), true, format!("{i}").as_bytes()));
    }
    assert!(!a.bridge.publish(None, true, b"b"));
    let s = a.bridge.stats();
    assert_eq!((s.dropped, s.published), (11, 0));

    // Redis comes: the bridge connects within the backoff cap and subscribes what it was asked.
    let redis = RedisServer::start_with(port, &[]);
    let came = Instant::now();
    a.wait_up(RECONNECT);
    println!("up {:?} after redis-server started", came.elapsed());
    assert_eq!(a.bridge.stats().reconnects, 1);
    eventually("subscribed", UP, || redis.channels("wst:*") == ["wst:b", "wst:t:t"]);
    let b = node(&url);
    b.wait_up(UP);
    assert!(b.bridge.publish(Some("t"), true, b"now"));
    assert_eq!(a.messages_until(b"now", MSG).len(), 1);
}

#[test]
fn redis_killed_mid_run_then_restarted_on_the_same_port() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    a.wait_up(UP);
    b.wait_up(UP);
    a.bridge.subscribe("t");
    b.bridge.subscribe("t");
    eventually("subscribed", UP, || redis.numsub("wst:t:t") == 2);
    assert!(a.bridge.publish(Some("t"), true, b"before"));
    assert_eq!(b.messages_until(b"before", MSG).len(), 1);
    eventually("published", MSG, || a.bridge.stats().published == 1);

    redis.kill();
    let reason = a.wait_down(MSG);
    println!("down: {reason}");
    b.wait_down(MSG);
    assert!(!a.bridge.is_up() && !b.bridge.is_up());
    // Every publish while Redis is gone is dropped and counted (refused at once, or lost
    // with the pipeline that found the connection broken).
    for i in 0..20 {
        a.bridge.publish(Some("t"), true, format!("lost {i}").as_bytes());
    }
    eventually("drops counted", MSG, || a.bridge.stats().dropped == 20);
    assert_eq!(a.bridge.stats().published, 1);

    // Give the backoff time to grow, then bring Redis back on the same port.
    std::thread::sleep(Duration::from_millis(1500));
    redis.restart();
    let back = Instant::now();
    a.wait_up(RECONNECT);
    b.wait_up(RECONNECT);
    println!("both up {:?} after restart", back.elapsed());
    assert_eq!((a.bridge.stats().reconnects, b.bridge.stats().reconnects), (1, 1));
    // The subscriptions are back: topic and broadcast, in both directions.
    assert_eq!(redis.numsub("wst:t:t"), 2);
    assert_eq!(redis.numsub("wst:b"), 2);
    assert!(a.bridge.publish(Some("t"), true, b"after"));
    assert_eq!(b.messages_until(b"after", MSG), vec![(Some("t".into()), true, b"after".to_vec())]);
    assert!(b.bridge.publish(None, false, b"after-b"));
    assert_eq!(a.messages_until(b"after-b", MSG), vec![(None, false, b"after-b".to_vec())]);
}

#[test]
fn a_flood_while_redis_is_stalled_never_blocks_and_drops_beyond_the_bound() {
    let redis = RedisServer::start();
    const QUEUE_BYTES: usize = 256 << 10;
    let a = node_with(BridgeConfig {
        url: redis.url(),
        prefix: "wst".into(),
        max_queue_messages: 1000,
        max_queue_bytes: QUEUE_BYTES,
        ..Default::default()
    });
    let b = node(&redis.url());
    a.wait_up(UP);
    b.wait_up(UP);
    b.bridge.subscribe("f");
    eventually("subscribed", UP, || redis.numsub("wst:t:f") == 1);

    redis.pause(); // SIGSTOP: Redis neither reads nor answers.
                   // Publish for half a second (the reply deadline is 3 s, so the connection survives).
    let payload = vec![b'x'; 1000];
    let (mut accepted, mut refused, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let flood = Instant::now();
    let mut i = 0u32;
    while flood.elapsed() < Duration::from_millis(500) && i < 5_000_000 {
        let mut p = payload.clone();
        p[..4].copy_from_slice(&i.to_be_bytes());
        i += 1;
        let t = Instant::now();
        let ok = a.bridge.publish(Some("f"), false, &p);
        slowest = slowest.max(t.elapsed());
        if ok {
            accepted += 1
        } else {
            refused += 1
        }
    }
    redis.resume();
    println!("flood: {i} publishes in {:?} against a stopped Redis, slowest {slowest:?}, accepted {accepted}, refused {refused}", flood.elapsed());
    // Generous for a loaded 2-core machine: a slow call here is the scheduler, not a wait.
    assert!(slowest < Duration::from_millis(50), "a publish took {slowest:?}");
    // The bound: what fits in 256 KiB (1000 + 12 + 1 + 64 bytes each, in flight included).
    assert!(accepted <= (QUEUE_BYTES / 1077) as u64, "accepted {accepted}");
    assert_eq!(refused, u64::from(i) - accepted);
    assert_eq!(a.bridge.stats().dropped, refused);

    // The stall was shorter than the reply deadline: everything accepted arrives, in order.
    let deadline = Instant::now() + MSG;
    let mut previous = None;
    for expect in 0..accepted {
        match b.events.recv_deadline(deadline) {
            Ok(BridgeEvent::Message { payload, .. }) => {
                let i = u32::from_be_bytes(payload[..4].try_into().unwrap());
                assert!(previous < Some(i), "{i} after {previous:?}");
                previous = Some(i);
            }
            other => panic!("message {expect} of {accepted}: {other:?}"),
        }
    }
    eventually("published", MSG, || a.bridge.stats().published == accepted);
    assert!(a.bridge.is_up());
}

#[test]
fn broken_envelopes_are_dropped_and_counted() {
    let redis = RedisServer::start();
    let a = node(&redis.url());
    a.wait_up(UP);
    a.bridge.subscribe("t");
    eventually("subscribed", UP, || redis.numsub("wst:t:t") == 1);
    redis.publish_raw("wst:b", b"not an envelope");
    redis.publish_raw("wst:t:t", b"");
    let mut bad_text = vec![b'w', b'e', 1, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    bad_text.extend_from_slice(&[0xc3, 0x28]);
    redis.publish_raw("wst:t:t", &bad_text);
    let mut unknown_flag = vec![b'w', b'e', 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 9];
    unknown_flag.push(b'x');
    redis.publish_raw("wst:b", &unknown_flag);
    let mut good = vec![b'w', b'e', 1, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    good.extend_from_slice(b"fine");
    redis.publish_raw("wst:t:t", &good);
    assert_eq!(a.messages_until(b"fine", MSG), vec![(Some("t".into()), true, b"fine".to_vec())]);
    let s = a.bridge.stats();
    assert_eq!((s.broken, s.received), (4, 1));
}

#[test]
fn url_with_password_and_db() {
    let redis = RedisServer::start_with(free_port(), &["--requirepass", "s3cret"]);
    let good = format!("redis://:s3cret@127.0.0.1:{}/3", redis.port);
    let user = format!("redis://default:s3cret@127.0.0.1:{}/0", redis.port);
    let (a, b) = (node(&good), node(&user));
    a.wait_up(UP);
    b.wait_up(UP);
    assert!(a.bridge.publish(None, true, b"authed"));
    assert_eq!(b.messages_until(b"authed", MSG).len(), 1);
    let wrong = node(&format!("redis://:nope@127.0.0.1:{}", redis.port));
    let reason = wrong.wait_down(UP);
    assert!(reason.to_lowercase().contains("auth") || reason.contains("WRONGPASS"), "{reason}");
    assert!(!wrong.bridge.publish(None, true, b"x"));
}

#[test]
fn drop_returns_promptly_while_redis_is_down_or_stalled() {
    // Down: nothing listens on the port.
    let a = node(&format!("redis://127.0.0.1:{}", free_port()));
    a.wait_down(UP);
    let t = Instant::now();
    drop(a);
    let down = t.elapsed();

    // Stalled: connected, then SIGSTOPped.
    let redis = RedisServer::start();
    let b = node(&redis.url());
    b.wait_up(UP);
    b.bridge.subscribe("t");
    eventually("subscribed", UP, || redis.numsub("wst:t:t") == 1);
    redis.pause();
    let t = Instant::now();
    drop(b);
    let stalled = t.elapsed();
    redis.resume();
    println!("drop: {down:?} with Redis down, {stalled:?} with Redis stalled");
    assert!(down < Duration::from_millis(500), "{down:?}");
    assert!(stalled < Duration::from_millis(1000), "{stalled:?}");

    // Healthy: the subscriptions go with the bridge.
    let c = node(&redis.url());
    c.wait_up(UP);
    c.bridge.subscribe("u");
    eventually("subscribed", UP, || redis.channels("wst:t:*") == ["wst:t:u"]);
    let t = Instant::now();
    drop(c);
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    eventually("released", UP, || redis.channels("wst:*").is_empty());
}

// ---------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Cross-node latency (paced) and throughput (flood) through one Redis.
#[test]
#[ignore]
fn bench_cross_node() {
    let redis = RedisServer::start();
    let epoch = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, Duration)>();
    let sink_epoch = epoch;
    let b = Bridge::start(
        BridgeConfig { url: redis.url(), prefix: "bench".into(), ..Default::default() },
        Box::new(move |e| {
            if let BridgeEvent::Message { payload, .. } = e {
                let sent = u64::from_be_bytes(payload[..8].try_into().unwrap());
                let seq = u64::from_be_bytes(payload[8..16].try_into().unwrap());
                let _ = tx.send((seq, sink_epoch.elapsed() - Duration::from_nanos(sent)));
            }
        }),
    )
    .unwrap();
    let a = node_with(BridgeConfig {
        url: redis.url(),
        prefix: "bench".into(),
        max_queue_messages: 1 << 20,
        max_queue_bytes: 1 << 30,
        ..Default::default()
    });
    a.wait_up(UP);
    eventually("b up", UP, || b.is_up());
    b.subscribe("bench");
    eventually("subscribed", UP, || redis.numsub("bench:t:bench") == 1);
    let message = |seq: u64| {
        let mut p = vec![0u8; 64];
        p[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
        p[8..16].copy_from_slice(&seq.to_be_bytes());
        p
    };

    // Latency: 5,000 messages of 64 bytes, one every 200 µs.
    let n = 5_000u64;
    let start = Instant::now();
    for seq in 0..n {
        let due = start + Duration::from_micros(200 * seq);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        assert!(a.bridge.publish(Some("bench"), false, &message(seq)));
    }
    let mut lat: Vec<Duration> = (0..n).map(|_| rx.recv_timeout(MSG).expect("message").1).collect();
    lat.sort();
    println!(
        "latency, {n} x 64 B at 5,000/s: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // Throughput: 200,000 messages of 64 bytes as fast as publish takes them.
    let n = 200_000u64;
    let start = Instant::now();
    for seq in 0..n {
        assert!(a.bridge.publish(Some("bench"), false, &message(seq)));
    }
    let queued = start.elapsed();
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(60)).expect("message");
    }
    let all = start.elapsed();
    println!(
        "throughput, {n} x 64 B: publish calls {:.0}/s ({queued:?}); delivered end to end {:.0}/s ({all:?})",
        n as f64 / queued.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    drop(a);

    // The same Redis, driven by redis-benchmark: PUBLISH of as many bytes as an envelope
    // above (12 + 64) to the channel that b still reads (b drops them as broken envelopes).
    // redis-benchmark 7 has no `-t publish`, so the command is given explicitly.
    let payload = "x".repeat(76);
    for (clients, pipeline) in [("50", "1"), ("1", "1"), ("1", "64"), ("50", "16")] {
        let out = Command::new("redis-benchmark")
            .args(["-p", &redis.port.to_string(), "-n", "200000", "-q"])
            .args(["-c", clients, "-P", pipeline, "PUBLISH", "bench:t:bench", &payload])
            .output()
            .expect("redis-benchmark (Debian: redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let last = last.rsplit(": ").next().unwrap_or("").trim();
        println!("redis-benchmark -c {clients} -P {pipeline} PUBLISH (76 B): {last}");
    }
    drop(b);
}
