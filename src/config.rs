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
];

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
            "subprotocols" => {
                self.subprotocols =
                    value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
            }
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
