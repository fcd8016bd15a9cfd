//! Client connections, the parts that need no socket: URLs, the opening request, the
//! reconnection policy, name resolution off the loop thread and the TLS client configuration.
//! The handshake and frame codecs for the client role live in [`crate::protocol`]
//! (`client_handshake`, `client_encoder`, and `decoder::Decoder::client`).

pub mod options;
pub mod reconnect;
pub mod request;
pub mod resolve;
pub mod tls;
pub mod url;

pub use options::{ClientOptions, CLIENT_OPTIONS};
pub use reconnect::{Backoff, Decision, Failure, GiveUpReason, ReconnectPolicy};
pub use request::handshake_request;
pub use resolve::{Lookup, ResolveError, Resolved, Resolver};
pub use tls::{client_config, client_connection, is_verification_failure, ClientTlsOptions};
pub use url::{Host, UrlError, WsUrl};
