//! The loop itself. One thread, one `mio::Poll`, edge-triggered sockets, one read buffer
//! shared by every connection, and a sweep over deadlines (handshake, ping, close) that runs
//! only when the earliest one is due.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::connection::{Connection, Phase};
use super::rate::{ConnRate, IpState, TokenBucket};
use super::slots::{make_id, slot_of};
use super::transport::Transport;
use super::{bump, Command, Shared};
use crate::config::{BackpressurePolicy, RateLimitPolicy, ServerConfig};
use crate::event::{ConnId, Event};
use crate::http::static_files::{self, StaticResponse};
use crate::protocol::decoder::{DecoderLimits, Incoming, Violation};
use crate::protocol::encoder::{close_frame, ping_frame, pong_frame};
use crate::protocol::handshake::{accept_response, choose_protocol, parse_request, RequestHead, UpgradeRequest};

/// Why a connection ended, for the counters.
#[derive(Clone, Copy)]
enum CloseCause {
    /// The close handshake completed.
    Clean,
    /// The peer broke the protocol.
    Protocol,
    /// The peer stopped answering.
    Timeout,
    /// TCP went away without a close handshake.
    Dropped,
    /// Rate limit or full send buffer.
    Policy,
    /// Server stop deadline.
    Server,
}

impl CloseCause {
    /// Cause of a server-initiated close: policy closes (1008/1013) count as policy however they end.
    fn of_server_close(code: u16, otherwise: CloseCause) -> CloseCause {
        match code {
            1008 | 1013 => CloseCause::Policy,
            _ => otherwise,
        }
    }
}

pub const WAKER: Token = Token(0);
const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Shared read buffer size; also the most read from one socket before others get a turn.
const READ_BUFFER: usize = 64 * 1024;
const READ_BUDGET: usize = 4 * READ_BUFFER;
/// Pause before accepting again after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

struct Entry {
    generation: u32,
    /// Boxed so that free slots and vector growth cost a pointer, not a whole connection.
    conn: Option<Box<Connection>>,
}

pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    config: ServerConfig,
    static_root: Option<PathBuf>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: DecoderLimits,
    ips: HashMap<IpAddr, IpState>,
    entries: Vec<Entry>,
    free: Vec<usize>,
    live: usize,
    topics: HashMap<Arc<str>, HashSet<ConnId>>,
    read_buf: Box<[u8]>,
    incoming: Vec<Incoming>,
    events: Vec<Event>,
    dirty: Vec<usize>,
    read_again: Vec<usize>,
    /// Readable connections left unread while the host lags behind.
    paused: Vec<usize>,
    recipients: Vec<usize>,
    next_sweep: Option<Instant>,
    stopping: Option<Instant>,
    /// `accept` failed for lack of resources; try again at the next sweep.
    accept_retry: bool,
    /// Events handed to the queue so far (sequence numbers for `Phase::Failing`).
    pushed_total: u64,
    /// Slots that may be in `Phase::Failing`.
    failing: Vec<usize>,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        listener: TcpListener,
        shared: Arc<Shared>,
        commands: Receiver<Command>,
        config: ServerConfig,
        static_root: Option<PathBuf>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let limits = DecoderLimits {
            max_message_size: config.max_message_size,
            max_frame_size: config.max_frame_size,
        };
        EventLoop {
            poll,
            listener: Some(listener),
            shared,
            commands,
            config,
            static_root,
            tls,
            limits,
            ips: HashMap::new(),
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
            topics: HashMap::new(),
            read_buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            incoming: Vec::new(),
            events: Vec::new(),
            dirty: Vec::new(),
            read_again: Vec::new(),
            paused: Vec::new(),
            recipients: Vec::new(),
            next_sweep: None,
            stopping: None,
            accept_retry: false,
            pushed_total: 0,
            failing: Vec::new(),
        }
    }

    pub fn run(mut self) {
        let mut ready = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.read_again.is_empty() {
                self.next_sweep.into_iter().chain(self.stopping).min().map(|t| t.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut ready, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let now = Instant::now();
            for event in ready.iter() {
                match event.token() {
                    WAKER => self.drain_commands(now),
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
            for slot in std::mem::take(&mut self.read_again) {
                self.on_readable(slot, true, now);
            }
            if self.next_sweep.is_some_and(|t| now >= t) {
                self.settle_failures(now, false);
                self.sweep(now);
                if self.accept_retry {
                    self.accept(now);
                }
            }
            self.flush_dirty();
            if let Some(deadline) = self.stopping {
                if self.live == 0 || now >= deadline {
                    self.abort_all();
                    self.publish_events();
                    break;
                }
            }
            self.publish_events();
        }
        self.shared.events.close();
    }

    /// Hands this iteration's events to the host in one batch.
    fn publish_events(&mut self) {
        self.pushed_total += self.events.len() as u64;
        self.shared.events.push_batch(&mut self.events);
    }

    // ---- host commands -------------------------------------------------------------------

    fn drain_commands(&mut self, now: Instant) {
        self.shared.wake_pending.store(false, Ordering::Release);
        if !self.paused.is_empty() && !self.shared.reads_paused.load(Ordering::Acquire) {
            // The host caught up (Shared::after_poll): read what was left waiting.
            self.read_again.append(&mut self.paused);
        }
        while let Ok(command) = self.commands.try_recv() {
            self.execute(command, now);
        }
        // After the host's replies (just queued) come the closes they were waiting for.
        self.settle_failures(now, false);
    }

    fn execute(&mut self, command: Command, now: Instant) {
        match command {
            Command::Send { conn, frame } => {
                let slot = slot_of(conn);
                if self.open_conn(conn).is_none() {
                    // Counted by the host when it queued the frame; nobody will write it now.
                    self.shared.table.slot(slot).buffered.fetch_sub(frame.len(), Ordering::AcqRel);
                    return;
                }
                bump(&self.shared.counters.messages_out, 1);
                self.queue(slot, frame, true);
                let over = self.open_conn(conn).is_some_and(|c| c.out.bytes > self.shared.max_buffered);
                if over && self.shared.backpressure == BackpressurePolicy::Close {
                    self.close_conn(slot, self.shared.backpressure_close_code, "send buffer full", now);
                }
            }
            Command::Broadcast { frame, except } => {
                let mut recipients = std::mem::take(&mut self.recipients);
                recipients.extend(self.entries.iter().enumerate().filter_map(|(slot, e)| {
                    e.conn.as_ref().filter(|c| c.is_open() && c.id != except).map(|_| slot)
                }));
                self.deliver_all(recipients, &frame, now);
            }
            Command::Publish { topic, frame } => {
                let mut recipients = std::mem::take(&mut self.recipients);
                if let Some(members) = self.topics.get(&topic) {
                    recipients.extend(members.iter().map(|&id| slot_of(id)));
                }
                self.deliver_all(recipients, &frame, now);
            }
            Command::Subscribe { conn, topic } => {
                if let Some(c) = self.open_conn_mut(conn) {
                    if !c.topics.contains(&topic) {
                        c.topics.push(topic.clone());
                        self.topics.entry(topic).or_default().insert(conn);
                    }
                }
            }
            Command::Unsubscribe { conn, topic } => {
                if let Some(c) = self.open_conn_mut(conn) {
                    if let Some(i) = c.topics.iter().position(|t| *t == topic) {
                        c.topics.swap_remove(i);
                        self.leave_topic(&topic, conn);
                    }
                }
            }
            Command::Close { conn, code, reason } => {
                if self.open_conn(conn).is_some() {
                    self.close_conn(slot_of(conn), code, &reason, now);
                }
            }
            Command::Accept { conn, protocol } => {
                let slot = slot_of(conn);
                let Some(c) = self.entries.get_mut(slot).and_then(|e| e.conn.as_deref_mut()) else { return };
                if c.id != conn || !matches!(c.phase, Phase::Approval { .. }) {
                    return;
                }
                if let Phase::Approval { request, early, .. } = std::mem::replace(&mut c.phase, Phase::Open) {
                    let protocol = protocol
                        .filter(|p| request.protocols.contains(p))
                        .or_else(|| choose_protocol(&self.config.subprotocols, &request.protocols).map(str::to_owned));
                    self.upgrade(slot, *request, protocol, early, now);
                }
            }
            Command::Reject { conn, status, body } => {
                let slot = slot_of(conn);
                let waiting = self.entries.get(slot).and_then(|e| e.conn.as_deref()).is_some_and(|c| {
                    c.id == conn && matches!(c.phase, Phase::Approval { .. })
                });
                if waiting {
                    self.refuse(slot, static_files::error_response(status, &body), now);
                }
            }
            Command::Stop { deadline } => self.begin_stop(deadline, now),
        }
    }

    fn open_conn(&self, conn: ConnId) -> Option<&Connection> {
        self.entries.get(slot_of(conn))?.conn.as_deref().filter(|c| c.id == conn && c.is_open())
    }

    fn open_conn_mut(&mut self, conn: ConnId) -> Option<&mut Connection> {
        self.entries.get_mut(slot_of(conn))?.conn.as_deref_mut().filter(|c| c.id == conn && c.is_open())
    }

    /// Queues one shared frame for many recipients (the frame is never copied).
    /// `recipients` is the loop's reusable scratch vector; it is cleared and put back.
    fn deliver_all(&mut self, mut recipients: Vec<usize>, frame: &Bytes, now: Instant) {
        for &slot in &recipients {
            self.deliver(slot, frame, now);
        }
        recipients.clear();
        self.recipients = recipients;
    }

    /// Queues a shared frame for one recipient of a broadcast/publish, applying backpressure.
    fn deliver(&mut self, slot: usize, frame: &Bytes, now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_ref().filter(|c| c.is_open()) else { return };
        if conn.out.bytes > 0 && conn.out.bytes + frame.len() > self.shared.max_buffered {
            match self.shared.backpressure {
                BackpressurePolicy::Block => bump(&self.shared.counters.dropped_deliveries, 1),
                BackpressurePolicy::Close => self.close_conn(slot, self.shared.backpressure_close_code, "send buffer full", now),
            }
            return;
        }
        bump(&self.shared.counters.messages_out, 1);
        self.queue(slot, frame.clone(), false);
    }

    /// Appends a frame to a connection's queue. `counted`: the host already added it to the
    /// slot's `buffered`.
    fn queue(&mut self, slot: usize, frame: Bytes, counted: bool) {
        if !counted {
            self.shared.table.slot(slot).buffered.fetch_add(frame.len(), Ordering::AcqRel);
        }
        if let Some(conn) = self.entries[slot].conn.as_mut() {
            conn.out.push(frame);
        }
        self.mark_dirty(slot);
    }

    /// Server-initiated close of an open connection: send the close frame, wait for the reply.
    fn close_conn(&mut self, slot: usize, code: u16, reason: &str, now: Instant) {
        let deadline = now + self.config.close_timeout;
        self.leave_open(slot);
        self.queue(slot, close_frame(Some(code), reason), false);
        if let Some(conn) = self.entries[slot].conn.as_mut() {
            conn.phase = Phase::Closing { deadline, code, reason: reason.to_owned() };
        }
        self.schedule(deadline);
    }

    fn begin_stop(&mut self, deadline: Instant, now: Instant) {
        self.stopping = Some(deadline);
        self.settle_failures(now, true);
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for slot in 0..self.entries.len() {
            match self.entries[slot].conn.as_ref().map(|c| &c.phase) {
                Some(Phase::Handshake { .. }) => self.remove(slot),
                Some(Phase::Approval { .. }) => self.refuse(slot, static_files::error_response(503, "server stopping"), now),
                Some(Phase::Open) => {
                    self.close_conn(slot, 1001, "server stopping", now);
                    if let Some(Connection { phase: Phase::Closing { deadline: d, .. }, .. }) =
                        self.entries[slot].conn.as_deref_mut()
                    {
                        *d = deadline;
                    }
                }
                _ => {}
            }
        }
    }

    /// At the stop deadline: whatever is left is dropped, the host told.
    fn abort_all(&mut self) {
        for slot in 0..self.entries.len() {
            if let Some(conn) = self.entries[slot].conn.as_ref() {
                let (code, reason) = match &conn.phase {
                    Phase::Closing { code, reason, .. } => (*code, reason.clone()),
                    _ => (1001, "server stopped".to_owned()),
                };
                if conn.announced && !matches!(conn.phase, Phase::Finishing { .. }) {
                    self.report_close(conn.id, code, reason, false, CloseCause::Server);
                }
                self.remove(slot);
            }
        }
    }

    /// Emits the one `Close` event of a connection and counts its cause.
    fn report_close(&mut self, conn: ConnId, code: u16, reason: String, clean: bool, cause: CloseCause) {
        let counters = &self.shared.counters;
        let counter = match (cause, clean) {
            (CloseCause::Policy, _) => &counters.closes_policy,
            (_, true) => &counters.closes_clean,
            (CloseCause::Protocol, false) => &counters.closes_protocol_error,
            (CloseCause::Timeout, false) => &counters.closes_timeout,
            (CloseCause::Dropped | CloseCause::Server | CloseCause::Clean, false) => &counters.closes_dropped,
        };
        bump(counter, 1);
        // Every announced connection gets exactly one Close: the one place to stop counting it.
        self.shared.counters.open_connections.fetch_sub(1, Ordering::Relaxed);
        self.events.push(Event::Close { conn, code, reason, clean });
    }

    // ---- sockets ---------------------------------------------------------------------------

    fn accept(&mut self, now: Instant) {
        self.accept_retry = false;
        loop {
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
            if let Some(refusal) = self.admission(peer.ip(), now) {
                bump(&self.shared.counters.handshakes_rejected, 1);
                let _ = super::transport::NoSigPipe(&stream).write(&[refusal.head, refusal.body].concat());
                continue;
            }
            let _ = stream.set_nodelay(true);
            let Ok(transport) = Transport::new(stream, self.tls.as_ref()) else { continue };
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.entries.push(Entry { generation: 1, conn: None });
                    self.entries.len() - 1
                }
            };
            let deadline = now + self.config.handshake_timeout;
            let id = make_id(slot, self.entries[slot].generation);
            let mut conn = Box::new(Connection::new(id, transport, peer, now, deadline));
            let token = Token(slot + FIRST_CONN);
            if self.poll.registry().register(conn.transport.tcp(), token, Interest::READABLE | Interest::WRITABLE).is_err() {
                self.free.push(slot);
                continue;
            }
            if self.config.max_messages_per_sec > 0 || self.config.max_bytes_per_sec > 0 {
                conn.rate = Some(Box::new(ConnRate {
                    messages: TokenBucket::full(f64::from(self.config.max_messages_per_sec), now),
                    bytes: TokenBucket::full(self.config.max_bytes_per_sec as f64, now),
                }));
            }
            self.entries[slot].conn = Some(conn);
            self.live += 1;
            // `admission` created the address's entry.
            if let Some(ip) = self.ips.get_mut(&peer.ip()) {
                ip.connections += 1;
            }
            self.schedule(deadline);
        }
    }

    /// Connection-level limits checked before anything is read: total, per IP, handshake rate.
    fn admission(&mut self, ip: IpAddr, now: Instant) -> Option<StaticResponse> {
        if self.live >= self.config.max_connections {
            return Some(static_files::error_response(503, "too many connections"));
        }
        let per_ip = self.config.max_connections_per_ip;
        let rate = f64::from(self.config.max_handshakes_per_ip_per_sec);
        let state = self.ips.entry(ip).or_insert_with(|| IpState { connections: 0, handshakes: TokenBucket::full(rate, now) });
        if per_ip > 0 && state.connections >= per_ip {
            return Some(static_files::error_response(429, "too many connections from this address"));
        }
        if rate > 0.0 && !state.handshakes.take(rate, 1.0, now) {
            return Some(static_files::error_response(429, "too many new connections from this address"));
        }
        None
    }

    /// Reads what the socket has. `drain`: keep reading to EAGAIN/EOF even after a short read.
    fn on_readable(&mut self, slot: usize, drain: bool, now: Instant) {
        if self.shared.events.backlog() > self.shared.max_pending_event_bytes {
            // The host lags: leave the bytes in the kernel (TCP pushes back) until it polls.
            self.shared.reads_paused.store(true, Ordering::Release);
            self.shared.after_poll(); // the host may have caught up already
            if !self.paused.contains(&slot) {
                self.paused.push(slot);
            }
            return;
        }
        let mut budget = READ_BUDGET;
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(conn) = self.entries.get_mut(slot).and_then(|e| e.conn.as_mut()) {
            match conn.transport.read(&mut buf) {
                Ok(0) => {
                    self.on_disconnect(slot);
                    break;
                }
                Ok(n) => {
                    conn.last_seen = now;
                    conn.ping_sent = None;
                    bump(&self.shared.counters.bytes_in, n as u64);
                    let plain = matches!(conn.transport, Transport::Plain(_));
                    self.on_bytes(slot, &buf[..n], now);
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
                Err(_) => {
                    self.on_disconnect(slot);
                    break;
                }
            }
        }
        if matches!(self.entries.get(slot).and_then(|e| e.conn.as_deref()), Some(Connection { transport: Transport::Tls(_), .. })) {
            // TLS may have produced handshake records or alerts to send.
            self.mark_dirty(slot);
        }
        self.read_buf = buf;
    }

    fn on_bytes(&mut self, slot: usize, data: &[u8], now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        match &mut conn.phase {
            Phase::Handshake { request, .. } => {
                request.extend_from_slice(data);
                match parse_request(request, self.config.max_header_bytes) {
                    RequestHead::Partial => {}
                    RequestHead::Upgrade { request: upgrade, consumed } => {
                        let early = request.split_off(consumed);
                        self.on_upgrade_request(slot, upgrade, early, now);
                    }
                    RequestHead::Http { method, target } => {
                        let response = match &self.static_root {
                            Some(root) => static_files::respond(root, &method, &target, self.config.max_static_file_bytes),
                            None => static_files::upgrade_required(),
                        };
                        self.respond_and_finish(slot, response, now);
                    }
                    RequestHead::Refuse { status: 426, .. } => self.refuse(slot, static_files::upgrade_required(), now),
                    RequestHead::Refuse { status, reason } => {
                        self.refuse(slot, static_files::error_response(status, reason), now)
                    }
                }
            }
            Phase::Approval { early, .. } => {
                if early.len() + data.len() > self.config.max_header_bytes {
                    self.remove(slot);
                } else {
                    early.extend_from_slice(data);
                }
            }
            Phase::Open | Phase::Closing { .. } => self.on_frames(slot, data, now),
            Phase::Failing { .. } | Phase::Finishing { .. } => {}
        }
    }

    /// A valid upgrade request: check the origin, then accept or ask the host.
    fn on_upgrade_request(&mut self, slot: usize, request: UpgradeRequest, early: Vec<u8>, now: Instant) {
        let allowed = &self.config.allowed_origins;
        if !allowed.is_empty() && request.header("Origin").is_some_and(|o| !allowed.iter().any(|a| a == o)) {
            return self.refuse(slot, static_files::error_response(403, "origin not allowed"), now);
        }
        if !self.config.approve_handshakes {
            let protocol = choose_protocol(&self.config.subprotocols, &request.protocols).map(str::to_owned);
            return self.upgrade(slot, request, protocol, early, now);
        }
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        let deadline = now + self.config.approval_timeout;
        self.events.push(Event::Handshake {
            conn: conn.id,
            peer: conn.peer,
            path: request.path.clone(),
            headers: request.headers.clone(),
            protocols: request.protocols.clone(),
        });
        self.shared.table.slot(slot).pending.store(conn.id, Ordering::Release);
        conn.phase = Phase::Approval { request: Box::new(request), early, deadline };
        self.schedule(deadline);
    }

    /// Completes the upgrade: 101, `Open` event, then any frames that came with the request.
    fn upgrade(&mut self, slot: usize, request: UpgradeRequest, protocol: Option<String>, early: Vec<u8>, now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        conn.phase = Phase::Open;
        conn.announced = true;
        let (id, peer) = (conn.id, conn.peer);
        self.queue(slot, Bytes::from(accept_response(&request.key, protocol.as_deref())), false);
        let shared = self.shared.table.slot(slot);
        shared.pending.store(0, Ordering::Release);
        shared.id.store(id, Ordering::Release);
        bump(&self.shared.counters.handshakes_accepted, 1);
        bump(&self.shared.counters.open_connections, 1);
        self.events.push(Event::Open { conn: id, peer, path: request.path, protocol, headers: request.headers });
        if !self.config.ping_interval.is_zero() {
            self.schedule(now + self.config.ping_interval);
        }
        if !early.is_empty() {
            self.on_frames(slot, &early, now);
        }
    }

    /// Answers an upgrade attempt with an HTTP error and hangs up.
    fn refuse(&mut self, slot: usize, response: StaticResponse, now: Instant) {
        debug_assert!(response.status >= 400, "a refusal is an HTTP error");
        bump(&self.shared.counters.handshakes_rejected, 1);
        self.respond_and_finish(slot, response, now);
    }

    fn respond_and_finish(&mut self, slot: usize, response: StaticResponse, now: Instant) {
        self.shared.table.slot(slot).pending.store(0, Ordering::Release);
        self.queue(slot, Bytes::from(response.head), false);
        if !response.body.is_empty() {
            self.queue(slot, Bytes::from(response.body), false);
        }
        self.finish(slot, now);
    }

    /// Decodes WebSocket traffic and acts on it.
    fn on_frames(&mut self, slot: usize, data: &[u8], now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        let mut incoming = std::mem::take(&mut self.incoming);
        let outcome = conn.decoder.feed(data, &self.limits, &mut incoming);
        let id = conn.id;
        for item in incoming.drain(..) {
            let Some(conn) = self.entries[slot].conn.as_mut() else { break };
            let open = match &conn.phase {
                Phase::Open => true,
                Phase::Closing { .. } => false,
                _ => break,
            };
            match item {
                Incoming::Message { is_text, data } if open => {
                    if let Some(rate) = conn.rate.as_deref_mut() {
                        let (msgs, bytes) = (f64::from(self.config.max_messages_per_sec), self.config.max_bytes_per_sec as f64);
                        let within = (msgs == 0.0 || rate.messages.take(msgs, 1.0, now))
                            && (bytes == 0.0 || rate.bytes.take(bytes, data.len() as f64, now));
                        if !within {
                            match self.config.rate_limit_policy {
                                RateLimitPolicy::Drop => bump(&self.shared.counters.rate_limited, 1),
                                RateLimitPolicy::Close => self.close_conn(slot, 1008, "rate limit exceeded", now),
                            }
                            continue;
                        }
                    }
                    bump(&self.shared.counters.messages_in, 1);
                    self.events.push(Event::Message { conn: id, data, is_text });
                    conn.last_message_seq = self.pushed_total + self.events.len() as u64;
                }
                Incoming::Message { .. } => {}
                // A peer that pings but never reads must not grow our queue without bound;
                // RFC 6455 lets us answer only the most recent ping anyway.
                Incoming::Ping(payload) if open && conn.out.bytes <= self.shared.max_buffered => {
                    self.queue(slot, pong_frame(&payload), false)
                }
                Incoming::Ping(_) => {}
                Incoming::Pong(_) => conn.ping_sent = None,
                Incoming::Close(status) => {
                    if open {
                        // The peer closes: echo its code, report it, hang up after the reply.
                        let (code, reason) = status.clone().unwrap_or((1005, String::new()));
                        self.leave_open(slot);
                        self.queue(slot, close_frame(status.map(|(c, _)| c), ""), false);
                        self.report_close(id, code, reason, true, CloseCause::Clean);
                    } else if let Phase::Closing { code, reason, .. } = std::mem::replace(&mut conn.phase, Phase::Open) {
                        self.report_close(id, code, reason, true, CloseCause::of_server_close(code, CloseCause::Clean));
                    }
                    self.finish(slot, now);
                }
            }
        }
        self.incoming = incoming;
        if let Err(violation) = outcome {
            self.fail(slot, violation, now);
        }
    }

    /// The peer broke the protocol: close with the prescribed code and stop listening to it.
    /// Messages before the violation that the host has not finished with get their replies
    /// out first: the connection waits in `Failing` until the host polls again (bounded).
    fn fail(&mut self, slot: usize, violation: Violation, now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        if matches!(conn.phase, Phase::Open) && conn.last_message_seq > self.shared.events.settled() {
            let deadline = now + self.config.close_timeout;
            let after = conn.last_message_seq;
            conn.phase = Phase::Failing { code: violation.code, reason: violation.reason, after, deadline };
            self.failing.push(slot);
            self.shared.failing.store(self.failing.len(), Ordering::Release);
            self.schedule(deadline);
            return;
        }
        self.fail_now(slot, violation, now);
    }

    fn fail_now(&mut self, slot: usize, violation: Violation, now: Instant) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        let id = conn.id;
        match std::mem::replace(&mut conn.phase, Phase::Open) {
            Phase::Open | Phase::Failing { .. } => {
                self.leave_open(slot);
                self.queue(slot, close_frame(Some(violation.code), violation.reason), false);
                self.report_close(id, violation.code, violation.reason.to_owned(), false, CloseCause::Protocol);
            }
            Phase::Closing { code, reason, .. } => self.report_close(id, code, reason, false, CloseCause::Protocol),
            other => conn.phase = other,
        }
        self.finish(slot, now);
    }

    /// Closes the `Failing` connections whose earlier messages the host has handled (all of
    /// them when `force`, and any whose deadline passed).
    fn settle_failures(&mut self, now: Instant, force: bool) {
        if self.failing.is_empty() {
            return;
        }
        let settled = self.shared.events.settled();
        let mut failing = std::mem::take(&mut self.failing);
        failing.retain(|&slot| {
            let Some(conn) = self.entries[slot].conn.as_ref() else { return false };
            let Phase::Failing { code, reason, after, deadline } = conn.phase else { return false };
            if force || settled >= after || now >= deadline {
                self.fail_now(slot, Violation { code, reason }, now);
                return false;
            }
            true
        });
        self.failing = failing;
        self.shared.failing.store(self.failing.len(), Ordering::Release);
    }

    /// Enters `Finishing`: flush, FIN, wait for the peer to hang up (bounded).
    fn finish(&mut self, slot: usize, now: Instant) {
        let deadline = now + self.config.close_timeout;
        if let Some(conn) = self.entries[slot].conn.as_mut() {
            conn.phase = Phase::Finishing { deadline };
        }
        self.mark_dirty(slot);
        self.schedule(deadline);
    }

    /// EOF or a socket error.
    fn on_disconnect(&mut self, slot: usize) {
        let Some(conn) = self.entries[slot].conn.as_ref() else { return };
        let report = match &conn.phase {
            Phase::Open => Some((1006, "connection lost".to_owned())),
            Phase::Closing { code, reason, .. } => Some((*code, reason.clone())),
            Phase::Failing { code, reason, .. } => Some((*code, (*reason).to_owned())),
            _ => None,
        };
        if let Some((code, reason)) = report {
            self.report_close(conn.id, code, reason, false, CloseCause::of_server_close(code, CloseCause::Dropped));
        }
        self.remove(slot);
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(conn) = self.entries.get_mut(slot).and_then(|e| e.conn.as_mut()) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.flush(slot);
        }
        dirty.clear();
        self.dirty = dirty;
    }

    fn flush(&mut self, slot: usize) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        conn.dirty = false;
        let written = match conn.out.flush(&mut conn.transport).and_then(|n| conn.transport.flush().map(|()| n)) {
            Ok(n) => n,
            Err(_) => return self.on_disconnect(slot),
        };
        if written > 0 {
            bump(&self.shared.counters.bytes_out, written as u64);
            let shared = self.shared.table.slot(slot);
            let left = shared.buffered.fetch_sub(written, Ordering::AcqRel) - written;
            if left <= self.shared.max_buffered / 2 && conn.is_open() && shared.blocked.swap(false, Ordering::AcqRel) {
                self.events.push(Event::Drain { conn: conn.id });
            }
        }
        if conn.out.is_empty() && !conn.write_shut && matches!(conn.phase, Phase::Finishing { .. }) {
            conn.write_shut = true;
            conn.transport.shutdown_write();
        }
    }

    /// The connection stops being open for the host: sends now fail, topics are left.
    fn leave_open(&mut self, slot: usize) {
        let Some(conn) = self.entries[slot].conn.as_mut() else { return };
        let id = conn.id;
        let _ = self.shared.table.slot(slot).id.compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire);
        for topic in std::mem::take(&mut conn.topics) {
            self.leave_topic(&topic, id);
        }
    }

    fn leave_topic(&mut self, topic: &Arc<str>, conn: ConnId) {
        if let Some(members) = self.topics.get_mut(topic) {
            members.remove(&conn);
            if members.is_empty() {
                self.topics.remove(topic);
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        self.leave_open(slot);
        let Some(mut conn) = self.entries[slot].conn.take() else { return };
        let _ = self.poll.registry().deregister(conn.transport.tcp());
        if !conn.announced && matches!(conn.phase, Phase::Handshake { .. } | Phase::Approval { .. }) {
            bump(&self.shared.counters.handshakes_rejected, 1);
        }
        let dropped = conn.out.discard();
        let shared = self.shared.table.slot(slot);
        shared.buffered.fetch_sub(dropped, Ordering::AcqRel);
        shared.blocked.store(false, Ordering::Release);
        shared.pending.store(0, Ordering::Release);
        self.release_ip(conn.peer.ip());
        let entry = &mut self.entries[slot];
        entry.generation = entry.generation.checked_add(1).unwrap_or(1);
        self.free.push(slot);
        self.live -= 1;
    }

    /// One connection from `ip` is gone; forget the address once nothing is left to remember.
    fn release_ip(&mut self, ip: IpAddr) {
        let rate = f64::from(self.config.max_handshakes_per_ip_per_sec);
        let now = Instant::now();
        let Some(state) = self.ips.get_mut(&ip) else { return };
        state.connections -= 1;
        if state.connections == 0 {
            if state.handshakes.is_full(rate, now) {
                self.ips.remove(&ip);
            } else {
                self.schedule(now + Duration::from_secs(1));
            }
        }
    }

    // ---- timers ----------------------------------------------------------------------------

    fn schedule(&mut self, at: Instant) {
        self.next_sweep = Some(self.next_sweep.map_or(at, |t| t.min(at)));
    }

    /// Acts on every due deadline and finds the next one.
    fn sweep(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        let ping_interval = self.config.ping_interval;
        let pong_timeout = self.config.pong_timeout;
        for slot in 0..self.entries.len() {
            let Some(conn) = self.entries[slot].conn.as_mut() else { continue };
            let due = match &conn.phase {
                Phase::Handshake { deadline, .. } | Phase::Finishing { deadline } if now >= *deadline => {
                    self.remove(slot);
                    None
                }
                Phase::Approval { deadline, .. } if now >= *deadline => {
                    self.refuse(slot, static_files::error_response(503, "handshake not approved in time"), now);
                    Some(now + self.config.close_timeout)
                }
                Phase::Closing { deadline, code, reason } if now >= *deadline => {
                    let (id, code, reason) = (conn.id, *code, reason.clone());
                    self.report_close(id, code, reason, false, CloseCause::of_server_close(code, CloseCause::Timeout));
                    self.remove(slot);
                    None
                }
                Phase::Handshake { deadline, .. }
                | Phase::Approval { deadline, .. }
                | Phase::Finishing { deadline }
                | Phase::Closing { deadline, .. }
                | Phase::Failing { deadline, .. } => Some(*deadline),
                Phase::Open if ping_interval.is_zero() => None,
                Phase::Open => match conn.ping_sent {
                    Some(sent) if now >= sent + pong_timeout => {
                        // The peer stopped answering: drop it without a handshake.
                        let id = conn.id;
                        self.report_close(id, 1006, "ping timeout".to_owned(), false, CloseCause::Timeout);
                        self.remove(slot);
                        None
                    }
                    Some(sent) => Some(sent + pong_timeout),
                    None if now >= conn.last_seen + ping_interval => {
                        conn.ping_sent = Some(now);
                        self.queue(slot, ping_frame(b""), false);
                        Some(now + pong_timeout)
                    }
                    None => Some(conn.last_seen + ping_interval),
                },
            };
            if let Some(due) = due {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        // Forget addresses with no connections whose handshake bucket has refilled.
        let rate = f64::from(self.config.max_handshakes_per_ip_per_sec);
        let mut refilling = false;
        self.ips.retain(|_, ip| {
            let keep = ip.connections > 0 || !ip.handshakes.is_full(rate, now);
            refilling |= keep && ip.connections == 0;
            keep
        });
        if refilling {
            let soon = now + Duration::from_secs(1);
            next = Some(next.map_or(soon, |n| n.min(soon)));
        }
        self.next_sweep = next;
    }
}
