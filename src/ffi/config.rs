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
/// - `subprotocols`: comma-separated, most preferred first ("")
/// Unknown names and bad values give `WSEMBED_ERR_INVALID_ARGUMENT`.
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
