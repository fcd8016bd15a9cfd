//! wsembed: an embeddable WebSocket server engine.
//!
//! A [`Server`] runs a `mio` event loop on its own thread that owns the listening socket,
//! every connection, the RFC 6455 protocol and the broadcast set (all connections and named
//! topics). The host polls [`Event`]s in batches and sends through a cloneable
//! [`ServerHandle`] from any thread. The same engine is exported to C (`include/wsembed.h`),
//! Python and Node.
//!
//! ```no_run
//! use wsembed::{Event, MessageKind, Server, ServerConfig};
//! let server = Server::start(ServerConfig { port: 9001, ..Default::default() })?;
//! let handle = server.handle();
//! loop {
//!     for event in server.poll(None)? {
//!         if let Event::Message { conn, data, is_text } = event {
//!             let kind = if is_text { MessageKind::Text } else { MessageKind::Binary };
//!             handle.send(conn, kind, &data)?;
//!         }
//!     }
//! }
//! # Ok::<(), wsembed::Error>(())
//! ```

pub mod bridge;
pub mod client;
pub mod config;
mod engine;
pub mod error;
pub mod event;
pub mod ffi;
mod http;
pub mod protocol;
mod server;
pub mod stats;

pub use config::{BackpressurePolicy, RateLimitPolicy, ServerConfig, TlsPem};
pub use error::Error;
pub use event::{ConnId, Event};
pub use protocol::encoder::MessageKind;
pub use server::{Server, ServerHandle};
pub use stats::Stats;
