//! `wsembed_server`: start, poll events, send, broadcast, publish, close, stop.
//!
//! Thread safety: every function taking `const wsembed_server *` may be called from any thread
//! at the same time, except that concurrent `wsembed_server_poll` calls take turns. Only
//! `wsembed_server_free` must not race with anything.

use std::ffi::c_char;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::Duration;

use super::config::wsembed_config;
use super::event::{wsembed_event, Batch};
use super::{arg_bytes, arg_out, arg_ref, arg_str, ffi_boundary, wsembed_result};
use crate::config::ServerConfig;
use crate::error::Error;
use crate::protocol::encoder::MessageKind;
use crate::server::Server;

/// Kind of a message to send.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsembed_message_kind {
    WSEMBED_TEXT = 1,
    WSEMBED_BINARY = 2,
}

/// A running server. Created by `wsembed_server_start`, released by `wsembed_server_free`.
pub struct wsembed_server {
    server: Server,
    batch: Mutex<Batch>,
}

impl wsembed_server {
    pub(crate) fn handle(&self) -> crate::ServerHandle {
        self.server.handle()
    }
}

fn kind_of(kind: u32) -> Result<MessageKind, Error> {
    match kind {
        1 => Ok(MessageKind::Text),
        2 => Ok(MessageKind::Binary),
        _ => Err(Error::InvalidArgument(format!("message kind {kind} (use WSEMBED_TEXT or WSEMBED_BINARY)"))),
    }
}

/// Starts a server: binds the port and runs its event loop on a new thread. `config` may be
/// NULL for every default (127.0.0.1, any free port); it is copied, so the caller may free it
/// right away. On success `*out` receives the server, which the caller owns: stop it with
/// `wsembed_server_stop` and release it with `wsembed_server_free`.
#[no_mangle]
pub extern "C" fn wsembed_server_start(config: *const wsembed_config, out: *mut *mut wsembed_server) -> wsembed_result {
    ffi_boundary! {
        let out = arg_out!(out);
        // SAFETY: NULL or a config from wsembed_config_new (caller contract).
        let config = unsafe { config.as_ref() }.map_or_else(ServerConfig::default, |c| c.inner.clone());
        let server = Box::new(wsembed_server { server: Server::start(config)?, batch: Mutex::default() });
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(server) };
        Ok(())
    }
}

/// Writes the bound TCP port (useful after asking for port 0) to `*port`.
#[no_mangle]
pub extern "C" fn wsembed_server_port(server: *const wsembed_server, port: *mut u16) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let port = arg_out!(port);
        // SAFETY: checked non-NULL.
        unsafe { *port = server.server.local_addr().port() };
        Ok(())
    }
}

/// Fills `events[0..capacity]` with waiting events and writes how many to `*count`. Waits up
/// to `timeout_ms` for the first event: 0 returns at once, any negative value waits without
/// limit. Returns OK with `*count == 0` on timeout. After the server stopped, the remaining
/// events are still returned; then the result is `WSEMBED_ERR_STOPPED` (and, as on every
/// failure, `*count` is left untouched). After a panic inside the engine it returns
/// `WSEMBED_ERR_PANIC`, also from a poll that was waiting.
///
/// This poll acknowledges the previous batch: connections that broke the protocol after
/// messages of that batch get their close frame only now, after the replies the host sent.
/// In host-driven mode (option `loop_thread` = 0) the poll runs the engine on the calling
/// thread while it waits. Polls from several threads take turns.
///
/// Pointers inside the events stay valid until the next `wsembed_server_poll` on this server
/// or `wsembed_server_free`, whichever comes first.
#[no_mangle]
pub extern "C" fn wsembed_server_poll(
    server: *const wsembed_server,
    events: *mut wsembed_event,
    capacity: usize,
    timeout_ms: i32,
    count: *mut usize,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let events = arg_out!(events);
        let count = arg_out!(count);
        if capacity == 0 {
            return Err(Error::InvalidArgument("capacity is 0".to_owned()));
        }
        let timeout = match timeout_ms {
            t if t < 0 => None,
            t => Some(Duration::from_millis(t as u64)),
        };
        let mut batch = server.batch.lock().unwrap_or_else(|e| e.into_inner());
        batch.clear();
        let mut taken = std::mem::take(&mut batch.events);
        let polled = server.server.poll_into(&mut taken, capacity, timeout);
        batch.events = taken;
        let n = polled?;
        for i in 0..n {
            let user_data = server.server.user_data(batch.events[i].conn()).unwrap_or(0);
            let event = batch.describe(i, user_data);
            // SAFETY: the caller provides room for `capacity` events and n <= capacity.
            unsafe { events.add(i).write(event) };
        }
        // SAFETY: checked non-NULL.
        unsafe { *count = n };
        Ok(())
    }
}

/// Host-driven mode (option `loop_thread` = 0): does the engine's I/O on the calling thread
/// for up to `timeout_ms` (0: what is ready now; negative: until something happens) without
/// taking events; events wait for the next `wsembed_server_poll`, which runs the engine too.
/// With a loop thread it only waits. Calls from several threads take turns.
#[no_mangle]
pub extern "C" fn wsembed_server_service(server: *const wsembed_server, timeout_ms: i32) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
        server.server.service(timeout)
    }
}

/// Writes to `*fd` a descriptor (the read end of a pipe) that is readable whenever events are
/// waiting (and after the server stopped), for select/poll/epoll/asyncio/libuv loops. The
/// server owns it: never close it; it stays valid until `wsembed_server_free`. In host-driven
/// mode (`loop_thread` = 0) it is the engine's epoll descriptor, readable while there is I/O
/// to do (and after the stop): then call `wsembed_server_poll` (until it returns no events) or `_service`. A host may read
/// (drain) it, as a libuv stream does, provided it then calls `wsembed_server_poll` until no
/// events are left; otherwise leave reading it to the server. It can be readable with no event
/// waiting (a wake-up that raced with a poll taking the events): a poll then returns none and
/// clears it.
#[no_mangle]
pub extern "C" fn wsembed_server_event_fd(server: *const wsembed_server, fd: *mut RawFd) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let fd = arg_out!(fd);
        // SAFETY: checked non-NULL.
        unsafe { *fd = server.server.event_fd() };
        Ok(())
    }
}

/// Sends one message to `conn`. `kind` is WSEMBED_TEXT (`data` must be UTF-8) or
/// WSEMBED_BINARY. `data` is copied before returning; it may be NULL when `len` is 0.
/// Errors: NO_SUCH_CONNECTION for a closed or unknown id, WOULD_BLOCK when the connection's
/// queue is over `max_buffered_bytes` (wait for a DRAIN event), STOPPED after stop.
/// In host-driven mode (`loop_thread` = 0) a send made while no thread runs the engine is
/// queued on the calling thread (no wake-up, no copy but into the queue) and written by the
/// next poll or service; one made while another thread polls wakes that poll. Sends from one
/// thread arrive in order either way.
#[no_mangle]
pub extern "C" fn wsembed_server_send(
    server: *const wsembed_server,
    conn: u64,
    kind: u32,
    data: *const u8,
    len: usize,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let data = arg_bytes(data, len, "data")?;
        server.server.handle_ref().send(conn, kind_of(kind)?, data)
    }
}

/// Sends one message to every open connection except `except_conn` (0 = nobody excepted).
/// The frame is encoded once and shared. A recipient whose queue is full is skipped (policy
/// "block") or closed with 1008 (policy "close").
#[no_mangle]
pub extern "C" fn wsembed_server_broadcast(
    server: *const wsembed_server,
    kind: u32,
    data: *const u8,
    len: usize,
    except_conn: u64,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let data = arg_bytes(data, len, "data")?;
        server.server.handle_ref().broadcast(kind_of(kind)?, data, (except_conn != 0).then_some(except_conn))
    }
}

/// Sends one message to every connection subscribed to `topic` (NUL-terminated UTF-8).
#[no_mangle]
pub extern "C" fn wsembed_server_publish(
    server: *const wsembed_server,
    topic: *const c_char,
    kind: u32,
    data: *const u8,
    len: usize,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let topic = arg_str(topic, "topic")?;
        let data = arg_bytes(data, len, "data")?;
        server.server.handle_ref().publish(topic, kind_of(kind)?, data)
    }
}

/// Subscribes `conn` to `topic` (NUL-terminated UTF-8). Subscribing twice is harmless; a
/// connection leaves all its topics when it closes.
#[no_mangle]
pub extern "C" fn wsembed_server_subscribe(server: *const wsembed_server, conn: u64, topic: *const c_char) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        server.server.handle_ref().subscribe(conn, arg_str(topic, "topic")?)
    }
}

/// Unsubscribes `conn` from `topic`.
#[no_mangle]
pub extern "C" fn wsembed_server_unsubscribe(server: *const wsembed_server, conn: u64, topic: *const c_char) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        server.server.handle_ref().unsubscribe(conn, arg_str(topic, "topic")?)
    }
}

/// Starts the close handshake with `conn`: `code` is 1000-1003, 1007-1014 or 3000-4999,
/// `reason` a NUL-terminated UTF-8 string of at most 123 bytes, or NULL for none. Sends to
/// `conn` fail from now on; a CLOSE event follows.
#[no_mangle]
pub extern "C" fn wsembed_server_close(
    server: *const wsembed_server,
    conn: u64,
    code: u16,
    reason: *const c_char,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let reason = if reason.is_null() { "" } else { arg_str(reason, "reason")? };
        server.server.handle_ref().close(conn, code, reason)
    }
}

/// Accepts a connection reported by a HANDSHAKE event. `protocol` (NUL-terminated) picks one
/// of the subprotocols the client offered, or is NULL to let the server's `subprotocols` list
/// decide. NO_SUCH_CONNECTION if the handshake was already answered or timed out.
#[no_mangle]
pub extern "C" fn wsembed_server_accept(server: *const wsembed_server, conn: u64, protocol: *const c_char) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let protocol = if protocol.is_null() { None } else { Some(arg_str(protocol, "protocol")?) };
        server.server.handle_ref().accept(conn, protocol)
    }
}

/// Rejects a connection reported by a HANDSHAKE event with HTTP `status` (400-599) and a
/// short text `body` (NUL-terminated, at most 1024 bytes; NULL for none).
#[no_mangle]
pub extern "C" fn wsembed_server_reject(server: *const wsembed_server, conn: u64, status: u16, body: *const c_char) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let body = if body.is_null() { "" } else { arg_str(body, "body")? };
        server.server.handle_ref().reject(conn, status, body)
    }
}

/// Drops `conn`'s TCP connection at once, without a close handshake (as Node's
/// `socket.terminate()`); a CLOSE event with 1006 follows. Works in any phase, after
/// `wsembed_server_close` too. NO_SUCH_CONNECTION once the connection is gone.
#[no_mangle]
pub extern "C" fn wsembed_server_terminate(server: *const wsembed_server, conn: u64) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        server.server.handle_ref().terminate(conn)
    }
}

/// Sends a ping carrying `data` (at most 125 bytes, copied; NULL when `len` is 0) to `conn`.
/// With option `ping_events` the answer arrives as a PONG event (RTT measurement).
#[no_mangle]
pub extern "C" fn wsembed_server_ping(server: *const wsembed_server, conn: u64, data: *const u8, len: usize) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let data = arg_bytes(data, len, "data")?;
        server.server.handle_ref().ping(conn, data)
    }
}

/// Attaches `user_data` (any pointer; wsembed never dereferences or frees it) to `conn`,
/// which must be open or awaiting approval (HANDSHAKE). Every later event of `conn`, its CLOSE included,
/// carries it in `wsembed_event.user_data`; the association ends with the poll after the
/// one that returned the CLOSE, so free what it points to after handling CLOSE. Setting
/// again replaces it. NO_SUCH_CONNECTION once the connection is closing or gone.
#[no_mangle]
pub extern "C" fn wsembed_server_set_user_data(server: *const wsembed_server, conn: u64, user_data: *mut std::ffi::c_void) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        server.server.handle_ref().set_user_data(conn, user_data as usize)
    }
}

/// Writes a snapshot of the server's counters to `*stats`.
#[no_mangle]
pub extern "C" fn wsembed_server_stats(server: *const wsembed_server, stats: *mut crate::Stats) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let stats = arg_out!(stats);
        // SAFETY: checked non-NULL.
        unsafe { *stats = server.server.handle_ref().stats() };
        Ok(())
    }
}

/// Writes to `*bytes` how many bytes are queued for `conn` and not yet written to its socket.
#[no_mangle]
pub extern "C" fn wsembed_server_buffered_amount(server: *const wsembed_server, conn: u64, bytes: *mut usize) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let bytes = arg_out!(bytes);
        let amount = server.server.handle_ref().buffered_amount(conn)?;
        // SAFETY: checked non-NULL.
        unsafe { *bytes = amount };
        Ok(())
    }
}

/// Stops the server: sends 1001 "going away" to every client after what was already queued,
/// waits at most `timeout_ms` for the closing handshakes, then joins the loop thread. Events
/// still queued can be polled afterwards. A second stop returns `WSEMBED_ERR_STOPPED`.
#[no_mangle]
pub extern "C" fn wsembed_server_stop(server: *const wsembed_server, timeout_ms: u32) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        server.server.stop(Duration::from_millis(u64::from(timeout_ms)))
    }
}

/// Test-only fault hook (not part of the C API): makes the loop thread panic.
#[doc(hidden)]
pub fn inject_loop_panic(server: *const wsembed_server) {
    // SAFETY: a server from wsembed_server_start (test code only).
    if let Some(server) = unsafe { server.as_ref() } {
        server.server.inject_loop_panic();
    }
}

/// Stops the server if needed (1 s grace) and releases it and every event pointer it handed
/// out. NULL is allowed. No other call on this server may run concurrently or follow.
#[no_mangle]
pub extern "C" fn wsembed_server_free(server: *mut wsembed_server) {
    if !server.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: created by wsembed_server_start and not freed before (caller contract).
            drop(unsafe { Box::from_raw(server) })
        }));
    }
}
