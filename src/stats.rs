//! Server counters, readable from any thread at any time (`ServerHandle::stats`,
//! `wsembed_server_stats`).

/// A snapshot of a server's counters (all since start). In C: `wsembed_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// WebSocket connections open now.
    pub open_connections: u64,
    /// Upgrades completed (101 sent).
    pub handshakes_accepted: u64,
    /// Upgrade attempts refused: bad requests, 403 origin, 429 per-IP limits, 503 (full or
    /// unanswered approval), host rejections, handshake timeouts.
    pub handshakes_rejected: u64,
    pub messages_in: u64,
    /// Messages queued for sending (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// Bytes read from sockets (after TLS decryption) and written to them (before encryption).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Broadcast/publish deliveries skipped because the recipient's queue was full.
    pub dropped_deliveries: u64,
    /// Messages dropped by the rate limit (policy "drop").
    pub rate_limited: u64,
    /// Closes with a completed close handshake (either side started it), except policy closes.
    pub closes_clean: u64,
    /// Closes because the peer broke the protocol (1002, 1007, 1009).
    pub closes_protocol_error: u64,
    /// Closes because the peer stopped answering (ping timeout, close timeout).
    pub closes_timeout: u64,
    /// TCP connections lost without a close handshake (1006).
    pub closes_dropped: u64,
    /// Closes for policy: rate limit or send buffer full (1008/1013), clean or not.
    pub closes_policy: u64,
    /// Host calls refused with WOULD_BLOCK because the commands waiting for the loop were
    /// over `max_queued_command_bytes` (a host outrunning the loop).
    pub dropped_commands: u64,
    /// Gauge: what every connection's send queue costs now (payload plus bookkeeping),
    /// compared against `max_total_buffered_bytes`.
    pub queued_bytes: u64,
    /// Gauge: what the host commands waiting for the loop cost now.
    pub queued_command_bytes: u64,
    /// Redis bridge (option `redis_url`): messages published to Redis.
    pub bridge_published: u64,
    /// Messages received from other servers through Redis (this server's own echoes excluded).
    pub bridge_received: u64,
    /// Messages the bridge dropped: publishes while Redis was down or its queue full, broken
    /// envelopes, and remote messages the loop had no room for.
    pub bridge_dropped: u64,
    /// Times the bridge reconnected to Redis after losing it.
    pub bridge_reconnects: u64,
}
