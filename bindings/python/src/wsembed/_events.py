"""Event types returned by :meth:`wsembed.Server.poll`. Every payload is a Python copy."""

from __future__ import annotations

import sys
from dataclasses import dataclass, make_dataclass
from typing import Any, List, Optional, Tuple, Union

from . import _abi

__all__ = ["Event", "Handshake", "Open", "Message", "Close", "Drain", "Ping", "Pong", "Reconnecting", "Failed", "Stats", "FAILURES"]

if sys.version_info >= (3, 10):
    _event = dataclass(slots=True)
else:  # pragma: no cover - slots= needs 3.10
    _event = dataclass


class Event:
    """Base class of every event. ``conn`` (an int, never 0) names the connection;
    ``user_data`` is what :meth:`Server.set_user_data` attached to it (``None`` if nothing),
    in every event of the connection after that call, its :class:`Close` included."""

    __slots__ = ()
    conn: int
    user_data: Any


def _find_header(headers: List[Tuple[str, str]], name: str, default: Optional[str]) -> Optional[str]:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return default


@_event
class Handshake(Event):
    """An upgrade request waits for approval (only with ``approve_handshakes=True``).

    Decide with :meth:`Server.accept` (an :class:`Open` follows) or :meth:`Server.reject`
    (the client gets that HTTP status; no further event for ``conn``). A handshake left
    unanswered for ``approval_timeout_ms`` is refused with HTTP 503.
    """

    conn: int
    #: Peer address as ``"ip:port"``.
    peer: str
    #: Request target including the query string, e.g. ``"/ws?token=abc"``.
    path: str
    #: Request headers (Cookie, Authorization, Origin...) as ``(name, value)`` pairs in the
    #: order received.
    headers: List[Tuple[str, str]]
    #: The subprotocols the client offered, in its order (empty if none).
    protocols: List[str]
    user_data: Any = None

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first header called ``name`` (case-insensitive), or ``default``."""
        return _find_header(self.headers, name, default)


@_event
class Open(Event):
    """A client completed the WebSocket handshake."""

    conn: int
    #: Peer address as ``"ip:port"``.
    peer: str
    #: Request target including the query string, e.g. ``"/ws?room=1"``.
    path: str
    #: The negotiated subprotocol, or ``None``.
    protocol: Optional[str]
    #: Request headers as ``(name, value)`` pairs in the order received (for a client
    #: connection made with :meth:`Server.connect`: the server's response headers).
    headers: List[Tuple[str, str]]
    user_data: Any = None
    #: The negotiated extension as sent in the handshake (e.g. ``"permessage-deflate;
    #: server_no_context_takeover; client_no_context_takeover"``), or ``None``.
    extensions: Optional[str] = None

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first header called ``name`` (case-insensitive), or ``default``."""
        return _find_header(self.headers, name, default)


@_event
class Message(Event):
    """A whole message: ``data`` is ``str`` for a text message, ``bytes`` for a binary one."""

    conn: int
    data: Union[str, bytes]
    is_text: bool
    user_data: Any = None

    @property
    def text(self) -> str:
        """The message as ``str`` (a binary message is decoded as UTF-8)."""
        data = self.data
        return data if isinstance(data, str) else data.decode("utf-8")

    @property
    def is_binary(self) -> bool:
        """True for a binary message."""
        return not self.is_text


@_event
class Close(Event):
    """The connection ended; this is its last event and its id is stale from now on."""

    conn: int
    #: Close code: the peer's, ours, 1005 if the peer sent none, 1006 if TCP dropped.
    code: int
    reason: str
    #: True when the closing handshake completed.
    clean: bool
    user_data: Any = None


@_event
class Drain(Event):
    """The connection's send queue fell below half of ``max_buffered_bytes`` after a
    :class:`~wsembed.WouldBlockError`: sending may resume."""

    conn: int
    user_data: Any = None


@_event
class Ping(Event):
    """The peer sent a ping, already answered by the engine (only with ``ping_events=True``).
    ``data`` is its payload (at most 125 bytes)."""

    conn: int
    data: bytes
    user_data: Any = None


@_event
class Pong(Event):
    """The peer sent a pong, e.g. the answer to :meth:`Server.ping` (only with
    ``ping_events=True``). ``data`` is its payload."""

    conn: int
    data: bytes
    user_data: Any = None


#: ``WSEMBED_FAILURE_*`` number -> short name (``"connection_refused"``...), from the header.
FAILURES = {value: name[len("WSEMBED_FAILURE_"):].lower() for name, value in _abi.wsembed_failure.items()}


class _ClientFailure(Event):
    """What :class:`Reconnecting` and :class:`Failed` share: a ``failure`` number."""

    __slots__ = ()
    failure: int

    @property
    def failure_name(self) -> str:
        """The short name of ``failure`` (``"connection_refused"``...)."""
        return FAILURES.get(self.failure, str(self.failure))


@_event
class Reconnecting(_ClientFailure):
    """A client connection (:meth:`Server.connect` with ``reconnect=True``) failed or lost
    its server and dials again in ``delay_ms`` milliseconds. The connection id survives."""

    conn: int
    #: The retry's number (1, 2, ... since the connection last stayed open).
    attempt: int
    delay_ms: int
    #: A ``WSEMBED_FAILURE_*`` number; :attr:`failure_name` is its short name.
    failure: int
    #: The HTTP status of a refusal, or the close code when an open connection ended; else 0.
    http_status: int
    reason: str
    user_data: Any = None


@_event
class Failed(_ClientFailure):
    """A client connection failed for good: its last event (with ``reconnect=True`` always,
    after its :class:`Close` if it was open; without, when it never opened)."""

    conn: int
    failure: int
    http_status: int
    reason: str
    user_data: Any = None


def _make_stats() -> type:
    names = _abi.FIELDS["wsembed_stats"]
    docs = _abi.FIELD_DOCS["wsembed_stats"]
    lines = [
        "A snapshot of a server's counters, all since start (:meth:`Server.stats`); the fields",
        "are those of the C ``struct wsembed_stats``, in its order:",
        "",
    ]
    for name in names:
        lines.append(f"``{name}``" + (f"\n    {docs[name]}" if docs[name] else ""))
    cls = make_dataclass("Stats", [(name, int) for name in names], frozen=True)
    cls.__doc__ = "\n".join(lines)
    cls.__module__ = "wsembed"
    return cls


#: The engine's counters (C ``struct wsembed_stats``): a frozen dataclass whose fields are
#: derived from the header, so new counters appear without a change here.
Stats = _make_stats()
