"""Exceptions raised by wsembed, mapped from the C result codes."""

from __future__ import annotations

__all__ = [
    "WsembedError",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "ConnectionClosedError",
    "ServerStoppedError",
    "WouldBlockError",
    "ServerIOError",
    "InternalError",
]


class WsembedError(Exception):
    """Base class of every error raised by wsembed. ``code`` is the C result code."""

    code: int = 0

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidArgumentError(WsembedError, ValueError):
    """An argument or option value is not acceptable (C: NULL_ARGUMENT, INVALID_ARGUMENT)."""

    code = 2


class InvalidUtf8Error(InvalidArgumentError):
    """Text to send is not valid UTF-8 (C: INVALID_UTF8)."""

    code = 8


class ConnectionClosedError(WsembedError):
    """The connection id is closed, closing, or never existed (C: NO_SUCH_CONNECTION)."""

    code = 3


class ServerStoppedError(WsembedError):
    """The server has been stopped; for ``poll``: and every event was taken (C: STOPPED)."""

    code = 4


class WouldBlockError(WsembedError):
    """The connection's send queue is over ``max_buffered_bytes``; retry after a ``Drain``
    event for that connection (C: WOULD_BLOCK)."""

    code = 5


class ServerIOError(WsembedError, OSError):
    """An operating-system error, e.g. the port is in use (C: IO)."""

    code = 6


class InternalError(WsembedError):
    """A bug inside wsembed was caught at the boundary (C: PANIC)."""

    code = 7


_BY_CODE: dict[int, type[WsembedError]] = {
    1: InvalidArgumentError,
    2: InvalidArgumentError,
    3: ConnectionClosedError,
    4: ServerStoppedError,
    5: WouldBlockError,
    6: ServerIOError,
    7: InternalError,
    8: InvalidUtf8Error,
}


def error_for(code: int, message: str) -> WsembedError:
    """The exception instance for a non-zero C result code."""
    cls = _BY_CODE.get(code, WsembedError)
    if cls is ServerIOError:
        err = ServerIOError(message)
        err.code = code
        return err
    return cls(message, code)
