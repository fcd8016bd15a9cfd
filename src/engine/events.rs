//! The event queue from the loop to the host, with a file descriptor that is readable exactly
//! while events are waiting (or the server has stopped), for hosts that multiplex it in their
//! own select/epoll/asyncio loop.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::event::Event;

struct State {
    events: VecDeque<Event>,
    closed: bool,
    /// Threads blocked in `poll`: the condvar is signalled only when someone waits.
    waiting: usize,
}

pub struct EventQueue {
    state: Mutex<State>,
    ready: Condvar,
    notify: NotifyFd,
    /// The host asked for the fd. Until then the pipe is left alone: hosts that only call
    /// `poll` save two syscalls per batch.
    fd_in_use: AtomicBool,
    /// What the queued events cost (read without the lock by the loop).
    backlog: AtomicUsize,
    /// Per loop (the loop in the event's connection id): events handed to the host so far
    /// (under the lock).
    handed_out: Box<[AtomicU64]>,
    /// Per loop: events the host has finished with, everything handed out before its latest
    /// poll began.
    settled: Box<[AtomicU64]>,
}

/// What a queued event costs beyond its payload: its slot in the queue plus allocator overhead.
pub const EVENT_COST: usize = std::mem::size_of::<Event>() + 32;

/// What an event costs in memory while it waits (compared with `max_pending_event_bytes`), so
/// a flood of empty messages is bounded like a flood of large ones.
fn cost(event: &Event) -> usize {
    EVENT_COST
        + match event {
            Event::Message { data, .. } | Event::Ping { data, .. } | Event::Pong { data, .. } => data.capacity(),
            Event::Close { reason, .. } => reason.capacity(),
            Event::Open { path, headers, .. } | Event::Handshake { path, headers, .. } => {
                path.capacity() + headers.iter().map(|(n, v)| n.capacity() + v.capacity() + 48).sum::<usize>()
            }
            Event::BridgeDown { reason } => reason.capacity(),
            Event::Reconnecting { failure, .. } | Event::Failed { failure, .. } => failure.text.capacity(),
            Event::Drain { .. } | Event::BridgeUp => 0,
        }
}

impl EventQueue {
    pub fn new(loops: usize) -> std::io::Result<Self> {
        Ok(EventQueue {
            state: Mutex::new(State { events: VecDeque::new(), closed: false, waiting: 0 }),
            ready: Condvar::new(),
            notify: NotifyFd::new()?,
            fd_in_use: AtomicBool::new(false),
            backlog: AtomicUsize::new(0),
            handed_out: (0..loops).map(|_| AtomicU64::new(0)).collect(),
            settled: (0..loops).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub fn fd(&self) -> RawFd {
        if !self.fd_in_use.swap(true, Ordering::AcqRel) {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.events.is_empty() || state.closed {
                self.notify.set();
            }
        }
        self.notify.fd()
    }

    /// A new poll is starting: the host is done with what the previous one returned.
    pub fn settle(&self) {
        for (settled, handed_out) in self.settled.iter().zip(self.handed_out.iter()) {
            settled.store(handed_out.load(Ordering::Acquire), Ordering::Release);
        }
    }

    /// How many of loop `index`'s events (counted from its first) the host has finished handling.
    pub fn settled(&self, index: usize) -> u64 {
        self.settled[index].load(Ordering::Acquire)
    }

    /// What the events waiting for the host cost.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }

    fn fd_in_use(&self) -> bool {
        self.fd_in_use.load(Ordering::Acquire)
    }

    /// Appends a batch (emptying it). The host is woken only when the queue goes from empty
    /// to non-empty: one syscall per batch at most, none while the host lags behind.
    pub fn push_batch(&self, batch: &mut Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = state.events.is_empty();
        self.backlog.fetch_add(batch.iter().map(cost).sum(), Ordering::AcqRel);
        state.events.extend(batch.drain(..));
        if was_empty {
            if self.fd_in_use() {
                self.notify.set();
            }
            if state.waiting > 0 {
                self.ready.notify_all();
            }
        }
    }

    /// Marks the queue finished: pollers drain what is left, then get `None`.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.notify.set();
        self.ready.notify_all();
    }

    /// Moves up to `max` events into `out`, waiting up to `timeout` (`None`: forever) for the
    /// first. Returns the number moved, or `None` once the queue is closed and empty.
    pub fn poll(&self, out: &mut Vec<Event>, max: usize, timeout: Option<Duration>) -> Option<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !state.events.is_empty() {
                let n = max.min(state.events.len());
                let start = out.len();
                out.extend(state.events.drain(..n));
                self.backlog.fetch_sub(out[start..].iter().map(cost).sum(), Ordering::AcqRel);
                if self.handed_out.len() == 1 {
                    // One loop: one add for the batch, not one per event.
                    self.handed_out[0].fetch_add(n as u64, Ordering::AcqRel);
                } else {
                    for event in &out[start..] {
                        let index = super::slots::loop_of(event.conn()).min(self.handed_out.len() - 1);
                        self.handed_out[index].fetch_add(1, Ordering::AcqRel);
                    }
                }
                if state.events.is_empty() && !state.closed && self.fd_in_use() {
                    self.notify.clear();
                }
                return Some(n);
            }
            if state.closed {
                // Keep the fd readable for hosts that drain it themselves (libuv streams).
                self.notify.set();
                return None;
            }
            let wait = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Some(0),
                },
            };
            state.waiting += 1;
            state = match wait {
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(left) => self.ready.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0,
            };
            state.waiting -= 1;
        }
    }
}

/// A level-style readiness flag as a pipe: readable while a byte sits in it. A pipe (rather
/// than an eventfd) because every event loop can watch one, including libuv's stream handles
/// (Node's `net.Socket`), which refuse an eventfd.
struct NotifyFd {
    read: OwnedFd,
    write: OwnedFd,
}

impl NotifyFd {
    fn new() -> std::io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into fds or fails.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we now own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: fd is valid; making it non-blocking and close-on-exec.
            unsafe {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(NotifyFd { read, write })
    }

    fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    fn set(&self) {
        // SAFETY: writing one byte from a valid buffer; a full pipe is readable anyway.
        unsafe { libc::write(self.write.as_raw_fd(), b"!".as_ptr().cast(), 1) };
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a valid buffer from a non-blocking descriptor we own.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}
