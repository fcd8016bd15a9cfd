"""Event types returned by :meth:`wsembed.Server.poll`. Every payload is a Python copy."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

__all__ = ["Event", "Open", "Message", "Close", "Drain"]

if sys.version_info >= (3, 10):
    _event = dataclass(slots=True)
else:  # pragma: no cover - slots= needs 3.10
    _event = dataclass


class Event:
    """Base class of every event. ``conn`` (an int, never 0) names the connection."""

    __slots__ = ()
    conn: int


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
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default


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
