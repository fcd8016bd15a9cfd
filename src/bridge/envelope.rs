//! The binary envelope of every message the bridge puts on Redis.
//!
//! ```text
//! offset  size  field
//! 0       2     magic  b"we" (0x77 0x65)
//! 2       1     version 1
//! 3       1     flags: bit 0 = text (else binary); bits 1-7 reserved, must be 0
//! 4       8     node id of the origin server, u64 big-endian
//! 12      ..    payload (the WebSocket message, unframed)
//! ```
//!
//! The topic is not in the envelope: it is the Redis channel the envelope is published on.
//! Anything else found on a bridge channel (too short, wrong magic or version, reserved bits
//! set, a text payload that is not UTF-8) is rejected and counted as broken.

use std::fmt;

pub const MAGIC: [u8; 2] = *b"we";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 12;
const FLAG_TEXT: u8 = 0x01;

/// Encodes one envelope: header plus a copy of `payload`.
pub fn encode(node: u64, is_text: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(if is_text { FLAG_TEXT } else { 0 });
    out.extend_from_slice(&node.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A decoded envelope, borrowing the payload from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub node: u64,
    pub is_text: bool,
    pub payload: &'a [u8],
}

/// Why an envelope was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    TooShort,
    BadMagic,
    BadVersion(u8),
    ReservedFlags(u8),
    TextNotUtf8,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::TooShort => f.write_str("shorter than the envelope header"),
            Broken::BadMagic => f.write_str("wrong magic"),
            Broken::BadVersion(v) => write!(f, "unknown version {v}"),
            Broken::ReservedFlags(b) => write!(f, "reserved flag bits set ({b:#04x})"),
            Broken::TextNotUtf8 => f.write_str("text payload is not UTF-8"),
        }
    }
}

pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Broken> {
    if bytes.len() < HEADER_LEN {
        return Err(Broken::TooShort);
    }
    if bytes[0..2] != MAGIC {
        return Err(Broken::BadMagic);
    }
    if bytes[2] != VERSION {
        return Err(Broken::BadVersion(bytes[2]));
    }
    let flags = bytes[3];
    if flags & !FLAG_TEXT != 0 {
        return Err(Broken::ReservedFlags(flags));
    }
    let node = u64::from_be_bytes(bytes[4..12].try_into().expect("8 bytes"));
    let is_text = flags & FLAG_TEXT != 0;
    let payload = &bytes[HEADER_LEN..];
    if is_text && std::str::from_utf8(payload).is_err() {
        return Err(Broken::TextNotUtf8);
    }
    Ok(Envelope { node, is_text, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (is_text, payload) in
            [(true, &b"hello"[..]), (false, &[0u8, 255, 1][..]), (true, &b""[..])]
        {
            let bytes = encode(0x0102_0304_0506_0708, is_text, payload);
            assert_eq!(bytes.len(), HEADER_LEN + payload.len());
            let env = decode(&bytes).unwrap();
            assert_eq!(env, Envelope { node: 0x0102_0304_0506_0708, is_text, payload });
        }
    }

    #[test]
    fn layout_is_fixed() {
        let bytes = encode(0xAABB_CCDD_EEFF_0011, true, b"x");
        assert_eq!(bytes, [0x77, 0x65, 1, 1, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00, 0x11, b'x']);
    }

    #[test]
    fn broken_envelopes_are_rejected() {
        let good = encode(7, false, b"abc");
        assert_eq!(decode(&good[..HEADER_LEN - 1]), Err(Broken::TooShort));
        assert_eq!(decode(b""), Err(Broken::TooShort));
        let mut bad = good.clone();
        bad[0] = b'x';
        assert_eq!(decode(&bad), Err(Broken::BadMagic));
        let mut bad = good.clone();
        bad[2] = 2;
        assert_eq!(decode(&bad), Err(Broken::BadVersion(2)));
        let mut bad = good.clone();
        bad[3] = 0x02;
        assert_eq!(decode(&bad), Err(Broken::ReservedFlags(0x02)));
        let bad = encode(7, true, &[0xff, 0xfe]);
        assert_eq!(decode(&bad), Err(Broken::TextNotUtf8));
        // The same bytes as binary are fine.
        assert!(decode(&encode(7, false, &[0xff, 0xfe])).is_ok());
    }
}
