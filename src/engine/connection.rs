//! One WebSocket connection's whole lifecycle as a state machine without sockets.
//!
//! Inputs are the bytes read from the peer ([`Connection::on_bytes`]), the end of the stream
//! ([`Connection::on_disconnect`]), host commands ([`Connection::close`], [`Connection::accept`],
//! [`Connection::reject`], [`Connection::terminate`], [`Connection::stop`]) and the time
//! ([`Connection::on_timer`], [`Connection::settle`]). Outputs go to an [`Outputs`]: events for
//! the host, and [`Action`]s for the loop (queue these bytes, publish the id, leave the topics,
//! answer this plain HTTP request, remove me), applied in order. Every phase change happens in
//! this file, the way tungstenite keeps `WebSocketContext` and `do_close` together.
//!
//! The loop owns the socket, the send queue and the slot; this type never sees them, so every
//! close path is unit-tested here without a socket (see the tests at the end).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::rate::{ConnRate, TokenBucket};
use crate::client::reconnect::{Backoff, Decision, Failure};
use crate::client::url::WsUrl;
use crate::config::{RateLimitPolicy, ServerConfig};
use crate::event::{ClientFailure, ConnId, Event};
use crate::protocol::client_encoder;
use crate::protocol::decoder::Decoded;
use crate::protocol::deflate::{Compressor, Inflater, SharedDeflate};
use crate::protocol::encoder::{message_frame_compressed, MessageKind};
use crate::protocol::extensions::{self, DeflateConfig, DeflateParams};
use crate::protocol::client_handshake::{ClientHandshake, HandshakeOptions};
use crate::http::refusal;
use crate::protocol::decoder::{Decoder, DecoderLimits, Incoming, Violation};
use crate::protocol::encoder::{close_frame, ping_frame, pong_frame};
use crate::protocol::handshake::{accept_response_with_extensions, choose_protocol, parse_request, RequestHead, UpgradeRequest};

/// Which end of the connection this engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted from a listener: reads an HTTP upgrade request, sends unmasked frames.
    Server,
    /// Dialed by the host: sends the upgrade request, masks every frame it sends.
    Client,
}

/// What a client connection knows beyond the protocol: where it dials, how it retries, and
/// what the host sent before it was open.
pub struct ClientState {
    pub url: WsUrl,
    pub request: HandshakeOptions,
    /// For wss://.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// None: a failure is final.
    pub backoff: Option<Backoff>,
    /// Bytes of frames sent before open that may wait (0: such sends are refused).
    pub hold_limit: usize,
    held: VecDeque<Bytes>,
    held_bytes: usize,
    /// The host closed or terminated it: no reconnect.
    host_closed: bool,
    /// Decided when an open connection ended: dial again at this time (attempt, failure).
    retry: Option<(Instant, Duration, u32, Failure)>,
    /// A reconnecting client that will not dial again: reported as `Failed` after its
    /// `Close`, so such a client always ends with `Failed`.
    give_up: Option<ClientFailure>,
}

impl ClientState {
    pub fn new(url: WsUrl, request: HandshakeOptions, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        ClientState {
            url,
            request,
            tls,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            backoff: None,
            hold_limit: 0,
            held: VecDeque::new(),
            held_bytes: 0,
            host_closed: false,
            retry: None,
            give_up: None,
        }
    }
}

/// What the loop must know to dial: the host name (or IP literal) and port.
#[derive(Debug, PartialEq, Eq)]
pub struct DialTarget {
    pub host: String,
    pub port: u16,
}

/// Per-connection permessage-deflate state: what was negotiated, and this connection's own
/// contexts when it cannot use the loop's shared ones (context takeover), made when first
/// needed and kept (that is the memory dedicated mode costs).
pub struct Codec {
    pub params: DeflateParams,
    compressor: Option<Box<Compressor>>,
    inflater: Option<Box<Inflater>>,
}

impl Codec {
    fn new(params: DeflateParams) -> Self {
        Codec { params, compressor: None, inflater: None }
    }

    /// The window of the loop's shared compressor this connection's messages can use (no
    /// takeover on our side), or None when it needs its own (or sends uncompressed).
    pub fn shared_window(&self, config: &DeflateConfig) -> Option<u8> {
        let settings = self.params.compressor_settings(config)?;
        settings.no_context_takeover.then_some(settings.window_bits)
    }

    /// Compresses one message payload (None: send it plain: too short, not smaller, or the
    /// negotiated window is 8 bits).
    fn compress(&mut self, payload: &[u8], config: &DeflateConfig, shared: Option<&mut SharedDeflate>) -> Option<Vec<u8>> {
        let settings = self.params.compressor_settings(config)?;
        match shared {
            Some(shared) if settings.no_context_takeover => shared.compressor(settings.window_bits).compress(payload),
            _ => self.compressor.get_or_insert_with(|| Box::new(Compressor::new(settings))).compress(payload),
        }
    }

    /// Starts inflating one compressed message and works on it for at most `budget` bytes of
    /// output (1009 past `max`, 1007 for bad data; text is UTF-8 checked). `Ok(None)`: not
    /// done yet; the message is then in this connection's own inflater (moved out of the
    /// loop's shared one, which the next connection needs) and [`Codec::inflate_more`] goes on.
    fn inflate(&mut self, data: Vec<u8>, is_text: bool, max: usize, budget: usize, shared: Option<&mut SharedDeflate>) -> Result<Option<Vec<u8>>, Violation> {
        match shared {
            Some(shared) if self.params.peer_no_context_takeover() => {
                let inflater = shared.inflater();
                inflater.begin(data, is_text, max);
                let done = inflater.step(budget)?;
                if done.is_none() {
                    self.inflater = Some(Box::new(inflater.take()));
                }
                Ok(done)
            }
            _ => {
                let settings = self.params.inflater_settings();
                let inflater = self.inflater.get_or_insert_with(|| Box::new(Inflater::new(settings)));
                inflater.begin(data, is_text, max);
                inflater.step(budget)
            }
        }
    }

    /// Goes on with the message [`Codec::inflate`] left unfinished. `shared`: the loop has
    /// shared contexts, so an inflater used without takeover was moved out of them for this
    /// one message and is freed when it ends.
    fn inflate_more(&mut self, budget: usize, shared: bool) -> Result<Option<Vec<u8>>, Violation> {
        let Some(inflater) = self.inflater.as_deref_mut().filter(|i| i.is_busy()) else {
            return Err(Violation { code: 1011, reason: "no compressed message in progress" });
        };
        let done = inflater.step(budget);
        if !matches!(done, Ok(None)) && shared && self.params.peer_no_context_takeover() {
            self.inflater = None;
        }
        done
    }
}

/// Input decoded but not acted on yet. Inflating is bounded per call ([`INFLATE_BUDGET`]) so
/// that one connection's compressed traffic cannot stall the loop's other connections; what
/// is left waits here (and the socket is not read) until [`Connection::on_resume`].
#[derive(Debug)]
struct Backlog {
    /// A message is half inflated (in `Codec::inflater`): whether it is text.
    inflating: Option<bool>,
    /// Decoded after it, in order.
    items: VecDeque<Decoded>,
    /// The protocol violation that ended the decoded input, to act on after `items`.
    then_fail: Option<Violation>,
}

/// Bytes of inflated output one call on a connection may produce before the rest of its
/// input waits for a later loop turn (the read budget's order of size, in output bytes).
pub const INFLATE_BUDGET: usize = 256 * 1024;

/// How acting on decoded input ended.
enum Flow {
    /// Everything was acted on.
    Done,
    /// The inflate budget ran out, with a message half inflated (`Some(is_text)`), or before
    /// the compressed message `next`.
    Suspended { inflating: Option<bool>, next: Option<Decoded> },
    /// A message broke the protocol (bad compressed data, too large): nothing after it counts.
    Violated(Violation),
}

/// Where a connection is in its life.
#[derive(Debug)]
enum Phase {
    /// Client: resolving, connecting TCP (and TLS) until `deadline`.
    Dialing { deadline: Moment },
    /// Client: the upgrade request is sent; reading the 101 until `deadline`.
    Upgrading { handshake: Box<ClientHandshake>, deadline: Moment },
    /// Client: waiting to dial again.
    Waiting { until: Moment },
    /// Reading the HTTP request head. (Variants box what does not fit in 16 bytes, so an
    /// open connection's phase costs 24 bytes whatever the others need.)
    // Boxed: a `Vec` inline would make every phase, an open connection's included, 8 bytes larger.
    #[allow(clippy::box_collection)]
    Handshake { request: Box<Vec<u8>>, deadline: Moment },
    /// A valid upgrade request waits for the host's accept/reject.
    Approval { pending: Box<AwaitingApproval>, deadline: Moment },
    /// WebSocket open: messages flow both ways.
    Open,
    /// The peer broke the protocol after messages the host has not finished handling: input
    /// is ignored, sends still go out, and the close (`code`, `reason`) follows once the host
    /// polled past event `after` (or at `deadline`), so replies precede the close frame.
    Failing { failing: Box<FailingAfter>, deadline: Moment },
    /// The server sent a close frame and waits for the peer's; its code and reason are reported.
    Closing { deadline: Moment, sent: Box<CloseSent> },
    /// Nothing more to say: write what is queued, send FIN, discard input until the peer
    /// closes or `deadline` passes. The host has already been told (or never knew).
    Finishing { deadline: Moment },
    /// Gone; the loop removes it.
    Done,
}

#[derive(Debug)]
struct AwaitingApproval {
    request: UpgradeRequest,
    /// Bytes the client sent meanwhile (bounded by `max_header_bytes`).
    early: Vec<u8>,
}

/// `Failing`: the close to send, once the host has polled past event `after`.
#[derive(Debug)]
struct FailingAfter {
    violation: Violation,
    after: u64,
}

/// `Closing`: the close frame sent, reported when the close ends.
#[derive(Debug)]
struct CloseSent {
    code: u16,
    reason: String,
}

/// An `Instant` in 8 bytes where `Instant` takes 16: nanoseconds since a process-wide epoch
/// (a day before the first one made, so earlier instants of the same run fit too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Moment(u64);

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl Moment {
    fn epoch() -> Instant {
        *EPOCH.get_or_init(|| {
            let now = Instant::now();
            now.checked_sub(Duration::from_secs(86_400)).unwrap_or(now)
        })
    }

    fn of(t: Instant) -> Moment {
        Moment(t.saturating_duration_since(Self::epoch()).as_nanos().min(u128::from(u64::MAX)) as u64)
    }

    fn instant(self) -> Instant {
        Self::epoch() + Duration::from_nanos(self.0)
    }
}

/// A socket address in 19 bytes where `SocketAddr` takes 32 (IPv6 flow info and scope id,
/// which an accepted peer's address does not need, are not kept).
#[derive(Debug, Clone, Copy)]
struct PeerAddr {
    ip: [u8; 16],
    port: u16,
    v6: bool,
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        let (ip, v6) = match addr.ip() {
            std::net::IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), false),
            std::net::IpAddr::V6(v6) => (v6.octets(), true),
        };
        PeerAddr { ip, port: addr.port(), v6 }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(peer: PeerAddr) -> Self {
        let v6 = std::net::Ipv6Addr::from(peer.ip);
        let ip = match (peer.v6, v6.to_ipv4_mapped()) {
            (false, Some(v4)) => std::net::IpAddr::V4(v4),
            _ => std::net::IpAddr::V6(v6),
        };
        SocketAddr::new(ip, peer.port)
    }
}

/// Why a connection ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The close handshake completed.
    Clean,
    /// The peer broke the protocol.
    Protocol,
    /// The peer stopped answering.
    Timeout,
    /// TCP went away without a close handshake (or the host terminated it).
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

/// What the loop must do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Queue these bytes for the socket.
    Queue(Bytes),
    /// The handshake completed: the id is open for host sends from now on.
    Opened,
    /// The connection stops being open for the host: sends fail, topics are left.
    LeftOpen,
    /// The upgrade request awaits the host (accept/reject by id from now on).
    AwaitApproval,
    /// The host answered (or the wait ended): the id no longer awaits approval.
    Answered,
    /// A plain HTTP request: queue the answer (static files or 426); the connection finishes.
    ServeHttp { method: String, target: String, conditional: Vec<(String, String)> },
    /// The connection sits in `Failing` until the host settles its events.
    Failing,
    /// The `Close` event was reported: count it.
    Closed { cause: CloseCause, clean: bool },
    /// A message over the rate limit was dropped.
    CountRateLimited,
    /// The upgrade was accepted.
    CountHandshakeAccepted,
    /// The upgrade was refused (or abandoned before it completed).
    CountHandshakeRejected,
    /// Client: resolve and connect to this target (then call `on_connected` or `on_dial_error`).
    Dial(DialTarget),
    /// Client: the socket is done with; drop it (the connection lives on to dial again).
    DropTransport,
    /// A frame sent before open was dropped (over the hold limit).
    CountHeldDropped,
    /// Call [`Connection::on_timer`] at this time at the latest.
    Schedule(Instant),
    /// After the queue is written, send FIN (TLS: close_notify first).
    ShutdownWrite,
    /// Drop the connection now (the queue is discarded).
    Remove,
    /// Input waits (see [`Connection::has_backlog`]): call [`Connection::on_resume`] on a
    /// later turn instead of reading the socket.
    ReadLater,
}

/// Where a connection's outputs go.
pub struct Outputs<'a> {
    /// Events for the host, appended in order.
    pub events: &'a mut Vec<Event>,
    /// Sequence number of the event before `events[0]` (events handed to the host so far).
    pub event_base: u64,
    pub actions: &'a mut Vec<Action>,
    /// Bytes waiting in the connection's send queue, including what `Queue` actions add.
    pub queued: usize,
    /// Events the host has finished handling (see `EventQueue::settled`).
    pub settled: u64,
    /// The loop's shared permessage-deflate contexts (with `compression` on).
    pub deflate: Option<&'a mut SharedDeflate>,
    /// The loop's scratch for decoded frames (empty between calls): one buffer for all
    /// connections rather than one each.
    pub decoded: &'a mut Vec<Decoded>,
    /// Messages reported to the host (counted once per call, not as one action each).
    pub messages_in: u64,
}

impl Outputs<'_> {
    fn queue(&mut self, bytes: Bytes) {
        self.queued += bytes.len();
        self.actions.push(Action::Queue(bytes));
    }

    fn event(&mut self, event: Event) -> u64 {
        self.events.push(event);
        self.event_base + self.events.len() as u64
    }

    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }
}

/// One connection's protocol state; see the module documentation.
pub struct Connection {
    pub id: ConnId,
    peer: PeerAddr,
    pub role: Role,
    phase: Phase,
    decoder: Decoder,
    /// Present when per-connection rate limits are configured.
    rate: Option<Box<ConnRate>>,
    /// When bytes last arrived (liveness).
    last_seen: Moment,
    /// A ping is outstanding: sent this many milliseconds after `last_seen`, plus one (4 bytes
    /// where an `Option<Instant>` takes 16).
    ping_sent: Option<NonZeroU32>,
    /// The host saw `Open`, so it must see `Close`.
    announced: bool,
    /// Sequence number of the last message event reported for this connection.
    last_message_seq: u64,
    /// Compression state, when negotiated.
    pub codec: Option<Box<Codec>>,
    /// Input waiting for a later turn (see [`Backlog`]).
    backlog: Option<Box<Backlog>>,
    /// Client role only.
    client: Option<Box<ClientState>>,
}

impl Connection {
    /// The peer's address (the server's, for a client connection once connected).
    pub fn peer(&self) -> SocketAddr {
        self.peer.into()
    }

    /// A connection accepted from the listener; it must send its upgrade request by
    /// `handshake_timeout`. Emits the deadline.
    pub fn accepted(id: ConnId, peer: SocketAddr, config: &ServerConfig, now: Instant, out: &mut Outputs) -> Self {
        let deadline = now + config.handshake_timeout;
        out.act(Action::Schedule(deadline));
        let rate = (config.max_messages_per_sec > 0 || config.max_bytes_per_sec > 0).then(|| {
            Box::new(ConnRate {
                messages: TokenBucket::full(f64::from(config.max_messages_per_sec), now),
                bytes: TokenBucket::full(config.max_bytes_per_sec as f64, now),
            })
        });
        Connection {
            id,
            peer: PeerAddr::from(peer),
            role: Role::Server,
            phase: Phase::Handshake { request: Box::default(), deadline: Moment::of(deadline) },
            decoder: Decoder::default(),
            rate,
            last_seen: Moment::of(now),
            ping_sent: None,
            announced: false,
            last_message_seq: 0,
            codec: None,
            backlog: None,
            client: None,
        }
    }

    /// A client connection the host asked for: it dials at once.
    pub fn dialing(id: ConnId, client: ClientState, now: Instant, out: &mut Outputs) -> Self {
        let mut conn = Connection {
            id,
            peer: PeerAddr::from(SocketAddr::from(([0, 0, 0, 0], client.url.port))),
            role: Role::Client,
            phase: Phase::Done,
            decoder: Decoder::client(),
            rate: None,
            last_seen: Moment::of(now),
            ping_sent: None,
            announced: false,
            last_message_seq: 0,
            codec: None,
            backlog: None,
            client: Some(Box::new(client)),
        };
        conn.dial(now, out);
        conn
    }

    fn dial(&mut self, now: Instant, out: &mut Outputs) {
        let client = self.client.as_deref().expect("client role");
        let deadline = now + client.connect_timeout;
        let host = match client.url.host.ip() {
            Some(ip) => ip.to_string(),
            None => client.url.domain().unwrap_or_default().to_owned(),
        };
        out.act(Action::Dial(DialTarget { host, port: client.url.port }));
        out.act(Action::Schedule(deadline));
        self.phase = Phase::Dialing { deadline: Moment::of(deadline) };
    }

    /// For wss:// clients: the TLS configuration and the URL's host.
    pub fn client_tls(&self) -> Option<(&Arc<rustls::ClientConfig>, &crate::client::url::Host)> {
        let client = self.client.as_deref()?;
        client.tls.as_ref().map(|tls| (tls, &client.url.host))
    }

    /// Client: resolving, connecting or waiting for the 101.
    pub fn is_dialing(&self) -> bool {
        matches!(self.phase, Phase::Dialing { .. } | Phase::Upgrading { .. })
    }

    /// Client: the TCP connection to `peer` is up: send the upgrade request.
    pub fn on_connected(&mut self, peer: SocketAddr, now: Instant, out: &mut Outputs) {
        if !matches!(self.phase, Phase::Dialing { .. }) {
            return;
        }
        self.peer = PeerAddr::from(peer);
        let client = self.client.as_deref().expect("client role");
        match crate::client::handshake_request(&client.url, &client.request) {
            Ok((handshake, request)) => {
                let deadline = now + client.handshake_timeout;
                out.queue(Bytes::from(request));
                out.act(Action::Schedule(deadline));
                self.phase = Phase::Upgrading { handshake: Box::new(handshake), deadline: Moment::of(deadline) };
            }
            // Options are checked when the host connects; this cannot fail later.
            Err(_) => self.attempt_failed(Failure::BadHandshake, "the upgrade request could not be built".to_owned(), now, out),
        }
    }

    /// Client: resolving, connecting or the TLS handshake failed (or the stream ended before
    /// the 101).
    pub fn on_dial_error(&mut self, failure: Failure, text: String, now: Instant, out: &mut Outputs) {
        if self.is_dialing() {
            self.attempt_failed(failure, text, now, out);
        }
    }

    /// The 101 arrived and checked out: open, like an accepted server connection.
    fn client_opened(&mut self, accepted: crate::protocol::client_handshake::Accepted, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        let client = self.client.as_deref().expect("client role");
        let mut params = None;
        if let Some(offer) = client.request.extensions.as_deref() {
            let values: Vec<&str> = accepted.extensions.iter().map(String::as_str).collect();
            match extensions::accept_client_response(&values, offer) {
                Ok(p) => params = p,
                Err(e) => return self.attempt_failed(Failure::BadHandshake, e, now, out),
            }
        }
        self.decoder = Decoder::client();
        self.codec = params.map(|p| {
            self.decoder.set_deflate(true);
            Box::new(Codec::new(p))
        });
        self.phase = Phase::Open;
        self.announced = true;
        self.last_seen = Moment::of(now);
        self.ping_sent = None;
        out.act(Action::Opened);
        let client = self.client.as_deref_mut().expect("client role");
        if let Some(backoff) = client.backoff.as_mut() {
            backoff.on_open(now);
        }
        out.event(Event::Open {
            conn: self.id,
            peer: self.peer.into(),
            path: client.url.resource.clone(),
            protocol: accepted.protocol,
            extensions: self.codec.as_deref().map(|c| c.params.describe()),
            headers: accepted.headers,
        });
        let held = std::mem::take(&mut client.held);
        client.held_bytes = 0;
        // What the host sent while connecting goes out first, in order.
        let deflate = config.deflate();
        for frame in held {
            let frame = self.wire_frame(frame, &deflate, out.deflate.as_deref_mut());
            out.queue(frame);
        }
        if !config.ping_interval.is_zero() {
            out.act(Action::Schedule(now + config.ping_interval));
        }
        if !accepted.early_data.is_empty() {
            self.on_frames(&accepted.early_data, config, now, out);
        }
    }

    /// A dial or upgrade failed: dial again later, or report the final failure.
    fn attempt_failed(&mut self, failure: Failure, text: String, now: Instant, out: &mut Outputs) {
        let client = self.client.as_deref_mut().expect("client role");
        let decision = match client.backoff.as_mut() {
            Some(backoff) if !client.host_closed => backoff.on_failure(failure, now),
            _ => Decision::GiveUp(crate::client::reconnect::GiveUpReason::NotRetryable),
        };
        out.act(Action::DropTransport);
        let report = ClientFailure { code: failure.code(), status: failure.detail(), text };
        match decision {
            Decision::Retry { delay, attempt } => {
                let until = now + delay;
                out.event(Event::Reconnecting { conn: self.id, attempt, delay, failure: report });
                out.act(Action::Schedule(until));
                self.phase = Phase::Waiting { until: Moment::of(until) };
            }
            Decision::GiveUp(_) => {
                out.event(Event::Failed { conn: self.id, failure: report });
                self.phase = Phase::Done;
                out.act(Action::Remove);
            }
        }
    }

    /// Client: the host sends before open. Held (bounded, in order) when the host allowed
    /// it; returns false when the frame was refused.
    pub fn hold(&mut self, frame: Bytes, out: &mut Outputs) -> bool {
        let Some(client) = self.client.as_deref_mut().filter(|c| c.hold_limit > 0) else { return false };
        if client.held_bytes + frame.len() > client.hold_limit {
            out.act(Action::CountHeldDropped);
            return false;
        }
        client.held_bytes += frame.len();
        client.held.push_back(frame);
        true
    }

    /// A frame encoded for a server connection (unmasked, uncompressed), as this connection
    /// must send it: compressed when negotiated and worth it, masked in the client role.
    pub fn wire_frame(&mut self, frame: Bytes, config: &DeflateConfig, shared: Option<&mut SharedDeflate>) -> Bytes {
        if let Some(codec) = self.codec.as_deref_mut() {
            if let Some((kind, payload)) = whole_message(&frame) {
                if let Some(compressed) = codec.compress(payload, config, shared) {
                    return match self.role {
                        Role::Server => message_frame_compressed(kind, &compressed),
                        Role::Client => crate::protocol::encoder::masked_message_frame(kind, &compressed, true, client_encoder::mask_key()),
                    };
                }
            }
        }
        match self.role {
            Role::Server => frame,
            Role::Client => client_encoder::mask_frame(&frame),
        }
    }

    /// The negotiated compression, if any.
    pub fn codec(&self) -> Option<&Codec> {
        self.codec.as_deref()
    }

    fn close_frame(&self, code: Option<u16>, reason: &str) -> Bytes {
        match self.role {
            Role::Server => close_frame(code, reason),
            Role::Client => client_encoder::close_frame(code, reason),
        }
    }

    fn pong_frame(&self, payload: &[u8]) -> Bytes {
        match self.role {
            Role::Server => pong_frame(payload),
            Role::Client => client_encoder::pong_frame(payload),
        }
    }

    fn ping_frame(&self) -> Bytes {
        match self.role {
            Role::Server => ping_frame(b""),
            Role::Client => client_encoder::ping_frame(b""),
        }
    }

    /// Open for the host: sends, broadcasts and topics reach it.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Failing { .. })
    }

    /// Still reading the upgrade request.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. })
    }

    /// Waiting for the host's accept/reject.
    pub fn awaits_approval(&self) -> bool {
        matches!(self.phase, Phase::Approval { .. })
    }

    /// Nothing more will be queued: the loop sends FIN once the queue is written.
    #[cfg(test)]
    fn is_finishing(&self) -> bool {
        matches!(self.phase, Phase::Finishing { .. })
    }

    // ---- input from the peer ----------------------------------------------------------------

    /// Bytes read from the peer.
    pub fn on_bytes(&mut self, data: &[u8], config: &ServerConfig, now: Instant, out: &mut Outputs) {
        self.last_seen = Moment::of(now);
        self.ping_sent = None;
        match &mut self.phase {
            Phase::Handshake { request, .. } => {
                request.extend_from_slice(data);
                match parse_request(request, config.max_header_bytes) {
                    RequestHead::Partial => {}
                    RequestHead::Upgrade { request: upgrade, consumed } => {
                        let early = request.split_off(consumed);
                        self.on_upgrade_request(upgrade, early, config, now, out);
                    }
                    RequestHead::Http { method, target, conditional } => {
                        out.act(Action::ServeHttp { method, target, conditional });
                        self.finish(config, now, out);
                    }
                    RequestHead::Refuse { status: 426, .. } => self.refuse(refusal::upgrade_required(), config, now, out),
                    RequestHead::Refuse { status, reason } => self.refuse(refusal::response(status, reason), config, now, out),
                }
            }
            Phase::Approval { pending, .. } => {
                if pending.early.len() + data.len() > config.max_header_bytes {
                    self.remove(out);
                } else {
                    pending.early.extend_from_slice(data);
                }
            }
            Phase::Open | Phase::Closing { .. } => self.on_frames(data, config, now, out),
            Phase::Upgrading { handshake, .. } => match handshake.feed(data) {
                Ok(None) => {}
                Ok(Some(accepted)) => self.client_opened(accepted, config, now, out),
                Err(e) => self.attempt_failed(Failure::from(&e), e.to_string(), now, out),
            },
            Phase::Failing { .. } | Phase::Finishing { .. } | Phase::Done | Phase::Dialing { .. } | Phase::Waiting { .. } => {}
        }
    }

    /// EOF or a socket error: report what the host must know and go.
    pub fn on_disconnect(&mut self, now: Instant, out: &mut Outputs) {
        if self.is_dialing() {
            return self.attempt_failed(Failure::Network, "the connection ended during the handshake".to_owned(), now, out);
        }
        let report = match &self.phase {
            Phase::Open => Some((1006, "connection lost".to_owned())),
            Phase::Closing { sent, .. } => Some((sent.code, sent.reason.clone())),
            Phase::Failing { failing, .. } => Some((failing.violation.code, failing.violation.reason.to_owned())),
            _ => None,
        };
        if let Some((code, reason)) = report {
            self.leave_open(out);
            self.report_close(code, reason, false, CloseCause::of_server_close(code, CloseCause::Dropped), now, out);
        }
        self.remove(out);
    }

    /// A socket error: a failed dial (classified for the reconnect policy) or a lost connection.
    pub fn on_io_error(&mut self, e: &std::io::Error, now: Instant, out: &mut Outputs) {
        if self.is_dialing() {
            self.on_dial_error(Failure::from_io(e), e.to_string(), now, out)
        } else {
            self.on_disconnect(now, out)
        }
    }

    /// A valid upgrade request: check the origin, then accept or ask the host.
    fn on_upgrade_request(&mut self, request: UpgradeRequest, early: Vec<u8>, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        let allowed = &config.allowed_origins;
        if !allowed.is_empty() && request.header("Origin").is_some_and(|o| !allowed.iter().any(|a| a == o)) {
            return self.refuse(refusal::response(403, "origin not allowed"), config, now, out);
        }
        // A malformed Sec-WebSocket-Extensions fails the handshake (RFC 7692 section 5).
        if extensions::request_offers(&request).is_err() {
            return self.refuse(refusal::response(400, "malformed Sec-WebSocket-Extensions"), config, now, out);
        }
        if !config.approve_handshakes {
            let protocol = choose_protocol(&config.subprotocols, &request.protocols).map(str::to_owned);
            return self.upgrade(request, protocol, early, config, now, out);
        }
        let deadline = now + config.approval_timeout;
        out.event(Event::Handshake {
            conn: self.id,
            peer: self.peer.into(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            protocols: request.protocols.clone(),
        });
        out.act(Action::AwaitApproval);
        out.act(Action::Schedule(deadline));
        self.phase = Phase::Approval { pending: Box::new(AwaitingApproval { request, early }), deadline: Moment::of(deadline) };
    }

    /// Completes the upgrade: 101, `Open` event, then any frames that came with the request.
    fn upgrade(&mut self, request: UpgradeRequest, protocol: Option<String>, early: Vec<u8>, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        self.phase = Phase::Open;
        self.announced = true;
        let deflate = config.deflate();
        let params = match deflate.mode {
            extensions::CompressionMode::Off => None,
            _ => extensions::request_offers(&request).ok().and_then(|offers| extensions::negotiate_server(&offers, &deflate)),
        };
        let extensions = params.map(|p| p.response_header());
        out.queue(Bytes::from(accept_response_with_extensions(&request.key, protocol.as_deref(), extensions.as_deref())));
        if let Some(params) = params {
            self.decoder.set_deflate(true);
            self.codec = Some(Box::new(Codec::new(params)));
        }
        out.act(Action::Opened);
        out.act(Action::CountHandshakeAccepted);
        out.event(Event::Open { conn: self.id, peer: self.peer.into(), path: request.path, protocol, extensions, headers: request.headers });
        if !config.ping_interval.is_zero() {
            out.act(Action::Schedule(now + config.ping_interval));
        }
        if !early.is_empty() {
            self.on_frames(&early, config, now, out);
        }
    }

    /// Answers an upgrade attempt with an HTTP error and hangs up.
    fn refuse(&mut self, response: refusal::HttpResponse, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        debug_assert!(response.status >= 400, "a refusal is an HTTP error");
        out.act(Action::CountHandshakeRejected);
        out.queue(Bytes::from(response.head));
        if !response.body.is_empty() {
            out.queue(Bytes::from(response.body));
        }
        self.finish(config, now, out);
    }

    /// Decodes WebSocket traffic and acts on it.
    fn on_frames(&mut self, data: &[u8], config: &ServerConfig, now: Instant, out: &mut Outputs) {
        let limits = DecoderLimits { max_message_size: config.max_message_size, max_frame_size: config.max_frame_size };
        let mut decoded = std::mem::take(out.decoded);
        let outcome = self.decoder.feed_decoded(data, &limits, &mut decoded);
        if let Some(backlog) = self.backlog.as_deref_mut() {
            // Not read while a backlog waits, but early data may come this way: keep the order.
            backlog.items.extend(decoded.drain(..));
            backlog.then_fail = backlog.then_fail.take().or(outcome.err());
        } else {
            let mut items = decoded.drain(..);
            let flow = self.act_on(&mut items, INFLATE_BUDGET, config, now, out);
            // Only a suspended flow leaves items behind (usually none are).
            let rest: VecDeque<Decoded> = if matches!(flow, Flow::Suspended { .. }) { items.collect() } else { VecDeque::new() };
            self.after(flow, rest, outcome.err(), config, now, out);
        }
        decoded.clear();
        *out.decoded = decoded;
    }

    /// Input left waiting by the inflate budget: the connection has more to do before the
    /// loop reads its socket again (it asked with [`Action::ReadLater`]).
    pub fn has_backlog(&self) -> bool {
        self.backlog.is_some()
    }

    /// Goes on with the input left waiting, within a fresh inflate budget.
    pub fn on_resume(&mut self, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        let Some(mut backlog) = self.backlog.take() else { return };
        let mut budget = INFLATE_BUDGET;
        if let Some(is_text) = backlog.inflating.take() {
            let codec = self.codec.as_deref_mut().expect("a half-inflated message has a codec");
            match codec.inflate_more(budget, out.deflate.is_some()) {
                Ok(Some(data)) => {
                    budget = budget.saturating_sub(data.len());
                    self.on_message(is_text, data, config, now, out);
                }
                Ok(None) => {
                    backlog.inflating = Some(is_text);
                    self.backlog = Some(backlog);
                    out.act(Action::ReadLater);
                    return;
                }
                Err(violation) => return self.fail(violation, config, now, out),
            }
        }
        let mut items = std::mem::take(&mut backlog.items);
        // Not `drain`: what is left must stay in `items`.
        let flow = self.act_on(&mut std::iter::from_fn(|| items.pop_front()), budget, config, now, out);
        self.after(flow, items, backlog.then_fail, config, now, out);
    }

    /// What follows acting on input: keep the rest for later, or fail the connection.
    fn after(&mut self, flow: Flow, mut rest: VecDeque<Decoded>, then_fail: Option<Violation>, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        match flow {
            Flow::Suspended { inflating, next } => {
                if let Some(next) = next {
                    rest.push_front(next);
                }
                self.backlog = Some(Box::new(Backlog { inflating, items: rest, then_fail }));
                out.act(Action::ReadLater);
            }
            Flow::Violated(violation) => self.fail(violation, config, now, out),
            Flow::Done => {
                if let Some(violation) = then_fail.filter(|_| matches!(self.phase, Phase::Open | Phase::Closing { .. })) {
                    self.fail(violation, config, now, out);
                }
            }
        }
    }

    /// Acts on decoded items in order, inflating at most `budget` bytes in all.
    fn act_on(&mut self, items: &mut impl Iterator<Item = Decoded>, mut budget: usize, config: &ServerConfig, now: Instant, out: &mut Outputs) -> Flow {
        loop {
            let open = match &self.phase {
                Phase::Open => true,
                Phase::Closing { .. } => false,
                _ => return Flow::Done,
            };
            let Some(decoded) = items.next() else { return Flow::Done };
            let item = match decoded {
                Decoded::Plain(item) => item,
                // A message the host will not see (we are closing) is not worth inflating.
                Decoded::Compressed { .. } if !open => continue,
                Decoded::Compressed { is_text, data } if budget > 0 => {
                    let codec = self.codec.as_deref_mut().expect("RSV1 is refused unless negotiated");
                    match codec.inflate(data, is_text, config.max_message_size, budget, out.deflate.as_deref_mut()) {
                        Ok(Some(data)) => {
                            budget = budget.saturating_sub(data.len());
                            Incoming::Message { is_text, data }
                        }
                        Ok(None) => return Flow::Suspended { inflating: Some(is_text), next: None },
                        Err(violation) => return Flow::Violated(violation),
                    }
                }
                // Out of budget: this message and the rest wait for a later turn.
                compressed => return Flow::Suspended { inflating: None, next: Some(compressed) },
            };
            match item {
                Incoming::Message { is_text, data } if open => self.on_message(is_text, data, config, now, out),
                Incoming::Message { .. } => {}
                // A peer that pings but never reads must not grow our queue without bound;
                // RFC 6455 lets us answer only the most recent ping anyway.
                Incoming::Ping(payload) if open => {
                    if out.queued <= config.max_buffered_bytes {
                        out.queue(self.pong_frame(&payload));
                    }
                    if config.ping_events {
                        out.event(Event::Ping { conn: self.id, data: payload });
                    }
                }
                Incoming::Ping(_) => {}
                Incoming::Pong(payload) => {
                    if open && config.ping_events {
                        out.event(Event::Pong { conn: self.id, data: payload });
                    }
                }
                Incoming::Close(status) => {
                    if open {
                        // The peer closes: echo its code, report it, hang up after the reply.
                        let (code, reason) = status.clone().unwrap_or((1005, String::new()));
                        self.leave_open(out);
                        out.queue(self.close_frame(status.map(|(c, _)| c), ""));
                        self.report_close(code, reason, true, CloseCause::Clean, now, out);
                    } else if let Phase::Closing { sent, .. } = std::mem::replace(&mut self.phase, Phase::Done) {
                        let CloseSent { code, reason } = *sent;
                        self.report_close(code, reason, true, CloseCause::of_server_close(code, CloseCause::Clean), now, out);
                    }
                    self.finish(config, now, out);
                }
            }
        }
    }

    /// A whole message for the host (rate limits permitting).
    fn on_message(&mut self, is_text: bool, data: Vec<u8>, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        if !self.within_rate(data.len(), config, now) {
            match config.rate_limit_policy {
                RateLimitPolicy::Drop => out.act(Action::CountRateLimited),
                RateLimitPolicy::Close => self.close(1008, "rate limit exceeded", config, now, out),
            }
            return;
        }
        out.messages_in += 1;
        self.last_message_seq = out.event(Event::Message { conn: self.id, data, is_text });
    }

    fn within_rate(&mut self, len: usize, config: &ServerConfig, now: Instant) -> bool {
        let Some(rate) = self.rate.as_deref_mut() else { return true };
        let (msgs, bytes) = (f64::from(config.max_messages_per_sec), config.max_bytes_per_sec as f64);
        (msgs == 0.0 || rate.messages.take(msgs, 1.0, now)) && (bytes == 0.0 || rate.bytes.take(bytes, len as f64, now))
    }

    /// The peer broke the protocol: close with the prescribed code and stop listening to it.
    /// Messages before the violation that the host has not finished with get their replies
    /// out first: the connection waits in `Failing` until the host polls again (bounded).
    fn fail(&mut self, violation: Violation, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if matches!(self.phase, Phase::Open) && self.last_message_seq > out.settled {
            let deadline = now + config.close_timeout;
            let after = self.last_message_seq;
            self.phase = Phase::Failing { failing: Box::new(FailingAfter { violation, after }), deadline: Moment::of(deadline) };
            out.act(Action::Failing);
            out.act(Action::Schedule(deadline));
            return;
        }
        self.fail_now(violation, config, now, out);
    }

    fn fail_now(&mut self, violation: Violation, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        self.leave_open(out);
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Open | Phase::Failing { .. } => {
                out.queue(self.close_frame(Some(violation.code), violation.reason));
                self.report_close(violation.code, violation.reason.to_owned(), false, CloseCause::Protocol, now, out);
            }
            Phase::Closing { sent, .. } => self.report_close(sent.code, sent.reason, false, CloseCause::Protocol, now, out),
            other => self.phase = other,
        }
        self.finish(config, now, out);
    }

    // ---- host commands -----------------------------------------------------------------------

    /// Server-initiated close of an open connection: send the close frame, wait for the reply.
    pub fn close(&mut self, code: u16, reason: &str, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if !self.is_open() {
            return;
        }
        let deadline = now + config.close_timeout;
        if let Some(client) = self.client.as_deref_mut() {
            client.host_closed = true;
        }
        self.leave_open(out);
        out.queue(self.close_frame(Some(code), reason));
        self.phase = Phase::Closing { deadline: Moment::of(deadline), sent: Box::new(CloseSent { code, reason: reason.to_owned() }) };
        out.act(Action::Schedule(deadline));
    }

    /// Abortive close by the host: no close handshake, TCP dropped, reported as 1006.
    pub fn terminate(&mut self, now: Instant, out: &mut Outputs) {
        if let Some(client) = self.client.as_deref_mut() {
            client.host_closed = true;
        }
        match &self.phase {
            Phase::Open | Phase::Failing { .. } | Phase::Closing { .. } => {
                self.leave_open(out);
                self.report_close(1006, "terminated".to_owned(), false, CloseCause::Dropped, now, out);
                self.remove(out);
            }
            Phase::Handshake { .. } | Phase::Approval { .. } => self.remove(out),
            Phase::Dialing { .. } | Phase::Upgrading { .. } | Phase::Waiting { .. } => {
                self.attempt_failed(Failure::ClosedByHost, "terminated by the host".to_owned(), now, out)
            }
            Phase::Finishing { .. } | Phase::Done => {}
        }
    }

    /// The host accepts a handshake awaiting approval, optionally picking a subprotocol.
    pub fn accept(&mut self, protocol: Option<String>, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if !self.awaits_approval() {
            return;
        }
        if let Phase::Approval { pending, .. } = std::mem::replace(&mut self.phase, Phase::Done) {
            let AwaitingApproval { request, early } = *pending;
            out.act(Action::Answered);
            let protocol = protocol
                .filter(|p| request.protocols.contains(p))
                .or_else(|| choose_protocol(&config.subprotocols, &request.protocols).map(str::to_owned));
            self.upgrade(request, protocol, early, config, now, out);
        }
    }

    /// The host rejects a handshake awaiting approval with an HTTP status.
    pub fn reject(&mut self, status: u16, body: &str, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if self.awaits_approval() {
            out.act(Action::Answered);
            self.refuse(refusal::response(status, body), config, now, out);
        }
    }

    /// The server stops: handshakes are dropped or refused, open connections get 1001 and
    /// have until `deadline` to answer.
    pub fn stop(&mut self, deadline: Instant, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        if let Some(client) = self.client.as_deref_mut() {
            client.host_closed = true;
        }
        match &self.phase {
            Phase::Dialing { .. } | Phase::Upgrading { .. } | Phase::Waiting { .. } => {
                self.attempt_failed(Failure::ClosedByHost, "server stopping".to_owned(), now, out)
            }
            Phase::Handshake { .. } => self.remove(out),
            Phase::Approval { .. } => {
                out.act(Action::Answered);
                self.refuse(refusal::response(503, "server stopping"), config, now, out)
            }
            Phase::Open => {
                self.close(1001, "server stopping", config, now, out);
                if let Phase::Closing { deadline: d, .. } = &mut self.phase {
                    *d = Moment::of(deadline);
                }
            }
            Phase::Failing { failing, .. } => {
                let violation = failing.violation;
                self.fail_now(violation, config, now, out);
            }
            Phase::Closing { .. } | Phase::Finishing { .. } | Phase::Done => {}
        }
    }

    /// At the stop deadline: whatever is left is dropped, the host told.
    pub fn abort(&mut self, now: Instant, out: &mut Outputs) {
        if let Some(client) = self.client.as_deref_mut() {
            client.host_closed = true;
            client.retry = None;
        }
        if self.announced && !matches!(self.phase, Phase::Finishing { .. } | Phase::Done) {
            let (code, reason) = match &self.phase {
                Phase::Closing { sent, .. } => (sent.code, sent.reason.clone()),
                _ => (1001, "server stopped".to_owned()),
            };
            self.leave_open(out);
            self.report_close(code, reason, false, CloseCause::Server, now, out);
        }
        self.remove(out);
    }

    // ---- time ----------------------------------------------------------------------------------

    /// Acts on a due deadline; returns the next one.
    pub fn on_timer(&mut self, config: &ServerConfig, now: Instant, out: &mut Outputs) -> Option<Instant> {
        match &self.phase {
            Phase::Handshake { deadline, .. } | Phase::Finishing { deadline } if now >= deadline.instant() => {
                self.remove(out);
                None
            }
            Phase::Approval { deadline, .. } if now >= deadline.instant() => {
                out.act(Action::Answered);
                self.refuse(refusal::response(503, "handshake not approved in time"), config, now, out);
                Some(now + config.close_timeout)
            }
            Phase::Dialing { deadline } | Phase::Upgrading { deadline, .. } if now >= deadline.instant() => {
                self.attempt_failed(Failure::Timeout, "timed out connecting".to_owned(), now, out);
                None
            }
            Phase::Waiting { until } if now >= until.instant() => {
                self.dial(now, out);
                None
            }
            Phase::Dialing { deadline } | Phase::Upgrading { deadline, .. } => Some(deadline.instant()),
            Phase::Waiting { until } => Some(until.instant()),
            Phase::Closing { deadline, sent } if now >= deadline.instant() => {
                let (code, reason) = (sent.code, sent.reason.clone());
                self.report_close(code, reason, false, CloseCause::of_server_close(code, CloseCause::Timeout), now, out);
                self.remove(out);
                None
            }
            Phase::Failing { deadline, failing } if now >= deadline.instant() => {
                let violation = failing.violation;
                self.fail_now(violation, config, now, out);
                Some(now + config.close_timeout)
            }
            Phase::Handshake { deadline, .. }
            | Phase::Approval { deadline, .. }
            | Phase::Finishing { deadline }
            | Phase::Closing { deadline, .. }
            | Phase::Failing { deadline, .. } => Some(deadline.instant()),
            Phase::Open if config.ping_interval.is_zero() => None,
            Phase::Open => match self.ping_sent.map(|after| self.last_seen.instant() + Duration::from_millis(u64::from(after.get() - 1))) {
                Some(sent) if now >= sent + config.pong_timeout => {
                    // The peer stopped answering: drop it without a handshake.
                    self.leave_open(out);
                    self.report_close(1006, "ping timeout".to_owned(), false, CloseCause::Timeout, now, out);
                    self.remove(out);
                    None
                }
                Some(sent) => Some(sent + config.pong_timeout),
                None if now >= self.last_seen.instant() + config.ping_interval => {
                    let after = now.saturating_duration_since(self.last_seen.instant()).as_millis().min(u128::from(u32::MAX - 1)) as u32;
                    self.ping_sent = NonZeroU32::new(after + 1);
                    out.queue(self.ping_frame());
                    Some(now + config.pong_timeout)
                }
                None => Some(self.last_seen.instant() + config.ping_interval),
            },
            Phase::Done => None,
        }
    }

    /// Closes a `Failing` connection once the host has handled events up to `settled` (or
    /// at once when `force`). Returns true while it keeps waiting.
    pub fn settle(&mut self, settled: u64, force: bool, config: &ServerConfig, now: Instant, out: &mut Outputs) -> bool {
        let Phase::Failing { ref failing, deadline } = self.phase else { return false };
        if force || settled >= failing.after || now >= deadline.instant() {
            let violation = failing.violation;
            self.fail_now(violation, config, now, out);
            return false;
        }
        true
    }

    // ---- shared steps --------------------------------------------------------------------------

    /// Enters `Finishing`: flush, FIN, wait for the peer to hang up (bounded).
    pub fn finish(&mut self, config: &ServerConfig, now: Instant, out: &mut Outputs) {
        let deadline = now + config.close_timeout;
        self.phase = Phase::Finishing { deadline: Moment::of(deadline) };
        out.act(Action::ShutdownWrite);
        out.act(Action::Schedule(deadline));
    }

    fn leave_open(&mut self, out: &mut Outputs) {
        if self.is_open() {
            out.act(Action::LeftOpen);
        }
    }

    /// Emits the one `Close` event of an open connection and its count. A client the host
    /// did not close decides here whether it dials again (after its socket is gone).
    fn report_close(&mut self, code: u16, reason: String, clean: bool, cause: CloseCause, now: Instant, out: &mut Outputs) {
        out.act(Action::Closed { cause, clean });
        out.event(Event::Close { conn: self.id, code, reason, clean });
        if let Some(client) = self.client.as_deref_mut() {
            let failure = if client.host_closed { Failure::ClosedByHost } else { Failure::Closed(code) };
            match client.backoff.as_mut().map(|b| b.on_failure(failure, now)) {
                Some(Decision::Retry { delay, attempt }) => client.retry = Some((now + delay, delay, attempt, failure)),
                Some(Decision::GiveUp(_)) => {
                    let text = format!("{} ({})", failure.description(), code);
                    client.give_up = Some(ClientFailure { code: failure.code(), status: failure.detail(), text });
                }
                None => {}
            }
        }
    }

    fn remove(&mut self, out: &mut Outputs) {
        if let Some(failure) = self.client.as_deref_mut().and_then(|c| c.give_up.take()) {
            out.event(Event::Failed { conn: self.id, failure });
        }
        if let Some((until, delay, attempt, failure)) = self.client.as_deref_mut().and_then(|c| c.retry.take()) {
            // The connection lives on under the same id: dial again later.
            self.announced = false;
            out.act(Action::DropTransport);
            let text = format!("connection closed with {}", failure.detail());
            out.event(Event::Reconnecting {
                conn: self.id,
                attempt,
                delay,
                failure: ClientFailure { code: failure.code(), status: failure.detail(), text },
            });
            out.act(Action::Schedule(until));
            self.phase = Phase::Waiting { until: Moment::of(until) };
            return;
        }
        if !self.announced && matches!(self.phase, Phase::Handshake { .. } | Phase::Approval { .. }) {
            out.act(Action::CountHandshakeRejected);
        }
        if matches!(self.phase, Phase::Approval { .. }) {
            out.act(Action::Answered);
        }
        self.phase = Phase::Done;
        out.act(Action::Remove);
    }
}

/// The kind and payload of a whole, unfragmented, uncompressed data frame (as the encoder
/// makes them for sends, broadcasts and publishes).
pub(super) fn whole_message(frame: &[u8]) -> Option<(MessageKind, &[u8])> {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let mut cursor = std::io::Cursor::new(frame);
    let (header, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor).ok()??;
    let kind = match header.opcode {
        OpCode::Data(Data::Text) => MessageKind::Text,
        OpCode::Data(Data::Binary) => MessageKind::Binary,
        _ => return None,
    };
    if !header.is_final || header.rsv1 {
        return None;
    }
    let start = cursor.position() as usize;
    frame.get(start..start + len as usize).map(|payload| (kind, payload))
}

#[cfg(test)]
mod tests;
