//! The WebSocket protocol without sockets: upgrade requests, frame decoding and encoding.
//! Everything here is driven by byte slices so it can be tested (and fuzzed) in isolation.

pub mod client_encoder;
pub mod client_handshake;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod extensions;
pub mod handshake;
pub mod utf8;
