"""The :class:`Server` class: a wsembed engine running on its own thread."""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import math
import os
import threading
import time
import weakref
from ctypes import byref, c_char, c_int, c_size_t, c_uint16, c_void_p, string_at
from typing import Any, AsyncIterator, Iterator, List, Optional, Tuple, Union

from . import _ffi
from ._errors import InvalidArgumentError, InvalidUtf8Error, ServerStoppedError, WsembedError, error_for
from ._events import Close, Drain, Event, Handshake, Message, Open, Stats

__all__ = ["Server", "Data"]

#: What ``send``/``broadcast``/``publish`` accept: ``str`` is sent as a text message, any
#: bytes-like object (``bytes``, ``bytearray``, ``memoryview``...) as a binary message.
Data = Union[str, bytes, bytearray, memoryview]

_lib = _ffi.lib
_poll = _lib.wsembed_server_poll
_send = _lib.wsembed_server_send
_broadcast = _lib.wsembed_server_broadcast
_publish = _lib.wsembed_server_publish
_TEXT = _ffi.TEXT
_BINARY = _ffi.BINARY
_OK = _ffi.OK
_STOPPED = _ffi.ERR_STOPPED
_EVENT_SIZE = _ffi.EVENT_FORMAT.size
_iter_unpack = _ffi.EVENT_FORMAT.iter_unpack

# A blocking poll waits in slices this long so that Ctrl-C (KeyboardInterrupt) and other
# signal handlers get to run: Python only runs them between foreign calls.
_SLICE_MS = 250

# Options given in seconds by their Python alias: ping_interval=30 -> ping_interval_ms=30000.
_SECONDS_ALIASES = ("handshake_timeout", "ping_interval", "pong_timeout", "close_timeout", "approval_timeout")

_TLS_OPTIONS = ("tls_cert_file", "tls_key_file", "tls_cert_pem", "tls_key_pem")

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
        for h in (_ffi.Header * count).from_address(address):
            pairs.append(
                (
                    (h.name or b"").decode("utf-8", "replace"),
                    (h.value or b"").decode("utf-8", "replace"),
                )
            )
    return pairs


class Server:
    """A WebSocket server running on a background thread of the wsembed engine.

    ``Server(host="127.0.0.1", port=0, tls=None, **options)`` starts listening at once;
    ``port=0`` picks a free port (read it back from :attr:`port`). Every other keyword is an
    engine option passed by name (numbers as ``int``, lists as a list or a comma-separated
    string, switches as ``bool``, paths as ``str`` or :class:`os.PathLike`):

    Limits and timeouts
        ``max_message_size``, ``max_frame_size`` (larger closes with 1009),
        ``max_connections`` (more get HTTP 503), ``handshake_timeout_ms``,
        ``max_header_bytes`` (larger gets 431), ``ping_interval_ms`` (0 = never),
        ``pong_timeout_ms``, ``close_timeout_ms``. ``handshake_timeout``, ``ping_interval``,
        ``pong_timeout``, ``close_timeout`` and ``approval_timeout`` take seconds instead.
    Backpressure
        ``max_buffered_bytes`` (cap on bytes queued per connection), ``backpressure``:
        ``"block"`` (sends raise :class:`WouldBlockError`, broadcasts skip the connection)
        or ``"close"`` (close it with ``backpressure_close_code``: 1008, or 1013 "try again
        later").
    Admission
        ``allowed_origins``: browser origins allowed to connect (exact ``Origin`` match such
        as ``"https://example.com"``; empty = any; requests without ``Origin`` pass); others
        get HTTP 403. ``max_connections_per_ip`` and ``max_handshakes_per_ip_per_sec``
        (0 = no limit): more get HTTP 429. ``approve_handshakes=True`` reports each valid
        upgrade request as a :class:`Handshake` event and waits for :meth:`accept` or
        :meth:`reject`; one left unanswered for ``approval_timeout_ms`` (default 10000) gets
        HTTP 503.
    Rate limits (per connection, token bucket with a one-second burst; 0 = no limit)
        ``max_messages_per_sec``, ``max_bytes_per_sec``; ``rate_limit_policy``: ``"close"``
        (close with 1008, the default) or ``"drop"`` (discard the message and count it in
        :attr:`Stats.rate_limited`).
    TLS (wss://; TLS 1.2 and 1.3)
        ``tls_cert_file`` and ``tls_key_file`` (paths of PEM files), or ``tls_cert_pem`` and
        ``tls_key_pem`` (the PEM text), or ``tls=(cert_path, key_path)`` for short. With TLS,
        :attr:`url` starts with ``wss://``. An unreadable or invalid certificate or key
        raises :class:`InvalidArgumentError`.
    Other
        ``subprotocols`` (the server's list, most preferred first), ``static_dir`` (serve
        plain HTTP GET/HEAD from this directory), ``max_static_file_bytes``.

    Unknown names and bad values raise :class:`InvalidArgumentError`; a port in use raises
    :class:`ServerIOError`.

    Use it as a context manager: leaving the block stops the server, which closes every
    client with 1001 (going away). Read events with :meth:`poll`, ``for event in server``,
    :meth:`events` or, under asyncio, ``async for event in server.aevents()``. Poll from one
    thread (or task) at a time; the other methods (:meth:`send`, :meth:`broadcast`,
    :meth:`publish`, :meth:`subscribe`, :meth:`unsubscribe`, :meth:`close`, :meth:`accept`,
    :meth:`reject`, :meth:`stats`, :meth:`stop`) are safe from any thread.
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
        uses_tls = any(limits.get(name) for name in _TLS_OPTIONS)
        config = c_void_p()
        _check(_lib.wsembed_config_new(byref(config)))
        try:
            self._set_option(config, "host", host)
            self._set_option(config, "port", port)
            for name, value in limits.items():
                if name in _SECONDS_ALIASES and value is not None:
                    name, value = name + "_ms", int(math.ceil(float(value) * 1000))
                self._set_option(config, name, value)
            out = c_void_p()
            rc = _lib.wsembed_server_start(config, byref(out))
            if rc:
                detail = _ffi.last_error_message() or _ffi.result_text(rc)
                if uses_tls and rc == _ffi.ERR_INVALID_ARGUMENT:
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
        self._events = (_ffi.Event * self.batch_size).from_buffer(self._raw)
        self._count = c_size_t()

    @staticmethod
    def _set_option(config: c_void_p, name: str, value: Any) -> None:
        key = _c_string(name, "option name")
        if isinstance(value, bool):
            # Switches such as approve_handshakes; a numeric option rejects "true" itself.
            _check(_lib.wsembed_config_set(config, key, b"true" if value else b"false"))
            return
        if isinstance(value, int):
            if value < 0:
                raise InvalidArgumentError(f"option {name}: negative value {value}")
            _check(_lib.wsembed_config_set_int(config, key, value))
            return
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise TypeError(f"option {name}: expected a number or a string, not {type(value).__name__}")
        _check(_lib.wsembed_config_set(config, key, _c_string(value, f"option {name}")))

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
        it. Readiness is level-style: it stays readable until :meth:`poll` took every event."""
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
        view = memoryview(self._raw)[: n * _EVENT_SIZE]
        try:
            for kind, code, clean, conn, data, length, path, peer, proto, headers, nheaders, protos in _iter_unpack(
                view
            ):
                if kind == 2:  # TEXT
                    append(Message(conn, string_at(data, length).decode("utf-8") if length else "", True))
                elif kind == 3:  # BINARY
                    append(Message(conn, string_at(data, length) if length else b"", False))
                elif kind == 1:  # OPEN
                    pairs = _headers(headers, nheaders)
                    append(Open(conn, _decode(peer), _decode(path), _decode(proto) if proto else None, pairs))
                elif kind == 4:  # CLOSE
                    reason = string_at(data, length).decode("utf-8", "replace") if length else ""
                    append(Close(conn, code, reason, bool(clean)))
                elif kind == 5:  # DRAIN
                    append(Drain(conn))
                elif kind == 6:  # HANDSHAKE
                    offered = [p.strip() for p in _decode(protos).split(",")] if protos else []
                    append(
                        Handshake(
                            conn, _decode(peer), _decode(path), _headers(headers, nheaders), [p for p in offered if p]
                        )
                    )
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

    # ----------------------------------------------------------------- sending

    def send(self, conn: int, data: Data) -> None:
        """Queues one message to ``conn``: ``str`` as text, bytes-like as binary. The data is
        copied before returning. Raises :class:`ConnectionClosedError` for a closed or unknown
        connection, :class:`WouldBlockError` when its queue is full (wait for a ``Drain``),
        :class:`ServerStoppedError` after :meth:`stop`."""
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
        3000-4999; ``reason`` at most 123 bytes of UTF-8. Sends to ``conn`` fail from now
        on; a ``Close`` event follows."""
        if not 0 <= code <= 0xFFFF:
            raise InvalidArgumentError(f"close code {code} is out of range")
        raw = _c_string(reason, "close reason") if reason else None
        _check(_lib.wsembed_server_close(self._handle, conn, code, raw))

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
        (400-599) and a short text ``body`` (at most 1024 bytes of UTF-8). No further event
        follows for ``conn``. Raises :class:`ConnectionClosedError` if the handshake was
        already answered or timed out."""
        if not 0 <= status <= 0xFFFF:
            raise InvalidArgumentError(f"HTTP status {status} is out of range (400-599)")
        raw = _c_string(body, "reject body") if body else None
        _check(_lib.wsembed_server_reject(self._handle, conn, status, raw))

    def stats(self) -> Stats:
        """A snapshot of the server's counters (all since start), as a :class:`Stats`.
        Still readable after :meth:`stop`."""
        out = _ffi.Stats()
        _check(_lib.wsembed_server_stats(self._handle, byref(out)))
        return Stats(*(getattr(out, name) for name in _ffi.STATS_FIELDS))

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
