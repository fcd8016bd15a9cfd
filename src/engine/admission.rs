//! Who may open a connection, decided before a byte is read: the server-wide connection cap
//! (503) and the per-IP limits (429): simultaneous connections and new connections per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::rate::TokenBucket;
use crate::config::ServerConfig;
use crate::http::refusal::{self, HttpResponse};

/// What is remembered per client address.
struct IpState {
    connections: u32,
    handshakes: TokenBucket,
}

pub struct Admission {
    max_connections: usize,
    per_ip: u32,
    /// New connections per second per address (0: no limit).
    rate: f64,
    ips: HashMap<IpAddr, IpState>,
    /// Connections admitted and not yet released.
    live: usize,
}

impl Admission {
    pub fn new(config: &ServerConfig) -> Self {
        Admission {
            max_connections: config.max_connections,
            per_ip: config.max_connections_per_ip,
            rate: f64::from(config.max_handshakes_per_ip_per_sec),
            ips: HashMap::new(),
            live: 0,
        }
    }

    /// Admits a connection from `ip` (counted until `release`), or says how to refuse it.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), HttpResponse> {
        if self.live >= self.max_connections {
            return Err(refusal::response(503, "too many connections"));
        }
        let rate = self.rate;
        let state = self.ips.entry(ip).or_insert_with(|| IpState { connections: 0, handshakes: TokenBucket::full(rate, now) });
        if self.per_ip > 0 && state.connections >= self.per_ip {
            return Err(refusal::response(429, "too many connections from this address"));
        }
        if rate > 0.0 && !state.handshakes.take(rate, 1.0, now) {
            return Err(refusal::response(429, "too many new connections from this address"));
        }
        state.connections += 1;
        self.live += 1;
        Ok(())
    }

    /// A client connection the host dialed: counted as live (so a stop waits for it).
    pub fn count_client(&mut self) {
        self.live += 1;
    }

    pub fn uncount_client(&mut self) {
        self.live -= 1;
    }

    /// One connection from `ip` is gone. Returns when to call `forget_idle` (an address whose
    /// handshake bucket is still refilling is remembered until it is full).
    pub fn release(&mut self, ip: IpAddr, now: Instant) -> Option<Instant> {
        self.live -= 1;
        let state = self.ips.get_mut(&ip)?;
        state.connections -= 1;
        if state.connections > 0 {
            return None;
        }
        if state.handshakes.is_full(self.rate, now) {
            self.ips.remove(&ip);
            None
        } else {
            Some(now + Duration::from_secs(1))
        }
    }

    /// Forgets addresses with no connections whose bucket has refilled; returns when to look
    /// again if some are still refilling.
    pub fn forget_idle(&mut self, now: Instant) -> Option<Instant> {
        let rate = self.rate;
        let mut refilling = false;
        self.ips.retain(|_, ip| {
            let keep = ip.connections > 0 || !ip.handshakes.is_full(rate, now);
            refilling |= keep && ip.connections == 0;
            keep
        });
        refilling.then(|| now + Duration::from_secs(1))
    }
}
