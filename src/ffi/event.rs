//! `wsembed_event`: what `wsembed_server_poll` fills in, and the storage that keeps its
//! pointers valid until the next poll.

use std::ffi::{c_char, c_void, CString};

use super::{arg_out, ffi_boundary, wsembed_result};
use crate::error::Error;
use crate::event::Event;

/// Kind of an event.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsembed_event_kind {
    /// Handshake done: `path`, `peer`, `protocol`, `headers` are set.
    WSEMBED_EVENT_OPEN = 1,
    /// A whole text message (valid UTF-8) in `data`/`len`.
    WSEMBED_EVENT_TEXT = 2,
    /// A whole binary message in `data`/`len`.
    WSEMBED_EVENT_BINARY = 3,
    /// The connection ended: `close_code`, `clean`, reason in `data`/`len`. Last event of `conn`.
    WSEMBED_EVENT_CLOSE = 4,
    /// The send queue fell below half of `max_buffered_bytes` after a WOULD_BLOCK.
    WSEMBED_EVENT_DRAIN = 5,
    /// An upgrade request awaits approval (option `approve_handshakes`): `path`, `peer`,
    /// `headers` and `protocols` are set. Answer with `wsembed_server_accept` or
    /// `wsembed_server_reject`; OPEN follows an accept.
    WSEMBED_EVENT_HANDSHAKE = 6,
    /// The peer sent a ping (already answered); payload in `data`/`len`. Only with option
    /// `ping_events`.
    WSEMBED_EVENT_PING = 7,
    /// The peer sent a pong; payload in `data`/`len`. Only with option `ping_events`.
    WSEMBED_EVENT_PONG = 8,
    /// The Redis bridge (option `redis_url`) is connected; `conn` is 0.
    WSEMBED_EVENT_BRIDGE_UP = 9,
    /// The Redis bridge lost Redis (or could not reach it at start); the reason in
    /// `data`/`len`; `conn` is 0. Local delivery goes on; publishes to other servers are
    /// dropped and counted until BRIDGE_UP.
    WSEMBED_EVENT_BRIDGE_DOWN = 10,
    /// A client connection (`wsembed_server_connect`) failed or lost its server and dials
    /// again in `delay_ms` ms: `attempt`, `failure` (a `WSEMBED_FAILURE_*` number),
    /// `http_status` (for an HTTP refusal, or the close code when an open connection ended),
    /// the reason text in `data`/`len`.
    WSEMBED_EVENT_RECONNECTING = 11,
    /// A client connection failed for good (its last event): `failure`, `http_status`, the
    /// reason in `data`/`len`. A client with reconnect on always ends with it (after its
    /// CLOSE when an open connection ends for good); one without ends with CLOSE once open.
    WSEMBED_EVENT_FAILED = 12,
}

/// Why a client connection attempt failed (`wsembed_event.failure`). Stable numbers.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsembed_failure {
    WSEMBED_FAILURE_NONE = 0,
    /// The host closed or terminated it, or the server stopped: never retried.
    WSEMBED_FAILURE_CLOSED_BY_HOST = 1,
    WSEMBED_FAILURE_CONNECTION_REFUSED = 2,
    /// Connecting, TLS or the upgrade took longer than the client's timeouts.
    WSEMBED_FAILURE_TIMEOUT = 3,
    /// The host name did not resolve.
    WSEMBED_FAILURE_DNS = 4,
    /// Another network error (reset, unreachable, stream ended during the handshake).
    WSEMBED_FAILURE_NETWORK = 5,
    /// The server's certificate is not trusted or names another host: never retried.
    WSEMBED_FAILURE_TLS_VERIFICATION = 6,
    WSEMBED_FAILURE_TLS = 7,
    /// The server answered with `http_status` instead of 101 (5xx/408/429 are retried).
    WSEMBED_FAILURE_HTTP_STATUS = 8,
    /// A 101 that breaks RFC 6455 (bad accept key, subprotocol or extension not offered).
    WSEMBED_FAILURE_BAD_HANDSHAKE = 9,
    /// The open connection ended with close code `http_status` (1001/1006/1011-1014 retried).
    WSEMBED_FAILURE_CLOSED = 10,
}

/// One request header of an OPEN event (both strings NUL-terminated).
#[repr(C)]
pub struct wsembed_header {
    pub name: *const c_char,
    pub value: *const c_char,
}

/// One event. Every pointer in it points into memory owned by the server and stays valid
/// until the next `wsembed_server_poll` (or `wsembed_server_free`) on the same server; copy
/// what you need to keep. Pointers not used by the event's kind are NULL.
#[repr(C)]
pub struct wsembed_event {
    pub kind: wsembed_event_kind,
    /// CLOSE: the close code (1005 if the peer sent none, 1006 if TCP dropped).
    pub close_code: u16,
    /// CLOSE: true when the close handshake completed.
    pub clean: bool,
    /// The connection this event is about (never 0).
    pub conn: u64,
    /// TEXT/BINARY: the message; CLOSE: the reason (UTF-8). `data[len]` is not part of it.
    pub data: *const u8,
    pub len: usize,
    /// OPEN/HANDSHAKE: request target with query string, NUL-terminated.
    pub path: *const c_char,
    /// OPEN/HANDSHAKE: peer address "ip:port", NUL-terminated.
    pub peer: *const c_char,
    /// OPEN: chosen subprotocol, or NULL.
    pub protocol: *const c_char,
    /// OPEN: the negotiated extension as sent in the handshake (e.g. "permessage-deflate;
    /// server_no_context_takeover; client_no_context_takeover"), or NULL for none.
    pub extensions: *const c_char,
    /// OPEN/HANDSHAKE: request headers in the order received (Cookie, Authorization, Origin...).
    pub headers: *const wsembed_header,
    pub header_count: usize,
    /// HANDSHAKE: the subprotocols the client offered, in its order (`protocol_count`
    /// NUL-terminated strings; NULL when none).
    pub protocols: *const *const c_char,
    pub protocol_count: usize,
    /// What the host attached with `wsembed_server_set_user_data` (NULL if nothing), in every
    /// event of the connection after the call, its CLOSE included.
    pub user_data: *mut c_void,
    /// RECONNECTING: the retry's number (1, 2, ... since the connection last stayed open).
    pub attempt: u32,
    /// RECONNECTING: milliseconds until the next dial.
    pub delay_ms: u32,
    /// RECONNECTING/FAILED: a `wsembed_failure` number.
    pub failure: u32,
    /// RECONNECTING/FAILED: the HTTP status of a refusal (failure HTTP_STATUS) or the close
    /// code (failure CLOSED); 0 otherwise.
    pub http_status: u16,
}

impl wsembed_event {
    /// An event of `kind` about `conn` with every other field empty (NULL, 0).
    pub(crate) fn blank(kind: wsembed_event_kind, conn: u64, user_data: *mut c_void) -> Self {
        wsembed_event {
            kind,
            close_code: 0,
            clean: false,
            conn,
            data: std::ptr::null(),
            len: 0,
            path: std::ptr::null(),
            peer: std::ptr::null(),
            protocol: std::ptr::null(),
            extensions: std::ptr::null(),
            headers: std::ptr::null(),
            header_count: 0,
            protocols: std::ptr::null(),
            protocol_count: 0,
            user_data,
            attempt: 0,
            delay_ms: 0,
            failure: 0,
            http_status: 0,
        }
    }
}

/// Copies the payloads (`data`/`len`) of `events[0..count]`, as `wsembed_server_poll` filled
/// them in, into `buf` one after the other, and points each copied event's `data` at its copy
/// in `buf`, so a host can take a whole batch's payloads in one call rather than one copy per
/// event. Copied, in order: every event with `0 < len <= max_len` while it still fits in the
/// `capacity` bytes of `buf`; any other event is left untouched (its `data` still points into
/// the server's memory, until the next poll). Writes the bytes used to `*used`.
///
/// Ownership: `buf` is the caller's, and so are the copies; the rewritten `data` pointers are
/// only as valid as `buf` is. `buf` must not overlap the payloads (which are the server's
/// memory) nor `events`. `events` may be NULL when `count` is 0, `buf` when `capacity` is 0.
#[no_mangle]
pub extern "C" fn wsembed_event_copy_payloads(
    events: *mut wsembed_event,
    count: usize,
    max_len: usize,
    buf: *mut u8,
    capacity: usize,
    used: *mut usize,
) -> wsembed_result {
    ffi_boundary! {
        let used = arg_out!(used);
        if count > 0 && events.is_null() {
            return Err(Error::NullArgument("events"));
        }
        if capacity > 0 && buf.is_null() {
            return Err(Error::NullArgument("buf"));
        }
        let events: &mut [wsembed_event] = if count == 0 {
            &mut []
        } else {
            // SAFETY: the caller provides `count` events at `events` (header contract).
            unsafe { std::slice::from_raw_parts_mut(events, count) }
        };
        let mut at = 0usize;
        for event in events {
            let len = event.len;
            if len == 0 || len > max_len || len > capacity - at || event.data.is_null() {
                continue;
            }
            // SAFETY: `data` points to `len` readable bytes (as poll filled it in), `buf` has
            // room for `capacity` bytes and at + len <= capacity; the caller promises no overlap.
            unsafe {
                let dst = buf.add(at);
                std::ptr::copy_nonoverlapping(event.data, dst, len);
                event.data = dst;
            }
            at += len;
        }
        // SAFETY: checked non-NULL.
        unsafe { *used = at };
        Ok(())
    }
}

/// Owns what the last batch's pointers point to.
#[derive(Default)]
pub(crate) struct Batch {
    pub events: Vec<Event>,
    strings: Vec<CString>,
    headers: Vec<Vec<wsembed_header>>,
    lists: Vec<Vec<*const c_char>>,
}

// The raw pointers inside point into `strings`/`events`, owned by the same Batch.
unsafe impl Send for Batch {}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

impl Batch {
    /// Forgets the previous batch (invalidating its pointers).
    pub fn clear(&mut self) {
        self.events.clear();
        self.strings.clear();
        self.headers.clear();
        self.lists.clear();
    }

    fn keep(&mut self, s: &str) -> *const c_char {
        let c = c_string(s);
        let ptr = c.as_ptr(); // stable: the CString's heap buffer does not move with the Vec
        self.strings.push(c);
        ptr
    }

    fn describe_request(&mut self, out: &mut wsembed_event, peer: std::net::SocketAddr, path: &str, headers: &[(String, String)]) {
        out.peer = self.keep(&peer.to_string());
        out.path = self.keep(path);
        let list: Vec<wsembed_header> =
            headers.iter().map(|(n, v)| wsembed_header { name: self.keep(n), value: self.keep(v) }).collect();
        out.headers = list.as_ptr();
        out.header_count = list.len();
        self.headers.push(list);
    }

    /// Describes event `i` of the batch for C; `user_data` is the connection's host value.
    pub fn describe(&mut self, i: usize, user_data: usize) -> wsembed_event {
        let mut out = wsembed_event::blank(wsembed_event_kind::WSEMBED_EVENT_DRAIN, self.events[i].conn(), user_data as *mut c_void);
        match &self.events[i] {
            Event::Open { peer, path, protocol, extensions, headers, .. } => {
                let (peer, path, protocol, extensions, headers) =
                    (*peer, path.clone(), protocol.clone(), extensions.clone(), headers.clone());
                out.kind = wsembed_event_kind::WSEMBED_EVENT_OPEN;
                self.describe_request(&mut out, peer, &path, &headers);
                out.protocol = protocol.as_deref().map_or(std::ptr::null(), |p| self.keep(p));
                out.extensions = extensions.as_deref().map_or(std::ptr::null(), |e| self.keep(e));
            }
            Event::Handshake { peer, path, headers, protocols, .. } => {
                let (peer, path, headers, protocols) = (*peer, path.clone(), headers.clone(), protocols.clone());
                out.kind = wsembed_event_kind::WSEMBED_EVENT_HANDSHAKE;
                self.describe_request(&mut out, peer, &path, &headers);
                if !protocols.is_empty() {
                    let list: Vec<*const c_char> = protocols.iter().map(|p| self.keep(p)).collect();
                    out.protocols = list.as_ptr();
                    out.protocol_count = list.len();
                    self.lists.push(list);
                }
            }
            Event::Message { data, is_text, .. } => {
                out.kind = if *is_text { wsembed_event_kind::WSEMBED_EVENT_TEXT } else { wsembed_event_kind::WSEMBED_EVENT_BINARY };
                out.data = data.as_ptr();
                out.len = data.len();
            }
            Event::Close { code, reason, clean, .. } => {
                out.kind = wsembed_event_kind::WSEMBED_EVENT_CLOSE;
                out.close_code = *code;
                out.clean = *clean;
                out.data = reason.as_ptr();
                out.len = reason.len();
            }
            Event::Drain { .. } => {}
            Event::BridgeUp => out.kind = wsembed_event_kind::WSEMBED_EVENT_BRIDGE_UP,
            Event::Reconnecting { attempt, delay, failure, .. } => {
                out.kind = wsembed_event_kind::WSEMBED_EVENT_RECONNECTING;
                out.attempt = *attempt;
                out.delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
                out.failure = failure.code;
                out.http_status = failure.status;
                out.data = failure.text.as_ptr();
                out.len = failure.text.len();
            }
            Event::Failed { failure, .. } => {
                out.kind = wsembed_event_kind::WSEMBED_EVENT_FAILED;
                out.failure = failure.code;
                out.http_status = failure.status;
                out.data = failure.text.as_ptr();
                out.len = failure.text.len();
            }
            Event::BridgeDown { reason } => {
                out.kind = wsembed_event_kind::WSEMBED_EVENT_BRIDGE_DOWN;
                out.data = reason.as_ptr();
                out.len = reason.len();
            }
            Event::Ping { data, .. } | Event::Pong { data, .. } => {
                out.kind = match &self.events[i] {
                    Event::Ping { .. } => wsembed_event_kind::WSEMBED_EVENT_PING,
                    _ => wsembed_event_kind::WSEMBED_EVENT_PONG,
                };
                out.data = data.as_ptr();
                out.len = data.len();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &[u8]) -> wsembed_event {
        let mut e = wsembed_event::blank(wsembed_event_kind::WSEMBED_EVENT_BINARY, 1, std::ptr::null_mut());
        e.data = if data.is_empty() { std::ptr::null() } else { data.as_ptr() };
        e.len = data.len();
        e
    }

    #[test]
    fn copy_payloads_packs_what_fits_and_leaves_the_rest() {
        let (a, b, long, c, d) = (b"abc".to_vec(), b"12345678".to_vec(), vec![7u8; 200], b"xy".to_vec(), b"zzzz".to_vec());
        let mut events = [event(&a), event(b""), event(&long), event(&b), event(&d), event(&c)];
        let mut buf = [0u8; 14]; // abc + 12345678 + xy = 13; zzzz no longer fits, xy still does
        let mut used = 0;
        let rc = wsembed_event_copy_payloads(events.as_mut_ptr(), events.len(), 100, buf.as_mut_ptr(), buf.len(), &mut used);
        assert_eq!(rc, wsembed_result::WSEMBED_OK);
        assert_eq!(used, 13);
        assert_eq!(&buf[..13], b"abc12345678xy");
        let base = buf.as_ptr();
        assert_eq!(events[0].data, base);
        assert!(events[1].data.is_null() && events[1].len == 0);
        assert_eq!(events[2].data, long.as_ptr(), "longer than max_len: left in place");
        assert_eq!(events[3].data, base.wrapping_add(3));
        assert_eq!(events[4].data, d.as_ptr(), "did not fit: left in place");
        assert_eq!(events[5].data, base.wrapping_add(11));
        assert!(events.iter().zip([3, 0, 200, 8, 4, 2]).all(|(e, n)| e.len == n), "lengths unchanged");
    }

    #[test]
    fn copy_payloads_checks_its_arguments() {
        let mut used = 5;
        let mut buf = [0u8; 4];
        let no_used = std::ptr::null_mut();
        assert_eq!(wsembed_event_copy_payloads(std::ptr::null_mut(), 0, 10, buf.as_mut_ptr(), 4, no_used), wsembed_result::WSEMBED_ERR_NULL_ARGUMENT);
        assert_eq!(wsembed_event_copy_payloads(std::ptr::null_mut(), 1, 10, buf.as_mut_ptr(), 4, &mut used), wsembed_result::WSEMBED_ERR_NULL_ARGUMENT);
        let mut events = [event(b"ab")];
        assert_eq!(wsembed_event_copy_payloads(events.as_mut_ptr(), 1, 10, std::ptr::null_mut(), 4, &mut used), wsembed_result::WSEMBED_ERR_NULL_ARGUMENT);
        assert_eq!(used, 5, "untouched on failure");
        assert_eq!(wsembed_event_copy_payloads(std::ptr::null_mut(), 0, 10, std::ptr::null_mut(), 0, &mut used), wsembed_result::WSEMBED_OK);
        assert_eq!(used, 0);
    }
}
