//! The subscriber thread: one pub/sub connection, read with a short timeout so that
//! subscription requests, linger deadlines and the stop flag are looked at between reads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use super::envelope;
use super::{Backoff, BridgeEvent, Control, Shared, CONNECT_TIMEOUT, POLL_INTERVAL, REPLY_TIMEOUT};

/// Channels per SUBSCRIBE / UNSUBSCRIBE command.
const CHANNELS_PER_COMMAND: usize = 512;
/// A PING after this long without any traffic, to find a connection that died silently.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// What this server wants, and what the current connection has in Redis.
#[derive(Default)]
struct Subscriptions {
    /// Topics with local subscribers (the engine's view).
    wanted: HashSet<Arc<str>>,
    /// Topics subscribed on the current connection (empty while disconnected).
    subscribed: HashSet<Arc<str>>,
    /// Subscribed but no longer wanted: unsubscribe at the deadline.
    lingering: HashMap<Arc<str>, Instant>,
}

impl Subscriptions {
    fn apply(&mut self, control: Control, linger: Duration) {
        match control {
            Control::Subscribe(topic) => {
                self.lingering.remove(&topic);
                self.wanted.insert(topic);
            }
            Control::Unsubscribe(topic) => {
                self.wanted.remove(&topic);
                if self.subscribed.contains(&topic) {
                    self.lingering.entry(topic).or_insert_with(|| Instant::now() + linger);
                }
            }
        }
    }

    fn disconnected(&mut self) {
        self.subscribed.clear();
        self.lingering.clear();
    }

    /// Topics to subscribe now (wanted, not subscribed) and to unsubscribe now (linger over).
    fn due(&self, now: Instant) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let subscribe = self.wanted.difference(&self.subscribed).cloned().collect();
        let unsubscribe = self
            .lingering
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(topic, _)| topic.clone())
            .collect();
        (subscribe, unsubscribe)
    }
}

pub(crate) fn run(shared: Arc<Shared>, control: Receiver<Control>, stop: Receiver<()>) {
    let mut subs = Subscriptions::default();
    let mut backoff = Backoff::new();
    let flag = &shared.subscriber_up;
    while !shared.stopped() {
        match shared.client.get_connection_with_timeout(CONNECT_TIMEOUT) {
            Ok(mut con) => {
                let mut pubsub = con.as_pubsub();
                let outcome = session(&shared, &mut pubsub, &control, &mut subs, &mut backoff);
                // Dropping `pubsub` unsubscribes everything and reads the replies: keep each
                // read short, whatever state Redis is in.
                let _ = pubsub.set_read_timeout(Some(POLL_INTERVAL));
                drop(pubsub);
                match outcome {
                    Ok(()) => return,
                    Err(reason) => shared.connection_down(flag, format!("subscriber: {reason}")),
                }
            }
            Err(e) => shared.connection_down(flag, format!("subscriber: {e}")),
        }
        subs.disconnected();
        let deadline = Instant::now() + backoff.next_delay();
        loop {
            select! {
                recv(stop) -> _ => return,
                recv(control) -> request => match request {
                    Ok(request) => subs.apply(request, shared.linger),
                    Err(_) => return,
                },
                default(deadline.saturating_duration_since(Instant::now())) => break,
            }
        }
    }
}

/// Runs one connection: Ok(()) when the bridge stops, Err(why) when the connection breaks.
fn session(
    shared: &Shared,
    pubsub: &mut redis::PubSub<'_>,
    control: &Receiver<Control>,
    subs: &mut Subscriptions,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let err = |e: redis::RedisError| e.to_string();
    // Requests that came while the connection was being made count too.
    while let Ok(request) = control.try_recv() {
        subs.apply(request, shared.linger);
    }
    pubsub.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(err)?;
    let mut channels = vec![shared.broadcast_channel.clone()];
    channels.extend(subs.wanted.iter().map(|topic| shared.topic_channel(topic)));
    for chunk in channels.chunks(CHANNELS_PER_COMMAND) {
        pubsub.subscribe(chunk).map_err(err)?;
    }
    subs.subscribed = subs.wanted.clone();
    pubsub.set_read_timeout(Some(POLL_INTERVAL)).map_err(err)?;
    backoff.reset();
    shared.connection_up(&shared.subscriber_up);

    let mut last_traffic = Instant::now();
    loop {
        if shared.stopped() {
            return Ok(());
        }
        while let Ok(request) = control.try_recv() {
            subs.apply(request, shared.linger);
        }
        let now = Instant::now();
        let (subscribe, unsubscribe) = subs.due(now);
        let ping = now.duration_since(last_traffic) >= PING_INTERVAL;
        if !subscribe.is_empty() || !unsubscribe.is_empty() || ping {
            // Each of these reads its reply: give Redis the full reply deadline. A timeout
            // leaves the connection out of step, so any error ends it.
            pubsub.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(err)?;
            for chunk in subscribe.chunks(CHANNELS_PER_COMMAND) {
                let names: Vec<String> = chunk.iter().map(|t| shared.topic_channel(t)).collect();
                pubsub.subscribe(&names).map_err(err)?;
                subs.subscribed.extend(chunk.iter().cloned());
            }
            for chunk in unsubscribe.chunks(CHANNELS_PER_COMMAND) {
                let names: Vec<String> = chunk.iter().map(|t| shared.topic_channel(t)).collect();
                pubsub.unsubscribe(&names).map_err(err)?;
                for topic in chunk {
                    subs.subscribed.remove(topic);
                    subs.lingering.remove(topic);
                }
            }
            if ping {
                pubsub.ping::<redis::Value>().map_err(err)?;
            }
            pubsub.set_read_timeout(Some(POLL_INTERVAL)).map_err(err)?;
            last_traffic = Instant::now();
        }
        match pubsub.get_message() {
            Ok(msg) => {
                last_traffic = Instant::now();
                // A request made before this message reached us applies to it: an
                // `unsubscribe` that happened before a remote publish stops its delivery.
                while let Ok(request) = control.try_recv() {
                    subs.apply(request, shared.linger);
                }
                deliver(shared, subs, &msg);
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn deliver(shared: &Shared, subs: &Subscriptions, msg: &redis::Msg) {
    let channel = msg.get_channel_name();
    let topic = if channel == shared.broadcast_channel {
        None
    } else if let Some(name) = channel.strip_prefix(shared.topic_prefix.as_str()) {
        match subs.wanted.get(name) {
            Some(topic) => Some(topic.clone()),
            // Lingering: nobody here wants it any more.
            None => return,
        }
    } else {
        return;
    };
    match envelope::decode(msg.get_payload_bytes()) {
        Err(_) => {
            shared.broken.fetch_add(1, Ordering::Relaxed);
        }
        // Our own message: delivered locally already.
        Ok(env) if env.node == shared.node => {}
        Ok(env) => {
            shared.received.fetch_add(1, Ordering::Relaxed);
            shared.emit(BridgeEvent::Message {
                topic,
                is_text: env.is_text,
                payload: bytes::Bytes::copy_from_slice(env.payload),
            });
        }
    }
}
