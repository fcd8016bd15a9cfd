"""Event types returned by :meth:`wsembed.Server.poll`. Every payload is a Python copy."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

__all__ = ["Event", "Handshake", "Open", "Message", "Close", "Drain", "Stats"]

if sys.version_info >= (3, 10):
    _event = dataclass(slots=True)
else:  # pragma: no cover - slots= needs 3.10
    _event = dataclass


class Event:
    """Base class of every event. ``conn`` (an int, never 0) names the connection."""

    __slots__ = ()
    conn: int


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
    #: Request headers as ``(name, value)`` pairs in the order received.
    headers: List[Tuple[str, str]]

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first header called ``name`` (case-insensitive), or ``default``."""
        return _find_header(self.headers, name, default)


@_event
class Message(Event):
    """A whole message: ``data`` is ``str`` for a text message, ``bytes`` for a binary one."""

    conn: int
    data: Union[str, bytes]
    is_text: bool

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


@_event
class Drain(Event):
    """The connection's send queue fell below half of ``max_buffered_bytes`` after a
    :class:`~wsembed.WouldBlockError`: sending may resume."""

    conn: int


@dataclass(frozen=True)
class Stats:
    """A snapshot of a server's counters, all since start (:meth:`Server.stats`)."""

    #: WebSocket connections open now.
    open_connections: int
    #: Upgrades completed (101 sent).
    handshakes_accepted: int
    #: Upgrade attempts refused: bad requests, 403 origin, 429 per-IP limits, 503 (full or
    #: unanswered approval), rejections by :meth:`Server.reject`, handshake timeouts.
    handshakes_rejected: int
    messages_in: int
    #: Messages queued for sending (a broadcast counts once per recipient).
    messages_out: int
    #: Bytes read from sockets (after TLS decryption).
    bytes_in: int
    #: Bytes written to sockets (before TLS encryption).
    bytes_out: int
    #: Broadcast/publish deliveries skipped because the recipient's queue was full.
    dropped_deliveries: int
    #: Messages dropped by the rate limit (``rate_limit_policy="drop"``).
    rate_limited: int
    #: Closes with a completed close handshake (either side started it).
    closes_clean: int
    #: Closes because the peer broke the protocol (1002, 1007, 1009).
    closes_protocol_error: int
    #: Closes because the peer stopped answering (ping timeout, close timeout).
    closes_timeout: int
    #: TCP connections lost without a close handshake (1006).
    closes_dropped: int
    #: Closes for policy: rate limit or send buffer full (1008/1013).
    closes_policy: int
