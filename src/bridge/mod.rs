//! The Redis bridge: carries `publish(topic)` and `broadcast` to the subscribers of every
//! wsembed server connected to the same Redis, through Redis pub/sub.
//!
//! # Shape
//! A [`Bridge`] owns two threads, each with its own blocking connection of the `redis` crate:
//! - **publisher** (`wsembed-redis-pub`): pops a bounded FIFO queue (bounded in messages and
//!   bytes) and sends what it finds as one pipeline of `PUBLISH` commands. One queue and one
//!   connection keep every message of this server in order, across all topics.
//! - **subscriber** (`wsembed-redis-sub`): a pub/sub connection, read with a short timeout
//!   (50 ms) so that subscribe/unsubscribe requests, linger deadlines and the stop flag are
//!   looked at between reads. Messages go to the `sink` given to [`Bridge::start`].
//!
//! The caller's thread (the engine's loop) never does Redis I/O: [`Bridge::publish`] is a
//! non-blocking push ("full" = dropped and counted), [`Bridge::subscribe`] and
//! [`Bridge::unsubscribe`] a push into an unbounded command queue.
//!
//! # Channels
//! - topic `T`: `{prefix}:t:{T}` (the topic is taken verbatim, so it may contain `:`)
//! - broadcast: `{prefix}:b`, subscribed for as long as the bridge is connected.
//!
//! Redis pub/sub ignores the database number of the URL: servers that must not hear each
//! other need different prefixes, not different `/db`s.
//!
//! # Envelope
//! See [`envelope`]: 12 bytes of header (magic, version, text flag, origin node id) then the
//! payload. Each bridge draws a random 64-bit node id at start (`getrandom`) and drops
//! messages carrying its own id: the origin already delivered them locally.
//!
//! # Subscriptions
//! [`Bridge::subscribe`] / [`Bridge::unsubscribe`] say whether this server wants a topic (the
//! engine calls them on the first local subscriber and after the last one left; they are
//! idempotent, the last call wins). A wanted topic is subscribed in Redis at once; a topic no
//! longer wanted stays subscribed for [`BridgeConfig::linger`] (default 1.5 s) and is then
//! unsubscribed, unless it was wanted again meanwhile. Messages of a lingering topic are not
//! passed on. Requests that arrive together are sent as one `SUBSCRIBE`/`UNSUBSCRIBE`.
//!
//! # Failures
//! The bridge starts whether Redis is up or not. A connection that fails is retried after a
//! jittered backoff (100 ms doubling up to 5 s; each wait is drawn from [d/2, d]); after a
//! reconnect the subscriber subscribes the broadcast channel and every wanted topic again.
//! While the publisher is not connected, `publish` returns `false` (dropped, counted); messages
//! that were queued when a connection broke, or whose pipeline failed, are dropped and
//! counted too: delivery is at most once. The sink gets [`BridgeEvent::Up`] once both
//! connections are established and [`BridgeEvent::Down`] when either breaks (or, at start,
//! when the first attempt fails).
//!
//! # Time bounds
//! Every Redis call has a deadline: connect 2 s, replies 3 s. Dropping a [`Bridge`] joins its
//! threads: a few polls (measured: ~1 ms with Redis down, ~0.1 s with Redis stopped by
//! SIGSTOP), at most one such deadline if a connect or command is under way to a Redis that
//! accepts but does not answer.

pub mod envelope;
mod publisher;
mod subscriber;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use crate::Error;

/// Connect deadline (TCP connect plus the client's handshake: AUTH, SELECT, CLIENT SETINFO).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reply deadline of a PUBLISH pipeline, a SUBSCRIBE/UNSUBSCRIBE or a PING.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Read timeout of the pub/sub connection between looks at the command queue.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Options of a bridge. The engine fills `url` and `prefix` from its `redis_url` and
/// `redis_prefix` options; the rest have working defaults. `Debug` hides the URL's password.
#[derive(Clone)]
pub struct BridgeConfig {
    /// `redis://[user:password@]host[:port][/db]` (port 6379 by default).
    pub url: String,
    /// Channel prefix (default `wsembed`): channels are `{prefix}:t:{topic}` and `{prefix}:b`.
    pub prefix: String,
    /// How long a topic no longer wanted stays subscribed in Redis (default 1.5 s).
    pub linger: Duration,
    /// Messages that may wait for the publisher (default 65,536).
    pub max_queue_messages: usize,
    /// Bytes (payloads plus topics plus a small per-message overhead) that may wait for the
    /// publisher (default 64 MiB).
    pub max_queue_bytes: usize,
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("linger", &self.linger)
            .field("max_queue_messages", &self.max_queue_messages)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .finish()
    }
}

/// The URL with the password of its user info (if any) replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "wsembed".into(),
            linger: Duration::from_millis(1500),
            max_queue_messages: 65_536,
            max_queue_bytes: 64 << 20,
        }
    }
}

/// What the bridge tells the engine, through the sink given to [`Bridge::start`]. The sink is
/// called from the bridge's threads, one call at a time per thread; it must not block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEvent {
    /// Both connections to Redis are established (and the subscriptions in place).
    Up,
    /// A connection to Redis failed or broke; the bridge keeps retrying.
    Down { reason: String },
    /// A message published by another server. `topic` None = broadcast.
    Message { topic: Option<Arc<str>>, is_text: bool, payload: bytes::Bytes },
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Messages Redis accepted (PUBLISH answered).
    pub published: u64,
    /// Messages from other servers passed to the sink.
    pub received: u64,
    /// Messages of this server that did not reach Redis: refused by `publish` (queue full,
    /// publisher not connected) or lost with a failed pipeline or a broken connection.
    pub dropped: u64,
    /// Received envelopes that were not valid (dropped).
    pub broken: u64,
    /// `Up` events that followed a `Down` event.
    pub reconnects: u64,
}

/// One message waiting for the publisher.
pub(crate) struct Outgoing {
    pub topic: Option<Box<str>>,
    pub envelope: Vec<u8>,
    /// What it counts against `max_queue_bytes`.
    pub cost: usize,
}

/// A subscription request for the subscriber thread.
pub(crate) enum Control {
    Subscribe(Arc<str>),
    Unsubscribe(Arc<str>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reported {
    Nothing,
    Up,
    Down,
}

type Sink = Box<dyn Fn(BridgeEvent) + Send + Sync>;

/// State shared by the handle and both threads.
pub(crate) struct Shared {
    pub node: u64,
    pub client: redis::Client,
    pub topic_prefix: String,
    pub broadcast_channel: String,
    pub linger: Duration,
    pub stop: AtomicBool,
    pub publisher_up: AtomicBool,
    pub subscriber_up: AtomicBool,
    reported: Mutex<Reported>,
    sink: Sink,
    pub queued_bytes: AtomicUsize,
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub broken: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Shared {
    /// Calls the sink; a panic in it is caught so that the bridge thread lives on.
    pub fn emit(&self, event: BridgeEvent) {
        let _ = catch_unwind(AssertUnwindSafe(|| (self.sink)(event)));
    }

    /// A connection came up: reports `Up` if now both are.
    pub fn connection_up(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let both =
            self.publisher_up.load(Ordering::Acquire) && self.subscriber_up.load(Ordering::Acquire);
        if both && *reported != Reported::Up {
            if *reported == Reported::Down {
                self.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            *reported = Reported::Up;
            self.emit(BridgeEvent::Up);
        }
    }

    /// A connection failed or broke: reports `Down` unless already reported.
    pub fn connection_down(&self, flag: &AtomicBool, reason: String) {
        flag.store(false, Ordering::Release);
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if *reported != Reported::Down && !self.stop.load(Ordering::Acquire) {
            *reported = Reported::Down;
            self.emit(BridgeEvent::Down { reason });
        }
    }

    pub fn is_up(&self) -> bool {
        *self.reported.lock().unwrap_or_else(|e| e.into_inner()) == Reported::Up
    }

    pub fn topic_channel(&self, topic: &str) -> String {
        let mut channel = String::with_capacity(self.topic_prefix.len() + topic.len());
        channel.push_str(&self.topic_prefix);
        channel.push_str(topic);
        channel
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Jittered exponential backoff: 100 ms doubling up to 5 s, each wait drawn from [d/2, d].
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        let half = d / 2;
        let nanos = half.as_nanos() as u64;
        half + Duration::from_nanos(if nanos == 0 { 0 } else { random_u64() % (nanos + 1) })
    }
}

fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // getrandom only fails on platforms without an entropy source; a fixed value then is
    // still a usable (if not unique) node id and jitter.
    let _ = getrandom::fill(&mut buf);
    u64::from_ne_bytes(buf)
}

/// A running bridge. Cheap calls from any thread; see the module documentation.
pub struct Bridge {
    shared: Arc<Shared>,
    queue: Sender<Outgoing>,
    control: Sender<Control>,
    /// Dropped (disconnected) to wake both threads at once on stop.
    stop_tx: Mutex<Option<Sender<()>>>,
    max_queue_bytes: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Bridge {
    /// Validates the options and starts the two threads. Never waits for Redis: the first
    /// connection attempts run on the bridge threads.
    ///
    /// Errors: `InvalidArgument` for a URL that is not `redis://…` or does not parse, an empty
    /// prefix, or a zero queue bound; `Io` if a thread cannot be spawned.
    pub fn start(
        config: BridgeConfig,
        sink: Box<dyn Fn(BridgeEvent) + Send + Sync>,
    ) -> Result<Bridge, Error> {
        if !config.url.starts_with("redis://") {
            return Err(Error::InvalidArgument(format!(
                "redis_url {:?}: expected redis://[user:password@]host[:port][/db]",
                redact(&config.url)
            )));
        }
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            Error::InvalidArgument(format!("redis_url {:?}: {e}", redact(&config.url)))
        })?;
        if config.prefix.is_empty() {
            return Err(Error::InvalidArgument("redis_prefix must not be empty".into()));
        }
        if config.max_queue_messages == 0 || config.max_queue_bytes == 0 {
            return Err(Error::InvalidArgument("bridge queue bounds must be above zero".into()));
        }

        let shared = Arc::new(Shared {
            node: random_u64(),
            client,
            topic_prefix: format!("{}:t:", config.prefix),
            broadcast_channel: format!("{}:b", config.prefix),
            linger: config.linger,
            stop: AtomicBool::new(false),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            reported: Mutex::new(Reported::Nothing),
            sink,
            queued_bytes: AtomicUsize::new(0),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            broken: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        });
        let (queue, queue_rx) = crossbeam_channel::bounded(config.max_queue_messages);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);

        let mut bridge = Bridge {
            shared: shared.clone(),
            queue,
            control,
            stop_tx: Mutex::new(Some(stop_tx)),
            max_queue_bytes: config.max_queue_bytes,
            threads: Mutex::new(Vec::with_capacity(2)),
        };
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(body)
        };
        let (s, q, st) = (shared.clone(), queue_rx, stop_rx.clone());
        bridge
            .threads
            .get_mut()
            .expect("not shared yet")
            .push(spawn("wsembed-redis-pub", Box::new(move || publisher::run(s, q, st)))?);
        let (s, c, st) = (shared, control_rx, stop_rx);
        bridge
            .threads
            .get_mut()
            .expect("not shared yet")
            .push(spawn("wsembed-redis-sub", Box::new(move || subscriber::run(s, c, st)))?);
        Ok(bridge)
    }

    /// Queues a message for every other server: `topic` Some = that topic's subscribers,
    /// None = broadcast to all connections. Never blocks. Returns false when the message was
    /// dropped (counted): publisher not connected, or the queue is full (messages or bytes).
    /// True means queued, not yet delivered.
    pub fn publish(&self, topic: Option<&str>, is_text: bool, payload: &[u8]) -> bool {
        let shared = &*self.shared;
        if !shared.publisher_up.load(Ordering::Acquire) || self.queue.is_full() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let cost = envelope::HEADER_LEN + payload.len() + topic.map_or(0, str::len) + 64;
        let before = shared.queued_bytes.fetch_add(cost, Ordering::AcqRel);
        if before + cost > self.max_queue_bytes {
            shared.queued_bytes.fetch_sub(cost, Ordering::AcqRel);
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let item = Outgoing {
            topic: topic.map(Box::from),
            envelope: envelope::encode(shared.node, is_text, payload),
            cost,
        };
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                shared.queued_bytes.fetch_sub(item.cost, Ordering::AcqRel);
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// This server wants `topic` (its first local subscriber joined). Never blocks.
    pub fn subscribe(&self, topic: &str) {
        let _ = self.control.send(Control::Subscribe(Arc::from(topic)));
    }

    /// This server no longer wants `topic` (its last local subscriber left); the Redis
    /// subscription ends after the linger unless `subscribe` comes first. Never blocks.
    pub fn unsubscribe(&self, topic: &str) {
        let _ = self.control.send(Control::Unsubscribe(Arc::from(topic)));
    }

    pub fn stats(&self) -> BridgeStats {
        let s = &*self.shared;
        BridgeStats {
            published: s.published.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            broken: s.broken.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
        }
    }

    /// True between an `Up` event and the next `Down`.
    pub fn is_up(&self) -> bool {
        self.shared.is_up()
    }

    /// This server's random node id, as carried in its envelopes.
    pub fn node_id(&self) -> u64 {
        self.shared.node
    }
}

impl Bridge {
    /// Stops both threads and waits for them (bounded: every Redis call has a deadline).
    /// Idempotent; the sink is never called once it returns.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.stop_tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for thread in threads {
            // Never join the calling thread (a sink that dropped the last owner).
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(url: &str, prefix: &str) -> Result<Bridge, Error> {
        let config = BridgeConfig { url: url.into(), prefix: prefix.into(), ..Default::default() };
        Bridge::start(config, Box::new(|_| {}))
    }

    #[test]
    fn bad_options_are_invalid_arguments() {
        for url in ["", "http://localhost", "localhost:6379", "redis://", "redis://host:notaport"] {
            match start(url, "p") {
                Err(Error::InvalidArgument(_)) => {}
                Err(e) => panic!("{url:?}: {e}"),
                Ok(_) => panic!("{url:?} accepted"),
            }
        }
        assert!(matches!(start("redis://127.0.0.1:1", ""), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("redis://u:pw@h:1/2"), "redis://u:***@h:1/2");
        assert_eq!(redact("redis://:p@w@h"), "redis://:***@h");
        assert_eq!(redact("redis://h:1/a@b"), "redis://h:1/a@b");
        assert_eq!(redact("redis://user@h"), "redis://user@h");
        let config = BridgeConfig { url: "redis://:secret@h".into(), ..Default::default() };
        assert!(!format!("{config:?}").contains("secret"));
        match start("redis://:secret@h:notaport", "p") {
            Err(e) => assert!(!e.to_string().contains("secret"), "{e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new();
        let mut cap = BACKOFF_MIN;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(d >= cap / 2 && d <= cap, "{d:?} outside [{:?}, {cap:?}]", cap / 2);
            cap = (cap * 2).min(BACKOFF_MAX);
        }
        b.reset();
        assert!(b.next_delay() <= BACKOFF_MIN);
    }
}
