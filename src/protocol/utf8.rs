//! Incremental UTF-8 validation, so a text message is rejected at the first bad byte
//! instead of after the whole (possibly huge, possibly fragmented) message arrived.

/// Validates a growing byte buffer. Call [`Utf8Validator::advance`] after appending bytes;
/// only the new bytes (plus at most 3 bytes of an unfinished sequence) are looked at.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Validator {
    checked: usize,
}

impl Utf8Validator {
    /// Returns `false` as soon as `buf` cannot be a prefix of valid UTF-8.
    pub fn advance(&mut self, buf: &[u8]) -> bool {
        match std::str::from_utf8(&buf[self.checked..]) {
            Ok(_) => {
                self.checked = buf.len();
                true
            }
            // `error_len() == None` means the input ended inside a sequence that may still complete.
            Err(e) if e.error_len().is_none() => {
                self.checked += e.valid_up_to();
                true
            }
            Err(_) => false,
        }
    }

    /// True when everything seen so far is complete, valid UTF-8 (call at the end of a message).
    pub fn is_complete(&self, buf: &[u8]) -> bool {
        self.checked == buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_split_sequences_and_rejects_early() {
        let text = "κόσμε€𝄞".as_bytes();
        for split in 0..text.len() {
            let mut v = Utf8Validator::default();
            assert!(v.advance(&text[..split]));
            assert!(v.advance(text));
            assert!(v.is_complete(text));
        }
        let mut v = Utf8Validator::default();
        assert!(v.advance(&[0xce, 0xba]));
        assert!(!v.advance(&[0xce, 0xba, 0xf4, 0x90])); // > U+10FFFF is rejected before the sequence ends
        let mut v = Utf8Validator::default();
        assert!(v.advance(&[0xe2, 0x82]));
        assert!(!v.is_complete(&[0xe2, 0x82]));
    }
}
