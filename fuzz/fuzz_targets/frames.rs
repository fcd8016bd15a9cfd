//! The frame/message path: arbitrary client bytes, split into arbitrary chunks, through the
//! decoder. It must never panic, never produce invalid UTF-8 text or oversized messages, and
//! give the same result however the input is chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsembed::protocol::decoder::{Decoder, DecoderLimits, Incoming};

const LIMITS: DecoderLimits = DecoderLimits { max_message_size: 1 << 16, max_frame_size: 1 << 15 };

fn decode(data: &[u8], chunk: usize) -> (Vec<Incoming>, Option<u16>) {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        if let Err(violation) = decoder.feed(piece, &LIMITS, &mut out) {
            return (out, Some(violation.code));
        }
    }
    (out, None)
}

fuzz_target!(|input: &[u8]| {
    let Some((&chunk, data)) = input.split_first() else { return };
    let (whole, whole_err) = decode(data, data.len());
    let (pieces, pieces_err) = decode(data, chunk as usize % 17 + 1);
    assert_eq!(whole, pieces, "chunking changed the messages");
    assert_eq!(whole_err, pieces_err, "chunking changed the verdict");
    for item in &whole {
        if let Incoming::Message { is_text, data } = item {
            assert!(data.len() <= LIMITS.max_message_size);
            if *is_text {
                assert!(std::str::from_utf8(data).is_ok());
            }
        }
    }
    if let Some(code) = whole_err {
        assert!(matches!(code, 1002 | 1007 | 1009), "unexpected close code {code}");
    }
});
