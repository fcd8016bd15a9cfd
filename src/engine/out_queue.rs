//! A connection's queue of encoded frames waiting for the socket, written with vectored writes.
//!
//! Its size is counted as what it costs in memory, not only payload bytes: every queued entry
//! costs [`ENTRY_COST`] on top of its bytes, so a flood of empty messages is bounded like a
//! flood of large ones. Small frames are coalesced into one buffer, so such a flood costs
//! little more than its bytes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};

use super::transport::Transport;
use crate::http::static_files::Body;

/// What one queue entry costs beyond its bytes: the `Bytes` handle in the deque (32 B), the
/// shared-buffer header or allocation behind it, and allocator rounding.
pub const ENTRY_COST: usize = 64;
/// Frames up to this size are copied into the coalescing buffer instead of queued one by one.
const SMALL_FRAME: usize = 512;
/// Size of one coalescing buffer, at most.
const COALESCE_CAPACITY: usize = 16 * 1024;
/// A coalescing buffer's first size.
const COALESCE_START: usize = 1024;
/// Most entries handed to one `writev`.
const MAX_IOVECS: usize = 64;
/// Chunk of a static file read per refill of the queue.
const FILE_CHUNK: usize = 64 * 1024;

/// Empty, it is one null pointer and holds no heap: an idle connection pays 8 bytes for it.
/// The buffers are taken on the first push (from the loop's [`Spares`], or made) and given
/// back when the socket has taken everything.
#[derive(Default)]
pub struct OutQueue {
    queued: Option<Box<Queued>>,
}

/// Drained queue buffers a loop keeps for its next pushes, so that a busy connection (an
/// echo, say) does not allocate and free its queue for every burst. Bounded.
// The boxes themselves are what is kept: a queue takes one and later gives it back.
#[allow(clippy::vec_box)]
#[derive(Default)]
pub struct Spares(Vec<Box<Queued>>);

/// Most spare queues a loop keeps (each about 216 bytes).
const MAX_SPARES: usize = 64;
/// A drained queue whose entry list grew past this is freed rather than kept.
const SPARE_ENTRIES: usize = 16;

impl Spares {
    fn take(&mut self) -> Box<Queued> {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, mut queued: Box<Queued>) {
        if self.0.len() >= MAX_SPARES || queued.frames.capacity() > SPARE_ENTRIES {
            return;
        }
        queued.frames.clear();
        // A first-size coalescing buffer stays with the queue: the next burst's small frames
        // go into it without an allocation (64 of them cost a loop 64 KiB at most).
        if queued.tail.capacity() <= COALESCE_START {
            queued.tail.clear();
        } else {
            queued.tail = BytesMut::new();
        }
        queued.offset = 0;
        queued.bytes = 0;
        queued.body = None;
        self.0.push(queued);
    }
}

#[derive(Default)]
struct Queued {
    frames: VecDeque<Bytes>,
    /// Small frames queued after every entry of `frames`, copied together.
    tail: BytesMut,
    /// Bytes of `frames[0]` already written.
    offset: usize,
    /// Bytes not yet written.
    bytes: usize,
    /// A static file response's body still to send after the frames, read as the socket
    /// drains (files run to megabytes).
    body: Option<Box<Body>>,
}

impl OutQueue {
    pub fn push(&mut self, frame: Bytes, spares: &mut Spares) {
        self.queued.get_or_insert_with(|| spares.take()).push(frame);
    }

    /// Queues the frame made of `parts` (a header and a payload) by copying them: a small one
    /// into the coalescing buffer even with nothing waiting, so that a send made straight
    /// from the host's bytes allocates nothing (the buffer comes from the spares).
    pub fn push_parts(&mut self, parts: &[&[u8]], spares: &mut Spares) {
        let queued = self.queued.get_or_insert_with(|| spares.take());
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > SMALL_FRAME {
            queued.push(Bytes::from(parts.concat()));
            return;
        }
        queued.bytes += len;
        queued.reserve_tail(len);
        for part in parts {
            queued.tail.extend_from_slice(part);
        }
    }

    /// Streams `body` after what is queued.
    pub fn push_body(&mut self, body: Body, spares: &mut Spares) {
        self.queued.get_or_insert_with(|| spares.take()).body = Some(Box::new(body));
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_none()
    }

    /// Bytes not yet written.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.queued.as_ref().map_or(0, |q| q.bytes)
    }

    /// What the queue costs in memory, the figure limits compare against.
    pub fn cost(&self) -> usize {
        self.queued.as_ref().map_or(0, |q| q.cost())
    }

    /// Writes until the queue (and a body) is empty or the socket would block, and flushes
    /// TLS. Returns bytes written.
    pub fn flush(&mut self, stream: &mut Transport, spares: &mut Spares) -> io::Result<usize> {
        let Some(queued) = self.queued.as_deref_mut() else {
            // TLS may hold records of its own (handshake, alerts) with nothing queued here.
            stream.flush()?;
            return Ok(0);
        };
        let result = queued.flush_with_body(stream);
        if queued.bytes == 0 && queued.body.is_none() {
            // Everything went out: idle connections hold no buffer.
            if let Some(queued) = self.queued.take() {
                spares.give(queued);
            }
        }
        result
    }

    /// Drops everything queued.
    pub fn discard(&mut self) {
        self.queued = None;
    }
}

impl Queued {
    fn push(&mut self, frame: Bytes) {
        // With nothing waiting, the frame goes out as it is on the next flush (no copy); with
        // a backlog, small frames are copied together.
        let coalesce = frame.len() <= SMALL_FRAME && self.bytes > 0;
        self.bytes += frame.len();
        if !coalesce {
            self.seal_tail();
            self.frames.push_back(frame);
            return;
        }
        self.reserve_tail(frame.len());
        self.tail.extend_from_slice(&frame);
    }

    /// Makes room for `more` bytes (at most `SMALL_FRAME`) in the coalescing buffer, sealing
    /// it first when it is full.
    fn reserve_tail(&mut self, more: usize) {
        if self.tail.len() + more > COALESCE_CAPACITY {
            self.seal_tail();
        }
        let (len, capacity) = (self.tail.len(), self.tail.capacity());
        if len + more > capacity {
            // Grows by doubling from a small start: most backlogs are a few frames (a broadcast
            // to thousands of connections leaves each a few), and a full-size buffer for each
            // would cost 16 KiB per connection and turn.
            let target = (capacity * 2).max(len + more).clamp(COALESCE_START, COALESCE_CAPACITY);
            self.tail.reserve(target - len);
        }
    }

    /// Moves the coalesced small frames into the queue proper (before a frame that must
    /// follow them, or when the buffer is full).
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.frames.push_back(self.tail.split().freeze());
            self.tail = BytesMut::new();
        }
    }

    fn cost(&self) -> usize {
        let entries = self.frames.len() + usize::from(self.tail.capacity() > 0);
        self.bytes + entries * ENTRY_COST + (self.tail.capacity() - self.tail.len())
    }

    /// Writes the frames, refilling from the body while the socket takes more.
    fn flush_with_body(&mut self, stream: &mut Transport) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if self.bytes == 0 {
                if let Some(body) = self.body.as_mut() {
                    match body.next_chunk(FILE_CHUNK)? {
                        Some(chunk) => self.push(chunk),
                        None => self.body = None,
                    }
                }
            }
            total += self.flush_frames(stream)?;
            stream.flush()?;
            // Still queued: the socket is full (writable comes back). Nothing left: done.
            if self.bytes > 0 || self.body.is_none() {
                return Ok(total);
            }
        }
    }

    fn flush_frames(&mut self, stream: &mut Transport) -> io::Result<usize> {
        let mut total = 0;
        while self.bytes > 0 {
            if self.frames.is_empty() {
                // Only coalesced frames (an echo's usual queue): one plain write.
                let Some(written) = write_some(stream, &[IoSlice::new(&self.tail[self.offset..])])? else { break };
                total += written;
                self.consume(written);
                continue;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, frame) in self.frames.iter().take(MAX_IOVECS - 1).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &frame[self.offset..] } else { frame });
                count += 1;
            }
            if count == self.frames.len() && !self.tail.is_empty() {
                slices[count] = IoSlice::new(if count == 0 { &self.tail[self.offset..] } else { &self.tail });
                count += 1;
            }
            let Some(written) = write_some(stream, &slices[..count])? else { break };
            total += written;
            self.consume(written);
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let front = match self.frames.front() {
                Some(frame) => frame.len() - self.offset,
                None => {
                    // Only the coalesced tail is left.
                    debug_assert!(n <= self.tail.len() - self.offset);
                    self.offset += n;
                    if self.offset == self.tail.len() {
                        self.offset = 0;
                        self.tail.clear();
                    }
                    return;
                }
            };
            if n < front {
                self.offset += n;
                return;
            }
            n -= front;
            self.offset = 0;
            self.frames.pop_front();
        }
    }
}

/// One vectored write: `None` when the socket is full (retried on `EINTR`).
fn write_some(stream: &mut Transport, slices: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
    loop {
        return match stream.write_vectored(slices) {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_frames_are_coalesced_and_cost_about_their_bytes() {
        let (mut q, mut spares) = (OutQueue::default(), Spares::default());
        q.push(Bytes::from(vec![0u8; 4096]), &mut spares);
        for _ in 0..100_000 {
            q.push(Bytes::from_static(&[0x81, 0]), &mut spares);
        }
        assert_eq!(q.bytes(), 204_096);
        // 13 buffers of 16 KiB after the first frame, not 100,000 entries.
        let entries = q.queued.as_ref().unwrap().frames.len();
        assert!(entries <= 14, "{entries} entries");
        assert!(q.cost() < 204_096 + 15 * ENTRY_COST + COALESCE_CAPACITY, "cost {}", q.cost());
        q.discard();
        assert_eq!((q.bytes(), q.cost()), (0, 0));
    }

    #[test]
    fn order_is_kept_across_small_and_large_frames() {
        let (mut q, mut s) = (OutQueue::default(), Spares::default());
        q.push(Bytes::from_static(b"x"), &mut s);
        q.push(Bytes::from_static(b"a"), &mut s);
        q.push(Bytes::from(vec![b'b'; 1000]), &mut s);
        q.push(Bytes::from_static(b"c"), &mut s);
        let q = q.queued.as_deref_mut().unwrap();
        q.seal_tail();
        assert_eq!(q.frames.pop_front().as_deref(), Some(&b"x"[..]));
        let all: Vec<u8> = q.frames.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(all[0], b'a');
        assert_eq!(all[1001], b'c');
        assert_eq!(all.len(), 1002);
    }
}
