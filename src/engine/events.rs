//! The event queue from the loop to the host, with a file descriptor that is readable while
//! events are waiting (or the server has stopped), for hosts that multiplex it in their own
//! select/epoll/asyncio loop. (Also, briefly, after a wake-up that raced with a poll: the next
//! poll, finding nothing, clears it.)

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
    ///
    /// The wake-up happens after the lock is released: a host woken by the pipe write (on the
    /// same core it may run at once) then finds the lock free instead of blocking on it (two
    /// context switches per batch). The byte may so arrive after that host already took the
    /// batch: a spurious wake-up, which the next poll (finding nothing) clears. Waiting in the
    /// poll for such a write instead would bring the handoff back: on one core the writer is
    /// preempted right after its write, by the host it woke.
    pub fn push_batch(&self, batch: &mut Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        let (was_empty, waiting) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = state.events.is_empty();
            self.backlog.fetch_add(batch.iter().map(cost).sum(), Ordering::AcqRel);
            state.events.extend(batch.drain(..));
            (was_empty, state.waiting > 0)
        };
        if was_empty {
            if self.fd_in_use() {
                self.notify.set();
            }
            if waiting {
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
                    _ => {
                        // A wake-up byte written after its batch was taken (see push_batch):
                        // clear it, so a level-triggered host does not spin on the fd.
                        if self.fd_in_use() {
                            self.notify.clear_if_set();
                        }
                        return Some(0);
                    }
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
    /// A byte may sit in the pipe: set after every write, so `clear_if_set` skips the read
    /// syscall when nothing was written since the last clear.
    armed: AtomicBool,
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
        Ok(NotifyFd { read, write, armed: AtomicBool::new(false) })
    }

    fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    fn set(&self) {
        // SAFETY: writing one byte from a valid buffer; a full pipe is readable anyway.
        unsafe { libc::write(self.write.as_raw_fd(), b"!".as_ptr().cast(), 1) };
        // After the write: a byte in the pipe always ends up with `armed` set.
        self.armed.store(true, Ordering::Release);
    }

    fn clear(&self) {
        // Before the read: a write racing with it leaves `armed` set (or its byte read).
        self.armed.store(false, Ordering::Release);
        self.drain_pipe();
    }

    /// `clear`, but only when something was written since the last clear.
    fn clear_if_set(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            self.drain_pipe();
        }
    }

    fn drain_pipe(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a valid buffer from a non-blocking descriptor we own.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn the_fd_is_readable_exactly_while_events_wait() {
        let queue = EventQueue::new(1).unwrap();
        let fd = queue.fd();
        assert!(!readable(fd));
        queue.push_batch(&mut vec![Event::Drain { conn: 1 }, Event::Drain { conn: 1 }]);
        assert!(readable(fd));
        let mut out = Vec::new();
        assert_eq!(queue.poll(&mut out, 1, Some(Duration::ZERO)), Some(1));
        assert!(readable(fd), "one event still waits");
        assert_eq!(queue.poll(&mut out, 8, Some(Duration::ZERO)), Some(1));
        assert!(!readable(fd));
        // A wake-up byte that lands after its batch was taken (push_batch writes it after
        // releasing the lock): the next poll finds nothing and clears it.
        queue.notify.set();
        assert!(readable(fd));
        assert_eq!(queue.poll(&mut out, 8, Some(Duration::ZERO)), Some(0));
        assert!(!readable(fd));
        // Nothing written since: an empty poll makes no syscall and changes nothing.
        assert_eq!(queue.poll(&mut out, 8, Some(Duration::ZERO)), Some(0));
        assert!(!readable(fd));
        queue.close();
        assert_eq!(queue.poll(&mut out, 8, Some(Duration::ZERO)), None);
        assert!(readable(fd), "readable after close");
    }

    /// A loop thread pushing while the host polls as fast as it can: once everything is taken,
    /// one more (empty) poll leaves the fd not readable, whatever byte landed late.
    #[test]
    fn an_empty_poll_after_the_last_event_leaves_the_fd_clear() {
        let queue = std::sync::Arc::new(EventQueue::new(1).unwrap());
        let fd = queue.fd();
        const BATCHES: usize = 20_000;
        let pusher = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for _ in 0..BATCHES {
                    queue.push_batch(&mut vec![Event::Drain { conn: 1 }]);
                }
            })
        };
        let mut out = Vec::new();
        let mut taken = 0;
        while taken < BATCHES {
            out.clear();
            taken += queue.poll(&mut out, 64, Some(Duration::from_millis(100))).unwrap();
        }
        pusher.join().unwrap();
        assert_eq!(queue.poll(&mut out, 64, Some(Duration::ZERO)), Some(0));
        assert!(!readable(fd), "every event taken and an empty poll done: the fd must not be readable");
    }
}
