//! Several event loops on one port (option `threads`): the kernel spreads connections over
//! them, ids name their loop, and the host API behaves as with one loop.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use tungstenite::Message;
use wsembed::{Event, MessageKind};

#[test]
fn two_loops_share_the_port_and_the_api() {
    let server = start(|c| c.threads = 2);
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..24 {
        clients.push(connect(&server));
        ids.push(wait_open(&server));
    }
    let loops: HashSet<u64> = ids.iter().map(|id| (id >> 24) & 0xff).collect();
    assert_eq!(loops.len(), 2, "SO_REUSEPORT spread 24 connections over both loops: {ids:x?}");
    // Per-connection order, on whichever loop.
    for (client, &id) in clients.iter_mut().zip(&ids) {
        for i in 0..20 {
            server.handle().send_text(id, &format!("{id}-{i}")).unwrap();
        }
        for i in 0..20 {
            assert_eq!(client.read().unwrap(), Message::text(format!("{id}-{i}")));
        }
    }
    // Broadcast and publish reach every loop, each frame encoded once.
    for &id in &ids[..6] {
        server.handle().subscribe(id, "room").unwrap();
    }
    server.handle().broadcast(MessageKind::Text, b"everyone", Some(ids[0])).unwrap();
    server.handle().publish("room", MessageKind::Binary, b"room only").unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        if i != 0 {
            assert_eq!(client.read().unwrap(), Message::text("everyone"));
        }
        if i < 6 {
            assert_eq!(client.read().unwrap(), Message::binary(b"room only".to_vec()));
        }
    }
    // Messages from clients on both loops reach the host.
    for client in &mut clients {
        client.send(Message::text("up")).unwrap();
    }
    let mut from = HashSet::new();
    while from.len() < ids.len() {
        from.insert(wait_for(&server, |e| match e {
            Event::Message { conn, .. } => Some(*conn),
            _ => None,
        }));
    }
    // Close on either loop, then a stop that waits for both.
    server.handle().close(ids[1], 1000, "bye").unwrap();
    assert_eq!(wait_close(&server, ids[1]).0, 1000);
    assert_eq!(server.handle().stats().open_connections, 23);
    server.stop(Duration::from_secs(2)).unwrap();
    let closes = (0..23).map(|_| wait_for(&server, |e| matches!(e, Event::Close { .. }).then_some(()))).count();
    assert_eq!(closes, 23);
}

#[test]
fn host_driven_mode_needs_one_loop() {
    let config = wsembed::ServerConfig { threads: 2, loop_thread: false, ..Default::default() };
    assert!(matches!(wsembed::Server::start(config), Err(wsembed::Error::InvalidArgument(_))));
}
