//! The permessage-deflate codec (RFC 7692 section 7.2), sans-IO: whole messages in, whole
//! messages out, on stock zlib (libz-sys, bundled and linked statically): `deflateInit2` with
//! windowBits and memLevel, both of which size zlib's state.
//!
//! - [`Compressor`] compresses one message: deflate, `Z_SYNC_FLUSH`, strip `00 00 ff ff`.
//!   It answers `None` (send the plain frame) below the threshold or when the result would
//!   not be smaller.
//! - [`Inflater`] inflates one message's payload (plus `00 00 ff ff`), never producing more
//!   than the message size limit (1009), failing corrupt data with 1007 and validating text
//!   as it goes. [`Inflater::step`] bounds the work per call so a loop can spread one big
//!   message over several turns.
//! - Both are lazy: no zlib state exists until the first message, and the state's heap use is
//!   counted exactly ([`Compressor::allocated_bytes`]) through our own zalloc/zfree.
//! - Without context takeover the state is reset after every message, so one instance can
//!   serve any number of connections in turn ([`SharedDeflate`]).

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_void};
use std::mem::size_of;

use libz_sys as z;

use super::decoder::Violation;
use super::extensions::DeflateConfig;
use super::utf8::Utf8Validator;

/// The empty stored block a sync flush ends with; stripped by the sender, re-appended by the
/// receiver.
pub const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The inflate window: 15 bits accepts a stream made with any smaller window.
const INFLATE_WINDOW_BITS: c_int = 15;

/// How one connection's (or one loop's) compressor is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressorSettings {
    /// 9-15.
    pub window_bits: u8,
    /// 1-9.
    pub mem_level: u8,
    /// 0-9.
    pub level: u8,
    /// Messages shorter than this are not compressed.
    pub threshold: usize,
    /// Reset after every message.
    pub no_context_takeover: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflaterSettings {
    /// Reset after every message (the peer resets its compressor).
    pub no_context_takeover: bool,
}

// ---------------------------------------------------------------------------------------------
// zlib streams with counted allocations

/// Bytes in front of each zlib allocation, holding its size (zfree is not told it).
const HEADER: usize = 16;

unsafe extern "C" fn counted_alloc(opaque: *mut c_void, items: c_uint, size: c_uint) -> *mut c_void {
    let Some(n) = (items as usize).checked_mul(size as usize) else { return std::ptr::null_mut() };
    let Some(layout) = n.checked_add(HEADER).and_then(|total| Layout::from_size_align(total, HEADER).ok()) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size (HEADER > 0).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return base.cast();
    }
    // SAFETY: `base` is HEADER-aligned and valid for HEADER + n bytes; `opaque` is the stream's
    // counter, which outlives the stream (see `Stream`).
    unsafe {
        base.cast::<usize>().write(layout.size());
        let counter = &*opaque.cast::<Cell<usize>>();
        counter.set(counter.get() + n);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn counted_free(opaque: *mut c_void, address: *mut c_void) {
    if address.is_null() {
        return;
    }
    // SAFETY: `address` came from `counted_alloc`, so the size is HEADER bytes before it.
    unsafe {
        let base = address.cast::<u8>().sub(HEADER);
        let total = base.cast::<usize>().read();
        let counter = &*opaque.cast::<Cell<usize>>();
        counter.set(counter.get() - (total - HEADER));
        std::alloc::dealloc(base, Layout::from_size_align_unchecked(total, HEADER));
    }
}

/// An initialised zlib stream. The `z_stream` is boxed because zlib's state points back at it;
/// the counter is boxed because the stream's `opaque` points at it.
struct Stream {
    strm: Box<z::z_stream>,
    bytes: Box<Cell<usize>>,
    is_deflate: bool,
}

impl Stream {
    fn new(is_deflate: bool, init: impl FnOnce(&mut z::z_stream) -> c_int) -> Option<Stream> {
        let bytes = Box::new(Cell::new(0usize));
        let mut strm = Box::new(z::z_stream {
            next_in: std::ptr::null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: std::ptr::null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: std::ptr::null_mut(),
            state: std::ptr::null_mut(),
            zalloc: counted_alloc,
            zfree: counted_free,
            opaque: (&*bytes as *const Cell<usize>).cast_mut().cast(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        });
        if init(&mut strm) != z::Z_OK {
            return None; // zlib frees what a failed init allocated
        }
        Some(Stream { strm, bytes, is_deflate })
    }

    fn deflate(s: &CompressorSettings) -> Option<Stream> {
        Stream::new(true, |strm| {
            // SAFETY: `strm` is a valid, boxed z_stream; version and size are the library's own.
            unsafe {
                z::deflateInit2_(
                    strm,
                    c_int::from(s.level),
                    z::Z_DEFLATED,
                    -c_int::from(s.window_bits), // negative: raw deflate, no zlib header
                    c_int::from(s.mem_level),
                    z::Z_DEFAULT_STRATEGY,
                    z::zlibVersion(),
                    size_of::<z::z_stream>() as c_int,
                )
            }
        })
    }

    fn inflate(window_bits: c_int) -> Option<Stream> {
        Stream::new(false, |strm| {
            // SAFETY: as above.
            unsafe { z::inflateInit2_(strm, -window_bits, z::zlibVersion(), size_of::<z::z_stream>() as c_int) }
        })
    }

    /// Back to the start of a stream, keeping the allocations.
    fn reset(&mut self) {
        // SAFETY: the stream was initialised by `new`.
        unsafe {
            if self.is_deflate {
                z::deflateReset(&mut *self.strm);
            } else {
                z::inflateReset(&mut *self.strm);
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.get() + size_of::<z::z_stream>() + size_of::<Cell<usize>>()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: initialised by `new`, ended exactly once; the counter is still alive (fields
        // are dropped after this).
        unsafe {
            if self.is_deflate {
                z::deflateEnd(&mut *self.strm);
            } else {
                z::inflateEnd(&mut *self.strm);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compressor

/// Compresses whole messages for one connection (context takeover) or for many in turn (no
/// context takeover: reset after each message).
pub struct Compressor {
    settings: CompressorSettings,
    stream: Option<Stream>,
}

// SAFETY: the zlib state is owned exclusively by this value and not tied to a thread; the raw
// pointers in it point only into memory the value owns.
unsafe impl Send for Compressor {}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("settings", &self.settings)
            .field("allocated_bytes", &self.allocated_bytes())
            .finish()
    }
}

impl Compressor {
    /// Allocates nothing: the zlib state is made by the first [`Compressor::compress`] that
    /// reaches the threshold.
    pub fn new(settings: CompressorSettings) -> Compressor {
        Compressor { settings, stream: None }
    }

    pub fn settings(&self) -> &CompressorSettings {
        &self.settings
    }

    /// Heap bytes held for the zlib state (0 before the first compressed message or after
    /// [`Compressor::release`]).
    pub fn allocated_bytes(&self) -> usize {
        self.stream.as_ref().map_or(0, Stream::heap_bytes)
    }

    /// Compresses one whole message into the payload of an RSV1 frame. `None` means "send it
    /// uncompressed": shorter than the threshold, not smaller once compressed, or zlib failed.
    /// With context takeover a `None` after compressing resets the stream (the peer will not
    /// see this data, so our window must not contain it either).
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if data.is_empty() || data.len() < self.settings.threshold {
            return None;
        }
        if self.stream.is_none() {
            self.stream = Some(Stream::deflate(&self.settings)?);
        }
        // Stripped of the 4 trailer bytes, a result is smaller than `data` only if the raw
        // output fits in `data.len() + 3` bytes: compression stops there.
        let out = self.compress_within(data, data.len() + 3);
        debug_assert!(out.as_ref().is_none_or(|o| o.len() < data.len()));
        out
    }

    /// Compresses with the raw output (trailer included) limited to `cap` bytes; `None` (and
    /// the stream reset) when it does not fit.
    fn compress_within(&mut self, data: &[u8], cap: usize) -> Option<Vec<u8>> {
        if self.stream.is_none() {
            self.stream = Some(Stream::deflate(&self.settings)?);
        }
        let stream = self.stream.as_mut().expect("just made");
        let result = deflate_message(stream, data, cap);
        if result.is_none() || self.settings.no_context_takeover {
            stream.reset();
        }
        result
    }

    /// Forgets the context (the next message references nothing sent before). Needed before
    /// the next message whenever the peer received a compressed frame this compressor did not
    /// make, e.g. a broadcast frame compressed once by a shared compressor.
    pub fn reset(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            stream.reset();
        }
    }

    /// Frees the zlib state; it is made again when needed. Also forgets the context.
    pub fn release(&mut self) {
        self.stream = None;
    }
}

/// Deflates `data` with a sync flush and strips the trailer; `None` if the output would need
/// more than `cap` bytes (nothing beyond that is allocated).
fn deflate_message(stream: &mut Stream, data: &[u8], cap: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity((data.len() / 8).clamp(256, 64 * 1024).min(cap));
    let strm = &mut *stream.strm;
    let mut consumed = 0usize;
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return None; // over the cap: not smaller
            }
            let grow = out.len().max(256).min(cap - out.len());
            out.reserve_exact(grow);
        }
        let in_chunk = (data.len() - consumed).min(c_uint::MAX as usize);
        let out_room = (out.capacity() - out.len()).min(cap - out.len()).min(c_uint::MAX as usize);
        let last_input = consumed + in_chunk == data.len();
        strm.next_in = data[consumed..].as_ptr().cast_mut();
        strm.avail_in = in_chunk as c_uint;
        // SAFETY: the spare capacity is valid for `out_room` bytes.
        strm.next_out = unsafe { out.as_mut_ptr().add(out.len()) };
        strm.avail_out = out_room as c_uint;
        // SAFETY: initialised stream; the pointers above are valid for the lengths given.
        let ret = unsafe { z::deflate(strm, if last_input { z::Z_SYNC_FLUSH } else { z::Z_NO_FLUSH }) };
        consumed += in_chunk - strm.avail_in as usize;
        let produced = out_room - strm.avail_out as usize;
        // SAFETY: zlib initialised `produced` bytes of the spare capacity.
        unsafe { out.set_len(out.len() + produced) };
        strm.next_in = std::ptr::null_mut();
        strm.next_out = std::ptr::null_mut();
        if ret != z::Z_OK && ret != z::Z_BUF_ERROR {
            return None;
        }
        // The flush is complete once deflate returns with output space left over.
        if last_input && consumed == data.len() && strm.avail_out > 0 {
            break;
        }
    }
    if !out.ends_with(&TRAILER) {
        return None;
    }
    out.truncate(out.len() - TRAILER.len());
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Inflater

/// Inflates whole messages, possibly a bounded amount of output per call.
pub struct Inflater {
    settings: InflaterSettings,
    stream: Option<Stream>,
    job: Option<Box<Job>>,
}

// SAFETY: as for `Compressor`.
unsafe impl Send for Inflater {}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("settings", &self.settings)
            .field("busy", &self.is_busy())
            .field("allocated_bytes", &self.allocated_bytes())
            .finish()
    }
}

struct Job {
    /// The compressed payload with the trailer appended.
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    limit: usize,
    utf8: Option<Utf8Validator>,
}

const fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

impl Inflater {
    /// Allocates nothing until the first message.
    pub fn new(settings: InflaterSettings) -> Inflater {
        Inflater { settings, stream: None, job: None }
    }

    pub fn settings(&self) -> &InflaterSettings {
        &self.settings
    }

    /// A message has been begun and not finished (or aborted).
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// Heap bytes held for the zlib state (not the message buffers).
    pub fn allocated_bytes(&self) -> usize {
        self.stream.as_ref().map_or(0, Stream::heap_bytes)
    }

    /// Bytes held for the message in progress (compressed input and output so far).
    pub fn buffered(&self) -> usize {
        self.job.as_ref().map_or(0, |j| j.input.capacity() + j.output.capacity())
    }

    /// Inflates one whole message at once: [`Inflater::begin`] plus [`Inflater::step`] until done.
    pub fn inflate(&mut self, compressed: Vec<u8>, is_text: bool, max_message_size: usize) -> Result<Vec<u8>, Violation> {
        self.begin(compressed, is_text, max_message_size);
        loop {
            if let Some(message) = self.step(usize::MAX)? {
                return Ok(message);
            }
        }
    }

    /// Starts a message: `compressed` is its reassembled payload (RSV1 message, all fragments).
    /// Text is checked for UTF-8 as it is inflated. A message still in progress is aborted
    /// (a caller bug: debug builds panic).
    pub fn begin(&mut self, mut compressed: Vec<u8>, is_text: bool, max_message_size: usize) {
        debug_assert!(self.job.is_none(), "Inflater::begin while a message is in progress");
        self.abort();
        compressed.reserve_exact(TRAILER.len());
        compressed.extend_from_slice(&TRAILER);
        let estimate = compressed.len().saturating_mul(4).clamp(4096, 256 * 1024).min(max_message_size);
        self.job = Some(Box::new(Job {
            input: compressed,
            pos: 0,
            output: Vec::with_capacity(estimate),
            limit: max_message_size,
            utf8: is_text.then(Utf8Validator::default),
        }));
    }

    /// Works on the message begun: consumes at most `budget` input bytes and produces at most
    /// `budget` output bytes (at least 1 of each), then returns. `Ok(Some(message))` when the
    /// message is complete, `Ok(None)` when more steps are needed. Errors: 1009 when the
    /// message would exceed the size limit (nothing past the limit is allocated), 1007 for
    /// corrupt data or invalid UTF-8 in text, 1011 when zlib cannot get memory or no message
    /// was begun. After an error the inflater is reset and idle.
    pub fn step(&mut self, budget: usize) -> Result<Option<Vec<u8>>, Violation> {
        let result = self.run(budget.max(1));
        match &result {
            Ok(Some(_)) => {
                self.job = None;
                if self.settings.no_context_takeover {
                    self.reset_stream();
                }
            }
            Ok(None) => {}
            Err(_) => self.abort(),
        }
        result
    }

    /// Moves this inflater's whole state (the message in progress and the zlib stream) into
    /// a new one, leaving this one idle with no stream (made again when next needed). A
    /// shared inflater hands a long message to its connection this way, so the message can
    /// go on over later loop turns while other connections use the shared one.
    pub fn take(&mut self) -> Inflater {
        let settings = self.settings;
        std::mem::replace(self, Inflater::new(settings))
    }

    /// Drops the message in progress (e.g. the connection went away) and resets the state:
    /// the context is lost, so only use this when no more messages of that stream follow.
    pub fn abort(&mut self) {
        if self.job.take().is_some() {
            self.reset_stream();
        }
    }

    /// Frees the zlib state (and any message in progress); it is made again when needed.
    pub fn release(&mut self) {
        self.job = None;
        self.stream = None;
    }

    fn reset_stream(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            stream.reset();
        }
    }

    fn run(&mut self, budget: usize) -> Result<Option<Vec<u8>>, Violation> {
        let Some(job) = self.job.as_deref_mut() else {
            return Err(violation(1011, "no compressed message in progress"));
        };
        if self.stream.is_none() {
            self.stream = Some(
                Stream::inflate(INFLATE_WINDOW_BITS).ok_or(violation(1011, "cannot allocate the inflate state"))?,
            );
        }
        let strm = &mut *self.stream.as_mut().expect("just made").strm;
        let (mut taken, mut made) = (0usize, 0usize);
        let mut probe = [0u8; 1];
        loop {
            if job.pos == job.input.len() {
                return finish(job).map(Some);
            }
            if taken >= budget || made >= budget {
                return Ok(None);
            }
            let in_chunk = (job.input.len() - job.pos).min(budget - taken).min(c_uint::MAX as usize);
            let at_limit = job.output.len() >= job.limit;
            if !at_limit && job.output.len() == job.output.capacity() {
                let len = job.output.len();
                let target = len.saturating_mul(2).max(4096).min(job.limit);
                job.output.reserve_exact(target - len);
            }
            // At the limit, a one-byte probe tells whether the message has more to give.
            let (next_out, out_room) = if at_limit {
                (probe.as_mut_ptr(), 1)
            } else {
                let room = (job.output.capacity() - job.output.len()).min(budget - made).min(c_uint::MAX as usize);
                // SAFETY: within the spare capacity.
                (unsafe { job.output.as_mut_ptr().add(job.output.len()) }, room)
            };
            strm.next_in = job.input[job.pos..].as_mut_ptr();
            strm.avail_in = in_chunk as c_uint;
            strm.next_out = next_out;
            strm.avail_out = out_room as c_uint;
            // SAFETY: initialised stream; both buffers are valid for the lengths given.
            let ret = unsafe { z::inflate(strm, z::Z_SYNC_FLUSH) };
            let used = in_chunk - strm.avail_in as usize;
            let produced = out_room - strm.avail_out as usize;
            strm.next_in = std::ptr::null_mut();
            strm.next_out = std::ptr::null_mut();
            job.pos += used;
            taken += used;
            if at_limit {
                if produced > 0 {
                    return Err(violation(1009, "inflated message exceeds the size limit"));
                }
            } else {
                // SAFETY: zlib initialised `produced` bytes of the spare capacity.
                unsafe { job.output.set_len(job.output.len() + produced) };
                made += produced;
                if let Some(utf8) = job.utf8.as_mut() {
                    if !utf8.advance(&job.output) {
                        return Err(violation(1007, "invalid UTF-8 in text message"));
                    }
                }
            }
            match ret {
                // Both buffers had room, so no progress means the data cannot go on.
                z::Z_OK | z::Z_BUF_ERROR if used == 0 && produced == 0 => {
                    return Err(violation(1007, "invalid compressed data"));
                }
                z::Z_OK | z::Z_BUF_ERROR => {}
                z::Z_STREAM_END => {
                    // A final block (BFINAL=1) may end the message (RFC 7692 7.2.3.4); after it
                    // only the empty stored block of 7.2.1 (`00`, then our `00 00 ff ff`) may
                    // follow. The next message is then a new stream.
                    const EMPTY_STORED: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];
                    if !EMPTY_STORED.ends_with(&job.input[job.pos..]) {
                        return Err(violation(1007, "data after the final deflate block"));
                    }
                    job.pos = job.input.len();
                    // SAFETY: initialised stream.
                    unsafe { z::inflateReset(strm) };
                }
                z::Z_MEM_ERROR => return Err(violation(1011, "out of memory while inflating")),
                _ => return Err(violation(1007, "invalid compressed data")),
            }
        }
    }
}

fn finish(job: &mut Job) -> Result<Vec<u8>, Violation> {
    if let Some(utf8) = job.utf8 {
        if !utf8.is_complete(&job.output) {
            return Err(violation(1007, "text message ends inside a UTF-8 sequence"));
        }
    }
    let mut output = std::mem::take(&mut job.output);
    if output.capacity() - output.len() > 64 * 1024 {
        output.shrink_to_fit();
    }
    Ok(output)
}

// ---------------------------------------------------------------------------------------------
// Shared (per loop) contexts

/// One loop's codec state for connections without context takeover: compressors (one per
/// window size actually used, made lazily) and one inflater, all reset after every message.
/// An inflater mid-message must finish before another connection's message starts on it: a
/// message that does not finish in one step is moved to its connection with [`Inflater::take`].
pub struct SharedDeflate {
    level: u8,
    mem_level: u8,
    threshold: usize,
    compressors: [Option<Compressor>; 7],
    inflater: Inflater,
}

impl std::fmt::Debug for SharedDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDeflate").field("allocated_bytes", &self.allocated_bytes()).finish()
    }
}

impl SharedDeflate {
    pub fn new(config: &DeflateConfig) -> SharedDeflate {
        SharedDeflate {
            level: config.level,
            mem_level: config.mem_level,
            threshold: config.threshold,
            compressors: Default::default(),
            inflater: Inflater::new(InflaterSettings { no_context_takeover: true }),
        }
    }

    /// The shared compressor for a window size (9-15, clamped), e.g.
    /// `DeflateParams::compressor_settings(..).window_bits`.
    pub fn compressor(&mut self, window_bits: u8) -> &mut Compressor {
        let bits = window_bits.clamp(9, 15);
        let settings = CompressorSettings {
            window_bits: bits,
            mem_level: self.mem_level,
            level: self.level,
            threshold: self.threshold,
            no_context_takeover: true,
        };
        self.compressors[usize::from(bits - 9)].get_or_insert_with(|| Compressor::new(settings))
    }

    pub fn inflater(&mut self) -> &mut Inflater {
        &mut self.inflater
    }

    pub fn allocated_bytes(&self) -> usize {
        self.compressors.iter().flatten().map(Compressor::allocated_bytes).sum::<usize>() + self.inflater.allocated_bytes()
    }
}

/// Heap bytes of a fresh zlib state: a compressor with these parameters after its first
/// message, or (`None`) the inflater after its first message. For sizing and reports.
pub fn measure_state_bytes(compressor: Option<(u8, u8)>) -> usize {
    let sample: Vec<u8> = (0..4096u32).map(|i| b"permessage-deflate "[(i % 19) as usize]).collect();
    match compressor {
        Some((window_bits, mem_level)) => {
            let mut c = Compressor::new(CompressorSettings { window_bits, mem_level, level: 6, threshold: 0, no_context_takeover: false });
            c.compress(&sample);
            c.allocated_bytes()
        }
        None => {
            let mut c = Compressor::new(CompressorSettings { window_bits: 15, mem_level: 8, level: 6, threshold: 0, no_context_takeover: true });
            let payload = c.compress(&sample).expect("compressible");
            let mut i = Inflater::new(InflaterSettings { no_context_takeover: false });
            i.inflate(payload, false, usize::MAX).expect("round trip");
            i.allocated_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(window_bits: u8, no_context_takeover: bool) -> CompressorSettings {
        CompressorSettings { window_bits, mem_level: 8, level: 6, threshold: 0, no_context_takeover }
    }

    fn text(n: usize) -> Vec<u8> {
        let words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ", "theta "];
        let mut out = Vec::with_capacity(n + 8);
        let mut x = 12345u32;
        while out.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
        }
        out.truncate(n);
        out
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9u32;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn inflater(no_context_takeover: bool) -> Inflater {
        Inflater::new(InflaterSettings { no_context_takeover })
    }

    #[test]
    fn rfc7692_section_7_2_3_examples() {
        // 7.2.3.1: "Hello" in one compressed block.
        // ("Hello" does not shrink, so this bypasses the not-smaller rule.)
        let mut c = Compressor::new(settings(15, false));
        assert_eq!(c.compress(b"Hello"), None);
        assert_eq!(c.compress_within(b"Hello", 64).unwrap(), [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // 7.2.3.2: the second "Hello" with the window shared.
        assert_eq!(c.compress_within(b"Hello", 64).unwrap(), [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut i = inflater(false);
        assert_eq!(i.inflate(vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], true, 100).unwrap(), b"Hello");
        assert_eq!(i.inflate(vec![0xf2, 0x00, 0x11, 0x00, 0x00], true, 100).unwrap(), b"Hello");
        // Without takeover the second message is compressed afresh.
        let mut c = Compressor::new(settings(15, true));
        c.compress_within(b"Hello", 64).unwrap();
        assert_eq!(c.compress_within(b"Hello", 64).unwrap(), [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // 7.2.3.3: a stored (uncompressed) block; 7.2.3.4: BFINAL set; 7.2.3.5: two blocks.
        let stored = vec![0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
        let bfinal = vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let two = vec![0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
        let mut i = inflater(false);
        for payload in [stored, bfinal, two] {
            assert_eq!(i.inflate(payload, true, 100).unwrap(), b"Hello");
        }
        // After a final block, the context restarts: a plain "Hello" stream still works.
        assert_eq!(i.inflate(vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], true, 100).unwrap(), b"Hello");
    }

    #[test]
    fn round_trips_with_and_without_context_takeover_for_every_window() {
        let messages: Vec<Vec<u8>> = (0..6).map(|i| text(2000 + i * 700)).collect();
        for bits in 9..=15 {
            for takeover in [true, false] {
                let mut c = Compressor::new(settings(bits, !takeover));
                let mut i = inflater(!takeover);
                let mut total = 0;
                for m in &messages {
                    let payload = c.compress(m).expect("text compresses");
                    assert!(payload.len() < m.len());
                    total += payload.len();
                    assert_eq!(&i.inflate(payload, true, 1 << 20).unwrap(), m, "bits {bits}, takeover {takeover}");
                }
                assert!(total > 0);
            }
        }
        // Takeover pays off on repeated content: the same message again is tiny.
        let m = text(5000);
        let mut c = Compressor::new(settings(15, false));
        let first = c.compress(&m).unwrap().len();
        let second = c.compress(&m).unwrap().len();
        assert!(second * 10 < first, "{second} vs {first}");
        let mut fresh = Compressor::new(settings(15, true));
        fresh.compress(&m).unwrap();
        assert_eq!(fresh.compress(&m).unwrap().len(), first);
    }

    #[test]
    fn interoperates_with_an_independent_deflate_implementation() {
        use miniz_oxide::deflate::compress_to_vec;
        use miniz_oxide::inflate::decompress_to_vec;
        // Our messages, with context takeover, are one raw deflate stream: the payloads with
        // their trailers, then an empty final block (03 00) to close it.
        let messages: Vec<Vec<u8>> = (0..4).map(|i| text(3000 + 1000 * i)).collect();
        for bits in [9, 12, 15] {
            let mut c = Compressor::new(settings(bits, false));
            let mut stream = Vec::new();
            for m in &messages {
                stream.extend(c.compress(m).unwrap());
                stream.extend_from_slice(&TRAILER);
            }
            stream.extend_from_slice(&[0x03, 0x00]);
            assert_eq!(decompress_to_vec(&stream).unwrap(), messages.concat(), "window {bits}");
        }
        // Their messages, each a complete stream ending in a final block (RFC 7692 7.2.3.4),
        // inflated by us, with a stored-block variant too.
        let mut i = inflater(true);
        for (level, m) in [(6, &messages[0]), (1, &messages[1]), (0, &messages[2])] {
            let payload = compress_to_vec(m, level);
            assert_eq!(&i.inflate(payload, true, 1 << 20).unwrap(), m, "level {level}");
        }
    }

    #[test]
    fn a_small_window_stream_never_reaches_back_further_than_its_window() {
        // 9 bits = 512 bytes (zlib reaches back at most 512 - 262): a repeat 900 bytes back
        // cannot be referenced, one 200 bytes back can; with 15 bits both can.
        let block = noise(200);
        let mut far = block.clone();
        far.extend(noise(700).iter().map(|b| b ^ 0x5a));
        far.extend_from_slice(&block);
        let near: Vec<u8> = block.iter().chain(block.iter()).copied().collect();
        let len = |data: &[u8], bits| Compressor::new(settings(bits, true)).compress(data).map_or(usize::MAX, |p| p.len());
        assert!(len(&near, 9) < 260, "{}", len(&near, 9));
        assert!(len(&far, 9) > 1090, "{}", len(&far, 9));
        assert!(len(&far, 15) < 1050, "{}", len(&far, 15));
    }

    #[test]
    fn threshold_and_not_smaller_rule() {
        let mut c = Compressor::new(CompressorSettings { threshold: 1024, ..settings(15, false) });
        assert_eq!(c.compress(&text(1023)), None);
        assert_eq!(c.allocated_bytes(), 0, "nothing allocated below the threshold");
        assert!(c.compress(&text(1024)).is_some());
        let mut c = Compressor::new(settings(15, false));
        assert_eq!(c.compress(b""), None);
        assert_eq!(c.compress(b"a"), None, "one byte cannot shrink");
        assert_eq!(c.compress(&noise(10_000)), None, "random data does not shrink");
        // After a refused message the context was reset, so the peer stays in step.
        let mut i = inflater(false);
        for m in [text(3000), text(3000)] {
            let p = c.compress(&m).unwrap();
            assert_eq!(i.inflate(p, false, 1 << 20).unwrap(), m);
        }
        let _ = c.compress(&noise(5000));
        let m = text(3000);
        assert_eq!(i.inflate(c.compress(&m).unwrap(), false, 1 << 20).unwrap(), m);
    }

    #[test]
    fn lazy_state_release_and_reset() {
        let mut c = Compressor::new(settings(15, false));
        let mut i = inflater(false);
        assert_eq!((c.allocated_bytes(), i.allocated_bytes()), (0, 0));
        let m = text(4000);
        let p = c.compress(&m).unwrap();
        assert!(c.allocated_bytes() > 100_000);
        assert_eq!(i.inflate(p, false, 1 << 20).unwrap(), m);
        assert!(i.allocated_bytes() > 32 * 1024);
        c.release();
        i.release();
        assert_eq!((c.allocated_bytes(), i.allocated_bytes()), (0, 0));
        // A released (or reset) compressor starts a stream any inflater understands.
        let p = c.compress(&m).unwrap();
        assert_eq!(i.inflate(p, false, 1 << 20).unwrap(), m);
    }

    #[test]
    fn shared_contexts_serve_many_connections_in_turn() {
        let config = DeflateConfig { threshold: 0, ..DeflateConfig::default() };
        let mut shared = SharedDeflate::new(&config);
        assert_eq!(shared.allocated_bytes(), 0);
        let messages: Vec<Vec<u8>> = (0..5).map(|i| text(1500 + 300 * i)).collect();
        // Each "connection" has its own fresh peer inflater: output must not depend on history.
        for m in &messages {
            for bits in [15, 10] {
                let p = shared.compressor(bits).compress(m).unwrap();
                assert_eq!(inflater(true).inflate(p.clone(), true, 1 << 20).unwrap(), *m);
                assert_eq!(shared.inflater().inflate(p, true, 1 << 20).unwrap(), *m);
            }
        }
        assert!(shared.allocated_bytes() > 0);
        assert!(!shared.inflater().is_busy());
    }

    #[test]
    fn corrupt_data_is_1007_and_the_inflater_recovers() {
        let mut i = inflater(true);
        for bad in [vec![0xff; 16], vec![0x07, 0x00], vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x12]] {
            assert_eq!(i.inflate(bad, false, 1 << 20).unwrap_err().code, 1007);
            assert!(!i.is_busy());
        }
        // Data after a final block is refused.
        let after_final = vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(i.inflate(after_final, false, 1 << 20).unwrap_err().code, 1007);
        // Invalid UTF-8 inside a compressed text message, early in a long one.
        let mut bad_text = vec![b'a'; 10];
        bad_text.push(0xff);
        bad_text.extend(text(200_000));
        let p = Compressor::new(settings(15, true)).compress(&bad_text).unwrap();
        i.begin(p.clone(), true, 1 << 20);
        assert_eq!(i.step(4096).unwrap_err().code, 1007, "rejected in the first step");
        assert_eq!(i.inflate(p.clone(), false, 1 << 20).unwrap(), bad_text, "binary is not checked");
        // A truncated UTF-8 sequence at the end.
        let p = Compressor::new(settings(15, true)).compress(&[&text(2000)[..], &[0xe2, 0x82]].concat()).unwrap();
        assert_eq!(i.inflate(p, true, 1 << 20).unwrap_err().code, 1007);
        let m = text(3000);
        let p = Compressor::new(settings(15, true)).compress(&m).unwrap();
        assert_eq!(i.inflate(p, true, 1 << 20).unwrap(), m);
        assert_eq!(i.step(10).unwrap_err().code, 1011, "no message begun");
    }

    #[test]
    fn stepping_bounds_the_work_per_call() {
        let m = text(1 << 20);
        let p = Compressor::new(settings(15, true)).compress(&m).unwrap();
        let mut i = inflater(false);
        i.begin(p, true, 2 << 20);
        let mut steps = 0;
        let mut last_len = 0;
        let out = loop {
            steps += 1;
            match i.step(64 * 1024).unwrap() {
                Some(out) => break out,
                None => {
                    let len = i.job.as_ref().unwrap().output.len();
                    assert!(len - last_len <= 64 * 1024, "a step produced {}", len - last_len);
                    last_len = len;
                }
            }
        };
        assert_eq!(out, m);
        assert!(steps >= 16, "{steps} steps");
        assert!(!i.is_busy());
    }

    #[test]
    fn size_limit_exactly() {
        let m = text(10_000);
        let p = Compressor::new(settings(15, true)).compress(&m).unwrap();
        let mut i = inflater(true);
        assert_eq!(i.inflate(p.clone(), true, 10_000).unwrap(), m, "exactly at the limit");
        assert_eq!(i.inflate(p.clone(), true, 9_999).unwrap_err().code, 1009);
        i.begin(p, true, 9_999);
        let err = loop {
            match i.step(100) {
                Ok(None) => assert!(i.job.as_ref().unwrap().output.capacity() <= 9_999),
                Ok(Some(_)) => panic!("over the limit"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code, 1009);
    }

    // Peak heap use of this thread, for the bomb test (other tests run on other threads).
    struct Counting;
    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }
    fn track(delta: isize) {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + delta);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
    }
    // SAFETY: forwards to the system allocator.
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            track(layout.size() as isize);
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            track(-(layout.size() as isize));
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            track(new_size as isize - layout.size() as isize);
            unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
        }
    }
    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    #[test]
    fn decompression_bomb_stops_at_the_limit_with_bounded_memory() {
        let bomb = {
            let zeros = vec![0u8; 100 << 20];
            Compressor::new(settings(15, true)).compress(&zeros).unwrap()
        };
        assert!(bomb.len() < 200 * 1024, "100 MiB of zeros in {} bytes", bomb.len());
        let limit = 1 << 20;
        let live_before = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(live_before));
        let mut i = inflater(false);
        let err = i.inflate(bomb.clone(), false, limit).unwrap_err();
        assert_eq!(err.code, 1009);
        let peak = PEAK.with(Cell::get) - live_before;
        // The output (at most the limit), the input copy and the zlib state; never 100 MiB.
        let bound = limit + bomb.len() + 128 * 1024;
        assert!(peak as usize <= bound, "peak {peak} > {bound}");
        // Stepped, too: the same verdict, each step bounded.
        i.begin(bomb, false, limit);
        let mut steps = 0;
        let err = loop {
            steps += 1;
            match i.step(256 * 1024) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("bomb accepted"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code, 1009);
        assert!(steps >= 4);
    }

    #[test]
    fn zlib_state_bytes_follow_window_bits_and_mem_level() {
        // zlib's rule of thumb: deflate (1 << (wbits + 2)) + (1 << (memLevel + 9)), inflate
        // (1 << wbits) + ~7 KiB. Check the real library stays near it (printed by
        // `cargo run --release --example deflate_memory`).
        for bits in 9..=15u8 {
            for mem in [1u8, 4, 8, 9] {
                let measured = measure_state_bytes(Some((bits, mem)));
                let formula = (1usize << (bits + 2)) + (1usize << (mem + 9));
                assert!(measured >= formula * 9 / 10, "w{bits} m{mem}: {measured} < {formula}");
                assert!(measured <= formula + formula / 4 + 16 * 1024, "w{bits} m{mem}: {measured} >> {formula}");
            }
        }
        assert!(measure_state_bytes(Some((15, 8))) > measure_state_bytes(Some((9, 1))) * 10);
        let inflate = measure_state_bytes(None);
        assert!((32 * 1024..=56 * 1024).contains(&inflate), "inflate state {inflate}");
    }
}
