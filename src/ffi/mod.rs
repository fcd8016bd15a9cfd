//! The C ABI. One module per C "class" (`config`, `server`, `event`), opaque handles,
//! `_new`/`_free` pairs (freeing NULL is allowed), one result enum with stable numbers,
//! out-parameters written only on success, and every exported function wrapped in
//! [`ffi_boundary!`] so no panic crosses into C.

#![allow(non_camel_case_types)]
// Exported functions take raw pointers but are not `unsafe fn`: `unsafe` means nothing to a C
// caller, every pointer is NULL-checked here, and the validity contract is in the header.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod client;
pub mod config;
pub mod event;
pub mod server;

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Result of every fallible wsembed function. The numbers are stable across versions.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsembed_result {
    WSEMBED_OK = 0,
    /// A required pointer argument was NULL.
    WSEMBED_ERR_NULL_ARGUMENT = 1,
    /// An argument or option value is not acceptable (see `wsembed_last_error_message`).
    WSEMBED_ERR_INVALID_ARGUMENT = 2,
    /// The connection id is closed, closing, or never existed.
    WSEMBED_ERR_NO_SUCH_CONNECTION = 3,
    /// The server has been stopped (for `wsembed_server_poll`: and every event was taken).
    WSEMBED_ERR_STOPPED = 4,
    /// The connection's send queue is full; retry after a `WSEMBED_EVENT_DRAIN`.
    WSEMBED_ERR_WOULD_BLOCK = 5,
    /// An operating-system error (e.g. the port is in use).
    WSEMBED_ERR_IO = 6,
    /// A bug inside wsembed was caught at the boundary; the call had no effect you can rely on.
    WSEMBED_ERR_PANIC = 7,
    /// Text to send is not valid UTF-8.
    WSEMBED_ERR_INVALID_UTF8 = 8,
    /// A client connection is not open yet (or is between reconnects); see the client option
    /// `queue_while_connecting`.
    WSEMBED_ERR_NOT_OPEN = 9,
}

impl wsembed_result {
    /// The highest code; codes are contiguous from 0.
    const LAST: wsembed_result = wsembed_result::WSEMBED_ERR_NOT_OPEN;

    fn from_code(code: u32) -> Option<wsembed_result> {
        // SAFETY: the enum is repr(u32) with every value 0..=LAST.
        (code <= Self::LAST as u32).then(|| unsafe { std::mem::transmute::<u32, wsembed_result>(code) })
    }

    /// The short text of a code: the one place these texts are written.
    fn text(self) -> &'static CStr {
        match self {
            wsembed_result::WSEMBED_OK => c"ok",
            wsembed_result::WSEMBED_ERR_NULL_ARGUMENT => c"a required argument is NULL",
            wsembed_result::WSEMBED_ERR_INVALID_ARGUMENT => c"invalid argument",
            wsembed_result::WSEMBED_ERR_NO_SUCH_CONNECTION => c"no such connection",
            wsembed_result::WSEMBED_ERR_STOPPED => c"the server is stopped",
            wsembed_result::WSEMBED_ERR_WOULD_BLOCK => c"the connection's send buffer is full",
            wsembed_result::WSEMBED_ERR_IO => c"I/O error",
            wsembed_result::WSEMBED_ERR_PANIC => c"internal error (panic)",
            wsembed_result::WSEMBED_ERR_INVALID_UTF8 => c"text is not valid UTF-8",
            wsembed_result::WSEMBED_ERR_NOT_OPEN => c"the client connection is not open",
        }
    }
}

impl From<&Error> for wsembed_result {
    fn from(e: &Error) -> Self {
        match e {
            Error::NullArgument(_) => wsembed_result::WSEMBED_ERR_NULL_ARGUMENT,
            Error::InvalidArgument(_) => wsembed_result::WSEMBED_ERR_INVALID_ARGUMENT,
            Error::NoSuchConnection => wsembed_result::WSEMBED_ERR_NO_SUCH_CONNECTION,
            Error::Stopped => wsembed_result::WSEMBED_ERR_STOPPED,
            Error::WouldBlock => wsembed_result::WSEMBED_ERR_WOULD_BLOCK,
            Error::Io(_) => wsembed_result::WSEMBED_ERR_IO,
            Error::Panic(_) => wsembed_result::WSEMBED_ERR_PANIC,
            Error::InvalidUtf8 => wsembed_result::WSEMBED_ERR_INVALID_UTF8,
            Error::NotOpen => wsembed_result::WSEMBED_ERR_NOT_OPEN,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(e: &Error) {
    let text = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

/// Runs the body of an exported function: catches panics, records the error message for
/// `wsembed_last_error_message` and turns the outcome into a result code.
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), Error>) -> wsembed_result {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Error::Panic(msg))
    });
    match outcome {
        Ok(()) => wsembed_result::WSEMBED_OK,
        Err(e) => {
            set_last_error(&e);
            wsembed_result::from(&e)
        }
    }
}

/// Wraps the body of every exported function that returns `wsembed_result`.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        $crate::ffi::boundary(move || -> Result<(), $crate::error::Error> { $($body)* })
    };
}
pub(crate) use ffi_boundary;

/// Borrows `*ptr` or fails with `WSEMBED_ERR_NULL_ARGUMENT` naming the argument.
macro_rules! arg_ref {
    ($ptr:ident) => {
        // SAFETY: the caller promises a non-NULL pointer is valid (header contract).
        unsafe { $ptr.as_ref() }.ok_or($crate::error::Error::NullArgument(stringify!($ptr)))?
    };
}
pub(crate) use arg_ref;

/// Checks an out-pointer and names it; written only on success.
macro_rules! arg_out {
    ($ptr:ident) => {{
        if $ptr.is_null() {
            return Err($crate::error::Error::NullArgument(stringify!($ptr)));
        }
        $ptr
    }};
}
pub(crate) use arg_out;

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn arg_str<'a>(ptr: *const c_char, name: &'static str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: the caller promises a NUL-terminated string (header contract).
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::InvalidArgument(format!("{name} is not valid UTF-8")))
}

/// A `(pointer, length)` byte argument; NULL is allowed when the length is 0.
pub(crate) fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &'static str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: the caller promises `len` readable bytes at `ptr` (header contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Static text describing a result code ("unknown result code" for numbers not listed).
/// The string is static: never free it.
#[no_mangle]
pub extern "C" fn wsembed_result_text(code: u32) -> *const c_char {
    wsembed_result::from_code(code).map_or(c"unknown result code", wsembed_result::text).as_ptr()
}

/// The detailed message of the most recent failed wsembed call on the calling thread ("" if
/// none). The pointer stays valid until the next failing wsembed call on this thread; copy it
/// if you need it longer. Never free it.
#[no_mangle]
pub extern "C" fn wsembed_last_error_message() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// The library version, e.g. "0.1.0". Static: never free it.
#[no_mangle]
pub extern "C" fn wsembed_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
