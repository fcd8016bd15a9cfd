//! The publisher thread: one connection, one FIFO queue, PUBLISH pipelines.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use redis::ConnectionLike;

use super::{Backoff, Outgoing, Shared, CONNECT_TIMEOUT, REPLY_TIMEOUT};

/// Most messages and bytes sent as one pipeline.
const BATCH_MESSAGES: usize = 512;
const BATCH_BYTES: usize = 1 << 20;
/// While idle, how often the publisher checks whether the subscriber lost Redis (and then
/// PINGs, to learn of a broken connection before the next publish).
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub(crate) fn run(shared: Arc<Shared>, queue: Receiver<Outgoing>, stop: Receiver<()>) {
    let mut backoff = Backoff::new();
    let flag = &shared.publisher_up;
    while !shared.stopped() {
        match connect(&shared) {
            Ok(mut con) => {
                backoff.reset();
                shared.connection_up(flag);
                let reason = session(&shared, &mut con, &queue, &stop);
                shared.connection_down(flag, format!("publisher: {reason}"));
            }
            Err(e) => shared.connection_down(flag, format!("publisher: {e}")),
        }
        // Not connected: whatever is still queued (pushed before `publisher_up` went false)
        // is dropped; then wait out the backoff, or stop.
        drop_queued(&shared, &queue);
        let deadline = Instant::now() + backoff.next_delay();
        loop {
            select! {
                recv(stop) -> _ => return drop_queued(&shared, &queue),
                recv(queue) -> item => match item {
                    Ok(item) => drop_item(&shared, item),
                    Err(_) => return,
                },
                default(deadline.saturating_duration_since(Instant::now())) => break,
            }
        }
    }
    drop_queued(&shared, &queue);
}

fn connect(shared: &Shared) -> redis::RedisResult<redis::Connection> {
    let con = shared.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    con.set_read_timeout(Some(REPLY_TIMEOUT))?;
    con.set_write_timeout(Some(REPLY_TIMEOUT))?;
    Ok(con)
}

/// Publishes until the connection breaks (returns why) or the bridge stops.
fn session(
    shared: &Shared,
    con: &mut redis::Connection,
    queue: &Receiver<Outgoing>,
    stop: &Receiver<()>,
) -> String {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH_MESSAGES);
    let mut pipe = redis::Pipeline::with_capacity(BATCH_MESSAGES);
    loop {
        let first = select! {
            recv(stop) -> _ => return "stopped".into(),
            recv(queue) -> item => match item {
                Ok(item) => item,
                Err(_) => return "stopped".into(),
            },
            default(IDLE_CHECK) => {
                if !shared.subscriber_up.load(Ordering::Acquire) {
                    if let Err(e) = redis::cmd("PING").query::<()>(con) {
                        return e.to_string();
                    }
                }
                continue;
            }
        };
        // Take what else is queued, up to a batch.
        let mut bytes = first.envelope.len();
        batch.push(first);
        while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
            match queue.try_recv() {
                Ok(item) => {
                    bytes += item.envelope.len();
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
        pipe.clear();
        for item in &batch {
            let cmd = pipe.cmd("PUBLISH");
            match &item.topic {
                Some(topic) => cmd.arg(shared.topic_channel(topic)),
                None => cmd.arg(&shared.broadcast_channel),
            };
            cmd.arg(&item.envelope[..]).ignore();
        }
        let freed: usize = batch.iter().map(|item| item.cost).sum();
        let count = batch.len() as u64;
        let result = pipe.exec(con);
        batch.clear();
        shared.queued_bytes.fetch_sub(freed, Ordering::AcqRel);
        match result {
            Ok(()) => {
                shared.published.fetch_add(count, Ordering::Relaxed);
            }
            Err(e) => {
                // Some of the batch may have gone through; all of it counts as dropped.
                shared.dropped.fetch_add(count, Ordering::Relaxed);
                // A server's error reply (e.g. no permission for the channel) leaves the
                // connection usable; anything else (I/O, timeout, parse) does not.
                let reply =
                    matches!(e.kind(), redis::ErrorKind::Server(_) | redis::ErrorKind::Extension);
                if !reply || !con.is_open() {
                    return e.to_string();
                }
            }
        }
    }
}

fn drop_item(shared: &Shared, item: Outgoing) {
    shared.queued_bytes.fetch_sub(item.cost, Ordering::AcqRel);
    shared.dropped.fetch_add(1, Ordering::Relaxed);
}

fn drop_queued(shared: &Shared, queue: &Receiver<Outgoing>) {
    while let Ok(item) = queue.try_recv() {
        drop_item(shared, item);
    }
}
