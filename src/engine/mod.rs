//! The engine: one background thread per server runs a `mio` loop that owns the listening
//! socket and every connection. Host threads reach it only through [`Shared`]: commands over a
//! channel plus a waker, the connection table for synchronous checks, and the event queue.

pub mod connection;
pub mod event_loop;
pub mod events;
pub mod slots;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Close every connection with 1001, flush, and exit by `deadline`.
    Stop { deadline: Instant },
}

/// Counters kept by the loop, readable from any thread.
#[derive(Default)]
pub struct Counters {
    /// Broadcast/publish deliveries skipped because the recipient's queue was full.
    pub dropped_deliveries: AtomicU64,
}

/// State shared by the loop and every handle of one server.
pub struct Shared {
    pub table: slots::ConnTable,
    pub events: events::EventQueue,
    pub counters: Counters,
    pub max_buffered: usize,
    pub backpressure: BackpressurePolicy,
    commands: Sender<Command>,
    waker: mio::Waker,
    /// A wake-up is on its way to the loop; later commands need not wake it again.
    wake_pending: AtomicBool,
    stop_requested: AtomicBool,
}

impl Shared {
    pub fn new(config: &crate::config::ServerConfig, commands: Sender<Command>, waker: mio::Waker) -> std::io::Result<Self> {
        Ok(Shared {
            table: slots::ConnTable::default(),
            events: events::EventQueue::new()?,
            counters: Counters::default(),
            max_buffered: config.max_buffered_bytes,
            backpressure: config.backpressure,
            commands,
            waker,
            wake_pending: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
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
