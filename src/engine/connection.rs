//! One TCP connection as the loop sees it: its lifecycle phase, its frame decoder and the
//! queue of encoded frames waiting to be written.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::rate::ConnRate;
use super::transport::Transport;
use crate::event::ConnId;
use crate::protocol::decoder::Decoder;
use crate::protocol::handshake::UpgradeRequest;

/// Where a connection is in its life.
pub enum Phase {
    /// Reading the HTTP request head.
    Handshake { request: Vec<u8>, deadline: Instant },
    /// A valid upgrade request waits for the host's accept/reject; bytes the client sends
    /// meanwhile are kept in `early` (bounded by `max_header_bytes`).
    Approval { request: Box<UpgradeRequest>, early: Vec<u8>, deadline: Instant },
    /// WebSocket open: messages flow both ways.
    Open,
    /// The peer broke the protocol after messages the host has not finished handling: input
    /// is ignored, sends still go out, and the close (`code`, `reason`) follows once the host
    /// polled past event `after` (or at `deadline`), so replies precede the close frame.
    Failing { code: u16, reason: &'static str, after: u64, deadline: Instant },
    /// The server sent a close frame and waits for the peer's; `code`/`reason` are reported.
    Closing { deadline: Instant, code: u16, reason: String },
    /// Nothing more to say: write what is queued, send FIN, discard input until the peer
    /// closes or `deadline` passes. The host has already been told (or never knew).
    Finishing { deadline: Instant },
}

pub struct Connection {
    pub id: ConnId,
    pub transport: Transport,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub decoder: Decoder,
    pub out: OutQueue,
    /// Topics this connection is subscribed to (to leave them when it goes).
    pub topics: Vec<Arc<str>>,
    /// When bytes last arrived (liveness).
    pub last_seen: Instant,
    /// A ping is outstanding since then.
    pub ping_sent: Option<Instant>,
    /// The host saw `Open`, so it must see `Close`.
    pub announced: bool,
    /// FIN already sent.
    pub write_shut: bool,
    /// Waiting in the loop's list of connections to flush.
    pub dirty: bool,
    /// Present when per-connection rate limits are configured.
    pub rate: Option<Box<ConnRate>>,
    /// Sequence number of the last message event reported for this connection.
    pub last_message_seq: u64,
}

impl Connection {
    pub fn new(id: ConnId, transport: Transport, peer: SocketAddr, now: Instant, deadline: Instant) -> Self {
        Connection {
            id,
            transport,
            peer,
            phase: Phase::Handshake { request: Vec::new(), deadline },
            decoder: Decoder::default(),
            out: OutQueue::default(),
            topics: Vec::new(),
            last_seen: now,
            ping_sent: None,
            announced: false,
            write_shut: false,
            dirty: false,
            rate: None,
            last_message_seq: 0,
        }
    }

    /// Open for the host: sends, broadcasts and topics reach it.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Failing { .. })
    }
}

/// Encoded frames waiting for the socket, written with vectored writes.
#[derive(Default)]
pub struct OutQueue {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already written.
    offset: usize,
    /// Bytes not yet written.
    pub bytes: usize,
}

/// Most frames handed to one `writev`.
const MAX_IOVECS: usize = 64;

impl OutQueue {
    pub fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes until the queue is empty or the socket would block. Returns bytes written.
    pub fn flush(&mut self, stream: &mut Transport) -> io::Result<usize> {
        let mut total = 0;
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, frame) in self.frames.iter().take(MAX_IOVECS).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &frame[self.offset..] } else { frame });
                count += 1;
            }
            let written = match stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += written;
            self.consume(written);
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let front = self.frames.front().expect("written bytes come from queued frames").len() - self.offset;
            if n < front {
                self.offset += n;
                return;
            }
            n -= front;
            self.offset = 0;
            self.frames.pop_front();
        }
    }

    /// Drops everything queued; returns the bytes dropped.
    pub fn discard(&mut self) -> usize {
        let n = self.bytes;
        self.frames.clear();
        self.offset = 0;
        self.bytes = 0;
        n
    }
}
