//! Where an idle connection's server memory goes: opens N idle WebSocket connections to an
//! in-process server and prints the heap blocks they keep (counted by a global allocator),
//! by size, plus the structure sizes. `cargo run --release --example idle_memory [-- N]`.
//!
//! Heap bytes are what the program asked for; the allocator adds 8-16 B per block and rounds
//! up to 16 B (glibc), and the kernel's socket buffers are not in the process at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use wsembed::{Event, Server, ServerConfig};

/// Live blocks per requested size (8-byte steps up to 4 KiB; the last bucket holds the rest).
const BUCKETS: usize = 513;
static LIVE_BLOCKS: [AtomicIsize; BUCKETS] = [const { AtomicIsize::new(0) }; BUCKETS];
static LIVE_BYTES: [AtomicIsize; BUCKETS] = [const { AtomicIsize::new(0) }; BUCKETS];

fn bucket(size: usize) -> usize {
    size.div_ceil(8).min(BUCKETS - 1)
}

fn track(size: usize, sign: isize) {
    LIVE_BLOCKS[bucket(size)].fetch_add(sign, Ordering::Relaxed);
    LIVE_BYTES[bucket(size)].fetch_add(sign * size as isize, Ordering::Relaxed);
}

struct Counting;

// SAFETY: forwards to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size(), 1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(layout.size(), -1);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(layout.size(), -1);
        track(new_size, 1);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn snapshot() -> Vec<(isize, isize)> {
    (0..BUCKETS).map(|i| (LIVE_BLOCKS[i].load(Ordering::Relaxed), LIVE_BYTES[i].load(Ordering::Relaxed))).collect()
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("N: a number of connections"));
    let server = Server::start(ServerConfig { max_connections: n + 16, ..ServerConfig::default() }).expect("server starts");
    let addr = server.local_addr();
    let mut clients: Vec<TcpStream> = Vec::with_capacity(n);
    // Warm up: one connection, so that lazily made loop state is not charged to the others.
    let warm = open(addr);
    drain_opens(&server, 1);
    let before = snapshot();
    let started = Instant::now();
    for _ in 0..n {
        clients.push(open(addr));
        if clients.len().is_multiple_of(256) {
            let _ = server.poll(Some(Duration::ZERO));
        }
    }
    drain_opens(&server, 0);
    // The host has polled past every Open, so the events are gone; what is left is kept.
    let _ = server.poll(Some(Duration::from_millis(50)));
    let after = snapshot();
    let (mut blocks, mut bytes) = (0isize, 0isize);
    println!("{n} idle connections opened in {:.2} s; heap kept per connection, by block size:", started.elapsed().as_secs_f64());
    for (i, ((b0, y0), (b1, y1))) in before.iter().zip(&after).enumerate() {
        let (db, dy) = (b1 - b0, y1 - y0);
        if db.abs() * 20 >= n as isize || dy.abs() >= (n as isize) * 4 {
            let label = if i == BUCKETS - 1 { "> 4096 B".to_owned() } else { format!("{:>4} B", i * 8) };
            println!("  {label}: {:>6.2} blocks, {:>7.1} B", db as f64 / n as f64, dy as f64 / n as f64);
        }
        blocks += db;
        bytes += dy;
    }
    println!("in all: {:.2} blocks, {:.1} B per connection (plus ~8-16 B of allocator header per block)", blocks as f64 / n as f64, bytes as f64 / n as f64);
    println!("(the client sockets' Vec here is {} B per connection of that)", std::mem::size_of::<TcpStream>());
    drop(warm);
}

fn open(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = [0u8; 1024];
    let mut got = 0;
    while !head[..got].ends_with(b"\r\n\r\n") {
        let k = s.read(&mut head[got..]).expect("101");
        assert!(k > 0, "closed during the handshake");
        got += k;
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// Polls until `want` more Open events came (0: until a poll finds none).
fn drain_opens(server: &Server, want: usize) {
    let mut seen = 0;
    loop {
        let events = server.poll(Some(Duration::from_millis(if want == 0 { 100 } else { 1000 }))).expect("poll");
        seen += events.iter().filter(|e| matches!(e, Event::Open { .. })).count();
        if (want > 0 && seen >= want) || (want == 0 && events.is_empty()) {
            return;
        }
    }
}
