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

/// Sets option `name` from its text `value` (numbers in decimal, booleans "1"/"0" or
/// "true"/"false", lists comma-separated). The options, their kinds and defaults are listed
/// near the top of this header and can be read at run time with
/// `wsembed_config_option_info`. Unknown names and bad values give
/// `WSEMBED_ERR_INVALID_ARGUMENT`; a certificate/key pair that does not load fails
/// `wsembed_server_start` with it.
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

/// Describes one option (see `wsembed_config_option_info`). Every string is static and
/// NUL-terminated: never free them.
#[repr(C)]
pub struct wsembed_option_info {
    /// The name `wsembed_config_set` takes, e.g. "max_message_size".
    pub name: *const c_char,
    /// "bool", "integer", "bytes", "milliseconds", "count", "text", "list", "choice", "path"
    /// or "pem".
    pub kind: *const c_char,
    /// The default in the text form `wsembed_config_set` takes ("" for none).
    pub default_value: *const c_char,
    /// One or two sentences of documentation.
    pub doc: *const c_char,
}

/// How many options there are (the valid indexes of `wsembed_config_option_info`).
#[no_mangle]
pub extern "C" fn wsembed_config_option_count() -> usize {
    crate::config::OPTIONS.len()
}

/// Describes option `index` (0 to `wsembed_config_option_count() - 1`) into `*info`, so
/// bindings derive their option names and docs from the library. An index past the end gives
/// `WSEMBED_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn wsembed_config_option_info(index: usize, info: *mut wsembed_option_info) -> wsembed_result {
    ffi_boundary! {
        let info = arg_out!(info);
        let texts = option_texts().get(index).ok_or_else(|| {
            crate::Error::InvalidArgument(format!("option index {index}: there are {}", crate::config::OPTIONS.len()))
        })?;
        // SAFETY: checked non-NULL; the strings are static.
        unsafe {
            *info = wsembed_option_info {
                name: texts[0].as_ptr(),
                kind: texts[1].as_ptr(),
                default_value: texts[2].as_ptr(),
                doc: texts[3].as_ptr(),
            }
        };
        Ok(())
    }
}

/// The option table as C strings, made once.
fn option_texts() -> &'static [[std::ffi::CString; 4]] {
    static TEXTS: std::sync::OnceLock<Vec<[std::ffi::CString; 4]>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        let c = |s: &str| std::ffi::CString::new(s).expect("option texts have no NUL");
        crate::config::OPTIONS.iter().map(|o| [c(o.name), c(o.kind), c(o.default), c(o.doc)]).collect()
    })
}
