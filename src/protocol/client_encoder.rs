//! Client-to-server frames: masked (RFC 6455 5.3) with a fresh key per frame. Unlike server
//! frames these cannot be shared between connections, so each is encoded for one send.
//!
//! Mask keys come from `rand`'s `ThreadRng` (ChaCha12, seeded and periodically reseeded from
//! the OS), a CSPRNG costing a few nanoseconds per key; one `getrandom` system call per frame
//! costs about a hundred times more (see `mask_key_cost` below, run with `--ignored`).

use bytes::Bytes;
use rand::Rng;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::encoder::{truncate_utf8, MessageKind, MAX_CLOSE_REASON};

/// A fresh, unpredictable masking key.
pub fn mask_key() -> [u8; 4] {
    rand::rng().next_u32().to_ne_bytes()
}

/// One masked frame with the given header bits, its payload the concatenation of `parts`.
/// `rsv1` marks a compressed message (permessage-deflate); `is_final == false` starts or
/// continues a fragmented message.
pub fn masked_frame(opcode: OpCode, is_final: bool, rsv1: bool, parts: &[&[u8]], mask: [u8; 4]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let header = FrameHeader { is_final, rsv1, opcode, mask: Some(mask), ..FrameHeader::default() };
    let head_len = header.len(len as u64);
    let mut out = Vec::with_capacity(head_len + len);
    header.format(len as u64, &mut out).expect("writing to a Vec cannot fail");
    debug_assert_eq!(out.len(), head_len);
    for part in parts {
        out.extend_from_slice(part);
    }
    super::decoder::unmask(&mut out[head_len..], mask, 0);
    Bytes::from(out)
}

/// A server-format (unmasked) frame, as `encoder` builds for any number of recipients,
/// re-encoded masked for one client connection.
pub fn mask_frame(frame: &[u8]) -> Bytes {
    let mut cursor = std::io::Cursor::new(frame);
    match FrameHeader::parse(&mut cursor) {
        Ok(Some((header, len))) => {
            let start = cursor.position() as usize;
            let payload = &frame[start..start + len as usize];
            masked_frame(header.opcode, header.is_final, header.rsv1, &[payload], mask_key())
        }
        // Our own encoder made it: a whole, valid frame.
        _ => unreachable!("mask_frame takes whole frames from the encoder"),
    }
}

/// One unfragmented, uncompressed data frame.
pub fn message_frame(kind: MessageKind, payload: &[u8]) -> Bytes {
    let opcode = match kind {
        MessageKind::Text => OpCode::Data(Data::Text),
        MessageKind::Binary => OpCode::Data(Data::Binary),
    };
    masked_frame(opcode, true, false, &[payload], mask_key())
}

pub fn ping_frame(payload: &[u8]) -> Bytes {
    masked_frame(OpCode::Control(Control::Ping), true, false, &[payload], mask_key())
}

pub fn pong_frame(payload: &[u8]) -> Bytes {
    masked_frame(OpCode::Control(Control::Pong), true, false, &[payload], mask_key())
}

/// A close frame; `code == None` sends an empty payload. The reason is cut to fit.
pub fn close_frame(code: Option<u16>, reason: &str) -> Bytes {
    let opcode = OpCode::Control(Control::Close);
    match code {
        None => masked_frame(opcode, true, false, &[], mask_key()),
        Some(code) => {
            let reason = truncate_utf8(reason, MAX_CLOSE_REASON);
            masked_frame(opcode, true, false, &[&code.to_be_bytes(), reason.as_bytes()], mask_key())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::FrameSocket;
    use tungstenite::protocol::frame::{Frame, FrameHeader};

    /// Reads frames the way a server does: tungstenite's frame reader, then unmasking (by a
    /// plain loop, independent of the code under test).
    fn read_as_server(wire: &[u8]) -> Vec<Frame> {
        let mut socket = FrameSocket::new(Cursor::new(wire.to_vec()));
        let mut frames = Vec::new();
        while let Some(frame) = socket.read(None).unwrap() {
            let mask = frame.header().mask.expect("client frames must be masked");
            let mut header = frame.header().clone();
            let payload: Vec<u8> = frame.payload().iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            header.mask = None;
            frames.push(Frame::from_payload(header, payload.into()));
        }
        frames
    }

    #[test]
    fn frames_decode_as_a_server_reads_them() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let mid = vec![b'x'; 300];
        let mut wire = Vec::new();
        wire.extend_from_slice(&message_frame(MessageKind::Text, "héllo".as_bytes()));
        wire.extend_from_slice(&message_frame(MessageKind::Binary, &big));
        wire.extend_from_slice(&message_frame(MessageKind::Binary, &mid));
        wire.extend_from_slice(&ping_frame(b"p"));
        wire.extend_from_slice(&pong_frame(b""));
        wire.extend_from_slice(&close_frame(Some(1000), "bye"));
        wire.extend_from_slice(&close_frame(None, ""));
        let frames = read_as_server(&wire);
        assert_eq!(frames.len(), 7);
        assert_eq!(frames[0].payload(), "héllo".as_bytes());
        assert_eq!(frames[0].header().opcode, OpCode::Data(Data::Text));
        assert_eq!(frames[1].payload(), &big[..]);
        assert_eq!(frames[2].payload(), &mid[..]);
        assert_eq!(frames[3].header().opcode, OpCode::Control(Control::Ping));
        assert_eq!(frames[4].payload(), b"");
        assert_eq!(frames[5].payload(), &[0x03, 0xe8, b'b', b'y', b'e']);
        assert!(frames[6].payload().is_empty());
        assert!(frames.iter().all(|f| f.header().is_final && !f.header().rsv1));

        // This crate's server decoder takes them too.
        let mut out = Vec::new();
        let limits = crate::protocol::decoder::DecoderLimits { max_message_size: 1 << 20, max_frame_size: 1 << 20 };
        crate::protocol::decoder::Decoder::default().feed(&wire, &limits, &mut out).unwrap();
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn header_bits_and_fragments() {
        let mask = [1, 2, 3, 4];
        let first = masked_frame(OpCode::Data(Data::Text), false, true, &[b"ab"], mask);
        let last = masked_frame(OpCode::Data(Data::Continue), true, false, &[b"c", b"d"], mask);
        assert_eq!(&first[..], &[0x41, 0x82, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2]);
        let mut wire = first.to_vec();
        wire.extend_from_slice(&last);
        let frames = read_as_server(&wire);
        assert!(!frames[0].header().is_final && frames[0].header().rsv1);
        assert_eq!(frames[1].payload(), b"cd");
        let mut cursor = Cursor::new(&last[..]);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!((header.mask, len), (Some(mask), 2));
    }

    #[test]
    fn keys_differ() {
        let keys: std::collections::HashSet<[u8; 4]> = (0..1000).map(|_| mask_key()).collect();
        assert!(keys.len() > 990, "{} distinct keys of 1000", keys.len());
        let a = message_frame(MessageKind::Binary, &[0; 16]);
        let b = message_frame(MessageKind::Binary, &[0; 16]);
        assert_ne!(a[2..6], b[2..6]);
        // A zero payload shows the mask: the masked bytes are the key repeated.
        assert_eq!(a[6..10], a[2..6]);
    }

    /// Cost of a mask key from ThreadRng versus a getrandom system call per frame.
    #[test]
    #[ignore]
    fn mask_key_cost() {
        let n = 1_000_000u32;
        let t = std::time::Instant::now();
        let mut acc = 0u8;
        for _ in 0..n {
            acc ^= mask_key()[0];
        }
        let thread_rng = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n / 10 {
            let mut k = [0u8; 4];
            getrandom::fill(&mut k).unwrap();
            acc ^= k[0];
        }
        let syscall = t.elapsed() / (n / 10);
        println!("ThreadRng {thread_rng:?} per key, getrandom {syscall:?} per key ({acc})");
    }
}
