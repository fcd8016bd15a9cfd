//! Server configuration: every limit with its default, settable by name so the C, Python and
//! Node hosts share one parser (`wsembed_config_set`, `Server(**limits)`, `new WebSocketServer({...})`).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// What to do when a connection's send queue is over [`ServerConfig::max_buffered_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackpressurePolicy {
    /// Direct sends fail with `WouldBlock`; broadcast/publish skip that recipient (counted as a drop).
    /// A `Drain` event tells the host when the queue fell below half the cap.
    Block,
    /// Close the slow client with 1008 (policy violation).
    Close,
}

/// What happens to a message over a connection's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPolicy {
    /// Close the connection with 1008 (policy violation).
    Close,
    /// Drop the message (counted in `Stats::rate_limited`).
    Drop,
}

/// Certificate chain and private key for wss://, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPem {
    pub cert_chain: Vec<u8>,
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsPem {{ cert_chain: {} bytes, private_key: (hidden) }}", self.cert_chain.len())
    }
}

/// Configuration of one server. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interface to listen on (default `127.0.0.1`; `0.0.0.0` for all).
    pub host: String,
    /// TCP port; 0 picks any free port (read it back with `Server::local_addr`).
    pub port: u16,
    /// Largest reassembled message accepted, in bytes (default 16 MiB); larger: close 1009.
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes (default 16 MiB); larger: close 1009.
    pub max_frame_size: usize,
    /// Most simultaneous TCP connections, including ones still in the handshake (default 100000);
    /// more are answered `503` and closed.
    pub max_connections: usize,
    /// A client must complete its upgrade request within this time (default 10 s).
    pub handshake_timeout: Duration,
    /// Largest HTTP request head (default 8 KiB); larger: `431`.
    pub max_header_bytes: usize,
    /// Send a ping after this long without traffic from the peer (default 30 s; zero disables).
    pub ping_interval: Duration,
    /// Close (reported as 1006, "ping timeout") when a ping gets no answer this long (default 20 s).
    pub pong_timeout: Duration,
    /// How long a closing handshake may take before the TCP connection is dropped (default 5 s).
    pub close_timeout: Duration,
    /// Cap on bytes queued for one connection (default 64 MiB).
    pub max_buffered_bytes: usize,
    /// What happens past `max_buffered_bytes` (default `Block`).
    pub backpressure: BackpressurePolicy,
    /// Serve GET/HEAD of plain HTTP requests from this directory (default: none, answer 426).
    pub static_dir: Option<PathBuf>,
    /// Largest file served from `static_dir` (default 64 MiB).
    pub max_static_file_bytes: u64,
    /// Subprotocols the server speaks, most preferred first; one offered by the client is chosen.
    pub subprotocols: Vec<String>,
    /// Close code for `BackpressurePolicy::Close`: 1008 (default) or 1013 (try again later).
    pub backpressure_close_code: u16,
    /// Browser origins allowed to connect (exact match of the `Origin` header, e.g.
    /// `https://example.com`); empty allows any. Requests without `Origin` (non-browser
    /// clients) are allowed. Others get `403`.
    pub allowed_origins: Vec<String>,
    /// Messages per second one connection may send (token bucket, burst of one second); 0 = no limit.
    pub max_messages_per_sec: u32,
    /// Bytes per second one connection may send (token bucket, burst of one second); 0 = no limit.
    pub max_bytes_per_sec: u64,
    /// What to do with a message over the rate limits (default `Close`, with 1008).
    pub rate_limit_policy: RateLimitPolicy,
    /// Simultaneous connections from one IP address; more get `429`. 0 = no limit.
    pub max_connections_per_ip: u32,
    /// New connections per second from one IP address (burst of one second); more get `429`. 0 = no limit.
    pub max_handshakes_per_ip_per_sec: u32,
    /// Report each valid upgrade request as `Event::Handshake` and wait for the host to
    /// accept or reject it (default false).
    pub approve_handshakes: bool,
    /// A handshake the host has not answered in this time is rejected with `503` (default 10 s).
    pub approval_timeout: Duration,
    /// Serve wss:// with this certificate chain and key (TLS 1.2 and 1.3 only).
    pub tls: Option<TlsPem>,
    /// Message bytes waiting for the host to poll (default 64 MiB). Past it the loop stops
    /// reading from sockets (TCP pushes back on the clients) until the host catches up, so a
    /// slow host cannot be made to buffer without bound.
    pub max_pending_event_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            max_connections: 100_000,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 8 << 10,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            max_buffered_bytes: 64 << 20,
            backpressure: BackpressurePolicy::Block,
            static_dir: None,
            max_static_file_bytes: 64 << 20,
            subprotocols: Vec::new(),
            backpressure_close_code: 1008,
            allowed_origins: Vec::new(),
            max_messages_per_sec: 0,
            max_bytes_per_sec: 0,
            rate_limit_policy: RateLimitPolicy::Close,
            max_connections_per_ip: 0,
            max_handshakes_per_ip_per_sec: 0,
            approve_handshakes: false,
            approval_timeout: Duration::from_secs(10),
            tls: None,
            max_pending_event_bytes: 64 << 20,
        }
    }
}

/// The option names accepted by [`ServerConfig::set`], with the kind of value each takes.
pub const OPTION_NAMES: &[(&str, &str)] = &[
    ("host", "string"),
    ("port", "integer 0-65535"),
    ("max_message_size", "bytes"),
    ("max_frame_size", "bytes"),
    ("max_connections", "count"),
    ("handshake_timeout_ms", "milliseconds"),
    ("max_header_bytes", "bytes"),
    ("ping_interval_ms", "milliseconds, 0 disables"),
    ("pong_timeout_ms", "milliseconds"),
    ("close_timeout_ms", "milliseconds"),
    ("max_buffered_bytes", "bytes"),
    ("backpressure", "\"block\" or \"close\""),
    ("static_dir", "directory path, empty for none"),
    ("max_static_file_bytes", "bytes"),
    ("subprotocols", "comma-separated list, most preferred first"),
    ("backpressure_close_code", "1008 or 1013"),
    ("allowed_origins", "comma-separated list of origins, empty for any"),
    ("max_messages_per_sec", "count, 0 for no limit"),
    ("max_bytes_per_sec", "bytes, 0 for no limit"),
    ("rate_limit_policy", "\"close\" or \"drop\""),
    ("max_connections_per_ip", "count, 0 for no limit"),
    ("max_handshakes_per_ip_per_sec", "count, 0 for no limit"),
    ("approve_handshakes", "0/1 or false/true"),
    ("approval_timeout_ms", "milliseconds"),
    ("tls_cert_file", "path of a PEM certificate chain"),
    ("tls_key_file", "path of a PEM private key"),
    ("tls_cert_pem", "PEM certificate chain text"),
    ("tls_key_pem", "PEM private key text"),
    ("max_pending_event_bytes", "bytes"),
];

fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

impl ServerConfig {
    /// Sets one option by name from its text form (numbers in decimal). This is the one parser
    /// behind every host's configuration.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let value = value.trim();
        let bad = |what: &str| Error::InvalidArgument(format!("option {name}: expected {what}, got {value:?}"));
        let num = || value.parse::<u64>().map_err(|_| bad("a non-negative integer"));
        let positive = || match num()? {
            0 => Err(bad("a positive integer")),
            n => Ok(n),
        };
        let ms = |n: u64| Duration::from_millis(n);
        let size = |n: u64| usize::try_from(n).map_err(|_| bad("a smaller number"));
        match name {
            "host" => {
                if value.is_empty() {
                    return Err(bad("a host name or address"));
                }
                self.host = value.to_owned()
            }
            "port" => self.port = u16::try_from(num()?).map_err(|_| bad("a port 0-65535"))?,
            "max_message_size" => self.max_message_size = size(positive()?)?,
            "max_frame_size" => self.max_frame_size = size(positive()?)?,
            "max_connections" => self.max_connections = size(positive()?)?.min(crate::engine::slots::MAX_SLOTS),
            "handshake_timeout_ms" => self.handshake_timeout = ms(positive()?),
            "max_header_bytes" => self.max_header_bytes = size(positive()?)?,
            "ping_interval_ms" => self.ping_interval = ms(num()?),
            "pong_timeout_ms" => self.pong_timeout = ms(positive()?),
            "close_timeout_ms" => self.close_timeout = ms(positive()?),
            "max_buffered_bytes" => self.max_buffered_bytes = size(positive()?)?,
            "backpressure" => {
                self.backpressure = match value {
                    "block" => BackpressurePolicy::Block,
                    "close" => BackpressurePolicy::Close,
                    _ => return Err(bad("\"block\" or \"close\"")),
                }
            }
            "static_dir" => self.static_dir = (!value.is_empty()).then(|| PathBuf::from(value)),
            "max_static_file_bytes" => self.max_static_file_bytes = num()?,
            "subprotocols" => self.subprotocols = comma_list(value),
            "backpressure_close_code" => {
                self.backpressure_close_code = match num()? {
                    1008 => 1008,
                    1013 => 1013,
                    _ => return Err(bad("1008 or 1013")),
                }
            }
            "allowed_origins" => self.allowed_origins = comma_list(value),
            "max_messages_per_sec" => self.max_messages_per_sec = u32::try_from(num()?).map_err(|_| bad("a smaller number"))?,
            "max_bytes_per_sec" => self.max_bytes_per_sec = num()?,
            "rate_limit_policy" => {
                self.rate_limit_policy = match value {
                    "close" => RateLimitPolicy::Close,
                    "drop" => RateLimitPolicy::Drop,
                    _ => return Err(bad("\"close\" or \"drop\"")),
                }
            }
            "max_connections_per_ip" => self.max_connections_per_ip = u32::try_from(num()?).map_err(|_| bad("a smaller number"))?,
            "max_handshakes_per_ip_per_sec" => {
                self.max_handshakes_per_ip_per_sec = u32::try_from(num()?).map_err(|_| bad("a smaller number"))?
            }
            "approve_handshakes" => {
                self.approve_handshakes = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("0/1 or false/true")),
                }
            }
            "approval_timeout_ms" => self.approval_timeout = ms(positive()?),
            "tls_cert_file" | "tls_key_file" => {
                let pem = std::fs::read(value).map_err(|e| Error::InvalidArgument(format!("option {name}: cannot read {value:?}: {e}")))?;
                self.set_tls_part(name == "tls_cert_file", pem);
            }
            "max_pending_event_bytes" => self.max_pending_event_bytes = size(positive()?)?,
            "tls_cert_pem" | "tls_key_pem" => self.set_tls_part(name == "tls_cert_pem", value.as_bytes().to_vec()),
            _ => {
                let known: Vec<&str> = OPTION_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(Error::InvalidArgument(format!(
                    "unknown option {name:?}; known options: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

impl ServerConfig {
    fn set_tls_part(&mut self, is_cert: bool, pem: Vec<u8>) {
        let tls = self.tls.get_or_insert_with(|| TlsPem { cert_chain: Vec::new(), private_key: Vec::new() });
        if is_cert {
            tls.cert_chain = pem;
        } else {
            tls.private_key = pem;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_reject() {
        let mut c = ServerConfig::default();
        c.set("port", "8080").unwrap();
        c.set("max_message_size", "1024").unwrap();
        c.set("subprotocols", "chat, json ,").unwrap();
        c.set("ping_interval_ms", "0").unwrap();
        assert_eq!((c.port, c.max_message_size), (8080, 1024));
        assert_eq!(c.subprotocols, vec!["chat", "json"]);
        assert!(c.ping_interval.is_zero());
        assert!(c.set("port", "70000").is_err());
        assert!(c.set("max_message_size", "0").is_err());
        assert!(c.set("max_message_size", "-1").is_err());
        let err = c.set("nope", "1").unwrap_err().to_string();
        assert!(err.contains("known options"), "{err}");
    }
}
