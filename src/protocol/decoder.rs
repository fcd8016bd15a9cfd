//! Sans-IO decoder for WebSocket traffic: frame headers (parsed by
//! tungstenite's `FrameHeader`), unmasking, fragment reassembly, UTF-8 validation as bytes
//! arrive, control frames and the size limits. Bytes go in as they come off the socket (from
//! the loop's shared read buffer); whole messages and control frames come out.
//!
//! An idle decoder owns no heap memory: partial headers live in a 14-byte array and message
//! buffers exist only while a message is in flight.
//!
//! `Decoder::default()` reads client-to-server traffic (frames must be masked);
//! [`Decoder::client`] reads server-to-client traffic (frames must not be masked).

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::utf8::Utf8Validator;

/// The longest frame header (2 + 8 length bytes + 4 mask bytes).
const MAX_HEADER: usize = 14;
/// Largest allocation made ahead of bytes actually received, so a declared length is never
/// trusted with memory.
const MAX_RESERVE: usize = 64 * 1024;

/// What the decoder produced from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete message (text is valid UTF-8).
    Message { is_text: bool, data: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame: `None` when it carried no status code.
    Close(Option<(u16, String)>),
}

/// Why the peer must be failed, with the close code RFC 6455 prescribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

impl Violation {
    const fn protocol(reason: &'static str) -> Self {
        Violation { code: 1002, reason }
    }
    const fn invalid_data(reason: &'static str) -> Self {
        Violation { code: 1007, reason }
    }
    const fn too_big(reason: &'static str) -> Self {
        Violation { code: 1009, reason }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DecoderLimits {
    pub max_message_size: usize,
    pub max_frame_size: usize,
}

#[derive(Debug)]
struct FrameInProgress {
    opcode: OpCode,
    is_final: bool,
    mask: [u8; 4],
    /// Payload bytes consumed so far (mask phase).
    done: u64,
    len: u64,
}

#[derive(Debug)]
struct MessageInProgress {
    is_text: bool,
    data: Vec<u8>,
    utf8: Utf8Validator,
}

#[derive(Debug, Default)]
pub struct Decoder {
    head: [u8; MAX_HEADER],
    head_len: u8,
    frame: Option<FrameInProgress>,
    message: Option<Box<MessageInProgress>>,
    control: Vec<u8>,
    /// Decoding a server's frames (client role): masked frames are refused.
    client: bool,
}

impl Decoder {
    /// A decoder for the client role: reads unmasked server frames, fails masked ones (1002).
    pub fn client() -> Self {
        Decoder { client: true, ..Decoder::default() }
    }

    /// Bytes held for messages in flight (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity()) + self.control.capacity()
    }

    /// Feeds bytes from the peer. Complete items are appended to `out`. After an error the
    /// decoder must not be fed again.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        limits: &DecoderLimits,
        out: &mut Vec<Incoming>,
    ) -> Result<(), Violation> {
        loop {
            if self.frame.is_none() {
                match self.take_header(&mut input)? {
                    Some((header, len)) => self.begin_frame(header, len, limits)?,
                    None => return Ok(()),
                }
            }
            let frame = self.frame.as_mut().expect("frame in progress");
            let want = frame.len - frame.done;
            let n = want.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(n);
            input = rest;
            let is_control = matches!(frame.opcode, OpCode::Control(_));
            let target = if is_control {
                &mut self.control
            } else {
                &mut self.message.as_mut().expect("message in progress").data
            };
            let start = target.len();
            target.extend_from_slice(chunk);
            if frame.mask != [0; 4] {
                unmask(&mut target[start..], frame.mask, frame.done);
            }
            frame.done += n as u64;
            if !is_control {
                let message = self.message.as_mut().expect("message in progress");
                if message.is_text && !message.utf8.advance(&message.data) {
                    return Err(Violation::invalid_data("invalid UTF-8 in text message"));
                }
            }
            if frame.done < frame.len {
                return Ok(()); // input exhausted mid-frame
            }
            let frame = self.frame.take().expect("frame in progress");
            self.finish_frame(frame, out)?;
            if input.is_empty() {
                return Ok(());
            }
        }
    }

    /// Parses a frame header from `head` + `input`, keeping a partial header for later.
    fn take_header(&mut self, input: &mut &[u8]) -> Result<Option<(FrameHeader, u64)>, Violation> {
        if self.head_len == 0 {
            let mut cursor = Cursor::new(*input);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => {
                    *input = &input[cursor.position() as usize..];
                    return Ok(Some(parsed));
                }
                Ok(None) => {
                    self.head[..input.len()].copy_from_slice(input);
                    self.head_len = input.len() as u8;
                    *input = &[];
                    return Ok(None);
                }
                Err(_) => return Err(Violation::protocol("invalid opcode")),
            }
        }
        let old = self.head_len as usize;
        let add = (MAX_HEADER - old).min(input.len());
        self.head[old..old + add].copy_from_slice(&input[..add]);
        let mut cursor = Cursor::new(&self.head[..old + add]);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => {
                let used = cursor.position() as usize - old;
                *input = &input[used..];
                self.head_len = 0;
                Ok(Some(parsed))
            }
            Ok(None) => {
                self.head_len = (old + add) as u8;
                *input = &input[add..];
                Ok(None)
            }
            Err(_) => Err(Violation::protocol("invalid opcode")),
        }
    }

    fn begin_frame(
        &mut self,
        header: FrameHeader,
        len: u64,
        limits: &DecoderLimits,
    ) -> Result<(), Violation> {
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(Violation::protocol("reserved bits set without a negotiated extension"));
        }
        let mask = match (header.mask, self.client) {
            (Some(mask), false) => mask,
            (None, false) => return Err(Violation::protocol("client frame is not masked")),
            (None, true) => [0; 4],
            (Some(_), true) => return Err(Violation::protocol("server frame is masked")),
        };
        match header.opcode {
            OpCode::Control(_) => {
                if !header.is_final {
                    return Err(Violation::protocol("fragmented control frame"));
                }
                if len > 125 {
                    return Err(Violation::protocol("control frame payload over 125 bytes"));
                }
                self.control.clear();
                self.control.reserve(len as usize);
            }
            OpCode::Data(data) => {
                if len > limits.max_frame_size as u64 {
                    return Err(Violation::too_big("frame exceeds the size limit"));
                }
                match (data, self.message.is_some()) {
                    (Data::Continue, false) => {
                        return Err(Violation::protocol("continuation frame without a message"))
                    }
                    (Data::Text | Data::Binary, true) => {
                        return Err(Violation::protocol("new message before the previous one ended"))
                    }
                    _ => {}
                }
                let so_far = self.message.as_ref().map_or(0, |m| m.data.len()) as u64;
                if so_far + len > limits.max_message_size as u64 {
                    return Err(Violation::too_big("message exceeds the size limit"));
                }
                let message = self.message.get_or_insert_with(|| {
                    Box::new(MessageInProgress {
                        is_text: data == Data::Text,
                        data: Vec::new(),
                        utf8: Utf8Validator::default(),
                    })
                });
                message.data.reserve((len as usize).min(MAX_RESERVE));
            }
        }
        self.frame = Some(FrameInProgress {
            opcode: header.opcode,
            is_final: header.is_final,
            mask,
            done: 0,
            len,
        });
        Ok(())
    }

    fn finish_frame(&mut self, frame: FrameInProgress, out: &mut Vec<Incoming>) -> Result<(), Violation> {
        match frame.opcode {
            OpCode::Data(_) => {
                if frame.is_final {
                    let message = self.message.take().expect("message in progress");
                    if message.is_text && !message.utf8.is_complete(&message.data) {
                        return Err(Violation::invalid_data("text message ends inside a UTF-8 sequence"));
                    }
                    out.push(Incoming::Message { is_text: message.is_text, data: message.data });
                }
            }
            OpCode::Control(Control::Ping) => out.push(Incoming::Ping(std::mem::take(&mut self.control))),
            OpCode::Control(Control::Pong) => out.push(Incoming::Pong(std::mem::take(&mut self.control))),
            OpCode::Control(Control::Close) => {
                let payload = std::mem::take(&mut self.control);
                out.push(Incoming::Close(parse_close_payload(&payload)?));
            }
            OpCode::Control(Control::Reserved(_)) => unreachable!("rejected by FrameHeader::parse"),
        }
        Ok(())
    }
}

/// Validates a close frame's payload: empty, or a sendable status code plus a UTF-8 reason.
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(u16, String)>, Violation> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(Violation::protocol("close frame with a 1-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(Violation::protocol("close frame with an invalid status code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| Violation::invalid_data("close reason is not UTF-8"))?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// Close codes an endpoint may put on the wire: RFC 6455 section 7.4 plus the IANA registry
/// (1012-1014), and the 3000-4999 ranges for libraries and applications. tungstenite's
/// `CloseCode::is_allowed` misses 1014 ("Bad Gateway"), so the rule lives here, once.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `buf` with the mask, `offset` being the position of `buf[0]` within the frame payload.
pub(crate) fn unmask(buf: &mut [u8], mask: [u8; 4], offset: u64) {
    let mut rotated = [0u8; 4];
    for (i, byte) in rotated.iter_mut().enumerate() {
        *byte = mask[(offset as usize + i) & 3];
    }
    let word = u32::from_ne_bytes(rotated);
    let mut chunks = buf.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecoderLimits = DecoderLimits { max_message_size: 1 << 20, max_frame_size: 1 << 20 };

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        crate::protocol::encoder::client_frame(first, payload, [0x37, 0xfa, 0x21, 0x3d])
    }

    fn decode_bytewise(bytes: &[u8]) -> Result<Vec<Incoming>, Violation> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for byte in bytes {
            decoder.feed(std::slice::from_ref(byte), &LIMITS, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn reassembles_fragments_fed_one_byte_at_a_time() {
        let mut wire = masked(0x01, "Hel".as_bytes());
        wire.extend(masked(0x89, b"ping"));
        wire.extend(masked(0x80, "lo €".as_bytes()));
        let out = decode_bytewise(&wire).unwrap();
        assert_eq!(
            out,
            vec![
                Incoming::Ping(b"ping".to_vec()),
                Incoming::Message { is_text: true, data: "Hello €".as_bytes().to_vec() },
            ]
        );
    }

    #[test]
    fn large_frames_and_whole_buffer_feeding() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let wire = masked(0x82, &payload);
        let mut out = Vec::new();
        Decoder::default().feed(&wire, &LIMITS, &mut out).unwrap();
        assert_eq!(out, vec![Incoming::Message { is_text: false, data: payload }]);
    }

    #[test]
    fn violations_carry_the_right_codes() {
        let unmasked = [0x81u8, 0x00];
        assert_eq!(decode_bytewise(&unmasked).unwrap_err().code, 1002);
        assert_eq!(decode_bytewise(&masked(0xc1, b"x")).unwrap_err().code, 1002); // RSV1
        assert_eq!(decode_bytewise(&masked(0x83, b"x")).unwrap_err().code, 1002); // reserved opcode
        assert_eq!(decode_bytewise(&masked(0x80, b"x")).unwrap_err().code, 1002); // stray continuation
        assert_eq!(decode_bytewise(&masked(0x09, b"x")).unwrap_err().code, 1002); // fragmented ping
        assert_eq!(decode_bytewise(&masked(0x81, &[0xff])).unwrap_err().code, 1007);
        assert_eq!(decode_bytewise(&masked(0x88, &[0x03, 0xe8, 0xff])).unwrap_err().code, 1007);
        assert_eq!(decode_bytewise(&masked(0x88, &[0x03, 0xed])).unwrap_err().code, 1002); // 1005
        // A declared 2^62-byte frame is refused from its header alone.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        let mut decoder = Decoder::default();
        assert_eq!(decoder.feed(&huge, &LIMITS, &mut Vec::new()).unwrap_err().code, 1009);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn client_role_takes_unmasked_frames_and_refuses_masked_ones() {
        let mut wire = crate::protocol::encoder::message_frame(crate::MessageKind::Text, b"Hel").to_vec();
        wire[0] &= 0x7f; // not final
        wire.extend_from_slice(&crate::protocol::encoder::ping_frame(b"p"));
        wire.extend_from_slice(&[0x80, 0x02, b'l', b'o']);
        wire.extend_from_slice(&crate::protocol::encoder::close_frame(Some(1001), "away"));
        let mut decoder = Decoder::client();
        let mut out = Vec::new();
        for byte in &wire {
            decoder.feed(std::slice::from_ref(byte), &LIMITS, &mut out).unwrap();
        }
        assert_eq!(
            out,
            vec![
                Incoming::Ping(b"p".to_vec()),
                Incoming::Message { is_text: true, data: b"Hello".to_vec() },
                Incoming::Close(Some((1001, "away".into()))),
            ]
        );
        let err = Decoder::client().feed(&masked(0x81, b"x"), &LIMITS, &mut Vec::new()).unwrap_err();
        assert_eq!(err, Violation { code: 1002, reason: "server frame is masked" });
        // The other checks hold in both roles.
        assert_eq!(Decoder::client().feed(&[0xc1, 0x00], &LIMITS, &mut Vec::new()).unwrap_err().code, 1002);
        assert_eq!(Decoder::client().feed(&[0x81, 0x01, 0xff], &LIMITS, &mut Vec::new()).unwrap_err().code, 1007);
        // A masked frame whose key is zero is still masked: the server role takes it.
        let mut out = Vec::new();
        Decoder::default().feed(&crate::protocol::encoder::client_frame(0x82, b"ab", [0; 4]), &LIMITS, &mut out).unwrap();
        assert_eq!(out, vec![Incoming::Message { is_text: false, data: b"ab".to_vec() }]);
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close_payload(&[]).unwrap(), None);
        assert_eq!(parse_close_payload(&[0x03, 0xe8, b'o', b'k']).unwrap(), Some((1000, "ok".into())));
        assert!(parse_close_payload(&[0x03]).is_err());
        assert!(parse_close_payload(&[0x0b, 0xb8]).is_ok()); // 3000
        assert!(parse_close_payload(&[0x03, 0xe7]).is_err()); // 999
        assert!(parse_close_payload(&[0x03, 0xf6]).is_ok()); // 1014
        assert!(parse_close_payload(&[0x03, 0xf7]).is_err()); // 1015
    }
}
