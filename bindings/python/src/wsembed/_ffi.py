"""Loading the wsembed C library through ctypes and declaring its ABI (see wsembed.h)."""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

# The C ABI this module was written against: a library must report this major.minor version.
ABI_VERSION = (0, 1)

OK = 0
ERR_INVALID_ARGUMENT = 2
ERR_NO_SUCH_CONNECTION = 3
ERR_STOPPED = 4

EVENT_OPEN = 1
EVENT_TEXT = 2
EVENT_BINARY = 3
EVENT_CLOSE = 4
EVENT_DRAIN = 5
EVENT_HANDSHAKE = 6

TEXT = 1
BINARY = 2


class Header(Structure):
    _fields_ = [("name", c_char_p), ("value", c_char_p)]


class Event(Structure):
    _fields_ = [
        ("kind", c_uint32),
        ("close_code", c_uint16),
        ("clean", c_bool),
        ("conn", c_uint64),
        ("data", c_void_p),
        ("len", c_size_t),
        ("path", c_char_p),
        ("peer", c_char_p),
        ("protocol", c_char_p),
        ("headers", POINTER(Header)),
        ("header_count", c_size_t),
        ("protocols", c_char_p),
    ]


# The same layout for struct.iter_unpack, which decodes a whole batch in one call:
# kind, close_code, clean, conn, data, len, path, peer, protocol, headers, header_count,
# protocols.
EVENT_FORMAT = struct.Struct("@IH?QPNPPPPNP")
assert EVENT_FORMAT.size == ctypes.sizeof(Event), "struct wsembed_event layout mismatch"

STATS_FIELDS = (
    "open_connections",
    "handshakes_accepted",
    "handshakes_rejected",
    "messages_in",
    "messages_out",
    "bytes_in",
    "bytes_out",
    "dropped_deliveries",
    "rate_limited",
    "closes_clean",
    "closes_protocol_error",
    "closes_timeout",
    "closes_dropped",
    "closes_policy",
)


class Stats(Structure):
    _fields_ = [(name, c_uint64) for name in STATS_FIELDS]


assert ctypes.sizeof(Stats) == 8 * 14, "struct wsembed_stats layout mismatch"

_server_p = c_void_p
_config_p = c_void_p
_result = c_uint32

# name: (restype, argtypes)
_SIGNATURES = {
    "wsembed_result_text": (c_char_p, [c_uint32]),
    "wsembed_last_error_message": (c_char_p, []),
    "wsembed_version": (c_char_p, []),
    "wsembed_config_new": (_result, [POINTER(c_void_p)]),
    "wsembed_config_free": (None, [_config_p]),
    "wsembed_config_set": (_result, [_config_p, c_char_p, c_char_p]),
    "wsembed_config_set_int": (_result, [_config_p, c_char_p, c_int64]),
    "wsembed_server_start": (_result, [_config_p, POINTER(c_void_p)]),
    "wsembed_server_port": (_result, [_server_p, POINTER(c_uint16)]),
    "wsembed_server_poll": (_result, [_server_p, POINTER(Event), c_size_t, c_int32, POINTER(c_size_t)]),
    "wsembed_server_event_fd": (_result, [_server_p, POINTER(c_int)]),
    "wsembed_server_send": (_result, [_server_p, c_uint64, c_uint32, c_char_p, c_size_t]),
    "wsembed_server_broadcast": (_result, [_server_p, c_uint32, c_char_p, c_size_t, c_uint64]),
    "wsembed_server_publish": (_result, [_server_p, c_char_p, c_uint32, c_char_p, c_size_t]),
    "wsembed_server_subscribe": (_result, [_server_p, c_uint64, c_char_p]),
    "wsembed_server_unsubscribe": (_result, [_server_p, c_uint64, c_char_p]),
    "wsembed_server_close": (_result, [_server_p, c_uint64, c_uint16, c_char_p]),
    "wsembed_server_accept": (_result, [_server_p, c_uint64, c_char_p]),
    "wsembed_server_reject": (_result, [_server_p, c_uint64, c_uint16, c_char_p]),
    "wsembed_server_stats": (_result, [_server_p, POINTER(Stats)]),
    "wsembed_server_buffered_amount": (_result, [_server_p, c_uint64, POINTER(c_size_t)]),
    "wsembed_server_stop": (_result, [_server_p, c_uint32]),
    "wsembed_server_free": (None, [_server_p]),
}


def _library_filename() -> str:
    if sys.platform == "darwin":
        return "libwsembed.dylib"
    if sys.platform == "win32":
        return "wsembed.dll"
    return "libwsembed.so"


_HOW_TO_FIX = (
    "Reinstall the package with `pip install ./bindings/python` from a wsembed checkout "
    "(the build runs `cargo build --release`, so Rust's cargo must be installed), or set "
    "WSEMBED_LIBRARY=/path/to/libwsembed.so to a library built with `cargo build --release`."
)


def _load() -> tuple[ctypes.CDLL, str]:
    override = os.environ.get("WSEMBED_LIBRARY")
    if override:
        path = override
        origin = f"WSEMBED_LIBRARY={override}"
        fix = (
            "Point WSEMBED_LIBRARY at a libwsembed shared library built by `cargo build --release` "
            "(target/release/" + _library_filename() + "), or unset it to use the library "
            "bundled with the package."
        )
    else:
        path = str(Path(__file__).resolve().parent / _library_filename())
        origin = f"the bundled library {path}"
        fix = _HOW_TO_FIX
        if not os.path.exists(path):
            raise ImportError(f"wsembed: {origin} is missing, so this install is incomplete. {fix}")
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise ImportError(f"wsembed: cannot load {origin}: {exc}. {fix}") from None

    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            func = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                f"wsembed: {origin} does not export {name}(): it is not a wsembed library, or one "
                f"too old for this Python package. {fix}"
            ) from None
        func.restype = restype
        func.argtypes = argtypes

    raw_version = lib.wsembed_version()
    version = raw_version.decode("utf-8", "replace") if raw_version else "?"
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    if major_minor != ABI_VERSION:
        wanted = ".".join(map(str, ABI_VERSION))
        raise ImportError(
            f"wsembed: {origin} is version {version}, but this Python package needs a "
            f"{wanted}.x library. {fix}"
        )
    return lib, version


lib, library_version = _load()


def last_error_message() -> str:
    raw = lib.wsembed_last_error_message()
    return raw.decode("utf-8", "replace") if raw else ""


def result_text(code: int) -> str:
    raw = lib.wsembed_result_text(code)
    return raw.decode("utf-8", "replace") if raw else f"error {code}"
