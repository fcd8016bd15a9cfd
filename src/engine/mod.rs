//! The engine: one background thread per server runs a `mio` loop that owns the listening
//! socket and every connection. Host threads reach it only through [`Shared`]: commands over a
//! channel plus a waker, the connection table for synchronous checks, and the event queue.

pub mod admission;
pub mod connection;
pub mod conns;
pub mod event_loop;
pub mod events;
pub mod out_queue;
pub mod rate;
pub mod slots;
pub mod topics;
pub mod transport;
pub mod trim;

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
    /// `frame` is already counted in the slot's `in_flight`.
    Send { conn: ConnId, frame: Bytes },
    /// To every open connection but `except` (0: none).
    Broadcast { frame: Bytes, except: ConnId },
    Publish { topic: Arc<str>, frame: Bytes },
    Subscribe { conn: ConnId, topic: Arc<str> },
    Unsubscribe { conn: ConnId, topic: Arc<str> },
    Close { conn: ConnId, code: u16, reason: String },
    /// Drop the TCP connection without a close handshake (reported as 1006).
    Terminate { conn: ConnId },
    /// Answer to a handshake awaiting approval; `protocol` must be one the client offered.
    Accept { conn: ConnId, protocol: Option<String> },
    Reject { conn: ConnId, status: u16, body: String },
    /// Close every connection with 1001, flush, and exit by `deadline`.
    Stop { deadline: Instant },
    /// A message from another server through Redis: to `topic`'s subscribers (None: to every
    /// open connection), encoded once.
    Remote { topic: Option<Arc<str>>, frame: Bytes },
    /// The Redis bridge went up or down.
    BridgeState { up: bool, reason: String },
    /// Dial a client connection whose id the host already holds.
    Connect { conn: ConnId, client: Box<connection::ClientState> },
    /// The resolver answered for client `conn`.
    Resolved { conn: ConnId, result: Result<Vec<std::net::SocketAddr>, String> },
    /// Test-only fault hook: the loop thread panics (see `Server::inject_loop_panic`).
    Panic,
}

impl Command {
    /// The copy of a broadcast, publish or remote message that another loop gets (the frame
    /// is shared, not copied).
    fn clone_for_loop(&self) -> Command {
        match self {
            Command::Broadcast { frame, except } => Command::Broadcast { frame: frame.clone(), except: *except },
            Command::Publish { topic, frame } => Command::Publish { topic: topic.clone(), frame: frame.clone() },
            Command::Remote { topic, frame } => Command::Remote { topic: topic.clone(), frame: frame.clone() },
            _ => unreachable!("only fanned-out commands are cloned"),
        }
    }
}

/// What a command costs in memory while it waits in the channel (the bound on host floods).
pub fn command_cost(command: &Command) -> usize {
    const BASE: usize = 96;
    BASE + match command {
        Command::Send { frame, .. } | Command::Broadcast { frame, .. } => frame.len(),
        Command::Publish { topic, frame } => topic.len() + frame.len(),
        Command::Remote { topic, frame } => topic.as_ref().map_or(0, |t| t.len()) + frame.len(),
        Command::BridgeState { reason, .. } => reason.len(),
        Command::Subscribe { topic, .. } | Command::Unsubscribe { topic, .. } => topic.len(),
        Command::Close { reason, .. } => reason.len(),
        Command::Accept { protocol, .. } => protocol.as_ref().map_or(0, String::len),
        Command::Reject { body, .. } => body.len(),
        Command::Connect { client, .. } => client.url.resource.len() + 512,
        Command::Resolved { result, .. } => result.as_ref().map_or_else(String::len, |a| a.len() * 32),
        Command::Terminate { .. } | Command::Stop { .. } | Command::Panic => 0,
    }
}

/// What a frame sent to one connection costs in its queue (see `out_queue::ENTRY_COST`).
pub fn frame_cost(frame: &Bytes) -> usize {
    frame.len() + out_queue::ENTRY_COST
}

/// Counters kept by one loop, readable from any thread (see [`crate::Stats`]).
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

/// Adds to one of a loop's own counters. Each loop has its own (in its [`LoopPort`]) and is
/// their only writer (in host-driven mode, whichever thread holds the loop), so a plain load
/// and store does: no atomic read-modify-write, several of which every echoed message paid.
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Subtracts from one of a loop's own counters (see [`bump`]).
pub fn unbump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

impl Counters {
    /// Adds these counters to `stats` (a server's are the sum of its loops').
    pub fn add_to(&self, stats: &mut crate::Stats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        stats.open_connections += get(&self.open_connections);
        stats.handshakes_accepted += get(&self.handshakes_accepted);
        stats.handshakes_rejected += get(&self.handshakes_rejected);
        stats.messages_in += get(&self.messages_in);
        stats.messages_out += get(&self.messages_out);
        stats.bytes_in += get(&self.bytes_in);
        stats.bytes_out += get(&self.bytes_out);
        stats.dropped_deliveries += get(&self.dropped_deliveries);
        stats.rate_limited += get(&self.rate_limited);
        stats.closes_clean += get(&self.closes_clean);
        stats.closes_protocol_error += get(&self.closes_protocol_error);
        stats.closes_timeout += get(&self.closes_timeout);
        stats.closes_dropped += get(&self.closes_dropped);
        stats.closes_policy += get(&self.closes_policy);
    }
}

/// State shared by the loop and every handle of one server.
/// What host threads and the other loops reach of one loop: its connection table, its slot
/// allocator, and its command channel with the waker.
pub struct LoopPort {
    pub table: slots::ConnTable,
    /// Slots and generations, for the loop and for host threads creating client connections.
    pub slots: std::sync::Mutex<slots::SlotAllocator>,
    commands: Sender<Command>,
    waker: mio::Waker,
    /// A wake-up is on its way to the loop; later commands need not wake it again.
    pub wake_pending: AtomicBool,
    /// The loop stopped reading because the host lags (see `max_pending_event_bytes`).
    pub reads_paused: AtomicBool,
    /// Connections in `Phase::Failing`: each poll wakes the loop to settle them.
    pub failing: AtomicUsize,
    /// Host-driven mode (`loop_thread` = 0): every turn takes the waiting commands itself, so
    /// a command needs a wake-up only for a thread blocked in the loop's `epoll_wait`
    /// (`waiting`) or for a host that waits on the epoll descriptor itself (`fd_watched`).
    host_driven: bool,
    /// Host-driven mode: a turn is about to wait (or waits) in `epoll_wait` with a timeout.
    /// Set before it looks at `kicked` one last time, cleared after the wait.
    pub waiting: AtomicBool,
    /// Host-driven mode: something for the loop (a command, a poll that settled failing
    /// connections or resumed reads) since its turn began; the turn then does not block.
    pub kicked: AtomicBool,
    /// Host-driven mode: the host took the epoll descriptor (`Server::event_fd`), so every
    /// command must make it readable.
    pub fd_watched: AtomicBool,
    /// This loop's counters (written by the loop only, see [`bump`]).
    pub counters: Counters,
    /// What this loop's send queues cost now (written by the loop only; the server-wide
    /// figure is the sum over loops).
    pub queued_total: AtomicUsize,
}

impl LoopPort {
    pub fn new(index: usize, commands: Sender<Command>, waker: mio::Waker, host_driven: bool) -> Self {
        LoopPort {
            table: slots::ConnTable::default(),
            slots: std::sync::Mutex::new(slots::SlotAllocator::for_loop(index)),
            commands,
            waker,
            wake_pending: AtomicBool::new(false),
            reads_paused: AtomicBool::new(false),
            failing: AtomicUsize::new(0),
            host_driven,
            waiting: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
            fd_watched: AtomicBool::new(false),
            counters: Counters::default(),
            queued_total: AtomicUsize::new(0),
        }
    }

    /// Host-driven mode: the host has the epoll descriptor and may wait on it, so from now on
    /// every command makes it readable (and one skipped before does now).
    /// `queued`: output waits for the next turn (sends made straight into the loop).
    pub fn watch_fd(&self, queued: bool) {
        if !self.fd_watched.swap(true, Ordering::SeqCst) && (queued || self.kicked.load(Ordering::SeqCst)) {
            self.wake();
        }
    }

    /// Called after a command went into the channel (or after state the next turn reads
    /// changed).
    pub fn wake(&self) {
        if self.host_driven {
            // Dekker with `EventLoop::turn`, which sets `waiting` and then reads `kicked`
            // (all SeqCst): either the turn sees the kick and does not block, or this sees
            // it waiting and wakes it. Otherwise the next turn (every poll and service runs
            // one) takes the command, without a syscall. `watch_fd` pairs the same way.
            self.kicked.swap(true, Ordering::SeqCst);
            if !self.waiting.load(Ordering::SeqCst) && !self.fd_watched.load(Ordering::SeqCst) {
                return;
            }
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            // Failing to wake means the loop is gone; the command then fails on its own.
            let _ = self.waker.wake();
        }
    }
}

pub struct Shared {
    /// One per loop thread (option `threads`); a connection id names its loop.
    pub loops: Vec<LoopPort>,
    /// Loops still running: the last one to finish closes the event queue.
    running: AtomicUsize,
    /// Round robin of client connections over the loops.
    next_client: AtomicUsize,
    /// Per-IP limits and the connection cap, across every loop.
    pub admission: std::sync::Mutex<admission::Admission>,
    /// How many loops have subscribers of each topic (the Redis bridge follows topics, not loops).
    topic_loops: std::sync::Mutex<std::collections::HashMap<Arc<str>, usize>>,
    pub events: events::EventQueue,
    /// Host commands refused because the channel to the loop was full.
    dropped_commands: AtomicU64,
    /// Per-connection queue cap (`max_buffered_bytes`), in queue cost.
    pub max_buffered: usize,
    /// Server-wide cap on the cost of every send queue (`max_total_buffered_bytes`).
    pub max_total_buffered: usize,
    /// Cap on the cost of commands waiting in the channel (`max_queued_command_bytes`).
    max_command_bytes: usize,
    /// Cost of the commands waiting in the channel now.
    command_bytes: AtomicUsize,
    /// The loop thread panicked: every call fails with `Error::Panic` from now on.
    panicked: AtomicBool,
    pub backpressure: BackpressurePolicy,
    pub backpressure_close_code: u16,
    stop_requested: AtomicBool,
    pub max_pending_event_bytes: usize,
    /// Host values attached to connections (`set_user_data`), kept on the host side.
    pub user_data: UserData,
    /// The Redis bridge, with option `redis_url`.
    pub bridge: std::sync::OnceLock<Arc<crate::bridge::Bridge>>,
    /// Messages from Redis refused because the command channel was full.
    pub remote_dropped: AtomicU64,
}

/// Values hosts attach to connection ids. Ids are never reused, so a map by id cannot hand a
/// value to the wrong connection; entries go after the connection's `Close` was polled.
#[derive(Default)]
pub struct UserData {
    map: std::sync::Mutex<std::collections::HashMap<ConnId, usize>>,
    count: AtomicUsize,
}

impl UserData {
    pub fn set(&self, conn: ConnId, value: usize) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(conn, value);
        self.count.store(map.len(), Ordering::Release);
    }

    pub fn get(&self, conn: ConnId) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&conn).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// Drops the values of `closed` (emptying it).
    pub fn forget(&self, closed: &mut Vec<ConnId>) {
        if closed.is_empty() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for conn in closed.drain(..) {
            map.remove(&conn);
        }
        self.count.store(map.len(), Ordering::Release);
    }
}

impl Shared {
    pub fn new(config: &crate::config::ServerConfig, loops: Vec<LoopPort>) -> std::io::Result<Self> {
        Ok(Shared {
            running: AtomicUsize::new(loops.len()),
            next_client: AtomicUsize::new(0),
            events: events::EventQueue::new(loops.len())?,
            loops,
            admission: std::sync::Mutex::new(admission::Admission::new(config)),
            topic_loops: std::sync::Mutex::default(),
            dropped_commands: AtomicU64::new(0),
            max_buffered: config.max_buffered_bytes,
            max_total_buffered: config.max_total_buffered_bytes,
            max_command_bytes: config.max_queued_command_bytes,
            command_bytes: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            backpressure: config.backpressure,
            backpressure_close_code: config.backpressure_close_code,
            stop_requested: AtomicBool::new(false),
            max_pending_event_bytes: config.max_pending_event_bytes,
            user_data: UserData::default(),
            bridge: std::sync::OnceLock::new(),
            remote_dropped: AtomicU64::new(0),
        })
    }

    /// Queues a command and wakes the loop (one syscall per burst, not per command). A host
    /// that outruns the loop gets `WouldBlock` once the waiting commands cost
    /// `max_queued_command_bytes` (counted in `dropped_commands`); memory stays bounded.
    pub fn submit(&self, command: Command) -> Result<(), Error> {
        self.check_running()?;
        // Broadcasts and publishes go to every loop (the frame itself is shared).
        let fan_out = matches!(command, Command::Broadcast { .. } | Command::Publish { .. } | Command::Remote { .. });
        let targets = if fan_out { self.loops.len() } else { 1 };
        let cost = command_cost(&command) * targets;
        let before = self.command_bytes.fetch_add(cost, Ordering::AcqRel);
        if before > 0 && before + cost > self.max_command_bytes {
            self.command_bytes.fetch_sub(cost, Ordering::AcqRel);
            self.dropped_commands.fetch_add(1, Ordering::Relaxed);
            return Err(Error::WouldBlock);
        }
        let sent = if fan_out {
            let mut ok = true;
            for port in &self.loops[1..] {
                ok &= port.commands.send(command.clone_for_loop()).is_ok();
                port.wake();
            }
            ok && self.loops[0].commands.send(command).is_ok()
        } else {
            let port = self.port_for(&command);
            let ok = port.commands.send(command).is_ok();
            port.wake();
            ok
        };
        if !sent {
            self.command_bytes.fetch_sub(cost, Ordering::AcqRel);
            return Err(self.check_running().err().unwrap_or(Error::Stopped));
        }
        if fan_out {
            self.loops[0].wake();
        }
        Ok(())
    }

    /// The loop a command for one connection (or a server-wide one) goes to.
    fn port_for(&self, command: &Command) -> &LoopPort {
        let conn = match command {
            Command::Send { conn, .. }
            | Command::Subscribe { conn, .. }
            | Command::Unsubscribe { conn, .. }
            | Command::Close { conn, .. }
            | Command::Terminate { conn }
            | Command::Accept { conn, .. }
            | Command::Reject { conn, .. }
            | Command::Connect { conn, .. }
            | Command::Resolved { conn, .. } => *conn,
            _ => 0,
        };
        &self.loops[slots::loop_of(conn).min(self.loops.len() - 1)]
    }

    /// The loop `conn` lives on (None for an id no loop could have made).
    pub fn port(&self, conn: ConnId) -> Option<&LoopPort> {
        self.loops.get(slots::loop_of(conn))
    }

    /// The table slot of `conn` if it is open.
    pub fn open(&self, conn: ConnId) -> Option<&slots::SlotShared> {
        self.port(conn)?.table.open(conn)
    }

    /// The table slot of `conn` if it exists in any phase.
    pub fn live(&self, conn: ConnId) -> Option<&slots::SlotShared> {
        self.port(conn)?.table.live(conn)
    }

    /// The table slot of `conn` if it awaits approval.
    pub fn pending(&self, conn: ConnId) -> Option<&slots::SlotShared> {
        self.port(conn)?.table.pending(conn)
    }

    /// The loop the next client connection goes to (round robin).
    pub fn next_client_loop(&self) -> &LoopPort {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        &self.loops[n % self.loops.len()]
    }

    /// A loop finished; the last one closes the event queue.
    pub fn loop_finished(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.events.close();
        }
    }

    /// A loop's first subscriber of `topic` joined (true: the server's first).
    pub fn topic_created(&self, topic: &Arc<str>) -> bool {
        let mut map = self.topic_loops.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(topic.clone()).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// A loop's last subscriber of `topic` left (true: the server's last).
    pub fn topic_emptied(&self, topic: &Arc<str>) -> bool {
        let mut map = self.topic_loops.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(topic) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                map.remove(topic);
                true
            }
            None => false,
        }
    }

    /// The loop took `command` off the channel.
    pub fn command_done(&self, command: &Command) {
        self.command_bytes.fetch_sub(command_cost(command), Ordering::AcqRel);
        if let Command::Send { conn, frame } = command {
            if let Some(port) = self.port(*conn) {
                port.table.slot(slots::slot_of(*conn)).in_flight.fetch_sub(frame_cost(frame), Ordering::AcqRel);
            }
        }
    }

    /// A send costing `cost` to a connection whose queue and sends on their way cost `before`
    /// would pass `max_buffered_bytes` or the server-wide cap (the first send always fits).
    pub fn over_cap(&self, before: usize, cost: usize) -> bool {
        (before > 0 && before + cost > self.max_buffered) || self.total_over_limit()
    }

    /// Backpressure `Block`: such a send is refused (`WouldBlock`).
    pub fn refuses_send(&self, before: usize, cost: usize) -> bool {
        self.backpressure == BackpressurePolicy::Block && self.over_cap(before, cost)
    }

    /// `Stopped` after a stop, `Panic` after the loop thread panicked.
    pub fn check_running(&self) -> Result<(), Error> {
        if self.panicked.load(Ordering::Acquire) {
            return Err(Error::Panic("the event loop thread panicked; the server is unusable".to_owned()));
        }
        if self.stop_requested.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        Ok(())
    }

    /// The loop thread died of a panic: fail every later call and release pollers.
    pub fn mark_panicked(&self) {
        self.panicked.store(true, Ordering::Release);
        self.events.close();
    }

    pub fn has_panicked(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    /// One of loop `index`'s queues went from costing `before` to `after` (called by that
    /// loop only).
    pub fn adjust_total(&self, index: usize, before: usize, after: usize) {
        let total = &self.loops[index].queued_total;
        total.store(total.load(Ordering::Relaxed).wrapping_add(after).wrapping_sub(before), Ordering::Release);
    }

    /// What every send queue costs now.
    fn total_queued(&self) -> usize {
        self.loops.iter().map(|port| port.queued_total.load(Ordering::Acquire)).sum()
    }

    /// Every send queue together costs more than `max_total_buffered_bytes`.
    pub fn total_over_limit(&self) -> bool {
        self.total_queued() > self.max_total_buffered
    }

    /// The counters, with the queue gauges.
    pub fn stats(&self) -> crate::Stats {
        let mut stats = crate::Stats { dropped_commands: self.dropped_commands.load(Ordering::Relaxed), ..Default::default() };
        for port in &self.loops {
            port.counters.add_to(&mut stats);
        }
        stats.queued_bytes = self.total_queued() as u64;
        stats.queued_command_bytes = self.command_bytes.load(Ordering::Acquire) as u64;
        if let Some(bridge) = self.bridge.get() {
            let b = bridge.stats();
            stats.bridge_published = b.published;
            stats.bridge_received = b.received;
            stats.bridge_dropped = b.dropped + b.broken + self.remote_dropped.load(Ordering::Relaxed);
            stats.bridge_reconnects = b.reconnects;
        }
        stats
    }

    /// Called after the host took events: resumes reading once the backlog is half gone.
    /// Called as the host starts a poll: what it took before is handled now, so connections
    /// failing behind those events can be closed.
    pub fn before_poll(&self) {
        self.events.settle();
        for port in &self.loops {
            if port.failing.load(Ordering::Acquire) > 0 {
                port.wake();
            }
        }
    }

    pub fn after_poll(&self) {
        for port in &self.loops {
            if port.reads_paused.load(Ordering::Acquire)
                && self.events.backlog() <= self.max_pending_event_bytes / 2
                && port.reads_paused.swap(false, Ordering::AcqRel)
            {
                port.wake();
            }
        }
    }

    /// Asks every loop to stop; false when a stop was already requested.
    pub fn request_stop(&self, deadline: Instant) -> bool {
        if self.stop_requested.swap(true, Ordering::AcqRel) {
            return false;
        }
        for port in &self.loops {
            let stop = Command::Stop { deadline };
            // Charged like any command: the loop subtracts its cost when it takes it.
            self.command_bytes.fetch_add(command_cost(&stop), Ordering::AcqRel);
            if port.commands.send(stop).is_err() {
                self.command_bytes.fetch_sub(command_cost(&Command::Stop { deadline }), Ordering::AcqRel);
            }
            let _ = port.waker.wake();
        }
        true
    }

    pub fn is_stopping(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }
}
