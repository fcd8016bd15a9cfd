//! Errors of the Rust API; each maps to one stable numeric code of the C ABI.

use std::fmt;

/// Everything that can go wrong in a call from the host.
#[derive(Debug)]
pub enum Error {
    /// A required pointer was NULL (C ABI only).
    NullArgument(&'static str),
    /// An argument or option value is not acceptable; the text says which and why.
    InvalidArgument(String),
    /// The connection id is not (or no longer) an open connection of this server.
    NoSuchConnection,
    /// The server has been stopped.
    Stopped,
    /// The connection's send queue is full (see `max_buffered_bytes`); wait for a `Drain` event.
    WouldBlock,
    /// An operating-system error, e.g. binding the port.
    Io(std::io::Error),
    /// Text to send is not valid UTF-8.
    InvalidUtf8,
    /// A client connection is not open (yet, or between reconnects); sends wait only with
    /// `queue_while_connecting`.
    NotOpen,
    /// A Rust panic was caught at the C boundary.
    Panic(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NullArgument(name) => write!(f, "argument {name} is NULL"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::NoSuchConnection => f.write_str("no such connection (closed, or never existed)"),
            Error::Stopped => f.write_str("the server is stopped"),
            Error::WouldBlock => f.write_str("the connection's send buffer is full"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            Error::Panic(msg) => write!(f, "internal panic: {msg}"),
            Error::NotOpen => f.write_str("the client connection is not open (connecting or reconnecting)"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
