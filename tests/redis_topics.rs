//! Topics and broadcast across servers joined by a real Redis (option `redis_url`): two
//! servers (distinct node ids, as two processes would be), real WebSocket clients on each.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use tungstenite::Message;
use wsembed::{Event, MessageKind, Server};

fn server_on(redis: &RedisServer, prefix: &str) -> Server {
    let url = redis.url();
    let prefix = prefix.to_owned();
    start(move |c| {
        c.redis_url = url;
        c.redis_prefix = prefix;
    })
}

fn wait_bridge_up(server: &Server) {
    wait_for(server, |e| matches!(e, Event::BridgeUp).then_some(()));
}

/// Waits until `redis` lists exactly `want` channels matching `pattern`.
fn wait_channels(redis: &RedisServer, pattern: &str, want: &[&str]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = redis.channels(pattern);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "channels {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_text(client: &mut Client) -> String {
    loop {
        match client.read().expect("message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Subscribes a fresh client of `server` to `topic` and returns it with its id.
fn subscriber(server: &Server, topic: &str) -> (Client, wsembed::ConnId) {
    let client = connect(server);
    let conn = wait_open(server);
    server.handle().subscribe(conn, topic).unwrap();
    (client, conn)
}

#[test]
fn publish_reaches_every_server_once_and_in_order() {
    let redis = RedisServer::start();
    let (a, b) = (server_on(&redis, "t1"), server_on(&redis, "t1"));
    wait_bridge_up(&a);
    wait_bridge_up(&b);
    let (mut on_a, _) = subscriber(&a, "room");
    let (mut on_b, _) = subscriber(&b, "room");
    wait_channels(&redis, "t1:t:*", &["t1:t:room"]);
    for i in 0..1000 {
        a.handle().publish("room", MessageKind::Text, format!("m{i}").as_bytes()).unwrap();
    }
    a.handle().publish("room", MessageKind::Text, b"end").unwrap();
    for client in [&mut on_a, &mut on_b] {
        for i in 0..1000 {
            assert_eq!(read_text(client), format!("m{i}"), "in order, exactly once");
        }
        assert_eq!(read_text(client), "end", "nothing twice: the origin dropped its own echo");
    }
    let stats = a.handle().stats();
    assert!(stats.bridge_published >= 1001, "{stats:?}");
    assert!(b.handle().stats().bridge_received >= 1001);
    assert_eq!(a.handle().stats().bridge_received, 0, "A never received its own messages back");
}

#[test]
fn broadcast_except_sender_spans_servers() {
    let redis = RedisServer::start();
    let (a, b) = (server_on(&redis, "t2"), server_on(&redis, "t2"));
    wait_bridge_up(&a);
    wait_bridge_up(&b);
    wait_channels(&redis, "t2:b", &["t2:b"]);
    let mut sender = connect(&a);
    let sender_id = wait_open(&a);
    let mut other_a = connect(&a);
    wait_open(&a);
    let mut on_b = connect(&b);
    wait_open(&b);
    a.handle().broadcast(MessageKind::Binary, b"to all but the sender", Some(sender_id)).unwrap();
    a.handle().broadcast(MessageKind::Text, b"marker", None).unwrap();
    for client in [&mut other_a, &mut on_b] {
        assert_eq!(client.read().unwrap(), Message::Binary(b"to all but the sender".to_vec().into()));
        assert_eq!(read_text(client), "marker");
    }
    assert_eq!(read_text(&mut sender), "marker", "the sender got only the marker");
}

#[test]
fn subscriptions_follow_local_subscribers_and_leave_nothing_behind() {
    let redis = RedisServer::start();
    let a = server_on(&redis, "t3");
    wait_bridge_up(&a);
    // Publishing to a topic nobody subscribes to costs no subscription.
    a.handle().publish("nobody", MessageKind::Text, b"x").unwrap();
    wait_channels(&redis, "t3:t:*", &[]);
    let mut clients = Vec::new();
    for _ in 0..5 {
        let (client, conn) = subscriber(&a, "churn");
        clients.push((client, conn));
    }
    wait_channels(&redis, "t3:t:*", &["t3:t:churn"]);
    // Churn: leave by unsubscribe and by closing; the last one out ends the subscription.
    for (i, (mut client, conn)) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            a.handle().unsubscribe(conn, "churn").unwrap();
        } else {
            client.close(None).unwrap();
            let _ = client.flush();
            wait_close(&a, conn);
        }
    }
    wait_channels(&redis, "t3:t:*", &[]);
}

#[test]
fn redis_down_keeps_local_delivery_and_recovers_with_subscriptions() {
    let mut redis = RedisServer::start();
    let (a, b) = (server_on(&redis, "t4"), server_on(&redis, "t4"));
    wait_bridge_up(&a);
    wait_bridge_up(&b);
    let (mut on_a, _) = subscriber(&a, "room");
    let (mut on_b, _) = subscriber(&b, "room");
    wait_channels(&redis, "t4:t:*", &["t4:t:room"]);
    redis.kill();
    wait_for(&a, |e| matches!(e, Event::BridgeDown { .. }).then_some(()));
    let dropped_before = a.handle().stats().bridge_dropped;
    a.handle().publish("room", MessageKind::Text, b"local only").unwrap();
    assert_eq!(read_text(&mut on_a), "local only", "local delivery goes on without Redis");
    // The publisher thread may learn of the loss only when it writes: the drop is counted then.
    let deadline = Instant::now() + DEADLINE;
    while a.handle().stats().bridge_dropped <= dropped_before {
        assert!(Instant::now() < deadline, "the remote copy is counted as dropped");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    redis.restart();
    wait_bridge_up(&a);
    wait_bridge_up(&b);
    let recovered = started.elapsed();
    assert!(recovered < Duration::from_secs(7), "back within the 5 s backoff cap: {recovered:?}");
    wait_channels(&redis, "t4:t:*", &["t4:t:room"]);
    a.handle().publish("room", MessageKind::Text, b"after").unwrap();
    assert_eq!(read_text(&mut on_a), "after");
    assert_eq!(read_text(&mut on_b), "after", "cross-node delivery resumed, subscription restored");
    assert!(a.handle().stats().bridge_reconnects >= 1);
}

#[test]
fn a_server_starts_while_redis_is_down() {
    let port = common::redis::free_port();
    let a = start(move |c| c.redis_url = format!("redis://127.0.0.1:{port}"));
    let reason = wait_for(&a, |e| match e {
        Event::BridgeDown { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(!reason.is_empty());
    let (mut client, _) = subscriber(&a, "room");
    a.handle().publish("room", MessageKind::Text, b"still works").unwrap();
    assert_eq!(read_text(&mut client), "still works");
    assert!(wsembed::Server::start(wsembed::ServerConfig { redis_url: "http://x".into(), ..Default::default() }).is_err());
}
