//! `wsembed_client_options` and `wsembed_server_connect`: dialing out from the same engine.

use std::ffi::c_char;

use super::server::wsembed_server;
use super::{arg_out, arg_ref, arg_str, ffi_boundary, wsembed_result};
use crate::client::ClientOptions;

/// Options of one client connection. Create with `wsembed_client_options_new`, free with
/// `wsembed_client_options_free` (right after `wsembed_server_connect` if you like: it copies
/// them). Not thread-safe: set options from one thread at a time.
pub struct wsembed_client_options {
    pub(crate) inner: ClientOptions,
}

/// Creates client options holding every default (no subprotocol, no extra header, 10 s
/// connect and handshake timeouts, no reconnect, the system's CA roots). The caller owns
/// `*out` and releases it with `wsembed_client_options_free`.
#[no_mangle]
pub extern "C" fn wsembed_client_options_new(out: *mut *mut wsembed_client_options) -> wsembed_result {
    ffi_boundary! {
        let out = arg_out!(out);
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(wsembed_client_options { inner: ClientOptions::default() })) };
        Ok(())
    }
}

/// Frees client options. NULL is allowed (does nothing).
#[no_mangle]
pub extern "C" fn wsembed_client_options_free(options: *mut wsembed_client_options) {
    if !options.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: created by wsembed_client_options_new and not freed before (caller contract).
            drop(unsafe { Box::from_raw(options) })
        });
    }
}

/// Sets client option `name` from its text `value`:
/// - `protocols`: comma-separated subprotocols to offer, most preferred first
/// - `require_protocol`: "1" fails the connection when the server picks none ("0")
/// - `origin`: the Origin header
/// - `header`: one extra request header "Name: value" (Authorization, Cookie...); repeatable
/// - `connect_timeout_ms`, `handshake_timeout_ms`: TCP+TLS connect, then the 101 (10000 each)
/// - `reconnect`: "1" dials again after failures and drops (off)
/// - `reconnect_min_delay_ms` (500), `reconnect_max_delay_ms` (30000): full-jitter backoff,
///   the n-th retry waits a random time up to min(max, min * 2^n); setting one turns
///   reconnect on
/// - `reconnect_max_attempts`: retries in a row before FAILED, 0 = unlimited (0)
/// - `reconnect_reset_after_ms`: open this long and the count starts over (10000)
/// - `ca_file`, `ca_pem`: CAs to trust for wss:// instead of the system's roots
/// - `queue_while_connecting`: bytes of sends that wait until open (0: sends before open
///   fail with WSEMBED_ERR_NOT_OPEN); over it they are dropped and counted
/// - `compression`: "1" offers permessage-deflate
///
/// Retried: refused, timeouts, DNS and network errors, HTTP 5xx/408/429, close codes
/// 1001/1006/1011-1014. Not retried: other HTTP 4xx, TLS verification failures, close
/// 1000/1008 and the like, or a close the host asked for.
#[no_mangle]
pub extern "C" fn wsembed_client_options_set(options: *mut wsembed_client_options, name: *const c_char, value: *const c_char) -> wsembed_result {
    ffi_boundary! {
        // SAFETY: the caller passes options from wsembed_client_options_new, used by one thread.
        let options = unsafe { options.as_mut() }.ok_or(crate::Error::NullArgument("options"))?;
        options.inner.set(arg_str(name, "name")?, arg_str(value, "value")?)
    }
}

/// Dials `url` (NUL-terminated `ws://` or `wss://` URL: host, port, path and query; IPv6 as
/// `[::1]`) from this server's engine, with `options` (NULL for every default), and writes
/// the new connection's id to `*conn` at once. The connection's events come in the same polls
/// as the server's: OPEN (headers are the response's), TEXT/BINARY, CLOSE, and RECONNECTING
/// or FAILED (its last event when it never opened or gave up). Send, close, terminate and
/// set_user_data work on it from any thread; the id survives reconnects. Sends before OPEN
/// return WSEMBED_ERR_NOT_OPEN unless `queue_while_connecting` is set. Broadcasts reach only
/// the server's own clients. Name resolution runs off the loop thread. A bad URL, header or
/// CA is INVALID_ARGUMENT here; network failures arrive as events.
#[no_mangle]
pub extern "C" fn wsembed_server_connect(
    server: *const wsembed_server,
    url: *const c_char,
    options: *const wsembed_client_options,
    conn: *mut u64,
) -> wsembed_result {
    ffi_boundary! {
        let server = arg_ref!(server);
        let url = arg_str(url, "url")?;
        let conn = arg_out!(conn);
        // SAFETY: NULL or options from wsembed_client_options_new (caller contract).
        let defaults = ClientOptions::default();
        let options = unsafe { options.as_ref() }.map_or(&defaults, |o| &o.inner);
        let id = server.handle().connect(url, options)?;
        // SAFETY: checked non-NULL.
        unsafe { *conn = id };
        Ok(())
    }
}
