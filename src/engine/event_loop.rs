//! The loop itself: tokens, slots, socket I/O, dispatch of host commands and timers. One
//! thread, one `mio::Poll`, edge-triggered sockets, one read buffer shared by every
//! connection. What a connection does with its bytes is [`Connection`]'s business; the loop
//! applies the [`Action`]s it returns. Deadlines (handshake, ping, close) are swept only when
//! the earliest one is due.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::conns::Conns;
use super::trim::{self, MemoryTrim};
use super::connection::{whole_message, Action, CloseCause, Connection, Outputs, Role};
use crate::error::Error;
use crate::protocol::encoder::{message_frame, message_frame_compressed, message_header, MessageKind};
use super::out_queue::{OutQueue, Spares};
use super::slots::{slot_of, AWAITING_APPROVAL};
use crate::client::reconnect::Failure;
use super::topics::{Change, Topics};
use super::transport::{NoSigPipe, Transport};
use super::{bump, unbump, Command, Shared};
use crate::config::{BackpressurePolicy, ServerConfig};
use crate::event::{ConnId, Event};
use crate::http::static_files;
use crate::protocol::decoder::Decoded;
use crate::protocol::deflate::SharedDeflate;
use crate::protocol::extensions::{CompressionMode, DeflateConfig};

/// A message for one connection.
pub enum Outgoing<'a> {
    /// Encoded by the host thread (the command channel's form, pings, held sends).
    Frame(Bytes),
    /// The host's bytes, encoded by the loop (host-driven mode's direct sends).
    Message(MessageKind, &'a [u8]),
}

impl Outgoing<'_> {
    /// Bytes it takes on the wire, uncompressed.
    fn len(&self) -> usize {
        match self {
            Outgoing::Frame(frame) => frame.len(),
            Outgoing::Message(kind, data) => message_header(*kind, data.len()).len() + data.len(),
        }
    }
}

pub const WAKER: Token = Token(0);
pub const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Shared read buffer size; also the most read from one socket before others get a turn.
const READ_BUFFER: usize = 64 * 1024;
const READ_BUDGET: usize = 4 * READ_BUFFER;
/// Pause before accepting again after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Work one loop turn spends on host commands (one unit per command and per recipient of a
/// broadcast/publish) before reading, writing and accepting get their turn again.
const COMMAND_BUDGET: usize = 16 * 1024;
/// Work on host commands between two looks at the listener within one turn.
const ACCEPT_EVERY: usize = 2 * 1024;
/// Connections one `accept` call takes (and reads the requests of) before others get a turn.
const ACCEPT_BATCH: usize = 64;

/// A connection as the loop holds it: the state machine plus what touches the socket.
struct Conn {
    machine: Connection,
    /// None while a client connection resolves or waits to dial again.
    transport: Option<Transport>,
    /// A client's TCP connect is in progress (writable means it finished).
    connecting: bool,
    /// What it costs is published in the slot's `queued` counter (see `publish_cost`).
    out: OutQueue,
    /// Waiting in the loop's list of connections to flush.
    dirty: bool,
    /// Send FIN once the queue is written.
    shut_after_flush: bool,
    /// FIN already sent.
    write_shut: bool,
}

pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    config: ServerConfig,
    static_root: Option<PathBuf>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// This loop's index among the server's loops (named in its connection ids).
    index: usize,
    /// Connections on this loop (a stop ends when none is left).
    live: usize,
    topics: Topics,
    /// Every connection, by slot.
    conns: Conns<Conn>,
    /// Gives freed memory back after bursts.
    trim: MemoryTrim,
    /// Drained send queues for the next connection that has something to send.
    spare_queues: Spares,
    /// permessage-deflate settings, and the loop's shared contexts (compression on).
    deflate_config: DeflateConfig,
    deflate: Option<SharedDeflate>,
    /// Name lookups for client connections, on threads of their own (started on first use).
    resolver: Option<crate::client::Resolver>,
    read_buf: Box<[u8]>,
    /// This turn's events for the host, handed over in one batch.
    events: Vec<Event>,
    /// Scratch for a connection's actions (empty between calls).
    actions: Vec<Action>,
    /// Scratch for a connection's decoded frames (empty between calls).
    decoded: Vec<Decoded>,
    dirty: Vec<usize>,
    read_again: Vec<usize>,
    /// Readable connections left unread while the host lags behind.
    paused: Vec<usize>,
    recipients: Vec<usize>,
    next_sweep: Option<Instant>,
    stopping: Option<Instant>,
    /// `accept` failed for lack of resources; try again at the next sweep.
    accept_retry: bool,
    /// `accept` stopped at `ACCEPT_BATCH` with more connections waiting: go on next turn.
    accept_more: bool,
    /// Commands were left in the channel when the turn's budget ran out.
    commands_left: bool,
    /// Events handed to the queue so far (sequence numbers for `Failing`).
    pushed_total: u64,
    /// Slots that may be in `Failing`.
    failing: Vec<usize>,
    /// Readiness scratch for `turn`.
    ready: Events,
    /// The loop has stopped for good.
    finished: bool,
}

impl EventLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        poll: Poll,
        listener: Option<TcpListener>,
        shared: Arc<Shared>,
        commands: Receiver<Command>,
        config: ServerConfig,
        static_root: Option<PathBuf>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let deflate_config = config.deflate();
        EventLoop {
            poll,
            listener,
            shared,
            commands,
            index,
            live: 0,
            config,
            static_root,
            tls,
            topics: Topics::default(),
            conns: Conns::default(),
            trim: MemoryTrim::default(),
            spare_queues: Spares::default(),
            deflate: (deflate_config.mode != CompressionMode::Off).then(|| SharedDeflate::new(&deflate_config)),
            deflate_config,
            resolver: None,
            read_buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            events: Vec::new(),
            actions: Vec::new(),
            decoded: Vec::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            paused: Vec::new(),
            recipients: Vec::new(),
            next_sweep: None,
            stopping: None,
            accept_retry: false,
            accept_more: false,
            commands_left: false,
            pushed_total: 0,
            failing: Vec::new(),
            ready: Events::with_capacity(1024),
            finished: false,
        }
    }

    /// Runs the loop on this thread until the server has stopped.
    pub fn run(mut self) {
        while self.turn(None) {}
    }

    /// One turn: waits for I/O (at most `max_wait`, `None`: until something happens or a
    /// deadline is due), reads, runs host commands, sweeps deadlines, writes, and hands the
    /// turn's events to the host. Returns false once the loop has finished (the event queue
    /// is closed then). The background thread calls it forever; in host-driven mode
    /// (`loop_thread` = 0) the host's poll does.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> bool {
        if self.finished {
            return false;
        }
        let now = Instant::now();
        let host_driven = !self.config.loop_thread;
        if host_driven {
            // No wake-up announces the commands the host sent since the last turn (see
            // `LoopPort::wake`): run them and write their output before waiting, so that
            // one `epoll_wait` per turn does.
            self.shared.loops[self.index].kicked.store(false, Ordering::SeqCst);
            self.drain_commands(now);
            self.flush_dirty();
        }
        let idle = self.read_again.is_empty() && !self.commands_left && !self.accept_more && self.dirty.is_empty() && self.events.is_empty();
        let mut timeout = if idle {
            self.next_sweep.into_iter().chain(self.stopping).min().map(|t| t.saturating_duration_since(now))
        } else {
            Some(Duration::ZERO)
        };
        if let Some(max) = max_wait {
            timeout = Some(timeout.map_or(max, |t| t.min(max)));
        }
        let port = &self.shared.loops[self.index];
        let blocking = host_driven && timeout != Some(Duration::ZERO);
        if blocking {
            // Dekker with `LoopPort::wake`: announce the wait, then look for a kick.
            port.waiting.store(true, Ordering::SeqCst);
            if port.kicked.load(Ordering::SeqCst) {
                timeout = Some(Duration::ZERO);
            }
        }
        let mut ready = std::mem::replace(&mut self.ready, Events::with_capacity(0));
        let polled = self.poll.poll(&mut ready, timeout);
        if blocking {
            port.waiting.store(false, Ordering::SeqCst);
        }
        if let Err(e) = polled {
            self.ready = ready;
            if e.kind() == io::ErrorKind::Interrupted {
                return true;
            }
            self.finish();
            return false;
        }
        let now = Instant::now();
        // The loop waited and nothing came: a quiet moment (for `MemoryTrim`).
        let quiet = ready.is_empty() && timeout != Some(Duration::ZERO);
        let mut woken = std::mem::take(&mut self.commands_left);
        for event in ready.iter() {
            match event.token() {
                WAKER => woken = true,
                LISTENER => self.accept(now),
                Token(token) => {
                    let slot = token - FIRST_CONN;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        // With FIN/RST already signalled there is no later edge to wait
                        // for: read to the end now.
                        let drain = event.is_read_closed() || event.is_error();
                        self.on_readable(slot, drain, now);
                    }
                    if event.is_writable() {
                        self.mark_dirty(slot);
                    }
                }
            }
        }
        self.ready = ready;
        if woken {
            self.drain_commands(now);
        }
        for slot in std::mem::take(&mut self.read_again) {
            self.on_readable(slot, true, now);
        }
        if self.accept_more {
            self.accept(now);
        }
        if self.next_sweep.is_some_and(|t| now >= t) {
            if let Some(at) = self.trim.run_if_due(now, quiet) {
                self.schedule(at);
            }
            self.settle_failures(now, false);
            self.sweep(now);
            if self.accept_retry {
                self.accept(now);
            }
        }
        self.flush_dirty();
        if let Some(deadline) = self.stopping {
            if self.live == 0 || now >= deadline {
                self.abort_all(now);
                self.publish_events();
                self.finish();
                return false;
            }
        }
        self.publish_events();
        true
    }

    fn finish(&mut self) {
        self.finished = true;
        self.shared.loop_finished();
        if !self.config.loop_thread {
            // The host may wait on the epoll descriptor (its event fd in this mode): leave it
            // readable, as a loop thread leaves the event pipe, so the host polls and learns
            // of the stop.
            self.shared.loops[self.index].wake();
        }
        // A host-driven loop lives on in every `ServerHandle` clone: give back what it holds.
        self.conns = Conns::default();
        self.read_buf = Box::default();
        self.spare_queues = Spares::default();
        self.deflate = None;
        self.events = Vec::new();
        self.decoded = Vec::new();
        self.ready = Events::with_capacity(0);
    }

    /// Output waits for the next turn to write it.
    pub fn has_output(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The descriptor of this loop's `epoll` instance: readable while the loop has I/O to do
    /// (host-driven mode hands it out as the server's event fd).
    pub fn poll_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    fn admission(&self) -> std::sync::MutexGuard<'_, super::admission::Admission> {
        self.shared.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands this turn's events to the host in one batch.
    fn publish_events(&mut self) {
        self.pushed_total += self.events.len() as u64;
        self.shared.events.push_batch(&mut self.events);
    }

    // ---- driving connections ---------------------------------------------------------------

    /// Runs one input of the connection in `slot` and applies what it asks for.
    fn drive<R>(&mut self, slot: usize, now: Instant, input: impl FnOnce(&mut Connection, &ServerConfig, &mut Outputs) -> R) -> Option<R> {
        let conn = self.conns.get_mut(slot)?;
        let mut out = Outputs {
            events: &mut self.events,
            event_base: self.pushed_total,
            actions: &mut self.actions,
            queued: conn.out.cost(),
            settled: self.shared.events.settled(self.index),
            deflate: self.deflate.as_mut(),
            decoded: &mut self.decoded,
            messages_in: 0,
        };
        let result = input(&mut conn.machine, &self.config, &mut out);
        let messages_in = out.messages_in;
        if messages_in > 0 {
            bump(&self.shared.loops[self.index].counters.messages_in, messages_in);
        }
        if !self.actions.is_empty() {
            self.apply(slot, now);
        }
        Some(result)
    }

    fn apply(&mut self, slot: usize, now: Instant) {
        let mut actions = std::mem::take(&mut self.actions);
        for action in actions.drain(..) {
            let Some(conn) = self.conns.get_mut(slot) else { break };
            let id = conn.machine.id;
            let table = self.shared.loops[self.index].table.slot(slot);
            let counters = &self.shared.loops[self.index].counters;
            match action {
                Action::Queue(bytes) => self.queue(slot, bytes),
                Action::Opened => {
                    table.id.store(id, Ordering::Release);
                    bump(&counters.open_connections, 1);
                    if let Some(at) = self.trim.freed(trim::HANDSHAKE_BYTES, now) {
                        self.schedule(at);
                    }
                }
                Action::LeftOpen => {
                    let _ = table.id.compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire);
                    let shared = &self.shared;
                    self.topics.leave_all(id, |topic| {
                        if let Some(b) = shared.bridge.get().filter(|_| shared.topic_emptied(topic)) {
                            b.unsubscribe(topic)
                        }
                    });
                }
                Action::AwaitApproval => table.id.store(id | AWAITING_APPROVAL, Ordering::Release),
                Action::Answered => {
                    let _ = table.id.compare_exchange(id | AWAITING_APPROVAL, 0, Ordering::AcqRel, Ordering::Acquire);
                }
                Action::ServeHttp { method, target, conditional } => {
                    let Some(root) = &self.static_root else {
                        let response = crate::http::refusal::upgrade_required();
                        self.queue(slot, Bytes::from(response.head));
                        self.queue(slot, Bytes::from(response.body));
                        continue;
                    };
                    let mut request = static_files::StaticRequest::new(&method, &target);
                    for (name, value) in &conditional {
                        request = request.header(name, value.as_bytes());
                    }
                    let response = static_files::serve(root, &request, self.config.max_static_file_bytes);
                    self.queue(slot, Bytes::from(response.head));
                    // The body goes out as the socket drains (files run to megabytes).
                    if let Some(conn) = self.conns.get_mut(slot) {
                        conn.out.push_body(response.body, &mut self.spare_queues);
                    }
                    self.mark_dirty(slot);
                }
                Action::Failing => {
                    self.failing.push(slot);
                    self.shared.loops[self.index].failing.store(self.failing.len(), Ordering::Release);
                }
                Action::Closed { cause, clean } => {
                    let counter = match (cause, clean) {
                        (CloseCause::Policy, _) => &counters.closes_policy,
                        (_, true) => &counters.closes_clean,
                        (CloseCause::Protocol, false) => &counters.closes_protocol_error,
                        (CloseCause::Timeout, false) => &counters.closes_timeout,
                        (CloseCause::Dropped | CloseCause::Server | CloseCause::Clean, false) => &counters.closes_dropped,
                    };
                    bump(counter, 1);
                    // Every announced connection gets exactly one Close: the one place to stop counting it.
                    unbump(&counters.open_connections, 1);
                }
                Action::CountRateLimited => bump(&counters.rate_limited, 1),
                Action::CountHandshakeAccepted => bump(&counters.handshakes_accepted, 1),
                Action::CountHandshakeRejected => bump(&counters.handshakes_rejected, 1),
                Action::Schedule(at) => self.schedule(at),
                Action::ShutdownWrite => {
                    conn.shut_after_flush = true;
                    self.mark_dirty(slot);
                }
                Action::Remove => self.remove(slot, now),
                Action::ReadLater => {
                    if !self.read_again.contains(&slot) {
                        self.read_again.push(slot);
                    }
                }
                Action::Dial(target) => self.dial(slot, target, now),
                Action::DropTransport => self.drop_transport(slot),
                Action::CountHeldDropped => bump(&counters.dropped_deliveries, 1),
            }
        }
        self.actions = actions;
    }

    // ---- host commands -------------------------------------------------------------------

    fn drain_commands(&mut self, now: Instant) {
        self.shared.loops[self.index].wake_pending.store(false, Ordering::Release);
        if !self.paused.is_empty() && !self.shared.loops[self.index].reads_paused.load(Ordering::Acquire) {
            // The host caught up (Shared::after_poll): read what was left waiting.
            self.read_again.append(&mut self.paused);
        }
        let mut budget = COMMAND_BUDGET;
        let mut next_accept = COMMAND_BUDGET - ACCEPT_EVERY;
        while budget > 0 {
            let Ok(command) = self.commands.try_recv() else { break };
            self.shared.command_done(&command);
            budget = budget.saturating_sub(self.execute(command, now));
            if budget <= next_accept {
                // A turn full of commands must not hold new clients back: take them (and
                // read their requests) on the way, one `accept` call per slice.
                next_accept = budget.saturating_sub(ACCEPT_EVERY);
                if self.listener.is_some() && !self.accept_retry {
                    self.accept(now);
                }
            }
        }
        if budget == 0 {
            // More may wait: come back after one round of I/O instead of starving it.
            self.commands_left = !self.commands.is_empty();
        }
        // After the host's replies (just queued) come the closes they were waiting for.
        self.settle_failures(now, false);
    }

    /// Carries out one command; returns the work it took (1 + recipients).
    fn execute(&mut self, command: Command, now: Instant) -> usize {
        match command {
            Command::Send { conn, frame } => {
                if self.open_conn(conn).is_none() {
                    // A client not open yet may hold it until it opens.
                    if self.live_conn(conn).is_some() {
                        self.drive(slot_of(conn), now, |c, _, out| c.hold(frame, out));
                    }
                    return 1;
                }
                self.send(conn, Outgoing::Frame(frame), Some(now));
                1
            }
            Command::Broadcast { frame, except } => {
                let mut recipients = std::mem::take(&mut self.recipients);
                // Every connection this server accepted (client connections are the host's own).
                recipients.extend(
                    self.conns
                        .iter()
                        .filter(|(_, c)| c.machine.is_open() && c.machine.id != except && c.machine.role == Role::Server)
                        .map(|(slot, _)| slot),
                );
                self.deliver_all(recipients, &frame, now)
            }
            Command::Publish { topic, frame } => {
                let mut recipients = std::mem::take(&mut self.recipients);
                recipients.extend(self.topics.members(&topic).map(slot_of));
                self.deliver_all(recipients, &frame, now)
            }
            Command::Subscribe { conn, topic } => {
                if self.open_conn(conn).is_some() && self.topics.subscribe(conn, topic.clone()) == Change::Created {
                    // The server's first subscriber: follow the topic on Redis too.
                    if let Some(bridge) = self.shared.bridge.get().filter(|_| self.shared.topic_created(&topic)) {
                        bridge.subscribe(&topic);
                    }
                }
                1
            }
            Command::Unsubscribe { conn, topic } => {
                if self.open_conn(conn).is_some() && self.topics.unsubscribe(conn, &topic) == Change::Emptied {
                    if let Some(bridge) = self.shared.bridge.get().filter(|_| self.shared.topic_emptied(&topic)) {
                        bridge.unsubscribe(&topic);
                    }
                }
                1
            }
            Command::Remote { topic: None, frame } => self.execute(Command::Broadcast { frame, except: 0 }, now),
            Command::Remote { topic: Some(topic), frame } => self.execute(Command::Publish { topic, frame }, now),
            Command::BridgeState { up, reason } => {
                self.events.push(if up { Event::BridgeUp } else { Event::BridgeDown { reason } });
                1
            }
            Command::Close { conn, code, reason } => {
                if self.open_conn(conn).is_some() {
                    self.drive(slot_of(conn), now, |c, config, out| c.close(code, &reason, config, now, out));
                }
                1
            }
            Command::Terminate { conn } => {
                if self.live_conn(conn).is_some() {
                    self.drive(slot_of(conn), now, |c, _, out| c.terminate(now, out));
                }
                1
            }
            Command::Connect { conn, client } => {
                self.connect(conn, *client, now);
                1
            }
            Command::Resolved { conn, result } => {
                if self.live_conn(conn).is_some_and(|c| c.machine.is_dialing() && c.transport.is_none()) {
                    match result.map(|addrs| addrs.into_iter().next()) {
                        Ok(Some(addr)) => self.connect_tcp(slot_of(conn), addr, now),
                        Ok(None) => self.dial_failed(slot_of(conn), Failure::Dns, "the name resolved to no address".to_owned(), now),
                        Err(e) => self.dial_failed(slot_of(conn), Failure::Dns, e, now),
                    }
                }
                1
            }
            Command::Accept { conn, protocol } => {
                if self.live_conn(conn).is_some() {
                    self.drive(slot_of(conn), now, |c, config, out| c.accept(protocol, config, now, out));
                }
                1
            }
            Command::Reject { conn, status, body } => {
                if self.live_conn(conn).is_some() {
                    self.drive(slot_of(conn), now, |c, config, out| c.reject(status, &body, config, now, out));
                }
                1
            }
            Command::Stop { deadline } => {
                self.begin_stop(deadline, now);
                1
            }
            Command::Panic => panic!("fault injection: panic on the loop thread"),
        }
    }

    /// Queues a message for the open connection `conn`, encoded for its role and compression
    /// (a plain server frame straight into the queue), and applies backpressure `Close`.
    /// (`now`: None to read the clock only if it is needed.)
    fn send(&mut self, conn: ConnId, message: Outgoing<'_>, now: Option<Instant>) {
        let slot = slot_of(conn);
        let Some(entry) = self.conns.get_mut(slot) else { return };
        bump(&self.shared.loops[self.index].counters.messages_out, 1);
        match message {
            Outgoing::Message(kind, data) if entry.machine.role == Role::Server && entry.machine.codec().is_none() => {
                // The common send, with the connection in hand (no lookup per step).
                let head = message_header(kind, data.len());
                entry.out.push_parts(&[&head, data], &mut self.spare_queues);
                if !entry.dirty {
                    entry.dirty = true;
                    self.dirty.push(slot);
                }
                publish_queue_cost(&self.shared, self.index, slot, entry.out.cost());
            }
            message => {
                let frame = match message {
                    Outgoing::Frame(frame) => frame,
                    Outgoing::Message(kind, data) => message_frame(kind, data),
                };
                let frame = entry.machine.wire_frame(frame, &self.deflate_config, self.deflate.as_mut());
                self.queue(slot, frame);
            }
        }
        let over = self.open_conn(conn).is_some_and(|c| c.out.cost() > self.shared.max_buffered);
        if over && self.shared.backpressure == BackpressurePolicy::Close {
            let code = self.shared.backpressure_close_code;
            let now = now.unwrap_or_else(Instant::now);
            self.drive(slot, now, |c, config, out| c.close(code, "send buffer full", config, now, out));
        }
    }

    /// Host-driven mode: a send made between turns by the thread holding the loop goes into
    /// the connection's queue at once, with no channel, no wake-up and (for a small plain
    /// message) no allocation; the next turn writes it. `Err` hands the message back for the
    /// channel: commands already wait there (they go first), or `conn` is not open here (the
    /// channel's path says why, or holds it for a client still connecting).
    pub fn send_now<'a>(&mut self, conn: ConnId, message: Outgoing<'a>) -> Result<Result<(), Error>, Outgoing<'a>> {
        if self.finished || !self.commands.is_empty() || self.shared.open(conn).is_none() || self.open_conn(conn).is_none() {
            return Err(message);
        }
        let slot = slot_of(conn);
        let port = &self.shared.loops[self.index];
        let table = port.table.slot(slot);
        let before = self.conns.get(slot).map_or(0, |c| c.out.cost()) + table.in_flight.load(Ordering::Acquire);
        if self.shared.refuses_send(before, message.len() + super::out_queue::ENTRY_COST) {
            table.blocked.store(true, Ordering::Release);
            return Ok(Err(Error::WouldBlock));
        }
        // A host waiting on the epoll descriptor itself must see it readable to run the turn
        // that writes this (see `LoopPort::wake`).
        if port.fd_watched.load(Ordering::SeqCst) {
            port.wake();
        }
        self.send(conn, message, None);
        Ok(Ok(()))
    }

    /// The connection with this exact id, whatever its phase.
    fn live_conn(&self, conn: ConnId) -> Option<&Conn> {
        self.conns.get(slot_of(conn)).filter(|c| c.machine.id == conn)
    }

    fn open_conn(&self, conn: ConnId) -> Option<&Conn> {
        self.live_conn(conn).filter(|c| c.machine.is_open())
    }

    /// Queues one shared frame for many recipients (the frame is never copied).
    /// `recipients` is the loop's reusable scratch vector; it is cleared and put back.
    fn deliver_all(&mut self, mut recipients: Vec<usize>, frame: &Bytes, now: Instant) -> usize {
        let work = 1 + recipients.len();
        // The compressed form per window size, made once, only if a recipient wants it.
        let mut compressed: [Option<Bytes>; 7] = Default::default();
        for &slot in &recipients {
            self.deliver(slot, frame, &mut compressed, now);
        }
        recipients.clear();
        self.recipients = recipients;
        work
    }

    /// Queues a shared frame for one recipient of a broadcast/publish, applying backpressure.
    fn deliver(&mut self, slot: usize, frame: &Bytes, compressed: &mut [Option<Bytes>; 7], now: Instant) {
        let Some(conn) = self.conns.get(slot).filter(|c| c.machine.is_open()) else { return };
        let cost = conn.out.cost();
        if self.shared.over_cap(cost, frame.len() + super::out_queue::ENTRY_COST) {
            match self.shared.backpressure {
                BackpressurePolicy::Block => bump(&self.shared.loops[self.index].counters.dropped_deliveries, 1),
                BackpressurePolicy::Close => {
                    let code = self.shared.backpressure_close_code;
                    self.drive(slot, now, |c, config, out| c.close(code, "send buffer full", config, now, out));
                }
            }
            return;
        }
        bump(&self.shared.loops[self.index].counters.messages_out, 1);
        let shared_window = conn.machine.codec().and_then(|c| c.shared_window(&self.deflate_config));
        let frame = match (shared_window, self.deflate.as_mut(), conn.machine.role) {
            // No context takeover on a server connection: one compressed frame for all of them.
            (Some(bits), Some(shared), Role::Server) => {
                compressed[usize::from(bits - 9)]
                    .get_or_insert_with(|| {
                        let compressed = whole_message(frame).and_then(|(kind, payload)| {
                            shared.compressor(bits).compress(payload).map(|c| message_frame_compressed(kind, &c))
                        });
                        compressed.unwrap_or_else(|| frame.clone())
                    })
                    .clone()
            }
            _ => {
                let conn = self.conns.get_mut(slot).expect("checked above");
                conn.machine.wire_frame(frame.clone(), &self.deflate_config, self.deflate.as_mut())
            }
        };
        self.queue(slot, frame);
    }

    /// Appends bytes to a connection's queue and publishes its new cost.
    fn queue(&mut self, slot: usize, bytes: Bytes) {
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.out.push(bytes, &mut self.spare_queues);
            self.publish_cost(slot);
            self.mark_dirty(slot);
        }
    }

    /// Tells host threads (slot counter) and the server-wide total what the queue costs now.
    fn publish_cost(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        publish_queue_cost(&self.shared, self.index, slot, conn.out.cost());
    }

    fn begin_stop(&mut self, deadline: Instant, now: Instant) {
        self.stopping = Some(deadline);
        self.settle_failures(now, true);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for slot in 0..self.conns.span() {
            self.drive(slot, now, |c, config, out| c.stop(deadline, config, now, out));
        }
    }

    /// At the stop deadline: whatever is left is dropped, the host told.
    fn abort_all(&mut self, now: Instant) {
        for slot in 0..self.conns.span() {
            self.drive(slot, now, |c, _, out| c.abort(now, out));
        }
    }

    /// Closes the `Failing` connections whose earlier messages the host has handled (all of
    /// them when `force`, and any whose deadline passed).
    fn settle_failures(&mut self, now: Instant, force: bool) {
        if self.failing.is_empty() {
            return;
        }
        let settled = self.shared.events.settled(self.index);
        let mut failing = std::mem::take(&mut self.failing);
        failing.retain(|&slot| self.drive(slot, now, |c, config, out| c.settle(settled, force, config, now, out)).unwrap_or(false));
        // Settling may have added none: nothing else pushes to `failing` meanwhile.
        failing.append(&mut self.failing);
        self.failing = failing;
        self.shared.loops[self.index].failing.store(self.failing.len(), Ordering::Release);
    }

    // ---- sockets ---------------------------------------------------------------------------

    fn accept(&mut self, now: Instant) {
        self.accept_retry = false;
        self.accept_more = false;
        for accepted in 0.. {
            if accepted == ACCEPT_BATCH {
                // The rest waits for the next turn (the listener raises no new edge for it):
                // a burst of connects does not make one long turn, and the handshake
                // garbage of one batch is freed before the next batch's connections are
                // stored (no holes left between them).
                self.accept_more = true;
                return;
            }
            let Some(listener) = self.listener.as_ref() else { return };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::ConnectionAborted => continue,
                // Out of descriptors and the like: the kernel keeps the connection queued, but
                // an edge-triggered listener will not say so again; retry from the sweep.
                Err(_) => {
                    self.accept_retry = true;
                    self.schedule(now + ACCEPT_RETRY);
                    return;
                }
            };
            if let Err(refusal) = self.admission().admit(peer.ip(), now) {
                bump(&self.shared.loops[self.index].counters.handshakes_rejected, 1);
                let _ = NoSigPipe(&stream).write(&[refusal.head, refusal.body].concat());
                continue;
            }
            let _ = stream.set_nodelay(true);
            let transport = match Transport::new(stream, self.tls.as_ref()) {
                Ok(t) => t,
                Err(_) => {
                    self.release(peer.ip(), now);
                    continue;
                }
            };
            let Some(id) = self.shared.loops[self.index].slots.lock().unwrap_or_else(|e| e.into_inner()).allocate() else {
                // Every slot in use (max_connections keeps this from happening).
                self.release(peer.ip(), now);
                continue;
            };
            let slot = slot_of(id);
            let mut out = Outputs {
                events: &mut self.events,
                event_base: self.pushed_total,
                actions: &mut self.actions,
                queued: 0,
                settled: 0,
                deflate: None,
                decoded: &mut self.decoded,
                messages_in: 0,
            };
            let machine = Connection::accepted(id, peer, &self.config, now, &mut out);
            let mut conn = Conn {
                machine,
                transport: Some(transport),
                connecting: false,
                out: OutQueue::default(),
                dirty: false,
                shut_after_flush: false,
                write_shut: false,
            };
            let token = Token(slot + FIRST_CONN);
            let tcp = conn.transport.as_mut().expect("just made").tcp();
            if self.poll.registry().register(tcp, token, Interest::READABLE | Interest::WRITABLE).is_err() {
                self.actions.clear();
                self.shared.loops[self.index].slots.lock().unwrap_or_else(|e| e.into_inner()).release(slot);
                self.release(peer.ip(), now);
                continue;
            }
            self.shared.loops[self.index].table.slot(slot).live.store(id, Ordering::Release);
            self.conns.insert(slot, conn);
            self.live += 1;
            self.apply(slot, now);
            // A client usually sends its request right behind the connect: read it now
            // rather than at the next turn's readiness, so a handshake takes one loop turn,
            // not two (turns run long when a flood of host commands fills them).
            self.on_readable(slot, false, now);
        }
    }

    fn release(&mut self, ip: std::net::IpAddr, now: Instant) {
        let at = self.admission().release(ip, now);
        if let Some(at) = at {
            self.schedule(at);
        }
    }

    /// Reads what the socket has. `drain`: keep reading to EAGAIN/EOF even after a short read.
    fn on_readable(&mut self, slot: usize, drain: bool, now: Instant) {
        let handshaking = self.conns.get(slot).is_some_and(|c| c.machine.is_handshaking());
        // Handshakes are read whatever the backlog: they add little to it, and a lagging host
        // must not stall new clients.
        if !handshaking && self.shared.events.backlog() > self.shared.max_pending_event_bytes {
            // The host lags: leave the bytes in the kernel (TCP pushes back) until it polls.
            self.shared.loops[self.index].reads_paused.store(true, Ordering::Release);
            self.shared.after_poll(); // the host may have caught up already
            if !self.paused.contains(&slot) {
                self.paused.push(slot);
            }
            return;
        }
        if self.conns.get(slot).is_some_and(|c| c.machine.has_backlog()) {
            // Input from earlier reads waits (inflating is bounded per turn): work on that,
            // and read the socket only once it is done.
            self.drive(slot, now, |c, config, out| c.on_resume(config, now, out));
            if self.conns.get(slot).is_none_or(|c| c.machine.has_backlog()) {
                return;
            }
        }
        let mut budget = READ_BUDGET;
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(conn) = self.conns.get_mut(slot) {
            if conn.connecting {
                // Readable before writable: the connect failed (the read says why).
                self.finish_connect(slot, now);
                if self.conns.get(slot).is_none_or(|c| c.connecting || c.transport.is_none()) {
                    break;
                }
                continue;
            }
            let Some(transport) = conn.transport.as_mut() else { break };
            match transport.read(&mut buf) {
                Ok(0) => {
                    self.drive(slot, now, |c, _, out| c.on_disconnect(now, out));
                    break;
                }
                Ok(n) => {
                    bump(&self.shared.loops[self.index].counters.bytes_in, n as u64);
                    let plain = matches!(transport, Transport::Plain(_));
                    self.drive(slot, now, |c, config, out| c.on_bytes(&buf[..n], config, now, out));
                    if self.conns.get(slot).is_some_and(|c| c.machine.has_backlog()) {
                        break; // `ReadLater` put it on the next turn's list
                    }
                    // A short read from TCP drained the socket: skip the read that would only
                    // say EAGAIN (data arriving later raises a new edge). TLS may hold more
                    // plaintext, and a FIN/RST seen with this event raises no new edge, so
                    // those read on.
                    if plain && !drain && n < buf.len() {
                        break;
                    }
                    if n >= budget {
                        self.read_again.push(slot);
                        break;
                    }
                    budget -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.drive(slot, now, |c, _, out| c.on_io_error(&e, now, out));
                    break;
                }
            }
        }
        if matches!(self.conns.get(slot), Some(Conn { transport: Some(Transport::Tls(_)), .. })) {
            // TLS may have produced handshake records or alerts to send.
            self.mark_dirty(slot);
        }
        self.read_buf = buf;
        if handshaking && self.conns.get(slot).is_some_and(|c| c.dirty) {
            // The handshake's answer goes out now, not after this turn's host commands (a
            // flood of them can fill a turn).
            self.flush(slot, Instant::now());
        }
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        let now = Instant::now();
        for &slot in &dirty {
            self.flush(slot, now);
        }
        dirty.clear();
        // Flushing may have marked others (none today); keep them for the next turn.
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    fn flush(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        conn.dirty = false;
        if conn.connecting {
            return self.finish_connect(slot, now);
        }
        let Some(transport) = conn.transport.as_mut() else { return };
        let written = match conn.out.flush(transport, &mut self.spare_queues) {
            Ok(n) => n,
            Err(e) => {
                self.drive(slot, now, |c, _, out| c.on_io_error(&e, now, out));
                return;
            }
        };
        if written > 0 {
            bump(&self.shared.loops[self.index].counters.bytes_out, written as u64);
            self.publish_cost(slot);
            let Some(conn) = self.conns.get_mut(slot) else { return };
            let shared = self.shared.loops[self.index].table.slot(slot);
            let left = shared.queued.load(Ordering::Relaxed) + shared.in_flight.load(Ordering::Acquire);
            // (A load before the swap: most flushes find no blocked sender.)
            let drained = left <= self.shared.max_buffered / 2 && shared.blocked.load(Ordering::Acquire);
            if drained && conn.machine.is_open() && shared.blocked.swap(false, Ordering::AcqRel) {
                self.events.push(Event::Drain { conn: conn.machine.id });
            }
        }
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if conn.out.is_empty() && conn.shut_after_flush && !conn.write_shut {
            conn.write_shut = true;
            if let Some(transport) = conn.transport.as_mut() {
                transport.shutdown_write();
            }
        }
    }

    // ---- client connections ----------------------------------------------------------------

    /// A client connection the host asked for (its id was allocated by the host thread).
    fn connect(&mut self, id: ConnId, client: super::connection::ClientState, now: Instant) {
        let slot = slot_of(id);
        if self.stopping.is_some() {
            self.shared.loops[self.index].slots.lock().unwrap_or_else(|e| e.into_inner()).release(slot);
            self.shared.loops[self.index].table.slot(slot).live.store(0, Ordering::Release);
            return;
        }
        let mut out = Outputs { events: &mut self.events, event_base: self.pushed_total, actions: &mut self.actions, queued: 0, settled: 0, deflate: None, decoded: &mut self.decoded, messages_in: 0 };
        let machine = Connection::dialing(id, client, now, &mut out);
        self.conns.insert(
            slot,
            Conn {
                machine,
                transport: None,
                connecting: false,
                out: OutQueue::default(),
                dirty: false,
                shut_after_flush: false,
                write_shut: false,
            },
        );
        self.admission().count_client();
        self.live += 1;
        self.apply(slot, now);
    }

    /// Resolves the target (off this thread unless it is an IP literal), then connects.
    fn dial(&mut self, slot: usize, target: super::connection::DialTarget, now: Instant) {
        let Some(id) = self.conns.get(slot).map(|c| c.machine.id) else { return };
        if self.resolver.is_none() {
            let shared = Arc::downgrade(&self.shared);
            self.resolver = Some(crate::client::Resolver::new(4, 1024, move |resolved| {
                if let Some(shared) = shared.upgrade() {
                    let _ = shared.submit(Command::Resolved { conn: resolved.id, result: resolved.result });
                }
            }));
        }
        let resolver = self.resolver.as_ref().expect("just made");
        match resolver.resolve(id, &target.host, target.port) {
            Ok(crate::client::Lookup::Ready(addr)) => self.connect_tcp(slot, addr, now),
            Ok(crate::client::Lookup::Queued) => {}
            Err(e) => self.dial_failed(slot, Failure::Dns, format!("name resolution: {e:?}"), now),
        }
    }

    fn dial_failed(&mut self, slot: usize, failure: Failure, text: String, now: Instant) {
        self.drive(slot, now, |c, _, out| c.on_dial_error(failure, text, now, out));
    }

    /// Starts a non-blocking TCP connect; writable (or an error) tells when it finished.
    fn connect_tcp(&mut self, slot: usize, addr: std::net::SocketAddr, now: Instant) {
        let stream = match mio::net::TcpStream::connect(addr) {
            Ok(stream) => stream,
            Err(e) => return self.dial_failed(slot, Failure::from_io(&e), e.to_string(), now),
        };
        let _ = stream.set_nodelay(true);
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let mut transport = match Transport::client(stream, conn.machine.client_tls()) {
            Ok(t) => t,
            Err(e) => return self.dial_failed(slot, Failure::Tls, e.to_string(), now),
        };
        let token = Token(slot + FIRST_CONN);
        if let Err(e) = self.poll.registry().register(transport.tcp(), token, Interest::READABLE | Interest::WRITABLE) {
            return self.dial_failed(slot, Failure::Network, e.to_string(), now);
        }
        conn.transport = Some(transport);
        conn.connecting = true;
        conn.write_shut = false;
        conn.shut_after_flush = false;
    }

    /// The connect finished (writable or readable): connected, or why not.
    fn finish_connect(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let Some(tcp) = conn.transport.as_mut().map(Transport::tcp) else { return };
        let error = match tcp.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => None,
        };
        match (error, tcp.peer_addr()) {
            (None, Ok(peer)) => {
                conn.connecting = false;
                self.drive(slot, now, |c, _, out| c.on_connected(peer, now, out));
                // The request goes out now (this may run inside the turn's flush).
                self.flush(slot, now);
            }
            // Not connected yet (a spurious wake-up): wait for the next edge.
            (None, Err(e)) if e.kind() == io::ErrorKind::NotConnected => {}
            (Some(e), _) | (None, Err(e)) => {
                let failure = Failure::from_io(&e);
                self.dial_failed(slot, failure, e.to_string(), now);
            }
        }
    }

    /// A client's socket is done with; the connection itself lives on.
    fn drop_transport(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if let Some(mut transport) = conn.transport.take() {
            let _ = self.poll.registry().deregister(transport.tcp());
        }
        conn.connecting = false;
        conn.out.discard();
        self.publish_cost(slot);
    }

    fn remove(&mut self, slot: usize, now: Instant) {
        let Some(mut conn) = self.conns.take(slot) else { return };
        let id = conn.machine.id;
        if let Some(at) = self.trim.freed(trim::HANDSHAKE_BYTES + conn.out.cost(), now) {
            self.schedule(at);
        }
        if let Some(transport) = conn.transport.as_mut() {
            let _ = self.poll.registry().deregister(transport.tcp());
        }
        let shared = &self.shared;
        self.topics.leave_all(id, |topic| {
            if let Some(b) = shared.bridge.get().filter(|_| shared.topic_emptied(topic)) {
                b.unsubscribe(topic)
            }
        });
        conn.out.discard();
        let shared = self.shared.loops[self.index].table.slot(slot);
        self.shared.adjust_total(self.index, shared.queued.load(Ordering::Relaxed), 0);
        let _ = shared.id.compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire);
        shared.live.store(0, Ordering::Release);
        shared.holds_sends.store(false, Ordering::Release);
        shared.is_client.store(false, Ordering::Release);
        shared.queued.store(0, Ordering::Release);
        shared.blocked.store(false, Ordering::Release);
        let _ = shared.id.compare_exchange(id | AWAITING_APPROVAL, 0, Ordering::AcqRel, Ordering::Acquire);
        self.live -= 1;
        if conn.machine.role == Role::Server {
            self.release(conn.machine.peer().ip(), now);
        } else {
            self.admission().uncount_client();
        }
        self.shared.loops[self.index].slots.lock().unwrap_or_else(|e| e.into_inner()).release(slot);
    }

    // ---- timers ----------------------------------------------------------------------------

    fn schedule(&mut self, at: Instant) {
        self.next_sweep = Some(self.next_sweep.map_or(at, |t| t.min(at)));
    }

    /// Acts on every due deadline and finds the next one.
    fn sweep(&mut self, now: Instant) {
        self.next_sweep = None;
        let mut next = self.admission().forget_idle(now);
        for slot in 0..self.conns.span() {
            if let Some(Some(due)) = self.drive(slot, now, |c, config, out| c.on_timer(config, now, out)) {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        // `drive` may have scheduled earlier deadlines meanwhile; keep the earliest.
        if let Some(due) = next {
            self.schedule(due);
        }
    }
}

/// Publishes `cost`, what slot `slot`'s queue on loop `index` costs now, to host threads (the
/// slot's counter) and the server-wide total.
fn publish_queue_cost(shared: &Shared, index: usize, slot: usize, cost: usize) {
    // Only the loop writes `queued`: it is the cost last published (to it and the total).
    let queued = &shared.loops[index].table.slot(slot).queued;
    let before = queued.load(Ordering::Relaxed);
    if cost != before {
        queued.store(cost, Ordering::Release);
        shared.adjust_total(index, before, cost);
    }
}

#[cfg(test)]
mod sizes {
    /// What an idle open connection costs the loop (the README's memory figures).
    #[test]
    fn idle_connection_footprint() {
        let conn = std::mem::size_of::<super::Conn>();
        let machine = std::mem::size_of::<super::Connection>();
        let slot = std::mem::size_of::<super::super::slots::SlotShared>();
        println!("Conn {conn} B (machine {machine} B), table slot {slot} B, stored as Option<Conn>: {} B", std::mem::size_of::<Option<super::Conn>>());
        println!(
            "out queue {} B, transport {} B, static body {} B, decoder {} B",
            std::mem::size_of::<super::OutQueue>(),
            std::mem::size_of::<Option<super::Transport>>(),
            std::mem::size_of::<Option<Box<super::static_files::Body>>>(),
            std::mem::size_of::<crate::protocol::decoder::Decoder>()
        );
        // Stored in place (chunks of `Conns`), so these are the bytes an idle open connection
        // costs besides the kernel's socket; the target for the whole is 256 B of RSS.
        assert!(conn + slot <= 224, "an idle connection grew past 224 B: {conn} + {slot}");
    }
}
