//! The subscriber thread: one pub/sub connection, read with a short timeout so that
//! subscription requests, linger deadlines and the stop flag are looked at between reads.

use std::collections::{HashMap, HashSet, VecDeque};
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

/// What this server wants, and what the current connection has in Redis. Every operation is
/// O(1) per topic it concerns, so many topics cost nothing per message.
#[derive(Default)]
struct Subscriptions {
    /// Topics with local subscribers (the engine's view).
    wanted: HashSet<Arc<str>>,
    /// Topics subscribed on the current connection (empty while disconnected).
    subscribed: HashSet<Arc<str>>,
    /// Wanted, not yet subscribed on the current connection.
    pending: HashSet<Arc<str>>,
    /// Subscribed but no longer wanted, with the deadline of their unsubscribe.
    lingering: HashMap<Arc<str>, Instant>,
    /// The same deadlines in order (the linger is constant); entries whose topic was wanted
    /// again, or lingers with a later deadline, are skipped.
    deadlines: VecDeque<(Instant, Arc<str>)>,
}

impl Subscriptions {
    fn apply(&mut self, control: Control, linger: Duration) {
        match control {
            Control::Subscribe(topic) => {
                self.lingering.remove(&topic);
                if !self.subscribed.contains(&topic) {
                    self.pending.insert(topic.clone());
                }
                self.wanted.insert(topic);
            }
            Control::Unsubscribe(topic) => {
                self.wanted.remove(&topic);
                self.pending.remove(&topic);
                if self.subscribed.contains(&topic) && !self.lingering.contains_key(&topic) {
                    let deadline = Instant::now() + linger;
                    self.lingering.insert(topic.clone(), deadline);
                    self.deadlines.push_back((deadline, topic));
                }
            }
        }
    }

    /// A new connection has `wanted` subscribed, and nothing else.
    fn connected(&mut self) {
        self.subscribed = self.wanted.clone();
        self.pending.clear();
        self.lingering.clear();
        self.deadlines.clear();
    }

    fn disconnected(&mut self) {
        self.subscribed.clear();
        self.pending = self.wanted.clone();
        self.lingering.clear();
        self.deadlines.clear();
    }

    /// Takes the topics to subscribe now.
    fn take_pending(&mut self) -> Vec<Arc<str>> {
        self.pending.drain().collect()
    }

    /// Takes the topics whose linger is over.
    fn take_expired(&mut self, now: Instant) -> Vec<Arc<str>> {
        let mut expired = Vec::new();
        while let Some((deadline, _)) = self.deadlines.front() {
            if *deadline > now {
                break;
            }
            let (deadline, topic) = self.deadlines.pop_front().expect("front");
            if self.lingering.get(&topic) == Some(&deadline) {
                self.lingering.remove(&topic);
                expired.push(topic);
            }
        }
        expired
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
    subs.connected();
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
        let subscribe = subs.take_pending();
        let unsubscribe = subs.take_expired(now);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(t: &str) -> Control {
        Control::Subscribe(Arc::from(t))
    }
    fn unsub(t: &str) -> Control {
        Control::Unsubscribe(Arc::from(t))
    }
    fn names(mut v: Vec<Arc<str>>) -> Vec<String> {
        v.sort();
        v.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn linger_and_its_cancellation() {
        let linger = Duration::from_millis(100);
        let mut s = Subscriptions::default();
        s.connected();
        s.apply(sub("a"), linger);
        s.apply(sub("b"), linger);
        s.apply(unsub("b"), linger); // never subscribed in Redis: nothing to linger
        assert_eq!(names(s.take_pending()), ["a"]);
        s.subscribed.insert(Arc::from("a"));
        assert!(s.take_pending().is_empty());

        let t0 = Instant::now();
        s.apply(unsub("a"), linger);
        assert!(s.take_expired(t0).is_empty());
        assert_eq!(names(s.take_expired(t0 + 2 * linger)), ["a"]);

        // Wanted again during the linger: the old deadline is void, a new leave starts anew.
        s.apply(unsub("a"), linger);
        s.apply(sub("a"), linger);
        assert!(s.take_pending().is_empty(), "still subscribed");
        assert!(s.take_expired(Instant::now() + 2 * linger).is_empty());
        s.apply(unsub("a"), linger);
        let again = Instant::now();
        assert!(s.take_expired(again).is_empty());
        assert_eq!(names(s.take_expired(again + 2 * linger)), ["a"]);
    }

    #[test]
    fn reconnect_subscribes_what_is_wanted() {
        let linger = Duration::from_millis(100);
        let mut s = Subscriptions::default();
        s.apply(sub("a"), linger);
        s.apply(sub("b"), linger);
        s.connected();
        s.apply(unsub("b"), linger);
        s.disconnected();
        assert_eq!(names(s.take_pending()), ["a"]);
        s.apply(sub("c"), linger);
        s.connected();
        assert!(s.take_pending().is_empty());
        let mut subscribed: Vec<Arc<str>> = s.subscribed.iter().cloned().collect();
        subscribed.sort();
        assert_eq!(names(subscribed), ["a", "c"]);
        assert!(s.take_expired(Instant::now() + 2 * linger).is_empty());
    }
}
