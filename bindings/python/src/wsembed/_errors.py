"""Exceptions raised by wsembed, mapped from the C result codes.

The numbers come from the header (``_abi``, generated); the message of an error is the
library's own (``wsembed_last_error_message``, else ``wsembed_result_text``). A result code
this module does not know (a newer library) raises the base class :class:`WsembedError`.
"""

from __future__ import annotations

from . import _abi

__all__ = [
    "WsembedError",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "ConnectionClosedError",
    "ServerStoppedError",
    "WouldBlockError",
    "ServerIOError",
    "InternalError",
    "NotOpenError",
    "ClientClosedError",
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

    code = _abi.WSEMBED_ERR_INVALID_ARGUMENT


class InvalidUtf8Error(InvalidArgumentError):
    """Text to send is not valid UTF-8 (C: INVALID_UTF8)."""

    code = _abi.WSEMBED_ERR_INVALID_UTF8


class ConnectionClosedError(WsembedError):
    """The connection id is closed, closing, or never existed (C: NO_SUCH_CONNECTION)."""

    code = _abi.WSEMBED_ERR_NO_SUCH_CONNECTION


class ServerStoppedError(WsembedError):
    """The server has been stopped; for ``poll``: and every event was taken (C: STOPPED)."""

    code = _abi.WSEMBED_ERR_STOPPED


class WouldBlockError(WsembedError):
    """The connection's send queue is over ``max_buffered_bytes`` (retry after a ``Drain``
    event for that connection), or the commands waiting for the engine's loop are over
    ``max_queued_command_bytes`` (C: WOULD_BLOCK). Nothing is kept on the Python side."""

    code = _abi.WSEMBED_ERR_WOULD_BLOCK


class ServerIOError(WsembedError, OSError):
    """An operating-system error, e.g. the port is in use (C: IO)."""

    code = _abi.WSEMBED_ERR_IO


class InternalError(WsembedError):
    """A bug inside wsembed was caught at the boundary (C: PANIC)."""

    code = _abi.WSEMBED_ERR_PANIC


class NotOpenError(WsembedError):
    """A client connection is not open yet (or is between reconnects); see the client option
    ``queue_while_connecting`` (C: NOT_OPEN)."""

    code = _abi.WSEMBED_ERR_NOT_OPEN


class ClientClosedError(ConnectionClosedError):
    """A :class:`~wsembed.Client` connection has ended: raised by ``recv`` (and ``send``)
    after its last event. ``code``/``reason``/``clean`` come from the :class:`Close` event
    (``code`` is 1006 when it never opened); ``failure``/``http_status`` from the
    :class:`Failed` event when the connection failed (``failure`` is 0 otherwise)."""

    def __init__(self, message: str, close_code: int = 1006, reason: str = "", clean: bool = False,
                 failure: int = 0, http_status: int = 0) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason
        self.clean = clean
        self.failure = failure
        self.http_status = http_status


_BY_CODE: dict[int, type[WsembedError]] = {
    _abi.WSEMBED_ERR_NULL_ARGUMENT: InvalidArgumentError,
    _abi.WSEMBED_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _abi.WSEMBED_ERR_NO_SUCH_CONNECTION: ConnectionClosedError,
    _abi.WSEMBED_ERR_STOPPED: ServerStoppedError,
    _abi.WSEMBED_ERR_WOULD_BLOCK: WouldBlockError,
    _abi.WSEMBED_ERR_IO: ServerIOError,
    _abi.WSEMBED_ERR_PANIC: InternalError,
    _abi.WSEMBED_ERR_INVALID_UTF8: InvalidUtf8Error,
    _abi.WSEMBED_ERR_NOT_OPEN: NotOpenError,
}


def error_for(code: int, message: str) -> WsembedError:
    """The exception instance for a non-zero C result code."""
    cls = _BY_CODE.get(code, WsembedError)
    if cls is ServerIOError:
        err = ServerIOError(message)
        err.code = code
        return err
    return cls(message, code)
