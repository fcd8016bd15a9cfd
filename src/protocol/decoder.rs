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
//!
//! permessage-deflate: after negotiation the connection calls [`Decoder::set_deflate`] and
//! feeds through [`Decoder::feed_decoded`]. A data message whose first frame has RSV1 is then
//! reassembled as it came (compressed fragments, bounded by the same limits) and handed out as
//! [`Decoded::Compressed`], to be inflated at FIN (and its text validated on the inflated
//! bytes: the deflate `Inflater` does that, or [`validate_text`]). RSV1 on a continuation or
//! control frame, RSV1 without negotiation, and RSV2/RSV3 always, are 1002. [`Decoder::feed`]
//! is unchanged: it refuses RSV1 whatever the flag, since `Incoming` cannot carry a
//! compressed message.

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

/// What [`Decoder::feed_decoded`] produces: everything [`Decoder::feed`] does, plus compressed
/// messages.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Plain(Incoming),
    /// A message whose first frame had RSV1: `data` is the reassembled compressed payload,
    /// neither inflated nor UTF-8 checked yet.
    Compressed { is_text: bool, data: Vec<u8> },
}

impl From<Incoming> for Decoded {
    fn from(item: Incoming) -> Self {
        Decoded::Plain(item)
    }
}

/// An output type the decoder can push to.
trait Output: From<Incoming> {
    /// Whether this type carries compressed messages (if not, RSV1 is refused).
    const COMPRESSED: bool;
    fn compressed(is_text: bool, data: Vec<u8>) -> Self;
}

impl Output for Incoming {
    const COMPRESSED: bool = false;
    fn compressed(_: bool, _: Vec<u8>) -> Self {
        unreachable!("RSV1 is refused when the output cannot carry compressed messages")
    }
}

impl Output for Decoded {
    const COMPRESSED: bool = true;
    fn compressed(is_text: bool, data: Vec<u8>) -> Self {
        Decoded::Compressed { is_text, data }
    }
}

/// UTF-8 check for a whole text message, e.g. one just inflated (1007 when invalid).
pub fn validate_text(data: &[u8]) -> Result<(), Violation> {
    std::str::from_utf8(data).map(|_| ()).map_err(|_| Violation::invalid_data("invalid UTF-8 in text message"))
}

/// Why the peer must be failed, with the close code RFC 6455 prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A frame the last read ended inside of: its header bytes so far, or the frame being read
/// (and, for a control frame, its payload so far).
#[derive(Debug, Default)]
struct Partial {
    head: [u8; MAX_HEADER],
    head_len: u8,
    frame: Option<FrameInProgress>,
    control: Vec<u8>,
}

#[derive(Debug)]
struct MessageInProgress {
    is_text: bool,
    /// RSV1 on the first frame: `data` is deflate data, validated only once inflated.
    compressed: bool,
    data: Vec<u8>,
    utf8: Utf8Validator,
}

/// Between frames (an idle connection's state) it is two null pointers and two flags: what a
/// frame split across reads needs is boxed in [`Partial`], made only when a read ends inside
/// a frame or its header.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<Box<Partial>>,
    message: Option<Box<MessageInProgress>>,
    /// Decoding a server's frames (client role): masked frames are refused.
    client: bool,
    /// permessage-deflate was negotiated: RSV1 may start a data message.
    deflate: bool,
}

impl Decoder {
    /// A decoder for the client role: reads unmasked server frames, fails masked ones (1002).
    pub fn client() -> Self {
        Decoder { client: true, ..Decoder::default() }
    }

    /// Bytes held for messages in flight (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity()) + self.partial.as_ref().map_or(0, |p| p.control.capacity())
    }

    /// Allows RSV1 on the first frame of data messages (permessage-deflate negotiated); only
    /// [`Decoder::feed_decoded`] honours it.
    pub fn set_deflate(&mut self, on: bool) {
        self.deflate = on;
    }

    pub fn deflate(&self) -> bool {
        self.deflate
    }

    /// Feeds bytes from the peer. Complete items are appended to `out`. After an error the
    /// decoder must not be fed again. Refuses RSV1 (no extension), whatever [`Decoder::set_deflate`] says.
    pub fn feed(&mut self, input: &[u8], limits: &DecoderLimits, out: &mut Vec<Incoming>) -> Result<(), Violation> {
        self.feed_into(input, limits, out)
    }

    /// [`Decoder::feed`] for a connection that may have negotiated permessage-deflate: with
    /// [`Decoder::set_deflate`] on, RSV1 messages come out as [`Decoded::Compressed`].
    pub fn feed_decoded(&mut self, input: &[u8], limits: &DecoderLimits, out: &mut Vec<Decoded>) -> Result<(), Violation> {
        self.feed_into(input, limits, out)
    }

    fn feed_into<O: Output>(
        &mut self,
        mut input: &[u8],
        limits: &DecoderLimits,
        out: &mut Vec<O>,
    ) -> Result<(), Violation> {
        loop {
            let resumed = self.partial.as_deref_mut().and_then(|p| p.frame.take().map(|f| (f, std::mem::take(&mut p.control))));
            let (mut frame, mut control) = match resumed {
                Some(resumed) => resumed,
                None => match self.take_header(&mut input)? {
                    Some((header, len)) => {
                        if let Some(used) = self.whole_message(&header, len, input, limits, out)? {
                            input = &input[used..];
                            if input.is_empty() {
                                return Ok(());
                            }
                            continue;
                        }
                        self.begin_frame(header, len, limits, self.deflate && O::COMPRESSED)?
                    }
                    None => return Ok(()),
                },
            };
            let want = frame.len - frame.done;
            let n = want.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(n);
            input = rest;
            let is_control = matches!(frame.opcode, OpCode::Control(_));
            let target = if is_control {
                &mut control
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
                if message.is_text && !message.compressed && !message.utf8.advance(&message.data) {
                    return Err(Violation::invalid_data("invalid UTF-8 in text message"));
                }
            }
            if frame.done < frame.len {
                // Input exhausted mid-frame: keep it for the next read.
                let partial = self.partial.get_or_insert_with(Box::default);
                partial.frame = Some(frame);
                partial.control = control;
                return Ok(());
            }
            // Between frames nothing is kept.
            self.partial = None;
            self.finish_frame(frame, control, out)?;
            if input.is_empty() {
                return Ok(());
            }
        }
    }

    /// Parses a frame header from the kept partial header + `input`, keeping a partial
    /// header for later.
    fn take_header(&mut self, input: &mut &[u8]) -> Result<Option<(FrameHeader, u64)>, Violation> {
        let old = self.partial.as_ref().map_or(0, |p| p.head_len as usize);
        if old == 0 {
            let mut cursor = Cursor::new(*input);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => {
                    *input = &input[cursor.position() as usize..];
                    return Ok(Some(parsed));
                }
                Ok(None) => {
                    let partial = self.partial.get_or_insert_with(Box::default);
                    partial.head[..input.len()].copy_from_slice(input);
                    partial.head_len = input.len() as u8;
                    *input = &[];
                    return Ok(None);
                }
                Err(_) => return Err(Violation::protocol("invalid opcode")),
            }
        }
        let partial = self.partial.as_deref_mut().expect("a partial header is kept");
        let add = (MAX_HEADER - old).min(input.len());
        partial.head[old..old + add].copy_from_slice(&input[..add]);
        let mut cursor = Cursor::new(&partial.head[..old + add]);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => {
                let used = cursor.position() as usize - old;
                *input = &input[used..];
                partial.head_len = 0;
                Ok(Some(parsed))
            }
            Ok(None) => {
                partial.head_len = (old + add) as u8;
                *input = &input[add..];
                Ok(None)
            }
            Err(_) => Err(Violation::protocol("invalid opcode")),
        }
    }

    /// The common case in one step: an unfragmented data frame whose whole payload is in
    /// `input`, with nothing else in progress, becomes a message at once (no box for a
    /// message in progress, no incremental UTF-8 state). Returns the payload bytes used, or
    /// `None` for anything else, which `begin_frame` then checks (and refuses) as usual.
    fn whole_message<O: Output>(&mut self, header: &FrameHeader, len: u64, input: &[u8], limits: &DecoderLimits, out: &mut Vec<O>) -> Result<Option<usize>, Violation> {
        let is_text = match header.opcode {
            OpCode::Data(Data::Text) => true,
            OpCode::Data(Data::Binary) => false,
            _ => return Ok(None),
        };
        let mask = match (header.mask, self.client) {
            (Some(mask), false) => Some(mask),
            (None, true) => None,
            _ => return Ok(None),
        };
        let compressed = header.rsv1;
        let fits = len <= input.len() as u64 && len <= limits.max_frame_size as u64 && len <= limits.max_message_size as u64;
        if !header.is_final || self.message.is_some() || !fits || header.rsv2 || header.rsv3 || (compressed && !(self.deflate && O::COMPRESSED)) {
            return Ok(None);
        }
        let len = len as usize;
        let mut data = input[..len].to_vec();
        if let Some(mask) = mask {
            unmask(&mut data, mask, 0);
        }
        // Between frames nothing is kept.
        self.partial = None;
        if compressed {
            out.push(O::compressed(is_text, data));
        } else {
            if is_text {
                validate_text(&data)?;
            }
            out.push(Incoming::Message { is_text, data }.into());
        }
        Ok(Some(len))
    }

    fn begin_frame(
        &mut self,
        header: FrameHeader,
        len: u64,
        limits: &DecoderLimits,
        deflate: bool,
    ) -> Result<(FrameInProgress, Vec<u8>), Violation> {
        if header.rsv2 || header.rsv3 || (header.rsv1 && !deflate) {
            return Err(Violation::protocol("reserved bits set without a negotiated extension"));
        }
        // With permessage-deflate, RSV1 marks the first frame of a compressed message only.
        if header.rsv1 && !matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary)) {
            return Err(Violation::protocol(match header.opcode {
                OpCode::Control(_) => "RSV1 set on a control frame",
                _ => "RSV1 set on a continuation frame",
            }));
        }
        let mut control_len = 0;
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
                control_len = len as usize;
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
                        compressed: header.rsv1,
                        data: Vec::new(),
                        utf8: Utf8Validator::default(),
                    })
                });
                message.data.reserve((len as usize).min(MAX_RESERVE));
            }
        }
        let frame = FrameInProgress { opcode: header.opcode, is_final: header.is_final, mask, done: 0, len };
        Ok((frame, Vec::with_capacity(control_len)))
    }

    fn finish_frame<O: Output>(&mut self, frame: FrameInProgress, control: Vec<u8>, out: &mut Vec<O>) -> Result<(), Violation> {
        match frame.opcode {
            OpCode::Data(_) => {
                if frame.is_final {
                    let message = self.message.take().expect("message in progress");
                    if message.compressed {
                        out.push(O::compressed(message.is_text, message.data));
                        return Ok(());
                    }
                    if message.is_text && !message.utf8.is_complete(&message.data) {
                        return Err(Violation::invalid_data("text message ends inside a UTF-8 sequence"));
                    }
                    out.push(Incoming::Message { is_text: message.is_text, data: message.data }.into());
                }
            }
            OpCode::Control(Control::Ping) => out.push(Incoming::Ping(control).into()),
            OpCode::Control(Control::Pong) => out.push(Incoming::Pong(control).into()),
            OpCode::Control(Control::Close) => {
                out.push(Incoming::Close(parse_close_payload(&control)?).into());
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

    fn decode_deflate_bytewise(bytes: &[u8], deflate: bool) -> Result<Vec<Decoded>, Violation> {
        let mut decoder = Decoder::default();
        decoder.set_deflate(deflate);
        let mut out = Vec::new();
        for byte in bytes {
            decoder.feed_decoded(std::slice::from_ref(byte), &LIMITS, &mut out)?;
        }
        assert_eq!(decoder.buffered() > 0, decoder.message.is_some());
        Ok(out)
    }

    #[test]
    fn rsv1_starts_a_compressed_message_only_when_negotiated() {
        // RFC 7692 7.2.3.1, fragmented: "He" | "llo" compressed into 3 + 4 bytes.
        let mut wire = masked(0x41, &[0xf2, 0x48, 0xcd]);
        wire.extend(masked(0x89, b"p"));
        wire.extend(masked(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
        wire.extend(masked(0x81, "plain €".as_bytes()));
        wire.extend(masked(0xc2, &[0xff, 0xfe])); // compressed binary, garbage: not our business here
        let out = decode_deflate_bytewise(&wire, true).unwrap();
        assert_eq!(
            out,
            vec![
                Decoded::Plain(Incoming::Ping(b"p".to_vec())),
                Decoded::Compressed { is_text: true, data: vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00] },
                Decoded::Plain(Incoming::Message { is_text: true, data: "plain €".as_bytes().to_vec() }),
                Decoded::Compressed { is_text: false, data: vec![0xff, 0xfe] },
            ]
        );
        // Compressed text is not UTF-8 checked by the decoder (it is deflate data)...
        assert!(decode_deflate_bytewise(&masked(0xc1, &[0xff]), true).is_ok());
        // ...but plain text still is, on a deflate connection too.
        assert_eq!(decode_deflate_bytewise(&masked(0x81, &[0xff]), true).unwrap_err().code, 1007);
        assert_eq!(validate_text(&[0xff]).unwrap_err().code, 1007);
        assert!(validate_text("κόσμε".as_bytes()).is_ok());
    }

    #[test]
    fn rsv1_rules() {
        let code = |wire: &[u8], deflate| decode_deflate_bytewise(wire, deflate).unwrap_err().code;
        assert_eq!(code(&masked(0xc1, b"x"), false), 1002, "not negotiated");
        let mut cont = masked(0x41, b"x");
        cont.extend(masked(0xc0, b"y"));
        assert_eq!(code(&cont, true), 1002, "RSV1 on a continuation");
        let mut cont = masked(0x01, b"x");
        cont.extend(masked(0xc0, b"y"));
        assert_eq!(code(&cont, true), 1002, "RSV1 on a continuation of a plain message");
        assert_eq!(code(&masked(0xc9, b""), true), 1002, "RSV1 on a ping");
        assert_eq!(code(&masked(0xc8, &[0x03, 0xe8]), true), 1002, "RSV1 on a close");
        assert_eq!(code(&masked(0xa1, b"x"), true), 1002, "RSV2");
        assert_eq!(code(&masked(0x91, b"x"), true), 1002, "RSV3");
        assert_eq!(code(&masked(0xe1, b"x"), true), 1002, "RSV1+RSV2");
        // The old entry point refuses RSV1 even with the flag set.
        let mut decoder = Decoder::default();
        decoder.set_deflate(true);
        let err = decoder.feed(&masked(0xc1, b"x"), &LIMITS, &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, 1002);
        // A compressed message is held to the same limits as a plain one.
        let small = DecoderLimits { max_message_size: 10, max_frame_size: 8 };
        let mut decoder = Decoder::default();
        decoder.set_deflate(true);
        let mut out = Vec::new();
        assert_eq!(decoder.feed_decoded(&masked(0x42, &[0; 9]), &small, &mut out).unwrap_err().code, 1009);
        let mut decoder = Decoder::default();
        decoder.set_deflate(true);
        decoder.feed_decoded(&masked(0x42, &[0; 6]), &small, &mut out).unwrap();
        assert_eq!(decoder.feed_decoded(&masked(0x80, &[0; 6]), &small, &mut out).unwrap_err().code, 1009);
        assert!(out.is_empty());
    }

    #[test]
    fn feed_and_feed_decoded_agree_on_plain_traffic() {
        let mut wire = masked(0x01, "Hel".as_bytes());
        wire.extend(masked(0x8a, b"pong"));
        wire.extend(masked(0x80, "lo".as_bytes()));
        wire.extend(masked(0x82, &[1, 2, 3]));
        wire.extend(masked(0x88, &[0x03, 0xe8]));
        let plain = decode_bytewise(&wire).unwrap();
        for deflate in [false, true] {
            let decoded = decode_deflate_bytewise(&wire, deflate).unwrap();
            assert_eq!(decoded, plain.iter().map(|i| Decoded::Plain(clone(i))).collect::<Vec<_>>());
        }
    }

    fn clone(item: &Incoming) -> Incoming {
        match item {
            Incoming::Message { is_text, data } => Incoming::Message { is_text: *is_text, data: data.clone() },
            Incoming::Ping(p) => Incoming::Ping(p.clone()),
            Incoming::Pong(p) => Incoming::Pong(p.clone()),
            Incoming::Close(c) => Incoming::Close(c.clone()),
        }
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
