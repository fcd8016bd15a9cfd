//! Token buckets: per-connection message/byte rates and per-IP handshake rates.

use std::time::Instant;

/// Refills at `rate` tokens per second up to one second's worth (the burst).
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn full(rate: f64, now: Instant) -> Self {
        TokenBucket { tokens: rate, last: now }
    }

    /// Takes `cost` tokens if there are enough.
    pub fn take(&mut self, rate: f64, cost: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.last = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// True when the bucket would be full by `now` (nothing to remember any more).
    pub fn is_full(&self, rate: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * rate >= rate
    }
}

/// Rate limits of one connection (allocated only when limits are configured).
#[derive(Debug)]
pub struct ConnRate {
    pub messages: TokenBucket,
    pub bytes: TokenBucket,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(10.0, t0);
        assert!((0..10).all(|_| bucket.take(10.0, 1.0, t0)));
        assert!(!bucket.take(10.0, 1.0, t0));
        assert!(bucket.take(10.0, 1.0, t0 + Duration::from_millis(150)));
        assert!(bucket.is_full(10.0, t0 + Duration::from_secs(2)));
    }
}
