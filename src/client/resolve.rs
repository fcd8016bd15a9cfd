//! Host name resolution off the event-loop thread. `getaddrinfo` blocks (for seconds when a
//! DNS server does not answer), so lookups run on a few worker threads, started lazily the
//! first time a name must be resolved, fed by a bounded queue. Each result goes to the
//! callback given at creation (the engine's pushes a command and wakes its loop), on a worker
//! thread. IP literals never reach the workers.
//!
//! A lookup cannot be cancelled: an engine that stops waiting (timeout, client closed) just
//! ignores the late result by its request id. Dropping the [`Resolver`] lets the workers exit
//! once their current lookup returns; it does not wait for them.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// A finished lookup, as given to the callback.
#[derive(Debug)]
pub struct Resolved {
    /// The id passed to [`Resolver::resolve`].
    pub id: u64,
    /// The addresses in the resolver's preference order (never empty on success), or why not.
    pub result: Result<Vec<SocketAddr>, String>,
}

/// The immediate answer of [`Resolver::resolve`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The host was an IP literal: here is the address; the callback will not be called.
    Ready(SocketAddr),
    /// Queued: the callback gets the result.
    Queued,
}

/// Why a lookup could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Too many lookups waiting; fail this attempt (it counts as a DNS failure) or try later.
    QueueFull,
    /// A worker thread could not be started.
    Spawn(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::QueueFull => f.write_str("too many host name lookups pending"),
            ResolveError::Spawn(e) => write!(f, "cannot start a resolver thread: {e}"),
        }
    }
}

impl std::error::Error for ResolveError {}

struct Job {
    id: u64,
    host: String,
    port: u16,
}

type Callback = Arc<dyn Fn(Resolved) + Send + Sync>;

/// A pool of lookup threads (at most `max_threads`), started as lookups need them.
pub struct Resolver {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    callback: Callback,
    max_threads: usize,
    /// Threads started so far (guarded: two callers must not both start the last one).
    threads: Mutex<usize>,
    /// Workers waiting for a job.
    idle: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("max_threads", &self.max_threads).field("queued", &self.tx.len()).finish()
    }
}

/// An IP literal (`127.0.0.1`, `::1`, also `[::1]`) as a socket address, without a lookup.
pub fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port))
}

impl Resolver {
    /// A resolver of at most `max_threads` workers (at least 1) and `queue` waiting lookups
    /// (at least 1). No thread starts before the first lookup of a name.
    pub fn new(max_threads: usize, queue: usize, callback: impl Fn(Resolved) + Send + Sync + 'static) -> Resolver {
        let (tx, rx) = crossbeam_channel::bounded(queue.max(1));
        Resolver {
            tx,
            rx,
            callback: Arc::new(callback),
            max_threads: max_threads.max(1),
            threads: Mutex::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Resolves `host` for `port`; `id` comes back with the result. An IP literal is answered
    /// at once ([`Lookup::Ready`]), anything else is queued for a worker.
    pub fn resolve(&self, id: u64, host: &str, port: u16) -> Result<Lookup, ResolveError> {
        if let Some(addr) = literal(host, port) {
            return Ok(Lookup::Ready(addr));
        }
        match self.tx.try_send(Job { id, host: host.to_owned(), port }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ResolveError::QueueFull),
            Err(TrySendError::Disconnected(_)) => unreachable!("the resolver holds a receiver"),
        }
        self.ensure_worker()?;
        Ok(Lookup::Queued)
    }

    /// Starts another worker when none is idle and the cap allows.
    fn ensure_worker(&self) -> Result<(), ResolveError> {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        if *threads >= self.max_threads || self.idle.load(Ordering::SeqCst) >= self.tx.len() {
            return Ok(());
        }
        let rx = self.rx.clone();
        let callback = self.callback.clone();
        let idle = self.idle.clone();
        std::thread::Builder::new()
            .name("wsembed-resolve".into())
            .spawn(move || worker(rx, callback, idle))
            .map_err(|e| ResolveError::Spawn(e.to_string()))?;
        *threads += 1;
        Ok(())
    }

    /// Worker threads started so far.
    pub fn threads(&self) -> usize {
        *self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn worker(rx: Receiver<Job>, callback: Callback, idle: Arc<AtomicUsize>) {
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let job = rx.recv();
        idle.fetch_sub(1, Ordering::SeqCst);
        let Ok(job) = job else { return };
        let result = lookup(&job.host, job.port);
        // A panicking callback must not take the worker (and later lookups) with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(Resolved { id: job.id, result })));
    }
}

/// A blocking lookup (`getaddrinfo`), de-duplicated, in the resolver's order.
pub fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let mut out: Vec<SocketAddr> = Vec::new();
            for a in addrs {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            if out.is_empty() {
                Err(format!("{host}: no addresses"))
            } else {
                Ok(out)
            }
        }
        Err(e) => Err(format!("{host}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn resolver(threads: usize, queue: usize) -> (Resolver, crossbeam_channel::Receiver<Resolved>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = Resolver::new(threads, queue, move |res| {
            let _ = tx.send(res);
        });
        (r, rx)
    }

    #[test]
    fn the_resolver_can_move_to_and_be_shared_with_the_loop_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Resolver>();
    }

    #[test]
    fn literals_skip_the_workers() {
        let (r, rx) = resolver(2, 4);
        assert_eq!(r.resolve(1, "127.0.0.1", 80).unwrap(), Lookup::Ready("127.0.0.1:80".parse().unwrap()));
        assert_eq!(r.resolve(2, "::1", 443).unwrap(), Lookup::Ready("[::1]:443".parse().unwrap()));
        assert_eq!(r.resolve(3, "[::1]", 443).unwrap(), Lookup::Ready("[::1]:443".parse().unwrap()));
        assert_eq!(r.threads(), 0);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn names_resolve_through_the_callback() {
        let (r, rx) = resolver(2, 16);
        assert_eq!(r.resolve(7, "localhost", 9001).unwrap(), Lookup::Queued);
        assert_eq!(r.resolve(8, "nonexistent.invalid", 80).unwrap(), Lookup::Queued);
        let mut got: Vec<Resolved> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(20)).expect("result in time")).collect();
        got.sort_by_key(|r| r.id);
        let addrs = got[0].result.as_ref().expect("localhost resolves");
        assert_eq!(got[0].id, 7);
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9001), "{addrs:?}");
        assert_eq!(got[1].id, 8);
        let e = got[1].result.as_ref().unwrap_err();
        assert!(e.starts_with("nonexistent.invalid: "), "{e}");
        assert!(r.threads() >= 1 && r.threads() <= 2);
    }

    #[test]
    fn the_queue_is_bounded_and_threads_capped() {
        // A callback that blocks holds the only worker, so the queue fills up.
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = Resolver::new(1, 2, move |res: Resolved| {
            let _ = gate_rx.recv();
            let _ = tx.send(res.id);
        });
        assert_eq!(r.resolve(1, "localhost", 1).unwrap(), Lookup::Queued);
        // Wait until the worker took job 1 (the queue is then empty).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !r.tx.is_empty() || r.idle.load(Ordering::SeqCst) != 0 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(r.resolve(2, "localhost", 2).unwrap(), Lookup::Queued);
        assert_eq!(r.resolve(3, "localhost", 3).unwrap(), Lookup::Queued);
        assert_eq!(r.resolve(4, "localhost", 4), Err(ResolveError::QueueFull));
        assert_eq!(r.threads(), 1);
        for _ in 0..3 {
            gate_tx.send_timeout((), Duration::from_secs(10)).unwrap();
        }
        let ids: Vec<u64> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_worker() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = Resolver::new(1, 4, move |res: Resolved| {
            if res.id == 1 {
                panic!("callback bug");
            }
            let _ = tx.send(res.id);
        });
        r.resolve(1, "localhost", 1).unwrap();
        r.resolve(2, "localhost", 2).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
    }
}
