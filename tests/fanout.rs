//! Broadcast, topics, concurrent senders, stale ids, several servers.

mod common;
use std::collections::HashSet;

use common::*;
use tungstenite::Message;
use wsembed::{Error, MessageKind};

fn read_text(client: &mut Client) -> String {
    loop {
        match client.read().unwrap() {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn broadcast_reaches_everyone_but_the_excepted() {
    let server = start(|_| {});
    let mut clients: Vec<Client> = (0..3).map(|_| connect(&server)).collect();
    let ids: Vec<_> = (0..3).map(|_| wait_open(&server)).collect();
    let handle = server.handle();
    handle.broadcast(MessageKind::Text, b"to all", None).unwrap();
    // Opens arrive in connect order, so ids[0] belongs to clients[0].
    handle.broadcast(MessageKind::Text, b"not to first", Some(ids[0])).unwrap();
    handle.send_text(ids[0], "marker").unwrap();
    assert_eq!(read_text(&mut clients[0]), "to all");
    assert_eq!(read_text(&mut clients[0]), "marker");
    for client in &mut clients[1..] {
        assert_eq!(read_text(client), "to all");
        assert_eq!(read_text(client), "not to first");
    }
}

#[test]
fn topics_subscribe_publish_unsubscribe() {
    let server = start(|_| {});
    let mut a = connect(&server);
    let ida = wait_open(&server);
    let mut b = connect(&server);
    let idb = wait_open(&server);
    let handle = server.handle();
    handle.subscribe(ida, "room-1").unwrap();
    handle.subscribe(ida, "room-1").unwrap(); // twice is harmless: one delivery
    handle.subscribe(idb, "room-2").unwrap();
    handle.publish("room-1", MessageKind::Text, b"r1").unwrap();
    handle.publish("room-2", MessageKind::Text, b"r2").unwrap();
    handle.publish("nobody", MessageKind::Text, b"void").unwrap();
    handle.unsubscribe(ida, "room-1").unwrap();
    handle.publish("room-1", MessageKind::Text, b"r1 again").unwrap();
    handle.send_text(ida, "end-a").unwrap();
    handle.send_text(idb, "end-b").unwrap();
    assert_eq!(read_text(&mut a), "r1");
    assert_eq!(read_text(&mut a), "end-a");
    assert_eq!(read_text(&mut b), "r2");
    assert_eq!(read_text(&mut b), "end-b");
}

#[test]
fn eight_threads_send_at_once() {
    let server = start(|_| {});
    let mut client = connect(&server);
    let conn = wait_open(&server);
    let handle = server.handle();
    const PER_THREAD: usize = 500;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    handle.send_text(conn, &format!("{t}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut seen = HashSet::new();
    let mut next_per_thread = [0usize; 8];
    for _ in 0..8 * PER_THREAD {
        let text = read_text(&mut client);
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next_per_thread[t], "each thread's messages arrive in its order");
        next_per_thread[t] += 1;
        assert!(seen.insert(text));
    }
    assert_eq!(seen.len(), 8 * PER_THREAD);
}

#[test]
fn stale_ids_are_errors_and_never_reach_a_new_client() {
    let server = start(|_| {});
    let handle = server.handle();
    let first = connect(&server);
    let old = wait_open(&server);
    drop(first);
    wait_close(&server, old);
    // The freed slot is reused by the next client, under a new generation.
    let mut second = connect(&server);
    let new = wait_open(&server);
    assert_ne!(old, new);
    assert_eq!(old & 0xffff_ffff, new & 0xffff_ffff, "same slot, new generation");
    for id in [old, 0, 12345, u64::MAX] {
        assert!(matches!(handle.send_text(id, "x"), Err(Error::NoSuchConnection)), "id {id}");
        assert!(matches!(handle.close(id, 1000, ""), Err(Error::NoSuchConnection)));
        assert!(matches!(handle.subscribe(id, "t"), Err(Error::NoSuchConnection)));
        assert!(matches!(handle.buffered_amount(id), Err(Error::NoSuchConnection)));
    }
    handle.send_text(new, "for the new one").unwrap();
    assert_eq!(read_text(&mut second), "for the new one");
}

#[test]
fn bad_host_input_is_an_error() {
    let server = start(|_| {});
    let _client = connect(&server);
    let conn = wait_open(&server);
    let handle = server.handle();
    assert!(matches!(handle.send(conn, MessageKind::Text, &[0xff, 0xfe]), Err(Error::InvalidUtf8)));
    assert!(matches!(handle.broadcast(MessageKind::Text, &[0xc3], None), Err(Error::InvalidUtf8)));
    for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert!(matches!(handle.close(conn, code, ""), Err(Error::InvalidArgument(_))), "code {code}");
    }
    assert!(matches!(handle.close(conn, 1000, &"x".repeat(124)), Err(Error::InvalidArgument(_))));
    handle.close(conn, 1000, &"x".repeat(123)).unwrap();
}

#[test]
fn several_servers_are_independent() {
    let servers: Vec<_> = (0..3).map(|_| start(|_| {})).collect();
    let mut clients: Vec<_> = servers.iter().map(connect).collect();
    for (server, client) in servers.iter().zip(&mut clients) {
        let conn = wait_open(server);
        server.handle().send_text(conn, &server.local_addr().port().to_string()).unwrap();
        assert_eq!(read_text(client), server.local_addr().port().to_string());
    }
    let mut servers = servers;
    servers.remove(0).stop(std::time::Duration::from_secs(1)).unwrap();
    let mut client = connect(&servers[0]);
    let conn = wait_open(&servers[0]);
    servers[0].handle().send_text(conn, "alive").unwrap();
    assert_eq!(read_text(&mut client), "alive");
}
