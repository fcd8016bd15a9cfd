"""The :class:`Client` class: one outgoing WebSocket connection.

Design: every :class:`Client` owns a small client-only engine (``Server(listen=False)``,
one loop thread). Its polls therefore only ever carry this connection's events, so clients
never steal or mix up each other's events, and closing a client releases its engine. Users
who want many connections on one engine (or to mix server and client roles) use
:meth:`Server.connect` directly and dispatch on ``event.conn``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, AsyncIterator, Deque, Dict, Iterator, List, Optional, Tuple, Union

from ._errors import ClientClosedError, ServerStoppedError
from ._events import Close, Event, Failed, Message, Open, Reconnecting
from ._server import Data, Server

__all__ = ["Client", "connect", "connect_async"]


class Client:
    """A WebSocket client connection. Create it with :func:`wsembed.connect` (blocks until
    open) or ``await wsembed.connect_async(...)``.

    ``send(data)`` queues a message (``str`` text, bytes-like binary); ``recv(timeout=None)``
    returns the next message as ``str``/``bytes`` and raises :class:`ClientClosedError`
    (``close_code``, ``reason``, ``failure``, ``http_status``) once the connection ended;
    ``for message in client`` iterates until then. ``arecv()``/``async for`` are the asyncio
    forms (waiting on the engine's event descriptor). :meth:`recv_event` returns every event
    (:class:`Open` on each (re)connect, :class:`Message`, :class:`Reconnecting`,
    :class:`Close`, :class:`Failed`). With ``reconnect=True`` a dropped connection is dialed
    again with the same id; :attr:`protocol`, :attr:`extensions` and
    :attr:`response_headers` follow the latest :class:`Open`.
    """

    def __init__(self, url: str, *, engine_options: Optional[Dict[str, Any]] = None, **options: Any) -> None:
        self.url = url
        self._reconnect = bool(options.get("reconnect")) or any(
            k.startswith("reconnect_") and v is not None for k, v in options.items()
        )
        self._server = Server(listen=False, **(engine_options or {}))
        try:
            self.conn = self._server.connect(url, **options)
        except BaseException:
            self._server.stop(0)
            raise
        self._pending: Deque[Event] = collections.deque()
        self._ended: Optional[ClientClosedError] = None
        self._close_event: Optional[Close] = None
        self.opened = False
        self.protocol: Optional[str] = None
        self.extensions: Optional[str] = None
        self.response_headers: List[Tuple[str, str]] = []

    # ------------------------------------------------------------ events

    def _absorb(self, event: Event) -> None:
        if isinstance(event, Open):
            self.opened = True
            self.protocol, self.extensions = event.protocol, event.extensions
            self.response_headers = event.headers
        elif isinstance(event, Close):
            self._close_event = event
            if not self._reconnect:
                self._end(None)
        elif isinstance(event, Failed):
            self._end(event)

    def _end(self, failed: Optional[Failed]) -> None:
        close = self._close_event
        code = close.code if close else 1006
        if failed is not None:
            reason = failed.reason or (close.reason if close else "")
            msg = f"connection failed ({failed.failure_name}"
            msg += f", {failed.http_status}" if failed.http_status else ""
            msg += f"): {reason}" if reason else ")"
            self._ended = ClientClosedError(msg, code, reason, bool(close and close.clean),
                                            failed.failure, failed.http_status)
        else:
            reason = close.reason if close else ""
            self._ended = ClientClosedError(f"connection closed: {code} {reason}".rstrip(), code, reason,
                                            bool(close and close.clean))
        self._server.stop(0)

    def _take(self, batch: List[Event]) -> None:
        for event in batch:
            if event.conn == self.conn:
                self._absorb(event)
                self._pending.append(event)

    def recv_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event of this connection, or ``None`` after ``timeout`` seconds. Raises
        :class:`ClientClosedError` once the last event was returned."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self._ended is not None:
                raise self._ended
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                batch = self._server.poll(remaining)
            except ServerStoppedError:
                if self._ended is None:
                    self._end(None)
                continue
            self._take(batch)
            if not batch and deadline is not None and time.monotonic() >= deadline:
                return None
        return self._pending.popleft()

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """The next message (``str`` for text, ``bytes`` for binary). Raises
        :class:`TimeoutError` after ``timeout`` seconds, :class:`ClientClosedError` once the
        connection ended (for good, with ``reconnect=True``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.recv_event(remaining)
            if event is None:
                raise TimeoutError(f"no message within {timeout}s")
            if isinstance(event, Message):
                return event.data

    def __iter__(self) -> Iterator[Union[str, bytes]]:
        while True:
            try:
                yield self.recv()
            except ClientClosedError:
                return

    async def arecv_event(self) -> Event:
        """:meth:`recv_event` for asyncio (no thread, no busy polling)."""
        while not self._pending:
            if self._ended is not None:
                raise self._ended
            try:
                self._take(await self._server.apoll())
            except ServerStoppedError:
                if self._ended is None:
                    self._end(None)
        return self._pending.popleft()

    async def arecv(self) -> Union[str, bytes]:
        """:meth:`recv` for asyncio (use ``asyncio.wait_for`` for a timeout)."""
        while True:
            event = await self.arecv_event()
            if isinstance(event, Message):
                return event.data

    def __aiter__(self) -> AsyncIterator[Union[str, bytes]]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Union[str, bytes]]:
        while True:
            try:
                yield await self.arecv()
            except ClientClosedError:
                return

    def _wait_open(self, timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.opened:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.recv_event(remaining)
            if event is None:
                self.terminate()
                raise TimeoutError(f"{self.url}: not open within {timeout}s")

    async def _await_open(self) -> None:
        while not self.opened:
            await self.arecv_event()

    # ------------------------------------------------------------ commands

    def send(self, data: Data) -> None:
        """Queues one message (``str`` as text, bytes-like as binary). Raises
        :class:`NotOpenError` between reconnects (unless ``queue_while_connecting``),
        :class:`WouldBlockError` when the queue is full, :class:`ClientClosedError` after the end."""
        if self._ended is not None:
            raise self._ended
        self._server.send(self.conn, data)

    async def asend(self, data: Data) -> None:
        """:meth:`send` (which never blocks) as a coroutine."""
        self.send(data)

    def ping(self, data: Union[bytes, str] = b"") -> None:
        self._server.ping(self.conn, data)

    def _start_close(self, code: int, reason: str) -> bool:
        """Sends the close unless the connection already ended; False when it had."""
        if self._ended is not None:
            return False
        try:
            self._server.close(self.conn, code, reason)
        except Exception:
            pass  # already closing or gone: the wait below sees its end
        return True

    def close(self, code: int = 1000, reason: str = "", timeout: float = 5.0) -> None:
        """Starts the closing handshake and waits up to ``timeout`` seconds for its end
        (messages still arriving meanwhile are discarded). Closing again does nothing."""
        if self._start_close(code, reason):
            self._drain(timeout)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if not self._start_close(code, reason):
            return
        try:
            while True:
                await self.arecv_event()
        except ClientClosedError:
            pass

    def terminate(self) -> None:
        """Drops the TCP connection at once (no closing handshake; code 1006)."""
        if self._ended is not None:
            return
        try:
            self._server.terminate(self.conn)
        except Exception:
            pass
        self._drain(2.0)

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv_event(max(0.0, deadline - time.monotonic()))
        except ClientClosedError:
            return
        if self._ended is None:
            self._end(None)

    @property
    def closed(self) -> bool:
        """True once the connection ended for good."""
        return self._ended is not None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("open" if self.opened else "connecting")
        return f"<wsembed.Client {self.url} {state}>"


def connect(url: str, *, open_timeout: Optional[float] = 10.0, engine_options: Optional[Dict[str, Any]] = None,
            **options: Any) -> Client:
    """Connects to ``url`` and returns an open :class:`Client`. Blocks until the handshake
    completed (at most ``open_timeout`` seconds, :class:`TimeoutError` after; ``None``: no
    limit, e.g. with ``reconnect=True`` waiting for a server to appear). Raises
    :class:`ClientClosedError` (with ``failure``/``http_status``) when it failed for good.
    ``options``: see :data:`wsembed.CLIENT_OPTIONS`; ``engine_options`` go to the client's
    engine (``max_message_size``, ``ping_interval_ms``...)."""
    client = Client(url, engine_options=engine_options, **options)
    client._wait_open(open_timeout)
    return client


async def connect_async(url: str, *, open_timeout: Optional[float] = 10.0,
                        engine_options: Optional[Dict[str, Any]] = None, **options: Any) -> Client:
    """:func:`connect` for asyncio: ``client = await wsembed.connect_async(url)`` or
    ``async with await wsembed.connect_async(url) as client``."""
    client = Client(url, engine_options=engine_options, **options)
    try:
        await asyncio.wait_for(client._await_open(), open_timeout)
    except asyncio.TimeoutError:
        client.terminate()
        raise TimeoutError(f"{url}: not open within {open_timeout}s") from None
    return client
