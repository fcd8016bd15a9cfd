//! Events the engine reports to the host, in order per connection:
//! `Open`, then any number of `Message` (and `Drain`), then exactly one `Close`.

use std::net::SocketAddr;

/// A connection id: slot in the low 32 bits, generation in the high 32 bits, so an id is never
/// reused during a server's life and a stale id never reaches another client. Never 0.
pub type ConnId = u64;

/// Why a client connection attempt failed (or an open client connection ended and is
/// dialed again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFailure {
    /// Stable number: 1 closed by the host, 2 connection refused, 3 timeout, 4 name not
    /// resolved, 5 other network error, 6 TLS certificate not trusted, 7 other TLS error,
    /// 8 HTTP status instead of 101, 9 invalid 101 response, 10 closed with a code.
    pub code: u32,
    /// The HTTP status (code 8) or close code (code 10); 0 otherwise.
    pub status: u16,
    /// What happened, for people.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid upgrade request awaits the host's decision (only with `approve_handshakes`):
    /// answer with `ServerHandle::accept` or `ServerHandle::reject`. Cookies, Authorization and
    /// Origin are among the headers. `Open` follows an accept.
    Handshake {
        conn: ConnId,
        peer: SocketAddr,
        path: String,
        headers: Vec<(String, String)>,
        /// Subprotocols the client offered, in its order.
        protocols: Vec<String>,
    },
    /// The WebSocket handshake completed.
    Open {
        conn: ConnId,
        peer: SocketAddr,
        /// Request target: path with query string, e.g. `/chat?room=1`.
        path: String,
        /// The subprotocol the server chose, if any.
        protocol: Option<String>,
        /// The negotiated extension as on the wire (`permessage-deflate; ...`), if any.
        extensions: Option<String>,
        /// The request headers, in the order received.
        headers: Vec<(String, String)>,
    },
    /// A complete (reassembled) message; text is valid UTF-8.
    Message { conn: ConnId, data: Vec<u8>, is_text: bool },
    /// The connection ended. `clean`: the close handshake completed. `code` is the peer's code
    /// when the peer closed (1005 when it gave none), the server's own when it closed (host
    /// request, protocol violation 1002/1007/1009, stop 1001), and 1006 when TCP dropped.
    Close { conn: ConnId, code: u16, reason: String, clean: bool },
    /// The connection's send queue fell below half of `max_buffered_bytes` after a send was
    /// refused with `WouldBlock`.
    Drain { conn: ConnId },
    /// A client connection (`ServerHandle::connect`) failed or lost its server and dials
    /// again after `delay` (attempt `attempt` since it last stayed open). Same id throughout.
    Reconnecting { conn: ConnId, attempt: u32, delay: std::time::Duration, failure: ClientFailure },
    /// A client connection failed for good (not retryable, attempts exhausted, or stopped
    /// before it opened): its last event. A client with reconnect on always ends with it
    /// (after its `Close`, when an open connection ends for good); one without ends with
    /// `Close` once it has opened.
    Failed { conn: ConnId, failure: ClientFailure },
    /// The Redis bridge (option `redis_url`) connected: publishes reach the other servers.
    /// Not about a connection (`conn()` is 0).
    BridgeUp,
    /// The Redis bridge lost Redis (or could not reach it at start): local delivery goes on,
    /// publishes to other servers are dropped and counted until `BridgeUp`.
    BridgeDown { reason: String },
    /// The peer sent a ping (already answered with a pong); only with `ping_events`.
    Ping { conn: ConnId, data: Vec<u8> },
    /// The peer sent a pong (an answer to our ping, or unsolicited); only with `ping_events`.
    Pong { conn: ConnId, data: Vec<u8> },
}

impl Event {
    pub fn conn(&self) -> ConnId {
        match self {
            Event::Handshake { conn, .. }
            | Event::Open { conn, .. }
            | Event::Message { conn, .. }
            | Event::Close { conn, .. }
            | Event::Drain { conn }
            | Event::Ping { conn, .. }
            | Event::Pong { conn, .. }
            | Event::Reconnecting { conn, .. }
            | Event::Failed { conn, .. } => *conn,
            Event::BridgeUp | Event::BridgeDown { .. } => 0,
        }
    }
}
