//! What a host can ask of one client connection, settable by name so the C, Python and Node
//! hosts share one parser (`wsembed_client_options_set`, keyword arguments, ws-style options).

use std::path::PathBuf;
use std::time::Duration;

use super::reconnect::ReconnectPolicy;
use crate::error::Error;

/// Options of [`crate::ServerHandle::connect`]. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Subprotocols to offer, most preferred first (`Sec-WebSocket-Protocol`).
    pub protocols: Vec<String>,
    /// Fail when the server picks none of `protocols` (default false, as browsers).
    pub require_protocol: bool,
    /// `Origin` header, if any.
    pub origin: Option<String>,
    /// Extra request headers, e.g. `Authorization`, `Cookie`.
    pub headers: Vec<(String, String)>,
    /// Time to resolve the name and connect TCP and TLS (default 10 s).
    pub connect_timeout: Duration,
    /// Time for the server's 101 once connected (default 10 s).
    pub handshake_timeout: Duration,
    /// Dial again after failures and drops (default off); see [`ReconnectPolicy`].
    pub reconnect: Option<ReconnectPolicy>,
    /// Trust this CA file (PEM) instead of the system roots, for wss://.
    pub ca_file: Option<PathBuf>,
    /// Trust this CA (PEM text) instead of the system roots, for wss://.
    pub ca_pem: Option<Vec<u8>>,
    /// Bytes of messages sent before the connection is open that wait for it (default 0:
    /// such sends fail with `NotOpen`). Over it, sends are dropped and counted.
    pub queue_while_connecting: usize,
    /// Offer permessage-deflate (default false).
    pub compression: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            protocols: Vec::new(),
            require_protocol: false,
            origin: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            reconnect: None,
            ca_file: None,
            ca_pem: None,
            queue_while_connecting: 0,
            compression: false,
        }
    }
}

/// Names accepted by [`ClientOptions::set`], with what each takes.
pub const CLIENT_OPTIONS: &[(&str, &str)] = &[
    ("protocols", "comma-separated subprotocols, most preferred first"),
    ("require_protocol", "0/1: fail when the server picks none"),
    ("origin", "Origin header value"),
    ("header", "one extra request header as \"Name: value\" (repeatable)"),
    ("connect_timeout_ms", "milliseconds to connect TCP and TLS (10000)"),
    ("handshake_timeout_ms", "milliseconds to get the 101 (10000)"),
    ("reconnect", "0/1: dial again after failures and drops (0)"),
    ("reconnect_min_delay_ms", "base of the full-jitter backoff (500); any reconnect_* turns reconnect on"),
    ("reconnect_max_delay_ms", "cap of the backoff (30000)"),
    ("reconnect_max_attempts", "retries in a row before giving up, 0 = unlimited (0)"),
    ("reconnect_reset_after_ms", "open this long and the attempt count starts over (10000)"),
    ("ca_file", "PEM file of the CAs to trust for wss:// (instead of the system's)"),
    ("ca_pem", "PEM text of the CAs to trust for wss://"),
    ("queue_while_connecting", "bytes of sends that wait for open (0: refused with NOT_OPEN)"),
    ("compression", "0/1: offer permessage-deflate (0)"),
];

impl ClientOptions {
    /// Sets one option by name from its text form (see [`CLIENT_OPTIONS`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let value = value.trim();
        let bad = |what: &str| Error::InvalidArgument(format!("client option {name}: expected {what} (got {value:?})"));
        let num = || value.parse::<u64>().map_err(|_| bad("a non-negative integer"));
        let flag = || match value {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(bad("0/1 or false/true")),
        };
        let ms = |n: u64| Duration::from_millis(n);
        match name {
            "protocols" => self.protocols = value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            "require_protocol" => self.require_protocol = flag()?,
            "origin" => self.origin = (!value.is_empty()).then(|| value.to_owned()),
            "header" => {
                let (n, v) = value.split_once(':').ok_or_else(|| bad("\"Name: value\""))?;
                self.headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
            "connect_timeout_ms" => self.connect_timeout = ms(num()?.max(1)),
            "handshake_timeout_ms" => self.handshake_timeout = ms(num()?.max(1)),
            "reconnect" => {
                if flag()? {
                    self.reconnect.get_or_insert_with(ReconnectPolicy::default);
                } else {
                    self.reconnect = None;
                }
            }
            "reconnect_min_delay_ms" | "reconnect_max_delay_ms" | "reconnect_max_attempts" | "reconnect_reset_after_ms" => {
                let n = num()?;
                // Setting any of these turns reconnecting on.
                let p = self.reconnect.get_or_insert_with(ReconnectPolicy::default);
                match name {
                    "reconnect_min_delay_ms" => p.min_delay = ms(n),
                    "reconnect_max_delay_ms" => p.max_delay = ms(n),
                    "reconnect_max_attempts" => p.max_attempts = u32::try_from(n).map_err(|_| bad("a smaller number"))?,
                    _ => p.reset_after = ms(n),
                }
                p.validate().map_err(|e| Error::InvalidArgument(format!("client option {name}: {e}")))?;
            }
            "ca_file" => self.ca_file = (!value.is_empty()).then(|| PathBuf::from(value)),
            "ca_pem" => self.ca_pem = (!value.is_empty()).then(|| value.as_bytes().to_vec()),
            "queue_while_connecting" => self.queue_while_connecting = usize::try_from(num()?).map_err(|_| bad("a smaller number"))?,
            "compression" => self.compression = flag()?,
            _ => {
                let known: Vec<&str> = CLIENT_OPTIONS.iter().map(|(n, _)| *n).collect();
                return Err(Error::InvalidArgument(format!("unknown client option {name:?}; known: {}", known.join(", "))));
            }
        }
        Ok(())
    }
}
