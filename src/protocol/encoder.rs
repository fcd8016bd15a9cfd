//! Server-to-client frames. A frame is encoded once into an immutable [`Bytes`] that any
//! number of connections can queue (broadcast and publish share one allocation).

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

/// Largest close reason that fits a control frame (125 - 2 bytes of code).
pub const MAX_CLOSE_REASON: usize = 123;

fn encode(opcode: OpCode, parts: &[&[u8]]) -> Bytes {
    encode_with(FrameHeader { opcode, ..FrameHeader::default() }, parts)
}

fn encode_with(header: FrameHeader, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(header.len(len as u64) + len);
    header.format(len as u64, &mut out).expect("writing to a Vec cannot fail");
    for part in parts {
        out.extend_from_slice(part);
    }
    Bytes::from(out)
}

/// One unfragmented data frame carrying `payload`.
pub fn message_frame(kind: MessageKind, payload: &[u8]) -> Bytes {
    let head = message_header(kind, payload.len());
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// The header of an unfragmented server data frame (2 to 10 bytes), for a frame written
/// straight into a send queue after it (see `OutQueue::push_parts`). FIN set, no RSV bits,
/// no mask; the length in the shortest form (RFC 6455 5.2).
pub fn message_header(kind: MessageKind, len: usize) -> FrameHead {
    let mut bytes = [0u8; 10];
    bytes[0] = 0x80 | u8::from(data_opcode(kind));
    let len8 = match len {
        0..=125 => {
            bytes[1] = len as u8;
            2
        }
        126..=0xffff => {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    FrameHead { bytes, len: len8 }
}

/// An encoded frame header, on the stack.
pub struct FrameHead {
    bytes: [u8; 10],
    len: u8,
}

impl std::ops::Deref for FrameHead {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

fn data_opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Data(Data::Text),
        MessageKind::Binary => OpCode::Data(Data::Binary),
    }
}

/// One unfragmented server frame with RSV1 set: `payload` is a permessage-deflate compressed
/// message (from `deflate::Compressor::compress`).
pub fn message_frame_compressed(kind: MessageKind, payload: &[u8]) -> Bytes {
    encode_with(FrameHeader { opcode: data_opcode(kind), rsv1: true, ..FrameHeader::default() }, &[payload])
}

/// One unfragmented, masked client-role data frame; `compressed` sets RSV1 (permessage-deflate).
pub fn masked_message_frame(kind: MessageKind, payload: &[u8], compressed: bool, mask: [u8; 4]) -> Bytes {
    let header = FrameHeader { opcode: data_opcode(kind), rsv1: compressed, mask: Some(mask), ..FrameHeader::default() };
    let mut out = Vec::with_capacity(header.len(payload.len() as u64) + payload.len());
    header.format(payload.len() as u64, &mut out).expect("writing to a Vec cannot fail");
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    Bytes::from(out)
}

pub fn ping_frame(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Ping), &[payload])
}

pub fn pong_frame(payload: &[u8]) -> Bytes {
    encode(OpCode::Control(Control::Pong), &[payload])
}

/// A close frame; `code == None` sends an empty close payload. The reason is cut at a char
/// boundary to fit a control frame.
pub fn close_frame(code: Option<u16>, reason: &str) -> Bytes {
    match code {
        None => encode(OpCode::Control(Control::Close), &[]),
        Some(code) => {
            let reason = truncate_utf8(reason, MAX_CLOSE_REASON);
            encode(OpCode::Control(Control::Close), &[&code.to_be_bytes(), reason.as_bytes()])
        }
    }
}

/// A masked client-to-server frame whose first header byte (FIN, RSV bits, opcode) is taken
/// as given, so that tests, fuzzers and tools can also build frames a server must refuse.
pub fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_headers_match_tungstenites_encoding() {
        for len in [0, 1, 125, 126, 127, 300, 0xffff, 0x10000, 1 << 24] {
            for (kind, opcode) in [(MessageKind::Text, Data::Text), (MessageKind::Binary, Data::Binary)] {
                let mut expected = Vec::new();
                FrameHeader { opcode: OpCode::Data(opcode), ..FrameHeader::default() }.format(len as u64, &mut expected).unwrap();
                assert_eq!(&*message_header(kind, len), &expected[..], "{kind:?} {len}");
            }
        }
    }

    #[test]
    fn frames_are_unmasked_and_length_encoded() {
        assert_eq!(&message_frame(MessageKind::Text, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let big = message_frame(MessageKind::Binary, &[0u8; 300]);
        assert_eq!(&big[..4], &[0x82, 126, 0x01, 0x2c]);
        assert_eq!(big.len(), 304);
        assert_eq!(&close_frame(Some(1001), "bye")[..], &[0x88, 5, 0x03, 0xe9, b'b', b'y', b'e']);
        assert_eq!(close_frame(Some(1000), &"é".repeat(100)).len(), 2 + 2 + 122);
    }

    #[test]
    fn compressed_frames_set_rsv1() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        // RFC 7692 7.2.3.1: the unfragmented compressed "Hello".
        let frame = message_frame_compressed(MessageKind::Text, &hello);
        assert_eq!(&frame[..2], &[0xc1, 0x07]);
        assert_eq!(&frame[2..], &hello);
        assert_eq!(message_frame_compressed(MessageKind::Binary, &[0; 200])[..4], [0xc2, 126, 0, 200]);
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        for compressed in [false, true] {
            let first = if compressed { 0xc1 } else { 0x81 };
            assert_eq!(
                &masked_message_frame(MessageKind::Text, &hello, compressed, mask)[..],
                &client_frame(first, &hello, mask)[..]
            );
        }
        let big = masked_message_frame(MessageKind::Binary, &[7; 70_000], true, mask);
        assert_eq!(&big[..], &client_frame(0xc2, &[7; 70_000], mask)[..]);
    }
}
