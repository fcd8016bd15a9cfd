//! Server configuration: every limit with its default, settable by name so the C, Python and
//! Node hosts share one parser (`wsembed_config_set`, `Server(**limits)`, `new WebSocketServer({...})`).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
pub use crate::protocol::extensions::CompressionMode;
use crate::protocol::extensions::DeflateConfig;

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
    /// Cap on what one connection's send queue may cost (default 64 MiB; payload plus 64
    /// bytes per queued entry).
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
    /// What events waiting for the host may cost (default 64 MiB; payload plus 64 bytes
    /// each). Past it the loop stops reading from sockets (TCP pushes back on the clients)
    /// until the host catches up, so a slow host cannot be made to buffer without bound.
    pub max_pending_event_bytes: usize,
    /// Join the servers on this Redis (`redis://[user:password@]host:port[/db]`; empty: none).
    pub redis_url: String,
    /// Prefix of the Redis channels (default `wsembed`).
    pub redis_prefix: String,
    /// permessage-deflate (default off).
    pub compression: CompressionMode,
    /// Window of the server's compressors, 9-15 (default 15).
    pub compression_window_bits: u8,
    /// zlib memLevel of the server's compressors, 1-9 (default 8).
    pub compression_mem_level: u8,
    /// Messages shorter than this go uncompressed (default 128 bytes).
    pub compression_threshold: usize,
    /// Event loops, one thread each, on one port (default 1).
    pub threads: usize,
    /// Run the loop on a background thread (default true); false: host-driven mode.
    pub loop_thread: bool,
    /// Listen on `host:port` (default true); false: a client-only engine.
    pub listen: bool,
    /// Report `Event::Ping`/`Event::Pong` (default false).
    pub ping_events: bool,
    /// Cap on what every send queue together may cost (default: a quarter of physical memory).
    pub max_total_buffered_bytes: usize,
    /// Cap on what host commands waiting for the loop may cost (default 64 MiB); past it host
    /// calls fail with `WouldBlock`.
    pub max_queued_command_bytes: usize,
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
            ping_events: false,
            listen: true,
            loop_thread: true,
            threads: 1,
            compression: CompressionMode::Off,
            compression_window_bits: 15,
            compression_mem_level: 8,
            compression_threshold: 128,
            redis_url: String::new(),
            redis_prefix: "wsembed".to_owned(),
            max_total_buffered_bytes: default_total_buffered(),
            max_queued_command_bytes: 64 << 20,
        }
    }
}

/// Most connection slots one loop can have (the engine's table is sized by it).
pub const MAX_CONNECTIONS: usize = 1024 * 1024;

/// What an option's value is, for hosts that convert their own types to option text.
pub struct OptionSpec {
    pub name: &'static str,
    /// "bool", "integer", "bytes", "milliseconds", "count", "text", "list", "choice", "path" or "pem".
    pub kind: &'static str,
    /// The default, in the text form `set` takes ("" for none).
    pub default: &'static str,
    pub doc: &'static str,
    set: fn(&mut ServerConfig, &str) -> Result<(), String>,
}

macro_rules! options_table {
    ($($name:literal, $kind:literal, $default:literal, $doc:literal, $set:expr;)*) => {
        /// Every option [`ServerConfig::set`] accepts, in the order documented.
        pub static OPTIONS: &[OptionSpec] = &[$(OptionSpec { name: $name, kind: $kind, default: $default, doc: $doc, set: $set }),*];
    };
}
include!("options.rs");

fn bad(what: &str) -> String {
    format!("expected {what}")
}
fn nonempty(v: &str) -> Result<&str, String> {
    if v.is_empty() {
        Err(bad("a non-empty value"))
    } else {
        Ok(v)
    }
}
fn number(v: &str) -> Result<u64, String> {
    v.parse::<u64>().map_err(|_| bad("a non-negative integer"))
}
fn positive(v: &str) -> Result<u64, String> {
    match number(v)? {
        0 => Err(bad("a positive integer")),
        n => Ok(n),
    }
}
fn size(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| bad("a smaller number"))
}
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad("0/1 or false/true")),
    }
}
fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}
fn read_pem(path: &str) -> Result<Vec<u8>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))
}

/// A quarter of physical memory (1 GiB when it cannot be read).
pub fn default_total_buffered() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    if pages > 0 && page > 0 {
        (pages as u64 * page as u64 / 4).min(usize::MAX as u64) as usize
    } else {
        1 << 30
    }
}

impl ServerConfig {
    /// The permessage-deflate settings.
    pub fn deflate(&self) -> DeflateConfig {
        DeflateConfig {
            mode: self.compression,
            window_bits: self.compression_window_bits,
            mem_level: self.compression_mem_level,
            level: 6,
            threshold: self.compression_threshold,
        }
    }

    /// Sets one option by name from its text form (numbers in decimal). This is the one parser
    /// behind every host's configuration; the names are [`OPTIONS`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let value = value.trim();
        let Some(option) = OPTIONS.iter().find(|o| o.name == name) else {
            let known: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
            return Err(Error::InvalidArgument(format!("unknown option {name:?}; known options: {}", known.join(", "))));
        };
        (option.set)(self, value).map_err(|msg| Error::InvalidArgument(format!("option {name}: {msg} (got {value:?})")))
    }

    /// Sets one part of the TLS pair; an empty part clears it (no TLS once both are empty).
    fn set_tls_part(&mut self, is_cert: bool, pem: Vec<u8>) {
        let tls = self.tls.get_or_insert_with(|| TlsPem { cert_chain: Vec::new(), private_key: Vec::new() });
        if is_cert {
            tls.cert_chain = pem;
        } else {
            tls.private_key = pem;
        }
        if tls.cert_chain.is_empty() && tls.private_key.is_empty() {
            self.tls = None;
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
        let err = c.set("port", "x").unwrap_err().to_string();
        assert!(err.contains("option port") && err.contains("\"x\""), "{err}");
    }

    /// The table's default texts are the defaults: setting each one changes nothing.
    #[test]
    fn table_defaults_are_the_defaults() {
        let fresh = ServerConfig::default();
        for option in OPTIONS {
            let mut c = ServerConfig::default();
            c.set(option.name, option.default).unwrap_or_else(|e| panic!("{}: {e}", option.name));
            assert_eq!(format!("{c:?}"), format!("{fresh:?}"), "default of {}", option.name);
        }
        let mut names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OPTIONS.len(), "an option is listed twice");
    }
}
