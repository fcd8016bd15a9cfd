//! The engine: one background thread per server runs a `mio` loop that owns the listening
//! socket and every connection. Host threads reach it only through [`Shared`]: commands over a
//! channel plus a waker, the connection table for synchronous checks, and the event queue.

pub mod connection;
pub mod event_loop;
pub mod events;
pub mod rate;
pub mod slots;
pub mod transport;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;

use crate::config::BackpressurePolicy;
use crate::error::Error;
use crate::event::ConnId;

/// What host threads ask of the loop.
pub enum Command {
    /// `frame` is already counted in the slot's `buffered`.
    Send { conn: ConnId, frame: Bytes },
    /// To every open connection but `except` (0: none).
    Broadcast { frame: Bytes, except: ConnId },
    Publish { topic: Arc<str>, frame: Bytes },
    Subscribe { conn: ConnId, topic: Arc<str> },
    Unsubscribe { conn: ConnId, topic: Arc<str> },
    Close { conn: ConnId, code: u16, reason: String },
    /// Answer to a handshake awaiting approval; `protocol` must be one the client offered.
    Accept { conn: ConnId, protocol: Option<String> },
    Reject { conn: ConnId, status: u16, body: String },
    /// Close every connection with 1001, flush, and exit by `deadline`.
    Stop { deadline: Instant },
}

/// Counters kept by the loop, readable from any thread (see [`crate::Stats`]).
#[derive(Default)]
pub struct Counters {
    pub open_connections: AtomicU64,
    pub handshakes_accepted: AtomicU64,
    pub handshakes_rejected: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped_deliveries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub closes_clean: AtomicU64,
    pub closes_protocol_error: AtomicU64,
    pub closes_timeout: AtomicU64,
    pub closes_dropped: AtomicU64,
    pub closes_policy: AtomicU64,
}

/// Adds to a counter (the loop is the only writer; relaxed is enough).
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> crate::Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::Stats {
            open_connections: get(&self.open_connections),
            handshakes_accepted: get(&self.handshakes_accepted),
            handshakes_rejected: get(&self.handshakes_rejected),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            dropped_deliveries: get(&self.dropped_deliveries),
            rate_limited: get(&self.rate_limited),
            closes_clean: get(&self.closes_clean),
            closes_protocol_error: get(&self.closes_protocol_error),
            closes_timeout: get(&self.closes_timeout),
            closes_dropped: get(&self.closes_dropped),
            closes_policy: get(&self.closes_policy),
        }
    }
}

/// State shared by the loop and every handle of one server.
pub struct Shared {
    pub table: slots::ConnTable,
    pub events: events::EventQueue,
    pub counters: Counters,
    pub max_buffered: usize,
    pub backpressure: BackpressurePolicy,
    pub backpressure_close_code: u16,
    commands: Sender<Command>,
    waker: mio::Waker,
    /// A wake-up is on its way to the loop; later commands need not wake it again.
    wake_pending: AtomicBool,
    stop_requested: AtomicBool,
    /// The loop stopped reading because the host lags (see `max_pending_event_bytes`).
    pub reads_paused: AtomicBool,
    /// Connections in `Phase::Failing`: each poll wakes the loop to settle them.
    pub failing: AtomicUsize,
    pub max_pending_event_bytes: usize,
}

impl Shared {
    pub fn new(config: &crate::config::ServerConfig, commands: Sender<Command>, waker: mio::Waker) -> std::io::Result<Self> {
        Ok(Shared {
            table: slots::ConnTable::default(),
            events: events::EventQueue::new()?,
            counters: Counters::default(),
            max_buffered: config.max_buffered_bytes,
            backpressure: config.backpressure,
            backpressure_close_code: config.backpressure_close_code,
            commands,
            waker,
            wake_pending: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            reads_paused: AtomicBool::new(false),
            failing: AtomicUsize::new(0),
            max_pending_event_bytes: config.max_pending_event_bytes,
        })
    }

    /// Queues a command and wakes the loop (one syscall per burst, not per command).
    pub fn submit(&self, command: Command) -> Result<(), Error> {
        if self.stop_requested.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        self.commands.send(command).map_err(|_| Error::Stopped)?;
        self.wake();
        Ok(())
    }

    /// Called after the host took events: resumes reading once the backlog is half gone.
    /// Called as the host starts a poll: what it took before is handled now, so connections
    /// failing behind those events can be closed.
    pub fn before_poll(&self) {
        self.events.settle();
        if self.failing.load(Ordering::Acquire) > 0 {
            self.wake();
        }
    }

    pub fn after_poll(&self) {
        if self.reads_paused.load(Ordering::Acquire)
            && self.events.backlog() <= self.max_pending_event_bytes / 2
            && self.reads_paused.swap(false, Ordering::AcqRel)
        {
            self.wake();
        }
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            // Failing to wake means the loop is gone; the command then fails on its own.
            let _ = self.waker.wake();
        }
    }

    /// Asks the loop to stop; false when a stop was already requested.
    pub fn request_stop(&self, deadline: Instant) -> bool {
        if self.stop_requested.swap(true, Ordering::AcqRel) {
            return false;
        }
        let _ = self.commands.send(Command::Stop { deadline });
        let _ = self.waker.wake();
        true
    }

    pub fn is_stopping(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }
}
