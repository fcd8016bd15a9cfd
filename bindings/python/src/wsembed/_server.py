"""The :class:`Server` class: a wsembed engine running on its own thread."""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import math
import os
import struct
import threading
import time
import weakref
from ctypes import byref, c_char, c_char_p, c_int, c_size_t, c_uint16, c_void_p, string_at
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Union

from . import _abi, _ffi
from ._errors import InvalidArgumentError, InvalidUtf8Error, ServerStoppedError, WsembedError, error_for
from ._events import Close, Drain, Event, Failed, Handshake, Message, Open, Ping, Pong, Reconnecting, Stats

__all__ = ["Server", "Data"]

#: What ``send``/``broadcast``/``publish`` accept: ``str`` is sent as a text message, any
#: bytes-like object (``bytes``, ``bytearray``, ``memoryview``...) as a binary message.
Data = Union[str, bytes, bytearray, memoryview]

_lib = _ffi.lib
_poll = _lib.wsembed_server_poll
_send = _lib.wsembed_server_send
_broadcast = _lib.wsembed_server_broadcast
_publish = _lib.wsembed_server_publish
_TEXT = _abi.WSEMBED_TEXT
_BINARY = _abi.WSEMBED_BINARY
_OK = _abi.WSEMBED_OK
_STOPPED = _abi.WSEMBED_ERR_STOPPED

# Events are decoded a batch at a time with struct.iter_unpack; the format and the field
# positions come from the generated layout of struct wsembed_event.
_EVENT_FORMAT = struct.Struct(_abi.FORMATS["wsembed_event"])
assert _EVENT_FORMAT.size == ctypes.sizeof(_abi.wsembed_event), "struct wsembed_event layout mismatch"
_EVENT_SIZE = _EVENT_FORMAT.size
_iter_unpack = _EVENT_FORMAT.iter_unpack
_F = {name: i for i, name in enumerate(_abi.FIELDS["wsembed_event"])}
_I_KIND, _I_CODE, _I_CLEAN, _I_CONN = _F["kind"], _F["close_code"], _F["clean"], _F["conn"]
_I_DATA, _I_LEN, _I_PATH, _I_PEER = _F["data"], _F["len"], _F["path"], _F["peer"]
_I_PROTO, _I_HEADERS, _I_NHEADERS = _F["protocol"], _F["headers"], _F["header_count"]
_I_PROTOS, _I_NPROTOS, _I_USER = _F["protocols"], _F["protocol_count"], _F["user_data"]
_I_EXT, _I_ATTEMPT, _I_DELAY = _F["extensions"], _F["attempt"], _F["delay_ms"]
_I_FAILURE, _I_STATUS = _F["failure"], _F["http_status"]
_EV_RECONNECTING = _abi.WSEMBED_EVENT_RECONNECTING
_EV_FAILED = _abi.WSEMBED_EVENT_FAILED
_EV_OPEN = _abi.WSEMBED_EVENT_OPEN
_EV_TEXT = _abi.WSEMBED_EVENT_TEXT
_EV_BINARY = _abi.WSEMBED_EVENT_BINARY
_EV_CLOSE = _abi.WSEMBED_EVENT_CLOSE
_EV_DRAIN = _abi.WSEMBED_EVENT_DRAIN
_EV_HANDSHAKE = _abi.WSEMBED_EVENT_HANDSHAKE
_EV_PING = _abi.WSEMBED_EVENT_PING
_EV_PONG = _abi.WSEMBED_EVENT_PONG

# A blocking poll waits in slices this long so that Ctrl-C (KeyboardInterrupt) and other
# signal handlers get to run: Python only runs them between foreign calls.
_SLICE_MS = 250

_OPTIONS = _ffi.OPTIONS
#: Host-side aliases that take seconds, derived from the library's options: every option of
#: kind "milliseconds" named ``X_ms`` can be given as ``X`` in seconds (``ping_interval=1.5``).
_SECONDS_ALIASES = {
    name[:-3]: name
    for name, info in _OPTIONS.items()
    if info.kind == "milliseconds" and name.endswith("_ms") and name[:-3] not in _OPTIONS
}
#: Keywords of Server() that are not engine options.
HOST_OPTIONS = {
    "tls": "``(cert_path, key_path)``: short for ``tls_cert_file`` and ``tls_key_file``.",
    **{alias: f"``{name}`` in seconds (a float)." for alias, name in _SECONDS_ALIASES.items()},
}
_TLS_OPTIONS = tuple(name for name in _OPTIONS if name.startswith("tls_"))
# The C user_data of a connection with a Python value: only a "has data" flag (never
# dereferenced); the value itself lives in Server._user_data.
_HAS_USER_DATA = 1

_live: "weakref.WeakSet[Server]" = weakref.WeakSet()


def _raise(code: int) -> None:
    # Read the thread-local detail right away, on the thread that made the failing call.
    detail = _ffi.last_error_message()
    # The engine's detail already starts with the result's text ("invalid argument: ...").
    raise error_for(code, detail or _ffi.result_text(code))


def _check(code: int) -> None:
    if code:
        _raise(code)


def _c_string(value: str, what: str) -> bytes:
    if "\0" in value:
        raise InvalidArgumentError(f"{what} must not contain NUL characters")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidUtf8Error(f"{what} is not valid UTF-8: {exc}") from None


def _payload(data: Any) -> tuple:
    """(kind, pointer-compatible object, length) for a message payload."""
    if type(data) is str:
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidUtf8Error(f"text is not valid UTF-8: {exc}") from None
        return _TEXT, raw, len(raw)
    if type(data) is bytes:
        return _BINARY, data, len(data)
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"message data must be str or a bytes-like object, not {type(data).__name__}") from None
    n = view.nbytes
    if n == 0:
        return _BINARY, None, 0
    if view.readonly or not view.c_contiguous:
        return _BINARY, view.tobytes(), n
    # Writable and contiguous (bytearray, writable memoryview): pass it without a copy; the
    # engine copies it before the call returns.
    return _BINARY, (c_char * n).from_buffer(view.cast("B")), n


def _free(handle: int) -> None:
    _lib.wsembed_server_free(handle)


def _decode(ptr: Optional[int]) -> str:
    return string_at(ptr).decode("utf-8", "replace") if ptr else ""


def _headers(address: Optional[int], count: int) -> List[Tuple[str, str]]:
    pairs = []
    if count and address:
        for h in (_abi.wsembed_header * count).from_address(address):
            pairs.append(
                (
                    (h.name or b"").decode("utf-8", "replace"),
                    (h.value or b"").decode("utf-8", "replace"),
                )
            )
    return pairs


def _strings(address: Optional[int], count: int) -> List[str]:
    """A C array of ``count`` NUL-terminated strings, as a list."""
    if not count or not address:
        return []
    return [(p or b"").decode("utf-8", "replace") for p in (c_char_p * count).from_address(address)]


def _fits(value: int, argtype: Any, what: str) -> int:
    """``value`` if it fits the C parameter type (ctypes would silently wrap it), else
    InvalidArgumentError. Only the width is checked; what the value means is the engine's
    business."""
    bits = ctypes.sizeof(argtype) * 8
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise InvalidArgumentError(f"{what} {value!r} does not fit the C parameter (an unsigned {bits}-bit integer)")
    return value


def _argtype(function: str, param: str) -> Any:
    restype, argtypes, names = _abi.FUNCTIONS[function]
    return argtypes[names.index(param)]


_CLOSE_CODE_T = _argtype("wsembed_server_close", "code")
_REJECT_STATUS_T = _argtype("wsembed_server_reject", "status")


def _option_value(name: str, value: Any) -> str:
    """The text ``wsembed_config_set`` takes for ``value``, converted by the option's kind as
    the library reports it. What the text means (ranges, choices) is checked by the engine."""
    info = _OPTIONS.get(name)
    kind = info.kind if info is not None else None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if kind == "bool":
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, str):
            return value
        raise TypeError(f"option {name}: expected a bool, not {type(value).__name__}")
    if kind in ("integer", "bytes", "milliseconds", "count"):
        # A bool is passed as its text, which the engine refuses for a number.
        if isinstance(value, (int, str)):
            return str(value)
        raise TypeError(f"option {name}: expected an int, not {type(value).__name__}")
    if kind == "list":
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple, set, frozenset)):
            return ",".join(os.fspath(v) if isinstance(v, os.PathLike) else str(v) for v in value)
        raise TypeError(f"option {name}: expected a list of str (or a comma-separated str), not {type(value).__name__}")
    if kind == "pem" and isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if kind in ("text", "choice", "path", "pem"):
        if isinstance(value, str):
            return value
        raise TypeError(f"option {name}: expected a str, not {type(value).__name__}")
    # An unknown name (the engine rejects it) or a kind newer than this module: generic text.
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    raise TypeError(f"option {name}: expected a number or a string, not {type(value).__name__}")


#: Keywords of :meth:`Server.connect` / :func:`wsembed.connect` (the C client options,
#: plus ``headers`` and seconds aliases of the ``_ms`` ones).
CLIENT_OPTIONS = {
    "protocols": "subprotocols to offer, most preferred first (list or comma-separated str)",
    "require_protocol": "bool: fail when the server picks no subprotocol",
    "origin": "the Origin header",
    "headers": "extra request headers: a dict or a list of (name, value) pairs",
    "header": "one extra header as \"Name: value\" (or a list of them)",
    "connect_timeout_ms": "TCP+TLS connect timeout (10000); ``connect_timeout`` in seconds",
    "handshake_timeout_ms": "time for the 101 (10000); ``handshake_timeout`` in seconds",
    "reconnect": "bool: dial again after failures and drops",
    "reconnect_min_delay_ms": "backoff floor (500); ``reconnect_min_delay`` in seconds",
    "reconnect_max_delay_ms": "backoff cap (30000); ``reconnect_max_delay`` in seconds",
    "reconnect_max_attempts": "retries in a row before Failed, 0 = unlimited",
    "reconnect_reset_after_ms": "open this long and the count starts over (10000)",
    "ca_file": "CA file to trust for wss:// instead of the system roots",
    "ca_pem": "CA PEM text to trust for wss://",
    "queue_while_connecting": "bytes of sends that wait until open (0: NotOpenError)",
    "compression": "bool: offer permessage-deflate",
}


def _client_option_texts(options: Dict[str, Any]) -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if name == "headers":
            pairs = value.items() if isinstance(value, dict) else value
            for key, val in pairs:
                out.append(("header", f"{key}: {val}"))
            continue
        if name == "header" and isinstance(value, (list, tuple)):
            out.extend(("header", str(v)) for v in value)
            continue
        if name + "_ms" in CLIENT_OPTIONS and name not in CLIENT_OPTIONS:
            name, value = name + "_ms", int(math.ceil(float(value) * 1000))
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8")
        else:
            text = str(value)
        out.append((name, text))
    return out


class Server:
    """A WebSocket server running on a background thread of the wsembed engine.

    ``Server(host="127.0.0.1", port=0, tls=None, **options)`` starts listening at once;
    ``port=0`` picks a free port (read it back from :attr:`port`). Every other keyword is an
    engine option passed by name, converted by the option's kind (``bool`` switches, ``int``
    numbers, lists as a sequence or a comma-separated string, paths as ``str`` or
    :class:`os.PathLike`). The list below is read from the library at import time
    (``wsembed_config_option_info``); :data:`wsembed.OPTIONS` has it as data.

    Unknown names and bad values raise :class:`InvalidArgumentError`; a port in use raises
    :class:`ServerIOError`.

    Use it as a context manager: leaving the block stops the server, which closes every
    client with 1001 (going away). Read events with :meth:`poll`, ``for event in server``,
    :meth:`events` or, under asyncio, ``async for event in server.aevents()``. Poll from one
    thread (or task) at a time; the other methods (:meth:`send`, :meth:`broadcast`,
    :meth:`publish`, :meth:`subscribe`, :meth:`unsubscribe`, :meth:`close`, :meth:`accept`,
    :meth:`reject`, :meth:`terminate`, :meth:`ping`, :meth:`set_user_data`, :meth:`stats`,
    :meth:`stop`) are safe from any thread.
    """

    #: How many events one poll (one FFI call) can return.
    batch_size = 256

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: Optional[Tuple[Union[str, "os.PathLike[str]"], Union[str, "os.PathLike[str]"]]] = None,
        **limits: Any,
    ) -> None:
        self._handle: int = 0
        if tls is not None:
            try:
                cert_path, key_path = tls
            except (TypeError, ValueError):
                raise TypeError("tls must be a (cert_path, key_path) pair") from None
            for name in ("tls_cert_file", "tls_key_file"):
                if limits.get(name) is not None:
                    raise TypeError(f"give either tls=(cert, key) or {name}=..., not both")
            limits["tls_cert_file"], limits["tls_key_file"] = cert_path, key_path
        uses_tls = any(limits.get(name) for name in _TLS_OPTIONS if name.startswith("tls_cert"))
        config = c_void_p()
        _check(_lib.wsembed_config_new(byref(config)))
        try:
            self._set_option(config, "host", host)
            self._set_option(config, "port", port)
            for name, value in limits.items():
                if value is None:
                    continue  # None: the engine's default
                if name in _SECONDS_ALIASES:
                    name, value = _SECONDS_ALIASES[name], int(math.ceil(float(value) * 1000))
                self._set_option(config, name, value)
            out = c_void_p()
            rc = _lib.wsembed_server_start(config, byref(out))
            if rc:
                detail = _ffi.last_error_message() or _ffi.result_text(rc)
                if uses_tls and rc == _abi.WSEMBED_ERR_INVALID_ARGUMENT:
                    detail = f"cannot use the TLS certificate/key: {detail}"
                raise error_for(rc, detail)
        finally:
            _lib.wsembed_config_free(config)
        self._handle = handle = out.value or 0
        self._finalizer = weakref.finalize(self, _free, handle)
        self._finalizer.atexit = False  # see _stop_all_at_exit
        _live.add(self)

        port_out = c_uint16()
        _check(_lib.wsembed_server_port(handle, byref(port_out)))
        fd_out = c_int()
        _check(_lib.wsembed_server_event_fd(handle, byref(fd_out)))
        self._host = host
        self._tls = uses_tls
        self._port = port_out.value
        self._fd = fd_out.value
        self._stopped = False
        self._drained = False
        self._poll_lock = threading.Lock()
        self._raw = bytearray(_EVENT_SIZE * self.batch_size)
        self._events = (_abi.wsembed_event * self.batch_size).from_buffer(self._raw)
        self._count = c_size_t()
        # Per-connection values of set_user_data (see there), and the lock that orders a
        # set_user_data against the conversion of that connection's Close.
        self._user_data: Dict[int, Any] = {}
        self._user_lock = threading.Lock()

    @staticmethod
    def _set_option(config: c_void_p, name: str, value: Any) -> None:
        key = _c_string(name, "option name")
        text = _option_value(name, value)
        _check(_lib.wsembed_config_set(config, key, _c_string(text, f"option {name}")))

    # ----------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        """The TCP port the server listens on (useful after ``port=0``)."""
        return self._port

    @property
    def host(self) -> str:
        """The interface the server listens on, as given."""
        return self._host

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS) for clients on this machine."""
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        if host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self._tls else "ws"
        return f"{scheme}://{host}:{self._port}"

    @property
    def tls(self) -> bool:
        """True when the server speaks TLS (``wss://``)."""
        return self._tls

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called (events may still be waiting to be polled)."""
        return self._stopped

    def fileno(self) -> int:
        """The engine's event descriptor: readable while events are waiting and after the
        server stopped. For ``select``/``selectors``/``loop.add_reader``; never read or close
        it. Readiness is level-style: it stays readable until :meth:`poll` took every event. It
        can also be readable with nothing waiting (a wake-up that raced with a poll): a poll then
        returns ``[]`` and clears it."""
        return self._fd

    # ----------------------------------------------------------------- events

    def poll(self, timeout: Optional[float] = None) -> List[Event]:
        """Waits up to ``timeout`` seconds (``None``: until something happens, ``0``: not at
        all) and returns every waiting event, at most :attr:`batch_size`, in one FFI call.
        Returns ``[]`` on timeout. Payloads are copied into ``str``/``bytes``.

        Raises :class:`ServerStoppedError` once the server was stopped and every event was
        taken.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._poll_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return []
        try:
            handle, events, count = self._handle, self._events, self._count
            cap = self.batch_size
            while True:
                if deadline is None:
                    wait_ms = _SLICE_MS
                else:
                    remaining = deadline - time.monotonic()
                    wait_ms = 0 if remaining <= 0 else min(_SLICE_MS, int(math.ceil(remaining * 1000)))
                rc = _poll(handle, events, cap, wait_ms, byref(count))
                if rc == _OK:
                    n = count.value
                    if n:
                        return self._convert(n)
                    if wait_ms == 0 or (deadline is not None and time.monotonic() >= deadline):
                        return []
                elif rc == _STOPPED:
                    self._stopped = self._drained = True
                    raise ServerStoppedError("the server was stopped and every event was taken", rc)
                else:
                    _raise(rc)
        finally:
            self._poll_lock.release()

    def _convert(self, n: int) -> List[Event]:
        out: List[Event] = []
        append = out.append
        user_data = self._user_data
        view = memoryview(self._raw)[: n * _EVENT_SIZE]
        try:
            for ev in _iter_unpack(view):
                kind = ev[_I_KIND]
                conn = ev[_I_CONN]
                # The C user_data is only a flag that the dict has a value for conn.
                ud = user_data.get(conn) if ev[_I_USER] else None
                if kind == _EV_TEXT:
                    length = ev[_I_LEN]
                    append(Message(conn, string_at(ev[_I_DATA], length).decode("utf-8") if length else "", True, ud))
                elif kind == _EV_BINARY:
                    length = ev[_I_LEN]
                    append(Message(conn, string_at(ev[_I_DATA], length) if length else b"", False, ud))
                elif kind == _EV_OPEN:
                    proto = ev[_I_PROTO]
                    append(
                        Open(
                            conn,
                            _decode(ev[_I_PEER]),
                            _decode(ev[_I_PATH]),
                            _decode(proto) if proto else None,
                            _headers(ev[_I_HEADERS], ev[_I_NHEADERS]),
                            ud,
                            _decode(ev[_I_EXT]) if ev[_I_EXT] else None,
                        )
                    )
                elif kind == _EV_CLOSE:
                    length = ev[_I_LEN]
                    reason = string_at(ev[_I_DATA], length).decode("utf-8", "replace") if length else ""
                    # Last event of conn: its Python value goes with it.
                    with self._user_lock:
                        ud = user_data.pop(conn, None)
                    append(Close(conn, ev[_I_CODE], reason, bool(ev[_I_CLEAN]), ud))
                elif kind == _EV_DRAIN:
                    append(Drain(conn, ud))
                elif kind == _EV_HANDSHAKE:
                    append(
                        Handshake(
                            conn,
                            _decode(ev[_I_PEER]),
                            _decode(ev[_I_PATH]),
                            _headers(ev[_I_HEADERS], ev[_I_NHEADERS]),
                            _strings(ev[_I_PROTOS], ev[_I_NPROTOS]),
                            ud,
                        )
                    )
                elif kind == _EV_PING or kind == _EV_PONG:
                    length = ev[_I_LEN]
                    payload = string_at(ev[_I_DATA], length) if length else b""
                    append((Ping if kind == _EV_PING else Pong)(conn, payload, ud))
                elif kind == _EV_RECONNECTING:
                    length = ev[_I_LEN]
                    reason = string_at(ev[_I_DATA], length).decode("utf-8", "replace") if length else ""
                    append(Reconnecting(conn, ev[_I_ATTEMPT], ev[_I_DELAY], ev[_I_FAILURE], ev[_I_STATUS], reason, ud))
                elif kind == _EV_FAILED:
                    length = ev[_I_LEN]
                    reason = string_at(ev[_I_DATA], length).decode("utf-8", "replace") if length else ""
                    # Last event of conn (when it comes after a Close, the dict is empty).
                    with self._user_lock:
                        ud = user_data.pop(conn, None) if ud is not None else None
                    append(Failed(conn, ev[_I_FAILURE], ev[_I_STATUS], reason, ud))
                # Unknown kinds (a newer engine) are skipped.
        finally:
            view.release()
        return out

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Yields events until the server is stopped (and drained), or, with ``timeout``,
        until no event arrived for ``timeout`` seconds. ``for event in server`` is
        ``events()``."""
        while True:
            try:
                batch = self.poll(timeout)
            except ServerStoppedError:
                return
            if not batch:
                return
            yield from batch

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    async def apoll(self) -> List[Event]:
        """Waits without blocking the running asyncio loop until events are waiting (via
        ``loop.add_reader`` on :meth:`fileno`) and returns them, like :meth:`poll`.
        Raises :class:`ServerStoppedError` once stopped and drained."""
        loop = asyncio.get_running_loop()
        while True:
            batch = self.poll(0)
            if batch:
                return batch
            ready = loop.create_future()

            def wake() -> None:
                if not ready.done():
                    ready.set_result(None)

            loop.add_reader(self._fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(self._fd)

    async def aevents(self) -> AsyncIterator[Event]:
        """``async for event in server.aevents()``: every event until the server is stopped
        and drained. Waits on the event descriptor with ``loop.add_reader``: no thread and no
        busy polling. Use one consumer per server."""
        while True:
            try:
                batch = await self.apoll()
            except ServerStoppedError:
                return
            for event in batch:
                yield event

    # ----------------------------------------------------------------- clients

    def connect(self, url: str, **options: Any) -> int:
        """Dials ``url`` (``ws://`` or ``wss://``) from this engine and returns the new
        connection's id at once; its events (:class:`Open` with the response headers and
        :attr:`Open.extensions`, :class:`Message`, :class:`Close`, :class:`Reconnecting`,
        :class:`Failed`) arrive in this server's polls, and :meth:`send`, :meth:`close`,
        :meth:`terminate` work on it. ``Server(listen=False)`` is a client-only engine.
        Options: see :data:`CLIENT_OPTIONS` (e.g. ``protocols=["chat"]``,
        ``headers={"Authorization": "..."}``, ``reconnect=True``, ``compression=True``)."""
        opts = c_void_p()
        _check(_lib.wsembed_client_options_new(byref(opts)))
        try:
            for name, text in _client_option_texts(options):
                _check(_lib.wsembed_client_options_set(opts, _c_string(name, "client option name"),
                                                        _c_string(text, f"client option {name}")))
            out = ctypes.c_uint64()
            _check(_lib.wsembed_server_connect(self._handle, _c_string(url, "url"), opts, byref(out)))
        finally:
            _lib.wsembed_client_options_free(opts)
        return out.value

    # ----------------------------------------------------------------- sending

    def send(self, conn: int, data: Data) -> None:
        """Queues one message to ``conn``: ``str`` as text, bytes-like as binary. The data is
        copied before returning. Raises :class:`ConnectionClosedError` for a closed or unknown
        connection, :class:`WouldBlockError` when its queue is over ``max_buffered_bytes``
        (wait for a ``Drain``) or the engine's command queue is over
        ``max_queued_command_bytes``, :class:`ServerStoppedError` after :meth:`stop`. A
        refused message is not kept anywhere: memory use stays bounded by the engine's
        limits however slow the peer."""
        if type(data) is bytes:
            rc = _send(self._handle, conn, _BINARY, data, len(data))
        else:
            kind, buf, n = _payload(data)
            rc = _send(self._handle, conn, kind, buf, n)
        if rc:
            _raise(rc)

    def broadcast(self, data: Data, exclude: Optional[int] = None) -> None:
        """Sends one message to every open connection except ``exclude``. The frame is
        encoded once. A recipient whose queue is full is skipped (``backpressure="block"``)
        or closed with 1008 (``"close"``)."""
        kind, buf, n = _payload(data)
        rc = _broadcast(self._handle, kind, buf, n, exclude or 0)
        if rc:
            _raise(rc)

    def publish(self, topic: str, data: Data) -> None:
        """Sends one message to every connection subscribed to ``topic``."""
        kind, buf, n = _payload(data)
        rc = _publish(self._handle, _c_string(topic, "topic"), kind, buf, n)
        if rc:
            _raise(rc)

    def subscribe(self, conn: int, topic: str) -> None:
        """Subscribes ``conn`` to ``topic`` (again is harmless; closing leaves every topic)."""
        _check(_lib.wsembed_server_subscribe(self._handle, conn, _c_string(topic, "topic")))

    def unsubscribe(self, conn: int, topic: str) -> None:
        """Unsubscribes ``conn`` from ``topic``."""
        _check(_lib.wsembed_server_unsubscribe(self._handle, conn, _c_string(topic, "topic")))

    def close(self, conn: int, code: int = 1000, reason: str = "") -> None:
        """Starts the closing handshake with ``conn``. ``code`` is 1000-1003, 1007-1014 or
        3000-4999; ``reason`` at most 123 bytes of UTF-8 (the engine checks both and raises
        :class:`InvalidArgumentError` with its message). Sends to ``conn`` fail from now on;
        a ``Close`` event follows."""
        code = _fits(code, _CLOSE_CODE_T, "close code")
        raw = _c_string(reason, "close reason") if reason else None
        _check(_lib.wsembed_server_close(self._handle, conn, code, raw))

    def terminate(self, conn: int) -> None:
        """Drops ``conn``'s TCP connection at once, without a closing handshake (an abortive
        close, as Node's ``socket.terminate()``); a ``Close`` event with code 1006 follows.
        Works in any phase, also after :meth:`close`. Raises :class:`ConnectionClosedError`
        once the connection is gone."""
        _check(_lib.wsembed_server_terminate(self._handle, conn))

    def ping(self, conn: int, data: Union[bytes, bytearray, memoryview, str] = b"") -> None:
        """Sends a ping carrying ``data`` (at most 125 bytes; ``str`` is sent as UTF-8). With
        ``ping_events=True`` the answer arrives as a :class:`Pong` event with the same
        payload (round-trip time measurement). The engine pings idle peers by itself
        (``ping_interval_ms``); this is for the application's own use."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        _check(_lib.wsembed_server_ping(self._handle, conn, raw, len(raw)))

    def set_user_data(self, conn: int, value: Any) -> None:
        """Attaches any Python object to ``conn``: every later event of the connection
        carries it as ``event.user_data``, its :class:`Close` included, after which the
        server drops its reference. ``None`` detaches it. Works in any phase (a
        :class:`Handshake` included); setting again replaces the value.

        The object stays on the Python side, in a dict of this server keyed by ``conn``
        (never passed to C as a pointer, so it cannot be freed under the engine); the C
        ``user_data`` only holds a "has a value" flag. Raises
        :class:`ConnectionClosedError` once the connection is gone."""
        with self._user_lock:
            _check(_lib.wsembed_server_set_user_data(self._handle, conn, None if value is None else _HAS_USER_DATA))
            if value is None:
                self._user_data.pop(conn, None)
            else:
                self._user_data[conn] = value

    def get_user_data(self, conn: int, default: Any = None) -> Any:
        """What :meth:`set_user_data` attached to ``conn`` and is still held (until its
        :class:`Close` was polled), else ``default``."""
        return self._user_data.get(conn, default)

    def accept(self, conn: int, protocol: Optional[str] = None) -> None:
        """Accepts the upgrade request of a :class:`Handshake` event; an :class:`Open` event
        follows. ``protocol`` picks one of the subprotocols the client offered
        (:attr:`Handshake.protocols`); ``None`` lets the server's ``subprotocols`` option
        decide (the engine completes the handshake without a subprotocol when ``protocol``
        was not offered). Raises :class:`ConnectionClosedError` if the handshake was already answered
        or timed out (or the client went away)."""
        raw = _c_string(protocol, "protocol") if protocol is not None else None
        _check(_lib.wsembed_server_accept(self._handle, conn, raw))

    def reject(self, conn: int, status: int = 403, body: str = "") -> None:
        """Refuses the upgrade request of a :class:`Handshake` event with HTTP ``status``
        (400-599) and a short text ``body`` (at most 1024 bytes of UTF-8; the engine checks
        both and raises :class:`InvalidArgumentError` with its message). No further event
        follows for ``conn``. Raises :class:`ConnectionClosedError` if the handshake was
        already answered or timed out."""
        status = _fits(status, _REJECT_STATUS_T, "HTTP status")
        raw = _c_string(body, "reject body") if body else None
        _check(_lib.wsembed_server_reject(self._handle, conn, status, raw))

    def stats(self) -> Stats:
        """A snapshot of the server's counters (all since start), as a :class:`Stats`.
        Still readable after :meth:`stop`."""
        out = _abi.wsembed_stats()
        _check(_lib.wsembed_server_stats(self._handle, byref(out)))
        return Stats(*(getattr(out, name) for name in _abi.FIELDS["wsembed_stats"]))

    def buffered_amount(self, conn: int) -> int:
        """How many bytes are queued for ``conn`` and not yet written to its socket."""
        out = c_size_t()
        _check(_lib.wsembed_server_buffered_amount(self._handle, conn, byref(out)))
        return out.value

    # ----------------------------------------------------------------- lifecycle

    def stop(self, timeout: float = 1.0) -> None:
        """Stops the server: sends 1001 (going away) to every client after what was already
        queued, waits at most ``timeout`` seconds for the closing handshakes, and stops the
        engine thread. Events still waiting can be polled afterwards. Stopping again does
        nothing. Safe from any thread."""
        self._stopped = True
        ms = max(0, min(int(math.ceil(timeout * 1000)), 0xFFFFFFFF))
        rc = _lib.wsembed_server_stop(self._handle, ms)
        if rc and rc != _STOPPED:
            _raise(rc)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<wsembed.Server {self.url} {state}>"


@atexit.register
def _stop_all_at_exit() -> None:
    # Servers still alive at exit: stop them so clients see 1001 rather than a dropped TCP
    # connection. They are not freed: another (daemon) thread may still be inside a call.
    for server in list(_live):
        try:
            if not server._stopped:
                server.stop(timeout=0.5)
        except WsembedError:
            pass


def _options_doc() -> str:
    lines = ["", "    Engine options (from the library: name, kind, default):", ""]
    for info in _OPTIONS.values():
        default = f"default ``{info.default}``" if info.default else "no default"
        lines.append(f"    ``{info.name}`` ({info.kind}, {default})")
        lines.append(f"        {info.doc}")
    lines += ["", "    Host-only keywords:", ""]
    for name, doc in HOST_OPTIONS.items():
        lines.append(f"    ``{name}``")
        lines.append(f"        {doc}")
    return "\n".join(lines) + "\n"


# The option list of the docstring is the library's, so it cannot drift from the engine.
_head, _sep, _tail = (Server.__doc__ or "").partition("\n    Unknown names and bad values")
Server.__doc__ = _head + _options_doc() + _sep + _tail
