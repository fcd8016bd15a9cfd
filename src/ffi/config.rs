//! `wsembed_config`: the options of a server, set by name (the names and defaults are listed
//! on `wsembed_config_set`).

use std::ffi::c_char;

use super::{arg_out, arg_str, ffi_boundary, wsembed_result};
use crate::config::ServerConfig;

/// Server options. Create with `wsembed_config_new`, free with `wsembed_config_free`.
/// Not thread-safe: set options from one thread at a time.
pub struct wsembed_config {
    pub(crate) inner: ServerConfig,
}

/// Creates a configuration holding every default. On success `*out` receives a new object
/// that the caller owns and must release with `wsembed_config_free` (it may be freed right
/// after `wsembed_server_start`, which copies it).
#[no_mangle]
pub extern "C" fn wsembed_config_new(out: *mut *mut wsembed_config) -> wsembed_result {
    ffi_boundary! {
        let out = arg_out!(out);
        let config = Box::new(wsembed_config { inner: ServerConfig::default() });
        // SAFETY: checked non-NULL; the caller provides a writable pointer.
        unsafe { *out = Box::into_raw(config) };
        Ok(())
    }
}

/// Frees a configuration. NULL is allowed (does nothing).
#[no_mangle]
pub extern "C" fn wsembed_config_free(config: *mut wsembed_config) {
    if !config.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: created by wsembed_config_new and not freed before (caller contract).
            drop(unsafe { Box::from_raw(config) })
        });
    }
}

/// Sets option `name` from its text `value` (numbers in decimal). Options and defaults:
/// - `host`: interface to listen on ("127.0.0.1"; "0.0.0.0" for all)
/// - `port`: TCP port, 0 = any free port (0)
/// - `max_message_size`: bytes; a larger message is closed with 1009 (16777216)
/// - `max_frame_size`: bytes; a larger frame is closed with 1009 (16777216)
/// - `max_connections`: simultaneous TCP connections; more get HTTP 503 (100000)
/// - `handshake_timeout_ms`: time to complete the upgrade request (10000)
/// - `max_header_bytes`: HTTP request head size; larger gets 431 (8192)
/// - `ping_interval_ms`: ping after this much silence, 0 = never (30000)
/// - `pong_timeout_ms`: unanswered ping closes, reported as 1006 "ping timeout" (20000)
/// - `close_timeout_ms`: time allowed for a close handshake (5000)
/// - `max_buffered_bytes`: cap on bytes queued per connection (67108864)
/// - `backpressure`: "block" (sends fail with WOULD_BLOCK, broadcast skips) or "close" (1008)
/// - `static_dir`: serve plain HTTP GET/HEAD from this directory ("" = none: answer 426)
/// - `max_static_file_bytes`: largest file served (67108864)
/// - `subprotocols`: comma-separated, most preferred first; the first one the client offers
///   is chosen and echoed ("")
/// - `backpressure_close_code`: 1008 or 1013, used by backpressure "close" (1008)
/// - `max_pending_event_bytes`: message bytes waiting for the host to poll; past it the loop
///   stops reading sockets until the host catches up (67108864)
/// - `allowed_origins`: comma-separated exact Origin values; others get 403; requests without
///   Origin are allowed ("" = any origin)
/// - `max_messages_per_sec`, `max_bytes_per_sec`: per-connection token buckets with one second
///   of burst, 0 = off (0, 0)
/// - `rate_limit_policy`: "close" (1008) or "drop" (count in stats.rate_limited) ("close")
/// - `max_connections_per_ip`, `max_handshakes_per_ip_per_sec`: 0 = off; over: 429 (0, 0)
/// - `approve_handshakes`: "1"/"true" to report HANDSHAKE events and wait for
///   `wsembed_server_accept`/`_reject` ("0")
/// - `approval_timeout_ms`: unanswered handshakes get 503 after this (10000)
/// - `tls_cert_file`, `tls_key_file`: PEM files for wss:// (read when set; TLS 1.2/1.3 only)
/// - `tls_cert_pem`, `tls_key_pem`: the same as PEM text
///
/// Unknown names and bad values give `WSEMBED_ERR_INVALID_ARGUMENT`; a certificate/key pair
/// that does not load fails `wsembed_server_start` with it.
#[no_mangle]
pub extern "C" fn wsembed_config_set(config: *mut wsembed_config, name: *const c_char, value: *const c_char) -> wsembed_result {
    ffi_boundary! {
        // SAFETY: the caller passes a config from wsembed_config_new, used by one thread.
        let config = unsafe { config.as_mut() }.ok_or(crate::Error::NullArgument("config"))?;
        config.inner.set(arg_str(name, "name")?, arg_str(value, "value")?)
    }
}

/// `wsembed_config_set` for a numeric option (negative values are rejected).
#[no_mangle]
pub extern "C" fn wsembed_config_set_int(config: *mut wsembed_config, name: *const c_char, value: i64) -> wsembed_result {
    ffi_boundary! {
        // SAFETY: as in wsembed_config_set.
        let config = unsafe { config.as_mut() }.ok_or(crate::Error::NullArgument("config"))?;
        config.inner.set(arg_str(name, "name")?, &value.to_string())
    }
}
