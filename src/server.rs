//! The Rust API: [`Server`] owns the loop thread and the event queue; [`ServerHandle`] is the
//! cheap, cloneable, thread-safe way to send, broadcast, publish and close from anywhere.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;

use crate::config::ServerConfig;
use crate::engine::event_loop::{EventLoop, Outgoing, WAKER};
use crate::engine::{Command, Shared};
use crate::error::Error;
use crate::event::{ConnId, Event};
use crate::protocol::encoder::{message_frame, MessageKind, MAX_CLOSE_REASON};

/// A running WebSocket server. Dropping it stops it (1 s grace period).
pub struct Server {
    handle: ServerHandle,
    local_addr: SocketAddr,
    /// The loop threads (one per `threads`), until stopped.
    thread: Mutex<Option<Vec<JoinHandle<()>>>>,
    inline_stopped: std::sync::atomic::AtomicBool,
    /// Connections whose `Close` the previous poll returned: their user data goes at the next.
    closed_last_poll: Mutex<Vec<ConnId>>,
}

/// Listen backlog: large enough that a burst of thousands of connects is not refused.
const BACKLOG: i32 = 4096;

impl Server {
    /// Binds the listening socket and starts the loop thread.
    pub fn start(config: ServerConfig) -> Result<Server, Error> {
        let addr = (config.host.as_str(), config.port)
            .to_socket_addrs()
            .map_err(|e| Error::InvalidArgument(format!("host {:?}: {e}", config.host)))?
            .next()
            .ok_or_else(|| Error::InvalidArgument(format!("host {:?} resolves to no address", config.host)))?;
        let static_root = match &config.static_dir {
            Some(dir) => Some(dir.canonicalize().map_err(|e| {
                Error::InvalidArgument(format!("static_dir {}: {e}", dir.display()))
            })?),
            None => None,
        };
        let tls = config.tls.as_ref().map(crate::engine::transport::server_config).transpose()?;
        let threads = config.threads.max(1);
        if threads > 1 && !config.loop_thread {
            return Err(Error::InvalidArgument("host-driven mode (loop_thread = 0) runs one loop: threads must be 1".to_owned()));
        }
        // One poll, listener, channel and waker per loop. Several loops share the port with
        // SO_REUSEPORT: the kernel spreads new connections over them.
        let mut polls = Vec::with_capacity(threads);
        let mut listeners = Vec::with_capacity(threads);
        let mut ports = Vec::with_capacity(threads);
        let mut receivers = Vec::with_capacity(threads);
        let mut local_addr = SocketAddr::new(addr.ip(), 0);
        for index in 0..threads {
            let poll = mio::Poll::new()?;
            // A client-only engine (`listen` = false) binds nothing.
            let listener = if config.listen {
                let std_listener = bind_listener(SocketAddr::new(addr.ip(), local_addr.port().max(addr.port())), threads > 1)?;
                local_addr = std_listener.local_addr()?;
                let mut listener = TcpListener::from_std(std_listener);
                poll.registry().register(&mut listener, crate::engine::event_loop::LISTENER, mio::Interest::READABLE)?;
                Some(listener)
            } else {
                None
            };
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            let (tx, rx) = crossbeam_channel::unbounded();
            ports.push(crate::engine::LoopPort::new(index, tx, waker, !config.loop_thread));
            polls.push(poll);
            listeners.push(listener);
            receivers.push(rx);
        }
        let shared = Arc::new(Shared::new(&config, ports)?);
        if !config.redis_url.is_empty() {
            let bridge = crate::bridge::Bridge::start(
                crate::bridge::BridgeConfig { url: config.redis_url.clone(), prefix: config.redis_prefix.clone(), ..Default::default() },
                bridge_sink(Arc::downgrade(&shared)),
            )?;
            let _ = shared.bridge.set(Arc::new(bridge));
        }
        let loops: Vec<EventLoop> = polls
            .into_iter()
            .zip(listeners)
            .zip(receivers)
            .enumerate()
            .map(|(index, ((poll, listener), rx))| {
                EventLoop::new(index, poll, listener, shared.clone(), rx, config.clone(), static_root.clone(), tls.clone())
            })
            .collect();
        if !config.loop_thread {
            // Host-driven: the host's poll (or service) runs the loop on its own thread.
            let event_loop = loops.into_iter().next().expect("one loop");
            return Ok(Server {
                handle: ServerHandle { shared, inline: Some(Arc::new(Mutex::new(Box::new(event_loop)))) },
                local_addr,
                thread: Mutex::new(None),
                inline_stopped: std::sync::atomic::AtomicBool::new(false),
                closed_last_poll: Mutex::default(),
            });
        }
        let mut handles = Vec::with_capacity(threads);
        for (index, event_loop) in loops.into_iter().enumerate() {
            let loop_shared = shared.clone();
            let handle = std::thread::Builder::new().name(format!("wsembed:{}/{index}", local_addr.port())).spawn(move || {
                // A bug in the loop must not hang the host: every later call fails with
                // `Error::Panic`, and a blocked poll returns.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event_loop.run())).is_err() {
                    loop_shared.mark_panicked();
                }
            })?;
            handles.push(handle);
        }
        Ok(Server {
            handle: ServerHandle { shared, inline: None },
            local_addr,
            thread: Mutex::new(Some(handles)),
            inline_stopped: std::sync::atomic::AtomicBool::new(false),
            closed_last_poll: Mutex::default(),
        })
    }

    /// The bound address (with the real port when 0 was asked; port 0 when `listen` is off).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A thread-safe handle for sending and closing.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The server's own handle, borrowed (no reference count touched: the C API's calls).
    pub(crate) fn handle_ref(&self) -> &ServerHandle {
        &self.handle
    }

    /// Moves up to `max` waiting events into `out`, waiting up to `timeout` for the first
    /// (`None`: until one arrives). Returns how many were added; `Err(Stopped)` once the server
    /// has stopped and every event has been taken.
    ///
    /// The next poll acknowledges this batch: messages before a protocol violation get the
    /// replies the host sends while handling them before the close frame goes out.
    pub fn poll_into(&self, out: &mut Vec<Event>, max: usize, timeout: Option<Duration>) -> Result<usize, Error> {
        let shared = &self.handle.shared;
        let mut closed = self.closed_last_poll.lock().unwrap_or_else(|e| e.into_inner());
        shared.user_data.forget(&mut closed);
        shared.before_poll();
        let start = out.len();
        let polled = match &self.handle.inline {
            None => shared.events.poll(out, max, timeout),
            Some(inline) => self.poll_inline(inline, out, max, timeout)?,
        };
        shared.after_poll();
        if shared.has_panicked() {
            return Err(shared.check_running().unwrap_err());
        }
        let n = polled.ok_or(Error::Stopped)?;
        if !shared.user_data.is_empty() {
            closed.extend(out[start..].iter().filter(|e| matches!(e, Event::Close { .. })).map(Event::conn));
        }
        Ok(n)
    }

    /// Host-driven poll: run loop turns on this thread until events are there or `timeout`
    /// passes (at least one turn, so `Some(ZERO)` still does the pending I/O). A turn runs
    /// the commands sent since the last one before it waits, so one turn (one `epoll_wait`)
    /// usually does.
    fn poll_inline(&self, inline: &Mutex<Box<EventLoop>>, out: &mut Vec<Event>, max: usize, timeout: Option<Duration>) -> Result<Option<usize>, Error> {
        let events = &self.handle.shared.events;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut wait = timeout;
        loop {
            // Events left from an earlier turn (more than `max`): do the I/O, do not wait.
            if events.backlog() > 0 {
                wait = Some(Duration::ZERO);
            }
            self.turn_inline(inline, wait)?;
            match events.poll(out, max, Some(Duration::ZERO)) {
                Some(0) => {}
                other => return Ok(other),
            }
            wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(Some(0)),
                },
            };
        }
    }

    /// One loop turn on the calling thread; a panic in it fails the server as on the thread.
    fn turn_inline(&self, inline: &Mutex<Box<EventLoop>>, wait: Option<Duration>) -> Result<bool, Error> {
        let mut event_loop = inline.lock().unwrap_or_else(|e| e.into_inner());
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event_loop.turn(wait))) {
            Ok(running) => Ok(running),
            Err(_) => {
                self.handle.shared.mark_panicked();
                Err(self.handle.shared.check_running().unwrap_err())
            }
        }
    }

    /// Does the engine's I/O for up to `timeout` without taking events (host-driven mode;
    /// with a loop thread it only waits). Returns after the first turn that had work, or at
    /// the timeout.
    pub fn service(&self, timeout: Option<Duration>) -> Result<(), Error> {
        self.handle.shared.check_running().or_else(|e| if matches!(e, Error::Stopped) { Ok(()) } else { Err(e) })?;
        match &self.handle.inline {
            Some(inline) => self.turn_inline(inline, timeout).map(|_| ()),
            None => {
                std::thread::sleep(timeout.unwrap_or(Duration::ZERO));
                Ok(())
            }
        }
    }

    /// The value given to [`ServerHandle::set_user_data`] for `conn`, until the poll after the
    /// one that returned its `Close`.
    pub fn user_data(&self, conn: ConnId) -> Option<usize> {
        self.handle.shared.user_data.get(conn)
    }

    /// Test-only fault hook: makes the loop thread panic, as a bug in it would.
    #[doc(hidden)]
    pub fn inject_loop_panic(&self) {
        let _ = self.handle.shared.submit(Command::Panic);
    }

    /// Convenience form of [`Server::poll_into`] returning up to 1024 events.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        self.poll_into(&mut out, 1024, timeout)?;
        Ok(out)
    }

    /// A descriptor that is readable while events are waiting (or after the server stopped).
    /// Owned by the server: do not close it. It can be readable with nothing waiting (a
    /// wake-up that raced with a poll taking the events): a poll then returns none and clears it.
    ///
    /// In host-driven mode (`loop_thread` = 0) it is the loop's epoll descriptor instead,
    /// readable while the engine has I/O to do, and after the stop: when it is, call `poll`
    /// (or `service`), and poll until no events are left before waiting on it again.
    pub fn event_fd(&self) -> RawFd {
        match &self.handle.inline {
            Some(inline) => {
                let event_loop = inline.lock().unwrap_or_else(|e| e.into_inner());
                // Sends must make it readable from now on (see `LoopPort::wake`), and so
                // must output queued by sends made straight into the loop before.
                self.handle.shared.loops[0].watch_fd(event_loop.has_output());
                event_loop.poll_fd()
            }
            None => self.handle.shared.events.fd(),
        }
    }

    /// Sends 1001 to every client, flushes what was queued before, waits at most `timeout`
    /// for the clients, and joins the loop thread. A second call returns `Err(Stopped)`.
    pub fn stop(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        if let Some(inline) = &self.handle.inline {
            if self.inline_stopped.swap(true, Ordering::AcqRel) {
                return Err(Error::Stopped);
            }
            self.handle.shared.request_stop(deadline);
            // Run the loop here until it has closed everything (it gives up at the deadline).
            while self.turn_inline(inline, Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))? {}
        } else {
            let threads = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or(Error::Stopped)?;
            self.handle.shared.request_stop(deadline);
            for thread in threads {
                let _ = thread.join();
            }
        }
        if let Some(bridge) = self.handle.shared.bridge.get() {
            bridge.shutdown();
        }
        if self.handle.shared.has_panicked() {
            return Err(self.handle.shared.check_running().unwrap_err());
        }
        Ok(())
    }

    pub fn is_stopped(&self) -> bool {
        match &self.handle.inline {
            Some(_) => self.inline_stopped.load(Ordering::Acquire),
            None => self.thread.lock().unwrap_or_else(|e| e.into_inner()).is_none(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(1));
    }
}

/// Cloneable, `Send + Sync` handle to a server. Every method returns immediately; the loop
/// does the work. Ids are checked synchronously: a closed or unknown id is
/// `Err(NoSuchConnection)`, even if its slot now holds another client.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    /// Host-driven mode (`loop_thread` = 0): the loop, run by whichever thread polls, and
    /// taken directly by a send made while no thread runs it (see `EventLoop::send_now`).
    inline: Option<Arc<Mutex<Box<EventLoop>>>>,
}

impl ServerHandle {
    /// Sends a text message to one connection.
    pub fn send_text(&self, conn: ConnId, text: &str) -> Result<(), Error> {
        self.send_message(conn, MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message to one connection.
    pub fn send_binary(&self, conn: ConnId, data: &[u8]) -> Result<(), Error> {
        self.send_message(conn, MessageKind::Binary, data)
    }

    /// Sends `data` as `kind`; text must be UTF-8. In host-driven mode, a send made while no
    /// thread runs the loop is queued on the calling thread and written by the next poll or
    /// service (see `wsembed_server_send`).
    pub fn send(&self, conn: ConnId, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        check_payload(kind, data)?;
        self.send_message(conn, kind, data)
    }

    /// A message whose text (if it is text) is known to be UTF-8.
    fn send_message(&self, conn: ConnId, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        match self.send_now(conn, Outgoing::Message(kind, data)) {
            Ok(sent) => sent,
            Err(_) => self.submit_frame(conn, message_frame(kind, data)),
        }
    }

    fn send_frame(&self, conn: ConnId, frame: bytes::Bytes) -> Result<(), Error> {
        match self.send_now(conn, Outgoing::Frame(frame)) {
            Ok(sent) => sent,
            Err(Outgoing::Frame(frame)) => self.submit_frame(conn, frame),
            Err(Outgoing::Message(..)) => unreachable!("handed back as given"),
        }
    }

    /// Host-driven mode, while no thread runs the loop: the send goes into the connection's
    /// queue on this thread. `Err` hands the message back for the channel.
    fn send_now<'a>(&self, conn: ConnId, message: Outgoing<'a>) -> Result<Result<(), Error>, Outgoing<'a>> {
        let Some(inline) = self.inline.as_ref() else { return Err(message) };
        if let Err(e) = self.shared.check_running() {
            return Ok(Err(e));
        }
        let mut event_loop = match inline.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(message),
        };
        event_loop.send_now(conn, message)
    }

    /// Sends an encoded frame through the command channel.
    fn submit_frame(&self, conn: ConnId, frame: bytes::Bytes) -> Result<(), Error> {
        let slot = match self.open_slot(conn) {
            Ok(slot) => slot,
            // A client connection still connecting: held for it when the host asked for that.
            Err(Error::NoSuchConnection) if self.dialing(conn).is_some() => {
                let slot = self.dialing(conn).expect("just checked");
                if !slot.holds_sends.load(Ordering::Acquire) {
                    return Err(Error::NotOpen);
                }
                slot
            }
            Err(e) => return Err(e),
        };
        let cost = crate::engine::frame_cost(&frame);
        let before = slot.in_flight.fetch_add(cost, Ordering::AcqRel) + slot.queued.load(Ordering::Acquire);
        if self.shared.refuses_send(before, cost) {
            slot.in_flight.fetch_sub(cost, Ordering::AcqRel);
            slot.blocked.store(true, Ordering::Release);
            return Err(Error::WouldBlock);
        }
        self.shared.submit(Command::Send { conn, frame }).inspect_err(|_| {
            slot.in_flight.fetch_sub(cost, Ordering::AcqRel);
        })
    }

    /// Sends a ping with `payload` (at most 125 bytes) to `conn`; the pong comes back as
    /// `Event::Pong` when `ping_events` is on.
    pub fn ping(&self, conn: ConnId, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > 125 {
            return Err(Error::InvalidArgument(format!("ping payload is {} bytes, at most 125 fit", payload.len())));
        }
        self.send_frame(conn, crate::protocol::encoder::ping_frame(payload))
    }

    /// Drops `conn`'s TCP connection at once, without a close handshake: `Close` with 1006
    /// follows (as Node's `socket.terminate()`). Works in any phase, closing included.
    pub fn terminate(&self, conn: ConnId) -> Result<(), Error> {
        self.shared.check_running()?;
        self.shared.live(conn).ok_or(Error::NoSuchConnection)?;
        let _ = self.shared.open(conn).map(|s| s.id.compare_exchange(conn, 0, Ordering::AcqRel, Ordering::Acquire));
        self.shared.submit(Command::Terminate { conn })
    }

    /// Dials `url` (`ws://` or `wss://`) from this engine: the connection's events (`Open`,
    /// `Message`, `Close`, and `Reconnecting`/`Failed`) come in the same polls as the
    /// server's, and it is sent to, closed and terminated like any other. The id is returned
    /// at once and stays the same across reconnects. Broadcasts do not reach client
    /// connections (topics do, if the host subscribes them).
    pub fn connect(&self, url: &str, options: &crate::client::ClientOptions) -> Result<ConnId, Error> {
        use crate::client::{ClientTlsOptions, WsUrl};
        use crate::engine::connection::ClientState;
        self.shared.check_running()?;
        let url = WsUrl::parse(url)?;
        let request = crate::protocol::client_handshake::HandshakeOptions {
            protocols: options.protocols.clone(),
            require_protocol: options.require_protocol,
            origin: options.origin.clone(),
            // The offer browsers make: the server picks context takeover and window sizes.
            extensions: options.compression.then(|| {
                let offer = crate::protocol::extensions::DeflateConfig {
                    mode: crate::config::CompressionMode::Dedicated,
                    ..Default::default()
                };
                crate::protocol::extensions::client_offer(&offer)
            }),
            headers: options.headers.clone(),
            ..Default::default()
        };
        // Bad headers or subprotocols fail here, not at every dial.
        crate::client::handshake_request(&url, &request)?;
        let tls = if url.secure {
            let tls_options = ClientTlsOptions { ca_pem: options.ca_pem.clone(), ca_file: options.ca_file.clone() };
            Some(crate::client::client_config(&tls_options)?)
        } else {
            None
        };
        let mut client = ClientState::new(url, request, tls);
        client.connect_timeout = options.connect_timeout;
        client.handshake_timeout = options.handshake_timeout;
        client.backoff = options.reconnect.map(crate::client::Backoff::new);
        client.hold_limit = options.queue_while_connecting;
        let port = self.shared.next_client_loop();
        let conn = port
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate()
            .ok_or_else(|| Error::InvalidArgument("every connection slot is in use".to_owned()))?;
        let slot = port.table.slot(crate::engine::slots::slot_of(conn));
        slot.live.store(conn, Ordering::Release);
        slot.holds_sends.store(options.queue_while_connecting > 0, Ordering::Release);
        slot.is_client.store(true, Ordering::Release);
        self.shared.submit(Command::Connect { conn, client: Box::new(client) }).inspect_err(|_| {
            slot.live.store(0, Ordering::Release);
            port.slots.lock().unwrap_or_else(|e| e.into_inner()).release(crate::engine::slots::slot_of(conn));
        })?;
        Ok(conn)
    }

    /// Attaches a value to `conn` (a pointer, an index): `Server::user_data` and the C event's
    /// `user_data` return it from now on, until the poll after its `Close`. The connection
    /// must be open or awaiting approval.
    pub fn set_user_data(&self, conn: ConnId, value: usize) -> Result<(), Error> {
        self.shared.check_running()?;
        if self.shared.open(conn).is_none() && self.shared.pending(conn).is_none() {
            return Err(Error::NoSuchConnection);
        }
        self.shared.user_data.set(conn, value);
        Ok(())
    }

    /// Sends to every open connection except `except` (if given). The frame is encoded once
    /// and shared by all recipients. With `redis_url`, every other server's clients get it
    /// too (`except` only means something here).
    pub fn broadcast(&self, kind: MessageKind, data: &[u8], except: Option<ConnId>) -> Result<(), Error> {
        check_payload(kind, data)?;
        let frame = message_frame(kind, data);
        self.shared.submit(Command::Broadcast { frame, except: except.unwrap_or(0) })?;
        if let Some(bridge) = self.shared.bridge.get() {
            bridge.publish(None, kind == MessageKind::Text, data);
        }
        Ok(())
    }

    /// Sends to every connection subscribed to `topic`, on every server sharing the Redis
    /// of `redis_url` when set. Local subscribers get it at once.
    pub fn publish(&self, topic: &str, kind: MessageKind, data: &[u8]) -> Result<(), Error> {
        check_payload(kind, data)?;
        let frame = message_frame(kind, data);
        self.shared.submit(Command::Publish { topic: topic.into(), frame })?;
        if let Some(bridge) = self.shared.bridge.get() {
            bridge.publish(Some(topic), kind == MessageKind::Text, data);
        }
        Ok(())
    }

    pub fn subscribe(&self, conn: ConnId, topic: &str) -> Result<(), Error> {
        self.open_slot(conn)?;
        self.shared.submit(Command::Subscribe { conn, topic: topic.into() })
    }

    pub fn unsubscribe(&self, conn: ConnId, topic: &str) -> Result<(), Error> {
        self.open_slot(conn)?;
        self.shared.submit(Command::Unsubscribe { conn, topic: topic.into() })
    }

    /// Starts the close handshake with `code` (1000-1003, 1007-1014 or 3000-4999) and a
    /// reason of at most 123 bytes. The connection stops accepting sends at once; a `Close`
    /// event follows when the peer answers (or the close timeout passes).
    pub fn close(&self, conn: ConnId, code: u16, reason: &str) -> Result<(), Error> {
        if !crate::protocol::decoder::is_valid_close_code(code) {
            return Err(Error::InvalidArgument(format!("close code {code} may not be sent")));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::InvalidArgument(format!("close reason is {} bytes, at most 123 fit", reason.len())));
        }
        let slot = self.open_slot(conn).map_err(|e| self.not_open_if_dialing(conn, e))?;
        // Claim the close so concurrent sends fail right away and a second close is refused.
        slot.id.compare_exchange(conn, 0, Ordering::AcqRel, Ordering::Acquire).map_err(|_| Error::NoSuchConnection)?;
        self.shared.submit(Command::Close { conn, code, reason: reason.to_owned() })
    }

    /// Accepts a handshake reported by `Event::Handshake`, optionally choosing one of the
    /// subprotocols the client offered (`None`, or one not offered: the server's own list decides).
    pub fn accept(&self, conn: ConnId, protocol: Option<&str>) -> Result<(), Error> {
        let slot = self.pending_slot(conn)?;
        slot.id.compare_exchange(conn | crate::engine::slots::AWAITING_APPROVAL, 0, Ordering::AcqRel, Ordering::Acquire).map_err(|_| Error::NoSuchConnection)?;
        self.shared.submit(Command::Accept { conn, protocol: protocol.map(str::to_owned) })
    }

    /// Rejects a handshake reported by `Event::Handshake` with an HTTP `status` (400-599) and a
    /// short text body (at most 1024 bytes).
    pub fn reject(&self, conn: ConnId, status: u16, body: &str) -> Result<(), Error> {
        if !(400..=599).contains(&status) {
            return Err(Error::InvalidArgument(format!("HTTP status {status} is not an error status (400-599)")));
        }
        if body.len() > 1024 {
            return Err(Error::InvalidArgument("reject body over 1024 bytes".to_owned()));
        }
        let slot = self.pending_slot(conn)?;
        slot.id.compare_exchange(conn | crate::engine::slots::AWAITING_APPROVAL, 0, Ordering::AcqRel, Ordering::Acquire).map_err(|_| Error::NoSuchConnection)?;
        self.shared.submit(Command::Reject { conn, status, body: body.to_owned() })
    }

    /// The server's counters right now.
    pub fn stats(&self) -> crate::Stats {
        self.shared.stats()
    }

    /// Bytes queued for `conn` and not yet written to its socket.
    /// What is queued for `conn` and not yet written, as the limits count it (payload plus
    /// 64 bytes per queued entry).
    pub fn buffered_amount(&self, conn: ConnId) -> Result<usize, Error> {
        let slot = self.open_slot(conn)?;
        Ok(slot.queued.load(Ordering::Acquire) + slot.in_flight.load(Ordering::Acquire))
    }

    pub fn is_stopping(&self) -> bool {
        self.shared.is_stopping()
    }
}

impl ServerHandle {
    /// The slot of an open connection; `Stopped` takes precedence over a closed id.
    fn open_slot(&self, conn: ConnId) -> Result<&crate::engine::slots::SlotShared, Error> {
        self.shared.check_running()?;
        self.shared.open(conn).ok_or(Error::NoSuchConnection)
    }

    /// `NotOpen` instead of `NoSuchConnection` for a client connection that is still dialing
    /// (or waiting to dial again).
    fn not_open_if_dialing(&self, conn: ConnId, e: Error) -> Error {
        match e {
            Error::NoSuchConnection if self.dialing(conn).is_some() => Error::NotOpen,
            e => e,
        }
    }

    /// The slot of a client connection that exists but is not open.
    fn dialing(&self, conn: ConnId) -> Option<&crate::engine::slots::SlotShared> {
        self.shared.live(conn).filter(|s| s.is_client.load(Ordering::Acquire))
    }

    fn pending_slot(&self, conn: ConnId) -> Result<&crate::engine::slots::SlotShared, Error> {
        self.shared.check_running()?;
        self.shared.pending(conn).ok_or(Error::NoSuchConnection)
    }
}

/// A listening socket with the backlog raised; with `reuse_port`, one of several sockets
/// bound to the same port (SO_REUSEPORT), among which the kernel balances new connections.
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket calls on a descriptor we own from here on; every result checked.
    unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let set = |option| libc::setsockopt(fd, libc::SOL_SOCKET, option, (&one as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        set(libc::SO_REUSEADDR);
        if reuse_port && set(libc::SO_REUSEPORT) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (storage, len) = socket_addr(addr);
        if libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::listen(fd, BACKLOG) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(listener)
    }
}

fn socket_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the family's fields.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// How the Redis bridge hands remote messages and its state to the loop: as commands, so the
/// loop fans each message out once (the frame is encoded here, on the bridge thread).
fn bridge_sink(shared: std::sync::Weak<Shared>) -> Box<dyn Fn(crate::bridge::BridgeEvent) + Send + Sync> {
    use crate::bridge::BridgeEvent;
    Box::new(move |event| {
        let Some(shared) = shared.upgrade() else { return };
        let command = match event {
            BridgeEvent::Up => Command::BridgeState { up: true, reason: String::new() },
            BridgeEvent::Down { reason } => Command::BridgeState { up: false, reason },
            BridgeEvent::Message { topic, is_text, payload } => {
                let kind = if is_text { MessageKind::Text } else { MessageKind::Binary };
                Command::Remote { topic, frame: message_frame(kind, &payload) }
            }
        };
        let remote = matches!(command, Command::Remote { .. });
        if shared.submit(command).is_err() && remote {
            shared.remote_dropped.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn check_payload(kind: MessageKind, data: &[u8]) -> Result<(), Error> {
    if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
        return Err(Error::InvalidUtf8);
    }
    Ok(())
}
