//! When to dial again, sans-IO: the caller passes the time and reports what happened.
//!
//! Delays use "full jitter": the n-th retry in a row (n = 0, 1, ...) waits a uniformly random
//! time in `[0, min(max_delay, min_delay * 2^n)]`, which spreads a crowd of clients that lost
//! the same server. `min_delay` is the base of the growth, not a floor.
//!
//! The attempt counter goes back to zero when a connection stayed open at least `reset_after`;
//! a connection that drops sooner keeps it growing (a server that accepts and then closes at
//! once does not get a tight loop).

use std::time::{Duration, Instant};

use rand::RngExt;

/// Why a connection attempt or an open connection ended. [`Failure::code`] gives stable
/// numbers for the C event, [`Failure::detail`] the HTTP status or close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The host closed the client (its own request): never retried.
    ClosedByHost,
    /// TCP connection refused (nothing listening).
    ConnectionRefused,
    /// Connecting, the TLS handshake or the upgrade took longer than allowed.
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// Another network error: reset, unreachable, end of stream during the handshake.
    Network,
    /// The server's certificate was not trusted, expired, or names another host.
    TlsVerification,
    /// Any other TLS failure (alert from the server, no common version or cipher).
    Tls,
    /// The server answered the upgrade with this HTTP status instead of 101.
    HttpStatus(u16),
    /// A 101 response that breaks RFC 6455 (wrong accept key, subprotocol not offered, ...).
    BadHandshake,
    /// The open connection ended with this close code: the server's, the one we sent
    /// after a protocol violation, or 1006 when it dropped without a closing handshake.
    Closed(u16),
}

impl Failure {
    /// Stable number of the reason (C ABI): never renumbered, new reasons get new numbers.
    pub fn code(&self) -> u32 {
        match self {
            Failure::ClosedByHost => 1,
            Failure::ConnectionRefused => 2,
            Failure::Timeout => 3,
            Failure::Dns => 4,
            Failure::Network => 5,
            Failure::TlsVerification => 6,
            Failure::Tls => 7,
            Failure::HttpStatus(_) => 8,
            Failure::BadHandshake => 9,
            Failure::Closed(_) => 10,
        }
    }

    /// The HTTP status for `HttpStatus`, the close code for `Closed`, else 0.
    pub fn detail(&self) -> u16 {
        match self {
            Failure::HttpStatus(s) => *s,
            Failure::Closed(c) => *c,
            _ => 0,
        }
    }

    /// Short human text for the reason (without the detail number).
    pub fn description(&self) -> &'static str {
        match self {
            Failure::ClosedByHost => "closed by the application",
            Failure::ConnectionRefused => "connection refused",
            Failure::Timeout => "timed out",
            Failure::Dns => "host name did not resolve",
            Failure::Network => "network error",
            Failure::TlsVerification => "server certificate verification failed",
            Failure::Tls => "TLS error",
            Failure::HttpStatus(_) => "server refused the upgrade with an HTTP status",
            Failure::BadHandshake => "invalid WebSocket handshake response",
            Failure::Closed(_) => "connection closed",
        }
    }

    /// Whether dialing again may help.
    ///
    /// Retried: refused, timeout, DNS, other network errors, TLS errors other than
    /// verification, HTTP 5xx/408/429, close codes 1001, 1006, 1011-1014.
    /// Not retried: the host's own close, certificate verification, other HTTP statuses
    /// (4xx, redirects, 200), a bad 101, and every other close code (1000, 1005 = no code,
    /// 1002, 1003, 1007-1010, 3000-4999).
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::ClosedByHost | Failure::TlsVerification | Failure::BadHandshake => false,
            Failure::ConnectionRefused | Failure::Timeout | Failure::Dns | Failure::Network | Failure::Tls => true,
            Failure::HttpStatus(s) => matches!(s, 500..=599 | 408 | 429),
            Failure::Closed(c) => matches!(c, 1001 | 1006 | 1011..=1014),
        }
    }

    /// Classifies an I/O error from connecting, the TLS layer or the socket.
    pub fn from_io(e: &std::io::Error) -> Failure {
        use std::io::ErrorKind as K;
        if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Failure::from_tls(tls);
        }
        match e.kind() {
            K::ConnectionRefused => Failure::ConnectionRefused,
            K::TimedOut => Failure::Timeout,
            _ => Failure::Network,
        }
    }

    /// Classifies a rustls error.
    pub fn from_tls(e: &rustls::Error) -> Failure {
        if super::tls::is_verification_failure(e) {
            Failure::TlsVerification
        } else {
            Failure::Tls
        }
    }
}

impl From<&crate::protocol::client_handshake::HandshakeError> for Failure {
    /// A non-101 status keeps its number; a 101 that fails validation is `BadHandshake`.
    fn from(e: &crate::protocol::client_handshake::HandshakeError) -> Failure {
        match e {
            crate::protocol::client_handshake::HandshakeError::Status { status, .. } => Failure::HttpStatus(*status),
            crate::protocol::client_handshake::HandshakeError::Invalid(_) => Failure::BadHandshake,
        }
    }
}

impl From<&super::resolve::ResolveError> for Failure {
    /// A lookup that could not even be queued counts as a DNS failure (retried).
    fn from(_: &super::resolve::ResolveError) -> Failure {
        Failure::Dns
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::HttpStatus(s) => write!(f, "server refused the upgrade with HTTP {s}"),
            Failure::Closed(c) => write!(f, "connection closed with code {c}"),
            other => f.write_str(other.description()),
        }
    }
}

/// Reconnection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Base delay: the first retry waits up to this long (default 500 ms).
    pub min_delay: Duration,
    /// Cap on any delay (default 30 s).
    pub max_delay: Duration,
    /// Retries in a row before giving up; 0 = unlimited (default 0).
    pub max_attempts: u32,
    /// A connection open at least this long resets the attempt counter (default 10 s).
    pub reset_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 0,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl ReconnectPolicy {
    /// Checks the settings (`min_delay <= max_delay`).
    pub fn validate(&self) -> Result<(), String> {
        if self.min_delay > self.max_delay {
            return Err(format!(
                "reconnect min_delay ({:?}) is greater than max_delay ({:?})",
                self.min_delay, self.max_delay
            ));
        }
        Ok(())
    }

    /// The upper bound of the full-jitter delay for retry number `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.min_delay.checked_mul(factor).unwrap_or(Duration::MAX).min(self.max_delay)
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Dial again after this delay; `attempt` is the 1-based number of this retry.
    Retry { delay: Duration, attempt: u32 },
    /// Stop: report the failure as final.
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The failure is not one that retrying fixes (see [`Failure::is_retryable`]).
    NotRetryable,
    /// `max_attempts` retries in a row failed.
    AttemptsExhausted,
}

/// The reconnection state of one client.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    /// Retries scheduled since the last reset.
    attempts: u32,
    opened_at: Option<Instant>,
}

impl Backoff {
    pub fn new(policy: ReconnectPolicy) -> Backoff {
        Backoff { policy, attempts: 0, opened_at: None }
    }

    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Retries scheduled since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The WebSocket handshake completed at `now`.
    pub fn on_open(&mut self, now: Instant) {
        self.opened_at = Some(now);
    }

    /// The attempt or connection failed at `now`: decide, with `rand`'s thread RNG.
    pub fn on_failure(&mut self, failure: Failure, now: Instant) -> Decision {
        self.on_failure_with(failure, now, &mut rand::rng())
    }

    /// As [`Backoff::on_failure`] with a given random source (tests).
    pub fn on_failure_with(&mut self, failure: Failure, now: Instant, rng: &mut impl rand::Rng) -> Decision {
        if let Some(opened) = self.opened_at.take() {
            if now.saturating_duration_since(opened) >= self.policy.reset_after {
                self.attempts = 0;
            }
        }
        if !failure.is_retryable() {
            return Decision::GiveUp(GiveUpReason::NotRetryable);
        }
        if self.policy.max_attempts != 0 && self.attempts >= self.policy.max_attempts {
            return Decision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let ceiling = self.policy.ceiling(self.attempts);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(rng.random_range(0..=nanos));
        self.attempts += 1;
        Decision::Retry { delay, attempt: self.attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn policy(max_attempts: u32) -> ReconnectPolicy {
        ReconnectPolicy { min_delay: ms(100), max_delay: ms(2_000), max_attempts, reset_after: ms(5_000) }
    }

    fn delay(d: Decision) -> Duration {
        match d {
            Decision::Retry { delay, .. } => delay,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_spreads() {
        let p = policy(0);
        assert_eq!(
            (0..7).map(|n| p.ceiling(n)).collect::<Vec<_>>(),
            vec![ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000), ms(2000)]
        );
        assert_eq!(p.ceiling(u32::MAX), ms(2000));
        let huge = ReconnectPolicy { min_delay: Duration::from_secs(u64::MAX / 4), max_delay: Duration::MAX, ..p };
        assert_eq!(huge.ceiling(40), Duration::MAX);
        let now = Instant::now();
        for attempt in 0..8u32 {
            let ceiling = p.ceiling(attempt);
            let draws: Vec<Duration> = (0..2_000)
                .map(|_| {
                    let mut b = Backoff { policy: p, attempts: attempt, opened_at: None };
                    delay(b.on_failure(Failure::ConnectionRefused, now))
                })
                .collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            let mean = draws.iter().sum::<Duration>() / draws.len() as u32;
            // Uniform on [0, c]: mean c/2, and both ends of the range are reached.
            assert!(mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10, "attempt {attempt}: mean {mean:?} of {ceiling:?}");
            assert!(draws.iter().any(|d| *d < ceiling / 10) && draws.iter().any(|d| *d > ceiling * 9 / 10));
        }
    }

    #[test]
    fn attempts_are_capped_and_counted() {
        let now = Instant::now();
        let mut b = Backoff::new(policy(3));
        for n in 1..=3 {
            assert!(matches!(b.on_failure(Failure::Timeout, now), Decision::Retry { attempt, .. } if attempt == n));
        }
        assert_eq!(b.on_failure(Failure::Timeout, now), Decision::GiveUp(GiveUpReason::AttemptsExhausted));
        let mut unlimited = Backoff::new(policy(0));
        for _ in 0..1_000 {
            assert!(delay(unlimited.on_failure(Failure::Dns, now)) <= ms(2_000));
        }
        assert_eq!(unlimited.attempts(), 1_000);
        assert!(ReconnectPolicy { min_delay: ms(5), max_delay: ms(1), ..policy(0) }.validate().is_err());
        assert!(ReconnectPolicy::default().validate().is_ok());
    }

    #[test]
    fn a_connection_that_stayed_open_resets_the_counter() {
        let t0 = Instant::now();
        let mut b = Backoff::new(policy(3));
        for _ in 0..3 {
            b.on_failure(Failure::ConnectionRefused, t0);
        }
        // Open, but only briefly: the count continues, and the cap is hit.
        b.on_open(t0);
        assert_eq!(
            b.on_failure(Failure::Closed(1006), t0 + ms(4_999)),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        let mut b = Backoff::new(policy(3));
        for _ in 0..3 {
            b.on_failure(Failure::ConnectionRefused, t0);
        }
        b.on_open(t0);
        let d = b.on_failure(Failure::Closed(1001), t0 + ms(5_000));
        assert!(matches!(d, Decision::Retry { attempt: 1, delay } if delay <= ms(100)), "{d:?}");
        // The open time counts once: a later failure without a new open does not reset again.
        b.on_failure(Failure::ConnectionRefused, t0 + ms(20_000));
        assert_eq!(b.attempts(), 2);
    }

    #[test]
    fn classification_table() {
        let retry = [
            Failure::ConnectionRefused,
            Failure::Timeout,
            Failure::Dns,
            Failure::Network,
            Failure::Tls,
            Failure::HttpStatus(500),
            Failure::HttpStatus(502),
            Failure::HttpStatus(503),
            Failure::HttpStatus(599),
            Failure::HttpStatus(408),
            Failure::HttpStatus(429),
            Failure::Closed(1001),
            Failure::Closed(1006),
            Failure::Closed(1011),
            Failure::Closed(1012),
            Failure::Closed(1013),
            Failure::Closed(1014),
        ];
        let stop = [
            Failure::ClosedByHost,
            Failure::TlsVerification,
            Failure::BadHandshake,
            Failure::HttpStatus(400),
            Failure::HttpStatus(401),
            Failure::HttpStatus(403),
            Failure::HttpStatus(404),
            Failure::HttpStatus(426),
            Failure::HttpStatus(301),
            Failure::HttpStatus(200),
            Failure::Closed(1000),
            Failure::Closed(1002),
            Failure::Closed(1005),
            Failure::Closed(1008),
            Failure::Closed(1009),
            Failure::Closed(1015),
            Failure::Closed(4000),
        ];
        let now = Instant::now();
        for f in retry {
            assert!(f.is_retryable(), "{f}");
            assert!(matches!(Backoff::new(policy(0)).on_failure(f, now), Decision::Retry { .. }), "{f}");
        }
        for f in stop {
            assert!(!f.is_retryable(), "{f}");
            assert_eq!(Backoff::new(policy(0)).on_failure(f, now), Decision::GiveUp(GiveUpReason::NotRetryable), "{f}");
        }
        // Stable numbers and texts.
        let codes: Vec<u32> = [
            Failure::ClosedByHost,
            Failure::ConnectionRefused,
            Failure::Timeout,
            Failure::Dns,
            Failure::Network,
            Failure::TlsVerification,
            Failure::Tls,
            Failure::HttpStatus(503),
            Failure::BadHandshake,
            Failure::Closed(1006),
        ]
        .iter()
        .map(Failure::code)
        .collect();
        assert_eq!(codes, (1..=10).collect::<Vec<_>>());
        assert_eq!((Failure::HttpStatus(503).detail(), Failure::Closed(1006).detail(), Failure::Dns.detail()), (503, 1006, 0));
        assert_eq!(Failure::HttpStatus(503).to_string(), "server refused the upgrade with HTTP 503");
        assert_eq!(Failure::ConnectionRefused.to_string(), "connection refused");
    }

    #[test]
    fn handshake_and_resolver_errors_are_classified() {
        use crate::protocol::client_handshake::HandshakeError;
        let status = HandshakeError::Status { status: 503, reason: "Busy".into(), headers: vec![] };
        assert_eq!(Failure::from(&status), Failure::HttpStatus(503));
        assert_eq!(Failure::from(&HandshakeError::Invalid("x".into())), Failure::BadHandshake);
        assert_eq!(Failure::from(&super::super::resolve::ResolveError::QueueFull), Failure::Dns);
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind};
        assert_eq!(Failure::from_io(&Error::from(ErrorKind::ConnectionRefused)), Failure::ConnectionRefused);
        assert_eq!(Failure::from_io(&Error::from(ErrorKind::TimedOut)), Failure::Timeout);
        assert_eq!(Failure::from_io(&Error::from(ErrorKind::ConnectionReset)), Failure::Network);
        // The way transport.rs wraps rustls errors.
        let bad_cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(Failure::from_io(&Error::new(ErrorKind::InvalidData, bad_cert)), Failure::TlsVerification);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(Failure::from_io(&Error::new(ErrorKind::InvalidData, alert)), Failure::Tls);
    }
}
